"""GET /metrics on real Redis and PostgreSQL: every exported name with its type and labels, the
values of the snapshot the real aggregator made, counters monotonic across a restart, the
pipeline's own numbers (kombu queue keys, the trail, rejected events)."""

from __future__ import annotations

import gzip
import math
import time
import uuid

import redis

from prometheus_client.parser import text_string_to_metric_families

from tradewatch.alerting.state import AlertState
from tradewatch.domain.events.timestamps import ns_to_datetime
from tradewatch.storage.database import make_engine
from tradewatch.storage.store import AuditStore
from tradewatch.tasks.app import QUEUES
from tradewatch.tasks.app import create_app as create_celery_app
from tradewatch.web.pipeline import queue_keys
from tradewatch.web.trading_metrics import EXPORTED_METRICS, series_names

from tests.factories import market_data
from tests.web.conftest import S, SnapshotStream, make_client


def scrape(client) -> dict:
    """{family name as the parser names it: family} of one scrape."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def family_name(name: str) -> str:
    return name[: -len("_total")] if EXPORTED_METRICS[name].kind == "counter" else name


def samples(families: dict, name: str, suffix: str = "") -> dict[tuple, float]:
    """{sorted label items: value} of ``name``'s samples named ``name + suffix``."""
    family = families[family_name(name)]
    wanted = name + suffix
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples if s.name == wanted}


def value(families: dict, name: str, **labels) -> float:
    return samples(families, name)[tuple(sorted(labels.items()))]


def test_every_exported_metric_is_present_with_its_type_and_labels(web_settings, write_snapshot, census_done,
                                                                    redis_client):
    stream = SnapshotStream()
    stream.advance(5_000)
    write_snapshot(stream.document())
    router = AlertState(redis_client, web_settings.broker_key_prefix)
    for counter in ("notifications_total:pagerduty-oncall", "deliveries_total:pagerduty-oncall:delivered",
                    "delivery_retries_total:slack-trading", "suppressed_total:silenced"):
        router.count(counter)
    client = make_client(web_settings)
    census_done(client)
    families = scrape(client)
    for name, spec in EXPORTED_METRICS.items():
        family = families.get(family_name(name))
        assert family is not None, f"{name} is not exported"
        assert family.type == spec.kind, (name, family.type)
        assert family.samples, f"{name} has no sample"
        for sample in family.samples:
            labels = set(sample.labels) - ({"le"} if spec.kind == "histogram" else set())
            assert labels == set(spec.labels), (name, sample)
    # Nothing exported that the table does not name (the rules and dashboards check against it).
    exported = {s.name for family in families.values() for s in family.samples}
    assert exported <= series_names() | {f"{n}_created" for n in series_names()}, exported - series_names()


def test_values_are_the_snapshots(web_settings, write_snapshot, census_done):
    stream = SnapshotStream()
    stream.advance(6_000)
    document = stream.document(written_at_ns=time.time_ns() - 5 * S)
    write_snapshot(document)
    snap = document["snapshot"]
    client = make_client(web_settings)
    families = scrape(client)

    orders = samples(families, "trading_orders_total")
    assert orders == {tuple(sorted(zip(("symbol", "side", "type", "status"), row["labels"]))): row["count"]
                      for row in snap["orders"]}
    assert sum(orders.values()) == sum(snap["orders_by_status"].values())
    assert samples(families, "trading_signals_total") == {
        (("direction", row["labels"][1]), ("strategy", row["labels"][0])): row["count"] for row in snap["signals"]}
    assert samples(families, "trading_errors_total") == {
        (("component", "market-data-feed"), ("error_type", "error")): 1.0,
        (("component", "risk-engine"), ("error_type", "critical")): 1.0,
    }
    for name, key in (("trading_portfolio_value_usd", "portfolio_value"), ("trading_unrealized_pnl_usd", "unrealized_pnl"),
                      ("trading_realized_pnl_usd", "realized_pnl"), ("trading_daily_pnl_usd", "daily_pnl"),
                      ("trading_position_count", "position_count"), ("trading_drawdown_percent", "drawdown"),
                      ("trading_buying_power_usd", "buying_power"), ("trading_gross_exposure_usd", "gross_exposure"),
                      ("trading_net_exposure_usd", "net_exposure")):
        assert snap[key] is not None, key
        assert value(families, name) == snap[key], name
    assert 0 <= value(families, "trading_drawdown_percent") < 1  # a fraction
    assert samples(families, "trading_broker_connection_status") == {
        (("source", source),): connected for source, connected in snap["broker_connected"].items()}
    assert value(families, "trading_broker_connection_status", source="engine-1") == 1

    for name, key in (("trading_order_latency_seconds", "order_latency_histogram"),
                      ("trading_signal_generation_seconds", "signal_latency_histogram"),
                      ("trading_slippage_basis_points", "slippage_histogram")):
        histogram = snap[key]
        buckets = {dict(labels)["le"]: v for labels, v in samples(families, name, "_bucket").items()}
        expected = {("+Inf" if le == "+Inf" else repr(float(le))): n for le, n in histogram["buckets"]}
        assert {le: v for le, v in buckets.items()} == {le: float(n) for le, n in expected.items()}, name
        assert samples(families, name, "_count")[()] == histogram["count"] > 0
        assert math.isclose(samples(families, name, "_sum")[()], histogram["sum"])

    assert samples(families, "trading_risk_limit_used_percent") == {
        (("limit", row["limit"]), ("symbol", row["symbol"])): row["percent"] for row in snap["risk_limits"]}
    for name, key in (("trading_instrument_position", "position"), ("trading_instrument_notional_usd", "notional"),
                      ("trading_instrument_unrealized_pnl_usd", "unrealized_pnl")):
        assert samples(families, name) == {(("symbol", symbol),): row[key] for symbol, row in snap["instruments"].items()}

    assert 5 <= value(families, "tradewatch_snapshot_age_seconds") < 15
    assert value(families, "tradewatch_snapshot_lag_seconds") == 1.5
    assert value(families, "tradewatch_snapshot_events_applied_total") == document["events_applied"] == 6_002
    assert samples(families, "tradewatch_metrics_source_up")[(("source", "snapshot"),)] == 1


def test_counters_are_monotonic_across_a_restart_of_the_web_service(web_settings, write_snapshot):
    stream = SnapshotStream()
    stream.advance(3_000)
    write_snapshot(stream.document())
    before = scrape(make_client(web_settings))
    stream.advance(3_000)  # the worker folded more events; the web process restarted meanwhile
    write_snapshot(stream.document())
    after = scrape(make_client(web_settings))

    for name, spec in EXPORTED_METRICS.items():
        if not name.startswith(("trading_", "tradewatch_snapshot")):
            continue
        if spec.kind == "counter":
            old, new = samples(before, name), samples(after, name)
            assert old, name
            for labels, count in old.items():
                assert new[labels] >= count, (name, labels)
            assert sum(new.values()) > sum(old.values()), name
        elif spec.kind == "histogram":
            for suffix in ("_bucket", "_count"):
                old, new = samples(before, name, suffix), samples(after, name, suffix)
                assert all(new[labels] >= v for labels, v in old.items()), (name, suffix)


def test_pipeline_numbers_from_the_broker_and_the_trail(web_settings, write_snapshot, migrated_database):
    # Real kombu messages, no worker: one default-priority and one priority-5 message wait in
    # "audit" (kombu keeps priority 5 in the list of step 3), one in "alerts".
    celery_app = create_celery_app(web_settings)
    celery_app.send_task("audit.ingest_batch", args=[[]], queue="audit")
    celery_app.send_task("audit.ingest_batch", args=[[]], queue="audit", priority=5)
    celery_app.send_task("alerts.tick", queue="alerts")

    engine = make_engine(migrated_database)
    store = AuditStore(engine)
    received_ns = time.time_ns() - 30 * S
    event = market_data(1, occurred_at=received_ns - 2 * S)
    store.ingest_items([event.model_dump_json(), "{\"not\": \"an event\"}", "[1]"], batch_id=uuid.uuid4().hex,
                       received_at=ns_to_datetime(received_ns))
    engine.dispose()

    client = make_client(web_settings)
    families = scrape(client)
    assert samples(families, "tradewatch_queue_depth") == {
        (("queue", queue),): {"audit": 2, "alerts": 1}.get(queue, 0) for queue in QUEUES}
    assert value(families, "tradewatch_rejected_events_total") == 2
    # Batches wait in the audit queue and the newest stored event came in 30 s ago: the trail is
    # at least 30 s behind (not the 2 s that event took to arrive).
    assert 30 <= value(families, "tradewatch_ingest_lag_seconds") < 40
    up = samples(families, "tradewatch_metrics_source_up")
    assert up[(("source", "broker"),)] == up[(("source", "database"),)] == 1
    # No snapshot yet: no trading series, and the snapshot source says so.
    assert up[(("source", "snapshot"),)] == 0
    assert not any(name.startswith("trading_") for name in families)

    # The queue drained: the lag is how late the newest event arrived.
    redis_client = redis.Redis.from_url(web_settings.broker_url)
    for queue in QUEUES:
        for key in queue_keys(queue, web_settings.broker_key_prefix):
            redis_client.delete(key)
    families = scrape(client)
    assert all(v == 0 for v in samples(families, "tradewatch_queue_depth").values())
    assert math.isclose(value(families, "tradewatch_ingest_lag_seconds"), 2.0, abs_tol=1e-3)


def test_the_scrape_answers_gzip_when_asked(web_settings, write_snapshot):
    stream = SnapshotStream()
    stream.advance(1_000)
    write_snapshot(stream.document())
    client = make_client(web_settings)
    response = client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert "trading_orders_total" in response.text  # httpx decodes it
    raw = client.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in raw.headers
    assert len(gzip.compress(raw.content)) < len(raw.content)


def test_an_unreachable_database_drops_only_its_series(web_settings, write_snapshot):
    stream = SnapshotStream()
    stream.advance(1_000)
    write_snapshot(stream.document())
    settings = web_settings.model_copy(update={"database_url": "postgresql://postgres@127.0.0.1:1/nowhere"})
    families = scrape(make_client(settings))
    up = samples(families, "tradewatch_metrics_source_up")
    assert up[(("source", "database"),)] == 0 and up[(("source", "snapshot"),)] == 1
    assert "tradewatch_rejected_events" not in families
    assert samples(families, "trading_orders_total")
