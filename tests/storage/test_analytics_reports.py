"""The analytics read the audit trail through its API, and keep their reports in PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import pytest

from tradewatch.domain.analytics.report import AnalyticsConfig
from tradewatch.domain.simulation.config import SimulationConfig
from tradewatch.domain.simulation.simulator import TradingSimulator
from tradewatch.storage.reports import ReportStore, produce_analytics_report
from tradewatch.storage.trading_data import load_trading_data

START_NS = 1_767_623_400_000_000_000  # 2026-01-05T14:30:00Z
NOW = datetime(2026, 1, 6, tzinfo=timezone.utc)


@pytest.fixture
def trail(store):
    events = TradingSimulator(SimulationConfig(seed=11), START_NS).generate(12_000)
    for position in range(0, len(events), 3_000):
        store.ingest_items([e.model_dump_json() for e in events[position:position + 3_000]],
                           batch_id=f"b{position}", received_at=NOW)
    return store, events


def test_the_trail_gives_every_fill_order_signal_and_quote_of_the_period(trail):
    store, events = trail
    end_ns = max(e.occurred_at for e in events) + 1
    data = load_trading_data(store, START_NS, end_ns)
    kinds = Counter(e.event_type for e in events)
    assert len(data.fills) == kinds["fill"]
    assert len(data.signals) == kinds["signal"]
    assert len(data.quotes) == kinds["market_data"]
    assert len(data.account) == kinds["account"]
    assert len(data.orders) == len({e.order_id for e in events if e.event_type == "order"})


def test_a_report_is_built_from_the_trail_kept_by_id_and_rewritten_on_redelivery(trail):
    store, events = trail
    end_ns = max(e.occurred_at for e in events) + 1
    reports = ReportStore(store.engine)
    config = AnalyticsConfig(timezone="America/New_York", capital=1_000_000)
    first = produce_analytics_report(store, reports, report_id="r-1", start_ns=START_NS, end_ns=end_ns, config=config, now=NOW)
    summary = first.body["summary"]
    assert summary["fills"] == sum(e.event_type == "fill" for e in events)
    assert summary["round_trips"] > 0
    assert first.body["input"]["dropped_rows"] == {name: 0 for name in first.body["input"]["dropped_rows"]}
    for name, difference in first.body["attribution"]["reconciliation"].items():
        assert abs(difference) < 0.005, name

    again = produce_analytics_report(store, reports, report_id="r-1", start_ns=START_NS, end_ns=end_ns, config=config, now=NOW)
    stored = reports.get("r-1")
    assert stored.body == again.body == first.body
    assert stored.parameters["timezone"] == "America/New_York"
    assert [r.report_id for r in reports.recent()] == ["r-1"]
    assert reports.get("nope") is None
