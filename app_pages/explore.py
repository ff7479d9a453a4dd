"""Explore: pick a cell, task and input; watch states, gates and gradients animate."""

from __future__ import annotations

import streamlit as st

from core.content import caption
from core.figures.explore import explore_figure
from core.io.tables import CsvChoice
from core.tasks import ALL_TASKS, get_task
from core.views import explore as ex
from core.views.models import SOURCE_LABELS, Upload, session_labels
from ui.animation import autoplay_once
from ui.charts import animated_chart
from ui.compute import keep_last_good
from ui.content import explain
from ui.downloads import trace_downloads
from ui.explore_view import look_at, look_at_sidebar, presented_header, result_header
from ui.hidden import scroll_to_top
from ui.presentation import (
    draws_sidebar, hide_chrome, present_figure, presented_stage, presenting,
)
from ui.state import OPEN_IN_EXPLORE, TRAINED, PageChoices, page_key
from ui.traces import explore_trace
from ui.own_input import own_model_input
from ui.upload import weights_upload
from ui.widgets import cell_and_network, csv_column_picker, history_slider, length_slider


def model_and_input_sidebar(choices: PageChoices, trained_here: dict
                            ) -> tuple[Upload | None, CsvChoice | None, ex.OwnInput | None]:
    """Task, model and input choices; returns the upload, the CSV column and what a user's own
    model is fed, if any."""
    pick, values = choices.widget, choices.values
    st.header("Choices")
    pick(st.selectbox, "Task", "task", ALL_TASKS, lambda n: ALL_TASKS[n].title)
    runs = session_labels(values["task"], trained_here)
    pick(st.radio, "Model", "source", [s for s in ex.sources(values["task"]) if s != "session"
                                        or runs or values["source"] == s], SOURCE_LABELS.get)
    upload = csv = own = None
    if values["source"] in ("shipped", "random"):
        cell_and_network(choices)
    if values["source"] == "random":
        pick(st.number_input, "Weights seed", "seed", min_value=0, max_value=ex.MAX_SEED)
    elif values["source"] == "session" and runs:
        pick(st.selectbox, "Trained in this session", "run", runs)
        values["cell"] = trained_here[values["run"]].cell
    if steps := ex.history_steps(choices.state(), trained_here):
        history_slider(choices, steps)
    if values["source"] == "upload":
        upload, user = weights_upload()
        own = own_model_input(user, choices)  # None for no file, or gatescope's own download
        if upload is not None and (user is None or own is not None and own.kind != "task"):
            return upload, None, own  # its own input (or an unreadable file: no input yet)
    task = get_task(values["task"])
    pick(st.radio, "Input", "input", [m for m in ex.INPUTS if m != "csv" or task.name == "airline"],
         ex.INPUT_LABELS.get)
    if values["input"] == "sample":
        pick(st.number_input, "Sample seed", "sample", min_value=0, max_value=ex.MAX_SEED)
        length_slider(choices, task)
    elif values["input"] == "text":
        pick(st.text_area, "Your input", "text", max_chars=2000,
             help="Words for the word tasks; numbers for adding / airline (see the task's "
                  "description).")
    else:
        csv = csv_column_picker("explore")
    return upload, csv, own


# A fragment: a choice made in it (its sidebar's widgets are its own) reruns it alone, not the
# whole app: app.py's routing, this title and the explanations stay as they are, and the browser
# renders only what it sends (benchmarks/ui_pair.py: a change's figure arrives ~10 % sooner).
@st.fragment
def explorer() -> None:
    """The page's choices, figure, the lines above it and the downloads below it."""
    choices = PageChoices(ex.ExploreState, "explore")
    trained_here = st.session_state.get(TRAINED, {})
    opened = st.session_state.pop(OPEN_IN_EXPLORE, None)
    if opened in trained_here:  # "Open in Explore" on the Train page
        choices.set(source="session", run=opened, task=trained_here[opened].task)
        scroll_to_top("explore_opened")
    sidebar = draws_sidebar(choices)
    with st.sidebar:
        upload, csv, own = (model_and_input_sidebar(choices, trained_here) if sidebar
                            else (None, None, None))
        look_at_place = st.container()
    header_place = st.container()  # the lines above the figure
    wanted = choices.state().traced()
    computed, error = keep_last_good("explore", lambda: (  # with what it was fed: the downloads
        wanted, upload, own, *explore_trace(wanted, upload, csv, trained_here, own)))
    if computed is None:  # nothing good yet in this session (a bad link, say): the message alone
        error.show_alone()
        st.stop()
    traced, traced_upload, fed, choice, result = computed
    state = look_at(choices, result.trace)
    units, unit = ex.picked_units(state, result.trace)
    task = get_task(traced.task)
    stage = presented_stage()
    fig = explore_figure(result.trace, result.input_sequence, layer=state.layer,
                         direction=state.direction, units=units, unit=unit, t0=state.t,
                         nonlinearity=getattr(choice.rnn, "nonlinearity", "tanh"),
                         handoff=result.handoff, stage=stage)
    if stage:  # the figure alone, scaled to the window, for a projector
        hide_chrome()
        present_figure(fig, "explore_chart", stage)
    else:
        animated_chart(fig, "explore_chart")
    # Sent after the figure, into their places before it: a change's figure reaches the
    # browser sooner and is drawn before them.
    if sidebar:
        with look_at_place:
            look_at_sidebar(choices, result.trace)
    if error is None:
        choices.publish(state)
    with header_place:
        if stage:
            presented_header(task, choice, result)
        else:
            result_header(task, choice, result, state, error)
    if stage:  # the presented page ends with its figure
        st.stop()
    if not choices.from_link:  # a prepared link opens at its step t; only the bare landing plays
        autoplay_once("explore_chart", page_key("explore", "autoplayed"))
    st.caption(caption("explore", "player", objective_note=result.objective_note))
    trace_downloads(result, state, choice, fig, traced_upload, fed)


if not presenting():
    st.title("gatescope · Explore")
explorer()
explain("explore")
