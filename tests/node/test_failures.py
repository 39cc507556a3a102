"""Failures that are real, not simulated: each rollout below can never finish on a real node, and
`stackctl promote` must name the workload and the reason within seconds, not after its --timeout.
Each test promotes a small stack (busybox images built locally and pushed to the node's registry)
into a namespace of its own."""

from __future__ import annotations

import os
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.k8s, pytest.mark.node, pytest.mark.slow]

STACKCTL = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "stackctl"
TIMEOUT = "300"  # far beyond what fail-fast needs: the test asserts it is not waited out
FAST = 90  # seconds: generous for a loaded 2-core CI machine, far below TIMEOUT


@pytest.fixture
def small(node_cluster: Any, tmp_path: Path) -> Any:
    namespace = f"fail-{uuid.uuid4().hex[:6]}"
    root = tmp_path / "proj"
    (root / "app").mkdir(parents=True)
    (root / "profiles").mkdir()
    (root / "app" / "Dockerfile").write_text("FROM stackctl-test/busybox:latest\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\"]\n")
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "NO_COLOR": "1", "COLUMNS": "160",
           "KUBECONFIG": str(node_cluster.kubeconfig)}
    real_docker = Path(os.path.expanduser("~")) / ".docker"
    if real_docker.is_dir():
        env["DOCKER_CONFIG"] = str(real_docker)

    class Small:
        def write(self, service: str, profile_extra: str = "") -> None:
            (root / "compose.yaml").write_text("name: fail\nservices:\n" + textwrap.indent(
                textwrap.dedent(service).strip("\n"), "  ") + "\n")
            (root / "profiles" / "dev.yaml").write_text(textwrap.dedent(f"""\
                stack: fail
                compose: {{files: [compose.yaml], env_files: []}}
                kubernetes:
                  context: stackctl-test
                  namespace: {namespace}
                  registry: {node_cluster.registry}/fail
                """) + textwrap.dedent(profile_extra))

        def promote(self) -> tuple[Any, float]:
            import subprocess

            t0 = time.monotonic()
            proc = subprocess.run([str(STACKCTL), "promote", "dev", "--timeout", TIMEOUT], cwd=root, env=env,
                                  capture_output=True, text=True, timeout=600)
            return proc, time.monotonic() - t0

    try:
        yield Small()
    finally:
        node_cluster.plane.request("DELETE", f"/api/v1/namespaces/{namespace}")


def failed_fast(res: Any, elapsed: float, *needles: str) -> None:
    assert res.returncode == 1, f"exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    for needle in needles:
        assert needle in res.stderr, f"{needle!r} not in:\n{res.stderr}"
    assert elapsed < FAST, f"diagnosed after {elapsed:.0f}s (--timeout {TIMEOUT}):\n{res.stderr}"


def test_an_image_that_does_not_exist(small: Any, node_cluster: Any) -> None:
    small.write(f"""
        web:
          image: {node_cluster.registry}/fail/does-not-exist:1.0
        """)
    res, elapsed = small.promote()
    failed_fast(res, elapsed, "Deployment/web", "cannot pull its image")


def test_a_container_that_exits_at_start_shows_its_last_log_lines(small: Any) -> None:
    small.write("""
        web:
          build: ./app
          command: ["sh", "-c", "echo starting web; echo 'fatal: DATABASE_URL is not set' >&2; exit 3"]
        """)
    res, elapsed = small.promote()
    failed_fast(res, elapsed, "Deployment/web", "exits with code 3", "fatal: DATABASE_URL is not set")


def test_a_readiness_probe_that_never_passes(small: Any) -> None:
    small.write("""
        web:
          build: ./app
          ports: ["8080:8080"]
          healthcheck:
            test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/missing"]
            interval: 2s
            timeout: 2s
            retries: 3
        """)
    res, elapsed = small.promote()
    failed_fast(res, elapsed, "Deployment/web", "probe")


def test_a_pod_that_does_not_fit_the_node(small: Any) -> None:
    small.write("""
        web:
          build: ./app
        """, """
        services:
          web:
            resources:
              requests: {cpus: 16, memory: 64Mi}
              limits: {cpus: 16, memory: 64Mi}
        """)
    res, elapsed = small.promote()
    failed_fast(res, elapsed, "Deployment/web", "Insufficient cpu")
