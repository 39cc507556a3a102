"""`stackctl up` as a real process: Ctrl-C mid-probe (a missing engine / Compose v2 is in
tests/cli/test_docker_missing.py).

This runs `.venv/bin/stackctl` in a child process (signals, a fresh Compose-version cache).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

STACKCTL = str(Path(sys.executable).parent / "stackctl")
IMAGE = "stackctl-test/busybox:latest"


def _docker_children_of(container_id: str) -> list[str]:
    """Host processes whose command line names the container (e.g. a `docker exec` probe)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if container_id in cmd and "docker" in cmd.split(" ", 1)[0]:
            found.append(f"{proc.name}: {cmd}")
    return found


def _probes_running(container_id: str) -> bool:
    """Whether the healthcheck command (`sleep 4`) runs in the container right now."""
    top = subprocess.run(["docker", "top", container_id], capture_output=True, text=True).stdout
    return any(line.rstrip().endswith(" sleep 4") for line in top.splitlines()[1:])


@pytest.fixture
def named(project: Any) -> Iterator[str]:
    name = f"upt-{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        subprocess.run(["docker", "compose", "-p", name, "down", "-v", "--remove-orphans", "-t", "0"],
                       capture_output=True)


@pytest.mark.docker
@pytest.mark.engine
def test_ctrl_c_stops_probing_and_leaves_no_docker_process(project: Any, named: str) -> None:
    project.write("compose.yaml", f"""
        services:
          slow:
            image: {IMAGE}
            stop_signal: SIGKILL
            command: ["sleep", "600"]
            healthcheck:
              test: ["CMD-SHELL", "sleep 4; exit 1"]
              interval: 30s
              timeout: 20s
          after:
            image: {IMAGE}
            command: ["sleep", "600"]
            depends_on: {{slow: {{condition: service_healthy}}}}
    """)
    project.profile("local", f"stack: {named}\ncompose:\n  files: [compose.yaml]\n  env_files: []\n")
    proc = subprocess.Popen([STACKCTL, "up"], cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    lines = []
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        lines.append(line)
        if not line or ("slow" in line and "probing" in line):
            break
    assert any("probing" in ln for ln in lines), lines
    cid = subprocess.run(["docker", "ps", "-q", "--no-trunc", "--filter", f"label=com.docker.compose.project={named}",
                          "--filter", "label=com.docker.compose.service=slow"], capture_output=True,
                         text=True).stdout.strip()
    time.sleep(0.5)
    assert _probes_running(cid), "expected a probe (sleep 4) in flight"
    proc.send_signal(signal.SIGINT)  # to stackctl only, not its process group: it must end its probes
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "interrupted: containers started so far keep running" in err
    assert "Traceback" not in err
    assert _docker_children_of(cid) == []  # no `docker` CLI child left behind
    # stackctl did not wait for the probe: it is still running in the container (as after a killed
    # `docker exec`: Docker cannot stop an exec)
    assert _probes_running(cid)
    # Left as Compose would leave them: slow still running, the dependent never started.
    ps = subprocess.run(["docker", "compose", "-p", named, "ps", "-a", "--format", "{{.Service}} {{.State}}"],
                        capture_output=True, text=True).stdout.split("\n")
    assert sorted(p for p in ps if p) == ["after created", "slow running"]
