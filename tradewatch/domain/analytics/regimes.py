"""Market regimes (trend, volatility, risk appetite) per instrument and bar, and performance by regime.

Bars
    Each instrument's mid price (``PriceBook.series``) is sampled into bars of ``bar`` (a pandas
    offset alias such as ``"1D"``, ``"4h"``, ``"W"``, ``"MS"``). Bar k covers the half-open UTC
    interval ``[start_k, end_k)`` with ``end_k = start_k + bar``; its close ``C_k`` is the last mid
    observed inside it. Bars without any quote are skipped: the next bar's return is measured from
    the last bar that had a close (no zero returns are invented for gaps). Bar log return
    ``l_k = ln(C_k / C_{k-1})`` between consecutive non-empty bars (dimensionless).

No look-ahead
    The label of bar k is computed only from closes ``C_0 .. C_k`` and is stamped
    ``occurred_at = end_k``: it is valid from the end of the bar onward. A trade inside bar k+1
    (``end_k <= t < end_{k+1}``) sees the label of bar k; a trade exactly at ``end_k`` sees bar k's
    label too, since a quote at ``end_k`` belongs to bar k+1 and cannot have moved bar k's close.
    Recomputing the labels on prices truncated at any time T gives the same labels for every bar
    ending at or before T. The last bar may be partial (the data ends inside it); its close is then
    the last mid known, which is what an as-of lookup at its end would return.

Labels (columns of ``RegimeAnalyzer.labels``)
    trend (L = ``trend_lookback_bars``)
        ``r_k = C_k / C_{k-L} - 1`` and ``sigma_k = std(l_{k-L+1} .. l_k)`` (ddof = 1).
        "up" if ``r_k > theta * sigma_k * sqrt(L)``, "down" if ``r_k < -theta * sigma_k * sqrt(L)``,
        else "sideways" (theta = ``trend_threshold``; the threshold scales with the instrument's
        own volatility so one setting fits quiet and wild instruments). "unknown" for the first L
        bars (fewer than L returns).
    volatility (M = ``volatility_lookback_bars``, H = ``volatility_history_bars``)
        ``v_k = std(l_{k-M+1} .. l_k)`` (ddof = 1, per bar, dimensionless). Its percentile
        ``p_k = rank(v_k) / n`` among the trailing n = min(H, available) values ``v_{k-n+1} .. v_k``
        (average rank for ties, so the largest of n values scores 1 and the smallest 1/n).
        "low" if ``p_k < low_volatility_percentile``, "high" if ``p_k > high_volatility_percentile``,
        else "normal"; "unknown" until ``v`` exists and at least min(M, H) values of it are known.
    risk (R = ``risk_lookback_bars``)
        From the benchmark's own bars: ``b_j = B_j / B_{j-R} - 1``; "risk_on" if ``b_j > 0``, else
        "risk_off". Every instrument's bar ending at ``end_k`` takes the latest benchmark label with
        ``occurred_at <= end_k`` (so the benchmark label is also known at that time). "unknown" when
        ``benchmark_symbol`` is None, has no quotes in the book, or has fewer than R + 1 bars yet;
        the reason is listed in ``labels(...).attrs["notes"]``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from tradewatch.domain.analytics.prices import NAT, PriceBook, as_nanoseconds

UNKNOWN = "unknown"
TREND_LABELS = ("up", "sideways", "down")
VOLATILITY_LABELS = ("low", "normal", "high")
RISK_LABELS = ("risk_on", "risk_off")
DIMENSIONS: dict[str, tuple[str, ...]] = {"trend": TREND_LABELS, "volatility": VOLATILITY_LABELS, "risk": RISK_LABELS}
LABEL_COLUMNS = ("occurred_at", "symbol", "trend", "volatility", "risk")
PERFORMANCE_COLUMNS = ("regime", "trades", "pnl", "average_pnl", "win_rate", "profit_factor", "average_holding_seconds")
RETURN_COLUMNS = ("regime", "periods", "mean_return", "volatility", "annualised_mean_return", "annualised_volatility")


def _positive_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}={value!r} is not accepted: expected an integer >= {minimum}")
    return int(value)


def _fraction(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (0.0 <= float(value) <= 1.0):
        raise ValueError(f"{name}={value!r} is not accepted: expected a number between 0 and 1")
    return float(value)


def empty_labels() -> pd.DataFrame:
    """A labels frame with no rows and the documented columns and dtypes."""
    frame = pd.DataFrame({
        "occurred_at": pd.Series(dtype="datetime64[ns, UTC]"),
        "symbol": pd.Series(dtype="str"),
        "trend": pd.Series(dtype="str"),
        "volatility": pd.Series(dtype="str"),
        "risk": pd.Series(dtype="str"),
    })
    return frame


class RegimeAnalyzer:
    """Label each instrument's bars with trend, volatility and risk regimes; split performance by them.

    See the module docstring for the bar construction, the formulas and the no-look-ahead rule.

    Parameters (all bar counts are counts of non-empty bars):
        bar: pandas offset alias of one bar (``"1D"``, ``"4h"``, ``"W"``, ``"MS"``...), UTC.
        trend_lookback_bars: L >= 2, bars of the trend return and of its volatility scale.
        trend_threshold: theta >= 0, the trend threshold in units of ``sigma * sqrt(L)``.
        volatility_lookback_bars: M >= 2, bars of log returns in one volatility estimate ``v``.
        volatility_history_bars: H >= 2, trailing values of ``v`` its percentile is ranked among.
        low_volatility_percentile, high_volatility_percentile: 0 <= low <= high <= 1.
        benchmark_symbol: the instrument whose trend decides risk_on / risk_off (None: "unknown").
        risk_lookback_bars: R >= 1, bars of the benchmark return.
    """

    def __init__(
        self,
        bar: str = "1D",
        trend_lookback_bars: int = 20,
        trend_threshold: float = 0.5,
        volatility_lookback_bars: int = 20,
        volatility_history_bars: int = 252,
        low_volatility_percentile: float = 0.25,
        high_volatility_percentile: float = 0.75,
        benchmark_symbol: str | None = None,
        risk_lookback_bars: int = 20,
    ) -> None:
        try:
            offset = to_offset(bar)
        except (TypeError, ValueError) as error:
            raise ValueError(f"bar={bar!r} is not accepted: expected a pandas offset alias such as '1D', '4h', 'W', 'MS' ({error})") from None
        if offset is None or getattr(offset, "n", 1) <= 0:
            raise ValueError(f"bar={bar!r} is not accepted: expected a positive pandas offset alias such as '1D', '4h', 'W', 'MS'")
        self.bar = bar
        self._offset = offset
        self.trend_lookback_bars = _positive_int("trend_lookback_bars", trend_lookback_bars, 2)
        if isinstance(trend_threshold, bool) or not isinstance(trend_threshold, (int, float, np.integer, np.floating)) or not (
            math.isfinite(float(trend_threshold)) and float(trend_threshold) >= 0
        ):
            raise ValueError(f"trend_threshold={trend_threshold!r} is not accepted: expected a finite number >= 0")
        self.trend_threshold = float(trend_threshold)
        self.volatility_lookback_bars = _positive_int("volatility_lookback_bars", volatility_lookback_bars, 2)
        self.volatility_history_bars = _positive_int("volatility_history_bars", volatility_history_bars, 2)
        self.low_volatility_percentile = _fraction("low_volatility_percentile", low_volatility_percentile)
        self.high_volatility_percentile = _fraction("high_volatility_percentile", high_volatility_percentile)
        if self.low_volatility_percentile > self.high_volatility_percentile:
            raise ValueError(
                f"low_volatility_percentile={low_volatility_percentile!r} is not accepted with "
                f"high_volatility_percentile={high_volatility_percentile!r}: expected low <= high"
            )
        if benchmark_symbol is not None and not isinstance(benchmark_symbol, str):
            raise ValueError(f"benchmark_symbol={benchmark_symbol!r} is not accepted: expected an instrument name (str) or None")
        self.benchmark_symbol = benchmark_symbol
        self.risk_lookback_bars = _positive_int("risk_lookback_bars", risk_lookback_bars, 1)

    # ------------------------------------------------------------------ bars

    def bars(self, prices: PriceBook, symbol: str) -> tuple[np.ndarray, np.ndarray]:
        """``(bar_end_nanoseconds, close)`` of one instrument's non-empty bars, oldest first.

        ``close_k`` = last mid with ``start_k <= t < end_k``; empty bars are left out.
        """
        series = prices.series(symbol)
        if series.empty:
            return np.array([], dtype="int64"), np.array([], dtype="float64")
        # origin="epoch" puts intraday bars of every instrument on one grid, whatever its first quote;
        # pandas only honours origin for fixed-length (Tick) offsets.
        extra = {"origin": "epoch"} if isinstance(self._offset, pd.offsets.Tick) else {}
        closes = series.resample(self._offset, closed="left", label="left", **extra).last().dropna()
        ends = pd.DatetimeIndex(closes.index + self._offset).as_unit("ns").asi8
        return ends, closes.to_numpy(dtype="float64")

    def _trend(self, closes: np.ndarray, log_returns: pd.Series) -> np.ndarray:
        lookback = self.trend_lookback_bars
        close = pd.Series(closes)
        trend_return = (close / close.shift(lookback) - 1.0).to_numpy()
        sigma = log_returns.rolling(lookback, min_periods=lookback).std(ddof=1).to_numpy()
        threshold = self.trend_threshold * sigma * math.sqrt(lookback)
        known = np.isfinite(trend_return) & np.isfinite(threshold)
        with np.errstate(invalid="ignore"):
            return np.select(
                [~known, trend_return > threshold, trend_return < -threshold],
                [UNKNOWN, "up", "down"],
                default="sideways",
            ).astype(object)

    def _volatility(self, log_returns: pd.Series) -> np.ndarray:
        lookback = self.volatility_lookback_bars
        history = self.volatility_history_bars
        volatility = log_returns.rolling(lookback, min_periods=lookback).std(ddof=1).dropna()
        # Rank among the trailing `history` known values (NaNs only lead the series, so dropping
        # them keeps the window made of real estimates).
        percentile = volatility.rolling(history, min_periods=min(lookback, history)).rank(method="average", pct=True)
        values = np.full(len(log_returns), np.nan)
        values[percentile.index.to_numpy()] = percentile.to_numpy()
        with np.errstate(invalid="ignore"):
            return np.select(
                [~np.isfinite(values), values < self.low_volatility_percentile, values > self.high_volatility_percentile],
                [UNKNOWN, "low", "high"],
                default="normal",
            ).astype(object)

    def _risk(self, closes: np.ndarray) -> np.ndarray:
        close = pd.Series(closes)
        benchmark_return = (close / close.shift(self.risk_lookback_bars) - 1.0).to_numpy()
        with np.errstate(invalid="ignore"):
            return np.select(
                [~np.isfinite(benchmark_return), benchmark_return > 0],
                [UNKNOWN, "risk_on"],
                default="risk_off",
            ).astype(object)

    # ---------------------------------------------------------------- labels

    def labels(self, prices: PriceBook) -> pd.DataFrame:
        """One row per instrument per non-empty bar: ``occurred_at, symbol, trend, volatility, risk``.

        ``occurred_at`` is the END of the bar (UTC): the label uses closes up to and including
        that bar only and is valid from then on (a trade inside bar k+1 sees bar k's label).
        Sorted by ``occurred_at`` then ``symbol``. ``attrs["notes"]`` lists why risk is "unknown"
        when no benchmark is usable. Empty book: an empty frame with these columns.
        """
        notes: list[str] = []
        risk_ends = np.array([], dtype="int64")
        risk_values = np.array([], dtype=object)
        if self.benchmark_symbol is None:
            notes.append("risk is 'unknown': no benchmark_symbol was configured")
        elif self.benchmark_symbol not in prices.symbols:
            notes.append(f"risk is 'unknown': the benchmark {self.benchmark_symbol!r} has no quotes in the prices")
        else:
            risk_ends, benchmark_closes = self.bars(prices, self.benchmark_symbol)
            risk_values = self._risk(benchmark_closes)

        ends_parts, symbol_parts, trend_parts, volatility_parts = [], [], [], []
        for symbol in prices.symbols:  # one pass per instrument; everything inside is vectorised
            ends, closes = self.bars(prices, symbol)
            if len(ends) == 0:
                continue
            log_returns = pd.Series(np.log(closes)).diff()
            ends_parts.append(ends)
            symbol_parts.append(np.full(len(ends), symbol, dtype=object))
            trend_parts.append(self._trend(closes, log_returns))
            volatility_parts.append(self._volatility(log_returns))
        if not ends_parts:
            frame = empty_labels()
            frame.attrs["notes"] = notes
            return frame

        ends = np.concatenate(ends_parts)
        # Latest benchmark label known at each bar end (benchmark bar end <= instrument bar end).
        position = np.searchsorted(risk_ends, ends, side="right") - 1
        risk = np.full(len(ends), UNKNOWN, dtype=object)
        found = position >= 0
        risk[found] = risk_values[position[found]]
        frame = pd.DataFrame({
            "occurred_at": pd.to_datetime(ends, unit="ns", utc=True),
            "symbol": pd.array(np.concatenate(symbol_parts), dtype="str"),
            "trend": pd.array(np.concatenate(trend_parts), dtype="str"),
            "volatility": pd.array(np.concatenate(volatility_parts), dtype="str"),
            "risk": pd.array(risk, dtype="str"),
        })
        frame = frame.sort_values(["occurred_at", "symbol"], kind="stable").reset_index(drop=True)
        frame.attrs["notes"] = notes
        return frame

    # ----------------------------------------------------------- attribution

    @staticmethod
    def _assign(labels: pd.DataFrame, symbols, times_ns: np.ndarray) -> dict[str, tuple[list[str], np.ndarray]]:
        """For each (symbol, time): per dimension, the label with the latest ``occurred_at <= time``
        of that symbol; "unknown" when there is none (or the time is NaT).

        Returns, per dimension, ``(regimes, codes)``: the regimes listed in the documented order
        (then any other label found, then "unknown" only when present) and, per row, the index of
        its regime in that list. Integer codes let the summaries use ``np.bincount``.
        """
        dimensions = tuple(DIMENSIONS)
        n = len(times_ns)
        label_row = np.full(n, -1, dtype="int64")
        if len(labels):
            missing = [c for c in ("occurred_at", "symbol", *dimensions) if c not in labels.columns]
            if missing:
                raise ValueError(
                    f"labels: missing column(s) {', '.join(missing)}; expected the frame RegimeAnalyzer.labels returns "
                    f"(columns {', '.join(LABEL_COLUMNS)})"
                )
            label_times = as_nanoseconds(labels["occurred_at"])
            # Match on integer instrument codes: merge_asof needs identical key dtypes, and text
            # columns may be "str" or object depending on where they came from.
            label_codes, label_symbols = pd.factorize(labels["symbol"])
            row_codes, row_symbols = pd.factorize(pd.Series(symbols) if not isinstance(symbols, pd.Series) else symbols)
            to_label_code = pd.Index(label_symbols).get_indexer(row_symbols)
            row_label_codes = np.where(row_codes >= 0, to_label_code[row_codes] if len(to_label_code) else -1, -1)
            left_usable = (times_ns != NAT) & (row_label_codes >= 0)
            right_usable = (label_times != NAT) & (label_codes >= 0)
            if n and left_usable.any() and right_usable.any():
                left = pd.DataFrame({"time": times_ns[left_usable], "symbol": row_label_codes[left_usable], "row": np.flatnonzero(left_usable)})
                right = pd.DataFrame({"time": label_times[right_usable], "symbol": label_codes[right_usable], "label_row": np.flatnonzero(right_usable)})
                matched = pd.merge_asof(
                    left.sort_values("time", kind="stable"), right.sort_values("time", kind="stable"),
                    on="time", by="symbol", direction="backward", allow_exact_matches=True,
                )
                found = matched["label_row"].notna().to_numpy()
                label_row[matched["row"].to_numpy()[found]] = matched["label_row"].to_numpy()[found].astype("int64")
        out = {}
        has_label = label_row >= 0
        for dimension in dimensions:
            if len(labels):
                value_codes, values = pd.factorize(labels[dimension])
                values = [str(v) for v in values]
            else:
                value_codes, values = np.array([], dtype="int64"), []
            row_values = np.full(n, -1, dtype="int64")
            row_values[has_label] = value_codes[label_row[has_label]]
            counts = np.bincount(row_values[row_values >= 0], minlength=len(values))
            present = {values[i] for i in np.flatnonzero(counts)}
            known = list(DIMENSIONS[dimension])
            extra = sorted(present - set(known) - {UNKNOWN})
            any_unknown = bool((row_values < 0).any()) or UNKNOWN in present
            regimes = known + extra + ([UNKNOWN] if any_unknown else [])
            position = pd.Index(regimes).get_indexer(values + [UNKNOWN])  # "unknown" last: code -1
            out[dimension] = (regimes, position[row_values])
        return out

    def performance_by_regime(self, trips: pd.DataFrame, labels: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """Round-trip performance split by the regime each trip was entered in.

        Each trip takes the label of its ``symbol`` valid at ``entry_at``: the latest label with
        ``occurred_at <= entry_at`` ("unknown" if none). Per regime of each dimension
        (``{"trend", "volatility", "risk"}``), one row:

        - trades: number of trips; pnl: sum of ``pnl`` (currency; NaN pnl counts as 0 here)
        - average_pnl = pnl / trips with a pnl (currency)
        - win_rate = trips with pnl > 0 / trips with a pnl
        - profit_factor = sum(pnl > 0) / |sum(pnl < 0)| (NaN when there is no loss)
        - average_holding_seconds = mean ``holding_seconds`` (or ``exit_at - entry_at`` when that
          column is absent), seconds

        Every label of the dimension is listed (zero trades when unused); "unknown" only when some
        trip has it. The ``pnl`` column of each frame sums to ``trips.pnl.sum()``.
        ``trips`` needs ``symbol, entry_at, pnl``.
        """
        if len(trips) == 0:
            trips = pd.DataFrame({"symbol": pd.Series(dtype=object), "entry_at": pd.Series(dtype="datetime64[ns, UTC]"), "pnl": pd.Series(dtype="float64"), "holding_seconds": pd.Series(dtype="float64")})
        missing = [c for c in ("symbol", "entry_at", "pnl") if c not in trips.columns]
        if missing:
            raise ValueError(f"trips: missing column(s) {', '.join(missing)}; expected the round-trips frame (symbol, entry_at, pnl, and holding_seconds or exit_at)")
        entry = as_nanoseconds(trips["entry_at"]) if len(trips) else np.array([], dtype="int64")
        assigned = self._assign(labels, trips["symbol"], entry)
        pnl = trips["pnl"].to_numpy(dtype="float64")
        if "holding_seconds" in trips.columns:
            holding = trips["holding_seconds"].to_numpy(dtype="float64")
        elif "exit_at" in trips.columns and len(trips):
            exit_ns = as_nanoseconds(trips["exit_at"])
            holding = np.where((exit_ns == NAT) | (entry == NAT), np.nan, (exit_ns - entry) / 1e9)
        else:
            holding = np.full(len(trips), np.nan)
        return {dimension: self._summarise(regimes, codes, pnl, holding) for dimension, (regimes, codes) in assigned.items()}

    @staticmethod
    def _summarise(regimes: list[str], codes: np.ndarray, pnl: np.ndarray, holding: np.ndarray) -> pd.DataFrame:
        k = len(regimes)

        def total(weights=None) -> np.ndarray:
            return np.bincount(codes, weights=weights, minlength=k)[:k].astype("float64")

        known_pnl = np.isfinite(pnl)
        known_holding = np.isfinite(holding)
        trades = np.bincount(codes, minlength=k)[:k].astype("int64")
        with_pnl = total(known_pnl.astype("float64"))
        pnl_sum = total(np.where(known_pnl, pnl, 0.0))
        wins = total((pnl > 0).astype("float64"))
        profit = total(np.where(pnl > 0, pnl, 0.0))
        loss = total(np.where(pnl < 0, -pnl, 0.0))
        holding_count = total(known_holding.astype("float64"))
        holding_sum = total(np.where(known_holding, holding, 0.0))
        with np.errstate(invalid="ignore", divide="ignore"):
            average = np.where(with_pnl > 0, pnl_sum / with_pnl, np.nan)
            win_rate = np.where(with_pnl > 0, wins / with_pnl, np.nan)
            profit_factor = np.where(loss > 0, profit / loss, np.nan)
            average_holding = np.where(holding_count > 0, holding_sum / holding_count, np.nan)
        return pd.DataFrame({
            "regime": pd.array(regimes, dtype="str"),
            "trades": trades,
            "pnl": pnl_sum,
            "average_pnl": average,
            "win_rate": win_rate,
            "profit_factor": profit_factor,
            "average_holding_seconds": average_holding,
        })

    def returns_by_regime(self, returns: pd.Series, labels: pd.DataFrame, symbol: str, *, periods_per_year: float) -> dict[str, pd.DataFrame]:
        """Per-period returns (e.g. a strategy's daily returns) split by ``symbol``'s regime.

        ``returns`` is indexed by the END of each period (DatetimeIndex, naive = UTC). Period i runs
        from the previous index time to its own; it takes the label valid at its START (latest
        ``occurred_at <=`` start), so the label never includes the return it explains. The first
        period has no known start and is "unknown". Per regime of each dimension:

        - periods: number of finite returns
        - mean_return: mean per-period return; volatility: std per period (ddof = 1)
        - annualised_mean_return = mean_return * periods_per_year
        - annualised_volatility = volatility * sqrt(periods_per_year)

        ``periods_per_year`` must be given (252 for trading days, 365 for calendar days, 52 for
        weeks...): it depends on the return frequency, which the index alone does not reliably tell.
        """
        if isinstance(periods_per_year, bool) or not isinstance(periods_per_year, (int, float, np.integer, np.floating)) or not (
            math.isfinite(float(periods_per_year)) and float(periods_per_year) > 0
        ):
            raise ValueError(f"periods_per_year={periods_per_year!r} is not accepted: expected a finite number > 0 (e.g. 252 for daily returns)")
        if not isinstance(returns, pd.Series) or not (isinstance(returns.index, pd.DatetimeIndex) or len(returns) == 0):
            raise ValueError("returns is not accepted: expected a pandas Series indexed by a DatetimeIndex (period end times)")
        times = as_nanoseconds(returns.index) if len(returns) else np.array([], dtype="int64")
        order = np.argsort(times, kind="stable")
        times = times[order]
        values = returns.to_numpy(dtype="float64")[order]
        starts = np.concatenate([[NAT], times[:-1]]) if len(times) else times
        assigned = self._assign(labels, np.full(len(times), symbol, dtype=object), starts)
        frames = {}
        for dimension, (regimes, codes) in assigned.items():
            grouped = pd.Series(values).groupby(codes)
            count = grouped.count().reindex(range(len(regimes)), fill_value=0).to_numpy(dtype="int64")
            mean = grouped.mean().reindex(range(len(regimes))).to_numpy(dtype="float64")
            std = grouped.std(ddof=1).reindex(range(len(regimes))).to_numpy(dtype="float64")
            frames[dimension] = pd.DataFrame({
                "regime": pd.array(regimes, dtype="str"),
                "periods": count,
                "mean_return": mean,
                "volatility": std,
                "annualised_mean_return": mean * float(periods_per_year),
                "annualised_volatility": std * math.sqrt(float(periods_per_year)),
            })
        return frames
