"""Isolation forest scorer (scikit-learn ``IsolationForest``).

An isolation forest isolates a point by random axis-aligned splits; unusual points need fewer
splits. The score of x is s(x) = 2 ** (-E[h(x)] / c(psi)), h the path length in a tree grown on
psi = min(256, n) training rows, c(psi) the mean path length of an unsuccessful binary-search-tree
search: about 0.5 for ordinary points, towards 1 for outliers (scikit-learn's
``-score_samples``). Higher = more anomalous; no unit.

``contamination`` plays no part in our decision (it only sets scikit-learn's own ``predict``
offset): the threshold is calibrated from the training scores (``trained_model``). Splits are
per feature and scale free, so the features are not standardised. n_jobs = 1: workers share
small machines and a batch is small.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest


class IsolationForestScorer:
    algorithm = "isolation_forest"

    def __init__(self, n_estimators: int = 200) -> None:
        self.n_estimators = n_estimators
        self.forest: IsolationForest | None = None

    def fit(self, X: np.ndarray, seed: int) -> IsolationForestScorer:
        self.forest = IsolationForest(n_estimators=self.n_estimators, max_samples="auto", random_state=seed, n_jobs=1)
        self.forest.fit(np.asarray(X, dtype=np.float64))
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        """s(x) per row, in (0, 1]; higher = more anomalous."""
        if self.forest is None:
            raise RuntimeError("IsolationForestScorer.score called before fit")
        return -self.forest.score_samples(np.asarray(X, dtype=np.float64)).astype(np.float64)

    def details(self) -> dict[str, Any]:
        forest = self.forest
        return {"n_estimators": self.n_estimators,
                "max_samples": None if forest is None else int(forest.max_samples_)}
