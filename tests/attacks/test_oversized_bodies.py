"""unsigned-body-read-whole: a signed route read a body of up to 512 MiB (8 threads at once)
before checking that it was signed at all. Now the server refuses a Content-Length above the
largest legitimate body before reading a byte, each route refuses a body above its own cap, and
a route that must be signed refuses a request without signature headers — before reading it."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx

from node.web import MAX_JSON
from tds.local import cluster


def raw_status(url: str, request: bytes) -> str:
    host, port = url.split("://", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=20) as conn:
        conn.sendall(request)
        return conn.recv(4096).decode("latin-1").split("\r\n", 1)[0]


def test_bodies_are_refused_before_they_are_read(tmp_path: Path) -> None:
    with cluster(tmp_path / "nodes") as live:
        telecom = live.add_connector("telecom", "Telecom", 85)
        # 100 MiB announced, nothing sent: the space (9 MiB at most) answers at once
        head = (
            b"POST /ledger/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 104857600\r\n\r\n"
        )
        assert raw_status(live.space.url, head) == "HTTP/1.1 413 Request Entity Too Large"
        with httpx.Client(trust_env=False, timeout=30) as http:
            unsigned = http.post(f"{telecom.url}/dsp/jobs", content=b"\0" * (4 << 20))
            assert unsigned.status_code == 401
            assert unsigned.json()["detail"] == "missing Signature and Signature-Input headers (RFC 9421)"
            big = http.post(f"{telecom.url}/dsp/negotiations/request", content=b"{" + b" " * MAX_JSON + b"}")
            assert big.status_code == 413
            assert big.json()["detail"] == (
                f"POST /dsp/negotiations/request takes at most {MAX_JSON} bytes, got {MAX_JSON + 2}"
            )
            assert big.headers["content-type"] == "application/problem+json"
