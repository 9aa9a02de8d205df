"""MetricExtractor: each metric on hand-built events, state across batches, batch independence."""

from __future__ import annotations

import struct
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import BASE_NS
from tradewatch.domain.detection.event_frame import event_frame
from tradewatch.domain.detection.metrics import METRICS, OBSERVATION_COLUMNS
from tradewatch.domain.detection.observations import MetricExtractor, empty_observation_frame
from tradewatch.domain.detection.state_codec import decode, encode
from tradewatch.domain.events import (
    FillEvent,
    FillPayload,
    MarketDataEvent,
    MarketDataPayload,
    OrderEvent,
    OrderPayload,
)
from tradewatch.domain.events.models import PositionUpdateEvent
from tradewatch.domain.events.payloads import PositionUpdatePayload

SECOND = 1_000_000_000


def at(seconds: float) -> int:
    return BASE_NS + int(round(seconds * SECOND))


def D(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def order(order_id: str, status: str, seconds: float, strategy: str = "momentum", symbol: str = "AAPL",
          decision_price=None) -> OrderEvent:
    return OrderEvent(occurred_at=at(seconds), source="engine-1", order_id=order_id, strategy_id=strategy,
                      symbol=symbol, payload=OrderPayload(side="buy", quantity=Decimal(100), order_type="market",
                                                          status=status, decision_price=D(decision_price)))


def fill(order_id: str, seconds: float, price, side: str = "buy", strategy: str | None = None, symbol: str = "AAPL",
         arrival_price=None, bid=None, ask=None) -> FillEvent:
    return FillEvent(occurred_at=at(seconds), source="engine-1", order_id=order_id, strategy_id=strategy, symbol=symbol,
                     payload=FillPayload(fill_id=f"f-{order_id}-{seconds}", side=side, quantity=Decimal(10),
                                         price=D(price), arrival_price=D(arrival_price), bid=D(bid), ask=D(ask)))


def quote(seconds: float, bid=None, ask=None, last=None, symbol: str = "AAPL") -> MarketDataEvent:
    return MarketDataEvent(occurred_at=at(seconds), source="feed-1", symbol=symbol,
                           payload=MarketDataPayload(bid=D(bid), ask=D(ask), last=D(last)))


def position(seconds: float, realized, strategy: str | None = "momentum", symbol: str = "AAPL") -> PositionUpdateEvent:
    return PositionUpdateEvent(occurred_at=at(seconds), source="engine-1", strategy_id=strategy, symbol=symbol,
                               payload=PositionUpdatePayload(quantity=Decimal(10), realized_pnl=D(realized)))


def extract(events, extractor: MetricExtractor | None = None, state: dict | None = None) -> pd.DataFrame:
    return (extractor or MetricExtractor()).extract(event_frame(events), {} if state is None else state)


def values_of(observations: pd.DataFrame, metric: str) -> list[float]:
    return observations.loc[observations["metric"] == metric, "value"].tolist()


# --- the frame ------------------------------------------------------------------------------------


def test_frame_columns_dtypes_and_order():
    events = [quote(0, bid="100.01", ask="100.03"), order("o1", "submitted", 1, decision_price="100"),
              order("o1", "accepted", 1.5), fill("o1", 2, "100.04")]
    observations = extract(events)
    assert tuple(observations.columns) == OBSERVATION_COLUMNS
    assert observations.dtypes.astype(str).to_dict() == {
        "seq": "int64", "event_id": "object", "occurred_at_ns": "int64", "metric": "object", "value": "float64",
        "symbol": "object", "strategy_id": "object", "source": "object"}
    # seq order; an event's observations in METRICS order
    assert observations["seq"].tolist() == [0, 1, 2, 2, 3, 3]
    assert observations["metric"].tolist() == [
        "spread_bps", "order_rate_per_minute", "acknowledgement_latency_seconds", "rejection_rate",
        "slippage_bps", "fill_latency_seconds"]
    assert observations["event_id"].tolist()[-1] == str(events[-1].event_id)
    assert observations["occurred_at_ns"].tolist()[-1] == at(2)
    assert observations["source"].tolist()[0] == "feed-1"
    assert observations["strategy_id"].tolist()[0] is None  # a quote has no strategy
    assert np.isfinite(observations["value"]).all()


def test_empty_input_gives_an_empty_typed_frame_and_leaves_state_alone():
    state = {"watermark_ns": 5}
    observations = MetricExtractor().extract(event_frame([]), state)
    assert observations.empty and tuple(observations.columns) == OBSERVATION_COLUMNS
    assert observations.dtypes.astype(str).tolist() == empty_observation_frame().dtypes.astype(str).tolist()
    assert state == {"watermark_ns": 5}


def test_frame_with_missing_text_as_nan_is_read_like_none():
    # The storage layer may give NaN (not None) for missing text; strategy_id must still fall back.
    frame = event_frame([order("o1", "submitted", 0, strategy="alpha"), fill("o1", 1, "100", arrival_price="100")])
    frame["strategy_id"] = frame["strategy_id"].astype(object).where(frame["strategy_id"].notna(), np.nan)
    observations = MetricExtractor().extract(frame, {})
    assert observations.loc[observations["metric"] == "slippage_bps", "strategy_id"].tolist() == ["alpha"]


# --- spread ----------------------------------------------------------------------------------------


def test_spread_bps_of_quotes_with_bid_and_ask():
    observations = extract([quote(0, bid="100.01", ask="100.03"), quote(1, last="100.02"), quote(2, bid="99", ask="101")])
    # (100.03 - 100.01) / 100.02 * 1e4 and 2 / 100 * 1e4; the last-only quote has none
    assert values_of(observations, "spread_bps") == pytest.approx([0.02 / 100.02 * 1e4, 200.0])


# --- slippage --------------------------------------------------------------------------------------


def test_slippage_reference_arrival_then_decision_price_then_mid():
    events = [
        order("o1", "submitted", 0, decision_price="100.00"),
        fill("o1", 1, "100.05", arrival_price="100.02"),  # arrival: (100.05 - 100.02) / 100.02
        fill("o1", 2, "100.05"),  # decision price: 5 bps
        fill("o9", 3, "100.05", bid="99.99", ask="100.01"),  # unknown order: mid 100.00
        fill("o9", 4, "100.05"),  # no reference at all: no observation
    ]
    assert values_of(extract(events), "slippage_bps") == pytest.approx([0.03 / 100.02 * 1e4, 5.0, 5.0])


def test_slippage_sign_is_a_cost_for_both_sides():
    events = [fill("o1", 0, "99.90", side="sell", arrival_price="100"),  # sold below arrival: +10 bps cost
              fill("o2", 1, "100.10", side="sell", arrival_price="100"),  # sold above: -10 bps (a gain)
              fill("o3", 2, "99.90", side="buy", arrival_price="100")]  # bought below: -10 bps
    assert values_of(extract(events), "slippage_bps") == pytest.approx([10.0, -10.0, -10.0])


# --- latencies -------------------------------------------------------------------------------------


def test_fill_and_acknowledgement_latency_from_the_submission():
    events = [order("o1", "submitted", 0), order("o1", "accepted", 0.25), fill("o1", 1.5, "100", arrival_price="100"),
              fill("o1", 3, "100", arrival_price="100")]
    observations = extract(events)
    assert values_of(observations, "acknowledgement_latency_seconds") == pytest.approx([0.25])
    assert values_of(observations, "fill_latency_seconds") == pytest.approx([1.5, 3.0])


def test_fill_of_an_unknown_order_has_slippage_but_no_latency_or_strategy():
    observations = extract([order("o1", "accepted", 0), fill("o2", 1, "100.10", arrival_price="100")])
    assert values_of(observations, "acknowledgement_latency_seconds") == []
    assert values_of(observations, "fill_latency_seconds") == []
    slippage = observations[observations["metric"] == "slippage_bps"]
    assert slippage["value"].tolist() == pytest.approx([10.0])
    assert slippage["strategy_id"].tolist() == [None]


def test_fill_takes_its_orders_strategy_unless_it_has_its_own():
    events = [order("o1", "submitted", 0, strategy="alpha"), fill("o1", 1, "100", arrival_price="100"),
              fill("o1", 2, "100", arrival_price="100", strategy="beta")]
    observations = extract(events)
    assert observations.loc[observations["metric"] == "fill_latency_seconds", "strategy_id"].tolist() == ["alpha", "beta"]


def test_a_fill_before_its_submission_in_event_order_does_not_see_it():
    observations = extract([fill("o1", 1, "100", arrival_price="100"), order("o1", "submitted", 0)])
    assert values_of(observations, "fill_latency_seconds") == []


def test_order_state_carries_latency_across_batches():
    extractor, state = MetricExtractor(), {}
    extract([order("o1", "submitted", 0, decision_price="100")], extractor, state)
    observations = extract([order("o1", "accepted", 0.5), fill("o1", 2, "100.10")], extractor, state)
    assert values_of(observations, "acknowledgement_latency_seconds") == pytest.approx([0.5])
    assert values_of(observations, "fill_latency_seconds") == pytest.approx([2.0])
    assert values_of(observations, "slippage_bps") == pytest.approx([10.0])  # the stored decision price


def test_a_resubmission_restarts_the_latency_clock():
    observations = extract([order("o1", "submitted", 0), order("o1", "submitted", 5), fill("o1", 6, "100", arrival_price="100")])
    assert values_of(observations, "fill_latency_seconds") == pytest.approx([1.0])


def test_orders_expire_order_ttl_seconds_behind_the_latest_event_time():
    extractor = MetricExtractor(order_ttl_seconds=10)
    state: dict = {}
    extract([order("o1", "submitted", 0, decision_price="100"), order("o2", "submitted", 5)], extractor, state)
    assert len(state["orders"]["key"]) == 2
    # A quote at t = 10 keeps o1 (exactly 10 s old) alive; at t = 12 o1 is forgotten, o2 is not.
    observations = extract([quote(10, bid="1", ask="2"), fill("o1", 10, "100.10"), quote(12, bid="1", ask="2"),
                            fill("o1", 12, "100.10", bid="100.09", ask="100.11"), fill("o2", 12, "100", arrival_price="100")],
                           extractor, state)
    assert values_of(observations, "fill_latency_seconds") == pytest.approx([10.0, 7.0])
    # The expired order's fill falls back to its own mid (100.10): no slippage against the decision price.
    assert values_of(observations, "slippage_bps") == pytest.approx([10.0, 0.0, 0.0])
    assert len(state["orders"]["key"]) == 1 and state["orders"]["strategies"] == ["momentum"]
    assert state["watermark_ns"] == at(12)


def test_extractor_settings_are_checked():
    with pytest.raises(ValueError, match="rejection_window"):
        MetricExtractor(rejection_window=0)
    with pytest.raises(ValueError, match="order_ttl_seconds"):
        MetricExtractor(order_ttl_seconds=-1)


# --- realized P&L ----------------------------------------------------------------------------------


def test_round_trip_pnl_is_the_change_of_realized_pnl_per_strategy_and_symbol():
    events = [position(0, "10"), position(1, "10"), position(2, "15"), position(3, "12"),
              position(4, "100", symbol="MSFT"), position(5, "130", symbol="MSFT"),
              position(6, "20", strategy="other")]
    observations = extract(events)
    rows = observations[observations["metric"] == "round_trip_pnl_usd"]
    # the first value of each pair only sets the reference; an unchanged value gives nothing
    assert rows["value"].tolist() == pytest.approx([5.0, -3.0, 30.0])
    assert rows["symbol"].tolist() == ["AAPL", "AAPL", "MSFT"]


def test_round_trip_pnl_reference_is_carried_across_batches():
    extractor, state = MetricExtractor(), {}
    extract([position(0, "10"), position(1, "-5", strategy=None)], extractor, state)
    observations = extract([position(2, "25"), position(3, "-1", strategy=None)], extractor, state)
    assert values_of(observations, "round_trip_pnl_usd") == pytest.approx([15.0, 4.0])
    assert state["realized_pnl"] == {"momentum": {"AAPL": 25.0}, "": {"AAPL": -1.0}}


# --- per-strategy rates ----------------------------------------------------------------------------


def test_rejection_rate_over_the_last_rejection_window_outcomes():
    extractor, state = MetricExtractor(rejection_window=3), {}
    first = extract([order("o1", "accepted", 0), order("o2", "rejected", 1), order("x", "rejected", 1, strategy="other")],
                    extractor, state)
    second = extract([order("o3", "rejected", 2), order("o4", "accepted", 3), order("o5", "cancelled", 4)], extractor, state)
    assert values_of(first, "rejection_rate") == pytest.approx([0.0, 0.5, 1.0])
    # window of 3: (A R R) = 2/3, then (R R A) = 2/3; cancelled counts for nothing
    assert values_of(second, "rejection_rate") == pytest.approx([2 / 3, 2 / 3])
    assert state["outcomes"] == {"momentum": [1, 1, 0], "other": [1]}


def test_order_rate_counts_submissions_in_the_trailing_minute():
    extractor, state = MetricExtractor(), {}
    first = extract([order("o1", "submitted", 0), order("o2", "submitted", 10), order("z", "submitted", 11, strategy="other")],
                    extractor, state)
    second = extract([order("o3", "submitted", 30), order("o4", "submitted", 65), order("o5", "submitted", 70)],
                     extractor, state)
    assert values_of(first, "order_rate_per_minute") == [1.0, 2.0, 1.0]
    # at 65 s the window (5, 65] holds 10, 30, 65; at 70 s (10, 70] holds 30, 65, 70
    assert values_of(second, "order_rate_per_minute") == [3.0, 3.0, 3.0]
    assert state["submitted"]["momentum"] == [at(30), at(65), at(70)]


def test_order_rate_of_an_out_of_order_submission():
    # After 65 s, submissions up to 5 s are forgotten: a late one at 20 s counts 10 s and itself.
    observations = extract([order(f"o{i}", "submitted", t) for i, t in enumerate([0, 10, 65, 20])])
    assert values_of(observations, "order_rate_per_minute") == [1.0, 2.0, 2.0, 2.0]


# --- batch independence ----------------------------------------------------------------------------


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.tobytes() == b.tobytes()
    if isinstance(a, dict):
        return isinstance(b, dict) and set(a) == set(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return isinstance(b, float) and struct.pack("<d", a) == struct.pack("<d", b)
    return a == b


@st.composite
def trails(draw):
    """A small trail of quotes, orders, fills and position updates; times mostly increasing,
    with jitter (some out of order) and gaps longer than the short TTL used below."""
    events, clock = [], 0.0
    for _ in range(draw(st.integers(1, 40))):
        clock += draw(st.sampled_from([0.0, 0.5, 1.0, 3.0, 70.0]))
        seconds = max(0.0, clock + draw(st.sampled_from([0.0, 0.0, -2.0])))
        strategy = draw(st.sampled_from(["alpha", "beta"]))
        order_id = draw(st.sampled_from(["o1", "o2", "o3"]))
        kind = draw(st.sampled_from(["quote", "submitted", "accepted", "rejected", "fill", "fill", "position"]))
        price = draw(st.sampled_from(["99.5", "100", "100.25"]))
        if kind == "quote":
            events.append(quote(seconds, bid="99.9", ask=draw(st.sampled_from(["100", "100.2"])), symbol="AAPL"))
        elif kind == "fill":
            events.append(fill(order_id, seconds, price, side=draw(st.sampled_from(["buy", "sell"])),
                               arrival_price=draw(st.sampled_from([None, "100"])), bid="99.9", ask="100.1"))
        elif kind == "position":
            events.append(position(seconds, draw(st.sampled_from(["0", "5", "-3"])), strategy=strategy,
                                   symbol=draw(st.sampled_from(["AAPL", "MSFT"]))))
        else:
            events.append(order(order_id, kind, seconds, strategy=strategy, decision_price=draw(st.sampled_from([None, price]))))
    cuts = sorted(set(draw(st.lists(st.integers(0, len(events)), max_size=4))))
    return events, cuts


@settings(max_examples=60, deadline=None)
@given(trails())
def test_any_batch_split_gives_the_same_observations_and_state(trail):
    events, cuts = trail
    frame = event_frame(events)
    extractor = MetricExtractor(rejection_window=3, order_ttl_seconds=5)
    whole_state: dict = {}
    whole = extractor.extract(frame, whole_state)
    parts, split_state = [], {}
    for start, end in zip([0, *cuts], [*cuts, len(events)]):
        parts.append(extractor.extract(frame.iloc[start:end].reset_index(drop=True), split_state))
        split_state = decode(encode(split_state))  # the state goes through the codec between batches
    joined = pd.concat(parts, ignore_index=True) if parts else whole.iloc[:0]
    pd.testing.assert_frame_equal(joined.astype({"value": "float64"}), whole, check_exact=True)
    assert _same(decode(encode(whole_state)), split_state)
    assert set(whole["metric"]) <= set(METRICS)


# --- trusted time: an engine clock running ahead ----------------------------------------------------

DAY = 86_400


def received_at(frame: pd.DataFrame, seconds: list[float]) -> pd.DataFrame:
    """``frame`` with tradewatch's receipt times (seconds after BASE_NS), one per row."""
    frame = frame.copy()
    frame["received_at_ns"] = np.array([at(s) for s in seconds], dtype=np.int64)
    return frame


def test_trusted_times_cap_occurred_at_at_received_at_plus_a_minute():
    from tradewatch.domain.detection.event_frame import MAX_CLOCK_LEAD_NS, trusted_times
    assert MAX_CLOCK_LEAD_NS == 60 * SECOND
    # occurred at 0, 100, 30 + a day, -50; received at 10, 41, 30, 0
    frame = received_at(event_frame([quote(t, last="1") for t in (0, 100, 30 + DAY, -50)]), [10, 41, 30, 0])
    # min(0, 70) = 0; min(100, 101) = 100; min(30 + a day, 90) = 90; a clock behind is left alone: -50
    assert trusted_times(frame).tolist() == [at(0), at(100), at(90), at(-50)]
    assert trusted_times(event_frame([])).tolist() == []


def test_an_event_stamped_a_day_ahead_does_not_expire_every_order():
    # feed-2's clock runs a day ahead; its quote arrives at 1 s. Before the fix the watermark
    # jumped a day and expired o1 (ttl 600 s): no acknowledgement or fill latency anywhere.
    extractor, state = MetricExtractor(), {}
    first = received_at(event_frame([order("o1", "submitted", 0), quote(1 + DAY, bid="1", ask="2")]), [0, 1])
    extractor.extract(first, state)
    assert state["watermark_ns"] == at(61)  # received 1 s + the 60 s allowed lead
    second = received_at(event_frame([order("o1", "accepted", 2), fill("o1", 3, "100", arrival_price="100"),
                                      order("o2", "submitted", 4), fill("o2", 9, "100", arrival_price="100")]),
                         [2, 3, 4, 9])
    observations = extractor.extract(second, state)
    # latencies stay occurred_at differences: 2 - 0, 3 - 0, 9 - 4
    assert values_of(observations, "acknowledgement_latency_seconds") == pytest.approx([2.0])
    assert values_of(observations, "fill_latency_seconds") == pytest.approx([3.0, 5.0])
    assert state["watermark_ns"] == at(61)
    assert sorted(state["orders"]["trusted_ns"].tolist()) == [at(0), at(4)]


def test_a_submission_stamped_ahead_expires_by_its_trusted_time_and_keeps_its_latency():
    # o1 is stamped 100 s ahead (received at 0): its trusted time is 60 s, its latency uses occurred_at.
    extractor, state = MetricExtractor(order_ttl_seconds=10), {}
    frame = received_at(event_frame([order("o1", "submitted", 100), fill("o1", 101, "100", arrival_price="100"),
                                     quote(71, bid="1", ask="2"), fill("o1", 102, "100", arrival_price="100")]),
                        [0, 1, 71, 72])
    observations = extractor.extract(frame, state)
    # fill 1: watermark 60 (o1 live); the quote at 71 moves it past 60 + 10: the second fill finds no order
    assert values_of(observations, "fill_latency_seconds") == pytest.approx([1.0])
    assert len(state["orders"]["key"]) == 0


def test_a_submission_stamped_ahead_does_not_freeze_the_order_rate():
    # o1 stamped a day ahead, received at 0, counts at its trusted time 60 s; the next ones are on time.
    frame = received_at(event_frame([order("o1", "submitted", DAY), order("o2", "submitted", 10),
                                     order("o3", "submitted", 70), order("o4", "submitted", 125)]), [0, 10, 70, 125])
    # Windows (t - 60, t] of trusted times: at 60 {60}; at 10 {10}; at 70 {60, 70}; at 125 {70, 125}.
    # (By occurred_at, o1 at a day would have pruned the rest: 1, 1, 1, 1.)
    assert values_of(MetricExtractor().extract(frame, {}), "order_rate_per_minute") == [1.0, 1.0, 2.0, 2.0]


@st.composite
def trails_with_clocks_ahead(draw):
    events, cuts = draw(trails())
    ahead = draw(st.lists(st.sampled_from([0, 0, 0, 30, DAY]), min_size=len(events), max_size=len(events)))
    return events, cuts, ahead


@settings(max_examples=40, deadline=None)
@given(trails_with_clocks_ahead())
def test_any_batch_split_gives_the_same_observations_with_clocks_ahead(trail):
    events, cuts, ahead = trail
    frame = event_frame(events)
    frame["occurred_at_ns"] = frame["occurred_at_ns"] + np.array(ahead, dtype=np.int64) * SECOND  # received stays
    extractor = MetricExtractor(rejection_window=3, order_ttl_seconds=5)
    whole_state: dict = {}
    whole = extractor.extract(frame, whole_state)
    parts, split_state = [], {}
    for start, end in zip([0, *cuts], [*cuts, len(events)]):
        parts.append(extractor.extract(frame.iloc[start:end].reset_index(drop=True), split_state))
        split_state = decode(encode(split_state))
    joined = pd.concat(parts, ignore_index=True) if parts else whole.iloc[:0]
    pd.testing.assert_frame_equal(joined.astype({"value": "float64"}), whole, check_exact=True)
    assert _same(decode(encode(whole_state)), split_state)
