"""ClockSkewRule: minimum (received - occurred) over a trailing window, per source."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests import factories
from tests.domain.detection.builders import SECOND, T0, at, detect_in_batches, source_events
from tests.domain.detection.builders import event_batch as batch
from tradewatch.domain.detection import state_codec
from tradewatch.domain.detection.anomaly import Cleared
from tradewatch.domain.detection.clock_skew import ClockSkewConfig, ClockSkewRule, range_minimum
from tradewatch.domain.detection.event_frame import event_frame


def events(rows: list[tuple[float, float]], sources: list[str] | None = None) -> pd.DataFrame:
    """rows: (received seconds after T0, delay seconds); occurred = received - delay."""
    received = T0 + np.rint(np.asarray([r for r, _ in rows], dtype=np.float64) * SECOND).astype(np.int64)
    delay = np.rint(np.asarray([d for _, d in rows], dtype=np.float64) * SECOND).astype(np.int64)
    return source_events(event_types=["market_data"] * len(rows),
                         sources=sources if sources is not None else ["engine-1"] * len(rows),
                         received_at_ns=received, occurred_at_ns=received - delay)


def rule(**fields) -> ClockSkewRule:
    return ClockSkewRule(ClockSkewConfig(name="skew", **fields))


def test_opens_when_the_minimum_delay_is_beyond_tolerance_and_clears_when_back():
    detector = rule(tolerance_seconds=1.0, window_seconds=60, min_events=3)
    # delays 2.5, 2.2, 3.0: min 2.2 with 3 events -> opens at e2. Then 0.1: min 0.1 -> clears at e3.
    found = detector.detect(batch(events([(0, 2.5), (1, 2.2), (2, 3.0), (3, 0.1)])), {})

    assert [type(f).__name__ for f in found] == ["Anomaly", "Cleared"]
    opened, cleared = found
    assert (opened.anomaly_type, opened.metric, opened.entity_kind, opened.entity) == (
        "clock_skew", "clock_skew_seconds", "source", "engine-1")
    assert (opened.observed, opened.baseline, opened.score) == (2.2, 0.0, 2.2)
    assert opened.detected_at_ns == at(2)  # tradewatch's clock, not the engine's
    assert opened.event_ids == ("e2",)
    assert opened.context == {"tolerance_seconds": 1.0, "window_seconds": 60, "events_in_window": 3,
                              "direction": "engine_clock_behind"}
    assert opened.key == "skew|clock_skew_seconds|source=engine-1"
    assert cleared == Cleared(key=opened.key, cleared_at_ns=at(3))


def test_queueing_delay_is_stripped_by_the_minimum():
    # a clock in sync whose events are often queued for seconds: the mean delay is 3 s, the minimum 0.02 s
    detector = rule(tolerance_seconds=1.0, min_events=3)
    assert detector.detect(batch(events([(0, 0.05), (1, 4.0), (2, 6.0), (3, 0.02), (4, 5.0)])), {}) == []


def test_engine_clock_ahead_gives_a_negative_skew():
    detector = rule(tolerance_seconds=1.0, min_events=3)
    (opened,) = detector.detect(batch(events([(0, -2.0), (1, -1.5), (2, -3.0)])), {})
    assert opened.observed == -3.0 and opened.score == 3.0
    assert opened.context["direction"] == "engine_clock_ahead"


def test_needs_min_events_in_the_window():
    detector = rule(tolerance_seconds=1.0, min_events=3)
    assert detector.detect(batch(events([(0, 5.0), (1, 5.0)])), {}) == []


def test_old_events_leave_the_window():
    detector = rule(tolerance_seconds=1.0, window_seconds=60, min_events=3)
    # three in-sync events, then three 5 s late ones 100 s later: the window (42 s, 102 s] holds only those
    found = detector.detect(batch(events([(0, 0), (1, 0), (2, 0), (100, 5), (101, 5), (102, 5)])), {})
    assert [(f.detected_at_ns, f.observed, f.context["events_in_window"]) for f in found] == [(at(102), 5.0, 3)]


def test_window_edge_is_whole_seconds():
    detector = rule(tolerance_seconds=1.0, window_seconds=2, min_events=2)
    # buckets 10, 11, 12 (s). At 12.9 the window is buckets 11 and 12: the in-sync event at 10.5 is out.
    found = detector.detect(batch(events([(10.5, 0.0), (11.2, 3.0), (12.9, 4.0)])), {})
    assert [(f.observed, f.context["events_in_window"]) for f in found] == [(3.0, 2)]


def test_too_few_events_keep_the_condition_as_it_was():
    detector = rule(tolerance_seconds=1.0, window_seconds=10, min_events=3)
    state: dict = {}
    detector.detect(batch(events([(0, 5), (1, 5), (2, 5)])), state)
    # 100 s later one in-sync event: one event in its window, no evidence, the condition stays open
    assert detector.detect(batch(events([(100, 0)])), state) == []
    assert "engine-1" in state["open"]
    found = detector.detect(batch(events([(101, 0), (102, 0)])), state)
    assert [type(f).__name__ for f in found] == ["Cleared"] and found[0].cleared_at_ns == at(102)


def test_sources_are_separate():
    detector = rule(tolerance_seconds=1.0, min_events=2)
    frame = events([(0, 3), (0, 0), (1, 3), (1, 0)], sources=["late", "ok", "late", "ok"])
    found = detector.detect(batch(frame), {})
    assert [(f.entity, f.detected_at_ns) for f in found] == [("late", at(1))]


def test_state_keeps_one_summary_per_second_of_the_window():
    detector = rule(window_seconds=10, min_events=1, tolerance_seconds=100)
    state: dict = {}
    rows = [(second + k / 10, 0.5 + k / 100) for second in range(50) for k in range(10)]  # 10 events per second
    detector.detect(batch(events(rows)), state)
    window = state["windows"]["engine-1"]
    assert list(window["buckets"]) == [T0 // SECOND + s for s in range(40, 50)]
    assert list(window["counts"]) == [10] * 10
    assert list(window["minimum_ns"]) == [500_000_000] * 10
    state_codec.encode(state)


def test_events_from_models_have_no_skew_when_received_as_they_occur():
    frame = event_frame([factories.market_data(i, source="feed-a") for i in range(10)])
    assert rule(min_events=1).detect(batch(frame), {}) == []


def test_range_minimum_matches_slices():
    values = np.array([5, 3, 8, -1, 7, 7, 2, 9], dtype=np.int64)
    start = np.array([0, 1, 2, 4, 7, 0])
    end = np.array([1, 3, 8, 6, 8, 8])
    assert list(range_minimum(values, start, end)) == [5, 3, -1, 7, 9, -1]


def test_tick_reports_nothing():
    assert rule().tick(T0, {}) == []


@pytest.mark.parametrize(("fields", "where", "says"), [
    ({"tolerance_seconds": 0}, "tolerance_seconds", "greater than 0"),
    ({"window_seconds": 0}, "window_seconds", "greater than or equal to 1"),
    ({"window_seconds": 7200}, "window_seconds", "less than or equal to 3600"),
    ({"min_events": 0}, "min_events", "greater than or equal to 1"),
    ({"max_skew": 2}, "max_skew", "Extra inputs are not permitted"),
])
def test_bad_config_names_the_key_and_what_is_accepted(fields, where, says):
    with pytest.raises(ValidationError) as caught:
        ClockSkewConfig(name="skew", **fields)
    assert where in str(caught.value) and says in str(caught.value)


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from([0.0, 0.3, 1.0, 2.5, -0.4]),  # received step (s), may go back
                                st.sampled_from([0.0, 0.5, 1.5, 3.0, -2.0]),  # delay (s)
                                st.sampled_from(["a", "b"])), min_size=1, max_size=60),
       cuts=st.lists(st.integers(0, 60), max_size=5))
def test_any_split_into_batches_gives_the_same_findings(steps, cuts):
    detector = rule(tolerance_seconds=1.0, window_seconds=3, min_events=2)
    received = np.cumsum([step for step, _, _ in steps]) + 10
    frame = events([(r, d) for r, (_, d, _) in zip(received, steps)], sources=[s for _, _, s in steps])
    whole_state: dict = {}
    whole = detector.detect(batch(frame), whole_state)

    split, state = detect_in_batches(detector, frame, cuts, batch)
    assert split == whole
    assert state["open"] == whole_state["open"]
    for source, window in whole_state["windows"].items():
        assert all(np.array_equal(window[name], state["windows"][source][name]) for name in window)
