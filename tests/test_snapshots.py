"""Training keeps snapshots (core.training.snapshots): log-spaced steps from the initialisation
to the final model, through the background worker, in the history download, and the zoo's
shipped histories of the adding and agreement models."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import signal
from dataclasses import replace
from datetime import datetime

import numpy as np
import pytest
import torch
from polling import wait_until

from core.io.exports import history_file, model_files, trained_from_files
from core.io.loading import load_user_weights
from core.limits import LIMITS, LimitError
from core.model import SequenceModel, build_sequence_model
from core.tasks import get_task
from core.training.budget import SNAPSHOT_SHARE, check_training_memory, plan_run, sequence_steps
from core.training.loop import TrainConfig, model_spec, train
from core.training.session import (
    SESSION_SNAPSHOT_BYTES, TrainingSession, keep_newest, make_train_config, train_runs,
)
from core.training.snapshots import (
    MAX_SNAPSHOTS, Snapshot, model_at, read_snapshots, snapshot_steps, snapshots_file,
)
from core.training.zoo import (
    HISTORY_SNAPSHOTS, HISTORY_TASKS, MODELS_DIR, ZOO_SEED, history_path, history_snapshots,
    load_history, load_model, made_with, recipe, weights_sha256,
)

SMALL = dict(hidden_size=8, batch_size=16, heldout_size=50, seq_len=10, progress_every=5,
             heldout_every=10, seed=3, threads=1)
STEPS = [0, 1, 2, 5, 13, 30]  # snapshot_steps(30, 6): the small run's
HISTORIES = [(task, cell) for task in HISTORY_TASKS for cell in ("rnn", "lstm", "gru")]


def states_equal(a: dict, b: dict) -> bool:
    return sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def run():
    """A small LSTM run of 30 steps keeping 6 snapshots."""
    return train("adding", "lstm", TrainConfig(max_steps=30, snapshots=6, **SMALL))


# -- which steps ------------------------------------------------------------------------------

def test_snapshot_steps_are_log_spaced_from_the_init_to_the_last_step():
    steps = snapshot_steps(3000, 20)
    assert len(steps) == 20 and steps[0] == 0 and steps[-1] == 3000
    assert all(a < b for a, b in itertools.pairwise(steps))
    assert steps[:4] == [0, 1, 2, 3]  # the first steps, where a model changes most
    assert steps[-5:] == [325, 506, 790, 1232, 1923, 3000][-5:]
    ratios = np.diff(np.log(steps[8:]))  # past the rounding of the first few: even in log(step)
    assert ratios.max() - ratios.min() < 0.05 and ratios.mean() == pytest.approx(
        np.log(3000) / 18, rel=0.02)
    assert snapshot_steps(2000, 10) == [0, 1, 3, 7, 17, 45, 116, 299, 773, 2000]
    assert snapshot_steps(5, 20) == [0, 1, 2, 3, 4, 5]  # fewer steps than snapshots: all
    assert snapshot_steps(30, 2) == [0, 30] and snapshot_steps(30, 0) == []
    for count in range(2, 41):
        got = snapshot_steps(100, count)
        assert len(got) == count == len(set(got)) and (got[0], got[-1]) == (0, 100)


def test_snapshots_are_off_by_default_and_at_most_40():
    assert TrainConfig().snapshots == 0
    for bad in (1, -1, MAX_SNAPSHOTS + 1):
        with pytest.raises(ValueError, match="snapshots must be 0 \\(none\\) or from 2 to 40"):
            TrainConfig(snapshots=bad)
    assert TrainConfig(snapshots=40).snapshots == 40
    # a user's choice (a widget, a link) is checked with the other choices
    assert make_train_config("adding", steps=100, seconds=10, snapshots=20).snapshots == 20
    assert make_train_config("adding", steps=100, seconds=10).snapshots == 0
    for bad in (1, 41, 2.5, True, "20"):
        with pytest.raises(ValueError, match="The number of snapshots must be 0 \\(none\\) or a "
                                             "whole number from 2 to 40; got"):
            make_train_config("adding", steps=100, seconds=10, snapshots=bad)


# -- a run's snapshots ------------------------------------------------------------------------

def test_a_run_keeps_its_init_its_end_and_log_spaced_steps_between(run):
    assert [s.step for s in run.snapshots] == snapshot_steps(30, 6) == STEPS
    init = build_sequence_model(model_spec(get_task("adding"), "lstm", 8), seed=3)
    assert states_equal(run.snapshots[0].state, init.state_dict())  # same seed, same init
    assert states_equal(run.snapshots[-1].state, run.model.state_dict())
    assert all(t.dtype == torch.float32 and t.device.type == "cpu"
               for s in run.snapshots for t in s.state.values())
    # the weights move: no two snapshots are the same
    first, middle = run.snapshots[0].state, run.snapshots[3].state
    assert not torch.equal(first["rnn.weight_hh_l0"], middle["rnn.weight_hh_l0"])
    # the whole model: the head too
    assert set(first) == set(run.model.state_dict()) and "head.weight" in first


def test_a_snapshot_carries_the_score_of_a_check_at_its_step_only(run):
    scores = {s.step: s.score for s in run.snapshots}
    assert all(scores[step] is None for step in STEPS[:-1])  # no check at these steps
    assert scores[30] == run.score  # the last check (step 30) evaluated the final weights


def test_a_model_rebuilt_at_a_step_trains_on_without_changing_the_snapshot(run):
    before = run.snapshots[2].state["rnn.weight_ih_l0"].clone()
    again = train("adding", "lstm", TrainConfig(max_steps=5, **SMALL), model=model_at(run, 2))
    assert torch.equal(run.snapshots[2].state["rnn.weight_ih_l0"], before)
    assert not torch.equal(again.model.rnn.weight_ih_l0, before)


def test_keeping_snapshots_does_not_change_what_a_run_learns(run):
    plain = train("adding", "lstm", TrainConfig(max_steps=30, **SMALL))
    assert plain.snapshots == ()
    assert states_equal(plain.model.state_dict(), run.model.state_dict())
    assert plain.score == run.score


def test_model_at_rebuilds_the_model_of_a_step(run):
    model = model_at(run, 5)
    assert isinstance(model, SequenceModel) and not model.training
    assert model is not run.model and states_equal(model.state_dict(), run.snapshots[3].state)
    x = get_task("adding").heldout(0, 4, 10).inputs
    with torch.no_grad():
        assert torch.equal(model_at(run, 30)(x), run.model.eval()(x))
        assert not torch.equal(model_at(run, 0)(x), run.model(x))
    same = model_at((run.model, run.snapshots), 13)  # a model and its snapshots, as a pair
    assert states_equal(same.state_dict(), run.snapshots[4].state)
    with pytest.raises(ValueError, match="no snapshot at step 7; snapshots were taken at "
                                         "steps: 0, 1, 2, 5, 13, 30"):
        model_at(run, 7)


def test_a_relu_rnns_snapshots_rebuild_as_relu():
    model = build_sequence_model(model_spec(get_task("adding"), "rnn", 8), seed=1)
    model.rnn = torch.nn.RNN(2, 8, nonlinearity="relu", batch_first=True)
    result = train("adding", "rnn", TrainConfig(max_steps=4, snapshots=2, **SMALL), model=model)
    assert model_at(result, 0).rnn.nonlinearity == "relu"


def test_a_stopped_run_ends_its_snapshots_with_the_weights_it_kept():
    steps_seen = []
    result = train("adding", "gru", TrainConfig(max_steps=1000, snapshots=12, **SMALL),
                   should_stop=lambda: len(steps_seen) >= 40,
                   on_progress=lambda e: steps_seen.extend([e.step] * 5))
    assert result.status == "stopped" and result.steps < 1000
    steps = [s.step for s in result.snapshots]
    planned = snapshot_steps(1000, 12)
    assert steps[:-1] == [s for s in planned if s < result.steps] and steps[-1] == result.steps
    assert states_equal(result.snapshots[-1].state, result.model.state_dict())
    assert result.snapshots[-1].score == result.score


def test_a_diverged_run_ends_its_snapshots_with_the_last_finite_weights():
    result = train("adding", "rnn", TrainConfig(max_steps=300, optimizer="sgd",
                                                learning_rate=1e4, clip_norm=None, hidden_size=16,
                                                seq_len=10, snapshots=40, threads=1))
    assert result.status == "diverged"
    steps = [s.step for s in result.snapshots]
    planned = snapshot_steps(300, 40)
    assert steps[:-1] == [s for s in planned if s < result.steps] and steps[-1] == result.steps
    assert states_equal(result.snapshots[-1].state, result.model.state_dict())
    assert all(torch.isfinite(t).all() for s in result.snapshots for t in s.state.values())


def test_on_snapshot_hears_each_as_it_is_taken(run):
    heard: list[Snapshot] = []
    again = train("adding", "lstm", TrainConfig(max_steps=30, snapshots=6, **SMALL),
                  on_snapshot=heard.append)
    # step 30's snapshot was taken after its check, with that check's score: the final one
    assert [s.step for s in heard] == STEPS
    assert states_equal(heard[-1].state, again.model.state_dict())
    assert all(states_equal(a.state, b.state) for a, b in zip(again.snapshots, run.snapshots))


# -- through the background worker --------------------------------------------------------------

def test_snapshots_come_back_from_a_training_process(run):
    config = TrainConfig(max_steps=30, snapshots=6, **SMALL)
    (spec,) = train_runs("adding", ["lstm"], config, when=datetime(2026, 1, 1, 9, 0, 0))
    session = TrainingSession([spec]).start()
    assert session.wait(timeout=60)
    (result,) = session.results().values()
    assert [s.step for s in result.snapshots] == STEPS
    # the process trained the same run as in-process, so the very same weights
    for theirs, ours in zip(result.snapshots, run.snapshots):
        assert states_equal(theirs.state, ours.state)
        assert theirs.score == ours.score
    assert states_equal(result.snapshots[-1].state, result.model.state_dict())


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP")
def test_a_process_the_server_ends_keeps_its_snapshots_up_to_the_kept_weights():
    config = TrainConfig(max_steps=LIMITS.max_training_steps, snapshots=40,
                         **{**SMALL, "heldout_every": 5})
    (spec,) = train_runs("adding", ["gru"], config, when=datetime(2026, 1, 1, 9, 0, 1))
    session = TrainingSession([spec]).start()
    assert wait_until(lambda: any(e.heldout_metric is not None and e.step >= 10
                                  for e in session.snapshot()[0].events))
    (child,) = [p for p in multiprocessing.active_children()
                if p.name.startswith("gatescope-train adding")]
    os.kill(child.pid, signal.SIGSTOP)  # a step that never ends: the server has to end it
    session.stop()
    assert session.wait(timeout=30)
    (result,) = session.results().values()
    assert "was ended" in result.message and result.steps % 5 == 0 and result.steps >= 10
    steps = [s.step for s in result.snapshots]
    planned = snapshot_steps(LIMITS.max_training_steps, 40)
    assert steps[:-1] == [s for s in planned if s < result.steps] and steps[-1] == result.steps
    assert states_equal(result.snapshots[-1].state, result.model.state_dict())
    assert result.snapshots[-1].score == result.score


# -- the history download -----------------------------------------------------------------------

def test_the_history_download_round_trips_with_the_weights_and_config(run):
    weights, meta = model_files(run)
    history = history_file(run)
    back = trained_from_files(weights, meta, history)
    assert [s.step for s in back.snapshots] == STEPS
    for a, b in zip(back.snapshots, run.snapshots):
        assert states_equal(a.state, b.state) and a.score == b.score
    assert states_equal(model_at(back, 2).state_dict(), run.snapshots[2].state)
    entries = json.loads(history[8:8 + int.from_bytes(history[:8], "little")])
    header = entries["__metadata__"]
    assert json.loads(header["steps"]) == STEPS
    assert (header["format"], header["task"], header["cell"]) == (
        "gatescope snapshots", "adding", "lstm")
    assert "snapshots.13.rnn.weight_hh_l0" in entries and "snapshots.0.head.bias" in entries
    # the weights file is as before: one recurrent module, which the upload loader reads
    assert isinstance(load_user_weights(weights, "adding_lstm.safetensors"), torch.nn.LSTM)
    assert trained_from_files(weights, meta).snapshots == ()


def test_a_run_without_snapshots_has_no_history_file_and_a_wrong_one_is_refused(run):
    plain = train("adding", "lstm", TrainConfig(max_steps=3, **SMALL))
    assert history_file(plain) is None
    weights, meta = model_files(plain)
    with pytest.raises(ValueError, match="another run's"):
        trained_from_files(weights, meta, history_file(run))
    with pytest.raises(ValueError, match="the history file is not a gatescope snapshots file"):
        trained_from_files(weights, meta, weights)
    other = train("adding", "gru", TrainConfig(max_steps=3, snapshots=2, **SMALL))
    with pytest.raises(ValueError, match="not of this model's weights"):
        trained_from_files(weights, meta, history_file(other))


# -- memory ----------------------------------------------------------------------------------

def test_snapshots_of_a_big_model_are_cut_to_their_share_of_the_budget():
    def params(hidden, layers):
        return sum(p.numel() for p in SequenceModel(
            model_spec(get_task("adding"), "lstm", hidden, layers)).parameters())

    plan = plan_run("adding", "lstm", TrainConfig(hidden_size=256, seq_len=20, snapshots=40))
    fits = int(SNAPSHOT_SHARE * LIMITS.max_training_bytes // (4 * params(256, 1)))
    assert 2 <= plan.config.snapshots == fits < 40
    assert plan.estimate["snapshots"] == 4 * params(256, 1) * fits
    assert f"Snapshots cut from 40 to {fits}: each is a copy of the model (1 MB)" in plan.notes[0]
    none = plan_run("adding", "lstm", TrainConfig(hidden_size=512, num_layers=2, seq_len=20,
                                                  snapshots=40))
    assert none.config.snapshots == 0 and "snapshots" not in none.estimate
    assert none.notes[0].startswith("No snapshots kept (of the 40 asked for): each is a copy")
    shipped_size = plan_run("adding", "lstm", TrainConfig(snapshots=40))
    assert shipped_size.config.snapshots == 40 and not shipped_size.notes
    # a config the planner did not see is refused by the trainer, its snapshots named
    big = TrainConfig(hidden_size=512, num_layers=2, seq_len=20, snapshots=40,
                      batch_size=none.config.batch_size, heldout_size=none.config.heldout_size)
    spec = model_spec(get_task("adding"), "lstm", 512, 2)
    with pytest.raises(LimitError, match="with its 40 snapshots of .* MB; keep fewer"):
        check_training_memory(spec, big, sequence_steps("adding", 20), big.heldout_size)


def test_a_session_drops_the_oldest_snapshots_first_and_keeps_the_models(run):
    big = torch.zeros(SESSION_SNAPSHOT_BYTES // 4 // 2 + 1)  # half the session's share, and more
    heavy = [Snapshot(0, {"w": big}), Snapshot(1, {"w": big})]
    trained = {"old": replace(run, snapshots=tuple(heavy)), "new": replace(run, snapshots=(
        heavy[0],))}
    keep_newest(trained)
    assert list(trained) == ["old", "new"]
    assert trained["old"].snapshots == () and len(trained["new"].snapshots) == 1


# -- the zoo's histories --------------------------------------------------------------------------

def test_the_adding_and_agreement_models_ship_small_histories():
    files = [history_path(t, c) for t, c in HISTORIES]
    assert all(f.exists() for f in files)
    assert sum(f.stat().st_size for f in files) < 2 * 2**20
    assert sorted(MODELS_DIR.glob("*_history.safetensors")) == sorted(files)


@pytest.mark.parametrize("task, cell", HISTORIES)
def test_a_history_runs_from_the_recipes_init_to_the_shipped_weights(task, cell):
    history = load_history(task, cell)
    config = recipe(task, cell)
    steps = snapshot_steps(config.max_steps, HISTORY_SNAPSHOTS)
    assert config.snapshots == HISTORY_SNAPSHOTS and len(steps) == 7
    assert [step for step, _ in history] == steps
    assert all(isinstance(m, SequenceModel) and not m.training for _, m in history)
    assert states_equal(history[-1][1].state_dict(), load_model(task, cell).state_dict())
    assert history[-1][1] is not load_model(task, cell)  # a copy: the shared one stays as it is
    init = build_sequence_model(model_spec(get_task(task), cell, config.hidden_size),
                                seed=ZOO_SEED, forget_bias=config.forget_bias)
    assert states_equal(history[0][1].state_dict(), init.state_dict())
    # the file holds the steps in between, float32, and the hashes of the two ends
    between, metadata = history_snapshots(task, cell)
    assert [s.step for s in between] == steps[1:-1] and json.loads(metadata["all_steps"]) == steps
    assert all(t.dtype == torch.float32 for s in between for t in s.state.values())
    for (step, model), snapshot in zip(history[1:-1], between):
        assert states_equal(model.state_dict(), snapshot.state)
    assert metadata["init_sha256"] == weights_sha256(init.state_dict())
    assert metadata["final_sha256"] == weights_sha256(load_model(task, cell).state_dict())
    weights = [m.rnn.weight_hh_l0 for _, m in history]
    assert all(not torch.equal(a, b) for a, b in itertools.pairwise(weights))  # it moves


@pytest.mark.parametrize("task, cell", [(t, c) for t, c in HISTORIES if c != "rnn"])
def test_a_gated_models_history_shows_it_learning(task, cell):
    history = load_history(task, cell)
    t = get_task(task)
    seq_len = 50 if task == "adding" else 20
    first, last = (t.evaluate(history[i][1], seed=424242, n=300, seq_len=seq_len)
                   for i in (0, -1))
    assert last.verdict == "better" and first.verdict != "better"


@pytest.mark.parametrize("task, cell", HISTORIES)
def test_the_recipe_remakes_a_historys_first_steps_bit_for_bit(task, cell):
    """Five steps of the recipe end where the shipped history's step 5 is (the batches and
    Adam's steps do not depend on how long the run goes on), on the CPU and torch it records."""
    between, metadata = history_snapshots(task, cell)
    record, here = json.loads(metadata["made_with"]), made_with(task)
    differs = [key for key in ("torch", "cpu", "cpu_capability", "cpu_flags_sha256")
               if record.get(key) != here[key]]
    if differs:
        pytest.skip(f"made elsewhere ({', '.join(differs)}): float results depend on them")
    step5 = {s.step: s for s in between}[5]
    result = train(task, cell, replace(recipe(task, cell), max_steps=5, snapshots=0))
    assert states_equal(result.model.state_dict(), step5.state)


def test_a_task_without_a_shipped_history_says_how_to_make_one():
    with pytest.raises(FileNotFoundError, match="no training history for airline x lstm .*"
                                                "make it with: python scripts/train_zoo.py "
                                                "--task airline --cell lstm"):
        load_history("airline", "lstm")


def test_a_history_whose_ends_are_other_weights_is_refused(monkeypatch):
    between, metadata = history_snapshots("adding", "gru")
    for key, words in (("final_sha256", "the shipped model's weights"),
                       ("init_sha256", "the recipe's initialisation")):
        monkeypatch.setattr("core.training.zoo.history_snapshots",
                            lambda task, cell, key=key: (between, {**metadata, key: "0" * 64}))
        with pytest.raises(RuntimeError, match=f"adding_gru_history.safetensors is not the "
                                               f"history of {words} \\(adding x gru\\): remake"):
            load_history("adding", "gru")


def test_a_snapshots_file_round_trips_and_refuses_other_files(run):
    data = snapshots_file(run.snapshots, {"task": "adding"})
    back = read_snapshots(data)
    assert [s.step for s in back] == STEPS
    assert all(states_equal(a.state, b.state) for a, b in zip(back, run.snapshots))
    with pytest.raises(ValueError, match="x.bin is not a gatescope snapshots file"):
        read_snapshots(b"not safetensors", "x.bin")
