"""LogReceiver: one structured line per notification."""

from __future__ import annotations

import pytest
import structlog

from tests.alerting.fake_services import make_alert, make_notification
from tradewatch.alerting.receivers.log import LogReceiver


def test_one_line_with_what_a_person_needs():
    notification = make_notification(make_alert(), make_alert("PnlDrawdown", severity="warning", symbol="MSFT"))
    with structlog.testing.capture_logs() as logs:
        receipt = LogReceiver("log").send(notification)

    assert (receipt.receiver, receipt.status, receipt.reference) == ("log", 0, None)
    (line,) = logs
    assert line["event"] == "alert.notification"
    assert line["log_level"] == "warning"
    assert line["receiver"] == "log"
    assert line["status"] == "firing"
    assert line["title"] == notification.title
    assert line["group_key"] == notification.group_key
    assert line["dedup_key"] == notification.dedup_key
    assert [(a["alertname"], a["severity"], a["summary"]) for a in line["alerts"]] == [
        ("StaleMarketData", "critical", "StaleMarketData on mm-1"),
        ("PnlDrawdown", "warning", "PnlDrawdown on mm-1"),
    ]
    assert line["alerts"][1]["labels"]["symbol"] == "MSFT"


def test_level_and_resolved_status():
    with structlog.testing.capture_logs() as logs:
        LogReceiver("log", level="info").send(make_notification(make_alert(resolved=True)))
    assert logs[0]["log_level"] == "info"
    assert logs[0]["status"] == "resolved"
    assert logs[0]["alerts"][0]["alertname"] == "StaleMarketData"


def test_an_unknown_level_is_refused():
    with pytest.raises(ValueError, match="accepted: debug, info, warning, error, critical"):
        LogReceiver("log", level="loud")
    assert LogReceiver("log").kind == "log"
