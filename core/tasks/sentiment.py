"""Review sentiment from a small template grammar, many-to-one.

A review opens with an opinion ("i like this phone"), may add neutral remarks ("i bought it in
may") and agreeing opinions ("and the battery is great"), and may turn ("but one bad feature
made it worse", "however the screen is awful"). The label is the opinion that stands at the
end: the opening one, flipped by each turn. Negation flips a clause ("the screen is not good").
Neutral remarks after a turn make the model keep the verdict for many words.
"""

from __future__ import annotations

import numpy as np
import torch

from core.limits import check_text
from core.tasks.base import (
    STREAM_SAMPLE, Batch, Example, Metric, SeqLen, Task, Vocab, pad_ids, pick, rng_for,
    tokenize,
)

PRODUCTS = ["product", "phone", "blender", "lamp", "camera", "speaker", "kettle", "backpack"]
FEATURES = ["battery", "screen", "sound", "handle", "lid", "cable", "motor", "design", "price",
            "button"]
GOOD = ["great", "excellent", "amazing", "good", "wonderful", "solid", "perfect", "fantastic"]
BAD = ["bad", "awful", "terrible", "poor", "cheap", "useless", "flimsy", "horrible"]
LIKE = ["like", "love", "enjoy", "recommend"]
DISLIKE = ["hate", "dislike", "regret"]
NEUTRAL = [
    "i bought it {when}", "it arrived {when}", "the box was {colour}", "i use it every day",
    "my {person} has one too", "it came with a {thing}", "the {feature} is {colour}",
    "i got it for my {person}", "it sits on my desk", "the manual has ten pages",
]
WHEN = ["last week", "last month", "in may", "on monday", "yesterday", "after christmas"]
COLOUR = ["blue", "black", "white", "brown", "small", "large"]
PERSON = ["sister", "friend", "father", "mother", "neighbour"]
THING = ["cable", "manual", "bag", "charger"]
TURN = ["but", "however", "sadly"]  # before an opinion that flips the verdict
GOOD_TURN = ["but", "however", "luckily"]
LABELS = ("negative", "positive")


class SentimentTask(Task):
    name = "sentiment"
    title = "Review sentiment"
    description = (
        "Is a product review positive or negative overall? Reviews open with an opinion, add "
        "neutral remarks, and may turn (\"i like this product ... but one bad feature made it "
        "worse\"): the verdict is the opinion that stands at the end."
    )
    kind = "classification"
    input_size = 32
    seq_len = SeqLen(default=24, min=4, max=80, unit="words (about)")
    metric = Metric("accuracy", higher_is_better=True)
    baseline_name = "always the majority label"
    classes = LABELS

    def __init__(self) -> None:
        words: list[str] = []
        for template in NEUTRAL:
            words += template.split()
        words += (PRODUCTS + FEATURES + GOOD + BAD + LIKE + DISLIKE + COLOUR + PERSON + THING
                  + TURN + GOOD_TURN + " ".join(WHEN).split())
        words += ("i do not this is the it works really well does work one feature made worse "
                  "better and also in end was worth it stopped working broke after a week "
                  ". ,").split()
        self.vocab = Vocab([w for w in words if "{" not in w])

    # -- grammar -----------------------------------------------------------------------------
    def opinion(self, rng, positive: bool) -> list[str]:
        """A clause that says `positive` (possibly through a negation)."""
        negate = rng.random() < 0.2
        surface = positive != negate  # the polarity of the adjective / verb before "not"
        form = rng.integers(5)
        if form == 0:
            verb = pick(rng, LIKE if surface else DISLIKE)
            return ["i", *(["do", "not"] if negate else []), verb, "this", pick(rng, PRODUCTS)]
        if form == 1:
            return ["this", pick(rng, PRODUCTS), "is", *(["not"] if negate else []),
                    pick(rng, GOOD if surface else BAD)]
        if form == 2:
            return ["the", pick(rng, FEATURES), "is", *(["not"] if negate else []),
                    pick(rng, GOOD if surface else BAD)]
        if form == 3:
            if positive:
                return ["it", "works", "really", "well"]
            return ["it", "does", "not", "work"]
        if positive:
            return ["one", pick(rng, GOOD), "feature", "made", "it", "better"]
        return ["one", pick(rng, BAD), "feature", "made", "it", "worse"]

    def turn(self, rng, positive: bool) -> list[str]:
        connective = pick(rng, GOOD_TURN if positive else TURN)
        r = rng.random()
        if r < 0.25:
            ending = (["in", "the", "end", "it", "was", "worth", "it"] if positive
                      else ["it", "stopped", "working"] if rng.random() < 0.5
                      else ["the", pick(rng, FEATURES), "broke", "after", "a", "week"])
            return [connective, *ending]
        return [connective, *self.opinion(rng, positive)]

    def neutral(self, rng) -> list[str]:
        text = pick(rng, NEUTRAL).format(
            when=pick(rng, WHEN), colour=pick(rng, COLOUR), person=pick(rng, PERSON),
            thing=pick(rng, THING), feature=pick(rng, FEATURES))
        return text.split()

    def review(self, rng: np.random.Generator, words: int) -> dict:
        """A review of about `words` words (at least one clause)."""
        verdict = opening = bool(rng.integers(2))
        out = self.opinion(rng, verdict)
        turns = 0
        while len(out) < words:
            r = rng.random()
            if r < 0.5:
                clause = [".", *self.neutral(rng)]
            elif r < 0.7:
                clause = [",", "and", *self.opinion(rng, verdict)]
            else:
                verdict = not verdict
                turns += 1
                clause = [",", *self.turn(rng, verdict)]
            out += clause
        return {"words": out, "label": int(verdict), "turns": turns, "opening": int(opening)}

    def make_batch(self, reviews: list[dict]) -> Batch:
        ids, lengths = pad_ids([self.vocab.ids(r["words"]) for r in reviews])
        return Batch(ids, torch.tensor([r["label"] for r in reviews]), lengths,
                     {"turns": torch.tensor([r["turns"] for r in reviews])})

    def batch(self, rng, batch_size, seq_len=None) -> Batch:
        """Reviews of about 4 to seq_len words."""
        longest = self.seq_len.resolve(seq_len)
        lengths = rng.integers(self.seq_len.min, longest + 1, size=batch_size)
        return self.make_batch([self.review(rng, int(n)) for n in lengths])

    def baseline(self, batch) -> float:
        share = float(batch.targets.float().mean())
        return max(share, 1 - share)

    def extra_scores(self, model, predictions, batch) -> dict:
        correct = (predictions.argmax(-1) == batch.targets).float()
        turned = batch.info["turns"] > 0
        return {
            "accuracy_with_turn": float(correct[turned].mean()) if turned.any() else None,
            "accuracy_without_turn": float(correct[~turned].mean()) if (~turned).any() else None,
        }

    def sample(self, seed: int, seq_len: int | None = None) -> Example:
        r = self.review(rng_for(seed, STREAM_SAMPLE), self.seq_len.resolve(seq_len))
        return Example(torch.tensor(self.vocab.ids(r["words"])), torch.tensor(r["label"]),
                       r["words"], info={"turns": r["turns"]})

    def encode(self, text: str) -> Example:
        check_text(text)
        words = tokenize(text)
        if not words:
            raise ValueError('type a short review, e.g. "i like this phone , but the battery is awful"')
        if len(words) > 400:
            raise ValueError(f"at most 400 words, got {len(words)}")
        ids, unknown = self.vocab.encode(words)
        return Example(ids, None, words, unknown)
