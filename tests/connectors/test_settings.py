"""A connector's settings from its config's options: the PSI engine and the PSI wait are checked."""

import re

import pytest

from connectors.settings import ConnectorSettings
from node.config import ConfigError


def test_the_psi_engine_is_one_the_sandbox_has() -> None:
    assert ConnectorSettings().psi_engine == "ecdh-x25519"  # new jobs run on X25519
    assert ConnectorSettings.from_options({"psi_engine": "ecdh-p256"}).psi_engine == "ecdh-p256"
    with pytest.raises(
        ConfigError, match=r"psi_engine: expected one of \['ecdh-p256', 'ecdh-x25519'\], got 'ecdh-p384'"
    ):
        ConnectorSettings.from_options({"psi_engine": "ecdh-p384"})


@pytest.mark.parametrize("wait", [0, -1, 86_401, "600", True, float("nan")])
def test_the_psi_wait_is_positive_seconds_up_to_a_day(wait: object) -> None:
    assert ConnectorSettings().psi_wait_s == 600.0
    assert ConnectorSettings.from_options({"psi_wait_s": 2}).psi_wait_s == 2
    with pytest.raises(
        ConfigError, match=re.escape(f"psi_wait_s: expected seconds above 0 and at most 86400, got {wait!r}")
    ):
        ConnectorSettings.from_options({"psi_wait_s": wait})
