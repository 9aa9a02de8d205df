"""What a group's flush sends: the pure decision, apart from Redis and the clock.

Alertmanager's rules, per group and receiver:

- A group is first looked at ``group_wait`` after its first alert (0 s for pages), then every
  ``group_interval``.
- At a look, the notification holds the group's firing alerts and the alerts resolved since
  the last notification. It is sent when an alert fires that was not notified as firing, when a
  notified alert has resolved, or when ``repeat_interval`` has passed since the last
  notification while alerts still fire. Otherwise nothing is sent: the same alert raised fifty
  times gives one notification per repeat_interval.
- Silenced and inhibited alerts are left out (and recorded as such by the caller). An alert that
  was notified as firing still gets its resolve when it resolves, even if muted since: a page
  left open in PagerDuty after the problem is gone would be a lie.
- A resolved alert that was notified leaves the group after its resolve is decided; one never
  notified leaves silently. A group with no alerts left is finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tradewatch.alerting.model import Alert, AlertStatus

FIRING, RESOLVED = AlertStatus.FIRING.value, AlertStatus.RESOLVED.value


@dataclass(frozen=True)
class FlushDecision:
    send: tuple[Alert, ...]  # empty: nothing to notify
    notified_update: dict[str, str] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    finished: bool = False  # no alert left in the group

    @property
    def notify(self) -> bool:
        return bool(self.send)


def decide_flush(
    members: dict[str, Alert],
    notified: dict[str, str],
    muted: set[str],
    *,
    seconds_since_last_notification: float | None,
    repeat_interval_seconds: float,
) -> FlushDecision:
    """``members``: fingerprint -> latest alert version; ``notified``: fingerprint -> status last
    sent; ``muted``: fingerprints silenced or inhibited now."""
    firing = {fp: a for fp, a in members.items() if a.status is AlertStatus.FIRING and fp not in muted}
    newly_resolved = {
        fp: a for fp, a in members.items()
        if a.status is AlertStatus.RESOLVED and notified.get(fp) == FIRING
    }
    new_firing = [fp for fp in firing if notified.get(fp) != FIRING]
    repeat_due = bool(firing) and (
        seconds_since_last_notification is None or seconds_since_last_notification >= repeat_interval_seconds
    )
    # Resolved alerts leave the group: notified ones with this notification, others silently.
    drop = tuple(sorted(fp for fp, a in members.items() if a.status is AlertStatus.RESOLVED))
    finished = len(drop) == len(members)
    if not (new_firing or newly_resolved or repeat_due):
        return FlushDecision(send=(), drop=drop, finished=finished)
    send = tuple(firing[fp] for fp in sorted(firing)) + tuple(newly_resolved[fp] for fp in sorted(newly_resolved))
    update = {fp: FIRING for fp in firing}
    return FlushDecision(send=send, notified_update=update, drop=drop, finished=finished)
