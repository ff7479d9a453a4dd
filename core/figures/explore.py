"""The Explore figure: every view of one trace in ONE animated figure, so that one play button and
one slider (core/figures/player.py) drive every view in the browser, with no round trip to the
server.

Left column, on one shared time axis, one row builder each: the input shaded by saliency
(`_input_row`), the units x time maps (`_maps_row`, with `_colour_bars`), the gradient norms
(`_gradient_row`) and the picked units (`_units_row`). Right column: the cell diagram and
PyTorch's equations (core/figures/diagram.py). Maps are PNG layout images and lines layout paths
(core/figures/style.py); frames carry only the cursor and the diagram's colours and numbers.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.cells import cell_info
from core.engine import Trace
from core.figures.diagram import cell_panel
from core.figures.player import animation_frames, controls, cursor_at, cursor_axis, cursor_trace
from core.figures.readout import READOUT_KEY, MapValues, map_readout
from core.figures.style import (
    FONT, GATE_RANGE, GATE_SCALE, MARGIN, PALETTE, SALIENCY_SCALE, SIGNED_RANGE, SIGNED_SCALE,
    TITLE_FONT, InputSequence, PlainFigure, _f32, _log10, _num, _scale_list, bake_template,
    subplot_axes, bar_ticks_x, cell_range, clipped_note, clipped_share, colour_bar, heatmap_png,
    line_path, log_range, map_image, padded_range, handoff_line, saliency_strip, staged, token_markers, Stage,
    STAGE, DASHES, OKABE_ITO,
)
from core.limits import FLOAT32_MAX

#: The left and right columns' shares of the plot's width (make_subplots' 0.68 and 0.32 of
#: what its horizontal spacing of 0.1 leaves).
LEFT_COLUMN = 0.68 * (1 - 0.1)
RIGHT_COLUMN = 0.32 * (1 - 0.1)
#: The narrowest a page's figure is in the windows the readability rule covers: 820 px at
#: 1280 x 720 with the sidebar open, and 821 at 150% zoom of it, where the sidebar starts
#: folded (ui/hidden.py). Its text is laid out for that width: the input row's words and the
#: right column's equations (with the sidebar opened again at 150% zoom the figure is 521 px,
#: and they may not fit).
NARROWEST_CHART_PX = 820
#: The width of a character of the equations and their numbers, per px of their size (measured:
#: lines of up to 36 characters, subscripts counted at 0.7, fit the 233 px of that figure's
#: right column at 13 px).
EQUATION_CHAR_WIDTH = 0.5
#: The input row's width in that figure (453 px, as measured at 1280 x 720; 845 at 1920 x 1080).
#: A sentence's words are written out only where they fit there.
WORDS_ROW_PX = LEFT_COLUMN * (NARROWEST_CHART_PX - MARGIN["l"] - MARGIN["r"])
#: The most steps whose words the input row writes out (a page's figure; a stage's fewer).
SHOW_WORDS = 30
#: The width of a character of the input row's words, per px of their size (Open Sans,
#: generous: its lower-case letters average about 0.52).
CHAR_WIDTH = 0.56


def words_fit(tokens: list[str], row_px: float, text_px: float, gap_px: float = 6.0) -> bool:
    """Whether `tokens`, one per step across `row_px`, written alternately above and below the
    row, clear their neighbours on the same side (two steps away) by `gap_px`."""
    room = 2 * row_px / max(len(tokens), 1)
    widths = [len(t) * CHAR_WIDTH * text_px for t in tokens]
    return all((a + b) / 2 + gap_px <= room for a, b in zip(widths, widths[2:])) and \
        all(w <= room for w in widths)


# Rows of the left column; the right column (the cell panel) spans them all.
R_INPUT, R_MAPS, R_GRAD, R_UNITS = 1, 2, 3, 4
#: The other layers' gradient lines in a stacked network's gradient row.
DEPTH_COLOURS = tuple(OKABE_ITO[name] for name in ("orange", "reddish purple", "sky blue",
                                                   "black"))


def rank_units(tr: Trace, layer: int, direction: int, how: str, k: int = 3) -> list[int]:
    """The units to plot: "most active" (largest mean |h|) or "most variable" (largest std of h)."""
    h = tr.hidden[layer, direction]  # (T, H)
    if how == "most active":
        score = np.nanmean(np.abs(h), axis=0)
    elif how == "most variable":
        score = np.nanstd(h, axis=0)
    else:
        raise ValueError(f"unknown ranking {how!r}")
    score = np.nan_to_num(score, nan=-1.0)
    return [int(u) for u in np.argsort(-score, kind="stable")[:k]]


def map_rows(tr: Trace) -> list[tuple[str, str, str, tuple[float, float]]]:
    """(key, title, colour scale, range) of every units x time map, in display order."""
    # a relu RNN's h is not bounded by 1: its map says how much of it is drawn clipped
    beyond = clipped_note(clipped_share(tr.hidden, SIGNED_RANGE[1]))
    rows = [("hidden", f"hidden state h (−1 … 1{beyond})", SIGNED_SCALE, SIGNED_RANGE)]
    if tr.cell_type == "lstm":
        lo, hi = cell_range(tr.cell)
        note = clipped_note(clipped_share(tr.cell))
        rows.append(("c", f"cell state c (fixed scale {_num(lo)} … {_num(hi)}{note})",
                     SIGNED_SCALE, (lo, hi)))
    for gate in cell_info(tr.cell_type).gates:
        if gate.name in tr.gates:
            rows.append((gate.name, gate.label + (" (−1 … 1)" if gate.signed else " (0 … 1)"),
                         SIGNED_SCALE if gate.signed else GATE_SCALE,
                         SIGNED_RANGE if gate.signed else GATE_RANGE))
    return rows


def _map_data(tr: Trace, key: str, layer: int, direction: int) -> np.ndarray:
    if key == "hidden":
        return tr.hidden[layer, direction]
    if key == "c":
        return tr.cell[layer, direction]
    return tr.gates[key][layer, direction]


# ---------------------------------------------------------------------------------------------
# The figure


def explore_figure(
    tr: Trace,
    inp: InputSequence,
    *,
    layer: int = 0,
    direction: int = 0,
    units: list[int] | None = None,
    unit: int | None = None,
    t0: int = 0,
    nonlinearity: str = "tanh",
    height_per_map: int = 120,
    handoff: int | None = None,
    stage: Stage | None = None,
) -> go.Figure:
    """Every view of one trace in one animated figure, driven by one time cursor.

    Left column (shared time axis): the input shaded by saliency |d loss / d x_t|, a units x time
    map for h, c (LSTM) and every gate on fixed colour scales, the gradient norms on a log
    scale, and line plots of the picked `units`. Right column: the cell diagram and PyTorch's
    equations for `unit` at the cursor's step. Buttons and a slider move the cursor in the
    browser; `t0` is where it starts. `handoff` (core.engine.handoff.joined): the decoder's
    first step, marked by a dashed line across the left column. `stage` makes the figure for
    a projector (presentation mode): its fixed design size, text at least its minimum.
    """
    L, D, T, H = tr.hidden.shape
    if not (0 <= layer < L and 0 <= direction < D):
        raise ValueError(f"layer {layer} / direction {direction} is not in this trace ({L} x {D})")
    units = [u for u in (units or [0]) if 0 <= u < H][:6] or [0]
    unit = units[0] if unit is None or not 0 <= unit < H else unit
    t0 = int(min(max(t0, 0), T - 1))
    maps = map_rows(tr)
    geo = _Geometry.staged(len(maps), stage) if stage else _Geometry.of(len(maps), height_per_map)
    fig = _Grid(4, geo.heights, _row_titles(unit), spacing=geo.spacing)
    steps = np.arange(T, dtype=np.float32)
    tokens = list(inp.tokens)[:T] + [""] * max(0, T - len(inp.tokens))

    input_shapes, input_images, word = _input_row(fig, tr, inp, tokens, steps, t0, geo)
    map_images, map_titles = _maps_row(fig, tr, layer, direction, maps, geo)
    shapes = _unit_marks(fig, tr, unit, len(maps), geo)
    bar_images, bar_labels, bar_ticks = _colour_bars(fig, tr, maps, geo)
    gradient_shapes, gradient_notes = _gradient_row(fig, tr, layer, direction, steps, geo)
    shapes += input_shapes + gradient_shapes
    shapes += _units_row(fig, tr, layer, direction, units, steps, geo)
    shapes += [handoff_line(handoff, "x")] if handoff is not None and 0 < handoff < T else []
    panel = cell_panel(tr, layer=layer, direction=direction, unit=unit, t0=t0,
                       tokens=tokens if inp.values is None else None,
                       x_signal=_x_signal(inp, T), nonlinearity=nonlinearity,
                       axes=fig.axis_names(1, 2), scale=geo.text_scale,
                       line_chars=geo.panel_line_chars())
    frames = _moving_parts(fig, panel, word, tokens, t0)

    layout, titles = _layout(fig, geo, T, t0, bar_ticks)
    layout["annotations"] = titles + map_titles + bar_labels + panel.annotations + gradient_notes
    layout["images"] = map_images + bar_images + input_images
    layout["shapes"] = shapes
    layout["meta"][READOUT_KEY] = [_readout(fig, tr, (layer, direction), maps, geo, inp, stage)]
    if stage is not None:
        layout.update(width=stage.width, autosize=False)
        return PlainFigure(staged(fig.data, stage), staged(layout, stage), frames)
    return PlainFigure(fig.data, layout, frames)


def _moving_parts(fig: _Grid, panel, word: dict | None, tokens: list[str], t0: int
                  ) -> list[dict]:
    """Add what the frames move (the cell panel, the time cursor across the left column, the
    word under it where the row is too long for every word) and return the frames."""
    for trace in panel.traces:
        fig.add_trace(trace)
    fig.update_xaxes(1, 2, range=panel.x_range, visible=False)
    fig.update_yaxes(1, 2, range=panel.y_range, visible=False)
    fig.add_trace(cursor_trace(t0))  # on the left column's shared time axis
    moving = [len(fig.data) - 1, len(fig.data) - 2]  # the cursor, the cell panel
    updates = [cursor_at, panel.at]
    if word is not None:
        fig.add_trace(word)
        moving.append(len(fig.data) - 1)
        updates.append(lambda t: {"x": [t], "text": [tokens[t]]})
    return animation_frames(len(tokens), len(fig.data), moving,
                            lambda t: [update(t) for update in updates])


@dataclass(frozen=True)
class _Geometry:
    """The figure's height and the left column's rows on the paper."""

    height: int
    plot_px: int  # the plot area's height
    spacing: float  # paper height between rows, room for a row's title
    unit_height: float  # paper height of one map
    heights: list[float]  # rows: input, the maps, gradient norms, picked units
    margin: dict  # px around the plot area
    text_scale: float = 1.0  # a stage's (Stage.text_scale): offsets in px grow with the text
    show_words: int = SHOW_WORDS  # the most steps whose words the input row writes out
    text_px: float = 13.0  # the input row's words and the equations, at the figure's size
    chart_px: float = NARROWEST_CHART_PX  # the figure's width where its text must fit

    @property
    def words_px(self) -> float:
        """The input row's width where its words must not overlap."""
        return LEFT_COLUMN * (self.chart_px - self.margin["l"] - self.margin["r"])

    def panel_line_chars(self) -> float:
        """How many characters of the equations (core.figures.diagram.visible_length) a line of
        the right column holds, margin included."""
        column = RIGHT_COLUMN * (self.chart_px - self.margin["l"] - self.margin["r"]) + self.margin["r"]
        return column / (EQUATION_CHAR_WIDTH * self.text_px)

    def row_px(self, row: int) -> float:
        """The height of a row of the left column (R_INPUT .. R_UNITS) in px."""
        return self.heights[row - 1] * self.plot_px

    def labels_fit(self, row: int, px_each: float = 28) -> int:
        """How many tick labels fit on a row's axis, each `px_each` px of the house's text
        (grown with a stage's) apart: at least two."""
        return max(2, int(self.row_px(row) // (px_each * self.text_scale)))

    @classmethod
    def of(cls, n_maps: int, height_per_map: int) -> _Geometry:
        return cls.sized(n_maps, int(height_per_map * (n_maps + 2.6) + 220), MARGIN)

    @classmethod
    def staged(cls, n_maps: int, stage: Stage) -> _Geometry:
        """The rows of a stage figure: its fixed height, margins and titles' room grown with
        its text."""
        k = stage.text_scale
        margin = dict(l=round(MARGIN["l"] * k), r=MARGIN["r"], t=round(MARGIN["t"] * k),
                      b=round(MARGIN["b"] * k))
        # a taller input row (its words, above and below the squares, are stage-sized too) and
        # gradient row (the lesson of most views), at the picked units' expense
        # (the input row's share grows with the text: the word over its squares is taller)
        geo = cls.sized(n_maps, stage.height, margin, k, show_words=16,
                        shares=(0.9 * max(1.0, k / STAGE.text_scale), 1.15, 0.65))
        # a stage is scaled as a whole, so its text fits or not at its design size
        return dataclasses.replace(geo, text_px=stage.font_size(13), chart_px=stage.width)

    @classmethod
    def sized(cls, n_maps: int, height: int, margin: dict, text_scale: float = 1.0,
              show_words: int = 30, shares: tuple[float, float, float] = (0.55, 0.8, 0.8)
              ) -> _Geometry:
        plot_px = height - margin["t"] - margin["b"]
        # Room between rows for a row's title (~26 px), whatever the figure's height: a short
        # figure (a vanilla RNN has one map) had its titles run into the rows above them.
        spacing = round(max(0.035, 26 * text_scale / plot_px), 4)
        # The maps share one subplot, stacked with a title's room between them (one pair of
        # axes, not one per map: plotly.js runs a defaults pass and a draw per axis on every
        # new figure). The input row, the gradient's and the picked units' are `shares` of a
        # map's height.
        input_share, grad_share, units_share = shares
        unit_height = (1 - (n_maps + 2) * spacing) / (n_maps + sum(shares))
        heights = [round(h, 4) for h in (input_share * unit_height,
                                         n_maps * unit_height + (n_maps - 1) * spacing,
                                         grad_share * unit_height, units_share * unit_height)]
        return cls(height, plot_px, spacing, unit_height, heights, margin, text_scale,
                   show_words)


def _row_titles(unit: int) -> list[str]:
    """make_subplots' titles, in its order: row 1 left, the right column, then rows 2 .. 4."""
    return ["input  (colour: sensitivity of the loss, ‖∂loss/∂x<sub>t</sub>‖)",
            f"the cell at step t, unit {unit}",
            "",  # each map is titled on its own (see `_maps_row`)
            "gradient norms per step (log scale)", "picked units of h over time"]


def _layout(fig: _Grid, geo: _Geometry, T: int, t0: int, cursor: dict
            ) -> tuple[dict, list[dict]]:
    """The grid's layout with the figure's own settings, the player and the `cursor`'s axis;
    and the subplot titles (taken out of it, in the house font), which go first in the
    annotations."""
    layout = fig.layout
    titles = layout.pop("annotations", [])  # the subplot titles, from `_skeleton`
    for title in titles:
        title["font"] = TITLE_FONT
    layout.update(
        font=FONT, height=geo.height,
        # autoexpand off: the buttons, slider and legend fit in these margins, and a margin
        # pushed by them makes plotly.js lay the whole figure out a second time.
        margin=dict(geo.margin, autoexpand=False), showlegend=True,
        # 50 px under the plot, clear of the time axis's title, at any height
        legend=dict(orientation="h", x=0.0, y=-50 * geo.text_scale / geo.plot_px,
                    yanchor="top", font=dict(size=13)),
        hovermode="closest", plot_bgcolor="rgba(0,0,0,0)", **controls(T, t0), **cursor)
    # No template at all (plotly.py would otherwise add its default one): its values are
    # baked into the layout (see `bake_template`), and a template object, even plotly.js's
    # own default, makes the second of Streamlit's two renders a full re-layout.
    layout["template"] = None
    return layout, titles


# ---------------------------------------------------------------------------------------------
# Rows of the left column


def _input_row(fig: _Grid, tr: Trace, inp: InputSequence, tokens: list[str], steps: np.ndarray,
               t0: int, geo: _Geometry) -> tuple[list[dict], list[dict], dict | None]:
    """The input, coloured by saliency: the tokens as squares (a word task), or the numbers as
    lines over a saliency strip. Returns its layout shapes and images, and the trace of the
    word under the cursor where the row has too many steps to write every word (None
    otherwise: the caller moves it with the cursor)."""
    T = len(steps)
    sal = _f32(tr.grad_input)
    sal_max = float(np.nanmax(sal)) if np.isfinite(sal).any() and np.nanmax(sal) > 0 else 1.0
    if inp.values is None:
        # Every word, alternately above and below, only while they fit: at 1280 x 720 the 43
        # words of a sentence ran together ("thpaintings"); else the word at the cursor.
        every_word = T <= geo.show_words and words_fit(tokens, geo.words_px, geo.text_px)
        fig.add_trace(token_markers(
            steps, tokens, sal, sal_max, show_text=every_word, text_size=13,
            marker_size=max(4, min(18, 900 // max(T, 1))),
            colorscale=_scale_list(SALIENCY_SCALE)), row=R_INPUT, col=1)
        # every word: as much room above the squares as below; the word at the cursor only:
        # its room above them (on a stage, 1.5x the size, it ran into the row's title)
        fig.update_yaxes(range=[-1.6, 1.6] if every_word else [-1.0, 2.6], showticklabels=False,
                         showgrid=False, row=R_INPUT, col=1)
        if every_word:
            return [], [], None
        ix, iy = fig.axis_names(R_INPUT, 1)
        return [], [], dict(type="scatter", x=[t0], y=[0.55], xaxis=ix, yaxis=iy, mode="text",
                            text=[tokens[t0]], textfont=dict(size=15, color="#111"),
                            textposition="top center", hoverinfo="skip", showlegend=False,
                            name="word")
    # Numbers: the line(s) as layout paths (animation frames never redraw layout, so the
    # lines cost nothing per frame), over a strip of the saliency drawn as an image.
    vals = _f32(inp.values).reshape(T, -1)[:, :3]
    lo_v, hi_v = padded_range(vals, 0.08)
    ix, iy = fig.axis_names(R_INPUT, 1)
    shapes = []
    for j in range(vals.shape[1]):
        name = inp.value_names[j] if j < len(inp.value_names) else f"x[{j}]"
        shapes.append(line_path(steps, vals[:, j], ix, iy, ("#333", "#888", "#bbb")[j],
                                name=name))
    fig.update_yaxes(range=[lo_v, hi_v], nticks=geo.labels_fit(R_INPUT), row=R_INPUT, col=1)
    return shapes, [saliency_strip(sal, sal_max, lo_v, hi_v, ix, iy)], None


def _map_bases(H: int, n_maps: int, geo: _Geometry) -> list[float]:
    """Map k occupies units base_k .. base_k + H - 1 of the maps' shared y axis (map 0 on top);
    the gap between maps is the rows' spacing on the paper, in units."""
    gap = H * geo.spacing / geo.unit_height
    return [(n_maps - 1 - k) * (H + gap) for k in range(n_maps)]


def _maps_row(fig: _Grid, tr: Trace, layer: int, direction: int, maps: list, geo: _Geometry
              ) -> tuple[list[dict], list[dict]]:
    """The units x time maps as images, stacked in one subplot (`_map_bases`). Returns the
    images and each map's title."""
    T, H = tr.hidden.shape[2:]
    mx, my = fig.axis_names(R_MAPS, 1)
    bases = _map_bases(H, len(maps), geo)
    images, titles = [], []
    for (key, title, scale, (lo, hi)), base in zip(maps, bases):
        z = _map_data(tr, key, layer, direction).T  # (H, T)
        # One pixel per unit and step; the browser scales it without smoothing (PIXELATED_CSS).
        src = heatmap_png(z, lo, hi, scale, min_width=1, min_height=1)
        images.append(map_image(src, T, H, mx, my, base + H - 0.5))
        titles.append(dict(text=title, xref=f"{mx} domain", x=0.5, yref=my, y=base + H - 0.5,
                           yanchor="bottom", showarrow=False, font=TITLE_FONT))
    # as many labels as a map's height holds (a stage's maps are short for their text)
    ticks = _unit_ticks(H, max(2, min(4, int(geo.unit_height * geo.plot_px
                                             // (20 * geo.text_scale)))))
    fig.update_yaxes(range=[-0.5, bases[0] + H - 0.5], showgrid=False, zeroline=False,
                     tickvals=[base + v for base in bases for v in ticks],
                     ticktext=[str(v) for _ in bases for v in ticks],
                     title_text="unit", title_standoff=2, row=R_MAPS, col=1)
    fig.update_xaxes(showgrid=False, zeroline=False, row=R_MAPS, col=1)
    return images, titles


def _unit_marks(fig: _Grid, tr: Trace, unit: int, n_maps: int, geo: _Geometry) -> list[dict]:
    """The diagram's unit pointed at on every map: a small dark triangle just right of the
    map's row of that unit, in the gap before its colour bar (over the map it would hide the
    row it marks)."""
    mx, my = fig.axis_names(R_MAPS, 1)
    H = tr.hidden_size
    half = max(1.2, H * 0.035)  # units: about 6 px high on a 120-px map of 64 units
    marks = []
    for base in _map_bases(H, n_maps, geo):
        y = base + unit
        marks.append(dict(type="path", xref=f"{mx} domain", yref=my, layer="above",
                          path=f"M 1.012,{y - half:g} L 1.001,{y:g} L 1.012,{y + half:g} Z",
                          fillcolor="#111", line=dict(width=0), name=f"unit {unit}"))
    return marks


def _readout(fig: _Grid, tr: Trace, slice_: tuple[int, int], maps: list, geo: _Geometry,
             inp: InputSequence, stage: Stage | None) -> dict:
    """What each map reads under the pointer (core/figures/readout.py): its name (the title's
    words before the range), units and values of the (layer, direction) `slice_`, and the
    words at the steps when the input is words."""
    mx, my = fig.axis_names(R_MAPS, 1)
    bases = _map_bases(tr.hidden_size, len(maps), geo)
    values = [MapValues(title.split(" (")[0], _map_data(tr, key, *slice_).T, base)
              for (key, title, _, _), base in zip(maps, bases)]
    words = list(inp.tokens) if inp.values is None else []
    return map_readout(values, x=mx, y=my, tokens=words if any(words) else (),
                       font_size=stage.font_size(13) if stage else 13)


def _colour_bars(fig: "_Grid", tr: Trace, maps: list, geo: _Geometry
                 ) -> tuple[list[dict], list[dict], dict]:
    """One colour bar beside each map, at its height, just right of the left column, as layout
    images (no trace to redraw), so every scale sits next to the map it colours. Returns the
    images, their titles, and the cursor's axis showing their tick labels."""
    _, my = fig.axis_names(R_MAPS, 1)
    y0, y1 = fig.layout["yaxis" + my[1:]]["domain"]
    H = tr.hidden.shape[-1]
    gap = H * geo.spacing / geo.unit_height
    total = (len(maps) - 1) * (H + gap) + H  # the maps' y axis, in units
    bar_x, width = 0.68 * 0.9 + 0.01, 0.012  # column_widths x (1 - spacing)
    images, titles, ticks = [], [], []
    for k, (key, _, scale, (lo, hi)) in enumerate(maps):
        top = y1 - k * (H + gap) / total * (y1 - y0)
        length = H / total * (y1 - y0)
        image, title, bar_ticks = colour_bar(
            scale, lo, hi, _bar_label(tr, key), x=bar_x, top=top, length=length, width=width,
            title_size=12, middle=geo.unit_height * geo.plot_px >= 66 * geo.text_scale)
        images.append(image)
        titles.append(title)
        ticks += bar_ticks
    return images, titles, cursor_axis(ticks, bar_ticks_x(bar_x, width))


def _bar_label(tr: Trace, key: str) -> str:
    """A map's symbol from the registry: h, c, or the gate's (i, f, g, o; r, z, n)."""
    if key == "hidden":
        return "h"
    if key == "c":
        return "c"
    gate = next((g for g in cell_info(tr.cell_type).gates if g.name == key), None)
    return gate.symbol if gate is not None else key


def overflow_note(tr: Trace, layer: int, direction: int) -> str:
    """What overflowed float32 in this layer and direction, in words ("" when nothing did).
    Such values are inf or NaN, which the maps and the log-scale gradient plot cannot draw:
    without a word the curve just stopped (an uploaded module with large recurrent weights)."""
    T = tr.hidden.shape[2]
    finite_h = np.isfinite(tr.hidden[layer, direction]).all(axis=-1)
    if not finite_h.all():
        first = int(np.argmin(finite_h))
        return (f"The hidden state overflowed float32 (beyond {FLOAT32_MAX:.1e}) at step "
                f"{first}: from there on the numbers are inf or NaN and are not drawn.")
    grads = [tr.grad_hidden[layer, direction]]
    if tr.grad_cell is not None:
        grads.append(tr.grad_cell[layer, direction])
    bad = ~np.logical_and.reduce([np.isfinite(g) for g in grads])
    if not bad.any():
        return ""
    steps = np.flatnonzero(bad)
    span = (f"step {steps[0]}" if len(steps) == 1 else
            f"steps {steps[0]}–{steps[-1]}" if steps[-1] - steps[0] + 1 == len(steps) else
            f"{len(steps)} of {T} steps, from step {steps[0]}")
    return (f"The gradient overflowed float32 (beyond {FLOAT32_MAX:.1e}) at {span}: it "
            "exploded back through time, and is not drawn there.")


def _gradient_row(fig: _Grid, tr: Trace, layer: int, direction: int, steps: np.ndarray,
                  geo: _Geometry) -> tuple[list[dict], list[dict]]:
    """The gradient norms on a log scale, as layout paths (plotly.js places path points on a
    log axis in data units, while the axis range is given in log10 units); and, over them,
    what overflowed, if anything did (see `overflow_note`)."""
    gx, gy = fig.axis_names(R_GRAD, 1)
    deep = tr.num_layers > 1
    here = f" layer {layer}" if deep else ""
    grads = [(tr.grad_hidden[layer, direction], f"‖∂loss/∂h<sub>t</sub>‖{here}", OKABE_ITO["blue"],
              "solid", 2.0)]
    if tr.grad_cell is not None:
        grads.append((tr.grad_cell[layer, direction], f"‖∂loss/∂c<sub>t</sub>‖{here}",
                      OKABE_ITO["bluish green"],
                      "dot", 2.0))
    # Through depth as well as through time: every other layer's h gradient beside this one's
    # (the loss reaches a lower layer only through the layers above it).
    for other in (k for k in range(tr.num_layers) if k != layer):
        grads.append((tr.grad_hidden[other, direction], f"‖∂loss/∂h<sub>t</sub>‖ layer {other}",
                      DEPTH_COLOURS[other % len(DEPTH_COLOURS)], "dash", 1.5))
    logs, shapes = [], []
    for g, name, color, dash, width in grads:
        g = _f32(g).astype(np.float64)
        lg = _log10(g)  # zero and NaN show as gaps
        logs.append(lg)
        shapes.append(line_path(steps, np.where(np.isfinite(lg), g, np.nan), gx, gy, color,
                                name=name, dash=dash, width=width))
    lo_g, hi_g = log_range(np.concatenate(logs), 0.2)
    # A label every `dtick` decades, as many as fit (three or four at most): the row is short
    # (five labels
    # touched), and plotly's own choice adds minor digits (2, 5) that overlap there.
    fig.update_yaxes(type="log", exponentformat="power", range=[lo_g, hi_g],
                     dtick=max(1, math.ceil((hi_g - lo_g) / min(3, geo.labels_fit(R_GRAD) - 1))),
                     row=R_GRAD, col=1)
    note = overflow_note(tr, layer, direction)
    notes = [dict(text=note.replace(": ", ":<br>", 1), xref=f"{gx} domain", x=0.5,
                  yref=f"{gy} domain", y=0.5, showarrow=False,
                  font=dict(size=13, color="#b00020"), bgcolor="rgba(255,255,255,0.85)")
             ] if note else []
    return shapes, notes


def _units_row(fig: _Grid, tr: Trace, layer: int, direction: int, units: list[int],
               steps: np.ndarray, geo: _Geometry) -> list[dict]:
    """The picked units of h as lines; the shared time axis is labelled under this row."""
    ux, uy = fig.axis_names(R_UNITS, 1)
    shapes = [line_path(steps, tr.hidden[layer, direction, :, u], ux, uy,
                        PALETTE[k % len(PALETTE)], name=f"h[{u}]", dash=DASHES[k % len(DASHES)])
              for k, u in enumerate(units)]
    lo, hi = _units_range(tr.hidden[layer, direction][:, units])
    ticks = [lo, 0, hi] if geo.labels_fit(R_UNITS, 22) >= 3 else [lo, hi]
    if 0 in ticks and -lo < 0.15 * (hi - lo):  # a relu RNN's far top squeezes −1 onto 0
        ticks.remove(lo)
    fig.update_yaxes(range=[lo - 0.025 * (hi - lo), hi + 0.025 * (hi - lo)], row=R_UNITS, col=1,
                     tickvals=ticks, ticktext=[_num(v).removesuffix(".00") for v in ticks])
    # One time axis for the whole left column (see `_skeleton`), labelled under the bottom row.
    fig.update_xaxes(range=[-0.5, len(steps) - 0.5], title_text="timestep t", title_standoff=4,
                     row=R_UNITS, col=1)
    return shapes


def _units_range(values: np.ndarray) -> tuple[float, float]:
    """The picked units' axis: −1 … 1, or as far out as a relu RNN's h goes (to 0.1)."""
    finite = values[np.isfinite(values)]
    top = float(finite.max(initial=1.0))
    bottom = float(finite.min(initial=-1.0))
    return min(-1.0, math.floor(bottom * 10) / 10), max(1.0, math.ceil(top * 10) / 10)


def _unit_ticks(hidden_size: int, most: int = 4) -> list[int]:
    """Unit numbers to label on a map's axis: a round step, at most `most` + 1 labels (three
    to five for the default)."""
    step = next(v for v in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000)
                if v >= hidden_size / most or v == 10_000)
    return list(range(0, hidden_size, step))


def _x_signal(inp: InputSequence, T: int) -> np.ndarray:
    """One number per step for the diagram's x_t node: the first feature, or 0 for tokens."""
    if inp.values is None:
        return np.zeros(T, np.float32)
    return _f32(inp.values).reshape(T, -1)[:, 0]


# ---------------------------------------------------------------------------------------------
# The grid, on plain dicts


@functools.lru_cache(maxsize=32)
def _skeleton(n_rows: int, heights: tuple, titles: tuple, spacing: float) -> tuple[dict, dict]:
    """make_subplots' layout (domains, anchors, titles) as a plain dict, cached per shape.

    plotly.py's validated objects cost ~10 ms per axis update; the figure is assembled on plain
    dicts instead, which keeps a changed choice within the change-to-chart budget."""
    specs = [[{}, {"rowspan": n_rows} if r == 0 else None] for r in range(n_rows)]
    fig = make_subplots(rows=n_rows, cols=2, specs=specs, shared_xaxes=False,
                        column_widths=[0.68, 0.32], row_heights=list(heights),  # LEFT_COLUMN
                        vertical_spacing=spacing, horizontal_spacing=0.1,
                        subplot_titles=list(titles))
    fig.update_layout(template="plotly_white")
    axes = {}
    for r in range(1, n_rows + 1):
        for c in (1, 2) if r == 1 else (1,):
            axes[(r, c)] = subplot_axes(fig, r, c)
    layout = bake_template(fig.to_plotly_json()["layout"])
    # The left column shares one x axis ("x", drawn under the bottom row): every axis costs
    # plotly.js a defaults pass and a draw on every new figure, and twenty of them were a
    # good part of a change's time in the browser.
    bottom_y = axes[(n_rows, 1)][1]
    for r in range(2, n_rows + 1):
        x_name, y_name = axes[(r, 1)]
        del layout["xaxis" + x_name[1:]]
        layout["yaxis" + y_name[1:]]["anchor"] = "x"
        axes[(r, 1)] = ("x", y_name)
    layout["xaxis"]["anchor"] = bottom_y
    for key, axis in layout.items():
        if key.startswith(("xaxis", "yaxis")):
            # Tick labels may overflow the figure (they never do here): plotly.js's default,
            # "hide past div", measures every tick label on every draw to find out.
            axis["ticklabeloverflow"] = "allow"
    return layout, axes


class _Grid:
    """The few figure operations explore_figure needs, on plain dicts (see `_skeleton`)."""

    def __init__(self, n_rows: int, heights: list, titles: list, spacing: float):
        layout, self.axes = _skeleton(n_rows, tuple(heights), tuple(titles), spacing)
        self.layout = copy.deepcopy(layout)
        self.data: list[dict] = []

    def axis_names(self, row: int, col: int) -> tuple[str, str]:
        return self.axes[(row, col)]

    def _update(self, which: int, row: int, col: int, kw: dict) -> None:
        name = self.axes[(row, col)][which]
        axis = self.layout.setdefault(name[0] + "axis" + name[1:], {})
        for key, value in kw.items():
            if key.startswith("title_"):
                axis.setdefault("title", {})[key[len("title_"):]] = value
            else:
                axis[key] = value

    def update_xaxes(self, row: int, col: int, **kw) -> None:
        self._update(0, row, col, kw)

    def update_yaxes(self, row: int, col: int, **kw) -> None:
        self._update(1, row, col, kw)

    def add_trace(self, trace: dict, row: int | None = None, col: int | None = None) -> None:
        trace = {"type": "scatter", **trace}
        if row is not None:
            x, y = self.axes[(row, col)]
            trace.setdefault("xaxis", x)
            trace.setdefault("yaxis", y)
        self.data.append(trace)
