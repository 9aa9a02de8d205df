"""CircuitBreakerConverter: tripped and reset breakers to CircuitBreakerTripped alerts."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tests.factories import BASE_NS
from tradewatch.alerting.converters.base import AlertConverter
from tradewatch.alerting.converters.circuit_breaker import CircuitBreakerConverter
from tradewatch.alerting.model import Alert, AlertStatus, Severity
from tradewatch.domain.events import CircuitBreakerEvent, CircuitBreakerPayload
from tradewatch.domain.events.timestamps import ns_to_datetime

NOW = datetime(2026, 11, 21, 15, 0, tzinfo=timezone.utc)
TRADING_STATES = ("ACTIVE", "REDUCING", "HALTED")


def breaker(state: str = "tripped", trading_state: str = "HALTED", *, scope: str = "strategy", i: int = 0,
            reason: str | None = "daily loss limit reached: -5200 USD", **overrides) -> CircuitBreakerEvent:
    fields = dict(
        occurred_at=BASE_NS + i,
        source="engine-1",
        strategy_id="momentum" if scope == "strategy" else None,
        payload=CircuitBreakerPayload(state=state, scope=scope, trading_state=trading_state, reason=reason),
    )
    fields.update(overrides)
    return CircuitBreakerEvent(**fields)


def convert(event: CircuitBreakerEvent) -> list[Alert]:
    return CircuitBreakerConverter().to_alerts(event, now=NOW)


def firing(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if a.status is AlertStatus.FIRING]


def test_is_an_alert_converter_with_its_source():
    converter: AlertConverter = CircuitBreakerConverter()
    assert converter.source == "circuit_breaker"


@pytest.mark.parametrize(
    ("trading_state", "severity"),
    [("HALTED", Severity.CRITICAL), ("REDUCING", Severity.WARNING), ("ACTIVE", Severity.WARNING)],
)
def test_a_trip_fires_with_the_severity_of_the_trading_state(trading_state, severity):
    [alert] = firing(convert(breaker(trading_state=trading_state)))
    assert alert.labels == {
        "alertname": "CircuitBreakerTripped",
        "severity": severity.value,
        "category": "risk",
        "source": "engine-1",
        "strategy_id": "momentum",
        "scope": "strategy",
        "trading_state": trading_state,
    }
    assert alert.starts_at == ns_to_datetime(BASE_NS)
    assert alert.ends_at is None


def test_the_labels_match_the_default_inhibition_of_a_halt():
    # The default routing mutes warnings with an equal strategy_id while an alert matching
    # alertname="CircuitBreakerTripped", trading_state="HALTED" fires.
    [alert] = firing(convert(breaker(trading_state="HALTED")))
    assert alert.labels["alertname"] == "CircuitBreakerTripped"
    assert alert.labels["trading_state"] == "HALTED"
    assert alert.labels["strategy_id"] == "momentum"


def test_annotations_carry_the_reason():
    [alert] = firing(convert(breaker(trading_state="HALTED", symbol="AAPL")))
    assert alert.annotations["summary"] == (
        "Circuit breaker of strategy momentum tripped: trading HALTED (daily loss limit reached: -5200 USD)"
    )
    assert "Reason: daily loss limit reached: -5200 USD" in alert.annotations["description"]
    assert "Symbol: AAPL" in alert.annotations["description"]
    assert alert.annotations["reason"] == "daily loss limit reached: -5200 USD"
    assert alert.annotations["runbook_url"] == "README.md#runbook-circuitbreakertripped"
    assert "symbol" not in alert.labels  # a reset need not repeat it


def test_a_trip_without_a_reason_says_so():
    [alert] = firing(convert(breaker(reason=None)))
    assert alert.annotations["summary"] == "Circuit breaker of strategy momentum tripped: trading HALTED"
    assert "Reason: none given" in alert.annotations["description"]
    assert "reason" not in alert.annotations


def test_a_global_breaker_is_labelled_global_even_when_a_strategy_caused_it():
    [alert] = firing(convert(breaker(scope="global", strategy_id="momentum")))
    assert alert.labels["strategy_id"] == "global"
    assert alert.labels["scope"] == "global"
    assert alert.annotations["summary"].startswith("Global circuit breaker tripped: trading HALTED")
    assert "Strategy that tripped it: momentum" in alert.annotations["description"]


def test_a_trip_resolves_the_other_trading_states_of_the_same_breaker():
    reducing = firing(convert(breaker(trading_state="REDUCING")))[0]
    escalated = convert(breaker(trading_state="HALTED", i=1_000))
    resolved = [a for a in escalated if a.status is AlertStatus.RESOLVED]
    assert {a.labels["trading_state"] for a in resolved} == {"ACTIVE", "REDUCING"}
    assert reducing.fingerprint in {a.fingerprint for a in resolved}
    assert [a.labels["trading_state"] for a in firing(escalated)] == ["HALTED"]


@pytest.mark.parametrize("scope", ["strategy", "global"])
def test_a_reset_resolves_every_alert_the_breaker_could_have_raised(scope):
    raised = {firing(convert(breaker(trading_state=s, scope=scope)))[0].fingerprint for s in TRADING_STATES}
    reset = convert(breaker("reset", "ACTIVE", scope=scope, reason=None, i=60_000_000_000))
    assert {a.fingerprint for a in reset} == raised
    ended = ns_to_datetime(BASE_NS + 60_000_000_000)
    assert all(a.status is AlertStatus.RESOLVED and a.ends_at == ended for a in reset)
    assert {(a.labels["trading_state"], a.severity) for a in reset} == {
        ("ACTIVE", Severity.WARNING), ("REDUCING", Severity.WARNING), ("HALTED", Severity.CRITICAL)
    }


def test_a_reset_leaves_other_strategies_alone():
    raised = firing(convert(breaker(strategy_id="momentum")))[0]
    reset = convert(breaker("reset", "ACTIVE", strategy_id="mean_reversion"))
    assert raised.fingerprint not in {a.fingerprint for a in reset}


def test_other_items_are_refused():
    with pytest.raises(TypeError, match="CircuitBreakerEvent"):
        CircuitBreakerConverter().to_alerts({"event_type": "circuit_breaker"}, now=NOW)
