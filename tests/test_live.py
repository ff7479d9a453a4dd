"""ui/live.py: the one live-training panel of the Train page and the Gradient lab. A page whose
training session has ended reruns once, however often its polling fragment still runs (late
timer ticks run the fragment of the run that started them); each ended run gets one message;
the charts get every run's series by label. (The panel itself runs in the page tests.)"""

from __future__ import annotations

from types import SimpleNamespace

import ui.live
from core.training.loop import TrainConfig
from core.training.session import RunProgress
from core.views.train import baseline_line


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


def progress(label="adding · LSTM · 10:00:00", result=None, error=None, cancelled=False,
             config=None) -> RunProgress:
    return RunProgress(label, "adding", "lstm", config or TrainConfig(max_steps=40), [], result,
                       error, cancelled=cancelled)


def finished(status="finished", steps=1234, seconds=2.25):
    return SimpleNamespace(status=status, steps=steps, seconds=seconds)


def test_each_ended_run_gets_one_message_in_the_pages_words():
    def verdict(result):
        return "success", f"Learned ({result.status})."

    assert ui.live.run_message(progress(), verdict) is None  # still training: the bar says so
    kind, text = ui.live.run_message(progress(result=finished()), verdict)
    assert (kind, text) == ("success", "**adding · LSTM · 10:00:00** · finished, 1,234 steps in "
                                       "2.2 s. Learned (finished).")
    kind, text = ui.live.run_message(progress(error="out of memory"), verdict)
    assert (kind, text) == ("error", "**adding · LSTM · 10:00:00** failed: out of memory")
    kind, text = ui.live.run_message(progress(cancelled=True), verdict)
    assert kind == "info" and "stopped before it began to train: nothing was trained" in text


def test_the_charts_get_every_runs_series_and_the_baseline_of_their_held_out_set():
    config = TrainConfig(max_steps=40, heldout_every=10, seq_len=20)
    runs = ui.live.Runs.of([progress("a", config=config),
                            progress("b", result=finished("stopped"), config=config)])
    assert runs.events == {"a": [], "b": []}
    assert runs.ended == {"a": "running", "b": "stopped"}
    assert runs.heldout_every == {"a": 10, "b": 10}
    value, name = runs.baseline()
    assert (value, name) == baseline_line("adding", config) and name == "always predict 1"
    assert 0.1 < value < 0.25  # MSE of always predicting 1: 1/6 in expectation


def test_a_session_started_outside_a_served_app_is_not_watched():
    assert ui.live.owner_alive() is None  # no Streamlit server runs this test


def test_the_owner_of_a_served_session_is_its_browser_tab(monkeypatch):
    import streamlit.runtime
    import streamlit.runtime.scriptrunner

    asked = []

    class Runtime:
        def is_active_session(self, session_id):
            asked.append(session_id)
            return session_id == "tab-1"

    monkeypatch.setattr(streamlit.runtime, "exists", lambda: True)
    monkeypatch.setattr(streamlit.runtime, "get_instance", lambda: Runtime())
    monkeypatch.setattr(streamlit.runtime.scriptrunner, "get_script_run_ctx",
                        lambda suppress_warning=False: SimpleNamespace(session_id="tab-1"))
    alive = ui.live.owner_alive()
    assert alive() is True and asked == ["tab-1"]  # asked later, from the watch's thread
    monkeypatch.setattr(streamlit.runtime.scriptrunner, "get_script_run_ctx",
                        lambda suppress_warning=False: SimpleNamespace(session_id="tab-2"))
    assert ui.live.owner_alive()() is False
