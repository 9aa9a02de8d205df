"""Benchmark: events checked per second through ``compliance.batch``, with a realistic policy.

Data: --events events of simulated trading (``TradingSimulator`` at --rate events/s of
simulated time from Monday 2026-03-02 09:30 New York, five symbols, three strategies: signals,
risk checks, LLM decisions, orders, fills, positions, breakers, quotes, heartbeats), with the
labelled violations of ``ViolationInjector`` merged in (one scenario per issue code the policy
enables), judged by the shipped default policy (every rule on) or --policy.

Measured, in one run on one scratch PostgreSQL database (created and dropped here; --database-url
is the maintenance database it is created from, default TRADEWATCH_TEST_POSTGRES_URL or
postgresql://postgres@127.0.0.1:5432/postgres):

- ``events_per_second``: the events are ingested through ``AuditStore.ingest`` (batches of
  5,000, as the ingest task does), then ``ComplianceStore.apply_pending(engine)`` drains them,
  which is what the ``compliance.batch`` task runs: per chunk of --chunk-events one transaction
  that locks and decodes the state, reads the chunk from SQL as records, applies the rules,
  inserts the new issues (with their anomaly links) and saves cursor and state. --rounds rounds,
  each from an empty ``compliance_state`` row and ``compliance_issues`` table; the median round
  is reported. One ``apply_pending`` call per chunk, timed: ``chunk_seconds_p50/p99`` over all
  rounds. The task's hand-over of new issues to the alert router (Redis) is not included.
  After each round, ``tick(now)`` (the beat's) releases what the reorder window still holds,
  untimed, so the round's issues are all of them.
- ``engine_only_events_per_second``: ``ComplianceEngine.apply`` alone on the same records in
  memory (read back once with ``events_between``), the same chunks, then ``flush``; median of
  --rounds. ``issues_match_engine_only``: both found exactly the same issue keys.

Target (the issue's): >= 20,000 events/s through compliance.batch. Reported, never asserted.
Progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.scratch import create_database, drop_database  # noqa: E402
from tradewatch.domain.compliance.engine import ComplianceEngine, EngineConfig  # noqa: E402
from tradewatch.domain.compliance.issue import ISSUE_CODES  # noqa: E402
from tradewatch.domain.compliance.policy import PolicyHistory, default_policy  # noqa: E402
from tradewatch.domain.events.jsonl import event_line  # noqa: E402
from tradewatch.domain.events.models import EventBase  # noqa: E402
from tradewatch.domain.events.timestamps import parse_rfc3339_ns  # noqa: E402

NS = 1_000_000_000
START_NS = parse_rfc3339_ns("2026-03-02T14:30:00Z")  # a Monday, 09:30 in New York (the policy's timezone)
TARGET_EVENTS_PER_SECOND = 20_000
INGEST_BATCH = 5_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- data


def simulated_events(count: int, rate: float, seed: int, policies: PolicyHistory) -> tuple[list[EventBase], dict]:
    """``count`` events: the simulator's stream with the injector's violations merged in, in
    time order; and what was injected (codes, skipped codes with reasons)."""
    from tradewatch.domain.simulation import SimulationConfig, TradingSimulator

    try:
        from tradewatch.domain.simulation.violations import ViolationInjector
    except ImportError:  # pragma: no cover - the injector not there: the plain stream
        ViolationInjector = None  # noqa: N806
    injected: list[EventBase] = []
    injection: dict[str, Any] = {"injected_codes": [], "skipped_codes": {}}
    if ViolationInjector is not None:
        # Spread over 90% of the stream's expected span, so every scenario lands inside it.
        span_ns = int(0.9 * count / rate * NS)
        injector = ViolationInjector(policies.in_force(START_NS), START_NS, span_ns, seed=seed)
        injected = injector.rest()
        injection = {"injected_codes": list(injector.injected_codes), "skipped_codes": dict(injector.skipped)}
    simulator = TradingSimulator(SimulationConfig(events_per_second=rate, seed=seed), start_ns=START_NS)
    stream: list[EventBase] = []
    while True:  # the simulator's events until, with the injected ones inside their span, there are ``count``
        stream += simulator.generate(max(count - len(stream) - len(injected), 1))
        inside = [event for event in injected if event.occurred_at <= stream[-1].occurred_at]
        if len(stream) + len(inside) >= count:
            break
    # Sorted stably (ties keep the simulator's event first), then cut to exactly ``count``.
    events = sorted(stream + inside, key=lambda event: event.occurred_at)[:count]
    kept = {id(event) for event in events}
    injection["injected_events"] = sum(1 for event in inside if id(event) in kept)
    return events, injection


def ingest(engine, events: list[EventBase]) -> float:
    """The events through ``AuditStore.ingest`` in batches, as the ingest task stores them; seconds."""
    from tradewatch.domain.events.parsing import parse_batch
    from tradewatch.storage.store import AuditStore

    texts = [event_line(event) for event in events]
    store = AuditStore(engine)
    started = time.perf_counter()
    for lo in range(0, len(texts), INGEST_BATCH):
        good, bad = parse_batch(texts[lo:lo + INGEST_BATCH])
        assert not bad, bad[0].reason
        store.ingest(good, batch_id=f"bench-{lo}", received_at=datetime.now(timezone.utc))
    return time.perf_counter() - started


# ----------------------------------------------------------------------------- measurements


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation, as numpy's default."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def reset(engine) -> None:
    from sqlalchemy import text

    with engine.begin() as conn:  # the run's own database: each round starts from nothing
        conn.execute(text("DELETE FROM compliance_issues"))
        conn.execute(text("DELETE FROM compliance_state"))


def store_round(engine, policies: PolicyHistory, config: EngineConfig, chunk: int, expected: int) -> dict[str, Any]:
    """One drain of the trail through ``apply_pending`` from an empty state (module docstring)."""
    from sqlalchemy import text

    from tradewatch.storage.compliance import ComplianceStore

    reset(engine)
    store = ComplianceStore(engine)
    rules = ComplianceEngine(policies, config)
    chunks: list[float] = []
    events = 0
    while True:
        started = time.perf_counter()
        run = store.apply_pending(rules, limit=chunk, max_events=chunk)
        elapsed = time.perf_counter() - started
        if run.events == 0:
            break
        chunks.append(elapsed)
        events += run.events
        if run.events < chunk:
            break
    assert events == expected, (events, expected)
    store.tick(rules, time.time_ns())  # untimed: what the reorder window still holds
    with engine.connect() as conn:
        keys = {row[0]: row[1] for row in conn.execute(text("SELECT key, code FROM compliance_issues"))}
    return {"seconds": sum(chunks), "chunks": chunks, "keys": keys}


def engine_round(records: list, policies: PolicyHistory, config: EngineConfig, chunk: int) -> dict[str, Any]:
    """``ComplianceEngine.apply`` alone on records in memory, the same chunks, then ``flush``."""
    rules = ComplianceEngine(policies, config)
    state = rules.new_state()
    issues = []
    started = time.perf_counter()
    for lo in range(0, len(records), chunk):
        issues += rules.apply(records[lo:lo + chunk], state).issues
    issues += rules.flush(state).issues
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "keys": {issue.key: issue.code for issue in issues}}


def measure(url: str, events: list[EventBase], policies: PolicyHistory, rounds: int, chunk: int) -> dict[str, Any]:
    from tradewatch.storage.compliance import ComplianceStore
    from tradewatch.storage.database import make_engine

    engine = make_engine(url, pool_size=2)
    try:
        ingest_seconds = ingest(engine, events)
        log(f"{len(events):,} events ingested in {ingest_seconds:.1f} s")
        config = EngineConfig()
        store_runs, engine_runs = [], []
        records = list(ComplianceStore(engine).events_between(0, 2**63 - 1))
        for round_number in range(1, rounds + 1):
            store_runs.append(store_round(engine, policies, config, chunk, len(events)))
            engine_runs.append(engine_round(records, policies, config, chunk))
            log(f"round {round_number}: apply_pending {len(events) / store_runs[-1]['seconds']:,.0f} events/s "
                f"({len(store_runs[-1]['chunks'])} chunks), engine alone "
                f"{len(events) / engine_runs[-1]['seconds']:,.0f} events/s; chunk seconds "
                + " ".join(f"{seconds:.2f}" for seconds in store_runs[-1]["chunks"]))
        with engine.connect() as conn:
            version = conn.exec_driver_sql("SHOW server_version").scalar()
    finally:
        engine.dispose()
    return {"ingest_seconds": ingest_seconds, "store_runs": store_runs, "engine_runs": engine_runs,
            "postgresql": version}


# ----------------------------------------------------------------------------- report


def summary(events: int, measured: dict[str, Any], injection: dict[str, Any], policies: PolicyHistory,
            args: argparse.Namespace) -> dict[str, Any]:
    store_runs, engine_runs = measured["store_runs"], measured["engine_runs"]
    rates = [round(events / run["seconds"]) for run in store_runs]
    engine_rates = [round(events / run["seconds"]) for run in engine_runs]
    chunks = [seconds for run in store_runs for seconds in run["chunks"]]
    keys = store_runs[0]["keys"]
    counts = Counter(keys.values())
    by_code = {code: counts.get(code, 0) for code in ISSUE_CODES}
    median = statistics.median(rates)
    policy = policies.in_force(START_NS)
    return {
        "benchmark": "compliance",
        "events": events,
        "events_per_second": round(median),
        "events_per_second_rounds": rates,
        "seconds_rounds": [round(run["seconds"], 3) for run in store_runs],
        "chunk_events": args.chunk_events,
        "chunk_seconds_p50": round(percentile(chunks, 0.5), 4),
        "chunk_seconds_p99": round(percentile(chunks, 0.99), 4),
        "engine_only_events_per_second": round(statistics.median(engine_rates)),
        "engine_only_events_per_second_rounds": engine_rates,
        "issues": len(keys),
        "issues_by_code": by_code,
        "issues_same_every_round": all(run["keys"] == keys for run in store_runs),
        "issues_match_engine_only": all(run["keys"] == keys for run in engine_runs),
        "injected_codes": injection["injected_codes"],
        "injected_events": injection["injected_events"],
        "injected_codes_not_found": [code for code in injection["injected_codes"] if by_code[code] == 0],
        "skipped_codes": injection["skipped_codes"],
        "policy_version": policy.version,
        "policy_hash": policy.content_hash,
        "simulated_events_per_second": args.rate,
        "seed": args.seed,
        "ingest_seconds": round(measured["ingest_seconds"], 2),
        "target_events_per_second": TARGET_EVENTS_PER_SECOND,
        "target_met": median >= TARGET_EVENTS_PER_SECOND,
        "postgresql": measured["postgresql"],
        "cpu_cores": os.cpu_count(),
    }


def load_policies(path: Path | None) -> PolicyHistory:
    if path is None:
        return PolicyHistory([default_policy()])
    return PolicyHistory.from_yaml_text(path.read_text(encoding="utf-8"), str(path))


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="events in the trail (default 200,000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each measurement; the median is reported")
    parser.add_argument("--rate", type=float, default=1000.0,
                        help="simulated events per second of trading (tradewatch simulate's default)")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--chunk-events", type=int, default=20_000,
                        help="events per apply_pending transaction (compliance.batch's default)")
    parser.add_argument("--policy", type=Path, default=None, help="policy YAML (default: the shipped default policy)")
    parser.add_argument("--database-url", default=os.environ.get("TRADEWATCH_TEST_POSTGRES_URL",
                                                                 "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="maintenance database the scratch database is created from (and dropped)")
    args = parser.parse_args(argv)
    if args.events < 1 or args.rounds < 1 or args.chunk_events < 1:
        parser.error("--events, --rounds and --chunk-events must be at least 1")

    from tradewatch.storage.database import make_engine

    policies = load_policies(args.policy)
    started = time.perf_counter()
    events, injection = simulated_events(args.events, args.rate, args.seed, policies)
    log(f"{len(events):,} events simulated in {time.perf_counter() - started:.1f} s "
        f"({injection['injected_events']} injected: {', '.join(injection['injected_codes']) or 'none'})")
    admin = make_engine(args.database_url, pool_size=1)
    name = f"tw_bench_compliance_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = create_database(admin, args.database_url, name)
    try:
        measured = measure(url, events, policies, args.rounds, args.chunk_events)
    finally:
        drop_database(admin, name)
    out(json.dumps(summary(len(events), measured, injection, policies, args)))


if __name__ == "__main__":
    main()
