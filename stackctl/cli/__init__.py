"""The command line. `main()` is the one error boundary: the core raises typed errors, this prints
`Error: ...` on stderr and exits 1 (operation failed) or 2 (bad input/usage) — no traceback for a
user mistake. Set STACKCTL_DEBUG=1 to see the traceback of an unexpected error.

`stackctl --help` (and bare `stackctl`) is answered from a pre-rendered copy of the typer help
(stackctl/data/help.txt) without importing typer: that import alone costs ~3 times a Go CLI's whole
start-up. A test regenerates the text from the real typer app and fails when the copy is stale
(refresh it with `python -m stackctl.cli.helpgen`). Likewise a plain `stackctl render kubernetes`
is parsed by stackctl/cli/fast.py and runs without typer; anything else (and STACKCTL_NO_FAST_PATH=1)
goes through the typer app.
"""

from __future__ import annotations

import contextlib
import os
import sys

from stackctl import codecache

_HELP_ARGS: tuple[list[str], ...] = (["--help"], ["-h"], [])


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    completing = "_STACKCTL_COMPLETE" in os.environ  # a Tab press: the words are in the environment
    if not completing and args in _HELP_ARGS and _fast_help(bare=not args):
        return
    if completing:
        from stackctl.cli.completion import init

        init()
    args = _completion_shell_optional(args)

    from stackctl.errors import StackctlError

    try:
        if completing or os.environ.get("STACKCTL_NO_FAST_PATH") or not _fast_path(args):
            from stackctl.cli.app import app

            app(args=args, prog_name="stackctl")
    except StackctlError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except BrokenPipeError:
        # `stackctl config | head`: the reader went away; that is not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
    except SystemExit:
        raise
    except Exception as exc:  # a bug in stackctl: say so, keep the traceback behind a switch
        if os.environ.get("STACKCTL_DEBUG"):
            raise
        _fail(f"internal error: {type(exc).__name__}: {exc} (set STACKCTL_DEBUG=1 for the traceback)", 1)


def run() -> None:
    """The `stackctl` program: `main()`, then out at once. Python's interpreter shutdown (tearing
    down every module, joining nothing: the threads still reading engine events are daemons) costs
    ~30 ms per command and does nothing for us: output is flushed here, files are written
    atomically and closed, and the one exit handler stackctl may register (codecache.save) is
    called here. `main()` itself stays a plain
    function (the tests call it in-process).

    A plain `render kubernetes` whose inputs are all unchanged since the last such run is answered
    from the result cache (stackctl/cli/resultcache.py) without running it."""
    args = sys.argv[1:]
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:  # started with the descriptor closed (`>&-`): Python gives None
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115  # lives as long as the process
    code = None
    if "render" in args and "kubernetes" in args:  # the only command the result cache answers
        from stackctl.cli import resultcache

        if resultcache.enabled():
            replayed = resultcache.replay(args)
            if replayed is not None:
                os._exit(replayed)
            if resultcache.recordable(args):
                code = resultcache.record(args, _run_main)
    if code is None:
        code = _run_main()
    # what stackctl/codecache.py compiled this run (exit handlers do not run after os._exit); after the
    # result cache's recording, which stores only runs that wrote nothing
    codecache.save()
    os._exit(code)


def _run_main() -> int:
    """`main()` with its exit code (a message, as sys.exit("...") gives, is written to stderr: 1)."""
    code: int | str | None = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BrokenPipeError, OSError, ValueError):  # the reader is gone or closed it
                stream.flush()
    if code is None:
        return 0
    if not isinstance(code, int):
        sys.stderr.write(f"{code}\n")
        sys.stderr.flush()
        return 1
    return code


_SHELL_OPTIONS = ("--show-completion", "--install-completion")


def _completion_shell_optional(args: list[str]) -> list[str]:
    """`--show-completion` alone means "the current shell": typer's click has no options with an
    optional value, so the empty value ("detect") is filled in here. Only among the root options
    (before the command name), where these two live."""
    out = list(args)
    i = 0
    while i < len(out) and out[i].startswith("-"):
        if out[i] in ("-C", "--project-dir"):
            i += 1  # its value
        elif out[i] in _SHELL_OPTIONS and (i + 1 == len(out) or out[i + 1].startswith("-")):
            out.insert(i + 1, "")
        i += 1
    return out


def _fast_help(*, bare: bool) -> bool:
    """Print the pre-rendered top-level help when it is exactly what typer would print.

    Click wraps help at min(terminal width, 80) - 2 columns, so the copy (rendered at 80) is exact
    for any terminal at least 80 wide; narrower terminals fall through to typer.
    """
    from shutil import get_terminal_size

    if get_terminal_size().columns < 80 or os.environ.get("STACKCTL_NO_FAST_HELP"):
        return False
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "help.txt")
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError:
        return False
    if bare:  # like typer's no_args_is_help: the help goes to stderr and the exit code is 2
        sys.stderr.write(text)
        sys.exit(2)
    sys.stdout.write(text)
    sys.stdout.flush()
    return True


def _fast_path(args: list[str]) -> bool:
    """A plain `render kubernetes` runs without typer (stackctl/cli/fast.py); False: typer parses it."""
    from stackctl.cli import fast

    return fast.run(args)


def _fail(message: str, code: int) -> None:
    from stackctl.cli.base import styled

    styled("Error:", "bold red", message)
    sys.exit(code)
