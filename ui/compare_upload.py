"""Compare's model columns: each cell's model picker, with the visitor's own upload as one of its
choices (that column's uploader appears under it), the uploads read once per file in this
session, the "Training step" slider that takes every column back along its training, and the
head of each column: its model, its answer and held-out score, what an upload is and what is
not known of it, or why its model cannot run on this input.

An upload is a visitor's own: it is read into the session (`session_memo`), never into a cache
that every visitor shares, and it is never in the URL (only that a column is for an upload).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping, NamedTuple

import streamlit as st

from core.cells import CELLS
from core.content import caption
from core.figures.compare import accuracy_distance_figure, gradient_overlay_figure, still_on_stage
from core.figures.style import Stage
from core.tasks import get_task
from core.views import compare as cmp
from core.views.models import SOURCE_LABELS, ModelChoice, Upload, session_labels, uploaded
from ui.compute import session_memo
from ui.state import PageChoices, page_key
from ui.text import plain
from ui.upload import weights_upload
from ui.widgets import answer_metric, select_slider, wrapping_metrics

VERDICT_COLOURS = {"better": "green", "worse": "red", "about the same": "orange"}
PICK_LABELS = {cmp.SHIPPED: SOURCE_LABELS["shipped"], cmp.UPLOAD: SOURCE_LABELS["upload"]}


def model_pickers(choices: PageChoices, task: str, trained: Mapping) -> dict[str, Upload]:
    """Each cell's model: shipped, trained in this session, or the visitor's own upload, whose
    uploader (and its pickers) appears under the picker. Returns the uploads given, by cell."""
    uploads = {}
    for cell in cmp.CELL_ORDER:
        name = CELLS[cell].long_name
        own = [*session_labels(task, trained, cell), cmp.UPLOAD] if cmp.takes_own(task) else []
        choices.widget(st.selectbox, name, cell, [cmp.SHIPPED, *own],
                       lambda pick: PICK_LABELS.get(pick, pick),
                       help="Models you train on the Train page appear here; "
                            f"“{SOURCE_LABELS['upload']}” compares your own file in this column.")
        if choices.values[cell] != cmp.UPLOAD:  # no upload here now: let its weights go
            st.session_state.pop(page_key(f"compare_{cell}", "memo"), None)
        else:
            upload, _ = weights_upload(f"compare_{cell}", f"Your model for the {name} column: "
                                       "weights file, and its vocabulary or Config file if any")
            if upload is not None:
                uploads[cell] = upload
    return uploads


def training_step_slider(choices: PageChoices, found: Mapping[str, cmp.History | str]
                         ) -> None:
    """The "Training step" slider over the columns' snapshots (its last stop, the default, is
    the final models), where every column's model has a history; else a caption saying why
    there is none. A stop no longer offered (a link's, another model's) is the last."""
    size = cmp.slider_size(found)
    stops = [*range(size - 1), cmp.LAST] if size else [cmp.LAST]
    if choices.values["snap"] not in stops:
        choices.set(snap=cmp.LAST)
    if size is None:
        st.caption(plain(cmp.no_history_note(found, choices.values["task"])))
        return
    choices.widget(select_slider, "Training step", "snap", stops, cmp.step_label(found),
                   help="Every column's model as it was along its training, at log-spaced "
                        "steps: the first is its initialisation, the last (the default) the "
                        "final model. The traces, the measures, the gradient and the accuracy "
                        "below are of these weights; a held-out score is shown where the run "
                        "measured one at that step.")


def uploaded_models(uploads: Mapping[str, Upload]) -> dict[str, ModelChoice]:
    """Each column's upload as its model, read once per file and choices in this session.
    ValueError naming the column for a file that cannot be read."""
    chosen = {}
    for cell, upload in uploads.items():
        try:
            chosen[cell] = session_memo(f"compare_{cell}", upload.cache_key,
                                        lambda upload=upload: uploaded(upload))
        except ValueError as err:
            raise ValueError(f"{CELLS[cell].long_name} column: {err}") from err
    return chosen


def model_keys(chosen: Mapping[str, ModelChoice], uploads: Mapping[str, Upload]) -> tuple:
    """What identifies each column's weights for the session's comparison memo: an upload's
    files and choices (its bytes' digests), else the model's own key."""
    return tuple(uploads[cell].cache_key if m.source == "upload" else m.key
                 for cell, m in chosen.items())


def accuracies(cells: Mapping[str, cmp.CellComparison], task: str = "agreement"
               ) -> dict[str, list[dict]]:
    """Accuracy at every distance (agreement: subject to verb; sentiment: the deciding word to
    the end) of each column with a task model (a user's own module has no task head to
    judge): a shipped model's from its metadata, another's measured once (1-2 s) and kept in
    the session with the weights it was measured on (a shipped model's at an earlier training
    step: once per process, for every visitor)."""
    kept = st.session_state.setdefault(page_key("compare", f"accuracy {task}"), {})
    rows = {}
    for cell, c in cells.items():
        choice = c.choice
        if choice.model is None:
            continue
        snapshot = isinstance(choice, cmp.SnapshotChoice)
        if choice.source == "shipped":
            rows[cell] = (shipped_accuracy_at(task, cell, choice.step, choice) if snapshot
                          else cmp.accuracy_by_distance(choice, task))
            continue
        # Keeping the module beside its rows keeps its id (in choice.key) from being reused; a
        # snapshot's key is its final model's with the step (its own module is rebuilt).
        anchor = choice.final.rnn if snapshot else choice.rnn
        if choice.key not in kept or kept[choice.key][0] is not anchor:
            with st.spinner(f"Measuring {choice.label} at every distance…"):
                kept[choice.key] = (anchor, choice.source, cmp.accuracy_by_distance(choice, task))
        rows[cell] = kept[choice.key][2]
    shown = {c.choice.key for c in cells.values()}
    for key in [k for k, (_, source, _) in kept.items() if source == "upload" and k not in shown]:
        del kept[key]  # an upload no longer compared: let its weights go
    return rows


@st.cache_resource(max_entries=2 * len(CELLS) * 8, show_spinner="Measuring the shipped model "
                   "at every distance, at this training step…")
def shipped_accuracy_at(task: str, cell: str, step: int, _choice: cmp.SnapshotChoice
                        ) -> list[dict]:
    """A shipped model's accuracy by distance at an earlier training step: the same
    for every visitor, so measured once per process (the final model's is in its metadata)."""
    return cmp.accuracy_by_distance(_choice, task)


def column_heads(comparison: cmp.Comparison, by_distance: Mapping | None,
                 waiting: list[str], steps: Mapping[str, tuple[int, int]] | None = None) -> None:
    """Each column's head: its name, its model, its answer and held-out verdict; what an upload
    is; or why its model cannot run here (the other columns are compared without it). Along
    training (`steps`: each column's step shown and last step), a final model says so."""
    metric = get_task(comparison.task).metric.name
    for column, cell in zip(st.columns(len(cmp.CELL_ORDER)), cmp.CELL_ORDER):
        with column:
            st.subheader(CELLS[cell].long_name)
            if cell in comparison.problems:
                problem = comparison.problems[cell]
                st.caption(plain(problem.choice.label))
                st.error(plain(problem.message))
                continue
            c = comparison.cells[cell]
            st.caption(plain(c.choice.label))
            step, last = (steps or {}).get(cell, (None, None))
            if step is not None and step == last:  # a snapshot's label says its step
                st.caption(f"at training step {last:,} of {last:,}: the final model")
            if cell in waiting and c.choice.source != "upload":
                st.info(cmp.WAITING_FOR_UPLOAD)
            if isinstance(c.choice, cmp.SnapshotChoice) and c.choice.note:  # its initialisation
                st.caption(plain(c.choice.note))
            elif c.choice.note:  # a file that said what it is against the visitor's choice
                st.warning(plain(c.choice.note))
            for note in cmp.column_notes(cell, c.choice, c.result):
                st.caption(plain(note))
            if c.own:  # the user's head's answer; the task's target is not theirs
                answer_metric("Your head's answer", c.result)
            else:
                answer_metric("Prediction", c.result)
                held_out(c.choice.score, metric, (by_distance or {}).get(cell),
                         c.choice.step if isinstance(c.choice, cmp.SnapshotChoice) else None,
                         comparison.task)


def held_out(score, metric: str, rows: list[dict] | None, step: int | None = None,
             task: str = "agreement") -> None:
    """A task model's held-out score and verdict (at long distances too, given `rows`); for a
    snapshot (at training `step`) the score measured then, or that none was; or "not known"
    for gatescope's download uploaded without the Config file that records it."""
    wrapping_metrics()
    if score is None and step is not None:
        st.metric(f"Held-out {metric}", "not measured", f"at this step ({step:,})",
                  delta_color="gray", delta_arrow="off",
                  help="The run measured its held-out score at a few steps only, and not at "
                       "this one; the final model's score is of other weights.")
        return
    if score is None:
        st.metric(f"Held-out {metric}", "not known", "upload its Config file too",
                  delta_color="gray", delta_arrow="off",
                  help="The score was measured when the model was trained and is saved in the "
                       "Config file (JSON) downloaded beside its weights: upload both together.")
        return
    badge, verdict = cmp.verdict_badge(score, rows and cmp.long_distance_score(score, rows),
                                       task=task)
    when = "when the model was trained" if step is None else f"at training step {step:,}"
    st.metric(f"Held-out {score.metric}", f"{score.value:.4g}", badge,
              delta_color=VERDICT_COLOURS[verdict], delta_arrow="off",
              help=f"Measured {when}, on {score.n} held-out sequences; baseline: "
                   f"{score.baseline_name}; {score.margin_text}.")


def measures(comparison: cmp.Comparison) -> None:
    """The table of each column's size, speed and memory, measured now on this server, with
    how (no lesson: numbers)."""
    st.markdown("**Size, speed and memory**, measured now on this server")
    st.table(cmp.measures_table(comparison.cells))
    if comparison.memory_batch is not None:
        batch, steps = comparison.memory_batch
        st.caption(caption("compare", "measures", batch=batch, steps=steps))
    if measured_note := cmp.measures_note(comparison.cells):
        st.caption(measured_note)


DECAY_TITLE = "How fast the gradient fades, back in time"
STILL_HEIGHT = 640  # px at a stage's design width, 1880: at 1280 x 720 the tour's bar leaves ~460


def decay_figure(cells: Mapping[str, cmp.CellComparison]):
    """Each column's gradient against the steps back from the last, with its fitted decay."""
    return gradient_overlay_figure({cell: c.decay for cell, c in cells.items()})


def accuracy_figure(task: str, accuracy: Mapping[str, list[dict]]):
    """Each column's held-out accuracy against the task's distance (`cmp.CHART_TASKS`)."""
    return accuracy_distance_figure(
        accuracy, distance=cmp.DISTANCE_WORDS[task][1], chance=cmp.DISTANCE_CHANCE[task],
        trained_up_to=cmp.DISTANCE_TRAINED.get(task))


class PresentedStill(NamedTuple):
    """A chart from under Compare's figure, presented in its place."""

    title: str
    figure: object  # made for `stage`
    key: str
    stage: Stage


def presented_still(show: str, cells: Mapping[str, cmp.CellComparison], task: str,
                    stage: Stage) -> PresentedStill | None:
    """The chart under the figure that a presented page shows in its place (`show`, from its
    URL: a tour step on the decay or the accuracy chart): its title, its figure made for its
    stage, its key and that stage; None: the animated figure. Its stage is the figure's, less
    tall (STILL_HEIGHT): the browser scales a stage to fit the window's width and the height
    under the tour bar, and a still chart reads as well wide; so it is drawn larger."""
    if show == "decay":
        title, fig = DECAY_TITLE, decay_figure(cells)
    elif show == "accuracy" and task in cmp.CHART_TASKS:
        title, fig = cmp.DISTANCE_WORDS[task][0], accuracy_figure(task, accuracies(cells, task))
    else:
        return None
    stage = replace(stage, height=STILL_HEIGHT)
    return PresentedStill(title, still_on_stage(fig, stage), f"{show}_chart", stage)

