"""Where the Explore page keeps its traces: shared by every visitor, or the visitor's own.

Here, not in the page, so that no cached function's globals are a page run's (a run's globals
hold that visitor's upload). What a visitor gave (an uploaded model or CSV, a model trained in
the session) is never put in the cache every visitor shares: it is kept in the session
(`session_memo`, one trace at a time) under the file's digest and column, never under the
numbers, and goes when the session goes.
"""

from __future__ import annotations

from typing import Mapping

import streamlit as st

from core.io.tables import CsvChoice
from core.views import explore as ex
from core.views.models import ModelChoice, Upload
from ui.compute import session_memo


@st.cache_resource(max_entries=24, show_spinner=False)
def shared_trace(state: ex.ExploreState) -> tuple[ModelChoice, ex.Result]:
    """Shipped and random models on a seeded sample or typed text (in the URL, bounded) are
    the same for every visitor: one cache for the process."""
    choice = ex.resolve_model(state)
    return choice, ex.run(state, choice, ex.make_example(state))


def own_trace(state: ex.ExploreState, upload: Upload | None, csv: CsvChoice | None,
              trained: Mapping, own: ex.OwnInput | None = None) -> tuple[ModelChoice, ex.Result]:
    """A trace of what is this visitor's own, kept in their session only. `own` is what a
    user's own model is fed (not the task's input unless it says so)."""
    weights = (id(trained.get(state.run)) if state.source == "session" else
               upload.cache_key if upload else None)
    task_input = own is None or own.kind == "task"

    def compute():
        choice = ex.resolve_model(state, upload, session_models=trained)
        example = ex.make_example(state, csv) if task_input else None
        return choice, ex.run(state, choice, example, own)
    return session_memo("explore", (state if task_input else state.task, weights,
                                    csv and csv.key, own and own.key), compute)


def explore_trace(state: ex.ExploreState, upload: Upload | None, csv: CsvChoice | None,
                  trained: Mapping, own: ex.OwnInput | None = None
                  ) -> tuple[ModelChoice, ex.Result]:
    """The model and trace `state` asks for, from the shared cache or the session."""
    if state.source in ("session", "upload") or state.input == "csv":
        return own_trace(state, upload, csv if state.input == "csv" else None, trained, own)
    return shared_trace(state)
