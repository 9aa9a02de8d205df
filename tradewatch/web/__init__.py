"""The HTTP service: Alertmanager webhook, liveness (health, metrics and the JSON API follow).

Settings come from the caller (``create_app`` arguments); nothing here reads the environment.
"""
