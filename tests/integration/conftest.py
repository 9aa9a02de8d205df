"""A real deployment per test: its own PostgreSQL database, its own broker key prefix in the
real Redis, `celery worker` subprocesses, and an AuditClient in the test process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tradewatch.storage.database import make_engine
from tradewatch.storage.migrate import upgrade
from tradewatch.tasks.app import create_app
from tradewatch.tasks.client import AuditClient
from tradewatch.tasks.settings import Settings

from tests.integration.harness import BeatProcess, WorkerProcess


@dataclass
class Deployment:
    database_url: str
    broker_url: str
    broker_prefix: str
    directory: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    workers: list[WorkerProcess] = field(default_factory=list)
    clients: list[AuditClient] = field(default_factory=list)
    beats: list[BeatProcess] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {
            "TRADEWATCH_DATABASE_URL": self.database_url,
            "TRADEWATCH_BROKER_URL": self.broker_url,
            "TRADEWATCH_BROKER_KEY_PREFIX": self.broker_prefix,
            # Short, so a message held by a killed worker comes back quickly in the tests.
            "TRADEWATCH_VISIBILITY_TIMEOUT_SECONDS": "5",
            "TRADEWATCH_INGEST_FANOUT": "false",
            "TRADEWATCH_STATE_DIR": str(self.directory / "state"),
            **self.extra_env,
        }

    def settings(self) -> Settings:
        return Settings(
            database_url=self.database_url, broker_url=self.broker_url, broker_key_prefix=self.broker_prefix,
            visibility_timeout_seconds=5, ingest_fanout=False, state_dir=self.directory / "state",
        )

    def app(self):
        return create_app(self.settings())

    def worker(self, *, queues: str = "audit", pool: str = "prefork", concurrency: int = 1, name: str = "ingest",
               **env: str) -> WorkerProcess:
        process = WorkerProcess({**self.env, **env}, self.directory / f"{name}.log", queues=queues, pool=pool,
                                concurrency=concurrency, name=name)
        self.workers.append(process)
        return process

    def beat(self, **env: str) -> BeatProcess:
        process = BeatProcess({**self.env, **env}, self.directory / "beat")
        self.beats.append(process)
        return process

    def client(self, **options) -> AuditClient:
        options.setdefault("spool_dir", self.directory / "spool")
        options.setdefault("flush_interval_seconds", 0.02)
        client = AuditClient(app=self.app(), **options)
        self.clients.append(client)
        return client


@pytest.fixture
def deployment(database_url, broker_prefix, redis_url, tmp_path):
    engine = make_engine(database_url, pool_size=1)
    upgrade(engine)
    engine.dispose()
    deployment = Deployment(database_url=database_url, broker_url=redis_url, broker_prefix=broker_prefix, directory=tmp_path)
    yield deployment
    for client in deployment.clients:
        client.close(timeout=5)
    for beat in deployment.beats:
        beat.stop()
    for worker in deployment.workers:
        worker.stop()
