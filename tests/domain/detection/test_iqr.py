"""IqrDetector: Tukey fences on known quartiles, signed scores, zero IQR."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from tests.domain.detection.builders import detect
from tradewatch.domain.detection.iqr import IqrConfig, IqrDetector
from tradewatch.domain.detection.streams import row_median, row_quantile

# 1..10: Q1 at position 0.25 * 9 = 2.25 -> 3.25; Q3 at 6.75 -> 7.75; IQR 4.5.
# k = 3: fences 3.25 - 13.5 = -10.25 and 7.75 + 13.5 = 21.25.
WINDOW = [3, 7, 1, 10, 5, 2, 8, 4, 9, 6]


def iqr(**overrides) -> IqrDetector:
    settings = dict(name="latency_iqr", metric="fill_latency_seconds", window=10, warmup=10) | overrides
    return IqrDetector(IqrConfig(**settings))


def test_upper_fence_by_hand():
    [anomaly] = detect(iqr(), WINDOW + [22])
    assert anomaly.score == pytest.approx((22 - 7.75) / 4.5)  # 3.1667
    assert (anomaly.observed, anomaly.baseline, anomaly.anomaly_type) == (22.0, 5.5, "spike")
    assert anomaly.context == {"window": 10, "window_observations": 10, "threshold": 3.0, "q1": 3.25, "q3": 7.75,
                               "iqr": 4.5, "lower_fence": -10.25, "upper_fence": 21.25}
    assert detect(iqr(), WINDOW + [21]) == []  # inside the fence (score 2.94)


def test_lower_fence_gives_a_negative_score():
    [anomaly] = detect(iqr(), WINDOW + [-11])
    assert anomaly.score == pytest.approx(-(3.25 - -11) / 4.5)
    assert detect(iqr(), WINDOW + [-10]) == []
    assert detect(iqr(direction="high"), WINDOW + [-11]) == []
    assert detect(iqr(direction="low"), WINDOW + [22]) == []
    assert len(detect(iqr(direction="low"), WINDOW + [-11])) == 1


def test_k_is_the_threshold_and_critical_escalates():
    # k = 1.5: upper fence 14.5
    assert detect(iqr(threshold=1.5), WINDOW + [14]) == []
    [anomaly] = detect(iqr(threshold=1.5, critical_threshold=2.0), WINDOW + [15])
    assert anomaly.severity == "warning" and anomaly.context["upper_fence"] == 14.5
    [anomaly] = detect(iqr(threshold=1.5, critical_threshold=2.0), WINDOW + [16.75])
    assert anomaly.score == pytest.approx(2.0) and anomaly.severity == "critical"


def test_zero_iqr_gives_no_score():
    # more than half the window on one value: Q1 = Q3 = 2
    assert detect(iqr(), [2, 2, 2, 2, 2, 2, 2, 2, 1, 9] + [1000]) == []


def test_quartiles_are_numpys_linear_quantiles():
    rng = np.random.default_rng(7)
    for n in (5, 6, 7, 10, 33, 200):
        windows = rng.standard_t(3, size=(40, n)) * 100
        ordered = np.sort(windows, axis=1)
        lengths = np.full(len(windows), n)
        for q in (0.25, 0.5, 0.75):
            assert np.array_equal(row_quantile(ordered, lengths, q), np.quantile(windows, q, axis=1))
        assert np.array_equal(row_median(ordered, lengths), np.median(windows, axis=1))
        # rows padded with NaN beyond their length: the quantiles of their first `length` values
        lengths = rng.integers(2, n + 1, size=len(windows))
        padded = np.where(np.arange(n)[None, :] < lengths[:, None], windows, np.nan)
        ordered = np.sort(padded, axis=1)
        for i, length in enumerate(lengths):
            assert row_quantile(ordered, lengths, 0.25)[i] == np.quantile(windows[i, :length], 0.25)
            assert row_median(ordered, lengths)[i] == np.median(windows[i, :length])


def test_streams_are_isolated_and_state_is_the_trailing_window():
    state: dict = {}
    values = [v for pair in zip(WINDOW + [22], WINDOW + [6]) for v in pair]
    anomalies = detect(iqr(), values, state, symbols=["AAPL", "MSFT"] * 11)
    assert [a.entity for a in anomalies] == ["AAPL"]
    assert state["streams"]["AAPL"]["values"].tolist() == WINDOW[1:] + [22]
    assert state["streams"]["MSFT"]["count"] == 11


def test_config_defaults_and_errors():
    config = IqrConfig(name="q", metric="spread_bps")
    assert (config.kind, config.threshold, config.direction) == ("iqr", 3.0, "both")
    with pytest.raises(ValidationError) as error:
        IqrConfig(name="q", metric="spread_bps", window=10, warmup=1)
    assert [e["loc"] for e in error.value.errors()] == [("warmup",)]


def test_min_scale_floors_the_interquartile_range():
    detector = IqrDetector(IqrConfig(name="iqr", metric="spread_bps", window=8, warmup=8, threshold=3.0, min_scale=1.0))
    # quartiles 2 and 2 (IQR 0, floored to 1): 6 is (6 - 2) / 1 = 4 IQRs above Q3
    [anomaly] = detect(detector, [2.0] * 8 + [6.0])
    assert anomaly.score == pytest.approx(4.0)
    assert detect(detector, [2.0] * 8 + [4.5]) == []
