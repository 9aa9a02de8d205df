"""Decide whether a redelivered event is the same fact or a reused event_id."""

from __future__ import annotations

from typing import Any

from tradewatch.domain.events.models import EventBase

_MAX_LISTED = 5


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value


def describe_difference(stored: EventBase, incoming: EventBase) -> str | None:
    """None when the two events are value-equal; else the differing fields, stored vs incoming."""
    if stored == incoming:
        return None
    left: dict[str, Any] = {}
    right: dict[str, Any] = {}
    _flatten(stored.model_dump(mode="json"), "", left)
    _flatten(incoming.model_dump(mode="json"), "", right)
    def differs(key: str) -> bool:
        a, b = left.get(key), right.get(key)
        return a != b or type(a) is not type(b)

    keys = sorted(k for k in left.keys() | right.keys() if differs(k))
    if not keys:
        return "content differs"
    shown = ", ".join(f"{k} (stored {left.get(k)!r}, got {right.get(k)!r})" for k in keys[:_MAX_LISTED])
    more = f" and {len(keys) - _MAX_LISTED} more" if len(keys) > _MAX_LISTED else ""
    return f"fields differ: {shown}{more}"
