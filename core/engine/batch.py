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
The module's batch-first `output` is made only when read (a copy for a padded batch, which cost a
third of the kernel's time at 256 x 200, and statistics never read it). What is left is memory:
the LSTM's workspace is fresh memory on every call (see core.engine.onednn on huge pages), and
the kernel's first writes to it cost about a fifth more than the module's own forward, which
keeps no gates. (Measured: with freed memory kept mapped, glibc's thresholds raised, the same
call took 24 ms against the module's 30 ms at 256 x 200; the server hands big blocks back to the
system instead, core.memory.)

Padded batches follow PyTorch's packed sequences: a reverse direction starts at each sequence's
own last step. The loop runs a reverse direction from step T - 1 down for the whole batch and
holds a sequence's state at zero until its own last step comes; the kernels read each sequence
reversed within its length. The LSTM kernel is given NaN beyond each length, so what it computes
there is already the NaN the result holds (checked on the shortest sequences); elsewhere NaN is
written beyond each length with one numpy call per distinct length.
"""

from __future__ import annotations

import functools
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
    lengths: np.ndarray  # (B,) int64

    @functools.cached_property
    def output(self) -> np.ndarray:
        """(B, T, D*H): the top layer's output, as the module returns it (zeros beyond each
        length, as pad_packed_sequence gives). Made when first read: for a padded batch or two
        directions it is a copy, which costs the kernel's time a third again at 256 x 200, and
        statistics over gates and states never read it."""
        top = self.hidden[:, -1]  # (B, D, T, H)
        batch_size, num_dirs, seq_len, hidden_size = top.shape
        beyond = self.lengths < seq_len
        if num_dirs == 1 and not beyond.any():
            return top[:, 0]
        output = np.empty((batch_size, seq_len, num_dirs, hidden_size), np.float32)  # never a view of hidden
        np.copyto(output, top.transpose(0, 2, 1, 3))
        output = output.reshape(batch_size, seq_len, num_dirs * hidden_size)
        for length in np.unique(self.lengths[beyond]):
            output[self.lengths == length, length:] = 0.0
        return output

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
    padding = _Padding(lengths, seq_len) if lengths.min() < seq_len else None
    if not _finite(x):  # padding may hold anything (NaN included): only the steps within count
        if padding is None:
            raise ValueError("x contains NaN or infinite values.")
        if not _finite(x[torch.from_numpy(~padding.beyond.T)]):
            raise ValueError("x contains NaN or infinite values within the sequences' lengths.")
    clamps: dict[tuple[int, int], Clamps] = {}
    if interventions:
        checked = checked_interventions(cell_type, rnn, interventions, seq_len)
        clamps = clamps_by_run(checked, seq_len, rnn.hidden_size)

    num_layers, num_dirs, hidden_size = rnn.num_layers, 2 if rnn.bidirectional else 1, rnn.hidden_size
    blocks = CELLS[cell_type].blocks
    lstm, gated = cell_type == "lstm", cell_type != "rnn"
    nonlinearity = getattr(rnn, "nonlinearity", "tanh")
    on_cpu32 = x.dtype == torch.float32 and x.device.type == "cpu"
    # one run's results become the result as they are; several are gathered into one buffer
    stacked = None
    if num_layers * num_dirs > 1:
        def buffer(width):
            return np.empty((num_layers, num_dirs, seq_len, batch_size, width), np.float32)  # see `_empty`

        stacked = _RunResult(buffer(hidden_size), buffer(blocks * hidden_size) if gated else None,
                             buffer(hidden_size) if lstm else None)
    with torch.no_grad():
        source = _LayerInput(x, None, padding)
        for layer in range(num_layers):
            carried = []  # each direction's h in the module's dtype: the next layer's input
            for direction in range(num_dirs):
                weights = _weights(rnn, layer, direction)
                run_clamps = clamps.get((layer, direction))
                reverse = direction == 1
                into = None if stacked is None else _RunResult(
                    *(None if a is None else a[layer, direction] for a in stacked.arrays())
                )
                result, in_place = None, False  # (T, B, ...) numpy arrays, input order
                if lstm and run_clamps is None and runs_on_onednn(x):
                    result = _onednn_lstm(source, weights, hidden_size, reverse, padding)
                    own_hidden = None if result is None else torch.from_numpy(result.hidden)
                elif cell_type == "rnn" and run_clamps is None:
                    own_hidden = _rnn_kernel(nonlinearity, source, weights, hidden_size, reverse, padding)
                    result = _RunResult(_numpy(own_hidden), None, None)
                # given NaN beyond each length, the LSTM kernel and a forward loop without clamps
                # carry it through (checked); the RNN kernel reads x's padding as it is, clamps
                # write their values there and a reverse loop holds its state at 0
                carries_nan = lstm and result is not None
                if result is None:  # the loop, straight into the result's buffers where it can
                    in_place = into is not None and on_cpu32
                    loop_into = _RunResult(*(None if a is None else torch.from_numpy(a) for a in into.arrays())) if in_place else None
                    waiting = padding.waiting() if padding is not None and reverse else None
                    looped = _loop(cell_type, nonlinearity, weights, source.time_major(), run_clamps, reverse, waiting, loop_into)
                    own_hidden = looped.hidden
                    result = _RunResult(*(None if a is None else _numpy(a) for a in looped.arrays()))
                    carries_nan = run_clamps is None and not reverse
                if padding is not None and not (carries_nan and _beyond_is_nan(padding, result)):
                    for array in result.arrays():
                        if array is not None:
                            padding.fill(array, np.nan)
                if into is not None and not in_place:
                    for whole, part in zip(into.arrays(), result.arrays()):
                        if whole is not None:
                            np.copyto(whole, part, casting="same_kind")
                carried.append(own_hidden)
            source = _LayerInput(None, carried, padding)

    if stacked is None:  # one run: its own arrays, with a layer and a direction axis
        stacked = _RunResult(*(None if a is None else _float32(a)[None, None] for a in result.arrays()))

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
        lengths=lengths,
    )


class _Padding:
    """The lengths of a right-padded batch in which some sequence is shorter than T: the steps
    beyond each length, the sequences ordered by length, and grouped by it (a write beyond every
    length is one numpy call per distinct length, not a mask over the whole array)."""

    def __init__(self, lengths: np.ndarray, seq_len: int):
        self.lengths, self.seq_len = lengths, seq_len
        self.beyond = np.arange(seq_len)[:, None] >= lengths[None, :]  # (T, B)
        self.longest_first = np.argsort(-lengths, kind="stable")  # stable: rows of a length stay in order
        ordered = lengths[self.longest_first]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        stops = np.r_[starts[1:], len(ordered)]
        self.groups = [
            (int(ordered[start]), self.longest_first[start:stop])
            for start, stop in zip(starts, stops)
            if ordered[start] < seq_len
        ]

    def fill(self, array: np.ndarray, value: float) -> None:
        """Set every step beyond its sequence's length in a (T, B, ...) array."""
        for length, rows in self.groups:
            array[length:, rows] = value

    def waiting(self) -> torch.Tensor:
        """(T, B, 1): the steps beyond each sequence's length, where a reverse loop holds it at zero."""
        return torch.from_numpy(self.beyond).unsqueeze(2)

    def reversed_within(self, rows, steps: int) -> np.ndarray:
        """(steps, b) time index of a reverse run over the sequences `rows`: step t of sequence j
        reads input position length_j - 1 - t within its length, t itself beyond (an involution:
        the same index maps the run's results back to input order)."""
        lengths = self.lengths[rows][None, :]
        t = np.arange(steps)[:, None]
        return np.where(t < lengths, lengths - 1 - t, t)


class _LayerInput:
    """What one layer reads: the batch x (B, T, in) for the first, the directions' h of the
    layer below (time-major, in the module's dtype) for the others. The first layer's copy has
    NaN beyond each length, whatever the caller's padding held, and so has h beyond it once a
    layer is done: what the kernels compute there is then NaN too, as the result wants it."""

    def __init__(self, x: torch.Tensor | None, carried: list | None, padding: _Padding | None):
        self._x, self._carried, self._padding = x, carried, padding
        self._time_major = None

    def time_major(self, as_given: bool = False) -> torch.Tensor:
        """(T, B, in) in the module's dtype: the whole batch, as the loop and PyTorch's kernels read
        it. `as_given`: the first layer's x as the caller gave it, padding and all, as a strided
        view (PyTorch's RNN kernels read one, as nn.RNN gives them)."""
        if self._x is not None:
            if as_given:
                return self._x.transpose(0, 1)
            if self._time_major is None:  # a copy even where the transpose is contiguous: x is the caller's
                given = self._x.transpose(0, 1)
                self._time_major = _empty(given, tuple(given.shape)).copy_(given)  # see `_empty`
                if self._padding is not None and self._x.device.type == "cpu":
                    self._padding.fill(self._time_major.numpy(), np.nan)
                elif self._padding is not None:
                    self._time_major.masked_fill_(self._padding.waiting().to(self._x.device), math.nan)
            return self._time_major
        if len(self._carried) == 1:
            return self._carried[0]
        if self._time_major is None:
            self._time_major = torch.cat(self._carried, dim=2)
        return self._time_major


def _beyond_is_nan(padding: _Padding, result: _RunResult) -> bool:
    """Whether a kernel given NaN beyond each length carried it into its results there, on the
    first step beyond the shortest sequences and the last step (a kernel that maps NaN to a
    number would do it everywhere)."""
    rows = padding.longest_first[::-1][:8]
    rows = rows[padding.lengths[rows] < padding.seq_len]
    steps = padding.lengths[rows]
    with np.errstate(all="ignore"):
        return all(
            np.isnan(array[steps, rows]).all() and np.isnan(array[-1, rows]).all()
            for array in result.arrays()
            if array is not None
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


def _onednn_lstm(source: _LayerInput, weights: _Weights, hidden_size: int, reverse: bool,
                 padding: _Padding | None) -> _RunResult | None:
    """One layer and direction of a float32 LSTM in oneDNN's kernel, its gates and cell states
    read from the kernel's workspace: (T, B, ...) views in input order (copies for a reverse
    direction of a padded batch); None where the read does not check out (the loop then runs).

    The workspace is laid out as for one sequence (core.engine.onednn.workspace_layout), every
    row a row per sequence: gate rows (t, b) of padded(4H) floats, and c_t of sequence b at row
    (T + 2 + t) * B + b of the cell states; the last step's c is the op's own output.
    """
    layer_input = source.time_major()
    seq_len, batch_size, input_width = layer_input.shape
    reversal = None
    if reverse and padding is not None:
        reversal = padding.reversed_within(slice(None), seq_len)
        layer_input = layer_input.gather(0, torch.from_numpy(reversal).unsqueeze(2).expand(-1, -1, input_width))
    elif reverse:
        layer_input = layer_input.flip(0)
    gate_rows = 4 * hidden_size
    has_bias = weights.b_ih is not None
    b_ih, b_hh = (weights.b_ih, weights.b_hh) if has_bias else (layer_input.new_zeros(gate_rows),) * 2
    state0 = layer_input.new_zeros(1, batch_size, hidden_size)
    # (input, weights, h0, c0, reverse, batch_sizes, mode, hidden_size, num_layers, has_biases,
    #  bidirectional, batch_first, train): train keeps the workspace, which the op returns only
    #  with grad enabled (nothing here requires grad, so no graph is built)
    with torch.enable_grad():
        output, _, last_cell, workspace = torch.mkldnn_rnn_layer(
            layer_input, weights.w_ih, weights.w_hh, b_ih, b_hh, state0, state0,
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
    if not _read_agrees(hidden, cell, gates[:, :, 3 * hidden_size :], padding):
        return None
    if reversal is not None:  # the reversal is its own inverse
        return _RunResult(*(np.take_along_axis(a, reversal[:, :, None], axis=0) for a in (hidden, gates, cell)))
    if reverse:
        return _RunResult(output.flip(0).numpy(), gates[::-1], cell[::-1])
    return _RunResult(hidden, gates, cell)


_LSTM_MODE = 2  # PyTorch's RNN mode number of an LSTM


def _read_agrees(hidden: np.ndarray, cell: np.ndarray, output_gate: np.ndarray, padding: _Padding | None) -> bool:
    """Whether h = o tanh(c) holds at 64 (step, sequence) rows spread over the batch, both ends
    among them, within each sequence's length: a misread shifts whole blocks of rows (see
    core.engine.tracing)."""
    rows = hidden.shape[0] * hidden.shape[1]
    picked = np.unique(np.linspace(0, rows - 1, 64).round().astype(np.intp))
    steps, sequences = np.divmod(picked, hidden.shape[1])
    if padding is not None:  # in run order too, a sequence's own steps come first
        steps = np.minimum(steps, padding.lengths[sequences] - 1)
    with np.errstate(all="ignore"):  # a misread may hold any bits
        residual = output_gate[steps, sequences] * np.tanh(cell[steps, sequences]) - hidden[steps, sequences]
        return bool(np.abs(residual).max() <= 1e-5)


def _rnn_kernel(nonlinearity, source: _LayerInput, weights: _Weights, hidden_size, reverse,
                padding: _Padding | None) -> torch.Tensor:
    """A vanilla RNN's layer and direction in PyTorch's own kernel (it has no gates to keep):
    (T, B, H) h in input order; beyond each length whatever the padding gave."""
    params = [weights.w_ih, weights.w_hh] + ([weights.b_ih, weights.b_hh] if weights.b_ih is not None else [])
    kernel = torch.rnn_relu if nonlinearity == "relu" else torch.rnn_tanh
    layer_input = source.time_major(as_given=True)
    h0 = layer_input.new_zeros(1, layer_input.shape[1], hidden_size)
    reversal = None
    if reverse:
        if padding is None:
            layer_input = layer_input.flip(0)
        else:
            reversal = torch.from_numpy(padding.reversed_within(slice(None), padding.seq_len))
            layer_input = layer_input.gather(0, reversal.unsqueeze(2).expand(-1, -1, layer_input.shape[2]))
    output = kernel(layer_input, h0, params, weights.b_ih is not None, 1, 0.0, False, False, False)[0]
    if not reverse:
        return output
    if reversal is None:
        return output.flip(0)
    return output.gather(0, reversal.unsqueeze(2).expand(-1, -1, output.shape[2]))


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
    """Whether every value is finite: a sum is finite exactly then (NaN and inf carry through it),
    unless it overflows. A float32 sum is the cheaper; where it is not finite, a float64 sum,
    which float32 values cannot overflow, settles it."""
    if values.dtype in (torch.float32, torch.float64):
        return math.isfinite(values.sum()) or math.isfinite(values.sum(dtype=torch.float64))
    return bool(torch.isfinite(values).all())


def _float32(array: np.ndarray) -> np.ndarray:
    return array if array.dtype == np.float32 else array.astype(np.float32)


def _numpy(values) -> np.ndarray:
    return values.cpu().numpy() if isinstance(values, torch.Tensor) else values
