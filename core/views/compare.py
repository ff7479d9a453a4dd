"""The Compare page's logic, without Streamlit: one task, one input, the RNN, LSTM and GRU.

    view = CompareState.from_query(st.query_params)          # invalid values fall back to defaults
    models = pick_models(view.task, trained, view.picks())  # shipped, or trained in this session
    example = make_example(view)                            # ValueError with a clear message
    comparison = compare(view, models, example)             # traces, scores, sizes, timings

Along training: where every column's model kept a history (the shipped adding and agreement
models, `zoo.load_history`; a session model that kept snapshots, `TrainResult.snapshots`), the
page's "Training step" slider picks a snapshot (`CompareState.snap`, the last by default) and
every column shows its model as it was then (`histories`, `at_snapshots`): traced and timed
again, with the held-out score the run measured at that step where it measured one and "not
measured at this step" where it did not (never a number made up for it).

A column may hold the visitor's own upload (`UPLOAD`; core.views.models.uploaded). gatescope's
own download of the task is compared like a session model. Any other module is traced on the same
input when it reads as many numbers per step as the task gives, with the objective Explore uses
for it by default (its head's output at the last step, else the sum of the top layer's output
there); it has no held-out score and no training step to measure (no task model around it). A
column that cannot run says why (`Comparison.problems`) while the others are compared.

Every number the page shows is measured here, on this machine: the trace time (median of a few
runs), one training step's memory and time on a batch of the task, the gradient's decay per
step. The held-out score and the training time come from when the model was trained (the zoo's
metadata, or the session's TrainResult), because training again on every visit is not an option.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from core.cells import CELLS, cell_info
from core.engine import trace
from core.engine.analysis import (
    GradientDecay, gradient_decay, median_seconds, training_memory_bytes,
)
from core.figures.style import InputSequence
from core.limits import LIMITS
from core.numerics import flush_denormal
from core.model import SequenceModel, count_parameters
from core.sharing import torch_threads
from core.seq2seq import KIND as SEQ2SEQ
from core.tasks import ALL_TASKS, TASKS, Example, Score, get_task
from core.tasks.base import STREAM_TRAIN, rng_for
from core.training import zoo
from core.training.loop import TrainResult
from core.training.snapshots import MAX_SNAPSHOTS, MIN_SNAPSHOTS, model_at
from core.views import explore as ex
from core.views import models
from core.views.models import ModelChoice, score_text
from core.views.own_model import Objective
from core.views.state import PageState, free_text, one_of, whole

CELL_ORDER = tuple(CELLS)
INPUTS = ("sample", "text")
INPUT_LABELS = {"sample": "seeded sample", "text": "my own text / numbers"}
SHIPPED = ""  # a cell's model pick meaning "the shipped trained model"
PLAYER = "player"  # a presented Compare page shows its animated figure ...
PRESENTED_CHARTS = (PLAYER, "decay", "accuracy")  # ... or the decay or accuracy chart
#: A cell's model pick meaning "the visitor's own upload". The URL keeps only that the column was
#: for an upload, never the file: whoever opens such a link sees the shipped model there, with a
#: note, until they upload their own (`WAITING_FOR_UPLOAD`).
UPLOAD = "upload"
WAITING_FOR_UPLOAD = ("This column is for your own model, but no file is uploaded here (a link "
                      "cannot carry one): it shows the shipped model until you upload weights "
                      "under its picker in the sidebar.")
#: One training step's memory is measured on at most this many sequence-steps (batch x T), so a
#: long sequence does not take hundreds of MB on a shared server; memory grows linearly in the
#: batch, so the cells' ratios are those of the full batch.
MAX_MEMORY_STEPS = 10_000
#: `CompareState.snap` for every column's last snapshot: its final model, as without snapshots.
LAST = -1
#: What to type, per task (the task's own format).
EXAMPLE_TEXT = {
    "adding": "0.3 0.7* 0.1 0.5 0.9* 0.2 0.4 0.8",
    "agreement": "the cats near the old house",
    "airline": "112 118 132 129 121 135 148 148 136 119 104 118",
    "sentiment": ("i like this phone , but the battery is awful . i bought it last month . "
                  "my sister's lamp is great . the box was blue . it came with a cable"),
    "names": "rose took him to a nice restaurant . rose bloomed in the garden",
    "charlm": "def area(width, height):\n    return width * (height + 1)",
    "random": "64 numbers per timestep, separated by spaces",
}


@dataclass(frozen=True)
class CompareState(PageState):
    """Every choice on the Compare page; kept in the URL so a link reproduces the view.

    rnn / lstm / gru name the model of each cell: "" for the shipped one, UPLOAD for the
    visitor's own upload, else the label of a model trained in this browser session (a link
    opened elsewhere falls back to the shipped)."""

    task: str = one_of("adding", ALL_TASKS)  # the landing view: where the RNN's gradient dies
    input: str = one_of("sample", INPUTS)
    sample: int = whole(0, 0, ex.MAX_SEED)
    text: str = free_text("", LIMITS.max_text_chars)
    len: int = whole(0, 0, LIMITS.max_seq_len)  # the task's length knob; 0 = the task's default
    t: int = whole(0, 0, LIMITS.max_seq_len)  # where the time cursor starts
    rnn: str = free_text(SHIPPED, ex.MAX_RUN_LABEL)
    lstm: str = free_text(SHIPPED, ex.MAX_RUN_LABEL)
    gru: str = free_text(SHIPPED, ex.MAX_RUN_LABEL)
    # Which snapshot along training the columns show (`at_snapshots`): 0 is the initialisation;
    # LAST (left out of links) the final models. A number beyond the columns' snapshots is the
    # last too (the page clamps it); anything else in a link is dropped.
    snap: int = whole(LAST, 0, MAX_SNAPSHOTS - 1)
    net: str = one_of(models.ONE, models.NETWORKS)  # the shipped columns' network
    # What a presentation of the page shows (a tour step's, or present=1): the animated figure,
    # or one of the charts under it, which a presented page (one screen) has no room for.
    show: str = one_of(PLAYER, PRESENTED_CHARTS)

    def normalised(self) -> "CompareState":
        """The length within the task's range; no text unless typed input is chosen (so links
        stay short); a network the task's zoo does not ship is the one-layer one; the accuracy
        chart only for a task that has one."""
        net = self.net if self.net in models.networks(self.task) else models.ONE
        picks = {} if takes_own(self.task) else {cell: SHIPPED for cell in CELL_ORDER}
        show = PLAYER if self.show == "accuracy" and self.task not in CHART_TASKS else self.show
        return replace(self, len=ex.normalised_length(self.task, self.len),
                       text=self.text if self.input == "text" else "", net=net, show=show,
                       **picks)

    def picks(self) -> dict[str, str]:
        return {cell: getattr(self, cell) for cell in CELL_ORDER}

    def holds_own(self) -> bool:
        """Whether a column shows a model of the visitor's (an upload, or one trained in this
        browser session), which the page's widgets hold."""
        return any(pick != SHIPPED for pick in self.picks().values())

    def explore_state(self) -> ex.ExploreState:
        """The same task and input as an Explore state (whose example builder we reuse)."""
        return ex.ExploreState(task=self.task, input=self.input, sample=self.sample,
                               text=self.text, len=self.len)

    def seq_len(self) -> int | None:
        return self.len or None


# ---------------------------------------------------------------------------------------------
# Models: the shipped one per cell, one trained in this session, or the visitor's upload


def takes_own(task: str) -> bool:
    """Whether a column may hold a model trained in this session or uploaded: not for an
    encoder-decoder task (the Train page and uploads give one network, not the pair)."""
    return get_task(task).kind != SEQ2SEQ


def pick_models(task: str, trained: Mapping[str, TrainResult] | None = None,
                picks: Mapping[str, str] | None = None,
                uploads: Mapping[str, ModelChoice] | None = None,
                network: str = models.ONE) -> dict[str, ModelChoice]:
    """The model of each cell: the session model named in `picks` when it exists and fits the
    task and cell, the column's upload (`uploads`, by cell) when the pick is UPLOAD and a file
    was given, else the shipped one (of `network`)."""
    trained = trained or {}
    picks = picks or {}
    uploads = uploads or {}
    chosen = {}
    for cell in CELL_ORDER:
        label = picks.get(cell, SHIPPED)
        if label == UPLOAD and uploads.get(cell) is not None:
            chosen[cell] = uploads[cell]
        elif label and label in models.session_labels(task, trained, cell):
            chosen[cell] = models.from_session(label, trained[label])
        else:
            chosen[cell] = models.shipped(task, cell, network)
    return chosen


def resolved(view: CompareState, chosen: Mapping[str, ModelChoice]) -> CompareState:
    """The view as the comparison's cache key: the cursor left out (moving it recomputes
    nothing) and each cell's pick as the model it resolved to (a pick that names no model of
    this session is the shipped one; an upload is UPLOAD: the page keys its own cache by the
    file)."""
    picks = {"session": lambda m: m.label, "upload": lambda m: UPLOAD}
    return replace(view, t=0, **{cell: picks.get(m.source, lambda m: SHIPPED)(m)
                                 for cell, m in chosen.items()})


def waiting_for_upload(view: CompareState, given: Iterable[str]) -> list[str]:
    """The cells whose pick is UPLOAD but that have no file (`given`: the cells that have one):
    they show the shipped model meanwhile."""
    given = set(given)
    return [cell for cell, pick in view.picks().items() if pick == UPLOAD and cell not in given]


def column_title(cell: str, choice: ModelChoice, step: tuple[int, int] | None = None
                 ) -> str | None:
    """What the figure adds after the column's name: "your upload (GRU)" for an upload; where
    the columns go along training (`step`: this column's (step, last step)), "step 25 of
    3,000" before the last step; else None (the column's name says it: at the last step the
    page's captions say "the final model", and three such titles ran into each other at 150%
    zoom)."""
    if choice.source == "upload":
        return f"your upload ({cell_info(choice.cell).display_name})"
    if step is not None and step[0] != step[1]:
        return f"step {step[0]:,} of {step[1]:,}"
    return None


def column_notes(cell: str, choice: ModelChoice, result: ex.Result | None = None) -> list[str]:
    """What a column says about an upload beside its label (nothing for other models): another
    cell type than the column's, and for a user's own module (traced: `result`) what its
    gradients are of and why it has no held-out score."""
    if choice.source != "upload":
        return []
    notes = []
    if choice.cell != cell:
        notes.append(f"You uploaded a {cell_info(choice.cell).display_name} into the "
                     f"{cell_info(cell).long_name} column: it is compared as the "
                     f"{cell_info(choice.cell).display_name} it is; the column's title only "
                     "says where it stands.")
    if choice.model is None:
        if result is not None:
            notes.append(f"Gradients here: {result.objective_note} (what Explore traces for "
                         "your own model by default), not the task's loss.")
        notes.append("No held-out score: gatescope scores its task models on the task's "
                     "held-out sequences with the task's head, and your model has its own head "
                     "(or none), trained on your data.")
    return notes


# ---------------------------------------------------------------------------------------------
# Along training: each column's model at one of its snapshots (core/training/snapshots.py)


@dataclass(frozen=True)
class History:
    """A column's model along its training run: the steps of its snapshots (the first 0, the
    last its final model's), the held-out score the run measured at each (None where it
    measured none), what the model is called, and the model at a snapshot by its position."""

    name: str  # "shipped trained LSTM", "trained in this session: adding · LSTM · 10:00"
    steps: tuple[int, ...]
    scores: tuple[Score | None, ...]
    model_at: Callable[[int], SequenceModel] = field(compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.steps)


@dataclass
class SnapshotChoice(ModelChoice):
    """A column's model at a snapshot before its last: the weights the run had after `step`
    of its `last_step` steps. Its score is the one measured at that step (None: not measured),
    and its key is its final model's with the step (the same weights on every rerun)."""

    step: int = 0
    last_step: int = 0
    final: ModelChoice | None = None

    @property
    def key(self) -> str:
        return f"{self.final.key}@step {self.step}"


def shipped_history(task: str, cell: str) -> History | None:
    """The shipped model of task x cell along its training (zoo.load_history), None where it
    ships no history. Its last snapshot's score is the shipped model's; the others' are those
    the history file records (none, for the histories shipped today). RuntimeError where the
    history is not of the shipped model (zoo.load_history says which command remakes it)."""
    task = get_task(task).name
    if task not in zoo.HISTORY_TASKS or not zoo.history_path(task, cell).exists():
        return None
    history = models.shipped_history(task, cell)
    recorded = {s.step: s.score for s in zoo.history_snapshots(task, cell)[0]}
    scores = [recorded.get(step) for step, _ in history[:-1]]
    scores.append(zoo.model_info(task, cell).heldout)
    return History(f"shipped trained {cell_info(cell).display_name}",
                   tuple(step for step, _ in history), tuple(scores),
                   lambda i: history[i][1])


def session_history(label: str, result: TrainResult) -> History | None:
    """A model trained in this session along its run (`result.snapshots`; None where it kept
    fewer than MIN_SNAPSHOTS). Each snapshot's score is the run's check of those weights."""
    snapshots = tuple(getattr(result, "snapshots", None) or ())
    if len(snapshots) < MIN_SNAPSHOTS:
        return None
    return History(f"trained in this session: {label}", tuple(s.step for s in snapshots),
                   tuple(s.score for s in snapshots),
                   lambda i: model_at(result, snapshots[i].step))


def histories(view: CompareState, trained: Mapping[str, TrainResult] | None = None,
              uploaded: Iterable[str] = ()) -> dict[str, History | str]:
    """Each column's model along its training, as `pick_models` picks it (`uploaded`: the
    cells given an upload), or why it has none, in words."""
    trained = trained or {}
    uploaded = set(uploaded)
    task = get_task(view.task)
    found: dict[str, History | str] = {}
    for cell, label in view.picks().items():
        name = cell_info(cell).long_name
        if label == UPLOAD and cell in uploaded:
            found[cell] = f"the {name} column holds your upload, which brings no training history"
        elif label and label in models.session_labels(task.name, trained, cell):
            found[cell] = session_history(label, trained[label]) or (
                f"the {name} column's {label} kept no snapshots (“Snapshots kept” on the Train "
                "page)")
        elif view.net != models.ONE:
            found[cell] = SHIPS_NONE  # only the one-layer, one-direction models ship one
        else:
            try:
                found[cell] = shipped_history(task.name, cell) or SHIPS_NONE
            except RuntimeError as err:
                found[cell] = f"the {name} column's history is not of its model: {err}"
    return found


#: A shipped model without a history: the page names these together (`no_history_note`).
SHIPS_NONE = "shipped without history"


def slider_size(found: Mapping[str, History | str]) -> int | None:
    """How many stops the "Training step" slider has (the most snapshots of any column), or
    None (no slider) unless every column's model has a history."""
    if not found or not all(isinstance(h, History) for h in found.values()):
        return None
    return max(len(h) for h in found.values())


def position(snap: int, count: int, size: int) -> int:
    """Which of a column's `count` snapshots the slider's stop `snap` (of `size`) shows: the
    same fraction of the way along (columns that kept as many snapshots: the same one; the
    first stop is every column's first, the last its last)."""
    k = size - 1 if snap == LAST else min(max(snap, 0), size - 1)
    return round(k * (count - 1) / (size - 1)) if size > 1 else count - 1


def column_steps(found: Mapping[str, History | str], snap: int) -> dict[str, tuple[int, int]]:
    """Each column's (training step shown, last step), {} where there is no slider."""
    size = slider_size(found)
    if size is None:
        return {}
    return {cell: (h.steps[position(snap, len(h), size)], h.steps[-1])
            for cell, h in found.items()}


def at_snapshots(chosen: Mapping[str, ModelChoice], found: Mapping[str, History | str],
                 snap: int) -> dict[str, ModelChoice]:
    """Each column's model at the slider's stop `snap`: a SnapshotChoice before its last
    snapshot, the model itself at it (the final model, as without a slider). Unchanged where
    there is no slider or at LAST."""
    size = slider_size(found)
    if size is None or snap == LAST:
        return dict(chosen)
    shown = {}
    for cell, choice in chosen.items():
        history = found[cell]
        i = position(snap, len(history), size)
        last = choice.source == "upload" or i == len(history) - 1
        shown[cell] = choice if last else snapshot_choice(choice, history, i)
    return shown


#: What a column at its initialisation says beside its label.
INITIALISATION_NOTE = ("Step 0 is this run's initialisation, before any training: its gates and "
                       "predictions say nothing about the task yet.")


def snapshot_choice(final: ModelChoice, history: History, i: int) -> SnapshotChoice:
    """The column's model at its i-th snapshot (not its last), labelled with its step and the
    held-out score measured then, or that none was."""
    step, last, score = history.steps[i], history.steps[-1], history.scores[i]
    model = history.model_at(i).eval()
    measured = score_text(score) if score is not None else NOT_MEASURED
    return SnapshotChoice(
        model.rnn, model, final.source,
        f"{history.name} at training step {step:,} of {last:,} · {measured}", score,
        note=INITIALISATION_NOTE if step == 0 else "", train_seconds=final.train_seconds,
        train_steps=final.train_steps, batch_size=final.batch_size, step=step,
        last_step=last, final=final)


#: A snapshot the run did not evaluate: what its column says instead of a score.
NOT_MEASURED = "held-out score not measured at this step"


def no_history_note(found: Mapping[str, History | str], task: str) -> str:
    """Why there is no "Training step" slider: each column without a history, and why."""
    reasons = [h for h in found.values() if isinstance(h, str) and h != SHIPS_NONE]
    shipped = [cell_info(cell).long_name for cell, h in found.items() if h == SHIPS_NONE]
    if shipped:
        ones = _listed([get_task(t).title for t in zoo.HISTORY_TASKS])
        which = "models" if len(shipped) == len(CELL_ORDER) else _listed(shipped)
        reasons.insert(0, f"the shipped {which} for {get_task(task).title} ship no training "
                          f"history (only the {ones} models ship one)")
    return ("No “Training step” slider: it needs every column's model along its training, "
            f"and {_listed(reasons)}.")


def step_label(found: Mapping[str, History | str]) -> Callable[[int], str]:
    """How the slider reads a stop: "step 25" where every column kept the same steps, else
    "snapshot 3 of 21" (each column's own step is in its label)."""
    size = slider_size(found) or 1
    steps = {h.steps for h in found.values() if isinstance(h, History)}
    if len(steps) == 1:
        (same,) = steps
        return lambda k: f"step {same[position(k, len(same), size)]:,}"
    return lambda k: f"snapshot {position(k, size, size) + 1} of {size}"


# ---------------------------------------------------------------------------------------------
# The input


def make_example(view: CompareState) -> Example:
    """The example all three cells read. ValueError with a clear message for bad input: empty
    text, text the task cannot read, and words the models never saw."""
    example = ex.make_example(view.explore_state())
    if example.unknown:
        task = get_task(view.task)
        shown = ", ".join(f"“{w}”" for w in example.unknown[:10])
        more = f" and {len(example.unknown) - 10} more" if len(example.unknown) > 10 else ""
        known = ", ".join([w for w in task.vocab.words[2:] if w.isalpha()][:24])
        raise ValueError(
            f"Not in the {task.title} vocabulary: {shown}{more}. The models only know the words "
            f"they were trained on (e.g. {known}, …); please use those.")
    return example


# ---------------------------------------------------------------------------------------------
# Running and measuring


@dataclass
class CellComparison:
    """Everything the page shows for one cell."""

    choice: ModelChoice  # the model, where it came from, its recorded score and training
    result: ex.Result  # trace, prediction, target (a user's own module: its head's answer)
    params: int  # the whole model's parameters (embedding, recurrent module, head)
    rnn_params: int  # the recurrent module's alone
    trace_seconds: float  # median wall time of one trace (forward, one backward, gates)
    # One training step on a batch of the task: None for a user's own module, which has no
    # task model (features, loss) around it to train on the task's batch.
    step_seconds: float | None  # median wall time of one training step (forward + backward)
    memory: dict[str, int] | None  # core.engine.analysis.training_memory_bytes on the batch
    memory_batch: tuple[int, int] | None  # (sequences, steps) of that batch
    decay: GradientDecay  # the fitted decay of norm(d loss / d h_t) per step back in time

    @property
    def own(self) -> bool:
        """A user's own module (no task model): traced with its own head's objective."""
        return self.result.own

    @property
    def first_to_last(self) -> float:
        """norm(d loss / d h_t) at the first step over the one at the last (0 = underflowed)."""
        g = self.result.trace.grad_hidden[-1, 0].astype(np.float64)
        return float(g[0] / g[-1]) if g[-1] > 0 else float("nan")


@dataclass
class Comparison:
    task: str
    example: Example
    tokens: list[str]
    values: np.ndarray | None
    value_names: tuple[str, ...]
    cells: dict[str, CellComparison]
    objective_note: str
    loss_at_every_step: bool  # tagging tasks: the decay from the end means little
    target: str  # the answer in the task's words, "—" when unknown
    #: The columns that could not run (an upload that cannot read the task's input, say): each
    #: cell's model and why, in the page's words. The other columns are compared without them.
    problems: dict[str, "CellProblem"] = field(default_factory=dict)

    @property
    def seq_len(self) -> int:
        """The steps the figure shows: the input's, and an encoder-decoder's decoder steps."""
        return next(iter(self.cells.values())).result.trace.seq_len if self.cells \
            else len(self.example)

    @property
    def input_label(self) -> str:
        """How many steps the input is, for the line above the figure."""
        if self.handoff is None:
            return f"{len(self.example)} steps"
        return (f"{len(self.example)} letters, the encoder's steps 0 to {self.handoff - 1}; "
                f"the decoder's follow the dashed line, the hand-off")

    @property
    def handoff(self) -> int | None:
        """Encoder-decoders': the decoders' first step (the encoders' steps are before it)."""
        return next((c.result.handoff for c in self.cells.values()), None)

    @property
    def memory_batch(self) -> tuple[int, int] | None:
        """(sequences, steps) of the batch a training step was measured on; None when no column
        has a task model to train."""
        return next((c.memory_batch for c in self.cells.values() if c.memory_batch), None)

    def input_text(self, limit: int = 600) -> str:
        """The input as one line of text: words as they are, numbers by commas (an encoder-
        decoder's: what the encoder reads, not its decoder's inputs); past `limit` characters
        cut, with " …" to say so (the first 40 numbers, as it was, hid adding's marked numbers
        past step 40 without a sign)."""
        tokens = self.tokens[:self.handoff] if self.handoff is not None else self.tokens
        text = " ".join(tokens) if self.values is None else ", ".join(tokens)
        return text if len(text) <= limit else text[:limit] + " …"

    @property
    def input_sequence(self) -> InputSequence:
        return InputSequence(self.tokens, self.values, self.value_names)


@dataclass(frozen=True)
class CellProblem:
    """A column that could not run: its model and why."""

    choice: ModelChoice
    message: str


class _ReadsLengths(nn.Module):
    """A SequenceModel that reads each padded sequence's last real step, for the memory count
    (core.engine.analysis.training_memory_bytes calls model(inputs) with the inputs alone); an
    encoder-decoder fed the batch's teacher-forced decoder inputs, as it trains."""

    def __init__(self, model: nn.Module, batch, tagging: bool):
        super().__init__()
        self.model, self.lengths, self.tagging = model, batch.lengths, tagging
        self.decoder_inputs = batch.info.get("decoder_inputs")

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.decoder_inputs is not None:
            return self.model(inputs, self.decoder_inputs, self.lengths)
        return self.model(inputs, None if self.tagging else self.lengths)


def memory_batch(view: CompareState, batch_size: int):
    """A training batch of the task at the view's length, capped at MAX_MEMORY_STEPS steps."""
    task = get_task(view.task)
    length = view.seq_len() if view.input == "sample" else None  # typed text: the default
    batch = task.batch(rng_for(0, STREAM_TRAIN), batch_size, length)
    steps = int(batch.inputs.shape[1])
    keep = max(1, min(len(batch), MAX_MEMORY_STEPS // max(1, steps)))
    if keep < len(batch):
        batch = type(batch)(batch.inputs[:keep], batch.targets[:keep], batch.lengths[:keep],
                            {k: v[:keep] for k, v in batch.info.items()})
    return batch


def measure_training_step(model: SequenceModel, task_name: str, batch, repeats: int = 3
                          ) -> tuple[dict[str, int], float]:
    """(memory of one training step, median seconds of one forward + backward) on `batch`,
    on a copy of the model (shared zoo models are never touched)."""
    task = get_task(task_name)
    wrapped = _ReadsLengths(copy.deepcopy(model).train(), batch, task.kind == "tagging")

    def loss_fn(predictions):
        return task.loss(predictions, batch.targets)

    memory = training_memory_bytes(wrapped, batch.inputs, loss_fn)

    def step():
        wrapped.zero_grad(set_to_none=True)
        loss_fn(wrapped(batch.inputs)).backward()

    seconds = median_seconds(step, repeats=repeats)
    wrapped.zero_grad(set_to_none=True)
    return memory, seconds


#: Timings run on one thread: these small models are several times faster on one thread than on
#: two busy ones (threads wait on each other), and one thread is what each cell gets alike.
MEASURE_THREADS = 1


def compare(view: CompareState, chosen: Mapping[str, ModelChoice], example: Example, *,
            trace_repeats: int = 5, step_repeats: int = 3) -> Comparison:
    """Run the same example through each cell's model and measure everything the page shows
    (timings on MEASURE_THREADS threads)."""
    with torch_threads(MEASURE_THREADS):
        return _compare(view, chosen, example, trace_repeats, step_repeats)


def _compare(view: CompareState, chosen: Mapping[str, ModelChoice], example: Example,
             trace_repeats: int, step_repeats: int) -> Comparison:
    task = get_task(view.task)
    cells: dict[str, CellComparison] = {}
    problems: dict[str, CellProblem] = {}
    with flush_denormal():  # vanished gradients must not slow the timings 37x
        for cell in CELL_ORDER:
            picked = chosen[cell]
            if picked.source != "upload" and picked.cell != cell:
                raise ValueError(f"the model for {cell_info(cell).long_name} is a "
                                 f"{cell_info(picked.cell).display_name}")
            try:
                cells[cell] = _measured(view, task, cell, picked, example, trace_repeats,
                                        step_repeats)
            except ValueError as err:
                if picked.source != "upload":  # the input's problem: the page's, not a column's
                    raise
                problems[cell] = CellProblem(picked, str(err))
    if not cells:
        raise ValueError(" ".join(f"{cell_info(cell).long_name} column: {p.message}"
                                  for cell, p in problems.items()))
    # The input row and the task's gradient note come from a task model where there is one:
    # a user's own module sees the same numbers, named x[0], x[1], ... only.
    first = next((c.result for c in cells.values() if not c.own),
                 next(iter(cells.values())).result)
    notes = [first.objective_note] if not first.own else []
    notes += [f"in the {cell_info(cell).long_name} column (your own module), "
              f"{c.result.objective_note}" for cell, c in cells.items() if c.own]
    return Comparison(task.name, example, first.tokens, first.values, first.value_names, cells,
                      "; ".join(notes), task.kind in ("tagging", SEQ2SEQ),
                      target_text(task, example),
                      problems)


def _measured(view: CompareState, task, cell: str, picked: ModelChoice, example: Example,
              trace_repeats: int, step_repeats: int) -> CellComparison:
    """One column: the trace, its timing, and (a task model) one training step on the task.
    ValueError with the page's words when the column's model cannot read this input."""
    user_task = picked.user.task if picked.user is not None else None
    if user_task is not None and user_task != task.name:
        title = TASKS[user_task].title if user_task in TASKS else user_task
        raise ValueError(f"This file is gatescope's own download of a model trained on {title}: "
                         "choose that task to compare it.")
    seq2seq = task.kind == SEQ2SEQ  # teacher-forced: the three decoders read the same input
    result = ex.run(ex.ExploreState(task=task.name, cell=cell), picked, example,
                    teacher_forced=seq2seq)
    model = picked.model
    rnn_params = count_parameters(picked.rnn)
    if seq2seq:  # the encoder and the decoder, traced together
        params = count_parameters(model)
        rnn_params = count_parameters(model.encoder) + count_parameters(model.decoder)
        traced = lambda: ex.trace_example(task, picked, example, True)  # noqa: E731
    elif model is not None:
        with torch.no_grad():
            x = model.features(example.inputs).detach().float()
        objective = task.objective(model, example.target)
        params = count_parameters(model)
    else:  # what Explore traces for a user's module by default (explore.run_user_model)
        user = picked.user
        x = result.example.inputs.detach().float()
        objective = Objective("output" if user.head is not None else "sum").function(user, None)
        params = sum(count_parameters(part) for part in (user.embedding, user.rnn, user.head)
                     if part is not None)
    if not seq2seq:
        traced = lambda: trace(picked.rnn, x, objective)  # noqa: E731
    once = median_seconds(traced, repeats=1)
    repeats = trace_repeats if once < 0.05 else max(1, min(trace_repeats, 3))
    trace_seconds = median_seconds(traced, repeats=repeats)
    memory = step_seconds = batch_shape = None
    if model is not None:
        batch = memory_batch(view, picked.batch_size)
        memory, step_seconds = measure_training_step(model, task.name, batch, step_repeats)
        batch_shape = (len(batch), int(batch.inputs.shape[1]))
    return CellComparison(choice=picked, result=result, params=params,
                          rnn_params=rnn_params, trace_seconds=trace_seconds,
                          step_seconds=step_seconds, memory=memory, memory_batch=batch_shape,
                          decay=gradient_decay(result.trace))


target_text = ex.target_text  # one implementation, shared with Explore


def measures_table(cells: Mapping[str, CellComparison]) -> pd.DataFrame:
    """The size, speed and memory of each cell as a table (rows: measures, columns: cells),
    with the GRU / LSTM ratio beside them: the numbers behind "GRU is smaller and faster".

    What was not measured says so: "—" for a user's own module (no task model to train a step
    of, no recorded training), "not known" for a training run whose record was not uploaded.
    The ratio is shown only while the GRU and LSTM columns hold a GRU and an LSTM."""
    def step(c: CellComparison):
        return None if c.step_seconds is None else c.step_seconds

    def memory(c: CellComparison):
        return None if c.memory is None else c.memory["total"]

    def training(c: CellComparison):
        seconds = c.choice.train_seconds
        return None if c.own or not math.isfinite(seconds) else seconds

    def training_text(c: CellComparison, seconds: float) -> str:
        run = "whole run: " if isinstance(c.choice, SnapshotChoice) else ""  # it went on past
        return f"{run}{seconds:.1f} s, {c.choice.train_steps:,} steps"

    measures = {  # the number of each measure, and how it reads
        "Parameters (whole model)": (lambda c: c.params, lambda c, v: f"{v:,}"),
        "Recurrent parameters": (lambda c: c.rnn_params, lambda c, v: f"{v:,}"),
        "Trace time (median)": (lambda c: c.trace_seconds, lambda c, v: f"{v * 1e3:.1f} ms"),
        "Training step, forward + backward (median)": (step, lambda c, v: f"{v * 1e3:.1f} ms"),
        "Peak training memory (params + grads + saved activations)":
            (memory, lambda c, v: f"{v / 2**20:.2f} MiB"),
        "Training time (recorded when trained)": (training, training_text),
    }

    def shown(c: CellComparison, get, text) -> str:
        value = get(c)
        if value is not None:
            return text(c, value)
        return "not known" if not c.own and get is training else "—"

    table = {cell_info(cell).long_name: [shown(c, *measure) for measure in measures.values()]
             for cell, c in cells.items()}
    if all(cell in cells and cells[cell].choice.cell == cell for cell in ("gru", "lstm")):
        gru, lstm = cells["gru"], cells["lstm"]
        table["GRU ÷ LSTM"] = [f"{get(gru) / get(lstm):.2f}" if get(lstm) and get(gru) is not None
                               else "—" for get, _ in measures.values()]
    return pd.DataFrame(table, index=list(measures))


def measures_note(cells: Mapping[str, CellComparison]) -> str:
    """Why some of the table's cells read "—" or "not known" ("" when none does)."""
    own = [cell_info(cell).long_name for cell, c in cells.items() if c.own]
    unknown = [cell_info(cell).long_name for cell, c in cells.items()
               if not c.own and not math.isfinite(c.choice.train_seconds)]
    notes = []
    if own:
        notes.append(f"{_listed(own)}: no training step or memory is measured for your own "
                     "module (“—”): those are one step of the task's model on a batch of the "
                     "task, and your module has no task model around it. Its parameters are "
                     "its recurrent module's and its head's.")
    if unknown:
        notes.append(f"{_listed(unknown)}: the training time is not known: upload the Config "
                     "file saved beside the weights to see the training run.")
    return " ".join(notes)


def _listed(names: list[str]) -> str:
    """"A", "A and B", "A, B and C"."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


# ---------------------------------------------------------------------------------------------
# Agreement: accuracy against subject-verb distance


AGREEMENT_SEED = zoo.FINAL_HELDOUT_SEED
AGREEMENT_PER_DISTANCE = 100


#: The tasks measured at every distance their lesson is about, and how a page names it: the
#: chart's title and its x axis.
DISTANCE_TASKS = zoo.DISTANCE_TASKS
#: Every task with such a chart: the distance tasks, and the encoder-decoder's input length
#: (each letter is carried across the whole input and the hand-off).
CHART_TASKS = (*zoo.DISTANCE_TASKS, *zoo.LENGTH_TASKS)
DISTANCE_WORDS = {
    "agreement": ("Agreement accuracy against subject–verb distance",
                  "words from subject to verb"),
    "sentiment": ("Sentiment accuracy against the distance from the deciding word",
                  "words from the deciding word to the review's end"),
    "counting": ("Which aⁿbⁿ each model gets right, up to three times its training range",
                 "n (a's, then as many b's)"),
    "copy": ("Copying accuracy against input length: where the one-state hand-off breaks",
             "letters in the input"),
}
#: What each chart's points are, under it.
DISTANCE_NOTES = {
    "agreement": "100 held-out sentences at each distance; longer distances also put more "
                 "attractor nouns between subject and verb.",
    "sentiment": "100 held-out reviews at each distance; the tail after the deciding word is "
                 "neutral remarks and asides that cannot tell the verdict.",
    "counting": "One string aⁿbⁿ at each n, judged right only if the model's answer at every "
                "step of it is right.",
    "copy": "200 held-out inputs at each length, each judged right only if every letter of the "
            "answer is right, the decoder fed its own answers. Chance is 1 in 8 per letter.",
}
#: Where a distance chart marks chance (None: no guess does better than 0) and the range the
#: models trained on (None: every distance was in training).
DISTANCE_CHANCE = {"agreement": 0.5, "sentiment": 0.5, "counting": None, "copy": None}
DISTANCE_TRAINED = {"counting": 30, "copy": 12}


def accuracy_by_distance(picked: ModelChoice, task: str = "agreement") -> list[dict]:
    """Held-out accuracy at each distance 1..the task's longest (100 sentences each): subject
    to verb on agreement, the deciding word to the end on sentiment.

    A shipped model's metadata holds exactly this measurement (same seed, same sentences), made
    when it was saved; it is used as it is. Anything else (a shipped model at an earlier
    snapshot too) is measured now (about 1-2 s)."""
    task_obj = get_task(task)
    if task_obj.name in zoo.LENGTH_TASKS:
        return accuracy_by_length(picked, task_obj)
    if task_obj.name not in DISTANCE_TASKS:
        raise ValueError(f"accuracy by distance is measured on the "
                         f"{_listed(list(CHART_TASKS))} tasks, not on {task_obj.title}")
    if picked.source == "shipped" and not isinstance(picked, SnapshotChoice):
        stored = zoo.model_info(task_obj.name, picked.cell, zoo.architecture_of(
            picked.model.spec)).extra.get("accuracy_by_distance")
        if stored and len(stored) == zoo.distance_range(task_obj):
            return [dict(row) for row in stored]
    with torch_threads(MEASURE_THREADS):
        return task_obj.accuracy_by_distance(picked.model, seed=AGREEMENT_SEED,
                                             per_distance=AGREEMENT_PER_DISTANCE,
                                             max_distance=zoo.distance_range(task_obj))


def accuracy_by_length(picked: ModelChoice, task) -> list[dict]:
    """An encoder-decoder's held-out accuracy at every input length 1..zoo.LENGTH_MAX, as rows
    the distance chart draws ("distance": the input's length): a shipped model's from its
    metadata (the same measurement), another's measured now."""
    if picked.source == "shipped":
        stored = zoo.model_info(task.name, picked.cell).extra.get("accuracy_by_length")
    else:
        stored = None
    if not stored or len(stored) != zoo.LENGTH_MAX:
        with torch_threads(MEASURE_THREADS):
            stored = task.accuracy_by_length(picked.model, seed=zoo.FINAL_HELDOUT_SEED,
                                             per_length=200, max_length=zoo.LENGTH_MAX)
    return [{"distance": row["length"], "accuracy": row["accuracy"], "n": row["n"],
             "symbol_accuracy": row["symbol_accuracy"]} for row in stored]


def recurrent_params_formula(input_size: int, hidden_size: int) -> dict[str, int]:
    """Parameters of one layer of each cell: gates x (H*(I+H) + 2H). GRU has 3 blocks, LSTM 4."""
    block = hidden_size * (input_size + hidden_size) + 2 * hidden_size
    return {"rnn": block, "lstm": 4 * block, "gru": 3 * block}


def explanation_values(cells: Mapping[str, CellComparison], task: str | None = None
                       ) -> dict[str, object]:
    """What the page's explanation fills in: the LSTM column's sizes (another column's when it
    could not run), the margin of "better" (a score's, else the task's rule), and each cell's
    recurrent parameters at those sizes."""
    rnn = (cells.get("lstm") or next(iter(cells.values()))).choice.rnn
    parameters = recurrent_params_formula(rnn.input_size, rnn.hidden_size)
    score = next((c.choice.score for c in cells.values() if c.choice.score is not None), None)
    if score is None:  # only uploads without a recorded score: the task's rule, in the same words
        metric = get_task(task).metric
        score = Score(metric.name, math.nan, math.nan, "", metric.higher_is_better, math.nan, 0)
    return {"input_size": rnn.input_size, "hidden_size": rnn.hidden_size,
            "margin": score.margin_text, **{cell: f"{n:,}" for cell, n in parameters.items()}}


#: Agreement is judged at long distances too: beyond this many words between subject and verb,
#: a model that only learned short spans is at chance (core.claims, agreement_distance).
LONG_FROM = 5


def long_distance_score(score, rows: list[dict], long_from: int = LONG_FROM):
    """The held-out score recomputed on the distances beyond `long_from` (same baseline, same
    rule: Score.verdict), or None when there are no such rows."""
    far = [r for r in rows if r["distance"] > long_from]
    n = sum(int(r.get("n", 1)) for r in far)
    if not n:
        return None
    accuracy = sum(r["accuracy"] * int(r.get("n", 1)) for r in far) / n
    return replace(score, value=float(accuracy), n=n)


#: How a badge names the long distances of each chart task ({} is LONG_FROM).
BEYOND = {"agreement": "beyond {} words", "sentiment": "beyond {} words",
          "counting": "beyond n = {}", "copy": "beyond {} letters"}


def verdict_badge(score, long_score=None, long_from: int = LONG_FROM, task: str = "agreement"
                  ) -> tuple[str, str]:
    """(text, verdict) of the badge under a held-out score: the one rule (Score.verdict) on all
    held-out sequences and, where given, on the long distances alone (named in the task's
    words, BEYOND); when the two differ the badge says both and takes the worse verdict's
    colour, so a model at chance beyond a few words never gets a plain "better"."""
    text = f"baseline {score.baseline:.4g}: {score.verdict}"
    beyond = BEYOND.get(task, BEYOND["agreement"]).format(long_from)
    if long_score is None or long_score.verdict == score.verdict:
        return text + (f", also {beyond}" if long_score is not None else ""), score.verdict
    order = ("worse", "about the same", "better")
    worse = min(score.verdict, long_score.verdict, key=order.index)
    return (f"{score.verdict} overall; {beyond} {long_score.value:.2f}: "
            f"{long_score.verdict}", worse)


def gradient_note(cells: Mapping[str, CellComparison]) -> str:
    """The first-to-last ratio of each cell and its raw gradient at the last step beside its
    loss: the raw scale is the loss's, which is why the chart shows ratios."""
    parts = []
    for cell, c in cells.items():
        g = c.result.trace.grad_hidden[-1, 0]
        of = "your objective" if c.own else "loss"
        parts.append(f"{cell_info(cell).long_name} {c.first_to_last:.1e} (raw at the last step "
                     f"{float(g[-1]):.1e}, {of} {float(c.result.trace.objective):.2g})")
    return ("Gradient at the first step ÷ at the last step: " + "; ".join(parts) + ". A "
            "confident model (small loss) has small raw gradients everywhere.")
