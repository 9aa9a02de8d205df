"""Simple returns from what engines report: intraday returns, equity curves, profit and loss.

A simple return is ``r = V_end / V_start - 1`` (0.01 is +1 %). The statistics in
``performance`` take such returns at one stated frequency; these functions produce them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ACCEPTED_INDEX = "a pandas Series indexed by a DatetimeIndex (tz-aware, or naive and read as UTC)"


def to_daily_returns(returns: pd.Series, *, timezone: str = "UTC") -> pd.Series:
    """Compound intraday simple returns into one simple return per calendar day.

    ``R_day = prod_{t in day} (1 + r_t) - 1``, the day being the calendar date of ``t`` in
    ``timezone`` (an IANA name such as ``"America/New_York"``); naive timestamps are read as
    UTC. NaN returns inside a day are skipped; a day with only NaN returns gives NaN. Days with
    no observation are absent: no zero-return day is invented. The input need not be sorted.

    The result is indexed by each day's local midnight, tz-aware in ``timezone``, ascending,
    and keeps the input's name. Raises ValueError if ``returns`` is not a Series with a
    DatetimeIndex.
    """
    if not isinstance(returns, pd.Series) or not isinstance(returns.index, pd.DatetimeIndex):
        got = type(returns.index).__name__ if isinstance(returns, pd.Series) else type(returns).__name__
        raise ValueError(f"to_daily_returns needs {ACCEPTED_INDEX}; got {got}")
    times = returns.index if returns.index.tz is not None else returns.index.tz_localize("UTC")
    local_days = times.tz_convert(timezone).tz_localize(None).normalize()
    growth = pd.Series(1.0 + returns.to_numpy(dtype=np.float64, na_value=np.nan), index=returns.index)
    daily_growth = growth.groupby(local_days, sort=True).prod(min_count=1)
    days = pd.DatetimeIndex(daily_growth.index)
    # Where a DST change falls at midnight, the day starts at the first instant that exists.
    midnights = days.tz_localize(timezone, ambiguous=np.ones(days.size, dtype=bool), nonexistent="shift_forward")
    return pd.Series(daily_growth.to_numpy() - 1.0, index=midnights, name=returns.name)


def equity_to_returns(equity: pd.Series) -> pd.Series:
    """Simple returns of an equity curve: ``r_t = E_t / E_{t-1} - 1`` (``pct_change``).

    The first observation has no predecessor and is dropped, so the result is one shorter and
    indexed by the later observation (positions for a numpy array). NaN where either equity is
    NaN (no forward fill) and where the previous equity is 0 (a zero denominator).
    """
    series = equity if isinstance(equity, pd.Series) else pd.Series(np.asarray(equity))
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    previous, current = values[:-1], values[1:]
    with np.errstate(all="ignore"):
        result = np.where(previous != 0.0, current / previous - 1.0, np.nan)
    return pd.Series(result, index=series.index[1:], name=series.name)


def pnl_to_returns(pnl: pd.Series, capital: float) -> pd.Series:
    """Simple returns from profit and loss per period on a fixed capital: ``r_t = pnl_t / capital``.

    ``pnl`` and ``capital`` are in the same currency; the capital is the amount at work each
    period (no compounding: a PnL of 1 000 on 100 000 is 0.01 whatever came before). Same
    index as ``pnl`` (positions for a numpy array). All NaN when ``capital`` is 0.
    """
    series = pnl if isinstance(pnl, pd.Series) else pd.Series(np.asarray(pnl))
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    capital = float(capital)
    result = values / capital if capital != 0.0 else np.full(values.size, np.nan)
    return pd.Series(result, index=series.index, name=series.name)
