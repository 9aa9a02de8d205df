"""tradewatch: monitoring and governance for algorithmic trading engines.

Importing the package is cheap and side-effect free; the engine-side client lives in
``tradewatch.tasks.client`` (re-exported lazily here as ``tradewatch.AuditClient``).
"""

__all__ = ["AuditClient"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy so that `import tradewatch.domain` never drags Celery in.
    if name == "AuditClient":
        from tradewatch.tasks.client import AuditClient

        return AuditClient
    raise AttributeError(name)
