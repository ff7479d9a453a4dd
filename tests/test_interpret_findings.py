"""The lab's one-run summary of a shipped agreement model (core/interpret/findings.py), small."""

from __future__ import annotations

import numpy as np

from core.interpret.findings import agreement_findings, summary


def test_findings_summary_reports_what_was_measured():
    f = agreement_findings("gru", search_n=80, per_distance=3, sweep_per_distance=1, ks=(1, 4),
                           repeats=2)
    text = summary(f)
    assert text.startswith("== agreement GRU: 'the subject is plural' ==")
    best = f.ranking.iloc[0]
    assert f"h{best.unit} {best.probe_accuracy:.3f}" in text
    held = int((f.ranking["probe_accuracy"] >= 0.9).sum())
    assert f"units with probe accuracy ≥ 0.9: {held} of 64" in text
    duel = f.duel["h"]
    assert list(duel["k"]) == [1, 1, 1, 4, 4, 4]
    four = duel[(duel["k"] == 4) & (duel["chosen"] == "feature")]["after"].iloc[0]
    assert f"ablate h of the top  4 feature units: {four:.4f}" in text
    assert len(f.sweep) == 64 and set(f.sweep["unit"]) == set(range(64))
    assert len(f.top16_by_distance) == 40
    assert np.isfinite(f.memory["tau"]).all() and "time constants τ over 64 units" in text
    assert set(f.saturation["gate"]) == {"reset", "update"}


def test_the_character_level_models_units_are_those_the_readme_records():
    """The README's record of the shipped charlm models: the gated cells have a bracket unit
    and a prose unit that beat the majority guess; the vanilla RNN has none that does."""
    from core.interpret.findings import charlm_units

    for cell, brackets in (("lstm", "c62"), ("gru", "h37")):
        table = charlm_units(cell, n=300).set_index("feature")
        row = table.loc["inside brackets"]
        assert row.unit == brackets and row.probe > row.majority + 0.05
        assert abs(table.loc["inside a string or a comment"].r) >= 0.4
        assert abs(table.loc["position in the line"].r) >= 0.5
    rnn = charlm_units("rnn", n=300)
    binary = rnn[rnn.probe.notna()]
    assert (binary.probe <= binary.majority + 0.01).all()
    assert abs(rnn.set_index("feature").loc["inside a string or a comment"].r) < 0.35
