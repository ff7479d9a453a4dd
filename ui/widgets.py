"""Widgets that start from a page's stored choices and write their value back."""

from __future__ import annotations

from typing import Any, Callable, Iterable, MutableMapping

import streamlit as st


def choose(choices: MutableMapping[str, Any], key_prefix: str, widget: Callable, label: str,
           name: str, options: Iterable | None = None, fmt: Callable | None = None, **kwargs):
    """Draw one widget for choice `name`, starting from `choices[name]`; store the result.

    The choices live in a plain dict in the session because Streamlit drops a widget's state
    whenever the widget is not drawn (e.g. the sample seed while the user types text); each
    widget starts from the dict and writes back to it. A stored option that is no longer
    offered falls back to the first option.
    """
    key = f"{key_prefix}{name}"
    if options is not None:
        options = list(options)
        if key not in st.session_state or st.session_state[key] not in options:
            st.session_state.pop(key, None)
            kwargs["index"] = options.index(choices[name]) if choices[name] in options else 0
        value = widget(label, options, key=key, format_func=fmt or str, **kwargs)
    else:
        if key not in st.session_state:
            kwargs["value"] = choices[name]
        value = widget(label, key=key, **kwargs)
    choices[name] = value
    return value
