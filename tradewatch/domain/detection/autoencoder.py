"""Autoencoder scorer: ``StandardScaler`` then a scikit-learn ``MLPRegressor`` trained to
reproduce its input through a bottleneck (hidden layers (16, 3, 16), tanh).

With z the standardised features (d of them) and g the network, the score is the mean squared
reconstruction error

    score(z) = (1 / d) * sum_j (g(z)_j - z_j)^2

in squared standard deviations of the training data. The 3-unit bottleneck can only keep the
structure of ordinary fills; an unusual combination of features is reconstructed badly.
Higher = more anomalous.

Training is seeded (weights and the early-stopping split) and stops early: 10% of the rows are
held out, and training ends when their loss has not improved for 10 epochs (at most 500).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler


class AutoencoderScorer:
    algorithm = "autoencoder"

    def __init__(self, hidden_layer_sizes: tuple[int, ...] = (16, 3, 16), max_iter: int = 500) -> None:
        self.hidden_layer_sizes = tuple(hidden_layer_sizes)
        self.max_iter = max_iter
        self.scaler: StandardScaler | None = None
        self.network: MLPRegressor | None = None

    def fit(self, X: np.ndarray, seed: int) -> AutoencoderScorer:
        X = np.asarray(X, dtype=np.float64)
        self.scaler = StandardScaler().fit(X)
        Z = self.scaler.transform(X)
        self.network = MLPRegressor(hidden_layer_sizes=self.hidden_layer_sizes, activation="tanh",
                                    early_stopping=True, validation_fraction=0.1, n_iter_no_change=10,
                                    max_iter=self.max_iter, random_state=seed)
        with warnings.catch_warnings():
            # Hitting max_iter is recorded in details(); the model is still usable.
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.network.fit(Z, Z)
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        """Mean squared reconstruction error per row (standardised units); higher = more anomalous."""
        if self.network is None or self.scaler is None:
            raise RuntimeError("AutoencoderScorer.score called before fit")
        Z = self.scaler.transform(np.asarray(X, dtype=np.float64))
        reconstruction = self.network.predict(Z).reshape(Z.shape)
        return np.mean((reconstruction - Z) ** 2, axis=1)

    def details(self) -> dict[str, Any]:
        network = self.network
        return {"hidden_layer_sizes": list(self.hidden_layer_sizes),
                "epochs": None if network is None else int(network.n_iter_),
                "converged": None if network is None else bool(network.n_iter_ < self.max_iter),
                "best_validation_score": None if network is None or network.best_validation_score_ is None
                else float(network.best_validation_score_)}
