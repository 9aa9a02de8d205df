"""Value at risk and expected shortfall of simple period returns, historical and Gaussian.

Both are returns per period at the lower ``cutoff`` tail, negative for a loss: a one-day 5 %
VaR of -0.03 says one day in twenty loses 3 % or more; the expected shortfall is the mean
return on those days. ``cutoff`` is the tail probability (0.05 for 95 % confidence).

- historical: the empirical percentile and tail mean, exactly
  ``performance.value_at_risk`` / ``performance.expected_shortfall`` (empyrical's
  conventions, including NaN VaR when any return is NaN).
- parametric (normal): fits ``N(mu, sigma)`` with the mean and the sample deviation (ddof=1)
  of the non-NaN returns, ``z = Phi^-1(cutoff)``:
  ``VaR = mu + z * sigma`` and ``ES = mu - sigma * phi(z) / cutoff``.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

from tradewatch.domain.analytics import performance
from tradewatch.domain.analytics.drawdowns import _values
from tradewatch.domain.analytics.performance import _nan_mean, _nan_std

HISTORICAL = "historical"
PARAMETRIC_NORMAL = "parametric (normal)"

_STANDARD_NORMAL = NormalDist()


def _check_cutoff(cutoff) -> None:
    if not 0.0 < cutoff < 1.0:
        raise ValueError(f"cutoff must be a tail probability strictly between 0 and 1 (0.05 for 95 % VaR); got {cutoff!r}")


def _normal_fit(returns) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) of the non-NaN returns; NaN if under 2."""
    values = _values(returns)
    if values.size == 0:
        return float("nan"), float("nan")
    return float(_nan_mean(values)), float(_nan_std(values, ddof=1))


def historical_value_at_risk(returns: pd.Series | np.ndarray, cutoff: float = 0.05) -> float:
    """The ``100 * cutoff`` percentile of the returns (linear interpolation), per period.

    Same as ``performance.value_at_risk``: NaN when empty or when any return is NaN.
    """
    return performance.value_at_risk(returns, cutoff)


def parametric_value_at_risk(returns: pd.Series | np.ndarray, cutoff: float = 0.05) -> float:
    """Gaussian VaR: ``mean(r) + Phi^-1(cutoff) * std(r, ddof=1)``, NaN skipped, per period.

    NaN with fewer than 2 non-NaN returns. ``cutoff`` must lie strictly between 0 and 1.
    """
    _check_cutoff(cutoff)
    mean, deviation = _normal_fit(returns)
    return mean + _STANDARD_NORMAL.inv_cdf(cutoff) * deviation


def _parametric_expected_shortfall(mean: float, deviation: float, cutoff: float) -> float:
    # E[X | X <= VaR] for X ~ N(mean, deviation): the normal density at z over the tail mass.
    return mean - deviation * _STANDARD_NORMAL.pdf(_STANDARD_NORMAL.inv_cdf(cutoff)) / cutoff


def value_at_risk_table(returns: pd.Series | np.ndarray, cutoff: float = 0.05) -> pd.DataFrame:
    """VaR and expected shortfall by method, one row each: historical, then parametric (normal).

    Columns: ``method`` (``"historical"`` or ``"parametric (normal)"``), ``cutoff``,
    ``value_at_risk`` and ``expected_shortfall`` (returns per period, negative for a loss).
    Historical: ``performance.value_at_risk`` / ``performance.expected_shortfall``.
    Parametric: ``mu + z * sigma`` / ``mu - sigma * phi(z) / cutoff`` with ``z = Phi^-1(cutoff)``.
    Empty input gives NaN numbers, not an error; ``cutoff`` must lie strictly between 0 and 1.
    """
    _check_cutoff(cutoff)
    mean, deviation = _normal_fit(returns)
    rows = [
        {
            "method": HISTORICAL,
            "cutoff": float(cutoff),
            "value_at_risk": performance.value_at_risk(returns, cutoff),
            "expected_shortfall": performance.expected_shortfall(returns, cutoff),
        },
        {
            "method": PARAMETRIC_NORMAL,
            "cutoff": float(cutoff),
            "value_at_risk": mean + _STANDARD_NORMAL.inv_cdf(cutoff) * deviation,
            "expected_shortfall": _parametric_expected_shortfall(mean, deviation, cutoff),
        },
    ]
    return pd.DataFrame(rows, columns=["method", "cutoff", "value_at_risk", "expected_shortfall"])
