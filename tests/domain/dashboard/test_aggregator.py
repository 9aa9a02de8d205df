"""RealtimeDashboardAggregator: every number on hand-computed events; incremental = one pass in
any batch split and across restarts (state through JSON); limits from the compliance policy."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from uuid import UUID

import empyrical
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradewatch.domain.compliance import CompliancePolicy, default_policy
from tradewatch.domain.dashboard import DashboardConfig, DashboardState, RealtimeDashboardAggregator
from tradewatch.domain.events.models import (
    AccountEvent,
    FillEvent,
    MarketDataEvent,
    OrderEvent,
    PositionUpdateEvent,
    SignalEvent,
    SystemEvent,
)
from tradewatch.domain.events.payloads import (
    AccountPayload,
    FillPayload,
    MarketDataPayload,
    OrderPayload,
    PositionUpdatePayload,
    SignalPayload,
    SystemPayload,
)
from tradewatch.domain.simulation import SimulationConfig, TradingSimulator

T0 = 1_704_205_800_000_000_000  # 2024-01-02 09:30 New York
S = 1_000_000_000
_ids = iter(range(1, 10**9))


def _id() -> UUID:
    return UUID(int=next(_ids))


def D(x) -> Decimal:
    return Decimal(str(x))


def quote(t, symbol="AAPL", bid=99.99, ask=100.01):
    return MarketDataEvent(event_id=_id(), occurred_at=t, source="e1", symbol=symbol,
                           payload=MarketDataPayload(bid=D(bid), ask=D(ask)))


def account(t, equity, buying_power=None, source="e1"):
    return AccountEvent(event_id=_id(), occurred_at=t, source=source,
                        payload=AccountPayload(equity=D(equity), cash=D(equity), buying_power=D(buying_power or equity)))


def position(t, quantity, avg, realized, symbol="AAPL", strategy="momentum"):
    return PositionUpdateEvent(event_id=_id(), occurred_at=t, source="e1", strategy_id=strategy, symbol=symbol,
                               payload=PositionUpdatePayload(quantity=D(quantity), avg_price=D(avg), market_price=D(avg),
                                                             realized_pnl=D(realized), unrealized_pnl=D(0)))


def order(t, order_id, status, side="buy", quantity=100, symbol="AAPL", decision=100.0, order_type="market"):
    return OrderEvent(event_id=_id(), occurred_at=t, source="e1", strategy_id="momentum", symbol=symbol,
                      order_id=order_id, payload=OrderPayload(side=side, quantity=D(quantity), order_type=order_type,
                                                              status=status, decision_price=D(decision),
                                                              limit_price=D(decision) if order_type == "limit" else None))


def fill(t, order_id, price, quantity=100, side="buy", symbol="AAPL", arrival=None):
    return FillEvent(event_id=_id(), occurred_at=t, source="e1", symbol=symbol, order_id=order_id,
                     payload=FillPayload(fill_id=f"f-{next(_ids)}", side=side, quantity=D(quantity), price=D(price),
                                         arrival_price=None if arrival is None else D(arrival)))


def signal(t, strategy="momentum", direction="long", seconds=0.02):
    return SignalEvent(event_id=_id(), occurred_at=t, source="e1", strategy_id=strategy, symbol="AAPL",
                       signal_id=f"s-{next(_ids)}", payload=SignalPayload(direction=direction, confidence=0.6,
                                                                           generation_seconds=seconds))


def system(t, level, component="order-router", source="e1"):
    return SystemEvent(event_id=_id(), occurred_at=t, source=source,
                       payload=SystemPayload(component=component, level=level, message="m"))


def run(events, policy: CompliancePolicy | None = None, now=None, config=None):
    aggregator = RealtimeDashboardAggregator(policy or default_policy(), config)
    state = aggregator.new_state()
    aggregator.apply(events, state)
    return aggregator.snapshot(state, now if now is not None else events[-1].occurred_at)


def test_portfolio_positions_pnl_and_exposure() -> None:
    events = [
        account(T0, 1_000_000, 2_000_000), account(T0 + 1, 500_000, 900_000, source="e2"),
        quote(T0 + 2, "AAPL", 109.99, 110.01), quote(T0 + 3, "MSFT", 199.0, 201.0),
        position(T0 + 4, 100, 100.0, 50.0), position(T0 + 5, -10, 210.0, -20.0, symbol="MSFT"),
    ]
    snap = run(events)
    assert snap.portfolio_value == 1_500_000 and snap.buying_power == 2_900_000
    assert snap.realized_pnl == pytest.approx(30.0)
    assert snap.unrealized_pnl == pytest.approx(100 * (110 - 100) + -10 * (200 - 210))  # 1000 + 100
    assert snap.gross_exposure == pytest.approx(100 * 110 + 10 * 200)
    assert snap.net_exposure == pytest.approx(100 * 110 - 10 * 200)
    assert snap.position_count == 2
    assert snap.instruments["AAPL"].notional == pytest.approx(11_000)


def test_orders_by_status_rejection_rate_and_latencies() -> None:
    events = [
        signal(T0, seconds=0.01), signal(T0 + 1, direction="short", seconds=0.03),
        order(T0 + 10, "o1", "submitted"), order(T0 + 10 + S // 10, "o1", "accepted"),
        order(T0 + 20, "o2", "submitted"), order(T0 + 20 + S // 2, "o2", "rejected"),
        order(T0 + 30, "o3", "submitted"), order(T0 + 30 + S // 5, "o3", "accepted"),
        fill(T0 + 10 + S, "o1", 100.05, arrival=100.0), fill(T0 + 30 + 2 * S, "o3", 99.98),  # o3: decision 100
    ]
    snap = run(events)
    assert snap.orders_by_status == {"accepted": 2, "rejected": 1, "submitted": 3}
    assert snap.rejection_rate == pytest.approx(1 / 3)
    assert snap.order_acknowledgement_seconds["p50"] == pytest.approx(0.2)
    assert snap.order_fill_seconds["p50"] == pytest.approx(1.5)
    assert snap.signal_generation_seconds["p50"] == pytest.approx(0.02)
    assert snap.slippage_bps["p50"] == pytest.approx((5.0 + -2.0) / 2)  # 5 bps cost, 2 bps gain
    assert snap.slippage_histogram.count == 2 and snap.order_latency_histogram.count == 3
    body = snap.to_dict()
    assert {"labels": ["momentum", "short"], "count": 1} in body["signals"]
    assert {"labels": ["AAPL", "buy", "market", "rejected"], "count": 1} in body["orders"]
    assert body["order_latency_histogram"]["buckets"][-1] == ["+Inf", 3]


def test_drawdown_max_drawdown_and_daily_pnl_roll_at_the_policy_timezone_midnight() -> None:
    evening = T0 + (14 * 3600 + 29 * 60) * S  # 23:59 New York
    events = [
        account(T0, 1_000_000), account(T0 + 60 * S, 1_100_000), account(T0 + 120 * S, 990_000),
        account(T0 + 180 * S, 1_045_000),
        quote(T0, "AAPL", 99.99, 100.01), position(T0 + 1, 100, 100.0, 0.0),
        position(evening, 100, 100.0, 500.0),
        quote(evening + 2 * 60 * S, "AAPL", 100.99, 101.01),  # 00:01: a new trading day
        position(evening + 3 * 60 * S, 100, 100.0, 700.0),
    ]
    snap = run(events)
    assert snap.drawdown == pytest.approx(1 - 1_045_000 / 1_100_000)
    assert snap.max_drawdown == pytest.approx(1 - 990_000 / 1_100_000)
    assert snap.trading_day == "2024-01-03"
    # The day began with realized 500 and unrealized 0; now realized 700 and unrealized 100.
    assert snap.daily_pnl == pytest.approx(700 + 100 - 500)
    assert snap.hit_rate == 1.0 and snap.profit_factor is None


def test_hit_rate_and_profit_factor_from_realized_changes() -> None:
    events = [position(T0, 10, 100.0, 0.0), position(T0 + 1, 5, 100.0, 30.0), position(T0 + 2, 0, 100.0, 10.0),
              position(T0 + 3, 10, 100.0, 50.0)]
    snap = run(events)
    assert snap.hit_rate == pytest.approx(2 / 3)
    assert snap.profit_factor == pytest.approx((30 + 40) / 20)


def test_rolling_sharpe_matches_empyrical_on_minute_returns() -> None:
    values = [1_000_000 * (1 + 0.001 * math.sin(i) + 0.0002 * i) for i in range(30)]
    events = [account(T0 + i * 60 * S, value) for i, value in enumerate(values)]
    config = DashboardConfig(sharpe_window_minutes=20)
    snap = run(events, config=config)
    returns = pd.Series(values[-21:]).pct_change().dropna()
    expected = empyrical.sharpe_ratio(returns, annualization=config.periods_per_year)
    assert snap.rolling_sharpe == pytest.approx(expected, rel=1e-9)


def test_risk_limit_consumption_against_the_policy() -> None:
    policy = CompliancePolicy.model_validate({
        **default_policy().model_dump(),
        "account_limits": {"max_gross_exposure": 100_000, "max_net_exposure": 50_000, "max_daily_loss": 1_000,
                           "max_drawdown": 0.1},
        "max_position": {"default": {"max_notional": 20_000}, "per_symbol": {"MSFT": {"max_quantity": 20}}},
        "notional_limits": {"per_instrument_per_day": 40_000},
    })
    events = [
        account(T0, 1_000_000), account(T0 + 1, 950_000),
        quote(T0 + 2, "AAPL", 99.99, 100.01), quote(T0 + 3, "MSFT", 199.99, 200.01),
        position(T0 + 4, 150, 110.0, 0.0), position(T0 + 5, -10, 200.0, 0.0, symbol="MSFT"),
        order(T0 + 6, "o1", "submitted", quantity=100, decision=100.0),
    ]
    limits = {(row["limit"], row["symbol"]): row["percent"] for row in run(events, policy).risk_limits}
    assert limits[("gross_exposure", "")] == pytest.approx(100 * (15_000 + 2_000) / 100_000)
    assert limits[("net_exposure", "")] == pytest.approx(100 * 13_000 / 50_000)
    assert limits[("daily_loss", "")] == pytest.approx(100 * 1_500 / 1_000)  # unrealized 150 x (100 - 110)
    assert limits[("drawdown", "")] == pytest.approx(100 * 0.05 / 0.1)
    assert limits[("position_notional", "AAPL")] == pytest.approx(100 * 15_000 / 20_000)
    assert limits[("position_notional", "MSFT")] == pytest.approx(100 * 10 / 20)
    assert limits[("order_notional_daily", "AAPL")] == pytest.approx(100 * 10_000 / 40_000)


def test_broker_connection_from_the_order_router_heartbeats() -> None:
    events = [system(T0, "info"), system(T0 + 1, "info", source="e2"), system(T0 + 2, "error", source="e2"),
              system(T0 + 3, "error", component="risk-engine")]
    snap = run(events, now=T0 + 30 * S)
    assert snap.broker_connected == {"e1": 1, "e2": 0}
    assert snap.errors == {"error\x1forder-router": 1, "error\x1frisk-engine": 1}
    assert run(events, now=T0 + 61 * S).broker_connected == {"e1": 0, "e2": 0}


def _stream(count: int = 4_000):
    simulator = TradingSimulator(SimulationConfig(events_per_second=300, seed=4), start_ns=T0)
    return simulator.generate(count)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(min_value=0, max_value=4_000), max_size=8))
def test_any_batch_split_with_restarts_gives_the_snapshot_of_one_pass(cuts: list[int]) -> None:
    events = _stream()
    aggregator = RealtimeDashboardAggregator(default_policy(), DashboardConfig(window_size=100))
    whole = aggregator.new_state()
    aggregator.apply(events, whole)
    now = events[-1].occurred_at
    state = aggregator.new_state()
    bounds = [0, *sorted(cuts), len(events)]
    for low, high in zip(bounds, bounds[1:]):
        state = DashboardState.from_dict(json.loads(json.dumps(state.to_dict())))  # a restart
        aggregator.apply(events[low:high], state)
    assert aggregator.snapshot(state, now).to_dict() == aggregator.snapshot(whole, now).to_dict()


def test_a_simulated_stream_gives_sane_numbers() -> None:
    events = _stream(20_000)
    snap = run(events)
    body = snap.to_dict()
    json.dumps(body, allow_nan=False)
    assert snap.portfolio_value and snap.portfolio_value > 0
    assert snap.orders_by_status["submitted"] >= snap.orders_by_status.get("accepted", 0)
    assert 0 <= snap.rejection_rate < 0.2
    p = snap.order_acknowledgement_seconds
    assert 0 < p["p50"] <= p["p95"] <= p["p99"]
    assert np.isfinite(snap.slippage_bps["p50"])
    assert {row["limit"] for row in snap.risk_limits} >= {"gross_exposure", "net_exposure", "daily_loss", "drawdown"}


def test_the_state_refuses_another_version() -> None:
    aggregator = RealtimeDashboardAggregator(default_policy())
    body = aggregator.new_state().to_dict()
    body["version"] = 99
    with pytest.raises(ValueError, match="version 99"):
        DashboardState.from_dict(body)
