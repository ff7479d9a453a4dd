"""What runs inside a training process (see core.training.session): train one model, report.

The process sends, over a one-way pipe to the server: ("started", its clock), ("event",
ProgressEvent) as it trains, ("check", (step, score, packed weights)) after every held-out
check, so the server always holds a model and a score that agree even if it has to end the
process, ("snapshot", (step, score or None, packed state)) as each snapshot is taken (a run with
`config.snapshots`; the final one last), and last ("result", (TrainResult without its model
and snapshots, packed model)) or ("error", (words, traceback)). Snapshots go one at a time as
they are taken: sending them all with the result would hold two more copies of every one at
the end, and a process the server has to end has sent those it took.

The fork server imports this module once, and core.training.warm_up, and every training
process is forked from it.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import replace

import safetensors.torch
import torch

from core.model import SequenceModel, rebuild_sequence_model, state_tensors
from core.training.loop import TrainConfig, train
from core.training.snapshots import Snapshot

#: Torch intra-op threads of each training process (small models gain nothing from more; runs
#: side by side with two threads each oversubscribe two shared cores: one lab run took 36 s
#: that way and 2.2 s with one thread).
THREADS_PER_RUN = 1


def pack_model(model: SequenceModel | None) -> tuple[dict, bytes] | None:
    """A model as (spec, safetensors bytes): tensors cross the process boundary by value.
    The spec also says "nonlinearity": "relu" for a relu RNN (the Gradient lab's), which
    ModelSpec does not hold."""
    if model is None:
        return None
    spec = model.spec.to_dict()
    if getattr(model.rnn, "nonlinearity", "tanh") == "relu":
        spec["nonlinearity"] = "relu"
    return spec, safetensors.torch.save(state_tensors(model))


def unpack_model(packed: tuple[dict, bytes]) -> SequenceModel:
    spec, weights = packed
    spec = dict(spec)
    nonlinearity = spec.pop("nonlinearity", "tanh")
    return rebuild_sequence_model(spec, safetensors.torch.load(weights), nonlinearity)


def pack_snapshot(snapshot: Snapshot) -> tuple:
    """A snapshot as (step, score or None, safetensors bytes of its state)."""
    return snapshot.step, snapshot.score, safetensors.torch.save(snapshot.state)


def unpack_snapshot(packed: tuple) -> Snapshot:
    step, score, state = packed
    return Snapshot(int(step), safetensors.torch.load(state), score)


def train_child(task: str, cell: str, config: TrainConfig, packed: tuple | None,
                messages, stop) -> None:
    """The body of a training process: train, sending what the module doc lists on
    `messages` (the writing end of a pipe) and watching `stop` (an Event)."""
    torch.set_num_threads(THREADS_PER_RUN)
    try:
        messages.send(("started", time.monotonic()))
        model = unpack_model(packed).train() if packed is not None else None
        result = train(task, cell, config, on_progress=lambda e: messages.send(("event", e)),
                       should_stop=stop.is_set, model=model,
                       on_check=lambda step, score, checked: messages.send(
                           ("check", (step, score, pack_model(checked)))),
                       on_snapshot=lambda snapshot: messages.send(
                           ("snapshot", pack_snapshot(snapshot))))
        messages.send(("result", (replace(result, model=None, snapshots=()),
                                  pack_model(result.model))))
    except Exception as error:
        messages.send(("error", (f"{type(error).__name__}: {error}", traceback.format_exc())))
    finally:
        messages.close()
