"""Per-fill feature vectors, checked against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tradewatch.domain.detection.event_frame import EVENT_COLUMNS, NUMBER_PAYLOAD_COLUMNS
from tradewatch.domain.detection.features import FEATURES, fill_features
from tradewatch.domain.detection.metrics import OBSERVATION_COLUMNS

MIDNIGHT_NS = 1_767_571_200_000_000_000  # 2026-01-05T00:00:00Z
HOUR_NS = 3_600 * 1_000_000_000


def events_frame(rows: list[dict]) -> pd.DataFrame:
    """An event frame from partial rows (missing columns: None / NaN)."""
    full = []
    for seq, row in enumerate(rows):
        body = {name: (np.nan if name in NUMBER_PAYLOAD_COLUMNS else None) for name in EVENT_COLUMNS}
        body.update({"seq": seq, "event_id": f"e{seq}", "event_type": "fill", "source": "engine-1"})
        body.update(row)
        body.setdefault("received_at_ns", body["occurred_at_ns"])
        if body["received_at_ns"] is None:
            body["received_at_ns"] = body["occurred_at_ns"]
        full.append(body)
    frame = pd.DataFrame(full, columns=list(EVENT_COLUMNS))
    for name in ("seq", "occurred_at_ns", "received_at_ns"):
        frame[name] = frame[name].astype("int64")
    for name in NUMBER_PAYLOAD_COLUMNS:
        frame[name] = frame[name].astype("float64")
    return frame


def observations_frame(rows: list[tuple[str, str, float]], strategy_ids: dict[str, str] | None = None) -> pd.DataFrame:
    """Observations (event_id, metric, value) as the extractor would give them."""
    strategy_ids = strategy_ids or {}
    body = [{"seq": i, "event_id": event_id, "occurred_at_ns": 0, "metric": metric, "value": value, "symbol": None,
             "strategy_id": strategy_ids.get(event_id), "source": "engine-1"}
            for i, (event_id, metric, value) in enumerate(rows)]
    frame = pd.DataFrame(body, columns=list(OBSERVATION_COLUMNS))
    frame["seq"] = frame["seq"].astype("int64")
    frame["occurred_at_ns"] = frame["occurred_at_ns"].astype("int64")
    frame["value"] = frame["value"].astype("float64")
    return frame


def column(name: str) -> int:
    return FEATURES.index(name)


def test_two_fills_hand_computed():
    events = events_frame([
        # 06:00 UTC: a quarter of the day -> angle pi/2.
        {"event_id": "a", "symbol": "AAPL", "strategy_id": "s1", "occurred_at_ns": MIDNIGHT_NS + 6 * HOUR_NS,
         "quantity": 100.0, "price": 100.02, "bid": 99.99, "ask": 100.01},
        {"event_id": "quote", "event_type": "market_data", "symbol": "AAPL", "occurred_at_ns": MIDNIGHT_NS + 7 * HOUR_NS,
         "bid": 1.0, "ask": 2.0},
        # 12:00 UTC: half the day -> angle pi.
        {"event_id": "b", "symbol": "AAPL", "strategy_id": "s1", "occurred_at_ns": MIDNIGHT_NS + 12 * HOUR_NS,
         "quantity": 300.0, "price": 99.95, "bid": 99.90, "ask": 100.10},
    ])
    observations = observations_frame([("a", "slippage_bps", 1.5), ("a", "fill_latency_seconds", 0.25),
                                       ("b", "slippage_bps", -2.0), ("quote", "spread_bps", 10_000.0)])
    event_ids, symbols, strategy_ids, occurred, X = fill_features(events, observations, {})

    assert list(event_ids) == ["a", "b"]
    assert list(symbols) == ["AAPL", "AAPL"]
    assert list(strategy_ids) == ["s1", "s1"]
    assert list(occurred) == [MIDNIGHT_NS + 6 * HOUR_NS, MIDNIGHT_NS + 12 * HOUR_NS]
    assert X.dtype == np.float64 and X.shape == (2, 7)
    # a: mid 100.00, spread 0.02 / 100 * 1e4 = 2 bps, |100.02 - 100| / 100 * 1e4 = 2 bps, first fill -> 1.0
    assert X[0] == pytest.approx([1.5, 0.25, 1.0, 2.0, 2.0, 1.0, 0.0], abs=1e-9)
    # b: mid 100.00, spread 0.20 -> 20 bps, |99.95 - 100| -> 5 bps, 300 / median(100) = 3, no latency
    assert X[1, column("slippage_bps")] == pytest.approx(-2.0)
    assert math.isnan(X[1, column("fill_latency_seconds")])
    assert X[1, [2, 3, 4, 5, 6]] == pytest.approx([3.0, 20.0, 5.0, 0.0, -1.0], abs=1e-9)


def test_missing_quote_and_quantity_are_nan_and_strategy_comes_from_the_order():
    events = events_frame([
        {"event_id": "a", "symbol": "MSFT", "strategy_id": None, "occurred_at_ns": MIDNIGHT_NS, "quantity": 50.0,
         "price": 10.0},
        {"event_id": "b", "symbol": "MSFT", "occurred_at_ns": MIDNIGHT_NS + 1, "quantity": np.nan, "price": 10.0,
         "bid": 0.0, "ask": 10.0},
        {"event_id": "c", "symbol": "MSFT", "occurred_at_ns": MIDNIGHT_NS + 2, "quantity": 25.0, "price": 10.0},
    ])
    observations = observations_frame([("a", "fill_latency_seconds", 1.0)], strategy_ids={"a": "from-order"})
    features = fill_features(events, observations, {})
    assert list(features.strategy_ids) == ["from-order", None, None]
    X = features.X
    assert np.isnan(X[:, column("slippage_bps")]).all()
    assert np.isnan(X[:, [3, 4]]).all()  # no bid/ask, or a zero bid: no spread, no distance
    # a: first -> 1.0; b: no quantity -> NaN and not in the history; c: 25 / median(50) = 0.5
    assert X[0, 2] == 1.0 and math.isnan(X[1, 2]) and X[2, 2] == pytest.approx(0.5)
    # midnight -> angle 0
    assert X[0, 5:] == pytest.approx([0.0, 1.0])


def test_relative_size_keeps_a_window_per_symbol_across_batches():
    state: dict = {}
    first = events_frame([{"event_id": f"x{q}", "symbol": "X", "occurred_at_ns": MIDNIGHT_NS + q, "quantity": q}
                          for q in (10.0, 20.0, 30.0)]
                         + [{"event_id": "y", "symbol": "Y", "occurred_at_ns": MIDNIGHT_NS + 40, "quantity": 7.0}])
    X = fill_features(first, observations_frame([]), state, size_window=3).X
    # 10 -> 1 (no history); 20 / median(10) = 2; 30 / median(10, 20) = 2; Y first -> 1
    assert list(X[:, 2]) == pytest.approx([1.0, 2.0, 2.0, 1.0])

    second = events_frame([{"event_id": f"z{q}", "symbol": "X", "occurred_at_ns": MIDNIGHT_NS + 100 + q,
                            "quantity": q} for q in (40.0, 5.0)])
    X = fill_features(second, observations_frame([]), state, size_window=3).X
    # 40 / median(10, 20, 30) = 2; 5 / median(20, 30, 40) = 1/6
    assert list(X[:, 2]) == pytest.approx([2.0, 5.0 / 30.0])
    assert list(state["sizes"]["X"]) == [30.0, 40.0, 5.0]
    assert list(state["sizes"]["Y"]) == [7.0]
    assert state["sizes"]["X"].dtype == np.float64


def test_relative_size_matches_a_plain_loop():
    rng = np.random.default_rng(3)
    quantities = rng.lognormal(3.0, 1.0, 60)
    quantities[[5, 17]] = np.nan
    symbols = rng.choice(["A", "B"], 60)
    rows = [{"event_id": f"f{i}", "symbol": s, "occurred_at_ns": MIDNIGHT_NS + i, "quantity": q}
            for i, (s, q) in enumerate(zip(symbols, quantities))]
    state: dict = {}
    got = np.concatenate([fill_features(events_frame(rows[:25]), observations_frame([]), state, size_window=5).X[:, 2],
                          fill_features(events_frame(rows[25:]), observations_frame([]), state, size_window=5).X[:, 2]])
    history: dict[str, list[float]] = {"A": [], "B": []}
    expected = []
    for s, q in zip(symbols, quantities):
        if not np.isfinite(q):
            expected.append(np.nan)
            continue
        previous = history[s][-5:]
        expected.append(q / np.median(previous) if previous else 1.0)
        history[s].append(q)
    np.testing.assert_allclose(got, expected)


def test_symbols_without_fills_for_long_are_forgotten():
    state: dict = {}
    fill_features(events_frame([{"symbol": "OLD", "occurred_at_ns": MIDNIGHT_NS, "quantity": 1.0}]),
                  observations_frame([]), state, forget_after_seconds=3_600)
    fill_features(events_frame([{"symbol": "NEW", "occurred_at_ns": MIDNIGHT_NS + 2 * HOUR_NS, "quantity": 1.0}]),
                  observations_frame([]), state, forget_after_seconds=3_600)
    assert set(state["sizes"]) == {"NEW"} and set(state["last_fill_ns"]) == {"NEW"}


def test_a_batch_without_fills_gives_an_empty_matrix():
    events = events_frame([{"event_type": "market_data", "occurred_at_ns": MIDNIGHT_NS, "bid": 1.0, "ask": 2.0}])
    features = fill_features(events, observations_frame([]), {})
    assert features.X.shape == (0, len(FEATURES)) and features.count == 0
