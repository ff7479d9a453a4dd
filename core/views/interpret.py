"""The Interpretability lab's logic, without Streamlit: its URL state, the held-out batches it
measures a model on, and the sentences the page says about what core.interpret measured.

    state = InterpretState.from_query(st.query_params)   # invalid values keep their defaults
    lab = measure(state.task, choice, state.n)           # batches, BatchTrace, the model as is
    sat = saturation(lab, state.lo, state.hi)
    ranking = rank(lab, step_feature(lab, state), state.by)
    after = intervene(lab, interventions(lab, state, chosen_units(lab, state, ranking)))

Two held-out samples, as core.interpret.findings takes them: gates, memory and the unit search
are measured on one (`lab.batch`), interventions are scored on another (`lab.test`: for
agreement, as many sentences at each subject-verb distance 1..40, Compare's accuracy by distance),
so the units ablated are not chosen on the sentences that score them. Every sentence here is
made from numbers measured on the model in front of the page.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from core.cells import CELLS
from core.claims import AGREEMENT_LONG_FROM
from core.interpret import (
    HeldoutBatch, Memory, Outcome, Saturation, StepFeature, ablation_sweep, builtin_feature,
    builtin_names, feature_vs_random, gate_saturation, heldout_batch, heldout_by_distance,
    inside_quotes, memory_stats, rank_units, run, token_feature, trace_heldout,
    unit_memory_map,
)
from core.interpret.heldout import DEFAULT_SEED
from core.limits import LIMITS
from core.tasks import TASKS, get_task
from core.trace import BatchTrace, Intervention
from core.views.explore import NeedsInput
from core.views.models import ModelChoice
from core.views.state import PageState, free_text, matching, number_of, one_of, whole

NO_GATES = ("A vanilla RNN has no gates: nothing saturates, and no gate keeps its state (it "
            "rewrites h at every step). Its units can still be searched and changed below.")
SOURCES = ("shipped", "session")
SOURCE_LABELS = {"shipped": "shipped trained model", "session": "trained in this session"}
BATCH_SIZES = (50, 100, 200, 500, 1000)
#: Saturation thresholds on a grid of hundredths, so that a link spells them exactly.
THRESHOLDS = tuple(round(k / 100, 2) for k in range(1, 100))
CLAMP_VALUES = tuple(round(k / 10, 1) for k in range(-50, 51))
FEATURE_KINDS = ("builtin", "words", "pattern", "quotes")
FEATURE_LABELS = {"builtin": "built-in", "words": "word list", "pattern": "pattern (regex)",
                  "quotes": "inside quotes"}
RANK_BY = ("probe", "correlation")
QUANTITY_LABELS = {"h": "h (hidden state)", "c": "c (cell state)"}
ALL_TARGETS = ("hidden", "cell_state", *dict.fromkeys(g.name for c in CELLS.values()
                                                       for g in c.gates))
MEASURES = ("metric", "long")
#: Units the sweep ablates one at a time; a bigger layer's 64 that the unit search ranks best.
SWEEP_UNITS = 64
SWEEP_SEQUENCES = 500  # at most, for a sweep and a top-k comparison
KS = (1, 2, 4, 8, 16)
RANDOM_DRAWS = 5
SEARCH_TOP = 4  # units an intervention changes when none are typed
#: Values one state (h, c or a gate) of a lab's BatchTrace may hold: a bigger model or a longer
#: task measures fewer sequences, and the page says so. 4 Mi float32 is 16 MiB per state.
MAX_BATCH_VALUES = 4 * 2**20
TOP_ROWS = 10
UNITS_PATTERN = re.compile(r"[0-9 ,]{0,300}")
MAX_RUN_LABEL = 200
#: Steps of a memory map drawn: the map of a longer sequence shows its first steps.
MAX_MAP_STEPS = 200


@dataclass(frozen=True)
class InterpretState(PageState):
    """Every choice of the lab; kept in the URL so that a link reproduces the view."""

    task: str = one_of("agreement", TASKS)
    cell: str = one_of("lstm", CELLS)
    source: str = one_of("shipped", SOURCES)
    run: str = free_text("", MAX_RUN_LABEL)  # a model trained in this browser session
    n: int = number_of(500, BATCH_SIZES)  # held-out sequences measured
    layer: int = whole(0, 0, LIMITS.max_layers - 1)  # memory, interventions, sweep
    direction: int = whole(0, 0, 1)
    lo: float = number_of(0.1, THRESHOLDS)
    hi: float = number_of(0.9, THRESHOLDS)
    unit: int = whole(0, 0, LIMITS.max_hidden_size - 1)  # the memory map's unit
    seq: int = whole(0, 0, max(BATCH_SIZES) - 1)  # the memory map's sequence
    feature: str = one_of("builtin", FEATURE_KINDS)
    builtin: str = free_text("", 100)
    words: str = free_text("", 500)
    pattern: str = free_text("", 200)
    by: str = one_of("probe", RANK_BY)
    target: str = one_of("hidden", ALL_TARGETS)
    units: str = matching("", UNITS_PATTERN)  # "" = the unit search's top SEARCH_TOP
    value: float = number_of(0.0, CLAMP_VALUES)
    start: int = whole(0, 0, LIMITS.max_seq_len)
    stop: int = whole(LIMITS.max_seq_len, 0, LIMITS.max_seq_len)  # clamped to the last step
    quantity: str = one_of("h", tuple(QUANTITY_LABELS))  # the sweep's and the top-k duel's
    measure: str = one_of("metric", MEASURES)

    def normalised(self) -> InterpretState:
        """Only what the task and cell offer: their features, targets, quantities, measures."""
        kinds = feature_kinds(self.task)
        names = builtin_names(self.task)
        return replace(
            self, feature=self.feature if self.feature in kinds else kinds[0],
            # the task's first built-in is the default, spelled "" so that links stay short
            builtin=self.builtin if self.builtin in names[1:] else "",
            target=self.target if self.target in targets(self.cell) else "hidden",
            quantity=self.quantity if self.cell == "lstm" else "h",
            measure=self.measure if self.task == "agreement" else "metric")

    @property
    def model_key(self) -> tuple:
        return (self.task, self.cell, self.source, self.run, self.n)

    @property
    def sweep_key(self) -> tuple:
        """What a sweep depends on (the ranking picks a big layer's units); its tail, from the
        quantity on, is what the top-k comparison depends on."""
        return (self.layer, self.direction, self.quantity, self.measure, *self.feature_key)

    @property
    def feature_key(self) -> tuple:
        spelled = {"builtin": self.builtin, "words": self.words, "pattern": self.pattern}
        return (self.feature, spelled.get(self.feature, ""), self.by)


# -- what a task and a cell offer ---------------------------------------------------------------

def feature_kinds(task: str) -> list[str]:
    """Built-ins where the task has some, a word list for word tasks, a pattern always, and
    "inside quotes" where the task's vocabulary holds a quote mark (character inputs)."""
    vocab = get_task(task).vocab
    offered = ["builtin"] if builtin_names(task) else []
    offered += ["words"] if vocab is not None else []
    offered.append("pattern")
    offered += ["quotes"] if vocab is not None and '"' in vocab.words else []
    return offered


def targets(cell: str) -> list[str]:
    """What an intervention may set: h, an LSTM's c, or one of the cell's gates."""
    return ["hidden", *(["cell_state"] if cell == "lstm" else []), *CELLS[cell].gate_names]


def target_label(cell: str, target: str) -> str:
    if target in ("hidden", "cell_state"):
        return QUANTITY_LABELS["h" if target == "hidden" else "c"]
    return CELLS[cell].gate(target).label


def gate_label(cell: str, gate: str) -> str:
    """"forget gate f", "update gate z": the registry's label without its parenthesis."""
    return CELLS[cell].gate(gate).label.partition(" (")[0]


def shown(task: str, value: float) -> str:
    """A metric's value as the page writes it: a share in percent, an error in 3 digits."""
    if not math.isfinite(value):
        return "not measured"
    return f"{value:.1%}" if is_share(task) else f"{value:.3g}"


def measure_label(task: str, measure: str) -> str:
    if measure == "long":
        return f"accuracy beyond {AGREEMENT_LONG_FROM} words"
    return get_task(task).metric.name


# -- the measured model -------------------------------------------------------------------------

@dataclass
class Lab:
    """A model measured on held-out sequences: `batch` and its trace for gates, memory and the
    unit search; `test` for interventions, with the model's outcome there as it is."""

    choice: ModelChoice
    batch: HeldoutBatch
    traced: BatchTrace
    test: HeldoutBatch
    before: Outcome
    note: str = ""  # why fewer sequences than asked were measured

    @property
    def task(self) -> str:
        return self.batch.task

    @property
    def cell(self) -> str:
        return self.choice.cell

    @property
    def shape(self) -> tuple[int, int, int]:
        """(layers, directions, units)."""
        _, layers, directions, _, units = self.traced.hidden.shape
        return layers, directions, units

    @property
    def gated(self) -> bool:
        return bool(CELLS[self.cell].keep_gate)


def fitting(n: int, rnn, steps: int) -> int:
    """At most n sequences, so that one state of the batch holds at most MAX_BATCH_VALUES."""
    per_sequence = rnn.num_layers * (2 if rnn.bidirectional else 1) * steps * rnn.hidden_size
    return max(1, min(int(n), MAX_BATCH_VALUES // max(1, per_sequence)))


def measure(task: str, choice: ModelChoice, n: int) -> Lab:
    """`choice`'s model on n held-out sequences of `task` (fewer for a model too big for them,
    with a note). Agreement is measured at distances up to its longest, 40 words; its
    interventions are scored on round(n / 40) sentences at each distance."""
    task_obj = get_task(task)
    model = choice.model
    length = task_obj.seq_len.max if task_obj.name == "agreement" else None
    seed = DEFAULT_SEED + 1  # the unit search's sample, apart from the one that scores ablations
    batch = heldout_batch(task_obj, model, n=n, seed=seed, seq_len=length)
    fits = fitting(len(batch), choice.rnn, batch.steps)
    note = ""
    if fits < len(batch):  # the inputs are small; the trace of every state is what is bounded
        note = (f"This model holds {choice.rnn.hidden_size} units × {batch.steps} steps per "
                f"sequence: the lab measures {fits:,} held-out sequences, not {len(batch):,}, "
                "to keep its memory bounded.")
        batch = heldout_batch(task_obj, model, n=fits, seed=seed, seq_len=length)
    if task_obj.name == "agreement":
        test = heldout_by_distance(model, per_distance=max(1, round(fits / task_obj.seq_len.max)))
    else:
        test = heldout_batch(task_obj, model, n=fits, seed=DEFAULT_SEED)
    return Lab(choice, batch, trace_heldout(model, batch), test, run(model, test), note)


def describe_batches(lab: Lab) -> str:
    """What was measured, in a sentence."""
    test = lab.test
    scored = (f"{len(test):,} other sentences, {len(test) // len(set(test.info['distance'])):,} "
              f"at each distance 1–{int(test.info['distance'].max())}"
              if lab.task == "agreement" else
              "the same held-out set" if lab.task == "airline" else
              f"{len(test):,} other held-out sequences")
    low, high = int(lab.batch.lengths.min()), int(lab.batch.lengths.max())
    return (f"Gates, memory and the unit search: {len(lab.batch):,} held-out sequences "
            f"({low if low == high else f'{low}–{high}'} steps). Interventions are scored on "
            f"{scored}; the model as it is scores {measure_label(lab.task, 'metric')} "
            f"{shown(lab.task, lab.before.value)} there.")


# -- 1. gate saturation -------------------------------------------------------------------------

def saturation(lab: Lab, lo: float, hi: float) -> Saturation:
    """Every sigmoid gate's units: the share of steps below lo and above hi."""
    return gate_saturation(lab.traced, lo, hi)


def most_saturated(sat: Saturation, rows: int = TOP_ROWS) -> pd.DataFrame:
    """The units saturated on the largest share of steps, either way."""
    table = sat.table()
    table["saturated"] = table["left"] + table["right"]
    table = table.sort_values("saturated", ascending=False, kind="mergesort").head(rows)
    shown = pd.DataFrame({"gate": [gate_label(sat.cell_type, g) for g in table["gate"]]})
    for place in ("layer", "direction"):  # where the model has more than one
        if len({getattr(g, place) for g in sat.gates}) > 1:
            shown[place] = table[place].to_numpy()
    shown["unit"] = table["unit"].to_numpy()
    for name, column in ((f"< {sat.lo:g}", "left"), (f"> {sat.hi:g}", "right"),
                         ("saturated", "saturated")):
        shown[name] = 100 * table[column].to_numpy()  # percent of the steps
    return shown


def saturation_note(sat: Saturation) -> str:
    """Per gate: how many units are nearly open, or nearly closed, on most steps."""
    parts = []
    for gate in dict.fromkeys(g.gate for g in sat.gates):
        rows = [g for g in sat.gates if g.gate == gate]
        units = sum(len(g.left) for g in rows)
        right = sum(int((g.right > 0.5).sum()) for g in rows)
        left = sum(int((g.left > 0.5).sum()) for g in rows)
        parts.append(f"{gate_label(sat.cell_type, gate)}: {right} of {units} units above "
                     f"{sat.hi:g} on most steps, {left} below {sat.lo:g}")
    return "Measured: " + "; ".join(parts) + "."


# -- 2. memory ----------------------------------------------------------------------------------

def memory(lab: Lab) -> Memory:
    return memory_stats(lab.traced)


def unit_map(lab: Lab, seq: int, unit: int, layer: int, direction: int
             ) -> tuple[np.ndarray, list[str]]:
    """The product of one unit's keep gate from every step s to every later t on one sequence
    (its first MAX_MAP_STEPS steps), with the sequence's tokens."""
    M = unit_memory_map(lab.traced, seq, unit, layer, direction)
    return M[:MAX_MAP_STEPS, :MAX_MAP_STEPS], lab.batch.tokens[seq][:MAX_MAP_STEPS]


def held_spans(lab: Lab, unit: int, layer: int, direction: int) -> np.ndarray:
    """(B,) per sequence: the most steps over which the product of the unit's keep gate stays
    at 1/e or more, the span τ gives from the mean gate (mean^span ≥ 1/e ⇔ span ≤ τ)."""
    gate = CELLS[lab.cell].keep_gate
    keep = lab.traced.gates[gate][:, layer, direction, :, unit]  # (B, T)
    spans = np.zeros(len(keep), dtype=np.int64)
    for b, n in enumerate(np.asarray(lab.traced.lengths).tolist()):
        f = keep[b, :n].astype(np.float64)
        if direction == 1:  # a reverse direction carries a state from later steps to earlier
            f = f[::-1]
        # log M[s, t] = total[t] - total[s]; total never rises (gates <= 1), so the furthest
        # t that keeps 1/e of the state after s is a binary search (exact zeros kept finite)
        total = -np.cumsum(np.log(np.clip(f, 1e-300, 1.0)))
        furthest = np.searchsorted(total, total + 1.0, side="right") - 1
        spans[b] = int((furthest - np.arange(n)).max()) if n else 0
    return spans


def memory_note(lab: Lab, mem: Memory, unit: int, layer: int, direction: int,
                spans: np.ndarray) -> str:
    """τ of the unit from its mean gate, against how long its gates, step by step, keep a state
    above 1/e on each sequence."""
    stats = mem.get(layer, direction)
    tau = float(stats.tau[unit])
    beyond = float(np.mean(spans > tau)) if math.isfinite(tau) else 0.0
    said = "∞" if math.isinf(tau) else f"{tau:.3g}"
    return (f"Unit {unit}: mean {gate_label(lab.cell, mem.gate)} {stats.mean_keep[unit]:.3f} "
            f"over the batch, so τ = {said} steps. Step by step, on each sequence, its gates keep "
            f"a state at 1/e or more for up to {int(spans.max())} steps (median "
            f"{float(np.median(spans)):g}); on {beyond:.0%} of the {len(spans):,} sequences "
            "longer than τ.")


# -- 3. unit search -----------------------------------------------------------------------------

def step_feature(lab: Lab, state: InterpretState) -> StepFeature:
    """The feature the visitor stated; ValueError with the reason for an empty word list, an
    invalid pattern or a feature that never changes."""
    if state.feature == "builtin":
        return builtin_feature(lab.batch, state.builtin or builtin_names(lab.task)[0])
    if state.feature == "words":
        if not state.words.strip():
            raise NeedsInput("Type the words to search for, e.g. cats, dogs.")
        return token_feature(lab.batch, words=state.words)
    if state.feature == "pattern":
        if not state.pattern:
            raise NeedsInput("Type a pattern to search for, e.g. s$ for tokens ending in s.")
        return token_feature(lab.batch, pattern=state.pattern)
    return inside_quotes(lab.batch)


def rank(lab: Lab, feature: StepFeature, by: str) -> pd.DataFrame:
    """Every unit (h; c too for an LSTM) ranked by how well it follows the feature: by a
    one-unit probe's accuracy for a 0/1 feature when asked, else by |correlation|."""
    return rank_units(lab.traced, feature, by=by if feature.binary else "correlation")


def search(lab: Lab, state: InterpretState) -> tuple[StepFeature, pd.DataFrame]:
    """The stated feature and every unit ranked against it."""
    feature = step_feature(lab, state)
    return feature, rank(lab, feature, state.by)


def unit_name(lab: Lab, layer: int, direction: int, quantity: str, unit: int) -> str:
    """"h17"; "layer 1 · reverse · h17" where the model has more than one of either."""
    layers, directions, _ = lab.shape
    where = ([f"layer {layer}"] if layers > 1 else []) + \
        (["reverse" if direction else "forward"] if directions > 1 else [])
    return " · ".join([*where, f"{quantity}{unit}"])


def top_table(lab: Lab, ranking: pd.DataFrame, rows: int = TOP_ROWS) -> pd.DataFrame:
    top = ranking.head(rows)
    table = pd.DataFrame({
        "unit": [unit_name(lab, r.layer, r.direction, r.quantity, r.unit)
                 for r in top.itertuples()],
        "correlation": top["correlation"]})
    if top["probe_accuracy"].notna().any():  # in percent of the test half's steps
        table["probe accuracy"] = 100 * top["probe_accuracy"]
        table["always the majority"] = 100 * top["probe_baseline"]
    return table.reset_index(drop=True)


def top_units(ranking: pd.DataFrame, rows: int = TOP_ROWS) -> list[tuple[int, int, str, int]]:
    return [(int(r.layer), int(r.direction), str(r.quantity), int(r.unit))
            for r in ranking.head(rows).itertuples()]


def search_note(lab: Lab, ranking: pd.DataFrame, feature: StepFeature) -> str:
    best = ranking.iloc[0]
    said = (f"The best, {unit_name(lab, best.layer, best.direction, best.quantity, best.unit)}, "
            f"correlates r = {best.correlation:+.2f}")
    if not math.isnan(best.probe_accuracy):
        said += (f"; a probe on it alone classifies {best.probe_accuracy:.1%} of the test "
                 f"half's steps right, against {best.probe_baseline:.1%} for always answering "
                 "the more common value")
    strong = int((ranking["abs_correlation"] >= 0.5).sum())
    note = ranking.attrs.get("note")
    return (f"{said}. {strong} of {len(ranking)} units have |r| ≥ 0.5, over "
            f"{int(ranking['steps'].iloc[0]):,} steps where the feature is defined."
            + (f" {note}." if note else ""))


# -- 4. interventions ---------------------------------------------------------------------------

def parse_units(text: str, size: int) -> list[int]:
    """"3, 17 42" -> [3, 17, 42]; ValueError for a unit the layer does not have."""
    found = [int(u) for u in re.split(r"[\s,]+", text.strip()) if u]
    bad = [u for u in found if u >= size]
    if bad:
        raise ValueError(f"unit {bad[0]} does not exist: the layer has {size} units, 0 to "
                         f"{size - 1}")
    return list(dict.fromkeys(found))


def chosen_units(lab: Lab, state: InterpretState, ranking: pd.DataFrame | None
                 ) -> tuple[list[int], bool]:
    """(units, whether they are the unit search's top ones): the typed units, or with none
    typed the search's best SEARCH_TOP of this layer and direction (of c for the cell state,
    of h otherwise)."""
    if state.units.strip():
        return parse_units(state.units, lab.shape[2]), False
    if ranking is None:
        raise NeedsInput("Type the units to change, e.g. 3, 17 (the unit search has no "
                         "ranking yet to take its best units from).")
    quantity = "c" if state.target == "cell_state" else "h"
    rows = ranking[(ranking["layer"] == state.layer) & (ranking["direction"] == state.direction)
                   & (ranking["quantity"] == quantity)]
    return [int(u) for u in rows["unit"].head(SEARCH_TOP)], True


def step_range(state: InterpretState, steps: int) -> range | None:
    """The steps an intervention acts on (None: every step)."""
    stop = min(state.stop, steps - 1)
    if state.start > stop:
        raise ValueError(f"the intervention's first step ({state.start}) comes after its last "
                         f"({stop})")
    return None if state.start == 0 and stop == steps - 1 else range(state.start, stop + 1)


def interventions(lab: Lab, state: InterpretState, units: list[int]) -> tuple[Intervention, ...]:
    if not units:
        raise ValueError("type at least one unit to change, e.g. 3, 17")
    return (Intervention(state.layer, state.direction, tuple(units), state.target,
                         step_range(state, lab.test.steps), float(state.value)),)


def plan(lab: Lab, state: InterpretState, ranking: pd.DataFrame | None
         ) -> tuple[tuple[Intervention, ...], str]:
    """The interventions the choices ask for, and what they do in a sentence."""
    units, top = chosen_units(lab, state, ranking)
    changes = interventions(lab, state, units)
    return changes, describe_intervention(lab, state, units, top)


def intervene(lab: Lab, changes: tuple[Intervention, ...]) -> Outcome:
    """The model on the test batch with the changes."""
    return run(lab.choice.model, lab.test, changes)


def describe_intervention(lab: Lab, state: InterpretState, units: list[int], top: bool) -> str:
    what = target_label(lab.cell, state.target)
    verb = "zeroed" if state.value == 0 else f"clamped to {state.value:g}"
    steps = step_range(state, lab.test.steps)
    when = "at every step" if steps is None else f"at steps {steps.start}–{steps.stop - 1}"
    which = ", ".join(map(str, units)) + (" (the unit search's best of this layer; type others "
                                          "to change)" if top else "")
    return f"{what} of units {which} {verb} {when}."


def outcome_numbers(lab: Lab, after: Outcome) -> list[tuple[str, str, str, bool]]:
    """(label, value after, change from before, whether lower is better) of the task's metric
    and, for agreement, of its long distances."""
    pairs = [(measure_label(lab.task, "metric"), lab.before.value, after.value)]
    if lab.before.by_distance is not None:
        pairs.append((measure_label(lab.task, "long"), lab.before.long_accuracy,
                       after.long_accuracy))
    share = is_share(lab.task)
    return [(label, shown(lab.task, now),
             (f"{(now - before) * 100:+.1f} points" if share else f"{now - before:+.3g}")
             + f" (before: {shown(lab.task, before)})", not share)
            for label, before, now in pairs]


def changed_answers(lab: Lab, after: Outcome, rows: int = 5) -> tuple[str, pd.DataFrame | None]:
    """How many answers the changes turned, and the first few that turned (classification);
    how far the output moved (regression); how many tags changed (tagging)."""
    task = get_task(lab.task)
    before, now = lab.before.predictions, after.predictions
    if task.kind == "regression":
        moved = (now - before).abs().reshape(len(before), -1).mean(dim=1).numpy()
        said = (f"The model's output moved by {float(moved.mean()):.3g} on average (largest "
                f"{float(moved.max()):.3g}) over the {len(moved):,} sequences.")
        return said, None
    old, new = before.argmax(-1).numpy(), now.argmax(-1).numpy()
    if task.kind == "tagging":
        real = lab.test.valid
        turned = int(((old != new) & real).sum())
        return f"{turned:,} of {int(real.sum()):,} word tags turned.", None
    flipped = np.flatnonzero(old != new)
    text = f"{len(flipped):,} of {len(old):,} answers turned."
    if not len(flipped):
        return text, None
    targets_ = lab.test.targets.numpy()
    shown = flipped[:rows]
    return text, pd.DataFrame({
        "input": [" ".join(lab.test.tokens[i]) for i in shown],
        "target": [task.classes[int(targets_[i])] for i in shown],
        "before": [task.classes[int(old[i])] for i in shown],
        "after": [task.classes[int(new[i])] for i in shown]})


def sweep_units(lab: Lab, state: InterpretState, ranking: pd.DataFrame | None) -> list[int] | None:
    """None (every unit of the layer) up to SWEEP_UNITS units, else its best-ranked ones."""
    if lab.shape[2] <= SWEEP_UNITS:
        return None
    if ranking is None:
        return list(range(SWEEP_UNITS))
    rows = ranking[(ranking["layer"] == state.layer) & (ranking["direction"] == state.direction)
                   & (ranking["quantity"] == state.quantity)]
    return [int(u) for u in rows["unit"].head(SWEEP_UNITS)]


def scoring_batch(lab: Lab) -> tuple[HeldoutBatch, Outcome | None]:
    """The sequences a sweep or a top-k comparison is scored on, and the model's outcome there
    when it is known: the interventions' own, or at most SWEEP_SEQUENCES of the same kind (a
    sweep runs the model once per unit)."""
    if len(lab.test) <= SWEEP_SEQUENCES:
        return lab.test, lab.before
    model = lab.choice.model
    if lab.task == "agreement":
        distances = len(set(lab.test.info["distance"]))
        return heldout_by_distance(model, per_distance=max(1, SWEEP_SEQUENCES // distances)), None
    return heldout_batch(lab.task, model, n=SWEEP_SEQUENCES, seed=DEFAULT_SEED), None


def sweep(lab: Lab, state: InterpretState, ranking: pd.DataFrame | None) -> pd.DataFrame:
    """One unit of the layer's h (or c) at a time set to zero at every step, worst harm first."""
    batch, before = scoring_batch(lab)
    table = ablation_sweep(lab.choice.model, batch, state.layer, state.direction,
                           state.quantity, sweep_units(lab, state, ranking), state.measure,
                           before=before)
    table.attrs["sequences"] = len(batch)
    return table


def sweep_note(lab: Lab, table: pd.DataFrame, measure: str) -> str:
    worst = table.iloc[0]
    before, after = float(worst.before), table["after"]
    costly = int((table["harm"] > 0.01 * max(abs(before), 1e-12)).sum())
    said = (f"{len(table)} units ablated one at a time, on {table.attrs['sequences']:,} "
            f"sequences: {measure_label(lab.task, measure)} is {shown(lab.task, before)} with "
            f"none ablated, and from {shown(lab.task, float(after.min()))} to "
            f"{shown(lab.task, float(after.max()))} with one. ")
    if worst.harm > 0:
        name = unit_name(lab, worst.layer, worst.direction, worst.quantity, worst.unit)
        said += f"The most harmful: {name} ({shown(lab.task, float(worst.after))}). "
    else:
        said += "No unit alone makes it worse. "
    return said + f"{costly} of {len(table)} units cost more than 1% of the value before."


def is_share(task: str) -> bool:
    """Whether the task's metric is a share (accuracy, F1), shown in percent."""
    return get_task(task).metric.higher_is_better


def duel_ks(lab: Lab) -> list[int]:
    """The k of KS with at least as many other units of the quantity to draw k random ones
    from."""
    layers, directions, units = lab.shape
    return [k for k in KS if 2 * k <= layers * directions * units]


def duel(lab: Lab, state: InterpretState, ranking: pd.DataFrame) -> pd.DataFrame:
    """The k units that follow the feature best, ablated together, against k random units."""
    batch, before = scoring_batch(lab)
    table = feature_vs_random(lab.choice.model, batch, ranking, duel_ks(lab),
                              state.quantity, RANDOM_DRAWS, measure=state.measure, before=before)
    table.attrs["sequences"] = len(batch)
    return table


def duel_note(lab: Lab, table: pd.DataFrame, measure: str) -> str:
    k = int(table["k"].max())
    rows = table[table["k"] == k]
    top = float(rows[rows["chosen"] == "feature"]["after"].iloc[0])
    random = rows[rows["chosen"] == "random"]["after"]
    return (f"With {k} units ablated, on {table.attrs['sequences']:,} sequences, "
            f"{measure_label(lab.task, measure)} is "
            f"{shown(lab.task, top)} for the {k} that follow the feature best, and "
            f"{shown(lab.task, float(random.mean()))} on average for {k} random units "
            f"({len(random)} draws, {shown(lab.task, float(random.min()))} to "
            f"{shown(lab.task, float(random.max()))}); with none ablated, "
            f"{shown(lab.task, float(table['before'].iloc[0]))}.")
