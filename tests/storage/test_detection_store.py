"""DetectionStore on both backends: the event frame read from SQL, the pipeline applied in
transactions with its cursor, state and anomalies, redelivery, restarts, concurrent workers."""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal
from functools import partial

import pandas as pd
import pytest
from sqlalchemy import select, text

from tradewatch.domain.detection.event_frame import EVENT_COLUMNS, event_frame
from tradewatch.domain.detection.pipeline import DetectionPipeline, PipelineConfig
from tradewatch.domain.events import (
    FillEvent,
    FillPayload,
    MarketDataEvent,
    MarketDataPayload,
    OrderEvent,
    OrderPayload,
    PositionUpdateEvent,
    PositionUpdatePayload,
)
from tradewatch.domain.events.timestamps import ns_to_datetime
from tradewatch.domain.trail import FollowCursor
from tradewatch.storage.database import make_engine
from tradewatch.storage.detection import DetectionStore, DetectorStateError
from tradewatch.storage.schema import anomalies, detector_state
from tradewatch.storage.store import AuditStore

from tests.factories import BASE_NS, fill, market_data, order, signal
from tests.storage import consumers
from tests.storage.consumers import CATCH_UP_SECONDS, apply_in_chunks, run_concurrently, second_database

S = 1_000_000_000
RECEIVED_NS = BASE_NS + 500 * S

PIPELINE = """
quiet_seconds: 300
extractor: {rejection_window: 4}
detectors:
  - {kind: slippage_spike, name: slippage, threshold_bps: 50, critical_bps: 200, by: symbol}
  - {kind: rejection_spike, name: rejections, threshold: 0.5, clear_below: 0.2, min_orders: 4, by: strategy_id}
  - {kind: stale_feed, name: feed, max_silence_seconds: 30}
"""


def pipeline() -> DetectionPipeline:
    return DetectionPipeline(PipelineConfig.from_yaml_text(PIPELINE, "test"))


# ------------------------------------------------------------------ the scenario


def _order(status: str, at_s: float, n: int) -> str:
    return OrderEvent(occurred_at=BASE_NS + int(at_s * S), source="engine-1", strategy_id="mm-1", symbol="AAPL",
                      order_id=f"o-{status}-{n}",
                      payload=OrderPayload(side="buy", quantity=Decimal(10), order_type="market", status=status)
                      ).model_dump_json()


def _fill(at_s: float, price: str, n: int) -> str:
    return FillEvent(occurred_at=BASE_NS + int(at_s * S), source="engine-1", strategy_id="mm-1", symbol="AAPL",
                     order_id=f"o-fill-{n}",
                     payload=FillPayload(fill_id=f"f{n}", side="buy", quantity=Decimal(10), price=Decimal(price),
                                         arrival_price=Decimal("100.00"))).model_dump_json()


def _quote(at_s: float) -> str:
    return MarketDataEvent(occurred_at=BASE_NS + int(at_s * S), source="engine-1", symbol="AAPL",
                           payload=MarketDataPayload(bid=Decimal("99.99"), ask=Decimal("100.01"))).model_dump_json()


def scenario() -> list[str]:
    """Four rejections (t = 1..4 s) open the rejection-rate condition (rate 1.0 > 0.5 after
    min_orders 4); fills at 10 s (60 bps, warning) and 20 s (250 bps > critical_bps: escalates)
    make one slippage anomaly; four acceptances (30..33 s) bring the rate of the last 4 to 0.0
    < 0.2: cleared at 33 s; a fill at 400 s (80 bps) finds the slippage anomaly quiet since
    20 + 300 = 320 s: resolved then, and opens a new one."""
    return [
        _quote(0),
        *[_order("rejected", 1 + k, k) for k in range(4)],
        _fill(10, "100.60", 1),
        _fill(20, "102.50", 2),
        *[_order("accepted", 30 + k, k) for k in range(4)],
        _fill(400, "100.80", 3),
        _quote(401),
    ]


SLIPPAGE_KEY = "slippage|slippage_bps|symbol=AAPL"
REJECTION_KEY = "rejections|rejection_rate|strategy_id=mm-1"
EXPECTED = [  # (key, severity, status, detected s, last seen s, occurrences, observed, baseline, score, resolved s, reason)
    (REJECTION_KEY, "warning", "resolved", 4, 4, 1, 1.0, 0.5, 2.0, 33, "cleared"),
    (SLIPPAGE_KEY, "critical", "resolved", 10, 20, 2, 60.0, 50.0, 5.0, 320, "quiet"),
    (SLIPPAGE_KEY, "warning", "open", 400, 400, 1, 80.0, 50.0, 1.6, None, None),
]


def rows(engine) -> list[tuple]:
    a = anomalies.c
    query = select(a.key, a.severity, a.status, a.detected_at_ns, a.last_seen_at_ns, a.occurrences, a.observed,
                   a.baseline, a.score, a.resolved_at_ns, a.resolved_reason).order_by(a.detected_at_ns, a.key)
    with engine.connect() as conn:
        found = []
        for row in conn.execute(query):
            (key, severity, status, detected, last, occurrences, observed, baseline, score, resolved, reason) = row
            found.append((key, severity, status, (detected - BASE_NS) / S, (last - BASE_NS) / S, occurrences,
                          round(observed, 6), round(baseline, 6), round(score, 6),
                          None if resolved is None else (resolved - BASE_NS) / S, reason))
        return found


def full_rows(engine) -> list[dict]:
    """Every column but the id, for comparing two databases."""
    with engine.connect() as conn:
        result = conn.execute(select(anomalies).order_by(anomalies.c.detected_at_ns, anomalies.c.key))
        return [{k: v for k, v in row._mapping.items() if k != "id"} for row in result]


ingest = partial(consumers.ingest, received_ns=RECEIVED_NS)


def first_run(detection: DetectionStore, p: DetectionPipeline, **options):
    """The first apply_pending that finds events (one ingest batch is one transaction: all or none)."""
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while True:
        run = detection.apply_pending(p, **options)
        if run.events or time.monotonic() > deadline:
            return run
        time.sleep(0.05)


def apply_everything(detection: DetectionStore, p: DetectionPipeline, expected_events: int, **options) -> int:
    """apply_pending until every event went through (PostgreSQL's watermark may hold some back a moment)."""
    return consumers.apply_until(lambda: detection.apply_pending(p, **options), expected_events)


def visible(detection: DetectionStore, count: int) -> None:
    """Wait until ``count`` events are readable (PostgreSQL's watermark may hold some back a moment)."""
    consumers.visible(detection.follow_frame, count)


@pytest.fixture
def detection(store) -> DetectionStore:
    return DetectionStore(store.engine)


# ------------------------------------------------------------------ follow_frame


def _odd_events() -> list[str]:
    """Every payload column, events of several types, and extra fields named like columns."""
    sig = signal("s1", i=1)
    events = [
        market_data(i=0).model_dump_json(),
        sig.model_dump_json(),
        order("s1", "o1", i=2).model_dump_json(),
        OrderEvent(occurred_at=BASE_NS + 3, source="engine-1", strategy_id="mm-1", symbol="AAPL", order_id="o2",
                   payload=OrderPayload(side="sell", quantity=Decimal("5.5"), order_type="market", status="rejected",
                                        venue="XNAS", decision_price=Decimal("99.875"))).model_dump_json(),
        fill("o1", i=4).model_dump_json(),
        FillEvent(occurred_at=BASE_NS + 5, source="engine-2", symbol="MSFT", order_id="o3",
                  payload=FillPayload(fill_id="f9", side="sell", quantity=Decimal("3"), price=Decimal("410.125"),
                                      venue="ARCA", liquidity="maker", arrival_price=Decimal("410.5"),
                                      bid=Decimal("410.1"), ask=Decimal("410.2"))).model_dump_json(),
        PositionUpdateEvent(occurred_at=BASE_NS + 6, source="engine-1", strategy_id="mm-1", symbol="AAPL",
                            payload=PositionUpdatePayload(quantity=Decimal(-20), realized_pnl=Decimal("-12.5"),
                                                          unrealized_pnl=Decimal("3.25"))).model_dump_json(),
    ]
    # Extra payload fields: a JSON number is a number, a string on a type that does not declare
    # the field is not, text fields are kept as text.
    events.append(json.dumps({
        "event_id": str(uuid.uuid4()), "event_type": "system", "occurred_at": BASE_NS + 7, "source": "feed-1",
        "payload": {"component": "feed", "level": "warning", "message": "slow", "price": 12.5, "quantity": "7",
                    "side": "buy", "volume": 3},
    }))
    return events


def test_follow_frame_equals_the_event_frame_of_the_same_stored_events(store, detection):
    ingest(store, _odd_events(), received_ns=BASE_NS + 123_456_000)
    frame, cursor = detection.follow_frame(None, limit=100)
    stored, expected_cursor = store.follow(None, limit=100)
    assert len(stored) == 8
    assert list(frame.columns) == list(EVENT_COLUMNS)
    pd.testing.assert_frame_equal(frame, event_frame(stored))
    assert cursor == expected_cursor
    system = frame.iloc[-1]
    assert system["price"] == 12.5 and system["volume"] == 3.0 and pd.isna(system["quantity"])
    assert system["side"] == "buy" and system["level"] == "warning"
    assert frame["received_at_ns"].tolist() == [BASE_NS + 123_456_000] * 8


def test_follow_frame_in_chunks_delivers_each_event_once_then_nothing(store, detection):
    ingest(store, _odd_events())
    seen, cursor = [], None
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while len(seen) < 8 and time.monotonic() < deadline:
        frame, cursor = detection.follow_frame(cursor, limit=3)
        assert len(frame) <= 3
        seen += frame["event_id"].tolist()
    assert len(seen) == len(set(seen)) == 8
    frame, after = detection.follow_frame(cursor, limit=3)
    assert frame.empty and after == cursor
    assert list(frame.columns) == list(EVENT_COLUMNS)
    assert frame["seq"].dtype == "int64" and frame["price"].dtype == "float64"


def test_frame_between_reads_a_window_of_occurred_at_in_seq_order(store, detection):
    ingest(store, _odd_events())
    frame = detection.frame_between(BASE_NS + 2, BASE_NS + 6)
    assert frame["occurred_at_ns"].tolist() == [BASE_NS + 2, BASE_NS + 3, BASE_NS + 4, BASE_NS + 5]
    assert frame["seq"].is_monotonic_increasing
    assert frame["event_type"].tolist() == ["order", "order", "fill", "fill"]
    assert frame.iloc[1]["decision_price"] == 99.875 and frame.iloc[1]["quantity"] == 5.5


def test_frame_between_filters_event_types_in_sql_and_limits_only_when_asked(store, detection):
    ingest(store, _odd_events())
    visible(detection, 8)
    everything = detection.frame_between(BASE_NS, BASE_NS + 8)
    assert len(everything) == 8  # no limit: the whole window
    orders_and_fills = detection.frame_between(BASE_NS, BASE_NS + 8, event_types=["order", "fill"])
    assert orders_and_fills["event_type"].tolist() == ["order", "order", "fill", "fill"]
    assert orders_and_fills["occurred_at_ns"].tolist() == [BASE_NS + 2, BASE_NS + 3, BASE_NS + 4, BASE_NS + 5]
    pd.testing.assert_frame_equal(orders_and_fills, everything.iloc[2:6].reset_index(drop=True))
    assert detection.frame_between(BASE_NS, BASE_NS + 8, event_types=("fill",), limit=1)["event_id"].tolist() == [
        everything.iloc[4]["event_id"]]
    assert detection.frame_between(BASE_NS, BASE_NS + 8, limit=3)["occurred_at_ns"].tolist() == [
        BASE_NS, BASE_NS + 1, BASE_NS + 2]
    none = detection.frame_between(BASE_NS, BASE_NS + 8, event_types=())
    assert none.empty and list(none.columns) == list(EVENT_COLUMNS)


def test_training_frame_is_the_orders_and_fills_of_the_window_and_its_warmup(store, detection):
    ingest(store, _odd_events())
    visible(detection, 8)
    frame = detection.training_frame(BASE_NS + 4, BASE_NS + 7, warmup_ns=2)  # reads [2, 7)
    assert list(zip(frame["event_type"], frame["occurred_at_ns"] - BASE_NS)) == [
        ("order", 2), ("order", 3), ("fill", 4), ("fill", 5)]


# ------------------------------------------------------------------ apply_pending


def test_apply_pending_writes_opened_escalated_and_resolved_anomalies(store, detection):
    items = scenario()
    ingest(store, items)
    p = pipeline()
    assert apply_everything(detection, p, len(items)) == len(items)
    assert rows(store.engine) == EXPECTED
    cursor, state, events_applied = detection.state()
    assert events_applied == len(items) and state and cursor != FollowCursor()

    first = detection.anomalies(limit=10)[-1]  # oldest last
    assert first["key"] == REJECTION_KEY and first["entity_kind"] == "strategy_id" and first["entity"] == "mm-1"
    assert first["context"]["min_orders"] == 4 and len(first["event_ids"]) == 1
    assert [a["key"] for a in detection.open_anomalies()] == [SLIPPAGE_KEY]
    assert [a["detected_at_ns"] for a in detection.anomalies(status="resolved")] == [BASE_NS + 10 * S, BASE_NS + 4 * S]
    with pytest.raises(ValueError, match="accepted are 'open', 'resolved'"):
        detection.anomalies(status="closed")


def test_apply_pending_returns_what_to_alert_on(store, detection):
    items = scenario()
    ingest(store, items)
    run = first_run(detection, pipeline())
    assert [(a.key, a.severity, (a.detected_at_ns - BASE_NS) / S) for a in run.opened] == [
        (REJECTION_KEY, "warning", 4), (SLIPPAGE_KEY, "critical", 10), (SLIPPAGE_KEY, "warning", 400)]
    assert run.escalated == []  # opened and escalated in one call: opened with the worse severity
    assert [(r.anomaly.key, (r.resolved_at_ns - BASE_NS) / S, r.reason) for r in run.resolved] == [
        (REJECTION_KEY, 33, "cleared"), (SLIPPAGE_KEY, 320, "quiet")]
    assert run.to_dict()["events"] == len(items) and run.chunks == 1


def test_escalation_across_calls_is_reported_as_escalated(store, detection):
    p = pipeline()
    ingest(store, [_fill(10, "100.60", 1)])
    first = first_run(detection, p)
    ingest(store, [_fill(20, "102.50", 2)])
    second = first_run(detection, p)
    assert [a.severity for a in first.opened] == ["warning"]
    assert (second.opened, [(a.key, a.severity, a.detected_at_ns) for a in second.escalated]) == (
        [], [(SLIPPAGE_KEY, "critical", BASE_NS + 10 * S)])
    rows_now = rows(store.engine)
    assert rows_now == [(SLIPPAGE_KEY, "critical", "open", 10, 20, 2, 60.0, 50.0, 5.0, None, None)]


def test_an_anomaly_escalated_resolved_and_reopened_in_one_call_gives_two_rows(store, detection):
    p = pipeline()
    ingest(store, [_fill(10, "100.60", 1)])
    first_run(detection, p)
    ingest(store, [_fill(20, "102.50", 2), _fill(400, "100.80", 3)])
    run = first_run(detection, p)
    assert [(a.severity, a.detected_at_ns) for a in run.escalated] == [("critical", BASE_NS + 10 * S)]
    assert [(a.severity, a.detected_at_ns) for a in run.opened] == [("warning", BASE_NS + 400 * S)]
    assert rows(store.engine) == EXPECTED[1:]  # the new one keeps its own severity


def test_a_redelivered_call_finds_nothing_new(store, detection):
    items = scenario()
    ingest(store, items)
    p = pipeline()
    apply_everything(detection, p, len(items))
    again = detection.apply_pending(p)
    assert (again.events, again.opened, again.resolved, again.chunks) == (0, [], [], 0)
    assert rows(store.engine) == EXPECTED
    assert detection.state()[2] == len(items)


@pytest.mark.parametrize("limit", [1, 3, 5])
def test_any_chunking_gives_the_same_anomalies(store, detection, limit):
    items = scenario()
    ingest(store, items)
    assert apply_everything(detection, pipeline(), len(items), limit=limit) == len(items)
    assert rows(store.engine) == EXPECTED


def test_max_events_bounds_one_call_and_the_next_continues(store, detection):
    items = scenario()
    ingest(store, items)
    p = pipeline()
    first = detection.apply_pending(p, limit=2, max_events=5)
    assert first.events <= 5 and first.chunks <= 3
    apply_everything(detection, p, len(items) - first.events, limit=2)
    assert rows(store.engine) == EXPECTED


def test_a_restart_continues_from_the_persisted_state(store):
    """Half the trail through one store and pipeline, the rest through new ones (a new engine,
    as a restarted worker has): the same anomalies as one run."""
    items = scenario()
    ingest(store, items[:8])  # up to the first acceptance: the slippage anomaly open, rejections open
    before = DetectionStore(store.engine)
    apply_everything(before, pipeline(), 8)
    assert [r[2] for r in rows(store.engine)] == ["open", "open"]
    ingest(store, items[8:])
    engine = make_engine(store.engine.url.render_as_string(hide_password=False))
    try:
        after = DetectionStore(engine)
        apply_everything(after, pipeline(), len(items) - 8)
        assert rows(engine) == EXPECTED
        assert after.state()[2] == len(items)
    finally:
        engine.dispose()


def test_a_failure_before_commit_rolls_the_chunk_back(store, detection):
    items = scenario()
    ingest(store, items)
    p = pipeline()

    def fail(result):
        assert result.opened  # called with the chunk's result, anomalies already written
        raise RuntimeError("broker away")

    with pytest.raises(RuntimeError, match="broker away"):
        first_run(detection, p, before_commit=fail)
    assert rows(store.engine) == []
    assert detection.state()[2] == 0
    handed: list = []
    apply_everything(detection, pipeline(), len(items), before_commit=handed.append)
    assert rows(store.engine) == EXPECTED
    assert sum(len(r.opened) for r in handed) == 3


def test_tick_fires_absence_rules_and_resolves_quiet_anomalies(store, detection):
    items = scenario()
    ingest(store, items)  # received at 500 s: the stale-feed rule counts silence from there
    p = pipeline()
    apply_everything(detection, p, len(items))
    quiet = detection.tick(p, BASE_NS + 520 * S)
    assert (quiet.opened, quiet.resolved) == ([], [])
    run = detection.tick(p, BASE_NS + 800 * S)
    assert [(a.key, a.observed) for a in run.opened] == [("feed|feed_silence_seconds|source=engine-1", 300.0)]
    assert [(r.anomaly.key, (r.resolved_at_ns - BASE_NS) / S, r.reason) for r in run.resolved] == [
        (SLIPPAGE_KEY, 700, "quiet")]
    found = rows(store.engine)
    assert found[:2] == EXPECTED[:2]
    assert found[2] == (SLIPPAGE_KEY, "warning", "resolved", 400, 400, 1, 80.0, 50.0, 1.6, 700, "quiet")
    assert found[3][:6] == ("feed|feed_silence_seconds|source=engine-1", "warning", "open", 800, 800, 1)
    assert detection.state()[2] == len(items)  # a tick applies no events
    # A tick repeated at the same moment changes nothing.
    again = detection.tick(p, BASE_NS + 800 * S)
    assert (again.opened, again.resolved) == ([], [])
    assert rows(store.engine) == found


def test_apply_pending_says_whether_it_reached_the_head_of_the_trail(store, detection):
    items = scenario()
    ingest(store, items)
    visible(detection, len(items))
    p = pipeline()
    behind = detection.apply_pending(p, limit=2, max_events=4)
    assert (behind.events, behind.chunks, behind.caught_up) == (4, 2, False)  # stopped at max_events
    rest = detection.apply_pending(p, limit=5)
    assert (rest.events, rest.chunks, rest.caught_up) == (len(items) - 4, 2, True)  # 5, then 3 < 5
    assert rest.to_dict()["caught_up"] is True
    nothing = detection.apply_pending(p)
    assert (nothing.events, nothing.chunks, nothing.caught_up) == (0, 0, True)


FEED_KEY = "feed|feed_silence_seconds|source=engine-1"


def test_catch_up_and_tick_judges_absence_only_once_the_backlog_is_applied(store, detection):
    """Quotes received at 100 s, then a backlog received at 500 s. Ticking at 520 s after the
    first chunk alone would find engine-1 silent for 420 s (> 30 s): behind, no tick runs; caught
    up, its silence is 20 s; at 600 s it really is silent (100 s) and the stale feed opens."""
    ingest(store, [_quote(0), _quote(1)], received_ns=BASE_NS + 100 * S)
    ingest(store, [_quote(k) for k in range(2, 10)], received_ns=BASE_NS + 500 * S)
    visible(detection, 10)
    p = pipeline()
    runs = []
    while not (runs and runs[-1].caught_up):
        runs.append(detection.catch_up_and_tick(p, BASE_NS + 520 * S, limit=2, max_events=2))
        assert len(runs) <= 6
    assert [(r.events, r.caught_up, r.ticked) for r in runs] == [(2, False, False)] * 5 + [(0, True, True)]
    assert all(r.opened == [] and r.resolved == [] for r in runs)
    assert rows(store.engine) == []

    silent = detection.catch_up_and_tick(p, BASE_NS + 600 * S)
    assert (silent.events, silent.caught_up, silent.ticked, silent.chunks) == (0, True, True, 1)
    assert [(a.key, a.observed) for a in silent.opened] == [(FEED_KEY, 100.0)]
    assert silent.to_dict()["opened"] == 1
    assert [r[:3] for r in rows(store.engine)] == [(FEED_KEY, "warning", "open")]


def test_catch_up_and_tick_applies_and_ticks_in_one_call_when_the_backlog_fits(store, detection):
    items = scenario()
    ingest(store, items)
    visible(detection, len(items))
    handed: list = []
    run = detection.catch_up_and_tick(pipeline(), BASE_NS + 800 * S, before_commit=handed.append)
    assert (run.events, run.caught_up, run.ticked, run.chunks) == (len(items), True, True, 2)
    # The chunk's three openings and two resolutions, then the tick's stale feed and quiet spike.
    assert [a.key for a in run.opened] == [REJECTION_KEY, SLIPPAGE_KEY, SLIPPAGE_KEY, FEED_KEY]
    assert [(r.anomaly.key, (r.resolved_at_ns - BASE_NS) / S) for r in run.resolved] == [
        (REJECTION_KEY, 33), (SLIPPAGE_KEY, 320), (SLIPPAGE_KEY, 700)]
    assert len(handed) == 2 and handed[1].opened[0].key == FEED_KEY


def test_an_unreadable_state_stops_detection_with_what_to_do(store, detection):
    ingest(store, scenario()[:2])
    visible(detection, 2)  # the state is decoded only when there are events to apply
    with store.engine.begin() as conn:
        conn.execute(detector_state.insert().values(pipeline="default", cursor="", state=b"not a state",
                                                    events_applied=0, updated_at=ns_to_datetime(BASE_NS)))
    with pytest.raises(DetectorStateError, match="UPDATE detector_state SET state = ''"):
        detection.apply_pending(pipeline())


def test_a_reset_state_supersedes_the_open_row_it_forgot(store, detection):
    p = pipeline()
    ingest(store, [_fill(10, "100.60", 1)])
    apply_everything(detection, p, 1)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE detector_state SET state = :empty"), {"empty": b""})
    ingest(store, [_fill(20, "100.70", 2)])
    apply_everything(detection, p, 1)
    assert rows(store.engine) == [
        (SLIPPAGE_KEY, "warning", "resolved", 10, 10, 1, 60.0, 50.0, 1.2, 20, "superseded"),
        (SLIPPAGE_KEY, "warning", "open", 20, 20, 1, 70.0, 50.0, 1.4, None, None),
    ]


# ------------------------------------------------------------------ concurrent workers


def _workers(store: AuditStore, total: int, limit: int, timeout: float) -> list:
    """Two workers applying the pipeline ``limit`` events at a time; their errors."""
    url = store.engine.url.render_as_string(hide_password=False)
    return run_concurrently(url, lambda engine: apply_in_chunks(DetectionStore(engine), pipeline(), total, limit),
                            timeout)


def test_two_concurrent_workers_on_postgresql_give_the_anomalies_of_one_sequential_run(pg_store, postgres_admin):
    items = scenario()
    ingest(pg_store, items)
    assert _workers(pg_store, len(items), limit=2, timeout=CATCH_UP_SECONDS + 30) == []
    assert DetectionStore(pg_store.engine).state()[2] == len(items)

    with second_database(postgres_admin) as engine:
        ingest(AuditStore(engine), items)
        apply_everything(DetectionStore(engine), pipeline(), len(items))
        assert full_rows(pg_store.engine) == full_rows(engine)
    assert rows(pg_store.engine) == EXPECTED


def test_two_concurrent_workers_on_sqlite_are_serialised_by_its_single_writer(sqlite_store):
    items = scenario()
    ingest(sqlite_store, items)
    assert _workers(sqlite_store, len(items), limit=1, timeout=60) == []
    assert rows(sqlite_store.engine) == EXPECTED
