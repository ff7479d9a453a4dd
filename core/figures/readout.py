"""What a units x time map reads under the pointer: unit, step and value (issue #14).

The maps are PNG layout images (core/figures/style.py says why), which plotly.js cannot hover.
So each map's values travel with the figure, in the layout's `meta` under `READOUT_KEY`, and
the browser-side player (ui/player.js) reads the map under the pointer from them:

    layout["meta"][READOUT_KEY] = map_readout([MapValues("forget gate f", z, base), ...],
                                              x="x2", y="y2", tokens=[...])

Each map's values are sent as shown, rounded to `DECIMALS` places (the diagram's numbers are
too), as the smallest signed integers that hold them (base64): a gate or h map is one byte per
value, so T = 200 steps of 64 units and six maps cost about 100 KB. A figure whose maps hold
more than `MAX_VALUES` values sends none (so one-byte values cost at most 0.7 MB, two-byte
ones 1.3 MB): its hover reads unit and step and says why no value. A value that is not a
number (NaN, as padding) is the integer type's smallest value, which the browser shows as
"no value".
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: The layout's `meta` entry the browser reads the maps' values from.
READOUT_KEY = "gatescope_maps"
#: Decimal places of a value read off a map, as the cell diagram shows its numbers.
DECIMALS = 2
#: The most values a figure's maps send together (beyond, the hover reads unit and step only).
MAX_VALUES = 500_000
#: The longest word the readout names at a step (a longer one is cut with "…").
MAX_TOKEN = 24

_INTEGER_TYPES = (np.int8, np.int16, np.int32)


@dataclass(frozen=True)
class MapValues:
    """One map: its short name ("forget gate f"), its values (units x steps, unit 0 drawn at
    the bottom) and the y-axis value of its unit 0 (maps share one y axis, stacked)."""

    name: str
    values: np.ndarray
    base: float = 0.0


def _base64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def encoded_values(values: np.ndarray, decimals: int = DECIMALS) -> dict:
    """`values` rounded to `decimals` places as scaled integers of the smallest type that holds
    them: {"scale", "dtype", "data" (base64, little-endian, row-major)}. NaN and ±inf become the
    type's smallest value, which no rounded finite value takes. Values too large for 32-bit
    integers (an exploding network's) go as they are, float32 (scale 1), inf and NaN too."""
    scale = 10 ** decimals
    z = np.asarray(values, dtype=np.float64) * scale
    finite = np.isfinite(z)
    rounded = np.rint(np.where(finite, z, 0.0))
    peak = float(np.abs(rounded).max()) if rounded.size else 0.0
    dtype = next((t for t in _INTEGER_TYPES if peak < np.iinfo(t).max), None)
    if dtype is None:
        return dict(scale=1, dtype="float32", data=_base64(np.asarray(values, "<f4")))
    ints = np.where(finite, rounded, np.iinfo(dtype).min).astype(np.dtype(dtype).newbyteorder("<"))
    return dict(scale=scale, dtype=np.dtype(dtype).name, data=_base64(ints))


def decoded_values(entry: dict, units: int, steps: int) -> np.ndarray:
    """What the browser reads back from one map's entry (NaN where the value is missing; a
    float32 map's own inf and NaN as they are)."""
    dtype = np.dtype(entry["dtype"]).newbyteorder("<")
    raw = np.frombuffer(base64.b64decode(entry["data"]), dtype=dtype).reshape(units, steps)
    out = raw.astype(np.float64) / entry["scale"]
    if dtype.kind == "i":
        out[raw == np.iinfo(dtype).min] = np.nan
    return out


def shown(value: float, decimals: int = DECIMALS) -> str:
    """A value as the readout writes it (ui/player.js does the same): 0.57, −0.41, 0.00 for a
    value that rounds to zero, 3.40e+38 from 100,000 on (1.00e+5), "inf", "no value" for NaN."""
    if np.isnan(value):
        return "no value"
    if np.isinf(value):
        return "−inf" if value < 0 else "inf"
    if abs(value) >= 1e5:  # JavaScript's toExponential: no leading zero in the exponent
        text = re.sub(r"e([+-])0*(\d)", r"e\1\2", f"{value:.{decimals}e}")
    else:
        text = f"{value:.{decimals}f}"
    return f"{0:.{decimals}f}" if float(text) == 0 else text.replace("-", "−")


def _token(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_TOKEN else text[:MAX_TOKEN - 1] + "…"


def fits(n_values: int) -> bool:
    """Whether a figure's maps, `n_values` values in all, are small enough to send them."""
    return n_values <= MAX_VALUES


def map_readout(maps: Sequence[MapValues], *, x: str, y: str, tokens: Sequence[str] = (),
                font_size: float = 13.0, send: bool | None = None) -> dict:
    """The `meta` entry for the maps of one subplot (axes `x`, `y`, as "x2", "y2"): each map's
    name, place and values, the words at the steps (`tokens`, when the input is words) and the
    readout's font size (a projector's figure asks for larger). `send`: whether the values go
    too; by default when these maps `fit` (a figure of several subplots decides for all)."""
    units, steps = np.asarray(maps[0].values).shape if maps else (0, 0)
    send = fits(sum(int(np.asarray(m.values).size) for m in maps)) if send is None else send
    return dict(
        x=x, y=y, units=int(units), steps=int(steps), font=float(font_size),
        tokens=[_token(t) for t in tokens][:steps] if tokens else [],
        withheld="" if send else (f"no values: this figure's maps hold more than "
                                  f"{MAX_VALUES:,}; a shorter input shows them"),
        maps=[dict(name=m.name, base=float(m.base), **(encoded_values(m.values) if send else {}))
              for m in maps])
