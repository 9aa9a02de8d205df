"""The shared stream helpers: one key format, one stream split, one anomaly builder."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tests.domain.detection.builders import observation_frame
from tradewatch.domain.detection.anomaly import Anomaly
from tradewatch.domain.detection.rejection_spike import RejectionSpikeConfig
from tradewatch.domain.detection.streams import ObservationRows, condition_key, make_anomaly, split_streams
from tradewatch.domain.detection.zscore import ZScoreConfig


def test_make_key_is_the_anomaly_key_format():
    assert Anomaly.make_key("slip", "slippage_bps", "symbol", "AAPL") == "slip|slippage_bps|symbol=AAPL"
    anomaly = Anomaly(detector="slip", anomaly_type="spike", severity="info", metric="slippage_bps", observed=1.0,
                      baseline=0.0, score=1.0, entity_kind="symbol", entity="AAPL", detected_at_ns=0)
    assert anomaly.key == "slip|slippage_bps|symbol=AAPL"
    config = ZScoreConfig(name="slip", kind="zscore", metric="slippage_bps", by="strategy_id")
    assert condition_key(config, "alpha") == "slip|slippage_bps|strategy_id=alpha"


def frame():
    # rows: 0 AAPL 1.0, 1 MSFT nan, 2 AAPL inf, 3 (no symbol) 4.0, 4 MSFT 5.0, 5 AAPL 6.0 (another metric)
    first = observation_frame([1.0, math.nan, math.inf, 4.0, 5.0], metric="slippage_bps",
                              occurred_at_ns=np.arange(5) * 10, symbols=["AAPL", "MSFT", "AAPL", None, "MSFT"])
    second = observation_frame([6.0], metric="spread_bps", occurred_at_ns=[50], symbols="AAPL", start=5)
    return pd.concat([first, second], ignore_index=True)


def test_split_streams_keeps_or_drops_non_finite_values_as_asked():
    finite = split_streams(frame(), "slippage_bps", "symbol", finite_only=True)
    assert [(s.key, s.rows.tolist(), s.values.tolist()) for s in finite] == [("AAPL", [0], [1.0]), ("MSFT", [4], [5.0])]
    every = split_streams(frame(), "slippage_bps", "symbol", finite_only=False)
    assert [(s.key, s.rows.tolist()) for s in every] == [("AAPL", [0, 2]), ("MSFT", [1, 4])]
    assert every[0].values[1] == math.inf and math.isnan(every[1].values[0])
    assert split_streams(frame().iloc[:0], "slippage_bps", "symbol", finite_only=False) == []


def test_make_anomaly_takes_the_row_and_the_explicit_severity_metric_and_event_ids():
    observations = frame()
    table = ObservationRows.of(observations)
    config = RejectionSpikeConfig(name="rej", by="symbol")  # a rule config: no metric of its own
    anomaly = make_anomaly(config, "rate_spike", table, 4, "MSFT", severity="critical", metric="rejection_rate",
                           observed=0.5, baseline=0.25, score=2.0, context={"k": 1}, event_ids=("a", "b"))
    assert (anomaly.detector, anomaly.anomaly_type, anomaly.severity, anomaly.metric) == \
        ("rej", "rate_spike", "critical", "rejection_rate")
    assert (anomaly.entity_kind, anomaly.entity, anomaly.detected_at_ns) == ("symbol", "MSFT", 40)
    assert (anomaly.symbol, anomaly.strategy_id, anomaly.event_ids) == ("MSFT", "momentum", ("a", "b"))
    assert anomaly.key == "rej|rejection_rate|symbol=MSFT"
    window = ZScoreConfig(name="z", kind="zscore", metric="slippage_bps")
    default = make_anomaly(window, "spike", table, 3, "x", severity="warning", observed=4.0, baseline=1.0, score=3.0,
                           context={})
    # metric from the config, event id from the row, a missing symbol stays None
    assert (default.metric, default.event_ids, default.symbol) == ("slippage_bps", ("e3",), None)
