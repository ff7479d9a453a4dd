"""The Gradient lab page under streamlit.testing.v1.AppTest: every control, the presets, the URL
(core.views.lab.LabState), and a training run with and without clipping."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import pagetest
from pagetest import click
from ui.live import session_key

PAGE = str(Path(__file__).resolve().parents[1] / "app_pages" / "gradient_lab.py")
SESSION = session_key("lab")


def open_page(**query) -> AppTest:
    return pagetest.open_page(PAGE, **query)


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def factor(at) -> float:
    return float(metrics(at)["Factor per step back"].removeprefix("× "))


def charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def values(array) -> list:
    """A Plotly data array as a list (Plotly sends numpy arrays as base64 typed arrays)."""
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def profile_chart(at) -> dict:
    return next(c for c in charts(at) if "gradient through time" in c["layout"]["title"]["text"])


def finish_run(at) -> AppTest:
    session = at.session_state[SESSION]
    assert session.wait(timeout=90)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_landing_shows_a_vanishing_tanh_rnn_with_its_numbers():
    at = open_page()
    assert 0.5 < factor(at) < 0.75
    assert metrics(at)["Half-life"].endswith("steps")
    assert float(metrics(at)["Gradient at t=1 vs t=100"]) < 1e-10
    chart = profile_chart(at)
    assert chart["layout"]["yaxis"]["type"] == "log"
    assert values(chart["data"][0]["y"])[0] == pytest.approx(1.0)  # relative to the last step
    assert "vanishing" in chart["layout"]["title"]["text"]
    assert any("Press **Run**" in i.value for i in at.info)  # nothing trained yet


def test_each_cell_gets_its_own_profile():
    at = open_page()
    titles = {}
    for cell in ("lstm", "gru", "rnn"):
        at.segmented_control(key="lab_cell").set_value(cell).run()
        assert not at.exception
        titles[cell] = profile_chart(at)["layout"]["title"]["text"]
    assert titles["lstm"].startswith("LSTM") and titles["gru"].startswith("GRU")
    at.segmented_control(key="lab_cell").set_value("lstm").run()
    assert any("c_t" in trace["name"] for trace in profile_chart(at)["data"])
    assert at.radio(key="lab_nonlinearity").disabled  # tanh/relu is the vanilla RNN's choice


def test_the_radius_turns_vanishing_into_exploding():
    at = open_page()
    assert at.slider(key="lab_radius").disabled
    at.toggle(key="lab_rescale").set_value(True).run()
    at.slider(key="lab_radius").set_value(3.0).run()
    assert metrics(at)["Spectral radius of W_hh"] == "3.000"
    assert factor(at) > 1.1
    assert "Doubles every" in metrics(at)
    assert "exploding" in profile_chart(at)["layout"]["title"]["text"]


def test_relu_at_a_large_radius_overflows_with_a_message():
    at = open_page(cell="rnn", nonlinearity="relu", rescale="1", radius="5", len="400")
    assert at.radio(key="lab_nonlinearity").value == "relu"
    assert any("overflowed" in e.value for e in at.error)


def test_length_init_hidden_seed_and_forget_bias_change_the_measurement():
    at = open_page()
    at.slider(key="lab_len").set_value(300).run()
    assert "Gradient at t=1 vs t=300" in metrics(at)
    assert len(values(profile_chart(at)["data"][0]["x"])) == 300
    at.slider(key="lab_len").set_value(100).run()
    base = factor(at)
    at.selectbox(key="lab_init").set_value("orthogonal").run()
    assert factor(at) > base + 0.2  # orthogonal W_hh: radius 1, the gradient lasts longer
    at.selectbox(key="lab_init").set_value("default").run()
    at.select_slider(key="lab_hidden").set_value(128).run()
    at.number_input(key="lab_seed").set_value(3).run()
    assert factor(at) != base and 0.4 < factor(at) < 0.8
    at.segmented_control(key="lab_cell").set_value("lstm").run()
    lstm_default = factor(at)
    at.selectbox(key="lab_forget_bias").set_value("3").run()
    assert factor(at) > lstm_default + 0.1
    assert not at.exception


def test_presets_set_the_whole_experiment():
    at = open_page()
    click(at, "Exploding: radius 3")
    assert at.toggle(key="lab_rescale").value and at.slider(key="lab_radius").value == 3.0
    assert (at.slider(key="lab_len").value, at.selectbox(key="lab_optimizer").value) == (50, "sgd")
    assert factor(at) > 1.1
    click(at, "LSTM, forget bias 3")
    assert at.segmented_control(key="lab_cell").value == "lstm"
    assert at.selectbox(key="lab_forget_bias").value == "3"
    assert factor(at) > 0.95  # the preset's text and its figure agree: the gradient reaches back
    click(at, "GRU, update bias 3")
    assert at.segmented_control(key="lab_cell").value == "gru"
    assert at.selectbox(key="lab_update_bias").value == "3"
    assert factor(at) > 0.9
    click(at, "Vanishing: tanh RNN")
    assert factor(at) < 0.8


def test_the_url_sets_every_choice_and_bad_values_are_ignored():
    at = open_page(cell="gru", len="200", init="xavier", hidden="64", seed="5", optimizer="adam",
                   lr="0.01", steps="500", clip="value", threshold="0.5", tbptt="1",
                   window="20")
    assert at.segmented_control(key="lab_cell").value == "gru"
    assert (at.slider(key="lab_len").value, at.selectbox(key="lab_init").value) == (200, "xavier")
    assert at.select_slider(key="lab_hidden").value == 64
    assert at.number_input(key="lab_seed").value == 5
    assert at.selectbox(key="lab_optimizer").value == "adam"
    assert at.select_slider(key="lab_lr").value == 0.01
    assert at.select_slider(key="lab_steps").value == 500
    assert at.radio(key="lab_clip").value == "value"
    assert at.select_slider(key="lab_threshold").value == 0.5
    assert at.toggle(key="lab_tbptt").value and at.select_slider(key="lab_window").value == 20
    bad = open_page(cell="transformer", len="nan", radius="1e9", hidden="100000", lr="-1",
                    steps="999999", seed="abc")
    assert bad.segmented_control(key="lab_cell").value == "rnn"
    assert (bad.slider(key="lab_len").value, bad.select_slider(key="lab_hidden").value) == (100, 32)
    assert bad.select_slider(key="lab_steps").value == 300
    assert not bad.error


def test_running_the_exploding_preset_shows_the_plain_run_diverge_and_the_clipped_one_not():
    at = open_page()
    click(at, "Exploding: radius 3")
    click(at, "Run")
    finish_run(at)
    errors = [e.value for e in at.error]
    finite = [w.value for w in at.warning] + [s.value for s in at.success]
    assert any("without clipping" in e and "Diverged" in e and "inf" in e for e in errors)
    assert any("clipping the norm at 1" in w for w in finite)
    loss, grads = (c for c in charts(at) if c["layout"]["title"]["text"] != profile_chart(at)
                   ["layout"]["title"]["text"])
    assert "Loss" in loss["layout"]["title"]["text"]
    assert any(t.get("text") == ["diverged"] for t in loss["data"])
    assert "before clipping" in grads["layout"]["title"]["text"]
    assert [s["y0"] for s in grads["layout"]["shapes"]] == [1.0]  # the clipping threshold
    assert len([p for p in at.get("progress")]) == 2


def test_without_clipping_or_truncation_only_the_plain_run_trains():
    at = open_page(steps="100", lr="0.01", len="10", hidden="8")  # the fewest steps, smallest
    at.radio(key="lab_clip").set_value("off").run()
    assert at.select_slider(key="lab_threshold").disabled
    click(at, "Run")
    finish_run(at)
    assert len(at.get("progress")) == 1
    assert at.session_state[SESSION].snapshot()[0].config.clip_norm is None


def test_truncated_bptt_and_clipping_by_value_reach_the_trainer():
    at = open_page(steps="100", len="10", hidden="8")  # a window of 5 cuts T = 10 in two
    # clipping by value and truncation enable the threshold and the window: set in a rerun after
    at.radio(key="lab_clip").set_value("value")
    at.toggle(key="lab_tbptt").set_value(True).run()
    at.select_slider(key="lab_threshold").set_value(0.25)
    at.select_slider(key="lab_window").set_value(5)
    at.selectbox(key="lab_optimizer").set_value("rmsprop")
    at.select_slider(key="lab_lr").set_value(0.001).run()
    assert not at.exception and not at.error
    click(at, "Run")
    finish_run(at)
    plain, tamed = at.session_state[SESSION].snapshot()
    assert (tamed.config.clip_value, tamed.config.tbptt, tamed.config.clip_norm) == (0.25, 5, None)
    assert (tamed.config.optimizer, tamed.config.learning_rate) == ("rmsprop", 0.001)
    assert tamed.result.steps == 100 and "truncated BPTT over 5 steps" in tamed.label


def test_stop_ends_a_long_run_and_keeps_its_weights():
    at = open_page(steps="2000", len="200", cell="lstm", hidden="64")
    click(at, "Run")
    session = at.session_state[SESSION]
    assert session.running
    stop = next(b for b in at.button if b.label == "Stop")
    assert not stop.disabled
    # Stop once both runs have trained (one stopped before its first step, still starting its
    # process on a busy machine, keeps nothing, and rightly so)
    deadline = time.monotonic() + 90
    while not all(run.events for run in session.snapshot()) and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.click().run()
    finish_run(at)
    for progress in session.snapshot():
        assert progress.result.status == "stopped" and progress.result.steps < 2000
    shown = [w.value for w in at.warning] + [s.value for s in at.success]
    assert len(shown) == 2 and all("Stopped by the user" in text for text in shown)


def test_the_url_follows_the_choices_and_old_links_still_open():
    at = open_page()
    assert not at.query_params  # the defaults: a short link
    click(at, "Exploding: radius 3")
    assert {k: at.query_params[k] for k in at.query_params} == {"len": "50", "rescale": "1",
                                                               "radius": "3"}
    old = open_page(T="200", cell="GRU", optimizer="Adam", tbptt="true")  # before keys by name
    assert old.slider(key="lab_len").value == 200
    assert old.segmented_control(key="lab_cell").value == "gru"
    assert old.selectbox(key="lab_optimizer").value == "adam" and old.toggle(key="lab_tbptt").value
    assert old.query_params["len"] == "200" and "T" not in old.query_params


def test_a_long_wide_run_fits_the_memory_budget_and_the_page_says_so():
    """The issue's lab run (LSTM, T = 1000, hidden 256) once took 2.4 GB; at hidden 128 too, both
    runs now train on a batch that fits, the same for both, and the page says so."""
    at = open_page(cell="lstm", len="1000", hidden="128", steps="100")
    click(at, "Run")
    session = at.session_state[SESSION]
    captions = [pagetest.shown(c.value) for c in at.caption]
    assert any(c.startswith("Batch scaled from 50 to ") and "LSTM with 128 units on sequences of 1,000 steps" in c for c in captions), captions
    assert len({run.config.batch_size for run in session.runs}) == 1
    next(b for b in at.button if b.label == "Stop").click().run()
    assert session.wait(timeout=60)
