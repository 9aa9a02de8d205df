"""Slack's pace across every worker: about one message per second per channel.

Each send reserves the channel's next free slot in Redis (``AlertState.reserve_slot``, on Redis's
own clock, so workers on different hosts agree) and sleeps until it. A wait longer than
``max_wait_seconds`` (1 s) is not slept in the task: the delivery is retried after that long
instead (a Celery countdown holds no pool process), so a burst to one Slack channel never keeps
the alerts pool from a page.
"""

from __future__ import annotations

import time
from typing import Callable

from tradewatch.alerting.receivers.base import TransientDeliveryError
from tradewatch.alerting.state import AlertState


class RedisChannelPacer:
    def __init__(self, state: AlertState, *, min_interval_seconds: float = 1.0, max_wait_seconds: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.state = state
        self.min_interval_seconds = min_interval_seconds
        self.max_wait_seconds = max_wait_seconds
        self._sleep = sleep

    def wait(self, key: str) -> None:
        if self.min_interval_seconds <= 0:
            return
        delay = self.state.reserve_slot(f"slack:{key}", self.min_interval_seconds)
        if delay > self.max_wait_seconds:
            raise TransientDeliveryError(
                f"channel busy: the next free slot is {delay:.1f} s away (one message per "
                f"{self.min_interval_seconds:g} s per channel)", retry_after=delay,
            )
        if delay > 0:
            self._sleep(delay)
