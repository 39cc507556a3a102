"""The fast path of the command line: a plain `stackctl [-C DIR] render kubernetes [options]` is
parsed here and run without importing typer, click or rich (issue 15: importing typer and building
the command tree alone cost more than kompose's whole run of a small project).

Only command lines whose meaning is certain are taken: the exact words `render kubernetes`, the
options below, each given once or more as `--name VALUE`, `-x VALUE` or `--name=VALUE`, with a
value that is not empty and does not start with `-`. Anything else — `--help`, an unknown or
misspelt option, a missing value, an argument, `--`, a value typer would refuse — returns False
and the typer app parses it, so its messages and exit codes stay the only ones. What typer would do
around the command is done here the same way: the root callback (`--project-dir`), the
environment variables of the options, exit 0 after the command, exit 130 on Ctrl-C, exit 1 on a
closed pipe or end of input.

tests/cli/test_cli_fast.py holds the table below to the typer command (a new option there fails
the test until it is added here) and the output of both paths to each other.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Any

# name on the command line -> parameter of stackctl.cli.rendering.kubernetes; the values are str
ROOT_OPTIONS = {"--project-dir": "project_dir", "-C": "project_dir"}
ROOT_ENVVARS = {"project_dir": "STACKCTL_PROJECT_DIR"}
RENDER_OPTIONS = {
    "--profile": "profile", "-p": "profile",
    "--output": "output", "-o": "output",
    "--out-dir": "out_dir", "-d": "out_dir",
    "--format": "fmt",
    "--kube-version": "kube_version",
}
RENDER_FLAGS = {"--validate": "validate", "--strict": "strict", "--report": "report",
                "--include-secrets": "include_secrets"}
RENDER_ENVVARS = {"profile": "STACKCTL_PROFILE"}
PATHS = frozenset({"project_dir", "out_dir"})
FORMATS = ("yaml", "kustomize")


def parse(args: list[str]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(root options, render options) of a plain `render kubernetes` command line, converted as typer
    would; None when typer has to parse it."""
    root: dict[str, Any] = {}
    i = _options(args, 0, ROOT_OPTIONS, {}, root, stop_at_word=True)
    if i is None or args[i:i + 2] != ["render", "kubernetes"]:
        return None
    opts: dict[str, Any] = {}
    if _options(args, i + 2, RENDER_OPTIONS, RENDER_FLAGS, opts, stop_at_word=False) != len(args):
        return None
    for values, envvars in ((root, ROOT_ENVVARS), (opts, RENDER_ENVVARS)):
        for name, var in envvars.items():
            if name not in values and os.environ.get(var):  # click: an empty variable is unset
                values[name] = os.environ[var]
    for values in (root, opts):
        for name in PATHS & values.keys():
            path = _path(values[name])
            if path is None:
                return None
            values[name] = path
    if "fmt" in opts:
        if opts["fmt"] not in FORMATS:
            return None
        from stackctl.cli.rendering import Format

        opts["fmt"] = Format(opts["fmt"])
    return root, opts


def _options(args: list[str], i: int, valued: dict[str, str], flags: dict[str, str], out: dict[str, Any], *,
             stop_at_word: bool) -> int | None:
    """Read options from args[i]; the index after them (at the first word when `stop_at_word`), or None."""
    while i < len(args):
        token = args[i]
        if not token.startswith("-") or token == "-":
            return i if stop_at_word else None
        if token.startswith("--") and "=" in token:
            name, value = token.split("=", 1)
            if name not in valued or not value:
                return None
            out[valued[name]] = value
            i += 1
        elif token in flags:
            out[flags[token]] = True
            i += 1
        elif token in valued and i + 1 < len(args) and args[i + 1] and not args[i + 1].startswith("-"):
            out[valued[token]] = args[i + 1]
            i += 2
        else:
            return None
    return i


def _path(value: str) -> Path | None:
    """typer's Path parameter: any path, but one that exists must be readable."""
    try:
        os.stat(value)
    except (OSError, ValueError):
        return Path(value)
    return Path(value) if os.access(value, os.R_OK) else None


def run(args: list[str]) -> bool:
    """Run a plain `render kubernetes` and exit as typer would (SystemExit); False: not one."""
    parsed = parse(args)
    if parsed is None:
        return False
    root, opts = parsed
    from stackctl.cli import base, rendering

    try:
        base.set_project_dir(root.get("project_dir"))
        rendering.kubernetes(**opts)
    except EOFError:
        sys.stderr.write("\n")
        sys.stderr.write("Aborted!\n")
        sys.stderr.flush()
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        from typer._click.utils import PacifyFlushWrapper

        sys.stdout = PacifyFlushWrapper(sys.stdout)  # as typer does: a closed pipe no longer raises on flush
        sys.stderr = PacifyFlushWrapper(sys.stderr)
        sys.exit(1)
    sys.exit(0)
