"""The adding problem (Hochreiter & Schmidhuber 1997; standard form of Le et al. 2015).

Each step carries two numbers: a value drawn uniformly from [0, 1) and a marker, 1 at exactly
two steps (one in each half) and 0 elsewhere. The answer is the sum of the two marked values.
Always answering 1 (the mean of the sum) scores MSE 2/12 = 0.167; beating that means the model
carried the first marked value across up to T steps.
"""

from __future__ import annotations

import numpy as np
import torch

from core.limits import check_text
from core.tasks.base import (
    STREAM_SAMPLE, Batch, Example, Metric, SeqLen, Task, parse_numbers, rng_for, to_float,
)


class AddingTask(Task):
    name = "adding"
    title = "Adding problem"
    description = (
        "Each step shows a random number in [0, 1) and a marker. The model must output the sum "
        "of the two marked numbers, one in each half of the sequence: it has to remember the "
        "first one for up to T steps. Always guessing 1 scores MSE 1/6 ≈ 0.167 on average (a "
        "score's baseline is measured on the same held-out set, so it is close to that)."
    )
    kind = "regression"
    input_size = 2
    seq_len = SeqLen(default=50, min=2, max=1000, unit="timesteps")
    metric = Metric("MSE", higher_is_better=False)
    baseline_name = "always predict 1"

    def generate(self, rng: np.random.Generator, n: int, seq_len: int) -> Batch:
        T = seq_len
        values = rng.random((n, T), dtype=np.float32)
        first = rng.integers(0, T // 2, size=n)
        second = rng.integers(T // 2, T, size=n)
        markers = np.zeros((n, T), dtype=np.float32)
        rows = np.arange(n)
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        inputs = torch.from_numpy(np.stack([values, markers], axis=-1))
        targets = torch.from_numpy(values[rows, first] + values[rows, second])
        return Batch(inputs, targets, torch.full((n,), T, dtype=torch.long),
                     {"first": torch.from_numpy(first), "second": torch.from_numpy(second)})

    def batch(self, rng, batch_size, seq_len=None) -> Batch:
        return self.generate(rng, batch_size, self.seq_len.resolve(seq_len))

    def baseline(self, batch: Batch) -> float:
        return float(((batch.targets - 1.0) ** 2).mean())

    def sample(self, seed: int, seq_len: int | None = None) -> Example:
        b = self.generate(rng_for(seed, STREAM_SAMPLE), 1, self.seq_len.resolve(seq_len))
        return self._example(b.inputs[0], b.targets[0])

    def encode(self, text: str) -> Example:
        """Numbers in [0, 1] separated by spaces or commas; mark the two to add with a trailing
        `*` (or [brackets]), e.g. `0.3 0.7* 0.1 0.5 0.9* 0.2`."""
        check_text(text)
        pieces = parse_numbers(text, "numbers")
        if len(pieces) > self.seq_len.max:
            raise ValueError(f"at most {self.seq_len.max} numbers, got {len(pieces)}")
        values, marks = [], []
        for piece in pieces:
            marked = piece.endswith("*") or (piece.startswith("[") and piece.endswith("]"))
            number = to_float(piece.strip("*[]"))
            if not 0.0 <= number <= 1.0:
                raise ValueError(
                    f"the adding problem uses numbers between 0 and 1 (what the models saw in "
                    f"training); got {number:g}"
                )
            values.append(number)
            marks.append(1.0 if marked else 0.0)
        if sum(marks) != 2:
            raise ValueError(
                f"mark exactly two numbers to add with a trailing * (e.g. 0.3 0.7* 0.1 0.9*); "
                f"{int(sum(marks))} marked"
            )
        inputs = torch.tensor(list(zip(values, marks)), dtype=torch.float32)
        target = torch.tensor(sum(v for v, m in zip(values, marks) if m), dtype=torch.float32)
        return self._example(inputs, target)

    @staticmethod
    def _example(inputs: torch.Tensor, target: torch.Tensor) -> Example:
        tokens = [f"{float(v):.2f}" + ("*" if m > 0 else "") for v, m in inputs.tolist()]
        marked = [i for i, (_, m) in enumerate(inputs.tolist()) if m > 0]
        return Example(inputs, target, tokens, [], {"marked": marked})

    def describe(self, prediction, example=None) -> str:
        # the answer alone: the pages show the target beside it
        return f"sum ≈ {float(prediction):.3f}"
