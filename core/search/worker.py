"""A search worker: runs trials of one study, each a training run of core.training.loop.

    report = run_worker("adding", "adding-lstm-vs-gru", trials=12, max_steps=1000)

Any number of workers, in any number of processes on any number of machines, can run against
one study: the storage hands out trial numbers, the sampler and pruner read every worker's
trials from it (core/search/space.py); `seed` seeds a worker's sampler (give each worker its
own). Every trial of a study trains on the same batches (unless planning scales a big
model's batch down to the memory budget: its note says so) and is scored on the same held-out
set (the study's data seed, and one size for all: SearchSpace.heldout_size), so trials differ
only in their hyperparameters. A trial reports its held-out score at every check (the pruner
may end it there) and records in its user attributes what the page shows: the seed, the
held-out score and the task's baseline on the same set, the parameter count, training time
and steps, how training ended, and where its weights went
(`directory`/<study>/trial-<n>.safetensors with the JSON beside it: the Train page's download
format, so the best trials open in Explore and Compare).

Stop (`should_stop()` returning True, or SIGTERM / Ctrl-C to the CLI) ends the current trial
within a training step; that trial is recorded as failed ("stopped") and the worker starts no other.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import torch

from core.cells import CELLS, cell_info
from core.io.exports import model_files
from core.limits import LIMITS, LimitError
from core.model import count_parameters
from core.numerics import flush_denormal
from core.search.space import (
    CellRoundRobinSampler, SameCellMedianPruner, SearchSpace, space_for, suggest,
)
from core.search.storage import (
    SearchError, check_study_name, create_study, open_storage, search_directory,
)
from core.tasks import get_task
from core.training.budget import plan_run
from core.training.loop import TrainResult, train

log = logging.getLogger(__name__)

#: The seed of every trial's data and initial weights (a study records it as "data_seed").
DATA_SEED = 0
#: What a trial records of itself (its user attributes), read by core/search/results.py.
ATTRIBUTES = ("seed", "metric", "baseline", "baseline_name", "param_count", "train_seconds",
              "steps", "status", "weights", "host", "note")


class Stopped(Exception):
    """The worker was asked to stop during trial number `trial`."""

    def __init__(self, trial: int):
        super().__init__(f"trial {trial} was stopped")
        self.trial = trial


@dataclass
class WorkerReport:
    """What one worker did: trial number -> state name ("COMPLETE", "PRUNED", "FAIL")."""

    study: str
    states: dict[int, str] = field(default_factory=dict)
    stopped: bool = False

    def count(self, state: str) -> int:
        return sum(1 for s in self.states.values() if s == state)


def trial_paths(directory: Path, study: str, number: int) -> tuple[Path, Path]:
    stem = Path(directory) / study / f"trial-{number:05d}"
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


class Objective:
    """One trial: suggest, train with pruning, record, save the weights."""

    def __init__(self, space: SearchSpace, directory: Path, max_seconds: float,
                 should_stop: Callable[[], bool], on_trial: Callable[[str], None]):
        self.space, self.directory = space, Path(directory)
        self.max_seconds, self.should_stop, self.on_trial = max_seconds, should_stop, on_trial

    def __call__(self, trial: optuna.Trial) -> float:
        seed = trial.study.user_attrs.get("data_seed", DATA_SEED)
        cell, config = suggest(trial, self.space, seed, self.max_seconds)
        trial.set_user_attr("seed", seed)
        # LimitError if too big for the budget; the study's one held-out set (space.py)
        plan = plan_run(self.space.task, cell, config, max_heldout=self.space.heldout_size)
        if plan.notes:
            trial.set_user_attr("note", " ".join(plan.notes))
        pruned = False

        def report(event) -> None:
            nonlocal pruned
            if event.heldout_metric is not None and (
                    event.step % self.space.heldout_every == 0 or event.step == event.total_steps):
                trial.report(event.heldout_metric, event.step)
                pruned = pruned or trial.should_prune()

        result = train(self.space.task, cell, plan.config, on_progress=report,
                       should_stop=lambda: pruned or self.should_stop())
        self.record(trial, result)
        if result.status == "stopped" and not pruned:
            raise Stopped(trial.number)
        if pruned:
            self.on_trial(f"trial {trial.number} · {cell_info(cell).display_name} · pruned "
                          f"at step {result.steps:,}")
            raise optuna.TrialPruned
        self.save(trial, result)
        score = result.score
        self.on_trial(f"trial {trial.number} · {cell_info(cell).display_name} · held-out "
                      f"{score.metric} {score.value:.4g} (baseline {score.baseline:.4g}) · "
                      f"{result.steps:,} steps in {result.seconds:.1f} s · {result.status}")
        return float(score.value)  # NaN (a diverged run) makes Optuna fail the trial

    def record(self, trial: optuna.Trial, result: TrainResult) -> None:
        score = result.score
        for key, value in {
            "metric": score.metric, "baseline": _finite(score.baseline),
            "baseline_name": score.baseline_name,
            "param_count": count_parameters(result.model),
            "train_seconds": round(result.seconds, 3), "steps": result.steps,
            "status": result.status, "host": socket.gethostname(),
        }.items():
            trial.set_user_attr(key, value)

    def save(self, trial: optuna.Trial, result: TrainResult) -> None:
        weights, meta = model_files(result)
        weights_path, meta_path = trial_paths(self.directory, trial.study.study_name,
                                              trial.number)
        weights_path.parent.mkdir(parents=True, exist_ok=True)
        weights_path.write_bytes(weights)
        meta_path.write_text(meta)
        trial.set_user_attr("weights", str(weights_path.resolve()))


def _finite(value: float) -> float | None:
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None


def run_worker(task: str, study: str, trials: int, *, storage: str | None = None,
               max_steps: int | None = None, directory: Path | str | None = None,
               cells: tuple[str, ...] = tuple(CELLS), seed: int = 0,  # the sampler's
               max_seconds: float | None = None,
               should_stop: Callable[[], bool] = lambda: False,
               on_trial: Callable[[str], None] = lambda line: None) -> WorkerReport:
    """Run `trials` trials of `study` (made for `task` now if it does not exist). SearchError
    for a storage, study or task that cannot be used; LimitError for steps over the limit."""
    check_study_name(study)
    if not isinstance(trials, int) or trials < 1:
        raise SearchError(f"A worker runs at least one trial; got {trials!r}.")
    max_seconds = max_seconds or LIMITS.max_search_trial_seconds
    space = space_for(task, cells, max_steps)
    if not 1 <= space.max_steps <= LIMITS.max_training_steps:
        raise LimitError(f"Steps per trial must be from 1 to {LIMITS.max_training_steps:,}; "
                         f"got {space.max_steps:,}.", limit="max_training_steps",
                         value=space.max_steps)
    directory = Path(directory) if directory is not None else search_directory() / "weights"
    loaded = create_study(study, get_task(task).name, open_storage(storage),
                          sampler=CellRoundRobinSampler(space.cells, seed=seed),
                          pruner=SameCellMedianPruner())
    report = WorkerReport(study)
    objective = Objective(space, directory, max_seconds, should_stop, on_trial)

    def remember(_, frozen: optuna.trial.FrozenTrial) -> None:
        report.states[frozen.number] = frozen.state.name

    torch.set_num_threads(1)
    with flush_denormal():
        for _ in range(trials):
            if should_stop():
                report.stopped = True
                break
            began = time.perf_counter()
            try:
                loaded.optimize(objective, n_trials=1, callbacks=[remember],
                                catch=(LimitError,), gc_after_trial=True)
            except Stopped as stopped:  # Optuna has failed the trial; its "status" says why
                report.stopped = True
                report.states[stopped.trial] = "FAIL"
                break
            log.debug("trial took %.2f s", time.perf_counter() - began)
    return report


