"""core.tasks: every built-in task's data, typed-input encoding, metric and baseline."""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from core.limits import LIMITS
from core.model import ModelSpec, SequenceModel
from core.tasks import TASKS, get_task, rng_for, token_f1
from core.tasks.agreement import LONG, PLURAL, SHORT, SHORT_SHARE, SINGULAR
from core.tasks.airline import DATA_FILE, amount
from core.tasks.base import IGNORE, tokenize
from core.tasks.charlm import char_label

NAMES = ["adding", "agreement", "airline", "sentiment", "names", "charlm", "counting", "random"]


def untrained(task, cell="gru", hidden=8):
    spec = ModelSpec(cell, task.kind, task.input_size, hidden, task.output_size,
                     vocab_size=task.vocab_size)
    torch.manual_seed(0)
    return SequenceModel(spec).eval()


def test_registry_lists_the_eight_tasks_in_order():
    assert list(TASKS) == NAMES
    for name, task in TASKS.items():
        assert task.name == name
        assert task.kind in ("regression", "classification", "tagging")
        sentences = re.split(r'(?<=[.!?])"?\s+(?=[A-Z"])', task.description.strip())
        assert 1 <= len(sentences) <= 3, sentences


def test_unknown_task_names_the_choices():
    with pytest.raises(ValueError,
                       match="adding, agreement, airline, sentiment, names, charlm, "
                             "counting, random, copy"):
        get_task("reverse")  # kept for experiments, not registered
    assert get_task(TASKS["adding"]) is TASKS["adding"]


@pytest.mark.parametrize("name", NAMES)
def test_sample_is_seeded_and_has_one_label_per_step(name):
    task = get_task(name)
    a, b, c = task.sample(3), task.sample(3), task.sample(4)
    assert torch.equal(a.inputs, b.inputs) and a.tokens == b.tokens
    if name != "counting":  # aⁿbⁿ is one string per n: the seed has nothing to choose
        assert not torch.equal(a.inputs, c.inputs) if a.inputs.shape == c.inputs.shape else True
    assert len(a.tokens) == len(a) > 0
    if task.vocab is not None:
        assert a.inputs.dtype == torch.long and a.inputs.dim() == 1
        assert int(a.inputs.max()) < len(task.vocab) and int(a.inputs.min()) >= 1
    else:
        assert a.inputs.dtype == torch.float32 and a.inputs.shape[1] == task.input_size
    # the features the tracing engine gets: one sequence, (T, input_size) floats
    model = untrained(task)
    x = model.features(a.inputs)
    assert x.shape == (len(a), task.input_size) and x.dtype == torch.float32


@pytest.mark.parametrize("name", NAMES)
def test_heldout_is_reproducible_and_not_the_training_stream(name):
    task = get_task(name)
    h1, h2 = task.heldout(5, 64), task.heldout(5, 64)
    assert torch.equal(h1.inputs, h2.inputs) and torch.equal(h1.targets, h2.targets)
    train = task.batch(rng_for(5, 0), 64)
    if name != "airline":  # airline's held-out set is the fixed test years
        assert h1.inputs.shape != train.inputs.shape or not torch.equal(h1.inputs, train.inputs)
    assert len(h1.lengths) == len(h1) and int(h1.lengths.max()) == h1.inputs.shape[1]


@pytest.mark.parametrize("name", NAMES)
def test_objective_is_a_scalar_with_a_gradient_for_every_step(name):
    task = get_task(name)
    model = untrained(task)
    example = task.sample(0)
    out, _ = model.rnn(model.features(example.inputs))
    out = out.detach().requires_grad_(True)
    for target in (example.target, None):
        value = task.objective(model, target)(out)
        assert value.dim() == 0 and torch.isfinite(value)
        (grad,) = torch.autograd.grad(value, out)
        assert grad.shape == out.shape and grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_empty_text_gets_a_clear_message(name):
    with pytest.raises(ValueError, match="type|give|no "):
        get_task(name).encode("   ")


@pytest.mark.parametrize("name", NAMES)
def test_text_over_the_limit_is_refused(name):
    with pytest.raises(ValueError, match="too long"):
        get_task(name).encode("1 " * LIMITS.max_text_chars)


# -- adding ------------------------------------------------------------------------------------

def test_adding_standard_form():
    task = get_task("adding")
    batch = task.heldout(0, 2000, 50)
    values, markers = batch.inputs[..., 0], batch.inputs[..., 1]
    assert batch.inputs.shape == (2000, 50, 2)
    assert ((values >= 0) & (values < 1)).all()
    assert (markers[:, :25].sum(1) == 1).all() and (markers[:, 25:].sum(1) == 1).all()
    assert torch.allclose((values * markers).sum(1), batch.targets)
    for T in (2, 3, 7):
        b = task.heldout(1, 50, T)
        assert (b.inputs[:, :T // 2, 1].sum(1) == 1).all() and (b.inputs[..., 1].sum(1) == 2).all()


def test_adding_baseline_is_one_sixth():
    task = get_task("adding")
    assert task.baseline(task.heldout(0, 20000)) == pytest.approx(2 / 12, abs=0.006)


def test_adding_encodes_typed_numbers_with_marks():
    ex = get_task("adding").encode("0.3, 0.7*  0.1 [0.9] 0.2")
    expected = torch.tensor([[0.3, 0], [0.7, 1], [0.1, 0], [0.9, 1], [0.2, 0]])
    assert torch.allclose(ex.inputs, expected)
    assert float(ex.target) == pytest.approx(1.6)
    assert ex.tokens[1] == "0.70*" and ex.unknown == []


@pytest.mark.parametrize("text, message", [
    ("0.3 0.7 0.1", "mark exactly two"),
    ("0.3* 0.7* 0.1*", "mark exactly two"),
    ("0.3 abc* 0.2*", "could not read 'abc'"),
    ("0.3 5* 0.2*", "between 0 and 1"),
    ("0.3 nan* 0.2*", "not a finite number"),
])
def test_adding_rejects_unusable_numbers(text, message):
    with pytest.raises(ValueError, match=message):
        get_task("adding").encode(text)


def test_adding_length_is_checked():
    with pytest.raises(ValueError, match="from 2 to 1000"):
        get_task("adding").sample(0, seq_len=1)


# -- agreement ---------------------------------------------------------------------------------

def test_agreement_label_follows_the_subject_across_attractors():
    task = get_task("agreement")
    rng = np.random.default_rng(0)
    with_attractors = 0
    for d in range(1, 41):
        for _ in range(20):
            s = task.sentence(rng, d)
            subject = s["words"][s["subject_index"]]
            assert subject in (PLURAL if s["label"] else SINGULAR)
            assert len(s["words"]) - s["subject_index"] == d == s["distance"]
            nouns = [w for w in s["words"][s["subject_index"] + 1:] if w in SINGULAR | PLURAL]
            other = PLURAL if not s["label"] else SINGULAR
            with_attractors += any(w in other for w in nouns)
            assert s["attractors"] >= sum(w in other for w in nouns)
    assert with_attractors > 400  # most sentences hold a noun of the other number


def test_agreement_trains_on_short_and_long_spans_and_evaluates_every_distance():
    task = get_task("agreement")
    train = task.batch(rng_for(0, 0), 2000, 40)
    distance = train.info["distance"]
    short = distance <= SHORT
    assert bool((short | (distance >= LONG)).all())  # nothing in between: no span to climb
    assert short.float().mean() == pytest.approx(SHORT_SHARE, abs=0.04)
    assert int(distance.min()) == 1 and int(distance.max()) == 40
    assert train.info["attractors"][~short].float().mean() > 2  # long spans hold attractors
    rng = np.random.default_rng(0)
    for d in range(1, SHORT + 1):  # short spans: no noun between subject and verb
        for _ in range(50):
            s = task.sentence(rng, d)
            assert not set(s["words"][s["subject_index"] + 1:]) & (SINGULAR | PLURAL)
    small = task.batch(rng_for(0, 0), 2000, 10)  # below LONG (a user's choice): evenly 1..10
    assert torch.bincount(small.info["distance"], minlength=11)[1:].min() > 100
    held = task.heldout(0, 2000)  # default: distances 1..20, spread evenly
    counts = torch.bincount(held.info["distance"], minlength=21)[1:]
    assert counts.min() > 50 and int(held.info["distance"].max()) == 20
    assert task.baseline(held) == pytest.approx(0.5, abs=0.04)


def test_agreement_encode_takes_the_verb_as_answer_and_reports_unknown_words():
    task = get_task("agreement")
    ex = task.encode("The keys to the cabinett in Paris were.")
    assert ex.tokens == ["the", "keys", "to", "the", "cabinett", "in", "paris"]
    assert ex.unknown == ["cabinett", "paris"] and int(ex.target) == 1
    assert ex.inputs[4] == 1 and ex.inputs[6] == 1 and ex.inputs[2] > 1  # <unk> is id 1
    assert task.encode("the cat").target is None
    with pytest.raises(ValueError, match="up to its verb"):
        task.encode("were")


def test_agreement_accuracy_by_distance_reports_each_distance():
    task = get_task("agreement")
    rows = task.accuracy_by_distance(untrained(task), per_distance=10, max_distance=6)
    assert [r["distance"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert all(0 <= r["accuracy"] <= 1 and r["n"] == 10 for r in rows)


# -- airline -----------------------------------------------------------------------------------

def test_airline_data_is_box_and_jenkins_series_g():
    frame = pd.read_csv(DATA_FILE)
    assert list(frame.columns) == ["month", "passengers"]
    assert len(frame) == 144 and frame["passengers"].sum() == 40363
    assert frame["month"].iloc[0] == "1949-01" and frame["month"].iloc[-1] == "1960-12"


def test_airline_split_and_baselines():
    task = get_task("airline")
    assert task.split == 108  # 75% train (1949-1957), 25% test (1958-1960)
    test = task.heldout()
    assert len(test) == 36 and task.months[int(test.info["month"][0])] == "1958-01"
    assert len(task.train_set()) == 108 - 24 - 1
    assert int(task.train_targets(24).max()) < task.split  # no test month in training
    assert task.baseline(test) == pytest.approx(50.3, abs=0.1)
    assert task.extra_scores(untrained(task), torch.zeros(36), test)["seasonal_naive_rmse"] \
        == pytest.approx(42.0, abs=0.1)


def test_airline_scaling_handles_the_trend_and_inverts_exactly():
    task = get_task("airline")
    test = task.heldout()
    back = task.to_passengers(test.targets, test.info["previous"])
    assert np.allclose(back, test.info["actual"], rtol=1e-5)
    # test years lie far above the training range, their scaled inputs do not
    assert test.info["actual"].min() > 0.6 * task.values[: task.split].max()
    assert test.inputs.abs().max() < 4


def test_airline_takes_a_users_column_of_numbers():
    task = get_task("airline")
    ex = task.from_values([100, 110, 121, 133.1])
    assert ex.inputs.shape == (3, 1) and ex.target is None and ex.info["previous"] == 133.1
    assert len(ex.tokens) == 3
    assert task.encode("100, 110 121").inputs.shape == (2, 1)
    forecast = task.forecast(untrained(task), [float(v) for v in task.values[:40]])
    assert forecast.shape == (41,) and np.isnan(forecast[:2]).all()
    assert np.isfinite(forecast[2:]).all()


@pytest.mark.parametrize("values, message", [
    ([100], "at least 2"),
    ([100, -5, 20], "positive"),
    ([100, float("nan"), 20], "non-finite"),
    ([100, "x"], "numbers only"),
])
def test_airline_rejects_unusable_series(values, message):
    with pytest.raises(ValueError, match=message):
        get_task("airline").from_values(values)


# -- sentiment ---------------------------------------------------------------------------------

def test_sentiment_label_is_the_opinion_that_stands_after_the_turns():
    task = get_task("sentiment")
    rng = np.random.default_rng(0)
    reviews = [task.review(rng, int(n)) for n in rng.integers(4, 60, 600)]
    for r in reviews:
        assert r["label"] == r["opening"] ^ (r["turns"] % 2)
    turned = [r for r in reviews if r["turns"]]
    assert len(turned) > 150 and any("but" in r["words"] for r in turned)
    assert 0.4 < np.mean([r["label"] for r in reviews]) < 0.6


def test_sentiment_encode_reports_unknown_words():
    ex = get_task("sentiment").encode("I like this product... but one bad feature made it worse!")
    assert ex.unknown == ["!"] or ex.unknown == []
    ex = get_task("sentiment").encode("Ünïcödé 😀 superb phone")
    assert ex.tokens == ["ünïcödé", "😀", "superb", "phone"]
    assert ex.unknown == ["ünïcödé", "😀", "superb"] and ex.inputs.tolist()[:3] == [1, 1, 1]


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=60, deadline=None)
@given(text=st.one_of(st.text(max_size=300),
                     st.text(alphabet="0123456789.,;*[]- \neEinaf+", max_size=300)))
def test_any_typed_text_is_encoded_or_refused_with_a_message(name, text):
    task = get_task(name)
    try:
        ex = task.encode(text)
    except ValueError as error:
        assert str(error)
        return
    assert len(ex.tokens) == len(ex) > 0
    if name == "charlm":  # characters, shown readably (a tab as "⇥"), are the tokens
        typed = text.replace("\r\n", "\n")
        assert set(ex.unknown) == {char_label(c) for c in typed if c not in task.vocab}
    elif task.vocab is not None:
        assert set(ex.unknown) == {w for w in ex.tokens if w not in task.vocab}


# -- names -------------------------------------------------------------------------------------

def test_names_tags_depend_on_context():
    task = get_task("names")
    rng = np.random.default_rng(0)
    seen = {("took", "rose"): set(), ("a", "rose"): set(), ("a", "jack"): set()}
    for _ in range(3000):
        words, tags = task.text(rng, 12, 0.0)
        assert len(words) == len(tags)
        for i in range(1, len(words)):
            if (words[i - 1], words[i]) in seen:
                seen[(words[i - 1], words[i])].add(tags[i])
    assert seen[("took", "rose")] == {1} and seen[("a", "rose")] == {0}
    assert seen[("a", "jack")] == {0}


def test_names_baseline_is_a_word_list_that_context_beats():
    task = get_task("names")
    held = task.heldout(0, 1000)
    assert 0.6 < task.baseline(held) < 0.9
    assert (held.targets[held.inputs == 0] == IGNORE).all()


def test_token_f1():
    t = torch.tensor([[1, 0, 1, IGNORE]])
    assert token_f1(torch.tensor([[1, 0, 1, 1]]), t) == 1.0
    assert token_f1(torch.tensor([[1, 1, 0, 0]]), t) == pytest.approx(0.5)


def test_names_encode_unknown_name():
    ex = get_task("names").encode("Yesterday Zelda called Tom.")
    assert ex.unknown == ["zelda"] and ex.tokens[1] == "zelda"


# -- random ------------------------------------------------------------------------------------

def test_random_task_is_the_keras_example():
    task = get_task("random")
    train = task.train_data
    assert train.inputs.shape == (1000, 10, 64) and set(train.targets.tolist()) == {0, 1}
    assert torch.equal(get_task("random").train_data.inputs, train.inputs)
    held = task.heldout(0)
    assert not torch.equal(held.inputs, train.inputs)
    assert task.baseline(held) == pytest.approx(0.5, abs=0.05)


def test_random_encode_needs_64_numbers_per_step():
    task = get_task("random")
    assert task.encode(" ".join(["0.5"] * 128)).inputs.shape == (2, 64)
    with pytest.raises(ValueError, match="64 numbers per timestep"):
        task.encode("0.1 0.2 0.3")


def test_the_airline_page_says_exactly_what_the_model_read():
    """Typed passengers are not what the model reads: the note's formula, applied to the
    typed values, gives the very numbers fed to the model (to the note's 4 decimals)."""
    import re

    task = get_task("airline")
    values = [112, 118, 132, 129, 121, 135, 148]
    example = task.encode(" ".join(map(str, values)))
    note = task.fed_note(example)
    mean, std = (float(v) for v in re.search(r"mean (\S+) and standard deviation (\S+):",
                                              note).groups())
    assert f"{len(values) - 1} numbers from your {len(values)} values" in note
    fed = (np.diff(np.log(values)) - mean) / std
    np.testing.assert_allclose(example.inputs[:, 0].numpy(), fed, atol=5e-3)
    assert get_task("adding").fed_note(get_task("adding").sample(0)) == ""


def test_an_answer_is_judged_against_its_target_in_the_tasks_own_terms():
    agreement = get_task("agreement")
    example = agreement.sample(0)
    right = torch.zeros(len(agreement.classes))
    right[int(example.target)] = 5.0
    assert agreement.judge(right, example) == ("right", True)
    assert agreement.judge(right.flip(0), example) == ("wrong", False)
    names = get_task("names")
    tagged = names.sample(0)
    logits = torch.nn.functional.one_hot(tagged.target, len(names.classes)).float()
    logits[0] = logits[0].flip(0)  # one tag wrong
    assert names.judge(logits, tagged) == (f"{len(tagged) - 1} of {len(tagged)} tags right",
                                           False)
    adding = get_task("adding")
    summed = adding.sample(0)
    assert adding.judge(torch.as_tensor(float(summed.target) + 0.25), summed)[0] == "off by 0.25"
    airline = get_task("airline")
    month = airline.sample(0)
    words, verdict = airline.judge(month.target, month)  # the true change: off by (almost) 0
    assert words == "off by 0 passengers" and verdict is None
    assert agreement.judge(right, agreement.encode("the cat near the dogs")) == ("", None)


# -- text and numbers as a visitor writes them (issue 19 item 9) --------------------------------


@pytest.mark.parametrize("text, tokens", [
    ("Cafe\u0301 ok", ["café", "ok"]),  # a decomposed accent is the same word as a composed one
    ("İstanbul", ["istanbul"]),  # not "i" + a combining dot
    ("I\u0307stanbul", ["istanbul"]),  # İ decomposed
    ("😀\ufe0f was", ["😀", "was"]),  # the emoji's variation selector is no timestep
    ("the \ufe0fcat", ["the", "cat"]),
    ("नमस्ते दुनिया", ["नमस्ते", "दुनिया"]),  # vowel signs stay in their words
    ("Don't!", ["don't", "!"]),
    ("a_b", ["a", "b"]),
    ("\u0301the", ["the"]),  # a mark with nothing before it goes
])
def test_the_tokenizer_normalises_text_and_keeps_marks_with_their_letters(text, tokens):
    assert tokenize(text) == tokens


def test_typed_words_in_decomposed_form_find_the_vocabulary():
    task = get_task("agreement")
    composed = task.encode("The cats near the door were")
    decomposed = task.encode(unicodedata.normalize("NFD", "The cats near the door were"))
    assert composed.tokens == decomposed.tokens


def test_numbers_beyond_float32_are_named_in_the_users_terms():
    with pytest.raises(ValueError, match=r"'1e39' is too large: the models compute in float32"):
        get_task("random").encode(" ".join(["1e39"] * 64))
    assert len(get_task("random").encode(" ".join(["3e38"] * 64))) == 1


def test_a_forecast_of_a_huge_series_is_shown_short():
    task = get_task("airline")
    example = task.from_values([1e308] * 5)
    assert re.fullmatch(r"next month ≈ 1\.\d\de\+308", task.describe(torch.tensor(0.0), example))
    assert task.describe(torch.tensor(1e3), example) == ("next month ≈ more than 1.8e+308 "
                                                          "(beyond float64)")
    assert task.describe(torch.tensor(0.0), task.from_values([112, 118, 130])).startswith(
        "next month ≈ 13")
    assert amount(123456.4) == "123456" and amount(2.5e7) == "2.5e+07"


def test_subnormal_values_are_positive():
    example = get_task("airline").from_values([1e-310, 2e-310, 4e-310])
    assert len(example) == 2 and np.isfinite(example.inputs.numpy()).all()
