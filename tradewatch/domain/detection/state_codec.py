"""Binary codec for detector state: ``encode(dict) -> bytes`` and ``decode(bytes) -> dict``.

The pipeline persists every detector's state with the trail cursor after each batch, so the
encoding must be exact (a restart continues as if it never stopped), compact (rolling windows
are written as raw little-endian float64 / int64 bytes, not JSON number lists) and fast.

Allowed values (``base.State``): None, bool, int, float (NaN, +-inf and -0.0 included, bit for
bit), str, lists, dicts with str keys, and 1-d numpy float64 / int64 arrays. numpy scalars are
accepted for convenience and decode as the Python value (``np.float64`` -> float, ``np.int64``
-> int, ``np.bool_`` -> bool). Anything else (a tuple, a set, a float32 array, a 2-d array,
a non-str dict key) raises :class:`StateCodecError` naming where it is in the state.

Layout::

    blob   = MAGIC (4 bytes "TWDS") | VERSION (1 byte) | CRC-32 of body (4 bytes, LE) | body
    value  = tag (1 byte) | payload
      N  None                      T / F  True / False
      i  int64 (8 bytes LE)        I      big int: length (u32) + signed LE bytes
      f  float64 (8 bytes LE)      s      str: length (u32) + UTF-8 bytes
      l  list: count (u32) + values
      d  dict: count (u32) + (str key: length (u32) + UTF-8 bytes, value) pairs
      a  float64 array: count (u32) + count * 8 bytes LE
      q  int64 array: count (u32) + count * 8 bytes LE

A blob that does not start with the magic, has another version, fails its checksum, is
truncated or has bytes left over raises :class:`StateCodecError`.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np

MAGIC = b"TWDS"
VERSION = 1
_HEADER = struct.Struct("<4sBI")  # magic, version, crc32(body)
_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MAX_COUNT = 2**32 - 1
_FLOAT_ARRAY = np.dtype("<f8")
_INT_ARRAY = np.dtype("<i8")


class StateCodecError(ValueError):
    """The state holds a value the codec does not encode, or a blob is not a valid state."""


# ------------------------------------------------------------------ encoding


def encode(state: dict[str, Any]) -> bytes:
    """The bytes of ``state`` (a dict with str keys; see the module docstring)."""
    if not isinstance(state, dict):
        raise StateCodecError(f"state: expected a dict, got {type(state).__name__}")
    parts: list[bytes] = []
    _encode_value(state, parts, "state")
    body = b"".join(parts)
    return _HEADER.pack(MAGIC, VERSION, zlib.crc32(body)) + body


def _encode_value(value: Any, out: list[bytes], where: str) -> None:
    # Order matters: bool is an int subclass, np.float64 a float subclass.
    if value is None:
        out.append(b"N")
    elif value is True or value is False or isinstance(value, np.bool_):
        out.append(b"T" if value else b"F")
    elif isinstance(value, (int, np.integer)):
        _encode_int(int(value), out)
    elif isinstance(value, (float, np.floating)) and not isinstance(value, np.ndarray):
        if isinstance(value, np.floating) and value.dtype.itemsize > 8:
            raise StateCodecError(f"{where}: {value.dtype} is not an allowed state type (use float64)")
        out.append(b"f" + _F64.pack(float(value)))
    elif isinstance(value, str):
        out.append(b"s")
        _encode_text(value, out, where)
    elif isinstance(value, list):
        out.append(b"l" + _count(len(value), where))
        for index, item in enumerate(value):
            _encode_value(item, out, f"{where}[{index}]")
    elif isinstance(value, dict):
        out.append(b"d" + _count(len(value), where))
        for key, item in value.items():
            if not isinstance(key, str):
                raise StateCodecError(f"{where}: dict key {key!r} is a {type(key).__name__}; state keys must be str")
            _encode_text(key, out, where)
            _encode_value(item, out, f"{where}[{key!r}]")
    elif isinstance(value, np.ndarray):
        _encode_array(value, out, where)
    else:
        hint = " (use a list)" if isinstance(value, (tuple, set, frozenset)) else ""
        raise StateCodecError(f"{where}: {type(value).__name__} is not an allowed state type{hint}; allowed: "
                              "None, bool, int, float, str, list, dict with str keys, 1-d float64/int64 array")


def _encode_int(value: int, out: list[bytes]) -> None:
    if _INT64_MIN <= value <= _INT64_MAX:
        out.append(b"i" + _I64.pack(value))
        return
    raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    out.append(b"I" + _U32.pack(len(raw)) + raw)


def _encode_text(text: str, out: list[bytes], where: str) -> None:
    # surrogatepass: any Python str round-trips, even one holding a lone surrogate.
    raw = text.encode("utf-8", "surrogatepass")
    out.append(_count(len(raw), where) + raw)


def _encode_array(array: np.ndarray, out: list[bytes], where: str) -> None:
    if array.ndim != 1:
        raise StateCodecError(f"{where}: a {array.ndim}-d array is not an allowed state type; arrays must be 1-d")
    if array.dtype.kind == "f" and array.dtype.itemsize == 8:
        tag, dtype = b"a", _FLOAT_ARRAY
    elif array.dtype.kind == "i" and array.dtype.itemsize == 8:
        tag, dtype = b"q", _INT_ARRAY
    else:
        raise StateCodecError(f"{where}: a {array.dtype} array is not an allowed state type; use float64 or int64")
    out.append(tag + _count(array.size, where) + np.ascontiguousarray(array, dtype=dtype).tobytes())


def _count(count: int, where: str) -> bytes:
    if count > _MAX_COUNT:
        raise StateCodecError(f"{where}: {count} items or bytes is over the codec's limit of {_MAX_COUNT}")
    return _U32.pack(count)


# ------------------------------------------------------------------ decoding


def decode(blob: bytes) -> dict[str, Any]:
    """The state encoded in ``blob`` by :func:`encode`; arrays come back writable."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise StateCodecError(f"detector state must be bytes, got {type(blob).__name__}")
    view = memoryview(blob).cast("B")
    if len(view) < _HEADER.size or bytes(view[:4]) != MAGIC:
        raise StateCodecError("not a tradewatch detector state (the blob does not start with the TWDS header)")
    _, version, checksum = _HEADER.unpack_from(view, 0)
    if version != VERSION:
        raise StateCodecError(f"detector state version {version} is not supported (this tradewatch reads version "
                              f"{VERSION})")
    body = view[_HEADER.size:]
    if zlib.crc32(body) != checksum:
        raise StateCodecError("detector state is corrupt (checksum mismatch)")
    reader = _Reader(body)
    try:
        state = reader.value()
    except (struct.error, IndexError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        if isinstance(exc, StateCodecError):
            raise
        raise StateCodecError(f"detector state is corrupt at byte {reader.position}: {exc}") from None
    if reader.position != len(body):
        raise StateCodecError(f"detector state is corrupt: {len(body) - reader.position} bytes after the end")
    if not isinstance(state, dict):
        raise StateCodecError(f"detector state is corrupt: the top level is a {type(state).__name__}, not a dict")
    return state


class _Reader:
    def __init__(self, body: memoryview) -> None:
        self.body = body
        self.position = 0

    def _take(self, size: int) -> memoryview:
        end = self.position + size
        if end > len(self.body):
            raise StateCodecError(f"detector state is corrupt: truncated at byte {self.position}")
        chunk = self.body[self.position:end]
        self.position = end
        return chunk

    def _u32(self) -> int:
        return _U32.unpack(self._take(4))[0]

    def _text(self) -> str:
        return bytes(self._take(self._u32())).decode("utf-8", "surrogatepass")

    def _array(self, dtype: np.dtype) -> np.ndarray:
        count = self._u32()
        # astype copies into a writable, native-order array (detectors update windows in place).
        return np.frombuffer(self._take(count * 8), dtype=dtype).astype(dtype.newbyteorder("="))

    def value(self) -> Any:
        tag = bytes(self._take(1))
        if tag == b"N":
            return None
        if tag == b"T":
            return True
        if tag == b"F":
            return False
        if tag == b"i":
            return _I64.unpack(self._take(8))[0]
        if tag == b"f":
            return _F64.unpack(self._take(8))[0]
        if tag == b"s":
            return self._text()
        if tag == b"l":
            return [self.value() for _ in range(self._u32())]
        if tag == b"d":
            result = {}
            for _ in range(self._u32()):
                key = self._text()
                result[key] = self.value()
            return result
        if tag == b"a":
            return self._array(_FLOAT_ARRAY)
        if tag == b"q":
            return self._array(_INT_ARRAY)
        if tag == b"I":
            return int.from_bytes(self._take(self._u32()), "little", signed=True)
        raise StateCodecError(f"detector state is corrupt: unknown tag {tag!r} at byte {self.position - 1}")
