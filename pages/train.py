"""Train: any task × cell, or all three cells on the same data, live, in the background.

The run trains in background threads (core.training.session); a fragment redraws its progress
every second, so the page never freezes and Stop works at any moment. Finished (or stopped)
models land in st.session_state["gatescope.trained"] (label -> core.training.loop.TrainResult), where
the Explore and Compare pages find them, and download as safetensors + JSON.
"""

from __future__ import annotations

import re

import streamlit as st
from streamlit.errors import StreamlitAPIException

from core.limits import LIMITS
from core.query import number_binds
from core.tasks import TASKS, get_task
from core.figures.training import (
    CELL_COLORS, loss_figure, loss_spread_figure, metric_figure,
)
from core.sharing import MAX_TRAINED_PER_SESSION
from core.training.session import (
    TrainingSession, chart_series, describe_result, keep_newest, make_train_config,
    train_runs,
)
from core.io.exports import model_files
from ui.live import rerun_page_once_when_done

TRAINED = "gatescope.trained"  # label -> TrainResult, shared with Explore and Compare
OPEN_IN_EXPLORE = "gatescope.explore.open"  # the label Explore should open
OPEN_IN_COMPARE = "gatescope.compare.open"  # the label Compare should put in its cell's place
SESSION = "gatescope.train.session"
FINAL_RERUN = "gatescope.train.final_rerun"  # the session whose end the page has shown
COLLECTED = "gatescope.train.collected"  # ids of sessions already copied into TRAINED
URL = dict(bind="query-params")
# How often a running session's progress is redrawn: each redraw is a script run on the shared
# server (figures built and sent), so not more often than this.
POLL_SECONDS = 1.0
# Options are the words shown, so a link reads ?task=Adding+problem&cells=LSTM&optimizer=Adam.
CELL_CHOICES = {"All three": ["rnn", "lstm", "gru"], "RNN": ["rnn"], "LSTM": ["lstm"],
                "GRU": ["gru"]}
OPTIMIZERS = {"Adam": "adam", "SGD": "sgd", "RMSprop": "rmsprop"}
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0]
HIDDEN_SIZES = [h for h in (4, 8, 16, 32, 64, 128, 256, 512) if h <= LIMITS.max_hidden_size]
GATE_BIASES = ["default", "-1", "0", "1", "2", "3"]
CLIP_NORMS = ["off", "0.25", "0.5", "1", "2", "5"]
SPREAD_WINDOW = 50


def collect(session: TrainingSession) -> None:
    """Copy a finished session's models into the shared dict once, keeping the newest few."""
    done = st.session_state.setdefault(COLLECTED, set())
    if id(session) in done or not session.done:
        return
    done.add(id(session))
    trained = st.session_state.setdefault(TRAINED, {})
    trained.update(session.results())
    keep_newest(trained)  # a bounded number and size of models per browser session


def stop_session() -> None:
    current = st.session_state.get(SESSION)
    if current is not None:
        current.stop()


def open_in(page: str, request_key: str, label: str) -> None:
    """Send a trained model to another page (Explore or Compare) and go there."""
    st.session_state[request_key] = label
    try:
        st.switch_page(f"pages/{page}.py")
    except StreamlitAPIException:  # not registered in this app (e.g. this page alone)
        st.info(f"The {page.title()} page is not available here; the model stays in this session.")


def file_stem(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_").lower() or "model"


# Number inputs bound to the URL: Streamlit raises OverflowError on ?steps=inf, so a value that
# is not a finite number is dropped from the URL and its widget drawn unbound (the default) once.
NUMBER_URL = number_binds(st.query_params, ("layers", "steps", "seconds", "seed"))
for key, bind in NUMBER_URL.items():
    if bind["bind"] is None and key in st.query_params:
        del st.query_params[key]

st.header("Train")
st.caption("Train a recurrent network on any task, or all three cells side by side on exactly the "
           "same batches, and watch the losses live. A stopped run keeps what it learned.")

session: TrainingSession | None = st.session_state.get(SESSION)
if session is not None:
    collect(session)
running = session is not None and session.running

# -- choices -----------------------------------------------------------------------------------
c1, c2, c3 = st.columns([1.3, 1.6, 2])
task_name = c1.selectbox("Task", list(TASKS), key="task", format_func=lambda n: TASKS[n].title,
                         **URL)
task = get_task(task_name)
cells_choice = c2.segmented_control("Cells", list(CELL_CHOICES), default="All three",
                                    key="cells", required=True, **URL)
cells = CELL_CHOICES[cells_choice]
with c3:
    length = task.seq_len
    if length.fixed or length.min == length.max:
        seq_len = length.default
        st.markdown(f"**Length**  \nfixed at {length.default} {length.unit}")
    else:
        # one key per task: each task has its own range and unit
        seq_len = st.slider(f"Length ({length.unit})", length.min,
                            min(length.max, LIMITS.max_seq_len), length.default,
                            key=f"len_{task.name}", **URL)
st.caption(task.description)

c1, c2, c3, c4, c5 = st.columns(5)
optimizer = c1.selectbox("Optimizer", list(OPTIMIZERS), key="optimizer",
                         help="SGD uses momentum 0.9.", **URL)
learning_rate = c2.select_slider("Learning rate", LEARNING_RATES, 2e-3, key="lr", **URL)
hidden_size = c3.select_slider("Hidden size", HIDDEN_SIZES, 64, key="hidden", **URL)
num_layers = c4.number_input("Layers", 1, LIMITS.max_layers, 1, key="layers",
                             **NUMBER_URL["layers"])
init = c5.selectbox("Initialiser", ["default", "orthogonal", "xavier"], key="init",
                    help="default: PyTorch's U(−1/√H, 1/√H); orthogonal: each gate's W_hh "
                         "block orthogonal, biases 0; xavier: Xavier-uniform blocks, biases 0.",
                    **URL)

c1, c2, c3, c4, c5 = st.columns(5)
forget_bias = c1.selectbox("Forget-gate bias (LSTM)", GATE_BIASES, index=3, key="forget_bias",
                           disabled="lstm" not in cells, **URL,
                           help="The forget gate's total bias at the start (default: PyTorch's "
                                "init). 1 puts f near 0.73, so the cell state is kept by default "
                                "(Jozefowicz et al. 2015).")
update_bias = c2.selectbox("Update-gate bias (GRU)", GATE_BIASES, index=0, key="update_bias",
                           disabled="gru" not in cells, **URL,
                           help="The update gate's total bias at the start (default: PyTorch's "
                                "init). PyTorch's GRU: h' = (1 − z)·n + z·h, so a positive bias "
                                "keeps the old state.")
clip = c3.selectbox("Clip gradient norm", CLIP_NORMS, index=3, key="clip", **URL)
steps = c4.number_input("Steps", 1, LIMITS.max_training_steps, 1000, 100, key="steps",
                        **NUMBER_URL["steps"])
seconds = c5.number_input("Time limit (s)", 1, int(LIMITS.max_training_seconds), 60, 5,
                          key="seconds", **NUMBER_URL["seconds"])
seed = st.number_input("Seed (same seed, same data and initial weights)", 0, 1_000_000, 0,
                       key="seed", **NUMBER_URL["seed"])

b1, b2, _ = st.columns([1, 1, 5])
if b1.button("Train", type="primary", disabled=running, width="stretch"):
    try:
        config = make_train_config(
            task.name, steps=steps, seconds=seconds, hidden_size=hidden_size,
            num_layers=num_layers, optimizer=OPTIMIZERS[optimizer], learning_rate=learning_rate,
            seq_len=None if length.fixed else seq_len, init=init,
            forget_bias=None if forget_bias == "default" else float(forget_bias),
            update_bias=None if update_bias == "default" else float(update_bias),
            clip_norm=None if clip == "off" else float(clip), seed=seed)
        runs = train_runs(task.name, cells, config, taken=set(st.session_state.get(TRAINED, {})))
        session = TrainingSession(runs).start()
        st.session_state[SESSION] = session
        running = True
    except ValueError as error:  # LimitError included: its message names the limit
        st.error(f"Cannot start training: {error}")
b2.button("Stop", disabled=not running, on_click=stop_session, width="stretch")


# -- live progress -----------------------------------------------------------------------------
@st.fragment(run_every=POLL_SECONDS if running else None)
def live_progress() -> None:
    current: TrainingSession | None = st.session_state.get(SESSION)
    if current is None:
        st.info("Choose a task and cells, then press **Train**. Three cells train at the same "
                "time on the same batches, sharing the CPU.")
        return
    snapshot = current.snapshot()
    runs, ended, every = chart_series(snapshot)
    colors = {p.label: CELL_COLORS[p.cell] for p in snapshot}
    for p in snapshot:
        st.progress(p.fraction, text=p.progress_text)
    first = get_task(snapshot[0].task)
    left, right = st.columns(2)
    left.plotly_chart(loss_figure(runs, None, ended, colors, heldout_every=every),
                      width="stretch", key="train_loss")
    right.plotly_chart(
        metric_figure(runs, first.metric.name, _baseline(first, snapshot[0].config),
                      first.metric.higher_is_better, colors, every),
        width="stretch", key="train_metric")
    left.plotly_chart(loss_spread_figure(runs, SPREAD_WINDOW, colors), width="stretch",
                      key="train_spread")
    with right:
        for p in snapshot:
            if p.error is not None:
                st.error(f"**{p.label}** failed: {p.error}")
            elif p.cancelled:
                st.info(f"**{p.label}** was stopped while it waited for a free training slot: "
                        "nothing was trained.")
            elif p.result is not None:
                kind, sentence = describe_result(p.result)
                getattr(st, kind)(f"**{p.label}** · {p.result.status}, {p.result.steps:,} steps "
                                  f"in {p.result.seconds:.1f} s. {sentence}")
        with st.expander("How to read these charts"):
            st.markdown(
                "- **Loss**: thin lines are the training loss of each step (a new batch each "
                "time); dashed lines with dots are the loss on a fixed held-out set.\n"
                "- **Held-out metric** against the trivial baseline: a model that does not "
                "beat it has learned nothing useful.\n"
                f"- **Spread**: the standard deviation of the training loss over the last "
                f"{SPREAD_WINDOW} points, a measure of how much it jumps from batch to batch. "
                "The seed texts claim the LSTM's loss is more volatile: see whether its line "
                "sits above the GRU's here.\n"
                "- Runs started together share the CPU, so compare their steps per second "
                "with each other; the Compare page times each cell alone.")
    if running:
        rerun_page_once_when_done(current, FINAL_RERUN)  # results below, buttons back, no polling


@st.cache_data(max_entries=32, show_spinner=False)
def _baseline_value(task_name: str, seed: int, seq_len: int | None) -> float:
    task = get_task(task_name)
    # the very held-out set core.training.loop evaluates on (seed + 7919, at most 500 sequences)
    return task.baseline(task.heldout(seed + 7919, min(500, task.heldout_size), seq_len))


def _baseline(task, config) -> tuple[float, str]:
    return _baseline_value(task.name, config.seed, config.seq_len), task.baseline_name


live_progress()

# -- models trained in this session ------------------------------------------------------------
trained = st.session_state.get(TRAINED, {})
if trained:
    st.subheader("Trained in this session")
    st.caption(f"The newest {MAX_TRAINED_PER_SESSION} (fewer if they are very big) are kept "
               "while this browser tab is open. Explore and Compare can open them; the "
               "safetensors file also loads in the Explore page's upload and in plain PyTorch "
               "(the JSON says how).")
    for label, result in reversed(list(trained.items())):
        score = result.score
        row = st.columns([2.4, 2.4, 1.1, 1.1, 1.5, 1.5])
        row[0].markdown(f"**{label}**  \n{result.status}, {result.steps:,} steps in "
                        f"{result.seconds:.1f} s")
        row[1].markdown(f"held-out {score.metric} **{score.value:.4g}**  \n"
                        f"baseline ({score.baseline_name}) {score.baseline:.4g}")
        stem = file_stem(label)
        row[2].download_button("Weights", data=lambda r=result: model_files(r)[0],
                               file_name=f"{stem}.safetensors", mime="application/octet-stream",
                               on_click="ignore", key=f"weights_{stem}", width="stretch")
        row[3].download_button("Config", data=lambda r=result: model_files(r)[1],
                               file_name=f"{stem}.json", mime="application/json",
                               on_click="ignore", key=f"config_{stem}", width="stretch")
        if row[4].button("Open in Explore", key=f"explore_{stem}", width="stretch"):
            open_in("explore", OPEN_IN_EXPLORE, label)
        if row[5].button("Open in Compare", key=f"compare_{stem}", width="stretch"):
            open_in("compare", OPEN_IN_COMPARE, label)
