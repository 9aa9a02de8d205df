"""The ``Anomaly`` record: one finding of one detector about one entity.

A finding names what was seen (``metric``, ``observed``), what was expected (``baseline``) and
how far apart they are (``score``, in the detector's own unit: standard deviations for a
z-score, MADs for a robust z-score, IQR multiples for Tukey fences, threshold multiples for a
rule or a model). ``key`` identifies the condition for deduplication: one open anomaly per
detector, metric and entity until it clears (see ``pipeline``).

Times are integer nanoseconds since the epoch (UTC): ``detected_at_ns`` is the event time of
the observation that triggered it, or the ``now`` of the beat tick for absence rules.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")

#: What kind of deviation a finding is. Point anomalies (``spike``, ``outlier``) clear after a
#: quiet period; conditions (the rest) clear when their detector says so.
AnomalyType = Literal[
    "spike",  # one observation far from its baseline
    "level_shift",  # the baseline itself moved (EWMA)
    "outlier",  # a multivariate model scores the observation as unusual
    "latency_excursion",
    "loss_streak",
    "rate_spike",  # rejection rate, order rate
    "stale_feed",
    "clock_skew",
    "model_unusable",  # a model too old or trained on too little data: reported, not used
]
POINT_TYPES: frozenset[str] = frozenset({"spike", "outlier"})


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Anomaly:
    """One finding. ``entity`` is what it is about: a symbol, a strategy_id or a source,
    named by ``entity_kind`` ("symbol", "strategy_id", "source" or "model")."""

    detector: str  # the configured detector name (unique in the pipeline)
    anomaly_type: str  # one of AnomalyType
    severity: str  # one of SEVERITIES
    metric: str  # e.g. "slippage_bps", "fill_latency_seconds"
    observed: float  # the value seen, in the metric's unit
    baseline: float  # the value expected, same unit (NaN when there is none)
    score: float  # the deviation in the detector's unit (see the module docstring)
    entity_kind: str
    entity: str
    detected_at_ns: int
    symbol: str | None = None
    strategy_id: str | None = None
    event_ids: tuple[str, ...] = ()
    context: dict[str, Any] = field(default_factory=dict)  # JSON-safe details (window, threshold, ...)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"anomaly severity {self.severity!r} is not one of {', '.join(SEVERITIES)}")

    @staticmethod
    def make_key(detector: str, metric: str, entity_kind: str, entity: str) -> str:
        """The deduplication key ``<detector>|<metric>|<entity_kind>=<entity>``: the one place
        its format is written (a ``Cleared`` for a finding not at hand builds its key here)."""
        return f"{detector}|{metric}|{entity_kind}={entity}"

    @property
    def key(self) -> str:
        """The deduplication key: detector, metric and entity (``make_key``)."""
        return Anomaly.make_key(self.detector, self.metric, self.entity_kind, self.entity)

    @property
    def is_point(self) -> bool:
        return self.anomaly_type in POINT_TYPES

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (non-finite numbers become None)."""
        body = asdict(self)
        body["event_ids"] = list(self.event_ids)
        for name in ("observed", "baseline", "score"):
            body[name] = _finite_or_none(body[name])
        body["key"] = self.key
        return body

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> Anomaly:
        values = {k: v for k, v in body.items() if k != "key"}
        for name in ("observed", "baseline", "score"):
            values[name] = float("nan") if values.get(name) is None else float(values[name])
        values["event_ids"] = tuple(values.get("event_ids") or ())
        values["context"] = dict(values.get("context") or {})
        return cls(**values)


@dataclass(frozen=True)
class Cleared:
    """A condition detector saying the condition behind ``key`` no longer holds (at
    ``cleared_at_ns``): the pipeline resolves the open anomaly with that key, if any."""

    key: str
    cleared_at_ns: int
