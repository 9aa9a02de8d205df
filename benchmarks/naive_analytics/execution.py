"""The straightforward per-order, per-fill Python loops behind ``SlippageAnalyzer.report`` and
``ExecutionAnalyzer.report``: the baseline of the analytics speed benchmark and the oracle of
their tests.

Same inputs, same definitions (see the docstrings of ``tradewatch.domain.analytics.slippage``
and ``...execution``), same outputs, written the obvious way: columns are read once with
``.tolist()`` and walked with ``zip``; orders live in a dict keyed by order_id; every fill is
appended to its order's list; an as-of price is a ``bisect`` in the instrument's sorted quote
times. DataFrames are built only at the end. O(n log n) time, no numpy vectorisation.
"""

from __future__ import annotations

import math
from bisect import bisect_right

import pandas as pd

from tradewatch.domain.analytics.prices import PriceBook
from tradewatch.domain.analytics.schema import FILLS, ORDERS, prepare

NAT = -(2**63)
COMPONENTS = ("timing_cost", "spread_cost", "price_impact", "opportunity_cost", "total_cost", "fees",
              "total_cost_with_fees")
ARRIVAL_SOURCES = ("quotes", "fill arrival_price", "decision price", "none")
DECISION_SOURCES = ("decision price", "arrival price", "none")
LATENCIES = ("acknowledgement", "order_to_first_fill", "order_to_last_fill")


# -- reading the frames ---------------------------------------------------------------------------
def _prepared(frame: pd.DataFrame, spec) -> pd.DataFrame:
    ready = all(c.name in frame.columns for c in spec.columns) and all(
        isinstance(frame[c.name].dtype, pd.DatetimeTZDtype) for c in spec.columns if c.kind == "time"
    ) and all(frame[c.name].dtype == "float64" for c in spec.columns if c.kind in ("float", "positive", "nonnegative"))
    return frame if ready else prepare(frame, spec).frame


def _nanoseconds(column: pd.Series) -> list[int]:
    return pd.DatetimeIndex(pd.to_datetime(column, utc=True)).as_unit("ns").asi8.tolist()


def _text(column_values: list) -> list:
    return [None if _missing(v) else v for v in column_values]


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _number(value) -> float:
    return math.nan if value is None else float(value)


def _price(value) -> float:
    """A usable price (finite, > 0) or NaN."""
    value = _number(value)
    return value if math.isfinite(value) and value > 0 else math.nan


def _known(value: float) -> bool:
    return not math.isnan(value)


def _ratio(numerator: float, denominator: float) -> float:
    return math.nan if denominator == 0 or math.isnan(denominator) else numerator / denominator


class _Quotes:
    """Per instrument sorted quote times and mids, looked up with bisect."""

    def __init__(self, prices: PriceBook | None) -> None:
        self.times: dict[str, list[int]] = {}
        self.mids: dict[str, list[float]] = {}
        if prices is None:
            return
        for symbol in prices.symbols:
            series = prices.series(symbol)
            self.times[symbol] = series.index.asi8.tolist()
            self.mids[symbol] = series.tolist()

    def asof(self, symbol, time: int) -> float:
        times = self.times.get(symbol)
        if times is None or time == NAT:
            return math.nan
        position = bisect_right(times, time) - 1
        return self.mids[symbol][position] if position >= 0 else math.nan


def _categorical(values: list) -> pd.Categorical:
    categories = sorted({str(v) for v in values if v is not None})
    return pd.Categorical([None if v is None else str(v) for v in values], categories=pd.Index(categories, dtype="str"))


def _group_keys(keys: list) -> list:
    """Distinct keys sorted, a missing key last."""
    present = sorted({k for k in keys if k is not None}, key=str)
    return present + ([None] if any(k is None for k in keys) else [])


def _key_column(keys: list) -> pd.Index:
    return pd.Index([math.nan if k is None else str(k) for k in keys], dtype="str")


def _percentile(sorted_values: list[float], percentile: float) -> float:
    """Linear interpolation between order statistics at h = (n - 1) p / 100."""
    n = len(sorted_values)
    if n == 0:
        return math.nan
    h = (n - 1) * percentile / 100.0
    low = math.floor(h)
    high = min(low + 1, n - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (h - low)


def _read(orders: pd.DataFrame, fills: pd.DataFrame):
    """Orders as a list of dicts (first row of an order_id), each with its fills; orphan fill count."""
    orders = _prepared(orders, ORDERS)
    fills = _prepared(fills, FILLS)
    by_id: dict = {}
    rows: list[dict] = []
    columns = [orders[c].tolist() for c in ("order_id", "symbol", "side", "quantity", "status", "decision_price")]
    text = {c: _text(orders[c].tolist()) for c in ("venue", "strategy_id")}
    times = {c: _nanoseconds(orders[c]) for c in ("submitted_at", "accepted_at", "ended_at")}
    for i, (order_id, symbol, side, quantity, status, decision) in enumerate(zip(*columns)):
        if order_id in by_id:
            continue
        row = {
            "order_id": order_id, "symbol": None if _missing(symbol) else symbol, "side": None if _missing(side) else side,
            "status": None if _missing(status) else status, "quantity": float(quantity),
            "decision_price": _price(decision), "venue": text["venue"][i], "strategy_id": text["strategy_id"][i],
            "submitted": times["submitted_at"][i], "accepted": times["accepted_at"][i], "ended": times["ended_at"][i],
            "fills": [],
        }
        by_id[order_id] = row
        rows.append(row)
    orphans = 0
    has_liquidity = "liquidity" in fills.columns
    fill_columns = [fills[c].tolist() for c in ("order_id", "quantity", "price", "fee", "bid", "ask", "arrival_price", "vwap")]
    fill_times = _nanoseconds(fills["occurred_at"])
    liquidity = _text(fills["liquidity"].tolist()) if has_liquidity else [None] * len(fills)
    venues = _text(fills["venue"].tolist())
    strategies = _text(fills["strategy_id"].tolist())
    for j, (order_id, quantity, price, fee, bid, ask, arrival, vwap) in enumerate(zip(*fill_columns)):
        order = by_id.get(order_id)
        if order is None:
            orphans += 1
            continue
        order["fills"].append({
            "row": j, "time": fill_times[j], "quantity": float(quantity), "price": float(price),
            "fee": 0.0 if math.isnan(_number(fee)) else float(fee), "bid": _number(bid), "ask": _number(ask),
            "arrival_price": _price(arrival), "vwap": _price(vwap), "venue": venues[j], "strategy_id": strategies[j],
            "liquidity": None if liquidity[j] is None else str(liquidity[j]).strip().lower(),
        })
    for order in rows:
        order_fills = order["fills"]
        order["filled"] = sum(f["quantity"] for f in order_fills)
        order["first"] = min(order_fills, key=lambda f: (f["time"], f["row"])) if order_fills else None
        order["last"] = max(order_fills, key=lambda f: (f["time"], f["row"])) if order_fills else None
        order["complete"] = order["filled"] >= order["quantity"] * (1.0 - 1e-9)
        order["sign"] = 1.0 if order["side"] == "buy" else -1.0 if order["side"] == "sell" else math.nan
        for key in ("venue", "strategy_id"):
            if order[key] is None and order["first"] is not None:
                order[key] = order["first"][key]
        if order_fills:
            average = sum(f["quantity"] * f["price"] for f in order_fills) / order["filled"] if order["filled"] else math.nan
            vwap = order["last"]["vwap"]
            order["average_fill_price"] = average
            order["vwap_deviation_bps"] = order["sign"] * (average - vwap) / vwap * 1e4
        else:
            order["average_fill_price"] = math.nan
            order["vwap_deviation_bps"] = math.nan
    return rows, orphans, has_liquidity


# -- slippage -------------------------------------------------------------------------------------
class NaiveSlippageAnalyzer:
    def __init__(self, end_horizon_seconds: float = 300.0) -> None:
        self.end_horizon_seconds = float(end_horizon_seconds)

    def analyze(self, orders, fills, prices=None, market_conditions=None) -> pd.DataFrame:
        records, orphans = self._analyze(orders, fills, prices, market_conditions)
        return self._frame(records, orphans)

    def _analyze(self, orders, fills, prices=None, market_conditions=None, read=None) -> tuple[list[dict], int]:
        rows, orphans, _ = read if read is not None else _read(orders, fills)
        quotes = _Quotes(prices)
        conditions = self._conditions(market_conditions)
        horizon = int(round(self.end_horizon_seconds * 1e9))
        records = []
        for order in rows:
            s = order["sign"]
            symbol = order["symbol"]
            quantity, filled = order["quantity"], order["filled"]
            arrival_quote = quotes.asof(symbol, order["submitted"]) if symbol is not None else math.nan
            first_arrival = order["first"]["arrival_price"] if order["first"] else math.nan
            decision = order["decision_price"]
            if _known(arrival_quote):
                arrival, arrival_source = arrival_quote, "quotes"
            elif _known(first_arrival):
                arrival, arrival_source = first_arrival, "fill arrival_price"
            elif _known(decision):
                arrival, arrival_source = decision, "decision price"
            else:
                arrival, arrival_source = math.nan, "none"
            if _known(decision):
                decision_used, decision_source = decision, "decision price"
            elif _known(arrival):
                decision_used, decision_source = arrival, "arrival price"
            else:
                decision_used, decision_source = math.nan, "none"

            spread = impact = 0.0
            for fill in order["fills"]:
                bid, ask = fill["bid"], fill["ask"]
                if math.isfinite(bid) and math.isfinite(ask) and bid > 0 and ask > 0:
                    mid = (bid + ask) / 2.0
                else:
                    mid = quotes.asof(symbol, fill["time"])
                    if not _known(mid):
                        mid = fill["price"]
                spread += fill["quantity"] * (fill["price"] - mid)
                impact += fill["quantity"] * (mid - arrival)
            unfilled = 0.0 if order["complete"] else quantity - filled
            end_mid = math.nan
            if unfilled > 0:
                ends = [t for t in (order["last"]["time"] if order["last"] else NAT, order["ended"]) if t != NAT]
                end = max(ends) if ends else order["submitted"]
                end_mid = quotes.asof(symbol, end + horizon) if end != NAT else math.nan
                opportunity = s * unfilled * (end_mid - decision_used)
            else:
                opportunity = 0.0
            if _known(decision_used):
                timing = s * (arrival - decision_used) * filled + 0.0
                spread = s * spread + 0.0
                impact = s * impact + 0.0
                opportunity = opportunity + 0.0
            else:
                timing = spread = impact = opportunity = math.nan
            total = timing + spread + impact + opportunity
            fees = sum(f["fee"] for f in order["fills"])
            notional = decision_used * quantity
            record = {
                "order_id": order["order_id"], "symbol": symbol, "venue": order["venue"],
                "strategy_id": order["strategy_id"], "side": order["side"], "status": order["status"],
                "market_condition": self._condition_at(conditions, symbol, order["submitted"]),
                "ordered_quantity": quantity, "filled_quantity": filled, "unfilled_quantity": unfilled,
                "fill_count": len(order["fills"]), "average_fill_price": order["average_fill_price"],
                "decision_price": decision_used, "decision_price_source": decision_source,
                "arrival_mid": arrival, "arrival_price_source": arrival_source, "end_mid": end_mid,
                "notional": notional, "timing_cost": timing, "spread_cost": spread, "price_impact": impact,
                "opportunity_cost": opportunity, "total_cost": total, "fees": fees, "total_cost_with_fees": total + fees,
            }
            for name in COMPONENTS:
                record[f"{name}_bps"] = _ratio(record[name], notional) * 1e4
            record["vwap_deviation_bps"] = order["vwap_deviation_bps"]
            records.append(record)
        return records, orphans

    @staticmethod
    def _conditions(market_conditions) -> dict:
        """symbol -> (sorted times, labels), ties in the frame's order."""
        if market_conditions is None or len(market_conditions) == 0:
            return {}
        times = pd.DatetimeIndex(pd.to_datetime(market_conditions["occurred_at"], utc=True, errors="coerce")).as_unit("ns").asi8.tolist()
        by_symbol: dict = {}
        for time, symbol, label in zip(times, market_conditions["symbol"].tolist(), market_conditions["volatility"].tolist()):
            if time == NAT or _missing(symbol):
                continue
            by_symbol.setdefault(symbol, []).append((time, "unknown" if _missing(label) else str(label)))
        out = {}
        for symbol, entries in by_symbol.items():
            entries.sort(key=lambda entry: entry[0])  # stable
            out[symbol] = ([t for t, _ in entries], [label for _, label in entries])
        return out

    @staticmethod
    def _condition_at(conditions: dict, symbol, time: int) -> str:
        entry = conditions.get(symbol)
        if entry is None or time == NAT:
            return "unknown"
        position = bisect_right(entry[0], time) - 1
        return entry[1][position] if position >= 0 else "unknown"

    @staticmethod
    def _frame(records: list[dict], orphans: int) -> pd.DataFrame:
        columns = ["order_id", "symbol", "venue", "strategy_id", "side", "status", "market_condition",
                   "ordered_quantity", "filled_quantity", "unfilled_quantity", "fill_count", "average_fill_price",
                   "decision_price", "decision_price_source", "arrival_mid", "arrival_price_source", "end_mid", "notional",
                   *COMPONENTS, *(f"{c}_bps" for c in COMPONENTS), "vwap_deviation_bps"]
        data = {}
        for column in columns:
            values = [r[column] for r in records]
            if column == "order_id":
                data[column] = pd.array([str(v) for v in values], dtype="str")
            elif column in ("symbol", "venue", "strategy_id", "side", "status", "market_condition",
                            "decision_price_source", "arrival_price_source"):
                data[column] = _categorical(values)
            elif column == "fill_count":
                data[column] = pd.array(values, dtype="int64").to_numpy() if values else pd.array([], dtype="int64").to_numpy()
            else:
                data[column] = pd.array(values, dtype="float64").to_numpy() if values else pd.array([], dtype="float64").to_numpy()
        frame = pd.DataFrame(data)
        frame.attrs["fills_without_order"] = orphans
        return frame

    @staticmethod
    def _sums(records: list[dict]) -> dict:
        out: dict = {"orders": len(records)}
        notional = sum(r["notional"] for r in records if _known(r["notional"]))
        out["notional"] = float(notional)
        for name in COMPONENTS:
            out[name] = float(sum(r[name] for r in records if _known(r[name])))
        for name in COMPONENTS:
            priced = sum(r[name] for r in records if _known(r[name]) and _known(r["notional"]))
            out[f"{name}_bps"] = _ratio(priced, notional) * 1e4
        out["orders_without_end_price"] = sum(1 for r in records if r["unfilled_quantity"] > 0 and not _known(r["end_mid"]))
        out["orders_without_price"] = sum(1 for r in records if not _known(r["decision_price"]))
        return out

    @staticmethod
    def _records(per_order: pd.DataFrame) -> list[dict]:
        columns = {c: per_order[c].tolist() for c in per_order.columns}
        return [{c: (None if c in ("symbol", "venue", "strategy_id", "market_condition") and _missing(columns[c][i])
                     else columns[c][i]) for c in columns} for i in range(len(per_order))]

    def summary(self, per_order: pd.DataFrame) -> dict:
        out = self._sums(self._records(per_order))
        out["fills_without_order"] = int(per_order.attrs.get("fills_without_order", 0))
        return out

    def aggregate(self, per_order: pd.DataFrame, by: str) -> pd.DataFrame:
        return self._grouped(self._records(per_order), by)

    def _grouped(self, records: list[dict], by: str) -> pd.DataFrame:
        groups: dict = {}
        for record in records:
            key = record[by]
            groups.setdefault(None if _missing(key) else key, []).append(record)
        keys = _group_keys(list(groups))
        rows = [self._sums(groups[key]) for key in keys]
        names = ["orders", "notional", *COMPONENTS, *(f"{c}_bps" for c in COMPONENTS),
                 "orders_without_end_price", "orders_without_price"]
        data = {by: _key_column(keys)}
        for name in names:
            dtype = "int64" if name in ("orders", "orders_without_end_price", "orders_without_price") else "float64"
            data[name] = pd.array([row[name] for row in rows], dtype=dtype).to_numpy()
        return pd.DataFrame(data)

    def report(self, orders, fills, prices=None, market_conditions=None, read=None) -> dict:
        """``read``: ``_read(orders, fills)`` when the caller has it (the vectorised report joins
        fills to orders once for both analyses too)."""
        from tradewatch.domain.analytics.slippage import DEFINITIONS

        records, orphans = self._analyze(orders, fills, prices, market_conditions, read)
        definitions = dict(DEFINITIONS)
        definitions["end_horizon_seconds"] = f"{self.end_horizon_seconds:g} seconds"
        summary = self._sums(records)
        summary["fills_without_order"] = orphans
        return {
            "definitions": definitions,
            "summary": summary,
            "by_symbol": self._grouped(records, "symbol"),
            "by_venue": self._grouped(records, "venue"),
            "by_strategy": self._grouped(records, "strategy_id"),
            "by_market_condition": self._grouped(records, "market_condition"),
            "per_order": self._frame(records, orphans),
        }


# -- execution ------------------------------------------------------------------------------------
class NaiveExecutionAnalyzer:
    def __init__(self, latency_percentiles=(50, 90, 99)) -> None:
        self.latency_percentiles = tuple(float(p) for p in latency_percentiles)

    def _measure(self, rows: list[dict], has_liquidity: bool) -> dict:
        out: dict = {"orders": len(rows), "fills": sum(len(o["fills"]) for o in rows)}
        counts = dict.fromkeys(("filled_orders", "partially_filled_orders", "unfilled_orders", "rejected_orders",
                                "cancelled_orders", "expired_orders"), 0)
        latencies: dict[str, list[float]] = {name: [] for name in LATENCIES}
        maker = known = weighted = weights = 0.0
        for order in rows:
            if order["complete"]:
                counts["filled_orders"] += 1
            elif order["fills"]:
                counts["partially_filled_orders"] += 1
            else:
                counts["unfilled_orders"] += 1
            for status in ("rejected", "cancelled", "expired"):
                if order["status"] == status:
                    counts[f"{status}_orders"] += 1
            submitted = order["submitted"]
            if submitted != NAT and order["accepted"] != NAT:
                latencies["acknowledgement"].append((order["accepted"] - submitted) / 1e9)
            if submitted != NAT and order["fills"]:
                latencies["order_to_first_fill"].append((order["first"]["time"] - submitted) / 1e9)
                latencies["order_to_last_fill"].append((order["last"]["time"] - submitted) / 1e9)
            for fill in order["fills"]:
                if fill["liquidity"] == "maker":
                    maker += fill["quantity"]
                if fill["liquidity"] in ("maker", "taker"):
                    known += fill["quantity"]
            deviation = order["vwap_deviation_bps"]
            if order["fills"]:
                weight = order["filled"] * order["last"]["vwap"]
                if math.isfinite(deviation) and math.isfinite(weight):
                    weighted += deviation * weight
                    weights += weight
        out.update(counts)
        for rate, name in (("fill_rate", "filled_orders"), ("partial_fill_rate", "partially_filled_orders"),
                           ("unfilled_rate", "unfilled_orders"), ("rejection_rate", "rejected_orders"),
                           ("cancel_rate", "cancelled_orders"), ("expiry_rate", "expired_orders")):
            out[rate] = _ratio(counts[name], len(rows))
        for name in LATENCIES:
            values = sorted(latencies[name])
            for p in self.latency_percentiles:
                out[f"{name}_latency_p{p:g}_seconds"] = _percentile(values, p)
        out["maker_share"] = _ratio(maker, known) if has_liquidity else math.nan
        out["average_vwap_deviation_bps"] = _ratio(weighted, weights)
        return out

    def analyze(self, orders, fills) -> dict:
        rows, orphans, has_liquidity = _read(orders, fills)
        out = self._measure(rows, has_liquidity)
        out["fills_without_order"] = orphans
        return out

    def _aggregate(self, rows, has_liquidity, by) -> pd.DataFrame:
        groups: dict = {}
        for order in rows:
            groups.setdefault(order[by], []).append(order)
        keys = _group_keys(list(groups))
        measured = [self._measure(groups[key], has_liquidity) for key in keys]
        names = list(self._measure([], has_liquidity))
        data = {by: _key_column(keys)}
        for name in names:
            dtype = "int64" if name == "orders" or name == "fills" or name.endswith("_orders") else "float64"
            data[name] = pd.array([m[name] for m in measured], dtype=dtype).to_numpy()
        return pd.DataFrame(data)

    def aggregate(self, orders, fills, by) -> pd.DataFrame:
        rows, _, has_liquidity = _read(orders, fills)
        return self._aggregate(rows, has_liquidity, by)

    def report(self, orders, fills, read=None) -> dict:
        from tradewatch.domain.analytics.execution import ExecutionAnalyzer

        rows, orphans, has_liquidity = read if read is not None else _read(orders, fills)
        summary = self._measure(rows, has_liquidity)
        summary["fills_without_order"] = orphans
        return {
            "definitions": ExecutionAnalyzer(self.latency_percentiles).definitions(),
            "summary": summary,
            "by_symbol": self._aggregate(rows, has_liquidity, "symbol"),
            "by_venue": self._aggregate(rows, has_liquidity, "venue"),
            "by_strategy": self._aggregate(rows, has_liquidity, "strategy_id"),
        }
