"""Compliance tasks: run the compliance rules over the trail, record the breaches, raise alerts.

- ``compliance.batch`` (queue ``analysis``, sent by ``audit.ingest_batch`` after each committed
  batch): apply the rule engine to whatever the trail holds past the monitor's cursor
  (``ComplianceStore.apply_pending``). The batch id is only logged: the cursor, not the
  message, says what is new, so a redelivered or late message is a no-op.
- ``compliance.tick`` (beat, every 5 s): catch up like ``compliance.batch``, then, once nothing
  is pending, the engine's ``tick(now)``: the events held in the reorder window
  (``compliance_reorder_window_seconds``) are applied once the clock has passed them, so the
  last events before ingest stops are judged too. Then the alerts of breaches recorded
  ``compliance_alert_hold_seconds`` ago are resolved (a breach is a fact: see
  ``alerting.converters.compliance``).
- ``compliance.recheck`` (beat, every 15 minutes; queue ``reports``): the rules afresh over
  [end - compliance_recheck_seconds, end), end = now - the reorder window (what the incremental
  monitor may still hold back), and never past what the incremental monitor has applied (its
  state's released watermark), so a backlog is not mistaken for missed breaches; through
  ``ComplianceMonitor.analyze_period``. Breaches not recorded yet are inserted with
  ``found_by = "recheck"`` and alerted.

Translators only: the rules are the engine's (domain.compliance), the persistence the
ComplianceStore's, the alert wording the ComplianceConverter's. A chunk's alerts are handed to
the router inside the chunk's transaction (a failure rolls the chunk back, the retry raises
them again; the router absorbs an alert raised twice). Embedded mode has no router: alerts are
logged.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Callable

import redis
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import OperationalError

from tradewatch.alerting.converters.compliance import ComplianceConverter
from tradewatch.alerting.model import Alert
from tradewatch.domain.compliance.issue import ComplianceIssue
from tradewatch.domain.events.timestamps import NS_PER_SECOND, datetime_to_ns
from tradewatch.tasks import wiring
from tradewatch.tasks.alerting import _MAX_COUNTDOWN_SECONDS, raise_alerts
from tradewatch.tasks.app import app, settings
from tradewatch.tasks.logs import get_logger

log = get_logger(__name__)

# The database or the broker away: retry (acks_late keeps the message meanwhile).
_TRANSIENT = (OperationalError, BrokerError, redis.RedisError, ConnectionError, TimeoutError)
_converter = ComplianceConverter()


def _hand_over(alerts: list[Alert]) -> None:
    if not alerts:
        return
    if settings.embedded:
        # Embedded mode has no alert router (it keeps its state in Redis): alerts go to the log.
        for alert in alerts:
            level = log.warning if alert.status.value == "firing" else log.info
            level("compliance.alert", alertname=alert.alertname, status=alert.status.value,
                  severity=alert.severity.value, summary=alert.summary, labels=dict(alert.labels))
        return
    raise_alerts(alerts)


def _raise_issues(issues: list[ComplianceIssue]) -> None:
    """The ``before_commit`` hook: the firing alerts of the newly recorded issues."""
    now = datetime.now(timezone.utc)
    _hand_over([alert for issue in issues for alert in _converter.to_alerts(issue, now=now)])


def _resolver(now: datetime) -> Callable[[list[ComplianceIssue]], None]:
    def resolve(issues: list[ComplianceIssue]) -> None:
        _hand_over([_converter.resolve(issue, at=now) for issue in issues])

    return resolve


@app.task(
    name="compliance.batch", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
    autoretry_for=_TRANSIENT, retry_backoff=1, retry_backoff_max=int(_MAX_COUNTDOWN_SECONDS), retry_jitter=True,
    max_retries=10,
)
def batch(batch_id: str | None = None) -> dict:
    run = wiring.compliance_store().apply_pending(wiring.compliance_engine(), before_commit=_raise_issues)
    result = run.to_dict()
    log.info("compliance.batch", batch_id=batch_id, **result)
    return result


# No retries: the next tick comes within seconds and does the same work.
@app.task(name="compliance.tick", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def tick() -> dict:
    now = datetime.now(timezone.utc)
    store = wiring.compliance_store()
    run = store.catch_up_and_tick(wiring.compliance_engine(), datetime_to_ns(now), before_commit=_raise_issues)
    closed = store.close_alerts(now - timedelta(seconds=settings.compliance_alert_hold_seconds), now,
                                before_commit=_resolver(now))
    result = {"now_ns": datetime_to_ns(now), **run.to_dict(), "alerts_resolved": len(closed)}
    if run.events or run.issues or closed or not run.ticked:
        log.info("compliance.tick", **result)
    return result


@app.task(
    name="compliance.recheck", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
    autoretry_for=(OperationalError,), retry_backoff=5, retry_backoff_max=int(_MAX_COUNTDOWN_SECONDS),
    retry_jitter=True, max_retries=3,
)
def recheck() -> dict:
    from tradewatch.domain.compliance.monitor import ComplianceMonitor, recheck_period

    store = wiring.compliance_store()
    start_ns, end_ns = recheck_period(
        datetime_to_ns(datetime.now(timezone.utc)), int(settings.compliance_recheck_seconds * NS_PER_SECOND),
        int(settings.compliance_reorder_window_seconds * NS_PER_SECOND), store.released_ns())
    monitor = ComplianceMonitor(store, wiring.compliance_policies(), wiring.compliance_config())
    report = monitor.analyze_period(start_ns, end_ns)
    new = store.record_issues(report.issues, found_by="recheck", before_commit=_raise_issues)
    result = {"period_start_ns": start_ns, "period_end_ns": end_ns, "events_examined": report.events_examined,
              "issues": len(report.issues), "new_issues": len(new), "policy_version": report.policy_version}
    if new:
        log.warning("compliance.recheck_found_missed_issues", keys=[issue.key for issue in new][:20], **result)
    else:
        log.info("compliance.recheck", **result)
    return result
