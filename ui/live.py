"""Live progress of a background training session on a page.

A page draws the session's progress in a fragment that polls it (`st.fragment(run_every=...)`)
while it runs, and reruns the whole page once it has ended: the buttons come back, the results
appear below, and polling stops.
"""

from __future__ import annotations

import streamlit as st


def rerun_page_once_when_done(session, key: str) -> None:
    """Call at the end of the polling fragment: rerun the whole page once `session` has ended,
    once per session (`key` is the session-state entry that remembers which one).

    Once, not on every poll: the browser's poll timer can still send a tick or two after the
    page's rerun has begun (a busy browser sends them late), and Streamlit runs such a tick
    with the fragment of the run that started the timer, which still thinks the session is
    running. Rerunning the page on each of those reran the whole page once a second for as long
    as late ticks kept coming (seen in the server's log with twenty visitors).
    """
    if session.done and st.session_state.get(key) is not session:
        st.session_state[key] = session
        st.rerun()
