"""A connector's settings from its config's options: the PSI engine is checked."""

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
