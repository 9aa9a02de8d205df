"""The detector_models table: trained scikit-learn models, one row per training run.

Rows are only inserted: a retrain adds a row and ``latest(name)`` takes the newest by
trained_at (then id), so the models a detector used stay on record. The artifact is
``TrainedModel.to_bytes()`` (self-contained, the metadata included); the other columns copy
its metadata for queries. Artifacts are pickles: only tradewatch's workers write this table,
and only they should be able to (see ``trained_model``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine

from tradewatch.domain.detection.trained_model import TrainedModel
from tradewatch.storage.schema import detector_models

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
        query = (select(detector_models.c.artifact).where(detector_models.c.name == name)
                 .order_by(detector_models.c.trained_at.desc(), detector_models.c.id.desc()).limit(1))
        with self.engine.connect() as conn:
            artifact = conn.execute(query).scalar_one_or_none()
        return None if artifact is None else TrainedModel.from_bytes(bytes(artifact))

    def latest_many(self, names: list[str] | tuple[str, ...]) -> dict[str, TrainedModel | None]:
        """``latest`` for each name (the shape ``DetectionPipeline.set_models`` takes)."""
        return {name: self.latest(name) for name in names}

    def list(self, name: str | None = None) -> list[dict[str, Any]]:
        """The models' metadata (no artifact; its size as ``artifact_bytes``), newest first."""
        columns = [detector_models.c[c] for c in _METADATA_COLUMNS]
        query = select(*columns, func.length(detector_models.c.artifact).label("artifact_bytes"))
        if name is not None:
            query = query.where(detector_models.c.name == name)
        query = query.order_by(detector_models.c.trained_at.desc(), detector_models.c.id.desc())
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]
