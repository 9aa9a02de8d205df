"""Publishes pre-encoded ingest batches as Celery task messages (protocol 2, JSON).

The events are JSON texts already (encoded once, in ``AuditClient.emit``); the message body is
built with one orjson call instead of letting kombu re-serialise a list of a thousand objects.
A consumer sees an ordinary ``audit.ingest_batch(events, batch_id=..., sent_at_ns=...)`` call.
"""

from __future__ import annotations

import contextlib
import time
import uuid

import orjson
from celery import Celery
from kombu import Connection

INGEST_TASK = "audit.ingest_batch"
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def encode_batch(events: list[str], batch_id: str) -> bytes:
    """The message body: ``[args, kwargs, embed]`` with the event texts as the one argument."""
    return orjson.dumps([[events], {"batch_id": batch_id, "sent_at_ns": time.time_ns()}, _EMBED])


class BrokerUnavailable(ConnectionError):
    """The broker could not take the batch (connection refused, timed out, lost)."""


class BatchPublisher:
    def __init__(self, app: Celery, queue: str = "audit") -> None:
        self.app = app
        self.queue = app.amqp.queues[queue]
        self._connection: Connection | None = None
        self._producer = None

    def _producer_for(self):
        if self._producer is None:
            connection = self.app.connection_for_write()
            connection.ensure_connection(max_retries=1, timeout=2)
            producer = connection.Producer()
            self.queue(producer.channel).declare()
            self._connection, self._producer = connection, producer
        return self._producer

    def publish(self, body: bytes, size: int) -> None:
        """Publish one encoded batch; raises BrokerUnavailable when the broker cannot take it."""
        try:
            producer = self._producer_for()
            task_id = str(uuid.uuid4())
            message = self.app.amqp.as_task_v2(
                task_id, INGEST_TASK, argsrepr=f"[<{size} events>]", kwargsrepr="{batch_id, sent_at_ns}"
            )
            producer.publish(
                body,
                exchange=self.queue.exchange,
                routing_key=self.queue.routing_key,
                headers=message.headers,
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=2,
                retry=False,
                **message.properties,
            )
        except Exception as exc:  # noqa: BLE001 - every failure here means "not delivered"
            self.reset()
            if isinstance(exc, BrokerUnavailable):
                raise
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def reset(self) -> None:
        connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):  # the connection is already broken
                connection.release()
