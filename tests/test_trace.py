"""The tracing engine against PyTorch's own modules and a slow, obviously-correct unroll.

The reference below steps through time in Python with the equations from PyTorch's docs and
reads every gradient off autograd with `retain_grad`, so it shares no code with core.engine.
"""

from __future__ import annotations

import copy
import math
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from torch import nn

import core.engine.onednn
import core.engine.scans
import core.engine.tracing
from core.engine import GATE_NAMES, Trace, trace
from unroll import make_rnn

CELLS = ["lstm", "gru", "rnn_tanh", "rnn_relu"]


def fused_output(rnn, x):
    """What the module itself returns for one sequence, as (T, D*H)."""
    batch = x.unsqueeze(0) if rnn.batch_first else x.unsqueeze(1)
    output = rnn(batch)[0]
    return output.squeeze(0) if rnn.batch_first else output.squeeze(1)


def cell_kind(rnn):
    """The reference's own reading of the module type (it shares no code with core.engine)."""
    return "lstm" if isinstance(rnn, nn.LSTM) else "gru" if isinstance(rnn, nn.GRU) else "rnn"


def reference_trace(rnn, x, objective=None):
    """A per-step unroll with autograd: slow, and correct by inspection."""
    cell = cell_kind(rnn)
    num_dirs = 2 if rnn.bidirectional else 1
    H = rnn.hidden_size
    x = x.clone().requires_grad_(True)
    layer_input = x
    hs, cs, gates, pre_activations = {}, {}, {}, {}
    for layer in range(rnn.num_layers):
        direction_outputs = []
        for d in range(num_dirs):
            sfx = f"l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh = getattr(rnn, f"weight_ih_{sfx}"), getattr(rnn, f"weight_hh_{sfx}")
            b_ih = getattr(rnn, f"bias_ih_{sfx}") if rnn.bias else torch.zeros(w_ih.shape[0], dtype=x.dtype)
            b_hh = getattr(rnn, f"bias_hh_{sfx}") if rnn.bias else torch.zeros(w_hh.shape[0], dtype=x.dtype)
            h = torch.zeros(H, dtype=x.dtype)
            c = torch.zeros(H, dtype=x.dtype)
            steps = range(len(x)) if d == 0 else reversed(range(len(x)))
            outputs = [None] * len(x)
            for t in steps:
                xt = layer_input[t]
                if cell == "lstm":
                    gi = gh = w_ih @ xt + b_ih + w_hh @ h + b_hh
                    i, f, g, o = gi.chunk(4)
                    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
                    c = f * c + i * g
                    h = o * torch.tanh(c)
                    c.retain_grad()
                    cs[layer, d, t] = c
                    gates[layer, d, t] = dict(input=i, forget=f, cell=g, output=o)
                elif cell == "gru":
                    gi, gh = w_ih @ xt + b_ih, w_hh @ h + b_hh
                    r = torch.sigmoid(gi[:H] + gh[:H])
                    z = torch.sigmoid(gi[H : 2 * H] + gh[H : 2 * H])
                    n = torch.tanh(gi[2 * H :] + r * gh[2 * H :])
                    h = (1 - z) * n + z * h
                    gates[layer, d, t] = dict(reset=r, update=z, new=n)
                else:
                    gi = gh = w_ih @ xt + b_ih + w_hh @ h + b_hh
                    h = torch.tanh(gi) if rnn.nonlinearity == "tanh" else torch.relu(gi)
                    gates[layer, d, t] = {}
                gi.retain_grad(), gh.retain_grad()
                pre_activations[layer, d, t] = gi, gh
                h.retain_grad()
                hs[layer, d, t] = h
                outputs[t] = h
            direction_outputs.append(torch.stack(outputs))
        layer_input = torch.cat(direction_outputs, dim=1)
    layer_input.retain_grad()
    value = layer_input[-1].sum() if objective is None else objective(layer_input)
    value.backward()

    L, T = rnn.num_layers, len(x)

    def grid(get):
        return np.array([[[get(l, d, t) for t in range(T)] for d in range(num_dirs)] for l in range(L)])

    return dict(
        hidden=grid(lambda l, d, t: hs[l, d, t].detach().numpy()),
        cell=grid(lambda l, d, t: cs[l, d, t].detach().numpy()) if cell == "lstm" else None,
        gates={
            name: grid(lambda l, d, t, name=name: gates[l, d, t][name].detach().numpy())
            for name in GATE_NAMES[cell]
        },
        grad_hidden=grid(lambda l, d, t: hs[l, d, t].grad.norm().item()),
        grad_cell=grid(lambda l, d, t: cs[l, d, t].grad.norm().item()) if cell == "lstm" else None,
        grad_input=x.grad.norm(dim=1).numpy(),
        output=layer_input.detach().numpy(),
        objective=value.item(),
        # for `float32_rounding_scales`: d objective / d (W_ih x_t + b_ih) and / d (W_hh h + b_hh),
        # one tensor for both in LSTM and RNN, and d objective / d output
        pre_activation_grads={key: (gi.grad.numpy(), gh.grad.numpy()) for key, (gi, gh) in pre_activations.items()},
        output_grad=layer_input.grad.numpy(),
    )


def assert_close_relative(actual, expected, rtol, slack=0.0):
    """Elementwise relative closeness down to 1e-12 of the largest value, so a gradient that has
    vanished by many decades must still be right to rtol of itself.

    `slack` widens the tolerance per element where the expected value itself is known to be
    uncertain by that much."""
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    tolerance = rtol * np.abs(expected) + 1e-30 + 1e-12 * np.abs(expected).max() + slack
    tolerance = np.broadcast_to(tolerance, expected.shape)
    wrong = [tuple(map(int, i)) for i in np.argwhere(~(np.abs(actual - expected) <= tolerance))]
    assert not wrong, "\n".join(
        f"at {i}: {actual[i]:.7g}, expected {expected[i]:.7g} ± {tolerance[i]:.2g}" for i in wrong[:10]
    )


GRADIENTS = ("grad_hidden", "grad_cell", "grad_input")


def assert_matches_reference(tr: Trace, ref: dict, rtol=1e-4, atol=1e-5, slack=None):
    np.testing.assert_allclose(tr.hidden, ref["hidden"], atol=atol)
    np.testing.assert_allclose(tr.output, ref["output"], atol=atol)
    if ref["cell"] is None:
        assert tr.cell is None and tr.grad_cell is None
    else:
        np.testing.assert_allclose(tr.cell, ref["cell"], atol=atol)
    assert set(tr.gates) == set(ref["gates"])
    for name, values in ref["gates"].items():
        np.testing.assert_allclose(tr.gates[name], values, atol=atol, err_msg=name)
    for name in GRADIENTS:
        if ref[name] is not None:
            assert_close_relative(getattr(tr, name), ref[name], rtol, 0.0 if slack is None else slack[name])
    assert math.isclose(tr.objective, ref["objective"], rel_tol=1e-5, abs_tol=1e-6)


def float32_rounding_scales(rnn, exact: dict) -> dict:
    """How large, per gradient norm, the terms are that float32 rounds before they sum to it.

    float32 keeps about 7 digits of each term that flows into a gradient, so where terms nearly
    cancel (d objective / d x_t of a single input feature is one sum of 4H products) the sum keeps
    fewer digits of itself, in the engine and in autograd alike. Each scale is the norm of the
    gradient computed with every term made positive: |W|^T |d pre| for the matrix products, and
    the elementwise recurrences the engine scans (an LSTM's c_t, a GRU's z_t h_{t-1}) run on
    those magnitudes with their decay. Rounding error is a small multiple of 2^-24 times this.
    """
    cell = cell_kind(rnn)
    L, D, T, H = rnn.num_layers, 2 if rnn.bidirectional else 1, len(exact["grad_input"]), rnn.hidden_size

    def magnitudes(layer, d):
        """|d pre| |W| at every step, into the input side and the hidden side: (T, in), (T, H)."""
        sfx = f"l{layer}" + ("_reverse" if d else "")
        grads = [exact["pre_activation_grads"][layer, d, t] for t in range(T)]
        return tuple(
            np.abs(np.stack([pair[side] for pair in grads]))
            @ np.abs(getattr(rnn, f"weight_{kind}_{sfx}").detach().double().numpy())
            for side, kind in enumerate(("ih", "hh"))
        )

    per_run = {(layer, d): magnitudes(layer, d) for layer in range(L) for d in range(D)}
    into_input = [sum(per_run[layer, d][0] for d in range(D)) for layer in range(L)]
    scales = dict(grad_input=np.linalg.norm(into_input[0], axis=1))
    scales["grad_hidden"] = np.zeros((L, D, T))
    scales["grad_cell"] = np.zeros((L, D, T)) if cell == "lstm" else None
    for layer in range(L):
        above = exact["output_grad"] if layer == L - 1 else into_input[layer + 1]
        for d in range(D):
            upward, recurrent = np.abs(above[:, d * H : (d + 1) * H]), per_run[layer, d][1]
            gates = {name: values[layer, d] for name, values in exact["gates"].items()}
            later = cell_state = None
            for t in range(T - 1, -1, -1) if d == 0 else range(T):  # the order of the backward pass
                hidden = upward[t].copy()
                if later is not None:
                    hidden += recurrent[later] + (gates["update"][later] * hidden_later if cell == "gru" else 0.0)
                scales["grad_hidden"][layer, d, t] = np.linalg.norm(hidden)
                if cell == "lstm":
                    cell_state = gates["output"][t] * (1 - np.tanh(exact["cell"][layer, d, t]) ** 2) * hidden
                    if later is not None:
                        cell_state += gates["forget"][later] * cell_later
                    scales["grad_cell"][layer, d, t] = np.linalg.norm(cell_state)
                hidden_later, cell_later, later = hidden, cell_state, t
    return scales


# 64 units of float32 rounding (2^-24) per unit of scale: over 250 random shapes the largest error
# beyond rtol was 0.95 of one unit, and rounding accumulates further over longer sequences
FLOAT32_ROUNDING_ALLOWED = 64 * 2.0**-24


def assert_float32_trace_matches_reference(tr: Trace, rnn, x):
    """Gradients within 1e-3 of the float64 truth, or within float32 rounding of the terms that
    sum to them where those nearly cancel (see `float32_rounding_scales`); a wrong gradient is
    off by far more than either."""
    exact = reference_trace(copy.deepcopy(rnn).double(), x.double())
    scales = float32_rounding_scales(rnn, exact)
    slack = {name: None if scale is None else FLOAT32_ROUNDING_ALLOWED * scale for name, scale in scales.items()}
    assert_matches_reference(tr, exact, rtol=1e-3, slack=slack)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cell=st.sampled_from(CELLS),
    num_layers=st.integers(1, 3),
    bidirectional=st.booleans(),
    bias=st.booleans(),
    batch_first=st.booleans(),
    seq_len=st.integers(1, 40),
    input_size=st.integers(1, 5),
    hidden_size=st.integers(1, 7),
    seed=st.integers(0, 2**16),
)
def test_trace_matches_module_and_unrolled_reference(
    cell, num_layers, bidirectional, bias, batch_first, seq_len, input_size, hidden_size, seed
):
    # float64 so the comparison measures the engine, not float32 rounding in two summation orders.
    rnn = make_rnn(cell, input_size, hidden_size, num_layers, bidirectional, bias,
                   batch_first=batch_first, seed=seed).double()
    x = torch.randn(seq_len, input_size, dtype=torch.float64)
    tr = trace(rnn, x)

    with torch.no_grad():
        np.testing.assert_allclose(tr.output, fused_output(rnn, x).numpy(), atol=1e-5)
    assert_matches_reference(tr, reference_trace(rnn, x))
    L, D = num_layers, 2 if bidirectional else 1
    assert tr.hidden.shape == (L, D, seq_len, hidden_size)
    assert tr.grad_hidden.shape == (L, D, seq_len)
    assert tr.grad_input.shape == (seq_len,)
    assert all(a.dtype == np.float32 for a in [tr.hidden, tr.grad_hidden, tr.grad_input, tr.output])


@pytest.mark.parametrize("cell", CELLS)
def test_float32_module_matches_its_own_forward_and_the_reference(cell):
    rnn = make_rnn(cell, 4, 16, num_layers=2, bidirectional=True, seed=1)
    x = torch.randn(120, 4)
    tr = trace(rnn, x)
    with torch.no_grad():
        np.testing.assert_allclose(tr.output, fused_output(rnn, x).numpy(), atol=1e-5)
        # the last step of the top forward direction is the module's own h_n (and c_n for LSTM)
        _, state = rnn(x.unsqueeze(1))
    h_n, c_n = state if cell == "lstm" else (state, None)
    np.testing.assert_allclose(tr.hidden[-1, 0, -1], h_n[-2, 0].numpy(), atol=1e-5)
    np.testing.assert_allclose(tr.hidden[-1, 1, 0], h_n[-1, 0].numpy(), atol=1e-5)
    if c_n is not None:
        np.testing.assert_allclose(tr.cell[-1, 0, -1], c_n[-2, 0].numpy(), atol=1e-5)
    assert_float32_trace_matches_reference(tr, rnn, x)


ONEDNN = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this torch has no oneDNN")


@ONEDNN
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    num_layers=st.integers(1, 3),
    bidirectional=st.booleans(),
    bias=st.booleans(),
    seq_len=st.integers(1, 80),
    input_size=st.integers(1, 6),
    hidden_size=st.integers(1, 70),
    seed=st.integers(0, 2**16),
)
# Gradients that cancel to far below the terms they sum: d/dx_t of one input feature (CI once
# failed on it), and d/dc_t of a single unit, whose scan adds terms of opposite sign
@example(num_layers=2, bidirectional=False, bias=False, seq_len=68, input_size=1, hidden_size=35, seed=5591)
@example(num_layers=1, bidirectional=False, bias=True, seq_len=7, input_size=1, hidden_size=1, seed=53135)
@example(num_layers=1, bidirectional=True, bias=True, seq_len=60, input_size=5, hidden_size=1, seed=795)
def test_float32_lstm_is_read_from_its_kernel_and_matches_the_reference(
    num_layers, bidirectional, bias, seq_len, input_size, hidden_size, seed
):
    """On CPU a float32 nn.LSTM runs on oneDNN, and the engine reads the gates and cell state
    from the kernel's workspace instead of recomputing them; the shapes reach the layout's
    padding cases (4H a multiple of 256 at H = 64)."""
    rnn = make_rnn("lstm", input_size, hidden_size, num_layers, bidirectional, bias, seed=seed)
    x = torch.randn(seq_len, input_size)
    with mock.patch.object(core.engine.tracing, "_recomputed_gates", side_effect=AssertionError("recomputed")):
        tr = trace(rnn, x)
    with torch.no_grad():
        np.testing.assert_allclose(tr.output, fused_output(rnn, x).numpy(), atol=1e-5)
    assert_float32_trace_matches_reference(tr, rnn, x)


@ONEDNN
@pytest.mark.parametrize("seq_len, hidden_size", [(1, 256), (1500, 256), (700, 64)])
def test_lstm_read_from_its_kernel_equals_the_recomputed_trace(seq_len, hidden_size):
    """Two independent routes at sizes the unrolled reference is too slow for: the workspace
    read, and torch.lstm with the gates recomputed and the cell state scanned."""
    rnn = make_rnn("lstm", 5, hidden_size, seed=4)
    x = torch.randn(seq_len, 5)
    read = trace(rnn, x)
    with mock.patch.object(core.engine.tracing, "runs_on_onednn", return_value=False):
        recomputed = trace(rnn, x)
    for name in ("hidden", "cell", "output"):
        np.testing.assert_allclose(getattr(read, name), getattr(recomputed, name), atol=1e-5, err_msg=name)
    for name, values in recomputed.gates.items():
        np.testing.assert_allclose(read.gates[name], values, atol=1e-5, err_msg=name)
    for name in ("grad_hidden", "grad_cell", "grad_input"):
        assert_close_relative(getattr(read, name), getattr(recomputed, name), rtol=1e-4)


@ONEDNN
@pytest.mark.parametrize("seq_len", [30, 300])  # every row checked; 64 rows spread over the sequence
@pytest.mark.parametrize("shift_gates, shift_cell", [(16, 0), (0, 8), (0, -8)])
def test_a_misread_kernel_workspace_is_caught_and_recomputed(seq_len, shift_gates, shift_cell):
    """If oneDNN ever laid its workspace out differently, the h = o tanh(c) check must notice."""
    rnn = make_rnn("lstm", 3, 8, num_layers=2, bidirectional=True, seed=2)
    x = torch.randn(seq_len, 3)
    layout = core.engine.onednn.workspace_layout

    def misread(seq_len, input_width, hidden_size):
        gate_row, cell_start = layout(seq_len, input_width, hidden_size)
        return gate_row + shift_gates, cell_start + shift_cell

    recompute = mock.Mock(wraps=core.engine.tracing._recomputed_gates)
    with mock.patch.object(core.engine.onednn, "workspace_layout", misread), mock.patch.object(
        core.engine.tracing, "_recomputed_gates", recompute
    ):
        tr = trace(rnn, x)
    assert recompute.call_count == 4  # every layer and direction
    with mock.patch.object(core.engine.tracing, "runs_on_onednn", return_value=False):
        expected = trace(rnn, x)
    for name in ("hidden", "cell", "grad_hidden", "grad_cell", "grad_input"):
        np.testing.assert_allclose(getattr(tr, name), getattr(expected, name), rtol=1e-5, atol=1e-6, err_msg=name)
    for name, values in expected.gates.items():
        np.testing.assert_allclose(tr.gates[name], values, atol=1e-6, err_msg=name)


def test_trace_works_with_gradients_switched_off_around_it():
    rnn = make_rnn("lstm", 3, 4)
    x = torch.randn(7, 3)
    with torch.no_grad():
        tr = trace(rnn, x)
    assert_float32_trace_matches_reference(tr, rnn, x)


@settings(max_examples=60, deadline=None)
@given(
    seq_len=st.integers(1, 400),
    width=st.integers(1, 40),
    reverse=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_linear_scans_match_a_step_by_step_float64_loop(seq_len, width, reverse, seed):
    """The scans cut the loop over time by doubling or in blocks depending on the shape; each
    must agree with the plain recurrence."""
    rng = np.random.default_rng(seed)
    decay = rng.random((seq_len, width), dtype=np.float32)
    decay[rng.random((seq_len, width)) < 0.05] = 0.0  # a forget gate that shuts
    source = rng.standard_normal((seq_len, width), dtype=np.float32)
    expected = source.astype(np.float64)
    steps = range(seq_len - 2, -1, -1) if reverse else range(1, seq_len)
    for t in steps:
        expected[t] += decay[t + 1] * expected[t + 1] if reverse else decay[t] * expected[t - 1]
    scan = core.engine.scans.reverse_scan if reverse else core.engine.scans.forward_scan
    got = scan(decay=decay, source=source.copy())
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("cell", CELLS)
def test_custom_objective_is_what_the_gradients_are_of(cell):
    rnn = make_rnn(cell, 3, 6, num_layers=2).double()
    x = torch.randn(25, 3, dtype=torch.float64)
    head = torch.randn(6, dtype=torch.float64)

    def mse_on_middle_step(output):
        return (output[12] @ head - 0.5) ** 2

    tr = trace(rnn, x, mse_on_middle_step)
    ref = reference_trace(rnn, x, mse_on_middle_step)
    assert_matches_reference(tr, ref)
    # nothing after step 12 affects the objective, so its gradient there is exactly zero
    assert np.all(tr.grad_hidden[:, 0, 13:] == 0) and np.all(tr.grad_input[13:] == 0)
    assert np.all(tr.grad_hidden[-1, 0, :13] > 0)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_thousands_of_steps(cell):
    rnn = make_rnn(cell, 2, 32, seed=3)
    x = torch.randn(3000, 2)
    tr = trace(rnn, x)
    with torch.no_grad():
        np.testing.assert_allclose(tr.output, fused_output(rnn, x).numpy(), atol=1e-5)
    assert np.isfinite(tr.grad_hidden).all()
    # the lesson the app shows: at default init the gradient reaching step 0 has all but vanished
    assert tr.grad_hidden[0, 0, 0] < 1e-6 * tr.grad_hidden[0, 0, -1]


@pytest.mark.parametrize("recurrent_gain", [3.0, 0.3])
def test_exploding_and_vanishing_gradient_norms_stay_exact_beyond_float32_squares(recurrent_gain):
    """3^59 and 0.3^59 fit float32, their squares do not: the norms must not turn inf or 0."""
    rnn = make_rnn("rnn_relu", 4, 8, seed=1)
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(recurrent_gain * torch.eye(8))
        rnn.weight_ih_l0.abs_()
    x = torch.rand(60, 4) + 0.1
    tr32 = trace(rnn, x)
    tr64 = trace(rnn.double(), x.double())
    for name in ("grad_hidden", "grad_input"):
        value = getattr(tr32, name)
        assert np.isfinite(value).all() and (value > 0).all(), name
        np.testing.assert_allclose(value, getattr(tr64, name), rtol=1e-4, err_msg=name)
    extreme = tr32.grad_hidden[0, 0, 0] / tr32.grad_hidden[0, 0, -1]
    assert extreme > 1e25 if recurrent_gain > 1 else extreme < 1e-25


def test_an_input_that_requires_grad_is_traced_and_left_as_it_was():
    rnn = make_rnn("lstm", 3, 4)
    x = torch.randn(6, 3, requires_grad=True)
    tr = trace(rnn, x)
    np.testing.assert_allclose(tr.output, fused_output(rnn, x).detach().numpy(), atol=1e-5)
    assert x.grad is None and x.requires_grad


def test_single_timestep():
    rnn = make_rnn("lstm", 3, 4).double()
    x = torch.randn(1, 3, dtype=torch.float64)
    tr = trace(rnn, x)
    assert tr.hidden.shape == (1, 1, 1, 4)
    assert_matches_reference(tr, reference_trace(rnn, x))


def test_vanilla_rnn_gradient_vanishes_faster_than_lstm_with_forget_bias():
    """FIELD_NOTES: per-step shrink ≈ 0.6 for a default tanh RNN, ≈ 0.85 for LSTM with forget bias 1."""
    rnn = make_rnn("rnn_tanh", 1, 64, seed=0)
    lstm = make_rnn("lstm", 1, 64, seed=0)
    with torch.no_grad():
        lstm.bias_ih_l0[64:128] += 1.0
    x = torch.randn(200, 1)
    rates = {}
    for name, module in [("rnn", rnn), ("lstm", lstm)]:
        g = trace(module, x).grad_hidden[0, 0]
        rates[name] = (g[50] / g[150]) ** (1 / 100)
    assert rates["rnn"] < 0.75 < rates["lstm"]


def test_trace_leaves_the_module_untouched():
    rnn = make_rnn("gru", 3, 5, num_layers=2)
    before = {k: v.clone() for k, v in rnn.state_dict().items()}
    trace(rnn, torch.randn(10, 3))
    assert all(torch.equal(before[k], v) for k, v in rnn.state_dict().items())
    assert all(p.grad is None for p in rnn.parameters())


@pytest.mark.parametrize(
    "module, x, message",
    [
        (nn.Linear(3, 4), torch.randn(5, 3), "torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU"),
        (nn.LSTM(3, 4, proj_size=2), torch.randn(5, 3), "proj_size"),
        (nn.LSTM(3, 4), torch.randn(5, 2), r"shape \(T, 3\)"),
        (nn.LSTM(3, 4), torch.randn(2, 5, 3), r"shape \(T, 3\)"),
        (nn.LSTM(3, 4), torch.randn(0, 3), "empty"),
        (nn.GRU(3, 4), torch.tensor([[0.0, float("nan"), 1.0]]), "NaN"),
        (nn.RNN(3, 4), [[0.0, 1.0, 2.0]], "torch.Tensor"),
    ],
)
def test_bad_arguments_get_a_clear_message(module, x, message):
    with pytest.raises(ValueError, match=message):
        trace(module, x)


def test_objective_must_be_scalar():
    with pytest.raises(ValueError, match="scalar"):
        trace(nn.GRU(2, 3), torch.randn(4, 2), objective=lambda output: output)
