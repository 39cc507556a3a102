"""`stackctl doctor` on resources (issue 12 items 4 and 10): a database image with more than one replica,
and the stack's requests against the nodes of the cluster (through the client promote uses)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.docker

COMPOSE = """
services:
  api:
    image: ghcr.io/acme/api:1.0
    ports: ["8000:8000"]
  db:
    image: postgres:16
"""
PROFILE = """
compose: {files: [compose.yaml]}
kubernetes: {namespace: shop, context: prod}
defaults:
  resources: {requests: {cpus: "0.5", memory: 256Mi}}
services:
  api: {replicas: 3}
  db: {replicas: 2}
"""


@pytest.fixture
def shop(project: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    project.write("compose.yaml", COMPOSE)
    project.write(".env", "")
    project.profile("production", PROFILE)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("current-context: prod\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
                          "users: [{name: u, user: {token: t}}]\n"
                          "contexts: [{name: prod, context: {cluster: c, user: u}}]\n")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    return project


class FakeCluster:
    """The API calls doctor makes: /version, the nodes, the pods of every namespace, one ConfigMap."""

    def __init__(self, cpu: str, system_cpu: str) -> None:
        self.cpu, self.system_cpu = cpu, system_cpu

    def request(self, method: str, path: str, **_kw: Any) -> dict[str, str]:
        return {"gitVersion": "v1.35.4"}

    def list_cluster_wide(self, kind: str, *, field_selector: str | None = None) -> list[dict[str, Any]]:
        if kind == "Node":
            return [{"metadata": {"name": "node-1"}, "spec": {},
                     "status": {"allocatable": {"cpu": self.cpu, "memory": "8Gi"}}}]
        return [{"metadata": {"name": "coredns", "namespace": "kube-system"}, "status": {"phase": "Running"},
                 "spec": {"nodeName": "node-1", "containers": [{"resources": {"requests": {"cpu": self.system_cpu}}}]}}]

    def get(self, _ref: Any) -> None:
        return None  # no cluster autoscaler

    def close(self) -> None:
        pass


def doctor(cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, cluster: FakeCluster | None) -> dict[str, Any]:
    if cluster is not None:
        import stackctl.kubernetes.client as client

        monkeypatch.setattr(client, "connect", lambda _context, **_kw: cluster)
    res = cli("doctor", "-p", "production", "-o", "json", *(["--offline"] if cluster is None else []))
    return {c["name"]: c for c in json.loads(res.stdout)}


def test_doctor_warns_about_a_database_with_replicas(shop: Any, cli: Callable[..., Any],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    check = doctor(cli, monkeypatch, None)["databases"]
    assert check["status"] == "warn"
    assert check["detail"].startswith("db (postgres:16, 2 replicas): each replica of a database image is an "
                                      "independent database with its own data")
    assert "replicas: 1" in check["fix"]


def test_doctor_compares_the_requests_with_the_nodes(shop: Any, cli: Callable[..., Any],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """3 × 500m (api) + 2 × 500m (db) + 1 surge (api) on 2 CPUs with 250m taken: no room even without
    the surge, an error naming every service; on 4 CPUs only the surge pods lack room: ok."""
    small = doctor(cli, monkeypatch, FakeCluster("2", "250m"))["capacity"]
    assert small["status"] == "fail"
    assert small["detail"] == ("the stack requests 2500m CPU and the cluster has 1750m CPU free on 1 schedulable "
                               "node (2 allocatable, 250m requested by other pods): api 3 × 500m, db 2 × 500m; its "
                               "pods would stay Pending")
    assert "defaults.resources.requests" in small["fix"]
    close = doctor(cli, monkeypatch, FakeCluster("3", "250m"))["capacity"]
    assert close["status"] == "warn"
    assert close["detail"].startswith("a rolling update needs 3 CPU and the cluster has 2750m CPU free")
    assert "api 3 × 500m + 1 surge, db 2 × 500m" in close["detail"]
    roomy = doctor(cli, monkeypatch, FakeCluster("4", "250m"))["capacity"]
    assert roomy == {"name": "capacity", "status": "ok",
                     "detail": "requests fit: 2500m of 3750m CPU, 1280Mi of 8Gi memory on 1 schedulable node",
                     "fix": ""}
