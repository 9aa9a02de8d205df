"""Trade history reconstruction (causal order) and conflict descriptions."""

from __future__ import annotations

import json
import random
from datetime import datetime, timezone
from decimal import Decimal

from tradewatch.domain.events import (
    LlmDecisionEvent,
    LlmDecisionPayload,
    PositionUpdateEvent,
    PositionUpdatePayload,
    RiskCheckEvent,
    RiskCheckPayload,
    parse_event,
)
from tradewatch.domain.trail import StoredEvent, build_trade_history, describe_difference

from tests.factories import BASE_NS, fill, order, signal

RECEIVED = datetime(2026, 11, 21, 14, 30, tzinfo=timezone.utc)


def stored(event, seq: int) -> StoredEvent:
    return StoredEvent(seq=seq, txid=0, event=event, raw=event.model_dump_json(), received_at=RECEIVED)


def risk_check(signal_id: str, i: int, name: str = "position_limit", passed: bool = True) -> RiskCheckEvent:
    return RiskCheckEvent(occurred_at=BASE_NS + i, source="risk", signal_id=signal_id, strategy_id="momentum",
                          symbol="AAPL", payload=RiskCheckPayload(check_name=name, passed=passed))


def llm_decision(signal_id: str, i: int) -> LlmDecisionEvent:
    return LlmDecisionEvent(occurred_at=BASE_NS + i, source="llm", signal_id=signal_id,
                            payload=LlmDecisionPayload(model="gpt-x", decision="approve"))


def position_update(order_id: str, i: int) -> PositionUpdateEvent:
    return PositionUpdateEvent(occurred_at=BASE_NS + i, source="engine-1", symbol="AAPL", order_id=order_id,
                               payload=PositionUpdatePayload(quantity=Decimal(100)))


def labels(history) -> list[str]:
    out = []
    for e in history.events:
        label = e.event_type
        if e.event_type == "order":
            label += f":{e.event.payload.status}"
        if e.event_type == "fill":
            label += f":{e.event.payload.fill_id}"
        if e.event_type == "risk_check":
            label += f":{e.event.payload.check_name}"
        out.append(label)
    return out


# ------------------------------------------------------------------ causal order


def test_causal_order_follows_the_chain_then_time():
    sid = "sig-1"
    events = [
        stored(signal(sid, i=0), seq=1),
        stored(risk_check(sid, i=5, name="exposure"), seq=2),
        stored(risk_check(sid, i=3, name="position_limit"), seq=3),
        stored(llm_decision(sid, i=8), seq=4),
        stored(order(sid, "o1", status="submitted", i=10), seq=5),
        stored(order(sid, "o1", status="accepted", i=12), seq=6),
        stored(fill("o1", fill_id="f1", i=20), seq=7),
        stored(position_update("o1", i=21), seq=8),
        stored(fill("o1", fill_id="f2", i=30), seq=9),
    ]
    shuffled = events[:]
    random.Random(7).shuffle(shuffled)
    history = build_trade_history(sid, shuffled)
    assert labels(history) == [
        "signal",
        "risk_check:position_limit",
        "risk_check:exposure",
        "llm_decision",
        "order:submitted",
        "order:accepted",
        "fill:f1",
        "position_update",
        "fill:f2",
    ]
    assert history.signal_id == sid
    assert history.signal.seq == 1
    assert history.order_ids == ["o1"]
    assert [e.seq for e in history.of_type("fill")] == [7, 9]


def test_stages_beat_clocks_that_run_behind():
    """A fill stamped before the signal (the venue's clock is behind) still comes after the
    signal, its risk checks and its LLM decisions."""
    sid = "sig-2"
    events = [
        stored(fill("o1", fill_id="f1", i=-5_000), seq=1),  # clock behind: earlier than everything
        stored(order(sid, "o1", i=-6_000), seq=2),
        stored(llm_decision(sid, i=-100), seq=3),
        stored(risk_check(sid, i=50), seq=4),
        stored(signal(sid, i=100), seq=5),
    ]
    history = build_trade_history(sid, events)
    assert labels(history) == ["signal", "risk_check:position_limit", "llm_decision", "order:submitted", "fill:f1"]


def test_execution_stage_interleaves_orders_fills_and_positions_by_time():
    sid = "sig-3"
    events = [
        stored(signal(sid, i=0), seq=1),
        stored(fill("o1", fill_id="f1", i=15), seq=2),
        stored(order(sid, "o1", status="submitted", i=10), seq=3),
        stored(position_update("o1", i=16), seq=4),
        stored(order(sid, "o1", status="cancelled", i=40), seq=5),
        stored(fill("o1", fill_id="f2", i=30), seq=6),
    ]
    history = build_trade_history(sid, events)
    assert labels(history) == ["signal", "order:submitted", "fill:f1", "position_update", "fill:f2", "order:cancelled"]


def test_same_nanosecond_ties_order_before_fill_before_position_update_then_seq():
    sid = "sig-4"
    events = [
        stored(position_update("o1", i=50), seq=1),
        stored(fill("o1", fill_id="f2", i=50), seq=3),
        stored(fill("o1", fill_id="f1", i=50), seq=2),
        stored(order(sid, "o1", status="accepted", i=50), seq=5),
        stored(order(sid, "o1", status="submitted", i=50), seq=4),
        stored(signal(sid, i=0), seq=6),
    ]
    history = build_trade_history(sid, events)
    assert labels(history) == ["signal", "order:submitted", "order:accepted", "fill:f1", "fill:f2", "position_update"]
    assert [e.seq for e in history.events] == [6, 4, 5, 2, 3, 1]


def test_risk_checks_and_decisions_tie_by_seq():
    sid = "sig-5"
    events = [
        stored(risk_check(sid, i=5, name="b"), seq=9),
        stored(risk_check(sid, i=5, name="a"), seq=8),
        stored(signal(sid, i=0), seq=1),
    ]
    assert labels(build_trade_history(sid, events)) == ["signal", "risk_check:a", "risk_check:b"]


def test_duplicates_by_seq_are_removed():
    sid = "sig-6"
    sig = stored(signal(sid, i=0), seq=1)
    f = stored(fill("o1", i=20), seq=3)
    o = stored(order(sid, "o1", i=10), seq=2)
    history = build_trade_history(sid, [sig, o, f, f, sig, o, o])
    assert [e.seq for e in history.events] == [1, 2, 3]


def test_empty_history_and_history_without_its_signal():
    assert build_trade_history("nothing", []).events == []
    assert build_trade_history("nothing", []).signal is None
    history = build_trade_history("sig-7", [stored(risk_check("sig-7", i=1), seq=4)])
    assert history.signal is None
    assert labels(history) == ["risk_check:position_limit"]


def test_to_dict_is_json_safe_and_ordered():
    sid = "sig-8"
    history = build_trade_history(sid, [stored(fill("o1", i=20), seq=3), stored(signal(sid, i=0), seq=1)])
    data = json.loads(json.dumps(history.to_dict()))
    assert data["signal_id"] == sid
    assert [e["event_type"] for e in data["events"]] == ["signal", "fill"]
    assert [e["seq"] for e in data["events"]] == [1, 3]
    assert data["events"][1]["payload"]["price"] == "100.040"
    assert data["events"][0]["occurred_at"].endswith("Z")


# ------------------------------------------------------------------ describe_difference


def _reparse(text: str):
    return parse_event(text).event


def test_identical_events_have_no_difference():
    event = fill("o1")
    assert describe_difference(event, _reparse(event.model_dump_json())) is None


def test_key_order_does_not_matter():
    event = fill("o1")
    data = json.loads(event.model_dump_json())
    reordered = dict(reversed(list(data.items())))
    reordered["payload"] = dict(reversed(list(data["payload"].items())))
    assert json.dumps(reordered) != event.model_dump_json()
    assert describe_difference(_reparse(event.model_dump_json()), _reparse(json.dumps(reordered))) is None


def test_value_equal_decimal_spellings_are_the_same_fact():
    event = fill("o1")
    data = json.loads(event.model_dump_json())
    one = dict(data, payload={**data["payload"], "price": "100.0", "quantity": "100"})
    two = dict(data, payload={**data["payload"], "price": "100.00", "quantity": "1E+2"})
    assert describe_difference(_reparse(json.dumps(one)), _reparse(json.dumps(two))) is None
    # A JSON number and a decimal string of the same value too.
    three = json.dumps(dict(data, payload={**data["payload"], "price": "@P@"})).replace('"@P@"', "100.000")
    assert describe_difference(_reparse(json.dumps(one)), _reparse(three)) is None


def test_equivalent_timestamp_spellings_are_the_same_fact():
    event = fill("o1")
    data = json.loads(event.model_dump_json())
    as_int = dict(data, occurred_at=event.occurred_at)
    assert describe_difference(_reparse(json.dumps(data)), _reparse(json.dumps(as_int))) is None


def test_different_content_lists_the_fields_with_both_values():
    event = fill("o1")
    data = json.loads(event.model_dump_json())
    changed = dict(data, source="engine-2", payload={**data["payload"], "price": "100.050"})
    reason = describe_difference(_reparse(json.dumps(data)), _reparse(json.dumps(changed)))
    assert reason is not None
    assert reason.startswith("fields differ: ")
    assert "payload.price (stored '100.040', got '100.050')" in reason
    assert "source (stored 'engine-1', got 'engine-2')" in reason


def test_added_and_removed_payload_fields_are_named():
    event = fill("o1")
    data = json.loads(event.model_dump_json())
    added = dict(data, payload={**data["payload"], "route": "dark"})
    reason = describe_difference(_reparse(json.dumps(data)), _reparse(json.dumps(added)))
    assert "payload.route (stored None, got 'dark')" in reason


def test_many_differences_are_summarised():
    event = fill("o1")
    data = json.loads(event.model_dump_json())
    changed = dict(data, source="x", symbol="MSFT",
                   payload={**data["payload"], "price": "1", "quantity": "2", "fee": "3", "venue": "V", "liquidity": "maker"})
    reason = describe_difference(_reparse(json.dumps(data)), _reparse(json.dumps(changed)))
    assert reason.count(" (stored ") == 5
    assert reason.endswith(" and 2 more")


def test_a_number_and_a_string_in_an_unknown_field_name_the_field():
    """Two events that are not equal must never produce an empty field list."""
    event = fill("o1")
    data = json.loads(event.model_dump_json())
    as_number = json.dumps(dict(data, payload={**data["payload"], "ratio": "@R@"})).replace('"@R@"', "0.5")
    as_string = json.dumps(dict(data, payload={**data["payload"], "ratio": "0.5"}))
    reason = describe_difference(_reparse(as_number), _reparse(as_string))
    # Either the two count as the same fact (None) or the reason names the field.
    assert reason is None or "payload.ratio" in reason, reason
