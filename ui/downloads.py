"""The Explore page's downloads: the trace as NPZ and CSV, the figure as standalone HTML."""

from __future__ import annotations

import streamlit as st

from core.io.exports import figure_html, trace_npz, trace_table


def trace_downloads(result, layer: int, direction: int, fig, stem: str) -> None:
    """Three buttons; each file is made only when its button is pressed."""
    st.subheader("Downloads")
    npz, csv, html = st.columns(3)
    npz.download_button("Trace (.npz)", lambda: trace_npz(result.trace, tokens=result.tokens),
                        f"{stem}.npz", "application/octet-stream", on_click="ignore")
    csv.download_button("Trace (.csv)", lambda: trace_table(
        result.trace, layer, direction, result.tokens).to_csv(index=False),
                        f"{stem}.csv", "text/csv", on_click="ignore")
    html.download_button("Figure (standalone .html)", lambda: figure_html(fig, stem),
                         f"{stem}.html", "text/html", on_click="ignore")
