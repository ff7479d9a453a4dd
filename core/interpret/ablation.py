"""Interventions on a whole held-out batch: the model's answers and the task's metric before and
after units are zeroed (or clamped), an ablation sweep that ranks units by the harm each one's
loss does, and "the k units that follow a feature best" against k random units.

    before = run(model, batch)                                    # no intervention
    after = run(model, batch, ablate([(0, 0, "h", 17)]))         # h of unit 17 zeroed throughout
    by_distance_table(before, after)                              # agreement: accuracy per distance
    sweep = ablation_sweep(model, batch, quantity="h")            # one unit at a time, worst first
    duel = feature_vs_random(model, batch, ranking, ks=(1, 2, 4)) # top-k feature units vs random

The recurrent module runs through `trace_batch(model.rnn, batch.x, batch.lengths,
interventions=...)` (heldout.trace_heldout); its top layer's output goes through the model's own
head as the task reads it (`model.readout`: the last real step of each sequence for a
many-to-one task, every step for tagging), and the task's own `score` gives the metric. For
agreement, the accuracy at each exact subject-verb distance is grouped as Compare groups it
(core.views.compare.accuracy_by_distance: one row per distance, with n and the mean attractor
count), and "long" is the accuracy beyond AGREEMENT_LONG_FROM words, as core.claims computes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from core.claims import AGREEMENT_LONG_FROM, long_distance_accuracy
from core.interpret.heldout import HeldoutBatch, trace_heldout
from core.tasks import get_task
from core.trace import Intervention

#: The intervention target of each quantity a unit search ranks.
TARGETS = {"h": "hidden", "c": "cell_state"}

Unit = tuple[int, int, str, int]  # (layer, direction, quantity "h" or "c", unit)


@dataclass(frozen=True)
class Outcome:
    """The model on a batch under some interventions: its answers and the task's metric."""

    interventions: tuple
    predictions: torch.Tensor  # what model.readout returns: (B,), (B, C) or (B, T, C)
    metric: str
    value: float  # the task's metric on the batch
    higher_is_better: bool
    correct: np.ndarray | None  # (B,) bool, classification only
    by_distance: list[dict] | None  # agreement only: one row per subject-verb distance

    @property
    def long_accuracy(self) -> float | None:
        """Agreement: the accuracy beyond AGREEMENT_LONG_FROM words (NaN when the batch has no
        such sentence); None for other tasks."""
        if self.by_distance is None:
            return None
        return float(long_distance_accuracy(self.by_distance, AGREEMENT_LONG_FROM))

    def harm(self, before: "Outcome", measure: str = "metric") -> float:
        """How much worse than `before` this is, in the measure's own unit (positive: worse)."""
        old, new = before.measured(measure), self.measured(measure)
        return old - new if self.higher_is_better or measure == "long" else new - old

    def measured(self, measure: str = "metric") -> float:
        if measure == "metric":
            return self.value
        if measure == "long":
            if self.by_distance is None:
                raise ValueError("long-distance accuracy is measured on the agreement task only")
            return float(self.long_accuracy)
        raise ValueError(f"measure 'metric' or 'long'; got {measure!r}")


def ablate(units: Iterable[Unit], steps=None, value: float = 0.0) -> tuple[Intervention, ...]:
    """Interventions that set each listed unit's h or c to `value` (0: ablation) at `steps`
    (None: every step), one Intervention per (layer, direction, quantity)."""
    grouped: dict[tuple[int, int, str], list[int]] = {}
    for layer, direction, quantity, unit in units:
        if quantity not in TARGETS:
            raise ValueError(f"a unit's quantity is h or c; got {quantity!r}")
        grouped.setdefault((int(layer), int(direction), quantity), []).append(int(unit))
    return tuple(
        Intervention(layer, direction, tuple(sorted(set(members))), TARGETS[quantity],
                     steps=None if steps is None else tuple(steps), value=float(value))
        for (layer, direction, quantity), members in sorted(grouped.items()))


def readout(model, output: np.ndarray, lengths: np.ndarray) -> torch.Tensor:
    """The model's head on a BatchTrace's top-layer output (B, T, D*H), as the task reads it."""
    # the trace holds NaN beyond each length; the head reads real steps only (many-to-one) or
    # every step of which the metric ignores the padded ones (tagging), but NaN must not reach it
    out = torch.from_numpy(np.nan_to_num(np.asarray(output, dtype=np.float32), nan=0.0))
    with torch.no_grad():
        if getattr(model, "many_to_many", False):
            return model.readout(out)
        return model.readout(out, torch.as_tensor(np.asarray(lengths), dtype=torch.long))


def run(model, batch: HeldoutBatch, interventions: Sequence[Intervention] = ()) -> Outcome:
    """The model on the batch with `interventions` (none: the model as it is)."""
    interventions = tuple(interventions)
    traced = trace_heldout(model, batch, interventions)
    predictions = readout(model, traced.output, batch.lengths)
    return outcome(model, batch, predictions, interventions)


def outcome(model, batch: HeldoutBatch, predictions: torch.Tensor,
            interventions: tuple = ()) -> Outcome:
    """An Outcome from predictions already made on `batch`."""
    task = get_task(batch.task)
    value = float(task.score(predictions, batch.batch))
    correct = by_distance = None
    if task.kind == "classification":
        correct = (predictions.argmax(-1) == batch.targets).numpy()
        if "distance" in batch.info and task.name == "agreement":
            by_distance = accuracy_by_distance(correct, batch.info["distance"],
                                               batch.info.get("attractors"))
    return Outcome(interventions, predictions, task.metric.name, value,
                   task.metric.higher_is_better, correct, by_distance)


def accuracy_by_distance(correct: np.ndarray, distance: np.ndarray,
                         attractors: np.ndarray | None = None) -> list[dict]:
    """[{"distance": d, "accuracy": a, "n": n, "attractors": mean attractor count}, ...], one
    row per distance present, in order: the rows of AgreementTask.accuracy_by_distance."""
    correct = np.asarray(correct, dtype=np.float64)
    distance = np.asarray(distance)
    rows = []
    for d in np.unique(distance):
        at = distance == d
        row = {"distance": int(d), "accuracy": float(correct[at].mean()), "n": int(at.sum())}
        if attractors is not None:
            row["attractors"] = float(np.asarray(attractors, dtype=np.float64)[at].mean())
        rows.append(row)
    return rows


def by_distance_table(before: Outcome, after: Outcome) -> pd.DataFrame:
    """Agreement: accuracy at each distance before and after, and the change."""
    if before.by_distance is None or after.by_distance is None:
        raise ValueError("accuracy by distance is measured on the agreement task only")
    table = pd.DataFrame({
        "distance": [r["distance"] for r in before.by_distance],
        "n": [r["n"] for r in before.by_distance],
        "before": [r["accuracy"] for r in before.by_distance],
        "after": [r["accuracy"] for r in after.by_distance],
    })
    table["change"] = table["after"] - table["before"]
    return table


def _units_of(model, quantity: str, layer: int, direction: int) -> int:
    rnn = model.rnn
    if quantity == "c" and not isinstance(rnn, torch.nn.LSTM):
        raise ValueError("only an LSTM has a cell state c to ablate: ablate h")
    if quantity not in TARGETS:
        raise ValueError(f"a unit's quantity is h or c; got {quantity!r}")
    directions = 2 if rnn.bidirectional else 1
    if not 0 <= layer < rnn.num_layers:
        raise ValueError(f"layer {layer} does not exist: the model has {rnn.num_layers}")
    if not 0 <= direction < directions:
        raise ValueError(f"direction {direction} does not exist: the model has {directions}")
    return rnn.hidden_size


def ablation_sweep(model, batch: HeldoutBatch, layer: int = 0, direction: int = 0,
                   quantity: str = "h", units: Iterable[int] | None = None,
                   measure: str = "metric", value: float = 0.0,
                   before: Outcome | None = None) -> pd.DataFrame:
    """Each unit's h (or c) set to `value` at every step, one unit at a time, and the measure
    ("metric", or "long" for agreement's long-distance accuracy) after. Rows sorted by harm,
    the most harmful first (ties in unit order). Columns: layer, direction, quantity, unit,
    before, after, harm."""
    size = _units_of(model, quantity, layer, direction)
    units = list(range(size)) if units is None else [int(u) for u in units]
    bad = [u for u in units if not 0 <= u < size]
    if bad:
        raise ValueError(f"unit {bad[0]} does not exist: the layer has {size} units")
    before = before or run(model, batch)
    rows = []
    for unit in units:
        after = run(model, batch, ablate([(layer, direction, quantity, unit)], value=value))
        rows.append({"layer": layer, "direction": direction, "quantity": quantity,
                     "unit": unit, "before": before.measured(measure),
                     "after": after.measured(measure), "harm": after.harm(before, measure)})
    table = pd.DataFrame(rows, columns=["layer", "direction", "quantity", "unit", "before",
                                        "after", "harm"])
    return table.sort_values("harm", ascending=False, kind="mergesort").reset_index(drop=True)


def feature_vs_random(model, batch: HeldoutBatch, ranking: pd.DataFrame,
                      ks: Sequence[int] = (1, 2, 4, 8, 16), quantity: str = "h",
                      repeats: int = 5, seed: int = 0, measure: str = "metric",
                      before: Outcome | None = None) -> pd.DataFrame:
    """The k units a unit search ranked best (of `quantity`) ablated together, against k units
    drawn at random (seeded, `repeats` draws per k) from the same layers' and directions' other
    units of that quantity. Rows: k, chosen ("feature" or "random"), draw, units, after, harm;
    the measure before any ablation is in every row's "before"."""
    ranked = ranking[ranking["quantity"] == quantity]
    if ranked.empty:
        raise ValueError(f"the ranking holds no {quantity} units")
    ks = [int(k) for k in ks]
    pool_all = [(int(r.layer), int(r.direction), quantity, int(r.unit))
                for r in ranked.itertuples(index=False)]
    if any(k < 1 or k > len(pool_all) for k in ks):
        raise ValueError(f"k must be from 1 to {len(pool_all)}, the {quantity} units ranked")
    before = before or run(model, batch)
    start = before.measured(measure)
    rows = []
    for k in ks:
        chosen = pool_all[:k]
        sets = [("feature", 0, chosen)]
        rest = sorted(set(pool_all) - set(chosen))
        if len(rest) >= k:
            for draw in range(repeats):
                rng = np.random.default_rng([int(seed), k, draw])
                picked = rng.choice(len(rest), size=k, replace=False)
                sets.append(("random", draw, [rest[i] for i in sorted(picked)]))
        for kind, draw, members in sets:
            after = run(model, batch, ablate(members))
            rows.append({"k": k, "chosen": kind, "draw": draw,
                         "units": ", ".join(f"{q}{u}" if (l, d) == (0, 0) else f"L{l}D{d}{q}{u}"
                                            for l, d, q, u in members),
                         "before": start, "after": after.measured(measure),
                         "harm": after.harm(before, measure)})
    return pd.DataFrame(rows)
