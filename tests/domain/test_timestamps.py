"""RFC 3339 timestamps to integer nanoseconds and back (tradewatch.domain.events.timestamps)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from tradewatch.domain.events.timestamps import (
    NS_PER_SECOND,
    TimestampError,
    datetime_to_ns,
    format_rfc3339_ns,
    ns_to_datetime,
    parse_rfc3339_ns,
)

NS_2000 = 946_684_800 * NS_PER_SECOND  # 2000-01-01T00:00:00Z
NS_2100 = 4_102_444_800 * NS_PER_SECOND  # 2100-01-01T00:00:00Z
# 2026-11-21T14:30:00Z
NS_EXAMPLE = 1_795_271_400 * NS_PER_SECOND

ns_2000_2100 = st.integers(min_value=NS_2000, max_value=NS_2100 - 1)


# ------------------------------------------------------------------ round trips


@settings(max_examples=500, deadline=None)
@given(ns_2000_2100)
def test_format_then_parse_is_exact_to_the_nanosecond(ns):
    text = format_rfc3339_ns(ns)
    assert parse_rfc3339_ns(text) == ns


@settings(max_examples=300, deadline=None)
@given(ns_2000_2100)
def test_formatted_text_is_canonical_rfc3339_utc_with_nine_digits(ns):
    text = format_rfc3339_ns(ns)
    assert len(text) == 30
    assert text.endswith("Z")
    assert text[10] == "T" and text[19] == "."
    # The date and time agree with the standard library (to the microsecond it can hold).
    moment = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=ns // 1000)
    assert text[:26] == moment.strftime("%Y-%m-%dT%H:%M:%S.%f")
    assert int(text[20:29]) == ns % NS_PER_SECOND


@settings(max_examples=300, deadline=None)
@given(
    ns_2000_2100,
    st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
    st.integers(min_value=1, max_value=9),
)
def test_any_offset_and_any_number_of_fraction_digits_parse_to_the_same_instant(ns, offset_minutes, digits):
    # Truncate ns to the number of fractional digits written.
    step = 10 ** (9 - digits)
    ns = ns - ns % step
    local = ns + offset_minutes * 60 * NS_PER_SECOND
    seconds, frac = divmod(local, NS_PER_SECOND)
    wall = datetime(1970, 1, 1) + timedelta(seconds=seconds)
    sign = "+" if offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    text = f"{wall:%Y-%m-%dT%H:%M:%S}.{frac // step:0{digits}d}{sign}{hours:02d}:{minutes:02d}"
    assert parse_rfc3339_ns(text) == ns


@settings(max_examples=200, deadline=None)
@given(ns_2000_2100)
def test_parse_then_format_round_trips_canonical_text(ns):
    text = format_rfc3339_ns(ns)
    assert format_rfc3339_ns(parse_rfc3339_ns(text)) == text


# ------------------------------------------------------------------ accepted forms


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-21T14:30:00Z", NS_EXAMPLE),
        ("2026-11-21T14:30:00z", NS_EXAMPLE),
        ("2026-11-21t14:30:00Z", NS_EXAMPLE),
        ("2026-11-21 14:30:00Z", NS_EXAMPLE),
        ("2026-11-21T14:30:00+00:00", NS_EXAMPLE),
        ("2026-11-21T14:30:00-00:00", NS_EXAMPLE),
        ("2026-11-21T20:00:00+05:30", NS_EXAMPLE),
        ("2026-11-21T10:30:00-04:00", NS_EXAMPLE),
        # An offset that crosses midnight.
        ("2026-11-22T00:00:00+09:30", NS_EXAMPLE),
        ("2026-11-21T14:30:00.123456789Z", NS_EXAMPLE + 123_456_789),
        ("2026-11-21T14:30:00.123456789z", NS_EXAMPLE + 123_456_789),
        ("2026-11-21T20:00:00.000000001+05:30", NS_EXAMPLE + 1),
        ("2026-11-21T10:30:00.999999999-04:00", NS_EXAMPLE + 999_999_999),
    ],
)
def test_accepted_forms(text, expected):
    assert parse_rfc3339_ns(text) == expected


@pytest.mark.parametrize(
    ("fraction", "ns"),
    [
        ("1", 100_000_000),
        ("12", 120_000_000),
        ("123", 123_000_000),
        ("1234", 123_400_000),
        ("12345", 123_450_000),
        ("123456", 123_456_000),
        ("1234567", 123_456_700),
        ("12345678", 123_456_780),
        ("123456789", 123_456_789),
        ("000000001", 1),
        ("5", 500_000_000),
    ],
)
@pytest.mark.parametrize("zone", ["Z", "z", "+00:00", "+05:30", "-04:00"])
def test_one_to_nine_fraction_digits(fraction, ns, zone):
    offsets = {"Z": 0, "z": 0, "+00:00": 0, "+05:30": 5 * 3600 + 1800, "-04:00": -4 * 3600}
    base = datetime(2026, 11, 21, 14, 30) + timedelta(seconds=offsets[zone])
    text = f"{base:%Y-%m-%dT%H:%M:%S}.{fraction}{zone}"
    assert parse_rfc3339_ns(text) == NS_EXAMPLE + ns


def test_leap_day_and_year_boundaries():
    assert parse_rfc3339_ns("2028-02-29T00:00:00Z") == int(datetime(2028, 2, 29, tzinfo=timezone.utc).timestamp()) * NS_PER_SECOND
    assert parse_rfc3339_ns("2000-01-01T00:00:00.000000000Z") == NS_2000
    assert parse_rfc3339_ns("2099-12-31T23:59:59.999999999Z") == NS_2100 - 1
    assert format_rfc3339_ns(NS_2100 - 1) == "2099-12-31T23:59:59.999999999Z"
    assert format_rfc3339_ns(0) == "1970-01-01T00:00:00.000000000Z"


# ------------------------------------------------------------------ rejections


def _reject(text: str) -> str:
    with pytest.raises(TimestampError) as info:
        parse_rfc3339_ns(text)
    message = str(info.value)
    # Every rejection says what is accepted.
    assert "RFC 3339" in message
    assert "UTC offset" in message
    assert "9 fractional digits" in message
    return message


def test_missing_offset_is_rejected_and_says_so():
    message = _reject("2026-11-21T14:30:00")
    assert "missing UTC offset" in message
    message = _reject("2026-11-21T14:30:00.123456789")
    assert "missing UTC offset" in message


def test_ten_fraction_digits_are_rejected():
    _reject("2026-11-21T14:30:00.1234567890Z")


def test_february_30_is_rejected_with_the_reason():
    message = _reject("2026-02-30T14:30:00Z")
    assert "day is out of range" in message
    # The canonical 30-character form goes through the fast path; it must reject too.
    message = _reject("2026-02-30T14:30:00.000000000Z")
    assert "day is out of range" in message
    _reject("2027-02-29T00:00:00Z")  # not a leap year


@pytest.mark.parametrize(
    "text",
    ["2026-11-21T24:00:00Z", "2026-11-21T24:00:00.000000000Z", "2026-11-21T24:00:00+01:00"],
)
def test_hour_24_is_rejected(text):
    message = _reject(text)
    assert "hour" in message


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-21T14:60:00Z",
        "2026-11-21T14:30:61Z",
        "2026-13-01T00:00:00Z",
        "2026-00-10T00:00:00Z",
        "2026-11-00T00:00:00Z",
    ],
)
def test_out_of_range_fields_are_rejected(text):
    _reject(text)


@pytest.mark.parametrize("text", ["2026-11-21T14:30:00+24:00", "2026-11-21T14:30:00+05:60"])
def test_out_of_range_offsets_are_rejected(text):
    message = _reject(text)
    assert "offset" in message


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        "now",
        "1795271400",
        "2026-11-21",
        "14:30:00Z",
        "2026-11-21T14:30Z",
        "2026-11-21T14:30:00.Z",
        "2026-11-21T14:30:00,123Z",
        "2026/11/21T14:30:00Z",
        "21-11-2026T14:30:00Z",
        "2026-11-21T14:30:00+0530",
        "2026-11-21T14:30:00+05",
        "2026-11-21T14:30:00 Z",
        " 2026-11-21T14:30:00Z",
        "2026-11-21T14:30:00Z ",
        "2026-11-21T14:30:00ZZ",
        "2026-11-21T14:30:00.123456789ZZ",
        "2026-11-21T14:30:00UTC",
        "Sat, 21 Nov 2026 14:30:00 GMT",
        "2026-11-21T14:30:00.12345678xZ",
    ],
)
def test_garbage_is_rejected(text):
    _reject(text)


@pytest.mark.parametrize(
    "text",
    [
        # ISO 8601 week date: not RFC 3339. The 30-character fast path hands the date to
        # date.fromisoformat, which accepts it (2026-W47-6 is 2026-11-21).
        "2026-W47-6T14:30:00.123456789Z",
        # Non-ASCII digits: RFC 3339 digits are ASCII only; str.isdigit, int() and the regex's
        # \d all accept Arabic-Indic digits.
        "2026-11-21T14:30:00.\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669Z",
        "2026-11-21T14:30:00.\u0661Z",
        # Superscript digits pass str.isdigit but not int(): must still be a TimestampError
        # that says what is accepted, not a bare "invalid literal for int()".
        "2026-11-21T14:30:00.\u00b2\u00b2\u00b2\u00b2\u00b2\u00b2\u00b2\u00b2\u00b2Z",
    ],
)
def test_forms_outside_rfc3339_are_rejected(text):
    _reject(text)


# ------------------------------------------------------------------ datetime helpers


def test_ns_to_datetime_truncates_to_microseconds_in_utc():
    moment = ns_to_datetime(NS_EXAMPLE + 123_456_789)
    assert moment == datetime(2026, 11, 21, 14, 30, 0, 123_456, tzinfo=timezone.utc)
    assert moment.utcoffset() == timedelta(0)
    # Truncation, not rounding.
    assert ns_to_datetime(NS_EXAMPLE + 999).microsecond == 0
    assert ns_to_datetime(NS_EXAMPLE + 999_999_999).microsecond == 999_999


def test_datetime_to_ns_of_aware_datetimes():
    assert datetime_to_ns(datetime(2026, 11, 21, 14, 30, tzinfo=timezone.utc)) == NS_EXAMPLE
    plus_0530 = timezone(timedelta(hours=5, minutes=30))
    assert datetime_to_ns(datetime(2026, 11, 21, 20, 0, tzinfo=plus_0530)) == NS_EXAMPLE
    minus_4 = timezone(timedelta(hours=-4))
    assert datetime_to_ns(datetime(2026, 11, 21, 10, 30, 0, 7, tzinfo=minus_4)) == NS_EXAMPLE + 7_000
    assert datetime_to_ns(datetime(1970, 1, 1, tzinfo=timezone.utc)) == 0
    assert datetime_to_ns(datetime(1969, 12, 31, 23, 59, 59, tzinfo=timezone.utc)) == -NS_PER_SECOND


def test_datetime_to_ns_rejects_naive_datetimes():
    with pytest.raises(TimestampError, match="naive datetime; pass an aware datetime"):
        datetime_to_ns(datetime(2026, 11, 21, 14, 30))


@settings(max_examples=300, deadline=None)
@given(ns_2000_2100)
def test_datetime_round_trip_keeps_microseconds(ns):
    assert datetime_to_ns(ns_to_datetime(ns)) == ns - ns % 1000


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(timezone.utc)))
def test_datetime_to_ns_agrees_with_rfc3339_parsing(moment):
    assert parse_rfc3339_ns(moment.isoformat()) == datetime_to_ns(moment)
    assert ns_to_datetime(datetime_to_ns(moment)) == moment
