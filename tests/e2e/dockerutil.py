"""Docker queries shared by the engine tier's tests (imported as `dockerutil`: tests/e2e is on
sys.path as the test files' own directory, the folders are not packages)."""

from __future__ import annotations

import subprocess


def docker_run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The Docker CLI, output captured (for tests that look at the exit code or stderr too)."""
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


def docker(*args: str, check: bool = True) -> str:
    return docker_run(*args, check=check).stdout


def labelled(kind: str, project: str) -> list[str]:
    """IDs of containers / networks / volumes that carry the project's Compose label."""
    flt = f"label=com.docker.compose.project={project}"
    if kind == "container":
        return docker("ps", "-a", "-q", "--filter", flt).split()
    return docker(kind, "ls", "-q", "--filter", flt).split()
