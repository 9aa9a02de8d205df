"""Implementation shortfall of orders against the decision price, in currency and in bps.

One row per order (``SlippageAnalyzer.analyze``). Sign convention: a POSITIVE number is a
COST (the execution did worse than the decision price), a negative one a gain. Currency
amounts are in the account currency (prices x quantities, no suffix); ``_bps`` numbers are
basis points (1e-4) of the order's paper notional P_d Q.

Notation, per order (fills join orders by ``order_id``; a fill whose order_id matches no order
row is not used and is counted as ``fills_without_order``):

* s = +1 for a buy, -1 for a sell (the order's side).
* Q = ordered quantity; fill i has quantity q_i, price p_i, time t_i; F = sum_i q_i (filled
  quantity). Completely filled when F >= Q within a relative 1e-9 (float rounding of the fill
  quantities); the unfilled quantity Q - F is then 0. First / last fill = earliest / latest
  t_i (ties: earlier / later row of the fills frame).
* P_a, ``arrival_mid``: the mid at submission, ``PriceBook.asof(symbol, submitted_at)`` (the
  latest mid at or before submitted_at); when there is none, the first fill's
  ``arrival_price``; when that is missing too, P_d. ``arrival_price_source`` says which:
  "quotes", "fill arrival_price", "decision price" (or "none" when no price at all).
* P_d, ``decision_price``: the order's decision_price; when missing (or not > 0), P_a, so
  that the timing cost is 0. ``decision_price_source``: "decision price", "arrival price" or
  "none". An order with neither (no decision price, no quote, no fill arrival_price) has every
  cost NaN and is counted as ``orders_without_price``.
* m_i, the mid at fill i: (bid + ask) / 2 of the fill row when both are present and > 0, else
  ``PriceBook.asof(symbol, t_i)``, else p_i (that fill then has no spread cost).
* P_end, ``end_mid``: ``PriceBook.asof(symbol, order end + end_horizon_seconds)``, order end =
  the later of the last fill time and ended_at (submitted_at when it has neither). It is a
  price after the order by design: what the unfilled remainder would have cost. Looked up
  only for orders with an unfilled quantity (NaN for completely filled ones, where no number
  uses it).

Components (currency; positive = cost):

* ``timing_cost`` = s (P_a - P_d) F: the market moved between the decision and the submission.
* ``spread_cost`` = s sum_i q_i (p_i - m_i): paid across the spread relative to the mid.
* ``price_impact`` = s sum_i q_i (m_i - P_a): the mid moved (against the order) while filling.
* ``opportunity_cost`` = s (Q - F) (P_end - P_d) for the unfilled quantity, 0 when completely
  filled; NaN when it is needed but P_end is unknown (counted as ``orders_without_end_price``).
  Rejected, cancelled and expired orders get it the same way: the decision was not carried out.
* ``total_cost`` = timing_cost + spread_cost + price_impact + opportunity_cost. The first three
  add up to s (sum_i q_i p_i - P_d F), the classic execution shortfall of the filled part.
* ``fees`` = sum of the fills' fees (missing fee = 0), reported apart from total_cost;
  ``total_cost_with_fees`` = total_cost + fees.
* ``X_bps`` for each component X (and fees, totals) = X / (P_d Q) * 1e4, over the paper
  notional ``notional`` = P_d Q, so the bps components add up to ``total_cost_bps`` as well.

Per order also: ``average_fill_price`` = sum_i q_i p_i / F (NaN when F = 0);
``vwap_deviation_bps`` = s (average_fill_price - V) / V * 1e4, V = the ``vwap`` field of the
order's last fill (the market VWAP over the order's life), NaN when absent; ``venue`` and
``strategy_id`` = the order's own, else its first fill's; ``market_condition`` = the
``volatility`` label of the order's symbol valid at submitted_at, i.e. of the latest
``market_conditions`` row with occurred_at <= submitted_at (no look-ahead; ties: the later row),
"unknown" when there is none or no ``market_conditions`` was given.

Columns of the per order frame, in order: order_id (text, as in the orders frame), symbol,
venue, strategy_id, side, status, market_condition (these label columns and the two
``_source`` columns are pandas Categoricals with sorted categories), ordered_quantity (Q),
filled_quantity (F), unfilled_quantity, fill_count, average_fill_price, decision_price (P_d
as used), decision_price_source, arrival_mid (P_a as used), arrival_price_source, end_mid,
notional, the seven currency columns timing_cost, spread_cost, price_impact,
opportunity_cost, total_cost, fees, total_cost_with_fees, the same seven with ``_bps``, and
vwap_deviation_bps. ``per_order.attrs["fills_without_order"]`` carries that count.

Totals (``summary``) and groups (``aggregate``, by symbol, venue, strategy_id or
market_condition; one row per key in sorted order, orders without a key last): every currency
column summed over the orders where it is known (an unknown value adds nothing; see the two
counts ``orders_without_end_price`` and ``orders_without_price``), and every bps number
= sum(X) / sum(notional) * 1e4 over the orders with a notional: the notional-weighted mean of
the orders' X_bps (the fees of an order without any price are in ``fees`` but not in
``fees_bps``). The groups add up to the totals. A zero denominator gives NaN; empty input gives
empty frames and NaN, never an error.

Everything is vectorised; the per order fill aggregates (join by order_id, F, first/last
fill, fees) are shared with and defined like those of the execution module (``execution.py``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradewatch.domain.analytics.execution import (
    _NAT,
    _categorical,
    _divide,
    _group_codes,
    _label_categories,
    join_order_fills,
    _OrderFills,
    _small_codes,
    _sum_by,
)
from tradewatch.domain.analytics.prices import PriceBook, as_nanoseconds

COMPONENTS = ("timing_cost", "spread_cost", "price_impact", "opportunity_cost", "total_cost", "fees",
              "total_cost_with_fees")
ARRIVAL_SOURCES = ("quotes", "fill arrival_price", "decision price", "none")
DECISION_SOURCES = ("decision price", "arrival price", "none")
UNKNOWN_CONDITION = "unknown"

DEFINITIONS = {
    "s": "+1 for a buy order, -1 for a sell order",
    "ordered_quantity": "Q, the order's quantity",
    "filled_quantity": "F = sum_i q_i over the order's fills (fills join orders by order_id)",
    "unfilled_quantity": "Q - F, 0 when completely filled (F >= Q within a relative 1e-9)",
    "fill_count": "number of the order's fills",
    "average_fill_price": "sum_i q_i p_i / F; NaN when F = 0",
    "decision_price": "P_d: the order's decision_price; when missing, P_a (see decision_price_source)",
    "decision_price_source": "decision price | arrival price (P_d missing, P_a used) | none (no price at all: every "
                             "cost NaN)",
    "arrival_mid": "P_a: mid at submitted_at (as of, no look-ahead); else the first fill's arrival_price; else P_d",
    "arrival_price_source": "quotes | fill arrival_price | decision price | none",
    "end_mid": "P_end: mid as of (order end + end_horizon_seconds); order end = later of last fill time and "
               "ended_at, else submitted_at; only for orders with an unfilled quantity (else NaN)",
    "notional": "P_d Q, currency (the paper portfolio's notional, denominator of every bps number)",
    "mid_at_fill": "m_i = (bid + ask) / 2 of the fill when both > 0, else the as-of mid at the fill time, else p_i",
    "timing_cost": "s (P_a - P_d) F; currency, positive = cost",
    "spread_cost": "s sum_i q_i (p_i - m_i); currency, positive = cost",
    "price_impact": "s sum_i q_i (m_i - P_a); currency, positive = cost",
    "opportunity_cost": "s (Q - F) (P_end - P_d), 0 when completely filled, NaN when P_end is needed but unknown; "
                        "currency, positive = cost",
    "total_cost": "timing_cost + spread_cost + price_impact + opportunity_cost; currency (the first three = s "
                  "(sum_i q_i p_i - P_d F))",
    "fees": "sum of the fills' fees; currency, not in total_cost",
    "total_cost_with_fees": "total_cost + fees; currency",
    "X_bps": "X / (P_d Q) * 1e4 for each of the currency columns X above; bps of notional, they add up like the "
             "currency amounts",
    "vwap_deviation_bps": "s (average_fill_price - V) / V * 1e4, V = the vwap of the order's last fill; bps, "
                          "positive = worse than market VWAP",
    "market_condition": "volatility label of the symbol's latest market_conditions row with occurred_at <= "
                        "submitted_at; unknown when none",
    "summary X": "sum of X over the orders where it is known (NaN adds nothing)",
    "summary X_bps": "sum(X) / sum(notional) * 1e4 over orders with a notional, the notional-weighted mean of the "
                     "per order X_bps",
    "orders_without_price": "orders with neither decision price, nor quote at submission, nor fill arrival_price: "
                            "all costs NaN",
    "orders_without_end_price": "orders with an unfilled quantity and no mid at order end + horizon: "
                                "opportunity_cost and totals NaN",
    "fills_without_order": "fills whose order_id matches no order: counted, not used",
}

def _price_arrays(prices: PriceBook | None, names: np.ndarray) -> list | None:
    """Per instrument name: (sorted quote times in ns, mids) of ``prices`` (None when it has
    none); None without a price book. The arrays PriceBook.asof searches."""
    if prices is None:
        return None
    return [prices.arrays(name) for name in names]


def _asof(arrays: list | None, codes: np.ndarray, ns: np.ndarray,
          grouped: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """``prices.asof(names[codes], ns)`` (NaN for code -1, NaT or no price book), ``arrays`` =
    ``_price_arrays(prices, names)``.

    The same lookups as PriceBook.asof (latest mid at or before the time), one searchsorted
    per instrument, with the queries grouped by instrument code by a radix sort of the small
    codes (or ``grouped``: the positions sorted by code and the bounds of codes -1, 0, 1, ...,
    as ``_OrderFills.symbol_sort``): no array of a million symbol names to build and hash.
    """
    out = np.full(len(ns), np.nan)
    if arrays is None or len(ns) == 0:
        return out
    if grouped is None:
        order = np.argsort(_small_codes(codes, len(arrays) + 1), kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(-1, len(arrays) + 1))
    else:
        order, bounds = grouped
    for code, found in enumerate(arrays):  # a loop over instruments, not queries
        start, end = bounds[code + 1], bounds[code + 2]
        if start == end or found is None:
            continue
        times, mids = found
        rows = order[start:end]
        # NaT is the smallest int64: before every quote, position -1, no price.
        position = np.searchsorted(times, ns[rows], side="right") - 1
        known = position >= 0
        out[rows[known]] = mids[position[known]]
    return out


def _market_conditions(of: _OrderFills, market_conditions: pd.DataFrame | None) -> pd.Categorical:
    """The volatility label valid at each order's submission ("unknown" when none)."""
    unknown = np.zeros(of.orders, dtype=np.int64)
    if market_conditions is None or len(market_conditions) == 0 or of.orders == 0:
        return _categorical(unknown, [UNKNOWN_CONDITION])
    missing = {"occurred_at", "symbol", "volatility"} - set(market_conditions.columns)
    if missing:
        raise ValueError(f"market_conditions: missing column(s) {', '.join(sorted(missing))}; "
                         "expected occurred_at (UTC time from which the label is valid), symbol, volatility")
    times = as_nanoseconds(pd.to_datetime(market_conditions["occurred_at"], utc=True, errors="coerce"))
    names = of.symbol_names
    codes = pd.Index(names, dtype=object).get_indexer(market_conditions["symbol"].to_numpy(dtype=object))
    # Label of each row as a code into label_names; a row without a label (code -1) means the
    # condition is not known from then on: "unknown", which is also the last entry, the answer
    # for an order before any row.
    label_codes, label_names = pd.factorize(market_conditions["volatility"].to_numpy(dtype=object))
    label_names = [str(name) for name in label_names] + [UNKNOWN_CONDITION]
    label_codes = np.append(np.where(label_codes < 0, len(label_names) - 1, label_codes), len(label_names) - 1)
    distinct, label_names = pd.factorize(np.array(label_names, dtype=object))  # a row may say "unknown" itself
    label_codes = distinct[label_codes]
    usable = np.flatnonzero((codes >= 0) & (times != _NAT))
    usable = usable[np.lexsort((times[usable], codes[usable]))]  # stable: ties keep the frame's order
    condition_codes, condition_times = codes[usable], times[usable]
    bounds = np.searchsorted(condition_codes, np.arange(len(names) + 1))
    order_rows, order_bounds = of.symbol_sort
    order_bounds = order_bounds[1:]  # symbol_sort's bounds start with code -1
    row_of_label = np.full(of.orders, len(label_codes) - 1, dtype=np.int64)  # the "unknown" entry
    for code in range(len(names)):  # a loop over instruments, not orders
        start, end = bounds[code], bounds[code + 1]
        if start == end:
            continue
        rows = order_rows[order_bounds[code]:order_bounds[code + 1]]
        submitted = of.submitted_ns[rows]
        position = np.searchsorted(condition_times[start:end], submitted, side="right") - 1
        found = (position >= 0) & (submitted != _NAT)
        row_of_label[rows[found]] = usable[start:end][position[found]]
    return _categorical(label_codes[row_of_label], label_names)


class SlippageAnalyzer:
    """Implementation shortfall per order and in total; definitions in the module docstring.

    ``end_horizon_seconds``: how long after an order's end the mid P_end is read for the
    opportunity cost of its unfilled quantity (seconds, >= 0).
    """

    def __init__(self, end_horizon_seconds: float = 300.0) -> None:
        horizon = float(end_horizon_seconds)
        if not np.isfinite(horizon) or horizon < 0:
            raise ValueError(f"end_horizon_seconds must be a finite number >= 0, got {end_horizon_seconds!r}")
        self.end_horizon_seconds = horizon

    def analyze(self, orders: pd.DataFrame, fills: pd.DataFrame, prices: PriceBook | None = None,
                market_conditions: pd.DataFrame | None = None, *, order_fills=None) -> pd.DataFrame:
        """One row per order: the columns of the module docstring (currency, bps, prices).

        ``per_order.attrs["fills_without_order"]`` holds the number of fills whose order_id
        matches no order (they are not used). Rows follow the orders frame (prepared).
        """
        # ``order_fills``: execution.join_order_fills(orders, fills), when the caller has it already.
        of = order_fills if order_fills is not None else join_order_fills(orders, fills)
        n = of.orders
        sign = of.sign
        quantity = of.ordered_quantity
        filled = of.filled_quantity
        unfilled = of.unfilled_quantity
        fill_order = of.fill_order
        symbol_codes = of.symbol_codes

        # Every as-of lookup in one call: arrival (submission), end + horizon (only where a
        # quantity is left unfilled: P_end is used nowhere else), fills without bid and ask.
        bid, ask = of.fill_bid, of.fill_ask
        quoted = bid > 0  # in place from here on: a million rows, no temporary per step
        quoted &= ask > 0
        quoted &= np.isfinite(bid)
        quoted &= np.isfinite(ask)
        needs_mid = np.flatnonzero(~quoted)
        open_orders = np.flatnonzero(unfilled > 0)
        order_end = np.maximum(of.last_fill_ns[open_orders], of.ended_ns[open_orders])  # NaT is the smallest int64
        order_end = np.where(order_end == _NAT, of.submitted_ns[open_orders], order_end)
        end_time = np.where(order_end == _NAT, _NAT, order_end + int(round(self.end_horizon_seconds * 1e9)))
        arrays = _price_arrays(prices, of.symbol_names)
        arrival_quote = _asof(arrays, symbol_codes, of.submitted_ns, of.symbol_sort)
        found = _asof(arrays, np.concatenate([symbol_codes[open_orders], symbol_codes[fill_order[needs_mid]]]),
                      np.concatenate([end_time, of.fill_ns[needs_mid]]))
        fill_asof = found[len(open_orders):]
        end_mid = np.full(n, np.nan)
        end_mid[open_orders] = found[:len(open_orders)]

        decision = of.decision_price
        fill_arrival = of.first_arrival_price
        has_quote, has_fill_arrival, has_decision = np.isfinite(arrival_quote), np.isfinite(fill_arrival), np.isfinite(decision)
        arrival = np.where(has_quote, arrival_quote, np.where(has_fill_arrival, fill_arrival, decision))
        arrival_source = np.where(has_quote, 0, np.where(has_fill_arrival, 1, np.where(has_decision, 2, 3)))
        decision_used = np.where(has_decision, decision, arrival)
        priced = np.isfinite(decision_used)
        decision_source = np.where(has_decision, 0, np.where(priced, 1, 2))

        price = of.fill_price
        mid = bid + ask
        mid /= 2.0
        if len(needs_mid):  # exactly the rows without a usable bid and ask
            mid[needs_mid] = np.where(np.isfinite(fill_asof), fill_asof, price[needs_mid])
        q = of.fill_quantity
        weight = price - mid
        weight *= q
        spread = sign * _sum_by(fill_order, weight, n)
        weight = arrival[fill_order]
        np.subtract(mid, weight, out=weight)
        weight *= q
        impact = sign * _sum_by(fill_order, weight, n)
        timing = sign * (arrival - decision_used) * filled
        opportunity = np.where(unfilled > 0, sign * unfilled * (end_mid - decision_used), 0.0)
        # Without any price the order's cost is unknown: no component is reported, not even
        # the spread cost. "+ 0.0" turns the -0.0 of a sell's zero cost into 0.0.
        # (In place: each of the four arrays is new.)
        unpriced = np.flatnonzero(~priced)
        costs = {"timing_cost": timing, "spread_cost": spread, "price_impact": impact, "opportunity_cost": opportunity}
        for values in costs.values():
            values += 0.0
            values[unpriced] = np.nan
        total = timing.copy()
        total += spread
        total += impact
        total += opportunity
        costs["total_cost"] = total
        costs["fees"] = of.fees
        costs["total_cost_with_fees"] = costs["total_cost"] + of.fees
        notional = decision_used * quantity

        frame = of.frame
        order_id = frame["order_id"].array
        if not isinstance(order_id.dtype, pd.StringDtype):  # text stays as it came (any storage); the rest becomes text
            order_id = pd.array(order_id.to_numpy(dtype=object), dtype="str")
        columns: dict = {
            "order_id": order_id,
            "symbol": of.labels["symbol"],
            "venue": of.labels["venue"],
            "strategy_id": of.labels["strategy_id"],
            "side": of.labels["side"],
            "status": of.labels["status"],
            "market_condition": _market_conditions(of, market_conditions),
            "ordered_quantity": quantity,
            "filled_quantity": filled,
            "unfilled_quantity": unfilled,
            "fill_count": of.fill_count,
            "average_fill_price": of.average_fill_price,
            "decision_price": decision_used,
            "decision_price_source": _categorical(decision_source, DECISION_SOURCES),
            "arrival_mid": arrival,
            "arrival_price_source": _categorical(arrival_source, ARRIVAL_SOURCES),
            "end_mid": end_mid,
            "notional": notional,
        }
        columns.update(costs)
        per_notional = _divide(1e4, notional)  # one division instead of seven
        for name, values in costs.items():
            columns[f"{name}_bps"] = values * per_notional
        columns["vwap_deviation_bps"] = of.vwap_deviation_bps
        # copy=False: the arrays are new (or read-only views); consolidating 40 columns would copy 160 MB.
        per_order = pd.DataFrame(columns, copy=False)
        per_order.attrs["fills_without_order"] = of.fills_without_order
        return per_order

    @staticmethod
    def _summable(per_order: pd.DataFrame) -> dict[str, np.ndarray]:
        """The per order numbers the totals add up: NaN as 0 (an unknown value adds nothing)."""
        out = {}
        for name in ("notional", *COMPONENTS):
            values = per_order[name].to_numpy(dtype="float64")
            out[name] = np.where(np.isnan(values), 0.0, values)
        # The bps numerators: only orders with a notional (fees are known even without a price).
        priced = ~np.isnan(per_order["notional"].to_numpy(dtype="float64"))
        out["fees_priced"] = np.where(priced, out["fees"], 0.0)
        unfilled = per_order["unfilled_quantity"].to_numpy(dtype="float64") > 0
        out["orders_without_end_price"] = unfilled & np.isnan(per_order["end_mid"].to_numpy(dtype="float64"))
        out["orders_without_price"] = np.isnan(per_order["decision_price"].to_numpy(dtype="float64"))
        return out

    @staticmethod
    def _totals(summable: dict[str, np.ndarray], codes: np.ndarray | None, groups: int) -> dict[str, np.ndarray]:
        """Per group sum of every summable array (``codes`` None = one group of every order)."""
        out = {}
        for name, values in summable.items():
            if codes is None:
                out[name] = np.array([values.sum()])
            elif values.dtype == bool:
                out[name] = np.bincount(codes[values], minlength=groups)
            else:
                out[name] = np.bincount(codes, weights=values, minlength=groups)
        out["orders"] = np.array([len(summable["notional"])]) if codes is None else np.bincount(codes, minlength=groups)
        return out

    @staticmethod
    def _sums(totals: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The reported group columns from ``_totals``: sums, then bps = sum / sum(notional) * 1e4."""
        notional = totals["notional"].astype("float64")  # astype: bincount of nothing is int64
        out: dict[str, np.ndarray] = {"orders": totals["orders"].astype("int64"), "notional": notional}
        for name in COMPONENTS:
            out[name] = totals[name].astype("float64")
        for name in COMPONENTS:
            numerator = totals["fees_priced"] if name == "fees" else totals[name]
            out[f"{name}_bps"] = _divide(numerator.astype("float64"), notional) * 1e4
        for name in ("orders_without_end_price", "orders_without_price"):
            out[name] = totals[name].astype("int64")
        return out

    def _summary(self, per_order: pd.DataFrame, summable: dict) -> dict:
        sums = self._sums(self._totals(summable, None, 1))
        out = {name: (int(values[0]) if np.issubdtype(values.dtype, np.integer) else float(values[0]))
               for name, values in sums.items()}
        out["fills_without_order"] = int(per_order.attrs.get("fills_without_order", 0))
        return out

    @staticmethod
    def _grouping(per_order: pd.DataFrame, by: str) -> tuple[np.ndarray, pd.Index | np.ndarray]:
        if by not in per_order.columns:
            raise ValueError(f"cannot group by {by!r}: not a column of the per order frame")
        values = per_order[by]
        codes, keys = _group_codes(values)
        textual = isinstance(values.dtype, (pd.CategoricalDtype, pd.StringDtype)) or values.dtype == object
        return codes, (_label_categories(keys) if textual else keys)

    def _aggregates(self, per_order: pd.DataFrame, by: list[str], summable: dict,
                    groupings: list | None = None) -> list[pd.DataFrame]:
        """``aggregate`` for several groupings at once: when the groupings' key combinations are
        few, every column is summed once per combination (one bincount each) and each grouping
        adds up its combinations, instead of one bincount per column per grouping.
        ``groupings``: ``_grouping``'s (codes, keys) per name, when the caller has them."""
        if groupings is None:
            groupings = [self._grouping(per_order, name) for name in by]
        sizes = [len(keys) for _, keys in groupings]
        cells = int(np.prod(sizes)) if sizes else 0
        if len(by) > 1 and 0 < cells <= max(4 * len(per_order), 4096):
            cell = np.zeros(len(per_order), dtype=np.int64)
            for (codes, _), size in zip(groupings, sizes):
                cell = cell * size + codes
            per_cell = self._totals(summable, cell, cells)
            frames = []
            for axis, (name, (_, keys)) in enumerate(zip(by, groupings)):
                others = tuple(i for i in range(len(by)) if i != axis)
                totals = {key: values.reshape(sizes).sum(axis=others) for key, values in per_cell.items()}
                frames.append(pd.DataFrame({name: keys, **self._sums(totals)}))
            return frames
        return [pd.DataFrame({name: keys, **self._sums(self._totals(summable, codes, len(keys)))})
                for name, (codes, keys) in zip(by, groupings)]

    def summary(self, per_order: pd.DataFrame) -> dict:
        """Totals of ``analyze``'s frame: orders, notional, every component summed (currency) and
        in bps (sum(X) / sum(notional) * 1e4), orders_without_end_price, orders_without_price,
        fills_without_order (from ``per_order.attrs``)."""
        return self._summary(per_order, self._summable(per_order))

    def aggregate(self, per_order: pd.DataFrame, by: str) -> pd.DataFrame:
        """The ``summary`` sums and notional-weighted bps per value of ``by`` ("symbol", "venue",
        "strategy_id", "market_condition" or another column), one row per group sorted by key,
        orders without a key last; the groups add up to the summary."""
        return self._aggregates(per_order, [by], self._summable(per_order))[0]

    def report(self, orders: pd.DataFrame, fills: pd.DataFrame, prices: PriceBook | None = None,
               market_conditions: pd.DataFrame | None = None, *, order_fills=None) -> dict:
        """{"definitions", "summary", "by_symbol", "by_venue", "by_strategy",
        "by_market_condition", "per_order"}: ``analyze`` and what is computed from it."""
        of = order_fills if order_fills is not None else join_order_fills(orders, fills)
        per_order = self.analyze(orders, fills, prices, market_conditions, order_fills=of)
        definitions = dict(DEFINITIONS)
        definitions["end_horizon_seconds"] = f"{self.end_horizon_seconds:g} seconds"
        summable = self._summable(per_order)
        # The label columns are of's own Categoricals: their group codes are of's (computed
        # once, shared with the execution report).
        groupings = [(codes, _label_categories(keys)) for codes, keys in
                     (of.group_codes("symbol"), of.group_codes("venue"), of.group_codes("strategy_id"))]
        groupings.append(self._grouping(per_order, "market_condition"))
        by_symbol, by_venue, by_strategy, by_condition = self._aggregates(
            per_order, ["symbol", "venue", "strategy_id", "market_condition"], summable, groupings)
        return {
            "definitions": definitions,
            "summary": self._summary(per_order, summable),
            "by_symbol": by_symbol,
            "by_venue": by_venue,
            "by_strategy": by_strategy,
            "by_market_condition": by_condition,
            "per_order": per_order,
        }
