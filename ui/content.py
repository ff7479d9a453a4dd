"""The page's explanations (content/<page>/*.md), drawn as expanders, closed by default."""

from __future__ import annotations

import streamlit as st

from core.content import explanations


def explain(page: str, **values) -> None:
    """One expander per explanation of `page`, in order; `values` fill their $placeholders."""
    for item in explanations(page):
        with st.expander(item.title):
            st.markdown(item.filled(**values))
