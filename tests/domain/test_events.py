"""The event contract: models, JSON round trips, exact decimals, actionable errors, parse_batch."""

from __future__ import annotations

import copy
import json
import uuid
from decimal import Decimal

import pytest
from pydantic import ValidationError

from tradewatch.domain.events import (
    EVENT_TYPES,
    MODEL_BY_TYPE,
    AccountEvent,
    CircuitBreakerEvent,
    EventValidationError,
    FillEvent,
    LlmDecisionEvent,
    MarketDataEvent,
    OrderEvent,
    PositionUpdateEvent,
    RiskCheckEvent,
    SignalEvent,
    SystemEvent,
    parse_batch,
    parse_event,
)

OCCURRED = "2026-11-21T14:30:00.123456789Z"
OCCURRED_NS = 1_795_271_400_123_456_789

# One valid example per event type of DESIGN.md, as an engine would send it.
EXAMPLES: dict[str, dict] = {
    "market_data": {
        "symbol": "AAPL",
        "payload": {"bid": "100.01", "ask": "100.03", "last": "100.02", "volume": "1500"},
    },
    "signal": {
        "strategy_id": "momentum", "symbol": "AAPL", "signal_id": "sig-1",
        "payload": {"direction": "long", "confidence": 0.72, "horizon_seconds": 300,
                    "factors": {"momentum": 0.8, "value": -0.2}, "model": "xgb-v3", "generation_seconds": 0.004},
    },
    "risk_check": {
        "strategy_id": "momentum", "symbol": "AAPL", "signal_id": "sig-1",
        "payload": {"check_name": "position_limit", "passed": False, "score": 1.2, "limit": "100000",
                    "value": "120000.50", "override": True, "approver": "risk-officer"},
    },
    "llm_decision": {
        "strategy_id": "momentum", "symbol": "AAPL", "signal_id": "sig-1",
        "payload": {"model": "gpt-x", "decision": "approve", "rationale": "trend intact", "confidence": 0.9,
                    "reviewed_by": "desk-lead"},
    },
    "order": {
        "strategy_id": "momentum", "symbol": "AAPL", "signal_id": "sig-1", "order_id": "ord-1",
        "payload": {"side": "buy", "quantity": "100", "order_type": "limit", "limit_price": "101.250",
                    "status": "submitted", "venue": "XNAS", "decision_price": "101.20"},
    },
    "fill": {
        "strategy_id": "momentum", "symbol": "AAPL", "order_id": "ord-1",
        "payload": {"fill_id": "fill-1", "side": "buy", "quantity": "60", "price": "101.240", "venue": "XNAS",
                    "fee": "0.35", "liquidity": "maker", "arrival_price": "101.20", "bid": "101.23",
                    "ask": "101.25", "vwap": "101.241"},
    },
    "position_update": {
        "strategy_id": "momentum", "symbol": "AAPL",
        "payload": {"quantity": "-60", "avg_price": "101.240", "market_price": "101.30",
                    "realized_pnl": "-12.50", "unrealized_pnl": "3.60"},
    },
    "account": {
        "payload": {"equity": "1000000.00", "cash": "250000.00", "buying_power": "500000",
                    "gross_exposure": "750000", "net_exposure": "-20000", "margin_used": "10000"},
    },
    "circuit_breaker": {
        "strategy_id": "momentum",
        "payload": {"state": "tripped", "scope": "strategy", "trading_state": "HALTED", "reason": "daily loss"},
    },
    "system": {
        "payload": {"component": "gateway", "level": "warning", "message": "reconnecting",
                    "metrics": {"latency_seconds": 0.25, "queue_depth": 12}},
    },
}

MODEL_CLASSES = {
    "market_data": MarketDataEvent, "signal": SignalEvent, "risk_check": RiskCheckEvent,
    "llm_decision": LlmDecisionEvent, "order": OrderEvent, "fill": FillEvent,
    "position_update": PositionUpdateEvent, "account": AccountEvent,
    "circuit_breaker": CircuitBreakerEvent, "system": SystemEvent,
}


def envelope(kind: str, **overrides) -> dict:
    """A valid event of type ``kind`` as a JSON-ready dict, with ``overrides`` applied."""
    body = copy.deepcopy(EXAMPLES[kind])
    data = {
        "event_id": str(uuid.uuid4()),
        "event_type": kind,
        "occurred_at": OCCURRED,
        "source": "engine-1",
        "schema_version": 1,
        **body,
    }
    for key, value in overrides.items():
        if key == "payload":
            data["payload"] = {**data["payload"], **value}
        else:
            data[key] = value
    return data


def reason_of(item) -> str:
    with pytest.raises(EventValidationError) as info:
        parse_event(item)
    return str(info.value)


# ------------------------------------------------------------------ the ten types


def test_every_design_type_has_a_model_and_an_example():
    assert set(EVENT_TYPES) == set(EXAMPLES) == set(MODEL_CLASSES)
    assert len(EVENT_TYPES) == 10
    for event_type, model in MODEL_CLASSES.items():
        assert MODEL_BY_TYPE[event_type] is model


@pytest.mark.parametrize("event_type", sorted(EXAMPLES))
def test_valid_example_parses_to_its_model(event_type):
    data = envelope(event_type)
    text = json.dumps(data)
    parsed = parse_event(text)
    event = parsed.event
    assert type(event) is MODEL_CLASSES[event_type]
    assert event.event_type == event_type
    assert str(event.event_id) == data["event_id"]
    assert event.occurred_at == OCCURRED_NS
    assert event.source == "engine-1"
    assert event.schema_version == 1
    # The raw text is kept exactly as received.
    assert parsed.raw == text
    # Dict input gives the same event.
    assert parse_event(data).event == event


@pytest.mark.parametrize("event_type", sorted(EXAMPLES))
def test_json_round_trip_is_value_equal(event_type):
    event = parse_event(json.dumps(envelope(event_type))).event
    text = event.model_dump_json()
    again = parse_event(text).event
    assert again == event
    # And a second trip is stable, text included.
    assert again.model_dump_json() == text


@pytest.mark.parametrize("event_type", sorted(EXAMPLES))
def test_model_built_in_python_round_trips(event_type):
    data = envelope(event_type)
    event = MODEL_CLASSES[event_type].model_validate(data)
    assert parse_event(event.model_dump_json()).event == event


def test_occurred_at_serialises_as_rfc3339_with_nine_digits():
    event = parse_event(envelope("fill", occurred_at=OCCURRED_NS)).event
    dumped = json.loads(event.model_dump_json())
    assert dumped["occurred_at"] == OCCURRED
    # In Python the field is the integer.
    assert event.model_dump()["occurred_at"] == OCCURRED_NS


def test_occurred_at_accepts_offsets_and_integer_nanoseconds():
    for value in ["2026-11-21T20:00:00.123456789+05:30", "2026-11-21T10:30:00.123456789-04:00", OCCURRED_NS]:
        assert parse_event(envelope("signal", occurred_at=value)).event.occurred_at == OCCURRED_NS


def test_models_are_frozen():
    event = parse_event(envelope("order")).event
    with pytest.raises(ValidationError):
        event.symbol = "MSFT"
    with pytest.raises(ValidationError):
        event.payload.quantity = Decimal(1)


# ------------------------------------------------------------------ exact decimals


def test_decimals_are_kept_exactly_as_written():
    text = json.dumps(envelope("order", payload={"limit_price": "101.250", "quantity": "100.000"}))
    event = parse_event(text).event
    assert str(event.payload.limit_price) == "101.250"
    assert str(event.payload.quantity) == "100.000"
    dumped = json.loads(event.model_dump_json())
    assert dumped["payload"]["limit_price"] == "101.250"
    assert str(parse_event(event.model_dump_json()).event.payload.limit_price) == "101.250"


def test_json_numbers_are_decoded_as_exact_decimals():
    thirty_digits = "123456789012345.123456789012345"  # 30 significant digits, beyond float and the default context
    template = json.dumps(envelope("fill", payload={"price": "@PRICE@", "quantity": "@QTY@"}))
    text = template.replace('"@PRICE@"', thirty_digits).replace('"@QTY@"', "101.250")
    event = parse_event(text).event
    assert event.payload.price == Decimal(thirty_digits)
    assert str(event.payload.price) == thirty_digits
    assert str(event.payload.quantity) == "101.250"
    again = parse_event(event.model_dump_json()).event
    assert str(again.payload.price) == thirty_digits
    assert str(again.payload.quantity) == "101.250"
    assert again == event


def test_value_equal_decimals_compare_equal():
    a = parse_event(envelope("fill", payload={"price": "101.25"})).event
    b = parse_event(envelope("fill", event_id=str(a.event_id), payload={"price": "101.2500"})).event
    assert a == b


# ------------------------------------------------------------------ unknown payload fields


EXTRAS = {
    "engine_tag": "alpha",
    "attempt": 3,
    "flag": True,
    "nothing": None,
    "ratio": 0.125,
    "nested": {"leg": 2, "weights": [0.5, 0.25], "note": "x"},
    "items": [1, "two", {"three": 3}],
}


@pytest.mark.parametrize("event_type", ["order", "fill", "signal", "account", "system"])
def test_unknown_payload_fields_are_kept(event_type):
    text = json.dumps(envelope(event_type, payload=EXTRAS))
    event = parse_event(text).event
    for key, value in EXTRAS.items():
        assert getattr(event.payload, key) == value
    dumped = json.loads(event.model_dump_json())
    for key in EXTRAS:
        assert key in dumped["payload"]


@pytest.mark.parametrize("event_type", ["fill", "system"])
def test_unknown_payload_fields_survive_the_round_trip_with_their_json_types(event_type):
    """Engine JSON -> event -> model_dump_json -> event: value-equal, and each unknown field
    keeps its JSON type (a number stays a number, a string stays a string)."""
    text = json.dumps(envelope(event_type, payload=EXTRAS))
    event = parse_event(text).event
    again_text = event.model_dump_json()
    sent = json.loads(text)["payload"]
    kept = json.loads(again_text)["payload"]
    for key in EXTRAS:
        assert kept[key] == sent[key], f"payload.{key}: sent {sent[key]!r}, re-serialised as {kept[key]!r}"
    assert parse_event(again_text).event == event


# ------------------------------------------------------------------ envelope


def test_unknown_envelope_fields_are_rejected():
    reason = reason_of(envelope("order", venue_hint="XNAS"))
    assert "venue_hint" in reason
    assert "unknown envelope field" in reason
    assert "payload" in reason  # says where extra data may go


@pytest.mark.parametrize(
    ("event_type", "missing", "why"),
    [
        ("order", "order_id", "the key shared by every status change of the order and its fills"),
        ("order", "symbol", "the instrument traded"),
        ("order", "strategy_id", "the strategy that sent it"),
        ("fill", "order_id", "the order this fill executes"),
        ("fill", "symbol", "the instrument traded"),
        ("signal", "signal_id", "the key its risk checks, LLM decisions and orders refer to"),
        ("signal", "strategy_id", "the strategy that produced it"),
        ("signal", "symbol", "the instrument it is about"),
        ("risk_check", "signal_id", "the signal the check was run for"),
        ("llm_decision", "signal_id", "the signal the decision was about"),
        ("market_data", "symbol", "the instrument quoted"),
        ("position_update", "symbol", "the instrument held"),
    ],
)
def test_required_envelope_keys_per_type(event_type, missing, why):
    data = envelope(event_type)
    data.pop(missing, None)
    reason = reason_of(data)
    assert event_type in reason
    assert f"{missing} ({why})" in reason
    # null is the same as absent.
    data[missing] = None
    assert f"{missing} ({why})" in reason_of(data)


def test_all_missing_required_keys_are_listed_together():
    data = envelope("order")
    for key in ("order_id", "symbol", "strategy_id"):
        del data[key]
    reason = reason_of(data)
    for key in ("order_id", "symbol", "strategy_id"):
        assert key in reason


@pytest.mark.parametrize("event_type", ["account", "system"])
def test_types_without_required_keys_accept_a_bare_envelope(event_type):
    event = parse_event(envelope(event_type)).event
    assert event.strategy_id is None and event.symbol is None


def test_strategy_scoped_circuit_breaker_needs_strategy_id():
    data = envelope("circuit_breaker")
    del data["strategy_id"]
    reason = reason_of(data)
    assert "strategy_id" in reason and "scope 'strategy'" in reason
    data["payload"]["scope"] = "global"
    assert parse_event(data).event.payload.scope == "global"


@pytest.mark.parametrize("field", ["event_type", "occurred_at", "source", "payload"])
def test_missing_envelope_field_is_named(field):
    data = envelope("fill")
    del data[field]
    reason = reason_of(data)
    assert field in reason
    assert "missing" in reason


def test_unknown_event_type_lists_the_accepted_ones():
    reason = reason_of(envelope("fill", event_type="trade"))
    assert "event_type" in reason
    assert "'trade'" in reason
    for event_type in EVENT_TYPES:
        assert event_type in reason


def test_bad_event_id_is_named_with_its_value():
    reason = reason_of(envelope("fill", event_id="not-a-uuid"))
    assert "event_id" in reason and "'not-a-uuid'" in reason and "UUID" in reason


def test_schema_version_other_than_one_is_rejected():
    reason = reason_of(envelope("fill", schema_version=2))
    assert "schema_version" in reason and "2" in reason and "1" in reason


# ------------------------------------------------------------------ payload validation


def test_limit_order_without_limit_price_is_rejected():
    data = envelope("order")
    del data["payload"]["limit_price"]
    reason = reason_of(data)
    assert "payload" in reason
    assert "limit order needs limit_price" in reason
    # A market order does not need one.
    data["payload"]["order_type"] = "market"
    assert parse_event(data).event.payload.limit_price is None


def test_literal_error_names_field_value_and_accepted_values():
    reason = reason_of(envelope("order", payload={"side": "hold"}))
    assert "payload.side" in reason
    assert "'hold'" in reason
    assert "'buy'" in reason and "'sell'" in reason


def test_range_error_names_field_value_and_bound():
    reason = reason_of(envelope("fill", payload={"quantity": "-5"}))
    assert "payload.quantity" in reason and "'-5'" in reason and "greater than 0" in reason
    reason = reason_of(envelope("signal", payload={"confidence": 1.5}))
    assert "payload.confidence" in reason and "1.5" in reason and "less than or equal to 1" in reason


def test_missing_payload_field_is_named():
    data = envelope("fill")
    del data["payload"]["fill_id"]
    reason = reason_of(data)
    assert "payload.fill_id" in reason and "missing" in reason


def test_market_data_needs_a_price():
    reason = reason_of(envelope("market_data", payload={"bid": None, "ask": None, "last": None}))
    assert "at least one of bid, ask or last" in reason


def test_several_problems_are_all_reported():
    data = envelope("order", payload={"side": "hold", "quantity": "0"})
    del data["source"]
    reason = reason_of(data)
    assert "payload.side" in reason and "payload.quantity" in reason and "source" in reason


def test_long_values_are_shortened_in_the_reason():
    reason = reason_of(envelope("order", payload={"side": "x" * 5000}))
    assert "payload.side" in reason
    assert len(reason) < 400
    assert "..." in reason


# ------------------------------------------------------------------ occurred_at mistakes


@pytest.mark.parametrize(
    ("value", "unit"),
    [
        (1_795_271_400, "seconds"),
        (1_795_271_400_123, "milliseconds"),
        (1_795_271_400_123_456, "microseconds"),
    ],
)
def test_occurred_at_in_the_wrong_unit_says_which_unit_it_looks_like(value, unit):
    reason = reason_of(json.dumps(envelope("fill", occurred_at=value)))
    assert "occurred_at" in reason
    assert str(value) in reason
    assert f"looks like {unit}" in reason
    assert "nanoseconds" in reason and "RFC 3339" in reason


def test_occurred_at_as_fractional_epoch_seconds_says_it_looks_like_seconds():
    """time.time() output (1795271400.123456) is the likeliest mistake an engine makes."""
    text = json.dumps(envelope("fill", occurred_at="@T@")).replace('"@T@"', "1795271400.123456")
    reason = reason_of(text)
    assert "occurred_at" in reason
    assert "1795271400.123456" in reason
    assert "looks like seconds" in reason


@pytest.mark.parametrize(
    ("value", "expect"),
    [
        ("2026-11-21T14:30:00", "missing UTC offset"),
        ("2026-02-30T14:30:00Z", "day is out of range"),
        ("yesterday", "not a timestamp"),
        (True, "RFC 3339"),
        (None, "RFC 3339"),
        (4_102_444_800 * 10**9, "2000-01-01..2100-01-01"),
    ],
)
def test_bad_occurred_at_is_named_with_value_and_what_is_accepted(value, expect):
    reason = reason_of(envelope("fill", occurred_at=value))
    assert "occurred_at" in reason
    assert expect in reason
    assert "RFC 3339" in reason


# ------------------------------------------------------------------ NaN and Infinity


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_json_constants_are_rejected(constant):
    text = json.dumps(envelope("fill", payload={"price": "@P@"})).replace('"@P@"', constant)
    reason = reason_of(text)
    assert "not valid JSON" in reason
    assert constant.lstrip("-") in reason
    assert "finite" in reason


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "inf", float("nan"), float("inf")])
def test_nan_and_infinity_values_are_rejected_in_numeric_fields(value):
    reason = reason_of(envelope("fill", payload={"price": value}))
    assert "payload.price" in reason
    assert "finite" in reason
    reason = reason_of(envelope("signal", payload={"confidence": value}))
    assert "payload.confidence" in reason


# ------------------------------------------------------------------ parse_event inputs


def test_parse_event_accepts_bytes():
    data = envelope("fill")
    parsed = parse_event(json.dumps(data).encode())
    assert str(parsed.event.event_id) == data["event_id"]
    assert parsed.raw == json.dumps(data)


@pytest.mark.parametrize(
    ("item", "expect"),
    [
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ("42", "expected a JSON object"),
        ('"text"', "expected a JSON object, got str"),
        ("null", "expected a JSON object"),
        (b"\xff\xfe{}", "not UTF-8"),
        (42, "expected a JSON object (or its text), got int"),
        (None, "expected a JSON object (or its text), got NoneType"),
    ],
)
def test_parse_event_rejects_what_is_not_an_event_object(item, expect):
    assert expect in reason_of(item)


def test_invalid_json_reason_gives_the_position():
    reason = reason_of('{"event_id": 1,\n "x": }')
    assert "line 2" in reason and "column" in reason


# ------------------------------------------------------------------ parse_batch


def test_parse_batch_keeps_good_and_bad_side_by_side_in_order():
    good_a = json.dumps(envelope("signal"))
    bad_json = '{"event_type": "fill", '
    good_b = envelope("fill")
    not_object = "[1, 2, 3]"
    bad_bytes = b'{"x": "\xff"}'
    bad_event = envelope("order", payload={"side": "hold"})
    good_c = json.dumps(envelope("account")).encode()
    items = [good_a, bad_json, good_b, not_object, bad_bytes, bad_event, good_c]

    good, bad = parse_batch(items)

    assert [p.index for p in good] == [0, 2, 6]
    assert [p.event.event_type for p in good] == ["signal", "fill", "account"]
    assert good[0].raw == good_a
    assert json.loads(good[1].raw) == good_b  # a dict item's raw is its JSON text
    assert good[2].raw == good_c.decode()

    assert [r.index for r in bad] == [1, 3, 4, 5]
    by_index = {r.index: r for r in bad}
    assert by_index[1].raw == bad_json and "not valid JSON" in by_index[1].reason
    assert by_index[3].raw == not_object and "expected a JSON object, got list" in by_index[3].reason
    assert "not UTF-8" in by_index[4].reason and "\ufffd" in by_index[4].raw
    assert "payload.side" in by_index[5].reason and "'hold'" in by_index[5].reason
    assert json.loads(by_index[5].raw) == bad_event
    assert by_index[5].event_id == bad_event["event_id"]
    assert by_index[5].event_type == "order"
    assert all(r.code == "invalid" for r in bad)
    assert by_index[1].event_id is None and by_index[3].event_type is None


def test_parse_batch_of_non_mapping_items():
    good, bad = parse_batch([None, 42, ["a"]])
    assert good == []
    assert [r.index for r in bad] == [0, 1, 2]
    # The evidence kept is the item as JSON, the form it crossed the broker in.
    assert [r.raw for r in bad] == ["null", "42", '["a"]']
    assert all("expected a JSON object" in r.reason for r in bad)


def test_parse_batch_empty():
    assert parse_batch([]) == ([], [])


def test_parse_batch_accepts_a_generator():
    good, bad = parse_batch(json.dumps(envelope(t)) for t in ("signal", "fill"))
    assert [p.index for p in good] == [0, 1] and bad == []


def test_parse_batch_dict_items_with_decimals_and_raw():
    item = envelope("fill", payload={"price": Decimal("101.250")})
    good, bad = parse_batch([item])
    assert bad == []
    assert str(good[0].event.payload.price) == "101.250"
    assert parse_event(good[0].raw).event == good[0].event


def test_parse_batch_deeply_nested_json_is_one_rejection_not_a_crash():
    """Bad input never loses the good input beside it, however hostile it is."""
    good_item = json.dumps(envelope("fill"))
    hostile = "[" * 100_000 + "]" * 100_000
    good, bad = parse_batch([good_item, hostile, good_item.replace("fill-1", "fill-2")])
    assert [p.index for p in good] == [0, 2]
    assert [r.index for r in bad] == [1]
    assert "JSON" in bad[0].reason


@pytest.mark.parametrize(
    "extra",
    [{"custom": float("nan")}, {"custom": float("inf")}, {"nested": {"x": float("-inf")}}],
)
def test_every_accepted_dict_item_has_raw_text_that_parses_back(extra):
    """The raw record of an accepted event must itself be valid: the store re-reads events
    from raw. A decoded JSON object (kombu's JSON decodes NaN to float('nan')) with a
    non-finite number in an unknown payload field must be rejected, or kept as valid JSON."""
    item = envelope("order", payload=extra)
    good, bad = parse_batch([item])
    for parsed in good:
        assert parse_event(parsed.raw).event == parsed.event
    if bad:
        assert "finite" in bad[0].reason


def test_ingest_requires_the_producers_event_id():
    data = market_data_dict = json.loads(_market_data_text())
    del market_data_dict["event_id"]
    good, bad = parse_batch([json.dumps(data), data])
    assert good == []
    assert all("event_id: missing; the producer assigns it" in r.reason for r in bad)


@pytest.mark.parametrize(
    ("text", "reason"),
    [("x\\u0000y", "NUL character"), ("x\\udfffy", "lone UTF-16 surrogate")],
)
def test_text_the_trail_cannot_store_is_rejected_wherever_it_is(text, reason):
    raw = _market_data_text().replace('"payload":{', f'"payload":{{"note":"{text}",', 1)
    good, bad = parse_batch([raw])
    assert good == [] and reason in bad[0].reason


def test_ordinary_unicode_escapes_are_fine():
    raw = _market_data_text().replace('"payload":{', '"payload":{"note":"caf\\u00e9",', 1)
    good, bad = parse_batch([raw])
    assert bad == [] and good[0].event.payload.note == "café"


def _market_data_text() -> str:
    from tests.factories import market_data

    return market_data(1).model_dump_json()
