"""Fixtures shared by the alerting tests."""

from __future__ import annotations

import uuid

import pytest
import redis

from tradewatch.alerting.state import AlertState


@pytest.fixture
def state(redis_url):
    """The router's state in the real Redis, under a key prefix of its own (deleted afterwards)."""
    client = redis.Redis.from_url(redis_url)
    prefix = f"tw-test-{uuid.uuid4().hex[:8]}:"
    yield AlertState(client, prefix)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)
    client.close()
