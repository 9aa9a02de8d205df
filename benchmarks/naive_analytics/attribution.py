"""The straightforward baseline of ``PnLAttributor.full_report``: one Python loop over the trips
per dimension, dicts of running sums, per-trip time zone conversion with ``zoneinfo``.

Same tables (bucket names, order, pnl, trades, share_of_pnl) as
``tradewatch.domain.analytics.attribution``; DataFrames are built only at the very end.
"""

from __future__ import annotations

import bisect
import math
from datetime import datetime, timedelta, timezone as dt_timezone
from zoneinfo import ZoneInfo

import pandas as pd

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_EPOCH = datetime(1970, 1, 1, tzinfo=dt_timezone.utc)
_UNITS = ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second"))


def _missing(value) -> bool:
    return value is None or value != value


def _parts(seconds):
    for size, unit in _UNITS:
        if seconds >= size and seconds % size == 0:
            return str(int(seconds // size)), unit
    return f"{seconds:g}", "second"


def _words(seconds) -> str:
    count, unit = _parts(seconds)
    return f"{count} {unit}" + ("" if count == "1" else "s")


def naive_horizon_labels(edges) -> list[str]:
    labels = ["under " + _words(edges[0])]
    for i in range(1, len(edges)):
        low, high = _parts(edges[i - 1]), _parts(edges[i])
        labels.append(f"{low[0]} to {_words(edges[i])}" if low[1] == high[1] else
                      f"{_words(edges[i - 1])} to {_words(edges[i])}")
    labels.append(_words(edges[-1]) + " or more")
    return labels


def _table(dimension: str, labels: list[str], pnl: dict, trades: dict, total: float) -> pd.DataFrame:
    rows_pnl = [pnl.get(label, 0.0) for label in labels]
    return pd.DataFrame({
        dimension: pd.array(labels, dtype="str"),
        "pnl": pd.Series(rows_pnl, dtype="float64").to_numpy(),
        "trades": pd.Series([trades.get(label, 0) for label in labels], dtype="int64").to_numpy(),
        "share_of_pnl": pd.Series([p / total if total != 0 else math.nan for p in rows_pnl], dtype="float64").to_numpy(),
    })


def _add(pnl: dict, trades: dict, label, amount: float, count: int = 1) -> None:
    pnl[label] = pnl.get(label, 0.0) + amount
    trades[label] = trades.get(label, 0) + count


def naive_full_report(trips: pd.DataFrame, exposures: pd.DataFrame | None = None, regimes: pd.DataFrame | None = None,
                      *, timezone: str = "UTC", horizon_edges_seconds=(60, 300, 3600, 86400, 432000),
                      time_of_day_minutes: int = 60) -> dict:
    """The same report as PnLAttributor(timezone, horizon_edges_seconds, time_of_day_minutes).full_report."""
    zone = ZoneInfo(timezone)
    pnls = trips["pnl"].tolist() if "pnl" in trips.columns else []
    n = len(pnls)
    symbols = trips["symbol"].tolist() if n else []
    strategies = trips["strategy_id"].tolist() if n else []
    holdings = trips["holding_seconds"].tolist() if n else []
    entries = [t.value for t in trips["entry_at"].tolist()] if n else []
    signals = trips["opening_signal_id"].tolist() if n else []
    total = 0.0
    for pnl in pnls:
        total += pnl

    # Factors: signal -> {factor: summed |exposure|}.
    factor_weights: dict = {}
    factor_names: set = set()
    if exposures is not None:
        for signal, factor, exposure in zip(exposures["signal_id"].tolist(), exposures["factor"].tolist(),
                                            exposures["exposure"].tolist()):
            if _missing(factor):
                continue
            factor_names.add(str(factor))
            if _missing(signal) or _missing(exposure) or math.isinf(exposure) or exposure == 0:
                continue
            weights = factor_weights.setdefault(signal, {})
            weights[str(factor)] = weights.get(str(factor), 0.0) + abs(exposure)
    factor_pnl: dict = {}
    factor_trades: dict = {}
    for pnl, signal in zip(pnls, signals):
        weights = None if _missing(signal) else factor_weights.get(signal)
        weight_total = sum(weights.values()) if weights else 0.0
        if not weight_total > 0:
            _add(factor_pnl, factor_trades, "unattributed", pnl)
            continue
        for factor, weight in weights.items():
            _add(factor_pnl, factor_trades, factor, pnl * weight / weight_total)

    def by_text(values, dimension):
        sums: dict = {}
        counts: dict = {}
        for pnl, value in zip(pnls, values):
            _add(sums, counts, "(none)" if _missing(value) else str(value), pnl)
        labels = sorted(label for label in sums if label != "(none)")
        if "(none)" in sums:
            labels.append("(none)")
        return _table(dimension, labels, sums, counts, total)

    edges = list(horizon_edges_seconds)
    horizon = naive_horizon_labels(edges)
    horizon_pnl: dict = {}
    horizon_trades: dict = {}
    for pnl, seconds in zip(pnls, holdings):
        _add(horizon_pnl, horizon_trades, horizon[bisect.bisect_right(edges, seconds)], pnl)

    minute_labels = [f"{m // 60:02d}:{m % 60:02d}" for m in range(0, 1440, time_of_day_minutes)]
    clock_pnl: dict = {}
    clock_trades: dict = {}
    day_pnl: dict = {}
    day_trades: dict = {}
    for pnl, ns in zip(pnls, entries):
        local = (_EPOCH + timedelta(microseconds=ns // 1000)).astimezone(zone)
        minute = local.hour * 60 + local.minute
        _add(clock_pnl, clock_trades, minute_labels[minute // time_of_day_minutes], pnl)
        _add(day_pnl, day_trades, WEEKDAYS[local.weekday()], pnl)

    report = {
        "total_pnl": total,
        "trades": n,
        "timezone": timezone,
        "by_factor": _table("factor", sorted(factor_names) + ["unattributed"], factor_pnl, factor_trades, total),
        "by_instrument": by_text(symbols, "symbol"),
        "by_strategy": by_text(strategies, "strategy_id"),
        "by_holding_horizon": _table("holding_horizon", horizon, horizon_pnl, horizon_trades, total),
        "by_time_of_day": _table("time_of_day", minute_labels, clock_pnl, clock_trades, total),
        "by_weekday": _table("weekday", list(WEEKDAYS), day_pnl, day_trades, total),
        "by_regime": {},
    }

    if regimes is not None:
        history: dict = {}
        dimensions = ("trend", "volatility", "risk")
        columns = {d: (regimes[d].tolist() if d in regimes.columns else [None] * len(regimes)) for d in dimensions}
        times = pd.to_datetime(regimes["occurred_at"], utc=True).tolist()
        for row, (symbol, when) in enumerate(zip(regimes["symbol"].tolist(), times)):
            if _missing(symbol) or when is pd.NaT:
                continue
            history.setdefault(symbol, []).append((when.value, row))
        for events in history.values():
            events.sort()
        starts = {symbol: [event[0] for event in events] for symbol, events in history.items()}
        for dimension in dimensions:
            sums: dict = {}
            counts: dict = {}
            for pnl, symbol, ns in zip(pnls, symbols, entries):
                label = "unknown"
                events = history.get(symbol)
                if events:
                    index = bisect.bisect_right(starts[symbol], ns) - 1
                    if index >= 0:
                        value = columns[dimension][events[index][1]]
                        label = "unknown" if _missing(value) else str(value)
                _add(sums, counts, label, pnl)
            labels = sorted({str(v) for v in columns[dimension] if not _missing(v)})
            if "unknown" not in labels:
                labels.append("unknown")
            report["by_regime"][dimension] = _table(dimension, labels, sums, counts, total)

    tables = [report[key] for key in ("by_factor", "by_instrument", "by_strategy", "by_holding_horizon",
                                      "by_time_of_day", "by_weekday")] + list(report["by_regime"].values())
    reconciliation = {}
    for table in tables:
        summed = 0.0
        for pnl in table["pnl"].tolist():
            summed += pnl
        reconciliation[table.columns[0]] = summed - total
    report["reconciliation"] = reconciliation
    return report
