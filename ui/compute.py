"""Running a page's computation so that bad input never costs the user their view."""

from __future__ import annotations

from typing import Callable, TypeVar

import streamlit as st

from ui.state import page_key

T = TypeVar("T")


def keep_last_good(page: str, compute: Callable[[], T]) -> tuple[T | None, str | None]:
    """(value, None) when `compute()` works, and remember the value as the page's last good
    one; (last good value, message) when it raises. Every failure becomes a message, never a
    traceback; the value is None only when nothing has worked yet in this session."""
    key = page_key(page, "last_good")
    try:
        value = compute()
    except Exception as err:  # noqa: BLE001 - every failure becomes a message
        return st.session_state.get(key), str(err) or type(err).__name__
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
