"""The payload of each event type (DESIGN.md, "The event contract").

Payloads allow extra fields: engines may add their own and tradewatch keeps them verbatim.
Decimals may arrive as JSON numbers or strings and are serialised back as strings, so
``Decimal("101.250")`` survives a round trip exactly as written.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tradewatch.domain.events.types import (
    FiniteFloat,
    Identifier,
    Money,
    NonNegativeDecimal,
    Price,
    Probability,
    Quantity,
    Seconds,
    SignedQuantity,
    Text,
)


def _json_numbers(value: Any) -> Any:
    """Decimals inside unknown fields back to JSON numbers (float or int), recursively."""
    if isinstance(value, Decimal):  # JSON integers decode as int already; a Decimal was a float
        return float(value)
    if isinstance(value, dict):
        return {k: _json_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_numbers(v) for v in value]
    return value


class Payload(BaseModel):
    """Base of every payload. Unknown fields are kept with their JSON types (see
    ``keep_json_types``)."""

    model_config = ConfigDict(extra="allow", frozen=True)


def keep_json_types(payload: Payload) -> None:
    """The exact decoder reads every JSON number as a Decimal; for a field the model does not
    declare that would turn ``0.125`` into the string ``"0.125"`` on the way out. Put such
    values back as JSON numbers (the event's raw text keeps every digit). Called by the parser
    on the exact path only: the fast path already yields floats, and it keeps a Python call
    per event out of validation."""
    extra = payload.__pydantic_extra__
    if extra:
        for key, value in extra.items():
            if isinstance(value, Decimal | dict | list):
                extra[key] = _json_numbers(value)


class MarketDataPayload(Payload):
    bid: Price | None = None
    ask: Price | None = None
    last: Price | None = None
    volume: NonNegativeDecimal | None = None

    @model_validator(mode="after")
    def _some_price(self) -> "MarketDataPayload":
        if self.bid is None and self.ask is None and self.last is None:
            raise ValueError("market_data needs at least one of bid, ask or last")
        return self


class SignalPayload(Payload):
    direction: Literal["long", "short", "flat"]
    confidence: Probability
    horizon_seconds: Seconds | None = None
    factors: dict[str, FiniteFloat] = Field(default_factory=dict)
    model: Identifier | None = None
    generation_seconds: Seconds | None = None


class RiskCheckPayload(Payload):
    check_name: Identifier
    passed: bool
    score: FiniteFloat | None = None
    limit: Money | None = None
    value: Money | None = None
    override: bool = False
    approver: Identifier | None = None


class LlmDecisionPayload(Payload):
    model: Identifier
    decision: Literal["approve", "reject", "modify", "escalate"]
    rationale: Text | None = None
    confidence: Probability | None = None
    reviewed_by: Identifier | None = None


class OrderPayload(Payload):
    side: Literal["buy", "sell"]
    quantity: Quantity
    order_type: Literal["market", "limit"]
    status: Literal["submitted", "accepted", "rejected", "cancelled", "expired"]
    limit_price: Price | None = None
    venue: Identifier | None = None
    decision_price: Price | None = None
    reject_reason: Text | None = None

    @model_validator(mode="after")
    def _limit_needs_price(self) -> "OrderPayload":
        if self.order_type == "limit" and self.limit_price is None:
            raise ValueError("a limit order needs limit_price (a positive decimal)")
        return self


class FillPayload(Payload):
    fill_id: Identifier
    side: Literal["buy", "sell"]
    quantity: Quantity
    price: Price
    venue: Identifier | None = None
    fee: Money = Decimal(0)
    liquidity: Literal["maker", "taker"] | None = None
    arrival_price: Price | None = None
    bid: Price | None = None
    ask: Price | None = None
    vwap: Price | None = None


class PositionUpdatePayload(Payload):
    quantity: SignedQuantity
    avg_price: NonNegativeDecimal | None = None
    market_price: Price | None = None
    realized_pnl: Money | None = None
    unrealized_pnl: Money | None = None


class AccountPayload(Payload):
    equity: Money
    cash: Money | None = None
    buying_power: Money | None = None
    gross_exposure: Money | None = None
    net_exposure: Money | None = None
    margin_used: Money | None = None


class CircuitBreakerPayload(Payload):
    state: Literal["tripped", "reset"]
    scope: Literal["strategy", "global"]
    trading_state: Literal["ACTIVE", "REDUCING", "HALTED"]
    reason: Text | None = None


class SystemPayload(Payload):
    component: Identifier
    level: Literal["debug", "info", "warning", "error", "critical"]
    message: Text
    metrics: dict[str, FiniteFloat] = Field(default_factory=dict)
