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
  session can hold, and the README quotes it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable

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

#: Models trained on the Train page that a browser session keeps (the oldest go first).
MAX_TRAINED_PER_SESSION = 9
#: Arrays a trace keeps per traced state: LSTM h, c and four gates (the most of any cell).
TRACE_ARRAYS = 6


def session_memory_bound() -> dict[str, int]:
    """The most memory, in bytes, that one browser session can hold, by what holds it.

    Everything a session keeps is float32 and bounded by a limit: its last trace, one uploaded
    file and the model read from it, and the models it trained (`keep_newest` in
    core.training.session drops the oldest beyond MAX_TRAINED_PER_SESSION models or 3 × the
    parameter limit). The shared caches (shipped
    models, traces of shipped and random models) are bounded by entry counts in the pages and
    are counted once per process, not per session.
    """
    float32 = 4
    model = LIMITS.max_params * float32
    return {
        "last trace (states, gates)": TRACE_ARRAYS * LIMITS.max_trace_values * float32,
        "uploaded file": LIMITS.max_upload_bytes,
        "model read from the upload": model,
        "trained models (at most 3 × the parameter limit in all)": 3 * model,
    }
