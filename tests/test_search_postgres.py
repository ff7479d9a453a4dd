"""Search workers sharing a study through a real PostgreSQL server (tests/postgres.py starts
it), as workers on many machines would: each worker is its own `python -m core.search worker`
process, given the server's URL with --storage.

- workers started together on a new database all open it (the first to connect makes the
  tables);
- two workers at once share one study: every trial number once, the cells in turn, every
  complete trial's model saved and opened again;
- a worker killed mid-trial loses that trial only: it is marked failed once its heartbeat is
  three beats old, and the next worker goes on with the study;
- bad input to the command is one line starting "error:", exit code 2, no traceback.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from polling import wait_until
from postgres import create_database, free_port, postgres_url  # noqa: F401  (the fixture)
from core.search.results import StudyResults
from core.search.space import CELL, space_for
from core.search.storage import (
    DIRECTORY_ENV, HEARTBEAT_ENV, STORAGE_ENV, SearchError, create_study, open_storage, open_study,
)

ROOT = Path(__file__).resolve().parents[1]
CELLS_IN_TURN = ("rnn", "lstm", "gru")  # the worker's default --cells
ENDED = ("COMPLETE", "PRUNED")
TRIAL_LINE = re.compile(r"^trial (\d+) · ", re.MULTILINE)
#: A killed worker's trial: long enough (up to this many steps) to be caught mid-trial.
LONG_STEPS = 1000


@pytest.fixture(scope="module", autouse=True)
def one_second_heartbeat():
    """Workers and this process (whose storage, opened once per URL, does the reading) beat
    every second, so a killed worker's trial is stale after 3 s; a live one never is."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(HEARTBEAT_ENV, "1")
        patch.delenv(STORAGE_ENV, raising=False)
        yield


def start_worker(url: str, study: str, folder: Path, *, trials: int, seed: int,
                 max_steps: int = 30, task: str = "adding") -> subprocess.Popen:
    """`python -m core.search worker` in its own process; its output goes to files in
    `folder` (read by `finish`), its weights to `folder`/weights."""
    log = folder / f"worker-{study}-{seed}"
    command = [sys.executable, "-m", "core.search", "worker", "--task", task, "--study", study,
               "--trials", str(trials), "--max-steps", str(max_steps), "--storage", url,
               "--directory", str(folder / "weights"), "--seed", str(seed)]
    with open(f"{log}.out", "w") as out, open(f"{log}.err", "w") as err:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err,
                                   env={**os.environ, DIRECTORY_ENV: str(folder)})
    process.log = log
    return process


def finish(process: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    code = process.wait(timeout=timeout)
    return (code, Path(f"{process.log}.out").read_text(), Path(f"{process.log}.err").read_text())


def load(url: str, study: str) -> StudyResults:
    return StudyResults.load(study, open_storage(url))


def assert_cells_in_turn(results: StudyResults) -> None:
    for trial in results.trials:
        assert trial.cell == CELLS_IN_TURN[trial.number % 3], trial


# Opens the storage at each URL it reads, when it reads it, and says how that went.
OPENER = """
import sys
from core.search.storage import SearchError, open_storage
print("ready", flush=True)
for url in sys.stdin:
    try:
        open_storage(url.strip())
        print("opened", flush=True)
    except SearchError as error:
        print(f"error: {error}", flush=True)
"""
OPENERS, ROUNDS = 3, 3


def test_workers_started_together_open_a_new_database(postgres_url):
    """Workers on many machines are started together against a new database, and each one's
    first connection makes Optuna's tables if they are missing: none may fail for the others
    making them at the same moment. Three processes open each of three new databases at once
    (the URL on their stdin is the starting gun), as their workers would."""
    openers = [subprocess.Popen([sys.executable, "-c", OPENER], cwd=ROOT, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
               for _ in range(OPENERS)]
    try:
        assert [opener.stdout.readline() for opener in openers] == ["ready\n"] * OPENERS
        replies = []
        for round_number in range(ROUNDS):
            url = create_database(postgres_url, f"together-{round_number}")
            for opener in openers:
                opener.stdin.write(url + "\n")
                opener.stdin.flush()
            replies.append([opener.stdout.readline().strip() for opener in openers])
    finally:
        for opener in openers:
            opener.stdin.close()
            opener.wait(timeout=60)
    assert replies == [["opened"] * OPENERS] * ROUNDS
    # The tables they made hold studies.
    create_study("after", "adding", open_storage(url))
    assert load(url, "after").trials == []


def test_two_workers_at_once_share_one_study(postgres_url, tmp_path):
    # The tables exist before the workers start: racing to make them is the test above's.
    open_storage(postgres_url)
    # two trials each: four numbers to hand out, and one of each cell before the turn comes round
    workers = [start_worker(postgres_url, "shared", tmp_path, trials=2, seed=seed)
               for seed in (1, 2)]
    finished = [finish(worker) for worker in workers]

    numbers_run = []
    for code, out, err in finished:
        assert code == 0, err
        assert re.search(r"^shared: \d+ complete, \d+ pruned, 0 failed$", out, re.MULTILINE), out
        numbers_run.append({int(n) for n in TRIAL_LINE.findall(out)})
    # Each worker ran its own two trials: the storage never gave one number to both.
    assert [len(numbers) for numbers in numbers_run] == [2, 2]
    assert numbers_run[0].isdisjoint(numbers_run[1])

    results = load(postgres_url, "shared")
    assert results.task == "adding"
    assert sorted(t.number for t in results.trials) == list(range(4))
    assert [t.state for t in results.trials if t.state not in ENDED] == []
    assert_cells_in_turn(results)

    complete = [t for t in results.trials if t.state == "COMPLETE"]
    assert complete
    for trial in complete:
        weights = Path(trial.attrs["weights"])
        assert weights.is_file() and weights.is_relative_to(tmp_path / "weights"), weights
        trained = results.trained(trial)
        assert (trained.task, trained.cell) == ("adding", trial.cell)
        assert trained.config.hidden_size == trial.params["hidden_size"]
        assert trained.steps == trial.attrs["steps"]
        assert trained.score.value == pytest.approx(trial.value)
    assert set(results.best_per_cell()) <= set(CELLS_IN_TURN)


def test_a_killed_worker_loses_its_trial_and_nothing_else(postgres_url, tmp_path):
    # Seed 0's first trial (an RNN) trains about 750 of LONG_STEPS: long enough to catch.
    doomed = start_worker(postgres_url, "killed", tmp_path, trials=12, seed=0,
                          max_steps=LONG_STEPS)
    heldout_every = space_for("adding", max_steps=LONG_STEPS).heldout_every
    study: list[optuna.Study] = []
    caught: list[int] = []

    def mid_trial() -> bool:
        """A running trial that has made a held-out check (so its heartbeat has been
        recorded) and has at least one more check's worth of steps to go."""
        if doomed.poll() is not None:
            return True  # it ended before we caught it: the assertion below says so
        if not study:
            try:
                study.append(open_study("killed", open_storage(postgres_url)))
            except SearchError:  # not made yet
                return False
        for trial in study[0].get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            cell = trial.params.get(CELL)
            steps = trial.params.get(f"{cell}.steps", 0)
            if trial.intermediate_values and max(trial.intermediate_values) + heldout_every < steps:
                caught.append(trial.number)
                return True
        return False

    assert wait_until(mid_trial, timeout=90)
    doomed.send_signal(signal.SIGKILL)
    code, out, err = finish(doomed)
    assert caught, f"the worker ended (exit {code}) before any trial was caught running:\n{err}"
    assert code == -signal.SIGKILL
    victim = caught[0]

    # Three missed beats later, whoever reads the study sees the trial failed.
    def victim_state() -> str:
        return next(t.state for t in load(postgres_url, "killed").trials if t.number == victim)

    assert wait_until(lambda: victim_state() == "FAIL", timeout=30), victim_state()

    # one trial shows the next worker going on with the study, with the next cell in turn
    successor = start_worker(postgres_url, "killed", tmp_path, trials=1, seed=4)
    code, out, err = finish(successor)
    assert code == 0, err
    assert re.search(r"^killed: \d+ complete, \d+ pruned, 0 failed$", out, re.MULTILINE), out
    assert sorted(int(n) for n in TRIAL_LINE.findall(out)) == [victim + 1]

    results = load(postgres_url, "killed")
    assert sorted(t.number for t in results.trials) == list(range(victim + 2))
    assert {t.number: t.state for t in results.trials if t.state not in ENDED} == {victim: "FAIL"}
    assert_cells_in_turn(results)
    killed = next(t for t in results.trials if t.number == victim)
    assert "weights" not in killed.attrs
    for trial in results.trials:
        if trial.state == "COMPLETE":
            assert Path(trial.attrs["weights"]).is_file(), trial


def made_for_adding(url: str) -> str:
    create_study("made-for-adding", "adding", open_storage(url))
    return "made-for-adding"


CLOSED_PORT = free_port()  # nothing listens on it: the port was free a moment ago
# Each case: the worker's arguments (from the server's URL), and how its error line begins.
BAD_INPUT = {
    "unreachable server": (
        lambda url: ["--task", "adding", "--study", "s1", "--storage",
                     f"postgresql://postgres:secret@127.0.0.1:{CLOSED_PORT}/gatescope"],
        (f"error: Cannot open the study storage postgresql://postgres:***@127.0.0.1:"
         f"{CLOSED_PORT}/gatescope: ")),
    "malformed URL": (
        lambda url: ["--task", "adding", "--study", "s1", "--storage", "postgres:/nonsense"],
        "error: “postgres:/nonsense” is not a storage URL: use "),
    "another database": (
        lambda url: ["--task", "adding", "--study", "s1", "--storage", "mysql://x/y"],
        "error: Studies can be kept in SQLite or PostgreSQL, not “mysql”: use "),
    "odd study name": (
        lambda url: ["--task", "adding", "--study", "my study!", "--storage", url],
        "error: A study name is 1 to 64 letters, digits"),
    "another task's study": (
        lambda url: ["--task", "names", "--study", made_for_adding(url), "--storage", url],
        "error: The study “made-for-adding” was made for the Adding problem task, not "),
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_is_one_error_line(postgres_url, tmp_path, case):
    arguments, beginning = BAD_INPUT[case]
    done = subprocess.run(
        [sys.executable, "-m", "core.search", "worker", "--trials", "1", "--max-steps", "30",
         "--directory", str(tmp_path / "weights"), *arguments(postgres_url)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, DIRECTORY_ENV: str(tmp_path)})
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(beginning), lines[0]
    assert "secret" not in done.stderr  # a URL's password is never shown
    assert not (tmp_path / "weights").exists()
    if case == "another task's study":  # refused before it touched the study
        results = load(postgres_url, "made-for-adding")
        assert (results.task, results.trials) == ("adding", [])
