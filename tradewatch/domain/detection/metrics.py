"""The metric streams detectors watch: names, units, and the observation frame's columns.

``observations.MetricExtractor`` derives observations from the event frame; each observation
is one value of one metric at one event. A stream is the observations of one metric for one
entity (a symbol or a strategy_id, chosen per detector in the pipeline configuration).

| metric | unit | one observation per | definition |
| --- | --- | --- | --- |
| slippage_bps | bps | fill | s (price - arrival_price) / arrival_price * 1e4, s = +1 buy, -1 sell (positive = cost); arrival_price from the fill, else the order's decision_price, else the fill's mid (bid + ask) / 2 |
| fill_latency_seconds | s | fill | fill occurred_at - the order's submitted occurred_at |
| acknowledgement_latency_seconds | s | accepted order event | accepted occurred_at - submitted occurred_at |
| round_trip_pnl_usd | account currency | position_update whose realized_pnl changed | realized_pnl - the previous realized_pnl of the (strategy_id, symbol) |
| rejection_rate | fraction 0..1 | accepted or rejected order event | rejected / (accepted + rejected) over the strategy's last ``rejection_window`` such events |
| order_rate_per_minute | orders / min | submitted order event | the strategy's submitted orders in the trailing 60 s, this one included |
| spread_bps | bps | market_data with bid and ask | (ask - bid) / mid * 1e4, mid = (bid + ask) / 2 |

Observation frame columns (one row per observation, in seq order):

| column | dtype | meaning |
| --- | --- | --- |
| seq | int64 | the event's seq |
| event_id | object (str) | the event's id |
| occurred_at_ns | int64 | the event's time, ns |
| metric | object (str) | one of METRICS |
| value | float64 | finite |
| symbol | object (str or None) | the event's symbol |
| strategy_id | object (str or None) | the event's strategy_id (a fill takes its order's when it has none) |
| source | object (str) | the emitting engine |
"""

from __future__ import annotations

SLIPPAGE_BPS = "slippage_bps"
FILL_LATENCY_SECONDS = "fill_latency_seconds"
ACKNOWLEDGEMENT_LATENCY_SECONDS = "acknowledgement_latency_seconds"
ROUND_TRIP_PNL_USD = "round_trip_pnl_usd"
REJECTION_RATE = "rejection_rate"
ORDER_RATE_PER_MINUTE = "order_rate_per_minute"
SPREAD_BPS = "spread_bps"

METRICS: tuple[str, ...] = (SLIPPAGE_BPS, FILL_LATENCY_SECONDS, ACKNOWLEDGEMENT_LATENCY_SECONDS, ROUND_TRIP_PNL_USD,
                            REJECTION_RATE, ORDER_RATE_PER_MINUTE, SPREAD_BPS)
OBSERVATION_COLUMNS: tuple[str, ...] = ("seq", "event_id", "occurred_at_ns", "metric", "value", "symbol",
                                        "strategy_id", "source")
#: Which column a stream may be keyed by.
STREAM_KEYS: tuple[str, ...] = ("symbol", "strategy_id")
