"""Where a page's model comes from, and how to describe it honestly: one `ModelChoice` type for
every page.

Sources, one word each:
- "shipped": the trained model of models/ for a task and cell (core.training.zoo);
- "session": a model trained in this browser session on the Train page (a TrainResult);
- "random": a fresh random init, labelled untrained wherever it is shown;
- "upload": a user's own model from their files (core.io.user_model: the recurrent module, and
  the embedding, head and vocabulary found beside it), with the parts chosen beside it
  (`Upload`); gatescope's own download comes back as the task model it was.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass, field, replace
from typing import Mapping

from torch import nn

from core.cells import cell_info, cell_of_module
from core.io.loading import quoted
from core.io.user_model import Choice, UserModel, load_user_model
from core.model import SequenceModel
from core.seq2seq import EncoderDecoderModel
from core.training.snapshots import model_at
from core.tasks import Score, get_task
from core.text import printable
from core.training import zoo
from core.training.zoo import architecture_of
from core.training.loop import TrainResult

SOURCES = ("shipped", "session", "random", "upload")
SOURCE_LABELS = {"shipped": "shipped trained model", "session": "trained in this session",
                 "random": "fresh random init (untrained)", "upload": "my own weights (upload)"}
FILENAME_CHARS = 80  # how much of an uploaded file's name a label shows
UNTRAINED_NOTE = ("This model is untrained: its gates and predictions mean nothing about the task. "
                  "Use it to see what training changes.")


@dataclass
class ModelChoice:
    """The model a page runs, where it came from, and what is known of how well it does."""

    rnn: nn.Module  # the recurrent module that is traced (an encoder-decoder's: its encoder)
    # the task's whole model (features, rnn, head; or an EncoderDecoderModel); None for an upload
    model: SequenceModel | EncoderDecoderModel | None
    source: str  # one of SOURCES
    label: str  # how the page names it
    score: Score | None = None  # held-out, next to the baseline (None: random init, upload)
    note: str = ""  # a warning to show beside the figures (e.g. "untrained")
    train_seconds: float = math.nan  # the recorded wall time of its training run
    train_steps: int = 0
    batch_size: int = 50  # its training batch size (Compare measures a step on one)
    user: UserModel | None = None  # an upload's whole model: embedding, head, vocabulary
    snapshot: int | None = None  # the training step of its history it is at (None: as trained)

    @property
    def cell(self) -> str:
        return cell_of_module(self.rnn)

    @property
    def trained(self) -> bool:
        return self.source != "random"

    @property
    def key(self) -> str:
        """Identifies the weights for caching: the label, plus the object for a session's own
        models (two browser sessions may both have an "adding · LSTM · 10:00")."""
        if self.source == "shipped":
            network = architecture_of(self.model.spec) if self.model is not None else ""
            name = f"shipped {network}".rstrip()
            return name if self.snapshot is None else f"{name}@step {self.snapshot}"
        return f"{self.label}@{id(self.rnn)}"


def score_text(score: Score) -> str:
    """"held-out MSE 0.000692 (baseline “always predict 1”: 0.165)"."""
    return (f"held-out {score.metric} {score.value:.3g} (baseline “{score.baseline_name}”: "
            f"{score.baseline:.3g})")


#: The networks a page offers for a task's shipped and random models: "one" (one layer, one
#: direction: every task's) and the zoo's others where the task ships them.
ONE = "one"
NETWORK_LABELS = {ONE: "one layer, one direction", "bidirectional": "bidirectional",
                  "stacked": "stacked: two layers"}
NETWORKS = tuple(NETWORK_LABELS)


def recurrent_module(model: SequenceModel | EncoderDecoderModel) -> nn.Module:
    """What a ModelChoice names as its recurrent module: the network, or an encoder-decoder's
    encoder (its cell, sizes and the state it hands over are the decoder's too)."""
    return model.encoder if isinstance(model, EncoderDecoderModel) else model.rnn


def networks(task: str) -> list[str]:
    """The networks the zoo ships for `task`, "one" first."""
    return [architecture or ONE for architecture in zoo.architectures(task)]


def _architecture(network: str) -> str:
    return "" if network == ONE else network


def _network_words(network: str) -> str:
    return "" if network == ONE else f" ({NETWORK_LABELS[network]})"


def shipped(task: str, cell: str, network: str = ONE) -> ModelChoice:
    """The shipped trained model of task x cell (one layer, one direction, or another network
    the zoo ships for the task), with its recorded training and score."""
    task_obj = get_task(task)
    architecture = _architecture(network)
    if (task_obj.name, cell) not in set(zoo.available()) or (
            architecture not in zoo.shipped_architectures(task_obj.name, cell)):
        raise ValueError(f"No shipped trained {cell_info(cell).display_name}"
                         f"{_network_words(network)} for {task_obj.title} yet: train one on "
                         "the Train page, or choose “fresh random init” to look at an untrained "
                         "model.")
    info = zoo.model_info(task_obj.name, cell, architecture)
    model = zoo.load_model(task_obj.name, cell, architecture)
    score = info.heldout
    return ModelChoice(recurrent_module(model), model, "shipped",
                       f"shipped trained {cell_info(cell).display_name}{_network_words(network)}"
                       f" · {score_text(score)}",
                       score, train_seconds=float(info.train_seconds),
                       train_steps=int(info.steps), batch_size=int(info.config["batch_size"]))


def from_session(label: str, result: TrainResult) -> ModelChoice:
    """A model trained in this browser session (the Train page's TrainResult)."""
    model = result.model.eval()
    return ModelChoice(model.rnn, model, "session",
                       f"trained in this session: {label} · {result.status}, "
                       f"{result.steps} steps · "
                       f"{score_text(result.score)}",
                       result.score, train_seconds=float(result.seconds),
                       train_steps=int(result.steps), batch_size=int(result.config.batch_size))


def random_init(task: str, cell: str, seed: int, network: str = ONE) -> ModelChoice:
    """A fresh random init of the shipped architecture: labelled untrained everywhere."""
    model = zoo.build_model(task, cell, seed=seed, num_layers=2 if network == "stacked" else 1,
                            bidirectional=network == "bidirectional")
    return ModelChoice(recurrent_module(model), model, "random",
                       f"UNTRAINED {cell_info(cell).display_name}{_network_words(network)} "
                       f"(random init, seed {seed})", note=UNTRAINED_NOTE)


@dataclass(frozen=True)
class Upload:
    """An uploaded weights file and what the visitor chose for it: which recurrent module
    (`prefix`, None when the file has one), the vanilla RNN's nonlinearity (None: the file's
    metadata, else tanh), the embedding and head ("auto": found in the file; None: none; or a
    name), and any other files uploaded with it (a vocabulary). Not in the URL: an upload is
    not either."""

    data: bytes
    filename: str
    prefix: str | None = None
    nonlinearity: str | None = None
    embedding: Choice = "auto"
    head: Choice = "auto"
    extra: tuple[tuple[bytes, str], ...] = ()
    #: The model the page already read from these files with these choices, if it has (the
    #: sidebar does, for its pickers): used instead of reading them again, so a session holds
    #: one copy of the weights. Not part of what the upload is (`cache_key`, equality).
    reading: UserModel | None = field(default=None, compare=False, repr=False)

    @property
    def files(self) -> list[tuple[bytes, str]]:
        return [(self.data, self.filename), *self.extra]

    @property
    def cache_key(self) -> str:
        """What decides the model this upload gives: the bytes' digests and every choice."""
        return "|".join([*(hashlib.sha256(data).hexdigest() + name for data, name in self.files),
                         self.prefix or "", self.nonlinearity or "", str(self.embedding),
                         str(self.head)])


def uploaded(data: bytes | Upload, filename: str = "", prefix: str | None = None,
             nonlinearity: str | None = None) -> ModelChoice:
    """A user's own model from their upload (checked, never executed): the recurrent module
    at `prefix` when the file holds several, an nn.RNN with `nonlinearity` unless the file's
    metadata names another (the file wins; the label and note say so), and the embedding, head
    and vocabulary found beside it. gatescope's own download comes back with its task model."""
    upload = data if isinstance(data, Upload) else Upload(data, filename, prefix, nonlinearity)
    user = upload.reading if _read_as_chosen(upload) else load_user_model(
        upload.files, prefix=upload.prefix, nonlinearity=upload.nonlinearity,
        embedding=upload.embedding, head=upload.head)
    rnn = user.rnn
    module = f", module {quoted(user.prefix)}" if upload.prefix else ""
    sizes = (f"input {rnn.input_size}, hidden {rnn.hidden_size}, {rnn.num_layers} layer(s)"
             f"{', bidirectional' if rnn.bidirectional else ''}")
    note = overridden = ""
    asked = upload.nonlinearity
    if isinstance(rnn, nn.RNN):
        sizes = f"{rnn.nonlinearity}, {sizes}"
        if asked is not None and rnn.nonlinearity != asked:
            # the Nonlinearity choice has a default, so "you chose" was said to a visitor who
            # chose nothing: the note says which wins, not who chose
            overridden = f" · {rnn.nonlinearity} as the file says"
            note = (f"This file's metadata says its RNN uses {rnn.nonlinearity}: it is read so. "
                    f"The Nonlinearity choice ({asked} now) is for files that do not say.")
    # The file's name as the visitor's browser sent it may hold a right-to-left override, which
    # would reverse the rest of the label wherever it is shown: visible characters only, short.
    shown = printable(upload.filename, FILENAME_CHARS)
    if user.trained is not None:  # gatescope's download with its Config: the whole run
        result = user.trained
        return ModelChoice(rnn, result.model.eval(), "upload",
                           f"your {cell_info(result.cell).display_name} from {shown} · "
                           f"{result.steps} steps · {score_text(result.score)}",
                           result.score, train_seconds=float(result.seconds),
                           train_steps=int(result.steps),
                           batch_size=int(result.config.batch_size), user=user)
    return ModelChoice(rnn, user.sequence_model, "upload",
                       f"your {type(rnn).__name__} from {shown}{module} ({sizes}){overridden}",
                       note=note, user=user)


#: A history's index meaning "the model it ended with": every page's default.
FINAL = -1


@functools.lru_cache(maxsize=12)
def shipped_history(task: str, cell: str) -> tuple[tuple[int, SequenceModel], ...]:
    """The shipped model of task x cell along its training ((step, model), step 0 to the
    shipped weights), read once per process; () where none ships (only adding and
    agreement do). Shared by every visitor: nobody may change these models."""
    if (task, cell) not in set(zoo.available()) or not zoo.history_path(task, cell).exists():
        return ()
    return tuple(zoo.load_history(task, cell))


def at_snapshot(choice: ModelChoice, index: int, task: str,
                result: TrainResult | None = None) -> ModelChoice:
    """`choice` as it was at the `index`-th step of its history (FINAL: as it ended, itself).
    Its score is the snapshot's own where the run measured it at that step, else unknown: the
    final model's score would be a claim about other weights."""
    if choice.source == "shipped":
        steps = [step for step, _ in shipped_history(task, choice.cell)]
    else:
        steps = [snapshot.step for snapshot in getattr(result, "snapshots", ())]
    if index == FINAL or not steps or index >= len(steps) - 1:
        return choice
    if choice.source == "shipped":
        step, model = shipped_history(task, choice.cell)[index]
        recorded = {s.step: s.score for s in zoo.history_snapshots(task, choice.cell)[0]}
        score = recorded.get(step)  # what the history file says was measured there, if any
    else:
        snapshot = result.snapshots[index]
        model, score = model_at(result, snapshot.step), snapshot.score
    step, last = steps[index], steps[-1]
    label = (f"{cell_info(choice.cell).display_name} at training step {step:,} of {last:,} · "
             + (score_text(score) if score is not None else "held-out score not measured at "
                "this step"))
    return replace(choice, rnn=model.rnn, model=model, label=label, score=score,
                   train_steps=step, note=UNTRAINED_NOTE if step == 0 else choice.note,
                   snapshot=step)


def _read_as_chosen(upload: Upload) -> bool:
    """Whether the page's reading of the files is the model `upload`'s choices make."""
    user = upload.reading
    if user is None:
        return False
    parts = [(upload.embedding, user.embedding_name), (upload.head, user.head_name)]
    nonlinearity = getattr(user.rnn, "nonlinearity", None)
    return ((upload.prefix is None or upload.prefix.rstrip(".") == user.prefix)
            and all(choice == "auto" or choice == name for choice, name in parts)
            and (upload.nonlinearity in (None, nonlinearity) or user.task is not None))


def session_labels(task: str, trained: Mapping[str, TrainResult], cell: str | None = None
                   ) -> list[str]:
    """Labels of this session's trained models for `task` (and `cell`), newest first."""
    return [label for label, r in reversed(list(trained.items()))
            if getattr(r, "task", None) == task and getattr(r, "model", None) is not None
            and (cell is None or getattr(r, "cell", None) == cell)]
