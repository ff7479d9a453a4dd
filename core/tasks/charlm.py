"""A character-level language model on real text: Python source from CPython's standard library.

The model reads code one character at a time and, at every step, gives a probability to each
character that may come next. Nothing about the text is made up: it is the source of well-known
stdlib modules (data/charlm/, PSF licence, see data/charlm/README.md), so what a trained model
has to learn is what Karpathy, Johnson & Fei-Fei (2015) looked for in such models: whether it is
inside a string or a comment, how deep in brackets, where in the line, how far indented.

Two parts, whole modules each: the training text (`train.txt`) and a held-out text
(`heldout.txt`) that training never reads. A sequence is a window of `seq_len` characters: the
inputs are its characters, the targets the same window one character on (the next character at
every step), so every step has a known answer. Training windows start anywhere in the training
text; held-out windows anywhere in the held-out text (their start is in `Batch.info["start"]`,
their part in `Batch.info["part"]`, 0 training, 1 held-out); `sample` shows held-out windows that
begin at the start of a line, to be read.

The metric is bits per character (the cross-entropy in bits, lower is better). The baseline is a
bigram model: the next character's probability given the current one alone, counted on the
training text (add-one smoothing). It is the best a model without memory can do; a recurrent
model beats it only by carrying something from earlier characters. A unigram model (character
frequencies alone) is reported beside it in the score's extra.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.io.sequences import STAND_INS, TOKEN_NAMES
from core.limits import check_text
from core.tasks.base import (
    IGNORE, STREAM_HELDOUT, STREAM_SAMPLE, UNK, Batch, Example, Metric, SeqLen, Task, Vocab,
    rng_for,
)

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "charlm"
PARTS = ("train", "heldout")  # Batch.info["part"]: 0 training text, 1 held-out text
#: The characters the model reads and predicts: newline and the 95 printable ASCII characters,
#: every one of which the training text holds. A tab or any other character is unknown (the
#: shipped text indents with spaces and has no tabs, so a model has never learned one).
CHARACTERS = "\n" + "".join(chr(code) for code in range(32, 127))
#: How many candidates `describe` lists for the character after the last one read.
DESCRIBE_TOP = 2
LN2 = math.log(2.0)
#: Character <-> id: <pad> 0, <unk> 1, then CHARACTERS in code-point order (newline first).
VOCAB = Vocab(list(CHARACTERS))


def char_label(ch: str) -> str:
    """How a step shows a character: whitespace as the app's stand-ins (␣ ↵ ⇥ ␍), others as
    they are (the vocabulary's <pad> and <unk> too)."""
    return STAND_INS.get(ch, ch)


def char_name(ch: str) -> str:
    """A character named for a message: "space", "newline", "tab", or the character quoted."""
    return TOKEN_NAMES.get(ch, repr(ch) if ch.isprintable() else f"U+{ord(ch):04X}")


def decode(ids) -> str:
    """The characters of token ids (<unk> as U+FFFD, padding left out)."""
    words = VOCAB.words
    return "".join("\ufffd" if i == 1 else words[i] for i in map(int, ids) if i != 0)


def text_ids(text: str) -> np.ndarray:
    """(N,) int64 token ids of an ASCII text (<unk> for a character outside the vocabulary),
    as `VOCAB.ids(list(text))` gives them, without a Python loop over half a million
    characters."""
    table = np.full(128, VOCAB.index[UNK], dtype=np.int64)
    for ch in CHARACTERS:
        table[ord(ch)] = VOCAB.index[ch]
    codes = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return table[codes]


@functools.lru_cache(maxsize=None)
def load_text(part: str) -> str:
    """The shipped text of `part` ("train" or "heldout"), as one string."""
    if part not in PARTS:
        raise ValueError(f"the text's parts are {', '.join(PARTS)}; got {part!r}")
    return (DATA_DIR / f"{part}.txt").read_text(encoding="ascii")


class CharLMTask(Task):
    name = "charlm"
    title = "Character-level language model (Python code)"
    description = (
        "Read Python source code one character at a time and predict the next character. The "
        "text is real code from Python's standard library (textwrap, csv, fractions, ...); a "
        "good model has to know whether it is inside a string or a comment, how deep in "
        "brackets, and how far the line is indented. Scored in bits per character on modules "
        "it never saw."
    )
    kind = "tagging"
    input_size = 32  # embedding size
    seq_len = SeqLen(default=100, min=1, max=1000, unit="characters")
    metric = Metric("bits per character", higher_is_better=False, unit="bits")
    baseline_name = "bigram: the next character from the current one alone"
    heldout_size = 1000
    tag_separator = ""  # the next characters, written out, are text

    def __init__(self) -> None:
        self.vocab = VOCAB
        # One class per vocabulary entry, so a character's input id is its class index too.
        self.classes = tuple(char_label(w) for w in self.vocab.words)
        self.texts = {part: load_text(part) for part in PARTS}
        self.ids = {part: text_ids(text) for part, text in self.texts.items()}
        for part, ids in self.ids.items():
            if (ids == self.vocab.index[UNK]).any():
                raise RuntimeError(f"data/charlm/{part}.txt holds characters outside the "
                                   "vocabulary: remake it as data/charlm/README.md says")
        # Where held-out lines begin, for samples that read from the start of a line.
        newlines = np.flatnonzero(self.ids["heldout"] == self.vocab.index["\n"]) + 1
        self.line_starts = np.concatenate([[0], newlines[newlines < len(self.ids["heldout"])]])
        self.unigram, self.bigram = self._count(self.ids["train"])

    def _count(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log2-probabilities of the unigram (V,) and bigram (V, V) models of `ids`, add-one
        smoothed over every class but padding (never a target), so <unk> gets a little too."""
        V = len(self.vocab)
        unigram = np.bincount(ids, minlength=V).astype(np.float64) + 1.0
        bigram = np.ones((V, V))
        np.add.at(bigram, (ids[:-1], ids[1:]), 1.0)
        unigram[0] = 0.0
        bigram[:, 0] = 0.0
        with np.errstate(divide="ignore"):
            return (np.log2(unigram / unigram.sum()),
                    np.log2(bigram / bigram.sum(axis=1, keepdims=True)))

    # -- data --------------------------------------------------------------------------------
    def window(self, part: str, start: int, length: int) -> tuple[np.ndarray, np.ndarray]:
        """The window of `length` characters of `part` from `start`: (inputs, targets) ids,
        the targets one character on."""
        ids = self.ids[part]
        return ids[start: start + length], ids[start + 1: start + length + 1]

    def windows(self, part: str, starts: np.ndarray, length: int) -> Batch:
        """A batch of windows of `part` starting at `starts` (all `length` characters)."""
        starts = np.asarray(starts, dtype=np.int64)
        ids = self.ids[part]
        if len(starts) and (starts.min() < 0 or starts.max() + length + 1 > len(ids)):
            raise ValueError(f"a window of {length} characters must end inside the {part} text "
                             f"({len(ids):,} characters)")
        rows = starts[:, None] + np.arange(length + 1)[None, :]
        chars = torch.from_numpy(ids[rows])
        return Batch(chars[:, :-1].contiguous(), chars[:, 1:].contiguous(),
                     torch.full((len(starts),), length, dtype=torch.long),
                     {"start": torch.from_numpy(starts.copy()),
                      "part": torch.full((len(starts),), PARTS.index(part), dtype=torch.long)})

    def _batch(self, part: str, rng: np.random.Generator, batch_size: int,
               seq_len: int | None) -> Batch:
        length = self.seq_len.resolve(seq_len)
        starts = rng.integers(0, len(self.ids[part]) - length, size=int(batch_size))
        return self.windows(part, starts, length)

    def batch(self, rng, batch_size, seq_len=None) -> Batch:
        """Windows of the training text, starting anywhere (mid-line, mid-string)."""
        return self._batch("train", rng, batch_size, seq_len)

    def heldout(self, seed, n=None, seq_len=None) -> Batch:
        """Windows of the held-out text (modules training never reads), from its own stream."""
        return self._batch("heldout", rng_for(seed, STREAM_HELDOUT), n or self.heldout_size,
                           seq_len)

    def sample(self, seed: int, seq_len: int | None = None) -> Example:
        """A held-out window of seq_len characters that begins at the start of a line."""
        length = self.seq_len.resolve(seq_len)
        rng = rng_for(seed, STREAM_SAMPLE)
        fits = self.line_starts[self.line_starts + length + 1 <= len(self.ids["heldout"])]
        start = int(fits[rng.integers(len(fits))])
        inputs, targets = self.window("heldout", start, length)
        return Example(torch.from_numpy(inputs.copy()), torch.from_numpy(targets.copy()),
                       self.labels(inputs), info={"start": start, "part": "heldout"})

    def labels(self, ids) -> list[str]:
        """The readable label of each character id (␣ for a space, ↵ for a newline)."""
        return [self.classes[int(i)] for i in ids]

    def encode(self, text: str) -> Example:
        """Typed text: the model reads every character but the last and, at each, predicts the
        next; the last character is only the answer to the step before it. Windows line ends
        (\\r\\n) are read as \\n. A character outside the vocabulary (a tab, é) is fed as
        <unk> and listed in `unknown`."""
        check_text(text)
        text = text.replace("\r\n", "\n")
        if not text.strip():
            raise ValueError("type some code, not only spaces or line breaks, e.g. "
                             "\"def f(x):\"")
        if len(text) < 2:
            raise ValueError("type at least two characters of code, e.g. \"def f(x):\": the model "
                             "reads each character and predicts the one after it")
        ids, _ = self.vocab.encode(list(text))
        labels = [char_label(ch) for ch in text]  # an unknown character shows as typed
        unknown = list(dict.fromkeys(label for ch, label in zip(text, labels)
                                     if ch not in self.vocab))
        return Example(ids[:-1].clone(), ids[1:].clone(), labels[:-1], unknown,
                       info={"text": text})

    def fed_note(self, example: Example) -> str:
        if "text" not in example.info:
            return ""
        last = example.info["text"][-1]
        return (f"The model reads the first {len(example)} characters; the last one typed, "
                f"{char_name(last)}, is the answer to the last step (it is not read).")

    # -- scoring -----------------------------------------------------------------------------
    def score(self, predictions: torch.Tensor, batch: Batch) -> float:
        """Bits per character: the mean cross-entropy of the next character, in bits."""
        return float(self.loss(predictions.float(), batch.targets)) / LN2

    def _pairs(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        """The (current character, next character) ids of every real step."""
        inputs = batch.inputs.numpy()
        targets = batch.targets.numpy()
        real = targets != IGNORE
        return inputs[real], targets[real]

    def baseline(self, batch) -> float:
        """The bigram model's bits per character on the batch's steps."""
        current, following = self._pairs(batch)
        return float(-self.bigram[current, following].mean())

    def unigram_bpc(self, batch: Batch) -> float:
        """Bits per character of character frequencies alone (no context at all)."""
        _, following = self._pairs(batch)
        return float(-self.unigram[following].mean())

    def extra_scores(self, model, predictions, batch) -> dict:
        real = batch.targets != IGNORE
        hits = (predictions.argmax(-1) == batch.targets) & real
        return {"accuracy": float(hits.sum()) / max(1, int(real.sum())),
                "unigram_bpc": self.unigram_bpc(batch)}

    # -- one sequence in words ---------------------------------------------------------------
    def describe(self, prediction: torch.Tensor, example: Example | None = None) -> str:
        """The likeliest character after the last one read, and the runner-up, with their
        probabilities: '“n” (p = 0.97), then “␣” (0.01)' (short: a page shows it as the
        model's answer, beside the text it read)."""
        last = prediction.reshape(-1, prediction.shape[-1])[-1]
        probs = torch.softmax(last.float(), -1)
        top = torch.topk(probs, DESCRIBE_TOP)
        (first, p_first), *rest = [(self.classes[int(k)], float(p))
                                   for p, k in zip(top.values, top.indices)]
        return f"“{first}” (p = {p_first:.2f})" + "".join(
            f", then “{c}” ({p:.2f})" for c, p in rest)

    def target_text(self, example: Example) -> str:
        """The character that came next after the last one read (“—” when typed text ends
        where nothing is known to come next)."""
        if example.target is None:
            return "—"
        return f"“{self.classes[int(torch.as_tensor(example.target).reshape(-1)[-1])]}”"

    def judge(self, prediction: torch.Tensor, example: Example) -> tuple[str, bool | None]:
        """How many next characters the top guess got right, and the bits per character on
        this sequence. Neither right nor wrong as a whole (None): a language model is scored
        by how sure it was of each character, not by a verdict."""
        if example.target is None:
            return "", None
        logits = prediction.reshape(-1, prediction.shape[-1]).float()
        target = torch.as_tensor(example.target).reshape(-1)
        real = target != IGNORE
        hits = int((logits.argmax(-1)[real] == target[real]).sum())
        total = int(real.sum())
        bits = float(F.cross_entropy(logits[real], target[real])) / LN2
        return f"{hits} of {total} next characters right, {bits:.2f} bits per character", None
