"""Read the analytics' input (fills, orders, signals, quotes, account) from the audit trail."""

from __future__ import annotations

from tradewatch.domain.analytics.trading_data import TradingData, trading_data_from_trail
from tradewatch.storage.store import AuditStore

ANALYTICS_EVENT_TYPES = ("fill", "order", "signal", "market_data", "account")


def load_trading_data(store: AuditStore, start_ns: int, end_ns: int, *, quotes_lookback_ns: int = 0) -> TradingData:
    """Events with occurred_at in [start_ns, end_ns), through the trail's read API.

    ``quotes_lookback_ns`` also reads market data from before the period,
    so regimes and the first orders' arrival prices have history to stand on.
    """
    frames = {}
    for event_type in ANALYTICS_EVENT_TYPES:
        start = start_ns - quotes_lookback_ns if event_type == "market_data" else start_ns
        frames[event_type] = store.to_dataframe(start, end_ns, event_types=event_type)
    return trading_data_from_trail(frames)
