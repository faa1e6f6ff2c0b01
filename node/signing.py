"""Signed HTTP between nodes: verifying incoming requests in Flask, signing outgoing ones.

Incoming: RFC 9421 signature, Content-Digest, ``created`` within ±window of one reference
time, and a single-use nonce recorded in the node's database before the handler runs. The
target URI is rebuilt from the raw request line parts so it matches what the sender signed.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
from flask import request
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from contracts import httpsig
from contracts.errors import RequestSignatureError
from contracts.keys import SigningKey
from node.db import Database
from node.egress import GuardedBackend, GuardedTransport
from node.models import utcnow
from node.problems import Problem

WINDOW = 300  # seconds a signature's created time may differ from the receiver's clock


def target_uri() -> str:
    path = quote(request.path, safe="/:@!$&'()*+,;=-._~%")
    query = request.environ.get("QUERY_STRING", "")
    return f"{request.scheme}://{request.host}{path}" + (f"?{query}" if query else "")


class NonceStore:
    """The nonces of accepted requests, in the node's database (so a restart does not reopen
    the replay window). Rows older than the signature window can never match a fresh request
    and are pruned, at most once a minute."""

    PRUNE_EVERY = 60.0  # seconds

    def __init__(self, db: Database, model: Any) -> None:
        self.db, self.model = db, model
        self._pruned_at = 0.0
        self._lock = threading.Lock()

    def remember(self, key_id: str, nonce: str, now: dt.datetime) -> bool:
        """Record a nonce; False if it was seen before."""
        try:
            with self.db.transaction() as session:
                session.add(self.model(key_id=key_id, nonce=nonce, seen_at=now))
        except IntegrityError:
            return False
        with self._lock:
            due = time.monotonic() - self._pruned_at > self.PRUNE_EVERY
            if due:
                self._pruned_at = time.monotonic()
        if due:
            with self.db.transaction() as session:
                cutoff = now - dt.timedelta(seconds=2 * WINDOW)
                session.execute(delete(self.model).where(self.model.seen_at < cutoff))
        return True


def verify_incoming(
    nonces: NonceStore,
    own_url: str,
    public_key_of: Callable[[str], str | None],
) -> httpsig.VerifiedRequest:
    """Verify the current Flask request; raise Problem(401) saying why it is refused.

    The signed target URI must name this node (``own_url``): a request signed for another
    node and replayed here with a forged Host header is refused, whatever its nonce."""
    now = utcnow()
    target = target_uri()
    if not target.startswith(own_url.rstrip("/") + "/"):
        raise Problem(
            401,
            "Signature refused",
            f"the request was addressed to {target.split('/', 3)[2]}, not to this node ({own_url})",
            kind="signature",
        )
    try:
        verified = httpsig.verify_request(
            request.method,
            target,
            dict(request.headers),
            request.get_data(cache=True),
            public_key_of,
            now=now,
            window=WINDOW,
        )
    except RequestSignatureError as exc:
        raise Problem(401, "Signature refused", exc.reason, kind="signature") from exc
    if not nonces.remember(verified.key_id, verified.nonce, now):
        raise Problem(
            401,
            "Signature refused",
            f"nonce {verified.nonce!r} was already used: replayed request",
            kind="signature",
        )
    return verified


class RemoteError(Exception):
    """A peer answered with an error (its problem+json is in .problem) or could not be reached."""

    def __init__(self, url: str, status: int, problem: dict[str, Any]) -> None:
        title = problem.get("title", "error")
        detail = problem.get("detail", "")
        super().__init__(f"{url}: {status} {title}" + (f": {detail}" if detail else ""))
        self.url, self.status, self.problem = url, status, problem


class SignedClient:
    """An httpx client that signs every request with the node's key (key id = node id)."""

    def __init__(
        self, key_id: str, key: SigningKey, timeout: float = 60.0, guard: GuardedBackend | None = None
    ) -> None:
        """``guard``: the endpoint policy every connection is checked against (node.egress);
        None for a client that reaches only addresses its own operator configured."""
        self.key_id, self.key = key_id, key
        transport = GuardedTransport(guard) if guard is not None else None
        self.http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=5.0), trust_env=False, transport=transport
        )

    def close(self) -> None:
        self.http.close()

    def send(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """Send a signed request; raise RemoteError for a non-2xx answer or no answer."""
        headers: dict[str, str] = {}
        if json is not None:
            import json as jsonlib

            content = jsonlib.dumps(json, ensure_ascii=False).encode()
            content_type = "application/json"
        body = content or b""
        if content_type:
            headers["Content-Type"] = content_type
        prepared = self.http.build_request(method, url, params=params, content=body, headers=headers)
        if timeout is not None:
            prepared.extensions["timeout"] = httpx.Timeout(timeout, connect=5.0).as_dict()
        signed = httpsig.sign_request(
            method, str(prepared.url), body, self.key_id, self.key, created=utcnow()
        )
        for name in ("Content-Digest", "Signature-Input", "Signature"):
            prepared.headers[name] = signed[name]
        try:
            response = self.http.send(prepared)
        except httpx.HTTPError as exc:
            raise RemoteError(url, 0, {"title": "unreachable", "detail": str(exc)}) from exc
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"title": response.reason_phrase, "detail": response.text[:200]}
            raise RemoteError(url, response.status_code, problem if isinstance(problem, dict) else {})
        return response
