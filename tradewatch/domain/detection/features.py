"""Per-fill feature vectors: what the scikit-learn detectors see of a fill.

One row per ``fill`` event of the event frame, in seq order, with the columns ``FEATURES``:

| feature | unit | definition |
| --- | --- | --- |
| slippage_bps | bps | the fill's ``slippage_bps`` observation (metrics.py), joined by event_id |
| fill_latency_seconds | s | the fill's ``fill_latency_seconds`` observation, joined by event_id |
| relative_size | ratio | abs(quantity) / median abs(quantity) of the symbol's previous ``size_window`` fills; 1.0 for a symbol's first fill (no history yet) |
| spread_bps | bps | (ask - bid) / mid * 1e4 of the fill's own bid / ask, mid = (bid + ask) / 2 |
| price_distance_bps | bps | abs(price - mid) / mid * 1e4 |
| time_of_day_sin, time_of_day_cos | -1..1 | sin / cos of 2 pi s / 86400, s = seconds since UTC midnight of occurred_at |

Time of day is put on the circle so 23:59 and 00:00 are neighbours, as they are.

Missing values are NaN here: no latency when the order's submission is not in the trail, no
slippage when no reference price is known, no spread or price distance without a positive bid
and ask on the fill, no relative size without a positive quantity. The model imputes them (see
``trained_model``: the training median of the feature, stored with the model), so a missing
value reads as "typical" and neither raises nor hides the other features' evidence.

State (``fill_features(..., state)``): ``sizes`` {symbol: float64 array of the last
``size_window`` positive quantities} and ``last_fill_ns`` {symbol: int}; a symbol without a
fill for ``forget_after_seconds`` is dropped (its history restarts at 1.0), so the maps stay
bounded by the active universe.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from tradewatch.domain.detection.metrics import FILL_LATENCY_SECONDS, SLIPPAGE_BPS
from tradewatch.domain.events.timestamps import NS_PER_SECOND

FEATURES: tuple[str, ...] = ("slippage_bps", "fill_latency_seconds", "relative_size", "spread_bps",
                             "price_distance_bps", "time_of_day_sin", "time_of_day_cos")
DEFAULT_SIZE_WINDOW = 200
DEFAULT_FORGET_AFTER_SECONDS = 7 * 86_400.0
_NS_PER_DAY = 86_400 * NS_PER_SECOND


class FillFeatures(NamedTuple):
    """The fills of a batch and their feature matrix (row i of ``X`` is fill i)."""

    event_ids: np.ndarray  # object (str)
    symbols: np.ndarray  # object (str or None)
    strategy_ids: np.ndarray  # object (str or None): the fill's, else its order's (from the observations)
    occurred_at_ns: np.ndarray  # int64
    X: np.ndarray  # float64, shape (n, len(FEATURES)), NaN where missing

    @property
    def count(self) -> int:
        """The number of fills."""
        return int(self.X.shape[0])


def empty_features() -> FillFeatures:
    return FillFeatures(np.empty(0, dtype=object), np.empty(0, dtype=object), np.empty(0, dtype=object),
                        np.empty(0, dtype=np.int64), np.empty((0, len(FEATURES)), dtype=np.float64))


def fill_features(events: pd.DataFrame, observations: pd.DataFrame, state: dict[str, Any], *,
                  size_window: int = DEFAULT_SIZE_WINDOW,
                  forget_after_seconds: float = DEFAULT_FORGET_AFTER_SECONDS) -> FillFeatures:
    """Feature vectors of the fills in ``events`` (an event frame, seq order); updates ``state``."""
    fills = events.loc[events["event_type"].to_numpy() == "fill"]
    if fills.empty:
        return empty_features()
    event_ids = fills["event_id"].to_numpy(dtype=object)
    symbols = fills["symbol"].to_numpy(dtype=object)
    occurred = fills["occurred_at_ns"].to_numpy(dtype=np.int64)
    ids = pd.Index(event_ids)

    X = np.empty((len(fills), len(FEATURES)), dtype=np.float64)
    X[:, 0] = _observed(observations, SLIPPAGE_BPS, "value", ids).to_numpy(dtype=np.float64, na_value=np.nan)
    X[:, 1] = _observed(observations, FILL_LATENCY_SECONDS, "value", ids).to_numpy(dtype=np.float64, na_value=np.nan)
    X[:, 2] = _relative_size(symbols, np.abs(fills["quantity"].to_numpy(dtype=np.float64)), occurred, state,
                             size_window, forget_after_seconds)
    X[:, 3], X[:, 4] = _quote_features(fills["bid"].to_numpy(dtype=np.float64), fills["ask"].to_numpy(dtype=np.float64),
                                       fills["price"].to_numpy(dtype=np.float64))
    X[:, 5], X[:, 6] = _time_of_day(occurred)
    return FillFeatures(event_ids, symbols, _strategy_ids(fills, observations, ids), occurred, X)


def _fill_observations(observations: pd.DataFrame, metric: str) -> pd.DataFrame:
    rows = observations.loc[observations["metric"].to_numpy() == metric]
    return rows.drop_duplicates("event_id", keep="last").set_index("event_id")


def _observed(observations: pd.DataFrame, metric: str, column: str, ids: pd.Index) -> pd.Series:
    """The ``column`` of the ``metric`` observation of each event id (NaN / None where there is none)."""
    return _fill_observations(observations, metric)[column].reindex(ids)


def _strategy_ids(fills: pd.DataFrame, observations: pd.DataFrame, ids: pd.Index) -> np.ndarray:
    """The fill's strategy_id, else the one the extractor attributed to it (its order's)."""
    own = fills["strategy_id"].to_numpy(dtype=object)
    missing = pd.isna(own)
    if missing.any():
        for metric in (SLIPPAGE_BPS, FILL_LATENCY_SECONDS):
            found = _observed(observations, metric, "strategy_id", ids).to_numpy(dtype=object)
            take = missing & ~pd.isna(found)
            own = np.where(take, found, own)
            missing = missing & ~take
    return np.where(pd.isna(own), None, own).astype(object)


def _quote_features(bid: np.ndarray, ask: np.ndarray, price: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """spread_bps and price_distance_bps; NaN without a positive bid and ask."""
    mid = (bid + ask) / 2.0
    known = (bid > 0) & (ask > 0)  # False for NaN too
    safe_mid = np.where(known, mid, 1.0)
    spread = np.where(known, (ask - bid) / safe_mid * 1e4, np.nan)
    distance = np.where(known, np.abs(price - mid) / safe_mid * 1e4, np.nan)  # NaN price stays NaN
    return spread, distance


def _time_of_day(occurred_at_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # UTC has no leap seconds in epoch time, so ns modulo a day is the time since midnight.
    angle = 2.0 * np.pi * (np.mod(occurred_at_ns, _NS_PER_DAY) / _NS_PER_DAY)
    return np.sin(angle), np.cos(angle)


def _relative_size(symbols: np.ndarray, quantity: np.ndarray, occurred_at_ns: np.ndarray, state: dict[str, Any],
                   window: int, forget_after_seconds: float) -> np.ndarray:
    sizes: dict[str, np.ndarray] = state.setdefault("sizes", {})
    last_fill: dict[str, int] = state.setdefault("last_fill_ns", {})
    result = np.full(len(quantity), np.nan)
    keys = pd.Series(symbols, dtype=object).fillna("").to_numpy(dtype=object)  # fills without a symbol share ""
    codes, uniques = pd.factorize(keys)
    for code, symbol in enumerate(uniques):
        rows = np.flatnonzero(codes == code)
        history = np.asarray(sizes.get(symbol, np.empty(0)), dtype=np.float64)[-window:]
        result[rows], sizes[symbol] = _relative_to_history(quantity[rows], history, window)
        last_fill[symbol] = max(int(occurred_at_ns[rows].max()), int(last_fill.get(symbol, 0)))
    if np.isfinite(forget_after_seconds):
        _forget(sizes, last_fill, int(occurred_at_ns.max()) - int(forget_after_seconds * 1e9))
    return result


def _relative_to_history(quantity: np.ndarray, history: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Each quantity over the median of the ``window`` valid quantities before it (history first).

    Returns the ratios and the new history (the last ``window`` valid quantities)."""
    valid = np.isfinite(quantity) & (quantity > 0)
    series = np.concatenate([history, quantity[valid]])
    # end[i]: how many valid quantities precede fill i in ``series``; its window is series[end-window:end].
    end = len(history) + np.cumsum(valid) - valid
    medians = np.full(len(quantity), np.nan)
    full = end >= window
    if full.any():
        windows = sliding_window_view(series, window)  # row r is series[r:r+window]
        medians[full] = np.median(windows[end[full] - window], axis=1)
    for i in np.flatnonzero(~full & (end > 0)):  # only during a symbol's first ``window`` fills
        medians[i] = np.median(series[:end[i]])
    ratio = np.where(end > 0, quantity / np.where(end > 0, medians, 1.0), 1.0)
    ratio[~valid] = np.nan
    return ratio, series[-window:].astype(np.float64, copy=True)


def _forget(sizes: dict[str, np.ndarray], last_fill: dict[str, int], cutoff_ns: int) -> None:
    for symbol in [s for s, t in last_fill.items() if t < cutoff_ns]:
        last_fill.pop(symbol, None)
        sizes.pop(symbol, None)
