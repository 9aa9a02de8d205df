"""The order ids of the orders and fills frames, hashed once into shared integer codes.

Three analyses key fills by their order: FIFO matching (a round trip is the pieces sharing an
opening and a closing order), and slippage and execution quality (the join of fills to their
order). Hashing a million id strings is the costliest single step of the report (~0.1 µs per
string), so ``order_keys`` encodes both columns once and every analysis takes the codes:

* equal ids get equal codes, in both frames; codes number the distinct ids in order of first
  appearance, orders first: an orders frame without duplicate ids (as ``prepare`` leaves it)
  has code == row position, so a fill's code is its order's row when below ``len(orders)``;
* a missing id has code -1 (it matches no order; for matching, the fills without one share a
  book of their own, see ``OrderKeys.fill_codes_with_missing``).

Fills usually come in runs of the same order (an order's partial fills follow each other):
only the first id of each run of equal neighbours is hashed, the others copy its code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_INT64_MAX = np.iinfo(np.int64).max


@dataclass(frozen=True)
class OrderKeys:
    """Codes of the ``order_id`` column of an orders frame and of a fills frame (int64 arrays,
    one per row, -1 for a missing id) and the number of distinct ids, ``count``."""

    orders: np.ndarray
    fills: np.ndarray
    count: int

    def check(self, orders: pd.DataFrame | None, fills: pd.DataFrame) -> None:
        """Raise ValueError unless these codes were made for frames of these lengths (``orders``
        None: the fills only)."""
        if (orders is not None and len(self.orders) != len(orders)) or len(self.fills) != len(fills):
            raise ValueError(
                f"order keys for {len(self.orders)} orders and {len(self.fills)} fills passed with "
                f"{len(orders)} orders and {len(fills)} fills: compute them with order_keys(orders, fills)"
            )

    def subset(self, order_rows: np.ndarray | None, fill_rows: np.ndarray | None) -> OrderKeys:
        """The codes of the given rows (None: every row), e.g. of the rows ``prepare`` kept."""
        return OrderKeys(self.orders if order_rows is None else self.orders[order_rows],
                         self.fills if fill_rows is None else self.fills[fill_rows], self.count)

    def join(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(the row of each fill's order among the kept orders, -1 when none; the kept rows).

        Kept: the first row of each order id (what ``prepare`` keeps), None when that is every row.
        """
        n = len(self.orders)
        rows = np.arange(n)
        if np.array_equal(self.orders, rows):  # unique ids: code == row
            return np.where(self.fills < n, self.fills, -1), None
        first = np.full(self.count + 1, _INT64_MAX, dtype=np.int64)  # the last slot: code -1
        np.minimum.at(first, self.orders, rows)
        is_first = (first[self.orders] == rows) & (self.orders >= 0)
        kept = np.flatnonzero(is_first)
        position_of_code = np.full(self.count + 1, -1, dtype=np.int64)
        position_of_code[self.orders[kept]] = np.arange(len(kept))
        position_of_code[-1] = -1  # a missing order id matches no order
        return position_of_code[self.fills], (None if len(kept) == n else kept)

    def fill_codes_with_missing(self) -> tuple[np.ndarray, int, int]:
        """(the fills' codes with missing ids sharing one code of their own; the bound every
        code is below; the number of distinct codes among the fills)."""
        codes, bound = self.fills, self.count
        missing = codes < 0
        if missing.any():
            codes = np.where(missing, bound, codes)
            bound += 1
        used = int(np.count_nonzero(np.bincount(codes, minlength=bound))) if len(codes) else 0
        return codes, bound, used


def arrow_text(column: pd.Series):
    """The pyarrow array behind an Arrow-backed ``str`` column (one chunk), else None."""
    if not isinstance(column.dtype, pd.StringDtype):
        return None
    chunked = getattr(column.array, "_pa_array", None)
    if chunked is None:
        return None
    if isinstance(chunked, pa.ChunkedArray):
        return chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()
    return chunked


def _run_starts(values: pa.Array) -> np.ndarray:
    """Positions where a run of equal neighbours starts (a missing value starts its own run)."""
    n = len(values)
    new_run = np.ones(n, dtype=bool)
    if n > 1:
        differs = pc.not_equal(values.slice(1), values.slice(0, n - 1))
        new_run[1:] = differs.fill_null(True).to_numpy(zero_copy_only=False)
    return np.flatnonzero(new_run)


def text_codes(*columns: pd.Series) -> tuple[list[np.ndarray], int]:
    """Codes of several text columns in one shared numbering (order of first appearance over
    the columns in turn; -1 for missing) and the number of distinct values.

    Arrow-backed text is dictionary-encoded by pyarrow without a Python object per value (and
    without the GIL), hashing only the first value of each run of equal neighbours. Other
    columns (object, categorical) go through ``pd.factorize`` of their values.
    """
    arrays = [arrow_text(column) for column in columns]
    if all(array is not None for array in arrays) and len({array.type for array in arrays}) == 1:
        starts = [_run_starts(array) for array in arrays]
        heads = [array if len(s) == len(array) else array.take(pa.array(s)) for array, s in zip(arrays, starts)]
        encoded = pc.dictionary_encode(pa.concat_arrays(heads) if len(heads) > 1 else heads[0])
        head_codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        result, offset = [], 0
        for array, s in zip(arrays, starts):
            run_codes = head_codes[offset:offset + len(s)]
            offset += len(s)
            result.append(run_codes if len(s) == len(array) else np.repeat(run_codes, np.diff(s, append=len(array))))
        return result, len(encoded.dictionary)
    values = [column.to_numpy(dtype=object) for column in columns]
    codes, uniques = pd.factorize(np.concatenate(values) if len(values) > 1 else values[0])
    codes = np.asarray(codes, dtype=np.int64)
    bounds = np.cumsum([0] + [len(v) for v in values])
    return [codes[bounds[i]:bounds[i + 1]] for i in range(len(values))], len(uniques)


def order_keys(orders: pd.DataFrame | None, fills: pd.DataFrame) -> OrderKeys:
    """The shared codes of ``orders["order_id"]`` and ``fills["order_id"]`` (a frame without
    the column counts as every id missing). ``orders`` None: the fills' codes only."""

    def ids(frame: pd.DataFrame) -> pd.Series:
        if "order_id" in frame.columns:
            return frame["order_id"]
        return pd.Series(None, index=frame.index, dtype=object)

    if orders is None:
        (fill_codes,), count = text_codes(ids(fills))
        return OrderKeys(np.zeros(0, dtype=np.int64), fill_codes, count)
    (order_codes, fill_codes), count = text_codes(ids(orders), ids(fills))
    return OrderKeys(order_codes, fill_codes, count)
