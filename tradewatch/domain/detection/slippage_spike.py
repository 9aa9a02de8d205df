"""Slippage spike rule: a fill whose slippage exceeds a fixed limit.

Reads the ``slippage_bps`` observations (``metrics``: s (price - arrival_price) / arrival_price
* 1e4 with s = +1 for a buy, -1 for a sell, so a positive value is a cost, in basis points).

For every observation with ``value > threshold_bps`` (strictly above; a negative value, price
improvement, never fires) the rule reports a point anomaly of type ``spike``:

    observed = value (bps)        baseline = threshold_bps
    score    = value / threshold_bps (threshold multiples, > 1 when it fires)
    severity = "critical" when critical_bps is set and value > critical_bps, else the configured one

The finding is about the stream's entity (``by``: the fill's symbol or strategy_id); an
observation without that entity (None) cannot be attributed and is skipped. Its key is
``<name>|slippage_bps|<by>=<entity>``, so the pipeline keeps one open anomaly per entity and
resolves it after its quiet period (a spike is a point anomaly; the rule never emits Cleared).

The rule is stateless: each fill is judged on its own, so any split of the trail into batches
gives the same findings.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tradewatch.domain.detection.anomaly import Anomaly
from tradewatch.domain.detection.base import Batch, Finding, State
from tradewatch.domain.detection.metrics import SLIPPAGE_BPS
from tradewatch.domain.detection.streams import ObservationRows, make_anomaly


class SlippageSpikeConfig(BaseModel):
    """``threshold_bps``: the cost in bps above which a fill is reported (> 0).
    ``critical_bps``: optional; above it the finding is critical (must exceed threshold_bps).
    ``by``: the entity a finding is about, "symbol" or "strategy_id"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    kind: Literal["slippage_spike"] = "slippage_spike"
    severity: Literal["info", "warning", "critical"] = "warning"
    threshold_bps: float = Field(50.0, gt=0.0, allow_inf_nan=False)
    critical_bps: float | None = Field(None, gt=0.0, allow_inf_nan=False)
    by: Literal["symbol", "strategy_id"] = "symbol"

    @model_validator(mode="after")
    def _critical_above_threshold(self) -> SlippageSpikeConfig:
        if self.critical_bps is not None and self.critical_bps <= self.threshold_bps:
            raise ValueError(
                f"detector {self.name!r} (slippage_spike): critical_bps ({self.critical_bps}) must be greater than "
                f"threshold_bps ({self.threshold_bps}); set it above the threshold or leave it out"
            )
        return self


class SlippageSpikeRule:
    """Reports every fill whose slippage_bps is above ``threshold_bps`` (see the module docstring)."""

    def __init__(self, config: SlippageSpikeConfig) -> None:
        self.config = config
        self.name = config.name

    def detect(self, batch: Batch, state: State) -> list[Finding]:
        observations = batch.observations
        spikes = self._spikes(observations)
        if len(spikes) == 0:
            return []
        table = ObservationRows.of(observations)
        values = observations["value"].to_numpy(dtype=np.float64)
        entities = observations[self.config.by].to_numpy(dtype=object)
        return [self._anomaly(table, row, float(values[row]), str(entities[row])) for row in spikes.tolist()]

    def tick(self, now_ns: int, state: State) -> list[Finding]:
        return []

    def _spikes(self, observations: pd.DataFrame) -> np.ndarray:
        """Row positions of the spikes, in batch order."""
        # One boolean mask over the whole batch; only the (few) spikes become Python objects.
        values = observations["value"].to_numpy(dtype=np.float64)
        mask = (
            (observations["metric"].to_numpy() == SLIPPAGE_BPS)
            & (values > self.config.threshold_bps)
            & observations[self.config.by].notna().to_numpy()
        )
        return np.flatnonzero(mask)

    def _anomaly(self, table: ObservationRows, row: int, value: float, entity: str) -> Anomaly:
        config = self.config
        critical = config.critical_bps is not None and value > config.critical_bps
        return make_anomaly(
            config, "spike", table, row, entity, metric=SLIPPAGE_BPS, observed=value,
            baseline=config.threshold_bps, score=value / config.threshold_bps,
            severity="critical" if critical else config.severity,
            context={"threshold_bps": config.threshold_bps, "critical_bps": config.critical_bps},
        )
