"""Helpers shared by the AppTest page tests: open a page, click, and insist on no traceback."""

from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]


def shown(markdown: str) -> str:
    """The text a reader sees of a Markdown body whose user text went through ui.text.plain:
    backslash escapes of ASCII punctuation and the zero-width spaces that break links dropped,
    hard line breaks as line breaks."""
    markdown = markdown.replace("&#8203;", "")
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown).replace("  \n", "\n")


def assert_clean(at: AppTest) -> None:
    """No exception element on the page: every failure must have become a message."""
    assert not at.exception, [e.value for e in at.exception]


def open_page(page: str | Path, timeout: float = 90, session: dict | None = None,
              **query) -> AppTest:
    """Run `page` (a path, e.g. ROOT / "app_pages/train.py") with these URL query parameters,
    after putting `session` (key -> value) in its session state."""
    at = AppTest.from_file(str(page), default_timeout=timeout)
    for key, value in (session or {}).items():
        at.session_state[key] = value
    for key, value in query.items():
        at.query_params[key] = str(value)
    at.run()
    assert_clean(at)
    return at


def click(at: AppTest, label: str) -> AppTest:
    """Click the button labelled `label` and rerun."""
    next(b for b in at.button if b.label == label).click().run()
    assert_clean(at)
    return at
