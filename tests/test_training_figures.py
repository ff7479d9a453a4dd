"""core.figures.training: what each chart shows, read back from the Plotly figure."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from core.views.lab import build_lab_model, gradient_profile
from core.training.loop import ProgressEvent
from core.figures.training import (
    MAX_POINTS, describe_factor, grad_norm_figure, gradient_profile_figure, loss_figure,
    loss_spread_figure, metric_figure, rolling_std, thin,
)


def events(losses, grad_norms=None, heldout_every=10, metric=0.5):
    out = []
    heldout = None
    heldout_metric = None
    for step, loss in enumerate(losses, start=1):
        if step % heldout_every == 0:  # as core.training.loop does: the last value repeats in between
            heldout, heldout_metric = loss * 1.1, metric + step / 1000
        out.append(ProgressEvent(step, len(losses), loss, metric, heldout, heldout_metric,
                                 step * 0.01, "MSE",
                                 None if grad_norms is None else grad_norms[step - 1]))
    return out


def hlines(fig):
    return [shape.y0 for shape in fig.layout.shapes if shape.y0 == shape.y1]


def by_name(fig, name):
    return next(t for t in fig.data if t.name == name)


# -- thinning and spread -----------------------------------------------------------------------

def test_thin_keeps_short_series_and_bounds_long_ones():
    x = np.arange(100.0)
    assert thin(x, x)[1].tolist() == x.tolist()
    big = np.arange(10_000.0)
    tx, ty = thin(big, big)
    assert len(tx) == MAX_POINTS and tx[-1] == big[-1]
    assert ty[0] == pytest.approx(big[: 10_000 // MAX_POINTS + 1].mean(), rel=0.1)


def test_thin_by_max_keeps_a_spike_and_never_hides_a_nan():
    y = np.ones(10_000)
    y[4321] = 1e9
    assert thin(np.arange(10_000), y, how="max")[1].max() == 1e9
    y[777] = np.nan
    assert np.isnan(thin(np.arange(10_000), y)[1]).any()


def test_rolling_std_matches_numpy():
    rng = np.random.default_rng(0)
    values = rng.random(200)
    spread = rolling_std(values, 50)
    assert np.isnan(spread[:49]).all()
    assert spread[49] == pytest.approx(values[:50].std())
    assert spread[-1] == pytest.approx(values[-50:].std())


# -- the gradient profile ----------------------------------------------------------------------

def test_profile_figure_shows_relative_norms_the_fit_and_a_line_at_one():
    profile = gradient_profile(build_lab_model("rnn", 32), seq_len=60)
    fig = gradient_profile_figure(profile, "RNN (tanh)")
    measured = fig.data[0]
    assert measured.y[0] == pytest.approx(1.0)  # relative to the last step
    assert list(measured.x) == list(range(60))
    assert measured.y[-1] < 1e-6  # and it vanishes
    assert 1.0 in hlines(fig)
    fit = next(t for t in fig.data if t.name.startswith("fit"))
    assert fit.y[-1] < 1e-6
    assert fig.layout.yaxis.type == "log"
    assert "vanishing" in fig.layout.title.text and "RNN (tanh)" in fig.layout.title.text
    json.loads(fig.to_json())  # what the browser gets: valid JSON, no NaN


def test_profile_figure_of_an_lstm_also_draws_the_cell_state_path():
    fig = gradient_profile_figure(gradient_profile(build_lab_model("lstm", 16), seq_len=40))
    assert any("c_t" in t.name for t in fig.data)


def test_profile_figure_marks_underflow_and_overflow():
    vanished = gradient_profile_figure(gradient_profile(build_lab_model("rnn", 32), seq_len=400))
    assert any("vanished" in (a.text or "") for a in vanished.layout.annotations)
    overflow = gradient_profile(build_lab_model("rnn", 32, "relu", radius=10.0), seq_len=200)
    fig = gradient_profile_figure(overflow)
    assert any("Overflow" in (a.text or "") for a in fig.layout.annotations)
    json.loads(fig.to_json())


def test_describe_factor_says_which_way_it_goes():
    assert "vanishing" in describe_factor(0.5) and "halves every 1.0" in describe_factor(0.5)
    assert "exploding" in describe_factor(2.0) and "doubles every 1.0" in describe_factor(2.0)
    assert "no fit" in describe_factor(math.nan)


# -- live training -----------------------------------------------------------------------------

def test_loss_figure_draws_training_and_heldout_per_run_with_the_baseline():
    runs = {"plain": events([1.0] * 40), "clipped": events([0.5] * 40)}
    fig = loss_figure(runs, reference=(1 / 6, "always predict 1"),
                      heldout_every={"plain": 10, "clipped": 10})
    names = [t.name for t in fig.data]
    assert names == ["plain", "plain: held-out", "clipped", "clipped: held-out"]
    assert [t.showlegend for t in fig.data] == [None, False, None, False]  # dashed = held-out
    assert list(by_name(fig, "plain: held-out").x) == [10, 20, 30, 40]  # one per evaluation
    # without the spacing, a flat held-out loss still shows where it was first measured
    assert list(by_name(loss_figure(runs), "plain: held-out").x) == [10]
    assert hlines(fig) == [pytest.approx(1 / 6)]
    assert fig.layout.yaxis.type == "log"


def test_a_diverged_run_ends_with_a_cross_and_its_infinite_loss_is_a_gap():
    losses = [1.0] * 10 + [math.inf]
    fig = loss_figure({"plain": events(losses)}, ended={"plain": "diverged"})
    train = by_name(fig, "plain")
    assert np.isnan(train.y[-1])  # a log axis cannot draw inf: a gap (NaN), not a crash
    cross = [t for t in fig.data if t.mode == "markers+text"]
    assert cross and cross[0].marker.symbol == "x" and cross[0].text == ("diverged",)
    json.loads(fig.to_json())


def test_grad_norm_figure_shows_the_raw_norm_and_the_clipping_threshold():
    norms = list(np.geomspace(0.1, 1e8, 50))
    fig = grad_norm_figure({"plain": events([1.0] * 50, norms)}, clip_norm=1.0)
    assert fig.data[0].y[-1] == pytest.approx(1e8)
    assert hlines(fig) == [1.0]
    assert "before clipping" in fig.layout.title.text
    no_clip = grad_norm_figure({"plain": events([1.0] * 50, norms)}, clip_norm=None)
    assert hlines(no_clip) == []


def test_metric_figure_plots_each_evaluation_against_the_baseline():
    fig = metric_figure({"LSTM": events([1.0] * 30)}, "accuracy", (0.5, "majority"), True)
    assert list(fig.data[0].x) == [10, 20, 30]  # the value changes at each evaluation
    assert fig.data[0].y[0] == pytest.approx(0.51)
    assert hlines(fig) == [0.5]
    assert "higher is better" in fig.layout.title.text


def test_loss_spread_figure_is_higher_for_a_noisier_loss():
    rng = np.random.default_rng(1)
    calm = list(0.5 + 0.01 * rng.standard_normal(300))
    jumpy = list(0.5 + 0.2 * rng.standard_normal(300))
    fig = loss_spread_figure({"calm": events(calm), "jumpy": events(jumpy)}, window=50)
    calm_line = fig.data[0].y[np.isfinite(fig.data[0].y)]
    jumpy_line = fig.data[1].y[np.isfinite(fig.data[1].y)]
    assert len(calm_line) == 300 - 49
    assert np.median(jumpy_line) > 10 * np.median(calm_line)


def test_empty_runs_draw_empty_charts_without_error():
    for fig in (loss_figure({"a": []}), grad_norm_figure({"a": []}),
                loss_spread_figure({"a": []}), metric_figure({"a": []}, "MSE")):
        json.loads(fig.to_json())
