"""`tradewatch analytics ...`: the post-trade analytics report, for quants and risk staff."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

analytics_app = typer.Typer(help="Post-trade analytics: performance, attribution, slippage, regimes, signals.",
                            no_args_is_help=True)
console = Console(stderr=True)
FORMATS = ("json", "markdown", "csv")


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


def _parameters(timezone: Optional[str], capital: Optional[float], periods_per_year: Optional[int],
                benchmark: Optional[str]) -> dict:
    given = {"timezone": timezone, "capital": capital, "periods_per_year": periods_per_year, "benchmark_symbol": benchmark}
    return {k: v for k, v in given.items() if v is not None}


def _config(parameters: dict):
    from pydantic import ValidationError

    from tradewatch.domain.analytics.report import AnalyticsConfig
    from tradewatch.tasks.settings import get_settings

    try:
        return AnalyticsConfig(**{"timezone": get_settings().timezone, **parameters})
    except ValidationError as exc:
        _fail("; ".join(f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg'].removeprefix('Value error, ')}"
                        for e in exc.errors()))


def _period(start: str, end: str, timezone: str):
    from tradewatch.domain.analytics.report import parse_time

    try:
        start_at, end_at = parse_time(start, timezone=timezone, what="--from"), parse_time(end, timezone=timezone, what="--to")
    except ValueError as exc:
        _fail(str(exc))
    if end_at <= start_at:
        _fail(f"--to {end} is not after --from {start}")
    return start_at, end_at


def _emit(text: str, output: Optional[Path]) -> None:
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        output.write_text(text)
        console.print(f"report written to {output}")


def _render(body: dict, report, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(body, indent=2)
    return report.to_markdown() if fmt == "markdown" else report.to_csv()


@analytics_app.command("report")
def report(
    start: str = typer.Option(..., "--from", help="Period start: RFC 3339 or a date (midnight in --timezone)."),
    end: str = typer.Option(..., "--to", help="Period end (exclusive)."),
    fmt: str = typer.Option("markdown", "--format", "-f", help="json, markdown or csv."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
    timezone: Optional[str] = typer.Option(None, help="IANA timezone for days, time of day, weekdays (default: TRADEWATCH_TIMEZONE)."),
    capital: Optional[float] = typer.Option(None, help="Capital for PnL-based returns when the trail has no account equity."),
    periods_per_year: Optional[int] = typer.Option(None, help="Daily periods per year (252 trading days, 365 for 24/7 markets)."),
    benchmark: Optional[str] = typer.Option(None, help="Instrument whose trend defines risk-on / risk-off."),
) -> None:
    """Compute the report for a period from the audit trail, here and now."""
    from tradewatch.domain.analytics.report import build_report
    from tradewatch.storage.trading_data import load_trading_data
    from tradewatch.tasks import wiring
    from tradewatch.tasks.analytics import QUOTES_LOOKBACK_NS

    if fmt not in FORMATS:
        _fail(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    config = _config(_parameters(timezone, capital, periods_per_year, benchmark))
    start_at, end_at = _period(start, end, config.timezone)
    try:
        data = load_trading_data(wiring.store(), start_at.value, end_at.value, quotes_lookback_ns=QUOTES_LOOKBACK_NS)
    except Exception as exc:  # noqa: BLE001 - shown to the operator
        _fail(f"could not read the audit trail: {exc}")
    result = build_report(data, config, start=start_at, end=end_at)
    for problem in result.input_problems[:10]:
        console.print(f"[yellow]warning:[/] {problem}")
    _emit(_render(result.to_dict(), result, fmt), output)


@analytics_app.command("request")
def request(
    start: str = typer.Option(..., "--from", help="Period start: RFC 3339 or a date."),
    end: str = typer.Option(..., "--to", help="Period end (exclusive)."),
    timezone: Optional[str] = typer.Option(None, help="IANA timezone (default: TRADEWATCH_TIMEZONE)."),
    capital: Optional[float] = typer.Option(None, help="Capital for PnL-based returns."),
    periods_per_year: Optional[int] = typer.Option(None, help="Daily periods per year."),
    benchmark: Optional[str] = typer.Option(None, help="Risk-on / risk-off benchmark instrument."),
) -> None:
    """Queue the report on the reports workers (task analytics.report); prints its id."""
    from tradewatch.tasks.analytics import request_report

    parameters = _parameters(timezone, capital, periods_per_year, benchmark)
    config = _config(parameters)
    _period(start, end, config.timezone)
    print(request_report(start, end, parameters))


@analytics_app.command("show")
def show(
    report_id: str = typer.Argument(..., help="The id `tradewatch analytics request` printed."),
    fmt: str = typer.Option("markdown", "--format", "-f", help="json, markdown or csv."),
    output: Optional[Path] = typer.Option(None, "--output", "-o"),
) -> None:
    """Print a report the workers produced."""
    from tradewatch.domain.analytics.report import rendered_from_dict
    from tradewatch.storage.reports import ReportStore
    from tradewatch.tasks import wiring

    if fmt not in FORMATS:
        _fail(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    stored = ReportStore(wiring.engine()).get(report_id)
    if stored is None:
        _fail(f"no report {report_id!r} yet (the reports workers may still be computing it; `tradewatch analytics list` shows those done)")
    _emit(json.dumps(stored.body, indent=2) if fmt == "json" else rendered_from_dict(stored.body, fmt), output)


@analytics_app.command("list")
def list_reports(limit: int = typer.Option(20, help="How many of the most recent.")) -> None:
    """Reports the workers produced, newest first."""
    from rich.table import Table

    from tradewatch.storage.reports import ReportStore
    from tradewatch.tasks import wiring

    table = Table("report id", "period start", "period end", "created at", "seconds", "round trips", "realized pnl")
    for stored in ReportStore(wiring.engine()).recent(limit):
        summary = stored.body.get("summary", {})
        table.add_row(stored.report_id, stored.body["period"]["start"], stored.body["period"]["end"],
                      stored.created_at.isoformat(timespec="seconds"), f"{stored.seconds:.2f}",
                      str(summary.get("round_trips", "")), f"{summary.get('realized_pnl', 0):,.2f}")
    Console().print(table)
