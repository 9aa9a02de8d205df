"""AuditStore on both backends (the ``store`` fixture runs each test on PostgreSQL and SQLite)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pandas as pd
import pytest

from tradewatch.domain.events import (
    AccountEvent,
    AccountPayload,
    CircuitBreakerEvent,
    CircuitBreakerPayload,
    ParsedEvent,
    PositionUpdateEvent,
    PositionUpdatePayload,
    RiskCheckEvent,
    RiskCheckPayload,
    parse_event,
)
from tradewatch.domain.events.timestamps import ns_to_datetime
from tradewatch.domain.trail import FollowCursor
from tradewatch.storage import UnknownSignal

from tests.factories import BASE_NS, fill, market_data, order, signal, texts

RECEIVED = ns_to_datetime(BASE_NS + 3_600 * 10**9)  # an hour after the events, UTC
HOUR_NS = 3_600 * 10**9


def ingest(store, items, batch_id: str | None = None, received_at: datetime = RECEIVED):
    return store.ingest_items(items, batch_id=batch_id or uuid.uuid4().hex, received_at=received_at)


def changed(event, **payload_changes) -> str:
    """The JSON text of ``event`` with some payload fields replaced (same event_id)."""
    data = json.loads(event.model_dump_json())
    data["payload"].update(payload_changes)
    return json.dumps(data)


def risk_check(signal_id: str, i: int, passed: bool, strategy_id: str = "momentum") -> RiskCheckEvent:
    return RiskCheckEvent(occurred_at=BASE_NS + i, source="risk", signal_id=signal_id, strategy_id=strategy_id,
                          symbol="AAPL", payload=RiskCheckPayload(check_name="position_limit", passed=passed))


def breaker(state: str, i: int, strategy_id: str | None = "momentum") -> CircuitBreakerEvent:
    return CircuitBreakerEvent(occurred_at=BASE_NS + i, source="guard", strategy_id=strategy_id,
                               payload=CircuitBreakerPayload(state=state, scope="strategy" if strategy_id else "global",
                                                             trading_state="HALTED" if state == "tripped" else "ACTIVE"))


# ------------------------------------------------------------------ ingest


def test_ingest_inserts_and_counts(store):
    # factories: market_data(i) is at BASE_NS + i * 1000 ns, the others at BASE_NS + i.
    events = [market_data(i=0), signal("sig-a", i=2), order("sig-a", "o-a", i=3), fill("o-a", i=4)]
    items = texts(events)
    result = ingest(store, items)
    assert result.to_dict() == {"inserted": 4, "duplicates": 0, "conflicts": 0, "rejected": 0}
    assert store.count() == 4
    stored = store.events()
    assert [str(s.event.event_id) for s in stored] == [str(e.event_id) for e in events]
    assert [s.raw for s in stored] == items  # raw kept exactly as received
    assert [s.event for s in stored] == events
    seqs = [s.seq for s in stored]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    assert store.rejected() == []


def test_seq_follows_batch_order(store):
    # Same occurred_at for all: events() orders by (occurred_at, seq), so this shows seq order.
    events = [market_data(i=0, symbol=f"S{k}", occurred_at=BASE_NS) for k in range(30)]
    ingest(store, texts(events))
    assert [s.event.symbol for s in store.events()] == [f"S{k}" for k in range(30)]


def test_empty_batch(store):
    assert ingest(store, []).to_dict() == {"inserted": 0, "duplicates": 0, "conflicts": 0, "rejected": 0}
    assert store.count() == 0


def test_identical_redelivery_is_absorbed(store):
    items = texts([signal("sig-r", i=1), order("sig-r", "o-r", i=2), fill("o-r", i=3)])
    ingest(store, items, batch_id="batch-1")
    before = store.events()
    # The same batch again (a redelivered task), then the same events in another batch.
    again = ingest(store, items, batch_id="batch-1")
    other = ingest(store, items, batch_id="batch-2")
    for result in (again, other):
        assert result.to_dict() == {"inserted": 0, "duplicates": 3, "conflicts": 0, "rejected": 0}
    assert store.count() == 3
    assert [(s.seq, s.raw) for s in store.events()] == [(s.seq, s.raw) for s in before]
    assert store.rejected() == []


def test_duplicate_within_one_batch_is_absorbed(store):
    item = fill("o-d").model_dump_json()
    result = ingest(store, [item, item])
    assert (result.inserted, result.duplicates, result.conflicts) == (1, 1, 0)
    assert store.count() == 1
    assert store.rejected() == []


def test_reserialised_event_with_other_key_order_is_a_duplicate_not_a_conflict(store):
    event = fill("o-k")
    original = event.model_dump_json()
    ingest(store, [original])
    data = json.loads(original)
    reordered = dict(reversed(list(data.items())))
    reordered["payload"] = dict(reversed(list(data["payload"].items())))
    reordered["payload"]["price"] = "100.0400"  # same value, other spelling
    reordered["occurred_at"] = event.occurred_at  # same instant as integer nanoseconds
    text = json.dumps(reordered, indent=2)
    assert text != original
    result = ingest(store, [text])
    assert (result.inserted, result.duplicates, result.conflicts) == (0, 1, 0)
    assert store.rejected() == []
    # The first copy stays the evidence.
    assert store.events()[0].raw == original


def test_reused_event_id_with_different_content_is_a_conflict(store):
    event = fill("o-c")
    ingest(store, [event.model_dump_json()], batch_id="first")
    conflicting = changed(event, price="100.050")
    result = ingest(store, [conflicting], batch_id="second")
    assert result.to_dict() == {"inserted": 0, "duplicates": 0, "conflicts": 1, "rejected": 0}
    assert [r.code for r in result.rejections] == ["conflict"]
    rows = store.rejected()
    assert len(rows) == 1
    row = rows[0]
    assert row["code"] == "conflict"
    assert row["batch_id"] == "second"
    assert row["position"] == 0
    assert row["event_id"] == str(event.event_id)
    assert row["event_type"] == "fill"
    assert row["raw"] == conflicting
    assert "payload.price" in row["reason"]
    assert "'100.040'" in row["reason"] and "'100.050'" in row["reason"]
    assert str(event.event_id) in row["reason"]
    # The stored event is untouched.
    assert store.count() == 1
    assert store.events()[0].event.payload.price == Decimal("100.040")


def test_conflict_inside_one_batch(store):
    event = fill("o-cb")
    result = ingest(store, [event.model_dump_json(), changed(event, fee="9.99")])
    assert (result.inserted, result.duplicates, result.conflicts) == (1, 0, 1)
    (row,) = store.rejected()
    assert row["code"] == "conflict" and row["position"] == 1 and "payload.fee" in row["reason"]
    assert store.events()[0].event.payload.fee == Decimal("0.35")


def test_every_conflict_of_a_directly_ingested_batch_is_recorded(store):
    """AuditStore.ingest with ParsedEvents built by the caller (index left at its default)."""
    first, second = fill("o-x1"), fill("o-x2")
    store.ingest([ParsedEvent(first, first.model_dump_json()), ParsedEvent(second, second.model_dump_json())],
                 batch_id="direct-1", received_at=RECEIVED)
    texts_changed = [changed(first, fee="1"), changed(second, fee="2")]
    parsed = [parse_event(t) for t in texts_changed]
    result = store.ingest(parsed, batch_id="direct-2", received_at=RECEIVED)
    assert result.conflicts == 2
    rows = store.rejected()
    assert len(rows) == 2, f"IngestResult says 2 conflicts, rejected_events holds {len(rows)}"
    assert sorted(r["raw"] for r in rows) == sorted(texts_changed)


def test_invalid_items_are_recorded_and_good_ones_beside_them_stored(store):
    good_1, good_2 = signal("sig-i", i=1), fill("o-i", i=2)
    bad_json = '{"event_type": "fill", "occurred_at": '
    bad_event = changed(order("sig-i", "o-i", i=3), side="hold")
    not_utf8 = b'{"event_type": "\xff"}'
    items = [good_1.model_dump_json(), bad_json, good_2.model_dump_json(), bad_event, not_utf8]
    result = ingest(store, items, batch_id="mixed")
    assert result.to_dict() == {"inserted": 2, "duplicates": 0, "conflicts": 0, "rejected": 3}
    assert [s.event for s in store.events()] == [good_1, good_2]
    rows = sorted(store.rejected(), key=lambda r: r["position"])
    assert [r["position"] for r in rows] == [1, 3, 4]
    assert all(r["batch_id"] == "mixed" and r["code"] == "invalid" for r in rows)
    assert rows[0]["raw"] == bad_json and "not valid JSON" in rows[0]["reason"]
    assert rows[1]["raw"] == bad_event
    assert "payload.side" in rows[1]["reason"] and "'hold'" in rows[1]["reason"]
    assert rows[1]["event_type"] == "order"
    assert rows[1]["event_id"] == json.loads(bad_event)["event_id"]
    assert "not UTF-8" in rows[2]["reason"]
    assert rows[0]["received_at"] is not None


def test_redelivered_batch_does_not_duplicate_its_rejections(store):
    event = fill("o-rr")
    ingest(store, [event.model_dump_json()], batch_id="seed")
    items = [signal("sig-rr").model_dump_json(), "garbage", changed(event, price="1"), '{"event_type": "nope"}']
    first = ingest(store, items, batch_id="redelivered")
    assert (first.inserted, first.conflicts, first.rejected) == (1, 1, 2)
    rows = store.rejected()
    second = ingest(store, items, batch_id="redelivered")
    assert (second.inserted, second.duplicates) == (0, 1)
    assert store.rejected() == rows
    assert len(rows) == 3
    assert store.count() == 2


# ------------------------------------------------------------------ received_at


def test_received_at_comes_back_as_the_aware_utc_instant(store):
    ingest(store, [fill("o-t").model_dump_json()], received_at=RECEIVED)
    received = store.events()[0].received_at
    assert received.tzinfo is not None, f"received_at came back naive: {received!r}"
    assert received == RECEIVED


def test_received_at_in_another_offset_is_stored_as_the_same_instant(store):
    plus_0530 = timezone(timedelta(hours=5, minutes=30))
    moment = datetime(2026, 11, 21, 20, 0, tzinfo=plus_0530)  # 14:30 UTC
    ingest(store, [fill("o-o").model_dump_json()], received_at=moment)
    frame = store.to_dataframe()
    assert frame["received_at"].iloc[0] == pd.Timestamp("2026-11-21T14:30:00Z")


# ------------------------------------------------------------------ events()


def _populate_for_queries(store):
    events = [
        market_data(i=0, symbol="AAPL", occurred_at=BASE_NS + 0),
        market_data(i=0, symbol="MSFT", occurred_at=BASE_NS + 10, source="feed-2"),
        signal("sig-q1", occurred_at=BASE_NS + 20, strategy_id="momentum", symbol="AAPL"),
        signal("sig-q2", occurred_at=BASE_NS + 30, strategy_id="meanrev", symbol="MSFT", source="engine-2"),
        order("sig-q1", "o-q1", occurred_at=BASE_NS + 40),
        fill("o-q1", occurred_at=BASE_NS + 50),
        order("sig-q2", "o-q2", occurred_at=BASE_NS + 60, strategy_id="meanrev", symbol="MSFT", source="engine-2"),
    ]
    # Ingest out of time order: events() orders by occurred_at.
    ingest(store, texts(events[4:]))
    ingest(store, texts(events[:4]))
    return events


def test_events_filters(store):
    events = _populate_for_queries(store)
    ids = lambda stored: [str(s.event.event_id) for s in stored]  # noqa: E731
    want = lambda *k: [str(events[i].event_id) for i in k]  # noqa: E731
    assert ids(store.events()) == want(0, 1, 2, 3, 4, 5, 6)
    assert ids(store.events(BASE_NS + 10, BASE_NS + 50)) == want(1, 2, 3, 4)  # [start, end)
    assert ids(store.events(start_ns=BASE_NS + 50)) == want(5, 6)
    assert ids(store.events(end_ns=BASE_NS + 10)) == want(0)
    assert ids(store.events(event_types="signal")) == want(2, 3)
    assert ids(store.events(event_types=["order", "fill"])) == want(4, 5, 6)
    assert ids(store.events(symbol="MSFT")) == want(1, 3, 6)
    assert ids(store.events(strategy_id="meanrev")) == want(3, 6)
    assert ids(store.events(source="engine-2")) == want(3, 6)
    assert ids(store.events(source="feed-2")) == want(1)
    assert ids(store.events(BASE_NS, BASE_NS + 100, event_types="order", symbol="AAPL", strategy_id="momentum")) == want(4)
    assert ids(store.events(limit=2)) == want(0, 1)
    assert store.events(symbol="NONE") == []


# ------------------------------------------------------------------ trade history


def test_reconstruct_trade_history_gathers_fills_that_only_carry_order_id(store):
    sid = "sig-h"
    chain = [
        # The execution venue's clock is behind the strategy's: its order and fill are stamped
        # before the signal. The fill carries only order_id.
        fill("o-h1", fill_id="f1", i=-500),
        signal(sid, i=0),
        risk_check(sid, i=5, passed=True),
        order(sid, "o-h1", status="submitted", i=-600),
        order(sid, "o-h1", status="accepted", i=-550),
        fill("o-h1", fill_id="f2", i=30),
        PositionUpdateEvent(occurred_at=BASE_NS + 31, source="engine-1", symbol="AAPL", order_id="o-h1",
                            payload=PositionUpdatePayload(quantity=Decimal(100))),
        order(sid, "o-h2", status="submitted", i=40),
        fill("o-h2", fill_id="f3", i=41),
    ]
    unrelated = [signal("sig-other", i=1), order("sig-other", "o-other", i=11), fill("o-other", fill_id="fx", i=21),
                 market_data(i=3)]
    ingest(store, texts(chain[5:] + unrelated))
    ingest(store, texts(chain[:5]))
    history = store.reconstruct_trade_history(sid)
    got = [(s.event_type, getattr(s.event.payload, "fill_id", None) or getattr(s.event.payload, "status", None))
           for s in history.events]
    assert got == [
        ("signal", None),
        ("risk_check", None),
        ("order", "submitted"),
        ("order", "accepted"),
        ("fill", "f1"),
        ("fill", "f2"),
        ("position_update", None),
        ("order", "submitted"),
        ("fill", "f3"),
    ]
    assert history.order_ids == ["o-h1", "o-h2"]
    assert history.signal.event.signal_id == sid
    assert all(s.event.order_id not in ("o-other",) for s in history.events)


def test_unknown_signal(store):
    ingest(store, texts([signal("sig-known")]))
    with pytest.raises(UnknownSignal, match="sig-missing"):
        store.reconstruct_trade_history("sig-missing")


# ------------------------------------------------------------------ to_dataframe


def test_to_dataframe_columns_and_exact_nanoseconds(store):
    ns = BASE_NS + 123_456_789
    events = [
        fill("o-df", occurred_at=ns + 1),
        signal("sig-df", occurred_at=ns),
        market_data(occurred_at=ns + 999_999_999),
    ]
    ingest(store, texts(events))
    frame = store.to_dataframe()
    for column in ["seq", "event_id", "event_type", "occurred_at_ns", "occurred_at", "received_at", "source",
                   "strategy_id", "symbol", "signal_id", "order_id", "payload.price", "payload.quantity",
                   "payload.fill_id", "payload.direction", "payload.confidence", "payload.bid"]:
        assert column in frame.columns, column
    assert "raw" not in frame.columns and "payload" not in frame.columns
    assert list(frame["event_type"]) == ["signal", "fill", "market_data"]
    assert list(frame["occurred_at_ns"]) == [ns, ns + 1, ns + 999_999_999]
    assert str(frame["occurred_at"].dtype) == "datetime64[ns, UTC]"
    assert [t.value for t in frame["occurred_at"]] == [ns, ns + 1, ns + 999_999_999]
    assert list(frame["event_id"]) == [str(events[1].event_id), str(events[0].event_id), str(events[2].event_id)]
    assert frame["payload.price"].dtype == "float64"
    assert frame["payload.price"].iloc[1] == pytest.approx(100.04)
    assert frame["payload.quantity"].iloc[1] == 100.0
    assert frame["payload.fill_id"].iloc[1] == "f1"
    assert frame["payload.confidence"].iloc[0] == pytest.approx(0.7)
    assert frame["payload.factors.momentum"].iloc[0] == pytest.approx(0.8)
    assert frame["received_at"].iloc[0] == pd.Timestamp(RECEIVED)

    only_fills = store.to_dataframe(event_types="fill", flatten_payload=False)
    assert len(only_fills) == 1
    assert only_fills["payload"].iloc[0]["price"] == "100.040"


def test_to_dataframe_of_nothing(store):
    frame = store.to_dataframe()
    assert frame.empty
    assert {"seq", "event_id", "occurred_at", "occurred_at_ns"} <= set(frame.columns)


# ------------------------------------------------------------------ summary


def test_summary_counts(store):
    window = (BASE_NS, BASE_NS + HOUR_NS)
    inside = [
        signal("sig-s1", i=1, strategy_id="momentum"),
        signal("sig-s2", i=2, strategy_id="meanrev"),
        risk_check("sig-s1", i=3, passed=False),
        risk_check("sig-s1", i=4, passed=True),
        risk_check("sig-s2", i=5, passed=False, strategy_id="meanrev"),
        breaker("tripped", i=6),
        breaker("reset", i=7),
        breaker("tripped", i=8, strategy_id=None),
        AccountEvent(occurred_at=BASE_NS + 9, source="engine-1", payload=AccountPayload(equity=Decimal("1e6"))),
    ]
    outside = [
        risk_check("sig-s3", i=HOUR_NS, passed=False),  # at end_ns: excluded
        breaker("tripped", i=-1),
        signal("sig-s4", i=HOUR_NS + 5),
    ]
    received_in = ns_to_datetime(BASE_NS + 60 * 10**9)
    received_out = ns_to_datetime(BASE_NS + 2 * HOUR_NS)
    ingest(store, texts(inside + outside), batch_id="b1", received_at=received_in)
    ingest(store, ["junk", changed(inside[0], confidence=0.1), '{"event_type": "fill"}'], batch_id="b2",
           received_at=received_in)
    ingest(store, ["more junk"], batch_id="b3", received_at=received_out)

    summary = store.summary(*window)
    assert (summary.start_ns, summary.end_ns) == window
    assert summary.events == 9
    assert summary.by_type == {"signal": 2, "risk_check": 3, "circuit_breaker": 3, "account": 1}
    assert summary.by_strategy == {"momentum": 5, "meanrev": 2, "(none)": 2}
    assert summary.failed_risk_checks == 2
    assert summary.circuit_breaker_trips == 2
    assert summary.rejected_by_code == {"invalid": 2, "conflict": 1}
    assert summary.rejected_events == 3
    assert json.loads(json.dumps(summary.to_dict()))["failed_risk_checks"] == 2


def test_summary_of_an_empty_period(store):
    summary = store.summary(BASE_NS, BASE_NS + 1)
    assert (summary.events, summary.by_type, summary.rejected_events, summary.failed_risk_checks,
            summary.circuit_breaker_trips) == (0, {}, 0, 0, 0)


# ------------------------------------------------------------------ follow


def test_follow_returns_everything_in_order_across_calls(store):
    batches = [[market_data(i=b * 10 + k) for k in range(size)] for b, size in enumerate([3, 1, 5, 2])]
    expected: list[str] = []
    cursor = None
    seen: list[str] = []
    for batch in batches:
        ingest(store, texts(batch))
        expected += [str(e.event_id) for e in batch]
        # Drain with a small limit after every batch.
        while True:
            got, cursor = store.follow(cursor, limit=2)
            assert len(got) <= 2
            if not got:
                break
            seen += [str(s.event.event_id) for s in got]
    assert seen == expected
    # Nothing more, and the cursor stays put.
    got, again = store.follow(cursor, limit=2)
    assert got == [] and again == cursor


def test_follow_cursor_token_round_trip(store):
    ingest(store, texts([market_data(i=k) for k in range(4)]))
    first, cursor = store.follow(None, limit=3)
    token = cursor.to_token()
    rest, _ = store.follow(FollowCursor.from_token(token), limit=10)
    assert len(first) == 3 and len(rest) == 1
    assert rest[0].seq > first[-1].seq
    assert FollowCursor.from_token(None) == FollowCursor() == FollowCursor.from_token("")
    with pytest.raises(ValueError, match="TXID:SEQ"):
        FollowCursor.from_token("garbage")


def test_follow_skips_rejected_items(store):
    ingest(store, [market_data(i=1).model_dump_json(), "junk", market_data(i=2).model_dump_json()])
    got, _ = store.follow(None, limit=10)
    assert len(got) == 2


# ------------------------------------------------------------------ readable trail


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_trail_stays_readable_after_a_dict_item_with_a_non_finite_extra_field(store, bad):
    """A decoded JSON object (kombu's JSON turns NaN into float('nan')) with a non-finite number
    in an unknown payload field: rejected or stored, the trail must stay readable."""
    good = market_data(i=1).model_dump_json()
    item = json.loads(order("sig-n", "o-n").model_dump_json())
    item["payload"]["engine_score"] = bad
    result = ingest(store, [good, item])
    assert result.inserted + result.rejected == 2
    assert len(store.events()) == result.inserted
    got, _ = store.follow(None, limit=10)
    assert len(got) == result.inserted
