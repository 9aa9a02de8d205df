"""EwmaDetector: the control chart step by step, alarm start / escalation / clear, frozen baseline."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from tests.domain.detection.builders import detect
from tradewatch.domain.detection.anomaly import Anomaly, Cleared
from tradewatch.domain.detection.ewma import EwmaConfig, EwmaDetector

# Warm-up [9, 11, 9, 11]: mu = 10, sigma^2 = 4 / 3. lambda = 0.5: sigma_z = sigma sqrt(0.5 / 1.5) = 2 / 3.
# L = 3: the control limit is |z - mu| > 2.
WARMUP = [9, 11, 9, 11]
SIGMA_Z = 2 / 3


def ewma(**overrides) -> EwmaDetector:
    settings = dict(name="spread_shift", metric="spread_bps", window=10, warmup=4, threshold=3.0, smoothing=0.5,
                    alpha_baseline=0.5) | overrides
    return EwmaDetector(EwmaConfig(**settings))


def test_alarm_starts_and_clears_at_known_steps():
    state: dict = {}
    findings = detect(ewma(), WARMUP + [15, 15, 10, 10], state)
    # step 4: z = 12.5, score 2.5 / (2/3) = 3.75 > 3 -> alarm; step 5: z = 13.75, still in alarm (no finding);
    # step 6: z = 11.875, score 2.8125 -> back inside: cleared.
    assert [type(f) for f in findings] == [Anomaly, Cleared]
    alarm, cleared = findings
    assert (alarm.anomaly_type, alarm.severity, alarm.event_ids, alarm.observed) == ("level_shift", "warning", ("e4",), 15.0)
    assert alarm.baseline == 10.0 and alarm.score == pytest.approx(3.75)
    assert alarm.context == {"threshold": 3.0, "mu": 10.0, "sigma": pytest.approx(math.sqrt(4 / 3)), "z": 12.5,
                             "control_limit": pytest.approx(2.0), "smoothing": 0.5, "alpha_baseline": 0.5}
    assert cleared == Cleared(key=alarm.key, cleared_at_ns=6_000)
    assert alarm.key == "spread_shift|spread_bps|symbol=AAPL"
    # The baseline was frozen during the alarm, then learnt x = 10 at steps 6 and 7 (d = 0): mu stays 10,
    # sigma^2 halves twice: 4/3 -> 2/3 -> 1/3.
    chart = state["streams"]["AAPL"]
    assert chart["mu"] == 10.0 and chart["sigma"] == pytest.approx(math.sqrt(1 / 3)) and chart["alarm"] is None
    assert chart["z"] == pytest.approx(10.9375) and chart["count"] == 8


def test_in_control_values_move_the_baseline():
    state: dict = {}
    assert detect(ewma(), WARMUP + [11], state) == []
    # z = 10.5 (score 0.75); d = 1: mu = 10.5, sigma^2 = 0.5 (4/3 + 0.5) = 11/12
    chart = state["streams"]["AAPL"]
    assert (chart["mu"], chart["z"]) == (10.5, 10.5)
    assert chart["sigma"] == pytest.approx(math.sqrt(11 / 12))


def test_warmup_is_not_charted():
    assert detect(ewma(), [9, 11, 9, 1000]) == []  # the spike is part of the warm-up
    state: dict = {}
    detect(ewma(), WARMUP, state)
    assert state["streams"]["AAPL"]["z"] == 10.0 and state["streams"]["AAPL"]["mu"] == 10.0


def test_escalation_to_critical_is_reported_once():
    findings = detect(ewma(critical_threshold=5.0), WARMUP + [15, 20, 20, 10, 10, 10])
    # step 4 z = 12.5 (3.75, warning); step 5 z = 16.25 (9.375, critical); step 6 z = 18.125 (no new finding)
    kinds = [(type(f).__name__, getattr(f, "severity", None), getattr(f, "event_ids", None)) for f in findings]
    assert kinds[:2] == [("Anomaly", "warning", ("e4",)), ("Anomaly", "critical", ("e5",))]
    assert findings[1].score == pytest.approx(9.375)
    # z: 14.0625 (6.09), 12.03 (3.05), 11.02 (1.52): clears at step 9
    assert isinstance(findings[2], Cleared) and findings[2].cleared_at_ns == 9_000 and len(findings) == 3


def test_direction():
    assert detect(ewma(direction="high"), WARMUP + [5, 5]) == []
    [alarm] = detect(ewma(direction="low"), WARMUP + [5, 5])
    assert alarm.score == pytest.approx(-3.75)
    assert detect(ewma(direction="low"), WARMUP + [15, 15]) == []


def test_a_constant_warmup_has_no_limit_until_sigma_grows():
    state: dict = {}
    assert detect(ewma(), [10, 10, 10, 10, 11], state) == []
    chart = state["streams"]["AAPL"]
    # not scored (sigma 0), but learnt: d = 1, mu = 10.5, sigma^2 = 0.5 (0 + 0.5) = 0.25
    assert (chart["mu"], chart["sigma"], chart["alarm"]) == (10.5, 0.5, None)


def test_streams_are_separate_charts():
    values = [v for pair in zip(WARMUP + [15, 15], WARMUP + [10, 10]) for v in pair]
    findings = detect(ewma(), values, symbols=["AAPL", "MSFT"] * 6)
    assert [f.entity for f in findings] == ["AAPL"]


def test_config_defaults_and_errors():
    config = EwmaConfig(name="e", metric="slippage_bps")
    assert (config.kind, config.threshold, config.smoothing, config.alpha_baseline, config.warmup) == ("ewma", 3.5, 0.2, 0.01, 30)
    for bad, field in (({"smoothing": 0}, "smoothing"), ({"smoothing": 1.5}, "smoothing"),
                       ({"alpha_baseline": 1}, "alpha_baseline"), ({"lambda": 0.2}, "lambda")):
        with pytest.raises(ValidationError) as error:
            EwmaConfig(name="e", metric="slippage_bps", **bad)
        assert [e["loc"] for e in error.value.errors()] == [(field,)]
    assert ewma().tick(0, {}) == []
