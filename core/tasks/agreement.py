"""Subject-verb agreement: "The cat ... was" / "The cats ... were".

A small synthetic grammar. A sentence may open with a clause of its own ("when the dogs slept ,"),
then comes the subject ("the old cat"), then a filler of adjustable length made of prepositional
phrases ("near the houses"), relative clauses ("that the dogs chased", "that saw the birds") and
adverbs. Each noun in the filler and the opening clause is singular or plural at random, so most
long sentences hold attractors (nouns of the other number) and no noun but the subject says
anything about the verb. The model reads the sentence up to the verb and says "was" or "were":
it must find the subject, keep its number across the filler, and ignore the nearer nouns.
Distance = words from the subject noun to the verb (1 = "the cat was").

What makes distance matter (a fixed template with a few attractors is too easy: every cell
solves it in seconds): the subject's position varies, and training sentences are either short or
long, never in between. Half of them have 1 to SHORT words from subject to verb (at most two
adverbs between them: no noun to confuse), the other half LONG to seq_len words (tens of words,
with attractors). The short ones teach every cell which noun is the subject; carrying its number
across the long ones has to be learned from a gradient that reaches back LONG or more steps, which
the vanilla RNN's does not (it shrinks about 0.6x a step): the RNN is right at short distances and
at chance beyond them, LSTM and GRU are right at every distance, the gap included. Two findings
behind this split (same recipe, same budget for every cell):
- with medium spans in training (distances spread evenly from 1, or short ones up to 5, or a
  gap of only 3 to 10) the RNN climbs from span to span, learns to latch the subject's number,
  and then holds it at every distance up to 40: a flat 100% for all three cells;
- with few short sentences (15% from 1 to 9, the rest 10 to 30) the RNN learns nothing at all,
  not even distance 1.
"""

from __future__ import annotations

import numpy as np
import torch

from core.limits import check_text
from core.tasks.base import (
    STREAM_SAMPLE, Batch, DistanceTask, Example, Metric, SeqLen, Vocab, pad_ids, rng_for,
    tokenize,
)

NOUNS = [
    ("cat", "cats"), ("dog", "dogs"), ("child", "children"), ("teacher", "teachers"),
    ("house", "houses"), ("car", "cars"), ("bird", "birds"), ("student", "students"),
    ("friend", "friends"), ("key", "keys"), ("box", "boxes"), ("city", "cities"),
    ("man", "men"), ("woman", "women"), ("farmer", "farmers"), ("table", "tables"),
    ("painting", "paintings"), ("doctor", "doctors"), ("window", "windows"), ("song", "songs"),
    ("cabinet", "cabinets"), ("author", "authors"), ("book", "books"), ("girl", "girls"),
    ("boy", "boys"), ("player", "players"), ("parent", "parents"), ("tree", "trees"),
]
ADJECTIVES = ["old", "small", "big", "happy", "red", "quiet", "young", "strange", "lazy",
              "famous", "green", "tired", "new", "little", "black", "white"]
PREPOSITIONS = ["near", "behind", "with", "beside", "above", "under", "from", "without",
                "like", "past", "of", "to", "on", "in", "at", "by", "for"]
TRANSITIVE = ["chased", "saw", "liked", "followed", "found", "helped", "watched", "visited",
              "painted", "admired"]
INTRANSITIVE = ["slept", "left", "arrived", "sang", "laughed", "waited"]
ADVERBS = ["yesterday", "often", "really", "quietly", "clearly", "certainly", "still", "always",
           "probably", "surely", "also", "once"]
OPENERS = [["i", "think"], ["i", "know", "that"], ["everyone", "said", "that"],
           ["yesterday", ","], ["in", "fact", ","]]
CLAUSE_OPENERS = ["when", "while", "after", "because", "before"]
VERBS = ("was", "were")
SINGULAR = {s for s, _ in NOUNS}
PLURAL = {p for _, p in NOUNS}

SHORT = 3  # short training sentences: 1..SHORT words from subject to verb (no noun between) ...
LONG = 20  # ... long ones: LONG..seq_len words; none in between (see the module docstring)
SHORT_SHARE = 0.5  # the share of short training sentences


class AgreementTask(DistanceTask):
    name = "agreement"
    title = "Subject-verb agreement"
    description = (
        "Read a sentence like \"the cat near the dogs that the children liked ...\" and say "
        "whether the verb must be \"was\" or \"were\". The answer depends only on the subject, "
        "which may be many words back, with nouns of the other number in between."
    )
    kind = "classification"
    input_size = 32  # embedding size
    seq_len = SeqLen(default=20, min=1, max=40, unit="words from subject to verb")
    metric = Metric("accuracy", higher_is_better=True)
    baseline_name = "always the majority verb"
    classes = VERBS
    vocab = Vocab(
        [w for pair in NOUNS for w in pair] + ADJECTIVES + PREPOSITIONS + TRANSITIVE
        + INTRANSITIVE + ADVERBS + [w for o in OPENERS for w in o] + CLAUSE_OPENERS
        + ["the", "that", ","]
    )
    short, long, short_share, between = SHORT, LONG, SHORT_SHARE, "attractors"

    # -- grammar -----------------------------------------------------------------------------
    @staticmethod
    def _noun_phrase(rng, plural: bool, adjectives: int) -> list[str]:
        pair = NOUNS[rng.integers(len(NOUNS))]
        n = len(ADJECTIVES)
        first = int(rng.integers(n))
        second = (first + 1 + int(rng.integers(n - 1))) % n  # never the same adjective twice
        adj = [ADJECTIVES[first], ADJECTIVES[second]][:adjectives]
        return ["the", *adj, pair[int(plural)]]

    def _filler(self, rng, words: int, subject_plural: bool) -> tuple[list[str], int]:
        """Exactly `words` words of modifiers after the subject noun, and how many attractors
        (nouns of the other number) they hold."""
        out: list[str] = []
        attractors = 0
        while len(out) < words:
            room = words - len(out)
            kinds = ["adverb"]
            if room >= 3:
                kinds += ["pp", "pp"]
            if room >= 5:
                kinds += ["object_rc", "subject_rc"]
            kind = kinds[rng.integers(len(kinds))]
            if kind == "adverb":
                out.append(ADVERBS[rng.integers(len(ADVERBS))])
                continue
            plural = bool(rng.integers(2))  # independent of the subject: no shortcut
            attractors += plural != subject_plural
            base = 3 if kind == "pp" else 5
            np_ = self._noun_phrase(rng, plural, int(rng.integers(0, min(2, room - base) + 1)))
            if kind == "pp":
                out += [PREPOSITIONS[rng.integers(len(PREPOSITIONS))], *np_]
            elif kind == "object_rc":
                out += ["that", *np_, TRANSITIVE[rng.integers(len(TRANSITIVE))]]
            else:
                out += ["that", TRANSITIVE[rng.integers(len(TRANSITIVE))], *np_]
        return out, attractors

    def sentence(self, rng: np.random.Generator, distance: int) -> dict:
        """One sentence whose subject noun is `distance` words before the verb slot."""
        plural = bool(rng.integers(2))
        prefix: list[str] = []
        prefix_attractors = 0
        r = rng.random()
        if r < 0.3:  # an opening clause with a noun of either number
            other = bool(rng.integers(2))
            prefix_attractors = int(other != plural)
            prefix = [CLAUSE_OPENERS[rng.integers(len(CLAUSE_OPENERS))],
                      *self._noun_phrase(rng, other, int(rng.integers(0, 2))),
                      INTRANSITIVE[rng.integers(len(INTRANSITIVE))], ","]
        elif r < 0.5:
            prefix = list(OPENERS[rng.integers(len(OPENERS))])
        subject = self._noun_phrase(rng, plural, int(rng.integers(0, 3)))
        filler, attractors = self._filler(rng, distance - 1, plural)
        words = prefix + subject + filler
        return {
            "words": words,
            "label": int(plural),
            "distance": distance,
            "subject_index": len(prefix) + len(subject) - 1,
            "attractors": attractors + prefix_attractors,
        }


    at_distance = sentence  # DistanceTask's sequences
    def make_batch(self, sentences: list[dict]) -> Batch:
        ids, lengths = pad_ids([self.vocab.ids(s["words"]) for s in sentences])
        return Batch(
            ids, torch.tensor([s["label"] for s in sentences]), lengths,
            {"distance": torch.tensor([s["distance"] for s in sentences]),
             "attractors": torch.tensor([s["attractors"] for s in sentences])},
        )

    def _example(self, s: dict) -> Example:
        return Example(
            torch.tensor(self.vocab.ids(s["words"])), torch.tensor(s["label"]), list(s["words"]),
            info={k: s[k] for k in ("distance", "subject_index", "attractors")},
        )

    def sample(self, seed: int, seq_len: int | None = None) -> Example:
        """A sentence with exactly seq_len words from subject to verb."""
        return self._example(self.sentence(rng_for(seed, STREAM_SAMPLE), self.seq_len.resolve(seq_len)))

    def encode(self, text: str) -> Example:
        """A sentence up to (not including) its verb. If it ends in "was" or "were", that word
        is taken as the answer to check and removed from the input."""
        check_text(text)
        words = tokenize(text)
        while words and words[-1] in ".!?":
            words.pop()
        target = None
        if words and words[-1] in VERBS:
            target = torch.tensor(VERBS.index(words.pop()))
        if not words:
            raise ValueError('type a sentence up to its verb, e.g. "the cats near the old house"')
        if len(words) > 200:
            raise ValueError(f"at most 200 words, got {len(words)}")
        ids, unknown = self.vocab.encode(words)
        return Example(ids, target, words, unknown)
