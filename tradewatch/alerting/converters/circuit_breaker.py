"""Alerts from the engines' circuit breakers (``circuit_breaker`` events).

A breaker that trips raises ``CircuitBreakerTripped``. Its severity follows what the engine
says trading is now doing, because that is what the on-call engineer must act on:

- ``HALTED``: ``critical``. Trading stopped; page. The default routing inhibits the ``warning``
  alerts of the same strategy_id while this fires (their cause is already being handled), which
  is why the labels below are exactly ``strategy_id`` and ``trading_state``.
- ``REDUCING``: ``warning``. The engine is cutting risk on its own.
- ``ACTIVE`` (a breaker tripped but trading carries on): ``warning``.

``trading_state`` is a label, so each state is its own alert. The converter is stateless and
the event says which state is current, so a trip also resolves the alerts of the other two
states of the same breaker: escalating from REDUCING to HALTED leaves one alert firing, not two.
A ``reset`` resolves all three. Resolving an alert that is not firing is a no-op downstream.
"""

from __future__ import annotations

from datetime import datetime

from tradewatch.alerting.converters.base import ANNOTATION_LIMIT, SUMMARY_LIMIT, cap
from tradewatch.alerting.model import Alert, Severity
from tradewatch.domain.events.models import CircuitBreakerEvent
from tradewatch.domain.events.timestamps import format_rfc3339_ns, ns_to_datetime

ALERTNAME = "CircuitBreakerTripped"
CATEGORY = "risk"
RUNBOOK_URL = "README.md#runbook-circuitbreakertripped"
#: The ``strategy_id`` label of a breaker with scope ``global``: it concerns every strategy.
GLOBAL_STRATEGY = "global"

SEVERITY_BY_TRADING_STATE: dict[str, Severity] = {
    "HALTED": Severity.CRITICAL,
    "REDUCING": Severity.WARNING,
    "ACTIVE": Severity.WARNING,
}


def breaker_strategy(event: CircuitBreakerEvent) -> str:
    """The ``strategy_id`` label: the event's for scope ``strategy``, ``global`` for scope
    ``global`` (even when the event names the strategy that caused it, so that the reset, which
    may not, resolves the same alert)."""
    if event.payload.scope == "global":
        return GLOBAL_STRATEGY
    assert event.strategy_id is not None  # CircuitBreakerEvent requires it for scope strategy
    return event.strategy_id


def breaker_labels(event: CircuitBreakerEvent, trading_state: str) -> dict[str, str]:
    """The labels of the alert ``event``'s breaker has while trading is ``trading_state``."""
    return {
        "alertname": ALERTNAME,
        "severity": SEVERITY_BY_TRADING_STATE[trading_state].value,
        "category": CATEGORY,
        "source": event.source,
        "strategy_id": breaker_strategy(event),
        "scope": event.payload.scope,
        "trading_state": trading_state,
    }


class CircuitBreakerConverter:
    """``circuit_breaker`` events to ``CircuitBreakerTripped`` alerts (raised and resolved).

    Labels: alertname ``CircuitBreakerTripped``, severity, category ``risk``, source (the
    event's source), strategy_id (the event's, or ``global``), scope, trading_state. The symbol
    and the reason are annotations: a reset rarely repeats them, and it must produce the same
    labels to resolve the alert.
    """

    source = "circuit_breaker"

    def to_alerts(self, item: CircuitBreakerEvent, *, now: datetime) -> list[Alert]:
        """The alerts ``item`` raises and resolves; ``now`` is unused: the event carries its time."""
        if not isinstance(item, CircuitBreakerEvent):
            raise TypeError(f"{type(self).__name__} converts CircuitBreakerEvent, not {type(item).__name__}")
        occurred = ns_to_datetime(item.occurred_at)
        current = item.payload.trading_state if item.payload.state == "tripped" else None
        alerts = [self._tripped(item, occurred)] if current is not None else []
        alerts += [
            Alert(labels=breaker_labels(item, state), starts_at=occurred).resolved(occurred)
            for state in SEVERITY_BY_TRADING_STATE
            if state != current
        ]
        return alerts

    def _tripped(self, event: CircuitBreakerEvent, occurred: datetime) -> Alert:
        payload = event.payload
        strategy = breaker_strategy(event)
        whose = "Global circuit breaker" if payload.scope == "global" else f"Circuit breaker of strategy {strategy}"
        reason = (payload.reason or "").strip()
        summary = f"{whose} tripped: trading {payload.trading_state}"
        if reason:
            summary += f" ({reason})"
        lines = [
            f"{whose} tripped at {format_rfc3339_ns(event.occurred_at)}, reported by {event.source}.",
            f"Trading state: {payload.trading_state}",
            f"Reason: {reason or 'none given'}",
        ]
        if event.strategy_id is not None and payload.scope == "global":
            lines.append(f"Strategy that tripped it: {event.strategy_id}")
        if event.symbol is not None:
            lines.append(f"Symbol: {event.symbol}")
        annotations = {
            "summary": cap(summary, SUMMARY_LIMIT),
            "description": cap("\n".join(lines), ANNOTATION_LIMIT),
            "runbook_url": RUNBOOK_URL,
        }
        if reason:
            annotations["reason"] = reason
        return Alert(labels=breaker_labels(event, payload.trading_state), annotations=annotations, starts_at=occurred)
