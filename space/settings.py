"""The space's settings, kept in its config.json under "options"."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class SpaceSettings:
    auto_admit: bool = False  # development spaces admit every registration at once
    credential_days: int = 365  # validity of a membership credential, days
    max_body_mb: int = 256  # largest request body, MiB

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> SpaceSettings:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in options.items() if k in names})
