"""Failures that are real, not simulated: each rollout below can never finish on a real node, and
`stackctl promote` must name the workload and the reason within seconds, not after its --timeout
(or, with --no-fail-fast, after it: every finding at once). Each test promotes a small stack (busybox
images built locally and pushed to the node's registry) into a namespace of its own. These replace
the KWOK tests that simulated the same states (tests/k8s keeps simulated states only for the release
strategies, see docs/realnode.md)."""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from stackctl_k8s_helpers import STACKCTL, api_path, cli_env

pytestmark = [pytest.mark.k8s, pytest.mark.node, pytest.mark.slow]

TIMEOUT = "300"  # far beyond what fail-fast needs: the test asserts it is not waited out
FAST = 90  # seconds: generous for a loaded 2-core CI machine, far below TIMEOUT


@pytest.fixture
def small(node_cluster: Any, tmp_path: Path) -> Any:
    namespace = f"fail-{uuid.uuid4().hex[:6]}"
    root = tmp_path / "proj"
    (root / "app").mkdir(parents=True)
    (root / "profiles").mkdir()
    (root / "app" / "Dockerfile").write_text(
        "FROM stackctl-test/busybox:latest\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\"]\n")
    home = tmp_path / "home"
    home.mkdir()
    env = cli_env(home, node_cluster.kubeconfig, columns=160)

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

        def promote(self, *args: str, timeout: str = TIMEOUT) -> tuple[Any, float]:
            t0 = time.monotonic()
            proc = self.stackctl("promote", "dev", "--timeout", timeout, *args)
            return proc, time.monotonic() - t0

        def stackctl(self, *args: str) -> Any:
            return subprocess.run([str(STACKCTL), *args], cwd=root, env=env, capture_output=True, text=True,
                                  timeout=600)

        def get(self, kind: str, name: str) -> Any:
            status, data = node_cluster.plane.request("GET", api_path(kind, namespace, name))
            return data if status == 200 else None

        def revisions(self) -> list[tuple[int, str]]:
            out = json.loads(self.stackctl("history", "dev", "-o", "json").stdout)["revisions"]
            return [(r["revision"], r["status"]) for r in out]

    try:
        yield Small()
    finally:
        node_cluster.plane.request("DELETE", f"/api/v1/namespaces/{namespace}")


def failed_fast(res: Any, elapsed: float, *needles: str) -> None:
    assert res.returncode == 1, f"exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    assert "stopped waiting after" in res.stderr, res.stderr  # fail-fast, not the timeout
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
    res, _ = small.promote()
    # refused before anything is applied: the node's allocatable is read first (no pod left Pending)
    assert res.returncode == 1, f"exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    said = " ".join(res.stderr.split())
    assert "web 1 × 16; its pods would stay Pending" in said and "applying" not in said, said


def test_no_fail_fast_waits_for_the_timeout_and_reports_every_finding(small: Any, node_cluster: Any) -> None:
    small.write(f"""
        web:
          image: {node_cluster.registry}/fail/does-not-exist:1.0
        worker:
          build: ./app
          command: ["sh", "-c", "echo 'worker: cannot open queue' >&2; exit 1"]
        probe:
          build: ./app
          ports: ["8080:8080"]
          healthcheck:
            test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/ready"]
            interval: 2s
            timeout: 2s
        """)
    res, elapsed = small.promote("--no-fail-fast", timeout="40")
    assert res.returncode == 1, res
    assert elapsed >= 40, elapsed
    err = res.stderr
    assert "did not finish within 40s" in err and "stopped waiting" not in err, err
    assert "image: container web cannot pull its image" in err, err
    assert "crash: container worker exits with code 1" in err and "cannot open queue" in err, err
    assert "probe: running but failing its probes" in err and "Readiness probe failed" in err, err


def test_a_failed_job_is_diagnosed_and_atomic_first_promote_cleans_up(small: Any) -> None:
    small.write("""
        web:
          build: ./app
          depends_on:
            migrate:
              condition: service_completed_successfully
        migrate:
          build: ./app
          command: ["sh", "-c", "echo 'migration failed: relation \\"items\\" already exists' >&2; exit 3"]
        worker:
          build: ./app
          command: ["sleep", "3600"]
        """)
    res, elapsed = small.promote("--atomic")
    assert res.returncode == 1, res
    err = res.stderr
    assert "the rollout of fail failed: Job/migrate-" in err, err
    assert "job: the Job failed: BackoffLimitExceeded" in err, err
    assert "exits with code 3 (Error)" in err and "migration failed" in err, err
    assert "there was no earlier revision" in err, err
    assert elapsed < FAST, elapsed
    assert small.get("deployments", "web") is None  # never applied: it waits for migrate
    end = time.monotonic() + 60
    while small.get("deployments", "worker") is not None and time.monotonic() < end:
        time.sleep(0.5)
    assert small.get("deployments", "worker") is None, "worker not removed by --atomic"
    assert small.revisions() == [(1, "failed")]
