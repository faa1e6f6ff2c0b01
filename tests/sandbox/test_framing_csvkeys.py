import io
from pathlib import Path

import pytest

from sandbox import framing
from sandbox.errors import FrameError, WorkerFailed
from sandbox.ops.csvkeys import normalise_key, read_keys
from tests.sandbox.conftest import write


def test_frames_round_trip() -> None:
    data = framing.encode({"op": "x", "n": 1}, [b"abc", b""])
    assert framing.decode(data, 1 << 20) == ({"op": "x", "n": 1, "blobs": 2}, [b"abc", b""])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00", "truncated frame"),
        (b'\x00\x00\x00\x05{"a"', "truncated frame: expected 5 bytes, got 4"),
        (b"\x00\x00\x00\x03abc", "header frame is not JSON"),
        (b"\x00\x00\x00\x02[]", "header frame must be an object"),
        (framing.encode({"op": "x"}, [b"a" * 100]), "exceeds the cap of 64 bytes"),
        (framing.encode({"op": "x"}) + b"!", "trailing bytes"),
    ],
)
def test_bad_frames(data: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        framing.decode(data, 64)


def test_stream_read_stops_at_one_message() -> None:
    stream = io.BytesIO(framing.encode({"a": 1}) + framing.encode({"b": 2}))
    assert framing.read(stream, 1 << 10)[0] == {"a": 1, "blobs": 0}
    assert framing.read(stream, 1 << 10)[0] == {"b": 2, "blobs": 0}


def test_packed_parts_round_trip_and_bad_packs_are_refused() -> None:
    parts = [b"", b"x", bytes(range(256)) * 3]
    assert framing.unpack(framing.pack(parts), 3) == parts
    assert framing.unpack(b"", 0) == []
    with pytest.raises(FrameError, match="a packed blob of more than 2 parts"):
        framing.unpack(framing.pack(parts), 2)
    with pytest.raises(FrameError, match="truncated frame: expected 768 bytes, got 767"):
        framing.unpack(framing.pack(parts)[:-1], 3)
    with pytest.raises(FrameError, match="truncated frame: expected 4 bytes, got 2"):
        framing.unpack(framing.pack(parts) + b"\x00\x00", 4)


def test_key_normalisation() -> None:
    # NFC: "e" + combining acute (U+0301) equals the precomposed "é"
    assert normalise_key("  cafe\u0301\t") == "caf\u00e9"


def test_read_keys_trims_normalises_dedupes_and_skips_empty(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "id,k\n1, 138 \n2,138\n3,\n4,cafe\u0301\n5,caf\u00e9\n6,139\n")
    assert read_keys(path, "k") == ["138", "caf\u00e9", "139"]


def test_header_names_are_trimmed_and_bom_ignored(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeff id , k \n1,x\n".encode())
    assert read_keys(path, "k") == ["x"]


@pytest.mark.parametrize(
    ("content", "column", "message"),
    [
        (b"", "k", "empty file; expected a header row"),
        (b"a,b\n1,2\n", "k", r"no column 'k'; the header has \['a', 'b'\]"),
        (b"k,b\n1,2\n3\n", "k", "line 3 has 1 fields, the header has 2"),
        (b'k,b\n"1,2\n', "k", "malformed CSV at line"),
        (b"k\n\xff\xfe\n", "k", r"not UTF-8 text \(byte"),
    ],
)
def test_bad_csv(tmp_path: Path, content: bytes, column: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(WorkerFailed, match=message):
        read_keys(path, column)
