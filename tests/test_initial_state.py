"""Tracing from a given state, and across an encoder-decoder hand-off, against autograd.

`trace(rnn, x, objective, initial_state=h0 or (h0, c0))` and `trace_handoff(encoder, decoder,
x_enc, x_dec, loss)` against a per-step float64 unroll with PyTorch's documented equations that
starts each layer and direction from its row of h0 (and c0) and reads every gradient, those of
h0 and c0 included, off autograd. It shares no code with core.engine.
"""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import core.engine.tracing
from core.trace import Intervention, trace, trace_handoff

from unroll import (  # the reference unroll these tests hold the engine to
    CELLS, assert_close_relative, cell_kind, gradient_scale, initial_leaves, make_rnn, recorded_arrays,
    reference_trace, unroll,
)


def reference_handoff(encoder, decoder, x_enc, x_dec, objective):
    """The encoder unrolled from zeros, the decoder from its final states, one backward."""
    x_enc = x_enc.clone().requires_grad_(True)
    x_dec = x_dec.clone().requires_grad_(True)
    enc_h0, enc_c0 = initial_leaves(encoder)
    enc_output, enc_record, finals = unroll(encoder, x_enc, enc_h0, enc_c0)
    dec_h0 = torch.stack([h for h, _ in finals])
    lstm = cell_kind(encoder) == "lstm"
    dec_c0 = torch.stack([c for _, c in finals]) if lstm else torch.zeros_like(dec_h0, requires_grad=True)
    dec_h0.retain_grad(), dec_c0.retain_grad()
    dec_output, dec_record, _ = unroll(decoder, x_dec, dec_h0, dec_c0)
    value = objective(dec_output)
    value.backward()
    return (
        recorded_arrays(encoder, x_enc, enc_output, enc_record, value, enc_h0, enc_c0),
        recorded_arrays(decoder, x_dec, dec_output, dec_record, value, dec_h0, dec_c0),
    )


GRADIENTS = ("grad_hidden", "grad_cell", "grad_input", "grad_initial", "grad_initial_cell")


def assert_matches_reference(tr, ref, atol=1e-5, rtol=1e-4):
    for name in ("hidden", "output"):
        np.testing.assert_allclose(getattr(tr, name), ref[name], atol=atol, err_msg=name)
    if ref["cell"] is None:
        assert tr.cell is None and tr.grad_cell is None and tr.grad_initial_cell is None
    else:
        np.testing.assert_allclose(tr.cell, ref["cell"], atol=atol, err_msg="cell")
    assert set(tr.gates) == set(ref["gates"])
    for name, values in ref["gates"].items():
        np.testing.assert_allclose(tr.gates[name], values, atol=atol, err_msg=name)
    for name in GRADIENTS:
        if ref[name] is not None:
            assert_close_relative(getattr(tr, name), ref[name], rtol, name, gradient_scale(ref))
    assert math.isclose(tr.objective, ref["objective"], rel_tol=1e-5, abs_tol=1e-6)


def every_step_loss(width, seed=0):
    """A loss on every step of the top output, so every step's gradient is its own."""
    generator = torch.Generator().manual_seed(seed)
    head = torch.randn(width, dtype=torch.float64, generator=generator)

    def loss(output):
        return ((output @ head.to(output.dtype) - 0.3) ** 2).mean()

    return loss


def random_state(rnn, seed, scale=1.0):
    rows = rnn.num_layers * (2 if rnn.bidirectional else 1)
    generator = torch.Generator().manual_seed(seed)
    h0 = scale * torch.randn(rows, rnn.hidden_size, dtype=torch.float64, generator=generator)
    # an RNN's and a GRU's h lies in [-1, 1] (a ReLU RNN's is >= 0); an LSTM's c is unbounded
    c0 = 2 * scale * torch.randn(rows, rnn.hidden_size, dtype=torch.float64, generator=generator)
    return h0.clamp(-1, 1), c0


# ------------------------------------------------------------------------------------------------
# trace(..., initial_state=...)
# ------------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cell=st.sampled_from(CELLS),
    num_layers=st.integers(1, 2),
    bidirectional=st.booleans(),
    bias=st.booleans(),
    seq_len=st.integers(1, 20),
    input_size=st.integers(1, 4),
    hidden_size=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_trace_from_a_given_state_matches_autograd(
    cell, num_layers, bidirectional, bias, seq_len, input_size, hidden_size, seed
):
    rnn = make_rnn(cell, input_size, hidden_size, num_layers, bidirectional, bias, seed).double()
    x = torch.randn(seq_len, input_size, dtype=torch.float64)
    h0, c0 = random_state(rnn, seed)
    loss = every_step_loss(rnn.hidden_size * (2 if bidirectional else 1), seed)
    tr = trace(rnn, x, loss, initial_state=(h0, c0) if cell == "lstm" else h0)

    assert_matches_reference(tr, reference_trace(rnn, x, loss, h0, c0))
    L, D = num_layers, 2 if bidirectional else 1
    assert tr.grad_initial.shape == (L, D) and tr.grad_initial.dtype == np.float32
    assert (tr.grad_initial_cell is not None) == (cell == "lstm")
    # and the module itself, run from that state, gives the same output and final state
    with torch.no_grad():
        state = (h0.unsqueeze(1), c0.unsqueeze(1)) if cell == "lstm" else h0.unsqueeze(1)
        output, final = rnn(x.unsqueeze(1), state)
    np.testing.assert_allclose(tr.output, output[:, 0].numpy(), atol=1e-5)
    h_n = final[0] if cell == "lstm" else final
    np.testing.assert_allclose(tr.hidden[-1, 0, -1], h_n[(L - 1) * D, 0].numpy(), atol=1e-5)
    if bidirectional:  # the reverse direction ends at input position 0
        np.testing.assert_allclose(tr.hidden[-1, 1, 0], h_n[-1, 0].numpy(), atol=1e-5)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cell=st.sampled_from(CELLS),
    num_layers=st.integers(1, 2),
    bidirectional=st.booleans(),
    seq_len=st.integers(1, 15),
    seed=st.integers(0, 2**16),
)
def test_the_gradient_reaching_the_zero_state_is_filled_and_exact(cell, num_layers, bidirectional, seq_len, seed):
    """Without initial_state the trace starts from zeros, and grad_initial is of that start; the
    same zeros given explicitly trace identically."""
    rnn = make_rnn(cell, 3, 5, num_layers, bidirectional, seed=seed).double()
    x = torch.randn(seq_len, 3, dtype=torch.float64)
    loss = every_step_loss(5 * (2 if bidirectional else 1), seed)
    tr = trace(rnn, x, loss)
    assert_matches_reference(tr, reference_trace(rnn, x, loss))
    assert tr.grad_initial.shape == (num_layers, 2 if bidirectional else 1)
    assert (tr.grad_initial > 0).all() or cell == "rnn_relu"  # a ReLU unit may be dead from the start

    zeros = torch.zeros(num_layers * (2 if bidirectional else 1), 5, dtype=torch.float64)
    given_zeros = trace(rnn, x, loss, initial_state=(zeros, zeros) if cell == "lstm" else zeros)
    for name in ("hidden", "cell", "output") + GRADIENTS:
        if getattr(tr, name) is not None:
            np.testing.assert_allclose(getattr(given_zeros, name), getattr(tr, name), rtol=1e-6, atol=1e-12, err_msg=name)
    for name, values in tr.gates.items():
        np.testing.assert_allclose(given_zeros.gates[name], values, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("cell", CELLS)
def test_the_initial_state_changes_what_the_trace_shows(cell):
    """A state far from zero must show in the early steps: a trace that ignored it would not."""
    rnn = make_rnn(cell, 2, 6, num_layers=2, bidirectional=True, seed=7).double()
    x = torch.randn(12, 2, dtype=torch.float64)
    h0, c0 = random_state(rnn, 3)
    h0 = h0.sign() * 0.9 if cell != "rnn_relu" else h0.abs() + 0.5
    from_state = trace(rnn, x, initial_state=(h0, 3 * c0) if cell == "lstm" else h0)
    from_zeros = trace(rnn, x)
    # the forward direction's first step and the reverse direction's last-position step
    assert np.abs(from_state.hidden[0, 0, 0] - from_zeros.hidden[0, 0, 0]).max() > 1e-2
    assert np.abs(from_state.hidden[0, 1, -1] - from_zeros.hidden[0, 1, -1]).max() > 1e-2


def test_float32_lstm_from_a_given_state_matches_the_module_and_from_zeros_still_reads_its_kernel():
    """From a given state the LSTM runs torch.lstm with it (oneDNN's workspace read starts from
    zeros); without one, nothing changes: the gates are still read from the kernel."""
    rnn = make_rnn("lstm", 4, 16, num_layers=2, bidirectional=True, seed=1)
    x = torch.randn(60, 4)
    h0, c0 = (state.float() for state in random_state(rnn, 5))
    h0_leaf, c0_leaf = h0.clone().requires_grad_(True), c0.clone().requires_grad_(True)
    output = rnn(x.unsqueeze(1), (h0_leaf.unsqueeze(1), c0_leaf.unsqueeze(1)))[0]
    output[-1].sum().backward()
    tr = trace(rnn, x, initial_state=(h0, c0))
    np.testing.assert_allclose(tr.output, output[:, 0].detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(tr.grad_initial.ravel(), h0_leaf.grad.norm(dim=1).numpy(), rtol=1e-4)
    np.testing.assert_allclose(tr.grad_initial_cell.ravel(), c0_leaf.grad.norm(dim=1).numpy(), rtol=1e-4)

    if torch.backends.mkldnn.is_available():
        with mock.patch.object(core.engine.tracing, "_recomputed_gates", side_effect=AssertionError("recomputed")):
            from_zeros = trace(rnn, x)
        assert from_zeros.grad_initial.shape == (2, 2) and (from_zeros.grad_initial > 0).all()


@pytest.mark.parametrize(
    "cell, target, value",
    [("lstm", "forget", 0.25), ("lstm", "cell_state", 1.5), ("lstm", "hidden", 0.0), ("lstm", "input", 1.0),
     ("gru", "update", 1.0), ("gru", "reset", 0.25), ("gru", "hidden", -0.7), ("gru", "new", 0.6),
     ("rnn_tanh", "hidden", 0.5)],
)
def test_the_gradient_reaching_the_zero_state_under_interventions_at_step_0(cell, target, value):
    """A clamp at step 0 decides what reaches h_{-1} and c_{-1}: through a clamped forget gate
    c_{-1} is scaled by the clamp, through a clamped c_0 or h_0 nothing passes."""
    rnn = make_rnn(cell, 3, 5, num_layers=2, bidirectional=True, seed=11).double()
    x = torch.randn(9, 3, dtype=torch.float64)
    loss = every_step_loss(10, 2)
    interventions = [
        Intervention(0, 0, (1, 3), target, steps=(0, 1), value=value),
        Intervention(0, 1, (0, 2, 4), target, steps=(8,), value=value),  # the reverse direction's step 0
        Intervention(1, 0, (2,), target, value=value),
    ]
    tr = trace(rnn, x, loss, interventions=interventions)
    assert_matches_reference(tr, reference_trace(rnn, x, loss, interventions=interventions))


def test_initial_state_together_with_interventions_is_refused_clearly():
    rnn = make_rnn("gru", 3, 4)
    with pytest.raises(ValueError, match="Interventions start from the zero state"):
        trace(rnn, torch.randn(5, 3), initial_state=torch.zeros(1, 4),
              interventions=[Intervention(0, 0, (1,), "update", value=1.0)])


@pytest.mark.parametrize(
    "module, initial_state, message",
    [
        (nn.LSTM(3, 4), torch.zeros(1, 4), r"An LSTM's initial_state is the pair \(h0, c0\), each of shape"),
        (nn.LSTM(3, 4), (torch.zeros(1, 4),), r"pair \(h0, c0\)"),
        (nn.GRU(3, 4), (torch.zeros(1, 4), torch.zeros(1, 4)), r"A GRU's initial_state is h0 alone.*only an LSTM"),
        (nn.RNN(3, 4, num_layers=2, bidirectional=True), torch.zeros(2, 4),
         r"h0 must have shape \(num_layers \* num_directions, hidden_size\) = \(4, 4\) for this module; got \(2, 4\)"),
        (nn.GRU(3, 4), torch.zeros(1, 5), r"= \(1, 4\) for this module; got \(1, 5\)"),
        (nn.GRU(3, 4, num_layers=2), torch.zeros(2, 1, 4), r"got \(2, 1, 4\) \(one sequence is traced: drop the batch dimension, h0\[:, 0\]\)"),
        (nn.LSTM(3, 4), (torch.zeros(1, 4), torch.zeros(4)), r"c0 must have shape .* got \(4,\)"),
        (nn.LSTM(3, 4), (torch.zeros(1, 4), [[0.0] * 4]), r"c0 must be a torch.Tensor of shape \(1, 4\), not list"),
        (nn.RNN(3, 4), torch.tensor([[0.0, float("nan"), 0.0, 0.0]]), "h0 contains NaN or infinite values"),
        (nn.LSTM(3, 4), (torch.zeros(1, 4), torch.full((1, 4), float("inf"))), "c0 contains NaN or infinite values"),
    ],
)
def test_initial_states_of_the_wrong_shape_are_refused_clearly(module, initial_state, message):
    with pytest.raises(ValueError, match=message):
        trace(module, torch.randn(5, 3), initial_state=initial_state)


def test_an_initial_state_in_another_dtype_is_converted_and_left_as_it_was():
    rnn = make_rnn("gru", 3, 4).double()
    h0 = torch.full((1, 4), 0.5, requires_grad=True)  # float32 for a float64 module
    tr = trace(rnn, torch.randn(6, 3, dtype=torch.float64), initial_state=h0)
    assert h0.grad is None and h0.dtype == torch.float32
    assert tr.grad_initial.shape == (1, 1) and tr.grad_initial[0, 0] > 0


# ------------------------------------------------------------------------------------------------
# trace_handoff
# ------------------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cell=st.sampled_from(CELLS),
    num_layers=st.integers(1, 2),
    encoder_len=st.integers(1, 15),
    decoder_len=st.integers(1, 10),
    hidden_size=st.integers(1, 6),
    batch_first=st.booleans(),  # as core/seq2seq.py builds them; one sequence is traced either way
    seed=st.integers(0, 2**16),
)
def test_handoff_matches_autograd_through_encoder_and_decoder(
    cell, num_layers, encoder_len, decoder_len, hidden_size, batch_first, seed
):
    encoder = make_rnn(cell, 3, hidden_size, num_layers, seed=seed, batch_first=batch_first).double()
    decoder = make_rnn(cell, 2, hidden_size, num_layers, seed=seed + 1, batch_first=batch_first).double()
    x_enc = torch.randn(encoder_len, 3, dtype=torch.float64)
    x_dec = torch.randn(decoder_len, 2, dtype=torch.float64)
    loss = every_step_loss(hidden_size, seed)
    encoder_trace, decoder_trace = trace_handoff(encoder, decoder, x_enc, x_dec, loss)

    expected_encoder, expected_decoder = reference_handoff(encoder, decoder, x_enc, x_dec, loss)
    assert_matches_reference(encoder_trace, expected_encoder)
    assert_matches_reference(decoder_trace, expected_decoder)
    # and PyTorch's own modules, the decoder started from the encoder's (h_n, c_n)
    batch_dim = 0 if batch_first else 1
    x_enc_leaf = x_enc.clone().requires_grad_(True)
    output = decoder(x_dec.unsqueeze(batch_dim), encoder(x_enc_leaf.unsqueeze(batch_dim))[1])[0]
    output = output.squeeze(batch_dim)
    value = loss(output)
    value.backward()
    np.testing.assert_allclose(decoder_trace.output, output.detach().numpy(), atol=1e-5)
    assert_close_relative(encoder_trace.grad_input, x_enc_leaf.grad.norm(dim=1).numpy(), 1e-4, "encoder grad_input")
    assert encoder_trace.objective == decoder_trace.objective == pytest.approx(value.item())


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_float32_handoff_matches_the_modules(cell):
    """At float32 the encoder LSTM keeps its final cell state in the graph (torch.lstm) and the
    decoder starts from it; both match the modules run one into the other."""
    encoder = make_rnn(cell, 4, 16, num_layers=2, seed=3)
    decoder = make_rnn(cell, 4, 16, num_layers=2, seed=4)
    x_enc, x_dec = torch.randn(30, 4), torch.randn(12, 4)
    loss = every_step_loss(16, 1)
    encoder_trace, decoder_trace = trace_handoff(encoder, decoder, x_enc, x_dec, loss)

    x_enc_leaf, x_dec_leaf = x_enc.clone().requires_grad_(True), x_dec.clone().requires_grad_(True)
    encoded, state = encoder(x_enc_leaf.unsqueeze(1))
    handed = tuple(s.detach().requires_grad_(True) for s in state) if cell == "lstm" else state.detach().requires_grad_(True)
    output = decoder(x_dec_leaf.unsqueeze(1), handed)[0]
    loss(output[:, 0]).backward()
    handed_h, handed_c = handed if cell == "lstm" else (handed, None)
    # the decoder's grad_initial is the gradient at the state handed over ...
    np.testing.assert_allclose(decoder_trace.grad_initial[:, 0], handed_h.grad[:, 0].norm(dim=1).numpy(), rtol=1e-4)
    if handed_c is not None:
        np.testing.assert_allclose(decoder_trace.grad_initial_cell[:, 0], handed_c.grad[:, 0].norm(dim=1).numpy(), rtol=1e-4)
    # ... and carried on into the encoder
    torch.autograd.backward(
        [s for s in (state if cell == "lstm" else (state,))],
        [handed_h.grad] + ([handed_c.grad] if handed_c is not None else []),
    )
    np.testing.assert_allclose(decoder_trace.output, output[:, 0].detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(encoder_trace.output, encoded[:, 0].detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(decoder_trace.grad_input, x_dec_leaf.grad.norm(dim=1).numpy(), rtol=1e-3)
    np.testing.assert_allclose(encoder_trace.grad_input, x_enc_leaf.grad.norm(dim=1).numpy(), rtol=1e-3)
    # the loss reaches every encoder step through the hand-off alone
    assert (encoder_trace.grad_hidden > 0).all()


@pytest.mark.parametrize(
    "encoder, decoder, message",
    [
        (nn.LSTM(3, 4), nn.GRU(3, 4), "The encoder is an LSTM and the decoder a GRU"),
        (nn.GRU(3, 4, bidirectional=True), nn.GRU(3, 4), "The encoder is bidirectional"),
        (nn.GRU(3, 4), nn.GRU(3, 4, bidirectional=True), "The decoder is bidirectional"),
        (nn.RNN(3, 4, num_layers=2), nn.RNN(3, 4), r"2 layer\(s\) of 4 units and the decoder 1 of 4"),
        (nn.LSTM(3, 4), nn.LSTM(3, 5), r"1 layer\(s\) of 4 units and the decoder 1 of 5"),
        (nn.LSTM(3, 4), nn.LSTM(3, 4).double(), "the state handed over needs both alike"),
        (nn.Linear(3, 4), nn.LSTM(3, 4), "torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU"),
    ],
)
def test_a_handoff_the_decoder_cannot_take_is_refused_clearly(encoder, decoder, message):
    with pytest.raises(ValueError, match=message):
        trace_handoff(encoder, decoder, torch.randn(5, 3), torch.randn(4, 3), lambda output: output.sum())


def test_handoff_refuses_bad_sequences_and_objectives():
    encoder, decoder = nn.GRU(3, 4), nn.GRU(2, 4)
    with pytest.raises(ValueError, match=r"x must have shape \(T, 2\)"):
        trace_handoff(encoder, decoder, torch.randn(5, 3), torch.randn(4, 3), lambda output: output.sum())
    with pytest.raises(ValueError, match="scalar"):
        trace_handoff(encoder, decoder, torch.randn(5, 3), torch.randn(4, 2), lambda output: output)
