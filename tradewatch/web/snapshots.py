"""The latest dashboard snapshot, as the snapshot task leaves it in Redis.

Every ~2 s a worker writes one JSON document to ``<broker_key_prefix>tradewatch:dashboard:latest``
(on the shared-state Redis, ``TRADEWATCH_REDIS_URL`` or the broker's)::

    {"snapshot": RealtimeDashboardSnapshot.to_dict(),
     "written_at_ns": int,                      # when the worker wrote it (wall clock)
     "last_received_at_ns": int | null,         # received_at of the newest event folded in
     "trail_last_received_at_ns": int | null,   # received_at of the newest event in the trail
     "events_applied": int}

The web service only reads it: /metrics, /health and /api/snapshot hold nothing of their own, so
any number of web processes, restarted at any time, export the same monotonic counters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import redis

SNAPSHOT_KEY = "tradewatch:dashboard:latest"


def snapshot_key(prefix: str) -> str:
    return f"{prefix}{SNAPSHOT_KEY}"


@dataclass(frozen=True)
class SnapshotDocument:
    raw: bytes
    body: dict[str, Any]

    @property
    def snapshot(self) -> dict[str, Any]:
        return self.body.get("snapshot") or {}

    @property
    def written_at_ns(self) -> int | None:
        return _int(self.body.get("written_at_ns"))

    @property
    def last_received_at_ns(self) -> int | None:
        return _int(self.body.get("last_received_at_ns"))

    @property
    def trail_last_received_at_ns(self) -> int | None:
        return _int(self.body.get("trail_last_received_at_ns"))

    @property
    def events_applied(self) -> int | None:
        return _int(self.body.get("events_applied"))


class SnapshotUnreadable(ValueError):
    """The key holds something that is not a snapshot document."""


class SnapshotReader:
    """Reads the latest snapshot document (one GET; nothing cached)."""

    def __init__(self, client: redis.Redis, prefix: str = "") -> None:
        self.client = client
        self.key = snapshot_key(prefix)

    def raw(self) -> bytes | None:
        return self.client.get(self.key)

    def read(self) -> SnapshotDocument | None:
        """The document, None when none was written yet; raises ``redis.RedisError`` when Redis
        cannot be reached and ``SnapshotUnreadable`` when the key holds something else."""
        raw = self.raw()
        if raw is None:
            return None
        return parse_document(raw, self.key)


def parse_document(raw: bytes, key: str = SNAPSHOT_KEY) -> SnapshotDocument:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SnapshotUnreadable(f"Redis key {key!r} is not JSON ({exc})") from None
    if not isinstance(body, dict) or not isinstance(body.get("snapshot"), dict) or _int(body.get("written_at_ns")) is None:
        raise SnapshotUnreadable(
            f"Redis key {key!r} is not a dashboard snapshot document: expected an object with 'snapshot' (object) "
            "and 'written_at_ns' (integer)"
        )
    return SnapshotDocument(raw=raw, body=body)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


__all__ = ["SNAPSHOT_KEY", "SnapshotDocument", "SnapshotReader", "SnapshotUnreadable", "parse_document", "snapshot_key"]
