"""The claims catalogue (content/claims.toml, core/claims.py): every lesson the app states is
checked on the shipped models, one test per claim; a failing check hides its claim; the README
states exactly the catalogue's lessons; and lessons the figures contradicted are gone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core import claims
from core.content import CONTENT_DIR

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = claims.catalogue()


def test_every_claim_names_a_check_and_every_check_is_used():
    assert CATALOGUE, "the catalogue is empty"
    assert {c.check for c in CATALOGUE.values()} == set(claims.CHECKS)


@pytest.mark.parametrize("key", sorted(CATALOGUE))
def test_claim_holds_on_the_shipped_models(key):
    found = claims.evidence(key)
    assert found.holds, f"{key}: {found.why}"
    text = claims.statement(key)
    assert text and "$" not in text  # every placeholder filled by a measured number


def test_a_failing_check_hides_its_claim(monkeypatch):
    key = "vanishing_adding"
    monkeypatch.setitem(claims.CHECKS, CATALOGUE[key].check,
                        lambda: claims.Evidence(False, why="forced"))
    claims.evidence.cache_clear()
    try:
        assert claims.statement(key) is None
        assert claims.values(key) == {}
        assert "RNN's gradient at t = 0" not in claims.lessons("compare")
    finally:
        claims.evidence.cache_clear()


def test_a_check_that_raises_hides_its_claim(monkeypatch):
    def broken():
        raise RuntimeError("no models")

    monkeypatch.setitem(claims.CHECKS, CATALOGUE["gru_three_quarters"].check, broken)
    claims.evidence.cache_clear()
    try:
        assert claims.statement("gru_three_quarters") is None
        assert "RuntimeError" in claims.evidence("gru_three_quarters").why
    finally:
        claims.evidence.cache_clear()


def test_the_vanishing_claim_is_the_issues_example():
    """On the adding problem at T = 50 the shipped RNN's gradient at t = 0, relative to
    t = T−1, is at least 100× smaller than the LSTM's and the GRU's."""
    ratios = claims.adding_ratios()
    assert ratios["rnn"] * 100 <= min(ratios["lstm"], ratios["gru"])


def test_the_readme_states_the_catalogue_lessons():
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    for claim in CATALOGUE.values():
        if "readme" in claim.pages:
            assert claim.summary in readme, claim.key


def test_pages_ask_the_catalogue():
    for page in ("compare", "gradient_lab", "train", "about"):
        assert "claims.lessons(" in (ROOT / "app_pages" / f"{page}.py").read_text(encoding="utf-8")
    for page in ("compare", "lab", "train", "about"):
        assert any("$lessons" in p.read_text(encoding="utf-8")
                   for p in (CONTENT_DIR / page).glob("*.md")), page


#: Lessons the app's own figures contradicted (issue 13), and wording that must not come back.
RETRACTED = [
    r"lighter and faster", r"holds? information longer", r"moved (the|that model's) loss most",
    r"darker: moved", r"Cho et al\. and", r"seed texts claim", r"Why does the gradient line fall\?",
    r"forget bias of 1 or more keeps", r"same colour means the same value(?!.*clipped)",
]


def _texts():
    yield ROOT / "README.md"
    yield from CONTENT_DIR.rglob("*.md")
    yield from (ROOT / "app_pages").glob("*.py")


@pytest.mark.parametrize("pattern", RETRACTED)
def test_retracted_lessons_are_gone(pattern):
    for path in _texts():
        text = " ".join(path.read_text(encoding="utf-8").split())
        assert not re.search(pattern, text, flags=re.IGNORECASE), f"{pattern!r} in {path}"


def test_cho_and_chung_are_cited_the_right_way_round():
    """Cho et al. 2014 (eq. 7): h = z·h_{t−1} + (1 − z)·h̃, PyTorch's form; Chung et al. 2014
    write the other one."""
    for path in _texts():
        text = " ".join(path.read_text(encoding="utf-8").split())
        for sentence in re.split(r"(?<=[.;])\s", text):
            if "Cho et al" in sentence and ("opposite" in sentence or "other" in sentence):
                assert "Chung" in sentence and sentence.index("Cho") < sentence.index("Chung"), \
                    f"{path}: {sentence}"
