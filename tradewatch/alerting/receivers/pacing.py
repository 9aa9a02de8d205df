"""Pacing outbound messages per channel, and reading a service's Retry-After hint.

Slack accepts about one message per second per channel and answers bursts with 429. Rather than
provoke the 429 and wait for a retry, a receiver asks a ``ChannelPacer`` before each post; the
pacer blocks until one more message may go to that channel. ``LocalChannelPacer`` paces the
threads of one process; a pacer shared by all workers (Redis-backed) implements the same
protocol.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Protocol


class ChannelPacer(Protocol):
    def wait(self, key: str) -> None:
        """Block until one more message may go to the channel ``key`` (at most about one per
        ``min_interval_seconds``), and count that message as sent."""
        ...


class LocalChannelPacer:
    """Spaces messages to the same channel key by at least ``min_interval_seconds`` within one
    process; different keys never wait for each other.

    Each call reserves the next free slot of its key under a lock, then sleeps outside the lock
    until that slot: slot = max(now, previous slot + min_interval_seconds). So N threads posting
    to one channel at once go at now, now + interval, now + 2 * interval, ... and a thread posting
    to another channel is not held up by them. ``clock`` and ``sleep`` are injectable so tests
    can run on a fake clock.
    """

    #: Keys whose last slot is this far in the past are forgotten, so the table stays small.
    _PRUNE_AT_SIZE = 1024

    def __init__(
        self,
        min_interval_seconds: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not (min_interval_seconds >= 0 and math.isfinite(min_interval_seconds)):
            raise ValueError(f"min_interval_seconds must be a finite number >= 0; got {min_interval_seconds!r}")
        self.min_interval_seconds = float(min_interval_seconds)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot: dict[str, float] = {}  # key -> earliest clock() of the next message

    def wait(self, key: str) -> None:
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot.get(key, now))
            self._next_slot[key] = slot + self.min_interval_seconds
            if len(self._next_slot) > self._PRUNE_AT_SIZE:
                self._prune(now)
        delay = slot - now
        if delay > 0:
            self._sleep(delay)

    def _prune(self, now: float) -> None:
        # A key whose next slot has passed would get `now` anyway: forgetting it changes nothing.
        for key in [k for k, next_slot in self._next_slot.items() if next_slot <= now]:
            del self._next_slot[key]

    def __repr__(self) -> str:
        return f"LocalChannelPacer(min_interval_seconds={self.min_interval_seconds})"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from an HTTP ``Retry-After`` header (RFC 9110: delay-seconds or an
    HTTP-date), or None when absent or unreadable. A date in the past gives 0. ``now`` (UTC) is
    only needed for the date form; it defaults to the current time."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        reference = now if now is not None else datetime.now(timezone.utc)
        return max(0.0, (when - reference).total_seconds())
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds
