"""The page's explanations (content/<page>/*.md), drawn as expanders, closed by default."""

from __future__ import annotations

import streamlit as st

from core.content import explanations


def explain(page: str, *names: str, **values) -> None:
    """One expander per explanation of `page`, in order, or only those called `names` (a file's
    stem without its order prefix); `values` fill their $placeholders."""
    for item in explanations(page):
        if not names or item.name.split("_", 1)[-1] in names:
            with st.expander(item.title):
                st.markdown(item.filled(**values))
