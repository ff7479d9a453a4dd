"""Training any task x cell with PyTorch's fused nn.RNN / nn.LSTM / nn.GRU.

    result = train(get_task("adding"), "lstm", TrainConfig(max_steps=3000),
                   on_progress=lambda e: print(e.step, e.loss), should_stop=lambda: False)
    result.model   # trained SequenceModel, eval mode
    result.score   # held-out metric next to the trivial baseline

Every random choice is seeded from `config.seed` (torch, numpy, python). The loop stops at
`max_steps`, at `max_seconds`, when `should_stop()` returns True (the model keeps what it learned
so far), or when the loss turns NaN/Inf: then the weights from the last finite step are restored
and `result.status == "diverged"` says so.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch

from core.limits import (
    check_hidden_size, check_layers, check_training_seconds, check_training_steps,
)
from core.cells import cell_info
from core.model import INITS, ModelSpec, SequenceModel, build_sequence_model
from core.tasks import Batch, Score, Task, get_task
from core.tasks.base import IGNORE, STREAM_PROBE, STREAM_TRAIN, rng_for

OPTIMIZERS = ("adam", "sgd", "rmsprop")


@dataclass
class TrainConfig:
    """Hyperparameters of one training run (defaults follow FIELD_NOTES: Adam, clip 1, H 64)."""

    hidden_size: int = 64
    num_layers: int = 1
    optimizer: str = "adam"  # "adam" | "sgd" | "rmsprop"
    learning_rate: float = 2e-3
    weight_decay: float = 0.0
    batch_size: int = 50
    seq_len: int | None = None  # the task's length knob; None = the task's default
    # When set, each batch's length is drawn uniformly from [min_seq_len, seq_len], so the
    # model works at every length in between, not just at one.
    min_seq_len: int | None = None
    clip_norm: float | None = 1.0  # rescale the whole gradient to at most this L2 norm
    clip_value: float | None = None  # clamp every gradient entry to [-v, v]
    tbptt: int | None = None  # truncated BPTT: backpropagate through at most this many steps
    init: str = "default"  # "default" | "orthogonal" (recurrent) | "xavier"
    forget_bias: float | None = None  # LSTM forget gate's total bias; None = PyTorch's init
    update_bias: float | None = None  # GRU update gate's total bias (z near 1 keeps h)
    seed: int = 0
    max_steps: int = 2000
    max_seconds: float | None = None
    progress_every: int = 25  # steps between progress events
    heldout_every: int = 100  # steps between held-out evaluations (and progress events)
    heldout_size: int = 500  # sequences in the run's one held-out set (see heldout_set)
    threads: int | None = None  # torch threads while training; None leaves the setting alone

    def __post_init__(self) -> None:
        # The app's documented limits (core.limits) hold for every run, scripted ones too.
        check_hidden_size(self.hidden_size)
        check_layers(self.num_layers)
        check_training_steps(self.max_steps)
        if self.max_seconds is not None:
            check_training_seconds(self.max_seconds)
        problems = []
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {', '.join(OPTIMIZERS)}")
        if self.init not in INITS:
            problems.append(f"init must be one of {', '.join(INITS)}")
        for name in ("hidden_size", "num_layers", "batch_size", "max_steps", "progress_every",
                     "heldout_every", "heldout_size"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} must be at least 1")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            problems.append("learning_rate must be a positive number")
        for name in ("clip_norm", "clip_value", "max_seconds"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                problems.append(f"{name} must be positive (or None for no limit)")
        if self.min_seq_len is not None and (
                self.min_seq_len < 1 or (self.seq_len is not None and self.min_seq_len > self.seq_len)):
            problems.append("min_seq_len must be at least 1 and at most seq_len")
        if self.tbptt is not None and self.tbptt < 1:
            problems.append("tbptt must be at least 1 step (or None for full BPTT)")
        if problems:
            raise ValueError("; ".join(problems))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ProgressEvent:
    step: int
    total_steps: int
    loss: float  # training loss, averaged over the steps since the last event
    metric: float | None  # training-distribution metric at the last held-out evaluation
    heldout_loss: float | None  # None until the first held-out evaluation
    heldout_metric: float | None
    elapsed: float  # seconds
    metric_name: str = ""
    # L2 norm of the whole gradient BEFORE clipping, the largest since the last event (with
    # progress_every=1: every update's). What clipping acts on; the Gradient lab plots it.
    grad_norm: float | None = None

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / max(1, self.total_steps))


@dataclass
class TrainResult:
    model: SequenceModel
    task: str
    cell: str
    config: TrainConfig
    steps: int  # optimiser steps taken
    seconds: float
    status: str  # "finished" | "time limit" | "stopped" | "diverged"
    message: str
    score: Score  # held-out, next to the baseline
    history: list[ProgressEvent] = field(default_factory=list)

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"


def heldout_set(task: Task | str, config: TrainConfig, seq_len: int | None = None) -> Batch:
    """The one held-out set of a run: the live held-out curve and the final score are both
    measured on it, so the two numbers a page shows for a run agree. It is drawn from the
    task's held-out stream of the run's seed, which training never draws from (core.tasks)."""
    task = get_task(task)
    size = min(config.heldout_size, task.heldout_size)
    return task.heldout(config.seed, size, task.seq_len.resolve(seq_len or config.seq_len))


def heldout_baseline(task: Task | str, config: TrainConfig) -> float:
    """The trivial baseline's metric on the run's held-out set (the line on the live chart)."""
    task = get_task(task)
    return task.baseline(heldout_set(task, config))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def model_spec(task: Task, cell: str, hidden_size: int = 64, num_layers: int = 1) -> ModelSpec:
    return ModelSpec(
        cell=cell, kind=task.kind, input_size=task.input_size, hidden_size=hidden_size,
        output_size=task.output_size, num_layers=num_layers, vocab_size=task.vocab_size,
    )


def make_optimizer(name: str, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)


def _detach(state):
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def backward_batch(model: SequenceModel, task: Task, batch: Batch, window: int | None) -> float:
    """Forward and backward on one batch, through at most `window` steps at a time (truncated
    BPTT: the state passes on between windows, its gradient does not). Returns the mean loss."""
    T = batch.inputs.shape[1]
    window = T if window is None else min(window, T)
    last = batch.lengths - 1  # many-to-one: where each sequence is read out
    if model.many_to_many:
        count = int((batch.targets != IGNORE).sum())
    else:
        count = len(batch)
    total = 0.0
    state = None
    for start in range(0, T, window):
        stop = min(start + window, T)
        output, state = model.rnn(model.features(batch.inputs[:, start:stop]), state)
        if model.many_to_many:
            chunk_loss = task.loss(model.head(output), batch.targets[:, start:stop],
                                   reduction="sum")
        else:
            here = (last >= start) & (last < stop)
            if not here.any():
                state = _detach(state)
                continue
            rows = here.nonzero().squeeze(1)
            predictions = model.readout(output[rows, last[rows] - start].unsqueeze(1))
            chunk_loss = task.loss(predictions, batch.targets[rows], reduction="sum")
        (chunk_loss / count).backward()
        total += float(chunk_loss.detach())
        state = _detach(state)
    return total / count


def _gradients_finite(model: torch.nn.Module) -> bool:
    return all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def train(
    task: Task | str,
    cell: str,
    config: TrainConfig | None = None,
    on_progress: Callable[[ProgressEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    model: SequenceModel | None = None,
) -> TrainResult:
    """Train `cell` ("rnn", "lstm", "gru") on `task`; see the module docstring.

    `model` continues training an existing SequenceModel instead of a fresh one."""
    task = get_task(task)
    config = config or TrainConfig()
    cell_info(cell)  # ValueError naming the cells there are
    seq_len = task.seq_len.resolve(config.seq_len)
    if config.min_seq_len is not None:
        if not task.seq_len.min <= config.min_seq_len <= seq_len:
            raise ValueError(f"min_seq_len must lie between {task.seq_len.min} and {seq_len} "
                             f"{task.seq_len.unit}")
    torch.set_flush_denormal(True)  # vanishing gradients turn subnormal: 37x slower without
    threads_before = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    try:
        return _train(task, cell, config, seq_len, on_progress, should_stop, model)
    finally:
        torch.set_num_threads(threads_before)


def _train(task, cell, config, seq_len, on_progress, should_stop, model) -> TrainResult:
    if model is None:
        model = build_sequence_model(
            model_spec(task, cell, config.hidden_size, config.num_layers), seed=config.seed,
            init=config.init, forget_bias=config.forget_bias, update_bias=config.update_bias,
        )
    model.train()
    optimizer = make_optimizer(config.optimizer, model.parameters(), config.learning_rate,
                               config.weight_decay)
    batches = rng_for(config.seed, STREAM_TRAIN)
    heldout = heldout_set(task, config, seq_len)
    probe = task.batch(rng_for(config.seed, STREAM_PROBE), len(heldout), seq_len)

    history: list[ProgressEvent] = []
    good_state = copy.deepcopy(model.state_dict())
    status, message = "finished", ""
    start = time.perf_counter()
    losses: list[float] = []
    grad_norms: list[float] = []
    metric = heldout_loss = heldout_metric = None
    step = 0
    while step < config.max_steps:
        if should_stop is not None and should_stop():
            status, message = "stopped", f"stopped by the user after {step} steps"
            break
        if config.max_seconds is not None and time.perf_counter() - start > config.max_seconds:
            status, message = "time limit", f"time limit of {config.max_seconds:g} s reached"
            break
        length = seq_len
        if config.min_seq_len is not None:
            length = int(batches.integers(config.min_seq_len, seq_len + 1))
        batch = task.batch(batches, config.batch_size, length)
        optimizer.zero_grad(set_to_none=True)
        loss = backward_batch(model, task, batch, config.tbptt)
        if not math.isfinite(loss) or not _gradients_finite(model):
            # The current weights gave a non-finite loss: go back to the ones before the last
            # update, the last that gave a finite loss.
            model.load_state_dict(good_state)
            step = max(0, step - 1)
            status = "diverged"
            message = (f"the loss became {loss} at step {step + 1}: training stopped and the "
                       f"last weights that gave a finite loss were kept; try a lower learning "
                       f"rate or gradient clipping")
            break
        # These weights gave a finite loss and gradient: the ones to fall back on.
        good_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        grad_norms.append(float(torch.nn.utils.get_total_norm(
            [p.grad for p in model.parameters() if p.grad is not None])))
        if config.clip_value is not None:
            torch.nn.utils.clip_grad_value_(model.parameters(), config.clip_value)
        if config.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
        optimizer.step()
        step += 1
        losses.append(loss)
        if step % config.heldout_every == 0 or step == config.max_steps:
            heldout_loss, heldout_metric, metric = _evaluate(model, task, heldout, probe)
        if step % config.progress_every == 0 or step % config.heldout_every == 0 \
                or step == config.max_steps:
            event = ProgressEvent(step, config.max_steps, float(np.mean(losses)), metric,
                                  heldout_loss, heldout_metric, time.perf_counter() - start,
                                  task.metric.name, max(grad_norms))
            losses, grad_norms = [], []
            history.append(event)
            if on_progress is not None:
                on_progress(event)
    seconds = time.perf_counter() - start
    if not _parameters_finite(model):  # e.g. the very last step pushed weights to inf
        model.load_state_dict(good_state)
        status, message = "diverged", "the weights became non-finite; the last good ones were kept"
    model.eval()
    score = task.score_on(model, heldout)  # the set the live curve showed: one number per run
    if status == "finished":
        message = f"trained for {step} steps in {seconds:.1f} s"
    return TrainResult(model, task.name, cell, config, step, seconds, status, message, score,
                       history)


def _parameters_finite(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


@torch.no_grad()
def _evaluate(model, task, heldout: Batch, probe: Batch) -> tuple[float, float, float]:
    predictions = task.predict(model, heldout)
    probe_predictions = task.predict(model, probe)
    return (float(task.loss(predictions, heldout.targets)), task.score(predictions, heldout),
            task.score(probe_predictions, probe))
