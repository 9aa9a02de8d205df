"""The compliance rule engine: the policy applied to the event stream, one event at a time.

Pure and incremental. ``apply(events, state)`` takes events in any arrival order, ``tick(now,
state)`` and ``flush(state)`` settle what waits; the ``ComplianceState`` carries everything the
rules remember between calls (and, encoded with ``to_bytes``, across restarts).

Order. The rules judge an order by what happened *before* it (its signal's risk checks and LLM
decision, the last quote, the trading state, the day's notional so far), so they see the events
in one canonical order, ``events.canonical_key`` (event time, then cause before effect, then
event id), whatever order they arrive in. Arrivals wait in a reorder buffer and are applied once
the watermark passes them:

    watermark = max over arrivals of trusted_time - reorder_window
    trusted_time = min(occurred_at, received_at + 60 s)      (occurred_at when received_at unknown)

so events up to ``reorder_window`` out of order are still judged in event-time order, and one
event stamped by a clock hours ahead cannot release everything. ``tick(now)`` (now on
tradewatch's clock) advances the watermark by the time that passed since the latest receipt:

    watermark = max trusted_time - reorder_window + max(0, now - max received_at)

so an order whose risk check never came is judged even when nothing else arrives, and an engine
whose clock runs behind tradewatch's is not made late by the tick (with no receipt times, as in
an offline file, ``now - reorder_window``). ``flush`` applies all of the buffer (the end of a period). An event arriving after
its time was already passed is *late*: applied at once (late ones of one call in canonical order)
and counted; the beat's period re-check then judges it in order.

Any split of the same events into calls, with the buffer in between, gives the same issues as one
call, as long as no event is late; ``ComplianceMonitor.analyze_period`` relies on it.

Definitions (the policy module documents the limits themselves):

- An order is judged at its ``submitted`` event (one per order; other statuses are later facts of
  the same order).
- Notional (account currency) = quantity x price, price = limit price for a limit order, the
  decision price for a market order, else the last mid of the symbol; unknown when none is known
  (notional limits then cannot be judged; LLM review is then required when the strategy is
  covered, whatever ``min_notional``).
- Mid = (bid + ask) / 2 of the symbol's last ``market_data``, its ``last`` when one side is missing.
- A risk check counts as passed when it passed, or failed and was overridden with an approver (or
  without one when ``risk_overrides.approver_required`` is false). A check run again and passed
  clears its earlier failure.
- A signal's record (checks, LLM decision) is forgotten ``signal_ttl_seconds`` after its last
  event: an order after that finds no checks.
- Trading state of an order: the stricter of its strategy's breaker and its engine's (``source``)
  global breaker, from their last ``circuit_breaker`` events; ACTIVE when none.
- Position: the ``quantity`` of the strategy's last ``position_update`` in the symbol (signed).
  An order reduces risk when it is opposite the position and no larger than it.
- Day-scoped issues (``ISSUE_CODES[code].scope == "day"``) are raised once per key and trading
  day; order- and signal-scoped issues once per key.
- Events before the first policy's ``effective_from`` update the state but are not judged.
"""

from __future__ import annotations

import heapq
import json
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Callable

from tradewatch.domain.compliance.events import ComplianceEvent, canonical_key
from tradewatch.domain.compliance.issue import ISSUE_CODES, ComplianceIssue
from tradewatch.domain.compliance.notional import order_price
from tradewatch.domain.compliance.policy import (
    CompliancePolicy,
    NoPolicyInForce,
    PolicyHistory,
)
from tradewatch.domain.compliance.trading_day import TradingDay

NS = 1_000_000_000
#: How far ahead of its receipt an event's occurred_at is believed (as the detectors do).
MAX_CLOCK_LEAD_NS = 60 * NS
STATE_VERSION = 1
_SEP = "\x1f"  # joins the parts of composite dictionary keys (never in an identifier)
_RANK = {"ACTIVE": 0, "REDUCING": 1, "HALTED": 2}


class ComplianceStateError(ValueError):
    """The encoded state cannot be read (corrupt, or written by another state version)."""


@dataclass(frozen=True)
class EngineConfig:
    """How the engine waits for out-of-order events and how long it remembers a signal."""

    reorder_window_seconds: float = 5.0
    """Events up to this much out of event-time order are still judged in order (seconds)."""
    signal_ttl_seconds: float = 600.0
    """A signal's risk checks and LLM decision are remembered this long after its last event."""

    def __post_init__(self) -> None:
        if not 0 <= self.reorder_window_seconds <= 3600:
            raise ValueError(f"reorder_window_seconds {self.reorder_window_seconds}: accepted 0 to 3600 seconds")
        if not 0 < self.signal_ttl_seconds <= 7 * 86_400:
            raise ValueError(f"signal_ttl_seconds {self.signal_ttl_seconds}: accepted more than 0, at most 604800 (a week)")

    @property
    def window_ns(self) -> int:
        return int(self.reorder_window_seconds * NS)

    @property
    def signal_ttl_ns(self) -> int:
        return int(self.signal_ttl_seconds * NS)


class _Signal:
    """What the rules remember of one signal: its passed checks, unresolved failures and the
    last LLM decision, with the event ids that show them."""

    __slots__ = ("last_ns", "passed", "failed", "check_ids", "llm")

    def __init__(self, last_ns: int) -> None:
        self.last_ns = last_ns
        self.passed: dict[str, str] = {}  # check name -> event id of the pass (or approved override)
        self.failed: dict[str, str] = {}  # check name -> event id of the failure not overridden
        self.check_ids: list[str] = []
        self.llm: tuple[str, str | None, str] | None = None  # (decision, reviewed_by, event id)

    def to_list(self) -> list:
        return [self.last_ns, self.passed, self.failed, self.check_ids, None if self.llm is None else list(self.llm)]

    @classmethod
    def from_list(cls, data: list) -> _Signal:
        signal = cls(int(data[0]))
        signal.passed, signal.failed, signal.check_ids = dict(data[1]), dict(data[2]), list(data[3])
        signal.llm = None if data[4] is None else (data[4][0], data[4][1], data[4][2])
        return signal


class ComplianceState:
    """Everything the rules remember between calls (module docstring). Mutable: the engine
    updates it in place; ``to_bytes``/``from_bytes`` carry it across processes."""

    def __init__(self) -> None:
        self.buffer: list[tuple[tuple[int, int, str], ComplianceEvent]] = []  # heap by canonical key
        self.max_trusted_ns: int | None = None
        self.max_received_ns: int | None = None  # tradewatch's clock at the latest receipt
        self.released_ns: int | None = None  # every event at or before this time has been applied
        self.mids: dict[str, tuple[float, str]] = {}  # symbol -> (mid, quote event id)
        self.positions: dict[str, float] = {}  # strategy SEP symbol -> signed quantity
        self.breakers: dict[str, tuple[str, str]] = {}  # source SEP strategy ("" global) -> (state, event id)
        self.signals: dict[str, _Signal] = {}
        self.day_notional: dict[str, float] = {}  # "symbol"|"strategy" SEP name SEP day -> gross notional
        self.recent_orders: dict[str, deque[int]] = {}  # strategy -> submission times within the rate window
        self.last_similar: dict[str, tuple[int, str, str]] = {}  # strategy SEP symbol SEP side SEP qty -> (ns, order, event)
        self.raised: dict[str, int] = {}  # issue key -> occurred_at_ns of the issue raised
        self.applied = 0
        self.late = 0
        self._since_prune = 0

    @property
    def pending(self) -> int:
        """Events buffered, waiting for the watermark."""
        return len(self.buffer)

    # ------------------------------------------------------------------ encoding

    def to_bytes(self) -> bytes:
        body = {
            "version": STATE_VERSION,
            "buffer": [list(event) for _, event in sorted(self.buffer)],
            "max_trusted_ns": self.max_trusted_ns, "max_received_ns": self.max_received_ns,
            "released_ns": self.released_ns,
            "mids": {k: list(v) for k, v in self.mids.items()}, "positions": self.positions,
            "breakers": {k: list(v) for k, v in self.breakers.items()},
            "signals": {k: v.to_list() for k, v in self.signals.items()},
            "day_notional": self.day_notional,
            "recent_orders": {k: list(v) for k, v in self.recent_orders.items()},
            "last_similar": {k: list(v) for k, v in self.last_similar.items()},
            "raised": self.raised, "applied": self.applied, "late": self.late,
        }
        return zlib.compress(json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8"), 1)

    @classmethod
    def from_bytes(cls, data: bytes) -> ComplianceState:
        try:
            body = json.loads(zlib.decompress(bytes(data)).decode("utf-8"))
        except (zlib.error, UnicodeDecodeError, ValueError) as exc:
            raise ComplianceStateError(f"the compliance state is not readable: {exc}") from None
        if not isinstance(body, dict) or body.get("version") != STATE_VERSION:
            got = body.get("version") if isinstance(body, dict) else type(body).__name__
            raise ComplianceStateError(f"the compliance state has version {got!r}; this tradewatch reads version {STATE_VERSION}")
        try:
            state = cls()
            for item in body["buffer"]:
                event = ComplianceEvent._make(item)
                state.buffer.append((canonical_key(event), event))
            heapq.heapify(state.buffer)
            state.max_trusted_ns, state.released_ns = body["max_trusted_ns"], body["released_ns"]
            state.max_received_ns = body["max_received_ns"]
            state.mids = {k: (float(v[0]), v[1]) for k, v in body["mids"].items()}
            state.positions = {k: float(v) for k, v in body["positions"].items()}
            state.breakers = {k: (v[0], v[1]) for k, v in body["breakers"].items()}
            state.signals = {k: _Signal.from_list(v) for k, v in body["signals"].items()}
            state.day_notional = {k: float(v) for k, v in body["day_notional"].items()}
            state.recent_orders = {k: deque(int(t) for t in v) for k, v in body["recent_orders"].items()}
            state.last_similar = {k: (int(v[0]), v[1], v[2]) for k, v in body["last_similar"].items()}
            state.raised = {k: int(v) for k, v in body["raised"].items()}
            state.applied, state.late = int(body["applied"]), int(body["late"])
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise ComplianceStateError(f"the compliance state is malformed: {exc!r}") from None
        return state


@dataclass
class ComplianceResult:
    """What one ``apply``, ``tick`` or ``flush`` did."""

    issues: list[ComplianceIssue] = field(default_factory=list)
    events: int = 0
    """Events received by this call."""
    applied: int = 0
    """Events the rules applied in this call (buffered ones included, late ones included)."""
    late: int = 0
    """Events that arrived after their time had been applied past."""

    def add(self, other: ComplianceResult) -> None:
        self.issues += other.issues
        self.events += other.events
        self.applied += other.applied
        self.late += other.late


def day_start_ns(policy: CompliancePolicy, t_ns: int) -> int:
    """Start (UTC ns) of the trading day holding ``t_ns`` in ``policy``'s timezone."""
    day = TradingDay(policy.zone)
    day.of(t_ns)
    return day.start_ns


class ComplianceEngine:
    """The policy's rules over the event stream (module docstring for order and definitions)."""

    def __init__(self, policies: PolicyHistory | CompliancePolicy, config: EngineConfig | None = None) -> None:
        self.policies = policies if isinstance(policies, PolicyHistory) else PolicyHistory([policies])
        self.config = config or EngineConfig()
        self._window_ns = self.config.window_ns
        self._ttl_ns = self.config.signal_ttl_ns
        self._days = {policy.version: TradingDay(policy.zone) for policy in self.policies.policies}
        # The policy in force changes rarely: remember the span of the last one found.
        self._span: tuple[int, int, CompliancePolicy | None] = (1, 0, None)
        self._handlers: dict[str, Callable[[ComplianceEvent, ComplianceState, list[ComplianceIssue]], None]] = {
            "market_data": self._market_data, "circuit_breaker": self._circuit_breaker,
            "position_update": self._position_update, "signal": self._signal, "risk_check": self._risk_check,
            "llm_decision": self._llm_decision, "order": self._order,
        }

    def new_state(self) -> ComplianceState:
        return ComplianceState()

    # ------------------------------------------------------------------ driving

    def apply(self, events: Iterable[ComplianceEvent], state: ComplianceState) -> ComplianceResult:
        """Buffer ``events``, then apply every buffered event the watermark has passed."""
        result = ComplianceResult()
        late: list[ComplianceEvent] = []
        buffer, released = state.buffer, state.released_ns
        trusted, latest_receipt = state.max_trusted_ns, state.max_received_ns
        push = heapq.heappush
        for event in events:
            result.events += 1
            t = event.occurred_at_ns
            received = event.received_at_ns
            if received is None:
                believed = t
            else:
                believed = t if t <= received + MAX_CLOCK_LEAD_NS else received + MAX_CLOCK_LEAD_NS
                if latest_receipt is None or received > latest_receipt:
                    latest_receipt = received
            if trusted is None or believed > trusted:
                trusted = believed
            if released is not None and t <= released:
                late.append(event)
            else:
                push(buffer, (canonical_key(event), event))
        state.max_trusted_ns, state.max_received_ns = trusted, latest_receipt
        if late:
            late.sort(key=canonical_key)
            self._apply_each(late, state, result)
            result.late += len(late)
            state.late += len(late)
        if trusted is not None:
            self._release(trusted - self._window_ns, state, result)
        return result

    def tick(self, now_ns: int, state: ComplianceState) -> ComplianceResult:
        """Advance the watermark with tradewatch's clock ``now_ns`` (module docstring) and apply
        what it passes: rules that wait for something that never came are settled by this."""
        result = ComplianceResult()
        now_ns = int(now_ns)
        if state.max_trusted_ns is None or state.max_received_ns is None:
            watermark = now_ns - self._window_ns
        else:
            watermark = state.max_trusted_ns - self._window_ns + max(0, now_ns - state.max_received_ns)
        self._release(watermark, state, result)
        return result

    def flush(self, state: ComplianceState) -> ComplianceResult:
        """Apply everything buffered (the end of a period: nothing more will come)."""
        result = ComplianceResult()
        if state.buffer:
            self._release(max(key[0] for key, _ in state.buffer), state, result)
        return result

    def prime(self, events: Iterable[ComplianceEvent], state: ComplianceState) -> None:
        """Apply context events (the last quote, breaker and position before a period) to the
        state, in canonical order, without judging them and without moving the watermark."""
        discard: list[ComplianceIssue] = []
        for event in sorted(events, key=canonical_key):
            if event.event_type in ("market_data", "circuit_breaker", "position_update"):
                handler = self._handlers[event.event_type]
                handler(event, state, discard)

    def _release(self, watermark: int, state: ComplianceState, result: ComplianceResult) -> None:
        buffer = state.buffer
        if buffer and buffer[0][0][0] <= watermark:
            ready = []
            pop = heapq.heappop
            while buffer and buffer[0][0][0] <= watermark:
                ready.append(pop(buffer)[1])
            self._apply_each(ready, state, result)
        if state.released_ns is None or watermark > state.released_ns:
            state.released_ns = watermark

    def _apply_each(self, events: list[ComplianceEvent], state: ComplianceState, result: ComplianceResult) -> None:
        handlers = self._handlers
        issues = result.issues
        for event in events:
            handler = handlers.get(event.event_type)
            if handler is not None:
                handler(event, state, issues)
        result.applied += len(events)
        state.applied += len(events)
        state._since_prune += len(events)
        if state._since_prune >= 50_000 and events:
            self._prune(events[-1].occurred_at_ns, state)
            state._since_prune = 0

    def _prune(self, now_ns: int, state: ComplianceState) -> None:
        """Forget what no rule can look at any more (lookups check times themselves, so when this
        runs never changes a result, only the state's size)."""
        horizon = now_ns - self._ttl_ns
        state.signals = {k: v for k, v in state.signals.items() if v.last_ns >= horizon}
        keep_after = now_ns - 2 * 86_400 * NS - self._ttl_ns
        state.raised = {k: v for k, v in state.raised.items() if v >= keep_after}
        state.last_similar = {k: v for k, v in state.last_similar.items() if v[0] >= horizon}
        state.recent_orders = {k: v for k, v in state.recent_orders.items() if v and v[-1] >= horizon}
        if len(state.day_notional) > 1000:  # keep the last few days' totals
            days = sorted({key.rsplit(_SEP, 1)[1] for key in state.day_notional})
            kept = set(days[-3:])
            state.day_notional = {k: v for k, v in state.day_notional.items() if k.rsplit(_SEP, 1)[1] in kept}

    # ------------------------------------------------------------------ helpers

    def _policy(self, t_ns: int) -> CompliancePolicy | None:
        start, end, policy = self._span
        if start <= t_ns < end:
            return policy
        policies = self.policies.policies
        try:
            policy = self.policies.in_force(t_ns)
        except NoPolicyInForce:
            self._span = (-(2**63), policies[0].effective_from_ns, None)
            return None
        index = policies.index(policy)
        end = policies[index + 1].effective_from_ns if index + 1 < len(policies) else 2**63
        self._span = (policy.effective_from_ns, end, policy)
        return policy

    def _raise(self, state: ComplianceState, issues: list[ComplianceIssue], policy: CompliancePolicy,
               code: str, message: str, event: ComplianceEvent, **fields: Any) -> None:
        metadata = fields.pop("metadata", {})
        metadata["policy_version"] = policy.version
        metadata["policy_hash"] = policy.content_hash
        issue = ComplianceIssue.new(code, message, event.occurred_at_ns, metadata=metadata, **fields)
        key = issue.key
        before = state.raised.get(key)
        if before is not None and (ISSUE_CODES[code].scope == "day" or event.occurred_at_ns - before <= self._ttl_ns):
            return
        state.raised[key] = event.occurred_at_ns
        issues.append(issue)

    def _signal_of(self, event: ComplianceEvent, state: ComplianceState) -> _Signal | None:
        """The live record of the event's signal (None when it has none or it was forgotten)."""
        if event.signal_id is None:
            return None
        record = state.signals.get(event.signal_id)
        if record is None or event.occurred_at_ns - record.last_ns > self._ttl_ns:
            return None
        return record

    def _touch(self, event: ComplianceEvent, state: ComplianceState) -> _Signal | None:
        if event.signal_id is None:
            return None
        record = self._signal_of(event, state)
        if record is None:
            record = state.signals[event.signal_id] = _Signal(event.occurred_at_ns)
        record.last_ns = event.occurred_at_ns
        return record

    # ------------------------------------------------------------------ context events

    def _market_data(self, event: ComplianceEvent, state: ComplianceState, issues: list[ComplianceIssue]) -> None:
        bid, ask = event.bid, event.ask
        if bid is not None and ask is not None and bid > 0 and ask > 0:
            state.mids[event.symbol] = ((bid + ask) / 2.0, event.event_id)
        elif event.last is not None and event.last > 0:
            state.mids[event.symbol] = (event.last, event.event_id)

    def _circuit_breaker(self, event: ComplianceEvent, state: ComplianceState, issues: list[ComplianceIssue]) -> None:
        if event.trading_state not in _RANK:
            return
        scope = event.strategy_id if event.scope == "strategy" and event.strategy_id else ""
        state.breakers[f"{event.source}{_SEP}{scope}"] = (event.trading_state, event.event_id)

    def _position_update(self, event: ComplianceEvent, state: ComplianceState, issues: list[ComplianceIssue]) -> None:
        quantity = event.quantity
        if quantity is None or event.symbol is None:
            return
        state.positions[f"{event.strategy_id or ''}{_SEP}{event.symbol}"] = quantity
        policy = self._policy(event.occurred_at_ns)
        if policy is None:
            return
        limit = policy.max_position.for_symbol(event.symbol)
        if limit.max_quantity is None and limit.max_notional is None:
            return
        size = abs(quantity)
        price = event.market_price
        if price is None and event.symbol in state.mids:
            price = state.mids[event.symbol][0]
        notional = None if price is None else size * price
        breaches = []
        if limit.max_quantity is not None and size > limit.max_quantity:
            breaches.append(f"|quantity| {size:g} above max_quantity {limit.max_quantity:g}")
        if limit.max_notional is not None and notional is not None and notional > limit.max_notional:
            breaches.append(f"notional {notional:,.2f} above max_notional {limit.max_notional:,.2f}")
        if not breaches:
            return
        day = self._days[policy.version].of(event.occurred_at_ns)
        self._raise(
            state, issues, policy, "POSITION_LIMIT",
            f"Position of {event.strategy_id or 'an unnamed strategy'} in {event.symbol} is {quantity:g}: "
            + "; ".join(breaches) + f" (policy {policy.version}).",
            event, strategy_id=event.strategy_id, symbol=event.symbol, order_id=event.order_id,
            signal_id=event.signal_id, event_ids=(event.event_id,),
            metadata={"trading_day": day, "quantity": quantity, "notional": notional,
                      "max_quantity": limit.max_quantity, "max_notional": limit.max_notional},
        )

    # ------------------------------------------------------------------ the signal's chain

    def _signal(self, event: ComplianceEvent, state: ComplianceState, issues: list[ComplianceIssue]) -> None:
        self._touch(event, state)

    def _risk_check(self, event: ComplianceEvent, state: ComplianceState, issues: list[ComplianceIssue]) -> None:
        record = self._touch(event, state)
        if record is None or event.check_name is None:
            return
        name = event.check_name
        record.check_ids.append(event.event_id)
        if event.passed:
            record.passed[name] = event.event_id
            record.failed.pop(name, None)
            return
        policy = self._policy(event.occurred_at_ns)
        approver_required = policy is not None and policy.risk_overrides.approver_required
        if event.override and (event.approver or not approver_required):
            record.passed[name] = event.event_id
            record.failed.pop(name, None)
            return
        record.passed.pop(name, None)
        record.failed[name] = event.event_id
        if event.override and policy is not None:
            self._raise(
                state, issues, policy, "RISK_OVERRIDE_WITHOUT_APPROVER",
                f"Risk check {name} on signal {event.signal_id} failed and was overridden without an approver; "
                f"policy {policy.version} requires one (risk_overrides.approver_required).",
                event, signal_id=event.signal_id, strategy_id=event.strategy_id, symbol=event.symbol,
                event_ids=(event.event_id,), metadata={"check_name": name},
            )

    def _llm_decision(self, event: ComplianceEvent, state: ComplianceState, issues: list[ComplianceIssue]) -> None:
        record = self._touch(event, state)
        if record is not None and event.decision is not None:
            record.llm = (event.decision, event.reviewed_by, event.event_id)
        policy = self._policy(event.occurred_at_ns)
        if policy is not None and event.decision in policy.forbidden_llm_decisions:
            self._raise(
                state, issues, policy, "LLM_FORBIDDEN_DECISION",
                f"The LLM decided {event.decision!r} on signal {event.signal_id}; policy {policy.version} forbids "
                f"{', '.join(policy.forbidden_llm_decisions)}.",
                event, signal_id=event.signal_id, strategy_id=event.strategy_id, symbol=event.symbol,
                event_ids=(event.event_id,), metadata={"decision": event.decision},
            )

    # ------------------------------------------------------------------ orders

    def _order(self, event: ComplianceEvent, state: ComplianceState, issues: list[ComplianceIssue]) -> None:
        if event.status != "submitted":
            return
        t = event.occurred_at_ns
        policy = self._policy(t)
        if policy is None:
            return
        symbol, strategy, side, quantity = event.symbol, event.strategy_id, event.side, event.quantity or 0.0
        quote = state.mids.get(symbol) if symbol is not None else None
        price, price_basis = order_price(event.order_type, event.limit_price, event.decision_price,
                                         None if quote is None else quote[0])
        notional = None if price is None else quantity * price
        what = f"Order {event.order_id} ({strategy} {side} {quantity:g} {symbol}"
        what += f", notional {notional:,.2f})" if notional is not None else ", notional unknown)"
        common = {"order_id": event.order_id, "signal_id": event.signal_id, "strategy_id": strategy, "symbol": symbol}
        money = {"notional": notional, "price": price, "price_basis": price_basis}

        if symbol in policy.restricted_symbols:
            self._raise(state, issues, policy, "RESTRICTED_SYMBOL",
                        f"{what} is in a restricted symbol (policy {policy.version} restricted_symbols).",
                        event, event_ids=(event.event_id,), **common)

        self._trading_state(event, state, issues, policy, what, common)
        self._chain_rules(event, state, issues, policy, what, common, notional, money)

        limits = policy.notional_limits
        if notional is not None:
            if limits.per_order is not None and notional > limits.per_order:
                self._raise(state, issues, policy, "ORDER_NOTIONAL_LIMIT",
                            f"{what} exceeds the per-order limit {limits.per_order:,.2f} (policy {policy.version}).",
                            event, event_ids=(event.event_id,), metadata={**money, "limit": limits.per_order}, **common)
            if limits.per_instrument_per_day is not None or limits.gross_per_strategy_per_day is not None:
                day = self._days[policy.version].of(t)
                for kind, name, limit in (("symbol", symbol, limits.per_instrument_per_day),
                                          ("strategy", strategy, limits.gross_per_strategy_per_day)):
                    total_key = f"{kind}{_SEP}{name}{_SEP}{day}"
                    total = state.day_notional.get(total_key, 0.0) + notional
                    state.day_notional[total_key] = total
                    if limit is not None and total > limit:
                        self._raise(
                            state, issues, policy, "DAILY_NOTIONAL_LIMIT",
                            f"{what} took the gross notional of {kind} {name} on {day} to {total:,.2f}, above the "
                            f"daily limit {limit:,.2f} (policy {policy.version}).",
                            event, event_ids=(event.event_id,), order_id=event.order_id, signal_id=event.signal_id,
                            strategy_id=strategy if kind == "strategy" else None,
                            symbol=symbol if kind == "symbol" else None,
                            metadata={"trading_day": day, "limit_kind": "per_instrument_per_day" if kind == "symbol"
                                      else "gross_per_strategy_per_day", "total": total, "limit": limit,
                                      "order_strategy_id": strategy, "order_symbol": symbol, **money},
                        )

        rate = policy.order_rate
        if rate.max_orders_per_second is not None and strategy is not None:
            window_ns = int(rate.window_seconds * NS)
            times = state.recent_orders.get(strategy)
            if times is None:
                times = state.recent_orders[strategy] = deque()
            while times and times[0] <= t - window_ns:
                times.popleft()
            times.append(t)
            allowed = rate.max_orders_per_second * rate.window_seconds
            if len(times) > allowed:
                day = self._days[policy.version].of(t)
                self._raise(
                    state, issues, policy, "ORDER_RATE_LIMIT",
                    f"{strategy} submitted {len(times)} orders within {rate.window_seconds:g} s, above "
                    f"{allowed:g} ({rate.max_orders_per_second:g}/s, policy {policy.version}); the last was {event.order_id}.",
                    event, event_ids=(event.event_id,), order_id=event.order_id, strategy_id=strategy,
                    metadata={"trading_day": day, "orders_in_window": len(times), "allowed": allowed,
                              "window_seconds": rate.window_seconds},
                )

        window = policy.duplicate_orders.window_seconds
        if window is not None:
            similar = f"{strategy}{_SEP}{symbol}{_SEP}{side}{_SEP}{quantity!r}"
            if policy.duplicate_orders.match_price:
                similar += f"{_SEP}{event.order_type}{_SEP}{price!r}"
            previous = state.last_similar.get(similar)
            if previous is not None and previous[1] != event.order_id and t - previous[0] <= window * NS:
                self._raise(
                    state, issues, policy, "DUPLICATE_ORDER",
                    f"{what} repeats order {previous[1]} (same strategy, symbol, side, quantity"
                    f"{', type and price' if policy.duplicate_orders.match_price else ''}) "
                    f"{(t - previous[0]) / NS:.3f} s after it; window {window:g} s (policy {policy.version}).",
                    event, event_ids=(previous[2], event.event_id),
                    metadata={"previous_order_id": previous[1], "seconds_apart": (t - previous[0]) / NS}, **common)
            state.last_similar[similar] = (t, event.order_id, event.event_id)

        collar = policy.price_collar.max_deviation_percent
        if collar is not None and event.order_type == "limit" and event.limit_price is not None and quote is not None:
            deviation = abs(event.limit_price / quote[0] - 1.0) * 100.0
            # Rounded: 95 / 100 - 1 is -0.05000000000000004 in binary floating point.
            if round(deviation, 9) > collar:
                self._raise(
                    state, issues, policy, "PRICE_COLLAR",
                    f"{what} has limit price {event.limit_price:g}, {deviation:.2f}% from the mid {quote[0]:g}; "
                    f"the collar is {collar:g}% (policy {policy.version}).",
                    event, event_ids=(quote[1], event.event_id),
                    metadata={"limit_price": event.limit_price, "mid": quote[0], "deviation_percent": deviation,
                              "max_deviation_percent": collar}, **common)

    def _trading_state(self, event: ComplianceEvent, state: ComplianceState, issues: list[ComplianceIssue],
                       policy: CompliancePolicy, what: str, common: dict) -> None:
        rules = policy.trading_state
        if not (rules.halted_blocks_new_orders or rules.reducing_allows_only_risk_reducing):
            return
        own = state.breakers.get(f"{event.source}{_SEP}{event.strategy_id or ''}")
        engine_wide = state.breakers.get(f"{event.source}{_SEP}")
        current = max((b for b in (own, engine_wide) if b is not None), key=lambda b: _RANK[b[0]], default=None)
        if current is None or current[0] == "ACTIVE":
            return
        trading_state, breaker_event = current
        if trading_state == "HALTED" and rules.halted_blocks_new_orders:
            self._raise(state, issues, policy, "TRADING_WHILE_HALTED",
                        f"{what} was submitted while trading was HALTED (policy {policy.version}).",
                        event, event_ids=(breaker_event, event.event_id),
                        metadata={"trading_state": trading_state}, **common)
        elif trading_state == "REDUCING" and rules.reducing_allows_only_risk_reducing:
            held = state.positions.get(f"{event.strategy_id or ''}{_SEP}{event.symbol}", 0.0)
            quantity = event.quantity or 0.0
            reduces = (held > 0 and event.side == "sell" and quantity <= held + 1e-9) or (
                held < 0 and event.side == "buy" and quantity <= -held + 1e-9)
            if not reduces:
                self._raise(state, issues, policy, "TRADING_WHILE_HALTED",
                            f"{what} was submitted while trading was REDUCING and does not reduce the position "
                            f"{held:g} (policy {policy.version}).",
                            event, event_ids=(breaker_event, event.event_id),
                            metadata={"trading_state": trading_state, "position": held}, **common)

    def _chain_rules(self, event: ComplianceEvent, state: ComplianceState, issues: list[ComplianceIssue],
                     policy: CompliancePolicy, what: str, common: dict, notional: float | None, money: dict) -> None:
        record = self._signal_of(event, state)
        checks = policy.required_risk_checks
        required = checks.for_strategy(event.strategy_id)
        passed = record.passed if record is not None else {}
        missing = [name for name in required if name not in passed]
        if missing or len(passed) < checks.minimum_passed:
            reason = (f"missing {', '.join(missing)}" if missing
                      else f"{len(passed)} passed, at least {checks.minimum_passed} required")
            on_signal = f"signal {event.signal_id}" if event.signal_id else "no signal"
            self._raise(state, issues, policy, "ORDER_WITHOUT_RISK_CHECK",
                        f"{what} was submitted without the risk checks it needs on {on_signal}: {reason} "
                        f"(policy {policy.version}).",
                        event, event_ids=(*(record.check_ids if record else ()), event.event_id),
                        metadata={"missing_checks": missing, "passed_checks": sorted(passed),
                                  "minimum_passed": checks.minimum_passed}, **common)
        if record is not None and record.failed:
            failed = sorted(record.failed)
            self._raise(state, issues, policy, "RISK_CHECK_FAILED_ORDER_SENT",
                        f"{what} was submitted after risk check {', '.join(failed)} on signal {event.signal_id} failed "
                        f"without an approved override (policy {policy.version}).",
                        event, event_ids=(*(record.failed[name] for name in failed), event.event_id),
                        metadata={"failed_checks": failed}, **common)
        llm = record.llm if record is not None else None
        if llm is not None and (llm[0] == "reject" or (llm[0] == "escalate" and llm[1] in (None, "", "auto"))):
            reason = "rejected it" if llm[0] == "reject" else "escalated it and no reviewer approved it"
            self._raise(state, issues, policy, "LLM_REJECTED_ORDER_SENT",
                        f"{what} was submitted although the LLM {reason} on signal {event.signal_id} "
                        f"(policy {policy.version}).",
                        event, event_ids=(llm[2], event.event_id),
                        metadata={"decision": llm[0], "reviewed_by": llm[1]}, **common)
        review = policy.llm_review
        covered = review.strategies == "*" or (event.strategy_id is not None and event.strategy_id in review.strategies)
        if covered and llm is None and (notional is None or notional >= review.min_notional):
            self._raise(state, issues, policy, "LLM_REVIEW_MISSING",
                        f"{what} needed an LLM review (min_notional {review.min_notional:,.2f}) and its signal "
                        f"{event.signal_id or '(none)'} has no LLM decision before it (policy {policy.version}).",
                        event, event_ids=(event.event_id,), metadata={"min_notional": review.min_notional, **money},
                        **common)


__all__ = ["ComplianceEngine", "ComplianceResult", "ComplianceState", "ComplianceStateError", "EngineConfig",
           "day_start_ns"]
