"""The compliance policy as code: what every order must satisfy, validated at load.

A ``CompliancePolicy`` is one version of the rules, loaded from YAML (``from_yaml_text``) and
validated with pydantic (unknown keys refused). Every section defaults to "off", so a policy
with only ``version``, ``effective_from`` and ``timezone`` is valid and checks nothing.

Definitions used by the sections (the rule engine applies them; this module only holds them):

- Money is a float in the account currency (USD for the simulator); quantities are in the
  instrument's units (shares, contracts, coins).
- An order's notional = quantity x price, with price = the decision price for a market order
  (the last market mid before the order when it has none) and the limit price for a limit order.
- The trading day is the calendar date of an event's time in the policy's ``timezone``.
- A position's notional = |quantity| x the last market mid (x the contract multiplier, 1 unless
  stated).

``content_hash`` = SHA-256 (hex) of the canonical JSON of the validated content: every field,
keys sorted, no whitespace, ``effective_from`` in UTC, set-like lists (check names, symbols,
decisions, strategies) sorted. It does not depend on YAML layout or key order, and changes with
any value. Reports record ``version`` and ``content_hash`` of the policy they applied.

``PolicyHistory`` keeps every version; the policy in force at time t is the one with the latest
``effective_from`` <= t. A history file is either one policy (a mapping with ``version``) or a
mapping ``policies:`` holding a list of policies, in any order.
"""

from __future__ import annotations

import hashlib
import json
import zoneinfo
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from functools import cached_property
from importlib import resources
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tradewatch.domain.events.timestamps import datetime_to_ns, ns_to_datetime
from tradewatch.domain.strict_yaml import ConfigFileError, YamlProblem, load_strict_yaml

DEFAULT_POLICY_RESOURCE = "default_policy.yaml"

LlmDecision = Literal["approve", "reject", "modify", "escalate"]
LLM_DECISIONS: tuple[str, ...] = get_args(LlmDecision)

Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")]
Money = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
NonNegativeMoney = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
PositiveQuantity = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
Seconds = Annotated[float, Field(gt=0.0, le=86_400.0, allow_inf_nan=False)]


class PolicyError(ConfigFileError):
    """The compliance policy is invalid (see ConfigFileError)."""


class NoPolicyInForce(LookupError):
    """No policy version had taken effect at the time asked about."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _sorted_names(value: object) -> object:
    """Set-like lists are kept sorted and without repeats, so order never changes the hash
    (applied after validation, so errors give the positions as written)."""
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return tuple(sorted(set(value)))
    return value


class RequiredRiskChecks(_Section):
    """Risk checks an order needs: each named check must have a passed (or approved-override)
    result on the order's signal, occurring before the order is submitted."""

    minimum_passed: int = Field(0, ge=0, le=100, description="Passed risk checks (any names) required before any order; 0 = no minimum.")
    checks: tuple[Name, ...] = Field((), description="Check names (RiskCheckPayload.check_name) required before any order.")
    per_strategy: dict[Name, tuple[Name, ...]] = Field(
        default_factory=dict, description="strategy_id -> check names; replaces `checks` for that strategy.")

    @field_validator("checks")
    @classmethod
    def _sorted_checks(cls, value: object) -> object:
        return _sorted_names(value)

    @field_validator("per_strategy")
    @classmethod
    def _sorted_per_strategy(cls, value: object) -> object:
        if isinstance(value, dict):
            return {key: _sorted_names(names) for key, names in value.items()}
        return value

    def for_strategy(self, strategy_id: str | None) -> tuple[str, ...]:
        """The check names required before an order of ``strategy_id``."""
        if strategy_id is not None and strategy_id in self.per_strategy:
            return self.per_strategy[strategy_id]
        return self.checks


class LlmReview(_Section):
    """Orders that need an LLM decision on their signal before submission."""

    strategies: Literal["*"] | tuple[Name, ...] = Field(
        (), description='Strategies whose orders need an LLM review: a list of strategy_ids, or "*" for all; [] = none.')
    min_notional: NonNegativeMoney = Field(
        0.0, description="Review needed when the order notional (account currency) is at least this; 0 = every order.")

    @field_validator("strategies", mode="before")
    @classmethod
    def _star_or_list(cls, value: object) -> object:
        if value != "*" and not isinstance(value, (list, tuple)):
            raise ValueError(f'expected "*" (every strategy) or a list of strategy_ids, got {value!r}')
        return value

    @field_validator("strategies")
    @classmethod
    def _sorted_strategy_list(cls, value: object) -> object:
        return _sorted_names(value)

    def required_for(self, strategy_id: str | None, notional: float) -> bool:
        covered = self.strategies == "*" or (strategy_id is not None and strategy_id in self.strategies)
        return covered and notional >= self.min_notional


class NotionalLimits(_Section):
    """Notional limits in account currency; None = no limit. Days are trading days (policy timezone)."""

    per_order: Money | None = Field(None, description="Largest notional of one order.")
    per_instrument_per_day: Money | None = Field(
        None, description="Largest gross (buy + sell) notional ordered in one symbol per trading day, all strategies.")
    gross_per_strategy_per_day: Money | None = Field(
        None, description="Largest gross (buy + sell) notional ordered by one strategy per trading day, all symbols.")


class PositionLimit(_Section):
    """A limit on the absolute position in one instrument; None = no limit on that measure."""

    max_quantity: PositiveQuantity | None = Field(None, description="Largest |position| in instrument units.")
    max_notional: Money | None = Field(None, description="Largest |position| x last mid, in account currency.")


class MaxPosition(_Section):
    """Position limits per instrument (per strategy's position in it)."""

    default: PositionLimit = Field(default_factory=PositionLimit, description="Limit for every symbol not in per_symbol.")
    per_symbol: dict[Name, PositionLimit] = Field(
        default_factory=dict, description="symbol -> limit; replaces `default` for that symbol.")

    def for_symbol(self, symbol: str | None) -> PositionLimit:
        if symbol is not None and symbol in self.per_symbol:
            return self.per_symbol[symbol]
        return self.default


class TradingStateRules(_Section):
    """What the engine's trading state (circuit breaker) allows."""

    halted_blocks_new_orders: bool = Field(False, description="No new order while the state is HALTED.")
    reducing_allows_only_risk_reducing: bool = Field(
        False, description="While REDUCING, only orders that reduce the absolute position.")


class OrderRate(_Section):
    """Order-rate limit per strategy (MiFID II RTS 6 art. 15 and 17 throttles)."""

    max_orders_per_second: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] | None = Field(
        None, description="Largest average orders per second of one strategy over window_seconds; None = no limit.")
    window_seconds: Seconds = Field(1.0, description="Length of the sliding window, seconds.")


class DuplicateOrders(_Section):
    """Duplicate orders (SEC 15c3-5 erroneous-order controls): same strategy, symbol, side and quantity."""

    window_seconds: Seconds | None = Field(
        None, description="Two such orders within this many seconds are duplicates; None = no check.")
    match_price: bool = Field(
        True, description="Duplicates also share the order type and price (limit price, or decision price of a "
                          "market order): two signals that happen to size alike are not one order sent twice.")


class PriceCollar(_Section):
    """Limit prices far from the market."""

    max_deviation_percent: Annotated[float, Field(gt=0.0, le=1000.0, allow_inf_nan=False)] | None = Field(
        None, description="Largest |limit price / last mid - 1| x 100 for a limit order; None = no collar.")


class RiskOverrides(_Section):
    """Overrides of failed risk checks."""

    approver_required: bool = Field(False, description="An override must name its approver.")


class AccountLimits(_Section):
    """Account-wide limits the dashboard measures its risk-limit consumption against (percent of
    each in use; Prometheus rules alert on them). No compliance rule raises issues on these: a
    breached loss or exposure limit is one condition with one owner, the dashboard's alert."""

    max_gross_exposure: Money | None = Field(None, description="Largest sum of |position notional|, account currency.")
    max_net_exposure: Money | None = Field(None, description="Largest |sum of signed position notional|, account currency.")
    max_daily_loss: Money | None = Field(None, description="Largest loss in one trading day (realized + unrealized), account currency.")
    max_drawdown: Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)] | None = Field(
        None, description="Largest drawdown of portfolio value from its peak, as a fraction (0.15 = 15%).")


class CompliancePolicy(BaseModel):
    """One version of the compliance policy (module docstring for definitions and the hash)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Name
    effective_from: datetime = Field(description="When this version takes effect; an aware time, kept in UTC.")
    timezone: str = Field("UTC", description="IANA timezone that defines the trading day.")
    required_risk_checks: RequiredRiskChecks = Field(default_factory=RequiredRiskChecks)
    llm_review: LlmReview = Field(default_factory=LlmReview)
    forbidden_llm_decisions: tuple[LlmDecision, ...] = Field((), description="LLM decisions never allowed.")
    notional_limits: NotionalLimits = Field(default_factory=NotionalLimits)
    max_position: MaxPosition = Field(default_factory=MaxPosition)
    restricted_symbols: tuple[Name, ...] = Field((), description="Symbols no order may be sent in.")
    trading_state: TradingStateRules = Field(default_factory=TradingStateRules)
    order_rate: OrderRate = Field(default_factory=OrderRate)
    duplicate_orders: DuplicateOrders = Field(default_factory=DuplicateOrders)
    price_collar: PriceCollar = Field(default_factory=PriceCollar)
    risk_overrides: RiskOverrides = Field(default_factory=RiskOverrides)
    account_limits: AccountLimits = Field(default_factory=AccountLimits)

    @field_validator("restricted_symbols", "forbidden_llm_decisions")
    @classmethod
    def _sorted_sets(cls, value: object) -> object:
        return _sorted_names(value)

    @field_validator("effective_from", mode="before")
    @classmethod
    def _aware(cls, value: object) -> object:
        if isinstance(value, datetime):
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"{value.isoformat()} has no timezone offset; "
                                 "accepted: an ISO 8601 time with an offset, e.g. 2024-01-01T00:00:00Z")
            return value.astimezone(UTC)
        if isinstance(value, date):
            raise ValueError(f"{value.isoformat()} is a date; accepted: an ISO 8601 time with an offset, "
                             f"e.g. {value.isoformat()}T00:00:00Z")
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a time; accepted: an ISO 8601 time with an offset, "
                                 "e.g. 2024-01-01T00:00:00Z") from None
            return cls._aware(parsed)
        raise ValueError(f"expected an ISO 8601 time with an offset, e.g. 2024-01-01T00:00:00Z, got {_type_name(value)}")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}; accepted: an IANA name such as "
                             "'UTC', 'America/New_York' or 'Europe/London'") from None
        return value

    # ------------------------------------------------------------------ derived

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def effective_from_ns(self) -> int:
        return datetime_to_ns(self.effective_from)

    def trading_day(self, at: datetime | int) -> date:
        """The trading day of ``at`` (aware datetime or UTC epoch nanoseconds): its date in ``timezone``."""
        return _as_datetime(at).astimezone(self.zone).date()

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False, allow_nan=False)

    @cached_property
    def content_hash(self) -> str:
        """SHA-256 hex of ``canonical_json()``."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_yaml_text(cls, text: str, source: str = "<policy>") -> CompliancePolicy:
        """Parse and validate one policy; raises ``PolicyError`` naming ``source``."""
        return cls.from_data(_load_yaml(text, source), source)

    @classmethod
    def from_data(cls, data: object, source: str = "<policy>", place: str = "") -> CompliancePolicy:
        """Validate already-parsed data; ``place`` (e.g. ``policies[1]``) prefixes each key."""
        if not isinstance(data, dict):
            got = "an empty document" if data is None else _type_name(data)
            where = f"{place}: " if place else ""
            raise PolicyError(source, [f"{where}expected a mapping with keys {', '.join(cls.model_fields)}, got {got}"])
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise PolicyError(source, [_problem(error, place) for error in exc.errors()]) from None


def default_policy() -> CompliancePolicy:
    """The policy shipped with tradewatch (``default_policy.yaml`` in this package)."""
    text = resources.files(__package__).joinpath(DEFAULT_POLICY_RESOURCE).read_text(encoding="utf-8")
    return CompliancePolicy.from_yaml_text(text, DEFAULT_POLICY_RESOURCE)


class PolicyHistory:
    """Every version of the policy, sorted by ``effective_from``; versions and effective times unique."""

    def __init__(self, policies: Iterable[CompliancePolicy], source: str = "<policies>") -> None:
        ordered = sorted(policies, key=lambda policy: policy.effective_from)
        if not ordered:
            raise PolicyError(source, ["policies: expected at least one policy"])
        problems: list[str] = []
        by_version: dict[str, CompliancePolicy] = {}
        for previous, policy in zip([None, *ordered], ordered):
            if policy.version in by_version:
                problems.append(f"version {policy.version!r} appears twice; versions must be unique")
            by_version[policy.version] = policy
            if previous is not None and previous.effective_from == policy.effective_from:
                problems.append(f"versions {previous.version!r} and {policy.version!r} both take effect at "
                                f"{_iso(policy.effective_from)}; effective_from must differ")
        if problems:
            raise PolicyError(source, problems)
        self._policies = tuple(ordered)
        self._starts = [policy.effective_from_ns for policy in ordered]
        self._by_version = by_version

    @property
    def policies(self) -> tuple[CompliancePolicy, ...]:
        """All versions, earliest first."""
        return self._policies

    @property
    def latest(self) -> CompliancePolicy:
        return self._policies[-1]

    def version(self, version: str) -> CompliancePolicy:
        """The policy with this version; KeyError naming the known versions otherwise."""
        try:
            return self._by_version[version]
        except KeyError:
            raise KeyError(f"no policy version {version!r}; known: {', '.join(self._by_version)}") from None

    def in_force(self, at: datetime | int) -> CompliancePolicy:
        """The policy applied to an event at ``at`` (aware datetime or UTC epoch nanoseconds): the
        latest with effective_from <= at. Raises ``NoPolicyInForce`` before the first version."""
        at_ns = at if isinstance(at, int) else datetime_to_ns(_as_datetime(at))
        index = bisect_right(self._starts, at_ns)
        if index == 0:
            first = self._policies[0]
            raise NoPolicyInForce(f"no compliance policy in force at {_iso(_as_datetime(at))}: the earliest, "
                                  f"version {first.version!r}, takes effect at {_iso(first.effective_from)}")
        return self._policies[index - 1]

    def __len__(self) -> int:
        return len(self._policies)

    @classmethod
    def from_yaml_text(cls, text: str, source: str = "<policies>") -> PolicyHistory:
        """One policy (a mapping with ``version``) or ``policies:`` with a list of them."""
        return cls.from_data(_load_yaml(text, source), source)

    @classmethod
    def from_data(cls, data: object, source: str = "<policies>") -> PolicyHistory:
        if isinstance(data, dict) and "policies" in data:
            extra = sorted(str(key) for key in data if key != "policies")
            if extra:
                raise PolicyError(source, [f"{key}: unknown key beside policies; accepted: policies" for key in extra])
            items = data["policies"]
            if not isinstance(items, list):
                raise PolicyError(source, [f"policies: expected a list of policies, got {_type_name(items)}"])
            problems: list[str] = []
            policies: list[CompliancePolicy] = []
            for index, item in enumerate(items):
                version = item.get("version") if isinstance(item, dict) else None
                place = f"policies[{index}]" + (f" ({version})" if isinstance(version, str) and version else "")
                try:
                    policies.append(CompliancePolicy.from_data(item, source, place))
                except PolicyError as error:
                    problems.extend(error.problems)
            if problems:
                raise PolicyError(source, problems)
            return cls(policies, source)
        return cls([CompliancePolicy.from_data(data, source)], source)


# ---------------------------------------------------------------------- helpers


def _load_yaml(text: str, source: str) -> object:
    try:
        return load_strict_yaml(text)
    except YamlProblem as problem:
        raise PolicyError(source, [str(problem)]) from None


def _problem(error: Mapping[str, Any], place: str = "") -> str:
    """One validation error as ``key: problem``, e.g. ``notional_limits.per_order: Input should
    be greater than 0 (got -5)``; unknown keys list the keys accepted there."""
    loc, kind, message = tuple(error["loc"]), error["type"], error["msg"]
    if kind == "value_error" and "error" in error.get("ctx", {}):
        message = str(error["ctx"]["error"])  # our own message, without pydantic's "Value error, "
    elif kind == "extra_forbidden":
        accepted = _model_at(CompliancePolicy, loc[:-1])
        message = "unknown key; accepted: " + (", ".join(accepted.model_fields) if accepted else "none")
    elif kind == "missing":
        message = "required"
    elif "input" in error and not isinstance(error["input"], (dict, list)):
        message = f"{message} (got {error['input']!r})"
    return ": ".join(part for part in (place, _dotted(_without_union_tags(loc)), message) if part)


def _without_union_tags(loc: Sequence[Any]) -> tuple[Any, ...]:
    # pydantic names the union member in the location (e.g. "literal['*']", "tuple[...]"): not a key.
    return tuple(part for part in loc if not (isinstance(part, str) and ("[" in part or part.startswith("function-"))))


def _model_at(model: type[BaseModel], loc: Sequence[Any]) -> type[BaseModel] | None:
    """The model whose keys apply at ``loc`` (dict keys and list indexes skipped)."""
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel) and part in current.model_fields:
            current = _inner_model(current.model_fields[part].annotation)
        elif isinstance(current, dict):
            continue
        else:
            current = _inner_model(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    """PositionLimit for ``dict[str, PositionLimit]``, ``PositionLimit | None``, ``PositionLimit``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = get_origin(annotation)
    if origin is dict:
        return _inner_model(get_args(annotation)[1])
    if origin is Union or str(origin) == "<class 'types.UnionType'>":
        for arg in get_args(annotation):
            found = _inner_model(arg)
            if found is not None:
                return found
    return None


def _dotted(loc: Sequence[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _type_name(value: object) -> str:
    if value is None:
        return "nothing"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _as_datetime(at: datetime | int) -> datetime:
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError(f"{at.isoformat()} has no timezone; pass an aware datetime or UTC epoch nanoseconds")
        return at
    return ns_to_datetime(int(at))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
