"""The Explore page's downloads: the trace as NPZ and CSV, the figure as standalone HTML, and a
slide of it drawn on the server (a PNG at the start step, an animated GIF over a range of
steps at a chosen speed), each carrying the view it shows and named by it
(core.io.exports.TraceView). Every file is made only when its button is pressed."""

from __future__ import annotations

import threading

import streamlit as st

from core.figures.slides import MAX_GIF_STEPS, SCALES, SPEEDS, WIDTH, warm_up
from core.io.exports import (
    explore_slide, explore_view, figure_html, slide_gif, slide_png, trace_npz, trace_table,
)
from core.views.explore import picked_units
from ui.state import page_key
from ui.tours import hidden

# The slide's choices, kept in the session only (they shape a file, not the view).
STEPS_KEY = page_key("explore", "slide_steps")
SPEED_KEY = page_key("explore", "slide_speed")
SCALE_KEY = page_key("explore", "slide_scale")


def trace_downloads(result, state, choice, fig, upload=None, own=None) -> None:
    """Three buttons for the view `state` of `choice` traced as `result` (`upload`: the file,
    for an upload's name; `own`: what a user's own model was fed), then the slide's choices
    and buttons; each file is made only when its button is pressed. None in a focused view
    that hides them (hide=downloads)."""
    if hidden("downloads"):
        return
    view = explore_view(state, choice, result, upload, own)
    stem = view.stem()
    st.subheader("Downloads")
    npz, csv, html = st.columns(3)
    fed = {} if result.values is None else {"inputs": result.values}  # the numbers it read
    npz.download_button("Trace (.npz)", lambda: trace_npz(result.trace, view,
                                                          tokens=result.tokens, **fed),
                        f"{stem}.npz", "application/octet-stream", on_click="ignore", wrap=True)
    csv.download_button("Trace (.csv)", lambda: trace_table(
        result.trace, state.layer, state.direction, result.tokens, view).to_csv(index=False),
                        f"{stem}.csv", "text/csv", on_click="ignore", wrap=True)
    html.download_button("Figure (standalone .html)", lambda: figure_html(fig, view=view),
                         f"{stem}.html", "text/html", on_click="ignore", wrap=True)
    slide_downloads(result, state, view)


def slide_downloads(result, state, view) -> None:
    """The slide (PNG at the start step t) and its animation (GIF over the chosen steps, at
    the chosen speed), at the chosen size, drawn on the server when a button is pressed."""
    _warm_up_once()
    T = int(result.trace.seq_len)
    units, _ = picked_units(state, result.trace)
    steps, speed, size = st.columns([3, 1.2, 1.2])
    start, stop = _step_range(steps, T)
    st.session_state.setdefault(SPEED_KEY, 10)
    per_second = speed.selectbox("Speed (steps/s)", SPEEDS, key=SPEED_KEY)
    st.session_state.setdefault(SCALE_KEY, SCALES[0])
    scale = size.selectbox("Slide width", SCALES, key=SCALE_KEY,
                           format_func=lambda s: f"{WIDTH * s} px",
                           help=f"{' or '.join(f'{s}x' for s in SCALES)} the figure's "
                                f"{WIDTH} px")
    png, gif, note = st.columns(3)
    png.download_button(f"Slide at t = {view.t} (.png)",
                        lambda: slide_png(explore_slide(result, view, units, scale), view),
                        f"{view.slide_stem(scale)}.png", "image/png", on_click="ignore",
                        wrap=True)
    too_long = stop - start + 1 > MAX_GIF_STEPS
    gif.download_button(
        f"Animation, steps {start}–{stop} (.gif)",
        lambda: slide_gif(explore_slide(result, view, units, scale), start, stop, per_second),
        f"{view.animation_stem(start, stop, per_second, scale)}.gif", "image/gif",
        on_click="ignore", disabled=too_long, wrap=True)
    note.caption(f"An animation has at most {MAX_GIF_STEPS} steps: choose fewer."
                 if too_long else "Drawn on the server, without the player's buttons.")


_warming = threading.Lock()
_warmed = False


#: Seconds between a server's first drawn downloads and the slides' warm-up.
SLIDES_WARM_UP_DELAY_S = 5.0


def _warm_up_once() -> None:
    """Import the slides' matplotlib in the background, once per server process, a few
    seconds after the first page has sent its downloads, not on the first press. Not at once:
    the warm-up is 1.5 s of CPU, and the visitor's browser is then still drawing the page
    whose chart has just gone out; on a 2-core machine the two shared the cores, and the first
    page of a freshly started server showed its chart 0.3 s later (benchmarks/ui_speed.py)."""
    global _warmed
    with _warming:
        if _warmed:
            return
        _warmed = True
    later = threading.Timer(SLIDES_WARM_UP_DELAY_S, warm_up)
    later.name, later.daemon = "gatescope-slides-warm-up", True
    later.start()


def _step_range(column, T: int) -> tuple[int, int]:
    """The animation's first and last step, from a range slider kept within 0 .. T - 1 (the
    last choice survives a shorter input, cut to it)."""
    if T == 1:  # a slider needs two ends
        column.caption("Animation: the input has one step (t = 0).")
        return 0, 0
    try:
        start, stop = (int(v) for v in st.session_state.get(STEPS_KEY, ()))
    except (TypeError, ValueError):  # none yet
        start, stop = 0, min(T, MAX_GIF_STEPS) - 1
    start = min(max(start, 0), T - 1)
    stop = min(max(stop, start), T - 1)
    st.session_state[STEPS_KEY] = (start, stop)
    start, stop = column.slider("Animation: steps", 0, T - 1, key=STEPS_KEY)
    return int(start), int(stop)
