"""LocalChannelPacer on a fake clock (no real sleeping), and the Retry-After parser."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from tradewatch.alerting.receivers.pacing import ChannelPacer, LocalChannelPacer, parse_retry_after


class FakeClock:
    """A monotonic clock that moves only when someone sleeps on it (or the test advances it)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _pacer(clock: FakeClock, interval: float = 1.0) -> LocalChannelPacer:
    return LocalChannelPacer(interval, clock=clock, sleep=clock.sleep)


def test_it_satisfies_the_protocol():
    pacer: ChannelPacer = LocalChannelPacer()
    assert callable(pacer.wait)


def test_two_messages_to_one_channel_are_spaced_by_the_interval():
    clock = FakeClock()
    pacer = _pacer(clock)
    pacer.wait("alerts")
    first_sent_at = clock()
    pacer.wait("alerts")
    second_sent_at = clock()
    assert second_sent_at - first_sent_at >= 1.0
    assert clock.sleeps == [1.0]


def test_only_the_rest_of_the_interval_is_waited():
    clock = FakeClock()
    pacer = _pacer(clock, interval=1.5)
    pacer.wait("alerts")
    clock.advance(1.0)
    pacer.wait("alerts")
    assert clock.sleeps == [pytest.approx(0.5)]


def test_no_wait_once_the_interval_has_passed():
    clock = FakeClock()
    pacer = _pacer(clock)
    pacer.wait("alerts")
    clock.advance(1.0)
    pacer.wait("alerts")
    clock.advance(5.0)
    pacer.wait("alerts")
    assert clock.sleeps == []


def test_different_channels_do_not_wait_for_each_other():
    clock = FakeClock()
    pacer = _pacer(clock)
    pacer.wait("alerts")
    pacer.wait("trading")
    pacer.wait("webhook-0123456789abcdef")
    assert clock.sleeps == []
    pacer.wait("alerts")
    assert clock.sleeps == [1.0]


def test_concurrent_senders_get_consecutive_slots_per_channel():
    """Eight threads post to one channel at the same instant (the clock does not move, so the
    slots must come from reservation, not from timing): they are given the delays 0..7 seconds;
    a ninth on another channel goes at once."""
    clock = FakeClock()
    recorded: list[tuple[str, float]] = []
    lock = threading.Lock()

    def sleep(seconds: float) -> None:  # records who waited how long; time stays put
        with lock:
            recorded.append((threading.current_thread().name, seconds))

    pacer = LocalChannelPacer(1.0, clock=clock, sleep=sleep)
    start = threading.Barrier(9)

    def post(key: str) -> None:
        start.wait()
        pacer.wait(key)

    threads = [threading.Thread(target=post, args=("alerts",), name=f"alerts-{i}") for i in range(8)]
    threads.append(threading.Thread(target=post, args=("trading",), name="trading"))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)

    assert sorted(seconds for _, seconds in recorded) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert all(name.startswith("alerts-") for name, _ in recorded)


def test_interval_must_be_a_finite_non_negative_number():
    with pytest.raises(ValueError, match="min_interval_seconds"):
        LocalChannelPacer(-1)
    with pytest.raises(ValueError, match="min_interval_seconds"):
        LocalChannelPacer(float("inf"))


def test_forgotten_keys_keep_the_table_small():
    clock = FakeClock()
    pacer = _pacer(clock)
    for i in range(2000):
        pacer.wait(f"channel-{i}")
        clock.advance(0.01)
    assert len(pacer._next_slot) <= LocalChannelPacer._PRUNE_AT_SIZE + 1
    assert clock.sleeps == []


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("2", 2.0), (" 1.5 ", 1.5), ("0", 0.0), (None, None), ("", None), ("soon", None), ("-3", None)],
)
def test_parse_retry_after_seconds(header, seconds):
    assert parse_retry_after(header) == seconds


def test_parse_retry_after_http_date():
    now = datetime(2024, 3, 1, 14, 30, 0, tzinfo=timezone.utc)
    assert parse_retry_after("Fri, 01 Mar 2024 14:30:07 GMT", now=now) == 7.0
    assert parse_retry_after("Fri, 01 Mar 2024 14:29:00 GMT", now=now) == 0.0
