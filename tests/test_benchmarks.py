"""The benchmark scripts keep working (tiny sizes; no timing is asserted, only correctness)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ingest_benchmark_runs_and_reports_its_fields(postgres_admin, redis_url):
    result = subprocess.run(
        # Enough events that each process's CPU is several 10 ms clock ticks (a 3,000-event phase
        # lasts ~60 ms on a fast machine, and PostgreSQL's share could read as zero ticks).
        [sys.executable, "benchmarks/ingest.py", "--events", "20000", "--baseline-events", "100",
         "--rate", "2000", "--latency-seconds", "0.5", "--rounds", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    last = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("events", "events_per_second", "baseline_events_per_second", "speedup", "emit_microseconds_p50",
                "emit_microseconds_p99", "end_to_end_latency_ms_p50", "end_to_end_latency_ms_p99", "lost", "duplicated"):
        assert key in last, key
    assert last["lost"] == 0 and last["duplicated"] == 0
    assert last["downstream_fanout"] == "off"
    assert last["events"] == 20000
    assert len(last["events_per_second_rounds"]) == 2
    assert last["worker_pool"] == "solo x2"
    cpu = last["cpu_microseconds_per_event"]
    assert set(cpu) == {"client", "worker_main", "worker_pool", "postgresql", "redis", "other", "total"}
    assert cpu["worker_main"] > 0 and cpu["postgresql"] > 0


def test_alert_latency_benchmark_runs_and_reports_its_fields(postgres_admin, redis_url):
    result = subprocess.run(
        [sys.executable, "benchmarks/alert_latency.py", "--rate", "10", "--seconds", "2", "--engine-rate", "500",
         "--settle-seconds", "20"],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    last = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("alerts", "p50_seconds", "p99_seconds", "duplicates", "lost"):
        assert key in last, key
    assert last["alerts"] == 10
    assert last["lost"] == 0 and last["duplicates"] == 0
    assert last["engine_events_emitted"] > 0


def test_analytics_benchmark_runs_and_the_loop_agrees_with_the_vectorised_report():
    result = subprocess.run(
        [sys.executable, "benchmarks/analytics.py", "--fills", "20000", "--baseline-fills", "4000", "--rounds", "1",
         "--instruments", "10"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    last = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("fills", "seconds", "fills_per_second", "speedup", "baseline_seconds", "full_report_seconds"):
        assert key in last, key
    assert last["fills"] == 20000 and last["round_trips"] == 5000
    assert last["results_equal_on_baseline_subset"] is True
