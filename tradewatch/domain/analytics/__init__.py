"""Post-trade analytics over fills, orders, signals and quotes (README, section 13).

Input: DataFrames in the documented schema (``schema``), bundled as ``TradingData``.
``build_report`` runs everything; each analysis is usable alone.
"""

from tradewatch.domain.analytics.attribution import PnLAttributor
from tradewatch.domain.analytics.execution import ExecutionAnalyzer
from tradewatch.domain.analytics.prices import PriceBook
from tradewatch.domain.analytics.regimes import RegimeAnalyzer
from tradewatch.domain.analytics.report import AnalyticsConfig, AnalyticsReport, build_report
from tradewatch.domain.analytics.round_trips import RoundTrips, match_round_trips
from tradewatch.domain.analytics.signal_quality import SignalQualityAnalyzer
from tradewatch.domain.analytics.slippage import SlippageAnalyzer
from tradewatch.domain.analytics.trade_statistics import trade_statistics
from tradewatch.domain.analytics.trading_data import TradingData, trading_data_from_trail

__all__ = [
    "AnalyticsConfig", "AnalyticsReport", "ExecutionAnalyzer", "PnLAttributor", "PriceBook", "RegimeAnalyzer",
    "RoundTrips", "SignalQualityAnalyzer", "SlippageAnalyzer", "TradingData", "build_report", "match_round_trips",
    "trade_statistics", "trading_data_from_trail",
]
