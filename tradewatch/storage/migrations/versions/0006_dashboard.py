"""Dashboard snapshots: the snapshot pipeline's cursor and state, and the snapshots it took.

Revision ID: 0006_dashboard
Revises: 0005_compliance
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_dashboard"
down_revision = "0005_compliance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    identity = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "dashboard_state",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("cursor", sa.String(64), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.Column("events_applied", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_dashboard_state"),
    )
    op.create_table(
        "dashboard_snapshots",
        sa.Column("id", identity, sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("as_of_ns", sa.BigInteger(), nullable=False),
        sa.Column("last_event_ns", sa.BigInteger()),
        sa.Column("last_received_at", sa.DateTime(timezone=True)),
        sa.Column("trail_last_received_at", sa.DateTime(timezone=True)),
        sa.Column("events_applied", sa.BigInteger(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dashboard_snapshots"),
    )
    op.create_index("ix_dashboard_snapshots_taken_at", "dashboard_snapshots", ["taken_at"])


def downgrade() -> None:
    op.drop_table("dashboard_snapshots")
    op.drop_table("dashboard_state")
