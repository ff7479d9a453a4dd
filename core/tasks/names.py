"""Person-name tagging, many-to-many: one tag per word (name / other), and the lesson of a
bidirectional network: some words can only be tagged by reading what comes after them.

Many first names are also ordinary words (rose, will, may, june, april, lily, hope, dawn, grace,
bill, mark, jack). Two kinds of sentence use them:

- Sentences where the words BEFORE decide ("he took rose to a nice restaurant", "she gave anna a
  rose", "we left at dawn with tom"): a one-direction network, which has read only those words
  when it tags one, can do this.
- Sentences where only the words AFTER decide: an ambiguous word opens the sentence, alone or
  after an opener that says nothing about it ("yesterday", "i think", ...), and the rest of the
  sentence tells ("rose took him to a nice restaurant" / "rose bloomed in the garden"; "june is
  my friend" / "june is a warm month"). Which reading comes is a fair coin, drawn after the
  opener and the word, so the words up to and including the ambiguous one are the same for both
  readings, in the same proportions: a one-direction network cannot do better than chance (50%)
  on these words, whatever it learned; a bidirectional one reads the rest of the sentence
  backwards and can get them right. These words are marked: Batch.info["decided_after"] (a
  (B, T) bool mask) and Example.info["decided_after"] (their positions), and `extra_scores`
  gives the accuracy and name F1 on them next to those on every other word.

So that nothing but these sentences puts an ambiguous word where the left context is silent, the
other sentences' opening person ({N} in TEMPLATES) is always an unambiguous first name.
Some names are replaced by <unk> in training, so the model also learns to tag names it has never
seen ("yesterday zelda called tom") from context alone; a marked word becomes <unk> at the same
rate whichever its reading, so the coin stays fair.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.limits import check_text
from core.tasks.base import (
    IGNORE, STREAM_SAMPLE, UNK, Batch, Example, Metric, SeqLen, Task, Vocab, pad_ids, pick,
    rng_for, token_f1, tokenize,
)

FIRST = ["john", "mary", "anna", "peter", "david", "sarah", "james", "emma", "lucas", "sofia",
         "omar", "maria", "tom", "kate", "paul", "nina", "alex", "elena", "ravi", "yuki"]
AMBIGUOUS = ["rose", "will", "jack", "may", "mark", "grace", "hope", "bill", "june", "dawn",
             "lily", "april"]
SURNAMES = ["smith", "jones", "garcia", "chen", "kumar", "novak", "brown", "miller", "ali",
            "kim", "rossi", "ivanova"]
CITIES = ["paris", "london", "berlin", "tokyo", "lima", "cairo", "oslo", "madrid"]
PLACES = ["station", "library", "market", "office", "park", "museum"]
DAYS = ["monday", "friday", "sunday"]
MONTHS = ["may", "june", "april", "march"]
FLOWERS = ["rose", "lily", "tulip"]
COLOURS = ["brown", "red", "green"]
SLOTS = {"{place}": PLACES, "{city}": CITIES, "{month}": MONTHS, "{flower}": FLOWERS,
         "{day}": DAYS, "{colour}": COLOURS}

# Sentences where the words before every ambiguous word decide it. {N}: a person where the left
# context says nothing (a sentence's opening person): unambiguous first names only. {P}: a
# person after words that make it one (any first name). {S}: a surname. Ambiguous words appear
# as ordinary words only after words that make them so ("a", "in", "the", "at", "with", "i").
TEMPLATES = [
    "{N} met {P} at the {place}",
    "yesterday {N} called {P}",
    "he took {P} to a nice restaurant for dinner",
    "{N} and {P} went to {city} in {month}",
    "she gave {P} a {flower}",
    "i hope {P} will come on {day}",
    "we hope {P} can visit {city}",
    "{N} paid the bill at the {place}",
    "{N} fixed the car with a jack",
    "my friend {P} lives in {city}",
    "{N} danced with grace",
    "we left at dawn with {P}",
    "{N} made a mark on the map",
    "the {colour} box belongs to {P}",
    "{N} will meet {P} in {month}",
    "i saw {P} near the {place} on {day}",
    "the teacher asked {P} a question",
    "{N} wrote to {P} from {city}",
    "{N} said that {P} will call",
    "a {flower} for {P}",
    "there is hope for {P}",
    "mr {S} met mrs {S} in {city}",
]

# Sentences where only the words after decide: OPENER, then an ambiguous word, then either what
# a person does (PERSON_RESTS) or what the word's ordinary sense does (THING_RESTS). Several
# rests of both kinds begin alike ("is a ...", "was ..."), so the deciding word may come two to
# four words after the ambiguous one.
OPENERS = ["", "", "", "yesterday", "then", "today", "so", "i think", "she said"]
PERSON_RESTS = [
    "took him to a nice restaurant",
    "took {P} to a nice restaurant",
    "called his mother",
    "called {P}",
    "met {P} at the {place}",
    "smiled at {P}",
    "wrote to {P} from {city}",
    "lives in {city}",
    "was born in {city}",
    "was happy to see {P}",
    "is my friend",
    "is a good friend of {P}",
    "is a teacher in {city}",
    "went to {city} in {month}",
    "bought a {flower} for {P}",
]
THING_RESTS = {
    "rose": ["bloomed in the garden", "petals fell on the table", "is a red flower",
             "bushes grow near the {place}"],
    "lily": ["bloomed near the pond", "pads float on the pond", "is a white flower"],
    "will": ["was signed by the lawyer", "power is not enough"],
    "may": ["is a warm month", "was cold in {city}", "brought rain to {city}"],
    "june": ["is a warm month", "was hot in {city}", "brought rain to {city}"],
    "april": ["is a warm month", "was cold in {city}", "showers are cold"],
    "hope": ["is a good thing", "keeps us going"],
    "dawn": ["broke over the hills", "came early in {month}", "light filled the room"],
    "grace": ["is a gift", "period ends on {day}"],
    "bill": ["was too high", "for the car is due on {day}"],
    "mark": ["on the door is old", "on the map is red"],
}
AFTER_WORDS = list(THING_RESTS)  # the ambiguous words that open a sentence decided after
# The openers as word lists, longest first (so that "she said" is matched before no opener).
OPENER_WORDS = [o.split() for o in sorted(set(OPENERS), key=lambda o: (-len(o.split()), o))]
AFTER_SHARE = 0.4  # share of sentences decided after
SURNAME_SHARE = 0.3  # share of persons given a surname too
NAME_TAGS = ("other", "name")


@dataclass
class Passage:
    """Words, their tags (1 = part of a person's name) and whether each is decided only by the
    words after it."""

    words: list[str]
    tags: list[int]
    after: list[bool]

    def extend(self, other: Passage) -> None:
        self.words += other.words
        self.tags += other.tags
        self.after += other.after


class NamesTask(Task):
    name = "names"
    title = "Name tagging"
    description = (
        "Tag every word that is part of a person's name. Many names are also ordinary words, "
        "and sometimes only the words after one tell which it is (\"rose took him to a nice "
        "restaurant\" / \"rose bloomed in the garden\"): a one-direction network has not read "
        "them yet when it tags the word, a bidirectional one has. Unknown words are tagged "
        "from context too."
    )
    kind = "tagging"
    input_size = 32
    seq_len = SeqLen(default=12, min=3, max=60, unit="words (about)")
    metric = Metric("name F1", higher_is_better=True)
    baseline_name = "tag every word found in the name lists"
    classes = NAME_TAGS
    unknown_name_rate = 0.1  # share of names (and of marked words) shown as <unk> in training

    def __init__(self) -> None:
        words = FIRST + AMBIGUOUS + SURNAMES + [w for ws in SLOTS.values() for w in ws]
        for t in TEMPLATES + OPENERS + PERSON_RESTS + [r for rs in THING_RESTS.values()
                                                         for r in rs]:
            words += [w for w in t.split() if "{" not in w]
        self.vocab = Vocab(words + ["."])
        self.name_words = set(FIRST) | set(AMBIGUOUS) | set(SURNAMES)

    # -- the grammar -------------------------------------------------------------------------
    def person(self, rng, firsts: list[str]) -> list[str]:
        first = pick(rng, firsts)
        return [first, pick(rng, SURNAMES)] if rng.random() < SURNAME_SHARE else [first]

    def fill(self, rng, template: str) -> Passage:
        """A template's slots filled; nothing in it is marked decided after."""
        out = Passage([], [], [])
        for slot in template.split():
            if slot in ("{N}", "{P}"):
                person = self.person(rng, FIRST if slot == "{N}" else FIRST + AMBIGUOUS)
                out.extend(Passage(person, [1] * len(person), [False] * len(person)))
            elif slot == "{S}":
                out.extend(Passage([pick(rng, SURNAMES)], [1], [False]))
            else:
                out.extend(Passage([pick(rng, SLOTS[slot]) if slot in SLOTS else slot], [0],
                                   [False]))
        return out

    def decided_after(self, rng) -> Passage:
        """Opener, ambiguous word, then a coin decides whether the rest makes it a person."""
        opener = pick(rng, OPENERS).split()
        word = pick(rng, AFTER_WORDS)
        out = Passage(opener, [0] * len(opener), [False] * len(opener))
        if rng.random() < 0.5:
            surname = [pick(rng, SURNAMES)] if rng.random() < SURNAME_SHARE else []
            out.extend(Passage([word, *surname], [1] * (1 + len(surname)),
                               [True] + [False] * len(surname)))
            out.extend(self.fill(rng, pick(rng, PERSON_RESTS)))
        else:
            out.extend(Passage([word], [0], [True]))
            out.extend(self.fill(rng, pick(rng, THING_RESTS[word])))
        return out

    def sentence(self, rng) -> Passage:
        if rng.random() < AFTER_SHARE:
            return self.decided_after(rng)
        return self.fill(rng, pick(rng, TEMPLATES))

    def passage(self, rng, words: int, unknown_rate: float) -> Passage:
        """Sentences joined by "." until about `words` words; some names become <unk>."""
        out = self.sentence(rng)
        while len(out.words) < words:
            out.extend(Passage(["."], [0], [False]))
            out.extend(self.sentence(rng))
        if unknown_rate:  # mostly names, sometimes other words: context must decide
            out.words = [
                UNK if rng.random() < (unknown_rate if tag or after else unknown_rate / 4) else w
                for w, tag, after in zip(out.words, out.tags, out.after)]
        return out

    def text(self, rng, words: int, unknown_rate: float) -> tuple[list[str], list[int]]:
        """The words and tags of `passage`."""
        out = self.passage(rng, words, unknown_rate)
        return out.words, out.tags

    # -- batches, baseline, scores -----------------------------------------------------------
    def make_batch(self, passages: list[Passage]) -> Batch:
        ids, lengths = pad_ids([self.vocab.ids(p.words) for p in passages])
        targets, _ = pad_ids([p.tags for p in passages], fill=IGNORE)
        after, _ = pad_ids([[int(a) for a in p.after] for p in passages], fill=0)
        return Batch(ids, targets, lengths, {"decided_after": after.bool()})

    def batch(self, rng, batch_size, seq_len=None) -> Batch:
        longest = self.seq_len.resolve(seq_len)
        lengths = rng.integers(self.seq_len.min, longest + 1, size=batch_size)
        return self.make_batch([self.passage(rng, int(n), self.unknown_name_rate)
                                for n in lengths])

    def baseline(self, batch) -> float:
        """F1 of tagging every word that is in a name list, whatever its context."""
        name_ids = torch.tensor(sorted(self.vocab.index[w] for w in self.name_words))
        guess = torch.isin(batch.inputs, name_ids).long()
        return token_f1(guess, batch.targets)

    def extra_scores(self, model, predictions, batch) -> dict:
        """Accuracy and name F1 on the words decided only by what follows them, and on every
        other real word: {"decided_after": {...}, "rest": {...}}, each with "words" (how many)
        and, where there are any, "accuracy", "name_f1" and "name_share" (the share of them
        that are names; on the words decided after, a reader of the left context alone can do
        no better than max(share, 1 - share), about 0.5)."""
        guess = predictions.argmax(-1)
        real = batch.targets != IGNORE
        after = batch.info["decided_after"] & real
        return {"decided_after": _part_scores(guess, batch.targets, after),
                "rest": _part_scores(guess, batch.targets, real & ~after)}

    # -- single sequences --------------------------------------------------------------------
    def sample(self, seed: int, seq_len: int | None = None) -> Example:
        out = self.passage(rng_for(seed, STREAM_SAMPLE), self.seq_len.resolve(seq_len), 0.0)
        return Example(torch.tensor(self.vocab.ids(out.words)), torch.tensor(out.tags),
                       out.words, info={"decided_after": _positions(out.after)})

    def encode(self, text: str) -> Example:
        """Typed text; info["decided_after"] marks where this task's grammar leaves a word to
        what follows: an ambiguous word that opens a sentence, alone or after an opener."""
        check_text(text)
        words = tokenize(text)
        if not words:
            raise ValueError('type a sentence, e.g. "rose took him to a nice restaurant"')
        if len(words) > 400:
            raise ValueError(f"at most 400 words, got {len(words)}")
        ids, unknown = self.vocab.encode(words)
        return Example(ids, None, words, unknown,
                       info={"decided_after": _positions(self.left_silent(words))})

    @staticmethod
    def left_silent(words: list[str]) -> list[bool]:
        """For each word: whether it is an ambiguous word where the words before it say nothing
        (a sentence's first word, or the word after one of the openers)."""
        out = [False] * len(words)
        start = 0
        for i in range(len(words) + 1):
            if i < len(words) and words[i] not in ".!?":
                continue
            sentence = words[start:i]
            for opener in OPENER_WORDS:
                k = len(opener)
                if sentence[:k] == opener and k < len(sentence):
                    out[start + k] = sentence[k] in AFTER_WORDS
                    break
            start = i + 1
        return out

    def marks_note(self, example: Example) -> str:
        marked = example.info.get("decided_after") or []
        if not marked:
            return ""
        named = [f"“{example.tokens[t]}” (step {t})" for t in marked[:6]]
        if len(marked) > 6:
            named.append(f"{len(marked) - 6} more")
        words = named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"
        verb = "is a name" if len(marked) == 1 else "are names"
        return (f"Whether {words} {verb}, only the words after decide: a one-direction "
                "network tags such a word before it has read them, so it can only guess; a "
                "bidirectional network's reverse direction has read them already.")

    def target_text(self, example: Example) -> str:
        """The names the example's tags mark, in the words `describe` uses."""
        if example.target is None:
            return "—"
        tags = torch.as_tensor(example.target).reshape(-1).tolist()
        names = [w for w, t in zip(example.tokens, tags) if t == 1]
        return "names: " + (", ".join(names) if names else "none")

    def describe(self, prediction, example=None) -> str:
        tags = prediction.argmax(-1).tolist()
        if example is None:
            return " ".join(NAME_TAGS[t] for t in tags)
        names = [w for w, t in zip(example.tokens, tags) if t == 1]
        return "names: " + (", ".join(names) if names else "none")


def _positions(flags: list[bool]) -> list[int]:
    return [i for i, f in enumerate(flags) if f]


def _part_scores(guess: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> dict:
    words = int(mask.sum())
    out: dict = {"words": words}
    if words:
        truth = targets[mask]
        out["name_share"] = float((truth == 1).float().mean())
        out["accuracy"] = float((guess[mask] == truth).float().mean())
        out["name_f1"] = token_f1(guess[mask], truth)
    return out
