"""A practitioner's own whole model, end to end (issue #15): the six models of the issue, built
here in PyTorch as their authors write them and saved as `torch.save(model.state_dict())` and
safetensors; `load_user_model` finds the recurrent module, the embedding, the head and the
vocabulary; `feed_*` and `run_own` trace them on their own input with the objective picked; every
number is compared with autograd run on the user's own modules (their embedding's output as the
leaf, their recurrent module, their head, their loss), in float64, within 1e-5 relative.

`trace.grad_hidden` is d objective / d h_t with every path counted (the next step's recurrence,
the layer above, the head): the reference steps each layer and direction with nn.*Cell modules
holding the user's module's own weights, so that every h_t is a tensor autograd can be asked
about; it is checked to reproduce the module's output first.
"""

from __future__ import annotations

import copy
import io
import json

import numpy as np
import pytest
import safetensors.torch
import torch
from torch import nn
from torch.nn import functional as F

from core.io.exports import model_files
from core.io.loading import WeightsError
from core.io.sequences import parse_rows, read_matrix
from core.io.user_model import load_user_model
from core.training import zoo
from core.training.loop import TrainConfig, TrainResult
from core.views import explore as ex
from core.views import models
from core.views.own_model import Objective, feed_ids, feed_numbers, feed_text, run_own

RTOL = 1e-5
#: The worst relative error of each comparison, printed at the end (run with -s to read them).
WORST: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_worst():
    torch.set_num_threads(1)
    yield
    for name, err in sorted(WORST.items()):
        print(f"max relative error {name}: {err:.2e}")


def relative(got, want) -> float:
    """max |got - want| / max |want|: the error against the reference's own scale."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))


def agrees(name: str, got, want) -> bool:
    err = relative(got, want)
    WORST[name] = max(WORST.get(name, 0.0), err)
    return err < RTOL


# ---------------------------------------------------------------------------------------------
# The practitioners' models, as they write them


VOCAB = ["\n", " ", *"abcdefghijklmnopqrstuvwxyz", ".", ","]


class CharLM(nn.Module):
    """Embedding -> 2-layer LSTM -> Linear: a character-level language model."""

    def __init__(self, vocab_size: int, embed_dim: int = 8, hidden: int = 12, layers: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden, num_layers=layers, batch_first=True)
        self.fc = nn.Linear(hidden, vocab_size)

    def forward(self, ids):
        out, _ = self.lstm(self.embed(ids))
        return self.fc(out)


class Tagger(nn.Module):
    """The PyTorch tutorial's tagger, bidirectional and with a GRU."""

    def __init__(self, vocab_size: int = 20, embedding_dim: int = 6, hidden_dim: int = 5,
                 tagset_size: int = 4):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, embedding_dim)
        self.gru = nn.GRU(embedding_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.hidden2tag = nn.Linear(2 * hidden_dim, tagset_size)

    def forward(self, sentence):
        out, _ = self.gru(self.word_embeddings(sentence))
        return self.hidden2tag(out)


class Forecaster(nn.Module):
    """nn.RNN + Linear on the last step: predicts the next step's features."""

    def __init__(self, n_features: int, hidden: int = 10, nonlinearity: str = "tanh"):
        super().__init__()
        self.rnn = nn.RNN(n_features, hidden, batch_first=True, nonlinearity=nonlinearity)
        self.fc = nn.Linear(hidden, n_features)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


class CellLoop(nn.Module):
    """An LSTMCell stepped in a Python loop, with a Linear on the last state."""

    def __init__(self, n_in: int = 3, hidden: int = 6, n_out: int = 2):
        super().__init__()
        self.cell = nn.LSTMCell(n_in, hidden)
        self.out = nn.Linear(hidden, n_out)

    def forward(self, x):
        h = x.new_zeros(x.shape[0], self.cell.hidden_size)
        c = x.new_zeros(x.shape[0], self.cell.hidden_size)
        for t in range(x.shape[1]):
            h, c = self.cell(x[:, t], (h, c))
        return self.out(h)


class Adder(nn.Module):
    """The adding problem: (value, marker) per step -> the sum of the two marked values."""

    def __init__(self, hidden: int = 8):
        super().__init__()
        self.lstm = nn.LSTM(2, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def built(cls, seed: int, *args, **kwargs) -> nn.Module:
    torch.manual_seed(seed)
    return cls(*args, **kwargs).eval()


def pt_bytes(model: nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def safetensors_bytes(model: nn.Module) -> bytes:
    return safetensors.torch.save(model.state_dict())


def vocab_file(tokens=VOCAB) -> tuple[bytes, str]:
    return json.dumps(tokens).encode(), "vocab.json"


# ---------------------------------------------------------------------------------------------
# References: autograd on the user's own modules, in float64


def user_reference(rnn: nn.Module, x: torch.Tensor, objective, head=None):
    """(objective, per-step ‖d objective / d x_t‖) with autograd through the user's own
    batch-first module and head, `x` (T, F) their embedding's output or their numbers."""
    rnn, head = copy.deepcopy(rnn).double(), copy.deepcopy(head).double() if head else None
    leaf = x.detach().double()[None].requires_grad_(True)
    out, _ = rnn(leaf)
    value = objective(out[0], head)
    value.backward()
    return float(value.detach()), leaf.grad[0].norm(dim=1).numpy()


CELL_OF = {nn.LSTM: nn.LSTMCell, nn.GRU: nn.GRUCell, nn.RNN: nn.RNNCell}


def stepped_grad_hidden(rnn: nn.Module, x: torch.Tensor, objective, head=None) -> np.ndarray:
    """(L, D, T) ‖d objective / d h_t‖ with every path counted: each layer and direction of
    the user's module stepped with an nn.*Cell holding its weights, every h_t kept."""
    rnn, head = copy.deepcopy(rnn).double(), copy.deepcopy(head).double() if head else None
    length, directions = x.shape[0], 2 if rnn.bidirectional else 1
    lstm = isinstance(rnn, nn.LSTM)
    states = []
    layer_input = x.detach().double()
    for layer in range(rnn.num_layers):
        per_direction = []
        for direction in range(directions):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            extra = {"nonlinearity": rnn.nonlinearity} if isinstance(rnn, nn.RNN) else {}
            cell = CELL_OF[type(rnn)](layer_input.shape[1], rnn.hidden_size, **extra).double()
            with torch.no_grad():
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(cell, name).copy_(getattr(rnn, name + suffix))
            h = layer_input.new_zeros(rnn.hidden_size)
            c = layer_input.new_zeros(rnn.hidden_size)
            hs = [None] * length
            for t in (reversed(range(length)) if direction else range(length)):
                if lstm:
                    h, c = cell(layer_input[t], (h, c))
                else:
                    h = cell(layer_input[t], h)
                h.retain_grad()
                hs[t] = h
            per_direction.append(hs)
        states.append(per_direction)
        layer_input = torch.stack([torch.cat([per_direction[d][t] for d in range(directions)])
                                   for t in range(length)])
    with torch.no_grad():  # the stepping is the module: same output
        want, _ = rnn(x.detach().double()[None])
    assert torch.allclose(layer_input, want[0], rtol=0, atol=1e-12)
    objective(layer_input, head).backward()
    return np.array([[[0.0 if h.grad is None else float(h.grad.norm()) for h in hs]
                      for hs in per_direction] for per_direction in states])


def check_against_autograd(name: str, result, rnn, x, objective, head=None) -> None:
    """The trace's objective, saliency and every layer's d objective / d h_t against the
    references."""
    value, saliency = user_reference(rnn, x, objective, head)
    assert agrees(f"{name} objective", result.trace.objective, value), (
        result.trace.objective, value)
    assert agrees(f"{name} grad_input", result.trace.grad_input, saliency)
    hidden = stepped_grad_hidden(rnn, x, objective, head)
    assert agrees(f"{name} grad_hidden", result.trace.grad_hidden, hidden)


# ---------------------------------------------------------------------------------------------
# (a) The character-level language model


@pytest.fixture(scope="module")
def charlm():
    return built(CharLM, 1, len(VOCAB))


@pytest.fixture(scope="module", params=["pt", "safetensors"])
def charlm_loaded(request, charlm):
    weights = (pt_bytes(charlm), "charlm.pt") if request.param == "pt" else \
        (safetensors_bytes(charlm), "charlm.safetensors")
    return load_user_model([weights, vocab_file()])


def test_the_char_lm_is_found_whole(charlm, charlm_loaded):
    user = charlm_loaded
    assert isinstance(user.rnn, nn.LSTM) and user.rnn.num_layers == 2
    assert (user.prefix, user.embedding_name, user.head_name) == ("lstm", "embed", "fc")
    assert user.vocab.tokens == tuple(VOCAB) and user.class_names == tuple(VOCAB)
    assert torch.equal(user.embedding.weight, charlm.embed.weight)
    assert torch.equal(user.head.weight, charlm.fc.weight)
    assert torch.equal(user.head.bias, charlm.fc.bias)
    for key, value in charlm.lstm.state_dict().items():
        assert torch.equal(user.rnn.state_dict()[key], value)
    note = user.note
    assert "Recurrent module: `lstm`, LSTM, input size 8, hidden size 12, 2 layers." in note
    assert "Embedding: `embed`, 30 tokens × 8" in note
    assert "Head: `fc`, a Linear layer from 12 to 30" in note
    assert "Vocabulary: JSON list of 30 tokens." in note
    assert "pick one below" not in note  # nothing else fits
    assert Objective().available(user) == ("output", "loss", "next", "sum", "unit")


TEXT = "the cat sat.\nit sat"

CHARLM_OBJECTIVES = {
    "output": (Objective("output", index=VOCAB.index("t")),
               lambda out, head: head(out)[-1, VOCAB.index("t")]),
    "loss": (Objective("loss", index=VOCAB.index("s")),
             lambda out, head: F.cross_entropy(head(out)[-1:], torch.tensor([VOCAB.index("s")]))),
    "next": (Objective("next"),
             lambda out, head: F.cross_entropy(head(out)[:-1],
                                               torch.tensor([VOCAB.index(c) for c in TEXT[1:]]))),
    "unit": (Objective("unit", index=7, step=4), lambda out, head: out[4, 7]),
    "output at a step": (Objective("output", index=VOCAB.index(" "), step=3),
                         lambda out, head: head(out)[3, VOCAB.index(" ")]),
}


@pytest.mark.parametrize("kind", list(CHARLM_OBJECTIVES))
def test_the_char_lm_traced_on_typed_text_matches_autograd(charlm, charlm_loaded, kind):
    fed = feed_text(charlm_loaded, TEXT, by="characters")
    ids = torch.tensor([VOCAB.index(c) for c in TEXT])
    assert torch.equal(fed.ids, ids) and fed.unknown == ()
    assert fed.tokens[3] == "␣" and fed.tokens[12] == "↵"
    with torch.no_grad():
        assert torch.equal(fed.features, charlm.embed(ids))  # the user's own embedding's output
    objective, reference = CHARLM_OBJECTIVES[kind]
    result = run_own(charlm_loaded, fed, objective)
    check_against_autograd(f"char-LM {kind}", result, charlm.lstm, fed.features, reference,
                           charlm.fc)

    with torch.no_grad():
        logits = charlm(ids[None])[0]
    at = {"output at a step": 3, "unit": 4}.get(kind, len(TEXT) - 1)  # the objective's step
    best = VOCAB[int(logits[at].argmax())]
    assert best.strip()  # a visible token: how whitespace is named is another test's
    probability = float(torch.softmax(logits[at], 0).max())
    assert result.prediction == f"“{best}” (p = {probability:.2f}) at step {at}"
    assert result.top[0] == (f"“{best}”", pytest.approx(probability, rel=1e-5))


def test_the_char_lm_objective_is_said_in_the_users_words(charlm_loaded):
    fed = feed_text(charlm_loaded, TEXT, by="characters")
    said = {kind: run_own(charlm_loaded, fed, objective).objective_note
            for kind, (objective, _) in CHARLM_OBJECTIVES.items()}
    last = len(TEXT) - 1
    assert said["output"] == (f"gradients of the head's output {VOCAB.index('t')} (“t”) at step "
                              f"{last} (“t”)")
    assert said["loss"] == (f"gradients of the cross-entropy loss at step {last} (“t”) against "
                            f"the class {VOCAB.index('s')} (“s”)")
    assert said["next"].startswith("gradients of the next-token loss")
    assert said["unit"] == ("gradients of hidden unit 7 of the top layer's forward direction at "
                            "step 4 (“c”)")


def test_words_through_the_vocabulary_and_unknown_characters_are_reported(charlm_loaded):
    fed = feed_text(charlm_loaded, "The Cat; sat!", by="characters")
    # all-lower-case vocabulary: the text is lower-cased; ';' and '!' are not in it
    assert fed.unknown == (";", "!")
    assert "".join(VOCAB[i] for i in fed.ids.tolist()) == "the cat sat"
    assert "left out" in fed.note


def test_whitespace_classes_are_named_visibly(charlm):
    biased = copy.deepcopy(charlm)
    with torch.no_grad():
        biased.fc.bias[VOCAB.index(" ")] += 100.0  # the answer is surely the space
    user = load_user_model([(pt_bytes(biased), "charlm.pt"), vocab_file()])
    result = run_own(user, feed_text(user, "cat", by="characters"),
                     Objective("output", index=VOCAB.index("\n")))
    assert result.prediction.endswith("(p = 1.00) at step 2")
    assert "\n" not in result.objective_note, result.objective_note
    assert not result.prediction.startswith("“ ”"), result.prediction


# ---------------------------------------------------------------------------------------------
# (b) The bidirectional GRU tagger, fed token ids


@pytest.fixture(scope="module")
def tagger():
    model = built(Tagger, 2)
    return model, load_user_model([(safetensors_bytes(model), "tagger.safetensors")])


IDS = "3 17 0 9 4 12 6"


def test_the_tagger_is_found_and_its_output_at_a_step_matches_autograd(tagger):
    model, user = tagger
    assert isinstance(user.rnn, nn.GRU) and user.rnn.bidirectional
    assert (user.embedding_name, user.head_name, user.vocab) == ("word_embeddings",
                                                                "hidden2tag", None)
    assert user.output_size == 4 and user.class_names is None
    fed = feed_ids(user, IDS)
    assert fed.tokens == tuple(IDS.split())
    result = run_own(user, fed, Objective("output", index=2, step=3))
    check_against_autograd("tagger output at step 3", result, model.gru, fed.features,
                           lambda out, head: head(out)[3, 2], model.hidden2tag)
    # the tag at step 3 reads both directions: every position matters
    assert (result.trace.grad_input > 0).all()
    assert result.prediction.startswith("class ") and result.prediction.endswith("at step 3")


def test_a_reverse_unit_at_position_0_sees_the_whole_input(tagger):
    model, user = tagger
    fed = feed_ids(user, IDS)
    hidden = user.rnn.hidden_size
    reverse = run_own(user, fed, Objective("unit", index=hidden + 1))  # -1: position 0
    assert reverse.objective_note == ("gradients of hidden unit 1 of the top layer's reverse "
                                      "direction at step 0 (“3”)")
    check_against_autograd("tagger reverse unit", reverse, model.gru, fed.features,
                           lambda out, head: out[0, hidden + 1])
    grads = reverse.trace.grad_hidden[0]
    assert grads[1, 0] == pytest.approx(1.0)  # d h_0[u] / d h_0 is the unit vector
    assert (grads[1] > 0).all() and (reverse.trace.grad_input > 0).all()
    assert not grads[0].any()  # the forward direction does not feed it
    # The forward direction's unit at position 0 has read x_0 only: nothing after it shows.
    forward = run_own(user, fed, Objective("unit", index=1, step=0))
    assert forward.trace.grad_input[0] > 0 and not forward.trace.grad_input[1:].any()
    # The old objective, the top layer's output summed at the last step, shows the reverse
    # direction nothing before the last position.
    summed = run_own(user, fed, Objective("sum"))
    assert not summed.trace.grad_hidden[0, 1, :-1].any()


# ---------------------------------------------------------------------------------------------
# (c, d) Forecasters: numbers typed, from a CSV and from an NPY


SERIES_1 = "0.10\n0.35\n-0.20\n0.80\n0.45\n0.05\n-0.60\n0.30"
ROWS_3 = [[0.1, -0.4, 1.2], [0.5, 0.2, -0.3], [-0.8, 0.9, 0.0], [0.3, 0.3, 0.7],
          [1.1, -0.5, 0.4], [0.0, 0.6, -1.0]]


@pytest.fixture(scope="module")
def forecaster_1():
    model = built(Forecaster, 3, 1, nonlinearity="tanh")
    return model, load_user_model([(pt_bytes(model), "forecaster.pt")])


@pytest.fixture(scope="module")
def forecaster_3():
    model = built(Forecaster, 4, 3, nonlinearity="relu")
    return model, load_user_model([(pt_bytes(model), "forecaster3.pth")], nonlinearity="relu")


def test_a_one_feature_tanh_forecaster_on_typed_numbers(forecaster_1):
    model, user = forecaster_1
    assert isinstance(user.rnn, nn.RNN) and user.rnn.nonlinearity == "tanh"
    assert (user.embedding, user.head_name) == (None, "fc")
    assert "No embedding: the module reads 1 number per step." in user.note
    values = parse_rows(SERIES_1, 1)
    assert parse_rows("0.10, 0.35, -0.20, 0.80, 0.45, 0.05, -0.60, 0.30", 1).tolist() == \
        values.tolist()
    fed = feed_numbers(user, values)
    objective = Objective("loss", loss="mse", target="0.7", reading="values")
    result = run_own(user, fed, objective)
    check_against_autograd("1-feature tanh MSE", result, model.rnn, fed.features,
                           lambda out, head: F.mse_loss(head(out)[-1], torch.tensor([0.7])),
                           model.fc)
    with torch.no_grad():
        want = float(model(torch.from_numpy(values)[None])[0, 0])
    assert result.prediction == f"{want:.4g} at step 7"
    assert result.objective_note == ("gradients of the MSE loss of the head's output at step 7 "
                                     "(“7”) against 0.7")


def csv_of(rows) -> bytes:
    lines = ["temperature,humidity,wind"] + [",".join(str(v) for v in row) for row in rows]
    return "\n".join(lines).encode()


def npy_of(rows) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array(rows, dtype=np.float64))
    return buffer.getvalue()


def test_a_three_feature_relu_forecaster_from_text_csv_and_npy(forecaster_3):
    model, user = forecaster_3
    assert user.rnn.nonlinearity == "relu" and user.head.out_features == 3
    typed = parse_rows("\n".join(", ".join(str(v) for v in row) for row in ROWS_3), 3)
    from_csv = read_matrix(csv_of(ROWS_3), "weather.csv", 3)
    from_npy = read_matrix(npy_of(ROWS_3), "weather.npy", 3)
    assert from_csv.columns == ("temperature", "humidity", "wind")
    assert np.array_equal(typed, from_csv.values) and np.array_equal(typed, from_npy.values)
    target = "0.2 -0.1 0.5"
    for how, values in (("typed", typed), ("csv", from_csv.values), ("npy", from_npy.values)):
        fed = feed_numbers(user, values)
        assert np.array_equal(fed.features.numpy(), np.array(ROWS_3, np.float32))  # as given
        result = run_own(user, fed, Objective("loss", loss="mse", target=target,
                                              reading="values"))
        check_against_autograd(f"3-feature relu MSE ({how})", result, model.rnn, fed.features,
                               lambda out, head: F.mse_loss(head(out)[-1],
                                                            torch.tensor([0.2, -0.1, 0.5])),
                               model.fc)
    one_target = run_own(user, feed_numbers(user, typed),
                         Objective("loss", loss="mse", target="0.3", reading="values"))
    check_against_autograd("3-feature relu MSE (one target)", one_target, model.rnn,
                           torch.from_numpy(typed),
                           lambda out, head: F.mse_loss(head(out)[-1], torch.full((3,), 0.3)),
                           model.fc)


def test_relu_is_read_only_when_chosen(forecaster_3):
    model, user = forecaster_3
    as_tanh = load_user_model([(pt_bytes(model), "forecaster3.pth")])
    assert as_tanh.rnn.nonlinearity == "tanh"  # a state_dict does not say: nn.RNN's default
    fed = feed_numbers(user, np.array(ROWS_3, np.float32))
    objective = Objective("output", index=0)
    relu, tanh = run_own(user, fed, objective), run_own(as_tanh, fed, objective)
    with torch.no_grad():
        want = model(fed.features[None])[0, 0]
    assert relu.trace.objective == pytest.approx(float(want), rel=1e-5)
    assert abs(tanh.trace.objective - float(want)) > 1e-3


# ---------------------------------------------------------------------------------------------
# (e) The LSTMCell loop


def test_an_lstm_cell_loop_is_a_one_layer_lstm_with_the_loops_saliency():
    model = built(CellLoop, 5)
    user = load_user_model([(pt_bytes(model), "cell_loop.pt")])
    assert isinstance(user.rnn, nn.LSTM) and user.rnn.num_layers == 1
    assert (user.prefix, user.head_name, user.embedding) == ("cell", "out", None)
    x = torch.tensor(ROWS_3 + ROWS_3[::-1], dtype=torch.float32)
    result = run_own(user, feed_numbers(user, x.numpy()), Objective("output", index=1))

    # The user's own loop, with autograd: their saliency and every h_t's gradient.
    loop = copy.deepcopy(model).double()
    leaf = x.double()[None].requires_grad_(True)
    h = leaf.new_zeros(1, 6)
    c = leaf.new_zeros(1, 6)
    hs = []
    for t in range(leaf.shape[1]):
        h, c = loop.cell(leaf[:, t], (h, c))
        h.retain_grad()
        hs.append(h)
    value = loop.out(h)[0, 1]
    with torch.no_grad():
        assert float(value) == pytest.approx(float(model(x[None])[0, 1]), rel=1e-6)
    value.backward()
    assert agrees("LSTMCell loop objective", result.trace.objective, float(value.detach()))
    assert agrees("LSTMCell loop grad_input", result.trace.grad_input,
                  leaf.grad[0].norm(dim=1).numpy())
    assert agrees("LSTMCell loop grad_hidden", result.trace.grad_hidden[0, 0],
                  [float(h.grad.norm()) for h in hs])


# ---------------------------------------------------------------------------------------------
# (f) The adding problem through the user's own head


def test_the_adding_models_saliency_is_through_its_head_not_the_output_sum():
    model = built(Adder, 6)
    user = load_user_model([(safetensors_bytes(model), "adder.safetensors")])
    assert user.head_name == "head" and user.head.out_features == 1
    values = torch.linspace(-0.9, 0.9, 12).sin()
    markers = torch.zeros(12)
    markers[[2, 7]] = 1.0
    x = torch.stack([values, markers], dim=1)
    fed = feed_numbers(user, x.numpy())
    through_head = run_own(user, fed, Objective("output"))
    check_against_autograd("adding head output", through_head, model.lstm, x,
                           lambda out, head: head(out)[-1, 0], model.head)
    summed = run_own(user, fed, Objective("sum"))
    check_against_autograd("adding output sum", summed, model.lstm, x,
                           lambda out, head: out[-1].sum())
    marked_head = through_head.trace.grad_input[[2, 7]]
    marked_sum = summed.trace.grad_input[[2, 7]]
    print(f"adding model, saliency at the marked steps 2 and 7: through the head "
          f"{marked_head[0]:.4g} vs {marked_head[1]:.4g}; output sum "
          f"{marked_sum[0]:.4g} vs {marked_sum[1]:.4g}")
    assert relative(marked_head, marked_sum) > 0.1
    with torch.no_grad():
        answer = float(model(x[None])[0, 0])
    assert through_head.prediction == f"{answer:.4g} at step 11"
    assert summed.objective_note.endswith("(your head is not applied: pick another objective "
                                          "to go through it)")


# ---------------------------------------------------------------------------------------------
# 2. The picks: no embedding, no head, another Linear, two heads


def test_no_embedding_feeds_the_module_its_embedding_dimension(charlm):
    user = load_user_model([(pt_bytes(charlm), "charlm.pt")], embedding=None)
    assert user.embedding is None and user.embedding_name is None
    assert user.embeddings == ("embed",)  # still offered
    assert "No embedding: the module reads 8 numbers per step." in user.note
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    result = run_own(user, feed_numbers(user, x.numpy()), Objective("output", index=4))
    check_against_autograd("char-LM without embedding", result, charlm.lstm, x,
                           lambda out, head: head(out)[-1, 4], charlm.fc)
    with pytest.raises(ValueError, match="has no embedding, so it cannot read text"):
        feed_text(user, "cat", by="characters")


def test_no_head_leaves_the_recurrent_modules_own_objectives(charlm):
    user = load_user_model([(pt_bytes(charlm), "charlm.pt"), vocab_file()], head=None)
    assert user.head is None and user.heads == ("fc",)
    assert "No head: gradients and answers come from the recurrent module's output." in user.note
    assert Objective().available(user) == ("sum", "unit")
    fed = feed_text(user, "cat", by="characters")
    result = run_own(user, fed, Objective("sum"))
    assert result.prediction == "—" and result.top == []
    assert result.objective_note == "gradients of the sum of the top layer's output at the last step"
    with pytest.raises(ValueError, match=r"needs a head \(a Linear layer after the recurrent "
                                         r"module\)"):
        run_own(user, fed, Objective("output"))


class TwoHeads(nn.Module):
    """One LSTM, two tasks: sentiment (2 classes) and topic (5)."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 7, batch_first=True)
        self.sentiment = nn.Linear(7, 2)
        self.topic = nn.Linear(7, 5)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.sentiment(out[:, -1]), self.topic(out[:, -1])


def test_two_heads_one_picked_the_other_offered_and_chosen_by_name():
    model = built(TwoHeads, 7)
    weights = [(pt_bytes(model), "two_heads.pt")]
    auto = load_user_model(weights)
    assert set(auto.heads) == {"sentiment", "topic"} and auto.head_name in auto.heads
    other = ({"sentiment", "topic"} - {auto.head_name}).pop()
    assert f"Also fit as the head: `{other}`; pick one below." in auto.note
    assert f"Head: `{auto.head_name}`" in auto.note
    topic = load_user_model(weights, head="topic")
    assert topic.head_name == "topic" and topic.output_size == 5
    assert "Also fit as the head: `sentiment`; pick one below." in topic.note
    x = torch.tensor(ROWS_3, dtype=torch.float32)
    result = run_own(topic, feed_numbers(topic, x.numpy()), Objective("output", index=4))
    check_against_autograd("two heads, topic picked", result, model.lstm, x,
                           lambda out, head: head(out)[-1, 4], model.topic)
    sentiment = load_user_model(weights, head="sentiment")
    assert sentiment.output_size == 2
    with pytest.raises(ValueError, match=r"There is no class / output 4: this model has 2"):
        run_own(sentiment, feed_numbers(sentiment, x.numpy()), Objective("output", index=4))
    with pytest.raises(WeightsError) as refused:
        load_user_model(weights, head="classifier")
    assert str(refused.value).startswith("`two_heads.pt` has no head `classifier` that fits "
                                         "the recurrent module; what fits: `")
    assert "`sentiment`" in str(refused.value) and "`topic`" in str(refused.value)
    with pytest.raises(WeightsError, match="no embedding `emb` that fits the recurrent module; "
                                           "what fits: none"):
        load_user_model(weights, embedding="emb")


class ManyHeads(nn.Module):
    """One GRU read by eight heads, none named as a head: the pick falls to file order."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(2, 3)
        self.tasks = nn.ModuleDict({f"task{k}": nn.Linear(3, 1) for k in range(8)})


IN_FILE_ORDER = tuple(f"tasks.task{k}" for k in range(8))


def test_several_unnamed_heads_in_a_pt_file_are_offered_in_file_order():
    user = load_user_model([(pt_bytes(built(ManyHeads, 8)), "many.pt")])
    assert user.heads == IN_FILE_ORDER and user.head_name == "tasks.task0"


def test_several_unnamed_heads_in_a_safetensors_file_are_offered_in_file_order():
    user = load_user_model([(safetensors_bytes(built(ManyHeads, 8)), "many.safetensors")])
    assert user.heads == IN_FILE_ORDER and user.head_name == "tasks.task0"


# ---------------------------------------------------------------------------------------------
# 3. Refusals, each with its message


def test_a_vocabulary_of_another_size_is_refused_naming_both(charlm):
    with pytest.raises(WeightsError) as refused:
        load_user_model([(pt_bytes(charlm), "charlm.pt"), vocab_file(VOCAB[:-1])])
    message = str(refused.value)
    assert "`vocab.json` has 29 tokens" in message and "`embed` has 30 rows" in message


def test_a_vocabulary_without_an_embedding_is_refused(forecaster_1):
    model, _ = forecaster_1
    with pytest.raises(WeightsError, match="a vocabulary is for a model whose input goes "
                                           "through an nn.Embedding"):
        load_user_model([(pt_bytes(model), "forecaster.pt"), vocab_file()])


def test_two_weights_files_are_refused(charlm):
    with pytest.raises(WeightsError) as refused:
        load_user_model([(pt_bytes(charlm), "a.pt"), (safetensors_bytes(charlm),
                                                      "b.safetensors")])
    assert str(refused.value) == (
        "Upload exactly one weights file (found `a.pt`, `b.safetensors`), and at most one "
        "vocabulary file beside it. Weights files end in .safetensors, .pt, .pth, .ckpt, .bin, "
        ".h5, .hdf5, .keras, .onnx.")


def test_objectives_the_model_or_input_cannot_have_are_refused(charlm_loaded, forecaster_3):
    fed = feed_text(charlm_loaded, "cats", by="characters")
    with pytest.raises(ValueError, match=r"^There is no class / output 30: this model has 30 "
                                         r"\(0 to 29\)\.$"):
        run_own(charlm_loaded, fed, Objective("output", index=30))
    with pytest.raises(ValueError, match=r"^There is no unit 12: this model has 12 \(0 to 11\)"):
        run_own(charlm_loaded, fed, Objective("unit", index=12))  # one direction of 12 units
    with pytest.raises(ValueError, match=r"^Step 4 is outside the input \(steps 0 to 3\)\.$"):
        run_own(charlm_loaded, fed, Objective("output", step=4))
    _, user = forecaster_3
    rows = feed_numbers(user, np.array(ROWS_3, np.float32))
    with pytest.raises(ValueError, match=r"^Type 1 or 3 target values for the MSE loss \(the "
                                         r"head gives 3 per step\); you typed 2\.$"):
        run_own(user, rows, Objective("loss", loss="mse", target="0.1, 0.2"))
    with pytest.raises(ValueError, match="“x” is not a number"):
        run_own(user, rows, Objective("loss", loss="mse", target="0.1 x 0.2"))


def test_inputs_the_model_cannot_read_are_refused(charlm_loaded, forecaster_3):
    _, user = forecaster_3
    with pytest.raises(ValueError, match=r"^This model has no embedding, so it cannot read text: "
                                         r"it reads 3 number\(s\) per step\."):
        feed_text(user, "hello", by="characters")
    with pytest.raises(ValueError, match="cannot read token ids"):
        feed_ids(user, "1 2 3")
    with pytest.raises(ValueError, match=r"^The model reads 3 numbers per step; the input has "
                                         r"2\.$"):
        feed_numbers(user, np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match=r"^Step 2 has 2 numbers, but the model reads 3 "
                                         r"features per step\.$"):
        parse_rows("1, 2, 3\n4, 5", 3)
    with pytest.raises(ValueError, match="has 2 columns of numbers"):
        read_matrix(b"a,b\n1,2\n3,4\n", "two.csv", 3)
    with pytest.raises(ValueError, match="reads token ids through its embedding"):
        feed_numbers(charlm_loaded, np.zeros((4, 8), np.float32))
    with pytest.raises(ValueError, match=r"Token id `30` is out of range: the vocabulary has 30 "
                                         r"tokens, ids 0 to 29\."):
        feed_ids(charlm_loaded, "1 2 30")


# ---------------------------------------------------------------------------------------------
# 4. gatescope's own Train-page download, uploaded back


def shipped_as_trained(task: str, cell: str, relu: bool = False) -> TrainResult:
    """A shipped model as the Train page's TrainResult (its recorded run), optionally with its
    RNN rebuilt as relu, as if it had been trained so."""
    info = zoo.model_info(task, cell)
    model = copy.deepcopy(zoo.load_model(task, cell))
    if relu:
        rnn = model.rnn
        model.rnn = nn.RNN(rnn.input_size, rnn.hidden_size, num_layers=rnn.num_layers,
                           nonlinearity="relu", batch_first=rnn.batch_first)
        model.rnn.load_state_dict(rnn.state_dict())
        model.eval()
    return TrainResult(model=model, task=task, cell=cell, config=TrainConfig(**info.config),
                       steps=int(info.steps), seconds=float(info.train_seconds),
                       status=info.status, message="", score=info.heldout)


@pytest.mark.parametrize("task, cell, relu", [("sentiment", "lstm", False),
                                              ("adding", "rnn", True)])
def test_the_train_pages_download_comes_back_as_its_task_model(task, cell, relu):
    if (task, cell) not in zoo.available():
        pytest.skip(f"no shipped {task} {cell}")
    result = shipped_as_trained(task, cell, relu)
    weights, _ = model_files(result)
    user = load_user_model([(weights, "x.safetensors")])
    assert user.task == task and user.sequence_model is not None
    original = result.model
    assert torch.equal(user.head.weight, original.head.weight)
    for key, value in original.rnn.state_dict().items():
        assert torch.equal(user.rnn.state_dict()[key], value)
    if task == "sentiment":
        from core.tasks import get_task
        assert user.vocab.tokens == tuple(get_task(task).vocab.words)
        assert torch.equal(user.embedding.weight, original.embed.weight)
    else:
        assert user.vocab is None and user.embedding is None
    if cell == "rnn":
        assert user.rnn.nonlinearity == "relu"

    state = ex.ExploreState(task=task, source="upload", sample=3)
    upload = models.Upload(weights, "x.safetensors")
    example = ex.make_example(state)
    back = ex.run(state, ex.resolve_model(state, upload), example)
    before = ex.run(state, models.from_session("before", result), example)
    assert not back.own and back.prediction == before.prediction
    assert back.target == before.target and back.objective_note == before.objective_note
    for name in ("hidden", "grad_hidden", "grad_input", "output"):
        assert np.array_equal(getattr(back.trace, name), getattr(before.trace, name)), name
    assert back.trace.objective == before.trace.objective
    if relu:  # read as tanh, the same weights would have shown another model
        tanh = ex.run(state, models.from_session("tanh", shipped_as_trained(task, cell)), example)
        assert np.abs(tanh.trace.hidden - back.trace.hidden).max() > 1e-3

    other = "airline" if task != "airline" else "adding"
    with pytest.raises(ValueError, match="choose that task to see it"):
        ex.resolve_model(ex.ExploreState(task=other, source="upload"), upload)


# ---------------------------------------------------------------------------------------------
# 5. The Explore page, in AppTest


@pytest.fixture(scope="module")
def page():
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    path = Path(__file__).resolve().parents[1] / "app.py"

    def open_upload() -> AppTest:
        at = AppTest.from_file(str(path), default_timeout=60)
        at.query_params["source"] = "upload"
        return at.run()
    return open_upload


def test_the_explore_page_reads_a_char_lm_with_its_vocabulary_and_loss(page, charlm):
    from pagetest import assert_clean, shown

    at = page()
    assert_clean(at)
    vocab, vocab_name = vocab_file()
    at.get("file_uploader")[0].set_value(
        ("charlm.safetensors", safetensors_bytes(charlm), "application/octet-stream"))
    at.get("file_uploader")[1].set_value((vocab_name, vocab, "application/json")).run()
    assert_clean(at)
    at.radio(key="explore_own_kind").set_value("text").run()
    at.text_area(key="explore_own_text").input("the cat sat").run()
    at.selectbox(key="explore_own_objective").set_value("loss").run()
    assert_clean(at)
    assert not at.error, [e.value for e in at.error]
    labels = [metric.label for metric in at.metric]
    assert "Your head's answer" in labels and "Target" not in labels
    captions = " ".join(shown(c.value) for c in at.caption)
    assert "gradients of the cross-entropy loss at step 10 (“t”) against the class 0" in captions
    fed = feed_text(load_user_model([(safetensors_bytes(charlm), "c.safetensors"),
                                     vocab_file()]), "the cat sat", by="characters")
    with torch.no_grad():
        best = VOCAB[int(charlm(fed.ids[None])[0, -1].argmax())]
    answer = next(m for m in at.metric if m.label == "Your head's answer")
    assert f"“{best}”" in answer.value


def test_the_explore_page_reads_a_three_column_csv_for_a_forecaster(page, forecaster_3):
    from pagetest import assert_clean, shown

    model, _ = forecaster_3
    at = page()
    at.get("file_uploader")[0].set_value(("forecaster3.pt", pt_bytes(model),
                                          "application/octet-stream")).run()
    assert_clean(at)
    at.radio(key="explore_upload_nonlinearity").set_value("relu").run()
    at.radio(key="explore_own_kind").set_value("file").run()
    assert_clean(at)
    at.get("file_uploader")[2].set_value(("weather.csv", csv_of(ROWS_3), "text/csv")).run()
    at.radio(key="explore_own_reading").set_value("values").run()  # a forecast, not classes
    assert_clean(at)
    assert not at.error, [e.value for e in at.error]
    captions = [shown(c.value) for c in at.caption]
    assert ("Fed `weather.csv`, columns `temperature`, `humidity`, `wind`, 6 steps × 3 features, "
            "exactly as given.") in captions
    assert any(c.startswith("Gradients: gradients of the head's output 0 at step 5 (“5”).")
               for c in captions)
    answer = next(m for m in at.metric if m.label == "Your head's answer")
    with torch.no_grad():
        want = float(model(torch.tensor(ROWS_3)[None])[0, 0])
    assert answer.value.startswith(f"{want:.4g}")
    assert "Target" not in [metric.label for metric in at.metric]


def test_what_the_page_says_it_found_follows_the_nonlinearity_picked(page, forecaster_3):
    from pagetest import shown

    model, _ = forecaster_3
    at = page()
    at.get("file_uploader")[0].set_value(("forecaster3.pt", pt_bytes(model),
                                          "application/octet-stream")).run()
    at.radio(key="explore_upload_nonlinearity").set_value("relu").run()
    found = [shown(c.value) for c in at.caption if "Recurrent module:" in shown(c.value)]
    assert found and all("RNN (relu)" in c for c in found), found


def test_the_explore_core_feeds_typed_rows_with_the_objective_picked(forecaster_3):
    model, user = forecaster_3
    state = ex.ExploreState(source="upload")
    upload = models.Upload(pt_bytes(model), "forecaster3.pth", nonlinearity="relu")
    choice = ex.resolve_model(state, upload)
    assert choice.model is None and choice.user.rnn.nonlinearity == "relu"
    rows = "\n".join(" ".join(str(v) for v in row) for row in ROWS_3)
    objective = Objective("loss", loss="mse", target="0.2 -0.1 0.5", reading="values")
    result = ex.run(state, choice, None, ex.OwnInput("rows", rows, objective=objective))
    direct = run_own(user, feed_numbers(user, parse_rows(rows, 3)), objective)
    assert result.own and result.target == "—" and result.baseline == ""
    assert result.prediction == direct.prediction
    assert result.objective_note == direct.objective_note
    assert np.array_equal(result.trace.grad_input, direct.trace.grad_input)
    assert np.array_equal(result.values, np.array(ROWS_3, np.float32))
    with pytest.raises(ex.NeedsInput, match="Type numbers for your model"):
        ex.run(state, choice, None, ex.OwnInput("rows", "  "))


def test_a_head_of_the_wrong_size_is_named_where_the_model_goes_without_one():
    # it was dropped without a word, and the answers quietly came from the module's output
    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.rnn = nn.Embedding(10, 4), nn.LSTM(4, 16, batch_first=True)
            self.fc = nn.Linear(20, 2)

    buffer = io.BytesIO()
    torch.save(Tagger().state_dict(), buffer)
    model = load_user_model([(buffer.getvalue(), "tagger.pt")])
    assert model.head is None
    assert "`fc` (2 × 20) cannot be the head: a head reads the top layer's 16 numbers" \
        in model.note
    fitting = Tagger()
    fitting.fc = nn.Linear(16, 2)
    buffer = io.BytesIO()
    torch.save(fitting.state_dict(), buffer)
    assert "cannot be the head" not in load_user_model([(buffer.getvalue(), "ok.pt")]).note


def test_numbers_typed_for_a_model_come_back_with_it_after_another_model(page, forecaster_3):
    # a model fed token ids draws no box for numbers, and Streamlit let the typed numbers go
    # with it: opening the first model again asked for them again
    from pagetest import assert_clean

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.rnn = nn.Embedding(10, 4), nn.GRU(4, 5, batch_first=True)

    model, _ = forecaster_3
    rows = "\n".join(" ".join(str(v) for v in row) for row in ROWS_3)
    at = page()
    at.get("file_uploader")[0].set_value(("forecaster3.pt", pt_bytes(model),
                                          "application/octet-stream")).run()
    at.radio(key="explore_own_kind").set_value("rows").run()
    at.text_area(key="explore_own_rows").set_value(rows).run()
    assert_clean(at)
    at.get("file_uploader")[0].set_value(("tagger.pt", pt_bytes(Tagger()),
                                          "application/octet-stream")).run()
    assert_clean(at)
    assert not at.text_area and at.radio(key="explore_own_kind").value == "ids"
    at.get("file_uploader")[0].set_value(("forecaster3.pt", pt_bytes(model),
                                          "application/octet-stream")).run()
    assert_clean(at)
    assert at.radio(key="explore_own_kind").value == "rows"
    assert at.text_area(key="explore_own_rows").value == rows


def test_an_input_that_does_not_fit_names_the_tasks_that_would_or_says_none_does():
    # it said "e.g. adding (2 features) or airline (1)" to a module of 3, and "1 input features"
    from core.tasks import get_task
    from core.views.explore import _upload_features

    adding = get_task("adding")
    example = adding.sample(0, 10)
    with pytest.raises(ValueError) as three:
        _upload_features(nn.RNN(3, 4), adding, example)
    assert "expects 3 input features per step, but the Adding problem task gives 2 features" \
        in str(three.value) and "No task gives that: feed it your own numbers" in str(three.value)
    with pytest.raises(ValueError) as one:
        _upload_features(nn.RNN(1, 4), adding, example)
    assert "expects 1 input feature per step" in str(one.value)
    assert f"Pick a task whose input matches ({get_task('airline').title})" in str(one.value)
