"""The alert: what a source says is wrong, in the shape the router, silences and receivers share.

Modelled on Prometheus Alertmanager's alert. ``labels`` identify and route an alert (alertname,
severity, category, strategy_id, symbol, source, and any others a source adds); ``annotations``
are for people (summary, description, runbook_url); ``links`` point at dashboards and runbooks.
Two alerts with the same labels are the same alert: the fingerprint is a hash of the labels only,
so a source that raises the same condition again updates one alert instead of making a second.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

LABEL_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


#: The labels every source should set where they apply; alertname and severity are required.
IDENTITY_LABELS = ("alertname", "severity", "category", "strategy_id", "symbol", "source")


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime; pass an aware datetime (UTC)")
    return value.astimezone(timezone.utc)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
LabelName = Annotated[str, StringConstraints(pattern=LABEL_NAME_PATTERN, max_length=100)]


class Link(BaseModel):
    model_config = ConfigDict(frozen=True)

    href: str = Field(min_length=1, max_length=2000)
    text: str = Field(default="", max_length=200)


class Alert(BaseModel):
    """One alert. ``status`` is firing until a source (or an Alertmanager payload) resolves it;
    a resolved alert carries ``ends_at``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    labels: dict[LabelName, Annotated[str, StringConstraints(min_length=1, max_length=1000)]]
    annotations: dict[LabelName, Annotated[str, StringConstraints(max_length=10_000)]] = Field(default_factory=dict)
    links: tuple[Link, ...] = ()
    status: AlertStatus = AlertStatus.FIRING
    starts_at: UtcDatetime
    ends_at: UtcDatetime | None = None
    generator_url: str | None = None

    @field_validator("labels")
    @classmethod
    def _required_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        missing = [name for name in ("alertname", "severity") if not labels.get(name)]
        if missing:
            raise ValueError(f"labels {', '.join(missing)} required; got labels {sorted(labels)}")
        if labels["severity"] not in Severity.__members__.values():
            accepted = ", ".join(s.value for s in Severity)
            raise ValueError(f"severity label {labels['severity']!r}; accepted: {accepted}")
        return labels

    @model_validator(mode="after")
    def _resolved_has_end(self) -> "Alert":
        if self.status is AlertStatus.RESOLVED and self.ends_at is None:
            raise ValueError("a resolved alert needs ends_at")
        if self.ends_at is not None and self.ends_at < self.starts_at:
            raise ValueError(f"ends_at {self.ends_at.isoformat()} is before starts_at {self.starts_at.isoformat()}")
        return self

    @property
    def fingerprint(self) -> str:
        """sha256 over the sorted labels (``name=value`` joined by NUL), first 16 hex digits."""
        return fingerprint_of(self.labels)

    @property
    def alertname(self) -> str:
        return self.labels["alertname"]

    @property
    def severity(self) -> Severity:
        return Severity(self.labels["severity"])

    @property
    def summary(self) -> str:
        return self.annotations.get("summary") or self.alertname

    def resolved(self, at: datetime) -> "Alert":
        """This alert, resolved at ``at``."""
        return self.model_copy(update={"status": AlertStatus.RESOLVED, "ends_at": _utc(at)})


def fingerprint_of(labels: dict[str, str]) -> str:
    text = "\x00".join(f"{name}={labels[name]}" for name in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
