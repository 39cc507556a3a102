"""The typer application: one module per command group, registered here.

Command modules import only typer and stackctl's light modules at import time; anything heavy
(the Kubernetes client, cryptography, yaml, rich) is imported inside the command that needs it,
so `stackctl --help` costs little more than typer itself (bench/run.py startup measures it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stackctl import __version__
from stackctl.cli import completion, examples
from stackctl.cli import config as config_cmd
from stackctl.cli import dev as dev_cmd
from stackctl.cli import doctor as doctor_cmd
from stackctl.cli import env as env_cmd
from stackctl.cli import init as init_cmd
from stackctl.cli import previews as previews_cmd
from stackctl.cli import promote as promote_cmd
from stackctl.cli import render as render_cmd
from stackctl.cli import secrets as secrets_cmd
from stackctl.cli import up as up_cmd

app = typer.Typer(
    name="stackctl",
    help="One stack definition from a laptop to a Kubernetes cluster: env files and secrets, "
    "a health-gated local stack, promotion to Kubernetes.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,  # stackctl's own options take the shell as a value (cli/completion.py)
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"stackctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    project_dir: Annotated[
        Path | None,
        typer.Option("--project-dir", "-C", envvar="STACKCTL_PROJECT_DIR",
                     help="Project root (the directory holding profiles/). Default: found upwards from cwd."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
    install_completion: Annotated[
        str | None, typer.Option("--install-completion", metavar="[SHELL]",
                                 callback=completion.install, expose_value=False, is_eager=True,
                                 help="Install Tab completion for bash, zsh or fish (default: the current shell).")
    ] = None,
    show_completion: Annotated[
        str | None, typer.Option("--show-completion", metavar="[SHELL]",
                                 callback=completion.show, expose_value=False, is_eager=True,
                                 help="Print the Tab completion script for bash, zsh or fish (default: the "
                                      "current shell), to source from the shell's rc file.")
    ] = None,
) -> None:
    from stackctl.cli import common

    common.set_project_dir(project_dir)


app.command("config")(config_cmd.config)
app.command("init")(init_cmd.init)
app.command("doctor")(doctor_cmd.doctor)
app.add_typer(env_cmd.app, name="env")
app.add_typer(secrets_cmd.app, name="secrets")
app.command("up")(up_cmd.up)
app.command("down")(up_cmd.down)
app.command("status")(up_cmd.status)
app.command("logs")(up_cmd.logs)
app.command("restart")(up_cmd.restart)
app.add_typer(render_cmd.app, name="render")
app.command("promote")(promote_cmd.promote)
app.command("history")(promote_cmd.history)
app.command("rollback")(promote_cmd.rollback)
app.command("run-job")(promote_cmd.run_job)
app.add_typer(previews_cmd.app, name="previews")
app.command("dev")(dev_cmd.dev)
examples.attach(app)
