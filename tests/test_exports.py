"""What the Explore page's downloads and the Train page's weights say about themselves: every
trace and figure file carries its view and is named by it; a trained model's safetensors file
says what it is (task, cell, head, vocabulary, nonlinearity) and the upload reads it so."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import safetensors.torch
import torch
from torch import nn

from core.engine import trace
from core.io.exports import explore_view, figure_html, model_files, trace_npz, trace_table
from core.io.loading import load_user_weights
from core.views import explore as ex
from core.views import models
from core.views.models import Upload


def traced(state: ex.ExploreState, upload=None, csv_values=None):
    choice = ex.resolve_model(state, upload)
    result = ex.run(state, choice, ex.make_example(state, csv_values))
    return choice, result


def view_of(state: ex.ExploreState, upload=None, csv_values=None):
    choice, result = traced(state.traced(), upload, csv_values)
    return explore_view(state, choice, result, upload), choice, result


RANDOM = ex.ExploreState(task="adding", cell="lstm", source="random", seed=3, sample=5, len=30,
                         unit=2, t=4)


def test_npz_csv_and_html_carry_their_view():
    view, choice, result = view_of(RANDOM)
    assert (view.task, view.cell, view.source, view.length, view.unit, view.t) == (
        "adding", "lstm", "random", 30, 2, 4)
    assert view.model == choice.label and "UNTRAINED" in view.model
    assert view.input == "sample seed 5" and view.input_text.startswith(result.tokens[0])

    npz = np.load(io.BytesIO(trace_npz(result.trace, view, tokens=result.tokens)))
    read = {key[5:]: npz[key].item() for key in npz.files if key.startswith("view_")}
    assert read == view.fields()
    assert np.array_equal(npz["hidden"], result.trace.hidden)  # the trace is all still there

    text = trace_table(result.trace, 0, 0, result.tokens, view).to_csv(index=False)
    table = pd.read_csv(io.StringIO(text))  # no options: the view is in constant columns
    assert list(table.columns[:6]) == ["t", "token", "saliency", "grad_h_norm", "grad_c_norm",
                                       "h[0]"]
    assert len(table) == 30 and (table["view_model"] == choice.label).all()
    assert table["view_task"].iloc[0] == "adding" and table["view_unit"].iloc[0] == 2
    assert table.columns[-1] == "view_t"

    page = figure_html(go_figure(), view=view)
    assert f"<title>gatescope · Adding problem · LSTM · {choice.label}" in page
    assert '<p id="gatescope-view"' in page and "input: sample seed 5, 30 steps" in page
    assert "layer 0 forward · unit 2 · from step 4" in page


def go_figure():
    import plotly.graph_objects as go

    return go.Figure(go.Scatter(y=[1, 2]))


def test_the_html_caption_is_escaped():
    view, _, _ = view_of(RANDOM)
    page = figure_html(go_figure(), view=replace(view, model="<script>alert(1)</script>"))
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page


def test_two_views_never_share_a_file_name():
    def upload(prefix):
        state = {f"encoder.{k}": v for k, v in nn.GRU(2, 4).state_dict().items()}
        state |= {f"decoder.{k}": v for k, v in nn.GRU(2, 5).state_dict().items()}
        return Upload(safetensors.torch.save(state), "two.safetensors", prefix)

    text = replace(RANDOM, input="text", text="0.5 1* 0.2 0 0.9* 1")
    views = {
        "base": (RANDOM,), "seed": (replace(RANDOM, seed=4),),
        "sample": (replace(RANDOM, sample=6),), "len": (replace(RANDOM, len=31),),
        "cell": (replace(RANDOM, cell="gru"),), "task": (replace(RANDOM, task="airline"),),
        "text": (text,), "text2": (replace(text, text="0.5 1* 0.2 0 0.9* 0"),),
        "unit": (replace(RANDOM, unit=3),), "t": (replace(RANDOM, t=5),),
        "pick": (replace(RANDOM, pick="most active"),),
        "upload-encoder": (replace(RANDOM, source="upload"), upload("encoder")),
        "upload-decoder": (replace(RANDOM, source="upload"), upload("decoder")),
        "csv": (ex.ExploreState(task="airline", source="random", input="csv"), None,
                [float(v) for v in range(100, 140)]),
        "csv2": (ex.ExploreState(task="airline", source="random", input="csv"), None,
                 [float(v) for v in range(100, 141)]),
    }
    stems = {name: view_of(*args)[0].stem() for name, args in views.items()}
    assert len(set(stems.values())) == len(stems), stems
    assert stems["base"] == "gatescope_adding_lstm_random-seed3_sample5_len30_layer0_unit2_t4"
    assert stems["text"].startswith("gatescope_adding_lstm_random-seed3_text-")
    assert "_most-active_" in stems["pick"]


def test_an_uploaded_gru_is_named_and_described_as_a_gru():
    rnn = nn.GRU(2, 6, num_layers=2, bidirectional=True)
    state = replace(RANDOM, source="upload", layer=1, direction=1)  # the state's cell is lstm
    view, choice, result = view_of(state, Upload(safetensors.torch.save(rnn.state_dict()),
                                                    "mine.safetensors"))
    assert view.cell == "gru" and "_gru_" in view.stem() and "lstm" not in view.stem()
    assert view.stem().startswith("gatescope_adding_gru_upload-")
    assert "_layer1-reverse_" in view.stem() and view.direction == "reverse"
    table = trace_table(result.trace, 1, 1, result.tokens, view)
    assert (table["view_cell"] == "gru").all() and (table["view_layer"] == 1).all()


@pytest.fixture(scope="module")
def trained_rnn():
    from core.training.loop import TrainConfig, train

    torch.set_num_threads(1)
    return train("sentiment", "rnn", TrainConfig(hidden_size=6, max_steps=2, heldout_size=20,
                                                 heldout_every=2, seed=1))


def test_a_trained_models_weights_say_what_they_are(trained_rnn):
    weights, meta_text = model_files(trained_rnn)
    header = json.loads(weights[8:8 + int.from_bytes(weights[:8], "little")])
    metadata = header["__metadata__"]  # what safetensors.safe_open(...).metadata() gives
    assert all(isinstance(v, str) for v in metadata.values())
    assert (metadata["task"], metadata["cell"], metadata["nonlinearity"]) == (
        "sentiment", "rnn", "tanh")
    assert metadata["kind"] == "classification" and metadata["recurrent_prefix"] == "rnn"
    meta = json.loads(meta_text)
    assert json.loads(metadata["vocab"]) == meta["vocab"] and len(meta["vocab"]) > 10
    assert json.loads(metadata["classes"]) == meta["classes"]
    assert json.loads(metadata["spec"]) == meta["spec"]
    assert json.loads(metadata["head"]) == {"kind": "classification",
                                            "output_size": meta["spec"]["output_size"]}


def test_an_exported_relu_rnn_uploads_as_relu_whatever_is_chosen(trained_rnn):
    model = trained_rnn.model
    relu = nn.RNN(model.rnn.input_size, model.rnn.hidden_size, nonlinearity="relu",
                  batch_first=True)
    relu.load_state_dict(model.rnn.state_dict())
    model.rnn = relu  # as if trained with relu: the export must say so
    weights, _ = model_files(trained_rnn)
    x = torch.randn(12, relu.input_size, generator=torch.Generator().manual_seed(0)) * 3
    with torch.no_grad():
        want, _ = relu(x)
    for chosen in ("tanh", "relu"):
        loaded = load_user_weights(weights, "sentiment_rnn.safetensors", nonlinearity=chosen)
        assert loaded.nonlinearity == "relu"
        assert np.abs(trace(loaded, x).hidden[0, 0] - want.numpy()).max() < 1e-5
    # The page says the file won over the visitor's choice.
    view = ex.ExploreState(task="sentiment", source="upload")  # the download's own task
    choice = ex.resolve_model(view, Upload(weights, "sentiment_rnn.safetensors", None, "tanh"))
    assert "relu as the file says" in choice.label
    assert "metadata says its RNN uses relu" in choice.note
    # Read as tanh, as a file without metadata would be by default, it would differ.
    bare = safetensors.torch.save({k: v.contiguous() for k, v in model.state_dict().items()})
    as_tanh = load_user_weights(bare, "bare.safetensors", nonlinearity="tanh")
    assert np.abs(trace(as_tanh, x).hidden[0, 0] - want.numpy()).max() > 1e-2


def test_a_download_with_its_config_uploads_back_as_the_whole_training_run():
    from core.training.loop import TrainConfig, train

    torch.set_num_threads(1)
    result = train("adding", "gru", TrainConfig(hidden_size=5, max_steps=3, heldout_size=20,
                                                heldout_every=3, seed=2))
    weights, meta = model_files(result)
    view = ex.ExploreState(task="adding", source="upload", len=20)
    alone = ex.resolve_model(view, Upload(weights, "adding_gru.safetensors"))
    whole = ex.resolve_model(view, Upload(weights, "adding_gru.safetensors",
                                          extra=((meta.encode(), "adding_gru.json"),)))
    assert alone.score is None and alone.model is not None  # the task model, its score unknown
    assert whole.score == result.score and whole.train_steps == 3
    assert "held-out MSE" in whole.label
    example = ex.make_example(view)
    want = ex.run(view, models.from_session("run", result), example).trace
    for choice in (alone, whole):
        got = ex.run(view, choice, example).trace
        assert np.array_equal(got.hidden, want.hidden) and got.objective == want.objective
    # Another task's view says which task it is; a config of other weights is refused.
    with pytest.raises(ValueError, match="Adding problem: choose that task"):
        ex.resolve_model(ex.ExploreState(task="airline", source="upload"),
                         Upload(weights, "adding_gru.safetensors"))
    other = json.loads(meta) | {"task": "airline"}
    with pytest.raises(ValueError, match="not the Config file"):
        ex.resolve_model(view, Upload(weights, "w.safetensors",
                                      extra=((json.dumps(other).encode(), "c.json"),)))


def test_an_own_model_on_its_own_input_is_named_by_that_input_not_a_task():
    # the files said "agreement", "sample seed 0" and "sample0" for a model fed typed numbers
    import torch

    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.save(torch.nn.RNN(2, 3).state_dict(), buffer)
    state = ex.ExploreState(source="upload")
    upload = Upload(buffer.getvalue(), "mine.pt")
    choice = ex.resolve_model(state, upload)
    own = ex.OwnInput("rows", "0.1 0.2\n0.3 0.4\n0.5 0.625")
    result = ex.run(state, choice, None, own)
    view = explore_view(state, choice, result, upload, own)
    assert (view.task, view.input) == ("own-input", "numbers typed")
    assert view.input_text == "0.1,0.2 0.3,0.4 0.5,0.625"
    assert view.input_id.startswith("rows-") and view.length == 3
    assert "agreement" not in view.stem() and "sample" not in view.stem()
    other = explore_view(state, choice, ex.run(state, choice, None, ex.OwnInput(
        "rows", "0.1 0.2\n0.3 0.4\n0.5 0.6")), upload, own)
    assert other.input_text != view.input_text
