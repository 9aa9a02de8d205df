"""Prometheus-style durations (``30s``, ``5m``, ``1h30m``), as routing configurations write them.

A duration is one or more ``<integer><unit>`` parts, units largest first and each at most once:
``ms`` (milliseconds), ``s``, ``m``, ``h``, ``d`` (24 hours), ``w`` (7 days). A bare number is
rejected, even ``0``: ``group_wait: 30`` could mean seconds or minutes, and guessing wrong here
means a page that is held back or repeated at the wrong rate.
"""

from __future__ import annotations

import re
from datetime import timedelta

#: Shown in every error, so the reader sees the form right away.
EXPECTED = "expected e.g. 0s, 30s, 5m, 4h"
_UNITS_HELP = "units ms, s, m, h, d, w, largest first, as in 1h30m"

# Largest first; the format order matters for both parsing and rendering.
_UNITS: tuple[tuple[str, timedelta], ...] = (
    ("w", timedelta(weeks=1)),
    ("d", timedelta(days=1)),
    ("h", timedelta(hours=1)),
    ("m", timedelta(minutes=1)),
    ("s", timedelta(seconds=1)),
    ("ms", timedelta(milliseconds=1)),
)
_PATTERN = re.compile("".join(f"(?:(?P<{unit}>[0-9]+){unit})?" for unit, _ in _UNITS))


class DurationError(ValueError):
    """A duration could not be read; the message shows the accepted form."""


def parse_duration(text: str) -> timedelta:
    """``text`` as a timedelta; raises :class:`DurationError` for anything but the form above."""
    if not isinstance(text, str):
        raise DurationError(f"bad duration {text!r}: a duration is text with a unit; {EXPECTED}")
    value = text.strip()
    if not value:
        raise DurationError(f"empty duration; {EXPECTED}")
    if value.startswith("-"):
        raise DurationError(f"bad duration {text!r}: a duration cannot be negative; {EXPECTED}")
    if re.fullmatch(r"\+?[0-9]+(\.[0-9]*)?", value):
        raise DurationError(f"bad duration {text!r}: a number needs a unit; {EXPECTED} ({_UNITS_HELP})")
    found = _PATTERN.fullmatch(value)
    if found is None:
        raise DurationError(f"bad duration {text!r}; {EXPECTED} ({_UNITS_HELP})")
    total = timedelta()
    try:
        for unit, size in _UNITS:
            amount = found.group(unit)
            if amount is not None:
                total += int(amount) * size
    except OverflowError:
        raise DurationError(f"bad duration {text!r}: too large") from None
    return total


def format_duration(value: timedelta) -> str:
    """The inverse of :func:`parse_duration`: ``timedelta(minutes=90)`` -> ``1h30m``, zero -> ``0s``.

    Raises ValueError for a negative value or one with a fraction of a millisecond, which the
    form cannot express.
    """
    if value < timedelta():
        raise ValueError(f"cannot format a negative duration ({value})")
    microseconds = value // timedelta(microseconds=1)
    if microseconds % 1000:
        raise ValueError(f"cannot format {value}: the form goes down to milliseconds")
    if not microseconds:
        return "0s"
    parts = []
    remaining = microseconds
    for unit, size in _UNITS:
        unit_microseconds = size // timedelta(microseconds=1)
        count, remaining = divmod(remaining, unit_microseconds)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
