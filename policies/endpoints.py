"""Which connector endpoints the space admits: a pure check over a URL and the addresses its
host resolves to.

Providers POST job results and countersignatures to the endpoint a participant registered, so
an endpoint is a place the space's members will send requests to. One naming a cloud metadata
service (``http://169.254.169.254/…``) or another internal address would turn every provider
into the registrant's proxy (server-side request forgery). The operator's policy lists denied
address ranges; link-local, metadata, unspecified and multicast addresses are denied by default,
and loopback only outside development mode (the demo and the tests run every node on
127.0.0.1)."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from policies.errors import PolicyError

DEFAULT_DENIED: tuple[str, ...] = (
    "0.0.0.0/8",  # "this network", unspecified (RFC 6890)
    "169.254.0.0/16",  # IPv4 link-local, where cloud metadata services answer (169.254.169.254)
    "100.100.100.200/32",  # Alibaba Cloud's metadata service
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, and the limited broadcast address
    "::/128",  # IPv6 unspecified
    "fe80::/10",  # IPv6 link-local
    "fd00:ec2::254/128",  # AWS's IPv6 metadata service
    "ff00::/8",  # IPv6 multicast
)
LOOPBACK: tuple[str, ...] = ("127.0.0.0/8", "::1/128")


class EndpointError(PolicyError):
    pass


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    address = ipaddress.ip_address(text.split("%", 1)[0])  # a zone index is not part of the address
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:169.254.169.254 is 169.254.169.254
    return address


@functools.lru_cache(maxsize=16)
def _networks(
    denied: tuple[str, ...], allow_loopback: bool
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The policy's ranges, parsed once: every connection a node opens is checked against them."""
    return tuple(ipaddress.ip_network(r) for r in (*denied, *(() if allow_loopback else LOOPBACK)))


def check_endpoint(url: str, addresses: Iterable[str], denied: Sequence[str], allow_loopback: bool) -> None:
    """Raise EndpointError unless ``url`` is an http(s) URL with a host and every address it
    resolves to (``addresses``) lies outside ``denied`` (and outside loopback, unless allowed)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointError(f"endpoint: expected an http(s) URL with a host, got {url!r}")
    if parts.username or parts.password:
        raise EndpointError("endpoint: credentials in the URL are not accepted; remove user:password@")
    check_addresses(parts.hostname, addresses, denied, allow_loopback, f"endpoint {url!r}")


def check_addresses(
    host: str, addresses: Iterable[str], denied: Sequence[str], allow_loopback: bool, what: str = ""
) -> None:
    """Raise EndpointError unless every address ``host`` resolves to lies outside ``denied``
    (and outside loopback, unless allowed): at registration, and again on every connection, so
    that a name re-pointed after registration (DNS rebinding) reaches nothing denied."""
    ranges = _networks(tuple(denied), allow_loopback)
    resolved = [_address(a) for a in addresses]
    what = what or f"connection to {host}"
    if not resolved:
        raise EndpointError(f"{what}: host {host!r} resolves to no address")
    for address in resolved:
        for network in ranges:
            if address.version == network.version and address in network:
                hint = (
                    " (loopback is allowed only in a development space: tds space init --dev)"
                    if str(network) in LOOPBACK
                    else ""
                )
                raise EndpointError(
                    f"{what}: {host} resolves to {address}, in the denied range "
                    f"{network}{hint}; register an address the other participants can reach"
                )
