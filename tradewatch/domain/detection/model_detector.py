"""The scikit-learn model detector: scores each fill's feature vector with a trained model.

Per batch: the feature vectors of its fills (``features``; the relative-size history lives in
this detector's state under ``features``), then

- when there is no model, or ``TrainedModel.usable`` gives a reason (judged at the batch's
  latest trusted time, ``event_frame.trusted_times``: occurred_at capped at received_at + 60 s,
  so replaying old data judges the model at that time, and one event stamped a day ahead cannot
  age the model out), or the model is of
  another algorithm or feature set than configured: one ``model_unusable`` anomaly (metric
  "model", entity_kind "model", entity the model name, the reason in its context) when the
  episode starts, nothing after that, and no scoring. A model that cannot be trusted is
  reported, never used.
- when the model is usable: ``Cleared`` for an open model_unusable episode, then an ``outlier``
  for each fill whose score s exceeds the model's threshold t: observed = s, baseline = t,
  score = s / t (threshold multiples), metric "fill_features", entity the fill's symbol (or
  strategy_id, ``by``), the feature values in its context. Severity is ``critical`` when s / t
  >= ``critical_multiple`` (if set), else the configured severity.

The model is not state: the pipeline hands it over with ``use_model`` (loaded from the model
store by ``model_name``, retrained on a beat by ``training.fit_models``).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tradewatch.domain.detection.anomaly import Anomaly, Cleared
from tradewatch.domain.detection.base import Batch, Finding, State
from tradewatch.domain.detection.event_frame import trusted_times
from tradewatch.domain.detection.features import DEFAULT_SIZE_WINDOW, FEATURES, FillFeatures, fill_features
from tradewatch.domain.detection.trained_model import TrainedModel

Algorithm = Literal["isolation_forest", "one_class_svm", "autoencoder"]
OUTLIER_METRIC = "fill_features"
MODEL_METRIC = "model"


class ModelDetectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal["model"]
    severity: Literal["info", "warning", "critical"] = "warning"
    algorithm: Algorithm
    model_name: str | None = None  # the stored model's name; None -> the detector's name
    max_age_seconds: float = Field(7 * 86_400.0, gt=0)
    min_samples: int = Field(1_000, ge=1)  # training fills a model needs to be used
    by: Literal["symbol", "strategy_id"] = "symbol"
    critical_multiple: float | None = Field(None, ge=1.0)  # score / threshold at which an outlier is critical
    # Training (training.fit_models): threshold = threshold_margin * Q(1 - target_false_alarm_rate).
    target_false_alarm_rate: float = Field(1e-4, gt=0.0, lt=1.0)
    threshold_margin: float = Field(1.0, gt=0.0)
    size_window: int = Field(DEFAULT_SIZE_WINDOW, ge=1, le=10_000)  # fills in relative_size's median

    @property
    def effective_model_name(self) -> str:
        return self.model_name or self.name


class ModelDetector:
    def __init__(self, config: ModelDetectorConfig) -> None:
        self.config = config
        self.name = config.name
        self.model: TrainedModel | None = None

    @property
    def model_name(self) -> str:
        return self.config.effective_model_name

    def use_model(self, model: TrainedModel | None) -> None:
        """The model to score with from the next batch on (None: there is none)."""
        self.model = model

    def detect(self, batch: Batch, state: State) -> list[Finding]:
        events = batch.events
        if events.empty:
            return []
        now_ns = int(trusted_times(events).max())
        features = fill_features(events, batch.observations, state.setdefault("features", {}),
                                 size_window=self.config.size_window)
        reason = self.unusable_reason(now_ns)
        if reason is not None:
            return self._report_unusable(reason, now_ns, state)
        findings: list[Finding] = self._clear_unusable(now_ns, state)
        if features.count:
            findings.extend(self._outliers(features))
        return findings

    def tick(self, now_ns: int, state: State) -> list[Finding]:
        return []

    def unusable_reason(self, now_ns: int) -> str | None:
        model = self.model
        if model is None:
            return f"no trained model named {self.model_name!r}"
        if model.algorithm != self.config.algorithm:
            return (f"model {model.name!r} is a {model.algorithm} model, the detector is configured "
                    f"for {self.config.algorithm}")
        if tuple(model.features) != FEATURES:
            return f"model {model.name!r} was trained on features {list(model.features)}, not {list(FEATURES)}"
        return model.usable(now_ns, self.config.max_age_seconds, self.config.min_samples)

    # ------------------------------------------------------------------ model_unusable episodes

    def _report_unusable(self, reason: str, now_ns: int, state: State) -> list[Finding]:
        if state.get("unusable") is not None:
            return []  # one anomaly per episode
        anomaly = Anomaly(
            detector=self.name, anomaly_type="model_unusable", severity="warning", metric=MODEL_METRIC,
            observed=math.nan, baseline=math.nan, score=math.nan, entity_kind="model", entity=self.model_name,
            detected_at_ns=now_ns, context={"reason": reason, "algorithm": self.config.algorithm},
        )
        state["unusable"] = {"key": anomaly.key, "reason": reason, "since_ns": now_ns}
        return [anomaly]

    def _clear_unusable(self, now_ns: int, state: State) -> list[Finding]:
        episode = state.get("unusable")
        if episode is None:
            return []
        state["unusable"] = None
        return [Cleared(key=episode["key"], cleared_at_ns=now_ns)]

    # ------------------------------------------------------------------ scoring

    def _outliers(self, features: FillFeatures) -> list[Anomaly]:
        model = self.model
        assert model is not None
        scores = model.score(features.X)
        flagged = np.flatnonzero(scores > model.threshold)
        return [self._outlier(features, int(i), float(scores[i]), model) for i in flagged]

    def _outlier(self, features: FillFeatures, i: int, score: float, model: TrainedModel) -> Anomaly:
        multiple = score / model.threshold
        critical = self.config.critical_multiple is not None and multiple >= self.config.critical_multiple
        symbol, strategy_id = features.symbols[i], features.strategy_ids[i]
        entity = symbol if self.config.by == "symbol" else strategy_id
        return Anomaly(
            detector=self.name, anomaly_type="outlier", severity="critical" if critical else self.config.severity,
            metric=OUTLIER_METRIC, observed=score, baseline=model.threshold, score=multiple,
            entity_kind=self.config.by, entity="unknown" if entity is None else str(entity),
            detected_at_ns=int(features.occurred_at_ns[i]), symbol=symbol, strategy_id=strategy_id,
            event_ids=(str(features.event_ids[i]),), context=_context(features.X[i], model),
        )


def _context(row: np.ndarray, model: TrainedModel) -> dict[str, Any]:
    values = {name: (float(v) if math.isfinite(v) else None) for name, v in zip(FEATURES, row)}
    return {"features": values, "imputed": [name for name, v in values.items() if v is None],
            "model": model.name, "algorithm": model.algorithm, "model_trained_at_ns": model.trained_at_ns}
