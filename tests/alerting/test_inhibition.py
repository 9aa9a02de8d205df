"""Inhibition: a firing source mutes matching targets that agree on the `equal` labels."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tradewatch.alerting.inhibition import InhibitRule, find_inhibitor
from tradewatch.alerting.matchers import parse_matcher
from tradewatch.alerting.model import Alert

T0 = datetime(2026, 11, 22, 9, 30, tzinfo=timezone.utc)


def alert(alertname: str, severity: str, **labels: str) -> Alert:
    return Alert(labels={"alertname": alertname, "severity": severity, **labels}, starts_at=T0)


def rule(source: list[str], target: list[str], equal: tuple[str, ...] = ()) -> InhibitRule:
    return InhibitRule(tuple(map(parse_matcher, source)), tuple(map(parse_matcher, target)), equal)


HALTED = rule(['alertname="CircuitBreakerTripped"', 'trading_state="HALTED"'], ['severity="warning"'], ("strategy_id",))
CRITICAL_MUTES_WARNING = rule(['severity="critical"'], ['severity="warning"'], ("alertname", "strategy_id", "symbol"))

BREAKER_MM1 = alert("CircuitBreakerTripped", "critical", trading_state="HALTED", strategy_id="mm-1")


def test_a_halted_breaker_mutes_warnings_of_its_strategy():
    assert HALTED.inhibits(BREAKER_MM1, alert("StaleFeed", "warning", strategy_id="mm-1"))


def test_other_strategies_and_other_severities_are_not_muted():
    assert not HALTED.inhibits(BREAKER_MM1, alert("StaleFeed", "warning", strategy_id="mm-2"))
    assert not HALTED.inhibits(BREAKER_MM1, alert("StaleFeed", "critical", strategy_id="mm-1"))
    assert not HALTED.inhibits(BREAKER_MM1, alert("StaleFeed", "info", strategy_id="mm-1"))


def test_the_source_must_match_all_source_matchers():
    reducing = alert("CircuitBreakerTripped", "critical", trading_state="REDUCING", strategy_id="mm-1")
    assert not HALTED.inhibits(reducing, alert("StaleFeed", "warning", strategy_id="mm-1"))


def test_a_resolved_source_mutes_nothing():
    resolved = BREAKER_MM1.resolved(T0 + timedelta(minutes=5))
    assert not HALTED.inhibits(resolved, alert("StaleFeed", "warning", strategy_id="mm-1"))


def test_equal_labels_missing_on_both_sides_count_as_equal():
    global_breaker = alert("CircuitBreakerTripped", "critical", trading_state="HALTED")  # no strategy_id
    assert HALTED.inhibits(global_breaker, alert("StaleFeed", "warning"))
    # ... but missing on one side only is a difference.
    assert not HALTED.inhibits(global_breaker, alert("StaleFeed", "warning", strategy_id="mm-1"))
    assert not HALTED.inhibits(BREAKER_MM1, alert("StaleFeed", "warning"))


def test_every_equal_label_must_agree():
    critical = alert("StaleFeed", "critical", strategy_id="mm-1", symbol="AAPL")
    assert CRITICAL_MUTES_WARNING.inhibits(critical, alert("StaleFeed", "warning", strategy_id="mm-1", symbol="AAPL"))
    assert not CRITICAL_MUTES_WARNING.inhibits(critical, alert("StaleFeed", "warning", strategy_id="mm-1", symbol="MSFT"))
    assert not CRITICAL_MUTES_WARNING.inhibits(critical, alert("WideSpread", "warning", strategy_id="mm-1", symbol="AAPL"))


def test_without_equal_any_matching_source_mutes():
    broad = rule(['alertname="BrokerDown"'], ['severity="warning"'])
    assert broad.inhibits(alert("BrokerDown", "critical"), alert("StaleFeed", "warning", strategy_id="mm-9"))


def test_an_alert_never_inhibits_itself():
    both_sides = rule(['alertname="Flapping"'], ['alertname="Flapping"'])
    flapping = alert("Flapping", "warning", strategy_id="mm-1")
    assert not both_sides.inhibits(flapping, flapping)
    # The same labels make the same alert (same fingerprint), even as another object.
    assert not both_sides.inhibits(flapping, alert("Flapping", "warning", strategy_id="mm-1"))


def test_two_alerts_matching_both_sides_do_not_mute_each_other():
    # As in Alertmanager: otherwise both would be muted and nobody would hear of either.
    symmetric = rule(['alertname=~"FeedA|FeedB"'], ['alertname=~"FeedA|FeedB"'], ("strategy_id",))
    a = alert("FeedA", "warning", strategy_id="mm-1")
    b = alert("FeedB", "warning", strategy_id="mm-1")
    assert not symmetric.inhibits(a, b)
    assert not symmetric.inhibits(b, a)


def test_find_inhibitor_returns_the_first_rule_and_source():
    target = alert("StaleFeed", "warning", strategy_id="mm-1", symbol="AAPL")
    critical = alert("StaleFeed", "critical", strategy_id="mm-1", symbol="AAPL")
    unrelated = alert("WideSpread", "critical", strategy_id="mm-7")
    assert find_inhibitor(target, [unrelated, critical, BREAKER_MM1], [HALTED, CRITICAL_MUTES_WARNING]) == (HALTED, BREAKER_MM1)
    assert find_inhibitor(target, [unrelated, critical, BREAKER_MM1], [CRITICAL_MUTES_WARNING, HALTED]) == (
        CRITICAL_MUTES_WARNING, critical)
    assert find_inhibitor(target, [unrelated], [HALTED, CRITICAL_MUTES_WARNING]) is None
    assert find_inhibitor(target, [critical], []) is None
    assert find_inhibitor(target, iter([critical]), iter([CRITICAL_MUTES_WARNING])) == (CRITICAL_MUTES_WARNING, critical)


def test_rule_renders_for_people():
    assert str(HALTED) == ('{alertname="CircuitBreakerTripped", trading_state="HALTED"} mutes {severity="warning"} '
                           "with equal strategy_id")
