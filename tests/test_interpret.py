"""The interpretability lab's statistics (core/interpret): held-out batches, gate saturation,
keep-gate memory, step features and unit search, each against a float64 reference computed here
the slow way (loops), on synthetic arrays and on shipped models.

Interventions and ablation: tests/test_interpret_ablation.py.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from core.interpret import (
    agreement_batch, builtin_feature, builtin_names, gate_saturation, heldout_batch,
    heldout_by_distance, inside_quotes, keep_gate, memory_map, memory_stats, rank_units,
    time_constant, token_feature, top_units, trace_heldout, unit_memory_map,
)
from core.interpret.features import StepFeature
from core.interpret.search import fit_probes, probe_split
from core.tasks import get_task
from core.tasks.agreement import PLURAL, SINGULAR
from core.training.zoo import load_model, model_info

LSTM_GATES = ("input", "forget", "cell", "output")
GRU_GATES = ("reset", "update", "new")


def synthetic_trace(cell: str = "lstm", B=6, L=2, D=2, T=9, H=4, seed=0, full=False):
    """A BatchTrace-shaped namespace of random values, NaN beyond each sequence's length."""
    rng = np.random.default_rng(seed)
    lengths = np.full(B, T) if full else rng.integers(1, T + 1, size=B)
    lengths[0] = T
    pad = np.arange(T)[None, :] >= lengths[:, None]

    def array(low=0.0, high=1.0):
        a = rng.uniform(low, high, size=(B, L, D, T, H)).astype(np.float32)
        a[pad[:, None, None, :, None].repeat(L, 1).repeat(D, 2).repeat(H, 4)] = np.nan
        return a

    names = LSTM_GATES if cell == "lstm" else GRU_GATES
    gates = {n: array(-1, 1) if n in ("cell", "new") else array() for n in names}
    return SimpleNamespace(hidden=array(-1, 1), cell=array(-2, 2) if cell == "lstm" else None,
                           gates=gates, lengths=lengths, output=None)


@pytest.fixture(scope="module")
def agreement_lstm():
    model = load_model("agreement", "lstm")
    batch = heldout_batch("agreement", model, n=120, seed=5)
    return model, batch, trace_heldout(model, batch)


@pytest.fixture(scope="module")
def agreement_gru():
    model = load_model("agreement", "gru")
    batch = heldout_batch("agreement", model, n=120, seed=5)
    return model, batch, trace_heldout(model, batch)


# -- held-out batches --------------------------------------------------------------------------


def test_agreement_heldout_batch_is_the_tasks_own_heldout_set_with_subjects():
    model = load_model("agreement", "lstm")
    task = get_task("agreement")
    batch = heldout_batch("agreement", model, n=300, seed=7)
    own = task.heldout(7, 300)
    assert torch.equal(batch.batch.inputs, own.inputs)
    assert torch.equal(batch.targets, own.targets)
    assert np.array_equal(batch.lengths, own.lengths.numpy())
    assert np.array_equal(batch.info["distance"], own.info["distance"].numpy())
    with torch.no_grad():
        assert torch.equal(batch.x, model.features(own.inputs))
    assert batch.x.dtype == torch.float32 and batch.x.shape == (300, batch.steps, 32)
    for b in range(300):
        words = batch.tokens[b]
        assert len(words) == batch.lengths[b]
        assert task.vocab.ids(words) == own.inputs[b, : len(words)].tolist()
        subject = words[batch.info["subject_index"][b]]
        assert subject in (PLURAL if batch.info["label"][b] else SINGULAR)
        # distance counts words from the subject noun to the verb slot after the last word
        assert len(words) - batch.info["subject_index"][b] == batch.info["distance"][b]
    again = heldout_batch("agreement", model, n=300, seed=7)
    assert torch.equal(again.x, batch.x) and again.tokens == batch.tokens
    assert not torch.equal(heldout_batch("agreement", model, n=300, seed=8).batch.inputs[:5],
                           batch.batch.inputs[:5])


def test_heldout_by_distance_holds_the_sentences_of_the_shipped_accuracy_by_distance():
    model = load_model("agreement", "lstm")
    batch = heldout_by_distance(model)  # Compare's: 100 sentences at each distance 1..40
    assert len(batch) == 4000
    assert np.array_equal(batch.info["distance"], np.repeat(np.arange(1, 41), 100))
    with torch.no_grad():
        correct = (model(batch.batch.inputs, batch.batch.lengths).argmax(-1) == batch.targets)
    stored = model_info("agreement", "lstm").extra["accuracy_by_distance"]
    measured = [float(correct[d * 100 : (d + 1) * 100].float().mean()) for d in range(40)]
    assert measured == [row["accuracy"] for row in stored]
    attractors = [float(batch.info["attractors"][d * 100 : (d + 1) * 100].mean())
                  for d in range(40)]
    assert attractors == pytest.approx([row["attractors"] for row in stored], abs=1e-6)


@pytest.mark.parametrize("task", ["adding", "names", "sentiment", "airline", "random"])
def test_heldout_batch_of_every_task_is_its_heldout_set(task):
    model = load_model(task, "gru")
    t = get_task(task)
    batch = heldout_batch(task, model, n=40, seed=3, seq_len=None)
    own = t.heldout(3, 40)
    assert torch.equal(batch.batch.inputs, own.inputs)
    assert np.array_equal(batch.lengths, own.lengths.numpy())
    assert [len(tokens) for tokens in batch.tokens] == batch.lengths.tolist()
    if t.vocab is not None:
        assert all(t.vocab.ids(tokens) == own.inputs[b, : len(tokens)].tolist()
                   for b, tokens in enumerate(batch.tokens))
    if task == "adding":
        sample = t.sample(0)  # the task's own labels for its steps: "0.42" and "0.17*"
        assert sum(token.endswith("*") for token in sample.tokens) == 2
        for b in range(40):
            marked = [i for i, token in enumerate(batch.tokens[b]) if token.endswith("*")]
            assert marked == [batch.info["first"][b], batch.info["second"][b]]
            assert batch.tokens[b][0] == f"{float(own.inputs[b, 0, 0]):.2f}" + \
                ("*" if batch.info["first"][b] == 0 else "")
    if task == "airline":
        assert batch.tokens[0][-1].startswith(t.months[int(own.info["month"][0]) - 1])


def test_heldout_batch_refuses_a_bad_size():
    model = load_model("adding", "lstm")
    for n in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="whole number of at least 1"):
            heldout_batch("adding", model, n=n)


# -- gate saturation ---------------------------------------------------------------------------


def naive_saturation(trace, gate, lo, hi):
    B, L, D, T, H = trace.gates[gate].shape
    left = np.zeros((L, D, H), dtype=np.int64)
    right = np.zeros((L, D, H), dtype=np.int64)
    steps = 0
    for b in range(B):
        for t in range(int(trace.lengths[b])):
            steps += 1
            for layer in range(L):
                for d in range(D):
                    for u in range(H):
                        value = float(trace.gates[gate][b, layer, d, t, u])
                        left[layer, d, u] += value < lo
                        right[layer, d, u] += value > hi
    return left, right, steps


@pytest.mark.parametrize("full", [False, True], ids=["padded", "full-length"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_saturation_counts_valid_steps_like_a_loop(cell, full):
    trace = synthetic_trace(cell, full=full)
    sat = gate_saturation(trace, lo=0.25, hi=0.7)
    expected_gates = ("input", "forget", "output") if cell == "lstm" else ("reset", "update")
    assert sorted({g.gate for g in sat.gates}) == sorted(expected_gates)
    for gate in expected_gates:
        left, right, steps = naive_saturation(trace, gate, 0.25, 0.7)
        for layer in range(2):
            for d in range(2):
                g = sat.get(layer, d, gate)
                assert g.steps == steps == int(trace.lengths.sum())
                assert np.array_equal(g.left_count, left[layer, d])
                assert np.array_equal(g.right_count, right[layer, d])
                assert np.allclose(g.left, left[layer, d] / steps, rtol=0, atol=1e-15)
                assert np.allclose(g.unsaturated, 1 - (left[layer, d] + right[layer, d]) / steps)
    table = sat.table()
    assert len(table) == len(expected_gates) * 2 * 2 * 4
    # a tanh candidate is measured when asked for by name, with thresholds of its own
    candidate = "cell" if cell == "lstm" else "new"
    signed = gate_saturation(trace, lo=-0.9, hi=0.9, gates=[candidate]).get(1, 1, candidate)
    assert np.array_equal(signed.left_count, naive_saturation(trace, candidate, -0.9, 0.9)[0][1, 1])


def test_saturation_refuses_bad_thresholds_and_gateless_cells():
    trace = synthetic_trace("lstm")
    with pytest.raises(ValueError, match=r"lower threshold \(0.9\) must be below the upper one"):
        gate_saturation(trace, lo=0.9, hi=0.1)
    with pytest.raises(ValueError, match="finite number"):
        gate_saturation(trace, lo=float("nan"))
    with pytest.raises(ValueError, match="has no gate 'update'"):
        gate_saturation(trace, gates=["update"])
    rnn = SimpleNamespace(hidden=trace.hidden, cell=None, gates={}, lengths=trace.lengths)
    with pytest.raises(ValueError, match="vanilla RNN has no gates"):
        gate_saturation(rnn)


def test_saturation_on_the_shipped_lstm_matches_a_loop(agreement_lstm):
    _, batch, bt = agreement_lstm
    sat = gate_saturation(bt)
    for gate in ("input", "forget", "output"):
        left, right, steps = naive_saturation(bt, gate, 0.1, 0.9)
        g = sat.get(0, 0, gate)
        assert g.steps == steps == int(batch.lengths.sum())
        assert np.array_equal(g.left_count, left[0, 0])
        assert np.array_equal(g.right_count, right[0, 0])


# -- memory ------------------------------------------------------------------------------------


def test_memory_map_is_the_product_of_keep_gates_in_both_directions():
    f = np.random.default_rng(1).uniform(0.2, 1.0, size=8).astype(np.float32)
    M = memory_map(f)
    R = memory_map(f, reverse=True)
    for s in range(8):
        for t in range(8):
            if t >= s:
                assert M[s, t] == pytest.approx(math.prod(float(f[k]) for k in range(s + 1, t + 1)),
                                                rel=1e-14)
            else:
                assert math.isnan(M[s, t])
            if t <= s:  # a reverse direction carries position s back to t through f_t..f_(s-1)
                assert R[s, t] == pytest.approx(math.prod(float(f[k]) for k in range(t, s)),
                                                rel=1e-14)
            else:
                assert math.isnan(R[s, t])
    assert M.dtype == np.float64 and np.all(np.diag(M) == 1.0)
    with pytest.raises(ValueError, match=r"one unit's gate over one sequence \(T,\)"):
        memory_map(np.ones((3, 3)))


def test_time_constant_edge_cases():
    tau = time_constant([1.0, 0.0, 0.5, np.exp(-1 / 20), np.nan, 1.0 + 1e-7])
    assert tau[0] == math.inf and tau[5] == math.inf
    assert tau[1] == 0.0
    assert tau[2] == pytest.approx(1 / math.log(2), rel=1e-15)
    assert tau[3] == pytest.approx(20.0, rel=1e-12)
    assert math.isnan(tau[4])
    with pytest.raises(ValueError, match="vanilla RNN has no gate that keeps"):
        keep_gate("rnn")
    assert keep_gate("lstm") == "forget" and keep_gate("gru") == "update"


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_memory_stats_against_loops(cell):
    trace = synthetic_trace(cell, seed=4)
    gate = keep_gate(cell)
    memory = memory_stats(trace)
    assert memory.gate == gate
    values = trace.gates[gate]
    B, L, D, T, H = values.shape
    for layer in range(L):
        for d in range(D):
            u = memory.get(layer, d)
            for unit in range(H):
                everything = [float(values[b, layer, d, t, unit])
                              for b in range(B) for t in range(int(trace.lengths[b]))]
                mean = math.fsum(everything) / len(everything)
                assert u.mean_keep[unit] == pytest.approx(mean, rel=1e-12)
                assert u.tau[unit] == pytest.approx(-1 / math.log(mean), rel=1e-12)
                for b in range(B):
                    own = [float(values[b, layer, d, t, unit])
                           for t in range(int(trace.lengths[b]))]
                    assert u.sequence_mean[b, unit] == pytest.approx(math.fsum(own) / len(own),
                                                                     rel=1e-12)
            assert u.steps == int(trace.lengths.sum())
    table = memory.table()
    assert list(table.columns[:5]) == ["layer", "direction", "unit", "mean_keep", "tau"]
    assert len(table) == L * D * H


def test_lstm_cell_state_is_the_memory_product_times_an_early_state_plus_the_writes(agreement_lstm):
    """c_t = M[s, t] c_s + sum_{k=s+1..t} M[k, t] i_k g_k, with M from the forget gates."""
    _, batch, bt = agreement_lstm
    for sequence in range(0, 120, 7):
        n = int(batch.lengths[sequence])
        for unit in (0, 17, 40, 63):
            M = unit_memory_map(bt, sequence, unit)
            assert M.shape == (n, n)
            c = bt.cell[sequence, 0, 0, :n, unit].astype(np.float64)
            write = (bt.gates["input"][sequence, 0, 0, :n, unit].astype(np.float64)
                     * bt.gates["cell"][sequence, 0, 0, :n, unit])
            for s in range(n):
                for t in range(s, n):
                    rebuilt = M[s, t] * c[s] + sum(M[k, t] * write[k] for k in range(s + 1, t + 1))
                    assert rebuilt == pytest.approx(c[t], abs=2e-5)


def test_gru_hidden_state_is_the_update_gate_product_times_an_early_state_plus_the_writes(
        agreement_gru):
    """PyTorch's GRU: h_t = (1 − z_t) n_t + z_t h_(t−1), so z is the keep gate."""
    _, batch, bt = agreement_gru
    for sequence in (0, 33, 90):
        n = int(batch.lengths[sequence])
        for unit in (1, 30, 62):
            M = unit_memory_map(bt, sequence, unit)
            h = bt.hidden[sequence, 0, 0, :n, unit].astype(np.float64)
            z = bt.gates["update"][sequence, 0, 0, :n, unit].astype(np.float64)
            write = (1 - z) * bt.gates["new"][sequence, 0, 0, :n, unit]
            for s in range(n):
                t = n - 1
                rebuilt = M[s, t] * h[s] + sum(M[k, t] * write[k] for k in range(s + 1, t + 1))
                assert rebuilt == pytest.approx(h[t], abs=2e-5)
    with pytest.raises(ValueError, match="unit 64 does not exist: there are 64"):
        unit_memory_map(bt, 0, 64)


# -- features ----------------------------------------------------------------------------------


def agreement_sentence(text: str, subject: int, plural: bool) -> dict:
    words = text.split()
    return {"words": words, "label": int(plural), "distance": len(words) - subject,
            "subject_index": subject, "attractors": 0}


@pytest.fixture(scope="module")
def known_agreement():
    model = load_model("agreement", "lstm")
    return agreement_batch(model, [
        # i(0) think the cats(3) that the dog chased(7) near the houses(10) often
        agreement_sentence("i think the cats that the dog chased near the houses often", 3, True),
        # when(0) the boys(2) slept , the man(6) that(7) saw the birds(10)
        agreement_sentence("when the boys slept , the man that saw the birds", 6, False),
    ])


def test_agreement_features_on_known_sentences(known_agreement):
    batch = known_agreement
    nan = np.nan

    def feature(name):
        return builtin_feature(batch, name).values

    assert set(builtin_names("agreement")) >= {
        "the subject is plural", "steps since the subject", "between subject and verb",
        "inside a relative clause"}
    np.testing.assert_array_equal(feature("the subject is plural")[0, :12],
                                  [nan, nan, nan, 1, 1, 1, 1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(feature("the subject is plural")[1, :11],
                                  [nan] * 6 + [0] * 5)
    np.testing.assert_array_equal(feature("steps since the subject")[0, :12],
                                  [nan, nan, nan, 0, 1, 2, 3, 4, 5, 6, 7, 8])
    np.testing.assert_array_equal(feature("between subject and verb")[1, :11],
                                  [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    # object clause "that the dog chased" ends at its verb, subject clause "that saw the birds"
    # at its noun; the padded step of the shorter sentence is NaN
    np.testing.assert_array_equal(feature("inside a relative clause")[0, :12],
                                  [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(feature("inside a relative clause")[1],
                                  [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, nan])
    np.testing.assert_array_equal(feature("the last noun is plural")[1, :11],
                                  [nan, nan, 1, 1, 1, 1, 0, 0, 0, 0, 1])
    assert builtin_feature(batch, "the subject is plural").binary
    assert not builtin_feature(batch, "steps since the subject").binary
    with pytest.raises(ValueError, match="no built-in feature 'inside quotes'; it has: the "
                                         "subject is plural"):
        builtin_feature(batch, "inside quotes")


def test_adding_features_on_a_known_sequence():
    model = load_model("adding", "lstm")
    batch = heldout_batch("adding", model, n=3, seed=0, seq_len=10)
    first, second = batch.info["first"][0], batch.info["second"][0]
    t = np.arange(10)
    seen = builtin_feature(batch, "a marker seen so far").values[0]
    np.testing.assert_array_equal(seen, (t >= first).astype(float))
    since = builtin_feature(batch, "steps since the first marker").values[0]
    np.testing.assert_array_equal(since, np.where(t >= first, t - first, np.nan))
    count = builtin_feature(batch, "markers seen so far").values[0]
    np.testing.assert_array_equal(count, (t >= first) + (t >= second).astype(float))
    value = builtin_feature(batch, "the first marked value").values[0]
    marked = float(batch.batch.inputs[0, first, 0])
    np.testing.assert_array_equal(value, np.where(t >= first, marked, np.nan))


def test_sentiment_and_names_features_follow_the_sentences():
    model = load_model("sentiment", "lstm")
    batch = heldout_batch("sentiment", model, n=60, seed=2)
    verdict = builtin_feature(batch, "the verdict so far is positive").values
    turns = builtin_feature(batch, "turns so far").values
    for b, words in enumerate(batch.tokens):
        n = len(words)
        # the last step's standing verdict is the review's label, the count its turns
        if np.isfinite(verdict[b, n - 1]):
            assert verdict[b, n - 1] == int(batch.targets[b])
        assert turns[b, n - 1] == int(batch.info["turns"][b])
    names = heldout_batch("names", load_model("names", "lstm"), n=20, seed=2)
    tagged = builtin_feature(names, "the word is tagged a name").values
    real = names.valid
    assert np.array_equal(tagged[real], names.targets.numpy()[real])
    assert np.isnan(tagged[~real]).all()


def test_token_features_from_word_lists_and_patterns(known_agreement):
    batch = known_agreement
    cats = token_feature(batch, words="Cats, houses  boys")
    np.testing.assert_array_equal(np.nonzero(cats.values[0] == 1)[0], [3, 10])
    np.testing.assert_array_equal(np.nonzero(cats.values[1] == 1)[0], [2])
    assert cats.binary and np.isnan(cats.values[1, 11])
    assert token_feature(batch, words=["the"]).values[0].tolist()[:4] == [0, 0, 1, 0]
    ending = token_feature(batch, pattern=r"s$")
    assert [batch.tokens[0][i] for i in np.nonzero(ending.values[0] == 1)[0]] == [
        "cats", "houses"]
    with pytest.raises(ValueError, match=r"'\(s' is not a valid pattern: missing \)"):
        token_feature(batch, pattern="(s")
    with pytest.raises(ValueError, match="type at least one word"):
        token_feature(batch, words=" , ")
    with pytest.raises(ValueError, match="a word list or as a pattern, one of the two"):
        token_feature(batch, words="cat", pattern="s$")


class CharacterBatch:
    """The part of a HeldoutBatch a token feature reads, for a character-level text."""

    def __init__(self, text: str):
        self.tokens = [list(text)]
        self.steps = len(text)
        self.valid = np.ones((1, len(text)), dtype=bool)

    def __len__(self) -> int:
        return 1


def test_inside_quotes_on_characters():
    feature = inside_quotes(CharacterBatch('say "hi" now "x'))
    assert "".join(str(int(v)) for v in feature.values[0]) == "000011100000011"
    assert inside_quotes(CharacterBatch("a 'b' c"), quote="'").values[0].tolist() == [
        0, 0, 1, 1, 0, 0, 0]


# -- unit search -------------------------------------------------------------------------------


def naive_pearson(x, y):
    n = len(x)
    mx, my = math.fsum(x) / n, math.fsum(y) / n
    sxy = math.fsum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = math.fsum((a - mx) ** 2 for a in x)
    syy = math.fsum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy)


def planted_trace(B=40, T=12, H=6, seed=0):
    """Unit 2 of h follows a 0/1 feature (noise 0.3), unit 4 its negative; the rest is noise."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, T + 1, size=B)
    feature = (rng.random((B, T)) < 0.4).astype(np.float64)
    hidden = rng.normal(size=(B, 1, 1, T, H)).astype(np.float32)
    hidden[:, 0, 0, :, 2] = feature + 0.3 * rng.normal(size=(B, T))
    hidden[:, 0, 0, :, 4] = -feature + 0.3 * rng.normal(size=(B, T))
    pad = np.arange(T)[None, :] >= lengths[:, None]
    hidden[:, 0, 0][pad] = np.nan
    feature[pad] = np.nan
    feature[:, 0] = np.nan  # undefined steps are left out
    trace = SimpleNamespace(hidden=hidden, cell=None, gates={n: hidden for n in GRU_GATES},
                            lengths=lengths)
    return trace, StepFeature("planted", feature, True)


def test_correlation_ranking_against_loops():
    trace, feature = planted_trace()
    table = rank_units(trace, feature, by="correlation")
    assert list(table["unit"][:2]) == [2, 4]
    for row in table.itertuples():
        xs, ys = [], []
        for b in range(40):
            for t in range(int(trace.lengths[b])):
                if np.isfinite(feature.values[b, t]):
                    xs.append(float(trace.hidden[b, 0, 0, t, row.unit]))
                    ys.append(feature.values[b, t])
        assert row.correlation == pytest.approx(naive_pearson(xs, ys), rel=1e-10, abs=1e-12)
        assert row.steps == len(xs)
    assert table["correlation"][0] > 0.8 and table["correlation"][1] < -0.8  # sqrt(.24 / .33)


def naive_probe(x, y, penalty=1.0, iterations=5000):
    """One standardised scalar, logistic regression by plain gradient descent in loops."""
    n = len(x)
    mean = math.fsum(x) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in x) / n)
    z = [(v - mean) / std for v in x]
    w = b = 0.0
    rate = 1.0 / (0.25 * n + penalty)
    for _ in range(iterations):
        gw, gb = penalty * w, penalty * b
        for zi, yi in zip(z, y):
            p = 1 / (1 + math.exp(-(w * zi + b)))
            gw += (p - yi) * zi
            gb += p - yi
        w, b = w - rate * gw, b - rate * gb
    return mean, std, w, b


def test_one_unit_probe_finds_the_planted_unit_and_fits_like_gradient_descent():
    trace, feature = planted_trace()
    table = rank_units(trace, feature)  # a 0/1 feature ranks by probe by default
    assert set(table["unit"][:2]) == {2, 4}
    assert (table["probe_accuracy"][:2] > 0.93).all()
    noise = table[~table["unit"].isin([2, 4])]["probe_accuracy"]
    assert (noise < 0.75).all()
    baseline = table["probe_baseline"][0]
    assert 0.5 <= baseline < 0.7
    # the same fit, slowly: halves of whole sequences, the test half's accuracy
    fit, test = probe_split(40, seed=0)
    assert len(set(fit) | set(test)) == 40 and not set(fit) & set(test)
    x_fit, y_fit, x_test, y_test = [], [], [], []
    for b in range(40):
        for t in range(int(trace.lengths[b])):
            if np.isfinite(feature.values[b, t]):
                target = (x_fit, y_fit) if b in fit else (x_test, y_test)
                target[0].append(float(trace.hidden[b, 0, 0, t, 2]))
                target[1].append(feature.values[b, t])
    mean, std, w, b = naive_probe(x_fit, y_fit)
    fast = fit_probes(np.array(x_fit)[:, None], np.array(y_fit))
    assert fast[0][0] == pytest.approx(mean, rel=1e-12) and fast[1][0] == pytest.approx(std)
    assert fast[2][0] == pytest.approx(w, rel=1e-6) and fast[3][0] == pytest.approx(b, rel=1e-6,
                                                                                   abs=1e-9)
    right = sum(((w * (v - mean) / std + b) > 0) == (label > 0.5)
                for v, label in zip(x_test, y_test))
    row = table[table["unit"] == 2].iloc[0]
    assert row["probe_accuracy"] == pytest.approx(right / len(x_test), abs=1e-15)


def test_ranking_refuses_what_it_cannot_measure():
    trace, feature = planted_trace()
    constant = StepFeature("always", np.where(np.isfinite(feature.values), 1.0, np.nan), True)
    with pytest.raises(ValueError, match="'always' takes a single value over the batch's steps"):
        rank_units(trace, constant)
    counting = StepFeature("count", np.nan_to_num(feature.values) * 3, False)
    with pytest.raises(ValueError, match="'count' takes other values: rank by correlation"):
        rank_units(trace, counting, by="probe")
    with pytest.raises(ValueError, match="has no cell state c"):
        rank_units(trace, feature, quantities=["c"])


def test_subject_number_search_on_the_shipped_lstm(agreement_lstm):
    _, batch, bt = agreement_lstm
    feature = builtin_feature(batch, "the subject is plural")
    table = rank_units(bt, feature)
    assert len(table) == 128 and set(table["quantity"]) == {"h", "c"}
    best = table.iloc[0]
    xs, ys = [], []
    values = bt.hidden if best.quantity == "h" else bt.cell
    for b in range(len(batch)):
        for t in range(int(batch.lengths[b])):
            if t >= batch.info["subject_index"][b]:
                xs.append(float(values[b, 0, 0, t, best.unit]))
                ys.append(float(batch.info["label"][b]))
    assert best.correlation == pytest.approx(naive_pearson(xs, ys), rel=1e-9)
    assert best.steps == len(xs)
    # the shipped LSTM carries the subject's number: its best unit beats the majority guess
    assert best.probe_accuracy > best.probe_baseline + 0.2
    assert top_units(table, 3)[0] == (0, 0, best.quantity, int(best.unit))
    assert all(q == "c" for _, _, q, _ in top_units(table, 5, quantity="c"))
