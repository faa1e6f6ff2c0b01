"""``tds job`` and ``tds outbox``: submit jobs and follow them; the usage records waiting to go out."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from node.config import write_file
from policies import operations
from tds.client import NodeAPI
from tds.commands.common import State, call, emit, pass_state
from tds.errors import ApiError, JobEnded, TdsError


@click.group()
def job() -> None:
    """Run sandboxed jobs under agreements."""


def _job_line(found: dict[str, Any]) -> str:
    line = f"{found['id']}  {found['operation']}  {found['status']}"
    if found["summary"]:
        line += "  " + ", ".join(f"{k} {v}" for k, v in found["summary"].items())
    if found["error"]:
        line += f"\n    {found['error']}"
    return line


@job.command("submit")
@click.option("--agreement", "agreements", required=True, multiple=True,
              help="Agreement (or negotiation) id; repeat for he.aggregate.")  # fmt: skip
@click.option(
    "--op",
    "operation",
    required=True,
    type=click.Choice(operations.names("psi", "he", "script")),
)
@click.option("--input", "input_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PSI: the CSV whose key column is matched.")  # fmt: skip
@click.option(
    "--column", help="PSI: the input's key column; he.aggregate: the column; he.score: the ids' column."
)
@click.option("--sum", "summed", help="psi.sum: the provider's column to sum over A ∩ B.")
@click.option("--by", help="psi.sum: the provider's column whose categories are summed apart.")
@click.option("--stats", help="he.aggregate: count,sum,mean,variance,histogram,linreg.")
@click.option(
    "--where", "where_expr", help="he.aggregate: a filter, e.g. \"age >= 18 and city in ('郑州')\"."
)
@click.option("--bins", help="he.aggregate histogram: ascending edges, e.g. 0,10,20,50.")
@click.option("--features", help="he.aggregate linreg: feature columns, comma-separated.")
@click.option("--target", help="he.aggregate linreg: the target column.")
@click.option("--epsilon", type=float,
              help="he.aggregate, psi.cardinality: differential privacy ε for this job.")  # fmt: skip
@click.option("--bounds", help="he.aggregate with ε: clip values to LOWER,UPPER.")
@click.option(
    "--mechanism", type=click.Choice(["laplace", "gaussian"]), help="he.aggregate with ε: the noise."
)
@click.option("--delta", type=float, help="he.aggregate, Gaussian noise: δ (≤ 0.001).")
@click.option("--ids", "ids_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="he.score: CSV of the ids to score.")  # fmt: skip
@click.option("--model", "model_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='he.score: {"features": [...], "weights": [...], "bias": n}.')  # fmt: skip
@click.option("--code", "code_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="script: the Python file to run where the data lies, once approved.")  # fmt: skip
@click.option("--args", "args_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="script: a JSON object the script reads as ARGS.")  # fmt: skip
@click.option("--reason", default="", help="script: why the code should run, for the reviewer.")
@click.option("--columns", help="script: the columns of the table it leaves (none: a JSON object).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
@click.option("--wait/--no-wait", default=None,
              help="Wait for the job to end (default: yes, except for a script).")  # fmt: skip
@pass_state
def job_submit(state: State, agreements: tuple[str, ...], operation: str, progress: bool | None,
               wait: bool | None, **options: Any) -> None:  # fmt: skip
    """Submit a job; the input never leaves this connector (a script's code goes to the provider)."""
    body = _job_body(operation, agreements, options)
    wait = operation != "script" if wait is None else wait
    api = state.api("connector")
    try:
        found = api.post("/api/jobs", body)
        if wait:
            found = _follow(api, found, sys.stderr.isatty() if progress is None else progress)
    finally:
        api.close()
    emit(state, found, _job_line(found))
    _exit_as_job(found)


def _numbers(text: str | None, option: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",")]
    except ValueError as exc:
        raise click.UsageError(f"{option}: expected comma-separated numbers, got {text!r}") from exc


def _job_body(operation: str, agreements: tuple[str, ...], o: dict[str, Any]) -> dict[str, Any]:
    if operation != "he.aggregate" and len(agreements) != 1:
        raise click.UsageError(f"{operation} runs under exactly one --agreement")
    if operation.startswith("psi."):
        if o["input_file"] is None or o["column"] is None:
            raise click.UsageError(f"{operation} needs --input and --column")
        psi: dict[str, Any] = {"agreement": agreements[0], "operation": operation,
                               "input": str(o["input_file"].resolve()), "column": o["column"]}  # fmt: skip
        if o["epsilon"] is not None:  # psi.cardinality counted by the provider, with noise of ε
            psi["epsilon"] = o["epsilon"]
        if operation == "psi.sum":
            if not o["summed"]:
                raise click.UsageError("psi.sum needs --sum COLUMN (the provider's column to sum)")
            psi.update({"sum": o["summed"], **({"by": o["by"]} if o["by"] else {})})
        elif o["summed"] or o["by"]:
            raise click.UsageError(f"--sum and --by are psi.sum's; {operation} sums nothing")
        return psi
    if operation == "script":
        return _script_body(agreements[0], o)
    if operation == "he.score":
        if o["ids_file"] is None or o["model_file"] is None or o["column"] is None:
            raise click.UsageError("he.score needs --ids, --column and --model")
        return {"agreement": agreements[0], "operation": operation, "ids": str(o["ids_file"].resolve()),
                "column": o["column"], "model": str(o["model_file"].resolve())}  # fmt: skip
    if not o["stats"]:
        raise click.UsageError("he.aggregate needs --stats")
    body: dict[str, Any] = {
        "agreements": list(agreements),
        "operation": operation,
        "stats": o["stats"].split(","),
    }
    for key in ("column", "target"):
        if o[key]:
            body[key] = o[key]
    if o["where_expr"]:
        body["where"] = o["where_expr"]
    if o["features"]:
        body["features"] = o["features"].split(",")
    if o["bins"]:
        body["bins"] = _numbers(o["bins"], "--bins")
    if o["epsilon"] is not None:
        body["epsilon"] = o["epsilon"]
    if o["bounds"]:
        body["bounds"] = _numbers(o["bounds"], "--bounds")
    for key in ("mechanism", "delta"):
        if o[key] is not None:
            body[key] = o[key]
    return body


def _script_body(agreement: str, o: dict[str, Any]) -> dict[str, Any]:
    if o["code_file"] is None:
        raise click.UsageError("script needs --code FILE.py")
    body: dict[str, Any] = {"agreement": agreement, "operation": "script", "reason": o["reason"],
                            "code": read_text(o["code_file"], "--code"),
                            "args": read_json_object(o["args_file"], "--args")}  # fmt: skip
    if o["columns"]:
        body["columns"] = [c.strip() for c in o["columns"].split(",")]
    return body


def read_text(path: Path, option: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise click.UsageError(f"{option} {path}: not UTF-8 text") from exc


def read_json_object(path: Path | None, option: str) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        value = json.loads(read_text(path, option))
    except ValueError as exc:
        raise click.UsageError(f"{option} {path}: not JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise click.UsageError(f"{option} {path}: expected a JSON object, got {type(value).__name__}")
    return value


def _follow(api: NodeAPI, found: dict[str, Any], show: bool) -> dict[str, Any]:
    path = f"/api/jobs/{found['id']}"
    if not show:
        return dict(api.wait_for_job(found["id"], timeout=7 * 24 * 3600))
    with click.progressbar(length=1000, label="job", file=sys.stderr, show_eta=True) as bar:
        done = 0
        while found["status"] == "running":
            found = api.get(path, wait=0.2)  # answered at once when the job ends
            target = int(found["progress"] * 1000)
            bar.label = f"job: {found['phase']:<10}"
            bar.update(max(0, target - done))
            done = max(done, target)
        bar.update(1000 - done)
    return found


@job.command("status")
@click.argument("job_id")
@pass_state
def job_status(state: State, job_id: str) -> None:
    """Show a job's state, progress and outcome."""
    found = call(state, "GET", f"/api/jobs/{job_id}")
    emit(state, found, _job_line(found))


@job.command("refresh")
@click.argument("job_id")
@pass_state
def job_refresh(state: State, job_id: str) -> None:
    """Ask a script job's provider where it is (its news normally arrives by itself)."""
    found = call(state, "POST", f"/api/jobs/{job_id}/refresh")
    emit(state, found, _job_line(found))


@job.command("wait")
@click.argument("job_id")
@click.option("--timeout", type=float, default=600.0, show_default=True,
              help="Seconds to wait; a job still running then exits 1.")  # fmt: skip
@pass_state
def job_wait(state: State, job_id: str, timeout: float) -> None:
    """Wait for a job to end (a script's, say, while its provider reviews it); the exit code is
    the job's: 0 succeeded, 3 denied, 4 failed, 5 withheld."""
    api = state.api("connector")
    try:
        found = api.wait_for_job(job_id, timeout)
    finally:
        api.close()
    emit(state, found, _job_line(found))
    _exit_as_job(found)
    if found["status"] == "running":
        raise TdsError(f"job {job_id} is still running after {timeout:g} s ({found['phase']})")


def _exit_as_job(found: dict[str, Any]) -> None:
    if found["status"] in JobEnded.CODES:
        raise JobEnded(found["status"], found["error"] or found["status"])


@job.command("result")
@click.argument("job_id")
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True,
              help="Intersection and scores: the first item to print (0: the first).")  # fmt: skip
@click.option("--limit", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Intersection and scores: the most items to print from --offset.")  # fmt: skip
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the whole result to FILE (an intersection: one item a line).")  # fmt: skip
@pass_state
def job_result(state: State, job_id: str, offset: int, limit: int, out: Path | None) -> None:
    """Print a finished job's result; a job that has none exits with its own code (3 denied,
    4 failed, 5 withheld)."""
    try:
        found = call(state, "GET", f"/api/jobs/{job_id}/result", offset=offset, limit=limit)
    except ApiError as exc:
        ended = exc.problem.get("job_status")
        if ended in JobEnded.CODES:
            raise JobEnded(ended, str(exc)) from exc
        raise
    if out is None:
        emit(state, found, RESULT_LINES[operations.get(found["operation"]).result](found))
        return
    text = _whole(state, job_id, found)
    write_file(out, text.encode("utf-8"), mode=0o600, replace=True)
    emit(state, {"job": job_id, "path": str(out), "bytes": len(text.encode("utf-8"))}, f"wrote {out}")


def _whole(state: State, job_id: str, found: dict[str, Any]) -> str:
    """The whole result as text: an intersection or scores page by page, the rest as printed."""
    kind = operations.get(found["operation"]).result
    if kind not in ("intersection", "scores"):
        return RESULT_LINES[kind](found) + "\n"
    items, total = list(found[kind]), found["intersection_size" if kind == "intersection" else "count"]
    while len(items) < total:
        page = call(state, "GET", f"/api/jobs/{job_id}/result", offset=len(items), limit=10_000)
        if not page[kind]:
            break
        items += page[kind]
    return RESULT_LINES[kind]({**found, kind: items}) + "\n"


def _number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return str(value)
    return f"{value:.2f}" if abs(value) >= 1e6 else f"{value:.6g}"


def _sigma(noise: Any) -> str:
    return "" if noise is None else f"± {_number(noise)}"


def _cells(name: str, value: Any, noise: Any) -> list[tuple[str, str, str]]:
    """The table's rows for one statistic: (statistic, value, its noise's standard deviation)."""
    if name == "histogram" and value is not None:
        edges = value["edges"]
        return [(f"histogram [{_number(low)}, {_number(high)})", _number(n), _sigma(noise))
                for low, high, n in zip(edges, edges[1:], value["counts"], strict=False)]  # fmt: skip
    if name == "linreg" and value is not None:
        terms = [("intercept", value["intercept"], (noise or {}).get("intercept"))]
        terms += [
            (f, w, ((noise or {}).get("coefficients") or {}).get(f)) for f, w in value["coefficients"].items()
        ]
        return [(f"linreg {term}", _number(w), _sigma(n)) for term, w, n in terms]
    return [(name, _number(value), _sigma(noise))]


def _statistics(found: dict[str, Any]) -> str:
    """he.aggregate's statistics as a table, with each one's noise (with ε), and who contributed."""
    noise = found.get("noise_std") or {}
    rows = [("statistic", "value", "noise σ" if noise else "")]
    for name, value in found["statistics"].items():
        rows += _cells(name, value, noise.get(name))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    lines = [f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c}".rstrip() for a, b, c in rows]
    n = found["contributors"]
    answers = found.get("providers") or found["answers"]
    lines.append(f"{n} provider{'' if n == 1 else 's'} contributed")
    lines += [f"  {who}: {answer}" for who, answer in sorted(answers.items())]
    return "\n".join(lines)


def _sums(found: dict[str, Any]) -> str:
    """psi.sum's result: |A ∩ B|, then the sum, or a row per category the provider released."""
    lines = [f"|A ∩ B| = {found['cardinality']}"]
    if "by" not in found:
        lines.append(f"sum of {found['column']} over {found['count']} matched rows = {found['sum']}")
        return "\n".join(lines)
    rows = [(found["by"], "count", f"sum of {found['column']}")]
    rows += [(r["category"], str(r["count"]), r["sum"]) for r in found["categories"]]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines += [f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c:>{widths[2]}}" for a, b, c in rows]
    if found["withheld_categories"]:
        n = found["withheld_categories"]
        lines.append(f"{n} categor{'y' if n == 1 else 'ies'} withheld by the provider: under the offer's k")
    return "\n".join(lines)


# how a result prints for people, by its operation's result kind (policies.operations)
RESULT_LINES: dict[str, Callable[[dict[str, Any]], str]] = {
    "cardinality": lambda found: f"|A ∩ B| = {found['cardinality']}",
    "sums": lambda found: _sums(found),
    "statistics": _statistics,
    "scores": lambda found: "\n".join(
        f"{r['id']},{'not found' if r.get('not_found') else r['score']}" for r in found["scores"]
    ),
    "intersection": lambda found: "\n".join(found["intersection"]),
    # a script's released output: its table as CSV, or its JSON object
    "output": lambda found: (
        found["csv"].rstrip("\n")
        if found["format"] == "table"
        else json.dumps(found["output"], ensure_ascii=False, indent=2)
    ),
}


@job.command("list")
@pass_state
def job_list(state: State) -> None:
    """List recent jobs."""
    found = call(state, "GET", "/api/jobs")
    emit(state, found, "\n".join(_job_line(j) for j in found["jobs"]) or "no jobs")


@click.group()
def outbox() -> None:
    """Usage records waiting for delivery to the ledger."""


@outbox.command("flush")
@pass_state
def outbox_flush(state: State) -> None:
    """Deliver every due usage record now."""
    found = call(state, "POST", "/api/outbox/flush")
    emit(state, found, f"delivered {found['delivered']}, failed {found['failed']}")


@outbox.command("receipts")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="File to write.")
@pass_state
def outbox_receipts(state: State, out: Path) -> None:
    """Write this connector's receipts (JSON Lines) for `tds audit verify --receipts`."""
    found = call(state, "GET", "/api/outbox/receipts")["receipts"]
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in found), "utf-8")
    emit(state, {"file": str(out), "receipts": len(found)}, f"wrote {len(found)} receipts to {out}")


COMMANDS = [job, outbox]
