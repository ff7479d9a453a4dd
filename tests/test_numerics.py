"""core/numerics.py: flush-to-zero is scoped to the block that wants it (issue 19 item 9: a
trace left it on in the visitor's thread, and 1e-310 was called "not positive")."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.numerics import denormals_flushed, flush_denormal


@pytest.fixture(autouse=True)
def mode_off():
    """Start from the default mode (code elsewhere in the test process may have left it on),
    and leave it so."""
    torch.set_flush_denormal(False)
    yield
    torch.set_flush_denormal(False)


def test_the_mode_is_on_inside_and_restored_after():
    assert not denormals_flushed()
    with flush_denormal():
        assert denormals_flushed()
        assert not (np.array([1e-310]) > 0)[0]  # what a leaked mode does to numpy
    assert not denormals_flushed()
    assert (np.array([1e-310]) > 0)[0]


def test_a_thread_that_had_it_on_keeps_it_on_and_an_error_restores_it():
    torch.set_flush_denormal(True)
    try:
        with flush_denormal():
            pass
        assert denormals_flushed()
    finally:
        torch.set_flush_denormal(False)
    with pytest.raises(RuntimeError):
        with flush_denormal():
            raise RuntimeError("inside")
    assert not denormals_flushed()
