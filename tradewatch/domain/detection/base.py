"""What every detector is: the ``Detector`` protocol and the ``Batch`` it reads.

A detector is online. The pipeline hands it each batch of the trail in order (``seq`` order
within the batch) together with the state it left after the previous batch, and persists that
state with the trail cursor in one transaction, so a restart resumes where it stopped and a
redelivered batch is never applied twice.

State is the detector's own ``dict`` and must hold only what ``state_codec`` encodes: None,
bool, int, float, str, lists and dicts of those (string keys), and numpy float64 / int64
arrays (the rolling windows). Keep it bounded: windows of a fixed length, maps pruned by age.

``detect`` sees the batch's events and the metric observations derived from them
(``observations``); ``tick`` is the beat's call with ``now`` for rules about something that
did not happen (a stale feed); detectors without such rules return [] from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from tradewatch.domain.detection.anomaly import Anomaly, Cleared

Finding = Anomaly | Cleared
State = dict[str, Any]


@dataclass(frozen=True)
class Batch:
    """``events``: the event frame (``event_frame.EVENT_COLUMNS``), in seq order.
    ``observations``: the metric observations (``observations.OBSERVATION_COLUMNS``), in seq
    order (several per event possible)."""

    events: pd.DataFrame
    observations: pd.DataFrame


@runtime_checkable
class Detector(Protocol):
    name: str  # unique in the pipeline; the ``detector`` of its anomalies

    def detect(self, batch: Batch, state: State) -> list[Finding]:
        """Findings in this batch; updates ``state`` in place."""
        ...

    def tick(self, now_ns: int, state: State) -> list[Finding]:
        """Findings due at ``now_ns`` (absence rules); updates ``state`` in place."""
        ...
