"""Event files: the event contract's JSON, one event per line (JSON Lines).

``tradewatch simulate --output`` writes them, ``tradewatch compliance check --events`` reads
them. A line is exactly what ``AuditClient`` sends for an event (``event_line``): the envelope
and payload, absent optional fields left out, RFC 3339 times with nanoseconds.

Reading (``read_event_lines``) validates each line as ingest does (``parsing.parse_batch``) and
keeps the good events beside the bad lines: blank lines are skipped, an invalid line becomes a
``LineProblem`` with its line number (1-based) and the parser's reason. Event ids follow the
trail's rule: an identical repeat is a redelivery (absorbed, counted), a repeat with different
content is a conflict (a problem on the repeating line); the first copy is kept either way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tradewatch.domain.events.models import EventBase
from tradewatch.domain.events.parsing import parse_batch

_CHUNK_LINES = 10_000  # lines validated per parse_batch call


def event_line(event: EventBase) -> str:
    """One event as a line of an event file (without the newline): the JSON ``AuditClient``
    sends (``model_dump_json(exclude_none=True)``)."""
    return event.model_dump_json(exclude_none=True)


@dataclass(frozen=True)
class LineProblem:
    """A line that is not a valid event: where it is (1-based) and why."""

    line: int
    reason: str
    event_id: str | None = None


@dataclass
class EventFile:
    """What an event file holds: its valid events (the first copy of each event_id, in file
    order), the problems of its invalid lines, and how many identical repeats were absorbed."""

    events: list[EventBase] = field(default_factory=list)
    problems: list[LineProblem] = field(default_factory=list)
    lines: int = 0
    """Non-blank lines read."""
    redeliveries: int = 0
    """Lines repeating an earlier event exactly (absorbed, as ingest absorbs a redelivery)."""


def read_event_lines(lines: Iterable[str | bytes]) -> EventFile:
    """Validate the lines of an event file (module docstring); never raises for bad content."""
    result = EventFile()
    first_line: dict[str, int] = {}
    by_id: dict[str, EventBase] = {}
    texts: list[str | bytes] = []
    numbers: list[int] = []

    def validate() -> None:
        good, bad = parse_batch(texts)
        for rejection in bad:
            result.problems.append(LineProblem(numbers[rejection.index], rejection.reason, rejection.event_id))
        for parsed in good:
            number, event = numbers[parsed.index], parsed.event
            earlier = by_id.get(event.event_id)
            if earlier is None:
                by_id[event.event_id] = event
                first_line[event.event_id] = number
                result.events.append(event)
            elif earlier == event:
                result.redeliveries += 1
            else:
                result.problems.append(LineProblem(
                    number, f"event_id {event.event_id} was already used on line {first_line[event.event_id]} by "
                            "an event with different content (a conflict, which ingest rejects); the first is kept",
                    event.event_id))
        texts.clear()
        numbers.clear()

    for number, line in enumerate(lines, start=1):
        text = _text(line)
        if not text.strip():
            continue
        result.lines += 1
        texts.append(text)
        numbers.append(number)
        if len(texts) == _CHUNK_LINES:
            validate()
    if texts:
        validate()
    result.problems.sort(key=lambda problem: problem.line)
    return result


def _text(line: str | bytes) -> str | bytes:
    """The line without its line break; bytes that are not UTF-8 stay bytes (the parser says why)."""
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError:
            return line.rstrip(b"\r\n")
    return line.rstrip("\r\n")


__all__ = ["EventFile", "LineProblem", "event_line", "read_event_lines"]
