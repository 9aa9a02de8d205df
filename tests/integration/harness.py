"""Real processes for the integration tests: Celery workers and a private redis-server; and
``ConsumerWorkers``, a worker running an analysis consumer (detection, compliance) with what the
test reads of it.

Nothing here mocks anything: workers are `celery worker` subprocesses talking to real Redis and
PostgreSQL; the private redis-server is a real server on a free port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis
from sqlalchemy import text

from tradewatch.alerting.state import AlertState
from tradewatch.storage.database import make_engine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.1, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


class WorkerProcess:
    """`celery -A tradewatch.tasks.app worker` as a subprocess in its own session."""

    def __init__(self, env: dict[str, str], log_path: Path, *, queues: str = "audit", pool: str = "prefork",
                 concurrency: int = 1, name: str = "test") -> None:
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.args = [
            sys.executable, "-m", "celery", "-A", "tradewatch.tasks.app", "worker",
            "-Q", queues, "--pool", pool, "--concurrency", str(concurrency),
            "--without-heartbeat", "--without-mingle", "--without-gossip",
            "-n", f"{name}-{os.getpid()}@%h", "--loglevel", "INFO",
        ]
        self.process: subprocess.Popen | None = None
        self._offset = 0

    def start(self, ready_timeout: float = 60) -> "WorkerProcess":
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        wait_until(self._ready, ready_timeout, 0.2, f"worker ready (log {self.log_path})")
        return self

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"worker exited with {self.process.returncode}; log:\n{self.log()[-4000:]}")
        return " ready." in self.log()

    def log(self) -> str:
        return self.log_path.read_bytes()[self._offset :].decode("utf-8", "replace")

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill_main(self) -> None:
        """SIGKILL the main process only."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def kill_all(self) -> None:
        """SIGKILL the main process and its pool children (the whole session)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill_all()


class BeatProcess:
    """`celery -A tradewatch.tasks.app beat` as a subprocess: the real scheduler of the timers."""

    def __init__(self, env: dict[str, str], directory: Path) -> None:
        self.env = {**os.environ, **env}
        self.directory = directory
        self.log_path = directory / "beat.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "BeatProcess":
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tradewatch.tasks.app", "beat", "--loglevel", "INFO",
             "--schedule", str(self.directory / "celerybeat-schedule")],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        wait_until(lambda: "Sending due task" in self.log_path.read_text(errors="replace") or self._exited(), 60, 0.2,
                   "beat to send its first tick")
        return self

    def _exited(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"beat exited: {self.log_path.read_text(errors='replace')[-3000:]}")
        return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


class RedisServer:
    """A private redis-server with AOF fsynced on every write."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--maxmemory-policy", "noeviction",
             "--logfile", str(self.directory / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)

        def _up() -> bool:
            try:
                return bool(client.ping()) and client.info("persistence").get("loading", 0) == 0
            except redis.RedisError:
                return False

        wait_until(_up, 20, 0.05, f"redis-server on port {self.port}")
        return self

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def stored_ids(database_url: str) -> list[str]:
    engine = make_engine(database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            return [str(v) for v in conn.execute(text("SELECT event_id FROM audit_events")).scalars()]
    finally:
        engine.dispose()


def count_rows(database_url: str, table: str = "audit_events") -> int:
    engine = make_engine(database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
    finally:
        engine.dispose()


#: A route tree that sends every alert, grouped by ``{group_by}``, to the log receiver at once.
LOG_ROUTES = """
route:
  receiver: log
  group_by: [{group_by}]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: log
    log: {{level: warning}}
fallback_receiver: log
"""


class ConsumerWorkers:
    """Workers of a deployment (the ``deployment`` fixture) running an analysis consumer with its
    alerts routed to the log receiver (``LOG_ROUTES`` grouped by ``group_by``, written in
    ``directory``); ``start`` returns each with the consumer's store and the router's state as
    the test reads them. ``close`` releases those connections."""

    def __init__(self, deployment, directory: Path, group_by: tuple[str, ...]) -> None:
        self.deployment = deployment
        self.routes = directory / "routes.yaml"
        self.routes.write_text(LOG_ROUTES.format(group_by=", ".join(group_by)))
        self.engines: list = []
        self.clients: list[redis.Redis] = []

    def start(self, store_class, *, queues: str, name: str, env: dict[str, str]):
        """A worker (solo pool) on ``queues`` with ``env`` added to the deployment's; returns
        (worker, ``store_class`` on the deployment's database, the router's AlertState)."""
        self.deployment.extra_env.update({"TRADEWATCH_ALERT_ROUTES_PATH": str(self.routes), **env})
        worker = self.deployment.worker(queues=queues, pool="solo", name=name).start()
        engine = make_engine(self.deployment.database_url, pool_size=1)
        client = redis.Redis.from_url(self.deployment.broker_url)
        self.engines.append(engine)
        self.clients.append(client)
        return worker, store_class(engine), AlertState(client, self.deployment.broker_prefix)

    def close(self) -> None:
        for engine in self.engines:
            engine.dispose()
        for client in self.clients:
            client.close()
