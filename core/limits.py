"""The app's documented limits, in one place, checked on the server.

Widget bounds are a convenience for the user, not a defence: a URL parameter, a script or a
crafted session can send any value. Everything in core/ that accepts a size, a length, a file or
a budget from a user calls one of the `check_*` functions below, and a value over a limit raises
`LimitError` (a `ValueError`) whose message names the limit, its bound and the value received.

The values suit a public hosted deployment with about 1 GB of memory and 2 shared CPU cores,
opened by a room of students at once:

| Limit                  | Field                  | Value            | Why                                                      |
|------------------------|------------------------|------------------|----------------------------------------------------------|
| Sequence length        | `max_seq_len`          | 1 to 2,000 steps | a full trace (states, gates, gradients) stays a few MB and fast; plots stay readable |
| Hidden size            | `max_hidden_size`      | 1 to 512 units   | larger than any classic demo; keeps one step's matmuls small on CPU |
| Layers                 | `max_layers`           | 1 to 4           | deeper stacks add cost and little to the lesson          |
| Typed text             | `max_text_chars`       | 2,000 characters | even character by character it fits the sequence limit   |
| Upload size            | `max_upload_bytes`     | 20,971,520 bytes (20 MiB) | = `server.maxUploadSize = 20` in `.streamlit/config.toml`; a float32 state dict of the parameter limit |
| Uploaded model size    | `max_params`           | 5,000,000 parameters | 20 MB as float32, whatever dtype the file used       |
| Training steps         | `max_training_steps`   | 1 to 10,000 steps | the shipped models train well within it                 |
| Training time          | `max_training_seconds` | 120 seconds      | one user's run cannot hold a shared core for long        |
| Traced values          | `max_trace_values`     | 1,024,000 per state (layers × directions × steps × units) | one trace stays under 25 MB: 2,000 steps × 512 units, or 4 layers × 2 directions × 2,000 steps × 64 units |
| Training at once       | `max_concurrent_training_runs` | 3 runs per server | more would only slow every run and every page on 2 cores; the rest wait for a slot |
| Training memory        | `max_training_bytes`   | 201,326,592 bytes (192 MiB) per run | what a run allocates (weights, optimiser state, autograd's saved tensors, data, one evaluation chunk), estimated before it starts (core/training/budget.py); a bigger batch is scaled down, a model that does not fit one sequence is refused. With 3 runs at their largest, the server and its training processes stay under the README's 1.5 GB |
| Trials per search      | `max_search_trials`    | 1 to 60 trials per study started from the Search page | 20 per cell; a room's searches end within minutes |
| Time per trial         | `max_search_trial_seconds` | 60 seconds   | a trial is a short training run; the steps cap comes first on the task defaults |
| Workers per search     | `max_search_workers`   | 1 to 2 local worker processes | each takes one of the training slots above; the third stays free for the Train page |
| Searches at once       | `max_concurrent_searches` | 2 per server  | a third visitor's search would only wait for slots; they can watch a running one instead |

The README cites this table; a test checks that it matches the values in `LIMITS`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

#: The largest float32 (numpy's `np.finfo(np.float32).max`): the models compute in float32, and a
#: larger input is infinite there. Here, in a module that imports nothing of ours, because the
#: readers of inputs (core.io) and the tasks (core.tasks) both check against it.
FLOAT32_MAX = float.fromhex("0x1.fffffep+127")


@dataclass(frozen=True)
class Limits:
    """Upper bounds on what one request may ask of the server (lower bounds are 1 unless noted)."""

    max_seq_len: int = 2_000
    max_hidden_size: int = 512
    max_layers: int = 4
    max_text_chars: int = 2_000
    max_upload_bytes: int = 20 * 1024 * 1024
    max_params: int = 5_000_000
    max_training_steps: int = 10_000
    max_training_seconds: float = 120.0
    max_trace_values: int = 1_024_000
    max_concurrent_training_runs: int = 3
    max_training_bytes: int = 192 * 2**20
    max_search_trials: int = 60
    max_search_trial_seconds: float = 60.0
    max_search_workers: int = 2
    max_concurrent_searches: int = 2


#: The limits the app enforces.
LIMITS = Limits()


class LimitError(ValueError):
    """A value outside a documented limit; the message names the limit and the value.

    `limit` is the `Limits` field name (e.g. "max_seq_len"), `value` what was received.
    """

    def __init__(self, message: str, *, limit: str, value: object):
        super().__init__(message)
        self.limit = limit
        self.value = value


def _show(value: object) -> str:
    """A short, printable rendering of a value received from a user."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    return f"{float(value):,g}"


def _check_whole(value: object, *, label: str, unit: str, limit: str, low: int, high: int) -> int:
    """`value` as an int if it is a whole number in [low, high], else LimitError."""
    allowed = f"{label} must be a whole number from {low:,} to {high:,} {unit}".strip()
    if isinstance(value, bool):  # True is an int in Python, but never a meaningful size
        raise LimitError(f"{allowed}; got {_show(value)}.", limit=limit, value=value)
    if isinstance(value, numbers.Integral):
        number = int(value)
    elif isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
        number = int(value)  # 50.0 from a float widget or a JSON number is fine
    else:
        raise LimitError(f"{allowed}; got {_show(value)}.", limit=limit, value=value)
    if not low <= number <= high:
        raise LimitError(f"{allowed}; got {number:,}.", limit=limit, value=value)
    return number


def check_seq_len(n: object) -> int:
    """The sequence length as an int, within 1..`max_seq_len` steps."""
    return _check_whole(n, label="Sequence length", unit="steps", limit="max_seq_len",
                        low=1, high=LIMITS.max_seq_len)


def check_hidden_size(n: object) -> int:
    """The hidden size as an int, within 1..`max_hidden_size` units."""
    return _check_whole(n, label="Hidden size", unit="units", limit="max_hidden_size",
                        low=1, high=LIMITS.max_hidden_size)


def check_layers(n: object) -> int:
    """The number of stacked layers as an int, within 1..`max_layers`."""
    return _check_whole(n, label="Number of layers", unit="", limit="max_layers",
                        low=1, high=LIMITS.max_layers)


def check_param_count(n: object) -> int:
    """A model's parameter count as an int, at most `max_params`."""
    return _check_whole(n, label="Model size", unit="parameters", limit="max_params",
                        low=0, high=LIMITS.max_params)


def check_training_steps(n: object) -> int:
    """The number of training steps as an int, within 1..`max_training_steps`."""
    return _check_whole(n, label="Training steps", unit="steps", limit="max_training_steps",
                        low=1, high=LIMITS.max_training_steps)


def check_training_seconds(seconds: object) -> float:
    """A training time budget in seconds as a float, above 0 and at most `max_training_seconds`."""
    high = LIMITS.max_training_seconds
    allowed = f"Training time must be more than 0 and at most {high:,g} seconds"
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, numbers.Real)
        or not math.isfinite(seconds)
        or not 0 < seconds <= high
    ):
        raise LimitError(f"{allowed}; got {_show(seconds)}.", limit="max_training_seconds",
                         value=seconds)
    return float(seconds)


def check_search_trials(n: object) -> int:
    """Trials of a search started from the page, within 1..`max_search_trials`."""
    return _check_whole(n, label="Trials", unit="trials", limit="max_search_trials",
                        low=1, high=LIMITS.max_search_trials)


def check_search_workers(n: object) -> int:
    """Local worker processes of a search, within 1..`max_search_workers`."""
    return _check_whole(n, label="Workers", unit="processes", limit="max_search_workers",
                        low=1, high=LIMITS.max_search_workers)


def check_text(text: object) -> str:
    """Typed text, unchanged, if it has at most `max_text_chars` characters (Unicode code points).

    Empty text is within the limit; whether a task accepts it is the task's business.
    """
    high = LIMITS.max_text_chars
    if not isinstance(text, str):
        raise LimitError(f"Text must be a string of at most {high:,} characters; got "
                         f"{type(text).__name__}.", limit="max_text_chars", value=text)
    if len(text) > high:
        raise LimitError(f"Text is too long: at most {high:,} characters; got {len(text):,}.",
                         limit="max_text_chars", value=len(text))
    return text


def check_upload_size(nbytes: object) -> int:
    """An upload's size in bytes as an int, at most `max_upload_bytes`.

    An empty upload (0 bytes) is within the limit; the reader of that file says why it is unusable.
    """
    high = LIMITS.max_upload_bytes
    if (isinstance(nbytes, numbers.Integral) and not isinstance(nbytes, bool)
            and int(nbytes) > high):
        raise LimitError(
            f"Upload is too large: at most {high:,} bytes ({high / 2**20:g} MiB); "
            f"got {int(nbytes):,} bytes ({int(nbytes) / 2**20:.1f} MiB).",
            limit="max_upload_bytes", value=nbytes)
    return _check_whole(nbytes, label="Upload size", unit="bytes", limit="max_upload_bytes",
                        low=0, high=high)


def check_trace_size(num_layers: int, num_directions: int, seq_len: int, hidden_size: int) -> int:
    """The values one traced state holds (layers × directions × steps × units), at most
    `max_trace_values`: a bigger module or a longer input is refused before anything runs."""
    values = num_layers * num_directions * seq_len * hidden_size
    high = LIMITS.max_trace_values
    if values > high:
        shape = (f"{num_layers} layer(s) × {num_directions} direction(s) × {seq_len:,} steps × "
                 f"{hidden_size:,} units")
        longest = high // (num_layers * num_directions * hidden_size)
        raise LimitError(
            f"Too much to trace: {shape} = {values:,} values per state; the limit is "
            f"{high:,}. With this model, use at most {longest:,} steps.",
            limit="max_trace_values", value=values)
    return values
