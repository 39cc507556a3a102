"""The one place that runs the docker CLI (the Compose v2 plugin included).

Everything else calls `run()` / `compose()`; tests can patch one name. Failures carry the command,
exit code and stderr (`DockerCommandError`), and a missing tool becomes a one-line fix-it
`ToolMissingError` (exit 2).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from stackctl.errors import OperationError, ToolMissingError

SETUP_HINT = "run `make setup`, or see `stackctl doctor`"


class DockerCommandError(OperationError):
    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        last = stderr.strip().splitlines()[-1] if stderr.strip() else "no output"
        super().__init__(f"`{' '.join(argv[:3])} ...` failed (exit {returncode}): {last}")


@dataclass(frozen=True)
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


def docker_binary() -> str:
    explicit = os.environ.get("STACKCTL_DOCKER")
    found = explicit or shutil.which("docker")
    if not found:
        raise ToolMissingError("the docker CLI is not installed", hint=SETUP_HINT)
    return found


def run(args: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
        check: bool = True, timeout: float | None = None, input: str | None = None) -> Result:
    """Run `docker ARGS...` and capture its output."""
    argv = [docker_binary(), *args]
    try:
        proc = subprocess.run(argv, cwd=cwd, env=dict(env) if env is not None else None, input=input,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise ToolMissingError(f"cannot run {argv[0]}", hint=SETUP_HINT) from None
    except subprocess.TimeoutExpired:
        raise OperationError(f"`docker {' '.join(args[:2])}` did not finish within {timeout:.0f} s") from None
    result = Result(argv=argv, returncode=proc.returncode, stdout=proc.stdout, stderr=proc.stderr)
    if check and proc.returncode != 0:
        raise DockerCommandError(["docker", *args], proc.returncode, proc.stderr)
    return result


@functools.cache
def compose_version() -> str:
    """The Compose v2 version string, or ToolMissingError with the fix."""
    res = run(["compose", "version", "--short"], check=False, timeout=30)
    version = res.stdout.strip()
    if res.returncode != 0 or not version:
        raise ToolMissingError("Docker Compose v2 is not installed (`docker compose version` failed)",
                               hint="install the Compose v2 CLI plugin: `make setup`")
    if not version.lstrip("v").startswith("2") and not version.lstrip("v")[:1].isdigit():
        raise ToolMissingError(f"unexpected Compose version {version!r}; stackctl needs Compose v2")
    if version.lstrip("v").split(".")[0] in ("0", "1"):
        raise ToolMissingError(f"Compose {version} is v1; stackctl needs Compose v2", hint=SETUP_HINT)
    return version


def compose(args: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
            check: bool = True, timeout: float | None = None) -> Result:
    """Run `docker compose ARGS...` (after making sure Compose v2 is there)."""
    compose_version()
    return run(["compose", *args], cwd=cwd, env=env, check=check, timeout=timeout)


def engine_info(timeout: float = 15) -> dict[str, str]:
    """Server version facts, or ToolMissingError when no engine answers."""
    res = run(["info", "--format", "{{.ServerVersion}}|{{.OperatingSystem}}|{{.Driver}}"], check=False,
              timeout=timeout)
    if res.returncode != 0 or not res.stdout.strip() or res.stdout.startswith("|"):
        detail = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "no answer"
        raise ToolMissingError(f"no Docker engine answers ({detail})",
                               hint="start one: `make setup` (Debian: apt-get install docker.io && dockerd &)")
    version, os_name, driver = (res.stdout.strip().split("|") + ["", "", ""])[:3]
    return {"server_version": version, "operating_system": os_name, "storage_driver": driver}
