"""Implementation shortfall: hand-computed orders, fallbacks, and properties against the naive loop."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.naive_analytics.execution import NaiveSlippageAnalyzer
from tradewatch.domain.analytics.prices import PriceBook
from tradewatch.domain.analytics.schema import FILLS, ORDERS, QUOTES, prepare
from tradewatch.domain.analytics.slippage import COMPONENTS, SlippageAnalyzer

T0 = pd.Timestamp("2025-03-03T14:30:00Z")
APPROX = {"rel": 1e-9, "abs": 1e-9}


def at(seconds: float | None):
    return pd.NaT if seconds is None else T0 + pd.Timedelta(seconds=seconds)


def orders_frame(*rows: dict) -> pd.DataFrame:
    defaults = {"symbol": "AAA", "side": "buy", "quantity": 100.0, "submitted_at": 0.0, "status": "accepted",
                "accepted_at": None, "ended_at": None, "decision_price": None, "venue": "XNAS", "strategy_id": "alpha"}
    records = []
    for row in rows:
        record = {**defaults, **row}
        for key in ("submitted_at", "accepted_at", "ended_at"):
            record[key] = at(record[key])
        records.append(record)
    columns = ["order_id", *defaults]
    return pd.DataFrame(records, columns=columns)


def fills_frame(*rows: dict) -> pd.DataFrame:
    defaults = {"symbol": "AAA", "side": "buy", "fee": 0.0, "bid": None, "ask": None, "arrival_price": None,
                "vwap": None, "venue": None, "strategy_id": None, "liquidity": None}
    records = []
    for number, row in enumerate(rows):
        record = {"fill_id": f"f{number}", **defaults, **row}
        record["occurred_at"] = at(record["occurred_at"])
        records.append(record)
    columns = ["occurred_at", "fill_id", "order_id", "quantity", "price", *defaults]
    frame = pd.DataFrame(records, columns=columns)
    for column in ("fee", "bid", "ask", "arrival_price", "vwap"):
        frame[column] = frame[column].astype("float64")
    return frame


def book(*quotes: tuple) -> PriceBook:
    """quotes: (seconds, symbol, bid, ask)."""
    frame = pd.DataFrame(
        [{"occurred_at": at(s), "symbol": symbol, "bid": bid, "ask": ask} for s, symbol, bid, ask in quotes],
        columns=["occurred_at", "symbol", "bid", "ask"],
    )
    return PriceBook(prepare(frame, QUOTES).frame)


def only(per_order: pd.DataFrame, order_id: str) -> pd.Series:
    return per_order.set_index("order_id").loc[order_id]


# -- hand-computed ---------------------------------------------------------------------------------
def buy_case():
    orders = orders_frame({"order_id": "B1", "side": "buy", "quantity": 100.0, "decision_price": 100.00,
                           "status": "cancelled", "accepted_at": 0.05, "ended_at": 30.0})
    fills = fills_frame(
        {"occurred_at": 10.0, "order_id": "B1", "quantity": 40.0, "price": 100.30, "bid": 100.15, "ask": 100.25,
         "fee": 0.5, "vwap": 100.25, "arrival_price": 100.10},
        {"occurred_at": 20.0, "order_id": "B1", "quantity": 40.0, "price": 100.55, "fee": 0.7, "vwap": 100.40},
    )
    prices = book((-1, "AAA", 100.05, 100.15), (15, "AAA", 100.35, 100.45), (200, "AAA", 100.65, 100.75),
                  (400, "AAA", 100.95, 101.05))
    return orders, fills, prices


def test_buy_with_two_fills_every_component():
    orders, fills, prices = buy_case()
    row = only(SlippageAnalyzer().analyze(orders, fills, prices), "B1")
    # P_d = 100.00; P_a = mid at submission = 100.10 (quote at -1 s); m_1 = 100.20 from the fill's
    # bid/ask; m_2 = 100.40, the as-of mid at 20 s (quote at 15 s: the fill has no bid/ask);
    # order end = max(last fill 20 s, ended_at 30 s) = 30 s; P_end = mid at 330 s = 100.70.
    assert row["arrival_mid"] == pytest.approx(100.10, **APPROX)
    assert row["arrival_price_source"] == "quotes"
    assert row["decision_price_source"] == "decision price"
    assert row["end_mid"] == pytest.approx(100.70, **APPROX)
    assert row["filled_quantity"] == 80.0 and row["unfilled_quantity"] == 20.0 and row["fill_count"] == 2
    assert row["timing_cost"] == pytest.approx(8.0, **APPROX)  # (100.10 - 100.00) * 80
    assert row["spread_cost"] == pytest.approx(10.0, **APPROX)  # 40 * 0.10 + 40 * 0.15
    assert row["price_impact"] == pytest.approx(16.0, **APPROX)  # 40 * 0.10 + 40 * 0.30
    assert row["opportunity_cost"] == pytest.approx(14.0, **APPROX)  # 20 * (100.70 - 100.00)
    assert row["total_cost"] == pytest.approx(48.0, **APPROX)
    assert row["fees"] == pytest.approx(1.2, **APPROX)
    assert row["total_cost_with_fees"] == pytest.approx(49.2, **APPROX)
    # Execution shortfall of the filled part: sum q p - P_d F = 4012 + 4022 - 8000 = 34.
    assert row["timing_cost"] + row["spread_cost"] + row["price_impact"] == pytest.approx(34.0, **APPROX)
    assert row["notional"] == pytest.approx(10_000.0, **APPROX)
    for name, bps in (("timing_cost", 8.0), ("spread_cost", 10.0), ("price_impact", 16.0), ("opportunity_cost", 14.0),
                      ("total_cost", 48.0), ("fees", 1.2), ("total_cost_with_fees", 49.2)):
        assert row[f"{name}_bps"] == pytest.approx(bps, **APPROX)  # component / 10,000 * 1e4
    assert row["average_fill_price"] == pytest.approx(100.425, **APPROX)
    assert row["vwap_deviation_bps"] == pytest.approx((100.425 - 100.40) / 100.40 * 1e4, **APPROX)
    assert row["venue"] == "XNAS" and row["strategy_id"] == "alpha" and row["market_condition"] == "unknown"


def test_sell_with_two_fills_signs_flip_so_a_worse_execution_is_still_a_cost():
    orders = orders_frame({"order_id": "S1", "symbol": "BBB", "side": "sell", "quantity": 100.0, "decision_price": 100.00,
                           "status": "cancelled", "ended_at": 30.0})
    fills = fills_frame(
        {"occurred_at": 10.0, "order_id": "S1", "symbol": "BBB", "side": "sell", "quantity": 40.0, "price": 99.70,
         "bid": 99.75, "ask": 99.85, "vwap": 99.80},
        {"occurred_at": 20.0, "order_id": "S1", "symbol": "BBB", "side": "sell", "quantity": 40.0, "price": 99.45,
         "vwap": 99.60},
    )
    prices = book((-1, "BBB", 99.85, 99.95), (15, "BBB", 99.55, 99.65), (200, "BBB", 99.25, 99.35))
    row = only(SlippageAnalyzer().analyze(orders, fills, prices), "S1")
    # P_a = 99.90 (fell before submission: bad for a seller), m = 99.80 and 99.60, P_end = 99.30.
    assert row["timing_cost"] == pytest.approx(8.0, **APPROX)  # -1 * (99.90 - 100) * 80
    assert row["spread_cost"] == pytest.approx(10.0, **APPROX)  # -1 * (40 * -0.10 + 40 * -0.15)
    assert row["price_impact"] == pytest.approx(16.0, **APPROX)  # -1 * (40 * -0.10 + 40 * -0.30)
    assert row["opportunity_cost"] == pytest.approx(14.0, **APPROX)  # -1 * 20 * (99.30 - 100)
    assert row["total_cost"] == pytest.approx(48.0, **APPROX)
    assert row["total_cost_bps"] == pytest.approx(48.0, **APPROX)
    assert row["average_fill_price"] == pytest.approx(99.575, **APPROX)
    # Sold below the market VWAP: a positive (bad) deviation.
    assert row["vwap_deviation_bps"] == pytest.approx((99.60 - 99.575) / 99.60 * 1e4, **APPROX)


def test_an_unfilled_order_costs_only_the_opportunity():
    orders = orders_frame({"order_id": "U1", "symbol": "CCC", "quantity": 50.0, "decision_price": 20.0,
                           "status": "expired", "ended_at": 60.0})
    prices = book((-10, "CCC", 20.01, 20.03), (300, "CCC", 20.49, 20.51), (400, "CCC", 30.0, 30.2))
    row = only(SlippageAnalyzer().analyze(orders, fills_frame(), prices), "U1")
    assert row["arrival_mid"] == pytest.approx(20.02, **APPROX)
    assert row["end_mid"] == pytest.approx(20.5, **APPROX)  # as of ended_at + 300 s = 360 s
    assert (row["timing_cost"], row["spread_cost"], row["price_impact"]) == (0.0, 0.0, 0.0)
    assert row["opportunity_cost"] == pytest.approx(25.0, **APPROX)  # 50 * (20.5 - 20.0)
    assert row["total_cost"] == pytest.approx(25.0, **APPROX)
    assert row["opportunity_cost_bps"] == pytest.approx(250.0, **APPROX)  # 25 / (20 * 50) * 1e4
    assert math.isnan(row["average_fill_price"]) and math.isnan(row["vwap_deviation_bps"])


def test_a_rejected_sell_is_charged_the_opportunity_it_missed():
    orders = orders_frame({"order_id": "R1", "symbol": "DDD", "side": "sell", "quantity": 10.0, "decision_price": 50.0,
                           "status": "rejected", "ended_at": 0.003})
    prices = book((-5, "DDD", 50.05, 50.15), (100, "DDD", 48.95, 49.05))
    analyzer = SlippageAnalyzer()
    per_order = analyzer.analyze(orders, fills_frame(), prices)
    row = only(per_order, "R1")
    assert row["status"] == "rejected" and row["filled_quantity"] == 0.0
    assert row["opportunity_cost"] == pytest.approx(10.0, **APPROX)  # -1 * 10 * (49.0 - 50.0): the price fell
    assert row["total_cost"] == pytest.approx(10.0, **APPROX)
    assert analyzer.summary(per_order)["orders_without_end_price"] == 0


def test_without_quotes_the_first_fills_arrival_price_is_used_and_a_missing_end_price_is_counted():
    orders, fills, _ = buy_case()
    analyzer = SlippageAnalyzer()
    per_order = analyzer.analyze(orders, fills)  # no price book
    row = only(per_order, "B1")
    assert row["arrival_price_source"] == "fill arrival_price"
    assert row["arrival_mid"] == pytest.approx(100.10, **APPROX)
    assert row["timing_cost"] == pytest.approx(8.0, **APPROX)
    # m_2 has neither bid/ask nor a quote: m_2 = p_2, no spread cost for that fill.
    assert row["spread_cost"] == pytest.approx(4.0, **APPROX)
    assert row["price_impact"] == pytest.approx(40 * 0.10 + 40 * (100.55 - 100.10), **APPROX)
    assert math.isnan(row["end_mid"]) and math.isnan(row["opportunity_cost"]) and math.isnan(row["total_cost"])
    summary = analyzer.summary(per_order)
    assert summary["orders_without_end_price"] == 1
    assert summary["opportunity_cost"] == 0.0  # the unknown value adds nothing, and is counted
    assert summary["timing_cost"] == pytest.approx(8.0, **APPROX)


def test_without_quotes_nor_fill_arrival_price_the_decision_price_stands_in():
    orders = orders_frame({"order_id": "D1", "quantity": 10.0, "decision_price": 100.0})
    fills = fills_frame({"occurred_at": 1.0, "order_id": "D1", "quantity": 10.0, "price": 100.2, "bid": 100.0, "ask": 100.1})
    row = only(SlippageAnalyzer().analyze(orders, fills), "D1")
    assert row["arrival_price_source"] == "decision price"
    assert row["arrival_mid"] == 100.0 and row["timing_cost"] == 0.0
    assert row["spread_cost"] == pytest.approx(10 * (100.2 - 100.05), **APPROX)
    assert row["price_impact"] == pytest.approx(10 * 0.05, **APPROX)
    assert row["opportunity_cost"] == 0.0  # completely filled
    assert math.isnan(row["end_mid"])  # not looked up: nothing uses it


def test_without_a_decision_price_the_arrival_mid_is_the_benchmark():
    orders, fills, prices = buy_case()
    orders["decision_price"] = np.nan
    row = only(SlippageAnalyzer().analyze(orders, fills, prices), "B1")
    assert row["decision_price_source"] == "arrival price"
    assert row["decision_price"] == pytest.approx(100.10, **APPROX)
    assert row["timing_cost"] == 0.0
    assert row["notional"] == pytest.approx(100.10 * 100, **APPROX)
    assert row["opportunity_cost"] == pytest.approx(20 * (100.70 - 100.10), **APPROX)


def test_an_order_with_no_price_at_all_has_unknown_costs_and_is_counted():
    orders = orders_frame({"order_id": "N1", "quantity": 10.0})
    fills = fills_frame({"occurred_at": 1.0, "order_id": "N1", "quantity": 4.0, "price": 10.0, "bid": 9.9, "ask": 10.1})
    analyzer = SlippageAnalyzer()
    per_order = analyzer.analyze(orders, fills)
    row = only(per_order, "N1")
    assert row["decision_price_source"] == "none" and row["arrival_price_source"] == "none"
    assert all(math.isnan(row[name]) for name in ("timing_cost", "spread_cost", "price_impact", "opportunity_cost",
                                                   "total_cost", "total_cost_bps"))
    assert row["fees"] == 0.0
    assert analyzer.summary(per_order)["orders_without_price"] == 1


def test_fills_without_an_order_are_counted_not_used():
    orders, fills, prices = buy_case()
    ghost = fills_frame({"occurred_at": 5.0, "order_id": "GHOST", "quantity": 1000.0, "price": 1.0})
    ghost["fill_id"] = "g0"
    analyzer = SlippageAnalyzer()
    report = analyzer.report(orders, pd.concat([fills, ghost], ignore_index=True), prices)
    assert report["summary"]["fills_without_order"] == 1
    assert report["summary"]["total_cost"] == pytest.approx(48.0, **APPROX)


def test_market_condition_is_the_label_valid_at_submission_without_look_ahead():
    orders = orders_frame(
        {"order_id": "A", "submitted_at": 0.0, "decision_price": 10.0},
        {"order_id": "B", "submitted_at": 100.0, "decision_price": 10.0},
        {"order_id": "C", "submitted_at": 250.0, "decision_price": 10.0},
        {"order_id": "D", "symbol": "ZZZ", "submitted_at": 250.0, "decision_price": 10.0},
    )
    conditions = pd.DataFrame({
        "occurred_at": [at(-60), at(100), at(100), at(300), at(0)],
        "symbol": ["AAA", "AAA", "AAA", "AAA", "BBB"],
        "volatility": ["low", "normal", "high", "low", "high"],
    })
    per_order = SlippageAnalyzer().analyze(orders, fills_frame(), None, conditions)
    labels = dict(zip(per_order["order_id"], per_order["market_condition"].astype(str)))
    # A: the -60 s label. B: submitted exactly at 100 s, where two labels start: the later row wins.
    # C: 300 s is in the future of 250 s. D: no label for its symbol.
    assert labels == {"A": "low", "B": "high", "C": "high", "D": "unknown"}
    report = SlippageAnalyzer().report(orders, fills_frame(), None, conditions)
    by_condition = report["by_market_condition"]
    assert by_condition["market_condition"].tolist() == ["high", "low", "unknown"]
    assert by_condition["orders"].tolist() == [2, 1, 1]


def test_the_end_horizon_moves_the_end_price():
    orders = orders_frame({"order_id": "U1", "symbol": "CCC", "quantity": 50.0, "decision_price": 20.0,
                           "status": "expired", "ended_at": 60.0})
    prices = book((-10, "CCC", 20.01, 20.03), (100, "CCC", 20.19, 20.21), (300, "CCC", 20.49, 20.51))
    assert only(SlippageAnalyzer(0).analyze(orders, fills_frame(), prices), "U1")["end_mid"] == pytest.approx(20.02)
    assert only(SlippageAnalyzer(60).analyze(orders, fills_frame(), prices), "U1")["end_mid"] == pytest.approx(20.2)
    with pytest.raises(ValueError):
        SlippageAnalyzer(-1)


def test_empty_input_gives_empty_frames_and_nan_rates():
    analyzer = SlippageAnalyzer()
    report = analyzer.report(orders_frame(), fills_frame(), book())
    assert report["per_order"].empty and "total_cost_bps" in report["per_order"].columns
    assert report["summary"]["orders"] == 0 and report["summary"]["total_cost"] == 0.0
    assert math.isnan(report["summary"]["total_cost_bps"])
    for key in ("by_symbol", "by_venue", "by_strategy", "by_market_condition"):
        assert report[key].empty and "orders" in report[key].columns
    assert set(report["definitions"]) >= {*COMPONENTS, "notional", "arrival_mid", "end_mid"}


def test_the_report_has_every_documented_part():
    orders, fills, prices = buy_case()
    report = SlippageAnalyzer().report(orders, fills, prices)
    assert list(report) == ["definitions", "summary", "by_symbol", "by_venue", "by_strategy", "by_market_condition",
                            "per_order"]
    assert report["by_venue"]["venue"].tolist() == ["XNAS"]
    assert report["summary"]["total_cost_bps"] == pytest.approx(48.0, **APPROX)


def test_venue_and_strategy_come_from_the_first_fill_when_the_order_has_none():
    orders = orders_frame({"order_id": "V1", "venue": None, "strategy_id": None, "decision_price": 10.0})
    fills = fills_frame({"occurred_at": 2.0, "order_id": "V1", "quantity": 5.0, "price": 10.0, "venue": "LATE"},
                        {"occurred_at": 1.0, "order_id": "V1", "quantity": 5.0, "price": 10.0, "venue": "EARLY",
                         "strategy_id": "beta"})
    row = only(SlippageAnalyzer().analyze(orders, fills), "V1")
    assert row["venue"] == "EARLY" and row["strategy_id"] == "beta"


def test_an_in_place_change_to_a_prepared_frame_is_seen_by_the_next_analysis():
    # The per order fill aggregates are cached between analyses of the same frames.
    orders, fills, prices = buy_case()
    orders = prepare(orders, ORDERS).frame
    fills = prepare(fills, FILLS).frame
    analyzer = SlippageAnalyzer()
    assert only(analyzer.analyze(orders, fills, prices), "B1")["spread_cost"] == pytest.approx(10.0, **APPROX)
    fills.loc[fills.index[0], "price"] = 100.40  # spread of the first fill: 40 * 0.20
    assert only(analyzer.analyze(orders, fills, prices), "B1")["spread_cost"] == pytest.approx(14.0, **APPROX)
    fills["quantity"] = fills["quantity"] / 2
    assert only(analyzer.analyze(orders, fills, prices), "B1")["filled_quantity"] == 40.0


# -- random books: properties and agreement with the naive loop -------------------------------------
SYMBOLS = ("AAA", "BBB", "CCC")
PRICE = st.integers(180, 220).map(lambda cents: cents / 2.0)  # 90.0 .. 110.0 in halves


@st.composite
def random_books(draw, max_orders: int = 8):
    """(orders, fills, quotes PriceBook, market_conditions) of a small random book (raw frames)."""
    orders, fills = [], []
    for number in range(draw(st.integers(0, max_orders))):
        order_id = f"o{number}"
        submitted = draw(st.integers(0, 100))
        status = draw(st.sampled_from(("submitted", "accepted", "rejected", "cancelled", "expired")))
        side = draw(st.sampled_from(("buy", "sell")))
        symbol = draw(st.sampled_from(SYMBOLS))
        orders.append({
            "order_id": order_id, "symbol": symbol, "side": side, "quantity": float(draw(st.integers(1, 100))),
            "submitted_at": float(submitted), "status": status,
            "accepted_at": draw(st.one_of(st.none(), st.integers(submitted, submitted + 5).map(float))),
            "ended_at": draw(st.one_of(st.none(), st.integers(submitted, submitted + 80).map(float))),
            "decision_price": draw(st.one_of(st.none(), PRICE)),
            "venue": draw(st.sampled_from(("XNAS", "ARCX", None))),
            "strategy_id": draw(st.sampled_from(("alpha", "beta", None))),
        })
        for _ in range(draw(st.integers(0, 3))):
            price = draw(PRICE)
            quoted = draw(st.booleans())
            fills.append({
                "occurred_at": float(submitted + draw(st.integers(0, 40))), "order_id": order_id, "symbol": symbol,
                "side": side, "quantity": float(draw(st.integers(1, 60))), "price": price,
                "fee": draw(st.sampled_from((0.0, 0.25, 1.0))),
                "bid": price - 0.5 if quoted else None, "ask": price + draw(st.sampled_from((0.0, 0.5, 1.0))) if quoted else None,
                "arrival_price": draw(st.one_of(st.none(), PRICE)), "vwap": draw(st.one_of(st.none(), PRICE)),
                "venue": draw(st.sampled_from(("BATS", None))), "strategy_id": draw(st.sampled_from(("gamma", None))),
                "liquidity": draw(st.sampled_from(("maker", "taker", "Maker", None))),
            })
    for _ in range(draw(st.integers(0, 2))):
        fills.append({"occurred_at": float(draw(st.integers(0, 100))), "order_id": "ghost", "quantity": 5.0,
                      "price": 100.0, "liquidity": "maker"})
    if orders and draw(st.booleans()):
        orders.append({**orders[0], "quantity": 999.0})  # a duplicate order_id: the first row is kept
    shuffled = draw(st.permutations(fills)) if fills else []
    quotes = [(float(draw(st.integers(-20, 200))), draw(st.sampled_from(SYMBOLS)), bid, bid + 0.5)
              for bid in draw(st.lists(PRICE, max_size=12))]
    conditions = pd.DataFrame({
        "occurred_at": [at(draw(st.integers(-20, 120))) for _ in range(draw(st.integers(0, 4)))],
    })
    conditions["symbol"] = [draw(st.sampled_from(SYMBOLS)) for _ in range(len(conditions))]
    conditions["volatility"] = [draw(st.sampled_from(("low", "normal", "high", None))) for _ in range(len(conditions))]
    return orders_frame(*orders), fills_frame(*shuffled), book(*quotes), conditions


def assert_reports_equal(fast: dict, slow: dict) -> None:
    assert list(fast) == list(slow)
    for key in fast:
        if isinstance(fast[key], pd.DataFrame):
            pd.testing.assert_frame_equal(fast[key], slow[key], check_exact=False, rtol=1e-9, atol=1e-7)
        elif key == "definitions":
            assert fast[key] == slow[key]
        else:
            assert list(fast[key]) == list(slow[key])
            for name, value in fast[key].items():
                assert value == pytest.approx(slow[key][name], rel=1e-9, abs=1e-7, nan_ok=True), (key, name)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_books())
def test_vectorised_report_equals_the_naive_loop(case):
    orders, fills, prices, conditions = case
    horizon = 30.0
    fast = SlippageAnalyzer(horizon).report(orders, fills, prices, conditions)
    slow = NaiveSlippageAnalyzer(horizon).report(orders, fills, prices, conditions)
    assert_reports_equal(fast, slow)
    assert fast["per_order"].attrs["fills_without_order"] == (fills["order_id"] == "ghost").sum()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_books())
def test_components_add_up_to_the_total_in_currency_and_bps(case):
    orders, fills, prices, conditions = case
    per_order = SlippageAnalyzer(30.0).analyze(orders, fills, prices, conditions)
    parts = ["timing_cost", "spread_cost", "price_impact", "opportunity_cost"]
    known = per_order["total_cost"].notna()
    for suffix in ("", "_bps"):
        summed = per_order.loc[known, [p + suffix for p in parts]].sum(axis=1)
        np.testing.assert_allclose(summed, per_order.loc[known, "total_cost" + suffix], rtol=1e-9, atol=1e-9)
        with_fees = per_order.loc[known, "total_cost" + suffix] + per_order.loc[known, "fees" + suffix]
        np.testing.assert_allclose(with_fees, per_order.loc[known, "total_cost_with_fees" + suffix], rtol=1e-9, atol=1e-9)
    # timing + spread + impact = s (sum q p - P_d F), the execution shortfall of the filled part.
    priced = per_order["decision_price"].notna()
    sign = np.where(per_order["side"].astype(str) == "buy", 1.0, -1.0)
    shortfall = sign * (per_order["average_fill_price"].fillna(0) - per_order["decision_price"]) * per_order["filled_quantity"]
    filled_part = per_order[parts[:3]].sum(axis=1)
    np.testing.assert_allclose(filled_part[priced], shortfall[priced], rtol=1e-9, atol=1e-7)


@settings(max_examples=35, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_books())
def test_aggregations_add_up_to_the_summary(case):
    orders, fills, prices, conditions = case
    report = SlippageAnalyzer(30.0).report(orders, fills, prices, conditions)
    summary = report["summary"]
    for key in ("by_symbol", "by_venue", "by_strategy", "by_market_condition"):
        groups = report[key]
        for name in ("orders", "notional", *COMPONENTS, "orders_without_end_price", "orders_without_price"):
            assert groups[name].sum() == pytest.approx(summary[name], rel=1e-9, abs=1e-7), (key, name)
        for name in COMPONENTS:  # notional-weighted bps of the groups give the summary's
            weighted = (groups[f"{name}_bps"].fillna(0) * groups["notional"]).sum()
            expected = summary[f"{name}_bps"] * summary["notional"] if summary["notional"] else 0.0
            assert weighted == pytest.approx(expected, rel=1e-9, abs=1e-6), (key, name)


@st.composite
def one_sided_executions(draw):
    """A completely filled order whose every fill is worse than the decision price."""
    side = draw(st.sampled_from(("buy", "sell")))
    decision = draw(PRICE)
    quantities = draw(st.lists(st.integers(1, 50), min_size=1, max_size=4))
    worse = [draw(st.integers(1, 40)) / 4.0 for _ in quantities]
    prices = [decision + w if side == "buy" else decision - w for w in worse]
    fills = [{"occurred_at": float(i), "order_id": "x", "side": side, "quantity": float(q), "price": p,
              "bid": draw(st.one_of(st.none(), PRICE)), "ask": None, "arrival_price": draw(st.one_of(st.none(), PRICE))}
             for i, (q, p) in enumerate(zip(quantities, prices))]
    for fill in fills:  # bid and ask go together (a lone bid is ignored anyway)
        fill["ask"] = None if fill["bid"] is None else fill["bid"] + 0.5
    orders = orders_frame({"order_id": "x", "side": side, "quantity": float(sum(quantities)), "decision_price": decision})
    quotes = [(float(draw(st.integers(-5, 10))), "AAA", bid, bid + 0.5) for bid in draw(st.lists(PRICE, max_size=5))]
    return orders, fills_frame(*fills), book(*quotes)


@settings(max_examples=50, deadline=None)
@given(one_sided_executions())
def test_a_buy_filled_above_or_a_sell_filled_below_the_decision_price_is_a_positive_cost(case):
    orders, fills, prices = case
    row = SlippageAnalyzer().analyze(orders, fills, prices).iloc[0]
    assert row["opportunity_cost"] == 0.0
    assert row["total_cost"] > 0 and row["total_cost_bps"] > 0
    # Mirror the fills around the decision price: the same execution turned good is a gain.
    mirrored = fills.copy()
    decision = orders["decision_price"].iloc[0]
    mirrored["price"] = 2 * decision - mirrored["price"]
    mirrored_row = SlippageAnalyzer().analyze(orders, mirrored, prices).iloc[0]
    assert mirrored_row["total_cost"] < 0
