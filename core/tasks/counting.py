"""Counting: the language aⁿbⁿ (n a's, then exactly as many b's), after Weiss, Goldberg & Yahav
2018. At every step the model says which symbols may legally come next (Gers & Schmidhuber 2001's
next-symbol formulation, one prediction per step):

- after a's only: "a or b" (another a, or the first b);
- after aⁿ then m < n b's: "b" (more b's must come);
- after aⁿbⁿ: "end" (the string may end here, and must).

Every answer in the a-phase and every "b" in the b-phase follows from the last symbol alone; the
one answer that needs memory is where the b's run out, and it needs exactly the count: "end" after
the n-th b, not one step earlier or later. A reader of the current symbol alone (the baseline)
gets every step right except that one, so it gets no string right. A network gets a string right
only if it counts the a's and counts them down again.

The language has one string per n, so the held-out set cannot hold strings training never saw
within the training range: the score there (string accuracy for n from 1 to seq_len) is how well
the model learned those strings. The lesson is beyond it: `accuracy_by_n` scores every n up to
three times the training range, and `counts_up_to` is the largest n up to which every string is
right. Weiss et al.: an LSTM can count in its cell state (c grows by about the same amount with
each a and shrinks with each b, and nothing bounds it), a GRU cannot under finite precision (its
state is an interpolation between values in (-1, 1), which saturates).

What trained models show (n up to 30 in training, Adam, batch 50, one thread, forget-gate bias 1
for the LSTM): LSTM and GRU learn n up to 30, and only the LSTM counts past it. Hidden size 16,
learning rate 0.01, 3,000 steps: the LSTM gets every n up to 117 right (seed 1), the GRU up to
31, the tanh RNN only n = 1 (string accuracy 0.04 within the range). Hidden size 64, learning rate 0.002, about 2,700 to 4,500 steps: LSTM up to 55, 51, 55
(seeds 0, 1, 2), GRU 32 to 33 (or not even 30), tanh RNN 31. The LSTM's counter is one unit of
c, linear in (#a - #b) (r = 1.000), about +0.95 per a and -0.97 per b with its forget gate at
1.000, crossing 0 at the last b (hidden size 16, seed 1: unit 8 of c holds 27.4, 56.4, 85.4
after 30, 60, 90 a's). The GRU's best unit saturates instead (unit 4: 0.74, 0.90, 0.94 after 30,
60, 90 a's), and follows the count less as n grows (r = 0.97, 0.78, 0.62 over a^n b^n).
"""

from __future__ import annotations

import torch

from core.limits import check_text
from core.tasks.base import (
    IGNORE, STREAM_HELDOUT, Batch, Example, Metric, SeqLen, Task, Vocab, pad_ids,
    rng_for,
)

SYMBOLS = ("a", "b")
NEXT = ("a or b", "b", "end")  # the classes: which symbols may come next
A_OR_B, ONLY_B, END = range(3)
BEYOND = 3  # accuracy_by_n scores n up to BEYOND times the training range


def next_symbols(n_a: int, n_b: int) -> int:
    """The class after n_a a's then n_b b's (a prefix of some aᵐbᵐ: n_a >= 1, n_b <= n_a)."""
    if n_b == 0:
        return A_OR_B
    return END if n_b == n_a else ONLY_B


def string(n: int) -> tuple[list[str], list[int]]:
    """aⁿbⁿ as symbols and its tags (the legal next symbols after each step)."""
    symbols = ["a"] * n + ["b"] * n
    tags = [A_OR_B] * n + [next_symbols(n, m) for m in range(1, n + 1)]
    return symbols, tags


class CountingTask(Task):
    name = "counting"
    title = "Counting (aⁿbⁿ)"
    description = (
        "Read n a's, then b's, and say at every step which symbols may come next: after the "
        "a's, an a or a b; then b's until there are as many b's as a's; then the end. Only the "
        "last answer needs memory, the exact count, and the models are scored on n far beyond "
        "the n they trained on: does the network count, or did it memorise what it saw?"
    )
    kind = "tagging"
    input_size = 4  # embedding size: two symbols
    seq_len = SeqLen(default=30, min=1, max=300, unit="a's (n, then as many b's)")
    metric = Metric("string accuracy", higher_is_better=True)
    baseline_name = "guess from the current symbol alone"
    classes = NEXT
    vocab = Vocab(list(SYMBOLS))
    tag_separator = " "
    distance_max = BEYOND * 30  # how far beyond the zoo's training range (n <= 30) it is scored

    # -- batches -----------------------------------------------------------------------------
    def make_batch(self, ns: list[int]) -> Batch:
        pairs = [string(int(n)) for n in ns]
        ids, lengths = pad_ids([self.vocab.ids(s) for s, _ in pairs])
        targets, _ = pad_ids([t for _, t in pairs], fill=IGNORE)
        return Batch(ids, targets, lengths, {"n": torch.tensor([int(n) for n in ns])})

    def batch(self, rng, batch_size, seq_len=None) -> Batch:
        """Strings aⁿbⁿ with n uniform from 1 to seq_len."""
        longest = self.seq_len.resolve(seq_len)
        return self.make_batch(rng.integers(1, longest + 1, size=batch_size).tolist())

    def heldout(self, seed, n=None, seq_len=None) -> Batch:
        longest = self.seq_len.resolve(seq_len)
        rng = rng_for(seed, STREAM_HELDOUT)
        return self.make_batch(rng.integers(1, longest + 1, size=n or self.heldout_size).tolist())

    # -- scores ------------------------------------------------------------------------------
    @staticmethod
    def strings_right(guess: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(B,) bool: every real step of the string right."""
        real = targets != IGNORE
        return ((guess == targets) | ~real).all(-1)

    def score(self, predictions, batch) -> float:
        return float(self.strings_right(predictions.argmax(-1), batch.targets).float().mean())

    @staticmethod
    def memoryless_guess(inputs: torch.Tensor, vocab: Vocab) -> torch.Tensor:
        """The best guess from the current symbol alone: "a or b" after an a, "b" after a b
        (the end is one step of the b's; "b" is right at all the others)."""
        return torch.where(inputs == vocab.index["b"], ONLY_B, A_OR_B)

    def baseline(self, batch) -> float:
        guess = self.memoryless_guess(batch.inputs, self.vocab)
        return float(self.strings_right(guess, batch.targets).float().mean())

    def accuracy_by_n(self, model, max_n: int) -> dict[int, bool]:
        """{n: whether the model gets aⁿbⁿ right at every step} for n from 1 to max_n."""
        ns = list(range(1, max_n + 1))
        batch = self.make_batch(ns)
        right = self.strings_right(self.predict(model, batch).argmax(-1), batch.targets)
        return dict(zip(ns, right.tolist()))

    def accuracy_by_distance(self, model, seed: int = 0, per_distance: int = 1,
                             max_distance: int | None = None) -> list[dict]:
        """accuracy_by_n as the rows agreement and sentiment give for their distances
        ({"distance": n, "accuracy": 1.0 or 0.0, "n": 1}), for the same chart and metadata.
        There is one string per n, so `seed` and `per_distance` change nothing."""
        by_n = self.accuracy_by_n(model, max_distance or self.distance_max)
        return [{"distance": n, "accuracy": float(right), "n": 1} for n, right in by_n.items()]

    @staticmethod
    def counts_up_to(by_n: dict[int, bool]) -> int:
        """The largest n such that every string up to it is right (0 if a¹b¹ is wrong)."""
        top = 0
        for n in sorted(by_n):
            if not by_n[n]:
                break
            top = n
        return top

    def extra_scores(self, model, predictions, batch) -> dict:
        """The step accuracy on the batch and, for every n up to BEYOND times the batch's
        largest, whether that string is right ("accuracy_by_n", keys as strings for JSON),
        the largest n up to which all are ("counts_up_to") and the share right beyond the
        batch's range ("beyond_accuracy")."""
        real = batch.targets != IGNORE
        steps = float((predictions.argmax(-1)[real] == batch.targets[real]).float().mean())
        trained = int(batch.info["n"].max())
        by_n = self.accuracy_by_n(model, BEYOND * trained)
        beyond = [by_n[n] for n in by_n if n > trained]
        return {
            "step_accuracy": steps,
            "training_range": trained,
            "accuracy_by_n": {str(n): float(r) for n, r in by_n.items()},
            "counts_up_to": self.counts_up_to(by_n),
            "beyond_accuracy": sum(beyond) / len(beyond),
        }

    # -- single strings ----------------------------------------------------------------------
    def sample(self, seed: int, seq_len: int | None = None) -> Example:
        """aⁿbⁿ with n = seq_len (the seed has nothing to choose)."""
        del seed  # one string per n
        n = self.seq_len.resolve(seq_len)
        symbols, tags = string(n)
        return Example(torch.tensor(self.vocab.ids(symbols)), torch.tensor(tags), symbols,
                       info={"n": n})

    def encode(self, text: str) -> Example:
        """Typed a's and b's ("aaabbb"; spaces are ignored, capitals read as small letters). Where the text is a prefix of some
        aᵐbᵐ the answer at each step is known; from the first symbol that leaves the language
        on (a b before any a, an a after a b, a b too many) there is no legal next symbol, the
        target there is left out (IGNORE) and info["leaves_at"] is that step."""
        check_text(text)
        symbols = [ch.lower() if ch in "AB" else ch for ch in text if not ch.isspace()]
        others = list(dict.fromkeys(ch for ch in symbols if ch not in SYMBOLS))
        if others:
            shown = ", ".join(repr(ch) for ch in others[:5])
            raise ValueError(f"only the letters a and b can be read here (got {shown}): type "
                             "a's then b's, e.g. \"aaabbb\"")
        if not symbols:
            raise ValueError('type a\'s then b\'s, e.g. "aaabbb"')
        tags: list[int] = []
        n_a = n_b = 0
        leaves_at = None
        for t, ch in enumerate(symbols):
            if ch == "a" and n_b == 0:
                n_a += 1
            elif ch == "b" and n_b < n_a:
                n_b += 1
            else:
                leaves_at = t
                break
            tags.append(next_symbols(n_a, n_b))
        info = {"n": n_a}
        if leaves_at is not None:
            info["leaves_at"] = leaves_at
            tags += [IGNORE] * (len(symbols) - len(tags))
        target = torch.tensor(tags) if leaves_at != 0 else None
        return Example(torch.tensor(self.vocab.ids(symbols)), target, symbols, info=info)

    def describe(self, prediction, example=None) -> str:
        """Where the model says the string may end (the one answer that needs the count), short
        enough for a page's answer box: "ends after a³b³"; the class names hold
        spaces, so the tags are not written out one by one."""
        return self._ends(prediction.argmax(-1).reshape(-1).tolist(), example)

    def target_text(self, example: Example) -> str:
        """Where the string may really end, in the words `describe` uses."""
        if example.target is None:
            return "—"
        return self._ends(torch.as_tensor(example.target).reshape(-1).tolist(), example)

    @staticmethod
    def _ends(tags: list[int], example: Example | None) -> str:
        ends = [t for t, tag in enumerate(tags) if tag == END]
        if not ends:
            return "no end yet"
        where = f"after step {ends[0]}"
        if example is not None and ends[0] < len(example.tokens):
            read = example.tokens[: ends[0] + 1]
            power = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")  # aⁿbⁿ's own notation, short
            where = f"after a{str(read.count('a')).translate(power)}" \
                    f"b{str(read.count('b')).translate(power)}"
        return f"ends {where}" + (f" (+{len(ends) - 1} more)" if len(ends) > 1 else "")

    def marks_note(self, example: Example) -> str:
        t = example.info.get("leaves_at")
        if t is None:
            return ""
        return (f"The string leaves aⁿbⁿ at step {t} (“{example.tokens[t]}”): from there on no "
                "symbol may legally come next, so those steps have no right answer.")
