"""What the store tests of the trail's consumers (test_detection_store, test_compliance_store)
share: ingesting a scenario, waiting out PostgreSQL's follow watermark, a second database to
compare a run with, and concurrent workers applying one consumer."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from tradewatch.domain.events.timestamps import ns_to_datetime
from tradewatch.storage.database import make_engine
from tradewatch.storage.migrate import upgrade
from tradewatch.storage.store import AuditStore

from tests.conftest import create_database, drop_database

# PostgreSQL's watermark is the cluster's oldest running transaction: another test run's open
# transaction can hold it back for a moment. Wait this long at most for rows to pass it.
CATCH_UP_SECONDS = 30


def ingest(store: AuditStore, items: list[str], received_ns: int) -> None:
    """``items`` (event JSON) in one batch received at ``received_ns``; every one is new."""
    result = store.ingest_items(items, batch_id=uuid.uuid4().hex, received_at=ns_to_datetime(received_ns))
    assert result.inserted == len(items), result


def visible(follow: Callable[..., tuple[Any, Any]], count: int) -> None:
    """Wait until ``follow(None, limit=...)`` (a store's follow read) returns ``count`` events
    (PostgreSQL's watermark may hold some back a moment)."""
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while len(follow(None, limit=count + 1)[0]) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def apply_until(apply: Callable[[], Any], expected_events: int) -> int:
    """``apply()`` (an ``apply_pending`` call) until ``expected_events`` went through (PostgreSQL's
    watermark may hold some back a moment); the events applied."""
    deadline = time.monotonic() + CATCH_UP_SECONDS
    applied = 0
    while True:
        applied += apply().events
        if applied >= expected_events or time.monotonic() > deadline:
            return applied
        time.sleep(0.05)


@contextmanager
def second_database(postgres_admin, sqlite_path: Path | None = None) -> Iterator[Engine]:
    """An engine on a fresh, migrated database: on PostgreSQL (dropped afterwards), or SQLite at
    ``sqlite_path`` when given."""
    url = create_database(postgres_admin) if sqlite_path is None else f"sqlite:///{sqlite_path}"
    engine = make_engine(url)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        if sqlite_path is None:
            drop_database(postgres_admin, url)


def apply_in_chunks(store: Any, consumer: Any, total: int, limit: int) -> None:
    """``store.apply_pending(consumer)`` ``limit`` events per call until the stored state counts
    ``total`` events (or ``CATCH_UP_SECONDS`` pass): a worker taking small chunks, so that two
    of them interleave."""
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while store.state()[2] < total and time.monotonic() < deadline:
        store.apply_pending(consumer, limit=limit, max_events=limit)


def run_concurrently(database_url: str, work: Callable[[Engine], None], timeout: float, workers: int = 2) -> list:
    """``work(engine)`` in ``workers`` threads at once, each with its own engine on
    ``database_url`` (as separate worker processes have); the exceptions they raised."""
    errors: list = []

    def worker() -> None:
        engine = make_engine(database_url)
        try:
            work(engine)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return errors
