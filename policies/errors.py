"""Errors raised by :mod:`policies`.

PolicyError                 root: anything wrong with a policy or a rule set
├── PolicySyntaxError       a policy document is malformed (names the path and what was expected)
├── RuleSetError            the space's negative list is malformed
├── EndpointError           a connector endpoint the space's policy does not admit
└── UnknownOperation        an operation name the registry (policies.operations) lacks
"""


class PolicyError(Exception):
    """Root of every error raised by the policies package."""


class PolicySyntaxError(PolicyError):
    """A policy document does not follow the TDS ODRL subset."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"policy {path}: {message}")
        self.path = path


class RuleSetError(PolicyError):
    """The negative list (prohibited and restricted categories) is malformed."""


class UnknownOperation(PolicyError):
    """An operation name no entry of the registry (policies.operations) has."""
