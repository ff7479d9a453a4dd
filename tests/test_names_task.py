"""The names task: a tagging task whose marked words only the words after them decide.

The lesson it teaches (one-direction networks at chance on the marked words, bidirectional ones
right) is shown here on the data itself, with two readers that need no training: one that sees a
word and the words before it, one that sees the words after it."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest
import torch

from core.tasks import get_task
from core.tasks.base import IGNORE, STREAM_HELDOUT, STREAM_TRAIN, UNK, rng_for, token_f1
from core.tasks.names import AFTER_WORDS, AMBIGUOUS, FIRST, OPENERS, Passage


@pytest.fixture(scope="module")
def task():
    return get_task("names")


def sentences(passage: Passage):
    """(words, tags, after) of each sentence of a passage."""
    start = 0
    for i in range(len(passage.words) + 1):
        if i == len(passage.words) or passage.words[i] == ".":
            yield (passage.words[start:i], passage.tags[start:i], passage.after[start:i])
            start = i + 1


# -- the data ----------------------------------------------------------------------------------

def test_the_words_before_a_marked_word_are_the_same_for_both_readings(task):
    """Within its sentence, what comes before a marked word (opener and the word itself) is
    drawn before the coin: every such prefix comes with both readings, about half each."""
    rng = np.random.default_rng(0)
    counts: dict[tuple, Counter] = defaultdict(Counter)
    for _ in range(30000):
        p = task.decided_after(rng)
        k = p.after.index(True)
        assert p.after.count(True) == 1 and p.words[k] in AFTER_WORDS
        counts[tuple(p.words[:k + 1])][p.tags[k]] += 1
    openers = {tuple(o.split()) for o in OPENERS}
    assert set(counts) == {(*o, w) for o in openers for w in AFTER_WORDS}
    for prefix, c in counts.items():
        assert 0.4 < c[1] / (c[0] + c[1]) < 0.6, (prefix, c)
    total = sum(counts.values(), Counter())
    assert total[1] / (total[0] + total[1]) == pytest.approx(0.5, abs=0.01)


def test_the_words_after_a_marked_word_decide_it(task):
    """The rest of the sentence after a marked word always gives the same tag."""
    rng = np.random.default_rng(1)
    seen: dict[tuple, set] = defaultdict(set)
    for _ in range(5000):
        p = task.decided_after(rng)
        k = p.after.index(True)
        seen[tuple(p.words[k + 1:])].add(p.tags[k])
        assert p.tags[:k] == [0] * k  # openers are never names
    assert all(len(tags) == 1 for tags in seen.values())
    assert {t for tags in seen.values() for t in tags} == {0, 1}


def test_only_marked_words_are_ambiguous_where_the_words_before_say_nothing(task):
    """Every other sentence opens with an unambiguous name or a word that is never one, so the
    marks are exactly the ambiguous words at a sentence's start or after an opener; elsewhere
    the words before decide ("took rose" is a person, "a rose" a flower)."""
    rng = np.random.default_rng(2)
    seen = {("took", "rose"): set(), ("a", "rose"): set(), ("a", "jack"): set(),
            ("in", "may"): set(), ("danced", "with", "grace"): set(),
            ("left", "at", "dawn"): set(), ("with", "grace"): set()}
    marked = 0
    for _ in range(2000):
        p = task.passage(rng, 30, 0.0)
        assert len(p.words) == len(p.tags) == len(p.after)
        assert task.left_silent(p.words) == p.after
        marked += sum(p.after)
        for words, tags, after in sentences(p):
            if not any(after) and words[0] in FIRST + AMBIGUOUS:
                assert words[0] in FIRST and tags[0] == 1
        for i in range(len(p.words)):
            for key in (tuple(p.words[i - 1:i + 1]), tuple(p.words[i - 2:i + 1])):
                if key in seen:
                    seen[key].add(p.tags[i])
    assert seen[("took", "rose")] == {1}
    assert seen[("a", "rose")] == seen[("a", "jack")] == seen[("in", "may")] == {0}
    assert seen[("danced", "with", "grace")] == seen[("left", "at", "dawn")] == {0}
    assert seen[("with", "grace")] == {0, 1}  # "danced with grace", "we left at dawn with grace"
    assert marked > 2000  # about one sentence in ten words opens with a marked word


def test_unknown_words_hide_names_and_marked_words_of_both_readings(task):
    rng = np.random.default_rng(3)
    hidden = Counter()
    shown = Counter()
    for _ in range(3000):
        p = task.passage(rng, 30, 0.1)
        for w, tag, after in zip(p.words, p.tags, p.after):
            kind = ("after", tag) if after else ("name" if tag else "other")
            (hidden if w == UNK else shown)[kind] += 1
    rate = {k: hidden[k] / (hidden[k] + shown[k]) for k in shown}
    assert rate["name"] == pytest.approx(0.1, abs=0.01)
    assert rate["other"] == pytest.approx(0.025, abs=0.005)
    assert rate[("after", 0)] == pytest.approx(0.1, abs=0.02)
    assert rate[("after", 1)] == pytest.approx(0.1, abs=0.02)


# -- batches and the seeded streams ------------------------------------------------------------

def test_batch_marks_the_decided_after_words(task):
    held = task.heldout(0, 500, 30)
    after = held.info["decided_after"]
    assert after.dtype == torch.bool and after.shape == held.targets.shape
    real = held.targets != IGNORE
    assert (held.inputs[~real] == 0).all() and not after[~real].any()
    assert 0.03 < float(after.sum()) / float(real.sum()) < 0.1
    assert float(held.targets[after].float().mean()) == pytest.approx(0.5, abs=0.06)
    marked = {task.vocab.words[int(i)] for i in held.inputs[after]}
    assert marked <= set(AFTER_WORDS) | {UNK} and len(marked) == len(AFTER_WORDS) + 1
    checked = 0
    for row in range(len(held)):
        n = int(held.lengths[row])
        words = [task.vocab.words[int(i)] for i in held.inputs[row, :n]]
        if UNK not in words:  # then the mark is the grammar's rule read off the words alone
            assert task.left_silent(words) == after[row, :n].tolist()
            checked += 1
    assert checked > 20


def test_heldout_is_its_own_seeded_stream(task):
    a, b = task.heldout(7, 40), task.heldout(7, 40)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.info["decided_after"],
                                                            b.info["decided_after"])
    train = task.batch(rng_for(7, STREAM_TRAIN), 40)
    assert not torch.equal(train.inputs[:, :5], a.inputs[:, :5])
    again = task.batch(rng_for(7, STREAM_HELDOUT), 40)
    assert torch.equal(again.inputs, a.inputs)


def test_sample_says_which_words_are_decided_after(task):
    found = 0
    for seed in range(20):
        ex = task.sample(seed, 30)
        assert len(ex.tokens) == len(ex) == len(ex.target) >= 30
        positions = ex.info["decided_after"]
        assert positions == [i for i, f in enumerate(task.left_silent(ex.tokens)) if f]
        assert all(ex.tokens[i] in AFTER_WORDS for i in positions)
        found += len(positions)
    assert found > 20
    assert task.sample(3).tokens == task.sample(3).tokens


# -- the lesson, on the data -------------------------------------------------------------------

def _reader(task, keys, seed: int, marked_only: bool = False):
    """A tagger that looks each word up by `keys(words, t)` (longest key first, then shorter
    ones) in counts over training passages (over their marked words only, if marked_only):
    about the best any reader of those words can do."""
    table: dict[tuple, Counter] = defaultdict(Counter)
    rng = rng_for(seed, STREAM_TRAIN)
    for _ in range(1500):
        p = task.passage(rng, 30, task.unknown_name_rate)
        for t, tag in enumerate(p.tags):
            if marked_only and not p.after[t]:
                continue
            for key in keys(p.words, t):
                table[key][tag] += 1

    def tag(words, t):
        for key in keys(words, t):
            if key in table:
                return int(table[key][1] > table[key][0])
        return 1

    return tag


def _left(words, t):  # the word and the two before it, then fewer
    return [("L", *words[max(0, t - k):t + 1]) for k in (2, 1, 0)]


def _right(words, t):  # the four words after it, then fewer (not the word itself)
    return [("R", *words[t + 1:t + 1 + k]) for k in (4, 3, 2, 1)]


def test_words_before_give_chance_on_marked_words_and_words_after_decide_them(task):
    held = task.heldout(0, 300, 30)
    left, right = _reader(task, _left, 0), _reader(task, _right, 0, marked_only=True)
    hits = {("left", True): [], ("left", False): [], ("right", True): []}
    for row in range(len(held)):
        n = int(held.lengths[row])
        words = [task.vocab.words[int(i)] for i in held.inputs[row, :n]]
        for t in range(n):
            after = bool(held.info["decided_after"][row, t])
            truth = int(held.targets[row, t])
            hits[("left", after)].append(left(words, t) == truth)
            if after:
                hits[("right", True)].append(right(words, t) == truth)
    accuracy = {k: float(np.mean(v)) for k, v in hits.items()}
    assert 0.4 < accuracy[("left", True)] < 0.6  # chance: the words before say nothing
    assert accuracy[("left", False)] > 0.97  # everywhere else they do
    assert accuracy[("right", True)] > 0.97  # the words after decide


# -- scores --------------------------------------------------------------------------------------

def test_extra_scores_measure_the_marked_words_next_to_the_rest(task):
    held = task.heldout(1, 300, 30)
    after = held.info["decided_after"]
    real = held.targets != IGNORE
    truth = held.targets.clamp(min=0)
    right = torch.nn.functional.one_hot(truth, 2).float()
    # right everywhere but on the marked words, where it says "other"
    guess = torch.where(after, torch.zeros_like(truth), truth)
    wrong_after = torch.nn.functional.one_hot(guess, 2).float()
    share = float(held.targets[after].float().mean())

    perfect = task.extra_scores(None, right, held)
    assert perfect["decided_after"] == {"words": int(after.sum()), "name_share": share,
                                        "accuracy": 1.0, "name_f1": 1.0}
    assert perfect["rest"]["words"] == int((real & ~after).sum())
    assert perfect["rest"]["accuracy"] == perfect["rest"]["name_f1"] == 1.0

    scores = task.extra_scores(None, wrong_after, held)
    assert scores["decided_after"]["accuracy"] == pytest.approx(1 - share)
    assert scores["decided_after"]["name_f1"] == 0.0
    assert scores["rest"] == perfect["rest"]
    assert task.score(wrong_after, held) == pytest.approx(token_f1(guess, held.targets))


def test_extra_scores_without_marked_words_give_only_the_count(task):
    held = task.make_batch([task.fill(np.random.default_rng(0), "{N} met {P} at the {place}")])
    predictions = torch.zeros(*held.targets.shape, 2)
    scores = task.extra_scores(None, predictions, held)
    assert scores["decided_after"] == {"words": 0}
    assert scores["rest"]["accuracy"] == pytest.approx(float((held.targets == 0).float().mean()))


def test_score_on_reports_the_extra_scores_of_a_model(task):
    from core.model import build_sequence_model
    from core.training.loop import model_spec

    model = build_sequence_model(model_spec(task, "gru", 8), seed=0)
    held = task.heldout(0, 50, 20)
    score = task.score_on(model, held)
    assert set(score.extra) == {"decided_after", "rest"}
    assert score.extra["decided_after"]["words"] == int(held.info["decided_after"].sum()) > 0
    assert score.extra == task.extra_scores(model, task.predict(model, held), held)


def test_baseline_tags_every_listed_word(task):
    held = task.heldout(0, 1000)
    baseline = task.baseline(held)
    assert 0.6 < baseline < 0.9  # context beats a word list ...
    after = held.info["decided_after"]
    listed = torch.isin(held.inputs, torch.tensor([task.vocab.index[w] for w in AFTER_WORDS]))
    assert listed[after].float().mean() > 0.85  # ... and the marked words are on it (or <unk>)
    assert (held.targets[held.inputs == 0] == IGNORE).all()


# -- typed text ----------------------------------------------------------------------------------

def test_encode_marks_ambiguous_words_that_open_a_sentence(task):
    ex = task.encode("Rose took him to a nice restaurant. Yesterday rose bloomed in the garden. "
                     "He took rose home")
    assert ex.target is None and ex.unknown == ["home"]
    assert ex.info["decided_after"] == [0, 9]
    assert ex.tokens[0] == ex.tokens[9] == ex.tokens[17] == "rose"
    assert task.encode("i think june is a warm month").info["decided_after"] == [2]
    assert task.encode("she gave anna a rose").info["decided_after"] == []
    assert task.encode("Yesterday Zelda called Tom.").unknown == ["zelda"]
    assert task.encode("jack fixed the car").info["decided_after"] == []  # not a marked word
    assert task.encode("rose").info["decided_after"] == [0]


def test_encode_refuses_empty_and_overlong_text(task):
    with pytest.raises(ValueError, match="type a sentence"):
        task.encode("  ")
    with pytest.raises(ValueError, match="at most 400 words, got 401"):
        task.encode("a " * 401)


def test_describe_lists_the_tagged_names(task):
    ex = task.encode("rose took tom to a nice restaurant")
    logits = torch.nn.functional.one_hot(torch.tensor([1, 0, 1, 0, 0, 0, 0]), 2).float()
    assert task.describe(logits, ex) == "names: rose, tom"
    assert task.describe(logits) == "name other name other other other other"


def test_the_target_is_written_as_the_names_it_marks():
    names_task = get_task("names")
    example = names_task.sample(0)
    marked = [w for w, t in zip(example.tokens, example.target.tolist()) if t == 1]
    assert names_task.target_text(example) == "names: " + (", ".join(marked) or "none")
    assert names_task.target_text(names_task.encode("rose took him home")) == "—"
