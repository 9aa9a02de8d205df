"""The report object: one thread or two give the same report; the order ids hashed before
validation (the fast path) give the same report as hashing the validated frames; bad rows in
any frame are left out the same way on every path."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from benchmarks.analytics_data import generate
from tradewatch.domain.analytics import report as report_module
from tradewatch.domain.analytics.report import AnalyticsConfig, build_report
from tradewatch.domain.analytics.schema import ORDERS, prepare

CONFIG = AnalyticsConfig(capital=1_000_000, timezone="America/New_York")


def with_bad_rows(data):
    """A duplicate fill id, a negative fill quantity, a duplicate order id and a rejected-looking
    order with an unknown status, each in the middle of good rows."""
    fills, orders = data.fills.copy(), data.orders.copy()
    fills.loc[5, "fill_id"] = fills.loc[4, "fill_id"]
    fills.loc[11, "quantity"] = -1.0
    orders.loc[7, "order_id"] = orders.loc[3, "order_id"]
    orders.loc[9, "status"] = "lost"
    return dataclasses.replace(data, fills=fills, orders=orders)


@pytest.fixture(scope="module")
def data():
    return with_bad_rows(generate(4_000, instruments=5, seed=3))


def test_one_thread_and_two_give_the_same_report(data):
    one = build_report(data, CONFIG, threads=1).to_dict()
    two = build_report(data, CONFIG, threads=2).to_dict()
    assert one == two
    assert one["input"]["dropped_rows"] == {"fills": 2, "orders": 2, "signals": 0, "factor_exposures": 0,
                                            "quotes": 0, "account": 0}
    problems = {(p["frame"], p["column"]) for p in one["input"]["problems"]}
    assert problems == {("fills", "fill_id"), ("fills", "quantity"), ("orders", "order_id"), ("orders", "status")}


def test_ids_hashed_before_validation_give_the_report_of_ids_hashed_after(data, monkeypatch):
    fast = build_report(data, CONFIG).to_dict()
    monkeypatch.setattr(report_module, "_raw_order_keys", lambda orders, fills: None)
    assert build_report(data, CONFIG).to_dict() == fast


def test_fills_without_an_order_id_take_their_fill_id_on_every_path(data):
    fills = data.fills.copy()
    fills["order_id"] = fills["order_id"].where(np.arange(len(fills)) % 50 != 0, None)
    partial = dataclasses.replace(data, fills=fills)
    report = build_report(partial, CONFIG)
    assert report.to_dict() == build_report(partial, CONFIG, threads=1).to_dict()
    assert report.sections["execution"]["summary"]["fills_without_order"] > 0


def test_threads_other_than_one_or_two_are_refused(data):
    with pytest.raises(ValueError, match="threads must be 1 or 2, got 3"):
        build_report(data, CONFIG, threads=3)


def test_key_codes_from_the_caller_give_the_same_validation():
    orders = generate(400, instruments=2).orders
    orders.loc[5, "order_id"] = orders.loc[2, "order_id"]
    codes, _ = pd.factorize(orders["order_id"])
    hashed_here, given = prepare(orders, ORDERS), prepare(orders, ORDERS, key_codes=codes)
    pd.testing.assert_frame_equal(given.frame, hashed_here.frame)
    assert given.problems == hashed_here.problems and given.kept.tolist() == hashed_here.kept.tolist()
    assert 5 not in given.kept
    with pytest.raises(ValueError, match="orders: 3 key codes for"):
        prepare(orders, ORDERS, key_codes=codes[:3])
