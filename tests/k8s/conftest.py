"""The Kubernetes tier: a real control plane (etcd, kube-apiserver, controller-manager, scheduler,
KWOK nodes) started once per session from the cached binaries (tests/k8s/rig.py; the `control_plane`
fixture lives in tests/conftest.py, shared with the golden API-server test), a namespace per test, a
loopback registry for image tests. What the test files share beyond fixtures is in helpers.py.

Locally the tier skips when the rig cannot be had (no Go toolchain to build it); in CI
(`STACKCTL_REQUIRE_K8S=1`) that is a failure. Teardown always runs: namespaces are deleted after
every test, the control plane's process groups are killed at the end of the session (and, should
pytest itself be killed, the processes die with it: they carry a parent-death signal).
"""

from __future__ import annotations

import atexit
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stackctl_k8s_helpers import api_path, resource_versions, wait_for

rig = sys.modules["stackctl_k8s_rig"]  # loaded by tests/conftest.py, which owns `control_plane`
_unavailable = rig.unavailable


class Kube:
    """A test's view of the cluster: its own namespace, raw API calls (independent of stackctl)."""

    def __init__(self, plane: Any, namespace: str) -> None:
        self.plane = plane
        self.namespace = namespace
        self.kubeconfig = plane.kubeconfig

    def api(self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200, 201),
            content_type: str = "application/json") -> Any:
        status, data = self.plane.request(method, path, body, content_type=content_type)
        if status not in ok:
            raise AssertionError(f"{method} {path}: HTTP {status}: {data}")
        return data

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        status, data = self.plane.request("GET", api_path(kind, self.namespace, name))
        return data if status == 200 else None

    def items(self, kind: str, selector: str | None = None) -> list[dict[str, Any]]:
        return list(self.api("GET", api_path(kind, self.namespace, selector=selector)).get("items", []))

    def names(self, kind: str) -> list[str]:
        return sorted(i["metadata"]["name"] for i in self.items(kind))

    def create(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        body.setdefault("metadata", {})["namespace"] = self.namespace
        return dict(self.api("POST", api_path(kind, self.namespace), body))

    def versions(self) -> dict[str, str]:
        """kind/name → resourceVersion of everything stackctl-relevant in the namespace."""
        return resource_versions(self.plane, self.namespace, (
            "configmaps", "secrets", "services", "deployments", "statefulsets", "jobs", "networkpolicies",
            "persistentvolumeclaims"))

    def wait_for(self, predicate: Any, timeout: float = 20, what: str = "condition") -> Any:
        return wait_for(predicate, timeout, what, every=0.2)


@pytest.fixture
def kube(control_plane: Any, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Kube]:
    """A fresh namespace name for this test (stackctl creates it) and KUBECONFIG pointing at the
    rig. The namespace is deleted afterwards, whatever happened."""
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    namespace = f"{base}-{secrets.token_hex(2)}"
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig))
    k = Kube(control_plane, namespace)
    try:
        yield k
    finally:
        control_plane.request("DELETE", f"/api/v1/namespaces/{namespace}")


# ---------------------------------------------------------------------------------------------
# A loopback registry (Debian's docker-registry)
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def registry() -> Iterator[str]:
    """`127.0.0.1:<port>`: a real registry (HTTP on loopback, which docker allows by default)."""
    binary = shutil.which("docker-registry")
    engine = shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0
    if not binary or not engine:
        _unavailable("docker-registry or a Docker engine is missing (scripts/setup.sh installs both)")
    work = Path(tempfile.mkdtemp(prefix="stackctl-registry-"))
    port = rig.free_port()
    (work / "config.yml").write_text(textwrap.dedent(f"""\
        version: 0.1
        log: {{level: warn}}
        storage:
          filesystem: {{rootdirectory: {work / 'data'}}}
          delete: {{enabled: true}}
        http: {{addr: 127.0.0.1:{port}}}
        """))
    log = open(work / "registry.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([binary, "serve", str(work / "config.yml")], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, preexec_fn=rig._die_with_parent)
    log.close()

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(work, ignore_errors=True)

    atexit.register(stop)
    try:
        end = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1).read()
                break
            except OSError as exc:
                if time.monotonic() > end or proc.poll() is not None:
                    raise AssertionError(
                        f"docker-registry did not start: {(work / 'registry.log').read_text()}") from exc
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        stop()
