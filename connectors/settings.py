"""A connector's settings, kept in its config.json under "options"."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from node.config import ConfigError
from policies.endpoints import DEFAULT_DENIED
from sandbox.limits import Limits
from sandbox.ops.psi_engines import ENGINES


@dataclass(frozen=True)
class ConnectorSettings:
    sandbox_backend: str = "auto"  # auto | process | bwrap | docker
    sandbox_limits: dict[str, int] = field(default_factory=dict)  # overrides of sandbox Limits
    sandbox_docker_image: str = ""  # the docker backend's worker image; "" = the host runtime bound in
    max_body_mb: int = 512  # largest request body, MiB (PSI requests are ~35 bytes per item)
    delivery_interval_s: float = 2.0  # how often the outbox retries undelivered records, s
    countersign_grace_s: int = 300  # a provider delivers a record alone after this long, s
    peer_cache_s: float = 30.0  # how long a participant's status from the space is trusted, s
    space_public_key: str = ""  # pinned when the connector registered
    # the space's endpoint policy, as it published it when the connector registered: every
    # outgoing connection is checked against it (node.egress)
    endpoint_denied_ranges: tuple[str, ...] = DEFAULT_DENIED
    endpoint_loopback: bool = False
    # he.score: σ of the Gaussian noise added to every decrypted score, so that the CKKS error
    # (≈ 4e-6 here, which depends on the provider's features) is flooded (Li–Micciancio 2021)
    score_flood_sigma: float = 1e-3
    # the engine of this connector's PSI jobs as consumer (sandbox.ops.psi_engines); as provider
    # it runs the one a request names
    psi_engine: str = "ecdh-x25519"

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> ConnectorSettings:
        names = {f.name for f in fields(cls)}
        chosen = {k: v for k, v in options.items() if k in names}
        if "endpoint_denied_ranges" in chosen:
            chosen["endpoint_denied_ranges"] = tuple(chosen["endpoint_denied_ranges"])
        if "psi_engine" in chosen and chosen["psi_engine"] not in ENGINES:
            raise ConfigError(f"psi_engine: expected one of {sorted(ENGINES)}, got {chosen['psi_engine']!r}")
        return cls(**chosen)

    @property
    def limits(self) -> Limits:
        return Limits.from_json(self.sandbox_limits)
