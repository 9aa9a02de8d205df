"""ComplianceStore on both backends: the trail read from SQL as ComplianceEvent records (equal to
``events.from_model`` of the same events), the monitor's EventSource reads, the rule engine
applied in transactions with its cursor and state, redelivery, chunking, concurrent workers,
anomaly links and the resolution of alerts."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from functools import partial

import pytest
from sqlalchemy import select, text

from tradewatch.domain.compliance.engine import ComplianceEngine, EngineConfig
from tradewatch.domain.compliance.events import from_model
from tradewatch.domain.compliance.policy import PolicyHistory
from tradewatch.domain.events import (
    CircuitBreakerEvent,
    CircuitBreakerPayload,
    FillEvent,
    FillPayload,
    LlmDecisionEvent,
    LlmDecisionPayload,
    MarketDataEvent,
    MarketDataPayload,
    OrderEvent,
    OrderPayload,
    PositionUpdateEvent,
    PositionUpdatePayload,
    RiskCheckEvent,
    RiskCheckPayload,
    SignalEvent,
    SignalPayload,
    parse_event,
)
from tradewatch.domain.events.timestamps import ns_to_datetime
from tradewatch.domain.trail import FollowCursor
from tradewatch.storage.compliance import ComplianceStateUnreadable, ComplianceStore
from tradewatch.storage.database import make_engine
from tradewatch.storage.schema import anomalies, compliance_issues, compliance_state
from tradewatch.storage.store import AuditStore

from tests.factories import BASE_NS
from tests.storage import consumers
from tests.storage.consumers import CATCH_UP_SECONDS, apply_in_chunks, run_concurrently, second_database

S = 1_000_000_000
RECEIVED_NS = BASE_NS + 500 * S + 123_456_000  # microsecond precision, as stored
# Far enough after the scenario that a tick releases everything the reorder window holds.
LATER_NS = BASE_NS + 3600 * S

POLICY = """
version: "test-1"
effective_from: 2020-01-01T00:00:00Z
timezone: UTC
required_risk_checks: {minimum_passed: 1}
restricted_symbols: [GME]
"""


def policies() -> PolicyHistory:
    return PolicyHistory.from_yaml_text(POLICY, "test-policy.yaml")


def engine() -> ComplianceEngine:
    return ComplianceEngine(policies(), EngineConfig(reorder_window_seconds=5.0))


# ------------------------------------------------------------------ the scenario


def _at(seconds: float) -> int:
    return BASE_NS + int(seconds * S)


def _quote(at_s: float, symbol: str = "AAPL", bid: str = "99.99") -> MarketDataEvent:
    return MarketDataEvent(occurred_at=_at(at_s), source="engine-1", symbol=symbol,
                           payload=MarketDataPayload(bid=Decimal(bid), ask=Decimal("100.01"), last=Decimal("100.00")))


def _signal(signal_id: str, at_s: float, symbol: str = "AAPL") -> SignalEvent:
    return SignalEvent(occurred_at=_at(at_s), source="engine-1", signal_id=signal_id, strategy_id="mm-1",
                       symbol=symbol, payload=SignalPayload(direction="long", confidence=0.7))


def _check(signal_id: str, at_s: float, passed: bool = True, **payload) -> RiskCheckEvent:
    return RiskCheckEvent(occurred_at=_at(at_s), source="engine-1", signal_id=signal_id, strategy_id="mm-1",
                          payload=RiskCheckPayload(check_name="max_position", passed=passed, **payload))


def _order(signal_id: str, order_id: str, at_s: float, symbol: str = "AAPL", status: str = "submitted",
           **payload) -> OrderEvent:
    fields = dict(side="buy", quantity=Decimal(10), order_type="market", status=status,
                  decision_price=Decimal("100.00"))
    fields.update(payload)
    return OrderEvent(occurred_at=_at(at_s), source="engine-1", signal_id=signal_id, order_id=order_id,
                      strategy_id="mm-1", symbol=symbol, payload=OrderPayload(**fields))


def _fill(order_id: str, at_s: float, symbol: str = "AAPL") -> FillEvent:
    return FillEvent(occurred_at=_at(at_s), source="engine-1", order_id=order_id, symbol=symbol, strategy_id="mm-1",
                     payload=FillPayload(fill_id=f"f-{order_id}", side="buy", quantity=Decimal(10),
                                         price=Decimal("100.02")))


def scenario() -> list[str]:
    """A checked order (no issue), an order without a passed risk check on its signal, an order
    in a restricted symbol, with quotes and fills between them; one second apart."""
    events = [
        _quote(0), _quote(0, "GME", "20.00"),
        _signal("s-ok", 1), _check("s-ok", 2), _order("s-ok", "o-ok", 3), _fill("o-ok", 4),
        _signal("s-none", 5), _check("s-none", 6, passed=False), _order("s-none", "o-nocheck", 7),
        _signal("s-gme", 8, "GME"), _check("s-gme", 9), _order("s-gme", "o-gme", 10, "GME"),
        _fill("o-gme", 11, "GME"), _quote(12),
    ]
    return [event.model_dump_json() for event in events]


EXPECTED_KEYS = {"ORDER_WITHOUT_RISK_CHECK|order:o-nocheck", "RESTRICTED_SYMBOL|order:o-gme"}


ingest = partial(consumers.ingest, received_ns=RECEIVED_NS)


def visible(compliance: ComplianceStore, count: int) -> None:
    """Wait until ``count`` events are readable (PostgreSQL's watermark may hold some back a moment)."""
    consumers.visible(compliance.follow_events, count)


def apply_everything(compliance: ComplianceStore, e: ComplianceEngine, expected_events: int, **options) -> int:
    """apply_pending until every event went through, then a tick far later (releases the reorder window)."""
    applied = consumers.apply_until(lambda: compliance.apply_pending(e, **options), expected_events)
    compliance.tick(e, LATER_NS)
    return applied


def reference_keys(items: list[str]) -> set[str]:
    """What the engine alone finds in the same events, applied at once (the store must agree)."""
    e = engine()
    state = e.new_state()
    records = [from_model(parse_event(item).event) for item in items]
    found = e.apply(records, state).issues + e.tick(LATER_NS, state).issues
    return {issue.key for issue in found}


def issue_rows(db) -> list[dict]:
    """Every column but the id and the recording time, for comparing runs."""
    with db.connect() as conn:
        result = conn.execute(select(compliance_issues).order_by(compliance_issues.c.key))
        return [{k: v for k, v in row._mapping.items() if k not in ("id", "recorded_at")} for row in result]


@pytest.fixture
def compliance(store) -> ComplianceStore:
    return ComplianceStore(store.engine)


# ------------------------------------------------------------------ reading the trail


def _every_field() -> list[str]:
    """Every ComplianceEvent field, events of every type the rules read, and oddities: a
    limit order, an override with its approver, extra payload fields named like record fields
    (a JSON number is a number, a string on a type not declaring it is not)."""
    events = [
        _quote(0).model_dump_json(),
        _signal("s1", 1).model_dump_json(),
        _check("s1", 2, passed=False, override=True, approver="risk-officer").model_dump_json(),
        LlmDecisionEvent(occurred_at=_at(3), source="engine-1", signal_id="s1", strategy_id="mm-1",
                         payload=LlmDecisionPayload(model="gpt", decision="escalate", reviewed_by="desk-head")
                         ).model_dump_json(),
        _order("s1", "o1", 4, order_type="limit", limit_price=Decimal("100.125"), quantity=Decimal("5.5"),
               side="sell").model_dump_json(),
        _order("s1", "o1", 4.5, status="accepted").model_dump_json(),
        _fill("o1", 5).model_dump_json(),
        PositionUpdateEvent(occurred_at=_at(6), source="engine-1", strategy_id="mm-1", symbol="AAPL",
                            payload=PositionUpdatePayload(quantity=Decimal(-20), market_price=Decimal("100.5"))
                            ).model_dump_json(),
        CircuitBreakerEvent(occurred_at=_at(7), source="engine-1", strategy_id="mm-1",
                            payload=CircuitBreakerPayload(state="tripped", scope="strategy", trading_state="HALTED",
                                                          reason="drawdown")).model_dump_json(),
    ]
    events.append(json.dumps({
        "event_id": str(uuid.uuid4()), "event_type": "system", "occurred_at": _at(8), "source": "feed-1",
        "payload": {"component": "feed", "level": "warning", "message": "slow", "bid": 12.5, "side": "buy",
                    "passed": "yes"},
    }))
    return events


def test_follow_events_equals_from_model_of_the_same_stored_events(store, compliance):
    items = _every_field()
    ingest(store, items)
    visible(compliance, len(items))
    records, cursor = compliance.follow_events(None, limit=100)
    stored, expected_cursor = store.follow(None, limit=100)
    assert records == [from_model(s.event, received_at_ns=RECEIVED_NS) for s in stored]
    assert cursor == expected_cursor
    check, order = records[2], records[4]
    assert (check.passed, check.override, check.approver) == (False, True, "risk-officer")
    assert type(check.passed) is bool and type(records[-1].quantity) is type(None)
    assert (order.order_type, order.limit_price, order.quantity, order.side) == ("limit", 100.125, 5.5, "sell")
    assert records[7].quantity == -20.0 and records[7].market_price == 100.5
    assert (records[8].breaker_state, records[8].scope, records[8].trading_state) == ("tripped", "strategy", "HALTED")
    system = records[-1]
    assert (system.bid, system.side, system.passed) == (12.5, "buy", None)
    assert all(r.received_at_ns == RECEIVED_NS for r in records)


def test_follow_events_in_chunks_delivers_each_event_once_then_nothing(store, compliance):
    items = _every_field()
    ingest(store, items)
    seen, cursor = [], None
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while len(seen) < len(items) and time.monotonic() < deadline:
        records, cursor = compliance.follow_events(cursor, limit=3)
        assert len(records) <= 3
        seen += [r.event_id for r in records]
    assert len(seen) == len(set(seen)) == len(items)
    assert compliance.follow_events(cursor, limit=3) == ([], cursor)


def test_events_between_is_the_window_of_occurred_at(store, compliance):
    items = scenario()
    ingest(store, items)
    visible(compliance, len(items))
    window = list(compliance.events_between(_at(3), _at(7)))
    assert [(r.event_type, r.occurred_at_ns) for r in window] == [
        ("order", _at(3)), ("fill", _at(4)), ("signal", _at(5)), ("risk_check", _at(6))]
    assert window[0] == from_model(parse_event(items[4]).event, received_at_ns=RECEIVED_NS)
    assert list(compliance.events_between(_at(100), _at(200))) == []


def test_context_before_is_the_latest_breaker_quote_and_position_of_each_group(store, compliance):
    breaker = lambda at_s, state, scope="strategy", strategy="mm-1", source="engine-1": CircuitBreakerEvent(  # noqa: E731
        occurred_at=_at(at_s), source=source, strategy_id=strategy,
        payload=CircuitBreakerPayload(state=state, scope=scope, trading_state="HALTED" if state == "tripped" else "ACTIVE"))
    position = lambda at_s, qty, strategy="mm-1", symbol="AAPL": PositionUpdateEvent(  # noqa: E731
        occurred_at=_at(at_s), source="engine-1", strategy_id=strategy, symbol=symbol,
        payload=PositionUpdatePayload(quantity=Decimal(qty)))
    events = [
        _quote(1), _quote(2, bid="99.50"), _quote(3, "MSFT"), _quote(9, bid="98.00"),
        breaker(1, "tripped"), breaker(2, "reset"), breaker(3, "tripped", scope="global", strategy=None),
        breaker(4, "tripped", source="engine-2"), breaker(9, "reset", scope="global", strategy=None),
        breaker(3.5, "reset", scope="global", strategy="mm-9"),  # a global breaker's strategy is not its group
        position(1, 10), position(2, 20), position(2, 5, "mm-2"), position(3, 7, symbol="MSFT"), position(9, 0),
        _order("s", "o", 4),
    ]
    items = [e.model_dump_json() for e in events]
    ingest(store, items)
    visible(compliance, len(items))
    context = compliance.context_before(_at(5))
    expected = [from_model(e, received_at_ns=RECEIVED_NS) for e in
                (events[1], events[2], events[5], events[7], events[9], events[11], events[12], events[13])]
    assert sorted(context) == sorted(expected)
    assert compliance.context_before(_at(1)) == []


# ------------------------------------------------------------------ applying the engine


def test_apply_pending_records_what_the_engine_finds(store, compliance):
    items = scenario()
    ingest(store, items)
    assert apply_everything(compliance, engine(), len(items)) == len(items)
    rows = issue_rows(store.engine)
    keys = {row["key"] for row in rows}
    assert keys == reference_keys(items) and EXPECTED_KEYS <= keys
    gme = next(row for row in rows if row["key"] == "RESTRICTED_SYMBOL|order:o-gme")
    assert (gme["code"], gme["order_id"], gme["signal_id"], gme["strategy_id"], gme["symbol"]) == (
        "RESTRICTED_SYMBOL", "o-gme", "s-gme", "mm-1", "GME")
    assert gme["occurred_at_ns"] == _at(10) and gme["occurred_at"] == ns_to_datetime(_at(10))
    assert gme["policy_version"] == "test-1" and gme["policy_hash"] == policies().latest.content_hash
    assert gme["found_by"] == "incremental" and gme["anomaly_ids"] == [] and gme["alert_resolved_at"] is None
    assert json.loads(items[11])["event_id"] in gme["event_ids"]
    cursor, state, events_applied = compliance.state()
    assert events_applied == len(items) and state and cursor != FollowCursor()

    newest = compliance.issues(limit=10)
    assert [i["occurred_at_ns"] for i in newest] == sorted((i["occurred_at_ns"] for i in newest), reverse=True)
    assert [i["key"] for i in compliance.issues(code="RESTRICTED_SYMBOL")] == ["RESTRICTED_SYMBOL|order:o-gme"]
    assert compliance.issues(start_ns=_at(11)) == []
    between = compliance.issues_between(_at(0), _at(11))
    assert {i.key for i in between} == keys and all(i.metadata["policy_version"] == "test-1" for i in between)


def test_apply_pending_returns_the_new_issues_and_hands_them_over_before_commit(store, compliance):
    items = scenario()
    ingest(store, items)
    visible(compliance, len(items))
    handed: list = []
    e = engine()
    run = compliance.catch_up_and_tick(e, LATER_NS, before_commit=handed.append)
    assert (run.events, run.caught_up, run.ticked, run.pending) == (len(items), True, True, 0)
    assert {i.key for i in run.issues} == reference_keys(items)
    assert sorted(i.key for chunk in handed for i in chunk) == sorted(i.key for i in run.issues)
    assert run.to_dict()["new_issues"] == len(run.issues)


def test_a_redelivered_call_finds_nothing_new_and_a_second_recording_is_absorbed(store, compliance):
    items = scenario()
    ingest(store, items)
    e = engine()
    apply_everything(compliance, e, len(items))
    before = issue_rows(store.engine)
    again = compliance.apply_pending(e)
    assert (again.events, again.issues, again.chunks) == (0, [], 0)
    assert issue_rows(store.engine) == before
    assert compliance.state()[2] == len(items)
    stored = compliance.issues_between(_at(0), _at(100))
    assert compliance.record_issues(stored, found_by="recheck") == []
    assert issue_rows(store.engine) == before  # still found_by incremental


@pytest.mark.parametrize("limit", [1, 3, 5])
def test_any_chunking_gives_the_same_issue_rows(store, compliance, limit, tmp_path, postgres_admin):
    items = scenario()
    ingest(store, items)
    assert apply_everything(compliance, engine(), len(items), limit=limit) == len(items)
    chunked = issue_rows(store.engine)
    # The same events in a fresh database of the same backend, applied in one chunk.
    sqlite_path = None if store.engine.dialect.name == "postgresql" else tmp_path / "one-chunk.sqlite3"
    with second_database(postgres_admin, sqlite_path) as db:
        ingest(AuditStore(db), items)
        apply_everything(ComplianceStore(db), engine(), len(items), limit=1000)
        assert chunked == issue_rows(db)
    assert {row["key"] for row in chunked} == reference_keys(items)


def test_a_restart_continues_from_the_persisted_state(store):
    """The first half through one store and engine, the rest through new ones: the rows of one run."""
    items = scenario()
    ingest(store, items[:8])
    apply_everything_without_tick(ComplianceStore(store.engine), engine(), 8)
    ingest(store, items[8:])
    db = make_engine(store.engine.url.render_as_string(hide_password=False))
    try:
        apply_everything(ComplianceStore(db), engine(), len(items) - 8)
        assert {row["key"] for row in issue_rows(db)} == reference_keys(items)
        assert ComplianceStore(db).state()[2] == len(items)
    finally:
        db.dispose()


def apply_everything_without_tick(compliance: ComplianceStore, e: ComplianceEngine, expected_events: int) -> None:
    consumers.apply_until(lambda: compliance.apply_pending(e), expected_events)


def test_a_failure_before_commit_rolls_the_chunk_back(store, compliance):
    items = scenario()
    ingest(store, items)
    visible(compliance, len(items))

    def fail(issues):
        raise RuntimeError("broker away")

    with pytest.raises(RuntimeError, match="broker away"):
        compliance.catch_up_and_tick(engine(), LATER_NS, before_commit=fail)
    assert issue_rows(store.engine) == [] and compliance.state()[2] == 0
    run = compliance.catch_up_and_tick(engine(), LATER_NS)
    assert {i.key for i in run.issues} == reference_keys(items)


def test_catch_up_and_tick_ticks_only_once_caught_up(store, compliance):
    items = scenario()
    ingest(store, items)
    visible(compliance, len(items))
    e = engine()
    behind = compliance.catch_up_and_tick(e, LATER_NS, limit=2, max_events=4)
    assert (behind.events, behind.caught_up, behind.ticked) == (4, False, False)
    rest = compliance.catch_up_and_tick(e, LATER_NS, limit=100)
    assert (rest.events, rest.caught_up, rest.ticked, rest.pending) == (len(items) - 4, True, True, 0)


def test_an_unreadable_state_stops_the_monitor_with_what_to_do(store, compliance):
    ingest(store, scenario()[:2])
    visible(compliance, 2)  # the state is decoded only when there are events to apply
    with store.engine.begin() as conn:
        conn.execute(compliance_state.insert().values(name="default", cursor="", state=b"not a state",
                                                      events_applied=0, updated_at=ns_to_datetime(BASE_NS)))
    with pytest.raises(ComplianceStateUnreadable, match="UPDATE compliance_state SET state = ''"):
        compliance.apply_pending(engine())


# ------------------------------------------------------------------ anomalies, alerts


def _anomaly(event_ids: list[str], at_s: float) -> dict:
    return {"key": f"slippage|slippage_bps|symbol=GME|{uuid.uuid4().hex}", "detector": "slippage",
            "anomaly_type": "spike", "severity": "warning", "metric": "slippage_bps", "observed": 80.0,
            "baseline": 50.0, "score": 1.6, "entity_kind": "symbol", "entity": "GME", "symbol": "GME",
            "strategy_id": None, "event_ids": event_ids, "context": {}, "detected_at_ns": _at(at_s),
            "detected_at": ns_to_datetime(_at(at_s)), "last_seen_at_ns": _at(at_s), "occurrences": 1,
            "status": "open", "resolved_at_ns": None, "resolved_reason": None}


def test_issues_link_the_anomalies_of_their_order_and_the_recheck_links_later_ones(store, compliance):
    items = scenario()
    ingest(store, items)
    gme_fill = json.loads(items[12])["event_id"]  # the fill of o-gme: names the order only through the trail
    with store.engine.begin() as conn:
        linked = conn.execute(anomalies.insert().returning(anomalies.c.id), [_anomaly([gme_fill], 11)]).scalar_one()
        conn.execute(anomalies.insert(), [_anomaly([json.loads(items[5])["event_id"]], 4),  # o-ok's fill
                                          _anomaly([gme_fill], 11 + 7200)])  # outside the link window
    apply_everything(compliance, engine(), len(items))
    by_key = {row["key"]: row for row in issue_rows(store.engine)}
    assert by_key["RESTRICTED_SYMBOL|order:o-gme"]["anomaly_ids"] == [linked]
    assert by_key["ORDER_WITHOUT_RISK_CHECK|order:o-nocheck"]["anomaly_ids"] == []

    # An anomaly on o-nocheck's order event found after the issue: linked when the re-check finds it again.
    nocheck_order = json.loads(items[8])["event_id"]
    with store.engine.begin() as conn:
        later = conn.execute(anomalies.insert().returning(anomalies.c.id), [_anomaly([nocheck_order], 20)]).scalar_one()
    assert compliance.record_issues(compliance.issues_between(_at(0), _at(100))) == []
    by_key = {row["key"]: row for row in issue_rows(store.engine)}
    assert by_key["ORDER_WITHOUT_RISK_CHECK|order:o-nocheck"]["anomaly_ids"] == [later]
    assert by_key["RESTRICTED_SYMBOL|order:o-gme"]["anomaly_ids"] == [linked]


def test_record_issues_inserts_the_new_ones_as_found_by_the_recheck(store, compliance):
    items = scenario()
    ingest(store, items)
    e = engine()
    state = e.new_state()
    found = e.apply(compliance.events_between(_at(0), _at(100)), state).issues + e.flush(state).issues
    handed: list = []
    new = compliance.record_issues(found + found, before_commit=handed.append)
    assert sorted(i.key for i in new) == sorted({i.key for i in found}) and handed == [new]
    assert {row["found_by"] for row in issue_rows(store.engine)} == {"recheck"}
    assert compliance.record_issues(found) == []


def test_close_alerts_returns_each_issue_once_after_the_hold(store, compliance):
    items = scenario()
    ingest(store, items)
    apply_everything(compliance, engine(), len(items))
    with store.engine.connect() as conn:
        recorded = max(conn.execute(select(compliance_issues.c.recorded_at)).scalars())
    assert compliance.close_alerts(recorded - timedelta(seconds=1), recorded) == []
    handed: list = []
    closed = compliance.close_alerts(recorded + timedelta(minutes=1), recorded + timedelta(minutes=50),
                                     before_commit=handed.append)
    assert {i.key for i in closed} == reference_keys(items) and handed == [closed]
    assert {row["alert_resolved_at"] for row in issue_rows(store.engine)} == {recorded + timedelta(minutes=50)}
    assert compliance.close_alerts(recorded + timedelta(hours=2), recorded + timedelta(hours=2)) == []


# ------------------------------------------------------------------ concurrent workers


def _worker(db, total: int, limit: int) -> None:
    compliance, e = ComplianceStore(db), engine()
    apply_in_chunks(compliance, e, total, limit)
    compliance.tick(e, LATER_NS)


def _workers(store: AuditStore, total: int, limit: int, timeout: float) -> list:
    """Two workers applying the engine ``limit`` events at a time, then ticking; their errors."""
    url = store.engine.url.render_as_string(hide_password=False)
    return run_concurrently(url, lambda db: _worker(db, total, limit), timeout)


def test_two_concurrent_workers_on_postgresql_give_the_rows_of_one_sequential_run(pg_store, postgres_admin):
    items = scenario()
    ingest(pg_store, items)
    assert _workers(pg_store, len(items), limit=2, timeout=CATCH_UP_SECONDS + 30) == []
    assert ComplianceStore(pg_store.engine).state()[2] == len(items)

    with second_database(postgres_admin) as db:
        ingest(AuditStore(db), items)
        apply_everything(ComplianceStore(db), engine(), len(items))
        assert issue_rows(pg_store.engine) == issue_rows(db)
    assert {row["key"] for row in issue_rows(pg_store.engine)} == reference_keys(items)


def test_two_concurrent_workers_on_sqlite_are_serialised_by_its_single_writer(sqlite_store):
    items = scenario()
    ingest(sqlite_store, items)
    assert _workers(sqlite_store, len(items), limit=1, timeout=60) == []
    assert {row["key"] for row in issue_rows(sqlite_store.engine)} == reference_keys(items)


def test_the_migrated_tables_exist_on_both_backends(store):
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM compliance_issues")).scalar_one() == 0
