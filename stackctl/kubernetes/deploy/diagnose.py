"""Why a rollout did not finish: the usual troubleshooting decision tree, from what the cluster says.

`gather()` collects the evidence for one workload through a `Cluster` (its pods, the events of the
workload, its ReplicaSets/pods/claims, the namespace's claims and quotas, the last log lines of
crashing containers); `diagnose()` is pure: evidence in, findings out, so every rule is unit-tested
on plain dicts. The tree, per pod that is not ready:

  no pods at all ............ FailedCreate events: quota exceeded, admission refused
  Pending, Unschedulable .... resources (Insufficient cpu/memory/pods), taints, node selector /
                              affinity, unbound PersistentVolumeClaim (with the claim's own events)
  image ..................... ErrImagePull / ImagePullBackOff / InvalidImageName
  config .................... CreateContainerConfigError (a missing Secret/ConfigMap or key)
  crash ..................... CrashLoopBackOff, a non-zero exit, OOMKilled (with the last log lines)
  init ...................... stuck in an init container (a dependency that never became ready)
  probe ..................... Running but not Ready: failing readiness/liveness/startup probes;
                              restarted because its startup probe never passed
  Job failed ................ the Job's Failed condition and its pods' exit codes
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stackctl.kubernetes.client import KINDS, Cluster, Ref

IMAGE_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "RegistryUnavailable",
                 "ImageInspectError")
CONFIG_REASONS = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")
MAX_PODS = 3
LOG_LINES = 15


@dataclass(frozen=True)
class Evidence:
    workload: Mapping[str, Any]
    pods: Sequence[Mapping[str, Any]] = ()
    events: Sequence[Mapping[str, Any]] = ()
    claims: Sequence[Mapping[str, Any]] = ()
    quotas: Sequence[Mapping[str, Any]] = ()
    logs: Mapping[tuple[str, str], str | None] = field(default_factory=dict)  # (pod, container) → tail


@dataclass(frozen=True)
class Finding:
    category: str  # quota | create | scheduling | resources | taints | placement | volume | image | config |
    #                crash | init | probe | job | controller | unknown
    title: str
    pods: tuple[str, ...] = ()
    details: tuple[str, ...] = ()
    hint: str = ""

    def lines(self) -> list[str]:
        who = ""
        if self.pods:
            shown = ", ".join(self.pods[:MAX_PODS]) + (f" and {len(self.pods) - MAX_PODS} more"
                                                       if len(self.pods) > MAX_PODS else "")
            who = f" [pod {shown}]" if len(self.pods) == 1 else f" [{len(self.pods)} pods: {shown}]"
        out = [f"{self.category}: {self.title}{who}"]
        out += [f"  {d}" for d in self.details]
        if self.hint:
            out.append(f"  hint: {self.hint}")
        return out


# ---------------------------------------------------------------------------------------------
# Gathering (through the Cluster)
# ---------------------------------------------------------------------------------------------
def selector_of(workload: Mapping[str, Any]) -> str | None:
    labels = ((workload.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if not labels:
        return None
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def gather(cluster: Cluster, workload: Mapping[str, Any], *, events: Sequence[Mapping[str, Any]] | None = None,
           want_logs: bool = True) -> Evidence:
    ns = workload["metadata"].get("namespace", "")
    name = workload["metadata"]["name"]
    pods: list[dict[str, Any]] = []
    sel = selector_of(workload)
    if sel:
        pods, _ = cluster.list(KINDS[("v1", "Pod")], ns, selector=sel)
    if events is None:
        events, _ = cluster.list(KINDS[("v1", "Event")], ns)
    pod_names = {p["metadata"]["name"] for p in pods}
    claim_names = {v["persistentVolumeClaim"]["claimName"] for p in pods
                   for v in (p.get("spec") or {}).get("volumes") or [] if v.get("persistentVolumeClaim")}
    claims, _ = cluster.list(KINDS[("v1", "PersistentVolumeClaim")], ns)
    claims = [c for c in claims if c["metadata"]["name"] in claim_names
              or any(c["metadata"]["name"].endswith(f"-{name}-{i}") for i in range(10))]
    claim_names |= {c["metadata"]["name"] for c in claims}

    def relevant(ev: Mapping[str, Any]) -> bool:
        obj = ev.get("involvedObject") or {}
        n = str(obj.get("name", ""))
        return n == name or n in pod_names or n in claim_names or (
            obj.get("kind") in ("ReplicaSet", "Pod") and n.startswith(name + "-"))

    quotas, _ = cluster.list(KINDS[("v1", "ResourceQuota")], ns)
    logs: dict[tuple[str, str], str | None] = {}
    if want_logs:
        for pod, container, previous in _log_targets(pods)[:MAX_PODS]:
            logs[(pod["metadata"]["name"], container)] = _last_lines(cluster, ns, pod["metadata"]["name"], container,
                                                                    previous)
    return Evidence(workload=workload, pods=pods, events=[e for e in events if relevant(e)], claims=claims,
                    quotas=quotas, logs=logs)


def _last_lines(cluster: Cluster, ns: str, pod: str, container: str, previous: bool) -> str | None:
    """The container's last log lines. A crash-looping container is restarted under our feet: while
    the kubelet swaps instances it answers "unable to retrieve container logs" for the instance the
    pod status still names (seen on a real node), so ask again, then for the other instance."""
    text: str | None = None
    for attempt, prev in enumerate((previous, previous, not previous)):
        text = cluster.pod_log(ns, pod, container, previous=prev, tail=LOG_LINES)
        if text is None or not text.startswith(_NO_LOGS):
            return text
        if attempt < 2:
            time.sleep(0.5)
    return text


_NO_LOGS = "unable to retrieve container logs"


def _log_targets(pods: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], str, bool]]:
    out = []
    for pod in pods:
        for cs in _statuses(pod):
            state, last = cs.get("state") or {}, cs.get("lastState") or {}
            waiting = (state.get("waiting") or {}).get("reason")
            if waiting == "CrashLoopBackOff" or last.get("terminated"):
                out.append((pod, cs["name"], True))
            elif (state.get("terminated") or {}).get("exitCode") not in (None, 0):
                out.append((pod, cs["name"], False))
    return out


# ---------------------------------------------------------------------------------------------
# The rules (pure)
# ---------------------------------------------------------------------------------------------
def _statuses(pod: Mapping[str, Any], init: bool = False) -> list[Mapping[str, Any]]:
    st = pod.get("status") or {}
    return list(st.get("initContainerStatuses" if init else "containerStatuses") or [])


def _pod_cond(pod: Mapping[str, Any], ctype: str) -> Mapping[str, Any] | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c  # type: ignore[no-any-return]
    return None


def _ready(pod: Mapping[str, Any]) -> bool:
    c = _pod_cond(pod, "Ready")
    return bool(c and c.get("status") == "True")


def _events_for(ev: Sequence[Mapping[str, Any]], name: str, *reasons: str) -> list[Mapping[str, Any]]:
    out = [e for e in ev if (e.get("involvedObject") or {}).get("name") == name
           and (not reasons or e.get("reason") in reasons)]
    return sorted(out, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))


def _msg(text: Any) -> str:
    return " ".join(str(text or "").split())


def _requests(pod: Mapping[str, Any]) -> str:
    totals: dict[str, list[str]] = {}
    for c in (pod.get("spec") or {}).get("containers") or []:
        for res, qty in ((c.get("resources") or {}).get("requests") or {}).items():
            totals.setdefault(res, []).append(str(qty))
    return ", ".join(f"{res} {'+'.join(q)}" for res, q in sorted(totals.items())) or "none set"


def _logs(evidence: Evidence, pod: str, container: str) -> tuple[str, ...]:
    if (pod, container) not in evidence.logs:
        return ()
    text = evidence.logs[(pod, container)]
    if text is None:
        return ("last log lines: not available (the node did not serve them)",)
    lines = [ln for ln in text.rstrip("\n").splitlines()][-LOG_LINES:]
    if not lines:
        return ("last log lines: (empty)",)
    return ("last log lines:", *(f"| {ln}" for ln in lines))


def _pod_finding(evidence: Evidence, pod: Mapping[str, Any]) -> Finding | None:
    """The first rule of the decision tree that explains why this pod is not ready."""
    name = pod["metadata"]["name"]
    st = pod.get("status") or {}
    phase = st.get("phase", "")
    events = evidence.events
    # 1. not scheduled
    sched = _pod_cond(pod, "PodScheduled")
    if phase == "Pending" and sched and sched.get("status") == "False":
        return _scheduling(evidence, pod, _msg(sched.get("message")) or _msg(sched.get("reason")))
    if phase == "Pending" and not (pod.get("spec") or {}).get("nodeName"):
        failed = _events_for(events, name, "FailedScheduling")
        if failed:
            return _scheduling(evidence, pod, _msg(failed[-1].get("message")))
        return Finding("scheduling", "not scheduled yet (no scheduler decision)", (name,),
                       hint="is a kube-scheduler running in this cluster?")
    # 2. containers (init containers first: they run first)
    for init in (True, False):
        for cs in _statuses(pod, init):
            found = _container_finding(evidence, pod, cs, init)
            if found is not None:
                return found
    # 3. running but not ready: probes
    if phase == "Running" and not _ready(pod):
        unhealthy = _events_for(events, name, "Unhealthy")
        probes = _probe_summary(pod)
        if unhealthy:
            details = tuple(dict.fromkeys(_msg(e.get("message")) for e in unhealthy[-3:]))
            return Finding("probe", "running but failing its probes", (name,), details + probes,
                           hint="the health check does not pass in the cluster: check what it calls (host, port, "
                                "path) and the service's dependencies")
        return Finding("probe", "running but not ready yet (readiness probe not passing)", (name,), probes,
                       hint="if it stays so, the readiness probe never passes; `kubectl describe pod` shows why")
    if phase == "Failed":
        return Finding("crash", f"pod failed ({_msg(st.get('reason')) or 'Failed'}): {_msg(st.get('message'))}",
                       (name,))
    # 4. volumes not mounted yet
    mounts = _events_for(events, name, "FailedMount", "FailedAttachVolume")
    if mounts:
        return Finding("volume", "volumes cannot be mounted", (name,), (_msg(mounts[-1].get("message")),),
                       hint="check the Secrets, ConfigMaps and claims the pod mounts exist")
    return None


def _scheduling(evidence: Evidence, pod: Mapping[str, Any], message: str) -> Finding:
    name = pod["metadata"]["name"]
    text = message.lower()
    if "persistentvolumeclaim" in text or "unbound" in text or "volume node affinity" in text:
        details: list[str] = [message]
        for claim in evidence.claims:
            cname = claim["metadata"]["name"]
            cphase = (claim.get("status") or {}).get("phase", "Pending")
            if cphase == "Bound":
                continue
            sc = (claim.get("spec") or {}).get("storageClassName")
            why = _events_for(evidence.events, cname)
            last = _msg(why[-1].get("message")) if why else "no events (no provisioner acted on it)"
            details.append(f"PersistentVolumeClaim/{cname} is {cphase} (storage class "
                           f"{sc or 'the cluster default'}): {last}")
        return Finding("volume", "cannot be scheduled: a PersistentVolumeClaim is not bound", (name,), tuple(details),
                       hint="the cluster needs a StorageClass that provisions volumes: set kubernetes.storage_class "
                            "(or kubernetes.volumes.<name>.storage_class) in the profile, or create the "
                            "PersistentVolumes")
    if "insufficient" in text or "too many pods" in text:
        return Finding("resources", f"cannot be scheduled: {message}", (name,),
                       (f"requests per pod: {_requests(pod)}",),
                       hint="no node has room for what the pod requests: lower resources.requests in the "
                            "profile, or add capacity to the cluster")
    if "taint" in text:
        return Finding("taints", f"cannot be scheduled: {message}", (name,),
                       hint="every node that fits carries a taint the pod does not tolerate: use untainted nodes, "
                            "or add a toleration")
    if "affinity" in text or "selector" in text:
        spec = pod.get("spec") or {}
        placement = tuple(x for x in (f"nodeSelector: {spec['nodeSelector']}" if spec.get("nodeSelector") else "",
                                      "affinity: set" if spec.get("affinity") else "") if x)
        return Finding("placement", f"cannot be scheduled: {message}", (name,), placement,
                       hint="no node matches the pod's node selector or affinity: label a node, or relax it")
    return Finding("scheduling", f"cannot be scheduled: {message or 'no reason given'}", (name,),
                   (f"requests per pod: {_requests(pod)}",))


def _container_finding(evidence: Evidence, pod: Mapping[str, Any], cs: Mapping[str, Any],
                       init: bool) -> Finding | None:
    name = pod["metadata"]["name"]
    cname = cs.get("name", "?")
    what = f"init container {cname}" if init else f"container {cname}"
    state, last = cs.get("state") or {}, cs.get("lastState") or {}
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason", "")
    if reason in IMAGE_REASONS:
        pulls = _events_for(evidence.events, name, "Failed")
        details = [f"image: {cs.get('image', '?')}"]
        if waiting.get("message"):
            details.append(_msg(waiting["message"]))
        elif pulls:
            details.append(_msg(pulls[-1].get("message")))
        return Finding("image", f"{what} cannot pull its image ({reason})", (name,), tuple(details),
                       hint="check that the image and tag exist in the registry and that the cluster may pull "
                            "them (kubernetes.image_pull_secrets for a private registry)")
    if reason in CONFIG_REASONS:
        return Finding("config", f"{what} cannot start ({reason}): {_msg(waiting.get('message'))}", (name,),
                       hint="a Secret, ConfigMap or key it references is missing: promote creates the stack's own; "
                            "an external one must exist in the namespace")
    terminated = state.get("terminated") or {}
    last_term = last.get("terminated") or {}
    restarts = int(cs.get("restartCount") or 0)
    killed = [e for e in _events_for(evidence.events, name, "Killing")
              if "startup probe" in str(e.get("message") or "").lower()]
    if killed and restarts and not init:  # restarted by the kubelet, not crashed
        unhealthy = [_msg(e.get("message")) for e in _events_for(evidence.events, name, "Unhealthy")
                     if str(e.get("message") or "").startswith("Startup probe failed")]
        return Finding("probe", f"{what} never passes its startup probe (restarted {restarts} "
                                f"time{'s' if restarts != 1 else ''})", (name,),
                       (*dict.fromkeys(unhealthy[-2:]), *_probe_summary(pod)),
                       hint="it takes longer to start than the startup probe allows (healthcheck start_period "
                            "and retries), or the health check never passes in the cluster")
    crashed = reason == "CrashLoopBackOff" or (last_term and restarts > 0) or (
        terminated and terminated.get("exitCode") not in (None, 0))
    if crashed:
        term = terminated if terminated.get("exitCode") not in (None, 0) else last_term
        code, why = term.get("exitCode", "?"), term.get("reason") or "Error"
        title = f"{what} exits with code {code} ({why})"
        if restarts:
            title += f", restarted {restarts} time{'s' if restarts != 1 else ''}"
        details = []
        if term.get("message"):
            details.append(f"message: {_msg(term['message'])}")
        details.extend(_logs(evidence, name, cname))
        hint = ("the container ran out of memory: raise resources.limits.memory in the profile"
                if why == "OOMKilled" else
                "the process fails on start: read its logs (`kubectl logs --previous`); often a missing or wrong "
                "setting, or a dependency it cannot reach")
        return Finding("crash", title, (name,), tuple(details), hint=hint)
    if init and ("running" in state or "waiting" in state) and "terminated" not in state:
        return Finding("init", f"waiting in {what}", (name,),
                       hint="an init container waits for a dependency (depends_on) that is not ready: see that "
                            "service's rollout")
    return None


def _probe_summary(pod: Mapping[str, Any]) -> tuple[str, ...]:
    out = []
    for c in (pod.get("spec") or {}).get("containers") or []:
        for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
            probe = c.get(kind)
            if not probe:
                continue
            if "httpGet" in probe:
                how = f"GET :{probe['httpGet'].get('port')}{probe['httpGet'].get('path', '/')}"
            elif "exec" in probe:
                how = "exec " + " ".join(str(x) for x in probe["exec"].get("command", []))[:80]
            elif "tcpSocket" in probe:
                how = f"TCP :{probe['tcpSocket'].get('port')}"
            else:
                how = "grpc"
            out.append(f"{kind} of {c.get('name')}: {how} every {probe.get('periodSeconds', 10)}s")
    return tuple(out)


def _quota(evidence: Evidence) -> list[Finding]:
    out = []
    for ev in evidence.events:
        if ev.get("reason") == "FailedCreate" and "exceeded quota" in str(ev.get("message", "")):
            out.append(Finding("quota", "pods cannot be created: a ResourceQuota is exhausted",
                               details=(_msg(ev.get("message")),),
                               hint="raise the namespace's ResourceQuota, or lower replicas/requests in the profile"))
            break
    if not out:
        for q in evidence.quotas:
            hard, used = (q.get("status") or {}).get("hard") or {}, (q.get("status") or {}).get("used") or {}
            full = [r for r in hard if r in used and _qty(used[r]) >= _qty(hard[r])]
            if full:
                out.append(Finding("quota", f"ResourceQuota/{q['metadata']['name']} is used up: "
                                   + ", ".join(f"{r} {used[r]}/{hard[r]}" for r in sorted(full)),
                                   hint="new pods that need these resources are refused"))
    return out


_QTY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_MULT = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30,
         "Ti": 2**40}


def _qty(text: Any) -> float:
    m = _QTY.match(str(text))
    if not m:
        return 0.0
    return float(m.group(1)) * _MULT.get(m.group(2), 1)


def diagnose(evidence: Evidence) -> list[Finding]:
    """Findings for one workload that did not roll out, most telling first."""
    wl = evidence.workload
    kind = wl.get("kind", "")
    findings: list[Finding] = []
    st = wl.get("status") or {}
    if kind == "Job":
        for c in st.get("conditions") or []:
            if c.get("type") == "Failed" and c.get("status") == "True":
                findings.append(Finding("job", f"the Job failed: {c.get('reason', '')}: {_msg(c.get('message'))}",
                                        hint="a Job that others wait for must succeed; its pods say why it did not"))
    findings.extend(_quota(evidence))
    for c in st.get("conditions") or []:
        if c.get("type") == "ReplicaFailure" and c.get("status") == "True" and not any(
                f.category == "quota" for f in findings):
            findings.append(Finding("create", f"pods cannot be created: {_msg(c.get('message'))}"))
    if not evidence.pods and not any(f.category in ("quota", "create") for f in findings):
        failed = [e for e in evidence.events if e.get("reason") == "FailedCreate"]
        if failed:
            findings.append(Finding("create", f"pods cannot be created: {_msg(failed[-1].get('message'))}"))
        elif kind != "CronJob":
            findings.append(Finding("controller", "no pods exist yet",
                                    hint="is a kube-controller-manager running in this cluster?"))
    # per pod: the first explaining rule; identical titles are merged
    merged: dict[tuple[str, str], Finding] = {}
    pods = sorted(evidence.pods, key=lambda p: p["metadata"].get("creationTimestamp") or "", reverse=True)
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        if (pod.get("status") or {}).get("phase") == "Succeeded" or (
                _ready(pod) and (pod.get("status") or {}).get("phase") == "Running"):
            continue
        found = _pod_finding(evidence, pod)
        if found is None:
            continue
        key = (found.category, found.title)
        if key in merged:
            prev = merged[key]
            merged[key] = Finding(prev.category, prev.title, prev.pods + found.pods, prev.details, prev.hint)
        else:
            merged[key] = found
    findings.extend(merged.values())
    if kind == "Deployment":
        for c in st.get("conditions") or []:
            if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded":
                findings.append(Finding("controller", f"progress deadline exceeded: {_msg(c.get('message'))}"))
    if not findings:
        findings.append(Finding("unknown", "no pod reports a problem; the rollout may only need more time",
                                hint="raise --timeout, or watch `kubectl get pods -n "
                                     f"{wl['metadata'].get('namespace', '')} -w`"))
    return findings


def report(ref: Ref, message: str, findings: Sequence[Finding]) -> list[str]:
    lines = [f"{ref}: {message}"]
    for f in findings:
        lines += ["  " + ln for ln in f.lines()]
    return lines


def explain(cluster: Cluster, workloads: Sequence[Mapping[str, Any]],
            messages: Mapping[tuple[str, str, str], str], *, want_logs: bool = True) -> list[str]:
    """Diagnose several stuck workloads (one events list for all of them); the report's lines."""
    if not workloads:
        return []
    ns = workloads[0]["metadata"].get("namespace", "")
    events, _ = cluster.list(KINDS[("v1", "Event")], ns)
    lines: list[str] = []
    for wl in workloads:
        ref = Ref.of(wl)
        evidence = gather(cluster, wl, events=events, want_logs=want_logs)
        lines += report(ref, messages.get(ref.key, "did not roll out"), diagnose(evidence))
    return lines
