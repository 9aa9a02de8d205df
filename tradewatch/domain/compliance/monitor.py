"""``ComplianceMonitor.analyze_period``: the policy applied to any period of the trail.

The period [start, end) is judged exactly as the incremental engine judged it, so the two agree
issue for issue (same keys, codes, times and events): the engine is primed with what the
incremental one would remember at the period's start, then replays the period in canonical order.

- Context: the last quote per symbol, the last breaker per engine and strategy, and the last
  position per strategy and symbol before the warm-up (``EventSource.context_before``).
- Warm-up: the events from ``warmup_start`` to ``start`` are applied too, but issues before
  ``start`` are not reported; ``warmup_start`` is the start of the trading day holding ``start``
  (in the timezone of the policy then in force; the day's notional so far), less the longest
  memory of the rules: max(signal_ttl, order-rate window, duplicate window).

The report counts the events with occurred_at in [start, end) as examined and names the policy in
force at the end of the period (each issue's metadata names the version that judged it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from tradewatch.domain.compliance.engine import NS, ComplianceEngine, EngineConfig, day_start_ns
from tradewatch.domain.compliance.events import ComplianceEvent, canonical_key
from tradewatch.domain.compliance.issue import ComplianceIssue, ComplianceReport
from tradewatch.domain.compliance.policy import CompliancePolicy, NoPolicyInForce, PolicyHistory
from tradewatch.domain.events.timestamps import datetime_to_ns

#: The event types whose last value before a period is context (module docstring).
CONTEXT_EVENT_TYPES = ("market_data", "circuit_breaker", "position_update")


class EventSource(Protocol):
    """Where a period's events come from: the store, or a list (``EventList``)."""

    def context_before(self, before_ns: int) -> list[ComplianceEvent]:
        """The latest circuit_breaker per (source, scope, strategy_id), market_data per symbol and
        position_update per (strategy_id, symbol), with occurred_at_ns < before_ns."""

    def events_between(self, start_ns: int, end_ns: int) -> Iterable[ComplianceEvent]:
        """Every event with start_ns <= occurred_at_ns < end_ns, in any order."""


def context_key(event: ComplianceEvent) -> tuple | None:
    """What a context event is the latest of (None: not a context event)."""
    kind = event.event_type
    if kind == "market_data":
        return (kind, event.symbol)
    if kind == "circuit_breaker":
        return (kind, event.source, event.scope, event.strategy_id if event.scope == "strategy" else None)
    if kind == "position_update":
        return (kind, event.strategy_id, event.symbol)
    return None


class EventList:
    """An ``EventSource`` over events in memory (a JSONL file, a test), deduplicated by event_id
    (the first copy kept, as ingest keeps it)."""

    def __init__(self, events: Iterable[ComplianceEvent]) -> None:
        unique: dict[str, ComplianceEvent] = {}
        for event in events:
            unique.setdefault(event.event_id, event)
        self.events = sorted(unique.values(), key=canonical_key)

    def context_before(self, before_ns: int) -> list[ComplianceEvent]:
        latest: dict[tuple, ComplianceEvent] = {}
        for event in self.events:
            if event.occurred_at_ns >= before_ns:
                break
            key = context_key(event)
            if key is not None:
                latest[key] = event
        return list(latest.values())

    def events_between(self, start_ns: int, end_ns: int) -> list[ComplianceEvent]:
        return [event for event in self.events if start_ns <= event.occurred_at_ns < end_ns]

    @property
    def first_ns(self) -> int | None:
        return self.events[0].occurred_at_ns if self.events else None

    @property
    def end_ns(self) -> int | None:
        return self.events[-1].occurred_at_ns + 1 if self.events else None


def _ns(at: datetime | int) -> int:
    return datetime_to_ns(at) if isinstance(at, datetime) else int(at)


class ComplianceMonitor:
    """The compliance policy over a period of events from ``source``.

    ``link_anomalies(issues) -> {issue key: [anomaly id, ...]}`` (optional, the store's) adds the
    detector's findings on the same signal or order to each issue's metadata ``anomaly_ids``."""

    def __init__(self, source: EventSource, policies: PolicyHistory | CompliancePolicy,
                 config: EngineConfig | None = None,
                 link_anomalies: Callable[[Sequence[ComplianceIssue]], Mapping[str, Sequence[int]]] | None = None) -> None:
        self.source = source
        self.policies = policies if isinstance(policies, PolicyHistory) else PolicyHistory([policies])
        self.config = config or EngineConfig()
        self.link_anomalies = link_anomalies

    def warmup_start(self, start_ns: int) -> int:
        """Where the replay of a period starting at ``start_ns`` begins (module docstring)."""
        try:
            policy = self.policies.in_force(start_ns)
        except NoPolicyInForce:
            return start_ns - self._memory_ns(self.policies.policies[0])
        return min(start_ns, day_start_ns(policy, start_ns)) - self._memory_ns(policy)

    def _memory_ns(self, policy: CompliancePolicy) -> int:
        windows = [self.config.signal_ttl_seconds, policy.order_rate.window_seconds,
                   policy.duplicate_orders.window_seconds or 0.0]
        return int(max(windows) * NS) + 1

    def analyze_period(self, start: datetime | int, end: datetime | int) -> ComplianceReport:
        """The issues raised by events with occurred_at in [start, end) (aware datetimes or UTC
        epoch ns), as the incremental engine raises them."""
        start_ns, end_ns = _ns(start), _ns(end)
        if end_ns < start_ns:
            raise ValueError(f"the period ends ({end}) before it starts ({start})")
        engine = ComplianceEngine(self.policies, self.config)
        state = engine.new_state()
        warm_ns = self.warmup_start(start_ns)
        engine.prime(self.source.context_before(warm_ns), state)
        events = sorted(self.source.events_between(warm_ns, end_ns), key=canonical_key)
        examined = sum(1 for event in events if event.occurred_at_ns >= start_ns)
        result = engine.apply(events, state)
        result.add(engine.flush(state))
        issues = [issue for issue in result.issues if start_ns <= issue.occurred_at < end_ns]
        issues.sort(key=lambda issue: (issue.occurred_at, issue.code, issue.key))
        if self.link_anomalies is not None and issues:
            links = self.link_anomalies(issues)
            issues = [_linked(issue, links.get(issue.key)) for issue in issues]
        policy = self._reported_policy(end_ns)
        return ComplianceReport(issues=tuple(issues), policy_version=policy.version, policy_hash=policy.content_hash,
                                events_examined=examined, period_start=start_ns, period_end=end_ns)

    def _reported_policy(self, end_ns: int) -> CompliancePolicy:
        try:
            return self.policies.in_force(max(end_ns - 1, 0))
        except NoPolicyInForce:
            return self.policies.policies[0]


def recheck_period(now_ns: int, length_ns: int, window_ns: int, released_ns: int | None) -> tuple[int, int]:
    """The period the beat re-check judges afresh: [end - length, end), end = now - the reorder
    window (what the live monitor may still hold back), and never past what the live monitor has
    applied (``released_ns``, its watermark; None before its first run), so a backlog is not
    mistaken for missed breaches."""
    end_ns = now_ns - window_ns
    if released_ns is not None:
        end_ns = min(end_ns, released_ns + 1)
    return end_ns - length_ns, end_ns


def _linked(issue: ComplianceIssue, anomaly_ids: Sequence[int] | None) -> ComplianceIssue:
    if not anomaly_ids:
        return issue
    return replace(issue, metadata={**issue.metadata, "anomaly_ids": sorted(int(a) for a in anomaly_ids)})


__all__ = ["CONTEXT_EVENT_TYPES", "ComplianceMonitor", "EventList", "EventSource", "context_key", "recheck_period"]
