"""Sending a trained model to Explore or Compare: the Train page's runs and the Search page's
best trials open there the same way.

A model goes into the session's trained models (st.session_state[TRAINED], label ->
TrainResult, the newest few kept) and the page to open is told which label(s) to show."""

from __future__ import annotations

import streamlit as st
from streamlit.errors import StreamlitAPIException

from core.training.loop import TrainResult
from core.training.session import keep_newest
from ui.state import OPEN_IN_COMPARE, OPEN_IN_EXPLORE, TRAINED

REQUESTS = {"explore": OPEN_IN_EXPLORE, "compare": OPEN_IN_COMPARE}


def keep_trained(label: str, result: TrainResult) -> None:
    """Add a model to this session's trained models (the oldest go beyond the limit)."""
    trained = st.session_state.setdefault(TRAINED, {})
    trained[label] = result
    keep_newest(trained)


def open_in(page: str, *labels: str) -> None:
    """Go to Explore (one label) or Compare (a label per cell) showing these trained models."""
    st.session_state[REQUESTS[page]] = labels[0] if page == "explore" else list(labels)
    try:
        st.switch_page(f"app_pages/{page}.py")
    except StreamlitAPIException:  # not registered in this app (e.g. this page alone)
        st.info(f"The {page.title()} page is not available here; the model stays in this session.")
