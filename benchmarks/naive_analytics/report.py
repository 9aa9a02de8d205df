"""The straightforward baseline of the whole analytics report: the per-fill, per-trip and
per-order Python loops of this package put together in the order ``build_report`` runs them.

Input handling is the same as the vectorised report's (``schema.prepare``), and regime labels
are given (both sides label the same quotes), so what differs is only the per-trade work. Daily
PnL is summed trip by trip with each exit converted to its local day; the eleven statistics
then run over those few hundred days.
"""

from __future__ import annotations

from datetime import datetime, timezone as utc_zone
from zoneinfo import ZoneInfo

import pandas as pd

from benchmarks.naive_analytics.attribution import naive_full_report
from benchmarks.naive_analytics.execution import NaiveExecutionAnalyzer, NaiveSlippageAnalyzer, _read
from benchmarks.naive_analytics.round_trips import naive_match_round_trips, naive_trade_statistics
from tradewatch.domain.analytics import performance
from tradewatch.domain.analytics.prices import PriceBook
from tradewatch.domain.analytics.report import AnalyticsConfig
from tradewatch.domain.analytics.schema import FACTOR_EXPOSURES, FILLS, ORDERS, QUOTES, prepare
from tradewatch.domain.analytics.trading_data import TradingData


def _daily_pnl_returns(trips: pd.DataFrame, config: AnalyticsConfig) -> list[float]:
    zone = ZoneInfo(config.timezone)
    by_day: dict = {}
    for exit_at, pnl in zip(trips["exit_at"].tolist(), trips["pnl"].tolist()):
        day = datetime.fromtimestamp(exit_at.value / 1e9, tz=utc_zone.utc).astimezone(zone).date()
        by_day[day] = by_day.get(day, 0.0) + pnl
    return [by_day[day] / config.capital for day in sorted(by_day)]


def naive_report(data: TradingData, config: AnalyticsConfig, regime_labels: pd.DataFrame) -> dict:
    fills = prepare(data.fills, FILLS).frame
    orders = prepare(data.orders, ORDERS).frame
    exposures = prepare(data.factor_exposures, FACTOR_EXPOSURES).frame
    prices = PriceBook(prepare(data.quotes, QUOTES).frame)

    matched = naive_match_round_trips(fills, quantity_decimals=config.quantity_decimals)
    trips = matched.trips
    returns = _daily_pnl_returns(trips, config)
    kw = {"periods_per_year": config.periods_per_year}
    joined = _read(orders, fills)  # fills joined to their orders once, for both analyses
    slippage = NaiveSlippageAnalyzer(end_horizon_seconds=config.slippage_end_horizon_seconds).report(
        orders, fills, prices, regime_labels, read=joined)
    slippage.pop("per_order")
    return {
        "round_trips": len(trips),
        "realized_pnl": matched.realized_pnl,
        "statistics": {
            "sharpe_ratio": performance.sharpe_ratio(returns, risk_free=config.risk_free, **kw),
            "annual_return": performance.annual_return(returns, **kw),
            "annual_volatility": performance.annual_volatility(returns, **kw),
            "max_drawdown": performance.max_drawdown(returns),
            "value_at_risk": performance.value_at_risk(returns, cutoff=config.cutoff),
        },
        "trades": naive_trade_statistics(trips),
        "attribution": naive_full_report(
            trips, exposures, regime_labels, timezone=config.timezone,
            horizon_edges_seconds=config.horizon_edges_seconds, time_of_day_minutes=config.time_of_day_minutes),
        "slippage": slippage,
        "execution": NaiveExecutionAnalyzer().report(orders, fills, read=joined),
    }


def comparable(report) -> dict:
    """The parts of a vectorised ``AnalyticsReport`` the naive report also computes."""
    statistics = report.sections["performance"]["statistics"]
    return {
        "round_trips": report.sections["summary"]["round_trips"],
        "realized_pnl": report.sections["summary"]["realized_pnl"],
        "statistics": {name: statistics[name] for name in
                       ("sharpe_ratio", "annual_return", "annual_volatility", "max_drawdown", "value_at_risk")},
        "trades": report.sections["trades"],
        "attribution": report.sections["attribution"],
        "slippage": report.sections["slippage"],
        "execution": report.sections["execution"],
    }
