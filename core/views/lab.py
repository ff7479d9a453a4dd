"""What the Gradient lab computes, without Streamlit: its URL state, a fresh model at a chosen
weight scale, its gradient profile through time, and short training runs on the adding problem
with and without clipping or truncated BPTT.

    state = LabState.from_query(st.query_params)  # invalid values fall back to defaults
    shown = profile(state.measured())              # how far back the gradient reaches
    runs = session_runs(state)                     # plain, and clipped / truncated

A link spells every choice in plain lowercase, e.g.
`?cell=lstm&len=200&rescale=1&radius=3&optimizer=adam&clip=value&tbptt=1&window=20`; defaults
are left out.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace

import numpy as np
from torch import nn

from core.limits import (
    LIMITS, check_hidden_size, check_seq_len, check_training_seconds, check_training_steps,
)
from core.cells import CELLS, cell_info
from core.model import INITS, SequenceModel, build_sequence_model
from core.tasks import get_task
from core.engine import trace
from core.engine.analysis import (
    GradientDecay, fit_decay, recurrent_blocks, spectral_radius, with_spectral_radius,
)
from core.training.loop import OPTIMIZERS, TrainConfig, TrainResult, model_spec
from core.training.session import (
    RunSpec, check_learning_rate, describe_result, event_spacing,
)
from core.views.state import PageState, number_of, one_of, whole, yes_no


# -- the Gradient lab: a fresh model at a chosen weight scale, its gradient profile, and a
#    short training run on the adding problem with and without clipping / truncation ---------

NONLINEARITIES = cell_info("rnn").nonlinearities  # the vanilla RNN's: tanh, relu
#: The largest spectral radius the lab lets a user ask for; at 10 a relu RNN overflows float32
#: within a few dozen steps, which is already the whole lesson.
MAX_RADIUS = 10.0
LAB_TASK = "adding"
CLIP_MODES = ("off", "norm", "value")
#: Sequences a gradient profile averages over.
PROFILE_SAMPLES = 4


def _check_lab_number(value: object, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
            or not np.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} must be a number from {low:g} to {high:g}; got {value!r}.")
    return float(value)


def build_lab_model(cell: str, hidden_size: int = 32, nonlinearity: str = "tanh",
                    radius: float | None = None, init: str = "default", seed: int = 0,
                    forget_bias: float | None = None, update_bias: float | None = None
                    ) -> SequenceModel:
    """A fresh (untrained) adding-problem model whose recurrent weights have `radius` as the
    spectral radius of every gate's block (None keeps the initialiser's scale). `nonlinearity`
    ("tanh" or "relu") applies to the vanilla RNN only; `forget_bias` to the LSTM's forget gate
    and `update_bias` to the GRU's update gate (their total bias, b_ih + b_hh)."""
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(CELLS)}")
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"the nonlinearity must be tanh or relu; got {nonlinearity!r}")
    hidden_size = check_hidden_size(hidden_size)
    if radius is not None:
        radius = _check_lab_number(radius, "The spectral radius", 0.0, MAX_RADIUS)
    model = build_sequence_model(model_spec(get_task(LAB_TASK), cell, hidden_size), seed=seed,
                                 init=init, forget_bias=forget_bias if cell == "lstm" else None,
                                 update_bias=update_bias if cell == "gru" else None)
    if cell == "rnn" and nonlinearity == "relu":
        tanh_rnn = model.rnn
        model.rnn = nn.RNN(tanh_rnn.input_size, hidden_size, num_layers=tanh_rnn.num_layers,
                           nonlinearity="relu", batch_first=True)
        model.rnn.load_state_dict(tanh_rnn.state_dict())
    if radius is not None:
        model.rnn = with_spectral_radius(model.rnn, radius)
    return model


def recurrent_radius(rnn: nn.RNNBase) -> float:
    """The largest spectral radius over the recurrent blocks of the first layer."""
    return max(spectral_radius(block) for block in recurrent_blocks(rnn))


@dataclass(frozen=True)
class GradientProfile:
    """How the gradient of a model's output reaches back through time, averaged over samples."""

    decay: GradientDecay  # norm of d output / d h_t by distance from the end (geometric mean)
    cell_decay: GradientDecay | None  # the same through the LSTM's cell state c_t
    radius: float  # spectral radius of the recurrent weights (largest over gate blocks)
    seq_len: int
    samples: int
    hidden_max: float  # the largest |h_t| seen: inf or nan when the forward pass overflowed
    overflow_step: int | None  # first step whose hidden state is not finite, if any

    @property
    def overflowed(self) -> bool:
        return self.overflow_step is not None

    @property
    def relative(self) -> np.ndarray:
        """Norms relative to the one at the last step: 1 = as strong as where the loss is."""
        return self.decay.norm / self.decay.norm[0] if self.decay.norm[0] > 0 else self.decay.norm

    @property
    def first_to_last(self) -> float:
        """Gradient at the first step over the one at the last: 1e-10 means vanished."""
        return float(self.relative[-1])

    @property
    def per_step(self) -> float:
        """The factor per step back that the page and its lessons state: `first_to_last`
        spread evenly over the steps between (first_to_last^(1 / (T - 1))), so that it and the
        ratio beside it agree; where that is not finite (an overflowed run), the least-squares
        fit over the steps that are. The fit alone disagreed where the curve is not a steady
        decay: an LSTM at forget bias 3 drops tenfold in its first step and is nearly flat
        after, and its fit said ×0.998 per step beside 0.073 after 100 steps (0.974 each)."""
        ratio = self.first_to_last
        if math.isfinite(ratio) and ratio > 0 and self.seq_len > 1:
            return ratio ** (1 / (self.seq_len - 1))
        return self.decay.per_step


def gradient_profile(model: SequenceModel, seq_len: int, samples: int = PROFILE_SAMPLES,
                     seed: int = 0) -> GradientProfile:
    """Trace `model` (an adding-problem SequenceModel) on `samples` seeded sequences of length
    `seq_len` and average norm(d prediction / d h_t) by distance from the end (geometric mean).

    The objective is the prediction, not the loss: since d loss / d h_t = (d loss / d ŷ) ·
    (d ŷ / d h_t), both decay by the same factor per step, and the prediction does not overflow
    where an exploding model's squared error already does.
    """
    task = get_task(LAB_TASK)
    seq_len = task.seq_len.resolve(check_seq_len(seq_len))
    hidden_norms, cell_norms, hidden_max, overflow_step = [], [], 0.0, None
    for k in range(samples):
        example = task.sample(seed + k, seq_len)
        with np.errstate(over="ignore", invalid="ignore"):
            tr = trace(model.rnn, model.features(example.inputs), task.objective(model, None))
        hidden_norms.append(tr.grad_hidden[-1, 0, ::-1].astype(np.float64))
        if tr.grad_cell is not None:
            cell_norms.append(tr.grad_cell[-1, 0, ::-1].astype(np.float64))
        finite_steps = np.isfinite(tr.hidden[-1, 0]).all(axis=-1)
        if not finite_steps.all():
            first = int(np.argmin(finite_steps))
            overflow_step = first if overflow_step is None else min(overflow_step, first)
            hidden_max = float("inf")
        elif np.isfinite(hidden_max):
            hidden_max = max(hidden_max, float(np.abs(tr.hidden).max()))
    return GradientProfile(
        decay=fit_decay(_geometric_mean(hidden_norms)),
        cell_decay=fit_decay(_geometric_mean(cell_norms)) if cell_norms else None,
        radius=recurrent_radius(model.rnn), seq_len=seq_len, samples=samples,
        hidden_max=hidden_max, overflow_step=overflow_step,
    )


def _geometric_mean(rows: list[np.ndarray]) -> np.ndarray:
    """Per column: exp(mean(log)). A zero anywhere gives 0 (vanished), an inf gives inf and a
    nan gives nan, so neither an underflow nor an overflow is averaged away."""
    stacked = np.stack(rows)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        result = np.exp(np.log(stacked).mean(axis=0))
    result[np.isnan(stacked).any(axis=0)] = np.nan
    return result


@dataclass(frozen=True)
class LabTraining:
    """The Gradient lab's training choices (the model's own come from build_lab_model)."""

    optimizer: str = "sgd"
    learning_rate: float = 0.1
    steps: int = 300
    clip: str = "norm"  # "off" | "norm" | "value"
    clip_threshold: float = 1.0
    tbptt: int | None = None  # truncation window in steps; None = full backpropagation
    batch_size: int = 50
    seed: int = 0
    max_seconds: float = 60.0

    @property
    def tames(self) -> bool:
        return self.clip != "off" or self.tbptt is not None

    def describe(self) -> str:
        parts = []
        if self.clip == "norm":
            parts.append(f"clipping the norm at {self.clip_threshold:g}")
        elif self.clip == "value":
            parts.append(f"clipping each value at ±{self.clip_threshold:g}")
        if self.tbptt is not None:
            parts.append(f"truncated BPTT over {self.tbptt} steps")
        return "with " + " and ".join(parts) if parts else "plain (no clipping, full BPTT)"


PLAIN_LABEL = "without clipping or truncation"


def lab_runs(model: SequenceModel, seq_len: int, cell: str, training: LabTraining
             ) -> list[RunSpec]:
    """The lab's training runs on the adding problem, each from a copy of `model`'s weights and
    on the very same batches: a plain run (no clipping, full BPTT) and, when `training` clips or
    truncates, a run that does. Every value is checked against core.limits."""
    seq_len = check_seq_len(seq_len)
    steps = check_training_steps(training.steps)
    seconds = check_training_seconds(training.max_seconds)
    if training.optimizer not in OPTIMIZERS:
        raise ValueError(f"The optimizer must be one of {', '.join(OPTIMIZERS)}; "
                         f"got {training.optimizer!r}.")
    learning_rate = check_learning_rate(training.learning_rate)
    if training.clip not in CLIP_MODES:
        raise ValueError(f"Clipping must be one of {', '.join(CLIP_MODES)}; got {training.clip!r}.")
    threshold = _check_lab_number(training.clip_threshold, "The clipping threshold", 1e-6, 1e6)
    tbptt = training.tbptt
    if tbptt is not None:
        # a window as long as the sequence is full backpropagation: allowed, not an error
        tbptt = min(seq_len, int(_check_lab_number(tbptt, "The truncation window", 1,
                                                   LIMITS.max_seq_len)))
    base = dict(hidden_size=model.rnn.hidden_size, optimizer=training.optimizer,
                learning_rate=learning_rate, batch_size=training.batch_size, seq_len=seq_len,
                seed=training.seed, max_steps=steps, max_seconds=seconds, **event_spacing(steps))
    runs = [RunSpec(PLAIN_LABEL, LAB_TASK, cell,
                    TrainConfig(clip_norm=None, clip_value=None, tbptt=None, **base),
                    copy.deepcopy(model))]
    if training.tames:
        tamed = TrainConfig(clip_norm=threshold if training.clip == "norm" else None,
                            clip_value=threshold if training.clip == "value" else None,
                            tbptt=tbptt, **base)
        label = replace(training, tbptt=tbptt).describe()
        runs.append(RunSpec(label, LAB_TASK, cell, tamed, copy.deepcopy(model)))
    return runs


def verdict(result: TrainResult) -> tuple[str, str]:
    """(kind, sentence) for a finished lab run: "error" when it diverged, "success" when it
    clearly beat the 0.167 baseline, "warning" when it stayed finite but did not learn."""
    kind, sentence = describe_result(result)
    if kind == "warning":
        sentence = sentence.replace("Did not learn (yet)", "Stayed finite but did not learn")
    return kind, sentence


# -- the page's state: every choice, in the URL -------------------------------------------------

#: The sequence length T: not bound to the task's length range (10 .. 1000, in steps of 5).
LENGTHS = (10, 1000, 5)
RADIUS_RANGE = (0.0, min(5.0, MAX_RADIUS), 0.05)  # the spectral-radius slider: low, high, step
RADII = tuple(round(RADIUS_RANGE[2] * i, 2)
              for i in range(round(RADIUS_RANGE[1] / RADIUS_RANGE[2]) + 1))
FORGET_BIASES = ("default", "0", "1", "2", "3")
UPDATE_BIASES = FORGET_BIASES  # the GRU's update gate, the same choices
HIDDEN_SIZES = (8, 16, 32, 64, 128, 256)
MAX_SEED = 10_000
OPTIMIZER_ORDER = ("sgd", "adam", "rmsprop")  # SGD first: the lesson's optimiser
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0)
THRESHOLDS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
STEPS = (100, 200, 300, 500, 1000, 2000)
WINDOWS = (2, 5, 10, 20, 50)


@dataclass(frozen=True)
class LabState(PageState):
    """Every choice of the Gradient lab; kept in the URL so a link reproduces the experiment:
    first the model (part 1, MODEL_CHOICES), then how it trains (part 2)."""

    cell: str = one_of("rnn", CELLS)
    nonlinearity: str = one_of("tanh", NONLINEARITIES)  # the vanilla RNN's
    len: int = whole(100, LENGTHS[0], LENGTHS[1])  # T, the sequence length
    init: str = one_of("default", INITS)
    rescale: bool = yes_no(False)  # scale W_hh to `radius`
    radius: float = number_of(1.0, RADII)
    forget_bias: str = one_of("default", FORGET_BIASES)  # the LSTM's
    update_bias: str = one_of("default", UPDATE_BIASES)  # the GRU's
    hidden: int = number_of(32, HIDDEN_SIZES)
    seed: int = whole(0, 0, MAX_SEED)
    optimizer: str = one_of("sgd", OPTIMIZERS)
    lr: float = number_of(0.1, LEARNING_RATES)
    steps: int = number_of(300, STEPS)
    clip: str = one_of("norm", CLIP_MODES)
    threshold: float = number_of(1.0, THRESHOLDS)
    tbptt: bool = yes_no(False)
    window: int = number_of(10, WINDOWS)

    @classmethod
    def from_query(cls, params) -> "LabState":
        """Also reads the length from `T`, its name in links made before every key was
        lowercase."""
        if "T" in params and "len" not in params:
            params = {**params, "len": params["T"]}
        return super().from_query(params)

    def normalised(self) -> "LabState":
        """T on the slider's grid."""
        low, _, step = LENGTHS
        return replace(self, len=low + round((self.len - low) / step) * step)

    def measured(self) -> "LabState":
        """Only the choices the gradient profile depends on (the model and T), the training
        choices at their defaults: changing how it trains does not measure it again."""
        return replace(LabState(), **{name: getattr(self, name) for name in MODEL_CHOICES})

    def model_args(self) -> dict:
        """build_lab_model's arguments: a choice greyed out on the page does not count."""
        return dict(cell=self.cell, hidden_size=self.hidden,
                    nonlinearity=self.nonlinearity if self.cell == "rnn" else "tanh",
                    radius=self.radius if self.rescale else None, init=self.init,
                    seed=self.seed,
                    forget_bias=None if self.cell != "lstm" or self.forget_bias == "default"
                    else float(self.forget_bias),
                    update_bias=None if self.cell != "gru" or self.update_bias == "default"
                    else float(self.update_bias))

    def model_label(self) -> str:
        """"RNN (tanh)", "LSTM", "GRU": the profile chart's title."""
        name = cell_info(self.cell).display_name
        return f"{name} ({self.model_args()['nonlinearity']})" if self.cell == "rnn" else name

    def training(self) -> LabTraining:
        return LabTraining(optimizer=self.optimizer, learning_rate=self.lr, steps=self.steps,
                           clip=self.clip, clip_threshold=self.threshold,
                           tbptt=self.window if self.tbptt else None, seed=self.seed)


#: The choices part 1's model and its gradient profile depend on.
MODEL_CHOICES = ("cell", "nonlinearity", "len", "init", "rescale", "radius", "forget_bias",
                 "update_bias", "hidden", "seed")

#: One click sets a whole experiment (choices not named keep their values).
PRESETS = {
    "Vanishing: tanh RNN": dict(cell="rnn", nonlinearity="tanh", rescale=False, init="default",
                                len=100),
    "Exploding: radius 3": dict(cell="rnn", nonlinearity="tanh", rescale=True, radius=3.0,
                                init="default", len=50, optimizer="sgd", lr=0.1, clip="norm",
                                threshold=1.0, tbptt=False),
    "LSTM, forget bias 3": dict(cell="lstm", rescale=False, init="default", forget_bias="3",
                                len=100),
    "GRU, update bias 3": dict(cell="gru", rescale=False, init="default", update_bias="3",
                               len=100),
}


def profile(state: LabState) -> GradientProfile:
    """The gradient profile of the fresh model `state` describes, over T = state.len steps.
    ValueError with a message when the model cannot be built."""
    return gradient_profile(build_lab_model(**state.model_args()), state.len, seed=state.seed)


def session_runs(state: LabState) -> list[RunSpec]:
    """The runs part 2 trains: the very model of part 1, plain and (if chosen) tamed."""
    return lab_runs(build_lab_model(**state.model_args()), state.len, state.cell,
                    state.training())


@dataclass(frozen=True)
class Number:
    """One number shown above the profile chart."""

    label: str
    value: str
    help: str | None = None


def profile_numbers(shown: GradientProfile) -> list[Number]:
    """The radius, the factor per step (`GradientProfile.per_step`), the half-life (or
    doubling time) it gives and the first-to-last ratio, in words."""
    per_step, ratio = shown.per_step, shown.first_to_last
    if math.isfinite(per_step) and per_step > 1:
        pace = Number("Doubles every", f"{math.log(2) / math.log(per_step):.1f} steps")
    else:
        half = math.log(0.5) / math.log(per_step) if 0 < per_step < 1 else math.inf
        pace = Number("Half-life", f"{half:.1f} steps" if math.isfinite(half) else "none")
    return [
        Number("Spectral radius of W_hh", f"{shown.radius:.3f}",
               "Largest |eigenvalue| over the gates' recurrent blocks."),
        Number("Factor per step back", f"× {per_step:.3f}" if math.isfinite(per_step)
               else "n/a", "The gradient's change from the last step to the first, spread "
                           "evenly over the steps (the dashed line is a least-squares fit, "
                           "which a curve that is not a steady decay follows poorly): below 1 "
                           "vanishes, above 1 explodes."),
        pace,
        Number(f"Gradient at t=1 vs t={shown.seq_len}",
               f"{ratio:.1e}" if math.isfinite(ratio) else "overflow"),
    ]
