"""What a search tries: per task, the cell and each cell's own hyperparameters; how the cells
share the trials; when a trial is pruned.

The seeds' point is that "the number of cells that optimises a LSTM answer might be completely
different to the number that optimises a GRU". So every hyperparameter is the cell's own
("lstm.hidden_size", "gru.hidden_size", ...): the sampler (Optuna's TPE, seeded) models each
cell's space apart, Optuna's figures show each cell's, and the forget-gate bias exists only
for the LSTM, the update-gate bias only for the GRU. The cell itself is not left to TPE, which
would soon spend the trials on whichever cell led early: `CellRoundRobinSampler` gives trial n
the cell n mod 3 (trial numbers are the storage's, unique across workers), so each cell gets
the same number of trials with the same step cap: best LSTM against best GRU against best RNN
at equal budget. For the same reason a trial is pruned only against trials of its own cell
(`SameCellMedianPruner`): an RNN on a long task is always behind the LSTMs' median.
"""

from __future__ import annotations

import functools
import math
import statistics
from dataclasses import dataclass, replace

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from core.cells import CELLS, cell_info
from core.model import INITS
from core.tasks import get_task
from core.training.budget import plan_run
from core.training.loop import OPTIMIZERS, TrainConfig
from core.training.zoo import RECIPES, recipe

CELL = "cell"
#: Gradient-norm clipping a trial may use (None: none).
CLIP_NORMS = (None, 0.25, 1.0, 5.0)
#: Held-out checks a trial of the study's step cap makes (the pruner's reports).
CHECKS_PER_TRIAL = 10
#: The fewest steps a trial trains, and the fraction of the cap below which a trial is too short
#: to say anything about its settings (the steps are searched over one decade at most).
MIN_STEPS = 20
MIN_STEPS_FRACTION = 0.1


@dataclass(frozen=True)
class SearchSpace:
    """One task's search space; every range is (low, high), searched on a log scale where the
    name says so. `max_steps` caps every trial (the study's budget per trial)."""

    task: str
    cells: tuple[str, ...]
    max_steps: int
    hidden_size: tuple[int, int]  # log
    num_layers: tuple[int, int]
    learning_rate: tuple[float, float]  # log
    forget_bias: tuple[float, float] = (-1.0, 3.0)  # LSTM only
    update_bias: tuple[float, float] = (-3.0, 3.0)  # GRU only

    @property
    def heldout_every(self) -> int:
        """Steps between a trial's held-out checks: the same for every trial of a study, so
        the pruner compares trials at the same steps."""
        return max(10, self.max_steps // CHECKS_PER_TRIAL)

    @property
    def steps(self) -> tuple[int, int]:
        least = max(MIN_STEPS, int(self.max_steps * MIN_STEPS_FRACTION))
        return min(least, self.max_steps), self.max_steps

    @functools.cached_property
    def heldout_size(self) -> int:
        """The held-out sequences every trial is scored on: the fewest that planning gives
        the space's largest model of any cell (core.training.budget.plan_run shrinks the set
        of a model slow to evaluate), so that all trials are scored on the same set."""
        largest = [replace(recipe(self.task, cell), hidden_size=self.hidden_size[1],
                           num_layers=self.num_layers[1]) for cell in self.cells]
        return min(plan_run(self.task, cell, config).config.heldout_size
                   for cell, config in zip(self.cells, largest))


def space_for(task: str, cells: tuple[str, ...] = tuple(CELLS), max_steps: int | None = None
              ) -> SearchSpace:
    """The task's space around its zoo recipe: hidden sizes from 8 to twice the recipe's, one
    or two layers, learning rates from 1e-4 to 3e-2, at most `max_steps` steps (default: the
    recipe's)."""
    name = get_task(task).name
    base = RECIPES[name]
    cells = tuple(dict.fromkeys(cells))
    if not cells:
        raise ValueError("a search needs at least one cell")
    for cell in cells:
        cell_info(cell)
    return SearchSpace(name, cells, base.max_steps if max_steps is None else int(max_steps),
                       hidden_size=(8, 2 * base.hidden_size), num_layers=(1, 2),
                       learning_rate=(1e-4, 3e-2))


def suggest(trial: optuna.Trial, space: SearchSpace, seed: int, max_seconds: float | None
            ) -> tuple[str, TrainConfig]:
    """The cell and training configuration of `trial` (trained with seed `seed`)."""
    cell = trial.suggest_categorical(CELL, space.cells)

    def name(parameter: str) -> str:
        return f"{cell}.{parameter}"

    config = replace(
        recipe(space.task, cell, seed=seed),
        hidden_size=trial.suggest_int(name("hidden_size"), *space.hidden_size, log=True),
        num_layers=trial.suggest_int(name("num_layers"), *space.num_layers),
        learning_rate=trial.suggest_float(name("learning_rate"), *space.learning_rate, log=True),
        optimizer=trial.suggest_categorical(name("optimizer"), OPTIMIZERS),
        clip_norm=trial.suggest_categorical(name("clip_norm"), CLIP_NORMS),
        init=trial.suggest_categorical(name("init"), INITS),
        forget_bias=(trial.suggest_float(name("forget_bias"), *space.forget_bias)
                     if cell == "lstm" else None),
        update_bias=(trial.suggest_float(name("update_bias"), *space.update_bias)
                     if cell == "gru" else None),
        max_steps=trial.suggest_int(name("steps"), *space.steps, log=True),
        max_seconds=max_seconds, heldout_every=space.heldout_every,
        progress_every=space.heldout_every, threads=1)
    return cell, config


class CellRoundRobinSampler(optuna.samplers.BaseSampler):
    """Optuna's seeded TPE for every parameter but the cell, which trial n takes as
    cells[n mod len(cells)]: equal trials per cell (see the module doc)."""

    def __init__(self, cells: tuple[str, ...], seed: int | None = None):
        self.cells = tuple(cells)
        self.base = optuna.samplers.TPESampler(seed=seed)

    def infer_relative_search_space(self, study, trial) -> dict[str, BaseDistribution]:
        space = self.base.infer_relative_search_space(study, trial)
        space.pop(CELL, None)
        return space

    def sample_relative(self, study, trial, search_space):
        return self.base.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        if param_name == CELL:
            return self.cells[trial.number % len(self.cells)]
        return self.base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial) -> None:
        self.base.before_trial(study, trial)

    def after_trial(self, study, trial, state, values) -> None:
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.base.reseed_rng()


class SameCellMedianPruner(optuna.pruners.BasePruner):
    """Prune a trial whose held-out score at a check is worse than the median of the completed
    trials of its own cell at that check, once `startup_trials` of them exist and after the
    trial's first `warmup_checks` checks (Optuna's median rule, within a cell). A check that
    is not a finite number (a diverging run) is pruned at once."""

    def __init__(self, startup_trials: int = 3, warmup_checks: int = 2):
        self.startup_trials = startup_trials
        self.warmup_checks = warmup_checks

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        value = trial.intermediate_values[step]
        if not math.isfinite(value):
            return True
        if len(trial.intermediate_values) <= self.warmup_checks:
            return False
        cell = trial.params.get(CELL)
        peers = [t.intermediate_values[step]
                 for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                 if t.params.get(CELL) == cell and step in t.intermediate_values]
        peers = [v for v in peers if math.isfinite(v)]
        if len(peers) < self.startup_trials:
            return False
        median = statistics.median(peers)
        if study.direction == optuna.study.StudyDirection.MAXIMIZE:
            return value < median
        return value > median
