"""RFC 3339 timestamps kept to the nanosecond.

A Python ``datetime`` and a PostgreSQL ``timestamptz`` both stop at microseconds, so an
event's time is carried as an ``int``: nanoseconds since the Unix epoch, UTC.

    ns = (days_since_epoch * 86_400 + seconds_of_day - utc_offset_seconds) * 10**9 + fraction_ns
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from functools import lru_cache

_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})"
    r"(?:\.(?P<frac>\d{1,9}))?(?P<tz>[Zz]|[+-]\d{2}:\d{2})?\Z",
    re.ASCII,
)
_EPOCH_ORDINAL = datetime(1970, 1, 1).toordinal()
NS_PER_SECOND = 1_000_000_000

ACCEPTED = "an RFC 3339 timestamp with a UTC offset and at most 9 fractional digits, e.g. 2026-11-21T14:30:00.123456789Z, or integer nanoseconds since the epoch"


class TimestampError(ValueError):
    """The text is not an RFC 3339 timestamp tradewatch accepts."""


def parse_rfc3339_ns(text: str) -> int:
    """Parse ``text`` to integer nanoseconds since the epoch (UTC).

    The offset is required: a timestamp without one is ambiguous and rejected.
    """
    # Fast path for the canonical form engines send (YYYY-MM-DDTHH:MM:SS.fffffffffZ): this runs
    # once per ingested event, so the text up to the second is parsed once and cached (events
    # cluster in time) and only the fraction is converted per call.
    if not text.isascii():
        raise TimestampError(f"contains non-ASCII characters; expected {ACCEPTED}")
    if len(text) == 30 and text[29] == "Z" and text[19] == "." and text[20:29].isdigit():
        seconds = _canonical_seconds(text[:19])
        if seconds is not None:
            return seconds * NS_PER_SECOND + int(text[20:29])
    match = _RFC3339.match(text)
    if match is None:
        raise TimestampError(f"not a timestamp; expected {ACCEPTED}")
    if match["tz"] is None:
        raise TimestampError(f"missing UTC offset ('Z' or ±HH:MM); expected {ACCEPTED}")
    try:
        naive = datetime.fromisoformat(f"{match['date']}T{match['time']}")
    except ValueError as exc:
        raise TimestampError(f"{exc}; expected {ACCEPTED}") from None
    seconds = (naive.toordinal() - _EPOCH_ORDINAL) * 86_400 + naive.hour * 3600 + naive.minute * 60 + naive.second
    tz = match["tz"]
    if tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        hours, minutes = int(tz[1:3]), int(tz[4:6])
        if hours > 23 or minutes > 59:
            raise TimestampError(f"offset {tz} out of range; expected {ACCEPTED}")
        seconds -= sign * (hours * 3600 + minutes * 60)
    frac = match["frac"] or ""
    return seconds * NS_PER_SECOND + (int(frac.ljust(9, "0")) if frac else 0)


def format_rfc3339_ns(ns: int) -> str:
    """Format integer nanoseconds since the epoch as RFC 3339 UTC with 9 fractional digits.

    Runs once per emitted event: the text up to the second is cached (events cluster in time),
    leaving one divmod and one format per call.
    """
    seconds, frac = divmod(ns, NS_PER_SECOND)
    return f"{_second_text(seconds)}.{frac:09d}Z"


@lru_cache(maxsize=4096)
def _second_text(seconds: int) -> str:
    days, second_of_day = divmod(seconds, 86_400)
    hour, rest = divmod(second_of_day, 3600)
    minute, second = divmod(rest, 60)
    return f"{_iso_date(days)}T{hour:02d}:{minute:02d}:{second:02d}"


@lru_cache(maxsize=4096)
def _canonical_seconds(text: str) -> int | None:
    """Seconds since the epoch of ``YYYY-MM-DDTHH:MM:SS`` (UTC), or None if it is not exactly that."""
    if not (text[4] == text[7] == "-" and text[10] == "T" and text[13] == text[16] == ":"):
        return None
    fields = (text[11:13], text[14:16], text[17:19])
    if not all(f.isdigit() for f in fields):
        return None
    days = _days_since_epoch(text[:10])
    hour, minute, second = (int(f) for f in fields)
    if days is None or hour > 23 or minute > 59 or second > 59:
        return None
    return days * 86_400 + hour * 3600 + minute * 60 + second


@lru_cache(maxsize=256)
def _days_since_epoch(iso_date: str) -> int | None:
    try:
        return date.fromisoformat(iso_date).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None


@lru_cache(maxsize=64)
def _iso_date(days_since_epoch: int) -> str:
    return date.fromordinal(_EPOCH_ORDINAL + days_since_epoch).isoformat()


def ns_to_datetime(ns: int) -> datetime:
    """Nanoseconds to an aware UTC datetime, truncated to microseconds (for query columns)."""
    seconds, frac = divmod(ns, NS_PER_SECOND)
    return datetime.fromtimestamp(seconds, tz=timezone.utc).replace(microsecond=frac // 1000)


def datetime_to_ns(moment: datetime) -> int:
    """An aware datetime to nanoseconds since the epoch. Naive datetimes are rejected."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise TimestampError("naive datetime; pass an aware datetime (UTC)")
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * NS_PER_SECOND + delta.microseconds * 1000
