"""Waiting in tests for something another thread or process will make true."""

from __future__ import annotations

import time


def wait_until(condition, timeout: float = 60.0) -> bool:
    """True once `condition()` is, polled every 20 ms; False if `timeout` seconds pass first.
    Tests wait for an outcome, never a fixed time: a busy 2-core CI machine is slow."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
