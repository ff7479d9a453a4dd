"""Script-only elements that take no space on the page."""

from __future__ import annotations

import streamlit as st


def hidden_html(key: str, body: str) -> None:
    """Draw `body` (a <script>, usually) in a keyed container that the same element hides, so
    that the page's layout has no gap for it. Scripts still run."""
    st.container(key=key).html(
        f"<style>:has(> .st-key-{key}), .st-key-{key} {{ display: none; }}</style>{body}",
        unsafe_allow_javascript=True)
