"""The event frame: the trail's events as one DataFrame, the detectors' input.

One row per event, in seq order. Envelope columns, then the payload fields detectors read
(float64 NaN / None where the event type has no such field):

| column | dtype | meaning |
| --- | --- | --- |
| seq | int64 | ingest order (0.. for events not yet persisted) |
| event_id | object (str) | the event's UUID |
| event_type | object (str) | market_data, signal, order, fill, ... |
| occurred_at_ns | int64 | event time at the engine, ns since the epoch (UTC) |
| received_at_ns | int64 | when tradewatch accepted it, ns (= occurred_at_ns when unknown) |
| source | object (str) | the emitting engine or service |
| strategy_id, symbol, signal_id, order_id | object (str or None) | correlation keys |
| side | object | buy / sell (order, fill) |
| status | object | order status (order) |
| venue | object | order, fill |
| fill_id | object | fill |
| liquidity | object | maker / taker (fill) |
| level, component | object | system events |
| quantity | float64 | order, fill, position_update (signed there) |
| price | float64 | fill price |
| bid, ask, last, volume | float64 | market_data; bid / ask also on fills |
| arrival_price, decision_price, fee | float64 | fill / order |
| realized_pnl, unrealized_pnl | float64 | position_update, currency |

``event_frame(events)`` builds it from validated events (``EventBase`` models or the trail's
``StoredEvent``); the storage layer reads the same columns straight from the database.

Trusted time. occurred_at is stamped by the engine, whose clock can be wrong (validation
accepts any time up to 2100); received_at is stamped by tradewatch. Where an event's time
advances a clock of ours (a watermark, "the batch's latest time", a model's age), one event
stamped hours ahead must not move it: ``trusted_times`` caps each occurred_at at received_at +
``MAX_CLOCK_LEAD_NS``:

    trusted_ns = min(occurred_at_ns, received_at_ns + MAX_CLOCK_LEAD_NS),  MAX_CLOCK_LEAD_NS = 60 s

An engine clock behind tradewatch's is left alone (a late event is ordinary: a backlog, a
replay). Measured values (latencies, skew) stay differences of occurred_at.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Iterable

import numpy as np
import pandas as pd

from tradewatch.domain.events.models import EventBase
from tradewatch.domain.events.timestamps import NS_PER_SECOND
from tradewatch.domain.trail.records import StoredEvent

ENVELOPE_COLUMNS = ("seq", "event_id", "event_type", "occurred_at_ns", "received_at_ns", "source",
                    "strategy_id", "symbol", "signal_id", "order_id")
TEXT_PAYLOAD_COLUMNS = ("side", "status", "venue", "fill_id", "liquidity", "level", "component")
NUMBER_PAYLOAD_COLUMNS = ("quantity", "price", "bid", "ask", "last", "volume", "arrival_price", "decision_price",
                          "fee", "realized_pnl", "unrealized_pnl")
EVENT_COLUMNS = ENVELOPE_COLUMNS + TEXT_PAYLOAD_COLUMNS + NUMBER_PAYLOAD_COLUMNS
_INT_COLUMNS = ("seq", "occurred_at_ns", "received_at_ns")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: How far ahead of its receipt an event's occurred_at is believed (see "Trusted time" above).
MAX_CLOCK_LEAD_NS = 60 * NS_PER_SECOND


def empty_event_frame() -> pd.DataFrame:
    return _typed(pd.DataFrame({name: [] for name in EVENT_COLUMNS}))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for name in _INT_COLUMNS:
        frame[name] = frame[name].astype("int64")
    for name in NUMBER_PAYLOAD_COLUMNS:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    for name in ENVELOPE_COLUMNS + TEXT_PAYLOAD_COLUMNS:
        if name not in _INT_COLUMNS:
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame[list(EVENT_COLUMNS)]


def trusted_times(events: pd.DataFrame) -> np.ndarray:
    """Per event (int64 ns): min(occurred_at_ns, received_at_ns + MAX_CLOCK_LEAD_NS). Engines'
    clocks can be wrong; received_at is tradewatch's own (module docstring, "Trusted time")."""
    occurred = events["occurred_at_ns"].to_numpy(dtype=np.int64)
    received = events["received_at_ns"].to_numpy(dtype=np.int64)
    return np.minimum(occurred, received + MAX_CLOCK_LEAD_NS)


def _number(value) -> float:
    if value is None:
        return np.nan
    return float(value) if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool) else np.nan


def event_row(event: EventBase, *, seq: int = 0, received_at_ns: int | None = None) -> dict:
    payload = getattr(event, "payload", None)
    fields = payload.model_dump() if payload is not None else {}
    row = {
        "seq": seq, "event_id": str(event.event_id), "event_type": event.event_type,
        "occurred_at_ns": int(event.occurred_at),
        "received_at_ns": int(event.occurred_at) if received_at_ns is None else int(received_at_ns),
        "source": event.source, "strategy_id": event.strategy_id, "symbol": event.symbol,
        "signal_id": event.signal_id, "order_id": event.order_id,
    }
    for name in TEXT_PAYLOAD_COLUMNS:
        value = fields.get(name)
        row[name] = None if value is None else str(value)
    for name in NUMBER_PAYLOAD_COLUMNS:
        row[name] = _number(fields.get(name))
    return row


def event_frame(events: Iterable[EventBase | StoredEvent]) -> pd.DataFrame:
    """The event frame of ``events`` (models, or stored events with their seq and received_at)."""
    rows = []
    for position, item in enumerate(events):
        if isinstance(item, StoredEvent):
            # Exact integer arithmetic: a float timestamp can be a microsecond off.
            received = (item.received_at - _EPOCH) // timedelta(microseconds=1) * 1_000
            rows.append(event_row(item.event, seq=item.seq, received_at_ns=received))
        else:
            rows.append(event_row(item, seq=position))
    if not rows:
        return empty_event_frame()
    return _typed(pd.DataFrame(rows, columns=list(EVENT_COLUMNS)))
