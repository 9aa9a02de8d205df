"""audit.ingest_batch: validate a batch of events and persist it (queue ``audit``)."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from tradewatch.tasks import faults, wiring
from tradewatch.tasks.app import app, settings
from tradewatch.tasks.logs import get_logger

log = get_logger(__name__)

# Downstream consumers fed after each committed batch; each receives (batch_id,).
# The detectors and compliance issues subscribe their task names here.
# Each is routed by the app's task_routes (detect.* -> queue "analysis").
DOWNSTREAM_TASKS: tuple[str, ...] = ("detect.batch", "compliance.batch")


def _confirm(batch_id: str) -> None:
    """Tell the producer the batch is committed (see tasks/receipts.py). A receipt that cannot be
    written only makes the producer send the batch again, which ingest absorbs."""
    writer = wiring.receipts()
    if writer is None:
        return
    try:
        writer.confirm(batch_id)
    except Exception as exc:  # noqa: BLE001 - never fail a committed batch over its receipt
        log.warning("ingest.receipt_failed", batch_id=batch_id, error=str(exc))


@app.task(
    name="audit.ingest_batch",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    # A failed ingest task would be acknowledged and its batch lost. Events the database or the
    # contract refuse become rejections inside the store, so what still raises is the database
    # being away, or a defect: either way the batch is retried with backoff, never dropped.
    autoretry_for=(Exception,),
    retry_backoff=1,
    retry_backoff_max=settings.ingest_retry_backoff_max_seconds,
    retry_jitter=True,
    max_retries=None,
)
def ingest_batch(self, events: list, batch_id: str | None = None, sent_at_ns: int | None = None) -> dict:
    """Persist ``events`` (JSON texts or objects). Invalid ones go to rejected_events."""
    batch_id = batch_id or self.request.id
    received_at = datetime.now(timezone.utc)
    result = wiring.store().ingest_items(
        events,
        batch_id=batch_id,
        received_at=received_at,
        before_commit=lambda: faults.checkpoint("ingest.before_commit"),
    )
    committed_at_ns = time.time_ns()
    faults.checkpoint("ingest.after_commit")
    _confirm(batch_id)
    log.info(
        "ingest.batch",
        batch_id=batch_id,
        received_at=received_at.isoformat(),
        committed_at_ns=committed_at_ns,
        queue_seconds=round((committed_at_ns - sent_at_ns) / 1e9, 6) if sent_at_ns else None,
        **result.to_dict(),
    )
    for rejection in result.rejections:
        log.warning("ingest.rejected", batch_id=batch_id, position=rejection.index, code=rejection.code, reason=rejection.reason)
    if settings.ingest_fanout and result.inserted:
        for name in DOWNSTREAM_TASKS:
            app.send_task(name, args=[batch_id])
    return result.to_dict()
