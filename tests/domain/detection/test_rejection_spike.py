"""RejectionSpikeRule: opens above threshold after min_orders, clears below clear_below (hysteresis)."""

from __future__ import annotations

from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.domain.detection.builders import SECOND, T0, detect_in_batches, rule_observations
from tests.domain.detection.builders import observation_batch as batch
from tradewatch.domain.detection import state_codec
from tradewatch.domain.detection.anomaly import Anomaly, Cleared
from tradewatch.domain.detection.rejection_spike import RejectionSpikeConfig, RejectionSpikeRule

rates = partial(rule_observations, metric="rejection_rate")


def rule(**fields) -> RejectionSpikeRule:
    return RejectionSpikeRule(RejectionSpikeConfig(name="rej", **fields))


def timeline(found) -> list[tuple[str, int]]:
    return [(type(f).__name__, ((f.detected_at_ns if isinstance(f, Anomaly) else f.cleared_at_ns) - T0) // SECOND)
            for f in found]


#      i:  0    1    2    3     4     5     6     7
RATES = [0.5, 0.5, 0.3, 0.15, 0.25, 0.05, 0.15, 0.3]
# seen:    1    2    3    4     5     6     7     8     (min_orders 3: can open from i=2)
# state:   -    -   open open  open  clear  -   open   (0.15 and 0.25 keep it open; 0.15 keeps it closed)


def test_opens_above_threshold_after_min_orders_and_clears_only_below_clear_below():
    found = rule(threshold=0.2, clear_below=0.1, min_orders=3).detect(batch(rates(RATES)), {})

    assert timeline(found) == [("Anomaly", 2), ("Cleared", 5), ("Anomaly", 7)]
    opened = found[0]
    assert opened.anomaly_type == "rate_spike" and opened.metric == "rejection_rate"
    assert (opened.observed, opened.baseline, opened.score) == (0.3, 0.2, pytest.approx(1.5))
    assert opened.context == {"threshold": 0.2, "clear_below": 0.1, "min_orders": 3, "orders_seen": 3}
    assert opened.key == "rej|rejection_rate|strategy_id=s1" and opened.event_ids == ("e2",)
    assert found[1] == Cleared(key=opened.key, cleared_at_ns=T0 + 5 * SECOND)
    assert found[2].key == opened.key


def test_rate_hovering_around_the_threshold_pages_once():
    # A single limit at 0.2 would open and clear four times; the 0.1 floor keeps it one episode.
    hovering = rates([0.22, 0.18, 0.22, 0.18, 0.22, 0.18])
    found = rule(threshold=0.2, clear_below=0.1, min_orders=1).detect(batch(hovering), {})
    assert timeline(found) == [("Anomaly", 0)]


def test_observation_count_carries_across_batches():
    detector = rule(threshold=0.2, clear_below=0.1, min_orders=3)
    state: dict = {}
    frame = rates(RATES)
    assert detector.detect(batch(frame.iloc[:2]), state) == []  # 0.5 twice, but only 2 orders seen
    assert state["seen"] == {"s1": 2}
    state = state_codec.decode(state_codec.encode(state))
    assert timeline(detector.detect(batch(frame.iloc[2:3]), state)) == [("Anomaly", 2)]


def test_equal_to_threshold_does_not_open_and_equal_to_clear_below_does_not_clear():
    detector = rule(threshold=0.2, clear_below=0.1, min_orders=1)
    assert detector.detect(batch(rates([0.2])), {}) == []
    state: dict = {}
    detector.detect(batch(rates([0.3])), state)
    assert detector.detect(batch(rates([0.1])), state) == []
    assert "s1" in state["open"]


def test_streams_are_separate_and_unattributed_rates_skipped():
    detector = rule(threshold=0.2, clear_below=0.1, min_orders=2)
    frame = rates([0.5, 0.5, 0.5, 0.5], strategies=["a", "b", None, "a"])
    found = detector.detect(batch(frame), {})
    assert [(f.entity, f.context["orders_seen"]) for f in found] == [("a", 2)]


def test_other_metrics_and_tick_report_nothing():
    detector = rule(min_orders=1)
    assert detector.detect(batch(rates([0.9], metric="order_rate_per_minute")), {}) == []
    assert detector.tick(T0, {}) == []


@pytest.mark.parametrize(("fields", "where", "says"), [
    ({"threshold": 0.2, "clear_below": 0.2}, "clear_below", "detector 'rej' (rejection_spike)"),
    ({"threshold": 0.1}, "clear_below", "must be less than threshold"),  # default clear_below 0.1
    ({"threshold": 1.5}, "threshold", "less than or equal to 1"),
    ({"threshold": 0.0}, "threshold", "greater than 0"),
    ({"clear_below": -0.1}, "clear_below", "greater than or equal to 0"),
    ({"min_orders": 0}, "min_orders", "greater than or equal to 1"),
    ({"window": 50}, "window", "Extra inputs are not permitted"),
])
def test_bad_config_names_the_key_and_what_is_accepted(fields, where, says):
    with pytest.raises(ValidationError) as caught:
        RejectionSpikeConfig(name="rej", **fields)
    assert where in str(caught.value) and says in str(caught.value)


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.sampled_from([0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.6]), min_size=1, max_size=40),
       streams=st.lists(st.sampled_from(["a", "b"]), min_size=40, max_size=40),
       cuts=st.lists(st.integers(0, 40), max_size=5))
def test_any_split_into_batches_gives_the_same_findings(values, streams, cuts):
    detector = rule(threshold=0.2, clear_below=0.1, min_orders=4)
    frame = rates(values, strategies=streams[:len(values)])
    whole = detector.detect(batch(frame), {})

    split, state = detect_in_batches(detector, frame, cuts)
    assert split == whole
