"""Stale feed rule: a source that has sent no market data (or heartbeat) for too long.

Watches the events of ``event_types`` (market_data and system by default: quotes and the
components' heartbeats) per ``source`` (the emitting engine or feed handler).

    last_seen(source) = the latest received_at of such an event from it (tradewatch's clock)
    silence(now)      = (now - last_seen) / 1e9 seconds

``detect(batch)`` only records ``last_seen``. It never reports a stale feed: absence is judged
on the beat's ``tick(now)`` alone, because a batch's times are not "now". A batch that arrives
late (a worker backlog, a replayed spool) holds gaps that were not silence at the time, and a
silent source produces no batch at all, so only a tick, which runs even when ingest has stopped,
can see it.

``tick(now)`` reports every tracked source with silence > ``max_silence_seconds`` once per
episode (type ``stale_feed``, metric ``feed_silence_seconds``, entity_kind ``source``, key
``<name>|feed_silence_seconds|source=<source>``):

    observed = silence (s)     baseline = max_silence_seconds     score = silence / max_silence_seconds
    detected_at_ns = now

The episode ends when the source is heard again: the next ``detect`` whose batch holds one of
its events emits ``Cleared`` with the received_at of the first such event (seq order).

Tracked sources: every source seen in a watched event, and every one of ``expected_sources``
from the first tick on, even when it never sends anything: its silence counts from the first
tick that watched it (so a feed that never came up is reported ``max_silence_seconds`` after
tradewatch started watching for it).

Forgetting: a source that is not in ``expected_sources`` and whose silence at a tick exceeds
``forget_after_seconds`` (default one day, > ``max_silence_seconds``) is taken as retired: the
tick emits ``Cleared`` (at ``now``) for its open stale_feed condition, if any, and drops it from
the state. Otherwise a decommissioned engine would keep a stale_feed anomaly open for good and
every source ever seen would stay in the state. If it is heard again it is tracked afresh. An
expected source is never forgotten: its silence is exactly what the rule is there to report.

State: per source, ``last_seen`` (ns) and the key of its open condition; the never-seen
expected sources. Bounded by the sources heard within ``forget_after_seconds`` plus the
expected ones.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from tradewatch.domain.detection.anomaly import Anomaly, Cleared
from tradewatch.domain.detection.base import Batch, Finding, State
from tradewatch.domain.detection.conditions import in_batch_order, source_anomaly
from tradewatch.domain.events import EVENT_TYPES
from tradewatch.domain.events.timestamps import NS_PER_SECOND

FEED_SILENCE_SECONDS = "feed_silence_seconds"


class StaleFeedConfig(BaseModel):
    """``event_types``: the event types that count as the feed being alive (non-empty, from the
    event contract). ``max_silence_seconds`` (> 0): silence above it is stale.
    ``expected_sources``: sources watched from the first tick even if never seen.
    ``forget_after_seconds`` (> ``max_silence_seconds``): silence after which a source not in
    ``expected_sources`` is taken as retired, its condition cleared and its state dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    kind: Literal["stale_feed"] = "stale_feed"
    severity: Literal["info", "warning", "critical"] = "warning"
    event_types: list[str] = Field(default_factory=lambda: ["market_data", "system"], min_length=1)
    max_silence_seconds: float = Field(30.0, gt=0.0, allow_inf_nan=False)
    forget_after_seconds: float = Field(86_400.0, gt=0.0, allow_inf_nan=False)
    expected_sources: list[str] = Field(default_factory=list)

    @field_validator("event_types")
    @classmethod
    def _known_event_types(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in EVENT_TYPES]
        if unknown:
            raise ValueError(f"unknown event type(s) {', '.join(map(repr, unknown))}; "
                             f"accepted: {', '.join(EVENT_TYPES)}")
        return value

    @field_validator("forget_after_seconds")
    @classmethod
    def _forget_after_the_silence_limit(cls, value: float, info: ValidationInfo) -> float:
        limit = info.data.get("max_silence_seconds")
        if limit is not None and not value > limit:
            raise ValueError(f"detector {info.data.get('name')!r}: forget_after_seconds ({value}) must be greater than "
                             f"max_silence_seconds ({limit}); a source is forgotten only after it has been stale")
        return value

    @field_validator("expected_sources")
    @classmethod
    def _named_sources(cls, value: list[str]) -> list[str]:
        if any(not name.strip() for name in value):
            raise ValueError("a source name is empty; give the engines' source names as they appear in events")
        if len(set(value)) != len(value):
            raise ValueError("a source is listed twice; list each source once")
        return value


class StaleFeedRule:
    """Reports, on the beat tick, a source silent for more than ``max_silence_seconds``;
    clears when it is heard again (see the module docstring)."""

    def __init__(self, config: StaleFeedConfig) -> None:
        self.config = config
        self.name = config.name
        self._silence_ns = int(round(config.max_silence_seconds * NS_PER_SECOND))
        self._forget_ns = int(round(config.forget_after_seconds * NS_PER_SECOND))

    def detect(self, batch: Batch, state: State) -> list[Finding]:
        last_seen: dict = state.setdefault("last_seen", {})
        open_keys: dict = state.setdefault("open", {})
        never_seen: list = state.setdefault("never_seen", [])
        heard = self._heard(batch.events)
        findings: list[tuple[int, Finding]] = []
        for source, (first_position, first_ns, latest_ns) in heard.items():
            last_seen[source] = max(latest_ns, last_seen.get(source, latest_ns))
            if source in never_seen:
                never_seen.remove(source)
            if source in open_keys:
                findings.append((first_position, Cleared(key=open_keys.pop(source), cleared_at_ns=first_ns)))
        return in_batch_order(findings)

    def tick(self, now_ns: int, state: State) -> list[Finding]:
        last_seen: dict = state.setdefault("last_seen", {})
        open_keys: dict = state.setdefault("open", {})
        never_seen: list = state.setdefault("never_seen", [])
        for source in self.config.expected_sources:
            if source not in last_seen:  # watched from this (its first) tick on
                last_seen[source] = int(now_ns)
                never_seen.append(source)
        findings: list[Finding] = self._forget_retired(int(now_ns), state)
        for source in sorted(last_seen):
            silence_ns = now_ns - last_seen[source]
            if source in open_keys or silence_ns <= self._silence_ns:
                continue
            anomaly = self._anomaly(source, int(now_ns), silence_ns, last_seen[source], source in never_seen)
            open_keys[source] = anomaly.key
            findings.append(anomaly)
        return findings

    def _forget_retired(self, now_ns: int, state: State) -> list[Finding]:
        """Drop the sources (not expected) silent beyond forget_after_seconds; Cleared at
        ``now_ns`` for the open condition of each (module docstring, "Forgetting")."""
        last_seen, open_keys, never_seen = state["last_seen"], state["open"], state["never_seen"]
        expected = set(self.config.expected_sources)
        findings: list[Finding] = []
        for source in sorted(last_seen):
            if source in expected or now_ns - last_seen[source] <= self._forget_ns:
                continue
            del last_seen[source]
            if source in never_seen:
                never_seen.remove(source)  # only if it left expected_sources since
            if source in open_keys:
                findings.append(Cleared(key=open_keys.pop(source), cleared_at_ns=now_ns))
        return findings

    def _heard(self, events: pd.DataFrame) -> dict[str, tuple[int, int, int]]:
        """Per source with a watched event in the batch: (position of its first one, that
        event's received_at, the latest received_at)."""
        mask = events["event_type"].isin(self.config.event_types).to_numpy() & events["source"].notna().to_numpy()
        watched = pd.DataFrame({"source": events["source"].to_numpy()[mask],
                                "received_at_ns": events["received_at_ns"].to_numpy(dtype=np.int64)[mask],
                                "position": np.flatnonzero(mask)})
        if watched.empty:
            return {}
        grouped = watched.groupby("source", sort=False)["received_at_ns"]
        first = watched.drop_duplicates("source")
        latest = grouped.max()
        return {str(row.source): (int(row.position), int(row.received_at_ns), int(latest[row.source]))
                for row in first.itertuples(index=False)}

    def _anomaly(self, source: str, now_ns: int, silence_ns: int, last_seen_ns: int, never_seen: bool) -> Anomaly:
        config = self.config
        silence = silence_ns / NS_PER_SECOND
        return source_anomaly(
            config, source, anomaly_type="stale_feed", metric=FEED_SILENCE_SECONDS, observed=silence,
            baseline=config.max_silence_seconds, score=silence / config.max_silence_seconds, detected_at_ns=now_ns,
            context={
                "max_silence_seconds": config.max_silence_seconds,
                "event_types": list(config.event_types),
                # A never-seen expected source: its silence counts from the first tick watching it.
                "last_seen_at_ns": None if never_seen else last_seen_ns,
                "silent_since_ns": last_seen_ns,
                "never_seen": never_seen,
            },
        )
