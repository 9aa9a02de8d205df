"""Alert tasks (queue ``alerts``): receive alerts, deliver notifications, and the beat tick.

Thin translators: JSON in, one call into tradewatch.alerting with objects from wiring, a dict
out. Only ids and alert documents cross the broker, never a secret.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable

import redis
from pydantic import ValidationError

from tradewatch.alerting.delivery import backoff_seconds
from tradewatch.alerting.model import Alert
from tradewatch.tasks import faults, wiring
from tradewatch.tasks.app import app, settings
from tradewatch.tasks.logs import get_logger

log = get_logger(__name__)

# Redis away: retry the task (acks_late keeps its message meanwhile), never drop the alerts.
_TRANSIENT = (redis.RedisError, ConnectionError, TimeoutError)
# Every countdown stays below the broker's visibility timeout (DESIGN.md, "Queues").
_MAX_COUNTDOWN_SECONDS = max(1.0, min(30.0, settings.visibility_timeout_seconds / 2))


def raise_alerts(alerts: Iterable[Alert]) -> None:
    """Hand alerts to the router (for sources running outside a task, e.g. the web service)."""
    documents = [alert.model_dump(mode="json") for alert in alerts]
    if documents:
        app.send_task("alerts.receive", args=[documents], queue="alerts")


@app.task(
    name="alerts.receive", bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True,
    autoretry_for=_TRANSIENT, retry_backoff=1, retry_backoff_max=int(_MAX_COUNTDOWN_SECONDS), retry_jitter=True,
    max_retries=None,
)
def receive(self, alerts: list) -> dict:
    parsed = []
    for position, item in enumerate(alerts):
        try:
            parsed.append(Alert.model_validate(item))
        except ValidationError as exc:
            # One malformed alert never holds back the others.
            log.error("alerts.invalid", position=position, reason=str(exc).splitlines()[0:3])
    report = wiring.dispatcher().receive(parsed, datetime.now(timezone.utc))
    faults.checkpoint("alerts.before_ack")
    result = {"alerts": len(parsed), "invalid": len(alerts) - len(parsed), "notifications": len(report.notifications),
              "silenced": report.silenced, "inhibited": report.inhibited}
    log.info("alerts.received", **result)
    return result


@app.task(name="alerts.tick", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def tick() -> dict:
    report = wiring.dispatcher().tick(datetime.now(timezone.utc))
    return {"notifications": len(report.notifications), "silenced": report.silenced, "inhibited": report.inhibited}


@app.task(
    name="alerts.deliver", bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True,
    max_retries=settings.alert_delivery_max_retries,
    autoretry_for=_TRANSIENT, retry_backoff=1, retry_backoff_max=int(_MAX_COUNTDOWN_SECONDS), retry_jitter=True,
)
def deliver(self, notification_id: str) -> dict:
    retries = self.request.retries
    outcome = wiring.deliverer().attempt(
        notification_id, attempts=retries + 1, final_attempt=retries >= self.max_retries,
        now=datetime.now(timezone.utc),
    )
    if outcome.outcome == "retry":
        countdown = backoff_seconds(retries, outcome.retry_after, cap=_MAX_COUNTDOWN_SECONDS)
        log.warning("alerts.delivery_retry", notification_id=notification_id, receiver=outcome.receiver,
                    attempt=retries + 1, countdown_seconds=round(countdown, 2), error=outcome.detail)
        raise self.retry(countdown=countdown)
    level = log.error if outcome.outcome == "failed" else log.info
    level("alerts.delivery", notification_id=notification_id, **outcome.to_dict())
    return outcome.to_dict()
