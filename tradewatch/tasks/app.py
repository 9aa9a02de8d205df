"""The Celery application, configured from settings.

``celery -A tradewatch.tasks.app worker -Q audit`` runs an ingest worker (see Procfile).
"""

from __future__ import annotations

import gc

from celery import Celery
from kombu import Exchange, Queue
import structlog
from celery.signals import after_setup_logger, task_postrun, task_prerun, worker_init, worker_process_init

from tradewatch.beat_schedule import beat_schedule
from tradewatch.tasks.logs import configure_logging
from tradewatch.tasks.settings import Settings, get_settings

QUEUES = ("audit", "analysis", "alerts", "reports", "dashboard")
TASK_MODULES = ["tradewatch.tasks.ingest", "tradewatch.tasks.alerting", "tradewatch.tasks.analytics",
                "tradewatch.tasks.detection", "tradewatch.tasks.compliance", "tradewatch.tasks.dashboard"]


def create_app(settings: Settings) -> Celery:
    app = Celery("tradewatch", broker=settings.effective_broker_url, include=TASK_MODULES)
    app.conf.update(
        # JSON only: nothing executable ever crosses the broker.
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        # No result backend: ingest results are facts in PostgreSQL, not in Redis.
        result_backend=None,
        task_ignore_result=True,
        # A task's message is acknowledged after it finished; a worker killed mid-task (pool
        # child or main process) leaves it to be redelivered. Every writing task is idempotent.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=settings.worker_prefetch_multiplier,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            # Redis: an unacked message returns to its queue after this many seconds.
            "visibility_timeout": settings.visibility_timeout_seconds,
            # kombu sweeps for expired unacked messages every interval * throttle seconds,
            # 10 * 10 = 100 s by default: a killed worker's batch would wait minutes past the
            # visibility timeout. Sweep every sixth of the timeout instead (10 s for 60 s).
            "unacked_restore_interval": max(1, settings.visibility_timeout_seconds // 6),
            "unacked_restore_throttle": 1,
            "socket_timeout": 5,
            "socket_connect_timeout": 2,
            "retry_on_timeout": True,
            **({"global_keyprefix": settings.broker_key_prefix} if settings.broker_key_prefix else {}),
        },
        task_queues=[Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES],
        task_default_queue="analysis",
        task_routes={
            "audit.*": {"queue": "audit"},
            "alerts.*": {"queue": "alerts"},
            "reports.*": {"queue": "reports"},
            # On-demand analytics reports can take minutes on a year of fills: the reports pool.
            "analytics.report": {"queue": "reports"},
            # Detection follows the trail on the analysis pool; retraining fits models on days of
            # it, longer than the analysis pool's visibility timeout: the reports pool.
            "detect.retrain": {"queue": "reports"},
            "detect.*": {"queue": "analysis"},
            # The compliance monitor follows the trail like the detectors, on the analysis pool.
            # The re-check replays its period from the start of the trading day (the day's
            # notional so far): late in a busy day that can outlast the analysis pool's
            # visibility timeout, so it runs on the reports pool, as retraining does.
            "compliance.recheck": {"queue": "reports"},
            "compliance.*": {"queue": "analysis"},
            # The dashboard snapshot every 2 s on a queue of its own: detectors or compliance
            # catching up on the analysis pool can never delay it.
            "dashboard.*": {"queue": "dashboard"},
        },
        task_create_missing_queues=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=True,  # Flower
        task_send_sent_event=False,
        timezone="UTC",
        enable_utc=True,
        beat_schedule=beat_schedule(settings),
    )
    return app


settings = get_settings()
app = create_app(settings)


@worker_process_init.connect
def _fresh_connections_after_fork(**_kwargs) -> None:
    # Database connections must never be shared between a parent and a forked pool child.
    from tradewatch.tasks import wiring

    wiring.reset()
    _freeze_startup_heap()


@worker_init.connect
def _freeze_main_heap(**_kwargs) -> None:
    _freeze_startup_heap()


def _freeze_startup_heap() -> None:
    # Every ingest batch allocates thousands of short-lived objects, which triggers the cyclic
    # GC's full collections; those would rescan the hundreds of thousands of long-lived objects
    # Celery, SQLAlchemy and pydantic leave after start-up. Move those out of the collector's way.
    gc.collect()
    gc.freeze()


@worker_init.connect
@after_setup_logger.connect
def _structured_logs(**_kwargs) -> None:
    # Only worker processes configure logging globally; an engine importing the client keeps its own.
    configure_logging(settings.log_level, settings.log_format)


@task_prerun.connect
def _bind_task(task_id=None, task=None, **_kwargs) -> None:
    # Every log line written while a task runs carries its id and name.
    structlog.contextvars.bind_contextvars(task_id=task_id, task=task.name if task else None)


@task_postrun.connect
def _unbind_task(**_kwargs) -> None:
    structlog.contextvars.clear_contextvars()
