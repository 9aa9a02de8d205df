"""Settings: the one place tradewatch reads the environment.

Every variable is ``TRADEWATCH_<NAME>``. With neither a database nor a broker URL set,
tradewatch runs embedded (SQLite file, in-memory broker, in-process worker, alerts to the log);
setting only one of them is an error rather than a silent half-embedded mode.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_state_dir() -> Path:
    return Path.home() / ".local" / "state" / "tradewatch"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRADEWATCH_", extra="ignore", frozen=True)

    database_url: str | None = Field(default=None, description="SQLAlchemy URL of PostgreSQL, e.g. postgresql://user@host/db")
    broker_url: str | None = Field(default=None, description="Celery broker URL, e.g. redis://host:6379/0")
    redis_url: str | None = Field(default=None, description="Redis for shared state (dedup, snapshots); defaults to the broker's")
    broker_key_prefix: str = Field(default="", description="prefix of every broker key in Redis, to share one Redis database")
    pagerduty_routing_key: SecretStr | None = None
    slack_webhook_url: SecretStr | None = None
    slack_bot_token: SecretStr | None = None
    timezone: str = "UTC"

    # Alerting: the route tree and receivers (YAML; the shipped default when unset), the bearer
    # token of the Alertmanager webhook (unset: the endpoint is off), the services' base URLs
    # (PagerDuty's EU region, or a local test server), and delivery retries before the fallback.
    alert_routes_path: Path | None = Field(default=None, description="alert routing YAML; default tradewatch/alerting/default_routes.yaml")
    alertmanager_webhook_token: SecretStr | None = None
    pagerduty_events_url: str | None = Field(default=None, description="PagerDuty Events API base URL, e.g. https://events.eu.pagerduty.com")
    slack_api_url: str | None = Field(default=None, description="Slack Web API base URL (bot-token mode)")
    slack_channel_interval_seconds: float = Field(default=1.0, ge=0, description="at most one Slack message per channel per this many seconds")
    alert_delivery_max_retries: int = Field(default=6, ge=0)

    state_dir: Path = Field(default_factory=_default_state_dir, description="embedded database and client spool live here")
    spool_dir: Path | None = Field(default=None, description="AuditClient's durable spool; defaults to <state_dir>/spool")

    # Redis redelivers an unacknowledged message after this many seconds. Short for the ingest,
    # analysis and alerts pools so a killed worker's batches come back within a minute; the
    # reports pool runs with its own, longer, value (TRADEWATCH_VISIBILITY_TIMEOUT_SECONDS=7200).
    visibility_timeout_seconds: int = Field(default=60, ge=5)
    worker_prefetch_multiplier: int = Field(default=1, ge=1)
    ingest_retry_backoff_max_seconds: int = Field(default=30, ge=1)
    # Downstream fan-out after each ingest batch (detectors, compliance). Off for benchmarks.
    ingest_fanout: bool = True

    # Anomaly detection: the pipeline YAML (detectors and thresholds; the packaged
    # tradewatch/domain/detection/default_pipeline.yaml when unset), how much of the trail the
    # daily retrain fits the models on, and how often a worker reloads the latest models.
    detection_pipeline: Path | None = Field(default=None, description="detection pipeline YAML; default: the packaged default_pipeline.yaml")
    detection_training_days: float = Field(default=7.0, gt=0, description="the retrain's window of the trail, in days")
    detection_model_refresh_seconds: float = Field(default=60.0, ge=0, description="a worker reloads trained models at most this often")

    # Compliance: the policy YAML (one policy, or `policies:` with every version; the packaged
    # tradewatch/domain/compliance/default_policy.yaml when unset), how long events are held so
    # that late arrivals are still applied in event-time order, how far back the beat re-check
    # looks, and how long a breach's alert stays open before it is resolved (a breach is a fact:
    # see alerting/converters/compliance.py).
    compliance_policy: Path | None = Field(default=None, description="compliance policy (or policy history) YAML; default: the packaged default_policy.yaml")
    compliance_reorder_window_seconds: float = Field(default=5.0, ge=0, le=300, description="events are applied in event-time order once this much later than the newest seen")
    compliance_recheck_seconds: float = Field(default=3600.0, gt=0, le=7 * 86_400, description="the beat re-check's period, seconds back from now")
    compliance_alert_hold_seconds: float = Field(default=3000.0, ge=0, description="a breach's alert is resolved this long after the breach was recorded")

    # Dashboard: how often beat takes a snapshot (dashboard.snapshot on the dashboard queue) and
    # how long the snapshots are kept in dashboard_snapshots (about 20 KB each, one a minute by default).
    dashboard_snapshot_seconds: float = Field(default=2.0, gt=0, le=3600, description="beat takes a dashboard snapshot this often")
    dashboard_history_seconds: float = Field(default=60.0, ge=0, description="a snapshot is added to dashboard_snapshots at most this often (0: every tick)")
    dashboard_history_retention_seconds: float = Field(default=7 * 86_400.0, gt=0, description="dashboard snapshots older than this are deleted")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"

    # Fault injection for the crash tests: the named checkpoint blocks once (see tasks/faults.py).
    fault_point: Literal["ingest.before_commit", "ingest.after_commit", "alerts.before_ack"] | None = None
    fault_dir: Path | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> "Settings":
        if (self.database_url is None) != (self.broker_url is None):
            missing = "TRADEWATCH_BROKER_URL" if self.broker_url is None else "TRADEWATCH_DATABASE_URL"
            raise ValueError(
                f"{missing} is not set while the other URL is: set both TRADEWATCH_DATABASE_URL and "
                "TRADEWATCH_BROKER_URL for a real deployment, or neither for embedded mode"
            )
        if self.fault_point is not None and self.fault_dir is None:
            raise ValueError("TRADEWATCH_FAULT_POINT needs TRADEWATCH_FAULT_DIR (where the checkpoint reports it was reached)")
        return self

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.state_dir / 'tradewatch.sqlite3'}"

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or "memory://"

    @property
    def effective_redis_url(self) -> str | None:
        """Redis for shared state (alert router): TRADEWATCH_REDIS_URL, else the broker's when it
        is Redis, else None (embedded mode has no shared state)."""
        if self.redis_url:
            return self.redis_url
        broker = self.effective_broker_url
        return broker if broker.startswith(("redis://", "rediss://", "unix://")) else None

    @property
    def effective_spool_dir(self) -> Path:
        return self.spool_dir or self.state_dir / "spool"

    # The HTTP service's /health: a dashboard snapshot older than this is "degraded"; each
    # dependency check gives up after the timeout; the trading broker's API, when set, is probed
    # with a GET (2 s at most).
    health_snapshot_max_age_seconds: float = Field(default=30.0, gt=0, description="/health: the dashboard snapshot is degraded past this age")
    health_check_timeout_seconds: float = Field(default=2.0, gt=0, le=10, description="/health and /ready: a check not answering within this is down")
    broker_api_health_url: str | None = Field(default=None, description="/health: a URL of the trading broker's API to GET (2xx/3xx = ok)")


_configured: Settings | None = None


@lru_cache(maxsize=1)
def _from_environment() -> Settings:
    return Settings()


def get_settings() -> Settings:
    """The process's settings: those passed to ``configure``, else the environment's."""
    return _configured or _from_environment()


def configure(settings: Settings) -> None:
    """Use ``settings`` instead of the environment (the demo forces embedded mode this way).

    Call before anything is built from settings (the Celery app, the database engine).
    """
    global _configured
    _configured = settings
