"""ui/live.py: a page whose training session has ended reruns once, however often its polling
fragment still runs (late timer ticks run the fragment of the run that started them)."""

from __future__ import annotations

from types import SimpleNamespace

import ui.live


class FakeStreamlit:
    """Just what rerun_page_once_when_done touches. (Not AppTest.from_function: it leaves its
    throwaway script as the process's __main__, which training processes would then run.)"""

    def __init__(self):
        self.session_state: dict = {}
        self.reruns = 0

    def rerun(self):
        self.reruns += 1


def test_the_page_reruns_once_per_finished_session_not_on_every_poll(monkeypatch):
    st = FakeStreamlit()
    monkeypatch.setattr(ui.live, "st", st)
    running, finished = SimpleNamespace(done=False), SimpleNamespace(done=True)
    ui.live.rerun_page_once_when_done(running, "final rerun")
    assert st.reruns == 0  # still running: the fragment just polls
    for _ in range(4):  # a finished session polled again and again: one rerun in all
        ui.live.rerun_page_once_when_done(finished, "final rerun")
    assert st.reruns == 1
    ui.live.rerun_page_once_when_done(SimpleNamespace(done=True), "final rerun")
    assert st.reruns == 2  # the next session that ends gets its own rerun
