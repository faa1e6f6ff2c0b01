"""The command line as a person uses it: --help everywhere, clear refusals with exit codes,
JSON output, and the operator's review queue."""

import json
import subprocess
import sys
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner

from tds.cli import cli
from tests.conftest import require_backend
from tests.integration.conftest import c, negotiate


def tds(*args: str, data_dir: Path | None = None) -> subprocess.CompletedProcess:
    prefix = ["--data-dir", str(data_dir)] if data_dir else []
    return subprocess.run(
        [sys.executable, "-m", "tds.cli", *prefix, *args], capture_output=True, text=True, check=False
    )


def commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += commands(command, (*path, name))
        else:
            found.append((*path, name))
    return found


@pytest.mark.parametrize("path", commands(cli), ids=lambda p: " ".join(p) or "tds")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and "--help" in result.output
    command: click.Command = cli
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    # before the command, and after it too — also after a group that acts itself (tds space token)
    if not isinstance(command, click.Group) or not path or command.invoke_without_command:
        assert "--json" in result.output


def test_json_after_the_command_prints_json(tmp_path: Path) -> None:
    after = tds("space", "init", "--dev", "--json", data_dir=tmp_path / "a")
    before = tds("--json", "space", "init", "--dev", data_dir=tmp_path / "b")
    assert after.returncode == before.returncode == 0, after.stderr
    assert set(json.loads(after.stdout)) == set(json.loads(before.stdout))


def test_version() -> None:
    done = tds("--version")
    assert (done.returncode, done.stdout.strip()) == (0, "tds 0.1.0")


def test_init_refuses_to_overwrite_a_node(tmp_path: Path) -> None:
    assert tds("space", "init", data_dir=tmp_path / "s").returncode == 0
    again = tds("space", "init", data_dir=tmp_path / "s")
    assert again.returncode == 1
    assert "already exists; refusing to overwrite it" in again.stderr


def test_global_options_work_after_the_command_and_errors_come_as_json(tmp_path: Path) -> None:
    done = tds("dataset", "list", "--data-dir", str(tmp_path), "--json")
    assert (done.returncode, done.stdout) == (1, "")
    assert json.loads(done.stderr) == {
        "error": f"{tmp_path} is not a TDS node directory (no config.json); create one with "
        "'tds space init' or 'tds connector init'",
        "exit_code": 1,
    }
    usage = tds("--json", "job", "list", "--bogus")
    assert usage.returncode == 2 and json.loads(usage.stderr)["error"].startswith("No such option '--bogus'")
    made = tds("space", "init", "--dev", "--data-dir", str(tmp_path / "s"))  # --data-dir after: it counts
    assert made.returncode == 0 and (tmp_path / "s" / "config.json").exists()


def test_commands_outside_a_node_directory_say_how_to_fix_it(tmp_path: Path) -> None:
    done = tds("dataset", "list", data_dir=tmp_path)
    assert done.returncode == 1
    assert "is not a TDS node directory (no config.json); create one with 'tds space init'" in done.stderr


def test_bad_database_url(tmp_path: Path) -> None:
    done = tds("space", "init", "--db", "mysql://root@localhost/x", data_dir=tmp_path / "s")
    assert done.returncode == 1
    assert "is not supported; use sqlite:///PATH or postgresql+psycopg://" in done.stderr


def test_dataset_add_and_publish_through_the_cli(live, data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    telecom = live.connectors["telecom"].config.path
    bad = tmp_path / "bad.csv"
    bad.write_text("phone,plan\n138,1\n139\n")
    refused = tds("dataset", "add", "broken", str(bad), "--key", "phone", data_dir=telecom)
    assert refused.returncode == 1
    assert "bad.csv: line 3 has 1 fields, the header has 2\n" in refused.stderr
    assert "broken" not in tds("dataset", "list", data_dir=telecom).stdout
    assert not (telecom / "datasets" / "broken.csv").exists()

    added = tds(
        "--json",
        "dataset",
        "add",
        "cli-subs",
        str(data["telecom_csv"]),
        "--key",
        "phone",
        "--sector",
        "信息通信",
        "--keyword",
        "手机号",
        data_dir=telecom,
    )
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["row_count"] == 2000

    offer = tmp_path / "offer.json"
    offer.write_text("{not json")
    assert (
        "offer.json: not a JSON file"
        in tds("dataset", "publish", "cli-subs", "--offer", str(offer), data_dir=telecom).stderr
    )
    offer.write_text(
        json.dumps(
            {
                "policy": {"permission": [{"action": "psi.cardinality"}]},
                "price": {"model": "per_job", "amount_fen": 12.5},
            }
        )
    )
    wrong_price = tds("dataset", "publish", "cli-subs", "--offer", str(offer), data_dir=telecom)
    assert wrong_price.returncode == 1
    assert (
        "price.amount_fen: expected a whole number of fen (1 yuan = 100 fen), got 12.5" in wrong_price.stderr
    )
    offer.write_text(
        json.dumps(
            {
                "policy": {"permission": [{"action": "psi.cardinality"}]},
                "price": {"model": "per_job", "amount_fen": 1200},
                "auto_approve": True,
            }
        )
    )
    published = tds("--json", "dataset", "publish", "cli-subs", "--offer", str(offer), data_dir=telecom)
    assert published.returncode == 0, published.stderr
    entry = json.loads(published.stdout)
    assert entry["status"] == "published"

    bank = live.connectors["bank"].config.path
    found = tds("catalog", "search", "手机号", "--op", "psi.cardinality", data_dir=bank)
    assert entry["id"] in found.stdout
    requested = tds(
        "--json",
        "contract",
        "request",
        "--offer",
        entry["offers"][0]["id"],
        "--purpose",
        "risk-control",
        "--op",
        "psi.cardinality",
        data_dir=bank,
    )
    assert requested.returncode == 0, requested.stderr
    assert json.loads(requested.stdout)["state"] == "FINALIZED"


def test_prohibited_and_restricted_entries(live, data) -> None:  # type: ignore[no-untyped-def]
    telecom = live.connectors["telecom"].config.path
    offer = live.root / "offer.json"
    offer.write_text(
        json.dumps(
            {  # free: for public health only, as the operator's pricing rules require
                "policy": {
                    "permission": [
                        {
                            "action": "psi.cardinality",
                            "constraint": [
                                {
                                    "leftOperand": "purpose",
                                    "operator": "isAnyOf",
                                    "rightOperand": ["public-health"],
                                }
                            ],
                        }
                    ]
                },
                "price": {"model": "free", "amount_fen": 0},
            }
        )
    )
    assert (
        tds(
            "dataset",
            "add",
            "core-data",
            str(data["telecom_csv"]),
            "--key",
            "phone",
            "--classification",
            "core",
            data_dir=telecom,
        ).returncode
        == 0
    )
    prohibited = tds("dataset", "publish", "core-data", "--offer", str(offer), data_dir=telecom)
    assert prohibited.returncode == 1
    assert (
        "prohibited by negative-list rule NL-001: core data (核心数据, GB/T 43697) may not be traded"
        in prohibited.stderr
    )
    assert "core-data" in tds("dataset", "list", data_dir=telecom).stdout  # still registered, unpublished

    assert (
        tds(
            "dataset",
            "add",
            "health",
            str(data["telecom_csv"]),
            "--key",
            "phone",
            "--sector",
            "医疗健康",
            data_dir=telecom,
        ).returncode
        == 0
    )
    held = tds("--json", "dataset", "publish", "health", "--offer", str(offer), data_dir=telecom)
    entry = json.loads(held.stdout)
    assert entry["status"] == "pending_review"
    space = live.space.config.path
    queue = tds("space", "review", data_dir=space)
    assert entry["id"] in queue.stdout and "NL-102" in queue.stdout
    approved = tds("space", "review", "--approve", entry["id"], "--note", "checked", data_dir=space)
    assert approved.stdout.strip() == f"{entry['id']} is now published"


def test_denied_job_exits_3_and_says_why(live, bank, telecom, data) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.conftest import publish

    entry = publish(telecom, data["telecom_csv"], [c("consumerSetSize", "lteq", 10)])
    agreement = negotiate(bank, entry["offers"][0]["id"])
    agreement = bank.wait_for(f"/api/contracts/{agreement['id']}", lambda n: n["state"] == "FINALIZED", 20)
    done = tds(
        "job",
        "submit",
        "--agreement",
        agreement["agreement_id"],
        "--op",
        "psi.cardinality",
        "--input",
        str(data["bank_csv"]),
        "--column",
        "phone",
        "--no-progress",
        data_dir=live.connectors["bank"].config.path,
    )
    assert done.returncode == 3
    assert "consumerSetSize lteq 10: consumerSetSize is 2000" in done.stderr
    job = bank.get("/api/jobs")["jobs"][0]
    result = tds("job", "result", job["id"], "--json", data_dir=live.connectors["bank"].config.path)
    assert result.returncode == 3  # the job's own code, not 1, whichever command reads it
    error = json.loads(result.stderr)  # under --json, one JSON object on stderr
    assert (error["exit_code"], error["status"], error["problem"]["job_status"]) == (3, 409, "denied")
    assert error["error"] == f"job {job['id']} is denied: {job['error']}"


def test_connector_settings_from_init_options(live) -> None:  # type: ignore[no-untyped-def]
    node = live.add_connector(
        "tuned-co",
        "Tuned Co",
        44,
        admit=False,
        start=False,
        options={"peer_cache_s": 5, "sandbox_limits": '{"memory_mb":1024}'},
    )
    options = json.loads((node.config.path / "config.json").read_text())["options"]
    assert options["peer_cache_s"] == 5
    assert options["sandbox_limits"] == {"memory_mb": 1024}
    space_key = httpx.get(live.space.url + "/.well-known/tds", trust_env=False).json()["public_key"]
    assert options["space_public_key"] == space_key  # pinned at registration


def test_sandbox_check_reports_each_backend(request: pytest.FixtureRequest) -> None:
    require_backend(request, "bwrap")
    require_backend(request, "docker")
    done = tds("--json", "sandbox", "check")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["auto"] == "bwrap"
    assert {name: entry["works"] for name, entry in report["backends"].items()} == {
        "bwrap": True,
        "docker": True,
        "process": True,
    }
    assert report["backends"]["bwrap"]["detail"].endswith("with a seccomp filter")
    human = tds("sandbox", "check")
    assert human.stdout.splitlines()[-1] == "auto picks: bwrap"


def test_sandbox_check_fails_when_only_process_works(tmp_path: Path) -> None:
    # a PATH without bwrap and a Docker host that does not answer
    env = {"PATH": str(tmp_path), "DOCKER_HOST": f"unix://{tmp_path / 'none.sock'}", "LANG": "C.UTF-8"}
    done = subprocess.run(
        [sys.executable, "-m", "tds.cli", "sandbox", "check"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 1
    assert "no   bwrap    bubblewrap is not installed" in done.stdout
    assert "no   docker   no usable Docker engine" in done.stdout
    assert done.stderr.strip() == (
        "error: only the process backend works here: install bubblewrap or start a Docker engine"
    )


def test_a_serving_node_logs_each_outgoing_request_only_with_verbose() -> None:
    import logging

    from tds.commands.common import State, setup_logging

    httpx_log = logging.getLogger("httpx")
    before = httpx_log.level
    try:
        setup_logging(State(), "bank")
        assert not httpx_log.isEnabledFor(logging.INFO)  # one line per request: not by default
        loud = State()
        loud.verbose = True
        httpx_log.setLevel(logging.NOTSET)
        setup_logging(loud, "bank")
        assert httpx_log.level == logging.NOTSET  # -v: the root's INFO applies, each request is logged
    finally:
        httpx_log.setLevel(before)
