"""The one table of periodic work: Celery beat runs what is listed here, by task name.

Entries are added by the capabilities that need a clock tick (dashboard snapshots, ledger
sealing, compliance sweeps, absence rules, retraining, the weekly report). Each entry names a
task by its stable string name.
"""

from celery.schedules import crontab

BEAT_SCHEDULE: dict[str, dict] = {
    # The alert router's timers: group waits, group intervals, repeat intervals, and notifications
    # decided but never handed to a delivery task. A tick that waited more than 5 s in the queue
    # is dropped (the next one does its work), so a stalled pool never meets a pile of ticks.
    "alerts-tick": {"task": "alerts.tick", "schedule": 1.0, "options": {"queue": "alerts", "expires": 5}},
    # Detection: catch up with the trail, then the absence rules (a stale feed fires even when
    # ingest has stopped) and quiet periods against now. Expires like the alerts tick.
    "detect-tick": {"task": "detect.tick", "schedule": 5.0, "options": {"queue": "analysis", "expires": 5}},
    # Refit the model detectors on the last days of the trail, once a day at a quiet hour (UTC).
    "detect-retrain": {"task": "detect.retrain", "schedule": crontab(hour=3, minute=17),
                       "options": {"queue": "reports", "expires": 3600}},
}
