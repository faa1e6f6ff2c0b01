"""Adding an operation is one registry entry plus its compute step (issue 13): a toy ``echo``,
registered only here, is permitted by a policy that names it, refused by one that does not, and
run by the real worker in each sandbox backend that takes plugins — the step loaded from a file
outside the sandbox package, read-only inside the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from policies import operations
from policies.errors import PolicySyntaxError
from policies.evaluate import evaluate
from policies.model import parse_policy
from policies.operations import Operation
from sandbox.backends import construct, create_backend
from sandbox.errors import SandboxError, WorkerFailed
from sandbox.interface import RESULT_SHAPES, WorkerJob
from sandbox.limits import Limits
from tests.conftest import require_backend

STEP = Path(__file__).with_name("echo_operation.py")
ECHO = Operation("echo", "script", "output", "Echo")  # the one registry entry


@pytest.fixture
def echo() -> Iterator[Operation]:
    operations.register(ECHO)
    yield ECHO
    operations.unregister(ECHO.name)
    RESULT_SHAPES.pop(ECHO.name, None)  # the shape the plugin added when a backend loaded it


def test_a_policy_names_the_new_operation_only_once_it_is_registered(echo: Operation) -> None:
    policy = parse_policy({"permission": [{"action": "echo"}]})
    assert evaluate(policy, "echo", {}).permitted
    assert not evaluate(policy, "psi.cardinality", {}).permitted
    operations.unregister("echo")
    with pytest.raises(PolicySyntaxError, match=r"\$\.permission\[0\]\.action: unknown action 'echo'"):
        parse_policy({"permission": [{"action": "echo"}]})


@pytest.mark.parametrize("name", ["process", "bwrap"])
def test_the_worker_runs_the_new_step_in_the_sandbox(
    request: pytest.FixtureRequest, name: str, echo: Operation
) -> None:
    require_backend(request, name)
    backend = create_backend(name, Limits(wall_seconds=60), plugins=(STEP,))
    done = backend.run(WorkerJob("echo", {"text": "你好, sandbox"}, [b"\x00\x01\x02", b"ab"]))
    assert (done.header["echo"], done.header["blobs"], done.blobs) == (
        "你好, sandbox",
        2,
        [b"\x02\x01\x00", b"ba"],
    )
    assert done.backend == name
    # the step's own error is reported by type only, as for the built-in operations
    with pytest.raises(WorkerFailed, match=r"the operation failed \(ValueError\)"):
        backend.run(WorkerJob("echo", {"text": 7}))
    # without the plugin the worker does not know the operation, whatever the registry says
    plain = create_backend(name, Limits(wall_seconds=60))
    with pytest.raises(WorkerFailed, match=r"unknown operation 'echo'"):
        plain.run(WorkerJob("echo", {"text": "x"}))


def test_a_plugin_must_be_a_python_file_and_adds_operations_only(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match=r"expected an existing \.py file of operations"):
        create_backend("process", Limits(), plugins=(tmp_path / "missing.py",))
    shapeless = tmp_path / "shapeless.py"
    shapeless.write_text("OPERATIONS = {'shout': print}\n")
    with pytest.raises(SandboxError, match=r"expected OPERATIONS \(name → step\) and RESULT_SHAPES"):
        create_backend("process", Limits(), plugins=(shapeless,))
    shadow = tmp_path / "shadow.py"
    shadow.write_text("OPERATIONS = {'psi.provider': print}\nRESULT_SHAPES = {'psi.provider': ({}, 0)}\n")
    with pytest.raises(SandboxError, match=r"operation psi.provider exists already"):
        create_backend("process", Limits(), plugins=(shadow,))
    with pytest.raises(SandboxError, match="not docker"):
        construct("docker", Limits(), "", (STEP,))
