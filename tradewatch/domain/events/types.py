"""Field types shared by the event models: decimals, identifiers, nanosecond timestamps."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import Field, PlainSerializer, PlainValidator, StringConstraints

from tradewatch.domain.events.timestamps import (
    ACCEPTED as TIMESTAMP_ACCEPTED,
    NS_PER_SECOND,
    datetime_to_ns,
    format_rfc3339_ns,
    parse_rfc3339_ns,
)

# Plausible event times: 2000-01-01 .. 2100-01-01. Outside it the number is almost always
# seconds or milliseconds sent where nanoseconds were meant, which we say in the error.
_MIN_NS = 946_684_800 * NS_PER_SECOND
_MAX_NS = 4_102_444_800 * NS_PER_SECOND


def _unit_guess(value: float) -> str:
    value = abs(value)
    return "seconds" if value < 10**11 else "milliseconds" if value < 10**14 else "microseconds" if value < 10**17 else "nanoseconds"


def _to_ns(value: object) -> int:
    # Hot path (once per ingested event): a str in the canonical form, then the range check.
    kind = type(value)
    if kind is str:
        ns = parse_rfc3339_ns(value)
    elif kind is int:
        ns = value
    elif isinstance(value, bool):
        raise ValueError(f"expected {TIMESTAMP_ACCEPTED}")
    elif isinstance(value, float | Decimal):
        raise ValueError(
            f"number {value} is not integer nanoseconds (it looks like {_unit_guess(float(value))}); "
            f"expected {TIMESTAMP_ACCEPTED}"
        )
    elif isinstance(value, int):
        ns = int(value)
    elif isinstance(value, datetime):
        ns = datetime_to_ns(value)
    else:
        raise ValueError(f"got {type(value).__name__}; expected {TIMESTAMP_ACCEPTED}")
    if _MIN_NS <= ns < _MAX_NS:
        return ns
    raise ValueError(
        f"{'integer ' + str(ns) if kind is int else 'time'} is outside 2000-01-01..2100-01-01"
        + (f" as nanoseconds (it looks like {_unit_guess(ns)})" if kind is int else "")
        + f"; expected {TIMESTAMP_ACCEPTED}"
    )


TimestampNs = Annotated[
    int,
    PlainValidator(_to_ns, json_schema_input_type=str | int),
    PlainSerializer(format_rfc3339_ns, return_type=str, when_used="json"),
]
"""Integer nanoseconds since the epoch; accepts RFC 3339 text, int ns or an aware datetime;
serialised to JSON as RFC 3339 UTC with 9 fractional digits."""

Identifier = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Text = Annotated[str, StringConstraints(max_length=10_000)]

Price = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
"""A strictly positive finite decimal price in the account currency."""
Quantity = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
"""A strictly positive finite decimal quantity (units, shares, contracts)."""
SignedQuantity = Annotated[Decimal, Field(allow_inf_nan=False)]
"""A finite decimal quantity; negative means short."""
Money = Annotated[Decimal, Field(allow_inf_nan=False)]
"""A finite decimal amount of money in the account currency (may be negative)."""
NonNegativeDecimal = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
