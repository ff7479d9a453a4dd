"""What every task shares: examples, batches, lengths, metrics, scores, vocabularies, and the
Task base class with the loss, metric and baseline of each task kind.

Seeds: a task never touches global random state. `sample(seed)`, `heldout(seed)` and the
training batches each draw from their own stream (`np.random.default_rng([seed, STREAM])`),
so a held-out set is never the stream training used, even for the same seed.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from core.limits import FLOAT32_MAX

STREAM_TRAIN, STREAM_HELDOUT, STREAM_SAMPLE, STREAM_PROBE = 0, 1, 2, 3
PAD, UNK = "<pad>", "<unk>"
IGNORE = -100  # target at padded steps of a tagging batch (cross_entropy's ignore_index)


def pick(rng: np.random.Generator, items):
    """One item drawn uniformly (the grammars' building block; keeps their seeded streams)."""
    return items[rng.integers(len(items))]


def rng_for(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), stream])


@dataclass
class Example:
    """One sequence, as the model takes it and as a person reads it.

    inputs: float features (T, input_size), or token ids (T,) for tasks with a vocabulary.
    target: the answer when known (scalar, class index, or per-step tags (T,)); None for text a
        user typed whose answer the task cannot know.
    tokens: one human-readable label per timestep.
    unknown: words of the user's text that are not in the vocabulary (fed as <unk>).
    info: task-specific facts (e.g. subject-verb distance, the last value of a series).
    """

    inputs: torch.Tensor
    target: torch.Tensor | None
    tokens: list[str]
    unknown: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


@dataclass
class Batch:
    """Right-padded sequences: inputs (B, T, I) float or (B, T) ids, targets (B,) or (B, T) with
    IGNORE at padding, lengths (B,), and per-task tensors in info (e.g. "distance")."""

    inputs: torch.Tensor
    targets: torch.Tensor
    lengths: torch.Tensor
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


@dataclass(frozen=True)
class SeqLen:
    """How long a task's sequences are, and what "length" means for it."""

    default: int
    min: int
    max: int
    fixed: bool = False
    unit: str = "timesteps"

    def resolve(self, seq_len: int | None) -> int:
        if seq_len is None:
            return self.default
        if self.fixed and seq_len != self.default:
            raise ValueError(f"this task's length is fixed at {self.default} {self.unit}")
        if not isinstance(seq_len, (int, np.integer)) or not self.min <= seq_len <= self.max:
            raise ValueError(
                f"length must be a whole number of {self.unit} from {self.min} to {self.max}, "
                f"got {seq_len!r}"
            )
        return int(seq_len)


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    unit: str = ""


#: The one rule for "better than the baseline", used by every page: a score must beat the
#: task's trivial baseline by a clear margin, or it reads "about the same". Without a margin an
#: untrained model's MSE of 0.1696 "beats" the adding problem's 0.1700, and a tanh RNN at 0.53
#: accuracy "beats" a 0.51 majority guess on agreement while it is at chance beyond 5 words.
#: Accuracies and F1 lie in [0, 1]: a margin of 0.05 there; errors and losses: 10% of the
#: baseline's.
ABSOLUTE_MARGIN = 0.05
RELATIVE_MARGIN = 0.10


@dataclass
class Score:
    """A model's held-out result next to the trivial baseline's on the same data."""

    metric: str
    value: float
    baseline: float
    baseline_name: str
    higher_is_better: bool
    loss: float
    n: int
    extra: dict = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        """"better" than the baseline by the margin, "worse" by the margin, else "about the
        same"; a non-finite score (a diverged model) is "worse"."""
        value, baseline = float(self.value), float(self.baseline)
        if not math.isfinite(value):
            return "worse"
        if self.higher_is_better:
            gain = value - baseline
            margin = ABSOLUTE_MARGIN
        else:
            gain = baseline - value
            margin = RELATIVE_MARGIN * abs(baseline)
        return "better" if gain > margin else "worse" if gain < -margin else "about the same"

    @property
    def beats_baseline(self) -> bool:
        return self.verdict == "better"

    @property
    def margin_text(self) -> str:
        """The rule in words, for the screen: what "better than the baseline" means here."""
        if self.higher_is_better:
            return (f"better means at least {ABSOLUTE_MARGIN:g} above the baseline's "
                    f"{self.metric}")
        return f"better means at least {RELATIVE_MARGIN:.0%} below the baseline's {self.metric}"

    def to_dict(self) -> dict:
        return {
            "metric": self.metric,
            "value": self.value,
            "baseline": self.baseline,
            "baseline_name": self.baseline_name,
            "higher_is_better": self.higher_is_better,
            "loss": self.loss,
            "n": self.n,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Score":
        """A score as `to_dict` wrote it (a zoo model's metadata); JSON's null is NaN."""
        number = (lambda v: float("nan") if v is None else float(v))
        return cls(metric=data["metric"], value=number(data["value"]),
                   baseline=number(data["baseline"]), baseline_name=data["baseline_name"],
                   higher_is_better=bool(data["higher_is_better"]),
                   loss=number(data.get("loss")), n=int(data.get("n", 0)),
                   extra=dict(data.get("extra") or {}))


# ECMA-48 escape sequences: CSI (ESC [ params final) and the two-character ones (ESC @..._)
_ANSI_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")
# Variation selectors (U+FE00..FE0F, U+E0100..E01EF) choose how the character before them is
# drawn (the emoji's colour form, U+FE0F): marks, not characters of their own.
_VARIATION_SELECTOR = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")


def tokenize(text: str) -> list[str]:
    """Lower-case words, and every other visible character on its own, in order
    ("Don't!" -> ["don't", "!"]; "Café 😀" -> ["café", "😀"]).

    What would become invisible timesteps, split a word or reverse the text shown goes first:
    ANSI escape sequences, control (Cc: NUL, ESC, BEL) and format (Cf: U+202E, zero-width)
    characters, and variation selectors ("😀\ufe0f" is one token, "😀"). The text is NFC
    normalised, so a decomposed accent ("cafe" + U+0301) is the same word as "café"; a combining
    mark that NFC cannot fold in stays with its letter (Devanagari vowel signs, say), never a
    token of its own. "İ" is lower-cased to "i" (Python gives "i" + U+0307, a dot that would
    split "istanbul"). Whitespace separates words."""
    text = _ANSI_ESCAPE.sub("", text)  # a pasted terminal colour code (ESC[31m) as a whole
    text = unicodedata.normalize("NFC", text).replace("\u0130", "I")  # İ, also as I + U+0307
    text = unicodedata.normalize("NFC", "".join(
        ch for ch in _VARIATION_SELECTOR.sub("", text)
        if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf")).lower())
    tokens: list[str] = []
    word = False  # whether the last token is a word that the next letter may continue
    for i, ch in enumerate(text):
        if ch.isspace():
            word = False
        elif ch.isalnum():
            if word:
                tokens[-1] += ch
            else:
                tokens.append(ch)
                word = True
        elif unicodedata.category(ch).startswith("M"):
            if tokens and not text[i - 1].isspace():  # a mark belongs to what it follows
                tokens[-1] += ch
        elif ch == "'" and word and i + 1 < len(text) and text[i + 1].isalnum():
            tokens[-1] += ch  # "don't" is one word
        elif ch == "_":
            word = False  # neither a word's letter nor a token (as before)
        else:
            tokens.append(ch)
            word = False
    return tokens


class Vocab:
    """Word <-> id. Id 0 is padding, id 1 stands for every word the task never saw."""

    def __init__(self, words: Sequence[str]):
        unique = sorted(set(words) - {PAD, UNK})
        self.words: list[str] = [PAD, UNK, *unique]
        self.index: dict[str, int] = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def ids(self, words: Sequence[str]) -> list[int]:
        return [self.index.get(w, 1) for w in words]

    def encode(self, words: Sequence[str]) -> tuple[torch.Tensor, list[str]]:
        """Token ids (T,) and the words that were not in the vocabulary (in order, no repeats)."""
        unknown = list(dict.fromkeys(w for w in words if w not in self.index))
        return torch.tensor(self.ids(words), dtype=torch.long), unknown


_THOUSANDS = re.compile(r"(?<![\d,.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,])")


def parse_numbers(text: str, what: str = "numbers") -> list[str]:
    """Split typed numbers on commas, semicolons and whitespace; the pieces stay strings."""
    pieces = [p for p in re.split(r"[\s,;]+", text.strip()) if p]
    if not pieces:
        raise ValueError(f"no {what} given: type some, separated by spaces or commas")
    # "1,200 1,300" is two thousands, not four numbers: refuse rather than guess. A comma list
    # without spaces ("112,118,132") is the one way this is read as separate numbers.
    grouped = _THOUSANDS.search(text) if re.search(r"[\s;]", text.strip()) else None
    if grouped:
        number = grouped.group(0)
        raise ValueError(f"{number!r} looks like a number with a thousands comma: write "
                         f"{number.replace(',', '')}, not {number}, and separate {what} with "
                         "spaces")
    return pieces


def check_float32(pieces: Sequence[str], values: Sequence[float]) -> None:
    """ValueError naming the first value that float32, which the models compute in, cannot
    hold (it would be infinite there)."""
    for piece, value in zip(pieces, values):
        if abs(value) > FLOAT32_MAX:
            raise ValueError(f"{piece!r} is too large: the models compute in float32, whose "
                             f"numbers end at about {FLOAT32_MAX:.1e}")


def to_float(piece: str) -> float:
    try:
        value = float(piece)
    except ValueError:
        raise ValueError(f"could not read {piece!r} as a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{piece!r} is not a finite number")
    return value


def pad_ids(rows: Sequence[Sequence[int]], fill: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
    out = torch.full((len(rows), int(lengths.max())), fill, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out, lengths


class Task:
    """A sequence task: data, encoding, loss, metric and baseline. Subclasses fill in data."""

    name: str
    title: str
    description: str
    kind: str  # "regression" | "classification" | "tagging"
    input_size: int
    seq_len: SeqLen
    metric: Metric
    baseline_name: str
    classes: tuple[str, ...] | None = None
    vocab: Vocab | None = None
    heldout_size: int = 1000  # default size of an evaluation set
    tag_separator: str = " "  # between a tagging target's tags written out ("" for characters)

    # -- data (subclasses) -------------------------------------------------------------------
    def sample(self, seed: int, seq_len: int | None = None) -> Example:
        raise NotImplementedError

    def encode(self, text: str) -> Example:
        raise NotImplementedError

    def batch(self, rng: np.random.Generator, batch_size: int, seq_len: int | None = None) -> Batch:
        """A training batch drawn from rng."""
        raise NotImplementedError

    def heldout(self, seed: int, n: int | None = None, seq_len: int | None = None) -> Batch:
        """A held-out evaluation set: fresh data from a stream training never uses."""
        return self.batch(rng_for(seed, STREAM_HELDOUT), n or self.heldout_size, seq_len)

    def baseline(self, batch: Batch) -> float:
        """The trivial baseline's metric on `batch`."""
        raise NotImplementedError

    # -- shared by kind ----------------------------------------------------------------------
    @property
    def output_size(self) -> int:
        return 1 if self.kind == "regression" else len(self.classes or ())

    @property
    def vocab_size(self) -> int | None:
        return len(self.vocab) if self.vocab is not None else None

    def loss(self, predictions: torch.Tensor, targets: torch.Tensor, reduction: str = "mean"):
        """MSE for regression, cross-entropy otherwise (padded tags ignored)."""
        if self.kind == "regression":
            return F.mse_loss(predictions, targets.to(predictions.dtype), reduction=reduction)
        return F.cross_entropy(
            predictions.reshape(-1, predictions.shape[-1]), targets.reshape(-1).long(),
            ignore_index=IGNORE, reduction=reduction,
        )

    def score(self, predictions: torch.Tensor, batch: Batch) -> float:
        """The task's metric for predictions on batch."""
        if self.kind == "regression":
            return float(F.mse_loss(predictions, batch.targets.to(predictions.dtype)))
        if self.kind == "classification":
            return float((predictions.argmax(-1) == batch.targets).float().mean())
        return token_f1(predictions.argmax(-1), batch.targets)

    @torch.no_grad()
    def predict(self, model, batch: Batch) -> torch.Tensor:
        was_training = model.training
        model.eval()
        try:
            # a tagging model reads every step whatever the lengths; a bidirectional one needs
            # them to start its reverse direction at each sentence's own end
            return model(batch.inputs, batch.lengths)
        finally:
            model.train(was_training)

    def evaluate(self, model, seed: int = 12345, n: int | None = None,
                 seq_len: int | None = None) -> Score:
        """The model's metric on a fresh held-out set next to the baseline's on the same set."""
        return self.score_on(model, self.heldout(seed, n, seq_len))

    def score_on(self, model, batch: Batch) -> Score:
        """The model's metric on `batch` next to the baseline's on the same batch."""
        predictions = self.predict(model, batch)
        return Score(
            metric=self.metric.name,
            value=self.score(predictions, batch),
            baseline=self.baseline(batch),
            baseline_name=self.baseline_name,
            higher_is_better=self.metric.higher_is_better,
            loss=float(self.loss(predictions, batch.targets)),
            n=len(batch),
            extra=self.extra_scores(model, predictions, batch),
        )

    def extra_scores(self, model, predictions: torch.Tensor, batch: Batch) -> dict:
        return {}

    def objective(self, model, target: torch.Tensor | None = None
                  ) -> Callable[[torch.Tensor], torch.Tensor]:
        """A scalar function of the recurrent output of ONE sequence `(T, D*H)`, for tracing
        d objective / d h_t: the task's loss against `target`. With no known target it is the
        loss against the model's own answer (regression: the predicted value itself)."""

        def objective_fn(rnn_output: torch.Tensor) -> torch.Tensor:
            prediction = model.readout(rnn_output)
            if target is None:
                if self.kind == "regression":
                    return prediction.sum()
                own = prediction.detach().argmax(-1)
                return self.loss(prediction, own)
            return self.loss(prediction, torch.as_tensor(target))

        return objective_fn

    def fed_note(self, example: Example) -> str:
        """What the model was fed, in words, where that is not what the user gave it ("" when
        the input is read as it is: words as ids, numbers as typed)."""
        return ""

    def target_text(self, example: Example) -> str:
        """The example's answer in the task's own words ("—" when typed text has none).
        Regression targets go through describe() with the example, so the airline task speaks
        in passengers ("next month ≈ 432") rather than in the scaled change the model
        predicts."""
        if example.target is None:
            return "—"
        if self.kind == "regression":
            return self.describe(torch.as_tensor(example.target), example)
        if self.kind == "classification":
            return self.classes[int(example.target)]
        tags = torch.as_tensor(example.target).reshape(-1).tolist()
        return self.tag_separator.join(self.classes[int(t)] for t in tags)

    def marks_note(self, example: Example) -> str:
        """The example's words a page should point at, and why, in words ("" for none)."""
        return ""

    def describe(self, prediction: torch.Tensor, example: Example | None = None) -> str:
        """The model's answer for one sequence in words."""
        if self.kind == "regression":
            return f"{float(prediction):.3f}"
        probs = torch.softmax(prediction.float(), -1)
        if self.kind == "classification":
            k = int(probs.argmax())
            return f"{self.classes[k]} (p = {float(probs[k]):.2f})"
        tags = probs.argmax(-1).tolist()
        return " ".join(self.classes[t] for t in tags)

    def judge(self, prediction: torch.Tensor, example: Example) -> tuple[str, bool | None]:
        """How the answer compares with the example's known target: (words, right?).
        ("", None) when the target is unknown; a regression is neither right nor wrong, it is
        off by some amount (None)."""
        if example.target is None:
            return "", None
        target = torch.as_tensor(example.target)
        if self.kind == "regression":
            return f"off by {abs(float(prediction) - float(target)):.3g}", None
        predicted = prediction.argmax(-1).reshape(-1)
        if self.kind == "classification":
            right = int(predicted[0]) == int(target)
            return ("right" if right else "wrong"), right
        real = target.reshape(-1) != IGNORE
        hits = int((predicted[real] == target.reshape(-1)[real]).sum())
        total = int(real.sum())
        return f"{hits} of {total} tags right", hits == total

    def __repr__(self) -> str:
        return f"<Task {self.name}: {self.kind}, input_size={self.input_size}>"


def token_f1(predicted: torch.Tensor, targets: torch.Tensor, positive: int = 1) -> float:
    """F1 of the positive tag over real (non-padding) tokens; 1.0 when neither side has any."""
    real = targets != IGNORE
    p = (predicted == positive) & real
    t = (targets == positive) & real
    tp = int((p & t).sum())
    fp = int((p & ~t).sum())
    fn = int((~p & t).sum())
    if tp + fp + fn == 0:
        return 1.0
    return 2 * tp / (2 * tp + fp + fn)


class DistanceTask(Task):
    """A many-to-one task whose lesson is a distance: how far back the deciding word lies
    (agreement: subject to verb; sentiment: the deciding word to the review's end).

    Training mixes short distances (1..short) with long ones (long..seq_len) and nothing in
    between, so a model that only learned to hold the answer for a few steps is caught at
    every middle distance; held-out sets spread distances evenly from 1 to seq_len. Subclasses
    write one sequence at a distance (`at_distance`) and its batch (`make_batch`, with
    info["distance"] and info[`between`], what lies between that the rows count)."""

    short: int  # short training distances: 1..short
    long: int  # long ones: long..seq_len
    short_share: float  # the share of short training distances
    between: str  # the info key counted per distance row ("attractors", "asides")

    def at_distance(self, rng: np.random.Generator, distance: int) -> dict:
        raise NotImplementedError

    def make_batch(self, items: list[dict]) -> Batch:
        raise NotImplementedError

    def batch(self, rng, batch_size, seq_len=None) -> Batch:
        """Training sequences: a share `short_share` with distance uniform in [1, short], the
        rest uniform in [long, seq_len]; with seq_len below `long`, uniform in [1, seq_len]."""
        longest = self.seq_len.resolve(seq_len)
        if longest < self.long:
            distances = rng.integers(1, longest + 1, size=batch_size)
        else:
            short = rng.random(batch_size) < self.short_share
            distances = np.where(short, rng.integers(1, self.short + 1, size=batch_size),
                                 rng.integers(self.long, longest + 1, size=batch_size))
        return self.make_batch([self.at_distance(rng, int(d)) for d in distances])

    def heldout(self, seed, n=None, seq_len=None) -> Batch:
        """Held-out sequences with distances spread evenly from 1 to seq_len."""
        longest = self.seq_len.resolve(seq_len)
        rng = rng_for(seed, STREAM_HELDOUT)
        distances = rng.integers(1, longest + 1, size=n or self.heldout_size)
        return self.make_batch([self.at_distance(rng, int(d)) for d in distances])

    def baseline(self, batch) -> float:
        """Always the majority class of the batch."""
        share = float(batch.targets.float().mean())
        return max(share, 1 - share)

    def accuracy_by_distance(self, model, seed: int = 12345, per_distance: int = 200,
                             max_distance: int | None = None) -> list[dict]:
        """Held-out accuracy at each exact distance 1..max_distance:
        [{"distance": d, "accuracy": a, "n": n, <between>: its mean count}, ...]."""
        longest = self.seq_len.resolve(max_distance)
        rng = rng_for(seed, STREAM_HELDOUT)
        rows = []
        for d in range(1, longest + 1):
            batch = self.make_batch([self.at_distance(rng, d) for _ in range(per_distance)])
            correct = self.predict(model, batch).argmax(-1) == batch.targets
            rows.append({"distance": d, "accuracy": float(correct.float().mean()),
                         "n": per_distance,
                         self.between: float(batch.info[self.between].float().mean())})
        return rows

    def extra_scores(self, model, predictions, batch) -> dict:
        """Accuracy per 5-step bucket of distance ("1-5", "6-10", ...) and the longest."""
        correct = (predictions.argmax(-1) == batch.targets).float()
        distance = batch.info["distance"]
        buckets = {}
        for lo in range(1, int(distance.max()) + 1, 5):
            mask = (distance >= lo) & (distance < lo + 5)
            if mask.any():
                buckets[f"{lo}-{lo + 4}"] = float(correct[mask].mean())
        return {"accuracy_by_distance": buckets, "max_distance": int(distance.max())}

