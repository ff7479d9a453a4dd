"""Drawing the animated figures, the same way on every page."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from core.figures.player import META_KEY
from core.figures.style import PIXELATED_CSS, PlainFigure, dark_variant, redrawable
from ui.animation import player_toolbar
from ui.state import THEME_REPORTED

#: No Plotly logo; no zoom on scroll (a page scrolls past the chart, it does not zoom it).
#: Streamlit's fullscreen button stays: ui/player.js gives the chart drawn in fullscreen its
#: frames back (without them, ▶ Play did nothing there, nor after it).
CONFIG = {"displaylogo": False, "scrollZoom": False}


def animated_chart(fig: go.Figure, key: str, *, width: str | int = "stretch",
                   height: str | int = "content") -> None:
    """The player's controls (speed, play to a step, a link to this frame; ui/animation.py),
    then the figure (`width` and `height` as `st.plotly_chart` takes them: the page's width
    by default), its maps' pixels kept sharp (units x time maps are sent one pixel per cell;
    the browser must not smooth them when it scales them up)."""
    st.html(f"<style>{PIXELATED_CSS}</style>")
    player_toolbar(key)
    st.plotly_chart(themed(fig, view=tour_step()), theme=None, key=key, config=CONFIG,
                    width=width, height=height)


def tour_step() -> str:
    """The tour step the page shows ("vanishing_gradient/2"), "" outside a tour. The player
    keeps the visitor's cursor through a new figure of the same start step and length (another
    unit, say), but a tour's next step opens where its link does: step 1's last step was kept
    into step 2, which opens at step 0."""
    query = st.query_params
    return f"{query.get('tour')}/{query.get('step')}" if "tour" in query else ""


def dark_page() -> bool:
    """Whether the page is in Streamlit's dark theme. Where the operator's config names a base
    theme (ours: light, .streamlit/config.toml) the page has that one, whatever the visitor's
    system prefers, and they have no other to pick. Where it names none, the page follows the
    visitor's system, which st.context reports reliably only from a session's second run: on
    the first it reported "dark" for a dark system while the page was light, and the chart's
    text came out light on white (Streamlit #11920)."""
    base = st.get_option("theme.base")
    if base in ("light", "dark"):
        return base == "dark"
    if not st.session_state.get(THEME_REPORTED):
        return False
    return getattr(getattr(st.context, "theme", None), "type", "light") == "dark"


def themed(fig: go.Figure, view: str = "") -> go.Figure:
    """The figure as the page sends it: in the page's theme, on a dark page its text and grid
    light and its background the page's (core.figures.style.dark_variant: every figure here
    sets its own colours, theme=None, which left a white box on a dark page); and cheap for
    plotly.js to draw a second time (core.figures.style.redrawable), as Streamlit does.
    `view` names the view for the player's memory of the cursor (`tour_step`)."""
    spec = fig.to_dict()
    meta = spec["layout"].get("meta")
    if view and isinstance(meta, dict) and META_KEY in meta:  # a copy: `fig` may be cached
        spec["layout"]["meta"] = {**meta, META_KEY: {**meta[META_KEY], "view": view}}
    if dark_page():
        spec = dark_variant(spec)
    spec = redrawable(spec)
    return PlainFigure(spec.get("data", []), spec["layout"], spec.get("frames") or [])


def chart(fig: go.Figure, **kwargs) -> None:
    """A still figure (no player) in the page's theme: `st.plotly_chart` with the house's
    settings (theme=None: the figure's own colours; no Plotly logo) and `kwargs`."""
    st.plotly_chart(themed(fig), theme=None, **{"config": {"displaylogo": False}, **kwargs})
