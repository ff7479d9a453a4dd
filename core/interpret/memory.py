"""How long a gated cell keeps what it has: products of its keep gate and each unit's time
constant.

The keep gate is the LSTM's forget gate f (c_t = f_t c_{t−1} + i_t g_t) and the GRU's update
gate z in PyTorch's convention (h_t = (1 − z_t) n_t + z_t h_{t−1}, so z near 1 keeps the old h).
Unrolled, the state at step t holds the state at step s times the product of the keep gates in
between:

    c_t = M[s, t] c_s + sum_{k=s+1..t} M[k, t] i_k g_k,    M[s, t] = prod_{k=s+1..t} f_k

(for the GRU the same with z for f and (1 − z_k) n_k for i_k g_k). M[s, t] is how much of the
state at s still reaches t. A unit whose keep gate averages f decays like f^n = exp(−n / τ) with
the time constant τ = −1 / ln(mean f): the steps after which 1/e of a state is left. mean f = 1
gives τ = inf (nothing is ever forgotten), mean f = 0 gives τ = 0.

    memory = memory_stats(batch_trace)             # per layer and direction
    memory.get(0, 0).tau                           # (H,) time constants
    memory.get(0, 0).sequence_mean                 # (B, H) each sequence's mean keep gate
    M = unit_memory_map(batch_trace, sequence=3, unit=17)   # (n, n), n = that sequence's length
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.cells import CELLS
from core.interpret.saturation import cell_type_of_trace, valid_steps


def keep_gate(cell_type: str) -> str:
    """"forget" for an LSTM, "update" for a GRU; ValueError for a vanilla RNN (no gate keeps
    anything: it rewrites h at every step)."""
    name = CELLS[cell_type].keep_gate
    if name is None:
        raise ValueError("a vanilla RNN has no gate that keeps its state: it rewrites h at "
                         "every step, so it has no memory product or time constant")
    return name


def time_constant(mean_keep) -> np.ndarray:
    """τ = −1 / ln(mean keep gate), elementwise, float64: inf where the mean is 1 (or above, from
    rounding), 0 where it is 0, NaN where it is NaN (no steps)."""
    mean = np.asarray(mean_keep, dtype=np.float64)
    tau = np.full(mean.shape, np.nan)
    inside = (mean > 0) & (mean < 1)
    tau[inside] = -1.0 / np.log(mean[inside])
    tau[mean >= 1] = np.inf
    tau[mean <= 0] = 0.0
    return tau


def memory_map(keep, reverse: bool = False) -> np.ndarray:
    """(T, T) float64 M from one unit's keep gate over one sequence's real steps (T,).

    Forward: M[s, t] = prod_{k=s+1..t} keep_k for t >= s (1 on the diagonal), NaN for t < s.
    Reverse direction (which reads the sequence from its end): index t is still the input
    position, and the state at s reaches t <= s through M[s, t] = prod_{k=t..s−1} keep_k;
    NaN for t > s."""
    f = np.asarray(keep, dtype=np.float64)
    if f.ndim != 1:
        raise ValueError(f"a memory map takes one unit's gate over one sequence (T,); got shape "
                         f"{f.shape}")
    if reverse:
        return memory_map(f[::-1])[::-1, ::-1].copy()
    T = len(f)
    later = np.arange(T)[None, :] > np.arange(T)[:, None]  # [s, t]: t > s
    M = np.cumprod(np.where(later, f[None, :], 1.0), axis=1)
    M[np.arange(T)[None, :] < np.arange(T)[:, None]] = np.nan
    return M


def unit_memory_map(batch_trace, sequence: int, unit: int, layer: int = 0,
                    direction: int = 0) -> np.ndarray:
    """The memory map of one unit on one sequence of a BatchTrace, over that sequence's real
    steps: (n, n) float64, n = its length."""
    gate = keep_gate(cell_type_of_trace(batch_trace))
    values = batch_trace.gates[gate]
    B, L, D, T, H = values.shape
    for name, index, size in (("sequence", sequence, B), ("unit", unit, H), ("layer", layer, L),
                              ("direction", direction, D)):
        if not 0 <= int(index) < size:
            raise ValueError(f"{name} {index} does not exist: there are {size}")
    n = int(np.asarray(batch_trace.lengths)[sequence])
    return memory_map(values[sequence, layer, direction, :n, unit], reverse=direction == 1)


@dataclass(frozen=True)
class UnitMemory:
    """One layer and direction's keep gate over a batch."""

    layer: int
    direction: int
    gate: str  # "forget" or "update"
    mean_keep: np.ndarray  # (H,) float64: the mean over every valid step of the batch
    tau: np.ndarray  # (H,) float64: time_constant(mean_keep)
    sequence_mean: np.ndarray  # (B, H) float64: each sequence's mean over its own steps
    steps: int  # valid steps in the batch

    @property
    def sequence_tau(self) -> np.ndarray:
        """(B, H): the time constant of each sequence's own mean keep gate."""
        return time_constant(self.sequence_mean)


@dataclass(frozen=True)
class Memory:
    cell_type: str
    gate: str
    units: tuple[UnitMemory, ...]

    def get(self, layer: int = 0, direction: int = 0) -> UnitMemory:
        for u in self.units:
            if (u.layer, u.direction) == (layer, direction):
                return u
        raise KeyError(f"no layer {layer}, direction {direction} in this trace")

    def table(self) -> pd.DataFrame:
        """One row per (layer, direction, unit): the mean keep gate, τ, and the spread of the
        per-sequence means (10th, 50th, 90th percentile over the batch)."""
        frames = []
        for u in self.units:
            low, median, high = np.nanpercentile(u.sequence_mean, [10, 50, 90], axis=0)
            frames.append(pd.DataFrame({
                "layer": u.layer, "direction": u.direction, "unit": np.arange(len(u.tau)),
                "mean_keep": u.mean_keep, "tau": u.tau, "sequence_mean_p10": low,
                "sequence_mean_p50": median, "sequence_mean_p90": high}))
        return pd.concat(frames, ignore_index=True)


def memory_stats(batch_trace) -> Memory:
    """Each unit's mean keep gate over the batch's valid steps, its time constant, and each
    sequence's own mean (float64 sums of the float32 gates)."""
    cell_type = cell_type_of_trace(batch_trace)
    gate = keep_gate(cell_type)
    values = batch_trace.gates[gate]
    B, L, D, T, H = values.shape
    lengths = np.asarray(batch_trace.lengths, dtype=np.int64)
    valid = valid_steps(lengths, T)
    # zero at padded steps (where the trace holds NaN), so sums run over real steps only
    kept = np.where(valid[:, None, None, :, None], values, 0)
    per_sequence = kept.sum(axis=3, dtype=np.float64)  # (B, L, D, H)
    steps = int(valid.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = per_sequence.sum(axis=0) / steps  # (L, D, H)
        sequence_mean = per_sequence / lengths[:, None, None, None]
    units = tuple(
        UnitMemory(layer, direction, gate, mean[layer, direction],
                   time_constant(mean[layer, direction]), sequence_mean[:, layer, direction], steps)
        for layer in range(L) for direction in range(D))
    return Memory(cell_type, gate, units)
