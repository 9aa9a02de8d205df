"""Compliance issues become ``ComplianceViolation`` alerts.

Input: a ``ComplianceIssue`` (``domain.compliance.issue``) newly recorded by the compliance
monitor (``compliance.batch``/``compliance.tick``) or its re-check (``compliance.recheck``).

Labels (the alert's identity, ``model``): alertname ``ComplianceViolation``, severity (the
issue's), category ``compliance``, code, ``strategy_id`` and ``symbol`` when the issue names
them, and ``issue_key`` (``ComplianceIssue.key``). The routes group by alertname, strategy_id
and symbol, so a burst of breaches by one strategy in one symbol is one PagerDuty incident and
one Slack thread; ``issue_key`` is never a grouping label, it only makes each breach its own
alert (two orders breaching the same rule are two facts, and the same breach found again, by
the re-check or a redelivered batch, is the same alert: the router absorbs it). Order and
signal ids, event ids, the policy version and hash are annotations.

**Resolution.** A compliance breach is a fact, not a condition that clears: nothing in the
trail will ever say it has ended, and an alert left firing would re-page at every
``repeat_interval`` (hourly for critical) forever. So a breach's alert fires once, at the
issue's time (``starts_at`` = ``occurred_at``), and is resolved by the beat tick
(``compliance.tick``, ``ComplianceStore.close_alerts``) ``compliance_alert_hold_seconds``
(default 3000 s) after the issue was recorded: long enough for the on-call engineer to
acknowledge the page and read it, shorter than the critical route's one-hour repeat interval so
it is never paged twice, and the PagerDuty incident closes by itself rather than staying open.
The issue itself stays in ``compliance_issues`` (the durable record, for compliance staff); the
resolve notification says ``resolved_reason: recorded`` (not "the breach went away").
Resolving instead in the same call as the firing would drop the page entirely (the router's
flush never notifies an alert that resolved before it was sent), and Alertmanager-style
``ends_at`` expiry is not implemented by the router.
"""

from __future__ import annotations

from datetime import datetime

from tradewatch.alerting.converters.base import ANNOTATION_LIMIT, SUMMARY_LIMIT, cap
from tradewatch.alerting.model import Alert
from tradewatch.domain.compliance.issue import ISSUE_CODES, ComplianceIssue
from tradewatch.domain.events.timestamps import format_rfc3339_ns, ns_to_datetime

ALERTNAME = "ComplianceViolation"
CATEGORY = "compliance"
RUNBOOK_URL = "README.md#runbook-complianceviolation"
#: Why a compliance alert resolves (see module docstring): its issue is recorded, not cleared.
RESOLVED_REASON = "recorded"

_EVENT_IDS_SHOWN = 10
_METADATA_SHOWN = 30


def issue_labels(issue: ComplianceIssue) -> dict[str, str]:
    """The labels of ``issue``'s alert (its identity: one alert per issue key)."""
    labels = {
        "alertname": ALERTNAME,
        "severity": issue.severity,
        "category": CATEGORY,
        "code": issue.code,
        "issue_key": issue.key,
    }
    if issue.strategy_id:
        labels["strategy_id"] = issue.strategy_id
    if issue.symbol:
        labels["symbol"] = issue.symbol
    return labels


class ComplianceConverter:
    """New ``ComplianceIssue``s to firing ``ComplianceViolation`` alerts (``to_alerts``), and
    the resolve of an issue's alert once held long enough (``resolve``)."""

    source = "compliance"

    def to_alerts(self, issue: ComplianceIssue, *, now: datetime) -> list[Alert]:
        """The firing alert of ``issue``; ``now`` is unused: the issue carries its time."""
        if not isinstance(issue, ComplianceIssue):
            raise TypeError(f"{type(self).__name__} converts ComplianceIssue, not {type(issue).__name__}")
        annotations = {
            "summary": cap(issue.message or issue.code, SUMMARY_LIMIT),
            "description": cap(self.description(issue), ANNOTATION_LIMIT),
            "runbook_url": RUNBOOK_URL,
        }
        if issue.order_id:
            annotations["order_id"] = cap(issue.order_id, ANNOTATION_LIMIT)
        if issue.signal_id:
            annotations["signal_id"] = cap(issue.signal_id, ANNOTATION_LIMIT)
        if issue.event_ids:
            annotations["event_ids"] = cap(", ".join(issue.event_ids), ANNOTATION_LIMIT)
        for name in ("policy_version", "policy_hash"):
            value = issue.metadata.get(name)
            if value is not None:
                annotations[name] = cap(str(value), ANNOTATION_LIMIT)
        return [Alert(labels=issue_labels(issue), annotations=annotations, starts_at=ns_to_datetime(issue.occurred_at))]

    @staticmethod
    def resolve(issue: ComplianceIssue, *, at: datetime) -> Alert:
        """``issue``'s alert, resolved at ``at`` (at least its start)."""
        starts = ns_to_datetime(issue.occurred_at)
        return Alert(labels=issue_labels(issue), annotations={"resolved_reason": RESOLVED_REASON},
                     starts_at=starts).resolved(max(starts, at))

    @staticmethod
    def description(issue: ComplianceIssue) -> str:
        trigger = ISSUE_CODES[issue.code].trigger
        lines = [f"{issue.code} ({issue.severity}) at {format_rfc3339_ns(issue.occurred_at)}: {issue.message}",
                 f"Rule: {trigger}"]
        for name, value in (("Strategy", issue.strategy_id), ("Symbol", issue.symbol), ("Order", issue.order_id),
                            ("Signal", issue.signal_id)):
            if value:
                lines.append(f"{name}: {value}")
        version, digest = issue.metadata.get("policy_version"), issue.metadata.get("policy_hash")
        if version is not None:
            lines.append(f"Policy: {version}" + (f" (sha256 {str(digest)[:12]})" if digest else ""))
        details = sorted((k, v) for k, v in issue.metadata.items() if k not in ("policy_version", "policy_hash"))
        if details:
            lines.append("Details: " + ", ".join(f"{k}={v}" for k, v in details[:_METADATA_SHOWN]))
        if issue.event_ids:
            more = len(issue.event_ids) - _EVENT_IDS_SHOWN
            lines.append("Events: " + ", ".join(issue.event_ids[:_EVENT_IDS_SHOWN]) + (f" and {more} more" if more > 0 else ""))
        lines.append(f"Issue key: {issue.key}")
        return "\n".join(lines)


__all__ = ["ALERTNAME", "CATEGORY", "RUNBOOK_URL", "ComplianceConverter", "issue_labels"]
