"""/health and /ready: each dependency checked concurrently, each under a timeout.

Components, each ``ok``, ``degraded`` or ``down`` with its latency (ms) and a detail a person can
act on:

==============  ==========================================================================  ========
component       check                                                                        critical
==============  ==========================================================================  ========
database        ``SELECT 1`` on PostgreSQL (degraded when slower than ``slow_ms``)            yes
redis           ``PING`` on the shared-state Redis (alert router, snapshots)                 yes
broker          ``PING`` on the broker's Redis (queues)                                      yes
workers         per queue, the Celery workers answering a control broadcast with the         no
                queue active: ok = every queue has one; degraded = some queue has none;
                down = no worker answered (or the broker could not be asked)
snapshot        the dashboard snapshot's age: ok up to ``snapshot_max_age_seconds``;         no
                degraded when older or missing; down when Redis cannot be read
broker_api      (only when a URL is configured) GET, 2xx/3xx = ok, else down                 no
==============  ==========================================================================  ========

Overall: **unhealthy** when a critical component is down (tradewatch cannot record or route
anything); else **degraded** when any component is not ok (events are recorded but something
downstream waits: a queue without workers, a stale snapshot, a slow database); else
**healthy**. /health answers 200 for healthy and degraded, 503 for unhealthy.

/ready (load balancer, deploy gate): 200 when the database answers with its schema at the
migrations' head, and Redis and the broker answer; else 503 with what is missing.

Every check runs in a worker thread under ``asyncio.wait_for(timeout)``: a hung dependency is
reported down after ``timeout`` seconds, so both endpoints answer within about that long.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Literal

import redis
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tradewatch.web.pipeline import WorkerCensus
from tradewatch.web.snapshots import SnapshotReader

Status = Literal["ok", "degraded", "down"]
Overall = Literal["healthy", "degraded", "unhealthy"]
CRITICAL = ("database", "redis", "broker")

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")


def without_credentials(text_: str) -> str:
    """``text_`` with the user and password of any URL in it replaced."""
    return _URL_CREDENTIALS.sub(r"\g<scheme>***@", text_)


@dataclass
class ComponentHealth:
    status: Status
    detail: str
    latency_ms: float | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "latency_ms": self.latency_ms, "detail": self.detail, **self.data}


def overall_status(components: dict[str, ComponentHealth]) -> Overall:
    if any(name in CRITICAL and c.status == "down" for name, c in components.items()):
        return "unhealthy"
    if any(c.status != "ok" for c in components.values()):
        return "degraded"
    return "healthy"


def _error(exc: BaseException) -> str:
    message = without_credentials(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
    return f"{type(exc).__name__}: {message[:300]}" if message else type(exc).__name__


def _redis_where(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix:{kwargs['path']}"
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


class HealthChecker:
    def __init__(
        self,
        *,
        database: Engine | None,
        state_redis: redis.Redis | None,
        broker_redis: redis.Redis | None,
        census: WorkerCensus | None = None,
        snapshots: SnapshotReader | None = None,
        snapshot_max_age_seconds: float = 30.0,
        broker_api_url: str | None = None,
        timeout: float = 2.0,
        slow_ms: float = 1000.0,
        migration_heads: Callable[[], set[str]] | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.database = database
        self.state_redis = state_redis
        self.broker_redis = broker_redis
        self.census = census
        self.snapshots = snapshots
        self.snapshot_max_age_seconds = snapshot_max_age_seconds
        self.broker_api_url = broker_api_url
        self.timeout = timeout
        self.slow_ms = slow_ms
        self._migration_heads = migration_heads
        self._heads: set[str] | None = None
        self.clock_ns = clock_ns

    # ------------------------------------------------------------------ the checks (blocking)

    def _timed(self, slow: bool = True) -> Callable:
        def wrap(check: Callable[[], ComponentHealth]) -> Callable[[], ComponentHealth]:
            def run() -> ComponentHealth:
                started = time.perf_counter()
                try:
                    result = check()
                except Exception as exc:  # noqa: BLE001 - any failure is the component's state
                    result = ComponentHealth("down", _error(exc))
                result.latency_ms = round((time.perf_counter() - started) * 1000, 2)
                if slow and result.status == "ok" and result.latency_ms > self.slow_ms:
                    result.status = "degraded"
                    result.detail += f" (slow: {result.latency_ms:.0f} ms, over {self.slow_ms:.0f} ms)"
                return result
            return run
        return wrap

    def _database(self) -> ComponentHealth:
        if self.database is None:
            return ComponentHealth("down", "no database configured (TRADEWATCH_DATABASE_URL)")
        with self.database.connect() as conn:
            conn.execute(text("SELECT 1"))
        return ComponentHealth("ok", f"SELECT 1 answered ({self.database.url.render_as_string(hide_password=True)})")

    def _ping(self, client: redis.Redis | None, what: str) -> ComponentHealth:
        if client is None:
            return ComponentHealth("down", f"no {what} configured")
        client.ping()
        return ComponentHealth("ok", f"PING answered ({_redis_where(client)})")

    def _workers(self) -> ComponentHealth:
        if self.census is None:
            return ComponentHealth("down", "no Celery app configured")
        census = self.census.current()
        if census.error is not None:
            return ComponentHealth("down", f"could not ask the workers: {without_credentials(census.error)[:300]}")
        queues = {queue: list(census.workers.get(queue, ())) for queue in self.census.queues}
        missing = [queue for queue, workers in queues.items() if not workers]
        data = {"queues": queues, "checked_seconds_ago": round(max(0.0, time.monotonic() - census.taken_at), 2)}
        if len(missing) == len(queues):
            return ComponentHealth("down", "no Celery worker answered: nothing consumes the queues "
                                           f"({', '.join(missing)}); start the worker pools (Procfile, docker-compose)", data=data)
        if missing:
            return ComponentHealth("degraded", f"no worker consumes {', '.join(missing)}: its tasks wait in the queue; "
                                               "start that pool", data=data)
        return ComponentHealth("ok", "every queue has a worker", data=data)

    def _snapshot(self) -> ComponentHealth:
        if self.snapshots is None:
            return ComponentHealth("down", "no snapshot store configured")
        document = self.snapshots.read()
        if document is None:
            return ComponentHealth("degraded", "no dashboard snapshot yet: the dashboard task (beat, analysis pool) "
                                               "writes one every ~2 s")
        age = max(0.0, (self.clock_ns() - (document.written_at_ns or 0)) / 1e9)
        data = {"age_seconds": round(age, 3), "max_age_seconds": self.snapshot_max_age_seconds}
        if age > self.snapshot_max_age_seconds:
            return ComponentHealth("degraded", f"the dashboard snapshot is {age:.0f} s old (over "
                                               f"{self.snapshot_max_age_seconds:g} s): are beat and an analysis "
                                               "worker running?", data=data)
        return ComponentHealth("ok", f"written {age:.1f} s ago", data=data)

    def _broker_api(self) -> ComponentHealth:
        assert self.broker_api_url is not None
        where = without_credentials(self.broker_api_url)
        try:
            with urllib.request.urlopen(urllib.request.Request(self.broker_api_url, method="GET"),
                                        timeout=min(2.0, self.timeout)) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            return ComponentHealth("down", f"GET {where} answered {exc.code}", data={"http_status": exc.code})
        return ComponentHealth("ok", f"GET {where} answered {status}", data={"http_status": status})

    def _ready_database(self) -> ComponentHealth:
        if self.database is None:
            return ComponentHealth("down", "no database configured (TRADEWATCH_DATABASE_URL)")
        from alembic.runtime.migration import MigrationContext

        with self.database.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
        heads = self.heads()
        data = {"revision": sorted(current), "head": sorted(heads)}
        if current != heads:
            return ComponentHealth("down", f"the schema is at {sorted(current) or 'no revision'}, the code expects "
                                           f"{sorted(heads)}: run `tradewatch db upgrade`", data=data)
        return ComponentHealth("ok", "reachable, schema at the migrations' head", data=data)

    def heads(self) -> set[str]:
        if self._heads is None:
            if self._migration_heads is not None:
                self._heads = set(self._migration_heads())
            else:
                from alembic.script import ScriptDirectory

                from tradewatch.storage.migrate import MIGRATIONS

                self._heads = set(ScriptDirectory(str(MIGRATIONS)).get_heads())
        return self._heads

    # ------------------------------------------------------------------ running them

    async def _run(self, checks: dict[str, Callable[[], ComponentHealth]]) -> dict[str, ComponentHealth]:
        async def one(check: Callable[[], ComponentHealth]) -> ComponentHealth:
            try:
                return await asyncio.wait_for(asyncio.to_thread(check), self.timeout)
            except asyncio.TimeoutError:
                return ComponentHealth("down", f"no answer within {self.timeout:g} s",
                                       latency_ms=round(self.timeout * 1000, 2))

        results = await asyncio.gather(*(one(check) for check in checks.values()))
        return dict(zip(checks, results))

    async def health(self) -> dict[str, Any]:
        timed = self._timed()
        checks: dict[str, Callable[[], ComponentHealth]] = {
            "database": timed(self._database),
            "redis": timed(lambda: self._ping(self.state_redis, "Redis (TRADEWATCH_REDIS_URL)")),
            "broker": timed(lambda: self._ping(self.broker_redis, "broker (TRADEWATCH_BROKER_URL)")),
            "workers": self._timed(slow=False)(self._workers),
            "snapshot": timed(self._snapshot),
        }
        if self.broker_api_url:
            checks["broker_api"] = timed(self._broker_api)
        components = await self._run(checks)
        return {
            "status": overall_status(components),
            "checked_at": datetime.now(timezone.utc).isoformat(),
            "components": {name: c.to_dict() for name, c in components.items()},
        }

    async def ready(self) -> dict[str, Any]:
        timed = self._timed(slow=False)
        components = await self._run({
            "database": timed(self._ready_database),
            "redis": timed(lambda: self._ping(self.state_redis, "Redis (TRADEWATCH_REDIS_URL)")),
            "broker": timed(lambda: self._ping(self.broker_redis, "broker (TRADEWATCH_BROKER_URL)")),
        })
        ready = all(c.status == "ok" for c in components.values())
        return {"ready": ready, "components": {name: c.to_dict() for name, c in components.items()}}


__all__ = ["CRITICAL", "ComponentHealth", "HealthChecker", "overall_status", "without_credentials"]
