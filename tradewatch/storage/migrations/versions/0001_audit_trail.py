"""Audit trail: audit_events and rejected_events.

Revision ID: 0001_audit_trail
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0001_audit_trail"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    big_id = sa.BigInteger() if postgres else sa.Integer()
    json_type = JSONB() if postgres else sa.JSON()
    # xid8 of the inserting transaction, as bigint; follow() compares it with the snapshot xmin.
    txid_default = sa.text("(pg_current_xact_id()::text::bigint)") if postgres else sa.text("0")
    op.create_table(
        "audit_events",
        sa.Column("seq", big_id, sa.Identity(always=False), primary_key=True),
        sa.Column("txid", sa.BigInteger(), nullable=False, server_default=txid_default),
        sa.Column("event_id", UUID(as_uuid=False) if postgres else sa.String(36), nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("occurred_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("strategy_id", sa.String(200)),
        sa.Column("symbol", sa.String(200)),
        sa.Column("signal_id", sa.String(200)),
        sa.Column("order_id", sa.String(200)),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("payload", json_type, nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_events"),
        sa.UniqueConstraint("event_id", name="uq_audit_events_event_id"),
    )
    # Rows arrive roughly in event-time order: a BRIN index serves time-range scans for a fraction
    # of a btree's cost on every insert (measured: ~2 ms per 1,000-row batch for each btree).
    op.create_index("ix_audit_events_occurred_at_ns", "audit_events", ["occurred_at_ns"], postgresql_using="brin")
    op.create_index("ix_audit_events_symbol_occurred_at_ns", "audit_events", ["symbol", "occurred_at_ns"])
    op.create_index("ix_audit_events_strategy_id_occurred_at_ns", "audit_events", ["strategy_id", "occurred_at_ns"])
    op.create_index(
        "ix_audit_events_signal_id", "audit_events", ["signal_id"],
        postgresql_where=sa.text("signal_id IS NOT NULL"), sqlite_where=sa.text("signal_id IS NOT NULL"),
    )
    op.create_index(
        "ix_audit_events_order_id", "audit_events", ["order_id"],
        postgresql_where=sa.text("order_id IS NOT NULL"), sqlite_where=sa.text("order_id IS NOT NULL"),
    )
    op.create_index("ix_audit_events_txid_seq", "audit_events", ["txid", "seq"])

    op.create_table(
        "rejected_events",
        sa.Column("id", big_id, sa.Identity(always=False), primary_key=True),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("event_id", sa.String(64)),
        sa.Column("event_type", sa.String(64)),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rejected_events"),
        sa.UniqueConstraint("batch_id", "position", name="uq_rejected_events_batch_id_position"),
    )
    op.create_index("ix_rejected_events_received_at", "rejected_events", ["received_at"])

    if postgres:
        # Append-only: the application role never needs UPDATE or DELETE; refuse them outright.
        op.execute(
            """
            CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP;
            END $$;
            """
        )
        op.execute(
            "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    op.drop_table("rejected_events")
    op.drop_table("audit_events")
