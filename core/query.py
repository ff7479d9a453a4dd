"""URL parameters the pages bind their widgets to (`bind="query-params"`), checked before the
widgets are drawn. Pure: the pages pass `st.query_params` in, so this stays Streamlit-free.

Why: Streamlit 1.67's number_input reads a bound value with int(float(value)) and catches only
ValueError / TypeError, so `?seed=inf` or `?layers=1e400` raises an uncaught OverflowError.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def non_finite_numbers(params: Mapping, keys: Iterable[str]) -> list[str]:
    """The keys among `keys` (bound number inputs) whose URL value is not a finite number
    ('inf', '-inf', '1e400', 'nan', 'abc'): the page drops them, so the widget's default is used."""
    bad = []
    for key in keys:
        if key not in params:
            continue
        value = params[key]
        values = value if isinstance(value, (list, tuple)) else [value]
        if not values or not all(_finite(v) for v in values):
            bad.append(key)
    return bad


def number_binds(params: Mapping, keys: Iterable[str]) -> dict[str, dict]:
    """The `bind` keyword of each bound number input for this run: "query-params", or None where
    the URL value is not a finite number. Streamlit seeds a widget from the URL the page was opened
    with, so dropping the value from st.query_params alone does not stop the crash: the page drops
    it (the browser's URL is cleaned) and draws that widget unbound this once, with its default;
    the next run binds it again."""
    bad = set(non_finite_numbers(params, keys))
    return {key: dict(bind=None if key in bad else "query-params") for key in keys}
