"""Widgets that more than one page draws the same way."""

from __future__ import annotations

import streamlit as st

from core.io.tables import csv_column_values
from core.limits import LIMITS
from core.tasks import Task
from ui.state import PageChoices
from ui.text import plain


def length_slider(choices: PageChoices, task: Task, name: str = "len") -> int:
    """The task's length slider, bound to choice `name` (0 means the task's default length);
    returns the length chosen. Each task has its own range and unit, so each gets its own
    widget key: switching tasks never carries one task's length into another's range. A task
    of fixed length shows its length instead."""
    length = task.seq_len
    if length.fixed or length.min == length.max:
        st.markdown(f"**Length**  \nfixed at {length.default} {length.unit}")
        choices.values[name] = 0
        return length.default
    high = min(length.max, LIMITS.max_seq_len)
    key = choices.widget_key(f"{name}_{task.name}")
    if key not in st.session_state:
        stored = choices.values[name] or length.default
        start = stored if length.min <= stored <= high else length.default
        value = st.slider(f"Length ({length.unit})", length.min, high, start, key=key)
    else:
        value = st.slider(f"Length ({length.unit})", length.min, high, key=key)
    choices.values[name] = 0 if value == length.default else value
    return value


def csv_column_picker(page: str) -> list[float] | None:
    """A CSV upload and a choice of its numeric columns; the chosen column's numbers, or None
    (no file yet, or a file that cannot be read: said in a message)."""
    file = st.file_uploader("CSV file", type=["csv"], key=f"{page}_csv_file")
    if file is None:
        return None
    try:
        columns = csv_column_values(file.getvalue())[1]
        column = st.selectbox("Column", columns, index=len(columns) - 1, key=f"{page}_csv_col")
        return csv_column_values(file.getvalue(), column)[0]
    except ValueError as err:
        st.error(plain(err))
        return None


# PageChoices.widget starts a widget that has options at `index=`; these two Streamlit widgets
# take `value=` / `default=` instead.

def select_slider(label: str, options: list, index: int | None = None, **kwargs):
    """st.select_slider, started at options[index] when PageChoices asks."""
    if index is not None:
        kwargs["value"] = options[index]
    return st.select_slider(label, options, **kwargs)


def segmented_control(label: str, options: list, index: int | None = None, **kwargs):
    """A required st.segmented_control (one option always chosen), started at options[index]."""
    if index is not None:
        kwargs["default"] = options[index]
    return st.segmented_control(label, options, required=True, **kwargs)


def answer_metric(label: str, result) -> None:
    """A model's answer (an Explore `Result`), marked against the example's target: right in
    green, wrong in red, a regression's "off by ..." in grey; nothing when the target is not
    known (typed input)."""
    st.metric(label, result.prediction, result.judgement or None, delta_arrow="off",
              delta_color={True: "green", False: "red"}.get(result.right, "gray"))
