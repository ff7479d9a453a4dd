"""gatescope's built-in tasks: data, encoding of typed input, loss, metric and baseline.

    from core.tasks import TASKS, get_task
    task = get_task("adding")
    example = task.sample(seed=0)            # one seeded sequence
    example = task.encode("0.3 0.7* 0.1 0.9*")  # what a user typed
    score = task.evaluate(model, seed=1)     # held-out metric next to the trivial baseline
"""

from __future__ import annotations

from core.tasks.adding import AddingTask
from core.tasks.agreement import AgreementTask
from core.tasks.charlm import CharLMTask
from core.tasks.counting import CountingTask
from core.tasks.airline import AirlineTask, load_airline
from core.tasks.base import (
    Batch, Example, Metric, Score, SeqLen, Task, Vocab, rng_for, token_f1, tokenize,
)
from core.tasks.names import NamesTask
from core.tasks.random_labels import RandomTask
from core.tasks.sentiment import SentimentTask
from core.tasks.seq2seq import CopyTask, ReverseTask

TASKS: dict[str, Task] = {
    task.name: task
    for task in (AddingTask(), AgreementTask(), AirlineTask(), SentimentTask(), NamesTask(),
                 CharLMTask(), CountingTask(), RandomTask())
}
#: Sequence-to-sequence tasks, whose model is an encoder handing one state to a decoder
#: (core/seq2seq.py), not one recurrent network with a head. Explore and Compare show them; the
#: pages that train, search or probe one network (Train, Search, the Gradient and
#: Interpretability labs) list TASKS. Reversal (core/tasks/seq2seq.py) is its easier variant,
#: kept for experiments: copying is the one that shows where the one-vector hand-off breaks.
SEQ2SEQ_TASKS: dict[str, Task] = {task.name: task for task in (CopyTask(),)}
#: Every task a page can show, in the order pages list them.
ALL_TASKS: dict[str, Task] = {**TASKS, **SEQ2SEQ_TASKS}


def get_task(name: str | Task) -> Task:
    """The task called `name` (a Task passes through)."""
    if isinstance(name, Task):
        return name
    try:
        return ALL_TASKS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(ALL_TASKS)}") from None


__all__ = [
    "TASKS", "SEQ2SEQ_TASKS", "ALL_TASKS", "get_task", "Task", "Example", "Batch", "Score", "Metric", "SeqLen", "Vocab",
    "AddingTask", "AgreementTask", "AirlineTask", "SentimentTask", "NamesTask", "CharLMTask",
    "CountingTask", "RandomTask", "CopyTask", "ReverseTask",
    "load_airline", "rng_for", "token_f1", "tokenize",
]
