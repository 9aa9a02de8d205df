"""RegimeAnalyzer: bar labels (trend, volatility, risk) without look-ahead, and performance by regime."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradewatch.domain.analytics.prices import PriceBook
from tradewatch.domain.analytics.regimes import RegimeAnalyzer

START = pd.Timestamp("2024-01-01", tz="UTC")
DAY = pd.Timedelta("1D")


def daily_quotes(symbol: str, closes, hour: int = 12) -> pd.DataFrame:
    """One quote a day at ``hour`` UTC: bar k (day k) closes at closes[k] and ends at day k+1 00:00."""
    times = START + DAY * np.arange(len(closes)) + pd.Timedelta(hours=hour)
    return pd.DataFrame({"occurred_at": times, "symbol": symbol, "last": np.asarray(closes, dtype="float64")})


def book(*frames: pd.DataFrame) -> PriceBook:
    return PriceBook(pd.concat(frames, ignore_index=True))


def of(labels: pd.DataFrame, symbol: str) -> pd.DataFrame:
    return labels[labels["symbol"] == symbol].reset_index(drop=True)


# ---------------------------------------------------------------- bars


def test_occurred_at_is_the_bar_end_and_empty_bars_are_skipped():
    quotes = daily_quotes("A", np.linspace(100, 130, 30))
    quotes = quotes.drop(index=[10, 11])  # two days without quotes
    labels = RegimeAnalyzer(trend_lookback_bars=5).labels(PriceBook(quotes))
    assert len(labels) == 28
    expected_ends = quotes["occurred_at"].dt.floor("D") + DAY
    assert list(labels["occurred_at"]) == list(expected_ends)
    assert str(labels["occurred_at"].dtype) == "datetime64[ns, UTC]"
    assert list(labels.columns) == ["occurred_at", "symbol", "trend", "volatility", "risk"]


def test_bar_close_is_the_last_mid_of_the_bar():
    # Intraday: the close of each day is its last quote; an early spike must not matter.
    times = [START + pd.Timedelta(hours=h) + DAY * d for d in range(12) for h in (1, 23)]
    prices = [200.0 if h == 0 else 100.0 + d for d in range(12) for h in (0, 1)]
    quotes = pd.DataFrame({"occurred_at": times, "symbol": "A", "last": prices})
    analyzer = RegimeAnalyzer(trend_lookback_bars=3)
    ends, closes = analyzer.bars(PriceBook(quotes), "A")
    assert list(closes) == [100.0 + d for d in range(12)]
    assert list(pd.to_datetime(ends, utc=True)) == list(START + DAY * np.arange(1, 13))


def test_intraday_bars():
    times = START + pd.Timedelta(minutes=30) * np.arange(48)
    quotes = pd.DataFrame({"occurred_at": times, "symbol": "A", "last": 100 + np.arange(48.0)})
    labels = RegimeAnalyzer(bar="4h", trend_lookback_bars=2).labels(PriceBook(quotes))
    assert list(labels["occurred_at"]) == list(START + pd.Timedelta("4h") * np.arange(1, 7))
    assert list(labels["trend"]) == ["unknown", "unknown", "up", "up", "up", "up"]


# ---------------------------------------------------------------- trend


def test_steady_uptrend_downtrend_and_flat():
    n = 60
    up = 100 * np.exp(0.01 * np.arange(n))
    down = 100 * np.exp(-0.01 * np.arange(n))
    flat = np.full(n, 100.0)
    zigzag = 100 + (np.arange(n) % 2)  # noisy, but going nowhere
    labels = RegimeAnalyzer(trend_lookback_bars=10).labels(
        book(daily_quotes("UP", up), daily_quotes("DOWN", down), daily_quotes("FLAT", flat), daily_quotes("ZIG", zigzag))
    )
    for symbol, expected in (("UP", "up"), ("DOWN", "down"), ("FLAT", "sideways"), ("ZIG", "sideways")):
        trend = of(labels, symbol)["trend"]
        assert list(trend[:10]) == ["unknown"] * 10, symbol  # fewer than L returns yet
        assert set(trend[10:]) == {expected}, symbol


def test_trend_threshold_is_volatility_scaled():
    # The same drift is a trend for a quiet instrument and noise for a wild one.
    rng = np.random.default_rng(7)
    n, lookback = 200, 20
    quiet = 100 * np.exp(np.cumsum(0.002 + 0.001 * rng.standard_normal(n)))
    wild = 100 * np.exp(np.cumsum(0.002 + 0.05 * rng.standard_normal(n)))
    labels = RegimeAnalyzer(trend_lookback_bars=lookback, trend_threshold=1.0).labels(
        book(daily_quotes("QUIET", quiet), daily_quotes("WILD", wild))
    )
    quiet_trend = of(labels, "QUIET")["trend"][lookback:]
    wild_trend = of(labels, "WILD")["trend"][lookback:]
    assert (quiet_trend == "up").mean() > 0.95
    assert (wild_trend == "sideways").mean() > 0.5


def test_trend_matches_the_formula():
    rng = np.random.default_rng(3)
    closes = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(80)))
    lookback, theta = 7, 0.8
    labels = RegimeAnalyzer(trend_lookback_bars=lookback, trend_threshold=theta).labels(PriceBook(daily_quotes("A", closes)))
    log_returns = np.diff(np.log(closes))
    for k in range(lookback, len(closes)):
        r = closes[k] / closes[k - lookback] - 1
        sigma = np.std(log_returns[k - lookback:k], ddof=1)
        bound = theta * sigma * math.sqrt(lookback)
        expected = "up" if r > bound else ("down" if r < -bound else "sideways")
        assert labels["trend"][k] == expected, k


# ----------------------------------------------------------- volatility


def test_calm_then_wild_is_low_then_high_volatility():
    # Wild, calm, wild. The percentile is trailing, so "low" needs louder history before it: the
    # calm stretch is low against the first wild one, and the second wild stretch is high against it.
    rng = np.random.default_rng(11)
    sigmas = np.concatenate([np.full(40, 0.05), np.full(40, 0.002), np.full(40, 0.05)])
    closes = 100 * np.exp(np.cumsum(sigmas * rng.standard_normal(len(sigmas))))
    lookback, history = 5, 30
    labels = RegimeAnalyzer(volatility_lookback_bars=lookback, volatility_history_bars=history).labels(PriceBook(daily_quotes("A", closes)))
    volatility = labels["volatility"]
    # v needs `lookback` returns, then `lookback` values of v before it is ranked.
    assert list(volatility[:2 * lookback - 1]) == ["unknown"] * (2 * lookback - 1)
    assert volatility[2 * lookback - 1] != "unknown"
    # Bars 45.. have only calm returns in their window: quieter than every wild value in the history.
    assert set(volatility[40 + lookback:40 + lookback + 7]) == {"low"}
    # Bars 81.. have wild returns again: louder than the all-calm history.
    assert set(volatility[81:81 + lookback + 3]) == {"high"}


def test_volatility_percentile_matches_the_formula():
    rng = np.random.default_rng(5)
    closes = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(120) * np.linspace(0.5, 2, 120)))
    lookback, history, low, high = 4, 15, 0.3, 0.7
    labels = RegimeAnalyzer(volatility_lookback_bars=lookback, volatility_history_bars=history,
                            low_volatility_percentile=low, high_volatility_percentile=high).labels(PriceBook(daily_quotes("A", closes)))
    log_returns = np.diff(np.log(closes))
    v = {k: np.std(log_returns[k - lookback:k], ddof=1) for k in range(lookback, len(closes))}
    for k in range(lookback, len(closes)):
        window = [v[j] for j in range(max(lookback, k - history + 1), k + 1)]
        if len(window) < lookback:
            assert labels["volatility"][k] == "unknown"
            continue
        rank = sum(w < v[k] for w in window) + (sum(w == v[k] for w in window) + 1) / 2
        p = rank / len(window)
        expected = "low" if p < low else ("high" if p > high else "normal")
        assert labels["volatility"][k] == expected, k


# ----------------------------------------------------------------- risk


def test_rising_benchmark_is_risk_on_for_every_instrument():
    n = 30
    rising = 100 * np.exp(0.01 * np.arange(n))
    falling = 100 * np.exp(-0.01 * np.arange(n))
    other = np.full(n, 50.0)
    labels = RegimeAnalyzer(benchmark_symbol="IDX", risk_lookback_bars=5).labels(
        book(daily_quotes("IDX", rising), daily_quotes("X", other))
    )
    for symbol in ("IDX", "X"):
        risk = of(labels, symbol)["risk"]
        assert list(risk[:5]) == ["unknown"] * 5
        assert set(risk[5:]) == {"risk_on"}
    labels = RegimeAnalyzer(benchmark_symbol="IDX", risk_lookback_bars=5).labels(
        book(daily_quotes("IDX", falling), daily_quotes("X", other))
    )
    assert set(of(labels, "X")["risk"][5:]) == {"risk_off"}


def test_risk_uses_the_latest_benchmark_label_known_at_the_bar_end():
    # Benchmark quotes only every other day: an instrument's bar takes the last benchmark bar ending
    # at or before its own end.
    benchmark = daily_quotes("IDX", [100, 101, 102, 90, 80, 81, 82, 83, 84, 85]).iloc[::2]  # days 0, 2, 4, 6, 8
    labels = RegimeAnalyzer(benchmark_symbol="IDX", risk_lookback_bars=1).labels(book(benchmark, daily_quotes("X", np.full(10, 5.0))))
    risk = list(of(labels, "X")["risk"])
    # benchmark bars: day0 100 (unknown), day2 102 on, day4 80 off, day6 82 on, day8 84 on
    assert risk == ["unknown", "unknown", "risk_on", "risk_on", "risk_off", "risk_off", "risk_on", "risk_on", "risk_on", "risk_on"]


def test_risk_is_unknown_without_a_usable_benchmark():
    quotes = daily_quotes("X", np.linspace(1, 2, 30))
    labels = RegimeAnalyzer().labels(PriceBook(quotes))
    assert set(labels["risk"]) == {"unknown"}
    assert "no benchmark_symbol" in labels.attrs["notes"][0]
    labels = RegimeAnalyzer(benchmark_symbol="SPX").labels(PriceBook(quotes))
    assert set(labels["risk"]) == {"unknown"}
    assert "'SPX'" in labels.attrs["notes"][0]


# -------------------------------------------------------- no look-ahead


@st.composite
def quote_paths(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    frames = []
    for symbol in ("A", "B", "IDX"):
        n = draw(st.integers(1, 300))
        # Irregular times over ~60 days, with gaps: some days have no quote at all.
        times = START + pd.to_timedelta(np.sort(rng.integers(0, 60 * 86_400, n)), unit="s")
        closes = 100 * np.exp(np.cumsum(rng.choice([0.0, 0.01, -0.01, 0.05], n) * rng.standard_normal(n)))
        frames.append(pd.DataFrame({"occurred_at": times, "symbol": symbol, "last": closes}))
    quotes = pd.concat(frames, ignore_index=True)
    cut = START + pd.Timedelta(seconds=draw(st.integers(0, 61 * 86_400)))
    if draw(st.booleans()):
        cut = cut.floor("D")  # exactly at a bar end
    return quotes, cut


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(quote_paths(), st.sampled_from(["1D", "6h"]))
def test_no_look_ahead_labels_of_truncated_prices_equal_the_full_labels(path, bar):
    quotes, cut = path
    analyzer = RegimeAnalyzer(bar=bar, trend_lookback_bars=3, volatility_lookback_bars=3, volatility_history_bars=8,
                              benchmark_symbol="IDX", risk_lookback_bars=2)
    full = analyzer.labels(PriceBook(quotes))
    truncated = analyzer.labels(PriceBook(quotes[quotes["occurred_at"] <= cut]))
    full = full[full["occurred_at"] <= cut].reset_index(drop=True)
    truncated = truncated[truncated["occurred_at"] <= cut].reset_index(drop=True)
    pd.testing.assert_frame_equal(truncated, full)


# ------------------------------------------------------- performance


def trend_book() -> tuple[PriceBook, pd.DataFrame]:
    # UP trends up over days 0-19 then down; the labels flip from up to down at a known bar.
    closes = np.concatenate([100 * np.exp(0.01 * np.arange(20)), 100 * np.exp(0.19 - 0.02 * np.arange(1, 21))])
    prices = PriceBook(daily_quotes("UP", closes))
    labels = RegimeAnalyzer(trend_lookback_bars=3).labels(prices)
    return prices, labels


def test_entry_exactly_at_a_bar_end_uses_that_bars_label_and_just_before_uses_the_previous():
    _, labels = trend_book()
    labels = labels.reset_index(drop=True)
    first_down = labels.index[labels["trend"] == "down"][0]
    assert labels["trend"][first_down - 1] == "sideways"
    bar_end = labels["occurred_at"][first_down]
    trips = pd.DataFrame({
        "symbol": ["UP", "UP"],
        "entry_at": [bar_end, bar_end - pd.Timedelta(nanoseconds=1)],
        "exit_at": [bar_end + pd.Timedelta(hours=1)] * 2,
        "pnl": [10.0, -4.0],
        "quantity": [1.0, 1.0],
        "holding_seconds": [3600.0, 3600.0],
    })
    result = RegimeAnalyzer().performance_by_regime(trips, labels)
    trend = result["trend"].set_index("regime")
    assert trend.loc["down", "trades"] == 1 and trend.loc["down", "pnl"] == 10.0
    assert trend.loc["sideways", "trades"] == 1 and trend.loc["sideways", "pnl"] == -4.0
    assert trend.loc["up", "trades"] == 0


def test_performance_by_regime_reconciles_and_lists_every_label():
    prices, labels = trend_book()
    rng = np.random.default_rng(2)
    n = 500
    entry = START - DAY + pd.to_timedelta(rng.integers(0, 45 * 86_400, n), unit="s")  # some before any label
    trips = pd.DataFrame({
        "symbol": rng.choice(["UP", "NOPE"], n, p=[0.9, 0.1]),
        "entry_at": entry,
        "exit_at": entry + pd.Timedelta(hours=2),
        "pnl": rng.normal(0, 10, n),
        "quantity": 1.0,
        "holding_seconds": rng.uniform(60, 7200, n),
    })
    result = RegimeAnalyzer().performance_by_regime(trips, labels)
    assert set(result) == {"trend", "volatility", "risk"}
    for dimension, frame in result.items():
        assert list(frame.columns) == ["regime", "trades", "pnl", "average_pnl", "win_rate", "profit_factor", "average_holding_seconds"]
        assert frame["pnl"].sum() == pytest.approx(trips["pnl"].sum(), abs=1e-9)
        assert frame["trades"].sum() == n
        assert "unknown" in set(frame["regime"])  # NOPE has no labels
    assert list(result["trend"]["regime"]) == ["up", "sideways", "down", "unknown"]
    assert list(result["volatility"]["regime"]) == ["low", "normal", "high", "unknown"]
    assert list(result["risk"]["regime"]) == ["risk_on", "risk_off", "unknown"]
    # risk_on / risk_off were never labelled (no benchmark): zero trades, NaN averages.
    risk = result["risk"].set_index("regime")
    assert risk.loc["risk_on", "trades"] == 0 and risk.loc["risk_on", "pnl"] == 0 and math.isnan(risk.loc["risk_on", "average_pnl"])
    # Spot-check one row against a direct computation.
    up = result["trend"].set_index("regime").loc["up"]
    assigned = pd.merge_asof(
        trips.astype({"symbol": object, "entry_at": "datetime64[ns, UTC]"}).sort_values("entry_at"),
        labels[["occurred_at", "symbol", "trend"]].sort_values("occurred_at").astype({"symbol": object}),
        left_on="entry_at", right_on="occurred_at", by="symbol",
    ).fillna({"trend": "unknown"})
    mine = assigned[assigned["trend"] == "up"]
    assert up["trades"] == len(mine)
    assert up["pnl"] == pytest.approx(mine["pnl"].sum())
    assert up["win_rate"] == pytest.approx((mine["pnl"] > 0).mean())
    assert up["profit_factor"] == pytest.approx(mine["pnl"][mine["pnl"] > 0].sum() / -mine["pnl"][mine["pnl"] < 0].sum())
    assert up["average_holding_seconds"] == pytest.approx(mine["holding_seconds"].mean())


def test_unknown_is_listed_only_when_present_and_profit_factor_is_nan_without_losses():
    _, labels = trend_book()
    late = labels["occurred_at"].iloc[-1] + pd.Timedelta(hours=1)
    trips = pd.DataFrame({"symbol": ["UP", "UP"], "entry_at": [late, late], "exit_at": [late + DAY, late + DAY], "pnl": [1.0, 2.0]})
    trend = RegimeAnalyzer().performance_by_regime(trips, labels)["trend"]
    assert list(trend["regime"]) == ["up", "sideways", "down"]
    down = trend.set_index("regime").loc["down"]
    assert down["trades"] == 2 and down["win_rate"] == 1.0 and math.isnan(down["profit_factor"])
    assert down["average_holding_seconds"] == 86_400.0  # from exit_at - entry_at


def test_empty_inputs_give_empty_results():
    analyzer = RegimeAnalyzer()
    labels = analyzer.labels(PriceBook(pd.DataFrame({"occurred_at": [], "symbol": [], "last": []})))
    assert labels.empty and list(labels.columns) == ["occurred_at", "symbol", "trend", "volatility", "risk"]
    result = analyzer.performance_by_regime(pd.DataFrame(), labels)
    assert list(result["trend"]["regime"]) == ["up", "sideways", "down"]
    assert (result["trend"]["trades"] == 0).all() and result["trend"]["pnl"].sum() == 0
    # Trips but no labels: all unknown.
    trips = pd.DataFrame({"symbol": ["A"], "entry_at": [START], "pnl": [3.0]})
    trend = analyzer.performance_by_regime(trips, labels)["trend"].set_index("regime")
    assert trend.loc["unknown", "trades"] == 1 and trend.loc["unknown", "pnl"] == 3.0


def test_returns_by_regime_uses_the_label_at_the_period_start():
    _, labels = trend_book()
    ends = labels["occurred_at"].to_numpy()
    returns = pd.Series(np.arange(len(ends), dtype=float), index=pd.DatetimeIndex(ends))
    result = RegimeAnalyzer().returns_by_regime(returns, labels, "UP", periods_per_year=365)
    trend = result["trend"].set_index("regime")
    # Return i (ending at bar i's end) takes bar i-1's label.
    expected = pd.Series(np.arange(1, len(ends), dtype=float)).groupby(labels["trend"][:-1].to_numpy()).agg(["count", "mean", "std"])
    for regime in expected.index:
        count = expected.loc[regime, "count"] + (1 if regime == "unknown" else 0)
        assert trend.loc[regime, "periods"] == count
    assert trend.loc["down", "mean_return"] == pytest.approx(expected.loc["down", "mean"])
    assert trend.loc["down", "annualised_volatility"] == pytest.approx(expected.loc["down", "std"] * math.sqrt(365))
    assert trend.loc["down", "annualised_mean_return"] == pytest.approx(expected.loc["down", "mean"] * 365)
    with pytest.raises(ValueError, match="periods_per_year"):
        RegimeAnalyzer().returns_by_regime(returns, labels, "UP", periods_per_year=0)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"bar": "not-a-bar"}, "bar"),
        ({"trend_lookback_bars": 1}, "trend_lookback_bars"),
        ({"trend_lookback_bars": 2.5}, "trend_lookback_bars"),
        ({"trend_threshold": -1}, "trend_threshold"),
        ({"volatility_lookback_bars": 0}, "volatility_lookback_bars"),
        ({"volatility_history_bars": 1}, "volatility_history_bars"),
        ({"low_volatility_percentile": 1.5}, "low_volatility_percentile"),
        ({"low_volatility_percentile": 0.8, "high_volatility_percentile": 0.2}, "low_volatility_percentile"),
        ({"benchmark_symbol": 3}, "benchmark_symbol"),
        ({"risk_lookback_bars": 0}, "risk_lookback_bars"),
    ],
)
def test_invalid_configuration_names_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        RegimeAnalyzer(**kwargs)


def test_missing_trip_columns_are_named():
    _, labels = trend_book()
    with pytest.raises(ValueError, match="entry_at"):
        RegimeAnalyzer().performance_by_regime(pd.DataFrame({"symbol": ["UP"], "pnl": [1.0]}), labels)
