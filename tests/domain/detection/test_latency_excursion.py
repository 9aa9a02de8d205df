"""LatencyExcursionRule: min_count slow of the last window opens, fewer clears; batch-independent."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.domain.detection.builders import SECOND, T0, detect_in_batches, rule_observations
from tests.domain.detection.builders import observation_batch as batch
from tradewatch.domain.detection import state_codec
from tradewatch.domain.detection.anomaly import Anomaly, Cleared
from tradewatch.domain.detection.latency_excursion import LatencyExcursionConfig, LatencyExcursionRule

observations = partial(rule_observations, metric="fill_latency_seconds")


def rule(**fields) -> LatencyExcursionRule:
    return LatencyExcursionRule(LatencyExcursionConfig(name="lat", **fields))


#            i:  0  1  2  3  4  5  6  7  8  9  10
LATENCIES = [1, 3, 1, 1, 3, 1, 1, 1, 1, 5, 5]
# slow:          0  1  0  0  1  0  0  0  0  1  1
# count (last 4):0  1  1  1  2  1  1  1  0  1  2   -> opens at 4, clears at 5, opens at 10


def test_opens_when_min_count_of_window_are_slow_and_clears_when_fewer():
    detector = rule(threshold_seconds=2.0, window=4, min_count=2)

    found = detector.detect(batch(observations(LATENCIES)), {})

    assert [type(f).__name__ for f in found] == ["Anomaly", "Cleared", "Anomaly"]
    first, cleared, second = found
    assert isinstance(first, Anomaly) and isinstance(cleared, Cleared)
    assert first.anomaly_type == "latency_excursion" and not first.is_point
    assert (first.observed, first.baseline, first.score) == (3.0, 2.0, 1.5)
    assert first.context == {"count": 2, "window": 4, "min_count": 2, "threshold_seconds": 2.0}
    assert first.detected_at_ns == T0 + 4 * SECOND and first.event_ids == ("e4",)
    assert first.key == "lat|fill_latency_seconds|strategy_id=s1"
    assert cleared == Cleared(key=first.key, cleared_at_ns=T0 + 5 * SECOND)
    assert (second.observed, second.score, second.detected_at_ns) == (5.0, 2.5, T0 + 10 * SECOND)
    assert second.key == first.key


def test_an_open_condition_is_not_reported_again_while_it_holds():
    detector = rule(threshold_seconds=2.0, window=3, min_count=2)
    found = detector.detect(batch(observations([3, 3, 3, 3, 3, 1, 1])), {})
    # counts 1 2 3 3 3 2 1: opens at 1, holds to 5, clears at 6
    assert [(type(f).__name__, getattr(f, "detected_at_ns", getattr(f, "cleared_at_ns", None))) for f in found] == [
        ("Anomaly", T0 + 1 * SECOND), ("Cleared", T0 + 6 * SECOND)]


def test_state_carries_the_window_and_the_open_condition_across_batches():
    detector = rule(threshold_seconds=2.0, window=4, min_count=2)
    state: dict = {}
    frame = observations(LATENCIES)

    assert detector.detect(batch(frame.iloc[:4]), state) == []
    assert list(state["flags"]["s1"]) == [0, 1, 0, 0]
    (opened,) = detector.detect(batch(frame.iloc[4:5]), state)
    assert state["open"] == {"s1": opened.key}
    (cleared,) = detector.detect(batch(frame.iloc[5:6]), state)
    assert cleared.key == opened.key and state["open"] == {}


def test_window_state_stays_bounded():
    detector = rule(window=5, min_count=2)
    state: dict = {}
    detector.detect(batch(observations([1.0] * 100)), state)
    assert state["flags"]["s1"].dtype == np.int64 and state["flags"]["s1"].size == 5
    state_codec.encode(state)  # only allowed types


def test_streams_are_separate_and_findings_come_in_batch_order():
    detector = rule(threshold_seconds=2.0, window=2, min_count=2)
    frame = observations([3, 3, 3, 1, 3], strategies=["a", "b", "a", "a", "b"])
    # a: 3 3 1 -> opens at its 2nd (row 2), clears at row 3.  b: 3 3 -> opens at row 4.
    found = detector.detect(batch(frame), {})
    assert [(type(f).__name__, getattr(f, "entity", None)) for f in found] == [
        ("Anomaly", "a"), ("Cleared", None), ("Anomaly", "b")]
    assert found[1].key == "lat|fill_latency_seconds|strategy_id=a"


def test_reads_only_its_metric_and_skips_unattributed_observations():
    detector = rule(metric="acknowledgement_latency_seconds", threshold_seconds=1.0, window=2, min_count=1)
    fills = observations([9.0])
    unattributed = observations([9.0], strategies=[None], metric="acknowledgement_latency_seconds")
    acks = observations([9.0], metric="acknowledgement_latency_seconds")
    assert detector.detect(batch(fills), {}) == []
    assert detector.detect(batch(unattributed), {}) == []
    (found,) = detector.detect(batch(acks), {})
    assert found.metric == "acknowledgement_latency_seconds"


def test_by_symbol():
    detector = rule(by="symbol", window=1, min_count=1)
    (found,) = detector.detect(batch(observations([4.0])), {})
    assert found.key == "lat|fill_latency_seconds|symbol=AAPL" and found.score == 2.0


def test_tick_reports_nothing():
    assert rule().tick(T0, {}) == []


@pytest.mark.parametrize(("fields", "where", "says"), [
    ({"min_count": 11, "window": 10}, "min_count", "detector 'lat' (latency_excursion)"),
    ({"threshold_seconds": -1.0}, "threshold_seconds", "greater than 0"),
    ({"window": 0}, "window", "greater than or equal to 1"),
    ({"metric": "spread_bps"}, "metric", "'fill_latency_seconds' or 'acknowledgement_latency_seconds'"),
    ({"lookback": 3}, "lookback", "Extra inputs are not permitted"),
])
def test_bad_config_names_the_key_and_what_is_accepted(fields, where, says):
    with pytest.raises(ValidationError) as caught:
        LatencyExcursionConfig(name="lat", **fields)
    assert where in str(caught.value) and says in str(caught.value)


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.sampled_from([0.5, 1.0, 2.0, 2.5, 4.0]), min_size=1, max_size=50),
       streams=st.lists(st.sampled_from(["a", "b"]), min_size=50, max_size=50),
       cuts=st.lists(st.integers(0, 50), max_size=5))
def test_any_split_into_batches_gives_the_same_findings(values, streams, cuts):
    detector = rule(threshold_seconds=2.0, window=4, min_count=2)
    frame = observations(values, strategies=streams[:len(values)])
    whole_state: dict = {}
    whole = detector.detect(batch(frame), whole_state)

    split, state = detect_in_batches(detector, frame, cuts)
    assert split == whole
    assert state["open"] == whole_state["open"]
    # Opens and clears alternate per key, starting with an open.
    for key in {f.key for f in whole}:
        kinds = [type(f).__name__ for f in whole if f.key == key]
        assert kinds == ["Anomaly", "Cleared"] * (len(kinds) // 2) + ["Anomaly"] * (len(kinds) % 2)
