"""The Search page's live parts: start and Stop, and the study watched, redrawn every second
while its trials run (a fragment that polls the study's storage, as ui/live.py polls a
training session); it reruns the page once when the study has gone quiet.

The study's storage is the server's (core.search.storage: the SQLite file, or the PostgreSQL
URL in GATESCOPE_SEARCH_STORAGE); a visitor cannot type another. A public server must not
connect to whatever database a visitor names; workers anywhere reach the server's storage,
and the page shows their trials as they end.
"""

from __future__ import annotations

from datetime import datetime

import optuna
import streamlit as st

from core.cells import CELLS, cell_info
from core.figures import search as figures
from core.limits import LimitError
from core.search.local import SEARCHES, LocalSearch
from core.search.results import StudyResults
from core.search.storage import SearchError, open_storage, open_study, study_names
from core.views import search as sv
from ui import live
from ui.charts import chart
from ui.opening import keep_trained, open_in
from ui.state import PageChoices, page_key
from ui.text import plain

OWN_SEARCH = page_key("search", "local")  # the LocalSearch this session started
QUIET = page_key("search", "quiet")  # the study (and its trial count) last seen going quiet
POLL_SECONDS = 1.0
#: How often a quiet study is asked whether a worker has started on it (one small query).
QUIET_POLL_SECONDS = 5.0
VIEWS = {"best": "Best of each cell", "history": "Optimisation history",
         "importance": "Importances", "parallel": "Parallel coordinates", "slice": "Slices",
         "trials": "All trials"}
PER_CELL = {"importance": figures.importance_figure, "parallel": figures.parallel_figure,
            "slice": figures.slice_figure}


def storage() -> optuna.storages.BaseStorage | None:
    """The server's study storage, or None with a message saying why it cannot be used."""
    try:
        return open_storage()
    except SearchError as error:
        st.error(f"The search's storage cannot be used: {plain(error)}")
        return None


def own_search() -> LocalSearch | None:
    return st.session_state.get(OWN_SEARCH)


def start_stop(choices: PageChoices, state: sv.SearchState,
               opened: optuna.storages.BaseStorage) -> None:
    """Start a new study with this server's workers, and Stop it."""
    own = own_search()
    busy = own is not None and own.running
    buttons = st.container(horizontal=True)  # wraps on a narrow screen, never cuts a label
    # disabled is the browser's: a crafted message could still click, so busy is checked here
    if buttons.button("Start search", type="primary", disabled=busy) and not busy:
        try:
            name = sv.new_study_name(state.task, datetime.now(), set(study_names(opened)))
            st.session_state[OWN_SEARCH] = SEARCHES.start(
                LocalSearch(state.plan(name), owner_alive=live.owner_alive()))
            choices.set(study=name)
            st.rerun()  # Start drawn disabled, Stop enabled, the new study watched
        except (SearchError, LimitError, ValueError) as error:
            st.error(f"Cannot start the search: {plain(error)}")
    buttons.button("Stop", disabled=not busy, on_click=lambda: own_search().stop())


def watch(opened: optuna.storages.BaseStorage, name: str) -> None:
    """The study `name`, live while its trials run."""
    try:
        results = StudyResults.load(name, opened)
    except SearchError as error:
        st.warning(plain(error))
        return
    polling = _busy(results)
    st.fragment(run_every=POLL_SECONDS if polling else None)(_draw)(opened, name, polling)
    if not polling:  # workers elsewhere may start on it at any time
        st.fragment(run_every=QUIET_POLL_SECONDS)(_wake_on_new_trials)(
            opened, name, len(results.trials))


def _busy(results: StudyResults) -> bool:
    return sv.trials_still_coming(results, SEARCHES.of(results.name), datetime.now())


def _wake_on_new_trials(opened: optuna.storages.BaseStorage, name: str, drawn: int) -> None:
    """A quiet study, checked every QUIET_POLL_SECONDS with one count: the page comes back to
    life (polls every second) as soon as a worker anywhere starts a trial on it."""
    try:
        count = len(open_study(name, opened).get_trials(deepcopy=False))
    except SearchError:
        return
    if count != drawn:
        st.rerun()


def _draw(opened: optuna.storages.BaseStorage, name: str, polling: bool) -> None:
    try:
        results = StudyResults.load(name, opened)
    except SearchError as error:
        st.warning(plain(error))
        return
    local = SEARCHES.of(name)
    fraction, words = sv.progress(results, local.plan.trials if local else None)
    st.progress(fraction, text=words + (f" · {local.status}" if local else ""))
    for problem in (local.errors if local else []):
        st.error(f"A worker failed: {plain(problem)}")
    st.markdown(plain(sv.verdict(results)))
    table = sv.best_table(results)
    if not table.empty:  # a study made a moment ago has no trial yet
        st.table(table)
    open_buttons(results)
    view = st.segmented_control("View", list(VIEWS), format_func=VIEWS.get, default="best",
                                key="search_view") or "best"
    show(results, view)
    if polling and not _busy(results):
        rerun_once_when_quiet(results)


def rerun_once_when_quiet(results: StudyResults) -> None:
    """The study has gone quiet: rerun the whole page (Start comes back, polling stops), once
    per study and number of trials (late poll ticks must not rerun it again: ui/live.py)."""
    quiet = (results.name, len(results.trials))
    if st.session_state.get(QUIET) != quiet:
        st.session_state[QUIET] = quiet
        st.rerun()


def open_buttons(results: StudyResults) -> None:
    """Each cell's best trial opens in Explore; the three open side by side in Compare."""
    best = results.best_per_cell()
    if not best:
        return
    row = st.container(horizontal=True)  # wraps on a narrow screen, never cuts a label
    for cell, trial in best.items():
        if row.button(f"{cell_info(cell).display_name} (trial {trial.number}) in Explore",
                      key=f"search_explore_{cell}"):
            opened = _keep(results, [trial])
            if opened:
                open_in("explore", *opened)
    if row.button("All best in Compare", key="search_compare"):
        opened = _keep(results, list(best.values()))
        if opened:
            open_in("compare", *opened)


def _keep(results: StudyResults, trials) -> list[str]:
    """Load the trials' saved models into this session's trained models; their labels."""
    labels = []
    for trial in trials:
        try:
            result = results.trained(trial)
        except SearchError as error:
            st.error(plain(error))
            return []
        label = f"{results.name} · {trial.label}"
        keep_trained(label, result)
        labels.append(label)
    return labels


def show(results: StudyResults, view: str) -> None:
    """One view of the study: a figure (per cell where the figure is), or the trials."""
    if view == "trials":
        st.dataframe(sv.trials_table(results), hide_index=True, width="stretch")
        return
    if view in PER_CELL:
        cells = [c for c in CELLS if results.trials_of(c)]
        cell = st.radio("Cell", cells, format_func=lambda c: cell_info(c).display_name,
                        horizontal=True, key="search_cell") if cells else None
        arguments = [results, cell]
        if view == "slice" and cell:
            parameters = figures.cell_parameters(results, cell)
            arguments.append(st.selectbox("Parameter", parameters, key=f"search_slice_{cell}",
                                          format_func=lambda p: p.split(".", 1)[1]))
        figure = PER_CELL[view](*arguments) if cell else None
        if figure is None:
            st.info("Not enough complete trials of this cell for this figure yet (importances "
                    f"need {figures.MIN_TRIALS_FOR_IMPORTANCE}, parallel coordinates 2).")
            return
    else:
        figure = (figures.best_so_far_figure(results) if view == "best"
                  else figures.history_figure(results))
    chart(figure, width="stretch", key=f"search_figure_{view}")
