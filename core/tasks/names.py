"""Person-name tagging, many-to-many: one tag per word (name / other).

Sentences come from templates ("he took rose to a nice restaurant for dinner", "she gave anna a
rose"). Many first names are also ordinary words (rose, will, may, june, jack, bill, mark,
grace, hope, dawn, lily, april, brown), so a word list alone gets them wrong: the model has to use
the words before (a one-directional RNN sees only those; every template is built so that they
decide). Some names are replaced by <unk> in training, so the model also learns to tag names it
has never seen ("yesterday zelda called tom") from context alone.
"""

from __future__ import annotations

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

# {P}: a person (tagged), everything else: other. Templates only use ambiguous words as ordinary
# words where the words before them already tell (after "a", "in", "at", "the", "i", "we" ...).
TEMPLATES = [
    "{P} met {P} at the {place}",
    "yesterday {P} called {P}",
    "he took {P} to a nice restaurant for dinner",
    "{P} and {P} went to {city} in {month}",
    "she gave {P} a {flower}",
    "i hope {P} will come on {day}",
    "we hope {P} can visit {city}",
    "{P} paid the bill at the {place}",
    "{P} fixed the car with a jack",
    "my friend {P} lives in {city}",
    "{P} danced with grace",
    "we left at dawn with {P}",
    "{P} made a mark on the map",
    "the {colour} box belongs to {P}",
    "{P} will meet {P} in {month}",
    "i saw {P} near the {place} on {day}",
    "the teacher asked {P} a question",
    "{P} wrote to {P} from {city}",
    "{P} said that {P} will call",
    "a {flower} for {P}",
    "there is hope for {P}",
    "mr {S} met mrs {S} in {city}",
]
NAME_TAGS = ("other", "name")


class NamesTask(Task):
    name = "names"
    title = "Name tagging"
    description = (
        "Tag every word that is part of a person's name. Many names are also ordinary words "
        "(\"he took rose to dinner\" / \"she gave anna a rose\"), so the model has to read the "
        "words before them. Unknown words are tagged from context too."
    )
    kind = "tagging"
    input_size = 32
    seq_len = SeqLen(default=12, min=3, max=60, unit="words (about)")
    metric = Metric("name F1", higher_is_better=True)
    baseline_name = "tag every word found in the name lists"
    classes = NAME_TAGS
    unknown_name_rate = 0.1  # share of names shown as <unk> in training

    def __init__(self) -> None:
        words = FIRST + AMBIGUOUS + SURNAMES + CITIES + PLACES + DAYS + MONTHS + FLOWERS + COLOURS
        for t in TEMPLATES:
            words += [w for w in t.split() if "{" not in w]
        self.vocab = Vocab(words + ["."])
        self.name_words = set(FIRST) | set(AMBIGUOUS) | set(SURNAMES)

    def person(self, rng) -> list[str]:
        first = pick(rng, FIRST + AMBIGUOUS)
        return [first, pick(rng, SURNAMES)] if rng.random() < 0.3 else [first]

    def sentence(self, rng) -> tuple[list[str], list[int]]:
        words: list[str] = []
        tags: list[int] = []
        for slot in pick(rng, TEMPLATES).split():
            if slot == "{P}":
                person = self.person(rng)
                words += person
                tags += [1] * len(person)
                continue
            if slot == "{S}":
                words.append(pick(rng, SURNAMES))
                tags.append(1)
                continue
            if slot.startswith("{"):
                options = {"{place}": PLACES, "{city}": CITIES, "{month}": MONTHS,
                           "{flower}": FLOWERS, "{day}": DAYS, "{colour}": COLOURS}[slot]
                slot = pick(rng, options)
            words.append(slot)
            tags.append(0)
        return words, tags

    def text(self, rng, words: int, unknown_rate: float) -> tuple[list[str], list[int]]:
        """Sentences joined by "." until about `words` words; some names become <unk>."""
        out, tags = self.sentence(rng)
        while len(out) < words:
            more, more_tags = self.sentence(rng)
            out += [".", *more]
            tags += [0, *more_tags]
        if unknown_rate:  # mostly names, sometimes other words: context must decide
            out = [UNK if rng.random() < (unknown_rate if tag else unknown_rate / 4) else w
                   for w, tag in zip(out, tags)]
        return out, tags

    def make_batch(self, texts: list[tuple[list[str], list[int]]]) -> Batch:
        ids, lengths = pad_ids([self.vocab.ids(w) for w, _ in texts])
        targets, _ = pad_ids([t for _, t in texts], fill=IGNORE)
        return Batch(ids, targets, lengths)

    def batch(self, rng, batch_size, seq_len=None) -> Batch:
        longest = self.seq_len.resolve(seq_len)
        lengths = rng.integers(self.seq_len.min, longest + 1, size=batch_size)
        return self.make_batch([self.text(rng, int(n), self.unknown_name_rate) for n in lengths])

    def baseline(self, batch) -> float:
        """F1 of tagging every word that is in a name list, whatever its context."""
        name_ids = torch.tensor(sorted(self.vocab.index[w] for w in self.name_words))
        guess = torch.isin(batch.inputs, name_ids).long()
        return token_f1(guess, batch.targets)

    def sample(self, seed: int, seq_len: int | None = None) -> Example:
        words, tags = self.text(rng_for(seed, STREAM_SAMPLE), self.seq_len.resolve(seq_len), 0.0)
        return Example(torch.tensor(self.vocab.ids(words)), torch.tensor(tags), words)

    def encode(self, text: str) -> Example:
        check_text(text)
        words = tokenize(text)
        if not words:
            raise ValueError('type a sentence, e.g. "he took rose to a nice restaurant"')
        if len(words) > 400:
            raise ValueError(f"at most 400 words, got {len(words)}")
        ids, unknown = self.vocab.encode(words)
        return Example(ids, None, words, unknown)

    def describe(self, prediction, example=None) -> str:
        tags = prediction.argmax(-1).tolist()
        if example is None:
            return " ".join(NAME_TAGS[t] for t in tags)
        names = [w for w, t in zip(example.tokens, tags) if t == 1]
        return "names: " + (", ".join(names) if names else "none")
