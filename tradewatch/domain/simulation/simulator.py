"""A deterministic synthetic trading engine that emits linked audit event chains.

Pure: no wall clock, no environment, no I/O. The caller passes the start time and the times to
advance to; all randomness comes from one ``random.Random(config.seed)``, so the same config
and start time give the same events, however the run is cut into ``events_until`` calls.

How it works: a discrete-event simulation. Actions (a market data tick, a signal, a risk check,
an order acknowledgement, a fill, a heartbeat...) sit in a heap keyed by (time in ns, sequence).
Running an action emits at most a few events stamped with the action's own time and schedules
later actions, at least 1 ns later. Events therefore come out in time order.

A signal's chain::

    signal -> 1..3 risk_check -> llm_decision -> [order submitted -> accepted | rejected
           -> fill, position_update, fill, position_update ... -> (cancelled | expired)]

An order is sent only when every risk check passed (or a failed one was overridden), the LLM
approved or modified it, and the strategy is not HALTED by a circuit breaker. Under REDUCING an
order is sent only if it reduces the strategy's position in that instrument and no other order
for it is open. A trip cancels the affected strategies' open orders. Prices follow a geometric
random walk per instrument, advanced whenever the instrument is looked at.

Quoted and traded prices (bid, ask, last, limit and fill prices) are on the instrument's tick
grid; mids (decision_price, arrival_price, market_price) may fall on half a tick; vwap has 4
decimals. Quantities are multiples of the lot size. Determinism holds for a given Python version
(the generator's algorithms are those of the standard library ``random``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from heapq import heappop, heappush
from itertools import count as _counter
from typing import Any, Callable
from uuid import UUID

from tradewatch.domain.events.models import (
    AccountEvent,
    CircuitBreakerEvent,
    EventBase,
    FillEvent,
    LlmDecisionEvent,
    MarketDataEvent,
    OrderEvent,
    PositionUpdateEvent,
    RiskCheckEvent,
    SignalEvent,
    SystemEvent,
)
from tradewatch.domain.events.payloads import (
    AccountPayload,
    CircuitBreakerPayload,
    FillPayload,
    LlmDecisionPayload,
    MarketDataPayload,
    OrderPayload,
    PositionUpdatePayload,
    RiskCheckPayload,
    SignalPayload,
    SystemPayload,
)
from tradewatch.domain.simulation.book import CENT, ZERO, PositionBook
from tradewatch.domain.simulation.config import SimulationConfig, SymbolConfig

NS = 1_000_000_000
_EARLIEST_START_NS = 946_684_800 * NS  # 2000-01-01T00:00:00Z
_LATEST_START_NS = 3_786_912_000 * NS  # 2090-01-01T00:00:00Z, leaving room to simulate years
VWAP_QUANTUM = Decimal("0.0001")
PNL_QUANTUM = CENT
AVG_OUT_QUANTUM = Decimal("0.000001")

CHECK_NAMES = ("max_position", "order_notional", "drawdown", "price_collar", "concentration")
FACTORS = ("momentum", "value", "carry", "quality", "volatility")
HORIZONS = {"momentum": (300, 3600), "mean_reversion": (30, 900), "stat_arb": (60, 1800)}
VENUE_REJECT_REASONS = (
    "price outside collar",
    "insufficient buying power at venue",
    "order rate throttle exceeded",
    "instrument in auction",
    "duplicate client order id",
)
HALT_REASONS = (
    "daily loss limit breached",
    "drawdown limit breached",
    "order reject rate above threshold",
    "market data feed stale",
)
REDUCE_REASONS = (
    "gross exposure above soft limit",
    "volatility regime shift",
    "position concentration above limit",
)
MAX_LIMIT_WAITS = 20  # fill attempts a resting limit order waits for the market to come back
ACTIVE, REDUCING, HALTED = "ACTIVE", "REDUCING", "HALTED"
_SEVERITY = {ACTIVE: 0, REDUCING: 1, HALTED: 2}


def _fee_rate(bps: float) -> Decimal:
    return Decimal(repr(bps)) / Decimal(10_000)


def _money(x: float) -> Decimal:
    return Decimal(round(x * 100)) * CENT


class _Instrument:
    """Market state of one symbol: a geometric random walk quoted on the tick grid."""

    __slots__ = (
        "cfg", "symbol", "tick", "tick_f", "lot", "lot_f", "multiplier", "sigma", "mid", "t_ns",
        "bid_ticks", "ask_ticks", "pv", "volume", "source", "venue", "index",
    )

    def __init__(self, cfg: SymbolConfig, source: str, start_ns: int, index: int) -> None:
        self.cfg = cfg
        self.symbol = cfg.symbol
        self.tick = cfg.tick_size
        self.tick_f = float(cfg.tick_size)
        self.lot = cfg.lot_size
        self.lot_f = float(cfg.lot_size)
        self.multiplier = cfg.multiplier
        self.sigma = cfg.volatility_per_sqrt_second
        self.mid = cfg.start_price
        self.t_ns = start_ns
        self.source = source
        self.venue = cfg.venue
        self.index = index
        self.pv = 0.0  # cumulative price * volume of market trades, for interval VWAP
        self.volume = 0.0
        self._quote(cfg.spread_ticks)

    def _quote(self, spread: int) -> None:
        bid = int(math.floor(self.mid / self.tick_f - spread / 2.0))
        self.bid_ticks = max(bid, 1)
        self.ask_ticks = self.bid_ticks + spread

    def advance(self, t_ns: int, rng: random.Random) -> None:
        if t_ns <= self.t_ns:
            return
        dt = (t_ns - self.t_ns) / NS
        self.t_ns = t_ns
        s = self.sigma
        self.mid *= math.exp(s * math.sqrt(dt) * rng.gauss(0.0, 1.0) - 0.5 * s * s * dt)
        spread = self.cfg.spread_ticks
        if rng.random() < 0.1:  # the book thins out now and then
            spread += rng.randint(1, spread)
        self._quote(spread)

    def price(self, ticks: int) -> Decimal:
        return self.tick * ticks

    @property
    def mid_price(self) -> Decimal:
        return self.tick * (self.bid_ticks + self.ask_ticks) / 2


@dataclass(slots=True)
class _Chain:
    signal_id: str
    strategy_id: str
    symbol: str
    source: str
    direction: str
    confidence: float
    decision_price: Decimal
    notional: float
    checks: list[str]
    failed: list[tuple[str, Decimal, Decimal]] = field(default_factory=list)
    quantity_factor: float = 1.0


@dataclass(slots=True)
class _Order:
    order_id: str
    chain: _Chain
    instrument: _Instrument
    side: str
    units: int
    quantity: Decimal
    order_type: str
    limit_ticks: int | None
    arrival_price: Decimal
    common: dict[str, Any]
    pv0: float
    volume0: float
    state: str = "pending"  # pending -> working -> done
    cancel_requested: bool = False
    plan: list[int] = field(default_factory=list)
    fills_done: int = 0
    waits: int = 0
    terminal: str | None = None


class TradingSimulator:
    """Deterministic synthetic engine. ``events_until`` advances simulated time to ``t_ns``.

    Event ids, signal ids, order ids and fill ids all come from the seeded generator, so two
    runs with the same seed and start time produce the same ids (an ingest absorbs the second
    as a redelivery): give each run its own seed when both should be stored.

    >>> sim = TradingSimulator(SimulationConfig(seed=7), start_ns=1_767_225_600_000_000_000)
    >>> events = sim.events_until(1_767_225_601_000_000_000)  # the first simulated second
    """

    def __init__(self, config: SimulationConfig, start_ns: int) -> None:
        if isinstance(start_ns, bool) or not isinstance(start_ns, int):
            raise TypeError(f"start_ns must be integer nanoseconds since the epoch, got {type(start_ns).__name__}")
        if not _EARLIEST_START_NS <= start_ns < _LATEST_START_NS:
            raise ValueError(
                f"start_ns {start_ns} is not between 2000-01-01 and 2090-01-01 as nanoseconds; "
                "pass integer nanoseconds since the epoch (seconds * 10**9)"
            )
        self.config = config
        self._rng = random.Random(config.seed)
        self._heap: list[tuple[int, int, Callable[[Any], None], Any]] = []
        self._seq = _counter()
        self._start = start_ns
        self._now = start_ns
        self._last = start_ns
        self._out: list[EventBase] = []

        cfg = config
        sources = cfg.sources
        self._strategy_source = {s: sources[i % len(sources)] for i, s in enumerate(cfg.strategies)}
        self._strategy_model = {s: cfg.signal_models[i % len(cfg.signal_models)] for i, s in enumerate(cfg.strategies)}
        self._instruments = {
            sym.symbol: _Instrument(sym, sources[j % len(sources)], start_ns, j) for j, sym in enumerate(cfg.symbols)
        }
        self._instrument_list = list(self._instruments.values())
        self._books = {src: PositionBook(cash=Decimal(repr(cfg.initial_cash_usd))) for src in sources}
        self._strategy_state = {s: ACTIVE for s in cfg.strategies}
        self._global_state = {src: ACTIVE for src in sources}
        self._armed_at: dict[tuple[str, str], int] = {}  # (scope, key) -> earliest time it may trip again
        self._open_orders: dict[str, _Order] = {}
        self._open_by_key: dict[tuple[str, str], int] = {}
        self._last_similar: dict[tuple, list[tuple[int, int]]] = {}  # duplicate guard: order shape -> [(units, ns)]
        self._taker_fee = _fee_rate(cfg.taker_fee_bps)
        self._maker_fee = _fee_rate(cfg.maker_fee_bps)

        rng = self._rng
        md_rate = cfg.market_data_events_per_second() / len(cfg.symbols)
        self._md_mean_ns = NS / md_rate if md_rate > 0 else None
        signal_rate = cfg.signals_per_second() / len(cfg.strategies)
        self._signal_mean_ns = NS / signal_rate
        if self._md_mean_ns is not None:
            for inst in self._instrument_list:
                self._at(start_ns + self._exp_ns(self._md_mean_ns), self._market_data, inst)
        for strategy in cfg.strategies:
            self._at(start_ns + self._exp_ns(self._signal_mean_ns), self._signal, strategy)
        for src in sources:
            self._at(start_ns + 1 + int(rng.random() * cfg.account_interval_seconds * NS), self._account, src)
            for component in cfg.components:
                self._at(start_ns + 1 + int(rng.random() * cfg.heartbeat_interval_seconds * NS), self._heartbeat, (src, component))

    # --- public API ------------------------------------------------------------------------

    @property
    def now_ns(self) -> int:
        """The time the simulation has been advanced to (the last ``t_ns`` or event time)."""
        return self._last

    def events_until(self, t_ns: int) -> list[EventBase]:
        """Events with ``occurred_at`` in (previous time, ``t_ns``], in time order."""
        if t_ns <= self._last:
            return []
        out: list[EventBase] = []
        self._out = out
        heap = self._heap
        while heap and heap[0][0] <= t_ns:
            when, _, action, arg = heappop(heap)
            self._now = when
            action(arg)
        self._last = t_ns
        return out

    def generate(self, count: int) -> list[EventBase]:
        """The next ``count`` events (a few more if the last ones share a nanosecond)."""
        out: list[EventBase] = []
        if count <= 0:
            return out
        self._out = out
        heap = self._heap
        while len(out) < count and heap:
            when, _, action, arg = heappop(heap)
            self._now = when
            action(arg)
        while heap and heap[0][0] <= self._now:
            when, _, action, arg = heappop(heap)
            action(arg)
        self._last = max(self._last, self._now)
        return out

    def trading_state(self, strategy_id: str) -> str:
        """ACTIVE, REDUCING or HALTED: the stricter of the strategy's and its engine's breaker."""
        own = self._strategy_state[strategy_id]
        glob = self._global_state[self._strategy_source[strategy_id]]
        return own if _SEVERITY[own] >= _SEVERITY[glob] else glob

    def book(self, source: str | None = None) -> PositionBook:
        """The position book (and cash) of ``source`` (default: the first source)."""
        return self._books[source or self.config.sources[0]]

    # --- scheduling helpers ------------------------------------------------------------------

    def _at(self, when: int, action: Callable[[Any], None], arg: Any) -> None:
        if when <= self._now:
            when = self._now + 1
        heappush(self._heap, (when, next(self._seq), action, arg))

    def _after(self, seconds_median: float, action: Callable[[Any], None], arg: Any, sigma: float = 0.5) -> None:
        delay = seconds_median * math.exp(sigma * self._rng.gauss(0.0, 1.0))
        self._at(self._now + 1 + int(delay * NS), action, arg)

    def _exp_ns(self, mean_ns: float) -> int:
        return 1 + int(self._rng.expovariate(1.0) * mean_ns)

    def _uuid(self) -> UUID:
        return UUID(int=self._rng.getrandbits(128), version=4)

    def _hex(self) -> str:
        return f"{self._rng.getrandbits(64):016x}"

    def _envelope(self, chain: _Chain, order_id: str | None = None) -> dict[str, Any]:
        """The envelope keys shared by a signal's chain of events, with a freshly drawn event id.

        Unpack it before ``payload=`` so the event id is drawn before any draw the payload makes.
        """
        keys: dict[str, Any] = {
            "event_id": self._uuid(),
            "occurred_at": self._now,
            "source": chain.source,
            "strategy_id": chain.strategy_id,
            "symbol": chain.symbol,
            "signal_id": chain.signal_id,
        }
        if order_id is not None:
            keys["order_id"] = order_id
        return keys

    # --- market data --------------------------------------------------------------------------

    def _market_data(self, inst: _Instrument) -> None:
        rng = self._rng
        now = self._now
        self._at(now + self._exp_ns(self._md_mean_ns), self._market_data, inst)
        inst.advance(now, rng)
        lots = max(1, int(rng.expovariate(1.0) * inst.cfg.quote_size_lots))
        last_ticks = inst.bid_ticks if rng.random() < 0.5 else inst.ask_ticks
        volume = inst.lot * lots
        inst.pv += last_ticks * inst.tick_f * lots * inst.lot_f
        inst.volume += lots * inst.lot_f
        self._out.append(
            MarketDataEvent(
                event_id=self._uuid(),
                occurred_at=now,
                source=inst.source,
                symbol=inst.symbol,
                payload=MarketDataPayload(
                    bid=inst.price(inst.bid_ticks),
                    ask=inst.price(inst.ask_ticks),
                    last=inst.price(last_ticks),
                    volume=volume,
                ),
            )
        )

    # --- signal -> risk checks -> LLM decision ------------------------------------------------

    def _signal(self, strategy: str) -> None:
        rng = self._rng
        cfg = self.config
        now = self._now
        self._at(now + self._exp_ns(self._signal_mean_ns), self._signal, strategy)
        source = self._strategy_source[strategy]
        if rng.random() < cfg.circuit_breaker_trip_probability:
            self._trip(strategy, source)

        inst = self._instrument_list[rng.randrange(len(self._instrument_list))]
        inst.advance(now, rng)
        mid = inst.mid_price
        pos = self._books[source].position(strategy, inst.symbol, inst.multiplier)
        held = float(pos.quantity * mid * inst.multiplier)
        p_long = min(0.95, max(0.05, 0.5 - 0.4 * held / cfg.max_position_notional_usd))
        direction = "long" if rng.random() < p_long else "short"
        confidence = round(rng.betavariate(5.0, 3.0), 4)
        low, high = HORIZONS.get(strategy, (60, 1800))
        low_k, high_k = cfg.risk_checks_per_signal
        chain = _Chain(
            signal_id=f"sig-{self._hex()}",
            strategy_id=strategy,
            symbol=inst.symbol,
            source=source,
            direction=direction,
            confidence=confidence,
            decision_price=mid,
            notional=cfg.order_notional_usd * rng.uniform(0.5, 1.5) * (0.5 + confidence),
            checks=rng.sample(CHECK_NAMES, rng.randint(low_k, high_k)),
        )
        sign = 1.0 if direction == "long" else -1.0
        factors = {name: round(rng.gauss(0.3 * sign, 1.0), 4) for name in FACTORS}
        self._out.append(
            SignalEvent(
                **self._envelope(chain),
                payload=SignalPayload(
                    direction=direction,
                    confidence=confidence,
                    horizon_seconds=float(rng.randint(low, high)),
                    factors=factors,
                    model=self._strategy_model[strategy],
                    generation_seconds=round(cfg.signal_generation_seconds * math.exp(0.5 * rng.gauss(0.0, 1.0)), 6),
                ),
            )
        )
        self._after(0.0004, self._risk_check, chain)

    def _strategy_pnl(self, strategy: str, source: str) -> float:
        total = 0.0
        for (strategy_id, symbol), pos in self._books[source].positions.items():
            if strategy_id == strategy:
                total += float(pos.realized_pnl - pos.fees + pos.unrealized_pnl(self._instruments[symbol].mid_price))
        return total

    def _risk_check(self, chain: _Chain) -> None:
        rng = self._rng
        cfg = self.config
        name = chain.checks.pop(0)
        inst = self._instruments[chain.symbol]
        pos = self._books[chain.source].position(chain.strategy_id, chain.symbol, inst.multiplier)
        sign = 1.0 if chain.direction == "long" else -1.0
        if name == "max_position":
            limit = cfg.max_position_notional_usd
            value = abs(float(pos.quantity * inst.mid_price * inst.multiplier) + sign * chain.notional)
        elif name == "order_notional":
            limit, value = cfg.max_order_notional_usd, chain.notional
        elif name == "drawdown":
            limit, value = cfg.max_drawdown_usd, max(0.0, -self._strategy_pnl(chain.strategy_id, chain.source))
        elif name == "price_collar":  # basis points between the decision price and the market now
            limit = 50.0
            value = abs(float(inst.mid_price / chain.decision_price) - 1.0) * 10_000
        else:  # concentration: share of the account's gross exposure, in percent
            limit = 40.0
            value = 100.0 * rng.betavariate(2.0, 14.0)
        passed = value <= limit
        if passed and rng.random() < cfg.risk_check_failure_rate:
            value, passed = limit * rng.uniform(1.01, 1.5), False
        override, approver = False, None
        if not passed and rng.random() < cfg.risk_override_rate:
            override, approver = True, rng.choice(cfg.approvers)
        limit_d, value_d = _money(limit), _money(value)
        if not passed and not override:
            chain.failed.append((name, value_d, limit_d))
        self._out.append(
            RiskCheckEvent(
                **self._envelope(chain),
                payload=RiskCheckPayload(
                    check_name=name,
                    passed=passed,
                    score=round(value / limit, 4),
                    limit=limit_d,
                    value=value_d,
                    override=override,
                    approver=approver,
                ),
            )
        )
        if chain.checks:
            self._after(0.0003, self._risk_check, chain)
        else:
            self._after(cfg.llm_latency_seconds, self._llm_decision, chain, sigma=0.6)

    def _llm_decision(self, chain: _Chain) -> None:
        rng = self._rng
        cfg = self.config
        reviewed_by = "auto"
        if chain.failed:
            name, value, limit = chain.failed[0]
            decision = "reject" if rng.random() < 0.9 else "escalate"
            rationale = f"Risk check {name} failed ({value} against limit {limit}); the order must not go out."
        else:
            r = rng.random()
            if r < cfg.llm_reject_rate:
                decision = "reject"
                rationale = (
                    f"{chain.strategy_id} {chain.direction} signal on {chain.symbol} at confidence {chain.confidence:.2f} "
                    "conflicts with recent news flow and the factor mix; rejecting."
                )
            elif r < cfg.llm_reject_rate + cfg.llm_modify_rate:
                decision = "modify"
                chain.quantity_factor = 0.5
                rationale = f"Signal is plausible but liquidity in {chain.symbol} is thin; halving the size."
            elif r < cfg.llm_reject_rate + cfg.llm_modify_rate + cfg.llm_escalate_rate:
                decision = "escalate"
                rationale = f"Unusual {chain.direction} exposure request on {chain.symbol}; needs a human decision."
            else:
                decision = "approve"
                rationale = (
                    f"{chain.direction.capitalize()} {chain.symbol}: {chain.strategy_id} signal consistent with "
                    f"factor exposures and risk checks (confidence {chain.confidence:.2f})."
                )
        if decision == "escalate":
            reviewed_by = rng.choice(cfg.approvers)
        self._out.append(
            LlmDecisionEvent(
                **self._envelope(chain),
                payload=LlmDecisionPayload(
                    model=cfg.llm_models[rng.randrange(len(cfg.llm_models))],
                    decision=decision,
                    rationale=rationale,
                    confidence=round(rng.uniform(0.55, 0.99), 3),
                    reviewed_by=reviewed_by,
                ),
            )
        )
        if decision in ("approve", "modify") and not chain.failed:
            self._after(0.0008, self._submit, chain)

    # --- orders and fills -------------------------------------------------------------------

    def _submit(self, chain: _Chain) -> None:
        rng = self._rng
        cfg = self.config
        state = self.trading_state(chain.strategy_id)
        if state == HALTED:
            return
        inst = self._instruments[chain.symbol]
        inst.advance(self._now, rng)
        mid = inst.mid_price
        side = "buy" if chain.direction == "long" else "sell"
        units = max(1, round(chain.notional * chain.quantity_factor / (float(mid * inst.multiplier) * inst.lot_f)))
        key = (chain.strategy_id, chain.symbol)
        if state == REDUCING:
            held = self._books[chain.source].position(chain.strategy_id, chain.symbol, inst.multiplier).quantity
            reduces = (held > 0 and side == "sell") or (held < 0 and side == "buy")
            if not reduces or self._open_by_key.get(key):
                return
            units = min(units, int(abs(held) / inst.lot))
        if rng.random() < cfg.limit_order_share:
            order_type = "limit"
            if side == "buy":
                limit_ticks = min(inst.bid_ticks + rng.randint(0, 1), inst.ask_ticks)
            else:
                limit_ticks = max(inst.ask_ticks - rng.randint(0, 1), inst.bid_ticks)
            limit_price = inst.price(limit_ticks)
        else:
            order_type, limit_ticks, limit_price = "market", None, None
        # The engine's own duplicate-order control (SEC 15c3-5): an order identical to one of the
        # strategy's within duplicate_guard_seconds is resized by a lot, as a real engine's
        # pre-trade check would make it, so the normal stream has no duplicates. No random draw.
        similar = (chain.strategy_id, chain.symbol, side, order_type, limit_price if limit_price is not None
                   else chain.decision_price)
        horizon = self._now - cfg.duplicate_guard_seconds * NS
        recent = [(u, at) for u, at in self._last_similar.get(similar, ()) if at >= horizon]
        taken = {u for u, _ in recent}
        while units in taken:
            units = units - 1 if state == REDUCING else units + 1
        if units < 1:
            return
        recent.append((units, self._now))
        self._last_similar[similar] = recent
        if len(self._last_similar) > 4096:  # forget shapes older than the guard
            self._last_similar = {k: v for k, v in self._last_similar.items() if v[-1][1] >= horizon}
        quantity = inst.lot * units
        common = {
            "side": side,
            "quantity": quantity,
            "order_type": order_type,
            "limit_price": limit_price,
            "venue": inst.venue,
            "decision_price": chain.decision_price,
        }
        order = _Order(
            order_id=f"ord-{self._hex()}",
            chain=chain,
            instrument=inst,
            side=side,
            units=units,
            quantity=quantity,
            order_type=order_type,
            limit_ticks=limit_ticks,
            arrival_price=mid,
            common=common,
            pv0=inst.pv,
            volume0=inst.volume,
        )
        self._open_orders[order.order_id] = order
        self._open_by_key[key] = self._open_by_key.get(key, 0) + 1
        self._emit_order(order, "submitted")
        self._after(cfg.ack_latency_seconds, self._ack, order, sigma=0.35)

    def _emit_order(self, order: _Order, status: str, **extra: Any) -> None:
        chain = order.chain
        self._out.append(
            OrderEvent(
                **self._envelope(chain, order.order_id),
                payload=OrderPayload(status=status, **order.common, **extra),
            )
        )

    def _close(self, order: _Order) -> None:
        order.state = "done"
        del self._open_orders[order.order_id]
        key = (order.chain.strategy_id, order.chain.symbol)
        self._open_by_key[key] -= 1

    def _ack(self, order: _Order) -> None:
        rng = self._rng
        cfg = self.config
        if rng.random() < cfg.venue_reject_rate:
            self._emit_order(order, "rejected", reject_reason=rng.choice(VENUE_REJECT_REASONS))
            self._close(order)
            return
        order.state = "working"
        self._emit_order(order, "accepted")
        if order.cancel_requested:
            self._after(0.001, self._cancel_for_breaker, order)
            order.state = "cancelling"
            return
        n = 1
        if cfg.max_fills_per_order > 1 and rng.random() < cfg.partial_fill_rate:
            n = rng.randint(2, cfg.max_fills_per_order)
        n = min(n, order.units)
        cuts = sorted(rng.sample(range(1, order.units), n - 1)) if n > 1 else []
        bounds = [0, *cuts, order.units]
        plan = [bounds[i + 1] - bounds[i] for i in range(n)]
        if rng.random() < cfg.cancel_rate:
            order.terminal = "cancelled"
        elif order.order_type == "limit" and rng.random() < cfg.expire_rate:
            order.terminal = "expired"
        if order.terminal is not None:
            plan = plan[: rng.randint(0, n - 1)]
        order.plan = plan
        if plan:
            self._after(self._fill_interval(order), self._fill, order)
        else:
            self._after(self._fill_interval(order) * 3, self._finish, order)

    def _fill_interval(self, order: _Order) -> float:
        cfg = self.config
        return cfg.limit_fill_interval_seconds if order.order_type == "limit" else cfg.fill_interval_seconds

    def _fill(self, order: _Order) -> None:
        if order.state != "working":
            return
        rng = self._rng
        cfg = self.config
        inst = order.instrument
        chain = order.chain
        now = self._now
        inst.advance(now, rng)
        units = order.plan[order.fills_done]
        buy = order.side == "buy"
        limit = order.limit_ticks
        touch = inst.ask_ticks if buy else inst.bid_ticks
        if limit is None or (touch <= limit if buy else touch >= limit):
            slip = 0
            while slip < 5 and rng.random() < cfg.slippage_tick_probability:
                slip += 1
            ticks = touch + slip if buy else max(1, touch - slip)
            if limit is not None:
                ticks = min(ticks, limit) if buy else max(ticks, limit)
            liquidity, fee_rate = "taker", self._taker_fee
        elif (inst.bid_ticks <= limit) if buy else (inst.ask_ticks >= limit):
            ticks, liquidity, fee_rate = limit, "maker", self._maker_fee  # resting at or inside the touch
        else:
            # The market moved away from the resting order: wait for it, or let the order expire.
            order.waits += 1
            if order.waits > MAX_LIMIT_WAITS:
                order.terminal = "expired"
                self._finish(order)
            else:
                self._after(self._fill_interval(order), self._fill, order)
            return
        price = inst.price(ticks)
        quantity = inst.lot * units
        fee = (quantity * price * inst.multiplier * fee_rate).quantize(CENT, rounding=ROUND_HALF_UP)
        book = self._books[chain.source]
        pos = book.apply_fill(chain.strategy_id, chain.symbol, order.side, quantity, price, fee, inst.multiplier)
        traded = inst.volume - order.volume0
        vwap_f = (inst.pv - order.pv0) / traded if traded > 0 else float(order.arrival_price)
        mid = inst.mid_price
        self._out.append(
            FillEvent(
                **self._envelope(chain, order.order_id),
                payload=FillPayload(
                    fill_id=f"fill-{self._hex()}",
                    side=order.side,
                    quantity=quantity,
                    price=price,
                    venue=inst.venue,
                    fee=fee,
                    liquidity=liquidity,
                    arrival_price=order.arrival_price,
                    bid=inst.price(inst.bid_ticks),
                    ask=inst.price(inst.ask_ticks),
                    vwap=Decimal(round(vwap_f * 10_000)) * VWAP_QUANTUM,
                ),
            )
        )
        snapshot = (
            order,
            PositionUpdatePayload(
                quantity=pos.quantity,
                avg_price=pos.avg_price.quantize(AVG_OUT_QUANTUM),
                market_price=mid,
                realized_pnl=pos.realized_pnl.quantize(PNL_QUANTUM),
                unrealized_pnl=pos.unrealized_pnl(mid).quantize(PNL_QUANTUM),
            ),
        )
        self._at(now + rng.randint(2_000, 150_000), self._position_update, snapshot)
        order.fills_done += 1
        if order.fills_done < len(order.plan):
            self._after(self._fill_interval(order), self._fill, order)
        elif order.terminal is not None:
            self._after(self._fill_interval(order) * 2, self._finish, order)
        else:
            self._close(order)

    def _position_update(self, snapshot: tuple[_Order, PositionUpdatePayload]) -> None:
        order, payload = snapshot
        chain = order.chain
        self._out.append(
            PositionUpdateEvent(
                **self._envelope(chain, order.order_id),
                payload=payload,
            )
        )

    def _finish(self, order: _Order) -> None:
        """The strategy's own cancel, or a limit order's time in force running out."""
        if order.state != "working":
            return
        self._emit_order(order, order.terminal)
        self._close(order)

    def _cancel_for_breaker(self, order: _Order) -> None:
        if order.state != "cancelling":
            return
        self._emit_order(order, "cancelled", cancel_reason="circuit breaker tripped")
        self._close(order)

    # --- circuit breakers ---------------------------------------------------------------------

    def _trip(self, strategy: str, source: str) -> None:
        rng = self._rng
        cfg = self.config
        scope = "global" if rng.random() < cfg.circuit_breaker_global_share else "strategy"
        states = self._global_state if scope == "global" else self._strategy_state
        key = source if scope == "global" else strategy
        if states[key] != ACTIVE or self._now < self._armed_at.get((scope, key), 0):
            return
        halted = rng.random() < cfg.circuit_breaker_halt_share
        trading_state = HALTED if halted else REDUCING
        states[key] = trading_state
        reason = rng.choice(HALT_REASONS if halted else REDUCE_REASONS)
        self._emit_breaker(source, strategy if scope == "strategy" else None, scope, "tripped", trading_state, reason)
        affected = {strategy} if scope == "strategy" else {s for s, src in self._strategy_source.items() if src == source}
        for order in list(self._open_orders.values()):
            if order.chain.strategy_id not in affected:
                continue
            if order.state == "pending":
                order.cancel_requested = True
            elif order.state == "working":
                order.state = "cancelling"
                self._after(0.002, self._cancel_for_breaker, order)
        low, high = cfg.circuit_breaker_reset_seconds
        self._at(self._now + 1 + int(rng.uniform(low, high) * NS), self._reset, (scope, source, strategy))

    def _reset(self, arg: tuple[str, str, str]) -> None:
        scope, source, strategy = arg
        if scope == "global":
            self._global_state[source] = ACTIVE
            key = source
        else:
            self._strategy_state[strategy] = ACTIVE
            key = strategy
        self._armed_at[(scope, key)] = self._now + int(self.config.circuit_breaker_cooldown_seconds * NS)
        self._emit_breaker(
            source, strategy if scope == "strategy" else None, scope, "reset", ACTIVE, "cooldown elapsed; limits back within bounds"
        )

    def _emit_breaker(self, source: str, strategy: str | None, scope: str, state: str, trading_state: str, reason: str) -> None:
        self._out.append(
            CircuitBreakerEvent(
                event_id=self._uuid(),
                occurred_at=self._now,
                source=source,
                strategy_id=strategy,
                payload=CircuitBreakerPayload(state=state, scope=scope, trading_state=trading_state, reason=reason),
            )
        )

    # --- periodic: account snapshots and heartbeats ---------------------------------------------

    def _account(self, source: str) -> None:
        rng = self._rng
        cfg = self.config
        now = self._now
        self._after(cfg.account_interval_seconds, self._account, source, sigma=0.002)
        book = self._books[source]
        marks = {}
        for inst in self._instrument_list:
            inst.advance(now, rng)
            marks[inst.symbol] = inst.mid_price
        gross, net = book.exposures(marks)
        gross, net = gross.quantize(CENT), net.quantize(CENT)
        cash = book.cash.quantize(CENT)
        equity = cash + net
        leverage = Decimal(repr(cfg.leverage))
        margin = (gross / leverage).quantize(CENT)
        buying_power = max(ZERO, (equity - margin) * leverage).quantize(CENT)
        self._out.append(
            AccountEvent(
                event_id=self._uuid(),
                occurred_at=now,
                source=source,
                payload=AccountPayload(
                    equity=equity,
                    cash=cash,
                    buying_power=buying_power,
                    gross_exposure=gross,
                    net_exposure=net,
                    margin_used=margin,
                ),
            )
        )

    def _heartbeat(self, arg: tuple[str, str]) -> None:
        rng = self._rng
        cfg = self.config
        source, component = arg
        self._after(cfg.heartbeat_interval_seconds, self._heartbeat, arg, sigma=0.01)
        warning = rng.random() < cfg.system_warning_rate
        latency = 0.002 * math.exp(0.4 * rng.gauss(0.0, 1.0)) * (25.0 if warning else 1.0)
        queue_depth = float(int(rng.expovariate(1.0) * (400 if warning else 12)))
        open_orders = sum(1 for o in self._open_orders.values() if o.chain.source == source)
        self._out.append(
            SystemEvent(
                event_id=self._uuid(),
                occurred_at=self._now,
                source=source,
                payload=SystemPayload(
                    component=component,
                    level="warning" if warning else "info",
                    message=f"{component} latency elevated" if warning else "heartbeat",
                    metrics={
                        "queue_depth": queue_depth,
                        "latency_seconds": round(latency, 6),
                        "open_orders": float(open_orders),
                        "uptime_seconds": round((self._now - self._start) / NS, 3),
                    },
                ),
            )
        )
