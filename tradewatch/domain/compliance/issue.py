"""Compliance findings: ``ComplianceIssue`` (one breach), ``ISSUE_CODES`` (what each code means)
and ``ComplianceReport`` (the issues found over a period under one policy version).

An issue's ``key`` identifies the breach for deduplication. Each code has a scope
(``IssueCode.scope``):

- ``order`` / ``signal`` codes: ``CODE|order:<order_id>`` when the issue concerns an order, else
  ``CODE|signal:<signal_id>``, else the day key below;
- ``day`` codes (limits that stay breached: daily notional, position, order rate):
  ``CODE|strategy:<strategy_id>|symbol:<symbol>|day:<YYYY-MM-DD>`` even when the breaching order
  is named, so a limit breached all afternoon is one issue, not one per order (an absent strategy
  or symbol is written ``-``; the day is ``metadata["trading_day"]`` when the rule engine sets
  it, in the policy's timezone, else the UTC date of ``occurred_at``).

Times are UTC epoch nanoseconds; ``to_dict`` adds ISO 8601 strings for people. Everything in
``to_dict`` is JSON-safe (metadata must be JSON values: str, int, float, bool, None, lists and
str-keyed mappings of those).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from tradewatch.domain.events.timestamps import format_rfc3339_ns, ns_to_datetime

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[str, ...] = get_args(Severity)
Scope = Literal["order", "signal", "day"]


@dataclass(frozen=True)
class IssueCode:
    """One issue code: its default severity and exactly what triggers it."""

    code: str
    severity: Severity
    trigger: str
    scope: Scope = "order"
    """What one issue of this code is about, for its ``key`` (module docstring)."""


def _code(code: str, severity: Severity, trigger: str, scope: Scope = "order") -> tuple[str, IssueCode]:
    return code, IssueCode(code, severity, trigger, scope)


ISSUE_CODES: dict[str, IssueCode] = dict([
    _code("ORDER_WITHOUT_RISK_CHECK", "critical",
          "An order was submitted without the passed risk checks its signal needed before it "
          "(required_risk_checks: a named check missing, or fewer than minimum_passed)."),
    _code("RISK_CHECK_FAILED_ORDER_SENT", "critical",
          "An order was submitted after a risk check on its signal failed and was not overridden."),
    _code("RISK_OVERRIDE_WITHOUT_APPROVER", "critical",
          "A failed risk check was overridden without naming an approver while "
          "risk_overrides.approver_required is true.", "signal"),
    _code("LLM_REVIEW_MISSING", "warning",
          "An order that llm_review covers (its strategy, notional at least min_notional) was submitted "
          "with no LLM decision on its signal before it."),
    _code("LLM_REJECTED_ORDER_SENT", "critical",
          "An order was submitted although the LLM decision on its signal was reject (or escalate "
          "with no approving reviewer)."),
    _code("LLM_FORBIDDEN_DECISION", "warning",
          "An LLM decision was one of the policy's forbidden_llm_decisions.", "signal"),
    _code("ORDER_NOTIONAL_LIMIT", "critical",
          "An order's notional (quantity x limit price for a limit order, x decision price for a "
          "market order, else x the last mid) exceeded notional_limits.per_order."),
    _code("DAILY_NOTIONAL_LIMIT", "critical",
          "An order took the trading day's gross notional of its symbol above "
          "notional_limits.per_instrument_per_day, or of its strategy above gross_per_strategy_per_day.", "day"),
    _code("POSITION_LIMIT", "critical",
          "A strategy's absolute position in an instrument exceeded max_position (quantity, or notional at the "
          "update's market price, else the last mid).",
          "day"),
    _code("RESTRICTED_SYMBOL", "critical",
          "An order was submitted in a symbol listed in restricted_symbols."),
    _code("TRADING_WHILE_HALTED", "critical",
          "A new order was submitted while the trading state was HALTED, or an order that increases the "
          "absolute position while it was REDUCING (as trading_state enables)."),
    _code("ORDER_RATE_LIMIT", "warning",
          "A strategy submitted more than order_rate.max_orders_per_second x window_seconds orders within "
          "window_seconds.", "day"),
    _code("DUPLICATE_ORDER", "warning",
          "An order had the same strategy, symbol, side and quantity (and order type and price, with "
          "match_price) as another submitted within duplicate_orders.window_seconds before it."),
    _code("PRICE_COLLAR", "warning",
          "A limit order's price was more than price_collar.max_deviation_percent from the last market mid."),
])


@dataclass(frozen=True)
class ComplianceIssue:
    """One breach of the policy (module docstring for ``key``). Use ``ComplianceIssue.new`` to
    take the code's default severity."""

    code: str
    severity: Severity
    message: str
    occurred_at: int
    """When the breaching event occurred, UTC epoch nanoseconds."""
    signal_id: str | None = None
    order_id: str | None = None
    strategy_id: str | None = None
    symbol: str | None = None
    event_ids: tuple[str, ...] = ()
    """The events that show the breach, in time order."""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.code not in ISSUE_CODES:
            raise ValueError(f"unknown compliance issue code {self.code!r}; accepted: {', '.join(ISSUE_CODES)}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}; accepted: {', '.join(SEVERITIES)}")
        if isinstance(self.occurred_at, bool) or not isinstance(self.occurred_at, int):
            raise ValueError(f"occurred_at must be integer UTC epoch nanoseconds, got {self.occurred_at!r}")
        object.__setattr__(self, "event_ids", tuple(self.event_ids))
        object.__setattr__(self, "metadata", _json_safe(dict(self.metadata), "metadata"))

    @classmethod
    def new(cls, code: str, message: str, occurred_at: int, *, severity: Severity | None = None,
            **fields: Any) -> ComplianceIssue:
        """An issue with ``code``'s default severity unless ``severity`` is given."""
        if code not in ISSUE_CODES:
            raise ValueError(f"unknown compliance issue code {code!r}; accepted: {', '.join(ISSUE_CODES)}")
        return cls(code=code, severity=severity or ISSUE_CODES[code].severity, message=message,
                   occurred_at=occurred_at, **fields)

    @property
    def occurred_at_iso(self) -> str:
        return format_rfc3339_ns(self.occurred_at)

    @property
    def key(self) -> str:
        if ISSUE_CODES[self.code].scope != "day":
            if self.order_id:
                return f"{self.code}|order:{self.order_id}"
            if self.signal_id:
                return f"{self.code}|signal:{self.signal_id}"
        day = self.metadata.get("trading_day")
        if not isinstance(day, str) or not day:
            day = ns_to_datetime(self.occurred_at).date().isoformat()
        return f"{self.code}|strategy:{self.strategy_id or '-'}|symbol:{self.symbol or '-'}|day:{day}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code, "severity": self.severity, "message": self.message,
            "signal_id": self.signal_id, "order_id": self.order_id, "strategy_id": self.strategy_id,
            "symbol": self.symbol, "occurred_at": self.occurred_at, "occurred_at_iso": self.occurred_at_iso,
            "event_ids": list(self.event_ids), "metadata": dict(self.metadata), "key": self.key,
        }

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> ComplianceIssue:
        """Inverse of ``to_dict`` (``occurred_at_iso`` and ``key`` are derived, so ignored)."""
        return cls(code=body["code"], severity=body["severity"], message=body["message"],
                   occurred_at=int(body["occurred_at"]), signal_id=body.get("signal_id"),
                   order_id=body.get("order_id"), strategy_id=body.get("strategy_id"), symbol=body.get("symbol"),
                   event_ids=tuple(body.get("event_ids", ())), metadata=dict(body.get("metadata") or {}))


@dataclass(frozen=True)
class ComplianceReport:
    """The issues found in [period_start, period_end) (UTC epoch ns) under one policy version.
    ``counts_by_code`` lists every code (zero included) so reports compare line by line."""

    issues: tuple[ComplianceIssue, ...]
    policy_version: str
    policy_hash: str
    events_examined: int
    period_start: int
    period_end: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "issues", tuple(self.issues))
        if self.period_end < self.period_start:
            raise ValueError(f"period_end {format_rfc3339_ns(self.period_end)} is before "
                             f"period_start {format_rfc3339_ns(self.period_start)}")
        if self.events_examined < 0:
            raise ValueError(f"events_examined must be at least 0, got {self.events_examined}")

    @property
    def counts_by_code(self) -> dict[str, int]:
        counts = Counter(issue.code for issue in self.issues)
        return {code: counts.get(code, 0) for code in ISSUE_CODES}

    @property
    def counts_by_severity(self) -> dict[str, int]:
        counts = Counter(issue.severity for issue in self.issues)
        return {severity: counts.get(severity, 0) for severity in SEVERITIES}

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy_version": self.policy_version, "policy_hash": self.policy_hash,
            "events_examined": self.events_examined,
            "period_start": self.period_start, "period_start_iso": format_rfc3339_ns(self.period_start),
            "period_end": self.period_end, "period_end_iso": format_rfc3339_ns(self.period_end),
            "issue_count": len(self.issues),
            "counts_by_code": self.counts_by_code, "counts_by_severity": self.counts_by_severity,
            "issues": [issue.to_dict() for issue in self.issues],
        }

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> ComplianceReport:
        return cls(issues=tuple(ComplianceIssue.from_dict(item) for item in body.get("issues", ())),
                   policy_version=body["policy_version"], policy_hash=body["policy_hash"],
                   events_examined=int(body["events_examined"]), period_start=int(body["period_start"]),
                   period_end=int(body["period_end"]))


def _json_safe(value: Any, where: str) -> Any:
    """``value`` as plain JSON (tuples become lists); ValueError naming the place otherwise."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value!r} is not a finite number; JSON cannot hold it")
        return value
    if isinstance(value, (list, tuple)):
        return [_json_safe(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: key {key!r} is not a string")
            out[key] = _json_safe(item, f"{where}.{key}")
        return out
    raise ValueError(f"{where}: {type(value).__name__} is not a JSON value; use str, int, float, bool, None, lists or mappings")


__all__ = ["ISSUE_CODES", "SEVERITIES", "ComplianceIssue", "ComplianceReport", "IssueCode", "Severity"]
