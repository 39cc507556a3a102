"""Does the stack fit the cluster (issue 12 item 10b): requests × (replicas + surge) against the nodes'
allocatable, less what other pods request; promote stops before applying what cannot fit."""

from __future__ import annotations

from typing import Any

import pytest

from stackctl.errors import OperationError
from stackctl.kubernetes import capacity
from stackctl.kubernetes.client import ApiError
from stackctl.kubernetes.deploy import commands
from stackctl.kubernetes.deploy import history as kh

RELEASE = kh.Release(stack="shop", namespace="shop-prod", profile="production")


def deployment(name: str, replicas: int, cpu: str, memory: str = "64Mi", *, strategy: dict[str, Any] | None = None,
               kind: str = "Deployment") -> dict[str, Any]:
    spec: dict[str, Any] = {"replicas": replicas, "template": {"spec": {"containers": [
        {"name": name, "image": "x", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}}}
    if strategy is not None:
        spec["strategy"] = strategy
    return {"apiVersion": "apps/v1", "kind": kind, "spec": spec,
            "metadata": {"name": name, "annotations": {"stackctl.io/service": name}}}


SURGE_1 = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


def node(name: str, cpu: str = "2", memory: str = "4Gi", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {}}, "spec": spec,
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "110"}}}


def pod(node_name: str, cpu: str, memory: str = "0", namespace: str = "kube-system",
        labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": namespace, "labels": labels or {}},
            "spec": {"nodeName": node_name,
                     "containers": [{"resources": {"requests": {"cpu": cpu, "memory": memory}}}]},
            "status": {"phase": "Running"}}


def fit(objects: list[dict[str, Any]], nodes: list[dict[str, Any]], pods: list[dict[str, Any]] | None = None,
        autoscaled: bool = False) -> capacity.Fit:
    state = capacity.nodes_of(nodes, [] if pods is None else pods, namespace="shop-prod", stack="shop",
                              autoscaled=autoscaled)
    return capacity.check(capacity.workloads(objects, len(state.nodes)), state, context="prod")


def test_the_real_node_case_three_times_500m_and_a_surge_on_2_cpus() -> None:
    """What a real node refused: 3 × 500m + 1 surge on 2 CPUs, with the node's own pods requesting 350m.
    It runs (1500m of 1650m), but a rolling update cannot: a warning that says so, with the numbers."""
    f = fit([deployment("api", 3, "500m", strategy=SURGE_1)], [node("n1")], [pod("n1", "250m"), pod("n1", "100m")])
    assert f.errors == []
    [w] = f.warnings
    assert w.message == ("a rolling update needs 2 CPU and the cluster has 1650m CPU free on 1 schedulable node "
                         "(2 allocatable, 350m requested by other pods): api 3 × 500m + 1 surge; the surge pods "
                         "would stay Pending and the rollout stall")
    assert "max_surge: 0, max_unavailable: 1" in w.fix and "strategy: recreate" in w.fix


def test_what_cannot_fit_even_without_the_surge_is_an_error_naming_every_service() -> None:
    objects = [deployment("api", 3, "500m", strategy=SURGE_1), deployment("worker", 2, "250m"),
               deployment("db", 1, "1", kind="StatefulSet")]
    f = fit(objects, [node("n1"), node("n2", cpu="1")], [pod("n1", "500m")])
    [e] = f.errors
    assert e.message == ("the stack requests 3 CPU and the cluster has 2500m CPU free on 2 schedulable nodes "
                         "(3 allocatable, 500m requested by other pods): api 3 × 500m, db 1 × 1, worker 2 × 250m; "
                         "its pods would stay Pending")
    assert "defaults.resources.requests" in e.fix
    assert f.warnings == []  # memory fits, surge included


def test_a_pod_larger_than_any_node_is_an_error_even_when_the_sum_fits() -> None:
    f = fit([deployment("search", 1, "3")], [node("n1"), node("n2")])
    [e] = f.errors
    assert e.message.startswith("a pod of search requests 3 CPU and no node has that free (the most: 2 on n1)")


def test_an_autoscaling_cluster_gets_warnings_not_errors() -> None:
    f = fit([deployment("api", 8, "1")], [node("n1")], autoscaled=True)
    assert f.errors == [] and len(f.warnings) == 1
    assert "the cluster autoscales" in f.warnings[0].message
    labelled = node("n1")
    labelled["metadata"]["labels"]["karpenter.sh/nodepool"] = "default"
    assert fit([deployment("api", 8, "1")], [labelled]).errors == []


def test_this_stacks_own_pods_tainted_and_cordoned_nodes() -> None:
    """The stack's running pods are replaced by the rollout (not counted as taken); a control-plane
    node (tainted) and a cordoned one do not take the stack's pods."""
    own = pod("n1", "1500m", namespace="shop-prod", labels={"stackctl.io/stack": "shop"})
    nodes = [node("n1"), node("cp", taints=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]),
             node("old", unschedulable=True)]
    f = fit([deployment("api", 3, "500m", strategy={"type": "Recreate"})], nodes, [own])
    assert f.problems == []
    assert f.summary == "requests fit: 1500m of 2 CPU, 192Mi of 4Gi memory on 1 schedulable node"
    assert fit([deployment("api", 1, "1")], [nodes[1]]).errors[0].message == (
        "context 'prod' has no node the stack's pods can be scheduled on (cp (tainted "
        "node-role.kubernetes.io/control-plane))")


@pytest.mark.parametrize(("strategy", "replicas", "surge"), [
    (None, 4, 1), (None, 10, 3), (SURGE_1, 3, 1), ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "50%"}},
                                                   3, 2),
    ({"type": "Recreate"}, 3, 0), ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0}}, 3, 0),
])
def test_surge_as_kubernetes_counts_it(strategy: dict[str, Any] | None, replicas: int, surge: int) -> None:
    [w] = capacity.workloads([deployment("api", replicas, "100m", strategy=strategy)], 1)
    assert (w.pods, w.surge) == (replicas, surge)


def test_pods_of_other_kinds_and_the_pod_request_rules() -> None:
    sts = deployment("db", 2, "1", kind="StatefulSet")
    ds = {"kind": "DaemonSet", "metadata": {"name": "agent"}, "spec": {"template": {"spec": {"containers": [
        {"resources": {"limits": {"cpu": "100m", "memory": "32Mi"}}}]}}}}  # a limit alone is the request
    job = {"kind": "Job", "metadata": {"name": "migrate"}, "spec": {"parallelism": 2, "template": {"spec": {
        "initContainers": [{"resources": {"requests": {"cpu": "2"}}},
                           {"restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}}],
        "containers": [{"resources": {"requests": {"cpu": "250m"}}}]}}}}
    cron = {"kind": "CronJob", "metadata": {"name": "backup"}, "spec": {}}
    hpa_target = deployment("web", 1, "200m")
    del hpa_target["spec"]["replicas"]
    hpa = {"kind": "HorizontalPodAutoscaler", "spec": {"scaleTargetRef": {"name": "web"}, "minReplicas": 3}}
    found = {w.name: (w.pods, w.surge, w.request["cpu"])
             for w in capacity.workloads([sts, ds, job, cron, hpa_target, hpa], node_count=3)}
    assert found == {"StatefulSet/db": (2, 0, 1.0), "DaemonSet/agent": (3, 0, 0.1), "Job/migrate": (2, 0, 2.0),
                     "Deployment/web": (3, 1, 0.2)}


class FakeCluster:
    def __init__(self, nodes: list[dict[str, Any]] | None, pods: list[dict[str, Any]] | None = None) -> None:
        self.nodes, self.pods, self.closed = nodes, pods, False

    def list_cluster_wide(self, kind: str, *, field_selector: str | None = None) -> list[dict[str, Any]]:
        found = self.nodes if kind == "Node" else self.pods
        if found is None:
            raise ApiError(f"GET /api/v1/{kind.lower()}s", 403, {"reason": "Forbidden", "message": "forbidden"})
        return found

    def get(self, ref: Any) -> None:
        return None

    def close(self) -> None:
        self.closed = True


def terminal(lines: list[str]) -> commands.Terminal:
    def no_view(_start: float) -> Any:  # require_fit opens no view
        return None

    return commands.Terminal(info=lambda t: lines.append(f"info: {t}"), warn=lambda t: lines.append(f"warn: {t}"),
                             ask=lambda _q: None, open_view=no_view)


def require_fit(cluster: FakeCluster, objects: list[dict[str, Any]], lines: list[str], *,
                readonly: bool = False) -> None:
    fake: Any = cluster  # what require_fit calls of a Cluster
    commands.require_fit(fake, objects, RELEASE, "prod", terminal(lines), readonly=readonly)


def test_promote_stops_before_applying_what_cannot_fit() -> None:
    lines: list[str] = []
    cluster = FakeCluster([node("n1")], [pod("n1", "1")])
    objects = [deployment("api", 3, "500m", strategy=SURGE_1)]
    with pytest.raises(OperationError) as err:
        require_fit(cluster, objects, lines)
    assert str(err.value).startswith("context prod: the stack requests 1500m CPU and the cluster has 1 CPU free "
                                     "on 1 schedulable node (2 allocatable, 1 requested by other pods): api 3 × 500m")
    assert err.value.hint is not None and "defaults.resources.requests" in err.value.hint
    assert cluster.closed and lines == []
    # --diff (readonly) says it and goes on
    require_fit(FakeCluster([node("n1")], [pod("n1", "1")]), objects, lines, readonly=True)
    assert len(lines) == 1 and lines[0].startswith("warn: the stack requests 1500m CPU")


def test_promote_warns_about_the_surge_and_goes_on_and_skips_what_it_may_not_read() -> None:
    lines: list[str] = []
    objects = [deployment("api", 3, "500m", strategy=SURGE_1)]
    require_fit(FakeCluster([node("n1")], [pod("n1", "350m")]), objects, lines)
    assert len(lines) == 1 and lines[0].startswith("warn: a rolling update needs 2 CPU")
    lines.clear()
    require_fit(FakeCluster(None), objects, lines)
    assert lines == ["info: capacity not checked: cannot list the nodes (forbidden)"]
    lines.clear()
    four = [deployment("api", 4, "500m", strategy=SURGE_1)]
    require_fit(FakeCluster([node("n1")], None), four, lines)
    assert lines == ["warn: a rolling update needs 2500m CPU and the cluster has 2 CPU allocatable on 1 schedulable "
                     "node (other pods' requests not counted: cannot list the pods of every namespace): api 4 × 500m "
                     "+ 1 surge; the surge pods would stay Pending and the rollout stall (lower the requests in the "
                     "profile, or let the rollout replace pods without extra ones: update: {max_surge: 0, "
                     "max_unavailable: 1} (or strategy: recreate) for the largest services)"]
