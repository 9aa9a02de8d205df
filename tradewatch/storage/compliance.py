"""ComplianceStore: the compliance monitor's persistence (its cursor, its state, its issues) and
its reads of the trail.

The rule engine (``domain.compliance.engine``) is pure: it takes ``ComplianceEvent`` records and
a ``ComplianceState`` and returns the issues found. This store feeds it the trail and keeps what
it returns, as ``DetectionStore`` does for the detectors:

- ``follow_events`` reads the trail after a cursor as ``ComplianceEvent`` records straight from
  SQL: the envelope and the dozen payload fields the rules read are selected as columns
  (``payload->>'x'``), and each row becomes a record with one ``ComplianceEvent._make`` (a C
  call; no pydantic, no JSON parsing in Python). Same watermark rule as ``AuditStore.follow``:
  on PostgreSQL rows in (txid, seq) order, only of transactions below the snapshot's xmin, so a
  row another ingest worker commits late is read later, never skipped; on SQLite seq order.
- Numbers: the payload keeps declared decimals as exact decimal strings, so a string is a
  number (float64) for the event types that declare the field (``DECLARED_NUMBERS``); for other
  types only a JSON number is (an engine's own extra field of that name sent as text is not).
  ``passed`` and ``override`` are JSON booleans, anything else there is None. ``received_at_ns``
  is integer UTC epoch ns (microsecond precision, as stored).
- ``events_between`` and ``context_before`` implement the monitor's ``EventSource`` protocol
  (the period re-check reads a window plus the state in force at its start).
- ``apply_pending`` runs the engine over what is new, one transaction per chunk: the
  ``compliance_state`` row is created if missing and locked (``SELECT ... FOR UPDATE``; on
  SQLite the INSERT takes the single write lock), the state decoded, the chunk read after the
  stored cursor, ``engine.apply`` run, the new issues inserted (``ON CONFLICT (key) DO NOTHING
  RETURNING key``: only those really new are reported), and cursor, state and issues committed
  together. A redelivered call finds the cursor past its events (a no-op); two workers queue on
  the row lock, so together they write exactly the rows of one sequential run.
- ``tick`` / ``catch_up_and_tick``: the engine's ``tick(now_ns)`` (events held in the reorder
  window are applied once the watermark passes them; absence rules), only once caught up.
- ``record_issues``: the beat re-check's findings, inserted the same way (``found_by="recheck"``).

The follow query, the received_at / text / number column expressions, the state row (create,
lock, read, save) and the DBAPI read are ``storage.trail_consumer``'s, shared with
``DetectionStore``.

Linked anomalies (``anomaly_ids``): the ``anomalies`` rows (written by ``DetectionStore``) whose
``event_ids`` share an event with the issue, or name an event of the issue's order or signal
(anomalies carry event ids, not order ids: a slippage spike names its fill, whose order_id is
the order's). Candidates are the anomalies detected within ``LINK_WINDOW_NS`` of the chunk's
issues; two queries per chunk (the candidates, then their events' order and signal ids), the
matching in Python. An anomaly written after the issue is linked when the re-check finds the
issue again (``record_issues`` refreshes the links of issues already stored).

Alert resolution: ``close_alerts`` marks issues whose alert has been open long enough
(``alert_resolved_at``) and returns them, so the caller resolves their alerts (see
``alerting.converters.compliance`` for why a breach's alert resolves after a hold).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from tradewatch.domain.compliance.events import FIELDS, PAYLOAD_FIELDS, ComplianceEvent
from tradewatch.domain.compliance.issue import ComplianceIssue
from tradewatch.domain.events.timestamps import NS_PER_SECOND, ns_to_datetime
from tradewatch.domain.trail import FollowCursor
from tradewatch.storage.schema import anomalies, audit_events, compliance_issues, compliance_state
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
    from tradewatch.domain.compliance.engine import ComplianceEngine, ComplianceResult, ComplianceState

#: Payload fields the event models declare as decimals (stored as exact decimal strings), by
#: event type (``trail_consumer.DECIMAL_FIELDS``), of the numeric fields of ``ComplianceEvent``.
DECLARED_NUMBERS: dict[str, tuple[str, ...]] = {
    key: DECIMAL_FIELDS[key] for key, (_, kind) in PAYLOAD_FIELDS.items() if kind == "number"
}

#: Anomalies detected this close (either side) to an issue's time are the link candidates, ns.
LINK_WINDOW_NS = 3600 * NS_PER_SECOND
_BOOL_POSITIONS = tuple(FIELDS.index(field) for field, kind in PAYLOAD_FIELDS.values() if kind == "bool")
_INSERT_ROWS = 500  # rows per INSERT statement (SQLite's bound-parameter limit)
_STREAM_ROWS = 10_000


def _postgres_columns() -> str:
    columns = ["event_id::text", "event_type", "occurred_at_ns", PG_RECEIVED_NS, "source", "strategy_id", "symbol",
               "signal_id", "order_id"]
    for key, (_, kind) in PAYLOAD_FIELDS.items():
        if kind == "text":
            columns.append(pg_text(key))
        elif kind == "bool":
            columns.append(f"CASE WHEN jsonb_typeof(payload->'{key}') = 'boolean' THEN (payload->>'{key}')::boolean END")
        else:
            columns.append(pg_number(key))
    return ", ".join(columns)


def _sqlite_columns() -> str:
    columns = ["event_id", "event_type", "occurred_at_ns", SQLITE_RECEIVED_NS, "source", "strategy_id", "symbol",
               "signal_id", "order_id"]
    for key, (_, kind) in PAYLOAD_FIELDS.items():
        if kind == "text":
            columns.append(sqlite_text(key))
        elif kind == "bool":  # 1/0 here, made bool in Python (_sqlite_records)
            columns.append(f"CASE json_type(payload, '$.{key}') WHEN 'true' THEN 1 WHEN 'false' THEN 0 END")
        else:
            columns.append(sqlite_number(key))
    return ", ".join(columns)


_PG_COLUMNS = _postgres_columns()
_SQLITE_COLUMNS = _sqlite_columns()

# txid and seq come last: the record is the row without them (row[:-2]).
_PG_FOLLOW = follow_sql(f"{_PG_COLUMNS}, txid, seq", postgres=True)
_SQLITE_FOLLOW = follow_sql(f"{_SQLITE_COLUMNS}, txid, seq", postgres=False)

_PG_BETWEEN = (f"SELECT {_PG_COLUMNS} FROM audit_events WHERE occurred_at_ns >= %(start)s AND occurred_at_ns < %(end)s "
               "ORDER BY seq")
_SQLITE_BETWEEN = (f"SELECT {_SQLITE_COLUMNS} FROM audit_events WHERE occurred_at_ns >= :start AND occurred_at_ns < :end "
                   "ORDER BY seq")

# The latest event of each context group before a time (``monitor.context_key``): breakers per
# (source, scope, strategy_id of a strategy-scope breaker), quotes per symbol, positions per
# (strategy_id, symbol). "Latest" is the last in the engine's canonical order within the type:
# occurred_at_ns, then event_id.
_CONTEXT_GROUPS = (
    ("circuit_breaker", ("source", "{scope}", "CASE WHEN {scope} = 'strategy' THEN strategy_id END")),
    ("market_data", ("symbol",)),
    ("position_update", ("strategy_id", "symbol")),
)


def _pg_context() -> str:
    parts = []
    for event_type, keys in _CONTEXT_GROUPS:
        on = ", ".join(k.format(scope="payload->>'scope'") for k in keys)
        parts.append(
            f"(SELECT DISTINCT ON ({on}) {_PG_COLUMNS} FROM audit_events "
            f"WHERE event_type = '{event_type}' AND occurred_at_ns < %(before)s "
            f"ORDER BY {on}, occurred_at_ns DESC, event_id DESC)"
        )
    return " UNION ALL ".join(parts)


def _sqlite_context() -> str:
    parts = []
    for event_type, keys in _CONTEXT_GROUPS:
        on = ", ".join(k.format(scope="json_extract(payload, '$.scope')") for k in keys)
        parts.append(
            f"SELECT * FROM (SELECT {_SQLITE_COLUMNS}, ROW_NUMBER() OVER (PARTITION BY {on} "
            f"ORDER BY occurred_at_ns DESC, event_id DESC) AS latest FROM audit_events "
            f"WHERE event_type = '{event_type}' AND occurred_at_ns < :before) WHERE latest = 1"
        )
    return " UNION ALL ".join(parts)


_PG_CONTEXT = _pg_context()
_SQLITE_CONTEXT = _sqlite_context()

_make = ComplianceEvent._make


def _sqlite_records(rows: Iterable[Sequence[Any]]) -> list[ComplianceEvent]:
    """Records of SQLite rows (record columns first): its booleans come back as 1/0."""
    records = []
    for row in rows:
        values = list(row[: len(FIELDS)])
        for position in _BOOL_POSITIONS:
            if values[position] is not None:
                values[position] = bool(values[position])
        records.append(_make(values))
    return records


@dataclass
class ComplianceRun:
    """What ``apply_pending``, ``tick`` or ``catch_up_and_tick`` did over all its chunks.

    ``issues``: the issues that were new to the table (those the caller alerts on). ``events``:
    events read from the trail; ``applied`` and ``late`` as the engine counts them (``late``:
    arrived after the engine had applied past their time). ``pending``: events the engine holds
    in its reorder window after the call. ``caught_up``: the last read returned fewer events than
    asked (nothing more visible); ``ticked``: the engine's ``tick`` ran."""

    name: str
    issues: list[ComplianceIssue] = field(default_factory=list)
    events: int = 0
    applied: int = 0
    late: int = 0
    found: int = 0
    chunks: int = 0
    pending: int = 0
    cursor: str = ""
    caught_up: bool = False
    ticked: bool = False

    def add(self, result: ComplianceResult, new: list[ComplianceIssue], pending: int) -> None:
        self.issues += new
        self.applied += result.applied
        self.late += result.late
        self.found += len(result.issues)
        self.pending = pending
        self.chunks += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "events": self.events, "applied": self.applied, "late": self.late,
            "found": self.found, "new_issues": len(self.issues), "chunks": self.chunks, "pending": self.pending,
            "cursor": self.cursor, "caught_up": self.caught_up, "ticked": self.ticked,
        }


class ComplianceStateUnreadable(RuntimeError):
    """The stored compliance state cannot be decoded (written by an incompatible version)."""


#: The monitors' cursor and state, a row per monitor name (``trail_consumer.StateTable``).
_STATE = StateTable(compliance_state, "name")


class ComplianceStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    # ------------------------------------------------------------------ reads of the trail

    def follow_events(self, cursor: FollowCursor | None = None, limit: int = 20_000) -> tuple[list[ComplianceEvent], FollowCursor]:
        """Up to ``limit`` records after ``cursor`` and the cursor after them (``cursor`` itself
        when there is nothing new)."""
        with self.engine.connect() as conn:
            return self._follow(conn, cursor or FollowCursor(), limit)

    def _follow(self, conn: Connection, cursor: FollowCursor, limit: int) -> tuple[list[ComplianceEvent], FollowCursor]:
        rows = fetch_after(conn, _PG_FOLLOW if self.postgres else _SQLITE_FOLLOW, cursor, limit, postgres=self.postgres)
        records = [_make(row[:-2]) for row in rows] if self.postgres else _sqlite_records(rows)
        if not rows:
            return records, cursor
        return records, FollowCursor(int(rows[-1][-2]), int(rows[-1][-1]))

    def events_between(self, start_ns: int, end_ns: int) -> Iterator[ComplianceEvent]:
        """Every event with start_ns <= occurred_at_ns < end_ns, in seq order, streamed
        (``_STREAM_ROWS`` at a time: an hour of the trail is not held in memory as rows)."""
        parameters = {"start": int(start_ns), "end": int(end_ns)}
        with self.engine.connect() as conn:
            driver = conn.connection.driver_connection
            if self.postgres:
                cursor = driver.cursor(name="compliance_between")  # server-side: rows arrive in batches
                cursor.itersize = _STREAM_ROWS
                sql = _PG_BETWEEN
            else:
                cursor = driver.cursor()
                sql = _SQLITE_BETWEEN
            try:
                cursor.execute(sql, parameters)
                while rows := cursor.fetchmany(_STREAM_ROWS):
                    yield from (map(_make, rows) if self.postgres else _sqlite_records(rows))
            finally:
                cursor.close()

    def context_before(self, before_ns: int) -> list[ComplianceEvent]:
        """The latest circuit_breaker per (source, scope, strategy_id), market_data per symbol and
        position_update per (strategy_id, symbol) with occurred_at_ns < before_ns."""
        with self.engine.connect() as conn:
            if self.postgres:
                return [_make(row) for row in fetch(conn, _PG_CONTEXT, {"before": int(before_ns)})]
            return _sqlite_records(fetch(conn, _SQLITE_CONTEXT, {"before": int(before_ns)}))

    # ------------------------------------------------------------------ applying the engine

    def apply_pending(
        self,
        engine: ComplianceEngine,
        *,
        name: str = "default",
        limit: int = 20_000,
        max_events: int = 200_000,
        before_commit: Callable[[list[ComplianceIssue]], None] | None = None,
    ) -> ComplianceRun:
        """Apply ``engine`` to the events after the stored cursor, ``limit`` per transaction,
        until none is left or ``max_events`` were read.

        ``before_commit(new_issues)`` is called with each chunk's new issues inside its
        transaction, after they are written: the caller hands their alerts to the router there,
        so a failure rolls the chunk back and the retry raises them again."""
        run = ComplianceRun(name=name)
        while run.events < max_events:
            with self.engine.begin() as conn:
                row = _STATE.lock(conn, name)
                asked = min(limit, max_events - run.events)
                events, cursor = self._follow(conn, FollowCursor.from_token(row.cursor), asked)
                run.caught_up = len(events) < asked  # a short read: nothing more visible now
                if not events:
                    run.cursor = cursor.to_token()
                    break
                state = self._state(engine, row.state, name)
                result = engine.apply(events, state)
                new = self._insert_issues(conn, result.issues, "incremental")
                _STATE.save(conn, name, cursor, state.to_bytes(), row.events_applied + len(events))
                if before_commit is not None:
                    before_commit(new)
            run.events += len(events)
            run.add(result, new, state.pending)
            run.cursor = cursor.to_token()
            if run.caught_up:
                break
        return run

    def tick(self, engine: ComplianceEngine, now_ns: int, *, name: str = "default",
             before_commit: Callable[[list[ComplianceIssue]], None] | None = None) -> ComplianceRun:
        """``engine.tick(now_ns)`` on the stored state, persisted like a chunk."""
        run = ComplianceRun(name=name)
        with self.engine.begin() as conn:
            row = _STATE.lock(conn, name)
            state = self._state(engine, row.state, name)
            result = engine.tick(int(now_ns), state)
            new = self._insert_issues(conn, result.issues, "incremental")
            _STATE.save(conn, name, FollowCursor.from_token(row.cursor), state.to_bytes(), row.events_applied)
            if before_commit is not None:
                before_commit(new)
        run.add(result, new, state.pending)
        run.cursor = row.cursor
        run.ticked = True
        return run

    def catch_up_and_tick(
        self,
        engine: ComplianceEngine,
        now_ns: int,
        *,
        name: str = "default",
        limit: int = 20_000,
        max_events: int = 200_000,
        before_commit: Callable[[list[ComplianceIssue]], None] | None = None,
    ) -> ComplianceRun:
        """``apply_pending``, then ``tick(now_ns)`` only if that reached the head of the trail.
        Behind, a tick would release the reorder window and judge absence against a backlog
        (its age, not a silence); a later call ticks once caught up."""
        run = self.apply_pending(engine, name=name, limit=limit, max_events=max_events, before_commit=before_commit)
        if not run.caught_up:
            return run
        ticked = self.tick(engine, now_ns, name=name, before_commit=before_commit)
        run.issues += ticked.issues
        run.applied += ticked.applied
        run.late += ticked.late
        run.found += ticked.found
        run.chunks += ticked.chunks
        run.pending = ticked.pending
        run.ticked = True
        return run

    def state(self, name: str = "default") -> tuple[FollowCursor, bytes | None, int]:
        """The stored cursor, encoded state (None before the first run) and events read."""
        return _STATE.read(self.engine, name)

    def released_ns(self, name: str = "default") -> int | None:
        """The monitor's watermark: every event at or before it has been applied (None before its
        first run, or when its state cannot be read: the beat tick reports that)."""
        from tradewatch.domain.compliance.engine import ComplianceState

        stored = self.state(name)[1]
        if not stored:
            return None
        try:
            return ComplianceState.from_bytes(stored).released_ns
        except ValueError:
            return None

    @staticmethod
    def _state(engine: ComplianceEngine, stored: bytes | None, name: str) -> ComplianceState:
        from tradewatch.domain.compliance.engine import ComplianceState

        if not stored:
            return engine.new_state()
        try:
            return ComplianceState.from_bytes(bytes(stored))
        except ValueError as exc:  # the engine's ComplianceStateError
            raise ComplianceStateUnreadable(
                f"the stored state of compliance monitor {name!r} cannot be read ({exc}). The monitor stops rather "
                f"than silently forget its open orders, positions and daily totals; to start afresh from the current "
                f"cursor, run: UPDATE compliance_state SET state = '' WHERE name = '{name}' (the beat re-check covers "
                f"the last hour again)"
            ) from exc

    # ------------------------------------------------------------------ issue rows

    def record_issues(self, issues: Iterable[ComplianceIssue], found_by: str = "recheck",
                      before_commit: Callable[[list[ComplianceIssue]], None] | None = None) -> list[ComplianceIssue]:
        """Insert ``issues`` (one transaction); return those whose key was not stored yet.
        Issues already stored get their anomaly links refreshed (anomalies found since)."""
        issues = list(issues)
        with self.engine.begin() as conn:
            new = self._insert_issues(conn, issues, found_by, relink=True)
            if before_commit is not None:
                before_commit(new)
        return new

    def _insert_issues(self, conn: Connection, issues: Sequence[ComplianceIssue], found_by: str,
                       relink: bool = False) -> list[ComplianceIssue]:
        unique: dict[str, ComplianceIssue] = {}
        for issue in issues:
            unique.setdefault(issue.key, issue)
        if not unique:
            return []
        links = self._anomaly_links(conn, list(unique.values()))
        recorded_at = datetime.now(timezone.utc)
        rows = [_issue_row(issue, links.get(key, []), found_by, recorded_at) for key, issue in unique.items()]
        dialect_insert = postgresql.insert if self.postgres else sqlite.insert
        inserted: set[str] = set()
        for start in range(0, len(rows), _INSERT_ROWS):
            statement = (dialect_insert(compliance_issues).values(rows[start : start + _INSERT_ROWS])
                         .on_conflict_do_nothing(index_elements=["key"]).returning(compliance_issues.c.key))
            inserted.update(conn.execute(statement).scalars())
        if relink:
            self._relink(conn, {key: ids for key, ids in links.items() if key not in inserted and ids})
        return [issue for key, issue in unique.items() if key in inserted]

    def _relink(self, conn: Connection, links: dict[str, list[int]]) -> None:
        if not links:
            return
        i = compliance_issues.c
        stored = {row.key: row.anomaly_ids for row in conn.execute(select(i.key, i.anomaly_ids).where(i.key.in_(list(links))))}
        changed = [{"issue_key": key, "ids": sorted(set(stored.get(key) or []) | set(ids))}
                   for key, ids in links.items() if key in stored and not set(ids) <= set(stored[key] or [])]
        if changed:
            conn.execute(update(compliance_issues).where(i.key == bindparam("issue_key"))
                         .values(anomaly_ids=bindparam("ids")), changed)

    def link_anomalies(self, issues: Sequence[ComplianceIssue]) -> dict[str, list[int]]:
        """issue key -> ids of the anomalies linked to it (module docstring); the shape
        ``ComplianceMonitor``'s ``link_anomalies`` takes."""
        if not issues:
            return {}
        with self.engine.connect() as conn:
            return self._anomaly_links(conn, issues)

    def _anomaly_links(self, conn: Connection, issues: Sequence[ComplianceIssue]) -> dict[str, list[int]]:
        """issue key -> ids of linked anomalies (module docstring); two queries."""
        low = min(issue.occurred_at for issue in issues) - LINK_WINDOW_NS
        high = max(issue.occurred_at for issue in issues) + LINK_WINDOW_NS
        a = anomalies.c
        candidates = [(row.id, tuple(row.event_ids or ())) for row in conn.execute(
            select(a.id, a.event_ids).where(a.detected_at_ns >= low, a.detected_at_ns <= high).order_by(a.id))]
        candidates = [(anomaly_id, ids) for anomaly_id, ids in candidates if ids]
        if not candidates:
            return {}
        event_ids = sorted({event_id for _, ids in candidates for event_id in ids})
        e = audit_events.c
        correlation: dict[str, tuple[str | None, str | None]] = {}
        for start in range(0, len(event_ids), 1000):
            query = select(e.event_id, e.order_id, e.signal_id).where(e.event_id.in_(event_ids[start : start + 1000]))
            correlation.update({str(row.event_id): (row.order_id, row.signal_id) for row in conn.execute(query)})
        orders: dict[str, set[int]] = {}
        signals: dict[str, set[int]] = {}
        by_event: dict[str, set[int]] = {}
        for anomaly_id, ids in candidates:
            for event_id in ids:
                by_event.setdefault(event_id, set()).add(anomaly_id)
                order_id, signal_id = correlation.get(event_id, (None, None))
                if order_id:
                    orders.setdefault(order_id, set()).add(anomaly_id)
                if signal_id:
                    signals.setdefault(signal_id, set()).add(anomaly_id)
        links: dict[str, list[int]] = {}
        for issue in issues:
            found: set[int] = set()
            for event_id in issue.event_ids:
                found |= by_event.get(event_id, set())
            if issue.order_id:
                found |= orders.get(issue.order_id, set())
            if issue.signal_id:
                found |= signals.get(issue.signal_id, set())
            if found:
                links[issue.key] = sorted(found)
        return links

    # ------------------------------------------------------------------ alert resolution

    def close_alerts(self, cutoff: datetime, now: datetime, limit: int = 1000,
                     before_commit: Callable[[list[ComplianceIssue]], None] | None = None) -> list[ComplianceIssue]:
        """Mark up to ``limit`` issues recorded before ``cutoff`` whose alert is still open as
        resolved at ``now`` and return them (oldest first), in one transaction;
        ``before_commit(issues)`` inside it (the caller hands the resolves to the router there,
        so a failure leaves them to the next call). Resolving twice is harmless (the router
        ignores a resolve it already has), so on SQLite, where two callers may read the same
        rows, nothing is lost either."""
        i = compliance_issues.c
        with self.engine.begin() as conn:
            query = (select(compliance_issues).where(i.alert_resolved_at.is_(None), i.recorded_at < cutoff)
                     .order_by(i.id).limit(limit).with_for_update(skip_locked=True))
            rows = conn.execute(query).all()
            if rows:
                conn.execute(update(compliance_issues).where(i.id.in_([row.id for row in rows]))
                             .values(alert_resolved_at=now))
            closed = [_issue_of(row._mapping) for row in rows]
            if closed and before_commit is not None:
                before_commit(closed)
        return closed

    # ------------------------------------------------------------------ queries

    def issues(self, start_ns: int | None = None, end_ns: int | None = None, code: str | None = None,
               limit: int = 100) -> list[dict[str, Any]]:
        """Stored issues with start_ns <= occurred_at_ns < end_ns (each bound optional) and the
        given code, newest (by occurrence) first, as dicts of the row."""
        i = compliance_issues.c
        query = select(compliance_issues).order_by(i.occurred_at_ns.desc(), i.id.desc()).limit(limit)
        if start_ns is not None:
            query = query.where(i.occurred_at_ns >= int(start_ns))
        if end_ns is not None:
            query = query.where(i.occurred_at_ns < int(end_ns))
        if code is not None:
            query = query.where(i.code == code)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def issues_between(self, start_ns: int, end_ns: int) -> list[ComplianceIssue]:
        """The stored issues with start_ns <= occurred_at_ns < end_ns, oldest first."""
        i = compliance_issues.c
        query = (select(compliance_issues).where(i.occurred_at_ns >= int(start_ns), i.occurred_at_ns < int(end_ns))
                 .order_by(i.occurred_at_ns, i.id))
        with self.engine.connect() as conn:
            return [_issue_of(row._mapping) for row in conn.execute(query)]


def _issue_row(issue: ComplianceIssue, anomaly_ids: list[int], found_by: str, recorded_at: datetime) -> dict[str, Any]:
    metadata = dict(issue.metadata)
    version, digest = metadata.get("policy_version"), metadata.get("policy_hash")
    return {
        "key": issue.key, "code": issue.code, "severity": issue.severity, "message": issue.message,
        "occurred_at_ns": int(issue.occurred_at), "occurred_at": ns_to_datetime(int(issue.occurred_at)),
        "signal_id": issue.signal_id, "order_id": issue.order_id, "strategy_id": issue.strategy_id,
        "symbol": issue.symbol, "event_ids": list(issue.event_ids), "metadata": metadata,
        "anomaly_ids": list(anomaly_ids),
        "policy_version": None if version is None else str(version),
        "policy_hash": None if digest is None else str(digest),
        "found_by": found_by, "recorded_at": recorded_at, "alert_resolved_at": None,
    }


def _issue_of(row: Any) -> ComplianceIssue:
    return ComplianceIssue(
        code=row["code"], severity=row["severity"], message=row["message"], occurred_at=int(row["occurred_at_ns"]),
        signal_id=row["signal_id"], order_id=row["order_id"], strategy_id=row["strategy_id"], symbol=row["symbol"],
        event_ids=tuple(row["event_ids"] or ()), metadata=dict(row["metadata"] or {}),
    )


__all__ = ["DECLARED_NUMBERS", "LINK_WINDOW_NS", "ComplianceRun", "ComplianceStateUnreadable", "ComplianceStore"]
