"""End to end through a real `celery worker`: AuditClient -> Redis -> audit.ingest_batch -> PostgreSQL."""

from __future__ import annotations

import os
import signal
import uuid

import pytest

from tests.factories import fill, market_data, order, signal as signal_event
from tests.integration.harness import count_rows, stored_ids, wait_until

pytestmark = pytest.mark.integration


def _emit(client, count: int) -> set[str]:
    ids = set()
    for i in range(count):
        event = market_data(i, symbol=f"SYM{i % 7}")
        ids.add(str(event.event_id))
        assert client.emit(event)
    assert client.flush(60)
    return ids


def _assert_exactly_once(deployment, expected: set[str]) -> None:
    stored = stored_ids(deployment.database_url)
    assert len(stored) == len(set(stored)), "an event was stored twice"
    missing = expected - set(stored)
    assert not missing, f"{len(missing)} events lost"
    assert set(stored) == expected
    assert count_rows(deployment.database_url, "rejected_events") == 0


def test_twenty_thousand_events_arrive_exactly_once(deployment):
    # The shipped ingest deployment: two single-process workers.
    deployment.worker(pool="solo", name="ingest-1").start()
    deployment.worker(pool="solo", name="ingest-2").start()
    client = deployment.client()
    expected = _emit(client, 20_000)
    wait_until(lambda: count_rows(deployment.database_url) >= 20_000, 120, 0.5, "20,000 rows")
    _assert_exactly_once(deployment, expected)
    assert client.stats()["spooled_batches"] == 0


def test_malformed_events_are_rejected_and_their_good_neighbours_stored(deployment):
    deployment.worker().start()
    app = deployment.app()
    sig = signal_event("sig-mixed")
    good = [sig.model_dump_json(), order("sig-mixed", "ord-mixed").model_dump_json(), fill("ord-mixed").model_dump_json()]
    wrong_type = market_data(1).model_dump(mode="json")
    wrong_type["payload"]["bid"] = "not-a-price"
    missing = market_data(2).model_dump(mode="json")
    del missing["source"]
    bad_time = market_data(3).model_dump(mode="json")
    bad_time["occurred_at"] = "2026-13-45T99:00:00Z"
    items = [good[0], "{not json", wrong_type, good[1], missing, bad_time, "[1, 2]", good[2]]
    app.send_task("audit.ingest_batch", args=[items], kwargs={"batch_id": "mixed-batch"}, queue="audit")
    wait_until(lambda: count_rows(deployment.database_url, "rejected_events") >= 5, 60, 0.2, "5 rejections")
    wait_until(lambda: count_rows(deployment.database_url) >= 3, 30, 0.2, "3 good rows")

    from tradewatch.storage.database import make_engine
    from tradewatch.storage.store import AuditStore

    engine = make_engine(deployment.database_url, pool_size=1)
    store = AuditStore(engine)
    history = store.reconstruct_trade_history("sig-mixed")
    assert [e.event_type for e in history.events] == ["signal", "order", "fill"]
    rejected = {r["position"]: r for r in store.rejected()}
    assert sorted(rejected) == [1, 2, 4, 5, 6]
    assert "not valid JSON" in rejected[1]["reason"] and rejected[1]["raw"] == "{not json"
    assert "payload.bid" in rejected[2]["reason"] and "not-a-price" in rejected[2]["reason"]
    assert "source: missing" in rejected[4]["reason"]
    assert "occurred_at" in rejected[5]["reason"] and "RFC 3339" in rejected[5]["reason"]
    assert "expected a JSON object" in rejected[6]["reason"]
    engine.dispose()


@pytest.mark.parametrize("fault_point", ["ingest.before_commit", "ingest.after_commit"])
@pytest.mark.parametrize(
    ("pool", "victim"),
    [("solo", "worker process"), ("prefork", "pool child"), ("prefork", "main process")],
    ids=["solo (shipped ingest pool)", "prefork pool child", "prefork main process"],
)
def test_worker_killed_mid_batch_loses_and_duplicates_nothing(deployment, fault_point, pool, victim):
    fault_dir = deployment.directory / "fault"
    fault_dir.mkdir()
    worker = deployment.worker(pool=pool, TRADEWATCH_FAULT_POINT=fault_point, TRADEWATCH_FAULT_DIR=str(fault_dir)).start()
    client = deployment.client(batch_size=500)
    expected = _emit(client, 3_000)

    marker = fault_dir / "fired"
    wait_until(marker.exists, 60, 0.1, f"the worker to reach {fault_point}")
    wait_until(lambda: marker.read_text().strip() != "", 5, 0.05, "the marker's pid")
    task_pid = int(marker.read_text())
    if pool == "solo":
        assert task_pid == worker.pid, "solo: the task runs in the worker process itself"
    else:
        assert task_pid != worker.pid, "prefork: the task runs in a pool child"
    if victim == "pool child":
        os.kill(task_pid, signal.SIGKILL)
    else:
        # prefork: the pool child dies with its main process (Celery sets PDEATHSIG). Either way the
        # batch is unacknowledged; the restarted worker restores it after the visibility timeout.
        worker.kill_main()
        deployment.worker(pool=pool, TRADEWATCH_FAULT_POINT=fault_point, TRADEWATCH_FAULT_DIR=str(fault_dir),
                          name="restarted").start()

    wait_until(lambda: count_rows(deployment.database_url) >= len(expected), 120, 0.5, "every event stored")
    # Let any redelivery of the interrupted batch run, then check nothing doubled.
    before = count_rows(deployment.database_url)
    import time

    time.sleep(8)
    assert count_rows(deployment.database_url) == before
    _assert_exactly_once(deployment, expected)


def test_a_message_the_broker_loses_in_flight_still_arrives_once(deployment):
    """kombu's Redis transport can lose a message taken off the queue before it is recorded as
    unacknowledged (celery/kombu#305). The client's delivery receipts cover that window."""
    import redis as redis_client

    client = deployment.client(batch_size=500, redeliver_after_seconds=3)
    expected = _emit(client, 3_000)
    queue = f"{deployment.broker_prefix}audit"
    broker = redis_client.Redis.from_url(deployment.broker_url)
    assert broker.llen(queue) == client.stats()["published_batches"] >= 6  # 500 a batch, or fewer on a timer tick
    assert broker.rpop(queue) is not None  # the oldest batch vanishes, as in that window
    deployment.worker().start()
    wait_until(lambda: count_rows(deployment.database_url) >= len(expected), 60, 0.2, "every event stored")
    wait_until(lambda: client.stats()["unconfirmed_batches"] == 0, 30, 0.2, "every receipt read")
    assert client.stats()["redelivered_batches"] == 1
    _assert_exactly_once(deployment, expected)


def test_batches_wait_and_retry_while_postgresql_is_unavailable(deployment, postgres_admin):
    """The worker's database does not exist yet (connections refused with OperationalError):
    the batch is retried with backoff, not dropped, and lands once the database is there."""
    from sqlalchemy.engine import make_url
    from sqlalchemy import text as sql

    from tradewatch.storage.database import make_engine
    from tradewatch.storage.migrate import upgrade

    missing = make_url(deployment.database_url).set(database=make_url(deployment.database_url).database + "_later")
    deployment.database_url = missing.render_as_string(hide_password=False)
    worker = deployment.worker().start()
    client = deployment.client()
    expected = _emit(client, 1_000)
    wait_until(lambda: "Retry in" in worker.log(), 60, 0.2, "the worker to schedule a retry")
    with postgres_admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sql(f'CREATE DATABASE "{missing.database}"'))
    try:
        engine = make_engine(deployment.database_url, pool_size=1)
        upgrade(engine)
        engine.dispose()
        wait_until(lambda: count_rows(deployment.database_url) >= 1_000, 90, 0.5, "the retried batch to land")
        _assert_exactly_once(deployment, expected)
    finally:
        for process in deployment.workers:
            process.stop()
        with postgres_admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sql(f'DROP DATABASE IF EXISTS "{missing.database}" WITH (FORCE)'))
