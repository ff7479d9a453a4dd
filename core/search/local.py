"""Searches the server runs itself: the Search page's "Start search".

    search = LocalSearch(SearchPlan("adding", "adding-1", trials=12, workers=2, max_steps=1000))
    SEARCHES.start(search)       # LimitError while max_concurrent_searches are running
    search.lines                 # the workers' one line per trial, newest last
    search.stop()                # each worker ends its trial within a step and exits

Each worker is the command a user runs on another machine (`python -m core.search worker`,
a process of its own: training keeps off the server's GIL, as core.training.session explains)
and runs while it holds one of the server's training slots (core.sharing.TRAINING_SLOTS), so
searches and the Train page share the cores by the same rule; a worker waits for a slot and
its status says so. The study is made on the server before any worker starts, so a bad name,
an unreachable storage or a study of another task is refused on the page at once. A search
whose tab has been gone for a while is stopped like a training run (core.sharing.OWNER_WATCH).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.cells import CELLS
from core.limits import (
    LIMITS, LimitError, check_search_trials, check_search_workers, check_training_steps,
)
from core.search.storage import (
    ROOT, SearchError, check_study_name, create_study, default_storage_url, open_storage,
    search_directory,
)
from core.sharing import OWNER_WATCH, TRAINING_SLOTS, OwnerWatch, TrainingSlots

#: Seconds a worker has, after SIGTERM, to end its trial and exit before it is killed (its
#: trial is then failed by the heartbeat rule).
STOP_SECONDS = 5.0
#: Lines of the workers' output a search keeps.
KEPT_LINES = 200


@dataclass(frozen=True)
class SearchPlan:
    """What a visitor asked for, checked against core.limits."""

    task: str
    study: str
    trials: int
    workers: int
    max_steps: int
    cells: tuple[str, ...] = tuple(CELLS)
    storage: str | None = None  # None: default_storage_url()

    def __post_init__(self) -> None:
        check_study_name(self.study)
        check_search_trials(self.trials)
        check_search_workers(self.workers)
        check_training_steps(self.max_steps)
        if not self.cells or set(self.cells) - set(CELLS):
            raise SearchError(f"Choose the cells to search among {', '.join(CELLS)}.")

    def shares(self) -> list[int]:
        """Trials per worker: as even as can be, never a worker with none."""
        workers = min(self.workers, self.trials)
        return [self.trials // workers + (i < self.trials % workers) for i in range(workers)]


class LocalSearch:
    """A search run by worker processes of this server; see the module doc."""

    def __init__(self, plan: SearchPlan, slots: TrainingSlots = TRAINING_SLOTS,
                 owner_alive: Callable[[], bool] | None = None,
                 owner_watch: OwnerWatch = OWNER_WATCH, directory: Path | None = None):
        self.plan = plan
        self.storage_url = plan.storage or default_storage_url()
        self.directory = directory or search_directory() / "weights"
        self._slots = slots
        self._owner_alive, self._owner_watch = owner_alive, owner_watch
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._processes: dict[int, subprocess.Popen] = {}
        self._waiting: set[int] = set()
        self._threads: list[threading.Thread] = []
        self.lines: deque[str] = deque(maxlen=KEPT_LINES)
        self.errors: list[str] = []
        self.abandoned = False

    # -- running --------------------------------------------------------------------------
    def start(self) -> None:
        """Make the study (SearchError if that fails), then start the workers' threads."""
        create_study(self.plan.study, self.plan.task, open_storage(self.storage_url))
        for index, trials in enumerate(self.plan.shares()):
            thread = threading.Thread(target=self._work, args=(index, trials), daemon=True,
                                      name=f"gatescope-search-{self.plan.study}-{index}")
            self._threads.append(thread)
            thread.start()
        if self._owner_alive is not None:
            self._owner_watch.watch(self._owner_alive, self._abandon, lambda: self.running)

    def command(self, index: int, trials: int) -> list[str]:
        plan = self.plan
        return [sys.executable, "-m", "core.search", "worker", "--task", plan.task,
                "--study", plan.study, "--trials", str(trials), "--storage", self.storage_url,
                "--max-steps", str(plan.max_steps), "--directory", str(self.directory),
                "--cells", ",".join(plan.cells), "--seed", str(index)]

    def _work(self, index: int, trials: int) -> None:
        with self._lock:
            self._waiting.add(index)
        got = self._slots.acquire(should_give_up=self._stop.is_set)
        with self._lock:
            self._waiting.discard(index)
        if not got:
            return
        try:
            # stderr to a file, not a pipe: a worker that wrote more warnings than a pipe holds
            # would block on them while this thread waits on its stdout
            with tempfile.TemporaryFile(mode="w+", errors="replace") as stderr:
                with self._lock:
                    if self._stop.is_set():
                        return
                    process = subprocess.Popen(
                        self.command(index, trials), cwd=ROOT, stdout=subprocess.PIPE,
                        stderr=stderr, text=True, errors="replace")
                    self._processes[index] = process
                for line in process.stdout:
                    self.lines.append(line.rstrip())
                if process.wait() not in (0, -signal.SIGTERM) and not self._stop.is_set():
                    stderr.seek(0)
                    self.errors.append(_worker_error(index, process.returncode, stderr.read()))
        except OSError as error:  # the worker could not be started at all
            self.errors.append(f"worker {index + 1} could not start: {error}")
        finally:
            self._slots.release()

    def stop(self) -> None:
        """Ask every worker to end its trial and exit; waiting ones never start."""
        self._stop.set()
        with self._lock:
            processes = list(self._processes.values())
        for process in processes:
            if process.poll() is None:
                process.terminate()
        threading.Thread(target=self._kill_late, args=(processes,), daemon=True).start()

    def _kill_late(self, processes: list[subprocess.Popen]) -> None:
        for process in processes:
            try:
                process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()

    def _abandon(self) -> None:
        self.abandoned = True
        self.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """True once every worker has ended."""
        for thread in self._threads:
            thread.join(timeout)
        return not self.running

    # -- what the page shows --------------------------------------------------------------
    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def waiting_workers(self) -> int:
        with self._lock:
            return len(self._waiting)

    @property
    def status(self) -> str:
        workers = len(self._threads)
        if self.running:
            waiting = self.waiting_workers
            text = f"{workers - waiting} of {workers} worker(s) running"
            if waiting:
                text += (f", {waiting} waiting for a free training slot (at most "
                         f"{LIMITS.max_concurrent_training_runs} runs train at once here)")
            return text + (" · stopping" if self.stopped else "")
        if self.abandoned:
            return "stopped: its browser tab was closed"
        return "stopped" if self.stopped else "finished"


def _worker_error(index: int, code: int, stderr: str) -> str:
    """What a failed worker said: its "error: ..." line (the command's one-line messages), else
    the last line it wrote, with its exit code."""
    lines = stderr.strip().splitlines()
    said = [line[len("error: "):] for line in lines if line.startswith("error: ")]
    if said:
        return said[-1]
    return f"worker {index + 1} ended with code {code}: {lines[-1][:300] if lines else 'no message'}"


class SearchRegistry:
    """The searches this server runs, at most `LIMITS.max_concurrent_searches` at once, one
    per study."""

    def __init__(self, limit: int | None = None):
        self.limit = limit or LIMITS.max_concurrent_searches
        self._searches: list[LocalSearch] = []
        self._lock = threading.Lock()

    def start(self, search: LocalSearch) -> LocalSearch:
        with self._lock:
            self._searches = [s for s in self._searches if s.running]
            if any(s.plan.study == search.plan.study for s in self._searches):
                raise SearchError(f"The study “{search.plan.study}” is being searched on this "
                                  f"server already: watch it below, or use another name.")
            if len(self._searches) >= self.limit:
                running = len(self._searches)
                raise LimitError(
                    f"{running} search{'es are' if running != 1 else ' is'} running on this "
                    f"server (at most {self.limit} at once): watch one below, or start yours "
                    f"when one has finished.", limit="max_concurrent_searches",
                    value=running + 1)
            search.start()
            self._searches.append(search)
        return search

    def running(self) -> list[LocalSearch]:
        with self._lock:
            return [s for s in self._searches if s.running]

    def of(self, study: str) -> LocalSearch | None:
        with self._lock:
            return next((s for s in self._searches if s.plan.study == study), None)


#: The process's searches.
SEARCHES = SearchRegistry()

