"""`stackctl init`: scaffold profiles and an annotated .env.example from an existing Compose project."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stackctl.cli.common import Output, OutputOpt, console, emit, project_root


def init(
    compose: Annotated[list[Path] | None, typer.Option(
        "--compose", "-f", help="Compose file(s) to start from (default: compose.yaml or docker-compose.yml).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing profiles and .env.example.")] = False,
    output: OutputOpt = Output.text,
) -> None:
    """Scaffold profiles/local.yaml, profiles/production.yaml and an annotated .env.example."""
    from stackctl.scaffold import apply, plan, secret_kind

    root = project_root()
    the_plan = plan(root, compose or [])
    written = apply(root, the_plan, force=force)
    secrets = [v.name for v in the_plan.variables if secret_kind(v.name)[0]]
    if output is not Output.text:
        emit({"written": [str(rel) for rel in written], "variables": [v.name for v in the_plan.variables],
              "likely_secrets": secrets}, output)
        return
    out = console()
    for rel in written:
        out.print(f"wrote {rel}")
    out.print(f"{len(the_plan.variables)} variables found in the Compose files"
              + (f"; likely secrets: {', '.join(secrets)}" if secrets else ""))
    out.print("next: review .env.example, then `stackctl secrets generate` and `stackctl env render`")
