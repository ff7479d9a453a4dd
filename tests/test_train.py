"""core.training.loop and core.model: the training loop, its controls, and the model's pieces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.model import ModelSpec, SequenceModel, build_sequence_model, initialise
from core.tasks import get_task
from core.training.loop import TrainConfig, backward_batch, heldout_baseline, heldout_set, train

TINY = dict(hidden_size=16, seq_len=10, batch_size=32, learning_rate=1e-2, heldout_every=50,
            heldout_size=200)


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_tiny_run_learns_the_short_adding_problem():
    events = []
    result = train("adding", "gru", TrainConfig(max_steps=200, **TINY), on_progress=events.append)
    assert result.status == "finished" and result.steps == 200
    assert result.score.baseline == pytest.approx(0.167, abs=0.02)
    assert result.score.value < 0.05  # far below always-1's 0.167
    assert events[-1].loss < 0.5 * events[0].loss
    assert [e.step for e in events] == sorted({e.step for e in events})
    assert events[-1].fraction == 1.0 and events[-1].heldout_metric is not None
    assert not result.model.training


def test_the_live_curve_and_the_final_score_are_measured_on_one_held_out_set():
    """A page shows a run's last held-out point and its final score side by side: the same
    set, so the same number (they once differed: 0.1781 on the curve, 0.1701 as the score)."""
    config = TrainConfig(max_steps=60, **{**TINY, "heldout_every": 20})
    events = []
    result = train("adding", "lstm", config, on_progress=events.append)
    assert events[-1].step == 60
    assert result.score.value == pytest.approx(events[-1].heldout_metric, rel=1e-6)
    assert result.score.n == config.heldout_size
    held = heldout_set("adding", config)
    assert result.score.baseline == pytest.approx(heldout_baseline("adding", config))
    assert len(held) == config.heldout_size


def test_training_is_reproducible_from_the_seed():
    config = TrainConfig(max_steps=15, seed=3, **TINY)
    a = train("agreement", "lstm", config).model
    b = train("agreement", "lstm", config).model
    c = train("agreement", "lstm", TrainConfig(max_steps=15, seed=4, **TINY)).model
    assert same_weights(weights(a), weights(b))
    assert not same_weights(weights(a), weights(c))


def test_stop_callback_ends_the_run_and_keeps_what_was_learned():
    polls = []

    def should_stop():
        polls.append(1)
        return len(polls) > 30

    fresh = build_sequence_model(ModelSpec("gru", "regression", 2, 16, 1), seed=0)
    result = train("adding", "gru", TrainConfig(max_steps=1000, seed=0, **TINY),
                   should_stop=should_stop)
    assert result.status == "stopped" and result.steps == 30
    assert "stopped" in result.message
    assert not same_weights(weights(fresh), weights(result.model))
    assert result.score.n > 0  # a stopped run is still scored


def test_time_limit_stops_a_run():
    result = train("adding", "rnn", TrainConfig(max_steps=10_000, max_seconds=0.3, **TINY))
    assert result.status == "time limit" and 0 < result.steps < 10_000


class PoisonedAdding:
    """The adding task, but the batch at step `bad_step` holds a NaN."""

    def __init__(self, bad_step):
        self._task = get_task("adding")
        self.bad_step = bad_step
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self._task, name)

    def batch(self, rng, batch_size, seq_len=None):
        b = self._task.batch(rng, batch_size, seq_len)
        self.calls += 1
        if self.calls == self.bad_step:
            b.inputs[0, 0, 0] = float("nan")
        return b


def test_nan_loss_stops_and_keeps_the_last_good_weights(monkeypatch):
    import core.training.loop as train_module

    config = TrainConfig(max_steps=50, seed=1, **TINY)
    poisoned = PoisonedAdding(bad_step=21)
    monkeypatch.setattr(train_module, "get_task", lambda task: task)
    result = train(poisoned, "lstm", config)
    assert result.status == "diverged" and result.diverged
    assert "nan" in result.message.lower() and "kept" in result.message
    assert 15 <= result.steps < 21  # the 21st batch drawn (a probe batch comes first) is bad
    clean = train(get_task("adding"), "lstm",
                  TrainConfig(**{**config.to_dict(), "max_steps": result.steps}))
    assert same_weights(weights(result.model), weights(clean.model))


def test_exploding_learning_rate_diverges_with_finite_weights():
    config = TrainConfig(max_steps=300, optimizer="sgd", learning_rate=1e4, clip_norm=None,
                         hidden_size=16, seq_len=10)
    result = train("adding", "rnn", config)
    assert result.status == "diverged"
    assert all(torch.isfinite(p).all() for p in result.model.parameters())


@pytest.mark.parametrize("options", [
    dict(clip_norm=0.5), dict(clip_norm=None, clip_value=0.1), dict(clip_norm=1.0, clip_value=0.5),
    dict(tbptt=4), dict(optimizer="sgd"), dict(optimizer="rmsprop", learning_rate=1e-3),
    dict(init="orthogonal"), dict(init="xavier", forget_bias=2.0), dict(num_layers=2),
    dict(min_seq_len=4),
])
def test_training_options_are_accepted(options):
    config = TrainConfig(**{**TINY, "max_steps": 10, **options})
    result = train("adding", "lstm", config)
    assert result.status == "finished" and result.steps == 10
    assert np.isfinite(result.score.value)


@pytest.mark.parametrize("bad", [
    dict(optimizer="adagrad"), dict(init="he"), dict(hidden_size=0), dict(clip_norm=-1),
    dict(tbptt=0), dict(learning_rate=float("nan")), dict(max_steps=10**9),
    dict(seq_len=10, min_seq_len=20),
])
def test_bad_configs_get_a_clear_error(bad):
    with pytest.raises(ValueError):
        TrainConfig(**bad)


def test_unknown_cell_and_bad_length_are_refused():
    with pytest.raises(ValueError, match="rnn, lstm, gru"):
        train("adding", "transformer")
    with pytest.raises(ValueError, match="from 2 to 1000"):
        train("adding", "gru", TrainConfig(seq_len=5000))


def test_truncated_bptt_keeps_the_forward_pass_and_cuts_the_gradient():
    task = get_task("adding")
    batch = task.heldout(0, 8, 20)
    model = build_sequence_model(ModelSpec("lstm", "regression", 2, 8, 1), seed=0)
    grads = {}
    for window in (None, 20, 5):
        model.zero_grad()
        x = batch.inputs.clone().requires_grad_(True)
        loss = backward_batch(model, task, type(batch)(x, batch.targets, batch.lengths), window)
        grads[window] = (loss, x.grad.clone())
    assert grads[None][0] == pytest.approx(grads[5][0], rel=1e-5)  # same loss
    assert torch.allclose(grads[None][1], grads[20][1])
    assert grads[5][1][:, :15].abs().sum() == 0  # nothing reaches past the last window
    assert grads[None][1][:, :15].abs().sum() > 0


def test_tagging_loss_ignores_padding():
    task = get_task("names")
    batch = task.heldout(0, 16)
    model = build_sequence_model(
        ModelSpec("gru", "tagging", task.input_size, 8, 2, vocab_size=task.vocab_size), seed=0)
    loss = backward_batch(model, task, batch, None)
    with torch.no_grad():
        expected = float(task.loss(model(batch.inputs), batch.targets))
    assert loss == pytest.approx(expected, rel=1e-5)


# -- the model's pieces ------------------------------------------------------------------------

def test_forward_is_readout_of_rnn_of_features():
    task = get_task("sentiment")
    model = build_sequence_model(
        ModelSpec("lstm", "classification", task.input_size, 8, 2, vocab_size=task.vocab_size))
    example = task.sample(0)
    x = model.features(example.inputs)
    out, _ = model.rnn(x)
    assert torch.allclose(model.readout(out), model(example.inputs))
    batched = model(example.inputs[None])
    assert batched.shape == (1, 2) and torch.allclose(batched[0], model(example.inputs), atol=1e-6)


def test_padded_batches_read_each_sequence_at_its_own_end():
    task = get_task("agreement")
    batch = task.heldout(0, 8)
    model = build_sequence_model(
        ModelSpec("gru", "classification", task.input_size, 8, 2, vocab_size=task.vocab_size))
    together = model(batch.inputs, batch.lengths)
    for i in range(len(batch)):
        alone = model(batch.inputs[i, : batch.lengths[i]])
        assert torch.allclose(together[i], alone, atol=1e-5)


def test_initialisers_and_gate_biases():
    lstm = torch.nn.LSTM(3, 6)
    initialise(lstm, "orthogonal", forget_bias=1.5)
    for block in lstm.weight_hh_l0.split(6):
        assert torch.allclose(block @ block.T, torch.eye(6), atol=1e-5)
    total = lstm.bias_ih_l0 + lstm.bias_hh_l0
    assert torch.allclose(total[6:12], torch.full((6,), 1.5))  # forget gate: rows H..2H
    assert total[:6].abs().sum() == 0
    gru = torch.nn.GRU(3, 6)
    initialise(gru, "xavier", update_bias=2.0)
    assert torch.allclose((gru.bias_ih_l0 + gru.bias_hh_l0)[6:12], torch.full((6,), 2.0))
    with pytest.raises(ValueError, match="default, orthogonal, xavier"):
        initialise(gru, "zeros")


def test_model_rejects_mismatched_inputs():
    model = SequenceModel(ModelSpec("rnn", "regression", 2, 4, 1))
    with pytest.raises(ValueError, match="expected 2 features"):
        model(torch.zeros(1, 5, 3))


def test_min_seq_len_spreads_training_lengths(monkeypatch):
    import core.training.loop as train_module

    task = get_task("adding")
    seen = []

    class Recording:
        def __getattr__(self, name):
            return getattr(task, name)

        def batch(self, rng, batch_size, seq_len=None):
            seen.append(seq_len)
            return task.batch(rng, batch_size, seq_len)

    monkeypatch.setattr(train_module, "get_task", lambda t: t)
    train(Recording(), "gru", TrainConfig(**{**TINY, "seq_len": 30, "min_seq_len": 5,
                                              "max_steps": 60}))
    lengths = seen[1:]  # the first batch drawn is the fixed-length probe
    assert min(lengths) >= 5 and max(lengths) <= 30 and len(set(lengths)) > 10
