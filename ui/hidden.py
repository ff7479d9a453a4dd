"""Script-only elements that take no space on the page."""

from __future__ import annotations

import streamlit as st


def hidden_html(key: str, body: str) -> None:
    """Draw `body` (a <script>, usually) in a keyed container that the same element hides, so
    that the page's layout has no gap for it. Scripts still run."""
    st.container(key=key).html(
        f"<style>:has(> .st-key-{key}), .st-key-{key} {{ display: none; }}</style>{body}",
        unsafe_allow_javascript=True)


def scroll_to_top(key: str) -> None:
    """Show the page from its top: Streamlit keeps the scroll position of the page it switches
    from (a button low on the Train page opened Explore scrolled to its bottom)."""
    hidden_html(key, """<script>
      const doc = window.parent && window.parent.document ? window.parent.document : document;
      const main = doc.querySelector('[data-testid="stMain"]');
      if (main) { main.scrollTo(0, 0); }
      (doc.scrollingElement || doc.documentElement).scrollTo(0, 0);
    </script>""")
