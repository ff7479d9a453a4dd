"""Every upload format through the app's own path (issue 15): the file's bytes into
`core.views.explore.resolve_model`, the user's own input through `run_user_model`, and the trace
compared with what the framework that wrote the file computes. The readers' own tests
(tests/test_keras_files.py, tests/test_onnx_files.py, tests/test_loading.py) check each layout
against the framework's equations; these check that the page's path gets the same numbers."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from core.views import explore as ex
from core.views.models import Upload
from core.views.own_model import Objective

ROOT = Path(__file__).resolve().parents[1]
IDS = [3, 1, 4, 1, 5, 9, 2, 6]


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def traced(data: bytes, filename: str, own: ex.OwnInput, **picks):
    view = ex.ExploreState(source="upload")
    choice = ex.resolve_model(view, Upload(data, filename, **picks))
    return choice, ex.run(view, choice, None, own)


@pytest.mark.parametrize("saved_as", [".keras", ".h5"])
def test_a_keras_language_model_traces_as_keras_computes_it(keras, tmp_path, saved_as):
    """Embedding -> LSTM -> GRU -> Dense, saved by Keras 3; the trace of each recurrent layer
    picked on the page equals the layer's own output in Keras, and the head's answer equals
    the model's prediction."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((len(IDS),), dtype="int32"),
                              keras.layers.Embedding(10, 4, name="emb"),
                              keras.layers.LSTM(5, return_sequences=True, name="enc"),
                              keras.layers.GRU(6, return_sequences=True, name="dec"),
                              keras.layers.Dense(10, name="head")])
    path = tmp_path / f"lm{saved_as}"
    model.save(path)
    data = path.read_bytes()
    numpy = keras.ops.convert_to_numpy
    ids = np.array([IDS], dtype="int32")
    embedded = model.get_layer("emb")(ids)
    lstm_out = numpy(model.get_layer("enc")(embedded))
    gru_out = numpy(model.get_layer("dec")(lstm_out))
    want_scores = numpy(model.get_layer("head")(gru_out))[0]

    own = ex.OwnInput("ids", " ".join(map(str, IDS)), objective=Objective("sum"))
    choice, result = traced(data, path.name, own, prefix="enc", embedding="emb", head=None)
    assert isinstance(choice.rnn, nn.LSTM)
    np.testing.assert_allclose(result.trace.hidden[0, 0], lstm_out[0], atol=1e-5)
    # The GRU reads the LSTM's output, not the embedding: fed as numbers, it computes Keras's GRU
    rows = "\n".join(" ".join(f"{v:.9g}" for v in step) for step in lstm_out[0])
    own = ex.OwnInput("rows", rows, objective=Objective("output", index=2))
    choice, result = traced(data, path.name, own, prefix="dec", embedding=None, head="head")
    assert isinstance(choice.rnn, nn.GRU) and choice.user.head_name == "head"
    np.testing.assert_allclose(result.trace.hidden[0, 0], gru_out[0], atol=1e-5)
    best = int(want_scores[-1].argmax())
    assert result.prediction.startswith(f"class {best} ")


def test_a_keras_relu_simple_rnn_is_read_as_relu_through_the_page(keras, tmp_path):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((6, 3)),
                              keras.layers.SimpleRNN(4, activation="relu", name="rnn",
                                                     return_sequences=True),
                              keras.layers.Dense(1, name="out")])
    path = tmp_path / "forecaster.keras"
    model.save(path)
    x = np.random.default_rng(2).normal(size=(1, 6, 3)).astype("float32")
    want = keras.ops.convert_to_numpy(model.get_layer("rnn")(x))[0]
    rows = "\n".join(" ".join(f"{v:.9g}" for v in step) for step in x[0])
    objective = Objective("loss", loss="mse", target="0.5", reading="values")
    choice, result = traced(path.read_bytes(), path.name, ex.OwnInput("rows", rows,
                                                                      objective=objective),
                            nonlinearity="tanh")  # the file says relu, and wins
    assert choice.rnn.nonlinearity == "relu" and "relu as the file says" in choice.label
    np.testing.assert_allclose(result.trace.hidden[0, 0], want, atol=1e-5)


class TorchTagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(10, 4)
        self.rnn = nn.GRU(4, 5, num_layers=2, bidirectional=True, batch_first=True)
        self.head = nn.Linear(10, 3)

    def forward(self, ids):
        return self.head(self.rnn(self.embedding(ids))[0])


def test_an_onnx_export_traces_as_the_pytorch_model_it_came_from():
    torch.manual_seed(3)
    model = TorchTagger().eval()
    ids = torch.tensor([IDS])
    buffer = io.BytesIO()
    torch.onnx.export(model, (ids,), buffer, dynamo=False, input_names=["ids"])
    objective = Objective("output", index=1, step=2)
    own = ex.OwnInput("ids", " ".join(map(str, IDS)), objective=objective)
    choice, result = traced(buffer.getvalue(), "tagger.onnx", own)
    assert choice.user.embedding_name == "embedding" and choice.user.head_name == "head"
    assert isinstance(choice.rnn, nn.GRU) and choice.rnn.num_layers == 2
    # against the original module, through its own head, with autograd
    embedded = model.embedding(ids).detach().requires_grad_(True)
    output, _ = model.rnn(embedded)
    np.testing.assert_allclose(result.trace.output, output[0].detach().numpy(), atol=1e-5)
    score = model.head(output)[0, 2, 1]
    (grad,) = torch.autograd.grad(score, embedded)
    np.testing.assert_allclose(result.trace.grad_input, grad[0].norm(dim=1).numpy(),
                               rtol=1e-4, atol=1e-7)
    assert result.trace.objective == pytest.approx(float(score), abs=1e-5)


def test_the_apps_landing_page_imports_no_reader_of_other_frameworks():
    """h5py, onnx and keras load only when such a file arrives: a cold start does not pay."""
    code = ("import sys\n"
            "from streamlit.testing.v1 import AppTest\n"
            f"at = AppTest.from_file({str(ROOT / 'app.py')!r}, default_timeout=120).run()\n"
            "assert not at.exception, at.exception\n"
            "print(sorted(m for m in ('h5py', 'onnx', 'keras', 'optuna') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
