"""The Alertmanager webhook, served by a real uvicorn server on 127.0.0.1 and called with httpx."""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator

import httpx
import pytest
import structlog
import uvicorn
from pydantic import SecretStr

from tradewatch.alerting.model import Alert, AlertStatus, Link
from tradewatch.web.app import DISABLED_MESSAGE, MAX_BODY_BYTES, WEBHOOK_PATH, create_app

TOKEN = "s3cret-webhook-token-7f2a"
WRONG_TOKEN = "guessed-token-0000"
NOW = datetime(2026, 11, 21, 15, 0, tzinfo=timezone.utc)
GENERATOR_URL = "http://prometheus:9090/graph?g0.expr=trading_broker_connection_status+%21%3D+1&g0.tab=1"


def payload(*, status: str = "firing") -> dict:
    """One firing and one resolved alert, as Alertmanager's webhook_configs posts them."""
    return {
        "receiver": "tradewatch",
        "status": status,
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "BrokerConnectionDown", "instance": "trading:9090", "job": "trading-engine",
                           "severity": "critical"},
                "annotations": {"summary": "Broker connection lost", "description": "Cannot connect to broker API"},
                "startsAt": "2026-11-21T14:31:15.004Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": GENERATOR_URL,
                "fingerprint": "a1b2c3d4e5f60718",
            },
            {
                "status": "resolved",
                "labels": {"alertname": "HighSlippage", "job": "trading-engine", "severity": "warning",
                           "strategy_id": "momentum"},
                "annotations": {"summary": "Elevated slippage detected"},
                "startsAt": "2026-11-21T13:00:00Z",
                "endsAt": "2026-11-21T14:45:00.25Z",
                "generatorURL": "",
                "fingerprint": "0f1e2d3c4b5a6978",
            },
        ],
        "groupLabels": {"job": "trading-engine"},
        "commonLabels": {"job": "trading-engine"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": '{}:{job="trading-engine"}',
        "truncatedAlerts": 0,
    }


EXPECTED_ALERTS = [
    Alert(
        labels={"alertname": "BrokerConnectionDown", "instance": "trading:9090", "job": "trading-engine",
                "severity": "critical", "source": "prometheus"},
        annotations={"summary": "Broker connection lost", "description": "Cannot connect to broker API"},
        links=(Link(href=GENERATOR_URL, text="Prometheus expression"),),
        starts_at=datetime(2026, 11, 21, 14, 31, 15, 4000, tzinfo=timezone.utc),
        generator_url=GENERATOR_URL,
    ),
    Alert(
        labels={"alertname": "HighSlippage", "job": "trading-engine", "severity": "warning", "strategy_id": "momentum",
                "source": "prometheus"},
        annotations={"summary": "Elevated slippage detected"},
        status=AlertStatus.RESOLVED,
        starts_at=datetime(2026, 11, 21, 13, 0, tzinfo=timezone.utc),
        ends_at=datetime(2026, 11, 21, 14, 45, 0, 250000, tzinfo=timezone.utc),
    ),
]


class Recorder:
    """A submit_alerts that records what it was given, optionally failing instead."""

    def __init__(self, error: Exception | None = None, returns: int | None = None) -> None:
        self.calls: list[list[Alert]] = []
        self.error = error
        self.returns = returns

    def __call__(self, alerts: list[Alert]) -> int | None:
        if self.error is not None:
            raise self.error
        self.calls.append(alerts)
        return self.returns


@contextmanager
def serving(app) -> Iterator[str]:
    """Run ``app`` in a uvicorn server on a free 127.0.0.1 port in a thread; yield its base URL.

    The socket is bound here (port 0: the kernel picks a free one) and handed to uvicorn, so no
    other process can take the port between choosing it and serving on it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:  # the run's own timeout (pyproject) bounds this wait
            if not thread.is_alive():
                raise RuntimeError("uvicorn stopped before it started serving; see the log above")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def base_url(recorder) -> Iterator[str]:
    with serving(create_app(submit_alerts=recorder, webhook_token=SecretStr(TOKEN), now=lambda: NOW)) as url:
        yield url


def post(base_url: str, body: dict | bytes | None = None, *, token: str | None = TOKEN, **kwargs) -> httpx.Response:
    headers = kwargs.pop("headers", {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    content = body if isinstance(body, bytes) else json.dumps(payload() if body is None else body).encode()
    headers.setdefault("Content-Type", "application/json")
    return httpx.post(base_url + WEBHOOK_PATH, content=content, headers=headers, **kwargs)


def test_live(base_url):
    response = httpx.get(base_url + "/live")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


def test_a_valid_payload_is_converted_and_submitted(base_url, recorder):
    response = post(base_url)
    assert response.status_code == 202
    assert response.json() == {"accepted": 2}
    assert recorder.calls == [EXPECTED_ALERTS]


def test_the_count_submit_alerts_returns_is_reported():
    recorder = Recorder(returns=1)
    with serving(create_app(submit_alerts=recorder, webhook_token=SecretStr(TOKEN), now=lambda: NOW)) as url:
        response = post(url)
    assert response.status_code == 202
    assert response.json() == {"accepted": 1}


def test_the_bearer_scheme_is_case_insensitive(base_url, recorder):
    response = post(base_url, token=None, headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status_code == 202


def test_without_a_token_the_request_is_unauthorized(base_url, recorder):
    response = post(base_url, token=None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"].startswith("missing bearer token")
    assert recorder.calls == []


@pytest.mark.parametrize("authorization", [f"Bearer {WRONG_TOKEN}", f"Basic {WRONG_TOKEN}", f"Bearer {TOKEN}x", "Bearer"])
def test_a_wrong_token_is_unauthorized_and_never_echoed_or_logged(base_url, recorder, authorization):
    with structlog.testing.capture_logs() as logs:
        response = post(base_url, token=None, headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "error" in response.json()
    assert WRONG_TOKEN not in response.text and TOKEN not in response.text
    assert WRONG_TOKEN not in repr(logs) and TOKEN not in repr(logs)
    assert recorder.calls == []


@pytest.mark.parametrize("token", [None, SecretStr("")])
def test_without_a_configured_token_the_webhook_is_disabled(token):
    recorder = Recorder()
    with serving(create_app(submit_alerts=recorder, webhook_token=token, now=lambda: NOW)) as url:
        response = post(url)
    assert response.status_code == 503
    assert response.json() == {"error": DISABLED_MESSAGE}
    assert DISABLED_MESSAGE == "the Alertmanager webhook is disabled: set TRADEWATCH_ALERTMANAGER_WEBHOOK_TOKEN"
    assert recorder.calls == []


def test_an_invalid_payload_lists_readable_problems(base_url, recorder):
    body = payload()
    body["alerts"][1]["startsAt"] = "yesterday"
    body["alerts"][0]["labels"]["service.name"] = "gateway"
    response = post(base_url, body)
    assert response.status_code == 422
    answer = response.json()
    assert answer["error"] == "not a valid Alertmanager webhook payload (version 4)"
    assert answer["problems"] == [
        'alerts[0].labels: label name "service.name" not accepted; accepted: letters, digits and underscores, '
        "not starting with a digit (at most 100)",
        'alerts[1].startsAt: got "yesterday": not a timestamp; accepted: an RFC 3339 timestamp with a UTC offset, '
        "e.g. 2026-11-21T14:30:00.123Z (0001-01-01T00:00:00Z for unset)",
    ]
    assert "pydantic" not in response.text and "https://errors" not in response.text
    assert recorder.calls == []


def test_version_3_is_refused(base_url, recorder):
    body = payload()
    body["version"] = "3"
    response = post(base_url, body)
    assert response.status_code == 422
    assert response.json()["problems"] == [
        'version: got "3"; accepted: "4", the payload version of Alertmanager\'s webhook_configs'
    ]
    assert recorder.calls == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"version": "4", ', "body: not valid JSON (Expecting property name enclosed in double quotes at line 1 column 18)"),
        (b"\xff\xfe", "body: not UTF-8 text"),
        (b'{"version": NaN}', "body: not valid JSON (NaN is not valid JSON)"),
        (b"[]", "payload: got []; accepted: a JSON object"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused(base_url, recorder, body, problem):
    response = post(base_url, body)
    assert response.status_code == 422
    assert response.json()["problems"][0].startswith(problem)


def oversized_body() -> bytes:
    body = payload()
    body["alerts"][0]["annotations"]["description"] = "x" * (MAX_BODY_BYTES + 1)
    return json.dumps(body).encode()


def test_an_oversized_body_is_refused(base_url, recorder):
    response = post(base_url, oversized_body())
    assert response.status_code == 413
    assert "1 MiB" in response.json()["error"]
    assert recorder.calls == []


def test_an_oversized_chunked_body_is_refused(base_url, recorder):
    body = oversized_body()
    chunks = (body[i:i + 65536] for i in range(0, len(body), 65536))  # no Content-Length: chunked
    response = httpx.post(base_url + WEBHOOK_PATH, content=chunks, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 413
    assert recorder.calls == []


def test_a_body_of_exactly_the_limit_is_read(base_url, recorder):
    body = json.dumps(payload()).encode()
    body += b" " * (MAX_BODY_BYTES - len(body))  # trailing whitespace is valid JSON
    response = post(base_url, body)
    assert response.status_code == 202


def test_a_failed_submit_answers_503_so_alertmanager_retries():
    failing = Recorder(error=ConnectionError("Error 111 connecting to redis://:hunter2@broker:6379/0. Connection refused."))
    with serving(create_app(submit_alerts=failing, webhook_token=SecretStr(TOKEN), now=lambda: NOW)) as url:
        with structlog.testing.capture_logs() as logs:
            response = post(url)
    assert response.status_code == 503
    assert response.json() == {"error": "could not queue the alerts for routing (ConnectionError); Alertmanager will retry"}
    assert "hunter2" not in response.text
    assert "hunter2" not in repr(logs)
    assert any(entry.get("error_type") == "ConnectionError" for entry in logs)
