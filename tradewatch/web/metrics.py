"""Prometheus metrics of the alert router, read from its shared counters in Redis on each scrape.

Every worker counts into one Redis hash (``AlertState.count``), so these counters are monotonic
across worker restarts and across workers, whichever process serves the scrape:

- ``tradewatch_alert_notifications_total{receiver}``: notifications decided.
- ``tradewatch_alert_deliveries_total{receiver,outcome}``: outcome ``delivered`` or ``failed``
  (failed = given up after the retries, handed to the fallback receiver and recorded in the
  ``alert_delivery_failures`` table).
- ``tradewatch_alert_delivery_retries_total{receiver}``: transient failures retried.
- ``tradewatch_alerts_suppressed_total{reason}``: silenced or inhibited at a group's look.
"""

from __future__ import annotations

from typing import Callable, Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from tradewatch.web.trading_metrics import family


class AlertingCollector(Collector):
    def __init__(self, read_counters: Callable[[], dict[str, int]]) -> None:
        self._read = read_counters

    def collect(self) -> Iterator[Metric]:
        counters = self._read()
        notifications = family("tradewatch_alert_notifications_total")
        deliveries = family("tradewatch_alert_deliveries_total")
        retries = family("tradewatch_alert_delivery_retries_total")
        suppressed = family("tradewatch_alerts_suppressed_total")
        for name, value in sorted(counters.items()):
            kind, _, rest = name.partition(":")
            parts = rest.split(":")
            if kind == "notifications_total" and len(parts) == 1:
                notifications.add_metric(parts, value)
            elif kind == "deliveries_total" and len(parts) == 2:
                deliveries.add_metric(parts, value)
            elif kind == "delivery_retries_total" and len(parts) == 1:
                retries.add_metric(parts, value)
            elif kind == "suppressed_total" and len(parts) == 1:
                suppressed.add_metric(parts, value)
        yield from (notifications, deliveries, retries, suppressed)
