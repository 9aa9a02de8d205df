"""ZScoreDetector: hand-computed z-scores, warm-up, direction, severity, streams, config errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from tests.domain.detection.builders import detect
from tradewatch.domain.detection.base import Detector
from tradewatch.domain.detection.zscore import ZScoreConfig, ZScoreDetector

WINDOW = [10, 12, 11, 13, 9, 10, 12, 11, 13, 9]  # mean 11, sum of squares 20, std sqrt(20 / 9)
STD = math.sqrt(20 / 9)


def zscore(**overrides) -> ZScoreDetector:
    settings = dict(name="slippage_z", metric="slippage_bps", window=10, warmup=5, threshold=3.0) | overrides
    return ZScoreDetector(ZScoreConfig(**settings))


def test_spike_scored_against_the_previous_window():
    [anomaly] = detect(zscore(), WINDOW + [30])
    assert anomaly.score == pytest.approx(19 / STD)  # 12.7456
    assert (anomaly.observed, anomaly.baseline) == (30.0, 11.0)
    assert (anomaly.anomaly_type, anomaly.severity, anomaly.metric) == ("spike", "warning", "slippage_bps")
    assert (anomaly.entity_kind, anomaly.entity, anomaly.symbol, anomaly.strategy_id) == ("symbol", "AAPL", "AAPL", "momentum")
    assert anomaly.detected_at_ns == 10_000 and anomaly.event_ids == ("e10",)
    assert anomaly.context == {"window": 10, "window_observations": 10, "threshold": 3.0, "mean": 11.0,
                               "std": pytest.approx(STD)}
    assert anomaly.key == "slippage_z|slippage_bps|symbol=AAPL"


def test_the_window_slides_and_never_includes_the_value_itself():
    # After the spike, 11 is scored against [12, 11, 13, 9, 10, 12, 11, 13, 9, 30] (mean 13, not 11).
    detector, state = zscore(threshold=0.5), {}
    detect(detector, WINDOW + [30], state)
    [anomaly] = detect(detector, [5], state, start=11)
    window = np.array(WINDOW[1:] + [30], dtype=float)
    assert anomaly.baseline == pytest.approx(window.mean())
    assert anomaly.score == pytest.approx((5 - window.mean()) / window.std(ddof=1))
    assert state["streams"]["AAPL"]["values"].tolist() == WINDOW[2:] + [30, 5]
    assert state["streams"]["AAPL"]["count"] == 12


def test_warmup_observations_are_not_scored():
    # warmup 5: the 5th value (index 4) is not scored however far out; the 6th is, against 5 values.
    anomalies = detect(zscore(), [10, 12, 11, 13, 500, 1000])
    assert [a.event_ids for a in anomalies] == [("e5",)]
    window = np.array([10, 12, 11, 13, 500.0])
    assert anomalies[0].score == pytest.approx((1000 - window.mean()) / window.std(ddof=1))
    assert anomalies[0].context["window_observations"] == 5


def test_a_constant_window_gives_no_score():
    # 0.3 ten times: its rounded mean leaves a std of 6e-17, but the window is constant, so no score
    assert np.std([0.3] * 10, ddof=1) > 0
    assert detect(zscore(), [0.3] * 10 + [0.3, 50]) == []
    # once the window varies, the next value is scored again
    assert [a.observed for a in detect(zscore(), [0.3] * 10 + [0.4, 50])] == [50.0]


def test_critical_at_or_above_the_critical_threshold():
    assert detect(zscore(critical_threshold=12.0), WINDOW + [30])[0].severity == "critical"
    assert detect(zscore(critical_threshold=13.0), WINDOW + [30])[0].severity == "warning"
    exactly = 11 + 12.0 * STD  # z = 12 exactly (up to rounding of x)
    assert detect(zscore(critical_threshold=12.0), WINDOW + [exactly])[0].score == pytest.approx(12.0)


def test_direction():
    low = WINDOW + [-8]
    assert detect(zscore(direction="high"), low) == []
    [anomaly] = detect(zscore(direction="low"), low)
    assert anomaly.score == pytest.approx(-19 / STD)
    assert len(detect(zscore(direction="both"), low)) == 1
    assert detect(zscore(direction="low"), WINDOW + [30]) == []


def test_threshold_is_strict():
    x = 11 + 3.0 * STD
    [anomaly] = detect(zscore(threshold=2.999), WINDOW + [x])
    assert detect(zscore(threshold=anomaly.score), WINDOW + [x]) == []


def test_streams_are_isolated():
    aapl = WINDOW + [30]
    msft = [100, 101, 99, 100, 102, 98, 100, 101, 99, 100, 101]
    values = [v for pair in zip(aapl, msft) for v in pair]
    symbols = ["AAPL", "MSFT"] * len(aapl)
    state: dict = {}
    anomalies = detect(zscore(), values, state, symbols=symbols)
    assert [a.entity for a in anomalies] == ["AAPL"]
    assert anomalies[0].score == pytest.approx(19 / STD)
    assert state["streams"]["MSFT"]["values"].tolist() == msft[1:]


def test_other_metrics_and_missing_entities_are_ignored():
    detector = zscore(by="symbol")
    assert detect(detector, WINDOW + [30], metric="spread_bps") == []
    assert detect(detector, WINDOW + [30], symbols=None) == []


def test_by_strategy_id():
    [anomaly] = detect(zscore(by="strategy_id"), WINDOW + [30])
    assert (anomaly.entity_kind, anomaly.entity) == ("strategy_id", "momentum")
    assert anomaly.key == "slippage_z|slippage_bps|strategy_id=momentum"


def test_is_a_detector_and_tick_finds_nothing():
    detector = zscore()
    assert isinstance(detector, Detector) and detector.name == "slippage_z"
    assert detector.tick(123, {}) == []


def test_defaults():
    config = ZScoreConfig(name="z", metric="spread_bps")
    assert (config.kind, config.by, config.window, config.warmup, config.threshold, config.critical_threshold,
            config.direction, config.severity) == ("zscore", "symbol", 200, 30, 4.0, None, "both", "warning")


@pytest.mark.parametrize("bad, field", [
    ({"extra": 1}, "extra"),
    ({"window": 4}, "window"),
    ({"warmup": 11}, "warmup"),
    ({"threshold": 0}, "threshold"),
    ({"threshold": 3.0, "critical_threshold": 3.0}, "critical_threshold"),
    ({"metric": "slippage"}, "metric"),
    ({"by": "venue"}, "by"),
    ({"direction": "up"}, "direction"),
    ({"kind": "iqr"}, "kind"),
])
def test_config_errors_name_the_field(bad, field):
    settings = dict(name="slippage_z", kind="zscore", metric="slippage_bps", window=10) | bad
    with pytest.raises(ValidationError) as error:
        ZScoreConfig(**settings)
    assert [e["loc"] for e in error.value.errors()] == [(field,)]
    if field in ("warmup", "critical_threshold"):
        assert "slippage_z" in str(error.value)  # the message names the detector


def test_min_scale_floors_the_standard_deviation_and_scores_a_constant_window():
    floored = ZScoreDetector(ZScoreConfig(name="z", metric="spread_bps", window=10, warmup=5, threshold=3.0,
                                          min_scale=2.0))
    [anomaly] = detect(floored, [5.0] * 10 + [12.0])  # constant window: (12 - 5) / 2 = 3.5
    assert anomaly.score == pytest.approx(3.5) and anomaly.context["std"] == 0.0
    assert detect(floored, [5.0] * 10 + [10.0]) == []  # 2.5 < 3
