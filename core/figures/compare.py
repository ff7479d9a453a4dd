"""Figure builders of the Compare page: pure functions from traces and measurements to Plotly.

`compare_figure` puts the RNN, LSTM and GRU side by side, one column each, driven by ONE time
cursor: the same player as Explore's (core/figures/player.py), with its buttons and slider
placed for three columns. It is built from the house style (core/figures/style.py): the units x
time maps are colour-mapped PNG layout images drawn once (`heatmap_png`), lines are layout paths
(`line_path`), and animation frames carry only what moves with the cursor (each column's cursor
line, its gradient readout and the word under the cursor), never a map. Each column's cells are
drawn by one builder per row: `_input_cell`, `_map_cells`, `_gradient_cell`.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import plotly.colors as pcolors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.engine.analysis import GradientDecay
from core.engine import Trace
from core.figures.readout import READOUT_KEY, MapValues, fits, map_readout
from core.figures.player import (
    Controls, animation_frames, controls, cursor_at, cursor_axis, cursor_trace,
)
from core.figures.style import (
    FONT, GATE_RANGE, GATE_SCALE, SALIENCY_SCALE, SIGNED_RANGE, SIGNED_SCALE, InputSequence,
    PlainFigure, _log10, bar_ticks_x, cell_color, cell_dash, cell_entry, cell_name, colour_bar,
    heatmap_png, line_path, handoff_line, log_range, map_image, padded_range, saliency_strip,
    staged, tick_annotations, token_markers, Stage, bake_template, decade_ticks, subplot_axes,
)

ROWS = ("input", "hidden", "keep", "grad")
ROW_HEIGHTS = (0.45, 1.0, 1.0, 0.85)
#: The player's buttons and slider over three columns, a little slower than Explore's; the
#: "step t = " readout at the slider's right end, clear of the buttons in a narrow window.
CONTROLS = Controls(button_pad=38, slider_x=0.5, slider_len=0.5, slider_pad=22,
                    value_anchor="right", play_ms=60, slow_ms=300, skim_ms=40)


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return "nan"
    if value == 0:
        return "0 (underflow)"
    return f"{value:.1e}".replace("e-0", "e−").replace("e-", "e−").replace("e+0", "e")


def relative_gradient(tr: Trace) -> np.ndarray:
    """norm(d loss / d h_t) of the top layer, forward direction, divided by its value at the
    last step: 1 at the end, and how far back the gradient reaches before it fades. The raw size
    scales with the loss (a confident model's gradients are small everywhere), so raw heights
    across models compare how sure they are, not how far back they learn."""
    g = tr.grad_hidden[-1, 0].astype(np.float64)
    last = g[-1]
    if not (np.isfinite(last) and last > 0):
        return g
    return g / last


def gradient_range(traces: Sequence[Trace]) -> tuple[float, float]:
    """One log10 range for every column's gradient row (relative to each model's last step),
    so the decay compares across cells."""
    lo, hi = log_range(np.concatenate([_log10(relative_gradient(tr)) for tr in traces]), 0.3)
    # Headroom over the top tick: its label (10⁴, taller than 1) ran into the row's title when
    # the gradient rose above its last-step value (an encoder-decoder's, whose last output
    # costs little).
    return lo, hi + 0.08 * (hi - lo)


@dataclass
class _Parts:
    """What the columns add to the figure: traces, layout shapes, images and annotations, and
    which traces move with the cursor."""

    data: list[dict] = field(default_factory=list)
    shapes: list[dict] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    annotations: list[dict] = field(default_factory=list)
    cursors: list[int] = field(default_factory=list)  # trace indices
    readouts: list[int] = field(default_factory=list)
    readout_values: list[tuple[np.ndarray, np.ndarray, float]] = field(default_factory=list)
    words: list[int] = field(default_factory=list)
    maps: list[dict] = field(default_factory=list)  # what each map reads under the pointer
    readout: dict = field(default_factory=dict)  # map_readout's settings for every map

    def add(self, trace: dict) -> int:
        self.data.append(trace)
        return len(self.data) - 1


def compare_figure(traces: Mapping[str, Trace], inp: InputSequence, *, t0: int = 0,
                   titles: Mapping[str, str] | None = None,
                   kinds: Mapping[str, str] | None = None, height: int = 820,
                   handoff: int | None = None, stage: Stage | None = None) -> go.Figure:
    """One column per cell (in the order of `traces`), rows: the input shaded by that cell's
    saliency, the hidden state h, the gate that keeps the old state (LSTM forget f, GRU update
    z; the RNN has none), and norm(d loss / d h_t) on one shared log scale. `kinds` names the
    cell type a column's trace is of where it is not the column's own (a GRU uploaded into the
    LSTM column): its gate row is that type's. Every column reads
    the same input, so all traces must have the same length. The top layer, forward direction,
    is shown. Play / pause / slow buttons and one slider move every column's cursor together.
    `handoff` (encoder-decoders' traces) is the decoders' first step: a dashed line in every
    column marks it. `stage` makes the figure for a projector (presentation mode): its fixed
    design size, text at least its minimum."""
    cells = list(traces)
    if not cells:
        raise ValueError("nothing to compare: no traces")
    lengths = {tr.seq_len for tr in traces.values()}
    if len(lengths) != 1:
        raise ValueError(f"the traces have different lengths {sorted(lengths)}: not the same input")
    T = lengths.pop()
    t0 = int(min(max(t0, 0), T - 1))
    kinds = {cell: (kinds or {}).get(cell, cell) for cell in cells}
    grid = _ColumnGrid(cells, dict(titles or {}), kinds)
    tokens = (list(inp.tokens) + [""] * T)[:T]
    parts = _Parts(annotations=list(grid.layout.get("annotations", [])),
                   readout=_readout_settings(traces, inp, tokens, stage))
    steps = np.arange(T, dtype=np.float64)
    log_g = gradient_range(list(traces.values()))
    for col, cell in enumerate(cells, start=1):
        tr = traces[cell]
        grid.time_axes(col, T)
        _input_cell(grid, parts, col, tr, inp, tokens, steps, t0)
        _map_cells(grid, parts, col, kinds[cell], tr, T)
        _gradient_cell(grid, parts, col, cell, tr, steps, t0, log_g)
        if handoff is not None and 0 < handoff < T:
            # no legend entry: the legend sits over the last column's title (the page's
            # input line says what the dashed line is)
            parts.shapes.append(handoff_line(handoff, grid.axes(len(ROWS), col)[0],
                                             legend=False))
    _colour_bars(parts)
    frames = animation_frames(T, len(parts.data), parts.cursors + parts.readouts + parts.words,
                              lambda t: _moving_at(parts, t, T, tokens))
    layout = grid.layout
    k = 1.0 if stage is None else stage.text_scale
    layout.update(
        font=FONT, height=height if stage is None else stage.height,
        margin=dict(l=round(60 * k), r=round(70 * k), t=round(100 * k), b=round(50 * k)),
        showlegend=True,
        legend=dict(orientation="h", x=1.0, xanchor="right", y=1.0, yanchor="bottom",
                    font=dict(size=12)),
        hovermode="closest", plot_bgcolor="rgba(0,0,0,0)", **controls(T, t0, CONTROLS),
        **cursor_axis())
    layout.update(annotations=parts.annotations, images=parts.images, shapes=parts.shapes)
    layout["meta"][READOUT_KEY] = parts.maps
    if stage is not None:
        layout.update(width=stage.width, autosize=False)
        return PlainFigure(staged(parts.data, stage), staged(layout, stage), frames)
    return PlainFigure(parts.data, layout, frames)


def _readout_settings(traces: Mapping[str, Trace], inp: InputSequence, tokens: list[str],
                      stage: Stage | None) -> dict:
    """`map_readout`'s settings for every map of the figure: the words at the steps, the font
    and whether the values go, decided for all maps at once (two maps a column at most)."""
    return dict(tokens=tokens if inp.values is None and any(tokens) else (),
                font_size=stage.font_size(13) if stage else 13.0,
                send=fits(2 * sum(tr.hidden[-1, 0].size for tr in traces.values())))


def _moving_at(parts: _Parts, t: int, T: int, tokens: list[str]) -> list[dict]:
    """The updates of the moving traces at step t: cursors, then readouts, then words."""
    readouts = [_readout_at(t, shown, g, T, top) for shown, g, top in parts.readout_values]
    words = [{"x": [t], "text": [tokens[t]]}] * len(parts.words)
    return [cursor_at(t)] * len(parts.cursors) + readouts + words


def _readout_at(t: int, shown: np.ndarray, g: np.ndarray, T: int, top: float) -> dict:
    """A gradient readout at step t: the marker on the line and its value, beside it towards
    the middle of the panel: under the marker from `top` up (above it, the panel's edge cut
    the value in half)."""
    vertical = "bottom" if shown[t] >= top else "top"
    return {"x": [t], "y": [float(shown[t])], "text": [_fmt(float(g[t]))],
            "textposition": f"{vertical} {'right' if t < T / 2 else 'left'}"}


@functools.lru_cache(maxsize=16)
def _column_skeleton(n_cols: int, subplot_titles: tuple[str, ...]) -> tuple[dict, dict]:
    """make_subplots' grid of ROWS x n_cols as a plain layout dict, its template written in
    (`bake_template`), and each subplot's axis names; cached per shape and titles.

    make_subplots and its template cost ~18 ms of every Compare figure (a tour's Compare step
    built it each time), and a template sent with the figure made plotly.js lay the whole
    figure out twice (Streamlit hands it a fresh copy, compared by identity)."""
    grid = make_subplots(rows=len(ROWS), cols=n_cols, row_heights=list(ROW_HEIGHTS),
                         vertical_spacing=0.07, horizontal_spacing=0.045,
                         subplot_titles=list(subplot_titles))
    grid.update_layout(template="plotly_white")
    axes = {}
    for row in range(1, len(ROWS) + 1):
        for col in range(1, n_cols + 1):
            axes[(row, col)] = subplot_axes(grid, row, col)
    return bake_template(grid.to_plotly_json()["layout"]), axes


class _ColumnGrid:
    """The grid of ROWS x cells as a plain layout dict, with the subplot titles."""

    def __init__(self, cells: list[str], titles: dict[str, str], kinds: dict[str, str]):
        # The gradient row shares one log scale across the columns, so it has one title, over
        # its first column and free to run on over the others: three copies of it, one per
        # narrow column, ran into each other and into the tick labels at 150% zoom.
        subplot_titles = [_row_title(row, cell, titles, kinds[cell])
                          if row != "grad" or col == 0 else ""
                          for row in ROWS for col, cell in enumerate(cells)]
        layout, self._axes = _column_skeleton(len(cells), tuple(subplot_titles))
        self.layout = copy.deepcopy(layout)
        gradient_title = _row_title("grad", cells[0], titles, kinds[cells[0]])
        first_column_left = self.axis(self.axes(len(ROWS), 1)[0])["domain"][0]
        for ann in self.layout.get("annotations", []):  # subplot titles
            ann["font"] = dict(size=14 if ann["text"].startswith("<b>") else 13, color="#333")
            if ann["text"] == gradient_title:
                ann.update(x=first_column_left, xanchor="left")

    def axes(self, row: int, col: int) -> tuple[str, str]:
        return self._axes[(row, col)]

    def axis(self, name: str) -> dict:
        return self.layout.setdefault(name[0] + "axis" + name[1:], {})

    def time_axes(self, col: int, T: int) -> None:
        """Every row of a column on its bottom row's time axis, labelled there only."""
        bottom_x = self.axes(len(ROWS), col)[0]
        for row in range(1, len(ROWS) + 1):
            xa, _ = self.axes(row, col)
            self.axis(xa).update(range=[-0.5, T - 0.5], showgrid=False, zeroline=False,
                                 showticklabels=row == len(ROWS))
            if xa != bottom_x:
                self.axis(xa)["matches"] = bottom_x
        self.axis(bottom_x).update(title=dict(text="timestep t", standoff=4))


def _row_title(row: str, cell: str, titles: Mapping[str, str], kind: str) -> str:
    """A subplot's title: the cell's name (and its model's title) over its column; the gate
    row's is that of the cell type traced there (`kind`)."""
    if row == "input":
        return f"<b>{cell_name(cell)}</b>" + (f" · {titles[cell]}" if cell in titles else "")
    # a map's title on two lines, its name over its range: one line was wider than a column
    # at 150% zoom, and ran into the next column's title and the colour bar's
    if row == "hidden":
        return "hidden state h<br>(−1 … 1)"
    if row == "keep":
        info = cell_entry(kind)
        return info.keep_label.replace(" (", "<br>(") if info is not None and info.keep_gate \
            else ""
    return "‖∂loss/∂h<sub>t</sub>‖ ÷ its value at the last step (log scale)"


# ---------------------------------------------------------------------------------------------
# One column's rows


def _input_cell(grid: _ColumnGrid, parts: _Parts, col: int, tr: Trace, inp: InputSequence,
                tokens: list[str], steps: np.ndarray, t0: int) -> None:
    """The input, shaded by this cell's saliency (relative to its own largest): the words as
    squares, or the numbers as lines over a saliency strip."""
    ix, iy = grid.axes(1, col)
    T = len(steps)
    sal = np.nan_to_num(tr.grad_input.astype(np.float64), nan=0.0, posinf=0.0)
    sal_max = float(sal.max()) if sal.size and sal.max() > 0 else 1.0
    if inp.values is None:
        show_text = T <= 12
        parts.add(token_markers(
            steps, tokens, sal, sal_max, show_text=show_text, text_size=10,
            marker_size=max(4, min(14, 400 // max(T, 1))),
            colorscale=[list(p) for p in pcolors.get_colorscale(SALIENCY_SCALE)],
            xaxis=ix, yaxis=iy, showlegend=False))
        grid.axis(iy).update(range=[-1.8, 1.8], showticklabels=False, showgrid=False,
                             zeroline=False)
        if not show_text:  # the word under the cursor, moving with it
            parts.words.append(parts.add(dict(
                type="scatter", x=[t0], y=[1.0], xaxis=ix, yaxis=iy, mode="text",
                text=[tokens[t0]], textfont=dict(size=14), textposition="top center",
                # at the first and last steps half the word is beyond the axis: not cut there
                cliponaxis=False, hoverinfo="skip", showlegend=False, name="word")))
        return
    vals = np.asarray(inp.values, dtype=np.float64).reshape(T, -1)[:, :2]
    lo_v, hi_v = padded_range(vals, 0.1)
    for j in range(vals.shape[1]):
        name = inp.value_names[j] if j < len(inp.value_names) else f"x[{j}]"
        path = line_path(steps, vals[:, j], ix, iy, ("#333", "#999")[j], name=name, width=1.5)
        path["showlegend"] = False  # the row's title names the lines
        parts.shapes.append(path)
    parts.images.append(saliency_strip(sal, sal_max, lo_v, hi_v, ix, iy, min_width=400))
    grid.axis(iy).update(range=[lo_v, hi_v], showgrid=False, zeroline=False, nticks=3)


def _map_cells(grid: _ColumnGrid, parts: _Parts, col: int, cell: str, tr: Trace, T: int) -> None:
    """h and the gate that keeps the old state (registry: `Cell.keep_gate`) as units x time
    maps on fixed colour scales, drawn once as images; a vanilla RNN says why it has none."""
    H = tr.hidden_size
    info = cell_entry(cell)
    maps = [(2, tr.hidden[-1, 0], SIGNED_SCALE, SIGNED_RANGE)]
    if info is not None and info.keep_gate in tr.gates:
        maps.append((3, tr.gates[info.keep_gate][-1, 0], GATE_SCALE, GATE_RANGE))
    for row, z, scale, (lo, hi) in maps:
        mx, my = grid.axes(row, col)
        parts.images.append(map_image(heatmap_png(np.asarray(z).T, lo, hi, scale, min_width=400),
                                      T, H, mx, my, H - 0.5))
        name = "hidden state h" if row == 2 else info.gate(info.keep_gate).label.split(" (")[0]
        parts.maps.append(map_readout([MapValues(f"{cell_name(cell)} · {name}", np.asarray(z).T)],
                                      x=mx, y=my, **parts.readout))
        grid.axis(my).update(range=[-0.5, H - 0.5], showgrid=False, zeroline=False,
                             **({"title": dict(text="unit", standoff=2)} if col == 1 else {}))
    if len(maps) == 1:  # the vanilla RNN: say why the row is empty
        mx, my = grid.axes(3, col)
        grid.axis(mx)["visible"] = False
        grid.axis(my).update(visible=False, range=[0, 1])
        parts.annotations.append(dict(
            x=(T - 1) / 2, y=0.5, xref=mx, yref=my, showarrow=False,
            text=info.keep_label if info is not None else "", font=dict(size=13, color="#666")))


def _gradient_cell(grid: _ColumnGrid, parts: _Parts, col: int, cell: str, tr: Trace,
                   steps: np.ndarray, t0: int, log_range_g: tuple[float, float]) -> None:
    """norm(d loss / d h_t) relative to its value at the last step, on the shared log scale, the
    column's cursor, and a readout of the value at the cursor that moves with it."""
    gx, gy = grid.axes(len(ROWS), col)
    T = len(steps)
    g = relative_gradient(tr)
    color = cell_color(cell)
    # plotly.js 4 reads a path shape on a log axis in data units (not log10 like a range)
    path = line_path(steps, np.where(g > 0, g, np.nan), gx, gy, color, name=cell_name(cell))
    path["showlegend"] = False
    parts.shapes.append(path)
    grid.axis(gy).update(type="log", range=list(log_range_g), exponentformat="power",
                         tickvals=decade_ticks(*log_range_g), showgrid=True, gridcolor="#e6e6e6")
    parts.cursors.append(parts.add(cursor_trace(t0, xaxis=gx, name="cursor")))
    floor = 10 ** (log_range_g[0] + 0.15)
    shown = np.where(np.isfinite(g) & (g > 0), g, floor)
    top = 10 ** (log_range_g[1] - 0.25 * (log_range_g[1] - log_range_g[0]))
    parts.readout_values.append((shown, g, top))
    first = _readout_at(t0, shown, g, T, top)
    parts.readouts.append(parts.add(dict(
        type="scatter", xaxis=gx, yaxis=gy, mode="markers+text", **first,
        textfont=dict(size=13, color=color),
        marker=dict(size=9, color=color, line=dict(width=1, color="#fff")),
        hoverinfo="skip", showlegend=False, name="readout")))


def _colour_bars(parts: _Parts) -> None:
    """Colour bars for h and the gates (layout images with tick labels), right of the last
    column: in the margin, so their labels are annotations (an axis cannot be placed there)."""
    for k, (scale, (lo, hi), label) in enumerate(((SIGNED_SCALE, SIGNED_RANGE, "h"),
                                                  (GATE_SCALE, GATE_RANGE, "gates"))):
        image, title, ticks = colour_bar(scale, lo, hi, label, x=1.008, top=0.80 - 0.28 * k,
                                         length=0.2, width=0.01)
        parts.images.append(image)
        parts.annotations += [title, *tick_annotations(ticks, bar_ticks_x(1.008, 0.01))]


# ---------------------------------------------------------------------------------------------
# Figures across cells: gradient decay, accuracy by distance


def gradient_overlay_figure(decays: Mapping[str, GradientDecay], *, height: int = 420
                            ) -> go.Figure:
    """norm(d loss / d h_t) relative to its value at the last step, against distance from the
    last step, one line per cell, on a log scale, with each cell's fitted decay (dashed), its
    factor per step in the legend, and where a curve stops falling (its floor, not fitted)."""
    fig = go.Figure()
    positive = [_decay_lines(fig, cell, decay) for cell, decay in decays.items()]
    values = np.concatenate(positive) if positive else np.array([])
    if values.size:
        lo, hi = math.floor(math.log10(values.min())) - 0.3, math.ceil(math.log10(values.max())) + 0.3
    else:
        lo, hi = -1.0, 1.0
    fig.update_layout(
        template="plotly_white", font=FONT, height=height, margin=dict(l=70, r=20, t=40, b=50),
        legend=dict(orientation="h", x=0.0, xanchor="left", y=1.01, yanchor="bottom",
                    font=dict(size=13)),
        xaxis=dict(title="distance from the last step (steps back in time)", rangemode="tozero"),
        yaxis=dict(title="‖∂loss/∂h<sub>t</sub>‖ ÷ at the last step (log)", type="log",
                   range=[lo, hi], exponentformat="power"),
    )
    return fig


def _decay_legend(name: str, decay: GradientDecay) -> str:
    """"LSTM: ×0.970 per step, half-life 22.8 steps"."""
    if not math.isfinite(decay.per_step):
        return f"{name}: too few steps to fit"
    half = decay.half_life
    half_text = (f", half-life {half:.1f} steps" if math.isfinite(half)
                 else ", grows" if decay.per_step > 1 else "")
    return f"{name}: ×{decay.per_step:.3f} per step{half_text}"


def _decay_lines(fig: go.Figure, cell: str, decay: GradientDecay) -> np.ndarray:
    """One cell's measured norms (in the cell's line style), its fit (thin, long dashes and
    dots) and where the norm underflowed to zero.
    Returns the positive norms, for the axis range."""
    color, name = cell_color(cell), cell_name(cell)
    norm = np.asarray(decay.norm, dtype=np.float64)
    scale = norm[0] if len(norm) and np.isfinite(norm[0]) and norm[0] > 0 else 1.0
    norm = norm / scale
    shown = np.where(np.isfinite(norm) & (norm > 0), norm, np.nan)
    fig.add_trace(go.Scatter(x=decay.distance, y=shown, mode="lines",
                             name=_decay_legend(name, decay), legendgroup=cell,
                             line=dict(color=color, width=2.5, dash=cell_dash(cell)),
                             hovertemplate=f"{name}<br>%{{x}} steps from the end: "
                                           "%{y:.2e}<extra></extra>"))
    if math.isfinite(decay.per_step) and decay.span >= 2:
        fitted = decay.fitted() / scale
        upto = int(decay.distance[np.isfinite(shown)].max()) if np.isfinite(shown).any() else 0
        if decay.floor_from is not None:  # the fit covers the falling part only
            upto = min(upto, decay.floor_from - 1)
        keep = decay.distance <= upto
        fig.add_trace(go.Scatter(x=decay.distance[keep], y=fitted[keep], mode="lines",
                                 name=f"{name} fit", legendgroup=cell, showlegend=False,
                                 line=dict(color=color, width=1.5, dash="longdashdot"),
                                 hoverinfo="skip"))
    if decay.floor_from is not None and decay.floor is not None:
        level = decay.floor / scale
        fig.add_trace(go.Scatter(
            x=[decay.floor_from, int(decay.distance[-1])], y=[level, level], mode="lines",
            name=f"{name} floor", legendgroup=cell, showlegend=False,
            line=dict(color=color, width=1, dash="dot"), hoverinfo="skip"))
        fig.add_annotation(x=decay.floor_from, y=math.log10(level), yshift=12, xanchor="left",
                           text=f"flat from here ({_fmt(level)}): not fitted", showarrow=False,
                           font=dict(size=12, color=color))
    vanished = ~np.isfinite(shown)
    if vanished.any() and np.isfinite(shown).any():
        first = int(decay.distance[vanished][0])
        fig.add_annotation(x=first, y=math.log10(np.nanmin(shown)), text="→ 0 (underflow)",
                           showarrow=False, xanchor="left", yshift=-12,
                           font=dict(size=12, color=color))
    return shown[np.isfinite(shown)]


#: (width, dash, marker, marker size) of the 1st, 2nd, 3rd line: wide under narrow, so lines on
#: top of each other all show.
LINE_STYLES = ((7.0, "solid", "circle", 11), (4.5, "solid", "square", 8), (2.0, "dash", "diamond", 5))


def accuracy_distance_figure(rows: Mapping[str, Sequence[Mapping]], *,
                             chance: float | None = 0.5, height: int = 380,
                             distance: str = "words from subject to verb",
                             trained_up_to: int | None = None) -> go.Figure:
    """Accuracy against distance (`distance` names it: subject to verb on agreement), one line
    per cell, on a fixed 0–1 scale with chance marked. Lines that coincide (an LSTM and a GRU
    both at 100%) stay visible: each later line is thinner and dashed over the wider one
    before it, with its own marker. Agreement's rows count the attractors between subject and
    verb, sentiment's the asides in the tail: the hover says how many on average."""
    fig = go.Figure()
    first = next(iter(next(iter(rows.values()), [])), {})
    between = next((key for key in ("attractors", "asides") if key in first), None)
    detail = (f"<br>%{{customdata[0]}} sentences, %{{customdata[1]:.1f}} {between} on average"
              if between else "")
    for k, (cell, points) in enumerate(rows.items()):
        width, dash, symbol, size = LINE_STYLES[k % len(LINE_STYLES)]
        fig.add_trace(go.Scatter(
            x=[p["distance"] for p in points], y=[p["accuracy"] for p in points],
            mode="lines+markers", name=cell_name(cell),
            line=dict(color=cell_color(cell), width=width, dash=dash),
            marker=dict(size=size, symbol=symbol),
            customdata=[[p.get("n", 0), p.get(between, 0.0)] for p in points],
            hovertemplate=(f"{cell_name(cell)}<br>distance %{{x}}: accuracy "
                           f"%{{y:.0%}}{detail}<extra></extra>")))
    if chance is not None:
        fig.add_hline(y=chance, line=dict(color="#6b6f7b", dash="dot"),
                      annotation_text="chance", annotation_position="bottom right")
    if trained_up_to is not None:  # beyond it, what the model does is its own generalisation
        fig.add_vline(x=trained_up_to, line=dict(color="#6b6f7b", dash="dash"),
                      annotation_text="trained up to here", annotation_position="left")
    fig.update_layout(
        template="plotly_white", font=FONT, height=height, margin=dict(l=70, r=20, t=30, b=50),
        legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom"),
        xaxis=dict(title=distance, rangemode="tozero"),
        # 0% lifted off the x axis: at the corner it would touch the distance axis's 0
        yaxis=dict(title="held-out accuracy", range=[-0.06, 1.03], tickformat=".0%"),
    )
    return fig


def still_on_stage(fig: go.Figure, stage: Stage) -> go.Figure:
    """A still chart made for a projector: drawn at the stage's design size (which the browser
    scales to the window, as the animated figure's), its text at least the stage's minimum and
    its margins grown with the text."""
    made = fig.to_plotly_json()
    margin = made["layout"].get("margin", {})
    layout = {**staged(made["layout"], stage), "width": stage.width, "height": stage.height,
              "autosize": False,
              "margin": {side: round(margin.get(side, 40) * stage.text_scale)
                         for side in ("l", "r", "t", "b")}}
    return go.Figure(data=staged(made["data"], stage), layout=layout)

