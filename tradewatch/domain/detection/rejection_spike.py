"""Rejection spike rule: a strategy's order rejection rate too high, with hysteresis.

Reads the ``rejection_rate`` observations (``metrics``: rejected / (accepted + rejected) over
the strategy's last ``rejection_window`` order acknowledgements, a fraction 0..1; one
observation per accepted or rejected order event), one stream per entity (``by``).

Per stream, at each observation i (counting i itself):

    seen_i     = the number of the stream's observations so far
    opens when   rate_i > threshold and seen_i >= min_orders
    clears when  rate_i < clear_below            (clear_below < threshold)
    otherwise    the condition keeps its previous state

``min_orders`` keeps the first few acknowledgements of a strategy (where one rejection out of
three is a rate of 0.33) from paging. The gap between ``threshold`` and ``clear_below`` is the
hysteresis: the rate moves by about 1/rejection_window per order, so a rate hovering around a
single limit would open and clear the condition on alternate orders, one page per crossing.
With the gap, one episode of rejections is one anomaly, cleared only once the rate is clearly
back to normal.

The anomaly (type ``rate_spike``, metric ``rejection_rate``, key
``<name>|rejection_rate|<by>=<entity>``), at the observation that opened it:

    observed = rate     baseline = threshold     score = rate / threshold
    context  = threshold, clear_below, min_orders, orders_seen (seen_i)

and a ``Cleared`` with the same key at the time of the observation that cleared it.
Observations without the entity are skipped.

State, per entity: the observation count (one int) and the key of the open condition. The
state machine is evaluated per stream with a forward fill of the last decisive observation, so
any split of the trail into batches gives the same findings.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tradewatch.domain.detection.anomaly import Anomaly
from tradewatch.domain.detection.base import Batch, Finding, State
from tradewatch.domain.detection.conditions import (
    condition_findings,
    hysteresis,
    in_batch_order,
    transitions,
)
from tradewatch.domain.detection.metrics import REJECTION_RATE
from tradewatch.domain.detection.streams import ObservationRows, Stream, make_anomaly, split_streams


class RejectionSpikeConfig(BaseModel):
    """``threshold`` (0 < threshold <= 1): a rate above it opens the condition.
    ``clear_below`` (0 <= clear_below < threshold): a rate below it clears it.
    ``min_orders`` (>= 1): observations a stream needs before it can open."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    kind: Literal["rejection_spike"] = "rejection_spike"
    severity: Literal["info", "warning", "critical"] = "warning"
    by: Literal["symbol", "strategy_id"] = "strategy_id"
    threshold: float = Field(0.2, gt=0.0, le=1.0, allow_inf_nan=False)
    clear_below: float = Field(0.1, ge=0.0, le=1.0, allow_inf_nan=False)
    min_orders: int = Field(20, ge=1)

    @model_validator(mode="after")
    def _hysteresis_gap(self) -> RejectionSpikeConfig:
        if self.clear_below >= self.threshold:
            raise ValueError(
                f"detector {self.name!r} (rejection_spike): clear_below ({self.clear_below}) must be less than "
                f"threshold ({self.threshold}); use a value from 0 up to (not including) the threshold"
            )
        return self


class RejectionSpikeRule:
    """Opens when a stream's rejection rate exceeds ``threshold`` (after ``min_orders``
    observations); clears when it falls below ``clear_below`` (see the module docstring)."""

    def __init__(self, config: RejectionSpikeConfig) -> None:
        self.config = config
        self.name = config.name

    def detect(self, batch: Batch, state: State) -> list[Finding]:
        seen: dict = state.setdefault("seen", {})
        open_keys: dict = state.setdefault("open", {})
        found: list[tuple[int, Finding]] = []
        streams = split_streams(batch.observations, REJECTION_RATE, self.config.by, finite_only=False)
        table = ObservationRows.of(batch.observations) if streams else None
        for stream in streams:
            found.extend(self._stream(stream, table, seen, open_keys))
        return in_batch_order(found)  # batch order, as a single pass would give

    def tick(self, now_ns: int, state: State) -> list[Finding]:
        return []

    def _stream(self, stream: Stream, table: ObservationRows, seen: dict,
                open_keys: dict) -> list[tuple[int, Finding]]:
        config = self.config
        entity, rate = stream.key, stream.values
        counts = int(seen.get(entity, 0)) + np.arange(1, rate.size + 1)
        seen[entity] = int(counts[-1])
        was_open = entity in open_keys
        condition = hysteresis((rate > config.threshold) & (counts >= config.min_orders), rate < config.clear_below,
                               was_open)
        opens, clears = transitions(condition, was_open)
        return condition_findings(entity, opens, clears, stream.rows, table.occurred_at_ns[stream.rows], open_keys,
                                  lambda i: self._anomaly(entity, table, int(stream.rows[i]), float(rate[i]),
                                                          int(counts[i])))

    def _anomaly(self, entity: str, table: ObservationRows, row: int, rate: float, orders_seen: int) -> Anomaly:
        config = self.config
        return make_anomaly(
            config, "rate_spike", table, row, entity, severity=config.severity, metric=REJECTION_RATE, observed=rate,
            baseline=config.threshold, score=rate / config.threshold,
            context={"threshold": config.threshold, "clear_below": config.clear_below,
                     "min_orders": config.min_orders, "orders_seen": orders_seen},
        )
