"""Training in the background: a run (or three side by side) that a page polls and can stop.

    session = TrainingSession([RunSpec("adding · LSTM", "adding", "lstm", TrainConfig(...))])
    session.start()            # returns at once; each run trains in a process of its own
    session.snapshot()         # thread-safe copies of every run's progress so far
    session.stop()             # asks every run to stop; each keeps what it learned
    session.wait(timeout=10)   # True once every run has ended
    session.results()          # label -> core.training.loop.TrainResult

No Streamlit here: a page keeps the session object in its session state and redraws from
`snapshot()` about once a second, so training never blocks the page. Runs started
together run at the same time so their curves grow side by side; they share the CPU, so
compare their speeds with each other, not with a run made alone.

Each run trains in a child process, watched by a thread of the server. In threads, training
loses the GIL to every visitor's page: a training loop hands the GIL back at every torch call
and waits up to 5 ms to get it again, so with six visitors on their pages a 30-step run took
minutes instead of seconds (measured with benchmarks/load_test.py). A process also uses the
second core. The model goes to and from the child as safetensors bytes. Every run of the
process trains in one of `core.sharing.TRAINING_SLOTS`: while all are taken (other visitors are
training) a run waits, its status says so, and Stop ends it before it trains at all.

Every run is planned before it starts (`plan_runs`, core/training/budget.py): its batch and
held-out set are scaled to the memory budget and to a quick evaluation, and the session's
`notes` (each run's `RunProgress.notes`) say what was changed; a model too big for the budget
is refused with a LimitError. Stop, and a run's time limit, end its process within about a
second: the child hears them inside a step, and the server ends a child that has not answered
`STOP_GRACE_SECONDS` after them, keeping the weights and score of its last held-out check.
A session given `owner_alive` (ui/live.py: whether the browser tab is still connected) is
stopped by `core.sharing.OWNER_WATCH` once its tab has been gone for a short while, so an
abandoned run frees its slot.

Also here: turning a user's choices into a checked `TrainConfig` (every value against
`core.limits`), labels for trained models, and a run's result in words (the files a trained
model downloads as are core.io.exports').
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import numbers
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

import torch

from core.cells import CELLS, cell_info
from core.limits import (
    LIMITS,
    LimitError,
    check_hidden_size,
    check_layers,
    check_param_count,
    check_seq_len,
    check_training_seconds,
    check_training_steps,
)
from core.model import INITS, SequenceModel, SkipDraws, count_parameters
from core.sharing import (
    ABANDONED_GRACE_SECONDS, MAX_TRAINED_PER_SESSION, OWNER_WATCH, TRAINING_SLOTS, OwnerWatch,
    TrainingSlots,
)
from core.tasks import get_task
from core.training.budget import SHARED, SNAPSHOT_SHARE, plan_run
from core.training.loop import (
    OPTIMIZERS,
    ProgressEvent,
    TrainConfig,
    TrainResult,
    model_spec,
)
from core.training.snapshots import MAX_SNAPSHOTS, MIN_SNAPSHOTS, Snapshot
from core.training.worker import pack_model, train_child, unpack_model, unpack_snapshot

log = logging.getLogger(__name__)

#: Learning rates a user may choose: wide enough for every optimiser, narrow enough to be sane.
LEARNING_RATE_RANGE = (1e-5, 1.0)
#: Gate biases (LSTM forget, GRU update) a user may set: sigmoid(±10) is already 0 or 1.
GATE_BIAS_RANGE = (-10.0, 10.0)
#: Points of the per-step loss kept per run: beyond this, progress events average a few steps.
MAX_EVENTS_PER_RUN = 2000
#: Seconds a training process has, after Stop or its time limit, to send its result before the
#: server ends it (it hears both within a step and evaluates quickly: core.training.loop).
STOP_GRACE_SECONDS = 1.5
#: Seconds a training process may take to start (fork, read its arguments) before Stop ends it.
START_SECONDS = 10.0
#: Snapshots a browser session keeps of all its trained models together: those of one "all
#: three cells" run at their largest (each run's at most SNAPSHOT_SHARE of its budget).
SESSION_SNAPSHOT_BYTES = int(3 * SNAPSHOT_SHARE * LIMITS.max_training_bytes)


@dataclass
class RunSpec:
    """One training run: what to train, how, and (optionally) the weights to start from."""

    label: str
    task: str
    cell: str
    config: TrainConfig
    model: SequenceModel | None = None  # start from these weights instead of a fresh init
    notes: tuple[str, ...] = ()  # what planning changed (batch, held-out set), in words


@dataclass
class RunProgress:
    """A snapshot of one run, safe to read while its thread goes on."""

    label: str
    task: str
    cell: str
    config: TrainConfig
    events: list[ProgressEvent]
    result: TrainResult | None  # set once the run has ended without an error
    error: str | None  # what went wrong, in words, if the run failed
    waiting: bool = False  # for a free training slot: other runs on this server train now
    cancelled: bool = False  # stopped before it trained a step (e.g. while it waited for a slot)
    notes: tuple[str, ...] = ()  # what planning changed (batch, held-out set), in words

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None or self.cancelled

    @property
    def last(self) -> ProgressEvent | None:
        return self.events[-1] if self.events else None

    @property
    def status(self) -> str:
        if self.error is not None:
            return "failed"
        if self.cancelled:
            return "stopped before it started"
        if self.waiting:
            return "waiting for a free training slot"
        return self.result.status if self.result is not None else "running"

    @property
    def steps_per_second(self) -> float:
        last = self.last
        if last is None or last.elapsed <= 0:
            return 0.0
        return last.step / last.elapsed

    @property
    def fraction(self) -> float:
        """How far the run is through its budget, steps or seconds, whichever is further."""
        last = self.last
        if last is None:
            return 0.0
        budget = self.config.max_seconds or math.inf
        return min(1.0, max(last.step / self.config.max_steps, last.elapsed / budget))

    @property
    def progress_text(self) -> str:
        """One line for a progress bar: status, step, speed, time, loss, held-out metric."""
        if self.waiting or self.cancelled:
            return (f"**{self.label}** · {self.status} (at most "
                    f"{LIMITS.max_concurrent_training_runs} runs train at once on this server)")
        last = self.last
        step, elapsed = (last.step, last.elapsed) if last else (0, 0.0)
        loss = f" · loss {last.loss:.4g}" if last else ""
        held = (f" · held-out {last.metric_name} {last.heldout_metric:.4g}"
                if last and last.heldout_metric is not None else "")
        return (f"**{self.label}** · {self.status} · step {step:,} of {self.config.max_steps:,} · "
                f"{self.steps_per_second:.0f} steps/s · {elapsed:.1f} s{loss}{held}")


def _process_context():
    """Training processes start from a fork server that has imported torch and the trainer
    and warmed them up once (core/training/warm_up.py): each run starts in a fraction of a
    second and shares those pages with its siblings. (Plain fork is unsafe in a process with
    threads and OpenMP; spawn would import torch again for every run.)

    Like every multiprocessing start method but fork, each process first runs the parent's
    `__main__` file again, as `__mp_main__`: under Streamlit that is app.py, which therefore
    runs the app only when it is `__main__`."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["core.training.worker", "core.training.warm_up"])
    return context


def next_message(reader, child, wait: float = 0.1):
    """A training process's next message from its pipe; None when none came within `wait`
    seconds while the process lives; EOFError once it has ended and sent nothing more. A
    process that sends its result and exits just as the wait runs out has left the result in the
    pipe: it is looked for once more before the process counts as gone (it had been lost, and
    the run reported as ended unexpectedly with exit code 0, under a full test suite's load)."""
    if reader.poll(wait):
        return reader.recv()
    if child.is_alive():
        return None
    if reader.poll(0):
        return reader.recv()
    raise EOFError


class TrainingSession:
    """Runs `core.training.loop.train` for each RunSpec in a process of its own, watched by a thread;
    see the module doc."""

    def __init__(self, runs: list[RunSpec], slots: TrainingSlots = TRAINING_SLOTS,
                 owner_alive: Callable[[], bool] | None = None,
                 owner_watch: OwnerWatch = OWNER_WATCH):
        labels = [run.label for run in runs]
        if not runs or len(set(labels)) != len(labels):
            raise ValueError("a training session needs at least one run, each with its own label")
        self.runs = plan_runs(runs)  # LimitError if a run cannot fit the memory budget
        self.started_at: datetime | None = None
        self.abandoned = False  # stopped because its owner (a browser tab) was gone
        self._owner_alive = owner_alive
        self._owner_watch = owner_watch
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._events: dict[str, list[ProgressEvent]] = {label: [] for label in labels}
        self._results: dict[str, TrainResult] = {}
        self._errors: dict[str, str] = {}
        self._waiting: set[str] = set(labels)
        self._cancelled: set[str] = set()
        self._slots = slots
        self._threads: list[threading.Thread] = []

    def start(self) -> "TrainingSession":
        if self._threads:
            raise RuntimeError("this training session has already started")
        self.started_at = datetime.now()
        for run in self.runs:
            thread = threading.Thread(target=self._run, args=(run,), daemon=True,
                                      name=f"gatescope-train {run.label}")
            self._threads.append(thread)
            thread.start()
        if self._owner_alive is not None:
            self._owner_watch.watch(self._owner_alive, self._abandon, lambda: self.running)
        return self

    @property
    def notes(self) -> list[str]:
        """What planning changed, each sentence once. A run scaled only because another run
        started with it was says so in its own notes; here one sentence says it for all."""
        notes = list(dict.fromkeys(note for run in self.runs for note in run.notes))
        by_change: dict[str, str] = {}  # "Held-out set scaled from 500 to 20 sequences" -> note
        for note in notes:
            if SHARED not in note:
                change = note.split(",")[0].split(" (")[0]
                # of two cells' words on one change, the slower cell's (it says more)
                if change not in by_change or "still takes" in note:
                    by_change[change] = note
        own = sorted(by_change.values(), key=lambda note: not note.startswith("Batch"))
        if any(SHARED in note for note in notes):
            own.append("Runs started together train on the same batches and share one held-out "
                       "set, so every run here uses these sizes.")
        return own

    def _abandon(self) -> None:
        """Its owner has gone: stop every run (each keeps what it learned; waiting runs never
        start), freeing their slots."""
        self.abandoned = True
        log.info("stopping training session %s: its browser tab has gone", self.runs[0].label)
        self.stop()

    def _run(self, run: RunSpec) -> None:
        """Wait for a training slot, then train in a child process and collect what it says."""
        got_slot = self._slots.acquire(should_give_up=self._stop.is_set)
        if got_slot and self._stop.is_set():  # stopped while it waited, as a slot came free
            self._slots.release()
            got_slot = False
        with self._lock:
            self._waiting.discard(run.label)
            if not got_slot:
                self._cancelled.add(run.label)
                return
        try:
            kind, payload = self._train_in_child(run)
        except Exception as error:  # e.g. the process could not start: said in words, logged
            log.exception("training run %r failed", run.label)
            kind, payload = "error", f"{type(error).__name__}: {error}"
        finally:
            self._slots.release()
        with self._lock:
            if kind == "result":
                self._results[run.label] = payload
            elif kind == "cancelled":
                self._cancelled.add(run.label)
            else:
                self._errors[run.label] = payload

    def _train_in_child(self, run: RunSpec) -> tuple[str, object]:
        context = _process_context()
        reader, writer = context.Pipe(duplex=False)
        stop = context.Event()
        child = context.Process(
            target=train_child, name=f"gatescope-train {run.label}", daemon=True,
            args=(run.task, run.cell, run.config, pack_model(run.model), writer, stop))
        child.start()
        writer.close()  # the child holds the only writing end: its death reads as EOFError
        watch = _ChildWatch(run.config.max_seconds)
        try:
            while True:
                if self._stop.is_set() and not stop.is_set():
                    stop.set()
                    watch.stop_sent()
                ending = watch.overdue()
                if ending is not None:
                    child.kill()
                    return self._ended_by_server(run, watch, ending)
                try:
                    message = next_message(reader, child)
                    if message is None:
                        continue
                    kind, payload = message
                except (EOFError, OSError):
                    child.join(timeout=1.0)
                    return "error", (f"the training process ended unexpectedly (exit code "
                                     f"{child.exitcode}); nothing was kept")
                if kind == "started":
                    watch.started = payload
                elif kind == "event":
                    with self._lock:
                        self._events[run.label].append(payload)
                elif kind == "check":
                    watch.last_check = payload
                elif kind == "snapshot":
                    snapshot = unpack_snapshot(payload)
                    watch.snapshots[snapshot.step] = snapshot  # the final one may redo a step
                elif kind == "result":
                    result, packed = payload
                    return "result", self._honest(replace(
                        result, model=unpack_model(packed),
                        snapshots=watch.snapshots_until(result.steps)))
                else:
                    log.error("training run %r failed:\n%s", run.label, payload[1])
                    return "error", payload[0]
        finally:
            stop.set()
            child.join(timeout=1.0)
            if child.is_alive():
                child.kill()
                child.join(timeout=1.0)
            reader.close()

    def _ended_by_server(self, run: RunSpec, watch: "_ChildWatch", ending: str
                         ) -> tuple[str, object]:
        """The child did not answer in time and was ended: its last held-out check (weights and
        score of the same step) is the result, or, before any check, nothing."""
        with self._lock:
            events = list(self._events[run.label])
        reached = events[-1].step if events else 0
        when = ("Stop" if ending == "stopped" else
                f"its time limit of {run.config.max_seconds:g} s")
        if watch.last_check is None and not events:
            return "cancelled", None  # ended before it trained a step: nothing to keep
        if watch.last_check is None:
            return "error", (f"the training process did not end within {STOP_GRACE_SECONDS:g} s "
                             f"of {when} and was ended at step {reached} before its first "
                             f"held-out check: nothing was kept")
        step, score, packed = watch.last_check
        model = unpack_model(packed)
        snapshots = ()
        if run.config.snapshots:  # those taken before the kept weights, then those weights
            snapshots = watch.snapshots_until(step - 1) + (
                Snapshot(step, {k: v.clone() for k, v in model.state_dict().items()}, score),)
        cause = ("stopped by the user" if ending == "stopped" else
                 f"time limit of {run.config.max_seconds:g} s reached")
        message = (f"{cause} at step {reached}; the training process did not end within "
                   f"{STOP_GRACE_SECONDS:g} s, so it was ended and the weights of step {step} "
                   f"(the last held-out check) and their score were kept")
        return "result", self._honest(TrainResult(
            model, run.task, run.cell, run.config, step, watch.seconds(), ending,
            message, score, [e for e in events if e.step <= step], snapshots))

    def _honest(self, result: TrainResult) -> TrainResult:
        """A run stopped because its tab had gone was not stopped by the user: say so."""
        if self.abandoned and result.status == "stopped":
            gone = (f"stopped because its browser tab had gone for "
                    f"{self._owner_watch.grace_seconds:g} s")
            return replace(result, message=result.message.replace("stopped by the user", gone))
        return result

    def stop(self) -> None:
        """Ask every run to stop after its current step; each keeps the weights it has."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    @property
    def done(self) -> bool:
        return bool(self._threads) and not self.running

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every run has ended (or `timeout` seconds passed); True if all ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
        return not self.running

    def snapshot(self) -> list[RunProgress]:
        with self._lock:
            return [
                RunProgress(run.label, run.task, run.cell, run.config,
                            list(self._events[run.label]), self._results.get(run.label),
                            self._errors.get(run.label),
                            waiting=run.label in self._waiting and bool(self._threads),
                            cancelled=run.label in self._cancelled, notes=run.notes)
                for run in self.runs
            ]

    def results(self) -> dict[str, TrainResult]:
        with self._lock:
            return {run.label: self._results[run.label] for run in self.runs
                    if run.label in self._results}


class _ChildWatch:
    """The server's clock on one training process: when it must have answered."""

    def __init__(self, max_seconds: float | None):
        self.max_seconds = max_seconds
        self.spawned = time.monotonic()
        self.started: float | None = None  # the child's own clock when it began (monotonic)
        self.stop_at: float | None = None
        self.last_check: tuple | None = None  # (step, Score, packed weights), the newest
        self.snapshots: dict[int, Snapshot] = {}  # by step, as the child sent them

    def snapshots_until(self, step: int) -> tuple[Snapshot, ...]:
        """The snapshots the child sent of steps up to `step`, in order (those past the
        weights a run kept are not of its model)."""
        return tuple(self.snapshots[s] for s in sorted(self.snapshots) if s <= step)

    def stop_sent(self) -> None:
        self.stop_at = time.monotonic()

    def seconds(self) -> float:
        return time.monotonic() - (self.started or self.spawned)

    def overdue(self) -> str | None:
        """"stopped" or "time limit" once the child has had its grace after either. A child
        still starting (a busy machine) hears Stop first thing: its grace runs from its start."""
        now = time.monotonic()
        if self.stop_at is not None:
            deadline = (self.stop_at + START_SECONDS if self.started is None
                        else max(self.stop_at, self.started) + STOP_GRACE_SECONDS)
            if now > deadline:
                return "stopped"
        if self.max_seconds is not None and self.started is not None \
                and now > self.started + self.max_seconds + STOP_GRACE_SECONDS:
            return "time limit"
        return None


def plan_runs(runs: list[RunSpec]) -> list[RunSpec]:
    """Each run with its batch and held-out set within budget (core.training.budget.plan_run)
    and notes on what changed. Runs started together on the same task, seed, length and batch
    train on the very same batches and share one held-out set, so they all take the smallest
    plan among them. LimitError if a run does not fit even one sequence at a time."""
    def together(run: RunSpec) -> tuple:
        c = run.config
        return (run.task, c.seed, c.seq_len, c.min_seq_len, c.batch_size, c.heldout_size)

    first = [plan_run(run.task, run.cell, run.config) for run in runs]
    smallest: dict[tuple, tuple[int, int]] = {}
    for run, plan in zip(runs, first):
        batch, heldout = smallest.get(together(run), (math.inf, math.inf))
        smallest[together(run)] = (min(batch, plan.config.batch_size),
                                   min(heldout, plan.config.heldout_size))
    planned = []
    for run in runs:
        batch, heldout = smallest[together(run)]
        plan = plan_run(run.task, run.cell, run.config, max_batch=batch, max_heldout=heldout)
        planned.append(replace(run, config=plan.config, notes=run.notes + plan.notes))
    return planned


# -- a user's choices, checked ---------------------------------------------------------------

def _check_number(value: object, name: str, low: float, high: float) -> float:
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or not low <= value <= high):
        raise ValueError(f"{name} must be a number from {low:g} to {high:g}; got {value!r}.")
    return float(value)


def _check_choice(value: object, name: str, options) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(str, options))}; got {value!r}.")
    return str(value)


def check_learning_rate(value: object) -> float:
    return _check_number(value, "The learning rate", *LEARNING_RATE_RANGE)


def make_train_config(
    task: str, *, steps: object, seconds: object, hidden_size: object = 64,
    num_layers: object = 1, optimizer: str = "adam", learning_rate: object = 2e-3,
    seq_len: object = None, init: str = "default", forget_bias: object = None,
    update_bias: object = None, clip_norm: object = 1.0, seed: object = 0,
    snapshots: object = 0,
) -> TrainConfig:
    """A TrainConfig from values a user gave (a widget, a URL, a script): every one checked
    against core.limits and the task's own length range. Raises LimitError or ValueError with a
    message that names the value and what is allowed."""
    task_obj = get_task(task)
    steps = check_training_steps(steps)
    seconds = check_training_seconds(seconds)
    hidden_size = check_hidden_size(hidden_size)
    num_layers = check_layers(num_layers)
    optimizer = _check_choice(optimizer, "The optimizer", OPTIMIZERS)
    init = _check_choice(init, "The initialiser", INITS)
    learning_rate = check_learning_rate(learning_rate)
    if seq_len is not None:
        seq_len = check_seq_len(seq_len)
        seq_len = task_obj.seq_len.resolve(seq_len)
    if forget_bias is not None:
        forget_bias = _check_number(forget_bias, "The forget-gate bias", *GATE_BIAS_RANGE)
    if update_bias is not None:
        update_bias = _check_number(update_bias, "The update-gate bias", *GATE_BIAS_RANGE)
    if clip_norm is not None:
        clip_norm = _check_number(clip_norm, "The clipping threshold", 1e-6, 1e6)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**31:
        raise ValueError(f"The seed must be a whole number from 0 to {2**31 - 1}; got {seed!r}.")
    if isinstance(snapshots, bool) or not isinstance(snapshots, numbers.Integral) or not (
            snapshots == 0 or MIN_SNAPSHOTS <= snapshots <= MAX_SNAPSHOTS):
        raise ValueError(f"The number of snapshots must be 0 (none) or a whole number from "
                         f"{MIN_SNAPSHOTS} to {MAX_SNAPSHOTS}; got {snapshots!r}.")
    return TrainConfig(
        hidden_size=hidden_size, num_layers=num_layers, optimizer=optimizer,
        learning_rate=learning_rate, seq_len=seq_len, clip_norm=clip_norm, init=init,
        forget_bias=forget_bias, update_bias=update_bias, seed=int(seed), max_steps=steps,
        max_seconds=seconds, snapshots=int(snapshots), **event_spacing(steps),
    )


def check_model_size(task: str, cell: str, config: TrainConfig) -> int:
    """The parameter count of the model `config` would train, at most `LIMITS.max_params`
    (counted on the meta device: nothing is allocated)."""
    spec = model_spec(get_task(task), cell, config.hidden_size, config.num_layers,
                      config.bidirectional)
    with torch.device("meta"), SkipDraws():  # (drawn on the meta device, it imports torch._dynamo)
        size = count_parameters(SequenceModel(spec))
    try:
        return check_param_count(size)
    except LimitError as error:
        raise LimitError(f"A {config.num_layers}-layer {cell_info(cell).display_name} with "
                         f"{config.hidden_size} units has {size:,} parameters; at most "
                         f"{LIMITS.max_params:,} can be trained here. Use fewer units or layers.",
                         limit=error.limit, value=error.value) from None


def keep_newest(trained: dict[str, TrainResult]) -> None:
    """Drop the oldest trained models (insertion order) until a session keeps at most
    MAX_TRAINED_PER_SESSION of them holding at most 3 × LIMITS.max_params parameters in all
    (one "all three cells" run of the biggest trainable models always fits). Snapshots count
    apart: at most SESSION_SNAPSHOT_BYTES in all, the oldest models' going first (the models
    stay)."""
    def total() -> int:
        return sum(count_parameters(r.model) for r in trained.values())

    while len(trained) > MAX_TRAINED_PER_SESSION or (
            len(trained) > 1 and total() > 3 * LIMITS.max_params):
        trained.pop(next(iter(trained)))

    def snapshot_total() -> int:
        return sum(_snapshot_bytes(r) for r in trained.values())

    for label in list(trained):
        if snapshot_total() <= SESSION_SNAPSHOT_BYTES:
            break
        if _snapshot_bytes(trained[label]):
            trained[label] = replace(trained[label], snapshots=())


def _snapshot_bytes(result: TrainResult) -> int:
    return sum(t.numel() * t.element_size() for s in getattr(result, "snapshots", ())
               for t in s.state.values())


def event_spacing(steps: int) -> dict[str, int]:
    """progress_every / heldout_every for a live run of `steps` steps: every step's loss while
    that stays under MAX_EVENTS_PER_RUN points (the loss's spread needs single steps), and about
    40 held-out evaluations in all."""
    return {"progress_every": max(1, math.ceil(steps / MAX_EVENTS_PER_RUN)),
            "heldout_every": max(10, steps // 40)}


def run_label(task: str, cell: str, when: datetime, taken: set[str] | None = None) -> str:
    """"adding · LSTM · 14:03:21", with " (2)", " (3)" ... if that label is already taken."""
    label = f"{task} · {cell_info(cell).display_name} · {when:%H:%M:%S}"
    taken = taken or set()
    n, unique = 1, label
    while unique in taken:
        n += 1
        unique = f"{label} ({n})"
    return unique


def train_runs(task: str, cells: list[str], config: TrainConfig,
               taken: set[str] | None = None, when: datetime | None = None) -> list[RunSpec]:
    """One RunSpec per cell, same task, data and seed: the cells see the very same batches.
    Gate biases go only to the cell that has that gate."""
    task_obj = get_task(task)
    if not cells:
        raise ValueError("Choose at least one cell to train.")
    when = when or datetime.now()
    taken = set(taken or ())
    runs = []
    for cell in cells:
        _check_choice(cell, "The cell", CELLS)
        cell_config = replace(
            config,
            forget_bias=config.forget_bias if cell == "lstm" else None,
            update_bias=config.update_bias if cell == "gru" else None,
        )
        check_model_size(task_obj.name, cell, cell_config)
        label = run_label(task_obj.name, cell, when, taken)
        taken.add(label)
        runs.append(RunSpec(label, task_obj.name, cell, cell_config))
    return runs


# -- results in words ---------------------------------------------------------------------------

def describe_result(result: TrainResult) -> tuple[str, str]:
    """(kind, sentence): kind is "error" (diverged), "success" (better than the baseline by the
    one margin every page uses, `Score.verdict`) or "warning" (finite, but no clear gain)."""
    score = result.score
    value = f"{score.value:.4g}" if math.isfinite(score.value) else "∞"
    versus = f"the baseline ({score.baseline_name}) scores {score.baseline:.4g}"
    if result.diverged:
        return "error", f"Diverged: {result.message}. Held-out {score.metric} {value}; {versus}."
    # a run cut short says so first: what it learned so far is kept
    ended = "" if result.status == "finished" else f"{result.message[:1].upper()}{result.message[1:]}. "
    if score.verdict == "better":
        return "success", (f"{ended}Learned: held-out {score.metric} {value}, while {versus} "
                           f"({score.margin_text}).")
    return "warning", (f"{ended}Did not learn (yet): held-out {score.metric} {value}, no clear "
                       f"gain over the baseline, which scores {score.baseline:.4g} "
                       f"({score.baseline_name}; {score.margin_text}).")


__all__ = [
    "RunSpec", "RunProgress", "TrainingSession", "make_train_config", "train_runs", "run_label",
    "plan_runs", "STOP_GRACE_SECONDS", "ABANDONED_GRACE_SECONDS",
    "event_spacing", "check_learning_rate", "describe_result",
    "check_model_size", "keep_newest",
    "LIMITS", "LimitError",
]
