"""What the dashboard aggregator reads of an event: one flat, immutable record per event.

``RealtimeDashboardAggregator`` touches the envelope and about twenty payload fields of seven
event types. A ``DashboardEvent`` (a NamedTuple, as ``compliance.events.ComplianceEvent``)
carries exactly those, None where the event type has no such field, so the trail's reader can
build one per row with a single ``DashboardEvent._make`` from SQL columns (no JSON parsing and
no pydantic validation in Python: about 30 µs per event saved, see storage/dashboard.py), and
``from_model`` builds the same record from a validated ``EventBase``.

Numbers are float64 (the contract's decimals; the aggregator works in float), times integer
UTC epoch nanoseconds, text fields plain strings.

| field | event types |
| --- | --- |
| event_type, occurred_at_ns, source, strategy_id, symbol, order_id | all (the envelope) |
| equity, cash, buying_power | account |
| quantity | order, fill, position_update (signed there) |
| avg_price, realized_pnl, unrealized_pnl, market_price | position_update |
| bid, ask, last | market_data |
| side | order, fill |
| order_type, status, limit_price, decision_price | order |
| price, arrival_price | fill |
| direction, generation_seconds | signal |
| component, level | system |
"""

from __future__ import annotations

from typing import NamedTuple

from tradewatch.domain.events.fields import field_value
from tradewatch.domain.events.models import EventBase


class DashboardEvent(NamedTuple):
    event_type: str
    occurred_at_ns: int
    source: str
    strategy_id: str | None
    symbol: str | None
    order_id: str | None
    equity: float | None = None
    cash: float | None = None
    buying_power: float | None = None
    quantity: float | None = None
    avg_price: float | None = None
    realized_pnl: float | None = None
    unrealized_pnl: float | None = None
    market_price: float | None = None
    bid: float | None = None
    ask: float | None = None
    last: float | None = None
    side: str | None = None
    order_type: str | None = None
    status: str | None = None
    limit_price: float | None = None
    decision_price: float | None = None
    price: float | None = None
    arrival_price: float | None = None
    direction: str | None = None
    generation_seconds: float | None = None
    component: str | None = None
    level: str | None = None


FIELDS: tuple[str, ...] = DashboardEvent._fields
ENVELOPE_FIELDS: tuple[str, ...] = FIELDS[:6]
#: payload key -> kind ("text" or "number"), in record order after the envelope. The payload key
#: is the record field's name.
PAYLOAD_FIELDS: dict[str, str] = {
    "equity": "number", "cash": "number", "buying_power": "number", "quantity": "number", "avg_price": "number",
    "realized_pnl": "number", "unrealized_pnl": "number", "market_price": "number", "bid": "number",
    "ask": "number", "last": "number", "side": "text", "order_type": "text", "status": "text",
    "limit_price": "number", "decision_price": "number", "price": "number", "arrival_price": "number",
    "direction": "text", "generation_seconds": "number", "component": "text", "level": "text",
}
assert list(PAYLOAD_FIELDS) == list(FIELDS[6:])


def from_model(event: EventBase) -> DashboardEvent:
    """The record of a validated event (what the SQL read of the same stored event gives)."""
    payload = event.payload
    return DashboardEvent._make([
        event.event_type, int(event.occurred_at), event.source, event.strategy_id, event.symbol, event.order_id,
        *(field_value(getattr(payload, key, None), kind) for key, kind in PAYLOAD_FIELDS.items()),
    ])


__all__ = ["ENVELOPE_FIELDS", "FIELDS", "PAYLOAD_FIELDS", "DashboardEvent", "from_model"]
