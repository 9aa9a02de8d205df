"""SlippageSpikeRule: every fill above the threshold, critical above critical_bps, batch-independent."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.domain.detection.builders import SECOND, T0, detect_in_batches, rule_observations
from tests.domain.detection.builders import observation_batch as batch
from tradewatch.domain.detection.anomaly import Anomaly
from tradewatch.domain.detection.slippage_spike import SlippageSpikeConfig, SlippageSpikeRule


def observations(rows: list[tuple], metric: str = "slippage_bps"):
    """rows: (value, symbol, strategy_id); one per second from T0."""
    return rule_observations([row[0] for row in rows], metric, symbols=[row[1] for row in rows],
                             strategies=[row[2] for row in rows])


def test_fills_above_threshold_are_spikes_with_hand_computed_scores():
    rule = SlippageSpikeRule(SlippageSpikeConfig(name="slip", threshold_bps=50.0, critical_bps=120.0))
    frame = observations([(10, "AAPL", "m"), (60, "AAPL", "m"), (50, "AAPL", "m"), (150, "MSFT", "m"),
                          (-80, "AAPL", "m")])

    found = rule.detect(batch(frame), {})

    assert [(a.entity, a.observed, a.score, a.severity) for a in found] == [
        ("AAPL", 60.0, 1.2, "warning"),  # 60 / 50
        ("MSFT", 150.0, 3.0, "critical"),  # 150 / 50, above critical_bps 120
    ]
    first = found[0]
    assert first.anomaly_type == "spike" and first.is_point
    assert first.metric == "slippage_bps" and first.baseline == 50.0
    assert first.entity_kind == "symbol" and first.symbol == "AAPL" and first.strategy_id == "m"
    assert first.event_ids == ("e1",)
    assert first.detected_at_ns == T0 + 1 * SECOND
    assert first.key == "slip|slippage_bps|symbol=AAPL"


def test_exactly_at_threshold_and_price_improvement_do_not_fire():
    rule = SlippageSpikeRule(SlippageSpikeConfig(name="slip", threshold_bps=50.0))
    assert rule.detect(batch(observations([(50.0, "AAPL", "m"), (-500.0, "AAPL", "m")])), {}) == []


def test_other_metrics_are_ignored():
    rule = SlippageSpikeRule(SlippageSpikeConfig(name="slip"))
    assert rule.detect(batch(observations([(900.0, "AAPL", "m")], metric="spread_bps")), {}) == []


def test_by_strategy_keys_per_strategy_and_skips_unattributed_fills():
    rule = SlippageSpikeRule(SlippageSpikeConfig(name="slip", by="strategy_id", threshold_bps=10.0))
    frame = observations([(20, "AAPL", "momentum"), (30, "MSFT", "momentum"), (40, "AAPL", None)])

    found = rule.detect(batch(frame), {})

    assert [a.entity for a in found] == ["momentum", "momentum"]
    assert {a.key for a in found} == {"slip|slippage_bps|strategy_id=momentum"}  # one condition key per entity
    assert all(a.entity_kind == "strategy_id" for a in found)


def test_default_severity_is_the_configured_one_without_critical_limit():
    rule = SlippageSpikeRule(SlippageSpikeConfig(name="slip", severity="info"))
    (found,) = rule.detect(batch(observations([(5000.0, "AAPL", "m")])), {})
    assert found.severity == "info" and found.score == 100.0


def test_rule_is_stateless_and_tick_reports_nothing():
    rule = SlippageSpikeRule(SlippageSpikeConfig(name="slip"))
    state: dict = {}
    rule.detect(batch(observations([(70.0, "AAPL", "m")])), state)
    assert state == {}
    assert rule.tick(T0 + 10**12, state) == []
    assert rule.name == "slip"


def test_anomaly_round_trips_through_its_dict():
    rule = SlippageSpikeRule(SlippageSpikeConfig(name="slip", critical_bps=100.0))
    (found,) = rule.detect(batch(observations([(70.0, "AAPL", "m")])), {})
    assert Anomaly.from_dict(found.to_dict()) == found


@pytest.mark.parametrize(("fields", "where", "says"), [
    ({"critical_bps": 40.0}, "critical_bps", "must be greater than threshold_bps"),
    ({"threshold_bps": 0.0}, "threshold_bps", "greater than 0"),
    ({"threshold_bps": float("inf")}, "threshold_bps", "finite"),
    ({"by": "venue"}, "by", "'symbol' or 'strategy_id'"),
    ({"threshold": 50.0}, "threshold", "Extra inputs are not permitted"),
    ({"severity": "page"}, "severity", "'info', 'warning' or 'critical'"),
])
def test_bad_config_names_the_key_and_what_is_accepted(fields, where, says):
    with pytest.raises(ValidationError) as caught:
        SlippageSpikeConfig(name="slip", **fields)
    text = str(caught.value)
    assert where in text and says in text


def test_config_error_from_cross_field_check_names_the_detector():
    with pytest.raises(ValidationError, match="detector 'slip' \\(slippage_spike\\)"):
        SlippageSpikeConfig(name="slip", threshold_bps=50.0, critical_bps=50.0)


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.floats(-200, 200, allow_nan=False), min_size=1, max_size=40),
       cuts=st.lists(st.integers(0, 40), max_size=4))
def test_any_split_into_batches_gives_the_same_findings(values, cuts):
    rule = SlippageSpikeRule(SlippageSpikeConfig(name="slip", threshold_bps=50.0, critical_bps=150.0))
    frame = observations([(v, "AAPL" if i % 2 else "MSFT", "m") for i, v in enumerate(values)])
    whole = rule.detect(batch(frame), {})

    split, state = detect_in_batches(rule, frame, cuts)
    assert split == whole
    assert len(whole) == sum(v > 50.0 for v in values)
