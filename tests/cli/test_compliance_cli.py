"""`tradewatch compliance check` on event files (typer's CliRunner, in process) and on a real
PostgreSQL trail (a subprocess with its own environment); `tradewatch simulate --output
--inject-violations` feeding it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from tradewatch.cli.main import app
from tradewatch.domain.events import (
    MarketDataEvent,
    MarketDataPayload,
    OrderEvent,
    OrderPayload,
    RiskCheckEvent,
    RiskCheckPayload,
    SignalEvent,
    SignalPayload,
)
from tradewatch.domain.events.jsonl import event_line
from tradewatch.domain.events.parsing import parse_batch
from tradewatch.domain.events.timestamps import format_rfc3339_ns
from tradewatch.storage.database import make_engine
from tradewatch.storage.migrate import upgrade
from tradewatch.storage.store import AuditStore

from tests.factories import BASE_NS

MS = 1_000_000
POLICY = """\
version: test-1
effective_from: 2024-01-01T00:00:00Z
required_risk_checks:
  minimum_passed: 1
restricted_symbols: [GME]
"""

runner = CliRunner()


# ------------------------------------------------------------------ events


def _quote(at: int, symbol: str) -> MarketDataEvent:
    return MarketDataEvent(occurred_at=BASE_NS + at, source="engine-1", symbol=symbol,
                           payload=MarketDataPayload(bid=Decimal("99.99"), ask=Decimal("100.01")))


def _chain(n: int, at: int, symbol: str = "AAPL", checked: bool = True) -> list:
    """A signal, its passed risk check (unless not ``checked``) and a small limit order at the mid
    (its size differs from the other chains', so none is a duplicate order)."""
    envelope = dict(source="engine-1", strategy_id="momentum", symbol=symbol, signal_id=f"sig-{n}")
    events = [SignalEvent(occurred_at=BASE_NS + at, payload=SignalPayload(direction="long", confidence=0.6), **envelope)]
    if checked:
        events.append(RiskCheckEvent(occurred_at=BASE_NS + at + MS, **envelope,
                                     payload=RiskCheckPayload(check_name="max_position", passed=True)))
    events.append(OrderEvent(occurred_at=BASE_NS + at + 2 * MS, order_id=f"ord-{n}", **envelope,
                             payload=OrderPayload(side="buy", quantity=Decimal(10 + n), order_type="limit",
                                                  limit_price=Decimal("100.00"), status="submitted")))
    return events


def clean_events() -> list:
    return [_quote(0, "AAPL"), _quote(0, "GME"), *_chain(1, 10 * MS), *_chain(2, 20 * MS)]


def violating_events() -> list:
    """ord-3 trades the restricted GME; ord-4 has no risk check."""
    return [*clean_events(), *_chain(3, 30 * MS, symbol="GME"), *_chain(4, 40 * MS, checked=False)]


def write_events(path, events, extra_lines: dict[int, str] | None = None) -> None:
    """The events one per line (as AuditClient sends them); ``extra_lines`` {line number: text}
    inserted at those (1-based) lines."""
    lines = [event_line(event) for event in events]
    for number, text in sorted((extra_lines or {}).items()):
        lines.insert(number - 1, text)
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def policy_file(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def check(*args: str):
    return runner.invoke(app, ["compliance", "check", *args])


def test_event_lines_are_what_the_audit_client_sends():
    events = violating_events()
    good, bad = parse_batch([event_line(event) for event in events])
    assert not bad and [parsed.event for parsed in good] == events
    assert "null" not in event_line(events[0])  # absent optional fields are left out, as AuditClient does


# ------------------------------------------------------------------ event files


def test_a_clean_file_exits_0(tmp_path, policy_file):
    path = tmp_path / "clean.jsonl"
    write_events(path, clean_events())
    result = check("--events", str(path), "--policy", str(policy_file), "--format", "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    body = json.loads(result.stdout)
    assert body["issues"] == [] and body["issue_count"] == 0
    assert body["events_examined"] == len(clean_events())
    assert body["policy_version"] == "test-1"
    # The default period is the whole file: first event to last event + 1 ns.
    assert body["period_start"] == BASE_NS and body["period_end"] == BASE_NS + 20 * MS + 2 * MS + 1


def test_the_default_policy_is_the_packaged_one(tmp_path):
    path = tmp_path / "clean.jsonl"
    write_events(path, clean_events())
    result = check("--events", str(path), "--format", "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["policy_version"] == "2024.1"


def test_violations_exit_1_with_every_issue_in_json(tmp_path, policy_file):
    path = tmp_path / "violating.jsonl"
    write_events(path, violating_events())
    result = check("--events", str(path), "--policy", str(policy_file), "--format", "json")
    assert result.exit_code == 1, result.stdout + result.stderr
    body = json.loads(result.stdout)
    by_code = {issue["code"]: issue for issue in body["issues"]}
    assert set(by_code) == {"RESTRICTED_SYMBOL", "ORDER_WITHOUT_RISK_CHECK"}
    assert body["counts_by_code"]["RESTRICTED_SYMBOL"] == 1 and body["counts_by_severity"]["critical"] == 2
    restricted = by_code["RESTRICTED_SYMBOL"]
    assert (restricted["order_id"], restricted["signal_id"], restricted["symbol"]) == ("ord-3", "sig-3", "GME")
    assert restricted["occurred_at"] == BASE_NS + 32 * MS
    assert restricted["occurred_at_iso"] == format_rfc3339_ns(BASE_NS + 32 * MS)
    for key in ("severity", "message", "strategy_id", "event_ids", "metadata", "key"):
        assert key in restricted
    assert by_code["ORDER_WITHOUT_RISK_CHECK"]["order_id"] == "ord-4"


def test_a_period_limits_what_is_checked(tmp_path, policy_file):
    path = tmp_path / "violating.jsonl"
    write_events(path, violating_events())
    start, end = format_rfc3339_ns(BASE_NS + 35 * MS), format_rfc3339_ns(BASE_NS + 50 * MS)
    result = check("--events", str(path), "--policy", str(policy_file), "--format", "json", "--from", start, "--to", end)
    assert result.exit_code == 1, result.stdout + result.stderr
    assert [issue["order_id"] for issue in json.loads(result.stdout)["issues"]] == ["ord-4"]


def test_an_invalid_line_exits_2_naming_it_and_the_good_events_are_still_checked(tmp_path, policy_file):
    path = tmp_path / "mixed.jsonl"
    bad = event_line(_quote(0, "MSFT")).replace('"source":"engine-1"', '"source":"engine-1","occurred_at_local":1')
    write_events(path, violating_events(), extra_lines={3: "{not json", 5: "", 7: bad})
    result = check("--events", str(path), "--policy", str(policy_file), "--format", "json")
    assert result.exit_code == 2
    assert f"{path} line 3: not valid JSON" in result.stderr
    assert f"{path} line 7: occurred_at_local: unknown envelope field" in result.stderr
    assert "line 5" not in result.stderr  # a blank line is skipped
    assert f"2 of {len(violating_events()) + 2} lines" in result.stderr
    body = json.loads(result.stdout)
    assert body["events_examined"] == len(violating_events())
    assert {issue["code"] for issue in body["issues"]} == {"RESTRICTED_SYMBOL", "ORDER_WITHOUT_RISK_CHECK"}


def test_a_repeated_event_id_keeps_the_first(tmp_path, policy_file):
    events = clean_events()
    conflicting = events[-1].model_copy(update={"symbol": "GME"})  # same event_id, other content
    path = tmp_path / "repeats.jsonl"
    write_events(path, [*events, events[0], conflicting])
    result = check("--events", str(path), "--policy", str(policy_file), "--format", "json")
    assert result.exit_code == 2  # the conflict is bad input; the identical repeat is absorbed
    assert f"line {len(events) + 2}: event_id {events[-1].event_id} was already used on line {len(events)}" in result.stderr
    assert "1 lines of" in result.stderr and "repeat an earlier event exactly" in result.stderr
    body = json.loads(result.stdout)
    assert body["events_examined"] == len(events) and body["issues"] == []


def test_a_bad_policy_exits_2_naming_the_file_and_key(tmp_path):
    path = tmp_path / "clean.jsonl"
    write_events(path, clean_events())
    policy = tmp_path / "bad-policy.yaml"
    policy.write_text(POLICY + "notional_limits:\n  per_order: -5\n  per_day: 10\n")
    result = check("--events", str(path), "--policy", str(policy))
    assert result.exit_code == 2 and result.stdout == ""
    assert f"{policy}: notional_limits.per_order: Input should be greater than 0" in result.stderr
    assert f"{policy}: notional_limits.per_day: unknown key; accepted: per_order" in result.stderr
    missing = check("--events", str(path), "--policy", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2 and "cannot read the compliance policy" in missing.stderr


@pytest.mark.parametrize(("option", "value", "expected"), [
    ("--from", "yesterday", "--from 'yesterday': not a timestamp; accepted: an RFC 3339 time with an offset"),
    ("--to", "2026-11-17T10:00:00", "--to '2026-11-17T10:00:00': missing UTC offset"),
    ("--to", "2026-02-30", "--to '2026-02-30': day is out of range for month"),
])
def test_a_bad_time_exits_2(tmp_path, policy_file, option, value, expected):
    path = tmp_path / "clean.jsonl"
    write_events(path, clean_events())
    result = check("--events", str(path), "--policy", str(policy_file), option, value)
    assert result.exit_code == 2
    assert expected in result.stderr


def test_from_after_to_and_unreadable_files_exit_2(tmp_path, policy_file):
    path = tmp_path / "clean.jsonl"
    write_events(path, clean_events())
    reversed_period = check("--events", str(path), "--from", "2026-11-18", "--to", "2026-11-17")
    assert reversed_period.exit_code == 2 and "--to 2026-11-17 is not after --from 2026-11-18" in reversed_period.stderr
    missing = check("--events", str(tmp_path / "missing.jsonl"))
    assert missing.exit_code == 2 and "cannot read the events file" in missing.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    nothing = check("--events", str(empty))
    assert nothing.exit_code == 2 and "holds no events" in nothing.stderr
    # A date is midnight UTC: the whole of 2026-11-17 holds no event of these (they are on the 18th).
    day = check("--events", str(path), "--from", "2026-11-17", "--to", "2026-11-18", "--format", "json")
    assert day.exit_code == 0 and json.loads(day.stdout)["events_examined"] == 0


def test_markdown_report_shape(tmp_path, policy_file):
    path = tmp_path / "violating.jsonl"
    write_events(path, violating_events())
    result = check("--events", str(path), "--policy", str(policy_file), "--format", "markdown")
    assert result.exit_code == 1, result.stdout + result.stderr
    text = result.stdout
    assert text.startswith("# Compliance report\n")
    assert "| policy | version test-1, SHA-256 `" in text
    assert f"| events examined | {len(violating_events())} |" in text
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## Issues by severity", "## Issues by code", "## Issues"]
    assert "| critical | 2 |" in text and "| RESTRICTED_SYMBOL | critical | 1 |" in text
    assert "| DUPLICATE_ORDER | warning | 0 |" in text
    rows = [line for line in text.split("## Issues\n", 1)[1].splitlines() if line.startswith("| 2026")]
    assert len(rows) == 2
    assert "| RESTRICTED_SYMBOL | critical | momentum / GME | ord-3 / sig-3 |" in rows[0]


# ------------------------------------------------------------------ simulate feeds it


def test_simulated_violations_are_found_by_the_check(tmp_path):
    path = tmp_path / "simulated.jsonl"
    simulated = runner.invoke(app, ["simulate", "--rate", "300", "--duration", "20", "--seed", "4", "--output",
                                    str(path), "--inject-violations"])
    assert simulated.exit_code == 0, simulated.stdout
    assert "not injected: RESTRICTED_SYMBOL: restricted_symbols is empty" in simulated.stdout
    injected = simulated.stdout.split("policy 2024.1:", 1)[1].split("not injected")[0]
    injected_codes = {code.strip() for code in " ".join(injected.split()).split(",")}
    assert "ORDER_WITHOUT_RISK_CHECK" in injected_codes
    result = check("--events", str(path), "--format", "json")
    assert result.exit_code == 1, result.stderr
    counts = json.loads(result.stdout)["counts_by_code"]
    assert {code for code in injected_codes if counts[code] == 0} == set()


def test_simulate_output_writes_contract_json(tmp_path):
    path = tmp_path / "simulated.jsonl"
    result = runner.invoke(app, ["simulate", "--rate", "200", "--duration", "5", "--seed", "9", "--output", str(path)])
    assert result.exit_code == 0, result.stdout
    lines = path.read_text().splitlines()
    good, bad = parse_batch(lines)
    assert not bad and len(good) == len(lines) > 500
    assert f"wrote {len(lines):,} events to {path}" in " ".join(result.stdout.split())
    assert lines == [event_line(parsed.event) for parsed in good]


def test_simulate_refuses_a_policy_without_injection(tmp_path, policy_file):
    result = runner.invoke(app, ["simulate", "--output", str(tmp_path / "x.jsonl"), "--policy", str(policy_file)])
    assert result.exit_code == 2 and "add --inject-violations" in " ".join(result.stdout.split())


# ------------------------------------------------------------------ against the trail


def test_check_against_the_postgresql_trail(database_url, policy_file):
    engine = make_engine(database_url)
    upgrade(engine)
    good, bad = parse_batch([event_line(event) for event in violating_events()])
    assert not bad
    AuditStore(engine).ingest(good, batch_id="cli-test", received_at=datetime.now(timezone.utc))
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWATCH_")}
    env.update(TRADEWATCH_DATABASE_URL=database_url, TRADEWATCH_BROKER_URL="redis://127.0.0.1:6379/15",
               TRADEWATCH_COMPLIANCE_POLICY=str(policy_file))
    period = ["--from", format_rfc3339_ns(BASE_NS), "--to", format_rfc3339_ns(BASE_NS + 60 * MS)]
    result = subprocess.run([sys.executable, "-m", "tradewatch.cli.main", "compliance", "check", *period,
                             "--format", "json"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    body = json.loads(result.stdout)
    assert body["policy_version"] == "test-1"  # TRADEWATCH_COMPLIANCE_POLICY
    assert body["events_examined"] == len(violating_events())
    assert {issue["code"] for issue in body["issues"]} == {"RESTRICTED_SYMBOL", "ORDER_WITHOUT_RISK_CHECK"}
    # The default period (the last 24 hours) holds none of these 2026-11-18 events.
    recent = subprocess.run([sys.executable, "-m", "tradewatch.cli.main", "compliance", "check", "--format", "json"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert recent.returncode == 0, recent.stdout + recent.stderr
    assert json.loads(recent.stdout)["events_examined"] == 0
