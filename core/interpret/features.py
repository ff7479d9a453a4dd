"""Step features for unit search: a number (or 0/1) per step of every held-out sequence, which a
unit's h or c may follow.

    names = builtin_names("agreement")        # ["the subject is plural", ...]
    feature = builtin_feature(batch, "the subject is plural")
    feature.values                            # (B, T) float64, NaN where it is not defined
    token_feature(batch, words="cat, cats")   # 1 where the token is one of the words
    token_feature(batch, pattern=r"s$")       # 1 where the token matches (re.search)
    inside_quotes(batch)                      # 1 from an opening quote up to its closing one
    code_states("def f(x):")                  # Python source per character: strings, comments,
                                              # bracket depth, position in the line, indentation

Values are NaN at padded steps and wherever a feature has no value (before the subject, before
the first marker); search counts only the steps where it is defined. Built-ins come from what
the task's generator knows about each sequence (HeldoutBatch.info, tokens, targets), never from
the model.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from core.interpret.heldout import HeldoutBatch
from core.tasks.agreement import PLURAL, SINGULAR, TRANSITIVE
from core.tasks.base import IGNORE
from core.tasks.charlm import PARTS, decode, load_text, text_ids
from core.tasks.sentiment import GOOD_TURN, TURN


@dataclass(frozen=True)
class StepFeature:
    """A feature over a batch's steps: (B, T) float64 values, NaN where undefined."""

    name: str
    values: np.ndarray
    binary: bool  # values are 0 or 1 (a one-unit probe can be fitted)
    description: str = ""

    @property
    def defined(self) -> np.ndarray:
        """(B, T) bool: the steps where the feature has a value."""
        return np.isfinite(self.values)

    @property
    def steps(self) -> int:
        return int(self.defined.sum())


def _empty(batch: HeldoutBatch) -> np.ndarray:
    return np.full((len(batch), batch.steps), np.nan)


def _positions(batch: HeldoutBatch) -> np.ndarray:
    return np.broadcast_to(np.arange(batch.steps, dtype=np.float64), (len(batch), batch.steps))


def _masked(batch: HeldoutBatch, values: np.ndarray, defined: np.ndarray | None = None
            ) -> np.ndarray:
    keep = batch.valid if defined is None else batch.valid & defined
    return np.where(keep, values, np.nan).astype(np.float64)


# -- agreement ---------------------------------------------------------------------------------

NOUN_WORDS = SINGULAR | PLURAL


def _agreement_info(batch: HeldoutBatch) -> np.ndarray:
    if "subject_index" not in batch.info:
        raise ValueError("this batch does not say where each subject is: make it with "
                         "heldout_batch('agreement', ...) or heldout_by_distance(...)")
    return batch.info["subject_index"][:, None]


def subject_plural(batch: HeldoutBatch) -> np.ndarray:
    subject = _agreement_info(batch)
    label = batch.info["label"][:, None].astype(np.float64)
    return _masked(batch, np.broadcast_to(label, (len(batch), batch.steps)),
                   _positions(batch) >= subject)


def steps_since_subject(batch: HeldoutBatch) -> np.ndarray:
    subject = _agreement_info(batch)
    since = _positions(batch) - subject
    return _masked(batch, since, since >= 0)


def after_subject(batch: HeldoutBatch) -> np.ndarray:
    subject = _agreement_info(batch)
    return _masked(batch, (_positions(batch) > subject).astype(np.float64))


def relative_clause_steps(words: list[str], start: int) -> list[bool]:
    """Which words from `start` on lie inside a relative clause of the agreement grammar:
    "that the dogs chased" (object: up to its verb) or "that saw the birds" (subject: up to its
    noun), "that" included."""
    inside = [False] * len(words)
    i = start
    while i < len(words):
        if words[i] != "that":
            i += 1
            continue
        subject_clause = i + 1 < len(words) and words[i + 1] in TRANSITIVE
        ends = NOUN_WORDS if subject_clause else set(TRANSITIVE)
        end = next((j for j in range(i + 1, len(words)) if words[j] in ends), len(words) - 1)
        for j in range(i, end + 1):
            inside[j] = True
        i = end + 1
    return inside


def inside_relative_clause(batch: HeldoutBatch) -> np.ndarray:
    subject = _agreement_info(batch)[:, 0]
    values = np.zeros((len(batch), batch.steps))
    for b, words in enumerate(batch.tokens):
        # the openers' "that" ("i know that ...") comes before the subject: not a clause
        values[b, : len(words)] = relative_clause_steps(words, int(subject[b]) + 1)
    return _masked(batch, values)


def last_noun_plural(batch: HeldoutBatch) -> np.ndarray:
    values = _empty(batch)
    for b, words in enumerate(batch.tokens):
        current = np.nan
        for t, word in enumerate(words):
            if word in NOUN_WORDS:
                current = float(word in PLURAL)
            values[b, t] = current
    return values


# -- adding ------------------------------------------------------------------------------------


def _markers(batch: HeldoutBatch) -> tuple[np.ndarray, np.ndarray]:
    if "first" not in batch.info or "second" not in batch.info:
        raise ValueError("this batch does not say where the markers are: make it with "
                         "heldout_batch('adding', ...)")
    return batch.info["first"][:, None], batch.info["second"][:, None]


def marker_seen(batch: HeldoutBatch) -> np.ndarray:
    first, _ = _markers(batch)
    return _masked(batch, (_positions(batch) >= first).astype(np.float64))


def markers_seen(batch: HeldoutBatch) -> np.ndarray:
    first, second = _markers(batch)
    t = _positions(batch)
    return _masked(batch, (t >= first).astype(np.float64) + (t >= second))


def steps_since_first_marker(batch: HeldoutBatch) -> np.ndarray:
    first, _ = _markers(batch)
    since = _positions(batch) - first
    return _masked(batch, since, since >= 0)


def first_marked_value(batch: HeldoutBatch) -> np.ndarray:
    first, _ = _markers(batch)
    inputs = batch.batch.inputs  # (B, T, 2): value, marker
    value = inputs[np.arange(len(batch)), first[:, 0], 0].double().numpy()[:, None]
    return _masked(batch, np.broadcast_to(value, (len(batch), batch.steps)),
                   _positions(batch) >= first)


# -- names and sentiment -----------------------------------------------------------------------


def tagged_name(batch: HeldoutBatch) -> np.ndarray:
    tags = batch.targets.numpy().astype(np.float64)
    return _masked(batch, tags, tags != IGNORE)


TURN_WORDS = set(TURN) | set(GOOD_TURN)


def turns_so_far(batch: HeldoutBatch) -> np.ndarray:
    values = _empty(batch)
    for b, words in enumerate(batch.tokens):
        values[b, : len(words)] = np.cumsum([w in TURN_WORDS for w in words])
    return values


def verdict_so_far(batch: HeldoutBatch) -> np.ndarray:
    """1 where the opinion standing so far is positive: the opening opinion, flipped at each
    turn's connective. Defined from the end of the opening clause (the first "," or ".") on,
    where the opening opinion has been read in full."""
    labels = batch.targets.numpy()
    values = _empty(batch)
    for b, words in enumerate(batch.tokens):
        turns = np.cumsum([w in TURN_WORDS for w in words])
        opening = int(labels[b]) ^ int(turns[-1] % 2)  # the label is the opening flipped per turn
        ends = [t for t, w in enumerate(words) if w in (",", ".")]
        if ends:
            values[b, ends[0]: len(words)] = (opening ^ (turns[ends[0]:] % 2)).astype(np.float64)
    return values


# -- charlm (Python source) --------------------------------------------------------------------

OPENING, CLOSING, QUOTES = "([{", ")]}", "'\""
#: CodeStates.string: 0 in code or a comment, 1 in a one-line string, 2 in a triple-quoted one.
ONE_LINE, TRIPLE = 1, 2


@dataclass(frozen=True)
class CodeStates:
    """Per character of a Python text, the state right after reading it, each (N,):

    string: 0 outside strings, ONE_LINE inside '...' or "...", TRIPLE inside a triple-quoted
        string: from its first quote character (included) to its last (not included: once the
        closing quote is read the string is over). A prefix (r, b, f) is outside.
    comment: True from "#" to the end of its line (the newline is outside).
    depth: how many brackets ( [ { are open in code (an opening bracket counts at itself, a
        closing one no longer does); brackets in strings and comments do not count.
    column: characters of the line read so far: 1 at its first character, 0 at the newline
        before it (the text's first line counts from the text's start).
    indent: spaces at the start of the line read so far: 0 at the newline, then one more per
        leading space, and that count for the rest of the line.
    """

    string: np.ndarray
    comment: np.ndarray
    depth: np.ndarray
    column: np.ndarray
    indent: np.ndarray


def code_states(text: str) -> CodeStates:
    """Scan `text` as Python source from its start (in code, at the start of a line). A text
    cut out of a longer one is read as if it began there: a fragment that starts inside a
    string reads its closing quote as an opening one. tests/test_charlm_features.py holds the
    strings and comments equal to Python's own tokenizer on the shipped text."""
    n = len(text)
    string = np.zeros(n, np.int8)
    comment = np.zeros(n, bool)
    depth = np.zeros(n, np.int64)
    delimiter = ""  # the open string's closing quote(s), "#" in a comment, "" in code
    level = 0
    i = 0
    while i < n:
        ch = text[i]
        if not delimiter:
            if ch == "#":
                delimiter = "#"
                comment[i] = True
            elif ch in QUOTES:
                delimiter = ch * 3 if text.startswith(ch * 3, i) else ch
                width = len(delimiter)
                string[i: i + width] = TRIPLE if width == 3 else ONE_LINE
                depth[i: i + width] = level
                i += width
                continue
            elif ch in OPENING:
                level += 1
            elif ch in CLOSING:
                level = max(0, level - 1)  # a fragment may close what it never opened
        elif delimiter == "#":
            if ch == "\n":
                delimiter = ""
            else:
                comment[i] = True
        else:
            kind = TRIPLE if len(delimiter) == 3 else ONE_LINE
            if ch == "\\":  # the escaped character is inside too, a quote or a newline
                string[i: i + 2] = kind
                depth[i: i + 2] = level
                i += 2
                continue
            if text.startswith(delimiter, i):
                width = len(delimiter)
                string[i: i + width - 1] = kind
                depth[i: i + width] = level
                delimiter = ""
                i += width
                continue
            if ch == "\n" and kind == ONE_LINE:
                delimiter = ""  # an unclosed one-line string (a fragment's): the line ends it
            else:
                string[i] = kind
        depth[i] = level
        i += 1
    chars = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32) if n else np.zeros(0)
    newline = chars == ord("\n")
    index = np.arange(n)
    last_newline = np.maximum.accumulate(np.where(newline, index, -1)) if n else index
    column = index - last_newline
    # leading spaces: a line's characters are leading while none but spaces came before them
    line = np.cumsum(newline)
    not_space = (chars != ord(" ")) & ~newline
    first_other = np.full(int(line[-1]) + 1 if n else 1, n, dtype=np.int64)
    np.minimum.at(first_other, line[not_space], index[not_space])
    indent = np.minimum(index, first_other[line] - 1) - last_newline
    indent = np.where(newline, 0, np.maximum(indent, 0))
    return CodeStates(string, comment, depth, column.astype(np.int64), indent.astype(np.int64))


@functools.lru_cache(maxsize=None)
def text_states(part: str) -> CodeStates:
    """The code states of a whole shipped text ("train" or "heldout"), scanned once."""
    return code_states(load_text(part))


@functools.lru_cache(maxsize=None)
def shipped_ids(part: str) -> np.ndarray:
    """The token ids of a whole shipped text, to check a window against."""
    return text_ids(load_text(part))


def _code_values(batch: HeldoutBatch, pick: Callable[[CodeStates], np.ndarray]) -> np.ndarray:
    """(B, T) values of one code state at every real step. Windows of the shipped text (with
    "start" and "part" in the batch's info, as the task's batches have) take the state from
    the whole text, so a window that begins inside a docstring is inside it from its first
    character; other sequences are scanned from their own start."""
    values = np.zeros((len(batch), batch.steps))
    ids = batch.batch.inputs.numpy()
    if "start" in batch.info and "part" in batch.info:
        offsets = np.arange(batch.steps)
        for p in np.unique(batch.info["part"]):
            rows = np.flatnonzero(batch.info["part"] == p)
            text_ids = shipped_ids(PARTS[int(p)])
            at = np.minimum(batch.info["start"][rows, None] + offsets[None, :], len(text_ids) - 1)
            real = batch.valid[rows]
            if not (text_ids[at] == ids[rows])[real].all():
                raise ValueError("this batch's windows are not the shipped text at the starts "
                                 "its info records: make it with the charlm task's heldout()")
            values[rows] = pick(text_states(PARTS[int(p)]))[at]
    else:
        for b, length in enumerate(batch.lengths):
            values[b, :length] = pick(code_states(decode(ids[b, :length])))
    return _masked(batch, values)


def in_string(batch: HeldoutBatch) -> np.ndarray:
    return _code_values(batch, lambda s: s.string > 0)


def in_one_line_string(batch: HeldoutBatch) -> np.ndarray:
    return _code_values(batch, lambda s: s.string == ONE_LINE)


def in_comment(batch: HeldoutBatch) -> np.ndarray:
    return _code_values(batch, lambda s: s.comment)


def in_string_or_comment(batch: HeldoutBatch) -> np.ndarray:
    return _code_values(batch, lambda s: (s.string > 0) | s.comment)


def in_brackets(batch: HeldoutBatch) -> np.ndarray:
    return _code_values(batch, lambda s: s.depth > 0)


def bracket_depth(batch: HeldoutBatch) -> np.ndarray:
    return _code_values(batch, lambda s: s.depth)


def line_position(batch: HeldoutBatch) -> np.ndarray:
    return _code_values(batch, lambda s: s.column)


def line_indent(batch: HeldoutBatch) -> np.ndarray:
    return _code_values(batch, lambda s: s.indent)


# -- the registry ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Builtin:
    compute: Callable[[HeldoutBatch], np.ndarray]
    binary: bool
    description: str


BUILTINS: dict[str, dict[str, _Builtin]] = {
    "agreement": {
        "the subject is plural": _Builtin(
            subject_plural, True, "1 if the subject noun is plural, 0 if singular; from the "
            "subject noun on (undefined before it)"),
        "steps since the subject": _Builtin(
            steps_since_subject, False, "0 at the subject noun, 1 at the next word, ...; "
            "undefined before it"),
        "between subject and verb": _Builtin(
            after_subject, True, "1 after the subject noun (every word up to the verb slot), "
            "0 up to and at it"),
        "inside a relative clause": _Builtin(
            inside_relative_clause, True, "1 from a relative clause's \"that\" to its last word "
            "(\"that the dogs chased\", \"that saw the birds\"), 0 elsewhere"),
        "the last noun is plural": _Builtin(
            last_noun_plural, True, "1 if the most recent noun (subject or attractor) is plural; "
            "undefined before the first noun"),
    },
    "adding": {
        "a marker seen so far": _Builtin(
            marker_seen, True, "1 from the first marked step on, 0 before it"),
        "markers seen so far": _Builtin(
            markers_seen, False, "0, 1 or 2 marked steps read so far (the current one counts)"),
        "steps since the first marker": _Builtin(
            steps_since_first_marker, False, "0 at the first marked step, 1 after it, ...; "
            "undefined before it"),
        "the first marked value": _Builtin(
            first_marked_value, False, "the value the model must remember, from its step on; "
            "undefined before it"),
    },
    "names": {
        "the word is tagged a name": _Builtin(
            tagged_name, True, "the task's own tag: 1 for a word of a person's name"),
    },
    "sentiment": {
        "the verdict so far is positive": _Builtin(
            verdict_so_far, True, "the opening opinion, flipped at every turn (\"but\", "
            "\"however\", \"sadly\", \"luckily\"); from the end of the opening clause on"),
        "turns so far": _Builtin(
            turns_so_far, False, "how many turns have been read (the connective counts)"),
    },
    "charlm": {
        "inside a string": _Builtin(
            in_string, True, "1 inside a string literal, one-line or triple-quoted (docstrings "
            "too), from its opening quote to the character before its closing quote"),
        "inside a one-line string": _Builtin(
            in_one_line_string, True, "1 inside '...' or \"...\" (not triple-quoted), from "
            "the opening quote to the character before the closing one"),
        "inside a comment": _Builtin(
            in_comment, True, "1 from \"#\" to the end of its line (the newline is outside)"),
        "inside a string or a comment": _Builtin(
            in_string_or_comment, True, "1 in a string or a comment (prose, mostly: docstrings "
            "and comments), 0 in code"),
        "inside brackets": _Builtin(
            in_brackets, True, "1 while a bracket ( [ { of the code is open (brackets in "
            "strings and comments do not count)"),
        "bracket depth": _Builtin(
            bracket_depth, False, "how many brackets ( [ { of the code are open"),
        "position in the line": _Builtin(
            line_position, False, "characters of the line read so far: 1 at its first "
            "character, 0 at the newline before it"),
        "indentation of the line": _Builtin(
            line_indent, False, "spaces at the start of the line read so far: 0 at the "
            "newline, one more per leading space, then that count to the line's end"),
    },
}


def builtin_names(task: str) -> list[str]:
    """The built-in features of a task, in the order the lab lists them ([] for none)."""
    return list(BUILTINS.get(task, {}))


def builtin_feature(batch: HeldoutBatch, name: str) -> StepFeature:
    found = BUILTINS.get(batch.task, {}).get(name)
    if found is None:
        offered = builtin_names(batch.task)
        raise ValueError(f"the {batch.task} task has no built-in feature {name!r}; "
                         + (f"it has: {', '.join(offered)}" if offered else "it has none: "
                            "state one as a word list or a pattern"))
    return StepFeature(name, found.compute(batch), found.binary, found.description)


# -- token predicates --------------------------------------------------------------------------


def word_list(words: str | Iterable[str]) -> list[str]:
    """A typed word list ("cat, cats dog") or an iterable of words: the words, without repeats."""
    if isinstance(words, str):
        words = re.split(r"[\s,]+", words.strip())
    listed = list(dict.fromkeys(w for w in words if w))
    if not listed:
        raise ValueError("type at least one word, e.g. \"cats, dogs\"")
    return listed


def token_feature(batch: HeldoutBatch, words: str | Iterable[str] | None = None,
                  pattern: str | None = None) -> StepFeature:
    """1 where the step's token is one of `words` (exact; lower-cased where every token of the
    batch is, as the word tasks' tokenizer makes them) or matches the regular expression
    `pattern` (re.search, case-sensitive: anchor it with ^ and $ to match whole tokens), 0 at
    every other real step."""
    if (words is None) == (pattern is None):
        raise ValueError("state the feature as a word list or as a pattern, one of the two")
    if words is not None:
        listed = word_list(words)
        if all(token == token.lower() for tokens in batch.tokens for token in tokens):
            listed = [w.lower() for w in listed]  # the task lower-cases what it reads
        wanted = set(listed)
        match = wanted.__contains__
        name = "the token is one of " + ", ".join(listed)
    else:
        if not isinstance(pattern, str) or not pattern:
            raise ValueError("type a pattern, e.g. ing$ for words ending in \"ing\"")
        try:
            compiled = re.compile(pattern)
        except re.error as error:
            raise ValueError(f"{pattern!r} is not a valid pattern: {error}") from None
        match = (lambda token: compiled.search(token) is not None)
        name = f"the token matches {pattern}"
    values = np.zeros((len(batch), batch.steps))
    for b, tokens in enumerate(batch.tokens):
        values[b, : len(tokens)] = [match(token) for token in tokens]
    return StepFeature(name, _masked(batch, values), True, name)


def inside_quotes(batch: HeldoutBatch, quote: str = '"') -> StepFeature:
    """1 from an opening quote token to the step before its closing one (the opening quote
    included, the closing one not), 0 elsewhere: Karpathy et al.'s quote-detecting cell."""
    if not quote:
        raise ValueError("the quote must be a character, e.g. \"")
    values = np.zeros((len(batch), batch.steps))
    for b, tokens in enumerate(batch.tokens):
        values[b, : len(tokens)] = np.cumsum([token == quote for token in tokens]) % 2
    name = f"inside {quote}…{quote}"
    return StepFeature(name, _masked(batch, values), True, name)
