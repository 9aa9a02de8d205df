"""Compliance monitor: the breaches found (compliance_issues) and the monitor's cursor and state.

Revision ID: 0005_compliance
Revises: 0004_detection
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005_compliance"
down_revision = "0004_detection"
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    json = JSONB() if postgres else sa.JSON()
    identity = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "compliance_state",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("cursor", sa.String(64), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.Column("events_applied", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_compliance_state"),
    )
    op.create_table(
        "compliance_issues",
        sa.Column("id", identity, sa.Identity(always=False), nullable=False),
        sa.Column("key", sa.String(700), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("occurred_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signal_id", sa.String(200)),
        sa.Column("order_id", sa.String(200)),
        sa.Column("strategy_id", sa.String(200)),
        sa.Column("symbol", sa.String(200)),
        sa.Column("event_ids", json, nullable=False),
        sa.Column("metadata", json, nullable=False),
        sa.Column("anomaly_ids", json, nullable=False),
        sa.Column("policy_version", sa.String(200)),
        sa.Column("policy_hash", sa.String(64)),
        sa.Column("found_by", sa.String(16), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("alert_resolved_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_compliance_issues"),
        sa.UniqueConstraint("key", name="uq_compliance_issues_key"),
    )
    op.create_index("ix_compliance_issues_occurred_at_ns", "compliance_issues", ["occurred_at_ns"])
    op.create_index("ix_compliance_issues_code", "compliance_issues", ["code"])
    op.create_index("ix_compliance_issues_strategy_id", "compliance_issues", ["strategy_id"])
    op.create_index("ix_compliance_issues_order_id", "compliance_issues", ["order_id"])
    op.create_index("ix_compliance_issues_signal_id", "compliance_issues", ["signal_id"])
    op.create_index("ix_compliance_issues_alert_open", "compliance_issues", ["recorded_at"],
                    postgresql_where=sa.text("alert_resolved_at IS NULL"),
                    sqlite_where=sa.text("alert_resolved_at IS NULL"))


def downgrade() -> None:
    op.drop_table("compliance_issues")
    op.drop_table("compliance_state")
