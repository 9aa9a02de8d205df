"""A persisted event and the cursor used to follow the trail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tradewatch.domain.events.models import EventBase


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the trail holds it: the validated model, its raw text and ingest facts."""

    seq: int
    txid: int
    event: EventBase
    raw: str
    received_at: datetime

    @property
    def occurred_at_ns(self) -> int:
        return self.event.occurred_at

    @property
    def event_type(self) -> str:
        return self.event.event_type


@dataclass(frozen=True, slots=True, order=True)
class FollowCursor:
    """Position in the trail: the last delivered (txid, seq). Opaque to callers.

    Rows are delivered in (txid, seq) order, never past the oldest transaction still in
    flight, so a row committed late by another worker is delivered, never skipped.
    """

    txid: int = 0
    seq: int = 0

    def to_token(self) -> str:
        return f"{self.txid}:{self.seq}"

    @classmethod
    def from_token(cls, token: str | None) -> "FollowCursor":
        if not token:
            return cls()
        try:
            txid, seq = token.split(":")
            return cls(int(txid), int(seq))
        except ValueError:
            raise ValueError(f"cursor {token!r} is not a follow cursor; expected 'TXID:SEQ' as returned by follow()") from None
