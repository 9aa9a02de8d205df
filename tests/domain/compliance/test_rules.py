"""One scenario per issue code with the fewest events that trigger it, and near misses that must not."""

from __future__ import annotations

import pytest

from tradewatch.domain.compliance import CompliancePolicy, default_policy

from .builders import S, T0, Stream, codes, policy, run


def _policy(**changes) -> CompliancePolicy:
    return CompliancePolicy.model_validate({**policy().model_dump(), **changes})


# ---------------------------------------------------------------- ORDER_WITHOUT_RISK_CHECK


def test_order_without_any_risk_check() -> None:
    s = Stream()
    s.signal("sig-1")
    s.llm("sig-1")
    s.order("ord-1", "sig-1")
    issues = run(s.events)
    assert codes(issues) == ["ORDER_WITHOUT_RISK_CHECK"]
    issue = issues[0]
    assert (issue.order_id, issue.signal_id, issue.strategy_id, issue.symbol) == ("ord-1", "sig-1", "momentum", "AAPL")
    assert issue.metadata["missing_checks"] == ["max_position"]
    assert issue.metadata["policy_version"] == "test-1" and issue.metadata["policy_hash"] == policy().content_hash
    assert issue.event_ids == (s.events[-1].event_id,)


def test_order_with_its_required_check_passed_is_clean() -> None:
    s = Stream()
    s.good_order("ord-1", "sig-1")
    assert run(s.events) == []


def test_a_strategy_specific_list_replaces_the_default_checks() -> None:
    s = Stream()
    s.signal("sig-1", "hedger")
    s.check("sig-1", "max_position", strategy="hedger")
    s.llm("sig-1", strategy="hedger")
    s.order("ord-1", "sig-1", strategy="hedger")
    issues = run(s.events)
    assert codes(issues) == ["ORDER_WITHOUT_RISK_CHECK"]
    assert issues[0].metadata["missing_checks"] == ["drawdown"]


def test_an_order_without_a_signal_has_no_checks() -> None:
    s = Stream()
    s.order("ord-1", None)
    assert codes(run(s.events)) == ["ORDER_WITHOUT_RISK_CHECK"]
    s.order("ord-2", None, quantity=600)  # 60,000: needs a review too, and no signal has one
    assert codes(run(s.events)) == ["LLM_REVIEW_MISSING", "ORDER_WITHOUT_RISK_CHECK", "ORDER_WITHOUT_RISK_CHECK"]


def test_checks_after_the_order_do_not_count() -> None:
    s = Stream()
    s.signal("sig-1")
    s.llm("sig-1")
    s.order("ord-1", "sig-1")
    s.check("sig-1")
    assert codes(run(s.events)) == ["ORDER_WITHOUT_RISK_CHECK"]


def test_a_check_older_than_the_signal_memory_does_not_count() -> None:
    s = Stream()
    s.ready("sig-1")
    s.order("ord-1", "sig-1", at=s.t + 601 * S)
    assert codes(run(s.events)) == ["ORDER_WITHOUT_RISK_CHECK"]
    near = Stream()
    near.ready("sig-1")
    near.order("ord-1", "sig-1", at=near.t + 599 * S)
    assert run(near.events) == []


def test_minimum_passed_counts_checks_of_any_name() -> None:
    lenient = _policy(required_risk_checks={"minimum_passed": 2, "checks": [], "per_strategy": {}})
    s = Stream()
    s.signal("sig-1")
    s.check("sig-1", "max_position")
    s.llm("sig-1")
    s.order("ord-1", "sig-1")
    assert codes(run(s.events, lenient)) == ["ORDER_WITHOUT_RISK_CHECK"]
    s = Stream()
    s.signal("sig-1")
    s.check("sig-1", "max_position")
    s.check("sig-1", "concentration")
    s.llm("sig-1")
    s.order("ord-1", "sig-1")
    assert run(s.events, lenient) == []


# ---------------------------------------------------------------- RISK_CHECK_FAILED_ORDER_SENT


def test_order_after_a_failed_check() -> None:
    s = Stream()
    s.signal("sig-1")
    s.check("sig-1", "max_position")
    failed = s.check("sig-1", "drawdown", passed=False)
    s.llm("sig-1")
    order = s.order("ord-1", "sig-1")
    issues = run(s.events)
    assert codes(issues) == ["RISK_CHECK_FAILED_ORDER_SENT"]
    assert issues[0].event_ids == (failed.event_id, order.event_id)
    assert issues[0].metadata["failed_checks"] == ["drawdown"]


def test_an_approved_override_or_a_passing_rerun_clears_the_failure() -> None:
    s = Stream()
    s.signal("sig-1")
    s.check("sig-1", "max_position", passed=False, override=True, approver="alice")
    s.check("sig-1", "drawdown", passed=False)
    s.check("sig-1", "drawdown", passed=True)
    s.llm("sig-1")
    s.order("ord-1", "sig-1")
    assert run(s.events) == []


# ---------------------------------------------------------------- RISK_OVERRIDE_WITHOUT_APPROVER


def test_override_without_approver() -> None:
    s = Stream()
    s.signal("sig-1")
    s.check("sig-1", "max_position", passed=False, override=True, approver=None)
    issues = run(s.events)
    assert codes(issues) == ["RISK_OVERRIDE_WITHOUT_APPROVER"]
    assert issues[0].key == "RISK_OVERRIDE_WITHOUT_APPROVER|signal:sig-1"


def test_override_with_approver_is_clean_and_an_unapproved_one_does_not_count_as_passed() -> None:
    s = Stream()
    s.signal("sig-1")
    s.check("sig-1", "max_position", passed=False, override=True, approver="alice")
    assert run(s.events) == []
    s = Stream()
    s.signal("sig-1")
    s.check("sig-1", "max_position", passed=False, override=True)
    s.llm("sig-1")
    s.order("ord-1", "sig-1")
    assert codes(run(s.events)) == ["ORDER_WITHOUT_RISK_CHECK", "RISK_CHECK_FAILED_ORDER_SENT",
                                    "RISK_OVERRIDE_WITHOUT_APPROVER"]


def test_override_without_approver_is_fine_when_the_policy_does_not_ask() -> None:
    s = Stream()
    s.signal("sig-1")
    s.check("sig-1", "max_position", passed=False, override=True)
    s.llm("sig-1")
    s.order("ord-1", "sig-1")
    assert run(s.events, _policy(risk_overrides={"approver_required": False})) == []


# ---------------------------------------------------------------- LLM_REVIEW_MISSING


def test_covered_order_above_min_notional_without_llm_decision() -> None:
    s = Stream()
    s.signal("sig-1")
    s.check("sig-1")
    s.order("ord-1", "sig-1", quantity=600)  # 60,000 >= 50,000
    issues = run(s.events)
    assert codes(issues) == ["LLM_REVIEW_MISSING"]
    assert issues[0].metadata["notional"] == 60_000.0


@pytest.mark.parametrize("strategy, quantity", [("momentum", 400), ("mean_reversion", 600)])
def test_llm_review_near_misses(strategy: str, quantity: int) -> None:
    """Below min_notional, or a strategy the review does not cover."""
    s = Stream()
    s.signal("sig-1", strategy)
    s.check("sig-1", strategy=strategy)
    s.order("ord-1", "sig-1", strategy=strategy, quantity=quantity)
    assert run(s.events) == []


# ---------------------------------------------------------------- LLM_REJECTED_ORDER_SENT


@pytest.mark.parametrize("decision, reviewer", [("reject", "auto"), ("escalate", None), ("escalate", "auto")])
def test_order_after_llm_rejection_or_unreviewed_escalation(decision: str, reviewer: str | None) -> None:
    s = Stream()
    s.signal("sig-1")
    s.check("sig-1")
    llm = s.llm("sig-1", decision, reviewed_by=reviewer)
    order = s.order("ord-1", "sig-1")
    issues = run(s.events)
    assert codes(issues) == ["LLM_REJECTED_ORDER_SENT"]
    assert issues[0].event_ids == (llm.event_id, order.event_id)


def test_escalation_reviewed_by_a_person_is_clean() -> None:
    s = Stream()
    s.signal("sig-1")
    s.check("sig-1")
    s.llm("sig-1", "escalate", reviewed_by="alice")
    s.order("ord-1", "sig-1")
    assert run(s.events) == []


# ---------------------------------------------------------------- LLM_FORBIDDEN_DECISION


def test_forbidden_llm_decision() -> None:
    s = Stream()
    s.signal("sig-1")
    s.llm("sig-1", "modify")
    issues = run(s.events)
    assert codes(issues) == ["LLM_FORBIDDEN_DECISION"]
    assert issues[0].key == "LLM_FORBIDDEN_DECISION|signal:sig-1"


def test_allowed_llm_decision_is_clean() -> None:
    s = Stream()
    s.signal("sig-1")
    s.llm("sig-1", "reject")
    assert run(s.events) == []


# ---------------------------------------------------------------- ORDER_NOTIONAL_LIMIT


def test_order_notional_above_limit() -> None:
    s = Stream()
    s.good_order("ord-1", "sig-1", quantity=1001)  # 100,100 > 100,000
    issues = run(s.events)
    assert codes(issues) == ["ORDER_NOTIONAL_LIMIT"]
    assert issues[0].metadata["price_basis"] == "limit price"


def test_order_notional_at_the_limit_is_clean() -> None:
    s = Stream()
    s.good_order("ord-1", "sig-1", quantity=1000)
    assert run(s.events) == []


def test_market_order_priced_at_decision_price_else_last_mid() -> None:
    s = Stream()
    s.quote("AAPL", 100.0)
    s.good_order("ord-1", "sig-1", order_type="market", quantity=1001)  # no decision price: mid 100
    s.good_order("ord-2", "sig-2", order_type="market", quantity=1001, decision_price=99.0)  # 99,099
    issues = run(s.events)
    assert [(i.code, i.order_id, i.metadata["price_basis"]) for i in issues] == [
        ("ORDER_NOTIONAL_LIMIT", "ord-1", "last mid")]


# ---------------------------------------------------------------- DAILY_NOTIONAL_LIMIT


def test_daily_notional_per_instrument() -> None:
    s = Stream()
    for index, quantity in enumerate((900, 901, 902)):  # 90,000 + 90,100 + 90,200 > 250,000
        s.good_order(f"ord-{index}", f"sig-{index}", quantity=quantity)
    issues = run(s.events)
    assert codes(issues) == ["DAILY_NOTIONAL_LIMIT"]
    issue = issues[0]
    assert issue.order_id == "ord-2" and issue.symbol == "AAPL" and issue.strategy_id is None
    assert issue.key == "DAILY_NOTIONAL_LIMIT|strategy:-|symbol:AAPL|day:2024-01-02"
    assert issue.metadata["total"] == pytest.approx(270_300.0)


def test_daily_notional_at_the_limit_is_clean_and_later_breaches_are_one_issue() -> None:
    s = Stream()
    for index, quantity in enumerate((900, 901, 699)):  # exactly 250,000
        s.good_order(f"ord-{index}", f"sig-{index}", quantity=quantity)
    assert run(s.events) == []
    s.t += 2 * S
    s.good_order("ord-4", "sig-4", quantity=10)
    s.t += 2 * S
    s.good_order("ord-5", "sig-5", quantity=11)
    assert [issue.order_id for issue in run(s.events)] == ["ord-4"]


def test_the_trading_day_is_the_policy_timezone_date() -> None:
    """23:59 and 00:01 New York are one UTC date but two trading days."""
    evening = T0 + (14 * 3600 + 29 * 60) * S  # 2024-01-02 23:59 New York
    s = Stream(evening)
    s.good_order("ord-1", "sig-1", quantity=900)
    s.good_order("ord-2", "sig-2", quantity=901)
    s.t = evening + 2 * 60 * S  # 00:01 New York, same UTC date
    s.good_order("ord-3", "sig-3", quantity=902)
    assert run(s.events) == []


def test_daily_gross_notional_per_strategy_across_symbols() -> None:
    s = Stream()
    for index, symbol in enumerate(("AAPL", "MSFT", "NVDA", "AMZN", "META")):
        s.t += S // 2  # under the order rate
        s.good_order(f"ord-{index}", f"sig-{index}", symbol=symbol, quantity=900)  # 450,000 > 400,000
    issues = run(s.events)
    assert codes(issues) == ["DAILY_NOTIONAL_LIMIT"]
    assert issues[0].key == "DAILY_NOTIONAL_LIMIT|strategy:momentum|symbol:-|day:2024-01-02"
    assert issues[0].order_id == "ord-4"


# ---------------------------------------------------------------- POSITION_LIMIT


@pytest.mark.parametrize("quantity, price", [(1001, 10.0), (-900, 200.0)])
def test_position_above_quantity_or_notional_limit(quantity: float, price: float) -> None:
    s = Stream()
    s.position(quantity, market_price=price)
    issues = run(s.events)
    assert codes(issues) == ["POSITION_LIMIT"]
    assert issues[0].key == "POSITION_LIMIT|strategy:momentum|symbol:AAPL|day:2024-01-02"


def test_position_at_the_limits_is_clean_and_per_symbol_limits_replace_the_default() -> None:
    s = Stream()
    s.position(1000, market_price=100.0)  # quantity and 100,000 notional within limits
    s.position(-1000, market_price=150.0)  # 150,000: at the notional limit
    s.position(2, symbol="BTC-USD", market_price=100_000.0)  # BTC: quantity limit only
    assert run(s.events) == []
    s.position(3, symbol="BTC-USD", market_price=1.0)
    assert codes(run(s.events)) == ["POSITION_LIMIT"]


def test_position_priced_at_the_last_mid_without_market_price_and_once_per_day() -> None:
    s = Stream()
    s.quote("AAPL", 200.0)
    s.position(800, market_price=None)  # 160,000
    s.position(900, market_price=None)
    s.t += 86_400 * S
    s.position(900, market_price=None)
    assert [issue.metadata["trading_day"] for issue in run(s.events)] == ["2024-01-02", "2024-01-03"]


# ---------------------------------------------------------------- RESTRICTED_SYMBOL


def test_order_in_a_restricted_symbol() -> None:
    s = Stream()
    s.good_order("ord-1", "sig-1", symbol="GME")
    issues = run(s.events)
    assert codes(issues) == ["RESTRICTED_SYMBOL"]
    assert issues[0].symbol == "GME"


def test_a_signal_in_a_restricted_symbol_without_an_order_is_clean() -> None:
    s = Stream()
    s.ready("sig-1", symbol="GME")
    assert run(s.events) == []


# ---------------------------------------------------------------- TRADING_WHILE_HALTED


def test_order_while_halted() -> None:
    s = Stream()
    breaker = s.breaker("HALTED")
    order = s.good_order("ord-1", "sig-1")
    issues = run(s.events)
    assert codes(issues) == ["TRADING_WHILE_HALTED"]
    assert issues[0].event_ids == (breaker.event_id, order.event_id)


def test_order_after_the_reset_or_halt_of_another_engine_or_strategy_is_clean() -> None:
    s = Stream()
    s.breaker("HALTED")
    s.breaker("ACTIVE", state="reset")
    s.breaker("HALTED", strategy=None, source="engine-2")
    s.breaker("HALTED", strategy="stat_arb")
    s.good_order("ord-1", "sig-1")
    assert run(s.events) == []


def test_an_engine_wide_halt_covers_every_strategy_of_that_engine() -> None:
    s = Stream()
    s.breaker("HALTED", strategy=None)
    s.good_order("ord-1", "sig-1", strategy="stat_arb")
    assert codes(run(s.events)) == ["TRADING_WHILE_HALTED"]


@pytest.mark.parametrize("side, quantity, breach", [("sell", 300, False), ("sell", 500, False), ("sell", 501, True),
                                                    ("buy", 10, True)])
def test_reducing_allows_only_orders_that_reduce_the_position(side: str, quantity: int, breach: bool) -> None:
    s = Stream()
    s.position(500)
    s.breaker("REDUCING")
    s.good_order("ord-1", "sig-1", side=side, quantity=quantity)
    assert codes(run(s.events)) == (["TRADING_WHILE_HALTED"] if breach else [])


def test_the_trading_state_rules_can_be_off() -> None:
    s = Stream()
    s.breaker("HALTED")
    s.good_order("ord-1", "sig-1")
    off = _policy(trading_state={"halted_blocks_new_orders": False, "reducing_allows_only_risk_reducing": False})
    assert run(s.events, off) == []


# ---------------------------------------------------------------- ORDER_RATE_LIMIT


def test_order_rate_above_limit_is_one_issue_per_strategy_and_day() -> None:
    s = Stream()
    for index in range(8):
        s.good_order(f"ord-{index}", f"sig-{index}", quantity=10 + index)
    issues = run(s.events)
    assert codes(issues) == ["ORDER_RATE_LIMIT"]
    assert issues[0].order_id == "ord-3" and issues[0].metadata["orders_in_window"] == 4
    assert issues[0].key == "ORDER_RATE_LIMIT|strategy:momentum|symbol:-|day:2024-01-02"


def test_order_rate_at_the_limit_and_spread_orders_are_clean() -> None:
    s = Stream()
    for index in range(3):
        s.good_order(f"ord-{index}", f"sig-{index}", quantity=10 + index)
    s.t += S  # the first three leave the window
    for index in range(3, 6):
        s.good_order(f"ord-{index}", f"sig-{index}", quantity=10 + index)
    assert run(s.events) == []


# ---------------------------------------------------------------- DUPLICATE_ORDER


def test_duplicate_order_within_the_window() -> None:
    s = Stream()
    first = s.good_order("ord-1", "sig-1")
    s.t += S
    second = s.good_order("ord-2", "sig-2")
    issues = run(s.events)
    assert codes(issues) == ["DUPLICATE_ORDER"]
    assert issues[0].order_id == "ord-2" and issues[0].event_ids == (first.event_id, second.event_id)


@pytest.mark.parametrize("gap, quantity, price, strategy", [(3, 100, 100.0, "momentum"), (1, 101, 100.0, "momentum"),
                                                             (1, 100, 100.01, "momentum"), (1, 100, 100.0, "hedger")])
def test_duplicate_near_misses(gap: int, quantity: int, price: float, strategy: str) -> None:
    """Outside the window, another quantity, another price, another strategy."""
    s = Stream()
    s.good_order("ord-1", "sig-1")
    s.t += gap * S
    s.good_order("ord-2", "sig-2", quantity=quantity, limit_price=price, strategy=strategy)
    assert run(s.events) == []


def test_duplicates_ignore_the_price_when_the_policy_says_so() -> None:
    s = Stream()
    s.good_order("ord-1", "sig-1")
    s.good_order("ord-2", "sig-2", limit_price=100.01)
    assert codes(run(s.events, _policy(duplicate_orders={"window_seconds": 2, "match_price": False}))) == [
        "DUPLICATE_ORDER"]


# ---------------------------------------------------------------- PRICE_COLLAR


def test_limit_price_outside_the_collar() -> None:
    s = Stream()
    quote = s.quote("AAPL", 100.0)
    order = s.good_order("ord-1", "sig-1", limit_price=105.01)
    issues = run(s.events)
    assert codes(issues) == ["PRICE_COLLAR"]
    assert issues[0].event_ids == (quote.event_id, order.event_id)
    assert issues[0].metadata["deviation_percent"] == pytest.approx(5.01)


def test_limit_price_at_the_collar_market_orders_and_unquoted_symbols_are_clean() -> None:
    s = Stream()
    s.quote("AAPL", 100.0)
    s.good_order("ord-1", "sig-1", limit_price=95.0)
    s.good_order("ord-2", "sig-2", order_type="market", decision_price=120.0)
    s.good_order("ord-3", "sig-3", symbol="MSFT", limit_price=500.0)
    assert run(s.events) == []


# ---------------------------------------------------------------- the policy in force


def test_each_event_is_judged_by_the_policy_in_force_at_its_time() -> None:
    from tradewatch.domain.compliance import PolicyHistory

    later = _policy(version="test-2", effective_from="2024-01-02T15:00:00Z", restricted_symbols=[])
    history = PolicyHistory([policy(), later])
    s = Stream()
    s.good_order("ord-1", "sig-1", symbol="GME")  # 14:30: test-1 restricts GME
    s.t = T0 + 3600 * S
    s.good_order("ord-2", "sig-2", symbol="GME")  # 15:30: test-2 does not
    issues = run(s.events, history)
    assert [(i.order_id, i.metadata["policy_version"]) for i in issues] == [("ord-1", "test-1")]


def test_events_before_the_first_policy_are_not_judged() -> None:
    s = Stream(T0 - 10 * 86_400 * S)  # 2023-12-23, before effective_from
    s.order("ord-1", None, symbol="GME")
    assert run(s.events) == []


def test_the_default_policy_passes_a_prepared_order() -> None:
    s = Stream()
    s.good_order("ord-1", "sig-1")
    assert run(s.events, default_policy()) == []
