"""The tracing engine: every state, gate and per-step gradient of an nn.RNN, nn.LSTM or nn.GRU.

`trace(rnn, x)` runs PyTorch's own module on one sequence, from zeros or from a given
`initial_state`, and returns a `Trace` with everything gatescope draws. It works on the modules
as they are (any trained `torch.nn.RNN`, `LSTM` or `GRU`, ours or a user's) and never loops over
timesteps in Python for the expensive parts. Its three steps, `traced_forward`,
`traced_gradients` and `trace_of`, also trace a decoder started from an encoder's final state
in one backward pass through both (core.engine.handoff).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from core.cells import CELLS, cell_of_module
from core.engine.interventions import (
    Clamps,
    Intervention,
    checked_interventions,
    clamped_forward,
    clamped_gates_and_cell,
    clamps_by_run,
)
from core.engine.onednn import SavedByKernel, onednn_lstm, runs_on_onednn
from core.engine.scans import chain_in_place, forward_scan

#: Gate names per cell, in the row order of PyTorch's `weight_ih_l{k}` (from core.cells).
GATE_NAMES: dict[str, tuple[str, ...]] = {key: cell.gate_names for key, cell in CELLS.items()}


@dataclass
class Trace:
    """What happened inside a recurrent module on one sequence.

    Arrays are float32; L = num_layers, D = num_directions, T = timesteps, H = hidden_size.
    For a reverse direction, index t still means input position t.
    """

    cell_type: str  # "rnn", "lstm" or "gru"
    hidden: np.ndarray  # (L, D, T, H): h_t as PyTorch computes it
    cell: np.ndarray | None  # (L, D, T, H): c_t, LSTM only
    gates: dict[str, np.ndarray]  # name -> (L, D, T, H), after the gate's nonlinearity
    grad_hidden: np.ndarray  # (L, D, T): L2 norm of d objective / d h_t, every path counted
    grad_cell: np.ndarray | None  # (L, D, T): L2 norm of d objective / d c_t, LSTM only
    grad_input: np.ndarray  # (T,): L2 norm of d objective / d x_t
    output: np.ndarray  # (T, D*H): the module's output sequence
    objective: float
    # (L, D): L2 norm of d objective / d h0, the state each layer and direction starts from (the
    # given initial state, else zeros); None only in a Trace built by hand
    grad_initial: np.ndarray | None = None
    grad_initial_cell: np.ndarray | None = None  # (L, D): the same for an LSTM's c0

    @property
    def num_layers(self) -> int:
        return self.hidden.shape[0]

    @property
    def num_directions(self) -> int:
        return self.hidden.shape[1]

    @property
    def seq_len(self) -> int:
        return self.hidden.shape[2]

    @property
    def hidden_size(self) -> int:
        return self.hidden.shape[3]


def cell_type_of(rnn: nn.Module) -> str:
    """'rnn', 'lstm' or 'gru' for a torch recurrent module; ValueError for anything else."""
    return cell_of_module(rnn)


InitialState = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


@torch.enable_grad()  # the kernels save what their backward needs only with grad enabled
def trace(
    rnn: nn.RNN | nn.LSTM | nn.GRU,
    x: torch.Tensor,
    objective: Callable[[torch.Tensor], torch.Tensor] | None = None,
    *,
    interventions: Sequence[Intervention] = (),
    initial_state: InitialState | None = None,
) -> Trace:
    """Run `rnn` on the sequence `x` (T, input_size) and record everything inside it.

    `objective` maps the top layer's output sequence (T, D*H) to a scalar; the gradients in the
    trace are of that scalar. Default: the sum of the top layer's output at the last timestep.

    `initial_state` is the state the module starts from, as `rnn(x, h0)` takes it for one
    sequence: h0 of shape (L*D, H) in PyTorch's order (layer-major, direction-minor: row
    layer * D + 1 starts that layer's reverse direction, at the last input position), or the
    pair (h0, c0) for an LSTM. Default: zeros. Either way `Trace.grad_initial` holds the norm
    of d objective / d h0 per layer and direction (and `grad_initial_cell` of d / d c0).

    `interventions` (core.engine.interventions.Intervention) clamp units of h, c or a gate at
    chosen steps; the trace is then of the intervened network, gradients included (the gradient
    of a clamped h_t or c_t is with respect to the value carried on; none passes back through
    the clamped units). Layers and directions without interventions run as without any; those
    with some run `clamped_forward`: the fused kernel still, taking the clamps as extra inputs
    or, stretch by stretch, as edited weights. They start from zeros: not yet together with
    `initial_state`.

    How it stays fast (no Python loop over timesteps with autograd):
    1. Each layer and direction runs as one call of PyTorch's fused kernel, so every h_t comes
       from the same kernel `rnn(x)` uses. Its input is widened by a zero-valued "probe" e_t that
       enters the gate pre-activations through a block of the recurrent weights (W_hh for RNN and
       LSTM). Adding W_hh e_t at step t is exactly a perturbation of h_{t-1} on its recurrent
       path, so the fused backward hands us d objective / d h_{t-1} through time as d/d e_t
       (at t = 0, that of the initial state). GRU's reset gate multiplies only part of W_hh h,
       so it gets two probes (see `_probe_block`).
    2. One backward pass (weights detached: no weight gradients are computed) gives the probe
       gradients, the gradient at each layer's output (the upward path), and d objective / d x.
    3. A float32 LSTM on CPU from a zero state runs on oneDNN, which saves every gate and cell
       state for its own backward; they are read from its workspace and checked (`onednn_lstm`).
       Otherwise the gates are recomputed for all timesteps at once, two matmuls per layer and
       direction from the known h_{t-1}, and the cell state is a scan. The remaining gradient
       recurrences (LSTM d c_t, GRU's direct z * h path) are elementwise linear scans, done in
       numpy.
    The three steps are `traced_forward`, `traced_gradients` and `trace_of`, which
    core.engine.handoff also runs across an encoder and a decoder.
    """
    cell_type = checked_module(rnn)
    x = checked_input(rnn, x)
    if objective is None:
        objective = _last_step_sum
    starts = None if initial_state is None else _checked_initial_state(rnn, cell_type, initial_state)
    clamps: dict[tuple[int, int], Clamps] = {}
    if interventions:
        if starts is not None:
            raise ValueError(
                "Interventions start from the zero state: trace from a given initial_state without "
                "interventions, or intervene without initial_state."
            )
        checked = checked_interventions(cell_type, rnn, interventions, x.shape[0])
        clamps = clamps_by_run(checked, x.shape[0], rnn.hidden_size)

    forward = traced_forward(rnn, cell_type, x, clamps=clamps, starts=starts)
    objective_value = checked_objective(objective, forward.top_output)
    (gradients,) = traced_gradients(objective_value, [forward])
    return trace_of(forward, gradients, objective_value)


@dataclass
class LayerWeights:
    w_ih: torch.Tensor
    w_hh: torch.Tensor
    b_ih: torch.Tensor | None
    b_hh: torch.Tensor | None


@dataclass
class RunStart:
    """The state one layer and direction starts from: (H,) tensors, part of the autograd graph
    where they come from another run (an encoder's final state)."""

    hidden: torch.Tensor
    cell: torch.Tensor | None  # LSTM only


@dataclass
class _Run:
    """One layer and direction: its weights, its input and output in processing order."""

    weights: LayerWeights
    layer_input: torch.Tensor  # (T, in), detached, processing order
    probe: torch.Tensor  # (T, K) zeros, the leaf whose gradient carries d/d h_{t-1}
    output: torch.Tensor  # (T, H), processing order, part of the autograd graph (clamps applied)
    saved: SavedByKernel | None  # what an LSTM kernel saved for its backward, where readable
    clamps: Clamps | None = None  # its interventions, in processing order
    start: RunStart | None = None  # None: zeros
    last_cell: torch.Tensor | None = None  # (H,) c_{T-1} in the graph, where asked for (a hand-off)


@dataclass
class TracedForward:
    """`traced_forward`'s result: the module's runs in the graph, ready for one backward pass."""

    cell_type: str
    shape: tuple[int, int]  # (L, D)
    x: torch.Tensor  # (T, in), the leaf whose gradient is d objective / d x
    runs: list[_Run]  # layer-major, direction-minor
    top_output: torch.Tensor  # (T, D*H) in input order


@dataclass
class TracedGradients:
    """What the backward pass gives one `TracedForward`, run by run."""

    grad_x: torch.Tensor
    grad_probes: list[torch.Tensor]
    grad_outputs: list[torch.Tensor]
    grad_last_cells: list[torch.Tensor | None]


def traced_forward(
    rnn: nn.Module,
    cell_type: str,
    x: torch.Tensor,
    *,
    clamps: dict[tuple[int, int], Clamps] | None = None,
    starts: list[RunStart] | None = None,
    keep_last_cell: bool = False,
) -> TracedForward:
    """Forward through the fused kernels, one layer and direction at a time (processing order:
    a reverse direction sees its input flipped, exactly as PyTorch runs it), each with its zero
    probe. `starts`: one per run, layer-major (None: all from zeros). `keep_last_cell`: keep each
    LSTM run's final c in the graph, for a state handed on to another module."""
    num_layers, num_dirs, hidden_size = rnn.num_layers, 2 if rnn.bidirectional else 1, rnn.hidden_size
    seq_len = x.shape[0]
    clamps = clamps or {}
    x = x.detach().requires_grad_(True)
    runs: list[_Run] = []
    layer_input = x
    for layer in range(num_layers):
        layer_runs = []
        for direction in range(num_dirs):
            weights = _layer_weights(rnn, layer, direction)
            run_input = layer_input.detach() if direction == 0 else layer_input.detach().flip(0)
            seen_input = layer_input if direction == 0 else layer_input.flip(0)
            probe_block = _probe_block(cell_type, weights, hidden_size)
            probe = seen_input.new_zeros(seq_len, probe_block.shape[1], requires_grad=True)
            run_clamps = clamps.get((layer, direction))
            start = None if starts is None else starts[layer * num_dirs + direction]
            last_cell = None
            if run_clamps is None:
                output, saved, last_cell = _fused(
                    rnn,
                    cell_type,
                    torch.cat([seen_input, probe], dim=1),
                    torch.cat([weights.w_ih, probe_block], dim=1),
                    weights,
                    start,
                    keep_last_cell,
                )
            else:
                run_clamps = run_clamps.in_processing_order(seq_len, reverse=direction == 1)
                nonlinearity = getattr(rnn, "nonlinearity", "tanh")
                batch = seen_input.unsqueeze(1)
                output = clamped_forward(cell_type, nonlinearity, batch, weights, run_clamps, probe, probe_block)
                output, saved = output.squeeze(1), None
            layer_runs.append(_Run(weights, run_input, probe, output, saved, run_clamps, start, last_cell))
        runs += layer_runs
        outputs = [layer_runs[0].output] + [r.output.flip(0) for r in layer_runs[1:]]
        layer_input = torch.cat(outputs, dim=1) if num_dirs == 2 else outputs[0]
    return TracedForward(cell_type, (num_layers, num_dirs), x, runs, layer_input)


def checked_objective(objective: Callable[[torch.Tensor], torch.Tensor], top_output: torch.Tensor) -> torch.Tensor:
    """The objective's value on the top output; ValueError unless it is a scalar tensor."""
    value = objective(top_output)
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise ValueError("The objective must return a scalar tensor.")
    return value


def traced_gradients(objective_value: torch.Tensor, forwards: list[TracedForward]) -> list[TracedGradients]:
    """One backward pass from the objective to every forward's input, probes, run outputs and
    kept final cells; what the objective never reached has zero gradient."""
    wrt: list[torch.Tensor] = []
    for forward in forwards:
        wrt += [forward.x] + [run.probe for run in forward.runs] + [run.output for run in forward.runs]
        wrt += [run.last_cell for run in forward.runs if run.last_cell is not None]
    grads = torch.autograd.grad(objective_value.reshape(()), wrt, allow_unused=True)
    grads = [torch.zeros_like(leaf) if grad is None else grad for grad, leaf in zip(grads, wrt)]
    split = []
    position = 0
    for forward in forwards:
        count = len(forward.runs)
        grad_x = grads[position]
        probes = grads[position + 1 : position + 1 + count]
        outputs = grads[position + 1 + count : position + 1 + 2 * count]
        position += 1 + 2 * count
        last_cells: list[torch.Tensor | None] = []
        for run in forward.runs:
            if run.last_cell is None:
                last_cells.append(None)
            else:
                last_cells.append(grads[position])
                position += 1
        split.append(TracedGradients(grad_x, probes, outputs, last_cells))
    return split


def trace_of(forward: TracedForward, gradients: TracedGradients, objective_value: torch.Tensor) -> Trace:
    """The Trace of one forward from its gradients: each run on its own (gates, cell state, the
    scans, norms), then in input order."""
    cell_type, shape = forward.cell_type, forward.shape
    insides = [
        _inside(cell_type, run, grad_probe, grad_output, grad_last_cell)
        for run, grad_probe, grad_output, grad_last_cell in zip(
            forward.runs, gradients.grad_probes, gradients.grad_outputs, gradients.grad_last_cells
        )
    ]
    lstm = cell_type == "lstm"
    return Trace(
        cell_type=cell_type,
        hidden=_in_input_order([inside.hidden for inside in insides], shape),
        cell=_in_input_order([inside.cell for inside in insides], shape) if lstm else None,
        gates={
            name: _in_input_order([inside.gates[k] for inside in insides], shape)
            for k, name in enumerate(GATE_NAMES[cell_type])
        },
        grad_hidden=_in_input_order([inside.grad_hidden for inside in insides], shape),
        grad_cell=_in_input_order([inside.grad_cell for inside in insides], shape) if lstm else None,
        grad_input=_norm_over_units(gradients.grad_x.detach().cpu().numpy().astype(np.float32, copy=False)),
        output=forward.top_output.detach().cpu().numpy().astype(np.float32),
        objective=float(objective_value.detach()),
        grad_initial=np.array([inside.grad_initial for inside in insides], np.float32).reshape(shape),
        grad_initial_cell=(
            np.array([inside.grad_initial_cell for inside in insides], np.float32).reshape(shape) if lstm else None
        ),
    )


def checked_module(rnn: nn.Module) -> str:
    """The cell type of a module `trace` can trace; ValueError for anything else."""
    cell_type = cell_type_of(rnn)
    if getattr(rnn, "proj_size", 0):
        raise ValueError("LSTMs with proj_size > 0 are not supported: gatescope traces the plain cell.")
    return cell_type


def _checked_initial_state(rnn: nn.Module, cell_type: str, initial_state) -> list[RunStart]:
    """One RunStart per layer and direction, layer-major, from h0, or (h0, c0) for an LSTM."""
    rows = rnn.num_layers * (2 if rnn.bidirectional else 1)
    expected = (rows, rnn.hidden_size)
    name = CELLS[cell_type].display_name
    pair = isinstance(initial_state, (tuple, list))
    if cell_type == "lstm":
        if not pair or len(initial_state) != 2:
            raise ValueError(
                f"An LSTM's initial_state is the pair (h0, c0), each of shape "
                f"(num_layers * num_directions, hidden_size) = {expected}."
            )
        states = dict(zip(("h0", "c0"), initial_state))
    else:
        if pair:
            raise ValueError(
                f"A {name}'s initial_state is h0 alone, a tensor of shape "
                f"(num_layers * num_directions, hidden_size) = {expected}; only an LSTM takes (h0, c0)."
            )
        states = {"h0": initial_state}
    checked = {key: _checked_state(rnn, key, state, expected) for key, state in states.items()}
    cell = checked.get("c0")
    return [RunStart(checked["h0"][row], None if cell is None else cell[row]) for row in range(rows)]


def _checked_state(rnn: nn.Module, name: str, state, expected: tuple[int, int]) -> torch.Tensor:
    if not isinstance(state, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape {expected}, not {type(state).__name__}.")
    shape = tuple(state.shape)
    if shape != expected:
        batched = len(shape) == 3 and shape[1] == 1 and (shape[0], shape[2]) == expected
        hint = f" (one sequence is traced: drop the batch dimension, {name}[:, 0])" if batched else ""
        raise ValueError(
            f"{name} must have shape (num_layers * num_directions, hidden_size) = {expected} for this "
            f"module; got {shape}{hint}."
        )
    reference = rnn.weight_hh_l0
    state = state.detach().to(device=reference.device, dtype=reference.dtype)
    if not bool(torch.isfinite(state).all()):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return state


def checked_input(rnn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """x as a finite (T, input_size) tensor in the module's dtype and device; ValueError else."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a torch.Tensor of shape (T, {rnn.input_size}), not {type(x).__name__}.")
    if x.dim() != 2 or x.shape[1] != rnn.input_size:
        raise ValueError(f"x must have shape (T, {rnn.input_size}) for this module; got {tuple(x.shape)}.")
    if x.shape[0] < 1:
        raise ValueError("x is empty: a sequence needs at least one timestep.")
    reference = rnn.weight_hh_l0
    if x.dtype != reference.dtype or x.device != reference.device:
        x = x.to(device=reference.device, dtype=reference.dtype)
    values = x.detach()
    if values.device.type == "cpu" and values.dtype in (torch.float32, torch.float64):
        # in numpy, without torch's per-op dispatch; a float64 sum cannot overflow from float32
        # values, so it is finite exactly when every value is
        finite = math.isfinite(values.numpy().sum(dtype=np.float64))
    else:
        finite = bool(torch.isfinite(values).all())
    if not finite:
        raise ValueError("x contains NaN or infinite values.")
    return x


def _last_step_sum(output: torch.Tensor) -> torch.Tensor:
    return output[-1].sum()


def _layer_weights(rnn: nn.Module, layer: int, direction: int) -> LayerWeights:
    suffix = f"_l{layer}_reverse" if direction == 1 else f"_l{layer}"
    weights = [getattr(rnn, "weight_ih" + suffix).detach(), getattr(rnn, "weight_hh" + suffix).detach()]
    if rnn.bias:
        weights += [getattr(rnn, "bias_ih" + suffix).detach(), getattr(rnn, "bias_hh" + suffix).detach()]
    else:
        weights += [None, None]
    return LayerWeights(*weights)


def _probe_block(cell_type: str, weights: LayerWeights, hidden_size: int) -> torch.Tensor:
    """The columns through which the zero probe enters the gate pre-activations.

    RNN, LSTM: W_hh, so d/d probe_t = W_hh^T d pre_t, the full recurrent gradient of h_{t-1}.
    GRU: n_t = tanh(W_in x + b_in + r_t * (W_hn h + b_hn)) puts r_t inside the hidden path,
    so the probe has two halves: [W_hr; W_hz; 0] gives W_hr^T d r_pre + W_hz^T d z_pre, and
    [0; 0; I] gives d n_pre, which `_recompute` turns into W_hn^T (r_t * d n_pre).
    """
    if cell_type != "gru":
        return weights.w_hh
    w_hh = weights.w_hh
    zeros = w_hh.new_zeros(hidden_size, hidden_size)
    eye = torch.eye(hidden_size, dtype=w_hh.dtype, device=w_hh.device)
    gates_half = torch.cat([w_hh[: 2 * hidden_size], zeros], dim=0)
    new_half = torch.cat([zeros, zeros, eye], dim=0)
    return torch.cat([gates_half, new_half], dim=1)


def _fused(
    rnn: nn.Module,
    cell_type: str,
    inputs: torch.Tensor,
    w_ih: torch.Tensor,
    weights: LayerWeights,
    start: RunStart | None = None,
    keep_last_cell: bool = False,
):
    """One layer, one direction of PyTorch's fused kernel on (T, in) inputs, from `start`
    (None: zeros).

    Returns the (T, H) output; for an LSTM on oneDNN from zeros, the gates and cell state the
    kernel saved for its own backward (see `onednn_lstm`), None where they cannot be read; and
    where `keep_last_cell`, an LSTM's final c (H,) in the graph, else None.
    """
    hidden_size = rnn.hidden_size
    # `onednn_lstm` starts from zeros and keeps its final c out of the graph
    if cell_type == "lstm" and start is None and not keep_last_cell and runs_on_onednn(inputs):
        output, saved = onednn_lstm(inputs, w_ih, weights, hidden_size)
        return output, saved, None
    params = [w_ih, weights.w_hh] + ([weights.b_ih, weights.b_hh] if weights.b_ih is not None else [])
    if start is None:
        h0 = c0 = inputs.new_zeros(1, 1, hidden_size)
    else:
        h0 = start.hidden.reshape(1, 1, hidden_size)
        c0 = start.cell.reshape(1, 1, hidden_size) if start.cell is not None else None
    args = (params, weights.b_ih is not None, 1, 0.0, False, False, False)
    batch = inputs.unsqueeze(1)
    if cell_type == "lstm":
        output, _, last_cell = torch.lstm(batch, (h0, c0), *args)
        return output.squeeze(1), None, last_cell.reshape(hidden_size) if keep_last_cell else None
    if cell_type == "gru":
        output = torch.gru(batch, h0, *args)[0]
    elif rnn.nonlinearity == "relu":
        output = torch.rnn_relu(batch, h0, *args)[0]
    else:
        output = torch.rnn_tanh(batch, h0, *args)[0]
    return output.squeeze(1), None, None


@dataclass
class _Inside:
    """One run's quantities, in processing order."""

    hidden: np.ndarray  # (T, H)
    cell: np.ndarray | None  # (T, H), LSTM only
    gates: np.ndarray  # (gates, T, H) in GATE_NAMES order; (0, T, H) for an RNN
    grad_hidden: np.ndarray  # (T,) norms
    grad_cell: np.ndarray | None  # (T,) norms, LSTM only
    grad_initial: np.floating  # norm of d objective / d h_{-1}, the state the run starts from
    grad_initial_cell: np.floating | None  # norm of d objective / d c_{-1}, LSTM only


def _inside(
    cell_type: str,
    run: _Run,
    grad_probe: torch.Tensor,
    grad_output: torch.Tensor,
    grad_last_cell: torch.Tensor | None = None,
) -> _Inside:
    """Gates, cell state and gradient norms of one run, from its h_t and its two gradients.

    d/d probe_t is the recurrent gradient of h_{t-1}; adding the upward path, grad_output,
    gives d objective / d h_t except for what a cell's own elementwise recurrence carries, which
    a scan adds: GRU's z * h_{t-1} path, LSTM's c_t. The gradient arrays have a row for the
    state the run starts from before those of its steps (row 0: h_{-1} or c_{-1}, row t + 1:
    step t), so its gradient comes out of the same few calls as the steps'.
    `grad_last_cell`: d objective / d c_{T-1} from beyond the run (a decoder started from it).
    """
    if run.clamps is not None and cell_type != "rnn":
        return _inside_clamped(cell_type, run, grad_probe, grad_output)
    hidden = run.output.detach().cpu().numpy()
    if cell_type == "gru":
        gates = _recomputed_gates(cell_type, run)
        grad_hidden = _gru_grad_hidden(run, gates, grad_probe, grad_output, direct=gates[1])
        norms = _norm_over_units(grad_hidden)
        return _Inside(hidden, None, gates, norms[1:], None, norms[0], None)

    # RNN and LSTM: the probe carries W_hh^T d pre, all of h_{t-1}'s recurrent gradient (h_{-1}
    # enters through W_hh alone)
    grad_hidden = _recurrent_and_upward(grad_probe, grad_output)
    norms = _norm_over_units(grad_hidden)
    if cell_type == "rnn":
        gates = np.empty((0,) + hidden.shape, hidden.dtype)
        return _Inside(hidden, None, gates, norms[1:], None, norms[0], None)

    grad_cell = np.empty_like(grad_hidden)
    grad_cell[0] = 0.0
    gates, cell = _lstm_gates_and_cell(run, tanh_out=grad_cell[1:])
    # h_t = o_t tanh(c_t) and c_{t+1} = f_{t+1} c_t + i_{t+1} g_{t+1}
    source = grad_cell[1:]
    np.multiply(source, source, out=source)
    np.subtract(1.0, source, out=source)
    source *= gates[3]
    source *= grad_hidden[1:]
    if grad_last_cell is not None:
        source[-1] += grad_last_cell.cpu().numpy()
    chain_in_place(grad_cell, gates[1], reverse=True)  # f_t joins c_{t-1} (row t) and c_t (row t + 1)
    cell_norms = _norm_over_units(grad_cell)
    return _Inside(hidden, cell, gates, norms[1:], cell_norms[1:], norms[0], cell_norms[0])


def _recurrent_and_upward(grad_probe: torch.Tensor, grad_output: torch.Tensor) -> np.ndarray:
    """(T + 1, H) d objective / d h_{t-1} of an RNN or LSTM run, h_{-1} first: the probe's
    gradient (the recurrent path) plus the output's (the upward path)."""
    upward = grad_output.cpu().numpy()  # numpy: cheaper per call than torch here
    # row t: d/d probe_t (h_{-1} has no upward path), and h_{T-1} has no recurrent one
    total = np.concatenate((grad_probe.cpu().numpy(), upward[-1:]))
    total[1:-1] += upward[:-1]
    return total


def _gru_grad_hidden(
    run: _Run, gates: np.ndarray, grad_probe: torch.Tensor, grad_output: torch.Tensor, direct: np.ndarray
) -> np.ndarray:
    """(T + 1, H) d objective / d h_{t-1} of a GRU run, h_{-1} first.

    n_t = tanh(... + r_t * (W_hn h_{t-1} + b_hn)): the probe's second half is d n_pre, which
    reaches h_{t-1} through r_t * W_hn (see `_probe_block`); its first half is the reset and
    update gates' part. h_t = (1 - z_t) n_t + z_t h_{t-1}: the direct path, a scan, adds
    `direct`_t * dh_t to dh_{t-1} (z_t, cut where h_t is clamped).
    """
    hidden_size = gates.shape[2]
    grad_gates, grad_new_pre = grad_probe.split(hidden_size, dim=1)
    reset = torch.from_numpy(gates[0]).to(grad_probe.device)
    # row t: the gates' part of d/d probe_t (h_{-1} has no upward path, h_{T-1} no recurrent one)
    total = torch.cat([grad_gates, grad_output[-1:]])
    total[1:-1] += grad_output[:-1]
    total[:-1].addmm_(reset * grad_new_pre, run.weights.w_hh[2 * hidden_size :])
    grad_hidden = total.cpu().numpy()
    chain_in_place(grad_hidden, direct, reverse=True)
    return grad_hidden


def _inside_clamped(cell_type: str, run: _Run, grad_probe: torch.Tensor, grad_output: torch.Tensor) -> _Inside:
    """`_inside` for a run with interventions (LSTM or GRU; an RNN's needs nothing more).

    The gates are recomputed from the h the network carried, with the clamps written in; c is a
    scan that restarts at clamped entries. A clamped h_t or c_t passes nothing back to what
    computed it, so the elementwise paths into it (GRU's z_t h_{t-1}, LSTM's o_t tanh(c_t) and
    f_t c_{t-1}) are cut there; the probe already leaves out the clamped gates' rows. Runs with
    interventions start from zeros.
    """
    hidden = run.output.detach()
    clamps = run.clamps
    gates, cell = clamped_gates_and_cell(cell_type, run.layer_input.unsqueeze(1), hidden.unsqueeze(1), run.weights, clamps)
    gates = gates[:, :, 0]
    hidden = hidden.cpu().numpy()
    kept = ~clamps.masks["hidden"] if "hidden" in clamps.masks else None  # where h_t passes gradient back
    if cell_type == "gru":
        direct = gates[1] if kept is None else gates[1] * kept
        norms = _norm_over_units(_gru_grad_hidden(run, gates, grad_probe, grad_output, direct))
        return _Inside(hidden, None, gates, norms[1:], None, norms[0], None)

    cell = cell[:, 0]
    grad_hidden = _recurrent_and_upward(grad_probe, grad_output)
    grad_cell = np.empty_like(grad_hidden)
    grad_cell[0] = 0.0
    source = grad_cell[1:]
    np.tanh(cell, out=source)
    np.multiply(source, source, out=source)
    np.subtract(1.0, source, out=source)
    source *= gates[3]
    source *= grad_hidden[1:] if kept is None else grad_hidden[1:] * kept
    decay = gates[1] if "cell_state" not in clamps.masks else gates[1] * ~clamps.masks["cell_state"]
    chain_in_place(grad_cell, decay, reverse=True)
    norms, cell_norms = _norm_over_units(grad_hidden), _norm_over_units(grad_cell)
    return _Inside(hidden, cell, gates, norms[1:], cell_norms[1:], norms[0], cell_norms[0])


def _lstm_gates_and_cell(run: _Run, tanh_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An LSTM run's (4, T, H) gates and (T, H) cell state, tanh(c) written into `tanh_out`:
    as the kernel saved them where they could be read and check out, else recomputed."""
    saved = run.saved
    if saved is not None:
        seq_len, hidden_size = saved.cell.shape
        gates = np.ascontiguousarray(saved.gates.reshape(seq_len, 4, hidden_size).transpose(1, 0, 2))
        with np.errstate(all="ignore"):  # a misread may hold any bits, inf and NaN included
            np.tanh(saved.cell, out=tanh_out)
            agrees = _kernel_read_agrees(run.output.detach().numpy(), tanh_out, gates[3])
        if agrees:
            return gates, saved.cell
        # oneDNN's workspace is not laid out as `workspace_layout` says: recompute
    gates = _recomputed_gates("lstm", run)
    input_gate, forget, cell_gate, _ = gates
    source = input_gate * cell_gate
    if run.start is not None:  # c_0 = f_0 c_{-1} + i_0 g_0
        source[0] += forget[0] * run.start.cell.detach().cpu().numpy()
    cell = forward_scan(decay=forget, source=source)
    np.tanh(cell, out=tanh_out)
    return gates, cell


def _kernel_read_agrees(hidden: np.ndarray, tanh_cell: np.ndarray, output_gate: np.ndarray) -> bool:
    """Whether h_t = o_t tanh(c_t) holds for what was read from the workspace.

    The kernel computed h itself, so this pins down the read: the gate rows (where o sits in
    them, and so i, f and g, in the order both libraries document) and the cell states. A
    misread shifts whole blocks of rows, so 64 rows spread over the sequence, both ends among
    them, show it as well as every row would. Float32 rounding in another tanh moves h by
    ~1e-7; a misread by far more.
    """
    if len(hidden) > _ROWS_CHECKED:
        rows = np.linspace(0, len(hidden) - 1, _ROWS_CHECKED).round().astype(np.intp)
        hidden, tanh_cell, output_gate = hidden[rows], tanh_cell[rows], output_gate[rows]
    residual = output_gate * tanh_cell
    residual -= hidden
    return bool(np.abs(residual, out=residual).max() <= 1e-5)  # all within [-1, 1]; NaN fails


_ROWS_CHECKED = 64


def _recomputed_gates(cell_type: str, run: _Run) -> np.ndarray:
    """Every gate at every step from the known h_{t-1}, as (gates, T, H): two matmuls, no loop
    over time."""
    hidden = run.output.detach()
    hidden_size = hidden.shape[1]
    w = run.weights
    # h_{-1}: the run's start; from zeros, step 0 has no recurrent term
    start = None if run.start is None else run.start.hidden.detach().reshape(1, hidden_size)
    with torch.no_grad():
        if cell_type == "lstm":
            # W_ih x_t + W_hh h_{t-1} + b for every t
            pre = _affine(run.layer_input, w.w_ih, None if w.b_ih is None else w.b_ih + w.b_hh)
            pre[1:].addmm_(hidden[:-1], w.w_hh.T)
            if start is not None:
                pre[:1].addmm_(start, w.w_hh.T)
            gates = pre.reshape(len(pre), 4, hidden_size).transpose(0, 1).contiguous()
            gates[:2].sigmoid_()  # i, f
            gates[2].tanh_()  # g
            gates[3].sigmoid_()  # o
            return gates.cpu().numpy()
        # GRU's reset gate multiplies the recurrent part of n alone: keep the two parts apart
        input_part = _affine(run.layer_input, w.w_ih, w.b_ih)
        hidden_part = w.b_hh.expand_as(input_part).clone() if w.b_hh is not None else torch.zeros_like(input_part)
        hidden_part[1:].addmm_(hidden[:-1], w.w_hh.T)
        if start is not None:
            hidden_part[:1].addmm_(start, w.w_hh.T)
        i_r, i_z, i_n = input_part.chunk(3, dim=1)
        h_r, h_z, h_n = hidden_part.chunk(3, dim=1)
        reset = torch.sigmoid(i_r + h_r)
        gates = torch.stack([reset, torch.sigmoid(i_z + h_z), torch.tanh(i_n + reset * h_n)])
        return gates.cpu().numpy()


def _affine(inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return inputs @ weight.T if bias is None else torch.addmm(bias, inputs, weight.T)


def _in_input_order(arrays: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """One (T, ...) array per run, in processing order -> (L, D, T, ...) float32 in input order."""
    if len(arrays) == 1:  # the common case: a view where the dtype is float32 already
        array = arrays[0]
        return (array if array.dtype == np.float32 else array.astype(np.float32)).reshape((1, 1) + array.shape)
    directions = shape[1]
    in_order = [array if index % directions == 0 else array[::-1] for index, array in enumerate(arrays)]
    return np.stack(in_order).astype(np.float32, copy=False).reshape(shape + arrays[0].shape)


def _norm_over_units(array: np.ndarray) -> np.ndarray:
    """L2 norm over the last axis, exact across float32's whole range.

    Sums of squares in float32 are fast but overflow above ~1e19 and underflow below ~1e-19,
    exactly where exploding and vanishing gradients live; those rows are redone in float64.
    """
    squares = np.einsum("...h,...h->...", array, array)
    norms = np.sqrt(squares)
    if squares.min() > 1e-30 and squares.max() < 1e30:  # the common case, in two reductions
        return norms
    out_of_range = ~((squares > 1e-30) & (squares < 1e30))
    exact = array[out_of_range].astype(np.float64)
    with np.errstate(over="ignore"):  # a norm past float32's range is inf: said as overflow
        norms[out_of_range] = np.sqrt(np.einsum("ih,ih->i", exact, exact))
    return norms
