"""Performance statistics of a stream of simple period returns, as empyrical-reloaded computes them.

Every function takes simple (not log) returns per period, ``r_t = V_t / V_{t-1} - 1``, as a
pandas Series or a 1-D numpy array, and returns a Python float. Nothing here resamples or
infers a frequency: the caller states ``periods_per_year`` (252 for trading days, 12 for
months, 365 * 24 for hours of a market that never closes).

The conventions are empyrical-reloaded 0.7's, case by case, because reports are compared with
it (tests/domain/analytics/test_performance.py checks agreement to a relative 1e-9):

- NaN observations are skipped by the means and deviations, but still count in the length
  checks: Sharpe, Sortino, volatility and omega need at least 2 observations, the others 1.
  ``value_at_risk`` alone lets a NaN through (``np.percentile``), so any NaN gives NaN.
- Standard deviations are sample ones (ddof=1). A ratio over a zero deviation follows IEEE
  division: +-inf for a non-zero numerator, NaN for 0 / 0 (a constant positive series has an
  infinite Sharpe ratio). Calmar and omega give NaN instead when their denominator is 0.
- Floating-point trouble (0 / 0, overflow of a ratio over a subnormal deviation) gives the
  IEEE answer, NaN or +-inf, silently: it is the documented result, not a warning.
- Means and deviations are summed in time order, one observation after another, as
  empyrical's bottleneck backend does, so near-zero means cancel the same way.
"""

import numpy as np
import pandas as pd

from tradewatch.domain.analytics.drawdowns import _drawdown_values
from tradewatch.domain.analytics.drawdowns import _values as _as_values

__all__ = [
    "annual_return",
    "annual_volatility",
    "calmar_ratio",
    "downside_risk",
    "expected_shortfall",
    "max_drawdown",
    "omega_ratio",
    "sharpe_ratio",
    "sortino_ratio",
    "tail_ratio",
    "value_at_risk",
]


# --- Nan-aware moments along the last axis (1-D returns, or 2-D rows of rolling windows). ---


def _sum_in_order(values: np.ndarray) -> np.ndarray:
    # np.sum adds pairwise, bottleneck (behind empyrical) adds left to right; cumsum is the
    # vectorised left-to-right sum, and so reproduces empyrical's last bits. It matters: the
    # ~1e-18 volatility a long constant series leaves depends on how its mean was rounded.
    if values.shape[-1] == 0:
        return np.zeros(values.shape[:-1])
    return np.cumsum(values, axis=-1)[..., -1]


def _nan_mean(values: np.ndarray) -> np.ndarray:
    """Mean of the non-NaN values along the last axis; NaN where there are none."""
    present = ~np.isnan(values)
    count = present.sum(axis=-1)
    total = _sum_in_order(np.where(present, values, 0.0))
    with np.errstate(all="ignore"):
        return np.where(count > 0, total / count, np.nan)


def _nan_std(values: np.ndarray, ddof: int = 1) -> np.ndarray:
    """Standard deviation of the non-NaN values (two passes); NaN with ``ddof`` or fewer."""
    present = ~np.isnan(values)
    count = present.sum(axis=-1)
    with np.errstate(all="ignore"):
        mean = _sum_in_order(np.where(present, values, 0.0)) / count
        deviations = np.where(present, values - mean[..., np.newaxis], 0.0)
        variance = _sum_in_order(deviations * deviations) / (count - ddof)
        return np.where(count > ddof, np.sqrt(variance), np.nan)


def _sharpe_rows(excess: np.ndarray, periods_per_year: float) -> np.ndarray:
    """Annualised Sharpe ratio along the last axis of excess returns (at least 2 columns)."""
    deviation = _nan_std(excess)
    # Identical values leave a residue of ~1e-18 around a mean that is off in its last bit;
    # dividing by it would turn an infinite ratio into an arbitrary 1e15 (empyrical zeroes it).
    with np.errstate(all="ignore"):
        constant = (np.fmax.reduce(excess, axis=-1) == np.fmin.reduce(excess, axis=-1)) & np.isfinite(deviation)
    deviation = np.where(constant, 0.0, deviation)
    with np.errstate(all="ignore"):
        return _nan_mean(excess) / deviation * np.sqrt(periods_per_year)


def _volatility_rows(values: np.ndarray, periods_per_year: float) -> np.ndarray:
    """Annualised sample standard deviation along the last axis (at least 2 columns)."""
    # periods ** (1 / 2) rather than np.sqrt: empyrical's Levy-exponent form, bit for bit.
    return _nan_std(values) * periods_per_year ** (1.0 / 2.0)


def _downside_risk_rows(values: np.ndarray, required_return: float, periods_per_year: float) -> np.ndarray:
    shortfall = np.minimum(values - required_return, 0.0)
    return np.sqrt(_nan_mean(np.square(shortfall))) * np.sqrt(periods_per_year)


# --- Public statistics. ---


def sharpe_ratio(returns: pd.Series | np.ndarray, *, risk_free: float = 0.0, periods_per_year: float = 252) -> float:
    """Annualised Sharpe ratio.

    ``mean(r - rf) / std(r - rf, ddof=1) * sqrt(periods_per_year)``, NaN skipped; unitless.
    ``risk_free`` is per period (an annual 4 % over 252 days is about 0.000156).

    NaN with fewer than 2 observations (NaN included in the count) or fewer than 2 non-NaN.
    Zero deviation (all excess returns equal): +inf / -inf by the sign of the mean, NaN when
    the mean is 0.
    """
    values = _as_values(returns)
    if values.size < 2:
        return float("nan")
    return float(_sharpe_rows(values - risk_free, periods_per_year))


def sortino_ratio(returns: pd.Series | np.ndarray, *, required_return: float = 0.0, periods_per_year: float = 252) -> float:
    """Annualised Sortino ratio.

    ``mean(r - required_return) * periods_per_year / downside_risk(r)``, NaN skipped; unitless.
    ``required_return`` is per period. The downside deviation runs over all observations
    (see ``downside_risk``), not over the losing ones only.

    NaN with fewer than 2 observations. No return below ``required_return``: +inf for a
    positive mean excess, NaN for a zero one.
    """
    values = _as_values(returns)
    if values.size < 2:
        return float("nan")
    average_annual_excess = _nan_mean(values - required_return) * periods_per_year
    with np.errstate(all="ignore"):
        return float(average_annual_excess / _downside_risk_rows(values, required_return, periods_per_year))


def downside_risk(returns: pd.Series | np.ndarray, *, required_return: float = 0.0, periods_per_year: float = 252) -> float:
    """Annualised downside deviation below ``required_return`` (per period).

    ``sqrt(mean(min(r - required_return, 0) ** 2)) * sqrt(periods_per_year)``: the mean runs
    over every non-NaN observation, gains contributing 0. Units of a return per year**0.5
    (0.1 is 10 %). NaN when empty or all NaN; a single observation is enough.
    """
    values = _as_values(returns)
    if values.size < 1:
        return float("nan")
    return float(_downside_risk_rows(values, required_return, periods_per_year))


def annual_return(returns: pd.Series | np.ndarray, *, periods_per_year: float = 252) -> float:
    """Compound annual growth rate.

    ``prod(1 + r) ** (periods_per_year / n) - 1`` with ``n`` the number of observations, NaN
    included (a NaN return is a period without change); a fraction per year (0.07 is 7 %).
    NaN when empty; 0 when every return is NaN; NaN when wealth ends at or below zero.
    """
    values = _as_values(returns)
    if values.size < 1:
        return float("nan")
    years = values.size / periods_per_year
    ending_value = np.nanprod(values + 1)
    with np.errstate(all="ignore"):
        return float(ending_value ** (1 / years) - 1)


def annual_volatility(returns: pd.Series | np.ndarray, *, periods_per_year: float = 252) -> float:
    """Annualised volatility: ``std(r, ddof=1) * sqrt(periods_per_year)``, NaN skipped.

    Units of a return per year**0.5 (0.2 is 20 %). NaN with fewer than 2 observations or
    fewer than 2 non-NaN; 0 for a constant series (up to the rounding of its mean).
    """
    values = _as_values(returns)
    if values.size < 2:
        return float("nan")
    return float(_volatility_rows(values, periods_per_year))


def max_drawdown(returns: pd.Series | np.ndarray) -> float:
    """Deepest drawdown: ``min_t (W_t / max(1, max_{s<=t} W_s) - 1)``, ``W_t = prod_{s<=t}(1 + r_s)``.

    A fraction <= 0 (-0.1 is 10 % below the peak); the starting capital counts as a peak, so a
    first-period loss is a drawdown. NaN returns count as 0 (all NaN gives 0). NaN when empty.
    """
    values = _as_values(returns)
    if values.size < 1:
        return float("nan")
    return float(np.fmin.reduce(_drawdown_values(values)))


def calmar_ratio(returns: pd.Series | np.ndarray, *, periods_per_year: float = 252) -> float:
    """Calmar ratio: ``annual_return(r) / |max_drawdown(r)|``; unitless.

    NaN when there is no drawdown (the denominator is 0), when empty, and when the ratio would
    be infinite.
    """
    values = _as_values(returns)
    drawdown = max_drawdown(values)
    if not drawdown < 0:
        return float("nan")
    ratio = annual_return(values, periods_per_year=periods_per_year) / abs(drawdown)
    return float("nan") if np.isinf(ratio) else ratio


def omega_ratio(
    returns: pd.Series | np.ndarray,
    *,
    risk_free: float = 0.0,
    required_return: float = 0.0,
    periods_per_year: float = 252,
) -> float:
    """Omega ratio: gains over losses around a threshold; unitless.

    ``sum(max(x, 0)) / sum(max(-x, 0))`` with ``x = r - risk_free - threshold``, NaN skipped.
    ``risk_free`` is per period. ``required_return`` is ANNUAL, converted per period as
    ``threshold = (1 + required_return) ** (1 / periods_per_year) - 1``; with
    ``periods_per_year == 1`` it is used as given.

    NaN with fewer than 2 observations, when no observation falls below the threshold (zero
    denominator), and when an annual ``required_return <= -1`` has no per-period equivalent.
    """
    values = _as_values(returns)
    if values.size < 2:
        return float("nan")
    if periods_per_year == 1:
        threshold = required_return
    elif required_return <= -1:
        return float("nan")
    else:
        threshold = (1 + required_return) ** (1.0 / periods_per_year) - 1
    excess = values - risk_free - threshold
    gains = _sum_in_order(excess[excess > 0.0])
    losses = -1.0 * _sum_in_order(excess[excess < 0.0])
    if losses > 0.0:
        with np.errstate(all="ignore"):
            return float(gains / losses)
    return float("nan")


def tail_ratio(returns: pd.Series | np.ndarray) -> float:
    """Tail ratio: ``|P95(r)| / |P5(r)|`` over the non-NaN returns (linear percentiles); unitless.

    0.25 means the bad tail is four times the good one. NaN when empty or all NaN; +inf when
    the 5th percentile is 0 and the 95th is not, NaN when both are 0.
    """
    values = _as_values(returns)
    values = values[~np.isnan(values)]
    if values.size < 1:
        return float("nan")
    with np.errstate(all="ignore"):
        return float(np.abs(np.percentile(values, 95)) / np.abs(np.percentile(values, 5)))


def value_at_risk(returns: pd.Series | np.ndarray, cutoff: float = 0.05) -> float:
    """Historical value at risk: the ``100 * cutoff`` percentile of the returns (linear).

    A return per period, negative for a loss (-0.03: on the worst ``cutoff`` share of periods
    the loss is 3 % or more). NaN when empty, and when any return is NaN (empyrical passes
    them to ``np.percentile``; drop them first to skip them).
    """
    values = _as_values(returns)
    if values.size < 1:
        return float("nan")
    with np.errstate(all="ignore"):
        return float(np.percentile(values, 100 * cutoff))


def expected_shortfall(returns: pd.Series | np.ndarray, cutoff: float = 0.05) -> float:
    """Historical expected shortfall (conditional VaR): the mean of the worst returns.

    With ``x`` the ``n`` non-NaN returns sorted ascending and ``k = floor((n - 1) * cutoff)``,
    ``mean(x[0..k])``: the ``k + 1`` lowest returns. A return per period, negative for a loss.
    NaN when empty or all NaN.
    """
    values = _as_values(returns)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return float("nan")
    # Partitioning, not sorting, as empyrical does: same tail, same summation order.
    last_in_tail = int((values.size - 1) * cutoff)
    return float(np.mean(np.partition(values, last_in_tail)[: last_in_tail + 1]))
