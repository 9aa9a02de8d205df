"""Builds the long-lived objects tasks use, from settings, once per process."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy.engine import Engine

from tradewatch.storage.database import make_engine
from tradewatch.storage.migrate import upgrade
from tradewatch.storage.store import AuditStore
from tradewatch.tasks.receipts import ReceiptWriter, redis_url_of
from tradewatch.tasks.settings import get_settings


@lru_cache(maxsize=1)
def engine() -> Engine:
    settings = get_settings()
    if settings.embedded:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        built = make_engine(settings.effective_database_url)
        upgrade(built)  # Embedded mode has no separate migrate step.
        return built
    return make_engine(settings.effective_database_url)


@lru_cache(maxsize=1)
def store() -> AuditStore:
    return AuditStore(engine())


@lru_cache(maxsize=1)
def receipts() -> ReceiptWriter | None:
    # Receipts live beside the messages they confirm, on the broker's Redis: that is where the
    # client (which knows only its broker) reads them.
    settings = get_settings()
    url = redis_url_of(settings.effective_broker_url)
    return ReceiptWriter(url, settings.broker_key_prefix) if url else None


def reset() -> None:
    """Forget process-local connections (after a fork)."""
    if engine.cache_info().currsize:
        engine().dispose(close=False)
    engine.cache_clear()
    store.cache_clear()
    receipts.cache_clear()
