"""`stackctl dev PROFILE [--down]`: the Compose `develop.watch` loop on a Kubernetes cluster.
Glue only: the loop is `stackctl.dev.cluster`."""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, Annotated

import typer

from stackctl.cli.common import err_console, info, load_profile, profile_names, warn

if TYPE_CHECKING:
    from stackctl.kubernetes.deploy.commands import Terminal

_OUT = threading.Lock()


def dev(
    profile: Annotated[str, typer.Argument(help="A dev profile (profiles/<name>.yaml) with a kubernetes: section and "
                                                "a namespace of its own; protected profiles are refused.",
                                           show_default=False, autocompletion=profile_names)],
    context: Annotated[str | None, typer.Option("--context", help="kubeconfig context (default: the profile's "
                                                                  "kubernetes.context, else the current one).")]
    = None,
    timeout: Annotated[float, typer.Option("--timeout", min=1, help="Seconds to wait for a rollout or a restart.")]
    = 300.0,
    down: Annotated[bool, typer.Option("--down", help="When the loop ends (Ctrl-C), also delete the dev namespace: "
                                                      "the stack and its history.")] = False,
) -> None:
    """Promote a dev profile, then sync, restart or rebuild on every change its develop.watch rules
    fire; forward the published ports to localhost and print the pods' logs. Ctrl-C ends it."""
    from stackctl.dev.cluster import DevLoop, DevOptions

    loop = DevLoop(load_profile(profile), DevOptions(context=context, timeout=timeout, down=down),
                   terminal=_terminal, say=_say, log=_log)
    try:
        loop.run()
    except KeyboardInterrupt:  # the way to end the loop: not an error worth a message
        info("stopped")
        raise typer.Exit(0) from None


def _terminal() -> Terminal:
    """Plain progress lines (never the live view): the pods' logs share the terminal."""
    from stackctl.kubernetes.deploy.commands import Terminal
    from stackctl.kubernetes.deploy.watch import LineView

    return Terminal(info=_say, warn=warn, ask=lambda _q: None,
                    open_view=lambda start: LineView(err_console(), start=start), started=time.monotonic())


def _say(text: str) -> None:
    with _OUT:
        info(text)


def _log(line: str) -> None:
    with _OUT:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
