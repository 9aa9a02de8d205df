"""The naive baseline the ingest benchmark compares against, registered on tradewatch's app:
one Celery task per event, each validating it and doing its own INSERT and COMMIT.

A worker for both paths: ``celery -A benchmarks.naive_tasks worker -Q audit``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache

from sqlalchemy import insert

from tradewatch.domain.events.parsing import parse_event
from tradewatch.domain.events.timestamps import ns_to_datetime
from tradewatch.storage.database import make_engine
from tradewatch.storage.schema import audit_events
from tradewatch.tasks.app import app, settings
import tradewatch.tasks.ingest  # noqa: F401  (registers audit.ingest_batch on the same worker)


@lru_cache(maxsize=1)
def _engine():
    return make_engine(settings.effective_database_url)


@app.task(name="benchmark.naive_ingest_one", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def naive_ingest_one(raw: str) -> None:
    event = parse_event(raw).event
    with _engine().begin() as conn:  # one transaction, one COMMIT, per event
        conn.execute(
            insert(audit_events).values(
                event_id=str(event.event_id), event_type=event.event_type, occurred_at_ns=event.occurred_at,
                occurred_at=ns_to_datetime(event.occurred_at), received_at=datetime.now(timezone.utc),
                source=event.source, strategy_id=event.strategy_id, symbol=event.symbol, signal_id=event.signal_id,
                order_id=event.order_id, schema_version=1, payload=event.payload.model_dump(mode="json"), raw=raw,
            )
        )
