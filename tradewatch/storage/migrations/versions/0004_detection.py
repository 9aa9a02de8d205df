"""Anomaly detection: the anomalies found, the pipeline's cursor and state, the trained models.

Revision ID: 0004_detection
Revises: 0003_analytics_reports
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004_detection"
down_revision = "0003_analytics_reports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    json = JSONB() if postgres else sa.JSON()
    identity = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "anomalies",
        sa.Column("id", identity, sa.Identity(always=False), nullable=False),
        sa.Column("key", sa.String(600), nullable=False),
        sa.Column("detector", sa.String(200), nullable=False),
        sa.Column("anomaly_type", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("metric", sa.String(100), nullable=False),
        sa.Column("observed", sa.Float()),
        sa.Column("baseline", sa.Float()),
        sa.Column("score", sa.Float()),
        sa.Column("entity_kind", sa.String(32), nullable=False),
        sa.Column("entity", sa.String(200), nullable=False),
        sa.Column("symbol", sa.String(200)),
        sa.Column("strategy_id", sa.String(200)),
        sa.Column("event_ids", json, nullable=False),
        sa.Column("context", json, nullable=False),
        sa.Column("detected_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolved_at_ns", sa.BigInteger()),
        sa.Column("resolved_reason", sa.String(32)),
        sa.PrimaryKeyConstraint("id", name="pk_anomalies"),
    )
    op.create_index("uq_anomalies_open_key", "anomalies", ["key"], unique=True,
                    postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'"))
    op.create_index("ix_anomalies_detected_at_ns", "anomalies", ["detected_at_ns"])
    op.create_index("ix_anomalies_status_detected_at_ns", "anomalies", ["status", "detected_at_ns"])
    op.create_table(
        "detector_state",
        sa.Column("pipeline", sa.String(100), nullable=False),
        sa.Column("cursor", sa.String(64), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.Column("events_applied", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pipeline", name="pk_detector_state"),
    )
    op.create_table(
        "detector_models",
        sa.Column("id", identity, sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("algorithm", sa.String(32), nullable=False),
        sa.Column("trained_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_start_ns", sa.BigInteger(), nullable=False),
        sa.Column("window_end_ns", sa.BigInteger(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("features", json, nullable=False),
        sa.Column("library_version", sa.String(64), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("details", json, nullable=False),
        sa.Column("artifact", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_detector_models"),
    )
    op.create_index("ix_detector_models_name_trained_at", "detector_models", ["name", "trained_at"])


def downgrade() -> None:
    op.drop_table("detector_models")
    op.drop_table("detector_state")
    op.drop_table("anomalies")
