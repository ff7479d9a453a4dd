"""Many sequences at once: every state and gate of an nn.RNN, nn.LSTM or nn.GRU over a batch.

    from core.trace import trace_batch
    bt = trace_batch(rnn, x, lengths)          # x: (B, T, input_size), right-padded
    bt.gates["forget"]                         # (B, L, D, T, H); NaN beyond each length

Forward only (no gradients), for statistics over held-out sets: gate saturation, memory, unit
search, ablations (`interventions`, exactly as in core.engine.tracing.trace).

How it stays within a few tens of percent of the module's own fused forward: the gates are the
forward's own work, so they are kept rather than recomputed (a recompute costs as much again).
- A float32 LSTM on CPU runs oneDNN's kernel, as nn.LSTM does, and its workspace holds every
  gate and cell state for a backward pass: they are read from it (`_onednn_lstm`), laid out as
  for one sequence (core.engine.onednn) with every count times the batch, and checked against
  the kernel's own h, as the single-sequence engine does.
- Otherwise (a GRU, interventions, float64, oneDNN switched off) each layer and direction runs a
  loop over time whose every step is the cell's equations as a handful of in-place torch calls on
  the whole batch, the input projection done for all steps at once beforehand, writing gates and
  states straight into the result's buffers. A GRU's loop is as fast as PyTorch's own kernel.
- A vanilla RNN without interventions has no gates to keep and runs in PyTorch's own kernel.
Results are time-major, as the kernels write them, and returned as (B, L, D, T, H) views: no copy
for a one-layer, one-direction module; more layers or directions are gathered into one buffer.

Padded batches follow PyTorch's packed sequences: a reverse direction starts at each sequence's
own last step. The loop runs a reverse direction from step T - 1 down for the whole batch and
holds a sequence's state at zero until its own last step comes; the kernels read each sequence
reversed within its length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from core.cells import CELLS
from core.engine.interventions import Clamps, Intervention, checked_interventions, clamps_by_run
from core.engine.onednn import _padded, _pages, runs_on_onednn  # the workspace's one layout, batched here
from core.engine.tracing import cell_type_of


@dataclass
class BatchTrace:
    """What happened inside a recurrent module on a batch of sequences (forward only).

    Arrays are float32 numpy; B = sequences, L = num_layers, D = num_directions, T = the padded
    length, H = hidden_size. Index t is input position t, for a reverse direction too. Entries at
    or beyond a sequence's length are NaN in hidden, cell and gates, and 0 in output (as
    torch.nn.utils.rnn.pad_packed_sequence returns them). hidden, cell and gates are views of
    time-major buffers (strided); np.ascontiguousarray gives a compact copy where one is needed.
    """

    cell_type: str  # "rnn", "lstm" or "gru"
    hidden: np.ndarray  # (B, L, D, T, H)
    cell: np.ndarray | None  # (B, L, D, T, H), LSTM only
    gates: dict[str, np.ndarray]  # name -> (B, L, D, T, H), PyTorch's gate names
    output: np.ndarray  # (B, T, D*H): the top layer's output, as the module returns it
    lengths: np.ndarray  # (B,) int64

    @property
    def batch_size(self) -> int:
        return self.hidden.shape[0]

    @property
    def num_layers(self) -> int:
        return self.hidden.shape[1]

    @property
    def num_directions(self) -> int:
        return self.hidden.shape[2]

    @property
    def seq_len(self) -> int:
        return self.hidden.shape[3]

    @property
    def hidden_size(self) -> int:
        return self.hidden.shape[4]

    def valid(self) -> np.ndarray:
        """(B, T) bool: the steps within each sequence's length."""
        return np.arange(self.seq_len) < self.lengths[:, None]


def trace_batch(
    rnn: nn.RNN | nn.LSTM | nn.GRU,
    x: torch.Tensor,
    lengths=None,
    *,
    interventions: Sequence[Intervention] = (),
) -> BatchTrace:
    """Run `rnn` on the batch `x` (B, T, input_size) and keep every state and gate.

    `lengths` (B,) gives each sequence's length when `x` is right-padded (None: all T); the result
    equals what the module computes on the packed batch. `interventions` clamp units of h, c or
    a gate as in core.engine.tracing.trace (steps are input positions; a step at or beyond a
    sequence's length does not exist for it). Whatever the module's own `batch_first`, x is
    batch-first here.
    """
    cell_type = cell_type_of(rnn)
    if getattr(rnn, "proj_size", 0):
        raise ValueError("LSTMs with proj_size > 0 are not supported: gatescope traces the plain cell.")
    x = _checked_batch(rnn, x)
    batch_size, seq_len = x.shape[0], x.shape[1]
    lengths = _checked_lengths(lengths, batch_size, seq_len)
    valid = np.arange(seq_len) < lengths[:, None]  # (B, T)
    padded = not valid.all()
    if not _finite(x):  # padding may hold anything (NaN included): only the steps within count
        if not padded:
            raise ValueError("x contains NaN or infinite values.")
        if not _finite(x[torch.from_numpy(valid)]):
            raise ValueError("x contains NaN or infinite values within the sequences' lengths.")
    clamps: dict[tuple[int, int], Clamps] = {}
    if interventions:
        checked = checked_interventions(cell_type, rnn, interventions, seq_len)
        clamps = clamps_by_run(checked, seq_len, rnn.hidden_size)

    num_layers, num_dirs, hidden_size = rnn.num_layers, 2 if rnn.bidirectional else 1, rnn.hidden_size
    blocks = CELLS[cell_type].blocks
    lstm, gated = cell_type == "lstm", cell_type != "rnn"
    # one run's results become the result as they are; several are gathered into one buffer
    stacked = None
    if num_layers * num_dirs > 1:
        def buffer(width):
            return np.empty((num_layers, num_dirs, seq_len, batch_size, width), np.float32)  # see `_empty`

        stacked = _RunResult(buffer(hidden_size), buffer(blocks * hidden_size) if gated else None,
                             buffer(hidden_size) if lstm else None)
    with torch.no_grad():
        layer_input = x.transpose(0, 1).contiguous()  # (T, B, in): time-major, as the kernels run
        if padded:  # padding may hold anything; zeros keep the (discarded) padded steps finite
            layer_input.masked_fill_(torch.from_numpy(~valid.T).unsqueeze(2), 0.0)
        reversal = _reversed_within_lengths(lengths, seq_len) if padded else None
        for layer in range(num_layers):
            directions = []
            for direction in range(num_dirs):
                weights = _weights(rnn, layer, direction)
                run_clamps = clamps.get((layer, direction))
                reverse_reversal = reversal if direction == 1 else None
                result = None
                if lstm and run_clamps is None and runs_on_onednn(layer_input):
                    result = _onednn_lstm(layer_input, weights, hidden_size, direction == 1, reverse_reversal)
                elif cell_type == "rnn" and run_clamps is None:
                    result = _rnn_kernel(rnn.nonlinearity, layer_input, weights, hidden_size, direction == 1, reverse_reversal)
                in_place = False
                if result is None:  # the loop, straight into the result's buffers where it can
                    into = None
                    if stacked is not None and layer_input.dtype == torch.float32 and layer_input.device.type == "cpu":
                        into = _RunResult(*(None if a is None else torch.from_numpy(a[layer, direction]) for a in stacked.arrays()))
                    waiting = _waiting(valid) if padded and direction == 1 else None
                    nonlinearity = getattr(rnn, "nonlinearity", "tanh")
                    result = _loop(cell_type, nonlinearity, weights, layer_input, run_clamps, direction == 1, waiting, into)
                    in_place = into is not None
                if stacked is not None and not in_place:
                    for whole, part in zip(stacked.arrays(), result.arrays()):
                        if whole is not None:
                            np.copyto(whole[layer, direction], _numpy(part), casting="same_kind")
                directions.append(result)
            hiddens = [torch.as_tensor(result.hidden) for result in directions]  # the module's dtype
            layer_input = hiddens[0] if num_dirs == 1 else torch.cat(hiddens, dim=2)

        # (B, T, D*H), as a batch_first module returns it: a view of the top layer's h, or with
        # zeros beyond each length (as pad_packed_sequence gives) a copy
        output = _numpy(layer_input).transpose(1, 0, 2)
        if padded:
            output = output.astype(np.float32)  # numpy's allocation: see `_empty`
            output[~valid] = 0.0
        output = _float32(output)
    if stacked is None:  # one run: its own arrays, with a layer and a direction axis
        only = directions[0]
        stacked = _RunResult(*(None if a is None else _float32(_numpy(a))[None, None] for a in only.arrays()))
    if padded:
        beyond = ~valid.T  # (T, B)
        for array in stacked.arrays():
            if array is not None:
                array[:, :, beyond] = np.nan

    def batch_major(array: np.ndarray) -> np.ndarray:  # (L, D, T, B, H) -> (B, L, D, T, H), a view
        return array.transpose(3, 0, 1, 2, 4)

    gates = {}
    if gated:
        per_gate = stacked.gates
        for k, name in enumerate(CELLS[cell_type].gate_names):
            gates[name] = batch_major(per_gate[..., k * hidden_size : (k + 1) * hidden_size])
    return BatchTrace(
        cell_type=cell_type,
        hidden=batch_major(stacked.hidden),
        cell=None if stacked.cell is None else batch_major(stacked.cell),
        gates=gates,
        output=output,
        lengths=lengths,
    )


@dataclass
class _RunResult:
    """One layer and direction's h, gates (PyTorch's row order) and c, time-major (T, B, ...) in
    input order; or, for the stacked result, (L, D, T, B, ...)."""

    hidden: np.ndarray | torch.Tensor
    gates: np.ndarray | None
    cell: np.ndarray | None

    def arrays(self):
        return self.hidden, self.gates, self.cell


@dataclass
class _Weights:
    w_ih: torch.Tensor
    w_hh: torch.Tensor
    b_ih: torch.Tensor | None
    b_hh: torch.Tensor | None


def _weights(rnn: nn.Module, layer: int, direction: int) -> _Weights:
    suffix = f"_l{layer}_reverse" if direction == 1 else f"_l{layer}"
    w_ih, w_hh = getattr(rnn, "weight_ih" + suffix).detach(), getattr(rnn, "weight_hh" + suffix).detach()
    if not rnn.bias:
        return _Weights(w_ih, w_hh, None, None)
    return _Weights(w_ih, w_hh, getattr(rnn, "bias_ih" + suffix).detach(), getattr(rnn, "bias_hh" + suffix).detach())


def _waiting(valid: np.ndarray) -> torch.Tensor:
    """(T, B, 1): the steps beyond each sequence's length, where a reverse loop holds it at zero."""
    return torch.from_numpy(np.ascontiguousarray(~valid.T)).unsqueeze(2)


def _onednn_lstm(layer_input, weights: _Weights, hidden_size, reverse, reversal):
    """One layer and direction of a float32 LSTM in oneDNN's kernel, its gates and cell states read
    from the kernel's workspace; None where the read does not check out (the loop then runs).

    The workspace is laid out as for one sequence (core.engine.onednn.workspace_layout), every
    row a row per sequence: gate rows (t, b) of padded(4H) floats, and c_t of sequence b at row
    (T + 2 + t) * B + b of the cell states; the last step's c is the op's own output.
    """
    seq_len, batch_size, input_width = layer_input.shape
    run_input = _in_run_order(layer_input, reverse, reversal)
    gate_rows = 4 * hidden_size
    has_bias = weights.b_ih is not None
    b_ih, b_hh = (weights.b_ih, weights.b_hh) if has_bias else (layer_input.new_zeros(gate_rows),) * 2
    state0 = layer_input.new_zeros(1, batch_size, hidden_size)
    # (input, weights, h0, c0, reverse, batch_sizes, mode, hidden_size, num_layers, has_biases,
    #  bidirectional, batch_first, train): train keeps the workspace, which the op returns only
    #  with grad enabled (nothing here requires grad, so no graph is built)
    with torch.enable_grad():
        output, _, last_cell, workspace = torch.mkldnn_rnn_layer(
            run_input, weights.w_ih, weights.w_hh, b_ih, b_hh, state0, state0,
            False, [], _LSTM_MODE, hidden_size, 1, has_bias, False, False, True,
        )
    gate_row = _padded(gate_rows)
    regions = (
        _pages(seq_len * batch_size * gate_row)
        + _pages(2 * (seq_len + 1) * batch_size * _padded(max(input_width, hidden_size)))
        + _pages(seq_len * batch_size * _padded(hidden_size))
    )
    cell_start = regions + (seq_len + 2) * batch_size * hidden_size
    cell_end = cell_start + seq_len * batch_size * hidden_size  # row T - 1 is free: c_{T-1} goes there
    if workspace is None or workspace.dtype != torch.uint8 or workspace.numel() < 4 * cell_end:
        return None
    floats = workspace.numpy().view(np.float32)
    gates = floats[: seq_len * batch_size * gate_row].reshape(seq_len, batch_size, gate_row)[:, :, :gate_rows]
    cell = floats[cell_start:cell_end].reshape(seq_len, batch_size, hidden_size)
    cell[-1] = last_cell.numpy().reshape(batch_size, hidden_size)
    hidden = output.numpy()
    if not _read_agrees(hidden, cell, gates[:, :, 3 * hidden_size :]):
        return None
    if reverse:
        return _RunResult(*(_in_input_order(a, reversal) for a in (output, gates, cell)))
    return _RunResult(output, gates, cell)


_LSTM_MODE = 2  # PyTorch's RNN mode number of an LSTM


def _read_agrees(hidden: np.ndarray, cell: np.ndarray, output_gate: np.ndarray) -> bool:
    """Whether h = o tanh(c) holds on 64 (step, sequence) rows spread over the batch, both ends
    among them: a misread shifts whole blocks of rows (see core.engine.tracing)."""
    rows = hidden.shape[0] * hidden.shape[1]
    picked = np.unique(np.linspace(0, rows - 1, 64).round().astype(np.intp))
    steps, sequences = np.divmod(picked, hidden.shape[1])
    with np.errstate(all="ignore"):  # a misread may hold any bits
        residual = output_gate[steps, sequences] * np.tanh(cell[steps, sequences]) - hidden[steps, sequences]
        return bool(np.abs(residual).max() <= 1e-5)


def _rnn_kernel(nonlinearity, layer_input, weights: _Weights, hidden_size, reverse, reversal) -> _RunResult:
    """A vanilla RNN's layer and direction in PyTorch's own kernel (it has no gates to keep)."""
    params = [weights.w_ih, weights.w_hh] + ([weights.b_ih, weights.b_hh] if weights.b_ih is not None else [])
    kernel = torch.rnn_relu if nonlinearity == "relu" else torch.rnn_tanh
    h0 = layer_input.new_zeros(1, layer_input.shape[1], hidden_size)
    output = kernel(_in_run_order(layer_input, reverse, reversal), h0, params, weights.b_ih is not None,
                    1, 0.0, False, False, False)[0]
    return _RunResult(_in_input_order(output, reversal) if reverse else output, None, None)


def _in_run_order(layer_input: torch.Tensor, reverse: bool, reversal: torch.Tensor | None) -> torch.Tensor:
    """A direction's input in the order it runs: a reverse direction reads each sequence from its
    own last step (`reversal`, where lengths differ) or the whole batch flipped."""
    if not reverse:
        return layer_input
    if reversal is None:
        return layer_input.flip(0)
    return layer_input.gather(0, reversal.unsqueeze(2).expand(-1, -1, layer_input.shape[2]))


def _in_input_order(values, reversal: torch.Tensor | None):
    """A reverse direction's (T, B, ...) results back in input order (the reversal is its own
    inverse); a view where the whole batch was flipped."""
    if isinstance(values, torch.Tensor):
        if reversal is None:
            return values.flip(0)
        return values.gather(0, reversal.unsqueeze(2).expand(-1, -1, values.shape[2]))
    if reversal is None:
        return values[::-1]
    return np.take_along_axis(values, reversal.numpy()[:, :, None], axis=0)


def _loop(cell_type, nonlinearity, weights: _Weights, layer_input, clamps: Clamps | None, reverse, waiting,
          into: _RunResult | None) -> _RunResult:
    """One layer and direction as a loop over time on the whole batch: h, gates (PyTorch's row
    order) and c, time-major in input order, written into `into` (torch tensors) where given.

    `waiting` (T, B, 1) marks, for a reverse direction of a padded batch, the steps beyond each
    sequence's length: its state is held at zero there, so that it starts at its own last step.
    Clamps are written in as soon as their quantity is computed, as in the clamped network."""
    seq_len, batch_size, _ = layer_input.shape
    H = weights.w_hh.shape[1]
    blocks = CELLS[cell_type].blocks
    if into is None:
        into = _RunResult(
            _empty(layer_input, (seq_len, batch_size, H)),
            _empty(layer_input, (seq_len, batch_size, blocks * H)) if cell_type != "rnn" else None,
            _empty(layer_input, (seq_len, batch_size, H)) if cell_type == "lstm" else None,
        )
    flat_input = layer_input.reshape(seq_len * batch_size, -1)
    steps = range(seq_len - 1, -1, -1) if reverse else range(seq_len)
    clamp_at = _ClampsPerStep(clamps, H) if clamps is not None else None
    previous_h = layer_input.new_zeros(batch_size, H)
    recurrent = weights.w_hh.T.contiguous()
    b_ih, b_hh = weights.b_ih, weights.b_hh

    if cell_type == "lstm":
        _project(flat_input, weights.w_ih, None if b_ih is None else b_ih + b_hh, out=into.gates.view(-1, 4 * H))
        previous_c = layer_input.new_zeros(batch_size, H)
        for t in steps:
            gates = into.gates[t]
            gates.addmm_(previous_h, recurrent)
            gates[:, : 2 * H].sigmoid_()  # i, f
            gates[:, 2 * H : 3 * H].tanh_()  # g
            gates[:, 3 * H :].sigmoid_()  # o
            if clamp_at is not None:
                clamp_at.gates(gates, t)
            c = into.cell[t]
            torch.mul(gates[:, H : 2 * H], previous_c, out=c)
            c.addcmul_(gates[:, :H], gates[:, 2 * H : 3 * H])
            if clamp_at is not None:
                clamp_at.target(c, t, "cell_state")
            h = into.hidden[t]
            torch.tanh(c, out=h)
            h.mul_(gates[:, 3 * H :])
            if clamp_at is not None:
                clamp_at.target(h, t, "hidden")
            if waiting is not None:
                c.masked_fill_(waiting[t], 0.0)
                h.masked_fill_(waiting[t], 0.0)
            previous_h, previous_c = h, c
        return into

    if cell_type == "gru":
        _project(flat_input, weights.w_ih, b_ih, out=into.gates.view(-1, 3 * H))
        from_hidden = layer_input.new_empty(batch_size, 3 * H)
        for t in steps:
            gates = into.gates[t]
            if b_hh is None:
                torch.mm(previous_h, recurrent, out=from_hidden)
            else:
                torch.addmm(b_hh, previous_h, recurrent, out=from_hidden)
            gates[:, : 2 * H].add_(from_hidden[:, : 2 * H]).sigmoid_()  # r, z
            if clamp_at is not None:
                clamp_at.gates(gates, t, only=("reset", "update"))  # a clamped r enters n
            new = gates[:, 2 * H :]
            new.addcmul_(gates[:, :H], from_hidden[:, 2 * H :]).tanh_()
            if clamp_at is not None:
                clamp_at.gates(gates, t, only=("new",))
            h = into.hidden[t]
            torch.lerp(new, previous_h, gates[:, H : 2 * H], out=h)  # (1 - z) n + z h
            if clamp_at is not None:
                clamp_at.target(h, t, "hidden")
            if waiting is not None:
                h.masked_fill_(waiting[t], 0.0)
            previous_h = h
        return into

    # a vanilla RNN with interventions
    _project(flat_input, weights.w_ih, None if b_ih is None else b_ih + b_hh, out=into.hidden.view(-1, H))
    activate = torch.relu_ if nonlinearity == "relu" else torch.tanh_
    for t in steps:
        h = into.hidden[t]
        h.addmm_(previous_h, recurrent)
        activate(h)
        if clamp_at is not None:
            clamp_at.target(h, t, "hidden")
        if waiting is not None:
            h.masked_fill_(waiting[t], 0.0)
        previous_h = h
    return into


def _empty(like: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """A new tensor for results, allocated by numpy on CPU: first writes to fresh memory (page
    faults) cost PyTorch's CPU allocator about twice what they cost numpy's, and the results are
    tens of megabytes."""
    if like.device.type != "cpu":
        return like.new_empty(shape)
    return torch.from_numpy(np.empty(shape, dtype=torch.empty(0, dtype=like.dtype).numpy().dtype))


def _project(inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor) -> None:
    """out = inputs @ weight.T + bias, every step at once, into the loop's buffer."""
    if bias is None:
        torch.mm(inputs, weight.T, out=out)
    else:
        torch.addmm(bias, inputs, weight.T, out=out)


class _ClampsPerStep:
    """A run's clamps as the loop applies them: per step and target, the columns and values
    (a gate's columns in the (B, blocks * H) gate row, PyTorch's order)."""

    _GATE_BLOCK = {name: k for cell in CELLS.values() for k, name in enumerate(cell.gate_names)}

    def __init__(self, clamps: Clamps, hidden_size: int):
        self._columns: dict[str, list] = {}
        for target, mask in clamps.masks.items():
            offset = self._GATE_BLOCK.get(target, 0) * hidden_size
            per_step: list = [None] * len(mask)
            made: dict[bytes, tuple] = {}
            values = clamps.values[target]
            for t in np.flatnonzero(mask.any(axis=1)):
                units = np.flatnonzero(mask[t])
                key = units.tobytes() + values[t, units].tobytes()
                if key not in made:
                    made[key] = (torch.from_numpy(units + offset), torch.from_numpy(values[t, units]))
                per_step[t] = made[key]
            self._columns[target] = per_step
        self._gates = [name for name in self._columns if name in self._GATE_BLOCK]

    def target(self, tensor: torch.Tensor, t: int, target: str) -> None:
        """Write the clamps of `target` at step t into the (B, H) tensor."""
        columns = self._columns.get(target)
        if columns is not None and columns[t] is not None:
            index, values = columns[t]
            tensor[:, index] = values.to(tensor.dtype)

    def gates(self, gates: torch.Tensor, t: int, only: tuple[str, ...] | None = None) -> None:
        """Write the clamped gates at step t into the (B, blocks * H) gate row."""
        for name in self._gates:
            if only is None or name in only:
                self.target(gates, t, name)


def _reversed_within_lengths(lengths: np.ndarray, seq_len: int) -> torch.Tensor:
    """(T, B) time index: step t of sequence b reads t' = length_b - 1 - t within its length
    (an involution: applying it twice gives back input order), t itself beyond."""
    steps = np.arange(seq_len)[:, None]
    return torch.from_numpy(np.where(steps < lengths[None, :], lengths[None, :] - 1 - steps, steps))


def _checked_batch(rnn: nn.Module, x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a torch.Tensor of shape (B, T, {rnn.input_size}), not {type(x).__name__}.")
    if x.dim() != 3 or x.shape[2] != rnn.input_size:
        raise ValueError(
            f"x must have shape (B, T, {rnn.input_size}) for this module (a batch of sequences); got {tuple(x.shape)}."
        )
    if x.shape[0] < 1:
        raise ValueError("x holds no sequences: a batch needs at least one.")
    if x.shape[1] < 1:
        raise ValueError("x is empty: a sequence needs at least one timestep.")
    reference = rnn.weight_hh_l0
    return x.detach().to(device=reference.device, dtype=reference.dtype)


def _checked_lengths(lengths, batch_size: int, seq_len: int) -> np.ndarray:
    if lengths is None:
        return np.full(batch_size, seq_len, dtype=np.int64)
    if isinstance(lengths, torch.Tensor):
        lengths = lengths.detach().cpu().numpy()
    array = np.asarray(lengths)
    if array.shape != (batch_size,):
        raise ValueError(f"lengths must hold one length per sequence ({batch_size}); got shape {array.shape}.")
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError("lengths must be whole numbers.")
    if np.issubdtype(array.dtype, np.floating) and not (np.isfinite(array).all() and (array == np.round(array)).all()):
        raise ValueError("lengths must be whole numbers.")
    array = array.astype(np.int64)
    if array.min() < 1 or array.max() > seq_len:
        raise ValueError(
            f"Each length must be from 1 to the padded length T = {seq_len}; got {array.min()} to {array.max()}."
        )
    return array


def _finite(values: torch.Tensor) -> bool:
    if values.device.type == "cpu" and values.dtype in (torch.float32, torch.float64):
        return math.isfinite(values.numpy().sum(dtype=np.float64))  # see core.engine.tracing
    return bool(torch.isfinite(values).all())


def _float32(array: np.ndarray) -> np.ndarray:
    return array if array.dtype == np.float32 else array.astype(np.float32)


def _numpy(values) -> np.ndarray:
    return values.cpu().numpy() if isinstance(values, torch.Tensor) else values
