"""The condition machinery the rule detectors share (latency excursion, rejection spike, loss
streak, clock skew, stale feed, slippage spike).

A condition is a boolean per observation of one stream (one entity). The rules compute it
vectorised over a batch and report only its edges:

    transitions(c, was_open): opens_i  = c_i and not c_(i-1)
                              clears_i = c_(i-1) and not c_i      (c_(-1) = was_open)
    hysteresis(sets, resets, was_open):
                              c_i = True after the last set at or before i, False after the last
                              reset, was_open when neither came yet

An open emits an ``Anomaly`` and stores its key per entity (``open_keys``, part of the rule's
state); a clear pops that key and emits ``Cleared(key, time)`` (``condition_findings``). A rule
handles its streams one after another and sorts the findings back into batch order
(``in_batch_order``), which is the order a single pass over the trail would give.

Windows over a stored tail followed by a batch are taken with prefix sums (``range_sums``) over
exact integers, and times that may step back are made non-decreasing continuing from the
stored ones (``running_maximum``), so any split of the trail into batches gives the same sums.

``source_anomaly`` fills the parts of an ``Anomaly`` that come from the rule's config (detector
name, severity) and from the event source it is about. Streams of observations and anomalies
about a stream's entity come from ``streams`` (``split_streams``, ``make_anomaly``), shared with
the window detectors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tradewatch.domain.detection.anomaly import Anomaly, Cleared
from tradewatch.domain.detection.base import Finding


def transitions(above: np.ndarray, was_open: bool) -> tuple[np.ndarray, np.ndarray]:
    """Where a condition opens (false -> true) and clears (true -> false), given its value
    before the first element."""
    before = np.concatenate(([was_open], above[:-1]))
    return above & ~before, ~above & before


def hysteresis(sets: np.ndarray, resets: np.ndarray, was_open: bool) -> np.ndarray:
    """The condition after each element: true after a set, false after a reset, unchanged
    otherwise (``sets`` and ``resets`` never both true)."""
    decisive = np.flatnonzero(sets | resets)
    last = np.full(sets.size, -1)
    last[decisive] = decisive
    last = np.maximum.accumulate(last)
    return np.where(last >= 0, sets[np.maximum(last, 0)], was_open)


def range_sums(values: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """sum(values[start[k]:end[k]]) for every k, from one prefix sum (exact for integers)."""
    cumulative = np.concatenate(([0], np.cumsum(values)))
    return cumulative[end] - cumulative[start]


def running_maximum(values: np.ndarray, start: int) -> np.ndarray:
    """``values`` made non-decreasing (running maximum), continuing from ``start`` (the last
    stored value, or the int64 minimum when there is none)."""
    return np.maximum.accumulate(np.concatenate(([start], values)))[1:]


def condition_findings(entity: str, opens: np.ndarray, clears: np.ndarray, positions: np.ndarray,
                       times: np.ndarray, open_keys: dict,
                       anomaly_at: Callable[[int], Anomaly]) -> list[tuple[int, Finding]]:
    """``(position, finding)`` for each edge of one entity's condition: at a clear, the stored
    key is popped and reported ``Cleared`` at ``times[i]``; at an open, ``anomaly_at(i)`` is
    reported and its key stored under ``entity`` in ``open_keys``."""
    found: list[tuple[int, Finding]] = []
    for i in np.flatnonzero(opens | clears):
        if clears[i]:
            found.append((int(positions[i]), Cleared(key=open_keys.pop(entity), cleared_at_ns=int(times[i]))))
            continue
        anomaly = anomaly_at(i)
        open_keys[entity] = anomaly.key
        found.append((int(positions[i]), anomaly))
    return found


def in_batch_order(found: list[tuple[Any, ...]]) -> list[Finding]:
    """The findings of ``(position, [tie-breaks...,] finding)`` tuples, sorted by position
    (then the tie-breaks; stable otherwise)."""
    found.sort(key=lambda item: item[:-1])
    return [item[-1] for item in found]


def source_anomaly(config: Any, source: str, *, anomaly_type: str, metric: str, observed: float, baseline: float,
                   score: float, detected_at_ns: int, context: dict[str, Any],
                   event_ids: tuple[str, ...] = ()) -> Anomaly:
    """An anomaly of rule ``config`` about the event source ``source`` (entity_kind "source")."""
    return Anomaly(
        detector=config.name, anomaly_type=anomaly_type, severity=config.severity, metric=metric, observed=observed,
        baseline=baseline, score=score, entity_kind="source", entity=source, detected_at_ns=detected_at_ns,
        event_ids=event_ids, context=context,
    )
