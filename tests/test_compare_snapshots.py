"""Compare along training (issue 17, item 5): the "Training step" slider over every column's
snapshots, what the columns show at a step, the URL's `snap`, and why there is no slider."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.engine.analysis import gradient_decay
from core.tasks import get_task
from core.trace import trace
from core.training import zoo
from core.training.loop import TrainConfig, train
from core.training.snapshots import model_at
from core.views import compare as cmp
from pagetest import assert_clean, open_page, shown

PAGE = Path(__file__).resolve().parents[1] / "app_pages" / "compare.py"
TRAINED = "gatescope.trained"
LAST_GOOD = "gatescope.compare.last_good"  # ui.compute.keep_last_good's key for this page
SLIDER = "compare_snap"


def page(session: dict | None = None, **query) -> AppTest:
    at = open_page(PAGE, session=session, **query)
    assert not at.error, [e.value for e in at.error]
    return at


def has_slider(at: AppTest) -> bool:
    return any(s.key == SLIDER for s in at.get("select_slider"))


def shown_comparison(at: AppTest) -> cmp.Comparison:
    """The comparison the page drew on its last run."""
    return at.session_state[LAST_GOOD]


def chart(at: AppTest, key: str) -> dict:
    return next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if key in c.proto.id)


def held_out(at: AppTest) -> list[str]:
    """Each column's held-out score as it reads: its value, and what it says under it."""
    return [f"{m.value} {m.proto.delta}".strip() for m in at.metric
            if m.label.startswith("Held-out")]


def expected_trace(task: str, cell: str, index: int, view: cmp.CompareState):
    """What the engine gives for the shipped model's `index`-th snapshot on the page's input."""
    step, model = zoo.load_history(task, cell)[index]
    example = cmp.make_example(view)
    x = model.features(example.inputs).detach().float()
    return step, trace(model.rnn, x, get_task(task).objective(model, example.target))


def assert_same_trace(got, want) -> None:
    np.testing.assert_allclose(got.hidden, want.hidden, rtol=1e-5, atol=1e-6)
    for name, gate in want.gates.items():
        np.testing.assert_allclose(got.gates[name], gate, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.grad_hidden, want.grad_hidden, rtol=1e-4, atol=1e-12)


@pytest.fixture(scope="module")
def landing() -> AppTest:
    return page()


def test_the_adding_models_get_a_slider_that_starts_at_the_final_models(landing):
    at = landing
    slider = at.select_slider(key=SLIDER)
    assert slider.label == "Training step"
    assert slider.options == ["step 0", "step 1", "step 5", "step 25", "step 122", "step 605",
                              "step 3,000"]
    assert slider.value == cmp.LAST
    assert dict(at.query_params) == {}  # the final models: the default, a short link
    comparison = shown_comparison(at)
    assert not any(isinstance(c.choice, cmp.SnapshotChoice) for c in comparison.cells.values())
    captions = [shown(c.value) for c in at.caption]
    assert captions.count("at training step 3,000 of 3,000: the final model") == 3
    titles = [a["text"] for a in chart(at, "compare_chart")["layout"]["annotations"]]
    # the final models' columns are named alone (the captions say "the final model")
    assert "<b>LSTM</b>" in titles and not any("· step" in t for t in titles)


def test_step_0_shows_each_columns_initialisation_traced():
    at = page()
    final = shown_comparison(at)
    final_decay = chart(at, "decay_chart")
    at.select_slider(key=SLIDER).set_value(0).run()
    assert_clean(at)
    assert at.query_params["snap"] == "0"
    comparison = shown_comparison(at)
    for cell in cmp.CELL_ORDER:
        step, want = expected_trace("adding", cell, 0, cmp.CompareState())
        column = comparison.cells[cell]
        assert step == 0 and column.choice.step == 0 and column.choice.last_step == 3000
        assert_same_trace(column.result.trace, want)
        # a real change: the final model's states are others
        assert not np.allclose(final.cells[cell].result.trace.hidden, want.hidden, atol=1e-3)
        # the gradient overlay follows the step
        assert column.decay.per_step == pytest.approx(gradient_decay(want).per_step, rel=1e-4)
    assert chart(at, "decay_chart") != final_decay
    captions = [shown(c.value) for c in at.caption]
    assert ("shipped trained LSTM at training step 0 of 3,000 · held-out score not measured at "
            "this step") in captions
    assert held_out(at) == ["not measured at this step (0)"] * 3  # never the final model's
    table = at.table[0].value
    assert table.loc["Training time (recorded when trained)", "LSTM"].startswith("whole run: ")
    titles = [a["text"] for a in chart(at, "compare_chart")["layout"]["annotations"]]
    assert "<b>GRU</b> · step 0 of 3,000" in titles


def test_a_link_with_snap_opens_at_that_step_and_back_at_the_end_is_the_final_view():
    at = page(snap=3)  # step 25
    assert at.select_slider(key=SLIDER).value == 3
    assert at.query_params["snap"] == "3"
    comparison = shown_comparison(at)
    step, want = expected_trace("adding", "lstm", 3, cmp.CompareState())
    assert step == 25 and comparison.cells["lstm"].choice.step == 25
    assert_same_trace(comparison.cells["lstm"].result.trace, want)
    at.select_slider(key=SLIDER).set_value(cmp.LAST).run()
    assert_clean(at)
    assert dict(at.query_params) == {}
    final = shown_comparison(at).cells["lstm"].choice
    assert final.source == "shipped" and not isinstance(final, cmp.SnapshotChoice)
    assert held_out(at)[1].startswith(f"{zoo.model_info('adding', 'lstm').heldout.value:.4g} ")


@pytest.mark.parametrize("bad", ["-1", "-3", "abc", "2.5", "inf", "7", "39", "40", "1e9"])
def test_bad_snap_values_fall_back_to_the_final_models(bad):
    at = page(snap=bad)
    assert at.select_slider(key=SLIDER).value == cmp.LAST
    assert dict(at.query_params) == {}
    assert not any(isinstance(c.choice, cmp.SnapshotChoice)
                   for c in shown_comparison(at).cells.values())


def test_shipped_snapshot_comparisons_are_shared_like_the_final_ones():
    from streamlit.runtime.caching import cache_resource_api
    page(snap=1)
    found = []
    for caches in cache_resource_api._resource_caches._function_caches.values():
        for cache in caches.values():
            with cache._mem_cache_lock:
                found += [r.value for r in cache._mem_cache.values()
                          if isinstance(r.value, cmp.Comparison)]
    assert any(isinstance(c.cells["lstm"].choice, cmp.SnapshotChoice)
               and c.cells["lstm"].choice.step == 1 for c in found)


def test_agreement_accuracy_by_distance_is_measured_for_the_snapshot():
    at = page(task="agreement", snap=0)
    rows = chart(at, "accuracy_chart")
    lstm = next(d for d in rows["data"] if d["name"] == "LSTM")
    _, model = zoo.load_history("agreement", "lstm")[0]
    task = get_task("agreement")
    want = task.accuracy_by_distance(model, seed=cmp.AGREEMENT_SEED,
                                     per_distance=cmp.AGREEMENT_PER_DISTANCE,
                                     max_distance=task.seq_len.max)
    assert lstm["y"] == pytest.approx([r["accuracy"] for r in want])
    stored = zoo.model_info("agreement", "lstm").extra["accuracy_by_distance"]
    assert lstm["y"] != pytest.approx([r["accuracy"] for r in stored])  # not the final model's


def test_no_slider_for_the_airline_models_and_a_caption_says_why():
    at = page(task="airline", snap=2)
    assert not has_slider(at)
    assert dict(at.query_params) == {"task": "airline"}  # the step a link asked for is dropped
    assert ("No “Training step” slider: it needs every column's model along its training, and "
            "the shipped models for Airline passengers ship no training history (only the "
            "Adding problem and Subject-verb agreement models ship one).") in [
        shown(c.value) for c in at.sidebar.caption]


# -- models trained in this session ---------------------------------------------------------

@pytest.fixture(scope="module")
def run_with_snapshots():
    """A small real run that kept 5 snapshots (steps 0, 1, 2, 5, 12), its step-5 snapshot
    scored by the held-out check at step 5."""
    result = train("adding", "lstm", TrainConfig(
        max_steps=12, hidden_size=8, snapshots=5, heldout_every=5, batch_size=8,
        heldout_size=50, progress_every=1))
    assert [(s.step, s.score is not None) for s in result.snapshots] == [
        (0, False), (1, False), (2, False), (5, True), (12, True)]
    return result


def test_a_session_model_with_snapshots_goes_along_with_the_shipped_ones(run_with_snapshots):
    label = "adding · LSTM · 10:00"
    session = {TRAINED: {label: run_with_snapshots}}
    at = page(session, lstm=label)
    slider = at.select_slider(key=SLIDER)
    # 7 stops (the shipped models'); the session model's 5 snapshots spread over them
    assert slider.options == [f"snapshot {k} of 7" for k in range(1, 8)]
    assert slider.value == cmp.LAST
    assert shown_comparison(at).cells["lstm"].choice.model is run_with_snapshots.model
    at.select_slider(key=SLIDER).set_value(4).run()  # LSTM: its 4th snapshot, step 5
    assert_clean(at)
    lstm = shown_comparison(at).cells["lstm"]
    assert (lstm.choice.step, lstm.choice.last_step, lstm.choice.source) == (5, 12, "session")
    assert shown_comparison(at).cells["gru"].choice.step == 122  # the shipped GRU's 5th
    score = run_with_snapshots.snapshots[3].score
    assert held_out(at)[1].startswith(f"{score.value:.4g} ")  # measured by the run at step 5
    assert any(shown(c.value).startswith(f"trained in this session: {label} at training step "
                                         "5 of 12 · held-out MSE") for c in at.caption)
    example = cmp.make_example(cmp.CompareState())
    model = model_at(run_with_snapshots, 5)
    want = trace(model.rnn, model.features(example.inputs).float(),
                 get_task("adding").objective(model, example.target))
    assert_same_trace(lstm.result.trace, want)
    at.select_slider(key=SLIDER).set_value(1).run()  # LSTM: step 1, never checked
    assert_clean(at)
    assert shown_comparison(at).cells["lstm"].choice.step == 1
    assert held_out(at)[1] == "not measured at this step (1)"


def test_a_session_model_without_snapshots_means_no_slider(run_with_snapshots):
    from dataclasses import replace
    label = "adding · LSTM · 10:00"
    at = page({TRAINED: {label: replace(run_with_snapshots, snapshots=())}}, lstm=label, snap=0)
    assert not has_slider(at)
    assert "snap" not in at.query_params
    assert shown_comparison(at).cells["lstm"].choice.model is run_with_snapshots.model
    assert any(f"the LSTM column's {label} kept no snapshots" in shown(c.value)
               for c in at.sidebar.caption)


def test_an_upload_has_no_history_and_says_so():
    view = cmp.CompareState(gru=cmp.UPLOAD)
    found = cmp.histories(view, {}, uploaded=["gru"])
    assert cmp.slider_size(found) is None
    assert "the GRU column holds your upload, which brings no training history" in \
        cmp.no_history_note(found, "adding")
    # a column for an upload still waiting for its file shows the shipped model, history too
    assert cmp.slider_size(cmp.histories(view, {}, uploaded=[])) == 7


def test_columns_with_different_numbers_of_snapshots_start_and_end_together():
    assert [cmp.position(k, 7, 7) for k in range(7)] == list(range(7))
    assert [cmp.position(k, 5, 7) for k in (0, cmp.LAST, 6)] == [0, 4, 4]
    assert [cmp.position(k, 20, 7) for k in (0, 6)] == [0, 19]
    assert cmp.position(30, 7, 7) == 6  # beyond the slider: the last
