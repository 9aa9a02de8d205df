"""Rolling Sharpe ratio and volatility over a trailing window of simple period returns.

Each value is the point statistic of ``tradewatch.domain.analytics.performance`` over the
``window`` observations ending at that period (NaN observations included in the count, as
there), so a rolling value equals ``sharpe_ratio(returns[t - window + 1 : t + 1])`` exactly.
On full windows this is empyrical's ``roll_sharpe_ratio`` / ``roll_annual_volatility``. Unlike
empyrical, the result keeps the whole input index, NaN before the first full window, and a
series shorter than the window is all NaN (empyrical computes one value over the short series).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from tradewatch.domain.analytics.drawdowns import _values
from tradewatch.domain.analytics.performance import _sharpe_rows, _volatility_rows

# Windows are evaluated a block at a time so that the (windows x window) work arrays stay
# around 32 MB whatever the series length.
_VALUES_PER_BLOCK = 1 << 22


def _index(returns, size: int) -> pd.Index:
    return returns.index if isinstance(returns, pd.Series) else pd.RangeIndex(size)


def _check_window(window) -> None:
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be a positive integer number of periods; got {window!r}")


def _over_windows(values: np.ndarray, window: int, statistic: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``statistic`` of each trailing window, NaN until the first full one."""
    out = np.full(values.size, np.nan)
    # The point statistics need 2 observations; a 1-period window never has them.
    if window < 2 or values.size < window:
        return out
    windows = sliding_window_view(values, window)
    rows_per_block = max(1, _VALUES_PER_BLOCK // window)
    for first in range(0, windows.shape[0], rows_per_block):
        block = windows[first : first + rows_per_block]
        out[window - 1 + first : window - 1 + first + block.shape[0]] = statistic(block)
    return out


def rolling_sharpe(returns: pd.Series | np.ndarray, window: int, *, risk_free: float = 0.0, periods_per_year: float = 252) -> pd.Series:
    """Annualised Sharpe ratio of each trailing window of ``window`` periods.

    ``mean(r - rf) / std(r - rf, ddof=1) * sqrt(periods_per_year)`` per window, NaN returns
    skipped; unitless. ``risk_free`` is per period. Same index as ``returns`` (positions for
    an array); NaN before the first full window, for windows under 2 periods and where the
    point statistic is NaN; +-inf on a constant window with a non-zero mean excess.
    """
    _check_window(window)
    values = _values(returns)
    result = _over_windows(values - risk_free, window, lambda block: _sharpe_rows(block, periods_per_year))
    return pd.Series(result, index=_index(returns, values.size), name="rolling_sharpe")


def rolling_volatility(returns: pd.Series | np.ndarray, window: int, *, periods_per_year: float = 252) -> pd.Series:
    """Annualised volatility of each trailing window of ``window`` periods.

    ``std(r, ddof=1) * sqrt(periods_per_year)`` per window, NaN returns skipped; units of a
    return per year**0.5. Same index as ``returns`` (positions for an array); NaN before the
    first full window, for windows under 2 periods and with fewer than 2 non-NaN returns.
    """
    _check_window(window)
    values = _values(returns)
    result = _over_windows(values, window, lambda block: _volatility_rows(block, periods_per_year))
    return pd.Series(result, index=_index(returns, values.size), name="rolling_volatility")
