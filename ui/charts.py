"""Drawing the animated figures, the same way on every page."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from core.figures.style import PIXELATED_CSS
from ui.animation import player_toolbar

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
    st.plotly_chart(fig, theme=None, key=key, config=CONFIG, width=width, height=height)
