"""What the lab measures on a shipped agreement model, in one run: how the subject's number is
carried (unit search), what ablating the units that carry it does at long distances against as
many random units, and the gates' saturation and time constants.

    python -m core.interpret.findings --cell lstm     # prints the figures the README quotes
    python -m core.interpret.findings --charlm        # the character-level models' units

Units are searched on one held-out set (1,000 sentences at distances 1..40) and ablated on
another (Compare's 100 sentences at each distance 1..40, core.views.compare), so the units are
not chosen on the sentences they are tested on.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import pandas as pd
from core.claims import AGREEMENT_LONG_FROM
from core.interpret.ablation import (
    ablate, ablation_sweep, by_distance_table, feature_vs_random, run,
)
from core.interpret.features import builtin_feature, builtin_names
from core.interpret.heldout import (
    DEFAULT_SEED, heldout_batch, heldout_by_distance, trace_heldout,
)
from core.interpret.memory import memory_stats
from core.interpret.saturation import gate_saturation
from core.interpret.search import quantities_of, rank_units, top_units
from core.training.zoo import load_model

SEARCH_SEED = DEFAULT_SEED + 1  # a held-out stream apart from the one ablations are scored on
FEATURE = "the subject is plural"


@dataclass
class AgreementFindings:
    cell: str
    ranking: pd.DataFrame  # every unit (h; c for an LSTM) against the subject's number
    duel: dict[str, pd.DataFrame]  # quantity -> feature_vs_random rows (long-distance accuracy)
    sweep: pd.DataFrame  # single-unit ablations of h, most harmful first (long-distance accuracy)
    long_before: float
    top16_by_distance: pd.DataFrame  # accuracy at each distance before / after the top 16 h
    saturation: pd.DataFrame
    memory: pd.DataFrame


def agreement_findings(cell: str, search_n: int = 1000, per_distance: int = 100,
                       sweep_per_distance: int = 25, ks=(1, 2, 4, 8, 16), repeats: int = 5,
                       seed: int = 0) -> AgreementFindings:
    model = load_model("agreement", cell)
    search = heldout_batch("agreement", model, n=search_n, seed=SEARCH_SEED,
                           seq_len=40)
    traced = trace_heldout(model, search)
    ranking = rank_units(traced, builtin_feature(search, FEATURE))
    scored = heldout_by_distance(model, per_distance=per_distance)
    before = run(model, scored)
    duel = {q: feature_vs_random(model, scored, ranking, ks=ks, quantity=q, repeats=repeats,
                                 seed=seed, measure="long", before=before)
            for q in quantities_of(traced)}
    top16 = run(model, scored, ablate(top_units(ranking, 16, quantity="h")))
    sweep_batch = heldout_by_distance(model, per_distance=sweep_per_distance)
    sweep = ablation_sweep(model, sweep_batch, quantity="h", measure="long")
    return AgreementFindings(cell, ranking, duel, sweep, before.long_accuracy,
                             by_distance_table(before, top16), gate_saturation(traced).table(),
                             memory_stats(traced).table())


def summary(f: AgreementFindings) -> str:
    lines = [f"== agreement {f.cell.upper()}: '{FEATURE}' =="]
    for quantity in sorted(set(f.ranking["quantity"])):
        rows = f.ranking[f.ranking["quantity"] == quantity]
        best = rows.head(5)
        lines.append(
            f"{quantity}: probe accuracy (test half; always-majority "
            f"{rows['probe_baseline'].iloc[0]:.3f}) of the best 5 units: "
            + ", ".join(f"{quantity}{r.unit} {r.probe_accuracy:.3f} (r={r.correlation:+.2f})"
                        for r in best.itertuples()))
        for level in (0.99, 0.95, 0.9, 0.8):
            lines.append(f"  units with probe accuracy ≥ {level}: "
                         f"{int((rows['probe_accuracy'] >= level).sum())} of {len(rows)}")
        by_r = rows.sort_values("abs_correlation", ascending=False)
        lines.append(f"  |r| ≥ 0.9: {int((rows['abs_correlation'] >= 0.9).sum())}, ≥ 0.7: "
                     f"{int((rows['abs_correlation'] >= 0.7).sum())}, ≥ 0.5: "
                     f"{int((rows['abs_correlation'] >= 0.5).sum())}; best |r| "
                     f"{by_r['abs_correlation'].iloc[0]:.3f}")
    lines.append(f"long-distance accuracy (distance > {AGREEMENT_LONG_FROM}), nothing ablated: "
                 f"{f.long_before:.4f}")
    for quantity, duel in f.duel.items():
        for k, rows in duel.groupby("k", sort=True):
            feature = rows[rows["chosen"] == "feature"]["after"].iloc[0]
            random = rows[rows["chosen"] == "random"]["after"]
            lines.append(f"  ablate {quantity} of the top {k:2d} feature units: {feature:.4f}; "
                         f"{k} random units ({len(random)} draws): mean {random.mean():.4f}, "
                         f"min {random.min():.4f}, max {random.max():.4f}")
    worst = f.sweep.head(5)
    lines.append("single h units ablated (long-distance accuracy after, 25 per distance): "
                 + ", ".join(f"h{r.unit} {r.after:.4f}" for r in worst.itertuples())
                 + f"; units costing more than 0.01: {int((f.sweep['harm'] > 0.01).sum())} of "
                 f"{len(f.sweep)}")
    table = f.top16_by_distance
    lines.append("top-16 h ablated, accuracy by distance (before → after): " + ", ".join(
        f"{int(r.distance)}: {r.before:.2f}→{r.after:.2f}" for r in table.itertuples()
        if r.distance in (1, 2, 3, 5, 10, 20, 30, 40)))
    sat = f.saturation
    for gate, rows in sat.groupby("gate", sort=False):
        lines.append(f"saturation {gate}: mean left {rows['left'].mean():.3f}, right "
                     f"{rows['right'].mean():.3f}; units right-saturated > 50% of steps: "
                     f"{int((rows['right'] > 0.5).sum())}, left-saturated > 50%: "
                     f"{int((rows['left'] > 0.5).sum())}")
    tau = f.memory["tau"].to_numpy()
    finite = tau[np.isfinite(tau)]
    q1, med, q3 = np.percentile(finite, [25, 50, 75])
    lines.append(f"time constants τ over {len(tau)} units: median {med:.2f} steps (quartiles "
                 f"{q1:.2f}, {q3:.2f}), max {finite.max():.2f}, infinite "
                 f"{int(np.isinf(tau).sum())}, "
                 f"τ > 10: {int((tau > 10).sum())}, τ > 40: {int((tau > 40).sum())}")
    top = [unit for _, _, _, unit in top_units(f.ranking, 8, quantity="h")]
    top_tau = f.memory.set_index("unit").loc[top, "tau"]
    rest = f.memory[~f.memory["unit"].isin(top)]["tau"]
    lines.append("τ of the 8 h units that follow the subject's number best: "
                 + ", ".join(f"h{u} {t:.2f}" for u, t in top_tau.items())
                 + f"; median τ of the other {len(rest)} units {rest.median():.2f}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The character-level language models (Karpathy, Johnson & Fei-Fei 2015): units that follow
# strings, brackets, the position in the line


def charlm_units(cell: str, n: int = 1000, seq_len: int = 100) -> pd.DataFrame:
    """For each of the task's built-in features, the unit that follows it best on `n`
    held-out windows of the shipped model (a 0/1 feature by a one-unit probe's accuracy, next
    to always guessing the majority; a number by |correlation|), and the best correlation."""
    model = load_model("charlm", cell)
    batch = heldout_batch("charlm", model, n=n, seed=SEARCH_SEED, seq_len=seq_len)
    traced = trace_heldout(model, batch)
    rows = []
    for name in builtin_names("charlm"):
        feature = builtin_feature(batch, name)
        best = rank_units(traced, feature).iloc[0]
        closest = rank_units(traced, feature, by="correlation").iloc[0]
        rows.append({"feature": name, "unit": f"{best.quantity}{best.unit}",
                     "probe": best.probe_accuracy, "majority": best.probe_baseline,
                     "r_unit": f"{closest.quantity}{closest.unit}",
                     "r": closest.correlation})
    return pd.DataFrame(rows)


def charlm_summary(cell: str, table: pd.DataFrame) -> str:
    lines = [f"== charlm {cell}: the unit that follows each feature best (held-out windows)"]
    for row in table.itertuples():
        probe = (f"probe {row.probe:.3f} vs majority {row.majority:.3f}"
                 if np.isfinite(row.probe) else "numeric")
        lines.append(f"  {row.feature:30s} {row.unit:>5s}  {probe:32s} best |r|: "
                     f"{row.r_unit} {row.r:+.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cell", choices=("lstm", "gru"), action="append")
    parser.add_argument("--charlm", action="store_true",
                        help="the character-level language models' units instead")
    args = parser.parse_args()
    if args.charlm:
        for cell in ("lstm", "gru", "rnn"):
            print(charlm_summary(cell, charlm_units(cell)))
        return
    for cell in args.cell or ["lstm", "gru"]:
        print(summary(agreement_findings(cell)))


if __name__ == "__main__":
    main()
