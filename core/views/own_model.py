"""A user's own whole model on their own input, with the objective they pick: no Streamlit.

    model = load_user_model(files)                    # core.io.user_model
    fed = feed_text(model, "hello", by="characters")  # or feed_ids / feed_numbers
    result = run_own(model, fed, Objective("loss", index=4))

The trace is of the user's recurrent module on what their embedding makes of their input; the
gradients are of what `Objective` names, computed through their head; "the model's answer" is
their head's prediction. `Objective.describe` says all of it in a sentence for the page.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from core.engine import Trace, trace
from core.io.sequences import parse_ids, token_label, tokenize
from core.io.user_model import UserModel
from core.limits import FLOAT32_MAX, check_seq_len, check_trace_size
from core.numerics import flush_denormal
from core.sharing import torch_threads

#: What the gradients can be of (the issue's list), in the order a page offers them.
OBJECTIVES = ("output", "loss", "next", "sum", "unit")
OBJECTIVE_LABELS = {
    "output": "head's output: one class",
    "loss": "loss against my target",
    "next": "next-token loss (all steps)",
    "unit": "one hidden unit",
    "sum": "sum of last step's output",
}
LOSSES = ("cross-entropy", "mse")
#: How the head's outputs are read: scores of classes (softmax) or numbers (regression).
READINGS = ("classes", "values")


@dataclass(frozen=True)
class Objective:
    """What the gradients are of. `step` is a position in the input (-1: the last; for one
    hidden unit of a reverse direction, -1 means position 0, where that direction ends);
    `index` is the class / output (for "output" and a cross-entropy "loss"), or the unit, counted
    across directions (H + u is unit u of the reverse direction); `target` is the value(s) an
    MSE loss compares with."""

    kind: str = "output"
    index: int = 0
    step: int = -1
    loss: str = "cross-entropy"
    target: str = ""  # the MSE loss's target as typed: one number, or one per output
    reading: str = "classes"

    @property
    def target_values(self) -> list[float]:
        """The typed target's numbers; ValueError naming what is not a number."""
        values = []
        for part in self.target.replace(",", " ").split():
            try:
                values.append(float(part))
            except ValueError:
                raise ValueError(f"“{part[:20]}” is not a number: type the loss's target as "
                                 "numbers.") from None
        if not values or not np.isfinite(values).all():
            raise ValueError("Type the loss's target as one or more finite numbers.")
        return values

    def available(self, model: UserModel) -> tuple[str, ...]:
        """The objectives that make sense for this model (a head's, a language model's)."""
        kinds = ["sum", "unit"]
        if model.head is not None:
            kinds[:0] = ["output", "loss"]
            if model.vocab is not None and model.class_names is not None:
                kinds.insert(2, "next")
        return tuple(kind for kind in OBJECTIVES if kind in kinds)

    def describe(self, model: UserModel, tokens: list[str], length: int) -> str:
        """The sentence the page shows under the chart: what the gradients are of."""
        at = self._position(model, length)
        where = f"at step {at}" + (f" (“{tokens[at]}”)" if 0 <= at < len(tokens) else "")
        if self.kind == "output":
            return f"gradients of the head's output {self._name(model)} {where}"
        if self.kind == "loss":
            if self.loss == "mse":
                return (f"gradients of the MSE loss of the head's output {where} against "
                        f"{', '.join(f'{v:g}' for v in self.target_values)}")
            return (f"gradients of the cross-entropy loss {where} against the class "
                    f"{self._name(model)}")
        if self.kind == "next":
            return ("gradients of the next-token loss: the mean cross-entropy of predicting each "
                    "token of the input from the ones before it")
        if self.kind == "unit":
            hidden = model.rnn.hidden_size
            direction = "reverse" if self.index >= hidden else "forward"
            return (f"gradients of hidden unit {self.index % hidden} of the top layer's "
                    f"{direction} direction {where}")
        note = " (your head is not applied: pick another objective to go through it)" if \
            model.head is not None else ""
        return f"gradients of the sum of the top layer's output at the last step{note}"

    def _name(self, model: UserModel) -> str:
        names = model.class_names
        if names is not None and 0 <= self.index < len(names):
            return f"{self.index} ({shown_token(names[self.index])})"
        return str(self.index)

    def _position(self, model: UserModel, length: int) -> int:
        if self.step >= 0:
            return self.step
        reverse_unit = self.kind == "unit" and self.index >= model.rnn.hidden_size
        return 0 if reverse_unit else length - 1

    def check(self, model: UserModel, length: int) -> None:
        """ValueError, in the page's words, for an objective this model or input cannot have."""
        if self.kind not in self.available(model):
            raise ValueError(f"“{OBJECTIVE_LABELS.get(self.kind, self.kind)}” needs "
                             + ("a head (a Linear layer after the recurrent module)."
                                if self.kind in ("output", "loss") else
                                "a head whose outputs are the vocabulary's tokens."))
        if not 0 <= self._position(model, length) < length:
            raise ValueError(f"Step {self.step} is outside the input (steps 0 to {length - 1}).")
        width = model.output_size if self.kind in ("output", "loss") else \
            model.directions * model.rnn.hidden_size
        if self.kind in ("output", "unit") or (self.kind == "loss" and
                                                self.loss == "cross-entropy"):
            if not 0 <= self.index < width:
                what = "unit" if self.kind == "unit" else "class / output"
                raise ValueError(f"There is no {what} {self.index}: this model has {width} "
                                 f"(0 to {width - 1}).")
        if self.kind == "loss" and self.loss == "mse" and \
                len(self.target_values) not in (1, width):
            wanted = "1 target value" if width == 1 else f"1 or {width} target values"
            raise ValueError(f"Type {wanted} for the MSE loss (the head gives {width} per step); "
                             f"you typed {len(self.target_values)}.")

    def function(self, model: UserModel, ids: torch.Tensor | None):
        """The objective as the tracer takes it: the top layer's output (T, D*H) -> a scalar."""
        head = model.head
        kind, index = self.kind, self.index

        def of(output: torch.Tensor) -> torch.Tensor:
            at = self._position(model, output.shape[0])
            if kind == "sum":
                return output[-1].sum()
            if kind == "unit":
                return output[at, index]
            scores = head(output)
            if kind == "output":
                return scores[at, index]
            if kind == "next":
                return F.cross_entropy(scores[:-1], ids[1:])
            if self.loss == "mse":
                target = torch.tensor(self.target_values, dtype=scores.dtype).expand(
                    scores.shape[1])
                return F.mse_loss(scores[at], target)
            return F.cross_entropy(scores[at][None], torch.tensor([index]))
        return of


def shown_token(token: str) -> str:
    """A vocabulary token as a sentence or metric shows it: “s” in quotes, and whitespace or
    invisible tokens by name ("space", "newline"), as core.io.sequences names them."""
    label = token_label(token)
    return f"“{token}”" if label.startswith("`") else label


@dataclass(frozen=True)
class Fed:
    """What the model received: the features its recurrent module reads (T, input_size), the
    token ids they came from (None for numbers), each step's label, and what changed."""

    features: torch.Tensor
    ids: torch.Tensor | None
    tokens: tuple[str, ...]
    unknown: tuple[str, ...] = ()
    note: str = ""


def feed_text(model: UserModel, text: str, by: str) -> Fed:
    """Typed text through the user's vocabulary and embedding."""
    _needs_embedding(model, "text")
    if model.vocab is None:
        raise ValueError("Upload the model's vocabulary file beside its weights to type text "
                         "(or type token ids instead).")
    tokenized = tokenize(text, model.vocab, by)
    ids = torch.tensor(tokenized.ids, dtype=torch.long)
    return Fed(_embedded(model, ids), ids, tokenized.tokens, tokenized.unknown,
               getattr(tokenized, "note", ""))


def feed_ids(model: UserModel, text: str) -> Fed:
    """Raw token ids typed by the user, through their embedding."""
    _needs_embedding(model, "token ids")
    ids = torch.tensor(parse_ids(text, model.embedding.num_embeddings), dtype=torch.long)
    names = model.vocab.tokens if model.vocab is not None else None
    tokens = tuple(names[i] if names else str(i) for i in ids.tolist())
    return Fed(_embedded(model, ids), ids, tokens)


def feed_numbers(model: UserModel, values: np.ndarray, note: str = "") -> Fed:
    """Numbers (T, input_size), fed to the recurrent module exactly as given."""
    if model.embedding is not None:
        raise ValueError("This model reads token ids through its embedding: type text or ids, "
                         "or pick “no embedding” to feed the recurrent module numbers directly.")
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2 or values.shape[1] != model.rnn.input_size:
        raise ValueError(f"The model reads {model.rnn.input_size} number"
                         f"{'s' if model.rnn.input_size > 1 else ''} per step; the input has "
                         f"{values.shape[-1] if values.ndim else 0}.")
    check_seq_len(len(values))
    features = torch.from_numpy(values.copy())
    return Fed(features, None, tuple(str(t) for t in range(len(values))), note=note)


def _needs_embedding(model: UserModel, what: str) -> None:
    if model.embedding is None:
        raise ValueError(f"This model has no embedding, so it cannot read {what}: it reads "
                         f"{model.rnn.input_size} number(s) per step. Type numbers or upload a "
                         "CSV / NPY file instead.")


def _embedded(model: UserModel, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.embedding(ids).float()


@dataclass
class OwnResult:
    """A trace of the user's model and what their head makes of it."""

    trace: Trace
    fed: Fed
    objective_note: str
    prediction: str  # the head's answer at the objective's step ("—" without a head)
    top: list[tuple[str, float]]  # the head's most likely classes with probabilities, or []


#: One intra-op thread, as for the shipped models' traces (core/views/explore.py says why).
TRACE_THREADS = 1


def run_own(model: UserModel, fed: Fed, objective: Objective) -> OwnResult:
    """Trace the user's module on `fed`, with gradients of `objective`."""
    length = fed.features.shape[0]
    if length == 0:
        raise ValueError("The input is empty.")
    objective.check(model, length)
    rnn = model.rnn
    check_trace_size(rnn.num_layers, model.directions, length, rnn.hidden_size)
    if not bool(torch.isfinite(fed.features).all()):
        raise ValueError(f"The input is too large for the model: it computes in float32, whose "
                         f"numbers end at about {FLOAT32_MAX:.1e}.")
    with torch_threads(TRACE_THREADS), flush_denormal():
        tr = trace(rnn, fed.features, objective.function(model, fed.ids))
    prediction, top = _prediction(model, tr, objective)
    note = objective.describe(model, list(fed.tokens), length)
    return OwnResult(tr, fed, note, prediction, top)


def _prediction(model: UserModel, tr: Trace, objective: Objective
                ) -> tuple[str, list[tuple[str, float]]]:
    """The head's answer at the objective's step: the likeliest classes, or the values."""
    if model.head is None:
        return "—", []
    at = objective._position(model, tr.seq_len)
    at = at if objective.kind in ("output", "loss", "unit") else tr.seq_len - 1
    with torch.no_grad():
        scores = model.head(torch.as_tensor(tr.output[at]))
    if objective.reading == "values" or scores.numel() == 1:
        values = ", ".join(f"{v:.4g}" for v in scores.tolist()[:8])
        return f"{values} at step {at}", []
    probabilities = torch.softmax(scores, 0)
    best = torch.topk(probabilities, min(3, probabilities.numel()))
    names = model.class_names
    label = (lambda i: shown_token(names[i])) if names else (lambda i: f"class {i}")
    top = [(label(i), float(p)) for p, i in zip(best.values.tolist(), best.indices.tolist())]
    return f"{top[0][0]} (p = {top[0][1]:.2f}) at step {at}", top
