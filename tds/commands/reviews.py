"""``tds review``: a provider's reviewers read consumers' scripts, approve or reject the code, and
release or withhold the output; ``tds script try``: a consumer runs its script on a mock sample
in its own sandbox first."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from tds.commands.common import State, call, emit, pass_state
from tds.commands.jobs import read_json_object, read_text
from tds.errors import ApiError


@click.group()
def review() -> None:
    """Review consumers' scripts before they run on this connector's data."""


def _line(found: dict[str, Any]) -> str:
    return f"{found['id']}  {found['state']:8}  {found['consumer']}  {found['reason']}"


def _decide(
    state: State, job_id: str, decision: str, body: dict[str, Any], done: str | None = None
) -> dict[str, Any]:
    """One of the four decisions (connectors.script_review); with ``done``, say so and the state."""
    found: dict[str, Any] = call(state, "POST", f"/api/reviews/{job_id}/{decision}", body)
    if done is not None:
        emit(state, found, f"{done}; job {job_id} is {found['state']}")
    return found


@review.command("list")
@click.option("--state", "wanted", type=click.Choice(["review", "release", "running", "released",
                                                      "withheld", "rejected", "failed", "denied"]),
              help="Only jobs in this state (default: those waiting for a reviewer).")  # fmt: skip
@pass_state
def review_list(state: State, wanted: str | None) -> None:
    """The script jobs waiting for a reviewer: their code (review) or their output (release)."""
    api = state.api("connector")
    try:
        found = api.get("/api/reviews", state=wanted)  # the query's own "state"
    finally:
        api.close()
    emit(state, found, "\n".join(_line(r) for r in found["reviews"]) or "nothing waits for a reviewer")


def _shown(found: dict[str, Any]) -> str:
    mock = found.get("mock") or {}
    lines = [
        _line(found),
        f"code {found['code_sha256']} ({found['code_state']}, "
        f"{found['runs_used']}/{found['runs_granted']} runs)",
        f"args: {json.dumps(found['args'], ensure_ascii=False)}   columns: {found['columns']}",
        f"rules: {json.dumps(found['rules'], ensure_ascii=False)}",
        "--- code", found["code"].rstrip("\n"),
        "--- diff against the last approved version", found["diff"].rstrip("\n") or "(first version)",
        "--- mock run", mock.get("error") or mock.get("output", "(not yet)"),
    ]  # fmt: skip
    if mock.get("checks"):
        lines.append("checks on the mock: " + "; ".join(mock["checks"]))
    if found.get("output") is not None:
        lines += ["--- output waiting for release", found["output"]]
    return "\n".join(lines)


WAIT = click.option("--wait", type=float, default=0.0, show_default=True,
                    help="Seconds to wait for the job to come this far (it may be on its way).")  # fmt: skip


def _reviewed(state: State, job_id: str, wait: float, past: tuple[str, ...]) -> dict[str, Any]:
    """The job's review, once it exists and its state is none of ``past`` (or after ``wait``)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            found: dict[str, Any] = call(state, "GET", f"/api/reviews/{job_id}")
        except ApiError as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise
        else:
            if found["state"] not in past or time.monotonic() > deadline:
                return found
        time.sleep(0.2)


@review.command("show")
@click.argument("job_id")
@WAIT
@pass_state
def review_show(state: State, job_id: str, wait: float) -> None:
    """Everything to decide on: code, diff, reason, arguments, the mock run, the policy's rules."""
    found = _reviewed(state, job_id, wait, ("mock_run",))
    emit(state, found, _shown(found))


@review.command("approve")
@click.argument("job_id")
@click.option("--runs", type=int, default=1, show_default=True, help="Runs the approval grants.")
@click.option("--note", default="")
@pass_state
def review_approve(state: State, job_id: str, runs: int, note: str) -> None:
    """Approve the code (pinned by its SHA-256) for --runs runs; it starts on the data."""
    found = _decide(state, job_id, "approve", {"runs": runs, "note": note})
    emit(
        state,
        found,
        f"approved {found['code_sha256'][:12]} for {runs} runs; job {job_id} is {found['state']}",
    )


@review.command("reject")
@click.argument("job_id")
@click.option("--note", required=True, help="Why: the consumer reads it.")
@pass_state
def review_reject(state: State, job_id: str, note: str) -> None:
    """Reject the code; the job ends denied and this code stays rejected."""
    _decide(state, job_id, "reject", {"note": note}, "rejected")


@review.command("output")
@click.argument("job_id")
@WAIT
@pass_state
def review_output(state: State, job_id: str, wait: float) -> None:
    """The output waiting for release, with what the automatic checks said."""
    found = _reviewed(state, job_id, wait, ("mock_run", "review", "running"))
    shown = {
        k: found[k] for k in ("id", "state", "output", "output_format", "output_sha256", "checks", "metrics")
    }
    emit(
        state, shown, found["output"] if found["output"] is not None else f"job {job_id} is {found['state']}"
    )


@review.command("release")
@click.argument("job_id")
@click.option("--note", default="")
@pass_state
def review_release(state: State, job_id: str, note: str) -> None:
    """Release the output to the consumer, signed; the use is billed as agreed."""
    _decide(state, job_id, "release", {"note": note}, "released")


@review.command("withhold")
@click.argument("job_id")
@click.option("--note", required=True, help="Why: the consumer reads it.")
@pass_state
def review_withhold(state: State, job_id: str, note: str) -> None:
    """Withhold the output; the consumer gets the note, never the output."""
    _decide(state, job_id, "withhold", {"note": note}, "withheld")


@click.group("script")
def script_group() -> None:
    """Write and try reviewed scripts."""


@script_group.command("try")
@click.argument("code_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--mock", "mock_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The entry's mock sample (tds catalog mock ENTRY --out mock.csv).")  # fmt: skip
@click.option("--args", "args_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--backend", default="auto", show_default=True, help="auto, bwrap or docker (as a provider runs it)."
)
@pass_state
def script_try(state: State, code_file: Path, mock_file: Path, args_file: Path | None, backend: str) -> None:
    """Run a script on a mock sample in this machine's sandbox, with the runtime and default
    limits a provider uses, and print its output."""
    from tds.script_try import try_on_mock

    out = try_on_mock(
        read_text(code_file, "CODE_FILE"), mock_file, read_json_object(args_file, "--args"), backend
    )
    human = (
        out["table"].rstrip("\n")
        if out["format"] == "table"
        else json.dumps(out["output"], ensure_ascii=False, indent=2)
    )
    emit(state, out, human)


COMMANDS = [review, script_group]
