"""Alert converters, one per source (see ``base.AlertConverter``).

``AnomalyConverter`` is exported lazily: it imports the detection pipeline (pandas, the
detectors), which a process that only converts, say, Alertmanager payloads need not load.
"""

from __future__ import annotations

__all__ = ["AnomalyConverter"]


def __getattr__(name: str):
    if name == "AnomalyConverter":
        from tradewatch.alerting.converters.anomaly import AnomalyConverter

        return AnomalyConverter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
