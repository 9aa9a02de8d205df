"""The synthetic trading engine: deterministic, valid, linked, consistent, fast enough."""

from __future__ import annotations

import ast
import subprocess
import sys
import time
from collections import Counter, defaultdict
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from pydantic import ValidationError

import tradewatch.domain.simulation as simulation_package
from tradewatch.domain.events import EVENT_TYPES, parse_event
from tradewatch.domain.simulation import PositionBook, SimulationConfig, SymbolConfig, TradingSimulator

START_NS = 1_767_225_600_123_456_789  # 2026-01-01T00:00:00.123456789Z
BIG_SAMPLE = 100_000
MAX_SECONDS_FOR_BIG_SAMPLE = 10.0


@pytest.fixture(scope="module")
def big_sample():
    """100,000 events with the default configuration, and the CPU seconds they took to generate
    (CPU time, so other work on a busy machine does not count)."""
    config = SimulationConfig(seed=11)
    started = time.process_time()
    events = TradingSimulator(config, START_NS).generate(BIG_SAMPLE)
    return config, events, time.process_time() - started


@pytest.fixture(scope="module")
def breaker_sample():
    """A run where circuit breakers trip often and reset quickly, so halts can be checked."""
    config = SimulationConfig(
        seed=3,
        circuit_breaker_trip_probability=0.05,
        circuit_breaker_reset_seconds=(0.5, 3.0),
        circuit_breaker_cooldown_seconds=1.0,
        events_per_second=400,
    )
    return config, TradingSimulator(config, START_NS).generate(40_000)


# --- determinism -------------------------------------------------------------------------------


def _dumps(events):
    return [e.model_dump_json() for e in events]


def test_same_seed_gives_the_same_events_and_another_seed_does_not():
    first = _dumps(TradingSimulator(SimulationConfig(seed=42), START_NS).generate(4_000))
    second = _dumps(TradingSimulator(SimulationConfig(seed=42), START_NS).generate(4_000))
    other = _dumps(TradingSimulator(SimulationConfig(seed=43), START_NS).generate(4_000))
    assert first == second
    assert first != other
    assert len(set(json_id[:60] for json_id in first)) == len(first)  # distinct event ids


def test_how_time_is_cut_into_calls_does_not_change_the_events():
    whole = TradingSimulator(SimulationConfig(seed=5), START_NS).generate(5_000)
    end = whole[-1].occurred_at
    stepped = TradingSimulator(SimulationConfig(seed=5), START_NS)
    pieces, t, step = [], START_NS, 1
    while t < end:
        t = min(end, t + step)
        pieces.extend(stepped.events_until(t))
        step = step * 7 % 900_000_007 + 13  # irregular steps, from 1 ns to about a second
    assert _dumps(pieces) == _dumps(whole)


# --- validity and time -------------------------------------------------------------------------


def test_every_event_is_valid_and_round_trips_through_parse_event():
    events = TradingSimulator(SimulationConfig(seed=8), START_NS).generate(15_000)
    assert {e.event_type for e in events} >= set(EVENT_TYPES) - {"circuit_breaker"}
    for event in events:
        raw = event.model_dump_json()
        parsed = parse_event(raw).event
        assert type(parsed) is type(event)
        assert parsed == event
        assert parsed.model_dump_json() == raw


def test_events_until_returns_the_half_open_window_in_time_order():
    sim = TradingSimulator(SimulationConfig(seed=9), START_NS)
    assert sim.events_until(START_NS) == []
    previous, total = START_NS, 0
    for step in (1, 999, 3_000_000, 250_000_000, 1, 1_000_000_000, 7_777_777_777):
        t = previous + step
        window = sim.events_until(t)
        times = [e.occurred_at for e in window]
        assert times == sorted(times)
        assert all(previous < x <= t for x in times)
        assert sim.now_ns == t
        assert sim.events_until(t) == [] and sim.events_until(t - 5) == []
        previous, total = t, total + len(window)
    assert total > 1_000


def test_times_are_non_decreasing_and_use_nanoseconds(big_sample):
    _, events, _ = big_sample
    times = [e.occurred_at for e in events]
    assert times[0] > START_NS
    assert all(a <= b for a, b in zip(times, times[1:]))
    whole_ms = sum(1 for x in times if x % 1_000_000 == 0)
    whole_us = sum(1 for x in times if x % 1_000 == 0)
    assert whole_ms < len(times) * 0.001 and whole_us < len(times) * 0.01
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert sum(1 for g in gaps if 0 < g < 1_000_000) > len(gaps) * 0.2  # sub-millisecond spacing is common


def test_generate_never_splits_a_nanosecond():
    sim = TradingSimulator(SimulationConfig(seed=2), START_NS)
    first = sim.generate(1_000)
    assert len(first) >= 1_000
    rest = sim.events_until(first[-1].occurred_at + 5 * 10**9)
    assert rest and rest[0].occurred_at > first[-1].occurred_at
    assert sim.generate(0) == []


# --- prices, quantities, quotes ----------------------------------------------------------------


def test_prices_on_the_tick_grid_quantities_on_the_lot_grid_and_bid_below_ask(big_sample):
    config, events, _ = big_sample
    spec = {s.symbol: s for s in config.symbols}
    for event in events:
        p = event.payload
        if event.event_type == "market_data":
            tick, lot = spec[event.symbol].tick_size, spec[event.symbol].lot_size
            assert p.bid < p.ask
            assert p.bid <= p.last <= p.ask
            assert p.bid % tick == 0 and p.ask % tick == 0 and p.volume % lot == 0 and p.volume > 0
        elif event.event_type == "fill":
            tick, lot = spec[event.symbol].tick_size, spec[event.symbol].lot_size
            assert p.bid < p.ask
            assert p.price % tick == 0 and p.quantity % lot == 0
            assert p.bid - 6 * tick <= p.price <= p.ask + 6 * tick  # near the touch
            assert p.fee >= 0 and p.liquidity in ("maker", "taker")
            assert p.vwap > 0 and p.arrival_price > 0
        elif event.event_type == "order":
            assert p.quantity % spec[event.symbol].lot_size == 0
            assert p.decision_price is not None
    fractional = [e for e in events if e.event_type == "fill" and e.symbol == "BTC-USD" and e.payload.quantity % 1 != 0]
    assert fractional, "BTC-USD trades in fractions"


# --- chains ------------------------------------------------------------------------------------


def test_chains_are_linked_and_order_status_sequences_are_legal(big_sample):
    _, events, _ = big_sample
    signals: set[str] = set()
    checks: dict[str, list] = defaultdict(list)
    decisions: dict[str, list] = defaultdict(list)
    status: dict[str, str] = {}
    order_qty: dict[str, Decimal] = {}
    filled: dict[str, Decimal] = defaultdict(Decimal)
    fills_pending_update: Counter = Counter()
    terminal = {"rejected", "cancelled", "expired"}
    for e in events:
        kind = e.event_type
        if kind == "signal":
            assert e.signal_id not in signals
            signals.add(e.signal_id)
        elif kind == "risk_check":
            assert e.signal_id in signals and not decisions[e.signal_id]
            checks[e.signal_id].append(e.payload)
        elif kind == "llm_decision":
            assert e.signal_id in signals and checks[e.signal_id] and not decisions[e.signal_id]
            decisions[e.signal_id].append(e.payload)
        elif kind == "order":
            new = e.payload.status
            if e.order_id not in status:
                assert new == "submitted", f"order {e.order_id} starts with {new}"
                assert e.signal_id in signals
                assert [d.decision for d in decisions[e.signal_id]] in (["approve"], ["modify"])
                assert all(c.passed or c.override for c in checks[e.signal_id])
                order_qty[e.order_id] = e.payload.quantity
            else:
                before = status[e.order_id]
                assert before not in terminal, f"order {e.order_id}: {new} after {before}"
                if before == "submitted":
                    assert new in ("accepted", "rejected")
                else:
                    assert new in ("cancelled", "expired")
                assert e.payload.quantity == order_qty[e.order_id]
            status[e.order_id] = new
        elif kind == "fill":
            assert status.get(e.order_id) == "accepted", f"fill on order {e.order_id} in status {status.get(e.order_id)}"
            filled[e.order_id] += e.payload.quantity
            assert filled[e.order_id] <= order_qty[e.order_id]
            fills_pending_update[e.order_id] += 1
        elif kind == "position_update":
            assert fills_pending_update[e.order_id] > 0
            fills_pending_update[e.order_id] -= 1
        if kind in ("risk_check", "llm_decision", "order", "fill", "position_update"):
            assert e.signal_id in signals
        if kind in ("order", "fill", "position_update"):
            assert e.order_id and e.strategy_id and e.symbol
    for signal_id, its_checks in checks.items():
        assert 1 <= len(its_checks) <= 3
        assert len({c.check_name for c in its_checks}) == len(its_checks)
    statuses = Counter(status.values())
    assert statuses["accepted"] > 1_000 and statuses["rejected"] > 10
    assert statuses["cancelled"] > 10 and statuses["expired"] > 10
    full = sum(1 for o, q in order_qty.items() if filled[o] == q)
    partial = sum(1 for o, q in order_qty.items() if 0 < filled[o] < q)
    assert full > 1_000 and partial > 10
    overrides = [c for cs in checks.values() for c in cs if c.override]
    assert overrides and all(c.approver and not c.passed for c in overrides)


def test_most_orders_are_acknowledged_within_milliseconds(big_sample):
    _, events, _ = big_sample
    submitted, latencies = {}, []
    for e in events:
        if e.event_type == "order":
            if e.payload.status == "submitted":
                submitted[e.order_id] = e.occurred_at
            elif e.payload.status in ("accepted", "rejected"):
                latencies.append(e.occurred_at - submitted[e.order_id])
    latencies.sort()
    median = latencies[len(latencies) // 2]
    assert 1_000_000 < median < 10_000_000


# --- position book -----------------------------------------------------------------------------


def test_average_cost_realized_pnl_on_a_hand_computed_scenario():
    book = PositionBook(cash=Decimal("10000"))
    pos = book.apply_fill("s", "X", "buy", Decimal(100), Decimal("10"), fee=Decimal("1"))
    assert (pos.quantity, pos.avg_price, pos.realized_pnl) == (100, 10, 0)
    pos = book.apply_fill("s", "X", "buy", Decimal(100), Decimal("12"))
    assert (pos.quantity, pos.avg_price, pos.realized_pnl) == (200, 11, 0)
    pos = book.apply_fill("s", "X", "sell", Decimal(150), Decimal("13"), fee=Decimal("2"))
    assert (pos.quantity, pos.avg_price, pos.realized_pnl) == (50, 11, 300)  # 150 * (13 - 11)
    assert pos.unrealized_pnl(Decimal("14")) == 150  # 50 * (14 - 11)
    pos = book.apply_fill("s", "X", "sell", Decimal(100), Decimal("9"))  # closes 50 at a loss, opens 50 short at 9
    assert (pos.quantity, pos.avg_price, pos.realized_pnl) == (-50, 9, 200)  # 300 + 50 * (9 - 11)
    assert pos.unrealized_pnl(Decimal("8")) == 50  # short 50 from 9, marked at 8
    pos = book.apply_fill("s", "X", "buy", Decimal(50), Decimal("8"))
    assert (pos.quantity, pos.avg_price, pos.realized_pnl) == (0, 0, 250)
    assert pos.fees == 3
    # cash: -1000 -1 -1200 +1950 -2 +900 -400  = +247 = realized 250 - fees 3 on a flat book
    assert book.cash == Decimal("10247")
    assert book.exposures({"X": Decimal("8")}) == (0, 0)


def test_position_updates_match_the_fills(big_sample):
    """Quantity is the signed sum of fills; PnL is average cost, recomputed here exactly."""
    _, events, _ = big_sample
    qty: dict[tuple, Fraction] = defaultdict(Fraction)
    avg: dict[tuple, Fraction] = defaultdict(Fraction)
    realized: dict[tuple, Fraction] = defaultdict(Fraction)
    expected: dict[str, list] = defaultdict(list)  # order_id -> state after each of its fills
    checked = 0
    for e in events:
        if e.event_type == "fill":
            key = (e.source, e.strategy_id, e.symbol)
            q, a = qty[key], avg[key]
            s = Fraction(e.payload.quantity) * (1 if e.payload.side == "buy" else -1)
            price = Fraction(e.payload.price)
            if q == 0 or (q > 0) == (s > 0):
                avg[key] = (abs(q) * a + abs(s) * price) / abs(q + s)
            else:
                closed = min(abs(s), abs(q))
                realized[key] += closed * (price - a) * (1 if q > 0 else -1)
                if q + s == 0:
                    avg[key] = Fraction(0)
                elif (q + s > 0) != (q > 0):
                    avg[key] = price
            qty[key] = q + s
            expected[e.order_id].append((qty[key], avg[key], realized[key]))
        elif e.event_type == "position_update":
            q, a, r = expected[e.order_id].pop(0)
            p = e.payload
            assert p.quantity == q, "position quantity is the signed sum of the fills"
            assert abs(Fraction(p.avg_price) - a) < Fraction(1, 10**4)
            assert abs(Fraction(p.realized_pnl) - r) <= Fraction(2, 100) + abs(r) * Fraction(1, 10**9)
            unrealized = (Fraction(p.market_price) - Fraction(p.avg_price)) * Fraction(p.quantity)
            assert abs(Fraction(p.unrealized_pnl) - unrealized) <= Fraction(1, 100)
            checked += 1
    assert checked > 1_000
    assert any(r != 0 for r in realized.values())


def test_account_events_agree_with_the_fills(big_sample):
    config, events, _ = big_sample
    cash = Fraction(Decimal(repr(config.initial_cash_usd)))
    leverage = Decimal(repr(config.leverage))
    accounts = 0
    for e in events:
        if e.event_type == "fill":
            notional = Fraction(e.payload.quantity) * Fraction(e.payload.price)
            cash += (-notional if e.payload.side == "buy" else notional) - Fraction(e.payload.fee)
        elif e.event_type == "account":
            p = e.payload
            assert abs(Fraction(p.cash) - cash) <= Fraction(1, 200)
            assert p.equity == p.cash + p.net_exposure
            assert abs(p.net_exposure) <= p.gross_exposure
            assert abs(p.margin_used - p.gross_exposure / leverage) <= Decimal("0.01")
            assert abs(p.buying_power - max(Decimal(0), (p.equity - p.margin_used) * leverage)) <= Decimal("0.05")
            accounts += 1
    assert accounts > 100


# --- circuit breakers --------------------------------------------------------------------------


def _effective(strategy_state, global_state, strategy, source):
    severity = {"ACTIVE": 0, "REDUCING": 1, "HALTED": 2}
    own, engine = strategy_state.get(strategy, "ACTIVE"), global_state.get(source, "ACTIVE")
    return own if severity[own] >= severity[engine] else engine


def test_halted_strategies_send_no_orders_and_reducing_ones_only_reduce(breaker_sample):
    _, events = breaker_sample
    strategy_state: dict[str, str] = {}
    global_state: dict[str, str] = {}
    position: dict[tuple, Decimal] = defaultdict(Decimal)
    trips, resets = Counter(), Counter()
    orders_after_reset = 0
    reset_seen: set[str] = set()
    for e in events:
        if e.event_type == "circuit_breaker":
            p = e.payload
            key = e.strategy_id if p.scope == "strategy" else e.source
            states = strategy_state if p.scope == "strategy" else global_state
            if p.state == "tripped":
                assert states.get(key, "ACTIVE") == "ACTIVE", "a breaker trips only when armed"
                assert p.trading_state in ("HALTED", "REDUCING") and p.reason
                trips[(p.scope, p.trading_state)] += 1
            else:
                assert states.get(key) in ("HALTED", "REDUCING"), "a reset follows a trip"
                assert p.trading_state == "ACTIVE"
                resets[p.scope] += 1
                if p.scope == "strategy":
                    reset_seen.add(e.strategy_id)
            states[key] = p.trading_state
        elif e.event_type == "order" and e.payload.status == "submitted":
            state = _effective(strategy_state, global_state, e.strategy_id, e.source)
            assert state != "HALTED", f"order {e.order_id} sent while {e.strategy_id} is HALTED"
            if state == "REDUCING":
                held = position[(e.strategy_id, e.symbol)]
                assert held != 0 and (e.payload.side == "sell") == (held > 0)
                assert e.payload.quantity <= abs(held)
            if e.strategy_id in reset_seen:
                orders_after_reset += 1
        elif e.event_type == "fill":
            state = _effective(strategy_state, global_state, e.strategy_id, e.source)
            assert state != "HALTED", f"fill for {e.strategy_id} while HALTED"
            position[(e.strategy_id, e.symbol)] += e.payload.quantity if e.payload.side == "buy" else -e.payload.quantity
    for kind in (("strategy", "HALTED"), ("strategy", "REDUCING"), ("global", "HALTED")):
        assert trips[kind] >= 2, f"expected several {kind} trips, got {dict(trips)}"
    assert resets["strategy"] >= 4 and resets["global"] >= 1
    assert orders_after_reset > 50, "trading resumes after a reset"


def test_a_trip_cancels_the_open_orders_of_the_strategy(breaker_sample):
    _, events = breaker_sample
    reasons = Counter(e.payload.model_extra.get("cancel_reason") for e in events if e.event_type == "order" and e.payload.status == "cancelled")
    assert reasons["circuit breaker tripped"] > 0 and reasons[None] > 0


# --- the mix -----------------------------------------------------------------------------------


def test_the_event_mix_follows_the_config(big_sample):
    config, events, _ = big_sample
    counts = Counter(e.event_type for e in events)
    seconds = (events[-1].occurred_at - START_NS) / 1e9
    assert counts["market_data"] / len(events) == pytest.approx(config.market_data_share, abs=0.03)
    assert len(events) / seconds == pytest.approx(config.events_per_second, rel=0.05)
    assert counts["account"] == pytest.approx(seconds / config.account_interval_seconds, rel=0.02)
    assert counts["system"] == pytest.approx(seconds * len(config.components) / config.heartbeat_interval_seconds, rel=0.02)
    signals = counts["signal"]
    assert counts["llm_decision"] == pytest.approx(signals, rel=0.01)
    assert counts["risk_check"] == pytest.approx(2 * signals, rel=0.05)
    assert counts["fill"] == counts["position_update"]
    assert counts["circuit_breaker"] >= 1
    checks = [e.payload for e in events if e.event_type == "risk_check"]
    assert sum(not c.passed for c in checks) / len(checks) == pytest.approx(config.risk_check_failure_rate, abs=0.015)
    decisions = Counter(e.payload.decision for e in events if e.event_type == "llm_decision")
    assert decisions["reject"] / signals == pytest.approx(config.llm_reject_rate + 0.05, abs=0.03)  # plus failed checks
    acks = Counter(e.payload.status for e in events if e.event_type == "order")
    assert acks["rejected"] / acks["submitted"] == pytest.approx(config.venue_reject_rate, abs=0.01)
    heartbeats = [e for e in events if e.event_type == "system"]
    assert {e.payload.component for e in heartbeats} == set(config.components)
    assert Counter(e.payload.level for e in heartbeats).most_common(1)[0][0] == "info"


@pytest.mark.parametrize("share", [0.5, 0.85])
def test_the_market_data_share_is_configurable(share):
    # Without circuit breakers: one early halt would dominate so short a run.
    config = SimulationConfig(seed=4, market_data_share=share, circuit_breaker_trip_probability=0.0)
    events = TradingSimulator(config, START_NS).generate(15_000)
    assert sum(e.event_type == "market_data" for e in events) / len(events) == pytest.approx(share, abs=0.03)


def test_prices_follow_a_random_walk(big_sample):
    config, events, _ = big_sample
    start = {s.symbol: Decimal(repr(s.start_price)) for s in config.symbols}
    last = {e.symbol: e.payload.last for e in events if e.event_type == "market_data"}
    assert set(last) == set(start)
    for symbol, price in last.items():
        assert price != start[symbol]
        assert abs(price / start[symbol] - 1) < Decimal("0.2")  # minutes of trading, not a crash


# --- configuration, purity, speed --------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"risk_check_failure_rate": 1.5}, "risk_check_failure_rate"),
        ({"llm_reject_rate": 0.6, "llm_modify_rate": 0.5}, "at most 1"),
        ({"risk_checks_per_signal": (3, 1)}, "minimum is above the maximum"),
        ({"circuit_breaker_reset_seconds": (60.0, 10.0)}, "minimum is above the maximum"),
        ({"strategies": ("momentum", "momentum")}, "duplicates"),
        ({"symbols": ()}, "empty"),
        ({"events_per_second": 0}, "events_per_second"),
        ({"market_data_share": 1.0}, "market_data_share"),
    ],
)
def test_bad_configuration_is_rejected_with_the_field_named(overrides, message):
    with pytest.raises(ValidationError) as error:
        SimulationConfig(**overrides)
    assert message in str(error.value)


def test_custom_symbols_and_bad_start_times():
    config = SimulationConfig(
        seed=1,
        symbols=(SymbolConfig(symbol="EURUSD", start_price=1.0854, tick_size=Decimal("0.00001"), lot_size=Decimal(1000), spread_ticks=2),),
        strategies=("carry",),
        sources=("engine-a", "engine-b"),
    )
    events = TradingSimulator(config, START_NS).generate(3_000)
    assert {e.symbol for e in events if e.symbol} == {"EURUSD"}
    assert {e.source for e in events} == {"engine-a", "engine-b"}
    assert any(e.event_type == "fill" for e in events)
    with pytest.raises(ValueError, match="nanoseconds"):
        TradingSimulator(config, 1_767_225_600)  # seconds, not nanoseconds
    with pytest.raises(ValidationError, match="10 ticks"):
        SymbolConfig(symbol="X", start_price=0.05)


def test_the_package_is_pure():
    forbidden = {"os", "time", "datetime", "celery", "redis", "sqlalchemy", "kombu", "socket", "io", "pathlib"}
    for path in Path(simulation_package.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"
    code = "import sys, tradewatch.domain.simulation; print(sorted({'celery','redis','sqlalchemy','kombu'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_generating_100k_events_is_fast(big_sample):
    _, events, seconds = big_sample
    assert len(events) >= BIG_SAMPLE
    assert seconds < MAX_SECONDS_FOR_BIG_SAMPLE, f"{BIG_SAMPLE} events took {seconds:.1f} s of CPU"
