"""Each scorer separates an obvious outlier cluster from the Gaussian data it was trained on."""

from __future__ import annotations

import numpy as np
import pytest

from tradewatch.domain.detection.autoencoder import AutoencoderScorer
from tradewatch.domain.detection.isolation_forest import IsolationForestScorer
from tradewatch.domain.detection.one_class_svm import OneClassSvmScorer

SCORERS = [IsolationForestScorer, OneClassSvmScorer, AutoencoderScorer]


def correlated_gaussian(n: int, seed: int) -> np.ndarray:
    """7 features, the last 4 linear mixtures of the first 3 plus a little noise (structure an
    autoencoder can learn), on very different scales like real features."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 3))
    mixed = base @ rng.normal(size=(3, 4)) + 0.1 * rng.normal(size=(n, 4))
    return np.hstack([base, mixed]) * np.array([1.0, 10.0, 0.1, 1.0, 5.0, 1.0, 0.5])


@pytest.fixture(scope="module")
def data():
    training = correlated_gaussian(2_000, seed=1)
    normal = correlated_gaussian(500, seed=2)
    outliers = normal[:20] + 8.0 * training.std(axis=0)  # 8 standard deviations away on every feature
    return training, normal, outliers


@pytest.mark.parametrize("scorer_class", SCORERS, ids=lambda c: c.algorithm)
def test_outliers_score_above_every_ordinary_point(scorer_class, data):
    training, normal, outliers = data
    scorer = scorer_class().fit(training, seed=0)
    normal_scores = scorer.score(normal)
    outlier_scores = scorer.score(outliers)
    assert normal_scores.dtype == np.float64 and normal_scores.shape == (500,)
    assert outlier_scores.min() > normal_scores.max()
    assert outlier_scores.min() > np.quantile(scorer.score(training), 0.999)


@pytest.mark.parametrize("scorer_class", SCORERS, ids=lambda c: c.algorithm)
def test_the_same_seed_gives_the_same_scores(scorer_class, data):
    training, normal, _ = data
    first = scorer_class().fit(training[:600], seed=7).score(normal)
    again = scorer_class().fit(training[:600], seed=7).score(normal)
    np.testing.assert_array_equal(first, again)


def test_isolation_forest_scores_are_in_zero_one():
    rng = np.random.default_rng(0)
    scores = IsolationForestScorer().fit(rng.normal(size=(300, 7)), seed=0).score(rng.normal(size=(50, 7)) * 10)
    assert ((scores > 0) & (scores <= 1)).all()


def test_one_class_svm_trains_on_a_capped_subsample_and_saturates_far_away():
    rng = np.random.default_rng(0)
    scorer = OneClassSvmScorer(max_training_rows=300).fit(rng.normal(size=(1_000, 7)), seed=0)
    assert scorer.details()["training_rows"] == 300
    assert scorer.scaler.n_samples_seen_ == 1_000  # the scaler still sees every row
    far = scorer.score(np.full((1, 7), 1e6))
    assert far[0] == pytest.approx(1e12)  # the kernel sum underflows: score capped, finite


def test_autoencoder_stops_early_and_records_it():
    scorer = AutoencoderScorer().fit(correlated_gaussian(500, seed=4), seed=0)
    details = scorer.details()
    assert details["hidden_layer_sizes"] == [16, 3, 16]
    assert 0 < details["epochs"] <= 500


@pytest.mark.parametrize("scorer_class", SCORERS, ids=lambda c: c.algorithm)
def test_scoring_before_fit_is_refused(scorer_class):
    with pytest.raises(RuntimeError, match="before fit"):
        scorer_class().score(np.zeros((1, 7)))
