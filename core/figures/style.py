"""The house style of every figure: fonts, fixed colour scales, cell names and colours (from the
registry, core/cells.py), maps as PNG images, plain-dict figures without a template, colour
bars, line paths, and the input row's pieces both animated figures draw.

Why maps are images and figures plain dicts (measured in Chromium, see benchmarks/ui_speed.py):
Plotly animates heatmap traces at 1-2 frames per second at 1,000 steps (plotly.js #6533), and
with `redraw: False` it erases every heatmap a frame does not redraw (plotly.js #4491). So units
x time maps are drawn once, server-side, as colour-mapped PNG layout images, which animation
frames never touch and which cost about the raw data's bytes. Lines are layout paths for the
same reason. `PlainFigure` keeps layout and frames as the plain dicts they were built as.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import io
import json
import math
from dataclasses import dataclass

import numpy as np
import plotly.colors as pcolors
import plotly.graph_objects as go
from PIL import Image

from core.cells import CELLS, Cell, cell_info

#: Fixed colour scales, so a colour means the same value in every view, cell and model.
GATE_SCALE = "Viridis"  # 0 .. 1 (sigmoid gates)
SIGNED_SCALE = "RdBu_r"  # -1 .. 1 (tanh quantities; red positive, blue negative)
SALIENCY_SCALE = "Oranges"
GATE_RANGE = (0.0, 1.0)
SIGNED_RANGE = (-1.0, 1.0)
#: The LSTM cell state c is unbounded; it is drawn on ONE fixed scale, clipped beyond it, so a
#: colour means the same value in every view (a per-trace range made ±20 at one length and ±50
#: at another, on which the |c| ≈ 1-2 that trained cells carry was an almost white map). At
#: |c| = 3, tanh(c), what h = o·tanh(c) sees, is 0.995: beyond it h cannot tell values apart.
CELL_RANGE = (-3.0, 3.0)


FONT = dict(family="Source Sans Pro, Arial, sans-serif", size=14, color="#1f2430")
#: Okabe & Ito's colours (2008), which people with any common colour-vision deficiency tell
#: apart: every line colour here is one of them (the cells' too, core/cells.py), and lines
#: that stand side by side also differ in style (`DASHES`).
OKABE_ITO = {"orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00",
             "reddish purple": "#CC79A7", "black": "#000000"}
#: Lines that are not a cell (picked units, training runs) take these colours in order.
PALETTE = tuple(OKABE_ITO[name] for name in ("vermillion", "blue", "bluish green",
                                             "reddish purple", "orange", "sky blue"))
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
#: The registry's colour of each cell, by key (core.cells.Cell.color).
CELL_COLORS: dict[str, str] = {key: cell.color for key, cell in CELLS.items()}
CURSOR_COLOR = "#e4002b"
MAX_SLIDER_STEPS = 50
MARGIN = dict(l=60, r=20, t=90, b=110)  # px around the explorer's plot area
TITLE_FONT = dict(size=14, color="#333")  # row, map and equation titles
#: Maps are sent at one pixel per unit and step; this keeps the browser from blurring them.
PIXELATED_CSS = ".js-plotly-plot image { image-rendering: pixelated; }"


def cell_range(cell: np.ndarray | None = None) -> tuple[float, float]:
    """The LSTM cell state's colour range: CELL_RANGE, fixed, whatever the trace holds (values
    beyond it take the end colours). The argument is kept for callers that pass the data."""
    return CELL_RANGE


def clipped_share(cell: np.ndarray | None, limit: float = CELL_RANGE[1]) -> float:
    """The share of values beyond ±`limit` (drawn in the end colours): the LSTM's cell state
    beyond CELL_RANGE, or a relu RNN's h beyond its map's ±1."""
    if cell is None or cell.size == 0:
        return 0.0
    values = np.asarray(cell, dtype=np.float64)
    return float(np.mean(np.abs(values[np.isfinite(values)]) > limit)) \
        if np.isfinite(values).any() else 0.0


def clipped_note(share: float) -> str:
    """What a map's title adds for the `share` of its values drawn clipped."""
    if share >= 0.005:
        return f"; {share:.0%} of values beyond, clipped"
    return "; a few values beyond, clipped" if share > 0 else ""


def cell_entry(key: str) -> Cell | None:
    """The registry's entry of a cell, or None for a key it does not know (figures draw any
    mapping of names to data; an unknown name is shown as it is)."""
    try:
        return cell_info(key)
    except ValueError:
        return None


def cell_name(key: str) -> str:
    """The registry's long name of a cell ("RNN (vanilla)"), or the key itself if it is none."""
    entry = cell_entry(key)
    return entry.long_name if entry is not None else key


def cell_color(key: str) -> str:
    """The registry's colour of a cell, or blue for a key it does not know."""
    return CELL_COLORS.get(key, OKABE_ITO["blue"])


def cell_dash(key: str) -> str:
    """The registry's line style of a cell ("solid" for a key it does not know)."""
    return CELLS[key].dash if key in CELLS else "solid"


def _lut(scale: str, n: int = 256) -> np.ndarray:
    colors = pcolors.sample_colorscale(scale, list(np.linspace(0, 1, n)), colortype="tuple")
    arr = np.asarray(colors, dtype=np.float64)
    if arr.max() <= 1.0:
        arr = arr * 255
    return arr.round().astype(np.uint8)


@functools.cache
def _cached_lut(scale: str) -> np.ndarray:
    return _lut(scale)


def heatmap_png(z: np.ndarray, lo: float, hi: float, scale: str, min_width: int = 900,
                min_height: int = 160) -> str:
    """`z` (rows = units, columns = time) as a PNG data URI on a fixed colour scale.

    Row 0 is drawn at the bottom, like a heatmap's y axis. Small maps are enlarged by whole
    pixels so that the browser does not blur them when it stretches the image. NaN is grey.
    """
    lut = _cached_lut(scale)
    z = np.asarray(z, dtype=np.float32)
    finite = np.isfinite(z)
    with np.errstate(over="ignore", invalid="ignore"):  # inf runs off the scale: its end colour
        idx = np.clip((np.nan_to_num(z) - lo) / (hi - lo) * 255.0, 0, 255).round()
    idx = idx.astype(np.uint8)[::-1]
    fy = max(1, math.ceil(min_height / max(1, z.shape[0])))
    fx = max(1, math.ceil(min_width / max(1, z.shape[1])))
    if finite.all():
        # An indexed PNG with the scale as its palette: a third of the bytes to compress, so
        # about three times faster to encode, and smaller, than the same colours as RGB.
        image = Image.fromarray(np.ascontiguousarray(_enlarged(idx, fy, fx)), mode="P")
        image.putpalette(lut.tobytes())
    else:
        rgb = lut[idx]
        rgb[~finite[::-1]] = (160, 160, 160)
        image = Image.fromarray(np.ascontiguousarray(_enlarged(rgb, fy, fx)))
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _enlarged(pixels: np.ndarray, fy: int, fx: int) -> np.ndarray:
    return np.repeat(np.repeat(pixels, fy, axis=0), fx, axis=1) if fx > 1 or fy > 1 else pixels


def _scale_list(scale: str) -> list[list]:
    """A named scale as the explicit [[position, colour], ...] list plotly.js understands
    (plotly.js knows only a few names; these figures skip plotly.py's name expansion)."""
    lut = _cached_lut(scale)
    idx = np.linspace(0, 255, 11).round().astype(int)
    return [[float(i) / 10, "#%02x%02x%02x" % tuple(lut[j])] for i, j in enumerate(idx)]


def _f32(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def _num(v: float) -> str:
    """A short signed number for equations: 0.62, −0.41 (a real minus sign, readable on screen).
    A value that rounds to zero is 0.00, whatever its sign (as a map's readout shows it)."""
    if not np.isfinite(v):
        return "nan"
    s = f"{v:.2f}"
    return "0.00" if s == "-0.00" else s.replace("-", "−")


def _nums(values, parenthesise_negative: bool = False) -> list[str]:
    """`_num` of every value of a series (negatives in parentheses if asked, for products).

    One %-format of the whole series, not `_num` per value: the explorer's equations format
    about 8,000 numbers per figure at T = 200, and per value that was 12 ms of a change's
    20 ms figure build. The same text as `_num`'s (tests/test_figures.py compares them)."""
    flat = np.asarray(values, dtype=np.float64).tolist()
    if not flat:
        return []
    text = ("%.2f\n" * len(flat) % tuple(flat)).replace("-", "−")
    out = [_TIDIED.get(number, number) for number in text[:-1].split("\n")]
    if parenthesise_negative:
        return [f"({number})" if number[0] == "−" else number for number in out]
    return out


#: What `_num` writes instead of these: a value rounded to zero unsigned, infinities as nan.
_TIDIED = {"−0.00": "0.00", "inf": "nan", "−inf": "nan"}


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _atanh(v: np.ndarray) -> np.ndarray:
    return np.arctanh(np.clip(v, -1 + 1e-6, 1 - 1e-6))


#: How far out a pre-activation can be read back from its float32 value to the 0.01 shown:
#: beyond, a few float32 steps of the value move it by more (sigma at 9: 1 - p = 1.2e-4, where
#: a step of 6e-8 moves the logit by 5e-4; tanh at 5: 1 - v^2 = 1.8e-4), and a saturated value
#: (1.0 exactly) says only that it is far out. Beyond these, the diagram shows the bound.
READABLE_PRE_ACTIVATION = {"σ": 9.0, "tanh": 5.0}


def pre_activation_texts(values: np.ndarray, fn: str) -> list[str]:
    """The pre-activation of every value of `fn` ("σ", "tanh" or "relu") as the diagram shows
    it: read back from the value where that is exact to the 0.01 shown, otherwise the bound it
    is known to pass ("≥ 9", "≤ −5"); relu's 0 says only that its input was not positive."""
    v = np.asarray(values, dtype=np.float64)
    if fn == "relu":
        return [text if x > 0 else "≤ 0" for x, text in zip(v, _nums(v))]
    bound = READABLE_PRE_ACTIVATION[fn]
    pre = (_logit if fn == "σ" else _atanh)(v)
    return [f"≥ {bound:g}" if a >= bound else f"≤ −{bound:g}" if a <= -bound else text
            for a, text in zip(pre, _nums(pre))]


@functools.cache
def _hex_table(scale: str) -> np.ndarray:
    return np.array([f"#{r:02x}{g:02x}{b:02x}" for r, g, b in _cached_lut(scale)] + ["#a0a0a0"])


def _hex_series(scale: str, values: np.ndarray, lo: float, hi: float) -> list[str]:
    """The colour (#rrggbb) of every value of a series on a fixed scale, grey for NaN: one
    lookup in a table of the scale's 256 colours."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        idx = np.round(np.clip((v - lo) / (hi - lo), 0.0, 1.0) * 255)
    idx = np.where(np.isfinite(v), idx, 256).astype(np.intp)  # 256: grey for NaN
    return _hex_table(scale)[idx].tolist()


def _relative_luminance(hex_colour: str) -> float:
    """WCAG 2's relative luminance of "#rrggbb"."""
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: str, b: str) -> float:
    """WCAG 2's contrast ratio of two "#rrggbb" colours (1 to 21; text wants at least 4.5)."""
    hi, lo = sorted((_relative_luminance(a), _relative_luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


DARK_TEXT, LIGHT_TEXT = "#000000", "#ffffff"


@functools.lru_cache(maxsize=1024)
def text_on(fill: str) -> str:
    """The text colour, black or white, with the higher contrast on `fill`: at least
    4.6 on any colour (the two meet at a luminance of 0.18, where both give 4.58)."""
    return DARK_TEXT if contrast_ratio(DARK_TEXT, fill) >= contrast_ratio(LIGHT_TEXT, fill) \
        else LIGHT_TEXT


@dataclass
class InputSequence:
    """What the model read, for the input row: tokens (one label per step) and the numeric
    features (T, F) when the task reads numbers (None for word tasks)."""

    tokens: list[str]
    values: np.ndarray | None = None
    value_names: tuple[str, ...] = ()


class PlainFigure(go.Figure):
    """A figure whose layout and frames stay the plain dicts they were built as.

    `st.plotly_chart` and `to_html` read a figure through `to_dict()`. For the explorer and
    Compare, plotly.py would validate the layout into objects (~10 ms: twenty axes), validate
    every frame (~2 ms each), and deep-copy and walk layout and frames in `to_dict` (~8 ms at
    T=200), all on a change's critical path, for dicts that follow plotly's schema by
    construction. Traces are an ordinary, unvalidated `data`; `layout` and `frames` are read
    with `to_dict()`.
    """

    def __init__(self, data: list, layout: dict, frames: list[dict]):
        super().__init__(data=data, _validate=False)
        self._layout_obj._props["template"] = None  # the real layout says what it needs
        self._plain_layout = layout
        self._plain_frames = frames

    def to_dict(self) -> dict:
        spec = super().to_dict()  # the traces, copied, with numpy arrays made typed arrays
        spec["layout"] = dict(self._plain_layout)  # shallow: callers may set top-level keys
        spec["frames"] = self._plain_frames
        return spec


def redrawable(spec: dict) -> dict:
    """`spec` (a figure's `to_dict()`) as a page sends it: the same figure, which plotly.js
    draws again cheaply when nothing in it has changed. `spec` itself is not changed.

    Streamlit's chart draws every figure it mounts twice, the second time from a JSON copy that
    its theme step makes on every mount. `Plotly.react` compares that copy with what it drew
    and redraws the whole figure (55 to 90 ms at T = 200, measured in the page) for any of: a
    data array of another identity, unless the layout names a `datarevision`; an array sent as
    base64 (plotly.py's form for numpy arrays: an object to plotly.js, never equal to its
    copy); a `meta` object. Here `datarevision` is a digest of the traces, the traces' and
    layout's arrays are lists (ours hold at most a few hundred numbers), and `meta` is JSON
    text, compared by value (ui/player.js reads it either way): the second draw then costs
    little more than copying the frames (11 to 25 ms)."""
    data, layout = _listed(spec.get("data", [])), _listed(spec.get("layout", {}))
    traces = json.dumps(data, default=str, separators=(",", ":"))
    layout["datarevision"] = hashlib.blake2b(traces.encode(), digest_size=8).hexdigest()
    if isinstance(meta := layout.get("meta"), (dict, list)):
        layout["meta"] = json.dumps(meta, separators=(",", ":"))
    return {**spec, "data": data, "layout": layout}


def _listed(part):
    """A copy of a figure's part with every base64 array (`{"dtype", "bdata"[, "shape"]}`) a
    plain list of the same numbers."""
    if isinstance(part, dict):
        if isinstance(part.get("bdata"), str) and "dtype" in part:
            values = np.frombuffer(base64.b64decode(part["bdata"]), dtype=part["dtype"])
            if shape := part.get("shape"):
                values = values.reshape([int(n) for n in str(shape).split(",")])
            return values.tolist()
        return {key: _listed(value) for key, value in part.items()}
    if isinstance(part, list):
        return [_listed(value) for value in part]
    return part


def colour_bar(scale, lo: float, hi: float, label: str, *, x: float, top: float, length: float,
               width: float, title_size: int = 12, middle: bool = True
               ) -> tuple[dict, dict, list[tuple[float, str]]]:
    """A vertical colour bar on the paper: the bar (a layout image), its title (an annotation)
    and its tick labels as (paper y, text), at its ends and middle (the ends alone without
    `middle`: a bar too short for three). The figure shows the tick labels on its cursor's
    axis, right of the bar (`core.figures.player.cursor_axis`, at `bar_ticks_x`).

    Layout images, not a trace's colorbar: frames with redraw=False never touch them.
    """
    image = dict(source=heatmap_png(np.linspace(lo, hi, 64)[:, None], lo, hi, scale,
                                    min_width=1, min_height=64),
                 xref="paper", yref="paper", x=x, y=top, sizex=width, sizey=length,
                 sizing="stretch", xanchor="left", yanchor="top", layer="above")
    # the title sits clear of the top tick label, which is centred on the bar's top edge
    title = dict(xref="paper", yref="paper", x=x, y=top, text=label, showarrow=False,
                 xanchor="left", yanchor="bottom", yshift=8, font=dict(size=title_size))
    ticks = [(top - length + frac * length, _num(value))
             for frac, value in ((0.0, lo), *([(0.5, (lo + hi) / 2)] if middle else []),
                                 (1.0, hi))]
    return image, title, ticks


def bar_ticks_x(x: float, width: float) -> float:
    """The paper x of the tick labels of a colour bar at `x`, `width` wide: just right of it."""
    return x + width + 0.001


def tick_annotations(ticks: list[tuple[float, str]], x: float) -> list[dict]:
    """A colour bar's tick labels (`colour_bar`'s) as annotations at paper x `x`, centred on
    their values: for a bar outside the plot (x > 1), where no axis can be placed."""
    return [dict(xref="paper", yref="paper", x=x, y=y, text=text, showarrow=False,
                 xanchor="left", yanchor="middle", font=dict(size=11)) for y, text in ticks]


def line_path(x: np.ndarray, y: np.ndarray, xref: str, yref: str, color: str, *, name: str,
              dash: str = "solid", width: float = 2.0) -> dict:
    """A polyline as one layout path shape (NaN breaks the line), with a legend entry. A point
    with a gap on both sides is a short level dash across it: as a path of one point it drew
    nothing (a gradient that reaches one step alone showed an empty panel)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    finite = np.isfinite(y)
    spacing = np.abs(np.diff(x))
    half = 0.3 * (float(spacing[spacing > 0].min()) if (spacing > 0).any() else 1.0)
    parts = []
    for k, (xi, yi) in enumerate(zip(x.tolist(), y.tolist())):
        if not finite[k]:
            continue
        before = k > 0 and finite[k - 1]
        if before or (k + 1 < len(y) and finite[k + 1]):
            parts.append(f"{'L' if before else 'M'}{xi:g},{yi:.4g}")
        else:
            parts.append(f"M{xi - half:g},{yi:.4g}L{xi + half:g},{yi:.4g}")
    return dict(type="path", path="".join(parts) or "M0,0", xref=xref, yref=yref,
                line=dict(color=color, width=width, dash=dash), layer="above",
                showlegend=True, name=name, legendgroup=name)


def _log10(values) -> np.ndarray:
    """log10 of positive values; zero, negatives and NaN become NaN (gaps on a log axis)."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(v > 0, np.log10(v), np.nan)


def log_range(logs: np.ndarray, pad: float) -> tuple[float, float]:
    """A log axis range (in log10 units) over whole decades around the finite `logs`."""
    logs = logs[np.isfinite(logs)]
    if not logs.size:
        return (-1.0, 1.0)
    return (math.floor(logs.min()) - pad, math.ceil(logs.max()) + pad)


def decade_ticks(log_lo: float, log_hi: float, most: int = 4) -> list[float]:
    """At most `most` whole decades inside a log axis's range (log10 units), spaced evenly,
    none in its lowest tenth: a label there sat on the time axis's first label (on a stage,
    "10⁻³²" over "0")."""
    first, last = math.ceil(log_lo + 0.1 * (log_hi - log_lo)), math.floor(log_hi)
    if last < first:
        return [10.0 ** first]
    step = max(1, math.ceil((last - first) / max(most - 1, 1)))
    return [10.0 ** k for k in range(last, first - 1, -step)][::-1]


def padded_range(values: np.ndarray, pad: float) -> tuple[float, float]:
    """The finite values' range widened by `pad` of its width on each side (0 .. 1 if none)."""
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    margin = pad * (hi - lo or 1.0)
    return lo - margin, hi + margin


def map_image(source: str, T: int, H: int, xref: str, yref: str, top: float) -> dict:
    """A units x time map's layout image: steps -0.5 .. T - 0.5, units `top` - H .. `top`."""
    return dict(source=source, x=-0.5, y=top, sizex=T, sizey=H, sizing="stretch",
                xanchor="left", yanchor="top", layer="below", xref=xref, yref=yref)


def saliency_strip(sal: np.ndarray, sal_max: float, lo: float, hi: float, xref: str, yref: str,
                   min_width: int = 900) -> dict:
    """The saliency of every step as a translucent strip under a numeric input's lines."""
    T = len(sal)
    image = map_image(heatmap_png(sal[None, :], 0.0, sal_max, SALIENCY_SCALE,
                                  min_width=min_width, min_height=8), T, 1, xref, yref, hi)
    image.update(sizey=hi - lo, opacity=0.7)
    return image


def token_markers(steps: np.ndarray, tokens: list[str], sal: np.ndarray, sal_max: float, *,
                  show_text: bool, text_size: int, marker_size: int, colorscale: list,
                  **extra) -> dict:
    """The input row of a word task: one square per token, shaded by its saliency, the words
    alternately above and below (so that neighbours do not overlap), the token in the hover."""
    T = len(steps)
    return dict(
        type="scatter", x=steps, y=np.zeros(T, steps.dtype),
        mode="markers+text" if show_text else "markers", text=tokens if show_text else None,
        textposition=["top center" if i % 2 == 0 else "bottom center" for i in range(T)],
        textfont=dict(size=text_size),
        marker=dict(symbol="square", size=marker_size, color=sal, cmin=0, cmax=sal_max,
                    colorscale=colorscale, line=dict(width=0.5, color="#888")),
        hovertext=[f"t={i}: {tok}" for i, tok in enumerate(tokens)], hoverinfo="text",
        name="input", **extra)


def _merged(default: dict, own: dict) -> dict:
    """`own` over `default`, recursively (what plotly.js does with a template's values)."""
    out = copy.deepcopy(default)
    for key, value in own.items():
        out[key] = (_merged(out[key], value) if isinstance(value, dict)
                    and isinstance(out.get(key), dict) else value)
    return out


def subplot_axes(fig: go.Figure, row: int, col: int) -> tuple[str, str]:
    """The x and y axis names ("x3", "y3") of make_subplots' subplot at `row`, `col`."""
    ref = fig.get_subplot(row, col)
    return ref.xaxis.plotly_name.replace("axis", ""), ref.yaxis.plotly_name.replace("axis", "")


def bake_template(layout: dict) -> dict:
    """The layout with its template's values written into it and no `template` key.

    Streamlit hands plotly.js the figure twice after every change (the second time with the
    measured width), as a fresh copy; plotly.js compares a template by identity, so a copied
    template makes it lay the whole figure out again (~200 ms at T=200). The explorer uses
    only the template's layout values (axes, fonts, colours), written in here instead.

    An axis keeps the line it had: plotly.js draws an axis's line by default wherever the axis
    itself names its line colour or width, and the template's colour written into every axis
    drew a light line over the maps' edges."""
    template = layout.pop("template", {}).get("layout", {})
    skip = {"xaxis", "yaxis", "annotationdefaults", "shapedefaults", "polar", "ternary",
            "scene", "geo", "coloraxis", "colorscale", "mapbox"}
    out = {key: copy.deepcopy(value) for key, value in template.items() if key not in skip}
    for key, value in layout.items():
        axis = key.rstrip("0123456789")
        if axis in ("xaxis", "yaxis") and isinstance(value, dict):
            out[key] = _merged(template.get(axis, {}), value)
            out[key].setdefault("showline", bool(value.get("linecolor") or value.get("linewidth")))
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


HANDOFF_COLOR = "#444444"


def handoff_line(handoff: int, xref: str, legend: bool = True) -> dict:
    """A dashed line over the whole plot height between an encoder's last step and its
    decoder's first, on the time axis `xref` (like the cursor), with a legend entry."""
    x = handoff - 0.5
    return dict(type="line", x0=x, x1=x, xref=xref, y0=0, y1=1, yref="paper",
                line=dict(color=HANDOFF_COLOR, width=2, dash="dash"), layer="above",
                showlegend=legend, name="hand-off: encoder → decoder", legendgroup="hand-off")


@dataclass(frozen=True)
class Stage:
    """A figure made for a projector (presentation mode): a fixed design size in px, which the
    browser scales as a whole to fit the window (ui/presentation.py), so every piece keeps its
    place and all text grows and shrinks together; and no text under `min_font` px at the
    design size. At 1920 x 1080 the figure is shown at about its design size."""

    # 1880 x 960 fits a 1920 x 1080 window under the page's one line and the player's
    # controls at a scale of about 1.0: text drawn at 18.5 px stays at least 18 on screen
    width: int = 1880
    height: int = 960
    min_font: float = 18.5

    @property
    def text_scale(self) -> float:
        """How much larger the house's body text (FONT, 14 px) is drawn on a stage."""
        return self.min_font / FONT["size"]

    def font_size(self, size: float) -> float:
        return round(max(self.min_font, size * self.text_scale), 1)


STAGE = Stage()
#: A tour step's stage: the tour bar (title, narration, buttons) takes about a fifth of a
#: 1920 x 1080 screen, so the figure is shown at about 0.85 of its design size there; its text
#: is drawn larger so that it still reads at 18 px or more.
TOUR_STAGE = Stage(min_font=21.5)
#: The keys whose value is a font (a dict with a `size`) wherever they appear in a figure.
_FONT_KEYS = ("font", "textfont", "tickfont", "insidetextfont", "outsidetextfont")


def staged(obj, stage: Stage):
    """A copy of `obj` (a figure's layout, traces or frames, as plain dicts and lists) with
    every font at least the stage's minimum and the house's sizes grown in proportion
    (Stage.font_size), and text offsets (xshift, yshift, in px) grown with them. A copy: the
    house's font dicts (FONT, TITLE_FONT) are shared by every figure."""
    if isinstance(obj, list):
        return [staged(item, stage) for item in obj]
    if not isinstance(obj, dict):
        return obj
    out = {}
    for key, value in obj.items():
        if key in _FONT_KEYS and isinstance(value, dict):
            size = value.get("size", FONT["size"])
            out[key] = {**value, "size": (
                [stage.font_size(s) for s in size] if isinstance(size, list)
                else size if size < 4  # deliberately invisible (the slider's ticks)
                else stage.font_size(size))}
        elif key in ("xshift", "yshift") and isinstance(value, (int, float)):
            out[key] = round(value * stage.text_scale, 1)
        else:
            out[key] = staged(value, stage)
    return out


#: Streamlit's dark theme: the colours of a light figure's text, lines and backgrounds, and
#: what they become on a dark page (`dark_variant`). The maps' and colour bars' scales, the
#: lines' Okabe-Ito colours and the diagram's numbers on their circles stay as they are.
DARK_PAGE = "#0e1117"  # Streamlit's dark background
LIGHT_TO_DARK = {
    FONT["color"]: "#e8eaf0", "#111": "#e8eaf0", "#111111": "#e8eaf0", "#2a3f5f": "#e8eaf0",
    "#333": "#d4d7de", "#444": "#b4b8c2", "#555": "#b4b8c2", "#6b6f7b": "#a9adb8",
    "#888": "#9aa0ab", "#9aa0a6": "#8a909b", "#666": "#a9adb8", "#666666": "#a9adb8",
    "#EBF0F8": "#2c313c", "#ebf0f8": "#2c313c", "#e6e6e6": "#2c313c", "#eee": "#2c313c",
    "#e6e8ee": "#2c313c", "#c7cbd6": "#3a3f4b", "#9aa0ac": "#8a909b",
    "white": DARK_PAGE,  # plotly's template backgrounds ("#ffffff" is a circle's, kept)
    "rgba(255,255,255,0.85)": "rgba(14,17,23,0.85)",
}
#: The player's buttons and slider, which plotly.js draws light unless told otherwise.
_DARK_CONTROLS = {"bgcolor": "#262730", "bordercolor": "#4a4f5c"}


def _dark(obj, key: str = ""):
    if isinstance(obj, dict):
        return {k: _dark(v, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_dark(v, key) for v in obj]
    if isinstance(obj, str) and key.endswith("color"):
        if key in ("paper_bgcolor", "plot_bgcolor"):
            return "rgba(0,0,0,0)"  # the page's own background shows through
        return LIGHT_TO_DARK.get(obj, obj)
    return obj


def dark_variant(figure: dict) -> dict:
    """A copy of a figure (its `to_dict()`) for Streamlit's dark theme: dark text and grid
    colours made light, white backgrounds made the page's (transparent), the player's buttons
    and slider dark. Colours in lists (the diagram's numbers, on their circles' fills) keep
    theirs, except the page's own text colour (the equations' numbers), which turns light."""
    out = {part: _dark(figure.get(part)) for part in ("data", "layout", "frames")
           if figure.get(part) is not None}
    layout = out.setdefault("layout", {})
    layout.setdefault("font", {})["color"] = LIGHT_TO_DARK[FONT["color"]]
    layout["paper_bgcolor"] = layout["plot_bgcolor"] = "rgba(0,0,0,0)"
    for key in ("updatemenus", "sliders"):
        layout[key] = [{**menu, **_DARK_CONTROLS,
                        "font": {**menu.get("font", {}), "color": "#e8eaf0"},
                        # plotly.js lights the last pressed button, light on light here
                        **({"showactive": False} if key == "updatemenus" else
                           {"activebgcolor": "#4a4f5c"})}
                       for menu in layout.get(key, [])]
    for key in [k for k in layout if k.startswith(("xaxis", "yaxis"))]:
        layout[key] = {**layout[key], "gridcolor": layout[key].get("gridcolor", "#2c313c"),
                       "zerolinecolor": "#3a3f4b", "linecolor": "#3a3f4b"}
    return out
