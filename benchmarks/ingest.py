"""Ingest benchmark: AuditClient.emit -> Redis -> audit.ingest_batch -> committed PostgreSQL rows,
against the naive baseline (one Celery task per event, each with its own INSERT and COMMIT),
both measured in this run on the same worker and PostgreSQL settings.

Needs Redis (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432); creates and drops its own
database and uses its own broker key prefix. Downstream fan-out (detectors, compliance) is off.

Phases:
  baseline    --baseline-events naive tasks sent as fast as the producer can; rate = events /
              (first send -> last commit).
  throughput  --events emitted as fast as possible through AuditClient; rate = events /
              (first emit -> last commit); --rounds times, the median reported, with each
              round's CPU time per event by component (client, worker, PostgreSQL, Redis).
  latency     --latency-seconds at an offered --rate (events/s, paced by sleeping between bursts
              of due events, at most ~2,000 wake-ups a second): emit() time on the caller
              thread (p50/p99, microseconds) and emit -> committed row (p50/p99, ms).
Prints one JSON object on its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.cpu_accounting import CpuAccounting, per_event_microseconds  # noqa: E402
from benchmarks.scratch import create_database, delete_keys, drop_database, stop_processes  # noqa: E402
from tradewatch.domain.events import MarketDataEvent, MarketDataPayload  # noqa: E402
from tradewatch.storage.database import make_engine  # noqa: E402

ADMIN_URL = os.environ.get("TRADEWATCH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TRADEWATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


PACING_SLEEP_NS = 500_000


def percentile(values, q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")


class Environment:
    def __init__(self, concurrency: int, pool: str) -> None:
        self.name = f"tw_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.admin = make_engine(ADMIN_URL, pool_size=1)
        self.database_url = create_database(self.admin, ADMIN_URL, self.name)
        self.engine = make_engine(self.database_url, pool_size=1)
        with self.engine.connect() as conn:
            self.synchronous_commit = conn.execute(text("SHOW synchronous_commit")).scalar_one()
        self.prefix = f"tw-bench-{uuid.uuid4().hex[:8]}:"
        self.dir = Path(os.environ.get("TMPDIR", "/tmp")) / self.name
        self.dir.mkdir(parents=True)
        self.log_path = self.dir / "worker.log"
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TRADEWATCH_DATABASE_URL": self.database_url,
            "TRADEWATCH_BROKER_URL": REDIS_URL,
            "TRADEWATCH_BROKER_KEY_PREFIX": self.prefix,
            "TRADEWATCH_INGEST_FANOUT": "false",
            "TRADEWATCH_STATE_DIR": str(self.dir / "state"),
        }
        self.concurrency = concurrency
        self.pool = pool
        self.workers: list[subprocess.Popen] = []

    def settings(self):
        from tradewatch.tasks.settings import Settings

        return Settings(database_url=self.database_url, broker_url=REDIS_URL, broker_key_prefix=self.prefix,
                        ingest_fanout=False, state_dir=self.dir / "state")

    def start_worker(self) -> None:
        """prefork: one worker, `concurrency` pool children. solo: `concurrency` worker
        processes each running tasks in-process (no hand-off of each message to a child)."""
        processes = 1 if self.pool == "prefork" else self.concurrency
        for index in range(processes):
            log = open(self.log_path, "ab")
            self.workers.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "benchmarks.naive_tasks", "worker", "-Q", "audit",
                 "--pool", self.pool, "--concurrency", str(self.concurrency if self.pool == "prefork" else 1),
                 "--without-heartbeat", "--without-mingle", "--without-gossip", "--loglevel", "WARNING",
                 "-n", f"bench-{os.getpid()}-{index}@%h"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
            ))
        from tradewatch.tasks.app import create_app

        control = create_app(self.settings()).control
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for worker in self.workers:
                if worker.poll() is not None:
                    raise SystemExit(f"worker exited: {self.log_path.read_text()[-3000:]}")
            if len(control.ping(timeout=0.5)) >= processes:
                return
        raise SystemExit("workers did not start")

    def stop_worker(self) -> None:
        stop_processes(self.workers)

    def rows(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one()

    def truncate(self) -> None:
        with self.engine.begin() as conn:
            # The benchmark's own throwaway database: lift the append-only guard to reset it.
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
            conn.execute(text("TRUNCATE audit_events, rejected_events"))
            conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))

    def wait_rows(self, expected: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.rows() < expected:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {self.rows()} of {expected} rows after {timeout}s")
            # count(*) scans the table: polling it often would take CPU from the pipeline being
            # measured. Completion times come from the worker's logs, not from this loop.
            time.sleep(0.5)

    def last_commit_ns_naive(self) -> int:
        # The naive task stamps received_at inside its own transaction, right before COMMIT.
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT (extract(epoch FROM max(received_at)) * 1e9)::bigint FROM audit_events")).scalar_one()

    def batch_commits(self) -> dict[int, int]:
        """received_at (µs since epoch) of each ingest batch -> its commit time (ns), from the worker's log."""
        from datetime import datetime

        commits = {}
        decoder = json.JSONDecoder()
        for line in self.log_path.read_text().splitlines():
            if '"ingest.batch"' not in line:
                continue
            try:  # two pool processes share the log file; take the first object of a line
                record, _ = decoder.raw_decode(line[line.index("{"):])
            except ValueError:
                continue
            if record.get("event") != "ingest.batch":
                continue
            received = datetime.fromisoformat(record["received_at"])
            commits[int(received.timestamp() * 1_000_000)] = record["committed_at_ns"]
        return commits

    def integrity(self, expected_ids: set[str]) -> dict[str, int]:
        with self.engine.connect() as conn:
            ids = [str(v) for v in conn.execute(text("SELECT event_id FROM audit_events")).scalars()]
        stored = set(ids)
        return {"lost": len(expected_ids - stored), "duplicated": len(ids) - len(stored)}

    def close(self) -> None:
        self.stop_worker()
        self.engine.dispose()
        drop_database(self.admin, self.name)
        delete_keys(REDIS_URL, self.prefix)


def make_events(count: int, start_ns: int) -> list[MarketDataEvent]:
    """Realistic small events: quotes across 50 symbols, nanosecond timestamps."""
    symbols = [f"SYM{i:02d}" for i in range(50)]
    return [
        MarketDataEvent(
            occurred_at=start_ns + i * 37_013, source="bench-engine", symbol=symbols[i % 50],
            payload=MarketDataPayload(bid=f"{100 + (i % 997) / 100:.2f}", ask=f"{100.02 + (i % 997) / 100:.2f}",
                                      last=f"{100.01 + (i % 997) / 100:.2f}", volume=100 + i % 400),
        )
        for i in range(count)
    ]


def run_baseline(env: Environment, count: int) -> dict:
    from tradewatch.tasks.app import create_app

    app = create_app(env.settings())
    texts = [e.model_dump_json() for e in make_events(count, time.time_ns())]
    start_ns = time.time_ns()
    with app.producer_or_acquire() as producer:
        for raw in texts:
            app.send_task("benchmark.naive_ingest_one", args=[raw], queue="audit", producer=producer)
    env.wait_rows(count, timeout=max(120, count / 50))
    elapsed = (env.last_commit_ns_naive() - start_ns) / 1e9
    return {"events": count, "seconds": round(elapsed, 3), "events_per_second": round(count / elapsed, 1)}


def run_throughput(env: Environment, count: int) -> dict:
    from tradewatch.tasks.client import AuditClient
    from tradewatch.tasks.app import create_app

    events = make_events(count, time.time_ns())
    client = AuditClient(app=create_app(env.settings()), spool_dir=env.dir / "spool", capacity=max(200_000, count),
                         batch_size=int(os.environ.get("BENCH_BATCH", 1000)))
    accounting = CpuAccounting([worker.pid for worker in env.workers])
    cpu_before = accounting.sample()
    start_ns = time.time_ns()
    for event in events:
        client.emit(event)
    client.flush(120)
    emit_done_ns = time.time_ns()
    env.wait_rows(count, timeout=180)
    cpu_after = accounting.sample()
    last_commit = max(env.batch_commits().values())
    elapsed = (last_commit - start_ns) / 1e9
    integrity = env.integrity({str(e.event_id) for e in events})
    stats = client.stats()
    client.close()
    return {
        "events": count, "seconds": round(elapsed, 3), "events_per_second": round(count / elapsed, 1),
        "emit_phase_seconds": round((emit_done_ns - start_ns) / 1e9, 3), "spooled_batches": stats["spooled_batches"],
        # Includes up to one row-count poll interval of idle time after the last commit.
        "cpu_microseconds_per_event": per_event_microseconds(cpu_before, cpu_after, count),
        **integrity,
    }


def run_latency(env: Environment, rate: int, seconds: float) -> dict:
    from tradewatch.tasks.client import AuditClient
    from tradewatch.tasks.app import create_app

    count = int(rate * seconds)
    templates = make_events(count, time.time_ns())
    client = AuditClient(app=create_app(env.settings()), spool_dir=env.dir / "spool-latency")
    emit_ns = np.zeros(count, dtype=np.int64)
    occurred = np.zeros(count, dtype=np.int64)
    interval_ns = 1e9 / rate
    flusher_clock = time.pthread_getcpuclockid(client._thread.ident)
    flusher_cpu_start = time.clock_gettime_ns(flusher_clock)
    perf = time.perf_counter_ns
    wall = time.time_ns
    ids = []
    start = perf()
    for i, template in enumerate(templates):
        target = start + int(i * interval_ns)
        now = perf()
        if target > now:
            # Not due yet: sleep like an idle engine, at least PACING_SLEEP_NS so the loop wakes at
            # most ~2,000 times a second. Events due meanwhile are then emitted back to back (bursts
            # of ~10 at 20,000/s). A busy-wait would keep one of the machine's two cores and the
            # GIL from the pipeline being measured.
            time.sleep(max(target - now, PACING_SLEEP_NS) / 1e9)
        event = template.model_copy(update={"occurred_at": wall()})
        t0 = perf()
        client.emit(event)
        emit_ns[i] = perf() - t0
        occurred[i] = event.occurred_at
        ids.append(str(event.event_id))
    achieved_rate = count / ((perf() - start) / 1e9)
    client.flush(60)
    flusher_cpu_ns = time.clock_gettime_ns(flusher_clock) - flusher_cpu_start
    batches = client.stats()["published_batches"]
    client.close()
    env.wait_rows(count, timeout=120)
    commits = env.batch_commits()
    with env.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT occurred_at_ns, (extract(epoch FROM received_at) * 1000000)::bigint FROM audit_events"
        )).all()
    e2e_ms = [(commits[received_us] - occurred_ns) / 1e6 for occurred_ns, received_us in rows if received_us in commits]
    integrity = env.integrity(set(ids))
    return {
        "offered_events_per_second": rate, "achieved_events_per_second": round(achieved_rate, 1), "events": count,
        "emit_microseconds_p50": round(percentile(emit_ns, 50) / 1000, 2),
        "emit_microseconds_p99": round(percentile(emit_ns, 99) / 1000, 2),
        "emit_microseconds_p999": round(percentile(emit_ns, 99.9) / 1000, 2),
        "emit_microseconds_max": round(float(emit_ns.max()) / 1000, 2),
        "end_to_end_latency_ms_p50": round(percentile(e2e_ms, 50), 2),
        "end_to_end_latency_ms_p99": round(percentile(e2e_ms, 99), 2),
        "end_to_end_samples": len(e2e_ms),
        "flusher_cpu_microseconds_per_batch": round(flusher_cpu_ns / 1000 / max(batches, 1), 1),
        "batches": batches,
        **integrity,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="events in the throughput phase")
    parser.add_argument("--baseline-events", type=int, default=5_000, help="events in the naive baseline")
    parser.add_argument("--rate", type=int, default=20_000, help="offered events/s in the latency phase")
    parser.add_argument("--latency-seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds; the median is reported")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes (same for both paths)")
    parser.add_argument("--pool", choices=["prefork", "solo"], default="solo",
                        help="solo (the shipped ingest deployment): N single-process workers; "
                             "prefork: one worker with N pool children")
    args = parser.parse_args()

    env = Environment(args.concurrency, args.pool)
    try:
        env.start_worker()
        baseline = run_baseline(env, args.baseline_events)
        print(json.dumps({"phase": "baseline", **baseline}), flush=True)
        env.truncate()
        rounds = []
        for _ in range(args.rounds):
            rounds.append(run_throughput(env, args.events))
            print(json.dumps({"phase": "throughput", **rounds[-1]}), flush=True)
            env.truncate()
        # The machine is shared and its speed drifts: the median round, not the best.
        throughput = sorted(rounds, key=lambda r: r["events_per_second"])[len(rounds) // 2]
        latency = run_latency(env, args.rate, args.latency_seconds)
        print(json.dumps({"phase": "latency", **latency}), flush=True)
        env.truncate()
        # The same at half the rate: end-to-end latency when the offered rate is within capacity.
        latency_half = run_latency(env, args.rate // 2, args.latency_seconds)
        print(json.dumps({"phase": "latency_half_rate", **latency_half}), flush=True)
    finally:
        env.close()

    result = {
        "benchmark": "ingest",
        "events": throughput["events"],
        "events_per_second": throughput["events_per_second"],
        "events_per_second_rounds": [r["events_per_second"] for r in rounds],
        "baseline_events_per_second": baseline["events_per_second"],
        "speedup": round(throughput["events_per_second"] / baseline["events_per_second"], 1),
        "emit_microseconds_p50": latency["emit_microseconds_p50"],
        "emit_microseconds_p99": latency["emit_microseconds_p99"],
        "emit_offered_events_per_second": args.rate,
        "end_to_end_latency_ms_p50": latency["end_to_end_latency_ms_p50"],
        "end_to_end_latency_ms_p99": latency["end_to_end_latency_ms_p99"],
        "end_to_end_offered_events_per_second": args.rate,
        "end_to_end_latency_ms_p50_at_half_rate": latency_half["end_to_end_latency_ms_p50"],
        "end_to_end_latency_ms_p99_at_half_rate": latency_half["end_to_end_latency_ms_p99"],
        "emit_microseconds_p99_at_half_rate": latency_half["emit_microseconds_p99"],
        "cpu_microseconds_per_event": throughput["cpu_microseconds_per_event"],
        "lost": sum(r["lost"] for r in rounds) + latency["lost"] + latency_half["lost"],
        "duplicated": sum(r["duplicated"] for r in rounds) + latency["duplicated"] + latency_half["duplicated"],
        "downstream_fanout": "off",
        "synchronous_commit": env.synchronous_commit,
        "worker_pool": f"{args.pool} x{args.concurrency}",
        "baseline": "one Celery task per event, each validating it and doing its own INSERT and COMMIT",
        "cpu_cores": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
