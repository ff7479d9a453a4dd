"""The Train page's logic, without Streamlit: its URL state and the runs it starts.

    state = TrainState.from_query(st.query_params)  # invalid values fall back to defaults
    runs = state.runs(taken=set(trained))           # checked RunSpecs, one per chosen cell
    baseline_line(task, config)                      # the live metric chart's baseline

A link spells every choice in plain lowercase, e.g.
`?task=adding&cells=lstm&optimizer=sgd&lr=0.01&hidden=32`; defaults are left out.

    downloads(result, stem)                          # a trained model's files, built on click
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace

from typing import Callable

from core.cells import CELLS
from core.io.exports import history_file, model_files
from core.limits import LIMITS
from core.model import INITS
from core.tasks import TASKS, get_task
from core.training.loop import OPTIMIZERS, TrainConfig, TrainResult, heldout_baseline
from core.training.session import RunSpec, make_train_config, train_runs
from core.training.snapshots import MAX_SNAPSHOTS, MIN_SNAPSHOTS
from core.views.explore import normalised_length
from core.views.state import PageState, number_of, one_of, whole

#: Which cells a run trains: all three side by side on the same batches, or one.
CELL_CHOICES = {"all": tuple(CELLS), **{key: (key,) for key in CELLS}}
CELL_CHOICE_LABELS = {"all": "All three", **{key: c.display_name for key, c in CELLS.items()}}
OPTIMIZER_LABELS = {"adam": "Adam", "sgd": "SGD", "rmsprop": "RMSprop"}
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0)
HIDDEN_SIZES = tuple(h for h in (4, 8, 16, 32, 64, 128, 256, 512) if h <= LIMITS.max_hidden_size)
#: A gate's total bias at the start ("default": PyTorch's init); "-1" ... "3" as written.
GATE_BIASES = ("default", "-1", "0", "1", "2", "3")
CLIP_NORMS = ("off", "0.25", "0.5", "1", "2", "5")
MAX_SEED = 1_000_000
#: How many snapshots of the model a run may keep (0: none): the stops of the page's slider,
#: from the fewest a run with snapshots keeps (its start and its end) to the most.
SNAPSHOT_COUNTS = tuple(sorted({0, MIN_SNAPSHOTS, 5, 10, 20, 30, MAX_SNAPSHOTS}))
#: Points of the training loss whose standard deviation the spread chart shows.
SPREAD_WINDOW = 50
#: Links made before the URL spelled choices by key named the task by its title and the
#: cells as shown ("Adding problem", "All three"); they still open the same view.
_TITLES = {task.title: name for name, task in TASKS.items()}


@dataclass(frozen=True)
class TrainState(PageState):
    """Every choice on the Train page; kept in the URL so a link sets up the same run."""

    task: str = one_of("adding", TASKS, aliases=_TITLES)
    cells: str = one_of("all", CELL_CHOICES, aliases={"all three": "all"})
    len: int = whole(0, 0, LIMITS.max_seq_len)  # the task's length knob; 0 = its default
    optimizer: str = one_of("adam", OPTIMIZERS)
    # The defaults are chosen so the lesson comes out (core/claims.py, train_defaults_lesson):
    # with all three cells training at once on 2 cores, the LSTM and the GRU learn the adding
    # problem within the time limit and the RNN does not. At 2e-3, hidden 64 and biases 1 / 0
    # the LSTM was still at the baseline after 1000 steps.
    lr: float = number_of(1e-2, LEARNING_RATES)
    hidden: int = number_of(32, HIDDEN_SIZES)
    layers: int = whole(1, 1, LIMITS.max_layers)
    init: str = one_of("default", INITS)
    forget_bias: str = one_of("2", GATE_BIASES)  # LSTM: f = σ(2) ≈ 0.88 keeps c (and its gradient)
    update_bias: str = one_of("2", GATE_BIASES)  # GRU: z = σ(2) ≈ 0.88 keeps h
    clip: str = one_of("1", CLIP_NORMS)
    steps: int = whole(1500, 1, LIMITS.max_training_steps)
    seconds: int = whole(60, 1, int(LIMITS.max_training_seconds))
    seed: int = whole(0, 0, MAX_SEED)
    # Enough points for Compare's and Explore's training-step slider to show a run's start as
    # well as its slow end; each is a copy of the model (about 17 KB at these defaults), and
    # the planner keeps fewer of a big model's, with a note (core/training/budget.py).
    snapshots: int = number_of(20, SNAPSHOT_COUNTS)

    def normalised(self) -> "TrainState":
        """The length within the task's range."""
        return replace(self, len=normalised_length(self.task, self.len))

    @property
    def cell_keys(self) -> tuple[str, ...]:
        return CELL_CHOICES[self.cells]

    def seq_len(self) -> int | None:
        """The length to train at: None for a task of fixed length."""
        length = get_task(self.task).seq_len
        return None if length.fixed else self.len or length.default

    def config(self) -> TrainConfig:
        """The checked TrainConfig; ValueError (or LimitError) with a message that names the
        value and what is allowed."""
        return make_train_config(
            self.task, steps=self.steps, seconds=self.seconds, hidden_size=self.hidden,
            num_layers=self.layers, optimizer=self.optimizer, learning_rate=self.lr,
            seq_len=self.seq_len(), init=self.init, forget_bias=_number(self.forget_bias),
            update_bias=_number(self.update_bias), clip_norm=_number(self.clip), seed=self.seed,
            snapshots=self.snapshots)

    def runs(self, taken: set[str] | None = None) -> list[RunSpec]:
        """One run per chosen cell, on the very same batches; labels avoid those in `taken`."""
        return train_runs(self.task, list(self.cell_keys), self.config(), taken=taken)


def snapshot_label(count: int) -> str:
    """The snapshots slider's reading: "none" for 0."""
    return "none" if count == 0 else str(count)


def _number(choice: str) -> float | None:
    """A bias or clipping choice as a number: None for "default" / "off"."""
    return None if choice in ("default", "off") else float(choice)


def baseline_line(task: str, config: TrainConfig) -> tuple[float, str]:
    """(value, name) of the trivial baseline on the run's own held-out set: the line on the
    live metric chart, measured on the set the live curve is (once per run's settings)."""
    return _baseline(task, tuple(sorted(config.to_dict().items()))), get_task(task).baseline_name


@functools.lru_cache(maxsize=32)
def _baseline(task: str, config_items: tuple) -> float:
    return heldout_baseline(task, TrainConfig(**dict(config_items)))


def file_stem(label: str) -> str:
    """A run's label as a file name: "adding · LSTM · 14:03:21" -> "adding_lstm_14_03_21"."""
    return re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_").lower() or "model"


#: (button label, the file's bytes or text, made only when clicked, file name, MIME type)
Download = tuple[str, Callable[[], bytes | str], str, str]


def downloads(result: TrainResult, stem: str) -> list[Download]:
    """A trained model's files: its weights and its Config (core.io.exports.model_files), and
    its History where the run kept snapshots (exports.history_file: a file of its own, since
    the upload loader would find a recurrent module per snapshot in the weights file)."""
    files: list[Download] = [
        ("Weights", lambda: model_files(result)[0], f"{stem}.safetensors",
         "application/octet-stream"),
        ("Config", lambda: model_files(result)[1], f"{stem}.json", "application/json")]
    if getattr(result, "snapshots", ()):
        files.append(("History", lambda: history_file(result), f"{stem}_history.safetensors",
                      "application/octet-stream"))
    return files
