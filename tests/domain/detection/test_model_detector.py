"""The model detector: outliers scored with a trained model, model_unusable once per episode,
Cleared when a usable model arrives; and fit_models on the real metric extractor."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from pydantic import ValidationError

from tests.domain.detection.test_features import events_frame, observations_frame
from tradewatch.domain.detection.anomaly import Anomaly, Cleared
from tradewatch.domain.detection.base import Batch
from tradewatch.domain.detection.features import FEATURES, fill_features
from tradewatch.domain.detection.model_detector import ModelDetector, ModelDetectorConfig
from tradewatch.domain.detection.state_codec import decode, encode
from tradewatch.domain.detection.trained_model import TrainedModel
from tradewatch.domain.detection.training import fit_model, fit_models

START_NS = 1_767_600_000_000_000_000  # 2026-01-05T08:00:00Z
SECOND_NS = 1_000_000_000
DAY_NS = 86_400 * SECOND_NS


def ordinary_fills(n: int, seed: int, start_ns: int, prefix: str) -> tuple[list[dict], list[tuple[str, str, float]]]:
    """Fills with a 2-6 bps spread, price inside it, ~55 shares, slippage ~N(0, 2) bps,
    latency ~0.4 s; one every 20 s."""
    rng = np.random.default_rng(seed)
    rows, observations = [], []
    for i in range(n):
        half = rng.uniform(0.01, 0.03)
        event_id = f"{prefix}{i}"
        rows.append({"event_id": event_id, "symbol": ("AAPL", "MSFT")[i % 2], "strategy_id": f"s{i % 3}",
                     "occurred_at_ns": start_ns + i * 20 * SECOND_NS, "quantity": float(rng.lognormal(4.0, 0.3)),
                     "price": 100.0 + rng.uniform(-half, half), "bid": 100.0 - half, "ask": 100.0 + half})
        observations.append((event_id, "slippage_bps", float(rng.normal(0.0, 2.0))))
        observations.append((event_id, "fill_latency_seconds", float(rng.lognormal(-1.0, 0.3))))
    return rows, observations


def batch_of(rows, observations) -> Batch:
    return Batch(events_frame(rows), observations_frame(observations))


@pytest.fixture(scope="module")
def training_matrix() -> np.ndarray:
    rows, observations = ordinary_fills(1_500, seed=1, start_ns=START_NS - DAY_NS, prefix="t")
    return fill_features(events_frame(rows), observations_frame(observations), {}).X


def config(**overrides) -> ModelDetectorConfig:
    values = {"name": "fills", "kind": "model", "algorithm": "isolation_forest", "min_samples": 1_000} | overrides
    return ModelDetectorConfig(**values)


@pytest.fixture(scope="module")
def model(training_matrix) -> TrainedModel:
    return fit_model(config(), training_matrix, trained_at_ns=START_NS, window_start_ns=START_NS - DAY_NS,
                     window_end_ns=START_NS, seed=0)


def outlier_batch(start_ns: int = START_NS + SECOND_NS) -> Batch:
    rows, observations = ordinary_fills(20, seed=2, start_ns=start_ns, prefix="n")
    # A huge order, filled far outside a wide quote, very late and expensively.
    rows.insert(10, {"event_id": "odd", "symbol": "MSFT", "strategy_id": "s9", "occurred_at_ns": start_ns + 195 * SECOND_NS,
                     "quantity": 5_000.0, "price": 103.0, "bid": 99.0, "ask": 101.0})
    observations += [("odd", "slippage_bps", 300.0), ("odd", "fill_latency_seconds", 30.0)]
    return batch_of(rows, observations)


def allowed(value) -> bool:
    """What detector state may hold (common rules)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, np.ndarray):
        return value.ndim == 1 and value.dtype in (np.float64, np.int64)
    if isinstance(value, list):
        return all(allowed(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and allowed(v) for k, v in value.items())
    return False


# ------------------------------------------------------------------ scoring


def test_the_odd_fill_is_the_one_outlier(model):
    detector = ModelDetector(config())
    detector.use_model(model)
    state: dict = {}
    findings = detector.detect(outlier_batch(), state)
    assert [type(f) for f in findings] == [Anomaly]
    (anomaly,) = findings
    assert anomaly.anomaly_type == "outlier" and anomaly.metric == "fill_features"
    assert anomaly.detector == "fills" and anomaly.severity == "warning"
    assert (anomaly.entity_kind, anomaly.entity, anomaly.symbol, anomaly.strategy_id) == ("symbol", "MSFT", "MSFT", "s9")
    assert anomaly.event_ids == ("odd",)
    assert anomaly.detected_at_ns == START_NS + SECOND_NS + 195 * SECOND_NS
    assert anomaly.baseline == model.threshold and anomaly.observed > model.threshold
    assert anomaly.score == pytest.approx(anomaly.observed / model.threshold)
    # the feature values, as computed: spread 2 / 100 * 1e4 = 200 bps, |103 - 100| -> 300 bps
    features = anomaly.context["features"]
    assert list(features) == list(FEATURES)
    assert features["slippage_bps"] == 300.0 and features["fill_latency_seconds"] == 30.0
    assert features["spread_bps"] == pytest.approx(200.0) and features["price_distance_bps"] == pytest.approx(300.0)
    assert anomaly.context["imputed"] == [] and anomaly.context["model"] == "fills"
    assert anomaly.is_point
    assert allowed(state) and decode(encode(state)).keys() == state.keys()


def test_critical_multiple_and_by_strategy(model):
    detector = ModelDetector(config(critical_multiple=1.0, by="strategy_id"))
    detector.use_model(model)
    (anomaly,) = detector.detect(outlier_batch(), {})
    assert anomaly.severity == "critical"  # score / threshold > 1 >= critical_multiple
    assert (anomaly.entity_kind, anomaly.entity) == ("strategy_id", "s9")
    calm = ModelDetector(config(critical_multiple=1_000.0))
    calm.use_model(model)
    assert [a.severity for a in calm.detect(outlier_batch(), {})] == ["warning"]


def test_ordinary_fills_raise_nothing_and_tick_is_silent(model):
    detector = ModelDetector(config())
    detector.use_model(model)
    rows, observations = ordinary_fills(30, seed=3, start_ns=START_NS, prefix="q")
    state: dict = {}
    assert detector.detect(batch_of(rows, observations), state) == []
    assert detector.tick(START_NS + DAY_NS, state) == []
    assert detector.detect(Batch(events_frame([]), observations_frame([])), state) == []


# ------------------------------------------------------------------ model_unusable episodes


def unusable_then_cleared(detector: ModelDetector, good: TrainedModel, reason_part: str) -> None:
    state: dict = {}
    first = detector.detect(outlier_batch(), state)
    assert len(first) == 1
    (anomaly,) = first
    assert (anomaly.anomaly_type, anomaly.metric, anomaly.entity_kind, anomaly.entity, anomaly.severity) == \
        ("model_unusable", "model", "model", "fills", "warning")
    assert reason_part in anomaly.context["reason"]
    assert not anomaly.is_point
    state = decode(encode(state))  # persisted between batches, as the pipeline does
    # The episode goes on: nothing more, and no scoring (the odd fill is not reported).
    assert detector.detect(outlier_batch(START_NS + 600 * SECOND_NS), state) == []
    assert allowed(state)

    detector.use_model(good)
    findings = detector.detect(outlier_batch(START_NS + 1_200 * SECOND_NS), state)
    assert isinstance(findings[0], Cleared) and findings[0].key == anomaly.key == "fills|model|model=fills"
    assert [a.anomaly_type for a in findings[1:]] == ["outlier"]
    assert detector.detect(outlier_batch(START_NS + 1_800 * SECOND_NS), state)[0].anomaly_type == "outlier"


def test_missing_model(model):
    unusable_then_cleared(ModelDetector(config()), model, "no trained model named 'fills'")


def test_too_old_model_judged_at_the_batch_time(model):
    detector = ModelDetector(config(max_age_seconds=3_600))
    detector.use_model(dataclasses.replace(model, trained_at_ns=START_NS - 2 * DAY_NS))
    unusable_then_cleared(detector, model, "older than the 0.0416667 days allowed")


def test_too_few_samples(model):
    detector = ModelDetector(config(min_samples=1_501))
    detector.use_model(model)
    good = dataclasses.replace(model, samples=2_000)
    unusable_then_cleared(detector, good, "trained on 1500 fills, fewer than the 1501 required")


def test_library_version_mismatch(model):
    detector = ModelDetector(config())
    detector.use_model(dataclasses.replace(model, library_version="0.24.2"))
    unusable_then_cleared(detector, model, "scikit-learn 0.24.2")


def test_model_of_another_algorithm(model):
    detector = ModelDetector(config(algorithm="autoencoder"))
    detector.use_model(model)
    good = dataclasses.replace(model, algorithm="autoencoder")  # same estimator, relabelled: scoring is what we test
    unusable_then_cleared(detector, good, "is a isolation_forest model")


def test_the_cleared_time_is_the_batch_latest_event(model):
    detector = ModelDetector(config())
    state: dict = {}
    detector.detect(outlier_batch(), state)
    detector.use_model(model)
    batch = outlier_batch(START_NS + 1_000 * SECOND_NS)
    cleared = detector.detect(batch, state)[0]
    assert cleared.cleared_at_ns == int(batch.events["occurred_at_ns"].max())


# ------------------------------------------------------------------ configuration


def test_config_defaults_and_errors():
    cfg = ModelDetectorConfig(name="ml", kind="model", algorithm="one_class_svm")
    assert cfg.effective_model_name == "ml" and cfg.by == "symbol" and cfg.severity == "warning"
    assert cfg.max_age_seconds == 7 * 86_400 and cfg.min_samples == 1_000 and cfg.critical_multiple is None
    assert ModelDetectorConfig(name="ml", kind="model", algorithm="autoencoder", model_name="shared").effective_model_name == "shared"
    with pytest.raises(ValidationError, match="'isolation_forest', 'one_class_svm' or 'autoencoder'"):
        ModelDetectorConfig(name="ml", kind="model", algorithm="random_forest")
    with pytest.raises(ValidationError, match="contamination"):
        ModelDetectorConfig(name="ml", kind="model", algorithm="autoencoder", contamination=0.01)
    with pytest.raises(ValidationError, match="max_age_seconds"):
        ModelDetectorConfig(name="ml", kind="model", algorithm="autoencoder", max_age_seconds=0)


# ------------------------------------------------------------------ training on the real extractor


def test_fit_models_on_a_trail_window():
    """Orders and fills through the real MetricExtractor: latency and slippage come from it, and
    only the fills inside the window train."""
    rows = []
    rng = np.random.default_rng(0)
    for i in range(60):
        t = START_NS + i * 10 * SECOND_NS
        order_id = f"o{i}"
        rows.append({"event_id": f"sub{i}", "event_type": "order", "symbol": "AAPL", "strategy_id": "s1",
                     "order_id": order_id, "occurred_at_ns": t, "status": "submitted", "side": "buy",
                     "quantity": 100.0, "decision_price": 100.0})
        rows.append({"event_id": f"fill{i}", "event_type": "fill", "symbol": "AAPL", "strategy_id": "s1",
                     "order_id": order_id, "occurred_at_ns": t + SECOND_NS // 2, "side": "buy",
                     "quantity": float(rng.integers(50, 150)), "price": 100.0 + rng.uniform(-0.02, 0.02),
                     "arrival_price": 100.0, "bid": 99.98, "ask": 100.02})
    events = events_frame(rows)
    window_start = START_NS + 100 * SECOND_NS  # fills 10 .. 59
    configs = [config(algorithm="isolation_forest"), config(name="other", algorithm="autoencoder", model_name="ae")]
    models = fit_models(configs, events, trained_at_ns=START_NS + DAY_NS, window_start_ns=window_start,
                        window_end_ns=START_NS + DAY_NS, seed=0)
    assert [(m.name, m.algorithm, m.samples) for m in models] == [("fills", "isolation_forest", 50),
                                                                  ("ae", "autoencoder", 50)]
    first = models[0]
    assert first.details["imputation"]["fill_latency_seconds"] == pytest.approx(0.5)  # every fill 0.5 s after its order
    assert first.details["missing_fraction"] == {name: 0.0 for name in FEATURES}
    assert first.details["imputation"]["spread_bps"] == pytest.approx(4.0)
    assert first.window_start_ns == window_start and first.trained_at_ns == START_NS + DAY_NS
    # too few fills in the window: no model
    assert fit_models(configs, events, trained_at_ns=0, window_start_ns=START_NS + 500 * SECOND_NS,
                      window_end_ns=START_NS + DAY_NS) == []


def test_an_event_stamped_ahead_does_not_age_the_model_out(model):
    # max age 1 h; a quote whose engine clock runs two days ahead arrives with ordinary fills.
    detector = ModelDetector(config(max_age_seconds=3_600))
    detector.use_model(model)
    rows, observations = ordinary_fills(30, seed=3, start_ns=START_NS, prefix="q")
    rows.append({"event_id": "ahead", "event_type": "market_data", "occurred_at_ns": START_NS + 2 * DAY_NS,
                 "received_at_ns": START_NS + 600 * SECOND_NS, "bid": 99.9, "ask": 100.1})
    # Judged at the trusted time min(START + 2 days, START + 600 s + 60 s) = START + 660 s: 11 min old.
    assert detector.detect(batch_of(rows, observations), {}) == []
    # Received that late (two days after training), the model is too old.
    rows[-1]["received_at_ns"] = START_NS + 2 * DAY_NS
    [unusable] = detector.detect(batch_of(rows, observations), {})
    assert unusable.anomaly_type == "model_unusable" and unusable.detected_at_ns == START_NS + 2 * DAY_NS
