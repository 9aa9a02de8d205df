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
    """The envelope. Subclasses fix ``event_type`` and the payload model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Envelope keys a subclass insists on, with why (shown to the producer when missing).
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

    @model_validator(mode="after")
    def _required_keys(self) -> "EventBase":
        missing = [key for key in self.required_keys if getattr(self, key) is None]
        if missing:
            reasons = "; ".join(f"{key} ({self.required_keys[key]})" for key in missing)
            article = "an" if self.event_type[0] in "aeiou" else "a"
            raise ValueError(f"{article} {self.event_type} event needs {reasons}")
        return self


class MarketDataEvent(EventBase):
    required_keys: ClassVar[dict[str, str]] = {"symbol": "the instrument quoted"}
    event_type: Literal["market_data"] = "market_data"
    payload: MarketDataPayload


class SignalEvent(EventBase):
    required_keys: ClassVar[dict[str, str]] = {
        "signal_id": "the key its risk checks, LLM decisions and orders refer to",
        "strategy_id": "the strategy that produced it",
        "symbol": "the instrument it is about",
    }
    event_type: Literal["signal"] = "signal"
    payload: SignalPayload


class RiskCheckEvent(EventBase):
    required_keys: ClassVar[dict[str, str]] = {"signal_id": "the signal the check was run for"}
    event_type: Literal["risk_check"] = "risk_check"
    payload: RiskCheckPayload


class LlmDecisionEvent(EventBase):
    required_keys: ClassVar[dict[str, str]] = {"signal_id": "the signal the decision was about"}
    event_type: Literal["llm_decision"] = "llm_decision"
    payload: LlmDecisionPayload


class OrderEvent(EventBase):
    required_keys: ClassVar[dict[str, str]] = {
        "order_id": "the key shared by every status change of the order and its fills",
        "symbol": "the instrument traded",
        "strategy_id": "the strategy that sent it",
    }
    event_type: Literal["order"] = "order"
    payload: OrderPayload


class FillEvent(EventBase):
    required_keys: ClassVar[dict[str, str]] = {
        "order_id": "the order this fill executes",
        "symbol": "the instrument traded",
    }
    event_type: Literal["fill"] = "fill"
    payload: FillPayload


class PositionUpdateEvent(EventBase):
    required_keys: ClassVar[dict[str, str]] = {"symbol": "the instrument held"}
    event_type: Literal["position_update"] = "position_update"
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
