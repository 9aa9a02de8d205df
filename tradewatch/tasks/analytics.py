"""Analytics tasks (queue ``reports``): the on-demand post-trade analytics report.

A translator: ISO period bounds and report settings in, one call that reads the trail, builds
the report and keeps it in the analytics_reports table under the caller's report_id, a summary
out. Re-running the same report_id (a redelivered message) rewrites the same row.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from tradewatch.domain.analytics.report import AnalyticsConfig, parse_time
from tradewatch.storage.reports import ReportStore, produce_analytics_report
from tradewatch.tasks import wiring
from tradewatch.tasks.app import app, settings
from tradewatch.tasks.logs import get_logger

log = get_logger(__name__)

# Market data read from before the period so regimes and first arrival prices have history.
QUOTES_LOOKBACK_NS = 30 * 86_400 * 10**9


class InvalidReportRequest(ValueError):
    """A report request that can never succeed (retrying would not help)."""


def request_report(start: str, end: str, parameters: dict | None = None, report_id: str | None = None) -> str:
    """Enqueue ``analytics.report`` on the reports queue; returns the report id to look it up by."""
    report_id = report_id or str(uuid.uuid4())
    app.send_task("analytics.report", kwargs={"report_id": report_id, "start": start, "end": end,
                                              "parameters": parameters or {}}, queue="reports")
    return report_id


def _config(parameters: dict) -> AnalyticsConfig:
    try:
        return AnalyticsConfig(**{"timezone": settings.timezone, **parameters})
    except ValidationError as exc:
        raise InvalidReportRequest("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None


@app.task(
    name="analytics.report", bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True,
    autoretry_for=(OperationalError,), retry_backoff=5, retry_backoff_max=60, retry_jitter=True, max_retries=5,
)
def report(self, report_id: str, start: str, end: str, parameters: dict | None = None) -> dict:
    try:
        config = _config(parameters or {})
        start_at = parse_time(start, timezone=config.timezone, what="start")
        end_at = parse_time(end, timezone=config.timezone, what="end")
        if end_at <= start_at:
            raise InvalidReportRequest(f"end {end!r} is not after start {start!r}")
    except ValueError as exc:  # InvalidReportRequest included
        # A request that can never succeed is logged and dropped, not retried forever.
        log.error("analytics.invalid_request", report_id=report_id, reason=str(exc))
        return {"report_id": report_id, "error": str(exc)}
    stored = produce_analytics_report(
        wiring.store(), ReportStore(wiring.engine()), report_id=report_id,
        start_ns=start_at.value, end_ns=end_at.value, config=config, now=datetime.now(timezone.utc),
        quotes_lookback_ns=QUOTES_LOOKBACK_NS,
    )
    summary = stored.body.get("summary", {})
    log.info("analytics.report", report_id=report_id, seconds=stored.seconds, **{k: v for k, v in summary.items() if isinstance(v, int | float)})
    return {"report_id": report_id, "seconds": stored.seconds, **summary}
