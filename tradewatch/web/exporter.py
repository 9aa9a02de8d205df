"""``TradewatchCollector``: the trading metrics and the pipeline's health, read on each scrape.

Per scrape: one Redis GET (the snapshot), one pipelined round trip of LLENs on the broker (queue
depths), one SQL statement (the trail's newest row, rejected events), one HGETALL (the alert
router's counters); the worker census is read from its cache, never waited for. The only thing
kept between scrapes is the ``trading_*`` text of the last snapshot document (a function of the
document's bytes alone), so every web process exports the same values.

``TradewatchCollector.exposition(registry)`` is what /metrics serves: ``generate_latest`` of the
registry, except that this collector's ``trading_*`` families are not built as prometheus_client
objects but written as text (``trading_metrics.trading_text``), once per snapshot document, and
appended. ``collect()`` called any other way (``generate_latest(registry)`` alone) still yields
them as Metric objects, the same families.

A source that cannot be read drops only its own series and sets
``tradewatch_metrics_source_up{source}`` to 0 (sources: snapshot, broker, database, workers,
alerting); the scrape itself still answers.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterator

import structlog
from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from tradewatch.web.metrics import AlertingCollector
from tradewatch.web.pipeline import QueueDepths, TrailProbe, WorkerCensus
from tradewatch.web.snapshots import SnapshotDocument, SnapshotReader
from tradewatch.web.trading_metrics import family, trading_families, trading_text

log = structlog.get_logger("tradewatch.web.metrics")

SOURCES = ("snapshot", "broker", "database", "workers", "alerting")


def _single(name: str, value: float) -> Metric:
    metric = family(name)
    metric.add_metric([], value)
    return metric


def snapshot_pipeline_families(document: SnapshotDocument, now_ns: int) -> Iterator[Metric]:
    """tradewatch_snapshot_age_seconds, _lag_seconds, _events_applied_total of one document."""
    written = document.written_at_ns
    if written is not None:
        yield _single("tradewatch_snapshot_age_seconds", max(0.0, (now_ns - written) / 1e9))
    folded, trail = document.last_received_at_ns, document.trail_last_received_at_ns
    if trail is None:
        yield _single("tradewatch_snapshot_lag_seconds", 0.0)  # an empty trail: nothing to be behind
    elif folded is not None:
        yield _single("tradewatch_snapshot_lag_seconds", max(0.0, (trail - folded) / 1e9))
    applied = document.events_applied
    if applied is None:
        applied = document.snapshot.get("events_applied")
    if isinstance(applied, int):
        yield _single("tradewatch_snapshot_events_applied_total", float(applied))


class TradewatchCollector(Collector):
    def __init__(
        self,
        *,
        snapshots: SnapshotReader,
        queue_depths: QueueDepths | None = None,
        trail: TrailProbe | None = None,
        census: WorkerCensus | None = None,
        alert_counters: Callable[[], dict[str, int]] | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.snapshots = snapshots
        self.queue_depths = queue_depths
        self.trail = trail
        self.census = census
        self.alert_counters = alert_counters
        self.clock_ns = clock_ns
        # Set (to a list) only while exposition() runs generate_latest in this thread: collect()
        # then leaves the trading families to it as text.
        self._text_scrape = threading.local()
        self._trading_cache: tuple[bytes, bytes] | None = None  # (document's raw bytes, its text)

    def trading_text(self, document: SnapshotDocument) -> bytes:
        """The ``trading_*`` exposition text of ``document``, rendered once per document."""
        cached = self._trading_cache
        if cached is not None and cached[0] == document.raw:
            return cached[1]
        text = trading_text(document.snapshot)
        self._trading_cache = (document.raw, text)
        return text

    def exposition(self, registry: Collector) -> bytes:
        """``generate_latest(registry)`` (Prometheus text format 0.0.4), with this collector's
        ``trading_*`` families written from the cached text instead of built as Metric objects.
        ``registry`` is the one this collector is registered with."""
        scrape = self._text_scrape
        scrape.trading = []
        try:
            head = generate_latest(registry)
            trading = scrape.trading
        finally:
            del scrape.trading
        return head + b"".join(trading)

    def _read(self, source: str, up: dict[str, int], read: Callable):
        try:
            value = read()
        except Exception as exc:  # noqa: BLE001 - one source down must not fail the scrape
            up[source] = 0
            log.warning("metrics source unreadable", source=source, error_type=type(exc).__name__, error=str(exc)[:300])
            return None
        up[source] = 1
        return value

    def collect(self) -> Iterator[Metric]:
        up: dict[str, int] = {}
        now_ns = self.clock_ns()

        document = self._read("snapshot", up, self.snapshots.read)
        if document is None:
            up["snapshot"] = 0
        else:
            text = getattr(self._text_scrape, "trading", None)
            if text is None:
                yield from trading_families(document.snapshot)
            else:
                text.append(self.trading_text(document))
            yield from snapshot_pipeline_families(document, now_ns)

        depths = None
        if self.queue_depths is not None:
            depths = self._read("broker", up, self.queue_depths.read)
            if depths is not None:
                metric = family("tradewatch_queue_depth")
                for queue, depth in depths.items():
                    metric.add_metric([queue], float(depth))
                yield metric

        if self.trail is not None:
            reading = self._read("database", up, self.trail.read)
            if reading is not None:
                yield _single("tradewatch_rejected_events_total", float(reading.rejected_events))
                lag = reading.ingest_lag_seconds(now_ns, None if depths is None else depths.get("audit"))
                if lag is not None:
                    yield _single("tradewatch_ingest_lag_seconds", lag)

        if self.census is not None:
            census = self.census.cached()
            up["workers"] = int(census is not None and census.error is None)
            if census is not None and census.error is None:
                metric = family("tradewatch_celery_workers")
                for queue in self.census.queues:
                    metric.add_metric([queue], float(census.count(queue)))
                yield metric

        if self.alert_counters is not None:
            counters = self._read("alerting", up, self.alert_counters)
            if counters is not None:
                yield from AlertingCollector(lambda: counters).collect()

        metric = family("tradewatch_metrics_source_up")
        for source in SOURCES:
            if source in up:
                metric.add_metric([source], float(up[source]))
        yield metric


__all__ = ["SOURCES", "TradewatchCollector", "snapshot_pipeline_families"]
