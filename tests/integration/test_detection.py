"""Detection end to end: AuditClient -> Redis -> audit.ingest_batch -> (fan-out) detect.batch ->
anomalies in PostgreSQL and TradingAnomaly alerts in the router, with a real `celery worker`
(and `celery beat` for the stale-feed tick). Thresholds come from a pipeline file the test writes."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.factories import BASE_NS
from tests.integration.harness import ConsumerWorkers, wait_until
from tradewatch.alerting.state import AlertState
from tradewatch.domain.events import FillEvent, FillPayload, MarketDataEvent, MarketDataPayload
from tradewatch.storage.detection import DetectionStore

pytestmark = pytest.mark.integration

S = 1_000_000_000

SLIPPAGE_PIPELINE = """
quiet_seconds: 300
detectors:
  - {kind: slippage_spike, name: slippage, threshold_bps: 50, critical_bps: 200, by: symbol}
"""

STALE_FEED_PIPELINE = """
detectors:
  - {kind: stale_feed, name: feed, max_silence_seconds: 2}
"""


@pytest.fixture
def detecting(deployment, tmp_path):
    """The deployment with a pipeline file, fan-out on and a log-only route tree; yields a
    function starting one worker on ``queues`` with the ``pipeline`` text, returning (worker,
    detection store, router state)."""
    workers = ConsumerWorkers(deployment, tmp_path, group_by=("alertname", "symbol", "source"))

    def start(pipeline: str, queues: str = "audit,analysis,alerts"):
        path = tmp_path / "pipeline.yaml"
        path.write_text(pipeline)
        return workers.start(DetectionStore, queues=queues, name="detect", env={
            "TRADEWATCH_DETECTION_PIPELINE": str(path),
            "TRADEWATCH_INGEST_FANOUT": "true",
        })

    yield start
    workers.close()


def fill(n: int, symbol: str, price: str, at_ns: int) -> FillEvent:
    return FillEvent(occurred_at=at_ns, source="engine-1", strategy_id="mm-1", symbol=symbol, order_id=f"o-{n}",
                     payload=FillPayload(fill_id=f"f-{n}", side="buy", quantity=Decimal(10), price=Decimal(price),
                                         arrival_price=Decimal("100.00")))


def quote(at_ns: int, source: str = "feed-1") -> MarketDataEvent:
    return MarketDataEvent(occurred_at=at_ns, source=source, symbol="AAPL",
                           payload=MarketDataPayload(bid=Decimal("99.99"), ask=Decimal("100.01")))


def anomaly_alerts(state: AlertState) -> set[tuple[str, ...]]:
    return {(a.labels["metric"], a.labels.get("symbol") or a.labels.get("source"), a.labels["severity"])
            for a in state.firing_alerts() if a.alertname == "TradingAnomaly"}


def test_ingested_fills_raise_anomalies_through_detect_batch_and_their_alerts_reach_the_router(deployment, detecting):
    worker, detection, state = detecting(SLIPPAGE_PIPELINE)
    client = deployment.client()
    events = [fill(k, "AAPL", "100.01", BASE_NS + k * S) for k in range(20)]
    events += [fill(20, "AAPL", "102.50", BASE_NS + 20 * S),  # 250 bps: above critical_bps
               fill(21, "MSFT", "100.60", BASE_NS + 21 * S),  # 60 bps: above threshold_bps
               fill(22, "MSFT", "100.02", BASE_NS + 22 * S)]
    for event in events:
        assert client.emit(event)
    assert client.flush(60)

    wait_until(lambda: len(detection.open_anomalies()) == 2, 60, 0.2, f"two open anomalies; worker log:\n{worker.log()[-3000:]}")
    found = {(a["key"], a["severity"], round(a["observed"], 6), a["detected_at_ns"]) for a in detection.open_anomalies()}
    assert found == {("slippage|slippage_bps|symbol=AAPL", "critical", 250.0, BASE_NS + 20 * S),
                     ("slippage|slippage_bps|symbol=MSFT", "warning", 60.0, BASE_NS + 21 * S)}
    assert detection.state()[2] == len(events)

    expected = {("slippage_bps", "AAPL", "critical"), ("slippage_bps", "MSFT", "warning")}
    wait_until(lambda: anomaly_alerts(state) == expected, 30, 0.2, f"the alerts in the router; log:\n{worker.log()[-3000:]}")
    wait_until(lambda: worker.log().count('"alert.notification"') >= 2, 30, 0.2, "the log receiver's notifications")
    log = worker.log()
    assert '"detect.batch"' in log
    assert "slippage_bps on AAPL 250 bps against a baseline of 50 bps (threshold multiples 5)" in log


def test_a_silent_feed_is_reported_by_the_beat_tick_and_cleared_when_it_is_heard_again(deployment, detecting):
    worker, detection, state = detecting(STALE_FEED_PIPELINE)
    client = deployment.client()
    for k in range(5):
        assert client.emit(quote(time.time_ns()))
    assert client.flush(60)
    # detect.batch (fan-out) records when the feed was last heard; no tick has run yet.
    wait_until(lambda: detection.state()[2] == 5, 60, 0.2, f"the quotes applied; worker log:\n{worker.log()[-3000:]}")
    assert detection.open_anomalies() == []

    deployment.beat().start()  # detect-tick every 5 s: the silence is past 2 s by then
    wait_until(lambda: len(detection.open_anomalies()) == 1, 60, 0.2, f"the stale feed; worker log:\n{worker.log()[-3000:]}")
    (stale,) = detection.open_anomalies()
    assert stale["key"] == "feed|feed_silence_seconds|source=feed-1" and stale["anomaly_type"] == "stale_feed"
    assert stale["observed"] > 2.0 and stale["baseline"] == 2.0
    wait_until(lambda: anomaly_alerts(state) == {("feed_silence_seconds", "feed-1", "warning")}, 30, 0.2,
               "the stale-feed alert in the router")

    # The feed is heard again: the next detect.batch clears the condition and resolves the alert.
    assert client.emit(quote(time.time_ns()))
    assert client.flush(60)
    wait_until(lambda: detection.open_anomalies() == [], 60, 0.2, "the condition cleared")
    (resolved,) = detection.anomalies(status="resolved")
    assert resolved["resolved_reason"] == "cleared" and resolved["resolved_at_ns"] > stale["detected_at_ns"] - 5 * S
    wait_until(lambda: anomaly_alerts(state) == set(), 30, 0.2, "the alert resolved in the router")


MODEL_PIPELINE = """
detectors:
  - {kind: model, name: fills_if, algorithm: isolation_forest, min_samples: 20}
"""


def test_retrain_fits_the_model_a_model_detector_lacked_and_the_detector_starts_using_it(deployment, detecting):
    worker, detection, state = detecting(MODEL_PIPELINE, queues="audit,analysis,alerts,reports")
    client = deployment.client()
    start_ns = time.time_ns() - 120 * S
    for k in range(30):
        assert client.emit(fill(k, "AAPL", f"100.{k % 7:02d}", start_ns + k * S))
    assert client.flush(60)
    # No model yet: the detector reports itself unusable, once.
    wait_until(lambda: detection.state()[2] == 30, 60, 0.2, f"the fills applied; log:\n{worker.log()[-3000:]}")
    (unusable,) = detection.open_anomalies()
    assert unusable["anomaly_type"] == "model_unusable" and unusable["entity"] == "fills_if"
    assert "no trained model named 'fills_if'" in unusable["context"]["reason"]

    deployment.app().send_task("detect.retrain")  # routed to the reports queue
    from tradewatch.storage.models import ModelStore

    models = ModelStore(detection.engine)
    wait_until(lambda: models.list(), 120, 0.5, f"the trained model; log:\n{worker.log()[-3000:]}")
    (model,) = models.list()
    assert (model["name"], model["algorithm"], model["samples"]) == ("fills_if", "isolation_forest", 30)
    assert '"detect.model_trained"' in worker.log()

    # The next batch is judged with the new model: the unusable episode is cleared.
    assert client.emit(fill(30, "AAPL", "100.03", time.time_ns()))
    assert client.flush(60)
    wait_until(lambda: detection.anomalies(status="resolved"), 60, 0.2, f"the episode cleared; log:\n{worker.log()[-3000:]}")
    (resolved,) = detection.anomalies(status="resolved")
    assert resolved["key"] == unusable["key"] and resolved["resolved_reason"] == "cleared"


def test_detection_tasks_are_routed_to_their_pools_and_ticked_by_beat(deployment):
    from tradewatch.beat_schedule import BEAT_SCHEDULE
    from tradewatch.tasks.ingest import DOWNSTREAM_TASKS

    router = deployment.app().amqp.router
    assert "detect.batch" in DOWNSTREAM_TASKS
    assert {name: router.route({}, name)["queue"].name for name in ("detect.batch", "detect.tick", "detect.retrain")} == {
        "detect.batch": "analysis", "detect.tick": "analysis", "detect.retrain": "reports"}
    tick = BEAT_SCHEDULE["detect-tick"]
    assert (tick["task"], tick["schedule"], tick["options"]) == ("detect.tick", 5.0, {"queue": "analysis", "expires": 5})
    assert BEAT_SCHEDULE["detect-retrain"]["task"] == "detect.retrain"
