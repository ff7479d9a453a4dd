"""Unit search: which units' h (or an LSTM's c) follow a step feature, ranked.

    table = rank_units(batch_trace, feature)              # best |correlation| first
    table = rank_units(batch_trace, feature, by="probe")  # best one-unit probe accuracy first
    top_units(table, 4)                                   # [(layer, direction, "h", unit), ...]

Two measures, over every step where the feature is defined (and the sequence real):
- Pearson's correlation between the unit's value and the feature (float64 sums);
- for a 0/1 feature, a one-unit linear probe: logistic regression on that one scalar (with an
  intercept), fitted on a seeded half of the sequences and scored on the other half (whole
  sequences on each side, so no sentence is both learned and tested on). Accuracy is the share of
  test steps it classifies right, beside `probe_baseline`, what always answering the test half's
  more common value scores. The fit is Newton's method on the standardised unit with an L2
  penalty of 1 on w and b beside the summed log-loss (about scikit-learn's default C = 1),
  vectorised over all units.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.interpret.features import StepFeature
from core.interpret.saturation import cell_type_of_trace, valid_steps

QUANTITIES = {"h": "hidden", "c": "cell"}
PROBE_PENALTY = 1.0
PROBE_ITERATIONS = 100


def quantities_of(batch_trace) -> tuple[str, ...]:
    """("h", "c") for an LSTM, ("h",) otherwise."""
    return ("h", "c") if getattr(batch_trace, "cell", None) is not None else ("h",)


def unit_values(batch_trace, quantity: str) -> np.ndarray:
    """(B, L, D, T, H) float32: h or an LSTM's c."""
    if quantity not in QUANTITIES:
        raise ValueError(f"a unit's quantity is h (hidden state) or c (LSTM cell state); got "
                         f"{quantity!r}")
    values = getattr(batch_trace, QUANTITIES[quantity])
    if values is None:
        raise ValueError(f"a {cell_type_of_trace(batch_trace).upper()} has no cell state c: "
                         "search its hidden state h")
    return values


def _steps_by_unit(batch_trace, quantity: str, mask: np.ndarray) -> np.ndarray:
    """(N, L*D*H) float64: the unit values at the N masked steps, units in (layer, direction,
    unit) order."""
    values = unit_values(batch_trace, quantity)
    B, L, D, T, H = values.shape
    return values.transpose(0, 3, 1, 2, 4)[mask].reshape(-1, L * D * H).astype(np.float64)


def pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Correlation of each column of x (N, U) with y (N,), float64; NaN for a constant column."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    xc = x - x.mean(axis=0)
    yc = y - y.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xc * yc[:, None]).sum(axis=0) / np.sqrt((xc ** 2).sum(axis=0) * (yc ** 2).sum())


def _log_loss(eta, y, w, b, penalty):
    """The penalised log-loss of each column, from its linear predictor eta (N, U)."""
    data = (np.logaddexp(0.0, eta) - y[:, None] * eta).sum(axis=0)
    return data + 0.5 * penalty * (w ** 2 + b ** 2)


def fit_probes(x: np.ndarray, y: np.ndarray, penalty: float = PROBE_PENALTY
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One logistic regression per column of x (N, U) on 0/1 labels y (N,): p = σ(w z + b) with
    z the column standardised by its own mean and deviation. Returns (mean, std, w, b), each
    (U,). Newton steps with step halving, so the penalised log-loss never rises; a column stops
    once its step is below 1e-10 (the others go on without it)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # a constant unit: z = 0, the probe learns the prior
    units = x.shape[1]
    w = np.zeros(units)
    b = np.zeros(units)
    active = np.arange(units)
    z = (x - mean) / std
    eta = np.zeros_like(z)
    loss = _log_loss(eta, y, w, b, penalty)
    for _ in range(PROBE_ITERATIONS):
        p = 0.5 * (1.0 + np.tanh(0.5 * eta))  # σ without overflow
        r = p - y[:, None]
        s = p * (1.0 - p)
        wa, ba = w[active], b[active]
        gw = (r * z).sum(axis=0) + penalty * wa
        gb = r.sum(axis=0) + penalty * ba
        sz = s * z
        hww = (sz * z).sum(axis=0) + penalty
        hwb = sz.sum(axis=0)
        hbb = s.sum(axis=0) + penalty
        det = hww * hbb - hwb ** 2  # > 0: the penalty makes the Hessian positive definite
        dw = (hbb * gw - hwb * gb) / det
        db = (hww * gb - hwb * gw) / det
        step = np.ones(len(active))
        for _halving in range(40):
            new_w, new_b = wa - step * dw, ba - step * db
            new_eta = z * new_w + new_b
            new_loss = _log_loss(new_eta, y, new_w, new_b, penalty)
            worse = new_loss > loss + 1e-12 * np.abs(loss)
            if not worse.any():
                break
            step = np.where(worse, step * 0.5, step)
        w[active], b[active] = new_w, new_b
        moving = np.maximum(np.abs(step * dw), np.abs(step * db)) >= 1e-10
        if not moving.any():
            break
        active, z, eta, loss = active[moving], z[:, moving], new_eta[:, moving], new_loss[moving]
    return mean, std, w, b


def probe_accuracy(x_fit, y_fit, x_test, y_test, penalty: float = PROBE_PENALTY) -> np.ndarray:
    """(U,) share of test steps each column's fitted probe gets right (p > 0.5 means 1)."""
    mean, std, w, b = fit_probes(x_fit, y_fit, penalty)
    z = (np.asarray(x_test, dtype=np.float64) - mean) / std
    predicted = (z * w + b) > 0
    return (predicted == (np.asarray(y_test)[:, None] > 0.5)).mean(axis=0)


def probe_split(batch_size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded halves of the sequence indices: (fit, test), each sorted."""
    order = np.random.default_rng([int(seed), 17]).permutation(batch_size)
    half = batch_size // 2
    return np.sort(order[:half]), np.sort(order[half:])


def rank_units(batch_trace, feature: StepFeature, quantities=None, by: str | None = None,
               seed: int = 0) -> pd.DataFrame:
    """Every unit of every layer, direction and quantity (h; c for an LSTM) against `feature`.

    Columns: layer, direction, quantity, unit, correlation, abs_correlation, probe_accuracy and
    probe_baseline (NaN for a feature that is not 0/1), steps. Sorted best first: by
    |correlation| (by="correlation", the default for a numeric feature) or by probe accuracy
    (by="probe", the default for a 0/1 feature), ties in (layer, direction, quantity, unit)
    order; a constant unit (no correlation) last."""
    quantities = tuple(quantities or quantities_of(batch_trace))
    by = by or ("probe" if feature.binary else "correlation")
    if by not in ("correlation", "probe"):
        raise ValueError(f"rank by 'correlation' or 'probe'; got {by!r}")
    if by == "probe" and not feature.binary:
        raise ValueError(f"a one-unit probe classifies a 0/1 feature; {feature.name!r} takes "
                         "other values: rank by correlation")
    values = feature.values
    hidden = batch_trace.hidden
    B, L, D, T, H = hidden.shape
    if values.shape != (B, T):
        raise ValueError(f"the feature has shape {values.shape}, the trace's steps are {(B, T)}: "
                         "compute both from the same batch")
    mask = valid_steps(batch_trace.lengths, T) & np.isfinite(values)
    y = values[mask]
    if len(y) < 2 or np.all(y == y[0]):
        raise ValueError(f"{feature.name!r} takes a single value over the batch's steps: a unit "
                         "cannot follow it (nothing to correlate with)")
    probe = feature.binary
    note = ""
    if probe:
        fit, test = probe_split(B, seed)
        sequence = np.broadcast_to(np.arange(B)[:, None], (B, T))[mask]
        on_fit = np.isin(sequence, fit)
        if len(np.unique(y[on_fit])) < 2 or len(np.unique(y[~on_fit])) < 2:
            probe = False  # one half holds one value only: a probe there says nothing
            note = (f"{feature.name!r} takes one value only on one half of the sequences: no "
                    "probe was fitted; ranked by correlation")
    frames = []
    for quantity in quantities:
        x = _steps_by_unit(batch_trace, quantity, mask)
        finite = np.isfinite(x).all(axis=1)  # an overflowed step is left out of every unit
        xs, ys = x[finite], y[finite]
        r = pearson(xs, ys)
        if probe:
            fit_rows, test_rows = on_fit[finite], ~on_fit[finite]
            accuracy = probe_accuracy(xs[fit_rows], ys[fit_rows], xs[test_rows], ys[test_rows])
            share = float(ys[test_rows].mean())
            baseline = max(share, 1.0 - share)
        else:
            accuracy, baseline = np.full(L * D * H, np.nan), np.nan
        layer, direction, unit = np.unravel_index(np.arange(L * D * H), (L, D, H))
        frames.append(pd.DataFrame({
            "layer": layer, "direction": direction, "quantity": quantity, "unit": unit,
            "correlation": r, "abs_correlation": np.abs(r), "probe_accuracy": accuracy,
            "probe_baseline": baseline, "steps": int(finite.sum())}))
    table = pd.concat(frames, ignore_index=True)
    keys = ["probe_accuracy", "abs_correlation"] if by == "probe" and probe else ["abs_correlation"]
    table = table.sort_values(keys, ascending=False, kind="mergesort", na_position="last"
                              ).reset_index(drop=True)
    table.attrs["note"] = note
    return table


def top_units(table: pd.DataFrame, k: int, quantity: str | None = None
              ) -> list[tuple[int, int, str, int]]:
    """The first k rows of a ranking (of one quantity, if given) as (layer, direction,
    quantity, unit)."""
    if quantity is not None:
        table = table[table["quantity"] == quantity]
    rows = table.head(int(k))
    return [(int(r.layer), int(r.direction), str(r.quantity), int(r.unit))
            for r in rows.itertuples(index=False)]
