"""Figure builders for the Gradient lab and the Train page: pure functions from data to Plotly.

- `gradient_profile_figure`: how strong d output / d h_t still is k steps back from the end,
  relative to the last step, on a log scale, with the fitted factor per step and a line at 1.
- `loss_figure`, `metric_figure`, `grad_norm_figure`, `loss_spread_figure`: live training curves
  from lists of `core.training.loop.ProgressEvent`, one line per run.

Long runs are thinned to at most `MAX_POINTS` points per line (mean per bin for losses, max per
bin for gradient norms, so a spike survives), so a figure redrawn every second stays small.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from core.views.lab import GradientProfile
from core.training.loop import ProgressEvent
# CELL_COLORS (the registry's colour of each cell, by key) is imported from here by the pages;
# runs that are not a cell take PALETTE's colours in order.
from core.figures.style import CELL_COLORS, FONT, OKABE_ITO, PALETTE

__all__ = [
    "CELL_COLORS", "MAX_POINTS", "describe_factor", "grad_norm_figure", "gradient_profile_figure",
    "loss_figure", "loss_spread_figure", "metric_figure", "rolling_std", "thin",
]

MAX_POINTS = 400
REFERENCE_COLOR = "#6b6f7b"
FLOAT32_TINY = float(np.finfo(np.float32).tiny)

Runs = Mapping[str, Sequence[ProgressEvent]]


def _figure(title: str, x_title: str, y_title: str, log_y: bool = True, height: int = 420
            ) -> go.Figure:
    """An empty figure in the house style. The layout goes in at construction: set after the
    traces it costs several times more, and these figures are rebuilt every second."""
    axis = dict(showgrid=True, gridcolor="#e6e8ee", zeroline=False, linecolor="#9aa0ac",
                ticks="outside")
    return go.Figure(layout=dict(
        title=dict(text=title, x=0.01, xanchor="left", font=dict(size=16)),
        font=FONT, height=height, margin=dict(l=70, r=20, t=50, b=10),
        plot_bgcolor="white", paper_bgcolor="white", hovermode="x unified",
        legend=dict(orientation="h", yanchor="top", y=-0.27, xanchor="left", x=0.0),
        xaxis=dict(axis, title=dict(text=x_title)),
        yaxis=dict(axis, title=dict(text=y_title), type="log" if log_y else "linear",
                   exponentformat="power" if log_y else "none"),
    ))


def _color(label: str, index: int, colors: Mapping[str, str] | None) -> str:
    if colors and label in colors:
        return colors[label]
    return PALETTE[index % len(PALETTE)]


def thin(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS, how: str = "mean"
         ) -> tuple[np.ndarray, np.ndarray]:
    """At most `max_points` points: consecutive bins reduced by mean (or max), x at each bin's
    last point. Non-finite values stay visible: a bin holding one shows it (nan or inf)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n = len(x)
    if n <= max_points:
        return x, y
    starts = np.unique(np.linspace(0, n, max_points, endpoint=False).astype(int))
    finite = np.isfinite(y)
    clean = np.where(finite, y, 0.0)
    if how == "max":
        reduced = np.maximum.reduceat(np.where(finite, y, -np.inf), starts)
    else:
        reduced = np.add.reduceat(clean, starts) / np.diff(np.append(starts, n))
    bad_in_bin = np.add.reduceat((~finite).astype(int), starts) > 0
    if bad_in_bin.any():  # the bin's first non-finite value, so a NaN or an inf is never hidden
        first_bad = {int(np.searchsorted(starts, i, side="right") - 1): y[i]
                     for i in np.flatnonzero(~finite)[::-1]}
        for b in np.flatnonzero(bad_in_bin):
            reduced[b] = first_bad[int(b)]
    ends = np.append(starts[1:], n) - 1
    return x[ends], reduced


def _positive(y: np.ndarray) -> np.ndarray:
    """Values a log axis can draw; zeros, negatives and inf become NaN, which Plotly leaves as
    gaps. (A numpy array travels as a compact typed array; a list of None would be slower.)"""
    y = np.asarray(y, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(y) & (y > 0), y, np.nan)


# -- the gradient profile ----------------------------------------------------------------------

def describe_factor(per_step: float) -> str:
    if not math.isfinite(per_step):
        return "no fit (too few finite steps)"
    if per_step < 1:
        half_life = math.log(0.5) / math.log(per_step) if per_step > 0 else 0.0
        return f"× {per_step:.3f} per step back: halves every {half_life:.1f} steps (vanishing)"
    if per_step > 1:
        doubling = math.log(2) / math.log(per_step)
        return f"× {per_step:.3f} per step back: doubles every {doubling:.1f} steps (exploding)"
    return "× 1.000 per step back: neither vanishing nor exploding"


def gradient_profile_figure(profile: GradientProfile, cell_label: str = "") -> go.Figure:
    """Norm of d output / d h_t relative to the last step, against steps back in time."""
    decay = profile.decay
    distance = decay.distance
    reference = decay.norm[0]
    # Three lines, and the axis title two: on one, the title ran out of a 1280 px window's chart
    # ("… halves every 1.5 st"), and on two out of the lab's 320 px column at 150% zoom.
    factor = describe_factor(profile.per_step).replace(": ", ":<br>", 1)  # as the lab states it
    title = f"{cell_label} gradient through time:<br>{factor}".strip()
    fig = _figure(title, "steps back from the last step<br>(where the output is read)",
                  "relative gradient norm", log_y=True, height=500)  # its 1: the dotted line
    fig.update_layout(margin_t=108, legend_y=-0.36)  # the legend under the two-line axis title
    scale = reference if reference > 0 and np.isfinite(reference) else 1.0
    relative = decay.norm / scale
    fig.add_trace(go.Scatter(
        x=distance, y=_positive(relative), mode="lines+markers", name="‖dŷ/dh_t‖ (measured)",
        line=dict(color=OKABE_ITO["blue"], width=2.5), marker=dict(size=4),
        hovertemplate="%{x} steps back: %{y:.3g}<extra>hidden state</extra>",
    ))
    if profile.cell_decay is not None:
        fig.add_trace(go.Scatter(
            x=distance, y=_positive(profile.cell_decay.norm / scale), mode="lines",
            name="‖dŷ/dc_t‖ (cell state)", line=dict(color=OKABE_ITO["reddish purple"], width=2, dash="dot"),
            hovertemplate="%{x} steps back: %{y:.3g}<extra>cell state</extra>",
        ))
    if math.isfinite(decay.per_step):
        # only over the steps the fit used: up to the first overflow, if there is one
        finite = np.isfinite(decay.norm)
        fitted_until = len(distance) if finite.all() else int(np.argmin(finite))
        if decay.floor_from is not None:  # the fit covers the falling part only
            fitted_until = min(fitted_until, decay.floor_from)
        fitted = decay.fitted()[:fitted_until] / scale
        fig.add_trace(go.Scatter(
            x=distance[:fitted_until], y=_positive(fitted), mode="lines",
            name=f"fit: × {decay.per_step:.3f} per step", line=dict(color=OKABE_ITO["orange"], width=2,
                                                                       dash="dash"),
            hoverinfo="skip",
        ))
    _reference_line(fig, (1.0, "1 = as strong as at the last step"), position="top")
    vanished = np.isfinite(relative) & (decay.norm <= FLOAT32_TINY)
    if vanished.any():
        first = int(np.argmax(vanished))
        fig.add_vrect(x0=first - 0.5, x1=distance[-1] + 0.5, fillcolor="#c7cbd6", opacity=0.25,
                      line_width=0, annotation_text="vanished below float32's smallest number",
                      annotation_position="top left")
    if profile.overflowed:
        message = (f"Overflow at step {profile.overflow_step}:<br>the forward pass itself "
                   "exploded (|h| > 3.4e38)")
    elif not np.isfinite(decay.norm).all():
        first = int(np.argmin(np.isfinite(decay.norm)))
        message = f"Overflow {first} steps back:<br>the gradient exceeded 3.4e38"
    else:
        message = None
    if message:
        fig.add_annotation(text=message, xref="paper", yref="paper", x=0.5, y=0.5,
                           showarrow=False, font=dict(size=15, color="#b00020"),
                           bgcolor="rgba(255,255,255,0.85)")
    _floor_and_decades(fig, decay, relative, scale)
    fig.update_xaxes(range=[-0.5, distance[-1] + 0.5])
    return fig


def _floor_and_decades(fig: go.Figure, decay, relative: np.ndarray, scale: float) -> None:
    """Where the curve stops falling (not fitted), as a dotted level; and tick labels at whole
    decades only: plotly's own choice on a short log range labels minor ticks too, and printed
    a "5" (meaning 0.5) under the "1"."""
    if decay.floor_from is not None and decay.floor is not None:
        level = decay.floor / scale
        fig.add_trace(go.Scatter(
            x=[decay.floor_from, decay.distance[-1]], y=[level, level], mode="lines",
            name="flat from here: not fitted", line=dict(color="#6b6f7b", width=1.5, dash="dot"),
            hoverinfo="skip"))
    shown = _positive(relative)
    logs = np.log10(shown[np.isfinite(shown)])
    if logs.size:
        span = float(max(logs.max(), 0.0) - min(logs.min(), 0.0))
        fig.update_yaxes(dtick=max(1, math.ceil(span / 6)), minor=dict(showgrid=False))


# -- live training -----------------------------------------------------------------------------

def _series(events: Sequence[ProgressEvent], field: str) -> tuple[np.ndarray, np.ndarray]:
    pairs = [(e.step, getattr(e, field)) for e in events if getattr(e, field) is not None]
    if not pairs:
        return np.empty(0), np.empty(0)
    steps, values = zip(*pairs)
    return np.array(steps, dtype=np.float64), np.array(values, dtype=np.float64)


def _heldout_series(events: Sequence[ProgressEvent], field: str, every: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """One point per held-out evaluation. core.training.loop evaluates every `every` steps and at the
    last step; events in between repeat the last value. Without `every`, a point is kept where
    the value first appears or changes."""
    steps, values, last = [], [], None
    for e in events:
        value = getattr(e, field)
        if value is None:
            continue
        if every:
            keep = e.step % every == 0 or e.step == e.total_steps
        else:
            keep = value != last
        if keep:
            steps.append(e.step)
            values.append(value)
        last = value
    return np.array(steps, dtype=np.float64), np.array(values, dtype=np.float64)


def _reference_line(fig: go.Figure, reference: tuple[float, str] | None, log_y: bool = True,
                    position: str = "bottom") -> None:
    """A dotted horizontal line at `value`, labelled at its right end.

    The label is an annotation of its own: add_hline's annotation lands at the wrong height on
    a log axis (there, annotation y is log10 of the value)."""
    if reference is None or not math.isfinite(reference[0]) or (log_y and reference[0] <= 0):
        return
    value, name = reference
    fig.add_hline(y=value, line=dict(color=REFERENCE_COLOR, width=1.5, dash="dot"))
    fig.add_annotation(text=name, x=1, xref="paper", xanchor="right",
                       y=math.log10(value) if log_y else value, yref="y",
                       yanchor="top" if position == "bottom" else "bottom", showarrow=False,
                       font=dict(color=REFERENCE_COLOR, size=13))


def _ends(fig: go.Figure, runs: Runs, ended: Mapping[str, str] | None, field: str,
          colors: Mapping[str, str] | None) -> None:
    """An ✕ where a run diverged, a square where a user stopped it."""
    for index, (label, events) in enumerate(runs.items()):
        status = (ended or {}).get(label)
        if status not in ("diverged", "stopped") or not events:
            continue
        steps, values = _series(events, field)
        finite = np.isfinite(values) & (values > 0)
        if not finite.any():
            continue
        x, y = steps[finite][-1], values[finite][-1]
        fig.add_trace(go.Scatter(
            x=[x], y=[y], mode="markers+text", showlegend=False, hoverinfo="skip",
            marker=dict(symbol="x" if status == "diverged" else "square", size=14,
                        color=_color(label, index, colors), line=dict(width=2)),
            text=[status], textposition="top left",
            textfont=dict(color=_color(label, index, colors)),
        ))


def loss_figure(runs: Runs, reference: tuple[float, str] | None = None,
                ended: Mapping[str, str] | None = None, colors: Mapping[str, str] | None = None,
                title: str = "Loss: training (solid) and held-out (dashed)", heldout_every: Mapping[str, int] | None = None
                ) -> go.Figure:
    """Training loss per step (thin line) and held-out loss (dashed, with markers), log scale.
    `reference`: (value, name) of a horizontal line, e.g. the adding problem's baseline MSE.
    `heldout_every`: each run's TrainConfig.heldout_every, to find its evaluations."""
    fig = _figure(title, "training step", "loss (log scale)")
    for index, (label, events) in enumerate(runs.items()):
        color = _color(label, index, colors)
        steps, loss = _series(events, "loss")
        x, y = thin(steps, loss)
        fig.add_trace(go.Scatter(x=x, y=_positive(y), mode="lines", name=label,
                                 line=dict(color=color, width=1.6), legendgroup=label))
        hx, hy = _heldout_series(events, "heldout_loss", (heldout_every or {}).get(label))
        if len(hx):
            fig.add_trace(go.Scatter(x=hx, y=_positive(hy), mode="lines+markers",
                                     name=f"{label}: held-out", legendgroup=label,
                                     showlegend=False,  # the title says: dashed = held-out
                                     line=dict(color=color, width=2.4, dash="dash"),
                                     marker=dict(size=6)))
    if reference is not None:
        _reference_line(fig, (reference[0], f"{reference[1]}: {reference[0]:.3g}"))
    _ends(fig, runs, ended, "loss", colors)
    return fig


def metric_figure(runs: Runs, metric_name: str, baseline: tuple[float, str] | None = None,
                  higher_is_better: bool = True, colors: Mapping[str, str] | None = None,
                  heldout_every: Mapping[str, int] | None = None) -> go.Figure:
    """The held-out metric at each evaluation, next to the task's trivial baseline."""
    better = "higher is better" if higher_is_better else "lower is better"
    fig = _figure(f"Held-out {metric_name} ({better})", "training step", metric_name,
                  log_y=False)
    for index, (label, events) in enumerate(runs.items()):
        hx, hy = _heldout_series(events, "heldout_metric", (heldout_every or {}).get(label))
        fig.add_trace(go.Scatter(x=hx, y=np.where(np.isfinite(hy), hy, np.nan),
                                 mode="lines+markers", name=label,
                                 line=dict(color=_color(label, index, colors), width=2.4),
                                 marker=dict(size=6)))
    if baseline is not None:
        _reference_line(fig, (baseline[0], f"{baseline[1]}: {baseline[0]:.3g}"), log_y=False)
    return fig


def grad_norm_figure(runs: Runs, clip_norm: float | None = None,
                     ended: Mapping[str, str] | None = None,
                     colors: Mapping[str, str] | None = None) -> go.Figure:
    """The norm of the whole gradient at each update, before clipping, on a log scale (the
    largest per bin when thinned, so a spike shows), with the clipping threshold as a line."""
    fig = _figure("Gradient norm per update, before clipping", "training step",
                  "‖gradient‖ (log scale)")
    for index, (label, events) in enumerate(runs.items()):
        steps, norms = _series(events, "grad_norm")
        x, y = thin(steps, norms, how="max")
        fig.add_trace(go.Scatter(x=x, y=_positive(y), mode="lines", name=label,
                                 line=dict(color=_color(label, index, colors), width=1.8)))
    if clip_norm is not None:
        _reference_line(fig, (clip_norm, f"clipped to {clip_norm:g}"))
    _ends(fig, runs, ended, "grad_norm", colors)
    return fig


def rolling_std(values: np.ndarray, window: int) -> np.ndarray:
    """Standard deviation over the last `window` values at each point (nan until full)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.full(len(values), np.nan)
    if window < 2 or len(values) < window:
        return out
    windows = np.lib.stride_tricks.sliding_window_view(values, window)
    out[window - 1:] = windows.std(axis=1)
    return out


def loss_spread_figure(runs: Runs, window: int = 50, colors: Mapping[str, str] | None = None
                       ) -> go.Figure:
    """How much the training loss jumps from batch to batch: its rolling standard deviation
    over `window` progress events. A more volatile loss sits higher."""
    fig = _figure(f"Loss spread (rolling std, {window} points)",
                  "training step", "std of the loss (log scale)")
    for index, (label, events) in enumerate(runs.items()):
        steps, loss = _series(events, "loss")
        spread = rolling_std(loss, window)
        x, y = thin(steps, spread)
        fig.add_trace(go.Scatter(x=x, y=_positive(y), mode="lines", name=label,
                                 line=dict(color=_color(label, index, colors), width=2)))
    return fig
