"""The operation registry: one entry per operation a job can run, read by every layer above.

An entry says which family of connector code runs it (``psi``, ``he``, later ``script``), the
kind of result it gives (which fixes how a job's result is shown, paged and summed up), the
policy left operands its jobs add to the context beyond the common ones (policies.model), and
its title for the command line and the console. The names live here, in the lowest layer that
needs them (an ODRL action is an operation's name); each family's compute steps live with the
family, so adding an operation is one entry here plus its steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.errors import UnknownOperation

FAMILIES = ("psi", "he", "script")
RESULT_KINDS = ("cardinality", "intersection", "sums", "statistics", "scores", "output")


@dataclass(frozen=True)
class Operation:
    name: str
    family: str
    result: str
    title: str
    context: tuple[str, ...] = ()


REGISTRY: dict[str, Operation] = {}


def register(operation: Operation) -> Operation:
    """Add an entry; a name is registered once, with a known family and result kind."""
    if operation.family not in FAMILIES:
        raise ValueError(
            f"operation {operation.name}: family {operation.family!r}, expected one of {FAMILIES}"
        )
    if operation.result not in RESULT_KINDS:
        raise ValueError(
            f"operation {operation.name}: result {operation.result!r}, expected one of {RESULT_KINDS}"
        )
    if operation.name in REGISTRY and REGISTRY[operation.name] != operation:
        raise ValueError(f"operation {operation.name} is already registered as {REGISTRY[operation.name]}")
    REGISTRY[operation.name] = operation
    return operation


def unregister(name: str) -> None:
    """Remove an entry (a test's own operation, once the test is over)."""
    REGISTRY.pop(name, None)


def get(name: object) -> Operation:
    if isinstance(name, str) and name in REGISTRY:
        return REGISTRY[name]
    raise UnknownOperation(f"operation {name!r}: expected one of {list(REGISTRY)}")


def names(*families: str) -> tuple[str, ...]:
    """The registered names, of the given families only if any are named, in registry order."""
    return tuple(op.name for op in REGISTRY.values() if not families or op.family in families)


for _entry in (
    Operation("psi.cardinality", "psi", "cardinality", "PSI cardinality", ("consumerSetSize", "resultSize")),
    Operation(
        "psi.intersection", "psi", "intersection", "PSI intersection", ("consumerSetSize", "resultSize")
    ),
    Operation("psi.sum", "psi", "sums", "PSI sum", ("consumerSetSize", "resultSize", "column")),
    Operation(
        "he.aggregate",
        "he",
        "statistics",
        "Homomorphic aggregate",
        ("column", "statistic", "epsilon", "epsilonTotal", "providers", "aggregationSize"),
    ),
    Operation("he.score", "he", "scores", "Homomorphic score", ("column", "idsPerDay", "idRepeats")),
    Operation(
        "script",
        "script",
        "output",
        "Reviewed script",
        ("outputBytes", "runsPerApproval", "release", "reviewRequired"),
    ),
):
    register(_entry)
