"""A notification: what one receiver is sent for one alert group at one moment."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict, Field

from tradewatch.alerting.model import Alert, AlertStatus, Severity


class Notification(BaseModel):
    """The alerts of one group (firing and newly resolved) for one receiver.

    ``group_key`` identifies the group for its whole life (receiver, route and the values of
    the route's group_by labels); ``dedup_key`` is derived from it, so a PagerDuty incident
    opened by a trigger is closed by the resolve of the same group. ``notification_id`` is
    unique per send, so a receiver can tell a retried delivery from a new one.
    """

    model_config = ConfigDict(frozen=True)

    notification_id: str
    receiver: str
    group_key: str
    group_labels: dict[str, str] = Field(default_factory=dict)
    alerts: tuple[Alert, ...]

    @property
    def status(self) -> AlertStatus:
        """firing while any alert in it fires; resolved once all have."""
        if any(alert.status is AlertStatus.FIRING for alert in self.alerts):
            return AlertStatus.FIRING
        return AlertStatus.RESOLVED

    @property
    def firing(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.status is AlertStatus.FIRING)

    @property
    def resolved(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.status is AlertStatus.RESOLVED)

    @property
    def severity(self) -> Severity:
        """The highest severity among the alerts (critical > warning > info)."""
        order = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
        return min((a.severity for a in self.alerts), key=order.__getitem__, default=Severity.INFO)

    @property
    def dedup_key(self) -> str:
        """Stable per group (see ``dedup_key_of``)."""
        return dedup_key_of(self.group_key)

    @property
    def title(self) -> str:
        """One line for a person: ``[FIRING:2] StaleFeed (strategy_id=mm-1)``."""
        alerts = self.firing or self.alerts
        names = sorted({a.alertname for a in alerts})
        labels = ", ".join(f"{k}={v}" for k, v in sorted(self.group_labels.items()) if k != "alertname")
        count = len(self.firing) if self.firing else len(self.resolved)
        head = f"[{self.status.value.upper()}:{count}] {', '.join(names)}"
        return f"{head} ({labels})" if labels else head


def dedup_key_of(group_key: str) -> str:
    """sha256 of the group key, 32 hex digits (PagerDuty allows 255 characters): the same for
    every notification of a group, so a resolve closes the incident its trigger opened."""
    return hashlib.sha256(group_key.encode()).hexdigest()[:32]
