"""The alert router's counters as Prometheus metrics (exposition text as Prometheus reads it)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tradewatch.web.metrics import AlertingCollector


def test_router_counters_are_exported_with_their_labels():
    counters = {
        "notifications_total:pagerduty-oncall": 3,
        "deliveries_total:pagerduty-oncall:delivered": 2,
        "deliveries_total:pagerduty-oncall:failed": 1,
        "delivery_retries_total:slack-trading": 4,
        "suppressed_total:silenced": 5,
        "outbox_resent_total": 1,  # not exported: internal
    }
    registry = CollectorRegistry()
    registry.register(AlertingCollector(lambda: counters))
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
    }
    assert samples[("tradewatch_alert_notifications_total", (("receiver", "pagerduty-oncall"),))] == 3
    assert samples[("tradewatch_alert_deliveries_total", (("outcome", "failed"), ("receiver", "pagerduty-oncall")))] == 1
    assert samples[("tradewatch_alert_deliveries_total", (("outcome", "delivered"), ("receiver", "pagerduty-oncall")))] == 2
    assert samples[("tradewatch_alert_delivery_retries_total", (("receiver", "slack-trading"),))] == 4
    assert samples[("tradewatch_alerts_suppressed_total", (("reason", "silenced"),))] == 5
    assert not any("outbox" in name for name, _ in samples)
