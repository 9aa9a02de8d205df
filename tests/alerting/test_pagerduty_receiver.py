"""Contract tests: the real `pagerduty` client, through PagerDutyReceiver, against a local fake
of the Events API v2 (tests/alerting/fake_services.py)."""

from __future__ import annotations

import logging

import pytest
import structlog
from pydantic import SecretStr

from tests.alerting.fake_services import FakePagerDuty, closed_port_url, make_alert, make_notification
from tradewatch.alerting.model import Link
from tradewatch.alerting.receivers.base import PermanentDeliveryError, TransientDeliveryError
from tradewatch.alerting.receivers.pagerduty import PagerDutyReceiver

ROUTING_KEY = "R0UT1NGK3Y5ECRET0123456789abcdef"  # 32 characters, like a real integration key


@pytest.fixture
def fake():
    with FakePagerDuty() as service:
        yield service


@pytest.fixture
def receiver(fake):
    return PagerDutyReceiver("pagerduty-oncall", SecretStr(ROUTING_KEY), base_url=fake.base_url)


def test_trigger_then_resolve_use_the_same_dedup_key(fake, receiver):
    firing = make_notification(make_alert())
    resolved = make_notification(make_alert(resolved=True))  # same group, so same dedup_key

    trigger_receipt = receiver.send(firing)
    assert fake.incident(firing.dedup_key) == "triggered"
    resolve_receipt = receiver.send(resolved)

    assert trigger_receipt.receiver == "pagerduty-oncall"
    assert trigger_receipt.status == resolve_receipt.status == 202
    assert trigger_receipt.reference == resolve_receipt.reference == firing.dedup_key
    (trigger,) = fake.accepted("trigger")
    (resolve,) = fake.accepted("resolve")
    assert trigger.json["dedup_key"] == resolve.json["dedup_key"] == firing.dedup_key
    assert trigger.json["routing_key"] == resolve.json["routing_key"] == ROUTING_KEY
    assert resolve.json == {"event_action": "resolve", "dedup_key": firing.dedup_key, "routing_key": ROUTING_KEY}
    assert fake.incident(firing.dedup_key) == "resolved"


def test_trigger_carries_every_field(fake):
    receiver = PagerDutyReceiver(
        "pagerduty-oncall", SecretStr(ROUTING_KEY), base_url=fake.base_url, severity_map={"warning": "error"}
    )
    dashboard = Link(href="https://grafana.example/d/feeds", text="Feed dashboard")
    runbook = "https://runbooks.example/stale-market-data"
    first = make_alert(severity="warning", symbol="AAPL", links=(dashboard,),
                       annotations={"summary": "AAPL feed stale", "description": "30 s", "runbook_url": runbook})
    second = make_alert(severity="warning", symbol="MSFT", links=(dashboard,),
                        annotations={"summary": "MSFT feed stale", "runbook_url": runbook})
    notification = make_notification(first, second)

    receiver.send(notification)

    (event,) = fake.accepted("trigger")
    payload = event.json["payload"]
    assert payload["summary"] == notification.title == "[FIRING:2] StaleMarketData (strategy_id=mm-1)"
    assert payload["source"] == "engine-1"  # the label both alerts share
    assert payload["severity"] == "error"  # warning, through the map
    assert payload["component"] == "market_data"  # the category label
    assert payload["group"] == "mm-1"  # the strategy_id label
    assert payload["class"] == "StaleMarketData"
    assert payload["timestamp"] == first.starts_at.isoformat()
    details = payload["custom_details"]
    assert details["group_labels"] == {"strategy_id": "mm-1"}
    assert details["firing"] == 2 and details["resolved"] == 0
    assert [a["labels"]["symbol"] for a in details["alerts"]] == ["AAPL", "MSFT"]
    assert details["alerts"][0]["annotations"]["description"] == "30 s"
    assert details["alerts"][0]["starts_at"] == first.starts_at.isoformat()
    # Each href once, in order: the shared dashboard and the shared runbook.
    assert event.json["links"] == [
        {"href": dashboard.href, "text": "Feed dashboard"},
        {"href": runbook, "text": "Runbook: StaleMarketData"},
    ]


def test_default_severity_map_is_identity_and_the_highest_firing_severity_wins(fake, receiver):
    receiver.send(make_notification(make_alert(severity="info"), make_alert("PnlDrop", severity="critical")))
    receiver.send(make_notification(make_alert(severity="warning"), group_key="warning-group"))
    receiver.send(make_notification(make_alert(severity="info"), group_key="info-group"))
    assert [e.json["payload"]["severity"] for e in fake.accepted("trigger")] == ["critical", "warning", "info"]


def test_configured_component_group_and_class_win_over_labels(fake):
    receiver = PagerDutyReceiver(
        "pagerduty-oncall", SecretStr(ROUTING_KEY), base_url=fake.base_url,
        component="feed-handler", group="equities", class_="market data",
    )
    receiver.send(make_notification(make_alert(component="quotes")))
    payload = fake.accepted("trigger")[0].json["payload"]
    assert (payload["component"], payload["group"], payload["class"]) == ("feed-handler", "equities", "market data")


def test_component_label_is_preferred_to_category_and_source_falls_back(fake, receiver):
    receiver.send(make_notification(make_alert(component="quotes", source="engine-1"),
                                    make_alert("Other", component="quotes", source="engine-2")))
    payload = fake.accepted("trigger")[0].json["payload"]
    assert payload["component"] == "quotes"
    assert payload["source"] == "tradewatch"  # the alerts disagree on source
    assert payload["class"] == "Other, StaleMarketData"


def test_a_long_title_is_capped_to_pagerdutys_summary_limit(fake, receiver):
    notification = make_notification(make_alert(), group_labels={"strategy_id": "x" * 2000})
    receiver.send(notification)  # the fake rejects summaries over 1024 characters
    summary = fake.accepted("trigger")[0].json["payload"]["summary"]
    assert len(summary) == 1024 and summary.endswith("…")


def test_custom_details_are_capped_for_large_groups(fake, receiver):
    alerts = [make_alert(symbol=f"S{i:03d}") for i in range(60)]
    receiver.send(make_notification(*alerts))
    details = fake.accepted("trigger")[0].json["payload"]["custom_details"]
    assert details["firing"] == 60
    assert len(details["alerts"]) == 50 and details["alerts_not_shown"] == 10


def test_invalid_event_is_permanent_with_pagerdutys_errors(fake):
    receiver = PagerDutyReceiver("pagerduty-oncall", SecretStr(ROUTING_KEY[:-1]), base_url=fake.base_url)
    with pytest.raises(PermanentDeliveryError) as raised:
        receiver.send(make_notification())
    assert raised.value.status == 400
    message = str(raised.value)
    assert "invalid event" in message
    assert "Length of 'routing_key' is incorrect (should be 32 characters)" in message
    assert ROUTING_KEY[:-1] not in message


@pytest.mark.parametrize("status", [401, 403, 404, 413])
def test_other_client_errors_are_permanent(fake, receiver, status):
    fake.fail_next(status)
    with pytest.raises(PermanentDeliveryError) as raised:
        receiver.send(make_notification())
    assert raised.value.status == status
    assert len(fake.requests) == 1


def test_throttled_is_transient_with_retry_after(fake, receiver):
    fake.fail_next(429, retry_after=2, times=3)
    with pytest.raises(TransientDeliveryError) as raised:
        receiver.send(make_notification())
    assert raised.value.status == 429
    assert raised.value.retry_after == 2
    assert "arriving too quickly" in str(raised.value)
    assert len(fake.requests) == 1  # the library did not retry on its own


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_transient_after_one_attempt(fake, receiver, status):
    fake.fail_next(status, times=3)
    with pytest.raises(TransientDeliveryError) as raised:
        receiver.send(make_notification())
    assert raised.value.status == status
    assert raised.value.retry_after is None
    assert len(fake.requests) == 1


def test_a_resolve_that_fails_is_classified_the_same_way(fake, receiver):
    fake.fail_next(503)
    with pytest.raises(TransientDeliveryError, match="resolve"):
        receiver.send(make_notification(make_alert(resolved=True)))


def test_connection_refused_is_transient():
    receiver = PagerDutyReceiver("pagerduty-oncall", SecretStr(ROUTING_KEY), base_url=closed_port_url())
    with pytest.raises(TransientDeliveryError, match="network error") as raised:
        receiver.send(make_notification())
    assert raised.value.status is None


def test_a_timeout_is_transient(fake):
    receiver = PagerDutyReceiver("pagerduty-oncall", SecretStr(ROUTING_KEY), base_url=fake.base_url, timeout_seconds=0.2)
    fake.stall_next()
    with pytest.raises(TransientDeliveryError, match="timed out"):
        receiver.send(make_notification())


def test_the_routing_key_never_leaks(fake, receiver, caplog):
    caplog.set_level(logging.DEBUG)  # the libraries' own debug lines included
    failures: list[Exception] = []
    with structlog.testing.capture_logs() as structured:
        receiver.send(make_notification())
        for status in (400, 401, 429, 500):
            fake.fail_next(status, retry_after=1)
            try:
                receiver.send(make_notification())
            except Exception as exc:  # noqa: BLE001 - every failure's text is checked below
                failures.append(exc)
        for broken in (
            PagerDutyReceiver("short-key", SecretStr(ROUTING_KEY[:-1]), base_url=fake.base_url),
            PagerDutyReceiver("nowhere", SecretStr(ROUTING_KEY), base_url=closed_port_url()),
        ):
            try:
                broken.send(make_notification())
            except Exception as exc:  # noqa: BLE001
                failures.append(exc)
    assert len(failures) == 6
    texts = [str(e) for e in failures] + [repr(e) for e in failures] + [repr(receiver), str(vars(receiver).keys())]
    texts += [str(entry) for entry in structured] + [caplog.text]
    assert structured, "the receiver logs its deliveries"
    for text in texts:
        assert ROUTING_KEY not in text
        assert ROUTING_KEY[:-1] not in text
    assert "SecretStr('**********')" in repr(receiver)


def test_configuration_errors_say_what_is_accepted():
    with pytest.raises(ValueError, match="accepted: critical, error, warning, info"):
        PagerDutyReceiver("p", SecretStr(ROUTING_KEY), severity_map={"critical": "page"})
    with pytest.raises(ValueError, match="not a tradewatch severity"):
        PagerDutyReceiver("p", SecretStr(ROUTING_KEY), severity_map={"fatal": "critical"})
    with pytest.raises(ValueError, match="must be an https:// URL"):
        PagerDutyReceiver("p", SecretStr(ROUTING_KEY), base_url="http://events.example.com")
    with pytest.raises(ValueError, match="routing_key is empty"):
        PagerDutyReceiver("p", SecretStr(" "))
    assert PagerDutyReceiver("p", SecretStr(ROUTING_KEY)).base_url == "https://events.pagerduty.com"
