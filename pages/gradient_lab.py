"""Gradient lab: watch the gradient vanish or explode back through time, then tame it.

Part 1 traces a fresh model (untrained, at the chosen weight scale) and plots how strong the
gradient of its output still is k steps back. Part 2 trains that very model on the adding
problem twice from the same start and batches, plain and with clipping / truncated BPTT.
Every choice is bound to the URL, so a link reproduces the experiment.
"""

from __future__ import annotations

import math

import streamlit as st

from core.views.lab import (
    CLIP_MODES, MAX_RADIUS, PLAIN_LABEL, LabTraining, build_lab_model, gradient_profile,
    lab_runs, verdict,
)
from core.limits import LIMITS
from core.query import number_binds
from core.tasks import get_task
from core.figures.training import (
    CELL_COLORS, grad_norm_figure, gradient_profile_figure, loss_figure,
)
from core.training.session import CELL_NAMES, TrainingSession, chart_series
from ui.live import rerun_page_once_when_done

SESSION = "gatescope.lab.session"  # the current / last lab training run (a TrainingSession)
FINAL_RERUN = "gatescope.lab.final_rerun"  # the session whose end the page has shown
ADDING = get_task("adding")
URL = dict(bind="query-params")
# How often a running session's progress is redrawn: each redraw is a script run on the shared
# server (figures built and sent), so not more often than this.
POLL_SECONDS = 1.0
CELLS = {"RNN": "rnn", "LSTM": "lstm", "GRU": "gru"}
OPTIMIZERS = {"SGD": "sgd", "Adam": "adam", "RMSprop": "rmsprop"}
FORGET_BIASES = ["default", "0", "1", "2", "3"]
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0]
THRESHOLDS = [0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0]
STEPS = [100, 200, 300, 500, 1000, 2000]
WINDOWS = [2, 5, 10, 20, 50]

PRESETS = {
    "Vanishing: tanh RNN": dict(cell="RNN", nonlinearity="tanh", rescale=False, init="default",
                                T=100),
    "Exploding: radius 3": dict(cell="RNN", nonlinearity="tanh", rescale=True, radius=3.0,
                                init="default", T=50, optimizer="SGD", lr=0.1, clip="norm",
                                threshold=1.0, tbptt=False),
    "LSTM, forget bias 1": dict(cell="LSTM", rescale=False, init="default", forget_bias="1",
                                T=100),
}


def apply_preset(values: dict) -> None:
    for key, value in values.items():
        st.session_state[key] = value


@st.cache_data(max_entries=64, show_spinner=False)
def cached_profile(cell, nonlinearity, T, init, radius, hidden, forget_bias, seed):
    model = build_lab_model(cell, hidden, nonlinearity, radius, init, seed, forget_bias)
    return gradient_profile(model, T, seed=seed)


# Number inputs bound to the URL: Streamlit raises OverflowError on ?seed=inf, so a value that
# is not a finite number is dropped from the URL and its widget drawn unbound (the default) once.
NUMBER_URL = number_binds(st.query_params, ("seed",))
for key, bind in NUMBER_URL.items():
    if bind["bind"] is None and key in st.query_params:
        del st.query_params[key]

st.header("Gradient lab")
st.caption("How far back in time does a gradient reach? Pick a cell and a weight scale, see the "
           "gradient vanish or explode, then train and watch clipping and truncation tame it.")
preset_columns = st.columns(len(PRESETS) + 1)
preset_columns[0].markdown("**Presets**")
for column, (name, values) in zip(preset_columns[1:], PRESETS.items()):
    column.button(name, on_click=apply_preset, args=(values,), width="stretch")

# -- part 1: the gradient profile of a fresh model ----------------------------------------------
controls, view = st.columns([1, 2.6], gap="large")
with controls:
    # Options are the words shown, so the URL reads ?cell=LSTM&init=orthogonal&clip=norm.
    cell_name = st.segmented_control("Cell", list(CELLS), default="RNN", key="cell",
                                     required=True, **URL)
    cell = CELLS[cell_name]
    nonlinearity = st.radio("Nonlinearity (vanilla RNN)", ["tanh", "relu"], key="nonlinearity",
                            horizontal=True, disabled=cell != "rnn", **URL)
    T = st.slider("Sequence length T", 10, 1000, 100, 5, key="T", **URL)
    init = st.selectbox("Initial weights", ["default", "orthogonal", "xavier"], key="init",
                        help="default: PyTorch's U(−1/√H, 1/√H); orthogonal: each gate's W_hh "
                             "block orthogonal (radius 1); xavier: Xavier-uniform blocks.",
                        **URL)
    rescale = st.toggle("Rescale the recurrent weights", key="rescale", **URL,
                        help="Scale each gate's H×H block of weight_hh to this spectral radius "
                             "(largest |eigenvalue|).")
    radius = st.slider("Spectral radius of W_hh", 0.0, min(5.0, MAX_RADIUS), 1.0, 0.05,
                       key="radius", disabled=not rescale, **URL)
    forget_bias = st.selectbox("Forget-gate bias (LSTM)", FORGET_BIASES, key="forget_bias",
                               disabled=cell != "lstm", help="default: PyTorch's init.", **URL)
    hidden = st.select_slider("Hidden size", [8, 16, 32, 64, 128, 256], 32, key="hidden", **URL)
    seed = st.number_input("Seed", 0, 10_000, 0, key="seed", **NUMBER_URL["seed"])

model_args = dict(cell=cell, nonlinearity=nonlinearity if cell == "rnn" else "tanh",
                  radius=radius if rescale else None, init=init, hidden_size=hidden, seed=seed,
                  forget_bias=None if cell != "lstm" or forget_bias == "default"
                  else float(forget_bias))
with view:
    try:
        profile = cached_profile(model_args["cell"], model_args["nonlinearity"], T, init,
                                 model_args["radius"], hidden, model_args["forget_bias"], seed)
    except ValueError as error:
        profile = None
        st.error(f"Cannot build this model: {error}")
    if profile is not None:
        label = CELL_NAMES[cell] + (f" ({model_args['nonlinearity']})" if cell == "rnn" else "")
        decay = profile.decay
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("Spectral radius of W_hh", f"{profile.radius:.3f}",
                  help="Largest |eigenvalue| over the gates' recurrent blocks.")
        m2.metric("Factor per step back", f"× {decay.per_step:.3f}"
                  if math.isfinite(decay.per_step) else "n/a",
                  help="Fitted by least squares on log ‖dŷ/dh_t‖: below 1 vanishes, above 1 "
                       "explodes.")
        if math.isfinite(decay.per_step) and decay.per_step > 1:
            m3.metric("Doubles every", f"{math.log(2) / math.log(decay.per_step):.1f} steps")
        else:
            half = decay.half_life
            m3.metric("Half-life", f"{half:.1f} steps" if math.isfinite(half) else "none")
        ratio = profile.first_to_last
        m4.metric(f"Gradient at t=1 vs t={T}", f"{ratio:.1e}" if math.isfinite(ratio)
                  else "overflow")
        if profile.overflowed:
            st.error(f"The hidden state overflowed float32 at step {profile.overflow_step}: "
                     "the forward pass itself exploded, and from there on the numbers are inf "
                     "or NaN. Lower the spectral radius or the sequence length.")
        st.plotly_chart(gradient_profile_figure(profile, label), width="stretch",
                        key="profile_chart")
    with st.expander("What am I looking at?"):
        st.markdown(
            "Each point is the size of the gradient of the model's output with respect to the "
            "hidden state h_t, for t counted back from the last step, averaged over "
            f"{profile.samples if profile else 4} random adding-problem sequences, and divided "
            "by its size at the last step. Backpropagation multiplies it by the recurrent "
            "Jacobian once per step, so it shrinks or grows geometrically: a straight line on "
            "this log scale. The dashed line is that fit.\n\n"
            "- A **tanh RNN** at PyTorch's default init has W_hh with spectral radius about "
            "1/√3 ≈ 0.58, and tanh' ≤ 1: the gradient shrinks by about 0.6 per step, to "
            "nothing within a hundred steps (Pascanu et al. 2013).\n"
            "- Scale W_hh up (radius well above 1) and it **explodes** instead; with relu "
            "even the forward pass overflows.\n"
            "- The **LSTM** carries gradient along its cell state c_t, scaled by the forget "
            "gate at each step: a forget bias of 1 or more keeps f_t near 1 and the gradient "
            "alive for longer. The **GRU**'s update gate does the same through h_t "
            "(PyTorch: h' = (1 − z)·n + z·h, so z near 1 keeps the old state).\n\n"
            "The model is untrained here: this is where training *starts*. The objective is "
            "the prediction ŷ; d loss/d h_t = (d loss/d ŷ)·(d ŷ/d h_t) decays at the same rate.")

# -- part 2: a short training run, plain and tamed ------------------------------------------------
st.subheader("Train it on the adding problem: does clipping tame the explosion?")
st.caption(f"Trains the model above ({T} steps per sequence) from the same start and on the same "
           "batches twice: plain, and with your clipping / truncation. Always predicting 1 "
           "scores MSE 0.167; beating that means the model learned to carry a number across "
           "time.")
c1, c2, c3, c4, c5, c6 = st.columns([1, 1.4, 1.4, 1, 1.3, 1.2])
optimizer = c1.selectbox("Optimizer", list(OPTIMIZERS), key="optimizer",
                         help="SGD uses momentum 0.9.", **URL)
lr = c2.select_slider("Learning rate", LEARNING_RATES, 0.1, key="lr", **URL)
steps = c3.select_slider("Steps", STEPS, 300, key="steps", **URL)
clip = c4.radio("Clip the gradient", list(CLIP_MODES), index=1, key="clip",
                help="by its whole L2 norm, or each value separately", **URL)
threshold = c5.select_slider("Clip threshold", THRESHOLDS, 1.0, key="threshold",
                             disabled=clip == "off", **URL)
with c6:
    tbptt = st.toggle("Truncated BPTT", key="tbptt", **URL)
    window = st.select_slider("Window (steps)", WINDOWS, 10, key="window", disabled=not tbptt,
                              **URL)

session: TrainingSession | None = st.session_state.get(SESSION)
b1, b2, _ = st.columns([1, 1, 5])
if b1.button("Run", type="primary", disabled=session is not None and session.running,
             width="stretch"):
    training = LabTraining(optimizer=OPTIMIZERS[optimizer], learning_rate=lr, steps=steps,
                           clip=clip, clip_threshold=threshold,
                           tbptt=window if tbptt else None, seed=seed)
    try:
        model = build_lab_model(**model_args)
        session = TrainingSession(lab_runs(model, T, cell, training)).start()
        st.session_state[SESSION] = session
    except ValueError as error:
        st.error(f"Cannot start this run: {error}")


def stop_session() -> None:
    running_session = st.session_state.get(SESSION)
    if running_session is not None:
        running_session.stop()


running = session is not None and session.running
b2.button("Stop", disabled=not running, on_click=stop_session, width="stretch")


@st.fragment(run_every=POLL_SECONDS if running else None)
def live_training() -> None:
    current: TrainingSession | None = st.session_state.get(SESSION)
    if current is None:
        st.info("Press **Run** to train. Try the *Exploding* preset: the plain run blows up to "
                "an infinite loss within a few dozen steps; the clipped one stays finite.")
        return
    snapshot = current.snapshot()
    runs, ended, every = chart_series(snapshot)
    colors = {p.label: CELL_COLORS["rnn"] if p.label == PLAIN_LABEL else CELL_COLORS["lstm"]
              for p in snapshot}
    for p in snapshot:
        st.progress(p.fraction, text=p.progress_text)
    first_config = snapshot[-1].config
    left, right = st.columns(2)
    left.plotly_chart(loss_figure(runs, (1 / 6, "always predict 1"), ended, colors,
                                  "Loss (MSE): training (solid) and held-out (dashed)", every),
                      width="stretch", key="lab_loss")
    right.plotly_chart(grad_norm_figure(runs, first_config.clip_norm, ended, colors),
                       width="stretch", key="lab_grad")
    for p in snapshot:
        if p.error is not None:
            st.error(f"{p.label}: the run failed: {p.error}")
        elif p.cancelled:
            st.info(f"**{p.label}** was stopped while it waited for a free training slot.")
        elif p.result is not None:
            kind, sentence = verdict(p.result)
            getattr(st, kind)(f"**{p.label}** ({p.result.steps} steps, "
                              f"{p.result.seconds:.1f} s): {sentence}")
    if running:
        rerun_page_once_when_done(current, FINAL_RERUN)  # the buttons come back, no polling


live_training()
with st.expander("Clipping and truncation, in short"):
    st.markdown(
        "- **Clipping by norm** rescales the whole gradient when its L2 norm exceeds the "
        "threshold (`torch.nn.utils.clip_grad_norm_`): the direction is kept, the step is "
        "bounded. **By value** clamps every entry to ±threshold (`clip_grad_value_`), which "
        "can change the direction.\n"
        "- **Truncated BPTT** backpropagates through at most *window* steps at a time: the "
        "hidden state flows on, its gradient does not. It bounds the explosion (and the "
        "memory), but the model can no longer learn dependencies longer than the window; "
        "here the two marked numbers are up to T steps apart.\n"
        "- The gradient-norm chart shows the norm *before* clipping, the number clipping acts "
        "on. When a plain run's loss turns infinite, training stops and keeps the last weights "
        "that gave a finite loss.\n"
        f"- Limits: at most {LIMITS.max_training_seconds:g} s per run; the plain run and the "
        "tamed one train at the same time and share the CPU.")
