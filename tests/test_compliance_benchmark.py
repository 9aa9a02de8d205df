"""benchmarks/compliance.py keeps working: a tiny run on a scratch PostgreSQL database reports
its fields, consistently (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.compliance import percentile

ROOT = Path(__file__).resolve().parent.parent


def test_percentile_interpolates_like_numpy():
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert abs(percentile([float(v) for v in range(101)], 0.99) - 99.0) < 1e-12


def test_the_benchmark_runs_and_reports_its_fields(postgres_admin):
    # 200 simulated events/s: 20,000 events span 100 s, room for every injected scenario.
    result = subprocess.run(
        [sys.executable, "benchmarks/compliance.py", "--events", "20000", "--rounds", "2", "--rate", "200",
         "--chunk-events", "5000"],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    last = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("benchmark", "events", "events_per_second", "events_per_second_rounds", "engine_only_events_per_second",
                "issues", "issues_by_code", "policy_version", "target_events_per_second", "target_met", "cpu_cores",
                "chunk_seconds_p50", "chunk_seconds_p99", "injected_codes", "skipped_codes"):
        assert key in last, key
    assert last["benchmark"] == "compliance" and last["events"] == 20_000
    assert len(last["events_per_second_rounds"]) == 2 and last["events_per_second"] > 0
    assert last["engine_only_events_per_second"] > 0
    assert last["target_events_per_second"] == 20_000
    assert last["target_met"] == (last["events_per_second"] >= 20_000)
    assert last["policy_version"] == "2024.1"
    by_code = last["issues_by_code"]
    assert sum(by_code.values()) == last["issues"]
    assert all(count >= 0 for count in by_code.values())
    assert last["issues_same_every_round"] and last["issues_match_engine_only"]
    # Every violation injected is found; a code skipped (and why) is not injected.
    assert last["injected_codes"] and last["injected_codes_not_found"] == []
    assert all(by_code[code] >= 1 for code in last["injected_codes"])
    assert set(last["skipped_codes"]).isdisjoint(last["injected_codes"])
