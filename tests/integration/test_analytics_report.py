"""`analytics.report` end to end: a real `celery worker -Q reports` process reads the trail in
PostgreSQL and keeps the report; what it stores equals the report built in the test process."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tests.integration.harness import wait_until
from tradewatch.domain.analytics.report import AnalyticsConfig, build_report, parse_time
from tradewatch.domain.simulation.config import SimulationConfig
from tradewatch.domain.simulation.simulator import TradingSimulator
from tradewatch.storage.database import make_engine
from tradewatch.storage.reports import ReportStore
from tradewatch.storage.store import AuditStore
from tradewatch.storage.trading_data import load_trading_data
from tradewatch.tasks.analytics import QUOTES_LOOKBACK_NS

pytestmark = pytest.mark.integration

START_NS = 1_767_623_400_000_000_000  # 2026-01-05T14:30:00Z


def test_a_requested_report_is_computed_by_the_reports_worker_and_kept(deployment):
    engine = make_engine(deployment.database_url, pool_size=1)
    store, reports = AuditStore(engine), ReportStore(engine)
    events = TradingSimulator(SimulationConfig(seed=5), START_NS).generate(6_000)
    store.ingest_items([e.model_dump_json() for e in events], batch_id="b", received_at=datetime.now(timezone.utc))

    deployment.worker(queues="reports", name="reports").start()
    app = deployment.app()
    start, end = "2026-01-05T14:30:00Z", "2026-01-06T00:00:00Z"
    app.send_task("analytics.report", kwargs={"report_id": "weekly-1", "start": start, "end": end,
                                              "parameters": {"capital": 500000}}, queue="reports")
    # A request that can never succeed is dropped with its reason, not retried forever.
    app.send_task("analytics.report", kwargs={"report_id": "bad", "start": "yesterday", "end": end}, queue="reports")
    wait_until(lambda: reports.get("weekly-1") is not None, 120, 0.2, "the report row")

    stored = reports.get("weekly-1")
    config = AnalyticsConfig(capital=500000)
    start_at, end_at = parse_time(start), parse_time(end)
    local = build_report(load_trading_data(store, start_at.value, end_at.value, quotes_lookback_ns=QUOTES_LOOKBACK_NS),
                         config, start=start_at, end=end_at)
    assert stored.body == local.to_dict()
    assert stored.body["summary"]["round_trips"] > 0
    assert (stored.period_start_ns, stored.period_end_ns) == (start_at.value, end_at.value)
    wait_until(lambda: "analytics.invalid_request" in deployment.workers[0].log(), 30, 0.2, "the invalid request logged")
    assert reports.get("bad") is None
    engine.dispose()
