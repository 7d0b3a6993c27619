"""Spoken small numbers read as digits (one parser for timers and task readers)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipecat_tandem.policy.number_words import (
    NUMBER_WORDS,
    number_words_to_digits,
    words_to_number,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("twenty five", 25.0),
        ("twenty-five", 25.0),
        ("a couple of", 2.0),
        ("one and a half", 1.5),
        ("1.5", 1.5),
        ("half a", 0.5),
        ("banana", None),
    ],
)
def test_words_to_number(text, value):
    assert words_to_number(text) == value


@pytest.mark.parametrize(
    ("text", "out"),
    [
        ("how many minutes are in three and a half days?", "how many minutes are in 3.5 days?"),
        ("how many hours are in two weeks", "how many hours are in 2 weeks"),
        ("in a day", "in 1 day"),
        ("a couple of days", "2 days"),
        ("twenty-five minutes and ten seconds", "25 minutes and 10 seconds"),
        ("and so on", "and so on"),
        ("What is 15% of 80?", "What is 15% of 80?"),
        ("", ""),
    ],
)
def test_number_words_to_digits(text, out):
    assert number_words_to_digits(text) == out


@pytest.mark.parametrize(
    ("text", "out"),
    [
        # What Whisper tiny.en wrote for a spoken "three and a half days" in calls.
        ("minutes in three in the half days", "minutes in 3.5 days"),
        ("minutes in three in a half days", "minutes in 3.5 days"),
        ("minutes in 3 and a half days", "minutes in 3.5 days"),
        ("minutes in 3 1/2 days", "minutes in 3.5 days"),
        ("minutes in 3½ days", "minutes in 3.5 days"),
        ("two-and-a-half hours", "2.5 hours"),
        ("1.5 and a half", "2"),
        # Not a number before it, or nothing after it: left as it was said.
        ("goals in the half time", "goals in the 0.5 time"),
        ("he scored two in the half", "he scored 2 in the 0.5"),
        ("pages 1/2 and 3", "pages 1/2 and 3"),
    ],
)
def test_a_garbled_half_after_a_number_reads_as_a_half(text, out):
    assert number_words_to_digits(text) == out


def test_number_words_to_digits_refuses_a_non_string():
    with pytest.raises(TypeError):
        number_words_to_digits(None)  # type: ignore[arg-type]


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.text(max_size=80))
def test_text_without_number_words_is_unchanged(text):
    words = {w.lower() for w in re.findall(r"[A-Za-z]+", text)}
    if words & set(NUMBER_WORDS):
        assert isinstance(number_words_to_digits(text), str)
    else:
        assert number_words_to_digits(text) == text
