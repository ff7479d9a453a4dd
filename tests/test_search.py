"""Hyperparameter search (core/search): the spaces, the cells in turn, pruning within a cell,
where studies live, workers, a study read back, searches the server runs, the worker command.

Every test keeps its studies in its own temporary folder (GATESCOPE_SEARCH_DIR, or a URL of its
own): core.search.storage keeps one storage per URL for the life of the process. Trials train
the adding problem for at most 40 steps, so a study of a few trials takes seconds.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from core.cells import CELLS
from core.limits import LIMITS, LimitError
from core.model import INITS
from core.search.__main__ import main
from core.search.local import LocalSearch, SearchPlan, SearchRegistry
from core.search.results import StudyResults
from core.search.space import (
    CELL,
    CLIP_NORMS,
    CellRoundRobinSampler,
    SameCellMedianPruner,
    space_for,
    suggest,
)
from core.search.storage import (
    DIRECTORY_ENV,
    ROOT,
    STORAGE_ENV,
    SearchError,
    check_storage_url,
    check_study_name,
    create_study,
    default_storage_url,
    open_storage,
    open_study,
    shown_url,
    study_names,
)
from core.search.worker import ATTRIBUTES, run_worker, trial_paths
from core.sharing import TrainingSlots
from core.tasks import TASKS, get_task
from core.training.budget import plan_run
from core.training.loop import OPTIMIZERS, heldout_set
from tests.polling import wait_until

ENDED = ("COMPLETE", "PRUNED")
URL_EXAMPLE = "sqlite:///path/to/studies.sqlite3"


@pytest.fixture
def search_dir(tmp_path, monkeypatch):
    """A fresh search folder: the default SQLite file and the weights go there."""
    monkeypatch.setenv(DIRECTORY_ENV, str(tmp_path))
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    return tmp_path


@pytest.fixture(autouse=True)
def torch_threads_kept():
    """run_worker sets one torch thread for its process; the test process gets its own back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'studies.sqlite3'}"


def cell_distribution(cells=tuple(CELLS)) -> dict:
    return {CELL: CategoricalDistribution(cells)}


@pytest.fixture(scope="module")
def adding_study(tmp_path_factory):
    """One worker's 4 trials of the adding problem (30 steps at most) in a study made with
    data seed 7, shared by the tests that read a finished study."""
    folder = tmp_path_factory.mktemp("adding-study")
    url = sqlite_url(folder)
    storage = open_storage(url)
    create_study("adding-4", "adding", storage, data_seed=7)
    lines: list[str] = []
    threads = torch.get_num_threads()
    report = run_worker("adding", "adding-4", 4, storage=url, max_steps=30,
                        directory=folder / "weights", on_trial=lines.append)
    torch.set_num_threads(threads)
    return SimpleNamespace(url=url, folder=folder, report=report, lines=lines, storage=storage,
                           trials=optuna.load_study(study_name="adding-4",
                                                    storage=storage).get_trials())


# -- space ----------------------------------------------------------------------------------

@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("max_steps", [40, None])
def test_every_suggestion_is_a_valid_config_inside_the_space(task, max_steps):
    space = space_for(task, max_steps=max_steps)
    study = optuna.create_study(sampler=CellRoundRobinSampler(space.cells, seed=3))
    seen_cells = set()
    for n in range(9):
        trial = study.ask()
        cell, config = suggest(trial, space, seed=11, max_seconds=30.0)
        seen_cells.add(cell)
        assert cell == trial.params[CELL] and cell in CELLS
        assert space.hidden_size[0] <= config.hidden_size <= space.hidden_size[1]
        assert space.num_layers[0] <= config.num_layers <= space.num_layers[1]
        assert space.learning_rate[0] <= config.learning_rate <= space.learning_rate[1]
        assert config.optimizer in OPTIMIZERS and config.init in INITS
        assert config.clip_norm in CLIP_NORMS
        assert space.steps[0] <= config.max_steps <= space.max_steps
        assert config.seed == 11 and config.max_seconds == 30.0 and config.threads == 1
        # every trial of a study checks at the same steps, so the pruner compares like with like
        assert config.heldout_every == config.progress_every == space.heldout_every
        if cell == "lstm":
            assert space.forget_bias[0] <= config.forget_bias <= space.forget_bias[1]
        else:
            assert config.forget_bias is None
        if cell == "gru":
            assert space.update_bias[0] <= config.update_bias <= space.update_bias[1]
        else:
            assert config.update_bias is None
        # each hyperparameter is the cell's own
        assert all(name == CELL or name.startswith(f"{cell}.") for name in trial.params)
        assert f"{cell}.hidden_size" in trial.params and f"{cell}.steps" in trial.params
        study.tell(trial, float(n))
    assert seen_cells == set(CELLS)


def test_the_step_cap_and_the_checks_follow_max_steps():
    assert space_for("adding", max_steps=40).steps == (20, 40)
    assert space_for("adding", max_steps=1000).steps == (100, 1000)  # one decade at most
    assert space_for("adding", max_steps=5).steps == (5, 5)  # below the usual least: the cap
    assert space_for("adding").max_steps == 3000  # default: the zoo recipe's
    assert space_for("adding", max_steps=40).heldout_every == 10
    assert space_for("adding", max_steps=3000).heldout_every == 300


def test_a_space_needs_known_cells():
    assert space_for("adding", cells=("gru", "lstm", "gru")).cells == ("gru", "lstm")
    with pytest.raises(ValueError, match="at least one cell"):
        space_for("adding", cells=())
    with pytest.raises(ValueError, match="unknown cell 'tanh'"):
        space_for("adding", cells=("lstm", "tanh"))
    with pytest.raises(ValueError, match="unknown task"):
        space_for("no-such-task")


@pytest.mark.parametrize("task", sorted(TASKS))
def test_the_largest_model_of_every_space_fits_the_training_budget(task):
    # A trial that does not fit is failed with LimitError: a space must not offer one.
    space = space_for(task)
    for cell in CELLS:
        params = {CELL: cell, f"{cell}.hidden_size": space.hidden_size[1],
                  f"{cell}.num_layers": space.num_layers[1], f"{cell}.learning_rate": 1e-3,
                  f"{cell}.optimizer": "adam", f"{cell}.clip_norm": 1.0,
                  f"{cell}.init": "default", f"{cell}.forget_bias": 1.0,
                  f"{cell}.update_bias": 0.0, f"{cell}.steps": space.max_steps}
        _, config = suggest(optuna.trial.FixedTrial(params), space, 0, None)
        plan = plan_run(task, cell, config)
        assert plan.config.hidden_size == space.hidden_size[1]


# -- the sampler: cells in turn ---------------------------------------------------------------

def asked(sampler: CellRoundRobinSampler, trials: int, max_steps: int = 40) -> list[dict]:
    space = space_for("adding", cells=sampler.cells, max_steps=max_steps)
    study = optuna.create_study(sampler=sampler)
    params = []
    for n in range(trials):
        trial = study.ask()
        suggest(trial, space, 0, None)
        params.append(dict(trial.params))
        study.tell(trial, 1.0 / (n + 1))
    return params


@pytest.mark.parametrize("cells", [tuple(CELLS), ("gru", "lstm")])
def test_trial_n_takes_the_nth_cell_in_turn(cells):
    params = asked(CellRoundRobinSampler(cells, seed=0), 7)
    assert [p[CELL] for p in params] == [cells[n % len(cells)] for n in range(7)]
    # the other hyperparameters are still searched
    sizes = [p[f"{p[CELL]}.hidden_size"] for p in params]
    rates = [p[f"{p[CELL]}.learning_rate"] for p in params]
    assert len(set(sizes)) > 1 and len(set(rates)) > 1


def test_a_seeded_sampler_suggests_the_same_trials_again():
    first = asked(CellRoundRobinSampler(tuple(CELLS), seed=5), 7)
    again = asked(CellRoundRobinSampler(tuple(CELLS), seed=5), 7)
    other = asked(CellRoundRobinSampler(tuple(CELLS), seed=6), 7)
    assert first == again
    assert [p[CELL] for p in other] == [p[CELL] for p in first]
    assert other != first


# -- the pruner: within a cell ----------------------------------------------------------------

def completed(cell: str, value: float, checks=(10, 20, 30)):
    return create_trial(params={CELL: cell}, distributions=cell_distribution(),
                        intermediate_values={step: value for step in checks}, value=value,
                        state=TrialState.COMPLETE)


def running(cell: str, values: list[float], every: int = 10):
    return create_trial(params={CELL: cell}, distributions=cell_distribution(),
                        intermediate_values={every * (i + 1): v for i, v in enumerate(values)},
                        state=TrialState.RUNNING)


def study_of(direction: str, peers: dict[str, list[float]]) -> optuna.Study:
    study = optuna.create_study(direction=direction)
    for cell, values in peers.items():
        for value in values:
            study.add_trial(completed(cell, value))
    return study


def test_an_rnn_is_compared_with_rnns_only():
    # Minimising MSE: the LSTMs are far ahead. An RNN better than the RNNs' median goes on,
    # though it is far behind the LSTMs (and behind the median of all six trials).
    study = study_of("minimize", {"lstm": [0.01, 0.02, 0.03], "rnn": [0.5, 0.6, 0.7]})
    pruner = SameCellMedianPruner()
    candidate = running("rnn", [0.45, 0.42, 0.4])
    assert optuna.pruners.MedianPruner(n_startup_trials=3).prune(study, candidate), \
        "the test's data: Optuna's median over all cells would prune it"
    assert not pruner.prune(study, candidate)
    assert pruner.prune(study, running("rnn", [0.65, 0.65, 0.65]))  # behind its own cell
    assert pruner.prune(study, running("lstm", [0.04, 0.04, 0.04]))
    assert not pruner.prune(study, running("lstm", [0.015, 0.015, 0.015]))


def test_maximising_a_score_prunes_the_trials_below_the_median():
    study = study_of("maximize", {"gru": [0.9, 0.8, 0.85], "rnn": [0.55, 0.6, 0.5]})
    pruner = SameCellMedianPruner()
    assert pruner.prune(study, running("gru", [0.7, 0.7, 0.7]))
    assert not pruner.prune(study, running("gru", [0.88, 0.88, 0.88]))
    assert not pruner.prune(study, running("rnn", [0.7, 0.7, 0.7]))  # behind GRUs, not RNNs
    assert pruner.prune(study, running("rnn", [0.52, 0.52, 0.52]))


def test_no_pruning_during_warmup_or_before_enough_peers():
    study = study_of("minimize", {"rnn": [0.1, 0.2, 0.3], "lstm": [0.1, 0.1]})
    pruner = SameCellMedianPruner(startup_trials=3, warmup_checks=2)
    assert not pruner.prune(study, running("rnn", [9.0]))
    assert not pruner.prune(study, running("rnn", [9.0, 9.0]))  # still the first two checks
    assert pruner.prune(study, running("rnn", [9.0, 9.0, 9.0]))
    assert not pruner.prune(study, running("lstm", [9.0, 9.0, 9.0]))  # two LSTMs: too few
    assert not pruner.prune(study, running("gru", [9.0, 9.0, 9.0]))  # no GRU at all
    # Peers that never reached this check (they trained fewer steps) do not count either.
    short = study_of("minimize", {"rnn": [0.1, 0.2]})
    short.add_trial(completed("rnn", 0.3, checks=(10, 20)))
    assert not pruner.prune(short, running("rnn", [9.0, 9.0, 9.0]))
    assert SameCellMedianPruner(warmup_checks=1).prune(short, running("rnn", [9.0, 9.0]))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_diverging_check_is_pruned_at_once(bad):
    study = optuna.create_study(direction="minimize")  # no peers at all, first check
    assert SameCellMedianPruner().prune(study, running("gru", [bad]))
    assert SameCellMedianPruner().prune(optuna.create_study(direction="maximize"),
                                        running("lstm", [0.5, bad]))


def test_a_trial_with_no_check_yet_goes_on():
    study = study_of("minimize", {"rnn": [0.1, 0.2, 0.3]})
    assert not SameCellMedianPruner().prune(study, running("rnn", []))


# -- storage ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["adding-1", "a.b_c", "x", "9", "A" * 64])
def test_study_names_that_are_accepted(name):
    assert check_study_name(name) == name


@pytest.mark.parametrize("name", ["", "my study!", "../x", ".hidden", "-x", "a/b", "A" * 65,
                                  "naïve", None, 12, b"adding"])
def test_study_names_that_are_refused_say_what_a_name_is(name):
    with pytest.raises(SearchError) as raised:
        check_study_name(name)
    message = str(raised.value)
    assert message.startswith("A study name is 1 to 64 letters, digits, “.”, “_” or “-”, "
                              "starting with a letter or digit"), message
    assert repr(name)[:40] in message


@pytest.mark.parametrize("url, words", [
    ("", "The study storage needs a URL"),
    ("   ", "The study storage needs a URL"),
    (None, "The study storage needs a URL"),
    ("nonsense", "“nonsense” is not a storage URL"),
    ("mysql://x/y", "Studies can be kept in SQLite or PostgreSQL, not “mysql”"),
    ("sqlite://", "A SQLite storage needs a file (an in-memory database is gone"),
    ("postgresql:///db", "A PostgreSQL URL names a host and a database"),
    ("postgresql://u:p@h:5432", "A PostgreSQL URL names a host and a database"),
])
def test_storage_urls_that_are_refused(url, words):
    with pytest.raises(SearchError) as raised:
        check_storage_url(url)
    assert words in str(raised.value)
    assert URL_EXAMPLE in str(raised.value)  # and what one looks like
    assert "postgresql://user:password@host:5432/database" in str(raised.value)


@pytest.mark.parametrize("url", ["sqlite:///studies.sqlite3", "sqlite:////tmp/x/studies.db",
                                 "postgresql://u:p@h:5432/d", "postgresql+psycopg://u:p@h/d",
                                 " sqlite:///padded.sqlite3 "])
def test_storage_urls_that_are_accepted(url):
    assert check_storage_url(url) == url.strip()


def test_shown_urls_hide_the_password():
    shown = shown_url("postgresql://gatescope:s3cret-pw@db.example:5432/studies")
    assert "s3cret-pw" not in shown
    assert shown == "postgresql://gatescope:***@db.example:5432/studies"
    assert shown_url("sqlite:///a/b.sqlite3") == "sqlite:///a/b.sqlite3"
    assert shown_url("nonsense") == "(not a URL)"


@pytest.mark.parametrize("scheme", ["postgresql", "postgresql+psycopg"])
def test_an_unreachable_postgresql_server_is_named_without_its_password(scheme):
    # Port 1 on this machine refuses at once: no server, no wait.
    with pytest.raises(SearchError) as raised:
        open_storage(f"{scheme}://gatescope:s3cret-pw@127.0.0.1:1/studies")
    message = str(raised.value)
    assert message.startswith(f"Cannot open the study storage "
                              f"{scheme}://gatescope:***@127.0.0.1:1/studies: "), message
    assert "s3cret-pw" not in message and "\n" not in message


def test_a_sqlite_file_is_made_with_its_folders(tmp_path):
    file = tmp_path / "not" / "yet" / "there" / "studies.sqlite3"
    url = f"sqlite:///{file}"
    storage = open_storage(url)
    assert file.is_file()
    assert open_storage(url) is storage  # one per URL per process
    assert study_names(storage) == {}


def test_the_default_storage_is_a_file_in_the_search_folder(search_dir, monkeypatch):
    assert default_storage_url() == f"sqlite:///{search_dir / 'studies.sqlite3'}"
    monkeypatch.setenv(STORAGE_ENV, "postgresql://u:p@h:5432/d")
    assert default_storage_url() == "postgresql://u:p@h:5432/d"


def test_a_study_records_its_task_metric_and_data_seed(search_dir):
    storage = open_storage()
    study = create_study("adding-1", "adding", storage, data_seed=3)
    assert study.user_attrs == {"gatescope": True, "task": "adding", "metric": "MSE",
                                "data_seed": 3}
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    accuracy = create_study("agreement-1", "agreement", storage)
    assert accuracy.direction == optuna.study.StudyDirection.MAXIMIZE
    assert accuracy.user_attrs["metric"] == "accuracy" and accuracy.user_attrs["data_seed"] == 0
    # made again: the same study, its data seed unchanged (its trials stay comparable)
    again = create_study("adding-1", "adding", storage, data_seed=9)
    assert again._study_id == study._study_id and again.user_attrs["data_seed"] == 3
    assert set(study_names(storage)) == {"adding-1", "agreement-1"}
    assert study_names(storage)["adding-1"] == "adding-1 · Adding problem"


def test_opening_a_study_that_cannot_be_used_says_why(search_dir):
    storage = open_storage()
    create_study("adding-1", "adding", storage)
    optuna.create_study(study_name="someone-elses", storage=storage)

    with pytest.raises(SearchError) as raised:
        open_study("nope", storage)
    assert str(raised.value) == "There is no study named “nope” in this storage."

    with pytest.raises(SearchError) as raised:
        open_study("someone-elses", storage)
    assert str(raised.value) == ("The study “someone-elses” was not made by gatescope (it "
                                 "records no gatescope task): use another study name.")
    assert list(study_names(storage)) == ["adding-1"]  # only ours are listed

    adding, agreement = get_task("adding").title, get_task("agreement").title
    for refused in (lambda: open_study("adding-1", storage, task="agreement"),
                    lambda: create_study("adding-1", "agreement", storage)):
        with pytest.raises(SearchError) as raised:
            refused()
        assert str(raised.value) == (
            f"The study “adding-1” was made for the {adding} task, not {agreement}: its "
            f"trials' scores cannot be compared. Use another study name, or --task adding.")
    assert open_study("adding-1", storage, task="adding").study_name == "adding-1"


# -- worker -----------------------------------------------------------------------------------

def test_a_worker_runs_its_trials_with_the_cells_in_turn(adding_study):
    trials, report = adding_study.trials, adding_study.report
    assert sorted(report.states) == [0, 1, 2, 3] and not report.stopped
    assert set(report.states.values()) <= set(ENDED)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert [t.params[CELL] for t in trials] == ["rnn", "lstm", "gru", "rnn"]
    assert {t.number: t.state.name for t in trials} == report.states
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert complete, "4 short trials with no peers to be pruned against must complete"
    for trial in complete:
        attrs = trial.user_attrs
        assert set(ATTRIBUTES) - {"note"} <= set(attrs), attrs
        assert attrs["metric"] == "MSE"
        assert attrs["baseline_name"] == "always predict 1" and attrs["baseline"] > 0
        assert attrs["param_count"] > 0 and attrs["train_seconds"] > 0
        assert attrs["host"] == socket.gethostname() and attrs["status"] == "finished"
        cell = trial.params[CELL]
        assert attrs["steps"] == trial.params[f"{cell}.steps"] <= 30
        # the last held-out check is the trial's value
        last = max(trial.intermediate_values)
        assert last == attrs["steps"] and trial.intermediate_values[last] == trial.value
        assert set(trial.intermediate_values) <= {10, 20, 30, attrs["steps"]}
        weights, meta = trial_paths(adding_study.folder / "weights", "adding-4", trial.number)
        assert attrs["weights"] == str(weights.resolve())
        assert weights.stat().st_size > 0
        saved = json.loads(meta.read_text())
        assert saved["cell"] == cell and saved["task"] == "adding"
        assert saved["config"]["hidden_size"] == trial.params[f"{cell}.hidden_size"]
    # one line per trial, in the order they ran
    assert [line.split(" · ")[0] for line in adding_study.lines] == [
        f"trial {n}" for n in range(4)]
    assert "held-out MSE" in adding_study.lines[0]


def test_every_trial_of_a_study_trains_on_its_data_seed(adding_study):
    # The study was made with data seed 7; the worker's sampler seed (0) is another thing.
    trials = adding_study.trials
    assert [t.user_attrs["seed"] for t in trials] == [7, 7, 7, 7]
    for trial in trials:
        if trial.state == TrialState.COMPLETE:
            meta = Path(trial.user_attrs["weights"]).with_suffix(".json")
            assert json.loads(meta.read_text())["config"]["seed"] == 7
    # scored on the same held-out set: the same baseline for every trial
    assert len({t.user_attrs["baseline"] for t in trials}) == 1


def test_small_and_large_models_of_a_study_are_scored_on_the_same_heldout_set(search_dir):
    study = create_study("sizes", "adding", open_storage())
    common = {CELL: "gru", "gru.num_layers": 1, "gru.learning_rate": 1e-3,
              "gru.optimizer": "adam", "gru.clip_norm": 1.0, "gru.init": "default",
              "gru.update_bias": 0.0, "gru.steps": 1}  # one step: only the held-out set counts
    study.enqueue_trial({**common, "gru.hidden_size": 8})
    study.enqueue_trial({**common, "gru.hidden_size": 128, "gru.num_layers": 2})
    run_worker("adding", "sizes", 2, max_steps=1, cells=("gru",))
    trials = optuna.load_study(study_name="sizes", storage=open_storage()).get_trials()
    assert [t.params["gru.hidden_size"] for t in trials] == [8, 128]
    assert trials[0].user_attrs["baseline"] == trials[1].user_attrs["baseline"]


def test_a_trial_far_behind_its_cell_is_pruned_in_a_real_study(search_dir):
    study = create_study("pruned", "adding", open_storage())
    good = {CELL: "rnn", "rnn.hidden_size": 8, "rnn.num_layers": 1,
            "rnn.learning_rate": 1e-2, "rnn.optimizer": "adam", "rnn.clip_norm": 1.0,
            "rnn.init": "default", "rnn.steps": 30}
    for _ in range(3):
        study.enqueue_trial(good)
    study.enqueue_trial({**good, "rnn.learning_rate": 1e-4, "rnn.optimizer": "sgd"})
    lines: list[str] = []
    report = run_worker("adding", "pruned", 4, max_steps=30, cells=("rnn",),
                        on_trial=lines.append)
    assert report.states == {0: "COMPLETE", 1: "COMPLETE", 2: "COMPLETE", 3: "PRUNED"}
    pruned = optuna.load_study(study_name="pruned", storage=open_storage()).trials[3]
    assert "weights" not in pruned.user_attrs  # only complete trials keep their model
    assert lines[3] == "trial 3 · RNN · pruned at step 30"


def test_stop_ends_the_trial_in_progress_and_starts_no_other(search_dir):
    calls = []

    def should_stop() -> bool:  # False before the first trial, True once it trains
        calls.append(True)
        return len(calls) > 1

    report = run_worker("adding", "stopped", 3, max_steps=30, should_stop=should_stop)
    assert report.stopped and report.states == {0: "FAIL"}
    trials = optuna.load_study(study_name="stopped", storage=open_storage()).get_trials()
    assert len(trials) == 1
    assert trials[0].state == TrialState.FAIL and trials[0].user_attrs["status"] == "stopped"
    assert "weights" not in trials[0].user_attrs
    results = StudyResults.load("stopped", open_storage())
    assert results.trials[0].state_words == "stopped"


def test_a_worker_cannot_join_a_study_of_another_task(search_dir):
    create_study("agreement-1", "agreement", open_storage())
    with pytest.raises(SearchError, match="made for the Subject-verb agreement task, not "
                                          "Adding problem"):
        run_worker("adding", "agreement-1", 1, max_steps=20)
    assert optuna.load_study(study_name="agreement-1", storage=open_storage()).trials == []


@pytest.mark.parametrize("steps", [LIMITS.max_training_steps + 1, -5])
def test_steps_per_trial_over_the_limit_are_refused(search_dir, steps):
    with pytest.raises(LimitError) as raised:
        run_worker("adding", "too-long", 1, max_steps=steps)
    assert raised.value.limit == "max_training_steps"
    assert str(raised.value) == (f"Steps per trial must be from 1 to "
                                 f"{LIMITS.max_training_steps:,}; got {steps:,}.")


def test_zero_steps_per_trial_are_refused(search_dir):
    # should_stop keeps the worker from training if the check lets 0 through
    with pytest.raises(LimitError):
        run_worker("adding", "zero-steps", 1, max_steps=0, should_stop=lambda: True)


@pytest.mark.parametrize("trials", [0, -1, 2.5, "3"])
def test_a_worker_runs_at_least_one_trial(search_dir, trials):
    with pytest.raises(SearchError, match="A worker runs at least one trial"):
        run_worker("adding", "none", trials, max_steps=20)


# -- results ----------------------------------------------------------------------------------

def test_best_per_cell_is_the_best_complete_trial_of_each_cell(adding_study):
    results = StudyResults.load("adding-4", adding_study.storage)
    assert results.task == "adding" and results.direction == "minimize"
    expected = {}
    for trial in adding_study.trials:
        if trial.state == TrialState.COMPLETE:
            cell = trial.params[CELL]
            if cell not in expected or trial.value < expected[cell].value:
                expected[cell] = trial
    best = results.best_per_cell()
    assert {cell: row.number for cell, row in best.items()} == {
        cell: trial.number for cell, trial in expected.items()}
    assert list(best) == [c for c in CELLS if c in expected]  # the app's order
    for row in best.values():
        assert row.params == {name.split(".", 1)[1]: value
                              for name, value in expected[row.cell].params.items()
                              if name != CELL}


def test_best_per_cell_when_higher_is_better(search_dir):
    storage = open_storage()
    study = create_study("agreement-hand", "agreement", storage)
    for cell, value in [("lstm", 0.9), ("lstm", 0.95), ("gru", 0.8), ("rnn", 0.6),
                        ("rnn", 0.7)]:
        study.add_trial(create_trial(params={CELL: cell}, distributions=cell_distribution(),
                                     value=value))
    study.add_trial(create_trial(params={CELL: "rnn"}, distributions=cell_distribution(),
                                 intermediate_values={10: 0.99}, state=TrialState.PRUNED))
    study.add_trial(create_trial(params={CELL: "gru"}, distributions=cell_distribution(),
                                 state=TrialState.FAIL))
    results = StudyResults.load("agreement-hand", storage)
    best = results.best_per_cell()
    assert {cell: row.value for cell, row in best.items()} == {"rnn": 0.7, "lstm": 0.95,
                                                               "gru": 0.8}
    assert results.summary_line() == (
        "agreement-hand (Subject-verb agreement): 7 trials, 5 complete, 1 pruned, 1 failed, "
        "0 running; best held-out accuracy: RNN 0.7, LSTM 0.95, GRU 0.8")


def test_a_saved_trial_gives_back_the_model_that_scored_its_value(adding_study):
    results = StudyResults.load("adding-4", adding_study.storage)
    task = get_task("adding")
    for row in results.best_per_cell().values():
        result = results.trained(row)
        assert result.cell == row.cell and result.task == "adding"
        assert result.config.hidden_size == row.params["hidden_size"]
        assert result.steps == row.attrs["steps"]
        assert sum(p.numel() for p in result.model.parameters()) == row.attrs["param_count"]
        with torch.no_grad():
            score = task.score_on(result.model.eval(), heldout_set(task, result.config))
        assert score.value == pytest.approx(row.value, rel=1e-5, abs=1e-7)
        assert score.baseline == pytest.approx(row.attrs["baseline"], rel=1e-6)


def test_weights_this_server_cannot_read_are_named_with_their_host(adding_study, tmp_path):
    results = StudyResults.load("adding-4", adding_study.storage)
    row = next(iter(results.best_per_cell().values()))
    gone = tmp_path / "elsewhere" / "trial-00000.safetensors"
    elsewhere = dataclasses.replace(row, attrs={**row.attrs, "weights": str(gone),
                                                "host": "gpu-box-7"})
    with pytest.raises(SearchError) as raised:
        results.trained(elsewhere)
    message = str(raised.value)
    assert f"were saved at {gone} on the machine “gpu-box-7”" in message
    assert "trial-00000.json" in message and "--directory" in message

    no_weights = dataclasses.replace(row, attrs={k: v for k, v in row.attrs.items()
                                                 if k != "weights"})
    with pytest.raises(SearchError, match="saved no weights"):
        results.trained(no_weights)

    # files that are there but not a model
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a safetensors file")
    broken.with_suffix(".json").write_text("{}")
    with pytest.raises(SearchError, match="cannot be read"):
        results.trained(dataclasses.replace(row, attrs={**row.attrs,
                                                        "weights": str(broken)}))


def test_the_summary_line_counts_the_trials(adding_study):
    results = StudyResults.load("adding-4", adding_study.storage)
    complete, pruned = results.count("COMPLETE"), results.count("PRUNED")
    line = results.summary_line()
    assert line.startswith(f"adding-4 (Adding problem): 4 trials, {complete} complete, "
                           f"{pruned} pruned, 0 failed, 0 running; best held-out MSE: ")
    for cell, row in results.best_per_cell().items():
        assert f"{CELLS[cell].display_name} {row.value:.4g}" in line


# -- searches the server runs -----------------------------------------------------------------

def test_a_search_plan_is_checked_against_the_limits():
    with pytest.raises(LimitError) as raised:
        SearchPlan("adding", "s", trials=LIMITS.max_search_trials + 1, workers=1, max_steps=20)
    assert raised.value.limit == "max_search_trials"
    with pytest.raises(LimitError) as raised:
        SearchPlan("adding", "s", trials=4, workers=LIMITS.max_search_workers + 1, max_steps=20)
    assert raised.value.limit == "max_search_workers"
    with pytest.raises(LimitError) as raised:
        SearchPlan("adding", "s", trials=4, workers=1, max_steps=LIMITS.max_training_steps + 1)
    assert raised.value.limit == "max_training_steps"
    with pytest.raises(SearchError, match="A study name is"):
        SearchPlan("adding", "my study!", trials=4, workers=1, max_steps=20)
    for cells in [("lstm", "tanh"), ()]:
        with pytest.raises(SearchError) as raised:
            SearchPlan("adding", "s", trials=4, workers=1, max_steps=20, cells=cells)
        assert str(raised.value) == "Choose the cells to search among rnn, lstm, gru."


@pytest.mark.parametrize("trials, workers, shares", [
    (7, 2, [4, 3]), (1, 2, [1]), (4, 2, [2, 2]), (60, 1, [60]), (3, 2, [2, 1])])
def test_trials_are_shared_evenly_among_the_workers(trials, workers, shares):
    plan = SearchPlan("adding", "s", trials=trials, workers=workers, max_steps=20)
    assert plan.shares() == shares


def study_trials(name: str) -> list:
    return optuna.load_study(study_name=name, storage=open_storage()).get_trials()


def test_a_local_search_runs_every_trial_once_in_its_slots(search_dir):
    slots = TrainingSlots(2)
    search = LocalSearch(SearchPlan("adding", "local-4", trials=4, workers=2, max_steps=20),
                         slots=slots)
    search.start()
    try:
        assert search.wait(timeout=180)
    finally:
        if search.running:  # only a test that failed above stops it
            search.stop()
    assert search.status == "finished" and search.errors == []
    assert slots.busy == 0  # both slots given back
    trials = study_trials("local-4")
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state.name in ENDED for t in trials), [t.state for t in trials]
    assert [t.params[CELL] for t in sorted(trials, key=lambda t: t.number)] == [
        "rnn", "lstm", "gru", "rnn"]
    trial_lines = sorted(line.split(" · ")[0] for line in search.lines
                         if line.startswith("trial "))
    assert trial_lines == [f"trial {n}" for n in range(4)], list(search.lines)
    # each worker's summary line
    assert sum(line.startswith("local-4: ") for line in search.lines) == 2
    for trial in trials:
        if trial.state == TrialState.COMPLETE:
            assert Path(trial.user_attrs["weights"]).is_relative_to(search_dir / "weights")


def test_a_worker_waits_for_a_slot_and_stop_ends_a_running_search(search_dir):
    slots = TrainingSlots(1)
    # long enough that only Stop ends it: 30 trials per worker of up to 3,000 steps
    search = LocalSearch(SearchPlan("adding", "local-stop", trials=60, workers=2,
                                    max_steps=3000), slots=slots)
    search.start()
    try:
        assert wait_until(lambda: search.waiting_workers == 1, timeout=30)
        assert search.status == (f"1 of 2 worker(s) running, 1 waiting for a free training "
                                 f"slot (at most {LIMITS.max_concurrent_training_runs} runs "
                                 f"train at once here)")
        assert wait_until(lambda: any(t.state == TrialState.RUNNING
                                      for t in study_trials("local-stop")), timeout=120)
        search.stop()
        assert search.wait(timeout=60)
    finally:
        search.stop()
        search.wait(timeout=60)
    assert search.status == "stopped" and slots.busy == 0
    trials = study_trials("local-stop")
    assert 1 <= len(trials) < 30
    assert not any(t.state == TrialState.RUNNING for t in trials)
    for trial in trials:
        if trial.state == TrialState.FAIL:
            assert trial.user_attrs.get("status") == "stopped", trial.user_attrs


def test_a_server_runs_a_limited_number_of_searches_one_per_study(search_dir):
    slots = TrainingSlots(1)
    assert slots.acquire(should_give_up=lambda: False)  # held here: no worker process starts
    registry = SearchRegistry(limit=1)

    def search(name: str) -> LocalSearch:
        return LocalSearch(SearchPlan("adding", name, trials=2, workers=1, max_steps=20),
                           slots=slots)

    first = registry.start(search("first"))
    try:
        assert first.running and registry.running() == [first]
        assert wait_until(lambda: first.waiting_workers == 1, timeout=30)
        assert first.status.startswith("0 of 1 worker(s) running, 1 waiting")
        with pytest.raises(LimitError) as raised:
            registry.start(search("second"))
        assert raised.value.limit == "max_concurrent_searches"
        assert str(raised.value) == (
            "1 search is running on this server (at most 1 at once): watch one below, or "
            "start yours when one has finished.")
        assert "second" not in study_names(open_storage())  # refused before it made anything
        with pytest.raises(SearchError) as raised:
            registry.start(search("first"))
        assert "“first” is being searched on this server already" in str(raised.value)
        assert registry.of("first") is first
    finally:
        first.stop()
        assert first.wait(timeout=30)
    # a waiting worker that is stopped never starts
    assert first.status == "stopped" and study_trials("first") == []
    assert slots.busy == 1  # only the test's own slot
    # once it has ended, the next search may start
    second = registry.start(search("second"))
    second.stop()
    assert second.wait(timeout=30)
    slots.release()


# -- the command ------------------------------------------------------------------------------

def help_text(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 0
    return capsys.readouterr().out


def test_help_explains_storage_and_the_worker_flags(capsys):
    general = help_text(["--help"], capsys)
    for words in ("worker", "studies", "SQLite file", "GATESCOPE_SEARCH_DIR",
                  "GATESCOPE_SEARCH_STORAGE", "postgresql://user:password@host:5432/database",
                  "the cells take turns"):
        assert words in general, words
    worker = help_text(["worker", "--help"], capsys)
    for flag in ("--task", "--study", "--trials", "--storage", "--max-steps", "--directory",
                 "--cells", "--seed", "sqlite:///file", "SIGTERM"):
        assert flag in worker, flag


def test_the_command_runs_and_bad_input_is_one_error_line():
    # the real command, as a user types it (the other command tests call main() in-process)
    bad = subprocess.run([sys.executable, "-m", "core.search", "worker", "--task", "adding",
                          "--study", "my study!", "--trials", "1"], check=False, cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.splitlines() == [bad.stderr.strip()]
    assert bad.stderr.startswith("error: A study name is 1 to 64 letters")


@pytest.fixture
def signal_handlers_kept():
    """main() sets SIGTERM and SIGINT handlers for its worker: the test process keeps its own."""
    kept = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in kept.items():
        signal.signal(sig, handler)


@pytest.mark.parametrize("args, words", [
    (["--storage", "mysql://x/y"], "Studies can be kept in SQLite or PostgreSQL, not “mysql”"),
    (["--max-steps", "20000"], "Steps per trial must be from 1 to 10,000; got 20,000."),
    (["--trials", "0"], "A worker runs at least one trial; got 0."),
    (["--cells", "lstm,tanh"], "unknown cell 'tanh'; choose one of rnn, lstm, gru"),
])
def test_bad_worker_options_exit_2_with_one_error_line(search_dir, signal_handlers_kept,
                                                       capsys, args, words):
    base = {"--task": "adding", "--study": "cli-1", "--trials": "1", "--max-steps": "20"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    argv = ["worker"] + [item for pair in base.items() for item in pair]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines


def test_an_unknown_task_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as raised:
        main(["worker", "--task", "chess", "--study", "x", "--trials", "1"])
    assert raised.value.code == 2
    assert "argument --task: invalid choice: 'chess'" in capsys.readouterr().err


def test_studies_lists_each_study_in_a_line(adding_study, capsys):
    create_study("empty-one", "agreement", adding_study.storage)
    assert main(["studies", "--storage", adding_study.url]) == 0
    lines = capsys.readouterr().out.splitlines()
    # studies with trials first (newest first), then those that have none yet
    assert len(lines) == 2
    assert lines[0].startswith("adding-4 (Adding problem): 4 trials, ")
    assert lines[1] == ("empty-one (Subject-verb agreement): 0 trials, 0 complete, 0 pruned, "
                        "0 failed, 0 running")


def test_a_failed_workers_message_is_its_error_line_else_its_last_line():
    from core.search.local import _worker_error

    said = "Traceback ...\nerror: Cannot open the study storage sqlite:///x: disk I/O error\n"
    assert _worker_error(0, 2, said) == "Cannot open the study storage sqlite:///x: disk I/O error"
    assert _worker_error(1, -9, "warning: slow\nKilled\n") == "worker 2 ended with code -9: Killed"
    assert _worker_error(0, 1, "") == "worker 1 ended with code 1: no message"


def test_a_search_whose_tab_is_gone_is_stopped_and_frees_its_slot(search_dir):
    from core.sharing import OwnerWatch

    slots = TrainingSlots(1)
    assert slots.acquire(should_give_up=lambda: False)  # held: its worker waits, starts nothing
    watch = OwnerWatch(grace_seconds=5, poll_seconds=None)  # polled by hand below
    tab_open = True
    search = LocalSearch(SearchPlan("adding", "gone", trials=2, workers=1, max_steps=20),
                         slots=slots, owner_alive=lambda: tab_open, owner_watch=watch)
    search.start()
    try:
        assert wait_until(lambda: search.waiting_workers == 1, timeout=30)
        watch.poll(now=0.0)
        tab_open = False
        watch.poll(now=1.0)  # gone, but within the grace: a reload may come back
        assert search.running and not search.stopped
        watch.poll(now=7.0)
        assert search.wait(timeout=30)
    finally:
        search.stop()
        slots.release()
    assert search.abandoned and search.status == "stopped: its browser tab was closed"
    assert study_trials("gone") == []  # its worker never started a trial
