"""Live training on a page: the start and Stop buttons and one panel that shows the progress.

The Train page and the Gradient lab both train in the background (core.training.session: each
run in a child process) and draw the same panel, each with its own charts and verdict:

    live.start_stop("train", "Train", lambda: state.runs())   # starts a TrainingSession
    live.panel("train", live.LiveView(charts=..., verdict=describe_result, idle="Press..."))

The panel draws in a fragment that polls the session (`st.fragment(run_every=POLL_SECONDS)`)
while it runs, and reruns the whole page once it has ended: the buttons come back, the results
appear below, and polling stops. A page keeps its session under session_key(page).

A session knows whether its browser tab is still connected (`owner_alive`, from Streamlit's
runtime): the server stops the runs of a tab that has been gone for a short while
(core.sharing.OWNER_WATCH), so they free their training slots. A tab that reconnects sooner
(Streamlit keeps a disconnected session for a reconnect) finds its runs still going; later, it
finds them stopped with what they learned. A reload is a new session to Streamlit: the old
one's runs stop after the grace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import plotly.graph_objects as go
import streamlit as st

from core.training.loop import ProgressEvent, TrainResult
from core.training.session import RunProgress, RunSpec, TrainingSession, describe_result
from core.views.train import baseline_line
from ui.charts import chart
from ui.state import page_key
from ui.text import plain

# How often a running session's progress is redrawn: each redraw is a script run on the shared
# server (figures built and sent), so not more often than this.
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Runs:
    """What the live charts draw, by run label: events so far, how each ended, and how often
    each evaluates on its held-out set; `snapshot` has the rest (cells, configs)."""

    snapshot: list[RunProgress]
    events: dict[str, list[ProgressEvent]]
    ended: dict[str, str]
    heldout_every: dict[str, int]

    @classmethod
    def of(cls, snapshot: list[RunProgress]) -> "Runs":
        return cls(snapshot, {p.label: p.events for p in snapshot},
                   {p.label: p.status for p in snapshot},
                   {p.label: p.config.heldout_every for p in snapshot})

    def baseline(self) -> tuple[float, str]:
        """(value, name) of the task's trivial baseline on the runs' held-out set (runs started
        together share their task, seed and length, so their held-out set)."""
        first = self.snapshot[0]
        return baseline_line(first.task, first.config)


@dataclass(frozen=True)
class LiveView:
    """What one page's panel shows: its charts (chart key -> figure, two to a row), the
    verdict on a finished run ((st message kind, sentence)) and the line shown before any."""

    charts: Callable[[Runs], dict[str, go.Figure]]
    idle: str
    verdict: Callable[[TrainResult], tuple[str, str]] = describe_result


def session_key(page: str) -> str:
    """Where `page` keeps its current (or last) TrainingSession."""
    return page_key(page, "session")


def session_of(page: str) -> TrainingSession | None:
    """The page's current (or last) training session."""
    return st.session_state.get(session_key(page))


def is_running(page: str) -> bool:
    session = session_of(page)
    return session is not None and session.running


def owner_alive() -> Callable[[], bool] | None:
    """Whether the browser tab running this script is still connected, asked later from any
    thread; None where no Streamlit server runs the script (AppTest, a plain script)."""
    try:
        from streamlit import runtime
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        context = get_script_run_ctx(suppress_warning=True)
        if context is None or not runtime.exists():
            return None
        server, session_id = runtime.get_instance(), context.session_id
    except Exception:  # an older or newer Streamlit without these: no watch, nothing breaks
        return None
    return lambda: server.is_active_session(session_id)


def start_stop(page: str, label: str, runs: Callable[[], list[RunSpec]]) -> None:
    """The start button (`label`) and Stop. Start trains what `runs()` gives in a new session;
    its ValueError (LimitError included: the message names the limit) becomes a message."""
    busy = is_running(page)
    start, stop, _ = st.columns([1, 1, 5])
    if start.button(label, type="primary", disabled=busy, width="stretch"):
        try:
            st.session_state[session_key(page)] = TrainingSession(
                runs(), owner_alive=owner_alive()).start()
            busy = True
        except ValueError as error:
            st.error(f"Cannot start training: {plain(error)}")
    stop.button("Stop", disabled=not busy, on_click=stop_session, args=(page,), width="stretch")


def stop_session(page: str) -> None:
    """Ask the page's session to stop: each run keeps what it learned."""
    session = session_of(page)
    if session is not None:
        session.stop()


def panel(page: str, view: LiveView) -> None:
    """The page's session, live: a progress bar per run, the charts, a message per ended run.
    Polls only while the session runs."""
    polling = is_running(page)
    st.fragment(run_every=POLL_SECONDS if polling else None)(_draw)(page, view, polling)


def _draw(page: str, view: LiveView, polling: bool) -> None:
    session = session_of(page)
    if session is None:
        st.info(view.idle)
        return
    snapshot = session.snapshot()
    for note in session.notes:  # what planning changed: the batch, the held-out set
        st.caption(plain(note))
    for progress in snapshot:
        st.progress(progress.fraction, text=progress.progress_text)
    charts = view.charts(Runs.of(snapshot))
    columns = st.columns(2)
    for index, (key, figure) in enumerate(charts.items()):
        with columns[index % 2]:
            chart(figure, width="stretch", key=key)
    # the messages take the free place beside the last chart, else a row of their own
    with columns[1] if len(charts) % 2 else st.container():
        for progress in snapshot:
            message = run_message(progress, view.verdict)
            if message is not None:
                getattr(st, message[0])(message[1])
    if polling:  # results below, buttons back, no more polling
        rerun_page_once_when_done(session, page_key(page, "final_rerun"))


def run_message(progress: RunProgress, verdict: Callable[[TrainResult], tuple[str, str]]
                ) -> tuple[str, str] | None:
    """(st message kind, Markdown) for a run that has ended; None while it trains or waits."""
    label = f"**{progress.label}**"
    if progress.error is not None:
        return "error", f"{label} failed: {progress.error}"
    if progress.cancelled:
        return "info", f"{label} was stopped before it began to train: nothing was trained."
    result = progress.result
    if result is None:
        return None
    kind, sentence = verdict(result)
    return kind, (f"{label} · {result.status}, {result.steps:,} steps in {result.seconds:.1f} s. "
                  f"{sentence}")


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
