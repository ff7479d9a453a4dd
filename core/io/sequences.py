"""A practitioner's own input for their own recurrent model (issue #15): a vocabulary file and
text read through it, token ids typed by hand, numbers typed one step per line, or a matrix of
numbers uploaded as CSV, NPY or NPZ. Everything is read in memory, by stated rules; anything
that cannot be read exactly is refused with a `ValueError` whose message says where and why.

    vocabulary = read_vocabulary(data, "vocab.json")      # Vocabulary
    text = tokenize("to be or not", vocabulary, "words")  # TokenizedText: ids, tokens, unknown
    ids = parse_ids("12, 5, 7", vocabulary.size)          # (12, 5, 7)
    values = parse_rows("0.1 0.2\\n0.3 0.4", 2)           # (T, F) float32
    matrix = read_matrix(data, "x.npz", 3, array="x")     # Matrix: (T, F) float32 and its source
    values, note = standardise(matrix.values)             # only when the visitor asks for it

Messages are plain text on one line: what came from the visitor's file or text (a token, an
array's name, a file name) is shown by `quoted` (printable, short, inert in markdown), and a
whitespace token by its name ("space", "newline").
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field

import numpy as np

from core.io.loading import quoted
from core.io.tables import read_table
from core.limits import FLOAT32_MAX, LIMITS, check_seq_len, check_text
from core.text import listing

#: Tokens that stand for every token a vocabulary lacks, in the order one is looked for.
UNKNOWN_TOKENS = ("<unk>", "<UNK>", "[UNK]", "UNK", "<oov>")
#: A vocabulary of more tokens than this is refused: an embedding that large is no recurrent
#: model this app can trace, and a mapping to id 10**12 must not allocate its gaps.
MAX_VOCABULARY = 1_000_000
#: How text is cut into steps.
READ_BY = ("characters", "words")
#: The files `read_matrix` reads.
MATRIX_EXTENSIONS = (".csv", ".tsv", ".txt", ".npy", ".npz")
#: A line of a plain-text vocabulary that is one of these stands for the character it names.
LINE_ESCAPES = {"\\n": "\n", "\\t": "\t", "\\r": "\r"}
#: How a step shows a whitespace character (TokenizedText.tokens).
STAND_INS = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}
#: How a message names a whitespace token (its quoted form would be blank).
TOKEN_NAMES = {" ": "space", "\n": "newline", "\t": "tab", "\r": "carriage return"}
LISTED = 5  # how many tokens a message lists
STEP_CHARS = 24  # how much of a word a step shows
FIELD_CHARS = 24  # how much of a typed value a message quotes

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_WHOLE = re.compile(r"[+-]?\d+", re.ASCII)
_NOT_FINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity",
               "-infinity"}
# A marker such as <pad> or [CLS]: special tokens, upper case in vocabularies of lower-case words.
_MARKER = re.compile(r"<[^<>]*>|\[[^\[\]]*\]")


# ---------------------------------------------------------------------------------------------
# Vocabulary


@dataclass(frozen=True)
class Vocabulary:
    """The model's tokens, indexed by id. `unknown_id`: the id of the token that stands for any
    other (one of `UNKNOWN_TOKENS`, or the one the file names), None when there is none.
    `missing`: ids a mapping left without a token; they hold "<id 7>" and no text reads as them.
    `source`: what the file was, in words ("JSON list of 65 tokens")."""

    tokens: tuple[str, ...]
    unknown_id: int | None = None
    source: str = ""
    missing: frozenset[int] = frozenset()
    _index: dict[str, int] = field(init=False, repr=False, compare=False)
    #: Whether its tokens, markers such as <pad> or [CLS] aside, are all lower case: text read
    #: through it is then lower-cased, since an upper-case letter could never be found.
    lowercase: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        index: dict[str, int] = {}
        for token_id, token in enumerate(self.tokens):
            if token_id not in self.missing:
                index.setdefault(token, token_id)
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "lowercase", _all_lowercase(index))

    @property
    def size(self) -> int:
        """How many ids the vocabulary spans (the model's embedding rows)."""
        return len(self.tokens)

    def id_of(self, token: str) -> int | None:
        """The token's id, or None when the vocabulary lacks it (never `unknown_id` for it)."""
        return self._index.get(token)


def read_vocabulary(data: bytes, filename: str) -> Vocabulary:
    """A vocabulary from an uploaded file, UTF-8 text in one of these shapes:

    - a JSON list of tokens: the token at position k has id k;
    - a JSON object of tokens to ids ({"a": 0, "b": 1}), or of ids to tokens ({"0": "a"}). Ids are
      distinct whole numbers from 0; an id with no token is a gap, held by "<id 7>", and the
      vocabulary spans the largest id plus one;
    - a Keras Tokenizer: `tokenizer.to_json()` (its `word_index`, and its `oov_token` as the
      unknown token) or `{"word_index": {...}}`; id 0, which Keras keeps for padding, is a gap;
    - a Hugging Face `tokenizer.json`: its `model.vocab` (an object of tokens to ids, or a
      Unigram list of [token, score] pairs), its `added_tokens`, its `unk_token` or `unk_id`.
      Text is then cut into whole words or characters, never into that tokenizer's pieces;
      `source` says so;
    - anything else (.txt, .vocab, any other file that is not a non-empty JSON list or object;
      .txt and .vocab are never read as JSON): one token per line, the first line id 0. A
      line's surrounding spaces are not part of its token, except on a line of nothing but
      whitespace, which is that whitespace: a line holding one space is the space token. A
      line that is exactly `\\n`, `\\t` or `\\r` (a backslash and a letter) is the newline,
      tab or carriage-return character (so no token can be those two characters themselves).
      An empty line is refused, since skipping it would shift every later id; empty lines at
      the end are not tokens. CRLF line ends are read.

    The unknown token is the one the file names (Keras, Hugging Face), else the first of
    `UNKNOWN_TOKENS` present. ValueError, with a message for the visitor, for an empty file, a
    file over the upload limit or `MAX_VOCABULARY` tokens, text that is not UTF-8, a token
    listed twice (the first such, with both ids), an id that is not a whole number, negative,
    or shared by two tokens."""
    if not data:
        raise ValueError("The vocabulary file is empty.")
    if len(data) > LIMITS.max_upload_bytes:
        raise ValueError(f"The vocabulary file is larger than {LIMITS.max_upload_bytes // 2**20} "
                         "MiB.")
    text = _utf8(data)
    parsed = _json_of(text, str(filename).lower())
    if parsed is None:
        return _vocabulary(*_from_lines(text), "text file", None)
    if isinstance(parsed, list):
        return _vocabulary(_from_list(parsed), frozenset(), "JSON list", None)
    if isinstance(parsed, dict):
        return _from_object(parsed)
    raise ValueError(f"A JSON vocabulary is a list of tokens or an object of tokens and ids; "
                     f"this file holds {_json_kind(parsed)}.")


def _utf8(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"The vocabulary file is not UTF-8 text (byte 0x{data[err.start]:02x} "
                         f"at position {err.start:,}): save it as UTF-8.") from None
    if "\x00" in text:  # a binary file, or UTF-16: never tokens
        raise ValueError("The vocabulary file holds NUL characters: it is a binary file, or "
                         "text not in UTF-8. Save it as UTF-8 text.")
    return text


def _json_of(text: str, name: str):
    """The parsed JSON, or None for a file read as lines: .txt and .vocab always; any other
    file but .json when it does not parse as a JSON list or object."""
    if name.endswith((".txt", ".vocab")):
        return None
    if not name.endswith(".json") and text.lstrip()[:1] not in ("[", "{"):
        return None
    try:
        parsed = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as err:
        if not name.endswith(".json"):
            return None
        raise ValueError(f"The vocabulary file is not valid JSON: {err.msg} (line {err.lineno}, "
                         f"column {err.colno}).") from None
    except RecursionError:
        raise ValueError("The vocabulary file's JSON is nested too deeply to be a vocabulary."
                         ) from None
    if not name.endswith(".json") and not (isinstance(parsed, (list, dict)) and parsed):
        return None  # "{" and "}" on two lines: a vocabulary of two characters
    return parsed


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object, refused when a key repeats: json keeps the last, which for a vocabulary
    would drop a token's first id unseen."""
    kept: dict = {}
    for key, value in pairs:
        if key in kept:
            if _is_id(kept[key]) and _is_id(value):
                raise ValueError(f"Token {token_label(key)} appears twice, with ids "
                                 f"{_id_text(kept[key])} and {_id_text(value)}.")
            raise ValueError(f"The key {token_label(key)} appears twice in one JSON object.")
        kept[key] = value
    return kept


def _json_kind(value) -> str:
    if isinstance(value, bool):
        return "true or false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _from_lines(text: str) -> tuple[list[str], frozenset[int]]:
    text = text.rstrip("\r\n")  # empty lines at the end are no tokens
    _check_count(text.count("\n") + 1)  # before a list of millions of lines is built
    lines = [line.removesuffix("\r") for line in text.split("\n")] if text else []
    if not lines:
        raise ValueError("The vocabulary file holds only empty lines.")
    tokens, first_line = [], {}
    for number, line in enumerate(lines, 1):
        if line == "":
            raise ValueError(
                f"Line {number:,} of the vocabulary file is empty. Each line is one token, whose "
                "id is its line number less one, so an empty line cannot be skipped: remove it, "
                "or write the newline token as \\n (a backslash and n).")
        token = LINE_ESCAPES.get(line) or (line.strip() or line)
        if token in first_line:
            earlier = first_line[token]
            raise ValueError(f"Token {token_label(token)} appears twice, with ids {earlier - 1:,} "
                             f"and {number - 1:,} (lines {earlier:,} and {number:,}).")
        first_line[token] = number
        tokens.append(token)
    return tokens, frozenset()


def _from_list(items: list) -> list[str]:
    if not items:
        raise ValueError("The vocabulary has no tokens: the JSON list is empty.")
    _check_count(len(items))
    first_id: dict[str, int] = {}
    for token_id, token in enumerate(items):
        if not isinstance(token, str):
            raise ValueError(f"The JSON list's entry for id {token_id:,} is "
                             f"{_json_kind(token)}, not a token: a vocabulary list holds strings.")
        if token in first_id:
            raise ValueError(f"Token {token_label(token)} appears twice, with ids "
                             f"{first_id[token]:,} and {token_id:,}.")
        first_id[token] = token_id
    return list(items)


def _from_object(obj: dict) -> Vocabulary:
    model = obj.get("model")
    if isinstance(model, dict) and "vocab" in model:
        return _from_hugging_face(obj, model)
    config = obj.get("config")
    if isinstance(config, dict) and "word_index" in config:
        return _from_keras(config)
    if "word_index" in obj and isinstance(obj["word_index"], (dict, str)):
        return _from_keras(obj)
    if obj and all(isinstance(value, str) for value in obj.values()):
        pairs = [(token, _id_key(key)) for key, token in obj.items()]
        tokens, missing = _from_pairs(pairs)
        return _vocabulary(tokens, missing, "JSON object of ids to tokens", None)
    tokens, missing = _from_pairs(list(obj.items()))
    return _vocabulary(tokens, missing, "JSON object of tokens to ids", None)


def _from_keras(config: dict) -> Vocabulary:
    word_index = config["word_index"]
    if isinstance(word_index, str):  # to_json() writes it as JSON inside a string
        try:
            word_index = json.loads(word_index, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as err:
            raise ValueError(f"The Keras Tokenizer's word_index is not valid JSON: {err.msg}."
                             ) from None
    if not isinstance(word_index, dict):
        raise ValueError(f"The Keras Tokenizer's word_index is {_json_kind(word_index)}, not an "
                         "object of words to ids.")
    tokens, missing = _from_pairs(list(word_index.items()))
    oov = config.get("oov_token")
    return _vocabulary(tokens, missing, "Keras Tokenizer word_index",
                       oov if isinstance(oov, str) else None)


def _from_hugging_face(obj: dict, model: dict) -> Vocabulary:
    vocab, kind = model["vocab"], model.get("type")
    kind = kind if isinstance(kind, str) else "unnamed"
    if isinstance(vocab, dict):
        pairs = list(vocab.items())
    elif isinstance(vocab, list) and all(isinstance(item, list) and item for item in vocab):
        pairs = [(item[0], token_id) for token_id, item in enumerate(vocab)]  # Unigram
    else:
        raise ValueError(f"The tokenizer.json's model.vocab is {_json_kind(vocab)}, neither an "
                         "object of tokens to ids nor a list of [token, score] pairs.")
    known = {token for token, _ in pairs}
    added = obj.get("added_tokens")
    for entry in added if isinstance(added, list) else ():
        if isinstance(entry, dict) and entry.get("content") not in known:
            pairs.append((entry.get("content"), entry.get("id")))
            known.add(entry.get("content"))
    tokens, missing = _from_pairs(pairs)
    unknown = model.get("unk_token")
    unk_id = model.get("unk_id")
    if not isinstance(unknown, str) and _is_id(unk_id) and 0 <= int(unk_id) < len(tokens):
        unknown = tokens[int(unk_id)]
    source = f"Hugging Face tokenizer.json ({quoted(kind, 24)} model)"
    cuts = ("" if kind == "WordLevel" else
            "; text is cut here into whole words or characters, not as its tokenizer cuts it")
    return _vocabulary(tokens, missing, source, unknown if isinstance(unknown, str) else None,
                       cuts)


def _is_id(value) -> bool:
    """Whether a JSON value is a whole number (5, or 5.0 as some writers give it)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _id_text(value) -> str:
    return f"{int(value):,}" if _is_id(value) else quoted(json.dumps(value), 24)


def _id_key(key: str) -> int:
    """An id written as an object's key ("7")."""
    if not _WHOLE.fullmatch(key.strip()) or len(key.strip()) > 12:
        raise ValueError(f"The key {token_label(key)} is not an id: a JSON object of ids to "
                         "tokens has whole numbers as its keys ({\"0\": \"a\", \"1\": \"b\"}).")
    return int(key)


def _from_pairs(pairs: list[tuple[object, object]]) -> tuple[list[str], frozenset[int]]:
    """Tokens indexed by id from (token, id) pairs: ids distinct whole numbers from 0, gaps
    filled by "<id k>" and returned as missing."""
    if not pairs:
        raise ValueError("The vocabulary has no tokens: the JSON object is empty.")
    by_id: dict[int, str] = {}
    first_id: dict[str, int] = {}
    for token, value in pairs:
        if not isinstance(token, str):
            raise ValueError(f"A token of the vocabulary is {_json_kind(token)}, not a string.")
        if not _is_id(value):
            raise ValueError(f"The id of token {token_label(token)} is "
                             f"{quoted(json.dumps(value), 24)}, not a whole number: each token's "
                             "id is 0, 1, 2, ...")
        token_id = int(value)
        if token_id < 0:
            raise ValueError(f"The id of token {token_label(token)} is {token_id:,}: ids start "
                             "at 0.")
        if token_id >= MAX_VOCABULARY:
            raise ValueError(f"The id of token {token_label(token)} is {token_id:,}: a "
                             f"vocabulary may have at most {MAX_VOCABULARY:,} tokens, ids 0 to "
                             f"{MAX_VOCABULARY - 1:,}.")
        if token_id in by_id:
            raise ValueError(f"Tokens {token_label(by_id[token_id])} and {token_label(token)} "
                             f"both have id {token_id:,}: each id belongs to one token.")
        if token in first_id:
            raise ValueError(f"Token {token_label(token)} appears twice, with ids "
                             f"{first_id[token]:,} and {token_id:,}.")
        by_id[token_id] = token
        first_id[token] = token_id
    size = max(by_id) + 1
    missing = frozenset(range(size)) - by_id.keys()
    return [by_id.get(k, f"<id {k}>") for k in range(size)], missing


def _check_count(count: int) -> None:
    if count > MAX_VOCABULARY:
        raise ValueError(f"The vocabulary has {count:,} tokens; at most {MAX_VOCABULARY:,} are "
                         "read.")


def _vocabulary(tokens: list[str], missing: frozenset[int], kind: str, named_unknown: str | None,
                cuts: str = "") -> Vocabulary:
    """The Vocabulary, its unknown token found and its source said."""
    probe = Vocabulary(tuple(tokens), None, "", missing)
    candidates = ([named_unknown] if named_unknown else []) + list(UNKNOWN_TOKENS)
    unknown_id = next((probe.id_of(t) for t in candidates if probe.id_of(t) is not None), None)
    known = len(tokens) - len(missing)
    noun = "token" if known == 1 else "tokens"
    source = f"{kind} of {known:,} {noun}"
    if kind == "text file":
        source += ", one per line"
    if missing:
        gaps = sorted(missing)
        shown = ", ".join(f"{k:,}" for k in gaps[:LISTED])
        more = f" and {len(gaps) - LISTED:,} more" if len(gaps) > LISTED else ""
        source += (f"; id {shown} has no token" if len(gaps) == 1
                   else f"; ids {shown}{more} have no token")
    if unknown_id is not None:
        source += f"; unknown token {token_label(tokens[unknown_id])} (id {unknown_id:,})"
    return Vocabulary(tuple(tokens), unknown_id, source + cuts, missing)


def _all_lowercase(index: dict[str, int]) -> bool:
    """Whether the tokens (markers such as <pad> or [CLS] aside) have letters with a case, all
    lower."""
    cased = False
    for token in index:
        if _MARKER.fullmatch(token):
            continue
        if token != token.lower():
            return False
        cased = cased or token != token.upper()
    return cased


def token_label(token: str) -> str:
    """A token as a message names it: whitespace by name ("space"), anything else quoted, with
    control characters written as escapes (\\u0007) so that none vanishes."""
    if token in TOKEN_NAMES:
        return TOKEN_NAMES[token]
    visible = "".join(ch if not _invisible(ch) else ch.encode("unicode_escape").decode("ascii")
                      for ch in token)
    if not visible.strip("` "):  # backticks or spaces only: quoted would show nothing
        return " ".join(f"U+{ord(ch):04X}" for ch in token[:LISTED])
    return quoted(visible, 40)


def _invisible(ch: str) -> bool:
    return (ch.isspace() and ch != " ") or unicodedata.category(ch)[0] == "C"


def _labels(tokens, limit: int = LISTED) -> str:
    tokens = list(tokens)
    shown = ", ".join(token_label(t) for t in tokens[:limit])
    return shown + (f" and {len(tokens) - limit:,} more" if len(tokens) > limit else "")


# ---------------------------------------------------------------------------------------------
# Text through a vocabulary


@dataclass(frozen=True)
class TokenizedText:
    """Text as the model reads it: `ids`, one per step; `tokens`, what each step shows (the
    character or word typed, lower-cased when the vocabulary is; whitespace as ␣ ↵ ⇥ ␍, control
    characters as escapes); `unknown`, the distinct characters or words the vocabulary lacks,
    in order; `note`, plain sentences about how the text was read ("" when nothing needs
    saying)."""

    ids: tuple[int, ...]
    tokens: tuple[str, ...]
    unknown: tuple[str, ...] = ()
    note: str = ""


def tokenize(text: str, vocabulary: Vocabulary, by: str) -> TokenizedText:
    """`text` as token ids of `vocabulary`, cut `by` "characters" (each character a step) or
    "words" (cut at whitespace only: punctuation stays with its word, so "sat." is one word).

    CRLF line ends are read as \\n. When the vocabulary's tokens are all lower case (markers
    such as <pad> aside), the text is lower-cased first, and `note` says so. A character or word
    the vocabulary lacks is read as its unknown token when it has one; otherwise it is left out
    of the sequence. Either way it is listed in `unknown` and `note`. ValueError when the text is
    over `max_text_chars`, holds nothing to read, or holds nothing the vocabulary knows."""
    if by not in READ_BY:
        raise ValueError(f"Text is read by characters or by words, not by {quoted(str(by), 24)}.")
    check_text(text)
    text = text.replace("\r\n", "\n")
    lowered = vocabulary.lowercase and text != text.lower()
    if vocabulary.lowercase:
        text = text.lower()
    pieces = list(text) if by == "characters" else text.split()
    if not pieces:
        raise ValueError("There is no text to read: type some." if by == "characters" or not text
                         else "The text holds no words, only whitespace: type some.")
    ids, shown, unknown = [], [], {}
    for piece in pieces:
        token_id = vocabulary.id_of(piece)
        if token_id is None:
            unknown.setdefault(piece, None)
            if vocabulary.unknown_id is None:
                continue
            token_id = vocabulary.unknown_id
        ids.append(token_id)
        shown.append(_step_label(piece))
    if len(unknown) == len(set(pieces)):
        raise ValueError(f"None of the {by} are in the vocabulary: {_labels(unknown)}."
                         + _cut_hint(vocabulary, by))
    check_seq_len(len(ids))
    return TokenizedText(tuple(ids), tuple(shown), tuple(unknown),
                         _note(vocabulary, by, lowered, list(unknown)))


def _step_label(piece: str) -> str:
    shown = "".join(STAND_INS.get(ch) or (ch.encode("unicode_escape").decode("ascii")
                                          if _invisible(ch) else ch) for ch in piece)
    return shown if len(shown) <= STEP_CHARS else shown[: STEP_CHARS - 1] + "…"


def _cut_hint(vocabulary: Vocabulary, by: str) -> str:
    """Why nothing was found, when the vocabulary is of the other kind."""
    plain = [t for t in vocabulary._index if not _MARKER.fullmatch(t)]
    single = sum(len(t) == 1 for t in plain)
    if by == "words" and plain and single == len(plain):
        return " The vocabulary's tokens are single characters: read the text by characters."
    if by == "characters" and plain and single < len(plain) / 2:
        return (" Most of the vocabulary's tokens are longer than one character: read the text "
                "by words.")
    return ""


def _note(vocabulary: Vocabulary, by: str, lowered: bool, unknown: list[str]) -> str:
    said = []
    if lowered:
        said.append("The vocabulary's tokens are all lower case, so the text was lower-cased.")
    if unknown:
        if vocabulary.unknown_id is not None:
            unk = token_label(vocabulary.tokens[vocabulary.unknown_id])
            said.append(f"Not in the vocabulary, read as {unk}: {_labels(unknown)}.")
        else:
            said.append(f"Not in the vocabulary, left out: {_labels(unknown)}.")
    if by == "words":
        for word in unknown:
            core = word.strip("".join(ch for ch in set(word)
                                      if unicodedata.category(ch).startswith("P")))
            if core and core != word and vocabulary.id_of(core) is not None:
                said.append(f"Words are cut at whitespace only, so {token_label(word)} is not "
                            f"{token_label(core)}: put a space before punctuation to read it "
                            "apart.")
                break
    return " ".join(said)


# ---------------------------------------------------------------------------------------------
# Typed ids and numbers


def parse_ids(text: str, vocab_size: int) -> tuple[int, ...]:
    """Token ids typed as "12 5 7", "12, 5, 7" or "[12, 5, 7]" (whitespace, commas or
    semicolons between them; brackets around the whole list are ignored). ValueError for none,
    a piece that is not a whole number (the first), an id outside 0..vocab_size - 1, or more
    than `max_seq_len` ids."""
    vocab_size = _positive(vocab_size, "vocab_size")
    if len(text) > LIMITS.max_upload_bytes:
        raise ValueError(f"The text is longer than {LIMITS.max_upload_bytes // 2**20} MiB.")
    stripped = text.strip()
    if stripped[:1] + stripped[-1:] in ("[]", "()"):
        stripped = stripped[1:-1]
    pieces = [piece for piece in re.split(r"[\s,;]+", stripped) if piece]
    if not pieces:
        raise ValueError("No token ids given: type some, separated by spaces or commas.")
    check_seq_len(len(pieces))
    ids = []
    for piece in pieces:
        if not _WHOLE.fullmatch(piece):
            raise ValueError(f"{quoted(piece, FIELD_CHARS)} is not a token id: ids are whole "
                             f"numbers from 0 to {vocab_size - 1:,}.")
        token_id = int(piece) if len(piece) <= 20 else vocab_size  # no 4,300-digit int()
        if not 0 <= token_id < vocab_size:
            raise ValueError(f"Token id {quoted(piece, FIELD_CHARS)} is out of range: the "
                             f"vocabulary has {vocab_size:,} tokens, ids 0 to {vocab_size - 1:,}.")
        ids.append(token_id)
    return tuple(ids)


def parse_rows(text: str, input_size: int) -> np.ndarray:
    """Numbers typed one step per line (or steps separated by semicolons), a step's features
    separated by commas, spaces or tabs, as a (T, F) float32 array. Blank lines are skipped.
    With one feature, one line of numbers is also read as one step each ("1, 2, 3" is three
    steps). Numbers are plain: 1, -2.5, 1e-3 (a comma always separates). ValueError, naming the
    step and the value, for a step with another count of numbers, an empty value between two
    commas, a value that is not a number or not finite, one beyond float32, none at all, or more
    than `max_seq_len` steps."""
    input_size = _positive(input_size, "input_size")
    if len(text) > LIMITS.max_upload_bytes:
        raise ValueError(f"The text is longer than {LIMITS.max_upload_bytes // 2**20} MiB.")
    steps = [step.strip() for step in re.split(r"[\r\n;]", text)]
    return _rows([step for step in steps if step], input_size, _features_said(input_size),
                 "type one step per line")


def _rows(steps: list[str], input_size: int, features: str, how: str) -> np.ndarray:
    """The (T, F) float32 values of steps written as text, checked step by step."""
    if not steps:
        raise ValueError(f"No numbers given: {how}, {features}.")
    if len(steps) > 1:  # before millions of lines are split
        check_seq_len(len(steps))
    rows = [_fields(step, k) for k, step in enumerate(steps, 1)]
    if input_size == 1 and len(rows) == 1:
        rows = [[value] for value in rows[0]]
    check_seq_len(len(rows))
    values = np.empty((len(rows), input_size), dtype=np.float32)
    for k, row in enumerate(rows, 1):
        if len(row) != input_size:
            raise ValueError(f"Step {k:,} has {_count(len(row), 'number')}, but the model reads "
                             f"{_count(input_size, 'feature')} per step.")
        values[k - 1] = [_number(value, k) for value in row]
    return values


def _fields(step: str, k: int) -> list[str]:
    fields = re.split(r"\s*,\s*|\s+", step)
    if "" in fields:
        raise ValueError(f"Step {k:,} has an empty value between two commas (or a comma at an "
                         "end): write a number there or remove the comma.")
    return fields


def _number(value: str, k: int) -> float:
    shown = quoted(value, FIELD_CHARS)
    if not _NUMBER.fullmatch(value):
        if value.lower() in _NOT_FINITE:
            raise ValueError(f"Step {k:,} holds {shown}, which is not a finite number: the model "
                             "reads finite numbers only.")
        raise ValueError(f"Step {k:,} holds {shown}, which is not a number.")
    number = float(value)
    if not abs(number) <= FLOAT32_MAX:  # float("1e400") is inf
        raise ValueError(f"Step {k:,} holds {shown}, which is too large: the models compute in "
                         f"float32, whose numbers end at about {FLOAT32_MAX:.1e}.")
    return number


def _features_said(input_size: int) -> str:
    if input_size == 1:
        return "one number each (or all on one line, separated by commas or spaces)"
    return f"its {input_size} numbers separated by commas or spaces"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _positive(n, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name} must be a whole number of at least 1; got {n!r}.")
    return int(n)


# ---------------------------------------------------------------------------------------------
# Matrices from files


class MatrixError(ValueError):
    """A file refused by `read_matrix`; `arrays` names the NPZ file's arrays all the same, so a
    page can offer another."""

    def __init__(self, message: str, arrays: tuple[str, ...] = ()):
        super().__init__(message)
        self.arrays = arrays


@dataclass(frozen=True)
class Matrix:
    """An uploaded input sequence: `values` (T, F) float32, read-only; `columns`, each feature's
    name (a CSV's column names, else "x[0]", "x[1]", ...); `source`, in words, what was read
    ("`data.npz`, array `x`, 120 steps × 3 features"); `arrays`, every array of an NPZ file (for
    a picker; () for other files); `key`, (sha256 of the file, the array's name or ""): a page
    keeps what it computes from the input under that, never under the numbers."""

    values: np.ndarray = field(repr=False)
    columns: tuple[str, ...]
    source: str
    arrays: tuple[str, ...] = ()
    key: tuple[str, str] = ("", "")


def read_matrix(data: bytes, filename: str, input_size: int, *, array: str | None = None
                ) -> Matrix:
    """One input sequence for a model that reads `input_size` features per step, from an upload:

    - .csv, .tsv, .txt: read by `core.io.tables.read_table` (its rules, `CSV_RULES`); its columns
      of numbers, in file order, are the features, and there must be exactly `input_size` of
      them (columns of text, such as dates, are not features). A .txt of numbers only,
      separated by spaces or tabs with no commas or semicolons (what `numpy.savetxt` writes; its
      `#` lines skipped), is read one step per line instead, as `parse_rows` reads them;
    - .npy: `numpy.load(allow_pickle=False)`;
    - .npz: the array named `array`; without one, the file's only array, else the first whose
      shape fits. `Matrix.arrays` (or `MatrixError.arrays`, when refused) lists them all.

    An array may have shape (T, F), (T,) when F is 1, or (1, T, F), and any integer, boolean or
    float dtype. Refused, with a message for the visitor, for another
    extension, an empty or unreadable file, another shape or count of columns, text or objects
    or complex numbers, a missing or non-finite value (with where), a value beyond float32, or
    more than `max_seq_len` steps: a `MatrixError` (a ValueError with the NPZ file's `arrays`)
    or, from the CSV rules and the limits, a plain ValueError."""
    input_size = _positive(input_size, "input_size")
    name = quoted(os.path.basename(str(filename)) or "file", 60)
    suffix = os.path.splitext(str(filename))[1].lower()
    if suffix not in MATRIX_EXTENSIONS:
        raise MatrixError(f"{name} is not a file of numbers this page reads: upload a .csv, "
                          ".tsv, .txt, .npy or .npz file.")
    if not data:
        raise MatrixError(f"{name} is empty.")
    if len(data) > LIMITS.max_upload_bytes:
        raise MatrixError(f"{name} is larger than {LIMITS.max_upload_bytes // 2**20} MiB.")
    digest = hashlib.sha256(data).hexdigest()
    if suffix == ".npz":
        values, arrays, picked = _from_npz(data, name, input_size, array)
        columns = tuple(f"x[{k}]" for k in range(input_size))
        said = f"{name}, array {quoted(picked, 60)}"
    elif suffix == ".npy":
        arrays, picked = (), ""
        values = _from_npy(data, name, input_size)
        columns = tuple(f"x[{k}]" for k in range(input_size))
        said = name
    else:
        arrays, picked = (), ""
        values, columns, said = _from_table(data, name, suffix, input_size)
    values = np.ascontiguousarray(values, dtype=np.float32)
    values.setflags(write=False)
    steps = values.shape[0]
    return Matrix(values, columns, f"{said}, {_count(steps, 'step')} × "
                                   f"{_count(input_size, 'feature')}", arrays, (digest, picked))


def _from_table(data: bytes, name: str, suffix: str, input_size: int
                ) -> tuple[np.ndarray, tuple[str, ...], str]:
    """(values, column names, what was read) of a CSV, or of a .txt that `numpy.savetxt` wrote."""
    if suffix == ".txt":
        rows = _savetxt_rows(data)
        if rows is not None:
            return (_rows(rows, input_size, _features_said(input_size), "one step per line"),
                    tuple(f"x[{k}]" for k in range(input_size)), name)
    table = read_table(data)
    numeric = table.numeric
    if len(numeric) != input_size:
        names = listing((quoted(table.names[i], 40) for i in numeric), LISTED)
        said = (f"{name} has {_count(len(numeric), 'column')} of numbers ({names}), but the "
                f"model reads {_count(input_size, 'feature')} per step")
        if len(numeric) > input_size:
            said += (f": keep only its {_count(input_size, 'input column')} (a column of numbers "
                     "such as a step count or time index counts too).")
        elif table.refused:
            said += f". Left out: {table.left_out[0]}"
        else:
            said += "."
        raise MatrixError(said)
    check_seq_len(table.rows)
    columns = np.empty((table.rows, input_size))
    for k, index in enumerate(numeric):
        columns[:, k] = table.choice(index).numbers()  # refuses a missing value, with its row
        large = np.flatnonzero(np.abs(columns[:, k]) > FLOAT32_MAX)
        if len(large):
            row = int(large[0])
            raise MatrixError(
                f"Column {quoted(table.names[index], 40)} holds {columns[row, k]:.3g} in row "
                f"{row + 1:,} of the data (line {int(table.lines[index][row]):,} of the file): "
                f"too large for float32, which the models compute in (its numbers end at about "
                f"{FLOAT32_MAX:.1e}).")
    names = tuple(table.names[i] for i in numeric)
    plural = "s" if len(names) > 1 else ""
    return columns, names, f"{name}, column{plural} {listing(quoted(c, 40) for c in names)}"


def _savetxt_rows(data: bytes) -> list[str] | None:
    """The lines of a .txt of whitespace-separated numbers without a header (`numpy.savetxt`'s
    default), or None for a file `read_table` reads."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    if "," in text or ";" in text:
        return None
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if not lines or not all(_NUMBER.fullmatch(value) for value in lines[0].split()):
        return None
    return lines


def _from_npy(data: bytes, name: str, input_size: int) -> np.ndarray:
    stream = io.BytesIO(data)
    try:
        shape, dtype = _npy_header(stream)
    except _HeaderError as err:
        raise MatrixError(f"{name} is not a NumPy .npy file that can be read: {err} Save the "
                          "array with numpy.save.") from None
    why = _unfit(shape, dtype, input_size)
    if why:
        raise MatrixError(f"The array in {name} {why}")
    if math.prod(shape) * dtype.itemsize > len(data) - stream.tell():
        raise MatrixError(f"{name} is cut short: its header promises an array of shape "
                          f"{_shape(shape)} but the data ends before that.")
    try:
        values = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise MatrixError(_load_failed(name, err)) from None
    return _checked(values, input_size, f"The array in {name}")


def _from_npz(data: bytes, name: str, input_size: int, wanted: str | None
              ) -> tuple[np.ndarray, tuple[str, ...], str]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [info for info in archive.infolist() if info.filename.endswith(".npy")]
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        raise MatrixError(f"{name} is not a NumPy .npz file (not a zip archive): save the "
                          "arrays with numpy.savez.") from None
    arrays = tuple(info.filename[:-4] for info in members)
    if not arrays:
        raise MatrixError(f"{name} holds no arrays.")
    headers: dict[str, tuple[tuple[int, ...], np.dtype] | str] = {}
    for array, info in zip(arrays, members):
        try:
            with archive.open(info) as member:
                headers[array] = _npy_header(member)
        except _HeaderError as err:
            headers[array] = f"cannot be read: {err}"
        except (ValueError, OSError, EOFError, RuntimeError, NotImplementedError,
                zipfile.BadZipFile) as err:  # an encrypted member, a compression zip lacks
            headers[array] = f"cannot be read ({quoted(str(err), 80)})."
    if wanted is None:
        fits = [a for a in arrays if not isinstance(headers[a], str)
                and not _unfit(*headers[a], input_size)]
        if len(arrays) > 1 and not fits:
            shown = ", ".join(f"{quoted(a, 40)} {_header_said(headers[a])}"
                              for a in arrays[:LISTED])
            more = f" and {len(arrays) - LISTED:,} more" if len(arrays) > LISTED else ""
            raise MatrixError(f"None of the arrays in {name} fits a model that reads "
                              f"{_count(input_size, 'feature')} per step: {shown}{more}. "
                              f"{_fits(input_size)}", arrays)
        wanted = fits[0] if fits else arrays[0]
    elif wanted not in headers:
        raise MatrixError(f"{name} has no array {quoted(wanted, 40)}; its arrays are "
                          f"{listing((quoted(a, 40) for a in arrays), LISTED)}.", arrays)
    header = headers[wanted]
    what = f"Array {quoted(wanted, 40)} of {name}"
    if isinstance(header, str):
        raise MatrixError(f"{what} {header}", arrays)
    why = _unfit(*header, input_size)
    if why:
        raise MatrixError(f"{what} {why}", arrays)
    info = members[arrays.index(wanted)]
    if math.prod(header[0]) * header[1].itemsize > info.file_size:
        raise MatrixError(f"{what} is cut short: its header promises shape {_shape(header[0])} "
                          "but the data ends before that.", arrays)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            values = npz[wanted]
    except (ValueError, OSError, EOFError, RuntimeError, NotImplementedError, KeyError,
            zipfile.BadZipFile) as err:
        raise MatrixError(_load_failed(f"array {quoted(wanted, 40)} of {name}", err),
                          arrays) from None
    try:
        return _checked(values, input_size, what), arrays, wanted
    except ValueError as err:
        raise MatrixError(str(err), arrays) from None


def _npy_header(stream) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype an .npy stream declares, read from its header alone: a page learns
    what an array is (and refuses it) before anything of its size is allocated."""
    # numpy's own messages quote the header, which the file wrote: never shown.
    try:
        version = np.lib.format.read_magic(stream)
    except (ValueError, EOFError):
        raise _HeaderError("it does not start as a .npy file does.") from None
    if version not in ((1, 0), (2, 0)):  # 3.0 is only written for UTF-8 names of fields
        raise _HeaderError(f"its format version {version[0]}.{version[1]} is for records with "
                           "named fields, not plain numbers.")
    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
            else np.lib.format.read_array_header_2_0)
    try:
        shape, _, dtype = read(stream)
    except (ValueError, TypeError, SyntaxError, EOFError, OverflowError):
        raise _HeaderError("its header, which says the array's shape and type, cannot be read."
                           ) from None
    return tuple(int(n) for n in shape), dtype


class _HeaderError(ValueError):
    """An .npy header that cannot be read, said in our words."""


def _unfit(shape: tuple[int, ...], dtype: np.dtype, input_size: int) -> str:
    """Why an array of this shape and dtype is not one input sequence; "" when it is."""
    kind = {"O": "Python objects", "U": "text", "S": "bytes", "V": "records with named fields",
            "M": "dates", "m": "time spans", "c": "complex numbers"}
    if dtype.kind not in "biuf":
        return (f"holds {kind.get(dtype.kind, 'values that are not numbers')} (dtype "
                f"{quoted(str(dtype), 24)}), not real numbers: save an array of floats or "
                "integers.")
    steps = _steps_of(shape, input_size)
    if steps is None:
        transposed = (len(shape) == 2 and shape[0] == input_size and shape[1] != input_size)
        return (f"has shape {_shape(shape)}, but the model reads "
                f"{_count(input_size, 'feature')} per step. {_fits(input_size)}"
                + (" It may hold the features by row: save its transpose (x.T)."
                   if transposed else ""))
    if steps == 0:
        return f"holds no steps (shape {_shape(shape)})."
    if steps > LIMITS.max_seq_len:
        return (f"has {steps:,} steps (shape {_shape(shape)}); at most {LIMITS.max_seq_len:,} "
                "are read.")
    return ""


def _steps_of(shape: tuple[int, ...], input_size: int) -> int | None:
    if len(shape) == 1 and input_size == 1:
        return shape[0]
    if len(shape) == 2 and shape[1] == input_size:
        return shape[0]
    if len(shape) == 3 and shape[0] == 1 and shape[2] == input_size:
        return shape[1]
    return None


def _fits(input_size: int) -> str:
    if input_size == 1:
        return "Shapes that fit: (steps,), (steps, 1) or (1, steps, 1)."
    return f"Shapes that fit: (steps, {input_size}) or (1, steps, {input_size})."


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _header_said(header) -> str:
    if isinstance(header, str):
        return "(unreadable)"
    shape, dtype = header
    return _shape(shape) if dtype.kind in "biuf" else f"{_shape(shape)} of {dtype.name}"


def _load_failed(what: str, err: Exception) -> str:
    if "allow_pickle" in str(err):
        return (f"The {what} holds Python objects, which are not read (they could run code): "
                "save an array of floats or integers.")
    return f"The {what} could not be read: {quoted(str(err), 120)}."


def _checked(values: np.ndarray, input_size: int, what: str) -> np.ndarray:
    """The loaded array as (T, F) float64, refused for a non-finite value or one beyond
    float32 (with its step and feature)."""
    values = np.asarray(values).reshape(-1, input_size).astype(np.float64)
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        step, feature = (int(n) for n in bad[0])
        raise MatrixError(f"{what} has a missing or non-finite value (NaN or inf) at step "
                          f"{step + 1:,}, feature {feature + 1:,}"
                          + (f"; {len(bad):,} in all." if len(bad) > 1 else "."))
    large = np.argwhere(np.abs(values) > FLOAT32_MAX)
    if len(large):
        step, feature = (int(n) for n in large[0])
        raise MatrixError(f"{what} holds {values[step, feature]:.3g} at step {step + 1:,}, "
                          f"feature {feature + 1:,}: too large for float32, which the models "
                          f"compute in (its numbers end at about {FLOAT32_MAX:.1e}).")
    return values


# ---------------------------------------------------------------------------------------------
# Transform


def standardise(values: np.ndarray, columns: tuple[str, ...] | None = None
                ) -> tuple[np.ndarray, str]:
    """Each feature minus its mean, divided by its standard deviation (over the steps), as
    float32; and a note that says the means and deviations ("Standardised per feature (minus
    its mean, divided by its standard deviation): x[0] mean 12.5, sd 3.2; ..."). A feature that
    never changes is only centred (its deviation is 0), and the note says so. For a page to
    apply only when the visitor asks: a model trained on standardised inputs needs them."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or not values.size:
        raise ValueError("standardise takes a (steps, features) array with at least one step.")
    columns = columns or tuple(f"x[{k}]" for k in range(values.shape[1]))
    means = values.mean(axis=0)
    deviations = values.std(axis=0)
    constant = deviations == 0
    scaled = (values - means) / np.where(constant, 1.0, deviations)
    said = [f"{quoted(c, 24)} mean {m:.4g}, sd {d:.4g}" + (" (constant: only centred)" if z else "")
            for c, m, d, z in zip(columns, means, deviations, constant)]
    more = f"; and {len(said) - 8:,} more" if len(said) > 8 else ""
    note = ("Standardised per feature (minus its mean, divided by its standard deviation): "
            + "; ".join(said[:8]) + more + ".")
    return scaled.astype(np.float32), note
