"""The alert delivery failures table: one row per notification that could not be delivered."""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from tradewatch.alerting.delivery import DeliveryFailure
from tradewatch.storage.schema import alert_delivery_failures


class AlertFailureStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, failure: DeliveryFailure) -> None:
        """Insert once per notification (a redelivered task's second record is ignored)."""
        row = asdict(failure)
        row["alertnames"] = list(failure.alertnames)
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(alert_delivery_failures).values(**row).on_conflict_do_nothing(
            index_elements=["notification_id"]
        )
        with self.engine.begin() as conn:
            conn.execute(statement)

    def recent(self, limit: int = 50) -> list[dict]:
        query = select(alert_delivery_failures).order_by(alert_delivery_failures.c.failed_at.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]
