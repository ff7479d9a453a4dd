"""Review sentiment in which memory matters: the verdict comes early, a long tail follows.

A review states its opinion early ("i like this phone"), may turn it once ("but one bad feature
made it worse", the seeds' "due to one bad feature it could have been better") or agree with it
once more (", and the screen is great"), and then talks on about things that do not decide it:
neutral remarks ("i bought it last month . the box was blue") and asides about other products
("i like my old kettle . my sister's lamp is awful"). The label is the opinion of the last
opinion clause about this product; the model reads the whole review and answers at its end, so
it must carry one bit across the tail. Distance = words from the deciding word (the last word
whose polarity the label decides: "awful", "worse", "been" in "could have been better") to the
end of the review, the deciding word included (1 = the review ends on it).

Neither the tail nor the length tells the label, by construction: every clause is drawn with the
same random draws whatever its polarity (paired word lists of equal length, positive and
negative forms of equal length), and the tail is drawn without the label; so the same draws with
the other label give the same review with the polar words of its opinion clauses flipped and
nothing else changed (`review(rng, d, label=...)`; tests/test_sentiment_task.py checks it).

What makes distance matter (one recipe and budget for every cell): training reviews are either
short-tailed (1 to SHORT words from the deciding word to the end) or long-tailed (LONG to seq_len
words), never in between, as in agreement (core/tasks/agreement.py). The short ones teach every
cell which words decide; carrying the verdict across the long ones needs a gradient that reaches
back LONG or more steps, which the vanilla RNN's does not: it is right at short distances and at
chance beyond them, while LSTM and GRU are right at every distance, the gap included. Findings
behind the constants (hidden 64, Adam 2e-3, batch 50, 1,000 steps, seq_len 50, seeds 1 to 5):
- with medium distances in training (10% of the reviews spread over the gap: 3 seeds of 3; 2%:
  1 seed of 2) the RNN climbs from distance to distance and holds the verdict up to 60 words;
- with LONG = 20 (seq_len 40) the RNN learns the long-tailed reviews directly (98% beyond 15);
  with LONG = 30 it is at chance beyond 10 words for seeds 1 to 5 (and after 2,000 steps);
- nothing in training says what the gated cells answer inside the gap, and there their verdict
  may swing through the opposite sign before it settles (a GRU: right 3 words after the deciding
  word, wrong on every review 10 to 16 words after it, right again from 25). With a neutral tail
  alone 3 of 8 gated runs went wrong in the gap; with asides (polar words in the tail, drawn
  without the label, which the verdict must be kept from) 3 of 10 at LONG = 30 with PyTorch's
  gate init and the zoo's LSTM forget bias 1, and 0 of 10 with a bias to keep (LSTM forget bias
  2, GRU update bias 2): the gate biases the zoo's sentiment recipe should use.
"""

from __future__ import annotations

from itertools import product

import numpy as np
import torch

from core.limits import check_text
from core.tasks.base import (
    STREAM_SAMPLE, Batch, DistanceTask, Example, Metric, SeqLen, Vocab, pad_ids, pick,
    rng_for, tokenize,
)

PRODUCTS = ["product", "phone", "blender", "lamp", "camera", "speaker", "kettle", "backpack"]
FEATURES = ["battery", "screen", "sound", "handle", "lid", "cable", "motor", "design", "price",
            "button"]
# Paired lists: index i of one is index i of the other with the opposite polarity, so a clause
# draws the same index whatever its polarity (see the module docstring).
GOOD = ["great", "excellent", "amazing", "good", "wonderful", "solid", "perfect", "fantastic"]
BAD = ["bad", "awful", "terrible", "poor", "cheap", "useless", "flimsy", "horrible"]
LIKE = ["like", "love", "enjoy", "recommend"]
DISLIKE = ["hate", "dislike", "regret", "loathe"]
TURN = ["but", "however", "sadly"]  # before an opinion that makes the verdict negative
GOOD_TURN = ["but", "however", "luckily"]  # ... positive
# Turns that end the review's opinion without an opinion clause: (positive, negative) forms of
# the same length, differing only in their polar words.
TURN_ENDINGS = [
    ("in the end it was a bargain".split(), "in the end it was a mistake".split()),
    ("after a month it still works".split(), "after a month it stopped working".split()),
]

# The neutral remarks: no word of theirs is a polar word (POLAR_WORDS).
NEUTRAL = [
    "i bought it {when}", "it arrived {when}", "the box was {colour}", "i use it every day",
    "my {person} has one too", "it came with a {thing}", "the {part} is {colour}",
    "i got it for my {person}", "it sits on my desk", "the manual has ten pages",
    "i ordered it online", "the {thing} was in the box", "we keep it in the kitchen",
    "my {person} saw it {when}",
]
WHEN = ["last week", "last month", "in may", "on monday", "yesterday", "after christmas"]
COLOUR = ["blue", "black", "white", "brown", "grey", "red"]
PERSON = ["sister", "friend", "father", "mother", "neighbour"]
THING = ["cable", "manual", "bag", "charger"]
PART = ["screen", "handle", "lid", "cable", "button"]
# Opinions about other things ("i like my old kettle", "my sister's lamp is awful"): what a
# review says about another product says nothing about this one. They are drawn without the
# label, every polar word as often as its opposite: like agreement's attractors, they make the
# model read polar words in the tail and keep its verdict from them.
ASIDES = ["my old {product} is {adjective}", "my {owner} {product} is {adjective}",
          "i {verb} my old {product}", "i {verb} my {owner} {product}"]
OWNER = [p + "'s" for p in PERSON]
ASIDE_SHARE = 0.4  # the share of the tail's remarks that are asides
# What fills the last 1 to 3 words of a tail that no whole remark fits (room -> words).
SHORT_ENDINGS = {1: ["."], 2: [".", "anyway"], 3: [".", "as", "expected"]}
LABELS = ("negative", "positive")

SHORT = 3  # short-tailed training reviews: 1..SHORT words from the deciding word to the end ...
LONG = 30  # ... long-tailed ones: LONG..seq_len words; none in between (see the docstring)
SHORT_SHARE = 0.5  # the share of short-tailed training reviews
MAX_LEAD = 16  # at most this many words before the deciding word (sentences' slack, budget.py)
TURN_SHARE = 0.5  # reviews whose last opinion clause is a turn ...
AGREE_SHARE = 0.2  # ... or an agreeing clause (", and ..."); the rest end their opinion at once
MIDDLE_SHARE = 0.5  # reviews with a turn or agreement that have a remark before it (if it fits)
NEGATION_SHARE = 0.2  # clauses negated ("the screen is not good")


def _expand(template: str) -> list[tuple[str, ...]]:
    slots = {"{when}": WHEN, "{colour}": COLOUR, "{person}": PERSON, "{thing}": THING,
             "{part}": PART, "{product}": PRODUCTS, "{owner}": OWNER, "{adjective}": GOOD + BAD,
             "{verb}": LIKE + DISLIKE}
    options = [slots.get(w, [w]) for w in template.split()]
    return [tuple(" ".join(choice).split()) for choice in product(*options)]


#: Every neutral remark, written out; the tail draws among those that fit its room.
REMARKS: list[tuple[str, ...]] = sorted({r for t in NEUTRAL for r in _expand(t)})
#: Every aside, written out (each polar word as often as its opposite).
ASIDE_REMARKS: list[tuple[str, ...]] = sorted({r for t in ASIDES for r in _expand(t)})


def _polar(rng: np.random.Generator, positive: bool, good: list[str], bad: list[str]) -> str:
    """One word of a paired list: the same draw for either polarity."""
    i = int(rng.integers(len(good)))
    return good[i] if positive else bad[i]


def _opinion(rng: np.random.Generator, positive: bool, lead_room: int | None = None,
             tail_room: int | None = None) -> tuple[list[str], int]:
    """A clause that says `positive` (possibly through a negation) and the index of its deciding
    word. The draws are the same whatever `positive` is. lead_room / tail_room, when given,
    admit only forms with at most that many words before / after the deciding word."""
    negate = rng.random() < NEGATION_SHARE
    surface = positive != negate  # the polarity of the word that "not" negates
    product_, feature = pick(rng, PRODUCTS), pick(rng, FEATURES)
    good = _polar(rng, positive, GOOD, BAD)
    adjective = _polar(rng, surface, GOOD, BAD)
    verb = _polar(rng, surface, LIKE, DISLIKE)
    not_ = ["not"] if negate else []
    forms = [
        (["i", *(["do", "not"] if negate else []), verb, "this", product_], 1 + 2 * negate),
        (["this", product_, "is", *not_, adjective], 3 + negate),
        (["the", feature, "is", *not_, adjective], 3 + negate),
        ((["it", "works", "really", "well"] if positive else ["it", "does", "not", "work"]), 3),
        (["one", good, "feature", "made", "it", "better" if positive else "worse"], 5),
        # the seeds' "due to one of the bad features this product could have been better"
        (["due", "to", "one", good, "feature", "it", "could",
          *(["not", "be"] if positive else ["have", "been"]), "better"], 8),
    ]
    fits = [f for f in forms
            if (lead_room is None or f[1] <= lead_room)
            and (tail_room is None or len(f[0]) - f[1] - 1 <= tail_room)]
    return fits[int(rng.integers(len(fits)))]


def _turn(rng: np.random.Generator, positive: bool, lead_room: int | None = None,
          tail_room: int | None = None) -> tuple[list[str], int]:
    """A turn to `positive`: connective and opinion, or a turn ending; and its deciding word."""
    connective = _polar(rng, positive, GOOD_TURN, TURN)
    pair = TURN_ENDINGS[int(rng.integers(len(TURN_ENDINGS)))]
    ending = pair[0] if positive else pair[1]
    use_ending = rng.random() < 0.25
    clause, decisive = _opinion(rng, positive, None if lead_room is None else lead_room - 1,
                                tail_room)
    if use_ending and (lead_room is None or len(ending) <= lead_room):
        return [connective, *ending], len(ending)
    return [connective, *clause], 1 + decisive


def remark(rng: np.random.Generator) -> list[str]:
    """One neutral remark, with its full stop: ". i bought it last month"."""
    return [".", *REMARKS[int(rng.integers(len(REMARKS)))]]


def tail(rng: np.random.Generator, words: int) -> tuple[list[str], int]:
    """Exactly `words` words of remarks and asides, and how many asides. It takes no label: the
    tail cannot tell one."""
    out: list[str] = []
    asides = 0
    while len(out) < words:
        room = words - len(out)
        if room in SHORT_ENDINGS:
            out += SHORT_ENDINGS[room]
            break
        aside = rng.random() < ASIDE_SHARE and len(ASIDE_REMARKS[0]) + 1 <= room
        pool = ASIDE_REMARKS if aside else [r for r in REMARKS if len(r) + 1 <= room]
        out += [".", *pool[int(rng.integers(len(pool)))]]
        asides += aside
    return out, asides


def _words() -> list[str]:
    words = (PRODUCTS + FEATURES + GOOD + BAD + LIKE + DISLIKE + TURN + GOOD_TURN
             + [w for r in REMARKS + ASIDE_REMARKS for w in r]
             + [w for e in SHORT_ENDINGS.values() for w in e]
             + [w for pair in TURN_ENDINGS for e in pair for w in e])
    words += ("i do not this is the it works really well does work one feature made better "
              "worse due to could be have been and , .").split()
    return words


#: Words that can say a verdict: those whose place in an opinion clause the label decides. No
#: neutral remark has them; asides have them, without the label.
POLAR_WORDS = frozenset(
    GOOD + BAD + LIKE + DISLIKE + ["sadly", "luckily"]
    + ["works", "really", "well", "does", "not", "work", "better", "worse", "be", "have", "been"]
    + [w for pos, neg in TURN_ENDINGS for w in set(pos) ^ set(neg)]
)


class SentimentTask(DistanceTask):
    name = "sentiment"
    title = "Review sentiment"
    description = (
        "Is a product review positive or negative? The review says so early (\"i like this "
        "product ... but due to one bad feature it could have been better\") and then goes on "
        "about things that do not decide it: the model must keep the verdict to the end."
    )
    kind = "classification"
    input_size = 32
    seq_len = SeqLen(default=20, min=1, max=60, unit="words from the deciding word to the end")
    metric = Metric("accuracy", higher_is_better=True)
    baseline_name = "always the majority label"
    classes = LABELS
    vocab = Vocab(_words())
    short, long, short_share, between = SHORT, LONG, SHORT_SHARE, "asides"

    # -- grammar -----------------------------------------------------------------------------
    def review(self, rng: np.random.Generator, distance: int, label: int | None = None) -> dict:
        """A review whose deciding word is `distance` words from its end (1 = the last word).

        `label` (0 negative, 1 positive) forces the verdict; the draws are the same either way,
        so the same rng state with the other label gives the same review with its polar words
        flipped. Keys: words, label (1 positive), distance, decisive_index (of the deciding
        word in words), turns (0 or 1), opening (the first clause's polarity), asides (in the
        tail)."""
        drawn = int(rng.integers(2))
        positive = bool(drawn if label is None else label)
        r = rng.random()
        last = "turn" if r < TURN_SHARE else "agree" if r < TURN_SHARE + AGREE_SHARE else None
        middle = remark(rng) if last and rng.random() < MIDDLE_SHARE else []
        turns = int(last == "turn")
        opening = positive != bool(turns)
        if last is None:
            words, decisive = _opinion(rng, opening, tail_room=distance - 1)
        else:
            words, _ = _opinion(rng, opening)
            lead = len(words) + 1  # the comma before the last clause
            # the middle remark goes in only where the last clause's shortest forms (4 words
            # up to the deciding word) still keep at most MAX_LEAD words before that word
            if lead + len(middle) + 4 > MAX_LEAD:
                middle = []
            lead += len(middle)
            if last == "turn":
                clause, at = _turn(rng, positive, MAX_LEAD - lead, distance - 1)
            else:
                clause, at = _opinion(rng, positive, MAX_LEAD - lead - 1, distance - 1)
                clause, at = ["and", *clause], at + 1
            words = [*words, *middle, ",", *clause]
            decisive = lead + at
        rest, asides = tail(rng, distance - (len(words) - decisive))
        return {"words": words + rest, "label": int(positive), "distance": distance,
                "decisive_index": decisive, "turns": turns, "opening": int(opening),
                "asides": asides}


    at_distance = review  # DistanceTask's sequences
    def make_batch(self, reviews: list[dict]) -> Batch:
        ids, lengths = pad_ids([self.vocab.ids(r["words"]) for r in reviews])
        return Batch(ids, torch.tensor([r["label"] for r in reviews]), lengths,
                     {"distance": torch.tensor([r["distance"] for r in reviews]),
                      "turns": torch.tensor([r["turns"] for r in reviews]),
                      "asides": torch.tensor([r["asides"] for r in reviews])})

    def extra_scores(self, model, predictions, batch) -> dict:
        """Accuracy per 5-word bucket of distance ("1-5", "6-10", ...), the longest distance,
        and accuracy on reviews with and without a turn."""
        correct = (predictions.argmax(-1) == batch.targets).float()
        turned = batch.info["turns"] > 0
        return {
            **super().extra_scores(model, predictions, batch),
            "accuracy_with_turn": float(correct[turned].mean()) if turned.any() else None,
            "accuracy_without_turn": float(correct[~turned].mean()) if (~turned).any() else None,
        }

    def _example(self, r: dict) -> Example:
        return Example(torch.tensor(self.vocab.ids(r["words"])), torch.tensor(r["label"]),
                       list(r["words"]),
                       info={k: r[k] for k in ("distance", "decisive_index", "turns", "opening",
                                               "asides")})

    def sample(self, seed: int, seq_len: int | None = None) -> Example:
        """A review whose deciding word is exactly seq_len words from its end."""
        return self._example(self.review(rng_for(seed, STREAM_SAMPLE),
                                         self.seq_len.resolve(seq_len)))

    def encode(self, text: str) -> Example:
        check_text(text)
        words = tokenize(text)
        if not words:
            raise ValueError('type a short review, e.g. "i like this phone , but the battery is '
                             'awful . i bought it last month"')
        if len(words) > 400:
            raise ValueError(f"at most 400 words, got {len(words)}")
        ids, unknown = self.vocab.encode(words)
        return Example(ids, None, words, unknown)
