"""ComplianceIssue keys and round trips, ISSUE_CODES, ComplianceReport."""

from __future__ import annotations

import json

import pytest

from tradewatch.domain.compliance import ISSUE_CODES, SEVERITIES, ComplianceIssue, ComplianceReport

T = 1_704_164_400_000_000_123  # 2024-01-02T03:00:00.000000123Z

CODES = [
    "ORDER_WITHOUT_RISK_CHECK", "RISK_CHECK_FAILED_ORDER_SENT", "RISK_OVERRIDE_WITHOUT_APPROVER", "LLM_REVIEW_MISSING",
    "LLM_REJECTED_ORDER_SENT", "LLM_FORBIDDEN_DECISION", "ORDER_NOTIONAL_LIMIT", "DAILY_NOTIONAL_LIMIT",
    "POSITION_LIMIT", "RESTRICTED_SYMBOL", "TRADING_WHILE_HALTED", "ORDER_RATE_LIMIT", "DUPLICATE_ORDER",
    "PRICE_COLLAR",
]


def test_the_fourteen_codes_each_have_a_severity_and_a_trigger_sentence() -> None:
    assert list(ISSUE_CODES) == CODES
    for code, info in ISSUE_CODES.items():
        assert info.code == code
        assert info.severity in SEVERITIES
        assert info.trigger[0].isupper() and info.trigger.endswith(".") and len(info.trigger.split()) >= 6


def test_key_prefers_order_then_signal_then_strategy_symbol_day() -> None:
    order = ComplianceIssue.new("PRICE_COLLAR", "far", T, order_id="ord-1", signal_id="sig-1", strategy_id="m")
    signal = ComplianceIssue.new("LLM_FORBIDDEN_DECISION", "no", T, signal_id="sig-1", strategy_id="m")
    rate = ComplianceIssue.new("ORDER_RATE_LIMIT", "fast", T, strategy_id="momentum")
    daily = ComplianceIssue.new("DAILY_NOTIONAL_LIMIT", "big", T, strategy_id="momentum", symbol="AAPL",
                                metadata={"trading_day": "2024-01-01"})
    assert order.key == "PRICE_COLLAR|order:ord-1"
    assert signal.key == "LLM_FORBIDDEN_DECISION|signal:sig-1"
    assert rate.key == "ORDER_RATE_LIMIT|strategy:momentum|symbol:-|day:2024-01-02"
    assert daily.key == "DAILY_NOTIONAL_LIMIT|strategy:momentum|symbol:AAPL|day:2024-01-01"


def test_day_scoped_codes_key_by_day_even_with_the_breaching_order() -> None:
    """A limit that stays breached is one issue per strategy, symbol and day, not one per order."""
    first = ComplianceIssue.new("ORDER_RATE_LIMIT", "fast", T, order_id="ord-1", strategy_id="momentum")
    second = ComplianceIssue.new("ORDER_RATE_LIMIT", "fast", T + 1, order_id="ord-2", strategy_id="momentum")
    assert first.key == second.key == "ORDER_RATE_LIMIT|strategy:momentum|symbol:-|day:2024-01-02"
    assert {code for code, info in ISSUE_CODES.items() if info.scope == "day"} == {
        "DAILY_NOTIONAL_LIMIT", "POSITION_LIMIT", "ORDER_RATE_LIMIT"}


def test_new_takes_the_default_severity_unless_given() -> None:
    assert ComplianceIssue.new("DUPLICATE_ORDER", "twice", T).severity == "warning"
    assert ComplianceIssue.new("RESTRICTED_SYMBOL", "no", T).severity == "critical"
    assert ComplianceIssue.new("DUPLICATE_ORDER", "twice", T, severity="info").severity == "info"


def test_issue_round_trips_through_json() -> None:
    issue = ComplianceIssue.new(
        "ORDER_NOTIONAL_LIMIT", "order notional 6,000,000 above per_order 5,000,000", T,
        order_id="ord-9", signal_id="sig-9", strategy_id="stat_arb", symbol="ES-FUT",
        event_ids=["e1", "e2"], metadata={"notional": 6_000_000.0, "limit": 5_000_000.0, "path": ("a", 1)},
    )
    body = json.loads(json.dumps(issue.to_dict(), allow_nan=False))
    assert body["occurred_at_iso"] == "2024-01-02T03:00:00.000000123Z"
    assert body["key"] == "ORDER_NOTIONAL_LIMIT|order:ord-9"
    assert body["event_ids"] == ["e1", "e2"]
    back = ComplianceIssue.from_dict(body)
    assert back == issue
    assert back.event_ids == ("e1", "e2") and back.metadata["path"] == ["a", 1]


def test_issue_refuses_unknown_code_severity_and_non_json_metadata() -> None:
    with pytest.raises(ValueError, match="unknown compliance issue code 'TOO_BIG'; accepted: ORDER_WITHOUT_RISK_CHECK, "):
        ComplianceIssue.new("TOO_BIG", "x", T)
    with pytest.raises(ValueError, match="unknown severity 'fatal'; accepted: info, warning, critical"):
        ComplianceIssue(code="PRICE_COLLAR", severity="fatal", message="x", occurred_at=T)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"metadata.limit: nan is not a finite number"):
        ComplianceIssue.new("PRICE_COLLAR", "x", T, metadata={"limit": float("nan")})
    with pytest.raises(ValueError, match="metadata.s: set is not a JSON value"):
        ComplianceIssue.new("PRICE_COLLAR", "x", T, metadata={"s": {1}})


def test_report_counts_and_round_trip() -> None:
    issues = (
        ComplianceIssue.new("PRICE_COLLAR", "a", T, order_id="o1"),
        ComplianceIssue.new("PRICE_COLLAR", "b", T + 1, order_id="o2"),
        ComplianceIssue.new("RESTRICTED_SYMBOL", "c", T + 2, order_id="o3"),
    )
    report = ComplianceReport(issues=issues, policy_version="2024.1", policy_hash="ab" * 32,
                              events_examined=1000, period_start=T - 123, period_end=T + 10)
    body = json.loads(json.dumps(report.to_dict()))
    assert body["issue_count"] == 3
    assert body["counts_by_code"]["PRICE_COLLAR"] == 2
    assert body["counts_by_code"]["RESTRICTED_SYMBOL"] == 1
    assert sum(body["counts_by_code"].values()) == 3 and list(body["counts_by_code"]) == CODES
    assert body["counts_by_severity"] == {"info": 0, "warning": 2, "critical": 1}
    assert body["period_start_iso"] == "2024-01-02T03:00:00.000000000Z"
    assert body["policy_version"] == "2024.1" and body["policy_hash"] == "ab" * 32
    assert ComplianceReport.from_dict(body) == report


def test_report_refuses_a_reversed_period() -> None:
    with pytest.raises(ValueError, match="period_end .* is before period_start"):
        ComplianceReport(issues=(), policy_version="v", policy_hash="h", events_examined=0,
                         period_start=T, period_end=T - 1)
