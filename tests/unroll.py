"""The tests' slow, correct-by-inspection reference for the tracing engine: a per-step float64
unroll of nn.RNN, nn.LSTM and nn.GRU with PyTorch's documented equations, from any initial state,
with interventions' clamps written in as each quantity is computed, and every gradient read off
autograd. It shares no code with core.engine. Used by the interventions, initial-state and batch
tests."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

CELLS = ["lstm", "gru", "rnn_tanh", "rnn_relu"]
GATES = {"lstm": ("input", "forget", "cell", "output"), "gru": ("reset", "update", "new"), "rnn": ()}


def make_rnn(cell, input_size, hidden_size, num_layers=1, bidirectional=False, bias=True, seed=0, batch_first=False):
    torch.manual_seed(seed)
    kwargs = dict(num_layers=num_layers, bidirectional=bidirectional, bias=bias, batch_first=batch_first)
    if cell == "lstm":
        return nn.LSTM(input_size, hidden_size, **kwargs)
    if cell == "gru":
        return nn.GRU(input_size, hidden_size, **kwargs)
    return nn.RNN(input_size, hidden_size, nonlinearity=cell.removeprefix("rnn_"), **kwargs)


def cell_kind(rnn):
    return "lstm" if isinstance(rnn, nn.LSTM) else "gru" if isinstance(rnn, nn.GRU) else "rnn"


def unroll(rnn, x, h0, c0, interventions=()):
    """Step through `rnn` on x (T, in) from h0 (and c0), rows layer-major and direction-minor,
    with the clamps of `interventions` written in as each quantity is computed. Returns the top
    output (T, D*H), every h, c and gate by (layer, direction, t) with gradients retained, and
    each run's final (h, c)."""
    cell = cell_kind(rnn)
    num_dirs = 2 if rnn.bidirectional else 1
    H, T = rnn.hidden_size, len(x)

    def clamp(quantity, target, layer, d, t):
        for iv in interventions:
            if (iv.layer, iv.direction, iv.target) == (layer, d, target) and (iv.steps is None or t in iv.steps):
                mask = torch.zeros(H, dtype=torch.bool)
                mask[list(iv.units)] = True
                quantity = torch.where(mask, torch.tensor(iv.value, dtype=quantity.dtype), quantity)
        return quantity

    record = dict(hidden={}, cell={}, gates={})
    finals = []
    layer_input = x
    for layer in range(rnn.num_layers):
        direction_outputs = []
        for d in range(num_dirs):
            sfx = f"l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh = getattr(rnn, f"weight_ih_{sfx}"), getattr(rnn, f"weight_hh_{sfx}")
            zeros = torch.zeros(w_ih.shape[0], dtype=x.dtype)
            b_ih = getattr(rnn, f"bias_ih_{sfx}") if rnn.bias else zeros
            b_hh = getattr(rnn, f"bias_hh_{sfx}") if rnn.bias else zeros
            h = h0[layer * num_dirs + d]
            c = c0[layer * num_dirs + d] if cell == "lstm" else None
            outputs = [None] * T
            for t in range(T) if d == 0 else reversed(range(T)):
                xt = layer_input[t]
                if cell == "lstm":
                    i, f, g, o = (w_ih @ xt + b_ih + w_hh @ h + b_hh).chunk(4)
                    i = clamp(torch.sigmoid(i), "input", layer, d, t)
                    f = clamp(torch.sigmoid(f), "forget", layer, d, t)
                    g = clamp(torch.tanh(g), "cell", layer, d, t)
                    o = clamp(torch.sigmoid(o), "output", layer, d, t)
                    c = clamp(f * c + i * g, "cell_state", layer, d, t)
                    c.retain_grad()
                    record["cell"][layer, d, t] = c
                    h = o * torch.tanh(c)
                    record["gates"][layer, d, t] = dict(input=i, forget=f, cell=g, output=o)
                elif cell == "gru":
                    gi, gh = w_ih @ xt + b_ih, w_hh @ h + b_hh
                    r = clamp(torch.sigmoid(gi[:H] + gh[:H]), "reset", layer, d, t)
                    z = clamp(torch.sigmoid(gi[H : 2 * H] + gh[H : 2 * H]), "update", layer, d, t)
                    n = clamp(torch.tanh(gi[2 * H :] + r * gh[2 * H :]), "new", layer, d, t)
                    h = (1 - z) * n + z * h
                    record["gates"][layer, d, t] = dict(reset=r, update=z, new=n)
                else:
                    pre = w_ih @ xt + b_ih + w_hh @ h + b_hh
                    h = torch.tanh(pre) if rnn.nonlinearity == "tanh" else torch.relu(pre)
                    record["gates"][layer, d, t] = {}
                h = clamp(h, "hidden", layer, d, t)
                h.retain_grad()
                record["hidden"][layer, d, t] = h
                outputs[t] = h
            finals.append((h, c))
            direction_outputs.append(torch.stack(outputs))
        layer_input = torch.cat(direction_outputs, dim=1)
    return layer_input, record, finals


def initial_leaves(rnn, h0=None, c0=None, dtype=torch.float64):
    """h0 and c0 as leaves whose .grad autograd fills (zeros where not given)."""
    rows = rnn.num_layers * (2 if rnn.bidirectional else 1)
    shape = (rows, rnn.hidden_size)
    h0 = torch.zeros(shape, dtype=dtype) if h0 is None else h0.clone()
    c0 = torch.zeros(shape, dtype=dtype) if c0 is None else c0.clone()
    return h0.requires_grad_(True), c0.requires_grad_(True)


def recorded_arrays(rnn, x, output, record, value, h0, c0):
    """Everything a Trace holds, read off the unroll after `value.backward()`."""
    cell = cell_kind(rnn)
    L, D, T = rnn.num_layers, 2 if rnn.bidirectional else 1, len(x)

    def grid(get):
        return np.array([[[get(l, d, t) for t in range(T)] for d in range(D)] for l in range(L)])

    def norm(tensor):
        return 0.0 if tensor.grad is None else tensor.grad.norm().item()

    def initial_norms(state):
        if state.grad is None:
            return np.zeros((L, D))
        return state.grad.norm(dim=1).reshape(L, D).numpy()

    lstm = cell == "lstm"
    return dict(
        hidden=grid(lambda l, d, t: record["hidden"][l, d, t].detach().numpy()),
        cell=grid(lambda l, d, t: record["cell"][l, d, t].detach().numpy()) if lstm else None,
        gates={
            name: grid(lambda l, d, t, name=name: record["gates"][l, d, t][name].detach().numpy())
            for name in GATES[cell]
        },
        grad_hidden=grid(lambda l, d, t: norm(record["hidden"][l, d, t])),
        grad_cell=grid(lambda l, d, t: norm(record["cell"][l, d, t])) if lstm else None,
        grad_input=x.grad.norm(dim=1).numpy() if x.grad is not None else np.zeros(T),
        output=output.detach().numpy(),
        objective=value.item(),
        grad_initial=initial_norms(h0),
        grad_initial_cell=initial_norms(c0) if lstm else None,
    )


def reference_trace(rnn, x, objective=None, h0=None, c0=None, interventions=()):
    """The unroll from h0 (and c0), zeros where not given, with every gradient by autograd.
    Default objective: the sum of the top output at the last step (the engine's default)."""
    x = x.clone().requires_grad_(True)
    h0, c0 = initial_leaves(rnn, h0, c0, x.dtype)
    output, record, _ = unroll(rnn, x, h0, c0, interventions)
    value = output[-1].sum() if objective is None else objective(output)
    value.backward()
    return recorded_arrays(rnn, x, output, record, value, h0, c0)


def gradient_scale(ref) -> float:
    """The largest gradient a reference trace holds (of h, c, the input, the initial state)."""
    return max((float(np.abs(np.asarray(ref[name])).max(initial=0.0)) for name in
                ("grad_hidden", "grad_cell", "grad_input", "grad_initial", "grad_initial_cell")
                if ref.get(name) is not None), default=0.0)


def assert_close_relative(actual, expected, rtol, name="", scale=0.0):
    """Elementwise relative closeness down to 1e-12 of the largest value (or of `scale`, the
    trace's largest gradient, where that is larger), so a gradient that has vanished by many
    decades must still be right to rtol of itself. Below that, float64's rounding of the larger
    quantities it was computed from is all there is: a GRU whose candidate is clamped to -1 has
    h_t + 1 shrink by the update gate at every step, and its input gradient, 1e-15 to 1e-19 of
    the objective's, differs between any two orders of the same sums (also exact zeros)."""
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    assert actual.shape == expected.shape, (name, actual.shape, expected.shape)
    tolerance = rtol * np.abs(expected) + 1e-30 + 1e-12 * max(np.abs(expected).max(), scale)
    wrong = [tuple(map(int, i)) for i in np.argwhere(~(np.abs(actual - expected) <= tolerance))]
    assert not wrong, f"{name}: " + "; ".join(
        f"at {i}: {actual[i]:.7g}, expected {expected[i]:.7g}" for i in wrong[:10]
    )
