"""Reading ONNX models: recurrent nodes become PyTorch modules that compute what the ONNX
operators compute (checked against the operator equations of the ONNX spec, in float64), a
PyTorch export reads back to the original model, and everything that cannot be read exactly is
refused with the reason."""

from __future__ import annotations

import io
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from core.io.loading import WeightsError
from core.io.onnx_files import read_onnx

NAME = "`model.onnx`"
BLOCKS = {"LSTM": 4, "GRU": 3, "RNN": 1}
MODULES = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN": nn.RNN}
SEQ, BATCH = 7, 2


# ---------------------------------------------------------------------------------------------
# ONNX models made with onnx.helper, and ONNX's operator equations in numpy float64


def onnx_weights(op, input_size, hidden, directions=1, seed=0):
    """Random W, R, B in ONNX's layout (gate order is whatever ONNX says: these are raw)."""
    rng = np.random.default_rng(seed)
    rows = BLOCKS[op] * hidden
    w = rng.uniform(-0.8, 0.8, (directions, rows, input_size)).astype(np.float32)
    r = rng.uniform(-0.8, 0.8, (directions, rows, hidden)).astype(np.float32)
    b = rng.uniform(-0.5, 0.5, (directions, 2 * rows)).astype(np.float32)
    return w, r, b


def recurrent_node(op, name, x, prefix, *, bias=True, **attributes):
    """A node reading the initializers `<prefix>_W`, `_R` (and `_B`), writing `<prefix>_Y`."""
    inputs = [x, f"{prefix}_W", f"{prefix}_R"] + ([f"{prefix}_B"] if bias else [])
    return helper.make_node(op, inputs, [f"{prefix}_Y"], name=name, **attributes)


def initializers(prefix, w, r, b=None):
    arrays = {"W": w, "R": r} | ({"B": b} if b is not None else {})
    return [numpy_helper.from_array(a, f"{prefix}_{k}") for k, a in arrays.items()]


def model_bytes(nodes, inits, input_size, output="n_Y", inputs=None) -> bytes:
    graph = helper.make_graph(
        nodes, "g",
        inputs or [helper.make_tensor_value_info("X", TensorProto.FLOAT, [SEQ, BATCH,
                                                                          input_size])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    return model.SerializeToString()


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


ACTIVATIONS = {"Tanh": np.tanh, "Relu": lambda v: np.maximum(v, 0.0)}


def onnx_reference(op, x, w, r, b=None, *, activation="Tanh"):
    """Y (seq, directions, batch, hidden) of an ONNX LSTM / GRU (linear_before_reset=1) / RNN
    node with zero initial states, by the equations of the ONNX operator spec, in float64.
    Direction 1 of a bidirectional node reads the sequence from its end."""
    x, w, r = (np.asarray(a, np.float64) for a in (x, w, r))
    directions, rows, _ = w.shape
    hidden = r.shape[2]
    b = np.zeros((directions, 2 * rows)) if b is None else np.asarray(b, np.float64)
    y = np.zeros((x.shape[0], directions, x.shape[1], hidden))
    for d in range(directions):
        wb, rb = b[d, :rows], b[d, rows:]
        h = np.zeros((x.shape[1], hidden))
        c = np.zeros((x.shape[1], hidden))
        steps = range(x.shape[0]) if d == 0 else reversed(range(x.shape[0]))
        for t in steps:
            xw = x[t] @ w[d].T + wb
            hr = h @ r[d].T + rb
            if op == "LSTM":  # W rows: i, o, f, c
                i, o, f, g = np.split(xw + hr, 4, axis=1)
                i, o, f, g = sigmoid(i), sigmoid(o), sigmoid(f), np.tanh(g)
                c = f * c + i * g
                h = o * np.tanh(c)
            elif op == "GRU":  # W rows: z, r, h; linear_before_reset=1
                xz, xr, xh = np.split(xw, 3, axis=1)
                hz, hr_, hh = np.split(hr, 3, axis=1)
                z = sigmoid(xz + hz)
                reset = sigmoid(xr + hr_)
                n = np.tanh(xh + reset * hh)
                h = (1 - z) * n + z * h
            else:
                h = ACTIVATIONS[activation](xw + hr)
            y[t, d] = h
    return y


def y_as_torch_output(y):
    """ONNX Y (seq, directions, batch, hidden) as a PyTorch module's output (seq, batch, D*H)."""
    return y.transpose(0, 2, 1, 3).reshape(y.shape[0], y.shape[2], -1)


def module_from(tensors, metadata, prefix, op, input_size, hidden, **options):
    """The PyTorch module for `prefix`, loaded with strict=True from exactly its keys."""
    params = {key[len(prefix) + 1:]: value for key, value in tensors.items()
              if key.startswith(prefix + ".")}
    extra = {"nonlinearity": metadata[f"nonlinearity.{prefix}"]} if op == "RNN" else {}
    module = MODULES[op](input_size, hidden, **options, **extra)
    module.load_state_dict(params, strict=True)
    return module.eval()


def run(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(x))[0].double().numpy()


def inputs(input_size, seed=5):
    return np.random.default_rng(seed).uniform(-1, 1, (SEQ, BATCH, input_size)).astype(np.float32)


def refusal(data) -> str:
    with pytest.raises(WeightsError) as caught:
        read_onnx(data, NAME)
    return str(caught.value)


# ---------------------------------------------------------------------------------------------
# Single nodes


CASES = [("LSTM", {}), ("GRU", {"linear_before_reset": 1}),
         ("RNN", {"activations": ["Tanh"]}), ("RNN", {"activations": ["Relu"]})]


@pytest.mark.parametrize("op, attributes", CASES, ids=["lstm", "gru", "rnn-tanh", "rnn-relu"])
@pytest.mark.parametrize("directions", [1, 2], ids=["forward", "bidirectional"])
def test_a_recurrent_node_reads_as_the_pytorch_module_that_computes_it(op, attributes,
                                                                        directions):
    input_size, hidden = 3, 5
    w, r, b = onnx_weights(op, input_size, hidden, directions)
    if directions == 2:
        attributes = dict(attributes, direction="bidirectional")
        if "activations" in attributes:
            attributes["activations"] = attributes["activations"] * 2
    node = recurrent_node(op, "encoder", "X", "n", hidden_size=hidden, **attributes)
    tensors, metadata = read_onnx(model_bytes([node], initializers("n", w, r, b), input_size),
                                  NAME)

    suffixes = ["", "_reverse"][:directions]
    assert set(tensors) == {f"encoder.{kind}_l0{s}" for kind in
                            ("weight_ih", "weight_hh", "bias_ih", "bias_hh") for s in suffixes}
    assert all(t.dtype == torch.float32 and t.device.type == "cpu" for t in tensors.values())
    assert metadata["source"] == "onnx"
    if op == "RNN":
        assert metadata["nonlinearity.encoder"] == attributes["activations"][0].lower()
    else:
        assert "gates" in metadata["note"] and "reordered" in metadata["note"]
    module = module_from(tensors, metadata, "encoder", op, input_size, hidden,
                         bidirectional=directions == 2)
    x = inputs(input_size)
    want = y_as_torch_output(onnx_reference(op, x, w, r, b,
                                            activation=(attributes.get("activations")
                                                        or ["Tanh"])[0]))
    np.testing.assert_allclose(run(module, x), want, atol=1e-5, rtol=0)


def test_the_gate_blocks_are_moved_to_pytorchs_order():
    # Each ONNX block filled with its own number shows where it lands.
    hidden, input_size = 2, 1
    for op, torch_order in (("LSTM", [0, 2, 3, 1]), ("GRU", [1, 0, 2])):
        blocks = BLOCKS[op]
        w = np.repeat(np.arange(blocks, dtype=np.float32), hidden).reshape(1, -1, 1)
        r = np.repeat(w, hidden, axis=2)
        b = np.concatenate([w.reshape(1, -1), w.reshape(1, -1) + 10], axis=1)
        node = recurrent_node(op, "", "X", "n", linear_before_reset=1) if op == "GRU" else \
            recurrent_node(op, "", "X", "n")
        tensors, _ = read_onnx(model_bytes([node], initializers("n", w, r, b), input_size), NAME)
        prefix = f"{op}_0"
        want = np.repeat(np.array(torch_order, dtype=np.float32), hidden)
        np.testing.assert_array_equal(tensors[f"{prefix}.weight_ih_l0"][:, 0].numpy(), want)
        np.testing.assert_array_equal(tensors[f"{prefix}.weight_hh_l0"][:, 1].numpy(), want)
        np.testing.assert_array_equal(tensors[f"{prefix}.bias_ih_l0"].numpy(), want)
        np.testing.assert_array_equal(tensors[f"{prefix}.bias_hh_l0"].numpy(), want + 10)


def test_a_node_without_b_gets_zero_biases_and_computes_the_same():
    input_size, hidden = 4, 3
    w, r, _ = onnx_weights("LSTM", input_size, hidden)
    node = recurrent_node("LSTM", "lstm", "X", "n", bias=False)
    tensors, metadata = read_onnx(model_bytes([node], initializers("n", w, r), input_size), NAME)
    assert not tensors["lstm.bias_ih_l0"].any() and not tensors["lstm.bias_hh_l0"].any()
    assert tensors["lstm.bias_ih_l0"].shape == (4 * hidden,)
    assert "zero biases for `lstm`" in metadata["note"]
    module = module_from(tensors, metadata, "lstm", "LSTM", input_size, hidden)
    x = inputs(input_size)
    np.testing.assert_allclose(run(module, x), y_as_torch_output(onnx_reference("LSTM", x, w, r)),
                               atol=1e-5, rtol=0)


def test_weights_from_constant_nodes_and_through_identity_are_read():
    input_size, hidden = 3, 4
    w, r, b = onnx_weights("GRU", input_size, hidden, seed=3)
    nodes = [
        helper.make_node("Constant", [], ["w_const"], value=numpy_helper.from_array(w, "w")),
        helper.make_node("Identity", ["r_stored"], ["r_copy"]),
        helper.make_node("Identity", ["r_copy"], ["n_R"]),
        helper.make_node("GRU", ["X", "w_const", "n_R", "n_B"], ["n_Y"], name="gru",
                         linear_before_reset=1),
    ]
    inits = [numpy_helper.from_array(r, "r_stored"), numpy_helper.from_array(b, "n_B")]
    tensors, metadata = read_onnx(model_bytes(nodes, inits, input_size), NAME)
    module = module_from(tensors, metadata, "gru", "GRU", input_size, hidden)
    x = inputs(input_size)
    np.testing.assert_allclose(run(module, x),
                               y_as_torch_output(onnx_reference("GRU", x, w, r, b)),
                               atol=1e-5, rtol=0)


def test_float16_and_float64_weights_are_read_as_float32():
    input_size, hidden = 2, 3
    w, r, b = onnx_weights("RNN", input_size, hidden)
    inits = [numpy_helper.from_array(w.astype(np.float16), "n_W"),
             numpy_helper.from_array(r.astype(np.float64), "n_R"),
             numpy_helper.from_array(b, "n_B")]
    tensors, _ = read_onnx(model_bytes([recurrent_node("RNN", "rnn", "X", "n")], inits,
                                       input_size), NAME)
    assert tensors["rnn.weight_ih_l0"].dtype == torch.float32
    np.testing.assert_array_equal(tensors["rnn.weight_ih_l0"].numpy(),
                                  w[0].astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(tensors["rnn.weight_hh_l0"].numpy(), r[0])


# ---------------------------------------------------------------------------------------------
# Prefixes and stacks


def test_prefixes_are_safe_node_names_or_op_and_number():
    nodes, inits = [], []
    for index, (op, name) in enumerate([("LSTM", ""), ("GRU", ""), ("LSTM", ""),
                                        ("RNN", "enc:lstm (main)`*"), ("RNN", "..a..b."),
                                        ("RNN", "dup"), ("RNN", "dup")]):
        w, r, b = onnx_weights(op, 2, 2, seed=index)
        attributes = {"linear_before_reset": 1} if op == "GRU" else {}
        nodes.append(recurrent_node(op, name, "X", f"n{index}", **attributes))
        inits += initializers(f"n{index}", w, r, b)
    tensors, metadata = read_onnx(model_bytes(nodes, inits, 2, output="n0_Y"), NAME)
    prefixes = {key.rsplit(".", 1)[0] for key in tensors}
    assert prefixes == {"LSTM_0", "GRU_0", "LSTM_1", "enc_lstm__main___", "a.b", "dup",
                        "dup_3"}
    assert metadata["nonlinearity.enc_lstm__main___"] == "tanh"
    assert metadata["nonlinearity.dup_3"] == "tanh"


def stack(op, layers, directions, link, hidden=3, input_size=2, **attributes):
    """`layers` nodes, each fed by the previous one's Y through the nodes `link` makes."""
    nodes, inits, weights = [], [], []
    x = "X"
    if directions == 2:
        attributes["direction"] = "bidirectional"
    for number in range(layers):
        size = input_size if number == 0 else directions * hidden
        w, r, b = onnx_weights(op, size, hidden, directions, seed=10 + number)
        weights.append((w, r, b))
        nodes.append(recurrent_node(op, f"/rnn/{op}" + (f"_{number}" if number else ""), x,
                                    f"n{number}", **attributes))
        inits += initializers(f"n{number}", w, r, b)
        if number < layers - 1:
            x, more_nodes, more_inits = link(f"n{number}_Y", number)
            nodes += more_nodes
            inits += more_inits
    return model_bytes(nodes, inits, input_size, output=f"n{layers - 1}_Y"), weights


def squeeze(y, number):
    axes = numpy_helper.from_array(np.array([1], np.int64), f"axes{number}")
    return f"x{number}", [helper.make_node("Squeeze", [y, f"axes{number}"], [f"x{number}"])], [axes]


def transpose_reshape(y, number):
    shape = numpy_helper.from_array(np.array([0, 0, -1], np.int64), f"shape{number}")
    return f"x{number}", [
        helper.make_node("Transpose", [y], [f"t{number}"], perm=[0, 2, 1, 3]),
        helper.make_node("Identity", [f"t{number}"], [f"i{number}"]),
        helper.make_node("Reshape", [f"i{number}", f"shape{number}"], [f"x{number}"]),
    ], [shape]


def relu_between(y, number):
    name, nodes, inits = squeeze(y, number)
    return f"a{number}", nodes + [helper.make_node("Relu", [name], [f"a{number}"])], inits


def stacked_reference(op, x, weights):
    for w, r, b in weights:
        x = y_as_torch_output(onnx_reference(op, x, w, r, b))
    return x


@pytest.mark.parametrize("op, directions, link", [
    ("LSTM", 1, squeeze), ("GRU", 1, squeeze), ("LSTM", 2, transpose_reshape),
    ("RNN", 2, transpose_reshape)], ids=["lstm", "gru", "lstm-bidirectional", "rnn-bidirectional"])
def test_stacked_nodes_read_as_one_multi_layer_module(op, directions, link):
    attributes = {"linear_before_reset": 1} if op == "GRU" else {}
    data, weights = stack(op, 3, directions, link, **attributes)
    tensors, metadata = read_onnx(data, NAME)
    prefix = f"/rnn/{op}"
    assert {key.rsplit(".", 1)[0] for key in tensors} == {prefix}
    assert "3-layer module" in metadata["note"]
    module = module_from(tensors, metadata, prefix, op, 2, 3, num_layers=3,
                         bidirectional=directions == 2)
    x = inputs(2)
    np.testing.assert_allclose(run(module, x), stacked_reference(op, x, weights),
                               atol=1e-5, rtol=0)


def squeeze_axis(axis):
    def link(y, number):
        axes = numpy_helper.from_array(np.array([axis], np.int64), f"axes{number}")
        return f"x{number}", [helper.make_node("Squeeze", [y, f"axes{number}"],
                                               [f"x{number}"])], [axes]
    return link


def reshape_only(y, number):
    shape = numpy_helper.from_array(np.array([0, 0, -1], np.int64), f"shape{number}")
    return f"x{number}", [helper.make_node("Reshape", [y, f"shape{number}"], [f"x{number}"])], [
        shape]


@pytest.mark.parametrize("directions, link, stacked", [
    (1, squeeze_axis(2), True), (2, reshape_only, True), (1, squeeze_axis(1), False)],
    ids=["squeeze-directions", "reshape", "squeeze-sequence"])
def test_batch_first_nodes_stack_when_reshaped_as_pytorch_does(directions, link, stacked):
    # layout=1: Y is (batch, seq, directions, hidden), so the direction axis is 2.
    data, weights = stack("LSTM", 2, directions, link, layout=1)
    tensors, metadata = read_onnx(data, NAME)
    prefixes = {key.rsplit(".", 1)[0] for key in tensors}
    assert prefixes == ({"/rnn/LSTM"} if stacked else {"/rnn/LSTM", "/rnn/LSTM_1"})
    if stacked:  # the weights do not depend on the layout: the equations are the same
        module = module_from(tensors, metadata, "/rnn/LSTM", "LSTM", 2, 3, num_layers=2,
                             bidirectional=directions == 2)
        x = inputs(2)
        np.testing.assert_allclose(run(module, x), stacked_reference("LSTM", x, weights),
                                   atol=1e-5, rtol=0)


def reshape_without_transpose(y, number):
    name, nodes, inits = transpose_reshape(y, number)
    return name, [helper.make_node("Identity", [y], [f"t{number}"])] + nodes[1:], inits


def reshape_with_allowzero(y, number):
    name, nodes, inits = transpose_reshape(y, number)
    nodes[-1].attribute.append(helper.make_attribute("allowzero", 1))
    return name, nodes, inits


def transpose_of_other_axes(y, number):
    name, nodes, inits = transpose_reshape(y, number)
    wrong = helper.make_node("Transpose", [y], [f"t{number}"], perm=[2, 1, 0, 3])
    return name, [wrong] + nodes[1:], inits


@pytest.mark.parametrize("directions, link", [
    (1, relu_between), (2, reshape_without_transpose), (2, transpose_of_other_axes),
    (2, reshape_with_allowzero)],
    ids=["relu", "reshape-without-transpose", "other-transpose", "allowzero"])
def test_nodes_joined_other_than_as_pytorch_stacks_layers_stay_one_layer_each(directions, link):
    data, weights = stack("LSTM", 2, directions, link)
    tensors, metadata = read_onnx(data, NAME)
    assert {key.rsplit(".", 1)[0] for key in tensors} == {"/rnn/LSTM", "/rnn/LSTM_1"}
    assert "layer module" not in metadata["note"]
    x = inputs(2)
    first = module_from(tensors, metadata, "/rnn/LSTM", "LSTM", 2, 3,
                        bidirectional=directions == 2)
    w, r, b = weights[0]
    np.testing.assert_allclose(run(first, x),
                               y_as_torch_output(onnx_reference("LSTM", x, w, r, b)),
                               atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------------------------
# Initializers with PyTorch's names


def test_pytorch_named_initializers_are_returned_under_their_names():
    w, r, b = onnx_weights("LSTM", 3, 2)
    inits = initializers("n", w, r, b) + [
        numpy_helper.from_array(np.ones((5, 3), np.float32), "embedding.weight"),
        numpy_helper.from_array(np.full((4, 2), 2, np.float64), "head.weight"),
        numpy_helper.from_array(np.zeros(4, np.float32), "head.bias"),
        numpy_helper.from_array(np.ones((4, 2), np.float32), "onnx::MatMul_12"),
        numpy_helper.from_array(np.ones(3, np.float32), "plain"),
        numpy_helper.from_array(np.array(3, np.int64), "bn.num_batches_tracked"),
    ]
    tensors, _ = read_onnx(model_bytes([recurrent_node("LSTM", "lstm", "X", "n")], inits, 3),
                           NAME)
    assert set(tensors) - {key for key in tensors if key.startswith("lstm.")} == {
        "embedding.weight", "head.weight", "head.bias"}
    assert tensors["head.weight"].dtype == torch.float32
    assert tensors["head.weight"].shape == (4, 2) and float(tensors["head.weight"][0, 0]) == 2


def test_pytorch_named_recurrent_weights_without_a_recurrent_node_are_read():
    rnn = nn.GRU(3, 2)
    inits = [numpy_helper.from_array(p.detach().numpy(), f"rnn.{key}")
             for key, p in rnn.state_dict().items()]
    node = helper.make_node("MatMul", ["X", "rnn.weight_ih_l0"], ["n_Y"])
    tensors, metadata = read_onnx(model_bytes([node], inits, 3), NAME)
    assert set(tensors) == {f"rnn.{key}" for key in rnn.state_dict()}
    for key, value in rnn.state_dict().items():
        torch.testing.assert_close(tensors[f"rnn.{key}"], value, atol=0, rtol=0)
    assert metadata["source"] == "onnx"


def test_a_node_computing_its_weights_from_pytorch_named_ones_leaves_those_to_be_read():
    # As an exporter that reorders the gates at run time would write it: the node's W, R and B
    # are computed (here by Unsqueeze) from weights stored under PyTorch's names.
    rnn = nn.RNN(3, 2)
    inits = [numpy_helper.from_array(p.detach().numpy(), f"rnn.{key}")
             for key, p in rnn.state_dict().items()]
    inits.append(numpy_helper.from_array(np.array([0], np.int64), "axis"))
    nodes = [helper.make_node("Unsqueeze", ["rnn.weight_ih_l0", "axis"], ["W"]),
             helper.make_node("Unsqueeze", ["rnn.weight_hh_l0", "axis"], ["R"]),
             helper.make_node("RNN", ["X", "W", "R"], ["n_Y"], name="rnn_node")]
    tensors, metadata = read_onnx(model_bytes(nodes, inits, 3), NAME)
    assert set(tensors) == {f"rnn.{key}" for key in rnn.state_dict()}
    assert "`rnn_node` compute their weights at run time and were skipped" in metadata["note"]


# ---------------------------------------------------------------------------------------------
# A real PyTorch export


class Tagger(nn.Module):
    """Embedding -> recurrent module -> Linear, as a user's model would be."""

    def __init__(self, cell, last_step_only, **options):
        super().__init__()
        torch.manual_seed(0)
        self.embedding = nn.Embedding(11, 4)
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell](4, 6, **options)
        self.head = nn.Linear(6 * (2 if options.get("bidirectional") else 1), 3)
        self.last_step_only = last_step_only

    def forward(self, tokens):
        output = self.rnn(self.embedding(tokens))[0]
        return self.head(output[-1] if self.last_step_only else output)


def export(model, tokens) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model.eval(), (tokens,), buffer, dynamo=False)
    return buffer.getvalue()


@pytest.mark.parametrize("cell, node, last_step_only, options", [
    ("lstm", "LSTM", False, {"num_layers": 2}),
    ("lstm", "LSTM", True, {"bidirectional": True}),
    ("gru", "GRU", False, {"num_layers": 2, "bidirectional": True}),
    ("rnn", "RNN", True, {"nonlinearity": "relu"}),
], ids=["lstm-2-layers", "lstm-bidirectional", "gru-bidirectional-2-layers", "rnn-relu"])
def test_a_pytorch_export_reads_back_to_the_original_model(cell, node, last_step_only, options):
    original = Tagger(cell, last_step_only, **options).eval()
    tokens = torch.randint(0, 11, (8, 2), generator=torch.Generator().manual_seed(2))
    tensors, metadata = read_onnx(export(original, tokens), NAME)

    prefix = f"/rnn/{node}"
    assert {key.rsplit(".", 1)[0] for key in tensors} == {prefix, "embedding", "head"}
    # The nonlinearity comes from the file's metadata, not from what the test knows.
    shape_options = {key: value for key, value in options.items() if key != "nonlinearity"}
    rnn = module_from(tensors, metadata, prefix, node, 4, 6, **shape_options)
    embedding = nn.Embedding.from_pretrained(tensors["embedding.weight"])
    head = nn.Linear(*reversed(tensors["head.weight"].shape))
    head.load_state_dict({"weight": tensors["head.weight"], "bias": tensors["head.bias"]},
                         strict=True)
    with torch.no_grad():
        output = rnn(embedding(tokens))[0]
        got = head(output[-1] if last_step_only else output)
        want = original(tokens)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    if cell == "rnn":
        assert metadata[f"nonlinearity.{prefix}"] == "relu"


# ---------------------------------------------------------------------------------------------
# Refusals


def lstm_model(name="lstm", *, node_inputs=None, extra_nodes=(), extra_inits=(), graph_inputs=(),
               w=None, **attributes) -> bytes:
    """A one-node LSTM model, changed as a refusal test needs."""
    weights = onnx_weights("LSTM", 3, 2, 2 if attributes.get("direction") == "bidirectional"
                           else 1)
    inits = [init for init in initializers("n", *weights)
             if node_inputs is None or init.name in node_inputs]
    if w is not None:
        inits = [init for init in inits if init.name != "n_W"] + [w]
    node = helper.make_node("LSTM", node_inputs or ["X", "n_W", "n_R", "n_B"], ["n_Y"],
                            name=name, **attributes)
    value_inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [SEQ, BATCH, 3])]
    value_inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
                     for n in graph_inputs]
    return model_bytes([*extra_nodes, node], [*inits, *extra_inits], 3, inputs=value_inputs)


def test_bytes_that_are_not_an_onnx_model_are_refused():
    assert "is empty" in refusal(b"")
    message = refusal(b"\x00not an onnx model at all\xff\xfe")
    assert "truncated or not an ONNX model" in message and "torch.onnx.export" in message
    whole = lstm_model()
    assert "truncated or not an ONNX model" in refusal(whole[: len(whole) - 7])


def test_external_data_is_refused_with_how_to_save_the_weights_inside():
    tensor = numpy_helper.from_array(onnx_weights("LSTM", 3, 2)[0], "n_W")
    onnx.external_data_helper.set_external_data(tensor, location="weights.bin")
    tensor.ClearField("raw_data")
    message = refusal(lstm_model(w=tensor))
    assert "separate file" in message and "`n_W`" in message
    assert "onnx.save_model(model, path, save_as_external_data=False)" in message


def test_a_graph_without_recurrent_layers_is_refused_saying_what_it_has():
    nodes = [helper.make_node("MatMul", ["X", "w"], ["m"]), helper.make_node("Add", ["m", "b"],
                                                                              ["a"]),
             helper.make_node("Relu", ["a"], ["n_Y"]),
             # An "LSTM" of another domain is not ONNX's LSTM.
             helper.make_node("LSTM", ["X"], ["z"], domain="com.example")]
    inits = [numpy_helper.from_array(np.ones((3, 2), np.float32), "w"),
             numpy_helper.from_array(np.ones(2, np.float32), "fc.bias")]
    message = refusal(model_bytes(nodes, inits, 3))
    assert "no recurrent layer" in message
    assert "`MatMul`, `Add`, `Relu`, `LSTM`" in message


def test_integer_weights_are_refused():
    w = numpy_helper.from_array(np.ones((1, 8, 3), np.int32), "n_W")
    message = refusal(lstm_model(w=w))
    assert "dtype int32 for the input weights W of the LSTM node `lstm`" in message
    assert "float32, float16, bfloat16 or float64" in message


@pytest.mark.parametrize("attributes, node_inputs, expected", [
    ({}, ["X", "n_W", "n_R", "n_B", "", "", "", "n_P"], "peephole"),
    ({"input_forget": 1}, None, "input_forget=1"),
    ({"clip": 3.0}, None, "clips its gate inputs (clip=3)"),
    ({"activations": ["Sigmoid", "Tanh", "Relu"]}, None, "computes Sigmoid, Tanh, Tanh only"),
    ({"activations": ["Sigmoid", "Tanh", "Tanh"], "activation_alpha": [0.5]}, None,
     "activation_alpha"),
    ({"direction": "reverse"}, None, "reads the sequence forwards"),
    ({"hidden_size": 7}, None, "hidden_size=7 but its R weights have hidden size 2"),
    ({}, ["X", "n_W", ""], "has no R input"),
], ids=["peephole", "input-forget", "clip", "activations", "alpha", "reverse", "hidden-size",
        "no-r"])
def test_lstm_nodes_pytorch_cannot_compute_are_refused(attributes, node_inputs, expected):
    extra = [numpy_helper.from_array(np.zeros((1, 6), np.float32), "n_P")]
    message = refusal(lstm_model(node_inputs=node_inputs, extra_inits=extra, **attributes))
    assert expected in message
    assert "the LSTM node `lstm`" in message


def test_default_lstm_activations_spelled_out_are_read():
    tensors, _ = read_onnx(lstm_model(activations=["Sigmoid", "Tanh", "Tanh"]), NAME)
    assert "lstm.weight_ih_l0" in tensors


def test_gru_with_linear_before_reset_0_is_refused():
    w, r, b = onnx_weights("GRU", 3, 2)
    for attributes in ({}, {"linear_before_reset": 0}):
        node = recurrent_node("GRU", "gru", "X", "n", **attributes)
        message = refusal(model_bytes([node], initializers("n", w, r, b), 3))
        assert "linear_before_reset=0" in message and "nn.GRU cannot compute" in message


@pytest.mark.parametrize("activations, expected", [
    (["Sigmoid"], "uses the activation `Sigmoid`; nn.RNN has tanh or relu only"),
    (["Tanh", "Relu"], "one nonlinearity for both directions"),
], ids=["sigmoid", "mixed"])
def test_rnn_activations_nn_rnn_lacks_are_refused(activations, expected):
    directions = len(activations)
    w, r, b = onnx_weights("RNN", 3, 2, directions)
    node = recurrent_node("RNN", "rnn", "X", "n", activations=activations,
                          direction="bidirectional" if directions == 2 else "forward")
    assert expected in refusal(model_bytes([node], initializers("n", w, r, b), 3))


def test_weights_computed_at_run_time_are_refused():
    message = refusal(lstm_model(node_inputs=["X", "W_in", "n_R", "n_B"], graph_inputs=["W_in"]))
    assert "graph input, given at run time" in message and "never runs the graph" in message
    scale = helper.make_node("Mul", ["n_W", "n_W"], ["W_scaled"])
    message = refusal(lstm_model(node_inputs=["X", "W_scaled", "n_R", "n_B"],
                                 extra_nodes=[scale],
                                 extra_inits=initializers("n", *onnx_weights("LSTM", 3, 2))[:1]))
    assert "computed at run time by a `Mul` node" in message


def test_wrong_shapes_and_damaged_data_are_refused():
    w = numpy_helper.from_array(np.ones((1, 7, 3), np.float32), "n_W")
    assert "has weights of shapes W (1, 7, 3) and R (1, 8, 2)" in refusal(lstm_model(w=w))
    damaged = numpy_helper.from_array(np.ones((1, 8, 3), np.float32), "n_W")
    damaged.raw_data = damaged.raw_data[:10]
    assert "the file is damaged" in refusal(lstm_model(w=damaged))


def test_sizes_the_file_claims_are_checked_before_reading_its_data():
    # 10 million claimed values and no data: refused on the claim, before any array is made.
    huge = TensorProto(name="n_W", data_type=TensorProto.FLOAT, dims=[1, 8, 1_250_000])
    message = refusal(lstm_model(w=huge))
    assert "over a limit of this app" in message and "5,000,000" in message


def test_node_names_in_messages_are_inert_in_markdown():
    message = refusal(lstm_model(name="**bold** `code`\n", clip=1.0))
    assert "`**bold** code`" in message and "\n" not in message


def test_onnx_is_imported_only_when_a_file_is_read():
    code = ("import sys, core.io.onnx_files; print('onnx' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert result.stdout.strip() == "False"
