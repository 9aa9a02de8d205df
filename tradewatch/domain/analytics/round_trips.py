"""FIFO round trips from fills, fully vectorised.

A *book* is one (strategy_id, symbol) pair. Fills with no strategy_id share one book per symbol
(the "(none)" strategy), so they are never matched against a named strategy's fills. Within a
book, fills are processed in ``occurred_at`` order, ties in input order (a stable sort).

Each fill of signed quantity s (+ for buy, - for sell) against the book's position x before it
splits into

    closing part  c = min(|s|, |x|)  when s and x have opposite signs, else 0
    opening part  o = |s| - c        (opens or adds; after a flip it opens the new side)

Lots are closed first in, first out. Because every unit opened is closed in FIFO order, the
k-th unit opened in a book is the k-th unit closed: the cumulative opened quantity and the
cumulative closed quantity line up. A *virtual close* of each book's still-open position at
its end makes both totals equal per book, so the two cumulative sums stay aligned across books
laid end to end. The matched *pieces* are the intervals between consecutive points of the
union of both sets of cumulative breakpoints; each piece lies inside exactly one opening fill
and one closing fill (the ``searchsorted`` of its end in either cumulative sum, read off the
merge of the two). Pieces matched to a virtual close are the still-open lots.

Quantities are matched as exact integers, ``units = round(quantity * 10**quantity_decimals)``
(int64), so partial fills never leave float dust.

A *round trip* is the matched quantity sharing (book, opening order_id, closing order_id):
one order filled in two parts and closed by another order filled in two parts is one round
trip. A flip order is the closing order of one round trip and the opening order of the next.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from tradewatch.domain.analytics.order_keys import OrderKeys, arrow_text, order_keys
from tradewatch.domain.analytics.prices import as_nanoseconds

TRIP_COLUMNS = (
    "strategy_id", "symbol", "direction", "quantity", "entry_at", "exit_at", "holding_seconds",
    "entry_price", "exit_price", "gross_pnl", "fees", "pnl", "opening_order_id", "closing_order_id",
    "opening_signal_id", "venue",
)
OPEN_LOT_COLUMNS = (
    "strategy_id", "symbol", "direction", "quantity", "entry_at", "entry_price", "opening_order_id",
    "opening_signal_id", "fees",
)

# Cumulative sums of units must stay inside int64; keep a factor-2 margin for the position
# arithmetic (position before = position after - signed quantity).
_MAX_TOTAL_UNITS = float(2**62)
_NANOSECONDS_PER_SECOND = 1e9


@dataclass(frozen=True)
class RoundTrips:
    """The result of :func:`match_round_trips`.

    ``trips``: one row per round trip (columns ``TRIP_COLUMNS``, see :func:`match_round_trips`).
    ``open_lots``: the still-open pieces, one row per opening fill with quantity left open.
    ``total_fees``: sum of ``fee`` over all fills, currency.
    ``unallocated_fees``: fees of fills whose quantity rounds to 0 units at
    ``quantity_decimals`` (they cannot be matched); 0 unless such dust fills exist.
    Fee conservation: ``trips.fees.sum() + open_lots.fees.sum() + unallocated_fees == total_fees``
    to float precision.
    """

    trips: pd.DataFrame
    open_lots: pd.DataFrame
    total_fees: float = 0.0
    unallocated_fees: float = 0.0
    quantity_decimals: int = 8

    @property
    def realized_pnl(self) -> float:
        """Sum of ``trips.pnl``: realized PnL net of fees, currency (0.0 with no trips)."""
        return float(self.trips["pnl"].sum()) if len(self.trips) else 0.0

    @property
    def open_fees(self) -> float:
        """Opening fees allocated to the still-open lots, currency."""
        return float(self.open_lots["fees"].sum()) if len(self.open_lots) else 0.0

    @property
    def matched_fees(self) -> float:
        """Fees allocated to round trips (opening and closing shares), currency."""
        return float(self.trips["fees"].sum()) if len(self.trips) else 0.0


def utc_times(nanoseconds: np.ndarray) -> pd.DatetimeIndex:
    """``datetime64[ns, UTC]`` from integer nanoseconds since the epoch."""
    return pd.DatetimeIndex(np.asarray(nanoseconds, dtype="int64").view("M8[ns]")).tz_localize("UTC")


def empty_trips() -> pd.DataFrame:
    """A trips frame with no rows and the documented columns and dtypes."""
    return _trips_frame({"direction": _directions(np.array([], dtype=bool))}
                        | {name: np.array([], dtype=object) for name in ("strategy_id", "symbol",
                        "opening_order_id", "closing_order_id", "opening_signal_id", "venue")},
                        np.array([], dtype="int64"), np.array([], dtype="int64"),
                        {name: np.array([], dtype="float64") for name in ("quantity", "entry_price",
                         "exit_price", "gross_pnl", "fees", "pnl")})


def empty_open_lots() -> pd.DataFrame:
    """An open-lots frame with no rows and the documented columns and dtypes."""
    return _open_lots_frame({"direction": _directions(np.array([], dtype=bool))}
                            | {name: np.array([], dtype=object) for name in ("strategy_id", "symbol",
                             "opening_order_id", "opening_signal_id")},
                            np.array([], dtype="int64"),
                            {name: np.array([], dtype="float64") for name in ("quantity", "entry_price", "fees")})


def _trips_frame(text: dict, entry_ns: np.ndarray, exit_ns: np.ndarray, numbers: dict) -> pd.DataFrame:
    holding = (exit_ns - entry_ns) / _NANOSECONDS_PER_SECOND
    text = {name: _as_text(values) for name, values in text.items()}
    return pd.DataFrame({
        "strategy_id": text["strategy_id"], "symbol": text["symbol"],
        "direction": text["direction"],
        "quantity": numbers["quantity"], "entry_at": utc_times(entry_ns), "exit_at": utc_times(exit_ns),
        "holding_seconds": holding.astype("float64"),
        "entry_price": numbers["entry_price"], "exit_price": numbers["exit_price"],
        "gross_pnl": numbers["gross_pnl"], "fees": numbers["fees"], "pnl": numbers["pnl"],
        "opening_order_id": text["opening_order_id"], "closing_order_id": text["closing_order_id"],
        "opening_signal_id": text["opening_signal_id"], "venue": text["venue"],
    }, copy=False)


def _open_lots_frame(text: dict, entry_ns: np.ndarray, numbers: dict) -> pd.DataFrame:
    text = {name: _as_text(values) for name, values in text.items()}
    return pd.DataFrame({
        "strategy_id": text["strategy_id"], "symbol": text["symbol"],
        "direction": text["direction"],
        "quantity": numbers["quantity"], "entry_at": utc_times(entry_ns), "entry_price": numbers["entry_price"],
        "opening_order_id": text["opening_order_id"], "opening_signal_id": text["opening_signal_id"],
        "fees": numbers["fees"],
    }, copy=False)


def _as_text(values):
    """A ``str`` array (missing values NaN): free for rows taken from a ``str`` column."""
    if isinstance(getattr(values, "dtype", None), pd.StringDtype):
        return values
    return pd.array(values, dtype="str")


def sort_by_time(primary_ns: np.ndarray, *then: np.ndarray) -> np.ndarray:
    """The permutation sorting by ``primary_ns``, ties by the arrays ``then`` in turn (int64).

    Most primary times are distinct, so one argsort does nearly all the work and only the rows
    tied on the primary key go through the (slower) several-key lexsort. The keys together must
    be unique (the last one is an input position): then the order is fully determined, and the
    primary argsort need not be stable (an unstable one is several times faster).
    """
    order = np.argsort(primary_ns)
    ranked = primary_ns[order]
    tie = ranked[1:] == ranked[:-1]
    if tie.any():
        tied = np.zeros(len(order), dtype=bool)
        tied[1:] |= tie
        tied[:-1] |= tie
        positions = np.flatnonzero(tied)
        subset = order[positions]
        keys = tuple(key[subset] for key in reversed(then)) + (primary_ns[subset],)
        order[positions] = subset[np.lexsort(keys)]
    return order


# The integer nanoseconds of a time column: ``prices.as_nanoseconds`` (reads a datetime
# column's integers directly, never one Python object per row).
nanoseconds = as_nanoseconds


_DIRECTIONS = pd.array(["short", "long"], dtype="str")


def _directions(long: np.ndarray):
    """"long"/"short" as a ``str`` array, taken from a two-element array (no per-row validation)."""
    return _DIRECTIONS.take(long.astype(np.intp))


def _text_source(frame: pd.DataFrame, name: str):
    """The column's values for taking rows into an output frame: a ``str`` column stays a
    StringArray (so the output needs no dtype inference), a categorical one a Categorical (rows
    are taken as codes), anything else an object ndarray."""
    if name not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    column = frame[name]
    if isinstance(column.dtype, (pd.StringDtype, pd.CategoricalDtype)):
        return column.array
    return column.to_numpy(dtype=object)


@dataclass(frozen=True)
class _Books:
    """Dense book numbers 0..count-1 per fill, and the factorized strategy and symbol they come from."""

    book: np.ndarray
    count: int
    strategy_codes: np.ndarray  # -1 where the fill has no strategy_id
    strategies: object  # the distinct strategy ids, as a ``str`` array
    symbol_codes: np.ndarray
    symbols: object

    def strategy_of(self, rows: np.ndarray):
        """The strategy_id of the given fills (``str``; NaN when missing), taken from the few
        distinct values, which stay in cache, rather than gathered from the whole column."""
        return self.strategies.take(self.strategy_codes[rows], allow_fill=True)

    def symbol_of(self, rows: np.ndarray):
        return self.symbols.take(self.symbol_codes[rows], allow_fill=True)


def _factorize(frame: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(code per row, -1 when missing; the distinct values) of a text column.

    A categorical column already is that: its codes are used as they are. Otherwise hashing
    the strings is the single most expensive step of the matching.
    """
    if name not in frame.columns:
        return np.full(len(frame), -1, dtype=np.int64), np.array([], dtype=object)
    column = frame[name]
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy().astype(np.int64), np.asarray(column.cat.categories, dtype=object)
    arrow = arrow_text(column)
    if arrow is not None:  # hashed by Arrow, without a Python string per row
        encoded = pc.dictionary_encode(arrow)
        codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        return codes, np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    codes, uniques = pd.factorize(column.to_numpy())
    return codes.astype(np.int64), np.asarray(uniques, dtype=object)


def _is_buy(side: pd.Series) -> np.ndarray:
    if isinstance(side.dtype, pd.CategoricalDtype):
        categories = list(side.cat.categories)
        return side.cat.codes.to_numpy() == categories.index("buy") if "buy" in categories else np.zeros(len(side), bool)
    arrow = arrow_text(side)
    if arrow is not None:
        return pc.equal(arrow, "buy").fill_null(False).to_numpy(zero_copy_only=False)
    return side.to_numpy() == "buy"


def _book_codes(fills: pd.DataFrame) -> _Books:
    """Books for (strategy_id, symbol); a missing strategy is a value of its own."""
    symbol_codes, symbols = _factorize(fills, "symbol")
    strategy_codes, strategies = _factorize(fills, "strategy_id")  # missing -> -1, shifted to 0 below
    symbol_values = len(symbols) + 1  # prepare() drops fills without a symbol; one spare value, to be safe
    combined = (strategy_codes + 1) * symbol_values + np.where(symbol_codes < 0, len(symbols), symbol_codes)
    possible = (len(strategies) + 1) * symbol_values
    if possible <= 4 * len(fills) + 1024:
        present = np.bincount(combined, minlength=possible) > 0
        book, count = (np.cumsum(present) - 1)[combined], int(present.sum())
    else:
        book, uniques = pd.factorize(combined)
        book, count = book.astype(np.int64), len(uniques)
    return _Books(book, count, strategy_codes, _as_text(np.asarray(strategies, dtype=object)), symbol_codes,
                  _as_text(np.asarray(symbols, dtype=object)))


def match_round_trips(fills: pd.DataFrame, *, quantity_decimals: int = 8, keys: OrderKeys | None = None) -> RoundTrips:
    """Match fills into FIFO round trips per (strategy_id, symbol) book.

    ``fills`` is a frame already passed through ``prepare(frame, FILLS)``. See the module
    docstring for the matching method. Columns of ``RoundTrips.trips`` (one row per round trip,
    the matched quantity sharing book, opening order_id and closing order_id):

    - strategy_id (NaN for the book of fills without one), symbol; direction: "long" when the
      opening fills bought, else "short". Text columns have the ``str`` dtype.
    - quantity: matched quantity (units of the instrument).
    - entry_at: time of the trip's first opening fill; exit_at: time of its last closing fill
      (``datetime64[ns, UTC]``); holding_seconds = exit_at - entry_at in seconds (float).
    - entry_price = sum(q_i * p_open_i) / sum(q_i), exit_price = sum(q_i * p_close_i) / sum(q_i)
      over the trip's matched pieces i (quantity-weighted average prices).
    - gross_pnl = sign * sum(q_i * (p_close_i - p_open_i)), sign = +1 long, -1 short (currency).
    - fees: each fill's fee is allocated pro rata to the quantity each piece uses,
      fee * q_i / fill_quantity, for the opening and the closing fill (currency).
    - pnl = gross_pnl - fees: realized PnL net of fees (currency).
    - opening_order_id, closing_order_id; opening_signal_id and venue of the first opening fill.

    Rows are sorted by exit_at, then entry_at, then the input position of the first opening
    fill, then that of the last closing fill.

    ``keys``: ``order_keys(orders, fills)`` when the caller has hashed the order ids already
    (otherwise the fills' order ids are hashed here).

    ``RoundTrips.open_lots``: one row per opening fill with quantity still open (strategy_id,
    symbol, direction, quantity, entry_at, entry_price = the fill's price, opening_order_id,
    opening_signal_id, fees = the opening fee share of the open quantity), sorted by entry_at
    then input position.

    ``quantity_decimals``: quantities are matched as integers ``round(q * 10**quantity_decimals)``;
    a fill whose quantity rounds to 0 is left unmatched and its fee counted in
    ``unallocated_fees``. Raises ``ValueError`` when the total would not fit int64.
    Empty input gives empty frames.
    """
    if isinstance(quantity_decimals, bool) or not isinstance(quantity_decimals, (int, np.integer)) \
            or not 0 <= quantity_decimals <= 15:
        raise ValueError(f"quantity_decimals must be an integer from 0 to 15, got {quantity_decimals!r}")
    n = len(fills)
    fee = fills["fee"].to_numpy(dtype="float64") if "fee" in fills.columns else np.zeros(n)
    fee = np.where(np.isfinite(fee), fee, 0.0)
    total_fees = float(fee.sum())
    if n == 0:
        return RoundTrips(empty_trips(), empty_open_lots(), 0.0, 0.0, int(quantity_decimals))

    scale = 10.0 ** quantity_decimals
    scaled = fills["quantity"].to_numpy(dtype="float64") * scale
    total_units = float(np.sum(scaled))
    if not np.isfinite(total_units) or total_units >= _MAX_TOTAL_UNITS:
        raise ValueError(
            f"fills: the quantities add up to {total_units:.6g} units at quantity_decimals={quantity_decimals}, "
            f"beyond the int64 range used for exact matching (at most {_MAX_TOTAL_UNITS:.6g}); "
            "lower quantity_decimals"
        )
    units = np.rint(scaled).astype(np.int64)
    unallocated_fees = float(fee[units == 0].sum())
    is_buy = _is_buy(fills["side"])
    times = nanoseconds(fills["occurred_at"])
    price = fills["price"].to_numpy(dtype="float64")

    keys = order_keys(None, fills) if keys is None else keys
    keys.check(None, fills)
    order_codes, order_bound, order_count = keys.fill_codes_with_missing()
    book_codes = _book_codes(fills)
    book, books = book_codes.book, book_codes.count

    # Sort by (book, time, input position): a stable time sort (free when the input is already in
    # time order, as the audit trail is), then a stable sort by book (radix sort for <= 65536 books).
    in_time_order = n < 2 or bool(np.all(times[1:] >= times[:-1]))
    time_order = None if in_time_order else np.argsort(times, kind="stable")
    book_in_time_order = book if in_time_order else book[time_order]
    if books <= 65536:
        order = np.argsort(book_in_time_order.astype(np.uint16), kind="stable")
    else:
        order = np.argsort(book_in_time_order, kind="stable")
    if not in_time_order:
        order = time_order[order]
    counts = np.bincount(book, minlength=books)
    sorted_book = np.repeat(np.arange(books, dtype=np.int64), counts)  # == book[order], without the gather
    ends = np.cumsum(counts)
    signed = np.where(is_buy, units, -units)[order]
    size = np.abs(signed)

    # Position per book from one global cumulative sum, minus the sum at the book's start.
    cumulative = np.cumsum(signed)
    base = np.concatenate(([0], cumulative[ends[:-1] - 1]))
    after = cumulative - base[sorted_book]
    before = after - signed
    opposes = ((before > 0) & (signed < 0)) | ((before < 0) & (signed > 0))
    closing = np.where(opposes, np.minimum(size, np.abs(before)), 0)
    opening = size - closing
    still_open = np.abs(after[ends - 1])

    # The closing sequence with one virtual close appended after each book's last fill.
    extended_position = np.arange(n) + sorted_book
    extended_closing = np.zeros(n + books, dtype=np.int64)
    extended_closing[extended_position] = closing
    extended_closing[ends + np.arange(books)] = still_open
    extended_fill = np.full(n + books, -1, dtype=np.int64)
    extended_fill[extended_position] = np.arange(n)

    opening_rows = np.flatnonzero(opening > 0)
    closing_rows = np.flatnonzero(extended_closing > 0)
    if len(opening_rows) == 0:
        return RoundTrips(empty_trips(), empty_open_lots(), total_fees, unallocated_fees, int(quantity_decimals))
    opened = np.cumsum(opening[opening_rows])
    closed = np.cumsum(extended_closing[closing_rows])
    if opened[-1] != closed[-1]:  # an invariant of the construction, checked because it is cheap
        raise AssertionError("round trips: cumulative opened and closed quantities do not line up")

    # Union of both breakpoint sets. Both are strictly increasing, so a stable argsort (timsort)
    # merges two runs; an opened value sorts before an equal closed one. At the first copy of each
    # breakpoint p, the number of opened values before it is the count of opened values < p,
    # which is the index of the opening fill whose interval holds the piece ending at p (the
    # searchsorted answer, without the binary searches); likewise for closed values.
    merged = np.concatenate((opened, closed))
    merge_order = np.argsort(merged, kind="stable")
    merged = merged[merge_order]
    first = np.flatnonzero(np.concatenate(([True], merged[1:] != merged[:-1])))
    from_opened = (merge_order < len(opened)).astype(np.int64)
    opened_before = (np.cumsum(from_opened) - from_opened)[first]
    breakpoints = merged[first]
    piece_units = np.diff(breakpoints, prepend=0)
    piece_open = opening_rows[opened_before]
    piece_close = extended_fill[closing_rows[first - opened_before]]
    virtual = piece_close < 0

    # From here on pieces refer to fills by input row: one gather per piece instead of reordering
    # every column of every fill. A fill's size (units) is read in (book, time) order, where the
    # pieces' fills are in increasing position (a cache-friendly gather).
    open_input = order[piece_open]
    open_fee_share = fee[open_input] * piece_units / size[piece_open].astype("float64")
    source = {name: _text_source(fills, name) for name in ("order_id", "signal_id", "venue")}

    # Still-open lots: pieces matched to a virtual close.
    lot_input = open_input[virtual]
    lot_order = sort_by_time(times[lot_input], lot_input)
    lot_input = lot_input[lot_order]
    open_lots = _open_lots_frame(
        {"strategy_id": book_codes.strategy_of(lot_input), "symbol": book_codes.symbol_of(lot_input),
         "direction": _directions(is_buy[lot_input]),
         "opening_order_id": source["order_id"][lot_input], "opening_signal_id": source["signal_id"][lot_input]},
        times[lot_input],
        {"quantity": piece_units[virtual][lot_order] / scale, "entry_price": price[lot_input],
         "fees": open_fee_share[virtual][lot_order]},
    )

    real = ~virtual
    if not real.any():
        return RoundTrips(empty_trips(), open_lots, total_fees, unallocated_fees, int(quantity_decimals))
    trip_of_piece = _trip_codes(order_codes[order], order_bound, order_count, sorted_book, piece_open[real], piece_close[real],
                                books)
    open_input, piece_units, open_fee_share = open_input[real], piece_units[real], open_fee_share[real]
    piece_close = piece_close[real]
    close_input = order[piece_close]
    close_fee_share = fee[close_input] * piece_units / size[piece_close].astype("float64")
    if len(trip_of_piece) > 1 and bool(np.any(trip_of_piece[1:] < trip_of_piece[:-1])):
        grouped = np.argsort(trip_of_piece, kind="stable")
        open_input, close_input, piece_units, open_fee_share, close_fee_share, trip_of_piece = (
            open_input[grouped], close_input[grouped], piece_units[grouped], open_fee_share[grouped],
            close_fee_share[grouped], trip_of_piece[grouped])
    starts = np.flatnonzero(np.concatenate(([True], trip_of_piece[1:] != trip_of_piece[:-1])))
    last = np.concatenate((starts[1:], [len(trip_of_piece)])) - 1

    # Within a trip, pieces come in FIFO order: the first has the earliest opening fill, the last
    # the latest closing fill.
    first_open, last_close = open_input[starts], close_input[last]
    piece_quantity = piece_units / scale
    open_price, close_price = price[open_input], price[close_input]
    piece_fee = open_fee_share + close_fee_share
    quantity = np.add.reduceat(piece_units, starts) / scale
    entry_value = np.add.reduceat(piece_quantity * open_price, starts)
    exit_value = np.add.reduceat(piece_quantity * close_price, starts)
    long = is_buy[first_open]
    gross = np.where(long, 1.0, -1.0) * np.add.reduceat(piece_quantity * (close_price - open_price), starts)
    fees = np.add.reduceat(piece_fee, starts)

    entry_ns, exit_ns = times[first_open], times[last_close]
    trip_order = sort_by_time(exit_ns, entry_ns, first_open, last_close)
    first_open, last_close = first_open[trip_order], last_close[trip_order]
    trips = _trips_frame(
        {"strategy_id": book_codes.strategy_of(first_open), "symbol": book_codes.symbol_of(first_open),
         "direction": _directions(long[trip_order]),
         "opening_order_id": source["order_id"][first_open], "closing_order_id": source["order_id"][last_close],
         "opening_signal_id": source["signal_id"][first_open], "venue": source["venue"][first_open]},
        entry_ns[trip_order], exit_ns[trip_order],
        {"quantity": quantity[trip_order], "entry_price": (entry_value / quantity)[trip_order],
         "exit_price": (exit_value / quantity)[trip_order], "gross_pnl": gross[trip_order],
         "fees": fees[trip_order], "pnl": (gross - fees)[trip_order]},
    )
    return RoundTrips(trips, open_lots, total_fees, unallocated_fees, int(quantity_decimals))


def _trip_codes(sorted_order_codes: np.ndarray, order_bound: int, order_count: int, sorted_book: np.ndarray,
                piece_open: np.ndarray, piece_close: np.ndarray, books: int) -> np.ndarray:
    """A trip number per matched piece: equal for pieces sharing (book, opening order, closing order).

    ``sorted_order_codes``: the order code of each fill in (book, time) order (equal codes for
    equal order ids, ``order_count`` distinct codes, each below ``order_bound``). When every order's fills are contiguous in
    that order (the usual case), the pieces of one trip are contiguous too and a trip is a run of
    equal (opening, closing) order codes; otherwise the runs are merged with a hash of
    (book, opening, closing).
    """
    n = len(sorted_order_codes)
    new_run = np.ones(n, dtype=bool)
    new_run[1:] = (sorted_order_codes[1:] != sorted_order_codes[:-1]) | (sorted_book[1:] != sorted_book[:-1])
    opening_code, closing_code = sorted_order_codes[piece_open], sorted_order_codes[piece_close]
    piece_book = sorted_book[piece_open]
    new_segment = np.ones(len(piece_open), dtype=bool)
    new_segment[1:] = ((opening_code[1:] != opening_code[:-1]) | (closing_code[1:] != closing_code[:-1])
                       | (piece_book[1:] != piece_book[:-1]))
    segment = np.cumsum(new_segment) - 1
    if int(np.count_nonzero(new_run)) == order_count:
        return segment
    starts = np.flatnonzero(new_segment)
    codes = order_bound
    if books * codes * codes < 2**62:
        key = (piece_book[starts] * codes + opening_code[starts]) * codes + closing_code[starts]
    else:
        pair = pd.factorize(piece_book[starts] * codes + opening_code[starts])[0].astype(np.int64)
        key = pair * codes + closing_code[starts]
    return pd.factorize(key)[0].astype(np.int64)[segment]
