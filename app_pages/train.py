"""Train: any task × cell, or all three cells on the same data, live, in the background.

Each run trains in a child process (core.training.session); a fragment redraws the progress
every second (ui/live.py), so the page never freezes and Stop works at any moment. Finished (or
stopped) models land in st.session_state[TRAINED] (label -> core.training.loop.TrainResult),
where the Explore and Compare pages find them, and download as safetensors + JSON.
"""

from __future__ import annotations

import streamlit as st

from core.figures.training import CELL_COLORS, loss_figure, loss_spread_figure, metric_figure
from core.limits import LIMITS
from core.model import INITS
from core.sharing import MAX_TRAINED_PER_SESSION
from core.tasks import TASKS, get_task
from core.training.session import TrainingSession, keep_newest
from core.views import train as tr
from ui import live, widgets
from ui.content import explain
from core import claims
from ui.opening import open_in
from ui.state import TRAINED, PageChoices, page_key


COLLECTED = page_key("train", "collected")  # the last session copied into TRAINED
choices = PageChoices(tr.TrainState, "train")


def collect(session: TrainingSession | None) -> None:
    """Copy a finished session's models into TRAINED once, keeping the newest few."""
    if session is None or not session.done or st.session_state.get(COLLECTED) is session:
        return
    st.session_state[COLLECTED] = session
    trained = st.session_state.setdefault(TRAINED, {})
    trained.update(session.results())
    keep_newest(trained)  # a bounded number and size of models per browser session


def task_choices() -> tuple[str, ...]:
    """Task, cells and length; returns the cells chosen."""
    pick, values = choices.widget, choices.values
    task_column, cells_column, length_column = st.columns([1.3, 1.6, 2])
    pick(task_column.selectbox, "Task", "task", TASKS, lambda n: TASKS[n].title)
    with cells_column:
        pick(widgets.segmented_control, "Cells", "cells", tr.CELL_CHOICES, tr.CELL_CHOICE_LABELS.get)
    task = get_task(values["task"])
    with length_column:
        widgets.length_slider(choices, task)
    st.caption(task.description)
    return tr.CELL_CHOICES[values["cells"]]


def training_choices(cells: tuple[str, ...]) -> None:
    """The optimiser and the model; gate biases (of the cells chosen), clipping, budget, seed."""
    pick, row = choices.widget, st.columns(5)
    pick(row[0].selectbox, "Optimizer", "optimizer", tr.OPTIMIZER_LABELS,
         tr.OPTIMIZER_LABELS.get, help="SGD uses momentum 0.9.")
    with row[1]:
        pick(widgets.select_slider, "Learning rate", "lr", tr.LEARNING_RATES)
    with row[2]:
        pick(widgets.select_slider, "Hidden size", "hidden", tr.HIDDEN_SIZES)
    pick(row[3].number_input, "Layers", "layers", min_value=1, max_value=LIMITS.max_layers)
    pick(row[4].selectbox, "Initialiser", "init", INITS,
         help="default: PyTorch's U(−1/√H, 1/√H); orthogonal: each gate's W_hh block "
              "orthogonal, biases 0; xavier: Xavier-uniform blocks, biases 0.")
    row = st.columns(5)
    pick(row[0].selectbox, "Forget-gate bias (LSTM)", "forget_bias", tr.GATE_BIASES,
         disabled="lstm" not in cells,
         help="The forget gate's total bias at the start (default: PyTorch's init, f ≈ 0.5). "
              "1 puts f near 0.73 (Jozefowicz et al. 2015), 2 near 0.88: c is kept.")
    pick(row[1].selectbox, "Update-gate bias (GRU)", "update_bias", tr.GATE_BIASES,
         disabled="gru" not in cells,
         help="The update gate's total bias at the start (default: PyTorch's init). "
              "PyTorch's GRU: h' = (1 − z)·n + z·h, so a positive bias keeps the old state.")
    pick(row[2].selectbox, "Clip gradient norm", "clip", tr.CLIP_NORMS)
    pick(row[3].number_input, "Steps", "steps", min_value=1,
         max_value=LIMITS.max_training_steps, step=100)
    pick(row[4].number_input, "Time limit (s)", "seconds", min_value=1,
         max_value=int(LIMITS.max_training_seconds), step=5)
    row = st.columns(2)
    pick(row[0].number_input, "Seed (same seed, same data and initial weights)", "seed",
         min_value=0, max_value=tr.MAX_SEED)
    with row[1]:
        pick(widgets.select_slider, "Snapshots kept", "snapshots", tr.SNAPSHOT_COUNTS,
             tr.snapshot_label, help="Copies of the whole model at log-spaced steps, the start "
             "and the end included, for Explore's and Compare's “Training step” sliders. Each "
             "is a copy of the model, so a big model keeps fewer (a note says so).")


def live_charts(runs: live.Runs) -> dict:
    """The loss, the held-out metric against the task's baseline, and the loss's spread."""
    colors = {p.label: CELL_COLORS[p.cell] for p in runs.snapshot}
    metric = get_task(runs.snapshot[0].task).metric
    return {
        "train_loss": loss_figure(runs.events, None, runs.ended, colors,
                                  heldout_every=runs.heldout_every),
        "train_metric": metric_figure(runs.events, metric.name, runs.baseline(),
                                      metric.higher_is_better, colors, runs.heldout_every),
        "train_spread": loss_spread_figure(runs.events, tr.SPREAD_WINDOW, colors),
    }


def trained_models(trained: dict) -> None:
    """Every model kept in this session: its score, downloads, and links to Explore / Compare."""
    st.subheader("Trained in this session")
    st.caption(f"The newest {MAX_TRAINED_PER_SESSION} (fewer if they are very big) are kept "
               "while this browser tab is open. Explore and Compare can open them; the "
               "safetensors file also loads in the Explore page's upload and in plain PyTorch "
               "(the JSON says how); History holds the snapshots a run kept, in a file of its "
               "own.")
    for label, result in reversed(list(trained.items())):
        score, stem = result.score, tr.file_stem(label)
        row = st.columns([2.4, 2.4, 1.1, 1.1, 1.1, 1.5, 1.5])
        row[0].markdown(f"**{label}**  \n{result.status}, {result.steps:,} steps in "
                        f"{result.seconds:.1f} s")
        row[1].markdown(f"held-out {score.metric} **{score.value:.4g}**  \n"
                        f"baseline ({score.baseline_name}) {score.baseline:.4g}")
        for column, (name, data, file_name, mime) in zip(row[2:5], tr.downloads(result, stem)):
            column.download_button(name, data=data, file_name=file_name, mime=mime,
                                   on_click="ignore", key=f"train_{name.lower()}_{stem}",
                                   width="stretch")
        if row[5].button("Open in Explore", key=f"train_explore_{stem}", width="stretch"):
            open_in("explore", label)
        if row[6].button("Open in Compare", key=f"train_compare_{stem}", width="stretch"):
            open_in("compare", label)


st.header("Train")
st.caption("Train a recurrent network on any task, or all three cells side by side on exactly the "
           "same batches, and watch the losses live. A stopped run keeps what it learned.")
collect(live.session_of("train"))
training_choices(task_choices())
state = choices.state()
choices.publish(state)
live.start_stop("train", "Train", lambda: state.runs(taken=set(st.session_state.get(TRAINED, {}))))
live.panel("train", live.LiveView(
    charts=live_charts,
    idle="Choose a task and cells, then press **Train**. Three cells train at the same time on "
         "the same batches, sharing the CPU."))
explain("train", window=tr.SPREAD_WINDOW, lessons=claims.lessons("train") or "- (none measured "
        "for these defaults)")
if st.session_state.get(TRAINED):
    trained_models(st.session_state[TRAINED])
