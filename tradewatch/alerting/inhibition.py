"""Inhibition: a firing alert mutes other alerts it makes redundant.

Modelled on Prometheus Alertmanager's inhibit rules. A rule says: while an alert matching
``source_matchers`` fires, alerts matching ``target_matchers`` that agree with it on every label
in ``equal`` are not notified. A halted circuit breaker, for example, mutes the warnings of the
strategy it halted: the on-call engineer gets the one page that matters.

Alertmanager's details, kept here:

- a label missing on both alerts counts as equal (both are the empty string), so a rule with
  ``equal: [strategy_id]`` lets a global alert (no strategy_id) mute other global alerts only;
- an alert never inhibits itself;
- when the target also matches the source matchers, a source that also matches the target
  matchers does not inhibit it. Without this, two alerts that both match both sides of a rule
  would mute each other and neither would be notified.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tradewatch.alerting.matchers import Matcher, matches_all
from tradewatch.alerting.model import Alert, AlertStatus


@dataclass(frozen=True)
class InhibitRule:
    """While a source fires, matching targets with the same ``equal`` labels are muted."""

    source_matchers: tuple[Matcher, ...]
    target_matchers: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()

    def inhibits(self, source: Alert, target: Alert) -> bool:
        """Whether ``source`` mutes ``target`` under this rule."""
        if source.status is not AlertStatus.FIRING:
            return False
        if source.fingerprint == target.fingerprint:
            return False
        if not matches_all(self.source_matchers, source.labels):
            return False
        if not matches_all(self.target_matchers, target.labels):
            return False
        if any(source.labels.get(name, "") != target.labels.get(name, "") for name in self.equal):
            return False
        two_sided = matches_all(self.source_matchers, target.labels) and matches_all(self.target_matchers, source.labels)
        return not two_sided

    def __str__(self) -> str:
        source = ", ".join(str(m) for m in self.source_matchers)
        target = ", ".join(str(m) for m in self.target_matchers)
        equal = f" with equal {', '.join(self.equal)}" if self.equal else ""
        return f"{{{source}}} mutes {{{target}}}{equal}"


def find_inhibitor(target: Alert, firing_alerts: Iterable[Alert],
                   rules: Iterable[InhibitRule]) -> tuple[InhibitRule, Alert] | None:
    """The first (rule, source alert) that mutes ``target``, rules in configuration order and
    alerts in the order given; None when nothing does."""
    candidates = tuple(firing_alerts)
    for rule in rules:
        for source in candidates:
            if rule.inhibits(source, target):
                return rule, source
    return None


def equal_key(rule: InhibitRule, labels: Mapping[str, str]) -> str:
    """The values of the rule's ``equal`` labels (missing = empty), as one key: a source and a
    target can only meet under the rule when their keys are the same, so sources are indexed by it."""
    return "\x1f".join(labels.get(name, "") for name in rule.equal)
