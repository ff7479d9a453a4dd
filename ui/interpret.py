"""Streamlit glue of the Interpretability lab: where its measurements are kept, the last good
view of each section, the measurements that run on a button, and opening a unit in Explore.

A shipped model's measurements are the same for every visitor: they go into one cache of the
process (`st.cache_resource`, bounded). A model trained in this session is the visitor's own:
its measurements stay in the session (`session_memo`, the newest of each kind).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import streamlit as st
from streamlit.errors import StreamlitAPIException

from core.cells import CELLS
from core.interpret import builtin_names
from core.tasks import TASKS
from core.views import interpret as lab_view
from core.views.explore import ExploreState
from core.views.models import FINAL, from_session, session_labels, shipped
from ui.compute import Problem, keep_last_good, session_memo
from ui.state import page_key
from ui.widgets import select_slider

T = TypeVar("T")
PAGE = "interpret"


@st.cache_resource(max_entries=3, show_spinner=False)
def _shipped_lab(task: str, cell: str, n: int) -> lab_view.Lab:
    """A shipped model measured on n held-out sequences: the same for every visitor. Few
    entries: a lab holds every state and gate of its batch (about 22 MB at 500 sentences)."""
    return lab_view.measure(task, shipped(task, cell), n)


@st.cache_resource(max_entries=64, show_spinner=False)
def _shared(kind: str, key: tuple, _compute: Callable[[], T]) -> T:
    """A measurement on a shipped model (rankings, interventions, sweeps), keyed by what
    decides it; `_compute` is not part of the key."""
    return _compute()


def measured_lab(state: lab_view.InterpretState, trained: dict) -> lab_view.Lab:
    """The lab of the chosen model; ValueError when a session's model is gone."""
    if state.source == "shipped":
        with st.spinner("Measuring the model on held-out sequences…"):
            return _shipped_lab(state.task, state.cell, state.n)
    result = trained.get(state.run)
    if result is None:
        raise ValueError("That model was trained in another browser session (or is gone): "
                         "train one on the Train page, then open it here.")
    choice = from_session(state.run, result)
    with st.spinner("Measuring the model on held-out sequences…"):
        return session_memo(f"{PAGE}_lab", (state.run, id(result.model), state.task, state.n),
                            lambda: lab_view.measure(state.task, choice, state.n))


def _model_key(lab: lab_view.Lab) -> tuple:
    choice = lab.choice
    return (choice.source, choice.label, id(choice.rnn), lab.task, len(lab.batch))


def computed(lab: lab_view.Lab, kind: str, key: tuple, compute: Callable[[], T]) -> T:
    """`compute()` once per model and `key`: shared for a shipped model, else in the session."""
    if lab.choice.source == "shipped":
        return _shared(kind, (lab.task, lab.cell, len(lab.batch), *key), compute)
    return session_memo(f"{PAGE}_{kind}", (_model_key(lab), *key), compute)


def last_good(section: str, lab: lab_view.Lab, compute: Callable[[], T]
              ) -> tuple[T | None, Problem | None]:
    """A section's view, or its last good one for this same model with the reason (a view of
    another model is never shown as this one's)."""
    value, problem = keep_last_good(f"{PAGE}_{section}", lambda: (_model_key(lab), compute()))
    if value is None or value[0] != _model_key(lab):
        return None, problem
    return value[1], problem


def show(problem: Problem | None, has_view: bool) -> None:
    if problem is not None:
        problem.show() if has_view else problem.show_alone()


def on_button(kind: str, label: str, lab: lab_view.Lab, key: tuple, compute: Callable[[], T],
              spinner: str) -> T | None:
    """A measurement that runs when the visitor presses `label`; its result stays in the session
    for as long as the choices it was made with (`key`) stay."""
    held = page_key(PAGE, kind)
    full = (_model_key(lab), *key)
    if st.button(label, key=f"{PAGE}_{kind}_run"):
        with st.spinner(spinner):
            try:
                st.session_state[held] = (full, computed(lab, kind, key, compute))
            except ValueError as error:
                Problem(str(error)).show_alone()
    kept = st.session_state.get(held)
    return kept[1] if kept is not None and kept[0] == full else None


def clicked_unit(event) -> tuple[int, int, int] | None:
    """(layer, direction, unit) of the dot a click selected on the saturation chart, if any."""
    points = event.selection.points if event is not None else []
    if not points or "customdata" not in points[0]:
        return None
    data = points[0]["customdata"]
    # a row of customdata arrives as a list, or as {"0": .., "1": ..} from a typed array
    row = [data[key] for key in sorted(data, key=int)] if isinstance(data, dict) else list(data)
    return int(row[0]), int(row[1]), int(row[2])


def open_in_explore(state: lab_view.InterpretState, layer: int, direction: int, unit: int
                    ) -> None:
    """Explore, showing this model with `unit` of `layer` and `direction` first: its choices
    are set as its own widgets would set them, then the app goes there."""
    key = page_key("explore", "choices")
    values = dict(st.session_state.get(key) or ExploreState.defaults().as_dict())
    wanted = dict(task=state.task, cell=state.cell, source=state.source, run=state.run,
                  layer=int(layer), direction=int(direction), unit=int(unit), pick="index",
                  snap=FINAL, t=0)
    values.update(wanted)
    st.session_state[key] = values
    for name in wanted:  # Explore's widgets start from its choices, not from an older value
        st.session_state.pop(f"explore_{name}", None)
    try:
        st.switch_page("app_pages/explore.py")
    except StreamlitAPIException:  # this page alone (no st.navigation)
        st.info(f"The Explore page is not available here; unit {unit} of layer {layer} is "
                "set to open there.")


def last_good_lab(compute: Callable[[], lab_view.Lab]) -> tuple[lab_view.Lab | None,
                                                                 Problem | None]:
    """The measured model, or the last one that could be measured, with the reason."""
    return keep_last_good(PAGE, compute)


def step_slider(choices, steps: int) -> None:
    """The steps an intervention acts on, first to last; a last step at the end is kept as
    "to the end", so that a link stays short and fits any length."""
    values, key, end = choices.values, choices.widget_key("steps"), steps - 1
    if end < 1:
        values["start"], values["stop"] = 0, lab_view.InterpretState.stop
        return
    wanted = sorted((min(values["start"], end), min(values["stop"], end)))
    if max(st.session_state.get(key, (0, 0))) > end:  # a longer batch's steps
        st.session_state.pop(key)
    kwargs = {} if key in st.session_state else {"value": tuple(wanted)}
    first, last = st.slider("At steps (0 is each sequence's first)", 0, end, key=key, **kwargs)
    values["start"], values["stop"] = first, (last if last < end else
                                              lab_view.InterpretState.stop)


# -- the lab's widget groups: each binds its choices (ui.state.PageChoices) -----------------

def model_sidebar(choices, trained: dict) -> None:
    """Task, model (shipped or trained in this session), cell, and how many sequences."""
    pick, values = choices.widget, choices.values
    st.header("Model")
    pick(st.selectbox, "Task", "task", TASKS, lambda n: TASKS[n].title)
    runs = session_labels(values["task"], trained)
    pick(st.radio, "Model", "source", [s for s in lab_view.SOURCES if s != "session" or runs
                                        or values["source"] == s], lab_view.SOURCE_LABELS.get)
    if values["source"] == "session" and runs:
        pick(st.selectbox, "Trained in this session", "run", runs)
        values["cell"] = trained[values["run"]].cell
    else:
        pick(st.radio, "Cell", "cell", CELLS, lambda c: CELLS[c].long_name, horizontal=True)
    pick(select_slider, "Held-out sequences", "n", lab_view.BATCH_SIZES,
         help="How many held-out sequences every measurement is made on.")


def look_at_sidebar(choices, lab: lab_view.Lab) -> None:
    """The layer and direction that memory, interventions and the sweep look at."""
    layers, directions, units = lab.shape
    choices.clamp(layer=layers - 1, direction=directions - 1, unit=units - 1,
                  seq=len(lab.batch) - 1)
    if layers > 1:
        choices.widget(st.selectbox, "Layer (memory, interventions)", "layer", range(layers))
    if directions > 1:
        choices.widget(st.radio, "Direction", "direction", [0, 1],
                       ("forward", "reverse").__getitem__)


def threshold_inputs(choices) -> None:
    low, high = st.columns(2)
    for column, label, name in ((low, "Nearly closed: below", "lo"),
                                (high, "Nearly open: above", "hi")):
        choices.widget(column.number_input, label, name, min_value=0.01, max_value=0.99,
                       step=0.01)


def memory_inputs(choices, lab: lab_view.Lab) -> tuple[int, int]:
    """(unit, sequence) of the memory map."""
    unit_column, seq_column = st.columns(2)
    choices.widget(unit_column.number_input, "Unit", "unit", min_value=0,
                   max_value=lab.shape[2] - 1)
    choices.widget(seq_column.number_input, "Sequence (its map)", "seq", min_value=0,
                   max_value=len(lab.batch) - 1)
    return choices.values["unit"], choices.values["seq"]


def feature_inputs(choices, task: str) -> None:
    """The feature to search for: a built-in, words, a pattern or quotes; and how to rank."""
    pick, values = choices.widget, choices.values
    kind_column, spec_column = st.columns([1, 2])
    pick(kind_column.radio, "Feature", "feature", lab_view.feature_kinds(task),
         lab_view.FEATURE_LABELS.get)
    with spec_column:
        if values["feature"] == "builtin":
            pick(st.selectbox, "Built-in feature", "builtin", builtin_names(task))
        elif values["feature"] == "words":
            pick(st.text_input, "Words (commas or spaces between)", "words", max_chars=500,
                 placeholder="e.g. cats, dogs")
        elif values["feature"] == "pattern":
            pick(st.text_input, "Pattern (a Python regular expression, searched in each token)",
                 "pattern", max_chars=200, placeholder="e.g. s$")
        pick(st.radio, "Rank by", "by", lab_view.RANK_BY, {
            "probe": "one-unit probe accuracy", "correlation": "|correlation|"}.get,
            horizontal=True)


def unit_opener(state: lab_view.InterpretState, lab: lab_view.Lab, ranking) -> None:
    """One of the unit search's top units, opened in Explore on a button."""
    top = lab_view.top_units(ranking)
    pick_column, button_column = st.columns([2, 1], vertical_alignment="bottom")
    opened = pick_column.selectbox("Open a top unit in Explore", top, key=f"{PAGE}_open_unit",
                                   format_func=lambda u: lab_view.unit_name(lab, *u))
    if button_column.button("Open in Explore", key=f"{PAGE}_open"):
        open_in_explore(state, opened[0], opened[1], opened[3])


def intervention_inputs(choices, lab: lab_view.Lab) -> None:
    """What to set (h, c or a gate), which units, to what, at which steps."""
    pick = choices.widget
    what, which, value = st.columns([1.3, 1.3, 1])
    pick(what.selectbox, "Change", "target", lab_view.targets(lab.cell),
         lambda t: lab_view.target_label(lab.cell, t))
    pick(which.text_input, "Units (empty: the unit search's best 4)", "units", max_chars=300,
         placeholder="e.g. 3, 17, 42")
    pick(value.number_input, "Set to (0: ablate)", "value", min_value=-5.0, max_value=5.0,
         step=0.1)
    step_slider(choices, lab.test.steps)


def outcome_view(lab: lab_view.Lab, after) -> None:
    """The metric before and after, and the answers that turned."""
    numbers = lab_view.outcome_numbers(lab, after)
    for column, (label, now, change, lower) in zip(st.columns(len(numbers)), numbers):
        column.metric(label, now, change, delta_color="inverse" if lower else "normal")
    turned, table = lab_view.changed_answers(lab, after)
    st.markdown(turned)
    if table is not None:
        st.dataframe(table, hide_index=True)


def sweep_inputs(choices, lab: lab_view.Lab) -> None:
    """The sweep's quantity (an LSTM's h or c) and measure (agreement: all or long distances)."""
    left, right = st.columns(2)
    if lab.cell == "lstm":
        choices.widget(left.radio, "Ablate", "quantity", list(lab_view.QUANTITY_LABELS),
                       lab_view.QUANTITY_LABELS.get, horizontal=True)
    if lab.task == "agreement":
        choices.widget(right.radio, "Measured by", "measure", lab_view.MEASURES,
                       lambda m: lab_view.measure_label(lab.task, m), horizontal=True)


def saturated_table(sat) -> None:
    """The most saturated units, their shares in percent."""
    share = st.column_config.NumberColumn(format="%.1f%%", help="share of the steps")
    st.dataframe(lab_view.most_saturated(sat), hide_index=True, column_config={
        name: share for name in (f"< {sat.lo:g}", f"> {sat.hi:g}", "saturated")})


def top_table(lab: lab_view.Lab, ranking) -> None:
    """The units that follow the feature best: r, and a probe's accuracy next to always
    answering the majority, in percent."""
    share = st.column_config.NumberColumn(format="%.1f%%")
    st.dataframe(lab_view.top_table(lab, ranking), hide_index=True, column_config={
        "correlation": st.column_config.NumberColumn(format="%+.3f"),
        "probe accuracy": share, "always the majority": share})


def intervened(lab: lab_view.Lab, state: lab_view.InterpretState, ranking):
    """(what was changed, in words; the model's outcome with the change)."""
    changes, said = lab_view.plan(lab, state, ranking)
    return said, computed(lab, "intervene", (repr(changes),),
                          lambda: lab_view.intervene(lab, changes))
