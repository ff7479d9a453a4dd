"""Interventions on held-out batches (core/interpret/ablation.py): the model's answers and the
task's metric before and after, the ablation sweep, and top-k feature units against k random
units, on the shipped agreement models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.interpret import (
    ablate, ablation_sweep, builtin_feature, by_distance_table, feature_vs_random, heldout_batch,
    heldout_by_distance, rank_units, run, trace_heldout,
)
from core.interpret.ablation import accuracy_by_distance
from core.interpret.heldout import DEFAULT_SEED
from core.tasks import get_task
from core.trace import Intervention
from core.training.zoo import load_model


@pytest.fixture(scope="module")
def lstm():
    return load_model("agreement", "lstm")


@pytest.fixture(scope="module")
def by_distance(lstm):
    return heldout_by_distance(lstm, per_distance=12)  # 480 sentences, distances 1..40


def test_no_intervention_is_the_model_itself(lstm, by_distance):
    before = run(lstm, by_distance)
    with torch.no_grad():
        direct = lstm(by_distance.batch.inputs, by_distance.batch.lengths)
    torch.testing.assert_close(before.predictions, direct, rtol=1e-5, atol=1e-5)
    assert before.interventions == ()
    task = get_task("agreement")
    assert before.value == task.score(direct, by_distance.batch)
    # accuracy at each distance grouped as the task groups it (and Compare shows it)
    rows = task.accuracy_by_distance(lstm, seed=DEFAULT_SEED, per_distance=12, max_distance=40)
    assert [(r["distance"], r["accuracy"], r["n"]) for r in before.by_distance] == [
        (r["distance"], r["accuracy"], r["n"]) for r in rows]
    assert [r["attractors"] for r in before.by_distance] == pytest.approx(
        [r["attractors"] for r in rows], abs=1e-6)
    far = [r for r in rows if r["distance"] > 5]
    assert before.long_accuracy == pytest.approx(
        sum(r["accuracy"] * r["n"] for r in far) / sum(r["n"] for r in far), abs=1e-12)


def test_ablating_every_unit_leaves_the_head_bias_alone_at_chance(lstm, by_distance):
    before = run(lstm, by_distance)
    everything = run(lstm, by_distance, ablate((0, 0, "h", u) for u in range(64)))
    answers = everything.predictions.argmax(-1)
    assert (answers == answers[0]).all()  # h = 0: the head sees nothing but its bias
    share = float((by_distance.targets == answers[0]).float().mean())
    assert everything.value == pytest.approx(share)
    assert abs(everything.value - 0.5) < 0.06
    assert before.value > 0.95
    table = by_distance_table(before, everything)
    assert list(table.columns) == ["distance", "n", "before", "after", "change"]
    assert len(table) == 40 and (table["n"] == 12).all()
    assert table["change"].mean() < -0.4
    # zeroing c (every step) zeroes h too: the same answers
    cells = run(lstm, by_distance, ablate((0, 0, "c", u) for u in range(64)))
    assert torch.equal(cells.predictions.argmax(-1), answers)


def test_ablate_groups_units_into_interventions():
    got = ablate([(0, 0, "h", 5), (0, 0, "h", 2), (0, 0, "c", 7), (0, 0, "h", 5)],
                 steps=range(3, 6), value=0.5)
    assert got == (
        Intervention(0, 0, (7,), "cell_state", steps=(3, 4, 5), value=0.5),
        Intervention(0, 0, (2, 5), "hidden", steps=(3, 4, 5), value=0.5),
    )
    with pytest.raises(ValueError, match="quantity is h or c; got 'x'"):
        ablate([(0, 0, "x", 1)])


def test_an_intervention_changes_exactly_what_a_clamped_unroll_changes(lstm):
    """One unit's h zeroed from step 2 on: the readout equals the module run by hand with the
    same clamp, step by step."""
    batch = heldout_batch("agreement", lstm, n=30, seed=1)
    outcome = run(lstm, batch, ablate([(0, 0, "h", 9)], steps=range(2, batch.steps)))
    rnn = lstm.rnn
    cell = torch.nn.LSTMCell(rnn.input_size, rnn.hidden_size)
    cell.load_state_dict({k[:-3]: v for k, v in rnn.state_dict().items()})
    with torch.no_grad():
        h = torch.zeros(30, 64)
        c = torch.zeros(30, 64)
        last = torch.zeros(30, 64)
        for t in range(batch.steps):
            h, c = cell(batch.x[:, t], (h, c))
            if t >= 2:
                h = h.clone()
                h[:, 9] = 0
            real = torch.as_tensor(batch.lengths) > t
            last[real] = h[real]
        expected = lstm.head(last)
    torch.testing.assert_close(outcome.predictions, expected, rtol=1e-4, atol=1e-5)


def test_sweep_ranks_units_by_the_harm_of_losing_each(lstm, by_distance):
    units = [0, 5, 11, 23]
    sweep = ablation_sweep(lstm, by_distance, units=units, measure="long")
    assert list(sweep.columns) == ["layer", "direction", "quantity", "unit", "before", "after",
                                   "harm"]
    assert sorted(sweep["unit"]) == units
    assert list(sweep["harm"]) == sorted(sweep["harm"], reverse=True)
    before = run(lstm, by_distance)
    for row in sweep.itertuples():
        alone = run(lstm, by_distance, [Intervention(0, 0, (row.unit,), "hidden")])
        assert row.after == alone.long_accuracy
        assert row.harm == pytest.approx(before.long_accuracy - alone.long_accuracy, abs=1e-15)
        assert row.before == before.long_accuracy
    with pytest.raises(ValueError, match="unit 64 does not exist: the layer has 64 units"):
        ablation_sweep(lstm, by_distance, units=[64])
    with pytest.raises(ValueError, match="only an LSTM has a cell state c"):
        ablation_sweep(load_model("agreement", "gru"), by_distance, quantity="c", units=[0])


def test_feature_units_against_random_units_is_seeded_and_disjoint(lstm, by_distance):
    feature = builtin_feature(by_distance, "the subject is plural")
    trace = trace_heldout(lstm, by_distance)
    ranking = rank_units(trace, feature, quantities=["h"])
    duel = feature_vs_random(lstm, by_distance, ranking, ks=(1, 4), repeats=2, seed=3,
                             measure="long")
    assert list(duel["k"]) == [1, 1, 1, 4, 4, 4]
    assert list(duel["chosen"]) == ["feature", "random", "random"] * 2
    top4 = [f"h{u}" for u in ranking["unit"][:4]]
    assert duel["units"][3].split(", ") == top4
    for row in duel[duel["chosen"] == "random"].itertuples():
        members = row.units.split(", ")
        assert len(members) == row.k and not set(members) & set(top4[: row.k])
    again = feature_vs_random(lstm, by_distance, ranking, ks=(1, 4), repeats=2, seed=3,
                              measure="long")
    assert again.equals(duel)
    chosen = duel.iloc[3]
    units = [int(u[1:]) for u in chosen["units"].split(", ")]
    assert chosen["after"] == run(lstm, by_distance, ablate((0, 0, "h", u) for u in units)
                                  ).long_accuracy
    with pytest.raises(ValueError, match="k must be from 1 to 64"):
        feature_vs_random(lstm, by_distance, ranking, ks=(65,))


def test_accuracy_by_distance_rows():
    rows = accuracy_by_distance(np.array([1, 0, 1, 1]), np.array([3, 1, 3, 1]),
                                np.array([0, 2, 1, 1]))
    assert rows == [{"distance": 1, "accuracy": 0.5, "n": 2, "attractors": 1.5},
                    {"distance": 3, "accuracy": 1.0, "n": 2, "attractors": 0.5}]


def test_tagging_and_regression_read_out_as_their_tasks_do():
    names = load_model("names", "lstm")
    batch = heldout_batch("names", names, n=25, seed=4)
    outcome = run(names, batch)
    with torch.no_grad():
        direct = names(batch.batch.inputs)
    real = torch.as_tensor(batch.valid)
    torch.testing.assert_close(outcome.predictions[real], direct[real], rtol=1e-5, atol=1e-5)
    assert outcome.value == get_task("names").score(direct, batch.batch)
    assert outcome.correct is None and outcome.by_distance is None
    adding = load_model("adding", "gru")
    batch = heldout_batch("adding", adding, n=25, seed=4, seq_len=30)
    before = run(adding, batch)
    after = run(adding, batch, ablate((0, 0, "h", u) for u in range(64)))
    assert after.harm(before) == pytest.approx(after.value - before.value)  # MSE: up is worse
    assert after.harm(before) > 0
    with pytest.raises(ValueError, match="agreement task only"):
        after.harm(before, "long")


def test_tracing_a_heldout_batch_leaves_the_threads_float_mode_alone(lstm):
    from core.numerics import denormals_flushed

    batch = heldout_batch("agreement", lstm, n=20, seed=9)
    assert not denormals_flushed()
    traced = trace_heldout(lstm, batch)
    assert not denormals_flushed()  # flushed for the trace only (core.numerics)
    assert traced.hidden.shape == (20, 1, 1, batch.steps, 64)
