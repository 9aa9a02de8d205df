"""One line a person can read for any event (CLI tables, alert texts)."""

from __future__ import annotations

from tradewatch.domain.events.models import EventBase


def describe(event: EventBase) -> str:
    p = event.payload
    match event.event_type:
        case "market_data":
            return f"{event.symbol} bid {p.bid} ask {p.ask} last {p.last}"
        case "signal":
            return f"{event.strategy_id} {p.direction} {event.symbol} confidence {p.confidence:.2f}" + (f" by {p.model}" if p.model else "")
        case "risk_check":
            verdict = "passed" if p.passed else "FAILED"
            override = f" (override approved by {p.approver})" if p.override else ""
            return f"{p.check_name} {verdict}: value {p.value} limit {p.limit}{override}"
        case "llm_decision":
            return f"{p.model} {p.decision}" + (f": {p.rationale}" if p.rationale else "")
        case "order":
            price = f" limit {p.limit_price}" if p.limit_price is not None else ""
            reason = f" ({p.reject_reason})" if p.reject_reason else ""
            return f"{event.order_id} {p.status}: {p.side} {p.quantity} {event.symbol} {p.order_type}{price}{reason}"
        case "fill":
            return f"{p.fill_id} {p.side} {p.quantity} {event.symbol} @ {p.price} fee {p.fee}" + (f" {p.liquidity}" if p.liquidity else "")
        case "position_update":
            return f"{event.symbol} position {p.quantity} avg {p.avg_price} realized {p.realized_pnl} unrealized {p.unrealized_pnl}"
        case "account":
            return f"equity {p.equity} buying power {p.buying_power} gross {p.gross_exposure}"
        case "circuit_breaker":
            return f"{p.scope} breaker {p.state}: {p.trading_state}" + (f" ({p.reason})" if p.reason else "")
        case "system":
            return f"{p.component} {p.level}: {p.message}"
    return event.event_type
