"""Compare: the same task and input through the RNN, LSTM and GRU, side by side, measured live;
any column may hold the visitor's own upload instead, and where every column's model kept its
training history a "Training step" slider takes them all back along their training."""

from __future__ import annotations

import streamlit as st

from core import claims
from core.content import caption
from core.figures.compare import compare_figure
from core.tasks import ALL_TASKS, get_task
from core.views import compare as cmp
from core.views.models import NETWORK_LABELS, Upload, networks
from ui.charts import animated_chart, chart
from ui.compare_upload import (
    DECAY_TITLE, accuracies, accuracy_figure, column_heads, decay_figure, measures, model_keys,
    model_pickers, presented_still, training_step_slider, uploaded_models,
)
from ui.compute import keep_last_good, session_memo
from ui.content import explain
from ui.presentation import (
    draws_sidebar, hide_chrome, present_button, present_figure, present_still, presented_stage,
)
from ui.text import plain
from ui.state import OPEN_IN_COMPARE, TRAINED, PageChoices
from ui.widgets import length_slider

st.set_page_config(layout="wide")  # as app.py: three columns need the width

choices = PageChoices(cmp.CompareState, "compare")
trained = st.session_state.get(TRAINED) or {}
for opened in st.session_state.pop(OPEN_IN_COMPARE, None) or []:  # from Train or Search
    if opened in trained:  # its task, and its model in its cell's column
        choices.set(task=trained[opened].task, **{trained[opened].cell: opened})


def choices_sidebar() -> dict[str, Upload]:
    """Task, input and each column's model; returns the columns' uploads."""
    pick, values = choices.widget, choices.values
    st.header("Choices")
    pick(st.selectbox, "Task", "task", ALL_TASKS, lambda n: ALL_TASKS[n].title)
    task = get_task(values["task"])
    pick(st.radio, "Input", "input", cmp.INPUTS, cmp.INPUT_LABELS.get)
    if values["input"] == "sample":
        pick(st.number_input, "Sample seed", "sample", min_value=0, max_value=cmp.ex.MAX_SEED)
        length_slider(choices, task)
    else:
        pick(st.text_area, "Your input", "text", max_chars=2000,
             placeholder=cmp.EXAMPLE_TEXT.get(task.name, ""),
             help="The same input goes to all three models. " + task.description)
    st.header("Models")
    if len(offered := networks(task.name)) > 1:
        pick(st.radio, "Network (shipped models)", "net", offered, NETWORK_LABELS.get)
    uploads = model_pickers(choices, task.name, trained)
    training_step_slider(choices, cmp.histories(choices.state(), trained, uploads))
    return uploads


@st.cache_resource(max_entries=32, show_spinner="Running and measuring the three models…")
def shipped_comparison(state: cmp.CompareState) -> cmp.Comparison:
    """Shipped models only (at a training step too), the same for every visitor: cached once
    per input and step for the process."""
    chosen = cmp.at_snapshots(cmp.pick_models(state.task, network=state.net),
                              cmp.histories(state), state.snap)
    return cmp.compare(state, chosen, cmp.make_example(state))


def comparison_for(state: cmp.CompareState, uploads: dict[str, Upload]) -> cmp.Comparison:
    """A model trained in this session or uploaded is the visitor's own: never in the shared
    cache."""
    chosen = cmp.pick_models(state.task, trained, state.picks(), uploaded_models(uploads),
                             state.net)
    chosen = cmp.at_snapshots(chosen, cmp.histories(state, trained, uploads), state.snap)
    picked = cmp.resolved(state, chosen)
    if all(m.source == "shipped" for m in chosen.values()):
        return shipped_comparison(picked)
    with st.spinner("Running and measuring the three models…"):
        return session_memo("compare", (picked, model_keys(chosen, uploads)),
                            lambda: cmp.compare(picked, chosen, cmp.make_example(picked)))


sidebar = draws_sidebar(choices)
with st.sidebar:
    uploads = choices_sidebar() if sidebar else {}
wanted = choices.state()
comparison, error = keep_last_good("compare", lambda: comparison_for(wanted, uploads))
if comparison is None:  # nothing good yet (a bad link): the task's default view under the message
    comparison = keep_last_good("compare", lambda: comparison_for(cmp.CompareState(
        task=wanted.task), {}))[0] or comparison_for(cmp.CompareState(), {})
T = comparison.seq_len
choices.clamp(t=T - 1)
if sidebar:
    st.sidebar.header("Time")
    choices.widget(st.sidebar.number_input, "Start the cursor at step t", "t", min_value=0,
                   max_value=T - 1)
t0 = choices.values["t"]
if error is None:
    choices.publish(choices.state())

task, cells = get_task(comparison.task), comparison.cells
steps = cmp.column_steps(cmp.histories(wanted, trained, uploads), wanted.snap) \
    if error is None else {}  # a last good view's steps are not known here: its labels say
stage = presented_stage()  # a presentation: the figure alone, for a projector
input_line = (f"**Input** ({comparison.input_label}): "  # a presentation's in one or two lines
              f"{plain(comparison.input_text(160 if stage else 600))}  \n**Target**: "
              f"{plain(comparison.target)}")
if stage:
    hide_chrome()
    if still := presented_still(wanted.show, cells, task.name, stage):  # a chart from below
        present_still(f"**{task.title}**: {still.title} · RNN, LSTM and GRU", still.figure,
                      still.key, still.stage)
    st.markdown(f"**{task.title}**: RNN, LSTM and GRU on one input · {input_line}")
else:
    st.title("gatescope · Compare")
    st.caption(f"{task.title}: the same input through a vanilla RNN, an LSTM and a GRU. "
               f"{task.description}")
    if error is not None:
        error.show()
    st.markdown(f"{input_line}  \n{plain(task.fed_note(comparison.example))}")
    accuracy = accuracies(cells, task.name) if task.name in cmp.CHART_TASKS else None
    column_heads(comparison, accuracy, cmp.waiting_for_upload(wanted, uploads), steps)
    present_button("compare")

fig = compare_figure({cell: c.result.trace for cell, c in cells.items()},
                     comparison.input_sequence, t0=t0,
                     titles={cell: title for cell, c in cells.items()
                             if (title := cmp.column_title(cell, c.choice, steps.get(cell)))},
                     kinds={cell: c.choice.cell for cell, c in cells.items()},
                     handoff=comparison.handoff, stage=stage)
if stage:  # the figure alone, scaled to the window; the page ends there
    present_figure(fig, "compare_chart", stage)
    st.stop()
animated_chart(fig, "compare_chart")
st.caption(caption("compare", "player", objective_note=comparison.objective_note))

measures(comparison)  # size, speed and memory, measured now on this server

st.subheader(DECAY_TITLE)
chart(decay_figure(cells), key="decay_chart")
if comparison.loss_at_every_step:
    st.info(caption("compare", "loss_at_every_step"))
st.caption(cmp.gradient_note(cells))

if accuracy:
    st.subheader(cmp.DISTANCE_WORDS[task.name][0])
    chart(accuracy_figure(task.name, accuracy), key="accuracy_chart")
    st.caption(cmp.DISTANCE_NOTES[task.name])
explain("compare", lessons=claims.lessons("compare"),
        **cmp.explanation_values(cells, comparison.task))
