"""core/io/keras_files.py: a user's Keras model (.keras, .h5) read as PyTorch weights.

Keras 3 files are written here by real Keras (on its torch backend); Keras 2 and tf.keras files,
which only TensorFlow-era Keras writes, are written with h5py exactly as Keras 2's
`save_model` / `save_weights` lay them out (attributes `model_config`, `layer_names`,
`weight_names`; one dataset per weight at its weight name). Every recurrent layer read is
rebuilt as nn.LSTM / nn.GRU / nn.RNN from the tensors alone (load_state_dict(strict=True)) and
run against Keras's equations written out in numpy below (float64), from the raw arrays in the
file, and for Keras 3 files also against Keras itself.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

import core.io.keras_files
import core.limits
from core.io.keras_files import read_keras
from core.io.loading import WeightsError

TOLERANCE = 1e-5
# Keras's torch backend converts tensors in a way numpy 2 deprecates; not this module's business.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
_PARAM = re.compile(r"(weight|bias)_(ih|hh)_l0(_reverse)?")


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")  # TensorFlow is not installed
    import keras as keras_module

    keras_module.utils.set_random_seed(7)
    return keras_module


# ---------------------------------------------------------------------------------------------
# Keras's equations, in numpy (float64), from the arrays as Keras stores them


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def keras_lstm(x, kernel, recurrent, bias=None):
    """Keras LSTM (and CuDNNLSTM with its 8H bias: input biases, then recurrent ones)."""
    hidden = recurrent.shape[0]
    bias = np.zeros(4 * hidden) if bias is None else np.asarray(bias, np.float64)
    if bias.size == 8 * hidden:
        bias = bias[:4 * hidden] + bias[4 * hidden:]
    h, c, out = np.zeros(hidden), np.zeros(hidden), []
    for step in x:
        z = step @ kernel + h @ recurrent + bias
        i, f = _sigmoid(z[:hidden]), _sigmoid(z[hidden:2 * hidden])
        g, o = np.tanh(z[2 * hidden:3 * hidden]), _sigmoid(z[3 * hidden:])
        c = f * c + i * g
        h = o * np.tanh(c)
        out.append(h)
    return np.array(out)


def keras_gru(x, kernel, recurrent, bias=None):
    """Keras GRU with reset_after=True (bias (2, 3H)) and CuDNNGRU (bias 6H): gates z, r, h."""
    hidden = recurrent.shape[0]
    bias = np.zeros((2, 3 * hidden)) if bias is None else np.asarray(bias, np.float64)
    bias = bias.reshape(2, 3 * hidden)
    h, out = np.zeros(hidden), []
    for step in x:
        from_x = step @ kernel + bias[0]
        from_h = h @ recurrent + bias[1]
        z = _sigmoid(from_x[:hidden] + from_h[:hidden])
        r = _sigmoid(from_x[hidden:2 * hidden] + from_h[hidden:2 * hidden])
        candidate = np.tanh(from_x[2 * hidden:] + r * from_h[2 * hidden:])
        h = z * h + (1 - z) * candidate
        out.append(h)
    return np.array(out)


def keras_simple_rnn(x, kernel, recurrent, bias=None, activation="tanh"):
    hidden = recurrent.shape[0]
    bias = np.zeros(hidden) if bias is None else bias
    act = np.tanh if activation == "tanh" else (lambda v: np.maximum(v, 0.0))
    h, out = np.zeros(hidden), []
    for step in x:
        h = act(step @ kernel + h @ recurrent + bias)
        out.append(h)
    return np.array(out)


def keras_bidirectional(run, x, forward, backward):
    """Keras's Bidirectional, merge_mode="concat": the backward layer reads the reversed
    sequence and its outputs are reversed back, then both are concatenated per step."""
    return np.concatenate([run(x, *forward), run(x[::-1], *backward)[::-1]], axis=1)


# ---------------------------------------------------------------------------------------------
# The PyTorch side: a module rebuilt from the tensors under one prefix, as the loader will


def torch_module(tensors, prefix, nonlinearity="tanh"):
    params = {key[len(prefix) + 1:]: value for key, value in tensors.items()
              if key.startswith(prefix + ".") and _PARAM.fullmatch(key[len(prefix) + 1:])}
    assert params, f"no recurrent module at {prefix!r} in {sorted(tensors)}"
    hidden = params["weight_hh_l0"].shape[1]
    gates = params["weight_hh_l0"].shape[0] // hidden
    module_class = {4: nn.LSTM, 3: nn.GRU, 1: nn.RNN}[gates]
    extra = {"nonlinearity": nonlinearity} if gates == 1 else {}
    module = module_class(params["weight_ih_l0"].shape[1], hidden,
                          bias="bias_ih_l0" in params,
                          bidirectional="weight_ih_l0_reverse" in params, **extra)
    module.load_state_dict(params, strict=True)
    return module.double().eval()


def run_torch(tensors, prefix, x, nonlinearity="tanh"):
    module = torch_module(tensors, prefix, nonlinearity)
    with torch.no_grad():
        out, _ = module(torch.from_numpy(np.asarray(x, np.float64))[:, None, :])
    return out[:, 0, :].numpy()


def cell_of(tensors, prefix):
    module = torch_module(tensors, prefix)
    return type(module).__name__, module.input_size, module.hidden_size, module.bidirectional


def recurrent_prefixes(tensors):
    return sorted({key.rsplit(".", 1)[0] for key in tensors if ".weight_hh_l0" in key})


def sequence(steps, size, seed=0):
    return np.random.default_rng(seed).normal(size=(steps, size))


# ---------------------------------------------------------------------------------------------
# Keras 2 / tf.keras files, laid out as Keras 2's saving code writes them


def weights_of(seed, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.normal(scale=0.5, size=shape).astype(np.float32) for shape in shapes]


def write_keras2_h5(path, layers, *, config=None, keras_version="2.4.0", weights_only=False):
    """`layers`: [(layer name, [(weight name, array)])]. A model file has the weights in
    `model_weights` and the config in the root's `model_config`; a `save_weights` file has the
    layer groups at the root. Names and versions are stored as bytes, as Keras 2 does."""
    with h5py.File(path, "w") as file:
        file.attrs["keras_version"] = keras_version.encode()
        file.attrs["backend"] = b"tensorflow"
        if weights_only:
            root = file
        else:
            if config is not None:
                file.attrs["model_config"] = json.dumps(config).encode()
            root = file.create_group("model_weights")
            root.attrs["keras_version"] = keras_version.encode()
            root.attrs["backend"] = b"tensorflow"
        root.attrs["layer_names"] = np.array([name.encode() for name, _ in layers])
        for layer_name, weights in layers:
            group = root.create_group(layer_name)
            group.attrs["weight_names"] = np.array([name.encode() for name, _ in weights])
            for weight_name, array in weights:
                group.create_dataset(weight_name, data=array)
    return path.read_bytes()


def layer_config(class_name, name, **options):
    return {"class_name": class_name, "name": name, "config": {"name": name, **options}}


def lstm_options(units, **options):
    return {"units": units, "activation": "tanh", "recurrent_activation": "sigmoid",
            "use_bias": True, "go_backwards": False, **options}


def gru_options(units, **options):
    return {**lstm_options(units), "reset_after": True, **options}


def rnn_options(units, activation="tanh", **options):
    return {"units": units, "activation": activation, "use_bias": True, "go_backwards": False,
            **options}


def model_config(layers, class_name="Functional"):
    return {"class_name": class_name, "config": {"name": "model", "layers": layers}}


def cell_weights(prefix, arrays, suffix=":0"):
    names = ("kernel", "recurrent_kernel", "bias")
    return [(f"{prefix}/{name}{suffix}", array) for name, array in zip(names, arrays)]


def read(data, file_name="model.h5"):
    return read_keras(data, f"`{file_name}`")


# ---------------------------------------------------------------------------------------------
# tf.keras 2.x model files


def test_tf_keras_model_file_gives_each_layer_under_its_own_name_computing_what_keras_does(
        tmp_path):
    x = sequence(6, 3)
    lstm = weights_of(1, (3, 16), (4, 16), (16,))
    lstm_2 = weights_of(2, (4, 12), (3, 12), (12,))
    gru = weights_of(3, (3, 15), (5, 15), (2, 15))
    relu_rnn = weights_of(4, (3, 2), (2, 2), (2,))
    tanh_rnn = weights_of(5, (3, 3), (3, 3), (3,))
    embedding, = weights_of(6, (11, 3))
    head_kernel, head_bias = weights_of(7, (3, 2), (2,))
    config = model_config([
        layer_config("InputLayer", "input_1", batch_input_shape=[None, None]),
        layer_config("Embedding", "emb", input_dim=11, output_dim=3),
        layer_config("LSTM", "encoder_lstm", **lstm_options(4)),
        layer_config("LSTM", "encoder_lstm_2", **lstm_options(3)),
        layer_config("GRU", "gru", **gru_options(5)),
        layer_config("SimpleRNN", "relu_rnn", **rnn_options(2, "relu")),
        layer_config("SimpleRNN", "tanh_rnn", **rnn_options(3)),
        layer_config("Dropout", "dropout", rate=0.5),
        layer_config("Dense", "head", units=2, activation="softmax"),
    ])
    data = write_keras2_h5(tmp_path / "model.h5", [
        ("input_1", []),
        ("emb", [("emb/embeddings:0", embedding)]),
        ("encoder_lstm", cell_weights("encoder_lstm/lstm_cell", lstm)),
        ("encoder_lstm_2", cell_weights("encoder_lstm_2/lstm_cell_1", lstm_2)),
        ("gru", cell_weights("gru/gru_cell", gru)),
        ("relu_rnn", cell_weights("relu_rnn/simple_rnn_cell", relu_rnn)),
        ("tanh_rnn", cell_weights("tanh_rnn/simple_rnn_cell", tanh_rnn)),
        ("dropout", []),
        ("head", [("head/kernel:0", head_kernel), ("head/bias:0", head_bias)]),
    ], config=config)

    tensors, metadata = read(data)

    assert recurrent_prefixes(tensors) == ["encoder_lstm", "encoder_lstm_2", "gru", "relu_rnn",
                                           "tanh_rnn"]
    assert cell_of(tensors, "encoder_lstm") == ("LSTM", 3, 4, False)
    assert cell_of(tensors, "encoder_lstm_2") == ("LSTM", 4, 3, False)  # stacked: own prefix
    assert cell_of(tensors, "gru") == ("GRU", 3, 5, False)
    assert metadata["nonlinearity.relu_rnn"] == "relu"
    assert metadata["nonlinearity.tanh_rnn"] == "tanh"
    assert metadata["source"] == "keras"
    assert "z, r, h reordered to PyTorch's r, z, n" in metadata["note"]
    assert all(tensor.dtype == torch.float32 for tensor in tensors.values())
    np.testing.assert_allclose(run_torch(tensors, "encoder_lstm", x), keras_lstm(x, *lstm),
                               atol=TOLERANCE)
    h = keras_lstm(x, *lstm)
    np.testing.assert_allclose(run_torch(tensors, "encoder_lstm_2", h), keras_lstm(h, *lstm_2),
                               atol=TOLERANCE)
    np.testing.assert_allclose(run_torch(tensors, "gru", x), keras_gru(x, *gru), atol=TOLERANCE)
    np.testing.assert_allclose(run_torch(tensors, "relu_rnn", x, "relu"),
                               keras_simple_rnn(x, *relu_rnn, activation="relu"), atol=TOLERANCE)
    np.testing.assert_allclose(run_torch(tensors, "tanh_rnn", x),
                               keras_simple_rnn(x, *tanh_rnn), atol=TOLERANCE)
    # The head and the embedding, as nn.Linear and nn.Embedding hold them.
    # Keras's one bias goes to bias_ih, zeros to bias_hh (the GRU's two rows to one each).
    assert torch.equal(tensors["encoder_lstm.bias_ih_l0"], torch.from_numpy(lstm[2]))
    assert not tensors["encoder_lstm.bias_hh_l0"].any()
    assert not tensors["relu_rnn.bias_hh_l0"].any()
    # PyTorch's first block is the reset gate r, Keras's second (z, r, h), 5 units each.
    assert torch.equal(tensors["gru.bias_hh_l0"][:5], torch.from_numpy(gru[2][1, 5:10]))
    assert torch.equal(tensors["head.weight"], torch.from_numpy(head_kernel.T.copy()))
    assert torch.equal(tensors["head.bias"], torch.from_numpy(head_bias))
    assert torch.equal(tensors["emb.weight"], torch.from_numpy(embedding))
    assert not any(key.startswith("dropout") for key in tensors)


def test_tf_keras_bidirectional_layers_become_bidirectional_modules(tmp_path):
    x = sequence(5, 3, seed=1)
    forward, backward = weights_of(1, (3, 8), (2, 8), (8,)), weights_of(2, (3, 8), (2, 8), (8,))
    gru_forward = weights_of(3, (3, 9), (3, 9), (2, 9))
    gru_backward = weights_of(4, (3, 9), (3, 9), (2, 9))
    bidirectional = {"merge_mode": "concat", "layer": {"class_name": "LSTM",
                                                      "config": {"name": "lstm",
                                                                 **lstm_options(2)}}}
    bidirectional_gru = {"merge_mode": "concat",
                         "layer": {"class_name": "GRU", "config": {"name": "gru",
                                                                   **gru_options(3)}}}
    config = model_config([layer_config("Bidirectional", "bi", **bidirectional),
                           layer_config("Bidirectional", "bi_gru", **bidirectional_gru)],
                          class_name="Sequential")
    data = write_keras2_h5(tmp_path / "bi.h5", [
        ("bi", cell_weights("bi/forward_lstm/lstm_cell", forward)
         + cell_weights("bi/backward_lstm/lstm_cell", backward)),
        ("bi_gru", cell_weights("bi_gru/forward_gru/gru_cell", gru_forward)
         + cell_weights("bi_gru/backward_gru/gru_cell", gru_backward)),
    ], config=config)

    tensors, metadata = read(data)

    assert cell_of(tensors, "bi") == ("LSTM", 3, 2, True)
    assert cell_of(tensors, "bi_gru") == ("GRU", 3, 3, True)
    assert "bi.weight_ih_l0_reverse" in tensors
    np.testing.assert_allclose(run_torch(tensors, "bi", x),
                               keras_bidirectional(keras_lstm, x, forward, backward),
                               atol=TOLERANCE)
    np.testing.assert_allclose(run_torch(tensors, "bi_gru", x),
                               keras_bidirectional(keras_gru, x, gru_forward, gru_backward),
                               atol=TOLERANCE)
    assert "merge" not in metadata["note"]


def test_layers_without_bias_have_no_bias_keys(tmp_path):
    x = sequence(5, 3, seed=2)
    lstm, gru, rnn = (weights_of(1, (3, 8), (2, 8)), weights_of(2, (3, 6), (2, 6)),
                      weights_of(3, (3, 2), (2, 2)))
    config = model_config([
        layer_config("LSTM", "lstm", **lstm_options(2, use_bias=False)),
        layer_config("GRU", "gru", **gru_options(2, use_bias=False)),
        layer_config("SimpleRNN", "rnn", **rnn_options(2, use_bias=False)),
    ])
    data = write_keras2_h5(tmp_path / "nobias.h5", [
        ("lstm", cell_weights("lstm/lstm_cell", lstm)),
        ("gru", cell_weights("gru/gru_cell", gru)),
        ("rnn", cell_weights("rnn/simple_rnn_cell", rnn)),
    ], config=config)

    tensors, _ = read(data)

    assert not any("bias" in key for key in tensors)
    assert torch_module(tensors, "lstm").bias is False
    np.testing.assert_allclose(run_torch(tensors, "lstm", x), keras_lstm(x, *lstm),
                               atol=TOLERANCE)
    np.testing.assert_allclose(run_torch(tensors, "gru", x), keras_gru(x, *gru), atol=TOLERANCE)
    np.testing.assert_allclose(run_torch(tensors, "rnn", x), keras_simple_rnn(x, *rnn),
                               atol=TOLERANCE)


def test_a_nested_model_gives_its_layers_under_the_models_name(tmp_path):
    x = sequence(4, 3, seed=3)
    lstm = weights_of(1, (3, 8), (2, 8), (8,))
    head = weights_of(2, (2, 1), (1,))
    encoder = {"class_name": "Sequential", "name": "encoder",
               "config": {"name": "encoder",
                          "layers": [layer_config("LSTM", "lstm", **lstm_options(2))]}}
    config = model_config([layer_config("InputLayer", "input_1"), encoder,
                           layer_config("Dense", "head", units=1)])
    data = write_keras2_h5(tmp_path / "nested.h5", [
        ("input_1", []),
        ("encoder", cell_weights("lstm/lstm_cell", lstm)),
        ("head", [("head/kernel:0", head[0]), ("head/bias:0", head[1])]),
    ], config=config)

    tensors, _ = read(data)

    assert recurrent_prefixes(tensors) == ["encoder.lstm"]
    np.testing.assert_allclose(run_torch(tensors, "encoder.lstm", x), keras_lstm(x, *lstm),
                               atol=TOLERANCE)
    assert tensors["head.weight"].shape == (1, 2)


def test_layer_names_split_into_chunked_attributes_are_read(tmp_path):
    """tf.keras splits an attribute over HDF5's 64 KB limit into `layer_names0`, `layer_names1`."""
    lstm = weights_of(1, (3, 8), (2, 8), (8,))
    gru = weights_of(2, (3, 6), (2, 6), (2, 6))
    config = model_config([layer_config("LSTM", "lstm", **lstm_options(2)),
                           layer_config("GRU", "gru", **gru_options(2))])
    path = tmp_path / "chunked.h5"
    write_keras2_h5(path, [("lstm", cell_weights("lstm/lstm_cell", lstm)),
                           ("gru", cell_weights("gru/gru_cell", gru))], config=config)
    with h5py.File(path, "a") as file:
        root = file["model_weights"]
        del root.attrs["layer_names"]
        root.attrs["layer_names0"] = np.array([b"lstm"])
        root.attrs["layer_names1"] = np.array([b"gru"])

    tensors, _ = read(path.read_bytes())

    assert recurrent_prefixes(tensors) == ["gru", "lstm"]


# ---------------------------------------------------------------------------------------------
# Weights-only files (model.save_weights) from tf.keras 2.x


def test_tf_keras_weights_only_file_is_read_from_names_and_shapes(tmp_path):
    x = sequence(5, 3, seed=4)
    lstm = weights_of(1, (3, 16), (4, 16), (16,))
    gru = weights_of(2, (3, 9), (3, 9), (2, 9))
    rnn = weights_of(3, (3, 2), (2, 2), (2,))
    forward, backward = weights_of(4, (3, 8), (2, 8), (8,)), weights_of(5, (3, 8), (2, 8), (8,))
    head = weights_of(6, (2, 1), (1,))
    embedding, = weights_of(7, (9, 3))
    data = write_keras2_h5(tmp_path / "w.h5", [
        ("embedding", [("embedding/embeddings:0", embedding)]),
        ("lstm", cell_weights("lstm/lstm_cell", lstm)),
        ("gru", cell_weights("gru/gru_cell", gru)),
        ("simple_rnn", cell_weights("simple_rnn/simple_rnn_cell", rnn)),
        ("bidirectional", cell_weights("bidirectional/forward_lstm_1/lstm_cell_2", forward)
         + cell_weights("bidirectional/backward_lstm_1/lstm_cell_3", backward)),
        ("dense", [("dense/kernel:0", head[0]), ("dense/bias:0", head[1])]),
    ], weights_only=True, keras_version="2.4.0")

    tensors, metadata = read(data, "w.h5")

    assert recurrent_prefixes(tensors) == ["bidirectional", "gru", "lstm", "simple_rnn"]
    np.testing.assert_allclose(run_torch(tensors, "lstm", x), keras_lstm(x, *lstm),
                               atol=TOLERANCE)
    np.testing.assert_allclose(run_torch(tensors, "gru", x), keras_gru(x, *gru), atol=TOLERANCE)
    np.testing.assert_allclose(run_torch(tensors, "simple_rnn", x), keras_simple_rnn(x, *rnn),
                               atol=TOLERANCE)
    np.testing.assert_allclose(run_torch(tensors, "bidirectional", x),
                               keras_bidirectional(keras_lstm, x, forward, backward),
                               atol=TOLERANCE)
    assert tensors["dense.weight"].shape == (1, 2) and tensors["embedding.weight"].shape == (9, 3)
    # Nothing in the file says the SimpleRNN's activation: no nonlinearity, and the note says so.
    assert not any(key.startswith("nonlinearity.") for key in metadata)
    assert "does not record the activation of SimpleRNN `simple_rnn`" in metadata["note"]
    unrecorded = metadata["note"].split("does not record the activations of ")[1]
    assert all(f"`{layer}`" in unrecorded for layer in ("bidirectional", "gru", "lstm"))


# ---------------------------------------------------------------------------------------------
# Standalone Keras 2.0-2.2: weight names without a cell level, CuDNN layers


def test_keras_2_2_file_with_cudnn_layers_and_old_names(tmp_path):
    x = sequence(6, 3, seed=5)
    cudnn_lstm = weights_of(1, (3, 16), (4, 16), (32,))  # 8H: input biases, recurrent biases
    cudnn_gru = weights_of(2, (4, 9), (3, 9), (18,))  # 6H
    forward, backward = weights_of(3, (3, 8), (2, 8), (16,)), weights_of(4, (3, 8), (2, 8), (16,))
    plain = weights_of(5, (3, 8), (2, 8), (8,))
    cudnn = {"units": 4, "go_backwards": False, "return_sequences": True}
    config = {"class_name": "Sequential", "config": {"name": "sequential_1", "layers": [
        layer_config("CuDNNLSTM", "cu_dnnlstm_1", **cudnn),
        layer_config("CuDNNGRU", "cu_dnngru_1", **{**cudnn, "units": 3}),
        layer_config("Bidirectional", "bidirectional_1", merge_mode="concat",
                     layer={"class_name": "CuDNNLSTM",
                            "config": {"name": "cu_dnnlstm_2", **cudnn, "units": 2}}),
        layer_config("LSTM", "lstm_1", **lstm_options(2)),
    ]}}
    data = write_keras2_h5(tmp_path / "cudnn.h5", [
        ("cu_dnnlstm_1", cell_weights("cu_dnnlstm_1", cudnn_lstm)),
        ("cu_dnngru_1", cell_weights("cu_dnngru_1", cudnn_gru)),
        ("bidirectional_1", cell_weights("bidirectional_1/forward_cu_dnnlstm_2", forward)
         + cell_weights("bidirectional_1/backward_cu_dnnlstm_2", backward)),
        ("lstm_1", cell_weights("lstm_1", plain)),
    ], config=config, keras_version="2.2.4")

    tensors, metadata = read(data)

    assert recurrent_prefixes(tensors) == ["bidirectional_1", "cu_dnngru_1", "cu_dnnlstm_1",
                                           "lstm_1"]
    # The doubled biases are split, not summed: input half in bias_ih, recurrent half in bias_hh.
    assert torch.equal(tensors["cu_dnnlstm_1.bias_ih_l0"], torch.from_numpy(cudnn_lstm[2][:16]))
    assert torch.equal(tensors["cu_dnnlstm_1.bias_hh_l0"], torch.from_numpy(cudnn_lstm[2][16:]))
    np.testing.assert_allclose(run_torch(tensors, "cu_dnnlstm_1", x), keras_lstm(x, *cudnn_lstm),
                               atol=TOLERANCE)
    h = keras_lstm(x, *cudnn_lstm)
    np.testing.assert_allclose(run_torch(tensors, "cu_dnngru_1", h), keras_gru(h, *cudnn_gru),
                               atol=TOLERANCE)
    np.testing.assert_allclose(run_torch(tensors, "bidirectional_1", x),
                               keras_bidirectional(keras_lstm, x, forward, backward),
                               atol=TOLERANCE)
    np.testing.assert_allclose(run_torch(tensors, "lstm_1", x), keras_lstm(x, *plain),
                               atol=TOLERANCE)
    assert "input and recurrent biases put in bias_ih and bias_hh" in metadata["note"]


def test_keras_2_0_sequential_config_written_as_a_list(tmp_path):
    x = sequence(4, 3, seed=6)
    lstm = weights_of(1, (3, 8), (2, 8), (8,))
    head = weights_of(2, (2, 3), (3,))
    config = {"class_name": "Sequential", "config": [
        layer_config("LSTM", "lstm_1", **lstm_options(2)),
        layer_config("Dense", "dense_1", units=3)]}
    data = write_keras2_h5(tmp_path / "k20.h5", [
        ("lstm_1", cell_weights("lstm_1", lstm)),
        ("dense_1", [("dense_1/kernel:0", head[0]), ("dense_1/bias:0", head[1])]),
    ], config=config, keras_version="2.0.8")

    tensors, _ = read(data)

    np.testing.assert_allclose(run_torch(tensors, "lstm_1", x), keras_lstm(x, *lstm),
                               atol=TOLERANCE)
    assert tensors["dense_1.weight"].shape == (3, 2)


def test_weights_only_cudnn_file_from_keras_2_2_is_read(tmp_path):
    """CuDNN layers have fixed tanh and sigmoid, so an old weights-only file is unambiguous."""
    x = sequence(4, 3, seed=7)
    cudnn_gru = weights_of(1, (3, 6), (2, 6), (12,))
    data = write_keras2_h5(tmp_path / "w.h5", [
        ("cu_dnngru_1", cell_weights("cu_dnngru_1", cudnn_gru))],
        weights_only=True, keras_version="2.2.4")

    tensors, _ = read(data)

    np.testing.assert_allclose(run_torch(tensors, "cu_dnngru_1", x), keras_gru(x, *cudnn_gru),
                               atol=TOLERANCE)


# ---------------------------------------------------------------------------------------------
# Keras 3, written by Keras itself


def _keras3_model(keras, gru_without_bias=True):
    layers = keras.layers
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    x = layers.Embedding(20, 3, name="emb")(tokens)
    x = layers.LSTM(4, return_sequences=True, name="enc_lstm")(x)
    x = layers.Bidirectional(layers.GRU(3, return_sequences=True), name="bi")(x)
    x = layers.SimpleRNN(2, activation="relu", return_sequences=True, name="srnn")(x)
    x = layers.SimpleRNN(3, return_sequences=True, name="srnn_tanh")(x)
    x = layers.LSTM(3, use_bias=False, return_sequences=True, name="lstm_nobias")(x)
    if gru_without_bias:  # a weights-only file cannot say its reset_after: see the refusals
        x = layers.GRU(2, use_bias=False, return_sequences=True, name="gru_nobias")(x)
    out = layers.Dense(2, name="head")(x)
    return keras.Model(tokens, out)


CHAIN = ("enc_lstm", "bi", "srnn", "srnn_tanh", "lstm_nobias", "gru_nobias")


def _keras3_reference(prefix, x, weights):
    """Keras's equations on the arrays Keras holds for `_keras3_model`'s layer `prefix`."""
    raw = [np.asarray(w, np.float64) for w in weights]
    if prefix == "bi":
        return keras_bidirectional(keras_gru, x, raw[:3], raw[3:])
    if prefix == "srnn":
        return keras_simple_rnn(x, *raw, activation="relu")
    run = {"enc_lstm": keras_lstm, "srnn_tanh": keras_simple_rnn, "lstm_nobias": keras_lstm,
           "gru_nobias": keras_gru}[prefix]
    return run(x, *raw)


@pytest.mark.parametrize("saved_as", ["model.keras", "model.h5", "model.weights.h5"])
def test_keras_3_files_compute_what_keras_computes(keras, tmp_path, saved_as):
    weights_only = saved_as.endswith(".weights.h5")
    model = _keras3_model(keras, gru_without_bias=not weights_only)
    chain = CHAIN[:-1] if weights_only else CHAIN
    path = tmp_path / saved_as
    if weights_only:
        model.save_weights(path)
    else:
        model.save(path)
    tokens = np.array([[1, 5, 0, 19, 7, 7, 3]])

    tensors, metadata = read(path.read_bytes(), saved_as)

    assert recurrent_prefixes(tensors) == sorted(chain)
    assert tensors["emb.weight"].shape == (20, 3)
    last_width = 3 if weights_only else 2  # lstm_nobias's 3 units, or gru_nobias's 2
    assert tensors["head.weight"].shape == (2, last_width) and tensors["head.bias"].shape == (2,)
    assert not any(key.startswith(("lstm_nobias.bias", "gru_nobias.bias")) for key in tensors)
    if weights_only:
        assert "nonlinearity.srnn" not in metadata  # no config: the file does not say
        assert "taken to be Keras's defaults" in metadata["note"]
    else:
        assert metadata["nonlinearity.srnn"] == "relu"
        assert metadata["nonlinearity.srnn_tanh"] == "tanh"
    # The whole model, rebuilt in PyTorch from the tensors alone, against Keras's output.
    h = tensors["emb.weight"].double()[torch.from_numpy(tokens[0])].numpy()
    for prefix in chain:
        keras_layer = model.get_layer(prefix)
        # Each layer alone, too: Keras on float32, numpy's equations on the raw arrays.
        expected = keras.ops.convert_to_numpy(keras_layer(h[None].astype(np.float32)))[0]
        reference = _keras3_reference(prefix, h, keras_layer.get_weights())
        ours = run_torch(tensors, prefix, h, "relu" if prefix == "srnn" else "tanh")
        np.testing.assert_allclose(ours, reference, atol=TOLERANCE, err_msg=prefix)
        np.testing.assert_allclose(ours, expected, atol=TOLERANCE, err_msg=prefix)
        h = ours
    logits = h @ tensors["head.weight"].double().numpy().T + tensors["head.bias"].double().numpy()
    np.testing.assert_allclose(logits, model.predict(tokens, verbose=0)[0], atol=TOLERANCE)


def _keras3_nested_model(keras, merge_mode="sum"):
    layers = keras.layers
    encoder = keras.Sequential([layers.LSTM(4, return_sequences=True, name="lstm"),
                                layers.GRU(3, return_sequences=True, name="g")], name="encoder")
    inputs = keras.Input((None, 3))
    x = encoder(inputs)
    x = layers.RNN(layers.LSTMCell(2), return_sequences=True, name="rnn_wrap")(x)
    x = layers.Bidirectional(
        layers.LSTM(2, return_sequences=True),
        backward_layer=layers.LSTM(2, return_sequences=True, go_backwards=True, name="back"),
        merge_mode=merge_mode, name="bi2")(x)
    out = layers.TimeDistributed(layers.Dense(1), name="td")(x)
    return keras.Model(inputs, out, name="outer")


@pytest.mark.parametrize("saved_as", ["nested.keras", "nested.h5"])
def test_keras_3_nested_models_rnn_wrappers_and_merge_modes(keras, tmp_path, saved_as):
    model = _keras3_nested_model(keras)
    path = tmp_path / saved_as
    model.save(path)
    x = sequence(5, 3, seed=8)

    tensors, metadata = read(path.read_bytes(), saved_as)

    assert recurrent_prefixes(tensors) == ["bi2", "encoder.g", "encoder.lstm", "rnn_wrap"]
    assert tensors["td.weight"].shape == (1, 2) and tensors["td.bias"].shape == (1,)
    encoder = model.get_layer("encoder")
    h = x
    for prefix, keras_layer in (("encoder.lstm", encoder.get_layer("lstm")),
                                ("encoder.g", encoder.get_layer("g")),
                                ("rnn_wrap", model.get_layer("rnn_wrap"))):
        expected = keras.ops.convert_to_numpy(keras_layer(h[None].astype(np.float32)))[0]
        ours = run_torch(tensors, prefix, h)
        np.testing.assert_allclose(ours, expected, atol=TOLERANCE, err_msg=prefix)
        h = ours
    # merge_mode="sum": Keras adds the two directions where PyTorch concatenates them.
    expected = keras.ops.convert_to_numpy(model.get_layer("bi2")(h[None].astype(np.float32)))[0]
    both = run_torch(tensors, "bi2", h)
    np.testing.assert_allclose(both[:, :2] + both[:, 2:], expected, atol=TOLERANCE)
    assert "`bi2` adds its two directions' outputs" in metadata["note"]
    assert "merge_mode=`sum`" in metadata["note"]


def test_keras_3_subclassed_model_is_read_from_the_files_structure(keras, tmp_path):
    """A subclassed model's config lists no layers: its layers are found where Keras keeps them
    (under the attributes' names, or in `layers/`), and a trained model's optimizer slots,
    shaped like the weights, are not taken for layers."""
    layers = keras.layers

    class Tagger(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.embed = layers.Embedding(10, 3)
            self.rnn = layers.LSTM(4, return_sequences=True)
            self.bi = layers.Bidirectional(layers.GRU(2, return_sequences=True))
            self.head = layers.Dense(2)

        def call(self, tokens):
            return self.head(self.bi(self.rnn(self.embed(tokens))))

    model = Tagger(name="tagger")
    tokens = np.array([[1, 4, 9, 2, 2]])
    model.compile(optimizer="adam", loss="mse")
    model.fit(tokens, np.zeros((1, 5, 2)), epochs=1, verbose=0)
    path = tmp_path / "tagger.keras"
    model.save(path)

    tensors, metadata = read(path.read_bytes(), "tagger.keras")

    # The LSTM's attribute comes after `layers` alphabetically, so Keras keeps it there, under
    # its class, with the layer's own name (what model.summary() shows) on its `vars`.
    lstm = model.rnn.name
    assert recurrent_prefixes(tensors) == sorted(["bi", lstm])
    assert sorted(key for key in tensors if not _PARAM.search(key)) == [
        "embed.weight", "head.bias", "head.weight"]
    assert "does not record the activations of" in metadata["note"]
    h = tensors["embed.weight"].double()[torch.from_numpy(tokens[0])].numpy()
    h = run_torch(tensors, "bi", run_torch(tensors, lstm, h))
    logits = h @ tensors["head.weight"].double().numpy().T + tensors["head.bias"].double().numpy()
    np.testing.assert_allclose(logits, model.predict(tokens, verbose=0)[0], atol=TOLERANCE)


def test_keras_3_archive_is_matched_by_layer_order_when_vars_carry_no_names(keras, tmp_path):
    """Keras 3 names a layer's group after its class (`lstm`, `lstm_1`), in the order of the
    model's layers; older Keras 3 versions do not also keep the user's name on `vars`."""
    model = _keras3_model(keras)
    path = tmp_path / "model.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    stripped_path = tmp_path / "stripped.weights.h5"
    stripped_path.write_bytes(members["model.weights.h5"])
    with h5py.File(stripped_path, "a") as file:
        def strip(_, item):
            if "name" in item.attrs:
                del item.attrs["name"]
        file.visititems(strip)
    members["model.weights.h5"] = stripped_path.read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)

    stripped, _ = read(buffer.getvalue(), "stripped.keras")
    original, _ = read(path.read_bytes(), "model.keras")

    assert sorted(stripped) == sorted(original)
    assert all(torch.equal(stripped[key], original[key]) for key in original)


def test_keras_3_bfloat16_weights_are_widened_exactly(tmp_path):
    """Keras 3 stores bfloat16 variables as 2 opaque bytes with the attribute dtype=bfloat16."""
    import ml_dtypes  # a dependency of keras

    x = sequence(4, 3, seed=9)
    lstm = [array.astype(ml_dtypes.bfloat16) for array in weights_of(1, (3, 8), (2, 8), (8,))]
    path = tmp_path / "half.weights.h5"
    with h5py.File(path, "w") as file:
        file.create_group("vars").attrs["name"] = "sequential"
        file.create_group("layers/lstm/vars").attrs["name"] = "half"
        cell_vars = file.create_group("layers/lstm/cell/vars")
        for index, array in enumerate(lstm):
            cell_vars.create_dataset(str(index), data=array).attrs["dtype"] = "bfloat16"

    tensors, _ = read(path.read_bytes(), "half.weights.h5")

    widened = [array.astype(np.float64) for array in lstm]
    assert torch.equal(tensors["half.weight_ih_l0"], torch.from_numpy(widened[0].T.copy()).float())
    np.testing.assert_allclose(run_torch(tensors, "half", x), keras_lstm(x, *widened),
                               atol=TOLERANCE)


# ---------------------------------------------------------------------------------------------
# Refusals: what nn.LSTM / nn.GRU / nn.RNN cannot compute exactly


def _refusal(data, file_name="model.h5"):
    with pytest.raises(WeightsError) as caught:
        read(data, file_name)
    return str(caught.value)


def test_hard_sigmoid_gates_are_refused_with_the_reason(tmp_path):
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        layer_config("LSTM", "old_lstm", **lstm_options(2, recurrent_activation="hard_sigmoid"))
    ]}}
    data = write_keras2_h5(tmp_path / "old.h5", [
        ("old_lstm", cell_weights("old_lstm", weights_of(1, (3, 8), (2, 8), (8,))))],
        config=config, keras_version="2.2.4")

    message = _refusal(data)

    assert "`old_lstm`" in message and "`hard_sigmoid`" in message
    assert "Keras 2.0-2.2's default" in message
    assert "nn.LSTM and nn.GRU use the logistic sigmoid" in message
    assert "recurrent_activation='sigmoid'" in message


@pytest.mark.parametrize("build, expected", [
    (lambda layers: layers.LSTM(2, activation="relu", name="relu_lstm"),
     ["`relu_lstm`", "activation `relu`", "uses tanh"]),
    (lambda layers: layers.GRU(2, reset_after=False, name="old_gru"),
     ["`old_gru`", "reset_after=False", "reset_after=True"]),
    # Without a bias, only the config tells reset_after=False.
    (lambda layers: layers.GRU(2, reset_after=False, use_bias=False, name="bare_old_gru"),
     ["`bare_old_gru`", "reset_after=False", "reset_after=True"]),
    (lambda layers: layers.SimpleRNN(2, activation="sigmoid", name="sig_rnn"),
     ["`sig_rnn`", "activation `sigmoid`", "tanh or relu only"]),
    (lambda layers: layers.LSTM(2, go_backwards=True, name="reader"),
     ["`reader`", "go_backwards=True", "inside a Bidirectional layer"]),
    (lambda layers: layers.GRU(2, recurrent_activation="hard_sigmoid", name="hard_gru"),
     ["`hard_gru`", "recurrent_activation `hard_sigmoid`"]),
])
def test_keras_3_layers_pytorch_cannot_compute_are_refused(keras, tmp_path, build, expected):
    model = keras.Sequential([keras.Input((None, 3)), build(keras.layers)])
    path = tmp_path / "refused.keras"
    model.save(path)

    message = _refusal(path.read_bytes(), "refused.keras")

    assert message.startswith("`refused.keras`")
    for text in expected:
        assert text in message


def test_gru_without_bias_in_a_weights_only_file_is_refused(keras, tmp_path):
    """Without a bias, nothing in the weights tells reset_after=True (nn.GRU) from False."""
    model = keras.Sequential([keras.Input((None, 3)),
                              keras.layers.GRU(2, use_bias=False, name="bare_gru")])
    model.save_weights(tmp_path / "w.weights.h5")

    message = _refusal((tmp_path / "w.weights.h5").read_bytes(), "w.weights.h5")

    assert "`bare_gru`" in message and "reset_after=True" in message
    assert "does not record the settings" in message and "no bias" in message


def test_reset_after_false_in_a_weights_only_file_is_told_by_its_bias_shape(tmp_path):
    gru = weights_of(1, (3, 6), (2, 6), (6,))  # (3H,): one bias, as reset_after=False keeps it
    data = write_keras2_h5(tmp_path / "w.h5", [("gru", cell_weights("gru/gru_cell", gru))],
                           weights_only=True)

    message = _refusal(data)

    assert "`gru`" in message and "reset_after=False" in message


def test_peephole_lstm_is_refused(tmp_path):
    cell = {"class_name": "PeepholeLSTMCell", "config": {"name": "peephole_lstm_cell",
                                                          **lstm_options(2)}}
    config = model_config([layer_config("RNN", "peep", cell=cell)])
    weights = cell_weights("peep/peephole_lstm_cell", weights_of(1, (3, 8), (2, 8), (8,)))
    weights += [(f"peep/peephole_lstm_cell/{gate}_gate_peephole_weights:0",
                 np.zeros(2, np.float32)) for gate in ("input", "forget", "output")]
    with_config = write_keras2_h5(tmp_path / "peep.h5", [("peep", weights)], config=config)
    weights_only = write_keras2_h5(tmp_path / "peep_w.h5", [("peep", weights)],
                                   weights_only=True)

    for message in (_refusal(with_config), _refusal(weights_only)):
        assert "`peep`" in message and "peephole connections" in message
        assert "nn.LSTM's do not" in message


def test_weights_only_file_from_keras_before_2_3_is_refused(tmp_path):
    data = write_keras2_h5(tmp_path / "w.h5", [
        ("lstm_1", cell_weights("lstm_1", weights_of(1, (3, 8), (2, 8), (8,))))],
        weights_only=True, keras_version="2.2.4")

    message = _refusal(data, "w.h5")

    assert "weights only" in message and "`2.2.4`" in message and "`lstm_1`" in message
    assert "hard_sigmoid" in message and "model.save('model.h5')" in message


@pytest.mark.parametrize("case, expected", [
    ("forward reads backwards", ["`bi`", "go_backwards=True", "swapped"]),
    ("different directions", ["`bi`", "different forward and backward layers",
                              "LSTM with 2 units", "GRU with 2 units"]),
    ("stacked cells", ["`stack`", "StackedRNNCells", "one recurrent layer per cell"]),
    ("custom cell", ["`custom`", "`MinimalRNNCell`", "LSTMCell, GRUCell and SimpleRNNCell"]),
])
def test_recurrent_layers_pytorch_has_no_module_for_are_refused(tmp_path, case, expected):
    lstm = weights_of(1, (3, 8), (2, 8), (8,))
    gru = weights_of(2, (3, 6), (2, 6), (2, 6))
    lstm_layer = {"class_name": "LSTM", "config": {"name": "f", **lstm_options(2)}}
    if case == "forward reads backwards":
        forward = {"class_name": "LSTM", "config": {"name": "f",
                                                    **lstm_options(2, go_backwards=True)}}
        layer = layer_config("Bidirectional", "bi", layer=forward, merge_mode="concat")
        weights = [("bi", cell_weights("bi/f/lstm_cell", lstm) + cell_weights("bi/b/lstm_cell",
                                                                               lstm))]
    elif case == "different directions":
        backward = {"class_name": "GRU", "config": {"name": "b", **gru_options(2)}}
        layer = layer_config("Bidirectional", "bi", layer=lstm_layer, backward_layer=backward,
                             merge_mode="concat")
        weights = [("bi", cell_weights("bi/f/lstm_cell", lstm) + cell_weights("bi/b/gru_cell",
                                                                               gru))]
    elif case == "stacked cells":
        cells = {"class_name": "StackedRNNCells", "config": {"cells": [lstm_layer, lstm_layer]}}
        layer = layer_config("RNN", "stack", cell=cells)
        weights = [("stack", cell_weights("stack/lstm_cell", lstm))]
    else:
        cell = {"class_name": "MinimalRNNCell", "config": {"units": 2}}
        layer = layer_config("RNN", "custom", cell=cell)
        weights = [("custom", cell_weights("custom/minimal_rnn_cell", lstm))]
    data = write_keras2_h5(tmp_path / "m.h5", weights, config=model_config([layer]))

    message = _refusal(data)

    for text in expected:
        assert text in message


# ---------------------------------------------------------------------------------------------
# Files that are not (readable) Keras models


def test_a_file_without_recurrent_layers_says_which_layers_it_has(tmp_path):
    config = model_config([layer_config("Conv1D", "conv", filters=2),
                           layer_config("Dense", "head", units=1)])
    data = write_keras2_h5(tmp_path / "conv.h5", [
        ("conv", [("conv/kernel:0", np.zeros((3, 1, 2), np.float32)),
                  ("conv/bias:0", np.zeros(2, np.float32))]),
        ("head", [("head/kernel:0", np.zeros((2, 1), np.float32)),
                  ("head/bias:0", np.zeros(1, np.float32))]),
    ], config=config)

    message = _refusal(data, "conv.h5")

    assert "no recurrent layer gatescope can read" in message
    assert "`conv` (`Conv1D`)" in message and "`head` (`Dense`)" in message


def test_truncated_and_foreign_files_are_refused_with_what_they_are(tmp_path, keras):
    model = keras.Sequential([keras.Input((None, 3)), keras.layers.LSTM(2, name="lstm")])
    model.save(tmp_path / "m.h5")
    model.save(tmp_path / "m.keras")
    whole_h5 = (tmp_path / "m.h5").read_bytes()
    whole_keras = (tmp_path / "m.keras").read_bytes()
    with h5py.File(tmp_path / "other.h5", "w") as file:
        file.create_dataset("images", data=np.zeros((2, 2)))
    without_weights = io.BytesIO()
    with zipfile.ZipFile(without_weights, "w") as archive, zipfile.ZipFile(
            io.BytesIO(whole_keras)) as original:
        for member in ("config.json", "metadata.json"):
            archive.writestr(member, original.read(member))
    other_zip = io.BytesIO()
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("saved_model.pb", b"\0" * 10)

    cases = {
        "truncated h5": (whole_h5[: len(whole_h5) // 2], "truncated or damaged"),
        "not keras at all": (b"GIF89a" + bytes(100), "is not a Keras model file"),
        "empty": (b"", "is empty"),
        "other hdf5": ((tmp_path / "other.h5").read_bytes(), "not one Keras wrote"),
        "archive without weights": (without_weights.getvalue(), "without `model.weights.h5`"),
        "other zip": (other_zip.getvalue(), "zip archive but not a Keras 3 model"),
        "truncated archive": (whole_keras[: len(whole_keras) // 2], "truncated or damaged"),
    }
    for case, (data, expected) in cases.items():
        message = _refusal(data, "upload.h5")
        assert message.startswith("`upload.h5`"), case
        assert expected in message, (case, message)
    assert "`images`" in _refusal(cases["other hdf5"][0])


def test_links_to_data_outside_the_file_are_never_followed(tmp_path):
    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as file:
        file.create_dataset("kernel", data=np.ones((3, 8), np.float32))
    path = tmp_path / "linking.h5"
    write_keras2_h5(path, [("lstm", cell_weights("lstm/lstm_cell",
                                                 weights_of(1, (3, 8), (2, 8), (8,))))],
                    config=model_config([layer_config("LSTM", "lstm", **lstm_options(2))]))
    with h5py.File(path, "a") as file:
        cell = file["model_weights/lstm/lstm/lstm_cell"]
        del cell["kernel:0"]
        cell["kernel:0"] = h5py.ExternalLink(str(secret), "kernel")

    message = _refusal(path.read_bytes())

    assert "outside the file" in message and "never follows" in message


def _lstm_file(path, edit=None, weights=None, config=True):
    """A tf.keras model file with one LSTM `lstm`, then `edit(file)` applied with h5py."""
    weights = weights or cell_weights("lstm/lstm_cell", weights_of(1, (3, 8), (2, 8), (8,)))
    write_keras2_h5(path, [("lstm", weights)],
                    config=model_config([layer_config("LSTM", "lstm", **lstm_options(2))])
                    if config else None)
    if edit is not None:
        with h5py.File(path, "a") as file:
            edit(file)
    return path.read_bytes()


def _replace(file, path, **dataset):
    del file[path]
    file.create_dataset(path, **dataset)


def _nested_too_deep(path):
    with h5py.File(path, "w") as file:
        file.create_group("layers/" + "/".join(f"block_{n}" for n in range(12)) + "/vars")
    return path.read_bytes()


DAMAGED = {
    "model_config not JSON": (
        lambda path: _lstm_file(path, lambda f: f.attrs.modify("model_config", b"{oops")),
        ["`model_config` attribute is not valid JSON"]),
    "weight listed but absent": (
        lambda path: _lstm_file(path, lambda f: f["model_weights/lstm/lstm/lstm_cell"].pop(
            "bias:0")),
        ["names `bias:0` but does not contain it"]),
    "soft link": (
        lambda path: _lstm_file(path, lambda f: (
            f["model_weights/lstm/lstm/lstm_cell"].pop("bias:0"),
            f["model_weights/lstm/lstm/lstm_cell"].__setitem__(
                "bias:0", h5py.SoftLink("/model_weights/lstm/lstm/lstm_cell/kernel:0")))),
        ["`bias:0` through a soft link", "never follows"]),
    "values stored in another file": (
        lambda path: _lstm_file(path, lambda f: _replace(
            f, "model_weights/lstm/lstm/lstm_cell/bias:0", shape=(8,), dtype="f4",
            external=[(str(path.with_suffix(".raw")), 0, 32)])),
        ["weight `bias` of layer `lstm` keeps its values in other files"]),
    "integer weights": (
        lambda path: _lstm_file(path, lambda f: _replace(
            f, "model_weights/lstm/lstm/lstm_cell/bias:0", data=np.zeros(8, np.int32))),
        ["`lstm`", "dtype `int32`", "floating point"]),
    "bias of the wrong size": (
        lambda path: _lstm_file(path, lambda f: _replace(
            f, "model_weights/lstm/lstm/lstm_cell/bias:0", data=np.zeros(5, np.float32))),
        ["`lstm` (LSTM) has a bias of shape (5,)", "(8,) or (16,)"]),
    "kernel of the wrong width": (
        lambda path: _lstm_file(path, weights=cell_weights(
            "lstm/lstm_cell", weights_of(1, (3, 6), (2, 8), (8,)))),
        ["`lstm`", "kernel (3, 6), recurrent_kernel (2, 8)", "do not fit an LSTM"]),
    "a weight twice": (
        lambda path: _lstm_file(path, weights=cell_weights(
            "lstm/lstm_cell", weights_of(1, (3, 8), (2, 8), (8,)))
            + [("lstm/lstm_cell/x/bias:0", np.zeros(8, np.float32))]),
        ["`lstm` lists two weights named `bias`"]),
    "weights no recurrent layer has": (
        lambda path: _lstm_file(path, weights=cell_weights(
            "lstm/lstm_cell", weights_of(1, (3, 8), (2, 8), (8,)))
            + [("lstm/lstm_cell/layer_norm_gamma:0", np.ones(8, np.float32))]),
        ["`lstm` has the weights", "`layer_norm_gamma`"]),
    "three directions": (
        lambda path: _lstm_file(path, weights=[
            weight for level in ("a", "b", "c")
            for weight in cell_weights(f"lstm/{level}/lstm_cell",
                                       weights_of(1, (3, 8), (2, 8), (8,)))]),
        ["`lstm` has 3 sets of recurrent weights where a one-direction layer has 1"]),
    "nested weights naming no layer": (
        lambda path: write_keras2_h5(path, [("encoder", cell_weights(
            "elsewhere/lstm_cell", weights_of(1, (3, 8), (2, 8), (8,))))],
            config=model_config([{"class_name": "Sequential", "name": "encoder",
                                  "config": {"name": "encoder", "layers": [
                                      layer_config("LSTM", "lstm", **lstm_options(2))]}}])),
        ["`elsewhere/lstm_cell/kernel:0` of nested model `encoder`", "names none of its layers"]),
    "a custom recurrent layer in Bidirectional": (
        lambda path: write_keras2_h5(path, [("bi", cell_weights(
            "bi/forward_my_lstm", weights_of(1, (3, 8), (2, 8), (8,))) + cell_weights(
            "bi/backward_my_lstm", weights_of(2, (3, 8), (2, 8), (8,))))],
            config=model_config([layer_config("Bidirectional", "bi", merge_mode="concat", layer={
                "class_name": "MyLSTM", "config": {"name": "my_lstm", "units": 2}})])),
        ["`bi` is a `MyLSTM` layer", "reads LSTM, GRU, SimpleRNN"]),
    "models nested without end": (_nested_too_deep, ["nests models more than 8 deep"]),
}


@pytest.mark.parametrize("case", DAMAGED)
def test_damaged_files_are_refused_with_what_is_wrong(tmp_path, case):
    make, expected = DAMAGED[case]
    data = make(tmp_path / "damaged.h5")

    message = _refusal(data, "damaged.h5")

    assert message.startswith("`damaged.h5`")
    for text in expected:
        assert text in message, message


def test_reading_a_keras_file_never_imports_keras_and_h5py_only_when_one_arrives(tmp_path):
    """Users' files are data: Keras (which could run code from a file) is never called, and
    the app's start does not pay for h5py."""
    path = tmp_path / "m.h5"
    _lstm_file(path)
    script = (
        "import sys\n"
        "import core.io.keras_files as k\n"
        "assert 'h5py' not in sys.modules, 'h5py imported with the module'\n"
        f"tensors, _ = k.read_keras(open({str(path)!r}, 'rb').read(), '`m.h5`')\n"
        "assert 'lstm.weight_ih_l0' in tensors and 'h5py' in sys.modules\n"
        "assert not any(m == 'keras' or m.startswith('keras.') for m in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def test_a_config_json_that_is_not_json_is_refused(keras, tmp_path):
    model = keras.Sequential([keras.Input((None, 3)), keras.layers.LSTM(2, name="lstm")])
    model.save(tmp_path / "m.keras")
    buffer = io.BytesIO()
    with zipfile.ZipFile(tmp_path / "m.keras") as original, zipfile.ZipFile(buffer, "w") as copy:
        for member in original.namelist():
            copy.writestr(member, b"{not json" if member == "config.json"
                          else original.read(member))

    message = _refusal(buffer.getvalue(), "m.keras")

    assert "`config.json` is not valid JSON" in message


def test_layer_names_become_prefixes_of_safe_characters(tmp_path):
    lstm = weights_of(1, (3, 8), (2, 8), (8,))
    data = write_keras2_h5(tmp_path / "names.h5", [("enc lstm:1*", cell_weights(
        "enc lstm:1*/lstm_cell", lstm))],
        config=model_config([layer_config("LSTM", "enc lstm:1*", **lstm_options(2))]))

    tensors, _ = read(data)

    assert recurrent_prefixes(tensors) == ["enc_lstm_1_"]


def test_sizes_over_the_apps_limits_are_refused_before_reading(tmp_path, monkeypatch):
    data = write_keras2_h5(tmp_path / "m.h5", [
        ("lstm", cell_weights("lstm/lstm_cell", weights_of(1, (3, 24), (6, 24), (24,))))],
        config=model_config([layer_config("LSTM", "lstm", **lstm_options(6))]))
    monkeypatch.setattr(core.limits, "LIMITS", core.limits.Limits(max_params=100))
    message = _refusal(data)
    assert "over a limit of this app" in message and "parameters" in message

    monkeypatch.setattr(core.limits, "LIMITS", core.limits.Limits(max_hidden_size=5))
    message = _refusal(data)
    assert "`lstm`" in message and "Hidden size" in message

    small_uploads = core.limits.Limits(max_upload_bytes=1000)
    monkeypatch.setattr(core.limits, "LIMITS", small_uploads)
    monkeypatch.setattr(core.io.keras_files, "LIMITS", small_uploads)
    assert "Upload is too large" in _refusal(data)
    # A zip member may unpack to far more than the upload: read no more than the limit.
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", bytes(100_000))
    assert len(bomb.getvalue()) < 1000
    assert "`model.weights.h5` unpacks to more than the upload limit" in _refusal(
        bomb.getvalue(), "bomb.keras")
