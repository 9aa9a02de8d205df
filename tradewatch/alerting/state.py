"""The router's shared state, in Redis, so any number of workers behave as one.

What lives here (every key under ``<prefix>tw:alerting:``):

- ``alert:<fingerprint>``: the latest version of each alert (JSON) and ``alert-time:<fp>`` the
  time of that version (starts_at when firing, ends_at when resolved). A version older than the
  stored one is ignored, so a late or redelivered "firing" never reopens a resolved alert.
- ``firing``: the fingerprints of the alerts firing now (inhibition looks at these).
- ``group:<gid>`` (hash: receiver, key, labels, timings, last notification), ``group:<gid>:alerts``
  (set of fingerprints) and ``group:<gid>:notified`` (fingerprint -> the status last sent).
- ``due`` (sorted set gid -> unix seconds): when each group is next looked at. Group waits,
  group intervals and repeat intervals are these timers, advanced by the beat tick
  (``alerts.tick``), never by Celery countdowns.
- ``lock:<gid>``: held by the one worker flushing a group (token, expiry).
- ``outbox`` (sorted set id -> time) and ``notification:<id>``: notifications decided but not
  yet delivered; ``delivered:<id>`` marks one done so a redelivered task sends nothing.
- ``silences`` (hash id -> JSON), ``suppressed:<fp>`` (why an alert was not sent), and
  ``counters`` (hash of monotonic counts for the metrics exporter).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

import redis

from tradewatch.alerting.model import Alert, AlertStatus
from tradewatch.alerting.notification import Notification
from tradewatch.alerting.silences import Silence

# Keep a resolved alert's last version this long: a late duplicate of its "firing" must still
# find it and be ignored.
RESOLVED_RETENTION_SECONDS = 7 * 24 * 3600
DELIVERED_RETENTION_SECONDS = 7 * 24 * 3600
SUPPRESSION_RETENTION_SECONDS = 7 * 24 * 3600

# Store an alert version only if it is not older than the one stored (KEYS: alert, alert-time,
# firing set; ARGV: json, version time, fingerprint, status, retention). Returns 1 when stored.
_PUT_ALERT = """
local current = redis.call('GET', KEYS[2])
if current and tonumber(current) > tonumber(ARGV[2]) then return 0 end
if current and tonumber(current) == tonumber(ARGV[2]) and ARGV[4] == 'firing' then
  local stored = redis.call('GET', KEYS[1])
  if stored and string.find(stored, '"status":"resolved"', 1, true) then return 0 end
end
if ARGV[4] == 'firing' then
  redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[2])
  redis.call('PERSIST', KEYS[1]); redis.call('PERSIST', KEYS[2])
  redis.call('SADD', KEYS[3], ARGV[3])
else
  if not redis.call('GET', KEYS[1]) then return 0 end
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[5]); redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[5])
  redis.call('SREM', KEYS[3], ARGV[3])
end
return 1
"""

# Release a lock only if we still hold it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class GroupMeta:
    """A group as stored: which receiver, which route, its timings and its last notification."""

    gid: str
    receiver: str
    group_key: str
    group_labels: dict[str, str]
    route_path: str
    group_wait_seconds: float
    group_interval_seconds: float
    repeat_interval_seconds: float
    last_notified_at: float | None


class GroupLock:
    """A per-group lock with an expiry, so a killed worker's lock frees itself."""

    def __init__(self, client: redis.Redis, key: str, ttl_seconds: float) -> None:
        self._client, self._key, self._ttl_ms = client, key, int(ttl_seconds * 1000)
        self._token = uuid.uuid4().hex
        self.acquired = False

    def __enter__(self) -> "GroupLock":
        self.acquired = bool(self._client.set(self._key, self._token, nx=True, px=self._ttl_ms))
        return self

    def __exit__(self, *exc_info) -> None:
        if self.acquired:
            self._client.eval(_RELEASE, 1, self._key, self._token)


class AlertState:
    """Redis-backed state of the router (see the module docstring for the keys)."""

    def __init__(self, client: redis.Redis, prefix: str = "") -> None:
        self.client = client
        self.base = f"{prefix}tw:alerting:"
        self._put_alert = client.register_script(_PUT_ALERT)

    def _k(self, *parts: str) -> str:
        return self.base + ":".join(parts)

    # ------------------------------------------------------------------ alerts

    def put_alert(self, alert: Alert) -> bool:
        """Store this version of the alert unless a newer one is stored. True if stored."""
        fp = alert.fingerprint
        version = (alert.ends_at if alert.status is AlertStatus.RESOLVED else alert.starts_at).timestamp()
        stored = self._put_alert(
            keys=[self._k("alert", fp), self._k("alert-time", fp), self._k("firing")],
            args=[alert.model_dump_json(), repr(version), fp, alert.status.value, RESOLVED_RETENTION_SECONDS],
        )
        return bool(stored)

    def alert(self, fingerprint: str) -> Alert | None:
        raw = self.client.get(self._k("alert", fingerprint))
        return Alert.model_validate_json(raw) if raw else None

    def alerts(self, fingerprints: Iterable[str]) -> dict[str, Alert]:
        fingerprints = list(fingerprints)
        if not fingerprints:
            return {}
        raws = self.client.mget([self._k("alert", fp) for fp in fingerprints])
        return {fp: Alert.model_validate_json(raw) for fp, raw in zip(fingerprints, raws) if raw}

    def firing_alerts(self) -> list[Alert]:
        return list(self.alerts(fp.decode() for fp in self.client.smembers(self._k("firing"))).values())

    # ------------------------------------------------------------ inhibition

    def index_source(self, rule_index: int, key: str, fingerprint: str, firing: bool) -> None:
        """Keep the set of firing alerts that are sources of inhibit rule ``rule_index`` for the
        values ``key`` of its equal labels (see inhibition.equal_key)."""
        name = self._k("inhibit", str(rule_index), hashlib.sha256(key.encode()).hexdigest()[:24])
        if firing:
            self.client.sadd(name, fingerprint)
        else:
            self.client.srem(name, fingerprint)

    def sources(self, rule_index: int, key: str) -> list[str]:
        name = self._k("inhibit", str(rule_index), hashlib.sha256(key.encode()).hexdigest()[:24])
        return sorted(fp.decode() for fp in self.client.smembers(name))

    # ------------------------------------------------------------------ groups

    def add_to_group(self, meta: GroupMeta, fingerprint: str, now: float) -> None:
        """Put an alert in its group, creating the group (first look after group_wait) if new."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hsetnx(self._k("group", meta.gid), "receiver", meta.receiver)
        pipe.hsetnx(self._k("group", meta.gid), "group_key", meta.group_key)
        pipe.hsetnx(self._k("group", meta.gid), "group_labels", json.dumps(meta.group_labels, sort_keys=True))
        pipe.hsetnx(self._k("group", meta.gid), "route_path", meta.route_path)
        pipe.hset(self._k("group", meta.gid), mapping={
            "group_wait_seconds": meta.group_wait_seconds,
            "group_interval_seconds": meta.group_interval_seconds,
            "repeat_interval_seconds": meta.repeat_interval_seconds,
        })
        pipe.sadd(self._k("group", meta.gid, "alerts"), fingerprint)
        # NX: an existing group keeps its timer (its next look is at most group_interval away).
        pipe.zadd(self._k("due"), {meta.gid: now + meta.group_wait_seconds}, nx=True)
        pipe.execute()

    def group(self, gid: str) -> GroupMeta | None:
        raw = {k.decode(): v.decode() for k, v in self.client.hgetall(self._k("group", gid)).items()}
        if "receiver" not in raw:
            return None
        return GroupMeta(
            gid=gid, receiver=raw["receiver"], group_key=raw["group_key"],
            group_labels=json.loads(raw["group_labels"]), route_path=raw["route_path"],
            group_wait_seconds=float(raw["group_wait_seconds"]),
            group_interval_seconds=float(raw["group_interval_seconds"]),
            repeat_interval_seconds=float(raw["repeat_interval_seconds"]),
            last_notified_at=float(raw["last_notified_at"]) if "last_notified_at" in raw else None,
        )

    def group_members(self, gid: str) -> list[str]:
        return sorted(fp.decode() for fp in self.client.smembers(self._k("group", gid, "alerts")))

    def notified(self, gid: str) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.client.hgetall(self._k("group", gid, "notified")).items()}

    def due_groups(self, now: float, limit: int = 500) -> list[str]:
        return [gid.decode() for gid in self.client.zrangebyscore(self._k("due"), "-inf", now, start=0, num=limit)]

    def is_due(self, gid: str, now: float) -> bool:
        score = self.client.zscore(self._k("due"), gid)
        return score is not None and score <= now

    def lock_group(self, gid: str, ttl_seconds: float = 30.0) -> GroupLock:
        return GroupLock(self.client, self._k("lock", gid), ttl_seconds)

    def commit_flush(
        self,
        meta: GroupMeta,
        *,
        notification: Notification | None,
        notified_update: dict[str, str],
        drop: Iterable[str],
        next_due: float | None,
        now: float,
    ) -> None:
        """Record a group's flush atomically: what was notified, the notification in the outbox,
        alerts that left the group, and its next look (None: the group is finished)."""
        gid = meta.gid
        pipe = self.client.pipeline(transaction=True)
        if notification is not None:
            pipe.set(self._k("notification", notification.notification_id), notification.model_dump_json())
            pipe.zadd(self._k("outbox"), {notification.notification_id: now})
            pipe.hset(self._k("group", gid), "last_notified_at", now)
        if notified_update:
            pipe.hset(self._k("group", gid, "notified"), mapping=notified_update)
        drop = list(drop)
        if drop:
            pipe.srem(self._k("group", gid, "alerts"), *drop)
            pipe.hdel(self._k("group", gid, "notified"), *drop)
        if next_due is None:
            pipe.delete(self._k("group", gid), self._k("group", gid, "alerts"), self._k("group", gid, "notified"))
            pipe.zrem(self._k("due"), gid)
        else:
            pipe.zadd(self._k("due"), {gid: next_due})
        pipe.execute()

    # --------------------------------------------------------------- outbox

    def notification(self, notification_id: str) -> Notification | None:
        raw = self.client.get(self._k("notification", notification_id))
        return Notification.model_validate_json(raw) if raw else None

    def is_delivered(self, notification_id: str) -> bool:
        return bool(self.client.exists(self._k("delivered", notification_id)))

    def mark_delivered(self, notification_id: str, outcome: str) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self._k("delivered", notification_id), outcome, ex=DELIVERED_RETENTION_SECONDS)
        pipe.zrem(self._k("outbox"), notification_id)
        pipe.expire(self._k("notification", notification_id), DELIVERED_RETENTION_SECONDS)
        pipe.execute()

    def touch_outbox(self, notification_id: str, now: float) -> None:
        """A delivery attempt is under way (or scheduled): the outbox sweep leaves it alone."""
        self.client.zadd(self._k("outbox"), {notification_id: now}, xx=True)

    def stale_outbox(self, older_than: float, limit: int = 100) -> list[str]:
        return [i.decode() for i in self.client.zrangebyscore(self._k("outbox"), "-inf", older_than, start=0, num=limit)]

    def lock_notification(self, notification_id: str, ttl_seconds: float = 60.0) -> GroupLock:
        return GroupLock(self.client, self._k("lock", "notification", notification_id), ttl_seconds)

    # -------------------------------------------------------------- silences

    def put_silence(self, silence: Silence) -> None:
        self.client.hset(self._k("silences"), silence.id, silence.model_dump_json())

    def silences(self) -> list[Silence]:
        return sorted(
            (Silence.model_validate_json(raw) for raw in self.client.hvals(self._k("silences"))),
            key=lambda s: (s.starts_at, s.id),
        )

    def silence(self, silence_id: str) -> Silence | None:
        raw = self.client.hget(self._k("silences"), silence_id)
        return Silence.model_validate_json(raw) if raw else None

    def record_suppressed(self, fingerprint: str, reason: dict) -> None:
        self.client.set(self._k("suppressed", fingerprint), json.dumps(reason, sort_keys=True), ex=SUPPRESSION_RETENTION_SECONDS)

    def suppressed(self, fingerprint: str) -> dict | None:
        raw = self.client.get(self._k("suppressed", fingerprint))
        return json.loads(raw) if raw else None

    def clear_suppressed(self, fingerprint: str) -> None:
        self.client.delete(self._k("suppressed", fingerprint))

    # -------------------------------------------------------------- counters

    def count(self, name: str, amount: int = 1) -> None:
        self.client.hincrby(self._k("counters"), name, amount)

    def counters(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self.client.hgetall(self._k("counters")).items()}

    # -------------------------------------------------------------- pacing

    def reserve_slot(self, key: str, interval_seconds: float) -> float:
        """Reserve the next send slot for ``key`` (e.g. a Slack channel) at most one per
        ``interval_seconds`` across all workers; returns how long to wait, in seconds."""
        return float(self.client.eval(_RESERVE_SLOT, 1, self._k("pace", key), repr(interval_seconds)))


# Slots for a paced key: the next free slot is stored; taking it moves it on by the interval.
# Redis TIME is the one clock all workers share.
_RESERVE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, next_free)
redis.call('SET', KEYS[1], tostring(slot + interval), 'PX', math.ceil((slot + interval - now) * 1000) + 1000)
return tostring(slot - now)
"""


def utc_seconds(moment: datetime) -> float:
    return moment.astimezone(timezone.utc).timestamp()


def from_seconds(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)

