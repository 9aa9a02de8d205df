"""Threshold calibration, imputation, usability and the artifact round trip of TrainedModel."""

from __future__ import annotations

import dataclasses
import math
import pickle

import numpy as np
import pytest
import sklearn

from tradewatch.domain.detection.features import FEATURES
from tradewatch.domain.detection.model_detector import ModelDetectorConfig
from tradewatch.domain.detection.trained_model import (
    TrainedModel,
    calibrate_threshold,
    impute,
    imputation_values,
    major_minor,
    unobserved_features,
)
from tradewatch.domain.detection.training import MIN_TRAINING_ROWS, fit_model

DAY_NS = 86_400 * 1_000_000_000
TRAINED_AT = 1_767_571_200_000_000_000  # 2026-01-05T00:00:00Z


def gaussian(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, len(FEATURES)))


def trained(algorithm: str = "isolation_forest", n: int = 1_200, **config) -> TrainedModel:
    cfg = ModelDetectorConfig(name="fills", kind="model", algorithm=algorithm, **config)
    return fit_model(cfg, gaussian(n, seed=1), trained_at_ns=TRAINED_AT, window_start_ns=TRAINED_AT - DAY_NS,
                     window_end_ns=TRAINED_AT, seed=0)


# ------------------------------------------------------------------ calibration


def test_threshold_is_the_quantile_of_a_known_distribution():
    scores = np.arange(1.0, 10_001.0)  # 1, 2, ..., 10000
    threshold, record = calibrate_threshold(scores, target_false_alarm_rate=1e-3)
    # linear interpolation: Q(0.999) = 1 + 0.999 * 9999 = 9990.001
    assert threshold == pytest.approx(9990.001)
    assert record["quantile"] == pytest.approx(0.999)
    assert record["training_scores"]["above_threshold"] == 10  # 9991 .. 10000: the target rate exactly
    assert record["training_scores"]["max"] == 10_000.0 and record["training_scores"]["median"] == 5_000.5

    default, record = calibrate_threshold(scores)  # 1e-4: Q(0.9999) = 1 + 0.9999 * 9999
    assert default == pytest.approx(9999.0001) and record["training_scores"]["above_threshold"] == 1

    with_margin, _ = calibrate_threshold(scores, target_false_alarm_rate=1e-3, margin=1.5)
    assert with_margin == pytest.approx(1.5 * 9990.001)


def test_with_fewer_rows_than_one_over_the_rate_the_threshold_sits_between_the_top_two():
    threshold, record = calibrate_threshold(np.arange(1.0, 101.0), target_false_alarm_rate=1e-4)
    assert threshold == pytest.approx(1 + 0.9999 * 99)  # = 99.9901, between 99 and 100
    assert record["training_scores"]["above_threshold"] == 1


def test_threshold_is_floored_and_bad_calibration_settings_are_refused():
    threshold, _ = calibrate_threshold(np.zeros(50))
    assert threshold == 1e-12
    with pytest.raises(ValueError, match="target_false_alarm_rate"):
        calibrate_threshold(np.ones(5), target_false_alarm_rate=0.0)
    with pytest.raises(ValueError, match="margin"):
        calibrate_threshold(np.ones(5), margin=0.0)
    with pytest.raises(ValueError, match="finite"):
        calibrate_threshold(np.array([1.0, np.nan]))


def test_the_model_threshold_comes_from_its_training_scores():
    model = trained(target_false_alarm_rate=0.01, threshold_margin=1.2)
    training_scores = model.score(gaussian(1_200, seed=1))
    assert model.threshold == pytest.approx(1.2 * np.quantile(training_scores, 0.99))
    calibration = model.details["calibration"]
    assert calibration["margin"] == 1.2 and calibration["quantile"] == pytest.approx(0.99)
    assert model.samples == 1_200 and model.features == FEATURES
    assert model.library_version == sklearn.__version__


# ------------------------------------------------------------------ imputation


def test_missing_values_take_the_training_median_and_unseen_features_are_neutral():
    X = np.array([[1.0, np.nan, 5.0, 0, 0, 0, 0],
                  [3.0, np.nan, np.nan, 0, 0, 0, 0],
                  [2.0, np.nan, 7.0, 0, 0, 0, 0]])
    values = imputation_values(X)
    assert values["slippage_bps"] == 2.0 and values["relative_size"] == 6.0
    assert values["fill_latency_seconds"] == 0.0
    assert unobserved_features(X) == ["fill_latency_seconds"]
    row = np.array([[np.nan, 42.0, np.inf, 1, 1, 1, 1]])
    assert list(impute(row, values, FEATURES, ["fill_latency_seconds"])[0]) == [2.0, 0.0, 6.0, 1, 1, 1, 1]
    assert math.isnan(row[0, 0])  # the caller's matrix is left alone


def test_a_fill_with_missing_features_scores_as_its_imputed_row():
    model = trained()
    row = gaussian(1, seed=5)
    gappy = row.copy()
    gappy[0, [1, 3]] = np.nan
    filled = row.copy()
    filled[0, 1] = model.details["imputation"]["fill_latency_seconds"]
    filled[0, 3] = model.details["imputation"]["spread_bps"]
    assert model.score(gappy)[0] == model.score(filled)[0]


# ------------------------------------------------------------------ usability


def test_a_fresh_well_trained_model_is_usable():
    assert trained().usable(TRAINED_AT + DAY_NS, max_age_seconds=7 * 86_400, min_samples=1_000) is None


def test_too_old():
    reason = trained().usable(TRAINED_AT + 8 * DAY_NS, max_age_seconds=7 * 86_400, min_samples=1_000)
    assert "older than the 7 days allowed" in reason and "8.0 days" in reason


def test_too_few_samples():
    reason = trained(n=500).usable(TRAINED_AT, max_age_seconds=86_400, min_samples=1_000)
    assert reason == "model 'fills' was trained on 500 fills, fewer than the 1000 required"


def test_library_version_mismatch_on_major_minor_only():
    model = trained()
    major, minor = major_minor(sklearn.__version__)
    same_minor = dataclasses.replace(model, library_version=f"{major}.{minor}.999")
    assert same_minor.usable(TRAINED_AT, 86_400, 1) is None
    other = dataclasses.replace(model, library_version="0.24.2")
    assert "scikit-learn 0.24.2" in other.usable(TRAINED_AT, 86_400, 1)


def test_fit_model_refuses_too_little_data():
    with pytest.raises(ValueError, match=f"at least {MIN_TRAINING_ROWS}"):
        trained(n=MIN_TRAINING_ROWS - 1)


# ------------------------------------------------------------------ artifact


@pytest.mark.parametrize("algorithm", ["isolation_forest", "one_class_svm", "autoencoder"])
def test_round_trip_through_bytes_gives_identical_scores(algorithm):
    model = trained(algorithm, n=600)
    again = TrainedModel.from_bytes(model.to_bytes())
    probe = gaussian(200, seed=9) * 3
    probe[::7, 0] = np.nan
    np.testing.assert_array_equal(model.score(probe), again.score(probe))
    assert again.metadata() == model.metadata()
    assert again.features == FEATURES and isinstance(again.features, tuple)


def test_an_estimator_that_no_longer_loads_makes_the_model_unusable_not_the_worker():
    envelope = pickle.loads(trained(n=300).to_bytes())
    envelope["estimator"] = b"not a pickle"
    model = TrainedModel.from_bytes(pickle.dumps(envelope))
    assert model.estimator is None and model.threshold > 0
    assert "could not be loaded" in model.usable(TRAINED_AT, 86_400, 1)


def test_foreign_bytes_are_refused():
    with pytest.raises(ValueError, match="not a tradewatch model artifact"):
        TrainedModel.from_bytes(pickle.dumps({"something": "else"}))


def test_scoring_no_rows_gives_no_scores():
    assert trained(n=100).score(np.empty((0, len(FEATURES)))).shape == (0,)
