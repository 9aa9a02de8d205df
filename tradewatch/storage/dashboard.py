"""DashboardStore: the real-time dashboard's persistence (its cursor, its aggregator state, the
snapshots it took) and its read of the trail.

The aggregator (``domain.dashboard.aggregator``) is pure: it folds ``DashboardEvent`` records
into a ``DashboardState`` and reads snapshots off it. This store feeds it the trail and keeps
what it builds:

- ``advance(aggregator, now_ns)`` (the ``dashboard.snapshot`` task, every 2 s): one transaction
  per chunk of at most ``limit`` events, until none is left or ``max_events`` were read. Each
  transaction locks the ``dashboard_state`` row (created if missing) WITHOUT waiting: on
  PostgreSQL ``SELECT ... FOR UPDATE SKIP LOCKED``, so while another process holds it the call
  returns at once with ``skipped=True`` (that process is doing the work and will write the
  snapshot); that is how the pipeline never runs twice at once, across workers and hosts, and a
  slow tick makes the next one a cheap no-op instead of a queue. On SQLite (embedded mode, one
  process) there are no row locks: the INSERT that creates the row takes the database's single
  write lock, so a second caller waits for the first (up to the busy timeout) and then finds
  nothing new; it never skips. Then the stored state is decoded, the chunk read after the
  stored cursor, applied, and cursor and state saved. The last chunk (a short read, or
  ``max_events`` reached, or nothing new at all) also writes one ``dashboard_snapshots`` row: the
  snapshot of the state as of ``now_ns``, in the same transaction, so a snapshot row always
  describes a committed state. A call with nothing new still writes a row (the history is a
  time series: broker status and the snapshot's own time depend on ``now``), and changes
  nothing else. A call skipped mid-way (another process took the row between two chunks)
  returns ``skipped=True`` with what it applied, and no snapshot row: the other writes it.
- The read path: the trail after the cursor, with ``AuditStore.follow``'s watermark rule (on
  PostgreSQL rows in (txid, seq) order and only of transactions below the snapshot's xmin, so a
  row another ingest worker commits late is read later, never skipped; on SQLite seq order;
  ``trail_consumer.follow_sql``), but read as records straight from SQL: the envelope and the
  payload fields the aggregator reads are selected as columns (``payload->>'x'``) and each row
  becomes a ``DashboardEvent`` with one ``_make`` (a C call), as ``ComplianceStore`` does.
  Measured on one core, 100,000 simulated events (``TradingSimulator``) on the local
  PostgreSQL: ``AuditStore.follow`` (JSON parse and pydantic validation of each row) reads
  30,000 events/s, the aggregator then applies 840,000 events/s of models, so follow was the
  bottleneck; this SQL read gives 112,000 records/s, ``apply_records`` 1,570,000/s, and
  ``advance`` end to end (20,000-event chunks, state saved per chunk, snapshot row) 91,000
  events/s: a 2 s tick at 20,000 events/s (40,000 events) takes about 0.45 s, and an idle tick
  13 ms. Numbers: declared decimals are stored as exact decimal strings, so a string is a
  number (float64) for the event types that declare the field (``trail_consumer.DECIMAL_FIELDS``);
  ``generation_seconds`` (a float in the contract) only as a JSON number.
- The state is ``DashboardState.to_dict()`` as compact JSON, zlib-compressed (level 1), as the
  compliance state is stored. An undecodable state stops the pipeline with
  ``DashboardStateUnreadable``, whose message says how to rebuild it from the trail.
- Lag facts of each run: ``last_received_at_ns``, the receipt time of the last event folded in
  (the row at the cursor), and ``trail_last_received_at_ns``, that of the trail's newest row
  (highest seq, visible or not yet past the watermark); two primary-key lookups.
- ``latest_snapshot``, ``history(start, end)``, ``prune(older_than)`` (the retention: the task
  prunes at most once a minute, ``dashboard_history_retention_seconds``).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection, Engine

from tradewatch.domain.dashboard.events import ENVELOPE_FIELDS, PAYLOAD_FIELDS, DashboardEvent
from tradewatch.domain.events.timestamps import NS_PER_SECOND, ns_to_datetime
from tradewatch.domain.trail import FollowCursor
from tradewatch.storage.schema import dashboard_snapshots, dashboard_state
from tradewatch.storage.trail_consumer import (
    DECIMAL_FIELDS,
    PG_RECEIVED_NS,
    SQLITE_RECEIVED_NS,
    StateTable,
    fetch,
    fetch_after,
    follow_sql,
    pg_number,
    pg_text,
    sqlite_number,
    sqlite_text,
)

if TYPE_CHECKING:
    from tradewatch.domain.dashboard.aggregator import DashboardState, RealtimeDashboardAggregator


def _pg_column(key: str, kind: str) -> str:
    if kind == "text":
        return pg_text(key)
    if key in DECIMAL_FIELDS:
        return pg_number(key)
    return f"CASE WHEN jsonb_typeof(payload->'{key}') = 'number' THEN (payload->>'{key}')::float8 END"


def _sqlite_column(key: str, kind: str) -> str:
    if kind == "text":
        return sqlite_text(key)
    if key in DECIMAL_FIELDS:
        return sqlite_number(key)
    return (f"CASE WHEN json_type(payload, '$.{key}') IN ('integer', 'real') "
            f"THEN CAST(json_extract(payload, '$.{key}') AS REAL) END")


_ENVELOPE = ", ".join(ENVELOPE_FIELDS)  # the audit_events columns of the same names
_PG_COLUMNS = ", ".join([_ENVELOPE, *(_pg_column(key, kind) for key, kind in PAYLOAD_FIELDS.items())])
_SQLITE_COLUMNS = ", ".join([_ENVELOPE, *(_sqlite_column(key, kind) for key, kind in PAYLOAD_FIELDS.items())])
# txid and seq come last: the record is the row without them (row[:-2]).
_PG_FOLLOW = follow_sql(f"{_PG_COLUMNS}, txid, seq", postgres=True)
_SQLITE_FOLLOW = follow_sql(f"{_SQLITE_COLUMNS}, txid, seq", postgres=False)
_PG_RECEIVED_AT_SEQ = f"SELECT {PG_RECEIVED_NS} FROM audit_events WHERE seq = %(seq)s"
_SQLITE_RECEIVED_AT_SEQ = f"SELECT {SQLITE_RECEIVED_NS} FROM audit_events WHERE seq = :seq"
_PG_NEWEST_RECEIVED = f"SELECT {PG_RECEIVED_NS} FROM audit_events ORDER BY seq DESC LIMIT 1"
_SQLITE_NEWEST_RECEIVED = f"SELECT {SQLITE_RECEIVED_NS} FROM audit_events ORDER BY seq DESC LIMIT 1"

_make = DashboardEvent._make

#: The pipelines' cursor and state, a row per pipeline name (``trail_consumer.StateTable``).
_STATE = StateTable(dashboard_state, "name")


class DashboardStateUnreadable(RuntimeError):
    """The stored dashboard state cannot be decoded (written by an incompatible version)."""


def encode_state(state: DashboardState) -> bytes:
    """``state`` as stored: compact JSON of ``to_dict()``, zlib level 1."""
    return zlib.compress(json.dumps(state.to_dict(), separators=(",", ":"), allow_nan=False).encode("utf-8"), 1)


def decode_state(data: bytes) -> DashboardState:
    """The state of ``encode_state``'s bytes (or of plain JSON). ValueError when unreadable."""
    from tradewatch.domain.dashboard.aggregator import DashboardState

    raw = bytes(data)
    try:
        text = zlib.decompress(raw) if raw[:1] != b"{" else raw
        body = json.loads(text.decode("utf-8"))
    except (zlib.error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"not zlib-compressed JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValueError(f"a JSON {type(body).__name__}, not an object")
    try:
        return DashboardState.from_dict(body)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"a field is missing or malformed: {exc!r}") from None


@dataclass
class DashboardRun:
    """What one ``advance`` did.

    ``events``: events read from the trail and applied by this call, in ``chunks`` transactions.
    ``skipped``: another process held the state row (PostgreSQL): this call stopped there, and
    wrote no snapshot. ``caught_up``: the last read returned fewer events than asked (nothing
    more visible now). ``snapshot``: the snapshot written (``RealtimeDashboardSnapshot.to_dict``),
    its row ``snapshot_id``; ``events_applied``: events folded into the state since it began.
    ``last_received_at_ns``: receipt time of the last event folded in; ``trail_last_received_at_ns``:
    that of the trail's newest row (None while empty)."""

    name: str
    as_of_ns: int
    events: int = 0
    chunks: int = 0
    skipped: bool = False
    caught_up: bool = False
    cursor: str = ""
    events_applied: int = 0
    last_event_ns: int | None = None
    last_received_at_ns: int | None = None
    trail_last_received_at_ns: int | None = None
    snapshot_id: int | None = None
    snapshot: dict[str, Any] | None = None

    @property
    def lag_seconds(self) -> float | None:
        """How far the snapshot is behind the trail's receipts: trail newest - folded newest (0
        when caught up; the whole trail's age when nothing is folded yet; None with no trail)."""
        if self.trail_last_received_at_ns is None:
            return None
        if self.last_received_at_ns is None:
            return None if self.skipped else float("inf")
        return max(0, self.trail_last_received_at_ns - self.last_received_at_ns) / NS_PER_SECOND

    def to_dict(self) -> dict[str, Any]:
        """The run's facts without the snapshot body (for logs and task results)."""
        lag = self.lag_seconds
        return {
            "name": self.name, "as_of_ns": self.as_of_ns, "events": self.events, "chunks": self.chunks,
            "skipped": self.skipped, "caught_up": self.caught_up, "cursor": self.cursor,
            "events_applied": self.events_applied, "last_event_ns": self.last_event_ns,
            "last_received_at_ns": self.last_received_at_ns,
            "trail_last_received_at_ns": self.trail_last_received_at_ns,
            "lag_seconds": None if lag is None or lag == float("inf") else lag, "snapshot_id": self.snapshot_id,
        }


class DashboardStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    # ------------------------------------------------------------------ reading the trail

    def follow_events(self, cursor: FollowCursor | None = None, limit: int = 20_000) -> tuple[list[DashboardEvent], FollowCursor]:
        """Up to ``limit`` records after ``cursor`` and the cursor after them (``cursor`` itself
        when there is nothing new)."""
        with self.engine.connect() as conn:
            return self._follow(conn, cursor or FollowCursor(), limit)

    def _follow(self, conn: Connection, cursor: FollowCursor, limit: int) -> tuple[list[DashboardEvent], FollowCursor]:
        rows = fetch_after(conn, _PG_FOLLOW if self.postgres else _SQLITE_FOLLOW, cursor, limit, postgres=self.postgres)
        if not rows:
            return [], cursor
        return [_make(row[:-2]) for row in rows], FollowCursor(int(rows[-1][-2]), int(rows[-1][-1]))

    def _received_ns(self, conn: Connection, cursor: FollowCursor) -> tuple[int | None, int | None]:
        """(receipt time of the row at ``cursor``, of the trail's newest row), ns."""
        at_cursor = None
        if cursor.seq:
            rows = fetch(conn, _PG_RECEIVED_AT_SEQ if self.postgres else _SQLITE_RECEIVED_AT_SEQ, {"seq": cursor.seq})
            at_cursor = int(rows[0][0]) if rows else None
        rows = fetch(conn, _PG_NEWEST_RECEIVED if self.postgres else _SQLITE_NEWEST_RECEIVED, {})
        return at_cursor, (int(rows[0][0]) if rows else None)

    # ------------------------------------------------------------------ advancing

    def advance(
        self,
        aggregator: RealtimeDashboardAggregator,
        now_ns: int,
        *,
        name: str = "default",
        limit: int = 20_000,
        max_events: int = 200_000,
        history_interval_seconds: float = 0.0,
    ) -> DashboardRun:
        """Fold what the trail holds past the stored cursor into the stored state, ``limit``
        events per transaction, at most ``max_events``; then take the snapshot as of ``now_ns``
        (module docstring) and add it to the history unless the newest history row is less than
        ``history_interval_seconds`` old (the latest snapshot is always returned; the history
        is for looking back, one row a minute is plenty). Returns at once with ``skipped=True``
        when another process holds the pipeline's row (PostgreSQL)."""
        now_ns = int(now_ns)
        run = DashboardRun(name=name, as_of_ns=now_ns)
        kept: tuple[str, int, DashboardState] | None = None  # the state this call saved last
        while True:
            with self.engine.begin() as conn:
                row = _STATE.lock(conn, name, wait=False)
                if row is None:
                    run.skipped = True
                    return run
                cursor = FollowCursor.from_token(row.cursor)
                if kept is not None and kept[:2] == (row.cursor, row.events_applied):
                    state = kept[2]  # nobody advanced since this call's last chunk: no decode
                else:
                    state = self._state(aggregator, row.state, name)
                asked = min(limit, max_events - run.events)
                records, cursor = self._follow(conn, cursor, asked) if asked > 0 else ([], cursor)
                events_applied = row.events_applied
                if records:
                    aggregator.apply_records(records, state)
                    events_applied += len(records)
                    _STATE.save(conn, name, cursor, encode_state(state), events_applied)
                    kept = (cursor.to_token(), events_applied, state)
                    run.events += len(records)
                    run.chunks += 1
                run.caught_up = len(records) < asked
                if run.caught_up or run.events >= max_events:
                    self._write_snapshot(conn, aggregator, state, run, name, cursor, events_applied,
                                         history_interval_seconds)
                    return run

    def _write_snapshot(self, conn: Connection, aggregator: RealtimeDashboardAggregator, state: DashboardState,
                        run: DashboardRun, name: str, cursor: FollowCursor, events_applied: int,
                        history_interval_seconds: float = 0.0) -> None:
        body = aggregator.snapshot(state, run.as_of_ns).to_dict()
        last_received, trail_received = self._received_ns(conn, cursor)
        run.cursor = cursor.to_token()
        run.events_applied = events_applied
        run.last_event_ns = state.last_event_ns
        run.last_received_at_ns = last_received
        run.trail_last_received_at_ns = trail_received
        run.snapshot = body
        if history_interval_seconds > 0:
            d = dashboard_snapshots.c
            newest = conn.execute(select(d.as_of_ns).where(d.name == name).order_by(d.taken_at.desc()).limit(1)).scalar()
            if newest is not None and run.as_of_ns - newest < history_interval_seconds * 1e9:
                return
        run.snapshot_id = conn.execute(
            insert(dashboard_snapshots).values(
                name=name, taken_at=ns_to_datetime(run.as_of_ns), as_of_ns=run.as_of_ns,
                last_event_ns=state.last_event_ns,
                last_received_at=None if last_received is None else ns_to_datetime(last_received),
                trail_last_received_at=None if trail_received is None else ns_to_datetime(trail_received),
                events_applied=events_applied, snapshot=body,
            ).returning(dashboard_snapshots.c.id)
        ).scalar_one()

    def state(self, name: str = "default") -> tuple[FollowCursor, bytes | None, int]:
        """The stored cursor, encoded state (None before the first event) and events applied."""
        return _STATE.read(self.engine, name)

    @staticmethod
    def _state(aggregator: RealtimeDashboardAggregator, stored: bytes | None, name: str) -> DashboardState:
        if not stored:
            return aggregator.new_state()
        try:
            return decode_state(stored)
        except ValueError as exc:
            raise DashboardStateUnreadable(
                f"the stored state of dashboard pipeline {name!r} cannot be read ({exc}). The pipeline stops "
                f"rather than show a picture without the positions and accounts it had; to rebuild it from the "
                f"start of the trail, run: UPDATE dashboard_state SET state = '', cursor = '' WHERE name = '{name}'"
            ) from exc

    # ------------------------------------------------------------------ the snapshots

    def latest_snapshot(self, name: str = "default") -> dict[str, Any] | None:
        """The newest ``dashboard_snapshots`` row of ``name`` as a dict (``snapshot``: the
        snapshot's ``to_dict``), or None before the first."""
        s = dashboard_snapshots.c
        query = select(dashboard_snapshots).where(s.name == name).order_by(s.id.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else dict(row._mapping)

    def history(self, start: datetime | None = None, end: datetime | None = None, limit: int = 1000,
                name: str = "default") -> list[dict[str, Any]]:
        """Rows with start <= taken_at < end (each bound optional), oldest first, at most
        ``limit`` (the newest ``limit`` of the period when it holds more)."""
        s = dashboard_snapshots.c
        query = select(dashboard_snapshots).where(s.name == name).order_by(s.taken_at.desc(), s.id.desc()).limit(limit)
        if start is not None:
            query = query.where(s.taken_at >= start)
        if end is not None:
            query = query.where(s.taken_at < end)
        with self.engine.connect() as conn:
            rows = [dict(row._mapping) for row in conn.execute(query)]
        return rows[::-1]

    def prune(self, older_than: datetime) -> int:
        """Delete the snapshots taken before ``older_than`` (every pipeline); how many."""
        with self.engine.begin() as conn:
            return conn.execute(delete(dashboard_snapshots).where(dashboard_snapshots.c.taken_at < older_than)).rowcount


__all__ = ["DashboardRun", "DashboardStateUnreadable", "DashboardStore", "decode_state", "encode_state"]
