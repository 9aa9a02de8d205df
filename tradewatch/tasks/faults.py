"""Fault injection for the crash tests (off unless TRADEWATCH_FAULT_POINT is set).

``checkpoint(name)``: when the configured fault point is ``name`` and it has not fired yet,
it writes ``<fault_dir>/fired`` (containing this process's pid) and blocks, so a test can kill
the worker exactly there. It fires once: a restarted worker with the same settings passes.
"""

from __future__ import annotations

import os
import time

from tradewatch.tasks.settings import get_settings


def checkpoint(name: str) -> None:
    settings = get_settings()
    if settings.fault_point != name:
        return
    marker = settings.fault_dir / "fired"
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, str(os.getpid()).encode())
    os.fsync(fd)
    os.close(fd)
    while True:  # Blocks until the test kills this process.
        time.sleep(1)
