"""Running a page's computation so that bad input never costs the user their view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar

import streamlit as st

from core.views.explore import NeedsInput
from ui.state import page_key
from ui.text import plain

T = TypeVar("T")


@dataclass(frozen=True)
class Problem:
    """Why a page shows its last good view: the message, and whether it only waits for input
    (then it asks, in an info box, rather than reporting an error in red)."""

    message: str
    waiting: bool = False

    def __str__(self) -> str:
        return self.message

    def show(self) -> None:
        """Say it above the page's view, as text: a message may quote what the visitor typed,
        uploaded or linked (ui/text.py)."""
        if self.waiting:
            st.info(f"{plain(self.message)}  \nUntil then, your last view stays below.")
        else:
            st.error(f"{plain(self.message)}  \nShowing your last good view instead.")

    def show_alone(self) -> None:
        """Say it where there is no view to keep (nothing has worked yet in this session)."""
        (st.info if self.waiting else st.error)(plain(self.message))


def keep_last_good(page: str, compute: Callable[[], T]) -> tuple[T | None, Problem | None]:
    """(value, None) when `compute()` works, and remember the value as the page's last good
    one; (last good value, Problem) when it raises. Every failure becomes a message, never a
    traceback; the value is None only when nothing has worked yet in this session."""
    key = page_key(page, "last_good")
    try:
        value = compute()
    except Exception as err:  # noqa: BLE001 - every failure becomes a message
        problem = Problem(str(err) or type(err).__name__, isinstance(err, NeedsInput))
        return st.session_state.get(key), problem
    st.session_state[key] = value
    return value, None


def session_memo(page: str, key: object, compute: Callable[[], T]) -> T:
    """`compute()` once per `key`, keeping only the newest value in this browser session.

    For what is a visitor's own (an upload, a model trained in the session): it never goes into
    a cache shared by every visitor, and one value at a time keeps a session's memory bounded,
    which is enough for reruns that change only what is looked at."""
    memo = page_key(page, "memo")
    if st.session_state.get(memo, (None,))[0] != key:
        st.session_state.pop(memo, None)  # let the old value go before making a new one
        st.session_state[memo] = (key, compute())
    return st.session_state[memo][1]
