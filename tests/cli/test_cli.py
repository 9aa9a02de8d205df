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
    assert "schema at revision 0006_dashboard" in result.stdout


def test_demo_ends_with_the_post_trade_analytics(demo_run):
    result, _state = demo_run
    assert "post-trade analytics of the demo's trading" in result.stdout
    assert re.search(r"round trips\s+│\s+[1-9][\d,]*", result.stdout)


def test_demo_ends_with_the_anomalies_the_pipeline_found(demo_run):
    import json

    result, state = demo_run
    out = result.stdout
    assert "anomalies found by the detection pipeline" in out
    total, still_open, resolved = map(int, re.search(r"(\d+) anomalies: (\d+) open, (\d+) resolved", out).groups())
    assert total == still_open + resolved >= 1
    # The demo trains no model: the model detector reports that, and uses none.
    assert re.search(r"│ fill_isolation_forest\s+│ model_unusable\s+│ warning\s+│", out)
    listed = run("detect", "anomalies", "--status", "all", "--format", "json", "--limit", "1000",
                 env={"TRADEWATCH_STATE_DIR": str(state)})
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == total


def test_analytics_report_reads_the_demo_trail_in_each_format(demo_run):
    import csv
    import io
    import json

    _result, state = demo_run
    env = {"TRADEWATCH_STATE_DIR": str(state)}
    period = ("--from", "2000-01-01", "--to", "2100-01-01")
    as_json = run("analytics", "report", *period, "--format", "json", "--capital", "1000000",
                  "--timezone", "America/New_York", env=env)
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    body = json.loads(as_json.stdout)
    assert body["summary"]["round_trips"] > 0
    assert body["period"]["timezone"] == "America/New_York"
    assert all(abs(d) < 0.005 for d in body["attribution"]["reconciliation"].values())
    assert body["performance"]["statistics"]["sharpe_ratio"] is None or isinstance(body["performance"]["statistics"]["sharpe_ratio"], float)

    markdown = run("analytics", "report", *period, env=env)
    assert markdown.returncode == 0, markdown.stderr
    for heading in ("## Performance", "## Trades", "## Attribution", "### By factor", "## Slippage", "## Execution",
                    "## Regimes", "## Signals"):
        assert heading in markdown.stdout, heading

    as_csv = run("analytics", "report", *period, "--format", "csv", env=env)
    rows = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert rows[0] == ["section", "table", "row", "column", "value"]
    assert ["summary", "", "", "round_trips", str(body["summary"]["round_trips"])] in rows


def test_analytics_report_arguments_are_checked_with_what_is_accepted(demo_run):
    _result, state = demo_run
    env = {"TRADEWATCH_STATE_DIR": str(state)}
    bad_time = run("analytics", "report", "--from", "last tuesday", "--to", "2100-01-01", env=env)
    assert bad_time.returncode == 2
    assert "--from 'last tuesday' is not a time; expected RFC 3339" in bad_time.stdout + bad_time.stderr
    backwards = run("analytics", "report", "--from", "2026-02-01", "--to", "2026-01-01", env=env)
    assert backwards.returncode == 2 and "is not after --from" in backwards.stdout + backwards.stderr
    bad_format = run("analytics", "report", "--from", "2026-01-01", "--to", "2026-02-01", "--format", "xml", env=env)
    assert bad_format.returncode == 2 and "--format 'xml' is not one of json, markdown, csv" in bad_format.stdout + bad_format.stderr
    bad_zone = run("analytics", "report", "--from", "2026-01-01", "--to", "2026-02-01", "--timezone", "Mars/Base", env=env)
    assert bad_zone.returncode == 2 and "unknown timezone 'Mars/Base'" in bad_zone.stdout + bad_zone.stderr
