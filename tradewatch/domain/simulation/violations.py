"""Labelled compliance violations to mix into a simulated stream (``tradewatch simulate
--inject-violations``): for every issue code the policy enables, one scenario with the fewest
events that breach exactly that rule.

Each scenario runs on its own strategy (``inject-<code>``) and symbol (``INJ-<CODE>``) from its
own engine (``inject-engine``), so it neither disturbs the simulated strategies' limits, rates and
trading states nor is disturbed by them; the one exception is ``LLM_REVIEW_MISSING`` under a
policy that lists the strategies it covers, which must use a listed strategy. Every scenario
starts with a quote of its symbol (mid 100.00), and its orders are limit orders at the mid, fully
prepared (the risk checks the policy requires, passed; an approving LLM decision), unless the
scenario is about exactly that. Sizes are derived from the policy's limits.

Scenarios are spread over [start, start + duration); the order-rate and daily-notional ones
pace their orders below the policy's order rate so they trip only their own rule. ``skipped``
says why a code cannot be injected under a policy (e.g. ``restricted_symbols`` is empty).
Deterministic: ids come from a generator seeded with ``seed`` (not the simulator's own sequence).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from decimal import Decimal
from uuid import UUID

from tradewatch.domain.compliance.issue import ISSUE_CODES
from tradewatch.domain.compliance.policy import CompliancePolicy
from tradewatch.domain.events.models import (
    CircuitBreakerEvent,
    EventBase,
    LlmDecisionEvent,
    MarketDataEvent,
    OrderEvent,
    PositionUpdateEvent,
    RiskCheckEvent,
    SignalEvent,
)
from tradewatch.domain.events.payloads import (
    CircuitBreakerPayload,
    LlmDecisionPayload,
    MarketDataPayload,
    OrderPayload,
    PositionUpdatePayload,
    RiskCheckPayload,
    SignalPayload,
)

SOURCE = "inject-engine"
MID = Decimal("100.00")
_STEP_NS = 1_000  # between the events of one chain
_MAX_DAILY_ORDERS = 5_000
_US = 1_000


def _dec(value: float, places: int = 2) -> Decimal:
    return Decimal(f"{value:.{places}f}")


class ViolationInjector:
    """The scenario events for ``policy`` over [start_ns, start_ns + duration_ns) (module docstring)."""

    def __init__(self, policy: CompliancePolicy, start_ns: int, duration_ns: int, seed: int = 0) -> None:
        self.policy = policy
        # Its own stream of ids: seeded like the simulator it is mixed into, a plain Random(seed)
        # would draw the simulator's very event ids.
        self._rng = random.Random(f"tradewatch-violations-{seed}")
        self.skipped: dict[str, str] = {}
        builders: dict[str, Callable[[str, str, int], list[EventBase]]] = {
            "ORDER_WITHOUT_RISK_CHECK": self._without_risk_check,
            "RISK_CHECK_FAILED_ORDER_SENT": self._failed_check_sent,
            "RISK_OVERRIDE_WITHOUT_APPROVER": self._override_without_approver,
            "LLM_REVIEW_MISSING": self._review_missing,
            "LLM_REJECTED_ORDER_SENT": self._llm_rejected_sent,
            "LLM_FORBIDDEN_DECISION": self._forbidden_decision,
            "ORDER_NOTIONAL_LIMIT": self._order_notional,
            "DAILY_NOTIONAL_LIMIT": self._daily_notional,
            "POSITION_LIMIT": self._position_limit,
            "RESTRICTED_SYMBOL": self._restricted,
            "TRADING_WHILE_HALTED": self._halted,
            "ORDER_RATE_LIMIT": self._order_rate,
            "DUPLICATE_ORDER": self._duplicate,
            "PRICE_COLLAR": self._collar,
        }
        assert set(builders) == set(ISSUE_CODES)
        # The daily-notional scenario is the long one (hundreds of paced orders): it goes first so
        # it ends inside short runs too.
        enabled = sorted((code for code in ISSUE_CODES if self._why_not(code) is None),
                         key=lambda code: code != "DAILY_NOTIONAL_LIMIT")
        for code in ISSUE_CODES:
            reason = self._why_not(code)
            if reason is not None:
                self.skipped[code] = reason
        self.injected_codes: tuple[str, ...] = tuple(enabled)
        spacing = max(duration_ns // (len(enabled) + 1), 1_000_000)
        events: list[EventBase] = []
        for index, code in enumerate(enabled):
            strategy = f"inject-{code.lower().replace('_', '-')}"
            symbol = f"INJ-{code.replace('_', '-')}"
            events += builders[code](strategy, symbol, start_ns + (index + 1) * spacing)
        events.sort(key=lambda event: event.occurred_at)
        self._events = events
        self._next = 0

    # ------------------------------------------------------------------ public

    def events_until(self, t_ns: int) -> list[EventBase]:
        """Scenario events with occurred_at < t_ns not returned yet, in time order."""
        start = self._next
        while self._next < len(self._events) and self._events[self._next].occurred_at < t_ns:
            self._next += 1
        return self._events[start:self._next]

    def rest(self) -> list[EventBase]:
        """Every scenario event not returned yet (a run cut short still gets its violations)."""
        start, self._next = self._next, len(self._events)
        return self._events[start:]

    @property
    def events(self) -> list[EventBase]:
        return list(self._events)

    # ------------------------------------------------------------------ what the policy allows

    def _why_not(self, code: str) -> str | None:
        p = self.policy
        checks = p.required_risk_checks
        reasons = {
            "ORDER_WITHOUT_RISK_CHECK": None if (checks.minimum_passed or checks.checks or checks.per_strategy)
            else "required_risk_checks requires nothing",
            "RISK_OVERRIDE_WITHOUT_APPROVER": None if p.risk_overrides.approver_required
            else "risk_overrides.approver_required is false",
            "LLM_REVIEW_MISSING": None if p.llm_review.strategies else "llm_review.strategies is empty",
            "LLM_FORBIDDEN_DECISION": None if p.forbidden_llm_decisions else "forbidden_llm_decisions is empty",
            "ORDER_NOTIONAL_LIMIT": None if p.notional_limits.per_order is not None else "notional_limits.per_order is off",
            "DAILY_NOTIONAL_LIMIT": self._daily_reason(),
            "POSITION_LIMIT": None if (p.max_position.default.max_quantity is not None
                                       or p.max_position.default.max_notional is not None)
            else "max_position.default has no limit",
            "RESTRICTED_SYMBOL": None if p.restricted_symbols else "restricted_symbols is empty",
            "TRADING_WHILE_HALTED": None if p.trading_state.halted_blocks_new_orders
            else "trading_state.halted_blocks_new_orders is false",
            "ORDER_RATE_LIMIT": None if p.order_rate.max_orders_per_second is not None
            else "order_rate.max_orders_per_second is off",
            "DUPLICATE_ORDER": None if p.duplicate_orders.window_seconds is not None
            else "duplicate_orders.window_seconds is off",
            "PRICE_COLLAR": None if p.price_collar.max_deviation_percent is not None
            else "price_collar.max_deviation_percent is off",
        }
        return reasons.get(code)

    def _daily_reason(self) -> str | None:
        limits = self.policy.notional_limits
        limit = limits.per_instrument_per_day or limits.gross_per_strategy_per_day
        if limit is None:
            return "notional_limits has no daily limit"
        if self._daily_orders(limit) > _MAX_DAILY_ORDERS:
            return f"the daily limit {limit:,.0f} needs more than {_MAX_DAILY_ORDERS} orders under per_order"
        return None

    def _order_size(self) -> float:
        """The notional of one order that breaches no per-order limit (90% of it, at most)."""
        per_order = self.policy.notional_limits.per_order
        return 0.9 * per_order if per_order is not None else 1_000_000.0

    def _daily_orders(self, limit: float) -> int:
        return math.floor(limit / self._order_size()) + 1

    # ------------------------------------------------------------------ building blocks

    def _uuid(self) -> UUID:
        return UUID(int=self._rng.getrandbits(128), version=4)

    def _hex(self) -> str:
        return f"{self._rng.getrandbits(64):016x}"

    def _quote(self, symbol: str, t: int, mid: Decimal = MID) -> MarketDataEvent:
        return MarketDataEvent(event_id=self._uuid(), occurred_at=t, source=SOURCE, symbol=symbol,
                               payload=MarketDataPayload(bid=mid - Decimal("0.01"), ask=mid + Decimal("0.01"),
                                                         last=mid, volume=Decimal(100)))

    def _required_checks(self, strategy: str) -> list[str]:
        checks = self.policy.required_risk_checks
        names = list(checks.for_strategy(strategy))
        extra = 0
        while len(names) < checks.minimum_passed:
            extra += 1
            names.append(f"inject_check_{extra}")
        return names

    def _chain(self, strategy: str, symbol: str, t: int, *, quantity: Decimal, price: Decimal = MID,
               checks: list[tuple[str, bool, bool, str | None]] | None = None, llm: str | None = "approve",
               reviewed_by: str | None = "auto", order: bool = True, side: str = "buy") -> list[EventBase]:
        """signal -> risk checks -> LLM decision -> limit order submitted, 1 µs apart.

        ``checks``: (name, passed, override, approver) per check; None = the required ones, passed."""
        signal_id, order_id = f"sig-inj-{self._hex()}", f"ord-inj-{self._hex()}"
        keys = {"source": SOURCE, "strategy_id": strategy, "symbol": symbol, "signal_id": signal_id}
        out: list[EventBase] = [SignalEvent(event_id=self._uuid(), occurred_at=t, **keys, payload=SignalPayload(
            direction="long" if side == "buy" else "short", confidence=0.8, horizon_seconds=60.0, model="inject"))]
        t += _STEP_NS
        if checks is None:
            checks = [(name, True, False, None) for name in self._required_checks(strategy)]
        for name, passed, override, approver in checks:
            out.append(RiskCheckEvent(event_id=self._uuid(), occurred_at=t, **keys, payload=RiskCheckPayload(
                check_name=name, passed=passed, override=override, approver=approver,
                score=Decimal("0.5") if passed else Decimal("1.2"))))
            t += _STEP_NS
        if llm is not None:
            out.append(LlmDecisionEvent(event_id=self._uuid(), occurred_at=t, **keys, payload=LlmDecisionPayload(
                model="inject-llm", decision=llm, rationale=f"injected {llm}", confidence=0.9, reviewed_by=reviewed_by)))
            t += _STEP_NS
        if order:
            out.append(OrderEvent(event_id=self._uuid(), occurred_at=t, **keys, order_id=order_id, payload=OrderPayload(
                side=side, quantity=quantity, order_type="limit", limit_price=price, status="submitted",
                venue="XINJ", decision_price=MID)))
        return out

    @staticmethod
    def _quantity(notional: float, price: Decimal = MID) -> Decimal:
        return Decimal(max(1, math.floor(notional / float(price))))

    def _small(self) -> Decimal:
        """A quantity whose notional needs no LLM review nor breaks any limit."""
        review = self.policy.llm_review.min_notional
        target = min(10_000.0, 0.5 * review) if review > 0 else 10_000.0
        return self._quantity(max(target, 100.0))

    # ------------------------------------------------------------------ the scenarios

    def _without_risk_check(self, strategy: str, symbol: str, t: int) -> list[EventBase]:
        return [self._quote(symbol, t), *self._chain(strategy, symbol, t + _US, quantity=self._small(), checks=[])]

    def _failed_check_sent(self, strategy: str, symbol: str, t: int) -> list[EventBase]:
        checks = [(name, True, False, None) for name in self._required_checks(strategy)]
        checks.append(("inject_exposure", False, False, None))
        return [self._quote(symbol, t), *self._chain(strategy, symbol, t + _US, quantity=self._small(), checks=checks)]

    def _override_without_approver(self, strategy: str, symbol: str, t: int) -> list[EventBase]:
        checks = [(name, True, False, None) for name in self._required_checks(strategy)]
        checks.append(("inject_exposure", False, True, None))
        # No order follows: an order would also be RISK_CHECK_FAILED_ORDER_SENT.
        return [self._quote(symbol, t), *self._chain(strategy, symbol, t + _US, quantity=self._small(), checks=checks,
                                                     order=False)]

    def _review_missing(self, strategy: str, symbol: str, t: int) -> list[EventBase]:
        covered = self.policy.llm_review.strategies
        if covered != "*":
            strategy = covered[0]
        review = self.policy.llm_review.min_notional
        return [self._quote(symbol, t), *self._chain(strategy, symbol, t + _US, quantity=self._quantity(max(review, 100.0)) + 1,
                                                     llm=None)]

    def _llm_rejected_sent(self, strategy: str, symbol: str, t: int) -> list[EventBase]:
        return [self._quote(symbol, t), *self._chain(strategy, symbol, t + _US, quantity=self._small(), llm="reject")]

    def _forbidden_decision(self, strategy: str, symbol: str, t: int) -> list[EventBase]:
        decision = self.policy.forbidden_llm_decisions[0]
        return [self._quote(symbol, t), *self._chain(strategy, symbol, t + _US, quantity=self._small(), llm=decision,
                                                     reviewed_by="inject-reviewer", order=False)]

    def _order_notional(self, strategy: str, symbol: str, t: int) -> list[EventBase]:
        per_order = self.policy.notional_limits.per_order
        return [self._quote(symbol, t), *self._chain(strategy, symbol, t + _US, quantity=self._quantity(1.5 * per_order))]

    def _daily_notional(self, strategy: str, symbol: str, t: int) -> list[EventBase]:
        limits = self.policy.notional_limits
        limit = limits.per_instrument_per_day or limits.gross_per_strategy_per_day
        count = self._daily_orders(limit)
        quantity = self._quantity(self._order_size())
        # Paced at half the policy's order rate (at most 10/s) so the orders trip only this rule.
        rate = self.policy.order_rate.max_orders_per_second
        interval = int(1e9 / min(10.0, 0.5 * rate)) if rate else 100_000_000
        out: list[EventBase] = [self._quote(symbol, t)]
        window = self.policy.duplicate_orders.window_seconds
        # Sizes cycle through more values than orders fit in the duplicate window: no duplicates.
        sizes = int(window * 1e9 // interval) + 2 if window is not None else 1
        for index in range(count):
            out += self._chain(strategy, symbol, t + _US + index * interval, quantity=quantity - index % sizes)
        return out

    def _position_limit(self, strategy: str, symbol: str, t: int) -> list[EventBase]:
        limit = self.policy.max_position.for_symbol(symbol)
        if limit.max_quantity is not None:
            quantity = Decimal(math.floor(limit.max_quantity * 1.5) + 1)
        else:
            quantity = self._quantity(1.5 * limit.max_notional) + 1
        return [self._quote(symbol, t), PositionUpdateEvent(
            event_id=self._uuid(), occurred_at=t + _US, source=SOURCE, strategy_id=strategy, symbol=symbol,
            payload=PositionUpdatePayload(quantity=quantity, avg_price=MID, market_price=MID,
                                          realized_pnl=Decimal(0), unrealized_pnl=Decimal(0)))]

    def _restricted(self, strategy: str, symbol: str, t: int) -> list[EventBase]:
        symbol = self.policy.restricted_symbols[0]
        return [self._quote(symbol, t), *self._chain(strategy, symbol, t + _US, quantity=self._small())]

    def _halted(self, strategy: str, symbol: str, t: int) -> list[EventBase]:
        def breaker(at: int, state: str, trading_state: str) -> CircuitBreakerEvent:
            return CircuitBreakerEvent(event_id=self._uuid(), occurred_at=at, source=SOURCE, strategy_id=strategy,
                                       payload=CircuitBreakerPayload(state=state, scope="strategy",
                                                                     trading_state=trading_state, reason="injected halt"))
        chain = self._chain(strategy, symbol, t + 2 * _US, quantity=self._small())
        return [self._quote(symbol, t), breaker(t + _US, "tripped", "HALTED"), *chain,
                breaker(chain[-1].occurred_at + 1_000_000, "reset", "ACTIVE")]

    def _order_rate(self, strategy: str, symbol: str, t: int) -> list[EventBase]:
        rate = self.policy.order_rate
        count = math.floor(rate.max_orders_per_second * rate.window_seconds) + 2
        # Chains prepared first, then the orders' submissions packed into half the window.
        spacing = max(int(rate.window_seconds * 1e9 / 2 / count), 1)
        out: list[EventBase] = [self._quote(symbol, t)]
        base = self._small()
        chains = []
        for index in range(count):
            chain = self._chain(strategy, symbol, t + _US + index * 10 * _STEP_NS, quantity=base + index)
            chains.append(chain)
        burst = max(chain[-2].occurred_at for chain in chains) + _US
        for index, chain in enumerate(chains):
            order = chain[-1]
            chain[-1] = order.model_copy(update={"occurred_at": burst + index * spacing})
            out += chain
        return out

    def _duplicate(self, strategy: str, symbol: str, t: int) -> list[EventBase]:
        window_ns = int(self.policy.duplicate_orders.window_seconds * 1e9)
        quantity = self._small()
        first = self._chain(strategy, symbol, t + _US, quantity=quantity)
        second = self._chain(strategy, symbol, first[-1].occurred_at + max(window_ns // 2, 10 * _STEP_NS) - 4 * _STEP_NS,
                             quantity=quantity)
        return [self._quote(symbol, t), *first, *second]

    def _collar(self, strategy: str, symbol: str, t: int) -> list[EventBase]:
        deviation = self.policy.price_collar.max_deviation_percent
        price = _dec(float(MID) * (1 + 2 * deviation / 100.0))
        return [self._quote(symbol, t), *self._chain(strategy, symbol, t + _US, quantity=self._small(), price=price)]


__all__ = ["SOURCE", "ViolationInjector"]
