"""Analytics reports: each report a task produced, kept as JSON for people and tools to read.

Revision ID: 0003_analytics_reports
Revises: 0002_alert_delivery_failures
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003_analytics_reports"
down_revision = "0002_alert_delivery_failures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "analytics_reports",
        # Chosen by whoever requested the report: a redelivered task writes the same row again.
        sa.Column("report_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("period_start_ns", sa.BigInteger(), nullable=False),
        sa.Column("period_end_ns", sa.BigInteger(), nullable=False),
        sa.Column("parameters", JSONB() if postgres else sa.JSON(), nullable=False),
        # json, not jsonb: the text is kept as written, so sections and columns keep their order.
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("report_id", name="pk_analytics_reports"),
    )
    op.create_index("ix_analytics_reports_created_at", "analytics_reports", ["created_at"])


def downgrade() -> None:
    op.drop_table("analytics_reports")
