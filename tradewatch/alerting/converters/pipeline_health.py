"""Alerts about the health of tradewatch's own pipeline and of the engines' components.

Two inputs become ``category="pipeline"`` alerts here:

- ``system`` events from the engines (``SystemEvent``): a component reports a level and a
  message. Levels map to severities as follows, and this table is the one place that says so:

  ============  ==========================================================================
  ``critical``  ``critical``: the component cannot do its job; page.
  ``error``     ``critical``: an engine logs ``error`` when an operation failed (an order
                could not be sent, a feed dropped). For a component of a live trading engine
                that is worth a page; a component that errors routinely should say
                ``warning`` instead.
  ``warning``   ``warning``: degraded but working; goes to chat, never pages.
  ``info``,     no alert, unless the event says the component recovered (below): then the
  ``debug``     ``ComponentUnhealthy`` alerts of that component are resolved.
  ============  ==========================================================================

- ``PipelineHealthSignal``: raised by tradewatch's own tasks (ingest rejecting events, an alert
  delivery that failed, a stale snapshot), so that they page through the same router as
  everything else instead of only writing a log line.

Each alert is identified by its labels (see ``model``): the severity is one of them, so a
component firing at ``critical`` and later at ``warning`` has two alerts. A recovery therefore
resolves both severities; resolving an alert that is not firing is a no-op downstream. The
other identifying labels (source, component, strategy_id, symbol) come from the recovery event,
so it must name the same ones as the events that raised the alert.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from tradewatch.alerting.converters.base import ANNOTATION_LIMIT, SUMMARY_LIMIT, cap
from tradewatch.alerting.model import Alert, AlertStatus, LabelName, Severity, UtcDatetime
from tradewatch.domain.events.models import SystemEvent
from tradewatch.domain.events.timestamps import ns_to_datetime

ALERTNAME = "ComponentUnhealthy"
CATEGORY = "pipeline"
RUNBOOK_URL = "README.md#runbook-componentunhealthy"

SEVERITY_BY_LEVEL: dict[str, Severity] = {
    "critical": Severity.CRITICAL,
    "error": Severity.CRITICAL,
    "warning": Severity.WARNING,
}
#: Levels at which an event can only report a recovery, never a problem.
RECOVERY_LEVELS = frozenset({"info", "debug"})
#: The severities a ``system`` event can produce, all resolved by a recovery.
EVENT_SEVERITIES: tuple[Severity, ...] = (Severity.CRITICAL, Severity.WARNING)

#: Payload fields (engines may add them to a ``system`` payload) that say explicitly whether the
#: component is healthy again. When present they decide; the message is only read without them.
RECOVERY_FLAGS = ("recovered", "healthy")
_RECOVERY_WORDS = re.compile(r"\b(recovered|restored|reconnected|resumed|healthy again|back to normal)\b", re.IGNORECASE)
# "not recovered", "failed to reconnect, never restored": a negation anywhere in the message
# means it is not a clean recovery; staying firing is the safe mistake.
_NEGATION_WORDS = re.compile(r"\b(not|never|no|failed|unable|cannot|can't|won't|without)\b", re.IGNORECASE)

_METRICS_SHOWN = 50


def format_metrics(metrics: dict[str, float]) -> str:
    """``name=value`` pairs sorted by name; values with up to 10 significant digits."""
    shown = sorted(metrics.items())[:_METRICS_SHOWN]
    text = ", ".join(f"{name}={value:.10g}" for name, value in shown)
    if len(metrics) > _METRICS_SHOWN:
        text += f" and {len(metrics) - _METRICS_SHOWN} more"
    return text


def is_recovery(event: SystemEvent) -> bool:
    """Whether an ``info``/``debug`` event says its component is healthy again.

    The explicit way is a payload flag, ``"recovered": true`` or ``"healthy": true``; an engine
    that sets either to false is never read as recovering. Without a flag, a message naming a
    recovery ("feed reconnected", "database connection restored") without a negation counts.
    """
    if event.payload.level not in RECOVERY_LEVELS:
        return False
    extra = event.payload.model_extra or {}
    flags = [extra[name] for name in RECOVERY_FLAGS if name in extra]
    if flags:
        return all(flag is True for flag in flags)
    message = event.payload.message
    return bool(_RECOVERY_WORDS.search(message)) and not _NEGATION_WORDS.search(message)


class PipelineHealthSignal(BaseModel):
    """A health condition tradewatch observed about itself, e.g. ``AlertDeliveryFailed``.

    ``name`` becomes the alertname (CamelCase, like Prometheus alert names); ``labels`` add
    identifying labels (``receiver="slack"``, ``queue="audit"``) and must be the same when the
    condition is resolved, since labels are the alert's identity. ``firing=False`` resolves the
    condition at ``observed_at`` at every severity, so the caller need not remember which one
    it raised.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z0-9]*$", max_length=100)]
    observed_at: UtcDatetime
    severity: Severity = Severity.WARNING
    summary: str = Field(default="", max_length=ANNOTATION_LIMIT)
    description: str = Field(default="", max_length=ANNOTATION_LIMIT)
    labels: dict[LabelName, Annotated[str, StringConstraints(min_length=1, max_length=1000)]] = Field(default_factory=dict)
    firing: bool = True
    source: Annotated[str, StringConstraints(min_length=1, max_length=200)] = "tradewatch"
    runbook_url: str | None = None

    @field_validator("labels")
    @classmethod
    def _no_reserved_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        reserved = sorted(set(labels) & {"alertname", "severity", "category", "source"})
        if reserved:
            raise ValueError(
                f"labels {', '.join(reserved)} are set from the signal's own fields (name, severity, source); "
                "remove them from labels"
            )
        return labels


class PipelineHealthConverter:
    """``system`` events and ``PipelineHealthSignal``s to ``category="pipeline"`` alerts.

    Labels of an event's alert: alertname ``ComponentUnhealthy``, severity, category
    ``pipeline``, source (the event's source), component, and strategy_id and symbol when the
    event has them. Labels of a signal's alert: alertname (the signal's name), severity,
    category ``pipeline``, source (the signal's, ``tradewatch`` by default) and its own labels.
    """

    source = "pipeline_health"

    def to_alerts(self, item: SystemEvent | PipelineHealthSignal, *, now: datetime) -> list[Alert]:
        """The alerts ``item`` raises or resolves; ``now`` is unused: both inputs carry their time."""
        if isinstance(item, SystemEvent):
            return self._from_event(item)
        if isinstance(item, PipelineHealthSignal):
            return self._from_signal(item)
        raise TypeError(f"{type(self).__name__} converts SystemEvent and PipelineHealthSignal, not {type(item).__name__}")

    def _from_event(self, event: SystemEvent) -> list[Alert]:
        payload = event.payload
        occurred = ns_to_datetime(event.occurred_at)
        severity = SEVERITY_BY_LEVEL.get(payload.level)
        if severity is None:
            if not is_recovery(event):
                return []
            return [
                Alert(labels=event_labels(event, each), starts_at=occurred).resolved(occurred)
                for each in EVENT_SEVERITIES
            ]
        description = f"Component {payload.component} of {event.source} reported level {payload.level}: {payload.message}"
        if payload.metrics:
            description += f"\nMetrics: {format_metrics(payload.metrics)}"
        return [
            Alert(
                labels=event_labels(event, severity),
                annotations={
                    "summary": cap(payload.message.strip() or f"{payload.component} reported {payload.level}", SUMMARY_LIMIT),
                    "description": cap(description, ANNOTATION_LIMIT),
                    "runbook_url": RUNBOOK_URL,
                },
                starts_at=occurred,
            )
        ]

    def _from_signal(self, signal: PipelineHealthSignal) -> list[Alert]:
        if not signal.firing:
            return [
                Alert(labels=signal_labels(signal, each), starts_at=signal.observed_at).resolved(signal.observed_at)
                for each in Severity
            ]
        annotations = {"runbook_url": signal.runbook_url or f"README.md#runbook-{signal.name.lower()}"}
        if signal.summary:
            annotations["summary"] = cap(signal.summary, SUMMARY_LIMIT)
        if signal.description:
            annotations["description"] = signal.description
        return [
            Alert(
                labels=signal_labels(signal, signal.severity),
                annotations=annotations,
                status=AlertStatus.FIRING,
                starts_at=signal.observed_at,
            )
        ]


def event_labels(event: SystemEvent, severity: Severity) -> dict[str, str]:
    """The labels of the ``ComponentUnhealthy`` alert ``event`` raises at ``severity``."""
    labels = {
        "alertname": ALERTNAME,
        "severity": severity.value,
        "category": CATEGORY,
        "source": event.source,
        "component": event.payload.component,
    }
    if event.strategy_id is not None:
        labels["strategy_id"] = event.strategy_id
    if event.symbol is not None:
        labels["symbol"] = event.symbol
    return labels


def signal_labels(signal: PipelineHealthSignal, severity: Severity) -> dict[str, str]:
    """The labels of the alert ``signal`` raises at ``severity``."""
    return {
        **signal.labels,
        "alertname": signal.name,
        "severity": severity.value,
        "category": CATEGORY,
        "source": signal.source,
    }
