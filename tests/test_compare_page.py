"""The Compare page through Streamlit's AppTest: every control, the URL, bad input, session models."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from core.training import zoo
from core.views import compare as cmp
from core.tasks import ALL_TASKS, Score
from streamlit.testing.v1 import AppTest

from pagetest import assert_clean, shown

PAGE = Path(__file__).resolve().parents[1] / "app_pages" / "compare.py"
TRAINED = "gatescope.trained"


def page(session: dict | None = None, **query) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=90)
    for key, value in (session or {}).items():
        at.session_state[key] = value
    for key, value in query.items():
        at.query_params[key] = str(value)
    return at.run()


def charts(at: AppTest) -> dict[str, dict]:
    """The page's charts by key: compare_chart, decay_chart and (agreement) accuracy_chart."""
    out = {}
    for element in at.get("plotly_chart"):
        spec = json.loads(element.proto.spec)
        key = next((k for k in ("compare_chart", "decay_chart", "accuracy_chart")
                    if k in element.proto.id), None)
        out[key or f"chart{len(out)}"] = spec
    return out


def metrics(at: AppTest) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in at.metric:
        out.setdefault(m.label, []).append(m.value)
    return out


def fake_trained(task: str, cell: str) -> SimpleNamespace:
    """A model as the Train page stores it (core.training.loop.TrainResult's fields that are read)."""
    return SimpleNamespace(
        model=zoo.build_model(task, cell, seed=3, hidden_size=8), task=task, cell=cell,
        seconds=2.0, steps=30, status="finished",
        config=SimpleNamespace(seq_len=None, batch_size=8),
        score=Score("MSE", 0.16, 0.167, "always predict 1", False, 0.16, 50))


@pytest.fixture(scope="module")
def landing() -> AppTest:
    return page()


def test_landing_compares_the_three_shipped_models_on_the_adding_problem(landing):
    at = landing
    assert_clean(at)
    assert not at.error
    assert [h.value for h in at.subheader][:3] == ["RNN (vanilla)", "LSTM", "GRU"]
    m = metrics(at)
    assert len(m["Prediction"]) == 3 and all(v.startswith("sum ≈") for v in m["Prediction"])
    assert len(m["Held-out MSE"]) == 3
    table = at.table[0].value
    assert list(table.columns) == ["RNN (vanilla)", "LSTM", "GRU", "GRU ÷ LSTM"]
    assert table.loc["Recurrent parameters", "GRU ÷ LSTM"] == "0.75"
    shown = charts(at)
    assert set(shown) == {"compare_chart", "decay_chart"}
    compare = shown["compare_chart"]
    assert len(compare["frames"]) == 50
    assert compare["layout"]["updatemenus"][0]["buttons"][0]["label"] == "▶ Play"
    legend = [t["name"] for t in shown["decay_chart"]["data"] if t.get("showlegend") is not False]
    assert len(legend) == 3 and all("per step" in name for name in legend)
    assert dict(at.query_params) == {}  # the default view has a short link
    closed = [e for e in at.expander]
    labels = [e.label for e in closed]
    assert "What the decay factor means" in labels
    assert any(label.startswith("Why the GRU has 3/4 of the LSTM's recurrent parameters")
               for label in labels)
    assert "What these three models show" in labels
    assert "PyTorch's GRU convention: h' = (1 − z)·n + z·h" in labels
    assert all(not e.proto.expanded for e in closed)


def test_task_choice_switches_all_three_and_agreement_adds_accuracy_by_distance(landing):
    at = page()
    at.selectbox(key="compare_task").set_value("agreement").run()
    assert_clean(at)
    assert at.query_params["task"] == "agreement"
    shown = charts(at)
    assert "accuracy_chart" in shown
    assert [t["name"] for t in shown["accuracy_chart"]["data"]] == ["RNN (vanilla)", "LSTM", "GRU"]
    assert all(v.split()[0] in ("was", "were") for v in metrics(at)["Prediction"])


@pytest.mark.parametrize("task", [t for t in ALL_TASKS if t not in ("adding", "agreement")])
def test_every_other_task_from_a_link(task):
    at = page(task=task)
    assert_clean(at)
    assert not at.error
    drawn = charts(at)  # the player, the gradient's fading, and accuracy by distance if measured
    assert len(drawn) == (3 if task in cmp.CHART_TASKS else 2)
    assert ("accuracy_chart" in drawn) == (task in cmp.CHART_TASKS)
    assert len(metrics(at)["Prediction"]) == 3


def test_sample_seed_length_and_start_step_controls_go_into_the_link():
    at = page()
    at.number_input(key="compare_sample").set_value(4).run()
    at.slider(key="compare_len_adding").set_value(80).run()
    at.number_input(key="compare_t").set_value(7).run()
    assert_clean(at)
    assert at.query_params["sample"] == "4"
    assert at.query_params["len"] == "80"
    assert at.query_params["t"] == "7"
    spec = charts(at)["compare_chart"]
    assert len(spec["frames"]) == 80
    slider = spec["layout"]["sliders"][0]
    assert slider["steps"][slider["active"]]["args"][0] == ["7"]
    # the link reproduces the view in a fresh session
    again = page(**dict(at.query_params))
    assert metrics(again)["Prediction"] == metrics(at)["Prediction"]
    assert again.number_input(key="compare_t").value == 7


def test_invalid_link_values_fall_back_to_defaults():
    at = page(task="nope", len="-5", t="abc", sample="x", input="csv", lstm="not a model")
    assert_clean(at)
    assert not at.error
    assert at.selectbox(key="compare_task").value == "adding"
    assert at.slider(key="compare_len_adding").value == 50
    assert at.selectbox(key="compare_lstm").value == ""  # the shipped model
    assert dict(at.query_params) == {}


def test_start_step_beyond_the_sequence_is_clamped():
    at = page(task="agreement", len=3, t=500)
    assert_clean(at)
    T = len(charts(at)["compare_chart"]["frames"])
    assert at.number_input(key="compare_t").value == T - 1


def test_typed_input_runs_and_bad_input_keeps_the_last_good_view():
    at = page(task="agreement")
    at.radio(key="compare_input").set_value("text").run()
    assert_clean(at)
    assert not at.error and "empty" in at.info[0].value  # nothing typed yet: it asks
    at.text_area(key="compare_text").input("the cats near the old house").run()
    assert_clean(at)
    assert not at.error
    assert at.query_params["text"] == "the cats near the old house"
    good = charts(at)["compare_chart"]
    assert len(good["frames"]) == 6
    at.text_area(key="compare_text").input("the zebras near the house").run()  # unknown word
    assert_clean(at)
    assert "zebras" in at.error[0].value and "last good view" in at.error[0].value
    assert len(charts(at)["compare_chart"]["frames"]) == 6  # still the last good view
    assert at.query_params["text"] == "the cats near the old house"
    at.text_area(key="compare_text").input("").run()
    assert not at.error and "empty" in at.info[0].value
    assert len(charts(at)["compare_chart"]["frames"]) == 6


def test_bad_numbers_for_the_adding_problem():
    at = page(input="text", text="0.5 0.2* lots")
    assert_clean(at)
    assert "lots" in at.error[0].value
    assert len(charts(at)) == 2  # a bad link still shows the default view under the message
    at.text_area(key="compare_text").input("0.5 0.2* 0.1 0.9*").run()
    assert not at.error
    assert len(charts(at)["compare_chart"]["frames"]) == 4


def test_a_model_trained_in_this_session_replaces_the_shipped_one_for_its_cell():
    trained = {"adding · LSTM · 10:00": fake_trained("adding", "lstm"),
               "agreement · GRU · 10:01": fake_trained("agreement", "gru")}
    at = page({TRAINED: trained})
    assert at.selectbox(key="compare_lstm").options == ["shipped trained model",
                                                    "adding · LSTM · 10:00",
                                                    "my own weights (upload)"]
    assert at.selectbox(key="compare_gru").options == ["shipped trained model",  # another task
                                                   "my own weights (upload)"]
    at.selectbox(key="compare_lstm").set_value("adding · LSTM · 10:00").run()
    assert_clean(at)
    assert at.query_params["lstm"] == "adding · LSTM · 10:00"
    assert any("trained in this session: adding · LSTM · 10:00" in shown(c.value) for c in at.caption)
    table = at.table[0].value
    assert table.loc["Training time (recorded when trained)", "LSTM"] == "2.0 s, 30 steps"
    assert table.loc["Recurrent parameters", "LSTM"] == f"{4 * (8 * (2 + 8) + 16):,}"


def test_the_search_page_opens_each_cells_best_trial_in_its_own_column():
    labels = {cell: f"s1 · trial {n} · {cell.upper()}" for n, cell in enumerate(("rnn", "lstm", "gru"))}
    trained = {label: fake_trained("agreement", cell) for cell, label in labels.items()}
    at = page({TRAINED: trained, "gatescope.compare.open": list(labels.values())})
    assert_clean(at)
    assert at.selectbox(key="compare_task").value == "agreement"
    for cell, label in labels.items():
        assert at.selectbox(key=f"compare_{cell}").value == label


def test_open_in_compare_from_the_train_page():
    trained = {"agreement · GRU · 10:01": fake_trained("agreement", "gru")}
    at = page({TRAINED: trained, "gatescope.compare.open": ["agreement · GRU · 10:01"]})
    assert_clean(at)
    assert at.selectbox(key="compare_task").value == "agreement"
    assert at.selectbox(key="compare_gru").value == "agreement · GRU · 10:01"
    assert "accuracy_chart" in charts(at)  # measured for the session's GRU too


def test_the_airline_input_says_what_the_models_read():
    at = page(task="airline", input="text", text="112 118 132 129 121 135 148")
    assert_clean(at)
    assert any("What the model read: 6 numbers from your 7 values" in shown(m.value)
               for m in at.markdown)


def test_each_cells_answer_is_marked_against_the_target():
    at = page(task="agreement", sample=0, len=30)
    assert_clean(at)
    marks = [m.proto.delta for m in at.metric if m.label == "Prediction"]
    assert marks[0] == "wrong" and marks[1:] == ["right", "right"]  # the RNN, 30 words back


def shared_comparisons() -> list:
    """Every Comparison in the process's st.cache_resource caches (shared by all visitors)."""
    from core.views.compare import Comparison
    from streamlit.runtime.caching import cache_resource_api
    found = []
    for caches in cache_resource_api._resource_caches._function_caches.values():
        for cache in caches.values():
            with cache._mem_cache_lock:
                values = [result.value for result in cache._mem_cache.values()]
            found += [v for v in values if isinstance(v, Comparison)]
    return found


def test_a_comparison_with_a_session_model_stays_in_that_session():
    """README: what is a visitor's own is never put in a shared cache (issue 19, item 3)."""
    import streamlit as st
    st.cache_resource.clear()
    mine = fake_trained("adding", "lstm")
    trained = {"adding · LSTM · 10:00": mine}
    at = page({TRAINED: trained}, lstm="adding · LSTM · 10:00", sample=4)
    assert_clean(at)
    assert any("trained in this session: adding · LSTM · 10:00" in shown(c.value) for c in at.caption)
    for comparison in shared_comparisons():
        assert all(c.choice.source == "shipped" for c in comparison.cells.values())
        assert all(c.choice.model is not mine.model for c in comparison.cells.values())
    kept = at.session_state["gatescope.compare.memo"][1]  # the session's own, newest only
    assert kept.cells["lstm"].choice.model is mine.model
    # Back to the shipped models: that comparison is shared, and cached for the next visitor.
    at.selectbox(key="compare_lstm").set_value("").run()
    assert_clean(at)
    assert [c.cells["lstm"].choice.source for c in shared_comparisons()] == ["shipped"]
