"""DetectionPipeline: deduplication, escalation, resolution, state, restarts and batch splits.

The detectors here are small fakes (implementing base.Detector) so every expectation can be
computed by hand; the real registry is exercised in test_pipeline_config.py.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

from tradewatch.domain.detection.anomaly import Anomaly, Cleared
from tradewatch.domain.detection.base import Batch, Detector
from tradewatch.domain.detection.pipeline import (
    DetectionPipeline,
    DetectionResult,
    OpenAnomaly,
    PipelineConfig,
    PipelineState,
    Resolution,
)
from tradewatch.domain.detection.state_codec import StateCodecError, encode

S = 1_000_000_000  # ns per second
QUIET = 300  # seconds


# ------------------------------------------------------------------ fakes


def frame(rows: list[tuple[int, int, str, float]]) -> pd.DataFrame:
    """Events (seq, occurred_at seconds, symbol, value); value NaN = an event without observation."""
    return pd.DataFrame({
        "seq": np.array([r[0] for r in rows], dtype=np.int64),
        "event_id": [f"e{r[0]}" for r in rows],
        "occurred_at_ns": np.array([r[1] * S for r in rows], dtype=np.int64),
        # The event frame's received_at_ns (the pipeline reads it for trusted times): on time.
        "received_at_ns": np.array([r[1] * S for r in rows], dtype=np.int64),
        "symbol": [r[2] for r in rows],
        "value": np.array([r[3] for r in rows], dtype=np.float64),
    })


class FakeExtractor:
    """One observation per event with a value; counts events in its state (to see it persisted)."""

    def extract(self, events: pd.DataFrame, state: dict[str, Any]) -> pd.DataFrame:
        state["events"] = state.get("events", 0) + len(events)
        observed = events[events["value"].notna()]
        return pd.DataFrame({"seq": observed["seq"], "event_id": observed["event_id"],
                             "occurred_at_ns": observed["occurred_at_ns"], "metric": "spread_bps",
                             "value": observed["value"], "symbol": observed["symbol"],
                             "strategy_id": None, "source": "engine"}).reset_index(drop=True)


def _anomaly(name: str, kind: str, severity: str, row, limit: float) -> Anomaly:
    return Anomaly(detector=name, anomaly_type=kind, severity=severity, metric="spread_bps", observed=row.value,
                   baseline=float("nan"), score=row.value / limit, entity_kind="symbol", entity=row.symbol,
                   detected_at_ns=int(row.occurred_at_ns), symbol=row.symbol, event_ids=(row.event_id,))


class Spike:
    """Stateless point detector: value > limit is a spike; critical above ``critical``."""

    def __init__(self, name: str = "spike", limit: float = 10.0, critical: float = 100.0) -> None:
        self.name, self.limit, self.critical = name, limit, critical

    def detect(self, batch: Batch, state: dict) -> list:
        hits = batch.observations[batch.observations["value"] > self.limit]
        return [_anomaly(self.name, "spike", "critical" if row.value > self.critical else "warning", row, self.limit)
                for row in hits.itertuples()]

    def tick(self, now_ns: int, state: dict) -> list:
        return []


class Level:
    """Condition detector: a symbol is 'high' while its value > limit (one level_shift finding per
    high observation), and clears at its first value <= limit. State: the high symbols and a
    numpy window of the last three values (to exercise the codec)."""

    def __init__(self, name: str = "level", limit: float = 5.0) -> None:
        self.name, self.limit = name, limit

    def detect(self, batch: Batch, state: dict) -> list:
        high = state.setdefault("high", {})
        window = state.get("window", np.zeros(3))
        findings: list = []
        for row in batch.observations.itertuples():
            window = np.roll(window, -1)
            window[-1] = row.value
            if row.value > self.limit:
                high[row.symbol] = True
                findings.append(_anomaly(self.name, "level_shift", "warning", row, self.limit))
            elif high.pop(row.symbol, False):
                findings.append(Cleared(key=f"{self.name}|spread_bps|symbol={row.symbol}",
                                        cleared_at_ns=int(row.occurred_at_ns)))
        state["window"] = window
        return findings

    def tick(self, now_ns: int, state: dict) -> list:
        return []


class Stale:
    """Absence rule: on tick, no event for more than ``gap`` seconds opens stale_feed; the next
    batch clears it at its first event."""

    def __init__(self, name: str = "stale", gap: int = 60) -> None:
        self.name, self.gap = name, gap

    def _key(self) -> str:
        return f"{self.name}|event_age_seconds|source=engine"

    def detect(self, batch: Batch, state: dict) -> list:
        if not len(batch.events):
            return []
        findings = []
        if state.pop("stale", False):
            findings.append(Cleared(key=self._key(), cleared_at_ns=int(batch.events["occurred_at_ns"].min())))
        state["last_ns"] = max(state.get("last_ns", 0), int(batch.events["occurred_at_ns"].max()))
        return findings

    def tick(self, now_ns: int, state: dict) -> list:
        if "last_ns" not in state or state.get("stale") or now_ns - state["last_ns"] <= self.gap * S:
            return []
        state["stale"] = True
        age = (now_ns - state["last_ns"]) / S
        return [Anomaly(detector=self.name, anomaly_type="stale_feed", severity="critical", metric="event_age_seconds",
                        observed=age, baseline=float(self.gap), score=age / self.gap, entity_kind="source",
                        entity="engine", detected_at_ns=now_ns)]


class Scripted:
    """Returns the findings it is given, once per detect call, in order."""

    def __init__(self, name: str, *batches: list) -> None:
        self.name, self.batches = name, list(batches)

    def detect(self, batch: Batch, state: dict) -> list:
        state["calls"] = state.get("calls", 0) + 1
        return self.batches.pop(0) if self.batches else []

    def tick(self, now_ns: int, state: dict) -> list:
        return []


def pipeline(*detectors: Detector, quiet: float = QUIET) -> DetectionPipeline:
    return DetectionPipeline.from_detectors(detectors, quiet_seconds=quiet, extractor=FakeExtractor())


def spike_anomaly(at_s: int, severity: str = "warning", *, entity: str = "AAA", score: float = 2.0,
                  name: str = "script") -> Anomaly:
    return Anomaly(detector=name, anomaly_type="spike", severity=severity, metric="m", observed=score,
                   baseline=1.0, score=score, entity_kind="symbol", entity=entity, detected_at_ns=at_s * S)


def summary(result: DetectionResult) -> dict:
    """A comparable picture of a result (Anomaly holds NaN, so compare to_dict forms)."""
    return {
        "opened": [a.to_dict() for a in result.opened],
        "escalated": [a.to_dict() for a in result.escalated],
        "updated": [(u.anomaly.to_dict(), u.first_seen_at_ns, u.last_seen_at_ns, u.occurrences, u.max_score)
                    for u in result.updated],
        "resolved": [(r.anomaly.to_dict(), r.resolved_at_ns, r.reason) for r in result.resolved],
        "findings": result.findings, "events": result.events, "observations": result.observations,
        "open": {k: (v.anomaly.to_dict(), v.first_seen_at_ns, v.last_seen_at_ns, v.occurrences)
                 for k, v in result.state.open.items()},
    }


# ------------------------------------------------------------------ deduplication and escalation


def test_two_findings_on_one_key_open_one_anomaly_and_update_it():
    result = pipeline(Spike()).detect_all(frame([(1, 10, "AAA", 20.0), (2, 11, "AAA", 40.0), (3, 12, "BBB", 1.0)]))
    assert [a.key for a in result.opened] == ["spike|spread_bps|symbol=AAA"]
    assert result.opened[0].observed == 20.0 and result.opened[0].detected_at_ns == 10 * S
    assert result.escalated == [] and result.resolved == []
    [updated] = result.updated
    assert (updated.first_seen_at_ns, updated.last_seen_at_ns, updated.occurrences, updated.max_score) == \
        (10 * S, 11 * S, 2, 4.0)  # scores 20/10 and 40/10
    assert updated.anomaly.observed == 20.0  # the open anomaly is its first finding
    assert result.state.open == {updated.key: updated}
    assert (result.findings, result.events, result.observations) == (2, 3, 3)


def test_a_finding_on_a_key_opened_earlier_is_an_update_not_an_opening():
    detector = Spike()
    p = pipeline(detector)
    first = p.detect_all(frame([(1, 10, "AAA", 20.0)]))
    second = p.detect_all(frame([(2, 20, "AAA", 30.0)]), first.state)
    assert second.opened == []
    assert [(u.occurrences, u.last_seen_at_ns, u.max_score) for u in second.updated] == [(2, 20 * S, 3.0)]


def test_higher_severity_escalates_an_open_anomaly():
    p = pipeline(Spike())
    first = p.detect_all(frame([(1, 10, "AAA", 20.0)]))
    assert [a.severity for a in first.opened] == ["warning"]
    second = p.detect_all(frame([(2, 20, "AAA", 500.0), (3, 21, "AAA", 20.0)]), first.state)
    assert second.opened == []
    [escalated] = second.escalated
    assert escalated.severity == "critical"
    assert escalated.detected_at_ns == 10 * S and escalated.observed == 20.0  # still the first finding
    [open_now] = second.state.open.values()
    assert open_now.anomaly.severity == "critical" and open_now.occurrences == 3 and open_now.max_score == 50.0
    # a lower severity afterwards never lowers it, and is no escalation
    third = p.detect_all(frame([(4, 30, "AAA", 20.0)]), second.state)
    assert third.escalated == [] and third.updated[0].anomaly.severity == "critical"


def test_escalation_within_the_batch_that_opens_is_reported_as_the_opening():
    result = pipeline(Spike()).detect_all(frame([(1, 10, "AAA", 20.0), (2, 11, "AAA", 500.0)]))
    assert [a.severity for a in result.opened] == ["critical"]
    assert result.escalated == []
    assert result.updated[0].anomaly.severity == "critical"


def test_findings_apply_in_time_order_across_detectors():
    # a runs first in the configuration, but b's findings are earlier: time orders them.
    a = Scripted("a", [spike_anomaly(20, name="a")])
    b = Scripted("b", [spike_anomaly(10, name="b"), Cleared(key=spike_anomaly(5, name="b").key, cleared_at_ns=15 * S)])
    result = pipeline(a, b).detect_all(frame([(1, 30, "AAA", float("nan"))]))
    assert [x.detector for x in result.opened] == ["b", "a"]
    assert [(r.anomaly.detector, r.resolved_at_ns, r.reason) for r in result.resolved] == [("b", 15 * S, "cleared")]


# ------------------------------------------------------------------ resolution


def test_cleared_resolves_an_open_condition():
    result = pipeline(Level()).detect_all(frame([(1, 10, "AAA", 7.0), (2, 11, "AAA", 8.0), (3, 12, "AAA", 1.0)]))
    assert [a.key for a in result.opened] == ["level|spread_bps|symbol=AAA"]
    [resolution] = result.resolved
    assert resolution == Resolution(anomaly=result.opened[0], resolved_at_ns=12 * S, reason="cleared")
    assert result.updated[0].occurrences == 2
    assert result.state.open == {}


def test_a_cleared_for_a_key_that_is_not_open_is_ignored():
    result = pipeline(Scripted("script", [Cleared(key="script|m|symbol=AAA", cleared_at_ns=5 * S)])).detect_all(
        frame([(1, 10, "AAA", float("nan"))]))
    assert result.resolved == [] and result.opened == [] and result.state.open == {}
    assert result.findings == 1


def test_a_condition_is_not_resolved_by_quiet():
    p = pipeline(Level())
    first = p.detect_all(frame([(1, 10, "AAA", 7.0)]))
    later = p.detect_all(frame([(2, 10 + 10 * QUIET, "BBB", float("nan"))]), first.state)
    assert later.resolved == [] and list(later.state.open) == ["level|spread_bps|symbol=AAA"]
    assert p.tick((10 + 100 * QUIET) * S, later.state).resolved == []


def test_a_point_anomaly_resolves_after_the_quiet_period_on_detect_all():
    p = pipeline(Spike())
    first = p.detect_all(frame([(1, 100, "AAA", 20.0), (2, 110, "AAA", 20.0)]))
    # latest event exactly quiet_seconds after the last finding: not yet quiet (strictly beyond)
    boundary = p.detect_all(frame([(3, 110 + QUIET, "BBB", 1.0)]), first.state)
    assert boundary.resolved == []
    after = p.detect_all(frame([(4, 111 + QUIET, "BBB", 1.0)]), boundary.state)
    [resolution] = after.resolved
    assert resolution.reason == "quiet"
    assert resolution.resolved_at_ns == (110 + QUIET) * S  # the end of the quiet period
    assert resolution.anomaly == first.opened[0]
    assert after.state.open == {}


def test_a_point_anomaly_resolves_after_the_quiet_period_on_tick():
    p = pipeline(Spike())
    first = p.detect_all(frame([(1, 100, "AAA", 20.0)]))
    assert p.tick((100 + QUIET) * S, first.state).resolved == []
    result = p.tick((100 + QUIET) * S + 1, first.state)
    assert [(r.reason, r.resolved_at_ns) for r in result.resolved] == [("quiet", (100 + QUIET) * S)]
    assert (result.events, result.observations, result.findings) == (0, 0, 0)


def test_a_spike_after_a_quiet_gap_inside_one_batch_resolves_and_reopens():
    result = pipeline(Spike()).detect_all(frame([(1, 100, "AAA", 20.0), (2, 100 + QUIET + 1, "AAA", 30.0)]))
    assert [a.detected_at_ns for a in result.opened] == [100 * S, (101 + QUIET) * S]
    assert [(r.anomaly.detected_at_ns, r.resolved_at_ns, r.reason) for r in result.resolved] == \
        [(100 * S, (100 + QUIET) * S, "quiet")]
    assert result.updated == []
    [open_now] = result.state.open.values()
    assert open_now.first_seen_at_ns == (101 + QUIET) * S


def test_an_empty_batch_resolves_nothing():
    p = pipeline(Spike())
    first = p.detect_all(frame([(1, 100, "AAA", 20.0)]))
    empty = p.detect_all(frame([]), first.state)
    assert empty.resolved == [] and empty.events == 0 and len(empty.state.open) == 1


def test_tick_findings_open_and_the_next_batch_clears_them():
    p = pipeline(Stale(gap=60))
    state = p.detect_all(frame([(1, 100, "AAA", float("nan"))])).state
    assert p.tick(160 * S, state).opened == []
    stale = p.tick(161 * S, state)
    [opened] = stale.opened
    assert (opened.anomaly_type, opened.severity, opened.observed) == ("stale_feed", "critical", 61.0)
    assert p.tick(200 * S, state).opened == []  # still open: no second opening
    back = p.detect_all(frame([(2, 300, "AAA", float("nan"))]), state)
    assert [(r.anomaly.key, r.resolved_at_ns, r.reason) for r in back.resolved] == \
        [("stale|event_age_seconds|source=engine", 300 * S, "cleared")]


# ------------------------------------------------------------------ state and configuration changes


def test_events_are_read_in_seq_order():
    seen: list[list[int]] = []

    class Recorder(Scripted):
        def detect(self, batch: Batch, state: dict) -> list:
            seen.append(batch.events["seq"].tolist())
            return []

    result = pipeline(Recorder("rec")).detect_all(frame([(3, 12, "A", 1.0), (1, 10, "A", 1.0), (2, 11, "A", 1.0)]))
    assert seen == [[1, 2, 3]] and result.events == 3


def test_each_detector_gets_its_own_state_and_the_extractor_its_own():
    p = pipeline(Scripted("one"), Scripted("two"))
    state = p.detect_all(frame([(1, 10, "A", 1.0)])).state
    state = p.detect_all(frame([(2, 11, "A", 1.0), (3, 12, "A", 1.0)]), state).state
    assert state.detectors == {"one": {"calls": 2}, "two": {"calls": 2}}
    assert state.extractor == {"events": 3}


def test_a_dropped_detector_loses_its_state_and_a_new_one_starts_empty():
    old = pipeline(Scripted("kept", [spike_anomaly(10, name="kept")]), Spike(name="gone"))
    state = old.detect_all(frame([(1, 10, "AAA", 20.0)])).state
    assert set(state.open) == {"kept|m|symbol=AAA", "gone|spread_bps|symbol=AAA"}

    new = pipeline(Scripted("kept"), Scripted("added"))
    result = new.detect_all(frame([(2, 20, "AAA", 1.0)]), state)
    assert result.state.detectors == {"kept": {"calls": 2}, "added": {"calls": 1}}
    assert [(r.anomaly.detector, r.resolved_at_ns, r.reason) for r in result.resolved] == \
        [("gone", 20 * S, "detector_removed")]
    assert set(result.state.open) == {"kept|m|symbol=AAA"}


def test_detectors_must_not_claim_another_detectors_anomalies():
    with pytest.raises(ValueError, match="detector 'mine' returned an anomaly of detector 'other'"):
        pipeline(Scripted("mine", [spike_anomaly(1, name="other")])).detect_all(frame([(1, 1, "A", 1.0)]))


def test_detector_names_must_be_unique():
    with pytest.raises(ValueError, match="detector names must be unique; repeated: x"):
        pipeline(Scripted("x"), Scripted("x"))


def test_set_models_reaches_the_model_detectors_by_model_name():
    class ModelDetector(Scripted):
        def __init__(self, name: str) -> None:
            super().__init__(name)
            self.config = {"model_detector": name}
            self.model: Any = "untouched"

        def use_model(self, model: Any) -> None:
            self.model = model

    first, second, shared = ModelDetector("forest"), ModelDetector("svm"), ModelDetector("forest_critical")
    shared.model_name = "forest"  # a second detector on the same stored model
    p = pipeline(Scripted("plain"), first, second, shared)
    assert p.model_configs == [{"model_detector": "forest"}, {"model_detector": "svm"},
                               {"model_detector": "forest_critical"}]
    p.set_models({"forest": None, "unknown": object()})
    assert first.model is None and shared.model is None and second.model == "untouched"


# ------------------------------------------------------------------ persistence


def test_state_round_trips_through_bytes():
    open_anomaly = OpenAnomaly(
        anomaly=Anomaly(detector="d", anomaly_type="spike", severity="critical", metric="m", observed=float("inf"),
                        baseline=float("nan"), score=float("inf"), entity_kind="symbol", entity="A",
                        detected_at_ns=5, symbol="A", event_ids=("e1", "e2"), context={"window": (1, 2), "n": 3}),
        first_seen_at_ns=5, last_seen_at_ns=9, occurrences=2, max_score=float("inf"))
    state = PipelineState(extractor={"orders": {"o1": 1}}, detectors={"d": {"w": np.arange(3.0)}},
                          open={open_anomaly.key: open_anomaly})
    back = PipelineState.from_bytes(state.to_bytes())
    assert back.extractor == {"orders": {"o1": 1}}
    assert back.detectors["d"]["w"].tolist() == [0.0, 1.0, 2.0]
    [restored] = back.open.values()
    assert restored.anomaly.score == float("inf") and restored.max_score == float("inf")  # not lost to JSON's None
    assert restored.anomaly.event_ids == ("e1", "e2") and restored.anomaly.context == {"window": [1, 2], "n": 3}
    assert (restored.first_seen_at_ns, restored.last_seen_at_ns, restored.occurrences) == (5, 9, 2)
    assert restored.key == open_anomaly.key


def test_a_blob_that_is_not_a_pipeline_state_is_refused():
    with pytest.raises(StateCodecError, match="not a tradewatch detector state"):
        PipelineState.from_bytes(b"\x00\x01")
    with pytest.raises(StateCodecError, match="not a pipeline state of format 1"):
        PipelineState.from_bytes(encode({"something": "else"}))
    with pytest.raises(StateCodecError, match="pipeline state is malformed: KeyError"):
        PipelineState.from_bytes(encode({"format": 1, "extractor": {}, "detectors": {}}))


BATCHES = [
    [(1, 100, "AAA", 20.0), (2, 101, "BBB", 7.0), (3, 102, "AAA", 500.0)],
    [(4, 150, "BBB", 8.0), (5, 160, "AAA", 1.0)],
    [(6, 200 + QUIET, "BBB", 1.0), (7, 201 + QUIET, "CCC", 30.0)],
    [(8, 300 + 2 * QUIET, "CCC", 9.0)],
]


def test_a_restart_from_bytes_continues_as_if_it_never_stopped():
    def make() -> DetectionPipeline:
        return pipeline(Spike(), Level(), Stale(gap=30))

    steady, steady_state = make(), None
    restarted, blob = make(), None
    for index, rows in enumerate(BATCHES):
        expected = steady.detect_all(frame(rows), steady_state)
        steady_state = expected.state
        restarted = make()  # a fresh worker: new objects, state only from the bytes
        actual = restarted.detect_all(frame(rows), None if blob is None else PipelineState.from_bytes(blob))
        assert summary(actual) == summary(expected), f"batch {index}"
        blob = actual.state.to_bytes()
        now = (int(rows[-1][1]) + 45) * S
        expected_tick = steady.tick(now, steady_state)
        actual_tick = make().tick(now, PipelineState.from_bytes(blob))
        assert summary(actual_tick) == summary(expected_tick), f"tick after batch {index}"
        blob = actual_tick.state.to_bytes()
    assert blob == steady_state.to_bytes()


def _run(batches: list[list[tuple]]) -> tuple[set, set, dict]:
    p, state = pipeline(Spike(), Level()), None
    opened, resolved = set(), set()
    for rows in batches:
        result = p.detect_all(frame(rows), state)
        state = result.state
        opened |= {(a.key, a.detected_at_ns) for a in result.opened}
        resolved |= {(r.anomaly.key, r.anomaly.detected_at_ns, r.resolved_at_ns, r.reason) for r in result.resolved}
    final = {k: (v.first_seen_at_ns, v.last_seen_at_ns, v.occurrences, v.anomaly.severity) for k, v in state.open.items()}
    return opened, resolved, final


EVENTS = [row for rows in BATCHES for row in rows] + [
    (9, 400 + 2 * QUIET, "AAA", 15.0), (10, 401 + 3 * QUIET, "AAA", 12.0), (11, 402 + 3 * QUIET, "BBB", 6.0),
    (12, 403 + 3 * QUIET, "BBB", 2.0), (13, 500 + 4 * QUIET, "DDD", 1.0),
]


def test_the_batches_in_the_one_batch_case_are_hand_checked():
    opened, resolved, final = _run([EVENTS])
    spike, level = "spike|spread_bps|symbol=", "level|spread_bps|symbol="
    assert opened == {
        (spike + "AAA", 100 * S), (level + "AAA", 100 * S), (level + "BBB", 101 * S), (spike + "CCC", (201 + QUIET) * S),
        (level + "CCC", (201 + QUIET) * S), (spike + "AAA", (400 + 2 * QUIET) * S), (spike + "AAA", (401 + 3 * QUIET) * S),
        (level + "AAA", (400 + 2 * QUIET) * S), (level + "BBB", (402 + 3 * QUIET) * S),
    }
    assert resolved == {
        (spike + "AAA", 100 * S, (102 + QUIET) * S, "quiet"),
        (level + "AAA", 100 * S, 160 * S, "cleared"),
        (level + "BBB", 101 * S, (200 + QUIET) * S, "cleared"),
        (spike + "CCC", (201 + QUIET) * S, (201 + 2 * QUIET) * S, "quiet"),
        (spike + "AAA", (400 + 2 * QUIET) * S, (400 + 3 * QUIET) * S, "quiet"),
        (spike + "AAA", (401 + 3 * QUIET) * S, (401 + 4 * QUIET) * S, "quiet"),
        (level + "BBB", (402 + 3 * QUIET) * S, (403 + 3 * QUIET) * S, "cleared"),
    }
    # still open: the CCC level (9 > 5) and the AAA level (12 > 5) conditions
    assert final == {level + "CCC": ((201 + QUIET) * S, (300 + 2 * QUIET) * S, 2, "warning"),
                     level + "AAA": ((400 + 2 * QUIET) * S, (401 + 3 * QUIET) * S, 2, "warning")}


@settings(max_examples=40, deadline=None)
@given(st.sets(st.integers(1, len(EVENTS) - 1), max_size=len(EVENTS) - 1))
def test_splitting_the_events_into_batches_changes_nothing(cuts):
    bounds = [0, *sorted(cuts), len(EVENTS)]
    batches = [EVENTS[start:stop] for start, stop in zip(bounds, bounds[1:])]
    assert _run(batches) == _run([EVENTS])


# ------------------------------------------------------------------ configured pipelines


class FakeSpikeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    kind: Literal["fake_spike"] = "fake_spike"
    severity: Literal["info", "warning", "critical"] = "warning"
    limit: float = 10.0


class FakeSpike(Spike):
    def __init__(self, config: FakeSpikeConfig) -> None:
        super().__init__(config.name, config.limit)
        self.config = config


class FakeLevelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    kind: Literal["fake_level"] = "fake_level"
    severity: Literal["info", "warning", "critical"] = "warning"
    limit: float = 5.0


class FakeLevel(Level):
    def __init__(self, config: FakeLevelConfig) -> None:
        super().__init__(config.name, config.limit)
        self.config = config


FAKE_KINDS = {"fake_spike": (FakeSpikeConfig, FakeSpike), "fake_level": (FakeLevelConfig, FakeLevel)}


def test_a_configured_pipeline_builds_its_detectors_from_the_kinds():
    config = PipelineConfig.with_kinds(FAKE_KINDS).from_yaml_text(
        "quiet_seconds: 60\n"
        "detectors:\n"
        "  - {kind: fake_spike, name: wide, limit: 15}\n"
        "  - {kind: fake_level, name: lvl}\n",
        "test.yaml",
    )
    p = DetectionPipeline(config, extractor=FakeExtractor())  # the kinds come with the config's class
    assert [type(d).__name__ for d in p.detectors] == ["FakeSpike", "FakeLevel"]
    assert p.detectors[0].limit == 15.0 and p.quiet_ns == 60 * S
    result = p.detect_all(frame([(1, 10, "AAA", 12.0), (2, 11, "AAA", 16.0)]))
    assert [a.key for a in result.opened] == ["lvl|spread_bps|symbol=AAA", "wide|spread_bps|symbol=AAA"]
    assert result.state.detectors.keys() == {"wide", "lvl"}


def test_extra_kinds_can_be_given_to_the_pipeline_too():
    config = PipelineConfig.model_construct(quiet_seconds=60.0, detectors=(FakeSpikeConfig(name="x"),))
    with pytest.raises(ValueError, match="no detector class for the config FakeSpikeConfig"):
        DetectionPipeline(config, extractor=FakeExtractor())
    p = DetectionPipeline(config, extractor=FakeExtractor(), extra_kinds=FAKE_KINDS)
    assert [type(d).__name__ for d in p.detectors] == ["FakeSpike"]


def test_an_event_stamped_a_day_ahead_does_not_resolve_point_anomalies_as_quiet():
    p = pipeline(Spike())
    first = p.detect_all(frame([(1, 100, "AAA", 20.0)]))
    ahead = frame([(2, 100 + 86_400, "BBB", 1.0)])
    ahead["received_at_ns"] = np.array([101 * S], dtype=np.int64)  # tradewatch got it at 101 s
    # Trusted time min(100 s + a day, 101 s + 60 s) = 161 s: 61 s after the spike, not quiet.
    result = p.detect_all(ahead, first.state)
    assert result.resolved == [] and list(result.state.open) == ["spike|spread_bps|symbol=AAA"]
    # An on-time event past the quiet period still resolves it, at the period's end.
    later = p.detect_all(frame([(3, 101 + QUIET, "BBB", 1.0)]), result.state)
    assert [(r.reason, r.resolved_at_ns) for r in later.resolved] == [("quiet", (100 + QUIET) * S)]


# ------------------------------------------------------------------ detector config changes


class AboveConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal["above"] = "above"
    severity: Literal["info", "warning", "critical"] = "warning"
    limit: float


class Above:
    """Condition detector with a pydantic config: level_shift per value > limit; counts its calls."""

    def __init__(self, config: AboveConfig) -> None:
        self.config, self.name = config, config.name

    def detect(self, batch: Batch, state: dict) -> list:
        state["calls"] = state.get("calls", 0) + 1
        hits = batch.observations[batch.observations["value"] > self.config.limit]
        return [_anomaly(self.name, "level_shift", "warning", row, self.config.limit) for row in hits.itertuples()]

    def tick(self, now_ns: int, state: dict) -> list:
        state["calls"] = state.get("calls", 0) + 1
        return []


def above(limit: float, name: str = "above") -> Above:
    return Above(AboveConfig(name=name, limit=limit))


def test_a_detector_whose_config_changed_restarts_and_resolves_its_anomalies_as_detector_changed():
    state = pipeline(above(5), above(5, name="other")).detect_all(frame([(1, 10, "AAA", 7.0)])).state
    assert set(state.open) == {"above|spread_bps|symbol=AAA", "other|spread_bps|symbol=AAA"}
    state = PipelineState.from_bytes(state.to_bytes())  # the fingerprints are persisted

    # Same names; "above" now has limit 6 (a new config), "other" is unchanged.
    changed = pipeline(above(6), above(5, name="other"))
    result = changed.detect_all(frame([(2, 20, "AAA", 8.0)]), state)
    [resolution] = result.resolved
    assert (resolution.anomaly.detector, resolution.resolved_at_ns, resolution.reason) == \
        ("above", 20 * S, "detector_changed")
    assert resolution.anomaly.detected_at_ns == 10 * S
    # The finding at 20 s on the same key opens a new anomaly; "other" just updates its open one.
    assert [(a.detector, a.detected_at_ns) for a in result.opened] == [("above", 20 * S)]
    assert [(u.anomaly.detector, u.occurrences) for u in result.updated] == [("other", 2)]
    assert result.state.open["above|spread_bps|symbol=AAA"].first_seen_at_ns == 20 * S
    # "above" started from {}: one call since the change; "other" kept its state.
    assert result.state.detectors == {"above": {"calls": 1}, "other": {"calls": 2}}

    # The new fingerprint is kept: the next call under the same config changes nothing.
    again = changed.detect_all(frame([(3, 30, "AAA", 1.0)]), result.state)
    assert again.resolved == [] and again.state.detectors == {"above": {"calls": 2}, "other": {"calls": 3}}


def test_a_changed_detector_resolves_at_the_tick_time_or_for_an_empty_batch_at_its_last_finding():
    state = pipeline(above(5)).detect_all(frame([(1, 10, "AAA", 7.0), (2, 15, "AAA", 9.0)])).state
    ticked = pipeline(above(1)).tick(100 * S, PipelineState.from_bytes(state.to_bytes()))
    assert [(r.reason, r.resolved_at_ns) for r in ticked.resolved] == [("detector_changed", 100 * S)]
    assert ticked.state.open == {} and ticked.state.detectors == {"above": {"calls": 1}}
    # An empty batch has no time: the anomaly resolves at the last time it was seen (15 s).
    empty = pipeline(above(1)).detect_all(frame([]), state)
    assert [(r.reason, r.resolved_at_ns) for r in empty.resolved] == [("detector_changed", 15 * S)]


def test_a_state_without_fingerprints_adopts_the_current_configs():
    state = pipeline(above(5)).detect_all(frame([(1, 10, "AAA", 7.0)])).state
    state.fingerprints = {}  # written before fingerprints existed
    result = pipeline(above(6)).detect_all(frame([(2, 20, "AAA", 8.0)]), state)
    assert result.resolved == [] and result.state.detectors == {"above": {"calls": 2}}
    assert list(result.state.fingerprints) == ["above"]
