"""Alerts from Prometheus, delivered by Alertmanager's webhook (payload version "4").

Alertmanager evaluates the Prometheus alerting rules' routing and posts each notification to a
``webhook_configs`` URL as JSON. ``parse_webhook`` validates that JSON into ``WebhookPayload``
and, when anything is wrong, raises ``AlertmanagerPayloadError`` with one line per problem
naming the field path (``alerts[2].startsAt``), what was sent and what is accepted. The whole
payload is refused then: Alertmanager sends the same alerts again on its next notification,
and a refused payload is loud where a half-accepted one would hide a misconfigured rule.

``AlertmanagerConverter`` turns a valid payload into tradewatch Alerts:

- labels are kept; label names must match ``LABEL_NAME_PATTERN`` (Prometheus 3 allows any
  UTF-8 name, tradewatch does not). A label with an empty value is dropped: in Prometheus an
  empty label value is the same as no label.
- ``severity``: ``critical``, ``warning`` and ``info`` (any letter case) are kept. A missing
  severity becomes ``warning``: it reaches chat but never pages. Any other value (``page``,
  ``high``, ``P1``) also becomes ``warning`` and the original is kept in the annotation
  ``original_severity``, so the rule can be fixed without losing what it said.
- ``source`` defaults to ``prometheus`` when the rule does not set it.
- annotations are kept (values longer than 10,000 characters are cut).
- ``generatorURL`` becomes ``generator_url`` and a link to the Prometheus expression.
- a firing alert has no ``ends_at`` (Alertmanager's endsAt of a firing alert is only its
  expiry); a resolved alert carries ``ends_at`` from endsAt.

Alertmanager writes an unset time as Go's zero time, ``0001-01-01T00:00:00Z``; it is read as
unset and replaced by the ``now`` the caller passes.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StringConstraints, ValidationError, ValidationInfo, field_validator

from tradewatch.alerting.model import LABEL_NAME_PATTERN, Alert, AlertStatus, Link, Severity
from tradewatch.domain.events.timestamps import TimestampError, parse_rfc3339_ns

ACCEPTED_VERSION = "4"
DEFAULT_SOURCE = "prometheus"
DEFAULT_SEVERITY = Severity.WARNING
ANNOTATION_LIMIT = 10_000
LINK_LIMIT = 2000

_LABEL_NAME = re.compile(LABEL_NAME_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_GO_ZERO_TIME_NS = parse_rfc3339_ns("0001-01-01T00:00:00Z")
_SHOWN_LIMIT = 80

TIMESTAMP_ACCEPTED = "an RFC 3339 timestamp with a UTC offset, e.g. 2026-11-21T14:30:00.123Z (0001-01-01T00:00:00Z for unset)"
LABEL_NAME_ACCEPTED = "letters, digits and underscores, not starting with a digit"
VERSION_ACCEPTED = f'"{ACCEPTED_VERSION}", the payload version of Alertmanager\'s webhook_configs'

# What each field accepts, quoted in error messages (keyed by the JSON field name).
_ACCEPTED = {
    "version": VERSION_ACCEPTED,
    "status": '"firing" or "resolved"',
    "startsAt": TIMESTAMP_ACCEPTED,
    "endsAt": TIMESTAMP_ACCEPTED,
    "labels": "an object of label names to string values",
    "annotations": "an object of annotation names to string values",
    "groupLabels": "an object of label names to string values",
    "commonLabels": "an object of label names to string values",
    "commonAnnotations": "an object of annotation names to string values",
    "alerts": "a list of alerts",
    "truncatedAlerts": "a non-negative integer",
}
_ALERT_ACCEPTED = "an object with status, labels, annotations, startsAt, endsAt, generatorURL and fingerprint"
_OBJECT_FIELDS = frozenset({"labels", "annotations", "groupLabels", "commonLabels", "commonAnnotations"})


class AlertmanagerPayloadError(ValueError):
    """The payload is not an Alertmanager v4 webhook payload tradewatch accepts.

    ``problems`` has one line per problem, each starting with the field path.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems: tuple[str, ...] = tuple(problems)


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _SHOWN_LIMIT else text[: _SHOWN_LIMIT - 3] + "..."


def _timestamp(value: Any) -> datetime | None:
    """RFC 3339 text to an aware UTC datetime (microseconds); Go's zero time and null to None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"got {_shown(value)}; accepted: {TIMESTAMP_ACCEPTED}")
    try:
        ns = parse_rfc3339_ns(value)
    except TimestampError as exc:
        reason = str(exc).split("; expected")[0]  # the parser's own "expected" names inputs accepted elsewhere
        raise ValueError(f"got {_shown(value)}: {reason}; accepted: {TIMESTAMP_ACCEPTED}") from None
    if ns == _GO_ZERO_TIME_NS:
        return None
    return _EPOCH + timedelta(microseconds=ns // 1000)


Timestamp = Annotated[datetime | None, PlainValidator(_timestamp, json_schema_input_type=str | None)]
LabelValue = Annotated[str, StringConstraints(max_length=1000)]


def _check_names(names: Mapping[str, Any], what: str) -> None:
    bad = [name for name in names if not _LABEL_NAME.match(name) or len(name) > 100]
    if bad:
        raise ValueError(f"{what} name {', '.join(_shown(n) for n in bad)} not accepted; accepted: {LABEL_NAME_ACCEPTED} (at most 100)")


class WebhookAlert(BaseModel):
    """One alert of the payload, as Alertmanager sends it."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, LabelValue]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: Timestamp = Field(alias="startsAt")
    ends_at: Timestamp = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = ""

    @field_validator("labels")
    @classmethod
    def _label_names(cls, labels: dict[str, str]) -> dict[str, str]:
        _check_names(labels, "label")
        if not labels.get("alertname"):
            raise ValueError(f"alertname missing; every alert needs a non-empty alertname label (got labels {_shown(sorted(labels))})")
        return labels

    @field_validator("annotations")
    @classmethod
    def _annotation_names(cls, annotations: dict[str, str]) -> dict[str, str]:
        _check_names(annotations, "annotation")
        return annotations

    @field_validator("ends_at")
    @classmethod
    def _ends_after_start(cls, ends_at: datetime | None, info: ValidationInfo) -> datetime | None:
        starts_at = info.data.get("starts_at")
        # A firing alert's endsAt is its expiry, not an end; only a resolved one must be ordered.
        if info.data.get("status") == "resolved" and ends_at is not None and starts_at is not None and ends_at < starts_at:
            raise ValueError(f"{ends_at.isoformat()} is before startsAt {starts_at.isoformat()}; a resolved alert ends after it starts")
        return ends_at


class WebhookPayload(BaseModel):
    """Alertmanager's webhook payload, version "4" (fields as Alertmanager names them)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    version: Literal["4"]
    status: Literal["firing", "resolved"]
    alerts: list[WebhookAlert]
    group_key: str = Field(default="", alias="groupKey")
    truncated_alerts: int = Field(default=0, ge=0, alias="truncatedAlerts")
    receiver: str = ""
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")


def field_path(loc: tuple[str | int, ...]) -> str:
    """``("alerts", 2, "labels", "service.name")`` to ``alerts[2].labels["service.name"]``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _LABEL_NAME.match(part):
            path += f".{part}" if path else part
        else:
            path += f"[{json.dumps(part)}]"
    return path or "payload"


def _accepted(loc: tuple[str | int, ...]) -> str | None:
    """What the field at ``loc`` accepts, when there is more to say than pydantic's message."""
    if loc[:1] == ("alerts",) and len(loc) >= 2:
        if len(loc) == 2:
            return _ALERT_ACCEPTED
        field, depth = loc[2], 3
    else:
        field, depth = (loc[0] if loc else ""), 1
    if len(loc) > depth:  # a value inside labels or annotations, whose keys are free-form
        return "a string" if field in _OBJECT_FIELDS else None
    return _ACCEPTED.get(str(field))


def describe_errors(error: ValidationError) -> list[str]:
    """One line per problem: ``path: got <value>; accepted: <what>``."""
    problems = []
    for item in error.errors(include_url=False):
        where = field_path(item["loc"])
        accepted = _accepted(item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "missing":
            problems.append(f"{where}: missing; required" + (f", accepted: {accepted}" if accepted else ""))
        elif item["type"] == "value_error":
            problems.append(f"{where}: {message}")
        elif accepted:
            problems.append(f"{where}: got {_shown(item['input'])}; accepted: {accepted}")
        else:
            problems.append(f"{where}: got {_shown(item['input'])}; {message[:1].lower()}{message[1:]}")
    return problems


def parse_webhook(data: Any) -> WebhookPayload:
    """Validate decoded JSON as a v4 webhook payload, or raise ``AlertmanagerPayloadError``.

    The version is checked first and alone: the fields of another version differ, and a list
    of their differences would bury the one thing to fix.
    """
    if isinstance(data, WebhookPayload):
        return data
    if not isinstance(data, Mapping):
        raise AlertmanagerPayloadError([f"payload: got {_shown(data)}; accepted: a JSON object, Alertmanager's webhook payload"])
    if "version" not in data:
        raise AlertmanagerPayloadError([f"version: missing; accepted: {VERSION_ACCEPTED}"])
    if data["version"] != ACCEPTED_VERSION:
        raise AlertmanagerPayloadError([f"version: got {_shown(data['version'])}; accepted: {VERSION_ACCEPTED}"])
    try:
        return WebhookPayload.model_validate(data)
    except ValidationError as exc:
        raise AlertmanagerPayloadError(describe_errors(exc)) from None


def _severity(labels: dict[str, str]) -> tuple[Severity, str | None]:
    """The severity to use and, when it differs from what was sent, the original value."""
    sent = labels.get("severity")
    if sent is None:
        return DEFAULT_SEVERITY, None
    normalised = sent.strip().lower()
    if normalised in Severity.__members__.values():
        return Severity(normalised), None
    return DEFAULT_SEVERITY, sent


def _cap(text: str) -> str:
    return text if len(text) <= ANNOTATION_LIMIT else text[: ANNOTATION_LIMIT - 1] + "…"


class AlertmanagerConverter:
    """Alertmanager v4 webhook payloads to Alerts (see the module docstring for the rules)."""

    source = DEFAULT_SOURCE

    def to_alerts(self, item: WebhookPayload | Mapping[str, Any], *, now: datetime) -> list[Alert]:
        """The payload's alerts, in its order. ``item`` is a ``WebhookPayload`` or the decoded
        JSON; ``now`` stands in for unset times. Raises ``AlertmanagerPayloadError``."""
        payload = parse_webhook(item)
        alerts = []
        for index, sent in enumerate(payload.alerts):
            try:
                alerts.append(self._alert(sent, now=now))
            except ValidationError as exc:  # parse_webhook should have caught it; name the alert anyway
                raise AlertmanagerPayloadError([f"alerts[{index}]: {problem}" for problem in describe_errors(exc)]) from None
        return alerts

    def _alert(self, sent: WebhookAlert, *, now: datetime) -> Alert:
        labels = {name: value for name, value in sent.labels.items() if value != ""}
        severity, original = _severity(labels)
        labels["severity"] = severity.value
        labels.setdefault("source", DEFAULT_SOURCE)
        annotations = {name: _cap(value) for name, value in sent.annotations.items()}
        if original is not None:
            annotations["original_severity"] = _cap(original)
        if sent.status == "resolved":
            starts_at = sent.starts_at or sent.ends_at or now
            ends_at = sent.ends_at or max(now, starts_at)
            status = AlertStatus.RESOLVED
        else:
            starts_at = sent.starts_at or now
            ends_at = None
            status = AlertStatus.FIRING
        generator_url = sent.generator_url or None
        links = ()
        if generator_url and len(generator_url) <= LINK_LIMIT:
            links = (Link(href=generator_url, text="Prometheus expression"),)
        return Alert(
            labels=labels,
            annotations=annotations,
            links=links,
            status=status,
            starts_at=starts_at,
            ends_at=ends_at,
            generator_url=generator_url,
        )

