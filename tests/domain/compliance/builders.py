"""Builders for the compliance rule tests: a strict test policy and events, a microsecond apart."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from tradewatch.domain.compliance import ComplianceEngine, ComplianceEvent, CompliancePolicy, EngineConfig
from tradewatch.domain.compliance.events import from_fields
from tradewatch.domain.compliance.issue import ComplianceIssue

T0 = 1_704_205_800_000_000_000  # 2024-01-02T14:30:00Z, 09:30 in New York
US = 1_000
S = 1_000_000_000

POLICY_YAML = """
version: test-1
effective_from: 2024-01-01T00:00:00Z
timezone: America/New_York
required_risk_checks:
  minimum_passed: 1
  checks: [max_position]
  per_strategy: {hedger: [max_position, drawdown]}
llm_review: {strategies: [momentum, hedger], min_notional: 50000}
forbidden_llm_decisions: [modify]
notional_limits: {per_order: 100000, per_instrument_per_day: 250000, gross_per_strategy_per_day: 400000}
max_position:
  default: {max_quantity: 1000, max_notional: 150000}
  per_symbol: {BTC-USD: {max_quantity: 2}}
restricted_symbols: [GME]
trading_state: {halted_blocks_new_orders: true, reducing_allows_only_risk_reducing: true}
order_rate: {max_orders_per_second: 3, window_seconds: 1}
duplicate_orders: {window_seconds: 2}
price_collar: {max_deviation_percent: 5}
risk_overrides: {approver_required: true}
"""


def policy() -> CompliancePolicy:
    return CompliancePolicy.from_yaml_text(POLICY_YAML, "test-policy.yaml")


class Stream:
    """Events one microsecond apart from T0 (or at ``at``), ids drawn from a counter."""

    def __init__(self, start_ns: int = T0) -> None:
        self.t = start_ns
        self.events: list[ComplianceEvent] = []
        self._ids = itertools.count(1)

    def _add(self, event_type: str, payload: dict[str, Any], at: int | None = None, **envelope: Any) -> ComplianceEvent:
        if at is None:
            self.t += US
            at = self.t
        else:
            self.t = max(self.t, at)
        body = {"event_id": str(uuid.UUID(int=next(self._ids))), "event_type": event_type, "occurred_at_ns": at,
                "source": envelope.pop("source", "engine-1"), **envelope}
        event = from_fields(body, payload, envelope.pop("received_at_ns", None))
        self.events.append(event)
        return event

    def quote(self, symbol: str = "AAPL", mid: float = 100.0, **kw: Any) -> ComplianceEvent:
        return self._add("market_data", {"bid": mid - 0.01, "ask": mid + 0.01, "last": mid}, symbol=symbol, **kw)

    def signal(self, signal_id: str, strategy: str = "momentum", symbol: str = "AAPL", **kw: Any) -> ComplianceEvent:
        return self._add("signal", {"direction": "long", "confidence": 0.7}, signal_id=signal_id, strategy_id=strategy,
                         symbol=symbol, **kw)

    def check(self, signal_id: str, name: str = "max_position", passed: bool = True, override: bool = False,
              approver: str | None = None, strategy: str = "momentum", **kw: Any) -> ComplianceEvent:
        return self._add("risk_check", {"check_name": name, "passed": passed, "override": override, "approver": approver},
                         signal_id=signal_id, strategy_id=strategy, **kw)

    def llm(self, signal_id: str, decision: str = "approve", reviewed_by: str | None = "auto",
            strategy: str = "momentum", **kw: Any) -> ComplianceEvent:
        return self._add("llm_decision", {"model": "m", "decision": decision, "reviewed_by": reviewed_by},
                         signal_id=signal_id, strategy_id=strategy, **kw)

    def order(self, order_id: str, signal_id: str | None = None, *, strategy: str = "momentum", symbol: str = "AAPL",
              side: str = "buy", quantity: float = 100, order_type: str = "limit", limit_price: float | None = 100.0,
              decision_price: float | None = None, status: str = "submitted", **kw: Any) -> ComplianceEvent:
        payload = {"side": side, "quantity": quantity, "order_type": order_type, "status": status,
                   "limit_price": limit_price if order_type == "limit" else None, "decision_price": decision_price}
        return self._add("order", payload, order_id=order_id, signal_id=signal_id, strategy_id=strategy, symbol=symbol,
                         **kw)

    def position(self, quantity: float, strategy: str = "momentum", symbol: str = "AAPL",
                 market_price: float | None = 100.0, **kw: Any) -> ComplianceEvent:
        return self._add("position_update", {"quantity": quantity, "market_price": market_price},
                         strategy_id=strategy, symbol=symbol, **kw)

    def breaker(self, trading_state: str, strategy: str | None = "momentum", state: str = "tripped",
                **kw: Any) -> ComplianceEvent:
        scope = "strategy" if strategy else "global"
        return self._add("circuit_breaker", {"state": state, "scope": scope, "trading_state": trading_state},
                         strategy_id=strategy, **kw)

    def ready(self, signal_id: str, strategy: str = "momentum", symbol: str = "AAPL",
              checks: tuple[str, ...] = ("max_position",)) -> None:
        """A signal with its required checks passed and an approving LLM decision."""
        self.signal(signal_id, strategy, symbol)
        for name in checks:
            self.check(signal_id, name, strategy=strategy)
        self.llm(signal_id, strategy=strategy)

    def good_order(self, order_id: str, signal_id: str, **kw: Any) -> ComplianceEvent:
        """A fully prepared order (ready signal + order)."""
        strategy = kw.get("strategy", "momentum")
        checks = ("max_position", "drawdown") if strategy == "hedger" else ("max_position",)
        self.ready(signal_id, strategy, kw.get("symbol", "AAPL"), checks)
        return self.order(order_id, signal_id, **kw)


def run(events: list[ComplianceEvent], pol: CompliancePolicy | None = None,
        config: EngineConfig | None = None) -> list[ComplianceIssue]:
    engine = ComplianceEngine(pol or policy(), config)
    state = engine.new_state()
    result = engine.apply(events, state)
    result.add(engine.flush(state))
    return result.issues


def codes(issues: list[ComplianceIssue]) -> list[str]:
    return sorted(issue.code for issue in issues)
