"""The alert router end to end: real `celery worker` processes on queue `alerts`, real `celery
beat` ticking the timers, real Redis state, and the real pagerduty and slack_sdk clients talking
to local servers that speak PagerDuty Events API v2 and Slack's webhook API."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis

from tests.alerting.fake_services import FakePagerDuty, FakeSlack
from tests.integration.harness import wait_until
from tradewatch.alerting.model import Alert, AlertStatus
from tradewatch.alerting.state import AlertState

pytestmark = pytest.mark.integration

ROUTES = """
route:
  receiver: log
  group_by: [alertname, strategy_id, symbol]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['severity="critical"']
      receiver: pagerduty-oncall
      group_wait: 0s
      continue: true
    - matchers: ['severity=~"critical|warning"']
      receiver: slack-trading
receivers:
  - name: pagerduty-oncall
    pagerduty: {}
  - name: slack-trading
    slack: {channel: "#trading-alerts"}
  - name: log
    log: {}
fallback_receiver: log
"""


@pytest.fixture
def services():
    pagerduty, slack = FakePagerDuty().start(), FakeSlack().start()
    yield pagerduty, slack
    pagerduty.stop()
    slack.stop()


@pytest.fixture
def router(deployment, services, tmp_path):
    pagerduty, slack = services
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES)
    deployment.extra_env.update({
        "TRADEWATCH_ALERT_ROUTES_PATH": str(routes),
        "TRADEWATCH_PAGERDUTY_ROUTING_KEY": secrets.token_hex(16),  # 32 characters, as PagerDuty's
        "TRADEWATCH_PAGERDUTY_EVENTS_URL": pagerduty.base_url,
        "TRADEWATCH_SLACK_WEBHOOK_URL": slack.webhook_url,
        "TRADEWATCH_SLACK_CHANNEL_INTERVAL_SECONDS": "0",
        "TRADEWATCH_ALERT_DELIVERY_MAX_RETRIES": "2",
    })
    client = redis.Redis.from_url(deployment.broker_url)
    yield deployment, AlertState(client, deployment.broker_prefix), pagerduty, slack
    client.close()


# One start time for every raise of an alert in this run: raised again, it is the same version.
START = datetime.now(timezone.utc) - timedelta(minutes=1)


def critical(strategy_id: str = "mm-1", *, resolved: bool = False) -> Alert:
    return Alert(
        labels={"alertname": "StaleFeed", "severity": "critical", "source": "feed-1", "strategy_id": strategy_id},
        annotations={"summary": f"no market data for {strategy_id}"}, starts_at=START,
        status=AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
        ends_at=datetime.now(timezone.utc) if resolved else None,
    )


def raise_alerts(deployment, *alerts: Alert) -> None:
    deployment.app().send_task("alerts.receive", args=[[a.model_dump(mode="json") for a in alerts]], queue="alerts")


def drained(deployment) -> bool:
    broker = redis.Redis.from_url(deployment.broker_url)
    try:
        return broker.llen(f"{deployment.broker_prefix}alerts") == 0 and broker.hlen(f"{deployment.broker_prefix}unacked") == 0
    finally:
        broker.close()


def test_fifty_concurrent_raises_through_two_workers_one_killed_before_its_ack_give_one_trigger(router):
    deployment, state, pagerduty, slack = router
    fault_dir = deployment.directory / "fault"
    fault_dir.mkdir()
    victim = deployment.worker(queues="alerts", name="alerts-a", TRADEWATCH_FAULT_POINT="alerts.before_ack",
                               TRADEWATCH_FAULT_DIR=str(fault_dir)).start()
    deployment.worker(queues="alerts", name="alerts-b").start()
    deployment.beat().start()
    for _ in range(50):
        raise_alerts(deployment, critical())
    marker = fault_dir / "fired"
    wait_until(marker.exists, 60, 0.1, "a worker to finish a receive and stop before its ack")
    victim.kill_all()  # SIGKILL, main process and pool child: the message is never acknowledged
    wait_until(lambda: pagerduty.accepted("trigger"), 30, 0.1, "the page")
    # The killed worker's message comes back after the visibility timeout (5 s here) and runs again.
    wait_until(lambda: drained(deployment), 60, 0.2, "every receive task, the redelivered one included")
    time.sleep(3)  # several beat ticks: anything left to send would go now
    triggers = pagerduty.events("trigger")
    assert len(triggers) == 1, [t.json for t in triggers]
    assert triggers[0].json["payload"]["severity"] == "critical"
    assert "StaleFeed" in triggers[0].json["payload"]["summary"]
    assert len(slack.messages()) == 1


def test_a_resolve_follows_the_trigger_with_the_same_dedup_key(router):
    deployment, state, pagerduty, slack = router
    deployment.worker(queues="alerts", name="alerts").start()
    deployment.beat().start()
    raise_alerts(deployment, critical("mm-2"))
    wait_until(lambda: pagerduty.accepted("trigger"), 30, 0.1, "the trigger")
    wait_until(lambda: len(slack.messages()) == 1, 30, 0.1, "the Slack message")
    raise_alerts(deployment, critical("mm-2", resolved=True))
    wait_until(lambda: pagerduty.accepted("resolve"), 30, 0.1, "the resolve")
    (trigger,), (resolve,) = pagerduty.events("trigger"), pagerduty.events("resolve")
    assert resolve.json["dedup_key"] == trigger.json["dedup_key"]
    assert pagerduty.incident(trigger.json["dedup_key"]) == "resolved"
    wait_until(lambda: len(slack.messages()) == 2, 30, 0.1, "the Slack resolve")
    assert "RESOLVED" in str(slack.messages()[-1].json)


def test_a_silenced_alert_sends_nothing_and_is_recorded_as_silenced(router):
    deployment, state, pagerduty, slack = router
    deployment.worker(queues="alerts", name="alerts").start()
    deployment.beat().start()
    env = {**deployment.env, "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "COLUMNS": "250"}
    added = subprocess.run(
        [sys.executable, "-m", "tradewatch.cli.main", "silence", "add", "--matcher", 'strategy_id="mm-9"',
         "--duration", "1h", "--author", "oncall@example.com", "--comment", "venue maintenance"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert added.returncode == 0, added.stdout + added.stderr
    silence_id = added.stdout.split()[1]
    silenced = critical("mm-9")
    raise_alerts(deployment, silenced, critical("mm-3"))
    wait_until(lambda: state.suppressed(silenced.fingerprint) is not None, 30, 0.1, "the silence to be recorded")
    wait_until(lambda: pagerduty.accepted("trigger"), 30, 0.1, "the unsilenced alert's page")
    time.sleep(3)  # ticks: the silenced alert must still send nothing
    assert {e.json["payload"]["group"] for e in pagerduty.events()} == {"mm-3"}
    record = state.suppressed(silenced.fingerprint)
    assert record["reason"] == "silenced" and record["silence_id"] == silence_id
    assert record["created_by"] == "oncall@example.com"
    listed = subprocess.run([sys.executable, "-m", "tradewatch.cli.main", "silence", "list"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert silence_id in listed.stdout and "venue maintenance" in listed.stdout
    firing = subprocess.run([sys.executable, "-m", "tradewatch.cli.main", "alerts", "list"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert f"silenced by {silence_id}" in firing.stdout and "strategy_id=mm-3" in firing.stdout


def test_an_undeliverable_page_is_retried_then_sent_to_the_fallback_and_recorded(router):
    deployment, state, pagerduty, slack = router
    for _ in range(3):  # the first attempt and both retries (TRADEWATCH_ALERT_DELIVERY_MAX_RETRIES=2)
        pagerduty.fail_next(503)
    worker = deployment.worker(queues="alerts", name="alerts").start()
    raise_alerts(deployment, critical("mm-4"))
    from tradewatch.storage.alert_failures import AlertFailureStore
    from tradewatch.storage.database import make_engine

    engine = make_engine(deployment.database_url, pool_size=1)
    try:
        store = AlertFailureStore(engine)
        wait_until(lambda: store.recent(), 60, 0.2, "the failure to be recorded")
        (failure,) = store.recent()
    finally:
        engine.dispose()
    assert failure["receiver"] == "pagerduty-oncall" and failure["attempts"] == 3 and failure["http_status"] == 503
    assert failure["fallback_receiver"] == "log" and failure["fallback_delivered"] is True
    assert len(pagerduty.events("trigger")) == 3
    assert state.counters()["deliveries_total:pagerduty-oncall:failed"] == 1
    routing_key = deployment.env["TRADEWATCH_PAGERDUTY_ROUTING_KEY"]
    assert routing_key not in worker.log() and routing_key not in failure["error"]


def test_a_permanent_refusal_is_not_retried(router):
    deployment, state, pagerduty, slack = router
    pagerduty.fail_next(400)
    deployment.worker(queues="alerts", name="alerts").start()
    raise_alerts(deployment, critical("mm-5"))
    wait_until(lambda: state.counters().get("deliveries_total:pagerduty-oncall:failed") == 1, 60, 0.2, "the failure")
    time.sleep(1)
    assert len(pagerduty.events("trigger")) == 1
