"""Order ids hashed once: the shared codes equal pandas' factorize of both columns together, and
the join they give equals pandas' own join (first order row per id kept, missing ids unjoined)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradewatch.domain.analytics.order_keys import order_keys, text_codes

ids = st.lists(st.one_of(st.none(), st.sampled_from(["o-1", "o-2", "o-3", "o-10", "", "ü"])), max_size=40)


def column(values: list, kind: str) -> pd.Series:
    if kind == "str":
        return pd.Series(values, dtype="str")
    if kind == "category":
        return pd.Series(values, dtype="category")
    return pd.Series(values, dtype=object)


@settings(max_examples=200, deadline=None)
@given(ids, ids, st.sampled_from(["str", "object", "category"]), st.sampled_from(["str", "object"]))
def test_shared_codes_equal_pandas_factorize_of_both_columns(first, second, kind_1, kind_2):
    (codes_1, codes_2), count = text_codes(column(first, kind_1), column(second, kind_2))
    expected, uniques = pd.factorize(pd.Series(first + second, dtype=object))
    assert codes_1.dtype == np.int64 and codes_2.dtype == np.int64
    assert codes_1.tolist() + codes_2.tolist() == expected.tolist()
    assert count == len(uniques)


@settings(max_examples=200, deadline=None)
@given(ids, ids)
def test_join_equals_pandas_first_row_per_order(order_ids, fill_ids):
    orders = pd.DataFrame({"order_id": pd.Series(order_ids, dtype="str")})
    fills = pd.DataFrame({"order_id": pd.Series(fill_ids, dtype="str")})
    position, kept = order_keys(orders, fills).join()

    present = orders["order_id"].notna()
    first = orders[present & ~orders["order_id"].duplicated()]
    expected_kept = np.flatnonzero(orders.index.isin(first.index))
    assert (kept if kept is not None else np.arange(len(orders))).tolist() == expected_kept.tolist()
    row_of = {order_id: i for i, order_id in enumerate(first["order_id"])}
    assert position.tolist() == [row_of.get(v, -1) if isinstance(v, str) else -1 for v in fills["order_id"]]


def test_unique_orders_need_no_kept_rows_and_code_is_row():
    orders = pd.DataFrame({"order_id": pd.Series(["a", "b", "c"], dtype="str")})
    fills = pd.DataFrame({"order_id": pd.Series(["c", "c", "x", "a"], dtype="str")})
    keys = order_keys(orders, fills)
    assert keys.orders.tolist() == [0, 1, 2] and keys.count == 4
    position, kept = keys.join()
    assert kept is None and position.tolist() == [2, 2, -1, 0]


def test_fill_codes_share_one_code_for_missing_and_count_only_the_fills_ids():
    orders = pd.DataFrame({"order_id": pd.Series(["a", "b", "c"], dtype="str")})
    fills = pd.DataFrame({"order_id": pd.Series(["c", None, "c", None], dtype="str")})
    codes, bound, used = order_keys(orders, fills).fill_codes_with_missing()
    assert codes.tolist() == [2, 3, 2, 3] and bound == 4 and used == 2


def test_a_frame_without_order_ids_counts_as_all_missing():
    fills = pd.DataFrame({"fill_id": ["f-1", "f-2"]})
    keys = order_keys(None, fills)
    assert keys.fills.tolist() == [-1, -1] and keys.count == 0
    assert keys.fill_codes_with_missing()[1:] == (1, 1)


def test_codes_for_other_frames_are_refused():
    orders = pd.DataFrame({"order_id": ["a"]})
    fills = pd.DataFrame({"order_id": ["a", "a"]})
    keys = order_keys(orders, fills)
    with pytest.raises(ValueError, match="order keys for 1 orders and 2 fills passed with 1 orders and 1 fills"):
        keys.check(orders, fills.iloc[:1])
    assert keys.subset(None, np.array([1])).fills.tolist() == [0]
