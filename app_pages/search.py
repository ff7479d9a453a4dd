"""Search: which cell wins a task when each gets its own hyperparameter search at equal budget?

The seeds end on it: "the only way to find out if LSTM is better than GRU on a problem is a
hyperparameter search". A search is an Optuna study (core/search/): this server's workers, or
any number on other machines (`python -m core.search worker`), run its trials; the page shows
it live, with each cell's best trial, Optuna's figures and every trial, and opens the best
models in Explore and Compare.
"""

from __future__ import annotations

import streamlit as st

from core.limits import LIMITS
from core.search.storage import default_storage_url, shown_url, study_names
from core.tasks import TASKS, get_task
from core.views import search as sv
from ui import search as panel
from ui.content import explain
from ui.state import PageChoices

choices = PageChoices(sv.SearchState, "search")


def search_choices() -> None:
    """The task and the budget of a new search."""
    pick, row = choices.widget, st.columns([1.6, 1, 1, 1])
    pick(row[0].selectbox, "Task", "task", TASKS, lambda n: TASKS[n].title)
    pick(row[1].number_input, "Trials", "trials", min_value=1, max_value=LIMITS.max_search_trials,
         help="In all, shared by the workers; the cells take turns, so each gets a third.")
    pick(row[2].number_input, "Max steps", "steps", min_value=20,
         max_value=LIMITS.max_training_steps, step=50,
         help="The most training steps of a trial (it searches fewer too): the same cap for "
              "every cell, so their best trials compare at equal budget.")
    pick(row[3].number_input, "Workers", "workers", min_value=1,
         max_value=LIMITS.max_search_workers,
         help="Processes that run trials at once; each takes one of this server's "
              f"{LIMITS.max_concurrent_training_runs} training slots.")
    st.caption(get_task(choices.values["task"]).description)


def study_picker(names: dict[str, str]) -> str | None:
    """The study to watch: this session's newest, one from a link, or any in the storage."""
    if not names:
        st.info("No study yet: start one above, or run workers against this storage "
                "(`python -m core.search worker --help`).")
        return None
    wanted = choices.values["study"]
    if wanted and wanted not in names:
        st.warning(f"There is no study named “{wanted}” in this storage; showing the newest.")
    return choices.widget(st.selectbox, "Study", "study", names, names.get,  # task, not count
                          help=f"Every study in {shown_url(default_storage_url())}, newest first.")


st.header("Hyperparameter search")
st.caption("LSTM against GRU against RNN, each with its own search (hidden size, layers, learning "
           "rate, optimiser, clipping, initialiser, gate bias, steps) and the same number of "
           "trials. Optuna picks each trial's values from how earlier trials did, and stops "
           "trials that trail their own cell's median.")
opened = panel.storage()
if opened is not None:
    search_choices()
    state = choices.state()
    panel.start_stop(choices, state, opened)
    study = study_picker(study_names(opened))
    choices.publish(choices.state())
    if study:
        panel.watch(opened, study)
explain("search", trial_seconds=f"{LIMITS.max_search_trial_seconds:g}")
