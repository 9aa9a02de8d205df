"""Alert delivery failures: notifications that could not be delivered after their retries.

Revision ID: 0002_alert_delivery_failures
Revises: 0001_audit_trail
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002_alert_delivery_failures"
down_revision = "0001_audit_trail"
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "alert_delivery_failures",
        sa.Column("id", sa.BigInteger() if postgres else sa.Integer(), sa.Identity(always=False), primary_key=True),
        sa.Column("notification_id", sa.String(64), nullable=False),
        sa.Column("receiver", sa.String(200), nullable=False),
        sa.Column("group_key", sa.Text(), nullable=False),
        sa.Column("dedup_key", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("alertnames", JSONB() if postgres else sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("http_status", sa.Integer()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fallback_receiver", sa.String(200)),
        sa.Column("fallback_delivered", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_delivery_failures"),
        # A redelivered task records its failure once.
        sa.UniqueConstraint("notification_id", name="uq_alert_delivery_failures_notification_id"),
    )
    op.create_index("ix_alert_delivery_failures_failed_at", "alert_delivery_failures", ["failed_at"])


def downgrade() -> None:
    op.drop_table("alert_delivery_failures")
