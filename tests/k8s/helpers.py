"""What the cluster tiers share (tests/k8s, tests/node, tests/golden/test_golden_apiserver.py): the
kubectl runner, the wait loop, API paths and resourceVersion snapshots, the CLI's result and history
checks, the test profile and the environment of a real `stackctl` process.

Loaded by tests/conftest.py as module stackctl_k8s_helpers (the test folders are not packages), so a
test file says `from stackctl_k8s_helpers import ...`. Everything here talks to the cluster through
the rig's `ControlPlane` (raw API requests, its kubectl), never through stackctl.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.parse
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
STACKCTL = REPO / ".venv" / "bin" / "stackctl"  # the CLI as a real process (the node tier runs it so)

# kind (plural, as in the API path) → API group/version prefix; everything else is core /api/v1
_GROUPS = {"deployments": "/apis/apps/v1", "statefulsets": "/apis/apps/v1", "replicasets": "/apis/apps/v1",
           "daemonsets": "/apis/apps/v1", "jobs": "/apis/batch/v1", "cronjobs": "/apis/batch/v1",
           "networkpolicies": "/apis/networking.k8s.io/v1", "ingresses": "/apis/networking.k8s.io/v1",
           "poddisruptionbudgets": "/apis/policy/v1"}


def api_path(kind: str, namespace: str, name: str | None = None, selector: str | None = None) -> str:
    """The REST path of a namespaced kind (plural), of one object of it, or of those a label selector picks."""
    base = f"{_GROUPS.get(kind, '/api/v1')}/namespaces/{namespace}/{kind}"
    if name:
        return f"{base}/{name}"
    return base + (f"?labelSelector={urllib.parse.quote(selector)}" if selector else "")


def resource_versions(plane: Any, namespace: str, kinds: Iterable[str]) -> dict[str, str]:
    """kind/name → resourceVersion of every object of `kinds` in the namespace: equal before and after
    means nothing was written."""
    out = {}
    for kind in kinds:
        status, data = plane.request("GET", api_path(kind, namespace))
        if status != 200:
            raise AssertionError(f"GET {api_path(kind, namespace)}: HTTP {status}: {str(data)[:500]}")
        for item in data.get("items", []):
            out[f"{kind}/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
    return out


def control_plane_binaries() -> Path:
    """The cached control-plane binaries (built on first use), or the tier's skip (a failure in CI) naming
    what is missing: the rig needs them and openssl (its certificates)."""
    rig = sys.modules["stackctl_k8s_rig"]  # loaded by tests/conftest.py before this module
    if not shutil.which("openssl"):
        rig.unavailable("openssl is not installed")
    try:
        return Path(rig.binaries())
    except rig.RigError as exc:
        rig.unavailable(str(exc))
        raise  # unavailable() skips or fails; this is for type checkers


def wait_for(predicate: Callable[[], Any], timeout: float = 20, what: str = "condition", every: float = 0.2) -> Any:
    """Poll until `predicate()` is truthy and return that value; fail naming `what` after `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def kubectl(plane: Any, *args: str, context: str | None = None, check: bool = True, timeout: float = 60,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
    """The rig's kubectl (the control plane's version) against its kubeconfig; with `check`, a non-zero
    exit fails the test with kubectl's message."""
    kubectl_bin = Path(plane.bin_dir) / "kubectl"
    if not kubectl_bin.is_file():
        raise AssertionError(f"{kubectl_bin} is missing (scripts/k8s-binaries.sh builds it)")
    cmd = [str(kubectl_bin), f"--kubeconfig={plane.kubeconfig}", *([f"--context={context}"] if context else []), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-800:]}")
    return proc


# ---------------------------------------------------------------------------------------------
# the CLI (the `cli` fixture's results) and the projects it runs on
# ---------------------------------------------------------------------------------------------
def ok(res: Any) -> Any:
    """The CLI result, asserted successful (the failure shows its exit code, stdout and stderr)."""
    assert res.exit_code == 0, res
    return res


def history(cli: Any, profile: str = "dev") -> list[dict[str, Any]]:
    """`stackctl history <profile> -o json`: the revisions, oldest first."""
    return list(json.loads(ok(cli("history", profile, "-o", "json")).stdout)["revisions"])


def revisions(cli: Any, profile: str = "dev") -> list[tuple[int, str]]:
    """The history as (revision, status) pairs."""
    return [(r["revision"], r["status"]) for r in history(cli, profile)]


def ready(kube: Any, name: str, kind: str = "deployments") -> bool:
    """The workload exists, the controller saw its current spec, and every wanted replica is ready."""
    obj = kube.get(kind, name)
    if obj is None:
        return False
    st = obj.get("status", {})
    return bool(st.get("readyReplicas", 0) == obj["spec"].get("replicas", 1)
                and st.get("observedGeneration", 0) >= obj["metadata"]["generation"])


def write_profile(project: Any, namespace: str, extra: str = "", *, name: str = "dev") -> None:
    """profiles/<name>.yaml for the stack `demo` of compose.yaml, promoted to `namespace` through the
    rig's stackctl-test context; `extra` is more top-level YAML (dedented), e.g. a services: block."""
    project.profile(name, f"stack: demo\ncompose:\n  files: [compose.yaml]\n  env_files: []\nkubernetes:\n"
                          f"  namespace: {namespace}\n  context: stackctl-test\n"
                    + textwrap.dedent(extra).strip("\n") + "\n")


def cli_env(home: Path, kubeconfig: Path, columns: int) -> dict[str, str]:
    """The environment of a real `stackctl` process: this one's, with a HOME of its own (so the store
    key is a test key), no colour, a fixed width, the rig's kubeconfig, no profile or project chosen
    from outside, and the user's Docker config (the Compose CLI plugin lives there)."""
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "NO_COLOR": "1",
           "COLUMNS": str(columns), "KUBECONFIG": str(kubeconfig)}
    env.pop("STACKCTL_PROFILE", None)
    env.pop("STACKCTL_PROJECT_DIR", None)
    real_docker = Path(os.path.expanduser("~")) / ".docker"
    if real_docker.is_dir():
        env["DOCKER_CONFIG"] = str(real_docker)
    return env
