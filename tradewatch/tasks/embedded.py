"""Embedded mode: a real Celery worker in this process, consuming real messages from kombu's
in-memory transport, writing to SQLite. No services needed (``make demo``).

This is not eager mode: messages are serialised, queued, consumed and acknowledged.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from celery import Celery
from celery.worker import WorkController

from tradewatch.tasks.app import QUEUES


class _EmbeddedWorker(WorkController):
    def __init__(self, *args, **kwargs) -> None:
        self.ready = threading.Event()
        super().__init__(*args, **kwargs)

    def on_consumer_ready(self, consumer) -> None:
        super().on_consumer_ready(consumer)
        self.ready.set()


@contextmanager
def embedded_worker(app: Celery, queues: tuple[str, ...] = QUEUES, ready_timeout: float = 30.0) -> Iterator[WorkController]:
    """Run a solo-pool worker in a background thread for the duration of the block."""
    worker = _EmbeddedWorker(
        app=app,
        pool="solo",
        concurrency=1,
        queues=list(queues),
        loglevel="WARNING",
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        hostname="embedded@tradewatch",
    )
    failure: list[BaseException] = []

    def _run() -> None:
        try:
            worker.start()
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            failure.append(exc)
            worker.ready.set()

    thread = threading.Thread(target=_run, name="tradewatch-embedded-worker", daemon=True)
    thread.start()
    try:
        if not worker.ready.wait(ready_timeout) or failure:
            raise RuntimeError(f"embedded worker did not start: {failure[0] if failure else 'timed out'}")
        yield worker
    finally:
        worker.stop(in_sighandler=False)
        thread.join(10)
