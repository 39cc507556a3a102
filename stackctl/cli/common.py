"""Shared CLI glue: option types, consoles, output of data. Commands stay a few lines each."""

from __future__ import annotations

import enum
import functools
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from stackctl.profile import Profile


class Output(enum.StrEnum):
    text = "text"
    json = "json"
    yaml = "yaml"


def service_names(ctx: typer.Context, incomplete: str) -> list[str]:
    """Tab completion of a SERVICE argument (cheap: the raw Compose YAML)."""
    from stackctl.cli.completion import service_names as names

    return names(ctx, incomplete)


def profile_names(ctx: typer.Context, incomplete: str) -> list[str]:
    """Tab completion of a profile name (profiles/*.yaml)."""
    from stackctl.cli.completion import profile_names as names

    return names(ctx, incomplete)


ProfileOpt = Annotated[
    str,
    typer.Option("--profile", "-p", envvar="STACKCTL_PROFILE", help="Profile name (profiles/<name>.yaml).",
                 show_default=True, autocompletion=profile_names),
]
OutputOpt = Annotated[
    Output, typer.Option("--output", "-o", help="Output format for data.", case_sensitive=False)
]


# stdout into a pipe or a file has no width: a row stays on one line, so `stackctl status | grep web`
# finds all of it (rich would otherwise wrap at $COLUMNS, or 80).
PIPE_WIDTH = 4096


@functools.cache
def console() -> Console:
    from rich.console import Console

    con = Console(highlight=False, no_color=_no_color())
    if not con.is_terminal:
        con = Console(highlight=False, no_color=_no_color(), width=PIPE_WIDTH)
    return con


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, key: Sequence[str] = (),
          title: str | None = None, boxed: bool = True) -> Table:
    """The one table shape of stackctl. `key` columns (what a row is: a name, a state) are never wrapped
    nor shortened, so they stay readable at 80 columns; the others fold their text onto more lines
    when the terminal is narrow. Cells are strings or rich Text."""
    from rich import box
    from rich.table import Table

    rows = [list(r) for r in rows]
    grid = Table(title=title, title_justify="left", box=box.HEAVY_HEAD if boxed else None, pad_edge=boxed)
    for i, col in enumerate(columns):
        if col in key:
            widest = max((len(str(r[i])) for r in rows), default=0)
            grid.add_column(col, no_wrap=True, min_width=max(widest, len(col)))
        else:
            grid.add_column(col, overflow="fold")
    for r in rows:
        grid.add_row(*r)
    return grid


@functools.cache
def err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, no_color=_no_color())


def _no_color() -> bool:
    return bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"


_project_dir: Path | None = None


def set_project_dir(path: Path | None) -> None:
    """Set by the root callback from `--project-dir`/`-C` (or STACKCTL_PROJECT_DIR)."""
    global _project_dir
    _project_dir = path.resolve() if path is not None else None


def project_root() -> Path:
    """The project root for this invocation (`--project-dir`, else found upwards from cwd)."""
    from stackctl.profile import find_project_root

    return _project_dir if _project_dir is not None else find_project_root()


def load_profile(name: str) -> Profile:
    from stackctl.profile import load_profile as _load

    return _load(project_root(), name)


def emit(data: Any, output: Output, *, text: Any = None) -> None:
    """Print data as JSON or YAML (deterministic), or `text` (a rich renderable / str) for humans."""
    if output is Output.json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    elif output is Output.yaml:
        from stackctl.output import dump_yaml

        sys.stdout.write(dump_yaml(data))
        sys.stdout.flush()
    else:
        console().print(text if text is not None else data)


def warn(message: str) -> None:
    err_console().print(f"[yellow]Warning:[/] {message}", highlight=False, soft_wrap=True, markup=True)


def info(message: str) -> None:
    err_console().print(message, highlight=False, soft_wrap=True)
