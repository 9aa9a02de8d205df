"""The Alembic migrations build exactly the schema of tradewatch.storage.schema, and the
PostgreSQL trail refuses UPDATE and DELETE."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Identity, inspect, text
from sqlalchemy.exc import DBAPIError

from tradewatch.storage.migrate import current_revision, upgrade

HEAD = "0006_dashboard"
from tradewatch.storage.schema import metadata

from tradewatch.domain.events.timestamps import ns_to_datetime

from tests.factories import BASE_NS, fill, texts

RECEIVED = ns_to_datetime(BASE_NS)


def _is_sqlite_identity_artifact(diff, dialect: str) -> bool:
    """SQLite has no IDENTITY: an INTEGER PRIMARY KEY is the rowid and auto-increments by itself,
    so SQLAlchemy emits nothing for Identity() there and reflection cannot report it. Alembic then
    sees "server default None -> Identity()" on exactly those integer primary keys. Harmless:
    the column still numbers rows in insert order (test_store checks seq order on SQLite)."""
    if dialect != "sqlite" or not isinstance(diff, list) or len(diff) != 1:
        return False
    op, _schema, table, column, _info, old, new = diff[0]
    return (
        op == "modify_default"
        and (table, column) in {("audit_events", "seq"), ("rejected_events", "id"), ("alert_delivery_failures", "id"),
                             ("anomalies", "id"), ("detector_models", "id"),
                             ("compliance_issues", "id"), ("dashboard_snapshots", "id")}
        and old is None
        and isinstance(new, Identity)
    )


def _differences(store) -> list:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        diffs = compare_metadata(context, metadata)
    return [d for d in diffs if not _is_sqlite_identity_artifact(d, store.engine.dialect.name)]


def _describe(diff) -> str:
    item = diff[0] if isinstance(diff, list) else diff
    if item[0] == "modify_default":
        _op, _schema, table, column, _info, database, model = item
        shown = lambda d: getattr(getattr(d, "arg", None), "text", d)  # noqa: E731
        return f"{table}.{column} server default: migrated database {shown(database)!r}, schema.py {shown(model)!r}"
    return repr(item)


def test_migrated_schema_matches_the_metadata(store):
    diffs = _differences(store)
    assert diffs == [], f"{store.engine.dialect.name}: migrations and schema.py disagree: " + "; ".join(map(_describe, diffs))


def test_migrated_schema_matches_the_metadata_ignoring_defaults(store):
    """Tables, columns, types, nullability, indexes and unique constraints."""
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_upgrade_is_idempotent_and_at_head(store):
    upgrade(store.engine)
    assert current_revision(store.engine) == HEAD
    names = set(inspect(store.engine).get_table_names())
    assert {"audit_events", "rejected_events", "alert_delivery_failures", "alembic_version", "compliance_state",
            "compliance_issues", "dashboard_state", "dashboard_snapshots"} <= names


def test_txid_default_is_the_inserting_transaction_on_postgresql(pg_store):
    pg_store.ingest_items(texts([fill("o-m")]), batch_id="b", received_at=RECEIVED)
    with pg_store.engine.connect() as conn:
        txid = conn.scalar(text("SELECT txid FROM audit_events"))
        current = conn.scalar(text("SELECT pg_current_xact_id()::text::bigint"))
    assert 0 < txid < current


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET source = 'tampered'",
        "UPDATE audit_events SET payload = '{}'::jsonb WHERE event_type = 'fill'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ],
)
def test_audit_events_is_append_only_on_postgresql(pg_store, statement):
    pg_store.ingest_items(texts([fill("o-a1"), fill("o-a2")]), batch_id="b", received_at=RECEIVED)
    before = [(s.seq, s.raw) for s in pg_store.events()]
    with pytest.raises(DBAPIError, match="append-only"):
        with pg_store.engine.begin() as conn:
            conn.execute(text(statement))
    assert [(s.seq, s.raw) for s in pg_store.events()] == before


def test_rejected_events_can_still_be_inserted_on_postgresql(pg_store):
    result = pg_store.ingest_items(["junk"], batch_id="b", received_at=RECEIVED)
    assert result.rejected == 1 and len(pg_store.rejected()) == 1
