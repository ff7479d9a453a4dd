"""Figure builders of the Compare page: pure functions from traces and measurements to Plotly.

`compare_figure` puts the RNN, LSTM and GRU side by side, one column each, driven by ONE time
cursor (play, pause, scrub) in the browser. It is built the way core/figures/explore.py builds the
Explore figure, and reuses its pieces: the units x time maps are colour-mapped PNG layout images
drawn once (`heatmap_png`), lines are layout paths (`line_path`), and animation frames carry only
what moves with the cursor (each column's cursor line and its gradient readout), never a map.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import plotly.colors as pcolors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.figures.explore import (
    CURSOR_COLOR, FONT, GATE_RANGE, GATE_SCALE, MAX_SLIDER_STEPS, SALIENCY_SCALE, SIGNED_RANGE,
    SIGNED_SCALE, InputSequence, PlainFigure, colour_bar, heatmap_png, line_path,
)
from core.engine.analysis import GradientDecay
from core.engine import Trace
from core.figures.training import CELL_COLORS

CELL_NAMES = {"rnn": "RNN (vanilla)", "lstm": "LSTM", "gru": "GRU"}
#: The gate of each cell that decides how much of the old state is kept (1 = keep).
KEEP_GATES = {"lstm": ("forget", "forget gate f (1 = keep c)"),
              "gru": ("update", "update gate z (1 = keep h)")}
NO_GATE_TEXT = "no gates: a vanilla RNN<br>rewrites h at every step"
ROWS = ("input", "hidden", "keep", "grad")
ROW_HEIGHTS = (0.45, 1.0, 1.0, 0.85)
CURSOR_AXIS = "y99"  # a hidden axis over the whole plot height that the cursor lines use


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return "nan"
    if value == 0:
        return "0 (underflow)"
    return f"{value:.1e}".replace("e-0", "e−").replace("e-", "e−").replace("e+0", "e")


def _log10(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(v > 0, np.log10(v), np.nan)  # zero and NaN show as gaps


def gradient_range(traces: Sequence[Trace]) -> tuple[float, float]:
    """One log10 range for every column's gradient row, so heights compare across cells."""
    logs = np.concatenate([_log10(tr.grad_hidden[-1, 0]) for tr in traces])
    logs = logs[np.isfinite(logs)]
    if not logs.size:
        return (-1.0, 1.0)
    return (math.floor(logs.min()) - 0.3, math.ceil(logs.max()) + 0.3)


def compare_figure(traces: Mapping[str, Trace], inp: InputSequence, *, t0: int = 0,
                   titles: Mapping[str, str] | None = None, height: int = 820) -> go.Figure:
    """One column per cell (in the order of `traces`), rows: the input shaded by that cell's
    saliency, the hidden state h, the gate that keeps the old state (LSTM forget f, GRU update
    z; the RNN has none), and norm(d loss / d h_t) on one shared log scale. Every column reads
    the same input, so all traces must have the same length. The top layer, forward direction,
    is shown. Play / pause / slow buttons and one slider move every column's cursor together."""
    cells = list(traces)
    if not cells:
        raise ValueError("nothing to compare: no traces")
    lengths = {tr.seq_len for tr in traces.values()}
    if len(lengths) != 1:
        raise ValueError(f"the traces have different lengths {sorted(lengths)}: not the same input")
    T = lengths.pop()
    t0 = int(min(max(t0, 0), T - 1))
    titles = dict(titles or {})
    n_cols = len(cells)
    subplot_titles = []
    for row in ROWS:
        for cell in cells:
            subplot_titles.append({
                "input": f"<b>{CELL_NAMES.get(cell, cell)}</b>"
                         + (f" · {titles[cell]}" if cell in titles else ""),
                "hidden": "hidden state h (−1 … 1)",
                "keep": KEEP_GATES[cell][1] if cell in KEEP_GATES else "",
                "grad": "‖∂loss/∂h<sub>t</sub>‖ (log scale)",
            }[row])
    grid = make_subplots(rows=len(ROWS), cols=n_cols, row_heights=list(ROW_HEIGHTS),
                         vertical_spacing=0.07, horizontal_spacing=0.045,
                         subplot_titles=subplot_titles)
    grid.update_layout(template="plotly_white")

    def axes(row: int, col: int) -> tuple[str, str]:
        ref = grid.get_subplot(row, col)
        return (ref.xaxis.plotly_name.replace("axis", ""), ref.yaxis.plotly_name.replace("axis", ""))

    layout = grid.to_plotly_json()["layout"]
    for ann in layout.get("annotations", []):  # subplot titles
        ann["font"] = dict(size=14 if ann["text"].startswith("<b>") else 13, color="#333")

    def axis(name: str) -> dict:
        return layout.setdefault(name[0] + "axis" + name[1:], {})

    data: list[dict] = []
    shapes: list[dict] = []
    images: list[dict] = []
    annotations: list[dict] = list(layout.get("annotations", []))
    steps = np.arange(T, dtype=np.float64)
    tokens = (list(inp.tokens) + [""] * T)[:T]
    lo_g, hi_g = gradient_range(list(traces.values()))
    cursor_traces, marker_traces, marker_values, word_traces = [], [], [], []

    for col, cell in enumerate(cells, start=1):
        tr = traces[cell]
        H = tr.hidden_size
        bottom_x = axes(len(ROWS), col)[0]
        for row in range(1, len(ROWS) + 1):
            xa, ya = axes(row, col)
            axis(xa).update(range=[-0.5, T - 0.5], showgrid=False, zeroline=False,
                            showticklabels=row == len(ROWS))
            if xa != bottom_x:
                axis(xa)["matches"] = bottom_x
        axis(bottom_x).update(title=dict(text="timestep t", standoff=4))

        # input, shaded by this cell's saliency (relative to its own largest)
        ix, iy = axes(1, col)
        sal = np.nan_to_num(tr.grad_input.astype(np.float64), nan=0.0, posinf=0.0)
        sal_max = float(sal.max()) if sal.size and sal.max() > 0 else 1.0
        if inp.values is None:
            show_text = T <= 12
            data.append(dict(
                type="scatter", x=steps, y=np.zeros(T), xaxis=ix, yaxis=iy,
                mode="markers+text" if show_text else "markers",
                text=tokens if show_text else None, textfont=dict(size=10),
                textposition=["top center" if i % 2 == 0 else "bottom center" for i in range(T)],
                marker=dict(symbol="square", size=max(4, min(14, 400 // max(T, 1))), color=sal,
                            cmin=0.0, cmax=sal_max,
                            colorscale=[list(p) for p in pcolors.get_colorscale(SALIENCY_SCALE)],
                            line=dict(width=0.5, color="#888")),
                hovertext=[f"t={i}: {tok}" for i, tok in enumerate(tokens)], hoverinfo="text",
                showlegend=False, name="input"))
            axis(iy).update(range=[-1.8, 1.8], showticklabels=False, showgrid=False,
                            zeroline=False)
            if not show_text:  # the word under the cursor, moving with it
                data.append(dict(type="scatter", x=[t0], y=[1.0], xaxis=ix, yaxis=iy,
                                 mode="text", text=[tokens[t0]], textfont=dict(size=14),
                                 textposition="top center", hoverinfo="skip",
                                 showlegend=False, name="word"))
                word_traces.append(len(data) - 1)
        else:
            vals = np.asarray(inp.values, dtype=np.float64).reshape(T, -1)[:, :2]
            finite = vals[np.isfinite(vals)]
            lo_v, hi_v = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            pad = 0.1 * (hi_v - lo_v or 1.0)
            lo_v, hi_v = lo_v - pad, hi_v + pad
            for j in range(vals.shape[1]):
                name = inp.value_names[j] if j < len(inp.value_names) else f"x[{j}]"
                path = line_path(steps, vals[:, j], ix, iy, ("#333", "#999")[j], name=name,
                                 width=1.5)
                path["showlegend"] = False  # the row's title names the lines
                shapes.append(path)
            images.append(dict(
                source=heatmap_png(sal[None, :], 0.0, sal_max, SALIENCY_SCALE, min_width=400,
                                   min_height=8),
                x=-0.5, y=hi_v, sizex=T, sizey=hi_v - lo_v, sizing="stretch", xanchor="left",
                yanchor="top", layer="below", xref=ix, yref=iy, opacity=0.7))
            axis(iy).update(range=[lo_v, hi_v], showgrid=False, zeroline=False, nticks=3)

        # units x time maps on fixed colour scales, drawn once as images
        maps = [(2, tr.hidden[-1, 0], SIGNED_SCALE, SIGNED_RANGE)]
        if cell in KEEP_GATES and KEEP_GATES[cell][0] in tr.gates:
            maps.append((3, tr.gates[KEEP_GATES[cell][0]][-1, 0], GATE_SCALE, GATE_RANGE))
        for row, z, scale, (lo, hi) in maps:
            mx, my = axes(row, col)
            images.append(dict(source=heatmap_png(np.asarray(z).T, lo, hi, scale, min_width=400),
                               x=-0.5, y=H - 0.5, sizex=T, sizey=H, sizing="stretch",
                               xanchor="left", yanchor="top", layer="below", xref=mx, yref=my))
            axis(my).update(range=[-0.5, H - 0.5], showgrid=False, zeroline=False,
                            **({"title": dict(text="unit", standoff=2)} if col == 1 else {}))
        if len(maps) == 1:  # the vanilla RNN: say why the row is empty
            mx, my = axes(3, col)
            axis(mx)["visible"] = False
            axis(my).update(visible=False, range=[0, 1])
            annotations.append(dict(x=(T - 1) / 2, y=0.5, xref=mx, yref=my, showarrow=False,
                                    text=NO_GATE_TEXT, font=dict(size=13, color="#666")))

        # gradient norms on one shared log scale, with a readout that follows the cursor
        gx, gy = axes(4, col)
        g = tr.grad_hidden[-1, 0].astype(np.float64)
        color = CELL_COLORS.get(cell, "#1f77b4")
        # plotly.js 4 reads a path shape on a log axis in data units (not log10 like a range)
        path = line_path(steps, np.where(g > 0, g, np.nan), gx, gy, color,
                         name=CELL_NAMES.get(cell, cell))
        path["showlegend"] = False
        shapes.append(path)
        axis(gy).update(type="log", range=[lo_g, hi_g], exponentformat="power", nticks=5,
                        showgrid=True, gridcolor="#e6e6e6")
        data.append(dict(type="scatter", x=[t0, t0], y=[0, 1], xaxis=bottom_x,
                         yaxis=CURSOR_AXIS, mode="lines", line=dict(color=CURSOR_COLOR, width=2),
                         hoverinfo="skip", showlegend=False, name="cursor"))
        cursor_traces.append(len(data) - 1)
        floor = 10 ** (lo_g + 0.15)
        shown = np.where(np.isfinite(g) & (g > 0), g, floor)
        marker_values.append((shown, g))
        data.append(dict(type="scatter", x=[t0], y=[float(shown[t0])], xaxis=gx, yaxis=gy,
                         mode="markers+text", text=[_fmt(float(g[t0]))],
                         textposition="top right" if t0 < T / 2 else "top left",
                         textfont=dict(size=13, color=color),
                         marker=dict(size=9, color=color, line=dict(width=1, color="#fff")),
                         hoverinfo="skip", showlegend=False, name="readout"))
        marker_traces.append(len(data) - 1)

    layout[CURSOR_AXIS[0] + "axis" + CURSOR_AXIS[1:]] = dict(
        domain=[0, 1], range=[0, 1], anchor="free", position=0, visible=False, fixedrange=True)

    # colour bars (layout images with tick labels), right of the last column
    bar_x = 1.008
    for k, (scale, (lo, hi), label) in enumerate(((SIGNED_SCALE, SIGNED_RANGE, "h"),
                                                  (GATE_SCALE, GATE_RANGE, "gates"))):
        image, labels = colour_bar(scale, lo, hi, label, x=bar_x, top=0.80 - 0.28 * k,
                                   length=0.2, width=0.01)
        images.append(image)
        annotations += labels

    # frames: only the cursors and the readouts move
    animated = cursor_traces + marker_traces + word_traces
    static = [i for i in range(len(data)) if i not in animated]
    order = static + animated
    frames = []
    for t in range(T):
        readouts = [{"x": [t], "y": [float(shown[t])], "text": [_fmt(float(g[t]))],
                     "textposition": "top right" if t < T / 2 else "top left"}
                    for shown, g in marker_values]
        words = [{"x": [t], "text": [tokens[t]]}] * len(word_traces)
        frame = {"name": str(t), "traces": order,
                 "data": [{}] * len(static) + [{"x": [t, t]}] * len(cursor_traces) + readouts
                 + words}
        if t % 10 == 0:
            frame["group"] = "every10"
        frames.append(frame)

    def play(label: str, duration: int, group=None) -> dict:
        return dict(label=label, method="animate",
                    args=[group, dict(frame=dict(duration=duration, redraw=False),
                                      transition=dict(duration=0), fromcurrent=True,
                                      mode="immediate")])

    # Plotly redraws every slider step on every frame: at most ~50 steps (see core.figures.explore).
    stride = max(1, math.ceil(T / MAX_SLIDER_STEPS))
    slider_steps = sorted(set(range(0, T, stride)) | {t0, T - 1})  # the start step is a stop
    active = min(range(len(slider_steps)), key=lambda i: abs(slider_steps[i] - t0))
    layout.update(
        font=FONT, height=height, margin=dict(l=60, r=70, t=100, b=50), showlegend=True,
        legend=dict(orientation="h", x=1.0, xanchor="right", y=1.0, yanchor="bottom",
                    font=dict(size=12)),
        hovermode="closest", plot_bgcolor="rgba(0,0,0,0)",
        updatemenus=[dict(
            type="buttons", direction="left", showactive=True, x=0.0, y=1.0, xanchor="left",
            yanchor="bottom", pad=dict(t=0, b=38), font=dict(size=14),
            buttons=[play("▶ Play", 60), dict(
                label="❚❚ Pause", method="animate",
                args=[[None], dict(frame=dict(duration=0, redraw=False),
                                   transition=dict(duration=0), mode="immediate")]),
                play("Slow", 300), play("Fast ×10", 40, "every10")])],
        sliders=[dict(
            active=active, x=0.45, len=0.55, y=1.0, yanchor="bottom", pad=dict(t=0, b=22),
            currentvalue=dict(prefix="step t = ", font=dict(size=15, color="#1f2430")),
            transition=dict(duration=0), font=dict(size=1, color="rgba(0,0,0,0)"),
            tickcolor="rgba(0,0,0,0)", ticklen=0, minorticklen=0,
            steps=[dict(method="animate",
                        label=f"{t} · {tokens[t]}" if tokens[t] else str(t),
                        args=[[str(t)], dict(mode="immediate",
                                             frame=dict(duration=0, redraw=False),
                                             transition=dict(duration=0))])
                   for t in slider_steps])],
    )
    layout["annotations"] = annotations
    layout["images"] = images
    layout["shapes"] = shapes
    return PlainFigure(data, layout, frames)


def gradient_overlay_figure(decays: Mapping[str, GradientDecay], *, height: int = 420
                            ) -> go.Figure:
    """norm(d loss / d h_t) against distance from the last step, one line per cell, on a log
    scale, with each cell's fitted decay (dashed) and its factor per step in the legend."""
    fig = go.Figure()
    positive = []
    for cell, decay in decays.items():
        color = CELL_COLORS.get(cell, "#1f77b4")
        norm = np.asarray(decay.norm, dtype=np.float64)
        shown = np.where(np.isfinite(norm) & (norm > 0), norm, np.nan)
        positive.append(shown[np.isfinite(shown)])
        name = CELL_NAMES.get(cell, cell)
        if math.isfinite(decay.per_step):
            half = decay.half_life
            half_text = (f", half-life {half:.1f} steps" if math.isfinite(half)
                         else ", grows" if decay.per_step > 1 else "")
            legend = f"{name}: ×{decay.per_step:.3f} per step{half_text}"
        else:
            legend = f"{name}: too few steps to fit"
        fig.add_trace(go.Scatter(x=decay.distance, y=shown, mode="lines", name=legend,
                                 legendgroup=cell, line=dict(color=color, width=2.5),
                                 hovertemplate=f"{name}<br>%{{x}} steps from the end: "
                                               "%{y:.2e}<extra></extra>"))
        if math.isfinite(decay.per_step) and decay.span >= 2:
            fitted = decay.fitted()
            upto = int(decay.distance[np.isfinite(shown)].max()) if np.isfinite(shown).any() else 0
            keep = decay.distance <= upto
            fig.add_trace(go.Scatter(x=decay.distance[keep], y=fitted[keep], mode="lines",
                                     name=f"{name} fit", legendgroup=cell, showlegend=False,
                                     line=dict(color=color, width=1.5, dash="dash"),
                                     hoverinfo="skip"))
        vanished = ~np.isfinite(shown)
        if vanished.any() and np.isfinite(shown).any():
            first = int(decay.distance[vanished][0])
            fig.add_annotation(x=first, y=math.log10(np.nanmin(shown)), text="→ 0 (underflow)",
                               showarrow=False, xanchor="left", yshift=-12,
                               font=dict(size=12, color=color))
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
        yaxis=dict(title="‖∂loss/∂h<sub>t</sub>‖ (log scale)", type="log", range=[lo, hi],
                   exponentformat="power"),
    )
    return fig


def accuracy_distance_figure(rows: Mapping[str, Sequence[Mapping]], *, chance: float = 0.5,
                             height: int = 380) -> go.Figure:
    """Agreement accuracy against subject–verb distance, one line per cell, on a fixed 0–1
    scale with chance marked."""
    fig = go.Figure()
    for cell, points in rows.items():
        fig.add_trace(go.Scatter(
            x=[p["distance"] for p in points], y=[p["accuracy"] for p in points],
            mode="lines+markers", name=CELL_NAMES.get(cell, cell),
            line=dict(color=CELL_COLORS.get(cell, "#1f77b4"), width=2.5), marker=dict(size=5),
            customdata=[[p.get("n", 0), p.get("attractors", 0.0)] for p in points],
            hovertemplate=(f"{CELL_NAMES.get(cell, cell)}<br>distance %{{x}}: accuracy "
                           "%{y:.0%}<br>%{customdata[0]} sentences, %{customdata[1]:.1f} "
                           "attractors on average<extra></extra>")))
    fig.add_hline(y=chance, line=dict(color="#6b6f7b", dash="dot"),
                  annotation_text="chance", annotation_position="bottom right")
    fig.update_layout(
        template="plotly_white", font=FONT, height=height, margin=dict(l=70, r=20, t=30, b=50),
        legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom"),
        xaxis=dict(title="words from subject to verb", rangemode="tozero"),
        yaxis=dict(title="held-out accuracy", range=[0, 1.03], tickformat=".0%"),
    )
    return fig
