"""Compliance end to end: AuditClient -> Redis -> audit.ingest_batch -> (fan-out)
compliance.batch -> compliance_issues in PostgreSQL and a ComplianceViolation alert in the
router, with a real `celery worker` (and `celery beat` for compliance.tick, which resolves the
alert after its hold); and compliance.recheck recording what the incremental monitor never saw."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.integration.harness import ConsumerWorkers, wait_until
from tradewatch.alerting.state import AlertState
from tradewatch.domain.events import (
    MarketDataEvent,
    MarketDataPayload,
    OrderEvent,
    OrderPayload,
    RiskCheckEvent,
    RiskCheckPayload,
    SignalEvent,
    SignalPayload,
)
from tradewatch.storage.compliance import ComplianceStore

pytestmark = pytest.mark.integration

S = 1_000_000_000

POLICY = """
version: "it-1"
effective_from: 2020-01-01T00:00:00Z
required_risk_checks: {minimum_passed: 1}
restricted_symbols: [GME]
"""


def events(base_ns: int) -> list:
    """A checked order in GME (restricted), a checked order in AAPL (fine), then a quote 20 s
    later that moves the reorder watermark past both."""
    def signal(signal_id, symbol, at_s):
        return SignalEvent(occurred_at=base_ns + at_s * S, source="engine-1", signal_id=signal_id, strategy_id="mm-1",
                           symbol=symbol, payload=SignalPayload(direction="long", confidence=0.7))

    def check(signal_id, at_s):
        return RiskCheckEvent(occurred_at=base_ns + at_s * S, source="engine-1", signal_id=signal_id,
                              strategy_id="mm-1", payload=RiskCheckPayload(check_name="max_position", passed=True))

    def order(signal_id, order_id, symbol, at_s):
        return OrderEvent(occurred_at=base_ns + at_s * S, source="engine-1", signal_id=signal_id, order_id=order_id,
                          strategy_id="mm-1", symbol=symbol,
                          payload=OrderPayload(side="buy", quantity=Decimal(10), order_type="market",
                                               status="submitted", decision_price=Decimal("20.00")))

    return [
        signal("s-gme", "GME", 1), check("s-gme", 2), order("s-gme", "o-gme", "GME", 3),
        signal("s-ok", "AAPL", 4), check("s-ok", 5), order("s-ok", "o-ok", "AAPL", 6),
        MarketDataEvent(occurred_at=base_ns + 30 * S, source="engine-1", symbol="AAPL",
                        payload=MarketDataPayload(bid=Decimal("99.99"), ask=Decimal("100.01"))),
    ]


@pytest.fixture
def monitoring(deployment, tmp_path):
    """The deployment with a policy file and a log-only route tree; yields a function starting
    one worker (``fanout`` on or off), returning (worker, compliance store, router state)."""
    workers = ConsumerWorkers(deployment, tmp_path, group_by=("alertname", "strategy_id", "symbol"))
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)

    def start(fanout: bool = True, queues: str = "audit,analysis,alerts", **env: str):
        return workers.start(ComplianceStore, queues=queues, name="compliance", env={
            "TRADEWATCH_COMPLIANCE_POLICY": str(policy),
            "TRADEWATCH_INGEST_FANOUT": "true" if fanout else "false",
            **env,
        })

    yield start
    workers.close()


def violations(state: AlertState) -> set[tuple[str, ...]]:
    return {(a.labels["issue_key"], a.labels["severity"], a.labels.get("symbol", ""))
            for a in state.firing_alerts() if a.alertname == "ComplianceViolation"}


GME_KEY = "RESTRICTED_SYMBOL|order:o-gme"


def test_an_ingested_breach_is_recorded_alerted_and_its_alert_resolved_after_the_hold(deployment, monitoring):
    worker, compliance, state = monitoring(TRADEWATCH_COMPLIANCE_ALERT_HOLD_SECONDS="2")
    client = deployment.client()
    items = events(time.time_ns() - 120 * S)
    for event in items:
        assert client.emit(event)
    assert client.flush(60)

    wait_until(lambda: compliance.issues(), 60, 0.2, f"the issue recorded; worker log:\n{worker.log()[-3000:]}")
    (issue,) = compliance.issues()
    assert (issue["key"], issue["code"], issue["severity"], issue["order_id"], issue["symbol"]) == (
        GME_KEY, "RESTRICTED_SYMBOL", "critical", "o-gme", "GME")
    assert (issue["found_by"], issue["policy_version"]) == ("incremental", "it-1")
    assert str(items[2].event_id) in issue["event_ids"]
    wait_until(lambda: violations(state) == {(GME_KEY, "critical", "GME")}, 30, 0.2,
               f"the alert in the router; log:\n{worker.log()[-3000:]}")
    wait_until(lambda: '"alert.notification"' in worker.log(), 30, 0.2, "the log receiver's notification")
    assert '"compliance.batch"' in worker.log()

    # compliance.tick (beat, every 5 s) resolves the alert once it has been held 2 s.
    deployment.beat().start()
    wait_until(lambda: violations(state) == set(), 60, 0.2, f"the alert resolved; log:\n{worker.log()[-3000:]}")
    (issue,) = compliance.issues()
    assert issue["alert_resolved_at"] is not None
    assert len(compliance.issues()) == 1  # the tick found nothing more


def test_the_recheck_records_and_alerts_what_the_incremental_monitor_never_saw(deployment, monitoring):
    worker, compliance, state = monitoring(fanout=False, queues="audit,analysis,alerts,reports")
    client = deployment.client()
    for event in events(time.time_ns() - 120 * S):
        assert client.emit(event)
    assert client.flush(60)
    wait_until(lambda: len(compliance.follow_events(None, limit=100)[0]) == 7, 60, 0.2, "the events stored")
    assert compliance.issues() == []  # no fan-out, no beat: nothing applied them

    deployment.app().send_task("compliance.recheck")  # routed to the reports queue
    wait_until(lambda: compliance.issues(), 60, 0.2, f"the re-check's issue; log:\n{worker.log()[-3000:]}")
    (issue,) = compliance.issues()
    assert (issue["key"], issue["found_by"]) == (GME_KEY, "recheck")
    wait_until(lambda: violations(state) == {(GME_KEY, "critical", "GME")}, 30, 0.2, "the alert in the router")
    assert '"compliance.recheck_found_missed_issues"' in worker.log()


def test_compliance_tasks_are_routed_fanned_out_and_scheduled(deployment):
    from tradewatch.beat_schedule import BEAT_SCHEDULE
    from tradewatch.tasks.ingest import DOWNSTREAM_TASKS

    router = deployment.app().amqp.router
    assert DOWNSTREAM_TASKS == ("detect.batch", "compliance.batch")
    assert {name: router.route({}, name)["queue"].name for name in ("compliance.batch", "compliance.tick",
                                                                    "compliance.recheck")} == {
        "compliance.batch": "analysis", "compliance.tick": "analysis", "compliance.recheck": "reports"}
    tick = BEAT_SCHEDULE["compliance-tick"]
    assert (tick["task"], tick["schedule"], tick["options"]) == ("compliance.tick", 5.0,
                                                                 {"queue": "analysis", "expires": 5})
    recheck = BEAT_SCHEDULE["compliance-recheck"]
    assert (recheck["task"], recheck["schedule"], recheck["options"]) == ("compliance.recheck", 900.0,
                                                                          {"queue": "reports", "expires": 600})
