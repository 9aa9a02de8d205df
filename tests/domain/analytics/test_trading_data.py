"""The audit trail's event frames become the analytics' documented frames."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradewatch.domain.analytics.schema import FILLS, ORDERS, prepare
from tradewatch.domain.analytics.trading_data import TradingData, trading_data_from_trail


def _t(seconds: float) -> pd.Timestamp:
    return pd.Timestamp("2026-01-05T14:30:00Z") + pd.Timedelta(seconds=seconds)


def _frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame.insert(0, "seq", np.arange(1, len(frame) + 1))
    return frame


ORDER_EVENTS = _frame([
    {"occurred_at": _t(0), "order_id": "o-1", "signal_id": "s-1", "strategy_id": "mm", "symbol": "AAPL",
     "payload.side": "buy", "payload.quantity": 100.0, "payload.order_type": "limit", "payload.limit_price": 190.0,
     "payload.decision_price": 189.9, "payload.venue": "XNAS", "payload.status": "submitted"},
    {"occurred_at": _t(0.004), "order_id": "o-1", "signal_id": None, "strategy_id": "mm", "symbol": "AAPL",
     "payload.side": "buy", "payload.quantity": 100.0, "payload.order_type": "limit", "payload.limit_price": 190.0,
     "payload.decision_price": None, "payload.venue": "XNAS", "payload.status": "accepted"},
    {"occurred_at": _t(30), "order_id": "o-1", "signal_id": None, "strategy_id": "mm", "symbol": "AAPL",
     "payload.side": "buy", "payload.quantity": 100.0, "payload.order_type": "limit", "payload.limit_price": 190.0,
     "payload.decision_price": None, "payload.venue": "XNAS", "payload.status": "cancelled"},
    {"occurred_at": _t(1), "order_id": "o-2", "signal_id": "s-2", "strategy_id": "mm", "symbol": "MSFT",
     "payload.side": "sell", "payload.quantity": 5.0, "payload.order_type": "market", "payload.limit_price": None,
     "payload.decision_price": 410.0, "payload.venue": None, "payload.status": "submitted"},
    {"occurred_at": _t(1.002), "order_id": "o-2", "signal_id": "s-2", "strategy_id": "mm", "symbol": "MSFT",
     "payload.side": "sell", "payload.quantity": 5.0, "payload.order_type": "market", "payload.limit_price": None,
     "payload.decision_price": 410.0, "payload.venue": None, "payload.status": "rejected"},
])

FILL_EVENTS = _frame([
    {"occurred_at": _t(2), "order_id": "o-1", "signal_id": None, "strategy_id": "mm", "symbol": "AAPL",
     "payload.fill_id": "f-1", "payload.side": "buy", "payload.quantity": 60.0, "payload.price": 189.95,
     "payload.fee": 0.3, "payload.venue": "XNAS", "payload.bid": 189.9, "payload.ask": 190.0},
])

SIGNAL_EVENTS = _frame([
    {"occurred_at": _t(-1), "signal_id": "s-1", "strategy_id": "mm", "symbol": "AAPL", "order_id": None,
     "payload.direction": "long", "payload.confidence": 0.8, "payload.factors.momentum": 1.5, "payload.factors.value": -0.5},
    {"occurred_at": _t(0.5), "signal_id": "s-2", "strategy_id": "mm", "symbol": "MSFT", "order_id": None,
     "payload.direction": "short", "payload.confidence": 0.6, "payload.factors.momentum": None, "payload.factors.value": None},
])


def test_order_status_events_collapse_to_one_row_per_order():
    data = trading_data_from_trail({"order": ORDER_EVENTS})
    orders = data.orders.set_index("order_id")
    assert list(orders.index) == ["o-1", "o-2"]
    first = orders.loc["o-1"]
    assert (first["status"], first["submitted_at"], first["accepted_at"], first["ended_at"]) == ("cancelled", _t(0), _t(0.004), _t(30))
    assert first["decision_price"] == 189.9 and first["signal_id"] == "s-1" and first["venue"] == "XNAS"
    second = orders.loc["o-2"]
    assert second["status"] == "rejected" and pd.isna(second["accepted_at"]) and second["ended_at"] == _t(1.002)
    prepared = prepare(data.orders, ORDERS)
    assert prepared.problems == [] and len(prepared.frame) == 2


def test_a_fill_without_a_signal_takes_its_orders_and_the_frame_passes_the_schema():
    data = trading_data_from_trail({"order": ORDER_EVENTS, "fill": FILL_EVENTS})
    fill = data.fills.iloc[0]
    assert (fill["fill_id"], fill["signal_id"], fill["price"], fill["fee"]) == ("f-1", "s-1", 189.95, 0.3)
    assert prepare(data.fills, FILLS).problems == []


def test_signal_factors_become_one_exposure_row_per_factor():
    data = trading_data_from_trail({"signal": SIGNAL_EVENTS})
    assert list(data.signals["signal_id"]) == ["s-1", "s-2"]
    exposures = data.factor_exposures.sort_values("factor").to_dict("records")
    assert exposures == [{"signal_id": "s-1", "factor": "momentum", "exposure": 1.5},
                         {"signal_id": "s-1", "factor": "value", "exposure": -0.5}]


def test_no_events_give_empty_frames_with_the_documented_columns():
    data = trading_data_from_trail({})
    assert isinstance(data, TradingData)
    assert data.counts() == {name: 0 for name in data.counts()}
    assert {c.name for c in FILLS.columns} <= set(data.fills.columns)
