"""`stackctl up` / `status` / `down` as a real process when the Docker engine or Compose v2 is missing:
a one-line fix-it and exit 2 (moved from tests/e2e/test_up_process.py: these need the Compose CLI, not an
engine).

These run `.venv/bin/stackctl` in a child process (a fresh Compose-version cache).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

STACKCTL = str(Path(sys.executable).parent / "stackctl")
IMAGE = "stackctl-test/busybox:latest"


def _fake_docker(tmp_path: Path, script: str) -> str:
    path = tmp_path / "fake-docker"
    path.write_text("#!/bin/sh\n" + textwrap.dedent(script))
    path.chmod(0o755)
    return str(path)


@pytest.mark.docker
@pytest.mark.parametrize("command", [["up"], ["status"], ["down"]])
def test_no_engine_is_a_one_line_fix_it_exit_2(project: Any, command: list[str], tmp_path: Path) -> None:
    project.write("compose.yaml", f"services:\n  web:\n    image: {IMAGE}\n")
    project.profile("local", "stack: upt-noengine\ncompose:\n  files: [compose.yaml]\n  env_files: []\n")
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-such-docker.sock"}
    res = subprocess.run([STACKCTL, *command], cwd=project.root, env=env, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2, res
    assert res.stderr.startswith("Error: no Docker engine answers (")
    assert "start one:" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


@pytest.mark.docker
def test_no_compose_v2_is_a_one_line_fix_it_exit_2(project: Any, tmp_path: Path) -> None:
    project.write("compose.yaml", f"services:\n  web:\n    image: {IMAGE}\n")
    project.profile("local", "stack: upt-nocompose\ncompose:\n  files: [compose.yaml]\n  env_files: []\n")
    fake = _fake_docker(tmp_path, """
        if [ "$1" = compose ]; then echo "docker: 'compose' is not a docker command." >&2; exit 1; fi
        exec docker "$@"
    """)
    res = subprocess.run([STACKCTL, "up"], cwd=project.root, env={**os.environ, "STACKCTL_DOCKER": fake},
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res
    assert res.stderr.strip() == ("Error: Docker Compose v2 is not installed (`docker compose version` failed) "
                                  "(install the Compose v2 CLI plugin: `make setup`)")
