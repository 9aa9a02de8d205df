"""The real-time dashboard: ``RealtimeDashboardAggregator`` folds the trail's events into a
bounded state and reads ``RealtimeDashboardSnapshot``s off it (definitions in ``aggregator``).
Pure domain code: the snapshot task, the Prometheus exporter and the API build on it."""

from tradewatch.domain.dashboard.aggregator import DashboardConfig, DashboardState, RealtimeDashboardAggregator
from tradewatch.domain.dashboard.distributions import Histogram, Window
from tradewatch.domain.dashboard.events import DashboardEvent, from_model
from tradewatch.domain.dashboard.snapshot import InstrumentMetrics, RealtimeDashboardSnapshot

__all__ = ["DashboardConfig", "DashboardEvent", "DashboardState", "Histogram", "InstrumentMetrics",
           "RealtimeDashboardAggregator", "RealtimeDashboardSnapshot", "Window", "from_model"]
