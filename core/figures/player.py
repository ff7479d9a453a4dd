"""The one animation player of every animated figure: Play / Pause / Slow / ×10 buttons, a
slider, one frame per step, and the time cursor(s) on a hidden axis.

    menus = controls(T, t0)                       # {"updatemenus": [...], "sliders": [...]}
    data.append(cursor_trace(t0))                 # a red line over the whole plot height
    layout.update(menus, **cursor_axis())
    frames = animation_frames(T, len(data), moving, lambda t: [cursor_at(t), ...])

The browser-side code (ui/player.js, the e2e tests, benchmarks/ui_speed.py) presses the
buttons by index, in the order of `BUTTON_LABELS`, finds the cursor on axis `CURSOR_AXIS`, and
reads the figure's start step and number of steps from the layout's `meta` (`player_meta`).
In the app, ▶ Play plays at the visitor's speed (`SPEED_MIN` .. `SPEED_MAX` steps per second,
`SPEED_DEFAULT` at first, `speed=` in a link) in the browser; the buttons' own durations are
what a downloaded standalone figure plays at.

Why it is built the way it is (measured in Chromium, see benchmarks/ui_speed.py):

- Frames carry only what changes with the time cursor (`redraw: False`), never a map: maps are
  layout images and lines layout paths, which frames never touch.
- Every trace is listed in every frame, static ones with an empty update, because plotly.js
  drops a scatter trace a frame leaves out.
- The slider has at most `MAX_SLIDER_STEPS` stops labelled with the bare step number (see
  `slider`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from core.figures.style import CURSOR_COLOR, FONT, MAX_SLIDER_STEPS

#: The buttons, in the order the browser-side code presses them by index.
BUTTON_LABELS = ("▶ Play", "❚❚ Pause", "Slow", "×10 from t=0")
#: A hidden y axis over the whole plot height that the cursor lines use.
CURSOR_AXIS = "y99"
#: The frame group "×10" plays: every tenth step.
SKIM_GROUP = "every10"
#: The layout's `meta` entry that tells the browser-side player about the figure.
META_KEY = "gatescope_player"
#: ▶ Play's speed in the app, steps per second: a continuous control between these, on a log
#: scale (0.5: one step every 2 s, for talking over each step; 60: a long sequence in seconds).
SPEED_MIN = 0.5
SPEED_MAX = 60.0
#: About what ▶ Play showed before its speed could be set (20 ms a frame, which plotly.js's
#: animation loop drew at 30-35 frames/s).
SPEED_DEFAULT = 30.0
#: The URL parameter of a link's speed ("Copy link to this frame" writes it).
SPEED_PARAM = "speed"


@dataclass(frozen=True)
class Controls:
    """Where the buttons and the slider sit (paper x, px of padding under them) and how fast
    the buttons play (ms per frame). The defaults are the Explore figure's."""

    button_pad: int = 28  # px between the buttons and the plot
    slider_x: float = 0.36
    slider_len: float = 0.3
    slider_pad: int = 12  # px between the slider and the plot
    value_anchor: str | None = "right"  # the "step t = " readout's anchor (None: plotly's)
    play_ms: int = 20
    slow_ms: int = 250
    skim_ms: int = 20


def controls(T: int, t0: int, where: Controls = Controls()) -> dict:
    """The layout's `updatemenus` (the four buttons), `sliders` (one slider) and `meta` (what
    the browser-side player needs to know) for T steps, starting at step `t0`."""
    return dict(updatemenus=[buttons(where)], sliders=[slider(T, t0, where)],
                meta=player_meta(T, t0))


def player_meta(T: int, t0: int) -> dict:
    """`{META_KEY: {"t0": t0, "steps": T}}`, the layout's `meta`.

    The browser needs the figure's own start step to tell a redraw of the same view (keep the
    visitor's cursor where it is) from a new start step asked for in the sidebar (go there).
    The slider cannot tell it: plotly.js writes the slider's `active` into the layout as the
    cursor moves, and a redraw (Streamlit's fullscreen) reads it back."""
    return {META_KEY: {"t0": int(t0), "steps": int(T)}}


def parse_speed(raw: object) -> float | None:
    """A link's `speed=` in steps per second, or None when it is not a finite number within
    `SPEED_MIN` .. `SPEED_MAX` (the player then starts at `SPEED_DEFAULT`)."""
    try:
        value = float(str(raw).strip())
    except ValueError:
        return None
    if not math.isfinite(value) or not SPEED_MIN <= value <= SPEED_MAX:
        return None
    return value


def _animate(label: str, duration: int, group: str | None = None) -> dict:
    return dict(label=label, method="animate",
                args=[group, dict(frame=dict(duration=duration, redraw=False),
                                  transition=dict(duration=0), fromcurrent=True,
                                  mode="immediate")])


def buttons(where: Controls = Controls()) -> dict:
    """Play, Pause, Slow and ×10 (every tenth step), in `BUTTON_LABELS`' order."""
    play, pause, slow, skim = BUTTON_LABELS
    return dict(
        type="buttons", direction="left", showactive=True, x=0.0, y=1.0, xanchor="left",
        yanchor="bottom", pad=dict(t=0, b=where.button_pad), font=dict(size=14),
        buttons=[
            _animate(play, where.play_ms),
            dict(label=pause, method="animate",
                 args=[[None], dict(frame=dict(duration=0, redraw=False),
                                    transition=dict(duration=0), mode="immediate")]),
            _animate(slow, where.slow_ms),
            # Plotly ignores `fromcurrent` for a group, so this skim starts from t = 0.
            _animate(skim, where.skim_ms, SKIM_GROUP),
        ])


def slider_stops(T: int, t0: int) -> list[int]:
    """The steps the slider stops at: at most about `MAX_SLIDER_STEPS`, with t0 and T - 1.

    Plotly redraws every slider step on every animation frame (measured: 1,000 steps halve the
    frame rate), and draws and lays out each one on every new figure (100 steps: ~20 ms of a
    change). At most 50 steps, 6 px apart on a 300 px slider, which is as fine as a mouse
    scrubs anyway; Play and the step buttons still visit every step."""
    stride = max(1, math.ceil(T / MAX_SLIDER_STEPS))
    return sorted(set(range(0, T, stride)) | {t0, T - 1})  # the start step is a stop


def slider(T: int, t0: int, where: Controls = Controls()) -> dict:
    """The slider over `slider_stops`, on the stop nearest `t0`.

    Step labels are the bare step number. plotly.js measures every step's label (twice, for
    the tick and the current value) with a forced browser layout each, but caches the sizes
    by text: "t · token" labels were new text on every change of input (about 400 forced
    layouts, ~100 ms at T=200), plain numbers are measured once per page. The token at t is
    on the figure itself (Explore: the diagram's x_t node and the input row's hover)."""
    stops = slider_stops(T, t0)
    active = min(range(len(stops)), key=lambda i: abs(stops[i] - t0))
    value = dict(prefix="step t = ", font=dict(size=15, color="#1f2430"))
    if where.value_anchor is not None:
        value["xanchor"] = where.value_anchor  # Explore: clear of the buttons
    return dict(
        active=active, x=where.slider_x, len=where.slider_len, y=1.0, yanchor="bottom",
        pad=dict(t=0, b=where.slider_pad), currentvalue=value, transition=dict(duration=0),
        font=dict(size=1, color="rgba(0,0,0,0)"), tickcolor="rgba(0,0,0,0)", ticklen=0,
        minorticklen=0,
        steps=[dict(method="animate", label=str(t),
                    args=[[str(t)], dict(mode="immediate", frame=dict(duration=0, redraw=False),
                                         transition=dict(duration=0))])
               for t in stops])


def cursor_trace(t0: int, xaxis: str = "x", name: str | None = None) -> dict:
    """The time cursor: a vertical line at `t0` over the whole plot height (axis
    `CURSOR_AXIS`), on the time axis `xaxis`. Frames move it with `cursor_at`."""
    trace = dict(type="scatter", x=[t0, t0], y=[0, 1], mode="lines", xaxis=xaxis,
                 yaxis=CURSOR_AXIS, line=dict(color=CURSOR_COLOR, width=2), hoverinfo="skip",
                 showlegend=False)
    if name is not None:
        trace["name"] = name
    return trace


def cursor_axis(ticks: Sequence[tuple[float, str]] = (), x: float = 0.0) -> dict:
    """The layout entry of the cursor's axis: the whole plot height, 0 .. 1, the paper's own
    coordinates. Hidden; or, given `ticks` (paper y and text), showing them as its tick labels
    at paper x `x` (0 .. 1: an axis cannot be placed in the margin): the colour bars' labels
    (`core.figures.style.colour_bar`).

    One axis's tick labels rather than an annotation each: plotly.js lays every annotation out
    on its own, and the explorer's 18 bar labels were about 10 ms of each draw of its figure
    (measured in the page at T = 200). A tick label is also centred on its value, as a bar's
    end labels should be."""
    if not 0 <= x <= 1:  # plotly.js would draw the labels at the plot's left edge instead
        raise ValueError(f"an axis's position is within the plot's width (0 .. 1), not {x}")
    axis = dict(domain=[0, 1], range=[0, 1], anchor="free", position=x, visible=bool(ticks),
                fixedrange=True)
    if ticks:
        axis.update(side="right", tickvals=[y for y, _ in ticks],
                    ticktext=[text for _, text in ticks],
                    tickfont=dict(size=11, color=FONT["color"]), ticks="", ticklabelstandoff=0,
                    showline=False, showgrid=False, zeroline=False, automargin=False)
    return {"yaxis" + CURSOR_AXIS[1:]: axis}


def cursor_at(t: int) -> dict:
    """A cursor trace's update in the frame of step t."""
    return {"x": [t, t]}


def animation_frames(T: int, n_traces: int, moving: Sequence[int],
                     updates: Callable[[int], list[dict]]) -> list[dict]:
    """One frame per step, named str(t), every tenth in the group `SKIM_GROUP`.

    `updates(t)` gives the updates of the `moving` traces, in their order; every other trace
    is listed with an empty update (plotly.js drops a scatter trace a frame leaves out)."""
    static = [i for i in range(n_traces) if i not in moving]
    order = static + list(moving)
    frames = []
    for t in range(T):
        frame = {"name": str(t), "data": [{}] * len(static) + list(updates(t)), "traces": order}
        if t % 10 == 0:
            frame["group"] = SKIM_GROUP
        frames.append(frame)
    return frames
