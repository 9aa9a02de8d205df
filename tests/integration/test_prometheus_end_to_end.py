"""End to end, as an operator runs it: a simulated engine emits through AuditClient into a real
worker (ingest and dashboard queues) and beat; the HTTP service (`tradewatch web`, uvicorn) serves
/metrics; a real Prometheus server (Debian's `prometheus`, on a free loopback port) scrapes it
every second and evaluates the shipped rules. Checked: every Grafana panel's query returns data,
the guide's trading panels change during the run, a PromQL query equals the snapshot, and the
shipped rules load and evaluate (the Watchdog fires)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.integration.harness import free_port, wait_until
from tradewatch.domain.simulation import SimulationConfig, TradingSimulator

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "tradewatch.json"
RULES = sorted((ROOT / "deploy" / "prometheus").glob("*_rules.yml"))
S = 1_000_000_000
PROMETHEUS_MISSING = ("prometheus not found: install the Debian package (apt-get install -y prometheus); "
                      "make test does this when run as root (make tools)")
# Panels whose data moves while the engine trades: each must change between two readings. The
# rest hold values that are constant by nature over a short healthy run (one worker per queue,
# broker connected, an empty queue, no rejected event, a drawdown that may stay 0, the number of
# open positions): they must have data.
MUST_CHANGE = ("Portfolio value", "Daily PnL", "PnL", "Order latency p95", "Orders by status",
               "Slippage distribution", "Risk-limit consumption", "Exposure by instrument",
               "Snapshot age and lag", "Process memory and CPU")


class Prometheus:
    """A Prometheus server scraping one target every second, with the shipped rule files."""

    def __init__(self, directory: Path, target: str) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail(PROMETHEUS_MISSING)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(path) for path in RULES],
            "scrape_configs": [{"job_name": "tradewatch", "scrape_interval": "1s", "scrape_timeout": "900ms",
                                "static_configs": [{"targets": [target]}]}],
        }
        (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = directory / "prometheus.log"
        self.process = subprocess.Popen(
            [binary, f"--config.file={directory / 'prometheus.yml'}", f"--storage.tsdb.path={directory / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self.ready, 30, 0.2, f"prometheus ready; log:\n{self.log.read_text()[-2000:]}")

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def api(self, path: str, **params) -> dict:
        body = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=5).json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def panel_queries() -> dict[str, list[str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return {p["title"]: [t["expr"] for t in p["targets"]] for p in panels if p["type"] != "row"}


def values(result: list[dict]) -> list[tuple[str, str]]:
    return sorted((json.dumps(item["metric"], sort_keys=True), item["value"][1]) for item in result)


@pytest.fixture
def web(deployment):
    port = free_port()
    log = deployment.directory / "web.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "tradewatch.cli.main", "web", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, **deployment.env}, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True)

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/live", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, 60, 0.2, f"tradewatch web up; log:\n{log.read_text()[-3000:] if log.exists() else ''}")
    yield f"127.0.0.1:{port}"
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def test_prometheus_scrapes_the_service_during_a_simulated_run(deployment, web, tmp_path):
    deployment.worker(queues="audit,dashboard", pool="solo", name="pipeline").start()
    deployment.beat().start()
    prometheus = Prometheus(tmp_path, web)
    try:
        client = deployment.client()
        simulator = TradingSimulator(SimulationConfig(events_per_second=400, seed=21), start_ns=time.time_ns())
        queries = panel_queries()

        def trade(seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                for event in simulator.events_until(time.time_ns()):
                    assert client.emit(event)
                time.sleep(0.1)
            assert client.flush(60)

        def every_panel() -> dict[str, list[list[tuple[str, str]]]]:
            return {title: [values(prometheus.query(expr)) for expr in exprs] for title, exprs in queries.items()}

        trade(12)
        wait_until(lambda: prometheus.query("trading_orders_total"), 30, 0.5, "trading metrics scraped")
        first = every_panel()
        trade(10)
        time.sleep(4)  # the last snapshot (2 s tick) and two scrapes
        second = every_panel()

        # Every panel has data (a panel with several queries: at least one of them).
        empty = [title for title, results in second.items() if not any(results)]
        assert not empty, f"panels without data: {empty}"
        unchanged = [title for title in MUST_CHANGE if first[title] == second[title]]
        assert not unchanged, f"panels whose data did not change while trading: {unchanged}"

        # A PromQL query against the snapshot the service exported: the orders counted by the
        # dashboard task equal what Prometheus sums over the labels (once nothing moves).
        def settled() -> bool:
            snapshot = httpx.get(f"http://{web}/api/snapshot", timeout=5).json()["snapshot"]
            counted = sum(snapshot["orders_by_status"].values())
            result = prometheus.query("sum(trading_orders_total)")
            return bool(result) and float(result[0]["value"][1]) == counted and counted > 0

        wait_until(settled, 20, 0.5, "sum(trading_orders_total) in Prometheus equal to the snapshot's orders")
        snapshot = httpx.get(f"http://{web}/api/snapshot", timeout=5).json()["snapshot"]
        rejected = prometheus.query('sum(trading_orders_total{status="rejected"})')
        assert float(rejected[0]["value"][1]) == snapshot["orders_by_status"].get("rejected", 0)
        value = prometheus.query("sum(trading_portfolio_value_usd)")
        assert float(value[0]["value"][1]) == pytest.approx(snapshot["portfolio_value"], rel=1e-9)

        # The shipped rules load and evaluate without errors; the Watchdog always fires.
        groups = prometheus.api("rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        assert rules and all(rule["health"] == "ok" for rule in rules), [r for r in rules if r["health"] != "ok"]
        firing = {alert["labels"]["alertname"] for alert in prometheus.api("alerts")["alerts"]}
        assert "Watchdog" in firing
    finally:
        prometheus.stop()
