"""FIFO round trips: hand-computed cases, and the vectorised matcher against the naive loop."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.naive_analytics.round_trips import naive_match_round_trips
from tradewatch.domain.analytics.round_trips import OPEN_LOT_COLUMNS, TRIP_COLUMNS, match_round_trips
from tradewatch.domain.analytics.schema import FILLS, prepare

START = pd.Timestamp("2024-03-04T14:30:00Z")


def make_fills(rows: list[dict]) -> pd.DataFrame:
    """Prepared fills from short rows: seconds (after START), side, quantity, price, and optional columns."""
    records = []
    for number, row in enumerate(rows):
        record = {
            "occurred_at": START + pd.Timedelta(seconds=row.get("seconds", number)),
            "fill_id": row.get("fill_id", f"f{number}"),
            "symbol": row.get("symbol", "AAPL"),
            "side": row["side"],
            "quantity": row["quantity"],
            "price": row["price"],
            "fee": row.get("fee", 0.0),
            "order_id": row.get("order_id", f"o{number}"),
            "signal_id": row.get("signal_id"),
            "strategy_id": row.get("strategy_id"),
            "venue": row.get("venue", "XNAS"),
        }
        records.append(record)
    frame = pd.DataFrame(records) if records else pd.DataFrame(
        columns=["occurred_at", "fill_id", "symbol", "side", "quantity", "price"])
    prepared = prepare(frame, FILLS)
    assert not prepared.problems
    return prepared.frame


def only(frame: pd.DataFrame) -> pd.Series:
    assert len(frame) == 1, frame
    return frame.iloc[0]


def assert_same_as_naive(fills: pd.DataFrame) -> None:
    fast = match_round_trips(fills)
    slow = naive_match_round_trips(fills)
    pd.testing.assert_frame_equal(fast.trips, slow.trips, check_exact=False, rtol=1e-9, atol=1e-9)
    pd.testing.assert_frame_equal(fast.open_lots, slow.open_lots, check_exact=False, rtol=1e-9, atol=1e-9)
    assert fast.unallocated_fees == pytest.approx(slow.unallocated_fees, abs=1e-9)
    assert fast.realized_pnl == pytest.approx(slow.realized_pnl, abs=1e-6)


def test_long_round_trip_with_fees():
    fills = make_fills([
        {"side": "buy", "quantity": 10, "price": 100.0, "fee": 1.0, "signal_id": "sig-1", "seconds": 0},
        {"side": "sell", "quantity": 10, "price": 105.0, "fee": 1.5, "seconds": 90, "venue": "ARCA"},
    ])
    result = match_round_trips(fills)
    trip = only(result.trips)
    assert list(result.trips.columns) == list(TRIP_COLUMNS)
    assert trip.direction == "long"
    assert trip.quantity == 10
    assert trip.entry_price == 100.0 and trip.exit_price == 105.0
    assert trip.gross_pnl == pytest.approx(50.0)
    assert trip.fees == pytest.approx(2.5)
    assert trip.pnl == pytest.approx(47.5)
    assert trip.holding_seconds == 90.0
    assert trip.entry_at == START and trip.exit_at == START + pd.Timedelta(seconds=90)
    assert (trip.opening_order_id, trip.closing_order_id) == ("o0", "o1")
    assert trip.opening_signal_id == "sig-1"
    assert trip.venue == "XNAS"  # the opening fill's venue
    assert str(result.trips["entry_at"].dtype) == "datetime64[ns, UTC]"
    assert result.open_lots.empty and list(result.open_lots.columns) == list(OPEN_LOT_COLUMNS)
    assert result.realized_pnl == pytest.approx(47.5)
    assert result.total_fees == pytest.approx(2.5)


def test_short_round_trip():
    fills = make_fills([
        {"side": "sell", "quantity": 5, "price": 50.0, "fee": 0.5},
        {"side": "buy", "quantity": 5, "price": 45.0, "fee": 0.5},
    ])
    trip = only(match_round_trips(fills).trips)
    assert trip.direction == "short"
    assert trip.gross_pnl == pytest.approx(25.0)  # sold high, bought back low: a gain
    assert trip.pnl == pytest.approx(24.0)


def test_partial_fills_on_both_sides_make_one_round_trip():
    fills = make_fills([
        {"side": "buy", "quantity": 3, "price": 10.0, "fee": 0.3, "order_id": "open", "seconds": 0},
        {"side": "buy", "quantity": 7, "price": 11.0, "fee": 0.7, "order_id": "open", "seconds": 1},
        {"side": "sell", "quantity": 4, "price": 12.0, "fee": 0.4, "order_id": "close", "seconds": 60},
        {"side": "sell", "quantity": 6, "price": 13.0, "fee": 0.6, "order_id": "close", "seconds": 61},
    ])
    trip = only(match_round_trips(fills).trips)
    assert trip.quantity == 10
    assert trip.entry_price == pytest.approx(10.7)  # (3*10 + 7*11) / 10
    assert trip.exit_price == pytest.approx(12.6)  # (4*12 + 6*13) / 10
    assert trip.gross_pnl == pytest.approx(19.0)
    assert trip.fees == pytest.approx(2.0)
    assert trip.pnl == pytest.approx(17.0)
    assert trip.entry_at == START and trip.exit_at == START + pd.Timedelta(seconds=61)
    assert trip.holding_seconds == 61.0
    assert_same_as_naive(fills)


def test_flip_from_long_to_short_in_one_fill():
    fills = make_fills([
        {"side": "buy", "quantity": 2, "price": 100.0, "fee": 2.0, "order_id": "a", "signal_id": "up"},
        {"side": "sell", "quantity": 5, "price": 110.0, "fee": 5.0, "order_id": "flip", "signal_id": "down"},
        {"side": "buy", "quantity": 3, "price": 100.0, "fee": 0.3, "order_id": "c"},
    ])
    result = match_round_trips(fills)
    first, second = result.trips.iloc[0], result.trips.iloc[1]
    assert (first.direction, first.opening_order_id, first.closing_order_id) == ("long", "a", "flip")
    assert first.quantity == 2
    assert first.gross_pnl == pytest.approx(20.0)
    assert first.fees == pytest.approx(2.0 + 5.0 * 2 / 5)  # the flip fill's fee split 2/5 : 3/5
    assert first.pnl == pytest.approx(16.0)
    assert (second.direction, second.opening_order_id, second.closing_order_id) == ("short", "flip", "c")
    assert second.quantity == 3
    assert second.opening_signal_id == "down"
    assert second.gross_pnl == pytest.approx(30.0)
    assert second.fees == pytest.approx(5.0 * 3 / 5 + 0.3)
    assert second.pnl == pytest.approx(26.7)
    assert result.open_lots.empty
    assert_same_as_naive(fills)


def test_flip_leaves_the_new_side_open_until_closed():
    fills = make_fills([
        {"side": "buy", "quantity": 2, "price": 100.0, "fee": 2.0},
        {"side": "sell", "quantity": 5, "price": 110.0, "fee": 5.0},
    ])
    result = match_round_trips(fills)
    lot = only(result.open_lots)
    assert (lot.direction, lot.quantity, lot.entry_price, lot.opening_order_id) == ("short", 3.0, 110.0, "o1")
    assert lot.fees == pytest.approx(3.0)
    assert result.matched_fees + result.open_fees == pytest.approx(7.0)


def test_two_strategies_on_one_symbol_are_separate_books():
    fills = make_fills([
        {"side": "buy", "quantity": 1, "price": 10.0, "strategy_id": "A"},
        {"side": "sell", "quantity": 1, "price": 12.0, "strategy_id": "B"},
        {"side": "sell", "quantity": 1, "price": 11.0, "strategy_id": "A"},
        {"side": "buy", "quantity": 1, "price": 9.0, "strategy_id": "B"},
    ])
    trips = match_round_trips(fills).trips
    by_strategy = trips.set_index("strategy_id")
    assert by_strategy.loc["A", "direction"] == "long" and by_strategy.loc["A", "gross_pnl"] == pytest.approx(1.0)
    assert by_strategy.loc["B", "direction"] == "short" and by_strategy.loc["B", "gross_pnl"] == pytest.approx(3.0)
    assert set(zip(trips.opening_order_id, trips.closing_order_id)) == {("o0", "o2"), ("o1", "o3")}
    assert_same_as_naive(fills)


def test_fills_without_strategy_share_one_book_per_symbol():
    fills = make_fills([
        {"side": "buy", "quantity": 1, "price": 10.0},
        {"side": "buy", "quantity": 1, "price": 10.0, "strategy_id": "A"},
        {"side": "sell", "quantity": 1, "price": 11.0},
        {"side": "buy", "quantity": 1, "price": 20.0, "symbol": "MSFT"},
    ])
    result = match_round_trips(fills)
    trip = only(result.trips)
    assert (trip.opening_order_id, trip.closing_order_id) == ("o0", "o2")
    assert pd.isna(trip.strategy_id)
    assert sorted(result.open_lots.opening_order_id) == ["o1", "o3"]
    assert_same_as_naive(fills)


def test_still_open_lots_fifo_and_fee_conservation():
    fills = make_fills([
        {"side": "buy", "quantity": 5, "price": 10.0, "fee": 0.5, "signal_id": "s"},
        {"side": "buy", "quantity": 5, "price": 11.0, "fee": 1.0, "signal_id": "t"},
        {"side": "sell", "quantity": 7, "price": 12.0, "fee": 0.7},
    ])
    result = match_round_trips(fills)
    trips = result.trips.set_index("opening_order_id")
    assert trips.loc["o0", "quantity"] == 5 and trips.loc["o0", "gross_pnl"] == pytest.approx(10.0)
    assert trips.loc["o1", "quantity"] == 2 and trips.loc["o1", "gross_pnl"] == pytest.approx(2.0)
    assert trips.loc["o0", "fees"] == pytest.approx(0.5 + 0.5)
    assert trips.loc["o1", "fees"] == pytest.approx(0.4 + 0.2)
    lot = only(result.open_lots)
    assert (lot.opening_order_id, lot.quantity, lot.entry_price, lot.opening_signal_id) == ("o1", 3.0, 11.0, "t")
    assert lot.fees == pytest.approx(0.6)
    assert result.trips.fees.sum() + result.open_lots.fees.sum() == pytest.approx(2.2)
    assert_same_as_naive(fills)


def test_interleaved_opening_orders_still_make_one_trip_per_order_pair():
    fills = make_fills([
        {"side": "buy", "quantity": 1, "price": 10.0, "order_id": "x"},
        {"side": "buy", "quantity": 1, "price": 20.0, "order_id": "y"},
        {"side": "buy", "quantity": 1, "price": 30.0, "order_id": "x"},
        {"side": "sell", "quantity": 3, "price": 40.0, "order_id": "z"},
    ])
    trips = match_round_trips(fills).trips.set_index("opening_order_id")
    assert trips.loc["x", "quantity"] == 2 and trips.loc["x", "entry_price"] == pytest.approx(20.0)
    assert trips.loc["y", "quantity"] == 1
    assert_same_as_naive(fills)


def test_fills_are_matched_in_time_order_with_ties_in_input_order():
    fills = make_fills([
        {"side": "sell", "quantity": 1, "price": 12.0, "seconds": 10},
        {"side": "buy", "quantity": 1, "price": 10.0, "seconds": 0},
        {"side": "buy", "quantity": 1, "price": 11.0, "seconds": 20},
        {"side": "sell", "quantity": 1, "price": 13.0, "seconds": 20},
    ])
    trips = match_round_trips(fills).trips
    assert list(trips.opening_order_id) == ["o1", "o2"]
    assert list(trips.gross_pnl) == pytest.approx([2.0, 2.0])
    assert_same_as_naive(fills)


def test_categorical_text_columns_give_the_same_trips():
    fills = make_fills([
        {"side": "buy", "quantity": 1, "price": 10.0, "strategy_id": "A", "symbol": "X"},
        {"side": "buy", "quantity": 2, "price": 11.0, "symbol": "Y"},
        {"side": "sell", "quantity": 3, "price": 12.0, "strategy_id": "A", "symbol": "X"},
        {"side": "sell", "quantity": 1, "price": 12.0, "symbol": "Y"},
    ])
    categorical = fills.astype({"side": "category", "symbol": "category", "strategy_id": "category",
                                "venue": "category", "order_id": "category"})
    plain, coded = match_round_trips(fills), match_round_trips(categorical)
    pd.testing.assert_frame_equal(plain.trips, coded.trips)
    pd.testing.assert_frame_equal(plain.open_lots, coded.open_lots)


def test_fractional_quantities_match_exactly():
    fills = make_fills([
        {"side": "buy", "quantity": 0.1, "price": 10.0},
        {"side": "buy", "quantity": 0.2, "price": 10.0},
        {"side": "sell", "quantity": 0.3, "price": 11.0},
    ])
    result = match_round_trips(fills)
    assert len(result.trips) == 2 and result.open_lots.empty  # no float dust left open


def test_empty_input_gives_empty_frames():
    result = match_round_trips(make_fills([]))
    assert result.trips.empty and list(result.trips.columns) == list(TRIP_COLUMNS)
    assert result.open_lots.empty and list(result.open_lots.columns) == list(OPEN_LOT_COLUMNS)
    assert result.realized_pnl == 0.0


def test_a_quantity_too_large_for_exact_integers_is_refused():
    fills = make_fills([{"side": "buy", "quantity": 1e12, "price": 1.0}])
    with pytest.raises(ValueError, match="quantity_decimals"):
        match_round_trips(fills)
    assert len(match_round_trips(fills, quantity_decimals=2).open_lots) == 1


def test_bad_quantity_decimals_is_refused():
    with pytest.raises(ValueError, match="quantity_decimals"):
        match_round_trips(make_fills([]), quantity_decimals=-1)


def test_dust_fill_fee_is_reported_unallocated():
    fills = make_fills([
        {"side": "buy", "quantity": 1, "price": 10.0, "fee": 0.1},
        {"side": "sell", "quantity": 1e-12, "price": 11.0, "fee": 0.05},
        {"side": "sell", "quantity": 1, "price": 11.0, "fee": 0.1},
    ])
    result = match_round_trips(fills)
    assert result.unallocated_fees == pytest.approx(0.05)
    assert result.matched_fees + result.open_fees + result.unallocated_fees == pytest.approx(result.total_fees)
    assert_same_as_naive(fills)


# -- generated fills -------------------------------------------------------------------------

@st.composite
def fill_rows(draw, max_size: int = 40) -> list[dict]:
    count = draw(st.integers(0, max_size))
    rows: list[dict] = []
    for number in range(count):
        continues = rows and draw(st.integers(0, 3)) == 0  # a further partial fill of the previous order
        if continues:
            previous = rows[-1]
            row = {key: previous[key] for key in ("symbol", "strategy_id", "side", "order_id", "signal_id")}
            row["seconds"] = previous["seconds"] + draw(st.integers(0, 3))
        else:
            pooled = draw(st.integers(0, 9)) == 0  # an order id reused out of sequence
            row = {
                "symbol": draw(st.sampled_from(["AAA", "BBB", "CCC"])),
                "strategy_id": draw(st.sampled_from(["s1", "s2", None])),
                "side": draw(st.sampled_from(["buy", "sell"])),
                "order_id": f"pool{draw(st.integers(0, 2))}" if pooled else f"o{number}",
                "signal_id": draw(st.sampled_from([None, "sigA", "sigB", f"sig{number}"])),
                "seconds": draw(st.integers(0, 60)),
            }
        row["quantity"] = draw(st.integers(1, 500)) / 100
        row["price"] = draw(st.integers(100, 20000)) / 100
        row["fee"] = draw(st.integers(0, 100)) / 100
        row["venue"] = draw(st.sampled_from(["XNAS", "ARCA", None]))
        rows.append(row)
    return rows


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fill_rows())
def test_vectorised_matches_the_naive_loop(rows):
    assert_same_as_naive(make_fills(rows))


@settings(max_examples=150, deadline=None)
@given(fill_rows())
def test_fees_are_conserved_and_quantities_balance(rows):
    fills = make_fills(rows)
    result = match_round_trips(fills)
    assert result.trips.fees.sum() + result.open_lots.fees.sum() == pytest.approx(fills.fee.sum(), abs=1e-9)
    assert result.realized_pnl == pytest.approx(result.trips.pnl.sum())
    # Every unit bought is either matched in a trip, or still open long, or closed a short.
    signed = np.where(fills.side == "buy", fills.quantity, -fills.quantity)
    open_signed = np.where(result.open_lots.direction == "long", result.open_lots.quantity, -result.open_lots.quantity)
    assert open_signed.sum() == pytest.approx(signed.sum(), abs=1e-9)
    assert (result.trips.quantity > 0).all()
    assert (result.trips.exit_at >= result.trips.entry_at).all()
    assert result.trips.exit_at.is_monotonic_increasing
    np.testing.assert_allclose(result.trips.pnl, result.trips.gross_pnl - result.trips.fees)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 10_000), st.integers(1, 10_000), st.integers(1, 10_000), st.booleans())
def test_sign_convention(quantity_cents, low_cents, spread_cents, long):
    low, high = low_cents / 100, (low_cents + spread_cents) / 100
    quantity = quantity_cents / 100
    if long:  # bought low, sold high
        rows = [{"side": "buy", "quantity": quantity, "price": low}, {"side": "sell", "quantity": quantity, "price": high}]
    else:  # sold high, bought back low
        rows = [{"side": "sell", "quantity": quantity, "price": high}, {"side": "buy", "quantity": quantity, "price": low}]
    trip = only(match_round_trips(make_fills(rows)).trips)
    assert trip.direction == ("long" if long else "short")
    assert trip.gross_pnl > 0
    assert trip.gross_pnl == pytest.approx(quantity * (high - low))
    assert not math.isnan(trip.pnl)
