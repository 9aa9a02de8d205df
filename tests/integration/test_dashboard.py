"""Dashboard end to end: AuditClient -> Redis -> audit.ingest_batch -> audit_events; `celery beat`
sends dashboard.snapshot every 2 s to the dashboard queue; a real `celery worker -Q audit,dashboard`
folds the new events into the dashboard state, stores the snapshot row and publishes it to Redis
at <prefix>tradewatch:dashboard:latest, where the ingested events show up within seconds."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
import redis

from tests.integration.harness import wait_until
from tradewatch.domain.events import (
    AccountEvent,
    AccountPayload,
    MarketDataEvent,
    MarketDataPayload,
    PositionUpdateEvent,
    PositionUpdatePayload,
)
from tradewatch.storage.dashboard import DashboardStore
from tradewatch.storage.database import make_engine

pytestmark = pytest.mark.integration

S = 1_000_000_000


def events(base_ns: int) -> list:
    return [
        AccountEvent(occurred_at=base_ns, source="engine-1",
                     payload=AccountPayload(equity=Decimal(1000000), cash=Decimal(500000),
                                            buying_power=Decimal(2000000))),
        MarketDataEvent(occurred_at=base_ns + S, source="engine-1", symbol="AAPL",
                        payload=MarketDataPayload(bid=Decimal("109.99"), ask=Decimal("110.01"))),
        PositionUpdateEvent(occurred_at=base_ns + 2 * S, source="engine-1", strategy_id="momentum", symbol="AAPL",
                            payload=PositionUpdatePayload(quantity=Decimal(100), avg_price=Decimal(100),
                                                          realized_pnl=Decimal(50))),
    ]


def latest(client: redis.Redis, key: str) -> dict | None:
    raw = client.get(key)
    return None if raw is None else json.loads(raw)


def test_ingested_events_show_up_in_the_published_snapshot_within_seconds(deployment):
    # Every tick adds its snapshot to the history here (the default is one a minute).
    worker = deployment.worker(queues="audit,dashboard", pool="solo", name="dashboard",
                               TRADEWATCH_DASHBOARD_HISTORY_SECONDS="0").start()
    deployment.beat().start()
    client = redis.Redis.from_url(deployment.broker_url)
    key = f"{deployment.broker_prefix}tradewatch:dashboard:latest"
    engine = make_engine(deployment.database_url, pool_size=1)
    try:
        # The empty trail's snapshot is published first (the beat ticks whatever the trail holds).
        wait_until(lambda: latest(client, key) is not None, 30, 0.2,
                   f"the first snapshot published; worker log:\n{worker.log()[-3000:]}")
        assert latest(client, key)["events_applied"] == 0

        items = events(time.time_ns() - 60 * S)
        audit = deployment.client()
        for event in items:
            assert audit.emit(event)
        assert audit.flush(60)
        flushed = time.monotonic()
        wait_until(lambda: (latest(client, key) or {}).get("events_applied") == len(items), 15, 0.1,
                   f"the events in the published snapshot; worker log:\n{worker.log()[-3000:]}")
        seconds = time.monotonic() - flushed
        assert seconds < 10, seconds  # ingest + at most one 2 s tick + the watermark

        document = latest(client, key)
        snapshot = document["snapshot"]
        assert snapshot["portfolio_value"] == 1_000_000 and snapshot["realized_pnl"] == 50
        assert snapshot["unrealized_pnl"] == pytest.approx(100 * (110 - 100))
        assert snapshot["events_applied"] == len(items) and snapshot["last_event_ns"] == items[-1].occurred_at
        assert document["last_received_at_ns"] == document["trail_last_received_at_ns"] is not None
        assert document["written_at_ns"] >= snapshot["as_of_ns"]

        row = DashboardStore(engine).latest_snapshot()
        assert row is not None and row["events_applied"] == len(items)
        assert '"dashboard.snapshot"' in worker.log() or "dashboard.snapshot" in worker.log()
    finally:
        client.close()
        engine.dispose()


def test_the_snapshot_task_is_routed_to_its_own_queue_and_scheduled_from_settings(deployment):
    from tradewatch.beat_schedule import beat_schedule
    from tradewatch.tasks.app import QUEUES, TASK_MODULES

    assert "dashboard" in QUEUES and "tradewatch.tasks.dashboard" in TASK_MODULES
    router = deployment.app().amqp.router
    assert router.route({}, "dashboard.snapshot")["queue"].name == "dashboard"
    entry = deployment.app().conf.beat_schedule["dashboard-snapshot"]
    assert (entry["task"], entry["schedule"], entry["options"]) == ("dashboard.snapshot", 2.0,
                                                                    {"queue": "dashboard", "expires": 2.0})
    faster = beat_schedule(deployment.settings().model_copy(update={"dashboard_snapshot_seconds": 0.5}))
    assert faster["dashboard-snapshot"]["schedule"] == 0.5 and faster["dashboard-snapshot"]["options"]["expires"] == 0.5
