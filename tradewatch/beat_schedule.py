"""The one table of periodic work: Celery beat runs what is listed here, by task name.

Entries are added by the capabilities that need a clock tick (dashboard snapshots, ledger
sealing, compliance sweeps, absence rules, retraining, the weekly report). Each entry names a
task by its stable string name. ``beat_schedule(settings)`` is the table with the intervals
that settings choose (the dashboard snapshot's).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from celery.schedules import crontab

if TYPE_CHECKING:
    from tradewatch.tasks.settings import Settings

BEAT_SCHEDULE: dict[str, dict] = {
    # The alert router's timers: group waits, group intervals, repeat intervals, and notifications
    # decided but never handed to a delivery task. A tick that waited more than 5 s in the queue
    # is dropped (the next one does its work), so a stalled pool never meets a pile of ticks.
    "alerts-tick": {"task": "alerts.tick", "schedule": 1.0, "options": {"queue": "alerts", "expires": 5}},
    # Detection: catch up with the trail, then the absence rules (a stale feed fires even when
    # ingest has stopped) and quiet periods against now. Expires like the alerts tick.
    "detect-tick": {"task": "detect.tick", "schedule": 5.0, "options": {"queue": "analysis", "expires": 5}},
    # Compliance: catch up with the trail, then release the events held in the reorder window
    # once the clock passes them (rules about what did not happen fire even when ingest stops),
    # and resolve the alerts of breaches recorded compliance_alert_hold_seconds ago (see
    # alerting/converters/compliance.py). Expires like the other ticks.
    "compliance-tick": {"task": "compliance.tick", "schedule": 5.0, "options": {"queue": "analysis", "expires": 5}},
    # Compliance re-check: every 15 minutes, the rules run afresh over the last hour
    # (compliance_recheck_seconds) up to what the incremental monitor has applied (at most a
    # reorder window before now), and any breach it missed (an event that arrived after its time
    # was passed, a state reset, a policy file changed) is recorded and alerted. The windows
    # overlap four times, so a lost or expired run loses nothing. Queue reports (it replays from
    # the start of the trading day; see tasks/app.py). Expires after 10 minutes: a run that
    # waited longer is superseded by the next one, and runs never pile up behind a busy pool.
    "compliance-recheck": {"task": "compliance.recheck", "schedule": 900.0,
                           "options": {"queue": "reports", "expires": 600}},
    # The dashboard snapshot: fold the trail's new events into the dashboard state, store the
    # snapshot and publish it to Redis; every dashboard_snapshot_seconds (2 s by default; see
    # beat_schedule below), on its own queue. A tick that waited longer than one interval is
    # dropped: the next one does the same work.
    "dashboard-snapshot": {"task": "dashboard.snapshot", "schedule": 2.0,
                           "options": {"queue": "dashboard", "expires": 2.0}},
    # Refit the model detectors on the last days of the trail, once a day at a quiet hour (UTC).
    "detect-retrain": {"task": "detect.retrain", "schedule": crontab(hour=3, minute=17),
                       "options": {"queue": "reports", "expires": 3600}},
}


def beat_schedule(settings: Settings) -> dict[str, dict]:
    """``BEAT_SCHEDULE`` with the dashboard snapshot every ``settings.dashboard_snapshot_seconds``
    (its expiry the same)."""
    schedule = copy.deepcopy(BEAT_SCHEDULE)
    seconds = float(settings.dashboard_snapshot_seconds)
    schedule["dashboard-snapshot"]["schedule"] = seconds
    schedule["dashboard-snapshot"]["options"]["expires"] = seconds
    return schedule
