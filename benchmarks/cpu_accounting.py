"""CPU accounting for the ingest benchmark: where each event's CPU time goes, by component.

Every process on the machine is put in one bucket (the benchmark itself, which hosts the engine
client; the Celery worker main processes, which take messages off Redis and, under prefork, hand
them to their pool processes; the pool processes; PostgreSQL; Redis; everything else) and its user + system CPU time
read before and after a phase. On a shared 2-core machine the sum per event is the capacity
limit: 2 cores / (CPU µs per event) is the most events per second the machine can ingest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    # children_* counts exited children (pool processes restarted meanwhile, short-lived tools).
    return times.user + times.system


@dataclass
class CpuSample:
    """CPU seconds per process, keyed by (pid, start time) so a reused pid is a new process."""

    by_process: dict[tuple[int, float], tuple[str, float]]


class CpuAccounting:
    """Buckets processes into components; ``sample()`` reads every process's CPU seconds."""

    def __init__(self, worker_pids: list[int]) -> None:
        self.worker_pids = set(worker_pids)
        self.own_pid = os.getpid()

    def _component(self, process: psutil.Process) -> str:
        if process.pid == self.own_pid:
            return "client"
        if process.pid in self.worker_pids:
            return "worker_main"
        if self.worker_pids.intersection(p.pid for p in process.parents()):
            return "worker_pool"
        name = process.name()
        if name.startswith("postgres"):
            return "postgresql"
        if name.startswith("redis-server"):
            return "redis"
        return "other"

    def sample(self) -> CpuSample:
        found = {}
        for process in psutil.process_iter():
            try:
                found[(process.pid, process.create_time())] = (self._component(process), _cpu_seconds(process))
            except psutil.Error:
                continue  # exited while we looked
        return CpuSample(found)


COMPONENTS = ("client", "worker_main", "worker_pool", "postgresql", "redis", "other")


def per_event_microseconds(before: CpuSample, after: CpuSample, events: int) -> dict[str, float]:
    """CPU µs per event by component, and their total. Processes alive at the end count from
    the start (or from their birth); the CPU of processes that exited in between is not seen."""
    seconds = dict.fromkeys(COMPONENTS, 0.0)
    for key, (component, cpu) in after.by_process.items():
        seconds[component] += cpu - before.by_process.get(key, (component, 0.0))[1]
    result = {name: round(value * 1e6 / events, 1) for name, value in seconds.items()}
    result["total"] = round(sum(result.values()), 1)
    return result
