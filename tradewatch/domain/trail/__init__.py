"""What the audit trail hands back: stored events, trade histories, period summaries."""

from tradewatch.domain.trail.records import FollowCursor, StoredEvent
from tradewatch.domain.trail.summary import PeriodSummary
from tradewatch.domain.trail.trade_history import TradeHistory, build_trade_history
from tradewatch.domain.trail.conflicts import describe_difference

__all__ = ["FollowCursor", "StoredEvent", "PeriodSummary", "TradeHistory", "build_trade_history", "describe_difference"]
