"""Incremental and period analysis agree: any batch split, restarts through the state codec,
out-of-order arrival within the window, ticks, and ``analyze_period`` over any window."""

from __future__ import annotations

import random
from collections import Counter
from functools import lru_cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradewatch.domain.compliance import (
    ComplianceEngine,
    ComplianceMonitor,
    CompliancePolicy,
    ComplianceState,
    ComplianceStateError,
    EngineConfig,
    EventList,
    ISSUE_CODES,
    default_policy,
    from_models,
)
from tradewatch.domain.compliance.events import canonical_key
from tradewatch.domain.simulation import SimulationConfig, TradingSimulator
from tradewatch.domain.simulation.violations import ViolationInjector

from .builders import S, Stream, codes, policy, run

START = 1_704_205_800_000_000_000  # 2024-01-02 09:30 New York
_HYPOTHESIS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def full_policy() -> CompliancePolicy:
    """The shipped default plus a restricted symbol and a forbidden decision (the default has none)."""
    return CompliancePolicy.model_validate({**default_policy().model_dump(), "restricted_symbols": ["GME"],
                                            "forbidden_llm_decisions": ["modify"]})


def issue_keys(issues) -> list[tuple]:
    return sorted((i.occurred_at, i.code, i.key, i.event_ids) for i in issues)


@lru_cache(maxsize=None)
def mixed_stream(events: int = 6_000, seed: int = 5) -> tuple:
    """A simulated stream with every violation injected into it, in time order."""
    simulator = TradingSimulator(SimulationConfig(events_per_second=400, seed=seed), start_ns=START)
    clean = simulator.generate(events)
    duration = clean[-1].occurred_at - START
    injector = ViolationInjector(full_policy(), START, duration, seed=seed)
    merged = sorted([*clean, *injector.events], key=lambda event: event.occurred_at)
    return tuple(from_models(merged))


def test_the_mixed_stream_has_every_code() -> None:
    issues = run(list(mixed_stream()), full_policy())
    assert set(codes(issues)) == set(ISSUE_CODES)


@_HYPOTHESIS
@given(cuts=st.lists(st.integers(min_value=0, max_value=7_200), max_size=12), restart=st.booleans())
def test_any_batch_split_gives_the_same_issues(cuts: list[int], restart: bool) -> None:
    events = list(mixed_stream())
    expected = issue_keys(run(events, full_policy()))
    engine = ComplianceEngine(full_policy())
    state = engine.new_state()
    found = []
    bounds = [0, *sorted(min(c, len(events)) for c in cuts), len(events)]
    for low, high in zip(bounds, bounds[1:]):
        if restart:  # a worker restart between batches: only the encoded state survives
            state = ComplianceState.from_bytes(state.to_bytes())
            engine = ComplianceEngine(full_policy())
        result = engine.apply(events[low:high], state)
        assert result.late == 0
        found += result.issues
    found += engine.flush(state).issues
    assert issue_keys(found) == expected


@_HYPOTHESIS
@given(seed=st.integers(min_value=0, max_value=2**31), jitter_ms=st.integers(min_value=1, max_value=4_000))
def test_arrival_out_of_order_within_the_window_is_judged_in_event_order(seed: int, jitter_ms: int) -> None:
    """Each event arrives up to ``jitter`` after it occurred (received_at = arrival), in arrival
    order: with jitter under the 5 s window nothing is late and the issues are those of time order."""
    events = list(mixed_stream())
    expected = issue_keys(run(events, full_policy()))
    rng = random.Random(seed)
    arrivals = sorted(((e.occurred_at_ns + rng.randrange(jitter_ms * 1_000_000), i) for i, e in enumerate(events)))
    shuffled = [events[i]._replace(received_at_ns=at) for at, i in arrivals]
    engine = ComplianceEngine(full_policy())
    state = engine.new_state()
    found, late = [], 0
    for low in range(0, len(shuffled), 500):
        result = engine.apply(shuffled[low:low + 500], state)
        found += result.issues
        late += result.late
    found += engine.flush(state).issues
    assert late == 0
    assert issue_keys(found) == expected


@_HYPOTHESIS
@given(start_frac=st.floats(min_value=0.0, max_value=1.0), length_frac=st.floats(min_value=0.0, max_value=1.0))
def test_period_analysis_equals_the_incremental_issues_of_that_period(start_frac: float, length_frac: float) -> None:
    events = list(mixed_stream())
    incremental = run(events, full_policy())
    first, last = events[0].occurred_at_ns, events[-1].occurred_at_ns
    start = first + int((last - first) * start_frac)
    end = start + int((last + 1 - start) * length_frac)
    report = ComplianceMonitor(EventList(events), full_policy()).analyze_period(start, end)
    assert issue_keys(report.issues) == issue_keys([i for i in incremental if start <= i.occurred_at < end])
    assert report.events_examined == sum(1 for e in events if start <= e.occurred_at_ns < end)
    assert report.policy_version == full_policy().version and report.policy_hash == full_policy().content_hash


def test_period_analysis_uses_context_from_before_the_warm_up() -> None:
    """A halt tripped days before the period still applies (the breaker is context)."""
    s = Stream()
    s.breaker("HALTED")
    s.t += 3 * 86_400 * S
    order_time = s.t
    s.good_order("ord-1", "sig-1")
    report = ComplianceMonitor(EventList(s.events), policy()).analyze_period(order_time - S, order_time + S)
    assert [i.code for i in report.issues] == ["TRADING_WHILE_HALTED"]
    assert report.events_examined == 4


def test_the_tick_settles_an_order_whose_checks_never_came() -> None:
    s = Stream()
    s.signal("sig-1")
    order = s.order("ord-1", "sig-1")
    engine = ComplianceEngine(policy(), EngineConfig(reorder_window_seconds=5))
    state = engine.new_state()
    assert engine.apply(s.events, state).issues == [] and state.pending == 2
    assert engine.tick(order.occurred_at_ns + 4 * S, state).issues == []
    settled = engine.tick(order.occurred_at_ns + 5 * S, state)
    assert [i.code for i in settled.issues] == ["ORDER_WITHOUT_RISK_CHECK"] and state.pending == 0


def test_the_tick_follows_the_receipt_clock_so_an_engine_clock_behind_is_not_made_late() -> None:
    """An engine 30 s behind tradewatch: events received 30 s after they occurred, ticked every
    second in between; nothing is late, and once arrivals stop the tick releases the tail."""
    behind = 30 * S
    s = Stream()
    for index in range(20):
        s.t += S // 2
        s.good_order(f"ord-{index}", f"sig-{index}", quantity=10 + index)
    engine = ComplianceEngine(policy())
    state = engine.new_state()
    late = 0
    for event in s.events:
        received = event.occurred_at_ns + behind
        late += engine.apply([event._replace(received_at_ns=received)], state).late
        late += engine.tick(received + S // 10, state).late
    assert late == 0 and state.pending > 0
    last = s.events[-1].occurred_at_ns + behind
    engine.tick(last + 4 * S, state)  # the watermark is 1 s short of the last event
    assert state.pending > 0
    engine.tick(last + 5 * S, state)
    assert state.pending == 0 and state.applied == len(s.events)


def test_a_check_arriving_within_the_window_after_its_order_still_counts() -> None:
    s = Stream()
    s.signal("sig-1")
    check = s.check("sig-1")
    s.llm("sig-1")
    order = s.order("ord-1", "sig-1")
    engine = ComplianceEngine(policy())
    state = engine.new_state()
    late_by = 3 * S
    arrivals = [e._replace(received_at_ns=e.occurred_at_ns) for e in s.events if e is not check]
    assert engine.apply(arrivals, state).issues == []
    result = engine.apply([check._replace(received_at_ns=order.occurred_at_ns + late_by)], state)
    result.add(engine.flush(state))
    assert result.issues == [] and result.late == 0


def test_an_event_later_than_the_window_is_applied_at_once_and_counted() -> None:
    s = Stream()
    s.signal("sig-1")
    check = s.check("sig-1")
    s.llm("sig-1")
    order = s.order("ord-1", "sig-1")
    s.quote(at=order.occurred_at_ns + 60 * S)  # moves the watermark past the order
    engine = ComplianceEngine(policy())
    state = engine.new_state()
    first = engine.apply([e for e in s.events if e is not check], state)
    assert [i.code for i in first.issues] == ["ORDER_WITHOUT_RISK_CHECK"]
    second = engine.apply([check], state)
    assert second.late == 1 and state.late == 1 and second.issues == []


def test_a_clock_far_ahead_does_not_release_the_buffer() -> None:
    """An event stamped an hour ahead of its receipt moves the watermark only to receipt + 60 s."""
    s = Stream()
    s.signal("sig-1")
    s.llm("sig-1")
    order = s.order("ord-1", "sig-1")
    now = order.occurred_at_ns
    ahead = s.quote(at=now + 3600 * S)._replace(received_at_ns=now)
    engine = ComplianceEngine(policy())
    state = engine.new_state()
    engine.apply([e._replace(received_at_ns=now) for e in s.events if e is not ahead] + [ahead], state)
    assert state.max_trusted_ns == now + 60 * S


def test_state_codec_round_trip_and_errors() -> None:
    engine = ComplianceEngine(full_policy())
    state = engine.new_state()
    engine.apply(list(mixed_stream())[:3_000], state)
    copy = ComplianceState.from_bytes(state.to_bytes())
    assert copy.to_bytes() == state.to_bytes() and copy.pending == state.pending > 0
    with pytest.raises(ComplianceStateError, match="not readable"):
        ComplianceState.from_bytes(b"garbage")
    import json
    import zlib

    with pytest.raises(ComplianceStateError, match="version 99"):
        ComplianceState.from_bytes(zlib.compress(json.dumps({"version": 99}).encode()))


def test_a_clean_simulated_stream_of_100k_events_has_no_issue_under_the_default_policy() -> None:
    simulator = TradingSimulator(SimulationConfig(events_per_second=200, seed=11), start_ns=START)
    events = from_models(simulator.generate(100_000))
    assert Counter(e.event_type for e in events)["order"] > 5_000
    assert run(events, default_policy()) == []


def test_injected_violations_are_each_found_under_the_default_policy() -> None:
    simulator = TradingSimulator(SimulationConfig(events_per_second=200, seed=12), start_ns=START)
    clean = simulator.generate(20_000)
    injector = ViolationInjector(default_policy(), START, clean[-1].occurred_at - START, seed=1)
    # The default policy restricts no symbol and forbids no decision: those two cannot be injected.
    assert set(injector.skipped) == {"RESTRICTED_SYMBOL", "LLM_FORBIDDEN_DECISION"}
    events = from_models(sorted([*clean, *injector.events], key=lambda e: e.occurred_at))
    found = Counter(codes(run(events, default_policy())))
    assert found == Counter({code: 1 for code in injector.injected_codes})


def test_canonical_order_puts_cause_before_effect_at_equal_times() -> None:
    s = Stream()
    signal = s.signal("sig-1")
    order = s.order("ord-1", "sig-1", at=signal.occurred_at_ns)
    check = s.check("sig-1", at=signal.occurred_at_ns)
    assert sorted([order, check, signal], key=canonical_key) == [signal, check, order]


def test_the_recheck_period_ends_a_window_before_now_and_never_past_the_live_watermark() -> None:
    from tradewatch.domain.compliance.monitor import recheck_period

    now, hour, window = 10_000 * S, 3600 * S, 5 * S
    assert recheck_period(now, hour, window, None) == (now - window - hour, now - window)
    assert recheck_period(now, hour, window, now) == (now - window - hour, now - window)
    behind = now - 60 * S  # the live monitor is a minute behind: a backlog, not missed breaches
    assert recheck_period(now, hour, window, behind) == (behind + 1 - hour, behind + 1)
