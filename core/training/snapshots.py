"""A training run's snapshots: the whole model's weights at a few log-spaced steps.

    result = train("adding", "lstm", TrainConfig(max_steps=3000, snapshots=20))
    [s.step for s in result.snapshots]      # [0, 1, 2, 3, 4, 6, 9, 14, ..., 1923, 3000]
    model = model_at(result, 133)           # the SequenceModel as it was after step 133

Step 0 is the initialisation and the last snapshot is the model the run ended with, whatever
ended it (a stopped run's last snapshot is the weights it kept). Between them the steps are
log-spaced: training changes a model fastest at the start, and a slider over these steps shows
that beginning as well as the slow end.

One file format holds snapshots wherever they are written (a trained model's history
download, core/io/exports.py; the zoo's histories, core/training/zoo.py, which leave out the
two ends): safetensors with a
tensor `snapshots.<step>.<name>` for every entry of the SequenceModel's state_dict at each
step, and metadata "format" = "gatescope snapshots", "steps" (JSON list) and "scores" (JSON
list, a Score's dict or null per step). It is a file of its own, not part of the weights file:
in one file, an upload of the weights would find a recurrent module per snapshot.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace

import numpy as np
import safetensors.torch
import torch
from safetensors import SafetensorError

from core.model import SequenceModel, rebuild_sequence_model
from core.tasks import Score

#: The most snapshots a run keeps. Each is a full copy of the model (a shipped-size model's
#: 20-120 KB, but a 5-million-parameter one's 20 MB), held by the training process and then
#: by the server for as long as the model is kept; a slider finds 40 points along a
#: log-spaced run more than enough, and 40 copies still fit the per-run memory budget for the
#: models people train here (core.training.budget caps them further for big ones).
MAX_SNAPSHOTS = 40
#: The fewest a run with snapshots keeps: its initialisation and its end.
MIN_SNAPSHOTS = 2
FORMAT = "gatescope snapshots"
PREFIX = "snapshots"


@dataclass(frozen=True)
class Snapshot:
    """The whole SequenceModel's state_dict after `step` optimiser steps (float32, on the CPU,
    a copy of its own), and the held-out score of exactly these weights where the run
    evaluated them at that step (None where it did not)."""

    step: int
    state: dict[str, torch.Tensor] = field(repr=False)
    score: Score | None = None


def take_snapshot(model: torch.nn.Module, step: int, score: Score | None = None) -> Snapshot:
    """A copy of `model`'s weights now: float32, CPU, detached and cloned."""
    return Snapshot(int(step), {name: tensor.detach().to("cpu", torch.float32, copy=True)
                                for name, tensor in model.state_dict().items()}, score)


def snapshot_steps(max_steps: int, count: int) -> list[int]:
    """`count` steps from 0 to `max_steps` (both included), log-spaced in between, every one a
    whole step and different (all of 0..max_steps where that is fewer); [] for count 0."""
    count, max_steps = int(count), int(max_steps)
    if count <= 0:
        return []
    if count >= max_steps + 1:
        return list(range(max_steps + 1))
    if count == 1:
        return [max_steps]
    # 0, then count - 1 steps spaced evenly in log(step) from 1 to max_steps; rounding makes the
    # first few equal, so each is pushed one past the one before, and back below the one after
    # from the top (there is room: count - 1 <= max_steps).
    inner = np.rint(np.geomspace(1, max_steps, count - 1)).astype(int).tolist() \
        if count > 2 else [max_steps]
    for i in range(1, len(inner)):
        inner[i] = max(inner[i], inner[i - 1] + 1)
    inner[-1] = max_steps
    for i in range(len(inner) - 2, -1, -1):
        inner[i] = min(inner[i], inner[i + 1] - 1)
    return [0] + inner


def model_at(source, step: int) -> SequenceModel:
    """The model as it was at snapshot `step`, in eval mode, a new module of its own.

    `source` is a TrainResult (its model and snapshots) or a pair (model, snapshots): the model
    gives the architecture (a vanilla RNN's nonlinearity included), the snapshot the weights.
    ValueError naming the steps there are if none was taken at `step`."""
    if isinstance(source, tuple):
        model, snapshots = source
    else:
        model, snapshots = source.model, source.snapshots
    by_step = {s.step: s for s in snapshots}
    if int(step) not in by_step:
        there = ", ".join(str(s) for s in sorted(by_step)) or "none"
        raise ValueError(f"no snapshot at step {step}; snapshots were taken at steps: {there}")
    nonlinearity = getattr(model.rnn, "nonlinearity", "tanh")
    return rebuild_sequence_model(model.spec.to_dict(), by_step[int(step)].state, nonlinearity)


def final_snapshots(snapshots, model: torch.nn.Module, steps: int, score: Score | None
                    ) -> tuple[Snapshot, ...]:
    """The snapshots a run ends with: those before its last step, then the weights it kept,
    with their final score. (A diverged run goes back a step, a stopped one may go back to its
    last check: the snapshots past the weights it kept are not of this run's model. One taken
    at the kept step holds these very weights: a run's weights after k steps are one thing.)"""
    kept = [s for s in snapshots if s.step < steps]
    there = [s for s in snapshots if s.step == steps]
    last = replace(there[-1], score=score) if there else take_snapshot(model, steps, score)
    return tuple(kept) + (last,)


# -- the file --------------------------------------------------------------------------------

def _score_json(score: Score | None):
    return None if score is None else _finite(score.to_dict())


def _finite(value):
    """JSON has no NaN or Infinity: a diverged run's infinite loss is written as null (which
    Score.from_dict reads back as NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def snapshots_file(snapshots, metadata: dict[str, str] | None = None,
                   dtype: torch.dtype = torch.float32) -> bytes:
    """Snapshots as safetensors bytes (the format in the module doc). `metadata` adds string
    entries (what model they are of); `dtype` is what the tensors are stored as."""
    tensors = {f"{PREFIX}.{s.step}.{name}": tensor.to(dtype).contiguous()
               for s in snapshots for name, tensor in s.state.items()}
    header = {**(metadata or {}), "format": FORMAT,
              "steps": json.dumps([s.step for s in snapshots]),
              "scores": json.dumps([_score_json(s.score) for s in snapshots], allow_nan=False)}
    return safetensors.torch.save(tensors, metadata=header)


def read_snapshots(data: bytes, name: str = "the snapshots file") -> tuple[Snapshot, ...]:
    """The snapshots `snapshots_file` wrote, float32, in step order. ValueError, naming `name`,
    for any other file."""
    try:
        tensors = safetensors.torch.load(data)
        header = file_metadata(data)
        if header.get("format") != FORMAT:
            raise ValueError(f"its format is {header.get('format')!r}, not {FORMAT!r}")
        steps = [int(s) for s in json.loads(header["steps"])]
        scores = json.loads(header["scores"])
        if len(scores) != len(steps):
            raise ValueError("it lists a different number of scores and steps")
        states: dict[int, dict[str, torch.Tensor]] = {step: {} for step in steps}
        for key, tensor in tensors.items():
            prefix, step, param = key.split(".", 2)
            if prefix != PREFIX or int(step) not in states:
                raise ValueError(f"it has a tensor {key!r} of no listed step")
            states[int(step)][param] = tensor.to(torch.float32)
    except (SafetensorError, ValueError, KeyError, TypeError, IndexError) as error:
        raise ValueError(f"{name} is not a gatescope snapshots file: {error}") from None
    return tuple(Snapshot(step, states[step], None if score is None else Score.from_dict(score))
                 for step, score in sorted(zip(steps, scores), key=lambda pair: pair[0]))



def file_metadata(data: bytes) -> dict[str, str]:
    """The string metadata of safetensors bytes ({} where it has none)."""
    with_header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
    return dict(with_header.get("__metadata__") or {})
