"""The event contract: envelope, typed payloads, parsing with actionable errors."""

from tradewatch.domain.events.models import (
    EVENT_ADAPTER,
    EVENT_MODELS,
    EVENT_TYPES,
    MODEL_BY_TYPE,
    AccountEvent,
    AuditEvent,
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
from tradewatch.domain.events.parsing import (
    EventValidationError,
    ParsedEvent,
    Rejection,
    parse_batch,
    parse_event,
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
from tradewatch.domain.events.timestamps import format_rfc3339_ns, parse_rfc3339_ns

__all__ = [name for name in dir() if not name.startswith("_")]
