"""Outgoing connections that reach only addresses the space's endpoint policy allows.

A participant's endpoint is checked when it registers (space.registry), but a host name can be
re-pointed afterwards (DNS rebinding) at a metadata service or another internal address. So
every connection a node opens resolves the host itself, checks every address against the
policy (policies.endpoints) and connects to the address it checked — not to whatever a second
lookup would return. TLS still verifies the certificate for the host name: httpcore takes the
server name from the request, not from the address connected to.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence

import httpcore
import httpx

from policies.endpoints import DEFAULT_DENIED, EndpointError, check_addresses


class GuardedBackend(httpcore.SyncBackend):
    def __init__(self, denied: Sequence[str] = DEFAULT_DENIED, allow_loopback: bool = False) -> None:
        self.denied, self.allow_loopback = tuple(denied), allow_loopback

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = [str(info[4][0]) for info in found]
        try:
            check_addresses(host, addresses, self.denied, self.allow_loopback)
        except EndpointError as exc:
            raise httpcore.ConnectError(f"refused by the space's endpoint policy: {exc}") from exc
        return super().connect_tcp(addresses[0], port, timeout, local_address, socket_options)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool whose connections go through GuardedBackend.

    httpx takes no network backend of its own, so the pool it builds is replaced by one with the
    same defaults (httpx.Limits(), certificate checks against its default CA store) and ours."""

    def __init__(self, backend: GuardedBackend) -> None:
        super().__init__(trust_env=False)
        limits = httpx.Limits()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )
