"""Where the realized PnL of round trips came from, vectorised.

Every table has one row per bucket: a first column naming the bucket, then

- pnl: sum of the trips' ``pnl`` (net of fees, currency) allocated to the bucket;
- trades: number of trips touching the bucket;
- share_of_pnl = pnl / total_pnl (NaN when total_pnl is 0), total_pnl = sum of ``trips.pnl``.

Each trip's pnl goes to exactly one bucket (or, for factors, is split across several), so every
table reconciles: its pnl column sums to total_pnl up to float rounding (far below a cent).
Sums are float64 ``np.bincount`` accumulations.
"""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tradewatch.domain.analytics.order_keys import arrow_text
from tradewatch.domain.analytics.round_trips import nanoseconds

UNATTRIBUTED = "unattributed"
NONE_LABEL = "(none)"  # the bucket of trips with no strategy_id (or symbol)
UNKNOWN = "unknown"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
REGIME_DIMENSIONS = ("trend", "volatility", "risk")
DEFAULT_HORIZON_EDGES_SECONDS = (60, 300, 3600, 86400, 432000)
FACTOR_METHOD = (
    "proportional allocation by absolute exposure (not a regression): each round trip's pnl is split "
    "across the factors of its opening signal as pnl * |exposure_f| / sum_g |exposure_g|; a trip whose "
    "signal is missing, has no factor rows or only zero exposures goes to 'unattributed'"
)

_NANOSECONDS_PER_MINUTE = 60 * 1_000_000_000
_NANOSECONDS_PER_DAY = 86_400 * 1_000_000_000
_MINUTES_PER_DAY = 1440
_UNITS = ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second"))


def _duration_parts(seconds: float) -> tuple[str, str]:
    """(count, unit) in the largest whole unit: 300 -> ("5", "minute"); 90 -> ("90", "second")."""
    for size, unit in _UNITS:
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}", unit
    return f"{seconds:g}", "second"


def _duration_words(seconds: float) -> str:
    count, unit = _duration_parts(seconds)
    return f"{count} {unit}{'' if count == '1' else 's'}"


def horizon_labels(edges: Sequence[float]) -> list[str]:
    """Bucket names for holding-time edges: "under 1 minute", "1 to 5 minutes", ..., "5 days or more".

    Bucket i holds trips with edges[i-1] <= holding_seconds < edges[i].
    """
    labels = [f"under {_duration_words(edges[0])}"]
    for low, high in zip(edges[:-1], edges[1:]):
        low_count, low_unit = _duration_parts(low)
        high_count, high_unit = _duration_parts(high)
        if low_unit == high_unit:
            labels.append(f"{low_count} to {_duration_words(high)}")
        else:
            labels.append(f"{_duration_words(low)} to {_duration_words(high)}")
    labels.append(f"{_duration_words(edges[-1])} or more")
    return labels


def bucket_table(dimension: str, labels: Sequence[str], pnl: np.ndarray, trades: np.ndarray,
                 total_pnl: float) -> pd.DataFrame:
    """The attribution table: ``dimension`` (bucket name), pnl (currency), trades, share_of_pnl.

    share_of_pnl = pnl / total_pnl, NaN when total_pnl is 0.
    """
    pnl = np.asarray(pnl, dtype="float64")
    share = pnl / total_pnl if total_pnl != 0 else np.full(len(pnl), np.nan)
    return pd.DataFrame({
        dimension: pd.array(list(labels), dtype="str"),
        "pnl": pnl,
        "trades": np.asarray(trades, dtype="int64"),
        "share_of_pnl": share,
    })


def _column_name(trips: pd.DataFrame, name: str) -> bool:
    """Whether the column is there; False when it is absent from an empty frame (else an error)."""
    if name in trips.columns:
        return True
    if len(trips) == 0:
        return False
    raise ValueError(f"trips: missing column {name!r}; pass RoundTrips.trips from match_round_trips")


def _column(trips: pd.DataFrame, name: str) -> np.ndarray | None:
    """The column's values (datetimes as int64 UTC nanoseconds), or None when it is absent from
    an empty frame (empty input never raises)."""
    if name in trips.columns:
        column = trips[name]
        return nanoseconds(column) if pd.api.types.is_datetime64_any_dtype(column.dtype) else column.to_numpy()
    if len(trips) == 0:
        return None
    raise ValueError(f"trips: missing column {name!r}; pass RoundTrips.trips from match_round_trips")


def _factorized(trips: pd.DataFrame, name: str) -> tuple | None:
    """``pd.factorize`` of the column, or None when it is absent from an empty frame.

    The Series itself is factorized: an Arrow-backed ``str`` column is hashed in place, without
    converting every value to a Python string first.
    """
    if name in trips.columns:
        return pd.factorize(trips[name])
    if len(trips) == 0:
        return None
    raise ValueError(f"trips: missing column {name!r}; pass RoundTrips.trips from match_round_trips")


def _signal_codes(trip_signals: pd.Series, exposure_signals: pd.Series) -> tuple[np.ndarray, np.ndarray, int]:
    """(code per exposure row, code per trip, number of codes) of the signal ids of both frames,
    -1 where missing: rows of either frame with the same id, and only those, share a code.

    Exposures come in long format with a signal's rows together: one id per run of equal
    neighbours is hashed.
    """
    trip_ids, exposure_ids = arrow_text(trip_signals), arrow_text(exposure_signals)
    if trip_ids is not None and exposure_ids is not None:
        n = len(exposure_ids)
        new_run = np.ones(n, dtype=bool)
        if n > 1:
            differs = pc.not_equal(exposure_ids.slice(1), exposure_ids.slice(0, n - 1))
            new_run[1:] = differs.fill_null(True).to_numpy(zero_copy_only=False)
        starts = np.flatnonzero(new_run)
        runs = exposure_ids.take(pa.array(starts))
        if trip_ids.type != runs.type:
            trip_ids, runs = trip_ids.cast(pa.large_string()), runs.cast(pa.large_string())
        encoded = pc.dictionary_encode(pa.concat_arrays([runs, trip_ids]))
        codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        signal_count = len(encoded.dictionary)
    else:
        exposure_values = exposure_signals.to_numpy(dtype=object)
        new_run = np.ones(len(exposure_values), dtype=bool)
        new_run[1:] = exposure_values[1:] != exposure_values[:-1]
        starts = np.flatnonzero(new_run)
        codes, signal_ids = pd.factorize(np.concatenate((exposure_values[starts],
                                                         trip_signals.to_numpy(dtype=object))))
        codes, signal_count = codes.astype(np.int64), len(signal_ids)
    exposure_code = np.repeat(codes[: len(starts)], np.diff(starts, append=len(new_run)))
    return exposure_code, codes[len(starts):], signal_count


def _sorted_codes(values: np.ndarray | None, factorized: tuple | None = None) -> tuple[np.ndarray, list[str]]:
    """(index of each value among the distinct values sorted as text, or -1 when missing; those names).

    ``factorized``: the ``pd.factorize(values)`` result when the caller has it already.
    """
    codes, uniques = factorized if factorized is not None else pd.factorize(values)
    if len(codes) == 0:
        return np.array([], dtype=np.int64), []
    names = [str(u) for u in uniques]
    rank = np.argsort(np.array(names, dtype=object), kind="stable")
    position = np.empty(len(names), dtype=np.int64)
    position[rank] = np.arange(len(names))
    sorted_codes = np.where(codes >= 0, position[np.maximum(codes, 0)], -1) if len(names) else codes.astype(np.int64)
    return sorted_codes, [names[i] for i in rank]


def _text_buckets(factorized: tuple | None, missing_label: str) -> tuple[np.ndarray, list[str]]:
    """Bucket index per row and the bucket names: the distinct texts sorted, then ``missing_label``
    for missing values (listed only when some value is missing). ``factorized``: the
    ``pd.factorize`` of the values (None when the column is absent from an empty frame)."""
    if factorized is None:
        return np.array([], dtype=np.int64), []
    codes, labels = _sorted_codes(None, factorized)
    missing = codes < 0
    if missing.any():
        if missing_label not in labels:
            labels.append(missing_label)
        return np.where(missing, labels.index(missing_label), codes), labels
    return codes, labels


class PnLAttributor:
    """Attribution of round-trip PnL to factors, instruments, strategies, holding horizons,
    local time of day, local weekday and market regimes.

    ``timezone``: an IANA name ("UTC", "Europe/London", "America/New_York") for the time of day
    and weekday of ``entry_at``. ``horizon_edges_seconds``: increasing positive holding-time
    edges in seconds; bucket i holds edges[i-1] <= holding_seconds < edges[i], with an "under"
    bucket first and an "or more" bucket last. ``time_of_day_minutes``: the width of a time-of-day
    bucket in minutes, 1 to 1440; buckets start at midnight, so when the width does not divide
    1440 the day's last bucket is shorter.

    Each method takes ``RoundTrips.trips`` and returns a table (see the module docstring).
    """

    def __init__(self, timezone: str = "UTC",
                 horizon_edges_seconds: Sequence[float] = DEFAULT_HORIZON_EDGES_SECONDS,
                 time_of_day_minutes: int = 60) -> None:
        self.timezone = _checked_timezone(timezone)
        self.horizon_edges_seconds = _checked_edges(horizon_edges_seconds)
        if isinstance(time_of_day_minutes, bool) or not isinstance(time_of_day_minutes, (int, np.integer)) \
                or not 1 <= time_of_day_minutes <= _MINUTES_PER_DAY:
            raise ValueError(
                f"time_of_day_minutes must be a whole number of minutes from 1 to 1440, such as 15, 30, 60 or "
                f"120; got {time_of_day_minutes!r}"
            )
        self.time_of_day_minutes = int(time_of_day_minutes)
        self.horizon_labels = horizon_labels(self.horizon_edges_seconds)
        self.time_of_day_labels = [f"{m // 60:02d}:{m % 60:02d}"
                                   for m in range(0, _MINUTES_PER_DAY, self.time_of_day_minutes)]

    # -- per dimension ---------------------------------------------------------------------

    def by_factor(self, trips: pd.DataFrame, exposures: pd.DataFrame | None) -> pd.DataFrame:
        """PnL by factor of the opening signal: a proportional allocation, not a regression.

        ``exposures`` is a prepared FACTOR_EXPOSURES frame (signal_id, factor, exposure). For a
        trip whose opening signal s has exposures e_f (rows of one (signal, factor) add up):

            pnl_f = pnl * |e_f| / sum_g |e_g|

        so the shares of a trip sum to its pnl. Computed per signal: with P_s the summed pnl of
        the trips opened by signal s, factor f receives sum_s P_s * |e_sf| / sum_g |e_sg|, which
        is the same sum. A trip with no opening_signal_id, whose signal has no factor rows, or
        only zero (or non-finite) exposures goes entirely to "unattributed". trades counts the
        trips with a nonzero exposure to the factor. Buckets: every factor named in
        ``exposures``, sorted, then "unattributed" (always listed).
        """
        pnl = self._pnl(trips)
        total = float(pnl.sum())
        _column_name(trips, "opening_signal_id")
        if exposures is None or len(exposures) == 0 or len(pnl) == 0:
            factor_names = _factor_names(exposures)
            return bucket_table("factor", factor_names + [UNATTRIBUTED],
                                np.concatenate((np.zeros(len(factor_names)), [total])),
                                np.concatenate((np.zeros(len(factor_names), dtype=np.int64), [len(pnl)])), total)
        weight = np.abs(exposures["exposure"].to_numpy(dtype="float64"))
        weight = np.where(np.isfinite(weight), weight, 0.0)
        exposure_code, trip_code, signal_count = _signal_codes(trips["opening_signal_id"], exposures["signal_id"])
        factor_code, factor_uniques = pd.factorize(exposures["factor"])
        factor_count = len(factor_uniques)
        usable = (exposure_code >= 0) & (factor_code >= 0) & (weight > 0)
        # Sum duplicate (signal, factor) rows so each trip touches a factor once.
        if usable.all():  # the usual case: no boolean selection needed
            pair_key, usable_weight = exposure_code * factor_count + factor_code, weight
        else:
            pair_key = exposure_code[usable] * factor_count + factor_code[usable]
            usable_weight = weight[usable]
        if signal_count * factor_count <= 4 * len(pair_key) + 1_000_000:
            summed = np.bincount(pair_key, weights=usable_weight, minlength=signal_count * factor_count)
            pairs = np.flatnonzero(summed > 0)
            pair_weight = summed[pairs]
        else:
            pair_code, pairs = pd.factorize(pair_key)
            pair_weight = np.bincount(pair_code, weights=usable_weight, minlength=len(pairs))
        pair_signal, pair_factor = np.divmod(pairs, factor_count)
        signal_weight = np.bincount(pair_signal, weights=pair_weight, minlength=signal_count)
        known = trip_code >= 0
        known_code, known_pnl = (trip_code, pnl) if known.all() else (trip_code[known], pnl[known])
        signal_pnl = np.bincount(known_code, weights=known_pnl, minlength=signal_count)
        signal_trips = np.bincount(known_code, minlength=signal_count)
        factor_pnl = np.bincount(pair_factor, minlength=factor_count,
                                 weights=signal_pnl[pair_signal] * pair_weight / signal_weight[pair_signal])
        factor_trades = np.bincount(pair_factor, weights=signal_trips[pair_signal], minlength=factor_count)
        attributed = known & (signal_weight[np.maximum(trip_code, 0)] > 0)
        names = [str(f) for f in factor_uniques]
        rank = np.argsort(np.array(names, dtype=object), kind="stable")
        return bucket_table(
            "factor", [names[i] for i in rank] + [UNATTRIBUTED],
            np.concatenate((factor_pnl[rank], [pnl[~attributed].sum()])),
            np.concatenate((np.rint(factor_trades[rank]).astype(np.int64), [int((~attributed).sum())])),
            total,
        )

    def by_instrument(self, trips: pd.DataFrame) -> pd.DataFrame:
        """PnL by symbol, symbols sorted; a trip without symbol goes to "(none)"."""
        return self._by_text(trips, "symbol", NONE_LABEL)

    def by_strategy(self, trips: pd.DataFrame) -> pd.DataFrame:
        """PnL by strategy_id, sorted; trips with no strategy_id go to "(none)" (listed last)."""
        return self._by_text(trips, "strategy_id", NONE_LABEL)

    def by_holding_horizon(self, trips: pd.DataFrame) -> pd.DataFrame:
        """PnL by holding time (holding_seconds = exit_at - entry_at, seconds).

        Bucket i holds edges[i-1] <= holding_seconds < edges[i]; every bucket is listed in order,
        also with 0 trades.
        """
        pnl = self._pnl(trips)
        holding = _column(trips, "holding_seconds")
        holding = np.array([], dtype="float64") if holding is None else holding.astype("float64")
        bucket = np.searchsorted(np.asarray(self.horizon_edges_seconds), holding, side="right")
        return self._table("holding_horizon", self.horizon_labels, bucket, pnl)

    def by_time_of_day(self, trips: pd.DataFrame) -> pd.DataFrame:
        """PnL by local clock time of entry_at (in ``timezone``), buckets of ``time_of_day_minutes``
        named by their start "HH:MM", all listed in order."""
        return self._time_of_day(self._pnl(trips), self._local_wall_ns(trips))

    def by_weekday(self, trips: pd.DataFrame) -> pd.DataFrame:
        """PnL by local weekday of entry_at (in ``timezone``), "Monday" to "Sunday", all seven listed."""
        return self._weekday(self._pnl(trips), self._local_wall_ns(trips))

    def by_regime(self, trips: pd.DataFrame, regimes: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """PnL by market regime at entry: {"trend": table, "volatility": table, "risk": table}.

        ``regimes`` has columns occurred_at (UTC; the time from which the labels are valid),
        symbol, and text labels trend, volatility, risk (a missing label column counts as
        unknown). Each trip takes the labels of the latest row of its symbol with
        occurred_at <= entry_at (no look-ahead; among rows at the same time, the last in input
        order); none, or a missing label, gives "unknown". Buckets: the labels seen in
        ``regimes``, sorted, then "unknown" (always listed).
        """
        regimes = _checked_regimes(regimes)
        return self._regime_tables(self._pnl(trips), self._symbol_codes(trips), self._entry_ns(trips), regimes)

    def full_report(self, trips: pd.DataFrame, exposures: pd.DataFrame | None = None,
                    regimes: pd.DataFrame | None = None) -> dict:
        """Every attribution at once, with its reconciliation.

        Keys: total_pnl (sum of trips.pnl, currency), trades, timezone, factor_method (how factor
        PnL is allocated), by_factor, by_instrument, by_strategy, by_holding_horizon,
        by_time_of_day, by_weekday (tables), by_regime ({"trend", "volatility", "risk"} tables;
        {} when ``regimes`` is None) and reconciliation: {bucket name: sum(table pnl) - total_pnl}
        for every table, each of which should be below a cent in absolute value.
        """
        pnl = self._pnl(trips)
        total = float(pnl.sum())
        wall = self._local_wall_ns(trips)
        symbol_codes = self._symbol_codes(trips)  # shared by the instrument and the regime tables
        report = {
            "total_pnl": total,
            "trades": int(len(pnl)),
            "timezone": self.timezone,
            "factor_method": FACTOR_METHOD,
            "by_factor": self.by_factor(trips, exposures),
            "by_instrument": self._by_text(trips, "symbol", NONE_LABEL, symbol_codes),
            "by_strategy": self.by_strategy(trips),
            "by_holding_horizon": self.by_holding_horizon(trips),
            "by_time_of_day": self._time_of_day(pnl, wall),
            "by_weekday": self._weekday(pnl, wall),
            "by_regime": (self._regime_tables(pnl, symbol_codes, self._entry_ns(trips), _checked_regimes(regimes))
                          if regimes is not None else {}),
        }
        tables = [report[key] for key in ("by_factor", "by_instrument", "by_strategy", "by_holding_horizon",
                                          "by_time_of_day", "by_weekday")] + list(report["by_regime"].values())
        report["reconciliation"] = {table.columns[0]: float(table["pnl"].sum()) - total for table in tables}
        return report

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _pnl(trips: pd.DataFrame) -> np.ndarray:
        pnl = _column(trips, "pnl")
        return np.array([], dtype="float64") if pnl is None else pnl.astype("float64")

    @staticmethod
    def _table(dimension: str, labels: Sequence[str], bucket: np.ndarray, pnl: np.ndarray) -> pd.DataFrame:
        count = len(labels)
        return bucket_table(dimension, labels, np.bincount(bucket, weights=pnl, minlength=count),
                            np.bincount(bucket, minlength=count), float(pnl.sum()))

    def _by_text(self, trips: pd.DataFrame, column: str, missing_label: str,
                 factorized: tuple | None = None) -> pd.DataFrame:
        pnl = self._pnl(trips)
        bucket, labels = _text_buckets(factorized if factorized is not None else _factorized(trips, column),
                                       missing_label)
        return self._table(column, labels, bucket, pnl)

    @staticmethod
    def _symbol_codes(trips: pd.DataFrame) -> tuple:
        factorized = _factorized(trips, "symbol")
        return factorized if factorized is not None else pd.factorize(np.array([], dtype=object))

    @staticmethod
    def _entry_ns(trips: pd.DataFrame) -> np.ndarray:
        entry_ns = _column(trips, "entry_at")
        return np.array([], dtype=np.int64) if entry_ns is None else nanoseconds(entry_ns)

    def _regime_tables(self, pnl: np.ndarray, symbols: tuple, entry_ns: np.ndarray,
                       regimes: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """by_regime from the trips' pnl, ``pd.factorize`` of their symbols and entry times."""
        symbol_code, symbol_uniques = symbols
        regime_ns = nanoseconds(regimes["occurred_at"])
        # Regime rows of symbols never traded cannot match: they get -1 and are left out.
        regime_code = _indexer(symbol_uniques, regimes["symbol"])
        regime_row = np.flatnonzero((regime_ns != np.iinfo(np.int64).min) & (regime_code >= 0))
        match = _latest_at_or_before(regime_code[regime_row], regime_ns[regime_row], symbol_code, entry_ns,
                                     len(symbol_uniques))
        found_row = np.full(len(match), -1, dtype=np.int64)
        found_row[match >= 0] = regime_row[match[match >= 0]]
        tables = {}
        for dimension in REGIME_DIMENSIONS:
            if dimension in regimes.columns:
                label_code, names = _sorted_codes(None, pd.factorize(regimes[dimension]))
            else:
                label_code, names = _sorted_codes(np.full(len(regimes), None, dtype=object))
            if UNKNOWN not in names:
                names.append(UNKNOWN)
            unknown = names.index(UNKNOWN)
            # One more entry, "unknown", read by the trips without a regime row (found_row -1).
            label_code = np.append(np.where(label_code >= 0, label_code, unknown), unknown)
            bucket = label_code[found_row]
            tables[dimension] = self._table(dimension, names, bucket, pnl)
        return tables

    def _local_wall_ns(self, trips: pd.DataFrame) -> np.ndarray:
        """entry_at as local wall-clock nanoseconds in ``timezone`` (one vectorised tz_convert)."""
        entry_ns = _column(trips, "entry_at")
        if entry_ns is None or len(entry_ns) == 0:
            return np.array([], dtype=np.int64)
        utc = pd.DatetimeIndex(nanoseconds(entry_ns).view("M8[ns]")).tz_localize("UTC")
        return utc.tz_convert(self.timezone).tz_localize(None).as_unit("ns").asi8

    def _time_of_day(self, pnl: np.ndarray, wall_ns: np.ndarray) -> pd.DataFrame:
        minute_of_day = (wall_ns // _NANOSECONDS_PER_MINUTE) % _MINUTES_PER_DAY
        return self._table("time_of_day", self.time_of_day_labels, minute_of_day // self.time_of_day_minutes, pnl)

    def _weekday(self, pnl: np.ndarray, wall_ns: np.ndarray) -> pd.DataFrame:
        # 1970-01-01 was a Thursday (Monday = 0, so Thursday = 3).
        weekday = (wall_ns // _NANOSECONDS_PER_DAY + 3) % 7
        return self._table("weekday", WEEKDAYS, weekday, pnl)


def _indexer(uniques, values: pd.Series) -> np.ndarray:
    """The position of each value among ``uniques`` (distinct values), -1 when absent or missing."""
    wanted, known = arrow_text(values), arrow_text(pd.Series(uniques)) if len(uniques) else None
    if wanted is not None and known is not None and wanted.type == known.type:
        return pc.index_in(wanted, value_set=known).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return pd.Index(uniques).get_indexer(values.to_numpy(dtype=object))


def _factor_names(exposures: pd.DataFrame | None) -> list[str]:
    if exposures is None or len(exposures) == 0:
        return []
    return sorted(str(f) for f in pd.unique(exposures["factor"].dropna()))


def _latest_at_or_before(regime_code: np.ndarray, regime_ns: np.ndarray, query_code: np.ndarray,
                         query_ns: np.ndarray, code_count: int) -> np.ndarray:
    """For each query (symbol code, time), the index of the latest regime row of that symbol code
    with time <= the query time (the last in input order among equal times), or -1.

    Rows are keyed by one int64, symbol code * span + time offset, sorted once; a query is one
    searchsorted. When that key would overflow, times are replaced by their dense rank first.
    """
    if len(query_code) == 0 or len(regime_code) == 0:
        return np.full(len(query_code), -1, dtype=np.int64)
    regime_code, query_code = regime_code.astype(np.int64), query_code.astype(np.int64)
    all_ns = np.concatenate((regime_ns, query_ns))
    low, high = int(all_ns.min()), int(all_ns.max())
    if (high - low + 1) * (code_count + 1) < 2**62:
        regime_time, query_time, span = regime_ns - low, query_ns - low, high - low + 1
    else:
        ranks = np.unique(all_ns, return_inverse=True)[1].astype(np.int64)
        regime_time, query_time, span = ranks[: len(regime_ns)], ranks[len(regime_ns):], int(ranks.max()) + 1
    regime_key = regime_code * span + regime_time
    order = np.argsort(regime_key, kind="stable")
    # searchsorted is much faster on (nearly) sorted queries. Trips come in exit order, so their
    # entry times are nearly sorted within a symbol: grouping the queries by symbol code (a radix
    # sort of small integers) is enough, and cheaper than sorting the keys.
    query_key = query_code * span + query_time
    if code_count < 65535:
        query_order = np.argsort((query_code + 1).astype(np.uint16), kind="stable")
    else:
        query_order = np.argsort(query_key)
    position = np.empty(len(query_key), dtype=np.int64)
    position[query_order] = np.searchsorted(regime_key[order], query_key[query_order], side="right")
    position -= 1
    candidate = order[np.maximum(position, 0)]
    found = (position >= 0) & (query_code >= 0) & (regime_code[candidate] == query_code)
    return np.where(found, candidate, -1)


def _checked_regimes(regimes: pd.DataFrame) -> pd.DataFrame:
    for name in ("occurred_at", "symbol"):
        if name not in regimes.columns:
            raise ValueError(
                f"regimes: missing column {name!r}; the regimes frame needs occurred_at (UTC time from which "
                f"the labels hold), symbol, and text labels trend, volatility, risk"
            )
    return regimes


def _checked_timezone(timezone: str) -> str:
    accepted = "an IANA time zone name such as 'UTC', 'Europe/London' or 'America/New_York'"
    if not isinstance(timezone, str) or not timezone:
        raise ValueError(f"timezone must be {accepted}; got {timezone!r}")
    try:
        ZoneInfo(timezone)
        pd.Timestamp(0, tz="UTC").tz_convert(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError, KeyError, OSError) as error:
        raise ValueError(f"unknown timezone {timezone!r} ({error}); accepted: {accepted}") from None
    return timezone


def _checked_edges(edges: Sequence[float]) -> tuple[float, ...]:
    accepted = "a non-empty increasing sequence of positive, finite numbers of seconds such as (60, 300, 3600)"
    try:
        values = np.asarray(list(edges), dtype="float64")
    except (TypeError, ValueError):
        raise ValueError(f"horizon_edges_seconds must be {accepted}; got {edges!r}") from None
    if values.ndim != 1 or len(values) == 0 or not np.all(np.isfinite(values)) or np.any(values <= 0) \
            or np.any(np.diff(values) <= 0):
        raise ValueError(f"horizon_edges_seconds must be {accepted}; got {edges!r}")
    return tuple(int(v) if float(v).is_integer() else float(v) for v in values)
