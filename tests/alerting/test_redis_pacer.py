"""Slack pacing shared by all workers (slots reserved in a real Redis) and the delivery backoff."""

from __future__ import annotations


import pytest

from tradewatch.alerting.delivery import backoff_seconds
from tradewatch.alerting.receivers.base import TransientDeliveryError
from tradewatch.alerting.redis_pacer import RedisChannelPacer


def test_messages_to_one_channel_are_spaced_by_the_interval_and_channels_are_independent(state):
    slept: list[float] = []
    pacer = RedisChannelPacer(state, min_interval_seconds=0.2, max_wait_seconds=5, sleep=slept.append)
    pacer.wait("trading-alerts")
    pacer.wait("trading-alerts")
    pacer.wait("trading-alerts")
    pacer.wait("risk")
    # Slots are reserved on Redis's clock: the first is free, then each waits one more interval
    # (less the little time that passed between the calls).
    assert len(slept) == 2
    assert 0.1 < slept[0] <= 0.2 and 0.3 < slept[1] <= 0.4


def test_a_long_wait_becomes_a_retry_instead_of_a_sleep(state):
    slept: list[float] = []
    pacer = RedisChannelPacer(state, min_interval_seconds=1.0, max_wait_seconds=1.5, sleep=slept.append)
    pacer.wait("busy")
    pacer.wait("busy")
    with pytest.raises(TransientDeliveryError) as caught:
        pacer.wait("busy")
    assert caught.value.retry_after > 1.5 and len(slept) == 1


def test_backoff_is_jittered_exponential_at_least_retry_after_and_capped():
    assert backoff_seconds(0, None, rand=lambda: 1.0) == 1.0
    assert backoff_seconds(3, None, rand=lambda: 1.0) == 8.0
    assert backoff_seconds(3, None, rand=lambda: 0.5) == 4.0
    assert backoff_seconds(10, None, rand=lambda: 1.0, cap=30) == 30
    assert backoff_seconds(0, 7.0, rand=lambda: 0.1) == 7.0  # the service's Retry-After wins
    assert backoff_seconds(0, 120.0, rand=lambda: 0.1, cap=30) == 30  # never past the cap
