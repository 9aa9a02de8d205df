"""Metric streams and the trailing-window machinery the statistical detectors share.

A stream is the observations of one metric (``config.metric``) for one entity: the value of
the observation column ``config.by`` ("symbol" or "strategy_id"); observations whose entity is
missing (None) belong to no stream and are ignored. Streams are independent: one never moves
another's baseline.

Window detectors (z-score, robust z-score, IQR) score each observation against the PREVIOUS
``window`` observations of its stream, never including itself (an outlier must not inflate its
own baseline). Before ``warmup`` observations have been seen the stream is not scored; between
``warmup`` and ``window`` the window is all the stream's previous observations. The window is
the plain trailing one, outliers included: contamination by earlier outliers is what the
robust detectors (median / MAD, quartiles) are for, and a sustained shift, which a trailing
window absorbs after ``window`` observations, is the EWMA chart's job.

A finding is raised when the score (signed: positive above the baseline, negative below) is
strictly beyond ``threshold`` in the configured ``direction`` ("both": |score| > threshold,
"high": score > threshold, "low": score < -threshold); its severity is "critical" when
|score| >= ``critical_threshold`` (if set), else the configured ``severity``. An observation
whose window cannot give a score (zero spread) is not scored; each detector documents when.

State, per detector: ``{"streams": {entity: {"values": float64 array of the last ``window``
values, "count": observations seen}}}``. A new array is stored after every batch (never a
view into a batch), so a deep copy or a re-encoded copy of the state is independent of it.

Batch independence: scoring depends only on each observation's own window, and the window
statistics are computed from the window's values alone, never from running sums whose rounding
would depend on where a batch started, so cutting the trail into batches anywhere gives
bit-for-bit the same findings. Vectorised per stream: full windows are the rows of
``numpy.lib.stride_tricks.sliding_window_view`` over the stored window followed by the batch's
values (in chunks of ``CHUNK_ROWS`` rows); the windows of a young stream (fewer than ``window``
previous values) are its prefixes, padded on the right with NaN to the same width, so a window
always has the same layout whichever batch it is computed in. Cost: O(window) per observation
(plus a row sort for the median and quartile detectors).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from tradewatch.domain.detection.anomaly import Anomaly, Cleared
from tradewatch.domain.detection.base import Batch, State
from tradewatch.domain.detection.metrics import METRICS

MetricName = Literal[METRICS]  # type: ignore[valid-type]  # Literal of the tuple's names
Direction = Literal["both", "high", "low"]
#: Rows of windows handled at once: bounds the temporary (rows x window) arrays to a few MB.
CHUNK_ROWS = 2048


class StreamDetectorConfig(BaseModel):
    """The settings every stream detector shares (each detector adds ``kind`` and its
    ``threshold`` default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    severity: Literal["info", "warning", "critical"] = "warning"
    metric: MetricName
    by: Literal["symbol", "strategy_id"] = "symbol"
    window: int = Field(200, ge=5, description="previous observations a value is scored against")
    warmup: int = Field(30, ge=2, description="observations of a stream before its first score")
    threshold: float = Field(gt=0)
    critical_threshold: float | None = Field(None, description="at or above it the severity is critical")
    direction: Direction = "both"
    # Why a floor: a stream that barely varies (a one-tick spread in bps moves only with the
    # price) has a tiny spread statistic, and an ordinary two-tick quote would then score in the
    # thousands. The floor is in the metric's unit and says what variation is too small to matter.
    min_scale: float = Field(0.0, ge=0, description="floor of the spread statistic a score divides by, in the metric's unit")

    @field_validator("warmup")
    @classmethod
    def _warmup_within_window(cls, value: int, info: ValidationInfo) -> int:
        window = info.data.get("window")
        if window is not None and value > window:
            raise ValueError(f"detector {info.data.get('name')!r}: warmup ({value}) must be <= window ({window})")
        return value

    @field_validator("critical_threshold")
    @classmethod
    def _critical_above_threshold(cls, value: float | None, info: ValidationInfo) -> float | None:
        threshold = info.data.get("threshold")
        if value is not None and threshold is not None and not value > threshold:
            raise ValueError(f"detector {info.data.get('name')!r}: critical_threshold ({value}) must be greater than "
                             f"threshold ({threshold}), or left out")
        return value


@dataclass(frozen=True)
class Stream:
    """One entity's observations in a batch: their row positions in the observation frame and
    their values, in order."""

    key: str
    rows: np.ndarray  # int64
    values: np.ndarray  # float64


def split_streams(observations: pd.DataFrame, metric: str, by: str, *, finite_only: bool) -> list[Stream]:
    """The streams of ``metric`` keyed by column ``by`` (rows without one are skipped), in
    order of first appearance; ``Stream.rows`` are row positions in ``observations``, so
    sorting findings by them restores batch order. ``finite_only``: skip non-finite values
    too. Observations are finite by contract (the extractor emits no other); the window
    detectors still ask for it, since one non-finite value would poison a window for good,
    while the rules counting observations (latency excursion, rejection spike, loss streak)
    take every observation, as they always have."""
    if len(observations) == 0:
        return []
    values = observations["value"].to_numpy(dtype=np.float64)
    wanted = (observations["metric"] == metric).to_numpy() & observations[by].notna().to_numpy()
    if finite_only:
        wanted &= np.isfinite(values)
    selected = np.flatnonzero(wanted)
    if len(selected) == 0:
        return []
    codes, keys = pd.factorize(observations[by].to_numpy(dtype=object)[selected])
    order = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=len(keys)))
    streams = []
    for code, key in enumerate(keys):
        rows = selected[order[(bounds[code - 1] if code else 0):bounds[code]]]
        streams.append(Stream(str(key), rows, values[rows]))
    return streams


@dataclass
class Scores:
    """A window detector's answer for some observations: ``score`` (NaN = not scored),
    ``baseline`` and the named statistics reported in the finding's context."""

    score: np.ndarray
    baseline: np.ndarray
    statistics: dict[str, np.ndarray] = field(default_factory=dict)


# --- row statistics of (rows, width) windows, rows right-padded with NaN beyond `lengths` ---------


def valid_mask(windows: np.ndarray, lengths: np.ndarray) -> np.ndarray | None:
    """Which cells hold values; None when every row is full (no padding)."""
    width = windows.shape[1]
    if len(lengths) == 0 or lengths.min() == width:
        return None
    return np.arange(width)[None, :] < lengths[:, None]


def fill(windows: np.ndarray, valid: np.ndarray | None, value: float) -> np.ndarray:
    """``windows`` with the padding replaced by ``value`` (for sums, minima and maxima)."""
    return windows if valid is None else np.where(valid, windows, value)


def order_statistic(ordered: np.ndarray, index: np.ndarray) -> np.ndarray:
    """ordered[i, index[i]] of row-sorted windows (NaN padding sorts last, out of the way)."""
    return np.take_along_axis(ordered, index[:, None].astype(np.intp), axis=1)[:, 0]


def row_median(ordered: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The median of each row of row-sorted windows, as ``numpy.median``: the middle value, or
    the mean of the two middle values of an even count."""
    return (order_statistic(ordered, (lengths - 1) // 2) + order_statistic(ordered, lengths // 2)) / 2


def row_quantile(ordered: np.ndarray, lengths: np.ndarray, q: float) -> np.ndarray:
    """The q-quantile of each row of row-sorted windows by numpy's default "linear" method,
    with numpy's own interpolation formula (identical to ``numpy.quantile``): position
    q (n - 1) in the sorted values, a + (b - a) g, or b - (b - a)(1 - g) for g >= 0.5."""
    virtual = q * (lengths - 1)
    below = np.floor(virtual)
    gamma = virtual - below
    a = order_statistic(ordered, below)
    b = order_statistic(ordered, np.minimum(below + 1, lengths - 1))
    difference = b - a
    return np.where(gamma >= 0.5, b - difference * (1 - gamma), a + difference * gamma)


def severity_of(config: StreamDetectorConfig, score: float) -> str:
    critical = config.critical_threshold
    return "critical" if critical is not None and abs(score) >= critical else config.severity


def beyond_threshold(config: StreamDetectorConfig, score: np.ndarray) -> np.ndarray:
    """Which (signed) scores are a finding under the configured direction (NaN never is)."""
    with np.errstate(invalid="ignore"):
        if config.direction == "high":
            return score > config.threshold
        if config.direction == "low":
            return score < -config.threshold
        return np.abs(score) > config.threshold


@dataclass(frozen=True)
class ObservationRows:
    """The observation frame's columns a finding quotes, as arrays."""

    event_id: np.ndarray
    occurred_at_ns: np.ndarray
    symbol: np.ndarray
    strategy_id: np.ndarray

    @classmethod
    def of(cls, observations: pd.DataFrame) -> ObservationRows:
        return cls(observations["event_id"].to_numpy(dtype=object),
                   observations["occurred_at_ns"].to_numpy(dtype=np.int64),
                   observations["symbol"].to_numpy(dtype=object),
                   observations["strategy_id"].to_numpy(dtype=object))


def _text_or_none(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and value != value) else str(value)


def make_anomaly(config: Any, anomaly_type: str, rows: ObservationRows, row: int, entity: str, *, severity: str,
                 observed: float, baseline: float, score: float, context: dict[str, Any], metric: str | None = None,
                 event_ids: tuple[str, ...] | None = None) -> Anomaly:
    """An anomaly of detector ``config`` (its ``name`` and ``by``) about the stream entity
    ``entity``, detected at observation ``row`` of ``rows`` (its event time, symbol, strategy
    and, unless ``event_ids`` is given, its event id). ``metric`` defaults to ``config.metric``.
    ``severity`` is explicit: ``severity_of(config, score)`` for a window detector, the rule's
    own choice (usually ``config.severity``) for a rule."""
    return Anomaly(
        detector=config.name, anomaly_type=anomaly_type, severity=severity,
        metric=config.metric if metric is None else metric, observed=float(observed), baseline=float(baseline),
        score=float(score), entity_kind=config.by, entity=entity, detected_at_ns=int(rows.occurred_at_ns[row]),
        symbol=_text_or_none(rows.symbol[row]), strategy_id=_text_or_none(rows.strategy_id[row]),
        event_ids=(str(rows.event_id[row]),) if event_ids is None else event_ids, context=context,
    )


def condition_key(config: StreamDetectorConfig, entity: str) -> str:
    """The ``Anomaly.key`` of this detector's findings about ``entity`` (for ``Cleared``)."""
    return Anomaly.make_key(config.name, config.metric, config.by, entity)


class WindowDetector(ABC):
    """Base of the trailing-window detectors: subclasses give ``statistics``."""

    anomaly_type = "spike"

    def __init__(self, config: StreamDetectorConfig) -> None:
        self.config = config
        self.name = config.name

    @abstractmethod
    def statistics(self, windows: np.ndarray, values: np.ndarray, lengths: np.ndarray) -> Scores:
        """Scores of ``values[i]`` against the window ``windows[i, :lengths[i]]``: ``windows``
        is (rows, window); a row shorter than ``window`` (a young stream) is padded on the
        right with NaN. Must depend on each row's values only (see the module doc)."""

    def tick(self, now_ns: int, state: State) -> list[Anomaly | Cleared]:
        return []

    def detect(self, batch: Batch, state: State) -> list[Anomaly | Cleared]:
        streams_state = state.setdefault("streams", {})
        found: list[tuple[int, Anomaly]] = []
        rows = None
        for stream in split_streams(batch.observations, self.config.metric, self.config.by, finite_only=True):
            stored = streams_state.get(stream.key) or {"values": np.zeros(0), "count": 0}
            history = np.concatenate([np.asarray(stored["values"], dtype=np.float64), stream.values])
            scores, lengths = self._score_stream(history, len(history) - len(stream.values), int(stored["count"]))
            flagged = np.flatnonzero(beyond_threshold(self.config, scores.score))
            if len(flagged) and rows is None:
                rows = ObservationRows.of(batch.observations)
            for k in flagged.tolist():
                context = {"window": self.config.window, "window_observations": int(lengths[k]),
                           "threshold": self.config.threshold}
                context.update({name: float(values[k]) for name, values in scores.statistics.items()})
                row = int(stream.rows[k])
                found.append((row, make_anomaly(self.config, self.anomaly_type, rows, row, stream.key,
                                                severity=severity_of(self.config, scores.score[k]),
                                                observed=stream.values[k], baseline=scores.baseline[k],
                                                score=scores.score[k], context=context)))
            streams_state[stream.key] = {"values": history[-self.config.window:].copy(),
                                         "count": int(stored["count"]) + len(stream.values)}
        found.sort(key=lambda item: item[0])
        return [anomaly for _, anomaly in found]

    def _score_stream(self, history: np.ndarray, stored: int, count: int) -> tuple[Scores, np.ndarray]:
        """Scores of ``history[stored:]``, each against its previous ``window`` values (the
        first ``stored`` values of ``history`` are the state's window; ``count`` observations
        preceded this batch)."""
        window, n = self.config.window, len(history) - stored
        previous = np.minimum(count + np.arange(n), window)  # the window length of each new value
        score, baseline = np.full(n, np.nan), np.full(n, np.nan)
        statistics: dict[str, np.ndarray] = {}

        def put(at: np.ndarray, result: Scores) -> None:
            score[at], baseline[at] = result.score, result.baseline
            for name, values in result.statistics.items():
                statistics.setdefault(name, np.full(n, np.nan))[at] = values

        # Windows shorter than `window` (a young stream, count < window, so all of its values are
        # in `history`): the prefixes history[:length], padded with NaN to the full width.
        young = np.flatnonzero((previous >= self.config.warmup) & (previous < window))
        if len(young):
            padded = np.full(window, np.nan)
            padded[:min(window, len(history))] = history[:window]
            lengths = previous[young]
            windows = np.where(np.arange(window)[None, :] < lengths[:, None], padded[None, :], np.nan)
            put(young, self.statistics(windows, history[stored + young], lengths))
        # Full windows: the rows of a sliding window view, chunk by chunk.
        full = np.flatnonzero(previous >= window)
        if len(full):
            views = sliding_window_view(history, window)  # views[r] = history[r:r + window]
            for start in range(0, len(full), CHUNK_ROWS):
                at = full[start:start + CHUNK_ROWS]  # consecutive
                rows = views[stored + at[0] - window:stored + at[-1] - window + 1]
                put(at, self.statistics(rows, history[stored + at], np.full(len(at), window)))
        return Scores(score, baseline, statistics), previous
