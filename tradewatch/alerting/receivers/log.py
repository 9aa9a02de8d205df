"""Log receiver: a notification as one structured log line.

The receiver of embedded mode (nothing configured) and a safe default for routes under test:
nothing leaves the process, and the line carries what a person needs to act on it.
"""

from __future__ import annotations

from typing import Any

import structlog

from tradewatch.alerting.notification import Notification
from tradewatch.alerting.receivers.base import DeliveryReceipt

LEVELS = ("debug", "info", "warning", "error", "critical")


class LogReceiver:
    """Writes each notification as one structlog line, event ``alert.notification``, at ``level``."""

    kind = "log"

    def __init__(self, name: str, level: str = "warning") -> None:
        if level not in LEVELS:
            raise ValueError(f"Log receiver {name!r}: level {level!r}; accepted: {', '.join(LEVELS)}")
        self.name = name
        self.level = level

    def send(self, notification: Notification) -> DeliveryReceipt:
        """Log ``notification``; status 0 (there is no service to answer) and no reference."""
        alerts: list[dict[str, Any]] = [
            {
                "alertname": alert.alertname,
                "severity": alert.severity.value,
                "status": alert.status.value,
                "summary": alert.summary,
                "labels": dict(alert.labels),
            }
            for alert in notification.alerts
        ]
        # Looked up per call: a logger cached at import would miss a later structlog.configure.
        logger = structlog.get_logger(__name__)
        getattr(logger, self.level)(
            "alert.notification",
            receiver=self.name,
            status=notification.status.value,
            title=notification.title,
            group_key=notification.group_key,
            dedup_key=notification.dedup_key,
            notification_id=notification.notification_id,
            alerts=alerts,
        )
        return DeliveryReceipt(receiver=self.name, status=0)

    def __repr__(self) -> str:
        return f"LogReceiver(name={self.name!r}, level={self.level!r})"
