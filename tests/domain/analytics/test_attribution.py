"""PnL attribution: hand-computed tables, validation, reconciliation and the naive loop."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.naive_analytics.attribution import naive_full_report
from benchmarks.naive_analytics.round_trips import naive_match_round_trips
from tests.domain.analytics.test_round_trips import fill_rows, make_fills
from tradewatch.domain.analytics.attribution import FACTOR_METHOD, WEEKDAYS, PnLAttributor, horizon_labels
from tradewatch.domain.analytics.round_trips import match_round_trips
from tradewatch.domain.analytics.schema import FACTOR_EXPOSURES, prepare

TABLES = ("by_factor", "by_instrument", "by_strategy", "by_holding_horizon", "by_time_of_day", "by_weekday")


def make_trips(rows: list[dict]) -> pd.DataFrame:
    """A trips frame with the columns the attribution reads."""
    return pd.DataFrame({
        "strategy_id": pd.array([r.get("strategy_id") for r in rows], dtype="str"),
        "symbol": pd.array([r.get("symbol", "AAPL") for r in rows], dtype="str"),
        "entry_at": pd.DatetimeIndex([pd.Timestamp(r.get("entry_at", "2024-01-15T14:30:00Z")) for r in rows],
                                     dtype="datetime64[ns, UTC]"),
        "holding_seconds": pd.Series([float(r.get("holding_seconds", 10.0)) for r in rows], dtype="float64"),
        "pnl": pd.Series([float(r["pnl"]) for r in rows], dtype="float64"),
        "opening_signal_id": pd.array([r.get("signal") for r in rows], dtype="str"),
    })


def exposures(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["signal_id", "factor", "exposure"])
    return prepare(frame, FACTOR_EXPOSURES).frame


def as_dict(table: pd.DataFrame) -> dict:
    return {label: (pnl, trades) for label, pnl, trades in zip(table.iloc[:, 0], table.pnl, table.trades)}


def test_factor_pnl_is_split_by_absolute_exposure():
    trips = make_trips([
        {"pnl": 100.0, "signal": "s1"},
        {"pnl": -40.0, "signal": "s2"},  # no factor rows
        {"pnl": 7.0, "signal": None},  # no signal
        {"pnl": 3.0, "signal": "s3"},  # only zero exposures
    ])
    table = PnLAttributor().by_factor(trips, exposures([
        ("s1", "momentum", 0.5), ("s1", "value", -1.5), ("s3", "value", 0.0), ("s9", "carry", 2.0),
    ]))
    assert list(table.columns) == ["factor", "pnl", "trades", "share_of_pnl"]
    assert list(table.factor) == ["carry", "momentum", "value", "unattributed"]
    result = as_dict(table)
    assert result["momentum"] == (pytest.approx(25.0), 1)
    assert result["value"] == (pytest.approx(75.0), 1)
    assert result["carry"] == (0.0, 0)
    assert result["unattributed"] == (pytest.approx(-30.0), 3)
    assert table.pnl.sum() == pytest.approx(70.0)
    assert table.set_index("factor").loc["value", "share_of_pnl"] == pytest.approx(75.0 / 70.0)


def test_without_exposures_everything_is_unattributed():
    table = PnLAttributor().by_factor(make_trips([{"pnl": 1.0, "signal": "s"}, {"pnl": 2.0}]), None)
    assert as_dict(table) == {"unattributed": (3.0, 2)}


def test_instrument_and_strategy_tables():
    trips = make_trips([
        {"pnl": 1.0, "symbol": "MSFT", "strategy_id": "b"},
        {"pnl": 2.0, "symbol": "AAPL", "strategy_id": "a"},
        {"pnl": 4.0, "symbol": "MSFT", "strategy_id": None},
    ])
    attributor = PnLAttributor()
    assert as_dict(attributor.by_instrument(trips)) == {"AAPL": (2.0, 1), "MSFT": (5.0, 2)}
    strategies = attributor.by_strategy(trips)
    assert list(strategies.strategy_id) == ["a", "b", "(none)"]
    assert as_dict(strategies)["(none)"] == (4.0, 1)


def test_default_horizon_labels_and_buckets():
    assert horizon_labels((60, 300, 3600, 86400, 432000)) == [
        "under 1 minute", "1 to 5 minutes", "5 minutes to 1 hour", "1 hour to 1 day", "1 to 5 days", "5 days or more",
    ]
    trips = make_trips([{"pnl": 1.0, "holding_seconds": 59.9}, {"pnl": 2.0, "holding_seconds": 60},
                        {"pnl": 4.0, "holding_seconds": 10 * 86400}])
    table = PnLAttributor().by_holding_horizon(trips)
    assert list(table.trades) == [1, 1, 0, 0, 0, 1]  # every bucket listed, also empty ones
    assert list(table.pnl) == [1.0, 2.0, 0.0, 0.0, 0.0, 4.0]


def test_custom_horizon_labels():
    attributor = PnLAttributor(horizon_edges_seconds=[30, 90, 7200])
    assert attributor.horizon_labels == ["under 30 seconds", "30 to 90 seconds", "90 seconds to 2 hours",
                                         "2 hours or more"]


def test_time_of_day_and_weekday_use_the_local_time_zone():
    trips = make_trips([
        {"pnl": 1.0, "entry_at": "2024-01-15T14:30:00Z"},  # 09:30 EST, Monday
        {"pnl": 2.0, "entry_at": "2024-07-15T13:45:00Z"},  # 09:45 EDT, Monday
        {"pnl": 4.0, "entry_at": "2024-07-14T03:10:00Z"},  # 23:10 EDT on Saturday the 13th
    ])
    attributor = PnLAttributor("America/New_York", time_of_day_minutes=30)
    clock = attributor.by_time_of_day(trips)
    assert len(clock) == 48 and clock.time_of_day.iloc[0] == "00:00" and clock.time_of_day.iloc[-1] == "23:30"
    result = as_dict(clock)
    assert result["09:30"] == (3.0, 2)
    assert result["23:00"] == (4.0, 1)
    days = attributor.by_weekday(trips)
    assert list(days.weekday) == list(WEEKDAYS)
    assert as_dict(days)["Monday"] == (3.0, 2) and as_dict(days)["Saturday"] == (4.0, 1)
    assert as_dict(PnLAttributor("UTC").by_weekday(trips))["Sunday"] == (4.0, 1)


def test_a_width_not_dividing_the_day_leaves_a_shorter_last_bucket():
    attributor = PnLAttributor(time_of_day_minutes=420)  # 7 hours
    assert attributor.time_of_day_labels == ["00:00", "07:00", "14:00", "21:00"]
    table = attributor.by_time_of_day(make_trips([{"pnl": 1.0, "entry_at": "2024-01-15T23:59:00Z"}]))
    assert as_dict(table)["21:00"] == (1.0, 1)


def test_regime_labels_are_taken_as_of_entry_without_look_ahead():
    trips = make_trips([
        {"pnl": 1.0, "symbol": "AAPL", "entry_at": "2024-01-01T09:00:00Z"},  # before any label
        {"pnl": 2.0, "symbol": "AAPL", "entry_at": "2024-01-02T00:00:00Z"},  # exactly when "up" starts
        {"pnl": 4.0, "symbol": "AAPL", "entry_at": "2024-01-02T12:00:00Z"},  # "down" comes later: not seen
        {"pnl": 8.0, "symbol": "MSFT", "entry_at": "2024-01-05T00:00:00Z"},
        {"pnl": 16.0, "symbol": "TSLA", "entry_at": "2024-01-05T00:00:00Z"},  # no regime rows at all
    ])
    regimes = pd.DataFrame({
        "occurred_at": pd.to_datetime(["2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z", "2024-01-01T00:00:00Z"]),
        "symbol": ["AAPL", "AAPL", "MSFT"],
        "trend": ["up", "down", "sideways"],
        "volatility": ["high", "low", None],
    })
    tables = PnLAttributor().by_regime(trips, regimes)
    assert set(tables) == {"trend", "volatility", "risk"}
    trend = tables["trend"]
    assert list(trend.trend) == ["down", "sideways", "up", "unknown"]
    assert as_dict(trend) == {"down": (0.0, 0), "sideways": (8.0, 1), "up": (6.0, 2), "unknown": (17.0, 2)}
    assert as_dict(tables["volatility"]) == {"high": (6.0, 2), "low": (0.0, 0), "unknown": (25.0, 3)}
    assert as_dict(tables["risk"]) == {"unknown": (31.0, 5)}


def test_regimes_need_time_and_symbol():
    with pytest.raises(ValueError, match="occurred_at"):
        PnLAttributor().by_regime(make_trips([{"pnl": 1.0}]), pd.DataFrame({"symbol": ["A"], "trend": ["up"]}))


@pytest.mark.parametrize("arguments, message", [
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"timezone": ""}, "timezone"),
    ({"horizon_edges_seconds": []}, "horizon_edges_seconds"),
    ({"horizon_edges_seconds": [60, 30]}, "horizon_edges_seconds"),
    ({"horizon_edges_seconds": [0, 30]}, "horizon_edges_seconds"),
    ({"horizon_edges_seconds": ["a"]}, "horizon_edges_seconds"),
    ({"time_of_day_minutes": 0}, "time_of_day_minutes"),
    ({"time_of_day_minutes": 1441}, "time_of_day_minutes"),
    ({"time_of_day_minutes": 1.5}, "time_of_day_minutes"),
])
def test_invalid_configuration_is_refused_with_what_is_accepted(arguments, message):
    with pytest.raises(ValueError, match=message) as error:
        PnLAttributor(**arguments)
    assert "such as" in str(error.value)


def test_empty_trips_give_empty_tables():
    empty = match_round_trips(make_fills([])).trips
    report = PnLAttributor().full_report(empty, exposures([("s", "momentum", 1.0)]),
                                         pd.DataFrame({"occurred_at": [], "symbol": [], "trend": []}))
    assert report["total_pnl"] == 0.0 and report["trades"] == 0
    assert list(report["by_weekday"].weekday) == list(WEEKDAYS)
    assert (report["by_weekday"].trades == 0).all()
    assert all(value == 0.0 for value in report["reconciliation"].values())
    assert PnLAttributor().by_instrument(pd.DataFrame()).empty


def test_full_report_shape():
    trips = make_trips([{"pnl": 1.0, "signal": "s", "strategy_id": "a"}, {"pnl": -3.0}])
    report = PnLAttributor("Europe/London").full_report(trips, exposures([("s", "momentum", 1.0)]))
    assert report["total_pnl"] == -2.0 and report["trades"] == 2
    assert report["timezone"] == "Europe/London" and report["factor_method"] == FACTOR_METHOD
    assert report["by_regime"] == {}
    assert set(report["reconciliation"]) == {"factor", "symbol", "strategy_id", "holding_horizon", "time_of_day",
                                             "weekday"}
    for key in TABLES:
        table = report[key]
        assert list(table.columns[1:]) == ["pnl", "trades", "share_of_pnl"]
        assert table.share_of_pnl.sum() == pytest.approx(1.0)


def test_share_of_pnl_is_nan_when_the_total_is_zero():
    table = PnLAttributor().by_instrument(make_trips([{"pnl": 1.0, "symbol": "A"}, {"pnl": -1.0, "symbol": "B"}]))
    assert table.share_of_pnl.isna().all()


# -- generated -------------------------------------------------------------------------------

SIGNALS = ["sigA", "sigB", "sig0", "sig1", "sig2", "sig3", "sig5"]


@st.composite
def exposure_rows(draw) -> pd.DataFrame:
    rows = draw(st.lists(st.tuples(st.sampled_from(SIGNALS), st.sampled_from(["momentum", "value", "carry"]),
                                   st.sampled_from([0.0, -1.5, 0.25, 1.0, 3.0])), max_size=12))
    return exposures(rows)


@st.composite
def regime_rows(draw) -> pd.DataFrame:
    rows = draw(st.lists(st.tuples(st.integers(-10, 70), st.sampled_from(["AAA", "BBB", "CCC"]),
                                   st.sampled_from(["up", "down", None]), st.sampled_from(["calm", "wild"])),
                         max_size=10))
    return pd.DataFrame({
        "occurred_at": pd.DatetimeIndex([pd.Timestamp("2024-03-04T14:30:00Z") + pd.Timedelta(seconds=s)
                                         for s, *_ in rows], dtype="datetime64[ns, UTC]"),
        "symbol": [r[1] for r in rows], "trend": [r[2] for r in rows], "volatility": [r[3] for r in rows],
    })


def assert_same_tables(fast: pd.DataFrame, slow: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(fast, slow, check_exact=False, rtol=1e-9, atol=1e-9)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fill_rows(), exposure_rows(), regime_rows(),
       st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"]), st.sampled_from([15, 60, 240, 420]))
def test_full_report_matches_the_naive_loop(rows, exposure_frame, regimes, timezone, minutes):
    fills = make_fills(rows)
    trips = match_round_trips(fills).trips
    edges = (1, 5, 30)
    fast = PnLAttributor(timezone, edges, minutes).full_report(trips, exposure_frame, regimes)
    slow = naive_full_report(naive_match_round_trips(fills).trips, exposure_frame, regimes, timezone=timezone,
                             horizon_edges_seconds=edges, time_of_day_minutes=minutes)
    assert fast["total_pnl"] == pytest.approx(slow["total_pnl"], abs=1e-9)
    assert fast["trades"] == slow["trades"]
    for key in TABLES:
        assert_same_tables(fast[key], slow[key])
    assert set(fast["by_regime"]) == set(slow["by_regime"])
    for dimension in fast["by_regime"]:
        assert_same_tables(fast["by_regime"][dimension], slow["by_regime"][dimension])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(-10**8, 10**8), st.sampled_from(SIGNALS + [None]),
                          st.integers(0, 10**7), st.integers(0, 400 * 86400)), max_size=300),
       exposure_rows())
def test_every_attribution_reconciles_to_the_cent(values, exposure_frame):
    trips = make_trips([
        {"pnl": cents / 100, "signal": signal, "holding_seconds": holding,
         "symbol": f"S{cents % 7}", "strategy_id": None if cents % 3 == 0 else f"st{cents % 2}",
         "entry_at": pd.Timestamp("2024-01-01T00:00:00Z") + pd.Timedelta(seconds=offset)}
        for cents, signal, holding, offset in values
    ])
    regimes = pd.DataFrame({"occurred_at": pd.to_datetime(["2024-02-01T00:00:00Z"]), "symbol": ["S1"],
                            "trend": ["up"], "volatility": ["low"], "risk": ["on"]})
    report = PnLAttributor("Europe/Berlin").full_report(trips, exposure_frame, regimes)
    total = trips.pnl.sum()
    assert report["total_pnl"] == pytest.approx(total, abs=1e-6)
    assert len(report["reconciliation"]) == 9
    for name, difference in report["reconciliation"].items():
        assert abs(difference) < 0.005, name
    for key in TABLES:
        assert report[key].trades.sum() >= len(trips) if key == "by_factor" else report[key].trades.sum() == len(trips)


def test_reconciles_to_the_cent_on_many_trips():
    rng = np.random.default_rng(7)
    count = 250_000
    trips = pd.DataFrame({
        "strategy_id": pd.array(rng.choice(["a", "b"], count), dtype="str"),
        "symbol": pd.array(rng.choice([f"S{i}" for i in range(50)], count), dtype="str"),
        "entry_at": pd.DatetimeIndex(pd.Timestamp("2024-01-01", tz="UTC")
                                     + pd.to_timedelta(rng.integers(0, 365 * 86400, count), unit="s")),
        "holding_seconds": rng.exponential(3600, count),
        "pnl": np.round(rng.normal(0, 1000, count), 2),
        "opening_signal_id": pd.array(np.char.add("sig", rng.integers(0, count, count).astype(str)), dtype="str"),
    })
    signals = np.char.add("sig", np.arange(count).astype(str))
    exposure_frame = exposures(list(zip(np.repeat(signals, 3), np.tile(["momentum", "value", "carry"], count),
                                        rng.normal(0, 1, 3 * count))))
    report = PnLAttributor("Asia/Tokyo").full_report(trips, exposure_frame)
    for name, difference in report["reconciliation"].items():
        assert abs(difference) < 0.005, name
    assert not math.isnan(report["total_pnl"])
