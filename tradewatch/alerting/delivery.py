"""Delivering a decided notification: once, retried while the failure is transient, and handed
to the fallback receiver (and recorded) when it cannot be delivered.

The Celery task ``alerts.deliver`` calls ``Deliverer.attempt`` with the notification's id (never
its content or any secret: the notification waits in the outbox in Redis) and turns a
``retry`` outcome into a Celery retry with backoff. A notification marked delivered is never
sent again, so a redelivered task message is a no-op; a worker killed after the service
accepted it but before marking it sends it once more when the message comes back (at least
once: PagerDuty folds the repeat into the same incident by its dedup_key).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Mapping

from tradewatch.alerting.notification import Notification
from tradewatch.alerting.receivers.base import (
    DeliveryError,
    DeliveryReceipt,
    PermanentDeliveryError,
    Receiver,
    TransientDeliveryError,
)
from tradewatch.alerting.state import AlertState


@dataclass(frozen=True)
class DeliveryFailure:
    """A notification that could not be delivered: what the failures table records."""

    notification_id: str
    receiver: str
    group_key: str
    dedup_key: str
    status: str  # the notification's status, firing or resolved
    alertnames: tuple[str, ...]
    error: str
    http_status: int | None
    attempts: int
    failed_at: datetime
    fallback_receiver: str | None
    fallback_delivered: bool


@dataclass(frozen=True)
class DeliveryOutcome:
    outcome: str  # delivered, retry, failed, skipped
    receiver: str | None = None
    detail: str = ""
    retry_after: float | None = None
    receipt: DeliveryReceipt | None = None

    def to_dict(self) -> dict:
        return {"outcome": self.outcome, "receiver": self.receiver, "detail": self.detail}


def backoff_seconds(retries: int, retry_after: float | None, *, base: float = 1.0, cap: float = 30.0,
                    rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff with full jitter, at least the service's Retry-After:
    ``max(retry_after, uniform(0, min(cap, base * 2**retries)))``, never above ``cap`` (which
    stays below the broker's visibility timeout, as no countdown may exceed it)."""
    jittered = rand() * min(cap, base * 2**retries)
    return min(cap, max(retry_after or 0.0, jittered))


class Deliverer:
    def __init__(
        self,
        state: AlertState,
        receivers: Mapping[str, Receiver],
        *,
        fallback_receiver: str | None,
        record_failure: Callable[[DeliveryFailure], None],
        missing_receivers: Mapping[str, str] | None = None,
    ) -> None:
        """``missing_receivers``: receivers the configuration names but that could not be built
        (their secret is not set), each with the reason, so a notification for one fails over
        to the fallback with that reason instead of vanishing."""
        self.state = state
        self.receivers = dict(receivers)
        self.fallback_receiver = fallback_receiver
        self.record_failure = record_failure
        self.missing_receivers = dict(missing_receivers or {})

    def attempt(self, notification_id: str, *, attempts: int, final_attempt: bool, now: datetime) -> DeliveryOutcome:
        if self.state.is_delivered(notification_id):
            return DeliveryOutcome("skipped", detail="already delivered")
        notification = self.state.notification(notification_id)
        if notification is None:
            return DeliveryOutcome("skipped", detail="unknown or expired notification")
        with self.state.lock_notification(notification_id) as lock:
            if not lock.acquired:
                return DeliveryOutcome("skipped", notification.receiver, "another worker is delivering it")
            if self.state.is_delivered(notification_id):
                return DeliveryOutcome("skipped", notification.receiver, "already delivered")
            receiver = self.receivers.get(notification.receiver)
            if receiver is None:
                reason = self.missing_receivers.get(notification.receiver, f"receiver {notification.receiver!r} is not configured")
                return self._fail(notification, PermanentDeliveryError(reason), attempts, now)
            try:
                receipt = receiver.send(notification)
            except TransientDeliveryError as exc:
                if not final_attempt:
                    self.state.touch_outbox(notification_id, now.timestamp())
                    self.state.count(f"delivery_retries_total:{notification.receiver}")
                    return DeliveryOutcome("retry", notification.receiver, str(exc), retry_after=exc.retry_after)
                return self._fail(notification, exc, attempts, now)
            except PermanentDeliveryError as exc:
                return self._fail(notification, exc, attempts, now)
            self.state.mark_delivered(notification_id, "delivered")
            self.state.count(f"deliveries_total:{notification.receiver}:delivered")
            return DeliveryOutcome("delivered", notification.receiver, receipt=receipt)

    def _fail(self, notification: Notification, error: DeliveryError, attempts: int, now: datetime) -> DeliveryOutcome:
        fallback = self.fallback_receiver if self.fallback_receiver != notification.receiver else None
        fallback_delivered = False
        if fallback is not None and fallback in self.receivers:
            try:
                self.receivers[fallback].send(notification)
                fallback_delivered = True
            except DeliveryError:
                fallback_delivered = False
        self.record_failure(DeliveryFailure(
            notification_id=notification.notification_id, receiver=notification.receiver,
            group_key=notification.group_key, dedup_key=notification.dedup_key, status=notification.status.value,
            alertnames=tuple(sorted({a.alertname for a in notification.alerts})), error=str(error),
            http_status=error.status, attempts=attempts, failed_at=now, fallback_receiver=fallback,
            fallback_delivered=fallback_delivered,
        ))
        self.state.mark_delivered(notification.notification_id, "failed")
        self.state.count(f"deliveries_total:{notification.receiver}:failed")
        return DeliveryOutcome("failed", notification.receiver, str(error))
