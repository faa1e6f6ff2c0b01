import json
import random
from pathlib import Path

import pytest

from sandbox import framing
from sandbox.backends import create_backend
from sandbox.errors import LimitExceeded, SandboxError, WorkerFailed
from sandbox.interface import WorkerJob
from sandbox.limits import Limits
from tests.conftest import require_backend
from tests.sandbox.conftest import psi_run, write

EXPECTED_ISOLATION = {
    "process": {"rlimits", "process-group", "empty-cwd", "clean-env", "namespaces", "pids-cgroup"},
    "bwrap": {"namespaces", "filesystem-view", "uid-65534", "no-capabilities", "seccomp", "pids-cgroup"},
    "docker": {"container", "no-network", "read-only-root", "no-capabilities", "uid-65534", "memory-cgroup"},
}


def sets(seed: int, n: int, overlap: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    pool = rng.sample(range(10**9), 2 * n - overlap)
    keys = [f"1{v:010d}" for v in pool]
    return keys[:n], keys[n - overlap :]


@pytest.mark.parametrize("reveal", [False, True])
def test_psi_matches_a_plain_set_intersection(tmp_path: Path, backend, reveal: bool) -> None:  # type: ignore[no-untyped-def]
    mine, theirs = sets(1, 3000, 1234)
    consumer = write(
        tmp_path / "c.csv", "k,x\n" + "".join(f"{k},1\n" for k in mine) + " ,\n" + f" {mine[0]} ,dup\n"
    )
    provider = write(tmp_path / "p.csv", "k\n" + "".join(f"{k}\n" for k in theirs))
    step1, step2, step3 = psi_run(backend, consumer, provider, reveal)
    assert step1.header["consumer_set_size"] == 3000  # the blank and the duplicate do not count
    assert step2.header["provider_set_size"] == len(theirs)
    expected = set(mine) & set(theirs)
    if reveal:
        assert {mine[i] for i in json.loads(step3.blobs[0])} == expected
    else:
        assert step3.header["cardinality"] == len(expected) == 1234
    assert step1.backend == backend.name
    assert set(step1.isolation) >= EXPECTED_ISOLATION[backend.name]


def test_cardinality_response_is_sorted_as_one(tmp_path: Path, backend) -> None:  # type: ignore[no-untyped-def]
    import private_set_intersection.python as psi

    mine, theirs = sets(2, 500, 100)
    consumer = write(tmp_path / "c.csv", "k\n" + "\n".join(mine) + "\n")
    provider = write(tmp_path / "p.csv", "k\n" + "\n".join(theirs) + "\n")
    _, step2, _ = psi_run(backend, consumer, provider, reveal=False)
    response = psi.Response()
    response.ParseFromString(step2.blobs[1])
    elements = list(response.encrypted_elements)
    # one global order: no chunk boundaries a client could count per chunk
    assert elements == sorted(elements) and len(elements) == 500


def test_declared_size_must_match_the_request(tmp_path: Path, backend) -> None:  # type: ignore[no-untyped-def]
    consumer = write(tmp_path / "c.csv", "k\na\nb\nc\n")
    provider = write(tmp_path / "p.csv", "k\na\n")
    step1 = backend.run(
        WorkerJob("psi.client_request", {"column": "k", "reveal_intersection": False}, [], str(consumer))
    )
    with pytest.raises(WorkerFailed, match="the PSI request has 3 items, the job declared 2"):
        backend.run(
            WorkerJob(
                "psi.provider",
                {"column": "k", "reveal_intersection": False, "consumer_set_size": 2},
                [step1.blobs[0]],
                str(provider),
            )
        )


def test_garbage_request_is_refused(tmp_path: Path, backend) -> None:  # type: ignore[no-untyped-def]
    provider = write(tmp_path / "p.csv", "k\na\n")
    with pytest.raises(WorkerFailed, match=r"^the PSI request is not a valid message: Error parsing message"):
        backend.run(
            WorkerJob(
                "psi.provider",
                {"column": "k", "reveal_intersection": False, "consumer_set_size": 1},
                [b"\xff\xff\xff garbage"],
                str(provider),
            )
        )


def test_response_of_wrong_size_is_refused(tmp_path: Path, backend) -> None:  # type: ignore[no-untyped-def]
    consumer = write(tmp_path / "c.csv", "k\na\nb\n")
    provider = write(tmp_path / "p.csv", "k\na\n")
    step1, step2, _ = psi_run(backend, consumer, provider, reveal=False)
    with pytest.raises(WorkerFailed, match="response has 2 items, the request had 3"):
        backend.run(
            WorkerJob(
                "psi.client_result",
                {"key": step1.header["key"], "reveal_intersection": False, "expected": 3},
                step2.blobs,
            )
        )


@pytest.mark.parametrize(
    ("job", "message"),
    [
        (WorkerJob("rm -rf", {}), "unknown operation 'rm -rf'"),
        (
            WorkerJob("psi.provider", {"column": 5}, [b"x"], __file__),
            "parameter column: expected str",
        ),
        (
            WorkerJob(
                "psi.client_request", {"column": "k", "reveal_intersection": False}, [], "/nonexistent.csv"
            ),
            "cannot read",
        ),
    ],
)
def test_bad_jobs_fail_with_a_reason(backend, job: WorkerJob, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(WorkerFailed, match=message):
        backend.run(job)


def test_wall_clock_kills_the_job(tmp_path: Path, make_backend) -> None:  # type: ignore[no-untyped-def]
    mine, _ = sets(3, 40_000, 10)
    consumer = write(tmp_path / "c.csv", "k\n" + "\n".join(mine) + "\n")
    slow = make_backend(Limits(wall_seconds=1, workers=1))
    with pytest.raises(LimitExceeded, match="sandbox: wall-clock limit 1 s exceeded") as caught:
        slow.run(
            WorkerJob("psi.client_request", {"column": "k", "reveal_intersection": False}, [], str(consumer))
        )
    assert caught.value.limit == "wall"


def test_memory_limit_is_reported(tmp_path: Path, backend_name: str) -> None:
    _assert_memory_limit(tmp_path, backend_name, 64)


def test_memory_limit_hit_later_in_native_code(tmp_path: Path) -> None:
    _assert_memory_limit(tmp_path, "process", 96)  # the rlimit is the worker's on every backend


def _assert_memory_limit(tmp_path: Path, backend_name: str, memory_mb: int) -> None:
    consumer = write(tmp_path / "c.csv", "k\n" + "\n".join(f"1{i:010d}" for i in range(400_000)) + "\n")
    small = create_backend(backend_name, Limits(memory_mb=memory_mb, workers=1))
    with pytest.raises(LimitExceeded, match=f"^sandbox: memory limit {memory_mb} MiB exceeded$") as caught:
        small.run(
            WorkerJob("psi.client_request", {"column": "k", "reveal_intersection": True}, [], str(consumer))
        )
    assert caught.value.limit == "memory"


def test_input_over_the_cap_is_refused_before_starting(make_backend) -> None:  # type: ignore[no-untyped-def]
    tiny = make_backend(Limits(input_mb=1))
    with pytest.raises(LimitExceeded, match=r"^sandbox: job input 2\.0 MiB exceeds 1 MiB$"):
        tiny.run(WorkerJob("psi.client_result", {}, [b"x" * (2 << 20)]))


def test_output_cap(tmp_path: Path, make_backend) -> None:  # type: ignore[no-untyped-def]
    mine, _ = sets(4, 20_000, 1)
    consumer = write(tmp_path / "c.csv", "k\n" + "\n".join(mine) + "\n")
    capped = make_backend(Limits(output_mb=0))
    with pytest.raises(LimitExceeded, match="output limit 0 MiB exceeded"):
        capped.run(
            WorkerJob("psi.client_request", {"column": "k", "reveal_intersection": True}, [], str(consumer))
        )


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(
        SandboxError, match=r"unknown sandbox backend 'vm'; expected one of \['auto', 'process'"
    ):
        create_backend("vm", Limits())


def test_auto_picks_bubblewrap_when_it_works(request: pytest.FixtureRequest) -> None:
    require_backend(request, "bwrap")
    assert create_backend("auto", Limits()).name == "bwrap"


def test_per_offer_limits_may_only_lower_the_connectors() -> None:
    connector = Limits(memory_mb=1024, workers=2)
    assert connector.tightened({"memory_mb": 256, "workers": 1}) == Limits(memory_mb=256, workers=1)
    with pytest.raises(ValueError, match=r"too high: memory_mb 4096 > 1024, workers 0 > 2$"):
        connector.tightened({"memory_mb": 4096, "workers": 0})
    with pytest.raises(ValueError, match=r"unknown sandbox limits \['ram'\]"):
        connector.tightened({"ram": 1})


def test_limits_from_config_are_validated() -> None:
    assert Limits.from_json({"memory_mb": 512}).memory_mb == 512
    with pytest.raises(ValueError, match=r"unknown sandbox limits \['memory'\]"):
        Limits.from_json({"memory": 5})
    with pytest.raises(ValueError, match="expected a whole number"):
        Limits.from_json({"memory_mb": -1})


def test_worker_frames_carry_no_pickles() -> None:
    data = framing.encode({"op": "psi.provider", "params": {}})
    assert data[4:5] == b"{"  # JSON header, never a pickle stream


def test_a_private_dataset_is_readable_inside_the_sandbox(tmp_path: Path, backend) -> None:  # type: ignore[no-untyped-def]
    """Connectors keep their datasets owner-only in an owner-only folder, as `tds dataset add` does."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    dataset = write(private / "held.csv", "k\na\nb\n")
    dataset.chmod(0o600)
    result = backend.run(
        WorkerJob("psi.client_request", {"column": "k", "reveal_intersection": False}, [], str(dataset))
    )
    assert result.header["consumer_set_size"] == 2
    assert oct(dataset.stat().st_mode & 0o777) == "0o600"  # the connector's own file is untouched
