"""core.tasks.sentiment: the verdict comes early and must be kept across a tail that tells nothing.

The labels follow the deciding word, the tail and the length cannot tell the label (by
construction, and measured), the distance is recorded per review, typed reviews are encoded with
their unknown words reported, and the score is broken down by distance.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.model import ModelSpec, SequenceModel
from core.tasks import get_task, rng_for
from core.tasks.sentiment import (
    ASIDE_REMARKS, BAD, DISLIKE, GOOD, GOOD_TURN, LIKE, LONG, POLAR_WORDS, REMARKS, SHORT,
    SHORT_SHARE, TURN,
)
from core.training.budget import SENTENCE_SLACK

TASK = get_task("sentiment")

# What the deciding word says, read as a person reads it (not from the grammar's code):
# (word, the words before it) -> positive?
FIXED = {"better": True, "worse": False,  # "one bad feature made it worse"
         "well": True, "work": False,  # "it works really well" / "it does not work"
         "be": True, "been": False,  # "it could not be better" / "it could have been better"
         "bargain": True, "mistake": False,  # "in the end it was a bargain"
         "works": True, "working": False}  # "after a month it still works / stopped working"


def says_positive(words: list[str], i: int) -> bool:
    word = words[i]
    if word in FIXED:
        return FIXED[word]
    negated = "not" in words[max(0, i - 2): i]  # "is not good", "do not like"
    assert word in GOOD + BAD + LIKE + DISLIKE, f"{word!r} cannot decide a review"
    return (word in GOOD + LIKE) != negated


def reviews(seed: int, n: int, longest: int = 60) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [TASK.review(rng, int(d)) for d in rng.integers(1, longest + 1, n)]


def untrained(cell: str = "gru") -> SequenceModel:
    spec = ModelSpec(cell, TASK.kind, TASK.input_size, 8, TASK.output_size,
                     vocab_size=TASK.vocab_size)
    torch.manual_seed(0)
    return SequenceModel(spec).eval()


# -- labels ------------------------------------------------------------------------------------

def test_the_label_is_what_the_deciding_word_says_and_the_turn_decides_over_the_opening():
    made = reviews(0, 3000)
    for r in made:
        assert r["words"][r["decisive_index"]] in POLAR_WORDS
        assert r["label"] == int(says_positive(r["words"], r["decisive_index"])), r["words"]
        assert r["label"] == r["opening"] ^ r["turns"]  # a turn overrules the opening
        # the interpretability lab counts turns by their connectives: nothing else uses them
        assert sum(w in set(TURN + GOOD_TURN) for w in r["words"]) == r["turns"]
    turned = [r for r in made if r["turns"]]
    assert 0.4 < len(turned) / len(made) < 0.6  # half the reviews overrule their opening
    assert 0.45 < np.mean([r["label"] for r in made]) < 0.55
    # the seeds' review is in the grammar, and so are turns that end in a fixed phrase
    words = {w for r in made for w in r["words"][r["decisive_index"]:r["decisive_index"] + 1]}
    assert {"been", "be", "mistake", "bargain", "worse", "better"} <= words


# -- the tail and the length do not tell the label -----------------------------------------------

@pytest.mark.parametrize("distance", [1, 2, 3, 7, 30, 60])
def test_the_same_draws_with_the_other_label_change_only_the_opinion_words(distance):
    for seed in range(300):
        negative = TASK.review(np.random.default_rng(seed), distance, label=0)
        positive = TASK.review(np.random.default_rng(seed), distance, label=1)
        assert negative["label"] == 0 and positive["label"] == 1
        for key in ("distance", "decisive_index", "turns", "asides"):
            assert negative[key] == positive[key]
        a, b = negative["words"], positive["words"]
        i = negative["decisive_index"]
        assert len(a) == len(b)  # the length cannot tell
        assert a[i + 1:] == b[i + 1:]  # nor can anything after the deciding word
        assert a[i] != b[i]
        assert all(a[k] in POLAR_WORDS and b[k] in POLAR_WORDS
                   for k in range(len(a)) if a[k] != b[k])
        # and a review that draws its own label is one of the two
        drawn = TASK.review(np.random.default_rng(seed), distance)
        assert drawn == (positive if drawn["label"] else negative)


def test_a_classifier_of_the_tails_words_is_at_chance_and_the_length_tells_nothing():
    """Naive Bayes on the words after the deciding word, fit on 4000 reviews, scored on 4000
    others: at chance (a tail drawn with the label in mind would be read at once); and the
    words before the deciding word are as many under either label."""
    def tails(seed):
        made = reviews(seed, 4000, longest=40)
        return [r["words"][r["decisive_index"] + 1:] for r in made], \
            np.array([r["label"] for r in made]), np.array([r["decisive_index"] for r in made])

    words, labels, leads = tails(2)
    index = {w: k for k, w in enumerate(TASK.vocab.words)}
    counts = np.ones((2, len(index)))
    for tail, label in zip(words, labels):
        for w in tail:
            counts[label, index[w]] += 1
    log_p = np.log(counts / counts.sum(1, keepdims=True))
    test_words, test_labels, _ = tails(3)
    scores = np.array([sum(log_p[1, index[w]] - log_p[0, index[w]] for w in t)
                       for t in test_words])
    assert abs(np.mean((scores > 0) == test_labels) - 0.5) < 0.03
    # the asides' polar words are as common under either label
    polar_tails = [sum(w in GOOD + LIKE for w in t) - sum(w in BAD + DISLIKE for w in t)
                   for t in words]
    assert abs(np.corrcoef(polar_tails, labels)[0, 1]) < 0.05
    # the length: the distance is drawn without the label, and so is the number of words
    # before the deciding word (sd 4.8: 0.5 is over 3 standard errors of the difference)
    assert abs(leads[labels == 1].mean() - leads[labels == 0].mean()) < 0.5


def test_remarks_hold_no_polar_word_and_asides_hold_each_as_often_as_its_opposite():
    assert not {w for r in REMARKS for w in r} & POLAR_WORDS
    said = [w for r in ASIDE_REMARKS for w in r if w in POLAR_WORDS]
    for good, bad in zip(GOOD + LIKE, BAD + DISLIKE):
        assert said.count(good) == said.count(bad) > 0


# -- distance --------------------------------------------------------------------------------------

def test_distance_counts_the_words_from_the_deciding_word_to_the_end():
    for r in reviews(4, 2000):
        assert len(r["words"]) - r["decisive_index"] == r["distance"]
        # the words before it stay within what the memory budget allows a sentence
        assert len(r["words"]) <= r["distance"] + SENTENCE_SLACK
    one = TASK.review(np.random.default_rng(0), 1)
    assert one["words"][-1] == one["words"][one["decisive_index"]]  # 1: it ends on the word


def test_sample_and_batches_carry_the_distance():
    for seq_len in (1, 5, 20, 60):
        example = TASK.sample(7, seq_len)
        assert example.info["distance"] == seq_len
        assert len(example.tokens) - example.info["decisive_index"] == seq_len
        assert set(example.info) == {"distance", "decisive_index", "turns", "opening", "asides"}
    assert TASK.sample(7).info["distance"] == TASK.seq_len.default
    rng = np.random.default_rng(5)
    made = [TASK.review(rng, d) for d in (1, 9, 33)]
    batch = TASK.make_batch(made)
    assert batch.info["distance"].tolist() == [1, 9, 33]
    assert batch.lengths.tolist() == [len(r["words"]) for r in made]
    assert batch.info["turns"].tolist() == [r["turns"] for r in made]
    assert batch.info["asides"].tolist() == [r["asides"] for r in made]
    with pytest.raises(ValueError, match="from 1 to 60"):
        TASK.sample(0, 61)


def test_training_tails_are_short_or_long_and_held_out_ones_spread_evenly():
    train = TASK.batch(rng_for(0, 0), 2000, 50)
    distance = train.info["distance"]
    short = distance <= SHORT
    assert bool((short | (distance >= LONG)).all())  # nothing in between: no span to climb
    assert short.float().mean() == pytest.approx(SHORT_SHARE, abs=0.04)
    assert int(distance.min()) == 1 and int(distance.max()) == 50
    assert train.info["asides"][~short].float().mean() > 1.5  # long tails hold asides
    small = TASK.batch(rng_for(0, 0), 2000, 10)  # below LONG (a user's choice): evenly 1..10
    assert torch.bincount(small.info["distance"], minlength=11)[1:].min() > 100
    held = TASK.heldout(0, 2000, 50)
    counts = torch.bincount(held.info["distance"], minlength=51)[1:]
    assert counts.min() > 15 and int(held.info["distance"].max()) == 50
    assert TASK.baseline(held) == pytest.approx(0.5, abs=0.04)


# -- scores by distance ----------------------------------------------------------------------------

def test_extra_scores_give_accuracy_per_five_words_of_distance():
    rng = np.random.default_rng(6)
    made = [TASK.review(rng, d) for d in range(1, 23) for _ in range(3)]
    batch = TASK.make_batch(made)
    # right exactly where the deciding word is at most 5 words from the end
    right = batch.info["distance"] <= 5
    answer = torch.where(right, batch.targets, 1 - batch.targets)
    predictions = torch.nn.functional.one_hot(answer, 2).float()
    extra = TASK.extra_scores(None, predictions, batch)
    assert extra["accuracy_by_distance"] == {"1-5": 1.0, "6-10": 0.0, "11-15": 0.0,
                                             "16-20": 0.0, "21-25": 0.0}
    assert extra["max_distance"] == 22
    turned = batch.info["turns"] > 0
    assert extra["accuracy_with_turn"] == pytest.approx(float(right[turned].float().mean()))
    assert extra["accuracy_without_turn"] == pytest.approx(float(right[~turned].float().mean()))
    # and through the ordinary evaluation, for any model
    score = TASK.evaluate(untrained(), seed=3, n=200, seq_len=12)
    assert list(score.extra["accuracy_by_distance"]) == ["1-5", "6-10", "11-15"]
    assert score.extra["max_distance"] == 12


def test_accuracy_by_distance_reports_each_distance():
    model = untrained()
    rows = TASK.accuracy_by_distance(model, per_distance=20, max_distance=6)
    assert [r["distance"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert all(0 <= r["accuracy"] <= 1 and r["n"] == 20 for r in rows)
    assert rows[0]["asides"] == 0 and rows[-1]["asides"] == 0  # no room for an aside yet
    again = TASK.accuracy_by_distance(model, per_distance=20, max_distance=6)
    assert again == rows  # the same reviews for the same seed
    longer = TASK.accuracy_by_distance(model, per_distance=20, max_distance=20)
    assert longer[-1]["asides"] > 0.5


# -- typed reviews -----------------------------------------------------------------------------

def test_every_word_the_grammar_writes_is_known():
    known = set(TASK.vocab.words)
    assert {w for r in reviews(8, 1000) for w in r["words"]} <= known


def test_typed_review_is_encoded_with_its_unknown_words_reported():
    ex = TASK.encode("I like this phone, but the battery is AWFUL. My sister's lamp is great!")
    assert ex.tokens == ["i", "like", "this", "phone", ",", "but", "the", "battery", "is",
                         "awful", ".", "my", "sister's", "lamp", "is", "great", "!"]
    assert ex.unknown == ["!"] and ex.target is None
    assert ex.inputs.tolist()[-1] == 1 and min(ex.inputs.tolist()[:-1]) > 1  # <unk> is id 1
    ex = TASK.encode("superb phone , superb price")
    ids = ex.inputs.tolist()
    assert ex.unknown == ["superb"] and ids[0] == ids[3] == 1 and min(ids[1], ids[2], ids[4]) > 1
    with pytest.raises(ValueError, match="type a short review"):
        TASK.encode(" \n ")
    with pytest.raises(ValueError, match="at most 400 words"):
        TASK.encode("a " * 401)
