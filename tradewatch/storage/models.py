"""The detector_models table: trained scikit-learn models, one row per training run.

Rows are only inserted: a retrain adds a row and ``latest(name)`` takes the newest by
trained_at (then id), so the models a detector used stay on record. The artifact is
``TrainedModel.to_bytes()`` (self-contained, the metadata included); the other columns copy
its metadata for queries. Artifacts are pickles: only tradewatch's workers write this table,
and only they should be able to (see ``trained_model``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Iterable

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine

from tradewatch.domain.detection.trained_model import TrainedModel
from tradewatch.storage.schema import detector_models

if TYPE_CHECKING:
    from tradewatch.domain.detection.pipeline import DetectionPipeline
    from tradewatch.storage.detection import DetectionStore

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_METADATA_COLUMNS = ("id", "name", "algorithm", "trained_at", "window_start_ns", "window_end_ns", "samples",
                     "features", "library_version", "threshold", "details")


def _utc(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1_000)


class ModelStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(self, model: TrainedModel) -> int:
        """Insert ``model``; returns its row id."""
        row = {
            "name": model.name, "algorithm": model.algorithm, "trained_at": _utc(model.trained_at_ns),
            "window_start_ns": model.window_start_ns, "window_end_ns": model.window_end_ns,
            "samples": model.samples, "features": list(model.features), "library_version": model.library_version,
            "threshold": model.threshold, "details": model.details, "artifact": model.to_bytes(),
        }
        with self.engine.begin() as conn:
            result = conn.execute(insert(detector_models).values(**row))
            return int(result.inserted_primary_key[0])

    def latest(self, name: str) -> TrainedModel | None:
        """The newest model called ``name``, or None."""
        model_id = self.latest_ids([name]).get(name)
        return None if model_id is None else self.load([model_id])[model_id]

    def latest_ids(self, names: Iterable[str]) -> dict[str, int]:
        """The row id of the newest model of each name (one query, no artifact); names with no
        model are absent. Rows are only inserted, so an id names one artifact for good: a
        worker compares ids to know whether a model changed without loading it."""
        names = sorted(set(names))
        if not names:
            return {}
        m = detector_models.c
        newest = (
            select(m.name, m.id,
                   func.row_number().over(partition_by=m.name, order_by=(m.trained_at.desc(), m.id.desc())).label("rank"))
            .where(m.name.in_(names))
            .subquery()
        )
        query = select(newest.c.name, newest.c.id).where(newest.c.rank == 1)
        with self.engine.connect() as conn:
            return {row.name: int(row.id) for row in conn.execute(query)}

    def load(self, ids: Iterable[int]) -> dict[int, TrainedModel]:
        """The models of these row ids (one query), by id; unknown ids are absent."""
        ids = sorted(set(ids))
        if not ids:
            return {}
        query = select(detector_models.c.id, detector_models.c.artifact).where(detector_models.c.id.in_(ids))
        with self.engine.connect() as conn:
            return {int(row.id): TrainedModel.from_bytes(bytes(row.artifact)) for row in conn.execute(query)}

    def latest_many(self, names: Iterable[str]) -> dict[str, TrainedModel | None]:
        """``latest`` for each name, None where there is none (the shape ``DetectionPipeline.set_models``
        takes: keyed by model name)."""
        names = list(names)
        ids = self.latest_ids(names)
        loaded = self.load(ids.values())
        return {name: loaded[ids[name]] if name in ids else None for name in names}

    def list(self, name: str | None = None) -> list[dict[str, Any]]:
        """The models' metadata (no artifact; its size as ``artifact_bytes``), newest first."""
        columns = [detector_models.c[c] for c in _METADATA_COLUMNS]
        query = select(*columns, func.length(detector_models.c.artifact).label("artifact_bytes"))
        if name is not None:
            query = query.where(detector_models.c.name == name)
        query = query.order_by(detector_models.c.trained_at.desc(), detector_models.c.id.desc())
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]


@dataclass
class Retraining:
    """What ``retrain`` did: the window [window_start_ns, window_end_ns), the events read, the
    models trained with their row ids, and the model names left untrained (too few fills)."""

    window_start_ns: int
    window_end_ns: int
    events: int = 0
    trained: list[tuple[TrainedModel, int]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def retrain(pipeline: DetectionPipeline, detection: DetectionStore, models: ModelStore, *, end_ns: int,
            window_ns: int, warmup_ns: int) -> Retraining:
    """Fit a model for each model detector of ``pipeline`` on the trail's [end_ns - window_ns,
    end_ns) (``DetectionStore.training_frame`` with ``warmup_ns`` before it: the extractor's
    order_ttl_seconds, as an older order is forgotten anyway) and save each one fitted. A model
    name with too few fills is skipped: its previous model stays in use until it is too old."""
    from tradewatch.domain.detection.training import fit_models  # scikit-learn: loaded where it runs

    start_ns = int(end_ns) - int(window_ns)
    report = Retraining(window_start_ns=start_ns, window_end_ns=int(end_ns))
    configs = pipeline.model_configs
    if not configs:
        return report
    events = detection.training_frame(start_ns, int(end_ns), int(warmup_ns))
    report.events = len(events)
    fitted = fit_models(configs, events, trained_at_ns=int(end_ns), window_start_ns=start_ns,
                        window_end_ns=int(end_ns), extractor=pipeline.extractor)
    report.trained = [(model, models.save(model)) for model in fitted]
    trained = {model.name for model in fitted}
    report.skipped = list(dict.fromkeys(c.effective_model_name for c in configs if c.effective_model_name not in trained))
    return report
