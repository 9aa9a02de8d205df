"""Anomalies found by the detection pipeline become ``TradingAnomaly`` alerts.

Inputs (``domain.detection``): an ``Anomaly`` the pipeline opened or escalated, and a
``Resolution`` (an open anomaly that ended).

Labels, the alert's identity (``model``: same labels, same alert): alertname ``TradingAnomaly``,
severity, category ``anomaly``, detector, anomaly_type, metric and one label naming the entity,
``<entity_kind>=<entity>`` (``symbol``, ``strategy_id``, ``source`` or ``model``). These are
exactly the fields of ``Anomaly.key`` plus the severity, so one open anomaly is one alert, and
anomalies of several detectors on one symbol are grouped by the route's ``group_by``. The other
fields (the triggering event's symbol or strategy when the entity is something else, the
values, the context) are annotations: they may differ between findings of one anomaly.

- An opened anomaly fires at its severity, starting at its first finding (``detected_at_ns``).
- An escalated anomaly fires at its new severity, and the alerts of the lower severities are
  resolved at the same moment (the severity is a label, so each severity is its own alert;
  resolving one that never fired is a no-op in the router).
- A resolution resolves the anomaly's alert at every severity, ending at ``resolved_at_ns``.

Times are event times, never the wall clock: the router orders versions of an alert by them
(starts_at of a firing, ends_at of a resolve), so a late resolve never closes a newer episode.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Mapping

from tradewatch.alerting.converters.base import ANNOTATION_LIMIT, SUMMARY_LIMIT, cap
from tradewatch.alerting.model import Alert
from tradewatch.domain.detection.anomaly import SEVERITIES, Anomaly
from tradewatch.domain.detection.pipeline import Resolution
from tradewatch.domain.events.timestamps import format_rfc3339_ns, ns_to_datetime

ALERTNAME = "TradingAnomaly"
CATEGORY = "anomaly"
RUNBOOK_URL = "README.md#runbook-tradinganomaly"
#: The entity kinds an anomaly can be about; each is the name of the label carrying the entity.
ENTITY_LABELS = ("symbol", "strategy_id", "source", "model")

_EVENT_IDS_SHOWN = 10
_CONTEXT_SHOWN = 30

#: How the summary names a detector kind's score (``anomaly``: each detector's own unit).
SCORE_NAMES: dict[str, str] = {
    "zscore": "z",
    "robust_zscore": "robust z",
    "iqr": "IQRs beyond the quartile",
    "ewma": "EWMA chart sigmas",
    "slippage_spike": "threshold multiples",
    "latency_excursion": "threshold multiples",
    "loss_streak": "limit multiples",
    "rejection_spike": "threshold multiples",
    "stale_feed": "threshold multiples",
    "clock_skew": "tolerance multiples",
    "model": "threshold multiples",
}


def format_number(value: float) -> str:
    """Three significant digits, whole numbers from 1000 up (``42.1``, ``0.00123``, ``12,345``)."""
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def format_value(metric: str, value: float) -> str:
    """``value`` with the unit its metric's name declares (``metrics``: _bps, _seconds, _usd,
    _per_minute; rates are fractions, shown as percentages)."""
    if metric.endswith("_bps"):
        return f"{format_number(value)} bps"
    if metric.endswith("_seconds"):
        return f"{format_number(value)} s"
    if metric.endswith("_usd"):
        return f"{format_number(value)} USD"
    if metric.endswith("_per_minute"):
        return f"{format_number(value)} per minute"
    if metric.endswith("_rate"):
        return f"{format_number(value * 100)}%"
    return format_number(value)


def anomaly_labels(anomaly: Anomaly, severity: str) -> dict[str, str]:
    """The labels of ``anomaly``'s alert at ``severity``."""
    entity_label = anomaly.entity_kind if anomaly.entity_kind in ENTITY_LABELS else "entity"
    return {
        "alertname": ALERTNAME,
        "severity": severity,
        "category": CATEGORY,
        "detector": anomaly.detector,
        "anomaly_type": anomaly.anomaly_type,
        "metric": anomaly.metric,
        entity_label: anomaly.entity,
    }


class AnomalyConverter:
    """Opened and escalated ``Anomaly``s and ``Resolution``s to ``TradingAnomaly`` alerts.

    ``detector_kinds`` (detector name -> kind, from the pipeline configuration) lets the summary
    name the score's unit ("robust z 9.8"); without it the summary says "score 9.8".
    """

    source = "anomaly"

    def __init__(self, detector_kinds: Mapping[str, str] | None = None) -> None:
        self.detector_kinds = dict(detector_kinds or {})

    def to_alerts(self, item: Anomaly | Resolution, *, now: datetime) -> list[Alert]:
        """The alerts ``item`` raises and resolves; ``now`` is unused: anomalies carry their times."""
        if isinstance(item, Anomaly):
            return self._firing(item)
        if isinstance(item, Resolution):
            return self._resolved(item)
        raise TypeError(f"{type(self).__name__} converts Anomaly and Resolution, not {type(item).__name__}")

    def _firing(self, anomaly: Anomaly) -> list[Alert]:
        starts = ns_to_datetime(anomaly.detected_at_ns)
        fired = Alert(
            labels=anomaly_labels(anomaly, anomaly.severity),
            annotations={
                "summary": cap(self.summary(anomaly), SUMMARY_LIMIT),
                "description": cap(self.description(anomaly), ANNOTATION_LIMIT),
                "runbook_url": RUNBOOK_URL,
            },
            starts_at=starts,
        )
        lower = SEVERITIES[: SEVERITIES.index(anomaly.severity)]
        return [fired] + [Alert(labels=anomaly_labels(anomaly, each), starts_at=starts).resolved(starts) for each in lower]

    @staticmethod
    def _resolved(resolution: Resolution) -> list[Alert]:
        anomaly = resolution.anomaly
        starts = ns_to_datetime(anomaly.detected_at_ns)
        ends = max(starts, ns_to_datetime(resolution.resolved_at_ns))
        annotations = {"resolved_reason": resolution.reason}
        return [
            Alert(labels=anomaly_labels(anomaly, each), annotations=annotations, starts_at=starts).resolved(ends)
            for each in SEVERITIES
        ]

    def summary(self, anomaly: Anomaly) -> str:
        """E.g. ``slippage_bps on AAPL 42.1 bps against a baseline of 3.2 (robust z 9.8)``."""
        if anomaly.anomaly_type == "model_unusable":
            reason = anomaly.context.get("reason") or "no usable model"
            return f"model {anomaly.entity} is not used: {reason}"
        text = f"{anomaly.metric} on {anomaly.entity}"
        if math.isfinite(anomaly.observed):
            text += f" {format_value(anomaly.metric, anomaly.observed)}"
        if math.isfinite(anomaly.baseline):
            text += f" against a baseline of {format_value(anomaly.metric, anomaly.baseline)}"
        if math.isfinite(anomaly.score):
            kind = self.detector_kinds.get(anomaly.detector)
            text += f" ({SCORE_NAMES.get(kind, 'score')} {format_number(anomaly.score)})"
        return text

    def description(self, anomaly: Anomaly) -> str:
        kind = self.detector_kinds.get(anomaly.detector)
        lines = [
            f"Detector {anomaly.detector}{f' ({kind})' if kind else ''} found a {anomaly.anomaly_type.replace('_', ' ')} "
            f"in {anomaly.metric} of {anomaly.entity_kind} {anomaly.entity} at {format_rfc3339_ns(anomaly.detected_at_ns)}.",
            f"Severity: {anomaly.severity}",
        ]
        for name, value in (("Observed", anomaly.observed), ("Baseline", anomaly.baseline)):
            if math.isfinite(value):
                lines.append(f"{name}: {format_value(anomaly.metric, value)}")
        if math.isfinite(anomaly.score):
            lines.append(f"Score: {format_number(anomaly.score)} ({SCORE_NAMES.get(kind, 'in the detector unit')})")
        if anomaly.symbol is not None and anomaly.entity_kind != "symbol":
            lines.append(f"Symbol: {anomaly.symbol}")
        if anomaly.strategy_id is not None and anomaly.entity_kind != "strategy_id":
            lines.append(f"Strategy: {anomaly.strategy_id}")
        if anomaly.context:
            shown = sorted(anomaly.context.items())[:_CONTEXT_SHOWN]
            lines.append("Context: " + ", ".join(f"{name}={_shown(value)}" for name, value in shown))
        if anomaly.event_ids:
            ids = ", ".join(anomaly.event_ids[:_EVENT_IDS_SHOWN])
            more = len(anomaly.event_ids) - _EVENT_IDS_SHOWN
            lines.append(f"Events: {ids}" + (f" and {more} more" if more > 0 else ""))
        return "\n".join(lines)


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return format_number(value)
    return str(value)
