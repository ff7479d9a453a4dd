"""The Search page under streamlit.testing.v1.AppTest: a finished study shown with its progress,
verdict, table of each cell's best trial and every view; a link naming a study; a search started
on the page and watched to its end; the server's limit on searches; a storage that cannot be used;
the best trials sent to Explore and Compare, and one whose weights are gone.

Every test keeps its studies in a folder of its own (GATESCOPE_SEARCH_DIR): core.search.storage
keeps one storage per URL for the life of the process, so a fresh folder is a fresh storage, and
nothing is written into the repository's artifacts/search.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
import torch

import pagetest
from pagetest import ROOT, assert_clean, click, shown

from core.search.local import SEARCHES
from core.search.results import StudyResults
from core.search.storage import DIRECTORY_ENV, STORAGE_ENV, create_study, open_storage
from core.search.worker import run_worker
from core.training.loop import TrainResult
from tests.polling import wait_until
from ui.search import OWN_SEARCH
from ui.state import OPEN_IN_COMPARE, OPEN_IN_EXPLORE, TRAINED

PAGE = ROOT / "app_pages" / "search.py"
STUDY = "s1"
EMPTY_STUDY = "just-made"  # made, no trial yet: workers elsewhere have not started
VIEWS = ("best", "history", "importance", "parallel", "slice", "trials")
CELL_NAMES = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
NO_STUDY = "No study yet"
TOO_FEW = "Not enough complete trials of this cell"


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory) -> Path:
    """The folder of a storage holding study "s1": one worker's 4 trials of the adding problem
    (20 steps at most: RNN, LSTM, GRU, RNN, all complete), and a study with no trials."""
    folder = tmp_path_factory.mktemp("search-page")
    threads = torch.get_num_threads()  # run_worker sets one thread for its process
    with pytest.MonkeyPatch.context() as env:
        env.setenv(DIRECTORY_ENV, str(folder))
        env.delenv(STORAGE_ENV, raising=False)
        report = run_worker("adding", STUDY, 4, max_steps=20)
        create_study(EMPTY_STUDY, "adding", open_storage())
    torch.set_num_threads(threads)
    assert report.count("COMPLETE") == 4, report.states
    return folder


@pytest.fixture
def empty_storage(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(DIRECTORY_ENV, str(tmp_path))
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    return tmp_path


@pytest.fixture
def with_study(finished_study, monkeypatch) -> StudyResults:
    monkeypatch.setenv(DIRECTORY_ENV, str(finished_study))
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    return StudyResults.load(STUDY, open_storage())


@pytest.fixture
def searches_end():
    """Every search a test starts has ended before the next test (they share the process's
    SEARCHES and training slots)."""
    yield
    for search in SEARCHES.running():
        search.stop()
        assert search.wait(timeout=30)


def open_page(**query):
    return pagetest.open_page(PAGE, **query)


def progress_text(at) -> str:
    (bar,) = at.get("progress")
    return bar.proto.text


def page_text(at) -> str:
    return "\n".join(shown(m.value) for m in at.markdown)


def chart_titles(at) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


def explore_label(trial) -> str:
    return f"{CELL_NAMES[trial.cell]} (trial {trial.number}) in Explore"


def show_view(at, view: str):
    at.segmented_control(key="search_view").set_value(view).run()
    assert_clean(at)
    return at


def test_with_no_study_the_page_says_how_to_make_one(empty_storage):
    at = open_page()
    assert any(NO_STUDY in i.value for i in at.info)
    assert not any(s.label == "Study" for s in at.selectbox)
    assert not at.get("progress") and not at.error
    assert not button(at, "Start search").disabled and button(at, "Stop").disabled
    assert not (empty_storage / "weights").exists()  # opening the page starts nothing


def test_a_finished_study_shows_each_cells_best_trial(with_study):
    at = open_page(study=STUDY)
    assert at.selectbox(key="search_study").value == STUDY
    assert progress_text(at).startswith("4 trials ended · 4 complete, 0 pruned, 0 failed, "
                                        "0 running")
    best = with_study.best_per_cell()
    assert sorted(best) == ["gru", "lstm", "rnn"]
    ranked = sorted(best.values(), key=lambda t: t.value)  # MSE: lower is better
    order = ", then ".join(f"{CELL_NAMES[t.cell]} ({t.value:.4g})" for t in ranked)
    text = page_text(at)
    assert f"Best held-out MSE at equal budget: {order}." in text
    assert f"The trivial baseline scores {ranked[0].attrs['baseline']:.4g} on the same" in text

    (table,) = at.get("table")
    columns = table.value  # a column per cell, a row per measure
    assert list(columns.columns) == ["RNN", "LSTM", "GRU"]
    for cell, trial in best.items():
        column = columns[CELL_NAMES[cell]]
        assert int(column["best trial"]) == trial.number
        assert column["held-out MSE"] == f"{trial.value:.4g}"
        assert column["parameters"] == f"{trial.attrs['param_count']:,}"
    assert columns.loc["trials complete / pruned / failed", "RNN"] == "2 / 0 / 0"
    assert columns.loc["trials complete / pruned / failed", "LSTM"] == "1 / 0 / 0"

    labels = [b.label for b in at.button]
    assert [explore_label(t) for t in best.values()] + ["All best in Compare"] == [
        label for label in labels if "Explore" in label or "Compare" in label]
    assert at.segmented_control(key="search_view").value == "best"
    assert chart_titles(at) == ["Best of each cell so far"]


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_of_a_finished_study_draws(with_study, view):
    at = show_view(open_page(study=STUDY), view)
    if view == "trials":
        (table,) = at.dataframe
        assert len(table.value) == 4
        assert list(table.value["trial"]) == [3, 2, 1, 0]  # newest first
        assert set(table.value["state"]) == {"complete"}
        return
    if view in ("importance", "parallel", "slice"):
        cells = at.radio(key="search_cell")
        assert cells.options == ["RNN", "LSTM", "GRU"]
        for cell in ("rnn", "lstm", "gru"):
            cells = at.radio(key="search_cell")
            cells.set_value(cell).run()
            assert_clean(at)
            complete = sum(t.state == "COMPLETE" for t in with_study.trials_of(cell))
            drawn = {"importance": complete >= 4, "parallel": complete >= 2,
                     "slice": complete >= 1}[view]
            too_few = any(TOO_FEW in i.value for i in at.info)
            assert too_few == (not drawn), (view, cell, complete)
            assert len(at.get("plotly_chart")) == (1 if drawn else 0)
        return
    (title,) = chart_titles(at)
    assert {"best": "Best of each cell so far",
            "history": "Optimisation history (all cells)"}[view] in title


def test_a_cells_parallel_coordinates_draw_that_cells_trials_only(with_study):
    """Every parameter is a cell's own: an LSTM trial has no "rnn.hidden_size", and a line for
    it on the RNN's axes (at "None") would stretch the score axis with another cell's scores."""
    at = show_view(open_page(study=STUDY), "parallel")
    assert at.radio(key="search_cell").value == "rnn"
    (chart,) = at.get("plotly_chart")
    spec = json.loads(chart.proto.spec)
    assert "Parallel coordinates, RNN" in spec["layout"]["title"]["text"]
    lines = [trace for trace in spec["data"] if trace.get("mode") == "lines"]
    shown_values = sorted(float(trace["customdata"][0][1]) for trace in lines)
    rnn_values = sorted(t.value for t in with_study.trials_of("rnn") if t.state == "COMPLETE")
    assert shown_values == pytest.approx(rnn_values, rel=5e-3)  # drawn to 3 digits
    assert not [t for t in lines if any(value == "None" for _, value in t["customdata"])]


def test_importances_wait_for_four_complete_trials_of_a_cell(with_study):
    at = show_view(open_page(study=STUDY), "importance")
    assert at.radio(key="search_cell").value == "rnn"  # 2 complete trials
    (info,) = [i.value for i in at.info if TOO_FEW in i.value]
    assert "importances need 4" in info
    assert not at.get("plotly_chart")


def test_a_study_with_no_trial_yet_shows_so_in_every_view(with_study):
    at = open_page(study=EMPTY_STUDY)
    assert at.selectbox(key="search_study").value == EMPTY_STUDY
    assert progress_text(at).startswith("0 trials ended")
    assert "No trial has completed yet." in page_text(at)
    assert not any("Explore" in b.label or "Compare" in b.label for b in at.button)
    for view in VIEWS:
        show_view(at, view)
        if view in ("importance", "parallel", "slice"):
            assert any(TOO_FEW in i.value for i in at.info)


def test_a_link_to_a_missing_study_shows_the_newest(with_study):
    at = open_page(study="nope")
    assert any("There is no study named “nope”" in w.value for w in at.warning)
    assert at.selectbox(key="search_study").value == STUDY  # newest: the one with trials
    assert progress_text(at).startswith("4 trials ended")
    assert at.query_params["study"] == STUDY


def test_a_bad_study_name_in_the_link_is_dropped(with_study):
    at = open_page(study="bad name!")
    assert not at.warning and not at.error
    assert at.selectbox(key="search_study").value == STUDY
    assert progress_text(at).startswith("4 trials ended")


def run_until(at, condition, timeout: float = 120):
    """Rerun the page once a second (as its fragment polls) until `condition(at)`."""
    def done():
        at.run()
        assert_clean(at)
        if condition(at):
            return True
        time.sleep(1)
        return False
    assert wait_until(done, timeout=timeout), progress_text(at)
    return at


def test_start_search_runs_the_study_to_its_end(empty_storage, searches_end):
    at = open_page(trials="3", steps="20", workers="1")
    assert any(NO_STUDY in i.value for i in at.info)
    click(at, "Start search")
    assert not at.error, [e.value for e in at.error]
    search = at.session_state[OWN_SEARCH]
    name = search.plan.study
    assert (search.plan.trials, search.plan.max_steps, search.plan.workers) == (3, 20, 1)
    assert name.startswith("adding-")
    assert at.selectbox(key="search_study").value == name
    assert at.query_params["study"] == name
    assert button(at, "Start search").disabled and not button(at, "Stop").disabled
    assert " of 3 trials ended" in progress_text(at)

    # the buttons follow the run's end on the page's next draw (the progress line can show
    # "finished" one draw before them: seen once in a full run)
    run_until(at, lambda at: progress_text(at).startswith("3 of 3 trials ended")
              and progress_text(at).endswith("· finished") and button(at, "Stop").disabled)
    assert "3 complete, 0 pruned, 0 failed, 0 running" in progress_text(at)
    assert not search.errors
    assert button(at, "Stop").disabled and not button(at, "Start search").disabled
    (table,) = at.get("table")
    assert list(table.value.columns) == ["RNN", "LSTM", "GRU"]
    assert "Best held-out MSE at equal budget: " in page_text(at)
    assert len(list((empty_storage / "weights" / name).glob("*.safetensors"))) == 3


def test_a_second_visitor_is_refused_while_the_server_runs_its_searches(
        empty_storage, monkeypatch, searches_end):
    monkeypatch.setattr(SEARCHES, "limit", 1)
    first = click(open_page(trials="12", steps="1000", workers="1"), "Start search")
    search = first.session_state[OWN_SEARCH]
    assert search.running
    second = click(open_page(), "Start search")
    (error,) = [shown(e.value) for e in second.error]
    assert error.startswith("Cannot start the search: 1 search")
    assert "running on this server (at most 1 at once)" in error
    assert OWN_SEARCH not in second.session_state
    assert second.selectbox(key="search_study").value == search.plan.study  # watch it instead
    assert not button(second, "Start search").disabled

    click(first, "Stop")
    assert search.wait(timeout=30)
    first.run()
    assert_clean(first)
    assert progress_text(first).endswith("· stopped")
    assert button(first, "Stop").disabled and not button(first, "Start search").disabled


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("url, said", [
    ("mysql://x/y", "Studies can be kept in SQLite or PostgreSQL, not “mysql”"),
    ("postgresql://gatescope:secret@127.0.0.1:{port}/studies",  # as the README spells it
     "Cannot open the study storage postgresql://gatescope:***@127.0.0.1:{port}/studies: "),
])
def test_a_storage_that_cannot_be_used_is_said_not_thrown(empty_storage, monkeypatch, url, said):
    port = free_port()  # closed: nothing listens there
    monkeypatch.setenv(STORAGE_ENV, url.format(port=port))
    at = open_page()
    (error,) = [shown(e.value) for e in at.error]
    assert error.startswith("The search's storage cannot be used: " + said.format(port=port))
    assert "secret" not in error
    assert not any(b.label == "Start search" for b in at.button)


def test_a_best_trial_opens_in_explore_with_its_saved_model(with_study):
    lstm = with_study.best_per_cell()["lstm"]
    at = click(open_page(study=STUDY), explore_label(lstm))
    label = f"{STUDY} · trial {lstm.number} · LSTM"
    result = at.session_state[TRAINED][label]
    assert isinstance(result, TrainResult)
    assert (result.task, result.cell, result.steps) == ("adding", "lstm", lstm.attrs["steps"])
    assert result.score.value == pytest.approx(lstm.value, rel=1e-5)
    assert at.session_state[OPEN_IN_EXPLORE] == label
    assert any("The Explore page is not available here" in i.value for i in at.info)


def test_all_best_trials_open_in_compare(with_study):
    best = with_study.best_per_cell()
    at = click(open_page(study=STUDY), "All best in Compare")
    labels = at.session_state[OPEN_IN_COMPARE]
    assert labels == [f"{STUDY} · trial {t.number} · {CELL_NAMES[c]}" for c, t in best.items()]
    assert sorted(at.session_state[TRAINED][label].cell for label in labels) == [
        "gru", "lstm", "rnn"]
    assert any("The Compare page is not available here" in i.value for i in at.info)


def test_a_trial_whose_weights_are_gone_says_where_they_were(with_study):
    best = with_study.best_per_cell()
    rnn, lstm = best["rnn"], best["lstm"]
    at = click(open_page(study=STUDY), explore_label(rnn))
    kept = f"{STUDY} · trial {rnn.number} · RNN"
    weights = Path(lstm.attrs["weights"])
    aside = weights.with_name(weights.name + ".aside")
    weights.rename(aside)  # as if deleted; put back for the tests after this one
    try:
        click(at, explore_label(lstm))
    finally:
        aside.rename(weights)
    (error,) = [shown(e.value) for e in at.error]
    assert f"The weights of trial {lstm.number} · LSTM were saved at {weights}" in error
    assert list(at.session_state[TRAINED]) == [kept]  # the model opened before is still there
    assert at.session_state[OPEN_IN_EXPLORE] == kept
    assert progress_text(at).startswith("4 trials ended")
    assert len(at.get("table")) == 1 and explore_label(rnn) in [b.label for b in at.button]


def test_the_page_keeps_polling_while_trials_are_still_coming():
    from datetime import datetime, timedelta
    from types import SimpleNamespace

    from core.search.results import TrialRow
    from core.views.search import RECENT_SECONDS, trials_still_coming

    now = datetime(2026, 12, 6, 14, 0, 0)  # Optuna's clock: naive local time

    def study(*ended_ago: float, running: int = 0) -> StudyResults:
        trials = [TrialRow(n, "COMPLETE", "lstm", 0.1, {}, {}, now - timedelta(seconds=ago))
                  for n, ago in enumerate(ended_ago)]
        trials += [TrialRow(len(trials) + n, "RUNNING", "gru", None, {}, {}, None)
                   for n in range(running)]
        return StudyResults("s", "adding", "minimize", study=None, trials=trials)

    elsewhere = None  # a study run by workers on other machines
    assert trials_still_coming(study(5, running=1), elsewhere, now)
    assert trials_still_coming(study(100, RECENT_SECONDS - 1), elsewhere, now)
    assert not trials_still_coming(study(100, RECENT_SECONDS + 1), elsewhere, now)
    assert not trials_still_coming(study(), elsewhere, now)
    # this server's own search: polled while it runs, not a moment longer
    running, ended = SimpleNamespace(running=True), SimpleNamespace(running=False)
    assert trials_still_coming(study(), running, now)
    assert not trials_still_coming(study(1), ended, now)
    assert trials_still_coming(study(1, running=1), ended, now)  # its last trial still ends
