"""PipelineHealthConverter: ``system`` events and tradewatch's own health signals to alerts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from tests.factories import BASE_NS
from tradewatch.alerting.converters.base import AlertConverter
from tradewatch.alerting.converters.pipeline_health import (
    SUMMARY_LIMIT,
    PipelineHealthConverter,
    PipelineHealthSignal,
    is_recovery,
)
from tradewatch.alerting.model import Alert, AlertStatus, Severity
from tradewatch.domain.events import SystemEvent, SystemPayload
from tradewatch.domain.events.timestamps import ns_to_datetime

NOW = datetime(2026, 11, 21, 15, 0, tzinfo=timezone.utc)
OCCURRED = ns_to_datetime(BASE_NS)


def system(level: str, message: str = "market data feed disconnected", *, i: int = 0, **overrides) -> SystemEvent:
    payload = overrides.pop("payload", None) or SystemPayload(component="market_feed", level=level, message=message)
    fields = dict(occurred_at=BASE_NS + i, source="engine-1", payload=payload)
    fields.update(overrides)
    return SystemEvent(**fields)


def convert(item) -> list[Alert]:
    return PipelineHealthConverter().to_alerts(item, now=NOW)


def test_is_an_alert_converter_with_its_source():
    converter: AlertConverter = PipelineHealthConverter()
    assert converter.source == "pipeline_health"


@pytest.mark.parametrize(
    ("level", "severity"),
    [("critical", Severity.CRITICAL), ("error", Severity.CRITICAL), ("warning", Severity.WARNING)],
)
def test_problem_levels_fire_with_the_documented_severity(level, severity):
    [alert] = convert(system(level))
    assert alert.status is AlertStatus.FIRING
    assert alert.labels == {
        "alertname": "ComponentUnhealthy",
        "severity": severity.value,
        "category": "pipeline",
        "source": "engine-1",
        "component": "market_feed",
    }
    assert alert.starts_at == OCCURRED
    assert alert.starts_at.tzinfo is timezone.utc
    assert alert.ends_at is None


def test_strategy_and_symbol_become_labels_when_the_event_has_them():
    [alert] = convert(system("error", strategy_id="momentum", symbol="AAPL"))
    assert alert.labels["strategy_id"] == "momentum"
    assert alert.labels["symbol"] == "AAPL"


def test_annotations_give_message_level_component_and_metrics():
    payload = SystemPayload(
        component="order_gateway",
        level="error",
        message="order gateway rejected 12 orders: session expired",
        metrics={"rejected_orders": 12.0, "latency_seconds": 0.25, "queue_depth": 1234567.0},
    )
    [alert] = convert(system("error", payload=payload))
    assert alert.annotations["summary"] == "order gateway rejected 12 orders: session expired"
    description = alert.annotations["description"]
    assert "order_gateway" in description and "engine-1" in description and "level error" in description
    assert "Metrics: latency_seconds=0.25, queue_depth=1234567, rejected_orders=12" in description
    assert alert.annotations["runbook_url"] == "README.md#runbook-componentunhealthy"


def test_a_long_message_is_cut_in_the_summary_and_kept_in_the_description():
    message = "disk full " * 500
    [alert] = convert(system("critical", message))
    assert len(alert.annotations["summary"]) <= SUMMARY_LIMIT
    assert alert.annotations["summary"].endswith("…")
    assert message.strip() in alert.annotations["description"]


@pytest.mark.parametrize("level", ["info", "debug"])
def test_routine_info_and_debug_events_raise_nothing(level):
    assert convert(system(level, "processed 1000 messages")) == []


@pytest.mark.parametrize(
    "message",
    ["market data feed reconnected", "Database connection restored after 3 attempts", "Recovered", "trading resumed"],
)
def test_a_recovery_message_resolves_both_severities(message):
    raised = {a.fingerprint for level in ("critical", "warning") for a in convert(system(level))}
    resolved = convert(system("info", message, i=5_000_000_000))
    assert {a.severity for a in resolved} == {Severity.CRITICAL, Severity.WARNING}
    assert {a.fingerprint for a in resolved} == raised
    ended = ns_to_datetime(BASE_NS + 5_000_000_000)
    for alert in resolved:
        assert alert.status is AlertStatus.RESOLVED
        assert alert.ends_at == ended
        assert alert.labels["component"] == "market_feed"


@pytest.mark.parametrize(
    "message",
    ["feed not recovered yet", "failed to reconnect", "never restored", "reconnect attempt 3 without success"],
)
def test_a_negated_recovery_message_resolves_nothing(message):
    assert convert(system("info", message)) == []


def test_an_explicit_flag_decides_over_the_message():
    healthy = SystemPayload(component="market_feed", level="info", message="status report", recovered=True)
    assert [a.status for a in convert(system("info", payload=healthy))] == [AlertStatus.RESOLVED] * 2
    still_down = SystemPayload(component="market_feed", level="info", message="reconnected", healthy=False)
    assert not is_recovery(system("info", payload=still_down))
    assert convert(system("info", payload=still_down)) == []


def test_a_recovery_at_a_problem_level_is_still_a_problem():
    [alert] = convert(system("warning", "feed reconnected after 40 seconds of silence"))
    assert alert.status is AlertStatus.FIRING


def test_a_recovery_resolves_only_the_alerts_of_the_same_strategy():
    raised = convert(system("error", strategy_id="momentum"))[0]
    resolved = convert(system("info", "reconnected", strategy_id="momentum"))
    other = convert(system("info", "reconnected", strategy_id="mean_reversion"))
    assert raised.fingerprint in {a.fingerprint for a in resolved}
    assert raised.fingerprint not in {a.fingerprint for a in other}


# ------------------------------------------------------------------ signals from tradewatch itself


def test_a_firing_signal_becomes_a_pipeline_alert():
    signal = PipelineHealthSignal(
        name="AlertDeliveryFailed",
        severity=Severity.CRITICAL,
        summary="PagerDuty refused 3 notifications",
        description="PagerDuty answered 400 Bad Request: invalid routing key",
        labels={"receiver": "pagerduty"},
        observed_at=NOW,
    )
    [alert] = convert(signal)
    assert alert.labels == {
        "alertname": "AlertDeliveryFailed",
        "severity": "critical",
        "category": "pipeline",
        "source": "tradewatch",
        "receiver": "pagerduty",
    }
    assert alert.status is AlertStatus.FIRING
    assert alert.starts_at == NOW
    assert alert.annotations == {
        "summary": "PagerDuty refused 3 notifications",
        "description": "PagerDuty answered 400 Bad Request: invalid routing key",
        "runbook_url": "README.md#runbook-alertdeliveryfailed",
    }


def test_a_signal_that_stops_firing_resolves_it_at_every_severity():
    raised = convert(PipelineHealthSignal(name="SnapshotStale", labels={"snapshot": "dashboard"}, observed_at=NOW))[0]
    later = NOW + timedelta(minutes=5)
    resolved = convert(PipelineHealthSignal(name="SnapshotStale", labels={"snapshot": "dashboard"}, firing=False, observed_at=later))
    assert {a.severity for a in resolved} == set(Severity)
    assert raised.fingerprint in {a.fingerprint for a in resolved}
    assert all(a.status is AlertStatus.RESOLVED and a.ends_at == later for a in resolved)


def test_a_signal_may_name_its_own_source_and_runbook():
    signal = PipelineHealthSignal(
        name="IngestRejections", source="ingest", runbook_url="https://runbooks.example/ingest", observed_at=NOW
    )
    [alert] = convert(signal)
    assert alert.labels["source"] == "ingest"
    assert alert.annotations["runbook_url"] == "https://runbooks.example/ingest"
    assert alert.summary == "IngestRejections"  # no summary given: the alertname stands in


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"name": "IngestRejections", "labels": {"severity": "critical"}}, "severity"),
        ({"name": "ingest rejections"}, "name"),
        ({"name": "IngestRejections", "labels": {"bad-name": "x"}}, "labels"),
    ],
)
def test_invalid_signals_are_refused(fields, expected):
    with pytest.raises(ValidationError, match=expected):
        PipelineHealthSignal(observed_at=NOW, **fields)


def test_a_signal_needs_an_aware_time():
    with pytest.raises(ValidationError, match="naive datetime"):
        PipelineHealthSignal(name="IngestRejections", observed_at=datetime(2026, 11, 21, 15, 0))


def test_other_items_are_refused_with_the_accepted_types():
    with pytest.raises(TypeError, match="SystemEvent and PipelineHealthSignal"):
        convert({"event_type": "system"})
