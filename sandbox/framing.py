"""Framed messages between a connector and the worker inside a sandbox.

A message is a JSON header frame followed by ``header["blobs"]`` binary frames; each frame is
a 4-byte big-endian length and that many bytes. Nothing is pickled: the header is JSON and
the blobs are opaque bytes the operation parses itself (protobuf for PSI).
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Sequence
from typing import Any, BinaryIO

from sandbox.errors import FrameError

MEDIA_TYPE = "application/vnd.tds.frames"  # framed messages between connectors too
_LEN = struct.Struct(">I")
MAX_HEADER = 1 << 20  # bytes: headers are small JSON objects


def encode(header: dict[str, Any], blobs: Sequence[bytes] = ()) -> bytes:
    head = json.dumps({**header, "blobs": len(blobs)}, separators=(",", ":")).encode()
    parts = [_LEN.pack(len(head)), head]
    for blob in blobs:
        parts += [_LEN.pack(len(blob)), blob]
    return b"".join(parts)


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) != size:
        got = 0 if data is None else len(data)
        raise FrameError(f"truncated frame: expected {size} bytes, got {got}")
    return data


def read(stream: BinaryIO, max_bytes: int) -> tuple[dict[str, Any], list[bytes]]:
    """Read one message; refuse one larger than ``max_bytes`` in total."""
    total = 0

    def frame(cap: int) -> bytes:
        nonlocal total
        (size,) = _LEN.unpack(_read_exact(stream, _LEN.size))
        total += size + _LEN.size
        if size > cap or total > max_bytes:
            raise FrameError(f"message exceeds the cap of {max_bytes} bytes")
        return _read_exact(stream, size)

    try:
        header = json.loads(frame(min(MAX_HEADER, max_bytes)))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FrameError(f"header frame is not JSON: {exc}") from exc
    count = header.get("blobs") if isinstance(header, dict) else None
    if not isinstance(count, int) or not 0 <= count <= 64:
        raise FrameError("header frame must be an object with 0–64 blobs")
    return header, [frame(max_bytes) for _ in range(count)]


def decode(data: bytes, max_bytes: int) -> tuple[dict[str, Any], list[bytes]]:
    stream = io.BytesIO(data)
    message = read(stream, max_bytes)
    if stream.read(1):
        raise FrameError("trailing bytes after the message")
    return message


def pack(parts: Sequence[bytes]) -> bytes:
    """Many byte strings as one blob, each a frame as above: for a message whose parts grow
    with the data (psi.sum's ciphertexts, one per 4 096 rows), beyond the 64 blobs of a message."""
    return b"".join(_LEN.pack(len(part)) + part for part in parts)


def unpack(data: bytes, max_parts: int) -> list[bytes]:
    """The parts of a :func:`pack` blob; FrameError for a truncated one or more than ``max_parts``."""
    stream, parts = io.BytesIO(data), list[bytes]()
    while stream.tell() < len(data):
        if len(parts) == max_parts:
            raise FrameError(f"a packed blob of more than {max_parts} parts")
        (size,) = _LEN.unpack(_read_exact(stream, _LEN.size))
        parts.append(_read_exact(stream, size))
    return parts
