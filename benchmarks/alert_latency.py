"""Alert latency benchmark: an alert raised -> the receiver's HTTP request, through real workers.

Critical and warning alerts are raised at --rate per second (half each) for --seconds, each as
its own `alerts.receive` task, as a detector would raise them, while a simulated engine loads the
audit queue through AuditClient (--engine-rate events/s) with an ingest worker storing them.
The shipped routing configuration (tradewatch/alerting/default_routes.yaml) routes them; local
servers speaking PagerDuty Events API v2 and Slack's webhook API receive them through the real
pagerduty and slack_sdk clients. Processes as deployed: one solo ingest worker, the alerts pool
(prefork x2), beat.

Each critical alert is a condition of its own (its own symbol), so each must open its own
PagerDuty incident; latency = the receiver's arrival time of its trigger minus the time it was
raised. Warnings share a few groups (the way a flood is meant to be grouped) and go to Slack.
Slack's one-message-per-second pacing is set to 0 here: the local Slack has no rate limit, and
the measured path is the page.

Needs Redis (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432); creates and drops its own
database and key prefix. Prints one JSON object on its last line: alerts, p50_seconds,
p99_seconds, max_seconds (critical alerts), duplicates, lost, and the context.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.scratch import create_database, delete_keys, drop_database, stop_processes  # noqa: E402
from tests.alerting.fake_services import FakePagerDuty, FakeSlack  # noqa: E402
from tradewatch.alerting.model import Alert  # noqa: E402
from tradewatch.storage.database import make_engine  # noqa: E402

ADMIN_URL = os.environ.get("TRADEWATCH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TRADEWATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class Deployment:
    def __init__(self, pagerduty: FakePagerDuty, slack: FakeSlack) -> None:
        self.name = f"tw_alertbench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.admin = make_engine(ADMIN_URL, pool_size=1)
        self.database_url = create_database(self.admin, ADMIN_URL, self.name)
        self.prefix = f"tw-alertbench-{uuid.uuid4().hex[:8]}:"
        self.dir = Path(os.environ.get("TMPDIR", "/tmp")) / self.name
        self.dir.mkdir(parents=True)
        self.env = {
            **os.environ, "PYTHONPATH": str(ROOT),
            "TRADEWATCH_DATABASE_URL": self.database_url, "TRADEWATCH_BROKER_URL": REDIS_URL,
            "TRADEWATCH_BROKER_KEY_PREFIX": self.prefix, "TRADEWATCH_INGEST_FANOUT": "false",
            "TRADEWATCH_STATE_DIR": str(self.dir / "state"), "TRADEWATCH_LOG_LEVEL": "WARNING",
            "TRADEWATCH_PAGERDUTY_ROUTING_KEY": secrets.token_hex(16),
            "TRADEWATCH_PAGERDUTY_EVENTS_URL": pagerduty.base_url,
            "TRADEWATCH_SLACK_WEBHOOK_URL": slack.webhook_url,
            "TRADEWATCH_SLACK_CHANNEL_INTERVAL_SECONDS": "0",
        }
        self.processes: list[subprocess.Popen] = []

    def settings(self):
        from tradewatch.tasks.settings import Settings

        return Settings(database_url=self.database_url, broker_url=REDIS_URL, broker_key_prefix=self.prefix,
                        ingest_fanout=False, state_dir=self.dir / "state")

    def start(self, argv: list[str], name: str) -> None:
        log = open(self.dir / f"{name}.log", "ab")
        self.processes.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tradewatch.tasks.app", *argv], env=self.env, stdout=log,
            stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
        ))

    def start_all(self) -> None:
        common = ["--without-heartbeat", "--without-mingle", "--without-gossip", "--loglevel", "WARNING"]
        self.start(["worker", "-Q", "audit", "--pool", "solo", "-n", f"ingest-{os.getpid()}@%h", *common], "ingest")
        self.start(["worker", "-Q", "alerts", "--concurrency", "2", "-n", f"alerts-{os.getpid()}@%h", *common], "alerts")
        self.start(["beat", "--loglevel", "WARNING", "--schedule", str(self.dir / "celerybeat-schedule")], "beat")
        from tradewatch.tasks.app import create_app

        control = create_app(self.settings()).control
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise SystemExit(f"a process exited; logs in {self.dir}")
            if len(control.ping(timeout=0.5)) >= 2:
                return
        raise SystemExit(f"workers did not start; logs in {self.dir}")

    def close(self) -> None:
        stop_processes(self.processes)
        drop_database(self.admin, self.name)
        delete_keys(REDIS_URL, self.prefix)


def engine_load(deployment: Deployment, rate: int, stop: threading.Event, counter: list[int]) -> None:
    """A simulated engine: market data through AuditClient at ``rate`` events/s until stopped."""
    from tradewatch.domain.events import MarketDataEvent, MarketDataPayload
    from tradewatch.tasks.app import create_app
    from tradewatch.tasks.client import AuditClient

    client = AuditClient(app=create_app(deployment.settings()), spool_dir=deployment.dir / "spool")
    interval = 1.0 / rate
    start = time.monotonic()
    i = 0
    while not stop.is_set():
        due = int((time.monotonic() - start) / interval)
        while i < due:
            client.emit(MarketDataEvent(occurred_at=time.time_ns(), source="bench-engine", symbol=f"SYM{i % 50:02d}",
                                        payload=MarketDataPayload(bid="100.00", ask="100.02", last="100.01", volume=100)))
            i += 1
        time.sleep(0.002)
    client.close()
    counter.append(i)


def make_alert(index: int, critical: bool, now: datetime) -> Alert:
    labels = {"alertname": "BenchmarkCondition" if critical else "BenchmarkWarning",
              "severity": "critical" if critical else "warning", "source": "alert-benchmark",
              "strategy_id": f"strategy-{index % 5}",
              # A critical is a condition of its own (its own group, its own incident); warnings
              # fall into five groups, one per strategy.
              "symbol": f"SYM{index:06d}" if critical else "ANY",
              "raise_id": str(index)}
    return Alert(labels=labels, annotations={"summary": f"benchmark alert {index}"}, starts_at=now)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50, help="alerts raised per second (half critical)")
    parser.add_argument("--seconds", type=float, default=60, help="how long alerts are raised")
    parser.add_argument("--engine-rate", type=int, default=5000, help="audit events/s the simulated engine emits meanwhile")
    parser.add_argument("--settle-seconds", type=float, default=30, help="how long to wait for the last pages")
    args = parser.parse_args()

    pagerduty, slack = FakePagerDuty().start(), FakeSlack().start()
    deployment = Deployment(pagerduty, slack)
    stop = threading.Event()
    emitted: list[int] = []
    raised: dict[str, float] = {}
    try:
        deployment.start_all()
        load = threading.Thread(target=engine_load, args=(deployment, args.engine_rate, stop, emitted), daemon=True)
        load.start()
        time.sleep(2)  # the audit queue under load before the first alert
        from tradewatch.tasks.app import create_app

        app = create_app(deployment.settings())
        total = int(args.rate * args.seconds)
        start = time.monotonic()
        with app.producer_or_acquire() as producer:
            for index in range(total):
                target = start + index / args.rate
                delay = target - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                critical = index % 2 == 0
                alert = make_alert(index, critical, datetime.now(timezone.utc))
                if critical:
                    raised[str(index)] = time.time()
                app.send_task("alerts.receive", args=[[alert.model_dump(mode="json")]], queue="alerts", producer=producer)
        deadline = time.monotonic() + args.settle_seconds
        while time.monotonic() < deadline and len({_raise_id(e) for e in pagerduty.accepted("trigger")}) < len(raised):
            time.sleep(0.2)
        time.sleep(2)  # anything duplicated would arrive now
        stop.set()
        load.join(60)
    finally:
        stop.set()
        deployment.close()
        pagerduty.stop()
        slack.stop()

    arrivals: dict[str, list[float]] = {}
    for event in pagerduty.events("trigger"):
        arrivals.setdefault(_raise_id(event), []).append(event.arrived_at)
    latencies = [min(arrivals[i]) - raised[i] for i in raised if i in arrivals]
    print(json.dumps({
        "benchmark": "alert_latency",
        "alerts": len(raised),
        "alerts_raised_total": total,
        "rate_per_second": args.rate,
        "seconds": args.seconds,
        "p50_seconds": round(float(np.percentile(latencies, 50)), 4) if latencies else None,
        "p99_seconds": round(float(np.percentile(latencies, 99)), 4) if latencies else None,
        "max_seconds": round(max(latencies), 4) if latencies else None,
        "duplicates": sum(len(times) - 1 for times in arrivals.values()),
        "lost": len(set(raised) - set(arrivals)),
        "slack_messages": len(slack.messages()),
        "engine_events_emitted": emitted[0] if emitted else 0,
        "engine_rate_per_second": args.engine_rate,
        "measured": "critical alerts: alerts.receive sent -> PagerDuty Events API request received",
        "routing": "tradewatch/alerting/default_routes.yaml",
        "workers": "ingest solo x1, alerts prefork x2, beat",
        "cpu_cores": os.cpu_count(),
    }))


def _raise_id(event) -> str:
    alerts = (event.json or {}).get("payload", {}).get("custom_details", {}).get("alerts", [])
    return alerts[0]["labels"].get("raise_id", "") if alerts else ""


if __name__ == "__main__":
    main()
