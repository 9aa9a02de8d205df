"""SignalQualityAnalyzer: forward returns, hit rates, information coefficient, decay, persistence."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr

from tradewatch.domain.analytics.prices import PriceBook
from tradewatch.domain.analytics.signal_quality import SignalQualityAnalyzer, spearman, t_statistic

START = pd.Timestamp("2024-03-01 09:00", tz="UTC")
MINUTE = pd.Timedelta("60s")


def quotes(symbol: str, prices, step=MINUTE) -> pd.DataFrame:
    times = START + step * np.arange(len(prices))
    return pd.DataFrame({"occurred_at": times, "symbol": symbol, "bid": np.asarray(prices) - 0.01, "ask": np.asarray(prices) + 0.01})


def signals_frame(symbols, times, directions, confidence=None, horizon_seconds=None) -> pd.DataFrame:
    frame = pd.DataFrame({
        "signal_id": [f"s{i}" for i in range(len(times))],
        "occurred_at": times,
        "symbol": symbols,
        "direction": directions,
    })
    if confidence is not None:
        frame["confidence"] = confidence
    if horizon_seconds is not None:
        frame["horizon_seconds"] = horizon_seconds
    return frame


def two_level_market(n=200, seed=0):
    """Mid jumps between 100 and 110 at random: every 60 s forward return is +10%, -9.09% or 0."""
    rng = np.random.default_rng(seed)
    levels = np.where(rng.random(n) < 0.5, 100.0, 110.0)
    return PriceBook(quotes("A", levels)), levels


# ------------------------------------------------------------ forward returns


def test_forward_return_is_nan_beyond_the_last_quote_and_before_the_first():
    prices = PriceBook(quotes("A", [100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110]))  # 0..600 s
    analyzer = SignalQualityAnalyzer(horizons_seconds=(60, 100, 300))
    times = [START + pd.Timedelta(seconds=s) for s in (0, 500, 540, 550, -30)]
    forward = analyzer.forward_returns(signals_frame(["A"] * 5, times, ["long"] * 5), prices)
    r60 = forward["forward_return_60_seconds"].to_numpy()
    r100 = forward["forward_return_100_seconds"].to_numpy()
    r300 = forward["forward_return_300_seconds"].to_numpy()
    assert r60[0] == pytest.approx(101 / 100 - 1)
    assert r60[1] == pytest.approx(109 / 108 - 1)  # t + h = 560 s <= last quote (600 s)
    assert r60[2] == pytest.approx(110 / 109 - 1)  # exactly at the last quote: known
    assert math.isnan(r60[3])  # 610 s: after the last quote, not known yet
    assert r100[1] == pytest.approx(110 / 108 - 1)  # as of 600 s
    assert math.isnan(r300[1])
    assert np.isnan(forward.iloc[4][["forward_return_60_seconds", "forward_return_100_seconds"]].to_numpy(dtype=float)).all()  # no price at t
    assert math.isnan(analyzer.forward_returns(signals_frame(["B"], [START], ["long"]), prices)["forward_return_60_seconds"][0])


def test_forward_return_uses_the_mid_at_or_before_each_time():
    prices = PriceBook(quotes("A", [100, 120, 90], step=pd.Timedelta("100s")))  # 0, 100, 200 s
    analyzer = SignalQualityAnalyzer(horizons_seconds=(60,))
    forward = analyzer.forward_returns(signals_frame(["A", "A"], [START + pd.Timedelta("50s"), START + pd.Timedelta("100s")], ["long", "short"]), prices)
    # 50 s -> 110 s: mid as of 50 s = 100, as of 110 s = 120.  100 s -> 160 s: 120 -> 120.
    assert list(forward["forward_return_60_seconds"]) == pytest.approx([0.2, 0.0])
    assert list(forward["score"]) == [1.0, -1.0]


# ----------------------------------------------------------------- hit rates


def test_perfectly_informative_and_anti_signals():
    prices, levels = two_level_market()
    future = levels[1:] - levels[:-1]
    informative = future != 0
    times = (START + MINUTE * np.arange(len(levels) - 1))[informative]
    good = np.where(future[informative] > 0, "long", "short")
    bad = np.where(future[informative] > 0, "short", "long")
    analyzer = SignalQualityAnalyzer(horizons_seconds=(60, 120))
    for directions, expected_ic, expected_hit in ((good, 1.0, 1.0), (bad, -1.0, 0.0)):
        frame = signals_frame(["A"] * len(times), times, directions)
        ic = analyzer.information_coefficient(frame, prices).set_index("horizon_seconds")
        assert ic.loc[60.0, "information_coefficient"] == pytest.approx(expected_ic, abs=1e-12)
        assert ic.loc[60.0, "signals"] == len(times)
        assert math.isnan(ic.loc[60.0, "t_statistic"])  # |IC| = 1: zero denominator
        hits = analyzer.hit_rate_by_direction(frame, prices).set_index("direction")
        assert hits.loc["all", "hit_rate"] == expected_hit
        assert hits.loc["all", "signals"] == len(times)
        assert hits.loc["long", "signals"] + hits.loc["short", "signals"] == len(times)


def test_confidence_scaled_to_the_future_return_gives_ic_one():
    rng = np.random.default_rng(4)
    levels = 100 * np.exp(np.cumsum(0.001 * rng.standard_normal(300)))
    prices = PriceBook(quotes("A", levels))
    future = levels[5:] / levels[:-5] - 1
    times = START + MINUTE * np.arange(len(future))
    frame = signals_frame(["A"] * len(future), times, np.where(future > 0, "long", "short"), confidence=np.abs(future) / np.abs(future).max())
    ic = SignalQualityAnalyzer(horizons_seconds=(60, 300)).information_coefficient(frame, prices).set_index("horizon_seconds")
    assert ic.loc[300.0, "information_coefficient"] == pytest.approx(1.0)
    assert ic.loc[60.0, "information_coefficient"] < 1.0


def test_hit_rate_uses_each_signals_own_horizon_then_the_given_then_the_first():
    prices = PriceBook(quotes("A", [100, 101, 99, 98, 97, 96]))  # 0..300 s
    t0 = [START] * 3
    # At 60 s the price is up (long wins), at 120 s it is down (long loses).
    frame = signals_frame(["A"] * 3, t0, ["long"] * 3, horizon_seconds=[60.0, 120.0, np.nan])
    analyzer = SignalQualityAnalyzer(horizons_seconds=(120, 60))  # sorted: the first is 60
    assert analyzer.horizons_seconds == (60.0, 120.0)
    hits = analyzer.hit_rate_by_direction(frame, prices).set_index("direction")
    assert hits.loc["long", "hits"] == 2 and hits.loc["long", "signals"] == 3  # the NaN one uses 60 s
    hits = analyzer.hit_rate_by_direction(frame, prices, horizon_seconds=120).set_index("direction")
    assert hits.loc["long", "hits"] == 1
    assert hits.loc["short", "signals"] == 0 and math.isnan(hits.loc["short", "hit_rate"])


def test_flat_signals_are_not_counted_and_unknown_outcomes_are_reported():
    prices = PriceBook(quotes("A", [100, 101, 102]))
    frame = signals_frame(["A"] * 4, [START, START, START + MINUTE * 2, START], ["long", "flat", "short", "short"])
    hits = SignalQualityAnalyzer(horizons_seconds=(60,)).hit_rate_by_direction(frame, prices)
    assert list(hits.columns) == ["direction", "signals", "hits", "hit_rate", "without_outcome"]
    rows = hits.set_index("direction")
    assert rows.loc["all", "signals"] == 2  # flat left out; the short at 120 s has no outcome yet
    assert rows.loc["all", "without_outcome"] == 1
    assert rows.loc["long", "hit_rate"] == 1.0 and rows.loc["short", "hit_rate"] == 0.0


# ------------------------------------------------------- information coefficient


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(3, 400))
def test_ic_matches_scipy_spearman_on_random_data(seed, n):
    rng = np.random.default_rng(seed)
    symbols = np.array(["A", "B", "C"])
    frames = [quotes(s, 100 * np.exp(np.cumsum(0.002 * rng.standard_normal(120)))) for s in symbols]
    prices = PriceBook(pd.concat(frames, ignore_index=True))
    times = START + pd.to_timedelta(rng.integers(-300, 120 * 60, n), unit="s")
    directions = rng.choice(["long", "short", "flat"], n)
    confidence = rng.choice([0.25, 0.5, 1.0], n)  # ties in the score on purpose
    frame = signals_frame(rng.choice(symbols, n), times, directions, confidence=confidence)
    analyzer = SignalQualityAnalyzer(horizons_seconds=(60, 600, 3600))
    ic = analyzer.information_coefficient(frame, prices)
    forward = analyzer.forward_returns(frame, prices)
    for row in ic.itertuples():
        r = forward[f"forward_return_{row.horizon_seconds:g}_seconds"].to_numpy()
        known = np.isfinite(r)
        assert row.signals == known.sum()
        if known.sum() < 2 or len(np.unique(forward["score"][known])) < 2 or len(np.unique(r[known])) < 2:
            assert math.isnan(row.information_coefficient)
            continue
        expected = spearmanr(forward["score"][known], r[known]).statistic
        assert row.information_coefficient == pytest.approx(expected, abs=1e-12)
        if known.sum() >= 3 and abs(expected) < 1 - 1e-12:
            assert row.t_statistic == pytest.approx(expected * math.sqrt((known.sum() - 2) / (1 - expected**2)), rel=1e-9)


def test_spearman_and_t_statistic_edges():
    assert math.isnan(spearman([1.0], [2.0]))
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))  # constant side: zero denominator
    assert spearman([1, 2, np.nan, 4], [10, 20, 5, 40]) == pytest.approx(1.0)  # NaN pair dropped
    assert math.isnan(t_statistic(0.5, 2))
    assert t_statistic(0.5, 11) == pytest.approx(0.5 * math.sqrt(9 / 0.75))


# ------------------------------------------------------------------- decay


def test_half_life_is_recovered_from_an_exponential_ic():
    horizons = np.array([60, 300, 900, 3600, 14400, 86400], dtype=float)
    ic = pd.DataFrame({"horizon_seconds": horizons, "information_coefficient": 0.3 * np.exp(-horizons * math.log(2) / 3600)})
    decay = SignalQualityAnalyzer.ic_decay(ic)
    assert decay["half_life_seconds"] == pytest.approx(3600.0, rel=1e-9)
    assert decay["decay_rate_per_second"] == pytest.approx(math.log(2) / 3600, rel=1e-9)
    assert decay["horizons_used"] == 6 and decay["note"] is None
    assert decay["horizons_seconds"] == list(horizons)
    # A negative signal decays the same way.
    negative = ic.assign(information_coefficient=-ic["information_coefficient"])
    assert SignalQualityAnalyzer.ic_decay(negative)["half_life_seconds"] == pytest.approx(3600.0, rel=1e-9)


def test_decay_ignores_horizons_of_the_other_sign_and_reports_why_it_cannot_fit():
    horizons = np.array([60.0, 600.0, 3600.0, 7200.0])
    ic = 0.2 * np.exp(-horizons * math.log(2) / 600)
    ic[-1] = -0.01  # sign flip at the longest horizon: left out of the fit
    decay = SignalQualityAnalyzer.ic_decay(pd.DataFrame({"horizon_seconds": horizons, "information_coefficient": ic}))
    assert decay["horizons_used"] == 3 and decay["half_life_seconds"] == pytest.approx(600.0)

    growing = SignalQualityAnalyzer.ic_decay(pd.DataFrame({"horizon_seconds": [60.0, 600.0], "information_coefficient": [0.1, 0.2]}))
    assert math.isnan(growing["half_life_seconds"]) and "does not decay" in growing["note"]
    single = SignalQualityAnalyzer.ic_decay(pd.DataFrame({"horizon_seconds": [60.0, 600.0], "information_coefficient": [0.1, -0.2]}))
    assert math.isnan(single["half_life_seconds"]) and "fewer than 2" in single["note"]
    empty = SignalQualityAnalyzer.ic_decay(pd.DataFrame({"horizon_seconds": [60.0], "information_coefficient": [np.nan]}))
    assert math.isnan(empty["half_life_seconds"]) and empty["note"]
    with pytest.raises(ValueError, match="information_coefficient"):
        SignalQualityAnalyzer.ic_decay(pd.DataFrame({"horizon_seconds": [60.0]}))


# ----------------------------------------------------- rank autocorrelation


def test_rank_autocorrelation_hand_case():
    # Per instrument, in time order: A scores 0.1, 0.2, 0.3, 0.4; B scores -0.5, 0.5, -1.
    # Pairs (current, previous): A (0.2, 0.1) (0.3, 0.2) (0.4, 0.3); B (0.5, -0.5) (-1, 0.5).
    # Rows are given out of time order and interleaved: the analyzer must sort per instrument.
    t = [START + MINUTE * k for k in range(4)]
    frame = signals_frame(
        ["A", "B", "A", "B", "A", "B", "A"],
        [t[3], t[2], t[1], t[0], t[0], t[1], t[2]],
        ["long", "short", "long", "short", "long", "long", "long"],
        confidence=[0.4, 1.0, 0.2, 0.5, 0.1, 0.5, 0.3],
    )
    current = [0.2, 0.3, 0.4, 0.5, -1.0]
    previous = [0.1, 0.2, 0.3, -0.5, 0.5]
    # Ranks: current 2,3,4,5,1; previous 2,3,4,1,5 -> sum d^2 = 0+0+0+16+16 = 32,
    # rho = 1 - 6*32 / (5*24) = -0.6.
    analyzer = SignalQualityAnalyzer()
    assert analyzer.rank_autocorrelation(frame) == pytest.approx(-0.6)
    assert spearmanr(current, previous).statistic == pytest.approx(-0.6)
    # lag 2: A (0.3, 0.1) (0.4, 0.2); B (-1, -0.5): 3 pairs, ranks current 2,3,1 previous 2,3,1 -> 1.
    assert analyzer.rank_autocorrelation(frame, lag=2) == pytest.approx(1.0)
    assert math.isnan(analyzer.rank_autocorrelation(frame, lag=3))  # one pair (A) only
    with pytest.raises(ValueError, match="lag"):
        analyzer.rank_autocorrelation(frame, lag=0)


# -------------------------------------------------------------------- report


def test_report_has_every_section():
    prices, levels = two_level_market()
    times = START + MINUTE * np.arange(50)
    frame = signals_frame(["A"] * 50, times, np.where(np.arange(50) % 3 == 0, "flat", "long"))
    frame.loc[49, "direction"] = "sideways"  # a bad row: dropped and reported
    report = SignalQualityAnalyzer().report(frame, prices)
    assert set(report) == {"definitions", "hit_rate_by_direction", "information_coefficient", "ic_decay", "rank_autocorrelation", "signals"}
    assert report["signals"]["received"] == 50 and report["signals"]["used"] == 49 and report["signals"]["dropped"] == 1
    assert report["signals"]["problems"][0]["column"] == "direction"
    assert report["signals"]["long"] + report["signals"]["flat"] == 49
    assert list(report["information_coefficient"]["horizon_seconds"]) == [60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0]
    assert "information_coefficient" in report["definitions"]


def test_empty_signals_give_empty_results():
    prices, _ = two_level_market()
    analyzer = SignalQualityAnalyzer(horizons_seconds=(60,))
    report = analyzer.report(pd.DataFrame(), prices)
    assert (report["hit_rate_by_direction"]["signals"] == 0).all()
    assert math.isnan(report["information_coefficient"]["information_coefficient"][0])
    assert math.isnan(report["rank_autocorrelation"])
    assert math.isnan(report["ic_decay"]["half_life_seconds"])
    assert report["signals"]["received"] == 0


@pytest.mark.parametrize("horizons", [(), (0,), (-60,), (float("nan"),), ("60",), "60", 60])
def test_invalid_horizons_name_the_parameter(horizons):
    with pytest.raises(ValueError, match="horizons_seconds"):
        SignalQualityAnalyzer(horizons_seconds=horizons)


def test_invalid_hit_rate_horizon_names_the_parameter():
    prices, _ = two_level_market()
    with pytest.raises(ValueError, match="horizon_seconds"):
        SignalQualityAnalyzer().hit_rate_by_direction(signals_frame(["A"], [START], ["long"]), prices, horizon_seconds=-1)


def test_forward_returns_agree_with_pricebook_asof():
    rng = np.random.default_rng(9)
    frames = [quotes(s, 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(50))), step=pd.Timedelta(seconds=int(k))) for s, k in (("A", 30), ("B", 90))]
    prices = PriceBook(pd.concat(frames, ignore_index=True))
    n = 300
    times = START + pd.to_timedelta(rng.integers(-200, 5000, n), unit="s")
    symbols = rng.choice(["A", "B", "C"], n)
    frame = signals_frame(symbols, times, rng.choice(["long", "short"], n))
    forward = SignalQualityAnalyzer(horizons_seconds=(45,)).forward_returns(frame, prices)
    start = prices.asof(symbols, times)
    end = prices.asof(symbols, times + pd.Timedelta(seconds=45))
    last = {"A": START + pd.Timedelta(seconds=30 * 49), "B": START + pd.Timedelta(seconds=90 * 49)}
    expected = np.where([s in last and t + pd.Timedelta(seconds=45) <= last[s] for s, t in zip(symbols, times)], end / start - 1, np.nan)
    np.testing.assert_array_equal(forward["forward_return_45_seconds"].to_numpy(), expected)
    assert list(forward["signal_id"]) == list(frame["signal_id"])  # input order kept


def test_a_horizon_far_beyond_the_data_has_no_outcome_instead_of_overflowing():
    prices = PriceBook(quotes("A", [100, 101, 102]))
    frame = signals_frame(["A", "A"], [START, START], ["long", "long"], horizon_seconds=[1e15, 60.0])
    hits = SignalQualityAnalyzer().hit_rate_by_direction(frame, prices).set_index("direction")
    assert hits.loc["long", "signals"] == 1 and hits.loc["long", "without_outcome"] == 1 and hits.loc["long", "hits"] == 1


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from([-1.0, -0.5, 0.0, 0.25, 1.0, 2.0, 3.5]) | st.floats(-1e6, 1e6), min_size=0, max_size=60))
def test_average_ranks_match_pandas(values):
    from tradewatch.domain.analytics.signal_quality import _average_ranks

    array = np.array(values, dtype=float)
    np.testing.assert_array_equal(_average_ranks(array), pd.Series(array).rank(method="average").to_numpy())
