"""Builders of valid events for tests."""

from __future__ import annotations

import itertools
import uuid
from decimal import Decimal

from tradewatch.domain.events import (
    FillEvent,
    FillPayload,
    MarketDataEvent,
    MarketDataPayload,
    OrderEvent,
    OrderPayload,
    SignalEvent,
    SignalPayload,
)

BASE_NS = 1_795_000_000_000_000_000  # 2026-11-17T...
_counter = itertools.count()


def market_data(i: int | None = None, symbol: str = "AAPL", **overrides) -> MarketDataEvent:
    i = next(_counter) if i is None else i
    fields = dict(occurred_at=BASE_NS + i * 1000, source="engine-1", symbol=symbol,
                  payload=MarketDataPayload(bid=Decimal("100.01"), ask=Decimal("100.03"), last=Decimal("100.02"), volume=Decimal(500)))
    fields.update(overrides)
    return MarketDataEvent(**fields)


def signal(signal_id: str | None = None, i: int = 0, **overrides) -> SignalEvent:
    fields = dict(occurred_at=BASE_NS + i, source="engine-1", signal_id=signal_id or f"sig-{uuid.uuid4().hex[:8]}",
                  strategy_id="momentum", symbol="AAPL",
                  payload=SignalPayload(direction="long", confidence=0.7, factors={"momentum": 0.8, "value": -0.2}))
    fields.update(overrides)
    return SignalEvent(**fields)


def order(signal_id: str, order_id: str, status: str = "submitted", i: int = 10, **overrides) -> OrderEvent:
    fields = dict(occurred_at=BASE_NS + i, source="engine-1", signal_id=signal_id, order_id=order_id,
                  strategy_id="momentum", symbol="AAPL",
                  payload=OrderPayload(side="buy", quantity=Decimal(100), order_type="limit", limit_price=Decimal("100.05"), status=status))
    fields.update(overrides)
    return OrderEvent(**fields)


def fill(order_id: str, fill_id: str = "f1", i: int = 20, **overrides) -> FillEvent:
    fields = dict(occurred_at=BASE_NS + i, source="engine-1", order_id=order_id, symbol="AAPL",
                  payload=FillPayload(fill_id=fill_id, side="buy", quantity=Decimal(100), price=Decimal("100.040"), fee=Decimal("0.35")))
    fields.update(overrides)
    return FillEvent(**fields)


def texts(events) -> list[str]:
    return [e.model_dump_json() for e in events]
