"""Prometheus-style durations: parse, reject ambiguity, format back."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tradewatch.alerting.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0s", timedelta(0)),
        ("30s", timedelta(seconds=30)),
        ("500ms", timedelta(milliseconds=500)),
        ("5m", timedelta(minutes=5)),
        ("4h", timedelta(hours=4)),
        ("1d", timedelta(days=1)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1m500ms", timedelta(minutes=1, milliseconds=500)),
        ("2w3d4h5m6s7ms", timedelta(weeks=2, days=3, hours=4, minutes=5, seconds=6, milliseconds=7)),
        ("90m", timedelta(minutes=90)),  # a part may exceed the next unit
        (" 30s ", timedelta(seconds=30)),
    ],
)
def test_parses(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("30", "bad duration '30': a number needs a unit; expected e.g. 0s, 30s, 5m, 4h"),
        ("0", "bad duration '0': a number needs a unit"),
        ("1.5", "a number needs a unit"),
        ("-5m", "bad duration '-5m': a duration cannot be negative; expected e.g. 0s, 30s, 5m, 4h"),
        ("5 minutes", "bad duration '5 minutes'; expected e.g. 0s, 30s, 5m, 4h"),
        ("1m1h", "bad duration '1m1h'; expected e.g. 0s, 30s, 5m, 4h (units ms, s, m, h, d, w, largest first"),
        ("1h1h", "bad duration '1h1h'"),
        ("1.5h", "bad duration '1.5h'"),
        ("5M", "bad duration '5M'"),
        ("1y", "bad duration '1y'"),
        ("", "empty duration; expected e.g. 0s, 30s, 5m, 4h"),
        ("99999999999999999999w", "too large"),
    ],
)
def test_rejects_with_the_accepted_form(text, message):
    with pytest.raises(DurationError) as caught:
        parse_duration(text)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_rejects_non_text():
    with pytest.raises(DurationError, match="a duration is text with a unit"):
        parse_duration(30)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=30), "30s"),
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(hours=4), "4h"),
        (timedelta(days=8), "1w1d"),
        (timedelta(days=1, seconds=1, milliseconds=1), "1d1s1ms"),
    ],
)
def test_formats(value, text):
    assert format_duration(value) == text
    assert parse_duration(text) == value


def test_format_refuses_what_the_form_cannot_express():
    with pytest.raises(ValueError, match="negative"):
        format_duration(timedelta(seconds=-1))
    with pytest.raises(ValueError, match="milliseconds"):
        format_duration(timedelta(microseconds=1500))
