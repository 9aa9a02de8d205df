"""The detection benchmark: its stream and labels, its matching and scoring, and a tiny run.

No timing is asserted: only that the labels say what was injected, that findings are scored
as the benchmark's docstring defines, and that the script runs end to end and reports its
fields (with a real PostgreSQL database for the detect.batch throughput)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.detection import (
    choose_settings,
    findings_frame,
    match,
    point_findings,
    quality,
    replay,
    run_stream,
    train_models,
    tuned,
)
from benchmarks.detection_data import KIND_METRICS, StreamShape, generate
from tradewatch.domain.detection.anomaly import Anomaly
from tradewatch.domain.detection.event_frame import EVENT_COLUMNS
from tradewatch.domain.detection.ewma import EwmaConfig
from tradewatch.domain.detection.loss_streak import LossStreakConfig
from tradewatch.domain.detection.model_detector import ModelDetectorConfig
from tradewatch.domain.detection.pipeline import DetectionPipeline, default_pipeline_config
from tradewatch.domain.detection.rejection_spike import RejectionSpikeConfig
from tradewatch.domain.detection.zscore import ZScoreConfig

ROOT = Path(__file__).resolve().parent.parent
NS = 1_000_000_000
SHORT = StreamShape().time_scaled(0.1)  # anomalies every 9 s after a 90 s warm-up


@pytest.fixture(scope="module")
def pair():
    """The same seed and tag with and without anomalies: they differ by the injections only."""
    labelled = generate(30_000, 5, shape=SHORT, stream_tag=1)
    clean = generate(30_000, 5, shape=SHORT, stream_tag=1, anomalies=False)
    return labelled, clean


def _slippage(frame: pd.DataFrame) -> np.ndarray:
    sign = np.where(frame["side"] == "buy", 1.0, -1.0)
    return sign * (frame["price"] - frame["arrival_price"]).to_numpy() / frame["arrival_price"].to_numpy() * 1e4


# ----------------------------------------------------------------------------- the stream


def test_the_stream_is_an_event_frame_in_time_order(pair):
    events = pair[0].events
    assert list(events.columns) == list(EVENT_COLUMNS)
    assert len(events) == 30_000
    assert events["seq"].tolist() == list(range(30_000))
    assert (np.diff(events["occurred_at_ns"].to_numpy()) >= 0).all()
    assert events["event_id"].is_unique
    uuid.UUID(events["event_id"].iloc[0])
    assert events["symbol"].dtype == object and events["symbol"].isna().any()  # None where there is none
    assert set(events["event_type"]) == {"market_data", "order", "fill", "position_update", "system"}
    assert set(events.loc[events["event_type"] == "order", "status"]) == {"submitted", "accepted", "rejected"}
    # Every accepted order is filled once; a fill follows its order's submission.
    orders = events[events["event_type"] == "order"]
    fills = events[events["event_type"] == "fill"]
    submitted = orders[orders["status"] == "submitted"].set_index("order_id")["occurred_at_ns"]
    later = fills.set_index("order_id")["occurred_at_ns"]
    both = later.index.intersection(submitted.index)
    assert len(both) > 0 and (later[both] > submitted[both]).all()


def test_every_second_fill_of_a_book_closes_a_round_trip(pair):
    positions = pair[1].events
    positions = positions[positions["event_type"] == "position_update"]
    book = positions[(positions["strategy_id"] == "momentum") & (positions["symbol"] == "SYM03")]
    quantity = book["quantity"].to_numpy()
    # open (a position), close (flat), open, close ...
    assert (quantity[1::2] == 0).all() and (quantity[0::2] != 0).all()
    realized = book["realized_pnl"].to_numpy()
    opens_after_a_close = realized[2::2]
    np.testing.assert_array_equal(opens_after_a_close, realized[1::2][: len(opens_after_a_close)])  # unchanged


def test_labels_say_what_was_injected(pair):
    labelled, clean = pair
    labels = labelled.labels
    assert set(labels["kind"]) == set(KIND_METRICS)  # every kind appears in 30,000 short-scaled events
    a = labelled.events.set_index("event_id")
    b = clean.events.set_index("event_id")
    for label in labels.itertuples():
        assert label.start_ns <= label.end_ns
        assert tuple(label.metrics) == KIND_METRICS[label.kind]
        if label.kind in ("slippage_spike", "slippage_level_shift"):
            ids = list(label.event_ids)
            if label.kind == "slippage_spike":
                assert len(ids) == 1
            # The labelled fills cost exactly k local standard deviations more (prices have 4 decimals).
            difference = _slippage(a.loc[ids]) - _slippage(b.loc[ids])
            np.testing.assert_allclose(difference, label.magnitude * label.sigma, atol=0.05 * label.sigma + 0.01)
            assert label.entity in label.symbols
        elif label.kind == "stale_feed":
            feed = label.entity
            during = labelled.events[(labelled.events["source"] == feed)
                                     & (labelled.events["occurred_at_ns"] >= label.start_ns)
                                     & (labelled.events["occurred_at_ns"] < label.end_ns)]
            assert during.empty  # silent: no quote, no heartbeat
            assert (label.end_ns - label.start_ns) / NS == pytest.approx(label.silence_seconds)
            assert np.isnan(label.magnitude)
        elif label.kind == "loss_streak":
            assert label.shift == pytest.approx(-label.magnitude * label.sigma)
            assert label.strategies == (label.entity,)
    magnitudes = set(labels["magnitude"].dropna())
    assert magnitudes <= {2.5, 3.0, 4.0, 6.0, 10.0}


def test_a_clean_stream_has_no_labels():
    stream = generate(5_000, 1, anomalies=False, shape=SHORT)
    assert stream.labels.empty and len(stream.events) == 5_000


# ----------------------------------------------------------------------------- matching and scoring


def _labels() -> pd.DataFrame:
    return pd.DataFrame([
        {"anomaly_id": 0, "kind": "slippage_level_shift", "magnitude": 4.0, "silence_seconds": np.nan,
         "start_ns": 100 * NS, "end_ns": 200 * NS, "entity_kind": "symbol", "entity": "AAA", "symbols": ("AAA",),
         "strategies": ("alpha",), "sources": ("engine-alpha",), "metrics": KIND_METRICS["slippage_level_shift"]},
        {"anomaly_id": 1, "kind": "stale_feed", "magnitude": np.nan, "silence_seconds": 40.0,
         "start_ns": 1_000 * NS, "end_ns": 1_040 * NS, "entity_kind": "source", "entity": "feed-1",
         "symbols": ("AAA",), "strategies": (), "sources": ("feed-1",), "metrics": KIND_METRICS["stale_feed"]},
        {"anomaly_id": 2, "kind": "loss_streak", "magnitude": 10.0, "silence_seconds": np.nan,
         "start_ns": 5_000 * NS, "end_ns": 5_010 * NS, "entity_kind": "strategy_id", "entity": "alpha",
         "symbols": ("AAA",), "strategies": ("alpha",), "sources": ("engine-alpha",),
         "metrics": KIND_METRICS["loss_streak"]},
    ])


def _finding(detector: str, metric: str, entity_kind: str, entity: str, at_seconds: float) -> Anomaly:
    return Anomaly(detector=detector, anomaly_type="spike", severity="warning", metric=metric, observed=1.0,
                   baseline=0.0, score=5.0, entity_kind=entity_kind, entity=entity,
                   detected_at_ns=int(at_seconds * NS))


def test_match_needs_the_entity_a_metric_of_the_label_and_the_window():
    findings = findings_frame([
        _finding("z", "slippage_bps", "symbol", "AAA", 130),  # matches label 0 after 30 s
        _finding("ewma", "slippage_bps", "strategy_id", "alpha", 150),  # the label's strategy: matches
        _finding("z", "slippage_bps", "symbol", "BBB", 130),  # another symbol
        _finding("z", "spread_bps", "symbol", "AAA", 130),  # a metric the label does not move
        _finding("z", "slippage_bps", "symbol", "AAA", 99),  # before the start
        _finding("z", "slippage_bps", "symbol", "AAA", 200 + 60),  # within the 60 s grace
        _finding("z", "slippage_bps", "symbol", "AAA", 200 + 61),  # after it
        _finding("stale", "feed_silence_seconds", "source", "feed-1", 1_030),  # label 1 after 30 s
    ])
    matched, detections = match(findings, _labels(), grace_ns=60 * NS)
    assert matched.tolist() == [True, True, False, False, False, True, False, True]
    first = {(row.anomaly_id, row.detector): row.detected_at_ns / NS for row in detections.itertuples()}
    assert first == {(0, "z"): 130, (0, "ewma"): 150, (1, "stale"): 1_030}


def test_quality_is_precision_recall_f1_and_time_to_detect():
    findings = findings_frame([
        _finding("z", "slippage_bps", "symbol", "AAA", 130),
        _finding("stale", "feed_silence_seconds", "source", "feed-1", 1_010),
        _finding("z", "slippage_bps", "symbol", "AAA", 3_000),  # a false alarm
        _finding("z", "slippage_bps", "symbol", "BBB", 3_000),  # another
    ])
    labels = _labels()
    matched, detections = match(findings, labels, grace_ns=60 * NS)
    result = quality(findings, matched, detections, labels, kinds=("slippage_level_shift", "loss_streak"))
    assert result["findings"] == 4 and result["false_alarms"] == 2
    assert result["precision"] == 0.5
    assert result["recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert result["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3), abs=1e-4)
    assert result["mean_time_to_detect_seconds"] == 20.0  # (30 s + 10 s) / 2
    assert result["recall_by_kind"] == {"slippage_level_shift": 1.0, "loss_streak": 0.0, "stale_feed": 1.0}
    assert result["recall_by_magnitude"] == {"4": 1.0, "10": 0.0}
    assert result["recall_by_silence_seconds"] == {"40": 1.0}
    assert result["visible_recall"] == 0.5  # of the level shift and the loss streak, one


def test_pyod_flags_are_deduplicated_like_point_anomalies():
    meta = pd.DataFrame({"symbol": ["AAA", "AAA", "AAA", "AAA", "BBB"],
                         "occurred_at_ns": np.array([0, 100, 500, 1_000, 50]) * NS})
    findings = point_findings("pyod", meta, np.array([True, True, True, True, True]), quiet_ns=300 * NS)
    # AAA: 0 opens, 100 is within 300 s of it, 500 is 400 s after 100, 1000 500 s after 500.
    assert sorted(zip(findings["entity"], findings["detected_at_ns"] // NS)) == [
        ("AAA", 0), ("AAA", 500), ("AAA", 1_000), ("BBB", 50)]
    assert set(findings["metric"]) == {"fill_features"}


def test_settings_are_chosen_for_f1_within_the_false_alarm_budget():
    # Two detectors, each conservative ("@0") or eager ("@1"); F1 and clean false alarms by hand.
    table = {("a@0", "b@0"): (0.2, 0), ("a@1", "b@0"): (0.5, 6), ("a@0", "b@1"): (0.6, 1), ("a@1", "b@1"): (0.7, 7)}

    def evaluate(choice):
        return table[(choice["a"], choice["b"])]

    options = {"a": ["a@0", "a@1"], "b": ["b@0", "b@1"]}
    conservative = {"a@0": 1.0, "a@1": 0.0, "b@0": 1.0, "b@1": 0.0}
    assert choose_settings(options, conservative, evaluate, allowed=7) == {"a": "a@1", "b": "b@1"}
    assert choose_settings(options, conservative, evaluate, allowed=6) == {"a": "a@0", "b": "b@1"}
    assert choose_settings(options, conservative, evaluate, allowed=0) == {"a": "a@0", "b": "b@0"}


def test_tuning_scales_a_detectors_thresholds():
    z = ZScoreConfig(name="z", kind="zscore", metric="slippage_bps", threshold=4.0, critical_threshold=8.0)
    assert tuned(z, 1.5, "z@1").model_dump() == {**z.model_dump(), "name": "z@1", "threshold": 6.0,
                                                 "critical_threshold": 12.0}
    streak = tuned(LossStreakConfig(name="l", max_consecutive_losses=6, drawdown_usd=1000.0), 0.25)
    assert (streak.max_consecutive_losses, streak.drawdown_usd) == (2, 250.0)  # 1.5 rounds to 2
    rejection = tuned(RejectionSpikeConfig(name="r", threshold=0.6, clear_below=0.3), 2.0)
    assert (rejection.threshold, rejection.clear_below) == (1.0, 0.5)  # a fraction stays one
    model = tuned(ModelDetectorConfig(name="m", kind="model", algorithm="isolation_forest"), 1e-3, "m@2")
    assert (model.target_false_alarm_rate, model.model_name) == (1e-3, "m@2")
    ewma = tuned(EwmaConfig(name="e", metric="spread_bps", threshold=4.0), 0.75)
    assert ewma.threshold == 3.0 and ewma.critical_threshold is None


def test_the_split_replay_opens_what_a_tick_by_tick_replay_opens(pair):
    """run_stream replays the tick-driven detectors tick by tick and the rest in big batches:
    the anomalies opened must be those of the whole pipeline replayed tick by tick."""
    stream = pair[0]
    default = default_pipeline_config()
    # Short-stream scale: silences of 10 to 32 s, quiet periods of 30 s.
    # A usable model: a model_unusable notice is dated at its batch's last event, the one
    # finding whose time depends on the cut.
    scale = {"stale_feed": {"max_silence_seconds": 8.0}, "model": {"min_samples": 100, "target_false_alarm_rate": 0.01}}
    detectors = tuple(c.model_copy(update=scale.get(c.kind, {})) for c in default.detectors)
    config = default.model_copy(update={"quiet_seconds": 30.0, "detectors": detectors})
    models = train_models(config, stream)
    pipeline = DetectionPipeline(config)
    pipeline.set_models(models)
    whole = replay(pipeline, stream.events, tick_seconds=5.0, batch_events=5_000, start_ns=stream.start_ns)
    split = run_stream(config, models, stream, tick_seconds=5.0, batch_events=5_000)
    assert len(whole.findings) > 10
    assert {"stale_feed", "slippage_level_shift", "fill_isolation_forest"} <= set(whole.findings["detector"])
    assert "model_unusable" not in set(whole.findings["anomaly_type"])
    order = ["detector", "metric", "entity", "detected_at_ns"]

    def opened(findings: pd.DataFrame) -> pd.DataFrame:
        # Not severity: an opened anomaly carries the worst severity reached within its call, so
        # an escalation in the same (bigger) batch shows in it. Scoring never reads it.
        return findings.drop(columns="severity").sort_values(order).reset_index(drop=True)

    pd.testing.assert_frame_equal(opened(whole.findings), opened(split.findings))


# ----------------------------------------------------------------------------- a tiny run


def test_the_benchmark_runs_and_reports_its_fields(postgres_admin):
    result = subprocess.run(
        [sys.executable, "benchmarks/detection.py", "--events", "30000", "--fit-clean-events", "20000",
         "--clean-events", "20000", "--throughput-events", "5000", "--rounds", "1", "--time-scale", "0.1",
         "--grid", "1,2", "--rule-grid", "1,2"],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    last = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("pipeline_f1", "best_pyod_f1", "false_alarms_per_100k_clean_events", "events_per_second",
                "detect_all_events_per_second", "recall_by_magnitude", "recall_by_kind", "detectors", "pyod",
                "fitted_settings", "targets"):
        assert key in last, key
    assert last["clean_events"] == 20_000 and last["events_scored"] == 30_000
    assert last["throughput_database"]["events"] == 5_000 and last["events_per_second"] > 0
    assert set(last["pyod"]) == {"pyod_iforest", "pyod_ecod"}
    assert 0.0 <= last["pipeline_f1"] <= 1.0
    pipeline = last["pipeline"]
    assert pipeline["labels"] == last["labels_scored"] > 0
    assert pipeline["findings"] == sum(d["findings"] for d in last["detectors"].values())
    assert pipeline["false_alarms"] + pipeline["matched_findings"] == pipeline["findings"]
    assert set(last["recall_by_magnitude"]) <= {"2.5", "3", "4", "6", "10"}
    assert last["fitted_settings"] and all(v in (1.0, 2.0) or v < 0.1 for v in last["fitted_settings"].values())
