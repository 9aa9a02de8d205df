"""Trained models kept in detector_models, on PostgreSQL and SQLite."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import numpy as np
import pytest

from tradewatch.domain.detection.features import FEATURES
from tradewatch.domain.detection.model_detector import ModelDetectorConfig
from tradewatch.domain.detection.training import fit_model
from tradewatch.storage.models import ModelStore

TRAINED_AT = 1_767_571_200_123_456_789  # 2026-01-05T00:00:00.123456789Z
DAY_NS = 86_400 * 1_000_000_000


def model_for(name: str, algorithm: str, trained_at_ns: int, seed: int = 0):
    config = ModelDetectorConfig(name=name, kind="model", algorithm=algorithm)
    X = np.random.default_rng(seed).normal(size=(400, len(FEATURES)))
    X[::9, 1] = np.nan
    return fit_model(config, X, trained_at_ns=trained_at_ns, window_start_ns=trained_at_ns - DAY_NS,
                     window_end_ns=trained_at_ns, seed=seed)


@pytest.mark.parametrize("algorithm", ["isolation_forest", "one_class_svm", "autoencoder"])
def test_a_saved_model_comes_back_scoring_identically(store, algorithm):
    models = ModelStore(store.engine)
    model = model_for("fills", algorithm, TRAINED_AT)
    row_id = models.save(model)
    assert isinstance(row_id, int) and row_id > 0
    loaded = models.latest("fills")
    probe = np.random.default_rng(5).normal(size=(100, len(FEATURES))) * 2
    probe[::4, 3] = np.nan
    np.testing.assert_array_equal(loaded.score(probe), model.score(probe))
    assert loaded.metadata() == model.metadata()
    assert loaded.trained_at_ns == TRAINED_AT  # exact to the nanosecond (the artifact keeps it)
    assert loaded.usable(TRAINED_AT + DAY_NS, 7 * 86_400, 400) is None


def test_latest_is_the_newest_by_name_and_list_has_no_artifact(store):
    models = ModelStore(store.engine)
    assert models.latest("fills") is None
    assert models.list() == []
    newer = model_for("fills", "isolation_forest", TRAINED_AT + DAY_NS, seed=1)
    older = model_for("fills", "isolation_forest", TRAINED_AT, seed=2)
    other = model_for("other", "autoencoder", TRAINED_AT + 2 * DAY_NS, seed=3)
    first_id = models.save(newer)
    second_id = models.save(older)  # saved later, trained earlier
    models.save(other)
    assert second_id > first_id

    assert models.latest("fills").trained_at_ns == TRAINED_AT + DAY_NS
    assert models.latest("fills").threshold == newer.threshold
    assert models.latest("other").algorithm == "autoencoder"

    listed = models.list("fills")
    assert [row["id"] for row in listed] == [first_id, second_id]
    row = listed[0]
    assert "artifact" not in row and row["artifact_bytes"] == len(newer.to_bytes())
    assert row["trained_at"] == datetime(2026, 1, 6, 0, 0, 0, 123456, tzinfo=timezone.utc)
    assert row["features"] == list(FEATURES) and row["samples"] == 400
    assert row["threshold"] == newer.threshold and row["details"] == newer.details
    assert (row["window_start_ns"], row["window_end_ns"]) == (TRAINED_AT, TRAINED_AT + DAY_NS)
    assert [r["name"] for r in models.list()] == ["other", "fills", "fills"]


def test_same_trained_at_takes_the_last_saved(store):
    models = ModelStore(store.engine)
    first = model_for("fills", "isolation_forest", TRAINED_AT, seed=1)
    second = dataclasses.replace(model_for("fills", "isolation_forest", TRAINED_AT, seed=2), samples=401)
    models.save(first)
    models.save(second)
    assert models.latest("fills").samples == 401
