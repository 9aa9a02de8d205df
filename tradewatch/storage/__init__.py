"""Persistence: SQLAlchemy schema, Alembic migrations and the AuditStore repository."""

from tradewatch.storage.store import AuditStore, IngestResult, UnknownSignal

__all__ = ["AuditStore", "IngestResult", "UnknownSignal"]
