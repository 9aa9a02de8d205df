"""AlertmanagerConverter: Alertmanager's v4 webhook payload to tradewatch Alerts."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest

from tradewatch.alerting.converters.alertmanager import (
    AlertmanagerConverter,
    AlertmanagerPayloadError,
    WebhookPayload,
    parse_webhook,
)
from tradewatch.alerting.converters.base import AlertConverter
from tradewatch.alerting.model import Alert, AlertStatus, Link

NOW = datetime(2026, 11, 21, 15, 0, tzinfo=timezone.utc)
LATENCY_URL = (
    "http://prometheus:9090/graph?g0.expr=histogram_quantile%280.95%2C+trading_order_latency_seconds_bucket%29"
    "+%3E+2&g0.tab=1"
)
BROKER_URL = "http://prometheus:9090/graph?g0.expr=trading_broker_connection_status+%21%3D+1&g0.tab=1"


def latency_alert(status: str = "firing") -> dict:
    """An alert as Alertmanager 0.27 puts it in a webhook notification."""
    return {
        "status": status,
        "labels": {
            "alertname": "HighOrderLatency",
            "instance": "trading:9090",
            "job": "trading-engine",
            "severity": "warning",
            "strategy_id": "momentum",
        },
        "annotations": {
            "description": "95th percentile order latency is 2.4s",
            "summary": "High order latency detected",
        },
        "startsAt": "2026-11-21T14:30:00.123456789Z",
        "endsAt": "2026-11-21T14:52:30.5Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": LATENCY_URL,
        "fingerprint": "4c6bbd3b1f5a9e27",
    }


def broker_alert() -> dict:
    return {
        "status": "firing",
        "labels": {"alertname": "BrokerConnectionDown", "instance": "trading:9090", "job": "trading-engine", "severity": "critical"},
        "annotations": {"description": "Cannot connect to broker API", "summary": "Broker connection lost"},
        "startsAt": "2026-11-21T14:31:15.004Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": BROKER_URL,
        "fingerprint": "a1b2c3d4e5f60718",
    }


def payload(*alerts: dict, status: str = "firing") -> dict:
    """A notification as Alertmanager's webhook_configs posts it (version 4)."""
    alerts = alerts or (latency_alert(), broker_alert())
    return {
        "receiver": "tradewatch",
        "status": status,
        "alerts": list(alerts),
        "groupLabels": {"job": "trading-engine"},
        "commonLabels": {"instance": "trading:9090", "job": "trading-engine"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": '{}/{severity=~"critical|warning"}:{job="trading-engine"}',
        "truncatedAlerts": 0,
    }


def convert(item) -> list[Alert]:
    return AlertmanagerConverter().to_alerts(item, now=NOW)


def problems_of(item) -> tuple[str, ...]:
    with pytest.raises(AlertmanagerPayloadError) as caught:
        convert(item)
    return caught.value.problems


def test_is_an_alert_converter_with_its_source():
    converter: AlertConverter = AlertmanagerConverter()
    assert converter.source == "prometheus"


def test_firing_alerts_keep_labels_annotations_and_the_prometheus_link():
    latency, broker = convert(payload())
    assert latency == Alert(
        labels={
            "alertname": "HighOrderLatency",
            "instance": "trading:9090",
            "job": "trading-engine",
            "severity": "warning",
            "strategy_id": "momentum",
            "source": "prometheus",
        },
        annotations={"description": "95th percentile order latency is 2.4s", "summary": "High order latency detected"},
        links=(Link(href=LATENCY_URL, text="Prometheus expression"),),
        status=AlertStatus.FIRING,
        starts_at=datetime(2026, 11, 21, 14, 30, 0, 123456, tzinfo=timezone.utc),
        ends_at=None,  # Go's zero time: unset
        generator_url=LATENCY_URL,
    )
    assert broker.severity.value == "critical"
    assert broker.starts_at == datetime(2026, 11, 21, 14, 31, 15, 4000, tzinfo=timezone.utc)


def test_a_resolved_alert_carries_its_end_and_the_same_fingerprint():
    [firing] = convert(payload(latency_alert()))
    [resolved] = convert(payload(latency_alert("resolved"), status="resolved"))
    assert resolved.status is AlertStatus.RESOLVED
    assert resolved.ends_at == datetime(2026, 11, 21, 14, 52, 30, 500000, tzinfo=timezone.utc)
    assert resolved.fingerprint == firing.fingerprint


def test_a_resolved_alert_without_an_end_ends_now():
    sent = latency_alert("resolved")
    sent["endsAt"] = "0001-01-01T00:00:00Z"
    [alert] = convert(payload(sent))
    assert alert.ends_at == NOW


def test_a_firing_alert_ignores_an_expiry_in_endsAt():
    sent = latency_alert()
    sent["endsAt"] = "2026-11-21T14:34:00Z"  # what Prometheus sends Alertmanager: an expiry, not an end
    [alert] = convert(payload(sent))
    assert alert.status is AlertStatus.FIRING and alert.ends_at is None


@pytest.mark.parametrize(
    ("sent", "severity", "original"),
    [
        ("critical", "critical", None),
        ("Warning", "warning", None),
        ("info", "info", None),
        (None, "warning", None),
        ("page", "warning", "page"),
        ("P1", "warning", "P1"),
    ],
)
def test_severity_is_kept_or_mapped_to_warning(sent, severity, original):
    alert_json = latency_alert()
    if sent is None:
        del alert_json["labels"]["severity"]
    else:
        alert_json["labels"]["severity"] = sent
    [alert] = convert(payload(alert_json))
    assert alert.labels["severity"] == severity
    assert alert.annotations.get("original_severity") == original


def test_a_source_label_set_by_the_rule_is_kept():
    sent = latency_alert()
    sent["labels"]["source"] = "node-exporter"
    [alert] = convert(payload(sent))
    assert alert.labels["source"] == "node-exporter"


def test_empty_label_values_are_dropped_like_prometheus_does():
    sent = latency_alert()
    sent["labels"]["symbol"] = ""
    [alert] = convert(payload(sent))
    assert "symbol" not in alert.labels


def test_unknown_fields_are_ignored_and_the_model_is_accepted_directly():
    raw = payload()
    raw["somethingNew"] = {"x": 1}
    raw["alerts"][0]["silencedBy"] = []
    model = parse_webhook(raw)
    assert isinstance(model, WebhookPayload)
    assert model.group_key.startswith("{}/")
    assert model.external_url == "http://alertmanager:9093"
    assert convert(model) == convert(payload())


def test_without_a_generator_url_there_is_no_link():
    sent = latency_alert()
    sent["generatorURL"] = ""
    [alert] = convert(payload(sent))
    assert alert.generator_url is None and alert.links == ()


# ------------------------------------------------------------------ refused payloads


VERSION_ACCEPTED = 'accepted: "4", the payload version of Alertmanager\'s webhook_configs'


@pytest.mark.parametrize(("version", "shown"), [("3", '"3"'), (4, "4"), (None, "null")])
def test_another_version_is_refused_with_one_clear_message(version, shown):
    raw = payload()
    raw["version"] = version
    raw["alerts"] = [{"labels": "v3 had other fields"}]  # not listed: the version is what to fix
    assert problems_of(raw) == (f"version: got {shown}; {VERSION_ACCEPTED}",)


def test_a_missing_version_is_refused():
    raw = payload()
    del raw["version"]
    assert problems_of(raw) == (f"version: missing; {VERSION_ACCEPTED}",)


def test_not_an_object_is_refused():
    assert problems_of(["version", "4"]) == ('payload: got ["version", "4"]; accepted: a JSON object, Alertmanager\'s webhook payload',)


def test_every_problem_is_named_by_its_field_path():
    raw = payload(latency_alert(), broker_alert(), latency_alert("resolved"), latency_alert())
    raw["alerts"][1]["labels"]["service.name"] = "gateway"
    raw["alerts"][2]["startsAt"] = "yesterday"
    raw["alerts"][3]["status"] = "pending"
    del raw["alerts"][0]["labels"]["alertname"]
    problems = problems_of(raw)
    assert problems[0].startswith("alerts[0].labels: alertname missing")
    assert problems[1] == (
        'alerts[1].labels: label name "service.name" not accepted; accepted: letters, digits and underscores, '
        "not starting with a digit (at most 100)"
    )
    assert problems[2] == (
        'alerts[2].startsAt: got "yesterday": not a timestamp; accepted: an RFC 3339 timestamp with a UTC offset, '
        "e.g. 2026-11-21T14:30:00.123Z (0001-01-01T00:00:00Z for unset)"
    )
    assert problems[3] == 'alerts[3].status: got "pending"; accepted: "firing" or "resolved"'
    assert len(problems) == 4
    assert not any("pydantic" in p for p in problems)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda p: p["alerts"][0].update(startsAt="2026-11-21T14:30:00"),
         "alerts[0].startsAt: got \"2026-11-21T14:30:00\": missing UTC offset"),
        (lambda p: p["alerts"][0].update(startsAt=1795000000),
         "alerts[0].startsAt: got 1795000000; accepted: an RFC 3339 timestamp"),
        (lambda p: p["alerts"][0]["annotations"].update(summary=42),
         "alerts[0].annotations.summary: got 42; accepted: a string"),
        (lambda p: p["alerts"][0].pop("labels"),
         "alerts[0].labels: missing; required, accepted: an object of label names to string values"),
        (lambda p: p["alerts"].append("HighOrderLatency"),
         'alerts[1]: got "HighOrderLatency"; accepted: an object with status, labels'),
        (lambda p: p.update(alerts={"a": 1}), "alerts: got {\"a\": 1}; accepted: a list of alerts"),
        (lambda p: p.update(status="pending"), 'status: got "pending"; accepted: "firing" or "resolved"'),
        (lambda p: p.update(truncatedAlerts=-1), "truncatedAlerts: got -1; accepted: a non-negative integer"),
        (lambda p: p["alerts"][0]["labels"].update(summary="x" * 1001), "alerts[0].labels.summary: got \"xxx"),
    ],
)
def test_invalid_fields_are_named_with_what_is_accepted(change, expected):
    raw = payload(latency_alert())
    change(raw)
    problems = problems_of(raw)
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems


def test_a_resolved_alert_ending_before_it_starts_is_refused():
    sent = latency_alert("resolved")
    sent["endsAt"] = "2026-11-21T14:00:00Z"
    assert problems_of(payload(sent)) == (
        "alerts[0].endsAt: 2026-11-21T14:00:00+00:00 is before startsAt 2026-11-21T14:30:00.123456+00:00; "
        "a resolved alert ends after it starts",
    )


def test_a_long_annotation_is_cut_not_refused():
    sent = latency_alert()
    sent["annotations"]["description"] = "y" * 20_000
    [alert] = convert(payload(sent))
    assert len(alert.annotations["description"]) == 10_000


def test_the_input_is_not_modified():
    raw = payload()
    before = copy.deepcopy(raw)
    convert(raw)
    assert raw == before
