"""The HTTP service against real Redis and PostgreSQL: a migrated database of its own, a broker key
prefix of its own, and dashboard snapshot documents built by the real aggregator from simulated
events (the shape the snapshot task writes)."""

from __future__ import annotations

import time
from uuid import UUID

import orjson
import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tradewatch.domain.compliance import default_policy
from tradewatch.domain.dashboard import RealtimeDashboardAggregator
from tradewatch.domain.events.models import SystemEvent
from tradewatch.domain.events.payloads import SystemPayload
from tradewatch.domain.simulation import SimulationConfig, TradingSimulator
from tradewatch.domain.simulation.config import SymbolConfig
from tradewatch.storage.database import make_engine
from tradewatch.storage.migrate import upgrade
from tradewatch.tasks.app import create_app as create_celery_app
from tradewatch.tasks.settings import Settings
from tradewatch.web.app import create_app
from tradewatch.web.service import build_observability
from tradewatch.web.snapshots import snapshot_key

T0 = 1_704_205_800_000_000_000  # 2024-01-02 09:30 New York
S = 1_000_000_000


class SnapshotStream:
    """Simulated events folded by the real aggregator; ``document()`` is what the task writes."""

    def __init__(self, *, seed: int = 7, symbols: tuple[SymbolConfig, ...] | None = None, events_per_second: float = 300):
        config = SimulationConfig(events_per_second=events_per_second, seed=seed,
                                  **({"symbols": symbols} if symbols else {}))
        self.simulator = TradingSimulator(config, start_ns=T0)
        self.aggregator = RealtimeDashboardAggregator(default_policy())
        self.state = self.aggregator.new_state()
        self.last_ns = T0
        self._errors = 0

    def advance(self, count: int, errors: int = 2) -> None:
        events = self.simulator.generate(count)
        t = events[-1].occurred_at
        for i in range(errors):  # the simulator emits no errors: a few broker and feed errors
            self._errors += 1
            t += 1
            events.append(SystemEvent(event_id=UUID(int=10**12 + self._errors), occurred_at=t, source="engine-1",
                                      payload=SystemPayload(component=("market-data-feed", "risk-engine")[i % 2],
                                                            level=("error", "critical")[i % 2], message="feed gap")))
        self.aggregator.apply(events, self.state)
        self.last_ns = t

    def document(self, *, written_at_ns: int | None = None, folded_received_ns: int | None = None,
                 trail_received_ns: int | None = None) -> dict:
        snapshot = self.aggregator.snapshot(self.state, self.last_ns).to_dict()
        written = time.time_ns() if written_at_ns is None else written_at_ns
        folded = written - S if folded_received_ns is None else folded_received_ns
        return {"snapshot": snapshot, "written_at_ns": written, "last_received_at_ns": folded,
                "trail_last_received_at_ns": folded + 3 * S // 2 if trail_received_ns is None else trail_received_ns,
                "events_applied": self.state.events}


def many_symbols(count: int) -> tuple[SymbolConfig, ...]:
    return tuple(SymbolConfig(symbol=f"SYM{i:03d}", start_price=20.0 + i) for i in range(count))


@pytest.fixture
def migrated_database(database_url):
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    return database_url


@pytest.fixture
def web_settings(migrated_database, redis_url, broker_prefix, tmp_path) -> Settings:
    return Settings(database_url=migrated_database, broker_url=redis_url, broker_key_prefix=broker_prefix,
                    state_dir=tmp_path / "state", health_check_timeout_seconds=2.0)


@pytest.fixture
def redis_client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def write_snapshot(redis_client, broker_prefix):
    def write(document: dict) -> None:
        redis_client.set(snapshot_key(broker_prefix), orjson.dumps(document))

    return write


def make_client(settings: Settings) -> TestClient:
    """A fresh web app (a restart) on ``settings``, as service.py builds it."""
    celery_app = create_celery_app(settings)
    app = create_app(submit_alerts=lambda alerts: len(alerts), webhook_token=SecretStr("t"),
                     observability=build_observability(settings, celery_app))
    return TestClient(app)


@pytest.fixture
def census_done():
    """Ask the workers now (the app's census otherwise answers in the background)."""
    def done(client: TestClient):
        return client.app.state.observability.health.census.refresh()

    return done
