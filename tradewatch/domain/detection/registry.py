"""Every detector kind the pipeline configuration accepts: ``kind -> (ConfigClass, DetectorClass)``.

A pipeline YAML entry ``{kind: robust_zscore, name: ..., ...}`` is validated by the config class
of its kind (``pipeline.PipelineConfig`` builds a pydantic discriminated union on ``kind`` from
this table) and run by ``DetectorClass(config)``. Adding a detector: write its module (one
detector per module, a ``Literal`` ``kind`` field on its config), then add one line here.
"""

from __future__ import annotations

from pydantic import BaseModel

from tradewatch.domain.detection.clock_skew import ClockSkewConfig, ClockSkewRule
from tradewatch.domain.detection.ewma import EwmaConfig, EwmaDetector
from tradewatch.domain.detection.iqr import IqrConfig, IqrDetector
from tradewatch.domain.detection.latency_excursion import LatencyExcursionConfig, LatencyExcursionRule
from tradewatch.domain.detection.loss_streak import LossStreakConfig, LossStreakRule
from tradewatch.domain.detection.model_detector import ModelDetector, ModelDetectorConfig
from tradewatch.domain.detection.rejection_spike import RejectionSpikeConfig, RejectionSpikeRule
from tradewatch.domain.detection.robust_zscore import RobustZScoreConfig, RobustZScoreDetector
from tradewatch.domain.detection.slippage_spike import SlippageSpikeConfig, SlippageSpikeRule
from tradewatch.domain.detection.stale_feed import StaleFeedConfig, StaleFeedRule
from tradewatch.domain.detection.zscore import ZScoreConfig, ZScoreDetector

#: kind -> (config class, detector class). The config class's ``kind`` field is ``Literal[kind]``.
KINDS: dict[str, tuple[type[BaseModel], type]] = {
    # statistical, per stream (metric x symbol or strategy_id)
    "zscore": (ZScoreConfig, ZScoreDetector),
    "robust_zscore": (RobustZScoreConfig, RobustZScoreDetector),
    "iqr": (IqrConfig, IqrDetector),
    "ewma": (EwmaConfig, EwmaDetector),
    # rules
    "slippage_spike": (SlippageSpikeConfig, SlippageSpikeRule),
    "latency_excursion": (LatencyExcursionConfig, LatencyExcursionRule),
    "loss_streak": (LossStreakConfig, LossStreakRule),
    "rejection_spike": (RejectionSpikeConfig, RejectionSpikeRule),
    "stale_feed": (StaleFeedConfig, StaleFeedRule),
    "clock_skew": (ClockSkewConfig, ClockSkewRule),
    # scikit-learn models, trained offline (training.fit_models) and handed over by set_models
    "model": (ModelDetectorConfig, ModelDetector),
}
