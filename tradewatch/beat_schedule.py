"""The one table of periodic work: Celery beat runs what is listed here, by task name.

Entries are added by the capabilities that need a clock tick (dashboard snapshots, ledger
sealing, compliance sweeps, absence rules, retraining, the weekly report). Each entry names a
task by its stable string name, e.g.::

    "dashboard-snapshot": {"task": "dashboard.snapshot", "schedule": 2.0, "options": {"queue": "analysis"}},

No periodic task exists yet, so beat currently schedules nothing.
"""

BEAT_SCHEDULE: dict[str, dict] = {}
