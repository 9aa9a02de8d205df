"""Rolling statistics, drawdowns, value at risk and return conversions (tradewatch.domain.analytics)."""

from __future__ import annotations

import math
import warnings

import empyrical
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from tradewatch.domain.analytics import performance
from tradewatch.domain.analytics.drawdowns import drawdown_series, top_drawdowns
from tradewatch.domain.analytics.returns import equity_to_returns, pnl_to_returns, to_daily_returns
from tradewatch.domain.analytics.rolling import rolling_sharpe, rolling_volatility
from tradewatch.domain.analytics.value_at_risk import (
    historical_value_at_risk,
    parametric_value_at_risk,
    value_at_risk_table,
)

finite_returns = st.floats(min_value=-0.5, max_value=0.5, allow_nan=False, allow_infinity=False)
return_lists = st.one_of(
    st.lists(st.one_of(finite_returns, finite_returns, finite_returns, st.just(float("nan"))), max_size=40),
    # Runs of one value give constant windows (zero dispersion) inside a varying series.
    st.lists(st.sampled_from([0.0, 0.01, -0.02, float("nan")]), max_size=30),
)


def business_days(count: int) -> pd.DatetimeIndex:
    return pd.date_range("2024-01-02", periods=count, freq="B", tz="UTC")


# ------------------------------------------------------------------ rolling


@settings(max_examples=200, deadline=None)
@given(values=return_lists, window=st.integers(1, 12), risk_free=st.sampled_from([0.0, 0.0002]), periods=st.sampled_from([252, 12, 365]))
def test_rolling_values_are_the_point_statistics_of_each_window(values, window, risk_free, periods):
    returns = pd.Series(np.array(values, dtype=np.float64), index=business_days(len(values)))
    sharpe = rolling_sharpe(returns, window, risk_free=risk_free, periods_per_year=periods)
    volatility = rolling_volatility(returns, window, periods_per_year=periods)
    assert sharpe.index.equals(returns.index) and volatility.index.equals(returns.index)

    expected_sharpe = np.full(len(values), np.nan)
    expected_volatility = np.full(len(values), np.nan)
    for end in range(window, len(values) + 1):
        chunk = returns.iloc[end - window : end]
        expected_sharpe[end - 1] = performance.sharpe_ratio(chunk, risk_free=risk_free, periods_per_year=periods)
        expected_volatility[end - 1] = performance.annual_volatility(chunk, periods_per_year=periods)
    np.testing.assert_array_equal(sharpe.to_numpy(), expected_sharpe)
    np.testing.assert_array_equal(volatility.to_numpy(), expected_volatility)


@settings(max_examples=200, deadline=None)
@given(values=return_lists, window=st.integers(1, 12), risk_free=st.sampled_from([0.0, 0.0002]))
def test_rolling_agrees_with_empyrical_on_full_windows(values, window, risk_free):
    returns = np.array(values, dtype=np.float64)
    sharpe = rolling_sharpe(returns, window, risk_free=risk_free).to_numpy()
    volatility = rolling_volatility(returns, window).to_numpy()
    if len(values) < window:
        # empyrical would shrink the window to the series; we wait for a full one.
        assert np.isnan(sharpe).all() and np.isnan(volatility).all()
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        their_sharpe = empyrical.roll_sharpe_ratio(returns, window, risk_free=risk_free)
        their_volatility = empyrical.roll_annual_volatility(returns, window)
    assert np.isnan(sharpe[: window - 1]).all() and np.isnan(volatility[: window - 1]).all()
    np.testing.assert_allclose(sharpe[window - 1 :], their_sharpe, rtol=1e-9, atol=0, equal_nan=True)
    np.testing.assert_allclose(volatility[window - 1 :], their_volatility, rtol=1e-9, atol=0, equal_nan=True)


def test_rolling_volatility_hand_case():
    # Windows of 2: std(ddof=1) of (a, b) is |a - b| / sqrt(2).
    result = rolling_volatility(np.array([0.01, 0.03, 0.0]), 2, periods_per_year=4)
    np.testing.assert_allclose(result.to_numpy(), [np.nan, 0.02 / math.sqrt(2) * 2, 0.03 / math.sqrt(2) * 2], rtol=1e-12)
    assert result.index.equals(pd.RangeIndex(3))


def test_rolling_on_empty_and_short_input():
    assert rolling_sharpe(np.array([]), 5).empty
    assert rolling_volatility(pd.Series([], dtype=np.float64), 5).empty
    assert rolling_sharpe(np.array([0.01, 0.02]), 5).isna().all()


@pytest.mark.parametrize("window", [0, -3, 2.5, True, None])
def test_rolling_window_must_be_a_positive_integer(window):
    with pytest.raises(ValueError, match="window"):
        rolling_sharpe(np.array([0.01, 0.02, 0.03]), window)


# ------------------------------------------------------------------ drawdowns

# Wealth 1.1, 0.99, 0.891, 0.93555, 1.216215, 1.1918907, 1.20380960...: down 19 % from the
# day-0 peak to the day-2 trough, back above 1.1 on day 4; then 2 % down on day 5, not regained.
HAND_RETURNS = [0.1, -0.1, -0.1, 0.05, 0.3, -0.02, 0.01]


def test_drawdown_series_hand_case():
    returns = pd.Series(HAND_RETURNS, index=business_days(7))
    series = drawdown_series(returns)
    expected = [0.0, -0.1, 0.891 / 1.1 - 1, 0.93555 / 1.1 - 1, 0.0, -0.02, 1.2038096070 / 1.216215 - 1]
    np.testing.assert_allclose(series.to_numpy(), expected, rtol=1e-9, atol=1e-15)
    assert series.index.equals(returns.index)


@settings(max_examples=200, deadline=None)
@given(values=return_lists)
def test_drawdown_series_matches_empyrical_and_max_drawdown(values):
    returns = np.array(values, dtype=np.float64)
    series = drawdown_series(returns)
    if returns.size == 0:
        assert series.empty
        return
    np.testing.assert_array_equal(series.to_numpy(), empyrical.stats.drawdown_series(returns))
    assert series.min() == performance.max_drawdown(returns)


def test_top_drawdowns_hand_case_with_timestamps():
    days = business_days(7)
    table = top_drawdowns(pd.Series(HAND_RETURNS, index=days))
    assert list(table.columns) == ["peak_at", "trough_at", "recovered_at", "drawdown", "duration_periods", "recovery_periods"]
    assert len(table) == 2
    deepest, second = table.iloc[0], table.iloc[1]
    assert (deepest.peak_at, deepest.trough_at, deepest.recovered_at) == (days[0], days[2], days[4])
    assert deepest.drawdown == pytest.approx(-0.19, rel=1e-12)
    assert (deepest.duration_periods, deepest.recovery_periods) == (4, 2)
    assert (second.peak_at, second.trough_at) == (days[4], days[5])
    assert second.recovered_at is pd.NaT
    assert second.drawdown == pytest.approx(-0.02, rel=1e-12)
    assert second.duration_periods == 2  # day 4 to day 6, the last day
    assert second.recovery_periods is pd.NA
    assert table["peak_at"].dtype == days.dtype == table["recovered_at"].dtype


def test_top_drawdowns_from_the_starting_capital_with_positions():
    # A first-day loss: the peak is the starting capital, before position 0.
    table = top_drawdowns(np.array([-0.1, 0.2, 0.0]))
    assert len(table) == 1
    row = table.iloc[0]
    assert row.peak_at is pd.NA and row.trough_at == 0 and row.recovered_at == 1
    assert row.drawdown == pytest.approx(-0.1, rel=1e-12)
    assert (row.duration_periods, row.recovery_periods) == (2, 1)
    assert str(table["trough_at"].dtype) == "Int64"


def test_top_drawdowns_limits_and_empty_cases():
    assert len(top_drawdowns(np.array(HAND_RETURNS), top=1)) == 1
    assert top_drawdowns(np.array(HAND_RETURNS), top=1).drawdown.iloc[0] == pytest.approx(-0.19, rel=1e-12)
    assert top_drawdowns(np.array([0.01, 0.0, 0.02])).empty
    assert top_drawdowns(np.array([])).empty
    assert top_drawdowns(np.array(HAND_RETURNS), top=0).empty
    with pytest.raises(ValueError, match="top"):
        top_drawdowns(np.array(HAND_RETURNS), top=-1)


def reference_episodes(values: np.ndarray) -> list[tuple]:
    """A period-by-period walk (pyfolio's idea), on the same drawdown numbers."""
    if values.size == 0:
        return []
    drawdowns = empyrical.stats.drawdown_series(values)
    episodes, start = [], None
    for position, drawdown in enumerate(drawdowns):
        if drawdown < 0 and start is None:
            start = position
        if start is not None and (drawdown >= 0 or position == len(values) - 1):
            stop = position if drawdown >= 0 else position + 1
            trough = start + int(np.argmin(drawdowns[start:stop]))
            recovered = position if drawdown >= 0 else None
            end = recovered if recovered is not None else len(values) - 1
            episodes.append((start - 1, trough, recovered, drawdowns[trough], end - (start - 1), None if recovered is None else recovered - trough))
            start = None
    return sorted(episodes, key=lambda episode: episode[3])  # stable: ties stay in time order


@settings(max_examples=200, deadline=None)
@given(values=return_lists, top=st.integers(0, 6))
def test_top_drawdowns_matches_a_period_by_period_walk(values, top):
    returns = np.array(values, dtype=np.float64)
    table = top_drawdowns(returns, top=top)
    expected = reference_episodes(returns)[:top]
    actual = [
        (
            -1 if row.peak_at is pd.NA else row.peak_at,
            row.trough_at,
            None if row.recovered_at is pd.NA else row.recovered_at,
            row.drawdown,
            row.duration_periods,
            None if row.recovery_periods is pd.NA else row.recovery_periods,
        )
        for row in table.itertuples()
    ]
    assert actual == expected


# ------------------------------------------------------------------ value at risk

Z_5_PERCENT = -1.6448536269514722  # standard normal 5 % quantile
PHI_AT_Z = math.exp(-(Z_5_PERCENT**2) / 2) / math.sqrt(2 * math.pi)


def test_parametric_value_at_risk_hand_case():
    # mean 0.01; deviations 0.02, -0.02, 0 -> sample variance 0.0008 / 2, std 0.02.
    returns = np.array([0.03, -0.01, 0.01])
    assert parametric_value_at_risk(returns) == pytest.approx(0.01 + Z_5_PERCENT * 0.02, rel=1e-12)
    table = value_at_risk_table(returns).set_index("method")
    assert table.loc["parametric (normal)", "value_at_risk"] == pytest.approx(0.01 + Z_5_PERCENT * 0.02, rel=1e-12)
    assert table.loc["parametric (normal)", "expected_shortfall"] == pytest.approx(0.01 - 0.02 * PHI_AT_Z / 0.05, rel=1e-12)


def test_parametric_value_at_risk_skips_nan_and_needs_two_observations():
    assert parametric_value_at_risk(np.array([0.03, np.nan, -0.01, 0.01])) == pytest.approx(0.01 + Z_5_PERCENT * 0.02, rel=1e-12)
    assert np.isnan(parametric_value_at_risk(np.array([0.01, np.nan])))
    assert np.isnan(parametric_value_at_risk(np.array([])))


@settings(max_examples=100, deadline=None)
@given(values=return_lists, cutoff=st.sampled_from([0.01, 0.05, 0.1, 0.25]))
def test_historical_numbers_are_the_performance_ones(values, cutoff):
    returns = pd.Series(np.array(values, dtype=np.float64), index=business_days(len(values)))
    table = value_at_risk_table(returns, cutoff)
    assert list(table["method"]) == ["historical", "parametric (normal)"]
    assert list(table.columns) == ["method", "cutoff", "value_at_risk", "expected_shortfall"]
    historical = table.iloc[0]
    np.testing.assert_equal(historical.value_at_risk, performance.value_at_risk(returns, cutoff))
    np.testing.assert_equal(historical.value_at_risk, historical_value_at_risk(returns, cutoff))
    np.testing.assert_equal(historical.expected_shortfall, performance.expected_shortfall(returns, cutoff))
    np.testing.assert_equal(table.iloc[1].value_at_risk, parametric_value_at_risk(returns, cutoff))


def test_empty_table_has_nan_numbers():
    table = value_at_risk_table(np.array([]))
    assert len(table) == 2 and table[["value_at_risk", "expected_shortfall"]].isna().all().all()


@pytest.mark.parametrize("cutoff", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_cutoff_must_be_a_tail_probability(cutoff):
    with pytest.raises(ValueError, match="cutoff"):
        parametric_value_at_risk(np.array([0.01, 0.02]), cutoff)
    with pytest.raises(ValueError, match="cutoff"):
        value_at_risk_table(np.array([0.01, 0.02]), cutoff)


# ------------------------------------------------------------------ return conversions


def test_to_daily_returns_groups_by_local_day_across_utc_midnight():
    # New York is UTC-5 in January: 03:00Z and 04:30Z are still 8 January there, 05:30Z and
    # 14:00Z are 9 January. In UTC all four fall on 9 January.
    times = pd.DatetimeIndex(["2024-01-09 03:00", "2024-01-09 04:30", "2024-01-09 05:30", "2024-01-09 14:00"], tz="UTC")
    returns = pd.Series([0.01, 0.02, -0.03, 0.04], index=times, name="strategy")

    daily = to_daily_returns(returns, timezone="America/New_York")
    assert list(daily.index) == [pd.Timestamp("2024-01-08", tz="America/New_York"), pd.Timestamp("2024-01-09", tz="America/New_York")]
    np.testing.assert_allclose(daily.to_numpy(), [1.01 * 1.02 - 1, 0.97 * 1.04 - 1], rtol=1e-12)
    assert daily.name == "strategy"

    utc = to_daily_returns(returns)
    assert list(utc.index) == [pd.Timestamp("2024-01-09", tz="UTC")]
    assert utc.iloc[0] == pytest.approx(1.01 * 1.02 * 0.97 * 1.04 - 1, rel=1e-12)


def test_to_daily_returns_skips_nan_invents_no_day_and_reads_naive_as_utc():
    times = pd.DatetimeIndex(["2024-01-05 10:00", "2024-01-02 15:00", "2024-01-02 10:00", "2024-01-03 12:00", "2024-01-05 11:00"])
    returns = pd.Series([0.02, np.nan, 0.01, np.nan, np.nan], index=times)
    daily = to_daily_returns(returns)
    assert list(daily.index) == [pd.Timestamp(day, tz="UTC") for day in ["2024-01-02", "2024-01-03", "2024-01-05"]]
    np.testing.assert_allclose(daily.to_numpy(), [0.01, np.nan, 0.02], rtol=1e-14, equal_nan=True)  # no 4 January; 3 January only NaN


def test_to_daily_returns_of_nothing_is_empty():
    empty = pd.Series([], dtype=np.float64, index=pd.DatetimeIndex([], tz="UTC"))
    assert to_daily_returns(empty, timezone="Europe/London").empty


@pytest.mark.parametrize("returns", [pd.Series([0.01, 0.02]), np.array([0.01, 0.02]), pd.Series([0.01], index=["a"])])
def test_to_daily_returns_needs_a_datetime_index(returns):
    with pytest.raises(ValueError, match="DatetimeIndex"):
        to_daily_returns(returns)


def test_equity_to_returns():
    equity = pd.Series([100.0, 110.0, 99.0, 0.0, 5.0, np.nan, 7.0], index=business_days(7))
    returns = equity_to_returns(equity)
    assert returns.index.equals(equity.index[1:])
    np.testing.assert_allclose(returns.to_numpy(), [0.1, -0.1, -1.0, np.nan, np.nan, np.nan], rtol=1e-12, equal_nan=True)
    # Away from a zero equity it is pct_change with the first (undefined) row dropped.
    pandas = equity.iloc[:4].pct_change().iloc[1:]
    np.testing.assert_allclose(equity_to_returns(equity.iloc[:4]).to_numpy(), pandas.to_numpy(), rtol=1e-15)
    assert equity_to_returns(np.array([50.0, 75.0])).tolist() == [0.5]
    assert equity_to_returns(pd.Series([100.0])).empty


def test_pnl_to_returns():
    pnl = pd.Series([1_000.0, -500.0, np.nan], index=business_days(3))
    returns = pnl_to_returns(pnl, 100_000.0)
    assert returns.index.equals(pnl.index)
    np.testing.assert_allclose(returns.to_numpy(), [0.01, -0.005, np.nan], rtol=1e-15, equal_nan=True)
    assert pnl_to_returns(pnl, 0.0).isna().all()
