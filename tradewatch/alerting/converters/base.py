"""The converter interface: one small converter per alert source.

A converter turns what its source produces (an event, an anomaly, a compliance issue, an
Alertmanager payload) into zero or more Alerts. It is pure: callers pass ``now``; it never reads
the clock, the environment or the network. Each source owns its alert conditions (DESIGN.md:
one condition, one owner), so no two converters produce the same alertname.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, TypeVar

from tradewatch.alerting.model import Alert

Item = TypeVar("Item", contravariant=True)

#: Annotation sizes every converter keeps to: a summary is one line in a notification, a
#: description a few screens at most (receivers truncate or reject longer ones).
SUMMARY_LIMIT = 200
ANNOTATION_LIMIT = 10_000


def cap(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in an ellipsis when it was cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class AlertConverter(Protocol[Item]):
    #: The ``source`` label value of every alert it makes, e.g. "pipeline_health".
    source: str

    def to_alerts(self, item: Item, *, now: datetime) -> list[Alert]:
        ...
