"""Frame validation: a missing column is an error naming it; a bad row is left out and reported,
never taking the good rows with it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradewatch.domain.analytics.prices import PriceBook, as_nanoseconds
from tradewatch.domain.analytics.schema import FILLS, QUOTES, SIGNALS, SchemaError, prepare


def fills(**overrides) -> pd.DataFrame:
    frame = pd.DataFrame({
        "occurred_at": ["2026-01-05T14:30:00Z", "2026-01-05T14:30:01.123456789Z", "2026-01-05T14:30:02Z"],
        "fill_id": ["f-1", "f-2", "f-3"],
        "symbol": ["AAPL", "AAPL", "MSFT"],
        "side": ["buy", "SELL", "sell"],
        "quantity": [10, "5.5", 3],
        "price": [190.0, 191.0, 410.0],
    })
    for column, values in overrides.items():
        frame[column] = values
    return frame


def test_a_missing_required_column_names_it_and_lists_the_schema():
    with pytest.raises(SchemaError) as error:
        prepare(fills().drop(columns=["price"]), FILLS)
    message = str(error.value)
    assert "fills: missing required column(s) price" in message
    assert "| price | positive | yes | fill price |" in message


def test_text_times_numbers_and_case_are_converted_and_defaults_filled():
    prepared = prepare(fills(), FILLS)
    frame = prepared.frame
    assert prepared.problems == []
    assert str(frame["occurred_at"].dtype) == "datetime64[ns, UTC]"
    assert as_nanoseconds(frame["occurred_at"])[1] % 1_000_000_000 == 123_456_789  # nanoseconds kept
    assert list(frame["side"]) == ["buy", "sell", "sell"]
    assert list(frame["quantity"]) == [10.0, 5.5, 3.0]
    assert list(frame["fee"]) == [0.0, 0.0, 0.0]
    assert list(frame["order_id"]) == ["f-1", "f-2", "f-3"]  # a fill's own order when none is given


def test_bad_rows_are_left_out_and_reported_and_the_good_rows_kept():
    frame = fills(quantity=[10, -5, 3], side=["buy", "sell", "hold"])
    frame.loc[3] = ["not a time", "f-4", "AAPL", "buy", 1, 190.0]
    frame.loc[4] = ["2026-01-05T14:31:00Z", "f-1", "AAPL", "buy", 1, 190.0]
    prepared = prepare(frame, FILLS)
    assert list(prepared.frame["fill_id"]) == ["f-1"]
    problems = {(p.row, p.column): p.problem for p in prepared.problems}
    assert problems == {
        (1, "quantity"): "must be > 0",
        (2, "side"): "must be one of buy, sell",
        (3, "occurred_at"): "missing or not a time (accepted: RFC 3339 text, datetime, integer nanoseconds)",
        (4, "fill_id"): "duplicate fill_id (the first row with it is kept)",
    }
    assert str(prepared.problems[0]).endswith("the row was left out")


def test_integer_nanoseconds_are_times():
    frame = fills(occurred_at=np.array([1_767_623_400_000_000_001, 1_767_623_400_000_000_002, 1_767_623_400_000_000_003]))
    prepared = prepare(frame, FILLS)
    assert list(as_nanoseconds(prepared.frame["occurred_at"])) == [1_767_623_400_000_000_001, 1_767_623_400_000_000_002,
                                                                    1_767_623_400_000_000_003]


def test_price_book_looks_up_the_latest_mid_at_or_before_never_after():
    quotes = prepare(pd.DataFrame({
        "occurred_at": ["2026-01-05T14:30:00Z", "2026-01-05T14:31:00Z", "2026-01-05T14:30:30Z"],
        "symbol": ["AAPL", "AAPL", "MSFT"],
        "bid": [99.0, 100.0, None], "ask": [101.0, 102.0, None], "last": [None, None, 50.0],
    }), QUOTES).frame
    book = PriceBook(quotes)
    times = pd.to_datetime(["2026-01-05T14:29:59Z", "2026-01-05T14:31:00Z", "2026-01-05T14:32:00Z",
                            "2026-01-05T14:32:00Z", "2026-01-05T14:30:59Z"], utc=True)
    np.testing.assert_array_equal(book.asof(["AAPL", "AAPL", "MSFT", "TSLA", "AAPL"], times), [np.nan, 101.0, 50.0, np.nan, 100.0])
    np.testing.assert_array_equal(book.asof(["AAPL"], times[1:2], strictly_before=True), [100.0])
    assert list(book.series("AAPL")) == [100.0, 101.0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(list("abcde"))), max_size=30))
def test_a_repeated_key_keeps_only_its_first_row(keys):
    frame = pd.DataFrame({"signal_id": pd.Series(keys, dtype="str"), "occurred_at": "2026-01-05T14:30:00Z",
                          "symbol": "AAPL", "direction": "long"})
    prepared = prepare(frame, SIGNALS)
    expected = frame[frame["signal_id"].notna() & ~frame["signal_id"].duplicated()]
    assert list(prepared.frame.index) == list(expected.index)
