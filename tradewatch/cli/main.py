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
from tradewatch.cli.compliance import compliance_app  # noqa: E402

app.add_typer(compliance_app, name="compliance")
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
    """Run the HTTP service (uvicorn): /metrics, /health, /ready, /live, /api/snapshot and the Alertmanager webhook."""
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


class _FileSink:
    """Where `simulate --output` sends events instead of AuditClient: one line of contract JSON
    each (``domain.events.jsonl.event_line``, what AuditClient would have sent)."""

    def __init__(self, handle) -> None:
        self._handle = handle

    def emit(self, event) -> None:
        from tradewatch.domain.events.jsonl import event_line

        self._handle.write(event_line(event) + "\n")

    def flush(self) -> None:
        self._handle.flush()


def _violation_injector(policies, start_ns: int, duration: float, seed: int):
    """The injector of labelled violations for the policy in force at ``start_ns``; prints which
    codes it injects and which it cannot (and why)."""
    from tradewatch.domain.compliance.policy import NoPolicyInForce
    from tradewatch.domain.simulation.violations import ViolationInjector

    try:
        policy = policies.in_force(start_ns)
    except NoPolicyInForce as exc:
        _fail(f"cannot inject violations: {exc}, so nothing simulated would be judged")
    injector = ViolationInjector(policy, start_ns, int(duration * 1e9), seed=seed)
    console.print(f"injecting violations of compliance policy {policy.version}: "
                  f"{', '.join(injector.injected_codes) or 'none'}")
    for code, why in injector.skipped.items():
        console.print(f"  not injected: {code}: {why}")
    return injector


def _simulate(rate: float, duration: float, seed: int, speed: float | None, client, store=None,
              violations=None) -> tuple[int, str | None]:
    """Emit `duration` seconds of simulated trading at `rate` events/s through `client`.

    speed None: as fast as possible; else simulated seconds per wall second (1 = real time).
    violations: a PolicyHistory whose version in force at the start decides the labelled
    violations merged into the stream (``ViolationInjector``); None: none.
    Returns (events emitted, a signal_id that led to fills, if any).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from tradewatch.domain.simulation import SimulationConfig, TradingSimulator

    # Faster than real time, the simulated minute ends now rather than in the future.
    start_at = time.time_ns() - (int(duration * 1e9) if speed is None else 0)
    simulator = TradingSimulator(SimulationConfig(events_per_second=rate, seed=seed), start_ns=start_at)
    start_ns = simulator.now_ns
    injector = None if violations is None else _violation_injector(violations, start_ns, duration, seed)
    emitted, filled_signal, orders_to_signal = 0, None, {}

    def emit(events) -> None:
        nonlocal emitted, filled_signal
        for event in events:
            client.emit(event)
            emitted += 1
            if filled_signal is None:
                if event.event_type == "order" and event.signal_id:
                    orders_to_signal[event.order_id] = event.signal_id
                elif event.event_type == "fill" and event.order_id in orders_to_signal:
                    filled_signal = orders_to_signal[event.order_id]

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
            step_end = start_ns + step * tick_ns
            events = simulator.events_until(step_end)
            if injector is not None:
                # The simulator's step is (previous, step_end], the injector's "before t": the same span.
                events = sorted(events + injector.events_until(step_end + 1), key=lambda event: event.occurred_at)
            emit(events)
            if step % 10 == 0:
                progress.update(task, completed=step // 10)
                progress.update(emitted_task, completed=emitted)
                if store is not None:
                    progress.update(stored_task, completed=store.count())
        if injector is not None:
            emit(injector.rest())  # a scenario running past the end still completes
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
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Write the events to this JSON Lines file (one event per line, the JSON "
                                     "AuditClient sends) instead of sending them: no services needed, as fast as "
                                     "possible (--realtime ignored)."),
    inject_violations: bool = typer.Option(
        False, "--inject-violations", help="Merge labelled compliance violations into the stream: one scenario "
                                           "per issue code the policy enables (which are skipped, and why, is "
                                           "printed)."),
    policy: Optional[Path] = typer.Option(
        None, "--policy", help="Compliance policy YAML deciding the injected violations (the version in force at "
                               "the start). Default: the packaged default policy."),
) -> None:
    """A synthetic engine emitting realistic linked chains through AuditClient.

    With TRADEWATCH_BROKER_URL set, events go to that broker for the workers; in embedded mode
    an in-process worker stores them in SQLite; with --output they go to a file.
    """
    seed = seed if seed is not None else time.time_ns() % 2**31
    if policy is not None and not inject_violations:
        _fail("--policy decides the violations --inject-violations adds; add --inject-violations or drop --policy")
    violations = None
    if inject_violations:
        from tradewatch.cli.compliance import load_policies

        violations = load_policies(policy, _fail)
    if output is not None:
        try:
            handle = output.open("w", encoding="utf-8")
        except OSError as exc:
            _fail(f"cannot write the events file {output}: {exc.strerror or exc}")
        with handle:
            emitted, _ = _simulate(rate, duration, seed, None, _FileSink(handle), violations=violations)
        console.print(f"wrote {emitted:,} events to {output} (seed {seed}); check them with: "
                      f"tradewatch compliance check --events {output}")
        return
    settings = _settings()
    from tradewatch.tasks.client import AuditClient

    if settings.embedded:
        from tradewatch.tasks import wiring
        from tradewatch.tasks.app import app as celery_app
        from tradewatch.tasks.embedded import embedded_worker

        store = wiring.store()
        with embedded_worker(celery_app), AuditClient(app=celery_app) as client:
            _simulate(rate, duration, seed, 1.0 if realtime else None, client, store=store, violations=violations)
    else:
        with AuditClient() as client:
            emitted, _ = _simulate(rate, duration, seed, 1.0 if realtime else None, client, violations=violations)
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
            # The stream carries one labelled breach of each rule the compliance policy enables.
            emitted, filled_signal = _simulate(rate, duration, seed, None, client, store=store,
                                               violations=wiring.compliance_policies())
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
    _print_compliance(state_dir)
    _print_dashboard()


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


def _print_compliance(state_dir: Path) -> None:
    """What the compliance monitor recorded of the demo's trading (compliance.batch ran after each
    ingest batch), then the same period judged afresh by the period analysis."""
    from tradewatch.domain.compliance.issue import ISSUE_CODES
    from tradewatch.tasks import wiring
    from tradewatch.tasks.compliance import batch

    console.rule("[bold]compliance issues recorded by the live monitor")
    batch(batch_id="demo-catch-up")  # the last compliance.batch may still have been queued
    # The stream has ended, nothing more will arrive: release what the reorder window still holds
    # (the beat's compliance.tick does this with the clock; embedded mode runs no beat).
    window_ns = int(wiring.compliance_config().reorder_window_seconds * 1e9)
    wiring.compliance_store().catch_up_and_tick(wiring.compliance_engine(), time.time_ns() + window_ns + 1)
    rows = sorted(wiring.compliance_store().issues(limit=1_000), key=lambda row: row["occurred_at_ns"])
    table = Table(title=f"{len(rows)} issues, breaches of compliance policy {wiring.compliance_policies().latest.version} "
                        "(one labelled breach per rule was injected)")
    for column in ("#", "occurred at (UTC)", "code", "severity", "strategy"):
        table.add_column(column)
    for number, row in enumerate(rows, 1):
        table.add_row(str(number), row["occurred_at"].strftime("%H:%M:%S.%f")[:-3], row["code"], row["severity"],
                      row["strategy_id"] or "-")
    console.print(table)
    for number, row in enumerate(rows, 1):
        console.print(f"{number}. {row['message']}", highlight=False)
    found = {row["code"] for row in rows}
    missing = [code for code in ISSUE_CODES if code not in found]
    if missing:
        console.print(f"codes not raised: {', '.join(missing)} (the default policy restricts no symbol and forbids "
                      "no LLM decision; see tradewatch/domain/compliance/default_policy.yaml)")
    console.print(f"(the same period judged afresh: TRADEWATCH_STATE_DIR={state_dir} .venv/bin/tradewatch compliance "
                  "check --from 2000-01-01 --to 2100-01-01)")


def _print_dashboard() -> None:
    """The dashboard snapshot of the demo's trading (what dashboard.snapshot publishes every 2 s
    and /metrics exports), taken once here: embedded mode runs no beat."""
    from tradewatch.tasks import wiring

    console.rule("[bold]the live dashboard snapshot")
    now_ns = time.time_ns()
    run = wiring.dashboard_store().advance(wiring.dashboard_aggregator(now_ns), now_ns)
    body = run.snapshot or {}

    def number(value, fmt: str = ",.2f") -> str:
        return "n/a" if value is None else format(value, fmt)

    table = Table(title=f"folded incrementally from {run.events_applied:,} events of the trail")
    table.add_column("measure")
    table.add_column("value", justify="right")
    latency = body.get("order_acknowledgement_seconds", {})
    rows = [
        ("portfolio value", number(body.get("portfolio_value"))),
        ("daily / realized / unrealized pnl", " / ".join(number(body.get(k)) for k in ("daily_pnl", "realized_pnl", "unrealized_pnl"))),
        ("open positions; gross / net exposure", f"{body.get('position_count', 0)}; {number(body.get('gross_exposure'))} / {number(body.get('net_exposure'))}"),
        ("drawdown / max drawdown", f"{number(body.get('drawdown'), '.2%')} / {number(body.get('max_drawdown'), '.2%')}"),
        ("orders by status", ", ".join(f"{k} {v:,}" for k, v in body.get("orders_by_status", {}).items())),
        ("rejection rate", number(body.get("rejection_rate"), ".1%")),
        ("acknowledgement latency p50 / p95 / p99, ms", " / ".join(number(None if latency.get(q) is None else latency[q] * 1000, ".1f") for q in ("p50", "p95", "p99"))),
        ("slippage p50 / p95, bps", " / ".join(number(body.get("slippage_bps", {}).get(q), ".2f") for q in ("p50", "p95"))),
    ]
    limits = sorted(body.get("risk_limits", []), key=lambda row: -row["percent"])[:3]
    rows += [(f"risk limit {row['limit']} {row['symbol']}".strip(), f"{row['percent']:.1f}% used") for row in limits]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


if __name__ == "__main__":  # pragma: no cover
    app()
