"""Loss streak rule: too many losing round trips in a row, or losing too fast.

Reads the ``round_trip_pnl_usd`` observations (the realized PnL of one round trip: the change
of a position's realized_pnl, account currency), one stream per entity (``by``: strategy_id by
default, or symbol). Two conditions per entity, each with its own key:

(a) Consecutive losses, metric ``round_trip_pnl_usd``, key ``<name>|round_trip_pnl_usd|<by>=<entity>``.

    streak_i = the number of losing trips (pnl < 0) since the stream's last winning trip (pnl > 0)

A trip with pnl == 0 (flat, or fees exactly offset) neither extends nor breaks a streak: it
says nothing about whether the strategy is losing. The condition opens at the trip where the
streak reaches ``max_consecutive_losses`` (N):

    observed = streak (N)     baseline = N     score = streak / N
    event_ids = the event ids of the streak's last N losing trips (oldest first)
    context   = max_consecutive_losses, trip_pnl_usd (those N trips' PnL), total_pnl_usd

Further losses do not report it again (one incident, one page); the next winning trip clears
it (``Cleared`` at that trip's time). Silence does not clear it: the last N trips are still
losses until a trip says otherwise.

(b) Drawdown speed, metric ``drawdown_speed_usd`` (enabled when ``drawdown_usd`` is set),
key ``<name>|drawdown_speed_usd|<by>=<entity>``.

    pnl_window_i = sum of the stream's trip PnL with time in (t_i - drawdown_window_seconds, t_i]

t is the observation's event time; an observation stamped earlier than one before it in the
stream is counted at the stream's latest time (the window only moves forward). The condition
opens when pnl_window < -drawdown_usd:

    observed = pnl_window (USD, negative)     baseline = -drawdown_usd
    score    = -pnl_window / drawdown_usd (threshold multiples, > 1 when it opens)

and clears at the first observation where pnl_window >= -drawdown_usd again. Because a
strategy that lost fast is often halted (no further trips to re-evaluate it), ``tick(now)``
also judges the window ending at ``now`` (tradewatch's clock against event times) and clears
an open drawdown whose trailing sum is back above the limit; detect() findings never depend
on ticks.

Both findings have anomaly type ``loss_streak``. Observations without the entity are skipped.

Batching: sums are taken in integer micro-dollars (round(pnl * 1e6)), so the window sums are
exact and a split of the trail into batches gives exactly the findings of one pass (float
cumulative sums would differ in the last bits with where the split falls).

State, per entity: the current streak length with the ids and PnL of its last N losing trips
(at most N each), the (time, micro-dollar PnL) of the trips still inside the drawdown window
(pruned by age, so bounded by the trips of one window), and the keys of the open conditions.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tradewatch.domain.detection.anomaly import Anomaly, Cleared
from tradewatch.domain.detection.base import Batch, Finding, State
from tradewatch.domain.detection.conditions import (
    condition_findings,
    in_batch_order,
    range_sums,
    running_maximum,
    transitions,
)
from tradewatch.domain.detection.metrics import ROUND_TRIP_PNL_USD
from tradewatch.domain.detection.streams import ObservationRows, Stream, make_anomaly, split_streams
from tradewatch.domain.events.timestamps import NS_PER_SECOND

DRAWDOWN_SPEED_USD = "drawdown_speed_usd"
_MICROS_PER_USD = 1_000_000
_EMPTY = np.zeros(0, dtype=np.int64)
_NO_TIME = np.iinfo(np.int64).min


class LossStreakConfig(BaseModel):
    """``max_consecutive_losses`` (>= 1): losing trips in a row that open the streak condition.
    ``drawdown_usd`` (> 0, or None to disable): realized loss within ``drawdown_window_seconds``
    (> 0) that opens the drawdown condition. ``by``: "strategy_id" or "symbol"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    kind: Literal["loss_streak"] = "loss_streak"
    severity: Literal["info", "warning", "critical"] = "warning"
    by: Literal["symbol", "strategy_id"] = "strategy_id"
    max_consecutive_losses: int = Field(5, ge=1, le=10_000)
    drawdown_usd: float | None = Field(None, gt=0.0, allow_inf_nan=False)
    drawdown_window_seconds: float = Field(3600.0, gt=0.0, le=30 * 86400, allow_inf_nan=False)


def streak_lengths(pnl: np.ndarray, carried: int) -> tuple[np.ndarray, np.ndarray]:
    """(streak length after each trip, index of the last win at or before it, -1 for none),
    starting from a streak of ``carried`` losses."""
    losses = np.cumsum(pnl < 0)
    last_win = np.maximum.accumulate(np.where(pnl > 0, np.arange(pnl.size), -1))
    since_win = losses - losses[np.maximum(last_win, 0)]
    return np.where(last_win >= 0, since_win, carried + losses), last_win


def trailing_sums(stored_times: np.ndarray, stored_values: np.ndarray, times: np.ndarray, values: np.ndarray,
                  window_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each new element: the sum of values with time in (t - window_ns, t] over stored +
    new up to it, and how many there are. Times are first made non-decreasing (running
    maximum, continuing from the stored ones). Returns (sums, counts, effective times)."""
    effective = running_maximum(times, stored_times[-1] if stored_times.size else _NO_TIME)
    all_times = np.concatenate((stored_times, effective))
    end = np.arange(stored_times.size + 1, all_times.size + 1)
    start = np.searchsorted(all_times, effective - window_ns, side="right")
    return range_sums(np.concatenate((stored_values, values)), start, end), end - start, effective


class LossStreakRule:
    """Consecutive losing round trips and fast realized drawdown (see the module docstring)."""

    def __init__(self, config: LossStreakConfig) -> None:
        self.config = config
        self.name = config.name
        self._window_ns = int(round(config.drawdown_window_seconds * NS_PER_SECOND))
        self._limit_micros = None if config.drawdown_usd is None else int(round(config.drawdown_usd * _MICROS_PER_USD))

    # ------------------------------------------------------------------ protocol

    def detect(self, batch: Batch, state: State) -> list[Finding]:
        for part in ("streaks", "drawdowns", "open_streaks", "open_drawdowns"):
            state.setdefault(part, {})
        found: list[tuple[int, int, Finding]] = []
        streams = split_streams(batch.observations, ROUND_TRIP_PNL_USD, self.config.by, finite_only=False)
        table = ObservationRows.of(batch.observations) if streams else None
        for trips in streams:
            found.extend((position, 0, finding) for position, finding in self._streaks(trips, table, state))
            if self._limit_micros is not None:
                found.extend((position, 1, finding) for position, finding in self._drawdowns(trips, table, state))
        # (batch position, streak before drawdown): the order a single pass would give.
        return in_batch_order(found)

    def tick(self, now_ns: int, state: State) -> list[Finding]:
        """Clears an open drawdown whose window ending at ``now_ns`` is back above the limit."""
        findings: list[Finding] = []
        open_drawdowns: dict = state.get("open_drawdowns", {})
        for entity in sorted(open_drawdowns):
            window = state["drawdowns"].get(entity, {"times": _EMPTY, "micros": _EMPTY})
            inside = window["times"] > now_ns - self._window_ns
            # drawdown_usd removed from the configuration since it opened: nothing watches it any more.
            if self._limit_micros is None or int(window["micros"][inside].sum()) >= -self._limit_micros:
                findings.append(Cleared(key=open_drawdowns.pop(entity), cleared_at_ns=int(now_ns)))
        return findings

    # ------------------------------------------------------------------ (a) consecutive losses

    def _streaks(self, trips: Stream, table: ObservationRows, state: State) -> list[tuple[int, Finding]]:
        entity = trips.key
        limit = self.config.max_consecutive_losses
        carried = state["streaks"].get(entity, {"length": 0, "event_ids": [], "pnl": []})
        open_keys: dict = state["open_streaks"]
        pnl = trips.values
        ids = table.event_id[trips.rows].astype(str)
        lengths, last_win = streak_lengths(pnl, int(carried["length"]))
        opens, clears = transitions(lengths >= limit, entity in open_keys)

        found = condition_findings(
            entity, opens, clears, trips.rows, table.occurred_at_ns[trips.rows], open_keys,
            lambda i: self._streak_anomaly(entity, table, int(trips.rows[i]), int(lengths[i]),
                                           *self._streak_trips(carried, pnl, ids, last_win[i], i)))

        last_ids, last_pnl = self._streak_trips(carried, pnl, ids, last_win[-1], pnl.size - 1)
        state["streaks"][entity] = {"length": int(lengths[-1]), "event_ids": last_ids, "pnl": last_pnl}
        return found

    def _streak_trips(self, carried: dict, pnl: np.ndarray, ids: np.ndarray, last_win: int,
                      upto: int) -> tuple[list[str], list[float]]:
        """Ids and PnL of the last N losing trips of the streak that includes trip ``upto``."""
        limit = self.config.max_consecutive_losses
        losing = np.flatnonzero(pnl[last_win + 1: upto + 1] < 0) + last_win + 1
        streak_ids = [str(x) for x in ids[losing]]
        streak_pnl = [float(x) for x in pnl[losing]]
        if last_win < 0:  # the streak began before this batch
            streak_ids = list(carried["event_ids"]) + streak_ids
            streak_pnl = list(carried["pnl"]) + streak_pnl
        return streak_ids[-limit:], streak_pnl[-limit:]

    def _streak_anomaly(self, entity: str, table: ObservationRows, row: int, length: int, ids: list[str],
                        pnl: list[float]) -> Anomaly:
        limit = self.config.max_consecutive_losses
        return make_anomaly(
            self.config, "loss_streak", table, row, entity, severity=self.config.severity, metric=ROUND_TRIP_PNL_USD,
            observed=float(length),
            baseline=float(limit), score=length / limit, event_ids=tuple(ids),
            context={"max_consecutive_losses": limit, "trip_pnl_usd": pnl, "total_pnl_usd": math.fsum(pnl)},
        )

    # ------------------------------------------------------------------ (b) drawdown speed

    def _drawdowns(self, trips: Stream, table: ObservationRows, state: State) -> list[tuple[int, Finding]]:
        entity = trips.key
        stored = state["drawdowns"].get(entity, {"times": _EMPTY, "micros": _EMPTY})
        open_keys: dict = state["open_drawdowns"]
        micros = np.rint(trips.values * _MICROS_PER_USD).astype(np.int64)
        times = table.occurred_at_ns[trips.rows]
        sums, counts, effective = trailing_sums(stored["times"], stored["micros"], times, micros, self._window_ns)
        opens, clears = transitions(sums < -self._limit_micros, entity in open_keys)

        found = condition_findings(entity, opens, clears, trips.rows, times, open_keys,
                                   lambda i: self._drawdown_anomaly(entity, table, int(trips.rows[i]), int(sums[i]),
                                                                    int(counts[i])))

        all_times = np.concatenate((stored["times"], effective))
        keep = all_times > effective[-1] - self._window_ns
        state["drawdowns"][entity] = {"times": all_times[keep].astype(np.int64),
                                      "micros": np.concatenate((stored["micros"], micros))[keep].astype(np.int64)}
        return found

    def _drawdown_anomaly(self, entity: str, table: ObservationRows, row: int, sum_micros: int, trips: int) -> Anomaly:
        config = self.config
        return make_anomaly(
            config, "loss_streak", table, row, entity, severity=config.severity, metric=DRAWDOWN_SPEED_USD,
            observed=sum_micros / _MICROS_PER_USD, baseline=-config.drawdown_usd,
            score=-sum_micros / self._limit_micros,
            context={"drawdown_usd": config.drawdown_usd, "window_seconds": config.drawdown_window_seconds,
                     "round_trips": trips},
        )
