"""Bidirectional and stacked networks: the model, its training and budget, and the zoo's names
for them (issue 16)."""

from __future__ import annotations

import json

import pytest
import torch

from core.model import ModelSpec, SequenceModel, build_sequence_model
from core.tasks import get_task, rng_for
from core.tasks.base import STREAM_TRAIN
from core.training import zoo
from core.training.budget import describe_model, parameter_count
from core.training.loop import TrainConfig, backward_batch, train
from core.views import compare as cmp
from core.views import models
from pagetest import ROOT, open_page, shown

torch.set_num_threads(1)


def spec(kind: str, cell: str = "lstm", **extra) -> ModelSpec:
    return ModelSpec(cell=cell, kind=kind, input_size=6, hidden_size=5, output_size=3,
                     vocab_size=11, **extra)


@pytest.mark.parametrize("kind", ["tagging", "classification", "regression"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_bidirectional_model_reads_each_padded_sequence_as_if_alone(kind, cell):
    """The reverse direction starts at each sentence's own last word, not in the padding:
    every row of a right-padded batch gets what the sentence alone gets."""
    model = build_sequence_model(spec(kind if kind != "regression" else "regression", cell,
                                      bidirectional=True, num_layers=2), seed=3).eval()
    rows = [[2, 5, 7, 3, 9], [4, 4, 8], [10]]
    batch = torch.zeros(3, 5, dtype=torch.long)
    for i, row in enumerate(rows):
        batch[i, :len(row)] = torch.tensor(row)
    lengths = torch.tensor([len(r) for r in rows])
    together = model(batch, lengths)
    for i, row in enumerate(rows):
        alone = model(torch.tensor([row]), torch.tensor([len(row)]))[0]
        mine = together[i, :len(row)] if kind == "tagging" else together[i]
        torch.testing.assert_close(mine, alone, rtol=1e-5, atol=1e-6)
    if kind != "tagging":  # its forward half read the whole row, so did its reverse half
        output, _ = model.rnn(model.features(torch.tensor([rows[0]])))
        H = model.spec.hidden_size
        read = torch.cat([output[0, -1, :H], output[0, 0, H:]])
        expected = model.head(read)
        torch.testing.assert_close(alone if len(rows[0]) == 1 else
                                   model(torch.tensor([rows[0]]))[0],
                                   expected.squeeze(-1) if kind == "regression" else expected)


@pytest.mark.parametrize("extra", [{}, {"bidirectional": True}, {"num_layers": 2},
                                   {"bidirectional": True, "num_layers": 3}])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_the_budget_counts_every_direction_and_layer(cell, extra):
    described = spec("tagging", cell, **extra)
    assert parameter_count(described) == sum(p.numel() for p in SequenceModel(described)
                                             .parameters())


def test_a_bidirectional_model_says_so_and_refuses_truncated_backpropagation():
    assert describe_model(spec("tagging", bidirectional=True), 30) == (
        "a bidirectional LSTM with 5 units on sequences of 30 steps")
    with pytest.raises(ValueError, match="bidirectional model reads each sequence whole"):
        TrainConfig(bidirectional=True, tbptt=10)


def test_a_bidirectional_batch_backpropagates_through_whole_sequences():
    """One training step's gradient is that of the whole batch's loss (no stretches)."""
    task = get_task("names")
    model = zoo.build_model(task, "gru", seed=0, hidden_size=8, bidirectional=True).train()
    batch = task.batch(rng_for(0, STREAM_TRAIN), 6, 12)
    loss = backward_batch(model, task, batch, window=None, segment=3)
    stepped = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    whole = task.loss(model(batch.inputs, batch.lengths), batch.targets)
    whole.backward()
    assert loss == pytest.approx(float(whole.detach()), rel=1e-5)
    for name, parameter in model.named_parameters():
        torch.testing.assert_close(stepped[name], parameter.grad, rtol=1e-4, atol=1e-6)


def test_a_bidirectional_run_trains_and_scores():
    config = TrainConfig(hidden_size=16, bidirectional=True, max_steps=30, heldout_size=100,
                         heldout_every=30, threads=1)
    result = train("names", "lstm", config)
    assert result.model.rnn.bidirectional and result.model.head.in_features == 32
    assert result.status == "finished" and 0 <= result.score.value <= 1
    assert result.history[0].loss > result.history[-1].loss


def test_the_zoo_names_each_network_and_refuses_one_it_does_not_ship():
    assert zoo.architectures("names") == ("", "bidirectional")
    assert zoo.architectures("agreement") == ("", "stacked")
    assert zoo.architectures("adding") == ("",)
    assert zoo.recipe("names", "gru", architecture="bidirectional").bidirectional
    assert zoo.recipe("agreement", "lstm", architecture="stacked").num_layers == 2
    assert zoo.recipe("agreement", "lstm", architecture="stacked").snapshots == 0
    assert zoo.paths("names", "lstm", architecture="bidirectional")[0].name == (
        "names_lstm_bidirectional.safetensors")
    assert zoo.paths("names", "lstm")[0].name == "names_lstm.safetensors"
    with pytest.raises(ValueError, match="no 'stacked' network for adding; the zoo has ''"):
        zoo.recipe("adding", "lstm", architecture="stacked")
    assert zoo.architecture_of(spec("tagging", bidirectional=True, num_layers=2)) == (
        "bidirectional")
    assert models.networks("names") == ["one", "bidirectional"]
    assert models.networks("airline") == ["one"]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_the_stacked_agreement_models_ship_with_two_layers(cell):
    choice = models.shipped("agreement", cell, "stacked")
    assert choice.rnn.num_layers == 2 and not choice.rnn.bidirectional
    assert "(stacked: two layers)" in choice.label and choice.key == "shipped stacked"
    info = zoo.model_info("agreement", cell, "stacked")
    assert info.architecture == "stacked" and info.title.endswith("stacked (two layers)")


def test_an_untrained_network_of_each_kind_is_labelled_so():
    choice = models.random_init("names", "gru", seed=4, network="bidirectional")
    assert choice.rnn.bidirectional and "UNTRAINED GRU (bidirectional)" in choice.label
    assert choice.note == models.UNTRAINED_NOTE


def explore(**query):
    return open_page(ROOT / "app.py", timeout=90, **query)


def test_explore_offers_the_stacked_network_and_each_of_its_layers():
    """A link to the stacked model opens it; its two layers are each a view of their own."""
    at = explore(task="agreement", cell="lstm", net="stacked")
    assert [r.value for r in at.radio if r.label == "Network"] == ["stacked"]
    assert "(stacked: two layers)" in shown(at.caption[0].value)
    layer = next(s for s in at.selectbox if s.label == "Layer")
    assert layer.options == ["0", "1"]
    first = json.loads(at.get("plotly_chart")[0].proto.spec)
    layer.set_value(1).run()
    assert not at.exception and at.query_params["layer"] == "1"
    second = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert first["data"] != second["data"]  # the second layer's states, gates and gradients


def test_a_task_with_one_network_offers_no_choice_and_a_stale_link_falls_back():
    at = explore(task="adding", cell="gru", net="stacked")
    assert not [r for r in at.radio if r.label == "Network"]
    assert not at.error and "stacked" not in shown(at.caption[0].value)


def test_compare_puts_the_stacked_models_side_by_side():
    chosen = cmp.pick_models("agreement", network="stacked")
    assert all(choice.rnn.num_layers == 2 for choice in chosen.values())
    view = cmp.CompareState(task="agreement", net="stacked")
    assert set(cmp.histories(view).values()) == {cmp.SHIPS_NONE}  # no slider: none ships one
    rows = cmp.accuracy_by_distance(chosen["rnn"])  # the stacked RNN's own measurement
    assert rows == zoo.model_info("agreement", "rnn", "stacked").extra["accuracy_by_distance"]
    at = open_page(ROOT / "app_pages/compare.py", task="agreement", net="stacked")
    assert [r.value for r in at.radio if r.label == "Network (shipped models)"] == ["stacked"]
    assert not at.error and at.query_params["net"] == "stacked"
    assert cmp.CompareState(task="adding", net="stacked").normalised().net == "one"


def test_explore_shows_the_bidirectional_tagger_and_the_words_only_the_end_decides():
    text = "rose took him to a nice restaurant . rose bloomed in the garden"
    at = explore(task="names", cell="gru", net="bidirectional", input="text", text=text)
    assert not at.error
    note = shown(at.info[0].value)
    assert note.startswith("Whether “rose” (step 0) and “rose” (step 8) are names, only the "
                           "words after decide")
    assert [m.value for m in at.metric if m.label == "Model's answer"] == ["names: rose"]
    direction = next(r for r in at.radio if r.label == "Direction")
    direction.set_value(1).run()  # the reverse direction: it has read the sentence's end
    assert not at.exception and at.query_params["direction"] == "1"
    one_way = explore(task="names", cell="gru", input="text", text=text)
    assert not [r for r in one_way.radio if r.label == "Direction"]
    assert shown(one_way.info[0].value) == note  # the same words, whichever network
