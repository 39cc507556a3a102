"""The real node's network: Service DNS inside the cluster works, and nothing a pod sends leaves the
machine (../shared/REFERENCE.md §2b's guard: REJECT/DROP from the pod bridge to any other interface,
a blackholed Service CIDR, CoreDNS without `forward`)."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest

pytestmark = [pytest.mark.k8s, pytest.mark.node]

SCRIPT = """
nc -z -w 3 kubernetes.default.svc.cluster.local 443; echo "service=$?"
nc -z -w 3 {gateway} 53 || nc -z -w 3 {gateway} 80; echo "gateway=$?"
nc -z -w 3 1.1.1.1 443; echo "outside=$?"
getent hosts example.com >/dev/null; echo "dns-outside=$?"
getent hosts kubernetes.default.svc.cluster.local >/dev/null; echo "dns-cluster=$?"
"""


def default_gateway() -> str:
    out = subprocess.run(["ip", "route", "show", "default"], capture_output=True, text=True).stdout.split()
    return out[out.index("via") + 1] if "via" in out else "192.0.2.1"


def test_pods_reach_the_cluster_and_nothing_outside_the_machine(node_cluster: Any) -> None:
    ns = f"guard-{int(time.time())}"
    node_cluster.api("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                    "metadata": {"name": ns}})
    try:
        node_cluster.api("POST", f"/api/v1/namespaces/{ns}/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe"},
            "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False,
                     "containers": [{"name": "probe", "image": "busybox:1.37",
                                     "command": ["sh", "-c", SCRIPT.format(gateway=default_gateway())]}]}})

        def finished() -> bool:
            pod = node_cluster.get(f"/api/v1/namespaces/{ns}/pods/probe") or {}
            return pod.get("status", {}).get("phase") in ("Succeeded", "Failed")

        node_cluster.wait_for(finished, timeout=90, what="the probe pod to finish")
        out = node_cluster.kubectl("logs", "-n", ns, "probe").stdout
        results = dict(line.split("=", 1) for line in out.split() if "=" in line)
        assert results.get("service") == "0", out  # the pod has a network: the kubernetes Service answers
        assert results.get("dns-cluster") == "0", out
        assert results.get("gateway") not in (None, "0"), out  # the machine's own gateway: unreachable
        assert results.get("outside") not in (None, "0"), out
        assert results.get("dns-outside") not in (None, "0"), out  # CoreDNS has no upstream
    finally:
        node_cluster.plane.request("DELETE", f"/api/v1/namespaces/{ns}")
