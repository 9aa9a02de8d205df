"""What the exporter and /health read about the pipeline: queue depths, the trail's newest row,
the rejected-event count, and which Celery workers consume which queue.

- ``QueueDepths``: kombu's Redis transport keeps a queue as Redis lists, one per priority step:
  ``<global_keyprefix><queue>`` for priority 0 and ``<global_keyprefix><queue>\\x06\\x16<n>`` for
  the steps 3, 6, 9 (``kombu.transport.redis.Channel._q_for_pri``, default ``priority_steps``).
  The depth is the sum of their LLENs, one pipelined round trip for every queue. Messages a
  worker has taken (unacked, prefetched) are no longer in the lists and are not counted.
- ``TrailProbe``: one statement, two index lookups and a count: the newest row of audit_events
  by seq (primary key, backwards), and count(*) of rejected_events (exact; rejections are
  rare, so the table stays small).
- ``WorkerCensus``: Celery's remote control ``inspect().active_queues()`` broadcast with a short
  timeout (it always waits the whole timeout for replies), cached; the exporter never waits for
  it (``cached``, refreshed in a background thread), /health refreshes it when it is older than
  ``max_age``. A worker answers between tasks: one in a ``solo`` pool busy with a task longer
  than the timeout is not counted meanwhile.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Sequence

import redis
from sqlalchemy import BigInteger, text
from sqlalchemy.engine import Engine

from tradewatch.storage.schema import UtcDateTime

#: kombu's Redis transport: separator and default priority steps (kombu.transport.redis).
KOMBU_PRIORITY_SEPARATOR = "\x06\x16"
KOMBU_PRIORITY_STEPS = (0, 3, 6, 9)


def queue_keys(queue: str, prefix: str = "") -> list[str]:
    """The Redis lists holding ``queue``'s messages, one per priority step."""
    return [f"{prefix}{queue}" if step == 0 else f"{prefix}{queue}{KOMBU_PRIORITY_SEPARATOR}{step}"
            for step in KOMBU_PRIORITY_STEPS]


class QueueDepths:
    def __init__(self, client: redis.Redis, queues: Sequence[str], prefix: str = "") -> None:
        self.client = client
        self.queues = tuple(queues)
        self.prefix = prefix

    def read(self) -> dict[str, int]:
        """{queue: messages waiting}; raises ``redis.RedisError`` when the broker is unreachable."""
        with self.client.pipeline(transaction=False) as pipe:
            for queue in self.queues:
                for key in queue_keys(queue, self.prefix):
                    pipe.llen(key)
            lengths = pipe.execute()
        steps = len(KOMBU_PRIORITY_STEPS)
        return {queue: int(sum(lengths[i * steps:(i + 1) * steps])) for i, queue in enumerate(self.queues)}


@dataclass(frozen=True)
class TrailReading:
    rejected_events: int
    newest_occurred_at_ns: int | None
    newest_received_at: datetime | None

    def ingest_lag_seconds(self, now_ns: int, audit_queue_depth: int | None) -> float | None:
        """``tradewatch_ingest_lag_seconds`` (see ``EXPORTED_METRICS``): received_at - occurred_at
        of the newest stored event; while the audit queue holds batches, at least now - its
        received_at. An empty trail with an empty audit queue is 0 (nothing behind); None when
        that cannot be said (an empty trail, the queue unknown or holding batches)."""
        if self.newest_received_at is None or self.newest_occurred_at_ns is None:
            return 0.0 if audit_queue_depth == 0 else None
        received_ns = _datetime_ns(self.newest_received_at)
        lag = (received_ns - self.newest_occurred_at_ns) / 1e9
        if audit_queue_depth:
            lag = max(lag, (now_ns - received_ns) / 1e9)
        return max(0.0, lag)


_TRAIL_SQL = text(
    "SELECT (SELECT count(*) FROM rejected_events) AS rejected, "
    "(SELECT occurred_at_ns FROM audit_events ORDER BY seq DESC LIMIT 1) AS occurred_at_ns, "
    "(SELECT received_at FROM audit_events ORDER BY seq DESC LIMIT 1) AS received_at"
).columns(rejected=BigInteger(), occurred_at_ns=BigInteger(), received_at=UtcDateTime())


class TrailProbe:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def read(self) -> TrailReading:
        with self.engine.connect() as conn:
            row = conn.execute(_TRAIL_SQL).one()
        received = row.received_at
        return TrailReading(rejected_events=int(row.rejected), newest_occurred_at_ns=row.occurred_at_ns,
                            newest_received_at=received)


def _datetime_ns(value: datetime) -> int:
    return int(value.timestamp()) * 1_000_000_000 + value.microsecond * 1_000


# ------------------------------------------------------------------------------------- workers

InspectQueues = Callable[[float], dict[str, list[dict]] | None]
"""``timeout -> {worker: [queue description with "name"]}`` (``Inspect.active_queues``), None when
no worker answered."""


@dataclass(frozen=True)
class Census:
    taken_at: float  # time.monotonic()
    workers: dict[str, tuple[str, ...]]  # queue -> worker names consuming it
    error: str | None = None

    def count(self, queue: str) -> int:
        return len(self.workers.get(queue, ()))


def celery_inspector(celery_app) -> InspectQueues:
    """``InspectQueues`` over a Celery app's remote control."""
    def inspect(timeout: float) -> dict[str, list[dict]] | None:
        return celery_app.control.inspect(timeout=timeout).active_queues()

    return inspect


class WorkerCensus:
    """Which workers consume which queue, cached (module docstring)."""

    def __init__(self, inspect: InspectQueues, queues: Sequence[str], *, timeout: float = 1.0,
                 max_age: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._inspect = inspect
        self.queues = tuple(queues)
        self.timeout = timeout
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._last: Census | None = None

    def refresh(self) -> Census:
        """Ask the workers now (blocks for ``timeout``); one refresh at a time, the others wait for it."""
        if not self._refreshing.acquire(blocking=False):
            with self._refreshing:  # someone else is asking: use their answer
                pass
            return self._last or self.refresh()
        try:
            started = self._clock()
            try:
                replies = self._inspect(self.timeout) or {}
            except Exception as exc:  # noqa: BLE001 - the broker is away: the census is unknown
                census = Census(started, {}, error=f"{type(exc).__name__}: {exc}")
            else:
                workers: dict[str, list[str]] = {queue: [] for queue in self.queues}
                for worker, queues in sorted(replies.items()):
                    for queue in queues or ():
                        name = queue.get("name") if isinstance(queue, dict) else None
                        if name in workers:
                            workers[name].append(worker)
                census = Census(started, {q: tuple(w) for q, w in workers.items()})
            with self._lock:
                self._last = census
            return census
        finally:
            self._refreshing.release()

    def current(self, max_age: float | None = None) -> Census:
        """The census, refreshed first when older than ``max_age`` (default ``self.max_age``)."""
        last = self._last
        if last is None or self._clock() - last.taken_at > (self.max_age if max_age is None else max_age):
            return self.refresh()
        return last

    def cached(self) -> Census | None:
        """The last census without waiting; starts a background refresh when it is stale. None
        until the first answer (or when the last is more than three refresh periods old)."""
        last = self._last
        age = None if last is None else self._clock() - last.taken_at
        if age is None or age > self.max_age:
            if not self._refreshing.locked():
                threading.Thread(target=self.refresh, name="tradewatch-worker-census", daemon=True).start()
        if last is None or age > 3 * self.max_age + self.timeout:
            return None
        return last


__all__ = ["Census", "QueueDepths", "TrailProbe", "TrailReading", "WorkerCensus", "celery_inspector", "queue_keys"]
