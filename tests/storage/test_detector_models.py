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


def test_latest_ids_is_the_newest_row_of_each_name_and_load_reads_those_rows(store):
    models = ModelStore(store.engine)
    assert models.latest_ids(["fills"]) == {} and models.load([]) == {}
    newer_id = models.save(model_for("fills", "isolation_forest", TRAINED_AT + DAY_NS, seed=1))
    models.save(model_for("fills", "isolation_forest", TRAINED_AT, seed=2))  # saved later, trained earlier
    other_id = models.save(model_for("other", "autoencoder", TRAINED_AT, seed=3))
    assert models.latest_ids(["fills", "other", "missing"]) == {"fills": newer_id, "other": other_id}
    loaded = models.load([newer_id, other_id])
    assert (loaded[newer_id].trained_at_ns, loaded[other_id].algorithm) == (TRAINED_AT + DAY_NS, "autoencoder")
    many = models.latest_many(["fills", "missing"])
    assert many["fills"].trained_at_ns == TRAINED_AT + DAY_NS and many["missing"] is None


MODEL_PIPELINE = """
detectors:
  - {kind: model, name: fills_if, algorithm: isolation_forest, model_name: shared_if}
  - {kind: model, name: fills_svm, algorithm: one_class_svm}
"""


def test_a_detector_with_its_own_model_name_gets_its_model_and_only_changed_models_are_loaded(store):
    """The wiring path: changed_models builds the map set_models takes, keyed by model name."""
    from tradewatch.domain.detection.pipeline import DetectionPipeline, PipelineConfig
    from tradewatch.tasks.wiring import changed_models

    pipeline = DetectionPipeline(PipelineConfig.from_yaml_text(MODEL_PIPELINE, "test"))
    by_name = {detector.name: detector for detector in pipeline.detectors}
    models = ModelStore(store.engine)
    first = model_for("shared_if", "isolation_forest", TRAINED_AT, seed=1)
    first_id = models.save(first)
    # A model called like the detector, not like its model_name: not the one it must get.
    models.save(model_for("fills_if", "isolation_forest", TRAINED_AT + DAY_NS, seed=2))

    handed: dict = {}
    changed = changed_models(pipeline.model_configs, models, handed)
    assert set(changed) == {"shared_if", "fills_svm"} and changed["fills_svm"] is None
    pipeline.set_models(changed)
    assert by_name["fills_if"].model.metadata() == first.metadata()
    assert by_name["fills_svm"].model is None
    assert handed == {"shared_if": first_id, "fills_svm": None}

    assert changed_models(pipeline.model_configs, models, handed) == {}  # nothing retrained: nothing loaded

    second = model_for("shared_if", "isolation_forest", TRAINED_AT + DAY_NS, seed=3)
    second_id = models.save(second)
    changed = changed_models(pipeline.model_configs, models, handed)
    assert list(changed) == ["shared_if"]
    pipeline.set_models(changed)
    assert by_name["fills_if"].model.metadata() == second.metadata()
    assert handed == {"shared_if": second_id, "fills_svm": None}


def test_retrain_fits_on_the_orders_and_fills_of_the_window_and_saves_the_models(store):
    """25 fills at 11..35 s, each with its order submitted 0.5 s before, and a quote per fill.
    The window [10 s, 100 s) with a 10 s warmup reads the 50 orders and fills (no quote); a
    window [21 s, 36 s) holds 15 fills < MIN_TRAINING_ROWS: nothing is trained."""
    import time
    import uuid
    from decimal import Decimal

    from tests.factories import BASE_NS
    from tradewatch.domain.detection.pipeline import DetectionPipeline, PipelineConfig
    from tradewatch.domain.events import FillEvent, FillPayload, MarketDataEvent, MarketDataPayload, OrderEvent, OrderPayload
    from tradewatch.domain.events.timestamps import ns_to_datetime
    from tradewatch.storage.detection import DetectionStore
    from tradewatch.storage.models import retrain

    S = 1_000_000_000
    items = []
    for k in range(25):
        at = BASE_NS + (11 + k) * S
        items += [
            OrderEvent(occurred_at=at - S // 2, source="engine-1", strategy_id="mm-1", symbol="AAPL", order_id=f"o{k}",
                       payload=OrderPayload(side="buy", quantity=Decimal(10 + k), order_type="market", status="submitted")),
            FillEvent(occurred_at=at, source="engine-1", strategy_id="mm-1", symbol="AAPL", order_id=f"o{k}",
                      payload=FillPayload(fill_id=f"f{k}", side="buy", quantity=Decimal(10 + k),
                                          price=Decimal("100.00") + Decimal(k % 5) / 100, arrival_price=Decimal("100.00"))),
            MarketDataEvent(occurred_at=at, source="feed-1", symbol="AAPL",
                            payload=MarketDataPayload(bid=Decimal("99.99"), ask=Decimal("100.01"))),
        ]
    store.ingest_items([e.model_dump_json() for e in items], batch_id=uuid.uuid4().hex,
                       received_at=ns_to_datetime(BASE_NS + 200 * S))
    detection = DetectionStore(store.engine)
    deadline = time.monotonic() + 30  # PostgreSQL's watermark may hold the batch back a moment
    while len(detection.follow_frame(None, limit=100)[0]) < len(items) and time.monotonic() < deadline:
        time.sleep(0.05)
    pipeline = DetectionPipeline(PipelineConfig.from_yaml_text(MODEL_PIPELINE, "test"))
    models = ModelStore(store.engine)

    report = retrain(pipeline, detection, models, end_ns=BASE_NS + 100 * S, window_ns=90 * S, warmup_ns=10 * S)
    assert (report.window_start_ns, report.window_end_ns, report.events) == (BASE_NS + 10 * S, BASE_NS + 100 * S, 50)
    assert report.skipped == []
    assert [(model.name, model.algorithm, model.samples) for model, _ in report.trained] == [
        ("shared_if", "isolation_forest", 25), ("fills_svm", "one_class_svm", 25)]
    assert models.latest_ids(["shared_if", "fills_svm"]) == {model.name: model_id for model, model_id in report.trained}
    (shared, _), _ = report.trained
    assert shared.details["missing_fraction"]["fill_latency_seconds"] == 0.0  # every fill found its order

    short = retrain(pipeline, detection, models, end_ns=BASE_NS + 36 * S, window_ns=15 * S, warmup_ns=0)
    assert (short.trained, short.skipped) == ([], ["shared_if", "fills_svm"])
    assert len(models.list()) == 2
