"""follow() on PostgreSQL with concurrent writers: sequence values are drawn at INSERT and
become visible at COMMIT, so they commit out of order. A follower must never skip a row that
commits late and never deliver a row twice."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter

import pytest

from sqlalchemy import text

from tradewatch.domain.events.timestamps import ns_to_datetime

from tests.factories import BASE_NS, market_data

RECEIVED = ns_to_datetime(BASE_NS)
# follow()'s watermark is the cluster-wide snapshot xmin: a transaction in some other database
# on the same server (another test run) can hold it back for a while. Wait that long at most.
CATCH_UP_SECONDS = 30


def items(n: int, tag: str) -> list[str]:
    return [market_data(symbol=f"{tag}{k}").model_dump_json() for k in range(n)]


def ids_of(texts: list[str]) -> list[str]:
    return [json.loads(t)["event_id"] for t in texts]


def drain(store, cursor, limit: int = 2):
    """follow() until it returns nothing; the event ids delivered and the final cursor."""
    seen: list[str] = []
    while True:
        got, cursor = store.follow(cursor, limit=limit)
        if not got:
            return seen, cursor
        seen += [str(s.event.event_id) for s in got]


def catch_up(store, cursor, expected: set[str], already: list[str], limit: int = 3):
    """Follow until every expected id has been delivered (or the deadline passes)."""
    seen = list(already)
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while not expected <= set(seen) and time.monotonic() < deadline:
        got, cursor = drain(store, cursor, limit)
        seen += got
        if not got:
            time.sleep(0.02)
    more, cursor = drain(store, cursor, limit)  # anything delivered twice shows up here
    return seen + more, cursor


class HeldWriter(threading.Thread):
    """Ingests a batch in its own transaction and holds it open until released."""

    def __init__(self, store, batch: list[str]) -> None:
        super().__init__(daemon=True)
        self.store, self.batch = store, batch
        self.inserted = threading.Event()
        self.release = threading.Event()
        self.result = None
        self.error: BaseException | None = None

    def _hold(self) -> None:
        self.inserted.set()
        assert self.release.wait(CATCH_UP_SECONDS), "writer was never released"

    def run(self) -> None:
        try:
            self.result = self.store.ingest_items(self.batch, batch_id=uuid.uuid4().hex, received_at=RECEIVED,
                                                  before_commit=self._hold)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
            self.inserted.set()


def test_follow_does_not_skip_a_row_committed_late(pg_store):
    store = pg_store
    early = items(2, "early")
    store.ingest_items(early, batch_id="early", received_at=RECEIVED)

    # Writer A inserts (drawing the lower seq) and holds its transaction open.
    a_batch = items(1, "A")
    writer_a = HeldWriter(store, a_batch)
    writer_a.start()
    assert writer_a.inserted.wait(10) and writer_a.error is None
    # Writer B inserts and commits after A drew its seq.
    b_batch = items(3, "B")
    assert store.ingest_items(b_batch, batch_id="B", received_at=RECEIVED).inserted == 3

    try:
        # Follow until nothing more comes: B's rows must not be delivered past A's position.
        seen, cursor = drain(store, None)
        assert set(ids_of(b_batch)).isdisjoint(seen), "follow() delivered rows past an uncommitted transaction"
        assert set(seen) <= set(ids_of(early))
    finally:
        writer_a.release.set()
        writer_a.join(10)
    assert writer_a.error is None and writer_a.result.inserted == 1

    everything = set(ids_of(early + a_batch + b_batch))
    seen, cursor = catch_up(store, cursor, everything, seen)
    counts = Counter(seen)
    assert set(counts) == everything, f"missing: {everything - set(counts)}"
    assert all(n == 1 for n in counts.values()), f"delivered twice: {[k for k, n in counts.items() if n > 1]}"

    # A drew the lower seq than B's rows: exactly the case a seq-only reader would skip.
    seq = {str(s.event.event_id): s.seq for s in store.events()}
    assert seq[ids_of(a_batch)[0]] < min(seq[i] for i in ids_of(b_batch))
    # Within one transaction rows come in seq order.
    order = [seq[i] for i in seen if i in set(ids_of(b_batch))]
    assert order == sorted(order)


def test_follow_after_a_rolled_back_transaction(pg_store):
    """A writer that fails after inserting must neither block nor appear in the trail."""
    store = pg_store
    before = items(2, "before")
    store.ingest_items(before, batch_id="before", received_at=RECEIVED)

    def fail() -> None:
        raise RuntimeError("worker killed before commit")

    doomed = items(2, "doomed")
    with pytest.raises(RuntimeError):
        store.ingest_items(doomed, batch_id="doomed", received_at=RECEIVED, before_commit=fail)
    after = items(2, "after")
    store.ingest_items(after, batch_id="after", received_at=RECEIVED)
    expected = set(ids_of(before + after))
    seen, _ = catch_up(store, None, expected, [])
    assert Counter(seen) == Counter(ids_of(before + after))


def test_concurrent_writers_and_a_follower_see_every_row_exactly_once(pg_store):
    store = pg_store
    writers, batches_each = 4, 50
    rng = random.Random(20261121)
    plans = [
        [(items(rng.randint(1, 3), f"w{w}b{b}-"), rng.random() * 0.008) for b in range(batches_each)]
        for w in range(writers)
    ]
    expected = {i for plan in plans for batch, _ in plan for i in ids_of(batch)}
    errors: list[BaseException] = []
    writers_done = threading.Event()
    delivered: list[str] = []

    def write(plan) -> None:
        try:
            for batch, pause in plan:
                store.ingest_items(batch, batch_id=uuid.uuid4().hex, received_at=RECEIVED,
                                   before_commit=lambda pause=pause: time.sleep(pause))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def follow() -> None:
        cursor = None
        try:
            deadline = None
            while True:
                got, cursor = store.follow(cursor, limit=7)
                delivered.extend(str(s.event.event_id) for s in got)
                if writers_done.is_set():
                    deadline = deadline or time.monotonic() + CATCH_UP_SECONDS
                    if (len(set(delivered)) >= len(expected) and not got) or time.monotonic() > deadline:
                        return
                if not got:
                    time.sleep(0.001)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    follower = threading.Thread(target=follow, daemon=True)
    threads = [threading.Thread(target=write, args=(plan,), daemon=True) for plan in plans]
    follower.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    writers_done.set()
    follower.join(CATCH_UP_SECONDS + 10)

    assert not errors, errors
    assert store.count() == len(expected)
    counts = Counter(delivered)
    assert set(counts) == expected, f"follower missed {len(expected - set(counts))} rows"
    assert all(n == 1 for n in counts.values()), f"delivered twice: {[k for k, n in counts.items() if n > 1]}"


def test_seq_commits_out_of_order_so_a_seq_only_reader_would_skip(pg_store):
    """The premise of the watermark: with a transaction held open, a later transaction's rows
    are visible while a lower seq is not yet."""
    store = pg_store
    writer_a = HeldWriter(store, items(1, "A"))
    writer_a.start()
    assert writer_a.inserted.wait(10)
    try:
        store.ingest_items(items(1, "B"), batch_id="B", received_at=RECEIVED)
        with store.engine.connect() as conn:
            visible = conn.execute(text("SELECT seq FROM audit_events ORDER BY seq")).scalars().all()
            assert len(visible) == 1 and visible[0] > 1  # seq 1 is A's, not yet committed
        got, _ = store.follow(None, limit=10)
        assert got == []
    finally:
        writer_a.release.set()
        writer_a.join(10)
