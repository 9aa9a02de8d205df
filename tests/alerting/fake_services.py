"""Local stand-ins for PagerDuty's Events API v2 and Slack (incoming webhooks, chat.postMessage).

Each fake is a real HTTP server on 127.0.0.1 (a free port) in a daemon thread, so the real
`pagerduty` and `slack_sdk` clients talk to it over a socket exactly as they would to the
service. The fakes validate requests the way the documented APIs do, answer with the documented
bodies, record every request (parsed body, headers, arrival times), and take a queue of forced
answers (``fail_next``) for rate limits and outages.

    with FakePagerDuty() as pagerduty:
        pagerduty.fail_next(429, retry_after=2)
        ...
        assert pagerduty.events("trigger")[0].json["payload"]["severity"] == "critical"
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import json
import secrets
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from tradewatch.alerting.model import Alert, Link
from tradewatch.alerting.notification import Notification


@dataclass(frozen=True)
class Received:
    """One request as it arrived, and what the fake answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any  # the parsed body (JSON, or a form's fields); None when unreadable
    arrived_monotonic: float  # time.monotonic() at arrival
    arrived_at: float  # time.time() at arrival
    status: int  # the HTTP status answered
    error: str | None = None  # the service's error code or text, if it refused


@dataclass(frozen=True)
class Forced:
    status: int
    retry_after: float | None = None
    error: str | None = None
    body: Any = None
    stall: bool = False  # hold the request unanswered until the fake stops (a timeout test)


@dataclass
class _Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    accepted: bool = False


def _json_answer(status: int, body: Any, *, error: str | None = None, headers: dict[str, str] | None = None) -> _Answer:
    return _Answer(status, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})}, error)


def _text_answer(status: int, text: str, *, error: str | None = None, headers: dict[str, str] | None = None) -> _Answer:
    return _Answer(status, text.encode(), {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}, error)


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (the port was bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class FakeService(ABC):
    """A threaded HTTP server on a free loopback port; subclasses implement ``answer`` and
    ``forced_answer``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._forced: deque[Forced] = deque()
        self._requests: list[Received] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._release = threading.Event()  # set on stop: stalled requests give up

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "FakeService":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                answer = fake._handle("POST", self.path, {k: v for k, v in self.headers.items()}, body)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first (a timeout test)

            def do_GET(self) -> None:  # noqa: N802
                self.send_response(405)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                """Silent: keeps test output clean."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start the fake first"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ scripting and records

    def fail_next(self, status: int, *, retry_after: float | None = None, error: str | None = None,
                  body: Any = None, times: int = 1) -> None:
        """Answer the next ``times`` requests with ``status`` instead of processing them
        (``retry_after`` becomes a Retry-After header; ``error``/``body`` override the body)."""
        with self._lock:
            for _ in range(times):
                self._forced.append(Forced(status, retry_after, error, body))

    def stall_next(self) -> None:
        """Leave the next request unanswered until the fake stops, so the client times out."""
        with self._lock:
            self._forced.append(Forced(0, stall=True))

    @property
    def requests(self) -> list[Received]:
        """Every request received, in arrival order."""
        with self._lock:
            return list(self._requests)

    def _handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> _Answer:
        arrived_monotonic, arrived_at = time.monotonic(), time.time()
        parsed = self.parse_body(headers, body)
        with self._lock:
            forced = self._forced.popleft() if self._forced else None
        if forced is not None and forced.stall:
            self._release.wait(timeout=30)
            forced = None
        answer = self.forced_answer(path, forced) if forced else self.answer(path, headers, parsed)
        with self._lock:
            self._requests.append(
                Received(method, path, headers, body, parsed, arrived_monotonic, arrived_at, answer.status, answer.error)
            )
        return answer

    @staticmethod
    def parse_body(headers: dict[str, str], body: bytes) -> Any:
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        try:
            if content_type.startswith("application/x-www-form-urlencoded"):
                return {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
            return json.loads(body) if body else None
        except (ValueError, UnicodeDecodeError):
            return None

    @abstractmethod
    def answer(self, path: str, headers: dict[str, str], parsed: Any) -> _Answer:
        """The service's answer to a request it was not told to fail."""

    @abstractmethod
    def forced_answer(self, path: str, forced: Forced) -> _Answer:
        """The service's answer when ``fail_next`` scripted one, in its own error format."""


# ====================================================================== PagerDuty


PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")
PAGERDUTY_ACTIONS = ("trigger", "acknowledge", "resolve")
THROTTLE_BODY = {
    "status": "throttle event",
    "message": "Requests for this service are arriving too quickly. Please retry later.",
}


class FakePagerDuty(FakeService):
    """PagerDuty Events API v2: POST /v2/enqueue.

    Valid events get 202 ``{"status": "success", "message": "Event processed", "dedup_key": ...}``
    (a trigger without dedup_key gets a generated one); invalid ones 400 ``{"status": "invalid
    event", "message": "Event object is invalid", "errors": [...]}``. ``incident(dedup_key)``
    tells the state the accepted events left it in.
    """

    def __init__(self) -> None:
        super().__init__()
        self._incidents: dict[str, str] = {}

    def events(self, action: str | None = None) -> list[Received]:
        """The requests to /v2/enqueue (answered however), optionally only one event_action."""
        return [
            r for r in self.requests
            if r.path == "/v2/enqueue" and (action is None or (isinstance(r.json, dict) and r.json.get("event_action") == action))
        ]

    def accepted(self, action: str | None = None) -> list[Received]:
        return [r for r in self.events(action) if r.status == 202]

    def incident(self, dedup_key: str) -> str | None:
        """"triggered", "acknowledged", "resolved", or None if no event for it was accepted."""
        with self._lock:
            return self._incidents.get(dedup_key)

    def answer(self, path: str, headers: dict[str, str], event: Any) -> _Answer:
        if path != "/v2/enqueue":
            return _json_answer(404, {"status": "not found", "message": f"no route {path}"}, error="not found")
        errors = validate_event(event)
        if errors:
            return _json_answer(
                400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}, error="; ".join(errors)
            )
        dedup_key = event.get("dedup_key") or uuid.uuid4().hex
        state = {"trigger": "triggered", "acknowledge": "acknowledged", "resolve": "resolved"}[event["event_action"]]
        with self._lock:
            known = self._incidents.get(dedup_key)
            # A resolve or acknowledge of an unknown or resolved alert is accepted and dropped.
            if event["event_action"] == "trigger" or known not in (None, "resolved"):
                self._incidents[dedup_key] = state
        answer = _json_answer(202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key})
        answer.accepted = True
        return answer

    def forced_answer(self, path: str, forced: Forced) -> _Answer:
        headers = {"Retry-After": f"{forced.retry_after:g}"} if forced.retry_after is not None else {}
        if forced.body is not None:
            body = forced.body
        elif forced.status == 429:
            body = THROTTLE_BODY
        elif forced.status == 400:
            body = {"status": "invalid event", "message": "Event object is invalid", "errors": [forced.error or "forced error"]}
        elif forced.status >= 500:
            return _text_answer(forced.status, forced.error or HTTPStatus(forced.status).phrase, error=forced.error, headers=headers)
        else:
            body = {"status": HTTPStatus(forced.status).phrase, "message": forced.error or HTTPStatus(forced.status).phrase}
        if isinstance(body, (dict, list)):
            return _json_answer(forced.status, body, error=forced.error, headers=headers)
        return _text_answer(forced.status, str(body), error=forced.error, headers=headers)


def validate_event(event: Any) -> list[str]:
    """The Events API v2 checks, with PagerDuty's wording where known."""
    if not isinstance(event, dict):
        return ["Event object must be a JSON object"]
    errors = []
    routing_key = event.get("routing_key")
    if not isinstance(routing_key, str) or not routing_key:
        errors.append("'routing_key' is missing or blank")
    elif len(routing_key) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    action = event.get("event_action")
    if action not in PAGERDUTY_ACTIONS:
        errors.append("'event_action' is missing or invalid (must be one of: 'trigger', 'acknowledge' or 'resolve')")
    dedup_key = event.get("dedup_key")
    if dedup_key is not None and (not isinstance(dedup_key, str) or len(dedup_key) > 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve") and not dedup_key:
        errors.append("'dedup_key' is missing or blank")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            errors.append("'payload' is missing or not an object")
        else:
            summary = payload.get("summary")
            if not isinstance(summary, str) or not summary.strip():
                errors.append("'payload.summary' is missing or blank")
            elif len(summary) > 1024:
                errors.append("'payload.summary' must be at most 1024 characters")
            source = payload.get("source")
            if not isinstance(source, str) or not source.strip():
                errors.append("'payload.source' is missing or blank")
            if payload.get("severity") not in PAGERDUTY_SEVERITIES:
                errors.append("'payload.severity' is invalid (must be one of: 'critical', 'error', 'warning' or 'info')")
            if "custom_details" in payload and not isinstance(payload["custom_details"], (dict, str)):
                errors.append("'payload.custom_details' must be an object")
        links = event.get("links", [])
        if not isinstance(links, list) or any(not isinstance(l, dict) or not l.get("href") for l in links):
            errors.append("'links' must be a list of objects with 'href'")
    return errors


# ====================================================================== Slack


#: The body Slack's incoming webhooks answer for each status (Slack docs, "Handling errors").
WEBHOOK_ERRORS = {
    400: "invalid_payload",
    403: "action_prohibited",
    404: "channel_not_found",
    410: "channel_is_archived",
    429: "rate_limited",
    500: "rollup_error",
}


class FakeSlack(FakeService):
    """Slack incoming webhooks and the Web API's chat.postMessage.

    Webhook: POST to ``webhook_url`` (``/services/T000/B000/<random>``) answers 200 ``ok``; an
    unknown hook 404 ``no_service``; an unreadable body 400 ``invalid_payload``; blocks beyond
    Slack's limits 400 ``invalid_blocks``. chat.postMessage (``api_base_url``): Bearer
    ``bot_token`` or ``invalid_auth``/``not_authed``; a known channel (name, ``#name`` or id) or
    ``channel_not_found``; JSON or form body, as slack_sdk sends it; 200
    ``{"ok": true, "channel", "ts", "message"}``. ``fail_next(429, retry_after=3)`` answers
    429 with Retry-After (``rate_limited`` body for a webhook, ``{"ok": false, "error":
    "ratelimited"}`` for the Web API).
    """

    def __init__(self, channels: dict[str, str] | None = None, webhook_channel: str = "alerts") -> None:
        super().__init__()
        self.channels = dict(channels or {"alerts": "C0123ALERTS", "trading": "C0456TRADING"})
        self.webhook_channel = webhook_channel
        self.webhook_path = f"/services/T000/B000/{secrets.token_hex(12)}"
        self.bot_token = f"xoxb-0000-0000-{secrets.token_hex(12)}"
        self._ts_counter = 0

    @property
    def webhook_url(self) -> str:
        return self.base_url + self.webhook_path

    @property
    def api_base_url(self) -> str:
        return self.base_url + "/api/"

    def messages(self, channel: str | None = None) -> list[Received]:
        """Accepted messages (both endpoints), optionally to one channel id or name."""
        wanted = self.channels.get(channel.lstrip("#"), channel) if channel else None
        out = []
        for request in self.requests:
            if request.status != 200 or request.error:
                continue
            if wanted is None or self._channel_of(request) == wanted:
                out.append(request)
        return out

    def _channel_of(self, request: Received) -> str | None:
        if request.path.startswith("/services/"):
            return self.channels.get(self.webhook_channel, self.webhook_channel)
        target = str((request.json or {}).get("channel", "")).lstrip("#")
        return self.channels.get(target, target)

    # ------------------------------------------------------------------ answers

    def answer(self, path: str, headers: dict[str, str], parsed: Any) -> _Answer:
        if path.startswith("/services/"):
            return self._webhook(path, parsed)
        if path == "/api/chat.postMessage":
            return self._post_message(headers, parsed)
        return _text_answer(404, "not_found", error="not_found")

    def _webhook(self, path: str, body: Any) -> _Answer:
        if path != self.webhook_path:
            return _text_answer(404, "no_service", error="no_service")
        if not isinstance(body, dict):
            return _text_answer(400, "invalid_payload", error="invalid_payload")
        error = _message_error(body)
        if error:
            return _text_answer(400, error, error=error)
        return _Answer(200, b"ok", {"Content-Type": "text/html"})

    def _post_message(self, headers: dict[str, str], body: Any) -> _Answer:
        body = dict(body or {})
        authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        token = authorization.removeprefix("Bearer ").strip() if authorization.startswith("Bearer ") else body.get("token")
        if not token:
            return _json_answer(200, {"ok": False, "error": "not_authed"}, error="not_authed")
        if token != self.bot_token:
            return _json_answer(200, {"ok": False, "error": "invalid_auth"}, error="invalid_auth")
        if isinstance(body.get("blocks"), str):  # a form body carries blocks as a JSON string
            try:
                body["blocks"] = json.loads(body["blocks"])
            except ValueError:
                return _json_answer(200, {"ok": False, "error": "invalid_blocks_format"}, error="invalid_blocks_format")
        target = str(body.get("channel") or "").lstrip("#")
        channel_id = self.channels.get(target) or (target if target in self.channels.values() else None)
        if channel_id is None:
            return _json_answer(200, {"ok": False, "error": "channel_not_found"}, error="channel_not_found")
        error = _message_error(body)
        if error:
            return _json_answer(200, {"ok": False, "error": error}, error=error)
        with self._lock:
            self._ts_counter += 1
            ts = f"1700000000.{100 + self._ts_counter:06d}"
        message = {"type": "message", "subtype": "bot_message", "text": body.get("text", ""), "ts": ts, "bot_id": "B0FAKE"}
        if body.get("blocks"):
            message["blocks"] = body["blocks"]
        return _json_answer(200, {"ok": True, "channel": channel_id, "ts": ts, "message": message})

    def forced_answer(self, path: str, forced: Forced) -> _Answer:
        headers = {"Retry-After": f"{forced.retry_after:g}"} if forced.retry_after is not None else {}
        if path.startswith("/services/"):
            error = forced.error or WEBHOOK_ERRORS.get(forced.status, HTTPStatus(forced.status).phrase)
            return _text_answer(forced.status, str(forced.body) if forced.body is not None else error, error=error, headers=headers)
        if forced.status == 429:
            error = forced.error or "ratelimited"
        elif forced.status >= 500 and forced.error is None:
            # An outage in front of the API answers with a page, not Slack's JSON.
            return _text_answer(forced.status, forced.body or HTTPStatus(forced.status).phrase, error="outage", headers=headers)
        else:
            error = forced.error or "fatal_error"
        body = forced.body if forced.body is not None else {"ok": False, "error": error}
        return _json_answer(forced.status, body, error=error, headers=headers)


def _message_error(body: dict[str, Any]) -> str | None:
    """Slack's checks on a message: some text or blocks, text length, and Block Kit limits."""
    text, blocks = body.get("text"), body.get("blocks")
    if not text and not blocks:
        return "no_text"
    if isinstance(text, str) and len(text) > 40_000:
        return "msg_too_long"
    if blocks is not None and not _blocks_valid(blocks):
        return "invalid_blocks"
    return None


def _text_length(obj: Any) -> int:
    return len(obj.get("text", "")) if isinstance(obj, dict) else 10**9


def _blocks_valid(blocks: Any) -> bool:
    if not isinstance(blocks, list) or len(blocks) > 50:
        return False
    for block in blocks:
        if not isinstance(block, dict):
            return False
        kind = block.get("type")
        if kind == "header":
            text = block.get("text")
            if not isinstance(text, dict) or text.get("type") != "plain_text" or not 1 <= _text_length(text) <= 150:
                return False
        elif kind == "section":
            text, fields = block.get("text"), block.get("fields")
            if text is None and not fields:
                return False
            if text is not None and not 1 <= _text_length(text) <= 3000:
                return False
            if fields is not None and (not isinstance(fields, list) or len(fields) > 10
                                       or any(not 1 <= _text_length(f) <= 2000 for f in fields)):
                return False
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
                return False
            if any(not 1 <= _text_length(e) <= 3000 for e in elements if e.get("type") in ("mrkdwn", "plain_text")):
                return False
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
                return False
        elif kind != "divider":
            return False
    return True


# ====================================================================== sample notifications


STARTS_AT = datetime(2024, 3, 1, 14, 30, tzinfo=timezone.utc)


def make_alert(alertname: str = "StaleMarketData", severity: str = "critical", *, resolved: bool = False,
               annotations: dict[str, str] | None = None, links: tuple[Link, ...] = (), **labels: str) -> Alert:
    """An alert with sensible labels (strategy mm-1, symbol AAPL, source engine-1) unless overridden;
    a label passed as None is left out."""
    all_labels = {"alertname": alertname, "severity": severity, "category": "market_data",
                  "strategy_id": "mm-1", "symbol": "AAPL", "source": "engine-1", **labels}
    alert = Alert(
        labels={k: v for k, v in all_labels.items() if v is not None},
        annotations=annotations if annotations is not None else {
            "summary": f"{alertname} on mm-1", "description": "No quote for 30 seconds.",
        },
        links=links,
        starts_at=STARTS_AT,
    )
    return alert.resolved(STARTS_AT + timedelta(minutes=5)) if resolved else alert


def make_notification(*alerts: Alert, group_key: str = "{}:{strategy_id=\"mm-1\"}",
                      group_labels: dict[str, str] | None = None, receiver: str = "test") -> Notification:
    return Notification(
        notification_id=uuid.uuid4().hex,
        receiver=receiver,
        group_key=group_key,
        group_labels={"strategy_id": "mm-1"} if group_labels is None else group_labels,
        alerts=alerts or (make_alert(),),
    )
