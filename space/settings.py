"""The space's settings, kept in its config.json under "options"."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from contracts.settlement import zone_name
from policies.endpoints import DEFAULT_DENIED

PUBLIC_INTEREST = (
    "public-interest",
    "scientific-research",
    "public-health",
    "education",
    "government-service",
)


@dataclass(frozen=True)
class SpaceSettings:
    auto_admit: bool = False  # development spaces admit every registration at once
    dev_mode: bool = False  # development: connector endpoints on loopback are admitted
    # addresses (CIDR) a connector endpoint may not resolve to; see policies.endpoints
    endpoint_denied_ranges: tuple[str, ...] = DEFAULT_DENIED
    credential_days: int = 365  # validity of a membership credential, days
    # a member renews its own credential, without suspension, this close to its end, days
    renew_within_days: int = 30
    max_body_mb: int = 9  # largest request body, MiB: every body is JSON of at most 8 MiB (node.web)
    sandbox_backend: str = "auto"  # where the space adds ciphertexts: auto | process | bwrap | docker
    commission_bp: int = 500  # the operator's commission on every fee, basis points
    public_interest_purposes: tuple[str, ...] = PUBLIC_INTEREST  # what a free offer may be used for
    # sector -> price model -> the most a public-data offer for industrial use may ask, fen
    guided_prices: dict[str, dict[str, int]] = field(default_factory=dict)
    console_timezone: str = "Asia/Shanghai"  # how the web console shows times (stored in UTC)
    # whose calendar months the periods are (an IANA zone); a change applies to periods not yet
    # settled (space.periods)
    settlement_zone: str = "UTC"

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> SpaceSettings:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in options.items() if k in names}
        for name in ("public_interest_purposes", "endpoint_denied_ranges"):
            if name in values:
                values[name] = tuple(values[name])
        if "settlement_zone" in values:
            values["settlement_zone"] = zone_name(values["settlement_zone"])
        return cls(**values)
