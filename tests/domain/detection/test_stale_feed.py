"""StaleFeedRule: silence is judged on the tick only, once per episode, cleared by the first event back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from tests import factories
from tests.domain.detection.builders import SECOND, T0, at, source_events
from tests.domain.detection.builders import event_batch as batch
from tradewatch.domain.detection import state_codec
from tradewatch.domain.detection.anomaly import Anomaly, Cleared
from tradewatch.domain.detection.event_frame import empty_event_frame, event_frame
from tradewatch.domain.detection.stale_feed import StaleFeedConfig, StaleFeedRule
from tradewatch.domain.events import SystemEvent, SystemPayload


def events(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    """rows: (event_type, source, received seconds after T0); occurred = received."""
    received = T0 + (np.asarray([row[2] for row in rows], dtype=np.float64) * SECOND).astype(np.int64)
    return source_events(event_types=[row[0] for row in rows], sources=[row[1] for row in rows],
                         received_at_ns=received, occurred_at_ns=received)


def rule(**fields) -> StaleFeedRule:
    return StaleFeedRule(StaleFeedConfig(name="stale", **fields))


def test_detect_never_reports_silence_even_across_a_gap_in_the_batch():
    # a 500 s gap inside one (late) batch is not silence "now": only the tick judges absence
    detector = rule(max_silence_seconds=30)
    assert detector.detect(batch(events([("market_data", "feed-a", 0), ("market_data", "feed-a", 500)])), {}) == []


def test_tick_fires_once_after_ingest_stops_and_the_first_event_back_clears():
    detector = rule(max_silence_seconds=30)
    state: dict = {}
    detector.detect(batch(events([("market_data", "feed-a", 0), ("market_data", "feed-a", 10)])), state)

    assert detector.tick(at(40), state) == []  # silent 30 s: not more than the limit
    (stale,) = detector.tick(at(41), state)
    assert isinstance(stale, Anomaly)
    assert (stale.anomaly_type, stale.metric, stale.entity_kind, stale.entity) == (
        "stale_feed", "feed_silence_seconds", "source", "feed-a")
    assert (stale.observed, stale.baseline, stale.score) == (31.0, 30.0, 31.0 / 30.0)
    assert stale.detected_at_ns == at(41)
    assert stale.key == "stale|feed_silence_seconds|source=feed-a"
    assert stale.context["last_seen_at_ns"] == at(10) and stale.context["never_seen"] is False
    assert detector.tick(at(100), state) == []  # once per episode

    state = state_codec.decode(state_codec.encode(state))
    back = events([("order", "feed-a", 115), ("market_data", "feed-a", 120), ("system", "feed-a", 121)])
    assert detector.detect(batch(back), state) == [Cleared(key=stale.key, cleared_at_ns=at(120))]
    assert detector.tick(at(130), state) == []
    (again,) = detector.tick(at(152), state)  # a new episode: 31 s after the event at 121
    assert again.key == stale.key and again.observed == 31.0


def test_only_the_configured_event_types_keep_a_feed_alive():
    detector = rule(event_types=["market_data"], max_silence_seconds=30)
    state: dict = {}
    detector.detect(batch(events([("market_data", "feed-a", 0), ("order", "engine-2", 0)])), state)
    detector.detect(batch(events([("system", "feed-a", 50), ("order", "engine-2", 50)])), state)
    found = detector.tick(at(60), state)
    # feed-a's heartbeat does not count; engine-2 sends no watched events, so it is not tracked
    assert [(a.entity, a.observed) for a in found] == [("feed-a", 60.0)]


def test_expected_source_never_seen_is_reported_from_the_first_tick():
    detector = rule(max_silence_seconds=30, expected_sources=["feed-b"])
    state: dict = {}
    assert detector.tick(at(1000), state) == []  # starts watching feed-b here
    assert detector.tick(at(1030), state) == []
    (stale,) = detector.tick(at(1031), state)
    assert (stale.entity, stale.observed) == ("feed-b", 31.0)
    assert stale.context["never_seen"] is True and stale.context["last_seen_at_ns"] is None
    assert stale.context["silent_since_ns"] == at(1000)

    found = detector.detect(batch(events([("system", "feed-b", 1040)])), state)
    assert found == [Cleared(key=stale.key, cleared_at_ns=at(1040))]
    assert state["never_seen"] == []


def test_expected_source_seen_before_the_first_tick_counts_from_its_event():
    detector = rule(max_silence_seconds=30, expected_sources=["feed-b"])
    state: dict = {}
    detector.detect(batch(events([("market_data", "feed-b", 0)])), state)
    (stale,) = detector.tick(at(45), state)
    assert stale.observed == 45.0 and stale.context["never_seen"] is False


def test_several_sources_each_their_own_condition():
    detector = rule(max_silence_seconds=10)
    state: dict = {}
    detector.detect(batch(events([("market_data", "a", 0), ("market_data", "b", 5)])), state)
    assert [a.entity for a in detector.tick(at(12), state)] == ["a"]
    assert [a.entity for a in detector.tick(at(16), state)] == ["b"]
    found = detector.detect(batch(events([("market_data", "b", 20), ("market_data", "a", 21)])), state)
    assert [f.key.rsplit("=", 1)[1] for f in found] == ["b", "a"]  # batch order


def test_works_on_frames_built_from_event_models():
    md = factories.market_data(0, source="feed-a")
    heartbeat = SystemEvent(occurred_at=factories.BASE_NS + 5 * SECOND, source="feed-a",
                            payload=SystemPayload(component="market-data-feed", level="info", message="alive"))
    detector = rule(max_silence_seconds=30)
    state: dict = {}
    detector.detect(batch(event_frame([md, heartbeat])), state)
    assert state["last_seen"] == {"feed-a": factories.BASE_NS + 5 * SECOND}
    assert detector.tick(factories.BASE_NS + 35 * SECOND, state) == []
    assert len(detector.tick(factories.BASE_NS + 36 * SECOND, state)) == 1


def test_empty_batch_changes_nothing():
    detector = rule()
    state: dict = {}
    assert detector.detect(batch(empty_event_frame()), state) == []
    assert detector.tick(at(0), state) == []


@pytest.mark.parametrize(("fields", "where", "says"), [
    ({"event_types": ["quotes"]}, "event_types", "accepted: market_data, signal"),
    ({"event_types": []}, "event_types", "at least 1 item"),
    ({"max_silence_seconds": 0}, "max_silence_seconds", "greater than 0"),
    ({"expected_sources": ["a", "a"]}, "expected_sources", "listed twice"),
    ({"expected_sources": [" "]}, "expected_sources", "empty"),
    ({"sources": ["a"]}, "sources", "Extra inputs are not permitted"),
    ({"max_silence_seconds": 60, "forget_after_seconds": 60}, "forget_after_seconds",
     "must be greater than max_silence_seconds (60.0)"),
])
def test_bad_config_names_the_key_and_what_is_accepted(fields, where, says):
    with pytest.raises(ValidationError) as caught:
        StaleFeedConfig(name="stale", **fields)
    assert where in str(caught.value) and says in str(caught.value)


def test_a_source_silent_beyond_forget_after_seconds_is_cleared_and_dropped():
    detector = rule(max_silence_seconds=30, forget_after_seconds=100, expected_sources=["feed-x"])
    state: dict = {}
    detector.detect(batch(events([("market_data", "feed-a", 0), ("market_data", "feed-b", 50),
                                  ("market_data", "feed-x", 0)])), state)
    # at 40: feed-a and feed-x silent 40 s > 30: stale; feed-b silent for -10 s
    opened = detector.tick(at(40), state)
    assert [a.entity for a in opened] == ["feed-a", "feed-x"]
    assert detector.tick(at(100), state)[0].entity == "feed-b"  # silent 50 s
    assert detector.tick(at(100), state) == []
    # at 101: feed-a silent 101 s > 100: retired, its condition cleared at now; feed-x is expected: kept
    state = state_codec.decode(state_codec.encode(state))
    assert detector.tick(at(101), state) == [Cleared(key="stale|feed_silence_seconds|source=feed-a",
                                                     cleared_at_ns=at(101))]
    assert sorted(state["last_seen"]) == ["feed-b", "feed-x"] and sorted(state["open"]) == ["feed-b", "feed-x"]
    # at 151: feed-b (last seen 50) silent 101 s: cleared and dropped too; feed-x stays, open
    assert detector.tick(at(151), state) == [Cleared(key="stale|feed_silence_seconds|source=feed-b",
                                                     cleared_at_ns=at(151))]
    assert list(state["last_seen"]) == ["feed-x"] and list(state["open"]) == ["feed-x"]
    assert detector.tick(at(10_000), state) == []
    # heard again: tracked afresh, nothing to clear (its condition was already cleared)
    assert detector.detect(batch(events([("market_data", "feed-a", 10_000)])), state) == []
    (again,) = detector.tick(at(10_031), state)
    assert again.entity == "feed-a" and again.context["last_seen_at_ns"] == at(10_000)


def test_a_source_forgotten_without_an_open_condition_emits_nothing():
    # no tick ran while it was merely stale (ticks stopped): it is forgotten silently
    detector = rule(max_silence_seconds=30, forget_after_seconds=100)
    state: dict = {}
    detector.detect(batch(events([("market_data", "feed-a", 0)])), state)
    assert detector.tick(at(101), state) == []
    assert state["last_seen"] == {} and state["open"] == {}


def test_forget_after_seconds_defaults_to_a_day():
    assert StaleFeedConfig(name="stale").forget_after_seconds == 86_400.0
