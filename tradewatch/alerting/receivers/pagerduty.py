"""PagerDuty receiver: one Events API v2 event per notification.

A firing notification becomes a ``trigger`` and a resolved one a ``resolve``, both with the
notification's ``dedup_key``, so the incident a group opened is the one its resolve closes, and a
retried trigger updates the open alert instead of paging twice.

The client is ``pagerduty.EventsApiV2Client`` with its own retry loop capped to a single HTTP
attempt: the Celery task that calls ``send`` retries with backoff, and two nested retry loops
would multiply the attempts and hold a worker asleep. Failures are sorted for that task:
network errors, timeouts, 5xx and 429 are transient; any other 4xx is permanent.

The routing key is a secret: it travels only in the request body, and no message, repr or log
line of this module contains it.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pagerduty
import structlog
from pagerduty.api_client import ApiClient
from pydantic import SecretStr

from tradewatch.alerting.model import Alert, AlertStatus, Severity
from tradewatch.alerting.notification import Notification
from tradewatch.alerting.receivers.base import DeliveryReceipt, PermanentDeliveryError, TransientDeliveryError
from tradewatch.alerting.receivers.pacing import parse_retry_after

DEFAULT_BASE_URL = "https://events.pagerduty.com"
ENQUEUE_PATH = "/v2/enqueue"

#: What the Events API v2 accepts in ``payload.severity``.
PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")
#: PagerDuty's documented limits (Events API v2, "Send an Alert Event").
SUMMARY_MAX_CHARS = 1024
#: custom_details carries at most this many alerts, so a large group stays far below
#: PagerDuty's 512 KB event size; the rest are counted in ``alerts_not_shown``.
DETAILED_ALERTS_MAX = 50
#: How much of a service's error body goes into an exception message.
ERROR_TEXT_MAX_CHARS = 500
#: Statuses the library would otherwise retry on its own (429 forever; 500-504 a few times).
_LIBRARY_RETRIED_STATUSES = (429, 500, 502, 503, 504)


def _log():
    # Looked up per call: a logger cached at import would miss a later structlog.configure.
    return structlog.get_logger(__name__)


_LIBRARY_LOG = logging.getLogger(f"{__name__}.client")
_LIBRARY_LOG.setLevel(logging.CRITICAL)


class _EventsClient(pagerduty.EventsApiV2Client):
    """The library's client, also accepting a plain-http base URL on a loopback address (a local
    relay or a test double); the library itself insists on https."""

    @property
    def url(self) -> str:
        return ApiClient.url.fget(self)

    @url.setter
    def url(self, new_base_url: str) -> None:
        if new_base_url.startswith("http://") and _is_loopback(new_base_url):
            self._url = new_base_url
        else:
            ApiClient.url.fset(self, new_base_url)


class PagerDutyReceiver:
    """Sends notifications to one PagerDuty service through its Events API v2 integration.

    ``severity_map`` maps tradewatch severities (critical, warning, info) to PagerDuty's
    (critical, error, warning, info); unmapped severities keep their name. ``component``,
    ``group`` and ``class_`` fix those payload fields; left unset they come from the alerts'
    ``component`` (else ``category``), ``strategy_id`` and ``alertname`` labels.
    ``timeout_seconds`` bounds each HTTP request (connect, write, read).
    """

    kind = "pagerduty"

    def __init__(
        self,
        name: str,
        routing_key: SecretStr,
        *,
        severity_map: Mapping[str, str] | None = None,
        component: str | None = None,
        group: str | None = None,
        class_: str | None = None,
        base_url: str | None = None,
        timeout_seconds: float = 5.0,
    ) -> None:
        if not isinstance(routing_key, SecretStr):
            raise TypeError(f"PagerDuty receiver {name!r}: routing_key must be a pydantic SecretStr")
        if not routing_key.get_secret_value().strip():
            raise ValueError(f"PagerDuty receiver {name!r}: routing_key is empty")
        if not timeout_seconds > 0:
            raise ValueError(f"PagerDuty receiver {name!r}: timeout_seconds must be > 0; got {timeout_seconds!r}")
        self.name = name
        self.severity_map = _severity_map(name, severity_map)
        self.component = component
        self.group = group
        self.class_ = class_
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        _check_base_url(name, self.base_url)
        self.timeout_seconds = float(timeout_seconds)
        self._routing_key = routing_key

        client = _EventsClient(routing_key.get_secret_value(), base_url=self.base_url)
        # Exactly one HTTP attempt per send (our Celery task retries with backoff):
        # - network errors: the library raises once attempts exceed max_network_attempts, so 0
        #   raises on the first failure instead of sleeping and reconnecting;
        # - HTTP statuses: a status listed in `retry` is handed back once
        #   `sum(attempts so far) > max_http_attempts`; with -1 that holds before any retry.
        #   429 must be listed: unlisted, the library retries it without limit.
        client.max_network_attempts = 0
        client.max_http_attempts = -1
        client.retry = {status: 1 for status in _LIBRARY_RETRIED_STATUSES}
        client.timeout = self.timeout_seconds
        # With the cap, the library's only log line left is an ERROR claiming "exceeded maximum
        # number of attempts (-1)" on every 429 and 5xx; the exception raised here says what
        # happened, so that misleading line is kept out of the logs.
        client.log = _LIBRARY_LOG
        self._client = client

    # ------------------------------------------------------------------ sending

    def send(self, notification: Notification) -> DeliveryReceipt:
        """Trigger (firing) or resolve (resolved) the incident of ``notification.dedup_key``."""
        if notification.status is AlertStatus.FIRING:
            event = self.trigger_event(notification)
        else:
            event = {"event_action": "resolve", "dedup_key": notification.dedup_key}
        action = event["event_action"]
        try:
            # The client adds routing_key to the body; ApiClient.request applies the capped retries.
            response = self._client.post(ENQUEUE_PATH, json=event)
        except pagerduty.HttpError as exc:
            # The library raises instead of returning for 401 and for redirects.
            response = exc.response
        except pagerduty.Error as exc:
            raise self._network_error(action, exc.__cause__ or exc) from None
        except httpx2.HTTPError as exc:
            raise self._network_error(action, exc) from None

        status = response.status_code
        if response.is_success:
            reference = _body_dedup_key(response) or notification.dedup_key
            _log().debug("alert.delivery", receiver=self.name, kind=self.kind, action=action, status=status, dedup_key=reference)
            return DeliveryReceipt(receiver=self.name, status=status, reference=reference)

        detail = self._redact(_describe_error(response))
        _log().debug("alert.delivery_failed", receiver=self.name, kind=self.kind, action=action, status=status, detail=detail)
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            hint = f" (retry after {retry_after:g} seconds)" if retry_after is not None else ""
            raise TransientDeliveryError(
                f"PagerDuty receiver {self.name!r}: {action} not accepted, PagerDuty answered {status}: {detail}{hint}",
                status=status,
                retry_after=retry_after,
            )
        raise PermanentDeliveryError(
            f"PagerDuty receiver {self.name!r}: {action} rejected, PagerDuty answered {status}: {detail}",
            status=status,
        )

    def trigger_event(self, notification: Notification) -> dict[str, Any]:
        """The Events API v2 trigger for ``notification`` (without routing_key, which the client
        adds). Public so the payload can be inspected without sending it."""
        firing = notification.firing or notification.alerts
        payload: dict[str, Any] = {
            "summary": _cap(notification.title, SUMMARY_MAX_CHARS),
            "source": _shared_label(notification.alerts, "source") or "tradewatch",
            "severity": self.severity_map[_highest_severity(firing).value],
            "timestamp": min(alert.starts_at for alert in firing).isoformat(),
            "custom_details": _custom_details(notification),
        }
        component = self.component or _shared_label(firing, "component") or _shared_label(firing, "category")
        group = self.group or _shared_label(firing, "strategy_id")
        class_ = self.class_ or _shared_label(firing, "alertname") or ", ".join(sorted({a.alertname for a in firing}))
        for field, value in (("component", component), ("group", group), ("class", class_)):
            if value:
                payload[field] = value
        event: dict[str, Any] = {
            "event_action": "trigger",
            "dedup_key": notification.dedup_key,
            "payload": payload,
            "client": "tradewatch",
        }
        links = _links(notification.alerts)
        if links:
            event["links"] = links
        return event

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    # ------------------------------------------------------------------ helpers

    def _network_error(self, action: str, cause: BaseException) -> TransientDeliveryError:
        what = "timed out" if isinstance(cause, httpx2.TimeoutException) else "network error"
        text = self._redact(str(cause)) or type(cause).__name__
        _log().debug("alert.delivery_failed", receiver=self.name, kind=self.kind, action=action, error=what)
        return TransientDeliveryError(
            f"PagerDuty receiver {self.name!r}: {action} not sent, {what} reaching {self.base_url} "
            f"({type(cause).__name__}: {text})"
        )

    def _redact(self, text: str) -> str:
        return text.replace(self._routing_key.get_secret_value(), f"<routing key of {self.name}>")

    def __repr__(self) -> str:
        return f"PagerDutyReceiver(name={self.name!r}, base_url={self.base_url!r}, routing_key=SecretStr('**********'))"


# ---------------------------------------------------------------------- payload pieces


def _severity_map(name: str, overrides: Mapping[str, str] | None) -> dict[str, str]:
    mapping = {severity.value: severity.value for severity in Severity}
    for ours, theirs in (overrides or {}).items():
        if ours not in mapping:
            raise ValueError(
                f"PagerDuty receiver {name!r}: severity_map key {ours!r} is not a tradewatch severity; "
                f"accepted: {', '.join(mapping)}"
            )
        if theirs not in PAGERDUTY_SEVERITIES:
            raise ValueError(
                f"PagerDuty receiver {name!r}: severity_map[{ours!r}] = {theirs!r} is not a PagerDuty severity; "
                f"accepted: {', '.join(PAGERDUTY_SEVERITIES)}"
            )
        mapping[ours] = theirs
    return mapping


def _highest_severity(alerts: tuple[Alert, ...]) -> Severity:
    order = (Severity.CRITICAL, Severity.WARNING, Severity.INFO)
    return min((alert.severity for alert in alerts), key=order.index, default=Severity.INFO)


def _shared_label(alerts: tuple[Alert, ...], name: str) -> str | None:
    """The value of label ``name`` when every alert has it and they all agree, else None."""
    values = {alert.labels.get(name) for alert in alerts}
    if len(values) == 1:
        (value,) = values
        return value
    return None


def _custom_details(notification: Notification) -> dict[str, Any]:
    shown = notification.alerts[:DETAILED_ALERTS_MAX]
    details: dict[str, Any] = {
        "group_labels": dict(notification.group_labels),
        "firing": len(notification.firing),
        "resolved": len(notification.resolved),
        "notification_id": notification.notification_id,
        "alerts": [
            {
                "status": alert.status.value,
                "labels": dict(alert.labels),
                "annotations": dict(alert.annotations),
                "starts_at": alert.starts_at.isoformat(),
                **({"ends_at": alert.ends_at.isoformat()} if alert.ends_at else {}),
            }
            for alert in shown
        ],
    }
    if len(notification.alerts) > len(shown):
        details["alerts_not_shown"] = len(notification.alerts) - len(shown)
    return details


def _links(alerts: tuple[Alert, ...]) -> list[dict[str, str]]:
    """Each alert's links and runbook_url, in order, the first of each href kept."""
    seen: set[str] = set()
    links: list[dict[str, str]] = []
    for alert in alerts:
        candidates = [(link.href, link.text) for link in alert.links]
        runbook = alert.annotations.get("runbook_url")
        if runbook:
            candidates.append((runbook, f"Runbook: {alert.alertname}"))
        for href, text in candidates:
            if href in seen:
                continue
            seen.add(href)
            links.append({"href": href, "text": text or href})
    return links


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------- responses


def _body_dedup_key(response: httpx2.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("dedup_key") if isinstance(body, dict) else None


def _describe_error(response: httpx2.Response) -> str:
    """PagerDuty's own words: ``status: message: error; error`` from its JSON error body, else
    the start of the body text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and (body.get("message") or body.get("errors") or body.get("status")):
        parts = [str(body[key]) for key in ("status", "message") if body.get(key)]
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            parts.append("; ".join(str(error) for error in errors))
        return _cap(": ".join(parts), ERROR_TEXT_MAX_CHARS)
    text = " ".join(response.text.split())
    return _cap(text, ERROR_TEXT_MAX_CHARS) if text else response.reason_phrase or "no body"


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_base_url(name: str, base_url: str) -> None:
    if base_url.startswith("https://") or (base_url.startswith("http://") and _is_loopback(base_url)):
        return
    raise ValueError(
        f"PagerDuty receiver {name!r}: base_url {base_url!r} must be an https:// URL "
        "(plain http:// is accepted only for a loopback host such as 127.0.0.1)"
    )


__all__ = ["DEFAULT_BASE_URL", "PagerDutyReceiver", "PAGERDUTY_SEVERITIES"]
