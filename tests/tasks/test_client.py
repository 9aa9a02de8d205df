"""AuditClient against a real Redis broker (no worker needed: the messages are read back)."""

from __future__ import annotations

import base64
import json
import time

import pytest
import redis

from tests.factories import market_data
from tests.integration.harness import RedisServer, free_port, wait_until
from tradewatch.domain.events import EventValidationError
from tradewatch.tasks.app import create_app
from tradewatch.tasks.client import AuditClient, BufferFullError, ClientClosedError
from tradewatch.tasks.settings import Settings


def _app(broker_url: str, prefix: str):
    return create_app(Settings(database_url="postgresql://unused/unused", broker_url=broker_url, broker_key_prefix=prefix))


def _messages(broker_url: str, prefix: str) -> list[dict]:
    """The queued Celery messages, oldest first, decoded as a consumer would."""
    client = redis.Redis.from_url(broker_url)
    raw = client.lrange(f"{prefix}audit", 0, -1)[::-1]  # LPUSH/BRPOP: the right end is the oldest
    messages = []
    for item in raw:
        envelope = json.loads(item)
        body = json.loads(base64.b64decode(envelope["body"]))
        messages.append({"headers": envelope["headers"], "args": body[0], "kwargs": body[1]})
    return messages


@pytest.fixture
def client_factory(tmp_path):
    made = []

    def make(app, **options):
        options.setdefault("spool_dir", tmp_path / "spool")
        options.setdefault("flush_interval_seconds", 0.02)
        options.setdefault("confirm_on_close_seconds", 0)  # no worker here writes receipts
        client = AuditClient(app=app, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close(timeout=2)


def test_batches_are_celery_messages_for_audit_ingest_batch(redis_url, broker_prefix, client_factory):
    client = client_factory(_app(redis_url, broker_prefix), batch_size=100)
    events = [market_data(i) for i in range(250)]
    for event in events:
        assert client.emit(event) is True
    assert client.flush(10)
    messages = _messages(redis_url, broker_prefix)
    assert [len(m["args"][0]) for m in messages] == [100, 100, 50]
    assert {m["headers"]["task"] for m in messages} == {"audit.ingest_batch"}
    texts = [text for m in messages for text in m["args"][0]]
    assert texts == [e.model_dump_json(exclude_none=True) for e in events], "order kept, each event encoded once"
    assert len({m["kwargs"]["batch_id"] for m in messages}) == 3
    assert client.stats()["published_events"] == 250


def test_a_dict_is_validated_on_emit_with_an_actionable_error(redis_url, broker_prefix, client_factory):
    client = client_factory(_app(redis_url, broker_prefix))
    good = market_data(1).model_dump(mode="json")
    assert client.emit(good)
    bad = dict(good, occurred_at="yesterday")
    with pytest.raises(EventValidationError, match="occurred_at: got 'yesterday'"):
        client.emit(bad)


def test_broker_down_spools_then_replays_in_order_when_it_returns(tmp_path, client_factory):
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    client = client_factory(_app(url, "spooltest:"), batch_size=50, retry_interval_seconds=0.2)
    events = [market_data(i) for i in range(200)]
    for event in events:
        client.emit(event)
    assert client.flush(20), "flush returns once everything is spooled"
    assert client.stats()["spooled_batches"] == 4
    assert list((tmp_path / "spool").glob("spool-*.log"))

    server = RedisServer(tmp_path / "redis")
    server.port = port
    server.start()
    try:
        more = [market_data(1000 + i) for i in range(30)]
        for event in more:  # newer events must not overtake the spooled ones
            client.emit(event)
        assert client.flush(20)
        wait_until(lambda: not client.stats()["spool_pending"], 30, 0.1, "the spool to drain")
        assert client.stats()["replayed_batches"] >= 4
        texts = [t for m in _messages(server.url, "spooltest:") for t in m["args"][0]]
        assert texts == [e.model_dump_json(exclude_none=True) for e in events + more]
        assert not list((tmp_path / "spool").glob("spool-*.log"))
    finally:
        server.stop()


def _stuck_client(client_factory, **options):
    """A client whose broker is unreachable and whose spool is full: nothing can leave."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    return client_factory(_app(url, "stuck:"), batch_size=10, capacity=20, spool_max_bytes=1,
                          retry_interval_seconds=0.05, **options)


def test_full_buffer_drop_policy_counts_and_returns_false(client_factory):
    client = _stuck_client(client_factory, on_full="drop")
    results = [client.emit(market_data(i)) for i in range(200)]
    assert results.count(False) > 0
    assert client.stats()["dropped"] == results.count(False)
    wait_until(lambda: client.stats()["spool_failures"] >= 1, 10, 0.05, "the flusher to find neither broker nor spool")


def test_full_buffer_raise_policy_raises(client_factory):
    client = _stuck_client(client_factory, on_full="raise")
    with pytest.raises(BufferFullError, match="buffer full"):
        for i in range(200):
            client.emit(market_data(i))


def test_full_buffer_block_policy_waits_then_raises(client_factory):
    client = _stuck_client(client_factory, on_full="block", block_timeout_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(BufferFullError):
        for i in range(200):
            client.emit(market_data(i))
    assert time.monotonic() - started >= 0.3


def test_emit_after_close_is_an_error(redis_url, broker_prefix, client_factory):
    client = client_factory(_app(redis_url, broker_prefix))
    client.emit(market_data(1))
    client.close()
    assert len(_messages(redis_url, broker_prefix)) == 1, "close() drains the buffer"
    with pytest.raises(ClientClosedError):
        client.emit(market_data(2))


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="on_full='sometimes'; accepted: 'block', 'raise', 'drop'"):
        AuditClient(app=_app("redis://127.0.0.1:1/0", "x:"), on_full="sometimes", spool_dir="/tmp/unused")


def test_a_forked_child_gets_its_own_flusher_and_spool(redis_url, broker_prefix, client_factory, tmp_path):
    import os

    client = client_factory(_app(redis_url, broker_prefix), batch_size=10)
    events = [market_data(i) for i in (1, 2, 3)]
    client.emit(events[0])
    client.flush(10)
    pid = os.fork()
    if pid == 0:  # the child: emit through the inherited client object
        code = 1
        try:
            client.emit(events[1])
            code = 0 if client.flush(10) and client._spool.directory.name == f"fork-{os.getpid()}" else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    client.emit(events[2])
    client.flush(10)
    texts = [t for m in _messages(redis_url, broker_prefix) for t in m["args"][0]]
    assert sorted(texts) == sorted(e.model_dump_json(exclude_none=True) for e in events)


def test_receipts_confirm_published_batches(redis_url, broker_prefix, client_factory):
    from tradewatch.tasks.receipts import ReceiptWriter, receipt_key

    client = client_factory(_app(redis_url, broker_prefix), batch_size=10, redeliver_after_seconds=60)
    for i in range(30):
        client.emit(market_data(i))
    client.flush(10)
    assert client.stats()["unconfirmed_batches"] == 3
    writer = ReceiptWriter(redis_url, broker_prefix)
    batch_ids = [m["kwargs"]["batch_id"] for m in _messages(redis_url, broker_prefix)]
    for batch_id in batch_ids[:2]:
        writer.confirm(batch_id)
    wait_until(lambda: client.stats()["confirmed_batches"] == 2, 10, 0.05, "two receipts read")
    assert client.stats()["unconfirmed_batches"] == 1
    assert not redis.Redis.from_url(redis_url).exists(receipt_key(broker_prefix, batch_ids[0])), "read receipts are removed"


def test_a_batch_the_broker_lost_is_published_again(redis_url, broker_prefix, client_factory):
    client = client_factory(_app(redis_url, broker_prefix), batch_size=10, redeliver_after_seconds=0.5)
    events = [market_data(i) for i in range(10)]
    for event in events:
        client.emit(event)
    client.flush(10)
    [original] = _messages(redis_url, broker_prefix)
    # What a worker or broker dying between BRPOP and kombu's unacked bookkeeping leaves behind.
    redis.Redis.from_url(redis_url).delete(f"{broker_prefix}audit")
    wait_until(lambda: client.stats()["redelivered_batches"] >= 1, 10, 0.05, "the batch to be sent again")
    [again] = _messages(redis_url, broker_prefix)[:1]
    assert again["kwargs"]["batch_id"] == original["kwargs"]["batch_id"], "same batch id: ingest absorbs a double"
    assert again["args"] == original["args"]


def test_no_redelivery_while_the_queue_still_holds_a_backlog(redis_url, broker_prefix, client_factory):
    client = client_factory(_app(redis_url, broker_prefix), batch_size=10, redeliver_after_seconds=0.3)
    for i in range(50):
        client.emit(market_data(i))
    client.flush(10)
    time.sleep(1.5)  # unconfirmed for longer than redeliver_after, but still queued: only late
    assert client.stats()["redelivered_batches"] == 0
    assert len(_messages(redis_url, broker_prefix)) == 5


def test_interpreter_exit_drains_the_buffer(redis_url, broker_prefix, tmp_path):
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        from tests.factories import market_data
        from tradewatch.tasks.app import create_app
        from tradewatch.tasks.client import AuditClient
        from tradewatch.tasks.settings import Settings
        app = create_app(Settings(database_url="postgresql://unused/unused", broker_url={redis_url!r},
                                  broker_key_prefix={broker_prefix!r}))
        client = AuditClient(app=app, spool_dir={str(tmp_path / "spool")!r}, flush_interval_seconds=5,
                             confirm_on_close_seconds=0)
        for i in range(2500):
            client.emit(market_data(i))
        # no flush(), no close(): the atexit hook must drain the last partial batch
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert sum(len(m["args"][0]) for m in _messages(redis_url, broker_prefix)) == 2500
