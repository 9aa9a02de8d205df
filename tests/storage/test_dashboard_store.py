"""DashboardStore on both backends: the trail read from SQL as DashboardEvent records (equal to
``from_model`` of the same events), advancing in chunks and across restarts gives the snapshot
of one pass in memory, a call with nothing new, the lock that makes a second caller skip
(PostgreSQL), concurrent callers, the lag facts, the snapshot rows (latest, history, prune)."""

from __future__ import annotations

import json
import math
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from tests.factories import BASE_NS
from tests.storage.consumers import CATCH_UP_SECONDS, ingest, run_concurrently, visible
from tradewatch.domain.compliance import default_policy
from tradewatch.domain.dashboard import RealtimeDashboardAggregator, from_model
from tradewatch.domain.events import (
    AccountEvent,
    AccountPayload,
    SignalEvent,
    SignalPayload,
    SystemEvent,
    SystemPayload,
)
from tradewatch.domain.events.timestamps import ns_to_datetime
from tradewatch.domain.simulation import SimulationConfig, TradingSimulator
from tradewatch.storage.dashboard import DashboardStateUnreadable, DashboardStore, decode_state, encode_state
from tradewatch.storage.database import make_engine
from tradewatch.storage.schema import dashboard_snapshots

S = 1_000_000_000
RECEIVED_NS = BASE_NS + 500 * S + 123_456_000  # microsecond precision, as stored
NOW_NS = BASE_NS + 3600 * S


def aggregator() -> RealtimeDashboardAggregator:
    return RealtimeDashboardAggregator(default_policy())


def scenario(count: int = 150) -> list:
    """Simulated trading (quotes, signals, checks, orders, fills, positions) plus accounts, a
    broker heartbeat and a signal with its generation time, in time order."""
    simulated = TradingSimulator(SimulationConfig(events_per_second=40.0, seed=11), start_ns=BASE_NS).generate(count)
    extra = [
        AccountEvent(occurred_at=BASE_NS + 1, source="engine-1",
                     payload=AccountPayload(equity=Decimal(1000000), cash=Decimal(400000),
                                            buying_power=Decimal(2000000))),
        SystemEvent(occurred_at=BASE_NS + 2, source="engine-1",
                    payload=SystemPayload(component="order-router", level="info", message="connected")),
        SignalEvent(occurred_at=BASE_NS + 3, source="engine-1", strategy_id="momentum", symbol="AAPL", signal_id="s-x",
                    payload=SignalPayload(direction="long", confidence=0.6, generation_seconds=0.0125)),
        AccountEvent(occurred_at=BASE_NS + 2 * S, source="engine-1",
                     payload=AccountPayload(equity=Decimal("1000250.5"), cash=Decimal(399000))),
    ]
    return sorted(simulated + extra, key=lambda event: event.occurred_at)


def items_of(events: list) -> list[str]:
    return [event.model_dump_json() for event in events]


def reference(events: list, now_ns: int = NOW_NS) -> dict:
    """The snapshot of one pass over ``events`` in memory."""
    rules = aggregator()
    state = rules.new_state()
    rules.apply(events, state)
    return rules.snapshot(state, now_ns).to_dict()


@pytest.fixture
def dashboard(store) -> DashboardStore:
    return DashboardStore(store.engine)


def stored(store, events: list, received_ns: int = RECEIVED_NS) -> list:
    """``events`` ingested in one batch, waited past PostgreSQL's watermark."""
    ingest(store, items_of(events), received_ns)
    visible(DashboardStore(store.engine).follow_events, len(events))
    return events


def snapshot_rows(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(dashboard_snapshots)).scalar_one()


# ------------------------------------------------------------------ reading the trail


def test_follow_events_equals_from_model_of_the_same_stored_events(store, dashboard):
    events = stored(store, scenario())
    records, cursor = dashboard.follow_events(None, limit=1000)
    trail, expected_cursor = store.follow(None, limit=1000)
    assert records == [from_model(s.event) for s in trail]
    assert cursor == expected_cursor
    assert {r.event_type for r in records} >= {"market_data", "order", "fill", "position_update", "account", "system",
                                               "signal"}
    account = next(r for r in records if r.event_type == "account")
    assert (account.equity, account.cash, account.buying_power) == (1_000_000.0, 400_000.0, 2_000_000.0)
    signal = next(r for r in records if r.event_type == "signal" and r.generation_seconds == 0.0125)
    assert signal.direction == "long"
    assert len(records) == len(events)


# ------------------------------------------------------------------ advancing


@pytest.mark.parametrize("limit", [1, 3, 5])
def test_advancing_in_chunks_gives_the_snapshot_of_one_pass(store, dashboard, limit):
    events = stored(store, scenario())
    run = dashboard.advance(aggregator(), NOW_NS, limit=limit)
    assert not run.skipped and run.caught_up
    assert run.events == len(events) and run.chunks == math.ceil(len(events) / limit)
    assert run.snapshot == reference(events)
    assert run.events_applied == len(events) == dashboard.state()[2]
    assert dashboard.latest_snapshot()["snapshot"] == run.snapshot


def test_a_restart_continues_identically(store):
    """Each call a fresh store and aggregator (a new worker process), a few events at a time."""
    events = stored(store, scenario())
    calls = 0
    while True:
        run = DashboardStore(store.engine).advance(aggregator(), NOW_NS, limit=4, max_events=7)
        calls += 1
        if run.caught_up:
            break
    assert calls == math.ceil((len(events) + 1) / 7)
    assert run.snapshot == reference(events)
    assert snapshot_rows(store.engine) == calls  # one row per call, the last call's the latest


def test_a_call_with_nothing_new_changes_nothing_but_writes_a_history_row(store, dashboard):
    events = stored(store, scenario(40))
    first = dashboard.advance(aggregator(), NOW_NS)
    before = dashboard.state()
    again = dashboard.advance(aggregator(), NOW_NS)
    assert again.events == 0 and again.chunks == 0 and again.caught_up and not again.skipped
    assert dashboard.state() == before
    assert again.snapshot == first.snapshot == reference(events)
    assert again.snapshot_id != first.snapshot_id and snapshot_rows(store.engine) == 2
    later = dashboard.advance(aggregator(), NOW_NS + 5 * S)
    assert later.snapshot == reference(events, NOW_NS + 5 * S)


def test_the_history_takes_one_snapshot_per_interval_while_every_call_returns_the_latest(store, dashboard):
    events = stored(store, scenario(40))
    first = dashboard.advance(aggregator(), NOW_NS, history_interval_seconds=60)
    soon = dashboard.advance(aggregator(), NOW_NS + 30 * S, history_interval_seconds=60)
    later = dashboard.advance(aggregator(), NOW_NS + 60 * S, history_interval_seconds=60)
    assert first.snapshot_id is not None and soon.snapshot_id is None and later.snapshot_id is not None
    assert soon.snapshot == reference(events, NOW_NS + 30 * S)
    assert snapshot_rows(store.engine) == 2


def test_new_events_after_a_snapshot_are_folded_in_by_the_next_call(store, dashboard):
    events = scenario()
    stored(store, events[:60])
    dashboard.advance(aggregator(), NOW_NS)
    ingest(store, items_of(events[60:]), RECEIVED_NS + S)
    visible(dashboard.follow_events, len(events))
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while dashboard.state()[2] < len(events) and time.monotonic() < deadline:
        run = dashboard.advance(aggregator(), NOW_NS)
    assert run.snapshot == reference(events)


def test_an_empty_trail_gives_the_empty_snapshot(store, dashboard):
    run = dashboard.advance(aggregator(), NOW_NS)
    assert run.events == 0 and run.events_applied == 0 and run.cursor == dashboard.state()[0].to_token()
    assert run.snapshot == reference([])
    assert run.last_received_at_ns is None and run.trail_last_received_at_ns is None and run.lag_seconds is None


# ------------------------------------------------------------------ the lock


def test_a_caller_skips_at_once_while_another_holds_the_row_on_postgresql(pg_store):
    events = stored(pg_store, scenario(40))
    dashboard = DashboardStore(pg_store.engine)
    dashboard.advance(aggregator(), NOW_NS, max_events=10)  # creates the row
    rows = snapshot_rows(pg_store.engine)
    holder = make_engine(pg_store.engine.url.render_as_string(hide_password=False), pool_size=1)
    try:
        with holder.begin() as conn:
            conn.execute(text("SELECT * FROM dashboard_state WHERE name = 'default' FOR UPDATE"))
            started = time.monotonic()
            run = dashboard.advance(aggregator(), NOW_NS)
            assert time.monotonic() - started < 2.0
            assert run.skipped and run.events == 0 and run.snapshot is None and run.lag_seconds is None
            assert snapshot_rows(pg_store.engine) == rows
    finally:
        holder.dispose()
    run = dashboard.advance(aggregator(), NOW_NS)
    assert not run.skipped and run.snapshot == reference(events)


def _concurrent_callers(store, total: int, timeout: float) -> tuple[list, list]:
    """Two workers calling ``advance`` two events at a time until the state counts ``total``;
    (their exceptions, every run)."""
    runs: list = []
    lock = threading.Lock()

    def work(engine) -> None:
        dashboard = DashboardStore(engine)
        deadline = time.monotonic() + CATCH_UP_SECONDS
        while dashboard.state()[2] < total and time.monotonic() < deadline:
            run = dashboard.advance(aggregator(), NOW_NS, limit=2, max_events=2)
            with lock:
                runs.append(run)

    url = store.engine.url.render_as_string(hide_password=False)
    return run_concurrently(url, work, timeout), runs


def test_two_concurrent_callers_on_postgresql_apply_each_event_once(pg_store):
    events = stored(pg_store, scenario())
    errors, runs = _concurrent_callers(pg_store, len(events), timeout=CATCH_UP_SECONDS + 30)
    assert errors == []
    assert sum(run.events for run in runs) == len(events)  # nothing applied twice, nothing lost
    assert all(run.snapshot is None for run in runs if run.skipped)
    final = DashboardStore(pg_store.engine).advance(aggregator(), NOW_NS)
    assert final.events == 0 and final.snapshot == reference(events)


def test_two_concurrent_callers_on_sqlite_are_serialised_by_its_single_writer(sqlite_store):
    events = stored(sqlite_store, scenario(60))
    errors, runs = _concurrent_callers(sqlite_store, len(events), timeout=60)
    assert errors == [] and not any(run.skipped for run in runs)
    assert sum(run.events for run in runs) == len(events)
    assert DashboardStore(sqlite_store.engine).advance(aggregator(), NOW_NS).snapshot == reference(events)


# ------------------------------------------------------------------ lag facts and rows


def test_the_lag_is_the_trail_newest_receipt_minus_the_last_folded_in(store, dashboard):
    events = scenario(40)
    stored(store, events[:20], RECEIVED_NS)
    ingest(store, items_of(events[20:]), RECEIVED_NS + 3 * S)
    visible(dashboard.follow_events, len(events))
    behind = dashboard.advance(aggregator(), NOW_NS, max_events=20)
    assert behind.events == 20 and not behind.caught_up
    assert behind.last_received_at_ns == RECEIVED_NS and behind.trail_last_received_at_ns == RECEIVED_NS + 3 * S
    assert behind.lag_seconds == pytest.approx(3.0)
    row = dashboard.latest_snapshot()
    assert row["last_received_at"] == ns_to_datetime(RECEIVED_NS)
    assert row["trail_last_received_at"] == ns_to_datetime(RECEIVED_NS + 3 * S)
    assert row["events_applied"] == 20 and row["as_of_ns"] == NOW_NS
    caught_up = dashboard.advance(aggregator(), NOW_NS)
    assert caught_up.lag_seconds == 0.0 and caught_up.last_received_at_ns == RECEIVED_NS + 3 * S
    assert caught_up.to_dict()["lag_seconds"] == 0.0 and "snapshot" not in caught_up.to_dict()


def test_latest_snapshot_history_and_prune(store, dashboard):
    events = stored(store, scenario(30))
    assert dashboard.latest_snapshot() is None
    times = [NOW_NS + k * 2 * S for k in range(4)]
    ids = [dashboard.advance(aggregator(), t).snapshot_id for t in times]
    latest = dashboard.latest_snapshot()
    assert latest["id"] == ids[-1] and latest["as_of_ns"] == times[-1] and latest["taken_at"] == ns_to_datetime(times[-1])
    assert latest["snapshot"] == reference(events, times[-1]) and latest["last_event_ns"] == events[-1].occurred_at
    window = dashboard.history(ns_to_datetime(times[1]), ns_to_datetime(times[3]))
    assert [row["id"] for row in window] == ids[1:3]
    assert [row["id"] for row in dashboard.history()] == ids
    assert [row["id"] for row in dashboard.history(limit=2)] == ids[2:]  # the newest two, oldest first
    assert dashboard.prune(ns_to_datetime(times[2])) == 2
    assert [row["id"] for row in dashboard.history()] == ids[2:]
    assert dashboard.prune(ns_to_datetime(times[0]) - timedelta(days=1)) == 0


# ------------------------------------------------------------------ the stored state


def test_state_encoding_round_trips_compressed_or_plain_json():
    rules = aggregator()
    state = rules.new_state()
    rules.apply(scenario(80), state)
    encoded = encode_state(state)
    assert decode_state(encoded).to_dict() == state.to_dict()
    assert decode_state(json.dumps(state.to_dict()).encode()).to_dict() == state.to_dict()


def test_an_unreadable_state_stops_the_pipeline_with_how_to_rebuild_it(store, dashboard):
    events = stored(store, scenario(10))
    dashboard.advance(aggregator(), NOW_NS)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE dashboard_state SET state = :junk"), {"junk": b"\x00not zlib"})
    with pytest.raises(DashboardStateUnreadable, match="UPDATE dashboard_state SET state = '', cursor = ''"):
        dashboard.advance(aggregator(), NOW_NS)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE dashboard_state SET state = :empty, cursor = ''"), {"empty": b""})
    rebuilt = dashboard.advance(aggregator(), NOW_NS)
    assert rebuilt.events == len(events) and rebuilt.snapshot == reference(events)
