"""Slides of the Explore view, drawn on the server without a browser: a PNG at one step and an
animated GIF over a range of steps, at 2x or 3x of a 960-px figure (issue #14).

    slide = Slide(trace, inp, text, layer=0, direction=0, units=[2, 3, 4], unit=2, scale=2)
    png = slide.png(t=12)                                   # bytes of a PNG
    gif = slide.gif(start=0, stop=199, steps_per_second=10) # bytes of a looping GIF

Why not Plotly's own image export: it needs a browser (a hosted deployment has none), smooths
the maps and bakes in the player's buttons. Here the left column is the Explore figure's (the
input shaded by saliency, one units x time map per state and gate on the app's fixed colour
scales, the gradient norms on a log scale, the picked units, one time axis), the right column
its cell diagram and PyTorch's equations for one unit, and a caption names the task, model,
score, input and step.

How it stays fast and crisp:
- matplotlib (Agg, no pyplot: no global state, safe in Streamlit's threads) draws what never
  moves once: axes, ticks, lines, colour bars, titles, the diagram's arrows;
- Pillow pastes each map at whole pixels per unit and step where they fit (nearest neighbour
  otherwise): one block of one colour per unit x step, never smoothed;
- a frame redraws only what moves with t (the cursor and the panel's colours and numbers);
- a GIF is written frame by frame (Pillow's `GifImagePlugin.getheader` / `getdata`) on one
  fixed palette, each frame only the rectangle that changed, with the pixels unchanged since
  the frame before transparent: 200 frames at 1920 px in a few seconds and megabytes, with two
  frames in memory (Pillow's `save_all` holds every frame).
"""

from __future__ import annotations

import functools
import io
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache

import numpy as np
from PIL import GifImagePlugin, Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from core.engine import Trace
from core.figures.diagram import NODE_SIZE, CellPanel, cell_panel
from core.figures.explore import (
    DEPTH_COLOURS, _bar_label, _map_data, _unit_ticks, _x_signal, map_rows, overflow_note,
)
from core.figures.style import (
    CURSOR_COLOR, GATE_SCALE, HANDOFF_COLOR, OKABE_ITO, PALETTE, SALIENCY_SCALE, SIGNED_SCALE,
    InputSequence, _cached_lut, _f32, _log10, _num, log_range, padded_range,
)

#: The scales a slide may be drawn at: 2x (1920 px wide) and 3x (2880 px), of a 960-px figure.
SCALES = (2, 3)
#: GIF speeds, in steps per second: each a whole number of the GIF's 1/100 s per frame.
SPEEDS = (1, 2, 4, 5, 10, 20, 25, 50)
#: The most steps one GIF animates (its build grows with them: 2.5 times a 200-step one's).
MAX_GIF_STEPS = 500
INK = "#1f2430"  # the app's font colour
GREY_NAN = (160, 160, 160)  # heatmap_png's colour of NaN
WIDTH = 960  # px of a slide at 1x
DPI = 100  # matplotlib's: points are px * 72 / DPI


@dataclass(frozen=True)
class SlideText:
    """The caption: `title` (task, cell, model, score) and `context` (the input); the renderer
    adds a third line with the step, its input token, the layer and the unit."""

    title: str
    context: str


def warm_up() -> None:
    """Draw a tiny LSTM slide and its GIF (once per server process, in the background: about
    1.5 s of CPU), so that what the first press would otherwise wait for is done: matplotlib
    and its Agg canvas imported (about a second in a fresh process), fonts loaded, its text and
    log-axis code run once."""
    rng = np.random.default_rng(0)
    shape = (1, 1, 4, 3)  # layers, directions, steps, units
    gates = {name: rng.random(shape, dtype=np.float32)
             for name in ("input", "forget", "cell", "output")}
    tr = Trace(cell_type="lstm", hidden=rng.random(shape, dtype=np.float32),
               cell=rng.random(shape, dtype=np.float32), gates=gates,
               grad_hidden=rng.random(shape[:3], dtype=np.float32) + 0.1,
               grad_cell=rng.random(shape[:3], dtype=np.float32) + 0.1,
               grad_input=rng.random(4, dtype=np.float32), output=np.zeros((4, 3), np.float32),
               objective=0.0)
    slide = Slide(tr, InputSequence(["a", "b", "c", "d"]), SlideText("warm-up", "a b c d"),
                  units=[0, 1], scale=SCALES[0])  # the size offered first
    slide.gif(0, 1, 10)


# ---------------------------------------------------------------------------------------------
# Text: DejaVu Sans (shipped with matplotlib) in both libraries, with <sub> and <b> as the
# figures write them (core/cells.py)

_TAG = re.compile(r"(</?sub>|</?b>|<br>)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@cache
def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    import matplotlib

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(os.path.join(matplotlib.get_data_path(), "fonts", "ttf", name),
                              max(1, int(size)))


@lru_cache(maxsize=4096)
def _runs(text: str) -> tuple[tuple[str, bool, bool], ...]:
    """(text, subscript, bold) pieces of a label in the figures' HTML."""
    runs, sub, bold = [], False, False
    for piece in _TAG.split(text):
        if piece in ("<sub>", "</sub>"):
            sub = piece == "<sub>"
        elif piece in ("<b>", "</b>"):
            bold = piece == "<b>"
        elif piece:
            runs.append((_CONTROL.sub(" ", piece.replace("<br>", " ")), sub, bold))
    return tuple(runs)


def _plain(text: str) -> str:
    return "".join(piece for piece, _, _ in _runs(text))


def _run_font(size: int, sub: bool, bold: bool) -> ImageFont.FreeTypeFont:
    return _font(round(size * 0.72) if sub else size, bold)


def rich_width(text: str, size: int, bold: bool = False) -> float:
    """px of `text` (with its subscripts and bold) in the font of `size` px."""
    return sum(_run_font(size, sub, bold or run_bold).getlength(piece)
               for piece, sub, run_bold in _runs(text))


def image_text(image: Image.Image, x: float, y: float, text: str, size: int, fill, *,
               anchor: str = "l", max_width: float | None = None, bold: bool = False) -> None:
    """`text` with its subscripts and bold on `image`, the middle of its line at y: starting
    at x (anchor "l"), centred on it ("m") or ending there ("r"); a text wider than
    `max_width` is drawn smaller.
    Each distinct text is rendered once (`_text_mask`): a GIF draws the same numbers often."""
    mask, middle = _text_mask(text, int(size), bold, max_width)
    left = {"l": x, "m": x - mask.width / 2, "r": x - mask.width}[anchor]
    image.paste(fill, (_px(left), _px(y - middle)), mask)


@lru_cache(maxsize=4096)
def _text_mask(text: str, size: int, bold: bool, max_width: float | None
               ) -> tuple[Image.Image, float]:
    """The text's coverage as an "L" mask, and the height of its line's middle in it."""
    runs = _runs(text)
    while True:
        fonts = [_run_font(size, sub, bold or run_bold) for _, sub, run_bold in runs]
        widths = [font.getlength(piece) for font, (piece, _, _) in zip(fonts, runs)]
        if max_width is None or size <= 8 or sum(widths) <= max_width:
            break
        size -= 1
    ascent, descent = _font(size, bold).getmetrics()
    drop = round(0.3 * size)  # a subscript's baseline under the line's
    mask = Image.new("L", (math.ceil(sum(widths)) + 2, ascent + descent + drop))
    draw = ImageDraw.Draw(mask)
    x = 1.0
    for font, width, (piece, sub, _) in zip(fonts, widths, runs):
        draw.text((x, ascent + (drop if sub else 0)), piece, font=font, fill=255, anchor="ls")
        x += width
    return mask, (ascent + descent) / 2


def shortened(text: str, size: int, width: float, bold: bool = False) -> str:
    """`text` cut with "…" to fit `width` px in the font of `size` px."""
    text = _CONTROL.sub(" ", text)
    font = _font(size, bold)
    if font.getlength(text) <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # the longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if font.getlength(text[:mid] + "…") <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + "…"


def _rgb(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    return tuple(int(colour[i:i + 2], 16) for i in (0, 2, 4))


# ---------------------------------------------------------------------------------------------
# Geometry


@dataclass(frozen=True)
class Box:
    """A rectangle in the slide's pixels: x0, y0 (top left, inclusive), x1, y1 (exclusive)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def tuple(self) -> tuple[int, int, int, int]:
        return (self.x0, self.y0, self.x1, self.y1)

    def overlaps(self, other: Box) -> bool:
        return (self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1
                and other.y0 < self.y1)

    def union(self, other: Box) -> Box:
        return Box(min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1),
                   max(self.y1, other.y1))


def _extent(n: int, target: int, most: int) -> int:
    """Pixels for n blocks (steps or units), near `target` and at most `most`: a whole number
    of pixels per block where that fills at least 3/4 of `target` (every block the same size),
    else `target` (blocks of n / target pixels, nearest neighbour: one or two pixels each)."""
    if n <= most:
        per = min(max(1, round(target / n)), most // n)
        if per * n < 0.75 * target and per < most // n:
            per += 1
        if per * n >= 0.75 * target:
            return per * n
    return min(target, most)


@dataclass(frozen=True)
class Layout:
    """Where everything sits, in pixels. The left column's rows share one x extent (its time
    axis): whole pixels per step where they fill most of it (`_extent`)."""

    width: int
    height: int
    caption: Box
    input_row: Box
    maps: tuple[Box, ...]
    gradient_row: Box
    units_row: Box
    panel: Box
    bar_x: int  # the colour bars' left edge
    scale: int

    @property
    def column(self) -> Box:
        """The left column's rows, top to bottom (what the cursor spans)."""
        return Box(self.input_row.x0, self.input_row.y0, self.input_row.x1, self.units_row.y1)

    @classmethod
    def of(cls, steps: int, units: int, n_maps: int, scale: int) -> Layout:
        s = scale
        title = 18 * s  # room above a row for its title
        caption_h = 76 * s
        left, right_edge = 62 * s, 592 * s  # the maps' area, left of the colour bars
        map_w = _extent(steps, right_edge - left, right_edge - left)
        input_h, line_h, axis_h = 32 * s, 58 * s, 34 * s
        fixed = caption_h + (title + input_h) + n_maps * title + 2 * (title + line_h) + axis_h
        # About a 16:10 slide (1920 x 1200 at 2x) for an LSTM's six maps; fewer maps (a
        # vanilla RNN's one) are taller, so that every slide is at least 16:9.
        map_target = max(30 * s, (600 * s - fixed) // n_maps)
        map_h = _extent(units, map_target, 2 * map_target)
        y = caption_h + title
        input_row = Box(left, y, left + map_w, y + input_h)
        y = input_row.y1
        maps = []
        for _ in range(n_maps):
            y += title
            maps.append(Box(left, y, left + map_w, y + map_h))
            y += map_h
        gradient_row = Box(left, y + title, left + map_w, y + title + line_h)
        units_row = Box(left, gradient_row.y1 + title, left + map_w,
                        gradient_row.y1 + title + line_h)
        height = units_row.y1 + axis_h
        panel = Box(668 * s, caption_h, WIDTH * s - 10 * s, height - 8 * s)
        return cls(WIDTH * s, height, Box(0, 0, WIDTH * s, caption_h), input_row, tuple(maps),
                   gradient_row, units_row, panel, left + map_w + 10 * s, s)

    def step_columns(self, steps: int, t: int) -> tuple[int, int]:
        """The pixel columns [x0, x1) of step t in the left column (its map block)."""
        w = self.input_row.width
        return (self.input_row.x0 + math.ceil(t * w / steps),
                self.input_row.x0 + math.ceil((t + 1) * w / steps))


@dataclass(frozen=True)
class Part:
    """Something a frame draws over the static image: where (`box`, which holds all of it),
    what (`key`: equal whenever the drawing is) and how (`draw(image, origin)`, on an image
    whose top-left corner is the slide's pixel `origin`)."""

    box: Box
    key: tuple
    draw: Callable[[Image.Image, tuple[int, int]], None]


# ---------------------------------------------------------------------------------------------
# The slide


class Slide:
    """One Explore view drawn for slides: the static image once, then any step's frame."""

    def __init__(self, tr: Trace, inp: InputSequence, text: SlideText, *, layer: int = 0,
                 direction: int = 0, units: list[int] | None = None, unit: int | None = None,
                 nonlinearity: str = "tanh", handoff: int | None = None, scale: int = 2):
        L, D, T, H = tr.hidden.shape
        if scale not in SCALES:
            raise ValueError(f"a slide is drawn at {' or '.join(f'{s}x' for s in SCALES)}, "
                             f"not {scale!r}")
        if not (0 <= layer < L and 0 <= direction < D):
            raise ValueError(f"layer {layer} / direction {direction} is not in this trace "
                             f"({L} x {D})")
        self.trace, self.inp, self.text = tr, inp, text
        self.layer, self.direction, self.scale = layer, direction, scale
        self.units = [u for u in (units or [0]) if 0 <= u < H][:6] or [0]
        self.unit = self.units[0] if unit is None or not 0 <= unit < H else int(unit)
        self.nonlinearity = nonlinearity
        self.handoff = handoff if handoff is not None and 0 < handoff < T else None
        self.steps = T
        self.tokens = list(inp.tokens)[:T] + [""] * max(0, T - len(inp.tokens))
        self.maps = map_rows(tr)
        self.layout = Layout.of(T, H, len(self.maps), scale)
        self.panel: CellPanel = cell_panel(
            tr, layer=layer, direction=direction, unit=self.unit, t0=0,
            tokens=self.tokens if inp.values is None else None, x_signal=_x_signal(inp, T),
            nonlinearity=nonlinearity, axes=("x2", "y2"))

    # -- what never moves ---------------------------------------------------------------------

    @cached_property
    def base(self) -> Image.Image:
        """The slide without its moving parts (cursor, panel numbers, step line), RGB."""
        image = self._axes_image()
        self._paste_maps(image)
        self._draw_map_titles_and_bars(image)
        draw = ImageDraw.Draw(image)
        self._draw_handoff(draw)
        self._draw_caption(draw)
        self._draw_panel_text(image)
        return image

    def _axes_image(self) -> Image.Image:
        """matplotlib's part: every axis, line, title and colour bar, as an RGB image."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        lay, s = self.layout, self.scale
        fig = Figure(figsize=(lay.width / DPI, lay.height / DPI), dpi=DPI, facecolor="white")
        canvas = FigureCanvasAgg(fig)
        with _style(s):
            self._input_axes(fig)
            self._maps_axes(fig)
            self._gradient_axes(fig)
            self._units_axes(fig)
            self._panel_axes(fig)
            canvas.draw()
        rgba = np.asarray(canvas.buffer_rgba())
        if rgba.shape[:2] != (lay.height, lay.width):  # matplotlib rounds the figure's size
            raise RuntimeError(f"slide drawn at {rgba.shape[1]}x{rgba.shape[0]}, "
                               f"not {lay.width}x{lay.height}")
        return Image.fromarray(np.ascontiguousarray(rgba[..., :3]))

    def _axes(self, fig, box: Box):
        lay = self.layout
        return fig.add_axes((box.x0 / lay.width, 1 - box.y1 / lay.height,
                             box.width / lay.width, box.height / lay.height))

    def _time_axis(self, ax, labelled: bool) -> None:
        from matplotlib.ticker import MaxNLocator

        ax.set_xlim(-0.5, self.steps - 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=10, integer=True))
        ax.tick_params(axis="x", labelbottom=labelled)

    def _title(self, ax, text: str) -> None:
        ax.set_title(text, loc="left", fontsize=_pt(12 * self.scale), color="#333",
                     pad=_pt(4 * self.scale))

    def _input_axes(self, fig) -> None:
        tr, s = self.trace, self.scale
        ax = self._axes(fig, self.layout.input_row)
        self._title(ax, "input  (colour: sensitivity of the loss, ‖∂loss/∂xₜ‖)")
        self._time_axis(ax, False)
        sal = _f32(tr.grad_input)
        finite = np.isfinite(sal)
        sal_max = float(np.nanmax(sal)) if finite.any() and np.nanmax(sal) > 0 else 1.0
        cmap = _cmap(SALIENCY_SCALE)
        T = self.steps
        if self.inp.values is None:
            ax.imshow(np.where(finite, sal, 0)[None, :], cmap=cmap, vmin=0, vmax=sal_max,
                      aspect="auto", interpolation="nearest", extent=(-0.5, T - 0.5, -0.5, 0.5))
            ax.set_ylim(-0.5, 0.5)
            ax.set_yticks([])
            self._token_labels(ax)
            return
        values = _f32(self.inp.values).reshape(T, -1)[:, :3]
        lo, hi = padded_range(values, 0.08)
        ax.imshow(np.where(finite, sal, 0)[None, :], cmap=cmap, vmin=0, vmax=sal_max,
                  aspect="auto", interpolation="nearest", extent=(-0.5, T - 0.5, lo, hi),
                  alpha=0.7)
        for j in range(values.shape[1]):
            ax.plot(np.arange(T), _finite(values[:, j]), color=("#333", "#888", "#bbb")[j],
                    lw=_pt(1.5 * s))
        ax.set_ylim(lo, hi)
        from matplotlib.ticker import MaxNLocator

        ax.yaxis.set_major_locator(MaxNLocator(nbins=2))

    def _token_labels(self, ax) -> None:
        """The tokens on the input strip, alternately in its upper and lower half (two steps'
        width each), where every token fits whole or to at least three characters."""
        from matplotlib import patheffects

        s, T = self.scale, self.steps
        room, size = 2 * self.layout.input_row.width / T - 2 * s, 10 * s
        if room < _font(size).getlength("M…"):
            return
        labels = [shortened(str(token), size, room) for token in self.tokens]
        if any(label != str(token) and len(label) < 4
               for label, token in zip(labels, self.tokens)):
            return
        halo = [patheffects.withStroke(linewidth=_pt(3 * s), foreground="white")]
        for t, label in enumerate(labels):
            ax.text(t, 0.22 if t % 2 == 0 else -0.22, label, ha="center", va="center",
                    fontsize=_pt(size), color=INK, path_effects=halo)

    def _maps_axes(self, fig) -> None:
        """One pair of axes under every map (an axes costs matplotlib about 50 ms): the unit
        ticks of each, on a y axis in the slide's pixel rows; the maps are pasted after."""
        from matplotlib.ticker import FixedFormatter, FixedLocator

        s, H, boxes = self.scale, self.trace.hidden_size, self.layout.maps
        whole = Box(boxes[0].x0, boxes[0].y0, boxes[0].x1, boxes[-1].y1)
        ax = self._axes(fig, whole)
        ax.set_facecolor("none")
        for spine in ax.spines.values():  # the maps are pasted over their boxes
            spine.set_visible(False)
        self._time_axis(ax, False)
        ax.set_ylim(whole.y1, whole.y0)
        ticks = _unit_ticks(H)
        rows = [box.y1 - (u + 0.5) * box.height / H for box in boxes for u in ticks]
        ax.yaxis.set_major_locator(FixedLocator(rows))
        ax.yaxis.set_major_formatter(FixedFormatter([str(u) for _ in boxes for u in ticks]))
        ax.set_ylabel("unit", fontsize=_pt(10 * s), labelpad=_pt(2 * s))

    def _draw_map_titles_and_bars(self, image: Image.Image) -> None:
        """Each map's title above it and its colour bar beside it, at its height."""
        s, lay = self.scale, self.layout
        draw = ImageDraw.Draw(image)
        grey = (51, 51, 51)
        for box, (key, title, scale, (lo, hi)) in zip(lay.maps, self.maps):
            image_text(image, box.x0, box.y0 - 9 * s, _plain(title), 12 * s, grey)
            bar = Box(lay.bar_x, box.y0, lay.bar_x + 10 * s, box.y1)
            strip = np.linspace(lo, hi, 256)[:, None]  # row 0 (lo) at the bottom
            image.paste(map_pixels(strip, lo, hi, scale, bar.width, bar.height), bar.tuple())
            draw.rectangle((bar.x0 - 1, bar.y0 - 1, bar.x1, bar.y1), outline=(136, 136, 136),
                           width=1)
            for value, y in ((hi, bar.y0), ((lo + hi) / 2, (bar.y0 + bar.y1) / 2), (lo, bar.y1)):
                draw.line((bar.x1, y, bar.x1 + 3 * s, y), fill=(136, 136, 136), width=max(1, s))
                image_text(image, bar.x1 + 5 * s, y, _num(value), 9 * s, _rgb(INK))
            image_text(image, bar.x0 + bar.width / 2, bar.y0 - 9 * s,
                       _bar_label(self.trace, key), 11 * s, _rgb(INK), anchor="m")

    def _gradient_axes(self, fig) -> None:
        tr, s = self.trace, self.scale
        layer, direction = self.layer, self.direction
        ax = self._axes(fig, self.layout.gradient_row)
        # a stacked network's three or more lines leave its legend less room for the title
        self._title(ax, "gradient norms (log scale)" if tr.num_layers > 1
                    else "gradient norms per step (log scale)")
        self._time_axis(ax, False)
        here = f" layer {layer}" if tr.num_layers > 1 else ""
        lines = [(tr.grad_hidden[layer, direction], f"‖∂loss/∂hₜ‖{here}", OKABE_ITO["blue"], "-",
                  2.0)]
        if tr.grad_cell is not None:
            lines.append((tr.grad_cell[layer, direction], f"‖∂loss/∂cₜ‖{here}", OKABE_ITO["bluish green"], ":",
                          2.0))
        for other in (k for k in range(tr.num_layers) if k != layer):
            lines.append((tr.grad_hidden[other, direction], f"‖∂loss/∂hₜ‖ layer {other}",
                          DEPTH_COLOURS[other % len(DEPTH_COLOURS)], "--", 1.5))
        logs = []
        for g, name, colour, dash, width in lines:
            lg = _log10(_f32(g).astype(np.float64))
            logs.append(lg)
            ax.plot(np.arange(self.steps), np.where(np.isfinite(lg), 10.0 ** lg, np.nan),
                    color=colour, ls=dash, lw=_pt(width * s), label=name)
        lo, hi = log_range(np.concatenate(logs), 0.2)
        ax.set_yscale("log")
        ax.set_ylim(10.0 ** lo, 10.0 ** hi)
        from matplotlib.ticker import LogLocator, NullLocator

        ax.yaxis.set_major_locator(LogLocator(base=10.0 ** max(1, math.ceil((hi - lo) / 3))))
        ax.yaxis.set_minor_locator(NullLocator())
        _legend(ax, s)
        note = overflow_note(tr, layer, direction)
        if note:
            ax.text(0.5, 0.5, note.replace(": ", ":\n", 1), transform=ax.transAxes,
                    ha="center", va="center", fontsize=_pt(10 * s), color="#b00020",
                    bbox=dict(facecolor="white", alpha=0.85, edgecolor="none"))

    def _units_axes(self, fig) -> None:
        tr, s = self.trace, self.scale
        ax = self._axes(fig, self.layout.units_row)
        self._title(ax, "picked units of h over time")
        self._time_axis(ax, True)
        for k, u in enumerate(self.units):
            ax.plot(np.arange(self.steps), _finite(tr.hidden[self.layer, self.direction, :, u]),
                    color=PALETTE[k % len(PALETTE)], lw=_pt(2 * s), label=f"h[{u}]")
        ax.set_ylim(-1.05, 1.05)
        ax.set_yticks([-1, 0, 1])
        ax.set_xlabel("timestep t", fontsize=_pt(11 * s), labelpad=_pt(2 * s))
        _legend(ax, s)

    def _panel_axes(self, fig) -> None:
        """The diagram's arrows (antialiased, under the nodes Pillow draws per frame), on axes
        whose limits put every node where `_Diagram.node_xy` says."""
        s, diagram = self.scale, self._diagram
        ax = self._axes(fig, diagram.box)
        ax.set_xlim(*diagram.x_limits)
        ax.set_ylim(*diagram.y_limits)
        ax.set_axis_off()
        arrows = self.panel.traces[0]
        xs, ys = arrows["x"], arrows["y"]
        radius = _pt(diagram.radius)
        for i in range(0, len(xs), 3):
            ax.annotate("", xy=(xs[i + 1], ys[i + 1]), xytext=(xs[i], ys[i]),
                        arrowprops=dict(arrowstyle="-|>", color="#9aa0a6", lw=_pt(1.5 * s),
                                        shrinkA=radius, shrinkB=radius + _pt(2 * s),
                                        mutation_scale=_pt(11 * s)))

    @cached_property
    def _diagram(self) -> _Diagram:
        return _Diagram.of(self.panel, self.layout.panel, self.scale)

    def _draw_panel_text(self, image: Image.Image) -> None:
        """The panel's headings, the diagram's node names and the equations (static)."""
        s, box, diagram = self.scale, self.layout.panel, self._diagram
        draw = ImageDraw.Draw(image)
        draw.text((box.x0, box.y0 + 4 * s), f"the cell at step t, unit {self.unit}",
                  font=_font(14 * s), fill="#333", anchor="lt")
        nodes = self.panel.traces[1]
        for k, name in enumerate(diagram.node_names):
            x, y = diagram.node_xy(nodes["x"][k], nodes["y"][k])
            image_text(image, x, y + diagram.radius + 11 * s, name, diagram.label_size,
                       (51, 51, 51), anchor="m")
        draw.text((box.x0, diagram.equations_top), diagram.heading, font=_font(14 * s),
                  fill="#333", anchor="lt")
        for k, equation in enumerate(diagram.equations):
            image_text(image, box.x0, diagram.equation_y(k), equation, 13 * s, _rgb(INK),
                       max_width=box.width)
        y = diagram.equation_y(len(diagram.equations)) - 4 * s
        for note in diagram.notes:
            image_text(image, box.x0, y, note, 12 * s, (85, 85, 85), max_width=box.width)
            y += 18 * s

    def _paste_maps(self, image: Image.Image) -> None:
        """Every map at its box: one block of one colour per unit x step (nearest neighbour
        where the blocks are not whole pixels), unit 0 at the bottom, NaN grey."""
        tr = self.trace
        for box, (key, _, scale, (lo, hi)) in zip(self.layout.maps, self.maps):
            z = _map_data(tr, key, self.layer, self.direction).T  # (H, T)
            image.paste(map_pixels(z, lo, hi, scale, box.width, box.height), box.tuple())

    def _draw_handoff(self, draw: ImageDraw.ImageDraw) -> None:
        if self.handoff is None:
            return
        s, column = self.scale, self.layout.column
        x = self.layout.step_columns(self.steps, self.handoff)[0]
        dash, width = 8 * s, s + 1
        for y in range(column.y0, column.y1, 2 * dash):
            draw.rectangle((x - width // 2, y, x - width // 2 + width - 1,
                            min(y + dash, column.y1) - 1), fill=HANDOFF_COLOR)
        # its label right-aligned on the input row's title line, after a dash of the line
        label = "hand-off: encoder → decoder"
        right, y = self.layout.input_row.x1, column.y0 - 9 * s
        left = right - _font(10 * s).getlength(label)
        draw.text((right, y), label, font=_font(10 * s), fill=HANDOFF_COLOR, anchor="rm")
        draw.rectangle((left - 22 * s, y - width // 2, left - 16 * s, y - width // 2 + width - 1),
                       fill=HANDOFF_COLOR)
        draw.rectangle((left - 12 * s, y - width // 2, left - 6 * s, y - width // 2 + width - 1),
                       fill=HANDOFF_COLOR)

    def _draw_caption(self, draw: ImageDraw.ImageDraw) -> None:
        s, box = self.scale, self.layout.caption
        width = box.width - 24 * s
        size = 17 * s  # a long title is drawn smaller, down to 14 px at 1x, before it is cut
        while size > 14 * s and _font(size, True).getlength(self.text.title) > width:
            size -= 1
        draw.text((12 * s, 15 * s), shortened(self.text.title, size, width, bold=True),
                  font=_font(size, True), fill=INK, anchor="lm")
        draw.text((12 * s, 37 * s), shortened(self.text.context, 13 * s, width),
                  font=_font(13 * s), fill="#333", anchor="lm")
        draw.line((12 * s, box.y1 - 6 * s, box.x1 - 12 * s, box.y1 - 6 * s), fill="#d0d4da",
                  width=max(1, s // 2))

    # -- what moves with t --------------------------------------------------------------------

    def moving_parts(self, t: int) -> list[Part]:
        """What a frame draws over the static image besides the cursor: the caption's step
        line, every node of the diagram (its colour and number) and the equations' numbers,
        each in a rectangle of its own that is the same at every step."""
        at = self.panel.at(t)
        n_nodes = len(self._diagram.node_names)
        what = {("step", 0): self.step_line(t)}
        for k in range(n_nodes):
            what["node", k] = (at["marker"]["color"][k], str(at["text"][k]))
        for k, numbers in enumerate(at["text"][n_nodes:]):
            what["numbers", k] = str(numbers)
        return [Part(box, (box, *(what[slot] for slot in slots)),
                     functools.partial(self._draw_slots, slots, [what[slot] for slot in slots]))
                for box, slots in self._slots]

    @cached_property
    def _slots(self) -> list[tuple[Box, list[tuple[str, int]]]]:
        """The moving parts' rectangles, each holding what it may show at any step (the
        longest texts measured), and which parts each draws: overlapping ones as one."""
        s, diagram, panel = self.scale, self._diagram, self.layout.panel
        # The step line is right-aligned: a GIF frame is the rectangle around what changed,
        # and a step line on the left would stretch it from the cursor to x = 0.
        width = self.layout.width
        step_x0 = width - 12 * s - max(rich_width(self._step_text(self.steps - 1, token),
                                                  14 * s, True)
                                       for token in _longest(self.tokens)) - 6 * s
        boxes = [(Box(max(0, math.floor(step_x0)), 48 * s, width, 68 * s), ("step", 0))]
        nodes = self.panel.traces[1]
        ring = self._ring
        half = max(ring.disc.width, _px(diagram.radius * 2.4)) // 2 + 1
        for k in range(len(diagram.node_names)):
            x, y = (_px(v) for v in diagram.node_xy(nodes["x"][k], nodes["y"][k]))
            boxes.append((Box(x - half, y - ring.disc.height // 2 - 1, x + half,
                              y + ring.disc.height // 2 + 2), ("node", k)))
        for k in range(len(diagram.equations)):
            y = diagram.equation_y(k) + 18 * s
            column = [numbers[k] for numbers in self.panel.numbers]
            x1 = panel.x0 + 10 * s + max(rich_width(text, 13 * s) for text in _longest(column))
            boxes.append((Box(panel.x0, y - 13 * s, min(panel.x1 + 4 * s, math.ceil(x1) + 6 * s),
                              y + 13 * s), ("numbers", k)))
        groups: list[tuple[Box, list[tuple[str, int]]]] = []
        for box, slot in boxes:
            box = Box(max(0, box.x0), max(0, box.y0), min(self.layout.width, box.x1),
                      min(self.layout.height, box.y1))
            slots = [slot]
            while (other := next((g for g in groups if g[0].overlaps(box)), None)) is not None:
                groups.remove(other)
                box, slots = other[0].union(box), other[1] + slots
            groups.append((box, slots))
        return groups

    @cached_property
    def _ring(self) -> _Ring:
        return _ring(_px(self._diagram.radius * 2), max(2, _px(1.5 * self.scale)))

    def _draw_slots(self, slots: list[tuple[str, int]], what: list, image: Image.Image,
                    origin: tuple[int, int]) -> None:
        """Draw `what` each of `slots` shows on `image`, whose top-left corner is the slide's
        pixel `origin`."""
        s, diagram, panel = self.scale, self._diagram, self.layout.panel
        ox, oy = origin
        for (kind, k), shown in zip(slots, what):
            if kind == "step":
                box = self._slot_box(kind, k)
                image_text(image, box.x1 - 12 * s - ox, 58 * s - oy, shown, 14 * s,
                           _rgb(CURSOR_COLOR), bold=True, anchor="r",
                           max_width=box.width - 15 * s)
            elif kind == "node":
                colour, text = shown
                nodes, ring = self.panel.traces[1], self._ring
                x, y = diagram.node_xy(nodes["x"][k], nodes["y"][k])
                corner = (_px(x - ring.disc.width / 2) - ox, _px(y - ring.disc.height / 2) - oy)
                image.paste(_rgb(colour), corner, ring.disc)
                image.paste((68, 68, 68), corner, ring.edge)
                image_text(image, x - ox, y - oy, text, diagram.number_size, _ink_on(colour),
                           anchor="m", max_width=diagram.radius * 2.4)
            else:
                x0 = panel.x0 + 10 * s
                image_text(image, x0 - ox, diagram.equation_y(k) + 18 * s - oy, shown, 13 * s,
                           (17, 17, 17), max_width=self._slot_box(kind, k).x1 - x0 - 4)

    def _slot_box(self, kind: str, k: int) -> Box:
        return next(box for box, slots in self._slots if (kind, k) in slots)

    def step_line(self, t: int) -> str:
        """The caption's third line: where the cursor is."""
        return self._step_text(t, str(self.tokens[t]))

    def _step_text(self, t: int, token: str) -> str:
        read = (f" · input “{shortened(token, 14 * self.scale, 300 * self.scale)}”"
                if token else "")
        where = (f" · layer {self.layer} {('forward', 'reverse')[self.direction]}"
                 if self.trace.num_layers > 1 or self.trace.num_directions > 1 else "")
        return f"step t = {t} of 0–{self.steps - 1}{read}{where} · unit {self.unit}"

    def cursor_boxes(self, t: int) -> tuple[Box, Box]:
        """The cursor: two lines either side of step t's column, across the left column."""
        x0, x1 = self.layout.step_columns(self.steps, t)
        column, width = self.layout.column, max(2, self.scale)
        return (Box(x0 - width, column.y0, x0, column.y1),
                Box(x1, column.y0, x1 + width, column.y1))

    def _check_step(self, t: int, name: str = "step") -> int:
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < self.steps:
            raise ValueError(f"the {name} must be a whole number from 0 to {self.steps - 1}; "
                             f"got {t!r}")
        return int(t)

    # -- files ----------------------------------------------------------------------------------

    def frame(self, t: int) -> Image.Image:
        """The slide at step t, RGB."""
        t = self._check_step(t)
        image = self.base.copy()
        for part in self.moving_parts(t):
            part.draw(image, (0, 0))
        for box in self.cursor_boxes(t):
            image.paste(_rgb(CURSOR_COLOR), box.tuple())
        return image

    def png(self, t: int, metadata: dict[str, str] | None = None) -> bytes:
        """A PNG of the slide at step t, with the caption (and `metadata`) as text chunks."""
        info = PngInfo()
        for key, value in self.png_text(t, metadata).items():
            info.add_itxt(key, value)
        buf = io.BytesIO()
        self.frame(t).save(buf, format="PNG", pnginfo=info, compress_level=6,
                           dpi=(96 * self.scale, 96 * self.scale))
        return buf.getvalue()

    def png_text(self, t: int, metadata: dict[str, str] | None = None) -> dict[str, str]:
        """The PNG's text chunks: the caption's lines (Title, Description), the maker."""
        return {"Title": self.text.title,
                "Description": f"{self.text.context}\n{self.step_line(t)}",
                "Software": "gatescope", **(metadata or {})}

    def gif(self, start: int, stop: int, steps_per_second: int) -> bytes:
        """An animated, looping GIF of steps start .. stop (both included), one frame per step
        at `steps_per_second`; the caption is its comment."""
        start, stop = self._check_step(start, "first step"), self._check_step(stop, "last step")
        if stop < start:
            raise ValueError(f"the animation's last step ({stop}) is before its first ({start})")
        if stop - start + 1 > MAX_GIF_STEPS:
            raise ValueError(f"an animation has at most {MAX_GIF_STEPS} steps; "
                             f"{start}–{stop} is {stop - start + 1}")
        if steps_per_second not in SPEEDS:
            raise ValueError(f"the speed is one of {', '.join(map(str, SPEEDS))} steps per "
                             f"second, not {steps_per_second!r}")
        return _GifWriter(self).write(start, stop, 1000 // steps_per_second)


@dataclass(frozen=True)
class _Diagram:
    """Where the cell panel's pieces sit in the slide: the diagram's nodes (the panel's own
    coordinates, core/figures/diagram.py, mapped into `box`), then the equations, each on two
    lines (the equation, then the unit's numbers at t)."""

    box: Box  # the diagram's area
    x_limits: tuple[float, float]  # of `box`, in the panel's coordinates
    y_limits: tuple[float, float]
    radius: float  # of a node, px
    label_size: int  # px of the node names
    number_size: int  # px of the numbers in the nodes
    node_names: tuple[str, ...]
    heading: str
    equations: tuple[str, ...]
    notes: tuple[str, ...]  # under the equations (the GRU's convention)
    equations_top: int
    line: int  # px from one equation to the next
    scale: int

    @classmethod
    def of(cls, panel: CellPanel, area: Box, scale: int) -> _Diagram:
        s = scale
        # the node names: shifted off their nodes, and not left-aligned as the equations are
        names = tuple(a["text"] for a in panel.annotations
                      if a.get("yshift") and a.get("xanchor") != "left")
        left = [a["text"] for a in panel.annotations if a.get("xanchor") == "left"]
        n_eq = len(panel.numbers[0])
        heading, equations, notes = left[0], tuple(left[1:1 + n_eq]), tuple(left[1 + n_eq:])
        line = 40 * s
        equations_top = area.y1 - 30 * s - n_eq * line - len(notes) * 18 * s
        box = Box(area.x0, area.y0 + 24 * s, area.x1, equations_top - 8 * s)
        nodes = panel.traces[1]
        xs, ys = nodes["x"][:len(names)], nodes["y"][:len(names)]
        x_limits = (min(xs) - 0.8, max(xs) + 0.8)
        # Nodes as large as the app's (38 px at 1x) where the rows of nodes leave room for a
        # node and its name (1.3 apart at the closest), smaller where they do not.
        span = (max(ys) - min(ys)) or 1.0
        room = (box.height - 44 * s) / span * 1.3
        radius = max(11 * s, min(NODE_SIZE / 2 * s, (room - 26 * s) / 2))
        top, bottom = box.y0 + radius + 2 * s, box.y1 - radius - 24 * s
        per_unit = (bottom - top) / span
        y_limits = (min(ys) - (box.y1 - bottom) / per_unit, max(ys) + (top - box.y0) / per_unit)
        zoom = radius / (NODE_SIZE / 2 * s)
        return cls(box, x_limits, y_limits, radius, round(13 * s * max(0.8, zoom)),
                   round(11 * s * max(0.8, zoom)), names, heading, equations, notes,
                   equations_top, line, s)

    def node_xy(self, x: float, y: float) -> tuple[float, float]:
        """A point of the panel's coordinates in the slide's pixels."""
        (x0, x1), (y0, y1), box = self.x_limits, self.y_limits, self.box
        return (box.x0 + (x - x0) / (x1 - x0) * box.width,
                box.y0 + (y1 - y) / (y1 - y0) * box.height)

    def equation_y(self, k: int) -> int:
        """The middle of equation k's first line."""
        return self.equations_top + 30 * self.scale + k * self.line


# ---------------------------------------------------------------------------------------------
# The GIF


class _GifWriter:
    """Frames on one palette, written as they are made: each the rectangle that changed since
    the frame before, its unchanged pixels transparent (index TRANSPARENT)."""

    TRANSPARENT = 255
    LEVELS = 64  # colours per map scale in the GIF (the PNG has the scales' 256)
    SCALES = (SIGNED_SCALE, GATE_SCALE)  # the maps' scales, first in the palette

    def __init__(self, slide: Slide):
        self.slide = slide
        self.colours = self._palette()
        self.to_palette = _Quantizer(self.colours[:self.TRANSPARENT])
        self.base = self.to_palette(slide.base)
        self._paste_maps()
        self.cursor_index = int(self.to_palette(Image.new("RGB", (1, 1), CURSOR_COLOR))[0, 0])

    def _palette(self) -> np.ndarray:
        """(256, 3): the map scales at LEVELS colours each, the cursor's and a few inks, then
        the static image's other colours (antialiased text and lines) quantized into what is
        left, and TRANSPARENT."""
        colours = [_cached_lut(scale)[np.linspace(0, 255, self.LEVELS).round().astype(int)]
                   for scale in self.SCALES]
        colours.append(np.array([_rgb(CURSOR_COLOR), _rgb(HANDOFF_COLOR), _rgb(INK), GREY_NAN,
                                 (255, 255, 255), (0, 0, 0), (68, 68, 68)], np.uint8))
        rest = self.TRANSPARENT - sum(len(c) for c in colours)
        background = self.slide.base.copy()
        for box in self.slide.layout.maps:  # the maps' colours are in already
            background.paste((255, 255, 255), box.tuple())
        quantized = background.quantize(colors=rest, method=Image.Quantize.MEDIANCUT,
                                         dither=Image.Dither.NONE)
        colours.append(np.array(quantized.getpalette()[:3 * rest], np.uint8).reshape(-1, 3))
        palette = np.concatenate(colours)
        # TRANSPARENT and any spare entry: a magenta no slide has (never the nearest colour:
        # `_Quantizer` is not given it)
        spare = np.tile(np.array([[255, 0, 255]], np.uint8), (256 - len(palette), 1))
        return np.concatenate([palette, spare])

    def _paste_maps(self) -> None:
        """The maps by index, straight from their values: the scale's nearest of LEVELS
        colours, each block one index."""
        slide, grey = self.slide, self.SCALES.__len__() * self.LEVELS + 3
        for box, (key, _, scale, (lo, hi)) in zip(slide.layout.maps, slide.maps):
            z = _map_data(slide.trace, key, slide.layer, slide.direction).T
            levels, missing = map_levels(z, lo, hi, box.width, box.height)
            indices = (self.SCALES.index(scale) * self.LEVELS
                       + (levels.astype(np.int32) * (self.LEVELS - 1) + 127) // 255)
            indices[missing] = grey
            self.base[box.y0:box.y1, box.x0:box.x1] = indices

    def frame(self, t: int) -> np.ndarray:
        """The frame at step t as palette indices (H, W), drawn whole (the GIF's are drawn
        from the frame before: `write`)."""
        frame = self.base.copy()
        parts = self.slide.moving_parts(t)
        pixels = self._drawn(parts)
        for part in parts:
            frame[part.box.y0:part.box.y1, part.box.x0:part.box.x1] = pixels[part.key]
        for box in self.slide.cursor_boxes(t):
            frame[box.y0:box.y1, box.x0:box.x1] = self.cursor_index
        return frame

    def _drawn(self, parts: list[Part]) -> dict[tuple, np.ndarray]:
        """Each part drawn over the static image and quantized."""
        drawn = {}
        for part in parts:
            region = self.slide.base.crop(part.box.tuple())
            part.draw(region, (part.box.x0, part.box.y0))
            drawn[part.key] = self.to_palette(region)
        return drawn

    def write(self, start: int, stop: int, duration_ms: int) -> bytes:
        """The GIF's bytes. Each frame after the first is the rectangle around what changed
        (the cursor's old and new place, the parts whose drawing changed), the rest of it
        transparent: the frame before shows through (disposal 1, "leave in place")."""
        slide, out = self.slide, io.BytesIO()
        frame = self.frame(start)
        image = self._image(frame)
        header, _ = GifImagePlugin.getheader(image, info={
            "loop": 0, "duration": duration_ms,
            "comment": f"{slide.text.title}\n{slide.text.context}"})
        out.write(b"".join(header))
        params = dict(duration=duration_ms, transparency=self.TRANSPARENT, disposal=1)
        out.write(b"".join(GifImagePlugin.getdata(image, (0, 0), **params)))
        shown = {part.box: part.key for part in slide.moving_parts(start)}
        cursor = slide.cursor_boxes(start)
        before = np.empty_like(frame)  # one buffer for every frame's "before"
        for t in range(start + 1, stop + 1):
            np.copyto(before, frame)
            dirty = list(cursor)
            for box in cursor:  # the static image where the cursor was
                frame[box.y0:box.y1, box.x0:box.x1] = self.base[box.y0:box.y1, box.x0:box.x1]
            parts = [part for part in slide.moving_parts(t) if shown.get(part.box) != part.key]
            pixels = self._drawn(parts)
            for part in parts:
                box = part.box
                frame[box.y0:box.y1, box.x0:box.x1] = pixels[part.key]
                shown[box] = part.key
                dirty.append(box)
            cursor = slide.cursor_boxes(t)
            for box in cursor:
                frame[box.y0:box.y1, box.x0:box.x1] = self.cursor_index
            dirty += cursor
            around = functools.reduce(Box.union, dirty)
            delta = np.full((around.height, around.width), self.TRANSPARENT, np.uint8)
            for box in dirty:  # its pixels that changed (a number's digits, not its disc)
                now = frame[box.y0:box.y1, box.x0:box.x1]
                delta[box.y0 - around.y0:box.y1 - around.y0, box.x0 - around.x0:
                      box.x1 - around.x0] = np.where(
                    now != before[box.y0:box.y1, box.x0:box.x1], now, self.TRANSPARENT)
            out.write(b"".join(GifImagePlugin.getdata(self._image(delta),
                                                      (around.x0, around.y0), **params)))
        out.write(b";")
        return out.getvalue()

    def _image(self, indices: np.ndarray) -> Image.Image:
        image = Image.fromarray(np.ascontiguousarray(indices), mode="P")
        image.putpalette(self.colours.tobytes())
        return image


class _Quantizer:
    """RGB pixels to the index of their nearest colour in a palette, exactly (white stays
    white: Pillow's quantize(palette=...) rounds colours to 6 bits a channel first, and put
    the slide's white on a near-white), each distinct colour looked up once per GIF."""

    UNKNOWN = 255  # TRANSPARENT: never a nearest colour, as the palette given lacks it

    def __init__(self, colours: np.ndarray):
        self.colours = colours.astype(np.float32)
        self.norms = (self.colours ** 2).sum(1)
        self.table = np.full(1 << 24, self.UNKNOWN, np.uint8)  # 24-bit colour -> index
        codes = colours.astype(np.uint32) @ np.array([1, 1 << 8, 1 << 16], np.uint32)
        self.table[codes[::-1]] = np.arange(len(colours))[::-1]  # each colour: its first index

    def __call__(self, image: Image.Image) -> np.ndarray:
        # One 24-bit code a pixel, R + G << 8 + B << 16, read through RGBX's 32-bit pixels
        codes = np.asarray(image.convert("RGBX")).view(np.uint32)[..., 0] & 0xFFFFFF
        out = self.table[codes]
        missing = out == self.UNKNOWN
        if missing.any():
            new = np.unique(codes[missing])
            values = np.stack([new & 255, (new >> 8) & 255, (new >> 16) & 255], 1)
            # |v - c|^2 = |v|^2 - 2 v.c + |c|^2: the nearest c for each v without (v - c)
            nearest = (self.norms[None, :] - 2 * values.astype(np.float32) @ self.colours.T)
            self.table[new] = nearest.argmin(1).astype(np.uint8)
            out[missing] = self.table[codes[missing]]
        return out


# ---------------------------------------------------------------------------------------------
# Pieces


def map_pixels(z: np.ndarray, lo: float, hi: float, scale: str, width: int, height: int
               ) -> Image.Image:
    """A units x time map (`z`: rows = units, columns = steps) as an RGB image of width x
    height on the fixed scale lo .. hi (the app's colours, core.figures.style), unit 0 at the
    bottom, NaN and inf grey as in the app (see `map_levels`)."""
    levels, missing = map_levels(z, lo, hi, width, height)
    rgb = _cached_lut(scale)[levels]
    rgb[missing] = GREY_NAN
    return Image.fromarray(np.ascontiguousarray(rgb))


def map_levels(z: np.ndarray, lo: float, hi: float, width: int, height: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """(the scale's level 0 .. 255 of every pixel, where a value is NaN) of a units x time
    map drawn width x height: pixel column i shows step i * T // width, row j (from the top)
    unit H - 1 - j * H // height. Nearest neighbour: every unit x step block is one colour and
    its edges are sharp (one block per step and unit where the pixels suffice)."""
    z = np.asarray(z, dtype=np.float32)
    H, T = z.shape
    rows = H - 1 - (np.arange(height) * H) // height
    cols = (np.arange(width) * T) // width
    z = z[rows][:, cols]
    with np.errstate(over="ignore", invalid="ignore"):
        levels = np.clip((np.nan_to_num(z) - lo) / (hi - lo) * 255.0, 0, 255).round()
    return levels.astype(np.uint8), ~np.isfinite(z)


@dataclass(frozen=True)
class _Ring:
    disc: Image.Image  # "L" mask of the filled circle
    edge: Image.Image  # "L" mask of its outline


@cache
def _ring(diameter: int, line: int) -> _Ring:
    """Antialiased masks of a node's disc and outline (drawn at 4x, then reduced)."""
    big = 4 * diameter + 8
    disc, edge = Image.new("L", (big, big), 0), Image.new("L", (big, big), 0)
    box = (4, 4, big - 5, big - 5)
    ImageDraw.Draw(disc).ellipse(box, fill=255)
    ImageDraw.Draw(edge).ellipse(box, outline=255, width=4 * line)
    size = (diameter + 2, diameter + 2)
    return _Ring(disc.resize(size, Image.Resampling.LANCZOS),
                 edge.resize(size, Image.Resampling.LANCZOS))


@cache
def _cmap(scale: str):
    from matplotlib.colors import ListedColormap

    return ListedColormap(_cached_lut(scale) / 255.0, name=scale)


def _ink_on(colour: str) -> tuple[int, int, int]:
    """Near-black text on a light fill, white on a dark one (a node's number on its colour)."""
    r, g, b = _rgb(colour)
    return (17, 17, 17) if 0.299 * r + 0.587 * g + 0.114 * b > 110 else (255, 255, 255)


def _longest(texts, n: int = 3) -> list[str]:
    """The n longest of some texts (by characters): the widest, as near as matters."""
    return sorted((str(text) for text in texts), key=len)[-n:] or [""]


def _px(value: float) -> int:
    """The nearest whole pixel, halves up: unlike round()'s halves to even, the same place
    whether drawn on the slide or on a crop of it at a whole-pixel offset."""
    return math.floor(value + 0.5)


def _pt(px: float) -> float:
    """matplotlib's points for a size in the slide's pixels."""
    return px * 72 / DPI


def _finite(values) -> np.ndarray:
    """Values with inf as NaN: a gap in a line, where matplotlib would draw to the edge."""
    v = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(v), v, np.nan)


def _legend(ax, scale: int) -> None:
    """The row's legend on its title line, right-aligned."""
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.02), ncol=4, frameon=False,
              fontsize=_pt(10 * scale), handlelength=2.0, borderaxespad=0, borderpad=0,
              columnspacing=1.2, handletextpad=0.4)


def _style(scale: int):
    """matplotlib's settings for a slide at `scale`, for the drawing's duration only."""
    from matplotlib import rc_context

    return rc_context({
        "font.family": "DejaVu Sans", "font.size": _pt(11 * scale), "text.color": INK,
        "axes.edgecolor": "#888", "axes.linewidth": _pt(0.8 * scale), "axes.labelcolor": INK,
        "xtick.color": "#555", "ytick.color": "#555", "xtick.labelcolor": INK,
        "ytick.labelcolor": INK, "xtick.labelsize": _pt(10 * scale),
        "ytick.labelsize": _pt(10 * scale), "xtick.major.size": _pt(3 * scale),
        "ytick.major.size": _pt(3 * scale), "xtick.major.width": _pt(0.8 * scale),
        "ytick.major.width": _pt(0.8 * scale), "xtick.major.pad": _pt(2 * scale),
        "ytick.major.pad": _pt(2 * scale), "axes.unicode_minus": True,
        "axes.spines.top": False, "axes.spines.right": False, "path.simplify": False,
    })
