"""Silences: a person mutes the alerts matching some matchers for a stated time, and says why.

Modelled on Prometheus Alertmanager's silences. A silence is pending before ``starts_at``,
active from ``starts_at`` until ``ends_at``, and expired afterwards. Expiring one early sets
``ends_at`` to now (and, for a silence that had not started, ``starts_at`` too), so the record of
who silenced what, and why, stays.

Every silence needs its author and a comment: during an incident review, "who muted the
circuit-breaker page, and why" must have an answer. It also needs at least one matcher that
does not match the empty string, as Alertmanager requires: ``team=~".*"`` alone would silence
every alert, including ones without a team.

Pure: callers pass ``now``; nothing here reads the clock.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, WithJsonSchema, field_validator, model_validator

from tradewatch.alerting.matchers import Matcher, matches_all, parse_matcher
from tradewatch.alerting.model import Alert, UtcDatetime

SilenceState = Literal["pending", "active", "expired"]


def _to_matcher(value: Any) -> Matcher:
    if isinstance(value, Matcher):
        return value
    return parse_matcher(value)


#: A matcher in a pydantic model: accepts a Matcher or its string form, serialises as the string.
MatcherField = Annotated[
    Matcher,
    PlainValidator(_to_matcher),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "examples": ['severity="critical"']}),
]


class Silence(BaseModel):
    """One silence; build it with the model constructor or ``model_validate_json``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    matchers: tuple[MatcherField, ...]
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    created_by: str = Field(max_length=200)
    comment: str = Field(max_length=10_000)
    created_at: UtcDatetime

    @field_validator("created_by", "comment")
    @classmethod
    def _not_blank(cls, value: str, info) -> str:
        value = value.strip()
        if not value:
            what = "who is silencing (a name or email)" if info.field_name == "created_by" else "why these alerts are silenced"
            raise ValueError(f"{info.field_name} is required and must not be blank: say {what}")
        return value

    @field_validator("matchers")
    @classmethod
    def _targets_something(cls, matchers: tuple[Matcher, ...]) -> tuple[Matcher, ...]:
        if not matchers:
            raise ValueError('a silence needs at least one matcher, e.g. alertname="StaleFeed"')
        if all(matcher.matches({}) for matcher in matchers):
            written = ", ".join(str(m) for m in matchers)
            subject = f"matcher {written} matches" if len(matchers) == 1 else f"matchers {written} all match"
            raise ValueError(
                f"{subject} the empty string, so the silence would mute every alert; "
                'add at least one matcher that requires a value, e.g. strategy_id="mm-1"'
            )
        return matchers

    @model_validator(mode="after")
    def _ends_after_start(self) -> Silence:
        # Equal is allowed: it is what expiring a silence that had not started yet produces.
        if self.ends_at < self.starts_at:
            raise ValueError(
                f"ends_at {self.ends_at.isoformat()} is before starts_at {self.starts_at.isoformat()}; "
                "a silence must end after it starts"
            )
        return self

    def state(self, now: datetime) -> SilenceState:
        """pending before starts_at, active in [starts_at, ends_at), expired from ends_at on."""
        now = _aware(now)
        if now >= self.ends_at:
            return "expired"
        if now < self.starts_at:
            return "pending"
        return "active"

    def is_active(self, now: datetime) -> bool:
        return self.state(now) == "active"

    def matches(self, alert: Alert) -> bool:
        """Whether the alert's labels satisfy every matcher (whatever the silence's state)."""
        return matches_all(self.matchers, alert.labels)

    def mutes(self, alert: Alert, now: datetime) -> bool:
        """Active and matching: the alert is not notified."""
        return self.is_active(now) and self.matches(alert)

    def expire(self, now: datetime) -> Silence:
        """This silence ended at ``now``; an expired silence is returned unchanged."""
        now = _aware(now)
        state = self.state(now)
        if state == "expired":
            return self
        if state == "pending":
            return self.model_copy(update={"starts_at": now, "ends_at": now})
        return self.model_copy(update={"ends_at": now})

    def __str__(self) -> str:
        matchers = ", ".join(str(m) for m in self.matchers)
        return (f"silence {self.id} {{{matchers}}} from {self.starts_at.isoformat()} to {self.ends_at.isoformat()} "
                f"by {self.created_by}: {self.comment}")


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("naive datetime for now; pass an aware datetime (UTC)")
    return now.astimezone(timezone.utc)
