"""Turn what a producer sent into validated events, or into rejections a person can act on.

A batch item is the event's JSON text (what ``AuditClient`` sends, kept verbatim as the raw
record) or an already decoded JSON object. JSON numbers are decoded as ``Decimal`` so that
prices and quantities are kept exactly as written. One bad item never affects the others.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable

from pydantic import ValidationError

from tradewatch.domain.events.models import EVENT_ADAPTER, EVENT_TYPES, MODEL_BY_TYPE, EventBase
from tradewatch.domain.events.payloads import keep_json_types

_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=lambda name: _reject_constant(name))
# A JSON number with 16 or more significant digits does not survive a trip through float64;
# texts containing a run of 16 digits or dots take the exact (slower) path. Strings that merely
# contain such runs also do, which only costs speed. bytes.translate + a substring search
# finds the run ten times faster than a regex would (this runs once per ingested event).
_DIGIT_RUN_TABLE = bytes(0x30 if chr(i) in "0123456789." else 0x20 for i in range(256))
_DIGIT_RUN = b"0" * 16
_MAX_SHOWN_VALUE = 80


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON; numbers must be finite")


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """A valid event and the exact text it arrived as."""

    event: EventBase
    raw: str
    index: int = 0


@dataclass(frozen=True, slots=True)
class Rejection:
    """An item that is not a valid event: its raw text, where it was, and why."""

    raw: str
    reason: str
    index: int
    event_id: str | None = None
    event_type: str | None = None
    code: str = "invalid"


class EventValidationError(ValueError):
    """Raised by ``parse_event`` with a reason naming the field, the value and what is accepted."""


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN_VALUE else text[: _MAX_SHOWN_VALUE - 3] + "..."


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem: ``field: got <value>; <what is accepted>``."""
    parts = []
    for item in error.errors(include_url=False):
        loc = [str(p) for p in item["loc"]]
        # Drop the discriminator's tag pydantic puts in front of union member fields.
        event_type = loc[0] if loc and loc[0] in EVENT_TYPES else None
        if event_type:
            loc = loc[1:]
        where = ".".join(loc) or "event"
        message = item["msg"].removeprefix("Value error, ")
        why = MODEL_BY_TYPE[event_type].required_keys.get(where) if event_type else None
        if why and (item["type"] == "missing" or item["input"] is None):
            article = "an" if event_type[0] in "aeiou" else "a"
            parts.append(f"{where}: missing; {article} {event_type} event needs {where} ({why})")
        elif item["type"] == "missing":
            parts.append(f"{where}: missing; required")
        elif item["type"] == "union_tag_invalid":
            parts.append(f"event_type: got {_shown(item['input'].get('event_type'))}; accepted: {', '.join(EVENT_TYPES)}")
        elif item["type"] == "union_tag_not_found":
            parts.append(f"event_type: missing; accepted: {', '.join(EVENT_TYPES)}")
        elif item["type"] == "extra_forbidden":
            parts.append(f"{where}: unknown envelope field; put extra data inside payload")
        elif where == "event" or item["type"] == "value_error" and isinstance(item["input"], dict):
            parts.append(f"{where}: {message}")
        else:
            parts.append(f"{where}: got {_shown(item['input'])}; {message}")
    return "; ".join(parts)


def decode_json(raw: str) -> Any:
    """Decode JSON with exact decimals. Raises ``EventValidationError`` naming the position."""
    try:
        return _DECODER.decode(raw)
    except json.JSONDecodeError as exc:
        raise EventValidationError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:
        raise EventValidationError(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise EventValidationError("not valid JSON for an event: nested too deeply") from None


def parse_event(item: str | bytes | dict, index: int = 0) -> ParsedEvent:
    """Validate one item. Raises ``EventValidationError`` with a reason a person can act on."""
    raw, data = _raw_and_data(item)
    event = _validate(data)
    return ParsedEvent(event=event, raw=raw if raw is not None else _text_of(data), index=index)


def _raw_and_data(item: str | bytes | dict) -> tuple[str | None, Any]:
    """The item's raw text (None for an object: it is written after validation) and its data."""
    if isinstance(item, bytes | bytearray):
        try:
            item = item.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EventValidationError(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    if isinstance(item, str):
        return item, decode_json(item)
    if isinstance(item, dict):
        return None, item
    raise EventValidationError(f"expected a JSON object (or its text), got {type(item).__name__}")


def _non_finite_path(value: Any, path: str) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return path
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, child in items:
        found = _non_finite_path(child, f"{path}.{key}" if path else str(key))
        if found:
            return found
    return None


def _text_of(data: dict) -> str:
    """The raw text recorded for an item that arrived as an object (not as JSON text)."""
    try:
        return json.dumps(data, default=str, separators=(",", ":"), allow_nan=False)
    except ValueError:
        where = _non_finite_path(data, "") or "event"
        raise EventValidationError(f"{where}: not a finite number; NaN and Infinity are not valid JSON") from None
    except RecursionError:
        raise EventValidationError("nested too deeply to be an event") from None


def _unstorable_text(value: Any) -> str | None:
    """Why a string in the event cannot be stored (PostgreSQL text and jsonb refuse the NUL
    character and lone UTF-16 surrogates), or None."""
    if isinstance(value, str):
        if "\x00" in value:
            return "contains the NUL character (\\u0000), which the audit trail cannot store"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone UTF-16 surrogate (e.g. \\ud800), which is not valid Unicode text"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if (reason := _unstorable_text(key) or _unstorable_text(item)) is not None:
                return reason
    elif isinstance(value, list):
        for item in value:
            if (reason := _unstorable_text(item)) is not None:
                return reason
    return None


def _validate(data: Any) -> EventBase:
    """The exact path: every problem with the item, in one reason."""
    if not isinstance(data, dict):
        raise EventValidationError(f"expected a JSON object, got {type(data).__name__}")
    problems = []
    if data.get("event_id") is None:
        # A default id would make a redelivered event look new: the producer must assign it.
        problems.append("event_id: missing; the producer assigns it (a UUID) so that a redelivered event is recognised")
    if (unstorable := _unstorable_text(data)) is not None:
        problems.append(unstorable)
    event = None
    try:
        event = EVENT_ADAPTER.validate_python(data)
    except ValidationError as exc:
        problems.append(describe_validation_error(exc))
    if problems:
        raise EventValidationError("; ".join(problems))
    keep_json_types(event.payload)
    return event


def _fast_validate(raw: str) -> EventBase | None:
    """Parse and validate in one pass inside pydantic-core, when that is exact.

    JSON numbers become Decimals via float64 on this path, so it is taken only when no number
    could lose digits (no run of 16 digits or dots). Any failure returns None and the caller takes the
    exact path, which also produces the error message.
    """
    if _DIGIT_RUN in raw.encode("utf-8", "surrogatepass").translate(_DIGIT_RUN_TABLE):
        return None
    # The exact path checks these and explains them (cheap substring searches here): a missing
    # event_id, and \u escapes, which could spell a NUL or a lone surrogate (AuditClient writes
    # UTF-8 and escapes only control characters, so its events rarely contain one).
    if '"event_id"' not in raw or "\\u" in raw:
        return None
    try:
        return EVENT_ADAPTER.validate_json(raw)
    except ValidationError:
        return None


def _evidence(item: Any) -> str:
    """Best-effort text of a rejected item, kept so a person can see what was sent."""
    if isinstance(item, bytes | bytearray):
        return item.decode("utf-8", "replace")
    try:
        return json.dumps(item, default=str, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return repr(item)


def parse_batch(items: Iterable[Any]) -> tuple[list[ParsedEvent], list[Rejection]]:
    """Validate every item; good ones and rejections are returned side by side, in order."""
    good: list[ParsedEvent] = []
    bad: list[Rejection] = []
    for index, item in enumerate(items):
        if type(item) is str and (event := _fast_validate(item)) is not None:
            good.append(ParsedEvent(event=event, raw=item, index=index))
            continue
        raw = item if isinstance(item, str) else None
        data: Any = None
        try:
            raw, data = _raw_and_data(item)
            event = _validate(data)
            if raw is None:
                raw = _text_of(data)
            good.append(ParsedEvent(event=event, raw=raw, index=index))
        except EventValidationError as exc:
            if raw is None:
                raw = _evidence(item)
            ident = data.get("event_id") if isinstance(data, dict) else None
            etype = data.get("event_type") if isinstance(data, dict) else None
            bad.append(
                Rejection(
                    raw=raw,
                    reason=str(exc),
                    index=index,
                    event_id=str(ident)[:64] if ident is not None else None,
                    event_type=str(etype)[:64] if etype is not None else None,
                )
            )
    return good, bad
