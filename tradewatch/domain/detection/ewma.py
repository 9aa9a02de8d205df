"""EWMA control chart: a sustained shift of a stream's level (Roberts 1959; Lucas and Saccucci 1990).

A point detector sees one value at a time; a level shift of one standard deviation is invisible
to it, and a trailing window absorbs it after ``window`` values. The EWMA chart averages
recent values so that a small persistent shift accumulates until it crosses the control limit.

Per stream (see ``streams``), with x_t its t-th observation:

* Warm-up: the first ``warmup`` observations give the baseline mean mu and standard deviation
  sigma (sample std, ddof = 1). They are not charted; the chart starts at z = mu.
* Chart: z_t = lambda x_t + (1 - lambda) z_{t-1}, lambda = ``smoothing`` (default 0.2).
  In control, z_t has standard deviation sigma_z = sigma sqrt(lambda / (2 - lambda))
  (the asymptotic value), and the score is score_t = (z_t - mu) / sigma_z, in chart standard
  deviations.
* Alarm while score_t is beyond L = ``threshold`` (default 3.5) in the configured direction,
  i.e. |z_t - mu| > L sigma sqrt(lambda / (2 - lambda)) for "both".
* Baseline: after every observation that leaves the chart in control, mu and sigma follow the
  stream slowly (exponentially weighted, alpha = ``alpha_baseline``, default 0.01, a memory of
  about 2 / alpha - 1 = 199 observations): d = x - mu, mu += alpha d,
  sigma^2 = (1 - alpha) (sigma^2 + alpha d^2). During an alarm the baseline is frozen, so the
  shift being reported is not learnt as the new normal while it lasts.

Findings. The alarm is a condition (anomaly_type "level_shift"): one ``Anomaly`` when it starts
(observed = x_t, baseline = mu, score = score_t; the context gives mu, sigma, z, the control
limit and the settings), one more only if the same alarm later reaches ``critical_threshold``
(the escalation), and ``Cleared(key, at)`` at the first observation whose z_t is back inside
the limit (key = the anomaly's key, at = that observation's occurred_at_ns).

A warm-up whose values are all equal (sigma = 0) gives no control limit: the chart is not
scored until the baseline updates have given sigma a positive value (any variation does).

``window`` is accepted for a configuration uniform with the other stream detectors and only
bounds ``warmup``: the chart keeps no window, its memory is set by ``smoothing`` and
``alpha_baseline``.

State per stream: {"count", "mu", "m2" (the warm-up's running sum of squares), "sigma", "z",
"alarm" (None, or the severity reported for the current alarm)}; updated observation by
observation in a loop over the stream's values (the chart and the frozen-while-alarmed baseline
are one recursion), so any cut into batches gives the same result.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field

from tradewatch.domain.detection.anomaly import Anomaly, Cleared
from tradewatch.domain.detection.base import Batch, State
from tradewatch.domain.detection.streams import (
    ObservationRows,
    StreamDetectorConfig,
    condition_key,
    make_anomaly,
    severity_of,
    split_streams,
)


class EwmaConfig(StreamDetectorConfig):
    kind: Literal["ewma"] = "ewma"
    threshold: float = Field(3.5, gt=0, description="L: the control limit in chart standard deviations")
    smoothing: float = Field(0.2, gt=0, le=1, description="lambda: the chart's weight of the newest value")
    alpha_baseline: float = Field(0.01, gt=0, lt=1, description="the baseline's weight of the newest in-control value")


def _new_stream() -> dict[str, Any]:
    return {"count": 0, "mu": 0.0, "m2": 0.0, "sigma": 0.0, "z": 0.0, "alarm": None}


class EwmaDetector:
    anomaly_type = "level_shift"

    def __init__(self, config: EwmaConfig) -> None:
        self.config = config
        self.name = config.name
        self._chart_scale = math.sqrt(config.smoothing / (2 - config.smoothing))

    def tick(self, now_ns: int, state: State) -> list[Anomaly | Cleared]:
        return []

    def detect(self, batch: Batch, state: State) -> list[Anomaly | Cleared]:
        streams_state = state.setdefault("streams", {})
        found: list[tuple[int, Anomaly | Cleared]] = []
        rows = None
        for stream in split_streams(batch.observations, self.config.metric, self.config.by, finite_only=True):
            chart = streams_state.get(stream.key) or _new_stream()
            events = self._run(chart, stream.values.tolist())
            if events and rows is None:
                rows = ObservationRows.of(batch.observations)
            for k, kind, x, context in events:
                row = int(stream.rows[k])
                if kind == "clear":
                    found.append((row, Cleared(condition_key(self.config, stream.key), int(rows.occurred_at_ns[row]))))
                else:
                    score = context.pop("score")
                    found.append((row, make_anomaly(self.config, self.anomaly_type, rows, row, stream.key,
                                                    severity=severity_of(self.config, score), observed=x,
                                                    baseline=context["mu"], score=score, context=context)))
            streams_state[stream.key] = chart
        found.sort(key=lambda item: item[0])
        return [finding for _, finding in found]

    def _run(self, chart: dict[str, Any], values: list[float]) -> list[tuple[int, str, float, dict[str, Any]]]:
        """Advance ``chart`` over ``values``; the alarm starts, escalations and clears as
        (index, "alarm" | "clear", x, context)."""
        config = self.config
        lam, alpha, limit, warmup = config.smoothing, config.alpha_baseline, config.threshold, config.warmup
        count, mu, m2, sigma, z, alarm = (chart["count"], chart["mu"], chart["m2"], chart["sigma"], chart["z"],
                                          chart["alarm"])
        events: list[tuple[int, str, float, dict[str, Any]]] = []
        for k, x in enumerate(values):
            count += 1
            if count <= warmup:  # Welford's running mean and sum of squares
                delta = x - mu
                mu += delta / count
                m2 += delta * (x - mu)
                if count == warmup:
                    sigma = math.sqrt(m2 / (count - 1))
                    z = mu
                continue
            z = lam * x + (1 - lam) * z
            scale = max(sigma, config.min_scale) * self._chart_scale
            score = (z - mu) / scale if scale > 0 else math.nan
            outside = (score > limit if config.direction == "high" else score < -limit if config.direction == "low"
                       else abs(score) > limit)  # False for NaN
            if outside:
                severity = severity_of(config, score)
                if alarm is None or (severity == "critical" and alarm != "critical"):
                    alarm = severity
                    events.append((k, "alarm", x, {
                        "threshold": limit, "mu": mu, "sigma": sigma, "z": z, "score": score,
                        "control_limit": limit * scale, "smoothing": lam, "alpha_baseline": alpha}))
                continue
            if alarm is not None:
                alarm = None
                events.append((k, "clear", x, {}))
            delta = x - mu
            mu += alpha * delta
            sigma = math.sqrt((1 - alpha) * (sigma * sigma + alpha * delta * delta))
        chart.update(count=count, mu=mu, m2=m2, sigma=sigma, z=z, alarm=alarm)
        return events
