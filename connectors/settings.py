"""A connector's settings, kept in its config.json under "options"."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from node.config import ConfigError
from policies.endpoints import DEFAULT_DENIED
from sandbox.limits import Limits
from sandbox.ops.psi_engines import ENGINES

MOST_PSI_WAIT_S = 86_400.0  # a day: the provider's keys stay in memory no longer


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
    # how long, as provider, it keeps the first step of a two-message PSI run (provider-counted
    # cardinality, psi.sum) for the consumer's second; a run left longer ends as a failed use, s
    psi_wait_s: float = 600.0

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> ConnectorSettings:
        names = {f.name for f in fields(cls)}
        chosen = {k: v for k, v in options.items() if k in names}
        if "endpoint_denied_ranges" in chosen:
            chosen["endpoint_denied_ranges"] = tuple(chosen["endpoint_denied_ranges"])
        if "psi_engine" in chosen and chosen["psi_engine"] not in ENGINES:
            raise ConfigError(f"psi_engine: expected one of {sorted(ENGINES)}, got {chosen['psi_engine']!r}")
        wait = chosen.get("psi_wait_s", 600.0)
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 < wait <= MOST_PSI_WAIT_S:
            raise ConfigError(
                f"psi_wait_s: expected seconds above 0 and at most {MOST_PSI_WAIT_S:g}, got {wait!r}"
            )
        return cls(**chosen)

    @property
    def limits(self) -> Limits:
        return Limits.from_json(self.sandbox_limits)
