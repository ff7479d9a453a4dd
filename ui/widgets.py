"""Widgets that more than one page draws the same way."""

from __future__ import annotations

import hashlib

import streamlit as st

from core.io.tables import CSV_RULES, CsvChoice, CsvTable, read_table
from core.limits import LIMITS
from core.tasks import Task
from core.cells import CELLS
from core.views.models import FINAL, NETWORK_LABELS, networks
from ui.state import PageChoices, page_key
from ui.text import plain


def cell_and_network(choices: PageChoices) -> None:
    """The cell, and the network where the task's zoo ships more than one (a bidirectional
    or a stacked one beside the one-layer, one-direction model)."""
    choices.widget(st.radio, "Cell", "cell", CELLS, lambda c: CELLS[c].long_name,
                   horizontal=True)
    if len(offered := networks(choices.values["task"])) > 1:
        choices.widget(st.radio, "Network", "net", offered, NETWORK_LABELS.get)


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


def csv_column_picker(page: str) -> CsvChoice | None:
    """A CSV upload, the rules it is read by, and a choice of its columns of numbers.

    None with no file; else the chosen column's numbers, or why there are none (`problem`),
    which the page says where it says every input problem (the file came: "upload a file" would
    be wrong). The file is read once, not on every rerun: the session keeps its `CsvTable`
    (the columns of numbers, at most 2,001 values each; never the file), for the upload that
    is there now, under its sha256, which the choice carries as the key of its trace."""
    file = st.file_uploader("CSV file", type=["csv"], key=f"{page}_csv_file")
    st.caption(plain(CSV_RULES))
    kept = page_key(page, "csv_table")  # (upload id, sha256, CsvTable or why it is refused)
    if file is None:
        st.session_state.pop(kept, None)  # the file is gone: so is what was read of it
        return None
    upload_id = (getattr(file, "file_id", None), file.name, file.size)
    if st.session_state.get(kept, (None,))[0] != upload_id:
        st.session_state.pop(kept, None)  # let the old table go before reading the new file
        st.session_state.pop(f"{page}_csv_col", None)  # a new file starts at its last column
        data = file.getvalue()
        try:
            table: CsvTable | str = read_table(data)
        except ValueError as err:
            table = str(err)
        st.session_state[kept] = (upload_id, hashlib.sha256(data).hexdigest(), table)
        del data
    _, digest, table = st.session_state[kept]
    if isinstance(table, str):
        return CsvChoice((digest, -1), "", problem=table)
    names = [table.names[i] for i in table.numeric]
    label = {i: name if names.count(name) == 1 else f"{name} (column {i + 1})"
             for i, name in zip(table.numeric, names)}
    column = st.selectbox("Column", table.numeric, index=len(table.numeric) - 1,
                          format_func=label.get, key=f"{page}_csv_col")
    said = f"Read as {table.reading}."
    if table.refused:  # a column of numbers left out: say why, or its owner looks for it
        said += " Not offered: " + " ".join(table.left_out[:min(table.refused, 3)])
    st.caption(plain(said))
    return table.choice(column)


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


# Streamlit cuts a metric's label, value and badge with an ellipsis where its column is narrow
# ("1.5 st…", "sum ≈ 0.7…", "baseline 0.089: better, also beyond 5 lett…" at 1280x720 or 150%
# zoom): a number cut short reads as another number. They wrap onto a second line instead.
_WRAPPING_METRICS_CSS = """<style>
[data-testid="stMetricLabel"] *, [data-testid="stMetricValue"], [data-testid="stMetricValue"] *,
[data-testid="stMetricDelta"], [data-testid="stMetricDelta"] * {
  white-space: normal !important; text-overflow: clip !important; overflow: visible !important;
  overflow-wrap: break-word; height: auto !important;
}
</style>"""


def wrapping_metrics() -> None:
    """Let every metric on the page wrap rather than be cut (a style only: it takes no space)."""
    st.html(_WRAPPING_METRICS_CSS)


def answer_metric(label: str, result) -> None:
    """A model's answer (an Explore `Result`), marked against the example's target: right in
    green, wrong in red, a regression's "off by ..." in grey; nothing when the target is not
    known (typed input)."""
    wrapping_metrics()
    st.metric(label, result.prediction, result.judgement or None, delta_arrow="off",
              delta_color={True: "green", False: "red"}.get(result.right, "gray"))


def history_slider(choices, steps: list[int]) -> None:
    """The step of the model's training history to look at (`steps`, from its initialisation
    to the model as trained, which is the default and the last position)."""
    indices = [*range(len(steps) - 1), FINAL]
    key = choices.widget_key("snap")
    if st.session_state.get(key) not in indices:  # another model's history, or none yet
        st.session_state[key] = choices.values["snap"] if choices.values["snap"] in indices \
            else FINAL
    choices.values["snap"] = st.select_slider(
        "Training step: the model as it learned", indices, key=key,
        format_func=lambda index: f"{steps[index]:,}",
        help="Its weights at a few steps of its training, from the initialisation (step 0) to "
             "the model as trained. Its held-out score is shown where it was measured at "
             "that step.")
