"""state_codec: exact round trips, compact arrays, clear errors."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradewatch.domain.detection.state_codec import MAGIC, StateCodecError, decode, encode


def same(a, b) -> bool:
    """Exact equality: same types, floats bit for bit (NaN equals NaN, -0.0 differs from 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # beyond int64 too
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.lists(st.floats(allow_nan=True), max_size=8).map(lambda v: np.array(v, dtype=np.float64))
    | st.lists(st.integers(-(2**63), 2**63 - 1), max_size=8).map(lambda v: np.array(v, dtype=np.int64))
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(max_size=8), values, max_size=5))
def test_round_trip_is_exact(state):
    assert same(decode(encode(state)), state)


def test_special_floats_and_big_ints_survive():
    state = {"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf"), "negzero": -0.0,
             "big": 2**100, "small": -(2**70), "edge": 2**63 - 1}
    back = decode(encode(state))
    assert math.isnan(back["nan"])
    assert back["inf"] == math.inf and back["ninf"] == -math.inf
    assert math.copysign(1.0, back["negzero"]) == -1.0
    assert back["big"] == 2**100 and back["small"] == -(2**70) and back["edge"] == 2**63 - 1


def test_arrays_are_raw_bytes_and_come_back_writable():
    window = np.arange(1000, dtype=np.float64)
    blob = encode({"w": window})
    # header 9 + dict tag/count 5 + key 4+1 + array tag/count 5 + 8000 bytes of data
    assert len(blob) == 9 + 5 + 5 + 5 + 8000
    assert window.tobytes() in blob
    back = decode(blob)["w"]
    back[0] = 42.0  # detectors update windows in place
    assert back[0] == 42.0 and back.dtype == np.float64


def test_non_contiguous_and_big_endian_arrays_are_normalised():
    state = {"strided": np.arange(10, dtype=np.int64)[::2], "big_endian": np.array([1.5, -2.0], dtype=">f8")}
    back = decode(encode(state))
    assert back["strided"].tolist() == [0, 2, 4, 6, 8] and back["strided"].dtype == np.int64
    assert back["big_endian"].tolist() == [1.5, -2.0] and back["big_endian"].dtype == np.float64


def test_numpy_scalars_decode_as_python_values():
    back = decode(encode({"f": np.float64(2.5), "i": np.int64(7), "b": np.bool_(True)}))
    assert same(back, {"f": 2.5, "i": 7, "b": True})


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"a": (1, 2)}, "state['a']: tuple is not an allowed state type (use a list)"),
        ({"a": {"b": [1, {2}]}}, "state['a']['b'][1]: set is not an allowed state type (use a list)"),
        ({"a": {1: 2}}, "state['a']: dict key 1 is a int; state keys must be str"),
        ({"a": np.zeros(3, dtype=np.float32)}, "state['a']: a float32 array is not an allowed state type; use float64 or int64"),
        ({"a": np.zeros((2, 2))}, "state['a']: a 2-d array is not an allowed state type; arrays must be 1-d"),
        ({"a": b"raw"}, "state['a']: bytes is not an allowed state type; allowed:"),
    ],
)
def test_disallowed_values_name_where_they_are(state, message):
    with pytest.raises(StateCodecError) as caught:
        encode(state)
    assert str(caught.value).startswith(message)


def test_top_level_must_be_a_dict():
    with pytest.raises(StateCodecError, match="state: expected a dict, got list"):
        encode([1])  # type: ignore[arg-type]


def test_foreign_blob_is_rejected():
    with pytest.raises(StateCodecError, match="not a tradewatch detector state"):
        decode(b'{"json": "state"}')
    with pytest.raises(StateCodecError, match="not a tradewatch detector state"):
        decode(b"")
    with pytest.raises(StateCodecError, match="must be bytes, got str"):
        decode("TWDS")  # type: ignore[arg-type]


def test_other_version_is_rejected():
    blob = bytearray(encode({"a": 1}))
    blob[4] = 99
    with pytest.raises(StateCodecError, match="version 99 is not supported"):
        decode(bytes(blob))


def test_flipped_bit_fails_the_checksum():
    blob = bytearray(encode({"w": np.arange(4, dtype=np.float64)}))
    blob[-3] ^= 0x01
    with pytest.raises(StateCodecError, match="checksum mismatch"):
        decode(bytes(blob))


def _with_body(body: bytes) -> bytes:
    import zlib

    return MAGIC + bytes([1]) + struct.pack("<I", zlib.crc32(body)) + body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"d\x01\x00\x00\x00\x01\x00\x00\x00ai\x01", "truncated"),
        (b"d\x00\x00\x00\x00N", "1 bytes after the end"),
        (b"d\x01\x00\x00\x00\x01\x00\x00\x00aX", "unknown tag b'X'"),
        (b"l\x00\x00\x00\x00", "the top level is a list, not a dict"),
        (b"d\x01\x00\x00\x00\x01\x00\x00\x00\xff" + b"N", "corrupt at byte"),  # invalid UTF-8 key
    ],
)
def test_corrupt_bodies_are_rejected(body, message):
    with pytest.raises(StateCodecError, match="corrupt") as caught:
        decode(_with_body(body))
    assert message in str(caught.value)
