"""The router: alerts in, notifications decided once however many workers run.

``receive`` records each alert (a version older than the stored one is ignored), puts it in the
group of every route it matches, and flushes the groups that are due now (a page with
group_wait 0 s goes out in the same task). ``tick`` runs from beat every second: it flushes the
groups whose group_wait, group_interval or repeat_interval has come, and sends again the
notifications decided but never handed to a delivery task (a worker killed in between).

A flush holds the group's lock, reads the group, decides (``flush.decide_flush``) and commits
the decision and the notification in one Redis transaction before a delivery task is enqueued
for it; a second worker flushing the same group waits its turn and finds nothing new to send.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Sequence

from tradewatch.alerting.config import AlertingConfig
from tradewatch.alerting.flush import decide_flush
from tradewatch.alerting.inhibition import equal_key
from tradewatch.alerting.matchers import matches_all
from tradewatch.alerting.model import Alert, AlertStatus
from tradewatch.alerting.notification import Notification, dedup_key_of
from tradewatch.alerting.routing import group_key, group_labels
from tradewatch.alerting.state import AlertState, GroupMeta

#: An outbox entry untouched for this long was never handed to a delivery task, or that task
#: died for good: hand it over again (delivery is idempotent per notification id).
OUTBOX_STALE_SECONDS = 120.0


@dataclass
class FlushReport:
    notifications: list[str] = field(default_factory=list)
    silenced: int = 0
    inhibited: int = 0
    busy: int = 0  # groups another worker was flushing


class Dispatcher:
    def __init__(
        self,
        config: AlertingConfig,
        state: AlertState,
        enqueue_delivery: Callable[[str], None],
    ) -> None:
        self.config = config
        self.state = state
        self.enqueue_delivery = enqueue_delivery

    # ----------------------------------------------------------------- intake

    def receive(self, alerts: Sequence[Alert], now: datetime) -> FlushReport:
        t = now.timestamp()
        touched: set[str] = set()
        for alert in alerts:
            if not self.state.put_alert(alert):
                continue  # an older version than the one stored, or a resolve of an unknown alert
            self._index_inhibition_source(alert)
            for meta in self.groups_of(alert):
                if alert.status is AlertStatus.FIRING:
                    self.state.add_to_group(meta, alert.fingerprint, t)
                touched.add(meta.gid)
        return self.flush_due(now, among=touched)

    def _index_inhibition_source(self, alert: Alert) -> None:
        # Sources are indexed by rule and by the values of the rule's equal labels, so checking
        # an alert against them costs one set read per rule, not a scan of every firing alert.
        for index, rule in enumerate(self.config.inhibit_rules):
            if matches_all(rule.source_matchers, alert.labels):
                self.state.index_source(index, equal_key(rule, alert.labels), alert.fingerprint,
                                        alert.status is AlertStatus.FIRING)

    def _inhibitor(self, alert: Alert) -> Alert | None:
        for index, rule in enumerate(self.config.inhibit_rules):
            if not matches_all(rule.target_matchers, alert.labels):
                continue
            candidates = [fp for fp in self.state.sources(index, equal_key(rule, alert.labels)) if fp != alert.fingerprint]
            for source in self.state.alerts(candidates).values():
                if rule.inhibits(source, alert):
                    return source
        return None

    def groups_of(self, alert: Alert) -> list[GroupMeta]:
        metas = []
        for match in self.config.route.match(alert.labels):
            key = group_key(match, alert.labels)
            metas.append(GroupMeta(
                gid=dedup_key_of(key),
                receiver=match.receiver,
                group_key=key,
                group_labels=group_labels(match, alert.labels),
                route_path=match.route.path,
                group_wait_seconds=match.group_wait.total_seconds(),
                group_interval_seconds=match.group_interval.total_seconds(),
                repeat_interval_seconds=match.repeat_interval.total_seconds(),
                last_notified_at=None,
            ))
        return metas

    # ----------------------------------------------------------------- flushes

    def tick(self, now: datetime) -> FlushReport:
        report = self.flush_due(now)
        for notification_id in self.state.stale_outbox(now.timestamp() - OUTBOX_STALE_SECONDS):
            self.state.touch_outbox(notification_id, now.timestamp())
            self.enqueue_delivery(notification_id)
            self.state.count("outbox_resent_total")
        return report

    def flush_due(self, now: datetime, among: set[str] | None = None) -> FlushReport:
        report = FlushReport()
        if among is not None and not among:
            return report
        t = now.timestamp()
        due = [gid for gid in among if self.state.is_due(gid, t)] if among is not None else self.state.due_groups(t)
        if not due:
            return report
        silences = [s for s in self.state.silences() if s.is_active(now)]
        for gid in due:
            self._flush(gid, now, silences, report)
        return report

    def _flush(self, gid: str, now: datetime, silences, report: FlushReport) -> None:
        t = now.timestamp()
        with self.state.lock_group(gid) as lock:
            if not lock.acquired:
                report.busy += 1
                return
            if not self.state.is_due(gid, t):
                return  # flushed by another worker since we looked
            meta = self.state.group(gid)
            if meta is None:
                self.state.commit_flush(_orphan(gid), notification=None, notified_update={}, drop=(), next_due=None, now=t)
                return
            fingerprints = self.state.group_members(gid)
            members = self.state.alerts(fingerprints)
            muted = self._muted(members, silences, now, report)
            decision = decide_flush(
                members, self.state.notified(gid), muted,
                seconds_since_last_notification=None if meta.last_notified_at is None else t - meta.last_notified_at,
                repeat_interval_seconds=meta.repeat_interval_seconds,
            )
            notification = None
            if decision.notify:
                notification = Notification(
                    notification_id=str(uuid.uuid4()), receiver=meta.receiver, group_key=meta.group_key,
                    group_labels=meta.group_labels, alerts=decision.send,
                )
            gone = [fp for fp in fingerprints if fp not in members]  # expired versions
            drop = sorted(set(decision.drop) | set(gone))
            finished = len(drop) == len(fingerprints)
            self.state.commit_flush(
                meta, notification=notification, notified_update=decision.notified_update, drop=drop,
                next_due=None if finished else t + meta.group_interval_seconds, now=t,
            )
        if notification is not None:
            self.state.count(f"notifications_total:{meta.receiver}")
            self.enqueue_delivery(notification.notification_id)
            report.notifications.append(notification.notification_id)

    def _muted(self, members: dict[str, Alert], silences, now: datetime, report: FlushReport) -> set[str]:
        muted = set()
        for fp, alert in members.items():
            if alert.status is not AlertStatus.FIRING:
                continue
            silence = next((s for s in silences if s.matches(alert)), None)
            if silence is not None:
                muted.add(fp)
                report.silenced += 1
                self.state.record_suppressed(fp, {"reason": "silenced", "silence_id": silence.id,
                                                  "created_by": silence.created_by, "at": now.isoformat()})
                self.state.count("suppressed_total:silenced")
                continue
            source = self._inhibitor(alert)
            if source is not None:
                muted.add(fp)
                report.inhibited += 1
                self.state.record_suppressed(fp, {"reason": "inhibited", "by_fingerprint": source.fingerprint,
                                                  "by_alertname": source.alertname, "at": now.isoformat()})
                self.state.count("suppressed_total:inhibited")
        return muted


def _orphan(gid: str) -> GroupMeta:
    return GroupMeta(gid=gid, receiver="", group_key="", group_labels={}, route_path="", group_wait_seconds=0,
                     group_interval_seconds=0, repeat_interval_seconds=0, last_notified_at=None)
