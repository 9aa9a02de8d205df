"""Pure logic: event models, analytics, detectors, compliance rules, reports.

Nothing in this package may import Celery, Redis, SQLAlchemy, an HTTP client or read
``os.environ`` or the wall clock (tests/test_architecture.py enforces it): callers pass
``now`` and data in.
"""
