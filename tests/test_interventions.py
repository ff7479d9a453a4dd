"""Interventions in the one engine: `trace(rnn, x, objective, interventions=...)` against a plain
float64 unroll with the same clamps.

The reference (tests/unroll.py) steps through time in Python with PyTorch's documented equations, writes each
clamp in with `torch.where` as soon as its quantity is computed, and reads every gradient off
autograd (`retain_grad` on the clamped tensors: the gradient of a clamped h_t or c_t is with
respect to the value the network carries on). It shares no code with core.engine.
"""

from __future__ import annotations

import copy
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import core.engine.interventions
import core.engine.tracing
from core.trace import Intervention, trace
from unroll import CELLS, assert_close_relative, gradient_scale, make_rnn  # the reference unroll
from unroll import reference_trace as unrolled_reference

TARGETS = {
    "lstm": ["hidden", "cell_state", "input", "forget", "cell", "output"],
    "gru": ["hidden", "reset", "update", "new"],
    "rnn_tanh": ["hidden"],
    "rnn_relu": ["hidden"],
}
# values a user would clamp to, within each quantity's range (0 is an ablation)
VALUES = {
    "sigmoid": [0.0, 1.0, 0.25],
    "tanh": [0.0, -1.0, 0.6],
    "state": [0.0, 1.5, -0.7],
}
KIND = {"input": "sigmoid", "forget": "sigmoid", "output": "sigmoid", "reset": "sigmoid", "update": "sigmoid",
        "cell": "tanh", "new": "tanh", "hidden": "state", "cell_state": "state"}


def reference_trace(rnn, x, interventions=(), objective=None):
    """The per-step unroll from zeros with the clamps written in, every gradient by autograd."""
    return unrolled_reference(rnn, x, objective, interventions=interventions)


def assert_matches(tr, ref, atol=1e-5, rtol=1e-4):
    np.testing.assert_allclose(tr.hidden, ref["hidden"], atol=atol, rtol=0)
    np.testing.assert_allclose(tr.output, ref["output"], atol=atol, rtol=0)
    if ref["cell"] is None:
        assert tr.cell is None and tr.grad_cell is None
    else:
        np.testing.assert_allclose(tr.cell, ref["cell"], atol=atol, rtol=0)
    assert set(tr.gates) == set(ref["gates"])
    for name, values in ref["gates"].items():
        np.testing.assert_allclose(tr.gates[name], values, atol=atol, rtol=0, err_msg=name)
    for name in ("grad_hidden", "grad_cell", "grad_input"):
        if ref[name] is not None:
            assert_close_relative(getattr(tr, name), ref[name], rtol, name, gradient_scale(ref))
    assert np.isclose(tr.objective, ref["objective"], rtol=1e-6, atol=1e-8)


@st.composite
def setups(draw, cells=tuple(CELLS)):
    """A module, a sequence and 1-3 interventions on it: every target, both directions, several
    layers, scattered steps, step ranges and every step, values 0 and not."""
    cell = draw(st.sampled_from(cells))
    num_layers = draw(st.integers(1, 3))
    bidirectional = draw(st.booleans())
    hidden_size = draw(st.integers(1, 6))
    seq_len = draw(st.integers(1, 24))
    interventions = []
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(TARGETS[cell]))
        units = draw(st.lists(st.integers(0, hidden_size - 1), min_size=1, max_size=hidden_size, unique=True))
        steps = draw(
            st.one_of(
                st.none(),
                st.lists(st.integers(0, seq_len - 1), min_size=1, max_size=4, unique=True),
                st.integers(0, seq_len - 1).flatmap(lambda a: st.integers(a + 1, seq_len).map(lambda b: range(a, b))),
            )
        )
        interventions.append(
            Intervention(
                layer=draw(st.integers(0, num_layers - 1)),
                direction=draw(st.integers(0, 1 if bidirectional else 0)),
                units=units,
                target=target,
                steps=steps,
                value=draw(st.sampled_from(VALUES[KIND[target]])),
            )
        )
    return dict(
        cell=cell, num_layers=num_layers, bidirectional=bidirectional, hidden_size=hidden_size, seq_len=seq_len,
        input_size=draw(st.integers(1, 4)), bias=draw(st.booleans()), seed=draw(st.integers(0, 2**16)),
        interventions=interventions, custom_objective=draw(st.booleans()),
    )


def custom_objective(seq_len, width, seed):
    """A loss on a middle step and the whole sequence, as a trained head's would be."""
    head = torch.randn(width, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    middle = seq_len // 2
    return lambda output: (output[middle] @ head - 0.3) ** 2 + 0.1 * torch.tanh(output).sum()


# Found by hypothesis in a suite run: the GRU's candidate clamped to -1 leaves an input gradient
# of float64 rounding alone (1e-15 of the objective's), which tests/unroll.py then compares
# against the trace's largest gradient, not its own.
NOISE_ONLY_INPUT_GRADIENT = dict(
    cell="gru", num_layers=1, bidirectional=True, hidden_size=1, seq_len=17, input_size=1,
    bias=True, seed=92, custom_objective=False, interventions=[
        Intervention(layer=0, direction=0, units=(0,), target="new", steps=None, value=-1.0),
        Intervention(layer=0, direction=1, units=(0,), target="hidden", steps=None, value=0.0)])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(setups())
@example(NOISE_ONLY_INPUT_GRADIENT)
def test_intervened_trace_matches_a_plain_unroll_with_the_same_clamps(setup):
    rnn = make_rnn(setup["cell"], setup["input_size"], setup["hidden_size"], setup["num_layers"],
                   setup["bidirectional"], setup["bias"], setup["seed"]).double()
    x = torch.randn(setup["seq_len"], setup["input_size"], dtype=torch.float64)
    width = setup["hidden_size"] * (2 if setup["bidirectional"] else 1)
    objective = custom_objective(setup["seq_len"], width, setup["seed"]) if setup["custom_objective"] else None
    tr = trace(rnn, x, objective, interventions=setup["interventions"])
    assert_matches(tr, reference_trace(rnn, x, setup["interventions"], objective))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(setups(cells=("lstm",)))
def test_an_lstm_clamped_in_several_stretches_has_its_own_exact_backward(setup):
    """Where an LSTM's clamps need more than one kernel call, the kernels compute values only and
    the backward is the engine's own recurrence (`_ClampedLSTM`): as exact as the unroll."""
    rnn = make_rnn("lstm", setup["input_size"], setup["hidden_size"], setup["num_layers"],
                   setup["bidirectional"], setup["bias"], setup["seed"]).double()
    x = torch.randn(setup["seq_len"], setup["input_size"], dtype=torch.float64)
    width = setup["hidden_size"] * (2 if setup["bidirectional"] else 1)
    objective = custom_objective(setup["seq_len"], width, setup["seed"]) if setup["custom_objective"] else None
    tr = trace(rnn, x, objective, interventions=setup["interventions"])
    assert_matches(tr, reference_trace(rnn, x, setup["interventions"], objective))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_scattered_mid_range_clamps_of_an_lstm_take_its_own_backward(dtype):
    """The lab's slowest case: c and gates clamped to values inside their range at scattered
    steps, with h and c ablated elsewhere, in a two-layer bidirectional LSTM."""
    rnn = make_rnn("lstm", 3, 6, num_layers=2, bidirectional=True, seed=11).to(dtype)
    x = torch.randn(50, 3, dtype=dtype)
    interventions = [
        Intervention(0, 0, [0, 2, 4], "cell_state", steps=[5, 17, 33, 41], value=0.5),
        Intervention(0, 1, [1], "cell_state", steps=range(10, 30), value=-1.5),
        Intervention(0, 1, [1, 3], "forget", steps=[12, 40], value=0.3),
        Intervention(1, 0, [5], "hidden", steps=[8, 9, 30], value=0.7),
        Intervention(1, 0, [2], "input", steps=[3, 25], value=0.6),
        Intervention(1, 1, [0, 4], "cell_state", steps=[20], value=0.0),
        Intervention(1, 1, [4], "cell", steps=[20, 44], value=-0.2),
    ]
    backward = mock.Mock(wraps=core.engine.interventions._lstm_pre_activation_gradients)
    with mock.patch.object(core.engine.interventions, "_lstm_pre_activation_gradients", backward):
        tr = trace(rnn, x, custom_objective(50, 12, 2) if dtype == torch.float64 else None, interventions=interventions)
    assert backward.call_count == 4  # every layer and direction
    if dtype == torch.float64:
        assert_matches(tr, reference_trace(rnn, x, interventions, custom_objective(50, 12, 2)))
    else:
        assert_float32_matches(tr, rnn, x, interventions)


@pytest.mark.parametrize("cell", CELLS)
def test_every_target_at_every_step_in_a_deep_bidirectional_module(cell):
    """All of a cell's targets at once, in both directions of the middle layer and the top,
    every step (the two-call path) and scattered steps (the stretch-by-stretch path)."""
    rnn = make_rnn(cell, 3, 5, num_layers=3, bidirectional=True, seed=7).double()
    x = torch.randn(30, 3, dtype=torch.float64)
    interventions = []
    for k, target in enumerate(TARGETS[cell]):
        value = VALUES[KIND[target]][1 + k % 2]
        interventions.append(Intervention(1, k % 2, [k % 5, (k + 2) % 5], target, None, value))
        interventions.append(Intervention(2, 1 - k % 2, [(k + 1) % 5], target, [0, 3, 4, 17, 29], value))
    tr = trace(rnn, x, custom_objective(30, 10, 1), interventions=interventions)
    assert_matches(tr, reference_trace(rnn, x, interventions, custom_objective(30, 10, 1)))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_float32_intervened_trace_matches_the_float64_unroll(cell):
    """The shipped models are float32 (an LSTM runs on oneDNN there): states and gates to 1e-5."""
    rnn = make_rnn(cell, 4, 16, num_layers=2, bidirectional=True, seed=3)
    x = torch.randn(60, 4)
    interventions = [
        Intervention(0, 0, range(0, 16, 3), "hidden", steps=range(10, 40)),
        Intervention(1, 1, [1, 2], "forget" if cell == "lstm" else "update", value=1.0),
        Intervention(0, 1, [5], "cell_state" if cell == "lstm" else "new", steps=[7, 30], value=0.5),
    ]
    assert_float32_matches(trace(rnn, x, interventions=interventions), rnn, x, interventions)


def assert_float32_matches(tr, rnn, x, interventions):
    """A float32 trace against the float64 unroll: states and gates to 1e-5; gradients to 1e-3,
    float32's rounding of the sums that make them (as in test_trace)."""
    ref = reference_trace(copy.deepcopy(rnn).double(), x.double(), interventions)
    np.testing.assert_allclose(tr.hidden, ref["hidden"], atol=1e-5, rtol=0)
    for name, values in ref["gates"].items():
        np.testing.assert_allclose(tr.gates[name], values, atol=1e-5, rtol=0, err_msg=name)
    if ref["cell"] is not None:
        np.testing.assert_allclose(tr.cell, ref["cell"], atol=1e-5, rtol=0)
    for name in ("grad_hidden", "grad_cell", "grad_input"):
        if ref[name] is not None:
            np.testing.assert_allclose(getattr(tr, name), ref[name], rtol=1e-3, atol=1e-6 * ref[name].max(), err_msg=name)


def test_no_interventions_leave_the_fused_path_unchanged_bit_for_bit():
    rnn = make_rnn("lstm", 3, 8, num_layers=2, bidirectional=True, seed=4)
    x = torch.randn(40, 3)
    plain = trace(rnn, x)
    with mock.patch.object(core.engine.tracing, "clamped_forward", side_effect=AssertionError("clamped path")):
        empty = trace(rnn, x, interventions=())
        listed = trace(rnn, x, interventions=[])
    for tr in (empty, listed):
        for name in ("hidden", "cell", "grad_hidden", "grad_cell", "grad_input", "output"):
            assert np.array_equal(getattr(tr, name), getattr(plain, name)), name
        for name, values in plain.gates.items():
            assert np.array_equal(tr.gates[name], values), name
        assert tr.objective == plain.objective


def test_only_the_intervened_layer_and_direction_leave_the_fused_kernel():
    """Below an intervention nothing changes, bit for bit: those runs are the plain trace's."""
    rnn = make_rnn("gru", 3, 6, num_layers=2, bidirectional=True, seed=5)
    x = torch.randn(25, 3)
    plain = trace(rnn, x)
    intervened = trace(rnn, x, interventions=[Intervention(1, 1, [2], "update", value=1.0)])
    assert np.array_equal(intervened.hidden[0], plain.hidden[0])
    assert np.array_equal(intervened.hidden[1, 0], plain.hidden[1, 0])
    assert not np.allclose(intervened.hidden[1, 1], plain.hidden[1, 1])


def test_a_clamped_quantity_reads_its_value_and_passes_no_gradient_back():
    rnn = make_rnn("lstm", 2, 6, seed=2)
    x = torch.randn(20, 2)
    tr = trace(rnn, x, interventions=[Intervention(0, 0, range(6), "hidden", steps=[12], value=0.5)])
    assert np.all(tr.hidden[0, 0, 12] == 0.5)
    # every unit of h_12 is fixed, but c_12 still reaches c_13: the gradient before step 12 flows
    # through the cell state alone
    assert tr.grad_hidden[0, 0, 12] > 0 and tr.grad_cell[0, 0, 11] > 0
    cut = trace(
        rnn, x,
        interventions=[Intervention(0, 0, range(6), "hidden", steps=[12]), Intervention(0, 0, range(6), "cell_state", steps=[12])],
    )
    assert np.all(cut.hidden[0, 0, 12] == 0) and np.all(cut.cell[0, 0, 12] == 0)
    assert np.all(cut.grad_hidden[0, 0, :12] == 0) and np.all(cut.grad_cell[0, 0, :12] == 0)
    assert np.all(cut.grad_input[:13] == 0) and np.all(cut.grad_input[13:] > 0)


def test_an_ablation_changes_the_output_and_the_trace_says_so():
    rnn = make_rnn("gru", 3, 8, seed=6)
    x = torch.randn(30, 3)
    plain = trace(rnn, x)
    ablated = trace(rnn, x, interventions=[Intervention(0, 0, [0, 1, 2, 3], "new")])
    assert np.all(ablated.gates["new"][0, 0, :, :4] == 0)
    assert np.abs(ablated.output - plain.output).max() > 1e-3


def test_later_interventions_win_where_they_overlap():
    rnn = make_rnn("lstm", 2, 4, seed=1).double()
    x = torch.randn(10, 2, dtype=torch.float64)
    interventions = [Intervention(0, 0, [0, 1], "forget", value=0.0), Intervention(0, 0, [1, 2], "forget", steps=[4], value=1.0)]
    tr = trace(rnn, x, interventions=interventions)
    assert tr.gates["forget"][0, 0, 4, 1] == 1.0 and tr.gates["forget"][0, 0, 5, 1] == 0.0
    assert_matches(tr, reference_trace(rnn, x, interventions))


def test_interventions_are_frozen_hashable_and_normalised():
    a = Intervention(0, 0, [3, 1, 3], "forget", range(2, 5), 1)
    b = Intervention(0, 0, (1, 3), "forget", (4, 3, 2), 1.0)
    assert a == b and hash(a) == hash(b) and a.units == (1, 3) and a.steps == (2, 3, 4) and a.value == 1.0
    assert len({a, b, Intervention(0, 0, [1], "hidden")}) == 2
    with pytest.raises(AttributeError):
        a.value = 0.5
    assert a.describe() == "forget gate f of units 1, 3 (layer 0, forward) := 1 at steps 2-4"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(target="forgot"), r"Unknown intervention target 'forgot'.*LSTM: input, forget, cell, output"),
        (dict(units=[]), "at least one unit"),
        (dict(steps=[]), r"at least one step \(give steps=None for every step\)"),
        (dict(units=[-1]), "whole numbers from 0"),
        (dict(units="3"), "list, tuple or range"),
        (dict(steps=[1.5]), "whole numbers from 0"),
        (dict(layer=-1), "layer must be a whole number from 0"),
        (dict(direction=2), r"direction must be 0 \(forward\) or 1 \(reverse\)"),
        (dict(value=float("nan")), "finite number"),
        (dict(target="forget", value=1.5), "forget gate f is a sigmoid, between 0 and 1: it cannot be set to 1.5"),
        (dict(target="new", value=-2), r"new gate n \(candidate\) is a tanh, between -1 and 1"),
    ],
)
def test_a_malformed_intervention_is_refused_in_the_users_terms(kwargs, message):
    fields = dict(layer=0, direction=0, units=[0], target="hidden") | kwargs
    with pytest.raises(ValueError, match=message):
        Intervention(**fields)


@pytest.mark.parametrize(
    "cell, intervention, message",
    [
        ("gru", Intervention(0, 0, [0], "forget"), "A GRU has no 'forget' to clamp: its targets are hidden, reset, update, new"),
        ("gru", Intervention(0, 0, [0], "cell_state"), "A GRU has no 'cell_state'"),
        ("rnn_tanh", Intervention(0, 0, [0], "update"), "A vanilla RNN has no gates or cell state"),
        ("lstm", Intervention(2, 0, [0], "hidden"), r"Layer 2 does not exist: this LSTM has 2 layers \(0 to 1\)"),
        ("lstm", Intervention(0, 1, [0], "hidden"), r"Direction 1 \(reverse\) does not exist: this LSTM is not bidirectional"),
        ("lstm", Intervention(0, 0, [2, 5], "hidden"), r"Unit 5 does not exist: layer 0 has 5 units \(0 to 4\)"),
        ("lstm", Intervention(0, 0, [0], "hidden", steps=[3, 9]), r"Step 9 is beyond the sequence: it has 9 steps \(0 to 8\)"),
    ],
)
def test_an_intervention_that_does_not_fit_the_module_is_refused(cell, intervention, message):
    rnn = make_rnn(cell, 2, 5, num_layers=2)
    with pytest.raises(ValueError, match=message):
        trace(rnn, torch.randn(9, 2), interventions=[intervention])


def test_interventions_must_be_intervention_objects():
    with pytest.raises(ValueError, match="Intervention objects"):
        trace(make_rnn("lstm", 2, 3), torch.randn(4, 2), interventions=[("hidden", 0)])


def test_the_clamped_network_runs_in_few_stretches():
    """The speed the design rests on, whatever the sequence's length. An LSTM takes clamps of h
    (any value), ablations of c and gates pushed to their ends as inputs: one fused kernel call
    at any steps. Other clamps cost one call after step 0 (which reads no clamped h) at every
    step, and k + 1 calls at k scattered steps (plus k single steps in the cell ops where a
    clamped state or gate must be handed over or held). Where an LSTM needs more than one call,
    its backward is its own and the kernels only compute values: a c clamped to any value is then
    pushed as an input too, and costs a call per run of clamped steps and no single steps."""
    kernel = mock.Mock(wraps=core.engine.interventions._kernel)
    cell_steps = mock.Mock(wraps=core.engine.interventions._cell_steps)
    x = torch.randn(200, 3)
    cases = [
        ("lstm", [Intervention(0, 0, [1, 2], "hidden", steps=[20, 90, 150], value=0.5), Intervention(0, 0, [2], "cell_state", steps=[5, 60]),
                  Intervention(0, 0, [3], "forget", steps=[7, 8, 9], value=1.0), Intervention(0, 0, [4], "cell", value=-1.0)], (1, 0)),
        ("lstm", [Intervention(0, 0, [1], "cell_state", steps=[20, 90, 150], value=0.5)], (4, 0)),
        ("lstm", [Intervention(0, 0, [1, 5], "cell_state", steps=range(50, 150), value=1.5)], (2, 0)),
        ("lstm", [Intervention(0, 0, [1], "input", steps=[20, 90, 150], value=0.3)], (4, 3)),
        ("lstm", [Intervention(0, 0, [1, 2], "input", value=0.3)], (1, 0)),
        ("gru", [Intervention(0, 0, [1, 2], "hidden", value=0.5), Intervention(0, 0, [3], "new", value=0.3)], (1, 1)),
        ("gru", [Intervention(0, 0, [1], "hidden", steps=[20, 90, 150], value=0.5)], (4, 0)),
        ("gru", [Intervention(0, 0, [1], "update", steps=[20, 90, 150], value=1.0)], (1, 0)),
    ]
    for cell, interventions, calls in cases:
        rnn = make_rnn(cell, 3, 8, seed=0)
        with mock.patch.object(core.engine.interventions, "_kernel", kernel), mock.patch.object(
            core.engine.interventions, "_cell_steps", cell_steps
        ):
            tr = trace(rnn, x, interventions=interventions)
        assert (kernel.call_count, cell_steps.call_count) == calls, interventions
        kernel.reset_mock(), cell_steps.reset_mock()
        assert_float32_matches(tr, rnn, x, interventions)
