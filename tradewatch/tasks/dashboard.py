"""Dashboard task: keep the real-time dashboard's snapshot current.

- ``dashboard.snapshot`` (beat, every ``dashboard_snapshot_seconds``, 2 s by default; queue
  ``dashboard``, its own pool, so a backlog of detectors or compliance on ``analysis`` never
  delays it): ``DashboardStore.advance`` folds what the trail holds past the pipeline's cursor
  into its state and takes the snapshot as of now (kept in ``dashboard_snapshots`` at most once
  per ``dashboard_history_seconds``, a minute by default); the snapshot is then
  published to Redis at ``<broker_key_prefix>tradewatch:dashboard:latest`` (``LATEST_KEY``) as
  JSON ``{"snapshot", "written_at_ns", "last_received_at_ns", "trail_last_received_at_ns",
  "events_applied"}``, where the HTTP service and the exporter read it with one GET. The key has
  no expiry: readers judge freshness by ``written_at_ns``.
  When another worker is advancing the pipeline (its state row is locked), the call returns at
  once (``skipped``) and publishes nothing: that worker publishes. No retries: the next tick
  comes in seconds and does the same work; the beat entry expires after one interval, so a
  stalled pool never meets a pile of ticks. Embedded mode has no Redis: the snapshot is only
  stored (and the fact logged once).
  At most once a minute per process, the snapshots older than
  ``dashboard_history_retention_seconds`` are deleted.

The risk limits are the compliance policy's in force now (``wiring.dashboard_aggregator``).
Translator only: the numbers are the aggregator's (domain.dashboard), the persistence the
store's.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

from tradewatch.domain.events.timestamps import datetime_to_ns
from tradewatch.tasks import wiring
from tradewatch.tasks.app import app, settings
from tradewatch.tasks.logs import get_logger

log = get_logger(__name__)

#: The Redis key of the latest snapshot (after the broker key prefix).
LATEST_KEY = "tradewatch:dashboard:latest"
#: The retention runs at most this often per process, seconds.
PRUNE_INTERVAL_SECONDS = 60.0

_last_prune: float | None = None
_told_embedded = False


def latest_key() -> str:
    return f"{settings.broker_key_prefix}{LATEST_KEY}"


def _publish(document: dict) -> bool:
    global _told_embedded
    if settings.effective_redis_url is None:
        if not _told_embedded:
            log.info("dashboard.not_published", reason="embedded mode has no Redis: snapshots are only stored")
            _told_embedded = True
        return False
    wiring.state_redis().set(latest_key(), json.dumps(document, separators=(",", ":"), allow_nan=False))
    return True


def _prune(now: datetime) -> int | None:
    global _last_prune
    if _last_prune is not None and time.monotonic() - _last_prune < PRUNE_INTERVAL_SECONDS:
        return None
    _last_prune = time.monotonic()
    cutoff = now - timedelta(seconds=settings.dashboard_history_retention_seconds)
    return wiring.dashboard_store().prune(cutoff)


# No retries: the next tick comes within seconds and does the same work.
@app.task(name="dashboard.snapshot", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def snapshot() -> dict:
    now = datetime.now(timezone.utc)
    now_ns = datetime_to_ns(now)
    run = wiring.dashboard_store().advance(wiring.dashboard_aggregator(now_ns), now_ns,
                                           history_interval_seconds=settings.dashboard_history_seconds)
    result = run.to_dict()
    if run.snapshot is not None:
        result["published"] = _publish({
            "snapshot": run.snapshot, "written_at_ns": time.time_ns(), "last_received_at_ns": run.last_received_at_ns,
            "trail_last_received_at_ns": run.trail_last_received_at_ns, "events_applied": run.events_applied,
        })
    pruned = _prune(now)
    if pruned is not None:
        result["snapshots_pruned"] = pruned
    if run.skipped or pruned:
        log.info("dashboard.snapshot", **result)
    else:
        log.debug("dashboard.snapshot", **result)
    return result
