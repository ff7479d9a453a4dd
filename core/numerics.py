"""Floating-point modes that must not leak out of the block that wants them.

`torch.set_flush_denormal(True)` sets the CPU's flush-to-zero and denormals-are-zero flags for
the calling thread: not only for torch, but for numpy and for Python's own float comparisons in
that thread. Left on in a visitor's thread, a subnormal number such as 1e-310 compares equal to
zero, and the airline task called a positive series "not positive". Tracing wants the mode (a
vanishing gradient turns subnormal, and subnormal arithmetic is tens of times slower on a CPU),
so it is switched on for the trace only and restored after:

    with flush_denormal():
        tr = trace(rnn, x, objective)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

_SMALLEST_SUBNORMAL = np.array([5e-324])


def denormals_flushed() -> bool:
    """Whether the calling thread reads subnormal numbers as zero (the mode is per thread and
    torch has no getter for it, so it is measured)."""
    return not bool((_SMALLEST_SUBNORMAL > 0.0)[0])


@contextlib.contextmanager
def flush_denormal() -> Iterator[None]:
    """Flush subnormal numbers to zero inside the block, and give the thread back its own mode
    after it, whatever happens inside."""
    was_on = denormals_flushed()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(was_on)
