"""Training an encoder-decoder (core/seq2seq.py) on a sequence-to-sequence task.

    from core.tasks.reverse import ReverseTask
    result = train_seq2seq(ReverseTask(), "lstm", TrainConfig(hidden_size=64, seq_len=12))
    result.model   # trained EncoderDecoderModel, eval mode
    result.score   # held-out sequence accuracy (greedy decoding) next to the echo baseline;
                   # result.score.extra: per-symbol accuracy, accuracy at each input length

Teacher forcing: each step the decoder is fed the start symbol and the right answer so far, and
the loss is the cross-entropy of every output symbol; the held-out checks decode greedily (fed
its own answers), as the model is used. Adam (or the config's optimiser) with gradient clipping.

Seeds: the weights come from the model's own generator (core.seq2seq.build_seq2seq_model), the
batches from the task's training stream of `config.seed`, the held-out set from its held-out
stream; nothing touches global random state, so runs in threads side by side do not disturb each
other. `config.threads`, when set, is the number of torch threads during the run (restored
after); the caller sets it otherwise (the zoo trains on one).

The config is core.training.loop's TrainConfig: hidden_size, num_layers, optimizer,
learning_rate, weight_decay, batch_size, seq_len (the longest training input), min_seq_len (the
shortest; default 1: every length in between is drawn uniformly, per input), clip_norm,
clip_value, init, forget_bias, update_bias, seed, max_steps, max_seconds, progress_every,
heldout_every, heldout_size, threads. What a seq2seq model cannot take is refused: truncated
BPTT, a bidirectional encoder, snapshots.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Callable

import numpy as np
import torch

from core.numerics import flush_denormal
from core.seq2seq import EncoderDecoderModel, build_seq2seq_model, seq2seq_spec
from core.tasks import Task, get_task
from core.tasks.base import STREAM_TRAIN, rng_for
from core.training.loop import ProgressEvent, TrainConfig, TrainResult, make_optimizer


def _refuse_unsupported(config: TrainConfig) -> None:
    problems = []
    if config.tbptt is not None:
        problems.append("truncated BPTT (tbptt) does not apply: the decoder's loss must reach "
                        "the encoder through the hand-off")
    if getattr(config, "bidirectional", False):
        problems.append("a bidirectional encoder-decoder is not built here")
    if config.snapshots:
        problems.append("snapshots are not kept for encoder-decoder runs")
    if problems:
        raise ValueError("; ".join(problems))


def train_seq2seq(
    task: Task | str,
    cell: str,
    config: TrainConfig | None = None,
    on_progress: Callable[[ProgressEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    model: EncoderDecoderModel | None = None,
) -> TrainResult:
    """Train an encoder-decoder of `cell` ("rnn", "lstm", "gru") on a seq2seq `task`; see the
    module docstring. `model` continues training an existing model instead of a fresh one.
    The run stops at max_steps, at max_seconds, when should_stop() says so, or when the loss
    turns non-finite (the last finite weights are kept, status "diverged")."""
    task = get_task(task)
    config = config or TrainConfig()
    _refuse_unsupported(config)
    started = time.perf_counter()
    spec = model.spec if model is not None else seq2seq_spec(task, cell, config.hidden_size,
                                                              config.num_layers)
    seq_len = task.seq_len.resolve(config.seq_len)
    min_len = config.min_seq_len
    if min_len is not None and not task.seq_len.min <= min_len <= seq_len:
        raise ValueError(f"min_seq_len must lie between {task.seq_len.min} and {seq_len} "
                         f"{task.seq_len.unit}")
    threads_before = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:  # vanishing gradients turn subnormal, many times slower unflushed
        with flush_denormal():
            if model is None:
                model = build_seq2seq_model(spec, seed=config.seed, init=config.init,
                                            forget_bias=config.forget_bias,
                                            update_bias=config.update_bias)
            return _train(task, cell, config, model, seq_len, min_len, started, on_progress,
                          should_stop)
    finally:
        torch.set_num_threads(threads_before)


def _train(task, cell, config, model, seq_len, min_len, started, on_progress,
           should_stop) -> TrainResult:
    heldout = task.heldout(config.seed, min(config.heldout_size, task.heldout_size), seq_len)
    batches = rng_for(config.seed, STREAM_TRAIN)
    optimizer = make_optimizer(config.optimizer, model.parameters(), config.learning_rate,
                               config.weight_decay)
    model.train()
    history: list[ProgressEvent] = []
    losses: list[float] = []
    grad_norms: list[float] = []
    heldout_loss = heldout_metric = None
    evaluation_time = 0.0
    score, scored_step = None, -1
    status, message = "finished", ""
    good_state = copy.deepcopy(model.state_dict())
    step = 0

    def elapsed() -> float:
        return time.perf_counter() - started

    while step < config.max_steps:
        if should_stop is not None and should_stop():
            status = "stopped"
            break
        if config.max_seconds is not None and \
                elapsed() > config.max_seconds - 1.25 * evaluation_time:
            status = "time limit"
            break
        batch = task.batch(batches, config.batch_size, seq_len, min_len)
        optimizer.zero_grad(set_to_none=True)
        logits = model(batch.inputs, batch.info["decoder_inputs"], batch.lengths)
        loss = task.loss(logits, batch.targets)
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        grad_norm = float(torch.nn.utils.get_total_norm(grads))
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value) or not math.isfinite(grad_norm):
            model.load_state_dict(good_state)
            status = "diverged"
            message = (f"the loss became {loss_value} at step {step + 1}: training stopped and "
                       f"the last weights that gave a finite loss were kept; try a lower "
                       f"learning rate or gradient clipping")
            break
        good_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if config.clip_value is not None:
            torch.nn.utils.clip_grad_value_(model.parameters(), config.clip_value)
        if config.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
        optimizer.step()
        step += 1
        losses.append(loss_value)
        grad_norms.append(grad_norm)
        if step % config.heldout_every == 0 or step == config.max_steps:
            began = time.perf_counter()
            score, scored_step = task.score_on(model, heldout), step
            evaluation_time = time.perf_counter() - began
            heldout_loss, heldout_metric = score.loss, score.value
            model.train()
        if step % config.progress_every == 0 or step % config.heldout_every == 0 \
                or step == config.max_steps:
            event = ProgressEvent(step, config.max_steps, float(np.mean(losses)), None,
                                  heldout_loss, heldout_metric, elapsed(), task.metric.name,
                                  max(grad_norms))
            losses, grad_norms = [], []
            history.append(event)
            if on_progress is not None:
                on_progress(event)
    model.eval()
    if scored_step != step:
        score = task.score_on(model, heldout)
    if status == "finished":
        message = f"trained for {step} steps in {elapsed():.1f} s"
    elif status == "stopped":
        message = f"stopped by the user after {step} steps"
    elif status == "time limit":
        message = f"time limit of {config.max_seconds:g} s reached after {step} steps"
    return TrainResult(model, task.name, cell, config, step, elapsed(), status, message, score,
                       history)
