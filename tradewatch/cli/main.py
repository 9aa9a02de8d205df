"""The `tradewatch` command."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="tradewatch: audit trail, monitoring and governance for trading engines.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
audit_app = typer.Typer(help="Read the audit trail.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
from tradewatch.cli.alerting import alerts_app, silence_app  # noqa: E402
from tradewatch.cli.common import load_settings  # noqa: E402

app.add_typer(alerts_app, name="alerts")
app.add_typer(silence_app, name="silence")
from tradewatch.cli.analytics import analytics_app  # noqa: E402

app.add_typer(analytics_app, name="analytics")
from tradewatch.cli.detection import detect_app  # noqa: E402

app.add_typer(detect_app, name="detect")
console = Console()


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


def _settings():
    return load_settings(_fail)


# --------------------------------------------------------------------------- db


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Alembic revision to upgrade to.")) -> None:
    """Create or migrate the audit trail schema (run once before the workers)."""
    from tradewatch.storage.database import make_engine
    from tradewatch.storage.migrate import current_revision, upgrade

    settings = _settings()
    if settings.embedded:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.effective_database_url)
    try:
        upgrade(engine, revision)
        console.print(f"schema at revision [bold]{current_revision(engine)}[/] ({engine.url.render_as_string(hide_password=True)})")
    except Exception as exc:  # noqa: BLE001 - shown to the operator
        _fail(f"could not migrate {engine.url.render_as_string(hide_password=True)}: {exc}")
    finally:
        engine.dispose()


# ----------------------------------------------------------------------- worker


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(
    ctx: typer.Context,
    queues: str = typer.Option("audit", "--queues", "-Q", help="Comma-separated queues: audit, analysis, alerts, reports."),
    pool: str = typer.Option(
        None, "--pool", "-P",
        help="solo (default for -Q audit: one process, run one per core) or prefork (default otherwise).",
    ),
    concurrency: int = typer.Option(2, "--concurrency", "-c", help="Pool processes (prefork only)."),
) -> None:
    """Run a Celery worker (extra options are passed to `celery worker`)."""
    from tradewatch.tasks.app import QUEUES

    unknown = [q for q in queues.split(",") if q not in QUEUES]
    if unknown:
        _fail(f"unknown queue(s) {', '.join(unknown)}; accepted: {', '.join(QUEUES)}")
    # Ingest batches are CPU-bound and short: a solo worker runs them in the process that takes
    # them off Redis, without pickling each one to a pool child (see README, "Throughput").
    pool = pool or ("solo" if queues == "audit" else "prefork")
    if pool not in ("solo", "prefork"):
        _fail(f"--pool {pool!r}; accepted: solo, prefork")
    if _settings().embedded:
        _fail("no broker configured: set TRADEWATCH_BROKER_URL and TRADEWATCH_DATABASE_URL (embedded mode runs its worker inside `tradewatch simulate`)")
    args = [sys.executable, "-m", "celery", "-A", "tradewatch.tasks.app", "worker", "-Q", queues, "--pool", pool,
            *(["--concurrency", str(concurrency)] if pool == "prefork" else []), *ctx.args]
    os.execv(sys.executable, args)


@app.command()
def web(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 in a container)."),
    port: int = typer.Option(8000, help="Port to listen on."),
) -> None:
    """Run the HTTP service (uvicorn): the Alertmanager webhook, /metrics, /live."""
    import uvicorn

    if _settings().embedded:
        _fail("no broker configured: set TRADEWATCH_BROKER_URL and TRADEWATCH_DATABASE_URL (the webhook hands alerts to the router's workers)")
    uvicorn.run("tradewatch.web.service:build_app", factory=True, host=host, port=port, log_level="info",
                proxy_headers=True)


# ------------------------------------------------------------------------ audit


def _store():
    from tradewatch.tasks import wiring

    _settings()
    return wiring.store()


def _history_table(history) -> Table:
    from tradewatch.domain.events.describe import describe
    from tradewatch.domain.events.timestamps import format_rfc3339_ns

    days = sorted({format_rfc3339_ns(e.event.occurred_at)[:10] for e in history.events})
    table = Table(title=f"trade history of signal {history.signal_id} ({', '.join(days)}, UTC)", show_lines=False)
    table.add_column("time (ns)", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("source", no_wrap=True)
    table.add_column("what happened")
    for stored in history.events:
        event = stored.event
        table.add_row(format_rfc3339_ns(event.occurred_at)[11:29], event.event_type, event.source, describe(event))
    return table


@audit_app.command("history")
def audit_history(
    signal_id: str = typer.Argument(..., help="The signal whose chain to reconstruct."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Reconstruct one trade: signal, risk checks, LLM decisions, orders, fills, position updates."""
    import json

    from tradewatch.storage.store import UnknownSignal

    try:
        history = _store().reconstruct_trade_history(signal_id)
    except UnknownSignal as exc:
        _fail(str(exc))
    if as_json:
        print(json.dumps(history.to_dict(), indent=2))
    else:
        console.print(_history_table(history))


@audit_app.command("summary")
def audit_summary(hours: float = typer.Option(24.0, help="Period: the last N hours of event time.")) -> None:
    """Counts by type and strategy, rejected events, failed risk checks, circuit-breaker trips."""
    end_ns = time.time_ns()
    summary = _store().summary(end_ns - int(hours * 3600e9), end_ns)
    _print_summary(summary)


def _print_summary(summary) -> None:
    table = Table(title="events stored by type")
    table.add_column("type")
    table.add_column("events", justify="right")
    for name, count in sorted(summary.by_type.items(), key=lambda kv: -kv[1]):
        table.add_row(name, f"{count:,}")
    table.add_row("[bold]total[/]", f"[bold]{summary.events:,}[/]")
    console.print(table)
    strategies = ", ".join(f"{k}: {v:,}" for k, v in sorted(summary.by_strategy.items()))
    console.print(f"by strategy: {strategies}")
    console.print(
        f"failed risk checks: [bold]{summary.failed_risk_checks}[/]   circuit-breaker trips: [bold]{summary.circuit_breaker_trips}[/]   "
        f"rejected events: [bold]{summary.rejected_events}[/] {summary.rejected_by_code or ''}"
    )


@audit_app.command("rejected")
def audit_rejected(limit: int = typer.Option(20, help="How many of the most recent.")) -> None:
    """The most recent rejected events with the reason for each."""
    table = Table(title="rejected events (newest first)")
    for column in ("received at", "code", "position", "reason", "raw (start)"):
        table.add_column(column)
    for row in _store().rejected(limit):
        table.add_row(row["received_at"].isoformat(), row["code"], str(row["position"]), row["reason"], row["raw"][:60])
    console.print(table)


# --------------------------------------------------------------------- simulate


def _simulate(rate: float, duration: float, seed: int, speed: float | None, client, store=None) -> tuple[int, str | None]:
    """Emit `duration` seconds of simulated trading at `rate` events/s through `client`.

    speed None: as fast as possible; else simulated seconds per wall second (1 = real time).
    Returns (events emitted, a signal_id that led to fills, if any).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from tradewatch.domain.simulation import SimulationConfig, TradingSimulator

    # Faster than real time, the simulated minute ends now rather than in the future.
    start_at = time.time_ns() - (int(duration * 1e9) if speed is None else 0)
    simulator = TradingSimulator(SimulationConfig(events_per_second=rate, seed=seed), start_ns=start_at)
    start_ns = simulator.now_ns
    emitted, filled_signal, orders_to_signal = 0, None, {}
    wall_start = time.monotonic()
    columns = [TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[unit]}"),
               TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("simulated trading (seconds)", total=int(duration), unit="")
        emitted_task = progress.add_task("events emitted by the engine", total=None, unit="")
        stored_task = progress.add_task("events committed to the trail", total=None, unit="") if store else None
        tick_ns = 100_000_000  # 0.1 s of simulated time per step
        for step in range(1, int(duration * 10) + 1):
            if speed is not None:
                wait = wall_start + step * 0.1 / speed - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            for event in simulator.events_until(start_ns + step * tick_ns):
                client.emit(event)
                emitted += 1
                if filled_signal is None:
                    if event.event_type == "order" and event.signal_id:
                        orders_to_signal[event.order_id] = event.signal_id
                    elif event.event_type == "fill" and event.order_id in orders_to_signal:
                        filled_signal = orders_to_signal[event.order_id]
            if step % 10 == 0:
                progress.update(task, completed=step // 10)
                progress.update(emitted_task, completed=emitted)
                if store is not None:
                    progress.update(stored_task, completed=store.count())
        progress.update(emitted_task, total=emitted, completed=emitted)
        if store is not None:
            client.flush()
            progress.update(stored_task, total=emitted)
            deadline = time.monotonic() + 300
            while (count := store.count()) < emitted and time.monotonic() < deadline:
                progress.update(stored_task, completed=count)
                time.sleep(0.1)
            progress.update(stored_task, completed=store.count())
    return emitted, filled_signal


@app.command()
def simulate(
    rate: float = typer.Option(1000.0, "--rate", min=1, help="Events per second of simulated trading."),
    duration: float = typer.Option(60.0, "--duration", min=1, help="Seconds of simulated trading."),
    seed: Optional[int] = typer.Option(None, help="Random seed (default: from the clock, so reruns make new events)."),
    realtime: bool = typer.Option(True, "--realtime/--fast", help="Pace at the wall clock, or emit as fast as possible."),
) -> None:
    """A synthetic engine emitting realistic linked chains through AuditClient.

    With TRADEWATCH_BROKER_URL set, events go to that broker for the workers; in embedded mode
    an in-process worker stores them in SQLite.
    """
    settings = _settings()
    seed = seed if seed is not None else time.time_ns() % 2**31
    from tradewatch.tasks.client import AuditClient

    if settings.embedded:
        from tradewatch.tasks import wiring
        from tradewatch.tasks.app import app as celery_app
        from tradewatch.tasks.embedded import embedded_worker

        store = wiring.store()
        with embedded_worker(celery_app), AuditClient(app=celery_app) as client:
            _simulate(rate, duration, seed, 1.0 if realtime else None, client, store=store)
    else:
        with AuditClient() as client:
            emitted, _ = _simulate(rate, duration, seed, 1.0 if realtime else None, client)
            client.flush()
            stats = client.stats()
        console.print(f"published {stats['published_events']:,} events in {stats['published_batches']} batches; "
                      f"spooled {stats['spooled_batches']} batches")


def _wait_for_rows(store, expected: int, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    count = store.count()
    while count < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        count = store.count()
    return count


# ------------------------------------------------------------------------- demo


@app.command()
def demo(
    rate: float = typer.Option(500.0, help="Events per second of simulated trading."),
    duration: float = typer.Option(60.0, help="Seconds of simulated trading."),
    seed: int = typer.Option(7, help="Random seed."),
    state_dir: Path = typer.Option(Path("var/demo"), help="Where the demo's SQLite trail is written (wiped first)."),
) -> None:
    """Embedded mode, no services: a minute of simulated trading through a real Celery worker
    (in-memory broker, in-process) into SQLite; then what was stored and one trade history."""
    from tradewatch.tasks.settings import Settings, configure

    shutil.rmtree(state_dir, ignore_errors=True)
    state_dir.mkdir(parents=True)
    # Always embedded, whatever the environment says: the demo needs no services.
    # The tables below show what the worker's logs would say, so it logs errors only.
    configure(Settings(database_url=None, broker_url=None, state_dir=state_dir.resolve(), log_level="ERROR", log_format="console"))

    from tradewatch.tasks import wiring
    from tradewatch.tasks.app import app as celery_app
    from tradewatch.tasks.client import AuditClient
    from tradewatch.tasks.embedded import embedded_worker

    settings = _settings()
    console.rule("[bold]tradewatch demo")
    console.print(
        "embedded mode: a real Celery worker in this process consumes real messages from kombu's in-memory "
        f"transport and writes the audit trail to SQLite at [bold]{settings.effective_database_url.removeprefix('sqlite:///')}[/]"
    )
    store = wiring.store()
    with embedded_worker(celery_app):
        with AuditClient(app=celery_app, spool_dir=state_dir / "spool") as client:
            emitted, filled_signal = _simulate(rate, duration, seed, None, client, store=store)
            client.flush()
        # A misbehaving producer sends three bad events beside a good one, straight to the task.
        bad_batch = [
            '{"event_type": "fill", "occurred_at": "2026-11-21T14:30:00", "source": "legacy-engine", "payload": {}}',
            '{"event_type": "order", "occurred_at": 1763735400, "source": "legacy-engine", "order_id": "x", '
            '"symbol": "AAPL", "strategy_id": "legacy", "payload": {"side": "hold", "quantity": -5, '
            '"order_type": "market", "status": "submitted"}}',
            "{this is not json",
        ]
        celery_app.send_task("audit.ingest_batch", args=[bad_batch], kwargs={"batch_id": "demo-bad-producer"}, queue="audit")
        with console.status("waiting for the worker to commit everything"):
            stored = _wait_for_rows(store, emitted)
            deadline = time.monotonic() + 30
            while len(store.rejected(10)) < len(bad_batch) and time.monotonic() < deadline:
                time.sleep(0.1)

    console.rule("[bold]what was stored")
    console.print(f"emitted {emitted:,} events; the audit trail holds {stored:,} (lost {emitted - stored:,})")
    _print_summary(store.summary(0, time.time_ns() + 1))
    rejected = Table(title="rejected events: each kept with its raw text and a reason a person can act on")
    rejected.add_column("position")
    rejected.add_column("reason")
    for row in sorted(store.rejected(10), key=lambda r: r["position"]):
        rejected.add_row(str(row["position"]), row["reason"])
    console.print(rejected)

    if filled_signal:
        console.rule("[bold]one reconstructed trade")
        console.print(_history_table(store.reconstruct_trade_history(filled_signal)))
        console.print(f"(again any time: TRADEWATCH_STATE_DIR={state_dir} .venv/bin/tradewatch audit history {filled_signal})")
    _print_analytics(store, state_dir)
    _print_anomalies(state_dir)


def _print_analytics(store, state_dir: Path) -> None:
    """The post-trade analytics of what the demo traded, read back from the trail."""
    from tradewatch.domain.analytics.report import AnalyticsConfig, build_report
    from tradewatch.storage.trading_data import load_trading_data

    console.rule("[bold]post-trade analytics of the demo's trading")
    report = build_report(load_trading_data(store, 0, time.time_ns() + 1), AnalyticsConfig(capital=1_000_000)).to_dict()
    trades, slippage = report["trades"], report["slippage"]["summary"]
    table = Table(title="from the audit trail: fills matched FIFO into round trips, orders against their decision price")
    table.add_column("measure")
    table.add_column("value", justify="right")

    def number(value, fmt: str = ",.2f") -> str:
        return "n/a" if value is None else format(value, fmt)

    rows = [
        ("round trips", number(report["summary"]["round_trips"], ",d")),
        ("realized pnl net of fees", number(trades["total_pnl"])),
        ("win rate", number(trades["win_rate"], ".1%")),
        ("profit factor", number(trades["profit_factor"])),
        ("implementation shortfall, bps of decision notional", number(slippage.get("total_cost_bps"))),
        ("of which spread, bps", number(slippage.get("spread_cost_bps"))),
        ("of which price impact, bps", number(slippage.get("price_impact_bps"))),
    ]
    for strategy in report["attribution"]["by_strategy"]:
        rows.append((f"pnl of strategy {strategy['strategy_id']}", number(strategy["pnl"])))
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    console.print(f"(the whole report: TRADEWATCH_STATE_DIR={state_dir} .venv/bin/tradewatch analytics report "
                  "--from 2000-01-01 --to 2100-01-01 --format markdown)")



def _print_anomalies(state_dir: Path, rows_shown: int = 10) -> None:
    """What the detection pipeline found in the demo's trading (detect.batch ran after each ingest batch)."""
    from tradewatch.cli.detection import anomalies_table
    from tradewatch.tasks import wiring
    from tradewatch.tasks.detection import batch

    console.rule("[bold]anomalies found by the detection pipeline")
    # The worker stopped with the last detect.batch possibly still queued: run it here (it resumes
    # from the pipeline's cursor, so what the worker already applied is not applied twice).
    batch(batch_id="demo-catch-up")
    found = wiring.detection_store().anomalies(None, limit=1_000_000)
    still_open = sum(1 for row in found if row["status"] == "open")
    shown = f"{min(rows_shown, len(found))} of {len(found)}"
    console.print(anomalies_table(found[:rows_shown], f"anomalies, most recently opened first ({shown})", compact=True))
    console.print(f"{len(found)} anomalies: {still_open} open, {len(found) - still_open} resolved "
                  f"(all of them: TRADEWATCH_STATE_DIR={state_dir} .venv/bin/tradewatch detect anomalies --status all --limit 1000)")


if __name__ == "__main__":  # pragma: no cover
    app()
