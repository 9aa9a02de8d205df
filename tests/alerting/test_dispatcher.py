"""The router's behaviour against a real Redis: dedup, grouping, timers, resolve, silences,
inhibition, and many workers acting as one. The clock is passed in, so timers are exact."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import redis

from tradewatch.alerting.config import parse_alerting_config
from tradewatch.alerting.dispatcher import OUTBOX_STALE_SECONDS, Dispatcher
from tradewatch.alerting.model import Alert, AlertStatus
from tradewatch.alerting.silences import Silence
from tradewatch.alerting.state import AlertState

T0 = datetime(2026, 11, 22, 9, 30, tzinfo=timezone.utc)

CONFIG = """
route:
  receiver: log
  group_by: [alertname, strategy_id]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      group_wait: 0s
      group_interval: 1m
      repeat_interval: 1h
      continue: true
    - matchers: ['severity=~"critical|warning"']
      receiver: chat
      group_wait: 10s
receivers:
  - name: pager
    pagerduty: {}
  - name: chat
    slack: {channel: "#trading-alerts"}
  - name: log
    log: {}
inhibit_rules:
  - source_matchers: ['alertname="CircuitBreakerTripped"', 'trading_state="HALTED"']
    target_matchers: ['severity="warning"']
    equal: [strategy_id]
fallback_receiver: log
"""


class Router:
    """A dispatcher whose delivery queue is a list (the tasks are tested with real workers)."""

    def __init__(self, state: AlertState) -> None:
        self.state = state
        self.sent: list[str] = []
        self._lock = threading.Lock()
        self.dispatcher = Dispatcher(parse_alerting_config(__import__("yaml").safe_load(CONFIG), "test.yaml"), state,
                                     enqueue_delivery=self._enqueue)

    def _enqueue(self, notification_id: str) -> None:
        # Stands for a delivery worker that succeeds at once (marking it delivered takes it
        # out of the outbox, as alerts.deliver does).
        with self._lock:
            self.sent.append(notification_id)
        self.state.mark_delivered(notification_id, "delivered")

    def notifications(self, receiver: str | None = None):
        found = [self.state.notification(i) for i in self.sent]
        return [n for n in found if receiver is None or n.receiver == receiver]


def alert(name="StaleFeed", severity="critical", *, at=T0, status=AlertStatus.FIRING, **labels) -> Alert:
    fields = {"labels": {"alertname": name, "severity": severity, "source": "test", **labels},
              "annotations": {"summary": f"{name} on {labels.get('strategy_id', '-')}"}, "starts_at": at}
    if status is AlertStatus.RESOLVED:
        fields.update(status=status, starts_at=at - timedelta(minutes=1), ends_at=at)
    return Alert(**fields)


def test_a_critical_alert_pages_at_once_and_reaches_chat_after_its_group_wait(state):
    router = Router(state)
    router.dispatcher.receive([alert(strategy_id="mm-1")], T0)
    assert [n.receiver for n in router.notifications()] == ["pager"]
    router.dispatcher.tick(T0 + timedelta(seconds=9))
    assert [n.receiver for n in router.notifications()] == ["pager"]
    router.dispatcher.tick(T0 + timedelta(seconds=10))
    assert [n.receiver for n in router.notifications()] == ["pager", "chat"]
    page = router.notifications("pager")[0]
    assert page.group_labels == {"alertname": "StaleFeed", "strategy_id": "mm-1"}
    assert [a.alertname for a in page.alerts] == ["StaleFeed"]


def test_the_same_alert_raised_again_notifies_once_per_repeat_interval(state):
    router = Router(state)
    for second in range(0, 600, 7):
        router.dispatcher.receive([alert(strategy_id="mm-1")], T0 + timedelta(seconds=second))
        router.dispatcher.tick(T0 + timedelta(seconds=second))
    assert len(router.notifications("pager")) == 1
    assert len(router.notifications("chat")) == 1
    # The pager's repeat interval is 1 h: the next look after it repeats the page.
    router.dispatcher.tick(T0 + timedelta(hours=1, minutes=1))
    assert len(router.notifications("pager")) == 2
    assert len(router.notifications("chat")) == 1  # chat repeats every 4 h


def test_fifty_concurrent_raises_of_one_alert_give_one_page(state):
    router = Router(state)
    barrier = threading.Barrier(10)

    def raise_five(worker: int) -> None:
        # Each thread stands for a worker with its own connection.
        own = Dispatcher(router.dispatcher.config, AlertState(redis.Redis(connection_pool=state.client.connection_pool),
                                                               state.base[: -len("tw:alerting:")]),
                         enqueue_delivery=router._enqueue)
        barrier.wait()
        for i in range(5):
            own.receive([alert(strategy_id="mm-1")], T0 + timedelta(milliseconds=worker * 5 + i))

    threads = [threading.Thread(target=raise_five, args=(w,)) for w in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    router.dispatcher.tick(T0 + timedelta(seconds=1))
    assert len(router.notifications("pager")) == 1


def test_alerts_sharing_group_labels_are_notified_together(state):
    router = Router(state)
    first = alert("LatencyExcursion", "warning", strategy_id="mm-1", symbol="AAPL")
    second = alert("LatencyExcursion", "warning", strategy_id="mm-1", symbol="MSFT", at=T0 + timedelta(seconds=3))
    other = alert("LatencyExcursion", "warning", strategy_id="mm-2", symbol="AAPL", at=T0 + timedelta(seconds=4))
    router.dispatcher.receive([first], T0)
    router.dispatcher.receive([second], T0 + timedelta(seconds=3))
    router.dispatcher.receive([other], T0 + timedelta(seconds=4))
    router.dispatcher.tick(T0 + timedelta(seconds=10))
    chat = router.notifications("chat")
    assert len(chat) == 1 and {a.labels["symbol"] for a in chat[0].alerts} == {"AAPL", "MSFT"}
    router.dispatcher.tick(T0 + timedelta(seconds=14))
    assert len(router.notifications("chat")) == 2  # mm-2's group, its own group_wait later
    # A new alert in a notified group waits for the group interval (5 min from the root).
    third = alert("LatencyExcursion", "warning", strategy_id="mm-1", symbol="NVDA", at=T0 + timedelta(seconds=20))
    router.dispatcher.receive([third], T0 + timedelta(seconds=20))
    router.dispatcher.tick(T0 + timedelta(minutes=5, seconds=9))
    assert len(router.notifications("chat")) == 2
    router.dispatcher.tick(T0 + timedelta(minutes=5, seconds=10))
    update = router.notifications("chat")[-1]
    assert {a.labels["symbol"] for a in update.alerts} == {"AAPL", "MSFT", "NVDA"}


def test_a_resolve_follows_the_trigger_with_the_same_dedup_key_and_ends_the_group(state):
    router = Router(state)
    router.dispatcher.receive([alert(strategy_id="mm-1")], T0)
    router.dispatcher.receive([alert(strategy_id="mm-1", status=AlertStatus.RESOLVED, at=T0 + timedelta(seconds=20))],
                              T0 + timedelta(seconds=20))
    router.dispatcher.tick(T0 + timedelta(seconds=59))
    assert [n.status for n in router.notifications("pager")] == [AlertStatus.FIRING]
    router.dispatcher.tick(T0 + timedelta(seconds=60))
    trigger, resolve = router.notifications("pager")
    assert resolve.status is AlertStatus.RESOLVED and resolve.dedup_key == trigger.dedup_key
    # The chat group never notified (it resolved within its group wait): nothing sent to chat.
    router.dispatcher.tick(T0 + timedelta(minutes=10))
    assert router.notifications("chat") == []
    assert state.due_groups(T0.timestamp() + 10**6) == []


def test_a_late_firing_copy_never_reopens_a_resolved_alert(state):
    router = Router(state)
    router.dispatcher.receive([alert(strategy_id="mm-1")], T0)
    router.dispatcher.receive([alert(strategy_id="mm-1", status=AlertStatus.RESOLVED, at=T0 + timedelta(seconds=5))],
                              T0 + timedelta(seconds=5))
    router.dispatcher.receive([alert(strategy_id="mm-1")], T0 + timedelta(seconds=6))  # redelivered original
    assert state.alert(alert(strategy_id="mm-1").fingerprint).status is AlertStatus.RESOLVED


def test_a_silenced_alert_sends_nothing_and_is_recorded_as_silenced(state):
    router = Router(state)
    silence = Silence(id="s-1", matchers=['strategy_id="mm-1"'], starts_at=T0 - timedelta(minutes=1),
                      ends_at=T0 + timedelta(hours=1), created_by="oncall@example.com", comment="maintenance window",
                      created_at=T0 - timedelta(minutes=1))
    state.put_silence(silence)
    silenced = alert(strategy_id="mm-1")
    router.dispatcher.receive([silenced, alert(strategy_id="mm-2")], T0)
    router.dispatcher.tick(T0 + timedelta(seconds=30))
    assert {n.group_labels["strategy_id"] for n in router.notifications()} == {"mm-2"}
    record = state.suppressed(silenced.fingerprint)
    assert record["reason"] == "silenced" and record["silence_id"] == "s-1"
    assert state.counters()["suppressed_total:silenced"] >= 1
    # Once the silence ends, the still-firing alert pages at the group's next look.
    router.dispatcher.tick(T0 + timedelta(hours=1, minutes=1))
    assert "mm-1" in {n.group_labels["strategy_id"] for n in router.notifications("pager")}


def test_a_halted_circuit_breaker_mutes_warnings_of_its_strategy_only(state):
    router = Router(state)
    breaker = alert("CircuitBreakerTripped", "critical", strategy_id="mm-1", trading_state="HALTED")
    muted = alert("SlippageSpike", "warning", strategy_id="mm-1", symbol="AAPL")
    kept = alert("SlippageSpike", "warning", strategy_id="mm-2", symbol="AAPL")
    router.dispatcher.receive([breaker, muted, kept], T0)
    router.dispatcher.tick(T0 + timedelta(seconds=30))
    sent = {(n.receiver, a.alertname, a.labels["strategy_id"]) for n in router.notifications() for a in n.alerts}
    assert ("chat", "SlippageSpike", "mm-1") not in sent
    assert ("chat", "SlippageSpike", "mm-2") in sent
    assert state.suppressed(muted.fingerprint)["reason"] == "inhibited"


def test_an_undelivered_outbox_entry_is_handed_over_again(state):
    lost: list[str] = []
    dispatcher = Dispatcher(Router(state).dispatcher.config, state, enqueue_delivery=lost.append)
    dispatcher.receive([alert(strategy_id="mm-1")], T0)
    assert len(lost) == 1
    resent: list[str] = []
    dispatcher.enqueue_delivery = resent.append
    dispatcher.tick(T0 + timedelta(seconds=OUTBOX_STALE_SECONDS - 1))
    assert lost[0] not in resent  # (the chat group's own first notification went meanwhile)
    dispatcher.tick(T0 + timedelta(seconds=OUTBOX_STALE_SECONDS + 1))
    assert resent.count(lost[0]) == 1
