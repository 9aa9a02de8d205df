"""What the compliance rules read of an event: one flat, immutable record per event.

The rules touch a dozen payload fields of six event types; a ``ComplianceEvent`` (a NamedTuple:
built from a database row in one C call, attribute access without a dict) carries exactly those,
None where the event type has no such field. Money and quantities are float64 (the contract's
decimals; analytics and limits work in float), times integer UTC epoch nanoseconds.

| field | event types | meaning |
| --- | --- | --- |
| event_id, event_type, source, strategy_id, symbol, signal_id, order_id | all | the envelope |
| occurred_at_ns | all | engine time, ns |
| received_at_ns | all | tradewatch's receipt, ns (None when unknown: offline files) |
| check_name, passed, override, approver | risk_check | |
| decision, reviewed_by | llm_decision | |
| side, quantity, order_type, limit_price, status, decision_price | order | quantity also position_update (signed) |
| bid, ask, last | market_data | |
| market_price | position_update | |
| breaker_state, scope, trading_state | circuit_breaker | payload ``state`` is ``breaker_state`` here |

``canonical_key`` is the order the rule engine applies events in: event time, then the causal
stage of the type (a quote, a breaker, a position before a signal, its checks, its LLM decision,
then the order; so equal timestamps still read as cause before effect), then the event id, so
any arrival order of the same events gives the same sequence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from tradewatch.domain.events.fields import field_value
from tradewatch.domain.events.models import EventBase

#: Event types the rules read; every other type is counted as examined and skipped.
RULE_EVENT_TYPES: tuple[str, ...] = (
    "market_data", "circuit_breaker", "position_update", "signal", "risk_check", "llm_decision", "order",
)

# Cause before effect at equal timestamps (see module docstring).
_STAGE: dict[str, int] = {
    "market_data": 0, "circuit_breaker": 1, "position_update": 2, "account": 2, "signal": 3, "risk_check": 4,
    "llm_decision": 5, "order": 6, "fill": 7, "system": 8,
}


class ComplianceEvent(NamedTuple):
    event_id: str
    event_type: str
    occurred_at_ns: int
    received_at_ns: int | None
    source: str
    strategy_id: str | None
    symbol: str | None
    signal_id: str | None
    order_id: str | None
    check_name: str | None = None
    passed: bool | None = None
    override: bool | None = None
    approver: str | None = None
    decision: str | None = None
    reviewed_by: str | None = None
    side: str | None = None
    quantity: float | None = None
    order_type: str | None = None
    limit_price: float | None = None
    status: str | None = None
    decision_price: float | None = None
    bid: float | None = None
    ask: float | None = None
    last: float | None = None
    market_price: float | None = None
    breaker_state: str | None = None
    scope: str | None = None
    trading_state: str | None = None


FIELDS: tuple[str, ...] = ComplianceEvent._fields
ENVELOPE_FIELDS: tuple[str, ...] = FIELDS[:9]
#: payload key -> (record field, kind) for the fields read from payloads; kind is "text",
#: "number" or "bool". ``state`` is stored as ``breaker_state`` (only circuit breakers have it).
PAYLOAD_FIELDS: dict[str, tuple[str, str]] = {
    "check_name": ("check_name", "text"), "passed": ("passed", "bool"), "override": ("override", "bool"),
    "approver": ("approver", "text"), "decision": ("decision", "text"), "reviewed_by": ("reviewed_by", "text"),
    "side": ("side", "text"), "quantity": ("quantity", "number"), "order_type": ("order_type", "text"),
    "limit_price": ("limit_price", "number"), "status": ("status", "text"),
    "decision_price": ("decision_price", "number"), "bid": ("bid", "number"), "ask": ("ask", "number"),
    "last": ("last", "number"), "market_price": ("market_price", "number"), "state": ("breaker_state", "text"),
    "scope": ("scope", "text"), "trading_state": ("trading_state", "text"),
}
assert [field for field, _ in PAYLOAD_FIELDS.values()] == list(FIELDS[9:])


def canonical_key(event: ComplianceEvent) -> tuple[int, int, str]:
    """(occurred_at_ns, causal stage of the type, event_id): the rule engine's order."""
    return (event.occurred_at_ns, _STAGE.get(event.event_type, 9), event.event_id)


def from_fields(envelope: Mapping[str, Any], payload: Mapping[str, Any], received_at_ns: int | None = None) -> ComplianceEvent:
    """The record of an envelope and payload given as plain mappings (JSON-like values)."""
    values: list[Any] = [
        str(envelope["event_id"]), str(envelope["event_type"]), int(envelope["occurred_at_ns"]),
        None if received_at_ns is None else int(received_at_ns), str(envelope["source"]),
        *(None if envelope.get(name) is None else str(envelope[name])
          for name in ("strategy_id", "symbol", "signal_id", "order_id")),
    ]
    values.extend(field_value(payload.get(key), kind) for key, (_, kind) in PAYLOAD_FIELDS.items())
    return ComplianceEvent._make(values)


def from_model(event: EventBase, received_at_ns: int | None = None) -> ComplianceEvent:
    """The record of a validated event model (``received_at_ns`` when known)."""
    payload = getattr(event, "payload", None)
    fields = dict(payload) if payload is not None else {}
    envelope = {
        "event_id": event.event_id, "event_type": event.event_type, "occurred_at_ns": int(event.occurred_at),
        "source": event.source, "strategy_id": event.strategy_id, "symbol": event.symbol,
        "signal_id": event.signal_id, "order_id": event.order_id,
    }
    return from_fields(envelope, fields, received_at_ns)


def from_models(events: Iterable[EventBase]) -> list[ComplianceEvent]:
    return [from_model(event) for event in events]


__all__ = ["FIELDS", "PAYLOAD_FIELDS", "RULE_EVENT_TYPES", "ComplianceEvent", "canonical_key", "from_fields",
           "from_model", "from_models"]
