"""ui/live.py: a page whose training session has ended reruns once, however often its polling
fragment still runs (late timer ticks run the fragment of the run that started them)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def page_that_polls_a_finished_session():
    import streamlit as st

    from ui.live import rerun_page_once_when_done

    class FinishedSession:
        done = True

    if st.session_state.get("new session"):
        st.session_state["session"] = FinishedSession()
        st.session_state["new session"] = False
    session = st.session_state.setdefault("session", FinishedSession())
    st.session_state["runs"] = st.session_state.get("runs", 0) + 1
    rerun_page_once_when_done(session, "final rerun")


def test_the_page_reruns_once_per_finished_session_not_on_every_poll():
    at = AppTest.from_function(page_that_polls_a_finished_session).run()
    assert not at.exception
    assert at.session_state["runs"] == 2  # the run, then the one rerun it asked for
    for _ in range(3):  # later polls of the same finished session: no more reruns
        at.run()
    assert at.session_state["runs"] == 5
    at.session_state["new session"] = True  # another session ends: one rerun for it
    at.run()
    assert at.session_state["runs"] == 7
