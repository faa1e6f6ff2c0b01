"""The endpoint rule (policies.endpoints): which registered connector URLs the space admits."""

from __future__ import annotations

import pytest

from policies.endpoints import DEFAULT_DENIED, EndpointError, check_endpoint


@pytest.mark.parametrize(
    ("url", "addresses", "message"),
    [
        (
            "http://169.254.169.254/latest/meta-data",
            ["169.254.169.254"],
            "in the denied range 169.254.0.0/16",
        ),
        (
            "http://metadata.test/",
            ["::ffff:169.254.169.254"],
            "resolves to 169.254.169.254, in the denied range",
        ),
        ("http://[fd00:ec2::254]/", ["fd00:ec2::254"], "in the denied range fd00:ec2::254/128"),
        ("http://[fe80::1%eth0]:8701/", ["fe80::1%eth0"], "in the denied range fe80::/10"),
        ("http://0.0.0.0:8701/", ["0.0.0.0"], "in the denied range 0.0.0.0/8"),
        ("http://127.0.0.1:8701/", ["127.0.0.1"], r"127.0.0.0/8 \(loopback is allowed only in a development"),
        ("http://localhost:8701/", ["::1", "127.0.0.1"], r"resolves to ::1, in the denied range ::1/128"),
        ("http://bank.example/", ["203.0.113.7", "169.254.1.1"], "resolves to 169.254.1.1"),  # any one
        ("ftp://bank.example/", ["203.0.113.7"], "expected an http\\(s\\) URL with a host, got 'ftp://"),
        ("http:///nohost", [], "expected an http\\(s\\) URL with a host"),
        ("https://user:pw@bank.example/", ["203.0.113.7"], "credentials in the URL are not accepted"),
        ("https://bank.example/", [], "host 'bank.example' resolves to no address"),
    ],
    ids=[
        "metadata-v4",
        "metadata-v4-mapped",
        "metadata-v6",
        "link-local-v6",
        "unspecified",
        "loopback",
        "localhost-v6",
        "one-bad-address",
        "ftp",
        "no-host",
        "credentials",
        "unresolved",
    ],
)
def test_refused_endpoints(url: str, addresses: list[str], message: str) -> None:
    with pytest.raises(EndpointError, match=message):
        check_endpoint(url, addresses, DEFAULT_DENIED, allow_loopback=False)


def test_admitted_endpoints() -> None:
    check_endpoint("https://bank.example:8443/tds", ["203.0.113.7", "2001:db8::7"], DEFAULT_DENIED, False)
    check_endpoint("http://127.0.0.1:8701", ["127.0.0.1"], DEFAULT_DENIED, allow_loopback=True)
    # the operator's own ranges: a private network refused where the policy says so
    with pytest.raises(EndpointError, match=r"in the denied range 10\.0\.0\.0/8"):
        check_endpoint("http://10.1.2.3/", ["10.1.2.3"], (*DEFAULT_DENIED, "10.0.0.0/8"), False)
