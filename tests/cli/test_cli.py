"""The `tradewatch` command, run as a user would: a subprocess with its own environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWATCH_")}
    clean.update(env or {})
    clean["COLUMNS"] = "200"
    return subprocess.run([sys.executable, "-m", "tradewatch.cli.main", *args], env=clean, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    state = tmp_path_factory.mktemp("demo") / "state"
    result = run("demo", "--duration", "5", "--rate", "400", "--seed", "3", "--state-dir", str(state))
    return result, state


def test_demo_stores_everything_and_reconstructs_a_trade(demo_run):
    result, _state = demo_run
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    emitted, stored = map(lambda s: int(s.replace(",", "")), re.search(r"emitted ([\d,]+) events; the audit trail holds ([\d,]+)", out).groups())
    assert emitted == stored > 1000
    assert "(lost 0)" in out
    for reason in ("missing UTC offset", "it looks like seconds", "not valid JSON"):
        assert reason in out
    assert "trade history of signal" in out
    for kind in ("signal", "risk_check", "llm_decision", "order", "fill", "position_update"):
        assert f" {kind} " in out


def test_audit_history_reads_the_demo_trail(demo_run):
    result, state = demo_run
    signal_id = re.search(r"audit history\s+(sig-[0-9a-f]+)", result.stdout).group(1)
    history = run("audit", "history", signal_id, "--json", env={"TRADEWATCH_STATE_DIR": str(state)})
    assert history.returncode == 0, history.stderr
    assert f'"signal_id": "{signal_id}"' in history.stdout
    assert '"event_type": "fill"' in history.stdout

    unknown = run("audit", "history", "sig-nope", env={"TRADEWATCH_STATE_DIR": str(state)})
    assert unknown.returncode == 2
    assert "no event in the audit trail carries signal_id 'sig-nope'" in unknown.stdout


def test_worker_refuses_unknown_queues_and_embedded_mode(tmp_path):
    bad_queue = run("worker", "-Q", "audit,firehose", env={"TRADEWATCH_STATE_DIR": str(tmp_path)})
    assert bad_queue.returncode == 2
    assert "unknown queue(s) firehose; accepted: audit, analysis, alerts, reports" in bad_queue.stdout
    embedded = run("worker", env={"TRADEWATCH_STATE_DIR": str(tmp_path)})
    assert embedded.returncode == 2 and "no broker configured" in embedded.stdout


def test_half_configured_environment_is_an_error_not_a_fallback(tmp_path):
    result = run("db", "upgrade", env={"TRADEWATCH_DATABASE_URL": "postgresql://postgres@127.0.0.1/x"})
    assert result.returncode == 2
    assert "TRADEWATCH_BROKER_URL is not set while the other URL is" in result.stdout


def test_db_upgrade_migrates_postgresql(database_url, redis_url):
    result = run("db", "upgrade", env={"TRADEWATCH_DATABASE_URL": database_url, "TRADEWATCH_BROKER_URL": redis_url})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "schema at revision 0002_alert_delivery_failures" in result.stdout
