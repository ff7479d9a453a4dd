"""The tracing engine: every state, gate and per-step gradient of an nn.RNN, nn.LSTM or nn.GRU.

`trace(rnn, x)` runs PyTorch's own module on one sequence and returns a `Trace` with everything
gatescope draws. It works on the modules as they are (any trained `torch.nn.RNN`, `LSTM` or
`GRU`, ours or a user's) and never loops over timesteps in Python for the expensive parts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

#: Gate names per cell, in the row order of PyTorch's `weight_ih_l{k}` (see torch.nn.LSTM/GRU).
GATE_NAMES: dict[str, tuple[str, ...]] = {
    "rnn": (),
    "lstm": ("input", "forget", "cell", "output"),
    "gru": ("reset", "update", "new"),
}


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
    if isinstance(rnn, nn.LSTM):
        return "lstm"
    if isinstance(rnn, nn.GRU):
        return "gru"
    if isinstance(rnn, nn.RNN):
        return "rnn"
    raise ValueError(
        f"gatescope traces torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU modules, not {type(rnn).__name__}."
    )


def trace(
    rnn: nn.RNN | nn.LSTM | nn.GRU,
    x: torch.Tensor,
    objective: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Trace:
    """Run `rnn` on the sequence `x` (T, input_size) and record everything inside it.

    `objective` maps the top layer's output sequence (T, D*H) to a scalar; the gradients in the
    trace are of that scalar. Default: the sum of the top layer's output at the last timestep.

    How it stays fast (no Python loop over timesteps with autograd):
    1. Each layer and direction runs as one call of PyTorch's fused kernel, so every h_t comes
       from the same kernel `rnn(x)` uses. Its input is widened by a zero-valued "probe" e_t that
       enters the gate pre-activations through a block of the recurrent weights (W_hh for RNN and
       LSTM). Adding W_hh e_t at step t is exactly a perturbation of h_{t-1} on its recurrent
       path, so the fused backward hands us d objective / d h_{t-1} through time as d/d e_t. GRU's
       reset gate multiplies only part of W_hh h, so it gets two probes (see `_probe_block`).
    2. One backward pass (weights detached: no weight gradients are computed) gives the probe
       gradients, the gradient at each layer's output (the upward path), and d objective / d x.
    3. Gates are recomputed for all timesteps at once with two matmuls per layer and direction,
       from the known h_{t-1}; the LSTM cell state and the remaining gradient recurrences (LSTM
       d c_t, GRU's direct z * h path) are elementwise linear scans, done in numpy.
    """
    cell_type = cell_type_of(rnn)
    if getattr(rnn, "proj_size", 0):
        raise ValueError("LSTMs with proj_size > 0 are not supported: gatescope traces the plain cell.")
    x = _checked_input(rnn, x)
    if objective is None:
        objective = _last_step_sum

    num_layers, num_dirs, hidden_size = rnn.num_layers, 2 if rnn.bidirectional else 1, rnn.hidden_size
    seq_len = x.shape[0]
    x = x.detach().requires_grad_(True)

    # Forward through the fused kernels, one layer and direction at a time (processing order:
    # a reverse direction sees its input flipped, exactly as PyTorch runs it).
    runs: list[list[_Run]] = []
    layer_input = x
    for layer in range(num_layers):
        layer_runs = []
        for direction in range(num_dirs):
            weights = _layer_weights(rnn, layer, direction)
            run_input = layer_input.detach() if direction == 0 else layer_input.detach().flip(0)
            seen_input = layer_input if direction == 0 else layer_input.flip(0)
            probe_block = _probe_block(cell_type, weights, hidden_size)
            probe = seen_input.new_zeros(seq_len, probe_block.shape[1], requires_grad=True)
            output, saved = _fused(
                rnn,
                cell_type,
                torch.cat([seen_input, probe], dim=1),
                torch.cat([weights.w_ih, probe_block], dim=1),
                weights,
            )
            layer_runs.append(_Run(weights, run_input, probe, output, saved))
        runs.append(layer_runs)
        outputs = [layer_runs[0].output] + [r.output.flip(0) for r in layer_runs[1:]]
        layer_input = torch.cat(outputs, dim=1) if num_dirs == 2 else outputs[0]

    top_output = layer_input
    objective_value = objective(top_output)
    if not isinstance(objective_value, torch.Tensor) or objective_value.numel() != 1:
        raise ValueError("The objective must return a scalar tensor.")
    flat_runs = [run for layer_runs in runs for run in layer_runs]

    wrt = [x] + [run.probe for run in flat_runs] + [run.output for run in flat_runs]
    grads = torch.autograd.grad(objective_value.reshape(()), wrt, allow_unused=True)
    # an objective may ignore part of the sequence; what it never reached has zero gradient
    grads = [torch.zeros_like(leaf) if grad is None else grad for grad, leaf in zip(grads, wrt)]
    stacked = _forward_quantities(cell_type, flat_runs, hidden_size)  # (T, L*D, H) arrays
    grad_x = grads[0]
    grad_probes = grads[1 : 1 + len(flat_runs)]
    grad_outputs = grads[1 + len(flat_runs) :]

    grad_hidden = _stack_runs(
        [
            _hidden_gradient_before_scan(cell_type, run, index, grad_probe, grad_output, stacked)
            for index, (run, grad_probe, grad_output) in enumerate(zip(flat_runs, grad_probes, grad_outputs))
        ]
    )
    if cell_type == "gru":
        # h_t = (1 - z_t) n_t + z_t h_{t-1}: the direct path adds z_{t+1} * dh_{t+1} to dh_t.
        grad_hidden = _reverse_scan(decay=stacked["update"], source=grad_hidden)
    cell = stacked.get("cell_state")
    grad_cell = None
    if cell_type == "lstm":
        # h_t = o_t tanh(c_t) and c_{t+1} = f_{t+1} c_t + i_{t+1} g_{t+1}
        source = np.tanh(cell)
        np.multiply(source, source, out=source)
        np.subtract(1.0, source, out=source)
        source *= stacked["output"]
        source *= grad_hidden
        grad_cell = _reverse_scan(decay=stacked["forget"], source=source)

    shape = (num_layers, num_dirs)
    gates = {name: _to_input_order(stacked[name], shape) for name in GATE_NAMES[cell_type]}
    return Trace(
        cell_type=cell_type,
        hidden=_to_input_order(stacked["hidden"], shape),
        cell=None if cell is None else _to_input_order(cell, shape),
        gates=gates,
        grad_hidden=_norm_over_units(_to_input_order(grad_hidden, shape)),
        grad_cell=None if grad_cell is None else _norm_over_units(_to_input_order(grad_cell, shape)),
        grad_input=_norm_over_units(grad_x.detach().cpu().numpy().astype(np.float32, copy=False)),
        output=top_output.detach().cpu().numpy().astype(np.float32),
        objective=float(objective_value.detach()),
    )


@dataclass
class _LayerWeights:
    w_ih: torch.Tensor
    w_hh: torch.Tensor
    b_ih: torch.Tensor | None
    b_hh: torch.Tensor | None


@dataclass
class _Run:
    """One layer and direction: its weights, its input and output in processing order."""

    weights: _LayerWeights
    layer_input: torch.Tensor  # (T, in), detached, processing order
    probe: torch.Tensor  # (T, K) zeros, the leaf whose gradient carries d/d h_{t-1}
    output: torch.Tensor  # (T, H), processing order, part of the autograd graph
    saved: _SavedByKernel | None  # what an LSTM kernel saved for its backward, where readable


@dataclass
class _SavedByKernel:
    """An LSTM's gates and cell state as the fused kernel computed them (see `_onednn_lstm`)."""

    gates: np.ndarray  # (T, 4H): i, f, g, o after their nonlinearities
    cell: np.ndarray  # (T, H): c_t


def _checked_input(rnn: nn.Module, x: torch.Tensor) -> torch.Tensor:
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


def _layer_weights(rnn: nn.Module, layer: int, direction: int) -> _LayerWeights:
    suffix = f"l{layer}" + ("_reverse" if direction == 1 else "")

    def get(name: str) -> torch.Tensor | None:
        tensor = getattr(rnn, f"{name}_{suffix}", None) if rnn.bias or name.startswith("weight") else None
        return None if tensor is None else tensor.detach()

    return _LayerWeights(get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"))


def _probe_block(cell_type: str, weights: _LayerWeights, hidden_size: int) -> torch.Tensor:
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


def _fused(rnn: nn.Module, cell_type: str, inputs: torch.Tensor, w_ih: torch.Tensor, weights: _LayerWeights):
    """One layer, one direction of PyTorch's fused kernel on (T, in) inputs.

    Returns the (T, H) output and, for an LSTM on oneDNN, the gates and cell state the kernel
    saved for its own backward (see `_onednn_lstm`); None where they cannot be read.
    """
    if cell_type == "lstm" and _runs_on_onednn(inputs):
        return _onednn_lstm(inputs, w_ih, weights, rnn.hidden_size)
    params = [w_ih, weights.w_hh] + ([weights.b_ih, weights.b_hh] if weights.b_ih is not None else [])
    h0 = inputs.new_zeros(1, 1, rnn.hidden_size)
    args = (params, weights.b_ih is not None, 1, 0.0, False, False, False)
    batch = inputs.unsqueeze(1)
    if cell_type == "lstm":
        output = torch.lstm(batch, (h0, h0), *args)[0]
    elif cell_type == "gru":
        output = torch.gru(batch, h0, *args)[0]
    elif rnn.nonlinearity == "relu":
        output = torch.rnn_relu(batch, h0, *args)[0]
    else:
        output = torch.rnn_tanh(batch, h0, *args)[0]
    return output.squeeze(1), None


def _runs_on_onednn(inputs: torch.Tensor) -> bool:
    """Whether PyTorch runs an LSTM on these inputs through oneDNN (CPU, float32), as nn.LSTM does."""
    return (
        inputs.device.type == "cpu"
        and inputs.dtype == torch.float32
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
        and hasattr(torch.ops.aten, "mkldnn_rnn_layer")
    )


_LSTM_MODE = 2  # the mode number PyTorch's RNN ops use for an LSTM (RNN_RELU 0, RNN_TANH 1, GRU 3)


def _onednn_lstm(inputs: torch.Tensor, w_ih: torch.Tensor, weights: _LayerWeights, hidden_size: int):
    """The op nn.LSTM itself calls on CPU, called directly so that its workspace comes back.

    oneDNN's LSTM keeps, for its backward pass, every gate activation and the cell state of
    every step but the last in that workspace; the last is the op's `cy`. Reading them saves
    recomputing the gates (two matmuls and four nonlinearities over the sequence) and the cell
    state (a scan). The layout is oneDNN's own, not a public promise (`_onednn_layout`), so
    `_forward_quantities` checks every read against the kernel's own h and cy and recomputes
    on any disagreement. The op is differentiable: autograd runs its backward as for nn.LSTM.
    """
    seq_len, gate_rows = inputs.shape[0], 4 * hidden_size
    state0 = inputs.new_zeros(1, hidden_size)
    has_bias = weights.b_ih is not None
    b_ih, b_hh = (weights.b_ih, weights.b_hh) if has_bias else (inputs.new_zeros(gate_rows),) * 2
    output, _, last_cell, workspace = torch.ops.aten.mkldnn_rnn_layer(
        inputs.unsqueeze(1), w_ih, weights.w_hh, b_ih, b_hh, state0, state0,  # input, weights, h0, c0
        False, [], _LSTM_MODE, hidden_size, 1, has_bias, False, False, True,  # ..., train=True
    )
    output = output.squeeze(1)
    gate_row, cell_start = _onednn_layout(seq_len, inputs.shape[1], hidden_size)
    if workspace.dtype != torch.uint8 or workspace.numel() < 4 * (cell_start + (seq_len - 1) * hidden_size):
        return output, None
    floats = workspace.numpy().view(np.float32)  # numpy: fewer dispatches than torch views
    gates = floats[: seq_len * gate_row].reshape(seq_len, gate_row)[:, :gate_rows]
    cell = np.empty((seq_len, hidden_size), np.float32)
    cell[:-1] = floats[cell_start : cell_start + (seq_len - 1) * hidden_size].reshape(-1, hidden_size)
    cell[-1] = last_cell.detach().numpy().reshape(hidden_size)
    return output, _SavedByKernel(gates, cell)


def _onednn_layout(seq_len: int, input_width: int, hidden_size: int) -> tuple[int, int]:
    """Where a one-layer, one-direction, batch-1 LSTM's float32 workspace keeps what we read.

    Returns (length of a gate row, offset of c_0), in floats. oneDNN lays out, each region
    starting on a 4 KiB page: the gates, one padded row of i, f, g, o per step; the layer
    states, 2 x (T + 1) padded rows as wide as the wider of input and hidden; the iteration
    states, T padded rows of H; then the cell states, 2 x (T + 1) rows of H, in which c_t of
    our layer is row T + 2 + t. Fitted to 85 shapes and checked against every one; at run time
    `_kernel_read_agrees` checks every read.
    """

    def padded(columns: int) -> int:  # a multiple of 64 bytes but not of 1 KiB (cache aliasing)
        row = -(-columns // 16) * 16
        return row + 16 if row % 256 == 0 else row

    def pages(floats: int) -> int:
        return -(-floats // 1024) * 1024

    gate_row = padded(4 * hidden_size)
    regions = (
        pages(seq_len * gate_row)
        + pages(2 * (seq_len + 1) * padded(max(input_width, hidden_size)))
        + pages(seq_len * padded(hidden_size))
    )
    return gate_row, regions + (seq_len + 2) * hidden_size


def _forward_quantities(cell_type: str, runs: list[_Run], hidden_size: int) -> dict[str, np.ndarray]:
    """h_t, every gate, and (LSTM) c_t for all runs, stacked as (T, runs, H) numpy arrays."""
    per_run = [_gates(cell_type, run, hidden_size) for run in runs]
    stacked = {key: _stack_runs([p[key] for p in per_run]) for key in per_run[0]}
    if cell_type != "lstm":
        return stacked
    if any(run.saved is None for run in runs):
        stacked["cell_state"] = _forward_scan(decay=stacked["forget"], source=stacked["input"] * stacked["cell"])
        return stacked
    stacked["cell_state"] = _stack_runs([run.saved.cell for run in runs])
    if not _kernel_read_agrees(stacked):
        # oneDNN's workspace is not laid out as `_onednn_layout` says: recompute it all
        for run in runs:
            run.saved = None
        return _forward_quantities(cell_type, runs, hidden_size)
    return stacked


def _kernel_read_agrees(stacked: dict[str, np.ndarray]) -> bool:
    """Whether the gates and cell state read from the workspace fit the kernel's own h and cy.

    Three identities of the LSTM at the two ends of the sequence pin down every assumption of
    the read: h_{T-1} = o_{T-1} tanh(c_{T-1}) places the last gate row and o within it;
    c_{T-1} = f_{T-1} c_{T-2} + i_{T-1} g_{T-1} places i, f and g (up to i <-> g, which both
    libraries document in the same order) and the end of the cell states; c_0 = i_0 g_0 their
    start. Both blocks are runs of equal rows, so their ends fix their middles. Float32
    rounding in another order moves these by ~1e-7 of their size, a misread by far more.
    """
    hidden, cell = stacked["hidden"], stacked["cell_state"]
    i, f, g, o = stacked["input"], stacked["forget"], stacked["cell"], stacked["output"]
    checks = [(o[-1] * np.tanh(cell[-1]), hidden[-1]), (i[0] * g[0], cell[0])]
    if len(cell) > 1:
        checks.append((f[-1] * cell[-2] + i[-1] * g[-1], cell[-1]))
    # a NaN from a misread fails too
    return all(bool(np.abs(got - want).max() <= 1e-5 * (1.0 + np.abs(want).max())) for got, want in checks)


def _stack_runs(arrays: list[np.ndarray]) -> np.ndarray:
    """(T, H) arrays, one per run, as (T, runs, H); a view when there is one run (the common case)."""
    return arrays[0][:, None] if len(arrays) == 1 else np.stack(arrays, axis=1)


def _gates(cell_type: str, run: _Run, hidden_size: int) -> dict[str, np.ndarray]:
    """h_t and every gate at every step of one run: read from the kernel where it saved them."""
    if run.saved is not None:
        i, f, g, o = (run.saved.gates[:, k * hidden_size : (k + 1) * hidden_size] for k in range(4))
        return {"hidden": run.output.detach().numpy(), "input": i, "forget": f, "cell": g, "output": o}
    with torch.no_grad():
        return _recomputed_gates(cell_type, run, hidden_size)


def _recomputed_gates(cell_type: str, run: _Run, hidden_size: int) -> dict[str, np.ndarray]:
    """Every gate at every step from the known h_{t-1}: two matmuls, no loop over time."""
    hidden = run.output.detach()
    if cell_type == "rnn":
        return {"hidden": hidden.cpu().numpy()}
    w = run.weights
    pieces = {"hidden": hidden}
    if cell_type == "lstm":
        # W_ih x_t + W_hh h_{t-1} + b for every t (h_{-1} = 0: step 0 has no recurrent term)
        pre = _affine(run.layer_input, w.w_ih, None if w.b_ih is None else w.b_ih + w.b_hh)
        pre[1:].addmm_(hidden[:-1], w.w_hh.T)
        cell = torch.tanh(pre[:, 2 * hidden_size : 3 * hidden_size])
        i, f, _, o = torch.sigmoid_(pre).chunk(4, dim=1)
        pieces.update(input=i, forget=f, cell=cell, output=o)
    else:
        # GRU's reset gate multiplies the recurrent part of n alone: keep the two parts apart
        input_part = _affine(run.layer_input, w.w_ih, w.b_ih)
        hidden_part = w.b_hh.expand_as(input_part).clone() if w.b_hh is not None else torch.zeros_like(input_part)
        hidden_part[1:].addmm_(hidden[:-1], w.w_hh.T)
        i_r, i_z, i_n = input_part.chunk(3, dim=1)
        h_r, h_z, h_n = hidden_part.chunk(3, dim=1)
        reset = torch.sigmoid(i_r + h_r)
        pieces.update(reset=reset, update=torch.sigmoid(i_z + h_z), new=torch.tanh(i_n + reset * h_n))
    return {key: value.cpu().numpy() for key, value in pieces.items()}


def _affine(inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return inputs @ weight.T if bias is None else torch.addmm(bias, inputs, weight.T)


def _hidden_gradient_before_scan(cell_type, run: _Run, index: int, grad_probe, grad_output, stacked) -> np.ndarray:
    """d objective / d h_t from the upward path plus the recurrent path into step t+1.

    d/d probe_{t+1} is the recurrent gradient of h_t (the last step has none). For GRU the
    probe's second half is d n_pre, which reaches h_t through r_{t+1} * W_hn.
    """
    if cell_type != "gru":  # in numpy: two elementwise steps are too small for torch's dispatch
        total = grad_output.cpu().numpy().copy()
        total[:-1] += grad_probe.cpu().numpy()[1:]
        return total
    hidden_size = grad_output.shape[1]
    reset = torch.from_numpy(stacked["reset"][:, index]).to(grad_probe.device)
    grad_gates, grad_new_pre = grad_probe[1:].split(hidden_size, dim=1)
    w_hn = run.weights.w_hh[2 * hidden_size :]
    total = grad_output.clone()
    total[:-1] += grad_gates
    total[:-1].addmm_(reset[1:] * grad_new_pre, w_hn)
    return total.cpu().numpy()


def _forward_scan(decay: np.ndarray, source: np.ndarray) -> np.ndarray:
    """s_t = decay_t * s_{t-1} + source_t with s_{-1} = 0, over axis 0. Overwrites `source`."""
    _chain_in_place(source, decay[1:])
    return source


def _reverse_scan(decay: np.ndarray, source: np.ndarray) -> np.ndarray:
    """s_t = source_t + decay_{t+1} * s_{t+1} with s_{T-1} = source_{T-1}, over axis 0.
    Overwrites `source`."""
    _chain_in_place(source[::-1], decay[:0:-1])
    return source


def _chain_in_place(states: np.ndarray, links: np.ndarray) -> None:
    """states[k+1] += links[k] * states[k] for k = 0, 1, ... in order: a linear recurrence.

    The one loop over time left in the engine. Step by step it costs two ufunc calls per step
    on rows of H numbers, nearly all of it dispatch, so it is cut down by the shape at hand:
    a short chain of narrow rows by doubling (`_chain_by_doubling`), a long one in blocks
    (`_chain_in_blocks`); what is left is cheapest step by step.
    """
    states, links = _as_rows(states, writable=True), _as_rows(links)
    if links.size <= 4096:
        _chain_by_doubling(states, links)
    elif len(links) >= 108:
        _chain_in_blocks(states, links)
    else:
        _chain_step_by_step(states, links)


def _chain_by_doubling(states: np.ndarray, links: np.ndarray) -> None:
    """`_chain_in_place` in log2(T) passes over whole arrays (Hillis and Steele's scan).

    After the pass with stride k, row t holds its chain over the 2k rows ending at t; `span`
    holds the product of the links across the k rows ending at each t, then 2k. Links are gates
    in [0, 1], so a product can only underflow, to the exact limit 0.
    """
    count = len(states)
    span = links.copy()  # span[t - 1]: the product of the links into rows t-k+1 .. t
    carried = np.empty_like(states)
    stride = 1
    while stride < count:
        reach = count - stride
        np.multiply(span[stride - 1 :], states[:reach], out=carried[:reach])
        np.add(states[stride:], carried[:reach], out=states[stride:])
        if 2 * stride < count:  # numpy copies where the two sides of an in-place call overlap
            np.multiply(span[2 * stride - 1 :], span[stride - 1 : count - 1 - stride], out=span[2 * stride - 1 :])
        stride *= 2


def _chain_in_blocks(states: np.ndarray, links: np.ndarray) -> None:
    """`_chain_in_place` in blocks of about sqrt(T/3) steps (k = block length, m = blocks):

    1. every block runs its own chain from a zero start, all blocks at once (k steps);
    2. a chain over the blocks finds the true state entering each one (m steps), from each
       block's end value and the product of its links;
    3. the entering state, multiplied through each block's links, is added in (k steps).
    About 6k + 2m calls instead of 2T, on arrays m times larger. The links are gates in [0, 1],
    so a block's product can only underflow, to the exact limit 0.
    """
    steps = len(links)
    block = math.isqrt(steps // 3)
    blocks = steps // block
    shape = (blocks, block) + states.shape[1:]
    body = np.reshape(states[1 : 1 + blocks * block], shape, copy=False)  # views: writes land in `states`
    factors = np.reshape(links[: blocks * block], shape, copy=False)
    multiply, add = np.multiply, np.add
    carried = np.empty_like(body[:, 0])
    for j in range(1, block):
        multiply(factors[:, j], body[:, j - 1], out=carried)
        add(body[:, j], carried, out=body[:, j])
    through = factors.prod(axis=1)
    entering = np.empty_like(carried)
    entering[0] = states[0]
    for k in range(1, blocks):
        multiply(through[k - 1], entering[k - 1], out=entering[k])
        add(entering[k], body[k - 1, -1], out=entering[k])
    for j in range(block):
        multiply(factors[:, j], entering, out=entering)
        add(body[:, j], entering, out=body[:, j])
    done = blocks * block
    _chain_step_by_step(states[done:], links[done:])


def _as_rows(array: np.ndarray, writable: bool = False) -> np.ndarray:
    """(T, ...) as (T, n): flat rows make each ufunc call in a chain cheaper. A view where the
    layout allows (always, for the arrays the engine builds); `writable` arrays are never copied."""
    if array.ndim <= 2:
        return array
    rows = (len(array), math.prod(array.shape[1:]))
    try:
        return np.reshape(array, rows, copy=False)
    except ValueError:
        return array if writable else np.reshape(array, rows)


def _chain_step_by_step(states: np.ndarray, links: np.ndarray) -> None:
    """`_chain_in_place` one step at a time, on row views made up front (a list built in C)."""
    rows = list(states)
    multiply, add = np.multiply, np.add
    product = np.empty_like(rows[0]) if rows else None
    for previous, row, link in zip(rows, rows[1:], list(links)):
        multiply(link, previous, out=product)
        add(row, product, out=row)


def _to_input_order(stacked: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(T, L*D, H) in processing order -> (L, D, T, H) float32, reverse directions flipped back."""
    seq_len, _, hidden_size = stacked.shape
    array = stacked.reshape(seq_len, *shape, hidden_size).transpose(1, 2, 0, 3)
    if shape[1] == 2:
        array = array.copy()
        array[:, 1] = array[:, 1, ::-1]
    return np.ascontiguousarray(array, dtype=np.float32)


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
    norms[out_of_range] = np.sqrt(np.einsum("ih,ih->i", exact, exact))
    return norms
