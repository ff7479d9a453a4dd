"""Memory and Stop of the heaviest training runs a visitor can ask for (issue 19, item 1).

    python benchmarks/training_memory.py            # every scenario, about two minutes
    python benchmarks/training_memory.py --only lab

Each scenario starts a TrainingSession in this process, as the server does (its runs train in
processes forked from the fork server), presses Stop after a few seconds (or lets the time limit
end it), and prints:

- the peak memory of this process and every process under it (the fork server and the training
  processes), as the sum of their PSS (shared pages split between the processes that share
  them), sampled every 50 ms from /proc; and each training process's peak RSS, PSS and private
  memory, and its run's own (private memory less what an idle training process holds), next to
  the budget a run must fit (LIMITS.max_training_bytes);
- the time from Stop (or from the time limit) to the end of the session, next to the grace after
  which the server ends a training process (STOP_GRACE_SECONDS), and whether it had to.

The scenarios are the issue's: Train, adding, length 1000, hidden 512, 2 layers, LSTM, alone,
"all three" cells, and alone by three visitors at once (every training slot at its largest); the Gradient lab's LSTM at T = 1000, hidden 256 (plain and clipped); and the
Train run again, ended by a 30 s time limit. Run it on a quiet machine: the figures are
wall-clock and resident memory.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]

from core.limits import LIMITS  # noqa: E402
from core.training.loop import TrainConfig  # noqa: E402
from core.training.session import STOP_GRACE_SECONDS, TrainingSession, train_runs  # noqa: E402
from core.views import lab  # noqa: E402
from harness import process_tree  # noqa: E402

MB = 2**20


def memory(pid: int) -> tuple[int, int, int]:
    """(RSS, PSS, USS) of a process in bytes (USS: its private pages, what it alone holds),
    zeros once it has gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            values = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f
                      if line.startswith(("Rss:", "Pss:", "Private_"))}
    except OSError:
        return 0, 0, 0
    return (values.get("Rss", 0), values.get("Pss", 0),
            values.get("Private_Clean", 0) + values.get("Private_Dirty", 0))


def training_pids() -> set[int]:
    import multiprocessing

    return {p.pid for p in multiprocessing.active_children()
            if p.name.startswith("gatescope-train") and p.pid}


class Sampler:
    """Peak memory of this process tree, and of each training process, every 50 ms."""

    def __init__(self):
        self.peak_total = 0
        self.peak_training: dict[int, tuple[int, int, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            training = training_pids()
            total = 0
            for pid in process_tree(os.getpid()):
                now = memory(pid)
                total += now[1]
                if pid in training:
                    before = self.peak_training.get(pid, (0, 0, 0))
                    self.peak_training[pid] = tuple(map(max, before, now))
            self.peak_total = max(self.peak_total, total)
            self._stop.wait(0.05)


def run(name: str, runs, stop_after: float | None, sessions: int = 1) -> None:
    """Train `runs` in `sessions` sessions at once (as many visitors), Stop them all after
    `stop_after` seconds (None: their time limit ends them), and print the figures."""
    started_together = [TrainingSession(runs) for _ in range(sessions)]
    for note in started_together[0].notes:
        print(f"  note: {note}")
    with Sampler() as sampler:
        started = time.monotonic()
        for session in started_together:
            session.start()
        if stop_after is not None:
            time.sleep(stop_after)
            asked = time.monotonic()
            for session in started_together:
                session.stop()
            reference = "Stop"
        else:
            limit = runs[0].config.max_seconds
            asked = started + limit
            reference = f"the {limit:g} s time limit"
        for session in started_together:
            session.wait()
        ended = time.monotonic()
    print(f"{name}: ended {ended - asked:+.2f} s after {reference} "
          f"(the server ends a process {STOP_GRACE_SECONDS:g} s after it)")
    for progress in (p for session in started_together for p in session.snapshot()):
        result = progress.result
        outcome = (f"{result.status}, {result.steps} steps, held-out {result.score.metric} "
                   f"{result.score.value:.4g}: {result.message}" if result is not None
                   else progress.status + (f": {progress.error}" if progress.error else ""))
        print(f"  {progress.label}: batch {progress.config.batch_size}, held-out "
              f"{progress.config.heldout_size}; {outcome}")
    budget = LIMITS.max_training_bytes
    for pid, (rss, pss, uss) in sorted(sampler.peak_training.items()):
        run_bytes = uss - PROCESS_PRIVATE
        print(f"  training process {pid}: peak RSS {rss / MB:.0f} MB, PSS {pss / MB:.0f} MB, "
              f"private {uss / MB:.0f} MB; the run's own {run_bytes / MB:.0f} MB = "
              f"{run_bytes / budget:.2f} x the {budget / MB:.0f} MB budget")
    print(f"  peak of this process and all under it (PSS): {sampler.peak_total / MB:.0f} MB")


#: Private memory a training process holds before its run allocates anything (measured).
PROCESS_PRIVATE = 0


def idle_training_process() -> int:
    """The private memory of a training process on a tiny run, after a second."""
    session = TrainingSession(train_runs(
        "adding", ["lstm"], TrainConfig(max_steps=10_000, hidden_size=4, seq_len=10,
                                        heldout_size=20), when=datetime(2026, 1, 1))).start()
    time.sleep(1.0)
    private = max((memory(pid)[2] for pid in training_pids()), default=0)
    session.stop()
    session.wait()
    return private


SCENARIOS = {
    "train": "Train: adding, length 1000, hidden 512, 2 layers, LSTM; Stop after 20 s",
    "three": "Train: the same, all three cells; Stop after 20 s",
    "visitors": "Train: that run by three visitors at once (every slot at the largest batch); "
                "Stop after 30 s",
    "lab": "Gradient lab: LSTM, T = 1000, hidden 256, plain and clipped; Stop after 8 s",
    "limit": "Train: the first run again, ended by its 30 s time limit",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=SCENARIOS, action="append")
    args = parser.parse_args()
    worst = dict(hidden_size=512, num_layers=2, seq_len=1000, max_steps=1500,
                 progress_every=1, heldout_every=37)
    when = datetime(2026, 1, 1)
    print(f"budget per run: {LIMITS.max_training_bytes / MB:.0f} MB; at most "
          f"{LIMITS.max_concurrent_training_runs} runs at once")
    # the fork server starts with the first run (imports torch): not part of any figure
    TrainingSession(train_runs("adding", ["gru"], TrainConfig(max_steps=2, hidden_size=4),
                               when=when)).start().wait()
    baseline = sum(memory(pid)[1] for pid in process_tree(os.getpid()))
    print(f"this process and its fork server before any run (PSS): {baseline / MB:.0f} MB")
    global PROCESS_PRIVATE
    PROCESS_PRIVATE = idle_training_process()
    print(f"private memory of a training process before its run allocates: "
          f"{PROCESS_PRIVATE / MB:.0f} MB (not part of the budget)")
    for key in args.only or SCENARIOS:
        print(f"\n== {SCENARIOS[key]}")
        if key == "train":
            run(key, train_runs("adding", ["lstm"], TrainConfig(max_seconds=60, **worst),
                                when=when), 20.0)
        elif key == "three":
            run(key, train_runs("adding", ["rnn", "lstm", "gru"],
                                TrainConfig(max_seconds=60, **worst), when=when), 20.0)
        elif key == "visitors":
            run(key, train_runs("adding", ["lstm"], TrainConfig(max_seconds=60, **worst),
                                when=when), 30.0, sessions=LIMITS.max_concurrent_training_runs)
        elif key == "lab":
            state = lab.LabState(cell="lstm", len=1000, hidden=256, steps=300)
            run(key, lab.session_runs(state), 8.0)
        else:
            run(key, train_runs("adding", ["lstm"], TrainConfig(max_seconds=30, **worst),
                                when=when), None)


if __name__ == "__main__":
    main()
