"""A held-out batch of a task, as the interpretability lab measures it: what the recurrent module
receives, each sequence's length, its answer, one readable token per step, and the task's facts
about each sequence (agreement: where the subject is; adding: where the markers are).

    batch = heldout_batch("agreement", model, n=1000, seed=0)
    batch.x            # (B, T, input_size) float32: model.features of the task's held-out ids
    batch.lengths      # (B,) int64
    batch.tokens[3]    # ["the", "old", "cats", "near", ...]: one label per real step
    batch.info["subject_index"]  # (B,) int64, agreement only

The sequences are the task's own held-out set (`task.heldout(seed, n, seq_len)`, a stream
training never draws from), so a statistic here is measured on data the model was not fitted
to. Agreement's Batch keeps the distance and attractors but not the words' roles, so its
sentences are drawn again from the same seeded stream with the same calls: the same sentences,
now with the subject's position (tests/test_interpret.py holds the two equal).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from core.numerics import flush_denormal
from core.sharing import torch_threads
from core.tasks import Batch, Task, get_task
from core.tasks.base import STREAM_HELDOUT, rng_for
from core.trace import BatchTrace, Intervention, trace_batch
from core.training.zoo import FINAL_HELDOUT_SEED

#: The seed of the shipped models' held-out scores and of Compare's accuracy by distance: the lab
#: measures the sentences those numbers were measured on.
DEFAULT_SEED = FINAL_HELDOUT_SEED
#: Compare's accuracy by distance (core.views.compare.AGREEMENT_PER_DISTANCE): 100 sentences at
#: each subject-verb distance.
PER_DISTANCE = 100
#: One intra-op thread for the lab's traces, as for Explore's (core.views.explore.TRACE_THREADS):
#: trace_batch's loop makes a few small torch calls per step, and two threads on two shared,
#: busy cores wait on each other at every one (measured: an intervened agreement GRU batch of
#: 500 sentences in 27 ms on one thread, 0.2 to 0.38 s on two while other work ran).
LAB_THREADS = 1


@dataclass
class HeldoutBatch:
    """Right-padded held-out sequences of one task, ready for `trace_batch(model.rnn, x, lengths)`.

    x: (B, T, input_size) float32, what the recurrent module receives (zeros' embedding at
        padded steps, which the lengths exclude).
    lengths: (B,) int64, each sequence's real steps.
    batch: the task's own Batch (inputs, targets, lengths, info), which `task.score` takes.
    tokens: one readable label per real step of each sequence.
    info: per-sequence facts as (B,) arrays (agreement: "distance", "subject_index",
        "attractors"; adding: "first", "second").
    """

    task: str
    x: torch.Tensor
    lengths: np.ndarray
    batch: Batch
    tokens: list[list[str]]
    info: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def steps(self) -> int:
        """T, the padded length."""
        return int(self.x.shape[1])

    @property
    def targets(self) -> torch.Tensor:
        return self.batch.targets

    @property
    def valid(self) -> np.ndarray:
        """(B, T) bool: the real steps (t < length)."""
        return np.arange(self.steps)[None, :] < self.lengths[:, None]


def heldout_batch(task: str | Task, model, n: int | None = None, seed: int = DEFAULT_SEED,
                  seq_len: int | None = None) -> HeldoutBatch:
    """The task's held-out set (n sequences, seeded, at the task's seq_len) with `model`'s
    features. Deterministic: the same arguments give the same batch."""
    task = get_task(task)
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
        raise ValueError(f"the number of held-out sequences must be a whole number of at least 1; "
                         f"got {n!r}")
    if task.name == "agreement":
        longest = task.seq_len.resolve(seq_len)
        rng = rng_for(seed, STREAM_HELDOUT)
        # AgreementTask.heldout's own calls, in its order: distances first, then each sentence
        distances = rng.integers(1, longest + 1, size=n or task.heldout_size)
        return agreement_batch(model, [task.sentence(rng, int(d)) for d in distances])
    return _from_task_batch(task, model, task.heldout(seed, n, seq_len))


def trace_heldout(model, batch: HeldoutBatch, interventions: tuple[Intervention, ...] = ()
                  ) -> BatchTrace:
    """`trace_batch(model.rnn, batch.x, batch.lengths, interventions=...)` on LAB_THREADS
    intra-op threads, with subnormal floats flushed to zero for the call only: a trained LSTM's
    saturated gates reach subnormal values, and arithmetic on them made a 500-sentence agreement
    batch 40x slower (1.0 s against 27 ms on the development machine)."""
    with torch_threads(LAB_THREADS), flush_denormal():
        return trace_batch(model.rnn, batch.x, torch.as_tensor(batch.lengths),
                           interventions=tuple(interventions))


def heldout_by_distance(model, seed: int = DEFAULT_SEED, per_distance: int = PER_DISTANCE,
                        max_distance: int | None = None) -> HeldoutBatch:
    """Agreement sentences at each exact subject-verb distance 1..max_distance (default the
    task's longest, 40), per_distance of each: the very sentences of
    `AgreementTask.accuracy_by_distance(model, seed, per_distance, max_distance)` and so of
    Compare's accuracy-by-distance chart and the shipped models' metadata."""
    task = get_task("agreement")
    longest = task.seq_len.resolve(max_distance if max_distance is not None else task.seq_len.max)
    if isinstance(per_distance, bool) or not isinstance(per_distance, (int, np.integer)) \
            or per_distance < 1:
        raise ValueError(f"sentences per distance must be a whole number of at least 1; got "
                         f"{per_distance!r}")
    rng = rng_for(seed, STREAM_HELDOUT)
    sentences = [task.sentence(rng, d) for d in range(1, longest + 1) for _ in range(per_distance)]
    return agreement_batch(model, sentences)


def _features(model, inputs: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.features(inputs).detach().float().contiguous()


def agreement_batch(model, sentences: list[dict]) -> HeldoutBatch:
    """A batch of agreement sentences as `AgreementTask.sentence` makes them (dicts with words,
    label, distance, subject_index, attractors)."""
    task = get_task("agreement")
    batch = task.make_batch(sentences)
    info = {key: np.array([s[key] for s in sentences], dtype=np.int64)
            for key in ("distance", "subject_index", "attractors", "label")}
    return HeldoutBatch(task.name, _features(model, batch.inputs),
                        batch.lengths.numpy().astype(np.int64), batch,
                        [list(s["words"]) for s in sentences], info)


def _from_task_batch(task: Task, model, batch: Batch) -> HeldoutBatch:
    lengths = batch.lengths.numpy().astype(np.int64)
    return HeldoutBatch(task.name, _features(model, batch.inputs), lengths, batch,
                        _tokens(task, batch, lengths),
                        {key: value.numpy() for key, value in batch.info.items()
                         if isinstance(value, torch.Tensor) and value.dim() == 1
                         and len(value) == len(lengths)})


def _tokens(task: Task, batch: Batch, lengths: np.ndarray) -> list[list[str]]:
    """Each real step's label, as the task's own examples label it."""
    if task.vocab is not None:  # every word the generators write is in the vocabulary
        words = task.vocab.words
        return [[words[i] for i in row[:n]] for row, n in zip(batch.inputs.tolist(), lengths)]
    if task.name == "adding":
        return [[f"{v:.2f}" + ("*" if m > 0 else "") for v, m in row[:n]]
                for row, n in zip(batch.inputs.tolist(), lengths)]
    if task.name == "airline":  # a window of the months before the forecast one
        months, values = task.months, task.values
        return [[f"{months[k]}: {values[k]:.0f}" for k in range(int(t) - int(n), int(t))]
                for t, n in zip(batch.info["month"].tolist(), lengths)]
    return [[f"t{i + 1}" for i in range(int(n))] for n in lengths]
