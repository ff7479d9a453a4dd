"""The Search page's logic, without Streamlit: its URL state, the search it starts, and a
study's results as the tables and sentences the page shows.

    state = SearchState.from_query(st.query_params)    # ?task=adding&study=adding-1
    plan = state.plan(name)                           # a checked core.search.local.SearchPlan
    best_table(results)                               # best LSTM vs best GRU vs best RNN
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from core.cells import CELLS, cell_info
from core.limits import LIMITS
from core.search.local import LocalSearch, SearchPlan
from core.search.results import StudyResults, TrialRow
from core.search.storage import STUDY_NAME
from core.tasks import TASKS, Score, get_task
from core.views.state import PageState, matching, one_of, whole

#: A study whose last trial ended this recently may still have workers (on other machines)
#: about to start their next one: the page keeps watching it.
RECENT_SECONDS = 30
#: Hyperparameters as the tables name them.
PARAMETER_LABELS = {"hidden_size": "hidden", "num_layers": "layers", "learning_rate": "lr",
                    "optimizer": "optimizer", "clip_norm": "clip", "init": "init",
                    "forget_bias": "forget bias", "update_bias": "update bias",
                    "steps": "steps"}


@dataclass(frozen=True)
class SearchState(PageState):
    """The Search page's choices; `study` is the study watched (a link opens it)."""

    task: str = one_of("adding", TASKS)
    trials: int = whole(12, 1, LIMITS.max_search_trials)
    workers: int = whole(2, 1, LIMITS.max_search_workers)
    # 1,000 steps at most: a dozen trials take about a minute with two workers, and some of
    # them train long enough to leave the baseline behind (at 300 almost none did)
    steps: int = whole(1000, 20, LIMITS.max_training_steps)
    study: str = matching("", STUDY_NAME)

    def plan(self, name: str) -> SearchPlan:
        """The search these choices start, as study `name` (SearchError, LimitError)."""
        return SearchPlan(self.task, name, trials=self.trials, workers=self.workers,
                          max_steps=self.steps)


def new_study_name(task: str, when: datetime, taken: set[str]) -> str:
    """"adding-1206-1403" (month, day, time), with "-2", "-3" ... if that is taken."""
    name = f"{get_task(task).name}-{when:%m%d-%H%M}"
    unique, n = name, 1
    while unique in taken:
        n += 1
        unique = f"{name}-{n}"
    return unique


def trials_still_coming(results: StudyResults, local: LocalSearch | None, now: datetime
                        ) -> bool:
    """Whether the page should keep polling the study: this server's search of it (`local`)
    runs, or, for a study run by workers elsewhere, a trial runs or one ended within
    RECENT_SECONDS (a worker is about to ask for its next). `now` on Optuna's clock: naive
    local time, as it reads its timestamps back (a UTC `now` kept a page polling for hours
    east of Greenwich and stopped it at once west of it)."""
    if local is not None:
        return local.running or results.running > 0
    if results.running:
        return True
    ended = [t.completed for t in results.trials if t.completed is not None]
    return bool(ended) and (now - max(ended)).total_seconds() < RECENT_SECONDS


def hyperparameters(trial: TrialRow) -> str:
    """"hidden 36 · layers 2 · lr 0.0031 · rmsprop · clip 1 · init default · steps 56"."""
    parts = []
    for name, value in trial.params.items():
        label = PARAMETER_LABELS.get(name, name)
        if isinstance(value, float):
            shown = f"{value:.2g}" if name == "learning_rate" else f"{value:.2f}"
        else:
            shown = "off" if value is None else str(value)
        parts.append(shown if name == "optimizer" else f"{label} {shown}")
    return " · ".join(parts)


def _number(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}g}"


def best_table(results: StudyResults) -> pd.DataFrame:
    """A column per cell searched, as the seeds put it (best LSTM vs best GRU vs best RNN):
    its best complete trial's held-out score next to the baseline, parameters, training time
    and steps, how that cell's trials ended (each cell gets the same number of trials and the
    same step cap), and the best trial's hyperparameters. Three narrow columns that wrap read
    at any width; a row per cell ran off a small screen."""
    best = results.best_per_cell()
    columns = {}
    for cell in CELLS:
        trials = results.trials_of(cell)
        if not trials:
            continue
        top = best.get(cell)
        attrs = top.attrs if top else {}
        columns[cell_info(cell).display_name] = {
            "best trial": str(top.number) if top else "–",
            f"held-out {results.metric}": _number(top.value if top else None),
            "baseline": _number(attrs.get("baseline")),
            "parameters": f"{attrs['param_count']:,}" if "param_count" in attrs else "–",
            "training time (s)": _number(attrs.get("train_seconds"), 3),
            "steps": f"{attrs['steps']:,}" if "steps" in attrs else "–",
            "trials complete / pruned / failed": " / ".join(
                str(sum(t.state == state for t in trials))
                for state in ("COMPLETE", "PRUNED", "FAIL")),
            "hyperparameters": hyperparameters(top) if top else "no complete trial yet",
        }
    return pd.DataFrame(columns)


def trials_table(results: StudyResults) -> pd.DataFrame:
    """Every trial, newest first."""
    rows = [{
        "trial": t.number,
        "cell": cell_info(t.cell).display_name if t.cell in CELLS else "–",
        "state": t.state_words,
        f"held-out {results.metric}": _number(t.value),
        "steps": t.attrs.get("steps"),
        "time (s)": _number(t.attrs.get("train_seconds"), 3),
        "parameters": t.attrs.get("param_count"),
        "hyperparameters": hyperparameters(t),
    } for t in reversed(results.trials)]
    return pd.DataFrame(rows)


def verdict(results: StudyResults) -> str:
    """The ranking of the cells' best trials in one sentence, measured, with the baseline."""
    best = results.best_per_cell()
    if not best:
        return "No trial has completed yet."
    ranked = sorted(best.values(), key=lambda t: t.value, reverse=results.higher_is_better)
    order = ", then ".join(f"{cell_info(t.cell).display_name} ({t.value:.4g})" for t in ranked)
    baseline = ranked[0].attrs.get("baseline")
    against = ""
    if baseline is not None:
        beaten = [cell_info(t.cell).display_name for t in ranked if _beats_baseline(results, t)]
        against = (f" The trivial baseline scores {baseline:.4g} on the same held-out set; "
                   + (f"{' and '.join(beaten)} beat{'s' if len(beaten) == 1 else ''} it clearly."
                      if beaten else "no cell's best beats it clearly yet."))
    missing = [cell_info(c).display_name for c in CELLS
               if results.trials_of(c) and c not in best]
    gap = f" No {' or '.join(missing)} trial has completed yet." if missing else ""
    return (f"Best held-out {results.metric} at equal budget: {order}.{against}{gap} "
            f"A search this size is one sample: run more trials before you trust a small gap.")


def _beats_baseline(results: StudyResults, trial: TrialRow) -> bool:
    """The app's one rule for "better than the baseline" (core.tasks.Score.verdict)."""
    return Score(results.metric, trial.value, trial.attrs["baseline"], "",
                 results.higher_is_better, math.nan, 0).beats_baseline


def progress(results: StudyResults, planned: int | None) -> tuple[float, str]:
    """(fraction, words) for the progress bar: trials ended out of those planned."""
    ended = sum(t.ended for t in results.trials)
    trials = "trial" if (planned or ended) == 1 else "trials"
    words = f"{ended} of {planned} {trials} ended" if planned else f"{ended} {trials} ended"
    words += (f" · {results.count('COMPLETE')} complete, {results.count('PRUNED')} pruned, "
              f"{results.count('FAIL')} failed, {results.running} running")
    return (min(1.0, ended / planned) if planned else 1.0), words
