"""The Compare page's logic, without Streamlit: one task, one input, the RNN, LSTM and GRU.

    view = CompareState.from_query(st.query_params)          # invalid values fall back to defaults
    models = pick_models(view.task, trained, view.picks())  # shipped, or trained in this session
    example = make_example(view)                            # ValueError with a clear message
    comparison = compare(view, models, example)             # traces, scores, sizes, timings

Every number the page shows is measured here, on this machine: the trace time (median of a few
runs), one training step's memory and time on a batch of the task, the gradient's decay per
step. The held-out score and the training time come from when the model was trained (the zoo's
metadata, or the session's TrainResult), because training again on every visit is not an option.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Mapping

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
from core.tasks import TASKS, Example, get_task
from core.tasks.base import STREAM_TRAIN, rng_for
from core.training import zoo
from core.training.loop import TrainResult
from core.views import explore as ex
from core.views import models
from core.views.models import ModelChoice
from core.views.state import PageState, free_text, one_of, whole

CELL_ORDER = tuple(CELLS)
INPUTS = ("sample", "text")
INPUT_LABELS = {"sample": "seeded sample", "text": "my own text / numbers"}
SHIPPED = ""  # a cell's model pick meaning "the shipped trained model"
#: One training step's memory is measured on at most this many sequence-steps (batch x T), so a
#: long sequence does not take hundreds of MB on a shared server; memory grows linearly in the
#: batch, so the cells' ratios are those of the full batch.
MAX_MEMORY_STEPS = 10_000
#: What to type, per task (the task's own format).
EXAMPLE_TEXT = {
    "adding": "0.3 0.7* 0.1 0.5 0.9* 0.2 0.4 0.8",
    "agreement": "the cats near the old house",
    "airline": "112 118 132 129 121 135 148 148 136 119 104 118",
    "sentiment": "i like this phone , but the battery is awful",
    "names": "he took rose to a nice restaurant",
    "random": "64 numbers per timestep, separated by spaces",
}


@dataclass(frozen=True)
class CompareState(PageState):
    """Every choice on the Compare page; kept in the URL so a link reproduces the view.

    rnn / lstm / gru name the model of each cell: "" for the shipped one, else the label of a
    model trained in this browser session (a link opened elsewhere falls back to the shipped)."""

    task: str = one_of("adding", TASKS)  # the landing view: where the RNN's gradient dies
    input: str = one_of("sample", INPUTS)
    sample: int = whole(0, 0, ex.MAX_SEED)
    text: str = free_text("", LIMITS.max_text_chars)
    len: int = whole(0, 0, LIMITS.max_seq_len)  # the task's length knob; 0 = the task's default
    t: int = whole(0, 0, LIMITS.max_seq_len)  # where the time cursor starts
    rnn: str = free_text(SHIPPED, ex.MAX_RUN_LABEL)
    lstm: str = free_text(SHIPPED, ex.MAX_RUN_LABEL)
    gru: str = free_text(SHIPPED, ex.MAX_RUN_LABEL)

    def normalised(self) -> "CompareState":
        """The length within the task's range; no text unless typed input is chosen (so links
        stay short)."""
        return replace(self, len=ex.normalised_length(self.task, self.len),
                       text=self.text if self.input == "text" else "")

    def picks(self) -> dict[str, str]:
        return {cell: getattr(self, cell) for cell in CELL_ORDER}

    def explore_state(self) -> ex.ExploreState:
        """The same task and input as an Explore state (whose example builder we reuse)."""
        return ex.ExploreState(task=self.task, input=self.input, sample=self.sample,
                               text=self.text, len=self.len)

    def seq_len(self) -> int | None:
        return self.len or None


# ---------------------------------------------------------------------------------------------
# Models: the shipped one per cell, or one trained in this session


def pick_models(task: str, trained: Mapping[str, TrainResult] | None = None,
                picks: Mapping[str, str] | None = None) -> dict[str, ModelChoice]:
    """The model of each cell: the session model named in `picks` when it exists and fits the
    task and cell, else the shipped one."""
    trained = trained or {}
    picks = picks or {}
    chosen = {}
    for cell in CELL_ORDER:
        label = picks.get(cell, SHIPPED)
        if label and label in models.session_labels(task, trained, cell):
            chosen[cell] = models.from_session(label, trained[label])
        else:
            chosen[cell] = models.shipped(task, cell)
    return chosen


def resolved(view: CompareState, chosen: Mapping[str, ModelChoice]) -> CompareState:
    """The view as the comparison's cache key: the cursor left out (moving it recomputes
    nothing) and each cell's pick as the model it resolved to (a pick that names no model of
    this session is the shipped one)."""
    return replace(view, t=0, **{cell: m.label if m.source == "session" else SHIPPED
                                 for cell, m in chosen.items()})


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
    result: ex.Result  # trace, prediction, target
    params: int  # the whole model's parameters (embedding, recurrent module, head)
    rnn_params: int  # the recurrent module's alone
    trace_seconds: float  # median wall time of one trace (forward, one backward, gates)
    step_seconds: float  # median wall time of one training step (forward + backward) on the batch
    memory: dict[str, int]  # core.engine.analysis.training_memory_bytes on the batch
    memory_batch: tuple[int, int]  # (sequences, steps) of that batch
    decay: GradientDecay  # the fitted decay of norm(d loss / d h_t) per step back in time

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

    @property
    def seq_len(self) -> int:
        return len(self.example)

    def input_text(self, limit: int = 600) -> str:
        """The input as one line of text: words as they are, numbers (the first 40) by commas."""
        text = " ".join(self.tokens) if self.values is None else ", ".join(self.tokens[:40])
        return text if len(text) <= limit else text[:limit] + " …"

    @property
    def input_sequence(self) -> InputSequence:
        return InputSequence(self.tokens, self.values, self.value_names)


class _ReadsLengths(nn.Module):
    """A SequenceModel that reads each padded sequence's last real step, for the memory count
    (core.engine.analysis.training_memory_bytes calls model(inputs) with the inputs alone)."""

    def __init__(self, model: SequenceModel, lengths: torch.Tensor, tagging: bool):
        super().__init__()
        self.model, self.lengths, self.tagging = model, lengths, tagging

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
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
    wrapped = _ReadsLengths(copy.deepcopy(model).train(), batch.lengths, task.kind == "tagging")

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
    with flush_denormal():  # vanished gradients must not slow the timings 37x
        for cell in CELL_ORDER:
            picked = chosen[cell]
            model = picked.model
            if picked.cell != cell:
                raise ValueError(f"the model for {cell_info(cell).long_name} is a "
                                 f"{cell_info(picked.cell).display_name}")
            result = ex.run(ex.ExploreState(task=task.name, cell=cell), picked, example)
            with torch.no_grad():
                x = model.features(example.inputs).detach().float()
            objective = task.objective(model, example.target)
            once = median_seconds(lambda: trace(model.rnn, x, objective), repeats=1)
            repeats = trace_repeats if once < 0.05 else max(1, min(trace_repeats, 3))
            trace_seconds = median_seconds(lambda: trace(model.rnn, x, objective), repeats=repeats)
            batch = memory_batch(view, picked.batch_size)
            memory, step_seconds = measure_training_step(model, task.name, batch, step_repeats)
            cells[cell] = CellComparison(
                choice=picked, result=result, params=count_parameters(model),
                rnn_params=count_parameters(model.rnn), trace_seconds=trace_seconds,
                step_seconds=step_seconds, memory=memory,
                memory_batch=(len(batch), int(batch.inputs.shape[1])),
                decay=gradient_decay(result.trace),
            )
    first = cells[CELL_ORDER[0]].result
    return Comparison(task.name, example, first.tokens, first.values, first.value_names, cells,
                      first.objective_note, task.kind == "tagging", target_text(task, example))


target_text = ex.target_text  # one implementation, shared with Explore


def measures_table(cells: Mapping[str, CellComparison]) -> pd.DataFrame:
    """The size, speed and memory of each cell as a table (rows: measures, columns: cells),
    with the GRU / LSTM ratio beside them: the numbers behind "GRU is smaller and faster"."""
    rows = {
        "Parameters (whole model)": lambda c: f"{c.params:,}",
        "Recurrent parameters": lambda c: f"{c.rnn_params:,}",
        "Trace time (median)": lambda c: f"{c.trace_seconds * 1e3:.1f} ms",
        "Training step, forward + backward (median)": lambda c: f"{c.step_seconds * 1e3:.1f} ms",
        "Peak training memory (params + grads + saved activations)":
            lambda c: f"{c.memory['total'] / 2**20:.2f} MiB",
        "Training time (recorded when trained)":
            lambda c: f"{c.choice.train_seconds:.1f} s, {c.choice.train_steps:,} steps",
    }
    ratios = {
        "Parameters (whole model)": lambda c: c.params,
        "Recurrent parameters": lambda c: c.rnn_params,
        "Trace time (median)": lambda c: c.trace_seconds,
        "Training step, forward + backward (median)": lambda c: c.step_seconds,
        "Peak training memory (params + grads + saved activations)": lambda c: c.memory["total"],
        "Training time (recorded when trained)": lambda c: c.choice.train_seconds,
    }
    table = {cell_info(cell).long_name: [fmt(c) for fmt in rows.values()] for cell, c in cells.items()}
    if "gru" in cells and "lstm" in cells:
        table["GRU ÷ LSTM"] = [f"{get(cells['gru']) / get(cells['lstm']):.2f}"
                               if get(cells["lstm"]) else "—" for get in ratios.values()]
    return pd.DataFrame(table, index=list(rows))


# ---------------------------------------------------------------------------------------------
# Agreement: accuracy against subject-verb distance


AGREEMENT_SEED = zoo.FINAL_HELDOUT_SEED
AGREEMENT_PER_DISTANCE = 100


def accuracy_by_distance(picked: ModelChoice, task: str = "agreement") -> list[dict]:
    """Held-out accuracy at each subject-verb distance 1..40 (100 sentences each).

    A shipped model's metadata holds exactly this measurement (same seed, same sentences), made
    when it was saved; it is used as it is. Anything else is measured now (about 1-2 s)."""
    task_obj = get_task(task)
    if task_obj.name != "agreement":
        raise ValueError("accuracy by subject–verb distance is measured on the agreement task")
    if picked.source == "shipped":
        stored = zoo.model_info(task_obj.name, picked.cell).extra.get("accuracy_by_distance")
        if stored and len(stored) == task_obj.seq_len.max:
            return [dict(row) for row in stored]
    with torch_threads(MEASURE_THREADS):
        return task_obj.accuracy_by_distance(picked.model, seed=AGREEMENT_SEED,
                                             per_distance=AGREEMENT_PER_DISTANCE,
                                             max_distance=task_obj.seq_len.max)


def recurrent_params_formula(input_size: int, hidden_size: int) -> dict[str, int]:
    """Parameters of one layer of each cell: gates x (H*(I+H) + 2H). GRU has 3 blocks, LSTM 4."""
    block = hidden_size * (input_size + hidden_size) + 2 * hidden_size
    return {"rnn": block, "lstm": 4 * block, "gru": 3 * block}


def explanation_values(cells: Mapping[str, CellComparison]) -> dict[str, object]:
    """What the page's explanation fills in: the LSTM's sizes and margin, and each cell's
    recurrent parameters at those sizes."""
    lstm = cells["lstm"].choice
    parameters = recurrent_params_formula(lstm.rnn.input_size, lstm.rnn.hidden_size)
    return {"input_size": lstm.rnn.input_size, "hidden_size": lstm.rnn.hidden_size,
            "margin": lstm.score.margin_text, **{cell: f"{n:,}" for cell, n in parameters.items()}}


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


def verdict_badge(score, long_score=None, long_from: int = LONG_FROM) -> tuple[str, str]:
    """(text, verdict) of the badge under a held-out score: the one rule (Score.verdict) on all
    held-out sequences and, where given, on the long distances alone; when the two differ the
    badge says both and takes the worse verdict's colour, so a model at chance beyond a few words
    never gets a plain "better"."""
    text = f"baseline {score.baseline:.4g}: {score.verdict}"
    if long_score is None or long_score.verdict == score.verdict:
        return text + (f", also beyond {long_from} words" if long_score is not None else ""), \
            score.verdict
    order = ("worse", "about the same", "better")
    worse = min(score.verdict, long_score.verdict, key=order.index)
    return (f"{score.verdict} overall; beyond {long_from} words {long_score.value:.2f}: "
            f"{long_score.verdict}", worse)


def gradient_note(cells: Mapping[str, CellComparison]) -> str:
    """The first-to-last ratio of each cell and its raw gradient at the last step beside its
    loss: the raw scale is the loss's, which is why the chart shows ratios."""
    parts = []
    for cell, c in cells.items():
        g = c.result.trace.grad_hidden[-1, 0]
        parts.append(f"{cell_info(cell).long_name} {c.first_to_last:.1e} (raw at the last step "
                     f"{float(g[-1]):.1e}, loss {float(c.result.trace.objective):.2g})")
    return ("Gradient at the first step ÷ at the last step: " + "; ".join(parts) + ". A "
            "confident model (small loss) has small raw gradients everywhere.")
