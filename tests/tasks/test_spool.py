"""The client's durable spool: order, torn tails, segments, resumed replay, size limit."""

from __future__ import annotations

import pytest

from tradewatch.tasks.spool import Spool, SpoolFullError


def test_replays_in_the_order_written_and_empties(tmp_path):
    spool = Spool(tmp_path)
    for i in range(5):
        spool.append(f"batch-{i}".encode())
    seen = []
    assert spool.replay(seen.append) == 5
    assert seen == [f"batch-{i}".encode() for i in range(5)]
    assert not spool.has_pending()


def test_records_survive_a_new_spool_object_as_after_a_restart(tmp_path):
    first = Spool(tmp_path)
    first.append(b"kept")
    first.close()
    seen = []
    Spool(tmp_path).replay(seen.append)
    assert seen == [b"kept"]


def test_a_torn_last_record_is_ignored(tmp_path):
    spool = Spool(tmp_path)
    spool.append(b"complete")
    spool.close()
    segment = next(tmp_path.glob("spool-*.log"))
    with open(segment, "ab") as handle:  # a crash in the middle of the next append
        handle.write(b"\x40\x00\x00\x00\x00\x00")
    seen = []
    Spool(tmp_path).replay(seen.append)
    assert seen == [b"complete"]


def test_segments_rotate_and_replay_across_them(tmp_path):
    spool = Spool(tmp_path, segment_bytes=64)
    for i in range(10):
        spool.append(b"x" * 40 + str(i).encode())
    assert len(list(tmp_path.glob("spool-*.log"))) > 1
    seen = []
    spool.replay(seen.append)
    assert [body[-1:] for body in seen] == [str(i).encode() for i in range(10)]


def test_an_interrupted_replay_resumes_where_it_stopped(tmp_path):
    spool = Spool(tmp_path)
    for i in range(4):
        spool.append(str(i).encode())
    delivered = []

    def flaky(body: bytes) -> None:
        if body == b"2" and b"2" not in attempts:
            attempts.append(body)
            raise ConnectionError("broker went away again")
        delivered.append(body)

    attempts: list[bytes] = []
    with pytest.raises(ConnectionError):
        spool.replay(flaky)
    assert spool.has_pending()
    spool.replay(flaky)
    assert delivered == [b"0", b"1", b"2", b"3"], "nothing replayed twice by the same process"
    assert not spool.has_pending()


def test_appends_after_a_replay_go_to_a_new_segment(tmp_path):
    spool = Spool(tmp_path)
    spool.append(b"a")
    spool.replay(lambda body: None)
    spool.append(b"b")
    seen = []
    spool.replay(seen.append)
    assert seen == [b"b"]


def test_the_size_limit_refuses_new_segments(tmp_path):
    spool = Spool(tmp_path, segment_bytes=10, max_bytes=30)
    spool.append(b"x" * 20)
    with pytest.raises(SpoolFullError):
        spool.append(b"y" * 20)


def test_one_owner_per_directory(tmp_path):
    from tradewatch.tasks.spool import SpoolInUseError

    first = Spool(tmp_path)
    with pytest.raises(SpoolInUseError, match="give each engine process its own spool_dir"):
        Spool(tmp_path)
    first.close()
    Spool(tmp_path).close()  # free again once the owner closed it
