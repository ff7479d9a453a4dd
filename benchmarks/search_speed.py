"""How fast a hyperparameter search goes, and how soon the Search page shows a trial that ended.

    python benchmarks/search_speed.py                    # both parts, about 3 minutes
    python benchmarks/search_speed.py --only workers --trials 12
    python benchmarks/search_speed.py --only page --page-trials 4

workers: trials per minute on the adding task at a fixed small budget (--max-steps 100): the
worker command (`python -m core.search worker`) as 1 process running N trials, then as 2
processes running N/2 each (seeds 0 and 1), each time on a fresh SQLite storage, timed from
starting the processes to both having exited (their start, Python's and torch's imports,
included). Prints trials per minute for each and the ratio 2 workers / 1 worker (the
reference: a second worker is worth at most 2x, and less on a machine with 2 cores that other
work shares). The two runs sample different hyperparameters (the second worker has its own
seed), so their trials do not train the same models: the training seconds and steps the
trials recorded are printed beside them, to show how much work each run did.

page: the time from a trial's end to the Search page showing it. Starts the app (with
GATESCOPE_SEARCH_DIR on a temporary folder, so its storage is a fresh SQLite file), runs one
quick worker so the study exists and has just had a trial end (the page polls a study every
second while a trial runs or one ended within core.views.search.RECENT_SECONDS, and checks a
quiet one every ui.search.QUIET_POLL_SECONDS), opens
/search?study=NAME in headless Chromium at 1280x720, then starts a worker with a few trials
(--max-steps 50) against the same storage. A timer in the page reads the progress bar's text
("3 trials ended · 2 complete, ...") every 50 ms and notes when each new count appears; each
count is matched with the trial that ended in that order (its `datetime_complete` in the
storage). Prints each delay, their median and max, and the page's poll interval
(ui.search.POLL_SECONDS) as the reference: median delay / poll interval. A page that polls
every interval and redraws at once would have a median near half the interval. The server,
the browser and the worker share the machine's cores, so these delays include waiting for the
CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]

from harness import (  # noqa: E402
    ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, free_port, start_app, stop_app, wait_for_app,
)

TASK = "adding"
ENDED_STATES = ("COMPLETE", "PRUNED", "FAIL")
#: Seconds the page may take to show the last trial after its worker has exited.
PAGE_CATCH_UP_SECONDS = 30
SCREENSHOT = ARTIFACTS / "search_speed-page.png"
#: Seconds a worker may run before the benchmark gives up on it.
WORKER_TIMEOUT_SECONDS = 300

# Runs in the page: every 50 ms, read the progress bar's count of ended trials and note (in
# epoch milliseconds, the clock the storage's timestamps are compared with) when it changes.
RECORD_COUNTS = """() => {
  window.__counts = [];
  let last = null;
  window.__countTimer = setInterval(() => {
    const bar = document.querySelector('[data-testid="stProgress"]');
    const match = bar && /(\\d+) (?:of \\d+ )?trials? ended/.exec(bar.innerText);
    if (match && Number(match[1]) !== last) {
      last = Number(match[1]);
      window.__counts.push([last, Date.now()]);
    }
  }, 50);
}"""


def worker_command(study: str, trials: int, storage: str, directory: Path, max_steps: int,
                   seed: int) -> list[str]:
    return [sys.executable, "-m", "core.search", "worker", "--task", TASK, "--study", study,
            "--trials", str(trials), "--max-steps", str(max_steps), "--storage", storage,
            "--directory", str(directory), "--seed", str(seed)]


def start_workers(commands: list[list[str]], env: dict | None = None) -> list[subprocess.Popen]:
    return [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=env)
            for command in commands]


def finish(processes: list[subprocess.Popen]) -> None:
    """Wait for every worker; raise with its output if one failed or ran too long (all are
    killed then: none is left running after the benchmark)."""
    for process in processes:
        try:
            output, _ = process.communicate(timeout=WORKER_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            for late in processes:
                late.kill()
            raise RuntimeError(f"a worker ran over {WORKER_TIMEOUT_SECONDS} s") from None
        if process.returncode != 0:
            raise RuntimeError(f"a worker ended with code {process.returncode}:\n{output}")


def ended_trials(storage: str, study: str) -> list:
    """The study's ended trials (optuna FrozenTrial), in the order they ended."""
    from core.search.storage import open_storage, open_study

    trials = open_study(study, open_storage(storage)).get_trials(deepcopy=False)
    ended = [t for t in trials if t.state.name in ENDED_STATES]
    return sorted(ended, key=lambda t: t.datetime_complete)


# -- workers -----------------------------------------------------------------------------------

def run_search(workers: int, trials: int, max_steps: int, folder: Path) -> dict:
    """`trials` trials shared by `workers` processes on a fresh storage in `folder`."""
    storage = f"sqlite:///{folder / 's.sqlite3'}"
    shares = [trials // workers + (i < trials % workers) for i in range(workers)]
    commands = [worker_command("speed", share, storage, folder / "w", max_steps, seed)
                for seed, share in enumerate(shares)]
    began = time.perf_counter()
    finish(start_workers(commands))
    seconds = time.perf_counter() - began
    ended = ended_trials(storage, "speed")
    states = {state: sum(t.state.name == state for t in ended) for state in ENDED_STATES}
    return {"workers": workers, "seconds": seconds, "ended": len(ended), "states": states,
            "per_minute": len(ended) / seconds * 60,
            "train_seconds": sum(t.user_attrs.get("train_seconds", 0) for t in ended),
            "steps": sum(t.user_attrs.get("steps", 0) for t in ended)}


def measure_workers(trials: int, max_steps: int) -> None:
    print(f"workers: {trials} trials of the {TASK} task at --max-steps {max_steps}, fresh SQLite "
          f"storage each; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    print(f"{'workers':>7} {'trials':>6} {'seconds':>8} {'trials/min':>10} "
          f"{'training s':>10} {'steps':>7}  states")
    runs = []
    for workers in (1, 2):
        with tempfile.TemporaryDirectory(prefix="gatescope-search-speed-") as folder:
            run = run_search(workers, trials, max_steps, Path(folder))
        runs.append(run)
        states = ", ".join(f"{n} {s.lower()}" for s, n in run["states"].items() if n)
        print(f"{workers:>7} {run['ended']:>6} {run['seconds']:>8.1f} {run['per_minute']:>10.1f} "
              f"{run['train_seconds']:>10.1f} {run['steps']:>7,}  {states}")
    print(f"ratio, 2 workers / 1 worker: {runs[1]['per_minute'] / runs[0]['per_minute']:.2f} "
          f"(at most 2.00)")


# -- page --------------------------------------------------------------------------------------

def measure_page(trials: int, max_steps: int) -> None:
    from ui.search import POLL_SECONDS

    ARTIFACTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gatescope-search-page-") as folder:
        watched = watch_page(Path(folder), trials, max_steps)
    report_page(watched, POLL_SECONDS)


def watch_page(folder: Path, trials: int, max_steps: int) -> dict:
    """Start the app, make the study, open the page on it, run a worker; what the page showed
    when (`counts`: [count, epoch ms]) and the study's ended trials."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    env = {**os.environ, "GATESCOPE_SEARCH_DIR": str(folder)}
    storage = f"sqlite:///{folder / 'studies.sqlite3'}"
    study = "page-speed"
    kept = os.environ.get("GATESCOPE_SEARCH_DIR")
    os.environ["GATESCOPE_SEARCH_DIR"] = str(folder)  # start_app passes os.environ on
    port = free_port()
    server = start_app(port, ARTIFACTS / "search_speed-streamlit.log")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            # A first visit, so that the server has imported the page's modules before the
            # study's trial ends (they are not what is measured).
            began = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/search")
            wait_for_app(page)
            first_visit = time.perf_counter() - began
            # The study exists, with a trial that has just ended, so that the page watches it.
            finish(start_workers([worker_command(study, 1, storage, folder / "w", 20, 99)], env))
            page.goto(f"http://127.0.0.1:{port}/search?study={study}")
            try:
                page.wait_for_selector('[data-testid="stProgress"]', timeout=60_000)
            except PlaywrightError as error:
                page.screenshot(path=str(SCREENSHOT), full_page=True)
                raise RuntimeError(f"the page showed no progress bar for the study (see "
                                   f"{SCREENSHOT}); it said:\n{page.inner_text('body')}") from error
            page.evaluate(RECORD_COUNTS)
            before = len(ended_trials(storage, study))
            finish(start_workers([worker_command(study, trials, storage, folder / "w",
                                                 max_steps, 1)], env))
            deadline = time.monotonic() + PAGE_CATCH_UP_SECONDS
            while time.monotonic() < deadline and page.evaluate(
                    "() => (window.__counts.at(-1) || [0])[0]") < before + trials:
                time.sleep(0.2)
            counts = page.evaluate("() => window.__counts")
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            browser.close()
    finally:
        stop_app(server)
        if kept is None:
            os.environ.pop("GATESCOPE_SEARCH_DIR")
        else:
            os.environ["GATESCOPE_SEARCH_DIR"] = kept
    return {"counts": counts, "ended": ended_trials(storage, study), "before": before,
            "first_visit": first_visit}


def report_page(watched: dict, poll: float) -> None:
    from core.views.search import RECENT_SECONDS
    from ui.search import QUIET_POLL_SECONDS

    counts, ended, before = watched["counts"], watched["ended"], watched["before"]
    shown_at: dict[int, float] = {}  # the n-th trial to end -> when the page showed n or more
    for count, millis in counts:
        for position in range(before + 1, count + 1):
            shown_at.setdefault(position, millis / 1000)
    print(f"page: {len(ended) - before} trials while the page watched, polled every {poll:g} s "
          f"(first visit to the page {watched['first_visit']:.1f} s, not counted); delay from "
          f"each trial's end (datetime_complete) to the page showing it")
    delays = []
    for position, trial in enumerate(ended[before:], start=before + 1):
        # Optuna gives datetime_complete as naive local time: astimezone() reads it as such.
        ended_at = trial.datetime_complete.astimezone().timestamp()
        if position in shown_at:
            delays.append(shown_at[position] - ended_at)
            print(f"  trial {trial.number} ({trial.state.name.lower()}): "
                  f"{delays[-1] * 1000:7.0f} ms")
        else:
            print(f"  trial {trial.number} ({trial.state.name.lower()}): never shown "
                  f"(the page's counts: {[c for c, _ in counts]})")
    if len(ended) > before:
        quiet = (ended[before].datetime_start - ended[before - 1].datetime_complete)
        print(f"  (the worker's first trial started {quiet.total_seconds():.1f} s after the "
              f"study's last trial ended; the page polls every second while a trial runs or one "
              f"ended within {RECENT_SECONDS} s, else every {QUIET_POLL_SECONDS:g} s)")
    if not delays:
        print("no trial was shown")
        return
    median = statistics.median(delays)
    print(f"median {median * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms over {len(delays)} "
          f"trials; median / poll interval ({poll * 1000:.0f} ms): {median / poll:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("workers", "page"), help="run one part")
    parser.add_argument("--trials", type=int, default=12,
                        help="workers: trials in all, for 1 and for 2 workers (default 12)")
    parser.add_argument("--max-steps", type=int, default=100,
                        help="workers: steps per trial, at most (default 100)")
    parser.add_argument("--page-trials", type=int, default=4,
                        help="page: trials the worker runs while the page watches (default 4)")
    parser.add_argument("--page-max-steps", type=int, default=50,
                        help="page: steps per trial, at most (default 50)")
    args = parser.parse_args()
    if args.only in (None, "workers"):
        measure_workers(args.trials, args.max_steps)
    if args.only in (None, "page"):
        measure_page(args.page_trials, args.page_max_steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
