"""IQR detector: Tukey's fences on the stream's recent quartiles.

For an observation x of a stream and the previous ``window`` observations w_1..w_n of that
stream (never x itself; see ``streams`` for streams, warm-up and why the trailing window):

    Q1, Q3 = the 25th and 75th percentiles of w, numpy's default "linear" method: position
             p (n - 1) in the sorted values, interpolated linearly between its neighbours
    IQR    = Q3 - Q1
    fences = Q1 - k IQR and Q3 + k IQR,   k = ``threshold`` (default 3.0, Tukey's "far out")

The score is the distance beyond the nearer quartile in IQRs, signed by side:

    score = (x - Q3) / IQR   when x > Q3   (positive: above)
          = (x - Q1) / IQR   when x < Q1   (negative: below, i.e. -(Q1 - x) / IQR)
          = 0                otherwise

so x is outside a fence exactly when |score| > k, and ``direction`` "high" / "low" selects the
upper / lower fence. A finding (anomaly_type "spike") for a value outside the fence(s);
"critical" at |score| >= ``critical_threshold``. The IQR is floored at ``min_scale`` (the
metric's unit) when set. An IQR of 0 (at least half the window on one value) gives no score: every other value would be infinitely many IQRs out. The baseline is the
window's median; the context gives q1, q3, iqr and the two fences.

Quartiles need no distribution and ignore up to a quarter of the window being outliers on
either side, which suits skewed metrics such as latencies.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from tradewatch.domain.detection.streams import Scores, StreamDetectorConfig, WindowDetector, row_median, row_quantile


class IqrConfig(StreamDetectorConfig):
    kind: Literal["iqr"] = "iqr"
    threshold: float = Field(3.0, gt=0, description="k of the fences Q1 - k IQR, Q3 + k IQR")


class IqrDetector(WindowDetector):
    anomaly_type = "spike"

    def __init__(self, config: IqrConfig) -> None:
        super().__init__(config)

    def statistics(self, windows: np.ndarray, values: np.ndarray, lengths: np.ndarray) -> Scores:
        ordered = np.sort(windows, axis=1)  # padding (NaN) sorts last
        q1, q3 = row_quantile(ordered, lengths, 0.25), row_quantile(ordered, lengths, 0.75)
        iqr = np.maximum(q3 - q1, self.config.min_scale)
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.where(values > q3, (values - q3) / iqr, np.where(values < q1, (values - q1) / iqr, 0.0))
            score = np.where(iqr > 0, score, np.nan)
        k = self.config.threshold
        return Scores(score=score, baseline=row_median(ordered, lengths),
                      statistics={"q1": q1, "q3": q3, "iqr": iqr, "lower_fence": q1 - k * iqr,
                                  "upper_fence": q3 + k * iqr})
