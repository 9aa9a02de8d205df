"""RobustZScoreDetector: modified z-scores by hand, the MeanAD fallback, contamination."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.domain.detection.builders import detect
from tradewatch.domain.detection.robust_zscore import RobustZScoreConfig, RobustZScoreDetector
from tradewatch.domain.detection.zscore import ZScoreConfig, ZScoreDetector

WINDOW = [10, 12, 11, 13, 9, 10, 12, 11, 13, 9]  # median 11; |deviations| sorted 0 0 1 1 1 1 2 2 2 2: MAD 1


def robust(**overrides) -> RobustZScoreDetector:
    settings = dict(name="slippage_robust", metric="slippage_bps", window=10, warmup=5) | overrides
    return RobustZScoreDetector(RobustZScoreConfig(**settings))


def test_modified_z_score_by_hand():
    [anomaly] = detect(robust(), WINDOW + [30])
    assert anomaly.score == pytest.approx(0.6745 * (30 - 11) / 1)  # 12.8155
    assert (anomaly.observed, anomaly.baseline, anomaly.anomaly_type) == (30.0, 11.0, "spike")
    assert anomaly.context == {"window": 10, "window_observations": 10, "threshold": 3.5, "median": 11.0, "mad": 1.0,
                               "mean_absolute_deviation": pytest.approx(1.2)}


def test_even_window_median_is_the_mean_of_the_middle_values():
    # window [1, 2, 3, 4, 5, 6]: median 3.5, |dev| 2.5 1.5 .5 .5 1.5 2.5 -> MAD 1.5
    [anomaly] = detect(robust(window=6, warmup=6), [1, 2, 3, 4, 5, 6, 20])
    assert anomaly.baseline == 3.5 and anomaly.context["mad"] == 1.5
    assert anomaly.score == pytest.approx(0.6745 * 16.5 / 1.5)


def test_mad_zero_falls_back_to_the_mean_absolute_deviation():
    # window: six 5s, a 7 and a 3 -> median 5, MAD 0, MeanAD = (2 + 2) / 8 = 0.5
    window = [5, 5, 7, 5, 5, 3, 5, 5]
    [anomaly] = detect(robust(window=8, warmup=8), window + [8])
    assert anomaly.context["mad"] == 0.0 and anomaly.context["mean_absolute_deviation"] == 0.5
    assert anomaly.score == pytest.approx((8 - 5) / (1.253314 * 0.5))  # 4.787
    assert detect(robust(window=8, warmup=8, threshold=4.8), window + [8]) == []


def test_a_constant_window_gives_no_score():
    assert detect(robust(), [4.0] * 10 + [4.0, 1e6]) == []


def test_contamination_masks_the_plain_z_score_but_not_the_robust_one():
    # Two earlier spikes of 60 in the window inflate the std: the plain z of the third is only ~2.0.
    values = [10, 12, 11, 13, 60, 9, 10, 12, 11, 60, 13, 60]
    settings = dict(metric="slippage_bps", window=11, warmup=11, threshold=3.5)
    assert detect(ZScoreDetector(ZScoreConfig(name="z", **settings)), values) == []
    [anomaly] = detect(RobustZScoreDetector(RobustZScoreConfig(name="r", **settings)), values)
    assert anomaly.observed == 60 and anomaly.baseline == 12 and anomaly.context["mad"] == 1.0
    assert anomaly.score == pytest.approx(0.6745 * 48)


def test_direction_severity_and_streams():
    low = WINDOW + [-9]
    assert detect(robust(direction="high"), low) == []
    [anomaly] = detect(robust(direction="low", critical_threshold=10), low)
    assert anomaly.score == pytest.approx(-0.6745 * 20) and anomaly.severity == "critical"
    values = [v for pair in zip(WINDOW + [30], WINDOW + [11]) for v in pair]
    assert [a.entity for a in detect(robust(), values, symbols=["AAPL", "MSFT"] * 11)] == ["AAPL"]


def test_config_defaults_and_errors():
    config = RobustZScoreConfig(name="r", metric="fill_latency_seconds")
    assert (config.kind, config.threshold, config.window, config.warmup) == ("robust_zscore", 3.5, 200, 30)
    with pytest.raises(ValidationError) as error:
        RobustZScoreConfig(name="r", metric="fill_latency_seconds", threshold=3, critical_threshold=2)
    assert [e["loc"] for e in error.value.errors()] == [("critical_threshold",)]
    with pytest.raises(ValidationError) as error:
        RobustZScoreConfig(name="r", metric="fill_latency_seconds", windw=10)
    assert [e["loc"] for e in error.value.errors()] == [("windw",)]


def test_min_scale_floors_a_spread_too_small_to_matter():
    # A one-tick spread in bps moves only with the price: MAD 0.001 bps, so a two-tick quote
    # would be thousands of MADs out. With min_scale 1 bps it is (4.0 - 2.0) / 1 = 2: no finding.
    window = [2.0, 2.001, 1.999, 2.0, 2.002, 1.998, 2.0, 2.001, 1.999, 2.0]
    [anomaly] = detect(robust(), window + [4.0])
    assert anomaly.score > 1000
    assert detect(robust(min_scale=1.0), window + [4.0]) == []
    [far] = detect(robust(min_scale=1.0), window + [12.0])
    assert far.score == pytest.approx(10.0)
