"""CSV input (core/io/tables.py): every number is read by a stated rule or refused with the row,
never misread (issue 19 item 8); files are read within bounds (item 2); names are cut and NUL
never gets through (item 9)."""

from __future__ import annotations

import codecs
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.io.tables import (
    CSV_RULES, MAX_COLUMNS, MAX_ROWS, csv_column_values, read_table,
)


def numbers(data: bytes, column: str | None = None) -> list[float]:
    return csv_column_values(data, column)[0]


def refusal(data: bytes) -> str:
    with pytest.raises(ValueError) as caught:
        table = read_table(data)
        for index in table.numeric:  # a file may be read but its column refused
            table.choice(index).numbers()
    return str(caught.value)


# -- the cases ---------------------------------------------------------------------------


def test_a_decimal_comma_in_one_column_is_read_as_a_decimal_never_as_its_last_digits():
    # pandas read this as [5, 2, 7] and the page forecast "≈ 7"
    assert numbers(b"passengers\n112,5\n118,2\n130,7\n") == [112.5, 118.2, 130.7]


def test_a_comma_inside_a_quoted_number_of_a_comma_separated_file_is_refused():
    # pandas (thousands=",") read "118,2" as 1182
    said = refusal(b'month,passengers\n1949-01,"118,2"\n1949-02,"119,4"\n')
    assert "“118,2”" in said and "row 1 of the data (line 2 of the file)" in said
    assert "decimal comma or a thousands separator" in said
    said = refusal(b'month,passengers\n1949-01,"1,200"\n1949-02,"1,300"\n')
    assert "“1,200”" in said


def test_a_row_with_an_extra_field_is_refused_with_its_row():
    said = refusal(b"month,passengers\n1949-01,112\n1949-02,118,5\n1949-03,130\n")
    assert said.startswith("Row 2 of the data (line 3 of the file) has 3 fields, but the first "
                           "row names 2 columns")
    said = refusal(b"month,passengers\n1949-01,112\n1949-02\n")
    assert "Row 2 of the data (line 3 of the file) has 1 field," in said


def test_a_semicolon_file_is_read_with_its_decimal_commas():
    table = read_table("month;passengers\n1949-01;112,5\n1949-02;118,2\n".encode())
    assert table.choice(1).numbers() == [112.5, 118.2]
    assert table.reading == ("semicolon-separated, 2 rows of data; decimal comma in "
                             "“passengers”")
    assert numbers(b"month;passengers\n1949-01;112\n1949-02;118\n") == [112, 118]


def test_a_tab_separated_file_is_read():
    assert numbers(b"month\tpassengers\n1949-01\t112.5\n1949-02\t118\n") == [112.5, 118]
    assert numbers(b"month\tpassengers\n1949-01\t112,5\n1949-02\t118\n") == [112.5, 118]


@pytest.mark.parametrize("data", [
    b"month;passengers\n1949-01;1,200\n1949-02;1,300\n",  # 1.2 or 1200?
    b"month;passengers\n1949-01;1.200\n1949-02;1.300\n",  # 1.2 or 1200 (a European point)?
    b"passengers\n1,200\n1,300\n",
])
def test_a_column_whose_marks_could_be_thousands_separators_is_refused(data):
    assert "could be a decimal or a number with a thousands separator" in refusal(data)


def test_another_number_in_the_column_settles_the_decimal_mark():
    assert numbers(b"month;passengers\n1949-01;1,200\n1949-02;1,35\n") == [1.2, 1.35]
    assert numbers(b"month;passengers\n1949-01;1.200\n1949-02;1.35\n") == [1.2, 1.35]
    assert numbers(b"month,passengers\n1949-01,1.200\n1949-02,1.300\n") == [1.2, 1.3]


@pytest.mark.parametrize("cell", ["1.200,5", "1,200,000", "1,200.5"])
def test_thousands_separators_are_not_read(cell):
    said = refusal(f"month;passengers\n1949-01;{cell}\n1949-02;7\n".encode())
    assert "thousands separators are not read" in said or "one decimal mark" in said


def test_one_column_may_not_mix_decimal_marks():
    said = refusal(b"month;passengers\n1949-01;112.5\n1949-02;118,5\n")
    assert "one column must use one decimal mark" in said


def test_rows_that_split_evenly_on_two_separators_are_refused():
    said = refusal(b"a;b,c\n1;2,3\n4;5,6\n")
    assert "split evenly on both “,” and “;”" in said


def test_a_name_that_is_a_number_is_refused_rather_than_losing_the_first_value():
    said = refusal(b"112\n118\n132\n")
    assert "The first row of a CSV names its columns, but this one holds a number (“112”)" in said
    assert "y1949" in refusal(b"month,1949\nJan,112\nFeb,118\n")


# -- encodings, NUL, blank lines -------------------------------------------------------------------


@pytest.mark.parametrize("encode", [
    lambda text: text.encode("utf-16"),  # with its byte-order mark, as Excel writes it
    lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
    lambda text: text.encode("utf-8-sig"),
    lambda text: text.replace("\n", "\r\n").encode(),
    lambda text: text.replace("\n", "\r").encode(),
])
def test_utf16_a_byte_order_mark_and_any_line_end_are_read(encode):
    table = read_table(encode("month,passengers\n1949-01,112\n1949-02,118\n"))
    assert table.names == ("month", "passengers")
    assert table.choice(1).numbers() == [112, 118]


def test_nul_never_gets_through():
    """UTF-16 without its mark is a NUL between every character: refused, not listed."""
    said = refusal("month,passengers\n1949-01,112\n".encode("utf-16-le"))
    assert "NUL characters" in said and "\x00" not in said


def test_text_that_is_not_utf8_is_refused_with_what_to_do():
    said = refusal("month,passengers\nJän,112\n".encode("latin-1"))
    assert said.startswith("That file could not be read as CSV: 'utf-8' codec can't decode")
    assert "CSV UTF-8" in said


def test_a_blank_line_inside_the_data_is_a_missing_value_and_blank_lines_at_the_end_are_not_rows():
    table = read_table(b"passengers\n112\n\n130\n\n\n")
    assert table.rows == 3
    assert "missing or non-finite value (NaN or inf) in row 2 of the data (line 3 of the file)" \
        in table.choice(0).problem


@pytest.mark.parametrize("cell", ["", "NaN", "NA", "inf", "-Infinity", "1e999"])
def test_a_missing_or_infinite_cell_is_refused_with_its_row(cell):
    table = read_table(f"month,passengers\n1949-01,112\n1949-02,{cell}\n1949-03,130\n".encode())
    assert table.numeric == (1,)  # still a column of numbers, so the reason can be given
    assert "row 2 of the data (line 3 of the file)" in table.choice(1).problem


def test_a_cell_over_the_csv_modules_limit_is_refused_briefly():
    said = refusal(b"x" * 1_000_000 + b"\n1\n2\n")
    assert "a cell is longer than 131,072 characters" in said and len(said) < 300


# -- bounds --------------------------------------------------------------------------------------


def test_too_many_rows_are_refused_after_reading_only_the_first():
    assert "more than 2,001 rows of data" in refusal(b"passengers\n" + b"120\n" * 3000)
    assert len(numbers(b"passengers\n" + b"120\n" * MAX_ROWS)) == MAX_ROWS


def test_too_many_columns_are_refused_from_the_header():
    header = ",".join(f"column_{i}" for i in range(20_000))
    said = refusal(f"{header}\n{','.join(['1'] * 20_000)}\n".encode())
    assert said.startswith("The CSV has 20,000 columns; at most 100 are read.")
    wide = ",".join(f"c{i}" for i in range(MAX_COLUMNS))
    assert len(read_table(f"{wide}\n{','.join(['1'] * MAX_COLUMNS)}\n".encode()).numeric) == 100


def test_long_names_are_cut_and_at_most_ten_are_listed():
    names = ",".join("n" * 1000 + str(i) for i in range(50))
    said = refusal(f"{names}\n{','.join(['x'] * 50)}\n".encode())
    assert len(said) < 1500
    assert "n" * 39 + "…" in said and "and 40 more" in said


def test_names_lose_control_and_bidi_characters():
    table = read_table("\u202epass\x1bengers\u200b,b\n1,2\n".encode())
    assert table.names == ("passengers", "b")


def test_the_table_keeps_only_the_columns_of_numbers():
    table = read_table(b"month,passengers,note\n1949-01,112,a\n1949-02,118,b\n")
    assert table.numeric == (1,) and set(table.values) == {1}
    assert [reason.split(":")[0] for reason in table.left_out] == ["“month”", "“note”"]
    assert table.choice(0).problem  # not a column of numbers


def test_the_choice_is_keyed_by_the_file_and_column_not_by_the_numbers():
    first = read_table(b"a,b\n1,2\n3,4\n").choice(1)
    again = read_table(b"a,b\n1,2\n3,4\n").choice(1)
    other = read_table(b"a,b\n1,2\n3,5\n").choice(1)
    assert first.key == again.key != other.key
    assert first.key[1] == 1 and len(first.key[0]) == 64


def test_the_rules_are_stated():
    for rule in ("first row names the columns", "semicolons or tabs", "decimal comma",
                 "Thousands separators are not read", "UTF-8 or UTF-16", "2,001 rows"):
        assert rule in CSV_RULES


# -- round trips -----------------------------------------------------------------------------------


finite = st.floats(min_value=1e-300, max_value=1e300, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=1, max_size=30))
def test_any_series_written_plainly_reads_back_exactly(values):
    body = "".join(f"m{i},{v!r}\n" for i, v in enumerate(values))
    assert numbers(f"month,passengers\n{body}".encode()) == values


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=2, max_size=30))
def test_any_series_written_with_decimal_commas_reads_back_exactly_or_is_refused(values):
    body = "".join(f"m{i};{v!r}".replace(".", ",") + "\n" for i, v in enumerate(values))
    try:
        read = numbers(f"month;passengers\n{body}".encode())
    except ValueError as err:  # every comma cell could be a thousands separator: said so
        assert "thousands separator" in str(err)
    else:
        assert read == values and all(math.isfinite(v) for v in read)
