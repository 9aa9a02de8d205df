"""Mid prices per instrument, looked up as of a time without look-ahead.

mid = (bid + ask) / 2 when a quote has both sides, else ``last``. A lookup at time t returns
the latest mid observed at or before t (or strictly before t with ``strictly_before``), never
a later one, so nothing computed from it can see the future. NaN when the instrument has no
quote at or before t.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


NAT = np.iinfo("int64").min


def as_nanoseconds(times) -> np.ndarray:
    """Integer nanoseconds since the epoch (UTC) of datetimes, text or integers; NaT -> ``NAT``."""
    if isinstance(times, pd.Series | pd.Index) and pd.api.types.is_datetime64_any_dtype(times.dtype):
        # Straight from the datetime column: np.asarray would box every tz-aware value.
        index = pd.DatetimeIndex(times)
        return (index.tz_convert("UTC") if index.tz is not None else index).as_unit("ns").asi8
    array = np.asarray(times)
    if np.issubdtype(array.dtype, np.integer):
        return array.astype("int64")
    return pd.DatetimeIndex(pd.to_datetime(times, utc=True)).as_unit("ns").asi8


def mid_prices(quotes: pd.DataFrame) -> pd.DataFrame:
    """``occurred_at, symbol, mid`` from a prepared QUOTES frame, sorted by symbol then time.

    Quotes with neither both sides nor a last price are left out.
    """
    bid = quotes["bid"].to_numpy(dtype="float64") if "bid" in quotes else np.full(len(quotes), np.nan)
    ask = quotes["ask"].to_numpy(dtype="float64") if "ask" in quotes else np.full(len(quotes), np.nan)
    last = quotes["last"].to_numpy(dtype="float64") if "last" in quotes else np.full(len(quotes), np.nan)
    both = np.isfinite(bid) & np.isfinite(ask) & (bid > 0) & (ask > 0)
    mid = np.where(both, (bid + ask) / 2.0, last)
    keep = np.isfinite(mid) & (mid > 0)
    frame = pd.DataFrame({"occurred_at": quotes["occurred_at"][keep].array,
                          "symbol": quotes["symbol"][keep].array, "mid": mid[keep]})
    return frame.sort_values(["symbol", "occurred_at"], kind="stable").reset_index(drop=True)


class PriceBook:
    """As-of mid price lookups over many instruments, vectorised per instrument."""

    def __init__(self, quotes: pd.DataFrame) -> None:
        mids = mid_prices(quotes)
        self._times: dict[str, np.ndarray] = {}
        self._mids: dict[str, np.ndarray] = {}
        if mids.empty:
            return
        symbols = mids["symbol"].to_numpy()
        times = as_nanoseconds(mids["occurred_at"])
        values = mids["mid"].to_numpy()
        # Rows are sorted by symbol: slice each instrument's block once.
        boundaries = np.flatnonzero(symbols[1:] != symbols[:-1]) + 1
        starts = np.concatenate([[0], boundaries])
        ends = np.concatenate([boundaries, [len(symbols)]])
        times.flags.writeable = False  # shared with callers of arrays(): nobody may change them
        values.flags.writeable = False
        for start, end in zip(starts, ends):
            self._times[symbols[start]] = times[start:end]
            self._mids[symbols[start]] = values[start:end]

    @property
    def symbols(self) -> list[str]:
        return sorted(self._times)

    def arrays(self, symbol: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(quote times in integer ns, ascending; mids) of one instrument, or None when unknown:
        the arrays ``asof`` searches, for callers doing their own grouped lookups. Read-only."""
        times = self._times.get(symbol)
        return None if times is None else (times, self._mids[symbol])

    def series(self, symbol: str) -> pd.Series:
        """The mid price of one instrument, indexed by UTC time (empty when unknown)."""
        times = self._times.get(symbol, np.array([], dtype="int64"))
        index = pd.DatetimeIndex(pd.to_datetime(times, unit="ns", utc=True), name="occurred_at")
        return pd.Series(self._mids.get(symbol, np.array([], dtype="float64")), index=index, name=symbol)

    def asof(self, symbols, times, *, strictly_before: bool = False) -> np.ndarray:
        """The latest mid at or before each ``times[i]`` for ``symbols[i]`` (float64, NaN if none).

        ``times`` may be datetime64 (naive is UTC) or integer nanoseconds; NaT gives NaN.
        """
        symbols = np.asarray(symbols, dtype=object)
        ns = as_nanoseconds(times)
        missing_time = ns == NAT
        out = np.full(len(ns), np.nan)
        if len(ns) == 0:
            return out
        codes, uniques = pd.factorize(symbols)
        order = np.argsort(codes, kind="stable")
        sorted_codes = codes[order]
        bounds = np.searchsorted(sorted_codes, np.arange(len(uniques) + 1))
        side = "left" if strictly_before else "right"
        for code, symbol in enumerate(uniques):
            known = self._times.get(symbol)
            if known is None:
                continue
            rows = order[bounds[code]:bounds[code + 1]]
            position = np.searchsorted(known, ns[rows], side=side) - 1
            found = position >= 0
            out[rows[found]] = self._mids[symbol][position[found]]
        out[missing_time] = np.nan
        return out
