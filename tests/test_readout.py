"""What a units x time map reads under the pointer (issue #14): the values the figure sends
for the browser's readout (core/figures/readout.py) are the trace's, rounded as shown, in the
right map, unit and step. tests/e2e/test_readout_browser.py reads them off the page."""

from __future__ import annotations

import numpy as np
import pytest

from core.figures import readout as R
from core.figures.compare import compare_figure
from core.figures.explore import _map_data, explore_figure, map_rows
from core.figures.style import STAGE, InputSequence
from test_compare_figures import traces as compare_traces
from test_figures import build, make_trace


@pytest.mark.parametrize("values, dtype", [
    (np.array([[0.004, -0.996, 1.0, 0.125]]), "int8"),     # a gate's or h's range
    (np.array([[3.14159, -2.71828]]), "int16"),          # a cell state's
    (np.array([[1234.5, -0.001]]), "int32"),
])
def test_values_travel_rounded_as_shown_in_the_smallest_type_that_holds_them(values, dtype):
    entry = R.encoded_values(values)
    assert entry["dtype"] == dtype and entry["scale"] == 10 ** R.DECIMALS
    back = R.decoded_values(entry, *values.shape)
    np.testing.assert_array_equal(back, np.round(values, R.DECIMALS))


def test_a_missing_value_is_told_apart_from_every_number():
    values = np.array([[np.nan, -1.27, 1.27, np.inf]])
    back = R.decoded_values(R.encoded_values(values), 1, 4)
    assert np.isnan(back[0, 0]) and np.isnan(back[0, 3])
    np.testing.assert_array_equal(back[0, 1:3], [-1.27, 1.27])
    assert [R.shown(v) for v in back[0]] == ["no value", "−1.27", "1.27", "no value"]


def test_an_exploding_networks_values_go_as_they_are_and_read_in_powers_of_ten():
    values = np.array([[3.4e38, -2.5e7, np.inf, 0.123456]], dtype=np.float32)
    entry = R.encoded_values(values)
    assert entry["dtype"] == "float32" and entry["scale"] == 1
    back = R.decoded_values(entry, 1, 4)
    np.testing.assert_array_equal(back, values.astype(np.float64))
    assert [R.shown(v) for v in back[0]] == ["3.40e+38", "−2.50e+7", "inf", "0.12"]
    assert R.shown(1e5) == "1.00e+5" and R.shown(99999.994) == "99999.99"


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_every_map_of_explore_reads_its_own_values_at_its_place(cell):
    tr, fig = build(cell, T=40, H=8)
    (readout,) = fig["layout"]["meta"][R.READOUT_KEY]
    rows = map_rows(tr)
    assert [m["name"] for m in readout["maps"]] == [title.split(" (")[0] for _, title, _, _ in rows]
    assert (readout["units"], readout["steps"]) == (8, 40) and readout["withheld"] == ""
    # each map's unit 0 sits where its image's bottom row is drawn
    images = [im for im in fig["layout"]["images"] if im["yref"] == readout["y"]]
    assert [m["base"] for m in readout["maps"]] == pytest.approx([im["y"] - 8 + 0.5
                                                                 for im in images])
    for m, (key, *_rest) in zip(readout["maps"], rows):
        expected = np.round(_map_data(tr, key, 0, 0).T.astype(np.float64), R.DECIMALS)
        np.testing.assert_array_equal(R.decoded_values(m, 8, 40), expected)
    assert readout["tokens"] == []  # numbers in, no words to name


def test_a_word_task_names_the_word_at_each_step_and_a_stage_reads_larger():
    tr, _ = make_trace("gru", T=5, H=4)
    words = ["the", "keys", "to", "the", "extraordinarily-long-cabinet-of-curiosities"]
    fig = explore_figure(tr, InputSequence(tokens=words)).to_dict()
    (readout,) = fig["layout"]["meta"][R.READOUT_KEY]
    assert readout["tokens"][:4] == words[:4]
    assert readout["tokens"][4] == words[4][:R.MAX_TOKEN - 1] + "…"
    assert readout["font"] == 13
    staged = explore_figure(tr, InputSequence(tokens=words), stage=STAGE).to_dict()
    assert staged["layout"]["meta"][R.READOUT_KEY][0]["font"] >= STAGE.min_font


def test_maps_too_large_to_send_read_unit_and_step_and_say_why_not_the_value(monkeypatch):
    monkeypatch.setattr(R, "MAX_VALUES", 6 * 8 * 40 - 1)
    _, fig = build("lstm", T=40, H=8)
    (readout,) = fig["layout"]["meta"][R.READOUT_KEY]
    assert readout["withheld"].startswith("no values: this figure's maps hold more than")
    assert all("data" not in m for m in readout["maps"]) and len(readout["maps"]) == 6


def test_the_diagram_and_the_readout_write_a_value_that_rounds_to_zero_alike():
    from core.figures.style import _num, _nums

    tiny = np.array([[-0.004, 0.004, -0.006]])
    read = R.decoded_values(R.encoded_values(tiny), 1, 3)[0]
    assert [_num(v) for v in tiny[0]] == ["0.00", "0.00", "−0.01"]
    assert [R.shown(v) for v in read] == ["0.00", "0.00", "−0.01"]
    assert _nums([-0.004, -0.3], parenthesise_negative=True) == ["0.00", "(−0.30)"]


def test_every_compare_column_reads_its_own_maps_and_the_values_go_for_all_or_none(monkeypatch):
    traces = compare_traces(T=12, H=5)
    words = InputSequence(tokens=[f"w{t}" for t in range(12)])
    fig = compare_figure(traces, words).to_dict()
    readouts = fig["layout"]["meta"][R.READOUT_KEY]
    names = [m["name"] for r in readouts for m in r["maps"]]
    assert names == ["RNN (vanilla) · hidden state h", "LSTM · hidden state h",
                     "LSTM · forget gate f", "GRU · hidden state h", "GRU · update gate z"]
    for r, m in ((r, m) for r in readouts for m in r["maps"]):
        cell = {"RNN (vanilla)": "rnn", "LSTM": "lstm", "GRU": "gru"}[m["name"].split(" · ")[0]]
        tr = traces[cell]
        z = tr.hidden[-1, 0] if "hidden" in m["name"] else \
            tr.gates[{"lstm": "forget", "gru": "update"}[cell]][-1, 0]
        np.testing.assert_array_equal(R.decoded_values(m, 5, 12),
                                      np.round(z.T.astype(np.float64), R.DECIMALS))
        assert r["tokens"] == words.tokens and r["withheld"] == ""
    monkeypatch.setattr(R, "MAX_VALUES", 2 * 3 * 5 * 12 - 1)  # the figure's count, less one
    withheld = compare_figure(traces, words).to_dict()["layout"]["meta"][R.READOUT_KEY]
    assert all(r["withheld"] and all("data" not in m for m in r["maps"]) for r in withheld)


def test_words_are_written_out_only_where_they_clear_their_neighbours():
    from core.figures.explore import CHAR_WIDTH, words_fit

    # same-side neighbours are two steps apart: 2 x 270 / 6 = 90 px of room
    assert words_fit(["the", "cat", "sat", "on", "a", "mat"], 270, 13)
    # ten steps: 54 px of room; "paintings" and "followed" need (9 + 8) / 2 letters + 6 px
    long_words = ["paintings", "x", "followed", "y", "quietly", "z", "a", "b", "c", "d"]
    need = (9 + 8) / 2 * CHAR_WIDTH * 13 + 6
    assert 54 < need < 108
    assert not words_fit(long_words, 270, 13) and words_fit(long_words, 540, 13)
    assert not words_fit(["w" * 80], 270, 13)  # one word wider than the room it has


def test_a_sentence_the_row_cannot_write_out_is_given_as_a_line_of_text():
    from core.views.explore import input_line

    long = ("i think the paintings for the key like the red box under the famous windows quietly "
            "that followed the young old tables probably").split()  # the landing sentence
    assert input_line(InputSequence(tokens=long)) == "Input: " + " ".join(long)
    assert input_line(InputSequence(tokens=["the", "cat", "sat"])) is None  # written out
    assert input_line(InputSequence(tokens=["a"] * 31)) is None  # past 30 steps: its own box
    numbers = InputSequence(tokens=["0.1"] * 20, values=np.zeros((20, 1)))
    assert input_line(numbers) is None
