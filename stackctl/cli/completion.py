"""Shell completion (bash, zsh, fish): commands and options come from click; profile and service names
from the project on disk.

A Tab press runs stackctl once, so the candidates must be cheap: profile names are the file names
of profiles/*.yaml, service names the `services:` keys of the profile's Compose files read as raw
YAML (no `docker compose config`, no profile validation). Anything unreadable yields no candidates,
never an error: a completion must not print into the user's command line.

typer's own `--show-completion` is a flag that detects the shell from the parent process, so
`--show-completion zsh` printed the bash script; stackctl declares both options itself, taking the
shell as an optional value (bash, zsh, fish; detected when omitted).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

SHELLS = ("bash", "zsh", "fish")
PROG = "stackctl"
COMPLETE_VAR = "_STACKCTL_COMPLETE"


def _root(ctx: typer.Context) -> Path:
    """The project root as the command would see it: -C/--project-dir (or its env var), else upwards."""
    given = ctx.find_root().params.get("project_dir")
    if given:
        return Path(given).resolve()
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "profiles").is_dir():
            return candidate
    return here


def profile_names(ctx: typer.Context, incomplete: str) -> list[str]:
    """Profiles of the project: profiles/<name>.yaml."""
    try:
        names = sorted(p.stem for p in (_root(ctx) / "profiles").glob("*.yaml"))
    except OSError:
        return []
    return [n for n in names if n.startswith(incomplete)]


def service_names(ctx: typer.Context, incomplete: str) -> list[str]:
    """Services of the profile's Compose files (the raw YAML; `-p` as typed, else the default)."""
    root = _root(ctx)
    profile = ctx.params.get("profile") or os.environ.get("STACKCTL_PROFILE") or "local"
    names: set[str] = set()
    try:
        from stackctl.compose import yaml as compose_yaml

        data = compose_yaml.load((root / "profiles" / f"{profile}.yaml").read_text(encoding="utf-8"))
        files = data["compose"]["files"]
        for rel in files if isinstance(files, list) else [files]:
            doc = compose_yaml.load((root / str(rel)).read_text(encoding="utf-8"))
            services = doc.get("services") if isinstance(doc, dict) else None
            if isinstance(services, dict):
                names.update(str(name) for name in services)
    except Exception:  # an unreadable or half-edited file: no candidates, and nothing printed
        return []
    taken = set(ctx.params.get("services") or ())
    return sorted(n for n in names if n.startswith(incomplete) and n not in taken)


def _shell(value: str) -> str:
    if value:
        if value not in SHELLS:
            raise typer.BadParameter(f"{value!r} is not a supported shell (expected one of: {', '.join(SHELLS)})")
        return value
    from typer._completion_shared import _get_shell_name

    detected = _get_shell_name()
    if detected not in SHELLS:
        raise typer.BadParameter(f"cannot tell which shell this is; name it: one of {', '.join(SHELLS)}")
    return str(detected)


def show(ctx: typer.Context, param: Any, value: str | None) -> None:
    """`--show-completion [SHELL]`: print the script (source it from the shell's rc file)."""
    if value is None or ctx.resilient_parsing:
        return
    from typer._completion_shared import get_completion_script

    typer.echo(get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=_shell(value)))
    raise typer.Exit()


def install(ctx: typer.Context, param: Any, value: str | None) -> None:
    """`--install-completion [SHELL]`: write the script where the shell reads it."""
    if value is None or ctx.resilient_parsing:
        return
    from typer._completion_shared import install as typer_install

    shell, path = typer_install(shell=_shell(value), prog_name=PROG, complete_var=COMPLETE_VAR)
    typer.echo(f"{shell} completion installed in {path}; it takes effect in a new shell")
    raise typer.Exit()


def init() -> None:
    """Register typer's completion classes (the scripts it prints speak their protocol)."""
    from typer._completion_classes import completion_init

    completion_init()
