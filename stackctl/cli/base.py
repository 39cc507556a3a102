"""The CLI glue that needs neither typer nor rich: the consoles (rich, imported on first use), the
messages on stderr, the project directory of this invocation.

`render kubernetes` runs without importing typer (stackctl/cli/fast.py), and a message on stderr
is written without importing rich when rich would print exactly the text given: no markup, no
emoji code, no control character, and no style — or styles that rich would not show, because
stderr is not a terminal. Anything else goes through rich, as before (tests/unit/test_cli_fast.py
holds the plain writer to rich's output).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from stackctl.profile import Profile

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


@functools.cache
def err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, no_color=_no_color())


def _no_color() -> bool:
    return bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"


def plain_text(message: str) -> bool:
    """True when rich prints `message` as it is (markup and emoji codes on, soft wrap): it holds no
    `[` before a letter, `#`, `/` or `@` (what could open a markup tag: `["5432"]` cannot) or after a
    backslash (an escape), no two
    colons without a space between them (an emoji code such as `:warning:`), no control character
    but a newline (rich strips some, expands tabs)."""
    if "\\[" in message:
        return False
    start = message.find("[")
    while start != -1:
        follower = message[start + 1:start + 2]
        if follower.isalpha() or follower in ("#", "/", "@"):
            return False
        start = message.find("[", start + 1)
    for ch in message:
        code = ord(ch)
        if (code < 32 and ch != "\n") or 0x7F <= code <= 0x9F:
            return False
    return ":" not in message or all(word.count(":") < 2 for word in message.split())


def _err_terminal() -> bool:
    """Would rich treat stderr as a terminal (and so show styles)? Its own rules, conservatively:
    TTY_COMPATIBLE, FORCE_COLOR, then isatty()."""
    tty_compatible = os.environ.get("TTY_COMPATIBLE", "")
    if tty_compatible in ("0", "1"):
        return tty_compatible == "1"
    if os.environ.get("FORCE_COLOR") is not None:
        return True
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return True if isatty is None else bool(isatty())
    except ValueError:
        return True


def _write_err(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def say(message: str) -> None:
    """`message` on stderr, no markup (rich still replaces emoji codes: the plain path checks)."""
    if plain_text(message):
        _write_err(message + "\n")
    else:
        err_console().print(message, highlight=False, soft_wrap=True, markup=False)


def styled(label: str, style: str, message: str) -> None:
    """`label` in `style`, a space, then `message` (rich markup allowed) on stderr."""
    if plain_text(message) and not _err_terminal():
        _write_err(f"{label} {message}\n")
    else:
        err_console().print(f"[{style}]{label}[/] {message}", highlight=False, soft_wrap=True, markup=True)


def warn(message: str) -> None:
    styled("Warning:", "yellow", message)


def info(message: str) -> None:
    if plain_text(message):
        _write_err(message + "\n")
    else:
        err_console().print(message, highlight=False, soft_wrap=True)


def escape(text: str) -> str:
    """rich.markup.escape, without importing rich when there is nothing to escape."""
    if "[" not in text and "\\" not in text:
        return text
    from rich.markup import escape as rich_escape

    return rich_escape(text)


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
