"""DetectionStore: the detection pipeline's persistence (its cursor, its state, its anomalies).

The pipeline (``domain.detection.pipeline``) is pure: it reads an event frame and a state and
returns findings and the next state. This store feeds it the trail and keeps what it returns:

- ``follow_frame`` reads the trail after a cursor as an event frame (``event_frame.EVENT_COLUMNS``)
  straight from SQL, with the watermark rule of ``AuditStore.follow``: on PostgreSQL rows in
  (txid, seq) order and only of transactions below the snapshot's xmin, so a row another ingest
  worker commits late is delivered later, never skipped; on SQLite (one writer) plain seq order.
- ``apply_pending`` runs the pipeline over what is new, one transaction per chunk: the
  ``detector_state`` row is created if missing and locked (``SELECT ... FOR UPDATE``), the
  state decoded, the chunk read from the stored cursor, the pipeline applied, the anomalies
  written, and cursor, state and anomalies committed together. A redelivered call finds the
  cursor past its events (a no-op); two workers calling it at once queue on the row lock, so
  together they do exactly what one sequential run does. On SQLite the first statement of the
  transaction is a write, which takes the database's single write lock and serialises callers
  the same way.
- ``tick`` is the same for the beat's ``pipeline.tick(now_ns)`` (absence rules, quiet periods);
  ``catch_up_and_tick`` applies what is pending first and ticks only once caught up (absence is
  judged against a fully applied trail, never a backlog).

The follow query, its column expressions, the state row (create, lock, read, save) and the
DBAPI read are ``storage.trail_consumer``'s, shared with ``ComplianceStore``.

Anomaly rows: an anomaly opened by the pipeline is inserted with status ``open``; while open it
is updated (last_seen_at_ns, occurrences, the worst severity, the largest score); a resolution
sets status ``resolved``, resolved_at_ns and resolved_reason. One instance of a condition is
identified by its key and its first finding's detected_at_ns; an instance opened and resolved
within one chunk is inserted already resolved, so the partial unique index (one open row per
key) always holds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Connection, Engine

from tradewatch.domain.detection.anomaly import Anomaly
from tradewatch.domain.detection.event_frame import (
    ENVELOPE_COLUMNS,
    EVENT_COLUMNS,
    NUMBER_PAYLOAD_COLUMNS,
    TEXT_PAYLOAD_COLUMNS,
)
from tradewatch.domain.events.timestamps import ns_to_datetime
from tradewatch.domain.trail import FollowCursor
from tradewatch.storage.schema import anomalies, detector_state
from tradewatch.storage.trail_consumer import (
    DECIMAL_FIELDS,
    PG_RECEIVED_NS,
    SQLITE_RECEIVED_NS,
    StateTable,
    fetch,
    fetch_after,
    follow_sql,
    pg_number,
    pg_text,
    sqlite_number,
    sqlite_text,
)

if TYPE_CHECKING:  # the pipeline loads every detector (scikit-learn too): imported where it runs
    from tradewatch.domain.detection.pipeline import (
        DetectionPipeline,
        DetectionResult,
        OpenAnomaly,
        PipelineState,
        Resolution,
    )

# Payload fields the event models declare as decimals, by event type (``trail_consumer.DECIMAL_FIELDS``),
# of the frame's number columns: stored as exact decimal strings (see storage.schema), so for
# these types a string is a number. For any other type a field of that name is an engine's own
# extra field, a number only when sent as a JSON number (event_frame treats it the same way).
DECLARED_NUMBERS: dict[str, tuple[str, ...]] = {column: DECIMAL_FIELDS[column] for column in NUMBER_PAYLOAD_COLUMNS}

_ENVELOPE_TEXT = ("event_id", "event_type", "source", "strategy_id", "symbol", "signal_id", "order_id")
_SELECTED = ("txid", "seq", "occurred_at_ns", "received_at_ns", *_ENVELOPE_TEXT, *TEXT_PAYLOAD_COLUMNS,
             *NUMBER_PAYLOAD_COLUMNS)
_POSITION = {name: index for index, name in enumerate(_SELECTED)}


def _postgres_select() -> str:
    return ", ".join([
        "txid", "seq", "occurred_at_ns", PG_RECEIVED_NS, "event_id::text", *_ENVELOPE_TEXT[1:],
        *map(pg_text, TEXT_PAYLOAD_COLUMNS), *map(pg_number, NUMBER_PAYLOAD_COLUMNS),
    ])


def _sqlite_select() -> str:
    return ", ".join([
        "txid", "seq", "occurred_at_ns", SQLITE_RECEIVED_NS, *_ENVELOPE_TEXT,
        *map(sqlite_text, TEXT_PAYLOAD_COLUMNS), *map(sqlite_number, NUMBER_PAYLOAD_COLUMNS),
    ])


_PG_FOLLOW = follow_sql(_postgres_select(), postgres=True)
_SQLITE_FOLLOW = follow_sql(_sqlite_select(), postgres=False)


def _between_sql(postgres: bool, event_types: int | None, limit: bool) -> str:
    """The window query: occurred_at in [start, end), of ``event_types`` types (None: all) when
    given, in seq order, with a LIMIT only when ``limit``."""
    if postgres:
        where = ["occurred_at_ns >= %(start)s", "occurred_at_ns < %(end)s"]
        if event_types is not None:
            where.append("event_type = ANY(%(types)s)")
        tail = " LIMIT %(limit)s" if limit else ""
        return f"SELECT {_postgres_select()} FROM audit_events WHERE {' AND '.join(where)} ORDER BY seq{tail}"
    where = ["occurred_at_ns >= :start", "occurred_at_ns < :end"]
    if event_types is not None:
        where.append(f"event_type IN ({', '.join(f':type{i}' for i in range(event_types))})")
    tail = " LIMIT :limit" if limit else ""
    return f"SELECT {_sqlite_select()} FROM audit_events WHERE {' AND '.join(where)} ORDER BY seq{tail}"


#: What training reads: fills (the rows models score) and orders (a fill's latency and strategy
#: come from its order's submission). Quotes, positions and heartbeats, most of the trail, add
#: nothing to a fill's features but the extractor's watermark (order expiry), which the orders
#: and fills themselves carry closely enough.
TRAINING_EVENT_TYPES: tuple[str, ...] = ("order", "fill")


def frame_from_rows(rows: Sequence[tuple]) -> pd.DataFrame:
    """The event frame of rows in ``_SELECTED`` order: one 2-d object array of the driver's
    values (a single C loop), then one typed array per column; no per-row Python work."""
    table = np.array(rows, dtype=object) if rows else np.empty((0, len(_SELECTED)), dtype=object)
    data: dict[str, np.ndarray | pd.Series] = {}
    for name in ("seq", "occurred_at_ns", "received_at_ns"):
        data[name] = table[:, _POSITION[name]].astype(np.int64)
    for name in _ENVELOPE_TEXT + TEXT_PAYLOAD_COLUMNS:
        # Explicitly object (str or None), as event_frame has them: pandas would infer its str dtype.
        data[name] = pd.Series(table[:, _POSITION[name]], dtype=object)
    for name in NUMBER_PAYLOAD_COLUMNS:
        # The driver returns None for SQL NULL; float64 turns it into NaN.
        data[name] = table[:, _POSITION[name]].astype(np.float64)
    return pd.DataFrame(data, columns=list(EVENT_COLUMNS))


assert set(ENVELOPE_COLUMNS + TEXT_PAYLOAD_COLUMNS + NUMBER_PAYLOAD_COLUMNS) == set(_SELECTED) - {"txid"}


@dataclass
class DetectionRun:
    """What ``apply_pending``, ``tick`` or ``catch_up_and_tick`` did, over all its chunks: the
    anomalies opened and escalated and the resolutions (for alerting), and counts.

    ``caught_up``: the last read of the trail returned fewer events than it asked for, so nothing
    more was pending at that moment (on PostgreSQL: below the watermark). False when a call stopped
    at ``max_events`` (more may be pending) and for a bare ``tick``, which reads no events.
    ``ticked``: ``pipeline.tick(now)`` ran (``tick``; ``catch_up_and_tick`` only once caught up)."""

    pipeline: str
    opened: list[Anomaly] = field(default_factory=list)
    escalated: list[Anomaly] = field(default_factory=list)
    resolved: list[Resolution] = field(default_factory=list)
    events: int = 0
    observations: int = 0
    findings: int = 0
    chunks: int = 0
    cursor: str = ""
    caught_up: bool = False
    ticked: bool = False

    def add(self, result: DetectionResult) -> None:
        self.opened += result.opened
        self.escalated += result.escalated
        self.resolved += result.resolved
        self.events += result.events
        self.observations += result.observations
        self.findings += result.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline, "events": self.events, "observations": self.observations,
            "findings": self.findings, "opened": len(self.opened), "escalated": len(self.escalated),
            "resolved": len(self.resolved), "chunks": self.chunks, "cursor": self.cursor,
            "caught_up": self.caught_up, "ticked": self.ticked,
        }


def _max_score(opened: OpenAnomaly) -> float | None:
    """The largest score seen of an open anomaly, JSON-safe as ``Anomaly.to_dict`` makes a score
    (None when not finite: the stored score then stays as it was)."""
    return dataclasses.replace(opened.anomaly, score=opened.max_score).to_dict()["score"]


class DetectorStateError(RuntimeError):
    """The stored pipeline state cannot be decoded (written by an incompatible version)."""


#: The pipelines' cursor and state, a row per pipeline name (``trail_consumer.StateTable``).
_STATE = StateTable(detector_state, "pipeline")


class DetectionStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    # ------------------------------------------------------------------ reads of the trail

    def follow_frame(self, cursor: FollowCursor | None = None, limit: int = 20_000) -> tuple[pd.DataFrame, FollowCursor]:
        """The event frame of up to ``limit`` events after ``cursor`` and the cursor after them
        (``cursor`` itself when there is nothing new)."""
        with self.engine.connect() as conn:
            return self._follow_frame(conn, cursor or FollowCursor(), limit)

    def frame_between(self, start_ns: int, end_ns: int, *, event_types: Sequence[str] | None = None,
                      limit: int | None = None) -> pd.DataFrame:
        """The event frame of the events with occurred_at in [start_ns, end_ns), in seq order:
        only those of ``event_types`` when given (filtered in SQL), at most ``limit`` (the
        earliest seqs) when given."""
        types = None if event_types is None else list(dict.fromkeys(event_types))
        if types == []:
            return frame_from_rows([])
        parameters: dict[str, Any] = {"start": int(start_ns), "end": int(end_ns)}
        if limit is not None:
            parameters["limit"] = int(limit)
        if types is not None:
            if self.postgres:
                parameters["types"] = types
            else:
                parameters.update({f"type{i}": t for i, t in enumerate(types)})
        sql = _between_sql(self.postgres, None if types is None else len(types), limit is not None)
        with self.engine.connect() as conn:
            rows = fetch(conn, sql, parameters)
        return frame_from_rows(rows)

    def training_frame(self, start_ns: int, end_ns: int, warmup_ns: int) -> pd.DataFrame:
        """What the model detectors are trained on for the window [start_ns, end_ns): the
        ``TRAINING_EVENT_TYPES`` events from ``warmup_ns`` before the window (they only warm up
        the order history: a fill early in the window needs its order's submission) to its end."""
        return self.frame_between(start_ns - warmup_ns, end_ns, event_types=TRAINING_EVENT_TYPES)

    def _follow_frame(self, conn: Connection, cursor: FollowCursor, limit: int) -> tuple[pd.DataFrame, FollowCursor]:
        rows = fetch_after(conn, _PG_FOLLOW if self.postgres else _SQLITE_FOLLOW, cursor, limit, postgres=self.postgres)
        if not rows:
            return frame_from_rows(rows), cursor
        last = rows[-1]
        return frame_from_rows(rows), FollowCursor(int(last[0]), int(last[1]))

    # ------------------------------------------------------------------ applying the pipeline

    def apply_pending(
        self,
        pipeline: DetectionPipeline,
        *,
        name: str = "default",
        limit: int = 20_000,
        max_events: int = 200_000,
        before_commit: Callable[[DetectionResult], None] | None = None,
    ) -> DetectionRun:
        """Run ``pipeline`` over the events after the stored cursor, ``limit`` per transaction,
        until none is left or ``max_events`` were applied.

        ``before_commit(result)`` is called with each chunk's ``DetectionResult`` inside its
        transaction, after the anomalies are written: the caller hands the chunk's alerts to the
        router there, so a failure to do so rolls the chunk back and a retry raises them again
        (the router absorbs an alert raised twice), where raising after the commit could lose them."""
        run = DetectionRun(pipeline=name)
        while run.events < max_events:
            with self.engine.begin() as conn:
                row = _STATE.lock(conn, name)
                cursor = FollowCursor.from_token(row.cursor)
                asked = min(limit, max_events - run.events)
                frame, cursor = self._follow_frame(conn, cursor, asked)
                # A short read: the trail held nothing more (visible) at this moment.
                run.caught_up = len(frame) < asked
                if frame.empty:
                    run.cursor = cursor.to_token()
                    break
                result = pipeline.detect_all(frame, self._state(pipeline, row.state, name))
                self._write_anomalies(conn, result)
                _STATE.save(conn, name, cursor, result.state.to_bytes(), row.events_applied + len(frame))
                if before_commit is not None:
                    before_commit(result)
            run.add(result)
            run.chunks += 1
            run.cursor = cursor.to_token()
            if run.caught_up:
                break
        return run

    def tick(self, pipeline: DetectionPipeline, now_ns: int, *, name: str = "default",
             before_commit: Callable[[DetectionResult], None] | None = None) -> DetectionRun:
        """``pipeline.tick(now_ns)`` on the stored state, persisted like a chunk (``before_commit``
        as in ``apply_pending``). It judges absence against the events applied so far: a caller
        with events possibly pending wants ``catch_up_and_tick``."""
        run = DetectionRun(pipeline=name)
        with self.engine.begin() as conn:
            row = _STATE.lock(conn, name)
            result = pipeline.tick(int(now_ns), self._state(pipeline, row.state, name))
            self._write_anomalies(conn, result)
            _STATE.save(conn, name, FollowCursor.from_token(row.cursor), result.state.to_bytes(), row.events_applied)
            if before_commit is not None:
                before_commit(result)
        run.add(result)
        run.chunks = 1
        run.cursor = row.cursor
        run.ticked = True
        return run

    def catch_up_and_tick(
        self,
        pipeline: DetectionPipeline,
        now_ns: int,
        *,
        name: str = "default",
        limit: int = 20_000,
        max_events: int = 200_000,
        before_commit: Callable[[DetectionResult], None] | None = None,
    ) -> DetectionRun:
        """``apply_pending``, then ``tick(now_ns)`` only if that reached the head of the trail;
        one run for both.

        Absence (a stale feed) and quiet periods are judged against the last event applied: with
        a backlog still pending, "now" minus that is the backlog's age, not a silence, so a tick
        then would report every feed stale and resolve spikes early. Behind, the call only
        applies events; a later call (the next beat) ticks once caught up."""
        run = self.apply_pending(pipeline, name=name, limit=limit, max_events=max_events,
                                 before_commit=before_commit)
        if not run.caught_up:
            return run
        ticked = self.tick(pipeline, now_ns, name=name, before_commit=before_commit)
        run.opened += ticked.opened
        run.escalated += ticked.escalated
        run.resolved += ticked.resolved
        run.findings += ticked.findings
        run.chunks += ticked.chunks
        run.ticked = True
        return run

    def state(self, name: str = "default") -> tuple[FollowCursor, bytes | None, int]:
        """The stored cursor, encoded state (None before the first run) and events applied."""
        return _STATE.read(self.engine, name)

    @staticmethod
    def _state(pipeline: DetectionPipeline, stored: bytes | None, name: str) -> PipelineState:
        # Imported here: the pipeline loads every detector (scikit-learn included), which the
        # processes that only read anomalies need not.
        from tradewatch.domain.detection.pipeline import PipelineState
        from tradewatch.domain.detection.state_codec import StateCodecError

        if not stored:
            return pipeline.new_state()
        try:
            return PipelineState.from_bytes(bytes(stored))
        except StateCodecError as exc:
            raise DetectorStateError(
                f"the stored state of detection pipeline {name!r} cannot be read ({exc}). Detection stops rather "
                f"than silently forget its windows and open anomalies; to start afresh from the current cursor, "
                f"run: UPDATE detector_state SET state = '' WHERE pipeline = '{name}'"
            ) from exc

    # ------------------------------------------------------------------ anomaly rows

    def _write_anomalies(self, conn: Connection, result: DetectionResult) -> None:
        """Persist one pipeline result: resolutions first (they free their key), then the open
        anomalies opened, escalated or seen again in it."""
        # ``escalated`` needs no reading: an escalated anomaly is also in ``updated``, with at
        # least that severity (the pipeline folds escalations into its open anomaly).
        keys = {a.key for a in result.opened} | {o.key for o in result.updated} | {r.anomaly.key for r in result.resolved}
        if not keys:
            return
        a = anomalies.c
        open_rows: dict[str, tuple[int, int]] = {}  # key -> (id, detected_at_ns) of the open row
        keys_list = sorted(keys)
        for start in range(0, len(keys_list), 500):
            query = select(a.id, a.key, a.detected_at_ns).where(a.status == "open", a.key.in_(keys_list[start : start + 500]))
            open_rows.update({row.key: (row.id, row.detected_at_ns) for row in conn.execute(query)})

        seen = {_instance(o.anomaly): o for o in result.updated}
        resolved_instances: set[tuple[str, int]] = set()
        resolved_updates, resolved_inserts = [], []
        for resolution in result.resolved:
            anomaly = resolution.anomaly
            instance = _instance(anomaly)
            resolved_instances.add(instance)
            stored = open_rows.get(anomaly.key)
            if stored is not None and stored[1] == anomaly.detected_at_ns:
                later = seen.get(instance)
                resolved_updates.append({
                    "row_id": stored[0], "resolved_at_ns": int(resolution.resolved_at_ns),
                    "resolved_reason": resolution.reason, "severity": anomaly.severity,
                    "last_seen_at_ns": later.last_seen_at_ns if later else None,
                    "occurrences": later.occurrences if later else None,
                    "max_score": _max_score(later) if later else None,
                })
                del open_rows[anomaly.key]
            else:  # opened and resolved within this result
                row = self._row(anomaly, seen.get(instance))
                row.update(status="resolved", resolved_at_ns=int(resolution.resolved_at_ns),
                           resolved_reason=resolution.reason)
                resolved_inserts.append(row)
        if resolved_updates:
            conn.execute(
                update(anomalies)
                .where(a.id == bindparam("row_id"))
                .values(
                    status="resolved", resolved_at_ns=bindparam("resolved_at_ns"),
                    resolved_reason=bindparam("resolved_reason"), severity=bindparam("severity"),
                    last_seen_at_ns=func.coalesce(bindparam("last_seen_at_ns"), a.last_seen_at_ns),
                    occurrences=func.coalesce(bindparam("occurrences"), a.occurrences),
                    score=func.coalesce(bindparam("max_score"), a.score),
                ),
                resolved_updates,
            )
        if resolved_inserts:
            conn.execute(anomalies.insert(), resolved_inserts)

        # What is still open after this result, latest view of each instance.
        current: dict[tuple[str, int], tuple[Anomaly, Any]] = {}
        for anomaly in result.opened:
            current[_instance(anomaly)] = (anomaly, None)
        for opened in result.updated:
            current[_instance(opened.anomaly)] = (opened.anomaly, opened)
        inserts, updates, superseded = [], [], []
        for instance, (anomaly, opened) in current.items():
            if instance in resolved_instances:
                continue
            stored = open_rows.get(instance[0])
            if stored is not None and stored[1] == instance[1]:
                updates.append({
                    "row_id": stored[0], "severity": anomaly.severity,
                    "last_seen_at_ns": opened.last_seen_at_ns if opened else None,
                    "occurrences": opened.occurrences if opened else None,
                    "max_score": _max_score(opened) if opened else None,
                })
            else:
                if stored is not None:
                    # An open row the pipeline's state does not know (the state was reset): it
                    # can no longer be resolved by the pipeline, and the key must be free.
                    superseded.append({"row_id": stored[0], "resolved_at_ns": instance[1]})
                inserts.append(self._row(anomaly, opened))
        if superseded:
            conn.execute(
                update(anomalies).where(a.id == bindparam("row_id"))
                .values(status="resolved", resolved_at_ns=bindparam("resolved_at_ns"), resolved_reason="superseded"),
                superseded,
            )
        if inserts:
            conn.execute(anomalies.insert(), inserts)
        if updates:
            conn.execute(
                update(anomalies)
                .where(a.id == bindparam("row_id"))
                .values(
                    severity=bindparam("severity"),
                    last_seen_at_ns=func.coalesce(bindparam("last_seen_at_ns"), a.last_seen_at_ns),
                    occurrences=func.coalesce(bindparam("occurrences"), a.occurrences),
                    score=func.coalesce(bindparam("max_score"), a.score),
                ),
                updates,
            )

    @staticmethod
    def _row(anomaly: Anomaly, opened: OpenAnomaly | None = None) -> dict[str, Any]:
        """The anomalies row of an instance: its first finding, with what has been seen since."""
        body = anomaly.to_dict()
        # max_score includes the first finding's score, so it is the larger unless not finite.
        seen = _max_score(opened) if opened is not None else None
        score = body["score"] if seen is None else seen
        return {
            "key": anomaly.key, "detector": anomaly.detector, "anomaly_type": anomaly.anomaly_type,
            "severity": anomaly.severity, "metric": anomaly.metric, "observed": body["observed"],
            "baseline": body["baseline"], "score": score, "entity_kind": anomaly.entity_kind,
            "entity": anomaly.entity, "symbol": anomaly.symbol, "strategy_id": anomaly.strategy_id,
            "event_ids": list(anomaly.event_ids), "context": dict(anomaly.context),
            "detected_at_ns": int(anomaly.detected_at_ns), "detected_at": ns_to_datetime(int(anomaly.detected_at_ns)),
            "last_seen_at_ns": int(opened.last_seen_at_ns) if opened is not None else int(anomaly.detected_at_ns),
            "occurrences": int(opened.occurrences) if opened is not None else 1,
            "status": "open", "resolved_at_ns": None, "resolved_reason": None,
        }

    # ------------------------------------------------------------------ anomaly queries

    def open_anomalies(self) -> list[dict[str, Any]]:
        """The open anomalies, oldest first."""
        a = anomalies.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(anomalies).where(a.status == "open").order_by(a.detected_at_ns, a.id))
            return [dict(row._mapping) for row in rows]

    def anomalies(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The most recently opened anomalies (``status`` "open" or "resolved", or both), newest first."""
        if status not in (None, "open", "resolved"):
            raise ValueError(f"status {status!r}: accepted are 'open', 'resolved' or None (both)")
        a = anomalies.c
        query = select(anomalies).order_by(a.id.desc()).limit(limit)
        if status is not None:
            query = query.where(a.status == status)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]


def _instance(anomaly: Anomaly) -> tuple[str, int]:
    """One instance of a condition: its key and the time of its first finding."""
    return anomaly.key, int(anomaly.detected_at_ns)
