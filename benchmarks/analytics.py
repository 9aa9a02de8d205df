"""Benchmark: the post-trade analytics report on a year of fills, against a per-trade loop.

1. Generate ``--fills`` synthetic fills (benchmarks/analytics_data.py: 50 instruments, one year,
   about fills/4 round trips) and label the quotes' regimes once (input to both sides).
2. The vectorised report (round trips, performance, trade statistics, attribution, slippage,
   execution quality) on all of it, ``--rounds`` times; the median is reported. It runs its
   two independent halves on two threads (``build_report(threads=2)``, the default); the same
   report on one thread is timed too (``seconds_one_thread``, ``speedup_one_thread``). The
   complete report (also regime performance and signal quality, regimes labelled inside) is
   timed as well.
3. The straightforward per-trade loop (benchmarks/naive_analytics) on the first
   ``--baseline-fills`` fills, ``--rounds`` times (median); the vectorised report on the same
   subset, on one thread and on two, must give the same results (asserted, relative tolerance
   1e-9). The loop's time is scaled to the full size linearly (it is linear time) and
   compared: speedup = scaled loop seconds / vectorised seconds.

Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.analytics_data import generate, subset  # noqa: E402
from benchmarks.naive_analytics.report import comparable, naive_report  # noqa: E402
from tradewatch.domain.analytics.prices import PriceBook  # noqa: E402
from tradewatch.domain.analytics.regimes import RegimeAnalyzer  # noqa: E402
from tradewatch.domain.analytics.report import AnalyticsConfig, build_report  # noqa: E402
from tradewatch.domain.analytics.schema import QUOTES, prepare  # noqa: E402

CORE = ("performance", "trades", "attribution", "slippage", "execution")


# Fixed explanatory text, not results.
TEXT_KEYS = {"factor_method", "definitions"}


def assert_same(a, b, path: str = "report") -> None:
    """Equal up to float rounding (rtol 1e-9, atol 1e-6 for sums near zero); text keys aside."""
    if isinstance(a, pd.DataFrame) or isinstance(b, pd.DataFrame):
        assert isinstance(a, pd.DataFrame) and isinstance(b, pd.DataFrame), f"{path}: {type(a)} vs {type(b)}"
        assert list(a.columns) == list(b.columns), f"{path}: columns {list(a.columns)} vs {list(b.columns)}"
        assert len(a) == len(b), f"{path}: {len(a)} rows vs {len(b)}"
        for column in a.columns:
            assert_same(a[column].tolist(), b[column].tolist(), f"{path}.{column}")
        return
    if isinstance(a, dict):
        a = {k: v for k, v in a.items() if k not in TEXT_KEYS}
        b = {k: v for k, v in b.items() if k not in TEXT_KEYS} if isinstance(b, dict) else b
        assert isinstance(b, dict) and set(a) == set(b), f"{path}: keys {sorted(a)} vs {sorted(b) if isinstance(b, dict) else b}"
        for key in a:
            assert_same(a[key], b[key], f"{path}.{key}")
        return
    if isinstance(a, list | tuple):
        assert len(a) == len(b), f"{path}: length {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
        return
    if isinstance(a, float | int | np.number) and isinstance(b, float | int | np.number) and not isinstance(a, bool):
        x, y = float(a), float(b)
        if math.isnan(x) or math.isnan(y):
            assert math.isnan(x) and math.isnan(y), f"{path}: {a} vs {b}"
        else:
            assert x == y or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-6), f"{path}: {a} vs {b}"
        return
    if pd.isna(a) if not isinstance(a, list | dict | str) else False:
        assert pd.isna(b), f"{path}: {a} vs {b}"
        return
    assert a == b, f"{path}: {a!r} vs {b!r}"


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fills", type=int, default=1_000_000)
    parser.add_argument("--baseline-fills", type=int, default=50_000)
    parser.add_argument("--instruments", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    config = AnalyticsConfig(capital=50_000_000, timezone="America/New_York")
    data = generate(args.fills, instruments=args.instruments)
    labels = RegimeAnalyzer().labels(PriceBook(prepare(data.quotes, QUOTES).frame))

    core_seconds = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        report = build_report(data, config, regime_labels=labels, include=CORE)
        core_seconds.append(time.perf_counter() - started)
    one_thread_seconds = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        build_report(data, config, regime_labels=labels, include=CORE, threads=1)
        one_thread_seconds.append(time.perf_counter() - started)
    full_seconds = []
    for _ in range(max(1, args.rounds - 1)):
        started = time.perf_counter()
        full = build_report(data, config)
        full_seconds.append(time.perf_counter() - started)

    small = subset(data, min(args.baseline_fills, args.fills))
    naive_rounds = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        naive = naive_report(small, config, labels)
        naive_rounds.append(time.perf_counter() - started)
    naive_seconds = statistics.median(naive_rounds)
    vectorised_small = build_report(small, config, regime_labels=labels, include=CORE)
    assert_same(comparable(vectorised_small), naive)
    assert_same(comparable(build_report(small, config, regime_labels=labels, include=CORE, threads=1)), naive)

    seconds = statistics.median(core_seconds)
    scale = len(data.fills) / len(small.fills)
    result = {
        "benchmark": "analytics",
        "fills": len(data.fills),
        "round_trips": report.sections["summary"]["round_trips"],
        "orders": len(data.orders),
        "instruments": args.instruments,
        "seconds": round(seconds, 3),
        "seconds_rounds": [round(s, 3) for s in core_seconds],
        "fills_per_second": round(len(data.fills) / seconds),
        "seconds_one_thread": round(statistics.median(one_thread_seconds), 3),
        "full_report_seconds": round(statistics.median(full_seconds), 3),
        "full_report_sections": list(full.sections),
        "baseline_fills": len(small.fills),
        "baseline_seconds": round(naive_seconds, 3),
        "baseline_seconds_rounds": [round(s, 3) for s in naive_rounds],
        "baseline_seconds_scaled": round(naive_seconds * scale, 3),
        "speedup": round(naive_seconds * scale / seconds, 1),
        "speedup_one_thread": round(naive_seconds * scale / statistics.median(one_thread_seconds), 1),
        "results_equal_on_baseline_subset": True,
        "cpu_cores": __import__("os").cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
