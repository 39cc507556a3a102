"""promote compares the stack's requests with the nodes before it applies anything (issue 12 item 10b),
on the session's control plane: its KWOK nodes (rig.NODE_CAPACITY each, rig.NODES of them) are the
allocatable the check reads through `Cluster`."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from stackctl_k8s_helpers import ok, ready, write_profile

pytestmark = [pytest.mark.k8s]

rig = sys.modules["stackctl_k8s_rig"]
NODE_CPU = int(rig.NODE_CAPACITY["cpu"])

COMPOSE = """
name: demo
services:
  api:
    image: stackctl-test/busybox:latest
    command: ["httpd", "-f", "-p", "8080"]
    expose: ["8080"]
"""


def promote(project: Any, cli: Any, kube: Any, cpus: str, replicas: int) -> Any:
    (project.root / "compose.yaml").write_text(COMPOSE)
    write_profile(project, kube.namespace, f"""
        services:
          api:
            replicas: {replicas}
            resources: {{requests: {{cpus: "{cpus}", memory: 64Mi}}}}
        """)
    return cli("promote", "dev", "--yes")


def test_a_stack_no_node_can_hold_stops_before_anything_is_applied(project: Any, cli: Any, kube: Any) -> None:
    res = promote(project, cli, kube, str(NODE_CPU + 4), 2)
    assert res.exit_code == 1, res
    text = " ".join(res.stderr.split())
    assert "context stackctl-test:" in text and f"a pod of api requests {NODE_CPU + 4} CPU and no node has that free" \
        in text, text
    assert "lower the requests in the profile" in text
    status, _ = kube.plane.request("GET", f"/api/v1/namespaces/{kube.namespace}")
    assert status == 404  # nothing applied, not even the namespace


def test_a_stack_that_fits_only_without_the_surge_is_promoted_with_a_warning(project: Any, cli: Any,
                                                                              kube: Any) -> None:
    """One pod per node, each node nearly full: the first promote needs no surge room and rolls out."""
    res = ok(promote(project, cli, kube, str(NODE_CPU - 1), rig.NODES))
    text = " ".join(res.stderr.split())
    assert f"a rolling update needs {(NODE_CPU - 1) * (rig.NODES + 1)} CPU" in text, text
    assert f"api {rig.NODES} × {NODE_CPU - 1} + 1 surge" in text
    assert ready(kube, "api")
