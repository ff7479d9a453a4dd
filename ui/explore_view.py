"""The Explore page's lines above its figure: what is traced, what went wrong, the answer
against the target; the one line a presentation keeps of them; and the sidebar's "Look at"
choices of what the figure draws of a trace."""

from __future__ import annotations

import streamlit as st

from core.cells import CELLS
from core.figures.explore import overflow_note
from core.views import explore as ex
from ui.animation import step_buttons
from ui.presentation import present_button
from ui.state import PageChoices
from ui.text import plain
from ui.widgets import answer_metric


def traced_what(task, choice, result) -> str:
    """"Agreement · LSTM · shipped trained LSTM · held-out accuracy …" (a user's own module
    leaves the task out: its target is not theirs)."""
    cell_name = CELLS[choice.cell].long_name if choice.model is not None else "your module"
    return " · ".join([*([] if result.own else [task.title]), cell_name, plain(choice.label)])


def result_header(task, choice, result, state, error) -> None:
    """The caption, any message, the answer next to the target and baseline, the notes on what
    the model read, and the Present button."""
    st.caption(traced_what(task, choice, result))  # a file name, maybe
    if line := ex.input_line(result.input_sequence):  # the row shows one word at a time
        st.caption(plain(line))
    if error is not None:
        error.show()
    if choice.note:  # untrained, or a file that said what it is against the visitor's choice
        st.warning(plain(choice.note))
    if overflowed := overflow_note(result.trace, state.layer, state.direction):
        st.warning(plain(overflowed))  # the figure marks it too: inf and NaN are not drawn
    if result.example.unknown:
        st.info("Not in the vocabulary (read as <unk>): "
                + plain(", ".join(result.example.unknown[:20])))
    if result.own:  # the user's head's answer; the task's target and baseline are not theirs
        answer_metric("Your head's answer", result)
    else:
        answer, target, baseline = st.columns(3)
        with answer:
            answer_metric("Model's answer", result)
        target.metric("Target", result.target)
        baseline.markdown(f"**Trivial baseline**  \n{task.baseline_name}")
    if result.fed_note:
        st.caption(plain(result.fed_note))
    if result.marks_note:
        st.info(plain(result.marks_note))
    present_button("explore")


def presented_header(task, choice, result) -> None:
    """A presentation's one line over the figure: what is traced, its answer and the target."""
    answer = f"answer {plain(result.prediction)}"
    if result.judgement:
        answer += f" ({plain(result.judgement)})"
    target = "" if result.own else f" · target {plain(result.target)}"
    st.markdown(f"**{traced_what(task, choice, result)}** · {answer}{target}")


def look_at(choices: PageChoices, tr) -> ex.ExploreState:
    """The whole state, with the "Look at" choices (layer, direction, units, start step) as
    their widgets hold them and within what the trace `tr` has. Read before those widgets are
    drawn: the page sends its figure first."""
    choices.held("layer", "direction", "pick", "unit", "t")
    choices.clamp(layer=tr.num_layers - 1, direction=tr.num_directions - 1,
                  unit=tr.hidden_size - 1, t=tr.seq_len - 1)
    return choices.state()


def look_at_sidebar(choices: PageChoices, tr) -> None:
    """The "Look at" widgets: which layer, direction, units and start step to draw."""
    pick = choices.widget
    st.header("Look at")
    if tr.num_layers > 1:
        pick(st.selectbox, "Layer", "layer", range(tr.num_layers))
    if tr.num_directions > 1:
        pick(st.radio, "Direction", "direction", [0, 1], ("forward", "reverse").__getitem__,
             horizontal=True)
    pick(st.radio, "Units", "pick", ex.PICKS, horizontal=True)
    pick(st.number_input, "Unit (diagram and equations)", "unit", min_value=0,
         max_value=tr.hidden_size - 1)
    pick(st.number_input, "Start at step t", "t", min_value=0, max_value=tr.seq_len - 1)
    step_buttons(choices.widget_key("t"), "explore")
