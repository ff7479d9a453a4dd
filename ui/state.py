"""Every page's state, one way: choices seeded from the URL, bound to widgets, written back.

A page declares its choices as a `core.views.state.PageState` (a frozen dataclass whose fields
say how each URL parameter parses) and keeps them with `PageChoices`:

    choices = PageChoices(ExploreState, "explore")   # seeded from the URL on the first run
    choices.widget(st.selectbox, "Task", "task", TASKS, lambda n: TASKS[n].title)
    state = choices.state()                          # typed, frozen, normalised
    choices.publish(state)                           # the URL now reproduces this view

The choices live in a plain dict in the session because Streamlit drops a widget's state
whenever the widget is not drawn (the sample seed while the user types text, say); each widget
starts from the dict and writes back to it. Widgets are never bound to query parameters
(`bind="query-params"`): a bound widget stops `st.switch_page` from clearing the URL ("Cannot
clear query parameters ... bound to widgets"), which broke every "Open in Explore" link.

Every session-state key the app uses is named here, once.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Callable, Generic, Iterable, TypeVar

import streamlit as st

from core.tours import PRESENTATION_PARAMS
from core.views.state import PageState

State = TypeVar("State", bound=PageState)

# --- session-state keys shared between pages ---------------------------------------------------
#: label -> core.training.loop.TrainResult: the models this browser session trained (Train
#: fills it; Explore and Compare open them).
TRAINED = "gatescope.trained"
#: The label of a trained model that the Train page asks Explore (or Compare) to open.
OPEN_IN_EXPLORE = "gatescope.explore.open"
OPEN_IN_COMPARE = "gatescope.compare.open"
#: Whether the browser was sent the Plotly preload on this session's first run (app.py).
PRELOAD_SENT = "gatescope.preload_sent"
#: True from a session's second run on: st.context's theme is the page's from then (ui/charts.py)
THEME_REPORTED = "gatescope.theme_reported"


def page_key(page: str, what: str) -> str:
    """The session-state key of something one page keeps: "gatescope.<page>.<what>"."""
    return f"gatescope.{page}.{what}"


def widget_key(page: str, name: str) -> str:
    """The widget key of page `page`'s choice `name` ("explore_task"): the CSS class
    st-key-explore_task."""
    return f"{page}_{name}"


def forget_widgets(page: str, state_type: type[PageState]) -> None:
    """Drop what the session holds for page `page`'s choice widgets (`widget_key`, and the
    length slider's key per task), so that each is drawn anew from its stored choice.

    For a run that does not draw them (a presented page's sidebar), and for a page whose
    choices are set from elsewhere (a tour's step). Streamlit keeps a widget's value through a
    run that ends early (`st.stop`, as a presented page does) without drawing it, but the
    browser lets the widget go: drawn again, it showed its default (an RNN) while the page read
    the kept value (a GRU)."""
    from core.tasks import ALL_TASKS  # not at the top: app.py imports this before torch

    for choice in fields(state_type):
        key = widget_key(page, choice.name)
        st.session_state.pop(key, None)
        for task in ALL_TASKS:
            st.session_state.pop(f"{key}_{task}", None)


class PageChoices(Generic[State]):
    """One page's choices: a dict in the session, seeded from the URL on the page's first run."""

    def __init__(self, state_type: type[State], page: str):
        self.state_type = state_type
        self.page = page
        key = page_key(page, "choices")
        if key not in st.session_state:
            st.session_state[key] = state_type.from_query(st.query_params.to_dict()).as_dict()
            st.session_state[page_key(page, "from_link")] = bool(st.query_params.to_dict())
        self.values: dict[str, Any] = st.session_state[key]

    @property
    def from_link(self) -> bool:
        """Whether the page was first opened with choices in its URL (a prepared link): then it
        opens exactly as prepared, without playing by itself."""
        return bool(st.session_state.get(page_key(self.page, "from_link")))

    def widget_key(self, name: str) -> str:
        """The widget key of choice `name` (`widget_key`)."""
        return widget_key(self.page, name)

    def widget(self, widget: Callable, label: str, name: str, options: Iterable | None = None,
               fmt: Callable | None = None, *, key: str | None = None, **kwargs):
        """Draw one widget for choice `name`, starting from the stored value; store the result.
        A stored option that is no longer offered falls back to the first option."""
        key = key or self.widget_key(name)
        if options is not None:
            options = list(options)
            if key not in st.session_state or st.session_state[key] not in options:
                st.session_state.pop(key, None)
                stored = self.values[name]
                kwargs["index"] = options.index(stored) if stored in options else 0
            value = widget(label, options, key=key, format_func=fmt or str, **kwargs)
        else:
            if key not in st.session_state:
                kwargs["value"] = self.values[name]
            value = widget(label, key=key, **kwargs)
        self.values[name] = value
        return value

    def set(self, **values) -> None:
        """Change choices from code (a preset, a model sent from another page): the widgets
        start from the new values on this run."""
        for name, value in values.items():
            self.values[name] = value
            st.session_state.pop(self.widget_key(name), None)

    def held(self, *names: str) -> None:
        """Take choices `names` from their widgets as they stand, before the widgets are drawn
        on this run (a page that draws them after what depends on them)."""
        for name in names:
            if (key := self.widget_key(name)) in st.session_state:
                self.values[name] = st.session_state[key]

    def clamp(self, **highest: int) -> None:
        """Keep whole-number choices within what the data at hand has (a unit, a step): a
        stored value, or a widget's, beyond `highest[name]` becomes that."""
        for name, high in highest.items():
            self.values[name] = min(self.values[name], high)
            key = self.widget_key(name)
            if st.session_state.get(key, 0) > high:
                st.session_state[key] = high

    def state(self) -> State:
        """The typed, normalised state of the stored choices."""
        return self.state_type().updated(self.values)

    def publish(self, state: State) -> None:
        """Put `state` in the URL (defaults left out), so a link reproduces this view; a tour's
        and a focused view's parameters (tour, step, hide: core/tours.py) stay in it."""
        shown = st.query_params.to_dict()
        query = state.to_query() | {k: v for k, v in shown.items() if k in PRESENTATION_PARAMS}
        if shown != query:
            st.query_params.from_dict(query)
