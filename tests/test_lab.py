"""core.engine.analysis and core.views.lab: the gradient-decay fit, weight rescaling, the Gradient lab's model, profile and
training runs, and the measurements the Compare page uses (parameters, memory, time)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from core.engine import trace
from core.engine.analysis import (
    fit_decay,
    gradient_decay,
    median_seconds,
    recurrent_blocks,
    spectral_radius,
    training_memory_bytes,
    with_spectral_radius,
)
from core.limits import LimitError
from core.model import count_parameters
from core.training.session import TrainingSession
from core.views.lab import (
    PLAIN_LABEL,
    PRESETS,
    LabState,
    LabTraining,
    build_lab_model,
    gradient_profile,
    lab_runs,
    profile,
    profile_numbers,
    session_runs,
    verdict,
)

# -- the fit -----------------------------------------------------------------------------------

def test_fit_recovers_an_exact_geometric_decay():
    norms = 3.0 * 0.5 ** np.arange(40)
    decay = fit_decay(norms)
    assert decay.per_step == pytest.approx(0.5, rel=1e-9)
    assert decay.half_life == pytest.approx(1.0, rel=1e-9)
    assert decay.span == 40
    np.testing.assert_allclose(decay.fitted(), norms, rtol=1e-9)


def test_fit_skips_underflow_and_stops_at_the_first_overflow():
    vanishing = 0.8 ** np.arange(30)
    vanishing[20:] = 0.0  # underflowed to zero: left out, not read as a cliff
    assert fit_decay(vanishing).per_step == pytest.approx(0.8, rel=1e-9)
    assert fit_decay(vanishing).span == 20
    exploding = 1.5 ** np.arange(30)
    exploding[25:] = np.inf
    decay = fit_decay(exploding)
    assert decay.per_step == pytest.approx(1.5, rel=1e-9)
    assert decay.half_life == math.inf  # it never halves
    assert math.isnan(fit_decay(np.array([np.nan, 1.0, 0.5])).per_step)  # nothing finite first


def test_gradient_decay_reads_the_trace_from_the_last_step_back():
    torch.manual_seed(0)
    rnn = nn.RNN(2, 16)
    tr = trace(rnn, torch.randn(30, 2))
    decay = gradient_decay(tr)
    assert decay.norm[0] == pytest.approx(float(tr.grad_hidden[-1, 0, -1]))
    assert decay.norm[-1] == pytest.approx(float(tr.grad_hidden[-1, 0, 0]))


# -- weight scale ------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_with_spectral_radius_sets_every_gate_block_and_leaves_the_original(cell):
    model = build_lab_model(cell, hidden_size=16)
    before = [b.clone() for b in recurrent_blocks(model.rnn)]
    scaled = with_spectral_radius(model.rnn, 2.5)
    for block in recurrent_blocks(scaled):
        assert spectral_radius(block) == pytest.approx(2.5, rel=1e-4)
    for old, now in zip(before, recurrent_blocks(model.rnn)):
        assert torch.equal(old, now)


def test_spectral_radius_of_a_known_matrix():
    assert spectral_radius(torch.diag(torch.tensor([0.5, -3.0, 2.0]))) == pytest.approx(3.0)
    rotation = torch.tensor([[0.0, -1.0], [1.0, 0.0]]) * 0.7  # complex eigenvalues ±0.7i
    assert spectral_radius(rotation) == pytest.approx(0.7)


@pytest.mark.parametrize("radius", [-1.0, float("nan"), float("inf")])
def test_with_spectral_radius_refuses_nonsense(radius):
    with pytest.raises(ValueError, match="spectral radius"):
        with_spectral_radius(nn.RNN(2, 4), radius)


def test_build_lab_model_checks_every_choice():
    relu = build_lab_model("rnn", 8, "relu")
    assert relu.rnn.nonlinearity == "relu" and relu.rnn.batch_first
    assert relu(torch.rand(3, 10, 2)).shape == (3,)
    with pytest.raises(ValueError, match="tanh or relu"):
        build_lab_model("rnn", 8, "sigmoid")
    with pytest.raises(ValueError, match="unknown cell"):
        build_lab_model("transformer", 8)
    with pytest.raises(LimitError, match="Hidden size"):
        build_lab_model("lstm", 100_000)
    with pytest.raises(ValueError, match="spectral radius"):
        build_lab_model("rnn", 8, radius=50.0)


# -- the gradient profile: the lesson's numbers ------------------------------------------------

def test_default_tanh_rnn_loses_about_forty_percent_per_step():
    """FIELD_NOTES: at PyTorch's default init a tanh RNN's gradient shrinks by 0.58-0.63 per
    step (the radius of the default W_hh is about 1/sqrt(3))."""
    profile = gradient_profile(build_lab_model("rnn", 64, seed=0), seq_len=200, seed=0)
    assert 0.55 <= profile.decay.per_step <= 0.7
    assert profile.radius == pytest.approx(1 / math.sqrt(3), abs=0.12)
    assert profile.first_to_last < 1e-20  # vanished across 200 steps
    assert not profile.overflowed


def test_a_relu_rnn_at_radius_three_explodes():
    profile = gradient_profile(build_lab_model("rnn", 32, "relu", radius=3.0), seq_len=50)
    assert profile.decay.per_step > 1.5
    assert profile.first_to_last > 1e6
    assert profile.radius == pytest.approx(3.0, rel=1e-4)


def test_a_huge_radius_overflows_the_forward_pass_and_says_where():
    profile = gradient_profile(build_lab_model("rnn", 32, "relu", radius=10.0), seq_len=200)
    assert profile.overflowed and 0 < profile.overflow_step < 200
    assert profile.hidden_max == math.inf


def test_lstm_forget_bias_keeps_the_gradient_alive_longer():
    default = gradient_profile(build_lab_model("lstm", 32), seq_len=150)
    biased = gradient_profile(build_lab_model("lstm", 32, forget_bias=2.0), seq_len=150)
    assert default.cell_decay is not None
    assert biased.cell_decay.per_step > default.cell_decay.per_step + 0.1
    assert biased.first_to_last > default.first_to_last * 1e5


def test_profile_checks_the_length():
    model = build_lab_model("gru", 8)
    with pytest.raises(LimitError, match="Sequence length"):
        gradient_profile(model, seq_len=5000)
    with pytest.raises(ValueError):
        gradient_profile(model, seq_len=1)  # the adding problem needs two halves


# -- the lab's training runs -------------------------------------------------------------------

def test_lab_runs_start_from_the_same_weights_and_differ_only_in_taming():
    model = build_lab_model("rnn", 8, radius=2.0)
    plain, tamed = lab_runs(model, 20, "rnn", LabTraining(clip="value", clip_threshold=0.5,
                                                          tbptt=5, steps=10))
    assert plain.label == PLAIN_LABEL
    assert (plain.config.clip_norm, plain.config.clip_value, plain.config.tbptt) == (None, None,
                                                                                     None)
    assert (tamed.config.clip_norm, tamed.config.clip_value, tamed.config.tbptt) == (None, 0.5, 5)
    assert "value" in tamed.label and "truncated BPTT over 5" in tamed.label
    assert plain.model is not tamed.model and plain.model is not model
    for a, b in zip(plain.model.parameters(), tamed.model.parameters()):
        assert torch.equal(a, b)
    assert plain.config.seed == tamed.config.seed  # the same batches
    assert len(lab_runs(model, 20, "rnn", LabTraining(clip="off"))) == 1


def test_lab_runs_check_limits_and_treat_a_long_window_as_full_bptt():
    model = build_lab_model("rnn", 8)
    (_, tamed) = lab_runs(model, 20, "rnn", LabTraining(clip="off", tbptt=50))
    assert tamed.config.tbptt == 20
    with pytest.raises(LimitError, match="Training steps"):
        lab_runs(model, 20, "rnn", LabTraining(steps=50_000))
    with pytest.raises(LimitError, match="Training time"):
        lab_runs(model, 20, "rnn", LabTraining(max_seconds=10_000))
    with pytest.raises(ValueError, match="learning rate"):
        lab_runs(model, 20, "rnn", LabTraining(learning_rate=float("nan")))
    with pytest.raises(ValueError, match="Clipping"):
        lab_runs(model, 20, "rnn", LabTraining(clip="sometimes"))
    with pytest.raises(ValueError, match="clipping threshold"):
        lab_runs(model, 20, "rnn", LabTraining(clip_threshold=0.0))


def test_clipping_keeps_an_exploding_run_finite_where_the_plain_one_diverges():
    """The lesson, checked: tanh RNN at radius 3, SGD at 0.1, T = 50. Without clipping the loss
    turns infinite within a few dozen steps and the trainer stops it; clipped at norm 1 it
    trains to the end with finite weights."""
    model = build_lab_model("rnn", 32, radius=3.0, seed=0)
    runs = lab_runs(model, 50, "rnn", LabTraining(optimizer="sgd", learning_rate=0.1,
                                                  steps=120, clip="norm", clip_threshold=1.0))
    session = TrainingSession(runs).start()
    assert session.wait(timeout=120)
    results = session.results()
    plain, clipped = results[PLAIN_LABEL], results[runs[1].label]
    assert plain.status == "diverged" and plain.steps < 120
    assert "inf" in plain.message or "nan" in plain.message
    assert all(torch.isfinite(p).all() for p in plain.model.parameters())  # last good weights
    assert clipped.status == "finished" and clipped.steps == 120
    assert all(torch.isfinite(p).all() for p in clipped.model.parameters())
    assert math.isfinite(clipped.score.value)
    norms = [e.grad_norm for e in clipped.history]
    assert max(norms) > 1.0  # clipping had something to do: the raw norm went past 1
    assert verdict(plain)[0] == "error" and "Diverged" in verdict(plain)[1]
    assert verdict(clipped)[0] in ("warning", "success")


# -- the page's state: core.views.lab.LabState ---------------------------------------------------

def test_lab_defaults_give_an_empty_query_and_a_link_round_trips():
    assert LabState().to_query() == {}
    state = LabState(cell="lstm", len=200, rescale=True, radius=3.0, optimizer="adam", lr=0.01,
                     steps=500, clip="value", threshold=0.5, tbptt=True, window=20, hidden=64)
    query = state.to_query()
    assert query == {"cell": "lstm", "len": "200", "rescale": "1", "radius": "3",
                     "optimizer": "adam", "lr": "0.01", "steps": "500", "clip": "value",
                     "threshold": "0.5", "tbptt": "1", "window": "20", "hidden": "64"}
    assert LabState.from_query(query) == state
    assert LabState.from_query({"T": "200"}).len == 200  # the length's name in older links
    assert LabState.from_query({"len": "203"}).len == 205  # on the slider's grid of 5


@pytest.mark.parametrize("query", [
    {"seed": "inf"}, {"seed": "nan"}, {"seed": "1e400"}, {"seed": "abc"}, {"seed": "-1"},
    {"len": "-5"}, {"len": "nan"}, {"len": "5000"}, {"radius": "nan"}, {"radius": "1e9"},
    {"radius": "0.33"}, {"hidden": "100000"}, {"lr": "-1"}, {"steps": "999999"},
    {"cell": "transformer"}, {"init": "<script>"}, {"rescale": "maybe"}, {"window": "inf"},
    {"threshold": "inf"}, {"clip": "sometimes"}, {"nonlinearity": "sigmoid"},
])
def test_a_bad_lab_url_value_is_dropped(query):
    state = LabState.from_query(query)
    assert state == LabState() and state.to_query() == {}


def test_lab_state_builds_the_model_and_the_runs_and_greyed_out_choices_do_not_count():
    rnn = LabState(nonlinearity="relu", forget_bias="2", radius=3.0)  # rescale off, not an LSTM
    assert rnn.model_args() == dict(cell="rnn", hidden_size=32, nonlinearity="relu", radius=None,
                                    init="default", seed=0, forget_bias=None, update_bias=None)
    assert rnn.model_label() == "RNN (relu)"
    lstm = LabState(cell="lstm", nonlinearity="relu", forget_bias="2", rescale=True, radius=0.5)
    assert (lstm.model_args()["nonlinearity"], lstm.model_args()["forget_bias"]) == ("tanh", 2.0)
    assert lstm.model_args()["radius"] == 0.5 and lstm.model_label() == "LSTM"
    plain, tamed = session_runs(LabState(len=20, hidden=8, steps=100, clip="value",
                                         threshold=0.25, tbptt=True, window=5))
    assert plain.label == PLAIN_LABEL and (tamed.config.clip_value, tamed.config.tbptt) == (0.25,
                                                                                            5)
    assert (tamed.config.seq_len, tamed.config.max_steps) == (20, 100)
    # what trains does not change what is measured: the profile is cached on measured()
    assert LabState(lr=0.01, steps=2000, tbptt=True).measured() == LabState()
    assert LabState(cell="gru", len=50).measured() == LabState(cell="gru", len=50)
    for preset in PRESETS.values():  # a preset names valid choices, each kept as it is
        state = LabState().updated(preset)
        assert {name: getattr(state, name) for name in preset} == preset


def test_profile_numbers_say_vanishing_or_exploding():
    vanishing = {n.label: n.value for n in profile_numbers(profile(LabState()))}
    assert vanishing["Half-life"].endswith("steps") and "Doubles every" not in vanishing
    assert float(vanishing["Gradient at t=1 vs t=100"]) < 1e-10
    exploding = {n.label: n.value
                 for n in profile_numbers(profile(LabState(len=50, rescale=True, radius=3.0)))}
    assert exploding["Spectral radius of W_hh"] == "3.000"
    assert exploding["Doubles every"].endswith("steps") and "Half-life" not in exploding


# -- parameters, memory, time ------------------------------------------------------------------

def test_parameter_count_matches_pytorch_formulas():
    assert count_parameters(nn.LSTM(10, 20)) == 4 * (20 * 10 + 20 * 20 + 2 * 20)
    assert count_parameters(nn.GRU(10, 20)) == 3 * (20 * 10 + 20 * 20 + 2 * 20)
    assert count_parameters(nn.GRU(10, 20)) < count_parameters(nn.LSTM(10, 20))


def test_training_memory_counts_parameters_gradients_and_activations():
    model = build_lab_model("lstm", 16)
    loss = lambda out: out.pow(2).mean()  # noqa: E731
    short = training_memory_bytes(model, torch.rand(4, 20, 2), loss)
    long = training_memory_bytes(model, torch.rand(4, 40, 2), loss)
    params = sum(p.numel() * 4 for p in model.parameters())
    assert short["parameters"] == short["gradients"] == params
    assert short["total"] == 2 * params + short["activations"]
    assert 1.6 < long["activations"] / short["activations"] < 2.4  # activations grow with T
    assert all(p.grad is None for p in model.parameters())  # leaves the model as it was


def test_median_seconds_measures_the_call():
    calls = []
    seconds = median_seconds(lambda: calls.append(1), repeats=3)
    assert len(calls) == 4 and 0 <= seconds < 0.1


def test_the_fit_leaves_out_a_flat_tail_and_reports_it():
    """A gradient that falls 14 decades in 28 steps and then stays flat: the fit is the falling
    part's (×10^-0.5 per step), and the flat part is reported as the floor, not fitted."""
    from core.engine.analysis import fit_decay as fit

    falling = 10.0 ** (-0.5 * np.arange(29))
    flat = falling[-1] * (1 + 0.3 * np.sin(np.arange(15)))
    decay = fit(np.concatenate([falling, flat]))
    assert decay.per_step == pytest.approx(10 ** -0.5, rel=1e-6)
    assert decay.floor_from is not None and 27 <= decay.floor_from <= 29
    assert decay.floor == pytest.approx(falling[-1], rel=0.5)
    # a clean geometric decay or an explosion has no floor
    assert fit(3.0 * 0.5 ** np.arange(40)).floor_from is None
    assert fit(2.0 ** np.arange(40)).floor_from is None


def test_the_shipped_agreement_rnn_is_fitted_above_its_floor():
    """Issue 13: at length 40 the RNN's gradient falls about 16 decades in 28 steps, then stays
    flat (the same in float64: not rounding); the fit followed the curve only above it."""
    from core.views import compare as cmp
    from core.views import explore as ex

    state = cmp.CompareState(task="agreement", len=40)
    model = cmp.pick_models("agreement")["rnn"]
    result = ex.run(ex.ExploreState(task="agreement", cell="rnn"), model, cmp.make_example(state))
    decay = gradient_decay(result.trace)
    assert decay.floor_from is not None and decay.floor_from < len(decay.norm) - 3
    assert decay.per_step < 0.35  # the falling part: about 10^-0.58 per step


def test_the_factor_per_step_agrees_with_the_first_to_last_ratio_beside_it():
    # a least-squares fit said x0.998 per step beside 0.073 after 100 steps for an LSTM at
    # forget bias 3 (it drops tenfold in one step, then is nearly flat): 0.998^99 is 0.82
    shown = profile(LabState(cell="lstm", forget_bias=3.0))
    numbers = {n.label: n.value for n in profile_numbers(shown)}
    factor = float(numbers["Factor per step back"].removeprefix("× "))
    ratio = float(numbers[f"Gradient at t=1 vs t={shown.seq_len}"])
    assert factor ** (shown.seq_len - 1) == pytest.approx(ratio, rel=0.05)
    assert abs(shown.decay.per_step - factor) > 0.01  # the fit, which said otherwise
    half = float(numbers["Half-life"].removesuffix(" steps"))
    assert factor ** half == pytest.approx(0.5, abs=0.01)
