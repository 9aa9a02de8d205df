"""``RealtimeDashboardSnapshot``: one reading of the desk's live picture (definitions in
``aggregator``). ``to_dict`` is JSON-safe: undefined numbers (no data yet, a zero denominator)
are None, histograms are lists of [le, cumulative count] with their sum and count."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from tradewatch.domain.dashboard.distributions import Histogram
from tradewatch.domain.events.timestamps import format_rfc3339_ns


@dataclass(frozen=True)
class InstrumentMetrics:
    symbol: str
    mark: float | None
    position: float
    notional: float
    unrealized_pnl: float
    orders: int
    fills: int
    volume: float
    traded_notional: float
    mean_slippage_bps: float | None
    day_ordered_notional: float

    def to_dict(self) -> dict[str, Any]:
        return {name: _safe(getattr(self, name)) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class RealtimeDashboardSnapshot:
    as_of_ns: int
    last_event_ns: int | None
    events_applied: int
    trading_day: str | None
    portfolio_value: float | None
    cash: float | None
    buying_power: float | None
    realized_pnl: float
    unrealized_pnl: float
    daily_pnl: float
    position_count: int
    gross_exposure: float
    net_exposure: float
    positions: list[dict[str, Any]]
    rolling_sharpe: float | None
    drawdown: float | None
    """A fraction: 0.15 is 15% below the peak."""
    max_drawdown: float
    hit_rate: float | None
    profit_factor: float | None
    orders_by_status: dict[str, int]
    rejection_rate: float | None
    orders: dict[str, int]
    """symbol, side, type, status (joined by \\x1f) -> count since the trail began."""
    signals: dict[str, int]
    errors: dict[str, int]
    slippage_bps: dict[str, float | None]
    slippage_histogram: Histogram
    signal_generation_seconds: dict[str, float | None]
    order_acknowledgement_seconds: dict[str, float | None]
    order_fill_seconds: dict[str, float | None]
    order_latency_histogram: Histogram
    signal_latency_histogram: Histogram
    instruments: dict[str, InstrumentMetrics]
    risk_limits: list[dict[str, Any]]
    broker_connected: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, Histogram):
                out[name] = {"buckets": [[_bound(le), n] for le, n in value.cumulative()], "sum": value.total,
                             "count": value.count}
            elif name == "instruments":
                out[name] = {symbol: metrics.to_dict() for symbol, metrics in value.items()}
            elif name in ("orders", "signals", "errors"):
                out[name] = [{"labels": key.split("\x1f"), "count": count} for key, count in sorted(value.items())]
            else:
                out[name] = _safe(value)
        out["as_of"] = format_rfc3339_ns(self.as_of_ns)
        out["last_event_at"] = None if self.last_event_ns is None else format_rfc3339_ns(self.last_event_ns)
        return out


def _bound(le: float) -> float | str:
    return "+Inf" if math.isinf(le) else le


def _safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_safe(v) for v in value]
    return value


__all__ = ["InstrumentMetrics", "RealtimeDashboardSnapshot"]
