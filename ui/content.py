"""The page's explanations (content/<page>/*.md), drawn as expanders, closed by default."""

from __future__ import annotations

import streamlit as st

from core.content import explanations
from ui.tours import hidden


def explain(page: str, *names: str, **values) -> None:
    """One expander per explanation of `page`, in order, or only those called `names` (a file's
    stem without its order prefix); `values` fill their $placeholders. None in a focused view
    that hides them (hide=explanations, ui/tours.py)."""
    if hidden("explanations"):
        return
    for item in explanations(page):
        if not names or item.name.split("_", 1)[-1] in names:
            with st.expander(item.title):
                st.markdown(item.filled(**values))
