"""The deployed HTTP service: ``create_app`` wired to settings and the Celery app.

Run it with ``tradewatch web`` (uvicorn). Alerts posted by Alertmanager go to the router's
``alerts.receive`` task; ``/metrics`` serves the router's shared counters.
"""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, make_asgi_app

from tradewatch.alerting.model import Alert
from tradewatch.web.app import create_app
from tradewatch.web.metrics import AlertingCollector


def build_app() -> FastAPI:
    from tradewatch.tasks import wiring
    from tradewatch.tasks.alerting import raise_alerts
    from tradewatch.tasks.settings import get_settings

    settings = get_settings()

    def submit(alerts: list[Alert]) -> int:
        raise_alerts(alerts)
        return len(alerts)

    app = create_app(submit_alerts=submit, webhook_token=settings.alertmanager_webhook_token)
    registry = CollectorRegistry()
    registry.register(AlertingCollector(lambda: wiring.alert_state().counters()))
    app.mount("/metrics", make_asgi_app(registry))
    return app
