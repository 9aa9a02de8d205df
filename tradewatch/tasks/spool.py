"""A local durable spool for batches the broker could not take.

Append-only segment files of records ``[u32 length][u32 crc32][body]``, each appended with one
``write`` and ``fsync``ed before ``append`` returns. Records are replayed in the order they were
written; a segment is deleted once every record in it was handed back to the broker. A torn
last record (the engine died mid-write) fails its CRC and ends that segment: a record whose
write never completed was never acknowledged to anyone.

Replay is at least once: a crash between publishing a record and deleting its segment
replays it again, which the ingest path absorbs (ON CONFLICT on event_id, rejected_events on
(batch_id, position)).
"""

from __future__ import annotations

import fcntl
import os
import struct
import zlib
from pathlib import Path
from typing import Callable, Iterator

_HEADER = struct.Struct("<II")
_PREFIX = "spool-"
_SUFFIX = ".log"


class SpoolFullError(RuntimeError):
    """The spool reached its size limit; the batch was not written."""


class SpoolInUseError(RuntimeError):
    """Another live process owns this spool directory."""


class Spool:
    def __init__(self, directory: Path, *, segment_bytes: int = 64 << 20, max_bytes: int = 10 << 30) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        # One owner per directory: two processes appending to and deleting the same segments
        # could delete a record the other has just written. The lock dies with its process.
        self._lock = os.open(self.directory / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise SpoolInUseError(
                f"spool {self.directory} is in use by another process; give each engine process its own spool_dir"
            ) from None
        self.segment_bytes = segment_bytes
        self.max_bytes = max_bytes
        self._writer: int | None = None
        self._writer_index = -1
        self._writer_size = 0
        # Records of a segment already published by this process: a replay interrupted by the
        # broker going away again resumes where it stopped instead of starting the segment over.
        self._published: dict[str, int] = {}

    # Segments are numbered; a new writer always starts a fresh segment so that a torn tail
    # left by a crash is never appended to.
    def _segments(self) -> list[Path]:
        return sorted(self.directory.glob(f"{_PREFIX}*{_SUFFIX}"))

    @staticmethod
    def _index(path: Path) -> int:
        return int(path.name[len(_PREFIX) : -len(_SUFFIX)])

    def pending_bytes(self) -> int:
        return sum(p.stat().st_size for p in self._segments())

    def has_pending(self) -> bool:
        return bool(self._segments())

    def append(self, body: bytes) -> None:
        if self._writer is not None and self._writer_size >= self.segment_bytes:
            self._close_writer()
        if self._writer is None:
            if self.pending_bytes() + len(body) > self.max_bytes:
                raise SpoolFullError(f"spool {self.directory} holds more than {self.max_bytes} bytes")
            segments = self._segments()
            self._writer_index = (self._index(segments[-1]) + 1) if segments else 0
            path = self.directory / f"{_PREFIX}{self._writer_index:012d}{_SUFFIX}"
            self._writer = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
            self._writer_size = 0
            self._fsync_directory()
        record = _HEADER.pack(len(body), zlib.crc32(body)) + body
        os.write(self._writer, record)
        os.fsync(self._writer)
        self._writer_size += len(record)

    def _close_writer(self) -> None:
        if self._writer is not None:
            os.close(self._writer)
            self._writer = None

    def _fsync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @staticmethod
    def _records(path: Path) -> Iterator[bytes]:
        data = path.read_bytes()
        offset = 0
        while offset + _HEADER.size <= len(data):
            length, crc = _HEADER.unpack_from(data, offset)
            body = data[offset + _HEADER.size : offset + _HEADER.size + length]
            if len(body) != length or zlib.crc32(body) != crc:
                return  # torn tail of a crashed write
            yield body
            offset += _HEADER.size + length

    def replay(self, publish: Callable[[bytes], None]) -> int:
        """Hand every spooled record to ``publish`` in order; stop at the first exception.

        Returns how many records were published. A fully published segment is deleted.
        The segment being written is closed first so its records are replayed too.
        """
        self._close_writer()
        published = 0
        for path in self._segments():
            done = self._published.get(path.name, 0)
            for index, body in enumerate(self._records(path)):
                if index < done:
                    continue
                publish(body)  # raises when the broker is away again; the segment stays
                published += 1
                self._published[path.name] = index + 1
            path.unlink()
            self._published.pop(path.name, None)
            self._fsync_directory()
        return published

    def close(self) -> None:
        self._close_writer()
        if self._lock is not None:
            os.close(self._lock)  # releases the flock
            self._lock = None
