"""A trained model: the fitted scorer, its threshold and what it was trained on.

Threshold calibration. The scorer's scores on its own training rows are the reference
distribution of ordinary fills. With a target false-alarm rate r (default 1e-4: one fill in
ten thousand) and a margin m (default 1.0),

    threshold = m * Q(1 - r)

where Q is the empirical quantile of the training scores (numpy's default linear
interpolation). A training fill scores above Q(1 - r) with frequency at most r, so if new fills
come from the same distribution about that fraction are flagged; m > 1 buys headroom against
drift. With fewer than 1 / r training rows, Q(1 - r) lies between the two largest training
scores: the realised rate cannot be told apart below 1 / n. The threshold is floored at 1e-12
so score / threshold is always defined (all our scorers score >= 0, higher = more anomalous).

Imputation. A missing feature (NaN, see ``features``) is replaced by the training median of
that feature, kept in ``details["imputation"]``. A feature with no value at all in training
(``details["unobserved_features"]``) is set to 0.0 in training and scoring alike: the model
knows nothing about it, so it must not make a fill look unusual.

Usability (``usable``): a model is not used, and the detector says why, when its artifact
could not be loaded, when it was trained with another scikit-learn major.minor version (pickled
estimators are only guaranteed to load and behave the same in the version that wrote them),
when it was trained on fewer than ``min_samples`` fills, or when it is older than
``max_age_seconds`` at ``now``.

Artifacts are pickles and unpickling runs code: they are trusted because only tradewatch's own
workers write the ``detector_models`` table. Never load one from elsewhere.
"""

from __future__ import annotations

import io
import pickle
import warnings
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import sklearn
from sklearn.exceptions import InconsistentVersionWarning

from tradewatch.domain.detection.features import FEATURES
from tradewatch.domain.events.timestamps import NS_PER_SECOND, format_rfc3339_ns

THRESHOLD_FLOOR = 1e-12
ARTIFACT_FORMAT = 1


class Scorer(Protocol):
    """What isolation_forest, one_class_svm and autoencoder provide."""

    algorithm: str

    def fit(self, X: np.ndarray, seed: int) -> Scorer: ...

    def score(self, X: np.ndarray) -> np.ndarray: ...  # higher = more anomalous

    def details(self) -> dict[str, Any]: ...


def calibrate_threshold(scores: np.ndarray, target_false_alarm_rate: float = 1e-4,
                        margin: float = 1.0) -> tuple[float, dict[str, Any]]:
    """``margin * Q(1 - target_false_alarm_rate)`` of ``scores`` and the calibration record."""
    scores = np.asarray(scores, dtype=np.float64)
    if not 0.0 < target_false_alarm_rate < 1.0:
        raise ValueError(f"target_false_alarm_rate must be in (0, 1), got {target_false_alarm_rate}")
    if margin <= 0:
        raise ValueError(f"margin must be positive, got {margin}")
    if len(scores) == 0 or not np.isfinite(scores).all():
        raise ValueError("calibration needs at least one training score, all finite")
    quantile = 1.0 - target_false_alarm_rate
    at_quantile = float(np.quantile(scores, quantile))
    threshold = max(margin * at_quantile, THRESHOLD_FLOOR)
    record = {
        "target_false_alarm_rate": target_false_alarm_rate, "quantile": quantile, "margin": margin,
        "score_at_quantile": at_quantile,
        "training_scores": {
            "count": int(len(scores)), "min": float(scores.min()), "median": float(np.median(scores)),
            "mean": float(scores.mean()), "p99": float(np.quantile(scores, 0.99)), "max": float(scores.max()),
            "above_threshold": int((scores > threshold).sum()),
        },
    }
    return threshold, record


def imputation_values(X: np.ndarray) -> dict[str, float]:
    """The training median of each feature (NaN ignored); 0.0 for a feature never seen."""
    X = np.asarray(X, dtype=np.float64)
    values = {}
    for j, name in enumerate(FEATURES):
        column = X[:, j]
        column = column[np.isfinite(column)]
        values[name] = float(np.median(column)) if len(column) else 0.0
    return values


def unobserved_features(X: np.ndarray) -> list[str]:
    """The features with no finite value in ``X``."""
    seen = np.isfinite(np.asarray(X, dtype=np.float64)).any(axis=0)
    return [name for name, known in zip(FEATURES, seen) if not known]


def impute(X: np.ndarray, values: dict[str, float], features: tuple[str, ...] = FEATURES,
           unobserved: tuple[str, ...] | list[str] = ()) -> np.ndarray:
    """``X`` with every non-finite value replaced by its feature's imputation value, and the
    ``unobserved`` features' columns replaced whole (a copy)."""
    X = np.array(X, dtype=np.float64, copy=True)
    fill = np.array([values[name] for name in features], dtype=np.float64)
    missing = ~np.isfinite(X)
    for j, name in enumerate(features):
        if name in unobserved:
            missing[:, j] = True
    X[missing] = np.broadcast_to(fill, X.shape)[missing]
    return X


def major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


@dataclass(frozen=True, eq=False)
class TrainedModel:
    name: str  # the model name the detector asks for (ModelDetectorConfig.model_name)
    algorithm: str  # isolation_forest | one_class_svm | autoencoder
    trained_at_ns: int
    window_start_ns: int  # the training window [start, end) of fill occurred_at
    window_end_ns: int
    samples: int  # training fills
    features: tuple[str, ...]
    library_version: str  # scikit-learn's version at training
    threshold: float
    details: dict[str, Any] = field(default_factory=dict)  # JSON-safe: calibration, imputation, estimator
    estimator: Scorer | None = None  # None when the artifact could not be loaded (see details["load_error"])

    def score(self, X: np.ndarray) -> np.ndarray:
        """The scorer's score of each row of ``X`` (features in ``self.features`` order), after imputation."""
        if self.estimator is None:
            raise RuntimeError(f"model {self.name!r} has no estimator: {self.details.get('load_error')}")
        if len(X) == 0:
            return np.empty(0, dtype=np.float64)  # scikit-learn refuses empty input
        return self.estimator.score(impute(X, self.details["imputation"], self.features,
                                           self.details.get("unobserved_features", ())))

    def usable(self, now_ns: int, max_age_seconds: float, min_samples: int) -> str | None:
        """Why this model must not be used at ``now_ns``, or None when it may."""
        if self.estimator is None:
            return f"model {self.name!r} could not be loaded: {self.details.get('load_error', 'no estimator')}"
        running = sklearn.__version__
        if major_minor(self.library_version) != major_minor(running):
            return (f"model {self.name!r} was trained with scikit-learn {self.library_version}, "
                    f"this worker runs {running}: retrain it")
        if self.samples < min_samples:
            return f"model {self.name!r} was trained on {self.samples} fills, fewer than the {min_samples} required"
        age_seconds = (now_ns - self.trained_at_ns) / NS_PER_SECOND
        if age_seconds > max_age_seconds:
            return (f"model {self.name!r} was trained at {format_rfc3339_ns(self.trained_at_ns)}, "
                    f"{age_seconds / 86_400:.1f} days before {format_rfc3339_ns(now_ns)}, older than the {max_age_seconds / 86_400:g} days allowed")
        return None

    def metadata(self) -> dict[str, Any]:
        """Everything but the estimator, JSON-safe."""
        return {"name": self.name, "algorithm": self.algorithm, "trained_at_ns": self.trained_at_ns,
                "window_start_ns": self.window_start_ns, "window_end_ns": self.window_end_ns,
                "samples": self.samples, "features": list(self.features), "library_version": self.library_version,
                "threshold": self.threshold, "details": self.details}

    def to_bytes(self) -> bytes:
        """The whole model as one artifact: the metadata and, pickled separately, the estimator
        (so the metadata still reads when the estimator no longer unpickles)."""
        if self.estimator is None:
            raise ValueError(f"model {self.name!r} has no estimator to save")
        envelope = {"format": ARTIFACT_FORMAT, "metadata": self.metadata(),
                    "estimator": pickle.dumps(self.estimator, protocol=pickle.HIGHEST_PROTOCOL)}
        buffer = io.BytesIO()
        pickle.dump(envelope, buffer, protocol=pickle.HIGHEST_PROTOCOL)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TrainedModel:
        """A model from ``to_bytes``. An estimator that cannot be unpickled (another scikit-learn)
        gives a model with ``estimator=None`` whose ``usable`` names the error. Trusted input only."""
        envelope = pickle.loads(data)  # noqa: S301 - our own artifact (see the module docstring)
        if not isinstance(envelope, dict) or envelope.get("format") != ARTIFACT_FORMAT:
            raise ValueError("not a tradewatch model artifact (unknown format)")
        meta = dict(envelope["metadata"])
        details = dict(meta["details"])
        estimator = None
        try:
            with warnings.catch_warnings():
                # A version mismatch is reported by usable(), once, as model_unusable.
                warnings.simplefilter("ignore", InconsistentVersionWarning)
                estimator = pickle.loads(envelope["estimator"])  # noqa: S301
        except Exception as exc:  # noqa: BLE001 - any unpickling failure makes the model unusable, not the worker
            details["load_error"] = f"{type(exc).__name__}: {exc}"
        return cls(name=meta["name"], algorithm=meta["algorithm"], trained_at_ns=int(meta["trained_at_ns"]),
                   window_start_ns=int(meta["window_start_ns"]), window_end_ns=int(meta["window_end_ns"]),
                   samples=int(meta["samples"]), features=tuple(meta["features"]),
                   library_version=str(meta["library_version"]), threshold=float(meta["threshold"]),
                   details=details, estimator=estimator)
