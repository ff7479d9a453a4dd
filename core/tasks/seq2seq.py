"""Sequence-to-sequence tasks on symbols: copy "c a b e" -> "c a b e", reverse it -> "e b a c".

An encoder reads the whole input; its final state is the only thing handed to the decoder, which
then writes the answer one symbol per step (trained with teacher forcing: fed the start symbol
and then the right answer so far; in use, fed its own answers). Everything the decoder needs
about the input passes through one vector of fixed size, the encoder's last state: the longer
the input, the more it must hold and the farther each symbol must be carried, and at some length
each cell runs out. Accuracy against input length shows where, and for which cell first.

Copying is the task for that lesson: symbol i is read T - 1 - i steps before the hand-off and
written i steps after it, so every symbol travels the whole length T. With one recipe for the
three cells (hidden 64, inputs of 1 to 12 symbols, Adam 5e-3, 4,000 steps of 64, clipping at 1,
the LSTM's forget bias 1), sequence accuracy against input length falls for the vanilla RNN
first, at 2 to 3 symbols (it writes the first symbol or two right, the rest at chance), for the
GRU at about 10, for the LSTM only at the training length, 12; beyond what they were trained on
all three fall.

Reversing is the easier variant (Sutskever et al. 2014 reversed their inputs for this reason):
output position p is the symbol read p steps before the hand-off, so the first outputs lie close
to the hand-off, and what fails first as inputs grow is the end of the output, the symbols read
longest ago. With the same recipe the vanilla RNN reverses inputs of up to about 9 symbols.

Both train on inputs of every length from 1 to seq_len, symbols drawn uniformly from a..h. A
batch: `inputs` (B, T) the encoder's symbol ids, right-padded with 0; `targets` (B, T) the
answer's ids, IGNORE at padding; `lengths` (B,); `info["decoder_inputs"]` (B, T) what a
teacher-forced decoder is fed: the start symbol, then the targets shifted right by one.
"""

from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn.functional as F

from core.limits import check_text
from core.tasks.base import (
    IGNORE, STREAM_HELDOUT, STREAM_SAMPLE, Batch, Example, Metric, Score, SeqLen, Task, Vocab,
    pad_ids, rng_for,
)

START = "<s>"  # the decoder's first input: "write the first output symbol now"
SYMBOLS = tuple("abcdefgh")
#: What separates typed symbols (besides nothing at all: "abc" is three symbols).
_SEPARATORS = re.compile(r"[\s,;]+")


class SymbolSequenceTask(Task):
    """What copying and reversing share: the data, typed input, scores. `answer` differs."""

    kind = "seq2seq"
    input_size = 16  # embedding size, shared by the encoder's and the decoder's inputs
    seq_len = SeqLen(default=12, min=1, max=40, unit="symbols")
    metric = Metric("sequence accuracy", higher_is_better=True)
    baseline_name = "the input's most common symbol at every step"
    heldout_size = 1000
    #: How the gradients were taken: the decoder fed its own answers (as in use: Explore) or
    #: the right answer so far (as in training; Compare, so that three models read one input).
    objective_notes = {
        "own": "gradients of the decoder's loss against the right answer, the decoder fed its "
               "own previous answers as in use; the encoder's steps get theirs only back "
               "across the hand-off",
        "right": "gradients of the decoder's loss against the right answer, each decoder fed "
                 "the right answer so far (teacher forcing, as in training) so that the three "
                 "read the same input; the encoder's steps get theirs only back across the "
                 "hand-off",
    }

    def __init__(self, symbols: tuple[str, ...] = SYMBOLS) -> None:
        self.symbols = tuple(symbols)
        self.vocab = Vocab([*self.symbols, START])
        self.start_id = self.vocab.index[START]
        self.symbol_ids = np.array(self.vocab.ids(self.symbols))
        # The decoder's head scores every vocabulary entry; a trained model puts its weight on
        # the symbols (padding, <unk> and <s> are never a target).
        self.classes = tuple(self.vocab.words)

    # -- data --------------------------------------------------------------------------------
    def answer(self, ids: list[int]) -> list[int]:
        """The target for input ids."""
        raise NotImplementedError

    def make_batch(self, rows: list[list[int]]) -> Batch:
        inputs, lengths = pad_ids(rows)
        answers = [self.answer(r) for r in rows]
        targets, _ = pad_ids(answers, fill=IGNORE)
        decoder_inputs, _ = pad_ids([[self.start_id, *a[:-1]] for a in answers])
        return Batch(inputs, targets, lengths, {"decoder_inputs": decoder_inputs})

    def draw(self, rng: np.random.Generator, length: int) -> list[int]:
        """`length` symbol ids drawn uniformly (repeats allowed)."""
        return self.symbol_ids[rng.integers(len(self.symbols), size=length)].tolist()

    def batch(self, rng, batch_size, seq_len=None, min_len: int | None = None) -> Batch:
        """Inputs with lengths uniform in [min_len (default 1), seq_len]."""
        longest = self.seq_len.resolve(seq_len)
        shortest = self.seq_len.min if min_len is None else self.seq_len.resolve(min_len)
        if shortest > longest:
            raise ValueError(f"min_len {shortest} is above seq_len {longest}")
        lengths = rng.integers(shortest, longest + 1, size=batch_size)
        return self.make_batch([self.draw(rng, int(n)) for n in lengths])

    def heldout(self, seed, n=None, seq_len=None) -> Batch:
        """Held-out inputs with lengths spread evenly from 1 to seq_len."""
        return self.batch(rng_for(seed, STREAM_HELDOUT), n or self.heldout_size, seq_len)

    def at_length(self, seed: int, n: int, length: int) -> Batch:
        """`n` held-out inputs of exactly `length` symbols (any length the task allows, also
        beyond what a model was trained on)."""
        length = self.seq_len.resolve(length)
        rng = np.random.default_rng([int(seed), STREAM_HELDOUT, length])  # one stream a length
        return self.make_batch([self.draw(rng, length) for _ in range(n)])

    def _example(self, ids: list[int], unknown: list[str] | None = None) -> Example:
        batch = self.make_batch([ids])
        return Example(batch.inputs[0], batch.targets[0], [self.vocab.words[i] for i in ids],
                       list(unknown or []),
                       info={"decoder_inputs": batch.info["decoder_inputs"][0],
                             "target_tokens": [self.vocab.words[i] for i in self.answer(ids)]})

    def sample(self, seed: int, seq_len: int | None = None) -> Example:
        """An input of exactly seq_len symbols and its answer."""
        return self._example(self.draw(rng_for(seed, STREAM_SAMPLE), self.seq_len.resolve(seq_len)))

    def encode(self, text: str) -> Example:
        """Typed symbols, one character each, with or without spaces or commas between them
        ("c a b e", "cabe", "c,a,b,e"); upper case reads as lower case. A character that is not
        one of the task's symbols is fed as <unk> and listed in `unknown`; its place in the
        answer cannot be right."""
        check_text(text)
        symbols = list(_SEPARATORS.sub("", text.lower()))
        if not symbols:
            raise ValueError(f"type a few letters from {self.symbols[0]} to "
                             f"{self.symbols[-1]}, e.g. \"c a b e\"")
        if len(symbols) > self.seq_len.max:
            raise ValueError(f"at most {self.seq_len.max} symbols, got {len(symbols)}")
        ids, unknown = self.vocab.encode(symbols)
        return self._example(ids.tolist(), unknown)

    def decoder_reads(self, fed: list[int]) -> list[str]:
        """What the decoder reads at each step, as a page shows it: the start symbol (written
        "⟨s⟩": a chart would take "<s>" for a strike-through tag), then its own answers."""
        return ["⟨s⟩" if i == self.start_id else self.vocab.words[i] for i in fed]

    def marks_note(self, example: Example) -> str:
        n = len(example)
        return (f"Steps 0 to {n - 1}: the encoder reads the {n} letters. At the dashed line it "
                f"hands its last state (h, and c for an LSTM) to the decoder, which writes the "
                f"answer in steps {n} to {2 * n - 1}, each step fed the letter it wrote before "
                f"(⟨s⟩ first). Every letter must cross that one state.")

    # -- scoring -----------------------------------------------------------------------------
    @staticmethod
    def _hits(predicted: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(right (B, T) at real steps, real (B, T))."""
        real = targets != IGNORE
        return (predicted == targets) & real, real

    def score(self, predictions: torch.Tensor, batch: Batch) -> float:
        """Sequence accuracy: the share of inputs whose every output symbol is right."""
        right, real = self._hits(predictions.argmax(-1), batch.targets)
        return float((right | ~real).all(-1).float().mean())

    def baseline_answer(self, batch: Batch) -> torch.Tensor:
        """What a decoder that knows which symbols the input holds but not their order writes:
        the input's most common symbol (the first in the alphabet on a tie) at every step. It
        gets every one-symbol input right, and of a longer input as many symbols as its most
        common one fills (about a quarter of a 12-symbol input's)."""
        real = batch.targets != IGNORE
        counts = (F.one_hot(batch.inputs, len(self.vocab)) * real.unsqueeze(-1)).sum(1)
        return counts.argmax(-1, keepdim=True).expand_as(batch.inputs)

    def baseline(self, batch: Batch) -> float:
        right, real = self._hits(self.baseline_answer(batch), batch.targets)
        return float((right | ~real).all(-1).float().mean())

    def baseline_symbol_accuracy(self, batch: Batch) -> float:
        right, real = self._hits(self.baseline_answer(batch), batch.targets)
        return float(right.sum() / real.sum())

    @torch.no_grad()
    def predict(self, model, batch: Batch) -> torch.Tensor:
        """Logits (B, T, V) of greedy decoding: the decoder fed its own answers, as in use."""
        was_training = model.training
        model.eval()
        try:
            _, logits = model.greedy(batch.inputs, int(batch.inputs.shape[1]), batch.lengths)
            return logits
        finally:
            model.train(was_training)

    @torch.no_grad()
    def teacher_forced_loss(self, model, batch: Batch) -> float:
        """Cross-entropy with the decoder fed the right answers (what training minimises)."""
        was_training = model.training
        model.eval()
        try:
            logits = model(batch.inputs, batch.info["decoder_inputs"], batch.lengths)
            return float(self.loss(logits, batch.targets))
        finally:
            model.train(was_training)

    def score_on(self, model, batch: Batch) -> Score:
        """Greedy-decoded sequence accuracy next to the baseline's; the loss is the
        teacher-forced one (comparable with the training loss)."""
        predictions = self.predict(model, batch)
        return Score(
            metric=self.metric.name, value=self.score(predictions, batch),
            baseline=self.baseline(batch), baseline_name=self.baseline_name,
            higher_is_better=True, loss=self.teacher_forced_loss(model, batch), n=len(batch),
            extra=self.extra_scores(model, predictions, batch),
        )

    def extra_scores(self, model, predictions, batch) -> dict:
        right, real = self._hits(predictions.argmax(-1), batch.targets)
        whole = (right | ~real).all(-1).float()
        by_length, symbols_by_length = {}, {}
        for length in sorted(set(batch.lengths.tolist())):
            rows = batch.lengths == length
            by_length[str(length)] = float(whole[rows].mean())
            symbols_by_length[str(length)] = float(right[rows].sum() / real[rows].sum())
        return {
            "symbol_accuracy": float(right.sum() / real.sum()),
            "baseline_symbol_accuracy": self.baseline_symbol_accuracy(batch),
            "accuracy_by_length": by_length,
            "symbol_accuracy_by_length": symbols_by_length,
            "max_length": int(batch.lengths.max()),
        }

    def accuracy_by_length(self, model, seed: int = 12345, per_length: int = 200,
                           max_length: int | None = None, min_length: int = 1) -> list[dict]:
        """Held-out accuracy at each exact input length min_length..max_length (the default:
        the task's default length; lengths beyond training show where a model stops
        generalising): [{"length", "accuracy" (sequence), "symbol_accuracy",
        "position_accuracy" (list: the accuracy of each output position), "n"}, ...]."""
        longest = self.seq_len.resolve(max_length)
        rows = []
        for length in range(self.seq_len.resolve(min_length), longest + 1):
            batch = self.at_length(seed, per_length, length)
            right, _ = self._hits(self.predict(model, batch).argmax(-1), batch.targets)
            rows.append({"length": length, "accuracy": float(right.all(-1).float().mean()),
                         "symbol_accuracy": float(right.float().mean()),
                         "position_accuracy": right.float().mean(0).tolist(),
                         "n": per_length})
        return rows

    # -- one sequence ------------------------------------------------------------------------
    def objective(self, model, target: torch.Tensor | None = None):
        """A scalar function of the decoder's output sequence `(T, H)` for one input: the
        cross-entropy against `target` (T,), or against the model's own answers when None."""

        def objective_fn(decoder_output: torch.Tensor) -> torch.Tensor:
            logits = model.readout(decoder_output)
            wanted = logits.detach().argmax(-1) if target is None else torch.as_tensor(target)
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), wanted.reshape(-1).long(),
                                   ignore_index=IGNORE)

        return objective_fn

    def describe(self, prediction: torch.Tensor, example: Example | None = None) -> str:
        """The decoded symbols as one string, e.g. "ebac" (a page shows it in a third of its
        width: letters spaced apart were cut there from 12 letters on)."""
        return self.spelled(prediction.argmax(-1).reshape(-1).tolist())

    def target_text(self, example: Example) -> str:
        if example.target is None:
            return "—"
        return self.spelled(torch.as_tensor(example.target).reshape(-1).tolist())

    def spelled(self, ids: list[int]) -> str:
        """Symbol ids as one string; an id that is no symbol (padding, <unk>, the start
        symbol: never a right answer) as "?"."""
        return "".join(self.vocab.words[i] if self.vocab.words[i] in self.symbols else "?"
                       for i in ids if i >= 0)

    def judge(self, prediction: torch.Tensor, example: Example) -> tuple[str, bool | None]:
        if example.target is None:
            return "", None
        right, real = self._hits(prediction.argmax(-1).reshape(-1),
                                 torch.as_tensor(example.target).reshape(-1))
        hits, total = int(right.sum()), int(real.sum())
        return f"{hits} of {total} symbols right", hits == total


class CopyTask(SymbolSequenceTask):
    name = "copy"
    title = "Copy a sequence"
    description = (
        "Read a sequence of letters and write it out again (\"c a b e\" -> \"c a b e\"). An "
        "encoder reads the input; only its last state is handed to a decoder, which writes the "
        "answer one letter at a time. Every letter must be carried through that one vector "
        "across the whole length: the longer the input, the more it must hold."
    )

    def answer(self, ids: list[int]) -> list[int]:
        """The same ids: output position p is input position p, read T - 1 - p steps before
        the hand-off and written p steps after it."""
        return list(ids)


class ReverseTask(SymbolSequenceTask):
    name = "reverse"
    title = "Reverse a sequence"
    description = (
        "Read a sequence of letters and write it backwards (\"c a b e\" -> \"e b a c\"). An "
        "encoder reads the input; only its last state is handed to a decoder, which writes the "
        "answer one letter at a time. The last letter read is the first written: the letters "
        "read longest ago are the ones that get lost."
    )

    def answer(self, ids: list[int]) -> list[int]:
        """The same ids backwards: output position p is the symbol read p steps before the
        hand-off."""
        return ids[::-1]
