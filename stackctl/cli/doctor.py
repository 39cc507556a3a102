"""`stackctl doctor`: check the tools and targets a profile needs, and say how to fix each problem."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from stackctl.cli.common import Output, OutputOpt, ProfileOpt, emit, project_root, table

if TYPE_CHECKING:
    from stackctl.doctor import Check


def doctor(profile: ProfileOpt = "local", output: OutputOpt = Output.text,
           offline: Annotated[bool, typer.Option("--offline", help="Do not contact the cluster.")] = False) -> None:
    """Check the Docker engine, Compose v2, the profile, and its kubeconfig context; exit 1 on a failure."""
    from dataclasses import asdict

    from stackctl.doctor import run_checks

    checks = run_checks(project_root(), profile, reach_cluster=not offline)
    emit([asdict(c) for c in checks], output, text=_table(checks) if output is Output.text else None)
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(1)


def _table(checks: list[Check]) -> object:
    from rich.text import Text

    marks = {"ok": "green", "warn": "yellow", "fail": "red", "skip": "dim"}
    return table(("check", "status", "detail", "fix"),
                 ((c.name, Text(c.status.upper() if c.status == "fail" else c.status, style=marks[c.status]),
                   c.detail, c.fix) for c in checks), key=("check", "status"))
