"""The encoder-decoder in the app: its shipped models (zoo), one input traced across the
hand-off on one time axis (core.seq2seq.trace_encoder_decoder, core.engine.handoff.joined), and
the Explore and Compare pages showing it, with the lesson checked on the shipped models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.claims import copy_reach
from core.engine import trace, trace_handoff
from core.engine.handoff import joined
from core.seq2seq import EncoderDecoderModel, Seq2SeqSpec, trace_encoder_decoder
from core.tasks import ALL_TASKS, SEQ2SEQ_TASKS, TASKS, get_task
from core.training import zoo
from core.views import compare as cmp
from core.views import explore as ex
from core.views.models import random_init, shipped
from pagetest import open_page, shown

ROOT = Path(__file__).resolve().parents[1]
CELLS = ("rnn", "lstm", "gru")
COPY = get_task("copy")


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------------
# Registry and zoo


def test_copy_is_a_task_pages_can_show_but_not_one_network_pages_train():
    assert "copy" in ALL_TASKS and "copy" in SEQ2SEQ_TASKS and "copy" not in TASKS
    assert list(ALL_TASKS)[-1] == "copy" and get_task("copy") is COPY
    with pytest.raises(ValueError, match="copy"):  # the message lists it among the choices
        get_task("nope")


@pytest.mark.parametrize("cell", CELLS)
def test_shipped_encoder_decoders_record_both_parts_and_score_what_they_say(cell):
    info = zoo.model_info("copy", cell)
    model = zoo.load_model("copy", cell)
    assert isinstance(model, EncoderDecoderModel) and not model.training
    assert isinstance(info.spec, Seq2SeqSpec) and info.seq2seq and info.architecture == ""
    parts = info.extra["parts"]
    assert set(parts) == {"encoder", "decoder"}
    for role in parts:
        module = getattr(model, role)
        assert parts[role] == {"cell": type(module).__name__, "input_size": module.input_size,
                               "hidden_size": 64, "num_layers": 1, "directions": 1,
                               "params": sum(p.numel() for p in module.parameters())}
    assert info.rnn_param_count == parts["encoder"]["params"] + parts["decoder"]["params"]
    # the recorded length curve is what the model does now, on the same inputs
    rows = info.extra["accuracy_by_length"]
    assert [r["length"] for r in rows] == list(range(1, zoo.LENGTH_MAX + 1))
    again = COPY.accuracy_by_length(model, seed=zoo.FINAL_HELDOUT_SEED, per_length=200,
                                    min_length=6, max_length=9)
    for fresh in again:
        assert fresh["accuracy"] == pytest.approx(rows[fresh["length"] - 1]["accuracy"], abs=0.01)


def test_the_zoo_builds_an_untrained_encoder_decoder_of_the_shipped_shape():
    fresh = zoo.build_model("copy", "gru", seed=5)
    trained = zoo.load_model("copy", "gru")
    assert fresh.spec == trained.spec
    assert not torch.equal(fresh.encoder.weight_hh_l0, trained.encoder.weight_hh_l0)
    assert torch.equal(zoo.build_model("copy", "gru", seed=5).decoder.weight_hh_l0,
                       fresh.decoder.weight_hh_l0)
    with pytest.raises(ValueError, match="bidirectional"):
        zoo.build_model("copy", "gru", bidirectional=True)
    assert "core/seq2seq.py" in zoo.training_sources("copy")
    assert "core/training/seq2seq.py" in zoo.training_sources("copy")


def test_the_copy_lesson_is_what_the_shipped_models_do():
    """Where each cell's hand-off breaks (at least 90% of inputs right up to that length):
    the vanilla RNN first, then the GRU, the LSTM last, all short of the training length."""
    reach = {c: copy_reach(zoo.model_info("copy", c).extra["accuracy_by_length"]) for c in CELLS}
    assert reach["rnn"] <= 3 < reach["gru"] <= reach["lstm"] < 12
    # measured now, on fresh inputs: the RNN cannot copy four letters, the LSTM can copy eight
    rnn = COPY.accuracy_by_length(zoo.load_model("copy", "rnn"), seed=99, per_length=200,
                                  min_length=4, max_length=4)[0]
    lstm = COPY.accuracy_by_length(zoo.load_model("copy", "lstm"), seed=99, per_length=200,
                                   min_length=8, max_length=8)[0]
    assert rnn["accuracy"] < 0.2 and lstm["accuracy"] > 0.9


# ---------------------------------------------------------------------------------------------
# One input across the hand-off


@pytest.mark.parametrize("cell", CELLS)
def test_an_input_traced_across_the_hand_off_is_the_network_as_it_runs(cell):
    model = zoo.load_model("copy", cell)
    example = COPY.encode("c a b e h")
    seen = trace_encoder_decoder(model, example.inputs, COPY.objective(model, example.target))
    tr, T = seen.trace, len(example)
    assert seen.handoff == T and tr.seq_len == 2 * T and tr.num_layers == 1
    answer, logits = model.greedy(example.inputs, T)
    # the logits reach ~20: float32 kernels that differ in summation order (the engine's and
    # oneDNN's) agree to ~1e-5 relative there, as the states agree to 1e-5 absolute below
    assert torch.equal(seen.answer, answer)
    torch.testing.assert_close(seen.logits, logits.detach(), rtol=1e-5, atol=1e-4)
    assert seen.fed.tolist() == [COPY.start_id, *answer[:-1].tolist()]  # its own answers
    # the states are the modules' own: the encoder's outputs, then the decoder's from h_n
    with torch.no_grad():
        enc_out, state = model.encode(example.inputs)
        dec_out, _ = model.decode(seen.fed, state)
    np.testing.assert_allclose(tr.hidden[0, 0, :T], enc_out.numpy(), atol=1e-5)
    np.testing.assert_allclose(tr.hidden[0, 0, T:], dec_out.numpy(), atol=1e-5)
    np.testing.assert_allclose(seen.decoder_output, dec_out.numpy(), atol=1e-5)
    # the objective is the decoder's cross-entropy against the right answer
    with torch.no_grad():
        loss = F.cross_entropy(model.readout(dec_out), torch.as_tensor(example.target).long())
    assert tr.objective == pytest.approx(float(loss), rel=1e-5)
    # every step's gradient is of that loss: d loss / d h_t by autograd, encoder steps included
    x_enc = model.features(example.inputs).detach()
    x_dec = model.features(seen.fed).detach()
    encoder, decoder = trace_handoff(model.encoder, model.decoder, x_enc, x_dec,
                                     COPY.objective(model, example.target))
    np.testing.assert_array_equal(tr.grad_hidden, np.concatenate(
        [encoder.grad_hidden, decoder.grad_hidden], axis=2))
    assert tr.grad_hidden[0, 0, :T].min() > 0  # the loss reaches every encoder step


def test_teacher_forcing_feeds_the_right_answer_and_keeps_the_greedy_answer():
    model = zoo.load_model("copy", "rnn")
    example = COPY.encode("abcdefgh")  # far beyond what the RNN copies: its answers go wrong
    objective = COPY.objective(model, example.target)
    own = trace_encoder_decoder(model, example.inputs, objective)
    right = trace_encoder_decoder(model, example.inputs, objective,
                                  right_answer=torch.as_tensor(example.target))
    assert right.fed.tolist() == [COPY.start_id, *example.inputs[:-1].tolist()]
    assert own.fed.tolist() != right.fed.tolist()
    assert torch.equal(own.answer, right.answer)  # the answer shown is always the greedy one
    np.testing.assert_array_equal(own.trace.hidden[..., :8, :], right.trace.hidden[..., :8, :])


def test_joined_traces_put_the_decoder_after_the_encoder_and_refuse_a_mismatch():
    rnn_a, rnn_b = torch.nn.LSTM(3, 5), torch.nn.LSTM(3, 5)
    x = torch.randn(4, 3)
    a, b = trace_handoff(rnn_a, rnn_b, x, x[:2], lambda out: out.sum())
    both = joined(a, b)
    assert both.seq_len == 6 and both.cell.shape == (1, 1, 6, 5)
    np.testing.assert_array_equal(both.gates["forget"][..., 4:, :], b.gates["forget"])
    np.testing.assert_array_equal(both.grad_input, np.concatenate([a.grad_input, b.grad_input]))
    assert both.objective == b.objective and both.grad_initial is a.grad_initial
    with pytest.raises(ValueError, match="same cell"):
        joined(a, trace(torch.nn.GRU(3, 5), x))


# ---------------------------------------------------------------------------------------------
# Explore


def explore(**query):
    return open_page(ROOT / "app_pages" / "explore.py", **query)


def spec_of(at) -> dict:
    return json.loads(at.get("plotly_chart")[0].proto.spec)


def handoff_lines(spec: dict) -> list[dict]:
    return [s for s in spec["layout"]["shapes"] if s.get("legendgroup") == "hand-off"]


@pytest.mark.parametrize("cell", CELLS)
def test_explore_shows_encoder_and_decoder_on_one_time_axis(cell):
    at = explore(task="copy", cell=cell, len=6)
    assert not at.error
    answer = {m.label: m.value for m in at.metric}
    assert len(answer["Target"]) == 6 and len(answer["Model's answer"]) == 6
    note = shown(at.info[0].value)
    assert "Steps 0 to 5: the encoder reads the 6 letters" in note and "dashed line" in note
    assert any("the encoder's steps get theirs only back across the hand-off" in shown(c.value)
               for c in at.caption)
    spec = spec_of(at)
    assert len(spec["frames"]) == 12  # six steps of the encoder, six of the decoder
    (line,) = handoff_lines(spec)
    assert line["x0"] == line["x1"] == 5.5 and line["showlegend"]
    words = next(d for d in spec["data"] if d.get("name") == "input")["text"]
    assert words[6] == "⟨s⟩" and len(words) == 12  # the decoder's first input: the start symbol
    assert [r.label for r in at.radio][0] == "Model"
    assert at.radio[0].options == ["shipped trained model", "fresh random init (untrained)"]


def test_explore_reads_typed_letters_and_names_what_it_cannot():
    at = explore(task="copy", cell="lstm", input="text", text="c a b e")
    answer = {m.label: m.value for m in at.metric}
    assert answer["Target"] == "cabe" and answer["Model's answer"] == "cabe"
    assert at.metric[0].delta == "4 of 4 symbols right"
    at = explore(task="copy", cell="lstm", input="text", text="c x b")
    assert not at.exception
    assert any("x" in shown(i.value) and "vocabulary" in shown(i.value) for i in at.info)
    at = explore(task="copy", cell="lstm", input="text", text="a" * 41)
    assert any("at most 40 symbols" in shown(e.value) for e in at.error)


def test_a_link_to_an_upload_on_copy_opens_what_copy_can_show():
    """copy offers no upload: the link's source is not among the choices, and the page opens
    the shipped model instead of an uploader that could never be used."""
    at = explore(task="copy", source="upload")
    assert not at.error and at.radio[0].value == "shipped"
    assert "shipped trained LSTM" in shown(at.caption[0].value)


def test_random_encoder_decoder_is_labelled_untrained():
    choice = random_init("copy", "gru", seed=2)
    assert choice.source == "random" and "UNTRAINED" in choice.label and choice.note
    assert choice.rnn is choice.model.encoder and choice.cell == "gru"
    assert shipped("copy", "lstm").rnn is zoo.load_model("copy", "lstm").encoder


def test_resolve_model_refuses_a_source_copy_cannot_have():
    with pytest.raises(ValueError, match="encoder and a decoder"):
        ex.resolve_model(ex.ExploreState(task="copy", source="session", run="x"))


# ---------------------------------------------------------------------------------------------
# Compare


def test_compare_draws_accuracy_against_input_length_and_the_hand_off():
    at = open_page(ROOT / "app_pages" / "compare.py", task="copy", len=8, timeout=120)
    assert not at.error
    charts = {}
    for element in at.get("plotly_chart"):
        key = next((k for k in ("compare_chart", "decay_chart", "accuracy_chart")
                    if k in element.proto.id), element.proto.id)
        charts[key] = json.loads(element.proto.spec)
    lines = handoff_lines(charts["compare_chart"])
    assert len(lines) == 3 and all(s["x0"] == 7.5 for s in lines)
    assert not any(s["showlegend"] for s in lines)  # the page's input line names it
    accuracy = charts["accuracy_chart"]
    assert [t["name"] for t in accuracy["data"]] == ["RNN (vanilla)", "LSTM", "GRU"]
    for trace_, cell in zip(accuracy["data"], CELLS):
        stored = zoo.model_info("copy", cell).extra["accuracy_by_length"]
        assert trace_["y"] == [r["accuracy"] for r in stored]
        assert trace_["x"] == list(range(1, zoo.LENGTH_MAX + 1))
    shapes = accuracy["layout"]["shapes"]
    assert any(s.get("x0") == 12 for s in shapes)  # "trained up to here"
    # only the shipped models in each column: the Train page and uploads give one network
    assert all(box.options == ["shipped model"] or len(box.options) == 1
               for box in at.selectbox if box.label in ("Vanilla RNN", "LSTM", "GRU"))
    captions = " ".join(shown(c.value) for c in at.caption)
    assert "teacher forcing" in captions and "200 held-out inputs at each length" in captions
    head = next(shown(m.value) for m in at.markdown if "**Input**" in m.value)
    assert ("Input** (8 letters, the encoder's steps 0 to 7; the decoder's follow the dashed "
            "line, the hand-off)") in head
    assert "⟨s⟩" not in head  # what the encoder reads, not the decoders' inputs
    badges = [m.delta for m in at.metric if m.label.startswith("Held-out")]
    assert len(badges) == 3 and all("words" not in b for b in badges)
    assert "beyond 5 letters" in badges[0]  # the RNN: better overall, not beyond five letters


def test_compare_state_drops_own_models_on_copy():
    state = cmp.CompareState(task="copy", rnn=cmp.UPLOAD, lstm="run 1").normalised()
    assert (state.rnn, state.lstm, state.gru) == (cmp.SHIPPED,) * 3
    assert not cmp.takes_own("copy") and cmp.takes_own("adding")
