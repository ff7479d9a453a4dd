"""Random data with random labels: the Keras example from the seeds, kept honest.

1000 training sequences of 10 steps x 64 features drawn uniformly from [0, 1), each with a
random 0/1 label (`np.random.rand(1000, 10, 64)`, `np.random.randint(2, size=(1000, 1))`).
There is nothing to learn: a big enough model memorises the training set (training accuracy
climbs towards 100%) while its accuracy on fresh random data stays at chance (50%).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from core.limits import check_text
from core.tasks.base import (
    STREAM_HELDOUT, STREAM_SAMPLE, Batch, Example, Metric, SeqLen, Task, check_float32,
    parse_numbers, rng_for, to_float,
)

TRAIN_SIZE, STEPS, FEATURES = 1000, 10, 64
DATA_SEED = 2024  # the one fixed training set every model of this task memorises


def random_data(rng: np.random.Generator, n: int) -> Batch:
    x = rng.random((n, STEPS, FEATURES), dtype=np.float32)
    y = rng.integers(0, 2, size=n)
    return Batch(torch.from_numpy(x), torch.from_numpy(y), torch.full((n,), STEPS))


class RandomTask(Task):
    name = "random"
    title = "Random labels"
    description = (
        "1000 sequences of random numbers with random 0/1 labels (the Keras example). A model "
        "can memorise them, so training accuracy rises, but on fresh random data it can only "
        "guess: held-out accuracy stays at chance, 50%."
    )
    kind = "classification"
    input_size = FEATURES
    seq_len = SeqLen(default=STEPS, min=STEPS, max=STEPS, fixed=True, unit="timesteps")
    metric = Metric("held-out accuracy", higher_is_better=True)
    baseline_name = "chance (the training set's majority label)"
    classes = ("0", "1")

    @functools.cached_property
    def train_data(self) -> Batch:
        return random_data(np.random.default_rng(DATA_SEED), TRAIN_SIZE)

    def batch(self, rng, batch_size, seq_len=None) -> Batch:
        self.seq_len.resolve(seq_len)
        rows = torch.from_numpy(rng.integers(0, TRAIN_SIZE, size=batch_size))
        data = self.train_data
        return Batch(data.inputs[rows], data.targets[rows], data.lengths[rows])

    def heldout(self, seed, n=None, seq_len=None) -> Batch:
        """Fresh random sequences and labels, never the training set."""
        self.seq_len.resolve(seq_len)
        return random_data(rng_for(seed, STREAM_HELDOUT), n or self.heldout_size)

    def baseline(self, batch) -> float:
        majority = int(self.train_data.targets.float().mean() >= 0.5)
        return float((batch.targets == majority).float().mean())

    def extra_scores(self, model, predictions, batch) -> dict:
        train = self.train_data
        return {"train_accuracy": self.score(self.predict(model, train), train)}

    def sample(self, seed: int, seq_len: int | None = None) -> Example:
        self.seq_len.resolve(seq_len)
        b = random_data(rng_for(seed, STREAM_SAMPLE), 1)
        return Example(b.inputs[0], b.targets[0], [f"t{i + 1}" for i in range(STEPS)])

    def encode(self, text: str) -> Example:
        """64 numbers per timestep (any number of timesteps), separated by spaces or commas."""
        check_text(text)
        pieces = parse_numbers(text, "numbers")
        values = [to_float(p) for p in pieces]
        check_float32(pieces, values)  # 1e39 is inf in float32: say so, in the user's terms
        if len(values) > FEATURES * 1000:
            raise ValueError(f"at most 1000 timesteps of {FEATURES} numbers")
        if len(values) % FEATURES:
            raise ValueError(
                f"this task takes {FEATURES} numbers per timestep; got {len(values)}, which is "
                f"not a multiple of {FEATURES}"
            )
        inputs = torch.tensor(values, dtype=torch.float32).reshape(-1, FEATURES)
        return Example(inputs, None, [f"t{i + 1}" for i in range(len(inputs))])
