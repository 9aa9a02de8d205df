"""Z-score detector: a value far from its stream's recent mean, in standard deviations.

For an observation x of a stream and the previous ``window`` observations w_1..w_n of that
stream (never x itself; see ``streams`` for streams, warm-up and why the trailing window):

    mean = sum(w_i) / n,   std = sqrt(sum((w_i - mean)^2) / (n - 1))   (sample std, ddof = 1)
    z = (x - mean) / std   (in standard deviations; positive above the mean)

A finding (anomaly_type "spike") when z is beyond ``threshold`` (default 4.0) in the configured
direction; "critical" at |z| >= ``critical_threshold``. The baseline is the mean; the context
gives mean and std.

With ``min_scale`` > 0 the divisor is max(std, min_scale) (a constant window then divides by
min_scale). Without it, a constant window (std = 0) gives no score: any other value would be
infinitely many standard deviations away, which says nothing about how unusual it is (a metric
that sat at 0 and moves at all). The window is tested for constancy directly (max == min) rather than std == 0, because
the rounded mean of a constant window such as 0.1 repeated can leave a std of 1e-17 behind.
Use the robust or IQR detector, or a rule, for metrics that are mostly constant.

The mean and std are a poor baseline when the window itself holds outliers (they inflate the
std and mask the next one): ``robust_zscore`` is the contamination-resistant variant.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from tradewatch.domain.detection.streams import Scores, StreamDetectorConfig, WindowDetector, fill, valid_mask


class ZScoreConfig(StreamDetectorConfig):
    kind: Literal["zscore"] = "zscore"
    threshold: float = Field(4.0, gt=0, description="|z| beyond it is a finding (standard deviations)")


class ZScoreDetector(WindowDetector):
    anomaly_type = "spike"

    def __init__(self, config: ZScoreConfig) -> None:
        super().__init__(config)

    def statistics(self, windows: np.ndarray, values: np.ndarray, lengths: np.ndarray) -> Scores:
        valid = valid_mask(windows, lengths)
        mean = fill(windows, valid, 0.0).sum(axis=1) / lengths
        deviations = fill(windows - mean[:, None], valid, 0.0)
        std = np.sqrt((deviations * deviations).sum(axis=1) / (lengths - 1))
        constant = fill(windows, valid, -np.inf).max(axis=1) == fill(windows, valid, np.inf).min(axis=1)
        floor = self.config.min_scale
        scale = np.maximum(np.where(constant, 0.0, std), floor)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(scale > 0, (values - mean) / scale, np.nan)
        return Scores(score=z, baseline=mean, statistics={"mean": mean, "std": std})
