"""The ``tds`` command line: the root group, the command modules of tds.commands, and the one
place where errors become messages and exit codes.

Exit codes: 0 success; 1 an error (refused request, unreachable node, bad configuration);
2 a usage error; 3 a job was denied; 4 a job failed; 5 a job's result was withheld; 6 ``tds status``
found problems that need action.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from contracts.errors import ContractError
from node.clock import ClockError
from node.config import PRIVATE_UMASK, ConfigError
from node.db import DatabaseURLError
from node.problems import Problem
from policies.errors import PolicyError
from sandbox.errors import SandboxError
from tds.commands import (
    audit,
    catalog,
    connector,
    contracts,
    datasets,
    demo,
    jobs,
    ready,
    reviews,
    sandbox,
    settlement,
    space,
    status,
)
from tds.commands.common import State
from tds.errors import ApiError, TdsError

# The root of every package's errors, caught here and only here: the message says what was wrong
# and what would be accepted; the exit code is the error's own (tds.errors) or 1.
FAILURES: tuple[type[Exception], ...] = (
    TdsError,  # tds.errors: ApiError, JobEnded
    ContractError,
    PolicyError,
    SandboxError,
    ConfigError,  # and connectors.setup.SetupError
    DatabaseURLError,
    ClockError,
    Problem,  # the services' own errors (connectors.errors, space.errors) when run in this process
)

MODULES = (
    space,
    connector,
    datasets,
    catalog,
    contracts,
    jobs,
    reviews,
    audit,
    settlement,
    sandbox,
    demo,
    ready,
    status,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tds", message="tds %(version)s")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    envvar="TDS_DATA_DIR",
    default=Path("."),
    show_default=True,
    help="The node's data directory (env TDS_DATA_DIR).",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON (errors too, on stderr).")
@click.option("-v", "--verbose", is_flag=True, help="Log every outgoing HTTP request of a serving node.")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path, as_json: bool, verbose: bool) -> None:
    """TDS: a trusted data space with privacy-preserving compute."""
    state = ctx.ensure_object(State)  # main's; a command's own --data-dir, parsed after this, wins
    state.data_dir = data_dir
    state.as_json = state.as_json or as_json
    state.verbose = state.verbose or verbose


for module in MODULES:
    for command in module.COMMANDS:
        cli.add_command(command)


# The global options, accepted after any command as well as before it (``tds demo --json``,
# ``tds job list --data-dir bank``), as people type them for gh and kubectl: every leaf command
# gets them, and each sets the one State the root made. A leaf's own option of that name wins.
def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(State).as_json = True


def _set_verbose(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(State).verbose = True


def _set_data_dir(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.ensure_object(State).data_dir = value


GLOBAL_AFTER = (
    (["--json"], _set_json, {"is_flag": True}, "Print machine-readable JSON (also before the command)."),
    (["-v", "--verbose"], _set_verbose, {"is_flag": True},
     "Log outgoing HTTP requests (also before the command)."),
    (["--data-dir"], _set_data_dir, {"type": click.Path(path_type=Path)},
     "The node's data directory (also before the command)."),
)  # fmt: skip


def _accept_globals_after(group: click.Group) -> None:
    for command in group.commands.values():
        if isinstance(command, click.Group):
            _accept_globals_after(command)
            if not command.invoke_without_command:  # a group that acts itself (tds space token) is a leaf too
                continue
        taken = {opt for p in command.params for opt in getattr(p, "opts", ())}
        for opts, callback, kind, text in GLOBAL_AFTER:
            if not taken & set(opts):
                command.params.append(
                    click.Option(opts, expose_value=False, callback=callback, help=text, **kind)
                )


_accept_globals_after(cli)


def _fail(state: State, message: str, code: int, **extra: object) -> None:
    """One error on stderr: a line for a person, or under --json one JSON object with the exit
    code and, for a refused request, the node's RFC 9457 problem (its HTTP status among it)."""
    if state.as_json:
        click.echo(json.dumps({"error": message, "exit_code": code, **extra}, ensure_ascii=False), err=True)
    else:
        click.echo(f"error: {message}", err=True)
    sys.exit(code)


def main() -> None:
    os.umask(PRIVATE_UMASK)  # every file and folder a node or the CLI creates is the owner's alone
    # made here, not by the root's callback, so that an error raised before or after the callback
    # knows whether --json was asked for (before the command, or after it)
    state = State(Path("."), "--json" in sys.argv[1 : sys.argv.index("--") if "--" in sys.argv else None])
    try:
        cli.main(standalone_mode=False, obj=state)
    except click.exceptions.Abort:
        _fail(state, "aborted", 130)
    except click.ClickException as exc:
        if not state.as_json:
            exc.show()
            sys.exit(exc.exit_code)
        _fail(state, exc.format_message(), exc.exit_code)
    except FAILURES as exc:
        code = getattr(exc, "exit_code", 1)
        refused = exc if isinstance(exc, ApiError) else exc.__cause__  # a job's end read as a refusal
        if isinstance(refused, ApiError) and refused.status:
            _fail(state, str(exc), code, status=refused.status, problem=refused.problem)
        _fail(state, str(exc), code)


if __name__ == "__main__":
    main()
