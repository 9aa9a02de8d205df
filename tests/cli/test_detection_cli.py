"""`tradewatch detect ...` run as a user would (a subprocess with its own environment), against a
PostgreSQL database of its own holding anomalies the real pipeline found in hand-built events."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from decimal import Decimal

import numpy as np
import pytest
import redis

from tradewatch.domain.detection.features import FEATURES
from tradewatch.domain.detection.model_detector import ModelDetectorConfig
from tradewatch.domain.detection.pipeline import DetectionPipeline, PipelineConfig
from tradewatch.domain.detection.training import fit_model
from tradewatch.domain.events import FillEvent, FillPayload, MarketDataEvent, MarketDataPayload
from tradewatch.domain.events.timestamps import ns_to_datetime
from tradewatch.storage.detection import DetectionStore
from tradewatch.storage.models import ModelStore

from tests.factories import BASE_NS

S = 1_000_000_000
DAY_NS = 86_400 * S
# PostgreSQL's watermark is the cluster's oldest running transaction: another test run's open
# transaction can hold freshly committed rows back for a moment.
CATCH_UP_SECONDS = 30

PIPELINE = """\
quiet_seconds: 300
detectors:
  - {kind: slippage_spike, name: slippage, threshold_bps: 50, critical_bps: 200, by: symbol}
"""


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWATCH_")}
    clean.update(env or {})
    clean["COLUMNS"] = "200"
    return subprocess.run([sys.executable, "-m", "tradewatch.cli.main", *args], env=clean, capture_output=True,
                          text=True, timeout=timeout)


# ------------------------------------------------------------------ the scenario


def _fill(at_s: float, symbol: str, price: str, n: int) -> str:
    return FillEvent(occurred_at=BASE_NS + int(at_s * S), source="engine-1", strategy_id="mm-1", symbol=symbol,
                     order_id=f"o-{n}", payload=FillPayload(fill_id=f"f{n}", side="buy", quantity=Decimal(10),
                                                            price=Decimal(price), arrival_price=Decimal("100.00"))
                     ).model_dump_json()


def scenario() -> list[str]:
    """Buys against an arrival price of 100.00, slippage = (price - 100) / 100 * 10,000 bps:
    AAPL at 10 s 60 bps (> 50: warning, score 60 / 50 = 1.2) and at 20 s 250 bps (> 200:
    critical, score 5.0) are one anomaly, escalated; MSFT at 30 s 30 bps is nothing; AAPL at
    400 s 80 bps (score 1.6) finds the first quiet since 20 + 300 = 320 s: that one resolves
    ("quiet") and a new one opens."""
    return [
        MarketDataEvent(occurred_at=BASE_NS, source="engine-1", symbol="AAPL",
                        payload=MarketDataPayload(bid=Decimal("99.99"), ask=Decimal("100.01"))).model_dump_json(),
        _fill(10, "AAPL", "100.60", 1),
        _fill(20, "AAPL", "102.50", 2),
        _fill(30, "MSFT", "100.30", 3),
        _fill(400, "AAPL", "100.80", 4),
    ]


def ingest(store, items: list[str]) -> None:
    result = store.ingest_items(items, batch_id=uuid.uuid4().hex, received_at=ns_to_datetime(BASE_NS + 500 * S))
    assert result.inserted == len(items), result


def wait_until_readable(detection: DetectionStore, expected: int) -> None:
    """Until the pipeline's reader sees every ingested event (PostgreSQL's watermark)."""
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while len(detection.follow_frame(None, limit=1000)[0]) < expected:
        assert time.monotonic() < deadline, "the ingested events never passed the watermark"
        time.sleep(0.05)


@pytest.fixture
def env(database_url, pg_store, redis_url, broker_prefix, tmp_path) -> dict[str, str]:
    """The CLI's environment: this test's database (migrated by pg_store), its own broker keys,
    the pipeline above."""
    pipeline_file = tmp_path / "pipeline.yaml"
    pipeline_file.write_text(PIPELINE)
    return {"TRADEWATCH_DATABASE_URL": database_url, "TRADEWATCH_BROKER_URL": redis_url,
            "TRADEWATCH_BROKER_KEY_PREFIX": broker_prefix, "TRADEWATCH_DETECTION_PIPELINE": str(pipeline_file)}


@pytest.fixture
def detected(pg_store, env) -> None:
    """The scenario ingested and run through the real pipeline by DetectionStore.apply_pending."""
    ingest(pg_store, scenario())
    detection = DetectionStore(pg_store.engine)
    wait_until_readable(detection, 5)
    applied = detection.apply_pending(DetectionPipeline(PipelineConfig.from_yaml_text(PIPELINE, "test")))
    assert applied.events == 5


# ------------------------------------------------------------------ anomalies


def test_anomalies_lists_the_open_ones_by_default(detected, env):
    result = run("detect", "anomalies", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if "symbol=AAPL" in line]
    assert len(lines) == 1
    cells = [cell.strip() for cell in lines[0].strip("│ ").split("│")]
    # detected at, detector, type, severity, entity, metric, observed, baseline, score, times seen, status
    assert cells == ["2026-11-18 11:13:20", "slippage", "spike", "warning", "symbol=AAPL", "slippage_bps",
                     "80.000", "50.000", "1.600", "1", "open"]


def test_anomalies_as_json_newest_first_with_status_and_limit(detected, env):
    both = run("detect", "anomalies", "--status", "all", "--format", "json", env=env)
    assert both.returncode == 0, both.stdout + both.stderr
    rows = json.loads(both.stdout)
    picked = [(r["severity"], r["status"], r["resolved_reason"], (r["detected_at_ns"] - BASE_NS) / S,
               (r["last_seen_at_ns"] - BASE_NS) / S, r["occurrences"], round(r["observed"], 9),
               round(r["baseline"], 9), round(r["score"], 9), None if r["resolved_at_ns"] is None else (r["resolved_at_ns"] - BASE_NS) / S)
              for r in rows]
    assert picked == [
        ("warning", "open", None, 400, 400, 1, 80.0, 50.0, 1.6, None),
        ("critical", "resolved", "quiet", 10, 20, 2, 60.0, 50.0, 5.0, 320),
    ]
    assert {r["key"] for r in rows} == {"slippage|slippage_bps|symbol=AAPL"}
    assert rows[1]["detected_at"] == "2026-11-18T11:06:50+00:00"

    newest = json.loads(run("detect", "anomalies", "--status", "all", "--limit", "1", "--format", "json", env=env).stdout)
    assert [r["id"] for r in newest] == [rows[0]["id"]]

    resolved = run("detect", "anomalies", "--status", "resolved", env=env)
    assert resolved.returncode == 0, resolved.stderr
    assert "resolved (quiet) at 2026-11-18 11:12:00" in resolved.stdout
    assert "critical" in resolved.stdout and " open " not in resolved.stdout


def test_anomalies_arguments_are_checked(env):
    bad_status = run("detect", "anomalies", "--status", "closed", env=env)
    assert bad_status.returncode == 2
    assert "'closed' is not one of 'open', 'resolved', 'all'" in bad_status.stderr
    bad_format = run("detect", "anomalies", "--format", "xml", env=env)
    assert bad_format.returncode == 2 and "'xml' is not one of 'table', 'json'" in bad_format.stderr
    bad_limit = run("detect", "anomalies", "--limit", "0", env=env)
    assert bad_limit.returncode == 2 and "--limit" in bad_limit.stderr
    nothing = run("detect", "anomalies", env=env)
    assert nothing.returncode == 0 and "no open anomalies" in nothing.stdout


# ------------------------------------------------------------------ run


def test_run_applies_pending_events_once_and_hands_the_alerts_over(pg_store, env, broker_prefix, redis_url):
    ingest(pg_store, scenario())
    wait_until_readable(DetectionStore(pg_store.engine), 5)

    first = run("detect", "run", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    counts = dict(re.findall(r"│ (events|findings|opened|escalated|resolved)\s+│\s+(\d+) │", first.stdout))
    # 5 events; 3 slippage findings; the 10 s anomaly opens (critical by 20 s: opened, not
    # escalated, within one run), resolves quiet, and the 400 s one opens.
    assert counts == {"events": "5", "findings": "3", "opened": "2", "escalated": "0", "resolved": "1"}
    # The chunk's alerts went to the router's queue, in this test's broker keys, in one message.
    assert redis.Redis.from_url(redis_url).llen(f"{broker_prefix}alerts") == 1

    again = run("detect", "run", env=env)
    assert again.returncode == 0, again.stderr
    assert re.search(r"│ events\s+│\s+0 │", again.stdout)
    assert "nothing new: the pipeline's cursor is at the end of the trail" in again.stdout

    rows = json.loads(run("detect", "anomalies", "--status", "all", "--format", "json", env=env).stdout)
    assert [(r["status"], r["severity"], round(r["observed"], 9)) for r in rows] == [
        ("open", "warning", 80.0), ("resolved", "critical", 60.0)]


# ------------------------------------------------------------------ check


def test_check_lists_the_detectors_of_a_valid_file(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(
        "quiet_seconds: 120\n"
        "detectors:\n"
        "  - {kind: slippage_spike, name: slip, threshold_bps: 50, critical_bps: 200}\n"
        "  - {kind: robust_zscore, name: spread, metric: spread_bps, window: 100, threshold: 6, direction: high}\n"
        "  - {kind: stale_feed, name: feed, event_types: [market_data], max_silence_seconds: 30, severity: critical}\n"
    )
    result = run("detect", "check", str(good))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [[cell.strip() for cell in line.strip("│ ").split("│")] for line in result.stdout.splitlines()
            if line.startswith("│")]
    assert rows == [
        ["slip", "slippage_spike", "by symbol", "threshold_bps=50, critical_bps=200", "warning"],
        ["spread", "robust_zscore", "spread_bps by symbol", "window=100, warmup=30, threshold=6, direction=high, min_scale=0",
         "warning"],
        ["feed", "stale_feed", "-", "event_types=[market_data], max_silence_seconds=30, forget_after_seconds=86400, expected_sources=[]", "critical"],
    ]
    assert "3 detectors; a spike or outlier resolves after 120 s without a finding" in result.stdout
    assert f"valid: {good}" in result.stdout

    # No file: the configured one, else the packaged default.
    configured = run("detect", "check", env={"TRADEWATCH_DETECTION_PIPELINE": str(good)})
    assert configured.returncode == 0 and f"valid: {good}" in configured.stdout
    packaged = run("detect", "check")
    assert packaged.returncode == 0, packaged.stderr
    assert "valid: default_pipeline.yaml (packaged default)" in packaged.stdout
    assert "13 detectors" in packaged.stdout


def test_check_names_file_detector_key_and_what_is_accepted(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "detectors:\n"
        "  - {kind: zscore, name: latency, metric: fill_latency_seconds, window: 2}\n"
        "  - {kind: slippage_spike, name: slip, threshold_pct: 50}\n"
        "  - {kind: teleport, name: beam}\n"
    )
    result = run("detect", "check", str(bad))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: invalid detection pipeline",
        f"{bad}: detectors[0] (latency): window: Input should be greater than or equal to 5",
        f"{bad}: detectors[1] (slip): threshold_pct: unknown key; accepted: name, kind, severity, threshold_bps, "
        "critical_bps, by",
        f"{bad}: detectors[2] (beam): kind: unknown kind 'teleport'; accepted: zscore, robust_zscore, iqr, ewma, "
        "slippage_spike, latency_excursion, loss_streak, rejection_spike, stale_feed, clock_skew, model",
    ]

    configured = run("detect", "check", env={"TRADEWATCH_DETECTION_PIPELINE": str(bad)})
    assert configured.returncode == 2 and configured.stderr == result.stderr

    missing = run("detect", "check", str(tmp_path / "missing.yaml"))
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"error: cannot read the detection pipeline {tmp_path / 'missing.yaml'}: " \
                                     "No such file or directory"


# ------------------------------------------------------------------ models


def _model(name: str, algorithm: str, trained_at_ns: int):
    config = ModelDetectorConfig(name=name, kind="model", algorithm=algorithm)
    X = np.random.default_rng(0).normal(size=(400, len(FEATURES)))
    return fit_model(config, X, trained_at_ns=trained_at_ns, window_start_ns=trained_at_ns - DAY_NS,
                     window_end_ns=trained_at_ns, seed=0)


def test_models_says_which_model_each_detector_may_use_now(pg_store, env, tmp_path):
    now_ns = time.time_ns()
    store = ModelStore(pg_store.engine)
    store.save(_model("fills_if", "isolation_forest", now_ns - 3 * DAY_NS))
    store.save(_model("fills_if", "isolation_forest", now_ns - DAY_NS))
    store.save(_model("fills_svm", "one_class_svm", now_ns - 3600 * S))
    store.save(_model("orphan", "isolation_forest", now_ns - 3600 * S))
    pipeline = tmp_path / "models.yaml"
    pipeline.write_text(
        "detectors:\n"
        "  - {kind: model, name: fills_if, algorithm: isolation_forest, min_samples: 300, max_age_seconds: 172800}\n"
        "  - {kind: model, name: strict_if, model_name: fills_if, algorithm: isolation_forest, min_samples: 300,\n"
        "     max_age_seconds: 43200}\n"
        "  - {kind: model, name: svm, model_name: fills_svm, algorithm: one_class_svm, min_samples: 1000}\n"
    )
    env = {**env, "TRADEWATCH_DETECTION_PIPELINE": str(pipeline)}

    result = run("detect", "models", "--format", "json", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = json.loads(result.stdout)
    assert [(r["name"], r["algorithm"], r["samples"]) for r in rows] == [
        ("orphan", "isolation_forest", 400), ("fills_svm", "one_class_svm", 400),
        ("fills_if", "isolation_forest", 400), ("fills_if", "isolation_forest", 400),
    ]
    verdicts = [[(v["detector"], v["usable"], v["reason"]) for v in r["usable_now"]] for r in rows]
    assert verdicts[0] == [(None, False, "no model detector of the pipeline uses this name")]
    assert verdicts[1] == [("svm", False, "model 'fills_svm' was trained on 400 fills, fewer than the 1000 required")]
    (usable, too_old) = verdicts[2]
    assert usable == ("fills_if", True, None)
    assert too_old[:2] == ("strict_if", False)
    assert re.fullmatch(r"model 'fills_if' was trained at \S+Z, 1\.0 days before \S+Z, older than the 0\.5 days allowed",
                        too_old[2])
    assert verdicts[3] == [(None, False, "superseded by a newer model of this name")]

    table = run("detect", "models", "--name", "fills_svm", env=env)
    assert table.returncode == 0, table.stderr
    assert "fills_svm" in table.stdout and "one_class_svm" in table.stdout and "fills_if" not in table.stdout
    assert "svm: no: model 'fills_svm' was trained on 400 fills" in table.stdout

    empty = run("detect", "models", "--name", "nope", env=env)
    assert empty.returncode == 0
    assert "no trained model named 'nope' yet; the pipeline's model detectors expect: fills_if (isolation_forest, " \
           "detector fills_if)" in empty.stdout
