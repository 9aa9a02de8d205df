"""The audit event envelope and one typed model per event type.

Every event shares the envelope of DESIGN.md; ``event_type`` selects the payload model.
``occurred_at`` is integer nanoseconds since the epoch (see ``timestamps``).
Models are frozen: an event is a fact and never changes after it is built.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Union
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

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
from tradewatch.domain.events.types import Identifier, TimestampNs

SCHEMA_VERSION = 1


class EventBase(BaseModel):
    """The envelope. Subclasses fix ``event_type`` and the payload model.

    A subclass that needs an optional envelope key redeclares it as required (validated in
    pydantic-core, no Python per event) and says why in ``required_keys``, which the error
    message quotes to the producer.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    required_keys: ClassVar[dict[str, str]] = {}

    event_id: UUID = Field(default_factory=uuid4)
    event_type: str
    occurred_at: TimestampNs
    source: Identifier
    strategy_id: Identifier | None = None
    symbol: Identifier | None = None
    signal_id: Identifier | None = None
    order_id: Identifier | None = None
    schema_version: Literal[1] = SCHEMA_VERSION


class MarketDataEvent(EventBase):
    required_keys: ClassVar[dict[str, str]] = {"symbol": "the instrument quoted"}
    event_type: Literal["market_data"] = "market_data"
    symbol: Identifier
    payload: MarketDataPayload


class SignalEvent(EventBase):
    required_keys: ClassVar[dict[str, str]] = {
        "signal_id": "the key its risk checks, LLM decisions and orders refer to",
        "strategy_id": "the strategy that produced it",
        "symbol": "the instrument it is about",
    }
    event_type: Literal["signal"] = "signal"
    signal_id: Identifier
    strategy_id: Identifier
    symbol: Identifier
    payload: SignalPayload


class RiskCheckEvent(EventBase):
    required_keys: ClassVar[dict[str, str]] = {"signal_id": "the signal the check was run for"}
    event_type: Literal["risk_check"] = "risk_check"
    signal_id: Identifier
    payload: RiskCheckPayload


class LlmDecisionEvent(EventBase):
    required_keys: ClassVar[dict[str, str]] = {"signal_id": "the signal the decision was about"}
    event_type: Literal["llm_decision"] = "llm_decision"
    signal_id: Identifier
    payload: LlmDecisionPayload


class OrderEvent(EventBase):
    required_keys: ClassVar[dict[str, str]] = {
        "order_id": "the key shared by every status change of the order and its fills",
        "symbol": "the instrument traded",
        "strategy_id": "the strategy that sent it",
    }
    event_type: Literal["order"] = "order"
    order_id: Identifier
    symbol: Identifier
    strategy_id: Identifier
    payload: OrderPayload


class FillEvent(EventBase):
    required_keys: ClassVar[dict[str, str]] = {
        "order_id": "the order this fill executes",
        "symbol": "the instrument traded",
    }
    event_type: Literal["fill"] = "fill"
    order_id: Identifier
    symbol: Identifier
    payload: FillPayload


class PositionUpdateEvent(EventBase):
    required_keys: ClassVar[dict[str, str]] = {"symbol": "the instrument held"}
    event_type: Literal["position_update"] = "position_update"
    symbol: Identifier
    payload: PositionUpdatePayload


class AccountEvent(EventBase):
    event_type: Literal["account"] = "account"
    payload: AccountPayload


class CircuitBreakerEvent(EventBase):
    event_type: Literal["circuit_breaker"] = "circuit_breaker"
    payload: CircuitBreakerPayload

    @model_validator(mode="after")
    def _strategy_scope(self) -> "CircuitBreakerEvent":
        if self.payload.scope == "strategy" and self.strategy_id is None:
            raise ValueError("a circuit_breaker event with scope 'strategy' needs strategy_id")
        return self


class SystemEvent(EventBase):
    event_type: Literal["system"] = "system"
    payload: SystemPayload


EVENT_MODELS: tuple[type[EventBase], ...] = (
    MarketDataEvent,
    SignalEvent,
    RiskCheckEvent,
    LlmDecisionEvent,
    OrderEvent,
    FillEvent,
    PositionUpdateEvent,
    AccountEvent,
    CircuitBreakerEvent,
    SystemEvent,
)
EVENT_TYPES: tuple[str, ...] = tuple(model.model_fields["event_type"].default for model in EVENT_MODELS)
MODEL_BY_TYPE: dict[str, type[EventBase]] = dict(zip(EVENT_TYPES, EVENT_MODELS))

AuditEvent = Annotated[
    Union[
        MarketDataEvent,
        SignalEvent,
        RiskCheckEvent,
        LlmDecisionEvent,
        OrderEvent,
        FillEvent,
        PositionUpdateEvent,
        AccountEvent,
        CircuitBreakerEvent,
        SystemEvent,
    ],
    Field(discriminator="event_type"),
]
"""Any audit event, discriminated by ``event_type``."""

EVENT_ADAPTER: TypeAdapter[EventBase] = TypeAdapter(AuditEvent)
