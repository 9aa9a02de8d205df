"""Training the model detectors' models from a window of the trail.

``fit_models(configs, events, ...)``: the metric observations of ``events``
(``observations.MetricExtractor``, fresh state), the fills' feature vectors (``features``,
fresh state), then one model per config, fitted on the fills whose occurred_at lies in
[window_start_ns, window_end_ns). ``events`` may start earlier than the window: those events
only warm up the order and size history (a fill's latency needs its order's submission).

Per model (``fit_model``): imputation values = the training medians (``trained_model``), the
scorer fitted on the imputed rows with ``seed``, its scores on those rows calibrated into the
threshold ``threshold_margin * Q(1 - target_false_alarm_rate)``. A config with fewer than
``MIN_TRAINING_ROWS`` fills in the window gets no model (the previous one stays in the store and
ages out, reported as model_unusable); a model with fewer than its ``min_samples`` is still
returned, and its detector reports it unusable with that reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import sklearn

from tradewatch.domain.detection.autoencoder import AutoencoderScorer
from tradewatch.domain.detection.features import FEATURES, FillFeatures, fill_features
from tradewatch.domain.detection.isolation_forest import IsolationForestScorer
from tradewatch.domain.detection.model_detector import ModelDetectorConfig
from tradewatch.domain.detection.observations import MetricExtractor
from tradewatch.domain.detection.one_class_svm import OneClassSvmScorer
from tradewatch.domain.detection.trained_model import (
    Scorer,
    TrainedModel,
    calibrate_threshold,
    impute,
    imputation_values,
    unobserved_features,
)

SCORERS: dict[str, type] = {
    "isolation_forest": IsolationForestScorer,
    "one_class_svm": OneClassSvmScorer,
    "autoencoder": AutoencoderScorer,
}
MIN_TRAINING_ROWS = 20  # below this no scorer fits anything meaningful (the autoencoder holds out 10%)


def new_scorer(algorithm: str) -> Scorer:
    try:
        return SCORERS[algorithm]()
    except KeyError:
        raise ValueError(f"unknown algorithm {algorithm!r}; accepted: {', '.join(SCORERS)}") from None


def fit_model(config: ModelDetectorConfig, X: np.ndarray, *, trained_at_ns: int, window_start_ns: int,
              window_end_ns: int, seed: int = 0) -> TrainedModel:
    """A model for ``config`` fitted on the feature rows ``X`` (columns ``FEATURES``, NaN = missing)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != len(FEATURES):
        raise ValueError(f"expected a matrix with {len(FEATURES)} feature columns, got shape {X.shape}")
    if len(X) < MIN_TRAINING_ROWS:
        raise ValueError(f"model {config.effective_model_name!r}: {len(X)} training fills, "
                         f"at least {MIN_TRAINING_ROWS} are needed")
    values = imputation_values(X)
    unobserved = unobserved_features(X)
    rows = impute(X, values, FEATURES, unobserved)
    scorer = new_scorer(config.algorithm).fit(rows, seed)
    threshold, calibration = calibrate_threshold(scorer.score(rows), config.target_false_alarm_rate,
                                                 config.threshold_margin)
    details: dict[str, Any] = {
        "calibration": calibration, "imputation": values, "unobserved_features": unobserved,
        "missing_fraction": {name: float(f) for name, f in zip(FEATURES, (~np.isfinite(X)).mean(axis=0))},
        "estimator": scorer.details(), "seed": seed, "feature_parameters": {"size_window": config.size_window},
    }
    return TrainedModel(
        name=config.effective_model_name, algorithm=config.algorithm, trained_at_ns=int(trained_at_ns),
        window_start_ns=int(window_start_ns), window_end_ns=int(window_end_ns), samples=int(len(X)),
        features=FEATURES, library_version=sklearn.__version__, threshold=threshold, details=details,
        estimator=scorer,
    )


def window_features(events: pd.DataFrame, observations: pd.DataFrame, *, size_window: int, window_start_ns: int,
                    window_end_ns: int) -> FillFeatures:
    """The feature vectors of the fills in [window_start_ns, window_end_ns), history from all of ``events``."""
    features = fill_features(events, observations, {}, size_window=size_window,
                             forget_after_seconds=float("inf"))
    inside = (features.occurred_at_ns >= window_start_ns) & (features.occurred_at_ns < window_end_ns)
    return FillFeatures(*(column[inside] for column in features))


def fit_models(configs: list[ModelDetectorConfig], events: pd.DataFrame, *, trained_at_ns: int, window_start_ns: int,
               window_end_ns: int, seed: int = 0, extractor: MetricExtractor | None = None) -> list[TrainedModel]:
    """One model per config with enough fills in the window (see the module docstring).
    ``extractor``: the pipeline's ``MetricExtractor`` (default settings when None), run on a fresh state."""
    if not configs:
        return []
    observations = (extractor or MetricExtractor()).extract(events, {})
    by_window: dict[int, FillFeatures] = {}
    models = []
    for config in configs:
        if config.size_window not in by_window:
            by_window[config.size_window] = window_features(
                events, observations, size_window=config.size_window,
                window_start_ns=window_start_ns, window_end_ns=window_end_ns)
        X = by_window[config.size_window].X
        if len(X) < MIN_TRAINING_ROWS:
            continue
        models.append(fit_model(config, X, trained_at_ns=trained_at_ns, window_start_ns=window_start_ns,
                                window_end_ns=window_end_ns, seed=seed))
    return models
