"""What every receiver implements, and the two ways a delivery fails.

A receiver turns a Notification into one request to its service. It raises
``TransientDeliveryError`` when trying again later may work (network errors, timeouts, 5xx,
429; ``retry_after`` carries the service's Retry-After in seconds when it sent one) and
``PermanentDeliveryError`` when it cannot (400, 401, 403, 404, an invalid payload, a missing
secret). Error messages never contain secrets: routing keys, webhook URLs and tokens are
replaced by the receiver's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tradewatch.alerting.notification import Notification


class DeliveryError(Exception):
    """A notification was not delivered."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TransientDeliveryError(DeliveryError):
    """Worth retrying; ``retry_after`` is the service's own hint in seconds, if it gave one."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help (rejected payload, bad credentials, unknown channel)."""


@dataclass(frozen=True)
class DeliveryReceipt:
    """What the service answered: its status code and, where it gives one, its id for the message
    (PagerDuty's dedup_key, Slack's message ts)."""

    receiver: str
    status: int
    reference: str | None = None


class Receiver(Protocol):
    name: str
    kind: str  # "pagerduty", "slack" or "log"

    def send(self, notification: Notification) -> DeliveryReceipt:
        """Deliver once (no retry loop of its own beyond the client's capped one)."""
        ...
