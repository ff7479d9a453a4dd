"""Monthly airline passengers 1949-1960 (Box & Jenkins series G), forecast one month ahead.

The 144 values (thousands of passengers) ship in data/airline_passengers.csv. The first 75%
(1949-1957) train, the last 25% (1958-1960) test. The series grows, so the test years lie above
anything seen in training: the model works on month-to-month changes of the logarithm,
standardised with training-period statistics, which are stationary enough to carry over. A
prediction z becomes passengers as `last * exp(mean + std * z)`.

Baselines on the test years: persistence (next = last, RMSE ~50) and the seasonal naive
forecast (same month last year, RMSE ~42).
"""

from __future__ import annotations

import csv
import functools
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from core.limits import LIMITS, check_text
from core.tasks.base import (
    STREAM_SAMPLE, Batch, Example, Metric, SeqLen, Task, parse_numbers, rng_for, to_float,
)

DATA_FILE = Path(__file__).resolve().parents[2] / "data" / "airline_passengers.csv"
TRAIN_FRACTION = 0.75
MAX_USER_VALUES = LIMITS.max_seq_len + 1  # values -> one fewer change per step


@functools.cache
def load_airline() -> tuple[tuple[str, ...], np.ndarray]:
    """The shipped series: months ("1949-01" ...) and passengers (thousands), 144 of each,
    read-only (the result is cached and shared).

    Read with the csv module: two plain columns need no pandas, whose import would add 0.3 s
    to every cold start of the app (every task is built when the app starts).
    """
    with DATA_FILE.open(newline="") as file:
        rows = list(csv.reader(file))
    if rows[:1] != [["month", "passengers"]] or len(rows) != 145:
        raise RuntimeError(f"{DATA_FILE} is not the 144-month airline series")
    passengers = np.array([float(value) for _, value in rows[1:]])
    passengers.setflags(write=False)
    return tuple(month for month, _ in rows[1:]), passengers


def amount(value: float) -> str:
    """A series' value as a reader reads it: whole up to a million ("432"), then three
    significant digits ("1.02e+308", not a 309-digit number), and what float64 cannot hold
    said in words."""
    if not math.isfinite(value):
        return "more than 1.8e+308 (beyond float64)" if value > 0 else "not a number"
    return f"{value:.0f}" if abs(value) < 1e6 else f"{value:.3g}"


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(predicted) - np.asarray(actual)) ** 2)))


class AirlineTask(Task):
    name = "airline"
    title = "Airline passengers"
    description = (
        "Forecast next month's airline passengers (1949-1960, thousands) from the last months. "
        "The model reads month-to-month changes of the logarithm, so the growing trend does not "
        "push the test years (1958-1960) outside what it learned. Compare it with 'same as last "
        "month' and 'same month last year'."
    )
    kind = "regression"
    input_size = 1
    seq_len = SeqLen(default=24, min=1, max=96, unit="months of look-back")
    metric = Metric("test RMSE", higher_is_better=False, unit="thousand passengers")
    baseline_name = "persistence (next month = this month)"

    def __init__(self) -> None:
        self.months, self.values = load_airline()  # tuple of "YYYY-MM", float64 passengers
        self.split = int(round(TRAIN_FRACTION * len(self.values)))  # first test month: 108
        # change[t] = log y[t] - log y[t-1] for t >= 1 (change[0] is unused)
        self.change = np.concatenate([[np.nan], np.diff(np.log(self.values))])
        train_changes = self.change[1 : self.split]
        self.mean = float(train_changes.mean())
        self.std = float(train_changes.std())

    # -- scaling -----------------------------------------------------------------------------
    def scale(self, values: Sequence[float]) -> np.ndarray:
        """Standardised log-changes of a positive series: len(values) - 1 numbers."""
        return (np.diff(np.log(np.asarray(values, dtype=np.float64))) - self.mean) / self.std

    def to_passengers(self, prediction, previous) -> np.ndarray:
        """Model output (a standardised log-change) -> the forecast value itself."""
        z = np.asarray(torch.as_tensor(prediction).detach().double().numpy())
        with np.errstate(over="ignore"):  # a series near float64's top forecasts inf: said so
            return np.asarray(previous, dtype=np.float64) * np.exp(self.mean + self.std * z)

    # -- data --------------------------------------------------------------------------------
    def train_targets(self, look_back: int) -> np.ndarray:
        """Months (indices) forecast in training: every one with a full window before it."""
        return np.arange(look_back + 1, self.split)

    def test_targets(self) -> np.ndarray:
        return np.arange(self.split, len(self.values))

    def windows(self, targets: np.ndarray, look_back: int) -> Batch:
        scaled = (self.change - self.mean) / self.std
        inputs = np.stack([scaled[t - look_back : t] for t in targets])[..., None]
        return Batch(
            inputs=torch.tensor(inputs, dtype=torch.float32),
            targets=torch.tensor(scaled[targets], dtype=torch.float32),
            lengths=torch.full((len(targets),), look_back, dtype=torch.long),
            info={
                "month": torch.as_tensor(targets),
                "previous": torch.tensor(self.values[targets - 1]),
                "actual": torch.tensor(self.values[targets]),
                "last_year": torch.tensor(self.values[targets - 12]),
            },
        )

    def batch(self, rng, batch_size, seq_len=None) -> Batch:
        look_back = self.seq_len.resolve(seq_len)
        return self.windows(rng.choice(self.train_targets(look_back), size=batch_size), look_back)

    def heldout(self, seed=0, n=None, seq_len=None) -> Batch:
        """The test years 1958-1960 (the split is fixed: seed and n do not change it)."""
        return self.windows(self.test_targets(), self.seq_len.resolve(seq_len))

    def train_set(self, seq_len=None) -> Batch:
        look_back = self.seq_len.resolve(seq_len)
        return self.windows(self.train_targets(look_back), look_back)

    def score(self, predictions, batch) -> float:
        return rmse(self.to_passengers(predictions, batch.info["previous"]), batch.info["actual"])

    def baseline(self, batch) -> float:
        return rmse(batch.info["previous"], batch.info["actual"])

    def extra_scores(self, model, predictions, batch) -> dict:
        look_back = int(batch.lengths[0])
        train = self.train_set(look_back)
        return {
            "seasonal_naive_rmse": rmse(batch.info["last_year"], batch.info["actual"]),
            "train_rmse": self.score(self.predict(model, train), train),
            "look_back": look_back,
        }

    def sample(self, seed: int, seq_len: int | None = None) -> Example:
        """A window from the test years ending just before a randomly chosen month."""
        look_back = self.seq_len.resolve(seq_len)
        t = int(rng_for(seed, STREAM_SAMPLE).choice(self.test_targets()))
        b = self.windows(np.array([t]), look_back)
        return Example(
            b.inputs[0], b.targets[0],
            tokens=[f"{m}: {v:.0f}" for m, v in zip(self.months[t - look_back : t],
                                                   self.values[t - look_back : t])],
            info={"previous": float(self.values[t - 1]), "actual": float(self.values[t]),
                  "target_month": self.months[t]},
        )

    def from_values(self, values: Sequence[float], labels: Sequence[str] | None = None) -> Example:
        """A user's own series (e.g. a CSV column): positive numbers, oldest first. The model
        reads all of it and forecasts the value after the last one."""
        try:
            array = np.asarray([float(v) for v in values], dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("the series must contain numbers only") from None
        if len(array) < 2:
            raise ValueError("need at least 2 values to see one month-to-month change")
        if len(array) > MAX_USER_VALUES:
            raise ValueError(f"at most {MAX_USER_VALUES} values, got {len(array)}")
        if not np.all(np.isfinite(array)):
            raise ValueError("the series contains a missing or non-finite value (NaN or inf)")
        if np.any(array <= 0):
            raise ValueError(
                "all values must be positive: the model works on changes of their logarithm"
            )
        if labels is None:
            labels = [f"{v:g}" for v in array]
        elif len(labels) != len(array):
            raise ValueError("need one label per value")
        inputs = torch.tensor(self.scale(array), dtype=torch.float32)[:, None]
        return Example(inputs, None, [str(x) for x in labels[1:]],
                       info={"previous": float(array[-1]), "values": array.tolist()})

    def encode(self, text: str) -> Example:
        """Positive numbers separated by spaces or commas, oldest first."""
        check_text(text)
        return self.from_values([to_float(p) for p in parse_numbers(text, "values")])

    def forecast(self, model, values: Sequence[float], seq_len: int | None = None) -> np.ndarray:
        """One-step-ahead forecasts over a series: entry t forecasts values[t] from the (up to
        look-back) changes before it; the last entry forecasts the month after the series.
        Entries 0 and 1 are NaN (no change seen yet)."""
        look_back = self.seq_len.resolve(seq_len)
        array = np.asarray(self.from_values(values).info["values"])
        scaled = self.scale(array)  # scaled[k] = change from k to k+1
        out = np.full(len(array) + 1, np.nan)
        model_was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                for t in range(2, len(array) + 1):
                    if t - 1 >= look_back:
                        break
                    x = torch.tensor(scaled[: t - 1], dtype=torch.float32)[None, :, None]
                    out[t] = self.to_passengers(model(x)[0], array[t - 1])
                full = np.arange(max(2, look_back + 1), len(array) + 1)
                if len(full):
                    x = np.stack([scaled[t - 1 - look_back : t - 1] for t in full])[..., None]
                    z = model(torch.tensor(x, dtype=torch.float32))
                    out[full] = self.to_passengers(z, array[full - 1])
        finally:
            model.train(model_was_training)
        return out

    def judge(self, prediction, example: Example) -> tuple[str, bool | None]:
        """Off by so many passengers (the model's own unit, a standardised change, means
        nothing to a reader)."""
        if "actual" not in example.info:
            return "", None
        forecast = float(self.to_passengers(prediction, example.info["previous"]))
        return f"off by {amount(abs(forecast - example.info['actual']))} passengers", None

    def fed_note(self, example: Example) -> str:
        """The model never sees passengers: it reads standardised month-to-month changes of
        their logarithm, one fewer than the values (the first has no month before it)."""
        given = example.info.get("values")
        counted = (f"{len(example)} numbers from your {len(given)} values"
                   if given is not None else f"{len(example)} numbers for the months shown")
        return (f"What the model read: {counted}, each the change of log passengers from the "
                f"month before, standardised with the training years' mean {self.mean:.4f} and "
                f"standard deviation {self.std:.4f}: x_t = (log y_t − log y_(t−1) − "
                f"{self.mean:.4f}) / {self.std:.4f}. Its output is such a change, turned back "
                "into passengers from the last month.")

    def describe(self, prediction, example=None) -> str:
        if example is None or "previous" not in example.info:
            return f"log-change {float(prediction):+.3f} (standardised)"
        value = float(self.to_passengers(prediction, example.info["previous"]))
        return f"next month ≈ {amount(value)}"  # the answer alone: the target is beside it
