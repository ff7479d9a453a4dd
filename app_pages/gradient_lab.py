"""Gradient lab: watch the gradient vanish or explode back through time, then tame it.

Part 1 traces a fresh model (untrained, at the chosen weight scale) and plots how strong the
gradient of its output still is k steps back. Part 2 trains that very model on the adding
problem twice from the same start and batches, plain and with clipping / truncated BPTT, in the
background (ui/live.py). Every choice is in the URL, so a link reproduces the experiment.
"""

from __future__ import annotations

import streamlit as st

from core import claims
from core.cells import CELLS
from core.figures.training import grad_norm_figure, gradient_profile_figure, loss_figure
from core.limits import LIMITS
from core.model import INITS
from core.views import lab
from core.views.train import OPTIMIZER_LABELS
from ui import live, widgets
from ui.charts import chart
from ui.content import explain
from ui.state import PageChoices
from ui.text import plain

choices = PageChoices(lab.LabState, "lab")


def presets_row() -> None:
    # A row that wraps: five fixed columns cut the buttons' names at 150% zoom.
    with st.container(horizontal=True, vertical_alignment="center"):
        st.markdown("**Presets**", width="content")
        for name, values in lab.PRESETS.items():
            st.button(name, on_click=choices.set, kwargs=values)


def model_choices() -> None:
    """Part 1: the cell, T, and the initial weights' kind and scale."""
    pick, values = choices.widget, choices.values
    pick(widgets.segmented_control, "Cell", "cell", CELLS, lambda c: CELLS[c].display_name)
    pick(st.radio, "Nonlinearity (vanilla RNN)", "nonlinearity", lab.NONLINEARITIES,
         horizontal=True, disabled=values["cell"] != "rnn")
    low, high, step = lab.LENGTHS
    pick(st.slider, "Sequence length T", "len", min_value=low, max_value=high, step=step)
    pick(st.selectbox, "Initial weights", "init", INITS,
         help="default: PyTorch's U(−1/√H, 1/√H); orthogonal: each gate's W_hh block "
              "orthogonal (radius 1); xavier: Xavier-uniform blocks.")
    pick(st.toggle, "Rescale W_hh", "rescale",
         help="Rescale the recurrent weights: each gate's H×H block of weight_hh to this "
              "spectral radius (largest |eigenvalue|).")
    low, high, step = lab.RADIUS_RANGE
    pick(st.slider, "Spectral radius of W_hh", "radius", min_value=low, max_value=high,
         step=step, disabled=not values["rescale"])
    pick(st.selectbox, "Forget-gate bias (LSTM)", "forget_bias", lab.FORGET_BIASES,
         disabled=values["cell"] != "lstm", help="The forget gate's total bias; f starts near "
         "σ(bias). default: PyTorch's init (f ≈ 0.5).")
    pick(st.selectbox, "Update-gate bias (GRU)", "update_bias", lab.UPDATE_BIASES,
         disabled=values["cell"] != "gru", help="The update gate's total bias; z starts near "
         "σ(bias), and z near 1 keeps h. default: PyTorch's init (z ≈ 0.5).")
    pick(widgets.select_slider, "Hidden size", "hidden", lab.HIDDEN_SIZES)
    pick(st.number_input, "Seed", "seed", min_value=0, max_value=lab.MAX_SEED)


@st.cache_data(max_entries=64, show_spinner=False)
def cached_profile(measured: lab.LabState) -> lab.GradientProfile:
    """The same for every visitor: cached once per model and T."""
    return lab.profile(measured)


def profile_view(state: lab.LabState) -> None:
    """The profile's numbers and chart, or why the model cannot be built."""
    try:
        profile = cached_profile(state.measured())
    except ValueError as error:
        st.error(f"Cannot build this model: {plain(error)}")
        return
    widgets.wrapping_metrics()
    for column, number in zip(st.columns(4), lab.profile_numbers(profile)):
        column.metric(number.label, number.value, help=number.help)
    if profile.overflowed:
        st.error(f"The hidden state overflowed float32 at step {profile.overflow_step}: the "
                 "forward pass itself exploded, and from there on the numbers are inf or NaN. "
                 "Lower the spectral radius or the sequence length.")
    chart(gradient_profile_figure(profile, state.model_label()), width="stretch",
          key="lab_profile_chart")


def training_choices() -> None:
    """Part 2: how the model trains, and how it is tamed."""
    pick, values = choices.widget, choices.values
    # Two rows of three: six columns left each label a few words wide in a narrow window.
    row = [*st.columns([1, 1.4, 1.4]), *st.columns([1, 1.4, 1.4])]
    pick(row[0].selectbox, "Optimizer", "optimizer", lab.OPTIMIZER_ORDER, OPTIMIZER_LABELS.get,
         help="SGD uses momentum 0.9.")
    with row[1]:
        pick(widgets.select_slider, "Learning rate", "lr", lab.LEARNING_RATES)
    with row[2]:
        pick(widgets.select_slider, "Steps", "steps", lab.STEPS)
    pick(row[3].radio, "Clip the gradient", "clip", lab.CLIP_MODES,
         help="by its whole L2 norm, or each value separately")
    with row[4]:
        pick(widgets.select_slider, "Clip threshold", "threshold", lab.THRESHOLDS,
             disabled=values["clip"] == "off")
    with row[5]:
        pick(st.toggle, "Truncated BPTT", "tbptt")
        pick(widgets.select_slider, "Window (steps)", "window", lab.WINDOWS,
             disabled=not values["tbptt"])


def live_charts(runs: live.Runs) -> dict:
    """The loss against always predicting 1, and the gradient's norm against the clipping.
    Runs take the palette's colours in order: the plain run first."""
    clip_norm = runs.snapshot[-1].config.clip_norm
    return {
        "lab_loss": loss_figure(runs.events, runs.baseline(), runs.ended, None,
                                "Loss (MSE): training (solid) and held-out (dashed)",
                                runs.heldout_every),
        "lab_grad": grad_norm_figure(runs.events, clip_norm, runs.ended),
    }


st.header("Gradient lab")
st.caption("How far back in time does a gradient reach? Pick a cell and a weight scale, see the "
           "gradient vanish or explode, then train and watch clipping and truncation tame it.")
presets_row()
controls, view = st.columns([1.25, 2.6], gap="large")
with controls:
    model_choices()
with view:
    profile_view(choices.state())
    explain("lab", "profile", samples=lab.PROFILE_SAMPLES, lessons=claims.lessons("lab"))

st.subheader("Train it on the adding problem: does clipping tame the explosion?")
st.caption(f"Trains the model above ({choices.values['len']} steps per sequence) from the same "
           "start and on the same batches twice: plain, and with your clipping / truncation. "
           "Always predicting 1 scores an MSE of about 0.167 (the dotted line: on the runs' "
           "held-out set); beating that means the model learned to carry a number across time.")
training_choices()
state = choices.state()
choices.publish(state)
live.start_stop("lab", "Run", lambda: lab.session_runs(state))
live.panel("lab", live.LiveView(
    charts=live_charts, verdict=lab.verdict,
    idle="Press **Run** to train. Try the *Exploding* preset: the plain run blows up to an "
         "infinite loss within a few dozen steps; the clipped one stays finite."))
explain("lab", "taming", max_seconds=f"{LIMITS.max_training_seconds:g}")
