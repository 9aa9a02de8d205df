"""SQLAlchemy 2 schema of the audit trail. PostgreSQL in production, SQLite when embedded.

audit_events is append-only: rows are inserted, never updated or deleted (the store has no
such method). Columns:

- seq: ingest order, a bigint identity.
- txid: the inserting transaction's id (PostgreSQL ``pg_current_xact_id()``, 0 on SQLite);
  ``follow()`` uses it to never skip a row another worker commits late (see store.follow).
- occurred_at_ns: integer nanoseconds since the epoch, the exact event time; occurred_at is
  the same instant truncated to microseconds, for people querying with SQL.
- payload: the validated payload, for queries: declared decimals as exact decimal strings
  (``(payload->>'price')::numeric``), unknown fields as sent, absent optional fields omitted.
  Serialised by the worker (pydantic-core); having PostgreSQL extract it from raw instead cost
  ~10 µs of database CPU per event. raw: the event's JSON text exactly as received, kept as
  evidence; every field can be re-derived from it.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import JSON, TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

JsonDocument = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator):
    """An aware UTC datetime on every backend.

    SQLite keeps no offset: values are converted to UTC before they are stored and come back
    marked UTC, so an instant never shifts by the writer's offset. Naive values are refused.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware datetime (UTC)")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


class current_txid(FunctionElement):
    """The inserting transaction's id as bigint on PostgreSQL (0 elsewhere: SQLite has one writer)."""

    type = BigInteger()
    inherit_cache = True


@compiles(current_txid)
def _current_txid_default(element, compiler, **kw) -> str:
    return "0"


@compiles(current_txid, "postgresql")
def _current_txid_postgresql(element, compiler, **kw) -> str:
    return "(pg_current_xact_id()::text::bigint)"
EventId = String(36).with_variant(UUID(as_uuid=False), "postgresql")

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), Identity(always=False), primary_key=True),
    Column("txid", BigInteger, nullable=False, server_default=current_txid()),
    Column("event_id", EventId, nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("occurred_at_ns", BigInteger, nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("source", String(200), nullable=False),
    Column("strategy_id", String(200)),
    Column("symbol", String(200)),
    Column("signal_id", String(200)),
    Column("order_id", String(200)),
    Column("schema_version", Integer, nullable=False),
    Column("payload", JsonDocument, nullable=False),
    Column("raw", Text, nullable=False),
    UniqueConstraint("event_id"),
    Index(None, "occurred_at_ns", postgresql_using="brin"),
    Index(None, "symbol", "occurred_at_ns"),
    Index(None, "strategy_id", "occurred_at_ns"),
    Index(None, "signal_id", postgresql_where=text("signal_id IS NOT NULL"), sqlite_where=text("signal_id IS NOT NULL")),
    Index(None, "order_id", postgresql_where=text("order_id IS NOT NULL"), sqlite_where=text("order_id IS NOT NULL")),
    Index(None, "txid", "seq"),
)

rejected_events = Table(
    "rejected_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), Identity(always=False), primary_key=True),
    Column("batch_id", String(64), nullable=False),
    Column("position", Integer, nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("code", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("event_id", String(64)),
    Column("event_type", String(64)),
    Column("raw", Text, nullable=False),
    # A redelivered batch records its rejections once.
    UniqueConstraint("batch_id", "position"),
    Index(None, "received_at"),
)

alert_delivery_failures = Table(
    "alert_delivery_failures",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), Identity(always=False), primary_key=True),
    Column("notification_id", String(64), nullable=False),
    Column("receiver", String(200), nullable=False),
    Column("group_key", Text, nullable=False),
    Column("dedup_key", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("alertnames", JsonDocument, nullable=False),
    Column("error", Text, nullable=False),
    Column("http_status", Integer),
    Column("attempts", Integer, nullable=False),
    Column("failed_at", UtcDateTime(), nullable=False),
    Column("fallback_receiver", String(200)),
    Column("fallback_delivered", Boolean, nullable=False),
    UniqueConstraint("notification_id"),
    Index(None, "failed_at"),
)

analytics_reports = Table(
    "analytics_reports",
    metadata,
    # Chosen by whoever requested the report: a redelivered task writes the same row again.
    Column("report_id", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("period_start_ns", BigInteger, nullable=False),
    Column("period_end_ns", BigInteger, nullable=False),
    Column("parameters", JsonDocument, nullable=False),
    # json, not jsonb: the text is kept as written, so sections and columns keep their order.
    Column("body", JSON, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("seconds", Float, nullable=False),
    Index(None, "created_at"),
)

# One row per anomaly (detection.anomaly.Anomaly), opened by the detection pipeline and updated
# while it stays open (last_seen_at_ns, occurrences, the worst severity and score), then
# resolved. At most one open row per key (detector, metric, entity).
anomalies = Table(
    "anomalies",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), Identity(always=False), primary_key=True),
    Column("key", String(600), nullable=False),
    Column("detector", String(200), nullable=False),
    Column("anomaly_type", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("metric", String(100), nullable=False),
    Column("observed", Float),
    Column("baseline", Float),
    Column("score", Float),
    Column("entity_kind", String(32), nullable=False),
    Column("entity", String(200), nullable=False),
    Column("symbol", String(200)),
    Column("strategy_id", String(200)),
    Column("event_ids", JsonDocument, nullable=False),
    Column("context", JsonDocument, nullable=False),
    Column("detected_at_ns", BigInteger, nullable=False),
    Column("detected_at", UtcDateTime(), nullable=False),
    Column("last_seen_at_ns", BigInteger, nullable=False),
    Column("occurrences", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("resolved_at_ns", BigInteger),
    Column("resolved_reason", String(32)),
    Index("uq_anomalies_open_key", "key", unique=True, postgresql_where=text("status = 'open'"),
          sqlite_where=text("status = 'open'")),
    Index(None, "detected_at_ns"),
    Index(None, "status", "detected_at_ns"),
)

# The detection pipeline's position in the trail and its detectors' state, written in the
# same transaction as the anomalies they produced: a redelivered batch finds the cursor past
# it, and a restart resumes with the windows it had.
detector_state = Table(
    "detector_state",
    metadata,
    Column("pipeline", String(100), primary_key=True),
    Column("cursor", String(64), nullable=False),
    Column("state", LargeBinary, nullable=False),
    Column("events_applied", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# Trained scikit-learn models: what was trained, on which window and features, with which
# library version, and the score threshold calibrated on the training scores.
detector_models = Table(
    "detector_models",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), Identity(always=False), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("algorithm", String(32), nullable=False),
    Column("trained_at", UtcDateTime(), nullable=False),
    Column("window_start_ns", BigInteger, nullable=False),
    Column("window_end_ns", BigInteger, nullable=False),
    Column("samples", Integer, nullable=False),
    Column("features", JsonDocument, nullable=False),
    Column("library_version", String(64), nullable=False),
    Column("threshold", Float, nullable=False),
    Column("details", JsonDocument, nullable=False),
    Column("artifact", LargeBinary, nullable=False),
    Index(None, "name", "trained_at"),
)

# The compliance monitor's position in the trail and its rule engine's state
# (domain.compliance.engine.ComplianceState), written in the same transaction as the issues they
# produced, like detector_state.
compliance_state = Table(
    "compliance_state",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("cursor", String(64), nullable=False),
    Column("state", LargeBinary, nullable=False),
    Column("events_applied", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# One row per compliance breach (domain.compliance.issue.ComplianceIssue), identified by its key:
# the incremental monitor and the beat re-check both insert with ON CONFLICT (key) DO NOTHING, so
# a breach is recorded once whoever finds it first. Facts, never updated, except two
# bookkeeping columns: anomaly_ids (anomalies linked since, by the re-check) and
# alert_resolved_at (when the breach's alert was resolved, see alerting.converters.compliance).
compliance_issues = Table(
    "compliance_issues",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), Identity(always=False), primary_key=True),
    Column("key", String(700), nullable=False),
    Column("code", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("occurred_at_ns", BigInteger, nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("signal_id", String(200)),
    Column("order_id", String(200)),
    Column("strategy_id", String(200)),
    Column("symbol", String(200)),
    Column("event_ids", JsonDocument, nullable=False),
    Column("metadata", JsonDocument, nullable=False),
    Column("anomaly_ids", JsonDocument, nullable=False),
    Column("policy_version", String(200)),
    Column("policy_hash", String(64)),
    Column("found_by", String(16), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Column("alert_resolved_at", UtcDateTime()),
    UniqueConstraint("key"),
    Index(None, "occurred_at_ns"),
    Index(None, "code"),
    Index(None, "strategy_id"),
    Index(None, "order_id"),
    Index(None, "signal_id"),
    # The beat tick's "alerts to resolve": issues recorded long enough ago whose alert is open.
    Index("ix_compliance_issues_alert_open", "recorded_at", postgresql_where=text("alert_resolved_at IS NULL"),
          sqlite_where=text("alert_resolved_at IS NULL")),
)

# The dashboard snapshot pipeline's position in the trail and its aggregator's state
# (domain.dashboard.aggregator.DashboardState, JSON + zlib), like compliance_state.
dashboard_state = Table(
    "dashboard_state",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("cursor", String(64), nullable=False),
    Column("state", LargeBinary, nullable=False),
    Column("events_applied", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# One row per snapshot the pipeline took (storage.dashboard.DashboardStore.advance), kept for
# the retention (prune). taken_at is the snapshot's own time (as_of_ns, to the microsecond);
# last_received_at the receipt time of the last event folded in (the cursor's row), and
# trail_last_received_at that of the trail's newest row when it was taken: their difference is
# how far the snapshot lagged the trail. json, not jsonb: written every tick, read whole.
dashboard_snapshots = Table(
    "dashboard_snapshots",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), Identity(always=False), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("taken_at", UtcDateTime(), nullable=False),
    Column("as_of_ns", BigInteger, nullable=False),
    Column("last_event_ns", BigInteger),
    Column("last_received_at", UtcDateTime()),
    Column("trail_last_received_at", UtcDateTime()),
    Column("events_applied", BigInteger, nullable=False),
    Column("snapshot", JSON, nullable=False),
    Index(None, "taken_at"),
)
