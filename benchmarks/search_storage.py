"""Which Optuna storage concurrent search workers on one machine should share: the measurement
behind the choice in core/search/storage.py's docstring.

    python benchmarks/search_storage.py                      # 4 workers x 25 trials, 2 rounds
    python benchmarks/search_storage.py --workers 8 --trials 50 --rounds 1

N worker processes run K quick trials each of one study, with no training: a trial suggests a
float, reports 10 intermediate values and asks `should_prune` after each (Optuna's median
pruner), so nearly all of its time is the storage's. All workers are released by one barrier
at the same moment on a fresh file, before any of them opens the storage: that is when
workers started together race to create the tables and the study. Storages:

- journal: Optuna's JournalStorage with a JournalFileBackend (the reference);
- gatescope sqlite: `core.search.storage.open_storage("sqlite:///...")`, the app's own (WAL,
  a 60 s busy timeout, one file lock around creating the tables, a heartbeat);
- plain sqlite: `optuna.storages.RDBStorage("sqlite:///...")` with none of that.

Prints, per storage: trials ended (complete or pruned, read back from the storage afterwards),
wall time from the release to the last worker's exit, the slowest worker's time to open the
storage and the study (the tables' creation, and waiting for another worker's), trials per
second over the whole wall time, errors (exceptions a
worker met, counted by message; a worker whose storage or study could not be opened runs no
trials) and the ratio of its throughput to the journal's in the same round. Rounds run the
storages in turn, a different one first each round, so a slow moment of a shared machine does
not land on one storage every time.
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import statistics
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STORAGES = ("journal", "gatescope sqlite", "plain sqlite")
STUDY = "storage-benchmark"
REPORTS_PER_TRIAL = 10


def open_storage(kind: str, path: Path):
    """The storage `kind` on the file `path` (made by the first worker that opens it)."""
    import optuna

    if kind == "journal":
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(str(path)))
    if kind == "gatescope sqlite":
        from core.search.storage import open_storage as gatescope_storage

        return gatescope_storage(f"sqlite:///{path}")
    return optuna.storages.RDBStorage(f"sqlite:///{path}")


def error_message(error: BaseException) -> str:
    """What went wrong, without the SQL statement, parameters and links SQLAlchemy adds."""
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    text = text[0] if text else type(error).__name__
    text = re.sub(r"\[SQL:.*", "", text).strip()
    return f"{type(getattr(error, 'orig', None) or error).__name__}: {text[:120]}"


def objective(trial) -> float:
    import optuna

    x = trial.suggest_float("x", -10.0, 10.0)
    for step in range(REPORTS_PER_TRIAL):
        trial.report((x - 2.0) ** 2 + 1.0 / (step + 1), step)
        if trial.should_prune():
            raise optuna.TrialPruned
    return (x - 2.0) ** 2


def worker(kind: str, path: str, trials: int, seed: int, barrier, errors) -> None:
    """Open the storage and the study, then run `trials` trials one at a time; every exception
    is counted by message (a failed trial does not end the worker; a failed open does)."""
    import optuna

    if kind == "gatescope sqlite":
        import core.search.storage  # noqa: F401 -- it imports torch: not a storage's time
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")  # Optuna's "experimental" heartbeat and journal warnings
    seen: Counter[str] = Counter()
    barrier.wait()
    began = time.perf_counter()
    try:
        storage = open_storage(kind, Path(path))
        study = optuna.create_study(
            study_name=STUDY, storage=storage, load_if_exists=True,
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2))
    except Exception as error:  # noqa: BLE001 -- what is counted is what a user would see
        seen[error_message(error)] += 1
        errors.put((dict(seen), time.perf_counter() - began))
        return
    opened = time.perf_counter() - began
    for _ in range(trials):
        try:
            study.optimize(objective, n_trials=1)
        except Exception as error:  # noqa: BLE001
            seen[error_message(error)] += 1
    errors.put((dict(seen), opened))


def ended_trials(kind: str, path: Path) -> Counter[str]:
    """The study's trials by state, read back after every worker has exited."""
    import optuna

    try:
        study = optuna.load_study(study_name=STUDY, storage=open_storage(kind, path))
    except Exception as error:  # noqa: BLE001 -- e.g. no worker managed to make the study
        return Counter({f"unreadable ({error_message(error)})": 1})
    return Counter(t.state.name for t in study.get_trials(deepcopy=False))


def run_one(kind: str, directory: Path, workers: int, trials: int) -> dict:
    context = multiprocessing.get_context("spawn")
    suffix = "log" if kind == "journal" else "sqlite3"
    path = directory / f"{kind.replace(' ', '-')}.{suffix}"
    barrier, errors = context.Barrier(workers + 1), context.Queue()
    processes = [context.Process(target=worker, args=(kind, str(path), trials, seed, barrier,
                                                      errors)) for seed in range(workers)]
    for process in processes:
        process.start()
    barrier.wait()  # every worker has imported Optuna; the clock starts as they are released
    began = time.perf_counter()
    counted: Counter[str] = Counter()
    opened = []
    for _ in processes:
        seen, seconds = errors.get()
        counted.update(seen)
        opened.append(seconds)
    for process in processes:
        process.join()
    seconds = time.perf_counter() - began
    states = ended_trials(kind, path)
    ended = states["COMPLETE"] + states["PRUNED"]
    return {"kind": kind, "seconds": seconds, "ended": ended, "states": states,
            "per_second": ended / seconds, "errors": counted, "open": max(opened)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=4, help="worker processes (default 4)")
    parser.add_argument("--trials", type=int, default=25, help="trials per worker (default 25)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="times each storage is measured, fresh file each time (default 2)")
    args = parser.parse_args()

    print(f"{args.workers} workers x {args.trials} trials ({REPORTS_PER_TRIAL} reports and "
          f"should_prune each, no training), released together on a fresh file")
    header = (f"{'round':>5}  {'storage':<17} {'ended':>6} {'seconds':>8} {'opened in':>9} "
              f"{'trials/s':>9} {'errors':>6} {'vs journal':>10}")
    print(header)
    rates: dict[str, list[float]] = {kind: [] for kind in STORAGES}
    all_errors: dict[str, Counter[str]] = {kind: Counter() for kind in STORAGES}
    for number in range(args.rounds):
        order = STORAGES[number % len(STORAGES):] + STORAGES[:number % len(STORAGES)]
        with tempfile.TemporaryDirectory(prefix="gatescope-storage-") as directory:
            results = {kind: run_one(kind, Path(directory), args.workers, args.trials)
                       for kind in order}
        journal = results["journal"]["per_second"]
        for kind in STORAGES:
            result = results[kind]
            rates[kind].append(result["per_second"])
            all_errors[kind].update(result["errors"])
            others = {s: n for s, n in result["states"].items() if s not in ("COMPLETE", "PRUNED")}
            print(f"{number + 1:>5}  {kind:<17} {result['ended']:>6} {result['seconds']:>8.2f} "
                  f"{result['open']:>9.2f} {result['per_second']:>9.1f} {sum(result['errors'].values()):>6} "
                  f"{result['per_second'] / journal:>10.2f}"
                  + (f"  (also {dict(others)})" if others else ""))
    if args.rounds > 1:
        journal = statistics.median(rates["journal"])
        print(f"median over {args.rounds} rounds:")
        for kind in STORAGES:
            rate = statistics.median(rates[kind])
            print(f"       {kind:<17} {rate:>35.1f} {'':>6} {rate / journal:>10.2f}")
    print("errors by message, all rounds:")
    for kind in STORAGES:
        if not all_errors[kind]:
            print(f"  {kind}: none")
        for message, count in all_errors[kind].most_common():
            print(f"  {kind}: {count} x {message}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
