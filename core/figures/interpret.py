"""Figure builders of the Interpretability lab: pure functions from core.interpret's
measurements to Plotly figures.

- `saturation_figure`: one scatter per gate and layer (Karpathy et al. 2015, fig. 4): a dot per
  unit at (share of steps below lo, share above hi); each dot carries [layer, direction, unit]
  as customdata, which the page reads from a click;
- `memory_map_figure`: the product of one unit's keep gate from step s to step t, one sequence;
- `tau_figure`: every unit's time constant τ, on a log axis;
- `spread_figure`: over the batch, each sequence's mean keep gate and how long its gates keep a
  state at 1/e or more, against τ;
- `by_distance_figure`, `sweep_figure`, `duel_figure`: interventions' before and after.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.cells import CELLS
from core.figures.style import FONT, GATE_SCALE, OKABE_ITO, PALETTE

AXIS = dict(showgrid=True, gridcolor="#e6e8ee", zeroline=False, linecolor="#9aa0ac",
            ticks="outside")
GREY = "#6b6f7b"
BEFORE_COLOR, AFTER_COLOR = OKABE_ITO["blue"], OKABE_ITO["vermillion"]
CONFIG = {"displaylogo": False, "scrollZoom": False}


def _layout(fig: go.Figure, height: int, title: str = "", **more) -> go.Figure:
    fig.update_layout(
        font=FONT, height=height, plot_bgcolor="white", paper_bgcolor="white",
        margin=dict(l=70, r=20, t=60 if title else 30, b=60),
        title=dict(text=title, x=0.01, xanchor="left", font=dict(size=15)) if title else None,
        **more)
    fig.update_xaxes(**AXIS)
    fig.update_yaxes(**AXIS)
    return fig


def _gate_name(cell: str, gate: str) -> str:
    return CELLS[cell].gate(gate).label.partition(" (")[0]


def saturation_figure(sat, height_per_row: int = 330) -> go.Figure:
    """One panel per gate (columns) and layer and direction (rows): a dot per unit."""
    gates = list(dict.fromkeys(g.gate for g in sat.gates))
    places = list(dict.fromkeys((g.layer, g.direction) for g in sat.gates))
    several = len(places) > 1
    titles = [_gate_name(sat.cell_type, gate)
              + (f" · layer {layer}{' reverse' if direction else ''}" if several else "")
              for layer, direction in places for gate in gates]
    fig = make_subplots(rows=len(places), cols=len(gates), subplot_titles=titles,
                        horizontal_spacing=0.07, vertical_spacing=0.14 / max(1, len(places) - 1)
                        if several else 0.1)
    for g in sat.gates:
        row, col = places.index((g.layer, g.direction)) + 1, gates.index(g.gate) + 1
        units = np.arange(len(g.left))
        fig.add_trace(go.Scatter(
            x=g.left, y=g.right, mode="markers", name=titles[(row - 1) * len(gates) + col - 1],
            marker=dict(size=9, color=PALETTE[(col - 1) % len(PALETTE)], opacity=0.75,
                        line=dict(width=0.5, color="white")),
            # plain lists: a typed array's rows reach a click's selection as {"0": ..} dicts
            customdata=[[g.layer, g.direction, int(u)] for u in units],
            hovertemplate=(f"unit %{{customdata[2]}}<br>below {sat.lo:g}: %{{x:.1%}} of steps"
                           f"<br>above {sat.hi:g}: %{{y:.1%}}<extra></extra>"),
            showlegend=False), row=row, col=col)
        # the edge no unit can cross: a step is below lo, above hi, or neither
        fig.add_trace(go.Scatter(x=[0, 1], y=[1, 0], mode="lines", hoverinfo="skip",
                                 line=dict(color="#c5c9d2", dash="dot", width=1),
                                 showlegend=False), row=row, col=col)
    _layout(fig, height_per_row * len(places) + 40, clickmode="event+select", dragmode=False)
    fig.update_xaxes(range=[-0.03, 1.03], tickformat=".0%", title_text=f"steps below {sat.lo:g}",
                     title_standoff=4)
    fig.update_yaxes(range=[-0.03, 1.03], tickformat=".0%", title_standoff=4)
    fig.update_yaxes(title_text=f"steps above {sat.hi:g}", col=1)
    fig.update_annotations(font=dict(size=14))
    return fig


def memory_map_figure(M: np.ndarray, tokens: Sequence[str], unit: int, gate: str,
                      reverse: bool = False) -> go.Figure:
    """M[s, t] = the product of the keep gate over the steps from s to t: how much of the state
    at s still reaches t. Step s down, step t across; the other triangle is empty."""
    n = M.shape[0]
    words = [str(w) for w in tokens[:n]]
    hover = None
    if n <= 100:  # every cell's words in its hover: n² strings, kept small
        hover = [[f"from s={s} “{words[s]}” to t={t} “{words[t]}”: {M[s, t]:.3f}"
                  if np.isfinite(M[s, t]) else "" for t in range(n)] for s in range(n)]
    fig = go.Figure(go.Heatmap(
        z=np.where(np.isfinite(M), M, None), zmin=0, zmax=1, colorscale=GATE_SCALE,
        text=hover, hoverinfo="text" if hover else None,
        hovertemplate=None if hover else "s=%{y}, t=%{x}: %{z:.3f}<extra></extra>",
        colorbar=dict(title=dict(text="kept", side="right"), thickness=14, len=0.9)))
    _layout(fig, 430, f"∏ {gate} from step s to step t (unit {unit})")
    fig.update_xaxes(title_text="t (later step)" if not reverse else "t (earlier step)",
                     showgrid=False, constrain="domain")
    fig.update_yaxes(title_text="s (the state's step)", autorange="reversed", showgrid=False)
    return fig


def tau_figure(tau: np.ndarray, unit: int, gate: str, steps: float, height: int = 330
               ) -> go.Figure:
    """Every unit's τ = −1/ln(mean gate) as a bar on a log axis, the chosen unit in red, the
    batch's mean sequence length dotted. An infinite τ (mean gate 1) reaches the top, marked
    ∞ in its hover."""
    tau = np.asarray(tau, dtype=np.float64)
    finite = tau[np.isfinite(tau) & (tau > 0)]
    top = max(float(finite.max()) if finite.size else 1.0, steps) * 3
    shown = np.where(np.isinf(tau), top, tau)
    colors = [AFTER_COLOR if u == unit else "#8fb4d9" for u in range(len(tau))]
    labels = ["∞" if np.isinf(t) else f"{t:.3g}" for t in tau]
    fig = go.Figure(go.Bar(
        x=np.arange(len(tau)), y=shown, marker=dict(color=colors), customdata=labels,
        hovertemplate="unit %{x}: τ = %{customdata} steps<extra></extra>"))
    # on a log axis an annotation's y is in log10 units, a shape's in data units; add_hline
    # would put its label at 10^steps
    fig.add_shape(type="line", xref="paper", x0=0, x1=1, y0=steps, y1=steps,
                  line=dict(color=GREY, dash="dot"))
    fig.add_annotation(xref="paper", x=1, y=math.log10(steps), xanchor="right",
                       yanchor="bottom", showarrow=False, text=f"mean sequence: {steps:.0f} steps",
                       font=dict(size=12, color=GREY), bgcolor="rgba(255,255,255,0.8)")
    _layout(fig, height, f"τ per unit from its mean {gate} (red: unit {unit})")
    low = math.floor(math.log10(max(float(finite.min()) if finite.size else 0.1, 1e-3)))
    high = math.ceil(math.log10(top * 1.5))
    fig.update_yaxes(type="log", title_text="τ (steps)", range=[low, high],
                     tickvals=[10.0 ** k for k in range(low, high + 1)],
                     ticktext=[f"{10.0 ** k:g}" for k in range(low, high + 1)])
    fig.update_xaxes(title_text="unit")
    return fig


def spread_figure(sequence_mean: np.ndarray, spans: np.ndarray, tau: float, unit: int,
                  gate: str, height: int = 330) -> go.Figure:
    """Over the batch, for one unit: each sequence's mean keep gate (left) and the most steps
    its gates keep a state at 1/e or more (right), against τ from the batch's mean gate."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=(
        f"unit {unit}: each sequence's mean {gate}",
        f"unit {unit}: steps a state keeps ≥ 1/e"))
    fig.add_trace(go.Histogram(x=sequence_mean, nbinsx=30, marker_color="#8fb4d9",
                               hovertemplate="mean %{x}: %{y} sequences<extra></extra>"), 1, 1)
    width = max(1, math.ceil(float(np.max(spans, initial=0)) / 40))  # whole steps per bin
    fig.add_trace(go.Histogram(x=spans, marker_color="#9ccf9c", xbins=dict(size=width),
                               hovertemplate="%{x} steps: %{y} sequences<extra></extra>"), 1, 2)
    _layout(fig, height, showlegend=False, bargap=0.05)
    fig.update_xaxes(title_text=f"mean {gate}", row=1, col=1)
    fig.update_xaxes(title_text="steps", row=1, col=2)
    fig.update_yaxes(title_text="sequences", row=1, col=1)
    # the titles clear of the top tick labels, which centre on the plots' top edge
    fig.update_annotations(font=dict(size=13), yshift=10)
    fig.update_layout(margin=dict(t=50))
    if math.isfinite(tau):
        fig.add_vline(x=tau, line=dict(color=AFTER_COLOR, dash="dash"), row=1, col=2,
                      annotation_text=f"τ = {tau:.3g}", annotation_position="top right",
                      annotation_font=dict(color=AFTER_COLOR, size=12))
    return fig


def by_distance_figure(table: pd.DataFrame, height: int = 360) -> go.Figure:
    """Agreement: accuracy at each subject-verb distance before and after the intervention."""
    fig = go.Figure()
    for column, color, dash, width in (("before", BEFORE_COLOR, "solid", 4),
                                       ("after", AFTER_COLOR, "dash", 2.5)):
        fig.add_trace(go.Scatter(
            x=table["distance"], y=table[column], mode="lines+markers", name=column,
            line=dict(color=color, dash=dash, width=width), customdata=table["n"],
            hovertemplate=(f"{column}: distance %{{x}}, accuracy %{{y:.0%}} "
                           "(%{customdata} sentences)<extra></extra>")))
    fig.add_hline(y=0.5, line=dict(color=GREY, dash="dot"), annotation_text="chance",
                  annotation_position="bottom right", annotation_font=dict(size=12, color=GREY))
    _layout(fig, height, "Accuracy by subject–verb distance, before and after",
            legend=dict(orientation="h", x=0, y=-0.3, yanchor="top"))
    fig.update_layout(margin=dict(b=100))
    fig.update_xaxes(title_text="words from subject to verb", rangemode="tozero")
    fig.update_yaxes(title_text="accuracy", range=[0, 1.03], tickformat=".0%")
    return fig


def sweep_figure(table: pd.DataFrame, measure: str, quantity: str, share: bool = True,
                 height: int = 340) -> go.Figure:
    """The harm of ablating each unit alone (the measure before minus after, or after minus
    before where lower is better), by unit. `share`: the measure is a share, shown in %."""
    ordered = table.sort_values("unit")
    number = ".1%" if share else ".4g"
    fig = go.Figure(go.Bar(
        x=ordered["unit"], y=ordered["harm"], marker_color=AFTER_COLOR,
        customdata=np.stack([ordered["before"], ordered["after"]], axis=1),
        hovertemplate=(f"{quantity}%{{x}} ablated: {measure} %{{customdata[0]:{number}}} → "
                       f"%{{customdata[1]:{number}}}<extra></extra>")))
    _layout(fig, height, f"Harm of ablating one {quantity} unit at a time ({measure})")
    fig.update_xaxes(title_text="unit")
    fig.update_yaxes(title_text=f"{measure} lost", zeroline=True, zerolinecolor="#9aa0ac",
                     tickformat=".1%" if share else None)
    return fig


def duel_figure(table: pd.DataFrame, measure: str, share: bool = True, height: int = 420
                ) -> go.Figure:
    """The measure after ablating the k best feature units (a line) against k random units
    (grey dots, one per draw; their mean dashed), with the measure before any ablation.
    `share`: the measure is a share, shown in %."""
    number = ".1%" if share else ".4g"
    feature = table[table["chosen"] == "feature"]
    random = table[table["chosen"] == "random"]
    means = random.groupby("k", sort=True)["after"].mean()
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=random["k"], y=random["after"], mode="markers", name="k random units (each draw)",
        marker=dict(color="#a7abb5", size=8), customdata=random["units"],
        hovertemplate=f"k=%{{x}}: %{{y:{number}}}<br>ablated: %{{customdata}}<extra></extra>"))
    fig.add_trace(go.Scatter(x=means.index, y=means.values, mode="lines",
                             name="k random units (mean)", line=dict(color=GREY, dash="dash"),
                             hovertemplate=f"k=%{{x}}: mean %{{y:{number}}}<extra></extra>"))
    fig.add_trace(go.Scatter(
        x=feature["k"], y=feature["after"], mode="lines+markers",
        name="the k units that follow the feature best",
        line=dict(color=AFTER_COLOR, width=3), marker=dict(size=9),
        customdata=feature["units"],
        hovertemplate=f"k=%{{x}}: %{{y:{number}}}<br>ablated: %{{customdata}}<extra></extra>"))
    before = float(table["before"].iloc[0])
    fig.add_hline(y=before, line=dict(color=BEFORE_COLOR, dash="dot"),
                  annotation_text=f"nothing ablated: {before:{number}}",
                  annotation_position="bottom left", annotation_font=dict(size=12,
                                                                          color=BEFORE_COLOR))
    ks = sorted(set(table["k"]))
    _layout(fig, height, f"Top-k feature units against k random units ({measure})",
            legend=dict(orientation="h", x=0, y=-0.38, yanchor="top"))
    fig.update_layout(margin=dict(b=150))
    fig.update_xaxes(title_text="k units ablated", type="log", tickvals=ks,
                     ticktext=[str(k) for k in ks])
    fig.update_yaxes(title_text=measure, tickformat=".0%" if share else None)
    return fig


__all__ = ["CONFIG", "by_distance_figure", "duel_figure", "memory_map_figure",
           "saturation_figure", "spread_figure", "sweep_figure", "tau_figure"]
