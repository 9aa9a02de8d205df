"""Builds the long-lived objects tasks use, from settings, once per process."""

from __future__ import annotations

import threading
import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Iterable

import redis
from sqlalchemy.engine import Engine

from tradewatch.alerting.config import DEFAULT_ROUTES_PATH, AlertingConfig, load_alerting_config
from tradewatch.alerting.delivery import Deliverer
from tradewatch.alerting.dispatcher import Dispatcher
from tradewatch.alerting.receivers.build import build_receivers
from tradewatch.alerting.redis_pacer import RedisChannelPacer
from tradewatch.alerting.state import AlertState
from tradewatch.storage.alert_failures import AlertFailureStore
from tradewatch.storage.compliance import ComplianceStore
from tradewatch.storage.dashboard import DashboardStore

from tradewatch.storage.database import make_engine
from tradewatch.storage.detection import DetectionStore
from tradewatch.storage.migrate import upgrade
from tradewatch.storage.store import AuditStore
from tradewatch.tasks.receipts import ReceiptWriter, redis_url_of
from tradewatch.tasks.settings import get_settings

if TYPE_CHECKING:
    from tradewatch.domain.compliance.engine import ComplianceEngine, EngineConfig
    from tradewatch.domain.compliance.policy import PolicyHistory
    from tradewatch.domain.dashboard.aggregator import RealtimeDashboardAggregator
    from tradewatch.domain.detection.trained_model import TrainedModel
    from tradewatch.storage.models import ModelStore


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


@lru_cache(maxsize=1)
def state_redis() -> redis.Redis:
    url = get_settings().effective_redis_url
    if url is None:
        raise RuntimeError(
            "the alert router keeps its state in Redis: set TRADEWATCH_BROKER_URL to a Redis URL or "
            "TRADEWATCH_REDIS_URL (embedded mode has no alert router; its alerts go to the log)"
        )
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30)


@lru_cache(maxsize=1)
def alert_state() -> AlertState:
    return AlertState(state_redis(), get_settings().broker_key_prefix)


@lru_cache(maxsize=1)
def alerting_config() -> AlertingConfig:
    return load_alerting_config(get_settings().alert_routes_path or DEFAULT_ROUTES_PATH)


def _enqueue_delivery(notification_id: str) -> None:
    from tradewatch.tasks.app import app

    # Only the id crosses the broker: the notification waits in Redis, secrets stay in settings.
    app.send_task("alerts.deliver", args=[notification_id], queue="alerts")


@lru_cache(maxsize=1)
def dispatcher() -> Dispatcher:
    return Dispatcher(alerting_config(), alert_state(), enqueue_delivery=_enqueue_delivery)


@lru_cache(maxsize=1)
def deliverer() -> Deliverer:
    settings = get_settings()
    config = alerting_config()
    receivers, missing = build_receivers(
        config,
        pagerduty_routing_key=settings.pagerduty_routing_key,
        slack_webhook_url=settings.slack_webhook_url,
        slack_bot_token=settings.slack_bot_token,
        pagerduty_url=settings.pagerduty_events_url,
        slack_api_url=settings.slack_api_url,
        pacer=RedisChannelPacer(alert_state(), min_interval_seconds=settings.slack_channel_interval_seconds),
    )
    return Deliverer(alert_state(), receivers, fallback_receiver=config.fallback_receiver,
                     record_failure=AlertFailureStore(engine()).record, missing_receivers=missing)


@lru_cache(maxsize=1)
def detection_store() -> DetectionStore:
    return DetectionStore(engine())


@lru_cache(maxsize=1)
def detection_config():
    """The pipeline configuration: TRADEWATCH_DETECTION_PIPELINE's YAML, else the packaged default.
    A bad file raises PipelineConfigError naming the file, the detector and the key."""
    from tradewatch.domain.detection.pipeline import pipeline_config_from

    return pipeline_config_from(get_settings().detection_pipeline)


@lru_cache(maxsize=1)
def _detection_pipeline():
    from tradewatch.domain.detection.pipeline import DetectionPipeline

    return DetectionPipeline(detection_config())


@lru_cache(maxsize=1)
def compliance_store() -> ComplianceStore:
    return ComplianceStore(engine())


@lru_cache(maxsize=1)
def compliance_policies() -> PolicyHistory:
    """Every version of the compliance policy: TRADEWATCH_COMPLIANCE_POLICY's YAML (one policy, or
    ``policies:`` with a list), else the packaged default_policy.yaml. A bad file raises
    PolicyError naming the file, the key and what is accepted."""
    from importlib import resources

    from tradewatch.domain.compliance.policy import DEFAULT_POLICY_RESOURCE, PolicyHistory

    path = get_settings().compliance_policy
    if path is None:
        text = resources.files("tradewatch.domain.compliance").joinpath(DEFAULT_POLICY_RESOURCE).read_text(encoding="utf-8")
        return PolicyHistory.from_yaml_text(text, DEFAULT_POLICY_RESOURCE)
    return PolicyHistory.from_yaml_text(path.read_text(encoding="utf-8"), str(path))


def compliance_config() -> EngineConfig:
    from tradewatch.domain.compliance.engine import EngineConfig

    return EngineConfig(reorder_window_seconds=get_settings().compliance_reorder_window_seconds)


@lru_cache(maxsize=1)
def compliance_engine() -> ComplianceEngine:
    from tradewatch.domain.compliance.engine import ComplianceEngine

    return ComplianceEngine(compliance_policies(), compliance_config())


@lru_cache(maxsize=1)
def dashboard_store() -> DashboardStore:
    return DashboardStore(engine())


@lru_cache(maxsize=4)
def _dashboard_aggregator(version: str, policy_hash: str) -> RealtimeDashboardAggregator:
    from tradewatch.domain.dashboard.aggregator import RealtimeDashboardAggregator

    return RealtimeDashboardAggregator(compliance_policies().version(version))


def dashboard_aggregator(now_ns: int) -> RealtimeDashboardAggregator:
    """The dashboard aggregator judging risk-limit consumption against the compliance policy in
    force at ``now_ns`` (the limits the desk is held to now: a version dated in the future is not
    shown before it takes effect; before the first version takes effect, the first). One per
    policy version, kept."""
    from tradewatch.domain.compliance.policy import NoPolicyInForce

    policies = compliance_policies()
    try:
        policy = policies.in_force(int(now_ns))
    except NoPolicyInForce:
        policy = policies.policies[0]
    return _dashboard_aggregator(policy.version, policy.content_hash)


_models_lock = threading.Lock()
_models_loaded_at: float | None = None
_model_ids: dict[str, int | None] = {}  # model name -> row id handed to the pipeline (None: there was none)


def changed_models(configs: Iterable[Any], models: ModelStore,
                   handed: dict[str, int | None]) -> dict[str, TrainedModel | None]:
    """The trained models to hand to the model detectors of ``configs``, keyed by model name (each
    config's ``effective_model_name``: the key ``DetectionPipeline.set_models`` takes), only for the
    names whose newest row differs from ``handed`` (model name -> row id handed over before, None
    for "none"; updated in place). One query for the ids; only changed artifacts are read and
    unpickled, so a refresh with nothing retrained costs one small query."""
    names = sorted({config.effective_model_name for config in configs})
    newest = models.latest_ids(names)
    changed = [name for name in names if name not in handed or handed[name] != newest.get(name)]
    artifacts = models.load(newest[name] for name in changed if name in newest)
    result: dict[str, TrainedModel | None] = {}
    for name in changed:
        model_id = newest.get(name)
        if model_id is not None and model_id not in artifacts:
            continue  # gone between the two queries (rows are not deleted): the next refresh retries
        result[name] = None if model_id is None else artifacts[model_id]
        handed[name] = model_id
    return result


def detection_pipeline():
    """The process's DetectionPipeline, its model detectors holding the latest trained models
    (checked against the model store at most every detection_model_refresh_seconds, so a retrain
    reaches every worker within that; only a model whose row changed is loaded)."""
    global _models_loaded_at
    pipeline = _detection_pipeline()
    configs = pipeline.model_configs
    if not configs:
        return pipeline
    refresh = get_settings().detection_model_refresh_seconds
    with _models_lock:
        if _models_loaded_at is None or time.monotonic() - _models_loaded_at >= refresh:
            from tradewatch.storage.models import ModelStore

            changed = changed_models(configs, ModelStore(engine()), _model_ids)
            if changed:
                pipeline.set_models(changed)
            _models_loaded_at = time.monotonic()
    return pipeline


def refresh_models() -> None:
    """Reload the trained models at the next ``detection_pipeline()`` (after a retrain)."""
    global _models_loaded_at
    with _models_lock:
        _models_loaded_at = None


def reset() -> None:
    """Forget process-local connections (after a fork)."""
    global _models_loaded_at
    if engine.cache_info().currsize:
        engine().dispose(close=False)
    for cached in (engine, store, receipts, state_redis, alert_state, alerting_config, dispatcher, deliverer,
                   detection_store, detection_config, _detection_pipeline, compliance_store, compliance_policies,
                   compliance_engine, dashboard_store, _dashboard_aggregator):
        cached.cache_clear()
    with _models_lock:
        _models_loaded_at = None
        _model_ids.clear()  # the new pipeline's detectors hold no model yet
