"""Loading a user's own nn.RNN / nn.LSTM / nn.GRU weights: what loads, and what is refused and why."""

from __future__ import annotations

import builtins
import io
import os
import pickle
import random
import unicodedata
import zipfile

import pytest
import safetensors.torch
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from core.limits import LIMITS
from core.io.loading import (AmbiguousWeightsError, WeightsError, load_user_weights,
                              read_tensors)

MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def make_module(cell, input_size=3, hidden_size=4, **options) -> nn.Module:
    torch.manual_seed(0)
    return MODULES[cell](input_size, hidden_size, **options)


def save(state: dict, file_format: str) -> bytes:
    """The bytes a user would upload for `state` (a flat dict of tensors, or any object for pt)."""
    if file_format == "safetensors":
        return safetensors.torch.save({key: value.contiguous() for key, value in state.items()})
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def assert_same_module(loaded: nn.Module, original: nn.Module, nonlinearity: str = "tanh"):
    """Same class, same configuration, and the same outputs and final states on a random input."""
    assert type(loaded) is type(original)
    for attribute in ("input_size", "hidden_size", "num_layers", "bidirectional", "bias"):
        assert getattr(loaded, attribute) == getattr(original, attribute), attribute
    assert loaded.batch_first is False and loaded.proj_size == 0
    assert not loaded.training, "the module comes back in eval mode"
    if isinstance(loaded, nn.RNN):
        assert loaded.nonlinearity == nonlinearity
    x = torch.randn(6, 2, original.input_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got_output, got_state = loaded(x)
        want_output, want_state = original.eval()(x)
    torch.testing.assert_close(got_output, want_output, atol=1e-6, rtol=0)
    for got, want in zip(*(s if isinstance(s, tuple) else (s,) for s in (got_state, want_state))):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


# ---------------------------------------------------------------------------------------------
# What loads


@pytest.mark.parametrize("prefixed", [False, True], ids=["bare", "prefixed"])
@pytest.mark.parametrize("file_format", ["safetensors", "pt"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_round_trip_gives_the_same_module(cell, num_layers, bidirectional, bias, file_format,
                                          prefixed):
    original = make_module(cell, input_size=1 + num_layers, hidden_size=3 + num_layers,
                           num_layers=num_layers, bidirectional=bidirectional, bias=bias)
    state = dict(original.state_dict())
    if prefixed:  # as inside a larger model, with its other layers around it
        state = {f"encoder.rnn.{key}": value for key, value in state.items()}
        state |= {"encoder.embedding.weight": torch.randn(10, original.input_size),
                  "head.weight": torch.randn(1, original.hidden_size), "head.bias": torch.zeros(1),
                  "norm.num_batches_tracked": torch.tensor(7)}
    loaded = load_user_weights(save(state, file_format), f"my_model.{file_format}")
    assert_same_module(loaded, original)


@settings(max_examples=30, deadline=None)
@given(cell=st.sampled_from(["rnn", "lstm", "gru"]), input_size=st.integers(1, 6),
       hidden_size=st.integers(1, 8), file_format=st.sampled_from(["safetensors", "pt"]))
def test_any_small_size_is_inferred_from_the_shapes(cell, input_size, hidden_size, file_format):
    # Hidden size 1, 3 or 4 and input sizes equal to 3H or 4H are where a guess from row counts
    # alone would confuse an RNN with a GRU or an LSTM.
    original = make_module(cell, input_size, hidden_size)
    loaded = load_user_weights(save(original.state_dict(), file_format), f"w.{file_format}")
    assert_same_module(loaded, original)


def test_relu_rnn_loads_with_the_nonlinearity_the_app_passes():
    original = make_module("rnn", nonlinearity="relu", num_layers=2)
    data = save(original.state_dict(), "pt")
    assert_same_module(load_user_weights(data, "relu.pt", nonlinearity="relu"), original, "relu")
    assert load_user_weights(data, "relu.pt").nonlinearity == "tanh"  # weights cannot tell
    # An LSTM or GRU has no such option: the keyword is accepted and means nothing for them.
    assert_same_module(load_user_weights(save(make_module("gru").state_dict(), "pt"), "g.pt",
                                         nonlinearity="relu"), make_module("gru"))
    with pytest.raises(ValueError, match="nonlinearity"):
        load_user_weights(data, "relu.pt", nonlinearity="sigmoid")


def _checkpoints(state: dict) -> dict[str, object]:
    optimizer = torch.optim.Adam([torch.zeros(2, requires_grad=True)])
    return {
        "model_state_dict": {"model_state_dict": state, "epoch": 3, "loss": 0.25,
                             "optimizer_state_dict": optimizer.state_dict()},
        "lightning": {"state_dict": {f"model.rnn.{k}": v for k, v in state.items()},
                      "epoch": 9, "hyper_parameters": {"lr": 1e-3}},
        "model": {"model": state, "config": {"hidden": 4}},
        "nested": {"encoder": {"rnn": state}},
        "data_parallel": {f"module.{k}": v for k, v in state.items()},
        "parameters": dict(make_module("lstm", num_layers=2).named_parameters()),
    }


@pytest.mark.parametrize("kind", list(_checkpoints({})))
def test_training_checkpoints_and_wrapped_state_dicts_load(kind):
    original = make_module("lstm", num_layers=2)
    checkpoint = _checkpoints(dict(original.state_dict()))[kind]
    assert_same_module(load_user_weights(save(checkpoint, "pt"), "checkpoint.pth"), original)


class AttributeDict(dict):
    """Stands for Lightning's hyperparameter dict: a class the loader must never import."""

    def __getattr__(self, key):
        return self[key]


def test_lightning_ckpt_with_its_own_classes_loads_without_importing_them():
    original = make_module("gru", num_layers=2)
    checkpoint = {"epoch": 3, "global_step": 120, "pytorch-lightning_version": "2.4.0",
                  "state_dict": {f"model.rnn.{k}": v for k, v in original.state_dict().items()},
                  "hyper_parameters": AttributeDict(hidden=4, lr=1e-3),
                  "hparams_name": "kwargs", "loops": {"fit_loop": {"epoch_progress": {}}},
                  "optimizer_states": [], "lr_schedulers": []}
    data = save(checkpoint, "pt")
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(io.BytesIO(data), weights_only=True)  # what the stand-in gets around
    assert_same_module(load_user_weights(data, "epoch=3-step=120.ckpt"), original)
    _, _, metadata = read_tensors(data, "epoch=3-step=120.ckpt")
    assert "AttributeDict" in metadata["note"] and "only its tensors are used" in metadata["note"]


def test_hugging_face_bin_and_lightning_ckpt_extensions_read_as_torch_archives():
    original = make_module("lstm")
    data = save({f"encoder.rnn.{k}": v for k, v in original.state_dict().items()}
                | {"classifier.weight": torch.zeros(2, 4)}, "pt")
    for name in ("pytorch_model.bin", "last.ckpt", "model.PTH"):
        assert_same_module(load_user_weights(data, name), original)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_cell_weights_load_as_a_one_layer_module_that_steps_like_the_cell(cell):
    cell_class = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}[cell]
    torch.manual_seed(3)
    loop_cell = cell_class(3, 5)
    data = save({f"decoder.cell.{k}": v for k, v in loop_cell.state_dict().items()}, "pt")
    module = load_user_weights(data, "loop.pt")
    assert type(module) is MODULES[cell] and module.num_layers == 1
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(4))
    state = None
    outputs = []
    with torch.no_grad():
        for step in x:  # the user's own Python loop over the cell
            state = loop_cell(step[None], state)
            outputs.append((state[0] if cell == "lstm" else state)[0])
        got, _ = module(x[:, None])
    torch.testing.assert_close(got[:, 0], torch.stack(outputs), atol=1e-6, rtol=0)


def _torchscript() -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(make_module("lstm")), buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("file_format", ["safetensors", "pt"])
def test_half_bfloat16_and_double_weights_are_converted_to_float32(dtype, file_format):
    original = make_module("gru", num_layers=2)
    state = {key: value.to(dtype) for key, value in original.state_dict().items()}
    loaded = load_user_weights(save(state, file_format), f"half.{file_format}")
    for key, value in loaded.state_dict().items():
        assert value.dtype == torch.float32
        assert torch.equal(value, state[key].to(torch.float32)), key
    if dtype is torch.float64:
        assert_same_module(loaded, original)


def test_a_checkpoint_that_contains_itself_loads_at_once():
    # Pickle memo references let a small file nest a dict in itself 50 ways at every level:
    # walked naively, that is 50**8 paths.
    original = make_module("gru")
    checkpoint = {"rnn": dict(original.state_dict())}
    checkpoint |= {f"loop{i}": checkpoint for i in range(50)}
    assert_same_module(load_user_weights(save(checkpoint, "pt"), "loop.pt"), original)


def test_prefix_chooses_one_of_several_modules():
    encoder, decoder = make_module("lstm"), make_module("gru", input_size=4, hidden_size=5)
    state = ({f"encoder.rnn.{k}": v for k, v in encoder.state_dict().items()}
             | {f"decoder.{k}": v for k, v in decoder.state_dict().items()})
    data = save(state, "safetensors")
    with pytest.raises(AmbiguousWeightsError) as raised:
        load_user_weights(data, "seq2seq.safetensors")
    assert raised.value.prefixes == ["decoder", "encoder.rnn"]
    assert "`encoder.rnn`" in str(raised.value) and "`decoder`" in str(raised.value)
    assert_same_module(load_user_weights(data, "seq2seq.safetensors", prefix="encoder.rnn"),
                       encoder)
    assert_same_module(load_user_weights(data, "seq2seq.safetensors", prefix="decoder."), decoder)


def test_file_name_is_only_an_extension_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    original = make_module("lstm")
    data = save(original.state_dict(), "pt")
    for name in ("../../etc/passwd.pt", "/tmp/x/../RNN.PTH", "C:\\evil\\name.Pt", "a.b.c.pt"):
        assert_same_module(load_user_weights(data, name), original)
    assert_same_module(load_user_weights(bytearray(data), "w.pt"), original)
    assert_same_module(load_user_weights(memoryview(data), "w.pt"), original)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# What is refused, with a message that says what was wrong and how to export a valid file


def lstm_state(**options) -> dict[str, torch.Tensor]:
    return dict(make_module("lstm", **options).state_dict())


def without(state: dict, *keys: str) -> dict:
    return {key: value for key, value in state.items() if key not in keys}


def replaced(state: dict, **tensors) -> dict:
    return state | tensors


def _zip_bomb() -> bytes:
    """A real torch.save archive plus a deflated record that unpacks past the upload limit."""
    source = zipfile.ZipFile(io.BytesIO(save(lstm_state(), "pt")))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bomb:
        for entry in source.infolist():
            bomb.writestr(entry, source.read(entry))
        bomb.writestr("archive/data/99", bytes(LIMITS.max_upload_bytes + 1),
                      compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _other_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "not a model")
    return buffer.getvalue()


def _too_many_parameters() -> dict[str, torch.Tensor]:
    # Hidden size and layers within their limits, about 6.3 million parameters in all; stored as
    # float16 the file (12.6 MB) is within the upload limit, so only the parameter limit stops it.
    hidden, inputs, half = 512, 1024, torch.float16
    state = {}
    for suffix in ("", "_reverse"):
        state |= {f"weight_ih_l0{suffix}": torch.zeros(4 * hidden, inputs, dtype=half),
                  f"weight_hh_l0{suffix}": torch.zeros(4 * hidden, hidden, dtype=half),
                  f"bias_ih_l0{suffix}": torch.zeros(4 * hidden, dtype=half),
                  f"bias_hh_l0{suffix}": torch.zeros(4 * hidden, dtype=half)}
    return state


def _safetensors_header(claimed: int, body: bytes = b"{}" + b" " * 64) -> bytes:
    return claimed.to_bytes(8, "little") + body


# (id, builder of (bytes, file name), fragments the message must contain, case-insensitive)
BAD_FILES = [
    ("empty-pt", lambda: (b"", "w.pt"), ["empty", "0 bytes"]),
    ("empty-safetensors", lambda: (b"", "w.safetensors"), ["empty"]),
    ("truncated-safetensors",
     lambda: (save(lstm_state(), "safetensors")[:300], "w.safetensors"), ["truncated"]),
    ("truncated-pt", lambda: (save(lstm_state(), "pt")[:700], "w.pt"), ["truncated or corrupt"]),
    ("random-bytes-safetensors",
     lambda: (random.Random(0).randbytes(4096), "w.safetensors"), ["not a safetensors file"]),
    ("random-bytes-pt", lambda: (random.Random(1).randbytes(4096), "w.pt"),
     ["not a pytorch checkpoint"]),
    ("wrong-extension", lambda: (save(lstm_state(), "pt"), "weights.txt"),
     ["wrong extension", "`.txt`", ".safetensors, .pt, .pth, .ckpt and .bin", ".keras", ".onnx"]),
    ("no-extension", lambda: (save(lstm_state(), "pt"), "weights"), ["wrong extension", "none"]),
    ("linear-layer", lambda: (save(dict(nn.Linear(3, 2).state_dict()), "safetensors"),
                              "linear.safetensors"),
     ["not the state_dict of an nn.rnn, nn.lstm or nn.gru", "`weight` (2, 3)", "`bias` (2,)"]),
    ("half-a-cell", lambda: (save(without(dict(nn.LSTMCell(3, 4).state_dict()), "weight_hh"),
                                  "pt"), "cell.pt"),
     ["lstmcell", "both its `weight_ih` and `weight_hh`"]),
    ("torchscript", lambda: (_torchscript(), "scripted.pt"),
     ["torchscript", "never runs code", "torch.jit.load", "state_dict()"]),
    ("inconsistent-layer-shapes",
     lambda: (save(replaced(lstm_state(num_layers=2), weight_ih_l1=torch.zeros(16, 3)), "pt"),
              "w.pt"),
     ["inconsistent shapes", "`weight_ih_l1` is (16, 3), expected (16, 4)"]),
    ("missing-bias",
     lambda: (save(without(lstm_state(num_layers=2), "bias_hh_l1"), "safetensors"),
              "w.safetensors"),
     ["missing keys", "`bias_hh_l1`", "lstm with input size 3, hidden size 4, 2 layers"]),
    ("missing-layer",
     lambda: (save(without(lstm_state(num_layers=3), "weight_ih_l1", "weight_hh_l1",
                           "bias_ih_l1", "bias_hh_l1"), "pt"), "w.pt"),
     ["missing keys", "`weight_ih_l1`", "`weight_hh_l1`"]),
    ("half-bidirectional",
     lambda: (save(lstm_state() | {"weight_ih_l0_reverse": torch.zeros(16, 3)}, "pt"), "w.pt"),
     ["bidirectional", "missing keys", "`weight_hh_l0_reverse`"]),
    ("missing-weight-hh", lambda: (save(without(lstm_state(), "weight_hh_l0"), "pt"), "w.pt"),
     ["missing the key `weight_hh_l0`"]),
    ("hh-not-gate-blocks",
     lambda: (save(replaced(lstm_state(), weight_hh_l0=torch.zeros(10, 4)), "pt"), "w.pt"),
     ["`weight_hh_l0` has shape (10, 4)", "(4h, h)"]),
    ("hh-one-dimensional",
     lambda: (save(replaced(lstm_state(), weight_hh_l0=torch.zeros(16)), "pt"), "w.pt"),
     ["2-d"]),
    ("ih-rows-disagree",
     lambda: (save(replaced(lstm_state(), weight_ih_l0=torch.zeros(12, 3)), "pt"), "w.pt"),
     ["`weight_ih_l0` has shape (12, 3)", "(16, input size"]),
    ("int-tensors",
     lambda: (save({k: (v * 100).to(torch.int64) for k, v in lstm_state().items()},
                   "safetensors"), "w.safetensors"),
     ["dtype int64", "floating point"]),
    ("bool-tensors", lambda: (save({k: v > 0 for k, v in lstm_state().items()}, "pt"), "w.pt"),
     ["dtype bool"]),
    ("nan-weights",
     lambda: (save(replaced(lstm_state(), bias_hh_l0=torch.full((16,), float("nan"))),
                   "safetensors"), "w.safetensors"),
     ["`bias_hh_l0`", "nan"]),
    ("inf-weights",
     lambda: (save(replaced(lstm_state(), weight_hh_l0=torch.full((16, 4), float("inf"))),
                   "pt"), "w.pt"),
     ["`weight_hh_l0`", "infinite"]),
    ("double-overflows-float32",
     lambda: (save(replaced(lstm_state(), bias_ih_l0=torch.full((16,), 1e300,
                                                                  dtype=torch.float64)), "pt"),
              "w.pt"),
     ["too large for float32"]),
    ("lstm-proj-size",
     lambda: (save(dict(nn.LSTM(3, 4, proj_size=2).state_dict()), "safetensors"),
              "proj.safetensors"),
     ["proj_size", "weight_hr_l0"]),
    ("upload-too-large", lambda: (bytes(LIMITS.max_upload_bytes + 1), "big.safetensors"),
     ["upload is too large", "20,971,520 bytes"]),
    ("too-many-layers",
     lambda: (save(dict(nn.GRU(2, 3, num_layers=5).state_dict()), "pt"), "deep.pt"),
     ["number of layers", "from 1 to 4", "got 5"]),
    ("hidden-size-too-large",
     lambda: (save(dict(nn.RNN(1, 513).state_dict()), "safetensors"), "wide.safetensors"),
     ["hidden size", "from 1 to 512", "got 513"]),
    ("too-many-parameters", lambda: (save(_too_many_parameters(), "safetensors"),
                                     "big.safetensors"),
     ["model size", "5,000,000 parameters", "got 6,299,648"]),
    ("safetensors-huge-header", lambda: (_safetensors_header(8 * 2**30), "w.safetensors"),
     ["header claims 8,589,934,592 bytes", "truncated or not a safetensors file"]),
    ("safetensors-oversized-header",
     lambda: (_safetensors_header(2**21, b"{" + bytes(2**21)), "w.safetensors"),
     ["not a valid safetensors file", "2,097,152 bytes"]),
    ("safetensors-bad-json",
     lambda: (_safetensors_header(10, b'{"a": [1, ' + bytes(8)), "w.safetensors"),
     ["not a valid safetensors file"]),
    ("zip-bomb", lambda: (_zip_bomb(), "bomb.pt"), ["unpacks to", "over the upload limit"]),
    ("whole-pickled-model",
     lambda: (save(make_module("lstm"), "pt"), "model.pt"),
     ["pickled python objects", "`torch.nn.modules.rnn.lstm`", "save its state_dict"]),
    ("bare-tensor", lambda: (save(torch.zeros(3), "pt"), "t.pt"), ["a single tensor"]),
    ("list-of-tensors", lambda: (save([torch.zeros(3)], "pt"), "t.pt"), ["holds a list"]),
    ("no-tensors", lambda: (save({"epoch": 3, "lr": 0.1}, "pt"), "t.pt"), ["holds no tensors"]),
    ("safetensors-named-pt", lambda: (save(lstm_state(), "safetensors"), "w.pt"),
     ["rename it to .safetensors"]),
    ("pt-named-safetensors", lambda: (save(lstm_state(), "pt"), "w.safetensors"),
     ["rename it to .pt"]),
    ("zip-but-not-torch", lambda: (_other_zip(), "w.pt"), ["pytorch could not read it"]),
]


@pytest.mark.parametrize("build, fragments", [case[1:] for case in BAD_FILES],
                         ids=[case[0] for case in BAD_FILES])
def test_bad_file_is_refused_with_what_and_how(build, fragments):
    data, filename = build()
    with pytest.raises(WeightsError) as raised:
        load_user_weights(data, filename)
    message = str(raised.value)
    for fragment in fragments:
        assert fragment.lower() in message.lower(), (fragment, message)
    assert "safetensors.torch.save_file(" in message and "torch.save(" in message, message
    assert "weights_only" not in message, "never suggest loading untrusted pickles unsafely"


def test_unknown_prefix_lists_the_modules_there():
    data = save({f"rnn.{k}": v for k, v in lstm_state().items()}, "pt")
    with pytest.raises(WeightsError, match="no recurrent module at prefix `decoder`.*`rnn`"):
        load_user_weights(data, "w.pt", prefix="decoder")


def test_huge_safetensors_header_is_refused_before_the_library_reads_it(monkeypatch):
    def must_not_be_called(data):
        raise AssertionError("safetensors was asked to parse a file with an absurd header")

    monkeypatch.setattr(safetensors.torch, "load", must_not_be_called)
    with pytest.raises(WeightsError, match="header claims 18,446,744,073,709,551,615 bytes"):
        load_user_weights(_safetensors_header(2**64 - 1), "w.safetensors")


def test_hostile_names_reach_the_message_inert():
    hostile = "<script>alert(1)</script>`![x](http://e.test/x.png)`\x1b[31m\u202e\n"
    data = save({hostile: torch.zeros(2)}, "pt")
    with pytest.raises(WeightsError) as raised:
        load_user_weights(data, hostile * 10 + ".pt")
    message = str(raised.value)
    assert not any(unicodedata.category(c).startswith("C") for c in message), repr(message)
    assert "`![x]" not in message, "user text cannot close the code span it is shown in"
    assert len(message) < 1200, "a long file name is shortened"


# ---------------------------------------------------------------------------------------------
# A crafted pickle runs nothing


class _Payload:
    """Pickles as a call of `function(*args)`: what a malicious checkpoint would carry."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def _payloads(marker: str) -> dict[str, _Payload]:
    return {
        "open": _Payload(builtins.open, marker, "w"),
        "os.system": _Payload(os.system, f"touch '{marker}'"),
        "exec": _Payload(builtins.exec, f"open({marker!r}, 'w').close()"),
    }


@pytest.mark.parametrize("wrapping", ["torch.save", "torch.save-beside-weights", "raw-pickle"])
@pytest.mark.parametrize("payload", ["open", "os.system", "exec"])
def test_malicious_pickle_executes_nothing(tmp_path, payload, wrapping):
    marker = tmp_path / "pwned"
    evil = _payloads(str(marker))[payload]
    if wrapping == "raw-pickle":
        data = pickle.dumps(evil)
    elif wrapping == "torch.save":
        data = save(evil, "pt")
    else:  # hidden among real weights, where a careless loader would reach it
        data = save(lstm_state() | {"extra_state": evil}, "pt")
    with pytest.raises(WeightsError) as raised:
        load_user_weights(data, "innocent.pt")
    assert not marker.exists(), "the pickle's code ran"
    message = str(raised.value)
    if wrapping == "raw-pickle":
        assert "not a pytorch checkpoint" in message.lower()
    else:
        assert "pickled python objects" in message.lower()
        assert "never runs code" in message
    assert "weights_only" not in message


def test_the_payloads_are_real(tmp_path):
    # The test above proves something only if unpickling these payloads does run their code.
    for name, evil in _payloads(str(tmp_path / "ran")).items():
        result = pickle.loads(pickle.dumps(evil))
        if hasattr(result, "close"):
            result.close()
        assert (tmp_path / "ran").exists(), name
        (tmp_path / "ran").unlink()


# ---------------------------------------------------------------------------------------------
# What the file says of itself; files with several modules


def _traced_like(rnn: nn.Module, original: nn.Module) -> float:
    """The largest difference between gatescope's trace of `rnn` and `original` run as it is:
    every layer's h at every step (the trace's h of lower layers against a stack of
    `original`'s own layers run one by one)."""
    from core.engine import trace

    x = torch.randn(9, original.input_size, generator=torch.Generator().manual_seed(2)) * 2
    hidden = trace(rnn, x).hidden  # (L, D, T, H)
    worst = 0.0
    with torch.no_grad():
        layer_input = x
        for layer in range(original.num_layers):
            single = type(original)(layer_input.shape[1], original.hidden_size,
                                    nonlinearity=original.nonlinearity)
            single.load_state_dict({f"{k}_l0": getattr(original, f"{k}_l{layer}")
                                    for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
            layer_input, _ = single(layer_input)
            worst = max(worst, (torch.as_tensor(hidden[layer, 0]) - layer_input).abs().max().item())
    return worst


def test_a_relu_rnn_uploaded_as_relu_traces_exactly_like_the_module():
    original = make_module("rnn", input_size=3, hidden_size=6, nonlinearity="relu", num_layers=2)
    data = save(original.state_dict(), "safetensors")
    as_relu = load_user_weights(data, "relu.safetensors", nonlinearity="relu")
    assert as_relu.nonlinearity == "relu"
    assert _traced_like(as_relu, original) < 1e-5
    # Read as tanh (what the weights alone suggest), the same file traces something else:
    # the check above can fail.
    assert _traced_like(load_user_weights(data, "relu.safetensors"), original) > 1e-2


def test_a_files_metadata_says_the_nonlinearity_and_wins_over_the_callers_choice():
    original = make_module("rnn", hidden_size=5, nonlinearity="relu")
    data = safetensors.torch.save(dict(original.state_dict()), metadata={"nonlinearity": "relu"})
    for asked in (None, "tanh", "relu"):
        loaded = load_user_weights(data, "exported.safetensors", nonlinearity=asked)
        assert loaded.nonlinearity == "relu", asked
        assert _traced_like(loaded, original) < 1e-5
    tanh_file = safetensors.torch.save(dict(original.state_dict()),
                                       metadata={"nonlinearity": "tanh"})
    assert load_user_weights(tanh_file, "t.safetensors", nonlinearity="relu").nonlinearity == "tanh"
    # LSTMs and GRUs have no nonlinearity to choose: the metadata means nothing for them.
    gru = make_module("gru")
    gru_file = safetensors.torch.save(dict(gru.state_dict()), metadata={"nonlinearity": "relu"})
    assert_same_module(load_user_weights(gru_file, "g.safetensors"), gru)
    # A nonlinearity nn.RNN does not have is refused, with what and how.
    bad = safetensors.torch.save(dict(original.state_dict()), metadata={"nonlinearity": "gelu"})
    with pytest.raises(WeightsError, match="gelu.*tanh or relu"):
        load_user_weights(bad, "bad.safetensors")


def test_inspect_lists_each_module_with_its_kind_and_sizes_and_each_loads_by_its_prefix():
    from core.io.loading import RecurrentConfig, inspect_weights

    encoder = make_module("gru", input_size=3, hidden_size=4, num_layers=2)
    decoder = make_module("lstm", input_size=4, hidden_size=5, bidirectional=True)
    state = ({f"encoder.rnn.{k}": v for k, v in encoder.state_dict().items()}
             | {f"decoder.{k}": v for k, v in decoder.state_dict().items()}
             | {"decoder_head.weight": torch.randn(2, 10)})
    for file_format in ("safetensors", "pt"):
        data = save(state, file_format)
        info = inspect_weights(data, f"seq2seq.{file_format}")
        assert info.prefixes == ["decoder", "encoder.rnn"]  # AmbiguousWeightsError's order
        assert info.modules["encoder.rnn"] == RecurrentConfig("gru", 3, 4, 2, False, True)
        assert info.modules["decoder"] == RecurrentConfig("lstm", 4, 5, 1, True, True)
        assert info.describe("decoder") == ("decoder: bidirectional LSTM with input size 4, "
                                            "hidden size 5, 1 layer")
        assert info.metadata == {} and info.nonlinearity is None
        assert_same_module(load_user_weights(data, f"s.{file_format}", prefix="encoder.rnn"),
                           encoder)
        assert_same_module(load_user_weights(data, f"s.{file_format}", prefix="decoder"), decoder)
    # A broken module is listed with what is wrong, beside the good one.
    broken = dict(state)
    del broken["decoder.weight_hh_l0_reverse"]
    info = inspect_weights(save(broken, "safetensors"), "half.safetensors")
    assert isinstance(info.modules["encoder.rnn"], RecurrentConfig)
    assert "missing keys `weight_hh_l0_reverse`" in info.describe("decoder")
    with pytest.raises(WeightsError, match="no tensors|not the state_dict"):
        inspect_weights(save({"head.weight": torch.zeros(2, 2)}, "safetensors"), "x.safetensors")
