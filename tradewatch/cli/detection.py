"""`tradewatch detect ...`: the anomaly detection pipeline, for the on-call engineer and operators.

- ``check [FILE]``: validate a pipeline YAML and list its detectors (no database needed).
- ``anomalies``: what the pipeline found, from the anomalies table, newest first.
- ``run``: catch the pipeline up on the trail by hand, as a ``detect.batch`` task would.
- ``models``: the trained models in the model store and whether the model detectors may use them.

Tables and JSON go to stdout, errors to stderr (exit status 2).
"""

from __future__ import annotations

import json
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tradewatch.cli.common import load_settings

detect_app = typer.Typer(help="Anomaly detection: the pipeline's configuration, its anomalies, its models.",
                         no_args_is_help=True)
console = Console()
errors = Console(stderr=True)

# Config fields shown in their own columns; every other set field is a threshold or setting.
_OWN_COLUMNS = ("name", "kind", "severity", "metric", "by")


class Status(str, Enum):
    open = "open"
    resolved = "resolved"
    all = "all"


class Format(str, Enum):
    table = "table"
    json = "json"


def _fail(message: str) -> None:
    # soft_wrap: a long message stays one line per problem; escape: "detectors[2]" is not markup.
    errors.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(2)


def _settings():
    return load_settings(_fail)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _database_problem(exc: BaseException) -> str:
    """The driver's one-line reason, with the likely fix when a table is missing."""
    text = _first_line(exc)
    if "does not exist" in text or "no such table" in text:
        text += " (the schema is not there or is older: run `tradewatch db upgrade`)"
    return text


# ------------------------------------------------------------------------ check


def _load_config(path: Path | None):
    """The pipeline configuration of ``path``, else the configured one (TRADEWATCH_DETECTION_PIPELINE),
    else the packaged default; with the name to show for where it came from."""
    from tradewatch.domain.detection.pipeline import (
        DEFAULT_PIPELINE_RESOURCE,
        PipelineConfigError,
        pipeline_config_from,
    )

    if path is None:
        path = _settings().detection_pipeline
    try:
        config = pipeline_config_from(path)
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read the detection pipeline {path}: {getattr(exc, 'strerror', None) or exc}")
    except PipelineConfigError as exc:
        _fail(f"invalid detection pipeline\n{exc}")
    return config, (f"{DEFAULT_PIPELINE_RESOURCE} (packaged default)" if path is None else str(path))


def _plain(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_plain(item) for item in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _settings_text(detector) -> str:
    values = detector.model_dump(exclude=set(_OWN_COLUMNS))
    return ", ".join(f"{key}={_plain(value)}" for key, value in values.items() if value is not None)


def _stream_text(detector) -> str:
    metric, by = getattr(detector, "metric", None), getattr(detector, "by", None)
    parts = [metric or "", f"by {by}" if by else ""]
    return " ".join(part for part in parts if part) or "-"


@detect_app.command("check")
def check(
    file: Optional[Path] = typer.Argument(
        None, help="A pipeline YAML (default: TRADEWATCH_DETECTION_PIPELINE, else the packaged default)."),
) -> None:
    """Validate a detection pipeline YAML and list its detectors."""
    config, source = _load_config(file)
    table = Table(title=f"detection pipeline {source}")
    for column in ("name", "kind", "metric / by", "thresholds and settings", "severity"):
        table.add_column(column)
    for detector in config.detectors:
        cells = (detector.name, detector.kind, _stream_text(detector), _settings_text(detector), detector.severity)
        table.add_row(*(escape(cell) for cell in cells))
    console.print(table)
    extractor = ", ".join(f"{k}={_plain(v)}" for k, v in config.extractor.model_dump().items())
    console.print(f"{len(config.detectors)} detectors; a spike or outlier resolves after "
                  f"{_plain(config.quiet_seconds)} s without a finding; extractor: {extractor}")
    console.print(f"[bold green]valid:[/] {escape(source)}")


# -------------------------------------------------------------------- anomalies


def _number(value: float | None) -> str:
    """A measurement for a table: about four significant digits, exponent notation only below 0.0001."""
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.1f}"
    if magnitude >= 1 or magnitude == 0:
        return f"{value:.3f}"
    return f"{value:.4g}" if magnitude >= 1e-4 else f"{value:.2e}"


def _time(ns: int | None) -> str:
    """Event time to the second, UTC (``--format json`` has the nanoseconds)."""
    from tradewatch.domain.events.timestamps import format_rfc3339_ns

    return "-" if ns is None else format_rfc3339_ns(int(ns))[:19].replace("T", " ")


def _status_text(row: dict[str, Any], resolved_at: bool) -> str:
    if row["status"] != "resolved":
        return row["status"]
    text = f"resolved ({row['resolved_reason']})"
    return f"{text} at {_time(row['resolved_at_ns'])}" if resolved_at else text


def anomalies_table(rows: list[dict[str, Any]], title: str, *, resolved_at: bool = False,
                    compact: bool = False) -> Table:
    """Rows of the anomalies table (``DetectionStore.anomalies``) as a rich table. ``resolved_at``
    adds the time each resolved to its status; ``compact`` (for the demo, which runs in whatever
    terminal it is given) leaves out the times, the metric and the count, and puts observed and
    baseline in one column."""
    table = Table(title=title)
    # Times, severities and numbers never wrap; names fold, down to a readable width, when the
    # terminal is narrow (rich would otherwise squeeze a wrapping column to nothing).
    if not compact:
        table.add_column("detected at (UTC)", no_wrap=True)
    table.add_column("detector", min_width=10, overflow="fold")
    table.add_column("type", min_width=8, overflow="fold")
    table.add_column("severity", no_wrap=True)
    table.add_column("entity", min_width=10, overflow="fold")
    if compact:
        table.add_column("observed vs baseline", justify="right")
    else:
        table.add_column("metric", min_width=8, overflow="fold")
        table.add_column("observed", justify="right", no_wrap=True)
        table.add_column("baseline", justify="right", no_wrap=True)
    table.add_column("score", justify="right", no_wrap=True)
    if not compact:
        table.add_column("times seen", justify="right", min_width=5)
    table.add_column("status", min_width=8)
    for row in rows:
        entity = f"{row['entity_kind']}={row['entity']}"
        if compact:
            cells = [row["detector"], row["anomaly_type"], row["severity"], entity,
                     f"{_number(row['observed'])} vs {_number(row['baseline'])}"]
        else:
            cells = [_time(row["detected_at_ns"]), row["detector"], row["anomaly_type"], row["severity"], entity,
                     row["metric"], _number(row["observed"]), _number(row["baseline"])]
        cells.append(_number(row["score"]))
        if not compact:
            cells.append(str(row["occurrences"]))
        cells.append(_status_text(row, resolved_at))
        table.add_row(*(escape(cell) for cell in cells))
    return table


def _json_safe(row: dict[str, Any]) -> dict[str, Any]:
    return {key: value.isoformat() if hasattr(value, "isoformat") else value for key, value in row.items()}


def _detection_store():
    from tradewatch.tasks import wiring

    _settings()
    return wiring.detection_store()


@detect_app.command("anomalies")
def anomalies(
    status: Status = typer.Option(Status.open, "--status", "-s", help="open, resolved or all."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many of the most recently opened."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table or json."),
) -> None:
    """The anomalies the detection pipeline found, most recently opened first."""
    from sqlalchemy.exc import SQLAlchemyError

    store = _detection_store()
    try:
        rows = store.anomalies(None if status is Status.all else status.value, limit=limit)
    except SQLAlchemyError as exc:
        _fail(f"could not read the anomalies from {store.engine.url.render_as_string(hide_password=True)}: "
              f"{_database_problem(exc)}")
    if fmt is Format.json:
        sys.stdout.write(json.dumps([_json_safe(row) for row in rows], indent=2) + "\n")
        return
    which = "" if status is Status.all else f"{status.value} "
    console.print(anomalies_table(rows, f"{which}anomalies, most recently opened first (at most {limit})",
                                  resolved_at=status is not Status.open))
    if not rows:
        console.print(f"no {which}anomalies")


# -------------------------------------------------------------------------- run


@detect_app.command("run")
def run() -> None:
    """Apply the events past the pipeline's cursor now, as the detect.batch task does
    (alerts of what opens or resolves go to the router; in embedded mode to the log)."""
    settings = _settings()
    from tradewatch.domain.detection.pipeline import PipelineConfigError
    from tradewatch.storage.detection import DetectorStateError
    from tradewatch.tasks.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)  # the task's log lines, to stderr
    from tradewatch.tasks.detection import batch

    try:
        # The task itself, in this process: the same pipeline, cursor and alert hand-over as the
        # workers, so nothing found here is persisted without its alert.
        result = batch(batch_id="tradewatch-detect-run")
    except (PipelineConfigError, DetectorStateError) as exc:
        _fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - shown to the operator
        _fail(f"detection did not run: {type(exc).__name__}: {_database_problem(exc)}")
    table = Table(title=f"detection pipeline {result['pipeline']!r}: one catch-up")
    table.add_column("measure")
    table.add_column("count", justify="right")
    for name in ("events", "observations", "findings", "opened", "escalated", "resolved"):
        table.add_row(name, f"{result[name]:,}")
    console.print(table)
    if not result["events"]:
        console.print("nothing new: the pipeline's cursor is at the end of the trail")


# ----------------------------------------------------------------------- models


def _verdicts(rows: list[dict[str, Any]], configs: list, now_ns: int) -> dict[int, list[tuple[str | None, str | None]]]:
    """Row id -> [(detector name, why it may not use the model at ``now_ns``, or None)].

    Model detectors load the newest model of their model name, so only the newest row of each
    name is judged, by each detector using it, as that detector would (algorithm, features,
    scikit-learn version, samples, age). Other rows get one entry with no detector."""
    from tradewatch.domain.detection.model_detector import ModelDetector
    from tradewatch.storage.models import ModelStore
    from tradewatch.tasks import wiring

    verdicts: dict[int, list[tuple[str | None, str | None]]] = {}
    judged_names: set[str] = set()
    store = ModelStore(wiring.engine())
    for row in rows:  # newest first
        name = row["name"]
        users = [config for config in configs if config.effective_model_name == name]
        if name in judged_names:
            verdicts[row["id"]] = [(None, "superseded by a newer model of this name")]
        elif not users:
            verdicts[row["id"]] = [(None, "no model detector of the pipeline uses this name")]
        else:
            model = store.latest(name)
            verdicts[row["id"]] = []
            for config in users:
                detector = ModelDetector(config)
                detector.use_model(model)
                verdicts[row["id"]].append((config.name, detector.unusable_reason(now_ns)))
        judged_names.add(name)
    return verdicts


def _verdict_text(verdicts: list[tuple[str | None, str | None]]) -> str:
    parts = []
    for detector, reason in verdicts:
        prefix = f"{detector}: " if detector else ""
        parts.append(f"{prefix}yes" if reason is None else f"{prefix}no: {reason}")
    return "; ".join(parts)


@detect_app.command("models")
def models(
    name: Optional[str] = typer.Option(None, "--name", help="Only the models called this."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table or json."),
) -> None:
    """The trained models (newest first), and whether the model detectors may use them now."""
    from sqlalchemy.exc import SQLAlchemyError

    from tradewatch.domain.detection.model_detector import ModelDetectorConfig
    from tradewatch.domain.events.timestamps import format_rfc3339_ns
    from tradewatch.storage.models import ModelStore
    from tradewatch.tasks import wiring

    config, source = _load_config(None)
    configs = [detector for detector in config.detectors if isinstance(detector, ModelDetectorConfig)]
    try:
        rows = ModelStore(wiring.engine()).list(name)
        verdicts = _verdicts(rows, configs, time.time_ns())
    except SQLAlchemyError as exc:
        _fail(f"could not read the trained models: {_database_problem(exc)}")
    if fmt is Format.json:
        body = [{**_json_safe(row), "usable_now": [{"detector": detector, "usable": reason is None, "reason": reason}
                                                   for detector, reason in verdicts[row["id"]]]}
                for row in rows]
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
        return
    table = Table(title=f"trained models, newest first (judged against {source})")
    for column in ("name", "algorithm", "trained at (UTC)", "training window (UTC)", "fills", "threshold",
                   "scikit-learn"):
        table.add_column(column, no_wrap=True)
    table.add_column("usable now", min_width=20)
    for row in rows:
        window = f"{format_rfc3339_ns(row['window_start_ns'])[:16]} to {format_rfc3339_ns(row['window_end_ns'])[:16]}"
        table.add_row(*(escape(cell) for cell in (
            row["name"], row["algorithm"], row["trained_at"].isoformat(timespec="seconds"), window,
            f"{row['samples']:,}", f"{row['threshold']:.4g}", row["library_version"], _verdict_text(verdicts[row["id"]]))))
    console.print(table)
    if not rows:
        expected = ", ".join(f"{c.effective_model_name} ({c.algorithm}, detector {c.name})" for c in configs) or "none"
        console.print(f"no trained model{' named ' + repr(name) if name else ''} yet; the pipeline's model "
                      f"detectors expect: {expected}. detect.retrain (daily, on the beat) trains them from the trail.")
