"""`tradewatch compliance ...`: the compliance policy applied to a period, for risk and compliance staff.

- ``check``: the issues of a period, judged exactly as the compliance monitor judges the live
  stream (``ComplianceMonitor.analyze_period``), from an event file (``--events``: JSON Lines in
  the event contract's format, no services needed) or from the audit trail the settings point to.

Reports go to stdout, errors and warnings to stderr. Exit status: 0 when no issue was found,
1 when issues were found, 2 on bad input (a bad time, --from not before --to, an unreadable
file, an invalid policy, invalid event lines: the valid events beside them are still checked).
"""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Callable, NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape

from tradewatch.cli.common import load_settings

compliance_app = typer.Typer(help="Compliance: check a period of events against the compliance policy.",
                             no_args_is_help=True)
errors = Console(stderr=True)

NS = 1_000_000_000
DAY_NS = 86_400 * NS
#: Against the trail, --from defaults to this long before --to.
DEFAULT_PERIOD_NS = DAY_NS
#: Invalid lines shown one by one; the rest are counted.
MAX_PROBLEMS_SHOWN = 50
ACCEPTED_TIME = ("an RFC 3339 time with an offset, e.g. 2026-01-05T14:30:00Z or 2026-01-05T09:30:00.123456789-05:00 "
                 "(up to 9 fractional digits), or a date, e.g. 2026-01-05 (midnight UTC)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

EXIT_CLEAN, EXIT_ISSUES, EXIT_BAD_INPUT = 0, 1, 2


class Format(str, Enum):
    json = "json"
    markdown = "markdown"


def _fail(message: str) -> NoReturn:
    # soft_wrap: a long message stays one line per problem; escape: "policies[1]" is not markup.
    errors.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def _warn(message: str) -> None:
    errors.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


# ------------------------------------------------------------------------ inputs


def parse_bound(text: str, option: str) -> int:
    """A period bound as UTC epoch nanoseconds: RFC 3339 with an offset (to the nanosecond), or a
    date (midnight UTC). ValueError naming the option, the text and what is accepted."""
    from tradewatch.domain.events.timestamps import TimestampError, parse_rfc3339_ns

    text = text.strip()
    if _DATE.match(text):
        try:
            day = date.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"{option} {text!r}: {exc}; accepted: {ACCEPTED_TIME}") from None
        return (day.toordinal() - _EPOCH_ORDINAL) * DAY_NS
    try:
        return parse_rfc3339_ns(text)
    except TimestampError as exc:
        reason = str(exc).split("; expected")[0]
        raise ValueError(f"{option} {text!r}: {reason}; accepted: {ACCEPTED_TIME}") from None


def _period(start: str | None, end: str | None, default_start: Callable[[int], int], default_end: Callable[[], int],
            defaults: str) -> tuple[int, int]:
    """[start, end) in ns; an absent bound takes its default (``default_start`` gets the end)."""
    try:
        end_ns = parse_bound(end, "--to") if end is not None else default_end()
        start_ns = parse_bound(start, "--from") if start is not None else default_start(end_ns)
    except ValueError as exc:
        _fail(str(exc))
    if end_ns <= start_ns:
        from tradewatch.domain.events.timestamps import format_rfc3339_ns

        shown_start = start if start is not None else format_rfc3339_ns(start_ns)
        shown_end = end if end is not None else format_rfc3339_ns(end_ns)
        _fail(f"--to {shown_end} is not after --from {shown_start} ({defaults}); the period is [--from, --to)")
    return start_ns, end_ns


def load_policies(path: Path | None, fail: Callable[[str], NoReturn] = _fail):
    """The policy history of ``path`` (one policy or ``policies:``), else the packaged default; a
    file that cannot be read or is invalid is reported through ``fail`` (which prints and exits)."""
    from tradewatch.domain.compliance.policy import PolicyError, PolicyHistory, default_policy

    try:
        if path is None:
            return PolicyHistory([default_policy()])
        text = path.read_text(encoding="utf-8")
        return PolicyHistory.from_yaml_text(text, str(path))
    except OSError as exc:
        fail(f"cannot read the compliance policy {path}: {exc.strerror or exc}")
    except UnicodeDecodeError as exc:
        fail(f"the compliance policy {path} is not UTF-8 text (byte {exc.start}); accepted: a YAML file")
    except PolicyError as exc:
        fail(f"invalid compliance policy\n{exc}")


def _read_event_file(path: Path):
    """The file's events, its invalid lines reported on stderr (module docstring)."""
    from tradewatch.domain.events.jsonl import read_event_lines

    try:
        with path.open("rb") as handle:
            read = read_event_lines(handle)
    except OSError as exc:
        _fail(f"cannot read the events file {path}: {exc.strerror or exc}")
    for problem in read.problems[:MAX_PROBLEMS_SHOWN]:
        errors.print(f"[bold red]error:[/] {escape(f'{path} line {problem.line}: {problem.reason}')}", soft_wrap=True)
    if len(read.problems) > MAX_PROBLEMS_SHOWN:
        errors.print(f"[bold red]error:[/] ... and {len(read.problems) - MAX_PROBLEMS_SHOWN:,} more invalid lines")
    if read.problems:
        errors.print(f"{len(read.problems):,} of {read.lines:,} lines of {escape(str(path))} are not valid events; "
                     f"the {len(read.events):,} valid events are checked", soft_wrap=True)
    if read.redeliveries:
        _warn(f"{read.redeliveries:,} lines of {path} repeat an earlier event exactly; each event is checked once")
    return read


def _warn_before_policy(policies, start_ns: int) -> None:
    from tradewatch.domain.events.timestamps import format_rfc3339_ns

    first = policies.policies[0]
    if start_ns < first.effective_from_ns:
        _warn(f"the period starts at {format_rfc3339_ns(start_ns)}, before the first policy version "
              f"({first.version!r}) takes effect at {format_rfc3339_ns(first.effective_from_ns)}: events before "
              "that are not judged")


# --------------------------------------------------------------------- the trail


def _database_problem(exc: BaseException) -> str:
    """The driver's one-line reason, with the likely fix when a table is missing."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    text = text.splitlines()[0] if text else type(exc).__name__
    if "does not exist" in text or "no such table" in text:
        text += " (the schema is not there or is older: run `tradewatch db upgrade`)"
    return text


def _trail_report(start: str | None, end: str | None, policy: Path | None):
    """The report of a period of the audit trail the settings point to."""
    from sqlalchemy.exc import SQLAlchemyError

    from tradewatch.domain.compliance.monitor import ComplianceMonitor
    from tradewatch.tasks import wiring

    settings = load_settings(_fail)
    policies = load_policies(policy or settings.compliance_policy)
    start_ns, end_ns = _period(start, end, lambda end_ns: end_ns - DEFAULT_PERIOD_NS, time.time_ns,
                               "defaults: --to now, --from 24 hours before --to")
    _warn_before_policy(policies, start_ns)
    store = wiring.compliance_store()
    where = store.engine.url.render_as_string(hide_password=True)
    database_errors = (SQLAlchemyError, store.engine.dialect.loaded_dbapi.Error)
    monitor = ComplianceMonitor(store, policies, wiring.compliance_config(), link_anomalies=store.link_anomalies)
    try:
        report = monitor.analyze_period(start_ns, end_ns)
    except database_errors as exc:
        _fail(f"could not read the audit trail at {where}: {_database_problem(exc)}")
    return report, f"the audit trail at {where}"


def _file_report(path: Path, start: str | None, end: str | None, policy: Path | None):
    """The report of a period of an event file; also whether it had invalid lines."""
    from tradewatch.domain.compliance.events import from_model
    from tradewatch.domain.compliance.monitor import ComplianceMonitor, EventList

    policies = load_policies(policy)
    read = _read_event_file(path)
    source = EventList(from_model(event) for event in read.events)
    if source.first_ns is None and (start is None or end is None):
        what = "only invalid lines" if read.problems else "no events (empty or blank lines only)"
        _fail(f"{path} holds {what}: no period to check; give --from and --to to check an empty period")
    start_ns, end_ns = _period(start, end, lambda _end: source.first_ns, lambda: source.end_ns,
                               "defaults: --from the first event, --to 1 ns after the last event of the file")
    _warn_before_policy(policies, start_ns)
    report = ComplianceMonitor(source, policies).analyze_period(start_ns, end_ns)
    return report, str(path), bool(read.problems)


# ---------------------------------------------------------------------- command


@compliance_app.command("check")
def check(
    start: Optional[str] = typer.Option(
        None, "--from", help="Period start: " + ACCEPTED_TIME + ". Default: with --events the file's first event, "
                             "else 24 hours before --to."),
    end: Optional[str] = typer.Option(
        None, "--to", help="Period end (exclusive), same forms. Default: with --events 1 ns after the file's last "
                           "event, else now."),
    events: Optional[Path] = typer.Option(
        None, "--events", help="Check this JSON Lines file (one event per line, the event contract's JSON, as "
                               "`tradewatch simulate --output` writes it) instead of the audit trail."),
    policy: Optional[Path] = typer.Option(
        None, "--policy", help="Compliance policy YAML: one policy, or `policies:` with every version. Default: "
                               "TRADEWATCH_COMPLIANCE_POLICY against the trail, else the packaged default policy."),
    fmt: Format = typer.Option(Format.markdown, "--format", "-f", help="markdown (for people) or json (every issue "
                                                                      "with all its fields)."),
) -> None:
    """Check a period against the compliance policy and list the issues.

    Exit status: 0 no issue, 1 issues found, 2 bad input (valid events beside invalid lines are still checked).
    """
    from tradewatch.cli.compliance_markdown import report_markdown

    bad_lines = False
    if events is not None:
        report, source, bad_lines = _file_report(events, start, end, policy)
    else:
        report, source = _trail_report(start, end, policy)
    if fmt is Format.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(report_markdown(report, source))
    sys.stdout.flush()
    if bad_lines:
        raise typer.Exit(EXIT_BAD_INPUT)
    raise typer.Exit(EXIT_ISSUES if report.issues else EXIT_CLEAN)
