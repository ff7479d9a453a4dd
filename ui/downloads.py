"""The Explore page's downloads: the trace as NPZ and CSV, the figure as standalone HTML, each
carrying the view it shows and named by it (core.io.exports.TraceView)."""

from __future__ import annotations

import streamlit as st

from core.io.exports import explore_view, figure_html, trace_npz, trace_table


def trace_downloads(result, state, choice, fig, upload=None) -> None:
    """Three buttons for the view `state` of `choice` traced as `result` (`upload`: the file,
    for an upload's name); each file is made only when its button is pressed."""
    view = explore_view(state, choice, result, upload)
    stem = view.stem()
    st.subheader("Downloads")
    npz, csv, html = st.columns(3)
    npz.download_button("Trace (.npz)", lambda: trace_npz(result.trace, view,
                                                          tokens=result.tokens),
                        f"{stem}.npz", "application/octet-stream", on_click="ignore")
    csv.download_button("Trace (.csv)", lambda: trace_table(
        result.trace, state.layer, state.direction, result.tokens, view).to_csv(index=False),
                        f"{stem}.csv", "text/csv", on_click="ignore")
    html.download_button("Figure (standalone .html)", lambda: figure_html(fig, view=view),
                         f"{stem}.html", "text/html", on_click="ignore")
