"""An exact trace across an encoder-decoder hand-off.

    from core.trace import trace_handoff
    encoder_trace, decoder_trace = trace_handoff(encoder, decoder, x_enc, x_dec, loss)

The decoder starts from the encoder's final state, as `decoder(x_dec, encoder(x_enc)[1])` does
(h_n, and c_n for an LSTM, layer by layer), and `loss` maps the decoder's top output sequence to
a scalar. Both traces are of that one scalar, from one backward pass through both modules: the
decoder's holds its own states, gates and gradients and, in `grad_initial`, the gradient
reaching the hand-off state; the encoder's holds the decoder's loss flowing back across the
hand-off into every encoder step. `joined(encoder_trace, decoder_trace)` puts both on one time
axis, as Explore shows them. Each module runs as `trace` runs it (core.engine.tracing's
`traced_forward`, `traced_gradients` and `trace_of`); the encoder's final states stay in the
autograd graph as the decoder's initial state.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from core.cells import CELLS
from core.engine.tracing import (
    RunStart,
    Trace,
    checked_input,
    checked_module,
    checked_objective,
    trace_of,
    traced_forward,
    traced_gradients,
)

RecurrentModule = nn.RNN | nn.LSTM | nn.GRU


@torch.enable_grad()  # the kernels save what their backward needs only with grad enabled
def trace_handoff(
    encoder: RecurrentModule,
    decoder: RecurrentModule,
    x_enc: torch.Tensor,
    x_dec: torch.Tensor,
    objective: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[Trace, Trace]:
    """Trace `encoder` on `x_enc` (T_enc, encoder.input_size) and `decoder` on `x_dec`
    (T_dec, decoder.input_size) started from the encoder's final state.

    `objective` maps the decoder's top output (T_dec, H) to a scalar tensor (the decoder's loss).
    Encoder and decoder are the same cell type (an RNN's nonlinearity may differ), with the same
    number of layers and hidden size, one direction each. Returns (encoder's Trace, decoder's
    Trace), both with `objective` the loss: the encoder's gradients are the loss's, flowing back
    across the hand-off; the decoder's `grad_initial` (and `grad_initial_cell`) is the gradient
    reaching the state handed over.
    """
    cell_type = _checked_pair(encoder, decoder)
    x_enc = checked_input(encoder, x_enc)
    x_dec = checked_input(decoder, x_dec)
    lstm = cell_type == "lstm"
    encoded = traced_forward(encoder, cell_type, x_enc, keep_last_cell=lstm)
    # h_n of each layer is its last output; c_n, its final cell state kept in the graph
    handed_over = [RunStart(run.output[-1], run.last_cell) for run in encoded.runs]
    decoded = traced_forward(decoder, cell_type, x_dec, starts=handed_over)
    loss = checked_objective(objective, decoded.top_output)
    encoder_gradients, decoder_gradients = traced_gradients(loss, [encoded, decoded])
    return trace_of(encoded, encoder_gradients, loss), trace_of(decoded, decoder_gradients, loss)


def _checked_pair(encoder: nn.Module, decoder: nn.Module) -> str:
    """The shared cell type; ValueError where the decoder cannot start from the encoder's state."""
    encoder_cell, decoder_cell = checked_module(encoder), checked_module(decoder)
    if encoder_cell != decoder_cell:
        raise ValueError(
            f"The encoder is an {CELLS[encoder_cell].display_name} and the decoder a "
            f"{CELLS[decoder_cell].display_name}: the decoder starts from the encoder's state, so "
            "both must be the same cell type."
        )
    for role, module in (("encoder", encoder), ("decoder", decoder)):
        if module.bidirectional:
            raise ValueError(
                f"The {role} is bidirectional: the hand-off takes one direction in each module "
                "(the encoder's final state is the decoder's initial state, layer by layer)."
            )
    if encoder.num_layers != decoder.num_layers or encoder.hidden_size != decoder.hidden_size:
        raise ValueError(
            f"The encoder has {encoder.num_layers} layer(s) of {encoder.hidden_size} units and the decoder "
            f"{decoder.num_layers} of {decoder.hidden_size}: the decoder starts from the encoder's state, "
            "so both must have the same layers and hidden size."
        )
    encoder_weight, decoder_weight = encoder.weight_hh_l0, decoder.weight_hh_l0
    if encoder_weight.dtype != decoder_weight.dtype or encoder_weight.device != decoder_weight.device:
        raise ValueError(
            f"The encoder's weights are {encoder_weight.dtype} on {encoder_weight.device} and the decoder's "
            f"{decoder_weight.dtype} on {decoder_weight.device}: the state handed over needs both alike."
        )
    return encoder_cell


def joined(encoder: Trace, decoder: Trace) -> Trace:
    """The two traces of `trace_handoff` on one time axis: steps 0 .. T_enc - 1 the encoder's,
    then the decoder's. Every step's values and gradients are its own module's, all of the one
    loss; the decoder's first step follows the encoder's last as it does in the network (its
    h_{t-1}, and c_{t-1} for an LSTM, is the state handed over), so a view that reads the step
    before from the trace reads the hand-off. `output` is both modules' top outputs in that order
    (the decoder's are the last T_dec rows), and `grad_initial` the encoder's, from its zero
    start."""
    if (encoder.cell_type, encoder.hidden.shape[:2], encoder.hidden_size) != (
            decoder.cell_type, decoder.hidden.shape[:2], decoder.hidden_size):
        raise ValueError("an encoder's and a decoder's traces join only where the decoder starts "
                         "from the encoder's state: the same cell, layers and hidden size")

    def steps(a, b, axis: int):
        return None if a is None else np.concatenate([a, b], axis=axis)

    return Trace(
        cell_type=encoder.cell_type,
        hidden=steps(encoder.hidden, decoder.hidden, 2),
        cell=steps(encoder.cell, decoder.cell, 2),
        gates={name: steps(encoder.gates[name], decoder.gates[name], 2) for name in encoder.gates},
        grad_hidden=steps(encoder.grad_hidden, decoder.grad_hidden, 2),
        grad_cell=steps(encoder.grad_cell, decoder.grad_cell, 2),
        grad_input=steps(encoder.grad_input, decoder.grad_input, 0),
        output=steps(encoder.output, decoder.output, 0),
        objective=decoder.objective,
        grad_initial=encoder.grad_initial,
        grad_initial_cell=encoder.grad_initial_cell,
    )
