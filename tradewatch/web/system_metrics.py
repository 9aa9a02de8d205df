"""Host metrics through psutil (the monitoring guide's ``SystemMonitor``, the three numbers its
alerts and dashboard use): ``system_cpu_percent`` (all cores, since the previous scrape: psutil
compares with its last call, primed at construction so the first scrape is not 0),
``system_memory_used_percent``, ``system_disk_used_percent`` (of the filesystem holding ``disk_path``).
Each call is a few /proc reads, no sleep."""

from __future__ import annotations

from typing import Iterator

import psutil
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from tradewatch.web.trading_metrics import family


class SystemCollector(Collector):
    def __init__(self, disk_path: str = "/") -> None:
        self.disk_path = disk_path
        psutil.cpu_percent(interval=None)

    def collect(self) -> Iterator[Metric]:
        for name, read in (
            ("system_cpu_percent", lambda: psutil.cpu_percent(interval=None)),
            ("system_memory_used_percent", lambda: psutil.virtual_memory().percent),
            ("system_disk_used_percent", lambda: psutil.disk_usage(self.disk_path).percent),
        ):
            try:
                value = float(read())
            except OSError:
                continue
            metric = family(name)
            metric.add_metric([], value)
            yield metric


__all__ = ["SystemCollector"]
