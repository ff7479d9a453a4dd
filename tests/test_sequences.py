"""A practitioner's own input (core/io/sequences.py, issue #15): vocabulary files read as their
authors wrote them, text cut into the ids the model was trained on, typed ids and numbers read
exactly, uploaded matrices read exactly, and everything else refused with a message that says
where and why."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from core.io.sequences import (
    MAX_VOCABULARY, UNKNOWN_TOKENS, Matrix, MatrixError, Vocabulary, parse_ids, parse_rows,
    read_matrix, read_vocabulary, standardise, token_label, tokenize,
)
from core.limits import LIMITS, LimitError

CHARACTERS = ["a", "b", "c", "h", "i", "t", "e", "r", " ", "\n", ".", "H"]


def char_vocabulary_file() -> bytes:
    """A char-level vocabulary as a text file: the space is a line of one space, the newline
    is written \\n."""
    return "\n".join("\\n" if c == "\n" else c for c in CHARACTERS).encode() + b"\n"


def short(value) -> str | None:
    """A test id that stays short when a case holds a whole file."""
    return repr(value)[:40] if isinstance(value, (str, bytes)) else None


def refusal(call, *args, **kwargs) -> str:
    with pytest.raises(ValueError) as caught:
        call(*args, **kwargs)
    return str(caught.value)


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


# -- vocabularies ---------------------------------------------------------------------------------


def test_a_char_vocabulary_with_space_and_newline_tokens_round_trips_text_exactly():
    vocabulary = read_vocabulary(char_vocabulary_file(), "chars.txt")
    assert vocabulary.tokens == tuple(CHARACTERS)
    assert vocabulary.size == 12 and vocabulary.unknown_id is None
    assert vocabulary.source == "text file of 12 tokens, one per line"
    assert vocabulary.id_of(" ") == 8 and vocabulary.id_of("\n") == 9
    text = "Hi there.\nbe at a. "
    read = tokenize(text, vocabulary, "characters")
    assert "".join(vocabulary.tokens[i] for i in read.ids) == text
    assert read.tokens[:4] == ("H", "i", "␣", "t") and read.tokens[9] == "↵"
    assert read.unknown == () and read.note == ""  # it has "H": nothing lower-cased


def test_a_word_vocabulary_reads_words_lower_cases_the_text_and_says_so():
    vocabulary = read_vocabulary(json.dumps(["<pad>", "<unk>", "the", "cat", "sat", "."]).encode(),
                                 "words.json")
    assert vocabulary.source == "JSON list of 6 tokens; unknown token `<unk>` (id 1)"
    assert vocabulary.lowercase, "markers such as <pad> do not count as upper case"
    read = tokenize("The  cat\nsat .", vocabulary, "words")
    assert read.ids == (2, 3, 4, 5)
    assert read.tokens == ("the", "cat", "sat", ".")
    assert read.note == "The vocabulary's tokens are all lower case, so the text was lower-cased."


def test_an_unknown_word_is_read_as_the_unknown_token_and_listed():
    vocabulary = read_vocabulary(b'["<unk>", "the", "cat"]', "w.json")
    read = tokenize("the dog the emu dog cat", vocabulary, "words")
    assert read.ids == (1, 0, 1, 0, 0, 2)
    assert read.tokens == ("the", "dog", "the", "emu", "dog", "cat")  # what was typed, each step
    assert read.unknown == ("dog", "emu")
    assert read.note == "Not in the vocabulary, read as `<unk>`: `dog`, `emu`."


def test_without_an_unknown_token_an_unknown_word_is_left_out_of_the_sequence_and_said():
    vocabulary = read_vocabulary(b'["the", "cat", "sat"]', "w.json")
    read = tokenize("the cat sat. dog", vocabulary, "words")
    assert read.ids == (0, 1) and read.tokens == ("the", "cat")
    assert read.unknown == ("sat.", "dog")
    assert read.note == ("Not in the vocabulary, left out: `sat.`, `dog`. Words are cut at "
                         "whitespace only, so `sat.` is not `sat`: put a space before punctuation "
                         "to read it apart.")


def test_a_json_mapping_with_gaps_keeps_every_id_where_the_model_has_it():
    vocabulary = read_vocabulary(json.dumps({"the": 1, "cat": 2, "sat": 5}).encode(), "m.json")
    assert vocabulary.tokens == ("<id 0>", "the", "cat", "<id 3>", "<id 4>", "sat")
    assert vocabulary.size == 6 and vocabulary.missing == {0, 3, 4}
    assert vocabulary.source == ("JSON object of tokens to ids of 3 tokens; ids 0, 3, 4 have no "
                                 "token")
    assert vocabulary.id_of("<id 3>") is None, "a gap holds no token"
    assert tokenize("cat sat the", vocabulary, "words").ids == (2, 5, 1)


def test_many_gaps_are_counted_not_all_listed():
    vocabulary = read_vocabulary(b'{"a": 10}', "m.json")
    assert vocabulary.source == ("JSON object of tokens to ids of 1 token; ids 0, 1, 2, 3, 4 and 5 "
                                 "more have no token")


def test_a_json_mapping_of_ids_to_tokens_is_read_too():
    vocabulary = read_vocabulary(b'{"0": "a", "1": "b", "3": "d"}', "itos.json")
    assert vocabulary.tokens == ("a", "b", "<id 2>", "d")
    assert vocabulary.source == "JSON object of ids to tokens of 3 tokens; id 2 has no token"


def test_whole_number_ids_written_as_floats_are_read():
    assert read_vocabulary(b'{"a": 0.0, "b": 1}', "m.json").tokens == ("a", "b")


def test_a_keras_tokenizer_json_gives_its_word_index_and_its_oov_token():
    word_index = {"<OOV>": 1, "the": 2, "cat": 3}
    keras = {"class_name": "Tokenizer",
             "config": {"oov_token": "<OOV>", "word_index": json.dumps(word_index)}}
    vocabulary = read_vocabulary(json.dumps(keras).encode(), "tokenizer.json")
    assert vocabulary.tokens == ("<id 0>", "<OOV>", "the", "cat")
    assert vocabulary.unknown_id == 1
    assert vocabulary.source == ("Keras Tokenizer word_index of 3 tokens; id 0 has no token; "
                                 "unknown token `<OOV>` (id 1)")
    assert tokenize("the dog", vocabulary, "words").ids == (2, 1)
    bare = read_vocabulary(json.dumps({"word_index": word_index}).encode(), "w.json")
    assert bare.tokens == vocabulary.tokens


def test_a_hugging_face_tokenizer_json_gives_its_vocab_added_tokens_and_unk_token():
    tokenizer = {"version": "1.0",
                 "added_tokens": [{"id": 0, "content": "[PAD]"}, {"id": 5, "content": "[MASK]"}],
                 "model": {"type": "WordPiece", "unk_token": "[UNK]",
                           "vocab": {"[PAD]": 0, "[UNK]": 1, "the": 2, "cat": 3, "##s": 4}}}
    vocabulary = read_vocabulary(json.dumps(tokenizer).encode(), "tokenizer.json")
    assert vocabulary.tokens == ("[PAD]", "[UNK]", "the", "cat", "##s", "[MASK]")
    assert vocabulary.unknown_id == 1
    assert vocabulary.source == (
        "Hugging Face tokenizer.json (`WordPiece` model) of 6 tokens; unknown token `[UNK]` "
        "(id 1); text is cut here into whole words or characters, not as its tokenizer cuts it")
    assert tokenize("The cats", vocabulary, "words").ids == (2, 1)


def test_a_hugging_face_unigram_list_and_a_word_level_model_are_read():
    unigram = {"model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["▁the", -1.5]]}}
    vocabulary = read_vocabulary(json.dumps(unigram).encode(), "tokenizer.json")
    assert vocabulary.tokens == ("<unk>", "▁the") and vocabulary.unknown_id == 0
    word_level = {"model": {"type": "WordLevel", "unk_token": "[UNK]",
                            "vocab": {"[UNK]": 0, "the": 1}}}
    vocabulary = read_vocabulary(json.dumps(word_level).encode(), "tokenizer.json")
    assert vocabulary.source == ("Hugging Face tokenizer.json (`WordLevel` model) of 2 tokens; "
                                 "unknown token `[UNK]` (id 0)"), "word level cuts as we do"


@pytest.mark.parametrize("unknown", UNKNOWN_TOKENS)
def test_each_usual_unknown_token_is_found(unknown):
    vocabulary = read_vocabulary(json.dumps(["a", unknown, "b"]).encode(), "v.json")
    assert vocabulary.unknown_id == 1


def test_a_text_vocabulary_reads_escapes_crlf_spaces_around_tokens_and_trailing_blank_lines():
    data = b"the \r\n \r\n\\n\r\n\\t\r\n\\r\r\n  x\t\r\n<unk>\r\n\r\n\r\n"
    vocabulary = read_vocabulary(data, "v.vocab")
    assert vocabulary.tokens == ("the", " ", "\n", "\t", "\r", "x", "<unk>")
    assert vocabulary.unknown_id == 6


def test_a_text_vocabulary_line_of_only_whitespace_is_that_whitespace():
    vocabulary = read_vocabulary(b"a\n \n\t\n", "v.txt")
    assert vocabulary.tokens == ("a", " ", "\t")


def test_a_txt_file_is_never_read_as_json_and_other_files_only_when_they_parse():
    assert read_vocabulary(b'["a", "b"]', "v.txt").tokens == ('["a", "b"]',)
    assert read_vocabulary(b'["a", "b"]', "vocab").tokens == ("a", "b")
    assert read_vocabulary(b"[\nb\n", "vocab").tokens == ("[", "b")
    assert read_vocabulary(b"{\n}\n", "vocab").tokens == ("{", "}"), "two characters, not {}"
    assert read_vocabulary("\ufeffa\nb\n".encode(), "v.txt").tokens == ("a", "b"), "BOM"


VOCABULARY_REFUSALS = [
    (b"", "v.txt", "The vocabulary file is empty."),
    (b"\xff\xfea", "v.txt",
     "The vocabulary file is not UTF-8 text (byte 0xff at position 0): save it as UTF-8."),
    (b"a\x00b", "v.txt", "The vocabulary file holds NUL characters: it is a binary file, or text "
                         "not in UTF-8. Save it as UTF-8 text."),
    (b"[1,2", "v.json",
     "The vocabulary file is not valid JSON: Expecting ',' delimiter (line 1, column 5)."),
    (b"[" * 100_000, "v.json",
     "The vocabulary file's JSON is nested too deeply to be a vocabulary."),
    (b"5", "v.json", "A JSON vocabulary is a list of tokens or an object of tokens and ids; this "
                     "file holds a number."),
    (b"[]", "v.json", "The vocabulary has no tokens: the JSON list is empty."),
    (b"{}", "v.json", "The vocabulary has no tokens: the JSON object is empty."),
    (b'["a", "b", "a"]', "v.json", "Token `a` appears twice, with ids 0 and 2."),
    (b'["a", 3]', "v.json", "The JSON list's entry for id 1 is a number, not a token: a "
                            "vocabulary list holds strings."),
    (b'["a", null]', "v.json", "The JSON list's entry for id 1 is null, not a token: a "
                               "vocabulary list holds strings."),
    (b'{"a": 0, "b": 0}', "v.json", "Tokens `a` and `b` both have id 0: each id belongs to one "
                                    "token."),
    (b'{"a": 0, "a": 1}', "v.json", "Token `a` appears twice, with ids 0 and 1."),
    (b'{"m": {"a": {}, "a": 1}}', "v.json", "The key `a` appears twice in one JSON object."),
    (b'{"a": -1}', "v.json", "The id of token `a` is -1: ids start at 0."),
    (b'{"a": 1.5}', "v.json", "The id of token `a` is `1.5`, not a whole number: each token's "
                              "id is 0, 1, 2, ..."),
    (b'{"a": "0", "b": 1}', "v.json", "The id of token `a` is `\"0\"`, not a whole number: each "
                                      "token's id is 0, 1, 2, ..."),
    (b'{"a": true}', "v.json", "The id of token `a` is `true`, not a whole number: each token's "
                               "id is 0, 1, 2, ..."),
    (b'{"a": 1000000}', "v.json", "The id of token `a` is 1,000,000: a vocabulary may have at "
                                  "most 1,000,000 tokens, ids 0 to 999,999."),
    (b'{"a": "x"}', "v.json", "The key `a` is not an id: a JSON object of ids to tokens has whole "
                              "numbers as its keys ({\"0\": \"a\", \"1\": \"b\"})."),
    (b'{"word_index": "{oops"}', "v.json",
     "The Keras Tokenizer's word_index is not valid JSON: Expecting property name enclosed in "
     "double quotes."),
    (b'{"word_index": "[1]"}', "v.json",
     "The Keras Tokenizer's word_index is a list, not an object of words to ids."),
    (b'{"model": {"vocab": 3}}', "tokenizer.json",
     "The tokenizer.json's model.vocab is a number, neither an object of tokens to ids nor a "
     "list of [token, score] pairs."),
    (b'{"model": {"vocab": {"a": 0}}, "added_tokens": [{"id": 1}]}', "tokenizer.json",
     "A token of the vocabulary is null, not a string."),
    (b"a\nb\n\nc\n", "v.txt",
     "Line 3 of the vocabulary file is empty. Each line is one token, whose id is its line number "
     "less one, so an empty line cannot be skipped: remove it, or write the newline token as \\n "
     "(a backslash and n)."),
    (b"a\nb\n a\n", "v.txt", "Token `a` appears twice, with ids 0 and 2 (lines 1 and 3)."),
    (b"\n\r\n\n", "v.txt", "The vocabulary file holds only empty lines."),
]


@pytest.mark.parametrize(("data", "filename", "message"), VOCABULARY_REFUSALS,
                         ids=[case[-1][:48] for case in VOCABULARY_REFUSALS])
def test_a_vocabulary_that_cannot_be_read_exactly_is_refused_saying_why(data, filename, message):
    assert refusal(read_vocabulary, data, filename) == message


def test_a_vocabulary_over_a_million_tokens_or_the_upload_limit_is_refused():
    lines = b"a\n" * (MAX_VOCABULARY + 1)
    assert refusal(read_vocabulary, lines, "v.txt") == (
        "The vocabulary has 1,000,001 tokens; at most 1,000,000 are read.")
    listed = b"[" + b'"a",' * MAX_VOCABULARY + b'"a"]'
    assert refusal(read_vocabulary, listed, "v.json") == (
        "The vocabulary has 1,000,001 tokens; at most 1,000,000 are read.")
    huge = b" " * (LIMITS.max_upload_bytes + 1)
    assert refusal(read_vocabulary, huge, "v.txt") == "The vocabulary file is larger than 20 MiB."


def test_a_token_a_message_names_is_visible_and_inert():
    assert token_label(" ") == "space" and token_label("\n") == "newline"
    assert token_label("\t") == "tab" and token_label("\r") == "carriage return"
    assert token_label("\x07") == "`\\x07`", "a control character is written, never dropped"
    assert token_label("`") == "U+0060", "a backtick alone would be an empty code span"
    assert token_label("*bold*") == "`*bold*`"
    assert token_label("\u202eevil") == "`\\u202eevil`", "a bidi override cannot reverse a line"


def test_a_vocabulary_built_in_code_indexes_the_first_of_equal_tokens():
    vocabulary = Vocabulary(("a", "b", "a"), None, "shipped")
    assert vocabulary.id_of("a") == 0 and vocabulary.id_of("b") == 1
    assert vocabulary.id_of("z") is None and vocabulary.size == 3


def test_a_real_token_that_reads_like_a_gap_keeps_its_own_id():
    vocabulary = read_vocabulary(b'{"a": 0, "<id 1>": 2}', "m.json")
    assert vocabulary.tokens == ("a", "<id 1>", "<id 1>") and vocabulary.missing == {1}
    assert vocabulary.id_of("<id 1>") == 2


# -- text through a vocabulary ------------------------------------------------------------------


def test_an_all_lower_case_char_vocabulary_lower_cases_typed_text():
    vocabulary = read_vocabulary(b"a\nb\n \n", "v.txt")
    read = tokenize("AB ba", vocabulary, "characters")
    assert read.ids == (0, 1, 2, 1, 0)
    assert read.note == "The vocabulary's tokens are all lower case, so the text was lower-cased."


def test_crlf_in_typed_text_is_one_newline_step():
    vocabulary = read_vocabulary(char_vocabulary_file(), "chars.txt")
    assert tokenize("a\r\nb", vocabulary, "characters").ids == (0, 9, 1)


def test_a_step_shows_control_and_odd_whitespace_as_escapes_and_cuts_long_words():
    vocabulary = Vocabulary(("\x07", "\u00a0", "x" * 30), None, "built")
    read = tokenize("\x07\u00a0", vocabulary, "characters")
    assert read.tokens == ("\\x07", "\\xa0")
    assert tokenize("x" * 30, vocabulary, "words").tokens == ("x" * 23 + "…",)


TOKENIZE_REFUSALS = [
    ("abc", "sentences", "Text is read by characters or by words, not by `sentences`."),
    ("", "characters", "There is no text to read: type some."),
    ("", "words", "There is no text to read: type some."),
    (" \n\t", "words", "The text holds no words, only whitespace: type some."),
    ("xyz xyz", "characters", "None of the characters are in the vocabulary: `x`, `y`, `z`, "
                              "space."),
    ("hi there", "words", "None of the words are in the vocabulary: `hi`, `there`. The "
                          "vocabulary's tokens are single characters: read the text by "
                          "characters."),
    ("kmnopqs", "characters", "None of the characters are in the vocabulary: `k`, `m`, `n`, `o`, "
                              "`p` and 2 more."),
]


@pytest.mark.parametrize(("text", "by", "message"), TOKENIZE_REFUSALS, ids=short)
def test_text_that_gives_no_sequence_is_refused_saying_why(text, by, message):
    vocabulary = read_vocabulary(b"a\nb\nc\n<unk>\n", "v.txt")
    assert refusal(tokenize, text, vocabulary, by) == message


def test_a_word_vocabulary_read_by_characters_says_to_read_by_words():
    vocabulary = read_vocabulary(b'["the", "cat", "<unk>"]', "w.json")
    assert refusal(tokenize, "xyz", vocabulary, "characters") == (
        "None of the characters are in the vocabulary: `x`, `y`, `z`. Most of the vocabulary's "
        "tokens are longer than one character: read the text by words.")


def test_text_over_the_limits_is_refused_with_the_limit():
    vocabulary = read_vocabulary(b"a\n", "v.txt")
    with pytest.raises(LimitError) as caught:
        tokenize("a" * (LIMITS.max_text_chars + 1), vocabulary, "characters")
    assert str(caught.value) == "Text is too long: at most 2,000 characters; got 2,001."
    # "İ" lower-cases to two characters: 1,001 of them are 2,002 steps
    dotted = Vocabulary(("i", "\u0307"), None, "built")
    with pytest.raises(LimitError) as caught:
        tokenize("İ" * 1001, dotted, "characters")
    assert str(caught.value) == ("Sequence length must be a whole number from 1 to 2,000 steps; "
                                 "got 2,002.")


# -- typed ids ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["12 5 7", "12, 5, 7", "12,5,7", " [12, 5, 7] ", "(12 5\n7)",
                                  "12; 5; 7", "+12 5 7"])
def test_typed_ids_are_read_in_every_usual_way(text):
    assert parse_ids(text, 13) == (12, 5, 7)


@pytest.mark.parametrize(("text", "message"), ids=short, argvalues=[
    ("", "No token ids given: type some, separated by spaces or commas."),
    (" [ ] ", "No token ids given: type some, separated by spaces or commas."),
    ("1 2.0 3", "`2.0` is not a token id: ids are whole numbers from 0 to 9."),
    ("1 two", "`two` is not a token id: ids are whole numbers from 0 to 9."),
    ("1 ٣", "`٣` is not a token id: ids are whole numbers from 0 to 9."),
    ("3 10", "Token id `10` is out of range: the vocabulary has 10 tokens, ids 0 to 9."),
    ("-1", "Token id `-1` is out of range: the vocabulary has 10 tokens, ids 0 to 9."),
    ("9" * 5000, "Token id `" + "9" * 23 + "…` is out of range: the vocabulary has 10 tokens, "
                 "ids 0 to 9."),
    ("1 " * 2001, "Sequence length must be a whole number from 1 to 2,000 steps; got 2,001."),
])
def test_typed_ids_that_are_not_ids_of_the_vocabulary_are_refused(text, message):
    assert refusal(parse_ids, text, 10) == message


# -- typed numbers ------------------------------------------------------------------------------


def test_typed_rows_are_read_one_step_per_line_or_per_semicolon():
    values = parse_rows("1 2 3\n\n4,5,6; 7\t8 , 9\r\n-1e-3 .5 +2.", 3)
    assert values.dtype == np.float32 and values.shape == (4, 3)
    np.testing.assert_array_equal(values, np.array(
        [[1, 2, 3], [4, 5, 6], [7, 8, 9], [-1e-3, 0.5, 2]], dtype=np.float32))


def test_with_one_feature_one_line_of_numbers_is_one_step_each():
    np.testing.assert_array_equal(parse_rows("1, 2, 3", 1), [[1], [2], [3]])
    np.testing.assert_array_equal(parse_rows("1\n2\n3", 1), [[1], [2], [3]])
    np.testing.assert_array_equal(parse_rows("1 2 3", 1), [[1], [2], [3]])


@pytest.mark.parametrize(("text", "size", "message"), ids=short, argvalues=[
    ("", 3, "No numbers given: type one step per line, its 3 numbers separated by commas or "
            "spaces."),
    (" \n ; ", 1, "No numbers given: type one step per line, one number each (or all on one "
                  "line, separated by commas or spaces)."),
    ("1 2 3\n4 5 6\n7 8", 3, "Step 3 has 2 numbers, but the model reads 3 features per step."),
    ("1 2\n3", 1, "Step 1 has 2 numbers, but the model reads 1 feature per step."),
    ("1 2 3\n4 x 6", 3, "Step 2 holds `x`, which is not a number."),
    ("1,5 2", 2, "Step 1 has 3 numbers, but the model reads 2 features per step."),
    ("1 2 nan", 3, "Step 1 holds `nan`, which is not a finite number: the model reads finite "
                   "numbers only."),
    ("1 2 -inf", 3, "Step 1 holds `-inf`, which is not a finite number: the model reads finite "
                    "numbers only."),
    ("1 2 1e39", 3, "Step 1 holds `1e39`, which is too large: the models compute in float32, "
                    "whose numbers end at about 3.4e+38."),
    ("1 2 1e400", 3, "Step 1 holds `1e400`, which is too large: the models compute in float32, "
                     "whose numbers end at about 3.4e+38."),
    ("1,,2", 3, "Step 1 has an empty value between two commas (or a comma at an end): write a "
                "number there or remove the comma."),
    ("1, 2, 3,", 3, "Step 1 has an empty value between two commas (or a comma at an end): write a "
                    "number there or remove the comma."),
    ("1 1_000 3", 3, "Step 1 holds `1_000`, which is not a number."),
    ("1\n" * 2001, 1, "Sequence length must be a whole number from 1 to 2,000 steps; got 2,001."),
])
def test_typed_rows_that_cannot_be_read_exactly_are_refused_naming_the_step(text, size, message):
    assert refusal(parse_rows, text, size) == message


def test_typed_rows_longer_than_an_upload_are_refused_before_reading():
    assert refusal(parse_rows, "1" * (LIMITS.max_upload_bytes + 1), 1) == (
        "The text is longer than 20 MiB.")


def test_a_size_that_is_not_a_positive_whole_number_is_a_programming_error():
    assert refusal(parse_rows, "1", 0) == "input_size must be a whole number of at least 1; got 0."
    assert refusal(parse_ids, "1", True) == ("vocab_size must be a whole number of at least 1; "
                                             "got True.")


matrices = st.integers(1, 5).flatmap(lambda features: hnp.arrays(
    np.float32, st.tuples(st.integers(1, 12), st.just(features)),
    elements=st.floats(width=32, allow_nan=False, allow_infinity=False)))


@settings(max_examples=60, deadline=None)
@given(values=matrices, separator=st.sampled_from([" ", ", ", ",", "\t", "  ,\t"]),
       step_end=st.sampled_from(["\n", "; ", "\r\n", "\n\n"]))
def test_any_finite_float32_matrix_written_out_reads_back_exactly(values, separator, step_end):
    text = step_end.join(separator.join(repr(float(x)) for x in row) for row in values)
    read = parse_rows(text, values.shape[1])
    assert read.dtype == np.float32
    np.testing.assert_array_equal(read, values)


@settings(max_examples=30, deadline=None)
@given(values=hnp.arrays(np.float32, st.integers(1, 30),
                         elements=st.floats(width=32, allow_nan=False, allow_infinity=False)),
       separator=st.sampled_from([" ", ", ", ","]))
def test_one_feature_on_one_line_reads_back_exactly(values, separator):
    read = parse_rows(separator.join(repr(float(x)) for x in values), 1)
    np.testing.assert_array_equal(read[:, 0], values)


# -- matrices from files ------------------------------------------------------------------------


SERIES = np.array([[1.5, -2.0, 3.0], [4.0, 5.25, -6.0], [7.0, 8.0, 9.5], [0.0, 1e-3, 2e5]])


def test_an_npy_of_each_shape_that_fits_reads_as_steps_by_features():
    for array, size in [(SERIES, 3), (SERIES[None], 3), (SERIES[:, 0], 1),
                        (SERIES[:, :1], 1), (SERIES[:, :1][None], 1)]:
        matrix = read_matrix(npy(array), "x.npy", size)
        assert matrix.values.dtype == np.float32 and matrix.values.shape == (4, size)
        np.testing.assert_array_equal(matrix.values, SERIES[:, :size].astype(np.float32))
        assert matrix.columns == tuple(f"x[{k}]" for k in range(size))
        assert matrix.arrays == () and matrix.key[1] == ""
    assert read_matrix(npy(SERIES), "x.npy", 3).source == "`x.npy`, 4 steps × 3 features"
    assert read_matrix(npy(SERIES[:1, :1]), "x.npy", 1).source == "`x.npy`, 1 step × 1 feature"


def test_integer_and_boolean_arrays_are_numbers():
    matrix = read_matrix(npy(np.arange(6, dtype=np.int64).reshape(2, 3)), "x.npy", 3)
    np.testing.assert_array_equal(matrix.values, [[0, 1, 2], [3, 4, 5]])
    matrix = read_matrix(npy(np.array([True, False])), "b.npy", 1)
    np.testing.assert_array_equal(matrix.values, [[1], [0]])


def test_the_values_are_read_only_and_keyed_by_the_file_and_array_never_by_the_numbers():
    data = npz(a=SERIES, b=SERIES)
    first, second = (read_matrix(data, "x.npz", 3, array=name) for name in ("a", "b"))
    assert not first.values.flags.writeable
    assert first.key[0] == second.key[0] and first.key != second.key
    assert first.key == read_matrix(data, "renamed.npz", 3, array="a").key
    assert read_matrix(npy(SERIES), "x.npy", 3).key != read_matrix(npy(SERIES[:2]), "x.npy", 3).key


def test_an_npz_gives_its_only_array_the_named_one_or_the_first_that_fits():
    only = read_matrix(npz(x=SERIES), "data.npz", 3)
    assert only.source == "`data.npz`, array `x`, 4 steps × 3 features"
    assert only.arrays == ("x",) and only.key[1] == "x"
    several = npz(labels=np.arange(4), weights=np.ones((3, 5)), x=SERIES, y=SERIES * 2)
    picked = read_matrix(several, "data.npz", 3)
    assert picked.key[1] == "x" and picked.arrays == ("labels", "weights", "x", "y")
    named = read_matrix(several, "data.npz", 3, array="y")
    np.testing.assert_array_equal(named.values, (SERIES * 2).astype(np.float32))
    one_feature = read_matrix(several, "data.npz", 1)
    assert one_feature.key[1] == "labels"


def test_an_npz_refusal_still_lists_its_arrays_for_a_picker():
    several = npz(weights=np.ones((3, 5)), x=SERIES)
    with pytest.raises(MatrixError) as caught:
        read_matrix(several, "data.npz", 3, array="weights")
    assert str(caught.value) == ("Array `weights` of `data.npz` has shape (3, 5), but the model "
                                 "reads 3 features per step. Shapes that fit: (steps, 3) or "
                                 "(1, steps, 3). It may hold the features by row: save its "
                                 "transpose (x.T).")
    assert caught.value.arrays == ("weights", "x")
    with pytest.raises(MatrixError) as caught:
        read_matrix(several, "data.npz", 3, array="z")
    assert str(caught.value) == "`data.npz` has no array `z`; its arrays are `weights`, `x`."
    assert caught.value.arrays == ("weights", "x")
    with pytest.raises(MatrixError) as caught:
        read_matrix(npz(a=np.ones((3, 2)), b=np.array(["x"]), c=SERIES), "data.npz", 4)
    assert str(caught.value) == ("None of the arrays in `data.npz` fits a model that reads 4 "
                                 "features per step: `a` (3, 2), `b` (1,) of str32, `c` (4, 3). "
                                 "Shapes that fit: (steps, 4) or (1, steps, 4).")
    assert caught.value.arrays == ("a", "b", "c")
    with pytest.raises(MatrixError) as caught:
        read_matrix(npz(x=np.array([1.0, np.nan])), "data.npz", 1)
    assert str(caught.value) == ("Array `x` of `data.npz` has a missing or non-finite value (NaN "
                                 "or inf) at step 2, feature 1.")
    assert caught.value.arrays == ("x",)


def test_a_csv_with_one_or_three_columns_of_numbers_reads_them_in_file_order():
    csv = b"date,speed,angle,load\nmon,1.5,-2,3\ntue,4,5.25,-6\n"
    matrix = read_matrix(csv, "run.csv", 3)
    np.testing.assert_array_equal(matrix.values, SERIES[:2].astype(np.float32))
    assert matrix.columns == ("speed", "angle", "load")
    assert matrix.source == "`run.csv`, columns `speed`, `angle`, `load`, 2 steps × 3 features"
    single = read_matrix(b"t,passengers\nJan,112\nFeb,118\nMar,132\n", "air.csv", 1)
    np.testing.assert_array_equal(single.values[:, 0], [112, 118, 132])
    assert single.source == "`air.csv`, column `passengers`, 3 steps × 1 feature"
    tab = read_matrix(b"a\tb\n1\t2\n3\t4\n", "x.tsv", 2)
    np.testing.assert_array_equal(tab.values, [[1, 2], [3, 4]])


@pytest.mark.parametrize(("csv", "size", "message"), ids=short, argvalues=[
    (b"step,x,y\n1,2,3\n2,3,4\n", 2,
     "`d.csv` has 3 columns of numbers (`step`, `x`, `y`), but the model reads 2 features per "
     "step: keep only its 2 input columns (a column of numbers such as a step count or time index "
     "counts too)."),
    (b"x\n1\n2\n", 2, "`d.csv` has 1 column of numbers (`x`), but the model reads 2 features per "
                      "step."),
    (b"x,y\n1,\"1,200\"\n2,3\n", 2,
     "`d.csv` has 1 column of numbers (`x`), but the model reads 2 features per step. Left out: "
     "“y”: row 1 of the data (line 2 of the file) holds “1,200”; in a comma-separated file a "
     "comma inside a number could be a decimal comma or a thousands separator, so it is not "
     "read. Write it without one (118.2, or 1182), or separate the columns with semicolons to "
     "use a decimal comma."),
    (b"x,y\n1,\n2,3\n", 2,
     "Column “y” has a missing or non-finite value (NaN or inf) in row 1 of the data (line 2 of "
     "the file), 1 in all (an empty cell is missing too): fill it in or remove the row."),
    (b"x,y\n1,2\n2,-1e39\n", 2,
     "Column `y` holds -1e+39 in row 2 of the data (line 3 of the file): too large for float32, "
     "which the models compute in (its numbers end at about 3.4e+38)."),
    (b"1,2\n3,4\n", 2,
     "The first row of a CSV names its columns, but this one holds a number (“1”). If the file "
     "has no row of names, add one at the top (passengers, say); a column named by a number, "
     "such as a year, needs a letter in its name (y1949)."),
    (b"x\n" + b"1\n" * 2001, 1,
     "Sequence length must be a whole number from 1 to 2,000 steps; got 2,001."),
])
def test_a_csv_that_does_not_fit_the_model_is_refused_saying_why(csv, size, message):
    assert refusal(read_matrix, csv, "d.csv", size) == message


def test_a_txt_that_numpy_savetxt_wrote_is_read_one_step_per_line():
    buffer = io.StringIO()
    np.savetxt(buffer, SERIES, header="speed angle load")
    matrix = read_matrix(buffer.getvalue().encode(), "x.txt", 3)
    np.testing.assert_array_equal(matrix.values, SERIES.astype(np.float32))
    assert matrix.source == "`x.txt`, 4 steps × 3 features"
    assert refusal(read_matrix, b"1 2\n3\n", "x.txt", 2) == (
        "Step 2 has 1 number, but the model reads 2 features per step.")
    # a .txt with a header and commas follows the CSV rules
    assert read_matrix(b"a,b\n1,2\n", "x.txt", 2).columns == ("a", "b")


MATRIX_REFUSALS = [
    (b"x", "data.json", 1, "`data.json` is not a file of numbers this page reads: upload a .csv, "
                           ".tsv, .txt, .npy or .npz file."),
    (b"", "data.npy", 1, "`data.npy` is empty."),
    (b"hello", "data.npy", 1, "`data.npy` is not a NumPy .npy file that can be read: it does not "
                              "start as a .npy file does. Save the array with numpy.save."),
    (b"\x93NUMPY\x01\x00\x10\x00{'descr': oops}   \n", "data.npy", 1,
     "`data.npy` is not a NumPy .npy file that can be read: its header, which says the array's "
     "shape and type, cannot be read. Save the array with numpy.save."),
    (b"\x93NUMPY\x03\x00\x10\x00\x00\x00{'descr': oops}   \n", "data.npy", 1,
     "`data.npy` is not a NumPy .npy file that can be read: its format version 3.0 is for records "
     "with named fields, not plain numbers. Save the array with numpy.save."),
    (npy(np.arange(6.0))[:-8], "data.npy", 1,
     "`data.npy` is cut short: its header promises an array of shape (6,) but the data ends "
     "before that."),
    (b"hello", "data.npz", 1, "`data.npz` is not a NumPy .npz file (not a zip archive): save the "
                              "arrays with numpy.savez."),
    (npy(np.array([1, "a"], dtype=object)), "data.npy", 1,
     "The array in `data.npy` holds Python objects (dtype `object`), not real numbers: save an "
     "array of floats or integers."),
    (npy(np.array([1 + 2j])), "data.npy", 1,
     "The array in `data.npy` holds complex numbers (dtype `complex128`), not real numbers: save "
     "an array of floats or integers."),
    (npy(np.array(["ab"])), "data.npy", 1,
     "The array in `data.npy` holds text (dtype `<U2`), not real numbers: save an array of "
     "floats or integers."),
    (npy(np.array(["2020-01-01"], dtype="datetime64[D]")), "data.npy", 1,
     "The array in `data.npy` holds dates (dtype `datetime64[D]`), not real numbers: save an "
     "array of floats or integers."),
    (npy(np.float64(3.0)), "data.npy", 1,
     "The array in `data.npy` has shape (), but the model reads 1 feature per step. Shapes that "
     "fit: (steps,), (steps, 1) or (1, steps, 1)."),
    (npy(np.zeros((2, 3, 4))), "data.npy", 4,
     "The array in `data.npy` has shape (2, 3, 4), but the model reads 4 features per step. "
     "Shapes that fit: (steps, 4) or (1, steps, 4)."),
    (npy(np.zeros((0, 3))), "data.npy", 3,
     "The array in `data.npy` holds no steps (shape (0, 3))."),
    (npy(np.zeros((2001, 3))), "data.npy", 3,
     "The array in `data.npy` has 2,001 steps (shape (2001, 3)); at most 2,000 are read."),
    (npy(np.array([1.0, np.nan, np.inf])), "data.npy", 1,
     "The array in `data.npy` has a missing or non-finite value (NaN or inf) at step 2, feature "
     "1; 2 in all."),
    (npy(np.array([[1.0, 2.0], [3.0, -1e39]])), "data.npy", 2,
     "The array in `data.npy` holds -1e+39 at step 2, feature 2: too large for float32, which "
     "the models compute in (its numbers end at about 3.4e+38)."),
    (npz(o=np.array([1, "a"], dtype=object)), "data.npz", 1,
     "Array `o` of `data.npz` holds Python objects (dtype `object`), not real numbers: save an "
     "array of floats or integers."),
]


@pytest.mark.parametrize(("data", "filename", "size", "message"), MATRIX_REFUSALS,
                         ids=[case[-1][:64] for case in MATRIX_REFUSALS])
def test_a_matrix_file_that_cannot_be_read_exactly_is_refused_saying_why(data, filename, size,
                                                                         message):
    assert refusal(read_matrix, data, filename, size) == message


def test_a_matrix_over_the_upload_limit_is_refused_before_reading():
    huge = b"\0" * (LIMITS.max_upload_bytes + 1)
    assert refusal(read_matrix, huge, "x.npy", 1) == "`x.npy` is larger than 20 MiB."


def test_an_npz_whose_array_cannot_be_read_says_so():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.npy", b"not an array")
        archive.writestr("notes.txt", b"ignored: not an array")
    with pytest.raises(MatrixError) as caught:
        read_matrix(buffer.getvalue(), "data.npz", 1)
    assert str(caught.value) == ("Array `x` of `data.npz` cannot be read: it does not start as a "
                                 ".npy file does.")
    assert caught.value.arrays == ("x",)
    empty = io.BytesIO()
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("notes.txt", b"no arrays")
    assert refusal(read_matrix, empty.getvalue(), "data.npz", 1) == "`data.npz` holds no arrays."


def test_an_object_array_that_gets_past_the_header_is_refused_by_numpy_in_our_words(monkeypatch):
    """np.load(allow_pickle=False) is the last guard: were the header read differently, its
    error becomes a message, and no object is ever unpickled."""
    data = npy(np.array([1, "a"], dtype=object))
    monkeypatch.setattr(np.lib.format, "read_array_header_1_0",
                        lambda stream: ((2,), False, np.dtype(np.float64)))
    assert refusal(read_matrix, data, "data.npy", 1) == (
        "The `data.npy` holds Python objects, which are not read (they could run code): save an "
        "array of floats or integers.")


def test_a_file_name_in_a_message_is_printable_and_inert():
    matrix = read_matrix(npy(SERIES), "dir/*x*\u202e`.npy", 3)
    assert matrix.source == "`*x*.npy`, 4 steps × 3 features"


# -- standardising ------------------------------------------------------------------------------


def test_standardise_gives_each_feature_mean_zero_and_deviation_one_and_says_what_it_took():
    values = np.array([[1.0, 5.0, 10.0], [3.0, 5.0, 20.0], [5.0, 5.0, 60.0]], dtype=np.float32)
    scaled, note = standardise(values, ("speed", "flat", "load"))
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(scaled[:, [0, 2]].std(axis=0), 1, atol=1e-6)
    np.testing.assert_array_equal(scaled[:, 1], 0)
    assert note == ("Standardised per feature (minus its mean, divided by its standard "
                    "deviation): `speed` mean 3, sd 1.633; `flat` mean 5, sd 0 (constant: only "
                    "centred); `load` mean 30, sd 21.6.")
    _, default = standardise(values[:, :1])
    assert default.startswith("Standardised per feature (minus its mean, divided by its standard "
                              "deviation): `x[0]` mean 3")


def test_standardise_lists_at_most_eight_features_and_refuses_no_steps():
    _, note = standardise(np.arange(20.0).reshape(2, 10))
    assert note.endswith("`x[7]` mean 12, sd 5; and 2 more.")
    assert refusal(standardise, np.zeros((0, 3))) == (
        "standardise takes a (steps, features) array with at least one step.")


def test_a_matrix_is_a_frozen_record():
    matrix = read_matrix(npy(SERIES), "x.npy", 3)
    assert isinstance(matrix, Matrix)
    with pytest.raises(AttributeError):
        matrix.source = "changed"
