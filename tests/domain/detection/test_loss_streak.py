"""LossStreakRule: N losing trips in a row, and realized loss over a trailing window."""

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
from tradewatch.domain.detection.loss_streak import LossStreakConfig, LossStreakRule

trips = partial(rule_observations, metric="round_trip_pnl_usd")


def rule(**fields) -> LossStreakRule:
    return LossStreakRule(LossStreakConfig(name="loss", **fields))


def kinds(found) -> list[tuple[str, str]]:
    return [(type(f).__name__, f.key.split("|")[1]) for f in found]


# --------------------------------------------------------------------------- consecutive losses

#        i:  0   1   2   3   4  5   6   7
STREAK = [-1, -2, 0, -3, -4, 5, -1, -1]
# streak:    1   2   2   3   4  0   1   2     (N = 3: opens at 3, clears at the win at 5)


def test_opens_at_the_nth_consecutive_loss_and_a_win_clears_it():
    found = rule(max_consecutive_losses=3).detect(batch(trips(STREAK)), {})

    assert kinds(found) == [("Anomaly", "round_trip_pnl_usd"), ("Cleared", "round_trip_pnl_usd")]
    opened, cleared = found
    assert isinstance(opened, Anomaly) and opened.anomaly_type == "loss_streak"
    assert (opened.observed, opened.baseline, opened.score) == (3.0, 3.0, 1.0)
    assert opened.event_ids == ("e0", "e1", "e3")  # the zero trip e2 is not part of the streak
    assert opened.context == {"max_consecutive_losses": 3, "trip_pnl_usd": [-1.0, -2.0, -3.0], "total_pnl_usd": -6.0}
    assert opened.detected_at_ns == T0 + 3 * SECOND
    assert opened.key == "loss|round_trip_pnl_usd|strategy_id=s1"
    assert cleared == Cleared(key=opened.key, cleared_at_ns=T0 + 5 * SECOND)


def test_zero_pnl_trip_neither_extends_nor_breaks_a_streak():
    detector = rule(max_consecutive_losses=2)
    assert detector.detect(batch(trips([-1, 0, 0, 0])), {}) == []  # one loss, zeros do not extend it
    (opened,) = detector.detect(batch(trips([-1, 0, -1])), {})  # zero between two losses does not break it
    assert opened.event_ids == ("e0", "e2")


def test_streak_carries_across_batches_with_its_event_ids():
    detector = rule(max_consecutive_losses=3)
    state: dict = {}
    frame = trips(STREAK)
    assert detector.detect(batch(frame.iloc[:2]), state) == []
    assert state["streaks"]["s1"] == {"length": 2, "event_ids": ["e0", "e1"], "pnl": [-1.0, -2.0]}
    state = state_codec.decode(state_codec.encode(state))
    (opened,) = detector.detect(batch(frame.iloc[2:4]), state)
    assert opened.event_ids == ("e0", "e1", "e3")


def test_a_long_streak_keeps_only_the_last_n_event_ids():
    detector = rule(max_consecutive_losses=2)
    state: dict = {}
    (opened,) = detector.detect(batch(trips([-1, -1, -1, -1, -1])), state)
    assert opened.event_ids == ("e0", "e1")
    assert state["streaks"]["s1"]["length"] == 5 and state["streaks"]["s1"]["event_ids"] == ["e3", "e4"]


def test_streaks_are_per_strategy():
    frame = trips([-1, -1, -1, -1], strategies=["a", "b", "a", None])
    found = rule(max_consecutive_losses=2).detect(batch(frame), {})
    assert [(f.entity, f.event_ids) for f in found] == [("a", ("e0", "e2"))]


def test_silence_does_not_clear_a_streak():
    detector = rule(max_consecutive_losses=1)
    state: dict = {}
    detector.detect(batch(trips([-1])), state)
    assert detector.tick(T0 + 10**6 * SECOND, state) == []
    assert "s1" in state["open_streaks"]


def test_other_metrics_are_ignored():
    assert rule(max_consecutive_losses=1).detect(batch(trips([-5.0], metric="slippage_bps")), {}) == []


# --------------------------------------------------------------------------- drawdown speed


def test_drawdown_is_disabled_by_default():
    detector = rule(max_consecutive_losses=100)
    assert detector.detect(batch(trips([-1e9, -1e9])), {}) == []


def test_drawdown_opens_below_the_limit_and_clears_when_the_window_sum_recovers():
    detector = rule(max_consecutive_losses=100, drawdown_usd=100.0, drawdown_window_seconds=60)
    # sums over (t - 60, t]: t=0 -50, t=10 -80, t=20 -120 (opens), t=75 -40 - 10 = -50 (clears)
    frame = trips([-50, -30, -40, -10], seconds=[0, 10, 20, 75])

    found = detector.detect(batch(frame), {})

    assert kinds(found) == [("Anomaly", "drawdown_speed_usd"), ("Cleared", "drawdown_speed_usd")]
    opened, cleared = found
    assert (opened.observed, opened.baseline, opened.score) == (-120.0, -100.0, 1.2)
    assert opened.anomaly_type == "loss_streak" and opened.event_ids == ("e2",)
    assert opened.context == {"drawdown_usd": 100.0, "window_seconds": 60.0, "round_trips": 3}
    assert opened.key == "loss|drawdown_speed_usd|strategy_id=s1"
    assert cleared == Cleared(key=opened.key, cleared_at_ns=T0 + 75 * SECOND)


def test_drawdown_window_excludes_its_left_edge():
    detector = rule(max_consecutive_losses=100, drawdown_usd=100.0, drawdown_window_seconds=60)
    # at t=60 the window is (0, 60]: the trip at t=0 is out, so the sum is -60
    assert detector.detect(batch(trips([-50, -60], seconds=[0, 60])), {}) == []


def test_drawdown_counts_a_trip_stamped_in_the_past_at_the_streams_latest_time():
    detector = rule(max_consecutive_losses=100, drawdown_usd=100.0, drawdown_window_seconds=60)
    # e1 is stamped 50 s before e0: it counts at t=100. At t=155 both are in (95, 155]; at 161 neither.
    frame = trips([-60, -50, 0, 0], seconds=[100, 50, 155, 161])
    found = detector.detect(batch(frame), {})
    assert [(type(f).__name__, getattr(f, "detected_at_ns", None) or f.cleared_at_ns) for f in found] == [
        ("Anomaly", T0 + 50 * SECOND), ("Cleared", T0 + 161 * SECOND)]
    assert found[0].observed == -110.0


def test_tick_clears_an_open_drawdown_once_the_window_ending_now_recovers():
    detector = rule(max_consecutive_losses=100, drawdown_usd=100.0, drawdown_window_seconds=60)
    state: dict = {}
    (opened,) = detector.detect(batch(trips([-150.0], seconds=[0])), state)

    assert detector.tick(T0 + 59 * SECOND, state) == []  # the loss is still in (now - 60, now]
    assert detector.tick(T0 + 60 * SECOND, state) == [Cleared(key=opened.key, cleared_at_ns=T0 + 60 * SECOND)]
    assert detector.tick(T0 + 61 * SECOND, state) == []  # once
    # a later trip does not clear it a second time
    assert detector.detect(batch(trips([1.0], seconds=[200])), state) == []


def test_streak_and_drawdown_on_the_same_trip_come_streak_first():
    detector = rule(max_consecutive_losses=2, drawdown_usd=10.0, drawdown_window_seconds=60)
    found = detector.detect(batch(trips([-6, -6])), {})
    assert kinds(found) == [("Anomaly", "round_trip_pnl_usd"), ("Anomaly", "drawdown_speed_usd")]
    assert len({f.key for f in found}) == 2


def test_drawdown_state_is_pruned_by_age():
    detector = rule(max_consecutive_losses=100, drawdown_usd=1e6, drawdown_window_seconds=10)
    state: dict = {}
    detector.detect(batch(trips([-1.0] * 100, seconds=list(range(100)))), state)
    assert list(state["drawdowns"]["s1"]["times"]) == [T0 + s * SECOND for s in range(90, 100)]
    state_codec.encode(state)


@pytest.mark.parametrize(("fields", "where", "says"), [
    ({"max_consecutive_losses": 0}, "max_consecutive_losses", "greater than or equal to 1"),
    ({"drawdown_usd": -5.0}, "drawdown_usd", "greater than 0"),
    ({"drawdown_window_seconds": 0}, "drawdown_window_seconds", "greater than 0"),
    ({"by": "source"}, "by", "'symbol' or 'strategy_id'"),
    ({"max_losses": 3}, "max_losses", "Extra inputs are not permitted"),
])
def test_bad_config_names_the_key_and_what_is_accepted(fields, where, says):
    with pytest.raises(ValidationError) as caught:
        LossStreakConfig(name="loss", **fields)
    assert where in str(caught.value) and says in str(caught.value)


@settings(max_examples=40, deadline=None)
@given(pnl=st.lists(st.sampled_from([-0.1, -0.2, -0.3, 0.0, 0.1, 0.7, -1.1]), min_size=1, max_size=40),
       gaps=st.lists(st.sampled_from([0.0, 0.5, 1.0, 3.0, -2.0]), min_size=40, max_size=40),
       streams=st.lists(st.sampled_from(["a", "b"]), min_size=40, max_size=40),
       cuts=st.lists(st.integers(0, 40), max_size=5))
def test_any_split_into_batches_gives_the_same_findings(pnl, gaps, streams, cuts):
    detector = rule(max_consecutive_losses=3, drawdown_usd=0.5, drawdown_window_seconds=4)
    seconds = list(np.cumsum(gaps[:len(pnl)]) + 100)
    frame = trips(pnl, seconds=seconds, strategies=streams[:len(pnl)])
    whole_state: dict = {}
    whole = detector.detect(batch(frame), whole_state)

    split, state = detect_in_batches(detector, frame, cuts)
    assert split == whole
    assert state["streaks"] == whole_state["streaks"]
