"""What a training run will need, worked out from its sizes before it starts: memory and time.

    plan = plan_run("adding", "lstm", config)   # RunPlan: the config to train, in budget
    plan.config.batch_size, plan.notes          # scaled down if need be, and why, in words
    estimate = training_bytes(spec, "adam", batch_size=50, steps=1000)   # bytes by part

Every run must fit `LIMITS.max_training_bytes` (core/limits.py): what its training process
allocates for the run, on top of what every training process holds anyway (torch's code,
shared with its siblings and the server). A run that asks for more has its batch scaled down,
with a note the page shows; one that does not fit even one sequence at a time is refused with
a LimitError that says what to change. The held-out set is evaluated in chunks of
`evaluation_chunk` sequences, sized to the same budget.

The estimate, per run:

- per parameter, 4 floats plus the optimiser's state (Adam 2, RMSprop and SGD with momentum
  1): the weights, their gradients, the copy kept to fall back on if the loss turns non-finite,
  and the copy of the last held-out check's weights; and one more per snapshot the run keeps
  (`config.snapshots`, core/training/snapshots.py), which `plan_run` holds to
  SNAPSHOT_SHARE of the budget;
- what autograd keeps for one batch: floats per sequence, per step of the backpropagation window
  and per hidden unit, `TRAIN_FLOATS[cell]` for the first layer and the second number for each
  further one, plus 3 per input feature (the features and their gradients);
- the data: the held-out set and the probe set (core.training.loop), and a few copies of one
  batch while it is drawn;
- the largest of what comes and goes (they never overlap): the training step; one evaluation
  chunk of sequences, `EVAL_FLOATS[cell]` floats per sequence, step and hidden unit; and a
  check's weights packed and pickled to be sent to the server (2 floats per parameter,
  core/training/worker.py). The first two count ALLOCATOR_MARGIN more.

The float counts are the peaks measured on this machine's CPU (oneDNN's LSTM keeps all its gates
and states for the backward pass; PyTorch's GRU and RNN keep less, but their backward makes more
temporaries), rounded up, with T = 500, batches of 4 to 64, one to four layers and H from 16 to
512. tests/test_budget.py holds the estimate against autograd's saved tensors
(core.engine.analysis.training_memory_bytes) and against the measured peak of one step in a
fresh process (the estimate is 1 to 2.5 times it); benchmarks/training_memory.py measures whole
runs: with ALLOCATOR_MARGIN, the issue's heaviest runs reached 0.73 to 0.91 of the budget (the
private memory of their training process, less the ~25 to 35 MB an idle one holds).

Time: Stop must end a run within about a second, so the work comes in pieces of about
`PIECE_SECONDS` (a training step's stretches, `segment_steps`; an evaluation's chunks and
stretches, `evaluation_chunk` and `evaluation_stretch`), and evaluating the held-out set must
take well under a second: `plan_run` shrinks the held-out set to what an evaluation is
estimated to do in `HELDOUT_SECONDS` at `EVAL_MACS_PER_SECOND` (rates measured on this machine,
halved for a slower host shared by three runs), keeping at least `MIN_HELDOUT` sequences; the
page says so. Where even those take longer, a stopped run keeps its last check
(core.training.loop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from core.cells import cell_info
from core.limits import LIMITS, LimitError
from core.model import ModelSpec
from core.tasks import Task, get_task

FLOAT = 4  # bytes; every tensor a run makes is float32, token ids aside
ID = 8  # bytes of a token id (int64)

#: Floats autograd and the backward pass hold per sequence, per step and per hidden unit:
#: (first layer, each further layer). Measured peaks, rounded up (see the module doc).
TRAIN_FLOATS = {"lstm": (18.0, 12.0), "gru": (17.0, 13.0), "rnn": (6.0, 4.0)}
#: The same for a forward pass without gradients (an evaluation).
EVAL_FLOATS = {"lstm": (2.6, 2.6), "gru": (6.2, 1.5), "rnn": (4.0, 1.2)}
#: State the optimiser keeps per parameter, in floats.
OPTIMIZER_FLOATS = {"adam": 2, "rmsprop": 1, "sgd": 1}
#: Per parameter besides the optimiser's state: weights, gradients, the fallback copy and the
#: last held-out check's copy.
PARAMETER_FLOATS = 4
#: Per parameter while a check is sent to the server (after its evaluation has ended): the
#: weights packed as safetensors, and pickled.
SENDING_FLOATS = 2
#: What comes and goes each step (a training step's tensors, an evaluation chunk's) counts this
#: much more: the allocator keeps part of what was freed for the next step. With 1.2, the
#: heaviest run's process reached 1.02 of the budget over a whole run; with 1.3, 0.91
#: (benchmarks/training_memory.py).
ALLOCATOR_MARGIN = 1.3
#: The part of a run's memory budget its snapshots may take: `plan_run` keeps fewer of them
#: (a note says so) where the model is too big for the number asked, rather than shrink the
#: batch for them. A sixteenth of 192 MB keeps 40 snapshots of a 78,000-parameter model (the
#: shipped models have 4,000 to 30,000) or 20 of a 157,000-parameter one.
SNAPSHOT_SHARE = 1 / 16
#: Steps a sentence can have beyond its task's length knob (words around the counted span).
SENTENCE_SLACK = 16

#: Seconds an evaluation of the held-out set is planned to take (Stop evaluates the weights it
#: stops at, within about a second).
HELDOUT_SECONDS = 0.6
#: The fewest held-out sequences a run keeps, however slow they are to evaluate.
MIN_HELDOUT = 20
#: Multiply-adds per second of a forward pass without gradients, per cell, and seconds per step,
#: layer and chunk: this machine's CPU, one thread, measured on chunks of 12 to 25 sequences of
#: 1,000 steps (LSTM 46 to 73, GRU 24, RNN 46 G/s; one sequence at a time only about 10),
#: halved for a slower host shared by three runs.
EVAL_MACS_PER_SECOND = {"lstm": 25e9, "gru": 12e9, "rnn": 20e9}
EVAL_SECONDS_PER_STEP = {"lstm": 20e-6, "gru": 50e-6, "rnn": 25e-6}
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
#: Seconds one piece of work that cannot be interrupted (a stretch of a training step, one
#: evaluation chunk) is planned to take at most: Stop and the time limit are heard between
#: pieces. A training step costs about three forward passes (forward, and backward's two).
PIECE_SECONDS = 0.25
TRAIN_PASSES = 3
#: Steps of one stretch of a training step: at most as core.training.loop's SEGMENT_STEPS, at
#: least this many.
MIN_SEGMENT_STEPS = 10


def mib(nbytes: float) -> str:
    """Bytes in words: "256 MB" (mebibytes, as the limits table states them)."""
    return f"{nbytes / 2**20:,.0f} MB" if nbytes >= 2**20 else f"{nbytes / 2**20:,.1f} MB"


def parameter_count(spec: ModelSpec) -> int:
    """Parameters of the SequenceModel `spec` describes (its embedding, recurrent layers with
    both biases, and linear head), worked out without building it."""
    embedding = spec.vocab_size * spec.input_size if spec.vocab_size is not None else 0
    gates_h = GATES[spec.cell] * spec.hidden_size
    directions = spec.directions
    recurrent, inputs = 0, spec.input_size
    for _ in range(spec.num_layers):
        recurrent += directions * (gates_h * (inputs + spec.hidden_size) + 2 * gates_h)
        inputs = directions * spec.hidden_size
    head = directions * spec.hidden_size * spec.output_size + spec.output_size
    return embedding + recurrent + head


def sequence_steps(task: Task | str, seq_len: int) -> int:
    """The most steps a sequence of `task` at length knob `seq_len` has (padded batches are as
    long as their longest): the knob itself for numeric tasks, a little more for sentences."""
    task = get_task(task) if isinstance(task, str) else task
    return int(seq_len) + (SENTENCE_SLACK if task.vocab is not None else 0)


def _per_step_floats(spec: ModelSpec, floats: dict) -> float:
    first, further = floats[spec.cell]
    return spec.directions * spec.hidden_size * (first + further * (spec.num_layers - 1))


def activation_bytes(spec: ModelSpec, steps: int, margin: float = ALLOCATOR_MARGIN) -> int:
    """What one training sequence of `steps` backpropagated steps holds at the step's peak
    (`margin`: see ALLOCATOR_MARGIN; 1 for the tensors alone)."""
    per_step = _per_step_floats(spec, TRAIN_FLOATS) + 3 * spec.input_size
    return math.ceil(FLOAT * steps * per_step * margin)


def evaluation_bytes(spec: ModelSpec, steps: int, margin: float = ALLOCATOR_MARGIN) -> int:
    """What one sequence of `steps` steps holds while the model evaluates it (no gradients)."""
    per_step = _per_step_floats(spec, EVAL_FLOATS) + 2 * spec.input_size + spec.output_size
    return math.ceil(FLOAT * steps * per_step * margin)


def _step_bytes(spec: ModelSpec) -> int:
    """One step of one sequence of data: its features (or token id) and target."""
    return (2 * ID) if spec.vocab_size is not None else FLOAT * (spec.input_size + 1)


def fixed_bytes(spec: ModelSpec, optimizer: str, batch_size: int, steps: int,
                heldout_size: int, snapshots: int = 0) -> dict[str, int]:
    """What a run holds whatever it is doing: parameters and their copies, its data, and
    (by the end) its `snapshots` copies of the model."""
    params = parameter_count(spec)
    parts = {
        "parameters, gradients, optimiser state and copies":
            FLOAT * params * (PARAMETER_FLOATS + OPTIMIZER_FLOATS.get(optimizer, 2)),
        "held-out and probe sets, one batch": _step_bytes(spec) * steps
            * (2 * heldout_size + 3 * batch_size),
    }
    if snapshots:
        parts["snapshots"] = snapshot_bytes(spec, snapshots)
    return parts


def snapshot_bytes(spec: ModelSpec, snapshots: int) -> int:
    """What `snapshots` copies of the whole model hold (float32)."""
    return FLOAT * parameter_count(spec) * int(snapshots)


def training_bytes(spec: ModelSpec, optimizer: str, batch_size: int, steps: int,
                   window: int | None = None, heldout_size: int = 500,
                   eval_chunk: int | None = None, snapshots: int = 0) -> dict[str, int]:
    """The peak a run is estimated to reach, by part, and its "total": the fixed part plus the
    larger of a training step (one batch, `window` steps backpropagated at a time) and an
    evaluation of `eval_chunk` sequences (the whole held-out set at once if None)."""
    parts = fixed_bytes(spec, optimizer, batch_size, steps, heldout_size, snapshots)
    fixed = sum(parts.values())
    backpropagated = steps if window is None else min(window, steps)
    parts["training step (one batch)"] = batch_size * activation_bytes(spec, backpropagated)
    parts["evaluation (one chunk)"] = (eval_chunk or heldout_size) * evaluation_bytes(spec, steps)
    parts["sending a check's weights"] = FLOAT * SENDING_FLOATS * parameter_count(spec)
    parts["total"] = fixed + max(parts["training step (one batch)"],
                                 parts["evaluation (one chunk)"],
                                 parts["sending a check's weights"])
    return parts


def free_for_batches(spec: ModelSpec, optimizer: str, steps: int, heldout_size: int,
                     budget: int | None = None, snapshots: int = 0) -> int:
    """Bytes of the budget left for a training batch or an evaluation chunk (may be <= 0; less
    than nothing too when sending a check's weights would not fit). The batch's own data is not
    counted here; `largest_batch` and `evaluation_chunk` count it."""
    budget = LIMITS.max_training_bytes if budget is None else budget
    free = budget - sum(fixed_bytes(spec, optimizer, 0, steps, heldout_size,
                                    snapshots).values())
    return free if free >= FLOAT * SENDING_FLOATS * parameter_count(spec) else 0


def largest_batch(spec: ModelSpec, optimizer: str, steps: int, window: int | None,
                  heldout_size: int, budget: int | None = None, snapshots: int = 0) -> int:
    """The most sequences per training batch that fit the budget (0: not even one)."""
    free = free_for_batches(spec, optimizer, steps, heldout_size, budget, snapshots)
    backpropagated = steps if window is None else min(window, steps)
    per_sequence = activation_bytes(spec, backpropagated) + 3 * _step_bytes(spec) * steps
    return max(0, free // per_sequence)


def evaluation_chunk(spec: ModelSpec, optimizer: str, steps: int, heldout_size: int,
                     batch_size: int, budget: int | None = None, snapshots: int = 0) -> int:
    """Sequences evaluated at once: as many as the budget leaves room for (at least one, at
    most the held-out set), and few enough that MIN_SEGMENT_STEPS steps of them take about
    PIECE_SECONDS. (A long chunk runs in stretches: `evaluation_stretch`. Many sequences at
    once are much faster than one at a time: one sequence streams every weight from memory at
    every step.)"""
    free = free_for_batches(spec, optimizer, steps, heldout_size, budget, snapshots) \
        - 3 * batch_size * _step_bytes(spec) * steps
    by_memory = free // evaluation_bytes(spec, steps)
    by_time = PIECE_SECONDS * EVAL_MACS_PER_SECOND[spec.cell] / (MIN_SEGMENT_STEPS
                                                                 * macs_per_step(spec))
    return int(max(1, min(heldout_size, by_memory, by_time)))


def evaluation_stretch(spec: ModelSpec, chunk: int, longest: int) -> int:
    """Steps of one chunk evaluated at a time (the state passes on: the same numbers as one
    call), so that a stretch takes about PIECE_SECONDS: from MIN_SEGMENT_STEPS to `longest`."""
    per_step = (chunk * macs_per_step(spec) / EVAL_MACS_PER_SECOND[spec.cell]
                + spec.num_layers * EVAL_SECONDS_PER_STEP[spec.cell])
    return int(max(MIN_SEGMENT_STEPS, min(longest, PIECE_SECONDS // per_step)))


def macs_per_step(spec: ModelSpec) -> int:
    """Multiply-adds of one step of one sequence through every layer (the gates' matmuls)."""
    macs, inputs = 0, spec.input_size
    for _ in range(spec.num_layers):
        macs += spec.directions * GATES[spec.cell] * spec.hidden_size * (inputs + spec.hidden_size)
        inputs = spec.directions * spec.hidden_size
    return macs


def evaluation_seconds(spec: ModelSpec, sequences: int, steps: int, chunk: int) -> float:
    """The planned time to evaluate `sequences` sequences of `steps` steps, `chunk` at a time."""
    chunks = math.ceil(sequences / max(1, chunk))
    return (sequences * steps * macs_per_step(spec) / EVAL_MACS_PER_SECOND[spec.cell]
            + chunks * steps * spec.num_layers * EVAL_SECONDS_PER_STEP[spec.cell])


def segment_steps(spec: ModelSpec, batch_size: int, longest: int) -> int:
    """Steps of one stretch of a training step on a batch (forward and backward about
    PIECE_SECONDS), from MIN_SEGMENT_STEPS to `longest`."""
    per_step = (TRAIN_PASSES * batch_size * macs_per_step(spec) / EVAL_MACS_PER_SECOND[spec.cell]
                + TRAIN_PASSES * spec.num_layers * EVAL_SECONDS_PER_STEP[spec.cell])
    return int(max(MIN_SEGMENT_STEPS, min(longest, PIECE_SECONDS // per_step)))


@dataclass(frozen=True)
class RunPlan:
    """A run's config as it will train (batch and held-out set within budget), the estimate
    it was planned with, and what was changed, in words (plain text)."""

    config: object  # core.training.loop.TrainConfig
    estimate: dict[str, int]
    eval_chunk: int
    heldout_seconds: float
    notes: tuple[str, ...] = ()


def describe_model(spec: ModelSpec, steps: int) -> str:
    """"a 2-layer LSTM with 512 units on sequences of 1,000 steps" (plain text)."""
    name = f"{spec.num_layers}-layer " if spec.num_layers > 1 else ""
    name += "bidirectional " if spec.bidirectional else ""
    name += cell_info(spec.cell).display_name
    article = "an" if name[0] in "8AEFHILMNORSX" else "a"  # an LSTM, an RNN, an 8-layer
    return f"{article} {name} with {spec.hidden_size:,} units on sequences of {steps:,} steps"


def plan_run(task: Task | str, cell: str, config, *, max_batch: int | None = None,
             max_heldout: int | None = None, budget: int | None = None) -> RunPlan:
    """`config` (a TrainConfig) with its batch scaled down to fit the memory budget and its
    held-out set to what evaluates in about HELDOUT_SECONDS, with a note for each change.
    `max_batch` / `max_heldout` cap them further (runs started together share their batches
    and held-out set). LimitError (limit "max_training_bytes") when not even a batch of one
    sequence fits."""
    from core.training.loop import model_spec

    task = get_task(task)
    budget = LIMITS.max_training_bytes if budget is None else budget
    spec = model_spec(task, cell, config.hidden_size, config.num_layers,
                      config.bidirectional)
    steps = sequence_steps(task, task.seq_len.resolve(config.seq_len))
    wanted_heldout = min(config.heldout_size, task.heldout_size)
    optimizer, window = config.optimizer, config.tbptt
    snapshots, snapshot_note = _planned_snapshots(spec, getattr(config, "snapshots", 0), budget)

    own_heldout = wanted_heldout
    chunk = evaluation_chunk(spec, optimizer, steps, own_heldout, 1, budget, snapshots)
    while own_heldout > MIN_HELDOUT and \
            evaluation_seconds(spec, own_heldout, steps, chunk) > HELDOUT_SECONDS:
        own_heldout = max(MIN_HELDOUT, int(own_heldout * 0.9))
        chunk = evaluation_chunk(spec, optimizer, steps, own_heldout, 1, budget, snapshots)
    heldout = own_heldout if max_heldout is None else min(own_heldout, max_heldout)

    fits = largest_batch(spec, optimizer, steps, window, heldout, budget, snapshots)
    if fits < 1:
        one = training_bytes(spec, optimizer, 1, steps, window, heldout, eval_chunk=1,
                             snapshots=snapshots)["total"]
        raise LimitError(
            f"Too big to train here: {describe_model(spec, steps)} needs about {mib(one)} to "
            f"train on one sequence at a time; the memory budget of a training run is "
            f"{mib(budget)}. Use shorter sequences, fewer units or fewer layers.",
            limit="max_training_bytes", value=one)
    own_batch = min(fits, config.batch_size)
    batch = own_batch if max_batch is None else min(own_batch, max_batch)
    chunk = evaluation_chunk(spec, optimizer, steps, heldout, batch, budget, snapshots)
    seconds = evaluation_seconds(spec, heldout, steps, chunk)

    notes = [snapshot_note] if snapshot_note else []
    scaled = f"Batch scaled from {config.batch_size:,} to {_sequences(batch)}"
    if batch < own_batch:
        notes.append(f"{scaled}, {SHARED}: runs started together train on the same batches.")
    elif batch < config.batch_size:
        backpropagated = steps if window is None else min(window, steps)
        notes.append(f"{scaled} to fit the memory budget of {mib(budget)} per training run "
                     f"({mib(activation_bytes(spec, backpropagated))} per sequence for "
                     f"{describe_model(spec, steps)}).")
    scaled = f"Held-out set scaled from {wanted_heldout:,} to {_sequences(heldout)}"
    if heldout < own_heldout:
        notes.append(f"{scaled}, {SHARED}: they share one held-out set.")
    elif heldout < wanted_heldout and seconds <= 1.5 * HELDOUT_SECONDS:
        notes.append(f"{scaled}, so that checking the model on it takes under a second and "
                     f"Stop ends the run within about a second.")
    elif heldout < wanted_heldout:
        notes.append(f"{scaled} (the fewest a run keeps); checking the model on them still "
                     f"takes seconds, so a run stopped between two checks may keep the weights "
                     f"and score of its last check.")
    planned = replace(config, batch_size=batch, heldout_size=heldout)
    if snapshots != getattr(config, "snapshots", 0):
        planned = replace(planned, snapshots=snapshots)
    estimate = training_bytes(spec, optimizer, batch, steps, window, heldout, chunk, snapshots)
    return RunPlan(planned, estimate, chunk, seconds, tuple(notes))


def _planned_snapshots(spec: ModelSpec, wanted: int, budget: int) -> tuple[int, str]:
    """(snapshots to keep, a note if fewer than `wanted`): as many as fit SNAPSHOT_SHARE of
    the budget; none where not even the first and the last do."""
    from core.training.snapshots import MIN_SNAPSHOTS

    if not wanted:
        return 0, ""
    each = snapshot_bytes(spec, 1)
    fits = int(SNAPSHOT_SHARE * budget // each)
    if fits >= wanted:
        return wanted, ""
    why = (f"each is a copy of the model ({mib(each)}) and snapshots may take at most "
           f"{mib(SNAPSHOT_SHARE * budget)} of the memory budget of a training run")
    if fits < MIN_SNAPSHOTS:
        return 0, f"No snapshots kept (of the {wanted:,} asked for): {why}."
    return fits, f"Snapshots cut from {wanted:,} to {fits:,}: {why}."


#: Words in a note on a change made because of another run started at the same time.
SHARED = "as for the runs started with it"


def _sequences(n: int) -> str:
    return f"{n:,} sequence" if n == 1 else f"{n:,} sequences"


def check_training_memory(spec: ModelSpec, config, steps: int, heldout_size: int) -> int:
    """The estimated peak of a run (bytes), if it fits LIMITS.max_training_bytes; else a
    LimitError naming the largest batch that would fit."""
    snapshots = getattr(config, "snapshots", 0)
    chunk = evaluation_chunk(spec, config.optimizer, steps, heldout_size, config.batch_size,
                             snapshots=snapshots)
    total = training_bytes(spec, config.optimizer, config.batch_size, steps, config.tbptt,
                           heldout_size, chunk, snapshots)["total"]
    if total <= LIMITS.max_training_bytes:
        return total
    fits = largest_batch(spec, config.optimizer, steps, config.tbptt, heldout_size,
                         snapshots=snapshots)
    advice = (f"at most {_sequences(fits)} per batch {'fits' if fits == 1 else 'fit'}" if fits else
              "not even one sequence per batch fits; use shorter sequences, fewer units or "
              "fewer layers")
    raise LimitError(
        f"Too big to train here: {describe_model(spec, steps)} in batches of "
        f"{config.batch_size:,} needs about {mib(total)}; the memory budget of a training run "
        f"is {mib(LIMITS.max_training_bytes)}: {advice}"
        + (f" (with its {snapshots:,} snapshots of {mib(snapshot_bytes(spec, snapshots))}; "
           "keep fewer)." if snapshots else "."),
        limit="max_training_bytes", value=total)
