"""What every benchmark sets up and tears down: its own PostgreSQL database, its own Redis key
prefix, and the worker processes it starts (each in its own session, so one signal reaches the
pool children too)."""

from __future__ import annotations

import os
import signal
import subprocess

import redis
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from tradewatch.storage.database import make_engine
from tradewatch.storage.migrate import upgrade


def create_database(admin: Engine, admin_url: str, name: str) -> str:
    """Create database ``name``, migrate it to head, and return its URL."""
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url, pool_size=1)
    upgrade(engine)
    engine.dispose()
    return url


def drop_database(admin: Engine, name: str) -> None:
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def delete_keys(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"*{prefix}*", count=1000):
        client.delete(key)
    client.close()


def stop_processes(processes: list[subprocess.Popen], grace_seconds: float = 30) -> None:
    """SIGTERM every session (Celery's warm shutdown), then SIGKILL what outlives the grace period."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
