"""The character-level language model's built-in step features (core/interpret/features.py):
strings, comments, brackets, position in the line and indentation, on hand-written Python, on
the shipped text against Python's own tokenizer, and on the task's held-out windows."""

from __future__ import annotations

import io
import tokenize

import numpy as np
import pytest
import torch

from core.interpret import builtin_feature, builtin_names, heldout_batch, rank_units, trace_heldout
from core.interpret.features import ONE_LINE, TRIPLE, code_states, text_states
from core.interpret.heldout import HeldoutBatch
from core.model import ModelSpec, SequenceModel
from core.tasks.base import Batch, pad_ids
from core.tasks.charlm import CharLMTask, load_text

TASK = CharLMTask()
FEATURES = ["inside a string", "inside a one-line string", "inside a comment",
            "inside a string or a comment", "inside brackets", "bracket depth",
            "position in the line", "indentation of the line"]


def digits(values) -> str:
    return "".join(str(int(v)) for v in values)


def model(cell="lstm", hidden=6):
    spec = ModelSpec(cell, TASK.kind, TASK.input_size, hidden, TASK.output_size,
                     vocab_size=TASK.vocab_size)
    torch.manual_seed(0)
    return SequenceModel(spec).eval()


def typed_batch(*texts: str) -> HeldoutBatch:
    """A lab batch of typed snippets, right-padded (no window starts: each is read from its own
    start)."""
    ids, lengths = pad_ids([TASK.vocab.ids(list(text)) for text in texts])
    lengths = lengths.numpy()
    batch = Batch(ids, ids, torch.as_tensor(lengths))
    return HeldoutBatch("charlm", torch.zeros(*ids.shape, 4), lengths, batch,
                        [list(text) for text in texts])


# -- the scanner on hand-written code ----------------------------------------------------------

def test_strings_from_the_opening_quote_to_before_the_closing_one():
    text = "a = 'x' + \"y\" + ''"
    states = code_states(text)
    assert digits(states.string) == "0000110000110000" + "10"
    text = 'f(r"\\"#(", b)'  # an escaped quote, a hash and a bracket inside a raw string
    states = code_states(text)
    assert digits(states.string) == "000" + "11111" + "00000"
    assert digits(states.comment) == "0" * len(text)
    assert digits(states.depth) == "0" + "1" * 11 + "0"


def test_triple_quoted_strings_span_lines_and_hold_other_quotes():
    text = 'x = """a\n\'b\' "c"\n"""\ny'
    states = code_states(text)
    inside = states.string == TRIPLE
    start, end = text.index('"""'), text.rindex('"""')
    assert inside[start: end + 2].all() and not inside[end + 2:].any()
    assert not inside[:start].any() and not (states.string == ONE_LINE).any()
    assert code_states("'''it''s'''").string.tolist() == [2] * 10 + [0]


def test_comments_run_to_the_end_of_the_line_and_hide_quotes_and_brackets():
    text = "f(x)  # it's (\ny = [1]"
    states = code_states(text)
    assert digits(states.comment) == "000000" + "11111111" + "0" + "0000000"
    assert digits(states.string) == "0" * len(text)
    assert states.depth.tolist() == [0, 1, 1, 0] + [0] * 11 + [0, 0, 0, 0, 1, 1, 0]


def test_nested_brackets_count_and_never_go_below_zero():
    states = code_states("f([{a}], (b))) + c")
    assert states.depth.tolist()[:14] == [0, 1, 2, 3, 3, 2, 1, 1, 1, 2, 2, 1, 0, 0]
    assert states.depth.tolist()[14:] == [0] * 4  # a closing bracket too many: still 0


def test_position_and_indentation_of_the_line():
    text = "if x:\n    y = 1\n\n  z\n"
    states = code_states(text)
    assert states.column.tolist() == [1, 2, 3, 4, 5, 0, *range(1, 10), 0, 0, 1, 2, 3, 0]
    assert states.indent.tolist() == [0] * 6 + [1, 2, 3, 4] + [4] * 5 + [0, 0, 1, 2, 2, 0]


def test_an_unclosed_one_line_string_ends_with_its_line():
    states = code_states("x = 'abc\ny = 1")
    assert digits(states.string) == "0000" + "1111" + "0" + "00000"


def test_strings_and_comments_agree_with_pythons_tokenizer_on_the_shipped_text():
    for part in ("heldout", "train"):
        text = load_text(part)
        offsets = np.cumsum([0] + [len(line) for line in text.splitlines(keepends=True)])
        string = np.zeros(len(text), np.int8)
        comment = np.zeros(len(text), bool)
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            start = offsets[token.start[0] - 1] + token.start[1]
            end = offsets[token.end[0] - 1] + token.end[1]
            if token.type == tokenize.STRING:
                quote = min(i for i in (token.string.find("'"), token.string.find('"')) if i >= 0)
                triple = token.string[quote: quote + 3] in ("'''", '"""')
                string[start + quote: end - 1] = TRIPLE if triple else ONE_LINE
            elif token.type == tokenize.COMMENT:
                comment[start:end] = True
        states = text_states(part)
        assert np.array_equal(states.string, string), part
        assert np.array_equal(states.comment, comment), part
        assert 0.2 < (string > 0).mean() < 0.4 and 0.02 < (string == ONE_LINE).mean() < 0.1


# -- built-in features on the task's batches ---------------------------------------------------

def test_the_task_offers_its_features_in_order():
    assert builtin_names("charlm") == FEATURES


def test_heldout_windows_take_their_state_from_the_whole_text():
    batch = heldout_batch(TASK, model(), n=60, seed=4, seq_len=80)
    states = text_states("heldout")
    starts = batch.info["start"]
    for name, of in [("inside a string", states.string > 0),
                     ("inside a one-line string", states.string == ONE_LINE),
                     ("inside a comment", states.comment),
                     ("inside a string or a comment", (states.string > 0) | states.comment),
                     ("inside brackets", states.depth > 0),
                     ("bracket depth", states.depth), ("position in the line", states.column),
                     ("indentation of the line", states.indent)]:
        feature = builtin_feature(batch, name)
        assert feature.values.shape == (60, 80) and feature.steps == 60 * 80
        assert feature.binary == (name.startswith("inside"))
        expected = np.stack([of[s: s + 80] for s in starts]).astype(np.float64)
        assert np.array_equal(feature.values, expected), name
    # a window that begins inside a docstring is inside it from its first character: the
    # whole text says so, the window alone could not
    docstring = int(np.flatnonzero((states.string[:-200] == TRIPLE)
                                   & (states.string[1:-199] == TRIPLE))[500])
    one = TASK.windows("heldout", np.array([docstring]), 30)
    lab = HeldoutBatch("charlm", torch.zeros(1, 30, 4), np.array([30]), one, [["x"] * 30],
                       {k: v.numpy() for k, v in one.info.items()})
    assert builtin_feature(lab, "inside a string").values[0, 0] == 1


def test_typed_snippets_are_read_from_their_own_start():
    batch = typed_batch("def f(a='#'):", "    return [a]  # (")
    inside = builtin_feature(batch, "inside a string").values
    assert digits(inside[0, :13]) == "0000000011000"
    assert np.isnan(inside[0, 13:]).all()  # the shorter snippet's padding
    assert digits(builtin_feature(batch, "inside a comment").values[1]) == "0" * 16 + "111"
    prose = builtin_feature(batch, "inside a string or a comment").values
    assert digits(prose[0, :13]) == "0000000011000" and digits(prose[1]) == "0" * 16 + "111"
    depth = builtin_feature(batch, "bracket depth").values
    assert depth[0, :13].tolist() == [0] * 5 + [1] * 6 + [0, 0]
    assert builtin_feature(batch, "indentation of the line").values[1].tolist() == (
        [1, 2, 3, 4] + [4] * 15)
    assert builtin_feature(batch, "position in the line").values[1].tolist() == (
        list(range(1, 20)))


def test_windows_that_are_not_the_text_at_their_starts_are_refused():
    batch = heldout_batch(TASK, model(), n=4, seed=1, seq_len=20)
    batch.info["start"] = batch.info["start"] + 1
    with pytest.raises(ValueError, match="not the shipped text at the starts"):
        builtin_feature(batch, "inside a string")


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_every_feature_ranks_every_unit(cell):
    net = model(cell)
    batch = heldout_batch(TASK, net, n=40, seed=2, seq_len=60)
    trace = trace_heldout(net, batch)
    for name in FEATURES:
        table = rank_units(trace, builtin_feature(batch, name))
        assert len(table) == 6 * (2 if cell == "lstm" else 1)
        assert table["abs_correlation"].notna().all() and (table["steps"] == 40 * 60).all()
        if name.startswith("inside"):
            assert table["probe_accuracy"].between(0, 1).all()
