"""What the stores of the trail's consumers (``DetectionStore``, ``ComplianceStore``,
``DashboardStore``) share: the row that persists a consumer's cursor and state, the DBAPI read
they use, and the SQL that reads the trail after a cursor.

- ``StateTable``: a table of one row per consumer name (the name column, ``cursor``, ``state``
  bytes, ``events_applied``, ``updated_at``). ``lock`` creates the row if missing (INSERT ... ON
  CONFLICT DO NOTHING) and locks it for the transaction (``SELECT ... FOR UPDATE``): two workers
  applying the same consumer queue on the row lock (or, ``wait=False``, the second skips at
  once: ``DashboardStore``). On SQLite the INSERT, a write, takes the database's single write
  lock until commit, which serialises callers the same way.
- ``fetch``: rows as plain tuples from the DBAPI cursor of the connection's (possibly open)
  transaction, without SQLAlchemy Row objects.
- ``follow_sql`` / ``fetch_after``: the watermark rule of ``AuditStore.follow``: on PostgreSQL
  rows in (txid, seq) order and only of transactions below the snapshot's xmin, so a row another
  ingest worker commits late is read later, never skipped; on SQLite (one writer) plain seq order.
- Column expressions for ``audit_events``: ``received_at`` as integer epoch ns, and a payload
  field as text or as a number. ``DECIMAL_FIELDS``: the payload keeps declared decimals as exact
  decimal strings, so a string is a number (float8) for the event types that declare the field;
  for other types only a JSON number is (an engine's own extra field of that name sent as text
  is not).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, Row

from tradewatch.domain.trail import FollowCursor

# ------------------------------------------------------------------ the state row


class StateTable:
    """The consumers' rows of ``table``, named by its column ``key``."""

    def __init__(self, table: Table, key: str) -> None:
        self.table = table
        self.key = key

    def lock(self, conn: Connection, name: str, *, wait: bool = True) -> Row | None:
        """Create ``name``'s row if missing, then lock it for this transaction; its cursor (a
        token), state (bytes, empty before the first save) and events_applied.

        ``wait=False``: on PostgreSQL, None at once when another transaction holds the row
        (``FOR UPDATE SKIP LOCKED``) instead of queueing. SQLite has no row locks: the INSERT
        takes the database's single write lock (waiting up to the busy timeout), so there
        callers are serialised and never skip."""
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(
            dialect_insert(self.table)
            .values({self.key: name, "cursor": "", "state": b"", "events_applied": 0,
                     "updated_at": datetime.now(timezone.utc)})
            .on_conflict_do_nothing(index_elements=[self.key])
        )
        c = self.table.c
        query = select(c.cursor, c.state, c.events_applied).where(c[self.key] == name)
        if wait:
            return conn.execute(query.with_for_update()).one()
        return conn.execute(query.with_for_update(skip_locked=True)).first()

    def read(self, engine: Engine, name: str) -> tuple[FollowCursor, bytes | None, int]:
        """The stored cursor, encoded state (None before the first save) and events applied."""
        c = self.table.c
        with engine.connect() as conn:
            row = conn.execute(select(c.cursor, c.state, c.events_applied).where(c[self.key] == name)).first()
        if row is None:
            return FollowCursor(), None, 0
        return FollowCursor.from_token(row.cursor), (bytes(row.state) or None), row.events_applied

    def save(self, conn: Connection, name: str, cursor: FollowCursor, state: bytes, events_applied: int) -> None:
        """Store ``name``'s cursor, encoded state and events applied (the row is locked: ``lock``)."""
        conn.execute(
            update(self.table)
            .where(self.table.c[self.key] == name)
            .values(cursor=cursor.to_token(), state=state, events_applied=events_applied,
                    updated_at=datetime.now(timezone.utc))
        )


# ------------------------------------------------------------------ reading the trail


def fetch(conn: Connection, sql: str, parameters: dict[str, Any]) -> list[tuple]:
    """``sql`` (the driver's paramstyle) run on the DBAPI cursor of the connection's (possibly
    open) transaction: plain tuples, no Row objects."""
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(sql, parameters)
        return cursor.fetchall()
    finally:
        cursor.close()


#: PostgreSQL's follow watermark: the snapshot's xmin, below which every transaction has ended.
PG_WATERMARK = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"


def follow_sql(columns: str, *, postgres: bool) -> str:
    """The query of ``columns`` of up to ``limit`` audit_events rows after a cursor, in follow
    order (module docstring); the parameters are ``fetch_after``'s."""
    if postgres:
        return (f"SELECT {columns} FROM audit_events "
                f"WHERE (txid, seq) > (%(txid)s, %(seq)s) AND txid < {PG_WATERMARK} "
                "ORDER BY txid, seq LIMIT %(limit)s")
    return f"SELECT {columns} FROM audit_events WHERE seq > :seq ORDER BY seq LIMIT :limit"


def fetch_after(conn: Connection, sql: str, cursor: FollowCursor, limit: int, *, postgres: bool) -> list[tuple]:
    """The rows of ``sql`` (a ``follow_sql``) after ``cursor``, at most ``limit``."""
    if postgres:
        return fetch(conn, sql, {"txid": cursor.txid, "seq": cursor.seq, "limit": limit})
    return fetch(conn, sql, {"seq": cursor.seq, "limit": limit})


# ------------------------------------------------------------------ audit_events columns

#: Every payload field the event models (``domain.events.payloads``) declare as a decimal, by
#: event type: stored as exact decimal strings (see storage.schema).
DECIMAL_FIELDS: dict[str, tuple[str, ...]] = {
    "bid": ("market_data", "fill"),
    "ask": ("market_data", "fill"),
    "last": ("market_data",),
    "volume": ("market_data",),
    "limit": ("risk_check",),
    "value": ("risk_check",),
    "quantity": ("order", "fill", "position_update"),
    "limit_price": ("order",),
    "decision_price": ("order",),
    "price": ("fill",),
    "fee": ("fill",),
    "arrival_price": ("fill",),
    "vwap": ("fill",),
    "avg_price": ("position_update",),
    "market_price": ("position_update",),
    "realized_pnl": ("position_update",),
    "unrealized_pnl": ("position_update",),
    "equity": ("account",),
    "cash": ("account",),
    "buying_power": ("account",),
    "gross_exposure": ("account",),
    "net_exposure": ("account",),
    "margin_used": ("account",),
}

#: received_at as integer UTC epoch ns. Exact: extract(epoch) is numeric, received_at has microseconds.
PG_RECEIVED_NS = "(extract(epoch FROM received_at) * 1000000)::int8 * 1000"
#: received_at is stored as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): whole seconds plus the digits.
SQLITE_RECEIVED_NS = (
    "CAST(strftime('%s', received_at) AS INTEGER) * 1000000000 + CASE WHEN instr(received_at, '.') > 0 "
    "THEN CAST(substr(substr(received_at, instr(received_at, '.') + 1) || '000000', 1, 6) AS INTEGER) * 1000 "
    "ELSE 0 END"
)


def _types(key: str) -> str:
    return ", ".join(f"'{t}'" for t in DECIMAL_FIELDS[key])


def pg_text(key: str) -> str:
    """The payload field ``key`` as text (NULL when absent)."""
    return f"payload->>'{key}'"


def sqlite_text(key: str) -> str:
    return f"CAST(json_extract(payload, '$.{key}') AS TEXT)"


def pg_number(key: str) -> str:
    """The payload field ``key`` (one of ``DECIMAL_FIELDS``) as float8: a JSON number, or a
    string of an event type that declares the field; NULL otherwise."""
    return (f"CASE WHEN jsonb_typeof(payload->'{key}') = 'number' OR (event_type IN ({_types(key)}) "
            f"AND jsonb_typeof(payload->'{key}') = 'string') THEN (payload->>'{key}')::float8 END")


def sqlite_number(key: str) -> str:
    return (f"CASE WHEN json_type(payload, '$.{key}') IN ('integer', 'real') OR (event_type IN ({_types(key)}) "
            f"AND json_type(payload, '$.{key}') = 'text') THEN CAST(json_extract(payload, '$.{key}') AS REAL) END")


__all__ = [
    "DECIMAL_FIELDS", "PG_RECEIVED_NS", "PG_WATERMARK", "SQLITE_RECEIVED_NS", "StateTable", "fetch", "fetch_after",
    "follow_sql", "pg_number", "pg_text", "sqlite_number", "sqlite_text",
]
