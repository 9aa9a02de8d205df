"""One-class SVM scorer (``StandardScaler`` then scikit-learn ``OneClassSVM``, rbf kernel).

The SVM learns f(z) = sum_i alpha_i K(z_i, z) with K(a, b) = exp(-gamma |a - b|^2), gamma =
"scale" (1 / (n_features * var(Z))), and an offset rho such that a fraction of about nu = 0.01
of the training rows lies below it (z the standardised features). The score is the density
ratio

    score(z) = rho / f(z)

1 on the boundary, below 1 inside the support, above 1 outside and growing without bound away
from the data (f -> 0). Higher = more anomalous; no unit. f underflows far from the data, so
the denominator is floored at rho * 1e-12: scores saturate at 1e12.

Training is O(n^2) in time and memory (the kernel matrix): it is fitted on a random subsample
of at most ``max_training_rows`` (5,000) rows drawn with the seed; the scaler sees all rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

MAX_SCORE = 1e12


class OneClassSvmScorer:
    algorithm = "one_class_svm"

    def __init__(self, nu: float = 0.01, max_training_rows: int = 5_000) -> None:
        self.nu = nu
        self.max_training_rows = max_training_rows
        self.scaler: StandardScaler | None = None
        self.svm: OneClassSVM | None = None
        self.training_rows = 0

    def fit(self, X: np.ndarray, seed: int) -> OneClassSvmScorer:
        X = np.asarray(X, dtype=np.float64)
        self.scaler = StandardScaler().fit(X)
        Z = self.scaler.transform(X)
        if len(Z) > self.max_training_rows:
            rows = np.random.default_rng(seed).choice(len(Z), size=self.max_training_rows, replace=False)
            Z = Z[np.sort(rows)]
        self.training_rows = len(Z)
        self.svm = OneClassSVM(kernel="rbf", gamma="scale", nu=self.nu).fit(Z)
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        """rho / f(z) per row, in (0, 1e12]; higher = more anomalous."""
        if self.svm is None or self.scaler is None:
            raise RuntimeError("OneClassSvmScorer.score called before fit")
        density = self.svm.score_samples(self.scaler.transform(np.asarray(X, dtype=np.float64)))
        rho = float(self.svm.offset_[0])
        return rho / np.maximum(density, rho / MAX_SCORE)

    def details(self) -> dict[str, Any]:
        return {"nu": self.nu, "training_rows": self.training_rows, "max_training_rows": self.max_training_rows,
                "support_vectors": 0 if self.svm is None else int(len(self.svm.support_)),
                "rho": None if self.svm is None else float(self.svm.offset_[0])}
