"""The sequence-to-sequence piece: the copy and reversal tasks' data, the encoder-decoder model,
its training (core/tasks/seq2seq.py, core/seq2seq.py, core/training/seq2seq.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.seq2seq import (
    EncoderDecoderModel, Seq2SeqSpec, build_seq2seq_model, rebuild_seq2seq_model, seq2seq_spec,
)
from core.tasks.base import IGNORE, STREAM_TRAIN, UNK, rng_for
from core.tasks.seq2seq import START, CopyTask, ReverseTask
from core.training.loop import TrainConfig
from core.training.seq2seq import train_seq2seq

TASK = ReverseTask()
COPY = CopyTask()
CELLS = ("rnn", "lstm", "gru")


def real(row: torch.Tensor, length: int) -> list[int]:
    return row[:length].tolist()


# -- the task's data ---------------------------------------------------------------------------
def test_targets_are_the_reversal_and_decoder_inputs_are_shifted():
    batch = TASK.batch(rng_for(0, STREAM_TRAIN), 64, 9)
    start = TASK.vocab.index[START]
    for i, n in enumerate(batch.lengths.tolist()):
        inputs = real(batch.inputs[i], n)
        assert real(batch.targets[i], n) == inputs[::-1]
        assert real(batch.info["decoder_inputs"][i], n) == [start, *inputs[::-1][:-1]]
        assert (batch.targets[i, n:] == IGNORE).all()
        assert (batch.inputs[i, n:] == 0).all() and (batch.info["decoder_inputs"][i, n:] == 0).all()
        assert set(inputs) <= set(TASK.symbol_ids.tolist())  # symbols only: no pad, unk, <s>


def test_copy_targets_are_the_input_and_share_the_reversal_inputs():
    batch = COPY.batch(rng_for(0, STREAM_TRAIN), 64, 9)
    same = TASK.batch(rng_for(0, STREAM_TRAIN), 64, 9)
    assert torch.equal(batch.inputs, same.inputs)  # one data stream, two answers
    start = COPY.vocab.index[START]
    for i, n in enumerate(batch.lengths.tolist()):
        inputs = real(batch.inputs[i], n)
        assert real(batch.targets[i], n) == inputs
        assert real(batch.info["decoder_inputs"][i], n) == [start, *inputs[:-1]]
    assert (COPY.name, COPY.kind, TASK.name, TASK.kind) == ("copy", "seq2seq", "reverse",
                                                            "seq2seq")


def test_batches_are_seeded_and_lengths_cover_the_range():
    a = TASK.batch(rng_for(3, STREAM_TRAIN), 400, 10)
    b = TASK.batch(rng_for(3, STREAM_TRAIN), 400, 10)
    c = TASK.batch(rng_for(4, STREAM_TRAIN), 400, 10)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.inputs, c.inputs)
    assert set(a.lengths.tolist()) == set(range(1, 11))
    assert set(TASK.batch(rng_for(3, STREAM_TRAIN), 200, 10, min_len=7).lengths.tolist()) \
        == {7, 8, 9, 10}
    with pytest.raises(ValueError, match="min_len 8 is above seq_len 5"):
        TASK.batch(rng_for(3, STREAM_TRAIN), 4, 5, min_len=8)


def test_heldout_is_its_own_stream_and_lengths_can_go_beyond_training():
    train = TASK.batch(rng_for(5, STREAM_TRAIN), 50, 12)
    heldout = TASK.heldout(5, 50, 12)
    assert torch.equal(heldout.inputs, TASK.heldout(5, 50, 12).inputs)
    assert not torch.equal(train.inputs, heldout.inputs)
    long = TASK.at_length(5, 20, 30)
    assert long.lengths.tolist() == [30] * 20
    assert long.targets[0].tolist() == long.inputs[0].flip(0).tolist()
    with pytest.raises(ValueError, match="from 1 to 40"):
        TASK.at_length(5, 2, 41)


def test_sample_is_seeded_and_carries_its_answer():
    one, again = TASK.sample(7, 6), TASK.sample(7, 6)
    assert one.tokens == again.tokens and len(one) == 6
    assert one.info["target_tokens"] == one.tokens[::-1]
    assert one.target.tolist() == one.inputs.flip(0).tolist()
    assert one.info["decoder_inputs"].tolist() == [TASK.start_id, *one.target[:-1].tolist()]


@pytest.mark.parametrize("task", [TASK, COPY], ids=["reverse", "copy"])
def test_baseline_writes_the_most_common_symbol(task):
    rows = [list("abca"), list("ccb"), list("e"), list("dd")]
    batch = task.make_batch([task.vocab.ids(r) for r in rows])
    guesses = [["a"] * 4, ["c"] * 3, ["e"], ["d"] * 2]
    assert [[task.vocab.words[i] for i in row[:len(r)]]
            for row, r in zip(task.baseline_answer(batch).tolist(), rows)] == guesses
    assert task.baseline(batch) == pytest.approx(2 / 4)  # "e" and "dd" only
    assert task.baseline_symbol_accuracy(batch) == pytest.approx((2 + 2 + 1 + 2) / 10)


# -- typed input -------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["c a b e", "cabe", "C,A;B E", "  c a\tb\ne "])
def test_encode_reads_symbols_with_or_without_separators(text):
    example = TASK.encode(text)
    assert example.tokens == ["c", "a", "b", "e"]
    assert example.info["target_tokens"] == ["e", "b", "a", "c"]
    assert example.unknown == []


def test_encode_reports_unknown_symbols_and_feeds_them_as_unk():
    example = TASK.encode("a z b ! z")
    assert example.unknown == ["z", "!"]
    assert example.inputs.tolist() == [TASK.vocab.index["a"], TASK.vocab.index[UNK],
                                       TASK.vocab.index["b"], TASK.vocab.index[UNK],
                                       TASK.vocab.index[UNK]]


def test_encode_messages():
    with pytest.raises(ValueError, match='type a few letters from a to h, e.g. "c a b e"'):
        TASK.encode(" , ")
    with pytest.raises(ValueError, match="at most 40 symbols, got 41"):
        TASK.encode("a" * 41)


# -- the model ---------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=CELLS)
def model(request) -> EncoderDecoderModel:
    return build_seq2seq_model(seq2seq_spec(TASK, request.param, hidden_size=24), seed=3).eval()


def test_shapes_batched_and_one_sequence(model):
    batch = TASK.batch(rng_for(1, STREAM_TRAIN), 5, 7)
    V = len(TASK.vocab)
    T = batch.inputs.shape[1]
    assert model(batch.inputs, batch.info["decoder_inputs"], batch.lengths).shape == (5, T, V)
    ids, logits = model.greedy(batch.inputs, T, batch.lengths)
    assert ids.shape == (5, T) and logits.shape == (5, T, V)
    example = TASK.sample(2, 6)
    assert model(example.inputs, example.info["decoder_inputs"]).shape == (6, V)
    ids, logits = model.greedy(example.inputs, 6)
    assert ids.shape == (6,) and logits.shape == (6, V)
    output, state = model.encode(batch.inputs, batch.lengths)
    h = state[0] if isinstance(state, tuple) else state
    assert h.shape == (1, 5, 24)  # the hand-off: (layers, B, H)


@torch.no_grad()
def test_greedy_is_the_argmax_of_teacher_forcing_fed_its_own_answers(model):
    batch = TASK.batch(rng_for(2, STREAM_TRAIN), 16, 9)
    T = batch.inputs.shape[1]
    ids, logits = model.greedy(batch.inputs, T, batch.lengths)
    forced = model(batch.inputs, model.decoder_inputs(ids), batch.lengths)
    assert torch.equal(forced.argmax(-1), ids)
    assert torch.allclose(forced, logits, atol=1e-5)


@torch.no_grad()
def test_a_padded_sequence_hands_off_the_state_of_its_own_last_step(model):
    batch = TASK.batch(rng_for(4, STREAM_TRAIN), 8, 10)
    logits = model(batch.inputs, batch.info["decoder_inputs"], batch.lengths)
    for i, n in enumerate(batch.lengths.tolist()):
        alone = model(batch.inputs[i, :n], batch.info["decoder_inputs"][i, :n])
        assert torch.allclose(logits[i, :n], alone, atol=1e-5)


def test_build_is_seeded_and_leaves_global_random_state_alone():
    spec = seq2seq_spec(TASK, "lstm", hidden_size=16)
    before = torch.random.get_rng_state()
    a = build_seq2seq_model(spec, seed=9, forget_bias=1.0)
    assert torch.equal(torch.random.get_rng_state(), before)
    b = build_seq2seq_model(spec, seed=9, forget_bias=1.0)
    c = build_seq2seq_model(spec, seed=10, forget_bias=1.0)
    for (name, x), y, z in zip(a.state_dict().items(), b.state_dict().values(),
                               c.state_dict().values()):
        assert torch.equal(x, y), name
    assert not torch.equal(a.encoder.weight_hh_l0, c.encoder.weight_hh_l0)
    assert not torch.equal(a.encoder.weight_hh_l0, a.decoder.weight_hh_l0)  # drawn apart
    H = 16
    for rnn in (a.encoder, a.decoder):  # the forget gate's total bias, both halves
        total = rnn.bias_ih_l0[H:2 * H] + rnn.bias_hh_l0[H:2 * H]
        assert torch.allclose(total, torch.ones(H))
    assert torch.equal(a.embed.weight[0], torch.zeros(a.spec.input_size))  # padding row


def test_spec_round_trip_and_checks():
    model = build_seq2seq_model(seq2seq_spec(TASK, "gru", hidden_size=12, num_layers=2), seed=1)
    again = rebuild_seq2seq_model(model.spec.to_dict(), model.state_dict())
    example = TASK.sample(1, 5)
    assert model.spec.to_dict()["kind"] == "seq2seq" and again.encoder.num_layers == 2
    with torch.no_grad():
        assert torch.equal(model.greedy(example.inputs, 5)[1], again.greedy(example.inputs, 5)[1])
    with pytest.raises(ValueError, match="unknown cell"):
        Seq2SeqSpec("tcn", 11, 8, 8, 11, 2)
    with pytest.raises(ValueError, match="must not exceed vocab_size"):
        Seq2SeqSpec("gru", 11, 8, 8, 12, 2)
    with pytest.raises(ValueError, match="start_id must be a vocabulary id other than padding"):
        Seq2SeqSpec("gru", 11, 8, 8, 11, 0)


def test_objective_gradient_reaches_the_encoder_through_the_hand_off():
    model = build_seq2seq_model(seq2seq_spec(TASK, "gru", hidden_size=8), seed=2)
    example = TASK.sample(3, 5)
    x_enc = model.features(example.inputs).detach().requires_grad_(True)
    _, h = model.encoder(x_enc)
    out, _ = model.decoder(model.features(example.info["decoder_inputs"]), h)
    loss = TASK.objective(model, example.target)(out)
    loss.backward()
    assert loss.dim() == 0 and (x_enc.grad.abs().sum(-1) > 0).all()  # every encoder step


# -- training ----------------------------------------------------------------------------------
def test_training_learns_short_copies_well_above_chance():
    result = train_seq2seq(COPY, "gru", TrainConfig(hidden_size=32, seq_len=3, max_steps=300,
                                                    learning_rate=5e-3, heldout_every=100,
                                                    heldout_size=300, seed=0, threads=1))
    score = result.score
    assert result.status == "finished" and result.steps == 300
    assert score.metric == "sequence accuracy" and score.n == 300
    # chance is 1/8 a symbol, (1/8)^3 a length-3 sequence; echoing the input gets palindromes
    assert score.value > 0.9 and score.verdict == "better"
    assert score.extra["symbol_accuracy"] > 0.95
    assert set(score.extra["accuracy_by_length"]) == {"1", "2", "3"}
    assert [e.step for e in result.history if e.heldout_metric is not None][-1] == 300
    assert not result.model.training


def test_training_is_reproducible_and_refuses_what_does_not_apply():
    config = TrainConfig(hidden_size=8, seq_len=4, max_steps=20, heldout_every=10,
                         heldout_size=50, seed=5, threads=1)
    a = train_seq2seq(TASK, "lstm", config).model.state_dict()
    b = train_seq2seq(TASK, "lstm", config).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="truncated BPTT"):
        train_seq2seq(TASK, "rnn", TrainConfig(seq_len=4, tbptt=2))
    longest = TASK.seq_len.default  # a config without seq_len trains up to the task's default
    with pytest.raises(ValueError, match=f"min_seq_len must lie between 1 and {longest} symbols"):
        train_seq2seq(TASK, "rnn", TrainConfig(min_seq_len=longest + 1))


def test_accuracy_by_length_reports_every_length_and_position():
    model = build_seq2seq_model(seq2seq_spec(TASK, "rnn", hidden_size=8), seed=0)
    rows = TASK.accuracy_by_length(model, per_length=10, max_length=6)
    assert [r["length"] for r in rows] == list(range(1, 7))
    assert [len(r["position_accuracy"]) for r in rows] == list(range(1, 7))
    for r in rows:
        assert r["symbol_accuracy"] == pytest.approx(np.mean(r["position_accuracy"]))
