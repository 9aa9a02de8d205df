"""ComplianceConverter: a recorded compliance issue becomes one ComplianceViolation alert per
issue key, and through the real router (shipped routes, Redis state) it pages once and its
resolve (after the hold) closes the page without reopening on a late re-raise."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.factories import BASE_NS
from tradewatch.alerting.config import load_alerting_config
from tradewatch.alerting.converters.base import AlertConverter
from tradewatch.alerting.converters.compliance import ALERTNAME, RUNBOOK_URL, ComplianceConverter
from tradewatch.alerting.dispatcher import Dispatcher
from tradewatch.alerting.model import AlertStatus
from tradewatch.domain.compliance.issue import ComplianceIssue
from tradewatch.domain.events.timestamps import ns_to_datetime

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
S = 1_000_000_000
METADATA = {"policy_version": "2024.1", "policy_hash": "ab" * 32, "notional": 6_000_000.0}


def issue(code: str = "ORDER_NOTIONAL_LIMIT", order_id: str | None = "o-1", **overrides) -> ComplianceIssue:
    fields = dict(message="order o-1 notional 6,000,000 USD above the per-order limit 5,000,000 USD",
                  occurred_at=BASE_NS + 10 * S, signal_id="sig-1", order_id=order_id, strategy_id="mm-1",
                  symbol="AAPL", event_ids=("e-order",), metadata=METADATA)
    fields.update(overrides)
    return ComplianceIssue.new(code, **fields)


def convert(item):
    return ComplianceConverter().to_alerts(item, now=NOW)


def test_is_an_alert_converter():
    converter: AlertConverter = ComplianceConverter()
    assert converter.source == "compliance"


def test_an_issue_fires_one_alert_identified_by_its_key():
    [alert] = convert(issue())
    assert alert.status is AlertStatus.FIRING and alert.ends_at is None
    assert alert.labels == {"alertname": ALERTNAME, "severity": "critical", "category": "compliance",
                            "code": "ORDER_NOTIONAL_LIMIT", "issue_key": "ORDER_NOTIONAL_LIMIT|order:o-1",
                            "strategy_id": "mm-1", "symbol": "AAPL"}
    assert alert.starts_at == ns_to_datetime(BASE_NS + 10 * S)
    notes = alert.annotations
    assert notes["summary"] == issue().message
    assert notes["runbook_url"] == RUNBOOK_URL == "README.md#runbook-complianceviolation"
    assert (notes["order_id"], notes["signal_id"], notes["event_ids"]) == ("o-1", "sig-1", "e-order")
    assert (notes["policy_version"], notes["policy_hash"]) == ("2024.1", "ab" * 32)
    description = notes["description"].splitlines()
    assert description[0].startswith("ORDER_NOTIONAL_LIMIT (critical) at 2026-11-18T11:06:50.000000000Z")
    assert "Strategy: mm-1" in description and "Order: o-1" in description
    assert "Details: notional=6000000.0" in description and "Issue key: ORDER_NOTIONAL_LIMIT|order:o-1" in description


def test_the_same_issue_found_again_is_the_same_alert_and_another_order_another():
    first = convert(issue())[0]
    again = convert(issue(message="found by the re-check", event_ids=("e-order", "e-signal")))[0]
    other = convert(issue(order_id="o-2"))[0]
    assert first.fingerprint == again.fingerprint
    assert other.fingerprint != first.fingerprint


def test_absent_entity_labels_are_left_out_and_warnings_stay_warnings():
    [alert] = convert(issue("LLM_FORBIDDEN_DECISION", order_id=None, strategy_id=None, symbol=None, metadata={}))
    assert alert.labels["severity"] == "warning"
    assert "strategy_id" not in alert.labels and "symbol" not in alert.labels
    assert alert.labels["issue_key"] == "LLM_FORBIDDEN_DECISION|signal:sig-1"
    assert "order_id" not in alert.annotations and "policy_version" not in alert.annotations


def test_resolve_is_the_same_alert_resolved_never_before_its_start():
    resolved = ComplianceConverter.resolve(issue(), at=NOW)
    assert resolved.status is AlertStatus.RESOLVED and resolved.ends_at == NOW
    assert resolved.fingerprint == convert(issue())[0].fingerprint
    assert resolved.annotations == {"resolved_reason": "recorded"}
    early = ComplianceConverter.resolve(issue(), at=ns_to_datetime(BASE_NS))
    assert early.ends_at == early.starts_at


def test_anything_else_is_refused():
    with pytest.raises(TypeError, match="converts ComplianceIssue"):
        convert({"code": "RESTRICTED_SYMBOL"})


def test_through_the_router_a_critical_issue_pages_once_and_its_resolve_closes_the_page(state):
    sent: list[str] = []
    dispatcher = Dispatcher(load_alerting_config(), state, enqueue_delivery=sent.append)

    def notifications(receiver: str):
        # Unique ids: the tick hands an undelivered notification over again (the same id).
        found = [state.notification(n) for n in dict.fromkeys(sent)]
        return [(n.status.value, [a.labels["issue_key"] for a in n.alerts]) for n in found if n.receiver == receiver]

    dispatcher.receive(convert(issue()), NOW)
    assert notifications("pagerduty-oncall") == [("firing", ["ORDER_NOTIONAL_LIMIT|order:o-1"])]
    # Found again (redelivered batch, the re-check): no second page, even past the group interval.
    dispatcher.receive(convert(issue()), NOW + timedelta(seconds=5))
    dispatcher.tick(NOW + timedelta(minutes=2))
    assert len(notifications("pagerduty-oncall")) == 1
    # Resolved after the hold: the page is closed at the next group interval.
    later = NOW + timedelta(minutes=50)
    dispatcher.receive([ComplianceConverter.resolve(issue(), at=later)], later)
    dispatcher.tick(later + timedelta(minutes=1))
    assert notifications("pagerduty-oncall")[-1] == ("resolved", ["ORDER_NOTIONAL_LIMIT|order:o-1"])
    assert state.firing_alerts() == []
    # A late firing of the same breach does not reopen it.
    dispatcher.receive(convert(issue()), later + timedelta(minutes=2))
    dispatcher.tick(later + timedelta(hours=3))
    assert state.firing_alerts() == [] and len(notifications("pagerduty-oncall")) == 2
    # Slack (the criticals' second route) saw the page too.
    assert notifications("slack-trading")[0] == ("firing", ["ORDER_NOTIONAL_LIMIT|order:o-1"])


def test_a_critical_breach_does_not_mute_another_breachs_warning_on_the_same_strategy(state):
    sent: list[str] = []
    dispatcher = Dispatcher(load_alerting_config(), state, enqueue_delivery=sent.append)
    dispatcher.receive(convert(issue()), NOW)
    duplicate = issue("DUPLICATE_ORDER", order_id="o-3", message="order o-3 duplicates o-2")
    dispatcher.receive(convert(duplicate), NOW)
    dispatcher.tick(NOW + timedelta(seconds=11))  # the warning route's group_wait
    to_slack = [state.notification(n) for n in dict.fromkeys(sent)]
    keys = {a.labels["issue_key"] for n in to_slack if n.receiver == "slack-trading" for a in n.firing}
    assert "DUPLICATE_ORDER|order:o-3" in keys
