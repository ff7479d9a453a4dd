"""Training any task x cell with PyTorch's fused nn.RNN / nn.LSTM / nn.GRU.

    result = train(get_task("adding"), "lstm", TrainConfig(max_steps=3000),
                   on_progress=lambda e: print(e.step, e.loss), should_stop=lambda: False)
    result.model   # trained SequenceModel, eval mode
    result.score   # held-out metric next to the trivial baseline

Every random choice is seeded from `config.seed` (torch, numpy, python). The loop stops at
`max_steps`, at `max_seconds`, when `should_stop()` returns True (the model keeps what it learned
so far), or when the loss turns NaN/Inf: then the weights from the last finite step are restored
and `result.status == "diverged"` says so.

Stop and the time limit are also checked inside a step, between stretches of SEGMENT_STEPS steps
of a long sequence (forward and backward) and between evaluation chunks: a step they cut short
is dropped, so the weights are those of the last whole step. `max_seconds` covers the whole run,
the final evaluation included: training ends early enough for it (its time is measured at each
held-out check). Every run fits the memory budget (core/training/budget.py), evaluating its
held-out set in chunks. `on_check(step, score, model)` is called after every held-out check
with the score of exactly those weights (core/training/worker.py sends them to the server, so a
run that has to be ended still has a faithful model and score).

`config.snapshots` = N keeps about N copies of the whole model at log-spaced steps, the
initialisation (step 0) and the end included, in `result.snapshots` (core/training/snapshots.py);
`on_snapshot(snapshot)` is called as each is taken, and for the final one last (again, with
its score, where a step's snapshot turns out to be the final model).
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
from core.training.budget import (
    check_training_memory, evaluation_chunk, evaluation_seconds, evaluation_stretch,
    segment_steps, sequence_steps,
)
from core.cells import cell_info
from core.numerics import flush_denormal
from core.model import INITS, ModelSpec, SequenceModel, build_sequence_model
from core.tasks import Batch, Score, Task, get_task
from core.tasks.base import IGNORE, STREAM_PROBE, STREAM_TRAIN, rng_for
from core.training.snapshots import (
    MAX_SNAPSHOTS, MIN_SNAPSHOTS, Snapshot, final_snapshots, snapshot_steps, take_snapshot,
)

OPTIMIZERS = ("adam", "sgd", "rmsprop")
#: Steps of a long sequence run forward (and backward) at a time, so Stop and the time limit
#: are heard within a step; fewer for a big model or batch (core.training.budget.segment_steps
#: plans a stretch to take about a quarter of a second). A sequence no longer than its stretch
#: runs in one piece, as before.
SEGMENT_STEPS = 200
#: A stopped run evaluates the weights it stopped at if that is expected to take at most this
#: long; otherwise it keeps the weights and score of its last held-out check (the server ends a
#: training process that has not answered 1.5 s after Stop: core/training/session.py).
STOP_EVALUATION_SECONDS = 0.8


class Interrupted(Exception):
    """Stop or the time limit came during a step or an evaluation: it is dropped."""


@dataclass
class TrainConfig:
    """Hyperparameters of one training run (defaults follow FIELD_NOTES: Adam, clip 1, H 64)."""

    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = False  # a reverse direction in every layer (reads whole sequences)
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
    # Copies of the whole model kept along the run: 0 none; N (2 to MAX_SNAPSHOTS) about N at
    # log-spaced steps, step 0 and the last step included (core.training.snapshots).
    snapshots: int = 0

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
        if not (self.snapshots == 0 or MIN_SNAPSHOTS <= self.snapshots <= MAX_SNAPSHOTS):
            problems.append(f"snapshots must be 0 (none) or from {MIN_SNAPSHOTS} to "
                            f"{MAX_SNAPSHOTS}")
        if self.tbptt is not None and self.tbptt < 1:
            problems.append("tbptt must be at least 1 step (or None for full BPTT)")
        if self.tbptt is not None and self.bidirectional:
            problems.append("a bidirectional model reads each sequence whole: tbptt must be "
                            "None")
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
    # the model at log-spaced steps, the first step 0, the last `steps` (config.snapshots)
    snapshots: tuple[Snapshot, ...] = ()

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


def model_spec(task: Task, cell: str, hidden_size: int = 64, num_layers: int = 1,
               bidirectional: bool = False) -> ModelSpec:
    return ModelSpec(
        cell=cell, kind=task.kind, input_size=task.input_size, hidden_size=hidden_size,
        output_size=task.output_size, num_layers=num_layers, vocab_size=task.vocab_size,
        bidirectional=bidirectional,
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


def backward_batch(model: SequenceModel, task: Task, batch: Batch, window: int | None,
                   interrupt: Callable[[], bool] | None = None,
                   segment: int = SEGMENT_STEPS) -> float:
    """Forward and backward on one batch, through at most `window` steps at a time (truncated
    BPTT: the state passes on between windows, its gradient does not). Returns the mean loss.

    A window longer than `segment` steps runs forward in stretches of that many steps, the state
    passing on with its gradient (the same forward numbers as one call; the weights' gradient
    sums its parts in another order), and `interrupt()` is asked between stretches, forward and
    backward: True raises Interrupted (the caller drops the step's gradients)."""
    T = batch.inputs.shape[1]
    window = T if window is None else min(window, T)
    last = batch.lengths - 1  # many-to-one: where each sequence is read out
    if model.many_to_many:
        count = int((batch.targets != IGNORE).sum())
    else:
        count = len(batch)
    if model.spec.bidirectional:  # the reverse direction needs each sequence whole: one piece
        loss = task.loss(model(batch.inputs, batch.lengths), batch.targets, reduction="sum")
        (loss / count).backward()
        return float(loss.detach()) / count
    total = 0.0
    state = None
    for start in range(0, T, window):
        stop = min(start + window, T)
        window_loss = None
        for begin in range(start, stop, segment):
            end = min(begin + segment, stop)
            if begin > start and interrupt is not None:
                _listen_in_backward(state, interrupt)
                if interrupt():
                    raise Interrupted
            output, state = model.rnn(model.features(batch.inputs[:, begin:end]), state)
            if model.many_to_many:
                part = task.loss(model.head(output), batch.targets[:, begin:end],
                                 reduction="sum")
            else:
                here = (last >= begin) & (last < end)
                if not here.any():
                    continue
                rows = here.nonzero().squeeze(1)
                predictions = model.readout(output[rows, last[rows] - begin].unsqueeze(1))
                part = task.loss(predictions, batch.targets[rows], reduction="sum")
            window_loss = part if window_loss is None else window_loss + part
        if window_loss is not None:
            if stop - start > segment and interrupt is not None and interrupt():
                raise Interrupted
            (window_loss / count).backward()
            total += float(window_loss.detach())
        state = _detach(state)
    return total / count


def _listen_in_backward(state, interrupt: Callable[[], bool]) -> None:
    """Ask `interrupt()` when the backward pass reaches `state` (a stretch's first state)."""
    h = state[0] if isinstance(state, tuple) else state
    if h.requires_grad:
        def hook(grad):
            if interrupt():
                raise Interrupted
        h.register_hook(hook)


def _gradients_finite(model: torch.nn.Module) -> bool:
    return all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def train(
    task: Task | str,
    cell: str,
    config: TrainConfig | None = None,
    on_progress: Callable[[ProgressEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    model: SequenceModel | None = None,
    on_check: Callable[[int, Score, SequenceModel], None] | None = None,
    on_snapshot: Callable[[Snapshot], None] | None = None,
) -> TrainResult:
    """Train `cell` ("rnn", "lstm", "gru") on `task`; see the module docstring.

    `model` continues training an existing SequenceModel instead of a fresh one. A config that
    does not fit the memory budget is refused (LimitError, naming the batch that would fit):
    core.training.budget.plan_run scales one down first."""
    task = get_task(task)
    config = config or TrainConfig()
    started = time.perf_counter()  # the time limit covers setting up and the final evaluation
    cell_info(cell)  # ValueError naming the cells there are
    seq_len = task.seq_len.resolve(config.seq_len)
    if config.min_seq_len is not None:
        if not task.seq_len.min <= config.min_seq_len <= seq_len:
            raise ValueError(f"min_seq_len must lie between {task.seq_len.min} and {seq_len} "
                             f"{task.seq_len.unit}")
    spec = model.spec if model is not None else model_spec(task, cell, config.hidden_size,
                                                           config.num_layers,
                                                           config.bidirectional)
    check_training_memory(spec, config, sequence_steps(task, seq_len),
                          min(config.heldout_size, task.heldout_size))
    threads_before = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    try:  # vanishing gradients turn subnormal, 37x slower unflushed; the mode must not stay on
        with flush_denormal():
            return _Run(task, cell, config, seq_len, spec, started, should_stop,
                        on_snapshot).train(model, on_progress, on_check)
    finally:
        torch.set_num_threads(threads_before)


@dataclass
class _Check:
    """A held-out check: the step, the score of the weights it evaluated, and those weights."""

    step: int
    score: Score
    state: dict


class _Run:
    """One run of `train`: its data, clock, held-out checks and how it ends."""

    def __init__(self, task, cell, config, seq_len, spec, started, should_stop,
                 on_snapshot=None):
        self.task, self.cell, self.config, self.seq_len = task, cell, config, seq_len
        self.started = started
        self.should_stop = should_stop
        self.on_snapshot = on_snapshot
        self.snapshot_steps = set(snapshot_steps(config.max_steps, config.snapshots))
        self.snapshots: list[Snapshot] = []
        self.heldout = heldout_set(task, config, seq_len)
        self.probe = task.batch(rng_for(config.seed, STREAM_PROBE), len(self.heldout), seq_len)
        steps = max(sequence_steps(task, seq_len), int(self.heldout.inputs.shape[1]))
        self.chunk = evaluation_chunk(spec, config.optimizer, steps, len(self.heldout),
                                      config.batch_size, snapshots=config.snapshots)
        self.stretch = evaluation_stretch(spec, self.chunk, steps)
        self.segment = segment_steps(spec, config.batch_size, SEGMENT_STEPS)
        # what evaluating the held-out set takes: planned until a check has measured it
        self.evaluation_time = evaluation_seconds(spec, len(self.heldout), steps, self.chunk)
        # A run whose held-out set is slow to evaluate cannot evaluate the weights Stop finds
        # within the grace: it checks its starting weights too (something faithful to keep
        # from the start) and leaves out the probe set, which nothing on a page shows.
        self.slow_checks = self.evaluation_time > STOP_EVALUATION_SECONDS
        self.last_check: _Check | None = None
        self.ending = ""  # "stopped" or "time limit" once either has come

    # -- the clock and Stop ---------------------------------------------------------------
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def out_of_time(self) -> bool:
        """Past the point where the final evaluation still fits the time limit."""
        limit = self.config.max_seconds
        return limit is not None and self.elapsed() > limit - (1.25 * self.evaluation_time
                                                               + 0.05)

    def interrupt(self) -> bool:
        """True (and remembers why) once the run must end: Stop or its time limit."""
        if not self.ending:
            if self.should_stop is not None and self.should_stop():
                self.ending = "stopped"
            elif self.out_of_time():
                self.ending = "time limit"
        return bool(self.ending)

    # -- evaluating ---------------------------------------------------------------------------
    def score(self, model, interrupt=None) -> Score:
        """The model's score on the run's held-out set, evaluated in chunks (and timed)."""
        began = time.perf_counter()
        score = self.task.score_on(_Chunked(model, self.chunk, interrupt, self.stretch),
                                   self.heldout)
        self.evaluation_time = time.perf_counter() - began
        return score

    def check(self, model, step, on_check) -> tuple[Score, float | None]:
        """A held-out check: the score (kept, with the weights, as the last check) and the
        training-distribution metric on the probe set (None for a run with slow checks)."""
        score = self.score(model, self.interrupt)
        metric = None
        if not self.slow_checks:
            probe = self.task.predict(_Chunked(model, self.chunk, self.interrupt, self.stretch),
                                      self.probe)
            metric = self.task.score(probe, self.probe)
        self.last_check = None  # its copy goes before the new one is made (the budget's count)
        self.last_check = _Check(step, score, {k: v.detach().clone()
                                               for k, v in model.state_dict().items()})
        if on_check is not None:
            on_check(step, score, model)
        return score, metric

    # -- snapshots --------------------------------------------------------------------------
    def snapshot(self, model, step) -> None:
        """Keep a copy of the weights if `step` is one of the run's snapshot steps, with the
        score of the check that evaluated these very weights, if one did."""
        if step not in self.snapshot_steps:
            return
        last = self.last_check
        score = last.score if last is not None and last.step == step else None
        self.keep(take_snapshot(model, step, score))

    def keep(self, snapshot: Snapshot) -> None:
        self.snapshots.append(snapshot)
        if self.on_snapshot is not None:
            self.on_snapshot(snapshot)

    # -- the loop ---------------------------------------------------------------------------
    def train(self, model, on_progress, on_check) -> TrainResult:
        task, cell, config = self.task, self.cell, self.config
        if model is None:
            model = build_sequence_model(
                model_spec(task, cell, config.hidden_size, config.num_layers,
                           config.bidirectional),
                seed=config.seed, init=config.init, forget_bias=config.forget_bias,
                update_bias=config.update_bias,
            )
        model.train()
        optimizer = make_optimizer(config.optimizer, model.parameters(), config.learning_rate,
                                   config.weight_decay)
        batches = rng_for(config.seed, STREAM_TRAIN)
        history: list[ProgressEvent] = []
        good_state = copy.deepcopy(model.state_dict())
        status, message = "finished", ""
        losses: list[float] = []
        grad_norms: list[float] = []
        metric = heldout_loss = heldout_metric = None
        step = 0
        if self.slow_checks:
            try:
                self.check(model, 0, on_check)
            except Interrupted:
                pass
        self.snapshot(model, 0)
        while step < config.max_steps:
            if self.interrupt():
                break
            length = self.seq_len
            if config.min_seq_len is not None:
                length = int(batches.integers(config.min_seq_len, self.seq_len + 1))
            batch = task.batch(batches, config.batch_size, length)
            optimizer.zero_grad(set_to_none=True)
            try:
                loss = backward_batch(model, task, batch, config.tbptt, self.interrupt,
                                      self.segment)
            except Interrupted:  # the step is dropped: the weights are the last whole step's
                optimizer.zero_grad(set_to_none=True)
                break
            if not math.isfinite(loss) or not _gradients_finite(model):
                # The current weights gave a non-finite loss: go back to the ones before the
                # last update, the last that gave a finite loss.
                model.load_state_dict(good_state)
                step = max(0, step - 1)
                status = "diverged"
                message = (f"the loss became {loss} at step {step + 1}: training stopped and "
                           f"the last weights that gave a finite loss were kept; try a lower "
                           f"learning rate or gradient clipping")
                break
            # These weights gave a finite loss and gradient: the ones to fall back on (the old
            # copy goes first: two at once would not fit a budget-sized model's estimate).
            good_state = None
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
                try:
                    score, metric = self.check(model, step, on_check)
                except Interrupted:  # the check is dropped; the run ends below
                    break
                heldout_loss, heldout_metric = score.loss, score.value
            self.snapshot(model, step)
            if step % config.progress_every == 0 or step % config.heldout_every == 0 \
                    or step == config.max_steps:
                event = ProgressEvent(step, config.max_steps, float(np.mean(losses)), metric,
                                      heldout_loss, heldout_metric, self.elapsed(),
                                      task.metric.name, max(grad_norms))
                losses, grad_norms = [], []
                history.append(event)
                if on_progress is not None:
                    on_progress(event)
        if status != "diverged" and not _parameters_finite(model):
            # e.g. the very last step pushed weights to inf: back to the weights before it
            model.load_state_dict(good_state)
            step = max(0, step - 1)
            status, message = "diverged", ("the weights became non-finite; the last good ones "
                                           "were kept")
        del optimizer, good_state  # room for the final evaluation
        model.eval()
        if self.ending and status != "diverged":
            status = self.ending
        score, step, kept = self.final_score(model, step, status)
        snapshots = ()
        if config.snapshots:  # the last is the model the run ends with, whatever ended it
            snapshots = final_snapshots(self.snapshots, model, step, score)
            if not any(s.step == step and s.score == score for s in self.snapshots):
                self.keep(snapshots[-1])  # new, or a new score for it: heard again
        if kept:
            message = kept
        elif status == "finished":
            message = f"trained for {step} steps in {self.elapsed():.1f} s"
        elif status == "stopped":
            message = f"stopped by the user after {step} steps"
        elif status == "time limit":
            message = f"time limit of {config.max_seconds:g} s reached after {step} steps"
        return TrainResult(model, task.name, cell, config, step, self.elapsed(), status,
                           message, score, history, snapshots)

    def final_score(self, model, step, status) -> tuple[Score, int, str]:
        """(score, steps the kept weights took, what was kept in words or ""). The last check's
        score when it evaluated these very weights; a stopped run whose evaluation would take
        too long keeps the weights and score of its last check instead of evaluating again."""
        last = self.last_check
        if last is not None and last.step == step:
            return last.score, step, ""
        if status == "stopped" and last is not None \
                and self.evaluation_time > STOP_EVALUATION_SECONDS:
            model.load_state_dict(last.state)
            return last.score, last.step, (
                f"stopped by the user at step {step}; evaluating those weights on the held-out "
                f"set would take about {self.evaluation_time:.1f} s, so the weights of step "
                f"{last.step} (the last held-out check) and their score were kept")
        return self.score(model), step, ""


class _Chunked(torch.nn.Module):
    """`model` evaluated `chunk` sequences at a time, each chunk `stretch` steps at a time
    (the state passes on, so the numbers are those of one call), with `interrupt()` asked
    between pieces: an evaluation holds one piece's states, never the whole held-out set's."""

    def __init__(self, model: SequenceModel, chunk: int,
                 interrupt: Callable[[], bool] | None = None, stretch: int | None = None):
        super().__init__()
        self.model = model
        self.chunk = max(1, int(chunk))
        self.interrupt = interrupt
        self.stretch = stretch
        self.train(model.training)

    def _ask(self) -> None:
        if self.interrupt is not None and self.interrupt():
            raise Interrupted

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        parts = []
        for begin in range(0, len(inputs), self.chunk):
            if begin:
                self._ask()
            end = begin + self.chunk
            parts.append(self._chunk(inputs[begin:end],
                                     None if lengths is None else lengths[begin:end]))
        return torch.cat(parts)

    def _chunk(self, inputs: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        model, T = self.model, inputs.shape[1]
        if self.stretch is None or T <= self.stretch or model.spec.bidirectional:
            return model(inputs, lengths)
        state, outputs = None, []
        last = (lengths.long() - 1) if lengths is not None else torch.full(
            (len(inputs),), T - 1, dtype=torch.long)
        final = None
        for begin in range(0, T, self.stretch):
            if begin:
                self._ask()
            end = min(begin + self.stretch, T)
            output, state = model.rnn(model.features(inputs[:, begin:end]), state)
            if model.many_to_many:
                outputs.append(output)
                continue
            if final is None:
                final = output.new_zeros(len(inputs), output.shape[-1])
            rows = ((last >= begin) & (last < end)).nonzero().squeeze(1)
            final[rows] = output[rows, last[rows] - begin]
        if model.many_to_many:
            return model.readout(torch.cat(outputs, dim=1))
        return model.readout(final.unsqueeze(1))


def _parameters_finite(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())
