"""`tradewatch alerts ...` and `tradewatch silence ...`: the on-call engineer's commands."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

alerts_app = typer.Typer(help="The alert router: routes, test notifications, delivery failures.", no_args_is_help=True)
silence_app = typer.Typer(help="Silences: mute alerts matching labels for a while.", no_args_is_help=True)
console = Console()


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


def _config():
    from tradewatch.alerting.config import AlertingConfigError
    from tradewatch.tasks import wiring

    try:
        return wiring.alerting_config()
    except (AlertingConfigError, OSError) as exc:
        _fail(str(exc))


def _state():
    from tradewatch.tasks import wiring

    try:
        state = wiring.alert_state()
        state.client.ping()
        return state
    except Exception as exc:  # noqa: BLE001 - shown to the operator
        _fail(f"cannot reach the alert router's Redis: {exc}")


def _labels(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            _fail(f"--label {pair!r}: expected NAME=VALUE, e.g. --label severity=critical")
        labels[name.strip()] = value.strip().strip('"')
    return labels


@alerts_app.command("routes")
def routes(label: List[str] = typer.Option([], "--label", "-l", help="NAME=VALUE, repeatable.")) -> None:
    """Which receivers would get an alert with these labels, and why."""
    config = _config()
    labels = _labels(label)
    from tradewatch.alerting.durations import format_duration
    from tradewatch.alerting.routing import group_key

    matches = config.route.match(labels)
    table = Table(title=f"routes for {{{', '.join(f'{k}={v!r}' for k, v in labels.items())}}}")
    for column in ("receiver", "route", "group by", "group wait", "group interval", "repeat interval", "group key"):
        table.add_column(column)
    for match in matches:
        table.add_row(match.receiver, match.route.path, ", ".join(match.group_by) or "-",
                      format_duration(match.group_wait), format_duration(match.group_interval),
                      format_duration(match.repeat_interval), group_key(match, labels))
    console.print(table)
    console.print("[bold]why:[/]")
    for match in matches:
        for step in match.explanation:
            console.print(f"  {step}")


@alerts_app.command("list")
def list_firing() -> None:
    """The alerts firing now, and whether each is silenced or inhibited (and by what)."""
    state = _state()
    table = Table(title="firing alerts")
    for column in ("alertname", "severity", "labels", "since", "summary", "muted"):
        table.add_column(column)
    for alert in sorted(state.firing_alerts(), key=lambda a: (a.severity.value, a.alertname, a.starts_at)):
        muted = state.suppressed(alert.fingerprint)
        how = "-"
        if muted:
            how = (f"silenced by {muted['silence_id']}" if muted["reason"] == "silenced"
                   else f"inhibited by {muted['by_alertname']}") + f" (at {muted['at'][:19]})"
        labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()) if k not in ("alertname", "severity"))
        table.add_row(alert.alertname, alert.severity.value, labels, alert.starts_at.isoformat(timespec="seconds"),
                      alert.summary, how)
    console.print(table)


@alerts_app.command("send")
def send(
    receiver: str = typer.Option(..., "--receiver", "-r", help="A receiver name from the routing file."),
    severity: str = typer.Option("info", help="critical, warning or info."),
    resolve: bool = typer.Option(False, help="Send the resolve of the test alert instead."),
) -> None:
    """Send a test notification straight to one receiver (no routing, no silences)."""
    from tradewatch.alerting.model import Alert, AlertStatus
    from tradewatch.alerting.notification import Notification
    from tradewatch.alerting.receivers.base import DeliveryError
    from tradewatch.alerting.receivers.build import build_receivers
    from tradewatch.tasks.settings import get_settings

    config = _config()
    if receiver not in config.receivers:
        _fail(f"unknown receiver {receiver!r}; defined: {', '.join(sorted(config.receivers))}")
    settings = get_settings()
    built, missing = build_receivers(
        config, pagerduty_routing_key=settings.pagerduty_routing_key, slack_webhook_url=settings.slack_webhook_url,
        slack_bot_token=settings.slack_bot_token, pagerduty_url=settings.pagerduty_events_url,
        slack_api_url=settings.slack_api_url, pacer=None,
    )
    if receiver in missing:
        _fail(missing[receiver])
    now = datetime.now(timezone.utc)
    alert = Alert(
        labels={"alertname": "TradewatchTestNotification", "severity": severity, "source": "tradewatch-cli"},
        annotations={"summary": "Test notification from `tradewatch alerts send`",
                     "description": "If you can read this, the receiver works. Nothing is wrong."},
        starts_at=now, status=AlertStatus.RESOLVED if resolve else AlertStatus.FIRING,
        ends_at=now if resolve else None,
    )
    notification = Notification(notification_id=str(uuid.uuid4()), receiver=receiver,
                                group_key=f"cli-test/{receiver}", group_labels={"alertname": alert.alertname},
                                alerts=(alert,))
    try:
        receipt = built[receiver].send(notification)
    except DeliveryError as exc:
        _fail(f"{receiver}: {exc}")
    console.print(f"sent to [bold]{receiver}[/]: status {receipt.status}, reference {receipt.reference or '-'}, "
                  f"dedup_key {notification.dedup_key}")


@alerts_app.command("failures")
def failures(limit: int = typer.Option(20, help="How many of the most recent.")) -> None:
    """Notifications that could not be delivered after their retries."""
    from tradewatch.storage.alert_failures import AlertFailureStore
    from tradewatch.tasks import wiring

    rows = AlertFailureStore(wiring.engine()).recent(limit)
    table = Table(title=f"alert delivery failures (latest {limit})")
    for column in ("failed at", "receiver", "status", "alerts", "attempts", "error", "fallback"):
        table.add_column(column)
    for row in rows:
        fallback = f"{row['fallback_receiver']} ({'delivered' if row['fallback_delivered'] else 'failed'})" if row["fallback_receiver"] else "-"
        table.add_row(row["failed_at"].isoformat(timespec="seconds"), row["receiver"], row["status"],
                      ", ".join(row["alertnames"]), str(row["attempts"]), row["error"], fallback)
    console.print(table)


@silence_app.command("add")
def silence_add(
    matcher: List[str] = typer.Option(..., "--matcher", "-m", help='Label matcher, repeatable: strategy_id="mm-1", alertname=~"Stale.*".'),
    duration: Optional[str] = typer.Option(None, help="How long, e.g. 2h, 30m (default 1h unless --until)."),
    until: Optional[datetime] = typer.Option(None, help="End time (ISO 8601, with offset)."),
    author: str = typer.Option(..., help="Who silences (kept with the silence)."),
    comment: str = typer.Option(..., help="Why (kept with the silence)."),
) -> None:
    """Mute alerts matching every matcher until the silence ends."""
    from pydantic import ValidationError

    from tradewatch.alerting.durations import parse_duration
    from tradewatch.alerting.silences import Silence

    now = datetime.now(timezone.utc)
    if until is not None and duration is not None:
        _fail("give --duration or --until, not both")
    try:
        if until is not None:
            if until.tzinfo is None:
                _fail(f"--until {until.isoformat()} has no UTC offset; e.g. 2026-11-22T18:00:00+00:00")
            ends_at = until
        else:
            ends_at = now + parse_duration(duration or "1h")
        silence = Silence(id=str(uuid.uuid4()), matchers=matcher, starts_at=now, ends_at=ends_at,
                          created_by=author, comment=comment, created_at=now)
    except (ValueError, ValidationError) as exc:
        _fail(str(exc))
    _state().put_silence(silence)
    console.print(f"silence [bold]{silence.id}[/] active until {silence.ends_at.isoformat(timespec='seconds')}: "
                  f"{', '.join(str(m) for m in silence.matchers)}")


@silence_app.command("list")
def silence_list(all_: bool = typer.Option(False, "--all", help="Include expired silences.")) -> None:
    """Silences, active and pending (and expired with --all)."""
    now = datetime.now(timezone.utc)
    table = Table(title="silences")
    for column in ("id", "state", "matchers", "starts", "ends", "author", "comment"):
        table.add_column(column)
    for silence in _state().silences():
        state = silence.state(now)
        if state == "expired" and not all_:
            continue
        table.add_row(silence.id, state, ", ".join(str(m) for m in silence.matchers),
                      silence.starts_at.isoformat(timespec="seconds"), silence.ends_at.isoformat(timespec="seconds"),
                      silence.created_by, silence.comment)
    console.print(table)


@silence_app.command("expire")
def silence_expire(silence_id: str = typer.Argument(..., help="The silence's id (see `tradewatch silence list`).")) -> None:
    """End a silence now."""
    state = _state()
    silence = state.silence(silence_id)
    if silence is None:
        _fail(f"no silence {silence_id!r}; see `tradewatch silence list --all`")
    now = datetime.now(timezone.utc)
    if silence.state(now) == "expired":
        console.print(f"silence {silence_id} already expired at {silence.ends_at.isoformat(timespec='seconds')}")
        return
    state.put_silence(silence.expire(now))
    console.print(f"silence [bold]{silence_id}[/] expired")
