"""One server process, many visitors: how gatescope shares its CPU and bounds its memory.

A public deployment serves every visitor from one Python process on a couple of shared cores,
and Streamlit runs each visitor's script in a thread of its own. Three things follow:

- **Torch threads.** `cap_torch_threads()` gives the calling thread `TORCH_THREADS` intra-op
  threads (default 1; `app.py` calls it on every run). PyTorch's default is one per core, so
  each visitor's trace would fan out over every core: twenty visitors would run forty OpenMP
  threads on two cores, each spinning while it waits for the others. With one thread each,
  requests run side by side instead. `GATESCOPE_TORCH_THREADS=4` gives more to a single user on
  a bigger machine. `torch_threads(n)` runs one block on `n` threads and restores the
  caller's setting (a trace and Compare's timings run on one).
- **Training slots.** At most `LIMITS.max_concurrent_training_runs` runs train at once in the
  process (`TRAINING_SLOTS`); a run started while every slot is taken waits for one, says so,
  and can be stopped while it waits. Its time budget starts when it gets a slot.
- **Memory per visitor** is bounded by the limits: `session_memory_bound()` adds up the most a
  session can hold, and the README quotes it. Each training run fits its own budget
  (`LIMITS.max_training_bytes`, core/training/budget.py).
- **Work nobody watches is stopped.** A visitor who closes or reloads the tab while training
  would otherwise leave runs holding training slots that nobody can see or stop. `OWNER_WATCH`,
  one daemon thread for the process, asks each registered owner (a browser session) whether it
  is still connected and stops its work once it has been gone for `ABANDONED_GRACE_SECONDS`; a
  tab that reconnects sooner finds its runs still going.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from core.limits import LIMITS


def _threads_from_environment() -> int:
    raw = os.environ.get("GATESCOPE_TORCH_THREADS", "1")
    try:
        return max(1, min(int(raw), os.cpu_count() or 1))
    except ValueError:
        return 1


#: Intra-op threads of each thread that runs torch for a visitor.
TORCH_THREADS = _threads_from_environment()


def cap_torch_threads(threads: int | None = None) -> None:
    """Give the calling thread (and every thread torch starts later) `threads` intra-op threads.

    OpenMP's thread count is per thread: a visitor's script thread keeps its own setting, and a
    thread that has not run torch yet takes the process-wide value set here on its first use.
    """
    threads = threads or TORCH_THREADS
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block with `n` intra-op threads, then restore the caller's setting (OpenMP's
    setting is per calling thread)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class TrainingSlots:
    """A fixed number of slots for training runs, shared by every visitor of the process."""

    def __init__(self, slots: int):
        if slots < 1:
            raise ValueError("there must be at least one training slot")
        self.slots = slots
        self._free = slots
        self._waiting = 0
        self._changed = threading.Condition()

    def acquire(self, should_give_up: Callable[[], bool], poll_seconds: float = 0.2) -> bool:
        """Take a slot, waiting while all are taken; False if `should_give_up()` first."""
        with self._changed:
            self._waiting += 1
            try:
                while self._free == 0:
                    if should_give_up():
                        return False
                    self._changed.wait(poll_seconds)
                self._free -= 1
                return True
            finally:
                self._waiting -= 1

    def release(self) -> None:
        with self._changed:
            if self._free >= self.slots:
                raise RuntimeError("released a training slot that was not taken")
            self._free += 1
            self._changed.notify()

    @property
    def busy(self) -> int:
        """Slots taken now."""
        with self._changed:
            return self.slots - self._free

    @property
    def waiting(self) -> int:
        """Runs waiting for a slot now."""
        with self._changed:
            return self._waiting


#: Every training run of the process (Train page, Gradient lab) trains in one of these.
TRAINING_SLOTS = TrainingSlots(LIMITS.max_concurrent_training_runs)

log = logging.getLogger(__name__)

def _grace_from_environment() -> float:
    raw = os.environ.get("GATESCOPE_ABANDONED_GRACE_SECONDS", "15")
    try:
        return min(max(float(raw), 1.0), 120.0)
    except ValueError:
        return 15.0


#: How long an owner (a browser session) may be gone before its work is stopped: long enough for
#: a reload or a network blip, short next to the two minutes Streamlit keeps a disconnected
#: session for a reconnect, during which a run would hold its slot while others queue.
#: `GATESCOPE_ABANDONED_GRACE_SECONDS` sets it (1 to 120; the browser test uses 2).
ABANDONED_GRACE_SECONDS = _grace_from_environment()


@dataclass(eq=False)  # compared by identity: two entries may hold equal callables
class _Watched:
    alive: Callable[[], bool]
    stop: Callable[[], None]
    running: Callable[[], bool]
    gone_since: float | None = None


class OwnerWatch:
    """Stops work whose owner has been gone for `grace_seconds`, polling every `poll_seconds`
    from one daemon thread (started with the first work it watches; with `poll_seconds=None`,
    none: the caller calls `poll`)."""

    def __init__(self, grace_seconds: float = ABANDONED_GRACE_SECONDS,
                 poll_seconds: float | None = 1.0):
        self.grace_seconds = grace_seconds
        self.poll_seconds = poll_seconds
        self._watched: list[_Watched] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, alive: Callable[[], bool], stop: Callable[[], None],
              running: Callable[[], bool]) -> None:
        """Call `stop()` once `alive()` has been False for the grace period, as long as
        `running()`; forget the work once it no longer runs."""
        with self._lock:
            self._watched.append(_Watched(alive, stop, running))
            if self.poll_seconds is not None and (self._thread is None
                                                  or not self._thread.is_alive()):
                self._thread = threading.Thread(target=self._loop, daemon=True,
                                                name="gatescope-owner-watch")
                self._thread.start()

    @property
    def watching(self) -> int:
        with self._lock:
            return len(self._watched)

    def _loop(self) -> None:
        while True:
            time.sleep(self.poll_seconds)
            self.poll()

    def poll(self, now: float | None = None) -> None:
        """One look at everything watched (the thread calls it every poll_seconds)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            watched = list(self._watched)
        ended = []
        for item in watched:
            try:
                if not item.running():
                    ended.append(item)
                elif _alive(item.alive):
                    item.gone_since = None
                elif item.gone_since is None:
                    item.gone_since = now
                elif now - item.gone_since >= self.grace_seconds:
                    item.stop()
                    ended.append(item)
            except Exception:  # one broken entry must not stop the watch
                log.exception("owner watch: could not check or stop a training session")
                ended.append(item)
        with self._lock:
            self._watched = [item for item in self._watched if item not in ended]


def _alive(alive: Callable[[], bool]) -> bool:
    """`alive()`, taken as True if it cannot answer (never stop work by mistake)."""
    try:
        return bool(alive())
    except Exception:
        log.exception("owner watch: could not tell whether an owner is still there")
        return True


#: The process's one watch over training sessions (core.training.session).
OWNER_WATCH = OwnerWatch()

#: Models trained on the Train page that a browser session keeps (the oldest go first).
MAX_TRAINED_PER_SESSION = 9
#: Arrays a trace keeps per traced state: LSTM h, c and four gates (the most of any cell).
TRACE_ARRAYS = 6


def session_memory_bound() -> dict[str, int]:
    """The most memory, in bytes, that one browser session can hold, by what holds it.

    Everything a session keeps is bounded by a limit: its last trace; on Explore, the weights
    file it uploaded, the vocabulary or Config beside it (its own, smaller limit), the model
    read from them (one reading, which the page's trace uses too), its own model's input file
    (its own limit too) and the CSV file it uploaded (Streamlit keeps each file for the
    session) with the numbers read from it (at most 2,001 rows × 100 columns of float64,
    core.io.tables); on Compare, the same upload and reading in each of its three columns; the
    models it trained (`keep_newest` in core.training.session drops the oldest beyond
    MAX_TRAINED_PER_SESSION models or 3 × the parameter limit) and their snapshots
    (SESSION_SNAPSHOT_BYTES). The shared caches (shipped models, traces of shipped and random
    models) are bounded by entry counts in the pages and are counted once per process, not
    per session.
    """
    from core.training.session import SESSION_SNAPSHOT_BYTES

    float32, megabyte = 4, 10**6  # Streamlit's per-widget upload limits are in MB
    model = LIMITS.max_params * float32
    upload = LIMITS.max_upload_bytes + BESIDE_UPLOAD_MB * megabyte + model
    return {
        "last trace (states, gates)": TRACE_ARRAYS * LIMITS.max_trace_values * float32,
        "Explore: uploaded weights, the file beside them, the model read": upload,
        "Explore: your own model's input file": OWN_INPUT_UPLOAD_MB * megabyte,
        "uploaded CSV file": LIMITS.max_upload_bytes,
        "numbers read from the CSV": (LIMITS.max_seq_len + 1) * 100 * 8,
        "Compare: an upload in each of three columns": 3 * upload,
        "trained models (at most 3 × the parameter limit in all)": 3 * model,
        "their training snapshots": SESSION_SNAPSHOT_BYTES,
    }


#: The upload boxes' own limits, in MB (st.file_uploader's max_upload_size), below the app's
#: LIMITS.max_upload_bytes: a vocabulary or Config beside the weights (a tokenizer.json of
#: 50,000 tokens is 2 MB), and an own model's input file (2,000 steps × 512 features of
#: float64 is 8 MB).
BESIDE_UPLOAD_MB = 5
OWN_INPUT_UPLOAD_MB = 10
