"""Latency excursion rule: too many slow fills (or acknowledgements) among a stream's latest.

Reads one latency metric (``fill_latency_seconds``: fill time minus the order's submission
time; or ``acknowledgement_latency_seconds``: acceptance minus submission; seconds), one stream
per entity (``by``: symbol or strategy_id).

Definitions, per stream, at each observation i (counting i itself):

    slow_j  = 1 if value_j > threshold_seconds else 0
    count_i = sum of slow_j over the stream's last ``window`` observations (fewer at the start)
    above_i = count_i >= min_count

This is a condition, not a point: it opens at the first observation where ``above`` becomes
true (an ``Anomaly`` of type ``latency_excursion``) and stays open until the first observation
where it is false again (a ``Cleared`` with the same key, at that observation's time). One slow
fill among fast ones is noise; ``min_count`` of the last ``window`` says the venue or the
router is slow now.

    observed = the latency of the observation that opened it (s)
    baseline = threshold_seconds        score = observed / threshold_seconds
    context  = count, window, min_count, threshold_seconds

Key: ``<name>|<metric>|<by>=<entity>``. Observations without the entity (None) are skipped.

State, per stream: the slow flags of its last ``window`` observations (an int64 array, so at
most ``window`` numbers per entity) and the keys of the open conditions. A batch is processed
per stream with cumulative sums over the stored flags followed by the new ones, so the counts
(integers) are exactly those of a single pass: any split of the trail into batches gives the
same findings.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tradewatch.domain.detection.anomaly import Anomaly
from tradewatch.domain.detection.base import Batch, Finding, State
from tradewatch.domain.detection.conditions import (
    condition_findings,
    in_batch_order,
    range_sums,
    transitions,
)
from tradewatch.domain.detection.metrics import FILL_LATENCY_SECONDS
from tradewatch.domain.detection.streams import ObservationRows, Stream, make_anomaly, split_streams

_EMPTY = np.zeros(0, dtype=np.int64)


class LatencyExcursionConfig(BaseModel):
    """``metric``: fill_latency_seconds or acknowledgement_latency_seconds.
    ``threshold_seconds`` (> 0): a latency above it is slow. ``window`` (>= 1): how many of the
    stream's latest observations are looked at. ``min_count`` (1..window): how many slow ones
    among them open the condition."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    kind: Literal["latency_excursion"] = "latency_excursion"
    severity: Literal["info", "warning", "critical"] = "warning"
    metric: Literal["fill_latency_seconds", "acknowledgement_latency_seconds"] = FILL_LATENCY_SECONDS
    by: Literal["symbol", "strategy_id"] = "strategy_id"
    threshold_seconds: float = Field(2.0, gt=0.0, allow_inf_nan=False)
    window: int = Field(10, ge=1, le=10_000)
    min_count: int = Field(3, ge=1)

    @model_validator(mode="after")
    def _min_count_fits_window(self) -> LatencyExcursionConfig:
        if self.min_count > self.window:
            raise ValueError(
                f"detector {self.name!r} (latency_excursion): min_count ({self.min_count}) is larger than window "
                f"({self.window}), so it could never fire; use a min_count from 1 to {self.window}"
            )
        return self


def window_counts(stored: np.ndarray, new: np.ndarray, window: int) -> np.ndarray:
    """For each element of ``new``: the sum of the last ``window`` elements of stored + new
    up to and including it."""
    end = np.arange(stored.size + 1, stored.size + new.size + 1)
    return range_sums(np.concatenate((stored, new)), np.maximum(end - window, 0), end)


class LatencyExcursionRule:
    """Opens when at least ``min_count`` of a stream's last ``window`` latencies exceed
    ``threshold_seconds``; clears when fewer do (see the module docstring)."""

    def __init__(self, config: LatencyExcursionConfig) -> None:
        self.config = config
        self.name = config.name

    def detect(self, batch: Batch, state: State) -> list[Finding]:
        flags_by_entity: dict = state.setdefault("flags", {})
        open_keys: dict = state.setdefault("open", {})
        found: list[tuple[int, Finding]] = []
        streams = split_streams(batch.observations, self.config.metric, self.config.by, finite_only=False)
        table = ObservationRows.of(batch.observations) if streams else None
        for stream in streams:
            found.extend(self._stream(stream, table, flags_by_entity, open_keys))
        # Streams are processed one after another; batch order makes the output independent of batching.
        return in_batch_order(found)

    def tick(self, now_ns: int, state: State) -> list[Finding]:
        return []

    def _stream(self, stream: Stream, table: ObservationRows, flags_by_entity: dict,
                open_keys: dict) -> list[tuple[int, Finding]]:
        config = self.config
        entity, values = stream.key, stream.values
        stored = flags_by_entity.get(entity, _EMPTY)[-config.window:]
        slow = (values > config.threshold_seconds).astype(np.int64)
        counts = window_counts(stored, slow, config.window)
        opens, clears = transitions(counts >= config.min_count, entity in open_keys)
        flags_by_entity[entity] = np.concatenate((stored, slow))[-config.window:].astype(np.int64)
        return condition_findings(entity, opens, clears, stream.rows, table.occurred_at_ns[stream.rows], open_keys,
                                  lambda i: self._anomaly(entity, table, int(stream.rows[i]), float(values[i]),
                                                          int(counts[i])))

    def _anomaly(self, entity: str, table: ObservationRows, row: int, value: float, count: int) -> Anomaly:
        config = self.config
        return make_anomaly(
            config, "latency_excursion", table, row, entity, severity=config.severity, observed=value,
            baseline=config.threshold_seconds, score=value / config.threshold_seconds,
            context={"count": count, "window": config.window, "min_count": config.min_count,
                     "threshold_seconds": config.threshold_seconds},
        )
