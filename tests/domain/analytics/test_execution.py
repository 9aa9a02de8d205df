"""Execution quality: a hand-computed book, edge cases, and properties against the naive loop."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.naive_analytics.execution import NaiveExecutionAnalyzer
from tests.domain.analytics.test_slippage import (
    APPROX,
    assert_reports_equal,
    fills_frame,
    orders_frame,
    random_books,
)
from tradewatch.domain.analytics.execution import ExecutionAnalyzer, _group_percentiles
from tradewatch.domain.analytics.schema import FILLS, ORDERS, prepare

COUNTS = ("orders", "fills", "filled_orders", "partially_filled_orders", "unfilled_orders", "rejected_orders",
          "cancelled_orders", "expired_orders")


def hand_book():
    orders = orders_frame(
        # Completely filled in two fills (60 maker at 100.1, 40 taker at 100.2), last fill's vwap 100.
        {"order_id": "E1", "side": "buy", "quantity": 100.0, "status": "accepted", "accepted_at": 0.010, "venue": "XNAS"},
        # Cancelled after one fill of 20 of 50 (maker, sold at 49.9 against a vwap of 50).
        {"order_id": "E2", "side": "sell", "quantity": 50.0, "status": "cancelled", "accepted_at": 0.020,
         "ended_at": 10.0, "venue": "ARCX"},
        {"order_id": "E3", "side": "buy", "quantity": 10.0, "status": "rejected", "ended_at": 0.005, "venue": "XNAS"},
        {"order_id": "E4", "side": "buy", "quantity": 30.0, "status": "expired", "accepted_at": 0.040, "ended_at": 60.0,
         "venue": "ARCX"},
    )
    fills = fills_frame(
        {"occurred_at": 3.0, "order_id": "E1", "quantity": 40.0, "price": 100.2, "liquidity": "taker", "vwap": 100.0},
        {"occurred_at": 1.0, "order_id": "E1", "quantity": 60.0, "price": 100.1, "liquidity": "maker", "vwap": 99.0},
        {"occurred_at": 2.0, "order_id": "E2", "side": "sell", "quantity": 20.0, "price": 49.9, "liquidity": "maker",
         "vwap": 50.0},
        {"occurred_at": 2.5, "order_id": "X", "quantity": 500.0, "price": 1.0, "liquidity": "maker"},
    )
    return orders, fills


def test_hand_computed_summary():
    orders, fills = hand_book()
    summary = ExecutionAnalyzer().analyze(orders, fills)
    assert [summary[k] for k in COUNTS] == [4, 3, 1, 1, 2, 1, 1, 1]
    assert summary["fills_without_order"] == 1
    # Every rate is over all four orders, the rejected one included.
    assert summary["fill_rate"] == 0.25 and summary["partial_fill_rate"] == 0.25 and summary["unfilled_rate"] == 0.5
    assert summary["rejection_rate"] == 0.25 and summary["cancel_rate"] == 0.25 and summary["expiry_rate"] == 0.25
    # Acknowledgements 10, 20, 40 ms: p50 = 20 ms, p90 at h = 1.8: 20 + 0.8 * 20, p99 at h = 1.98.
    assert summary["acknowledgement_latency_p50_seconds"] == pytest.approx(0.020, **APPROX)
    assert summary["acknowledgement_latency_p90_seconds"] == pytest.approx(0.036, **APPROX)
    assert summary["acknowledgement_latency_p99_seconds"] == pytest.approx(0.0396, **APPROX)
    # First fills at 1 s and 2 s, last fills at 3 s and 2 s.
    assert summary["order_to_first_fill_latency_p50_seconds"] == pytest.approx(1.5, **APPROX)
    assert summary["order_to_last_fill_latency_p50_seconds"] == pytest.approx(2.5, **APPROX)
    assert summary["order_to_last_fill_latency_p99_seconds"] == pytest.approx(2.99, **APPROX)
    # Maker 60 + 20 of 120 joined quantity (the orphan fill's 500 is not counted).
    assert summary["maker_share"] == pytest.approx(80 / 120, **APPROX)
    # E1: average 100.14 against V = 100 (its LAST fill's vwap): 14 bps, weight 100 * 100.
    # E2: sold at 49.9 against 50: 20 bps, weight 20 * 50.
    assert summary["average_vwap_deviation_bps"] == pytest.approx((14 * 10_000 + 20 * 1_000) / 11_000, **APPROX)


def test_hand_computed_groups():
    orders, fills = hand_book()
    by_venue = ExecutionAnalyzer().aggregate(orders, fills, "venue").set_index("venue")
    assert by_venue.index.tolist() == ["ARCX", "XNAS"]
    assert by_venue.loc["ARCX", "orders"] == 2 and by_venue.loc["ARCX", "partially_filled_orders"] == 1
    assert by_venue.loc["ARCX", "expiry_rate"] == 0.5 and by_venue.loc["ARCX", "cancel_rate"] == 0.5
    assert by_venue.loc["XNAS", "fill_rate"] == 0.5 and by_venue.loc["XNAS", "rejection_rate"] == 0.5
    assert by_venue.loc["XNAS", "acknowledgement_latency_p50_seconds"] == pytest.approx(0.010, **APPROX)
    assert by_venue.loc["ARCX", "acknowledgement_latency_p50_seconds"] == pytest.approx(0.030, **APPROX)
    assert by_venue.loc["XNAS", "maker_share"] == pytest.approx(0.6, **APPROX)
    assert by_venue.loc["ARCX", "maker_share"] == 1.0
    assert by_venue.loc["ARCX", "average_vwap_deviation_bps"] == pytest.approx(20.0, **APPROX)
    assert by_venue.loc["XNAS", "order_to_first_fill_latency_p50_seconds"] == pytest.approx(1.0, **APPROX)  # E1 only


def test_report_parts_and_definitions():
    orders, fills = hand_book()
    report = ExecutionAnalyzer(latency_percentiles=(25, 75)).report(orders, fills)
    assert list(report) == ["definitions", "summary", "by_symbol", "by_venue", "by_strategy"]
    assert "acknowledgement_latency_p25_seconds" in report["summary"]
    assert "acknowledgement_latency_p75_seconds" in report["by_symbol"].columns
    assert "fill_rate" in report["definitions"] and "over ALL orders" in report["definitions"]["fill_rate"]
    assert report["by_strategy"]["strategy_id"].tolist() == ["alpha"]
    with pytest.raises(ValueError):
        ExecutionAnalyzer(latency_percentiles=(50, 101))


def test_without_a_liquidity_column_the_maker_share_is_unknown():
    orders, fills = hand_book()
    summary = ExecutionAnalyzer().analyze(orders, fills.drop(columns="liquidity"))
    assert math.isnan(summary["maker_share"])
    assert summary["fill_rate"] == 0.25


def test_empty_input_gives_nan_rates_and_empty_groups():
    report = ExecutionAnalyzer().report(orders_frame(), fills_frame())
    summary = report["summary"]
    assert summary["orders"] == 0 and summary["fills"] == 0
    assert math.isnan(summary["fill_rate"]) and math.isnan(summary["acknowledgement_latency_p50_seconds"])
    assert math.isnan(summary["average_vwap_deviation_bps"])
    for key in ("by_symbol", "by_venue", "by_strategy"):
        assert report[key].empty and "fill_rate" in report[key].columns


def test_a_fill_quantity_sum_off_by_float_rounding_still_counts_as_complete():
    orders = orders_frame({"order_id": "F", "quantity": 0.3})
    fills = fills_frame({"occurred_at": 1.0, "order_id": "F", "quantity": 0.1, "price": 10.0},
                        {"occurred_at": 2.0, "order_id": "F", "quantity": 0.2, "price": 10.0})
    assert 0.1 + 0.2 != 0.3
    assert ExecutionAnalyzer().analyze(orders, fills)["fill_rate"] == 1.0


def test_an_in_place_change_to_prepared_frames_is_seen_by_the_next_analysis():
    orders, fills = hand_book()
    orders = prepare(orders, ORDERS).frame
    fills = prepare(fills, FILLS).frame
    analyzer = ExecutionAnalyzer()
    assert analyzer.analyze(orders, fills)["fill_rate"] == 0.25
    orders.loc[orders["order_id"] == "E2", "quantity"] = 20.0  # now completely filled
    assert analyzer.analyze(orders, fills)["fill_rate"] == 0.5
    fills.loc[fills["order_id"] == "E2", "order_id"] = "nobody"
    assert analyzer.analyze(orders, fills)["fills_without_order"] == 2


@settings(max_examples=45, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_books())
def test_vectorised_report_equals_the_naive_loop(case):
    orders, fills, _, _ = case
    assert_reports_equal(ExecutionAnalyzer().report(orders, fills), NaiveExecutionAnalyzer().report(orders, fills))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_books())
def test_rates_partition_the_orders_and_groups_add_up(case):
    orders, fills, _, _ = case
    report = ExecutionAnalyzer().report(orders, fills)
    summary = report["summary"]
    if summary["orders"]:
        assert summary["fill_rate"] + summary["partial_fill_rate"] + summary["unfilled_rate"] == pytest.approx(1.0)
        assert summary["filled_orders"] + summary["partially_filled_orders"] + summary["unfilled_orders"] == summary["orders"]
    for key in ("by_symbol", "by_venue", "by_strategy"):
        for name in COUNTS:
            assert report[key][name].sum() == summary[name], (key, name)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.one_of(st.floats(-1e3, 1e3), st.just(math.nan))), max_size=40),
       st.lists(st.floats(0, 100), min_size=1, max_size=4))
def test_group_percentiles_equal_numpy_per_group(rows, percentiles):
    codes = np.array([code for code, _ in rows], dtype=np.intp)
    values = np.array([value for _, value in rows], dtype="float64")
    found = _group_percentiles(values, codes, 5, percentiles)
    for group in range(5):
        mine = values[(codes == group) & np.isfinite(values)]
        expected = np.percentile(mine, percentiles) if len(mine) else np.full(len(percentiles), np.nan)
        np.testing.assert_allclose(found[:, group], expected, rtol=1e-12, atol=1e-9)


TEXT_ORDERS = ("order_id", "symbol", "side", "status", "venue", "strategy_id")
TEXT_FILLS = ("fill_id", "order_id", "symbol", "side", "venue", "strategy_id", "liquidity")


def as_text(frame: pd.DataFrame, columns, kind: str) -> pd.DataFrame:
    """The text columns held another way: category, object, or "str" of a given storage."""
    if kind == "category":
        labels = [c for c in columns if c not in ("order_id", "fill_id")]
        return frame.astype({c: "category" for c in labels})
    dtype = object if kind == "object" else pd.StringDtype(kind, na_value=np.nan)
    return frame.astype({c: dtype for c in columns})


@pytest.mark.parametrize("kind", ["category", "object", "python", "pyarrow"])
def test_every_way_of_holding_text_gives_the_same_reports(kind):
    if kind == "pyarrow":
        pytest.importorskip("pyarrow")
    from tradewatch.domain.analytics.slippage import SlippageAnalyzer

    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(random_books())
    def check(case):
        orders, fills, prices, conditions = case
        orders = prepare(orders, ORDERS).frame
        fills = prepare(fills, FILLS).frame
        held_orders, held_fills = as_text(orders, TEXT_ORDERS, kind), as_text(fills, TEXT_FILLS, kind)
        assert_reports_equal(ExecutionAnalyzer().report(held_orders, held_fills), NaiveExecutionAnalyzer().report(orders, fills))
        held = SlippageAnalyzer().report(held_orders, held_fills, prices, conditions)
        held["per_order"] = held["per_order"].astype({"order_id": "str"})  # order_id keeps its text storage
        assert_reports_equal(held, SlippageAnalyzer().report(orders, fills, prices, conditions))

    check()
