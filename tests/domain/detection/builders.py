"""Builders shared by the detection tests: observation frames, event frames, batches, and
running a detector over a trail cut into batches.

Two timelines are used:
- rule tests: one observation per second from ``T0`` (``rule_observations``), or events at
  given seconds after ``T0`` (``source_events``);
- statistical detector tests: row i has seq i and occurs at i microseconds
  (``stream_observations``), so ``start`` continues a trail across batches.
Every row i (counted from ``start``) has event id ``e<i>``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from tradewatch.domain.detection import state_codec
from tradewatch.domain.detection.base import Batch, Detector, Finding
from tradewatch.domain.detection.event_frame import EVENT_COLUMNS, NUMBER_PAYLOAD_COLUMNS, empty_event_frame
from tradewatch.domain.detection.metrics import OBSERVATION_COLUMNS

T0 = 1_795_000_000_000_000_000
SECOND = 1_000_000_000


def at(seconds: float) -> int:
    """The time ``seconds`` after T0, in ns."""
    return T0 + int(seconds * SECOND)


def per_row(value, n: int) -> list:
    """``value`` (a str or None) for each of ``n`` rows, or ``value`` itself as one per row."""
    return [value] * n if value is None or isinstance(value, str) else list(value)


def observation_frame(values: Sequence[float], *, metric: str, occurred_at_ns, symbols="AAPL",
                      strategies="momentum", source: str = "engine-1", start: int = 0) -> pd.DataFrame:
    """Observations of ``metric`` (``OBSERVATION_COLUMNS``), seq from ``start``; ``symbols``
    and ``strategies`` are one value for all rows or one per row (None: no entity)."""
    n = len(values)
    seq = np.arange(start, start + n, dtype=np.int64)
    frame = pd.DataFrame({
        "seq": seq,
        "event_id": pd.Series([f"e{i}" for i in seq], dtype=object),
        "occurred_at_ns": np.asarray(occurred_at_ns, dtype=np.int64),
        "metric": pd.Series([metric] * n, dtype=object),
        "value": np.asarray(values, dtype=np.float64),
        "symbol": pd.Series(per_row(symbols, n), dtype=object),
        "strategy_id": pd.Series(per_row(strategies, n), dtype=object),
        "source": pd.Series([source] * n, dtype=object),
    })
    return frame[list(OBSERVATION_COLUMNS)]


def rule_observations(values: Sequence[float], metric: str, *, strategies=None, symbols="AAPL",
                      seconds: Sequence[float] | None = None) -> pd.DataFrame:
    """One observation per second from T0 (or at T0 + ``seconds``), strategy "s1" unless given."""
    n = len(values)
    seconds = np.arange(n) if seconds is None else seconds
    occurred = T0 + (np.asarray(seconds, dtype=np.float64) * SECOND).astype(np.int64)
    return observation_frame(values, metric=metric, occurred_at_ns=occurred, symbols=symbols,
                             strategies="s1" if strategies is None else strategies)


def stream_observations(values: Sequence[float], symbols="AAPL", metric: str = "slippage_bps",
                        start: int = 0) -> pd.DataFrame:
    """Statistical detector observations: row i (from ``start``) at i microseconds, strategy
    "momentum"."""
    occurred = np.arange(start, start + len(values), dtype=np.int64) * 1_000
    return observation_frame(values, metric=metric, occurred_at_ns=occurred, symbols=symbols, start=start)


def source_events(*, event_types: Sequence[str], sources: Sequence[str], received_at_ns: np.ndarray,
                  occurred_at_ns: np.ndarray) -> pd.DataFrame:
    """An event frame (``EVENT_COLUMNS``) with only the envelope the source rules read; the
    payload columns are empty (None, NaN for the numeric ones)."""
    n = len(received_at_ns)
    columns = {name: [None] * n for name in EVENT_COLUMNS}
    columns.update({name: [np.nan] * n for name in NUMBER_PAYLOAD_COLUMNS})
    columns.update({
        "seq": np.arange(n, dtype=np.int64), "event_id": [f"e{i}" for i in range(n)],
        "event_type": list(event_types), "source": list(sources),
        "received_at_ns": received_at_ns, "occurred_at_ns": occurred_at_ns,
    })
    return pd.DataFrame(columns)[list(EVENT_COLUMNS)]


def observation_batch(frame: pd.DataFrame) -> Batch:
    """A batch of observations (no events)."""
    return Batch(events=empty_event_frame(), observations=frame)


def event_batch(frame: pd.DataFrame) -> Batch:
    """A batch of events (no observations)."""
    return Batch(events=frame, observations=pd.DataFrame())


def detect(detector, values: Sequence[float], state: dict | None = None, **frame) -> list[Finding]:
    """``detector`` (a statistical detector) over ``stream_observations(values, **frame)``; the
    metric is the detector's own unless given."""
    frame.setdefault("metric", detector.config.metric)
    return detector.detect(observation_batch(stream_observations(values, **frame)), {} if state is None else state)


def detect_in_batches(detector: Detector, frame: pd.DataFrame, cuts: Sequence[int],
                      batch: Callable[[pd.DataFrame], Batch] = observation_batch) -> tuple[list[Finding], dict]:
    """The findings and final state of ``detector`` over ``frame`` cut at the row numbers
    ``cuts`` (any order, clipped to the frame), the state passing through the state codec
    between batches as the pipeline persists it."""
    state: dict = {}
    found: list[Finding] = []
    bounds = sorted({0, len(frame), *[min(cut, len(frame)) for cut in cuts]})
    for start, end in zip(bounds, bounds[1:]):
        found += detector.detect(batch(frame.iloc[start:end]), state)
        state = state_codec.decode(state_codec.encode(state))
    return found, state
