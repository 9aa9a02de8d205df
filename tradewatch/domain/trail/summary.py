"""Summary of a period of the trail, for risk and compliance staff."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class PeriodSummary:
    """Counts over [start_ns, end_ns): events by type and by strategy, rejected events,
    failed risk checks and circuit-breaker trips."""

    start_ns: int
    end_ns: int
    events: int
    by_type: dict[str, int] = field(default_factory=dict)
    by_strategy: dict[str, int] = field(default_factory=dict)
    rejected_events: int = 0
    rejected_by_code: dict[str, int] = field(default_factory=dict)
    failed_risk_checks: int = 0
    circuit_breaker_trips: int = 0

    def to_dict(self) -> dict:
        return asdict(self)
