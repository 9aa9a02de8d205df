"""Drawdowns of a stream of simple period returns: the series, and the deepest episodes.

Wealth compounds from a starting value of 1, ``W_t = prod_{s<=t} (1 + r_s)``, and the peak
includes that starting value, ``P_t = max(1, max_{s<=t} W_s)``, so a loss in the first period
is already a drawdown (as in empyrical's ``max_drawdown``). The drawdown is
``D_t = W_t / P_t - 1``, a fraction <= 0. A NaN return is a period with no change in wealth
(empyrical's ``cum_returns`` treats it as 0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# empyrical anchors wealth at 100, not 1. The ratio is the same in exact arithmetic, but the
# rounding of 100 * W differs from that of W, which moves drawdowns a few ulps deep (and
# max_drawdown, which reads them) by far more than a relative 1e-9. Anchoring the same way
# keeps the numbers identical to empyrical's to the last bit.
_ANCHOR = 100.0


def _values(returns) -> np.ndarray:
    if isinstance(returns, (pd.Series, pd.Index)):
        values = returns.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        values = np.asarray(returns, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"returns must be one-dimensional (a pandas Series or a 1-D numpy array); got {values.ndim} dimensions")
    return values


def _drawdown_values(values: np.ndarray) -> np.ndarray:
    """Drawdown fraction per period of 1-D float returns (NaN counts as 0); empty in, empty out."""
    wealth = np.empty(values.size + 1, dtype=np.float64)
    wealth[0] = _ANCHOR
    # Wealth that overflows to inf gives NaN drawdowns (inf - inf), as in empyrical: no warning.
    with np.errstate(all="ignore"):
        np.cumprod(1.0 + np.where(np.isnan(values), 0.0, values), out=wealth[1:])
        wealth[1:] *= _ANCHOR
        peak = np.fmax.accumulate(wealth)
        # (W - P) / P rather than W / P - 1: a shallow drawdown stays exact instead of being
        # rounded to a multiple of the spacing of doubles near 1.
        return ((wealth - peak) / peak)[1:]


def drawdown_series(returns: pd.Series | np.ndarray) -> pd.Series:
    """Drawdown after each period, as a fraction of the running peak of wealth.

    ``D_t = W_t / max(1, max_{s<=t} W_s) - 1`` with ``W_t = prod_{s<=t} (1 + r_s)``; unitless,
    0 at a new high, -0.25 when wealth is 25 % below its peak. NaN returns count as 0.

    ``returns``: simple period returns as a pandas Series (its index is kept) or a 1-D numpy
    array (the result is indexed by position). Empty input gives an empty Series.
    """
    values = _values(returns)
    index = returns.index if isinstance(returns, pd.Series) else pd.RangeIndex(values.size)
    return pd.Series(_drawdown_values(values), index=index, name="drawdown")


def _labels(positions: np.ndarray, present: np.ndarray, index: pd.DatetimeIndex | None):
    """Timestamps (NaT where absent) or nullable integer positions (<NA> where absent)."""
    safe = np.where(present, positions, 0)
    if index is None:
        return pd.arrays.IntegerArray(safe.astype(np.int64), mask=~present)
    return index.take(safe).where(present).array


def _empty_table(index: pd.DatetimeIndex | None) -> pd.DataFrame:
    nothing = np.zeros(0, dtype=np.int64)
    absent = np.zeros(0, dtype=bool)
    return pd.DataFrame(
        {
            "peak_at": _labels(nothing, absent, index),
            "trough_at": _labels(nothing, absent, index),
            "recovered_at": _labels(nothing, absent, index),
            "drawdown": np.zeros(0, dtype=np.float64),
            "duration_periods": nothing,
            "recovery_periods": pd.arrays.IntegerArray(nothing, mask=absent),
        }
    )


def top_drawdowns(returns: pd.Series | np.ndarray, top: int = 5) -> pd.DataFrame:
    """The ``top`` deepest drawdown episodes, deepest first, one row each.

    An episode is a maximal run of periods under water (``D_t < 0``, see ``drawdown_series``).
    Episodes never overlap: each ends when wealth first regains its previous peak.

    Columns:

    - ``peak_at``: the last period at the peak before the fall; missing (NaT / <NA>) when the
      peak is the starting capital, before the first period.
    - ``trough_at``: the period of the lowest wealth in the episode (the first, on a tie).
    - ``recovered_at``: the first period back at or above the peak; missing if not recovered.
    - ``drawdown``: ``min_t D_t`` over the episode, a negative fraction (-0.1 is 10 % down).
    - ``duration_periods``: periods from the peak to the recovery, or to the last period when
      not recovered (the starting capital sits one period before the first return).
    - ``recovery_periods``: periods from the trough to the recovery; <NA> if not recovered.

    Labels are the timestamps of a Series with a DatetimeIndex, otherwise integer positions
    (0 for the first return) in a nullable Int64 column. Ties in depth keep time order. Empty
    input, or returns never under water, give an empty frame with these columns.
    """
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 0:
        raise ValueError(f"top must be a non-negative integer (how many episodes to list); got {top!r}")
    values = _values(returns)
    index = returns.index if isinstance(returns, pd.Series) and isinstance(returns.index, pd.DatetimeIndex) else None
    drawdowns = _drawdown_values(values)
    underwater = drawdowns < 0
    edges = np.diff(np.concatenate(([0], underwater.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)  # one past the last period under water
    if starts.size == 0 or top == 0:
        return _empty_table(index)

    lengths = ends - starts
    episode = np.repeat(np.arange(starts.size), lengths)
    positions = np.flatnonzero(underwater)  # episode by episode, in time order
    depths = np.minimum.reduceat(drawdowns[positions], np.concatenate(([0], np.cumsum(lengths)[:-1])))
    at_depth = drawdowns[positions] == depths[episode]
    _, first_at_depth = np.unique(episode[at_depth], return_index=True)
    troughs = positions[at_depth][first_at_depth]
    peaks = starts - 1  # -1: the starting capital, before the first period
    recovered = ends < values.size

    order = np.argsort(depths, kind="stable")[:top]
    peaks, troughs, ends, recovered, depths = peaks[order], troughs[order], ends[order], recovered[order], depths[order]
    last = np.where(recovered, ends, values.size - 1)
    present = np.ones(order.size, dtype=bool)
    return pd.DataFrame(
        {
            "peak_at": _labels(peaks, peaks >= 0, index),
            "trough_at": _labels(troughs, present, index),
            "recovered_at": _labels(ends, recovered, index),
            "drawdown": depths,
            "duration_periods": (last - peaks).astype(np.int64),
            "recovery_periods": pd.arrays.IntegerArray((ends - troughs).astype(np.int64), mask=~recovered),
        }
    )
