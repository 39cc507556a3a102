"""The command line. `main()` is the one error boundary: the core raises typed errors, this prints
`Error: ...` on stderr and exits 1 (operation failed) or 2 (bad input/usage) — no traceback for a
user mistake. Set STACKCTL_DEBUG=1 to see the traceback of an unexpected error.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    from stackctl.cli.app import app
    from stackctl.errors import StackctlError

    try:
        app(args=argv, prog_name="stackctl")
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


def _fail(message: str, code: int) -> None:
    from stackctl.cli.common import err_console

    err_console().print(f"[bold red]Error:[/] {message}", markup=True, highlight=False, soft_wrap=True)
    sys.exit(code)
