"""Measurements behind the RNN vs LSTM vs GRU lessons: gradient decay, weight scale, memory, time.

The Compare page and the Gradient lab ask the same questions of any cell: how fast does the
gradient shrink (or grow) per step back in time, what does the recurrent weight scale do to
that, how much memory does training need and how long does a trace take. Each answer is a
pure function here, measured on this machine rather than quoted.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from core.limits import (
    LIMITS, check_hidden_size, check_seq_len, check_training_seconds, check_training_steps,
)
from core.model import CELLS, SequenceModel, build_sequence_model
from core.tasks import get_task
from core.trace import Trace, cell_type_of, trace
from core.train import OPTIMIZERS, TrainConfig, TrainResult, model_spec
from core.training_session import (
    RunSpec, check_learning_rate, describe_result, event_spacing,
)


@dataclass(frozen=True)
class GradientDecay:
    """The norm of d loss / d h_t as a function of distance from the last step."""

    distance: np.ndarray  # (T,): 0 at the last step, T-1 at the first
    norm: np.ndarray  # (T,): the gradient norm at that distance
    per_step: float  # fitted factor per step back in time: < 1 vanishes, > 1 explodes
    span: int  # how many steps the fit used
    log_intercept: float = float("nan")  # the fit's log(norm) at distance 0

    def fitted(self) -> np.ndarray:
        """The fitted norm at every distance: exp(log_intercept) · per_step^distance."""
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            return np.exp(self.log_intercept + self.distance * np.log(self.per_step))

    @property
    def half_life(self) -> float:
        """Steps back in time over which the gradient halves (inf when it does not shrink)."""
        if not 0 < self.per_step < 1:
            return float("inf")
        return float(np.log(0.5) / np.log(self.per_step))


def gradient_decay(trace: Trace, layer: int = -1, direction: int = 0) -> GradientDecay:
    """Fit norm(d loss / d h_t) ≈ a · per_step^(distance from the end) by least squares in log space.

    The fit skips exact zeros (steps the loss does not depend on) and stops at the first
    non-finite value, so an exploding run is fitted over the steps where it is still finite.
    """
    norms = trace.grad_hidden[layer, direction].astype(np.float64)
    if direction == 1:
        # a reverse direction carries gradient towards the end of the input, not the start
        norms = norms[::-1]
    return fit_decay(norms[::-1])


def fit_decay(norms_by_distance: np.ndarray) -> GradientDecay:
    """The decay fit of `gradient_decay` on norms already ordered by distance from the end
    (index 0 = the last step). Values at or below float32's smallest normal number count as
    vanished (underflowed) and are left out, like exact zeros."""
    norms = np.asarray(norms_by_distance, dtype=np.float64)
    distance = np.arange(len(norms))
    finite = np.isfinite(norms)
    usable_until = len(norms) if finite.all() else int(np.argmin(finite))
    usable = norms[:usable_until] > np.finfo(np.float32).tiny
    x, y = distance[:usable_until][usable], np.log(norms[:usable_until][usable])
    if len(x) < 2:
        per_step = intercept = float("nan")
    else:
        slope, intercept = np.polyfit(x, y, 1)
        per_step = float(np.exp(slope))
    return GradientDecay(distance=distance, norm=norms, per_step=per_step, span=int(len(x)),
                         log_intercept=float(intercept))


def spectral_radius(matrix: torch.Tensor) -> float:
    """The largest |eigenvalue| of a square matrix."""
    return float(torch.linalg.eigvals(matrix.detach().double()).abs().max())


def recurrent_blocks(rnn: nn.RNNBase, layer: int = 0, direction: int = 0) -> list[torch.Tensor]:
    """The H×H recurrent matrices, one per gate in PyTorch's order (views into weight_hh)."""
    suffix = f"l{layer}" + ("_reverse" if direction else "")
    weight = getattr(rnn, f"weight_hh_{suffix}")
    return list(weight.split(rnn.hidden_size, dim=0))


def with_spectral_radius(rnn: nn.RNNBase, radius: float) -> nn.RNNBase:
    """A copy of `rnn` whose every recurrent block (each gate's H×H matrix) has this spectral radius.

    For a tanh RNN, a radius below 1 makes gradients vanish (Pascanu et al. 2013); well above 1,
    with relu, they explode. Blocks that are all zeros stay zero.
    """
    if not (radius >= 0 and np.isfinite(radius)):
        raise ValueError(f"The spectral radius must be a finite number ≥ 0; got {radius}.")
    cell_type_of(rnn)
    scaled = copy.deepcopy(rnn)
    with torch.no_grad():
        for layer in range(scaled.num_layers):
            for direction in range(2 if scaled.bidirectional else 1):
                for block in recurrent_blocks(scaled, layer, direction):
                    current = spectral_radius(block)
                    if current > 0:
                        block.mul_(radius / current)
    return scaled


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def training_memory_bytes(model: nn.Module, inputs: torch.Tensor, loss_fn) -> dict[str, int]:
    """Memory one training step needs: the parameters, their gradients, and every tensor autograd
    keeps for the backward pass (counted as the forward saves them, each storage once).

    Counting saved tensors is exact and repeatable, unlike the process's resident size, which
    other sessions and the allocator's caching blur.
    """
    seen: set[int] = set()
    saved = 0

    def pack(tensor: torch.Tensor):
        nonlocal saved
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key not in seen and storage.nbytes():
            seen.add(key)
            saved += storage.nbytes()
        return tensor

    model.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = loss_fn(model(inputs))
    loss.backward()
    model.zero_grad(set_to_none=True)
    parameters = sum(p.numel() * p.element_size() for p in model.parameters())
    return {"parameters": parameters, "gradients": parameters, "activations": saved,
            "total": 2 * parameters + saved}


def median_seconds(fn, repeats: int = 5) -> float:
    """Median wall time of `fn()` over `repeats` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


# -- the Gradient lab: a fresh model at a chosen weight scale, its gradient profile, and a
#    short training run on the adding problem with and without clipping / truncation ---------

NONLINEARITIES = ("tanh", "relu")
#: The largest spectral radius the lab lets a user ask for; at 10 a relu RNN overflows float32
#: within a few dozen steps, which is already the whole lesson.
MAX_RADIUS = 10.0
LAB_TASK = "adding"
CLIP_MODES = ("off", "norm", "value")


def _check_lab_number(value: object, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
            or not np.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} must be a number from {low:g} to {high:g}; got {value!r}.")
    return float(value)


def build_lab_model(cell: str, hidden_size: int = 32, nonlinearity: str = "tanh",
                    radius: float | None = None, init: str = "default", seed: int = 0,
                    forget_bias: float | None = None) -> SequenceModel:
    """A fresh (untrained) adding-problem model whose recurrent weights have `radius` as the
    spectral radius of every gate's block (None keeps the initialiser's scale). `nonlinearity`
    ("tanh" or "relu") applies to the vanilla RNN only."""
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(CELLS)}")
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"the nonlinearity must be tanh or relu; got {nonlinearity!r}")
    hidden_size = check_hidden_size(hidden_size)
    if radius is not None:
        radius = _check_lab_number(radius, "The spectral radius", 0.0, MAX_RADIUS)
    model = build_sequence_model(model_spec(get_task(LAB_TASK), cell, hidden_size), seed=seed,
                                 init=init, forget_bias=forget_bias)
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


def gradient_profile(model: SequenceModel, seq_len: int, samples: int = 4, seed: int = 0
                     ) -> GradientProfile:
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
