"""The real-node tier: a control plane plus ONE REAL NODE (tests/k8s/realnode.py: containerd + runc,
kubelet, kube-proxy, CoreDNS, a default StorageClass, a loopback registry on 127.0.0.1:5000), started
once per session. Pods here are real containers with real probes, Service DNS and mounted Secrets.

The bundled example is promoted with the repository's own `profiles/production.yaml` unchanged: its
registry (127.0.0.1:5000/shop) is the node's registry and its context (`production`) is one of the
rig's contexts. The CLI runs as a real process (`.venv/bin/stackctl`) in a copy of the repository's
example files, with a HOME of its own (so the store key is a test key).

Locally the tier skips when the machine cannot run a node (not root, no Docker engine, no Go to
build the binaries); in CI (`STACKCTL_REQUIRE_K8S=1`) that is a failure, never a skip. Teardown is
complete even when a test fails: the node's clean-up kills every container, removes our chains,
bridge, route, mounts and cgroups, and restores the sysctls (tests/node/test_zz_cleanup.py proves it
after a simulated crash).
"""

from __future__ import annotations

import atexit
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from stackctl_k8s_helpers import (
    REPO,
    STACKCTL,
    api_path,
    cli_env,
    control_plane_binaries,
    kubectl,
    resource_versions,
    wait_for,
)

rig = sys.modules["stackctl_k8s_rig"]  # loaded by tests/conftest.py
REGISTRY_PORT = 5000  # what profiles/production.yaml pushes to
NAMESPACE = "shop-prod"  # profiles/production.yaml


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The crash-and-clean-up test ends the session's node: it runs right after every other node test
    (not at the very end of the session: the node's CPU is then free for the tiers after it)."""
    last = [i for i in items if i.get_closest_marker("node_last")]
    for item in last:
        items.remove(item)
    nodes = [n for n, i in enumerate(items) if i.get_closest_marker("node")]
    at = nodes[-1] + 1 if nodes else len(items)
    items[at:at] = last


@dataclass
class NodeCluster:
    plane: Any
    crashed: bool = False
    docker_before: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def docker_state() -> dict[str, Any]:
        return docker_state()

    @property
    def kubeconfig(self) -> Path:
        return Path(self.plane.kubeconfig)

    @property
    def registry(self) -> str:
        return str(self.plane.node.registry)

    def kubectl(self, *args: str, check: bool = True, timeout: float = 60,
                input: str | None = None) -> subprocess.CompletedProcess[str]:
        return kubectl(self.plane, *args, check=check, timeout=timeout, input=input)

    def api(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201)) -> Any:
        status, data = self.plane.request(method, path, body)
        if status not in ok:
            raise AssertionError(f"{method} {path}: HTTP {status}: {str(data)[:500]}")
        return data

    def get(self, path: str) -> Any:
        status, data = self.plane.request("GET", path)
        return data if status == 200 else None

    def pods(self, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        q = f"?labelSelector={selector}" if selector else ""
        return list(self.api("GET", f"/api/v1/namespaces/{namespace}/pods{q}").get("items", []))

    def wait_for(self, predicate: Any, timeout: float = 60, what: str = "condition", every: float = 0.5) -> Any:
        return wait_for(predicate, timeout, what, every)


def docker_state() -> dict[str, Any]:
    """What of the Docker engine a node must never touch: its containers and its iptables chains."""
    containers = subprocess.run(["docker", "ps", "-aq", "--no-trunc"], capture_output=True, text=True).stdout.split()
    chains = {}
    for table in ("filter", "nat"):
        out = subprocess.run(["iptables", "-w", "5", "-t", table, "-S"], capture_output=True, text=True).stdout
        chains[table] = sorted(line for line in out.splitlines() if "DOCKER" in line)
    return {"containers": sorted(containers), "chains": chains}


@pytest.fixture(scope="session")
def node_cluster() -> Iterator[NodeCluster]:
    realnode = rig.load_realnode()
    why = realnode.missing_prerequisites()
    if why:
        rig.unavailable(why)
    bin_dir = control_plane_binaries()
    try:
        realnode.node_binaries()
    except (rig.RigError, realnode.NodeError) as exc:
        rig.unavailable(str(exc))
    before = docker_state()
    plane = rig.ControlPlane.start(bin_dir=bin_dir, real_node=True, registry_port=REGISTRY_PORT, timeout=240)
    cluster = NodeCluster(plane, docker_before=before)
    atexit.register(plane.stop)  # also on an interrupted session; stop() is idempotent
    try:
        yield cluster
    finally:
        if not cluster.crashed:
            plane.stop()


# ---------------------------------------------------------------------------------------------
# a copy of the bundled example, driven through the real CLI
# ---------------------------------------------------------------------------------------------
@dataclass
class Shop:
    root: Path
    env: dict[str, str]
    cluster: NodeCluster
    namespace: str = NAMESPACE

    def stackctl(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(STACKCTL), *args], cwd=self.root, env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            err = proc.stderr if len(proc.stderr) < 6000 else f"{proc.stderr[:3000]}\n[...]\n{proc.stderr[-3000:]}"
            raise AssertionError(f"stackctl {' '.join(args)} exited {proc.returncode}:\n"
                                 f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{err}")
        return proc

    def promote(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return self.stackctl("promote", "production", "--yes", *args, check=check, timeout=timeout)

    def workload(self, kind: str, name: str) -> dict[str, Any]:
        return dict(self.cluster.api("GET", api_path(kind, self.namespace, name)))

    def generations(self) -> dict[str, int]:
        out = {}
        for kind in ("deployments", "statefulsets"):
            for item in self.cluster.api("GET", f"/apis/apps/v1/namespaces/{self.namespace}/{kind}")["items"]:
                out[f"{kind}/{item['metadata']['name']}"] = int(item["metadata"]["generation"])
        return out

    def versions(self) -> dict[str, str]:
        return resource_versions(self.cluster.plane, self.namespace, (
            "configmaps", "secrets", "services", "deployments", "statefulsets", "jobs", "persistentvolumeclaims"))

    def jobs(self) -> list[str]:
        return sorted(j["metadata"]["name"] for j in
                      self.cluster.api("GET", f"/apis/batch/v1/namespaces/{self.namespace}/jobs")["items"])

    def in_cluster(self, command: str, *, timeout: float = 60) -> str:
        """Run `sh -c command` in one of the api pods (the api image has curl): a client inside
        the cluster, using Service names and cluster DNS."""
        # A ready pod that is not terminating (`deploy/api` may pick one that drains and dies mid-exec).
        ready = [p["metadata"]["name"] for p in self.api_pods()
                 if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]
        target = f"pod/{ready[0]}" if ready else "deploy/api"
        proc = self.cluster.kubectl("exec", "-n", self.namespace, target, "-c", "api", "--",
                                    "sh", "-c", command, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise AssertionError(f"in-cluster `{command}` failed ({proc.returncode}): {proc.stdout[-500:]} "
                                 f"{proc.stderr[-800:]}")
        return proc.stdout

    def get_json(self, path: str) -> Any:
        return json.loads(self.in_cluster(f"curl -fsS --max-time 5 http://api:8000{path}"))

    def api_pods(self) -> list[dict[str, Any]]:
        return [p for p in self.cluster.pods(self.namespace, "app.kubernetes.io/name=api")
                if not p["metadata"].get("deletionTimestamp")]


def copy_example(dest: Path) -> None:
    for rel in ("profiles", "examples", ".env.example", ".gitignore"):
        src = REPO / rel
        if src.is_dir():
            shutil.copytree(src, dest / rel, ignore=shutil.ignore_patterns("__pycache__", ".stackctl"))
        elif src.is_file():
            shutil.copy2(src, dest / rel)


@pytest.fixture(scope="module")
def shop(node_cluster: NodeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The bundled example in a fresh copy, its production secrets generated, promoted once."""
    root = tmp_path_factory.mktemp("shop")
    copy_example(root)
    home = root.parent / f"{root.name}-home"
    home.mkdir()
    s = Shop(root, cli_env(home, node_cluster.kubeconfig, columns=120), node_cluster)
    s.stackctl("secrets", "generate", "-p", "production")
    try:
        yield s
    finally:
        # Gone, not just terminating: the next module's shop promotes to the same namespace.
        node_cluster.plane.request("DELETE", f"/api/v1/namespaces/{s.namespace}")
        node_cluster.wait_for(lambda: node_cluster.get(f"/api/v1/namespaces/{s.namespace}") is None,
                              timeout=180, what=f"namespace {s.namespace} deleted", every=1)
