"""Configuration of the synthetic trading engine: instruments, strategies, rates, probabilities.

Every probability is validated to lie in [0, 1], every (low, high) range to be ordered, and
names to be non-empty and unique, so a bad ``tradewatch simulate`` option fails with a message
naming the field and what is accepted instead of producing nonsense events.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

Name = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
PositiveFloat = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
PositiveDecimal = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
SecondsRange = tuple[
    Annotated[float, Field(ge=0.0, allow_inf_nan=False)],
    Annotated[float, Field(ge=0.0, allow_inf_nan=False)],
]


class SymbolConfig(BaseModel):
    """One instrument: its starting price, price grid, quantity grid and market behaviour.

    ``multiplier`` scales notional and PnL (contract size). It is 1 by default for every
    instrument, so ``quantity * price`` is the notional as tradewatch's analytics compute it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: Name
    start_price: PositiveFloat
    tick_size: PositiveDecimal = Decimal("0.01")
    lot_size: PositiveDecimal = Decimal("1")
    """Quantity increment: 1 for shares and contracts, fractional (e.g. 0.0001) for crypto."""
    annual_volatility: Annotated[float, Field(ge=0.0, le=5.0, allow_inf_nan=False)] = 0.3
    trading_seconds_per_year: PositiveFloat = 252 * 6.5 * 3600
    spread_ticks: Annotated[int, Field(ge=1, le=10_000)] = 1
    """Typical bid/ask spread in ticks (occasionally wider)."""
    quote_size_lots: Annotated[int, Field(ge=1)] = 100
    """Typical traded size of one market data update, in lots."""
    venue: Name = "XNAS"
    multiplier: PositiveDecimal = Decimal("1")

    @model_validator(mode="after")
    def _price_on_grid(self) -> "SymbolConfig":
        if self.start_price < 10 * float(self.tick_size):
            raise ValueError(
                f"symbols[{self.symbol}].start_price {self.start_price} is under 10 ticks of {self.tick_size}; "
                "use a start price of at least 10 ticks"
            )
        return self

    @property
    def volatility_per_sqrt_second(self) -> float:
        return self.annual_volatility / math.sqrt(self.trading_seconds_per_year)


DEFAULT_SYMBOLS: tuple[SymbolConfig, ...] = (
    SymbolConfig(symbol="AAPL", start_price=189.5, annual_volatility=0.25, venue="XNAS"),
    SymbolConfig(symbol="MSFT", start_price=415.2, annual_volatility=0.22, venue="XNAS"),
    SymbolConfig(symbol="NVDA", start_price=875.3, annual_volatility=0.45, spread_ticks=2, venue="XNAS"),
    SymbolConfig(
        symbol="ES-FUT", start_price=5210.25, tick_size=Decimal("0.25"), annual_volatility=0.15,
        quote_size_lots=10, venue="XCME",
    ),
    SymbolConfig(
        symbol="BTC-USD", start_price=64250.0, lot_size=Decimal("0.0001"), annual_volatility=0.6,
        trading_seconds_per_year=365 * 86400, spread_ticks=50, quote_size_lots=2500, venue="COINBASE",
    ),
)

DEFAULT_COMPONENTS: tuple[str, ...] = ("market-data-feed", "strategy-runner", "risk-engine", "llm-gateway", "order-router")


class SimulationConfig(BaseModel):
    """Everything the simulator draws from. Rates are per second of simulated time.

    ``events_per_second`` is the target total event rate; ``market_data_share`` of it is market
    data, the periodic account and heartbeat events take their fixed share, and signals arrive
    at the rate that makes their chains (risk checks, LLM decision, orders, fills, position
    updates) fill the rest. The mix is therefore right on average, not event by event.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 0
    events_per_second: PositiveFloat = 200.0
    market_data_share: Annotated[float, Field(ge=0.0, le=0.99, allow_inf_nan=False)] = 0.65

    symbols: tuple[SymbolConfig, ...] = DEFAULT_SYMBOLS
    strategies: tuple[Name, ...] = ("momentum", "mean_reversion", "stat_arb")
    sources: tuple[Name, ...] = ("engine-1",)
    """Emitting engines; strategies and symbols are spread over them round-robin."""
    components: tuple[Name, ...] = DEFAULT_COMPONENTS
    signal_models: tuple[Name, ...] = ("gbm-factor-v3", "lstm-alpha-v2", "linear-ensemble-v5")
    llm_models: tuple[Name, ...] = ("claude-3-5-sonnet", "gpt-4o")
    approvers: tuple[Name, ...] = ("risk-desk:a.chen", "risk-desk:m.okafor", "head-of-trading:j.ruiz")

    # Risk checks.
    risk_checks_per_signal: tuple[Annotated[int, Field(ge=1, le=5)], Annotated[int, Field(ge=1, le=5)]] = (1, 3)
    """(fewest, most) checks per signal, each a different one of the five check kinds."""
    risk_check_failure_rate: Probability = 0.03
    risk_override_rate: Probability = 0.1
    """Share of failed risk checks that an approver overrides (the order may then go ahead)."""
    max_position_notional_usd: PositiveFloat = 1_000_000.0
    max_order_notional_usd: PositiveFloat = 250_000.0
    max_drawdown_usd: PositiveFloat = 250_000.0

    # LLM review.
    llm_reject_rate: Probability = 0.05
    llm_modify_rate: Probability = 0.03
    llm_escalate_rate: Probability = 0.01

    # Orders and fills.
    order_notional_usd: PositiveFloat = 50_000.0
    limit_order_share: Probability = 0.4
    venue_reject_rate: Probability = 0.02
    cancel_rate: Probability = 0.03
    """Share of accepted orders cancelled by the strategy (after some, possibly no, fills)."""
    expire_rate: Probability = 0.05
    """Share of accepted limit orders that expire (after some, possibly no, fills)."""
    partial_fill_rate: Probability = 0.35
    """Share of orders executed in several fills rather than one."""
    max_fills_per_order: Annotated[int, Field(ge=1, le=50)] = 4
    slippage_tick_probability: Probability = 0.2
    """Chance that a taker fill walks one (more) tick beyond the touch."""
    taker_fee_bps: Annotated[float, Field(ge=0.0, le=100.0)] = 0.5
    maker_fee_bps: Annotated[float, Field(ge=0.0, le=100.0)] = 0.1

    # Latencies (medians, seconds; lognormal around them).
    signal_generation_seconds: PositiveFloat = 0.004
    llm_latency_seconds: PositiveFloat = 0.8
    ack_latency_seconds: PositiveFloat = 0.003
    fill_interval_seconds: PositiveFloat = 0.02
    limit_fill_interval_seconds: PositiveFloat = 0.4

    # Circuit breakers.
    circuit_breaker_trip_probability: Probability = 0.002
    """Chance, per signal, that a circuit breaker trips."""
    circuit_breaker_global_share: Probability = 0.2
    circuit_breaker_halt_share: Probability = 0.6
    """Share of trips that halt trading (the rest only allow reducing positions)."""
    circuit_breaker_reset_seconds: SecondsRange = (10.0, 60.0)
    """(shortest, longest) time from a trip to its reset."""
    circuit_breaker_cooldown_seconds: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 300.0
    """After a reset, the same breaker (a strategy's, or an engine's global one) cannot trip again
    for this long, so at high signal rates trading is not halted all the time."""
    duplicate_guard_seconds: Annotated[float, Field(ge=0.0, le=3600.0, allow_inf_nan=False)] = 2.0
    """The engine's duplicate-order control: an order of a strategy with the same symbol, side,
    type, price and quantity as one it sent within this many seconds is resized by one lot."""

    # Periodic events.
    account_interval_seconds: PositiveFloat = 1.0
    heartbeat_interval_seconds: PositiveFloat = 5.0
    system_warning_rate: Probability = 0.01
    initial_cash_usd: PositiveFloat = 10_000_000.0
    leverage: Annotated[float, Field(ge=1.0, le=100.0)] = 4.0

    @field_validator("symbols", "strategies", "sources", "components", "signal_models", "llm_models", "approvers")
    @classmethod
    def _non_empty_unique(cls, value: tuple, info) -> tuple:
        if not value:
            raise ValueError(f"{info.field_name} is empty; give at least one")
        names = [v.symbol if isinstance(v, SymbolConfig) else v for v in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"{info.field_name} has duplicates {duplicates}; names must be unique")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "SimulationConfig":
        low, high = self.risk_checks_per_signal
        if low > high:
            raise ValueError(f"risk_checks_per_signal ({low}, {high}): the minimum is above the maximum")
        low_s, high_s = self.circuit_breaker_reset_seconds
        if low_s > high_s:
            raise ValueError(f"circuit_breaker_reset_seconds ({low_s}, {high_s}): the minimum is above the maximum")
        llm = self.llm_reject_rate + self.llm_modify_rate + self.llm_escalate_rate
        if llm > 1.0:
            raise ValueError(
                f"llm_reject_rate + llm_modify_rate + llm_escalate_rate is {llm:.4f}; together they must be at most 1"
            )
        return self

    # --- derived rates -------------------------------------------------------------------

    def periodic_events_per_second(self) -> float:
        """Account snapshots and component heartbeats, per second, over all sources."""
        per_source = 1.0 / self.account_interval_seconds + len(self.components) / self.heartbeat_interval_seconds
        return len(self.sources) * per_source

    def expected_events_per_signal(self, signals_per_second: float = 0.0) -> float:
        """Mean number of events one signal's chain produces at the given total signal rate.

        The rate matters through the circuit breakers: the more signals, the more trips, and a
        tripped strategy sends fewer orders (none when HALTED, only reducing ones when REDUCING).
        """
        low, high = self.risk_checks_per_signal
        checks = (low + high) / 2.0
        pass_one = 1.0 - self.risk_check_failure_rate * (1.0 - self.risk_override_rate)
        pass_all = sum(pass_one**k for k in range(low, high + 1)) / (high - low + 1)
        llm_ok = 1.0 - self.llm_reject_rate - self.llm_escalate_rate
        p_order = pass_all * llm_ok * (1.0 - self._blocked_share(signals_per_second))
        fills = self._expected_fills_when_accepted()
        terminal = self.cancel_rate + (1 - self.cancel_rate) * self.limit_order_share * self.expire_rate
        per_order = 2.0 + (1.0 - self.venue_reject_rate) * (2.0 * fills + terminal)
        return 1.0 + checks + 1.0 + p_order * per_order

    def _blocked_share(self, signals_per_second: float) -> float:
        """Share of signals whose order a tripped circuit breaker suppresses (renewal estimate).

        Each breaker cycles: armed (trips after on average 1/rate), tripped (the reset delay),
        cooling down (no trip possible). The share of time tripped is tripped / cycle.
        """
        if signals_per_second <= 0 or self.circuit_breaker_trip_probability <= 0:
            return 0.0
        p, g = self.circuit_breaker_trip_probability, self.circuit_breaker_global_share
        low, high = self.circuit_breaker_reset_seconds
        duration = (low + high) / 2.0
        cooldown = self.circuit_breaker_cooldown_seconds

        def tripped_share(trips_per_second: float) -> float:
            if trips_per_second <= 0:
                return 0.0
            return duration / (1.0 / trips_per_second + duration + cooldown)

        own = tripped_share(p * (1.0 - g) * signals_per_second / len(self.strategies))
        engine = tripped_share(p * g * signals_per_second / len(self.sources))
        tripped = 1.0 - (1.0 - own) * (1.0 - engine)
        # HALTED stops every order; REDUCING lets through about a third (those that reduce a
        # position with no other order open), measured on the default configuration.
        return tripped * (self.circuit_breaker_halt_share + 0.65 * (1.0 - self.circuit_breaker_halt_share))

    def _expected_fills_when_accepted(self) -> float:
        n_max = self.max_fills_per_order
        mean_n = 1.0 if n_max == 1 else (1 - self.partial_fill_rate) + self.partial_fill_rate * (2 + n_max) / 2.0
        # A cancelled or expired order stops after a uniform 0..n-1 of its n planned fills.
        stop = self.cancel_rate + (1 - self.cancel_rate) * self.limit_order_share * self.expire_rate
        return (1 - stop) * mean_n + stop * (mean_n - 1) / 2.0

    def market_data_events_per_second(self) -> float:
        return self.events_per_second * self.market_data_share

    def signals_per_second(self) -> float:
        """Signal rate over all strategies that fills the non-market-data budget."""
        budget = self.events_per_second * (1.0 - self.market_data_share)
        # At very low rates the periodic events alone exceed the budget; keep some trading anyway.
        chains = max(budget - self.periodic_events_per_second(), 0.1 * budget)
        rate = chains / self.expected_events_per_signal()
        for _ in range(30):  # fixed point: more signals -> more trips -> shorter chains
            rate = chains / self.expected_events_per_signal(rate)
        return rate
