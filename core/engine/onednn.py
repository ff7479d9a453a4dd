"""Reading an LSTM's gates and cell state from oneDNN's workspace (CPU, float32).

nn.LSTM on CPU runs oneDNN's kernel, which keeps every gate and the cell state of every step but
the last for its own backward pass. Reading them spares the engine a recompute. The layout is
oneDNN's own, not a documented promise: `workspace_layout` was fitted to it, and the engine
checks every read against the kernel's own h (see core.engine.tracing) and recomputes on any
disagreement.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# oneDNN's workspace is fresh memory on every call, tens to hundreds of MB for a batch, and the
# kernel's first writes to it fault in one 4 KiB page at a time: on a 2-core VM that costs about
# as much as the kernel's own work. PyTorch's CPU allocator backs its allocations of 2 MiB and
# more with transparent huge pages (2 MiB, 512 times fewer faults) when THP_MEM_ALLOC_ENABLE is
# set before its first allocation that large; importing the engine sets it unless the caller
# chose otherwise. (numpy already asks for huge pages for its large arrays.)
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402


@dataclass
class SavedByKernel:
    """An LSTM's gates and cell state as the fused kernel computed them (see `onednn_lstm`)."""

    gates: np.ndarray  # (T, 4H): i, f, g, o after their nonlinearities
    cell: np.ndarray  # (T, H): c_t


def runs_on_onednn(inputs: torch.Tensor) -> bool:
    """Whether PyTorch runs an LSTM on these inputs through oneDNN (CPU, float32), as nn.LSTM does."""
    return (
        _HAS_ONEDNN_LSTM
        and inputs.dtype == torch.float32
        and inputs.device.type == "cpu"
        and torch.backends.mkldnn.enabled  # can be switched off at run time
    )


# what this torch build has never changes while it runs
_HAS_ONEDNN_LSTM = torch.backends.mkldnn.is_available() and hasattr(torch, "mkldnn_rnn_layer")


_LSTM_MODE = 2  # the mode number PyTorch's RNN ops use for an LSTM (RNN_RELU 0, RNN_TANH 1, GRU 3)


def onednn_lstm(inputs: torch.Tensor, w_ih: torch.Tensor, weights, hidden_size: int):
    """The op nn.LSTM itself calls on CPU, called directly so that its workspace comes back.
    `weights` is the layer's core.engine.tracing.LayerWeights (w_hh, b_ih, b_hh).

    oneDNN's LSTM keeps, for its backward pass, every gate activation and the cell state of
    every step but the last in that workspace; the last is the op's `cy`. Reading them saves
    recomputing the gates (two matmuls and four nonlinearities over the sequence) and the cell
    state (a scan). The layout is oneDNN's own, not a public promise (`workspace_layout`), so
    core.engine.tracing checks every read against the kernel's own h and recomputes on any
    disagreement. The op is differentiable: autograd runs its backward as it does for nn.LSTM.
    """
    seq_len, gate_rows = inputs.shape[0], 4 * hidden_size
    state0 = inputs.new_zeros(1, hidden_size)
    has_bias = weights.b_ih is not None
    b_ih, b_hh = (weights.b_ih, weights.b_hh) if has_bias else (inputs.new_zeros(gate_rows),) * 2
    # (input, weights, h0, c0, reverse, batch_sizes, mode, hidden_size, num_layers, has_biases,
    #  bidirectional, batch_first, train)
    output, _, last_cell, workspace = torch.mkldnn_rnn_layer(
        inputs.unsqueeze(1), w_ih, weights.w_hh, b_ih, b_hh, state0, state0,
        False, [], _LSTM_MODE, hidden_size, 1, has_bias, False, False, True,
    )
    output = output.squeeze(1)
    gate_row, cell_start = workspace_layout(seq_len, inputs.shape[1], hidden_size)
    if workspace.dtype != torch.uint8 or workspace.numel() < 4 * (cell_start + (seq_len - 1) * hidden_size):
        return output, None
    floats = workspace.numpy().view(np.float32)  # numpy: fewer dispatches than torch views
    gates = floats[: seq_len * gate_row].reshape(seq_len, gate_row)[:, :gate_rows]
    cell = np.empty((seq_len, hidden_size), np.float32)
    cell[:-1] = floats[cell_start : cell_start + (seq_len - 1) * hidden_size].reshape(-1, hidden_size)
    cell[-1] = last_cell.detach().numpy().reshape(hidden_size)
    return output, SavedByKernel(gates, cell)


def workspace_layout(seq_len: int, input_width: int, hidden_size: int) -> tuple[int, int]:
    """Where a one-layer, one-direction, batch-1 LSTM's float32 workspace keeps what we read.

    Returns (length of a gate row, offset of c_0), in floats. oneDNN lays out, each region
    starting on a 4 KiB page: the gates, one padded row of i, f, g, o per step; the layer
    states, 2 x (T + 1) padded rows as wide as the wider of input and hidden; the iteration
    states, T padded rows of H; then the cell states, 2 x (T + 1) rows of H, in which c_t of
    our layer is row T + 2 + t. Fitted to 85 random shapes, tested on more; at run time
    `_kernel_read_agrees` checks every read.
    """
    gate_row = _padded(4 * hidden_size)
    regions = (
        _pages(seq_len * gate_row)
        + _pages(2 * (seq_len + 1) * _padded(max(input_width, hidden_size)))
        + _pages(seq_len * _padded(hidden_size))
    )
    return gate_row, regions + (seq_len + 2) * hidden_size


def _padded(columns: int) -> int:
    """A row of float32 padded to a multiple of 64 bytes but not of 1 KiB (cache aliasing)."""
    row = -(-columns // 16) * 16
    return row + 16 if row % 256 == 0 else row


def _pages(floats: int) -> int:
    """Floats rounded up to whole 4 KiB pages."""
    return -(-floats // 1024) * 1024
