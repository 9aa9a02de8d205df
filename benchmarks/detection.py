"""Benchmark: anomaly detection quality and throughput, against pyod's IForest and ECOD.

Data (benchmarks/detection_data.py): a synthetic trail of market data, orders, fills, position
updates and heartbeats with an intraday U-shaped activity and spread pattern, Student-t
slippage and pnl, and volatility regimes; anomalies injected and labelled (slippage spikes,
slippage and spread level shifts, latency excursions, loss streaks at 2.5, 3, 4, 6 and 10
local standard deviations; stale feeds silent 20 to 320 s). Four streams, one per day:

    seed A, labelled (--events)           fit the thresholds, train the models
    seed A, clean    (--fit-clean-events) the false-alarm budget while fitting
    seed B, labelled (--events)           score: precision, recall, F1, time to detect
    seed B, clean    (--clean-events)     score: false alarms per 100,000 clean events

Replay. ``DetectionPipeline.detect_all`` runs over a stream as the deployment runs it, the
state carried from call to call; findings are the anomalies the pipeline *opens*
(DetectionResult.opened): what would page. The detectors that act on the beat's tick
(stale_feed, loss_streak) replay tick by tick: the events between two ticks (every
--tick-seconds of event time, 5 s as in beat_schedule.py), then ``tick(now)``. The others,
whose findings do not depend on where the trail is cut (each module says so; the pipeline's
quiet periods are measured on event times), replay as a second pipeline in batches of
--batch-events (5,000), which opens the same anomalies with a fraction of the calls (a model
detector's scoring costs ~20 ms a call however few fills it has).

Matching. A label (an injected anomaly) is detected by an opened anomaly when its metric is
one the label moves (detection_data.KIND_METRICS), its entity is one the label touches (the
symbol, the strategies whose fills changed, or the source) and it was detected in
[start, end + --grace-seconds]. precision = opened anomalies that match a label / opened
anomalies (an unmatched one is a false alarm); recall = labels detected / labels; F1 their
harmonic mean; time to detect = first matching detected_at - label start (mean, seconds).
Per detector and for the whole pipeline (the union of its detectors); recall per kind and per
magnitude. A detector's "visible" recall counts only the kinds whose metrics it watches.

Fitting (seed A). Every detector of ``default_pipeline_config()`` (or --config) with a
threshold gets a grid of settings: multiples of its default threshold (--grid, 0.75 to 2, for
the statistical detectors, whose thresholds are in standard deviations, MADs or IQRs of the
data; --rule-grid, 0.1 to 2, for the rules, whose limits are in bps, seconds, trades or USD),
and for a model detector its target_false_alarm_rate (1e-2 to 1e-4: the training-score
quantile its threshold is calibrated to). All grid copies run side by side over seed A and
clean seed A (copies are independent: an anomaly's key names its detector). From the most
conservative settings, coordinate ascent and greedy moves (best F1 gain per false alarm added;
``choose_settings``) pick the settings that maximise the pipeline's F1 on seed A subject to at
most --false-alarm-budget (0.6) false alarms per 100,000 events of clean seed A: below the
target of 1, because alarm counts vary between seeds like Poisson counts. The fitted
configuration is the default one with those thresholds; they are printed in the result.
Model detectors' models are trained on the fills of labelled seed A (training.fit_models,
seed 0), as detect.retrain trains them on the trail, anomalies included.

pyod. IForest and ECOD (pyod, a development-only dependency) are trained on the same per-fill
feature vectors (features.fill_features) of seed A, NaN imputed with the training medians; a
fill scoring above the threshold opens a finding on its symbol, deduplicated like the
pipeline's point anomalies (no new finding on a symbol within quiet_seconds of the last one).
The threshold is chosen on seed A like the pipeline's (the training-score quantile, 1 - 1e-2 to
1 - 1e-4, maximising F1 within the false-alarm budget on clean seed A), then scored on seed B
with the same matching. They
see fills only: their recall is given on the kinds that change fills and over all labels.

Throughput. (1) ``detect_all`` alone over frames: --throughput-events of clean seed B in
batches of 5,000, no ticks, events / second. (2) Through ``detect.batch``'s path: the
--throughput-events of a labelled stream are ingested into a PostgreSQL database created for
the run (AuditStore.ingest, batches of 5,000), then ``DetectionStore(engine).apply_pending
(pipeline)`` drains them (reading the trail, running the pipeline, writing anomalies, state
and cursor in one transaction per chunk), --rounds times from an empty detector state; the
median is reported. Needs PostgreSQL (TRADEWATCH_TEST_POSTGRES_URL, default
postgresql://postgres@127.0.0.1:5432/postgres); --no-database skips (2).

Targets (the issue's): pipeline F1 >= 0.8 and >= the best pyod F1, <= 1 false alarm per
100,000 clean events, >= 20,000 events/s through detect.batch. Reported, never asserted.

Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.detection_data import KIND_METRICS, KINDS, NS, START_NS, Stream, StreamShape, generate  # noqa: E402
from tradewatch.domain.detection.features import fill_features  # noqa: E402
from tradewatch.domain.detection.observations import MetricExtractor  # noqa: E402
from tradewatch.domain.detection.pipeline import (  # noqa: E402
    DetectionPipeline,
    PipelineConfig,
    default_pipeline_config,
)

DAY_NS = 86_400 * NS
#: What fitting tries per detector. Statistical detectors' thresholds are in standard
#: deviations (MADs, IQRs) of the data itself: a narrow grid of multiples of the default. The
#: rules' limits are in the metric's own unit (bps, seconds, trades, USD), set for an operator:
#: a wide one. A model detector's sensitivity is its calibration quantile: the
#: target_false_alarm_rate grid (the training-score quantile 1 - rate is its threshold, times
#: threshold_margin), the same quantiles the pyod baselines choose from.
GRID = (0.75, 1.0, 1.25, 1.5, 2.0)
RULE_GRID = (0.1, 0.25, 0.5, 1.0, 2.0)
MODEL_RATES = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4)
STATISTICAL_KINDS = frozenset({"zscore", "robust_zscore", "iqr", "ewma"})
FINDING_COLUMNS = ("detector", "anomaly_type", "metric", "entity_kind", "entity", "detected_at_ns", "score", "severity")
FILL_KINDS = tuple(kind for kind, metrics in KIND_METRICS.items() if "fill_features" in metrics)

# ----------------------------------------------------------------------------- thresholds


# The fields that set each kind's sensitivity, scaled together by one multiple ("critical" ones
# keep their ratio to the threshold). Integer fields are rounded.
THRESHOLD_FIELDS: dict[str, tuple[str, ...]] = {
    "zscore": ("threshold", "critical_threshold"),
    "robust_zscore": ("threshold", "critical_threshold"),
    "iqr": ("threshold", "critical_threshold"),
    "ewma": ("threshold", "critical_threshold"),
    "slippage_spike": ("threshold_bps", "critical_bps"),
    "latency_excursion": ("threshold_seconds",),
    "loss_streak": ("max_consecutive_losses", "drawdown_usd"),
    "rejection_spike": ("threshold", "clear_below"),
    "stale_feed": ("max_silence_seconds",),
    "clock_skew": ("tolerance_seconds",),
    "model": ("target_false_alarm_rate",),
}


def tunable(config) -> bool:
    return config.kind in THRESHOLD_FIELDS


def settings(config, grid: tuple[float, ...], rule_grid: tuple[float, ...],
             rates: tuple[float, ...] = MODEL_RATES) -> tuple[float, ...]:
    """The values fitting tries for ``config``: model rates, else threshold multiples."""
    if config.kind == "model":
        return rates
    return grid if config.kind in STATISTICAL_KINDS else rule_grid


def conservativeness(config, value: float) -> float:
    """Orders a detector's settings from eager to conservative (larger = fewer alarms)."""
    return -value if config.kind == "model" else value


def tuned(config, value: float, name: str | None = None):
    """``config`` at setting ``value`` (a model's target_false_alarm_rate, else a multiple of
    its threshold fields), renamed to ``name`` if given."""
    update: dict[str, Any] = {} if name is None else {"name": name}
    if config.kind == "model":
        update["target_false_alarm_rate"] = value
        if name is not None:
            update["model_name"] = name  # each copy gets its own (re-thresholded) model
    else:
        for field in THRESHOLD_FIELDS.get(config.kind, ()):
            current = getattr(config, field)
            if current is None:
                continue
            if isinstance(current, int) and not isinstance(current, bool):
                update[field] = max(1, int(round(current * value)))
            else:
                update[field] = float(current) * value
        if config.kind == "rejection_spike":  # a fraction: keep it one, clear_below below it
            update["threshold"] = min(1.0, update.get("threshold", config.threshold))
            update["clear_below"] = min(update.get("clear_below", config.clear_below), 0.5 * update["threshold"])
    data = config.model_dump()
    data.update(update)
    return type(config)(**data)


def threshold_values(config) -> dict[str, Any]:
    values = {field: getattr(config, field) for field in THRESHOLD_FIELDS.get(config.kind, ())}
    if config.kind == "model":
        values["threshold_margin"] = config.threshold_margin
    return values


def detector_metrics(config) -> tuple[str, ...]:
    """The metrics a detector's anomalies carry."""
    kind = config.kind
    if kind == "slippage_spike":
        return ("slippage_bps",)
    if kind == "loss_streak":
        return ("round_trip_pnl_usd",) + (("drawdown_speed_usd",) if config.drawdown_usd is not None else ())
    if kind == "rejection_spike":
        return ("rejection_rate",)
    if kind == "stale_feed":
        return ("feed_silence_seconds",)
    if kind == "clock_skew":
        return ("clock_skew_seconds",)
    if kind == "model":
        return ("fill_features",)
    metric = getattr(config, "metric", None)
    return (metric,) if metric else ()


def visible_kinds(metrics: Iterable[str]) -> tuple[str, ...]:
    metrics = set(metrics)
    return tuple(kind for kind in KINDS if metrics & set(KIND_METRICS[kind]))


# ----------------------------------------------------------------------------- models


def train_models(config: PipelineConfig, stream: Stream) -> dict[str, Any]:
    """Models for the config's model detectors, trained (training.fit_models, seed 0) on the
    fills of ``stream``, as detect.retrain trains them on the trail (anomalies included)."""
    from tradewatch.domain.detection.training import fit_models

    configs = [c for c in config.detectors if c.kind == "model"]
    if not configs:
        return {}
    models = fit_models(configs, stream.events, trained_at_ns=stream.end_ns + 1, window_start_ns=stream.start_ns,
                        window_end_ns=stream.end_ns + 1, seed=0,
                        extractor=MetricExtractor(**config.extractor.model_dump()))
    return {model.name: model for model in models}


def grid_models(base: PipelineConfig, grid: PipelineConfig, stream: Stream) -> dict[str, Any]:
    """One model per base model detector, then a copy per grid copy with the threshold its
    target_false_alarm_rate calibrates to on the same training scores (trained_model's rule:
    threshold_margin * Q(1 - rate)); the forest is the same (same seed, same rows)."""
    from tradewatch.domain.detection.trained_model import calibrate_threshold
    from tradewatch.domain.detection.training import window_features

    trained = train_models(base, stream)
    bases = {c.name: c for c in base.detectors if c.kind == "model"}
    observations = MetricExtractor(**base.extractor.model_dump()).extract(stream.events, {})
    training_scores: dict[str, np.ndarray] = {}
    models = {}
    for copy in grid.detectors:
        if copy.kind != "model":
            continue
        original = bases[copy.name.split("@")[0]]
        model = trained.get(original.effective_model_name)
        if model is None:
            continue
        if original.name not in training_scores:
            X = window_features(stream.events, observations, size_window=original.size_window,
                                window_start_ns=model.window_start_ns, window_end_ns=model.window_end_ns).X
            training_scores[original.name] = model.score(X)
        threshold, _ = calibrate_threshold(training_scores[original.name], copy.target_false_alarm_rate,
                                           copy.threshold_margin)
        models[copy.effective_model_name] = dataclasses.replace(model, name=copy.effective_model_name,
                                                                threshold=threshold)
    return models


# ----------------------------------------------------------------------------- replay


@dataclass
class Replay:
    findings: pd.DataFrame
    events: int
    seconds: float
    calls: int


def findings_frame(anomalies: list) -> pd.DataFrame:
    return pd.DataFrame(
        [(a.detector, a.anomaly_type, a.metric, a.entity_kind, a.entity, a.detected_at_ns, a.score, a.severity)
         for a in anomalies], columns=list(FINDING_COLUMNS),
    ).astype({"detected_at_ns": "int64", "score": "float64"})


def replay(pipeline: DetectionPipeline, events: pd.DataFrame, *, tick_seconds: float | None, batch_events: int,
           start_ns: int) -> Replay:
    """Run ``events`` through the pipeline: between ticks (every ``tick_seconds`` of event time
    from ``start_ns``; None = no ticks) the interval's events in batches of <= ``batch_events``."""
    occurred = events["occurred_at_ns"].to_numpy()
    n = len(events)
    state = pipeline.new_state()
    opened: list = []
    calls = 0
    if tick_seconds is None:
        bounds = list(range(0, n, batch_events)) + [n]
        ticks = [None] * (len(bounds) - 1)
    else:
        # Tick k is at start_ns + k * tick_ns; interval k holds the events before it and after tick k - 1.
        tick_ns = int(tick_seconds * NS)
        interval = (occurred - start_ns) // tick_ns
        cuts = np.union1d(np.flatnonzero(np.diff(interval)) + 1, np.arange(batch_events, n, batch_events))
        bounds = [int(b) for b in np.r_[0, cuts, n]]
        ticks = []
        for hi in bounds[1:]:
            # After a batch: the ticks between its last event and the next event (none when the
            # next event is in the same interval; several across a gap in the stream).
            last = int(interval[hi - 1])
            following = int(interval[hi]) if hi < n else last + 1
            ticks.append([start_ns + (k + 1) * tick_ns for k in range(last, following)])
    started = time.perf_counter()
    for (lo, hi), due in zip(zip(bounds[:-1], bounds[1:]), ticks):
        result = pipeline.detect_all(events.iloc[lo:hi], state)
        opened += result.opened
        calls += 1
        for now_ns in due or ():
            opened += pipeline.tick(now_ns, state).opened
            calls += 1
    seconds = time.perf_counter() - started
    return Replay(findings_frame(opened), n, seconds, calls)


#: Detector kinds that act on the beat's tick: stale_feed reports only there, loss_streak clears
#: a recovered drawdown there. The other detectors' findings do not depend on where the trail is
#: cut into batches (each module documents it) and their tick does nothing.
TICK_KINDS = frozenset({"stale_feed", "loss_streak"})


def run_stream(config: PipelineConfig, models: dict, stream: Stream, *, tick_seconds: float,
               batch_events: int) -> Replay:
    """The opened anomalies of ``config`` over ``stream`` as the deployment would open them.

    The detectors of TICK_KINDS replay tick by tick (the events between two ticks, then the tick);
    the rest, as one pipeline in batches of ``batch_events`` (the same anomalies as tick by tick:
    their findings do not depend on the cut and the pipeline's quiet periods are measured on
    event times, so the cut does not move those either), which saves thousands of calls of the
    fixed per-call cost (a model detector's scoring is ~20 ms however few fills a batch has).
    The one exception, a model detector's model_unusable notice (dated at its batch's last
    event), does not occur here: the models are trained on a million-event stream."""
    ticking = tuple(c for c in config.detectors if c.kind in TICK_KINDS)
    batched = tuple(c for c in config.detectors if c.kind not in TICK_KINDS)
    parts = []
    for detectors, seconds in ((batched, None), (ticking, tick_seconds)):
        if not detectors:
            continue
        pipeline = DetectionPipeline(config.model_copy(update={"detectors": detectors}))
        pipeline.set_models(models)
        parts.append(replay(pipeline, stream.events, tick_seconds=seconds, batch_events=batch_events,
                            start_ns=stream.start_ns))
    findings = pd.concat([p.findings for p in parts], ignore_index=True) if parts else findings_frame([])
    return Replay(findings.sort_values("detected_at_ns", kind="stable").reset_index(drop=True), len(stream.events),
                  sum(p.seconds for p in parts), sum(p.calls for p in parts))


# ----------------------------------------------------------------------------- matching and scoring


def match(findings: pd.DataFrame, labels: pd.DataFrame, grace_ns: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Which findings match a label, and each (label, detector)'s first matching detection.

    Returns (matched: bool per finding, detections: columns anomaly_id, detector, detected_at_ns)."""
    matched = np.zeros(len(findings), dtype=bool)
    if len(findings) == 0 or len(labels) == 0:
        return matched, pd.DataFrame(columns=["anomaly_id", "detector", "detected_at_ns"])
    at = findings["detected_at_ns"].to_numpy()
    metric = findings["metric"].to_numpy(dtype=object)
    kind = findings["entity_kind"].to_numpy(dtype=object)
    entity = findings["entity"].to_numpy(dtype=object)
    detector = findings["detector"].to_numpy(dtype=object)
    rows = []
    for label in labels.itertuples(index=False):
        window = (at >= label.start_ns) & (at <= label.end_ns + grace_ns)
        if not window.any():
            continue
        candidates = np.flatnonzero(window)
        ok = np.isin(metric[candidates], list(label.metrics))
        ek, en = kind[candidates], entity[candidates]
        same = ((ek == "symbol") & np.isin(en, list(label.symbols))) \
            | ((ek == "strategy_id") & np.isin(en, list(label.strategies))) \
            | ((ek == "source") & np.isin(en, list(label.sources)))
        hits = candidates[ok & same]
        if len(hits) == 0:
            continue
        matched[hits] = True
        first = pd.DataFrame({"detector": detector[hits], "at": at[hits]}).groupby("detector")["at"].min()
        rows += [(label.anomaly_id, name, int(value)) for name, value in first.items()]
    return matched, pd.DataFrame(rows, columns=["anomaly_id", "detector", "detected_at_ns"])


def f1(precision: float, recall: float) -> float:
    return 0.0 if not precision + recall > 0 else 2 * precision * recall / (precision + recall)


def _ratio(a: float, b: float) -> float:
    return float(a) / float(b) if b else float("nan")


def _r(value: float, digits: int = 4) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def quality(findings: pd.DataFrame, matched: np.ndarray, detections: pd.DataFrame, labels: pd.DataFrame,
            kinds: Iterable[str] | None = None) -> dict[str, Any]:
    """Precision, recall (overall, per kind, per magnitude), F1 and mean time to detect of a set
    of findings (already matched); ``kinds``: also the recall on those kinds only ("visible")."""
    total = len(findings)
    hits = int(matched.sum())
    precision = _ratio(hits, total) if total else float("nan")
    first = detections.groupby("anomaly_id")["detected_at_ns"].min() if len(detections) else pd.Series(dtype="int64")
    detected = labels["anomaly_id"].isin(first.index).to_numpy()
    recall = _ratio(detected.sum(), len(labels))
    delays = (first.reindex(labels["anomaly_id"]).to_numpy(dtype=np.float64) - labels["start_ns"].to_numpy()) / NS
    body: dict[str, Any] = {
        "findings": total, "matched_findings": hits, "false_alarms": total - hits,
        "labels": len(labels), "detected": int(detected.sum()),
        "precision": _r(precision), "recall": _r(recall), "f1": _r(f1(0.0 if total == 0 else precision, recall)),
        "mean_time_to_detect_seconds": _r(float(np.nanmean(delays)) if detected.any() else float("nan"), 2),
        "recall_by_kind": {kind: _r(detected[(labels["kind"] == kind).to_numpy()].mean())
                           for kind in KINDS if (labels["kind"] == kind).any()},
        "recall_by_magnitude": {f"{m:g}": _r(detected[(labels["magnitude"] == m).to_numpy()].mean())
                                for m in sorted(labels["magnitude"].dropna().unique())},
        "recall_by_silence_seconds": {f"{s:g}": _r(detected[(labels["silence_seconds"] == s).to_numpy()].mean())
                                      for s in sorted(labels["silence_seconds"].dropna().unique())},
        "recall_by_kind_and_magnitude": {
            kind: {f"{m:g}": _r(detected[((labels["kind"] == kind) & (labels["magnitude"] == m)).to_numpy()].mean())
                   for m in sorted(labels.loc[labels["kind"] == kind, "magnitude"].dropna().unique())}
            for kind in KINDS if labels.loc[labels["kind"] == kind, "magnitude"].notna().any()},
        "mean_time_to_detect_seconds_by_kind": {
            kind: _r(float(np.nanmean(delays[mask])), 2)
            for kind in KINDS if (mask := (labels["kind"] == kind).to_numpy() & detected).any()},
    }
    if kinds is not None:
        seen = labels["kind"].isin(list(kinds)).to_numpy()
        visible_recall = _ratio(detected[seen].sum(), seen.sum())
        body["visible_kinds"] = list(kinds)
        body["visible_recall"] = _r(visible_recall)
        body["visible_f1"] = _r(f1(0.0 if total == 0 else precision, visible_recall)) if seen.any() else None
    return body


def scorecard(findings: pd.DataFrame, labels: pd.DataFrame, grace_ns: int, config: PipelineConfig) -> dict[str, Any]:
    """Pipeline and per-detector quality of one replay."""
    matched, detections = match(findings, labels, grace_ns)
    result = {"pipeline": quality(findings, matched, detections, labels), "detectors": {}}
    for detector in config.detectors:
        mine = (findings["detector"] == detector.name).to_numpy()
        result["detectors"][detector.name] = {
            "kind": detector.kind, **threshold_values(detector),
            **quality(findings[mine], matched[mine], detections[detections["detector"] == detector.name], labels,
                      kinds=visible_kinds(detector_metrics(detector))),
        }
    return result


def false_alarms(findings: pd.DataFrame, events: int) -> dict[str, Any]:
    by_detector = findings.groupby("detector").size().to_dict() if len(findings) else {}
    return {"events": events, "false_alarms": len(findings),
            "false_alarms_per_100k_events": _r(len(findings) / events * 1e5, 3),
            "by_detector": {k: int(v) for k, v in by_detector.items()}}


# ----------------------------------------------------------------------------- fitting


def grid_config(base: PipelineConfig, grid: tuple[float, ...],
                rule_grid: tuple[float, ...] = RULE_GRID) -> tuple[PipelineConfig, dict[str, tuple[str, float, float]]]:
    """Every tunable detector repeated once per setting (``settings``), named ``<name>@<i>``; the
    others once. ``origin``: copy name -> (detector name, setting, conservativeness)."""
    detectors, origin = [], {}
    for config in base.detectors:
        if not tunable(config):
            detectors.append(config)
            origin[config.name] = (config.name, 1.0, 0.0)
            continue
        for index, value in enumerate(settings(config, grid, rule_grid)):
            name = f"{config.name}@{index}"
            detectors.append(tuned(config, value, name))
            origin[name] = (config.name, value, conservativeness(config, value))
    return base.model_copy(update={"detectors": tuple(detectors)}), origin


def choose_settings(options: dict[str, list[str]], conservative: dict[str, float],
                    evaluate: Callable[[dict[str, str]], tuple[float, int]], allowed: float) -> dict[str, str]:
    """One option per detector maximising ``evaluate``'s F1 with its false alarms <= ``allowed``.

    Two searches from the most conservative option of each detector, the better result kept
    (higher F1, then fewer false alarms): (1) coordinate ascent, each detector in turn moved to
    its best feasible option with the others fixed; (2) greedy moves, each time the one with the
    best F1 gain per false alarm added (a move adding none first), so the budget goes where it
    buys the most detections rather than to whichever detector comes first; then (1) from there.
    Neither is exhaustive (the grid has options ** detectors points)."""
    start = {b: max(opts, key=conservative.__getitem__) for b, opts in options.items()}

    def ascent(choice: dict[str, str]) -> dict[str, str]:
        choice = dict(choice)
        for _ in range(3):
            changed = False
            for b, opts in options.items():
                keys = {}
                for option in opts:
                    score, alarms = evaluate({**choice, b: option})
                    feasible = alarms <= allowed
                    keys[option] = (feasible, score if feasible else -alarms, conservative[option])
                best = max(opts, key=keys.__getitem__)
                changed |= best != choice[b]
                choice[b] = best
            if not changed:
                break
        return choice

    def greedy(choice: dict[str, str]) -> dict[str, str]:
        choice = dict(choice)
        score, alarms = evaluate(choice)
        while True:
            best = None
            for b, opts in options.items():
                for option in opts:
                    if option == choice[b]:
                        continue
                    trial_score, trial_alarms = evaluate({**choice, b: option})
                    gain = trial_score - score
                    if trial_alarms > allowed or gain <= 1e-12:
                        continue
                    efficiency = gain / max(trial_alarms - alarms, 0.5)
                    if best is None or efficiency > best[0]:
                        best = (efficiency, b, option, trial_score, trial_alarms)
            if best is None:
                return choice
            _, b, option, score, alarms = best
            choice[b] = option

    def rank(choice: dict[str, str]) -> tuple[bool, float, float]:
        score, alarms = evaluate(choice)
        return alarms <= allowed, score, -alarms

    return max((ascent(start), ascent(greedy(start))), key=rank)


def fit_thresholds(base: PipelineConfig, grid: tuple[float, ...], rule_grid: tuple[float, ...], fit: Stream,
                   clean: Stream, *, budget: float, grace_ns: int, tick_seconds: float, batch_events: int,
                   log: Callable[[str], None]) -> dict[str, Any]:
    """Choose a setting per tunable detector (see the module docstring)."""
    copies, origin = grid_config(base, grid, rule_grid)
    models = grid_models(base, copies, fit)
    labelled = run_stream(copies, models, fit, tick_seconds=tick_seconds, batch_events=batch_events)
    log(f"fit: seed A labelled replay {labelled.events} events, {len(copies.detectors)} detector copies, "
        f"{labelled.seconds:.1f} s, {len(labelled.findings)} findings")
    quiet = run_stream(copies, models, clean, tick_seconds=tick_seconds, batch_events=batch_events)
    log(f"fit: seed A clean replay {quiet.events} events, {quiet.seconds:.1f} s, {len(quiet.findings)} findings")

    matched, detections = match(labelled.findings, fit.labels, grace_ns)
    names = list(origin)
    per_copy = {
        name: {
            "findings": int((labelled.findings["detector"] == name).sum()),
            "matched": int(matched[(labelled.findings["detector"] == name).to_numpy()].sum()),
            "labels": set(detections.loc[detections["detector"] == name, "anomaly_id"]),
            "clean_false_alarms": int((quiet.findings["detector"] == name).sum()),
        }
        for name in names
    }
    bases = list(dict.fromkeys(b for b, _, _ in origin.values()))
    options = {b: [name for name in names if origin[name][0] == b] for b in bases}
    n_labels = len(fit.labels)
    allowed = budget * quiet.events / 1e5

    def evaluate(choice: dict[str, str]) -> tuple[float, int]:
        findings = sum(per_copy[c]["findings"] for c in choice.values())
        hits = sum(per_copy[c]["matched"] for c in choice.values())
        found = set().union(*(per_copy[c]["labels"] for c in choice.values()))
        precision = hits / findings if findings else 0.0
        return f1(precision, len(found) / n_labels if n_labels else 0.0), sum(
            per_copy[c]["clean_false_alarms"] for c in choice.values())

    choice = choose_settings(options, {name: origin[name][2] for name in names}, evaluate, allowed)
    score, alarms = evaluate(choice)
    chosen = {b: origin[c][1] for b, c in choice.items()}
    fitted = base.model_copy(update={"detectors": tuple(
        tuned(config, chosen[config.name]) if tunable(config) else config for config in base.detectors)})
    grid_table = {
        b: {f"{origin[c][1]:g}": {"f1_alone": _r(f1(_ratio(per_copy[c]["matched"], per_copy[c]["findings"])
                                                    if per_copy[c]["findings"] else 0.0,
                                                    len(per_copy[c]["labels"]) / max(n_labels, 1))),
                                  "findings": per_copy[c]["findings"], "labels_detected": len(per_copy[c]["labels"]),
                                  "clean_false_alarms": per_copy[c]["clean_false_alarms"]}
            for c in options[b]}
        for b in bases
    }
    return {"config": fitted, "settings": chosen, "fit_f1": score, "fit_clean_false_alarms": alarms,
            "fit_clean_events": quiet.events, "grid": grid_table,
            "seconds": labelled.seconds + quiet.seconds}


# ----------------------------------------------------------------------------- pyod


def stream_features(stream: Stream) -> tuple[pd.DataFrame, np.ndarray]:
    """The per-fill feature vectors (features.fill_features over the whole stream)."""
    observations = MetricExtractor().extract(stream.events, {})
    features = fill_features(stream.events, observations, {})
    meta = pd.DataFrame({"symbol": features.symbols, "occurred_at_ns": features.occurred_at_ns})
    return meta, features.X


def point_findings(name: str, meta: pd.DataFrame, flagged: np.ndarray, quiet_ns: int) -> pd.DataFrame:
    """Flagged fills as findings on their symbol, deduplicated as the pipeline does point
    anomalies: a flag opens a finding unless the symbol's previous flag is within ``quiet_ns``."""
    rows = meta.loc[flagged].sort_values(["symbol", "occurred_at_ns"], kind="stable")
    at = rows["occurred_at_ns"].to_numpy()
    symbol = rows["symbol"].to_numpy(dtype=object)
    new = np.ones(len(rows), dtype=bool)
    if len(rows) > 1:
        new[1:] = (symbol[1:] != symbol[:-1]) | (at[1:] - at[:-1] > quiet_ns)
    kept = rows[new]
    return pd.DataFrame({"detector": name, "anomaly_type": "outlier", "metric": "fill_features",
                         "entity_kind": "symbol", "entity": kept["symbol"].to_numpy(dtype=object),
                         "detected_at_ns": kept["occurred_at_ns"].to_numpy(), "score": np.nan,
                         "severity": "warning"}, columns=list(FINDING_COLUMNS))


def run_pyod(streams: dict[str, Stream], *, budget: float, grace_ns: int, quiet_ns: int,
             log: Callable[[str], None]) -> dict[str, Any]:
    from pyod.models.ecod import ECOD
    from pyod.models.iforest import IForest

    features = {key: stream_features(stream) for key, stream in streams.items()}
    train = features["fit"][1]
    medians = np.nanmedian(train, axis=0)
    medians = np.where(np.isfinite(medians), medians, 0.0)

    def imputed(X: np.ndarray) -> np.ndarray:
        return np.where(np.isfinite(X), X, medians[None, :])

    results = {}
    for name, model in (("pyod_iforest", IForest(n_estimators=100, random_state=0)), ("pyod_ecod", ECOD())):
        started = time.perf_counter()
        model.fit(imputed(train))
        scores = {key: model.decision_function(imputed(X)) for key, (_, X) in features.items()}
        seconds = time.perf_counter() - started
        train_scores = scores["fit"]
        best = None
        candidates = []
        for rate in MODEL_RATES:
            threshold = float(np.quantile(train_scores, 1 - rate))
            fit_findings = point_findings(name, features["fit"][0], scores["fit"] > threshold, quiet_ns)
            matched, detections = match(fit_findings, streams["fit"].labels, grace_ns)
            q = quality(fit_findings, matched, detections, streams["fit"].labels)
            alarms = len(point_findings(name, features["fit_clean"][0], scores["fit_clean"] > threshold, quiet_ns))
            per_100k = alarms / len(streams["fit_clean"].events) * 1e5
            candidates.append({"training_quantile": 1 - rate, "fit_f1": q["f1"], "clean_per_100k": _r(per_100k, 3)})
            feasible = per_100k <= budget
            # Feasible first, then F1 (or fewer alarms), then the more conservative threshold.
            key = (feasible, (q["f1"] or 0.0) if feasible else -per_100k, -rate)
            if best is None or key > best[0]:
                best = (key, threshold, 1 - rate)
        _, threshold, quantile = best
        findings = point_findings(name, features["score"][0], scores["score"] > threshold, quiet_ns)
        matched, detections = match(findings, streams["score"].labels, grace_ns)
        overall = quality(findings, matched, detections, streams["score"].labels, kinds=FILL_KINDS)
        clean = point_findings(name, features["clean"][0], scores["clean"] > threshold, quiet_ns)
        results[name] = {
            **overall, "threshold_training_quantile": quantile, "threshold": threshold,
            "clean": false_alarms(clean, len(streams["clean"].events)),
            "fit_candidates": candidates, "fit_and_score_seconds": round(seconds, 2),
        }
        log(f"pyod {name}: f1 {overall['f1']} (visible kinds {overall['visible_f1']}), "
            f"clean false alarms {len(clean)}")
    return results


# ----------------------------------------------------------------------------- throughput


def throughput_frames(pipeline: DetectionPipeline, stream: Stream, events: int, rounds: int) -> dict[str, Any]:
    frame = stream.events.iloc[:events]
    seconds = []
    for _ in range(rounds):
        run = replay(pipeline, frame, tick_seconds=None, batch_events=5_000, start_ns=stream.start_ns)
        seconds.append(run.seconds)
    median = statistics.median(seconds)
    return {"events": len(frame), "batch_events": 5_000, "seconds_rounds": [round(s, 3) for s in seconds],
            "events_per_second": round(len(frame) / median)}


def event_json(frame: pd.DataFrame) -> list[str]:
    """The events of an event frame as the JSON an engine sends (numbers as JSON numbers)."""
    from tradewatch.domain.events.timestamps import format_rfc3339_ns

    records = frame.to_dict("records")
    texts = []
    dumps = json.dumps
    for r in records:
        kind = r["event_type"]
        body = {"event_id": r["event_id"], "event_type": kind, "occurred_at": format_rfc3339_ns(r["occurred_at_ns"]),
                "source": r["source"], "schema_version": 1}
        for key in ("strategy_id", "symbol", "order_id"):
            if r[key] is not None:
                body[key] = r[key]
        if kind == "market_data":
            payload = {"bid": r["bid"], "ask": r["ask"], "last": r["last"], "volume": r["volume"]}
        elif kind == "order":
            payload = {"side": r["side"], "quantity": r["quantity"], "order_type": "market", "status": r["status"],
                       "venue": r["venue"], "decision_price": r["decision_price"]}
        elif kind == "fill":
            payload = {"fill_id": r["fill_id"], "side": r["side"], "quantity": r["quantity"], "price": r["price"],
                       "venue": r["venue"], "fee": r["fee"], "liquidity": r["liquidity"],
                       "arrival_price": r["arrival_price"], "bid": r["bid"], "ask": r["ask"]}
        elif kind == "position_update":
            payload = {"quantity": r["quantity"], "realized_pnl": r["realized_pnl"],
                       "unrealized_pnl": r["unrealized_pnl"]}
        else:
            payload = {"component": r["component"], "level": r["level"], "message": "heartbeat"}
        body["payload"] = payload
        texts.append(dumps(body, separators=(",", ":")))
    return texts


def throughput_database(config: PipelineConfig, models: dict, stream: Stream, rounds: int,
                        log: Callable[[str], None]) -> dict[str, Any]:
    from sqlalchemy import text

    from benchmarks.scratch import create_database, drop_database
    from tradewatch.domain.events.parsing import parse_batch
    from tradewatch.storage.database import make_engine
    from tradewatch.storage.detection import DetectionStore
    from tradewatch.storage.store import AuditStore

    admin_url = os.environ.get("TRADEWATCH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"tw_bench_detect_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = make_engine(admin_url, pool_size=1)
    url = create_database(admin, admin_url, name)
    engine = make_engine(url, pool_size=2)
    try:
        texts = event_json(stream.events)
        started = time.perf_counter()
        store = AuditStore(engine)
        for lo in range(0, len(texts), 5_000):
            good, bad = parse_batch(texts[lo:lo + 5_000])
            assert not bad, bad[0].reason
            store.ingest(good, batch_id=f"bench-{lo}", received_at=datetime.now(timezone.utc))
        ingest_seconds = time.perf_counter() - started
        log(f"database: {len(texts)} events ingested in {ingest_seconds:.1f} s")
        seconds, opened = [], []
        for _ in range(rounds):
            with engine.begin() as conn:  # the run's own database: start each round from nothing
                conn.execute(text("DELETE FROM anomalies"))
                conn.execute(text("DELETE FROM detector_state"))
            pipeline = DetectionPipeline(config)
            pipeline.set_models(models)
            detection = DetectionStore(engine)
            applied = 0
            count = 0
            started = time.perf_counter()
            while True:
                run = detection.apply_pending(pipeline)
                if run.events == 0:
                    break
                applied += run.events
                count += len(run.opened)
            seconds.append(time.perf_counter() - started)
            opened.append(count)
            assert applied == len(texts), (applied, len(texts))
            log(f"database: apply_pending drained {applied} events in {seconds[-1]:.2f} s")
        median = statistics.median(seconds)
        return {"events": len(texts), "seconds_rounds": [round(s, 3) for s in seconds],
                "events_per_second": round(len(texts) / median), "anomalies_opened": opened[0],
                "ingest_seconds": round(ingest_seconds, 2)}
    finally:
        engine.dispose()
        drop_database(admin, name)


# ----------------------------------------------------------------------------- report


def table(card: dict[str, Any]) -> str:
    lines = [f"{'detector':<28} {'kind':<18} {'found':>6} {'FA':>5} {'prec':>6} {'recall':>6} {'vis.rec':>7} "
             f"{'vis.F1':>6} {'MTTD s':>8}"]

    def fmt(v, width, digits=3):
        return f"{'-':>{width}}" if v is None else f"{v:>{width}.{digits}f}"

    for name, d in {**card["detectors"], "PIPELINE": {"kind": "", **card["pipeline"]}}.items():
        lines.append(f"{name:<28} {d['kind']:<18} {d['findings']:>6} {d['false_alarms']:>5} {fmt(d['precision'], 6)} "
                     f"{fmt(d['recall'], 6)} {fmt(d.get('visible_recall'), 7)} {fmt(d.get('visible_f1'), 6)} "
                     f"{fmt(d['mean_time_to_detect_seconds'], 8, 1)}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events of each labelled stream (seeds A and B)")
    parser.add_argument("--fit-clean-events", type=int, default=1_000_000, help="clean events of seed A (fitting)")
    parser.add_argument("--clean-events", type=int, default=1_000_000, help="clean events of seed B (false alarms)")
    parser.add_argument("--throughput-events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds; the median is reported")
    parser.add_argument("--seed-a", type=int, default=11)
    parser.add_argument("--seed-b", type=int, default=22)
    parser.add_argument("--grace-seconds", type=float, default=300.0)
    parser.add_argument("--tick-seconds", type=float, default=5.0, help="the beat's detect.tick period")
    parser.add_argument("--batch-events", type=int, default=5_000)
    parser.add_argument("--false-alarm-budget", type=float, default=0.6,
                        help="false alarms per 100,000 clean events of seed A the fit may spend; below the "
                             "target of 1 because alarm counts are Poisson-noisy between seeds (10 on a million "
                             "events of seed A can be 16 on seed B)")
    parser.add_argument("--grid", type=str, default=",".join(f"{m:g}" for m in GRID),
                        help="threshold multiples tried per statistical detector")
    parser.add_argument("--rule-grid", type=str, default=",".join(f"{m:g}" for m in RULE_GRID),
                        help="threshold multiples tried per rule")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="durations of the anomaly schedule times this (short test streams: 0.1)")
    parser.add_argument("--config", type=Path, default=None,
                        help="a pipeline YAML to start from (default: the shipped default_pipeline.yaml)")
    parser.add_argument("--no-fit", action="store_true", help="score the default thresholds as they are")
    parser.add_argument("--no-database", action="store_true", help="skip the detect.batch (PostgreSQL) throughput")
    args = parser.parse_args()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    grace_ns = int(args.grace_seconds * NS)
    grid = tuple(float(v) for v in args.grid.split(","))
    rule_grid = tuple(float(v) for v in args.rule_grid.split(","))
    started = time.perf_counter()
    shape = StreamShape().time_scaled(args.time_scale)
    streams = {
        "fit": generate(args.events, args.seed_a, start_ns=START_NS, shape=shape),
        "fit_clean": generate(args.fit_clean_events, args.seed_a, anomalies=False, start_ns=START_NS + DAY_NS,
                              shape=shape),
        "score": generate(args.events, args.seed_b, start_ns=START_NS + 2 * DAY_NS, shape=shape),
        "clean": generate(args.clean_events, args.seed_b, anomalies=False, start_ns=START_NS + 3 * DAY_NS,
                          shape=shape),
    }
    log(f"streams generated in {time.perf_counter() - started:.1f} s: "
        + ", ".join(f"{k} {len(s.events)} events / {len(s.labels)} labels" for k, s in streams.items()))

    default = (PipelineConfig.from_yaml_text(args.config.read_text(), str(args.config)) if args.config
               else default_pipeline_config())
    if args.no_fit:
        fitted = {"config": default, "settings": {},
                  "fit_f1": None, "fit_clean_false_alarms": None, "grid": {}, "seconds": 0.0}
    else:
        fitted = fit_thresholds(default, grid, rule_grid, streams["fit"], streams["fit_clean"],
                                budget=args.false_alarm_budget,
                                grace_ns=grace_ns, tick_seconds=args.tick_seconds, batch_events=args.batch_events,
                                log=log)
    config: PipelineConfig = fitted["config"]
    models = train_models(config, streams["fit"])

    def fresh() -> DetectionPipeline:
        pipeline = DetectionPipeline(config)
        pipeline.set_models(models)
        return pipeline

    scored = run_stream(config, models, streams["score"], tick_seconds=args.tick_seconds,
                        batch_events=args.batch_events)
    card = scorecard(scored.findings, streams["score"].labels, grace_ns, config)
    log(f"seed B labelled: {scored.events} events in {scored.seconds:.1f} s ({scored.calls} calls)")
    clean_run = run_stream(config, models, streams["clean"], tick_seconds=args.tick_seconds,
                           batch_events=args.batch_events)
    clean = false_alarms(clean_run.findings, clean_run.events)
    log(f"seed B clean: {clean_run.events} events in {clean_run.seconds:.1f} s, {clean['false_alarms']} false alarms")

    pyod = run_pyod(streams, budget=args.false_alarm_budget, grace_ns=grace_ns,
                    quiet_ns=int(config.quiet_seconds * NS), log=log)
    frames = throughput_frames(fresh(), streams["clean"], min(args.throughput_events, args.clean_events), args.rounds)
    log(f"detect_all over frames: {frames['events_per_second']} events/s")
    database = None
    if not args.no_database:
        database = throughput_database(config, models, generate(args.throughput_events, args.seed_b, stream_tag=3,
                                                                start_ns=START_NS + 4 * DAY_NS, shape=shape),
                                       args.rounds, log)

    print(table(card), file=sys.stderr)
    pipeline_f1 = card["pipeline"]["f1"]
    best_pyod = max(pyod.values(), key=lambda r: r["f1"] or 0.0)
    best_pyod_name = max(pyod, key=lambda k: pyod[k]["f1"] or 0.0)
    events_per_second = database["events_per_second"] if database else None
    result = {
        "benchmark": "detection",
        "config": str(args.config) if args.config else "default_pipeline.yaml (fitted)",
        "pipeline_f1": pipeline_f1,
        "pipeline_precision": card["pipeline"]["precision"],
        "pipeline_recall": card["pipeline"]["recall"],
        "pipeline_mean_time_to_detect_seconds": card["pipeline"]["mean_time_to_detect_seconds"],
        "best_pyod_f1": best_pyod["f1"],
        "best_pyod": best_pyod_name,
        "best_pyod_f1_on_fill_kinds": max(r["visible_f1"] or 0.0 for r in pyod.values()),
        "pipeline_f1_on_fill_kinds": _fill_kind_f1(scored.findings, streams["score"].labels, grace_ns),
        "false_alarms_per_100k_clean_events": clean["false_alarms_per_100k_events"],
        "clean_events": clean["events"],
        "events_per_second": events_per_second,
        "detect_all_events_per_second": frames["events_per_second"],
        "targets": {
            "pipeline_f1_at_least_0.8": pipeline_f1 is not None and pipeline_f1 >= 0.8,
            "pipeline_f1_not_below_best_pyod": pipeline_f1 is not None and pipeline_f1 >= (best_pyod["f1"] or 0.0),
            "at_most_1_false_alarm_per_100k_clean_events": clean["false_alarms_per_100k_events"] <= 1.0,
            "at_least_20000_events_per_second": events_per_second is not None and events_per_second >= 20_000,
        },
        "recall_by_magnitude": card["pipeline"]["recall_by_magnitude"],
        "recall_by_kind": card["pipeline"]["recall_by_kind"],
        "recall_by_silence_seconds": card["pipeline"]["recall_by_silence_seconds"],
        "recall_by_kind_and_magnitude": card["pipeline"]["recall_by_kind_and_magnitude"],
        "mean_time_to_detect_seconds_by_kind": card["pipeline"]["mean_time_to_detect_seconds_by_kind"],
        "pipeline": card["pipeline"],
        "detectors": card["detectors"],
        "pyod": pyod,
        "clean_false_alarms": clean,
        "fitted_settings": fitted["settings"],
        "fitted_thresholds": {c.name: threshold_values(c) for c in config.detectors if tunable(c)},
        "fit_f1_seed_a": _r(fitted["fit_f1"]) if fitted["fit_f1"] is not None else None,
        "fit_clean_false_alarms_seed_a": fitted["fit_clean_false_alarms"],
        "fit_grid": fitted["grid"],
        "throughput_frames": frames,
        "throughput_database": database,
        "labels_scored": len(streams["score"].labels),
        "events_scored": len(streams["score"].events),
        "seeds": {"fit": args.seed_a, "score": args.seed_b},
        "grace_seconds": args.grace_seconds,
        "tick_seconds": args.tick_seconds,
        "seconds_total": round(time.perf_counter() - started, 1),
        "cpu_cores": os.cpu_count(),
    }
    print(json.dumps(result))


def _fill_kind_f1(findings: pd.DataFrame, labels: pd.DataFrame, grace_ns: int) -> float | None:
    """The pipeline's F1 on the labels of kinds that change fills (what pyod can see), counting
    the pipeline's findings on fill metrics only, for a like-for-like comparison."""
    fill_metrics = {"slippage_bps", "fill_latency_seconds", "acknowledgement_latency_seconds", "spread_bps",
                    "fill_features"}
    subset = labels[labels["kind"].isin(FILL_KINDS)]
    mine = findings[findings["metric"].isin(fill_metrics)]
    matched, detections = match(mine, subset, grace_ns)
    return quality(mine, matched, detections, subset)["f1"]


if __name__ == "__main__":
    main()
