"""The counting task (aⁿbⁿ): its strings and tags, the memory-less baseline, the scores by n,
typed input, and that an LSTM with one counting unit in its cell state solves every n."""

import math

import numpy as np
import pytest
import torch

from core.limits import LimitError
from core.model import ModelSpec, SequenceModel
from core.tasks.base import IGNORE, rng_for
from core.tasks.counting import A_OR_B, BEYOND, END, ONLY_B, CountingTask, string

TASK = CountingTask()


def test_string_tags_say_which_symbols_may_come_next():
    symbols, tags = string(3)
    assert symbols == ["a", "a", "a", "b", "b", "b"]
    assert tags == [A_OR_B, A_OR_B, A_OR_B, ONLY_B, ONLY_B, END]
    assert string(1) == (["a", "b"], [A_OR_B, END])
    assert [TASK.classes[t] for t in string(2)[1]] == ["a or b", "a or b", "b", "end"]


def test_batches_hold_n_up_to_the_training_range_padded_with_ignore():
    batch = TASK.batch(rng_for(0, 0), 200, 12)
    n = batch.info["n"]
    assert int(n.min()) >= 1 and int(n.max()) == 12
    assert torch.equal(batch.lengths, 2 * n)
    for row in range(len(batch)):
        k = int(n[row])
        assert batch.inputs[row, :k].eq(TASK.vocab.index["a"]).all()
        assert batch.inputs[row, k:2 * k].eq(TASK.vocab.index["b"]).all()
        assert batch.inputs[row, 2 * k:].eq(0).all()  # padding id
        assert batch.targets[row, 2 * k - 1] == END
        assert batch.targets[row, 2 * k:].eq(IGNORE).all()
    again = TASK.batch(rng_for(0, 0), 200, 12)
    assert torch.equal(again.inputs, batch.inputs)


def test_heldout_is_seeded_and_spans_the_range():
    one, two = TASK.heldout(5, 300, 20), TASK.heldout(5, 300, 20)
    assert torch.equal(one.info["n"], two.info["n"])
    assert set(one.info["n"].tolist()) == set(range(1, 21))
    assert not torch.equal(TASK.heldout(6, 300, 20).info["n"], one.info["n"])


def test_the_memoryless_guess_misses_only_the_end_and_so_every_string():
    batch = TASK.heldout(0, 100, 30)
    guess = TASK.memoryless_guess(batch.inputs, TASK.vocab)
    real = batch.targets != IGNORE
    wrong = (guess != batch.targets) & real
    assert torch.equal(wrong.sum(-1), torch.ones(len(batch), dtype=torch.long))
    rows = torch.arange(len(batch))
    assert wrong[rows, batch.lengths - 1].all()  # the one wrong step is the last
    assert TASK.baseline(batch) == 0.0


def one_hot_logits(tags: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.one_hot(tags.clamp(min=0), 3).float()


def test_string_accuracy_needs_every_step_right():
    batch = TASK.make_batch([1, 2, 3, 4])
    logits = one_hot_logits(batch.targets)
    assert TASK.score(logits, batch) == 1.0
    logits[2, 5] = one_hot_logits(torch.tensor(ONLY_B))  # a³b³: "b" where it ends
    logits[3, 0] = one_hot_logits(torch.tensor(END))
    assert TASK.score(logits, batch) == 0.5
    logits[:3, 6:] = 0.0  # past the shorter strings' ends: padding, nothing to score there
    logits[0, 2:] = one_hot_logits(torch.tensor(END))
    assert TASK.score(logits, batch) == 0.5


class CountingOracle(torch.nn.Module):
    """Tags by counting exactly (and forgets the count beyond `up_to` a's, if given)."""

    def __init__(self, up_to: int | None = None):
        super().__init__()
        self.up_to = up_to

    def forward(self, inputs, lengths=None):
        a = (inputs == TASK.vocab.index["a"]).long()
        b = (inputs == TASK.vocab.index["b"]).long()
        n_a, n_b = a.cumsum(-1), b.cumsum(-1)
        tags = torch.where(n_b == 0, A_OR_B, torch.where(n_a == n_b, END, ONLY_B))
        if self.up_to is not None:
            tags = torch.where((n_a > self.up_to) & (b == 1), ONLY_B, tags)
        return one_hot_logits(tags)


def test_accuracy_by_n_and_how_far_a_model_counts():
    by_n = TASK.accuracy_by_n(CountingOracle(up_to=7), 12)
    assert list(by_n) == list(range(1, 13))
    assert [n for n, right in by_n.items() if not right] == [8, 9, 10, 11, 12]
    assert TASK.counts_up_to(by_n) == 7
    assert TASK.counts_up_to({1: False, 2: True}) == 0


def test_extra_scores_go_beyond_the_training_range():
    batch = TASK.heldout(0, 200, 10)
    score = TASK.score_on(CountingOracle(up_to=15), batch)
    assert score.value == 1.0 and score.baseline == 0.0 and score.beats_baseline
    extra = score.extra
    assert extra["training_range"] == 10
    assert list(extra["accuracy_by_n"]) == [str(n) for n in range(1, BEYOND * 10 + 1)]
    assert extra["counts_up_to"] == 15
    assert extra["beyond_accuracy"] == pytest.approx(5 / 20)
    assert extra["step_accuracy"] == 1.0


def counting_lstm() -> SequenceModel:
    """An LSTM whose cell unit 0 adds 0.5 for every a and takes 0.5 away for every b (input and
    forget gates held open), and whose unit 1 holds only the current symbol (forget gate shut).
    The head says "a or b" after an a, and after a b "b" while unit 0 is still at least 0.5,
    "end" when it is back at 0."""
    model = SequenceModel(ModelSpec(cell="lstm", kind="tagging", input_size=4, hidden_size=2,
                                    output_size=3, vocab_size=len(TASK.vocab)))
    half = math.atanh(0.5)  # g = tanh(half * ±1) = ±0.5
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.embed.weight[TASK.vocab.index["a"], 0] = 1.0
        model.embed.weight[TASK.vocab.index["b"], 0] = -1.0
        rnn = model.rnn  # gate rows i, f, g, o of 2 units each
        rnn.bias_ih_l0[0:2] = 30.0  # input gates open
        rnn.bias_ih_l0[2:4] = torch.tensor([30.0, -30.0])  # unit 0 keeps c, unit 1 forgets it
        rnn.weight_ih_l0[4:6, 0] = half
        rnn.bias_ih_l0[6:8] = 30.0  # output gates open
        tanh_half = math.tanh(0.5)
        model.head.weight[A_OR_B, 1] = 20.0 / tanh_half  # ±20 after an a / a b
        model.head.weight[ONLY_B, 0] = 10.0
        model.head.bias[ONLY_B] = -10.0 * tanh_half / 2  # above the end's 0 while c0 >= 0.5
    return model.eval()


def test_an_lstm_counting_in_its_cell_state_solves_every_n():
    model = counting_lstm()
    by_n = TASK.accuracy_by_n(model, 300)
    assert TASK.counts_up_to(by_n) == 300
    score = TASK.score_on(model, TASK.heldout(0, 100, 30))
    assert score.value == 1.0 and score.extra["beyond_accuracy"] == 1.0


def test_a_model_that_reads_only_the_current_symbol_gets_no_string_right():
    model = counting_lstm()
    with torch.no_grad():
        model.head.weight[ONLY_B] = 0.0
        model.head.bias[ONLY_B] = 1.0  # "b" after every b: the baseline's guess
    score = TASK.score_on(model, TASK.heldout(0, 100, 30))
    assert score.value == score.baseline == 0.0
    assert score.extra["step_accuracy"] > 0.95
    assert score.extra["counts_up_to"] == 0


def test_encode_reads_a_and_b_and_knows_the_answers_of_a_prefix():
    example = TASK.encode("aaabbb")
    assert example.tokens == list("aaabbb")
    assert example.target.tolist() == [A_OR_B] * 3 + [ONLY_B, ONLY_B, END]
    assert example.info == {"n": 3}
    prefix = TASK.encode(" A a B ")
    assert prefix.tokens == ["a", "a", "b"]
    assert prefix.target.tolist() == [A_OR_B, A_OR_B, ONLY_B]
    assert torch.equal(prefix.inputs, torch.tensor(TASK.vocab.ids(["a", "a", "b"])))
    assert TASK.marks_note(example) == ""


def test_encode_leaves_no_answer_where_the_text_leaves_the_language():
    too_many = TASK.encode("aabbb")
    assert too_many.target.tolist() == [A_OR_B, A_OR_B, ONLY_B, END, IGNORE]
    assert too_many.info["leaves_at"] == 4
    assert "step 4" in TASK.marks_note(too_many)
    mixed = TASK.encode("abab")
    assert mixed.target.tolist() == [A_OR_B, END, IGNORE, IGNORE]
    starts_with_b = TASK.encode("ba")
    assert starts_with_b.target is None and starts_with_b.info["leaves_at"] == 0


@pytest.mark.parametrize("text, words", [
    ("aabc", "only the letters a and b can be read here (got 'c')"),
    ("a1b2", "(got '1', '2')"),
    ("", "type a's then b's"),
    ("   ", "type a's then b's"),
])
def test_encode_says_what_it_cannot_read(text, words):
    with pytest.raises(ValueError) as caught:
        TASK.encode(text)
    assert words in str(caught.value)


def test_encode_refuses_text_over_the_limit():
    with pytest.raises(LimitError):
        TASK.encode("a" * 1500 + "b" * 1500)


def test_sample_is_the_string_of_that_length():
    example = TASK.sample(seed=3, seq_len=4)
    assert "".join(example.tokens) == "aaaabbbb"
    assert example.target.tolist() == string(4)[1]
    assert len(TASK.sample(seed=0)) == 2 * TASK.seq_len.default
    assert np.array_equal(TASK.sample(1, 4).inputs.numpy(), example.inputs.numpy())


def test_describe_says_where_the_model_lets_the_string_end():
    example = TASK.encode("aaabbb")
    assert TASK.describe(one_hot_logits(example.target), example) == "ends after a³b³"
    assert TASK.target_text(example) == "ends after a³b³"
    early = one_hot_logits(torch.tensor([A_OR_B, A_OR_B, A_OR_B, ONLY_B, END, END]))
    assert TASK.describe(early, example) == "ends after a³b² (+1 more)"
    assert TASK.describe(early) == "ends after step 4 (+1 more)"
    never = one_hot_logits(torch.tensor([A_OR_B] * 3 + [ONLY_B] * 3))
    assert TASK.describe(never) == "no end yet"
