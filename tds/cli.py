"""The ``tds`` command line: the root group, the command modules of tds.commands, and the one
place where errors become messages and exit codes.

Exit codes: 0 success; 1 an error (refused request, unreachable node, bad configuration);
2 a usage error; 3 a job was denied; 4 a job failed; 5 a job's result was withheld.
"""

from __future__ import annotations

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
    reviews,
    sandbox,
    settlement,
    space,
)
from tds.commands.common import State
from tds.errors import TdsError

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

MODULES = (space, connector, datasets, catalog, contracts, jobs, reviews, audit, settlement, sandbox, demo)


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
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path, as_json: bool) -> None:
    """TDS: a trusted data space with privacy-preserving compute."""
    ctx.obj = State(data_dir, as_json)


for module in MODULES:
    for command in module.COMMANDS:
        cli.add_command(command)


def _json_here(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    state = ctx.find_object(State)  # made by the group's callback, before this command's options
    if value and state is not None:
        state.as_json = True


def _accept_json_after(group: click.Group) -> None:
    """``--json`` after any command as well as before it (``tds demo --json``), as people type
    it for gh and kubectl: every leaf command gets the option, which sets the one flag."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            _accept_json_after(command)
        elif not any("--json" in getattr(p, "opts", ()) for p in command.params):
            command.params.append(
                click.Option(["--json"], is_flag=True, expose_value=False, callback=_json_here,
                             help="Print machine-readable JSON (also accepted before the command).")
            )  # fmt: skip


_accept_json_after(cli)


def main() -> None:
    os.umask(PRIVATE_UMASK)  # every file and folder a node or the CLI creates is the owner's alone
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FAILURES as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(getattr(exc, "exit_code", 1))


if __name__ == "__main__":
    main()
