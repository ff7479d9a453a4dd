"""The Explore page's logic, without Streamlit: URL state, choices -> model, example, trace.

    view = View.from_query(st.query_params)        # invalid values fall back to defaults
    model = resolve_model(view)                     # shipped, fresh random init, or uploaded
    result = run(view, model)                       # example, trace, prediction, target, baseline
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, fields, replace
from typing import Mapping

import numpy as np
import torch
from torch import nn

from core.training import zoo
from core.limits import LIMITS, check_seq_len, check_text, check_trace_size
from core.io.loading import load_user_weights
from core.model import CELLS, SequenceModel
from core.sharing import torch_threads
from core.tasks import TASKS, Example, get_task
from core.engine import Trace, trace
from core.training.loop import TrainResult

SOURCES = ("trained", "session", "random", "upload")
INPUTS = ("sample", "text", "csv")
PICKS = ("index", "most active", "most variable")
SOURCE_LABELS = {"trained": "shipped trained model", "session": "trained in this session",
                 "random": "fresh random init (untrained)",
                 "upload": "my own weights (upload)"}
INPUT_LABELS = {"sample": "seeded sample", "text": "my own text / numbers", "csv": "CSV column"}
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class View:
    """Every choice on the Explore page; kept in the URL so a link reproduces the view."""

    task: str = "agreement"  # the landing view: "The cat ... was" with a trained LSTM
    cell: str = "lstm"
    source: str = "trained"
    seed: int = 0  # weights seed for a fresh random init
    run: str = ""  # label of a model trained in this browser session (the Train page's)
    input: str = "sample"
    sample: int = 0  # seed of the sampled example
    text: str = ""
    len: int = 0  # sequence length; 0 = the task's default
    layer: int = 0
    direction: int = 0
    pick: str = "index"
    unit: int = 0
    t: int = 0

    # -- URL ---------------------------------------------------------------------------------
    @classmethod
    def landing(cls) -> "View":
        """The view with no choices made: a shipped trained LSTM, on agreement if it ships."""
        shipped = [task for task, cell in zoo.available() if cell == "lstm"]
        for task in (cls.task, "adding", *TASKS):
            if task in shipped:
                return cls(task=task)
        return cls()

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> "View":
        """A view from URL query parameters; anything invalid is ignored (its default kept)."""
        view = cls.landing() if "task" not in params else cls()
        updates = {}
        for f in fields(cls):
            raw = params.get(f.name)
            if raw is None:
                continue
            raw = raw[0] if isinstance(raw, list) and raw else raw
            value = _parse(f.name, str(raw))
            if value is not None:
                updates[f.name] = value
        view = replace(view, **updates)
        return view.normalised()

    def to_query(self) -> dict[str, str]:
        """Only the choices that differ from the defaults, so links stay short."""
        default = View()
        return {k: str(v) for k, v in asdict(self).items() if v != getattr(default, k)}

    def normalised(self) -> "View":
        """Clamp what depends on other choices (length to the task's range)."""
        task = get_task(self.task)
        length = self.len
        if length and not task.seq_len.min <= length <= task.seq_len.max:
            length = 0
        if task.seq_len.fixed:
            length = 0
        source = self.source
        inp = self.input
        if inp == "csv" and self.task != "airline":
            inp = "sample"
        return replace(self, len=length, source=source, input=inp)


def _parse(name: str, raw: str):
    raw = raw.strip()
    if name == "task":
        return raw if raw in TASKS else None
    if name == "cell":
        return raw.lower() if raw.lower() in CELLS else None
    if name == "source":
        return raw if raw in SOURCES else None
    if name == "input":
        return raw if raw in INPUTS else None
    if name == "pick":
        return raw if raw in PICKS else None
    if name == "text":
        return raw if len(raw) <= LIMITS.max_text_chars else None
    if name == "run":
        return raw if len(raw) <= 200 else None
    try:
        value = int(raw)
    except ValueError:
        return None
    limits = {"seed": MAX_SEED, "sample": MAX_SEED, "len": LIMITS.max_seq_len, "layer": 16,
              "direction": 1, "unit": LIMITS.max_hidden_size, "t": LIMITS.max_seq_len}
    return value if 0 <= value <= limits[name] else None


# ---------------------------------------------------------------------------------------------
# Models


@dataclass
class ModelChoice:
    """The model a view runs, and how to describe it honestly."""

    model: SequenceModel | None  # the task's full model (features, rnn, head); None for upload
    rnn: nn.Module  # the recurrent module that is traced
    trained: bool
    label: str
    note: str = ""  # a warning to show beside the figures (e.g. "untrained")


def trained_available(task: str, cell: str) -> bool:
    return (task, cell) in set(zoo.available())


def resolve_model(view: View, upload: tuple[bytes, str] | None = None,
                  session_models: Mapping[str, TrainResult] | None = None) -> ModelChoice:
    """The model for `view`. Raises ValueError with a user-facing message when it cannot.

    `session_models` are the models trained in this browser session (label -> TrainResult).
    """
    task = get_task(view.task)
    if view.source == "session":
        result = (session_models or {}).get(view.run)
        if result is None:
            raise ValueError("That model was trained in another browser session (or is gone): "
                             "train one on the Train page, then open it here.")
        if result.task != task.name:
            raise ValueError(f"“{view.run}” was trained on another task; pick {task.title} "
                             "models only.")
        score = result.score
        label = (f"{view.run} · {result.status}, {result.steps} steps · held-out "
                 f"{score.metric} {score.value:.3g} (baseline “{score.baseline_name}”: "
                 f"{score.baseline:.3g})")
        return ModelChoice(result.model, result.model.rnn, True, label)
    if view.source == "trained":
        if not trained_available(task.name, view.cell):
            raise ValueError(
                f"No shipped trained {view.cell.upper()} for {task.title} yet. Choose "
                "“fresh random init” to look at an untrained model.")
        model = zoo.load_model(task.name, view.cell)
        info = zoo.model_info(task.name, view.cell)
        score = info.heldout
        label = (f"trained {view.cell.upper()} · held-out {score['metric']} "
                 f"{score['value']:.3g} (baseline “{score['baseline_name']}”: "
                 f"{score['baseline']:.3g})")
        return ModelChoice(model, model.rnn, True, label)
    if view.source == "random":
        model = zoo.build_model(task, view.cell, seed=view.seed)
        return ModelChoice(model, model.rnn, False,
                           f"UNTRAINED {view.cell.upper()} (random init, seed {view.seed})",
                           "This model is untrained: its gates and predictions mean nothing "
                           "about the task. Use it to see what training changes.")
    if view.source == "upload":
        if upload is None:
            raise ValueError("Upload a .safetensors, .pt or .pth file with the state_dict of "
                             "an nn.RNN, nn.LSTM or nn.GRU.")
        data, filename = upload
        rnn = load_user_weights(data, filename)
        label = (f"your {type(rnn).__name__} from {filename} (input {rnn.input_size}, hidden "
                 f"{rnn.hidden_size}, {rnn.num_layers} layer(s)"
                 f"{', bidirectional' if rnn.bidirectional else ''})")
        return ModelChoice(None, rnn, True, label)
    raise ValueError(f"unknown model source {view.source!r}")


# ---------------------------------------------------------------------------------------------
# Inputs



def make_example(view: View, csv_values: list[float] | None = None) -> Example:
    """The example the view asks for. ValueError with a clear message for bad input."""
    task = get_task(view.task)
    if view.input == "text":
        text = check_text(view.text)
        if not text.strip():
            raise ValueError("Type some input first (the box is empty).")
        example = task.encode(text)
    elif view.input == "csv":
        if task.name != "airline":
            raise ValueError("A CSV column is an input for the airline task only.")
        if csv_values is None:
            raise ValueError("Upload a CSV file and pick a column of numbers.")
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


#: One intra-op thread for a trace: these small models run a T=200 trace in ~3 ms on one
#: thread, while two threads on two shared, busy cores wait on each other (measured: up to
#: 0.5 s for the same trace, the whole change-to-chart budget).
TRACE_THREADS = 1


def run(view: View, choice: ModelChoice, example: Example) -> Result:
    """Trace the chosen model on the example, with the task's loss as the objective."""
    with torch_threads(TRACE_THREADS):
        return _run(view, choice, example)


def _run(view: View, choice: ModelChoice, example: Example) -> Result:
    task = get_task(view.task)
    torch.set_flush_denormal(True)
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
    prediction = "—"
    if choice.model is not None:
        objective = task.objective(choice.model, example.target)
        note = ("gradients of the task's loss against the target" if example.target is not None
                else "no known target: gradients of the loss against the model's own answer")
    else:
        note = ("your module has no task head here: gradients are of the sum of the top "
                "layer's output at the last step")
    tr = trace(rnn, x, objective)
    if choice.model is not None:
        with torch.no_grad():
            out = torch.as_tensor(tr.output)
            pred = choice.model.readout(out)
        prediction = task.describe(pred, example)
    target = target_text(task, example)  # "—" when typed input has no known answer
    values, names = None, ()
    if task.vocab is None and choice.model is not None:
        values = example.inputs.detach().float().reshape(len(example), -1).numpy()
        names = tuple(getattr(task, "feature_names", ())) or tuple(
            f"x[{j}]" for j in range(values.shape[1]))
    elif choice.model is None:
        values = x.numpy().reshape(len(example), -1)[:, :3]
    return Result(tr, example, list(example.tokens), values, names, prediction, target,
                  task.baseline_name, note)


def _upload_features(rnn: nn.Module, task, example: Example) -> torch.Tensor:
    if example.inputs.dtype.is_floating_point and example.inputs.reshape(len(example), -1).shape[1] == rnn.input_size:
        return example.inputs.float().reshape(len(example), -1)
    raise ValueError(
        f"Your module expects {rnn.input_size} input features per step, but the "
        f"{task.title} task gives {task.input_size if task.vocab is None else 'word ids'}. "
        "Pick a task whose input matches, e.g. adding (2 features) or airline (1).")


def target_text(task, example: Example) -> str:
    """The example's answer in the task's own words ("—" when typed text has none).
    Regression targets go through describe() with the example, so the airline task speaks in
    passengers ("next month ≈ 432") rather than in the scaled change the model predicts."""
    if example.target is None:
        return "—"
    if task.kind == "regression":
        return task.describe(torch.as_tensor(example.target), example)
    if task.kind == "classification":
        return task.classes[int(example.target)]
    return " ".join(task.classes[int(t)] for t in torch.as_tensor(example.target).reshape(-1).tolist())


def shared_copy(model: SequenceModel) -> SequenceModel:
    """Zoo models are shared per process; tracing never changes them, but be explicit."""
    return copy.deepcopy(model)
