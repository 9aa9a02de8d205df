"""The HTTP service: Alertmanager webhook, /metrics, /health, /ready, /live, /api/snapshot.

``app`` (routes), ``trading_metrics`` (``EXPORTED_METRICS``: every exported name; the trading
metrics off the dashboard snapshot), ``exporter`` (the scrape), ``pipeline`` (queue depths, the
trail probe, the worker census), ``system_metrics`` (psutil), ``health`` (checks and the overall
rule), ``snapshots`` (the snapshot document in Redis), ``metrics`` (the alert router's counters),
``service`` (wiring from settings).

Settings come from the caller (``create_app`` arguments, ``service.build_observability``);
nothing here reads the environment.
"""
