"""The golden outputs against a real Kubernetes API server: every expected/<profile>.yaml is applied
(server-side apply, full validation and admission) to a throwaway control plane of the version the
test rig pins (scripts/k8s-versions.env), and applying it again must change nothing.

Needs the control-plane binaries built by scripts/k8s-binaries.sh (kwokctl, kube-apiserver, etcd,
...). Without them the test skips, unless STACKCTL_REQUIRE_K8S=1, where it fails.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EXPECTED = sorted(HERE.glob("*/expected/*.yaml"))


def _bin_dir() -> Path | None:
    if os.environ.get("STACKCTL_K8S_BIN"):
        return Path(os.environ["STACKCTL_K8S_BIN"])
    versions = dict(line.split("=", 1) for line in (REPO / "scripts" / "k8s-versions.env").read_text().splitlines()
                    if "=" in line and not line.startswith("#"))
    cache = Path(os.environ.get("STACKCTL_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or
                                                         Path.home() / ".cache") / "stackctl")
    key = f"{versions['KUBE_VERSION']}-etcd{versions['ETCD_VERSION']}-kwok{versions['KWOK_VERSION']}"
    path = cache / "k8s" / key / "bin"
    return path if (path / "kwokctl").is_file() and (path / "kube-apiserver").is_file() else None


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    bin_dir = _bin_dir()
    if bin_dir is None:
        message = "needs the Kubernetes control-plane binaries (scripts/k8s-binaries.sh)"
        if os.environ.get("STACKCTL_REQUIRE_K8S") == "1":
            pytest.fail(message)
        pytest.skip(message + "; set STACKCTL_REQUIRE_K8S=1 to fail instead")
    work = tmp_path_factory.mktemp("kwok")
    env = {**os.environ, "KWOK_WORKDIR": str(work)}
    name = f"render-{uuid.uuid4().hex[:8]}"
    kubeconfig = work / "kubeconfig"
    create = [str(bin_dir / "kwokctl"), "create", "cluster", "--name", name, "--runtime", "binary",
              "--kube-apiserver-binary", str(bin_dir / "kube-apiserver"), "--etcd-binary", str(bin_dir / "etcd"),
              "--kube-controller-manager-binary", str(bin_dir / "kube-controller-manager"),
              "--kube-scheduler-binary", str(bin_dir / "kube-scheduler"),
              "--kwok-controller-binary", str(bin_dir / "kwok"), "--kubeconfig", str(kubeconfig), "--wait", "120s"]
    proc = subprocess.run(create, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    kubectl_bin = bin_dir / "kubectl" if (bin_dir / "kubectl").is_file() else Path("kubectl")
    try:
        yield [str(kubectl_bin), "--kubeconfig", str(kubeconfig)]
    finally:
        subprocess.run([str(bin_dir / "kwokctl"), "delete", "cluster", "--name", name], env=env,
                       capture_output=True, timeout=120)


def test_api_server_accepts_every_golden_output(kubectl: list[str]) -> None:
    files = [arg for path in EXPECTED for arg in ("-f", str(path))]
    apply = [*kubectl, "apply", "--server-side", "--field-manager=stackctl", *files]
    first = subprocess.run(apply, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr  # kubectl names the file and the object
    assert "Warning" not in first.stderr, first.stderr
    again = subprocess.run(apply, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    changed = [line for line in again.stdout.splitlines() if not line.endswith("serverside-applied")]
    assert not changed, changed
    assert len(again.stdout.splitlines()) == sum(p.read_text().count("\n---\n") + 1 for p in EXPECTED)
