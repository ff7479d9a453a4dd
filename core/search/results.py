"""A study read back from its storage: its trials, the best of each cell, their saved models.

    results = StudyResults.load("adding-1", open_storage())
    results.best_per_cell()        # cell -> the best complete trial of that cell
    results.trained(trial)         # its saved model, as a TrainResult (Explore, Compare)

Reading also fails stale trials (Optuna's heartbeat rule): a trial whose worker was killed is
shown as failed once its heartbeat is `grace_seconds()` old, whoever watches.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial

from core.cells import CELLS, cell_info
from core.io.exports import trained_from_files
from core.search.space import CELL
from core.search.storage import SearchError, open_study, study_task
from core.tasks import get_task
from core.training.loop import TrainResult

#: Trial states as the page says them.
STATE_WORDS = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed",
               "RUNNING": "running", "WAITING": "waiting"}


@dataclass(frozen=True)
class TrialRow:
    """One trial as the page shows it."""

    number: int
    state: str  # "COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"
    cell: str | None
    value: float | None  # the held-out score (complete trials)
    params: dict  # the cell's own hyperparameters, without the "<cell>." prefix
    attrs: dict  # what the worker recorded (core.search.worker.ATTRIBUTES)
    completed: datetime | None

    @classmethod
    def of(cls, trial: FrozenTrial) -> "TrialRow":
        cell = trial.params.get(CELL)
        params = {name.split(".", 1)[1]: value for name, value in trial.params.items()
                  if "." in name}
        return cls(trial.number, trial.state.name, cell, trial.value, params,
                   dict(trial.user_attrs), trial.datetime_complete)

    @property
    def ended(self) -> bool:
        return self.state in ("COMPLETE", "PRUNED", "FAIL")

    @property
    def label(self) -> str:
        cell = cell_info(self.cell).display_name if self.cell in CELLS else "?"
        return f"trial {self.number} · {cell}"

    @property
    def state_words(self) -> str:
        if self.state == "FAIL" and self.attrs.get("status") == "stopped":
            return "stopped"
        return STATE_WORDS.get(self.state, self.state.lower())


@dataclass
class StudyResults:
    """A snapshot of one study."""

    name: str
    task: str
    direction: str  # "maximize" | "minimize"
    study: optuna.Study = field(repr=False)
    trials: list[TrialRow] = field(default_factory=list)

    @classmethod
    def load(cls, name: str, storage: optuna.storages.BaseStorage) -> "StudyResults":
        study = open_study(name, storage)
        with warnings.catch_warnings():  # "experimental" since Optuna 2.9; checked by our tests
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        trials = [TrialRow.of(t) for t in study.get_trials(deepcopy=False)]
        return cls(name, study_task(study), study.direction.name.lower(), study, trials)

    @property
    def metric(self) -> str:
        return get_task(self.task).metric.name

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "maximize"

    def count(self, state: str) -> int:
        return sum(1 for t in self.trials if t.state == state)

    @property
    def running(self) -> int:
        return self.count("RUNNING")

    def best_per_cell(self) -> dict[str, TrialRow]:
        """Each searched cell's best complete trial (cells in the app's order)."""
        best: dict[str, TrialRow] = {}
        for trial in self.trials:
            if trial.state != "COMPLETE" or trial.value is None or not math.isfinite(trial.value):
                continue
            held = best.get(trial.cell)
            if held is None or self.better(trial.value, held.value):
                best[trial.cell] = trial
        return {cell: best[cell] for cell in CELLS if cell in best}

    def better(self, value: float, than: float) -> bool:
        return value > than if self.higher_is_better else value < than

    def trials_of(self, cell: str) -> list[TrialRow]:
        return [t for t in self.trials if t.cell == cell]

    def summary_line(self) -> str:
        best = self.best_per_cell()
        bests = ", ".join(f"{cell_info(c).display_name} {t.value:.4g}" for c, t in best.items())
        return (f"{self.name} ({get_task(self.task).title}): {len(self.trials)} trials, "
                f"{self.count('COMPLETE')} complete, {self.count('PRUNED')} pruned, "
                f"{self.count('FAIL')} failed, {self.running} running"
                + (f"; best held-out {self.metric}: {bests}" if bests else ""))

    def trained(self, trial: TrialRow) -> TrainResult:
        """The saved model of a complete trial. SearchError if its files are not readable
        here (a worker on another machine saved them there)."""
        path = trial.attrs.get("weights")
        if not path:
            raise SearchError(f"{trial.label.capitalize()} saved no weights (only complete "
                              f"trials do).")
        weights = Path(path)
        meta = weights.with_suffix(".json")
        if not (weights.is_file() and meta.is_file()):
            raise SearchError(
                f"The weights of {trial.label} were saved at {path} on the machine "
                f"“{trial.attrs.get('host', '?')}”, which this server cannot read. Copy "
                f"{weights.name} and {meta.name} to that path here (or run the workers with a "
                f"--directory this server shares), or upload the .safetensors file on Explore.")
        try:
            return trained_from_files(weights.read_bytes(), meta.read_text())
        except (OSError, ValueError, KeyError, RuntimeError) as error:
            raise SearchError(f"The saved files of {trial.label} cannot be read: "
                              f"{str(error)[:200]}") from None
