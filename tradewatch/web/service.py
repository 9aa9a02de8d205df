"""The deployed HTTP service: ``create_app`` wired to settings and the Celery app.

Run it with ``tradewatch web`` (uvicorn). Alerts posted by Alertmanager go to the router's
``alerts.receive`` task; ``/metrics``, ``/health``, ``/ready`` and ``/api/snapshot`` read what
``build_observability`` connects them to:

- the shared-state Redis (``TRADEWATCH_REDIS_URL``, else the broker's): the dashboard snapshot
  and the alert router's counters;
- the broker's Redis: queue depths, and the Celery control broadcast that finds the workers;
- PostgreSQL (a pool of its own, 2 connections, 2 s connect and statement timeouts): the trail's
  newest row, the rejected events, the schema revision.

Settings read here: ``TRADEWATCH_HEALTH_SNAPSHOT_MAX_AGE_SECONDS`` (30),
``TRADEWATCH_HEALTH_CHECK_TIMEOUT_SECONDS`` (2), ``TRADEWATCH_BROKER_API_HEALTH_URL`` (unset: no
broker_api component).
"""

from __future__ import annotations

import functools
import gc
from typing import Any

import redis
from celery import Celery
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, ProcessCollector
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from tradewatch.alerting.model import Alert
from tradewatch.alerting.state import AlertState
from tradewatch.storage.database import normalise_url
from tradewatch.web.app import Observability, create_app
from tradewatch.web.exporter import TradewatchCollector
from tradewatch.web.health import HealthChecker
from tradewatch.web.pipeline import QueueDepths, TrailProbe, WorkerCensus, celery_inspector
from tradewatch.web.snapshots import SnapshotReader
from tradewatch.web.system_metrics import SystemCollector

#: How long a Celery control broadcast waits for the workers' replies, and how long its answer is used.
WORKER_CENSUS_TIMEOUT_SECONDS = 1.0
WORKER_CENSUS_MAX_AGE_SECONDS = 5.0


def _redis(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30)


def _database(url: str, timeout: float) -> Engine:
    url = normalise_url(url)
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql"):
        seconds = max(1, int(round(timeout)))
        connect_args = {"connect_timeout": seconds, "options": f"-c statement_timeout={seconds * 1000}"}
    return create_engine(url, pool_size=2, max_overflow=2, pool_timeout=timeout, pool_pre_ping=True,
                         pool_recycle=1800, connect_args=connect_args)


def build_observability(settings, celery_app: Celery) -> Observability:
    """The collectors and health checker of ``settings`` (a ``tradewatch.tasks.settings.Settings``)."""
    from tradewatch.tasks.app import QUEUES

    state_url = settings.effective_redis_url
    broker_url = settings.effective_broker_url
    if state_url is None or not broker_url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("the HTTP service reads Redis: set TRADEWATCH_BROKER_URL to a Redis URL (and "
                         "TRADEWATCH_DATABASE_URL); embedded mode has no HTTP service")
    timeout = float(getattr(settings, "health_check_timeout_seconds", 2.0))
    prefix = settings.broker_key_prefix
    state_redis = _redis(state_url, min(1.0, timeout))
    broker_redis = state_redis if broker_url == state_url else _redis(broker_url, min(1.0, timeout))
    database = _database(settings.effective_database_url, timeout)

    snapshots = SnapshotReader(state_redis, prefix)
    census = WorkerCensus(celery_inspector(celery_app), QUEUES, timeout=WORKER_CENSUS_TIMEOUT_SECONDS,
                          max_age=WORKER_CENSUS_MAX_AGE_SECONDS)
    alert_state = AlertState(state_redis, prefix)

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    registry.register(SystemCollector())
    collector = TradewatchCollector(
        snapshots=snapshots, queue_depths=QueueDepths(broker_redis, QUEUES, prefix), trail=TrailProbe(database),
        census=census, alert_counters=alert_state.counters,
    )
    registry.register(collector)
    health = HealthChecker(
        database=database, state_redis=state_redis, broker_redis=broker_redis, census=census, snapshots=snapshots,
        snapshot_max_age_seconds=float(getattr(settings, "health_snapshot_max_age_seconds", 30.0)),
        broker_api_url=getattr(settings, "broker_api_health_url", None), timeout=timeout,
    )
    census.cached()  # the first census starts now, in the background
    return Observability(registry=registry, health=health, snapshots=snapshots,
                         exposition=functools.partial(collector.exposition, registry))


def build_app() -> FastAPI:
    from tradewatch.tasks.alerting import raise_alerts
    from tradewatch.tasks.app import app as celery_app
    from tradewatch.tasks.settings import get_settings

    settings = get_settings()

    def submit(alerts: list[Alert]) -> int:
        raise_alerts(alerts)
        return len(alerts)

    app = create_app(submit_alerts=submit, webhook_token=settings.alertmanager_webhook_token,
                     observability=build_observability(settings, celery_app))
    # Each scrape parses the snapshot (tens of thousands of short-lived objects), which triggers
    # the cyclic GC's full collections; without this they would rescan everything FastAPI,
    # Celery and SQLAlchemy left after start-up (tens of ms, the scrape's p99). As the workers do.
    gc.collect()
    gc.freeze()
    return app
