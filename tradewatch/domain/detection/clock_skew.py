"""Clock skew rule: a source whose clock disagrees with tradewatch's by more than a tolerance.

Every event carries two times: ``occurred_at`` (the engine's clock) and ``received_at``
(tradewatch's clock, when it accepted the event). Their difference is

    delay = received_at - occurred_at = transit and queueing time + offset

where offset is how far the engine's clock is behind tradewatch's. Queueing only ever adds
time (a queued event is late, never early), so the smallest delay over many events is the
best estimate of the offset, with the queueing of the luckiest event stripped:

    skew(source, at event i) = min(delay_j) over the source's events j (up to and including i,
                               seq order) received in the trailing ``window_seconds``
    count                    = how many events that window holds

    skew > 0: the engine's clock is behind tradewatch's (or every event was delayed that long)
    skew < 0: the engine's clock is ahead (an event cannot arrive before it happened)

The condition (type ``clock_skew``, metric ``clock_skew_seconds``, entity_kind ``source``, key
``<name>|clock_skew_seconds|source=<source>``) opens at the first event where
``count >= min_events`` and ``|skew| > tolerance_seconds``:

    observed = skew (s, signed)     baseline = 0 (no skew expected)
    score    = |skew| / tolerance_seconds (tolerance multiples, > 1 when it opens)
    detected_at_ns = the event's received_at (tradewatch's clock; the engine's is the suspect)
    context  = tolerance_seconds, window_seconds, events_in_window, direction
               ("engine_clock_behind" or "engine_clock_ahead")

It clears (``Cleared`` at that event's received_at) at the first event where the window again
has ``min_events`` and ``|skew| <= tolerance_seconds``. With fewer than ``min_events`` in the
window there is no evidence either way and the condition keeps its state.

Window: received_at is bucketed by whole seconds (bucket = received_at_ns // 1e9); the window
at an event is its bucket and the ``window_seconds - 1`` before it. Received times are made
non-decreasing per source (running maximum: an event accepted a moment before the previous one
by another ingest worker is counted in the later bucket). State per source: one (bucket,
minimum delay, event count) triple per second of the window, int64 arrays pruned by age, so at
most ``window_seconds`` entries per source whatever the event rate, plus the open condition's
key. Minima and counts are exact, so any split of the trail into batches gives the same
findings.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from tradewatch.domain.detection.anomaly import Anomaly
from tradewatch.domain.detection.base import Batch, Finding, State
from tradewatch.domain.detection.conditions import (
    condition_findings,
    hysteresis,
    in_batch_order,
    range_sums,
    running_maximum,
    source_anomaly,
    transitions,
)
from tradewatch.domain.events.timestamps import NS_PER_SECOND

CLOCK_SKEW_SECONDS = "clock_skew_seconds"
_EMPTY = np.zeros(0, dtype=np.int64)


class ClockSkewConfig(BaseModel):
    """``tolerance_seconds`` (> 0): the largest |skew| accepted. ``window_seconds`` (1..3600,
    whole seconds): the trailing window of received times the minimum is taken over.
    ``min_events`` (>= 1): events the window must hold to judge."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    kind: Literal["clock_skew"] = "clock_skew"
    severity: Literal["info", "warning", "critical"] = "warning"
    tolerance_seconds: float = Field(1.0, gt=0.0, allow_inf_nan=False)
    window_seconds: int = Field(60, ge=1, le=3600)
    min_events: int = Field(5, ge=1)


def range_minimum(values: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """min(values[start[k]:end[k]]) for every k (each range non-empty), with a sparse table:
    level j holds the minima of the runs of length 2**j, and a range is covered by two runs of
    its largest power-of-two length."""
    lengths = end - start
    levels = np.floor(np.log2(lengths)).astype(np.int64)
    table = [values]
    for level in range(1, int(levels.max()) + 1):
        half = 1 << (level - 1)
        previous = table[-1]
        table.append(np.minimum(previous[:-half], previous[half:]))
    result = np.empty(start.size, dtype=values.dtype)
    for level in np.unique(levels):
        chosen = levels == level
        run = table[level]
        result[chosen] = np.minimum(run[start[chosen]], run[end[chosen] - (1 << int(level))])
    return result


class ClockSkewRule:
    """Opens when a source's minimum delay over the trailing window is beyond the tolerance
    (see the module docstring)."""

    def __init__(self, config: ClockSkewConfig) -> None:
        self.config = config
        self.name = config.name
        self._tolerance_ns = int(round(config.tolerance_seconds * NS_PER_SECOND))

    def detect(self, batch: Batch, state: State) -> list[Finding]:
        windows: dict = state.setdefault("windows", {})
        open_keys: dict = state.setdefault("open", {})
        events = batch.events
        mask = events["source"].notna().to_numpy()
        frame = pd.DataFrame({
            "source": events["source"].to_numpy()[mask],
            "received_at_ns": events["received_at_ns"].to_numpy(dtype=np.int64)[mask],
            "delay_ns": (events["received_at_ns"].to_numpy(dtype=np.int64)
                         - events["occurred_at_ns"].to_numpy(dtype=np.int64))[mask],
            "event_id": events["event_id"].to_numpy()[mask],
            "position": np.flatnonzero(mask),
        })
        found: list[tuple[int, Finding]] = []
        for source, rows in frame.groupby("source", sort=False).indices.items():
            found.extend(self._source(str(source), frame.iloc[rows], windows, open_keys))
        return in_batch_order(found)  # batch order, as a single pass would give

    def tick(self, now_ns: int, state: State) -> list[Finding]:
        return []

    def _source(self, source: str, rows: pd.DataFrame, windows: dict, open_keys: dict) -> list[tuple[int, Finding]]:
        config = self.config
        stored = windows.get(source, {"buckets": _EMPTY, "minimum_ns": _EMPTY, "counts": _EMPTY})
        received = rows["received_at_ns"].to_numpy()
        delays = rows["delay_ns"].to_numpy()
        start_bucket = stored["buckets"][-1] if stored["buckets"].size else np.iinfo(np.int64).min
        buckets = running_maximum(received // NS_PER_SECOND, start_bucket)

        # One sequence: the stored per-second summaries, then the new events one by one.
        all_buckets = np.concatenate((stored["buckets"], buckets))
        all_minima = np.concatenate((stored["minimum_ns"], delays))
        all_counts = np.concatenate((stored["counts"], np.ones(delays.size, dtype=np.int64)))
        end = np.arange(stored["buckets"].size + 1, all_buckets.size + 1)
        start = np.searchsorted(all_buckets, buckets - config.window_seconds, side="right")
        skew = range_minimum(all_minima, start, end)
        in_window = range_sums(all_counts, start, end)

        judged = in_window >= config.min_events
        beyond = np.abs(skew) > self._tolerance_ns
        was_open = source in open_keys
        opens, clears = transitions(hysteresis(judged & beyond, judged & ~beyond, was_open), was_open)
        windows[source] = self._summarise(all_buckets, all_minima, all_counts)

        return condition_findings(
            source, opens, clears, rows["position"].to_numpy(), received, open_keys,
            lambda i: self._anomaly(source, int(skew[i]), int(in_window[i]), int(received[i]),
                                    str(rows["event_id"].iloc[i])))

    def _summarise(self, buckets: np.ndarray, minima: np.ndarray, counts: np.ndarray) -> dict:
        """One (bucket, minimum, count) per second, the last ``window_seconds`` seconds only."""
        firsts = np.flatnonzero(np.concatenate(([True], buckets[1:] != buckets[:-1])))
        summary_buckets = buckets[firsts]
        keep = summary_buckets > summary_buckets[-1] - self.config.window_seconds
        return {
            "buckets": summary_buckets[keep].astype(np.int64),
            "minimum_ns": np.minimum.reduceat(minima, firsts)[keep].astype(np.int64),
            "counts": np.add.reduceat(counts, firsts)[keep].astype(np.int64),
        }

    def _anomaly(self, source: str, skew_ns: int, in_window: int, received_ns: int, event_id: str) -> Anomaly:
        config = self.config
        skew = skew_ns / NS_PER_SECOND
        return source_anomaly(
            config, source, anomaly_type="clock_skew", metric=CLOCK_SKEW_SECONDS, observed=skew, baseline=0.0,
            score=abs(skew) / config.tolerance_seconds, detected_at_ns=received_ns, event_ids=(event_id,),
            context={
                "tolerance_seconds": config.tolerance_seconds,
                "window_seconds": config.window_seconds,
                "events_in_window": in_window,
                "direction": "engine_clock_behind" if skew_ns > 0 else "engine_clock_ahead",
            },
        )
