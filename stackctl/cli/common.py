"""Shared CLI glue: option types, consoles, output of data. Commands stay a few lines each."""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

# The typer-free part lives in base (the render fast path imports it alone); re-exported here.
from stackctl.cli.base import PIPE_WIDTH as PIPE_WIDTH
from stackctl.cli.base import console as console
from stackctl.cli.base import err_console as err_console
from stackctl.cli.base import info as info
from stackctl.cli.base import load_profile as load_profile
from stackctl.cli.base import project_root as project_root
from stackctl.cli.base import set_project_dir as set_project_dir
from stackctl.cli.base import warn as warn

if TYPE_CHECKING:
    from rich.table import Table


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
