"""Metric observations: the event frame turned into the streams the detectors watch.

``MetricExtractor.extract(events, state)`` returns the observation frame of ``metrics`` (columns
``metrics.OBSERVATION_COLUMNS``, one row per observation, in the events' order, an event's
observations in ``metrics.METRICS`` order) and carries what later batches need in ``state``.
Definitions (``metrics`` has the table):

* ``slippage_bps`` (one per fill) = s (price - a) / a * 1e4, s = +1 buy / -1 sell, a = the
  fill's arrival_price, else its order's decision_price, else the fill's mid (bid + ask) / 2.
  Positive = a cost.
* ``fill_latency_seconds`` (one per fill of a known order) = fill occurred_at - the order's
  submitted occurred_at.
* ``acknowledgement_latency_seconds`` (one per accepted order event of a known order) =
  accepted occurred_at - submitted occurred_at. Latencies are as measured: a negative one means
  the clocks disagree (the clock-skew rule's business, not hidden here).
* ``round_trip_pnl_usd`` (one per position_update whose realized_pnl differs from the previous
  one of its (strategy_id, symbol)) = realized_pnl - that previous realized_pnl. The first
  realized_pnl of a pair only sets the reference.
* ``rejection_rate`` (one per accepted or rejected order event) = rejected / (accepted +
  rejected) over the strategy's last ``rejection_window`` such events, this one included.
* ``order_rate_per_minute`` (one per submitted order event) = the strategy's submitted orders
  with trusted time in (t - 60 s, t], t = this one's trusted time, this one included. Orders
  older than 60 s before the latest submission seen for the strategy are forgotten (that bounds
  the state); they could only matter to an event arriving more than a minute out of time order.
  Trusted times (``event_frame.trusted_times``: occurred_at capped at received_at + 60 s), so
  one submission stamped hours ahead cannot make the strategy's later ones look a minute old.
* ``spread_bps`` (one per market_data with bid and ask) = (ask - bid) / mid * 1e4.

Only finite values are emitted: an observation whose inputs are missing (a fill without any
reference price, an order event without strategy_id for the per-strategy rates) is skipped.

Known orders. A ``submitted`` order event records (submitted time, strategy_id, decision_price)
under its order_id; a later submitted event for the same order_id (a resubmission) replaces it.
A fill or an accepted event uses the record of its order_id made before it (in event order).
A record is forgotten once its submission is more than ``order_ttl_seconds`` older than the
latest event time seen (the watermark, a running maximum of the events' trusted times,
``event_frame.trusted_times``, over every event; the submission's age is also measured by its
trusted time): the order's later fills then get no latency (their slippage falls back to their
own prices) and take no strategy_id from it. Trusted, not raw occurred_at: one event from an
engine whose clock runs a day ahead would otherwise expire every engine's orders for a day (no
fill or acknowledgement latency anywhere); the latencies themselves stay differences of
occurred_at. Defining the expiry against the watermark at each event, rather
than at batch boundaries, is what makes the observations independent of how the trail is cut
into batches: an expired record can never be used again, so pruning it loses nothing.

State (``state``, mutated in place; plain types and numpy arrays only):

* ``watermark_ns``: the latest trusted time seen.
* ``orders``: the live order records as parallel arrays sorted by ``key``: ``key`` (int64, the
  order_id hashed with pandas' fixed-key SipHash, ``pandas.util.hash_array``: 8 bytes instead
  of the text, and lookups by binary search; two ids colliding is a ~1e-8 chance among a
  million live orders), ``submitted_ns`` (int64, occurred_at), ``trusted_ns`` (int64, the
  submission's trusted time, for expiry; absent in older states: = submitted_ns),
  ``decision_price`` (float64, NaN when
  unknown), ``strategy`` (int64 index into ``strategies``, -1 for none), ``strategies`` (names).
* ``realized_pnl``: {strategy_id or "": {symbol or "": last realized_pnl}}.
* ``outcomes``: {strategy_id: the last ``rejection_window`` outcomes, 1 rejected / 0 accepted}.
* ``submitted``: {strategy_id: sorted submission trusted times (ns) of its trailing minute}.

Implementation: fills and quotes (most events) are vectorised, and so is the realized P&L
differencing (a comprehension only builds the position updates' (strategy_id, symbol) keys);
the order status events run through a Python loop, for the two per-strategy running rates.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from typing import Any

import numpy as np
import pandas as pd

from tradewatch.domain.detection.event_frame import trusted_times
from tradewatch.domain.detection.metrics import (
    ACKNOWLEDGEMENT_LATENCY_SECONDS,
    FILL_LATENCY_SECONDS,
    METRICS,
    OBSERVATION_COLUMNS,
    ORDER_RATE_PER_MINUTE,
    REJECTION_RATE,
    ROUND_TRIP_PNL_USD,
    SLIPPAGE_BPS,
    SPREAD_BPS,
)
from tradewatch.domain.events.timestamps import NS_PER_SECOND

ORDER_RATE_WINDOW_NS = 60 * NS_PER_SECOND
_RANK = {name: rank for rank, name in enumerate(METRICS)}
_NO_KEY = ""  # a missing strategy_id / symbol in the realized_pnl map (identifiers are never empty)


def empty_observation_frame() -> pd.DataFrame:
    return _frame(np.zeros(0, np.int64), np.zeros(0, object), np.zeros(0, np.int64), np.zeros(0, object),
                  np.zeros(0, np.float64), np.zeros(0, object), np.zeros(0, object), np.zeros(0, object))


def _frame(seq, event_id, occurred_at_ns, metric, value, symbol, strategy_id, source) -> pd.DataFrame:
    # Explicit object Series: pandas 3 would otherwise infer its Arrow-backed str dtype.
    columns = dict(seq=seq, event_id=event_id, occurred_at_ns=occurred_at_ns, metric=metric, value=value,
                   symbol=symbol, strategy_id=strategy_id, source=source)
    return pd.DataFrame({name: pd.Series(columns[name], dtype=_DTYPES[name], copy=False)
                         for name in OBSERVATION_COLUMNS})


_DTYPES = dict(seq="int64", event_id=object, occurred_at_ns="int64", metric=object, value="float64", symbol=object,
               strategy_id=object, source=object)


def _text(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A text column as an object array, None where missing (NaN from SQL, pandas' str dtype)."""
    column = frame[name]
    missing = column.isna()
    if column.dtype == object and not missing.any():
        return column.to_numpy()
    return column.astype(object).where(~missing, None).to_numpy()


def _hash_keys(ids: np.ndarray) -> np.ndarray:
    """int64 keys of text ids (pandas' SipHash with its fixed key: stable across processes)."""
    if len(ids) == 0:
        return np.zeros(0, np.int64)
    return pd.util.hash_array(ids.astype(object)).view(np.int64)


class _Pieces:
    """Observations collected per metric: (row position, metric, value, strategy_id override)."""

    def __init__(self) -> None:
        self.positions: list[np.ndarray] = []
        self.ranks: list[np.ndarray] = []
        self.values: list[np.ndarray] = []
        self.strategies: list[np.ndarray] = []

    def add(self, metric: str, positions, values, strategies) -> None:
        positions = np.asarray(positions, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        finite = np.isfinite(values)
        if not finite.all():
            positions, values = positions[finite], values[finite]
            strategies = np.asarray(strategies, dtype=object)[finite]
        if len(positions):
            self.positions.append(positions)
            self.ranks.append(np.full(len(positions), _RANK[metric], np.int64))
            self.values.append(values)
            self.strategies.append(np.asarray(strategies, dtype=object))


class MetricExtractor:
    """Derives ``metrics.METRICS`` observations from event frames, batch after batch."""

    def __init__(self, rejection_window: int = 50, order_ttl_seconds: float = 600) -> None:
        if isinstance(rejection_window, bool) or not isinstance(rejection_window, int) or rejection_window < 1:
            raise ValueError("extractor rejection_window must be an integer >= 1 (accepted + rejected order "
                             f"events), got {rejection_window!r}")
        if (isinstance(order_ttl_seconds, bool) or not isinstance(order_ttl_seconds, (int, float))
                or not math.isfinite(order_ttl_seconds) or order_ttl_seconds <= 0):
            raise ValueError("extractor order_ttl_seconds must be a finite number of seconds > 0, "
                             f"got {order_ttl_seconds!r}")
        self.rejection_window = rejection_window
        self.order_ttl_seconds = float(order_ttl_seconds)
        self._ttl_ns = int(round(self.order_ttl_seconds * NS_PER_SECOND))

    def extract(self, events: pd.DataFrame, state: dict[str, Any]) -> pd.DataFrame:
        """The observations of ``events`` (in seq order); updates ``state`` in place."""
        if len(events) == 0:
            return empty_observation_frame()
        event_type = _text(events, "event_type")
        occurred = events["occurred_at_ns"].to_numpy(dtype=np.int64)
        trusted = trusted_times(events)
        strategy = _text(events, "strategy_id")
        # The watermark at each event: the latest trusted time seen up to and including it.
        watermark = np.maximum.accumulate(trusted)
        if state.get("watermark_ns") is not None:
            watermark = np.maximum(watermark, int(state["watermark_ns"]))

        pieces = _Pieces()
        orders = _OrderBook(state.get("orders"), self._ttl_ns)
        is_order = event_type == "order"
        is_fill = event_type == "fill"
        order_rows = np.flatnonzero(is_order)
        status = _text(events, "status")[order_rows]
        order_id = _text(events, "order_id")

        submitted_rows = order_rows[status == "submitted"]
        orders.add(submitted_rows, order_id[submitted_rows], occurred[submitted_rows], trusted[submitted_rows],
                   strategy[submitted_rows],
                   events["decision_price"].to_numpy(dtype=np.float64)[submitted_rows])

        self._fills(events, np.flatnonzero(is_fill), orders, order_id, occurred, watermark, strategy, pieces)
        accepted_rows = order_rows[status == "accepted"]
        self._acknowledgements(accepted_rows, orders, order_id, occurred, watermark, strategy, pieces)
        self._order_rates(order_rows, status, trusted, strategy, state, pieces)
        self._round_trips(events, event_type, strategy, state, pieces)
        self._spreads(events, event_type, strategy, pieces)

        state["orders"] = orders.pruned(int(watermark[-1]) - self._ttl_ns)
        state["watermark_ns"] = int(watermark[-1])
        return self._assemble(events, pieces)

    # --- fills: slippage and latency ---------------------------------------------------------

    @staticmethod
    def _fills(events, rows, orders: _OrderBook, order_id, occurred, watermark, strategy, pieces: _Pieces) -> None:
        found, submitted_ns, decision_price, order_strategy = orders.lookup(rows, order_id[rows], watermark[rows])
        own_strategy = strategy[rows]
        fill_strategy = np.where(own_strategy == None, order_strategy, own_strategy)  # noqa: E711
        side = _text(events, "side")[rows]
        sign = np.where(side == "buy", 1.0, np.where(side == "sell", -1.0, np.nan))
        price = events["price"].to_numpy(dtype=np.float64)[rows]
        bid = events["bid"].to_numpy(dtype=np.float64)[rows]
        ask = events["ask"].to_numpy(dtype=np.float64)[rows]
        arrival = events["arrival_price"].to_numpy(dtype=np.float64)[rows]
        with np.errstate(invalid="ignore", divide="ignore"):
            reference = np.where(_positive(arrival), arrival,
                                 np.where(_positive(decision_price), decision_price, (bid + ask) / 2))
            reference = np.where(_positive(reference), reference, np.nan)
            slippage = sign * (price - reference) / reference * 1e4
        pieces.add(SLIPPAGE_BPS, rows, slippage, fill_strategy)
        latency = (occurred[rows[found]] - submitted_ns[found]).astype(np.float64) / NS_PER_SECOND
        pieces.add(FILL_LATENCY_SECONDS, rows[found], latency, fill_strategy[found])

    @staticmethod
    def _acknowledgements(rows, orders: _OrderBook, order_id, occurred, watermark, strategy, pieces: _Pieces) -> None:
        found, submitted_ns, _, _ = orders.lookup(rows, order_id[rows], watermark[rows])
        latency = (occurred[rows[found]] - submitted_ns[found]).astype(np.float64) / NS_PER_SECOND
        pieces.add(ACKNOWLEDGEMENT_LATENCY_SECONDS, rows[found], latency, strategy[rows[found]])

    # --- order status events: the per-strategy running rates -----------------------------------

    def _order_rates(self, order_rows, status, trusted, strategy, state, pieces: _Pieces) -> None:
        outcomes = {name: deque(values, maxlen=self.rejection_window)
                    for name, values in state.get("outcomes", {}).items()}
        submitted = {name: list(times) for name, times in state.get("submitted", {}).items()}
        rate_rows, rates, count_rows, counts = [], [], [], []
        for row, row_status, at, name in zip(order_rows.tolist(), status.tolist(), trusted[order_rows].tolist(),
                                             strategy[order_rows].tolist()):
            if name is None:
                continue
            if row_status == "accepted" or row_status == "rejected":
                window = outcomes.get(name)
                if window is None:
                    window = outcomes[name] = deque(maxlen=self.rejection_window)
                window.append(1 if row_status == "rejected" else 0)
                rate_rows.append(row)
                rates.append(sum(window) / len(window))
            elif row_status == "submitted":
                times = submitted.setdefault(name, [])
                latest = max(at, times[-1]) if times else at
                del times[:bisect.bisect_right(times, latest - ORDER_RATE_WINDOW_NS)]
                counts.append(1 + bisect.bisect_right(times, at))
                count_rows.append(row)
                if at > latest - ORDER_RATE_WINDOW_NS:
                    bisect.insort(times, at)
        pieces.add(REJECTION_RATE, rate_rows, rates, strategy[np.asarray(rate_rows, dtype=np.int64)])
        pieces.add(ORDER_RATE_PER_MINUTE, count_rows, counts, strategy[np.asarray(count_rows, dtype=np.int64)])
        state["outcomes"] = {name: list(window) for name, window in outcomes.items()}
        state["submitted"] = {name: times for name, times in submitted.items() if times}

    # --- position updates: realized P&L changes --------------------------------------------------

    @staticmethod
    def _round_trips(events, event_type, strategy, state, pieces: _Pieces) -> None:
        realized = events["realized_pnl"].to_numpy(dtype=np.float64)
        rows = np.flatnonzero((event_type == "position_update") & np.isfinite(realized))
        if len(rows) == 0:
            return
        pnl = realized[rows]
        symbol = _text(events, "symbol")[rows]
        pair_strategy = [_NO_KEY if name is None else name for name in strategy[rows].tolist()]
        pair_symbol = [_NO_KEY if name is None else name for name in symbol.tolist()]
        index: dict[tuple[str, str], int] = {}
        codes = np.array([index.setdefault(pair, len(index)) for pair in zip(pair_strategy, pair_symbol)], np.int64)
        pairs = list(index)
        known = state.setdefault("realized_pnl", {})
        first_previous = np.array([known.get(s, {}).get(y, np.nan) for s, y in pairs], dtype=np.float64)
        # The previous realized_pnl of each row: the row before it of the same pair, or the state's.
        by_pair = np.argsort(codes, kind="stable")
        sorted_codes = codes[by_pair]
        previous_sorted = np.empty(len(rows))
        previous_sorted[1:] = pnl[by_pair][:-1]
        starts = np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]
        previous_sorted[starts] = first_previous[sorted_codes[starts]]
        previous = np.empty(len(rows))
        previous[by_pair] = previous_sorted
        changed = np.isfinite(previous) & (pnl != previous)
        pieces.add(ROUND_TRIP_PNL_USD, rows[changed], (pnl - previous)[changed], strategy[rows[changed]])
        ends = np.r_[sorted_codes[1:] != sorted_codes[:-1], True]
        for code, value in zip(sorted_codes[ends].tolist(), pnl[by_pair][ends].tolist()):
            pair_strategy_name, pair_symbol_name = pairs[code]
            known.setdefault(pair_strategy_name, {})[pair_symbol_name] = value

    # --- quotes: spreads --------------------------------------------------------------------------

    @staticmethod
    def _spreads(events, event_type, strategy, pieces: _Pieces) -> None:
        bid = events["bid"].to_numpy(dtype=np.float64)
        ask = events["ask"].to_numpy(dtype=np.float64)
        rows = np.flatnonzero((event_type == "market_data") & np.isfinite(bid) & np.isfinite(ask))
        bid, ask = bid[rows], ask[rows]
        mid = (bid + ask) / 2
        with np.errstate(invalid="ignore", divide="ignore"):
            spread = np.where(mid > 0, (ask - bid) / mid * 1e4, np.nan)
        pieces.add(SPREAD_BPS, rows, spread, strategy[rows])

    # --- the frame ----------------------------------------------------------------------------------

    @staticmethod
    def _assemble(events: pd.DataFrame, pieces: _Pieces) -> pd.DataFrame:
        if not pieces.positions:
            return empty_observation_frame()
        positions = np.concatenate(pieces.positions)
        ranks = np.concatenate(pieces.ranks)
        order = np.lexsort((ranks, positions))
        positions, ranks = positions[order], ranks[order]
        metric_names = np.array(METRICS, dtype=object)
        return _frame(
            events["seq"].to_numpy(dtype=np.int64)[positions],
            _text(events, "event_id")[positions],
            events["occurred_at_ns"].to_numpy(dtype=np.int64)[positions],
            metric_names[ranks],
            np.concatenate(pieces.values)[order],
            _text(events, "symbol")[positions],
            np.concatenate(pieces.strategies)[order],
            _text(events, "source")[positions],
        )


def _take(values: np.ndarray, index: np.ndarray, missing) -> np.ndarray:
    """values[index], ``missing`` where index is -1."""
    result = np.full(len(index), missing, dtype=values.dtype)
    hit = index >= 0
    result[hit] = values[index[hit]]
    return result


def _positive(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (values > 0)


class _OrderBook:
    """The known orders: the state's records (sorted by key) plus this batch's submissions.

    ``lookup`` answers, for events at given row positions, the record of their order made
    before them and still live at their watermark."""

    def __init__(self, stored: dict[str, Any] | None, ttl_ns: int) -> None:
        stored = stored or {}
        self.ttl_ns = ttl_ns
        self.key = np.asarray(stored.get("key", np.zeros(0, np.int64)), dtype=np.int64)
        self.submitted_ns = np.asarray(stored.get("submitted_ns", np.zeros(0, np.int64)), dtype=np.int64)
        self.trusted_ns = np.asarray(stored.get("trusted_ns", self.submitted_ns), dtype=np.int64)
        self.decision_price = np.asarray(stored.get("decision_price", np.zeros(0)), dtype=np.float64)
        names = np.array(list(stored.get("strategies", [])) + [None], dtype=object)
        codes = np.asarray(stored.get("strategy", np.zeros(0, np.int64)), dtype=np.int64)
        self.strategy = names[codes]  # code -1 picks the trailing None
        empty = np.zeros(0, np.int64)
        self.new_rows, self.new_key, self.new_ns, self.new_trusted = empty, empty, empty, empty
        self.new_price, self.new_strategy = np.zeros(0), np.zeros(0, object)

    def add(self, rows, order_ids, submitted_ns, trusted_ns, strategies, decision_prices) -> None:
        self.new_rows, self.new_key = rows, _hash_keys(order_ids)
        self.new_ns, self.new_trusted = submitted_ns, trusted_ns
        self.new_strategy, self.new_price = strategies, decision_prices

    def lookup(self, rows: np.ndarray, order_ids: np.ndarray, watermark: np.ndarray):
        """(found, submitted_ns, decision_price, strategy) for the events at ``rows`` (their
        order ids and watermarks given): the record of the order made before the event, if
        still live at the event's watermark; an expired record counts as none (module doc)."""
        keys = _hash_keys(order_ids)
        in_batch = self._latest_batch_record(rows, keys)
        stored = np.where(in_batch >= 0, -1, self._stored_record(keys))
        submitted_ns = np.where(in_batch >= 0, _take(self.new_ns, in_batch, 0), _take(self.submitted_ns, stored, 0))
        trusted_ns = np.where(in_batch >= 0, _take(self.new_trusted, in_batch, 0), _take(self.trusted_ns, stored, 0))
        live = trusted_ns >= watermark - self.ttl_ns
        found = ((in_batch >= 0) | (stored >= 0)) & live & (order_ids != None)  # noqa: E711
        decision_price = np.where(in_batch >= 0, _take(self.new_price, in_batch, np.nan),
                                  _take(self.decision_price, stored, np.nan))
        strategy = np.where(in_batch >= 0, _take(self.new_strategy, in_batch, None), _take(self.strategy, stored, None))
        return found, submitted_ns, np.where(found, decision_price, np.nan), np.where(found, strategy, None)

    def _latest_batch_record(self, rows: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """Per query, the index of this batch's latest submission of its order at an earlier
        row (-1: none). Submissions and queries are sorted together by (key, row); the last
        submission seen is carried forward and kept where its key is the query's."""
        found = np.full(len(rows), -1, np.int64)
        n_new = len(self.new_rows)
        if n_new == 0 or len(rows) == 0:
            return found
        all_keys = np.concatenate([self.new_key, keys])
        order = np.lexsort((np.concatenate([self.new_rows, rows]), all_keys))
        is_submission = order < n_new
        last = np.maximum.accumulate(np.where(is_submission, np.arange(len(order)), -1))
        submission = order[np.maximum(last, 0)]
        same_order = (last >= 0) & (all_keys[submission] == all_keys[order])
        found[order[~is_submission] - n_new] = np.where(same_order, submission, -1)[~is_submission]
        return found

    def _stored_record(self, keys: np.ndarray) -> np.ndarray:
        """Per key, the index of the stored record (-1: none); stored keys are sorted and unique."""
        at = np.searchsorted(self.key, keys)
        inside = at < len(self.key)
        hit = np.zeros(len(keys), bool)
        hit[inside] = self.key[at[inside]] == keys[inside]
        return np.where(hit, at, -1)

    def pruned(self, oldest_ns: int) -> dict[str, Any]:
        """The records to keep (latest per order, submitted at or after ``oldest_ns`` in trusted
        time), sorted by key."""
        key = np.concatenate([self.key, self.new_key])
        submitted_ns = np.concatenate([self.submitted_ns, np.asarray(self.new_ns, dtype=np.int64)])
        trusted_ns = np.concatenate([self.trusted_ns, np.asarray(self.new_trusted, dtype=np.int64)])
        price = np.concatenate([self.decision_price, np.asarray(self.new_price, dtype=np.float64)])
        strategy = np.concatenate([self.strategy, np.asarray(self.new_strategy, dtype=object)])
        # Stored records come first and batch submissions are in row order, so the last of a key wins.
        latest = ~pd.Series(key).duplicated(keep="last").to_numpy()
        keep = latest & (trusted_ns >= oldest_ns)
        key, submitted_ns, trusted_ns = key[keep], submitted_ns[keep], trusted_ns[keep]
        price, strategy = price[keep], strategy[keep]
        order = np.argsort(key, kind="stable")
        codes, names = pd.factorize(pd.Series(strategy[order], dtype=object))  # None -> -1
        return {
            "key": key[order].astype(np.int64),
            "submitted_ns": submitted_ns[order].astype(np.int64),
            "trusted_ns": trusted_ns[order].astype(np.int64),
            "decision_price": price[order].astype(np.float64),
            "strategy": codes.astype(np.int64),
            "strategies": [str(name) for name in names],
        }
