"""AnomalyConverter: opened, escalated and resolved anomalies to TradingAnomaly alerts, and
those alerts through the real router (Redis state) so a resolve closes what fired."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from tests.factories import BASE_NS
from tradewatch.alerting.config import load_alerting_config
from tradewatch.alerting.converters import AnomalyConverter as ExportedConverter
from tradewatch.alerting.converters.anomaly import ALERTNAME, RUNBOOK_URL, AnomalyConverter, format_value
from tradewatch.alerting.converters.base import AlertConverter
from tradewatch.alerting.dispatcher import Dispatcher
from tradewatch.alerting.model import AlertStatus
from tradewatch.domain.detection.anomaly import Anomaly
from tradewatch.domain.detection.pipeline import Resolution
from tradewatch.domain.events.timestamps import ns_to_datetime

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
S = 1_000_000_000


def slippage(severity: str = "warning", at_s: int = 0, **overrides) -> Anomaly:
    fields = dict(detector="slippage_z", anomaly_type="spike", severity=severity, metric="slippage_bps",
                  observed=42.1, baseline=3.2, score=9.8, entity_kind="symbol", entity="AAPL",
                  detected_at_ns=BASE_NS + at_s * S, symbol="AAPL", strategy_id="mm-1", event_ids=("e-1",),
                  context={"window": 100, "threshold": 6.0})
    fields.update(overrides)
    return Anomaly(**fields)


def convert(item, kinds=None):
    return AnomalyConverter(kinds or {"slippage_z": "robust_zscore"}).to_alerts(item, now=NOW)


def test_is_an_alert_converter_exported_by_the_package():
    converter: AlertConverter = ExportedConverter()
    assert converter.source == "anomaly"
    assert ExportedConverter is AnomalyConverter


def test_an_opened_anomaly_fires_with_its_identity_as_labels():
    fired, *resolved = convert(slippage())
    assert fired.status is AlertStatus.FIRING
    assert fired.labels == {"alertname": ALERTNAME, "severity": "warning", "category": "anomaly",
                            "detector": "slippage_z", "anomaly_type": "spike", "metric": "slippage_bps",
                            "symbol": "AAPL"}
    assert fired.starts_at == ns_to_datetime(BASE_NS)
    assert fired.annotations["summary"] == "slippage_bps on AAPL 42.1 bps against a baseline of 3.2 bps (robust z 9.8)"
    assert fired.annotations["runbook_url"] == RUNBOOK_URL == "README.md#runbook-tradinganomaly"
    description = fired.annotations["description"].splitlines()
    assert description[0] == ("Detector slippage_z (robust_zscore) found a spike in slippage_bps of symbol AAPL "
                              "at 2026-11-18T11:06:40.000000000Z.")
    assert "Strategy: mm-1" in description and "Events: e-1" in description
    assert "Context: threshold=6, window=100" in description
    # The severity below it (info) is resolved: a no-op for an alert that never fired.
    assert [(a.status, a.labels["severity"], a.ends_at) for a in resolved] == [
        (AlertStatus.RESOLVED, "info", fired.starts_at)]


def test_an_escalated_anomaly_fires_at_its_new_severity_and_resolves_the_lower_ones():
    alerts = convert(slippage("critical"))
    assert [(a.status, a.labels["severity"]) for a in alerts] == [
        (AlertStatus.FIRING, "critical"), (AlertStatus.RESOLVED, "info"), (AlertStatus.RESOLVED, "warning")]
    warning = convert(slippage("warning"))[0]
    assert alerts[2].fingerprint == warning.fingerprint  # resolves exactly the alert the warning raised
    assert alerts[2].ends_at == warning.starts_at


def test_a_resolution_resolves_every_severity_at_its_time():
    anomaly = slippage("critical")
    alerts = convert(Resolution(anomaly, BASE_NS + 320 * S, "quiet"))
    assert [(a.status, a.labels["severity"], a.ends_at) for a in alerts] == [
        (AlertStatus.RESOLVED, s, ns_to_datetime(BASE_NS + 320 * S)) for s in ("info", "warning", "critical")]
    assert alerts[2].fingerprint == convert(anomaly)[0].fingerprint
    assert alerts[0].annotations == {"resolved_reason": "quiet"}


def test_labels_ignore_what_may_differ_between_findings_of_one_anomaly():
    """Same key, other observed values, strategy and events: the same alert."""
    first = convert(slippage())[0]
    later = convert(slippage(observed=80.0, strategy_id="mm-2", event_ids=("e-9",), context={}))[0]
    assert first.fingerprint == later.fingerprint


@pytest.mark.parametrize(("entity_kind", "entity"), [("strategy_id", "mm-1"), ("source", "feed-1"), ("model", "fills_if")])
def test_the_entity_is_the_label_its_kind_names(entity_kind, entity):
    [fired, *_] = convert(slippage(entity_kind=entity_kind, entity=entity))
    assert fired.labels[entity_kind] == entity
    assert "symbol" not in fired.labels or entity_kind == "symbol"


def test_a_resolution_at_an_earlier_time_than_the_finding_ends_at_its_start():
    anomaly = slippage(at_s=10)
    [info, *_] = convert(Resolution(anomaly, BASE_NS, "cleared"))
    assert info.ends_at == info.starts_at == ns_to_datetime(BASE_NS + 10 * S)


@pytest.mark.parametrize(
    ("metric", "value", "shown"),
    [("fill_latency_seconds", 0.00123, "0.00123 s"), ("rejection_rate", 0.35, "35%"),
     ("round_trip_pnl_usd", -12345.6, "-12,346 USD"), ("order_rate_per_minute", 42.0, "42 per minute"),
     ("spread_bps", 3.25, "3.25 bps"), ("fill_features", 0.71, "0.71")],
)
def test_values_carry_the_unit_their_metric_names(metric, value, shown):
    assert format_value(metric, value) == shown


def test_a_summary_leaves_out_what_is_not_a_number_and_names_unknown_scores_plainly():
    anomaly = slippage(detector="latency", metric="fill_latency_seconds", observed=2.5, baseline=math.nan,
                       score=2.5, entity_kind="strategy_id", entity="mm-1")
    assert AnomalyConverter().summary(anomaly) == "fill_latency_seconds on mm-1 2.5 s (score 2.5)"


def test_an_unusable_model_says_why():
    anomaly = slippage(detector="fills_if", anomaly_type="model_unusable", metric="model", observed=math.nan,
                       baseline=math.nan, score=math.nan, entity_kind="model", entity="fills_if",
                       context={"reason": "model 'fills_if' was trained on 12 fills"})
    [fired] = convert(anomaly)[:1]
    assert fired.annotations["summary"] == "model fills_if is not used: model 'fills_if' was trained on 12 fills"
    assert fired.labels["model"] == "fills_if" and fired.labels["anomaly_type"] == "model_unusable"


def test_anything_else_is_refused():
    with pytest.raises(TypeError, match="converts Anomaly and Resolution, not str"):
        convert("slippage")


# ------------------------------------------------------------------ through the router


def test_through_the_router_an_episode_fires_escalates_resolves_and_a_new_one_fires_again(state):
    """The shipped routes, the real router state in Redis: what fires is what the anomaly is."""
    dispatcher = Dispatcher(load_alerting_config(), state, enqueue_delivery=lambda _id: None)

    def firing() -> list[tuple[str, str]]:
        return sorted((a.labels["severity"], a.starts_at.isoformat()) for a in state.firing_alerts())

    opened = slippage("warning", at_s=10)
    dispatcher.receive(convert(opened), NOW)
    assert firing() == [("warning", ns_to_datetime(BASE_NS + 10 * S).isoformat())]

    escalated = replace(opened, severity="critical")  # the pipeline's escalated anomaly: first finding, new severity
    dispatcher.receive(convert(escalated), NOW)
    assert firing() == [("critical", ns_to_datetime(BASE_NS + 10 * S).isoformat())]

    dispatcher.receive(convert(Resolution(escalated, BASE_NS + 320 * S, "quiet")), NOW)
    assert firing() == []

    # A redelivered firing of the old episode does not reopen it; a new episode fires.
    dispatcher.receive(convert(escalated), NOW)
    assert firing() == []
    dispatcher.receive(convert(slippage("warning", at_s=400)), NOW)
    assert firing() == [("warning", ns_to_datetime(BASE_NS + 400 * S).isoformat())]
