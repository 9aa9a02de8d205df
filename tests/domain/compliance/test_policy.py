"""CompliancePolicy loading, validation messages, content hash and PolicyHistory."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from tradewatch.domain.compliance import (
    CompliancePolicy,
    NoPolicyInForce,
    PolicyError,
    PolicyHistory,
    default_policy,
)
from tradewatch.domain.simulation.simulator import CHECK_NAMES

MINIMAL = "version: v1\neffective_from: 2024-01-01T00:00:00Z\n"

POLICY = """\
version: "2024.2"
effective_from: 2024-03-01T00:00:00Z
timezone: Europe/London
restricted_symbols: [NVDA, AAPL]
notional_limits:
  per_order: 250000
  gross_per_strategy_per_day: 10000000
max_position:
  default: {max_notional: 1000000}
  per_symbol:
    BTC-USD: {max_quantity: 20}
"""

REORDERED = """\
max_position:
  per_symbol:
    BTC-USD:
      max_quantity: 20.0
  default:
    max_notional: 1.0e6
notional_limits: {gross_per_strategy_per_day: 10_000_000, per_order: 250000.0}
restricted_symbols:
  - AAPL
  - NVDA
timezone: "Europe/London"
effective_from: 2024-03-01T01:00:00+01:00
version: '2024.2'
"""


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        CompliancePolicy.from_yaml_text(text, "policy.yaml")
    assert str(caught.value) == "\n".join(f"policy.yaml: {line}" for line in caught.value.problems)
    return caught.value.problems


def test_minimal_policy_is_valid_and_checks_nothing() -> None:
    policy = CompliancePolicy.from_yaml_text(MINIMAL)
    assert policy.timezone == "UTC"
    assert policy.required_risk_checks.for_strategy("momentum") == ()
    assert policy.notional_limits.per_order is None
    assert policy.max_position.for_symbol("AAPL").max_notional is None
    assert not policy.llm_review.required_for("momentum", 1e12)
    assert policy.order_rate.max_orders_per_second is None
    assert not policy.risk_overrides.approver_required


def test_default_policy_loads_with_documented_values() -> None:
    policy = default_policy()
    assert policy.version == "2024.1"
    assert policy.effective_from == datetime(2024, 1, 1, tzinfo=UTC)
    assert policy.timezone == "America/New_York"
    assert policy.required_risk_checks.minimum_passed == 1
    assert set(policy.required_risk_checks.checks) <= set(CHECK_NAMES)  # the simulator's names
    assert policy.llm_review.required_for("momentum", 1_000_000.0)
    assert not policy.llm_review.required_for("momentum", 999_999.0)
    assert policy.notional_limits.per_order == 5_000_000.0
    assert policy.max_position.for_symbol("AAPL").max_notional == 2_000_000.0
    assert policy.trading_state.halted_blocks_new_orders
    assert policy.risk_overrides.approver_required


def test_default_policy_hash_is_stable() -> None:
    first, second = default_policy(), default_policy()
    assert first.content_hash == second.content_hash
    assert len(first.content_hash) == 64 and int(first.content_hash, 16) >= 0
    # Same content built from a dump gives the same hash.
    assert CompliancePolicy.model_validate(first.model_dump()).content_hash == first.content_hash


def test_hash_ignores_yaml_layout_key_order_and_set_order() -> None:
    a = CompliancePolicy.from_yaml_text(POLICY)
    b = CompliancePolicy.from_yaml_text(REORDERED)
    assert a == b
    assert a.content_hash == b.content_hash
    assert a.restricted_symbols == ("AAPL", "NVDA")
    assert b.effective_from == datetime(2024, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(("old", "new"), [
    ('version: "2024.2"', 'version: "2024.3"'),
    ("2024-03-01T00:00:00Z", "2024-03-01T00:00:01Z"),
    ("Europe/London", "Europe/Paris"),
    ("[NVDA, AAPL]", "[NVDA, AAPL, MSFT]"),
    ("per_order: 250000", "per_order: 250001"),
    ("max_quantity: 20", "max_quantity: 21"),
    ("max_notional: 1000000}", "max_notional: 1000000, max_quantity: 5}"),
])
def test_any_value_change_changes_the_hash(old: str, new: str) -> None:
    assert old in POLICY
    changed = CompliancePolicy.from_yaml_text(POLICY.replace(old, new))
    assert changed.content_hash != CompliancePolicy.from_yaml_text(POLICY).content_hash


def test_turning_on_a_default_section_changes_the_hash() -> None:
    base = CompliancePolicy.from_yaml_text(MINIMAL)
    on = CompliancePolicy.from_yaml_text(MINIMAL + "risk_overrides: {approver_required: true}\n")
    explicit_default = CompliancePolicy.from_yaml_text(MINIMAL + "risk_overrides: {approver_required: false}\n")
    assert on.content_hash != base.content_hash
    assert explicit_default.content_hash == base.content_hash


def test_unknown_top_level_key() -> None:
    assert problems(MINIMAL + "limits: {}\n") == [
        "limits: unknown key; accepted: version, effective_from, timezone, required_risk_checks, llm_review, "
        "forbidden_llm_decisions, notional_limits, max_position, restricted_symbols, trading_state, order_rate, "
        "duplicate_orders, price_collar, risk_overrides, account_limits"
    ]


def test_unknown_nested_key_lists_that_sections_keys() -> None:
    assert problems(MINIMAL + "notional_limits: {per_trade: 5}\n") == [
        "notional_limits.per_trade: unknown key; accepted: per_order, per_instrument_per_day, gross_per_strategy_per_day"
    ]
    assert problems(MINIMAL + "max_position: {per_symbol: {AAPL: {qty: 3}}}\n") == [
        "max_position.per_symbol.AAPL.qty: unknown key; accepted: max_quantity, max_notional"
    ]


def test_negative_limit() -> None:
    assert problems(MINIMAL + "notional_limits:\n  per_order: -5\n") == [
        "notional_limits.per_order: Input should be greater than 0 (got -5)"
    ]


def test_unknown_timezone() -> None:
    assert problems(MINIMAL + "timezone: Mars/Olympus\n") == [
        "timezone: unknown timezone 'Mars/Olympus'; accepted: an IANA name such as 'UTC', 'America/New_York' "
        "or 'Europe/London'"
    ]


def test_unknown_llm_decision() -> None:
    assert problems(MINIMAL + "forbidden_llm_decisions: [reject, ignore]\n") == [
        "forbidden_llm_decisions[1]: Input should be 'approve', 'reject', 'modify' or 'escalate' (got 'ignore')"
    ]


def test_llm_review_strategies_must_be_star_or_list() -> None:
    assert problems(MINIMAL + "llm_review: {strategies: momentum}\n") == [
        "llm_review.strategies: expected \"*\" (every strategy) or a list of strategy_ids, got 'momentum'"
    ]


def test_duplicate_yaml_key() -> None:
    assert problems(MINIMAL + "timezone: UTC\ntimezone: Europe/London\n") == [
        "line 4, column 1: duplicate key 'timezone' (first on line 3); the second would silently replace the first"
    ]


def test_effective_from_needs_an_offset() -> None:
    assert problems("version: v1\neffective_from: 2024-01-01T09:30:00\n") == [
        "effective_from: 2024-01-01T09:30:00 has no timezone offset; accepted: an ISO 8601 time with an offset, "
        "e.g. 2024-01-01T00:00:00Z"
    ]
    assert problems("version: v1\neffective_from: 2024-01-01\n") == [
        "effective_from: 2024-01-01 is a date; accepted: an ISO 8601 time with an offset, e.g. 2024-01-01T00:00:00Z"
    ]


def test_missing_version_and_not_a_mapping() -> None:
    assert problems("effective_from: 2024-01-01T00:00:00Z\n") == ["version: required"]
    assert problems("- a\n")[0].startswith("expected a mapping with keys version, effective_from, ")


def test_per_strategy_checks_replace_the_global_list() -> None:
    policy = CompliancePolicy.from_yaml_text(MINIMAL + """\
required_risk_checks:
  checks: [order_notional, max_position]
  per_strategy: {stat_arb: [concentration]}
""")
    assert policy.required_risk_checks.for_strategy("momentum") == ("max_position", "order_notional")
    assert policy.required_risk_checks.for_strategy("stat_arb") == ("concentration",)


def test_trading_day_is_in_the_policy_timezone() -> None:
    policy = CompliancePolicy.from_yaml_text(MINIMAL + "timezone: America/New_York\n")
    # 2024-03-05 03:00 UTC is 22:00 on 2024-03-04 in New York (EST, UTC-5).
    at = datetime(2024, 3, 5, 3, 0, tzinfo=UTC)
    assert policy.trading_day(at) == date(2024, 3, 4)
    assert policy.trading_day(int(at.timestamp()) * 1_000_000_000) == date(2024, 3, 4)
    assert policy.trading_day(at + timedelta(hours=2)) == date(2024, 3, 5)


# ---------------------------------------------------------------------- history

HISTORY = """\
policies:
  - version: b
    effective_from: 2024-02-01T00:00:00Z
    notional_limits: {per_order: 200}
  - version: a
    effective_from: 2024-01-01T00:00:00Z
    notional_limits: {per_order: 100}
"""

JAN = datetime(2024, 1, 1, tzinfo=UTC)
FEB = datetime(2024, 2, 1, tzinfo=UTC)


def ns(at: datetime) -> int:
    return int(at.timestamp()) * 1_000_000_000


def test_history_sorted_and_in_force_at_boundaries() -> None:
    history = PolicyHistory.from_yaml_text(HISTORY, "history.yaml")
    assert [policy.version for policy in history.policies] == ["a", "b"]
    assert history.latest.version == "b"
    assert history.version("a").notional_limits.per_order == 100.0
    assert history.in_force(JAN).version == "a"
    assert history.in_force(ns(JAN)).version == "a"
    assert history.in_force(ns(FEB) - 1).version == "a"
    assert history.in_force(FEB).version == "b"
    assert history.in_force(ns(FEB)).version == "b"
    assert history.in_force(FEB.astimezone(timezone(timedelta(hours=-5)))).version == "b"
    assert history.in_force(datetime(2030, 1, 1, tzinfo=UTC)).version == "b"


def test_history_before_the_first_version() -> None:
    history = PolicyHistory.from_yaml_text(HISTORY)
    with pytest.raises(NoPolicyInForce) as caught:
        history.in_force(ns(JAN) - 1)
    assert str(caught.value) == (
        "no compliance policy in force at 2023-12-31T23:59:59.999999Z: the earliest, version 'a', "
        "takes effect at 2024-01-01T00:00:00Z"
    )


def test_history_from_a_single_policy() -> None:
    history = PolicyHistory.from_yaml_text(POLICY)
    assert len(history) == 1 and history.latest.version == "2024.2"


def test_history_refuses_duplicate_versions_and_times() -> None:
    with pytest.raises(PolicyError) as caught:
        PolicyHistory.from_yaml_text(HISTORY.replace("version: b", "version: a"), "history.yaml")
    assert caught.value.problems == ["version 'a' appears twice; versions must be unique"]
    with pytest.raises(PolicyError) as caught:
        PolicyHistory.from_yaml_text(HISTORY.replace("2024-02-01", "2024-01-01"), "history.yaml")
    assert caught.value.problems == [
        "versions 'b' and 'a' both take effect at 2024-01-01T00:00:00Z; effective_from must differ"
    ]


def test_history_errors_name_the_list_item() -> None:
    with pytest.raises(PolicyError) as caught:
        PolicyHistory.from_yaml_text(HISTORY.replace("per_order: 200", "per_order: 0"), "history.yaml")
    assert str(caught.value) == "history.yaml: policies[0] (b): notional_limits.per_order: Input should be greater than 0 (got 0)"
    with pytest.raises(PolicyError) as caught:
        PolicyHistory.from_yaml_text("policies: []\n", "history.yaml")
    assert caught.value.problems == ["policies: expected at least one policy"]
