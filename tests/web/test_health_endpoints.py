"""/health, /ready, /live and /api/snapshot on real Redis and PostgreSQL (and, for "healthy", a real
Celery worker consuming every queue)."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from contextlib import contextmanager

import orjson
import pytest

from tradewatch.tasks.app import QUEUES
from tradewatch.web.app import NO_SNAPSHOT_MESSAGE

from tests.integration.harness import WorkerProcess
from tests.web.conftest import S, SnapshotStream, make_client


@pytest.fixture(scope="module")
def document_stream():
    stream = SnapshotStream(seed=11)
    stream.advance(2_000)
    return stream


@contextmanager
def http_server(status: int):
    """A local HTTP server answering every GET with ``status`` (the trading broker's API)."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v2/account"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def silent_listener():
    """A TCP port that accepts connections and never answers (a hung dependency)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def statuses(body: dict) -> dict[str, str]:
    return {name: component["status"] for name, component in body["components"].items()}


def test_healthy_with_every_queue_consumed_and_a_fresh_snapshot(web_settings, write_snapshot, document_stream, tmp_path):
    write_snapshot(document_stream.document())
    env = {"TRADEWATCH_DATABASE_URL": web_settings.database_url, "TRADEWATCH_BROKER_URL": web_settings.broker_url,
           "TRADEWATCH_BROKER_KEY_PREFIX": web_settings.broker_key_prefix, "TRADEWATCH_STATE_DIR": str(tmp_path / "w")}
    worker = WorkerProcess(env, tmp_path / "worker.log", queues=",".join(QUEUES), pool="solo", name="web-health").start()
    try:
        with http_server(200) as broker_api:
            settings = web_settings.model_copy(update={"broker_api_health_url": broker_api})
            response = make_client(settings).get("/health")
        body = response.json()
        assert response.status_code == 200, body
        assert body["status"] == "healthy", body
        assert statuses(body) == {name: "ok" for name in ("database", "redis", "broker", "workers", "snapshot", "broker_api")}
        workers = body["components"]["workers"]["queues"]
        assert set(workers) == set(QUEUES) and all(len(names) == 1 and names[0].startswith("web-health") for names in workers.values())
        assert all(isinstance(c["latency_ms"], float) for c in body["components"].values())
        assert body["components"]["snapshot"]["age_seconds"] < 30
    finally:
        worker.stop()


def test_degraded_without_workers_or_with_an_old_snapshot_or_a_failing_broker_api(web_settings, write_snapshot,
                                                                                  document_stream):
    write_snapshot(document_stream.document(written_at_ns=time.time_ns() - 120 * S))
    with http_server(500) as broker_api:
        settings = web_settings.model_copy(update={"broker_api_health_url": broker_api})
        started = time.monotonic()
        response = make_client(settings).get("/health")
        elapsed = time.monotonic() - started
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "degraded"
    assert statuses(body) == {"database": "ok", "redis": "ok", "broker": "ok", "workers": "down", "snapshot": "degraded",
                              "broker_api": "down"}
    components = body["components"]
    assert "no Celery worker answered" in components["workers"]["detail"]
    assert components["workers"]["queues"] == {queue: [] for queue in QUEUES}
    assert "120 s old" in components["snapshot"]["detail"] and components["snapshot"]["max_age_seconds"] == 30
    assert components["broker_api"]["http_status"] == 500
    assert elapsed < 3


def test_degraded_when_no_snapshot_was_written_yet(web_settings):
    body = make_client(web_settings).get("/health").json()
    assert body["status"] == "degraded"
    assert body["components"]["snapshot"]["status"] == "degraded"
    assert "no dashboard snapshot yet" in body["components"]["snapshot"]["detail"]


def test_unhealthy_503_with_an_unreachable_database(web_settings, write_snapshot, document_stream):
    write_snapshot(document_stream.document())
    settings = web_settings.model_copy(update={"database_url": "postgresql://tradewatch:s3cret-pw@127.0.0.1:1/trail"})
    client = make_client(settings)
    response = client.get("/health")
    body = response.json()
    assert response.status_code == 503, body
    assert body["status"] == "unhealthy"
    assert body["components"]["database"]["status"] == "down"
    assert body["components"]["redis"]["status"] == "ok"
    assert "s3cret-pw" not in response.text
    ready = client.get("/ready")
    assert ready.status_code == 503 and ready.json()["components"]["database"]["status"] == "down"
    assert client.get("/live").status_code == 200


def test_a_hung_database_is_down_within_the_timeout(web_settings):
    with silent_listener() as port:
        settings = web_settings.model_copy(update={"database_url": f"postgresql://postgres@127.0.0.1:{port}/trail",
                                                   "health_check_timeout_seconds": 1.0})
        client = make_client(settings)
        started = time.monotonic()
        response = client.get("/health")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["components"]["database"]["status"] == "down"
    assert elapsed < 2.5


def test_ready_when_the_schema_is_at_head_and_not_before(web_settings, postgres_admin):
    response = make_client(web_settings).get("/ready")
    body = response.json()
    assert response.status_code == 200, body
    assert body["ready"] is True
    assert body["components"]["database"]["revision"] == body["components"]["database"]["head"]

    from tests.conftest import create_database, drop_database

    bare = create_database(postgres_admin)
    try:
        response = make_client(web_settings.model_copy(update={"database_url": bare})).get("/ready")
        body = response.json()
        assert response.status_code == 503
        assert body["ready"] is False
        assert "tradewatch db upgrade" in body["components"]["database"]["detail"]
    finally:
        drop_database(postgres_admin, bare)


def test_api_snapshot_returns_the_document_or_404(web_settings, write_snapshot, document_stream):
    client = make_client(web_settings)
    response = client.get("/api/snapshot")
    assert response.status_code == 404
    assert response.json() == {"error": NO_SNAPSHOT_MESSAGE}

    document = document_stream.document()
    write_snapshot(document)
    response = client.get("/api/snapshot")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == orjson.loads(orjson.dumps(document))
    assert response.json()["snapshot"]["portfolio_value"] > 0
