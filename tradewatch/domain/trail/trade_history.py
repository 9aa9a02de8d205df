"""Reconstruct one trade's history from its events, in causal order.

Causal order: the signal, then its risk checks, then LLM decisions, then the execution
stage (orders, fills and position updates interleaved by occurred_at, an order's status change
before a fill at the same nanosecond, a fill before the position update it caused), ties
broken by ingest seq. Stages are ordered by the chain, not by clock, so a producer whose clock
runs behind cannot put a fill before its order's signal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tradewatch.domain.trail.records import StoredEvent

_STAGE = {"signal": 0, "risk_check": 1, "llm_decision": 2, "order": 3, "fill": 3, "position_update": 3}
_TIE = {"order": 0, "fill": 1, "position_update": 2}


@dataclass(frozen=True)
class TradeHistory:
    signal_id: str
    events: list[StoredEvent] = field(default_factory=list)

    def of_type(self, event_type: str) -> list[StoredEvent]:
        return [e for e in self.events if e.event_type == event_type]

    @property
    def signal(self) -> StoredEvent | None:
        signals = self.of_type("signal")
        return signals[0] if signals else None

    @property
    def order_ids(self) -> list[str]:
        return list(dict.fromkeys(e.event.order_id for e in self.events if e.event.order_id))

    def to_dict(self) -> dict:
        return {
            "signal_id": self.signal_id,
            "events": [
                {"seq": e.seq, "received_at": e.received_at.isoformat(), **e.event.model_dump(mode="json")}
                for e in self.events
            ],
        }


def causal_key(stored: StoredEvent) -> tuple[int, int, int, int]:
    kind = stored.event_type
    return (_STAGE.get(kind, 4), stored.occurred_at_ns, _TIE.get(kind, 3), stored.seq)


def build_trade_history(signal_id: str, events: list[StoredEvent]) -> TradeHistory:
    """Order ``events`` (everything carrying the signal_id, or an order_id of its orders)."""
    unique = {e.seq: e for e in events}
    return TradeHistory(signal_id=signal_id, events=sorted(unique.values(), key=causal_key))
