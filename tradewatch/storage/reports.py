"""The analytics reports table: one row per report a task produced, its body as JSON."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from tradewatch.domain.analytics.report import AnalyticsConfig, build_report
from tradewatch.storage.schema import analytics_reports
from tradewatch.storage.store import AuditStore
from tradewatch.storage.trading_data import load_trading_data


@dataclass(frozen=True)
class StoredReport:
    report_id: str
    kind: str
    period_start_ns: int
    period_end_ns: int
    parameters: dict[str, Any]
    body: dict[str, Any]
    created_at: datetime
    seconds: float


class ReportStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(self, report: StoredReport) -> None:
        """Insert, or replace the row with the same report_id (a redelivered task recomputes
        the same period and writes the same report again)."""
        row = {name: getattr(report, name) for name in StoredReport.__dataclass_fields__}
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(analytics_reports).values(**row)
        statement = statement.on_conflict_do_update(
            index_elements=["report_id"],
            set_={name: statement.excluded[name] for name in row if name != "report_id"},
        )
        with self.engine.begin() as conn:
            conn.execute(statement)

    def get(self, report_id: str) -> StoredReport | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(analytics_reports).where(analytics_reports.c.report_id == report_id)).first()
        return StoredReport(**row._mapping) if row else None

    def recent(self, limit: int = 20) -> list[StoredReport]:
        query = select(analytics_reports).order_by(analytics_reports.c.created_at.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [StoredReport(**row._mapping) for row in conn.execute(query)]


def produce_analytics_report(
    store: AuditStore, reports: ReportStore, *, report_id: str, start_ns: int, end_ns: int,
    config: AnalyticsConfig, now: datetime, quotes_lookback_ns: int = 0,
) -> StoredReport:
    """Read [start_ns, end_ns) from the trail, build the analytics report, keep it under report_id."""
    started = time.perf_counter()
    data = load_trading_data(store, start_ns, end_ns, quotes_lookback_ns=quotes_lookback_ns)
    report = build_report(data, config, start=_utc(start_ns), end=_utc(end_ns))
    stored = StoredReport(
        report_id=report_id, kind="analytics", period_start_ns=start_ns, period_end_ns=end_ns,
        parameters=config.model_dump(mode="json"), body=report.to_dict(), created_at=now,
        seconds=round(time.perf_counter() - started, 3),
    )
    reports.save(stored)
    return stored


def _utc(ns: int) -> pd.Timestamp:
    return pd.Timestamp(ns, unit="ns", tz="UTC")
