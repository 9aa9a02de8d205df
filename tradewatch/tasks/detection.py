"""Detection tasks: run the detection pipeline over the trail and raise its alerts.

- ``detect.batch`` (queue ``analysis``, sent by ``audit.ingest_batch`` after each committed
  batch): apply the pipeline to whatever the trail holds past its cursor. The batch id is only
  logged: the cursor, not the message, says what is new, so a redelivered or late message is a
  no-op and one call may apply several batches.
- ``detect.tick`` (beat, every 5 s): catch up like ``detect.batch``, then, only once nothing is
  pending, the pipeline's ``tick(now)`` (absence rules such as a stale feed, quiet periods) with
  now from the clock (``DetectionStore.catch_up_and_tick``).
- ``detect.retrain`` (beat, daily; queue ``reports``, a long task): fit the model detectors'
  models on the last ``detection_training_days`` of the trail and keep them in the model store.

Translators only: the decisions are the pipeline's (domain.detection), the persistence the
DetectionStore's, the alert wording the AnomalyConverter's. Alerts of a chunk are handed to the
router inside the chunk's transaction (see ``DetectionStore.apply_pending``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

import redis
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import OperationalError

from tradewatch.domain.events.timestamps import NS_PER_SECOND, datetime_to_ns
from tradewatch.tasks import wiring
from tradewatch.tasks.alerting import _MAX_COUNTDOWN_SECONDS, raise_alerts
from tradewatch.tasks.app import app, settings
from tradewatch.tasks.logs import get_logger

if TYPE_CHECKING:
    from tradewatch.alerting.converters.anomaly import AnomalyConverter

log = get_logger(__name__)

# The database or the broker away: retry (acks_late keeps the message meanwhile). Anything else
# is a defect or a bad configuration, logged by Celery, and the next tick tries again anyway.
_TRANSIENT = (OperationalError, BrokerError, redis.RedisError, ConnectionError, TimeoutError)
_NS_PER_DAY = 86_400 * NS_PER_SECOND


def _now_ns() -> int:
    return datetime_to_ns(datetime.now(timezone.utc))


def _converter() -> AnomalyConverter:
    # Imported on first use: it loads the detection pipeline (every detector, scikit-learn), which
    # the ingest and alerts pools, importing this module too, never need.
    from tradewatch.alerting.converters.anomaly import AnomalyConverter

    config = wiring.detection_config()
    return AnomalyConverter({detector.name: detector.kind for detector in config.detectors})


def _raise_alerts_of(converter: AnomalyConverter):
    """The ``before_commit`` hook: the alerts of a chunk's opened, escalated and resolved anomalies."""

    def hand_over(result) -> None:
        now = datetime.now(timezone.utc)
        alerts = [alert for item in (*result.opened, *result.escalated, *result.resolved)
                  for alert in converter.to_alerts(item, now=now)]
        if settings.embedded:
            # Embedded mode has no alert router (it keeps its state in Redis): alerts go to the log.
            for alert in alerts:
                level = log.warning if alert.status.value == "firing" else log.info
                level("detect.alert", alertname=alert.alertname, status=alert.status.value,
                      severity=alert.severity.value, summary=alert.summary, labels=dict(alert.labels))
            return
        raise_alerts(alerts)

    return hand_over


def _catch_up(converter: AnomalyConverter):
    return wiring.detection_store().apply_pending(wiring.detection_pipeline(), before_commit=_raise_alerts_of(converter))


@app.task(
    name="detect.batch", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
    autoretry_for=_TRANSIENT, retry_backoff=1, retry_backoff_max=int(_MAX_COUNTDOWN_SECONDS), retry_jitter=True,
    max_retries=10,
)
def batch(batch_id: str | None = None) -> dict:
    run = _catch_up(_converter())
    result = run.to_dict()
    log.info("detect.batch", batch_id=batch_id, **result)
    return result


# No retries: the next tick comes within seconds and does the same work.
@app.task(name="detect.tick", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def tick() -> dict:
    now_ns = _now_ns()
    run = wiring.detection_store().catch_up_and_tick(wiring.detection_pipeline(), now_ns,
                                                     before_commit=_raise_alerts_of(_converter()))
    result = {"now_ns": now_ns, **run.to_dict()}
    if run.events or run.opened or run.escalated or run.resolved or not run.ticked:
        log.info("detect.tick", **result)
    return result


@app.task(
    name="detect.retrain", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
    autoretry_for=(OperationalError,), retry_backoff=5, retry_backoff_max=60, retry_jitter=True, max_retries=3,
)
def retrain() -> dict:
    from tradewatch.domain.detection.training import MIN_TRAINING_ROWS
    from tradewatch.storage.models import ModelStore
    from tradewatch.storage.models import retrain as retrain_models

    pipeline = wiring.detection_pipeline()
    if not pipeline.model_configs:
        log.info("detect.retrain_skipped", reason="the detection pipeline has no model detector")
        return {"trained": [], "skipped": []}
    report = retrain_models(
        pipeline, wiring.detection_store(), ModelStore(wiring.engine()), end_ns=_now_ns(),
        window_ns=int(settings.detection_training_days * _NS_PER_DAY),
        warmup_ns=int(wiring.detection_config().extractor.order_ttl_seconds * NS_PER_SECOND),
    )
    for model, model_id in report.trained:
        log.info("detect.model_trained", model=model.name, algorithm=model.algorithm, samples=model.samples,
                 threshold=model.threshold, model_id=model_id, window_start_ns=report.window_start_ns,
                 window_end_ns=report.window_end_ns)
    for name in report.skipped:
        log.warning("detect.model_not_trained", model=name, events=report.events,
                    reason=f"fewer than {MIN_TRAINING_ROWS} fills in the last {settings.detection_training_days:g} days; "
                    "the previous model stays in use until it is too old")
    wiring.refresh_models()
    return {"trained": [model.name for model, _ in report.trained], "skipped": report.skipped, "events": report.events}
