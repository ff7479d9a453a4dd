"""Figure builders: pure functions from a `Trace` (and what the user fed it) to a Plotly figure.

The explorer is ONE figure so that one play button and one slider drive every view in the
browser, with no round trip to the server. Why it is built the way it is (measured in Chromium,
see benchmarks/ui_speed.py):

- Plotly animates heatmap traces at 1-2 frames per second at 1,000 steps (plotly.js #6533), and
  with `redraw: False` it erases every heatmap that a frame does not redraw (plotly.js #4491).
  So the units x time maps are drawn once, server-side, as colour-mapped PNG *layout images*:
  layout images are untouched by animation frames and cost about the raw data's bytes.
- Frames carry only what changes with the time cursor: the cursor's x, the cell diagram's node
  colours and numbers, and the equations' numbers for the selected unit. Never a copy of a map.
- Static scatter traces (saliency, gradient norms, unit lines, colour bars) are listed in every
  frame with an empty update, because plotly.js drops a scatter trace a frame leaves out.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.engine import Trace
from core.figures.style import (
    GATE_SCALE, SIGNED_SCALE, SALIENCY_SCALE, GATE_RANGE, SIGNED_RANGE, FONT, CURSOR_COLOR, MAX_SLIDER_STEPS, MARGIN, TITLE_FONT, cell_range, heatmap_png, _scale_list, _f32, _num, _nums, _logit, _atanh, _hex_series, InputSequence, PlainFigure, colour_bar, line_path,
)

#: On-screen names, PyTorch's gate names first.
GATE_LABELS = {
    "lstm": {"input": "input gate i", "forget": "forget gate f", "cell": "cell candidate g",
             "output": "output gate o"},
    "gru": {"reset": "reset gate r", "update": "update gate z (z≈1 keeps the old h)",
            "new": "new gate n (candidate)"},
    "rnn": {},
}
SIGNED_GATES = {"cell", "new"}  # tanh outputs; every other gate is a sigmoid


# ---------------------------------------------------------------------------------------------
# Small helpers


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


# ---------------------------------------------------------------------------------------------
# The cell diagram: nodes (live colour + number), static arrows


NODE_SIZE = 38  # px, the diagram's node circles


@dataclass(frozen=True)
class Node:
    key: str  # what value it shows (see _node_values)
    label: str
    x: float
    y: float
    kind: str  # "gate" (0..1), "signed" (-1..1) or "cell" (the cell state's colour range)


DIAGRAMS: dict[str, tuple[list[Node], list[tuple[str, str]]]] = {
    "lstm": (
        [
            Node("c_prev", "c<sub>t−1</sub>", 0.0, 4.0, "cell"),
            Node("fc", "f⊙c", 3.0, 4.0, "cell"),
            Node("c", "c<sub>t</sub>", 6.0, 4.0, "cell"),
            Node("h_prev", "h<sub>t−1</sub>", 0.0, 0.0, "signed"),
            Node("x", "x<sub>t</sub>", 0.0, 1.3, "signed"),
            Node("forget", "f", 1.6, 2.6, "gate"),
            Node("input", "i", 3.0, 1.4, "gate"),
            Node("cell", "g", 4.6, 1.4, "signed"),
            Node("ig", "i⊙g", 4.6, 2.9, "cell"),
            Node("output", "o", 6.2, 1.4, "gate"),
            Node("h", "h<sub>t</sub>", 7.5, 0.6, "signed"),
        ],
        [("c_prev", "fc"), ("forget", "fc"), ("fc", "c"), ("input", "ig"), ("cell", "ig"),
         ("ig", "c"), ("h_prev", "forget"), ("h_prev", "input"), ("h_prev", "cell"),
         ("h_prev", "output"), ("x", "forget"), ("x", "input"), ("x", "cell"), ("x", "output"),
         ("c", "h"), ("output", "h")],
    ),
    "gru": (
        [
            Node("h_prev", "h<sub>t−1</sub>", 0.0, 4.0, "signed"),
            Node("zh", "z⊙h<sub>t−1</sub>", 3.5, 4.0, "signed"),
            Node("h", "h<sub>t</sub>", 7.0, 3.0, "signed"),
            Node("x", "x<sub>t</sub>", 0.0, 0.3, "signed"),
            Node("reset", "r", 1.6, 1.4, "gate"),
            Node("update", "z", 2.6, 2.6, "gate"),
            Node("new", "n", 3.8, 1.0, "signed"),
            Node("zn", "(1−z)⊙n", 5.4, 1.8, "signed"),
        ],
        [("h_prev", "zh"), ("update", "zh"), ("zh", "h"), ("update", "zn"), ("new", "zn"),
         ("zn", "h"), ("h_prev", "reset"), ("h_prev", "update"), ("x", "reset"),
         ("x", "update"), ("x", "new"), ("reset", "new"), ("h_prev", "new")],
    ),
    "rnn": (
        [
            Node("h_prev", "h<sub>t−1</sub>", 0.0, 3.0, "signed"),
            Node("x", "x<sub>t</sub>", 0.0, 0.5, "signed"),
            Node("pre", "a (pre-act.)", 3.0, 1.8, "signed"),
            Node("h", "h<sub>t</sub>", 6.0, 1.8, "signed"),
        ],
        [("h_prev", "pre"), ("x", "pre"), ("pre", "h"), ("h", "h_prev")],
    ),
}


def _node_values(tr: Trace, layer: int, direction: int, unit: int, x_signal: np.ndarray
                 ) -> dict[str, np.ndarray]:
    """Per-step (T,) values of every diagram node for one unit."""
    h = tr.hidden[layer, direction, :, unit].astype(np.float32)
    T = h.shape[0]
    reverse = direction == 1
    # h_{t-1} is the state this step started from: the previous step in the direction's order.
    if reverse:
        h_prev = np.concatenate([h[1:], np.zeros(1, np.float32)])
    else:
        h_prev = np.concatenate([np.zeros(1, np.float32), h[:-1]])
    vals = {"h": h, "h_prev": h_prev, "x": x_signal.astype(np.float32)}
    g = {k: v[layer, direction, :, unit].astype(np.float32) for k, v in tr.gates.items()}
    vals.update(g)
    if tr.cell_type == "lstm":
        c = tr.cell[layer, direction, :, unit].astype(np.float32)
        c_prev = (np.concatenate([c[1:], np.zeros(1, np.float32)]) if reverse
                  else np.concatenate([np.zeros(1, np.float32), c[:-1]]))
        vals.update(c=c, c_prev=c_prev, fc=g["forget"] * c_prev, ig=g["input"] * g["cell"])
    elif tr.cell_type == "gru":
        vals.update(zh=g["update"] * h_prev, zn=(1 - g["update"]) * g["new"])
    else:
        with np.errstate(all="ignore"):
            vals["pre"] = np.arctanh(np.clip(h, -1 + 1e-6, 1 - 1e-6)).astype(np.float32)
    assert all(v.shape == (T,) for v in vals.values())
    return vals


def _equations(cell: str, nonlinearity: str = "tanh") -> list[str]:
    """PyTorch's equations for one unit (see the docs of torch.nn.LSTM / GRU / RNN)."""
    if cell == "lstm":
        return [
            "i<sub>t</sub> = σ(W<sub>ii</sub>x<sub>t</sub> + b<sub>ii</sub> + W<sub>hi</sub>h<sub>t−1</sub> + b<sub>hi</sub>)",
            "f<sub>t</sub> = σ(W<sub>if</sub>x<sub>t</sub> + b<sub>if</sub> + W<sub>hf</sub>h<sub>t−1</sub> + b<sub>hf</sub>)",
            "g<sub>t</sub> = tanh(W<sub>ig</sub>x<sub>t</sub> + b<sub>ig</sub> + W<sub>hg</sub>h<sub>t−1</sub> + b<sub>hg</sub>)",
            "o<sub>t</sub> = σ(W<sub>io</sub>x<sub>t</sub> + b<sub>io</sub> + W<sub>ho</sub>h<sub>t−1</sub> + b<sub>ho</sub>)",
            "c<sub>t</sub> = f<sub>t</sub> ⊙ c<sub>t−1</sub> + i<sub>t</sub> ⊙ g<sub>t</sub>",
            "h<sub>t</sub> = o<sub>t</sub> ⊙ tanh(c<sub>t</sub>)",
        ]
    if cell == "gru":
        return [
            "r<sub>t</sub> = σ(W<sub>ir</sub>x<sub>t</sub> + b<sub>ir</sub> + W<sub>hr</sub>h<sub>t−1</sub> + b<sub>hr</sub>)",
            "z<sub>t</sub> = σ(W<sub>iz</sub>x<sub>t</sub> + b<sub>iz</sub> + W<sub>hz</sub>h<sub>t−1</sub> + b<sub>hz</sub>)",
            "n<sub>t</sub> = tanh(W<sub>in</sub>x<sub>t</sub> + b<sub>in</sub> + r<sub>t</sub> ⊙ (W<sub>hn</sub>h<sub>t−1</sub> + b<sub>hn</sub>))",
            "h<sub>t</sub> = (1 − z<sub>t</sub>) ⊙ n<sub>t</sub> + z<sub>t</sub> ⊙ h<sub>t−1</sub>",
        ]
    return [f"h<sub>t</sub> = {nonlinearity}(W<sub>ih</sub>x<sub>t</sub> + b<sub>ih</sub> + W<sub>hh</sub>h<sub>t−1</sub> + b<sub>hh</sub>)"]


def _equation_numbers(cell: str, v: dict[str, np.ndarray], nonlinearity: str) -> list[list[str]]:
    """The right-hand sides of `_equations` with the unit's numbers filled in, for every step."""
    num = {k: _nums(a) for k, a in v.items()}
    par = {k: _nums(a, parenthesise_negative=True) for k, a in v.items()}

    def pre(key: str, inverse) -> list[str]:  # the pre-activation recovered from a gate's value
        return _nums(inverse(np.asarray(v[key], dtype=np.float64)))

    if cell == "lstm":
        i, f, g, o = (num[k] for k in ("input", "forget", "cell", "output"))
        columns = [
            [f"= σ({a}) = <b>{b}</b>" for a, b in zip(pre("input", _logit), i)],
            [f"= σ({a}) = <b>{b}</b>" for a, b in zip(pre("forget", _logit), f)],
            [f"= tanh({a}) = <b>{b}</b>" for a, b in zip(pre("cell", _atanh), g)],
            [f"= σ({a}) = <b>{b}</b>" for a, b in zip(pre("output", _logit), o)],
            [f"= {a}·{b} + {c}·{d} = <b>{e}</b>"
             for a, b, c, d, e in zip(f, par["c_prev"], i, par["cell"], num["c"])],
            [f"= {a}·tanh({b}) = <b>{c}</b>" for a, b, c in zip(o, num["c"], num["h"])],
        ]
    elif cell == "gru":
        z = num["update"]
        columns = [
            [f"= σ({a}) = <b>{b}</b>" for a, b in zip(pre("reset", _logit), num["reset"])],
            [f"= σ({a}) = <b>{b}</b>" for a, b in zip(pre("update", _logit), z)],
            [f"= tanh({a}) = <b>{b}</b>" for a, b in zip(pre("new", _atanh), num["new"])],
            [f"= (1 − {a})·{b} + {a}·{c} = <b>{d}</b>"
             for a, b, c, d in zip(z, par["new"], par["h_prev"], num["h"])],
        ]
    elif nonlinearity == "relu":
        columns = [[f"= relu(…) = <b>{b}</b>" for b in num["h"]]]
    else:
        columns = [[f"= tanh({a}) = <b>{b}</b>" for a, b in zip(num["pre"], num["h"])]]
    return [list(row) for row in zip(*columns)]


# ---------------------------------------------------------------------------------------------
# The explorer figure


def map_rows(tr: Trace) -> list[tuple[str, str, str, tuple[float, float]]]:
    """(key, title, colour scale, range) of every units x time map, in display order."""
    rows = [("hidden", "hidden state h (−1 … 1)", SIGNED_SCALE, SIGNED_RANGE)]
    if tr.cell_type == "lstm":
        lo, hi = cell_range(tr.cell)
        rows.append(("c", f"cell state c ({_num(lo)} … {_num(hi)})", SIGNED_SCALE, (lo, hi)))
    for name, label in GATE_LABELS[tr.cell_type].items():
        if name in tr.gates:
            signed = name in SIGNED_GATES
            rows.append((name, label + (" (−1 … 1)" if signed else " (0 … 1)"),
                         SIGNED_SCALE if signed else GATE_SCALE,
                         SIGNED_RANGE if signed else GATE_RANGE))
    return rows


def _map_data(tr: Trace, key: str, layer: int, direction: int) -> np.ndarray:
    if key == "hidden":
        return tr.hidden[layer, direction]
    if key == "c":
        return tr.cell[layer, direction]
    return tr.gates[key][layer, direction]


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
) -> go.Figure:
    """Every view of one trace in one animated figure, driven by one time cursor.

    Left column (shared time axis): the input shaded by saliency |d loss / d x_t|, a units x time
    map for h, c (LSTM) and every gate on fixed colour scales, the gradient norms on a log
    scale, and line plots of the picked `units`. Right column: the cell diagram and PyTorch's
    equations for `unit` at the cursor's step. Play / pause / speed buttons and a slider move
    the cursor in the browser; `t0` is where it starts.
    """
    L, D, T, H = tr.hidden.shape
    if not (0 <= layer < L and 0 <= direction < D):
        raise ValueError(f"layer {layer} / direction {direction} is not in this trace ({L} x {D})")
    units = [u for u in (units or [0]) if 0 <= u < H][:6] or [0]
    unit = units[0] if unit is None or not 0 <= unit < H else unit
    t0 = int(min(max(t0, 0), T - 1))
    cell = tr.cell_type
    maps = map_rows(tr)
    n_maps = len(maps)
    height = int(height_per_map * (n_maps + 2.6) + 220)
    plot_px = height - MARGIN["t"] - MARGIN["b"]
    # Room between rows for a row's title (~26 px), whatever the figure's height: a short
    # figure (a vanilla RNN has one map) had its titles run into the rows above them.
    spacing = round(max(0.035, 26 / plot_px), 4)
    # Rows: input, the maps, gradient norms, picked units. The maps share one subplot, stacked
    # with a title's room between them (one pair of axes, not one per map: plotly.js runs a
    # defaults pass and a draw per axis on every new figure). `unit_height` is the paper height
    # of a map; the input row is 0.55 of it, the two line plots 0.8.
    unit_height = (1 - (n_maps + 2) * spacing) / (n_maps + 2.15)
    heights = [round(h, 4) for h in (0.55 * unit_height, n_maps * unit_height + (n_maps - 1) * spacing,
                                     0.8 * unit_height, 0.8 * unit_height)]
    n_rows = len(heights)
    r_input, r_maps, r_grad, r_units = 1, 2, 3, 4
    subplot_titles = ["input  (colour: saliency ‖∂loss/∂x<sub>t</sub>‖)",
                      f"the cell at step t, unit {unit}",
                      "",  # each map is titled on its own, below
                      "gradient norms per step (log scale)", "picked units of h over time"]
    fig = _Grid(n_rows, heights, subplot_titles, spacing=spacing)
    steps = np.arange(T, dtype=np.float32)
    shapes: list[dict] = []  # static lines, drawn as layout paths
    input_images: list[dict] = []

    # --- input row: tokens or numbers, coloured by saliency --------------------------------
    sal = _f32(tr.grad_input)
    sal_max = float(np.nanmax(sal)) if np.isfinite(sal).any() and np.nanmax(sal) > 0 else 1.0
    tokens = list(inp.tokens)[:T] + [""] * max(0, T - len(inp.tokens))
    hover_tokens = [f"t={i}: {tok}" for i, tok in enumerate(tokens)]
    if inp.values is None:
        fig.add_trace(dict(
            x=steps, y=np.zeros(T, np.float32), mode="markers+text" if T <= 60 else "markers",
            text=tokens if T <= 60 else None,
            # Alternate above / below so that neighbouring words do not overlap.
            textposition=["top center" if i % 2 == 0 else "bottom center" for i in range(T)],
            textfont=dict(size=13 if T <= 30 else 11),
            marker=dict(symbol="square", size=max(4, min(18, 900 // max(T, 1))), color=sal,
                        cmin=0, cmax=sal_max, colorscale=_scale_list(SALIENCY_SCALE),
                        line=dict(width=0.5, color="#888")),
            hovertext=hover_tokens, hoverinfo="text", name="input"), row=r_input, col=1)
        fig.update_yaxes(range=[-1.6, 1.6], showticklabels=False, showgrid=False,
                         row=r_input, col=1)
    else:
        # Numbers: the line(s) as layout paths (animation frames never redraw layout, so the
        # lines cost nothing per frame), over a strip of the saliency drawn as an image.
        vals = _f32(inp.values).reshape(T, -1)[:, :3]
        finite = vals[np.isfinite(vals)]
        lo_v, hi_v = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        pad = 0.08 * (hi_v - lo_v or 1.0)
        lo_v, hi_v = lo_v - pad, hi_v + pad
        ix, iy = fig.axis_names(r_input, 1)
        for j in range(vals.shape[1]):
            name = inp.value_names[j] if j < len(inp.value_names) else f"x[{j}]"
            shapes.append(line_path(steps, vals[:, j], ix, iy, ("#333", "#888", "#bbb")[j],
                                    name=name))
        input_images.append(dict(
            source=heatmap_png(sal[None, :], 0.0, sal_max, SALIENCY_SCALE, min_height=8),
            x=-0.5, y=hi_v, sizex=T, sizey=hi_v - lo_v, sizing="stretch", xanchor="left",
            yanchor="top", layer="below", xref=ix, yref=iy, opacity=0.7))
        fig.update_yaxes(range=[lo_v, hi_v], row=r_input, col=1)

    # --- units x time maps as images, stacked in one subplot ---------------------------------
    # Map k occupies units base_k .. base_k + H - 1 of the shared y axis (map 0 on top); `gap`
    # units between maps are the rows' spacing on the paper.
    images, map_titles = [], []
    mx, my = fig.axis_names(r_maps, 1)
    gap = H * spacing / unit_height
    bases = [(n_maps - 1 - k) * (H + gap) for k in range(n_maps)]
    for (key, title, scale, (lo, hi)), base in zip(maps, bases):
        z = _map_data(tr, key, layer, direction).T  # (H, T)
        # One pixel per unit and step; the browser scales it without smoothing (PIXELATED_CSS).
        src = heatmap_png(z, lo, hi, scale, min_width=1, min_height=1)
        images.append(dict(source=src, x=-0.5, y=base + H - 0.5, sizex=T, sizey=H,
                           sizing="stretch", xanchor="left", yanchor="top", layer="below",
                           xref=mx, yref=my))
        map_titles.append(dict(text=title, xref=f"{mx} domain", x=0.5, yref=my, y=base + H - 0.5,
                               yanchor="bottom", showarrow=False, font=TITLE_FONT))
    ticks = _unit_ticks(H)
    fig.update_yaxes(range=[-0.5, bases[0] + H - 0.5], showgrid=False, zeroline=False,
                     tickvals=[base + v for base in bases for v in ticks],
                     ticktext=[str(v) for _ in bases for v in ticks],
                     title_text="unit", title_standoff=2, row=r_maps, col=1)
    fig.update_xaxes(showgrid=False, zeroline=False, row=r_maps, col=1)

    # Colour bars (one per scale) as layout images with tick labels: no trace to redraw.
    bars = [] if cell == "rnn" else [(GATE_SCALE, GATE_RANGE, "gates")]
    bars.append((SIGNED_SCALE, SIGNED_RANGE, "h, g, n" if cell != "rnn" else "h"))
    if cell == "lstm":
        bars.append((SIGNED_SCALE, cell_range(tr.cell), "c"))
    bar_x = 0.68 * 0.9 + 0.01  # just right of the left column (column_widths x (1 - spacing))
    bar_annotations = []
    for k, (scale, (lo, hi), label) in enumerate(bars):
        image, labels = colour_bar(scale, lo, hi, label, x=bar_x, top=0.86 - 0.25 * k,
                                   length=0.17, width=0.012, title_size=13)
        images.append(image)
        bar_annotations += labels

    # --- gradient norms, log scale (layout paths: plotly.js places path points on a log axis
    # in data units, while the axis range is given in log10 units) --------------------------
    gx, gy = fig.axis_names(r_grad, 1)
    grads = [(tr.grad_hidden[layer, direction], "‖∂loss/∂h<sub>t</sub>‖", "#1f77b4", "solid")]
    if tr.grad_cell is not None:
        grads.append((tr.grad_cell[layer, direction], "‖∂loss/∂c<sub>t</sub>‖", "#2ca02c", "dot"))
    logs = []
    for g, name, color, dash in grads:
        g = _f32(g).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            lg = np.where(g > 0, np.log10(g), np.nan)  # zero and NaN show as gaps
        logs.append(lg)
        shapes.append(line_path(steps, np.where(np.isfinite(lg), g, np.nan), gx, gy, color,
                                name=name, dash=dash))
    all_logs = np.concatenate(logs)
    all_logs = all_logs[np.isfinite(all_logs)]
    lo_g, hi_g = ((math.floor(all_logs.min()) - 0.2, math.ceil(all_logs.max()) + 0.2)
                  if all_logs.size else (-1.0, 1.0))
    # A label every `dtick` decades, three or four in all: the row is short (five labels
    # touched), and plotly's own choice adds minor digits (2, 5) that overlap there.
    fig.update_yaxes(type="log", exponentformat="power", range=[lo_g, hi_g],
                     dtick=max(1, math.ceil((hi_g - lo_g) / 3)), row=r_grad, col=1)

    # --- picked units -----------------------------------------------------------------------
    palette = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    ux, uy = fig.axis_names(r_units, 1)
    for k, u in enumerate(units):
        shapes.append(line_path(steps, tr.hidden[layer, direction, :, u], ux, uy,
                                palette[k % 6], name=f"h[{u}]"))
    fig.update_yaxes(range=[-1.05, 1.05], row=r_units, col=1)
    # One time axis for the whole left column (see `_skeleton`), labelled under the bottom row.
    fig.update_xaxes(range=[-0.5, T - 0.5], title_text="timestep t", title_standoff=4,
                     row=r_units, col=1)

    # --- right column: diagram above, equations below, in one subplot and ONE animated trace
    nodes, edges = DIAGRAMS[cell]
    pos = {n.key: (n.x, n.y) for n in nodes}
    x_signal = _x_signal(inp, T)
    values = _node_values(tr, layer, direction, unit, x_signal)
    dx, dy = fig.axis_names(1, 2)
    # The arrows are one static trace, drawn under the nodes: centre-to-centre lines with an
    # arrowhead marker turned along its line and backed off (in pixels) to the target's rim.
    # Sixteen arrow annotations cost plotly.js ~45 ms of layout on every new figure.
    edge_x = [v for a, b in edges for v in (pos[a][0], pos[b][0], None)]
    edge_y = [v for a, b in edges for v in (pos[a][1], pos[b][1], None)]
    fig.add_trace(dict(
        x=edge_x, y=edge_y, mode="lines+markers", line=dict(color="#9aa0a6", width=1.5),
        marker=dict(symbol="arrow", angleref="previous", size=[0, 11, 0] * len(edges),
                    standoff=NODE_SIZE // 2 + 2, color="#9aa0a6", opacity=1),
        hoverinfo="skip", showlegend=False, xaxis=dx, yaxis=dy))
    words = inp.values is None  # the x_t node shows the word instead of a number

    c_range = cell_range(tr.cell)

    def node_column(n: Node) -> tuple[list[str], list[str]]:
        """The node's colour and label at every step, formatted once per node, not per frame."""
        if n.key == "x" and words:
            return ["#ffffff"] * T, [tok[:7] for tok in tokens]
        lo, hi = {"gate": GATE_RANGE, "cell": c_range}.get(n.kind, SIGNED_RANGE)
        scale = GATE_SCALE if n.kind == "gate" else SIGNED_SCALE
        return _hex_series(scale, values[n.key], lo, hi), _nums(values[n.key])

    columns = [node_column(n) for n in nodes]
    colors_at = list(zip(*(colors for colors, _ in columns)))  # step -> node colours
    texts_at = list(zip(*(texts for _, texts in columns)))

    xs, ys = [n.x for n in nodes], [n.y for n in nodes]
    eqs = _equations(cell, nonlinearity)
    n_eq = len(eqs)
    eq_top = min(ys) - 1.5
    eq_y = [eq_top - 1.15 * k for k in range(n_eq)]
    # Node names, the equations and their heading are annotations, like every static text in
    # this figure. (As text traces they cost nothing to lay out on a new figure but are drawn
    # again on every animation frame, because a frame lists every trace: measured, 37 -> 27
    # frames/s at T = 1000.)
    left = min(xs) - 0.7
    annotations = [dict(x=n.x, y=n.y, xref=dx, yref=dy, text=n.label, showarrow=False,
                        yshift=-31, font=dict(size=13, color="#333")) for n in nodes]
    annotations.append(dict(x=left, y=eq_top + 0.75, xref=dx, yref=dy, showarrow=False,
                            xanchor="left", text=f"PyTorch's equations, unit {unit} at step t",
                            font=TITLE_FONT))
    annotations += [dict(x=left, y=y, xref=dx, yref=dy, text=eq, showarrow=False,
                         xanchor="left", font=dict(size=13)) for y, eq in zip(eq_y, eqs)]
    if cell == "gru":
        annotations.append(dict(x=left, y=eq_y[-1] - 1.0, xref=dx, yref=dy, showarrow=False,
                                xanchor="left", font=dict(size=12, color="#555"),
                                text="PyTorch: z ≈ 1 keeps the old state h<sub>t−1</sub>"))
    numbers = _equation_numbers(cell, values, nonlinearity)

    clear = ["rgba(0,0,0,0)"] * n_eq

    def panel(t: int) -> dict:
        """Everything in the right column that changes with t: node colours and numbers."""
        return {"marker": {"color": [*colors_at[t], *clear]}, "text": [*texts_at[t], *numbers[t]]}

    first = panel(t0)
    fig.add_trace(dict(
        x=xs + [min(xs) - 0.55] * n_eq, y=ys + [y - 0.5 for y in eq_y], mode="markers+text",
        # opacity 1: plotly.js draws markers with a size array ("bubbles") at 0.7 by default,
        # which would show the arrows running under the nodes
        marker=dict(size=[NODE_SIZE] * len(nodes) + [1] * n_eq, color=first["marker"]["color"],
                    opacity=1, line=dict(width=[1.5] * len(nodes) + [0] * n_eq, color="#444")),
        text=first["text"], textposition=["middle center"] * len(nodes) + ["middle right"] * n_eq,
        textfont=dict(size=[11] * len(nodes) + [13] * n_eq, color="#111"), hoverinfo="skip",
        showlegend=False, xaxis=dx, yaxis=dy))
    i_panel = len(fig.data) - 1
    fig.update_xaxes(1, 2, range=[min(xs) - 0.8, max(xs) + 0.8], visible=False)
    fig.update_yaxes(1, 2, range=[eq_y[-1] - 1.6, max(ys) + 0.8], visible=False)

    # --- the time cursor: one line across the whole left column ----------------------------
    fig.add_trace(dict(x=[t0, t0], y=[0, 1], mode="lines", xaxis="x", yaxis="y99",
                             line=dict(color=CURSOR_COLOR, width=2), hoverinfo="skip",
                             showlegend=False))
    i_cursor = len(fig.data) - 1
    fig.update_layout(yaxis99=dict(domain=[0, 1], range=[0, 1], anchor="free", position=0,
                                   visible=False, fixedrange=True))

    # --- frames: only what moves -------------------------------------------------------------
    static = [i for i in range(len(fig.data)) if i not in (i_cursor, i_panel)]
    order = static + [i_cursor, i_panel]
    frames = []
    for t in range(T):
        frame = {"name": str(t), "data": [{}] * len(static) + [{"x": [t, t]}, panel(t)],
                 "traces": order}
        if t % 10 == 0:
            frame["group"] = "every10"
        frames.append(frame)

    # --- player controls ---------------------------------------------------------------------
    def play(label, duration, group=None):
        return dict(label=label, method="animate",
                    args=[group, dict(frame=dict(duration=duration, redraw=False),
                                      transition=dict(duration=0), fromcurrent=True,
                                      mode="immediate")])

    # Step labels are the bare step number. plotly.js measures every step's label (twice, for
    # the tick and the current value) with a forced browser layout each, but caches the sizes
    # by text: "t · token" labels were new text on every change of input (about 400 forced
    # layouts, ~100 ms at T=200), plain numbers are measured once per page. The token at t is
    # on the diagram's x_t node and in the input row's hover.
    slider_labels = [str(t) for t in range(T)]
    # Plotly redraws every slider step on every animation frame (measured: 1,000 steps halve
    # the frame rate), and draws and lays out each one on every new figure (100 steps: ~20 ms
    # of a change). At most 50 steps, 6 px apart on a 300 px slider, which is as fine as a
    # mouse scrubs anyway; Play and the step buttons still visit every step.
    stride = max(1, math.ceil(T / MAX_SLIDER_STEPS))
    slider_steps = sorted(set(range(0, T, stride)) | {t0, T - 1})  # the start step is a stop
    active = min(range(len(slider_steps)), key=lambda i: abs(slider_steps[i] - t0))
    layout = dict(
        font=FONT, height=height,
        # Streamlit draws each new figure twice (the second time with the measured width)
        # from a fresh copy; without a datarevision plotly.js takes copied data arrays for new
        # data and lays everything out again. A changed figure remounts the chart anyway.
        datarevision=1,
        # autoexpand off: the buttons, slider and legend fit in these margins, and a margin
        # pushed by them makes plotly.js lay the whole figure out a second time.
        margin=dict(MARGIN, autoexpand=False), showlegend=True,
        # 50 px under the plot, clear of the time axis's title, at any height
        legend=dict(orientation="h", x=0.0, y=-50 / plot_px, yanchor="top", font=dict(size=13)),
        hovermode="closest", plot_bgcolor="rgba(0,0,0,0)",
        updatemenus=[dict(
            type="buttons", direction="left", showactive=True, x=0.0, y=1.0, xanchor="left",
            yanchor="bottom", pad=dict(t=0, b=28), font=dict(size=14),
            buttons=[
                play("▶ Play", 20),
                dict(label="❚❚ Pause", method="animate",
                     args=[[None], dict(frame=dict(duration=0, redraw=False),
                                        transition=dict(duration=0), mode="immediate")]),
                play("Slow", 250),
                # Plotly ignores `fromcurrent` for a group, so this skim starts from t = 0.
                play("×10 from t=0", 20, "every10"),
            ])],
        sliders=[dict(
            active=active, x=0.36, len=0.3, y=1.0, yanchor="bottom", pad=dict(t=0, b=12),
            currentvalue=dict(prefix="step t = ", xanchor="right",  # clear of the buttons
                              font=dict(size=15, color="#1f2430")),
            transition=dict(duration=0), font=dict(size=1, color="rgba(0,0,0,0)"),
            tickcolor="rgba(0,0,0,0)", ticklen=0, minorticklen=0,
            steps=[dict(method="animate", label=slider_labels[t],
                        args=[[str(t)], dict(mode="immediate", frame=dict(duration=0, redraw=False),
                                             transition=dict(duration=0))])
                   for t in slider_steps])],
    )
    # Assemble without re-validating thousands of frame entries (plotly.py validation costs
    # about 2 ms per frame; these dicts are built to the schema above).
    base = fig.layout
    titles = base.pop("annotations", [])  # the subplot titles, from `_skeleton`
    for title in titles:
        title["font"] = TITLE_FONT
    base.update(layout)
    base["annotations"] = titles + map_titles + bar_annotations + annotations
    base["images"] = images + input_images
    base["shapes"] = shapes
    # No template at all (plotly.py would otherwise add its default one): its values are
    # baked into the layout (see `_bake_template`), and a template object, even plotly.js's
    # own default, makes the second of Streamlit's two renders a full re-layout.
    base["template"] = None
    return PlainFigure(fig.data, base, frames)


def _unit_ticks(hidden_size: int) -> list[int]:
    """Unit numbers to label on a map's axis: a round step, three to five labels."""
    step = next(v for v in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000)
                if v >= hidden_size / 4 or v == 10_000)
    return list(range(0, hidden_size, step))


@functools.lru_cache(maxsize=32)
def _skeleton(n_rows: int, heights: tuple, titles: tuple, spacing: float) -> tuple[dict, dict]:
    """make_subplots' layout (domains, anchors, titles) as a plain dict, cached per shape.

    plotly.py's validated objects cost ~10 ms per axis update; the figure is assembled on plain
    dicts instead, which keeps a changed choice within the change-to-chart budget."""
    specs = [[{}, {"rowspan": n_rows} if r == 0 else None] for r in range(n_rows)]
    fig = make_subplots(rows=n_rows, cols=2, specs=specs, shared_xaxes=False,
                        column_widths=[0.68, 0.32], row_heights=list(heights),
                        vertical_spacing=spacing, horizontal_spacing=0.1,
                        subplot_titles=list(titles))
    fig.update_layout(template="plotly_white")
    axes = {}
    for r in range(1, n_rows + 1):
        for c in (1, 2):
            if c == 2 and r > 1:
                continue
            ref = fig.get_subplot(r, c)
            axes[(r, c)] = (ref.xaxis.plotly_name.replace("axis", ""),
                            ref.yaxis.plotly_name.replace("axis", ""))
    layout = _bake_template(fig.to_plotly_json()["layout"])
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


def _merged(default: dict, own: dict) -> dict:
    """`own` over `default`, recursively (what plotly.js does with a template's values)."""
    out = copy.deepcopy(default)
    for key, value in own.items():
        out[key] = (_merged(out[key], value) if isinstance(value, dict)
                    and isinstance(out.get(key), dict) else value)
    return out


def _bake_template(layout: dict) -> dict:
    """The layout with its template's values written into it and no `template` key.

    Streamlit hands plotly.js the figure twice after every change (the second time with the
    measured width), as a fresh copy; plotly.js compares a template by identity, so a copied
    template makes it lay the whole figure out again (~200 ms at T=200). The explorer uses
    only the template's layout values (axes, fonts, colours), written in here instead."""
    template = layout.pop("template", {}).get("layout", {})
    skip = {"xaxis", "yaxis", "annotationdefaults", "shapedefaults", "polar", "ternary",
            "scene", "geo", "coloraxis", "colorscale", "mapbox"}
    out = {key: copy.deepcopy(value) for key, value in template.items() if key not in skip}
    for key, value in layout.items():
        axis = key.rstrip("0123456789")
        if axis in ("xaxis", "yaxis") and isinstance(value, dict):
            out[key] = _merged(template.get(axis, {}), value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


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

    def update_layout(self, **kw) -> None:
        self.layout.update(kw)

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


def _x_signal(inp: InputSequence, T: int) -> np.ndarray:
    """One number per step for the diagram's x_t node: the first feature, or 0 for tokens."""
    if inp.values is None:
        return np.zeros(T, np.float32)
    return _f32(inp.values).reshape(T, -1)[:, 0]
