"""AuditClient: the engine side. ``emit()`` never waits on the network.

    from tradewatch import AuditClient
    client = AuditClient()            # broker from TRADEWATCH_BROKER_URL (or pass app=/broker_url=)
    client.emit(FillEvent(...))       # validates, encodes, appends to a bounded buffer: microseconds
    client.flush()                    # everything emitted so far is published or spooled
    client.close()                    # also runs at interpreter exit

What runs on the caller's thread: the event is validated (a dict is validated into its model;
a model was validated when it was built), encoded to JSON once, and appended to a deque.
What the background flusher does while holding the GIL is kept small: it joins up to
``batch_size`` pre-encoded texts into one message with a single orjson call and publishes it;
the network write itself releases the GIL.

When the broker cannot be reached, batches go to a durable local spool (fsynced before the
flusher moves on) and are replayed, in order and before any newer batch, once it is back.

Published is not stored: kombu's Redis transport can lose a message taken off the queue by a
worker or broker that dies before recording it as unacknowledged. Each published batch is
kept until the worker's receipt says it is committed (tasks/receipts.py) and is published
again when no receipt came within ``redeliver_after_seconds`` (default: twice the broker's
visibility timeout) and the queue has drained. Ingest is idempotent, so the trail holds every
event exactly once. ``close()`` waits up to ``confirm_on_close_seconds`` for the last receipts.

When the buffer is full (the flusher cannot keep up, even to disk), ``on_full`` decides:
``"block"`` (default) waits up to ``block_timeout_seconds`` for room, then raises
BufferFullError; ``"raise"`` raises at once; ``"drop"`` discards the event, counts it in
``stats()["dropped"]`` and returns False. Nothing is ever dropped silently.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import uuid
import weakref
from collections import deque
from pathlib import Path
from typing import Any, Literal

from celery import Celery

from tradewatch.domain.events.models import EVENT_ADAPTER, EventBase
from tradewatch.domain.events.parsing import EventValidationError, describe_validation_error
from tradewatch.tasks.logs import get_logger
from tradewatch.tasks.publisher import BatchPublisher, BrokerUnavailable, encode_batch
from tradewatch.tasks.receipts import ReceiptReader, redis_url_of
from tradewatch.tasks.spool import Spool, SpoolFullError

log = get_logger(__name__)

OnFull = Literal["block", "raise", "drop"]


class BufferFullError(RuntimeError):
    """The client's buffer is full and ``on_full`` did not allow waiting (longer)."""


class ClientClosedError(RuntimeError):
    """emit() after close()."""


class _Sent:
    """A published batch awaiting its receipt."""

    __slots__ = ("batch_id", "body", "sent_at")

    def __init__(self, batch_id: str, body: bytes, sent_at: float) -> None:
        self.batch_id, self.body, self.sent_at = batch_id, body, sent_at


class _Marker:
    """Put in the buffer by flush(): set once everything before it is published or spooled."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_clients: "weakref.WeakSet[AuditClient]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for client in list(_clients):
        client.close()


def _reset_all_after_fork() -> None:
    for client in list(_clients):
        client._after_fork()


# One hook for every client: a per-instance hook would keep each client alive forever.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_all_after_fork)


class AuditClient:
    def __init__(
        self,
        *,
        app: Celery | None = None,
        queue: str = "audit",
        batch_size: int = 1000,
        flush_interval_seconds: float = 0.05,
        capacity: int = 100_000,
        on_full: OnFull = "block",
        block_timeout_seconds: float = 0.5,
        spool_dir: str | Path | None = None,
        spool_max_bytes: int = 10 << 30,
        retry_interval_seconds: float = 1.0,
        receipts: bool = True,
        redeliver_after_seconds: float | None = None,
        max_unconfirmed_bytes: int = 256 << 20,
        confirm_on_close_seconds: float = 2.0,
    ) -> None:
        if on_full not in ("block", "raise", "drop"):
            raise ValueError(f"on_full={on_full!r}; accepted: 'block', 'raise', 'drop'")
        if batch_size < 1 or capacity < batch_size:
            raise ValueError(f"need 1 <= batch_size ({batch_size}) <= capacity ({capacity})")
        if app is None or spool_dir is None:
            from tradewatch.tasks.settings import get_settings

            settings = get_settings()
            if app is None:
                from tradewatch.tasks.app import app as default_app

                app = default_app
            spool_dir = spool_dir or settings.effective_spool_dir
        self.app = app
        self.batch_size = batch_size
        self.flush_interval_seconds = flush_interval_seconds
        self.capacity = capacity
        self.on_full = on_full
        self.block_timeout_seconds = block_timeout_seconds
        self.retry_interval_seconds = retry_interval_seconds
        self._publisher = BatchPublisher(app, queue)
        self._spool = Spool(Path(spool_dir), max_bytes=spool_max_bytes)
        self._buffer: deque[Any] = deque()
        self._wakeup = threading.Event()
        self._space = threading.Condition()
        self._closed = False
        self._broker_down_until = 0.0
        self._stats = {"flushed_events": 0, "published_batches": 0, "published_events": 0, "spooled_batches": 0,
                       "replayed_batches": 0, "dropped": 0, "spool_failures": 0, "confirmed_batches": 0,
                       "redelivered_batches": 0, "untracked_batches": 0}
        # Delivery receipts (tasks/receipts.py): published batches kept until the worker confirms.
        broker_url = app.conf.broker_url or ""
        receipts_url = redis_url_of(broker_url) if receipts else None
        transport = app.conf.broker_transport_options or {}
        self._receipts = (
            ReceiptReader(receipts_url, transport.get("global_keyprefix", ""), queue) if receipts_url else None
        )
        self.redeliver_after_seconds = redeliver_after_seconds or 2.0 * transport.get("visibility_timeout", 60)
        self.max_unconfirmed_bytes = max_unconfirmed_bytes
        self.confirm_on_close_seconds = confirm_on_close_seconds
        self._unconfirmed: deque[_Sent] = deque()
        self._unconfirmed_bytes = 0
        self._next_receipt_check = 0.0
        self._thread = threading.Thread(target=self._run, name="tradewatch-audit-flusher", daemon=True)
        self._thread.start()
        _clients.add(self)

    # ---------------------------------------------------------------- caller side

    def emit(self, event: EventBase | dict) -> bool:
        """Validate and enqueue one event. Returns True, or False when dropped (on_full="drop").

        Raises EventValidationError for an invalid event (naming the field, the value and what
        is accepted), BufferFullError when full under "raise"/"block", ClientClosedError after close().
        """
        if self._closed:
            raise ClientClosedError("AuditClient is closed")
        if not isinstance(event, EventBase):
            event = self._validate(event)
        # Absent optional envelope keys are left out rather than sent as null: ~20% less to encode,
        # queue, decode and store per event.
        text = event.model_dump_json(exclude_none=True)
        buffer = self._buffer
        if len(buffer) >= self.capacity and not self._wait_for_space():
            return False
        buffer.append(text)
        if len(buffer) == self.batch_size:
            self._wakeup.set()
        return True

    @staticmethod
    def _validate(event: Any) -> EventBase:
        from pydantic import ValidationError

        try:
            return EVENT_ADAPTER.validate_python(event)
        except ValidationError as exc:
            raise EventValidationError(describe_validation_error(exc)) from None

    def _wait_for_space(self) -> bool:
        if self.on_full == "drop":
            self._stats["dropped"] += 1
            return False
        if self.on_full == "block":
            deadline = time.monotonic() + self.block_timeout_seconds
            self._wakeup.set()
            with self._space:
                while len(self._buffer) >= self.capacity:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not self._thread.is_alive():
                        break
                    self._space.wait(remaining)
            if len(self._buffer) < self.capacity:
                return True
        raise BufferFullError(
            f"AuditClient buffer full ({self.capacity} events): the broker and the spool cannot keep up; "
            f"on_full={self.on_full!r}"
        )

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Block until everything emitted before this call is published or spooled."""
        marker = _Marker()
        self._buffer.append(marker)
        self._wakeup.set()
        return marker.done.wait(timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Drain the buffer, stop the flusher. Idempotent."""
        if self._closed:
            return
        self.flush(timeout)
        deadline = time.monotonic() + self.confirm_on_close_seconds
        while self._unconfirmed and time.monotonic() < deadline:
            time.sleep(0.05)  # the flusher checks receipts (and re-sends) meanwhile
        if self._unconfirmed:
            log.warning("audit_client.closed_unconfirmed", batches=len(self._unconfirmed))
        self._closed = True
        self._wakeup.set()
        self._thread.join(timeout)
        self._spool.close()
        self._publisher.reset()

    def stats(self) -> dict[str, int]:
        return {**self._stats, "buffered": len(self._buffer), "spool_pending": int(self._spool.has_pending()),
                "unconfirmed_batches": len(self._unconfirmed)}

    def __enter__(self) -> "AuditClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _after_fork(self) -> None:
        # A forked child gets a fresh, empty client state, its own flusher thread and its own
        # spool (a subdirectory named by its pid: the parent's spool stays the parent's); the
        # parent's buffered events remain the parent's to send. A closed client stays closed.
        if self._closed:
            return
        inherited = self._spool
        inherited.close()  # closes this process's copies of the descriptors; the parent keeps its lock
        self._spool = Spool(inherited.directory / f"fork-{os.getpid()}", max_bytes=inherited.max_bytes)
        self._buffer = deque()
        self._unconfirmed = deque()
        self._unconfirmed_bytes = 0
        self._wakeup = threading.Event()
        self._space = threading.Condition()
        self._publisher = BatchPublisher(self.app, self._publisher.queue.name)
        self._thread = threading.Thread(target=self._run, name="tradewatch-audit-flusher", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------- flusher

    def _run(self) -> None:
        while True:
            self._wakeup.wait(self.flush_interval_seconds)
            self._wakeup.clear()
            try:
                self._drain()
                self._check_receipts()
            except Exception:  # noqa: BLE001 - the flusher must survive anything
                log.exception("audit_client.flusher_error")
            if self._closed and not self._buffer:
                return

    def _drain(self) -> None:
        """Send everything buffered, in batches of at most batch_size, then settle markers."""
        buffer = self._buffer
        while buffer:
            batch: list[str] = []
            markers: list[_Marker] = []
            popleft = buffer.popleft
            while buffer and len(batch) < self.batch_size:
                item = popleft()
                if type(item) is str:
                    batch.append(item)
                else:
                    markers.append(item)
                    break  # a marker ends the batch: everything before it goes now
            if batch:
                self._send(batch)
                self._stats["flushed_events"] += len(batch)
                with self._space:
                    self._space.notify_all()
            for marker in markers:
                if self._spool.has_pending():
                    self._replay()
                marker.done.set()
            if len(buffer) < self.batch_size and not markers:
                break  # a partial batch waits for the next tick (bounded by flush_interval)
        if self._spool.has_pending() and time.monotonic() >= self._broker_down_until:
            self._replay()

    def _send(self, batch: list[str]) -> None:
        batch_id = str(uuid.uuid4())
        body = encode_batch(batch, batch_id)
        if not self._spool.has_pending() and time.monotonic() >= self._broker_down_until:
            if self._publish(batch_id, body, len(batch)):
                self._stats["published_batches"] += 1
                self._stats["published_events"] += len(batch)
                return
        # Broker away, or older batches still spooled: keep the order by spooling this one too.
        try:
            self._spool.append(_spool_record(batch_id, body))
            self._stats["spooled_batches"] += 1
        except (OSError, SpoolFullError) as exc:
            # Neither broker nor disk: keep the batch in memory and retry it first next time.
            self._stats["spool_failures"] += 1
            log.error("audit_client.spool_failed", error=str(exc), events=len(batch))
            self._buffer.extendleft(reversed(batch))
            time.sleep(self.retry_interval_seconds)

    def _publish(self, batch_id: str, body: bytes, size: int) -> bool:
        """Publish and track for its receipt; False (broker marked down) when it could not."""
        try:
            self._publisher.publish(body, size)
        except BrokerUnavailable as exc:
            self._broker_down_until = time.monotonic() + self.retry_interval_seconds
            log.warning("audit_client.broker_unavailable", error=str(exc), spool=str(self._spool.directory))
            return False
        if self._receipts is not None:
            self._track(_Sent(batch_id, body, time.monotonic()))
        return True

    def _track(self, sent: _Sent) -> None:
        self._unconfirmed.append(sent)
        self._unconfirmed_bytes += len(sent.body)
        while self._unconfirmed_bytes > self.max_unconfirmed_bytes and len(self._unconfirmed) > 1:
            oldest = self._unconfirmed.popleft()  # bounded memory: stop waiting for the oldest
            self._unconfirmed_bytes -= len(oldest.body)
            self._stats["untracked_batches"] += 1
            log.warning("audit_client.receipt_untracked", batch_id=oldest.batch_id)

    def _replay(self) -> None:
        def publish(record: bytes) -> None:
            batch_id, body = _parse_spool_record(record)
            if not self._publish(batch_id, body, -1):
                raise BrokerUnavailable("broker unavailable during replay")
            self._stats["replayed_batches"] += 1

        try:
            replayed = self._spool.replay(publish)
            if replayed:
                log.info("audit_client.spool_replayed", batches=replayed)
        except BrokerUnavailable:
            self._broker_down_until = time.monotonic() + self.retry_interval_seconds

    def _check_receipts(self) -> None:
        """Drop confirmed batches; send again those unconfirmed for too long once the queue is
        drained (a batch still queued behind a backlog is not lost, only late)."""
        now = time.monotonic()
        if self._receipts is None or not self._unconfirmed or now < self._next_receipt_check:
            return
        self._next_receipt_check = now + 0.25
        due = [sent for sent in self._unconfirmed if now - sent.sent_at >= 0.2][:1000]
        if not due:
            return
        try:
            committed = self._receipts.committed([sent.batch_id for sent in due])
            stale = [sent for sent, done in zip(due, committed) if not done and now - sent.sent_at >= self.redeliver_after_seconds]
            drained = bool(stale) and self._receipts.queue_length() == 0
        except Exception as exc:  # noqa: BLE001 - the receipt store is the broker: try again later
            log.debug("audit_client.receipt_check_failed", error=str(exc))
            return
        confirmed = {sent.batch_id for sent, done in zip(due, committed) if done}
        if confirmed:
            kept = deque(sent for sent in self._unconfirmed if sent.batch_id not in confirmed)
            self._unconfirmed_bytes = sum(len(sent.body) for sent in kept)
            self._unconfirmed = kept
            self._stats["confirmed_batches"] += len(confirmed)
        if drained:
            for sent in stale:
                log.warning("audit_client.redelivering", batch_id=sent.batch_id,
                            unconfirmed_seconds=round(now - sent.sent_at, 1))
                try:
                    self._publisher.publish(sent.body, -1)
                except BrokerUnavailable:
                    self._broker_down_until = time.monotonic() + self.retry_interval_seconds
                    return
                sent.sent_at = time.monotonic()
                self._stats["redelivered_batches"] += 1


def _spool_record(batch_id: str, body: bytes) -> bytes:
    return batch_id.encode() + b"\n" + body


def _parse_spool_record(record: bytes) -> tuple[str, bytes]:
    batch_id, _, body = record.partition(b"\n")
    return batch_id.decode(), body
