"""The Train page under streamlit.testing.v1.AppTest: every control reaches the trainer, runs
land in st.session_state[TRAINED], Stop keeps what was learned, limits hold; its URL state
(core.views.train.TrainState); and "Open in Explore" from the whole app."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import pagetest
from pagetest import click, shown

from core.io.exports import model_files, trained_from_files
from core.limits import LIMITS
from core.tasks import TASKS
from core.training.snapshots import read_snapshots, snapshot_steps
from core.views import train as tr
from core.views.train import TrainState
from ui.live import session_key
from ui.state import OPEN_IN_COMPARE, OPEN_IN_EXPLORE, TRAINED

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "app_pages" / "train.py")
SESSION = session_key("train")
# the adding task at its shortest length: what these tests check does not depend on it
SMALL = dict(steps="40", hidden="8", len="2")


def open_page(**query) -> AppTest:
    return pagetest.open_page(PAGE, **query)


def train_to_the_end(at) -> AppTest:
    click(at, "Train")
    assert not at.error, [e.value for e in at.error]
    assert at.session_state[SESSION].wait(timeout=90)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def trained(at) -> dict:
    return at.session_state[TRAINED] if TRAINED in at.session_state else {}


def chart_titles(at) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def test_the_page_opens_ready_to_train_all_three_cells():
    at = open_page()
    assert at.segmented_control(key="train_cells").value == "all"
    assert at.selectbox(key="train_task").value == "adding"
    assert any("press **Train**" in i.value for i in at.info)
    assert next(b for b in at.button if b.label == "Stop").disabled
    assert not trained(at)


def test_all_three_cells_train_on_the_same_data_and_are_kept_for_explore():
    at = train_to_the_end(open_page(**SMALL))
    models = trained(at)
    assert len(models) == 3
    assert sorted(r.cell for r in models.values()) == ["gru", "lstm", "rnn"]
    assert len({r.config.seed for r in models.values()}) == 1
    for label, result in models.items():
        assert label.startswith("adding · ") and result.steps == 40
        assert result.status == "finished" and result.task == "adding"
    assert len(at.get("progress")) == 3
    titles = chart_titles(at)
    assert any("Loss" in t for t in titles) and any("Held-out MSE" in t for t in titles)
    assert any("Loss spread" in t for t in titles)
    assert "Trained in this session" in [s.value for s in at.subheader]
    # weights, config and (20 snapshots by default) history for each model
    assert len(at.get("download_button")) == 9
    assert not next(b for b in at.button if b.label == "Train").disabled


def test_every_choice_reaches_the_trainer():
    at = open_page()
    # the task and the cells decide which widgets there are; the rest are set in one rerun
    at.selectbox(key="train_task").set_value("agreement").run()
    at.segmented_control(key="train_cells").set_value("lstm").run()
    at.slider(key="train_len_agreement").set_value(8)
    at.selectbox(key="train_optimizer").set_value("rmsprop")
    at.select_slider(key="train_lr").set_value(0.01)
    at.select_slider(key="train_hidden").set_value(16)
    at.number_input(key="train_layers").set_value(2)
    at.selectbox(key="train_init").set_value("orthogonal")
    at.selectbox(key="train_forget_bias").set_value("2")
    at.selectbox(key="train_clip").set_value("off")
    at.number_input(key="train_steps").set_value(30)
    at.number_input(key="train_seconds").set_value(20)
    at.number_input(key="train_seed").set_value(11).run()
    assert not at.exception and not at.error
    assert at.selectbox(key="train_update_bias").disabled  # no GRU in this run
    train_to_the_end(at)
    (label, result), = trained(at).items()
    config = result.config
    assert label.startswith("agreement · LSTM · ")
    assert (result.task, result.cell, result.steps) == ("agreement", "lstm", 30)
    assert (config.seq_len, config.optimizer, config.learning_rate) == (8, "rmsprop", 0.01)
    assert (config.hidden_size, config.num_layers, config.init) == (16, 2, "orthogonal")
    assert (config.forget_bias, config.clip_norm, config.seed) == (2.0, None, 11)
    assert (config.max_seconds, config.update_bias) == (20.0, None)
    assert result.model.rnn.num_layers == 2 and result.model.rnn.hidden_size == 16
    assert any("Held-out accuracy" in t for t in chart_titles(at))


def test_the_snapshots_choice_reaches_the_trainer_and_a_run_downloads_its_history():
    at = open_page(cells="lstm", **SMALL)
    assert at.select_slider(key="train_snapshots").value == 20  # the default
    at.select_slider(key="train_snapshots").set_value(5).run()
    assert at.query_params["snapshots"] == "5"
    (label, result), = trained(train_to_the_end(at)).items()
    assert result.config.snapshots == 5
    assert [s.step for s in result.snapshots] == snapshot_steps(40, 5) == [0, 1, 3, 12, 40]
    buttons = [b.proto.label for b in at.get("download_button")]
    assert buttons == ["Weights", "Config", "History"]
    name, data, file_name, _ = tr.downloads(result, tr.file_stem(label))[2]
    assert (name, file_name) == ("History", f"{tr.file_stem(label)}_history.safetensors")
    history = data()  # what the button gives when clicked
    assert [s.step for s in read_snapshots(history)] == [0, 1, 3, 12, 40]
    weights, config = model_files(result)
    again = trained_from_files(weights, config, history)  # the three files make the run again
    assert [s.step for s in again.snapshots] == [0, 1, 3, 12, 40]


def test_a_run_without_snapshots_has_no_history_to_download():
    at = open_page(cells="gru", snapshots="0", **SMALL)
    assert at.select_slider(key="train_snapshots").value == 0
    (result,) = trained(train_to_the_end(at)).values()
    assert result.config.snapshots == 0 and result.snapshots == ()
    assert [b.proto.label for b in at.get("download_button")] == ["Weights", "Config"]


def test_a_big_model_keeps_fewer_snapshots_and_the_page_says_so():
    at = open_page(cells="lstm", hidden="512", steps="5", snapshots="40")
    click(at, "Train")
    session = at.session_state[SESSION]
    (run,) = session.runs
    assert 0 < run.config.snapshots < 40
    assert any(shown(c.value).startswith(f"Snapshots cut from 40 to {run.config.snapshots}: ")
               for c in at.caption)
    click(at, "Stop")
    assert session.wait(timeout=60)


def test_a_gru_gets_the_update_gate_bias():
    at = open_page(cells="gru", update_bias="2", **SMALL)
    assert at.selectbox(key="train_forget_bias").disabled
    train_to_the_end(at)
    (result,) = trained(at).values()
    assert (result.cell, result.config.update_bias, result.config.forget_bias) == ("gru", 2.0,
                                                                                  None)


def test_every_task_offers_its_own_length():
    at = open_page()  # one page, every task chosen in turn
    for task in TASKS:
        at.selectbox(key="train_task").set_value(task).run()
        assert not at.exception and not at.error, task
        length = TASKS[task].seq_len
        if length.fixed or length.min == length.max:
            assert any(f"fixed at {length.default}" in m.value for m in at.markdown), task
        else:
            slider = at.slider(key=f"train_len_{task}")
            assert (slider.min, slider.value) == (length.min, length.default), task
            assert length.unit in slider.label, task


def test_a_fixed_length_task_trains():
    at = open_page(task="random", cells="gru", steps="40", hidden="8")
    assert at.selectbox(key="train_task").value == "random"
    train_to_the_end(at)
    (result,) = trained(at).values()
    assert result.task == "random" and result.config.seq_len is None


def test_stop_ends_the_runs_early_and_keeps_what_they_learned():
    at = open_page(steps=str(LIMITS.max_training_steps), hidden="32")
    click(at, "Train")
    session = at.session_state[SESSION]
    assert session.running
    # Stop once every run has had its first held-out check. A run stopped before its first step
    # keeps nothing, and rightly so; and on a busy machine a training process may not answer
    # Stop within the grace period, when the server ends it and keeps its last checked weights
    # (none before the first check: seen twice in full runs, 2 models of 3).
    def checked(run) -> bool:
        return any(e.heldout_metric is not None for e in run.events)

    deadline = time.monotonic() + 90
    while not all(checked(run) for run in session.snapshot()) and time.monotonic() < deadline:
        time.sleep(0.1)
    click(at, "Stop")
    assert session.wait(timeout=60)
    at.run()
    models = trained(at)
    # (what the page said of a run that kept nothing, should one do so on a busy machine)
    assert len(models) == 3, [m.value for m in (*at.error, *at.warning)]
    for result in models.values():
        assert result.status == "stopped" and result.steps < LIMITS.max_training_steps
    warnings = [w.value for w in at.warning] + [s.value for s in at.success]
    assert any("Stopped by the user" in text for text in warnings)


def test_values_over_the_limits_in_the_url_are_ignored():
    at = open_page(steps=str(LIMITS.max_training_steps + 1), seconds="100000", hidden="100000",
                   layers="99", lr="nan", task="no-such-task", cells="transformer")
    assert at.number_input(key="train_steps").value == TrainState().steps
    assert at.number_input(key="train_seconds").value == 60
    assert at.select_slider(key="train_hidden").value == TrainState().hidden
    assert at.number_input(key="train_layers").value == 1
    assert at.select_slider(key="train_lr").value == TrainState().lr
    assert at.selectbox(key="train_task").value == "adding"
    assert at.segmented_control(key="train_cells").value == "all"
    assert at.number_input(key="train_steps").max == LIMITS.max_training_steps
    assert at.number_input(key="train_seconds").max == LIMITS.max_training_seconds


def test_a_model_over_the_parameter_limit_is_refused_with_its_size():
    at = open_page(cells="lstm", hidden="512", layers="4")
    click(at, "Train")
    (error,) = [shown(e.value) for e in at.error]
    assert "Cannot start training: A 4-layer LSTM with 512 units has" in error
    assert f"at most {LIMITS.max_params:,} can be trained here" in error
    assert SESSION not in at.session_state and not trained(at)


def test_runs_wait_for_a_free_slot_while_other_visitors_train():
    from core.sharing import TRAINING_SLOTS

    taken = 0
    while TRAINING_SLOTS.acquire(lambda: True):  # other visitors hold every slot
        taken += 1
    try:
        at = open_page(cells="gru", **SMALL)
        click(at, "Train")
        (progress,) = at.get("progress")
        assert "waiting for a free training slot" in progress.proto.text
        assert "at most 3 runs train at once on this server" in progress.proto.text
    finally:
        for _ in range(taken):
            TRAINING_SLOTS.release()
    assert at.session_state[SESSION].wait(timeout=90)  # a slot came free: it trained
    at.run()
    (result,) = trained(at).values()
    assert result.status == "finished" and result.steps == 40


def test_the_newest_models_are_kept_and_labels_never_collide():
    at = open_page(cells="rnn", steps="5", hidden="4", len="2")
    for _ in range(10):  # one more than a session keeps
        train_to_the_end(at)
    models = trained(at)
    assert len(models) == 9  # the oldest go first: per-session memory stays bounded
    assert len(set(models)) == 9


def test_open_in_explore_names_the_model_for_the_explore_page():
    at = train_to_the_end(open_page(cells="lstm", **SMALL))
    (label,) = trained(at)
    click(at, "Open in Explore")
    assert at.session_state[OPEN_IN_EXPLORE] == label
    # this page runs alone here (no st.navigation): it says so instead of failing
    assert any("Explore page is not available" in i.value for i in at.info)


def test_open_in_compare_names_the_model_for_the_compare_page():
    at = train_to_the_end(open_page(cells="gru", **SMALL))
    (label,) = trained(at)
    click(at, "Open in Compare")
    assert at.session_state[OPEN_IN_COMPARE] == [label]
    assert any("Compare page is not available" in i.value for i in at.info)


def test_open_in_explore_works_after_a_setting_was_changed():
    """The whole app: change a Train setting, train, open the model in Explore. (Widgets bound
    to the URL made st.switch_page fail here: "Cannot clear query parameters"; the browser test
    in tests/e2e/test_lab_and_train.py clicks the same path.)"""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.run()
    at.switch_page("app_pages/train.py").run()
    at.segmented_control(key="train_cells").set_value("lstm").run()
    at.number_input(key="train_steps").set_value(20).run()
    at.select_slider(key="train_hidden").set_value(8).run()
    assert (at.query_params["cells"], at.query_params["steps"]) == ("lstm", "20")  # in the URL
    (label,) = trained(train_to_the_end(at))
    click(at, "Open in Explore")
    assert [t.value for t in at.title] == ["gatescope · Explore"]  # Explore is what runs
    assert at.radio(key="explore_source").value == "session"
    assert at.selectbox(key="explore_run").value == label
    assert not at.error and not any("not available" in i.value for i in at.info)


# -- the URL: core.views.train.TrainState ------------------------------------------------------

def test_the_defaults_give_an_empty_query_and_a_link_spells_choices_by_key():
    assert TrainState().to_query() == {}
    state = TrainState(task="agreement", cells="lstm", optimizer="sgd", lr=0.03, hidden=64)
    query = state.to_query()
    assert query == {"task": "agreement", "cells": "lstm", "optimizer": "sgd", "lr": "0.03",
                     "hidden": "64"}
    assert TrainState.from_query(query) == state
    # links made when the URL held the words shown still open the same run
    assert TrainState.from_query({"task": "Subject-verb agreement", "cells": "LSTM",
                                  "optimizer": "SGD", "lr": "0.03", "hidden": "64"}) == state
    assert TrainState.from_query({"cells": "All three"}).cells == "all"


@pytest.mark.parametrize("query", [
    {"steps": "inf"}, {"steps": "-inf"}, {"steps": "1e400"}, {"steps": "abc"},
    {"steps": str(LIMITS.max_training_steps + 1)}, {"seconds": "nan"}, {"seed": "2.5"},
    {"lr": "nan"}, {"lr": "0.5"}, {"hidden": "100000"}, {"hidden": "33"}, {"layers": "99"},
    {"task": "no-such-task"}, {"cells": "transformer"}, {"clip": "7"}, {"forget_bias": "inf"},
    {"len": "5000"}, {"len": "inf"},
])
def test_a_bad_url_value_is_dropped(query):
    state = TrainState.from_query(query)
    assert state == TrainState() and state.to_query() == {}


@pytest.mark.parametrize("count", ["1", "3", "41", "-2", "nan", "twenty"])
def test_a_number_of_snapshots_not_offered_is_dropped(count):
    assert TrainState.from_query({"snapshots": count}) == TrainState()


def test_the_state_builds_the_runs_the_page_trains():
    state = TrainState.from_query({"task": "agreement", "cells": "gru", "len": "8", "clip": "off",
                                   "update_bias": "2", "forget_bias": "3", "steps": "30"})
    (run,) = state.runs(taken=set())
    assert (run.task, run.cell, run.config.seq_len, run.config.max_steps) == ("agreement", "gru",
                                                                             8, 30)
    assert (run.config.clip_norm, run.config.update_bias, run.config.forget_bias) == (None, 2.0,
                                                                                     None)
    assert TrainState(task="random").config().seq_len is None  # a fixed length
    assert TrainState(task="adding").config().seq_len == 50  # the task's default
    assert [r.cell for r in TrainState().runs()] == ["rnn", "lstm", "gru"]
    assert [r.config.snapshots for r in TrainState(snapshots=0).runs()] == [0, 0, 0]
    assert TrainState().config().snapshots == 20


def test_a_run_too_big_for_the_memory_budget_trains_a_smaller_batch_and_says_so():
    """The issue's run: adding, length 1000, hidden 512, 2 layers, LSTM (3.16 M parameters)
    once took 6.2 GB; its batch now fits the budget, and the page says so."""
    at = open_page(cells="lstm", hidden="512", layers="2", len="1000", steps="5")
    click(at, "Train")
    session = at.session_state[SESSION]
    captions = [shown(c.value) for c in at.caption]
    assert ("Batch scaled from 50 to 1 sequence to fit the memory budget of 192 MB per training "
            "run (76 MB per sequence for a 2-layer LSTM with 512 units on sequences of 1,000 "
            "steps).") in captions
    assert any(c.startswith("Held-out set scaled from 500 to 20 sequences") for c in captions)
    (run,) = session.runs
    assert run.config.batch_size == 1 and run.config.heldout_size == 20
    click(at, "Stop")
    assert session.wait(timeout=60)


def test_a_model_too_big_for_the_memory_budget_is_refused_with_what_to_change():
    at = open_page(cells="gru", hidden="512", layers="3", len="1000")
    click(at, "Train")
    assert [shown(e.value) for e in at.error] == [
        "Cannot start training: Too big to train here: a 3-layer GRU with 512 units on sequences "
        "of 1,000 steps needs about 200 MB to train on one sequence at a time; the memory budget "
        "of a training run is 192 MB. Use shorter sequences, fewer units or fewer layers."]
    assert SESSION not in at.session_state  # nothing started, no slot taken
    assert not next(b for b in at.button if b.label == "Train").disabled
