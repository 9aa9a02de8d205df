"""The broker itself dies: a private redis-server (appendonly yes, appendfsync always) is killed
with SIGKILL while batches are queued, then started again from its AOF."""

from __future__ import annotations

import time

import pytest
import redis

from tests.factories import market_data
from tests.integration.harness import RedisServer, count_rows, stored_ids, wait_until

pytestmark = pytest.mark.integration


def test_every_event_arrives_exactly_once_across_a_broker_crash(deployment, tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    try:
        deployment.broker_url = server.url
        client = deployment.client(batch_size=250, retry_interval_seconds=0.2)
        expected: set[str] = set()

        def emit(count: int, offset: int) -> None:
            for i in range(offset, offset + count):
                event = market_data(i)
                expected.add(str(event.event_id))
                assert client.emit(event)
            assert client.flush(60)

        # 1. Batches queue up in the broker while no worker runs. Enough of them that the worker,
        # which stores ~40,000 events a second, is still draining when the broker is killed.
        emit(20_000, 0)
        queued = redis.Redis.from_url(server.url).llen(f"{deployment.broker_prefix}audit")
        # 250 a batch, or fewer when the flusher's timer fires mid-way.
        assert queued == client.stats()["published_batches"] >= 80, f"found {queued} queued batches"

        # 2. A worker starts draining them; the broker is killed mid-way.
        worker = deployment.worker().start()
        wait_until(lambda: count_rows(deployment.database_url) >= 500, 60, 0.02, "the worker to start draining")
        server.kill()
        stored_at_crash = count_rows(deployment.database_url)
        assert stored_at_crash < 20_000, "the crash should interrupt the drain"

        # 3. Engines keep emitting while the broker is down: the client spools to disk.
        emit(2_000, 20_000)
        assert client.stats()["spooled_batches"] >= 1

        # 4. The broker comes back from its AOF; the spool is replayed, the worker reconnects.
        time.sleep(1)
        server.start()
        wait_until(lambda: count_rows(deployment.database_url) >= len(expected), 180, 0.5, "every event stored")
        time.sleep(8)  # any redelivered batch has run by now
        stored = stored_ids(deployment.database_url)
        assert len(stored) == len(set(stored)), "an event was stored twice"
        assert set(stored) == expected
        assert client.stats()["replayed_batches"] >= 1
        assert worker.process.poll() is None, "the worker survived the broker's crash"
    finally:
        server.stop()
