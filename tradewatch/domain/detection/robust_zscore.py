"""Robust z-score detector: the modified z-score of Iglewicz and Hoaglin (1993).

For an observation x of a stream and the previous ``window`` observations w_1..w_n of that
stream (never x itself; see ``streams`` for streams, warm-up and why the trailing window):

    median = the median of w (the mean of the two middle values when n is even)
    MAD    = median_i |w_i - median|                      (median absolute deviation)
    M      = 0.6745 (x - median) / MAD                    (when MAD > 0)

0.6745 is the 0.75 quantile of the standard normal, so 1.4826 MAD estimates the standard
deviation of normal data and M is on the z-score's scale. Median and MAD ignore up to half the
window being outliers, so earlier spikes in the window do not mask the next one (the weakness
of the plain z-score).

When more than half the window equals its median, MAD = 0. Then, following IBM's definition
of the modified z-score, the spread is 1.253314 MeanAD, MeanAD = mean_i |w_i - median| (the
mean absolute deviation around the median; 1.253314 = sqrt(pi / 2) makes it estimate the
standard deviation of normal data): M = (x - median) / (1.253314 MeanAD). When that is 0 too
(a constant window) there is no score, for the reason given in ``zscore``. With ``min_scale``
> 0 the divisor (MAD / 0.6745 or 1.253314 MeanAD, both on the standard deviation's scale) is
at least ``min_scale``, in the metric's unit.

A finding (anomaly_type "spike") when M is beyond ``threshold`` (default 3.5, Iglewicz and
Hoaglin's recommendation) in the configured direction; "critical" at |M| >= ``critical_threshold``.
The baseline is the median; the context gives median, mad and mean_absolute_deviation.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from tradewatch.domain.detection.streams import (
    Scores,
    StreamDetectorConfig,
    WindowDetector,
    fill,
    row_median,
    valid_mask,
)

NORMAL_QUARTILE = 0.6745  # Phi^-1(0.75)
MEAN_ABSOLUTE_DEVIATION_SCALE = 1.253314  # sqrt(pi / 2)


class RobustZScoreConfig(StreamDetectorConfig):
    kind: Literal["robust_zscore"] = "robust_zscore"
    threshold: float = Field(3.5, gt=0, description="|modified z| beyond it is a finding")


class RobustZScoreDetector(WindowDetector):
    anomaly_type = "spike"

    def __init__(self, config: RobustZScoreConfig) -> None:
        super().__init__(config)

    def statistics(self, windows: np.ndarray, values: np.ndarray, lengths: np.ndarray) -> Scores:
        median = row_median(np.sort(windows, axis=1), lengths)
        deviations = np.abs(windows - median[:, None])  # padding stays NaN
        mad = row_median(np.sort(deviations, axis=1), lengths)
        mean_absolute_deviation = fill(deviations, valid_mask(windows, lengths), 0.0).sum(axis=1) / lengths
        # The spread on the standard deviation's scale: MAD / 0.6745, else 1.253314 MeanAD.
        spread = np.where(mad > 0, mad / NORMAL_QUARTILE, MEAN_ABSOLUTE_DEVIATION_SCALE * mean_absolute_deviation)
        spread = np.maximum(spread, self.config.min_scale)
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.where(spread > 0, (values - median) / spread, np.nan)
        return Scores(score=score, baseline=median,
                      statistics={"median": median, "mad": mad, "mean_absolute_deviation": mean_absolute_deviation})
