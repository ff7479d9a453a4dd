"""What gatescope measures on traces and modules: gradient decay per step, spectral radius,
training memory, timings.

The Compare page and the Gradient lab ask the same questions of any cell: how fast does the
gradient shrink (or grow) per step back in time, what does the recurrent weight scale do to
that, how much memory does training need and how long does a trace take. Each answer is a pure
function here, measured on this machine rather than quoted.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.engine.tracing import Trace, cell_type_of


@dataclass(frozen=True)
class GradientDecay:
    """The norm of d loss / d h_t as a function of distance from the last step."""

    distance: np.ndarray  # (T,): 0 at the last step, T-1 at the first
    norm: np.ndarray  # (T,): the gradient norm at that distance
    per_step: float  # fitted factor per step back in time: < 1 vanishes, > 1 explodes
    span: int  # how many steps the fit used
    log_intercept: float = float("nan")  # the fit's log(norm) at distance 0
    #: Where the curve stops falling (see `floor_start`): the distance from which it is flat,
    #: left out of the fit, and its level (the median norm there); None when it falls to the end.
    floor_from: int | None = None
    floor: float | None = None

    def fitted(self) -> np.ndarray:
        """The fitted norm at every distance: exp(log_intercept) · per_step^distance."""
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            return np.exp(self.log_intercept + self.distance * np.log(self.per_step))

    @property
    def half_life(self) -> float:
        """Steps back in time over which the gradient halves (inf when it does not shrink)."""
        if not 0 < self.per_step < 1:
            return float("inf")
        return float(np.log(0.5) / np.log(self.per_step))


def gradient_decay(trace: Trace, layer: int = -1, direction: int = 0) -> GradientDecay:
    """Fit norm(d loss / d h_t) ≈ a · per_step^(distance from the end) by least squares in log space.

    The fit skips exact zeros (steps the loss does not depend on) and stops at the first
    non-finite value, so an exploding run is fitted over the steps where it is still finite.
    """
    norms = trace.grad_hidden[layer, direction].astype(np.float64)
    if direction == 1:
        # a reverse direction carries gradient towards the end of the input, not the start
        norms = norms[::-1]
    return fit_decay(norms[::-1])


#: A flat tail is a floor (left out of the fit) only once the gradient has fallen at least this
#: many decades below its largest value, and only if it then stays within FLOOR_BAND decades for
#: at least FLOOR_STEPS steps. A trained RNN's gradient can fall 16 decades in 28 steps and then
#: stay near 1e-16 of its value at the end for the rest of the sequence (measured in float64
#: too, so it is not rounding: a slow remnant, far too small to teach anything); a line fitted
#: through both parts misses both.
FLOOR_DEPTH = 4.0
FLOOR_BAND = 1.0
FLOOR_STEPS = 3


def floor_start(norms_by_distance: np.ndarray) -> int | None:
    """The first distance from which the curve stops falling: it lies FLOOR_DEPTH decades or
    more below the norm at the last step (distance 0), no later norm is more than FLOOR_BAND
    decades from it, and the tail falls less than half as fast per step as the curve before it.
    None when there is no such flat tail of at least FLOOR_STEPS steps."""
    norms = np.asarray(norms_by_distance, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(np.isfinite(norms) & (norms > 0), np.log10(norms), np.nan)
    if np.isnan(logs).all() or not np.isfinite(norms).all():
        return None
    start = logs[0]
    if not np.isfinite(start):
        return None
    # the lowest and highest values at or after each distance
    tail_min = np.fmin.accumulate(logs[::-1])[::-1]
    tail_max = np.fmax.accumulate(logs[::-1])[::-1]
    last = len(logs) - 1
    for d in range(1, len(logs) - FLOOR_STEPS + 1):
        if not (np.isfinite(logs[d:]).all() and logs[d] <= start - FLOOR_DEPTH):
            continue
        falling = (start - logs[d]) / d  # decades per step before d
        flat = (logs[d] - logs[last]) / (last - d)  # and after it
        if tail_min[d] >= logs[d] - FLOOR_BAND and tail_max[d] <= logs[d] + FLOOR_BAND \
                and flat < falling / 2:
            return d
    return None


def fit_decay(norms_by_distance: np.ndarray) -> GradientDecay:
    """The decay fit of `gradient_decay` on norms already ordered by distance from the end
    (index 0 = the last step). Values at or below float32's smallest normal number count as
    vanished (underflowed) and are left out, like exact zeros; so is a flat tail where the curve
    has stopped falling (`floor_start`), which the result reports as its floor."""
    norms = np.asarray(norms_by_distance, dtype=np.float64)
    distance = np.arange(len(norms))
    finite = np.isfinite(norms)
    floor_from = floor_start(norms)
    usable_until = len(norms) if finite.all() else int(np.argmin(finite))
    if floor_from is not None:
        usable_until = min(usable_until, floor_from)
    usable = norms[:usable_until] > np.finfo(np.float32).tiny
    x, y = distance[:usable_until][usable], np.log(norms[:usable_until][usable])
    if len(x) < 2:
        per_step = intercept = float("nan")
    else:
        slope, intercept = np.polyfit(x, y, 1)
        per_step = float(np.exp(slope))
    floor = float(np.median(norms[floor_from:])) if floor_from is not None else None
    return GradientDecay(distance=distance, norm=norms, per_step=per_step, span=int(len(x)),
                         log_intercept=float(intercept), floor_from=floor_from, floor=floor)


def spectral_radius(matrix: torch.Tensor) -> float:
    """The largest |eigenvalue| of a square matrix."""
    return float(torch.linalg.eigvals(matrix.detach().double()).abs().max())


def recurrent_blocks(rnn: nn.RNNBase, layer: int = 0, direction: int = 0) -> list[torch.Tensor]:
    """The H×H recurrent matrices, one per gate in PyTorch's order (views into weight_hh)."""
    suffix = f"l{layer}" + ("_reverse" if direction else "")
    weight = getattr(rnn, f"weight_hh_{suffix}")
    return list(weight.split(rnn.hidden_size, dim=0))


def with_spectral_radius(rnn: nn.RNNBase, radius: float) -> nn.RNNBase:
    """A copy of `rnn` whose every recurrent block (each gate's H×H matrix) has this spectral radius.

    For a tanh RNN, a radius below 1 makes gradients vanish (Pascanu et al. 2013); well above 1,
    with relu, they explode. Blocks that are all zeros stay zero.
    """
    if not (radius >= 0 and np.isfinite(radius)):
        raise ValueError(f"The spectral radius must be a finite number ≥ 0; got {radius}.")
    cell_type_of(rnn)
    scaled = copy.deepcopy(rnn)
    with torch.no_grad():
        for layer in range(scaled.num_layers):
            for direction in range(2 if scaled.bidirectional else 1):
                for block in recurrent_blocks(scaled, layer, direction):
                    current = spectral_radius(block)
                    if current > 0:
                        block.mul_(radius / current)
    return scaled


def training_memory_bytes(model: nn.Module, inputs: torch.Tensor, loss_fn) -> dict[str, int]:
    """Memory one training step needs: the parameters, their gradients, and every tensor autograd
    keeps for the backward pass (counted as the forward saves them, each storage once).

    Counting saved tensors is exact and repeatable, unlike the process's resident size, which
    other sessions and the allocator's caching blur.
    """
    seen: set[int] = set()
    saved = 0

    def pack(tensor: torch.Tensor):
        nonlocal saved
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key not in seen and storage.nbytes():
            seen.add(key)
            saved += storage.nbytes()
        return tensor

    model.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = loss_fn(model(inputs))
    loss.backward()
    model.zero_grad(set_to_none=True)
    parameters = sum(p.numel() * p.element_size() for p in model.parameters())
    return {"parameters": parameters, "gradients": parameters, "activations": saved,
            "total": 2 * parameters + saved}


def median_seconds(fn, repeats: int = 5) -> float:
    """Median wall time of `fn()` over `repeats` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))
