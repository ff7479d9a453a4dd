"""The documented limits: checked on the server, with messages that name the limit and the value."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import core.limits
from core.limits import (
    LIMITS,
    LimitError,
    check_hidden_size,
    check_layers,
    check_param_count,
    check_search_trials,
    check_search_workers,
    check_seq_len,
    check_text,
    check_training_seconds,
    check_training_steps,
    check_upload_size,
)

# (check, limit field, lowest accepted, highest accepted, words the message must use)
WHOLE_NUMBER_CHECKS = [
    (check_seq_len, "max_seq_len", 1, LIMITS.max_seq_len, "Sequence length"),
    (check_hidden_size, "max_hidden_size", 1, LIMITS.max_hidden_size, "Hidden size"),
    (check_layers, "max_layers", 1, LIMITS.max_layers, "Number of layers"),
    (check_param_count, "max_params", 0, LIMITS.max_params, "Model size"),
    (check_training_steps, "max_training_steps", 1, LIMITS.max_training_steps, "Training steps"),
    (check_upload_size, "max_upload_bytes", 0, LIMITS.max_upload_bytes, "Upload"),
    (check_search_trials, "max_search_trials", 1, LIMITS.max_search_trials, "Trials"),
    (check_search_workers, "max_search_workers", 1, LIMITS.max_search_workers, "Workers"),
]
IDS = [case[1] for case in WHOLE_NUMBER_CHECKS]


def test_the_limits_suit_a_small_shared_host():
    assert LIMITS.max_seq_len == 2_000 and LIMITS.max_hidden_size == 512
    assert LIMITS.max_layers == 4 and LIMITS.max_text_chars == 2_000
    assert LIMITS.max_upload_bytes == 20 * 2**20  # = server.maxUploadSize = 20 (MB) in Streamlit
    # The largest model accepted is 20 MB as float32: the upload limit, whatever the file's dtype.
    assert LIMITS.max_params * 4 <= LIMITS.max_upload_bytes
    assert LIMITS.max_training_steps == 10_000 and LIMITS.max_training_seconds == 120
    # Even read character by character, the longest typed text is a sequence within the limit.
    assert LIMITS.max_text_chars <= LIMITS.max_seq_len


def test_limits_cannot_be_changed_at_run_time():
    with pytest.raises(dataclasses.FrozenInstanceError):
        LIMITS.max_seq_len = 10**9


def test_docstring_table_matches_the_values():
    # The README cites this table: every limit has a row, and the row shows the value in force.
    rows = {line.split("|")[2].strip(" `"): line for line in core.limits.__doc__.splitlines()
            if line.startswith("| ") and "`" in line}
    assert set(rows) == {field.name for field in dataclasses.fields(LIMITS)}
    for field in dataclasses.fields(LIMITS):
        value = getattr(LIMITS, field.name)
        shown = f"{value:,}" if isinstance(value, int) else f"{value:,g}"
        assert f" {shown} " in rows[field.name].split("|")[3], rows[field.name]


@pytest.mark.parametrize("check, field, low, high, label", WHOLE_NUMBER_CHECKS, ids=IDS)
def test_values_within_the_limit_pass_through_as_ints(check, field, low, high, label):
    for value in (low, high, (low + high) // 2, np.int64(high), float(high)):
        result = check(value)
        assert result == int(value) and type(result) is int


@pytest.mark.parametrize("check, field, low, high, label", WHOLE_NUMBER_CHECKS, ids=IDS)
def test_one_over_the_limit_is_refused_naming_limit_and_value(check, field, low, high, label):
    with pytest.raises(LimitError) as raised:
        check(high + 1)
    error = raised.value
    assert isinstance(error, ValueError), "callers that catch ValueError catch it too"
    assert error.limit == field and error.value == high + 1
    assert label in str(error)
    assert f"{high:,}" in str(error) and f"{high + 1:,}" in str(error), str(error)


@pytest.mark.parametrize("check, field, low, high, label", WHOLE_NUMBER_CHECKS, ids=IDS)
@pytest.mark.parametrize("bad", [-1, 2.5, math.nan, math.inf, -math.inf, "50", None, True, [3],
                                 10**100])
def test_what_a_url_or_script_could_send_is_refused(check, field, low, high, label, bad):
    with pytest.raises(LimitError) as raised:
        check(bad)
    assert raised.value.limit == field and label in str(raised.value)


@pytest.mark.parametrize("check, field, low, high, label", WHOLE_NUMBER_CHECKS, ids=IDS)
def test_below_the_lowest_value_is_refused(check, field, low, high, label):
    with pytest.raises(LimitError, match=f"got {low - 1:,}"):
        check(low - 1)


def test_sequence_length_zero_and_huge_are_refused_with_a_readable_message():
    with pytest.raises(LimitError, match=r"^Sequence length must be a whole number from 1 to "
                                         r"2,000 steps; got 0\.$"):
        check_seq_len(0)
    with pytest.raises(LimitError, match=r"got 1,000,000\.$"):
        check_seq_len(1_000_000)
    with pytest.raises(LimitError, match=r"got nan\.$"):
        check_seq_len(math.nan)


def test_text_limit_counts_characters_not_bytes():
    longest = "é" * LIMITS.max_text_chars  # 2 bytes each in UTF-8, one character each
    assert check_text(longest) is longest
    assert check_text("") == ""
    assert check_text("👍" * LIMITS.max_text_chars) == "👍" * LIMITS.max_text_chars
    with pytest.raises(LimitError) as raised:
        check_text("a" * (LIMITS.max_text_chars + 1))
    assert raised.value.limit == "max_text_chars"
    assert str(raised.value) == "Text is too long: at most 2,000 characters; got 2,001."
    with pytest.raises(LimitError, match="must be a string"):
        check_text(b"bytes are not text")


def test_upload_size_message_says_mebibytes_too():
    with pytest.raises(LimitError) as raised:
        check_upload_size(50 * 2**20)
    assert str(raised.value) == ("Upload is too large: at most 20,971,520 bytes (20 MiB); "
                                 "got 52,428,800 bytes (50.0 MiB).")


@pytest.mark.parametrize("seconds", [0.5, 1, 60, 120.0, np.float32(30)])
def test_training_time_within_the_limit(seconds):
    assert check_training_seconds(seconds) == float(seconds)


@pytest.mark.parametrize("seconds", [0, -1, 120.001, 3600, math.nan, math.inf, "60", None, True])
def test_training_time_over_the_limit_or_not_a_number_is_refused(seconds):
    with pytest.raises(LimitError) as raised:
        check_training_seconds(seconds)
    assert raised.value.limit == "max_training_seconds"
    assert "Training time" in str(raised.value) and "120 seconds" in str(raised.value)
