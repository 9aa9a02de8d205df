"""Benchmark: the real-time dashboard under a simulated engine offering --rate (20,000) events/s
with --instruments (100) instruments: how far the published snapshot trails ingest, how long a
/metrics scrape takes, and what an incremental update costs per event against a rebuild from
scratch, all in one run.

Needs PostgreSQL (TRADEWATCH_TEST_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/
postgres: the maintenance database a scratch database is created from and dropped) and Redis
(TRADEWATCH_TEST_REDIS_URL, default redis://127.0.0.1:6379/0: a key prefix of the run's own,
deleted afterwards).

Data. ``TradingSimulator`` (configured at --rate events/s, --seed) with --instruments symbols
(copies of ``DEFAULT_SYMBOLS``' five kinds of instrument, renamed AAPL-00, MSFT-00, ...,
BTC-USD-19) spread round-robin over --sources (4) engines and three strategies. rate x
--duration events are generated (and serialised to the JSON lines an engine sends) BEFORE the
run: the engine is not what is measured, and generating live (~50,000 events/s of one core)
would take a quarter of this 2-core machine from the system under test. They are cut into
batches of rate x --batch-seconds (2,000) events, so the offered rate is exactly --rate events
per second of wall time (the simulator's own clock runs slightly differently; the events'
occurred_at start when generation started, some seconds before the run).

Processes, each started here in its own session and stopped by its id:

1. producer (``--role producer``): every --batch-seconds (0.1 s) the next batch goes through
   ``AuditStore.ingest_items`` (what the ``audit.ingest_batch`` task runs on a worker: JSON
   parse and validation, COPY, one commit; ``received_at`` stamped when the batch is taken, as
   the task does; the Celery/Redis hop is not included). A batch due while the previous one is
   still being stored starts as soon as it is done (a backlog); batches not started by the end
   of --duration are not ingested and are reported (``offered_events_per_second`` vs
   ``ingested_events_per_second``, ``events_not_ingested``, ``producer_backlog_seconds_max``).
2. dashboard (``--role dashboard``): what the beat and the dashboard pool run: every
   --tick-seconds (2 s) the task function itself, ``tradewatch.tasks.dashboard.snapshot()``
   (``DashboardStore.advance`` with the policy's aggregator, then the document published to
   ``<prefix>tradewatch:dashboard:latest`` in Redis, history row at most once a minute). A tick
   that overruns its slot makes the next start at once (the beat's message waits in the queue
   for one interval), ticks whose slot passed entirely are dropped (their message expires).
   After the producer stops, one more tick catches up.
3. web: ``python -m tradewatch.cli.main web`` (uvicorn, the real service) on a free loopback
   port; this process scrapes its /metrics every --scrape-seconds (0.2 s) over one keep-alive
   connection with ``Accept-Encoding: gzip``, as Prometheus does, and times each request to
   the last byte of the body.

Measured:

- ``snapshot_lag_seconds_p50/p99/max`` (the target's): per published snapshot, the age of the
  oldest event that was ingested (its batch committed) but is missing from it, at the worst
  moment, i.e. just before the next snapshot replaces it: ``written_at(next) -
  min(received_at of the batches committed before written_at(next) and not folded in)``, 0
  when there is none. A reader (a scrape, a Grafana panel) never sees a snapshot staler than
  that. Ages run from ``received_at`` (the trail's own receipt stamp, taken before the batch's
  COPY and commit, so the ingest's own few tens of ms count against the dashboard), and
  ``written_at`` is the ``written_at_ns`` of the published document. One value per
  publication interval while ingest runs; it is about the tick interval plus one tick's
  duration plus the trail's watermark when ticks keep up. Strictest reasonable choice: it
  counts the time between ticks, which the store's own lag does not.
- ``snapshot_lag_sampled_seconds_p50/p99``: the same age at evenly spaced instants (every
  10 ms) through the ingest window: what a reader at a random moment sees.
- ``store_lag_seconds_p50/p99``: ``DashboardRun.lag_seconds`` at the end of each tick (the
  trail's newest received_at minus the newest folded in; what ``tradewatch_snapshot_lag_seconds``
  exports): only how much the tick itself could not fold in.
- ``tick_seconds_p50/p99/max``: wall time of each ``snapshot()`` call, and its events.
- ``metrics_scrape_ms_p50/p99/max``: scrapes taken once the published snapshot has all
  instruments (the earlier ones, lighter, are counted apart); ``metrics_bytes`` the body's
  size (uncompressed), ``metrics_bytes_gzip`` on the wire. The script asserts that the last
  scrape carries the trading metrics: every instrument in ``trading_instrument_position``,
  ``trading_orders_total``, ``tradewatch_metrics_source_up{source="snapshot"} 1.0``.
  ``metrics_scrape_ms_p99_during_ticks`` / ``_between_ticks``: the scrapes that began while a
  dashboard tick ran (or up to 50 ms before) and the others, to see what a tick costs a scrape.
- ``cpu_seconds``: user + system CPU time of each component over the ingest window (producer,
  dashboard, web, this scraper, PostgreSQL, Redis, other): where the 2 cores went.
- Incremental vs rebuild (after the live window, in this process, on the records the run
  ingested, read back with the store's own SQL reader): at --points points spread over the
  trail (the k-th ends at k/points of it), one tick's worth of new events (rate x
  tick-seconds) is applied (a) incrementally: ``apply_records(new, state)`` on the state
  built up to there, then ``snapshot(state, now)`` (what each tick does besides SQL and the
  state's storage), and (b) from scratch: ``new_state()``, ``apply_records(all so far)``,
  ``snapshot``. --repeats timings of each (the incremental one on a fresh copy of the state
  each time). ``incremental_speedup = median(rebuild seconds) / median(incremental seconds)``
  over all timings; ``incremental_us_per_event`` = median of seconds / new events,
  ``rebuild_us_per_event`` = median of seconds / all events so far (the rebuild's cost per
  event it folds). ``incremental_with_state_codec_*`` adds what ``advance`` also does per tick
  with the state (``decode_state`` of the stored bytes, ``encode_state`` after), the price of
  being incremental across processes. The speedup grows with the trail's length (a rebuild
  refolds everything); the per-point ones are listed.

Targets (the issue's): snapshot lag p99 <= 5 s, scrape p99 <= 50 ms. Reported, never asserted.
Progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import os
import pickle
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ADMIN_URL = os.environ.get("TRADEWATCH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TRADEWATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NS = 1_000_000_000
TARGET_LAG_SECONDS = 5.0
TARGET_SCRAPE_MS = 50.0
SAMPLE_STEP_NS = 10_000_000  # snapshot_lag_sampled: every 10 ms


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) by linear interpolation, as numpy's default; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


# ----------------------------------------------------------------------------- data


def symbols(count: int):
    from tradewatch.domain.simulation.config import DEFAULT_SYMBOLS

    kinds = len(DEFAULT_SYMBOLS)
    return tuple(DEFAULT_SYMBOLS[i % kinds].model_copy(update={"symbol": f"{DEFAULT_SYMBOLS[i % kinds].symbol}-{i // kinds:02d}"})
                 for i in range(count))


def simulate(args: argparse.Namespace) -> list[list[str]]:
    """rate x duration events as JSON lines, in batches of rate x batch_seconds (module docstring)."""
    from tradewatch.domain.events.jsonl import event_line
    from tradewatch.domain.simulation import SimulationConfig, TradingSimulator

    config = SimulationConfig(events_per_second=args.rate, seed=args.seed, symbols=symbols(args.instruments),
                              sources=tuple(f"engine-{i + 1}" for i in range(args.sources)))
    simulator = TradingSimulator(config, start_ns=time.time_ns())
    total = int(round(args.rate * args.duration))
    events = simulator.generate(total)[:total]
    texts = [event_line(event) for event in events]
    size = max(1, int(round(args.rate * args.batch_seconds)))
    return [texts[lo:lo + size] for lo in range(0, len(texts), size)]


# ----------------------------------------------------------------------------- child processes


def wait_for_go(work: Path, role: str) -> int:
    (work / f"{role}.ready").write_text("ready")
    go = work / "go"
    deadline = time.monotonic() + 300
    while not go.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"{role}: no go signal")
        time.sleep(0.01)
    time.sleep(0.01)  # the file is written in one go, but be sure its content is there
    return int(go.read_text())


def sleep_until(t_ns: int) -> None:
    delay = (t_ns - time.time_ns()) / NS
    if delay > 0:
        time.sleep(delay)


def role_producer(args: argparse.Namespace) -> None:
    from tradewatch.storage.database import make_engine
    from tradewatch.storage.store import AuditStore

    work = Path(args.work_dir)
    with open(work / "batches.pkl", "rb") as handle:
        batches: list[list[str]] = pickle.load(handle)
    engine = make_engine(os.environ["TRADEWATCH_DATABASE_URL"], pool_size=1)
    store = AuditStore(engine)
    with engine.connect() as conn:  # connect before the run
        conn.exec_driver_sql("SELECT 1")
    start_ns = wait_for_go(work, "producer")
    end_ns = start_ns + int(args.duration * NS)
    step_ns = int(args.batch_seconds * NS)
    records = []
    for index, texts in enumerate(batches):
        due_ns = start_ns + index * step_ns
        if time.time_ns() >= end_ns:
            break  # not started within the window: not ingested (reported)
        sleep_until(due_ns)
        received_at = datetime.now(timezone.utc)
        started = time.perf_counter()
        result = store.ingest_items(texts, batch_id=f"bench-{index}", received_at=received_at)
        seconds = time.perf_counter() - started
        committed_ns = time.time_ns()
        assert result.inserted == len(texts), (result.inserted, len(texts))
        received_ns = (int(received_at.timestamp()) * 1_000_000 + received_at.microsecond) * 1000  # as stored (µs)
        records.append({"index": index, "events": len(texts), "due_ns": due_ns, "received_ns": received_ns,
                        "committed_ns": committed_ns, "seconds": seconds})
    engine.dispose()
    (work / "producer.json").write_text(json.dumps({"batches": records, "offered_batches": len(batches),
                                                    "offered_events": sum(map(len, batches))}))
    (work / "producer.done").write_text("done")


def role_dashboard(args: argparse.Namespace) -> None:
    import orjson

    from tradewatch.tasks import wiring
    from tradewatch.tasks.dashboard import latest_key, snapshot

    work = Path(args.work_dir)
    redis_client = wiring.state_redis()
    wiring.dashboard_store().follow_events(limit=1)  # connect before the run
    start_ns = wait_for_go(work, "dashboard")
    tick_ns = int(args.tick_seconds * NS)
    deadline_ns = start_ns + int((args.duration + 120) * NS)
    ticks = []
    slot = 0
    last = False
    while True:
        due_ns = start_ns + slot * tick_ns
        sleep_until(due_ns)
        producer_done = (work / "producer.done").exists()
        started_ns = time.time_ns()
        started = time.perf_counter()
        result = snapshot()
        seconds = time.perf_counter() - started
        raw = redis_client.get(latest_key())
        document = orjson.loads(raw) if raw else {}
        ticks.append({
            "slot": slot, "due_ns": due_ns, "started_ns": started_ns, "seconds": seconds,
            "events": result["events"], "chunks": result["chunks"], "skipped": result["skipped"],
            "caught_up": result["caught_up"], "published": result.get("published", False),
            "last_received_at_ns": result["last_received_at_ns"],
            "trail_last_received_at_ns": result["trail_last_received_at_ns"], "lag_seconds": result["lag_seconds"],
            "events_applied": result["events_applied"], "written_at_ns": document.get("written_at_ns"),
            "instruments": len((document.get("snapshot") or {}).get("instruments") or {}),
            "document_bytes": len(raw or b""),
        })
        if last or time.time_ns() > deadline_ns:
            break
        last = producer_done and result["caught_up"]  # one more tick after everything is folded in: done
        now_ns = time.time_ns()
        slot += 1
        while start_ns + (slot + 1) * tick_ns <= now_ns:  # a slot passed entirely: its message expired
            slot += 1
    (work / "dashboard.json").write_text(json.dumps({"ticks": ticks}))


# ----------------------------------------------------------------------------- the run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=open(log_path, "ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_ready(work: Path, processes: dict[str, subprocess.Popen], port: int, client) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                raise SystemExit(f"{name} exited ({process.returncode}): {(work / f'{name}.log').read_text()[-3000:]}")
        ready = all((work / f"{name}.ready").exists() for name in ("producer", "dashboard"))
        if ready:
            try:
                if client.get(f"http://127.0.0.1:{port}/live").status_code == 200:
                    return
            except Exception:  # noqa: BLE001 - not listening yet
                pass
        time.sleep(0.1)
    raise SystemExit("the processes did not get ready in 120 s")


def cpu_sample(pids: dict[str, int]) -> dict[tuple[int, float], tuple[str, float]]:
    import psutil

    by_pid = {pid: name for name, pid in pids.items()}
    found = {}
    for process in psutil.process_iter():
        try:
            if process.pid in by_pid:
                component = by_pid[process.pid]
            elif process.pid == os.getpid():
                component = "scraper"
            elif process.name().startswith("postgres"):
                component = "postgresql"
            elif process.name().startswith("redis-server"):
                component = "redis"
            else:
                component = "other"
            times = process.cpu_times()
            found[(process.pid, process.create_time())] = (component, times.user + times.system)
        except Exception:  # noqa: BLE001 - exited while we looked
            continue
    return found


def cpu_seconds(before, after) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, (component, cpu) in after.items():
        out[component] = out.get(component, 0.0) + cpu - before.get(key, (component, 0.0))[1]
    return {name: round(value, 2) for name, value in sorted(out.items())}


def scrape_loop(client, port: int, start_ns: int, end_ns: int, period: float, instruments: int) -> list[dict]:
    url = f"http://127.0.0.1:{port}/metrics"
    step_ns = int(period * NS)
    scrapes = []
    slot = 0
    while True:
        due_ns = start_ns + slot * step_ns
        if due_ns >= end_ns:
            break
        sleep_until(due_ns)
        at_ns = time.time_ns()
        started = time.perf_counter()
        response = client.get(url)
        body = response.content
        seconds = time.perf_counter() - started
        assert response.status_code == 200, response.status_code
        symbols_seen = body.count(b"trading_instrument_position{")
        scrapes.append({"at_ns": at_ns, "ms": seconds * 1000, "bytes": len(body),
                        "wire_bytes": response.num_bytes_downloaded, "gzip": response.headers.get("content-encoding") == "gzip",
                        "instrument_series": symbols_seen, "full": symbols_seen >= instruments})
        scrapes[-1]["body"] = body
        slot = max(slot + 1, (time.time_ns() - start_ns) // step_ns + 1)  # a late scrape skips the slots it overran
    return scrapes


def check_trading_metrics(body: bytes, instruments: int) -> None:
    text = body.decode("utf-8")
    lines = text.splitlines()
    positions = {line.split('symbol="', 1)[1].split('"', 1)[0] for line in lines
                 if line.startswith("trading_instrument_position{")}
    assert len(positions) == instruments, f"{len(positions)} instruments in trading_instrument_position, expected {instruments}"
    assert any(line.startswith("trading_orders_total{") for line in lines), "no trading_orders_total"
    assert any(line.startswith("trading_signals_total{") for line in lines), "no trading_signals_total"
    assert any(line.startswith("trading_order_latency_seconds_bucket") for line in lines), "no trading_order_latency_seconds"
    assert 'tradewatch_metrics_source_up{source="snapshot"} 1.0' in text, "the snapshot source is not up"


def staleness(batches: list[dict], publications: list[tuple[int, int | None]], window_end_ns: int) -> tuple[list[float], list[float]]:
    """(worst age per publication interval, ages sampled every 10 ms), seconds (module docstring).
    ``batches``: the producer's, each with ``received_ns`` and ``committed_ns``, stored one after
    the other (one producer: receipt order is commit order). ``publications``: (written_at_ns,
    newest received_at folded in, None for none) in publication order."""
    received = [b["received_ns"] for b in batches]

    def missing_age(t_ns: int, folded: int | None) -> float:
        # The oldest batch not folded in is the first received after ``folded``; if it was not
        # committed by t, no later one was either.
        index = 0 if folded is None else bisect.bisect_right(received, folded)
        if index == len(batches) or batches[index]["committed_ns"] > t_ns:
            return 0.0
        return (t_ns - received[index]) / NS

    worst = []
    for (written, folded), (next_written, _) in itertools.pairwise(publications):
        if written >= window_end_ns:
            break
        worst.append(missing_age(next_written, folded))
    sampled = []
    if publications:
        index = 0
        for t_ns in range(publications[0][0], min(window_end_ns, publications[-1][0]), SAMPLE_STEP_NS):
            while index + 1 < len(publications) and publications[index + 1][0] <= t_ns:
                index += 1
            sampled.append(missing_age(t_ns, publications[index][1]))
    return worst, sampled


def incremental_vs_rebuild(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Same run, same records (module docstring)."""
    from tradewatch.domain.compliance import default_policy
    from tradewatch.domain.dashboard.aggregator import RealtimeDashboardAggregator
    from tradewatch.storage.dashboard import DashboardStore, decode_state, encode_state
    from tradewatch.storage.database import make_engine

    engine = make_engine(url, pool_size=1)
    reader = DashboardStore(engine)
    records, cursor = [], None
    while True:
        chunk, cursor = reader.follow_events(cursor, limit=50_000)
        if not chunk:
            break
        records += chunk
    engine.dispose()
    aggregator = RealtimeDashboardAggregator(default_policy())
    total = len(records)
    new = max(1, min(int(round(args.rate * args.tick_seconds)), total // 2))
    ends = sorted({max(new, round(total * k / args.points)) for k in range(1, args.points + 1)})
    points = []
    state = aggregator.new_state()
    folded = 0
    for end in ends:
        start = end - new
        aggregator.apply_records(records[folded:start], state)  # untimed: the state up to this point
        folded = start
        now_ns = records[end - 1].occurred_at_ns
        stored = encode_state(state)
        incremental, with_codec, rebuild = [], [], []
        for _ in range(args.repeats):
            copy = decode_state(stored)
            t0 = time.perf_counter()
            aggregator.apply_records(records[start:end], copy)
            aggregator.snapshot(copy, now_ns).to_dict()
            incremental.append(time.perf_counter() - t0)

            t0 = time.perf_counter()
            copy = decode_state(stored)
            aggregator.apply_records(records[start:end], copy)
            encode_state(copy)
            aggregator.snapshot(copy, now_ns).to_dict()
            with_codec.append(time.perf_counter() - t0)

            t0 = time.perf_counter()
            fresh = aggregator.new_state()
            aggregator.apply_records(records[:end], fresh)
            aggregator.snapshot(fresh, now_ns).to_dict()
            rebuild.append(time.perf_counter() - t0)
        points.append({"events_so_far": end, "new_events": end - start, "incremental": incremental,
                       "with_codec": with_codec, "rebuild": rebuild, "state_bytes": len(stored)})
        log(f"point {end:,} events: incremental {statistics.median(incremental) * 1e3:.1f} ms "
            f"(+codec {statistics.median(with_codec) * 1e3:.1f} ms), rebuild {statistics.median(rebuild) * 1e3:.1f} ms")
    inc = [s for p in points for s in p["incremental"]]
    codec = [s for p in points for s in p["with_codec"]]
    reb = [s for p in points for s in p["rebuild"]]
    return {
        "records": total,
        "incremental_us_per_event": round(statistics.median(s / p["new_events"] for p in points for s in p["incremental"]) * 1e6, 3),
        "incremental_with_state_codec_us_per_event": round(
            statistics.median(s / p["new_events"] for p in points for s in p["with_codec"]) * 1e6, 3),
        "rebuild_us_per_event": round(statistics.median(s / p["events_so_far"] for p in points for s in p["rebuild"]) * 1e6, 3),
        "incremental_ms_p50": round(statistics.median(inc) * 1e3, 2),
        "incremental_with_state_codec_ms_p50": round(statistics.median(codec) * 1e3, 2),
        "rebuild_ms_p50": round(statistics.median(reb) * 1e3, 2),
        "incremental_speedup": round(statistics.median(reb) / statistics.median(inc), 2),
        "incremental_with_state_codec_speedup": round(statistics.median(reb) / statistics.median(codec), 2),
        "points": [{"events_so_far": p["events_so_far"], "new_events": p["new_events"],
                    "incremental_ms": round(statistics.median(p["incremental"]) * 1e3, 2),
                    "incremental_with_state_codec_ms": round(statistics.median(p["with_codec"]) * 1e3, 2),
                    "rebuild_ms": round(statistics.median(p["rebuild"]) * 1e3, 2),
                    "speedup": round(statistics.median(p["rebuild"]) / statistics.median(p["incremental"]), 2),
                    "state_bytes": p["state_bytes"]} for p in points],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from benchmarks.scratch import create_database, delete_keys, drop_database, stop_processes
    from tradewatch.storage.database import make_engine

    started = time.perf_counter()
    batches = simulate(args)
    events = sum(map(len, batches))
    log(f"{events:,} events simulated and serialised in {time.perf_counter() - started:.1f} s "
        f"({len(batches)} batches of {len(batches[0]):,})")

    work = Path(tempfile.mkdtemp(prefix="tw_bench_dashboard_"))
    with open(work / "batches.pkl", "wb") as handle:
        pickle.dump(batches, handle, protocol=pickle.HIGHEST_PROTOCOL)
    del batches
    name = f"tw_bench_dashboard_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    prefix = f"tw-bench-{uuid.uuid4().hex[:8]}:"
    admin = make_engine(ADMIN_URL, pool_size=1)
    url = create_database(admin, ADMIN_URL, name)
    processes: dict[str, subprocess.Popen] = {}
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TRADEWATCH_DATABASE_URL": url, "TRADEWATCH_BROKER_URL": REDIS_URL,
               "TRADEWATCH_BROKER_KEY_PREFIX": prefix, "TRADEWATCH_INGEST_FANOUT": "false",
               "TRADEWATCH_STATE_DIR": str(work / "state")}
        port = free_port()
        common = ["--work-dir", str(work), "--duration", str(args.duration), "--batch-seconds", str(args.batch_seconds),
                  "--tick-seconds", str(args.tick_seconds)]
        processes["web"] = start([sys.executable, "-m", "tradewatch.cli.main", "web", "--port", str(port)], env, work / "web.log")
        processes["producer"] = start([sys.executable, __file__, "--role", "producer", *common], env, work / "producer.log")
        processes["dashboard"] = start([sys.executable, __file__, "--role", "dashboard", *common], env, work / "dashboard.log")
        with httpx.Client(headers={"Accept-Encoding": "gzip"}, timeout=10) as client:
            wait_ready(work, processes, port, client)
            pids = {name: process.pid for name, process in processes.items()}
            start_ns = time.time_ns() + NS // 2
            (work / "go.tmp").write_text(str(start_ns))
            (work / "go.tmp").rename(work / "go")
            cpu_before = cpu_sample(pids)
            end_ns = start_ns + int(args.duration * NS)
            log(f"run: {args.duration:g} s at {args.rate:,.0f} events/s offered; scraping :{port}/metrics "
                f"every {args.scrape_seconds:g} s")
            scrapes = scrape_loop(client, port, start_ns, end_ns, args.scrape_seconds, args.instruments)
            cpu_after = cpu_sample(pids)
            for role in ("producer", "dashboard"):
                try:
                    processes[role].wait(timeout=args.duration + 180)
                except subprocess.TimeoutExpired:
                    raise SystemExit(f"{role} did not finish: {(work / f'{role}.log').read_text()[-3000:]}") from None
                if processes[role].returncode != 0:
                    raise SystemExit(f"{role} failed: {(work / f'{role}.log').read_text()[-3000:]}")
            # The trading metrics once everything is folded in.
            time.sleep(0.05)
            final = client.get(f"http://127.0.0.1:{port}/metrics")
            check_trading_metrics(final.content, args.instruments)
            check_trading_metrics(scrapes[-1]["body"], args.instruments)
        produced = json.loads((work / "producer.json").read_text())
        ticks = json.loads((work / "dashboard.json").read_text())["ticks"]
        log("live window done; incremental vs rebuild on the ingested records")
        comparison = incremental_vs_rebuild(url, args)
    finally:
        stop_processes(list(processes.values()), grace_seconds=10)
        drop_database(admin, name)
        delete_keys(REDIS_URL, prefix)
    return {"start_ns": start_ns, "end_ns": end_ns, "events_generated": events, "produced": produced, "ticks": ticks,
            "scrapes": scrapes, "comparison": comparison, "cpu_seconds": cpu_seconds(cpu_before, cpu_after),
            "work_dir": str(work)}


def summary(measured: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    start_ns = measured["start_ns"]
    batches = measured["produced"]["batches"]
    ticks = measured["ticks"]
    ingested = sum(b["events"] for b in batches)
    last_commit = max(b["committed_ns"] for b in batches)
    ingest_seconds = (last_commit - start_ns) / NS
    publications = [(t["written_at_ns"], t["last_received_at_ns"]) for t in ticks if t["published"] and t["written_at_ns"]]
    worst, sampled = staleness(batches, publications, last_commit)
    live = [t for t in ticks if t["started_ns"] < last_commit]
    tick_seconds = [t["seconds"] for t in live]
    store_lag = [t["lag_seconds"] for t in live if t["lag_seconds"] is not None]
    scrapes = measured["scrapes"]
    full = [s for s in scrapes if s["full"]]
    scrape_ms = [s["ms"] for s in full]
    ticking = [(t["started_ns"], t["started_ns"] + int(t["seconds"] * NS)) for t in ticks]
    during = [s["ms"] for s in full if any(lo - 50_000_000 <= s["at_ns"] <= hi for lo, hi in ticking)]
    outside = [s["ms"] for s in full if not any(lo - 50_000_000 <= s["at_ns"] <= hi for lo, hi in ticking)]
    comparison = measured["comparison"]
    lag_p99 = percentile(worst, 0.99)
    scrape_p99 = percentile(scrape_ms, 0.99)
    events_applied = ticks[-1]["events_applied"] if ticks else 0
    result = {
        "benchmark": "dashboard",
        "offered_events_per_second": args.rate,
        "ingested_events_per_second": round(ingested / ingest_seconds, 1),
        "events": ingested,
        "events_offered": measured["produced"]["offered_events"],
        "events_not_ingested": measured["produced"]["offered_events"] - ingested,
        "events_folded_in": events_applied,
        "instruments": args.instruments,
        "sources": args.sources,
        "duration_seconds": args.duration,
        "ingest_batch_events": batches[0]["events"] if batches else 0,
        "ingest_batch_seconds_p50": rounded(percentile([b["seconds"] for b in batches], 0.5), 4),
        "ingest_batch_seconds_p99": rounded(percentile([b["seconds"] for b in batches], 0.99), 4),
        "producer_backlog_seconds_max": round(max((b["received_ns"] - b["due_ns"]) / NS for b in batches), 3),
        "snapshot_lag_seconds_p50": rounded(percentile(worst, 0.5), 3),
        "snapshot_lag_seconds_p99": rounded(lag_p99, 3),
        "snapshot_lag_seconds_max": rounded(max(worst) if worst else None, 3),
        "snapshot_lag_intervals": len(worst),
        "snapshot_lag_sampled_seconds_p50": rounded(percentile(sampled, 0.5), 3),
        "snapshot_lag_sampled_seconds_p99": rounded(percentile(sampled, 0.99), 3),
        "store_lag_seconds_p50": rounded(percentile(store_lag, 0.5), 3),
        "store_lag_seconds_p99": rounded(percentile(store_lag, 0.99), 3),
        "tick_seconds_p50": rounded(percentile(tick_seconds, 0.5), 3),
        "tick_seconds_p99": rounded(percentile(tick_seconds, 0.99), 3),
        "tick_seconds_max": rounded(max(tick_seconds) if tick_seconds else None, 3),
        "tick_events_p50": percentile([t["events"] for t in live], 0.5),
        "ticks": len(live),
        "ticks_skipped": sum(1 for t in ticks if t["skipped"]),
        "tick_slots_dropped": (ticks[-1]["slot"] + 1 - len(ticks)) if ticks else 0,
        "snapshot_document_bytes": ticks[-1]["document_bytes"] if ticks else 0,
        "metrics_scrape_ms_p50": rounded(percentile(scrape_ms, 0.5), 2),
        "metrics_scrape_ms_p99": rounded(scrape_p99, 2),
        "metrics_scrape_ms_max": rounded(max(scrape_ms) if scrape_ms else None, 2),
        "metrics_scrapes": len(full),
        # Scrapes that began while a tick ran (or up to 50 ms before it began) and the others.
        "metrics_scrape_ms_p99_during_ticks": rounded(percentile(during, 0.99), 2),
        "metrics_scrape_ms_p99_between_ticks": rounded(percentile(outside, 0.99), 2),
        "metrics_scrapes_during_ticks": len(during),
        "metrics_scrapes_before_full_snapshot": len(scrapes) - len(full),
        "metrics_bytes": full[-1]["bytes"] if full else None,
        "metrics_bytes_gzip": full[-1]["wire_bytes"] if full and full[-1]["gzip"] else None,
        "incremental_us_per_event": comparison["incremental_us_per_event"],
        "rebuild_us_per_event": comparison["rebuild_us_per_event"],
        "incremental_speedup": comparison["incremental_speedup"],
        "incremental_with_state_codec_us_per_event": comparison["incremental_with_state_codec_us_per_event"],
        "incremental_with_state_codec_speedup": comparison["incremental_with_state_codec_speedup"],
        "incremental_ms_p50": comparison["incremental_ms_p50"],
        "incremental_with_state_codec_ms_p50": comparison["incremental_with_state_codec_ms_p50"],
        "rebuild_ms_p50": comparison["rebuild_ms_p50"],
        "incremental_points": comparison["points"],
        "targets": {
            "snapshot_lag_p99_at_most_5_s": lag_p99 is not None and lag_p99 <= TARGET_LAG_SECONDS,
            "metrics_scrape_p99_at_most_50_ms": scrape_p99 is not None and scrape_p99 <= TARGET_SCRAPE_MS,
        },
        "cpu_seconds": measured["cpu_seconds"],
        "tick_interval_seconds": args.tick_seconds,
        "scrape_interval_seconds": args.scrape_seconds,
        "seed": args.seed,
        "cpu_cores": os.cpu_count(),
    }
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of offered load (default 30)")
    parser.add_argument("--rate", type=float, default=20_000.0, help="events/s the simulated engine offers (default 20,000)")
    parser.add_argument("--instruments", type=int, default=100, help="instruments (default 100)")
    parser.add_argument("--sources", type=int, default=4, help="engines the instruments are spread over (default 4)")
    parser.add_argument("--batch-seconds", type=float, default=0.1, help="the producer ingests a batch this often")
    parser.add_argument("--tick-seconds", type=float, default=2.0, help="dashboard.snapshot period (the beat's, 2 s)")
    parser.add_argument("--scrape-seconds", type=float, default=0.2, help="/metrics is scraped this often")
    parser.add_argument("--points", type=int, default=5, help="points of the incremental vs rebuild comparison")
    parser.add_argument("--repeats", type=int, default=3, help="timings of each at each point")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--role", choices=["producer", "dashboard"], help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "producer":
        return role_producer(args)
    if args.role == "dashboard":
        return role_dashboard(args)
    if min(args.duration, args.rate, args.batch_seconds, args.tick_seconds, args.scrape_seconds) <= 0 \
            or args.instruments < 1 or args.sources < 1 or args.points < 1 or args.repeats < 1:
        parser.error("durations, rates and counts must be positive")
    if args.rate * args.batch_seconds < 1:
        parser.error("--rate x --batch-seconds must be at least one event")
    started = time.perf_counter()
    measured = run(args)
    result = summary(measured, args)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    import shutil

    shutil.rmtree(measured["work_dir"], ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
