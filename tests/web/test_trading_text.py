"""``trading_text`` (the trading families written as text, what /metrics serves) against the
prometheus_client path it replaces (``generate_latest`` of ``trading_families``): the same
families, samples and bytes for the same snapshot, and the collector's per-document cache."""

from __future__ import annotations

import gzip
import math

import orjson
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.web.conftest import SnapshotStream, make_client, many_symbols
from tradewatch.web.exporter import TradewatchCollector
from tradewatch.web.snapshots import SnapshotDocument, parse_document, snapshot_key
from tradewatch.web.trading_metrics import (
    EXPORTED_METRICS,
    trading_families,
    trading_text,
)

NAN = float("nan")
ODD = 'a"b\\c\nd'  # a double quote, a backslash and a newline


class _Families:
    def __init__(self, snapshot: dict):
        self.snapshot = snapshot

    def collect(self):
        return trading_families(self.snapshot)


def old_text(snapshot: dict) -> bytes:
    """What /metrics served for the trading families before: prometheus_client's objects, formatted."""
    return generate_latest(_Families(snapshot))


def parsed(text: bytes) -> list[tuple]:
    """Family by family, sample by sample; NaN made comparable."""
    def value(v: float):
        return "NaN" if math.isnan(v) else v

    return [(f.name, f.type, f.documentation,
             [(s.name, tuple(sorted(s.labels.items())), value(s.value)) for s in f.samples])
            for f in text_string_to_metric_families(text.decode("utf-8"))]


def assert_same(snapshot: dict) -> bytes:
    old, new = old_text(snapshot), trading_text(snapshot)
    old_families, new_families = parsed(old), parsed(new)
    assert [f[0] for f in new_families] == [f[0] for f in old_families]
    for old_family, new_family in zip(old_families, new_families):
        assert new_family[:3] == old_family[:3]
        assert len(new_family[3]) == len(old_family[3]), new_family[0]
        for old_sample, new_sample in zip(old_family[3], new_family[3]):
            assert new_sample == old_sample, new_family[0]
    assert new == old  # and byte for byte
    return new


@pytest.mark.parametrize("symbols, events", [(None, 500), (None, 6_000), (many_symbols(40), 20_000)])
def test_real_snapshots_render_as_the_prometheus_client_path(symbols, events):
    stream = SnapshotStream(symbols=symbols)
    stream.advance(events)
    snapshot = stream.document()["snapshot"]
    text = assert_same(snapshot)
    assert text.count(b"trading_instrument_position{") == len(snapshot["instruments"])
    # Through JSON, as the web process reads it.
    assert_same(orjson.loads(orjson.dumps(snapshot)))


def _histogram(buckets, total):
    return {"buckets": buckets, "sum": total}


def odd_snapshot() -> dict:
    return {
        "orders": [
            {"labels": [ODD, "buy", "limit", "accepted"], "count": 3},
            {"labels": ["AAPL", "sell", "market", "rejected"], "count": 2.5},
            {"labels": ["AAPL", "sell", "market"], "count": 1},            # wrong width: left out
            {"labels": ["MSFT", "buy", "limit", "accepted"], "count": None},  # no count: left out
            {"labels": ["MSFT", "buy", "limit", "expired"], "count": NAN},   # NaN: left out
            {"labels": ["MSFT", "buy", "limit", "cancelled"], "count": True},  # a bool is no count
            {"labels": [1, None, 2.5, "x\\"], "count": 12345678901234.0},   # labels str()ed; Go exponent
            "not a row",
        ],
        "signals": [{"labels": ["momentum", 'long "quoted"'], "count": 7}],
        "errors": None,
        "portfolio_value": 1_234_567.891,
        "unrealized_pnl": -0.0,
        "realized_pnl": NAN,          # not exported
        "daily_pnl": None,            # not exported
        "position_count": 4,
        "drawdown": 1e-7,
        "buying_power": float("inf"),  # not exported
        "gross_exposure": "12",        # not a number: not exported
        "net_exposure": -98_765_432.1,
        "broker_connected": {"engine-2": 0, "engine-1": 1, ODD: 1, "engine-3": None, "engine-4": NAN},
        "order_latency_histogram": _histogram([[0.005, 1], [0.1, 4], ["+Inf", 9]], 0.75),
        "signal_latency_histogram": _histogram([[0.01, 0], [1, 2]], 1.0),  # no +Inf: left out
        "slippage_histogram": _histogram([[-10, 1], [-1, 3], [0, 5], [2.5, 8], [10000000, 9], ["+Inf", 10]], -4.5),
        "risk_limits": [
            {"limit": "max_position", "symbol": ODD, "percent": 45.5},
            {"limit": "daily_loss", "symbol": None, "percent": 101},
            {"symbol": "AAPL", "percent": 3},                    # no limit: ""
            {"limit": "max_order", "symbol": "AAPL", "percent": None},
            7,
        ],
        "instruments": {
            "MSFT": {"position": 10, "notional": 4200.5, "unrealized_pnl": None},
            ODD: {"position": -3, "notional": NAN, "unrealized_pnl": 1e22},
            "AAPL": {"position": 0.0, "notional": 0, "unrealized_pnl": -12.25},
            "BAD": "not a row",
        },
    }


def test_escaping_missing_values_and_the_negative_bucket_histogram():
    text = assert_same(odd_snapshot()).decode()
    assert 'symbol="a\\"b\\\\c\\nd"' in text
    # Negative bounds: _count and _sum still there (the text format; see trading_metrics._histogram).
    assert "trading_slippage_basis_points_count 10.0\n" in text
    assert "trading_slippage_basis_points_sum -4.5\n" in text
    assert 'trading_slippage_basis_points_bucket{le="1e+07"} 9.0\n' in text
    assert "trading_signal_generation_seconds" not in text
    for absent in ("trading_realized_pnl_usd", "trading_daily_pnl_usd", "trading_buying_power_usd",
                   "trading_gross_exposure_usd"):
        assert absent not in text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {s.labels["symbol"] for s in families["trading_instrument_position"].samples} == {"AAPL", "MSFT", ODD}


@pytest.mark.parametrize("snapshot", [
    {},
    {"orders": [], "instruments": {}, "broker_connected": {}, "risk_limits": []},
    {"slippage_histogram": {"buckets": []}, "order_latency_histogram": {"sum": 1}, "signal_latency_histogram": []},
    {"order_latency_histogram": _histogram([["+Inf", 0]], None)},
])
def test_empty_and_partial_snapshots(snapshot):
    assert_same(snapshot)


def test_helps_are_escaped_like_prometheus_client(monkeypatch):
    import tradewatch.web.trading_metrics as tm

    spec = tm.EXPORTED_METRICS["trading_position_count"]
    odd = tm.MetricSpec(spec.kind, spec.labels, "back\\slash and\nnewline")
    monkeypatch.setitem(tm.EXPORTED_METRICS, "trading_position_count", odd)
    monkeypatch.setitem(tm._HEADERS, "trading_position_count", tm._header("trading_position_count"))
    assert_same({"position_count": 2})


# ------------------------------------------------------------------------------ the collector


class _Reader:
    def __init__(self, document: SnapshotDocument | None):
        self.document = document

    def read(self):
        return self.document


def _document(snapshot: dict, written_at_ns: int = 1) -> SnapshotDocument:
    return parse_document(orjson.dumps({"snapshot": snapshot, "written_at_ns": written_at_ns}))


def _registry(collector: TradewatchCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def type_lines(text: bytes) -> list[str]:
    return [line for line in text.decode().splitlines() if line.startswith("# TYPE ")]


def test_exposition_equals_generate_latest_of_the_registry_with_each_family_once():
    stream = SnapshotStream()
    stream.advance(3_000)
    reader = _Reader(_document(stream.document()["snapshot"], written_at_ns=10**18))
    collector = TradewatchCollector(snapshots=reader, clock_ns=lambda: 10**18 + 5 * 10**9)
    registry = _registry(collector)
    new, old = collector.exposition(registry), generate_latest(registry)
    assert sorted(parsed(new)) == sorted(parsed(old))
    assert sorted(new.splitlines()) == sorted(old.splitlines())
    types = type_lines(new)
    assert len(types) == len(set(types))
    # collect() outside exposition() still yields the trading families as objects
    assert any(metric.name == "trading_orders" for metric in collector.collect())


def test_the_text_is_rendered_once_per_document(monkeypatch):
    from tradewatch.web import exporter

    renders = []

    def counting(snapshot):
        renders.append(1)
        return trading_text(snapshot)

    monkeypatch.setattr(exporter, "trading_text", counting)
    first = _document({"position_count": 1}, written_at_ns=1)
    reader = _Reader(first)
    collector = TradewatchCollector(snapshots=reader)
    registry = _registry(collector)
    for _ in range(3):
        assert b"trading_position_count 1.0\n" in collector.exposition(registry)
    assert len(renders) == 1
    reader.document = parse_document(first.raw)  # the same bytes read again: still cached
    collector.exposition(registry)
    assert len(renders) == 1
    reader.document = _document({"position_count": 2}, written_at_ns=1)  # same written_at, other body
    assert b"trading_position_count 2.0\n" in collector.exposition(registry)
    assert len(renders) == 2
    reader.document = None  # no snapshot: no trading series
    text = collector.exposition(registry)
    assert b"trading_" not in text
    assert b'tradewatch_metrics_source_up{source="snapshot"} 0.0' in text


def test_a_failing_registry_leaves_the_collector_usable():
    collector = TradewatchCollector(snapshots=_Reader(_document({"position_count": 1})))

    class Broken:
        def collect(self):
            yield from collector.collect()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        collector.exposition(Broken())
    assert any(metric.name == "trading_position_count" for metric in collector.collect())


# ------------------------------------------------------------------------------ GET /metrics


def test_metrics_serves_each_family_once_and_the_same_trading_text_gzipped(web_settings, write_snapshot, redis_client):
    stream = SnapshotStream(symbols=many_symbols(12))
    stream.advance(4_000)
    document = stream.document()
    document["snapshot"]["instruments"][ODD] = {"position": 1, "notional": 2, "unrealized_pnl": 3}
    write_snapshot(document)
    client = make_client(web_settings)
    plain = client.get("/metrics")
    assert plain.status_code == 200
    types = type_lines(plain.content)
    assert len(types) == len(set(types)), sorted(t for t in types if types.count(t) > 1)
    assert {line.split()[2] for line in types} >= {n for n in EXPORTED_METRICS if n.startswith("trading_")}
    stored = parse_document(redis_client.get(snapshot_key(web_settings.broker_key_prefix)))
    assert old_text(stored.snapshot) in plain.content
    families = {f.name: f for f in text_string_to_metric_families(plain.text)}
    assert {"symbol": ODD} in [s.labels for s in families["trading_instrument_position"].samples]

    with client.stream("GET", "/metrics", headers={"Accept-Encoding": "gzip"}) as zipped:
        assert zipped.headers.get("content-encoding") == "gzip"
        body = gzip.decompress(b"".join(zipped.iter_raw()))
    assert old_text(stored.snapshot) in body
    types = type_lines(body)
    assert len(types) == len(set(types))
