"""The Explore page's logic, without Streamlit: URL state, choices -> model, example, trace.

    state = ExploreState.from_query(st.query_params)  # invalid values fall back to defaults
    choice = resolve_model(state)                      # shipped, session, random or uploaded
    result = run(state, choice, make_example(state))   # trace, prediction, target, baseline
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from core.cells import CELLS
from core.engine import Trace, trace
from core.figures.explore import SHOW_WORDS, WORDS_ROW_PX, rank_units, words_fit
from core.figures.style import InputSequence
from core.io.tables import CsvChoice
from core.limits import FLOAT32_MAX, LIMITS, check_seq_len, check_text, check_trace_size
from core.numerics import flush_denormal
from core.sharing import torch_threads
from core.seq2seq import KIND as SEQ2SEQ, trace_encoder_decoder
from core.tasks import ALL_TASKS, TASKS, Example, get_task
from core.training import zoo
from core.training.loop import TrainResult
from core.training.snapshots import MAX_SNAPSHOTS
from core.views import models
from core.views.models import SOURCES, ModelChoice
from core.views.own_model import Fed, Objective, feed_ids, feed_numbers, feed_text, run_own
from core.views.state import PageState, free_text, one_of, whole

INPUTS = ("sample", "text", "csv")
PICKS = ("index", "most active", "most variable")
INPUT_LABELS = {"sample": "seeded sample", "text": "my own text / numbers", "csv": "CSV column"}
MAX_SEED = 2**31 - 1
MAX_RUN_LABEL = 200


#: What a user's own model (no built-in task's model) can be fed, and how the page names it.
OWN_INPUTS = ("task", "text", "ids", "rows", "file")
OWN_INPUT_LABELS = {"task": "the task's input (as the Input choice below)",
                    "text": "text, through my vocabulary", "ids": "token ids",
                    "rows": "numbers I type", "file": "a CSV / NPY / NPZ file"}


@dataclass(frozen=True)
class OwnInput:
    """What a user's own model is fed, and what its gradients are of (not in the URL: the
    model is not). `kind` is one of OWN_INPUTS; `text` is typed text, ids or rows; `by` says how
    text is tokenised; `matrix` is a read file (core.io.sequences.Matrix); `standardise` asks
    for each feature scaled to zero mean and unit variance before it is fed."""

    kind: str = "task"
    text: str = ""
    by: str = "characters"
    matrix: object = None
    standardise: bool = False
    objective: Objective | None = None  # None: its head's output, or without one the sum

    @property
    def key(self) -> tuple:
        """What decides the trace: never the file's numbers, its digest."""
        return (self.kind, self.text, self.by, getattr(self.matrix, "key", None),
                self.standardise, self.objective)


class NeedsInput(ValueError):
    """Nothing is wrong yet: the page waits for the visitor to type or upload something (it
    asks for it, and the last view stays, without an error's red)."""


@dataclass(frozen=True)
class ExploreState(PageState):
    """Every choice on the Explore page; kept in the URL so a link reproduces the view."""

    task: str = one_of("agreement", ALL_TASKS)  # the landing view: "The cat ... was", trained LSTM
    cell: str = one_of("lstm", CELLS)
    net: str = one_of(models.ONE, models.NETWORKS)  # the shipped network: one layer, or another
    # "trained" was the shipped model's name in links made before sources had one word each
    source: str = one_of("shipped", SOURCES, aliases={"trained": "shipped"})
    seed: int = whole(0, 0, MAX_SEED)  # weights seed for a fresh random init
    run: str = free_text("", MAX_RUN_LABEL)  # label of a model trained in this browser session
    input: str = one_of("sample", INPUTS)
    sample: int = whole(0, 0, MAX_SEED)  # seed of the sampled example
    text: str = free_text("", LIMITS.max_text_chars)
    len: int = whole(0, 0, LIMITS.max_seq_len)  # sequence length; 0 = the task's default
    layer: int = whole(0, 0, 16)
    direction: int = whole(0, 0, 1)
    pick: str = one_of("index", PICKS)
    unit: int = whole(0, 0, LIMITS.max_hidden_size)
    t: int = whole(0, 0, LIMITS.max_seq_len)
    snap: int = whole(models.FINAL, models.FINAL, MAX_SNAPSHOTS)  # a step of the model's history

    @classmethod
    def defaults(cls) -> "ExploreState":
        """The view with no choices made: a shipped trained LSTM, on agreement if it ships."""
        shipped_lstm = [task for task, cell in zoo.available() if cell == "lstm"]
        for task in (cls.task, "adding", *TASKS):
            if task in shipped_lstm:
                return cls(task=task)
        return cls()

    def normalised(self) -> "ExploreState":
        """Clamp what depends on other choices: the length to the task's range, CSV input to
        the airline task."""
        length = normalised_length(self.task, self.len)
        inp = "sample" if self.input == "csv" and self.task != "airline" else self.input
        net = self.net if self.net in models.networks(self.task) else models.ONE
        return replace(self, len=length, input=inp, net=net)

    def holds_own(self) -> bool:
        """Whether the view shows something of the visitor's that the page's widgets hold: an
        uploaded model or CSV file, or a model trained in this browser session."""
        return self.source in ("upload", "session") or self.input == "csv"

    def traced(self) -> "ExploreState":
        """The choices a trace depends on (not where the cursor is or which unit is drawn)."""
        return replace(self, layer=0, direction=0, pick="index", unit=0, t=0)


def normalised_length(task: str, length: int) -> int:
    """A length within the task's range, else 0 (the task's default); 0 for a fixed length."""
    seq = get_task(task).seq_len
    if seq.fixed or not seq.min <= length <= seq.max or length == seq.default:
        return 0
    return length


# ---------------------------------------------------------------------------------------------
# Models


def sources(task: str) -> list[str]:
    """The model sources a task offers: an encoder-decoder (a seq2seq task) is shipped or drawn
    at random only (the Train page and uploads give one recurrent network, not the pair)."""
    if get_task(task).kind == SEQ2SEQ:
        return ["shipped", "random"]
    return list(SOURCES)


def resolve_model(state: ExploreState,
                  upload: models.Upload | tuple[bytes, str] | None = None,
                  session_models: Mapping[str, TrainResult] | None = None) -> ModelChoice:
    """The model for `state`. Raises ValueError with a user-facing message when it cannot.

    `upload` is the uploaded file with its chosen module and nonlinearity (`models.Upload`,
    or a plain `(data, filename)`); `session_models` are the models trained in this browser
    session (label -> TrainResult).
    """
    task = get_task(state.task)
    if state.source not in sources(task.name):
        raise ValueError(f"{task.title} runs an encoder and a decoder together: pick its "
                         "shipped trained models or a fresh random init.")
    if state.source == "session":
        result = (session_models or {}).get(state.run)
        if result is None:
            raise ValueError("That model was trained in another browser session (or is gone): "
                             "train one on the Train page, then open it here.")
        if result.task != task.name:
            raise ValueError(f"“{state.run}” was trained on another task; pick {task.title} "
                             "models only.")
        return models.at_snapshot(models.from_session(state.run, result), state.snap,
                                  task.name, result)
    if state.source == "shipped":
        choice = models.shipped(task.name, state.cell, state.net)
        if state.net != models.ONE:  # only the one-layer models ship their training history
            return choice
        return models.at_snapshot(choice, state.snap, task.name)
    if state.source == "random":
        return models.random_init(task.name, state.cell, state.seed, state.net)
    if state.source != "upload":
        raise ValueError(f"unknown model source {state.source!r}")
    if upload is None:
        raise NeedsInput("Upload your model: a PyTorch file (.pt, .pth, .ckpt, .bin or "
                         ".safetensors) with an nn.RNN, nn.LSTM or nn.GRU in it, a Keras "
                         "file (.keras, .h5, .hdf5) or an ONNX file (.onnx).")
    choice = models.uploaded(upload if isinstance(upload, models.Upload) else
                             models.Upload(*upload))
    if choice.user.task is not None and choice.user.task != task.name:
        raise ValueError(f"This file is gatescope's own download of a model trained on "
                         f"{get_task(choice.user.task).title}: choose that task to see it.")
    return choice


def history_steps(state: ExploreState, session_models: Mapping[str, TrainResult] | None = None
                  ) -> list[int]:
    """The training steps at which the model `state` picks can be seen ([] where it has no
    history): the shipped adding and agreement models', or the snapshots a run in this session
    kept."""
    if state.source == "shipped":
        if state.net != models.ONE:
            return []
        return [step for step, _ in models.shipped_history(state.task, state.cell)]
    result = (session_models or {}).get(state.run) if state.source == "session" else None
    return [snapshot.step for snapshot in getattr(result, "snapshots", ())]


# ---------------------------------------------------------------------------------------------
# Inputs



def make_example(view: ExploreState, csv_values: CsvChoice | Sequence[float] | None = None
                 ) -> Example:
    """The example the view asks for. ValueError with a clear message for bad input.

    `csv_values` is the CSV input: a column chosen from an uploaded file (`CsvChoice`, which
    may carry why the file or column cannot be read: that is the message then), or numbers."""
    task = get_task(view.task)
    if view.input == "text":
        text = check_text(view.text)
        if not text.strip():
            raise NeedsInput("Type some input first (the box is empty).")
        example = task.encode(text)
    elif view.input == "csv":
        if task.name != "airline":
            raise ValueError("A CSV column is an input for the airline task only.")
        if csv_values is None:
            raise NeedsInput("Upload a CSV file and pick a column of numbers.")
        if isinstance(csv_values, CsvChoice):
            csv_values = csv_values.numbers()  # the file's or column's problem, if it has one
        example = task.from_values(csv_values)
    else:
        length = view.len or None
        example = task.sample(seed=view.sample, seq_len=length)
    if len(example) == 0:
        raise ValueError("The input is empty.")
    check_seq_len(len(example))
    return example


# ---------------------------------------------------------------------------------------------
# Running


@dataclass
class Result:
    trace: Trace
    example: Example
    tokens: list[str]
    values: np.ndarray | None  # numeric input features (T, F), None for word tasks
    value_names: tuple[str, ...]
    prediction: str
    target: str
    baseline: str
    objective_note: str
    fed_note: str = ""  # what the model read, where it is not what the user gave
    judgement: str = ""  # the answer against the target: "right", "wrong", "off by 0.013"
    right: bool | None = None  # None: no target, or a regression (neither right nor wrong)
    own: bool = False  # a user's own model: no task target or baseline applies to it
    marks_note: str = ""  # the input's words the task's lesson is about, and why
    #: An encoder-decoder's: the first of the decoder's steps (the encoder's are before it);
    #: None for one network.
    handoff: int | None = None

    @property
    def input_sequence(self) -> InputSequence:
        """What the model read, as the figures' input row draws it."""
        return InputSequence(self.tokens, self.values, self.value_names)


#: One intra-op thread for a trace: these small models run a T=200 trace in ~3 ms on one
#: thread, while two threads on two shared, busy cores wait on each other (measured: up to
#: 0.5 s for the same trace, the whole change-to-chart budget).
TRACE_THREADS = 1


def run(view: ExploreState, choice: ModelChoice, example: Example | None,
        own: OwnInput | None = None, teacher_forced: bool = False) -> Result:
    """Trace the chosen model on the example, with the task's loss as the objective; a user's
    own model (no task model) on what `own` feeds it, with the objective it names. An
    encoder-decoder's decoder is traced fed its own answers, or with `teacher_forced` the right
    answer so far."""
    if choice.model is None and choice.user is not None:
        return run_user_model(view, choice, example, own or OwnInput())
    with torch_threads(TRACE_THREADS):
        return _run(view, choice, example, teacher_forced)


def run_user_model(view: ExploreState, choice: ModelChoice, example: Example | None,
                   own: OwnInput) -> Result:
    """The user's module, their embedding and head, their input and their objective."""
    user = choice.user
    if own.kind == "task":
        if example is None:
            raise NeedsInput("Choose an input for the model.")
        task = get_task(view.task)
        fed = feed_numbers(user, _upload_features(user.rnn, task, example).numpy())
        fed = Fed(fed.features, None, tuple(example.tokens), tuple(example.unknown))
    elif own.kind == "text":
        if not own.text.strip():
            raise NeedsInput("Type some text for your model.")
        fed = feed_text(user, own.text, own.by)
    elif own.kind == "ids":
        if not own.text.strip():
            raise NeedsInput("Type the token ids for your model, e.g. 12 5 7.")
        fed = feed_ids(user, own.text)
    elif own.kind == "rows":
        if not own.text.strip():
            raise NeedsInput(f"Type numbers for your model: one step per line, "
                             f"{user.rnn.input_size} per step.")
        from core.io.sequences import parse_rows
        rows = parse_rows(own.text, user.rnn.input_size)
        fed = feed_numbers(user, rows, f"Fed the {len(rows):,} step{'s' if len(rows) > 1 else ''}"
                           f" × {rows.shape[1]} feature{'s' if rows.shape[1] > 1 else ''} "
                           "typed, exactly as given.")
    else:
        if own.matrix is None:
            raise NeedsInput("Upload a CSV, NPY or NPZ file with one column per input feature.")
        values, note = own.matrix.values, f"Fed {own.matrix.source}, exactly as given."
        if own.standardise:
            from core.io.sequences import standardise
            values, note = standardise(values, own.matrix.columns)
        fed = feed_numbers(user, values, note)
    objective = own.objective or Objective("output" if user.head is not None else "sum")
    own_result = run_own(user, fed, objective)
    features = fed.features.numpy()
    values = None if fed.ids is not None else features[:, :3]
    names = () if values is None else tuple(f"x[{j}]" for j in range(values.shape[1]))
    # tokenize's note already says which words were unknown and what became of them
    example = Example(fed.ids if fed.ids is not None else fed.features, None,
                      list(fed.tokens), [] if own.kind == "text" else list(fed.unknown))
    runners_up = ", ".join(f"{label} {p:.2f}" for label, p in own_result.top[1:])
    return Result(own_result.trace, example, list(fed.tokens), values, names,
                  own_result.prediction, "—", "", own_result.objective_note, fed.note,
                  judgement=f"then {runners_up}" if runners_up else "", own=True)


def _run(view: ExploreState, choice: ModelChoice, example: Example,
         teacher_forced: bool = False) -> Result:
    task = get_task(view.task)
    if task.kind == SEQ2SEQ:
        return _run_encoder_decoder(task, choice, example, teacher_forced)
    rnn = choice.rnn
    check_trace_size(rnn.num_layers, 2 if rnn.bidirectional else 1, len(example),
                     rnn.hidden_size)
    with torch.no_grad():
        if choice.model is not None:
            x = choice.model.features(example.inputs).detach().float()
        else:
            x = _upload_features(rnn, task, example)
    objective = None
    note = ""
    prediction, judgement, right = "—", "", None
    if choice.model is not None:
        objective = task.objective(choice.model, example.target)
        note = ("gradients of the task's loss against the target" if example.target is not None
                else "no known target: gradients of the loss against the model's own answer")
    else:
        note = ("your module has no task head here: gradients are of the sum of the top "
                "layer's output at the last step")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"The input is too large for the model: it computes in float32, whose "
                         f"numbers end at about {FLOAT32_MAX:.1e}, and a value of the input "
                         "(as the model reads it) is beyond that. Use smaller numbers.")
    with flush_denormal():  # vanishing gradients turn subnormal (slow); only for the trace
        tr = trace(rnn, x, objective)
    if choice.model is not None:
        with torch.no_grad():
            out = torch.as_tensor(tr.output)
            pred = choice.model.readout(out)
        prediction = task.describe(pred, example)
        judgement, right = task.judge(pred, example)
    target = target_text(task, example)  # "—" when typed input has no known answer
    values, names = None, ()
    if task.vocab is None and choice.model is not None:
        values = example.inputs.detach().float().reshape(len(example), -1).numpy()
        names = tuple(getattr(task, "feature_names", ())) or tuple(
            f"x[{j}]" for j in range(values.shape[1]))
    elif choice.model is None:
        values = x.numpy().reshape(len(example), -1)[:, :3]
    return Result(tr, example, list(example.tokens), values, names, prediction, target,
                  task.baseline_name, note, task.fed_note(example), judgement, right,
                  marks_note=task.marks_note(example))


def trace_example(task, choice: ModelChoice, example: Example, teacher_forced: bool = False):
    """An encoder-decoder's trace of the example (core.seq2seq.trace_encoder_decoder), the
    gradients of the task's loss against its answer; Compare times this too."""
    model = choice.model
    right = torch.as_tensor(example.target) if teacher_forced else None
    return trace_encoder_decoder(model, example.inputs, task.objective(model, example.target),
                                 right_answer=right)


def _run_encoder_decoder(task, choice: ModelChoice, example: Example,
                         teacher_forced: bool) -> Result:
    """The encoder reading the input and the decoder writing its answer on one time axis, the
    gradients of its loss against the right answer; the decoder fed its own previous answers
    as in use, or the right ones (`teacher_forced`). The answer shown is the greedy one."""
    rnn = choice.model.encoder
    check_trace_size(rnn.num_layers, 1, 2 * len(example), rnn.hidden_size)
    with flush_denormal():
        seen = trace_example(task, choice, example, teacher_forced)
    judgement, right = task.judge(seen.logits, example)
    read = task.decoder_reads(seen.fed.tolist())
    note = task.objective_notes["right" if teacher_forced else "own"]
    return Result(seen.trace, example, [*example.tokens, *read], None, (),
                  task.describe(seen.logits, example), target_text(task, example),
                  task.baseline_name, note, task.fed_note(example), judgement,
                  right, marks_note=task.marks_note(example), handoff=seen.handoff)


def _upload_features(rnn: nn.Module, task, example: Example) -> torch.Tensor:
    if example.inputs.dtype.is_floating_point and example.inputs.reshape(len(example), -1).shape[1] == rnn.input_size:
        return example.inputs.float().reshape(len(example), -1)
    n = rnn.input_size
    given = "word ids" if task.vocab is not None else \
        f"{task.input_size} feature{'s' if task.input_size != 1 else ''}"
    fitting = [other.title for other in TASKS.values() if other.vocab is None
               and other.input_size == n and other.name != task.name]
    instead = (f"Pick a task whose input matches ({', '.join(fitting)}), or feed it your own"
               if fitting else "No task gives that: feed it your own")
    raise ValueError(
        f"Your module expects {n} input feature{'s' if n != 1 else ''} per step, but the "
        f"{task.title} task gives {given}. {instead} numbers under **Feed it** (numbers you "
        "type, or a CSV / NPY / NPZ file).")


def target_text(task, example: Example) -> str:
    """The example's answer in the task's own words ("—" when typed input has none)."""
    return task.target_text(example)


def picked_units(state: ExploreState, tr: Trace) -> tuple[list[int], int]:
    """(the units drawn as lines, the unit of the diagram and equations): the chosen unit and
    the next two, or the three most active / most variable ones."""
    if state.pick == "index":
        return [u for u in range(state.unit, state.unit + 3) if u < tr.hidden_size], state.unit
    units = rank_units(tr, state.layer, state.direction, state.pick)
    return units, units[0]


def input_line(inp: InputSequence, most: int = SHOW_WORDS) -> str | None:
    """The input's words as one line of text, where the figure's input row shows only the word
    at the cursor because they would overlap in the narrowest window (`words_fit`): a student
    still reads the whole sentence. None for numbers, for words the row writes out, and past
    `most` steps (a long text reads better in its own box)."""
    tokens = list(inp.tokens)
    if inp.values is not None or not any(tokens) or len(tokens) > most \
            or words_fit(tokens, WORDS_ROW_PX, 13):
        return None
    return "Input: " + " ".join(tokens)
