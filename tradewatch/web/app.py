"""The HTTP service: the Alertmanager webhook, /metrics, /health, /ready, /live, /api/snapshot.

``create_app`` takes everything from its caller (the token, where alerts go, the clock): this
package never reads the environment, so the same app runs under the CLI, in tests and in the
deployment, each wiring its own settings.

``POST /api/alertmanager/webhook`` receives Alertmanager's webhook (payload version "4").
Alertmanager retries a notification only when the answer is a 5xx, so the status codes are
chosen for what a retry can fix:

====  =====================================================================================
202   accepted: the alerts were converted and handed to ``submit_alerts``.
401   no bearer token, or not the configured one. Retrying cannot help.
413   the body is over 1 MiB. Lower ``max_alerts`` in Alertmanager's webhook_configs.
422   not a valid v4 payload; every problem is listed with its field path.
503   the webhook is disabled (no token configured), or ``submit_alerts`` failed (the broker is
      down): Alertmanager tries again, so a broker outage does not lose the page.
====  =====================================================================================

With ``observability`` (``Observability``; service.py builds it from settings):

- ``GET /metrics``: Prometheus text format 0.0.4 (gzip when accepted) of ``observability.registry``
  (``observability.exposition`` when set: service.py's writes the trading families from a cached
  text, ``exporter.TradewatchCollector.exposition``), produced in a worker thread (the collectors
  do I/O). Names: ``trading_metrics.EXPORTED_METRICS``.
- ``GET /health``: every component's state and the overall one (``health`` module docstring);
  200 healthy or degraded, 503 unhealthy.
- ``GET /ready``: 200 when the database (schema at head), Redis and the broker answer; else 503.
- ``GET /api/snapshot``: the latest dashboard snapshot document as written (``snapshots``);
  404 when none was written yet, 503 when Redis cannot be read.
"""

from __future__ import annotations

import gzip
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest, gzip_accepted
from pydantic import SecretStr
from starlette.concurrency import run_in_threadpool

from tradewatch.alerting.converters.alertmanager import AlertmanagerConverter, AlertmanagerPayloadError, parse_webhook
from tradewatch.alerting.model import Alert
from tradewatch.web.health import HealthChecker, without_credentials
from tradewatch.web.snapshots import SnapshotReader

WEBHOOK_PATH = "/api/alertmanager/webhook"
MAX_BODY_BYTES = 1024 * 1024
# An oversized body is still read (and thrown away) up to this size before answering 413:
# answering while the client is still sending makes the kernel reset the connection, and the
# client then sees a broken connection instead of the 413 that tells it what to fix.
# Beyond it the connection is simply closed.
DRAIN_LIMIT_BYTES = 16 * 1024 * 1024

DISABLED_MESSAGE = "the Alertmanager webhook is disabled: set TRADEWATCH_ALERTMANAGER_WEBHOOK_TOKEN"
_TOKEN_HINT = (
    "send the header 'Authorization: Bearer <token>' with the token configured as "
    "TRADEWATCH_ALERTMANAGER_WEBHOOK_TOKEN (in Alertmanager: webhook_configs http_config "
    "authorization, type Bearer)"
)

log = structlog.get_logger("tradewatch.web")

SubmitAlerts = Callable[[list[Alert]], int | None]


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


#: The Prometheus text format, always (not OpenMetrics: see trading_metrics._histogram).
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_without_credentials = without_credentials  # broker errors quote URLs

NO_SNAPSHOT_MESSAGE = (
    "no dashboard snapshot yet: the dashboard task (beat schedule, analysis pool) writes one every ~2 s; "
    "check that beat and an analysis worker are running (GET /health)"
)


@dataclass(frozen=True)
class Observability:
    """What /metrics, /health, /ready and /api/snapshot read (service.py builds it from settings)."""

    registry: CollectorRegistry
    health: HealthChecker
    snapshots: SnapshotReader
    #: The /metrics body (text format 0.0.4); None: ``generate_latest(registry)``.
    exposition: Callable[[], bytes] | None = None


def _error(status: int, message: str, *, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def _bearer_credentials(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme in any case), or None."""
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        return None
    return credentials


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than ``limit`` bytes (see ``DRAIN_LIMIT_BYTES``)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > DRAIN_LIMIT_BYTES:
        return None
    body = bytearray()
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received <= limit:
            body += chunk
        elif received > DRAIN_LIMIT_BYTES:
            break
    return bytes(body) if received <= limit else None


def _decode_json(body: bytes) -> Any:
    """Decoded JSON; raises ``AlertmanagerPayloadError`` saying where the text is broken."""
    def no_constants(name: str) -> None:
        raise ValueError(f"{name} is not valid JSON")

    try:
        return json.loads(body.decode("utf-8"), parse_constant=no_constants)
    except UnicodeDecodeError as exc:
        raise AlertmanagerPayloadError([f"body: not UTF-8 text ({exc.reason} at byte {exc.start}); accepted: a JSON object"]) from None
    except json.JSONDecodeError as exc:
        raise AlertmanagerPayloadError(
            [f"body: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); accepted: a JSON object"]
        ) from None
    except (ValueError, RecursionError) as exc:
        raise AlertmanagerPayloadError([f"body: not valid JSON ({exc}); accepted: a JSON object"]) from None


def create_app(
    *,
    submit_alerts: SubmitAlerts,
    webhook_token: SecretStr | None,
    now: Callable[[], datetime] | None = None,
    observability: Observability | None = None,
) -> FastAPI:
    """The tradewatch HTTP app.

    ``submit_alerts`` hands converted alerts to the router (typically by queueing a task) and
    may return how many it accepted; it runs in a worker thread, so it may block. It should
    raise when the alerts were not queued: the webhook then answers 503 and Alertmanager
    retries. ``webhook_token`` is the bearer token Alertmanager must send; None or empty
    disables the webhook. ``now`` (UTC) stands in for times a payload leaves unset.
    ``observability`` adds /metrics, /health, /ready and /api/snapshot (module docstring).
    """
    token = webhook_token.get_secret_value().encode("utf-8") if webhook_token is not None else b""
    clock = now or _utc_now
    converter = AlertmanagerConverter()
    app = FastAPI(title="tradewatch", summary="Monitoring and governance for trading engines")

    @app.get("/live")
    async def live() -> dict[str, str]:
        """The process is up and serving (for a liveness probe; says nothing about dependencies)."""
        return {"status": "alive"}

    app.state.observability = observability
    if observability is not None:
        _observability_routes(app, observability)

    @app.post(WEBHOOK_PATH, status_code=202, response_class=JSONResponse)
    async def alertmanager_webhook(request: Request) -> JSONResponse:
        """Receive Alertmanager's webhook (payload version "4") and submit its alerts."""
        client = request.client.host if request.client else None
        if not token:
            return _error(503, DISABLED_MESSAGE)

        credentials = _bearer_credentials(request.headers.get("authorization"))
        # Compared as bytes in constant time: str comparison would leak the matching prefix's
        # length through timing, and compare_digest refuses non-ASCII str.
        if credentials is None or not hmac.compare_digest(credentials.encode("utf-8"), token):
            reason = "missing bearer token" if credentials is None else "wrong bearer token"
            log.warning("alertmanager webhook refused", reason=reason, client=client)
            header = "Bearer" if credentials is None else 'Bearer error="invalid_token"'
            return _error(401, f"{reason}: {_TOKEN_HINT}", headers={"WWW-Authenticate": header})

        body = await _read_body(request, MAX_BODY_BYTES)
        if body is None:
            log.warning("alertmanager webhook refused", reason="body too large", client=client)
            return _error(
                413,
                f"the body is larger than {MAX_BODY_BYTES} bytes (1 MiB); lower max_alerts in Alertmanager's webhook_configs",
            )

        try:
            payload = parse_webhook(_decode_json(body))
            alerts = converter.to_alerts(payload, now=clock())
        except AlertmanagerPayloadError as exc:
            log.warning("alertmanager webhook refused", reason="invalid payload", problems=list(exc.problems), client=client)
            return _error(422, "not a valid Alertmanager webhook payload (version 4)", problems=list(exc.problems))
        if payload.truncated_alerts:
            log.warning(
                "alertmanager truncated a notification",
                truncated_alerts=payload.truncated_alerts,
                receiver=payload.receiver,
                hint="raise max_alerts in Alertmanager's webhook_configs (the body limit is 1 MiB)",
            )

        try:
            result = await run_in_threadpool(submit_alerts, alerts)
        except Exception as exc:  # noqa: BLE001 - any failure to queue means "try again later"
            log.error(
                "alertmanager webhook could not submit alerts",
                error_type=type(exc).__name__,
                error=_without_credentials(str(exc)),
                alerts=len(alerts),
            )
            return _error(
                503,
                f"could not queue the alerts for routing ({type(exc).__name__}); Alertmanager will retry",
            )
        accepted = result if isinstance(result, int) and not isinstance(result, bool) else len(alerts)
        log.info("alertmanager webhook accepted alerts", accepted=accepted, receiver=payload.receiver, group_key=payload.group_key)
        return JSONResponse({"accepted": accepted}, status_code=202)

    return app


def _observability_routes(app: FastAPI, obs: Observability) -> None:
    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        """Prometheus exposition of every metric in ``EXPORTED_METRICS`` (read on each scrape)."""
        if obs.exposition is not None:
            output = await run_in_threadpool(obs.exposition)
        else:
            output = await run_in_threadpool(generate_latest, obs.registry)
        headers = {}
        if gzip_accepted(request.headers.get("accept-encoding", "")):
            output = gzip.compress(output, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        return Response(output, media_type=METRICS_CONTENT_TYPE, headers=headers)

    @app.get("/health")
    async def health() -> JSONResponse:
        """Each component's state, latency and detail, and the overall state (200, or 503 unhealthy)."""
        report = await obs.health.health()
        return JSONResponse(report, status_code=503 if report["status"] == "unhealthy" else 200)

    @app.get("/ready")
    async def ready() -> JSONResponse:
        """200 when the database (schema at head), Redis and the broker answer; else 503."""
        report = await obs.health.ready()
        return JSONResponse(report, status_code=200 if report["ready"] else 503)

    @app.get("/api/snapshot")
    async def snapshot() -> Response:
        """The latest dashboard snapshot document, as the snapshot task wrote it."""
        try:
            raw = await run_in_threadpool(obs.snapshots.raw)
        except Exception as exc:  # noqa: BLE001 - Redis away
            return _error(503, f"the snapshot store (Redis) cannot be read: {type(exc).__name__}: "
                               f"{without_credentials(str(exc))[:300]}")
        if raw is None:
            return _error(404, NO_SNAPSHOT_MESSAGE)
        return Response(raw, media_type="application/json")
