"""Delivery receipts: the end-to-end acknowledgement between AuditClient and the ingest worker.

Kombu's Redis transport takes a message off its queue (BRPOP) and only then records it as
unacknowledged, in a second round trip. A broker or worker that dies between the two loses
the message: no visibility timeout brings it back (celery/kombu#305). So the engine side does
not take "published" for "stored": after committing a batch the worker writes a receipt
(``SET <prefix>tradewatch:receipt:<batch_id>``, expiring after an hour), and the client keeps
each published batch until it sees that receipt, publishing it again if the receipt does not
come while the queue has drained. Ingest is idempotent, so a batch sent twice is stored once.
"""

from __future__ import annotations

import redis

RECEIPT_TTL_SECONDS = 3600


def receipt_key(prefix: str, batch_id: str) -> str:
    return f"{prefix}tradewatch:receipt:{batch_id}"


class ReceiptWriter:
    """Worker side: record that a batch is committed."""

    def __init__(self, url: str, prefix: str = "") -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._prefix = prefix

    def confirm(self, batch_id: str) -> None:
        self._client.set(receipt_key(self._prefix, batch_id), b"1", ex=RECEIPT_TTL_SECONDS)


class ReceiptReader:
    """Client side: which batches are committed, and is the queue drained."""

    def __init__(self, url: str, prefix: str, queue: str) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self._prefix = prefix
        self._queue_key = f"{prefix}{queue}"

    def committed(self, batch_ids: list[str]) -> list[bool]:
        """One MGET; the receipts found are removed (the client will not ask again)."""
        keys = [receipt_key(self._prefix, batch_id) for batch_id in batch_ids]
        found = self._client.mget(keys)
        done = [key for key, value in zip(keys, found) if value is not None]
        if done:
            self._client.unlink(*done)
        return [value is not None for value in found]

    def queue_length(self) -> int:
        return int(self._client.llen(self._queue_key))


def redis_url_of(broker_url: str) -> str | None:
    """Receipts live on the broker's Redis; None for brokers that are not Redis (embedded)."""
    return broker_url if broker_url.startswith(("redis://", "rediss://", "unix://")) else None
