"""Compare: the same task and input through the RNN, LSTM and GRU, side by side, measured live."""

from __future__ import annotations

from dataclasses import asdict, replace

import streamlit as st

from core.views import compare as cmp
from core.figures.compare import (
    accuracy_distance_figure, compare_figure, gradient_overlay_figure,
)
from core.figures.explore import InputSequence
from core.tasks import TASKS, get_task
from ui.widgets import choose as bound_choice

TRAINED = "gatescope.trained"  # label -> core.training.loop.TrainResult, filled by the Train page
OPEN_IN_COMPARE = "gatescope.compare.open"  # a trained model's label the Train page sends here
STATE = "compare.view"
LAST_GOOD = "compare.last_good"
ACCURACY = "compare.accuracy"  # agreement accuracy of this session's own models
SHIPPED_LABEL = "shipped trained model"

st.set_page_config(layout="wide")  # as app.py: three columns need the width

# --- state: the URL is the source of truth on first load ------------------------------------
# Choices live in a plain dict (widget state is dropped whenever a widget is not drawn, e.g.
# the sample seed while the user types text); each widget starts from it and writes back.
if STATE not in st.session_state:
    st.session_state[STATE] = asdict(cmp.CompareView.from_query(st.query_params.to_dict()))
V = st.session_state[STATE]
trained = st.session_state.get(TRAINED) or {}

opened = st.session_state.pop(OPEN_IN_COMPARE, None)
if opened in trained:  # "open in Compare" on the Train page: its task, its model for its cell
    result = trained[opened]
    V.update({"task": result.task, result.cell: opened})
    for key in ("cmp_task", f"cmp_{result.cell}"):
        st.session_state.pop(key, None)


def choose(widget, label, name, options=None, fmt=None, **kwargs):
    return bound_choice(V, "cmp_", widget, label, name, options, fmt, **kwargs)


# --- choices -----------------------------------------------------------------------------
with st.sidebar:
    st.header("Choices")
    choose(st.selectbox, "Task", "task", TASKS, lambda n: TASKS[n].title)
    task = get_task(V["task"])
    choose(st.radio, "Input", "input", cmp.INPUTS, cmp.INPUT_LABELS.get)
    if V["input"] == "sample":
        choose(st.number_input, "Sample seed", "sample", min_value=0, max_value=cmp.ex.MAX_SEED)
        if not task.seq_len.fixed:
            lo, hi = task.seq_len.min, task.seq_len.max
            key = f"cmp_len_{task.name}"  # one slider per task: each has its own range and unit
            start = V["len"] if lo <= V["len"] <= hi else task.seq_len.default
            if key not in st.session_state:
                length = st.slider(f"Length ({task.seq_len.unit})", lo, hi, start, key=key)
            else:
                length = st.slider(f"Length ({task.seq_len.unit})", lo, hi, key=key)
            V["len"] = length
    else:
        choose(st.text_area, "Your input", "text", max_chars=2000,
               placeholder=cmp.EXAMPLE_TEXT.get(task.name, ""),
               help="The same input goes to all three models. " + task.description)
    st.header("Models")
    for cell in cmp.CELL_ORDER:
        options = [cmp.SHIPPED] + cmp.trained_options(task.name, cell, trained)
        choose(st.selectbox, cmp.CELL_NAMES[cell], cell, options,
               lambda label: label or SHIPPED_LABEL,
               help="Models you train on the Train page appear here.")

view = cmp.CompareView(**V).normalised()


# --- one call into core (cached), keeping the last good view on bad input -------------------
@st.cache_resource(max_entries=16, show_spinner="Running and measuring the three models…")
def run_comparison(view: cmp.CompareView, model_keys: tuple, _models) -> cmp.Comparison:
    """Cached per input and models: the same view costs nothing for the next visitor."""
    return cmp.compare(view, _models, cmp.make_example(view))


def comparison_for(view: cmp.CompareView) -> cmp.Comparison:
    models = cmp.pick_models(view.task, trained, view.picks())
    picked = replace(view, t=0, **{c: m.label if m.source == "trained" else cmp.SHIPPED
                                       for c, m in models.items()})
    return run_comparison(picked, tuple(m.key for m in models.values()), models)


error = None
try:
    comparison = comparison_for(view)
    st.session_state[LAST_GOOD] = (view, comparison)
except Exception as err:  # every failure becomes a message, never a traceback
    error = str(err) or type(err).__name__
    if LAST_GOOD in st.session_state:
        shown_view, comparison = st.session_state[LAST_GOOD]
    else:  # nothing good yet (a bad link): show the default view under the message
        shown_view = cmp.CompareView(task=view.task)
        try:
            comparison = comparison_for(shown_view)
        except Exception:
            shown_view = cmp.CompareView()
            comparison = comparison_for(shown_view)
    view = replace(shown_view, t=view.t)

T = comparison.seq_len
with st.sidebar:
    st.header("Time")
    if st.session_state.get("cmp_t", 0) > T - 1:
        st.session_state["cmp_t"] = T - 1
    V["t"] = min(V["t"], T - 1)
    choose(st.number_input, "Start the cursor at step t", "t", min_value=0, max_value=T - 1)
view = replace(view, t=V["t"])
if error is None:
    st.query_params.from_dict(view.to_query())

# --- the page ----------------------------------------------------------------------------
task = get_task(comparison.task)
cells = comparison.cells
st.title("gatescope · Compare")
st.caption(f"{task.title}: the same input through a vanilla RNN, an LSTM and a GRU. "
           f"{task.description}")
if error is not None:
    st.error(f"{error}  \nShowing your last good view instead.")

words = comparison.values is None
shown_input = " ".join(comparison.tokens) if words else ", ".join(comparison.tokens[:40])
st.markdown(f"**Input** ({T} steps): {shown_input[:600]}{' …' if len(shown_input) > 600 else ''}"
            f"  \n**Target**: {comparison.target}")

columns = st.columns(len(cells))
for column, (cell, c) in zip(columns, cells.items()):
    score = c.model.score
    with column:
        st.subheader(cmp.CELL_NAMES[cell])
        st.caption(c.model.label if c.model.source == "shipped"
                   else f"trained in this session: {c.model.label}")
        st.metric("Prediction", c.result.prediction)
        verdict = c.model.verdict
        st.metric(f"Held-out {score['metric']}", f"{score['value']:.4g}",
                  f"baseline {score['baseline']:.4g}: {verdict}",
                  delta_color={"better": "green", "worse": "red"}.get(verdict, "orange"),
                  delta_arrow="off",
                  help=f"Measured when the model was trained, on {score.get('n', '?')} "
                       f"held-out sequences; baseline: {score['baseline_name']}.")


fig = compare_figure({cell: c.result.trace for cell, c in cells.items()},
                     InputSequence(comparison.tokens, comparison.values, comparison.value_names),
                     t0=view.t)
st.plotly_chart(fig, theme=None, key="compare_chart",
                config={"displaylogo": False, "scrollZoom": False})
st.caption(f"Gradients: {comparison.objective_note}. ▶ Play, ❚❚ Pause, Slow, Fast ×10 and the "
           "slider move one cursor through all three columns, in your browser. The input row is "
           "shaded by each model's saliency ‖∂loss/∂x_t‖ (darker: moved that model's loss "
           "more). The number on each gradient line is ‖∂loss/∂h_t‖ at the cursor; the three "
           "share one log scale.")

st.markdown("**Size, speed and memory**, measured now on this server")
st.table(cmp.measures_table(cells))
batch, steps = next(iter(cells.values())).memory_batch
st.caption(f"Training step and memory: one step on a batch of {batch} × {steps} steps of the "
           "task, on a copy of each model. Times are medians of a few runs on one CPU thread of a "
           "shared server: compare them with each other, not with another machine.")

st.subheader("How fast the gradient fades, back in time")
decays = {cell: c.decay for cell, c in cells.items()}
st.plotly_chart(gradient_overlay_figure(decays), theme=None, key="decay_chart",
                config={"displaylogo": False})
if comparison.loss_at_every_step:
    st.info("This task has a loss at every step, so the gradient at h_t is fed from every later "
            "step, not only from the end: here the fitted factor does not measure memory.")
ratio_text = ", ".join(f"{cmp.CELL_NAMES[cell]} {c.first_to_last:.1e}" for cell, c in cells.items())
st.caption(f"Gradient at the first step ÷ at the last step: {ratio_text}.")


@st.cache_data(show_spinner="Measuring accuracy at every distance…")
def shipped_accuracy(cell: str) -> list[dict]:
    """The same for every visitor: cached once per process."""
    return cmp.accuracy_by_distance(cmp.shipped_model("agreement", cell))


if task.name == "agreement":
    st.subheader("Agreement accuracy against subject–verb distance")
    accuracy, own = {}, st.session_state.setdefault(ACCURACY, {})
    for cell, c in cells.items():
        if c.model.source == "shipped":
            accuracy[cell] = shipped_accuracy(cell)
        else:
            if c.model.key not in own:
                with st.spinner(f"Measuring {c.model.label} at every distance…"):
                    own[c.model.key] = cmp.accuracy_by_distance(c.model)
            accuracy[cell] = own[c.model.key]
    st.plotly_chart(accuracy_distance_figure(accuracy), theme=None, key="accuracy_chart",
                    config={"displaylogo": False})
    st.caption(f"{cmp.AGREEMENT_PER_DISTANCE} held-out sentences at each distance; longer "
               "distances also put more attractor nouns between subject and verb.")

# --- explanations, closed by default -----------------------------------------------------
with st.expander("What the decay factor means"):
    st.markdown(
        "Going back one step in time multiplies the gradient by that step's Jacobian "
        "∂h_t/∂h_{t−1}. The legend's **×factor per step** is the geometric average of that "
        "shrinkage, fitted as a straight line to log‖∂loss/∂h_t‖ against distance. A factor of "
        "0.5 halves the gradient every step: 30 steps back it is a billionth (0.5³⁰ ≈ 10⁻⁹), so "
        "early inputs cannot teach the model anything. The LSTM's cell state passes the "
        "gradient through its forget gate f (near 1 means almost no loss), and the GRU through "
        "its update gate z, so their factors stay near 1. The **half-life** is how many steps "
        "back the gradient halves; a factor above 1 means it grows (explodes) instead.")
with st.expander("Why the GRU has 3/4 of the LSTM's recurrent parameters"):
    lstm_rnn = cells["lstm"].model.model.rnn
    formula = cmp.recurrent_params_formula(lstm_rnn.input_size, lstm_rnn.hidden_size)
    st.markdown(
        "Each gate (and each candidate) is one affine map of x_t and h_{t−1}: "
        "H·(I + H) weights plus 2H biases in PyTorch (b_ih and b_hh). A vanilla RNN has one "
        "such block, a **GRU three** (reset r, update z, new n) and an **LSTM four** (input i, "
        "forget f, cell g, output o), so the GRU has exactly 3/4 of the LSTM's recurrent "
        f"parameters at the same sizes. Here I = {lstm_rnn.input_size}, "
        f"H = {lstm_rnn.hidden_size}: RNN {formula['rnn']:,}, GRU {formula['gru']:,}, "
        f"LSTM {formula['lstm']:,} per layer. Fewer parameters also mean less memory for "
        "weights and gradients; the activations saved for the backward pass (the table's "
        "memory) shrink with the number of gates too.")
with st.expander("PyTorch's GRU convention: h' = (1 − z)·n + z·h"):
    st.markdown(
        "PyTorch computes h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}, so an **update gate z near 1 "
        "keeps the old state** and z near 0 replaces it with the candidate n. Cho et al. and "
        "many tutorials write the opposite, h_t = z_t ⊙ n_t + (1 − z_t) ⊙ h_{t−1}; the maps "
        "here follow PyTorch, so bright (near 1) means *keep*, just like the LSTM's forget "
        "gate f.")
with st.expander("How these numbers are measured"):
    st.markdown(
        "- **Held-out score**: measured when the model was trained, next to the task's trivial "
        "baseline on the same sequences.\n"
        "- **Trace time**: one run of gatescope's tracer (forward, one backward pass, every "
        "gate), median of several runs.\n"
        "- **Training step** and **peak training memory**: one forward + backward pass on a "
        "batch of the task; memory counts the parameters, their gradients and every tensor "
        "autograd saves for the backward pass (exact and repeatable, unlike the process's "
        "size).\n"
        "- **Training time**: the recorded wall time of the model's training run (the shipped "
        "models' on the machine that made them; runs trained together shared the CPU).")
