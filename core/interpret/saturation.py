"""Gate saturation (Karpathy, Johnson & Fei-Fei 2015, "Visualizing and understanding recurrent
networks", section 4.3): for every gate and unit, the fraction of a held-out batch's steps at
which it is left-saturated (below `lo`, default 0.1: nearly closed) and right-saturated (above
`hi`, default 0.9: nearly open).

    sat = gate_saturation(batch_trace)        # the cell's sigmoid gates, lo 0.1, hi 0.9
    forget = sat.get(layer=0, direction=0, gate="forget")
    forget.left, forget.right                 # (H,) fractions of the valid steps
    sat.table()                               # one row per gate and unit

Only steps before each sequence's length count (a BatchTrace holds NaN beyond it). Counts are
exact integers; fractions are counts over the number of valid steps, in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.cells import CELLS

DEFAULT_LO, DEFAULT_HI = 0.1, 0.9


@dataclass(frozen=True)
class GateSaturation:
    """One gate of one layer and direction: per unit, how often it is nearly closed or open."""

    layer: int
    direction: int
    gate: str
    left: np.ndarray  # (H,) float64: share of valid steps with value < lo
    right: np.ndarray  # (H,) float64: share of valid steps with value > hi
    left_count: np.ndarray  # (H,) int64
    right_count: np.ndarray  # (H,) int64
    steps: int  # valid steps counted (the same for every unit)

    @property
    def unsaturated(self) -> np.ndarray:
        """(H,) share of steps between the thresholds."""
        return 1.0 - self.left - self.right


@dataclass(frozen=True)
class Saturation:
    cell_type: str
    lo: float
    hi: float
    gates: tuple[GateSaturation, ...]

    def get(self, layer: int, direction: int, gate: str) -> GateSaturation:
        for g in self.gates:
            if (g.layer, g.direction, g.gate) == (layer, direction, gate):
                return g
        raise KeyError(f"no saturation measured for layer {layer}, direction {direction}, "
                       f"gate {gate!r}; measured: "
                       + ", ".join(f"{g.layer}/{g.direction}/{g.gate}" for g in self.gates))

    def table(self) -> pd.DataFrame:
        """One row per (layer, direction, gate, unit): left, right, their counts, steps."""
        frames = [pd.DataFrame({
            "layer": g.layer, "direction": g.direction, "gate": g.gate,
            "unit": np.arange(len(g.left)), "left": g.left, "right": g.right,
            "left_count": g.left_count, "right_count": g.right_count, "steps": g.steps,
        }) for g in self.gates]
        return pd.concat(frames, ignore_index=True)


def cell_type_of_trace(batch_trace) -> str:
    """"lstm", "gru" or "rnn", from the gate names a (Batch)Trace holds."""
    names = tuple(batch_trace.gates)
    for key, cell in CELLS.items():
        if set(names) == set(cell.gate_names):
            return key
    raise ValueError(f"gates {names} are not those of an RNN, LSTM or GRU")


def sigmoid_gates(cell_type: str) -> tuple[str, ...]:
    """The gates whose values lie in (0, 1), where "saturated" means near 0 or 1: LSTM input,
    forget, output; GRU reset, update. (The tanh candidates, LSTM "cell" and GRU "new", lie in
    (−1, 1); they can be asked for by name with thresholds of their own.)"""
    return tuple(g.name for g in CELLS[cell_type].gates if not g.signed)


def valid_steps(lengths, steps: int) -> np.ndarray:
    """(B, T) bool: t < length of each sequence."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return np.arange(steps)[None, :] < lengths[:, None]


def check_thresholds(lo: float, hi: float) -> tuple[float, float]:
    for name, value in (("the lower threshold", lo), ("the upper threshold", hi)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number; got {value!r}")
    if not lo < hi:
        raise ValueError(f"the lower threshold ({lo:g}) must be below the upper one ({hi:g})")
    return float(lo), float(hi)


def gate_saturation(batch_trace, lo: float = DEFAULT_LO, hi: float = DEFAULT_HI,
                    gates: tuple[str, ...] | list[str] | None = None) -> Saturation:
    """Per gate, layer, direction and unit: the share of valid steps below `lo` and above `hi`.

    gates: which of the trace's gates (None: the sigmoid gates of the cell, the ones Karpathy et
    al. measured). A vanilla RNN has none: ValueError."""
    lo, hi = check_thresholds(lo, hi)
    cell_type = cell_type_of_trace(batch_trace)
    names = sigmoid_gates(cell_type) if gates is None else tuple(gates)
    if not names:
        raise ValueError("a vanilla RNN has no gates: there is nothing to saturate")
    unknown = [g for g in names if g not in batch_trace.gates]
    if unknown:
        raise ValueError(f"the {CELLS[cell_type].display_name} has no gate "
                         f"{', '.join(map(repr, unknown))}; its gates are "
                         f"{', '.join(batch_trace.gates)}")
    first = batch_trace.gates[names[0]]
    B, L, D, T, H = first.shape
    valid = valid_steps(batch_trace.lengths, T)  # (B, T)
    steps = int(valid.sum())
    # every sequence full length (adding, airline): no mask to apply, a third less work
    mask = True if valid.all() else valid[:, None, None, :, None]
    out = []
    for name in names:
        values = batch_trace.gates[name]
        # NaN compares False on both sides: a padded or non-finite value is neither saturation
        left = ((values < lo) & mask).sum(axis=(0, 3), dtype=np.int64)  # (L, D, H)
        right = ((values > hi) & mask).sum(axis=(0, 3), dtype=np.int64)
        denominator = float(steps) if steps else math.nan
        for layer in range(L):
            for direction in range(D):
                out.append(GateSaturation(
                    layer, direction, name,
                    left[layer, direction] / denominator, right[layer, direction] / denominator,
                    left[layer, direction], right[layer, direction], steps))
    return Saturation(cell_type, lo, hi, tuple(out))
