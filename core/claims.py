"""The claims catalogue: every lesson gatescope states, with the check that proves it.

The statements are data, in content/claims.toml; each names a check here, a function that
measures the shipped models (models/, through core.training.zoo) or fresh ones and returns an
`Evidence`: whether the lesson holds, and the numbers its text shows. A page asks

    claims.statement("vanishing_adding")   # the filled Markdown, or None when the check fails
    claims.lessons("lab")                  # every holding claim of a page, as bullets

so a lesson that its own figures would contradict is never shown, and every number in it is
measured, not typed. Checks run once per process (cached) and take well under a second each,
except the lab's profiles (about a second together). tests/test_claims.py runs every check.
"""

from __future__ import annotations

import functools
import math
import tomllib
from dataclasses import dataclass, field
from string import Template
from typing import Callable

import numpy as np

from core.content import CONTENT_DIR

CATALOGUE = CONTENT_DIR / "claims.toml"


@dataclass(frozen=True)
class Claim:
    key: str
    pages: tuple[str, ...]
    check: str  # the name of its check function here
    summary: str  # the lesson without numbers (as the README states it)
    text: str  # Markdown with $placeholders, filled from the evidence


@dataclass(frozen=True)
class Evidence:
    holds: bool
    values: dict = field(default_factory=dict)  # the numbers the text shows, formatted
    why: str = ""  # what failed, for the test's message


@functools.cache
def catalogue() -> dict[str, Claim]:
    data = tomllib.loads(CATALOGUE.read_text(encoding="utf-8"))
    return {key: Claim(key, tuple(item["pages"]), item["check"], item["summary"],
                       " ".join(item["text"].split()))
            for key, item in data.items()}


CHECKS: dict[str, Callable[[], Evidence]] = {}


def _check(fn: Callable[[], Evidence]) -> Callable[[], Evidence]:
    CHECKS[fn.__name__] = fn
    return fn


@functools.cache
def evidence(key: str) -> Evidence:
    """The claim's check, run once per process; an error in a check counts as a failure."""
    claim = catalogue()[key]
    try:
        return CHECKS[claim.check]()
    except Exception as error:  # a broken check must hide its claim, not break a page
        return Evidence(False, why=f"{type(error).__name__}: {error}")


def holds(key: str) -> bool:
    return evidence(key).holds


def statement(key: str) -> str | None:
    """The claim's text with its measured numbers, or None when its check fails."""
    found = evidence(key)
    if not found.holds:
        return None
    return Template(catalogue()[key].text).substitute(found.values)


def values(key: str) -> dict:
    """The numbers a claim's check measured (empty when it failed)."""
    found = evidence(key)
    return dict(found.values) if found.holds else {}


def lessons(page: str) -> str:
    """Every holding claim shown on `page`, as Markdown bullets ("" when none holds)."""
    shown = [statement(key) for key, claim in catalogue().items() if page in claim.pages]
    return "\n".join(f"- {text}" for text in shown if text)


# ---------------------------------------------------------------------------------------------
# Formatting


def ratio_text(value: float) -> str:
    """1.9e-14 as "1.9·10⁻¹⁴", 0.038 as "0.038"."""
    if not math.isfinite(value) or value <= 0:
        return "0 (underflow)" if value == 0 else "n/a"
    if 1e-3 <= value < 100:
        return f"{value:.2g}"
    mantissa, exponent = f"{value:.1e}".split("e")
    sup = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
    return f"{mantissa}·10{str(int(exponent)).translate(sup)}"


def _pct(value: float) -> str:
    return f"{value:.0%}"


def _span(values: list[float]) -> str:
    """The range of some shares to a tenth of a percent: "49.1%–49.4%" (one number if equal)."""
    low, high = f"{min(values):.1%}", f"{max(values):.1%}"
    return low if low == high else f"{low}–{high}"


# ---------------------------------------------------------------------------------------------
# The checks, on the shipped models

CELLS3 = ("rnn", "lstm", "gru")
ADDING_T = 50
SAMPLES = 3


@functools.cache
def adding_ratios(length: int = ADDING_T, samples: int = SAMPLES) -> dict[str, float]:
    """The shipped adding models' gradient at t = 0 over the one at t = T−1, geometric mean over
    seeded samples (seeds 0 .. samples−1, the Compare page's samples)."""
    from core.engine import trace
    from core.numerics import flush_denormal
    from core.tasks import get_task
    from core.training import zoo

    task = get_task("adding")
    out = {}
    for cell in CELLS3:
        model = zoo.load_model("adding", cell)
        logs = []
        for seed in range(samples):
            example = task.sample(seed, length)
            x = model.features(example.inputs).detach().float()
            with flush_denormal():  # for the trace only: the mode must not stay in the thread
                g = trace(model.rnn, x, task.objective(model, example.target)).grad_hidden[-1, 0]
            logs.append(math.log(max(float(g[0]), 1e-300) / float(g[-1])))
        out[cell] = math.exp(float(np.mean(logs)))
    return out


@_check
def vanishing_adding() -> Evidence:
    r = adding_ratios()
    factor = min(r["lstm"], r["gru"]) / r["rnn"]
    return Evidence(factor >= 100, dict(
        length=ADDING_T, samples=SAMPLES, rnn=ratio_text(r["rnn"]), lstm=ratio_text(r["lstm"]),
        gru=ratio_text(r["gru"]), factor="100" if factor < 1e4 else f"10{_sup(int(math.log10(factor)))}"),
        why=f"ratios {r}")


def _sup(n: int) -> str:
    return str(n).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))


def _score(task: str, cell: str):
    from core.training import zoo

    return zoo.model_info(task, cell).heldout


@_check
def rnn_fails_adding() -> Evidence:
    rnn, lstm, gru = (_score("adding", c) for c in CELLS3)
    ok = rnn.verdict != "better" and lstm.verdict == "better" and gru.verdict == "better"
    return Evidence(ok, dict(length=ADDING_T, rnn=f"{rnn.value:.3g}", baseline=f"{rnn.baseline:.3g}",
                             rnn_verdict=f"{rnn.verdict} as the baseline"
                             if rnn.verdict == "about the same" else rnn.verdict,
                             lstm=f"{lstm.value:.2g}", gru=f"{gru.value:.2g}",
                             gated_verdict="both far better"),
                    why=f"{rnn.verdict}, {lstm.verdict}, {gru.verdict}")


AGREEMENT_LONG_FROM = 5  # "at chance from about 5 words on"


def recorded_rows(task: str, cell: str, key: str = "accuracy_by_distance") -> list[dict]:
    """A shipped model's measurement rows that its metadata records under `key` ([] if none)."""
    from core.training import zoo

    return list(zoo.model_info(task, cell).extra.get(key) or [])


def agreement_rows(cell: str) -> list[dict]:
    return recorded_rows("agreement", cell)


def long_distance_accuracy(rows: list[dict], long_from: int = AGREEMENT_LONG_FROM) -> float:
    """Accuracy over the distances beyond `long_from`, weighted by sentences."""
    far = [r for r in rows if r["distance"] > long_from]
    n = sum(r.get("n", 1) for r in far)
    return sum(r["accuracy"] * r.get("n", 1) for r in far) / n if n else float("nan")


@_check
def agreement_distance() -> Evidence:
    rows = {c: agreement_rows(c) for c in CELLS3}
    if not all(rows.values()):
        return Evidence(False, why="no accuracy by distance in the metadata")
    short = [r["accuracy"] for r in rows["rnn"] if r["distance"] <= 3]
    rnn_short, rnn_long = float(np.mean(short)), long_distance_accuracy(rows["rnn"])
    lstm_min = min(r["accuracy"] for r in rows["lstm"])
    gru_min = min(r["accuracy"] for r in rows["gru"])
    ok = rnn_short >= 0.8 and abs(rnn_long - 0.5) <= 0.05 and min(lstm_min, gru_min) >= 0.95
    return Evidence(ok, dict(rnn_short=_pct(rnn_short), rnn_long=_pct(rnn_long),
                             long_from=AGREEMENT_LONG_FROM, lstm_min=_pct(lstm_min),
                             gru_min=_pct(gru_min),
                             max_distance=max(r["distance"] for r in rows["lstm"])),
                    why=f"rnn {rnn_short:.2f} / {rnn_long:.2f}, lstm {lstm_min}, gru {gru_min}")


SENTIMENT_LONG_FROM = 10  # the RNN loses the verdict between 5 and 10 words back


@_check
def sentiment_distance() -> Evidence:
    rows = {c: recorded_rows("sentiment", c) for c in CELLS3}
    if not all(rows.values()):
        return Evidence(False, why="no accuracy by distance in the sentiment metadata")
    rnn_short = float(np.mean([r["accuracy"] for r in rows["rnn"] if r["distance"] <= 3]))
    rnn_long = long_distance_accuracy(rows["rnn"], SENTIMENT_LONG_FROM)
    gated_min = min(r["accuracy"] for c in ("lstm", "gru") for r in rows[c])
    ok = rnn_short >= 0.9 and abs(rnn_long - 0.5) <= 0.1 and gated_min >= 0.95
    return Evidence(ok, dict(rnn_short=_pct(rnn_short), rnn_long=_pct(rnn_long),
                             long_from=SENTIMENT_LONG_FROM, gated_min=_pct(gated_min),
                             max_distance=max(r["distance"] for r in rows["lstm"])),
                    why=f"rnn {rnn_short:.2f} / {rnn_long:.2f}, gated {gated_min:.2f}")


COUNTING_PROBE_N = 60  # twice the training range: the count must carry beyond it


@_check
def counting_lstm() -> Evidence:
    import torch

    from core.engine import trace
    from core.tasks import get_task
    from core.training import zoo

    task = get_task("counting")
    trained = int(zoo.recipe("counting", "lstm").seq_len)
    reach = {c: task.counts_up_to({int(r["distance"]): bool(r["accuracy"]) for r in
                                   zoo.model_info("counting", c).extra["accuracy_by_distance"]})
             for c in CELLS3}
    model = zoo.load_model("counting", "lstm")
    example = task.sample(0, COUNTING_PROBE_N)  # a^60 b^60
    with torch.no_grad():
        x = model.features(example.inputs)
    cell = trace(model.rnn, x).cell[0, 0]  # (T, H)
    count = np.cumsum([1 if s == "a" else -1 for s in example.tokens])  # a's minus b's so far
    r = np.array([abs(np.corrcoef(cell[:, u], count)[0, 1]) for u in range(cell.shape[1])])
    unit = int(np.nanargmax(r))
    ok = bool(reach["lstm"] >= 2 * trained and max(reach["gru"], reach["rnn"]) <= 1.4 * trained
              and r[unit] >= 0.99)
    longest = zoo.distance_range(task)
    lstm = f"{reach['lstm']}" + (" (the longest measured)" if reach["lstm"] == longest else "")
    return Evidence(ok, dict(trained=trained, lstm=lstm, gru=reach["gru"],
                             rnn=reach["rnn"], unit=unit, r=f"{r[unit]:.3f}",
                             probe_n=COUNTING_PROBE_N),
                    why=f"reach {reach}, unit {unit} r {r[unit]:.3f}")


COPY_RELIABLE = 0.9  # a length an encoder-decoder "copies": nine inputs in ten right


def copy_reach(rows: list[dict]) -> int:
    """The longest input length up to which every length is copied right at least
    COPY_RELIABLE of the time (0 if not even one letter is)."""
    reach = 0
    for row in sorted(rows, key=lambda r: r["length"]):
        if row["accuracy"] < COPY_RELIABLE:
            break
        reach = int(row["length"])
    return reach


@_check
def copy_bottleneck() -> Evidence:
    from core.training import zoo

    rows = {c: recorded_rows("copy", c, "accuracy_by_length") for c in CELLS3}
    if not all(rows.values()):
        return Evidence(False, why="no accuracy by length in the copy metadata")
    reach = {c: copy_reach(rows[c]) for c in CELLS3}
    trained = int(zoo.recipe("copy", "lstm").seq_len)
    longest = max(r["length"] for r in rows["lstm"])
    at_longest = max(r["accuracy"] for c in CELLS3 for r in rows[c] if r["length"] == longest)
    ok = (reach["rnn"] <= 3 and reach["rnn"] < reach["gru"] <= reach["lstm"] < trained
          and reach["lstm"] >= 8 and at_longest <= 0.05)
    return Evidence(ok, dict(rnn=reach["rnn"], gru=reach["gru"], lstm=reach["lstm"],
                             reliable=_pct(COPY_RELIABLE), trained=trained, longest=longest,
                             at_longest=_pct(at_longest)),
                    why=f"reach {reach}, at length {longest}: {at_longest:.2f}")


def _names_part(cell: str, architecture: str, part: str) -> dict:
    from core.training import zoo

    return zoo.model_info("names", cell, architecture).heldout.extra.get(part) or {}


@_check
def names_bidirectional() -> Evidence:
    uni = [_names_part(c, "", "decided_after").get("accuracy", math.nan) for c in CELLS3]
    bi = [_names_part(c, "bidirectional", "decided_after").get("accuracy", math.nan)
          for c in CELLS3]
    rest = [_names_part(c, a, "rest").get("accuracy", math.nan) for c in CELLS3
            for a in ("", "bidirectional")]
    ok = all(abs(u - 0.5) <= 0.1 for u in uni) and min(bi) >= 0.95 and min(rest) >= 0.95
    return Evidence(ok, dict(uni=_span(uni), bi=_span(bi), rest=f"{min(rest):.1%}"),
                    why=f"one direction {uni}, bidirectional {bi}, other words {rest}")


@_check
def stacked_rnn_agreement() -> Evidence:
    from core.training import zoo

    one = long_distance_accuracy(agreement_rows("rnn"))
    stacked = long_distance_accuracy(list(
        zoo.model_info("agreement", "rnn", "stacked").extra.get("accuracy_by_distance") or []))
    ok = abs(one - 0.5) <= 0.05 and stacked >= 0.9
    return Evidence(ok, dict(stacked_long=_pct(stacked), long_from=AGREEMENT_LONG_FROM,
                             one_long=_pct(one)), why=f"one layer {one:.3f}, two {stacked:.3f}")


@_check
def gru_three_quarters() -> Evidence:
    from core.model import count_parameters
    from core.training import zoo

    counts = {c: count_parameters(zoo.load_model("adding", c).rnn) for c in ("lstm", "gru")}
    ratio = counts["gru"] / counts["lstm"]
    return Evidence(ratio == 0.75, dict(ratio="3/4"), why=f"{counts}")


@_check
def speed_is_the_kernel() -> Evidence:
    import torch

    onednn = bool(torch.backends.mkldnn.is_available())
    return Evidence(onednn, dict(onednn="yes" if onednn else "no"), why="oneDNN not available")


# ---------------------------------------------------------------------------------------------
# The Gradient lab's lessons, on fresh (untrained) models

LAB_T = 100


@functools.cache
def lab_profile(cell: str, forget_bias: float | None = None, update_bias: float | None = None,
                length: int = LAB_T) -> tuple[float, float]:
    """(factor per step, first-to-last ratio) of the lab's fresh model at default init."""
    from core.views import lab

    model = lab.build_lab_model(cell, forget_bias=forget_bias, update_bias=update_bias)
    found = lab.gradient_profile(model, length)
    return found.per_step, found.first_to_last


@_check
def lab_default_init_vanishes() -> Evidence:
    found = {c: lab_profile(c) for c in CELLS3}
    factors = [f for f, _ in found.values()]
    ok = max(factors) < 0.75 and max(factors) - min(factors) < 0.1
    return Evidence(ok, dict(length=LAB_T, **{c: f"{f:.2f}" for c, (f, _) in found.items()}),
                    why=f"{found}")


@_check
def lab_forget_bias() -> Evidence:
    (b1, r1), (b2, _), (b3, r3) = (lab_profile("lstm", forget_bias=b) for b in (1.0, 2.0, 3.0))
    ok = r1 < 1e-6 and b1 < b2 < b3 and r3 > 1e-2
    return Evidence(ok, dict(length=LAB_T, bias1=f"{b1:.2f}", bias1_ratio=ratio_text(r1),
                             bias2=f"{b2:.2f}", bias3=f"{b3:.3f}", bias3_ratio=ratio_text(r3)),
                    why=f"{b1, r1, b2, b3, r3}")


@_check
def lab_update_bias() -> Evidence:
    (b0, _), (b3, r3) = lab_profile("gru"), lab_profile("gru", update_bias=3.0)
    ok = b3 > 0.9 and r3 > 1e-3 and b0 < 0.75
    return Evidence(ok, dict(length=LAB_T, default=f"{b0:.2f}", bias3=f"{b3:.2f}",
                             bias3_ratio=ratio_text(r3)), why=f"{b0, b3, r3}")


@_check
def training_changes_lstm() -> Evidence:
    from core.training import zoo
    from core.views import lab

    untrained = lab.gradient_profile(
        zoo.build_model("adding", "lstm", forget_bias=zoo.LSTM_FORGET_BIAS), ADDING_T)
    trained = adding_ratios()["lstm"]
    ok = trained >= 100 * untrained.first_to_last
    return Evidence(ok, dict(length=ADDING_T, trained=ratio_text(trained),
                             untrained=ratio_text(untrained.first_to_last)),
                    why=f"{trained} vs {untrained.first_to_last}")


# ---------------------------------------------------------------------------------------------
# The Train page's defaults: too slow to train on a page (three runs, about 30 s on 2 cores),
# so `python -m core.claims` measures them on MEASURED_SEEDS and records the result in
# content/claims_train_defaults.json; the check holds the record to the page's current
# defaults (a changed default hides the claim until it is measured again).

TRAIN_RECORD = CONTENT_DIR / "claims_train_defaults.json"
MEASURED_SEEDS = (0, 1, 2)


def _default_config() -> dict:
    from core.views.train import TrainState

    state = TrainState()
    config = state.config().to_dict()
    # Snapshots are copies of the weights taken aside: the same runs with or without them.
    config.pop("snapshots", None)
    # A one-direction model is what every run trained before the choice existed.
    if not config.get("bidirectional"):
        config.pop("bidirectional", None)
    return {"cells": list(state.cell_keys), **config}


def measure_train_defaults(seeds=MEASURED_SEEDS) -> dict:
    """Train the Train page's default runs (all three cells at once, as the page does) on each
    seed and record each cell's held-out score and verdict, steps, seconds and status."""
    import json
    import time
    from dataclasses import replace

    from core.training.session import TrainingSession
    from core.views.train import TrainState

    runs = []
    for seed in seeds:
        state = replace(TrainState(), seed=seed)
        start = time.perf_counter()
        session = TrainingSession(state.runs()).start()
        session.wait()
        row = {"seed": seed, "wall_seconds": round(time.perf_counter() - start, 1)}
        for result in session.results().values():
            row[result.cell] = dict(value=result.score.value, baseline=result.score.baseline,
                                    verdict=result.score.verdict, steps=result.steps,
                                    seconds=round(result.seconds, 1), status=result.status)
        runs.append(row)
        print(json.dumps(row), flush=True)
    record = {"config": {**_default_config(), "seed": None}, "runs": runs}
    TRAIN_RECORD.parent.mkdir(exist_ok=True)
    TRAIN_RECORD.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record


@_check
def train_defaults_lesson() -> Evidence:
    import json

    if not TRAIN_RECORD.exists():
        return Evidence(False, why="not measured: run python -m core.claims")
    record = json.loads(TRAIN_RECORD.read_text(encoding="utf-8"))
    if record["config"] != {**_default_config(), "seed": None}:
        return Evidence(False, why="the record is of other defaults: run python -m core.claims")
    runs = record["runs"]
    ok = bool(runs) and all(
        r["rnn"]["verdict"] != "better" and r["lstm"]["verdict"] == "better"
        and r["gru"]["verdict"] == "better" and r[c]["status"] == "finished"
        for r in runs for c in ("lstm", "gru"))

    def spread(cell: str, key: str = "value") -> str:
        found = [r[cell][key] for r in runs]
        return f"{min(found):.2g}–{max(found):.2g}" if len(found) > 1 else f"{found[0]:.2g}"

    return Evidence(ok, dict(seeds=", ".join(str(r["seed"]) for r in runs), rnn=spread("rnn"),
                             lstm=spread("lstm"), gru=spread("gru"),
                             baseline=spread("rnn", "baseline")), why=f"{runs}")


if __name__ == "__main__":
    measure_train_defaults()
    print(statement("train_defaults_lesson") or evidence("train_defaults_lesson").why)
