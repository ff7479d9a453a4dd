"""Explore: pick a cell, task and input; watch states, gates and gradients animate."""

from __future__ import annotations

import hashlib

import streamlit as st

from core.views import explore as ex
from core.figures.explore import (
    InputSequence, explore_figure, rank_units,
)
from core.figures.style import PIXELATED_CSS
from core.io.exports import figure_html, trace_npz, trace_table
from core.io.tables import csv_column_values
from core.model import CELLS
from core.tasks import TASKS, get_task
from ui.animation import autoplay_once
from ui.widgets import choose as bound_choice

CELL_NAMES = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN (vanilla)"}


# --- state: the URL is the source of truth on first load ------------------------------------
# Choices live in a plain dict (widget state is dropped whenever a widget is not drawn, e.g.
# the sample seed while the user types text); each widget starts from it and writes back.
if "view" not in st.session_state:
    st.session_state.view = dict(ex.View.from_query(st.query_params.to_dict()).__dict__)
V = st.session_state.view


def choose(widget, label, name, options=None, fmt=None, **kwargs):
    return bound_choice(V, "w_", widget, label, name, options, fmt, **kwargs)


def _step(delta: int) -> None:
    st.session_state.w_t = max(0, int(st.session_state.get("w_t", V["t"])) + delta)


# A model trained on the Train page, sent here with its "Open in Explore" button.
TRAINED = "gatescope.trained"  # label -> core.training.loop.TrainResult, filled by the Train page
trained_here = st.session_state.get(TRAINED, {})
opened = st.session_state.pop("gatescope.explore.open", None)
if opened in trained_here:
    V.update(source="session", run=opened, task=trained_here[opened].task)
    for key in ("w_task", "w_source", "w_run"):
        st.session_state.pop(key, None)  # the widgets start from V again

# --- choices -----------------------------------------------------------------------------
with st.sidebar:
    st.header("Choices")
    choose(st.selectbox, "Task", "task", TASKS, lambda n: TASKS[n].title)
    runs_for_task = [label for label, r in trained_here.items() if r.task == V["task"]]
    sources = [s for s in ex.SOURCES if s != "session" or runs_for_task or V["source"] == s]
    choose(st.radio, "Model", "source", sources, ex.SOURCE_LABELS.get)
    upload = None
    if V["source"] in ("trained", "random"):
        choose(st.radio, "Cell", "cell", CELLS, CELL_NAMES.get, horizontal=True)
    if V["source"] == "random":
        choose(st.number_input, "Weights seed", "seed", min_value=0, max_value=ex.MAX_SEED)
    elif V["source"] == "session" and runs_for_task:
        choose(st.selectbox, "Trained in this session", "run", runs_for_task)
        V["cell"] = trained_here[V["run"]].cell
    elif V["source"] == "upload":
        file = st.file_uploader("state_dict of an nn.RNN / nn.LSTM / nn.GRU",
                                type=["safetensors", "pt", "pth"], key="weights_file")
        if file is not None:
            upload = (file.getvalue(), file.name)
    task = get_task(V["task"])
    input_modes = [m for m in ex.INPUTS if m != "csv" or task.name == "airline"]
    choose(st.radio, "Input", "input", input_modes, ex.INPUT_LABELS.get)
    csv_values = None
    if V["input"] == "sample":
        choose(st.number_input, "Sample seed", "sample", min_value=0, max_value=ex.MAX_SEED)
        if not task.seq_len.fixed:
            lo, hi = task.seq_len.min, task.seq_len.max
            if not lo <= (V["len"] or task.seq_len.default) <= hi:
                V["len"] = 0
            if st.session_state.get("w_len_task") != task.name:
                st.session_state.pop("w_len", None)  # another task: another range
                st.session_state.w_len_task = task.name
            key_value = V["len"] or task.seq_len.default
            if "w_len" not in st.session_state:
                length = st.slider(f"Length ({task.seq_len.unit})", lo, hi, key_value, key="w_len")
            else:
                length = st.slider(f"Length ({task.seq_len.unit})", lo, hi, key="w_len")
            V["len"] = 0 if length == task.seq_len.default else length
    elif V["input"] == "text":
        choose(st.text_area, "Your input", "text", max_chars=2000,
               help="Words for the word tasks; numbers for adding / airline "
                    "(see the task's description).")
    else:
        csv_file = st.file_uploader("CSV file", type=["csv"], key="csv_file")
        if csv_file is not None:
            try:
                values, columns = csv_column_values(csv_file.getvalue())
                column = st.selectbox("Column", columns, index=len(columns) - 1, key="csv_col")
                csv_values, _ = csv_column_values(csv_file.getvalue(), column)
            except ValueError as err:
                st.error(str(err))

view = ex.View(**V).normalised()


# --- one call into core (cached), keeping the last good view on bad input -------------------
@st.cache_resource(max_entries=24, show_spinner=False)
def compute_shared(view: ex.View, csv_key: tuple | None, _csv):
    """Shipped and random models are the same for every visitor: one cache for the process."""
    choice = ex.resolve_model(view)
    return choice, ex.run(view, choice, ex.make_example(view, _csv))


def compute_own(view: ex.View, upload, csv_values, key: tuple):
    """An upload or a model trained in this session is this visitor's own: never in the shared
    cache. The session keeps only the last one computed (its memory stays bounded), which is
    enough for reruns that change only what is looked at (unit, step, layer)."""
    memo = st.session_state.get("explore_own")
    if memo is not None and memo[0] == key:
        return memo[1]
    st.session_state.pop("explore_own", None)  # let the old trace go before making a new one
    choice = ex.resolve_model(view, upload, session_models=trained_here)
    value = choice, ex.run(view, choice, ex.make_example(view, csv_values))
    st.session_state.explore_own = (key, value)
    return value


csv_key = tuple(csv_values) if csv_values is not None else None
trace_view = ex.View(**{**view.__dict__, "layer": 0, "direction": 0, "pick": "index",
                        "unit": 0, "t": 0})
error = None
try:
    if view.source in ("session", "upload"):
        own = (id(trained_here.get(view.run)) if view.source == "session" else
               hashlib.sha256(upload[0]).hexdigest() + upload[1] if upload else None)
        choice, result = compute_own(trace_view, upload, csv_values, (trace_view, own, csv_key))
    else:
        choice, result = compute_shared(trace_view, csv_key, csv_values)
    st.session_state.last_good = (view, choice, result)
except Exception as err:  # every failure becomes a message, never a traceback
    error = str(err) or type(err).__name__
    if "last_good" not in st.session_state:
        st.title("gatescope · Explore")
        st.error(error)
        st.stop()
    view_shown, choice, result = st.session_state.last_good
    view = ex.View(**{**view_shown.__dict__, "layer": view.layer, "direction": view.direction,
                      "pick": view.pick, "unit": view.unit, "t": view.t})

tr = result.trace
with st.sidebar:
    st.header("Look at")
    V["layer"] = min(V["layer"], tr.num_layers - 1)
    V["direction"] = min(V["direction"], tr.num_directions - 1)
    if tr.num_layers > 1:
        choose(st.selectbox, "Layer", "layer", range(tr.num_layers))
    if tr.num_directions > 1:
        choose(st.radio, "Direction", "direction", [0, 1], lambda d: ("forward", "reverse")[d],
               horizontal=True)
    choose(st.radio, "Units", "pick", ex.PICKS, horizontal=True)
    for name in ("unit", "t"):  # keep within this trace's size
        limit = (tr.hidden_size if name == "unit" else tr.seq_len) - 1
        V[name] = min(V[name], limit)
        if st.session_state.get(f"w_{name}", 0) > limit:
            st.session_state[f"w_{name}"] = limit
    choose(st.number_input, "Unit (diagram and equations)", "unit", min_value=0,
           max_value=tr.hidden_size - 1)
    choose(st.number_input, "Start at step t", "t", min_value=0, max_value=tr.seq_len - 1)
    back, forward = st.columns(2)
    back.button("◀ step", on_click=_step, args=(-1,), width="stretch")
    forward.button("step ▶", on_click=_step, args=(1,), width="stretch")

layer, direction, unit, t0 = V["layer"], V["direction"], V["unit"], V["t"]
view = ex.View(**{**view.__dict__, "layer": layer, "direction": direction,
                  "pick": V["pick"], "unit": unit, "t": t0})
if error is None:
    st.query_params.from_dict(view.to_query())

if view.pick == "index":
    units = [unit] + [u for u in (unit + 1, unit + 2) if u < tr.hidden_size]
else:
    units = rank_units(tr, layer, direction, view.pick)
    unit = units[0]

# --- the page ----------------------------------------------------------------------------
task = get_task(view.task)
st.title("gatescope · Explore")
st.caption(f"{task.title} · {CELL_NAMES[view.cell] if view.source != 'upload' else 'your module'}"
           f" · {choice.label}")
if error is not None:
    st.error(f"{error}  \nShowing your last good view instead.")
if not choice.trained:
    st.warning(choice.note)
if result.example.unknown:
    st.info("Not in the vocabulary (read as <unk>): " + ", ".join(result.example.unknown[:20]))
c1, c2, c3 = st.columns(3)
c1.metric("Model's answer", result.prediction)
c2.metric("Target", result.target)
c3.markdown(f"**Trivial baseline**  \n{task.baseline_name}")

fig = explore_figure(tr, InputSequence(result.tokens, result.values, result.value_names),
                     layer=layer, direction=direction, units=units, unit=unit, t0=t0)
st.html(f"<style>{PIXELATED_CSS}</style>")
st.plotly_chart(fig, theme=None, key="explore_chart",
                config={"displaylogo": False, "scrollZoom": False})
autoplay_once("explore_chart", "autoplayed")
st.caption(f"Gradients: {result.objective_note}. ▶ Play / ❚❚ Pause / Slow / ×10 (every 10th step, "
           "from t = 0) and the slider move the red cursor in your browser, with no round trip; "
           "the sidebar's step buttons and “Start at step t” set where it starts.")

with st.expander("How to read the maps"):
    st.markdown(
        "Each map is units (rows) × timesteps (columns) on a **fixed** colour scale: gates "
        "from 0 to 1, h and the candidates g / n from −1 to 1. A **forget gate near 1** "
        "(yellow) keeps the cell state c; near 0 it erases it. An **input gate near 1** writes "
        "the candidate g into c. In PyTorch's GRU, h' = (1 − z)·n + z·h: an **update gate near 1 "
        "keeps the old state**, near 0 replaces it with the candidate n.")
with st.expander("Why does the gradient line fall?"):
    st.markdown(
        "The line is ‖∂loss/∂h_t‖ on a log scale. Going back in time the gradient is multiplied "
        "by one Jacobian per step; in a vanilla RNN these shrink it (or blow it up) "
        "geometrically, so the line drops by orders of magnitude and early steps cannot learn. "
        "The LSTM's cell state passes gradients through f_t (near 1) almost unchanged, which "
        "keeps ∂loss/∂c_t alive over long distances.")
with st.expander("The cell at step t"):
    st.markdown(
        "The diagram colours every gate and intermediate value of the chosen unit at the "
        "cursor's step; the equations are PyTorch's, with that unit's numbers filled in. "
        "σ(a) and tanh(a) show the pre-activation a recovered from the gate's value.")
with st.expander("Saliency"):
    st.markdown("The input row is shaded by ‖∂loss/∂x_t‖: darker steps moved the loss most.")

st.subheader("Downloads")
d1, d2, d3 = st.columns(3)
stem = f"gatescope_{view.task}_{view.cell}"
d1.download_button("Trace (.npz)", lambda: trace_npz(tr, tokens=result.tokens),
                   f"{stem}.npz", "application/octet-stream", on_click="ignore")
d2.download_button("Trace (.csv)",
                   lambda: trace_table(tr, layer, direction, result.tokens).to_csv(index=False),
                   f"{stem}.csv", "text/csv", on_click="ignore")
d3.download_button("Figure (standalone .html)", lambda: figure_html(fig, stem),
                   f"{stem}.html", "text/html", on_click="ignore")
