"""Shared fixtures: real PostgreSQL and Redis, each test run isolated by its own database
and its own broker key prefix. A service that cannot be reached fails the run, never skips it.

TRADEWATCH_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres): a
maintenance database used to create and drop the per-run databases.
TRADEWATCH_TEST_REDIS_URL (default redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import os
import uuid

import pytest
import redis
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tradewatch.storage.database import make_engine
from tradewatch.storage.migrate import upgrade
from tradewatch.storage.store import AuditStore

POSTGRES_ADMIN_URL = os.environ.get("TRADEWATCH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TRADEWATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _admin_engine():
    return make_engine(POSTGRES_ADMIN_URL, pool_size=1)


@pytest.fixture(scope="session")
def postgres_admin():
    engine = _admin_engine()
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}. Start it (see README, 'Running the tests').", pytrace=False)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def redis_url():
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc}. Start it (see README, 'Running the tests').", pytrace=False)
    return REDIS_URL


def create_database(admin, prefix: str = "tw_test") -> str:
    """Create a fresh database and return its URL."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(admin, url: str) -> None:
    name = make_url(url).database
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def database_url(postgres_admin):
    url = create_database(postgres_admin)
    yield url
    drop_database(postgres_admin, url)


@pytest.fixture
def pg_store(database_url):
    engine = make_engine(database_url)
    upgrade(engine)
    yield AuditStore(engine)
    engine.dispose()


@pytest.fixture
def sqlite_store(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'trail.sqlite3'}")
    upgrade(engine)
    yield AuditStore(engine)
    engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def store(request):
    """The store on both backends."""
    return request.getfixturevalue("pg_store" if request.param == "postgresql" else "sqlite_store")


@pytest.fixture
def broker_prefix(redis_url):
    """A key prefix of this test's own in the shared Redis; its keys are removed afterwards."""
    prefix = f"tw-test-{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)
    # kombu's binding keys are not prefixed per queue; remove ours by pattern too.
    for key in client.scan_iter(match=f"*{prefix}*", count=1000):
        client.delete(key)
