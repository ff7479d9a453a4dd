"""The short version of benchmarks/load_test.py: a few browser sessions at once, every action of
the cycle (Explore, a change, Compare, a training run) done by each, no error, bounded memory."""

from __future__ import annotations

import sys

import pytest

from harness import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import load_test  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SESSIONS = 3


def test_a_few_sessions_at_once_get_through_every_page_without_an_error():
    # No time to fill: the sessions start together and each does one whole cycle, all that
    # is asserted below (more cycles in the time left only repeated the same actions).
    report = load_test.run_load(SESSIONS, seconds=0, log_name="load_test-suite.log",
                                min_cycles=1)
    print(report.table())
    assert report.errors == []
    assert report.peak_bytes < load_test.MEMORY_TARGET_BYTES
    # every session finished at least one whole cycle, training included
    for action, times in report.times.items():
        assert len(times) >= SESSIONS, (action, len(times))
