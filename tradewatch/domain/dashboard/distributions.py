"""Distributions the dashboard keeps incrementally: a cumulative histogram (what Prometheus
exports) and a bounded window of the latest values (what the percentiles are read from).

``Histogram``: counts per upper bound ``le`` (cumulative, as Prometheus' ``_bucket`` series:
count of values <= le, plus +Inf), the sum and the count, since the trail began; monotonic.

``Window``: the last ``size`` values; ``percentiles`` uses linear interpolation between order
statistics (numpy's default, ``method="linear"``). A window, not the whole history, because a
desk wants "latency now", and because history cannot be kept in a bounded state.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from collections.abc import Sequence

import numpy as np


class Histogram:
    __slots__ = ("bounds", "counts", "total", "count")

    def __init__(self, bounds: Sequence[float], counts: Sequence[int] | None = None, total: float = 0.0,
                 count: int = 0) -> None:
        self.bounds = tuple(float(b) for b in bounds)
        if list(self.bounds) != sorted(set(self.bounds)):
            raise ValueError(f"histogram bounds must be strictly increasing, got {list(bounds)}")
        # counts[i]: values in (bounds[i-1], bounds[i]]; counts[-1]: above the last bound.
        self.counts = list(counts) if counts is not None else [0] * (len(self.bounds) + 1)
        self.total = float(total)
        self.count = int(count)

    def observe(self, value: float) -> None:
        if not math.isfinite(value):
            return
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """[(le, count of values <= le)], ending with (inf, count)."""
        out, running = [], 0
        for bound, n in zip((*self.bounds, math.inf), self.counts):
            running += n
            out.append((bound, running))
        return out

    def to_list(self) -> list:
        return [list(self.bounds), self.counts, self.total, self.count]

    @classmethod
    def from_list(cls, data: list) -> Histogram:
        return cls(data[0], data[1], data[2], data[3])


class Window:
    __slots__ = ("values",)

    def __init__(self, size: int, values: Sequence[float] = ()) -> None:
        self.values: deque[float] = deque(values, maxlen=size)

    def add(self, value: float) -> None:
        if math.isfinite(value):
            self.values.append(value)

    def percentiles(self, qs: Sequence[float] = (50, 95, 99)) -> dict[str, float | None]:
        """{"p50": ..., "p95": ..., "p99": ...}; None when the window is empty."""
        if not self.values:
            return {f"p{q:g}": None for q in qs}
        found = np.percentile(np.fromiter(self.values, dtype=np.float64, count=len(self.values)), list(qs))
        return {f"p{q:g}": float(v) for q, v in zip(qs, found)}

    def to_list(self) -> list:
        return [self.values.maxlen, list(self.values)]

    @classmethod
    def from_list(cls, data: list) -> Window:
        return cls(int(data[0]), data[1])


__all__ = ["Histogram", "Window"]
