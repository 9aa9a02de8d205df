"""The Grafana provisioning and dashboard (deploy/grafana): well-formed, the monitoring guide's
panels present, every query on the provisioned datasource and naming only exported metrics.
(Grafana itself is not packaged for Debian; tests/integration/test_prometheus_end_to_end.py runs
every panel's query against a real Prometheus scraping the service.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tradewatch.web.trading_metrics import EXPORTED_METRICS

GRAFANA = Path(__file__).resolve().parent.parent / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "tradewatch.json"

# PromQL function and keyword names, and label names used in by()/legend templates: not metrics.
_NOT_METRICS = {"sum", "max", "min", "rate", "increase", "histogram_quantile", "by", "le", "status", "limit",
                "symbol", "queue", "outcome", "job", "instance", "tradewatch"}


def panels() -> list[dict]:
    return [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]


def queries() -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in panels() for t in p["targets"]]


def metric_names(expr: str) -> set[str]:
    without_labels = re.sub(r"\{[^}]*\}", "", expr)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_labels)
    return set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_ranges)) - _NOT_METRICS


def exported(name: str) -> bool:
    """A metric the service exports, or a series of an exported histogram (_bucket, _sum, _count)."""
    if name in EXPORTED_METRICS or name in ("process_resident_memory_bytes", "process_cpu_seconds_total"):
        return True
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    return base != name and base in EXPORTED_METRICS and EXPORTED_METRICS[base].kind == "histogram"


def test_provisioning_points_at_the_dashboards_and_one_default_datasource() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert (source["type"], source["uid"], source["isDefault"]) == ("prometheus", "tradewatch-prometheus", True)
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "tradewatch.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_the_guide_panels_and_ours_are_there() -> None:
    titles = {p["title"] for p in panels()}
    assert {"Portfolio value", "Daily PnL", "Drawdown", "Order latency p95", "Orders by status",
            "Slippage distribution", "Risk-limit consumption", "Snapshot age and lag", "Queue depth"} <= titles


def test_panels_are_well_formed_and_do_not_overlap() -> None:
    body = json.loads(DASHBOARD.read_text())
    assert body["uid"] and body["schemaVersion"] >= 36 and len({p["id"] for p in body["panels"]}) == len(body["panels"])
    taken: set[tuple[int, int]] = set()
    for panel in body["panels"]:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells
        if panel["type"] != "row":
            assert panel["targets"] and panel["description"], panel["title"]
            assert panel["datasource"]["uid"] == "tradewatch-prometheus"


def test_the_drawdown_gauge_shows_percent_of_the_fraction_with_the_rules_threshold() -> None:
    (gauge,) = [p for p in panels() if p["title"] == "Drawdown"]
    assert gauge["targets"][0]["expr"] == "max(trading_drawdown_percent) * 100"
    steps = gauge["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1] == {"color": "red", "value": 15}


def test_latency_quantiles_aggregate_rates_of_buckets_by_le() -> None:
    for title, expr in queries():
        if "histogram_quantile" in expr:
            assert re.search(r"histogram_quantile\([0-9.]+, sum by \(le\) \(rate\(\w+_bucket\[\w+\]\)\)\)", expr), title


def test_every_query_names_only_exported_metrics() -> None:
    for title, expr in queries():
        unknown = {name for name in metric_names(expr) if not exported(name)}
        assert not unknown, f"panel {title!r} queries {sorted(unknown)}, which the service does not export"
