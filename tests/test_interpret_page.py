"""The Interpretability lab page under streamlit.testing.v1.AppTest: every section for the
shipped agreement LSTM, the adding GRU, a vanilla RNN and a two-layer model trained in the
session; thresholds, a typed feature, the sweep and the top-k comparison, bad input that keeps
the view, the URL, and a unit opened in Explore with Explore's own choices set."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import pagetest
from core.interpret import ablate, gate_saturation, rank_units, run, token_feature
from core.tasks import Score
from core.training import zoo
from core.views import interpret as lab_view
from core.views.models import shipped
from pagetest import assert_clean, click, shown
from ui.state import TRAINED

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "app_pages" / "interpret.py"


def open_page(**query) -> AppTest:
    return pagetest.open_page(PAGE, **query)


def charts(at: AppTest) -> dict[str, dict]:
    """The page's charts by key (interpret_saturation_chart, interpret_map, ...): a keyed
    element's id ends with its key."""
    return {element.proto.id.split("-")[-1]: json.loads(element.proto.spec)
            for element in at.get("plotly_chart")}


def values(array) -> list:
    """A Plotly data array as a list (numpy arrays arrive as base64 typed arrays)."""
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def dots(at: AppTest) -> dict[str, tuple[list, list]]:
    """The saturation scatter's dots per gate panel: name -> (x, y)."""
    spec = charts(at)["interpret_saturation_chart"]
    return {t["name"]: (values(t["x"]), values(t["y"])) for t in spec["data"]
            if t.get("mode") == "markers"}


def texts(at: AppTest) -> str:
    return "\n".join(shown(m.value) for m in [*at.markdown, *at.caption, *at.error, *at.info])


def messages(at: AppTest) -> list[str]:
    return [shown(e.value) for e in at.error]


def top_unit(at: AppTest) -> str:
    return at.dataframe[1].value["unit"].iloc[0]  # [0]: the most saturated units


@pytest.fixture(scope="module")
def agreement_lstm() -> lab_view.Lab:
    """The page's own measurement, made here as the page makes it (the same held-out batches)."""
    return lab_view.measure("agreement", shipped("agreement", "lstm"), 100)


def test_every_section_renders_for_the_agreement_lstm(agreement_lstm):
    at = open_page(n="100")
    assert [h.value for h in at.main.header] == ["Gate saturation", "Memory", "Unit search",
                                                 "Interventions"]
    assert {"interpret_saturation_chart", "interpret_map", "interpret_tau", "interpret_spread",
            "interpret_by_distance"} <= set(charts(at))
    sat = gate_saturation(agreement_lstm.traced)
    for gate, (x, y) in zip(("input", "forget", "output"), dots(at).values()):
        assert np.allclose(x, sat.get(0, 0, gate).left)
        assert np.allclose(y, sat.get(0, 0, gate).right)
    assert list(dots(at)) == ["input gate i", "forget gate f", "output gate o"]
    said = texts(at)
    assert "Unit 0: mean forget gate f" in said and "τ =" in said
    assert "100 held-out sequences" in said
    assert "80 other sentences, 2 at each distance 1–40" in said
    assert [m.label for m in at.metric] == ["accuracy", "accuracy beyond 5 words"]
    ranking = rank_units(agreement_lstm.traced, lab_view.step_feature(
        agreement_lstm, lab_view.InterpretState()))
    best = ranking.iloc[0]
    assert top_unit(at) == f"{best.quantity}{best.unit}"
    assert "the unit search's best of this layer" in said
    assert not at.error and dict(at.query_params) == {"n": "100"}


def test_every_section_renders_for_the_adding_gru():
    at = open_page(task="adding", cell="gru", n="100")
    assert list(dots(at)) == ["reset gate r", "update gate z"]
    said = texts(at)
    assert "mean update gate z" in said and "keeps the old state h" in said  # PyTorch's z
    assert "interpret_by_distance" not in charts(at)
    assert [m.label for m in at.metric] == ["MSE"]
    assert "The model's output moved by" in said
    assert "(50 steps)" in said


def test_a_vanilla_rnn_has_no_gates_but_can_be_searched_and_changed():
    at = open_page(cell="rnn", n="50")
    assert lab_view.NO_GATES in [i.value for i in at.info]
    assert "interpret_saturation_chart" not in charts(at) and "interpret_map" not in charts(at)
    assert "Unit search" in [h.value for h in at.header] and at.metric


def test_the_thresholds_reach_the_scatter_and_lo_above_hi_keeps_it(agreement_lstm):
    at = open_page(n="100")
    at.number_input(key="interpret_lo").set_value(0.3).run()
    at.number_input(key="interpret_hi").set_value(0.7).run()
    sat = gate_saturation(agreement_lstm.traced, 0.3, 0.7)
    x, y = dots(at)["forget gate f"]
    assert np.allclose(x, sat.get(0, 0, "forget").left)
    assert np.allclose(y, sat.get(0, 0, "forget").right)
    assert charts(at)["interpret_saturation_chart"]["layout"]["xaxis"]["title"]["text"] \
        == "steps below 0.3"
    assert (at.query_params["lo"], at.query_params["hi"]) == ("0.3", "0.7")
    at.number_input(key="interpret_lo").set_value(0.8).run()
    assert_clean(at)
    assert any("the lower threshold (0.8) must be below the upper one (0.7)" in m
               for m in messages(at))
    assert np.allclose(dots(at)["forget gate f"][0], x)  # the last good view stays
    assert at.query_params["lo"] == "0.3"  # the link keeps the view it shows


def test_a_typed_word_list_ranks_units(agreement_lstm):
    at = open_page(n="100")
    at.radio(key="interpret_feature").set_value("words").run()
    assert any("Type the words to search for" in i.value.replace("\\", "") for i in at.info)
    assert at.query_params["feature"] == "words"  # waiting for words is a view a link can show
    at.text_input(key="interpret_words").set_value("that, who").run()
    assert_clean(at)
    feature = token_feature(agreement_lstm.batch, words="that, who")
    ranking = rank_units(agreement_lstm.traced, feature)
    best = ranking.iloc[0]
    assert top_unit(at) == f"{best.quantity}{best.unit}"
    assert at.dataframe[1].value["correlation"].iloc[0] == pytest.approx(best.correlation)
    assert "the token is one of that, who" in texts(at)
    assert (at.query_params["feature"], at.query_params["words"]) == ("words", "that, who")
    at.text_input(key="interpret_words").set_value(" , ").run()
    assert any("type at least one word" in m for m in messages(at))
    assert top_unit(at) == f"{best.quantity}{best.unit}"


def test_a_bad_pattern_gives_a_message_and_keeps_the_view():
    at = open_page(n="100", feature="pattern", pattern="s$")
    table = at.dataframe[1].value
    at.text_input(key="interpret_pattern").set_value("(").run()
    assert_clean(at)
    assert any("'(' is not a valid pattern" in m and "Showing your last good view" in m
               for m in messages(at))
    assert at.dataframe[1].value.equals(table)
    assert at.query_params["pattern"] == "s$"


def test_a_unit_out_of_range_gives_a_message_and_a_typed_clamp_is_applied(agreement_lstm):
    at = open_page(n="100")
    at.text_input(key="interpret_units").set_value("3, 99").run()
    assert any("unit 99 does not exist: the layer has 64 units, 0 to 63" in m
               for m in messages(at))
    assert "interpret_by_distance" in charts(at)
    at.text_input(key="interpret_units").set_value("3, 40").run()
    at.number_input(key="interpret_value").set_value(1.0).run()
    assert not at.error
    assert "h (hidden state) of units 3, 40 clamped to 1 at every step." in texts(at)
    after = run(agreement_lstm.choice.model, agreement_lstm.test,
                ablate([(0, 0, "h", 3), (0, 0, "h", 40)], value=1.0))
    assert at.metric[0].value == f"{after.value:.1%}"


def test_the_sweep_and_the_top_k_comparison_run_on_their_buttons():
    at = open_page(n="50")
    assert "interpret_sweep" not in charts(at)
    click(at, "Run the sweep")
    bars = charts(at)["interpret_sweep"]["data"][0]
    assert sorted(values(bars["x"])) == list(range(64))
    assert "64 units ablated one at a time, on 40 sequences" in texts(at)
    lab = lab_view.measure("agreement", shipped("agreement", "lstm"), 50)
    worst = int(values(bars["x"])[int(np.argmax(values(bars["y"])))])
    alone = run(lab.choice.model, lab.test, ablate([(0, 0, "h", worst)]))
    assert max(values(bars["y"])) == pytest.approx(lab.before.value - alone.value)
    at.number_input(key="interpret_unit").set_value(5).run()
    assert "interpret_sweep" in charts(at)  # kept in the session while its choices stay
    click(at, "Top-k feature units against k random units")
    duel = charts(at)["interpret_duel"]
    feature = next(t for t in duel["data"] if t["name"].startswith("the k units"))
    assert values(feature["x"]) == [1, 2, 4, 8, 16]
    assert "With 16 units ablated, on 40 sequences" in texts(at)
    at.radio(key="interpret_quantity").set_value("c").run()
    assert "interpret_sweep" not in charts(at) and "interpret_duel" not in charts(at)


def test_the_url_sets_every_choice_and_reproduces_the_view():
    query = dict(cell="gru", n="50", lo="0.2", hi="0.8", unit="5", seq="3", feature="words",
                 words="that", by="correlation", target="update", units="1, 2", value="1",
                 start="2", stop="10")
    at = open_page(**query)
    assert not at.error
    assert dict(at.query_params) == query  # what the page shows is what the link says
    assert at.number_input(key="interpret_lo").value == pytest.approx(0.2)
    assert (at.number_input(key="interpret_unit").value, at.number_input(
        key="interpret_seq").value) == (5, 3)
    assert at.slider(key="interpret_steps").value == (2, 10)
    assert "update gate z (z≈1 keeps the old h) of units 1, 2 clamped to 1 at steps 2–10." \
        in texts(at)
    again = open_page(**dict(at.query_params))
    for key in ("interpret_saturation_chart", "interpret_map", "interpret_by_distance"):
        assert charts(again)[key]["data"] == charts(at)[key]["data"]
    assert again.dataframe[1].value.equals(at.dataframe[1].value)
    odd = open_page(lo="7", n="33", target="update", feature="quotes")  # none offered here
    assert dict(odd.query_params) == {} and not odd.error  # the defaults instead


def test_opening_a_unit_sets_explores_choices_and_goes_there():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.run()
    at.number_input(key="explore_unit").set_value(5).run()  # Explore seen first, another unit
    at.query_params["cell"], at.query_params["n"] = "gru", "50"
    at.switch_page("app_pages/interpret.py").run()
    assert_clean(at)
    opened = at.selectbox(key="interpret_open_unit")
    unit = opened.options[1]
    opened.set_value(unit).run()
    click(at, "Open in Explore")
    assert [t.value for t in at.title] == ["gatescope · Explore"]
    assert at.number_input(key="explore_unit").value == int(unit.removeprefix("h"))
    assert at.radio(key="explore_cell").value == "gru"
    assert (at.radio(key="explore_source").value, at.radio(key="explore_pick").value) \
        == ("shipped", "index")


def fake_trained(task: str, cell: str, layers: int) -> SimpleNamespace:
    """A model as the Train page keeps it (the TrainResult fields the pages read)."""
    return SimpleNamespace(
        model=zoo.build_model(task, cell, seed=3, hidden_size=8, num_layers=layers), task=task,
        cell=cell, seconds=2.0, steps=30, status="finished", snapshots=(),
        config=SimpleNamespace(seq_len=None, batch_size=8),
        score=Score("accuracy", 0.5, 0.51, "always the majority verb", True, 0.69, 50))


def test_a_two_layer_model_trained_in_the_session_is_measured_per_layer():
    label = "agreement · GRU · 10:00"
    at = AppTest.from_file(str(PAGE), default_timeout=90)
    at.session_state[TRAINED] = {label: fake_trained("agreement", "gru", 2)}
    at.query_params.update(source="session", run=label, n="50")
    at.run()
    assert_clean(at)
    assert "trained in this session: agreement · GRU · 10:00" in texts(at)
    assert set(dots(at)) == {"reset gate r · layer 0", "update gate z · layer 0",
                             "reset gate r · layer 1", "update gate z · layer 1"}
    at.selectbox(key="interpret_layer").set_value(1).run()
    assert not at.error and "Unit 0: mean update gate z" in texts(at)
    click(at, "Run the sweep")
    assert sorted(values(charts(at)["interpret_sweep"]["data"][0]["x"])) == list(range(8))
    assert "The most harmful: layer 1 · h" in texts(at)


@pytest.mark.parametrize("direction", [0, 1])
def test_held_spans_are_the_longest_stretches_of_the_memory_map_at_1_over_e(direction):
    """The memory histogram's spans against memory_map itself: the longest t − s (or s − t,
    reversed) with M[s, t] ≥ 1/e, on random gates including exact zeros and ones."""
    from core.interpret import memory_map
    rng = np.random.default_rng(direction)
    gates = rng.uniform(0.3, 1.0, size=(6, 1, 2, 15, 3)).astype(np.float32)
    gates[0, 0, :, 4, :], gates[1, 0, :, 2:9, :] = 0.0, 1.0
    lengths = np.array([15, 12, 1, 7, 15, 9])
    lab = SimpleNamespace(cell="lstm", traced=SimpleNamespace(gates={"forget": gates},
                                                                lengths=lengths))
    for unit in range(3):
        spans = lab_view.held_spans(lab, unit, 0, direction)
        for b, n in enumerate(lengths):
            M = memory_map(gates[b, 0, direction, :n, unit], reverse=direction == 1)
            s, t = np.nonzero(np.nan_to_num(M) >= np.exp(-1.0))
            assert spans[b] == np.abs(t - s).max()


def test_a_big_model_measures_fewer_sequences():
    big = SimpleNamespace(num_layers=4, bidirectional=True, hidden_size=512)
    assert lab_view.fitting(1000, big, 200) == 5  # 4 Mi values per state at most
    assert lab_view.fitting(500, shipped("agreement", "lstm").rnn, 48) == 500
