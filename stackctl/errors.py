"""Typed errors. The core raises these; `stackctl.cli.main` is the one place that prints them.

Exit codes: 1 = an operation failed, 2 = bad input or usage (a file, a field, a flag).
Every message names where the problem is (file and field) and, where possible, what to do.
"""

from __future__ import annotations


class StackctlError(Exception):
    """Base error: `str(err)` is the whole one-line message shown after `Error: `."""

    exit_code = 1

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None,
                 hint: str | None = None) -> None:
        self.message = message
        self.file = file
        self.field = field
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        where = ": ".join(p for p in (self.file, self.field) if p)
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text = f"{text} ({self.hint})"
        return text


class InputError(StackctlError):
    """Bad input from the user: a profile, a Compose file, an env file, a flag. Exit 2."""

    exit_code = 2


class ProfileError(InputError):
    """A profile file is missing or does not validate."""


class ComposeFileError(InputError):
    """Docker Compose rejected the project (syntax, merge, missing required variable)."""


class EnvError(InputError):
    """An env file or env template is malformed."""


class ToolMissingError(StackctlError):
    """A required external tool (Docker engine, Compose v2, kubeconfig) is not available. Exit 2."""

    exit_code = 2


class OperationError(StackctlError):
    """Something stackctl tried to do failed (a command, an API call, a check). Exit 1."""


class SecretsError(StackctlError):
    """The secrets store cannot be opened or changed (missing key, tampering, lock). Exit 1."""
