"""Detection tasks: run the detection pipeline over the trail and raise its alerts.

- ``detect.batch`` (queue ``analysis``, sent by ``audit.ingest_batch`` after each committed
  batch): apply the pipeline to whatever the trail holds past its cursor. The batch id is only
  logged: the cursor, not the message, says what is new, so a redelivered or late message is a
  no-op and one call may apply several batches.
- ``detect.tick`` (beat, every 5 s): catch up like ``detect.batch``, then the pipeline's
  ``tick(now)`` (absence rules such as a stale feed, quiet periods) with now from the clock.
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

from tradewatch.domain.events.timestamps import datetime_to_ns
from tradewatch.tasks import wiring
from tradewatch.tasks.alerting import raise_alerts
from tradewatch.tasks.app import app, settings
from tradewatch.tasks.logs import get_logger

if TYPE_CHECKING:
    from tradewatch.alerting.converters.anomaly import AnomalyConverter

log = get_logger(__name__)

# The database or the broker away: retry (acks_late keeps the message meanwhile). Anything else
# is a defect or a bad configuration, logged by Celery, and the next tick tries again anyway.
_TRANSIENT = (OperationalError, BrokerError, redis.RedisError, ConnectionError, TimeoutError)
# Every countdown stays below the broker's visibility timeout (DESIGN.md, "Queues").
_MAX_COUNTDOWN_SECONDS = int(max(1.0, min(30.0, settings.visibility_timeout_seconds / 2)))
_NS_PER_DAY = 86_400 * 10**9


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
    autoretry_for=_TRANSIENT, retry_backoff=1, retry_backoff_max=_MAX_COUNTDOWN_SECONDS, retry_jitter=True,
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
    converter = _converter()
    # Events already in the trail first: a feed whose last quotes are merely not applied yet is not stale.
    caught_up = _catch_up(converter)
    now_ns = _now_ns()
    run = wiring.detection_store().tick(wiring.detection_pipeline(), now_ns, before_commit=_raise_alerts_of(converter))
    result = {"now_ns": now_ns, "events": caught_up.events, "cursor": caught_up.cursor,
              **{name: len(getattr(caught_up, name)) + len(getattr(run, name)) for name in ("opened", "escalated", "resolved")}}
    if caught_up.events or result["opened"] or result["escalated"] or result["resolved"]:
        log.info("detect.tick", **result)
    return result


@app.task(
    name="detect.retrain", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
    autoretry_for=(OperationalError,), retry_backoff=5, retry_backoff_max=60, retry_jitter=True, max_retries=3,
)
def retrain() -> dict:
    from tradewatch.domain.detection.training import MIN_TRAINING_ROWS, fit_models
    from tradewatch.storage.models import ModelStore

    pipeline = wiring.detection_pipeline()
    configs = pipeline.model_configs
    if not configs:
        log.info("detect.retrain_skipped", reason="the detection pipeline has no model detector")
        return {"trained": [], "skipped": []}
    end_ns = _now_ns()
    start_ns = end_ns - int(settings.detection_training_days * _NS_PER_DAY)
    # Events from before the window only warm up the order history (a fill's latency needs its order).
    warmup_ns = int(wiring.detection_config().extractor.order_ttl_seconds * 1e9)
    events = wiring.detection_store().frame_between(start_ns - warmup_ns, end_ns)
    models = fit_models(configs, events, trained_at_ns=end_ns, window_start_ns=start_ns, window_end_ns=end_ns,
                        extractor=pipeline.extractor)
    store = ModelStore(wiring.engine())
    trained = []
    for model in models:
        model_id = store.save(model)
        trained.append(model.name)
        log.info("detect.model_trained", model=model.name, algorithm=model.algorithm, samples=model.samples,
                 threshold=model.threshold, model_id=model_id, window_start_ns=start_ns, window_end_ns=end_ns)
    skipped = [config.effective_model_name for config in configs if config.effective_model_name not in trained]
    for name in skipped:
        log.warning("detect.model_not_trained", model=name, events=len(events),
                    reason=f"fewer than {MIN_TRAINING_ROWS} fills in the last {settings.detection_training_days:g} days; "
                    "the previous model stays in use until it is too old")
    wiring.refresh_models()
    return {"trained": trained, "skipped": skipped, "events": len(events)}
