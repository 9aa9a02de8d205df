"""Trade statistics: a hand-computed case, edge cases, and agreement with the naive loop."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.naive_analytics.round_trips import naive_match_round_trips, naive_trade_statistics
from tests.domain.analytics.test_round_trips import fill_rows, make_fills
from tradewatch.domain.analytics.round_trips import match_round_trips
from tradewatch.domain.analytics.trade_statistics import STATISTIC_KEYS, trade_statistics

START = pd.Timestamp("2024-01-02T00:00:00Z")


def trips_from(pnls: list[float], exit_order: list[int] | None = None) -> pd.DataFrame:
    """Trips with the given pnl; trip i exits at minute exit_order[i] (default i)."""
    exit_order = exit_order if exit_order is not None else list(range(len(pnls)))
    return pd.DataFrame({
        "pnl": pd.Series(pnls, dtype="float64"),
        "fees": pd.Series([0.5] * len(pnls), dtype="float64"),
        "holding_seconds": pd.Series([60.0 * (i + 1) for i in range(len(pnls))], dtype="float64"),
        "exit_at": pd.DatetimeIndex([START + pd.Timedelta(minutes=m) for m in exit_order], dtype="datetime64[ns, UTC]"),
    })


def test_hand_computed_statistics_with_a_breakeven_inside_a_streak():
    # In exit order: 10, 5, 0, 7, -3, -4, -1, 8, 0, -2. Rows are given shuffled.
    in_exit_order = [10.0, 5.0, 0.0, 7.0, -3.0, -4.0, -1.0, 8.0, 0.0, -2.0]
    shuffle = [3, 0, 9, 5, 1, 7, 2, 8, 4, 6]
    trips = trips_from([in_exit_order[m] for m in shuffle], exit_order=shuffle)
    stats = trade_statistics(trips)
    assert list(stats) == list(STATISTIC_KEYS)
    assert stats["trades"] == 10
    assert stats["winning_trades"] == 4 and stats["losing_trades"] == 4 and stats["breakeven_trades"] == 2
    assert stats["win_rate"] == pytest.approx(0.4)
    assert stats["gross_profit"] == pytest.approx(30.0)
    assert stats["gross_loss"] == pytest.approx(-10.0)
    assert stats["profit_factor"] == pytest.approx(3.0)
    assert stats["average_win"] == pytest.approx(7.5)
    assert stats["average_loss"] == pytest.approx(-2.5)
    assert stats["payoff_ratio"] == pytest.approx(3.0)
    assert stats["expectancy"] == pytest.approx(2.0)
    assert stats["expectancy"] == pytest.approx(0.4 * 7.5 + 0.4 * -2.5)  # the documented identity
    assert stats["largest_win"] == 10.0 and stats["largest_loss"] == -4.0
    assert stats["longest_winning_streak"] == 2  # 10, 5 -- the breakeven ends it before 7
    assert stats["longest_losing_streak"] == 3  # -3, -4, -1
    assert stats["total_pnl"] == pytest.approx(20.0)
    assert stats["fees"] == pytest.approx(5.0)
    assert stats["average_holding_seconds"] == pytest.approx(330.0)
    for key in ("trades", "winning_trades", "losing_trades", "breakeven_trades", "longest_winning_streak",
                "longest_losing_streak"):
        assert type(stats[key]) is int, key
    for key in set(STATISTIC_KEYS) - {"trades", "winning_trades", "losing_trades", "breakeven_trades",
                                      "longest_winning_streak", "longest_losing_streak"}:
        assert type(stats[key]) is float, key


def test_a_breakeven_trip_ends_a_streak():
    stats = trade_statistics(trips_from([1.0, 0.0, 1.0, 1.0, 0.0, -1.0, 0.0, -1.0]))
    assert stats["longest_winning_streak"] == 2
    assert stats["longest_losing_streak"] == 1


def test_no_losses_gives_nan_ratios():
    stats = trade_statistics(trips_from([1.0, 2.0]))
    assert math.isnan(stats["profit_factor"]) and math.isnan(stats["payoff_ratio"])
    assert math.isnan(stats["average_loss"]) and math.isnan(stats["largest_loss"])
    assert stats["longest_winning_streak"] == 2 and stats["longest_losing_streak"] == 0


def test_empty_trips_give_zero_counts_and_nan():
    stats = trade_statistics(trips_from([]))
    assert stats["trades"] == 0 and stats["total_pnl"] == 0.0
    assert math.isnan(stats["win_rate"]) and math.isnan(stats["expectancy"])
    assert stats["longest_winning_streak"] == 0
    assert math.isnan(trade_statistics(pd.DataFrame())["win_rate"])


def assert_same_statistics(fast: dict, slow: dict) -> None:
    assert list(fast) == list(slow)
    for key in fast:
        if isinstance(slow[key], float) and math.isnan(slow[key]):
            assert math.isnan(fast[key]), key
        else:
            assert fast[key] == pytest.approx(slow[key], rel=1e-9, abs=1e-9), key


@settings(max_examples=150, deadline=None)
@given(fill_rows())
def test_statistics_match_the_naive_loop(rows):
    fills = make_fills(rows)
    fast = trade_statistics(match_round_trips(fills).trips)
    slow = naive_trade_statistics(naive_match_round_trips(fills).trips)
    assert_same_statistics(fast, slow)
    if fast["trades"]:
        loss_rate = fast["losing_trades"] / fast["trades"]
        identity = (fast["win_rate"] * (fast["average_win"] if fast["winning_trades"] else 0.0)
                    + loss_rate * (fast["average_loss"] if fast["losing_trades"] else 0.0))
        assert fast["expectancy"] == pytest.approx(identity, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([-2.0, -1.0, 0.0, 1.0, 3.0]), max_size=60))
def test_streaks_match_the_naive_loop(pnls):
    trips = trips_from(pnls)
    assert_same_statistics(trade_statistics(trips), naive_trade_statistics(trips))
