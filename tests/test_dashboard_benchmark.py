"""benchmarks/dashboard.py keeps working: a tiny run (a few seconds, a low rate, on a scratch
PostgreSQL database, a Redis prefix of its own and the real web service) reports its fields,
consistently; and its lag definition on a hand-made timeline. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.dashboard import NS, staleness

ROOT = Path(__file__).resolve().parent.parent


def test_staleness_is_the_age_of_the_oldest_committed_event_missing_from_the_served_snapshot():
    # Batches received at 0, 1, 2, 3 s, each committed 0.1 s later.
    batches = [{"received_ns": k * NS, "committed_ns": k * NS + NS // 10} for k in range(4)]
    # Published at 0.5 s with batch 0 folded in, at 2.5 s with batches 0-2, at 4 s with all.
    publications = [(NS // 2, 0), (5 * NS // 2, 2 * NS), (4 * NS, 3 * NS)]
    worst, sampled = staleness(batches, publications, window_end_ns=4 * NS)
    # Just before 2.5 s the oldest committed batch missing is batch 1 (received at 1 s); just
    # before 4 s it is batch 3 (received at 3 s).
    assert worst == [1.5, 1.0]
    # Sampled every 10 ms from the first publication: at 0.5 s nothing missing is committed; at
    # 1.1 s batch 1 is; at 2.49 s it is 1.49 s old; at 2.5 s the new snapshot has it; batch 3
    # (committed at 3.1 s) is 0.99 s old at 3.99 s.
    assert sampled[0] == 0.0 and sampled[60] == 0.1 and sampled[199] == 1.49 and sampled[200] == 0.0
    assert sampled[349] == 0.99 and len(sampled) == 350 and max(sampled) == 1.49
    # Nothing folded in yet: every committed batch is missing.
    assert staleness(batches, [(0, None), (2 * NS, None)], 2 * NS)[0] == [2.0]


def test_the_benchmark_runs_and_reports_its_fields(postgres_admin, redis_url):
    result = subprocess.run(
        [sys.executable, "benchmarks/dashboard.py", "--duration", "4", "--rate", "2000", "--instruments", "20",
         "--tick-seconds", "1", "--points", "2", "--repeats", "1"],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    last = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("benchmark", "offered_events_per_second", "ingested_events_per_second", "events", "instruments",
                "snapshot_lag_seconds_p50", "snapshot_lag_seconds_p99", "snapshot_lag_seconds_max", "tick_seconds_p99",
                "metrics_scrape_ms_p50", "metrics_scrape_ms_p99", "metrics_bytes", "incremental_us_per_event",
                "rebuild_us_per_event", "incremental_speedup", "targets", "cpu_cores"):
        assert key in last, key
    assert last["benchmark"] == "dashboard" and last["instruments"] == 20
    assert last["offered_events_per_second"] == 2000 and last["events_offered"] == 8000
    assert last["events"] + last["events_not_ingested"] == 8000 and last["events"] > 0
    assert last["events_folded_in"] == last["events"]  # the last tick caught up with everything ingested
    assert last["ingested_events_per_second"] > 0
    assert 0 <= last["snapshot_lag_seconds_p50"] <= last["snapshot_lag_seconds_p99"] <= last["snapshot_lag_seconds_max"]
    assert last["tick_seconds_p99"] > 0 and last["ticks"] >= 2
    assert last["metrics_scrapes"] > 0 and last["metrics_scrape_ms_p50"] <= last["metrics_scrape_ms_p99"]
    assert last["metrics_bytes"] > 0
    assert last["incremental_us_per_event"] > 0 and last["rebuild_us_per_event"] > 0 and last["incremental_speedup"] > 0
    assert set(last["targets"]) == {"snapshot_lag_p99_at_most_5_s", "metrics_scrape_p99_at_most_50_ms"}
    assert last["targets"]["snapshot_lag_p99_at_most_5_s"] == (last["snapshot_lag_seconds_p99"] <= 5)
    assert last["targets"]["metrics_scrape_p99_at_most_50_ms"] == (last["metrics_scrape_ms_p99"] <= 50)
    assert last["cpu_cores"] >= 1
