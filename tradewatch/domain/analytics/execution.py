"""Execution quality of orders: fill rates, rejections, latencies, maker share, VWAP deviation.

Input: ``orders`` (schema ``ORDERS``) and ``fills`` (schema ``FILLS``); frames that are not in
prepared form yet go through ``prepare()`` first. A fill belongs to the order whose ``order_id``
it carries; fills whose ``order_id`` matches no order row are not used and are counted
(``fills_without_order``). Per order, with the fills q_i (quantity) at price p_i:

* Q = ordered quantity; F = filled quantity = sum_i q_i.
* **completely filled** when F >= Q (within a relative 1e-9, so that fill quantities summing
  to Q up to float rounding count as complete); **partially filled** when 0 < F and not
  completely filled; **unfilled** when F = 0. Every order is exactly one of the three.
* **first fill / last fill** = the fill with the earliest / latest ``occurred_at`` (ties: the
  earlier / later row of the fills frame).
* ``vwap_deviation_bps`` = s (average_fill_price - V) / V * 1e4, s = +1 buy / -1 sell,
  average_fill_price = sum_i q_i p_i / F, V = the ``vwap`` field of the order's last fill (the
  market VWAP over the order's life). Positive = filled worse than the market VWAP (bought
  above it, sold below it). NaN when F = 0 or V is missing or not > 0.
* ``venue`` / ``strategy_id`` of an order: the order's own, else its first fill's.

Summary (``ExecutionAnalyzer.analyze``); every rate is over ALL orders (rejected ones
included), so fill_rate + partial_fill_rate + unfilled_rate = 1:

* ``fill_rate`` = completely filled orders / orders;  ``partial_fill_rate`` = partially filled
  orders / orders;  ``unfilled_rate`` = unfilled orders / orders.
* ``rejection_rate``, ``cancel_rate``, ``expiry_rate`` = orders whose final ``status`` is
  rejected / cancelled / expired, over orders (a cancelled order may also be partially filled).
* ``acknowledgement_latency_pX_seconds`` = the X-th percentile over orders having both times of
  accepted_at - submitted_at, seconds.
* ``order_to_first_fill_latency_pX_seconds`` / ``order_to_last_fill_latency_pX_seconds`` = the
  X-th percentile over orders with at least one fill of first / last fill time - submitted_at,
  seconds. Latencies are reported as measured: a negative one means the clocks disagree.
  Percentiles interpolate linearly between order statistics (numpy's default "linear"):
  position (n - 1) X / 100 in the sorted values.
* ``maker_share`` = quantity of fills with liquidity "maker" / quantity of fills with liquidity
  "maker" or "taker" (fraction 0..1; only when the fills frame has a ``liquidity`` column, NaN
  otherwise or when no fill says).
* ``average_vwap_deviation_bps`` = sum_o w_o d_o / sum_o w_o over orders whose
  vwap_deviation_bps d_o is known, weight w_o = F_o V_o (the filled value at the market VWAP),
  i.e. sum_o s_o F_o (average_fill_price_o - V_o) / sum_o F_o V_o * 1e4.

Groups (``aggregate``, by symbol, venue or strategy_id): the same numbers over the group's
orders, one row per key in sorted order, orders without a key last; counts add up to the
summary's.

A zero denominator (no orders, no latencies, ...) gives NaN; empty input gives NaN rates and
an empty aggregate, never an error.

Implementation: everything is vectorised (bincount, ufunc.at, integer sorts). The per order
fill aggregates (``join_order_fills``: the join of fills to orders, F, first/last fill, fees,
labels) are computed once by the caller and shared with the slippage module, so F,
"completely filled", first/last fill and the VWAP deviation mean the same there. Joining a
million fills by order_id text is the costliest step of both reports: the join takes the
order ids' integer codes (``order_keys``), which the report hashes once for the round trips
and the join together. Text label columns (symbol, venue, strategy_id, side, status) become pandas
Categoricals; a caller that already holds them as categoricals saves their hashing. Latency
percentiles sort integer nanoseconds with the group code in the high bits: one int64 sort
per latency and grouping.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from tradewatch.domain.analytics.order_keys import OrderKeys, order_keys
from tradewatch.domain.analytics.prices import as_nanoseconds
from tradewatch.domain.analytics.schema import FILLS, ORDERS, FrameSpec, prepare

_NAT = np.iinfo(np.int64).min
_INT64_MAX = np.iinfo(np.int64).max
# F >= Q * _COMPLETE counts as completely filled: fill quantities such as 0.1 + 0.2 add up to
# 0.30000000000000004 or 0.29999999999999998, and an order filled exactly should not show a
# 1e-17 unfilled remainder with an opportunity cost.
_COMPLETE = 1.0 - 1e-9
_NUMERIC_KINDS = ("float", "positive", "nonnegative")


def _percentile_label(percentile: float) -> str:
    return f"p{percentile:g}"


def _as_prepared(frame: pd.DataFrame, spec: FrameSpec) -> pd.DataFrame:
    """``frame`` itself when it already has the prepared form of ``spec``, else ``prepare()``'s.

    Prepared form: every column of the spec present, times tz-aware datetimes, numbers float64.
    ``prepare`` costs about 1 s per million fills, so a frame the caller prepared already is
    not prepared again.
    """
    if isinstance(frame, pd.DataFrame) and frame.columns.is_unique:
        dtypes = frame.dtypes
        ready = True
        for column in spec.columns:
            if column.name not in dtypes.index:
                ready = False
            elif column.kind == "time":
                ready = isinstance(dtypes[column.name], pd.DatetimeTZDtype)
            elif column.kind in _NUMERIC_KINDS:
                ready = dtypes[column.name] == np.float64
            if not ready:
                break
        if ready:
            return frame
    return prepare(frame, spec).frame


def _object_values(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A column as a numpy object array (missing -> NaN or None); all missing when absent."""
    if column not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    return frame[column].to_numpy(dtype=object)


def _label_categories(labels) -> pd.Index:
    return pd.Index(np.asarray(labels, dtype=object), dtype="str")


def _categorical(codes: np.ndarray, uniques, *, all_used: bool = False) -> pd.Categorical:
    """A Categorical of ``uniques[codes]`` (code -1 = missing) whose categories are the values
    present, sorted (as ``pd.Categorical(values)`` would have them). ``all_used``: every
    unique value occurs (as after ``pd.factorize``), no need to check."""
    text = np.array([str(u) for u in uniques], dtype=object)
    if len(set(text)) < len(text):  # two values with one text (1 and "1") make one label
        distinct, text = pd.factorize(text)
        codes = np.where(codes >= 0, distinct[codes], -1)
        all_used = False
    order = np.argsort(text, kind="stable")
    if not all_used:
        used = np.bincount(codes[codes >= 0], minlength=len(text)) > 0
        order = order[used[order]]
    # The codes in the smallest integer type that holds them (what Categorical keeps anyway),
    # checked here already: no conversion or validation pass in from_codes.
    rank_type = np.int8 if len(order) < 127 else np.int16 if len(order) < 32_767 else np.int32 if len(order) < 2**31 - 1 else np.int64
    rank = np.full(len(text) + 1, -1, dtype=rank_type)  # the extra slot maps code -1 to -1
    rank[order] = np.arange(len(order))
    return pd.Categorical.from_codes(rank[codes], categories=_label_categories(text[order]), validate=False)


def _arrow_backed(values) -> bool:
    """Text held by pyarrow (pandas' "str" dtype when pyarrow is installed)."""
    dtype = getattr(values, "dtype", None)
    return getattr(dtype, "storage", None) == "pyarrow" or type(dtype).__name__ == "ArrowDtype"


def _factorized(values) -> tuple[np.ndarray, np.ndarray]:
    """(codes, uniques as an object array) of a column, code -1 for a missing value.

    A categorical column is not hashed again: its own codes are used. Arrow-backed text is
    dictionary-encoded by pyarrow (hashing the bytes, no Python objects: ~13 ms per 500,000);
    other text goes in as a numpy object array, pandas' fastest path for Python strings.
    """
    if isinstance(getattr(values, "dtype", None), pd.CategoricalDtype):
        categorical = pd.Categorical(values)
        return np.asarray(categorical.codes, dtype=np.int64), np.asarray(categorical.categories, dtype=object)
    if isinstance(values, pd.Series) and _arrow_backed(values):
        codes, uniques = pd.factorize(values.array)
        return np.asarray(codes, dtype=np.int64), np.asarray(uniques, dtype=object)
    return pd.factorize(np.asarray(values, dtype=object))


def _equals(values: pd.Series, text: str) -> np.ndarray:
    """values == text as a writable bool array (missing -> False), by the fastest path: pyarrow's
    comparison for Arrow-backed text, numpy's on the object array otherwise (pandas' own
    comparison of Python strings is four times slower)."""
    if _arrow_backed(values):
        return np.array(values == text, dtype=bool)
    return np.asarray(values.to_numpy(dtype=object) == text, dtype=bool)


def _labels(values) -> pd.Categorical:
    """Text labels as a Categorical whose categories are the sorted distinct values (missing -> NaN).

    The label columns (symbol, venue, ...) are categoricals: grouping by them then needs no
    second hashing of half a million strings, and they still compare equal to text.
    """
    codes, uniques = _factorized(values)
    # pandas' factorize uses every unique value; a categorical's categories may be unused.
    return _categorical(codes, uniques, all_used=not isinstance(getattr(values, "dtype", None), pd.CategoricalDtype))


def _group_codes(values) -> tuple[np.ndarray, np.ndarray]:
    """Group codes 0..G-1 in sorted key order, missing keys as the last group; and the G keys.

    ``values``: a Categorical (its present categories are the keys) or anything pandas can
    factorize.
    """
    if isinstance(getattr(values, "dtype", None), pd.CategoricalDtype):
        categorical = pd.Categorical(values)
        codes = np.asarray(categorical.codes, dtype=np.int64)
        categories = np.asarray(categorical.categories, dtype=object)
        present = np.bincount(codes[codes >= 0], minlength=len(categories)) > 0
        order = np.argsort(np.array([str(c) for c in categories], dtype=object), kind="stable")
        kept = order[present[order]]
        new_code = np.full(len(categories) + 1, -1, dtype=np.int64)  # the extra slot maps code -1
        new_code[kept] = np.arange(len(kept))
        codes = new_code[codes]
        keys = categories[kept]
    else:
        codes, uniques = pd.factorize(np.asarray(values, dtype=object), sort=True)
        keys = np.asarray(uniques, dtype=object)
    if (codes < 0).any():
        codes = np.where(codes < 0, len(keys), codes)
        keys = np.append(keys.astype(object), np.nan)
    return codes.astype(np.intp), keys.astype(object)


@dataclass(frozen=True, eq=False)
class _OrderFills:
    """Per order fill aggregates, computed once and shared by the slippage and execution analyses.

    Arrays of length ``orders`` are aligned with the rows of ``frame`` (the prepared orders,
    duplicate order_id rows left out); arrays prefixed ``fill_`` have one entry per fill that
    joined an order, in the fills frame's row order.
    """

    frame: pd.DataFrame
    labels: dict  # symbol, venue, strategy_id, side, status -> Categorical (venue, strategy_id: else the first fill's)
    sign: np.ndarray  # +1.0 buy, -1.0 sell, NaN otherwise
    ordered_quantity: np.ndarray
    decision_price: np.ndarray  # NaN when missing or not > 0
    submitted_ns: np.ndarray
    accepted_ns: np.ndarray
    ended_ns: np.ndarray
    filled_quantity: np.ndarray
    fill_count: np.ndarray
    filled_value: np.ndarray  # sum_i q_i p_i
    fees: np.ndarray
    first_fill_ns: np.ndarray  # NAT when no fill
    last_fill_ns: np.ndarray
    first_arrival_price: np.ndarray  # the first fill's arrival_price (NaN when none or not > 0)
    last_vwap: np.ndarray  # the last fill's vwap (NaN when none or not > 0)
    maker_quantity: np.ndarray
    liquidity_known_quantity: np.ndarray
    has_liquidity: bool
    fill_order: np.ndarray  # position of the fill's order
    fill_quantity: np.ndarray
    fill_price: np.ndarray
    fill_bid: np.ndarray
    fill_ask: np.ndarray
    fill_ns: np.ndarray
    fills_without_order: int

    @property
    def orders(self) -> int:
        return len(self.sign)

    @cached_property
    def symbol_codes(self) -> np.ndarray:
        return _frozen(np.array(self.labels["symbol"].codes, dtype=np.int64))

    @cached_property
    def symbol_names(self) -> np.ndarray:
        return _frozen(np.array(self.labels["symbol"].categories, dtype=object))

    @cached_property
    def symbol_sort(self) -> tuple[np.ndarray, np.ndarray]:
        """(order positions grouped by symbol code, stable; bounds[c]:bounds[c + 1] of code c)."""
        codes = self.symbol_codes
        names = len(self.symbol_names)
        order = np.argsort(_small_codes(codes, names + 1), kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(-1, names + 1))  # code -1 (missing) first
        return _frozen(order), _frozen(bounds)

    @cached_property
    def completely_filled(self) -> np.ndarray:
        return _frozen(self.filled_quantity >= self.ordered_quantity * _COMPLETE)

    @cached_property
    def unfilled_quantity(self) -> np.ndarray:
        """Q - F, 0 when completely filled (or overfilled)."""
        return _frozen(np.where(self.completely_filled, 0.0, self.ordered_quantity - self.filled_quantity))

    @cached_property
    def average_fill_price(self) -> np.ndarray:
        return _frozen(_divide(self.filled_value, self.filled_quantity))

    @cached_property
    def vwap_deviation_bps(self) -> np.ndarray:
        return _frozen(self.sign * (self.average_fill_price - self.last_vwap) / self.last_vwap * 1e4)

    def group_codes(self, label: str) -> tuple[np.ndarray, np.ndarray]:
        """``_group_codes(self.labels[label])``, computed once per label."""
        cache = self.__dict__.setdefault("_group_codes_cache", {})
        if label not in cache:
            codes, keys = _group_codes(self.labels[label])
            cache[label] = (_frozen(codes), keys)
        return cache[label]


def _frozen(values: np.ndarray) -> np.ndarray:
    """``values`` made read-only: cached arrays are shared by both analyses and their frames."""
    values.setflags(write=False)
    return values


def _divide(numerator, denominator) -> np.ndarray:
    """numerator / denominator elementwise (float64), NaN where the denominator is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.true_divide(numerator, denominator, dtype="float64")
    return np.where(np.asarray(denominator) == 0, np.nan, out)


def _sum_by(positions: np.ndarray, weights: np.ndarray, length: int) -> np.ndarray:
    """sum of ``weights`` per position 0..length-1 (float64, also when there is nothing to sum)."""
    return np.asarray(np.bincount(positions, weights=weights, minlength=length), dtype="float64")


def _positive(values: np.ndarray) -> np.ndarray:
    """float64 copy with NaN where a value is missing, infinite or not > 0 (not a usable price)."""
    values = np.asarray(values, dtype="float64")
    return np.where(np.isfinite(values) & (values > 0), values, np.nan)


_LABELS = ("symbol", "venue", "strategy_id", "side", "status")


def _liquidity_flags(fills: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """(fill says maker, fill says taker) for every fills row (any case and surrounding blanks),
    None without a liquidity column."""
    if "liquidity" not in fills.columns:
        return None
    liquidity = fills["liquidity"]
    if isinstance(liquidity.dtype, pd.CategoricalDtype):
        codes, labels = _factorized(liquidity)
        lowered = np.array([str(label).strip().lower() for label in labels] + [""], dtype=object)
        label = lowered[codes]  # code -1 (missing) -> ""
        return label == "maker", label == "taker"
    # Two comparisons cost half a hashing of a million strings; only the rest (another
    # spelling such as "Maker", or missing) is factorized and normalised.
    maker, taker = _equals(liquidity, "maker"), _equals(liquidity, "taker")
    rest = np.flatnonzero(~(maker | taker))
    if len(rest):
        codes, labels = pd.factorize(liquidity.iloc[rest].to_numpy(dtype=object))
        lowered = np.array([str(v).strip().lower() for v in labels] + [""], dtype=object)[codes]
        maker[rest] = lowered == "maker"
        taker[rest] = lowered == "taker"
    return maker, taker


def _compute_order_fills(orders: pd.DataFrame, fills: pd.DataFrame, keys: OrderKeys) -> _OrderFills:
    categorical = {column: isinstance(orders[column].dtype, pd.CategoricalDtype) for column in _LABELS}

    def side_work() -> dict:
        """Everything that does not need the join: label codes (and their Categoricals, as
        if every order row is kept), the liquidity, the per fill numbers over every fill row."""
        label_codes = {column: _factorized(orders[column]) for column in _LABELS}
        quantity = fills["quantity"].to_numpy(dtype="float64")
        fill_ns = as_nanoseconds(fills["occurred_at"])
        work = {
            "label_codes": label_codes,
            # pandas' factorize uses every unique value it returns; a categorical may not
            "labels": {column: _categorical(codes, uniques, all_used=not categorical[column])
                       for column, (codes, uniques) in label_codes.items()},
            "liquidity": _liquidity_flags(fills),
            "quantity": quantity,
            "price": fills["price"].to_numpy(dtype="float64"),
            "fill_ns": fill_ns,
            "time_ordered": len(fill_ns) < 2 or bool((fill_ns[1:] >= fill_ns[:-1]).all()),
            "fee": np.nan_to_num(fills["fee"].to_numpy(dtype="float64"), nan=0.0),
        }
        work["value"] = quantity * work["price"]
        if work["liquidity"] is not None:
            maker, taker = work["liquidity"]
            work["maker_quantity"] = quantity * maker
            work["known_quantity"] = quantity * (maker | taker)
        return work

    position, kept = keys.join()
    work = side_work()
    label_codes, prebuilt = work["label_codes"], work["labels"]
    if kept is not None:  # prepare() keeps the first row of an order_id; do the same
        orders = orders.iloc[kept]
        label_codes = {column: (codes[kept], uniques) for column, (codes, uniques) in label_codes.items()}
        prebuilt = {}
    n = len(orders)
    joined = position >= 0
    everything = bool(joined.all())
    rows = np.arange(len(fills)) if everything else np.flatnonzero(joined)
    order = position if everything else position[rows]

    def fill_column(column: str) -> np.ndarray:
        values = work[column] if column in work else fills[column].to_numpy(dtype="float64")
        return values if everything else values[rows]

    quantity = fill_column("quantity")
    price = fill_column("price")
    all_fill_ns = work["fill_ns"]
    fill_ns = all_fill_ns if everything else all_fill_ns[rows]

    filled_quantity = _sum_by(order, quantity, n)
    fill_count = np.bincount(order, minlength=n).astype("int64", copy=False)
    filled_value = _sum_by(order, fill_column("value"), n)
    fees = _sum_by(order, fill_column("fee"), n)

    # First and last fill per order without sorting a million rows. Fills in time order (as
    # engines report them): the first / last row of each order (ufunc.at). Otherwise: the
    # extreme time per order, then among the fills at that time the first / last row.
    has_fill = fill_count > 0
    first_row = np.full(n, _INT64_MAX, dtype="int64")
    last_row = np.full(n, -1, dtype="int64")
    if work["time_ordered"] or bool((fill_ns[1:] >= fill_ns[:-1]).all()):
        np.minimum.at(first_row, order, rows)
        np.maximum.at(last_row, order, rows)
    else:
        first_ns = np.full(n, _INT64_MAX, dtype="int64")
        np.minimum.at(first_ns, order, fill_ns)
        last_ns = np.full(n, _NAT, dtype="int64")
        np.maximum.at(last_ns, order, fill_ns)
        at_first = fill_ns == first_ns[order]
        np.minimum.at(first_row, order[at_first], rows[at_first])
        at_last = fill_ns == last_ns[order]
        np.maximum.at(last_row, order[at_last], rows[at_last])
    # Orders without a fill point at row 0; every value read through them is masked out.
    first_row = np.where(has_fill, first_row, 0)
    last_row = np.where(has_fill, last_row, 0)
    if not len(fills):
        all_fill_ns = np.zeros(1, dtype="int64")  # so that row 0 can be read (and masked out)
    first_ns = np.where(has_fill, all_fill_ns[first_row], _NAT)
    last_ns = np.where(has_fill, all_fill_ns[last_row], _NAT)

    def fill_value_at(column: str, row: np.ndarray) -> np.ndarray:
        if not len(fills):
            return np.full(n, np.nan)
        return np.where(has_fill, fills[column].to_numpy(dtype="float64")[row], np.nan)

    has_liquidity = work["liquidity"] is not None
    maker_quantity = np.zeros(n)
    liquidity_known_quantity = np.zeros(n)
    if has_liquidity and len(rows):
        maker_quantity = _sum_by(order, fill_column("maker_quantity"), n)
        liquidity_known_quantity = _sum_by(order, fill_column("known_quantity"), n)

    def with_first_fill_fallback(column: str) -> pd.Categorical:
        codes, uniques = label_codes[column]
        missing = (codes < 0) & has_fill  # factorize marks missing values: no separate isna pass
        if missing.any() and column in fills.columns:
            values = _object_values(orders, column).copy()  # to_numpy may be a read-only view
            values[missing] = _object_values(fills, column)[first_row[missing]]
            codes, uniques = pd.factorize(values)
            return _categorical(codes, uniques)
        return label(column)

    def label(column: str) -> pd.Categorical:
        if column in prebuilt:
            return prebuilt[column]
        codes, uniques = label_codes[column]
        return _categorical(codes, uniques)

    labels = {
        "symbol": label("symbol"),
        "venue": with_first_fill_fallback("venue"),
        "strategy_id": with_first_fill_fallback("strategy_id"),
        "side": label("side"),
        "status": label("status"),
    }
    side = labels["side"]
    sign_of_side = np.array([1.0 if s == "buy" else -1.0 if s == "sell" else np.nan for s in side.categories] + [np.nan])

    return _OrderFills(
        frame=orders,
        labels=labels,
        sign=sign_of_side[np.asarray(side.codes)],
        ordered_quantity=orders["quantity"].to_numpy(dtype="float64"),
        decision_price=_positive(orders["decision_price"].to_numpy(dtype="float64")),
        submitted_ns=as_nanoseconds(orders["submitted_at"]),
        accepted_ns=as_nanoseconds(orders["accepted_at"]),
        ended_ns=as_nanoseconds(orders["ended_at"]),
        filled_quantity=filled_quantity,
        fill_count=fill_count,
        filled_value=filled_value,
        fees=fees,
        first_fill_ns=first_ns,
        last_fill_ns=last_ns,
        first_arrival_price=_positive(fill_value_at("arrival_price", first_row)),
        last_vwap=_positive(fill_value_at("vwap", last_row)),
        maker_quantity=maker_quantity,
        liquidity_known_quantity=liquidity_known_quantity,
        has_liquidity=has_liquidity,
        fill_order=order,
        fill_quantity=quantity,
        fill_price=price,
        fill_bid=fill_column("bid"),
        fill_ask=fill_column("ask"),
        fill_ns=fill_ns,
        fills_without_order=int(len(fills) - len(rows)),
    )


def join_order_fills(orders: pd.DataFrame, fills: pd.DataFrame, *, keys: OrderKeys | None = None) -> _OrderFills:
    """The per order fill aggregates (the join of fills to orders by order_id, F, first and last
    fill, fees, labels) that both analyzers read. Joining a million fills costs more than all
    the arithmetic after it, so a caller running both analyses computes this once and passes it
    to each (``order_fills=``); the analyzers compute it themselves otherwise. ``keys``: the
    order ids already hashed (``order_keys(orders, fills)`` of these prepared frames)."""
    orders, fills = _as_prepared(orders, ORDERS), _as_prepared(fills, FILLS)
    if keys is None:
        keys = order_keys(orders, fills)
    keys.check(orders, fills)
    return _compute_order_fills(orders, fills, keys)




def _small_codes(codes: np.ndarray, groups: int) -> np.ndarray:
    # numpy sorts 16-bit integers stably with a radix sort: ten times faster than int64.
    return codes.astype(np.int16 if groups < 32_000 else np.int64)


def _ascending(values: np.ndarray) -> np.ndarray:
    """Positions of the finite ``values`` in ascending order of value."""
    finite = np.flatnonzero(np.isfinite(values))
    return finite[np.argsort(values[finite])]  # ties need no order: equal values are equal


def _group_percentiles(values: np.ndarray, codes: np.ndarray, groups: int, percentiles,
                       ascending: np.ndarray | None = None) -> np.ndarray:
    """Per group percentiles of the finite ``values``: array (len(percentiles), groups), NaN for
    a group without any.

    ``codes[i]`` in 0..groups-1 is the group of ``values[i]``; ``ascending`` (``_ascending(values)``)
    may be passed to share one sort by value between groupings. Percentile p of a group's
    sorted values v_0..v_(n-1): h = (n - 1) p / 100, v_floor(h) + (v_(floor(h)+1) - v_floor(h))
    (h - floor(h)), numpy's default "linear" method.
    """
    if ascending is None:
        ascending = _ascending(values)
    group_of = codes[ascending] if groups > 1 else np.zeros(len(ascending), dtype=np.intp)
    # A stable sort by group of the value-sorted positions: each group's values in ascending
    # order, one after the other (a radix sort of small integers, no second sort by value).
    by_group = ascending[np.argsort(_small_codes(group_of, groups), kind="stable")] if groups > 1 else ascending
    counts = np.bincount(group_of, minlength=groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype("int64")
    present = counts > 0
    out = np.full((len(percentiles), groups), np.nan)
    for index, percentile in enumerate(percentiles):
        h = (counts - 1) * (float(percentile) / 100.0)
        low = np.floor(h).astype("int64")
        high = np.minimum(low + 1, counts - 1)
        low_value = values[by_group[(starts + low)[present]]]
        high_value = values[by_group[(starts + high)[present]]]
        out[index, present] = low_value + (high_value - low_value) * (h - low)[present]
    return out


def _nanosecond_percentiles(nanoseconds: np.ndarray, codes: np.ndarray | None, groups: int,
                            percentiles) -> np.ndarray:
    """``_group_percentiles(nanoseconds / 1e9, codes, groups, percentiles)`` for integer
    nanoseconds (every value known; ``codes`` None = one group), by one sort of integers.

    Group and value share one int64 key, (code << bits) | (value - smallest value): sorting
    the keys puts each group's values in ascending order, one group after the other (numpy
    sorts int64 with SIMD, several times faster than an argsort and without gathers).
    """
    out = np.full((len(percentiles), groups), np.nan)
    if not len(nanoseconds):
        return out
    if codes is None:
        counts = np.array([len(nanoseconds)])
        ordered = np.sort(nanoseconds)

        def read(positions: np.ndarray) -> np.ndarray:
            return ordered[positions]
    else:
        counts = np.bincount(codes, minlength=groups)
        base = int(nanoseconds.min())
        bits = (int(nanoseconds.max()) - base).bit_length()
        if bits + max(groups - 1, 1).bit_length() <= 62:
            key = codes.astype(np.int64) << bits
            key |= nanoseconds - base
            key.sort()
            mask = (1 << bits) - 1

            def read(positions: np.ndarray) -> np.ndarray:
                return (key[positions] & mask) + base
        else:
            order = np.lexsort((nanoseconds, codes))

            def read(positions: np.ndarray) -> np.ndarray:
                return nanoseconds[order[positions]]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype("int64")
    present = counts > 0
    for index, percentile in enumerate(percentiles):
        h = (counts - 1) * (float(percentile) / 100.0)
        low = np.floor(h).astype("int64")
        high = np.minimum(low + 1, counts - 1)
        low_value = read((starts + low)[present]) / 1e9
        high_value = read((starts + high)[present]) / 1e9
        out[index, present] = low_value + (high_value - low_value) * (h - low)[present]
    return out


_LATENCIES = ("acknowledgement", "order_to_first_fill", "order_to_last_fill")


class ExecutionAnalyzer:
    """Fill, partial fill, rejection, cancel and expiry rates, latency percentiles (seconds),
    maker share (fraction of quantity) and VWAP deviation (bps); definitions in the module docstring.
    """

    def __init__(self, latency_percentiles=(50, 90, 99)) -> None:
        percentiles = tuple(float(p) for p in latency_percentiles)
        if not percentiles or any(not (0.0 <= p <= 100.0) for p in percentiles):
            raise ValueError(f"latency_percentiles must be numbers in 0..100, got {latency_percentiles!r}")
        self.latency_percentiles = percentiles

    # -- per order ----------------------------------------------------------------------------
    @staticmethod
    def _per_order(of: _OrderFills) -> dict:
        has_fill = of.fill_count > 0
        # One code per order for the fill state and one for the status, so that a grouping
        # counts every state with a single bincount.
        fill_state = np.where(of.completely_filled, 0, np.where(has_fill, 1, 2)).astype(np.int64, copy=False)
        status = of.labels["status"]
        status_names = list(status.categories) + [None]  # code -1 (missing) -> the last slot
        status_code = np.asarray(status.codes, dtype=np.int64) % len(status_names)

        def nanoseconds(later: np.ndarray, earlier: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            # (orders with the latency, the latency in integer ns): integers sort faster than
            # float seconds and in the same order; a value read back is (ns / 1e9), the very
            # float "(later - earlier) / 1e9" gives.
            rows = np.flatnonzero(known)
            return rows, later[rows] - earlier[rows]

        submitted_known = of.submitted_ns != _NAT
        deviation = of.vwap_deviation_bps
        weight = of.filled_quantity * of.last_vwap
        known_deviation = np.isfinite(deviation) & np.isfinite(weight)
        fill_known = submitted_known & has_fill
        return {
            "fill_state": fill_state,
            "status_code": status_code,
            "status_names": status_names,
            "fill_count": of.fill_count,
            "acknowledgement": nanoseconds(of.accepted_ns, of.submitted_ns, submitted_known & (of.accepted_ns != _NAT)),
            "order_to_first_fill": nanoseconds(of.first_fill_ns, of.submitted_ns, fill_known),
            "order_to_last_fill": nanoseconds(of.last_fill_ns, of.submitted_ns, fill_known),
            "maker_quantity": of.maker_quantity,
            "liquidity_known_quantity": of.liquidity_known_quantity,
            "weighted_deviation": np.where(known_deviation, deviation * weight, 0.0),
            "deviation_weight": np.where(known_deviation, weight, 0.0),
        }

    _COUNTS = ("orders", "fill_states", "statuses")
    _SUMS = ("fill_count", "maker_quantity", "liquidity_known_quantity", "weighted_deviation", "deviation_weight")

    @staticmethod
    def _additive(per_order: dict, codes: np.ndarray | None, groups: int,
                  names: tuple[str, ...] = _COUNTS + _SUMS) -> dict[str, np.ndarray]:
        """The per group sums and state counts ``names`` (``codes`` None: one group of every order)."""
        single = codes is None
        states = len(per_order["status_names"])

        def total(values: np.ndarray) -> np.ndarray:
            if single:
                return np.array([values.sum()], dtype="float64")
            return np.bincount(codes, weights=values, minlength=groups).astype("float64")  # int64 when empty

        def table(state: np.ndarray, count: int) -> np.ndarray:
            if single:
                return np.bincount(state, minlength=count).reshape(1, count)
            return np.bincount(codes * count + state, minlength=groups * count).reshape(groups, count)

        out = {}
        for name in names:
            if name == "orders":
                out[name] = (np.array([len(per_order["fill_state"])]) if single
                             else np.bincount(codes, minlength=groups)).astype("int64")
            elif name == "fill_states":
                out[name] = table(per_order["fill_state"], 3)
            elif name == "statuses":
                out[name] = table(per_order["status_code"], states)
            else:
                out[name] = total(per_order[name])
        return out

    def _grouped(self, of: _OrderFills, per_order: dict, codes: np.ndarray | None, groups: int,
                 sums: dict | None = None) -> dict[str, np.ndarray]:
        """Every reported number per group; ``codes`` None: the summary (one group). ``sums``:
        ``_additive``'s result when the caller has it already."""
        if sums is None:
            sums = self._additive(per_order, codes, groups)
        elif any(name not in sums for name in self._SUMS):
            sums = {**sums, **self._additive(per_order, codes, groups, self._SUMS)}
        orders = sums["orders"]
        fill_states = sums["fill_states"]
        status_names = per_order["status_names"]
        statuses = sums["statuses"]

        def status_count(name: str) -> np.ndarray:
            return statuses[:, status_names.index(name)] if name in status_names else np.zeros(groups, dtype="int64")

        counts = {
            "filled_orders": fill_states[:, 0],
            "partially_filled_orders": fill_states[:, 1],
            "unfilled_orders": fill_states[:, 2],
            "rejected_orders": status_count("rejected"),
            "cancelled_orders": status_count("cancelled"),
            "expired_orders": status_count("expired"),
        }
        out: dict[str, np.ndarray] = {"orders": orders, "fills": sums["fill_count"].round().astype("int64")}
        out.update({name: values.astype("int64") for name, values in counts.items()})
        for rate, name in (("fill_rate", "filled_orders"), ("partial_fill_rate", "partially_filled_orders"),
                           ("unfilled_rate", "unfilled_orders"), ("rejection_rate", "rejected_orders"),
                           ("cancel_rate", "cancelled_orders"), ("expiry_rate", "expired_orders")):
            out[rate] = _divide(counts[name], orders)
        for latency in _LATENCIES:
            rows, nanoseconds = per_order[latency]
            found = _nanosecond_percentiles(nanoseconds, None if codes is None else codes[rows], groups,
                                            self.latency_percentiles)
            for index, percentile in enumerate(self.latency_percentiles):
                out[f"{latency}_latency_{_percentile_label(percentile)}_seconds"] = found[index]
        if of.has_liquidity:
            out["maker_share"] = _divide(sums["maker_quantity"], sums["liquidity_known_quantity"])
        else:
            out["maker_share"] = np.full(groups, np.nan)
        out["average_vwap_deviation_bps"] = _divide(sums["weighted_deviation"], sums["deviation_weight"])
        return out

    def _summary(self, of: _OrderFills, per_order: dict) -> dict:
        grouped = self._grouped(of, per_order, None, 1)
        summary: dict = {}
        for name, values in grouped.items():
            value = values[0]
            summary[name] = int(value) if np.issubdtype(values.dtype, np.integer) else float(value)
        summary["fills_without_order"] = of.fills_without_order
        return summary

    @staticmethod
    def _grouping(of: _OrderFills, by: str) -> tuple[np.ndarray, np.ndarray]:
        if by in of.labels:
            return of.group_codes(by)
        if by in of.frame.columns:
            return _group_codes(of.frame[by].to_numpy(dtype=object))
        raise ValueError(f"cannot group orders by {by!r}: not an orders column")

    def _aggregates(self, of: _OrderFills, per_order: dict, by: list[str]) -> list[pd.DataFrame]:
        """``aggregate`` for several groupings. When their key combinations are few, the order
        and state counts are taken once per combination (one bincount each) and each grouping
        adds up its combinations, instead of one bincount per count per grouping. (The float
        sums are still one bincount per grouping: adding up per combination sums would round
        differently from the single aggregate.)"""
        groupings = [self._grouping(of, name) for name in by]
        sizes = [len(keys) for _, keys in groupings]
        cells = int(np.prod(sizes)) if sizes else 0
        per_grouping: list[dict | None] = [None] * len(by)
        if len(by) > 1 and 0 < cells <= max(4 * of.orders, 4096):
            cell = np.zeros(of.orders, dtype=np.int64)
            for (codes, _), size in zip(groupings, sizes):
                cell = cell * size + codes
            per_cell = self._additive(per_order, cell, cells, self._COUNTS)
            for axis in range(len(by)):
                others = tuple(i for i in range(len(by)) if i != axis)
                per_grouping[axis] = {
                    name: values.reshape(*sizes, *values.shape[1:]).sum(axis=others)
                    for name, values in per_cell.items()
                }
        frames = []
        for name, (codes, keys), sums in zip(by, groupings, per_grouping):
            grouped = self._grouped(of, per_order, codes, len(keys), sums)
            frames.append(pd.DataFrame({name: _label_categories(keys) if name in of.labels else keys, **grouped}))
        return frames

    def _aggregate(self, of: _OrderFills, per_order: dict, by: str) -> pd.DataFrame:
        return self._aggregates(of, per_order, [by])[0]

    # -- public -------------------------------------------------------------------------------
    def analyze(self, orders: pd.DataFrame, fills: pd.DataFrame, *, order_fills: _OrderFills | None = None) -> dict:
        """Summary over all orders: counts, rates (fractions of ALL orders), latency percentiles
        in seconds, maker share (fraction of quantity), average VWAP deviation (bps).

        Keys: orders, fills (fills joined to an order), filled_orders, partially_filled_orders,
        unfilled_orders, rejected_orders, cancelled_orders, expired_orders, fill_rate,
        partial_fill_rate, unfilled_rate, rejection_rate, cancel_rate, expiry_rate,
        {acknowledgement,order_to_first_fill,order_to_last_fill}_latency_pX_seconds for each X in
        ``latency_percentiles``, maker_share, average_vwap_deviation_bps, fills_without_order.
        """
        of = order_fills if order_fills is not None else join_order_fills(orders, fills)
        per_order = self._per_order(of)
        return self._summary(of, per_order)

    def aggregate(self, orders: pd.DataFrame, fills: pd.DataFrame, by: str, *,
                  order_fills: _OrderFills | None = None) -> pd.DataFrame:
        """The ``analyze`` numbers per value of ``by`` ("symbol", "venue", "strategy_id" or any
        other orders column), one row per group sorted by key, orders with no key last.

        Counts sum to the summary's; rates and percentiles are those of the group's orders.
        """
        of = order_fills if order_fills is not None else join_order_fills(orders, fills)
        per_order = self._per_order(of)
        return self._aggregate(of, per_order, by)

    def report(self, orders: pd.DataFrame, fills: pd.DataFrame, *, order_fills: _OrderFills | None = None) -> dict:
        """{"definitions": {name: meaning}, "summary": analyze(), "by_symbol", "by_venue",
        "by_strategy": aggregate() by symbol, venue, strategy_id}."""
        of = order_fills if order_fills is not None else join_order_fills(orders, fills)
        per_order = self._per_order(of)
        by_symbol, by_venue, by_strategy = self._aggregates(of, per_order, ["symbol", "venue", "strategy_id"])
        return {
            "definitions": self.definitions(),
            "summary": self._summary(of, per_order),
            "by_symbol": by_symbol,
            "by_venue": by_venue,
            "by_strategy": by_strategy,
        }

    def definitions(self) -> dict[str, str]:
        """Every reported name with its formula and unit (text for people)."""
        labels = ", ".join(_percentile_label(p) for p in self.latency_percentiles)
        return {
            "orders": "number of orders (rows of the orders frame, duplicate order_id left out)",
            "fills": "number of fills whose order_id matches an order",
            "fills_without_order": "number of fills whose order_id matches no order; not used anywhere",
            "filled_orders": "orders completely filled: F >= Q (within a relative 1e-9), F = sum of fill "
                             "quantities, Q = ordered quantity",
            "partially_filled_orders": "orders with 0 < F and not completely filled",
            "unfilled_orders": "orders with F = 0",
            "rejected_orders": "orders whose final status is rejected",
            "cancelled_orders": "orders whose final status is cancelled",
            "expired_orders": "orders whose final status is expired",
            "fill_rate": "filled_orders / orders (over ALL orders, rejected included); fraction",
            "partial_fill_rate": "partially_filled_orders / orders; fraction",
            "unfilled_rate": "unfilled_orders / orders; fraction (fill_rate + partial_fill_rate + unfilled_rate = 1)",
            "rejection_rate": "rejected_orders / orders; fraction",
            "cancel_rate": "cancelled_orders / orders; fraction",
            "expiry_rate": "expired_orders / orders; fraction",
            "acknowledgement_latency_pX_seconds": f"X-th percentile ({labels}) of accepted_at - submitted_at over "
                                                  f"orders with both times; seconds, linear interpolation",
            "order_to_first_fill_latency_pX_seconds": f"X-th percentile ({labels}) of first fill occurred_at - "
                                                      f"submitted_at over orders with a fill; seconds",
            "order_to_last_fill_latency_pX_seconds": f"X-th percentile ({labels}) of last fill occurred_at - "
                                                     f"submitted_at over orders with a fill; seconds",
            "maker_share": "quantity of fills with liquidity maker / quantity of fills with liquidity maker or "
                           "taker; fraction, NaN without a liquidity column",
            "average_vwap_deviation_bps": "sum_o F V d_o / sum_o F V over orders with a known d_o = s "
                                          "(average_fill_price - V) / V * 1e4, V = the last fill's vwap, s = +1 buy "
                                          "/ -1 sell; bps, positive = worse than the market VWAP",
        }
