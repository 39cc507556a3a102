"""Does the stack fit the cluster? The rendered requests × replicas (+ the rolling update's surge)
against the nodes' allocatable CPU and memory, less what other pods already request.

The renderer cannot know the cluster, so this runs where the cluster is known: `promote` before it
applies anything (`deploy.commands.require_fit`) and `doctor`. Everything here is pure but `read()`,
which asks the cluster (through `Cluster`) for its nodes and the pods on them.

What it decides, per resource (CPU, memory):

- **error**: the pods do not fit even without a rolling update (the sum of requests × replicas is more
  than the schedulable nodes have free), or one pod asks for more than any node has free. Such pods
  stay Pending whatever happens; promote stops before applying.
- **warning**: they fit, but not with the rolling update's extra pods (`maxSurge`): a new pod waits
  for room that only its own rollout would free, and with `maxUnavailable: 0` the rollout stalls. The
  first promote of a stack (nothing to replace) and an unchanged pod template need no surge room, so
  this is not an error.
- A cluster that adds nodes on demand (the cluster autoscaler's status ConfigMap, or Karpenter's
  node labels) turns the error into a warning: Pending pods are what makes it scale up.

Only the count is compared (the sum over nodes, and the largest pod against the roomiest node); a
scheduler that packs pods onto nodes may still fail where the sums fit. Pods of this stack already
running are not counted as taken: the rollout replaces them (the surge is what overlaps).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from stackctl.kubernetes.labels import A_SERVICE, L_STACK
from stackctl.units import parse_bytes, parse_cpus

RESOURCES = ("cpu", "memory")
AUTOSCALER_STATUS = ("kube-system", "cluster-autoscaler-status")  # written by the cluster autoscaler
AUTOSCALED_NODE_LABELS = ("karpenter.sh/nodepool", "karpenter.sh/provisioner-name")
Level = Literal["error", "warning"]


@dataclass(frozen=True)
class Workload:
    """What one rendered workload asks for: `pods` at once, `surge` more during a rolling update."""

    name: str  # `Deployment/api`
    service: str
    pods: int
    surge: int
    request: Mapping[str, float]  # per pod: cores, bytes


@dataclass(frozen=True)
class Node:
    name: str
    allocatable: Mapping[str, float]
    used: Mapping[str, float]  # requested by pods that are not this stack's

    def free(self, resource: str) -> float:
        return max(0.0, self.allocatable[resource] - self.used[resource])


@dataclass(frozen=True)
class ClusterState:
    nodes: list[Node]  # the schedulable ones
    skipped: list[str]  # nodes left out, with why (`cp-1 (tainted node-role.kubernetes.io/control-plane)`)
    others_known: bool  # the pods of every namespace could be listed (else `used` is 0)
    autoscaled: bool


@dataclass(frozen=True)
class Problem:
    level: Level
    message: str
    fix: str = ""

    def __str__(self) -> str:
        return f"{self.message} ({self.fix})" if self.fix else self.message


@dataclass
class Fit:
    problems: list[Problem] = field(default_factory=list)
    summary: str = ""  # what was compared, for a check that passes

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "warning"]


# ---------------------------------------------------------------------------------------------
# Quantities
# ---------------------------------------------------------------------------------------------
def quantity(resource: str, value: Any) -> float:
    """A Kubernetes quantity as cores or bytes (`500m` → 0.5, `2624Mi` → bytes); 0 for what cannot be read."""
    try:
        return parse_cpus(value) if resource == "cpu" else float(parse_bytes(value))
    except ValueError:
        return 0.0


def shown(resource: str, amount: float) -> str:
    """Cores as Kubernetes writes them (`1500m`, `2`); bytes in Mi, whole Gi, or Gi from 10 Gi on."""
    if resource == "cpu":
        milli = round(amount * 1000)
        return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"
    mib = round(amount / 2**20)
    if mib >= 1024 and mib % 1024 == 0:
        return f"{mib // 1024}Gi"
    return f"{mib / 1024:.1f}Gi" if mib >= 10240 else f"{mib}Mi"


# ---------------------------------------------------------------------------------------------
# The stack's side
# ---------------------------------------------------------------------------------------------
def _container_requests(container: Mapping[str, Any]) -> dict[str, float]:
    """A container's requests; a limit without a request is the request (as the API server defaults it)."""
    res = container.get("resources") or {}
    requests, limits = res.get("requests") or {}, res.get("limits") or {}
    return {r: quantity(r, requests.get(r, limits.get(r, 0)) or 0) for r in RESOURCES}


def pod_request(spec: Mapping[str, Any]) -> dict[str, float]:
    """The scheduler's view of a pod: its containers and native sidecars together, or an init container
    (beside the sidecars started before it) when that asks for more."""
    out = {r: 0.0 for r in RESOURCES}
    sidecars = {r: 0.0 for r in RESOURCES}
    peak = {r: 0.0 for r in RESOURCES}
    for init in spec.get("initContainers") or []:
        req = _container_requests(init)
        if init.get("restartPolicy") == "Always":
            for r in RESOURCES:
                sidecars[r] += req[r]
        else:
            for r in RESOURCES:
                peak[r] = max(peak[r], sidecars[r] + req[r])
    for c in spec.get("containers") or []:
        req = _container_requests(c)
        for r in RESOURCES:
            out[r] += req[r]
    return {r: max(out[r] + sidecars[r], peak[r]) for r in RESOURCES}


def _surge(value: Any, replicas: int, default: str) -> int:
    """`maxSurge` as pods: an int, or a percentage of the replicas rounded up (as Kubernetes does)."""
    value = default if value is None else value
    if isinstance(value, str) and value.endswith("%"):
        try:
            return -(-replicas * int(value[:-1]) // 100)
        except ValueError:
            return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def workloads(objects: Sequence[Mapping[str, Any]], node_count: int) -> list[Workload]:
    """What the rendered objects run at once: Deployments, Rollouts and StatefulSets at their replica
    count (an autoscaler's minimum when it owns the count), DaemonSets once per node, Jobs at their
    parallelism. CronJobs run now and then and are left out."""
    hpa_min = {(o.get("spec") or {}).get("scaleTargetRef", {}).get("name"): int(o["spec"].get("minReplicas", 1))
               for o in objects if o.get("kind") == "HorizontalPodAutoscaler"}
    out: list[Workload] = []
    for obj in objects:
        kind, meta, spec = obj.get("kind"), obj.get("metadata") or {}, obj.get("spec") or {}
        if kind not in ("Deployment", "Rollout", "StatefulSet", "DaemonSet", "Job"):
            continue
        name = str(meta.get("name", "?"))
        template = (spec.get("template") or {}).get("spec") or {}
        service = str((meta.get("annotations") or {}).get(A_SERVICE) or name)
        strategy = spec.get("strategy") or {}
        if kind == "DaemonSet":
            rolling = (spec.get("updateStrategy") or {}).get("rollingUpdate") or {}
            pods, surge = node_count, node_count * min(1, _surge(rolling.get("maxSurge"), 1, "0"))
        elif kind == "Job":
            pods, surge = int(spec.get("parallelism", 1) or 0), 0
        else:
            pods = int(spec["replicas"]) if "replicas" in spec else hpa_min.get(name, 1)
            if kind == "StatefulSet" or strategy.get("type") == "Recreate":
                surge = 0  # a StatefulSet replaces its pods one at a time, stop first
            elif kind == "Rollout":
                steps = strategy.get("canary") or strategy.get("blueGreen") or {}
                surge = pods if "blueGreen" in strategy else _surge(steps.get("maxSurge"), pods, "25%")
            else:
                surge = _surge((strategy.get("rollingUpdate") or {}).get("maxSurge"), pods, "25%")
        request = pod_request(template)
        if pods > 0 and any(request.values()):
            out.append(Workload(name=f"{kind}/{name}", service=service, pods=pods, surge=min(surge, pods),
                                request=request))
    return out


# ---------------------------------------------------------------------------------------------
# The cluster's side
# ---------------------------------------------------------------------------------------------
def nodes_of(nodes: Sequence[Mapping[str, Any]], pods: Sequence[Mapping[str, Any]] | None, *, namespace: str,
             stack: str, autoscaled: bool = False) -> ClusterState:
    """The schedulable nodes (not cordoned, no NoSchedule/NoExecute taint: the rendered pods tolerate
    none) with what the pods of other stacks (`pods`, every namespace; None when not known) request."""
    used: dict[str, dict[str, float]] = {}
    for pod in pods or []:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        node = spec.get("nodeName")
        phase = (pod.get("status") or {}).get("phase")
        if not node or phase in ("Succeeded", "Failed"):
            continue
        if meta.get("namespace") == namespace and (meta.get("labels") or {}).get(L_STACK) == stack:
            continue  # this stack's own: the rollout replaces them
        req = pod_request(spec)
        slot = used.setdefault(str(node), {r: 0.0 for r in RESOURCES})
        for r in RESOURCES:
            slot[r] += req[r]
    out: list[Node] = []
    skipped: list[str] = []
    for node in sorted(nodes, key=lambda n: str((n.get("metadata") or {}).get("name", ""))):
        meta, spec = node.get("metadata") or {}, node.get("spec") or {}
        name = str(meta.get("name", "?"))
        autoscaled = autoscaled or any(key in (meta.get("labels") or {}) for key in AUTOSCALED_NODE_LABELS)
        taints = [t for t in spec.get("taints") or [] if t.get("effect") in ("NoSchedule", "NoExecute")]
        if spec.get("unschedulable"):
            skipped.append(f"{name} (cordoned)")
            continue
        if taints:
            skipped.append(f"{name} (tainted {taints[0].get('key', '?')})")
            continue
        alloc = (node.get("status") or {}).get("allocatable") or {}
        out.append(Node(name=name, allocatable={r: quantity(r, alloc.get(r, 0)) for r in RESOURCES},
                        used=used.get(name, {r: 0.0 for r in RESOURCES})))
    return ClusterState(nodes=out, skipped=skipped, others_known=pods is not None, autoscaled=autoscaled)


def read(cluster: Any, *, namespace: str, stack: str) -> ClusterState | str:
    """Ask the cluster (a `Cluster`) for its nodes, the pods on them and whether it autoscales; a
    string says why it could not be asked (a user who may not list nodes: nothing to compare)."""
    from stackctl.errors import OperationError
    from stackctl.kubernetes.client import ApiError, Ref

    try:
        nodes = cluster.list_cluster_wide("Node")
    except ApiError as exc:
        return f"cannot list the nodes ({exc.detail})"
    except OperationError as exc:
        return f"cannot list the nodes ({exc.message})"
    try:
        pods: list[dict[str, Any]] | None = cluster.list_cluster_wide(
            "Pod", field_selector="status.phase!=Succeeded,status.phase!=Failed")
    except (ApiError, OperationError):
        pods = None
    try:
        status = cluster.get(Ref(kind="ConfigMap", name=AUTOSCALER_STATUS[1], namespace=AUTOSCALER_STATUS[0],
                                 api_version="v1"))
    except (ApiError, OperationError):
        status = None
    return nodes_of(nodes, pods, namespace=namespace, stack=stack, autoscaled=status is not None)


# ---------------------------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------------------------
FIX = ("lower the requests in the profile (defaults.resources.requests, or services.<name>.resources."
       "requests), run fewer replicas, or add nodes")
SURGE_FIX = ("lower the requests in the profile, or let the rollout replace pods without extra ones: "
             "update: {max_surge: 0, max_unavailable: 1} (or strategy: recreate) for the largest services")


def _terms(loads: Sequence[Workload], resource: str, *, surge: bool) -> str:
    """`api 3 × 500m + 1 surge, worker 2 × 250m` — the largest first."""
    parts = []
    for w in sorted(loads, key=lambda w: (-(w.pods + (w.surge if surge else 0)) * w.request[resource], w.name)):
        if not w.request[resource]:
            continue
        extra = f" + {w.surge} surge" if surge and w.surge else ""
        parts.append(f"{w.service} {w.pods} × {shown(resource, w.request[resource])}{extra}")
    return ", ".join(parts)


def check(loads: Sequence[Workload], state: ClusterState, *, context: str) -> Fit:
    """Compare (see the module docstring); problems in a fixed order: CPU before memory, errors first."""
    fit = Fit()
    if not state.nodes:
        why = f" ({', '.join(state.skipped)})" if state.skipped else ""
        fit.problems.append(Problem("warning" if state.autoscaled else "error",
                                    f"context {context!r} has no node the stack's pods can be scheduled on{why}"))
        return fit
    where = f"{len(state.nodes)} schedulable node{'s' if len(state.nodes) != 1 else ''}"
    hard: Level = "warning" if state.autoscaled else "error"
    later = " (the cluster autoscales: it has to add nodes for them)" if state.autoscaled else ""
    sums = []
    for r in RESOURCES:
        steady = sum(w.pods * w.request[r] for w in loads)
        peak = steady + sum(w.surge * w.request[r] for w in loads)
        alloc = sum(n.allocatable[r] for n in state.nodes)
        taken = sum(n.used[r] for n in state.nodes)
        free = max(0.0, alloc - taken)
        what = "CPU" if r == "cpu" else "memory"
        have = (f"{shown(r, free)} {what} free on {where} ({shown(r, alloc)} allocatable, {shown(r, taken)} "
                f"requested by other pods)" if state.others_known else
                f"{shown(r, alloc)} {what} allocatable on {where} (other pods' requests not counted: cannot list "
                "the pods of every namespace)")
        sums.append(f"{shown(r, steady)} of {shown(r, free)} {what}")
        biggest = max(loads, key=lambda w: (w.request[r], w.name), default=None)
        roomiest = max(state.nodes, key=lambda n: n.free(r))
        if steady > free:
            fit.problems.append(Problem(hard, f"the stack requests {shown(r, steady)} {what} and the cluster has "
                                              f"{have}: {_terms(loads, r, surge=False)}; its pods would stay Pending"
                                              f"{later}", FIX))
        elif biggest is not None and biggest.request[r] > roomiest.free(r):
            most = f"{shown(r, roomiest.free(r))} on {roomiest.name}"
            fit.problems.append(Problem(hard, f"a pod of {biggest.service} requests {shown(r, biggest.request[r])} "
                                              f"{what} and no node has that free (the most: {most}); it would stay "
                                              f"Pending{later}", FIX))
        elif peak > free:
            fit.problems.append(Problem("warning", f"a rolling update needs {shown(r, peak)} {what} and the cluster "
                                                   f"has {have}: {_terms(loads, r, surge=True)}; the surge pods "
                                                   f"would stay Pending and the rollout stall", SURGE_FIX))
    fit.problems.sort(key=lambda p: p.level != "error")  # stable: CPU before memory within a level
    fit.summary = f"requests fit: {', '.join(sums)} on {where}"
    return fit
