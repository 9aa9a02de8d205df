"""The post-trade analytics report: every analysis over one period, in one object.

``build_report(data, config)`` prepares each input frame (``schema.prepare``: bad rows are left
out and listed under ``input_problems``, the good ones kept), matches round trips, and runs the
performance statistics, trade statistics, PnL attribution, slippage, execution quality, regimes
and signal quality. ``AnalyticsReport`` renders as JSON-safe dicts, Markdown or CSV.

Returns for the performance statistics, in order of preference:
1. account equity (``account`` events): simple returns between consecutive equity reports,
   compounded to daily returns in the configured timezone (``to_daily_returns``);
2. otherwise realized PnL (round trips, net of fees) per local exit day divided by
   ``config.capital``; without capital the performance section says why it is empty.
``periods_per_year`` is the caller's statement of how many of those days make a year (252 for
exchange trading days, 365 for markets that never close); nothing infers it.
"""

from __future__ import annotations

import csv
import io
import math
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tradewatch.domain.analytics import performance
from tradewatch.domain.analytics.attribution import PnLAttributor
from tradewatch.domain.analytics.drawdowns import drawdown_series, top_drawdowns
from tradewatch.domain.analytics.execution import ExecutionAnalyzer, join_order_fills
from tradewatch.domain.analytics.order_keys import OrderKeys, order_keys
from tradewatch.domain.analytics.prices import PriceBook
from tradewatch.domain.analytics.regimes import RegimeAnalyzer
from tradewatch.domain.analytics.returns import equity_to_returns, pnl_to_returns, to_daily_returns
from tradewatch.domain.analytics.rolling import rolling_sharpe, rolling_volatility
from tradewatch.domain.analytics.round_trips import match_round_trips
from tradewatch.domain.analytics.schema import (
    ACCOUNT,
    FACTOR_EXPOSURES,
    FILLS,
    ORDERS,
    QUOTES,
    SIGNALS,
    RowProblem,
    prepare,
)
from tradewatch.domain.analytics.signal_quality import SignalQualityAnalyzer
from tradewatch.domain.analytics.slippage import SlippageAnalyzer
from tradewatch.domain.analytics.trade_statistics import trade_statistics
from tradewatch.domain.analytics.trading_data import TradingData
from tradewatch.domain.analytics.value_at_risk import value_at_risk_table


class AnalyticsConfig(BaseModel):
    """Every setting of the report; invalid values fail at load with the field named."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = Field("UTC", description="IANA zone for days, time of day and weekdays")
    periods_per_year: int = Field(252, gt=0, description="daily periods per year of the returns")
    risk_free: float = Field(0.0, description="risk-free return per period (per day)")
    cutoff: float = Field(0.05, gt=0, lt=1, description="tail probability of VaR and expected shortfall")
    capital: float | None = Field(None, gt=0, description="capital for PnL-based returns when there is no account equity")
    rolling_window: int = Field(20, ge=2, description="periods of the rolling Sharpe and volatility")
    top_drawdowns: int = Field(5, ge=1)
    horizon_edges_seconds: tuple[float, ...] = (60, 300, 3600, 86400, 432000)
    time_of_day_minutes: int = Field(60, gt=0, le=1440)
    slippage_end_horizon_seconds: float = Field(300.0, ge=0)
    regime_bar: str = "1D"
    trend_lookback_bars: int = Field(20, ge=2)
    volatility_lookback_bars: int = Field(20, ge=2)
    volatility_history_bars: int = Field(252, ge=2)
    benchmark_symbol: str | None = None
    risk_lookback_bars: int = Field(20, ge=1)
    signal_horizons_seconds: tuple[float, ...] = (60, 300, 900, 3600, 14400, 86400)
    quantity_decimals: int = Field(8, ge=0, le=12)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}; expected an IANA name such as 'UTC' or 'America/New_York'") from None
        return value


@dataclass
class AnalyticsReport:
    """Sections of plain values and DataFrames. The large per-row frames (round trips, open
    lots, per-order slippage, regime labels) are attributes for notebooks, not part of the
    rendered report."""

    period: dict[str, Any]
    config: AnalyticsConfig
    sections: dict[str, Any]
    input_problems: list[RowProblem] = field(default_factory=list)
    dropped_rows: dict[str, int] = field(default_factory=dict)
    round_trips: pd.DataFrame | None = None
    open_lots: pd.DataFrame | None = None
    per_order: pd.DataFrame | None = None
    regime_labels: pd.DataFrame | None = None
    daily_returns: pd.Series | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: DataFrames become lists of records, times ISO 8601, NaN and infinities null."""
        return _json_safe({
            "period": self.period,
            "config": self.config.model_dump(mode="json"),
            "input": {"dropped_rows": self.dropped_rows, "problems": [p.to_dict() for p in self.input_problems]},
            **self.sections,
        })

    def to_markdown(self) -> str:
        return markdown_from_dict(self.to_dict())

    def to_csv(self) -> str:
        """Long format, one value per line: section, table, row, column, value."""
        return csv_from_dict(self.to_dict())


def markdown_from_dict(body: dict[str, Any]) -> str:
    """Markdown of a report's ``to_dict()`` (also of one read back from the reports table)."""
    period = body.get("period", {})
    lines = [f"# Post-trade analytics, {period.get('start')} to {period.get('end')} ({period.get('timezone')})", ""]
    dropped = body.get("input", {}).get("dropped_rows", {})
    if any(dropped.values()):
        lines += ["## Input rows left out", ""]
        lines += [f"- {name}: {count}" for name, count in dropped.items() if count]
        problems = body["input"].get("problems", [])
        lines += [f"- {p['frame']} row {p['row']}, column {p['column']}: {p['problem']}" for p in problems[:20]] + [""]
    for name, section in body.items():
        if name in ("period", "config", "input"):
            continue
        lines += [f"## {_title(name)}", ""]
        lines += _markdown_section(section, level=3)
    return "\n".join(lines).rstrip() + "\n"


def csv_from_dict(body: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "table", "row", "column", "value"])
    for name, section in body.items():
        _csv_rows(writer, name, "", section)
    return buffer.getvalue()


def rendered_from_dict(body: dict[str, Any], fmt: str) -> str:
    return markdown_from_dict(body) if fmt == "markdown" else csv_from_dict(body)


SECTIONS = ("performance", "trades", "attribution", "slippage", "execution", "regimes", "signals")


def build_report(
    data: TradingData,
    config: AnalyticsConfig | None = None,
    *,
    start: datetime | pd.Timestamp | None = None,
    end: datetime | pd.Timestamp | None = None,
    regime_labels: pd.DataFrame | None = None,
    include: tuple[str, ...] = SECTIONS,
    threads: int = 2,
) -> AnalyticsReport:
    """Every section in ``include`` over ``data``. ``regime_labels`` (RegimeAnalyzer.labels
    output) skips labelling the quotes again when the caller already has them.

    ``threads`` (1 or 2): with 2, the independent halves run side by side, the fills'
    validation beside the other frames' and the order sections (slippage, execution) beside
    the round-trip sections. Their heavy steps (pyarrow hashing, numpy sorts and gathers)
    release the GIL, so a second core takes about a third off the time; the results are the
    same either way.
    """
    config = config or AnalyticsConfig()
    unknown = sorted(set(include) - set(SECTIONS))
    if unknown:
        raise ValueError(f"unknown report section(s) {', '.join(unknown)}; accepted: {', '.join(SECTIONS)}")
    if threads not in (1, 2):
        raise ValueError(f"threads must be 1 or 2, got {threads!r}")
    with ThreadPoolExecutor(max_workers=1) if threads == 2 else _InlineExecutor() as pool:
        preparing_fills = pool.submit(prepare, data.fills, FILLS)
        prepared = {"quotes": prepare(data.quotes, QUOTES)}
        pricing = pool.submit(PriceBook, prepared["quotes"].frame)
        # The order ids are hashed once, here, for the duplicate check of the orders, the round
        # trips and the join of fills to orders; from the frames as given when validation cannot
        # change them, so that it runs beside the fills' validation.
        raw_keys = _raw_order_keys(data.orders, data.fills)
        prepared["orders"] = prepare(data.orders, ORDERS, key_codes=None if raw_keys is None else raw_keys.orders)
        for name, spec in (("signals", SIGNALS), ("factor_exposures", FACTOR_EXPOSURES), ("account", ACCOUNT)):
            prepared[name] = prepare(getattr(data, name), spec)
        prepared["fills"] = preparing_fills.result()
        frames = {name: prepared[name].frame for name in _FRAME_ORDER}
        if raw_keys is None:
            keys = order_keys(frames["orders"], frames["fills"])
        else:
            keys = raw_keys.subset(prepared["orders"].kept, prepared["fills"].kept)
        prices = pricing.result()

        regimes = RegimeAnalyzer(
            bar=config.regime_bar, trend_lookback_bars=config.trend_lookback_bars,
            volatility_lookback_bars=config.volatility_lookback_bars,
            volatility_history_bars=config.volatility_history_bars,
            benchmark_symbol=config.benchmark_symbol, risk_lookback_bars=config.risk_lookback_bars,
        )
        labels = regimes.labels(prices) if regime_labels is None else regime_labels
        order_sections = pool.submit(_order_sections, frames, prices, labels, config, include, keys)
        matched = match_round_trips(frames["fills"], quantity_decimals=config.quantity_decimals, keys=keys)
        sections = _trip_sections(frames, matched, prices, labels, regimes, config, include)
        order_results, per_order = order_sections.result()
    daily = sections.pop("_daily")
    sections.update(order_results)
    sections = {"summary": sections["summary"], **{name: sections[name] for name in SECTIONS if name in sections}}
    period = {"start": _iso(start), "end": _iso(end), "timezone": config.timezone}
    return AnalyticsReport(
        period=period, config=config, sections=sections,
        input_problems=[problem for name in _FRAME_ORDER for problem in prepared[name].problems],
        dropped_rows={name: len(getattr(data, name)) - len(frames[name]) for name in _FRAME_ORDER},
        round_trips=matched.trips, open_lots=matched.open_lots, per_order=per_order, regime_labels=labels,
        daily_returns=daily,
    )


_FRAME_ORDER = ("fills", "orders", "signals", "factor_exposures", "quotes", "account")


def _raw_order_keys(orders, fills) -> OrderKeys | None:
    """``order_keys`` of the frames as given, when their validation cannot change the ids: both
    have an order_id column and every fill has one (``prepare`` gives a fill without one its
    fill_id). Validation only drops rows then, and the codes of the kept rows are the keys."""
    if not (isinstance(orders, pd.DataFrame) and isinstance(fills, pd.DataFrame)):
        return None
    if "order_id" not in orders.columns or "order_id" not in fills.columns:
        return None
    keys = order_keys(orders, fills)
    return None if bool((keys.fills < 0).any()) else keys


class _InlineExecutor:
    """``submit`` runs the call at once on this thread: the one-thread form of the report."""

    def __enter__(self) -> _InlineExecutor:
        return self

    def __exit__(self, *exc_info) -> None:
        return None

    def submit(self, fn, /, *args) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as error:  # re-raised by result(), as from a thread
            future.set_exception(error)
        return future


def _trip_sections(frames, matched, prices, labels, regimes: RegimeAnalyzer, config: AnalyticsConfig,
                   include) -> dict[str, Any]:
    """The summary and every section read from the round trips (and signals)."""
    trips = matched.trips
    daily, returns_source = _daily_returns(frames["account"], trips, config)
    sections: dict[str, Any] = {
        "summary": {
            "fills": len(frames["fills"]), "orders": len(frames["orders"]), "signals": len(frames["signals"]),
            "round_trips": len(trips), "open_lots": len(matched.open_lots),
            "realized_pnl": float(trips["pnl"].sum()) if len(trips) else 0.0,
            "fees": float(frames["fills"]["fee"].sum()) if len(frames["fills"]) else 0.0,
            "returns_source": returns_source,
        },
        "_daily": daily,
    }
    if "performance" in include:
        sections["performance"] = _performance(daily, config, returns_source)
    if "trades" in include:
        sections["trades"] = trade_statistics(trips)
    if "attribution" in include:
        sections["attribution"] = PnLAttributor(
            timezone=config.timezone, horizon_edges_seconds=config.horizon_edges_seconds,
            time_of_day_minutes=config.time_of_day_minutes,
        ).full_report(trips, frames["factor_exposures"], labels)
    if "regimes" in include:
        sections["regimes"] = regimes.performance_by_regime(trips, labels)
    if "signals" in include:
        sections["signals"] = SignalQualityAnalyzer(horizons_seconds=config.signal_horizons_seconds).report(
            frames["signals"], prices
        )
    return sections


def _order_sections(frames, prices, labels, config: AnalyticsConfig, include,
                    keys: OrderKeys) -> tuple[dict[str, Any], pd.DataFrame | None]:
    sections: dict[str, Any] = {}
    per_order = None
    if "slippage" not in include and "execution" not in include:
        return sections, per_order
    # Both read the same join of fills to their orders: done once.
    joined = join_order_fills(frames["orders"], frames["fills"], keys=keys)
    if "slippage" in include:
        slippage = SlippageAnalyzer(end_horizon_seconds=config.slippage_end_horizon_seconds).report(
            frames["orders"], frames["fills"], prices, labels, order_fills=joined
        )
        per_order = slippage.pop("per_order", None)
        sections["slippage"] = slippage
    if "execution" in include:
        sections["execution"] = ExecutionAnalyzer().report(frames["orders"], frames["fills"], order_fills=joined)
    return sections, per_order


def _daily_returns(account: pd.DataFrame, trips: pd.DataFrame, config: AnalyticsConfig) -> tuple[pd.Series, str]:
    empty = pd.Series(dtype="float64")
    if len(account) >= 2:
        equity = account.sort_values("occurred_at", kind="stable").set_index("occurred_at")["equity"]
        return to_daily_returns(equity_to_returns(equity), timezone=config.timezone), "account equity"
    if len(trips) and config.capital:
        # Local calendar day of each exit, as naive wall-clock midnights (a fast groupby key).
        local_day = pd.DatetimeIndex(trips["exit_at"]).tz_convert(config.timezone).tz_localize(None).floor("D")
        pnl = pd.Series(trips["pnl"].to_numpy(), index=local_day).groupby(level=0).sum()
        pnl.index = pnl.index.tz_localize(config.timezone, ambiguous=True, nonexistent="shift_forward")
        pnl.index.name = "day"
        return pnl_to_returns(pnl, config.capital), f"realized pnl / capital {config.capital:g}"
    if len(trips):
        return empty, "none: no account equity events and no capital configured (set capital)"
    return empty, "none: no account equity events and no round trips"


def _performance(daily: pd.Series, config: AnalyticsConfig, source: str) -> dict[str, Any]:
    kw = {"periods_per_year": config.periods_per_year}
    statistics = {
        "sharpe_ratio": performance.sharpe_ratio(daily, risk_free=config.risk_free, **kw),
        "sortino_ratio": performance.sortino_ratio(daily, required_return=config.risk_free, **kw),
        "annual_return": performance.annual_return(daily, **kw),
        "annual_volatility": performance.annual_volatility(daily, **kw),
        "max_drawdown": performance.max_drawdown(daily),
        "calmar_ratio": performance.calmar_ratio(daily, **kw),
        "value_at_risk": performance.value_at_risk(daily, cutoff=config.cutoff),
        "expected_shortfall": performance.expected_shortfall(daily, cutoff=config.cutoff),
        "omega_ratio": performance.omega_ratio(daily, risk_free=config.risk_free, **kw),
        "tail_ratio": performance.tail_ratio(daily),
        "downside_risk": performance.downside_risk(daily, required_return=config.risk_free, **kw),
    }
    window = config.rolling_window
    series = pd.DataFrame({
        "return": daily,
        "drawdown": drawdown_series(daily) if len(daily) else pd.Series(dtype="float64"),
        f"rolling_sharpe_{window}": rolling_sharpe(daily, window, risk_free=config.risk_free, **kw),
        f"rolling_volatility_{window}": rolling_volatility(daily, window, **kw),
    })
    series.index.name = "day"
    return {
        "returns": source,
        "periods": int(daily.notna().sum()),
        "periods_per_year": config.periods_per_year,
        "statistics": statistics,
        "value_at_risk": value_at_risk_table(daily, cutoff=config.cutoff),
        "top_drawdowns": top_drawdowns(daily, top=config.top_drawdowns),
        "daily": series.reset_index(),
    }


# ------------------------------------------------------------------ rendering


def _iso(value) -> str | None:
    if value is None:
        return None
    return pd.Timestamp(value).isoformat()


def _json_safe(value: Any) -> Any:
    if isinstance(value, pd.DataFrame):
        return [_json_safe(record) for record in value.to_dict(orient="records")]
    if isinstance(value, pd.Series):
        return _json_safe(value.to_dict())
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, pd.Timestamp) else k.isoformat(): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, pd.Timestamp | datetime):
        return None if pd.isna(value) else value.isoformat()
    if value is pd.NaT or (not isinstance(value, str | bytes | bool | int) and value is not None and pd.isna(value)):
        return None
    return value


def _title(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _format(value: Any) -> str:
    # Undefined numbers (NaN: too few periods, a zero denominator) say so rather than stay blank.
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.2f}"
    return str(value)


def _markdown_table(records: list[dict]) -> list[str]:
    if not records:
        return ["(none)", ""]
    columns = list(records[0])
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    lines += ["| " + " | ".join(_format(r.get(c)) for c in columns) + " |" for r in records]
    return lines + [""]


def _markdown_section(section: Any, level: int) -> list[str]:
    section = _json_safe(section)
    if isinstance(section, list):
        return _markdown_table(section) if all(isinstance(r, dict) for r in section) else [", ".join(map(_format, section)), ""]
    if not isinstance(section, dict):
        return [_format(section), ""]
    lines: list[str] = []
    scalars = {k: v for k, v in section.items() if not isinstance(v, dict | list)}
    if scalars:
        lines += [f"- {_title(k)}: {_format(v)}" for k, v in scalars.items()] + [""]
    for key, value in section.items():
        if isinstance(value, dict | list):
            lines += [f"{'#' * min(level, 6)} {_title(key)}", ""]
            lines += _markdown_section(value, level + 1)
    return lines


def _csv_rows(writer, section: str, table: str, value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list):
                _csv_rows(writer, section, f"{table}.{key}" if table else key, item)
            else:
                writer.writerow([section, table, "", key, "" if item is None else item])
    elif isinstance(value, list):
        for position, item in enumerate(value):
            if isinstance(item, dict):
                for column, cell in item.items():
                    writer.writerow([section, table, position, column, "" if cell is None else cell])
            else:
                writer.writerow([section, table, position, "", "" if item is None else item])
    else:
        writer.writerow([section, table, "", "", "" if value is None else value])


def parse_time(text: str, *, timezone: str = "UTC", what: str = "time") -> pd.Timestamp:
    """A period bound from the command line or a task: RFC 3339 (``2026-01-05T09:30:00Z``) or a
    date (``2026-01-05``, midnight in ``timezone``). Times without an offset are in ``timezone``."""
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise ValueError(f"{what} {text!r} is not a time; expected RFC 3339 such as 2026-01-05T09:30:00Z or a date such as 2026-01-05") from None
    if pd.isna(stamp):
        raise ValueError(f"{what} is empty; expected RFC 3339 or a date")
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(timezone)
    return stamp.tz_convert("UTC")
