"""Start loading Streamlit's Plotly chart code in the browser before the first chart arrives."""

from __future__ import annotations

import functools
from pathlib import Path

import streamlit as st

from ui.hidden import hidden_html


@functools.lru_cache(maxsize=1)
def _chunk() -> str | None:
    """Streamlit's Plotly chunk under static/js/ (its name carries a build hash), if found."""
    folder = Path(st.__file__).parent / "static" / "static" / "js"
    found = sorted(folder.glob("PlotlyChart.*.js"))
    return found[0].name if len(found) == 1 else None


def preload_plotly() -> None:
    """Streamlit fetches its ~4.7 MB Plotly chunk only when the first chart element arrives,
    i.e. after the server has traced and built the figure. Importing it from the page's first
    element lets the browser fetch and compile it while the server works (cold start). The
    browser's module map makes the chart's own later import the same, loaded module. Nothing
    happens when the chunk cannot be found (another Streamlit build layout). Drawn on every
    run, so that the page's layout never shifts; importing a loaded module again is free."""
    name = _chunk()
    if name is None:
        return
    hidden_html("gatescope_preload", f"""<script>
      (function () {{
        const find = d => d.querySelector('script[src*="/static/js/"]');
        const own = find(document) || find(window.parent.document);
        if (own) {{ import(own.src.replace(/[^/]*$/, '{name}')).catch(() => {{}}); }}
      }})();
    </script>""")
