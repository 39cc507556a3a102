"""Waiting for workloads to roll out, with watches (never sleep-polling), and the live view.

`status()` is kubectl's rollout-status logic as a pure function of one object (Deployment,
StatefulSet, DaemonSet, Job, CronJob). A `Watcher` lists each kind once and then watches it from
that resourceVersion (re-listing on 410 Gone), one thread per kind plus one for the namespace's
events, all feeding one queue; `wait()` consumes the queue until every target is done, one fails
(a Job's Failed condition, a Deployment's ProgressDeadlineExceeded) or the deadline passes.

Fail fast: `wait()` also follows the pods of the revision being rolled out (`revision_pods()`: the
newest ReplicaSet's pods, the StatefulSet's update revision, the Job's own pods) and stops as soon
as one is in a state that does not heal by itself (`blocker()`, pure; the thresholds are the
constants below). A state that may still clear (a pod that does not fit any node yet, a container
whose Secret the kubelet has not seen yet) must last a grace period first (`Grace`): the queue read
then times out when that period ends, so nothing polls.

The view goes to stderr: a live table on a terminal (per workload desired/updated/ready, the latest
events underneath), plain lines otherwise (a line per workload change and per warning event). Both
count from the start of the command (`start`), not of the deploy, and name the phase the command is
in (`phase()`: building images, rendering, connecting, applying, waiting, pruning, recording); the
live one redraws on a timer, so its clock ticks while nothing happens (a Job that runs for minutes).
"""

from __future__ import annotations

import datetime as dt
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from stackctl.kubernetes.apply import Applied
from stackctl.kubernetes.client import KINDS, ApiError, Cluster, Kind, Ref
from stackctl.kubernetes.deploy import argo
from stackctl.kubernetes.labels import L_TRACK

if TYPE_CHECKING:
    from rich.console import Console

WATCHED = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Rollout")
JOB_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_POD_SELECTOR = "batch.kubernetes.io/job-name"
_NORMAL_REASONS_SHOWN = ("ScalingReplicaSet", "Completed", "SuccessfulCreate", "SuccessfulDelete")


# ---------------------------------------------------------------------------------------------
# Status of one workload (pure)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Status:
    ref: Ref
    desired: int | None = None
    updated: int = 0
    ready: int = 0
    done: bool = False
    failed: str | None = None  # why the controller gave up (the rollout cannot finish)
    message: str = ""
    seen: bool = True  # False until the object was observed at all

    @property
    def counts(self) -> str:
        desired = "-" if self.desired is None else str(self.desired)
        return f"{desired}/{self.updated}/{self.ready}"


def _cond(obj: Mapping[str, Any], ctype: str) -> Mapping[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c  # type: ignore[no-any-return]
    return None


def status(obj: Mapping[str, Any], *, succeeded_pods: int | None = None) -> Status:
    """Whether one workload has rolled out, as `kubectl rollout status` decides it.

    For a Job, `succeeded_pods` (its pods in phase Succeeded, when known) counts too: the Job
    controller batches pod updates for a second before it writes the Complete condition, and a
    wave that waits for a migration should not pay that second. Only for plain Jobs, whose
    completion follows from the count alone (not Indexed, no success policy)."""
    ref = Ref.of(obj)
    kind = obj["kind"]
    spec = obj.get("spec") or {}
    st = obj.get("status") or {}
    generation = int((obj.get("metadata") or {}).get("generation") or 0)
    if kind == "Rollout":  # Argo Rollouts: its controller's phase (observedGeneration is a string there)
        fields = argo.status_fields(obj)
        base = Status(ref, fields["desired"], fields["updated"], fields["ready"])
        return _with(base, done=fields["done"], failed=fields["failed"], message=fields["message"])
    observed = int(st.get("observedGeneration") or 0)
    if kind == "Deployment":
        desired = int(spec.get("replicas", 1))
        updated, ready = int(st.get("updatedReplicas") or 0), int(st.get("readyReplicas") or 0)
        available, total = int(st.get("availableReplicas") or 0), int(st.get("replicas") or 0)
        base = Status(ref, desired, updated, ready)
        if generation > observed:
            return _with(base, message="waiting for the controller to see the new spec")
        progressing = _cond(obj, "Progressing")
        if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
            return _with(base, failed=f"progress deadline exceeded: {progressing.get('message', '')}".strip())
        if updated < desired:
            return _with(base, message=f"{updated} of {desired} new replicas updated")
        if total > updated:
            return _with(base, message=f"{total - updated} old replicas pending termination")
        if total > desired:  # scaled down: kubectl calls this rolled out already; the pods are still there
            return _with(base, message=f"{total - desired} extra replicas terminating")
        if available < updated:
            return _with(base, message=f"{available} of {updated} updated replicas available")
        return _with(base, done=True, message="rolled out")
    if kind == "StatefulSet":
        desired = int(spec.get("replicas", 1))
        updated, ready = int(st.get("updatedReplicas") or 0), int(st.get("readyReplicas") or 0)
        base = Status(ref, desired, updated, ready)
        if observed == 0 or generation > observed:
            return _with(base, message="waiting for the controller to see the new spec")
        if ready < desired:
            return _with(base, message=f"{ready} of {desired} pods ready")
        if int(st.get("replicas") or 0) > desired:
            return _with(base, message=f"{int(st.get('replicas') or 0) - desired} extra pods terminating")
        strategy = spec.get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return _with(base, done=True, message="ready (OnDelete: pods update when deleted)")
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        if partition:
            if updated < desired - partition:
                return _with(base, message=f"{updated} of {desired - partition} pods updated (partition {partition})")
            return _with(base, done=True, message="partitioned roll out complete")
        if st.get("updateRevision") and st.get("updateRevision") != st.get("currentRevision"):
            return _with(base, message=f"{updated} of {desired} pods at the new revision")
        return _with(base, done=True, message="rolled out")
    if kind == "DaemonSet":
        desired = int(st.get("desiredNumberScheduled") or 0)
        updated, ready = int(st.get("updatedNumberScheduled") or 0), int(st.get("numberReady") or 0)
        available = int(st.get("numberAvailable") or 0)
        base = Status(ref, desired, updated, ready)
        if generation > observed:
            return _with(base, message="waiting for the controller to see the new spec")
        if updated < desired:
            return _with(base, message=f"{updated} of {desired} pods updated")
        if available < desired:
            return _with(base, message=f"{available} of {desired} updated pods available")
        return _with(base, done=True, message="rolled out")
    if kind == "Job":
        completions = int(spec.get("completions") or 1)
        succeeded, active = int(st.get("succeeded") or 0), int(st.get("active") or 0)
        base = Status(ref, completions, succeeded, active)
        failed = _cond(obj, "Failed")
        if failed and failed.get("status") == "True":
            return _with(base, failed=f"{failed.get('reason', 'Failed')}: {failed.get('message', '')}".rstrip(": "))
        complete = _cond(obj, "Complete")
        if complete and complete.get("status") == "True":
            return _with(base, done=True, message="completed")
        plain = spec.get("completionMode", "NonIndexed") == "NonIndexed" and not spec.get("successPolicy")
        if plain and succeeded_pods is not None and succeeded_pods >= completions:
            return _with(base, updated=succeeded_pods, done=True, message="completed (its pods succeeded)")
        return _with(base, message=f"{succeeded} of {completions} completed, {active} running")
    # CronJob (and anything else): nothing rolls out
    return Status(ref, None, 0, 0, done=True, message="scheduled" if kind == "CronJob" else "applied")


def _with(base: Status, **kw: Any) -> Status:
    return Status(**{**base.__dict__, **kw})


# ---------------------------------------------------------------------------------------------
# Fail fast: pods of the new revision that will not become ready by themselves (pure)
# ---------------------------------------------------------------------------------------------
# The thresholds, in one place (docs/promote.md, "Fail fast", states them).
FAIL_IMAGE_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
FAIL_CONFIG_REASONS = ("CreateContainerConfigError", "CreateContainerError")
CONFIG_GRACE = 15.0  # s; a Secret applied just before may reach the kubelet late, and it retries a failed
#                      container start only every 10-15 s: a shorter grace could stop before that retry
CRASH_RESTARTS = 2  # CrashLoopBackOff with at least this many restarts
OOM_RESTARTS = 1  # last terminated OOMKilled, with at least this many restarts
UNSCHEDULABLE_GRACE = 15.0  # s; a rolling update's surge pod may not fit until an old pod is gone
STARTUP_RESTARTS = 1  # restarted after its startup probe used up its failureThreshold
SCALE_UP_REASON = "TriggeredScaleUp"  # the cluster autoscaler adds a node for the pod: wait for it
PROBE_FAILURES_DEFAULT = 3  # a probe's failureThreshold when the spec leaves it out (the API default)

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
STS_REVISION_LABEL = "controller-revision-hash"
DS_GENERATION_LABEL = "pod-template-generation"
ARGO_HASH_LABEL = "rollouts-pod-template-hash"
POD_OWNERS = ("Deployment", "StatefulSet", "DaemonSet", "Rollout")  # fail fast follows their pods too
# A container without a readiness probe is Ready the moment it runs, so a process that exits at once
# can make a workload look rolled out for an instant (the kubelet notices the exit on its next relist,
# ~1 s later). Such pods count only once their containers have run this long without a restart.
SETTLE = 2.0  # s


def _canary(workload: Mapping[str, Any]) -> bool:
    return ((workload.get("metadata") or {}).get("labels") or {}).get(L_TRACK) == "canary"


def unsettled(workload: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], now: float) -> float | None:
    """Seconds until the new revision's pods (`pods`) of a rolled-out `workload` can be trusted, or
    None when they can: only containers without a readiness probe need to have run SETTLE seconds
    without a restart (`now`: wall-clock time, the clock of the kubelet's `startedAt`)."""
    template = ((workload.get("spec") or {}).get("template") or {}).get("spec") or {}
    unprobed = {c.get("name") for c in template.get("containers") or [] if not c.get("readinessProbe")}
    if not unprobed:
        return None
    wait = 0.0
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if cs.get("name") not in unprobed:
                continue
            started = _timestamp(((cs.get("state") or {}).get("running") or {}).get("startedAt"))
            if started is None or int(cs.get("restartCount") or 0) > 0:
                return SETTLE  # not running, or restarted: fail fast judges it; look again later
            wait = max(wait, started + SETTLE - now)
    return wait if wait > 0 else None


@dataclass(frozen=True)
class Blocker:
    """Why one pod will not become ready by itself; `grace`: how long the state must last first."""

    pod: str
    category: str  # image | config | crash | unschedulable | startup | readiness
    text: str  # what the pod does: "cannot pull its image (ImagePullBackOff)"
    grace: float = 0.0
    container: str = ""  # "container api" / "init container wait" when the pod has several

    @property
    def sentence(self) -> str:
        return f"pod {self.pod}{f' ({self.container})' if self.container else ''} {self.text}"


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _one_line(text: Any, limit: int = 160) -> str:
    out = " ".join(str(text or "").split())
    return out if len(out) <= limit else out[:limit - 1] + "…"


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _event_count(ev: Mapping[str, Any]) -> int:
    return int(ev.get("count") or (ev.get("series") or {}).get("count") or 1)


def _event_container(ev: Mapping[str, Any]) -> str | None:
    """The container a kubelet event is about (`fieldPath: spec.containers{api}`), None for the pod."""
    path = str((ev.get("involvedObject") or ev.get("regarding") or {}).get("fieldPath") or "")
    if "{" in path and path.endswith("}"):
        return path[path.index("{") + 1:-1]
    return None


def pod_events(pod: Mapping[str, Any], events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The events about this pod (by uid where both have one: a StatefulSet's pod keeps its name)."""
    meta = _meta(pod)
    name, uid = meta.get("name"), meta.get("uid")
    out = []
    for ev in events:
        obj = ev.get("involvedObject") or ev.get("regarding") or {}
        if obj.get("kind", "Pod") != "Pod" or obj.get("name") != name:
            continue
        if uid and obj.get("uid") and obj.get("uid") != uid:
            continue
        out.append(ev)
    return out


def _failures(events: Iterable[Mapping[str, Any]], reason: str, prefix: str) -> int:
    return sum(_event_count(e) for e in events
               if e.get("reason") == reason and str(e.get("message") or e.get("note") or "").startswith(prefix))


def _timestamp(text: Any) -> float | None:
    try:
        return dt.datetime.fromisoformat(str(text)).timestamp() if text else None
    except ValueError:
        return None


def _unready_since_start(pod: Mapping[str, Any], started_at: Any) -> bool:
    """The pod's Ready condition has been False since the container started (it never passed its
    readiness probe in between): the condition's last transition is not later than the start."""
    ready = _cond(pod, "Ready")
    if ready is None or ready.get("status") == "True":
        return False
    changed, started = _timestamp(ready.get("lastTransitionTime")), _timestamp(started_at)
    return changed is not None and started is not None and changed <= started


def blocker(pod: Mapping[str, Any], events: Iterable[Mapping[str, Any]] = (), *,
            others_terminating: bool = False) -> Blocker | None:
    """Why this pod (of the revision being rolled out) will not become ready by itself, or None.

    `events`: the namespace's events (those about other objects are ignored); `others_terminating`:
    another pod of the same workload is being deleted (resources a Pending pod waits for are
    freed then). The rules, first match wins:

    - unschedulable: PodScheduled=False, reason Unschedulable (grace UNSCHEDULABLE_GRACE), unless the
      cluster autoscaler triggered a scale-up for it, or another pod of the workload is terminating;
    - per container, init containers first: image (FAIL_IMAGE_REASONS), config (FAIL_CONFIG_REASONS,
      grace CONFIG_GRACE), crash (CrashLoopBackOff with CRASH_RESTARTS restarts; last state
      OOMKilled with OOM_RESTARTS);
    - startup: restarted (STARTUP_RESTARTS) after its startup probe failed — a Killing event "failed
      startup probe", or as many "Startup probe failed" Unhealthy events as its failureThreshold;
    - readiness: started, never restarted, not ready since it started, and as many "Readiness probe
      failed" Unhealthy events (their `count` added up) as its readiness probe's failureThreshold.
    """
    meta = _meta(pod)
    if meta.get("deletionTimestamp"):
        return None
    name = str(meta.get("name", "?"))
    mine = pod_events(pod, events)
    sched = _cond(pod, "PodScheduled")
    if sched is not None and sched.get("status") == "False" and sched.get("reason") == "Unschedulable":
        if others_terminating or any(e.get("reason") == SCALE_UP_REASON for e in mine):
            return None
        why = _one_line(sched.get("message")) or "no node fits it"
        return Blocker(name, "unschedulable", f"cannot be scheduled ({why})", grace=UNSCHEDULABLE_GRACE)
    spec = pod.get("spec") or {}
    specs = {str(c.get("name")): c for group in ("initContainers", "containers") for c in spec.get(group) or []}
    st = pod.get("status") or {}
    for init in (True, False):
        for cs in st.get("initContainerStatuses" if init else "containerStatuses") or []:
            found = _container_blocker(pod, cs, specs.get(str(cs.get("name"))) or {}, mine, init=init,
                                       several=len(specs) > 1)
            if found is not None:
                return found
    return None


def _container_blocker(pod_obj: Mapping[str, Any], cs: Mapping[str, Any], spec: Mapping[str, Any],
                       events: list[Mapping[str, Any]], *, init: bool, several: bool) -> Blocker | None:
    pod = str(_meta(pod_obj).get("name", "?"))
    cname = str(cs.get("name", "?"))
    where = f"init container {cname}" if init else f"container {cname}" if several else ""
    state = cs.get("state") or {}
    waiting = state.get("waiting") or {}
    reason = str(waiting.get("reason") or "")
    restarts = int(cs.get("restartCount") or 0)
    if reason in FAIL_IMAGE_REASONS:
        return Blocker(pod, "image", f"cannot pull its image ({reason})", container=where)
    if reason in FAIL_CONFIG_REASONS:
        detail = _one_line(waiting.get("message"))
        return Blocker(pod, "config", f"cannot start its container ({reason}{': ' + detail if detail else ''})",
                       grace=CONFIG_GRACE, container=where)
    if reason == "CrashLoopBackOff" and restarts >= CRASH_RESTARTS:
        return Blocker(pod, "crash", f"keeps crashing (CrashLoopBackOff, restarted {_times(restarts)})",
                       container=where)
    last = (cs.get("lastState") or {}).get("terminated") or {}
    if last.get("reason") == "OOMKilled" and restarts >= OOM_RESTARTS:
        return Blocker(pod, "crash", f"runs out of memory (OOMKilled, restarted {_times(restarts)})", container=where)
    ours = [e for e in events if _event_container(e) in (None, cname)]
    if restarts >= STARTUP_RESTARTS:
        budget = int((spec.get("startupProbe") or {}).get("failureThreshold") or PROBE_FAILURES_DEFAULT)
        killed = any(e.get("reason") == "Killing" and "startup probe" in str(e.get("message") or "").lower()
                     for e in ours)
        if killed or _failures(ours, "Unhealthy", "Startup probe failed") >= budget:
            return Blocker(pod, "startup", f"never passes its startup probe (restarted {_times(restarts)} after "
                                           "it failed)", container=where)
    probe = spec.get("readinessProbe")
    running = state.get("running")
    if (not probe or running is None or not cs.get("started") or cs.get("ready") or restarts
            or not _unready_since_start(pod_obj, running.get("startedAt"))):
        return None
    threshold = int(probe.get("failureThreshold") or PROBE_FAILURES_DEFAULT)
    failed = _failures(ours, "Unhealthy", "Readiness probe failed")
    if failed < threshold:
        return None
    return Blocker(pod, "readiness", f"never becomes ready: its readiness probe failed {_times(failed)} and never "
                                     f"passed (failureThreshold {threshold})", container=where)


class Grace:
    """How long each blocker has lasted (on the monotonic clock, from when it was first seen): one
    with a grace period counts once it has lasted that long; one that went away starts from zero."""

    def __init__(self) -> None:
        self.since: dict[tuple[str, ...], float] = {}

    def check(self, seen: Mapping[tuple[str, ...], float], now: float) -> tuple[list[tuple[str, ...]], float | None]:
        """`seen`: this round's blockers (key → grace). (The keys whose grace has run out, the time
        the next one's will — None when no other is pending.)"""
        self.since = {key: self.since.get(key, now) for key in seen}
        due: list[tuple[str, ...]] = []
        nxt: float | None = None
        for key, grace in seen.items():
            at = self.since[key] + grace
            if at <= now:
                due.append(key)
            else:
                nxt = at if nxt is None else min(nxt, at)
        return due, nxt


def _controller_uid(obj: Mapping[str, Any]) -> str | None:
    for ref in _meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def revision_pods(workload: Mapping[str, Any], pods: Mapping[str, Mapping[str, Mapping[str, Any]]],
                  sets: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> tuple[list[Mapping[str, Any]], bool]:
    """(The pods of the revision `workload` rolls out, whether any pod of it is terminating).

    `pods`, `sets`: pods and ReplicaSets by their controller's uid, then by name. The new revision:
    a Deployment's ReplicaSet of its current `deployment.kubernetes.io/revision`, a StatefulSet's
    `updateRevision`, a DaemonSet's `pod-template-generation`, an Argo Rollout's `currentPodHash`, a
    Job's own pods. Nothing until the controller has seen the new spec (the revision it names is the
    previous one until then)."""
    meta = _meta(workload)
    uid, kind = str(meta.get("uid") or ""), workload.get("kind")
    st = workload.get("status") or {}
    generation = int(meta.get("generation") or 0)

    def children(owners: Mapping[str, Mapping[str, Mapping[str, Any]]], owner: Any) -> list[Mapping[str, Any]]:
        return list((owners.get(str(owner)) or {}).values())

    if kind == "Job":
        every = current = children(pods, uid)
    elif kind in ("Deployment", "Rollout"):
        if kind == "Rollout":  # the Argo controller's observedGeneration is a string
            seen = str(st.get("observedGeneration") or "") == str(generation)
            label, value = ARGO_HASH_LABEL, st.get("currentPodHash")
        else:
            seen = int(st.get("observedGeneration") or 0) >= generation
            label, value = REVISION_ANNOTATION, (meta.get("annotations") or {}).get(REVISION_ANNOTATION)
        if not seen or not value:
            return [], False
        owned = children(sets, uid)
        marks = "labels" if kind == "Rollout" else "annotations"
        every = [p for rs in owned for p in children(pods, _meta(rs).get("uid"))]
        current = [p for rs in owned if (_meta(rs).get(marks) or {}).get(label) == value
                   for p in children(pods, _meta(rs).get("uid"))]
    elif kind in ("StatefulSet", "DaemonSet"):
        label, value = ((STS_REVISION_LABEL, st.get("updateRevision")) if kind == "StatefulSet"
                        else (DS_GENERATION_LABEL, str(generation)))
        if int(st.get("observedGeneration") or 0) < generation or not value:
            return [], False
        every = children(pods, uid)
        current = [p for p in every if (_meta(p).get("labels") or {}).get(label) == value]
    else:
        return [], False
    return ([p for p in current if not _meta(p).get("deletionTimestamp")],
            any(_meta(p).get("deletionTimestamp") for p in every))


# ---------------------------------------------------------------------------------------------
# The view
# ---------------------------------------------------------------------------------------------
class View(Protocol):
    def phase(self, text: str) -> None: ...
    def note(self, text: str) -> None: ...
    def applied(self, item: Applied) -> None: ...
    def deleted(self, ref: Ref, what: str) -> None: ...
    def workload(self, st: Status) -> None: ...
    def event(self, ev: Mapping[str, Any]) -> None: ...
    def close(self) -> None: ...


def _event_line(ev: Mapping[str, Any]) -> str:
    obj = ev.get("involvedObject") or ev.get("regarding") or {}
    count = ev.get("count") or (ev.get("series") or {}).get("count")
    times = f" (x{count})" if count and int(count) > 1 else ""
    msg = " ".join(str(ev.get("message") or ev.get("note") or "").split())
    return f"{obj.get('kind', '?')}/{obj.get('name', '?')}: {ev.get('reason', '')}: {msg}{times}"


class LineView:
    """Plain lines on stderr: one per phase, per object applied or deleted, per workload change, per
    event worth reading (warnings, scaling, completions); each with the seconds since `start` (the
    command's start on `clock`)."""

    def __init__(self, console: Console, *, start: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console
        self.clock = clock
        self.start = start if start is not None else clock()
        self.last: dict[tuple[str, str, str], str] = {}
        self.current = ""

    def elapsed(self) -> float:
        return self.clock() - self.start

    def _print(self, text: str) -> None:
        self.console.print(f"{self.elapsed():6.1f}s  {text}", markup=False, highlight=False, soft_wrap=True)

    def phase(self, text: str) -> None:
        if text != self.current:
            self.current = text
            self._print(text)

    def note(self, text: str) -> None:
        self._print(text)

    def applied(self, item: Applied) -> None:
        if item.action != "unchanged":
            self._print(f"{item.action:<10} {item.ref}")

    def deleted(self, ref: Ref, what: str) -> None:
        self._print(f"{what:<10} {ref}")

    def workload(self, st: Status) -> None:
        line = f"{'failed' if st.failed else 'ready' if st.done else 'waiting':<10} {st.ref}  " \
               f"desired/updated/ready {st.counts}  {st.failed or st.message}"
        if self.last.get(st.ref.key) != line:
            self.last[st.ref.key] = line
            self._print(line)

    def event(self, ev: Mapping[str, Any]) -> None:
        if ev.get("type") == "Warning" or ev.get("reason") in _NORMAL_REASONS_SHOWN:
            self._print(f"{'event':<10} {_event_line(ev)}")

    def close(self) -> None:
        pass


class LiveView(LineView):
    """A rich live table on a terminal: workloads with desired/updated/ready, the last events, and
    the phase with the seconds since the command started — redrawn `REFRESH` times a second by
    rich's refresh thread, so the clock ticks during a long build, a slow Job or a quiet rollout.
    The state is read by that thread: every change and every drawing holds `lock`."""

    MAX_EVENTS = 8
    REFRESH = 4  # redraws per second

    def __init__(self, console: Console, *, start: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from rich.live import Live

        super().__init__(console, start=start, clock=clock)
        self.lock = threading.RLock()
        self.states: dict[tuple[str, str, str], Status] = {}
        self.events: list[str] = []
        self.notes: list[str] = []
        self.live = Live(console=console, get_renderable=self._render, auto_refresh=True,
                         refresh_per_second=self.REFRESH, transient=False)
        self.live.start()

    def _render(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        with self.lock:
            table = Table(box=None, pad_edge=False, show_edge=False)
            for col in ("workload", "desired", "updated", "ready", "status"):
                table.add_column(col, no_wrap=col != "status")
            states = list(self.states.values())
            room = max(5, self.console.size.height - self.MAX_EVENTS - 8)
            done = [st for st in states if st.done]
            shown = states if len(states) <= room else [st for st in states if not st.done][:room]
            for st in shown:
                style = "red" if st.failed else "green" if st.done else "yellow"
                table.add_row(str(st.ref), "-" if st.desired is None else str(st.desired), str(st.updated),
                              str(st.ready), Text(st.failed or st.message, style=style))
            parts: list[Any] = [Text(n, style="dim") for n in self.notes[-3:]]
            if states:
                parts.append(table)
            if len(shown) < len(states):  # a big stack: the finished ones as a count
                parts.append(Text(f"{len(done)} of {len(states)} workloads rolled out"
                                  + (f", {len(states) - len(done) - len(shown)} more waiting not shown"
                                     if len(states) - len(done) > len(shown) else ""), style="green"))
            if self.events:
                parts.append(Text("events:", style="bold"))
                parts.extend(Text("  " + e, style="dim") for e in self.events[-self.MAX_EVENTS:])
            parts.append(Text(f"{self.current + ' ' if self.current else ''}{self.elapsed():.1f}s", style="dim"))
            return Group(*parts)

    def phase(self, text: str) -> None:
        with self.lock:
            self.current = text

    def note(self, text: str) -> None:
        with self.lock:
            self.notes.append(text)

    def applied(self, item: Applied) -> None:
        pass

    def deleted(self, ref: Ref, what: str) -> None:
        with self.lock:
            self.notes.append(f"{what} {ref}")

    def workload(self, st: Status) -> None:
        with self.lock:
            self.states[st.ref.key] = st

    def event(self, ev: Mapping[str, Any]) -> None:
        with self.lock:
            self.events.append(_event_line(ev))

    def close(self) -> None:
        with self.lock:
            self.current = ""
        self.live.stop()  # draws once more: the final state


class QuietView:
    def phase(self, text: str) -> None: ...
    def note(self, text: str) -> None: ...
    def applied(self, item: Applied) -> None: ...
    def deleted(self, ref: Ref, what: str) -> None: ...
    def workload(self, st: Status) -> None: ...
    def event(self, ev: Mapping[str, Any]) -> None: ...
    def close(self) -> None: ...


# ---------------------------------------------------------------------------------------------
# Watching
# ---------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    done: list[Status] = field(default_factory=list)
    failed: list[Status] = field(default_factory=list)
    pending: list[Status] = field(default_factory=list)
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed and not self.pending


class Watcher:
    """Watches a namespace's workloads (selected by label) and events until `close()`.

    `pod_selector`: the label selector of the stack's pods (and ReplicaSets): with it, `wait()`
    fails fast on the pods of any workload kind; without it, only on Jobs' pods (those are
    watched by their Job label). `fail_fast=False` waits for the deadline as kubectl does."""

    def __init__(self, cluster: Cluster, namespace: str, *, selector: str | None, view: View,
                 event_names: Iterable[str] = (), pod_selector: str | None = None, fail_fast: bool = True) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.selector = selector
        self.pod_selector = pod_selector
        self.fail_fast = fail_fast
        self.view = view
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.synced: set[str] = set()  # kinds whose first list has arrived
        self.watched: set[str] = set()
        self.prefixes: set[str] = set(event_names)
        self.job_pods: dict[str, dict[str, str]] = {}  # Job uid → pod name → phase
        self.pods: dict[str, dict[str, dict[str, Any]]] = {}  # controller uid → pod name → pod
        self.sets: dict[str, dict[str, dict[str, Any]]] = {}  # controller uid → ReplicaSet name → ReplicaSet
        self.pod_events: dict[str, dict[str, dict[str, Any]]] = {}  # pod uid (or name) → event uid → event
        self.changed = False  # pods, ReplicaSets or pod events changed since `wait` last judged them
        self.events: list[dict[str, Any]] = []
        self._events_started = False

    # -- threads ---------------------------------------------------------------------------------
    def _thread(self, target: Any, *args: Any) -> None:
        t = threading.Thread(target=target, args=args, daemon=True, name=f"watch-{args[0] if args else ''}")
        t.start()
        self.threads.append(t)

    def start_events(self) -> None:
        """Start following the namespace's events from now on (call before applying)."""
        if self._events_started:
            return
        self._events_started = True
        kind = KINDS[("v1", "Event")]
        try:
            _, rv = self.cluster.list(kind, self.namespace, limit=1)
        except ApiError:
            return
        self._thread(self._run_events, "events", kind, rv)

    def _run_events(self, _name: str, kind: Kind, rv: str) -> None:
        while not self.stop.is_set():
            try:
                for etype, obj in self.cluster.watch(kind, self.namespace, rv, stop=self.stop, timeout=50):
                    if etype == "ERROR":
                        _, rv = self.cluster.list(kind, self.namespace, limit=1)
                        break
                    rv = obj.get("metadata", {}).get("resourceVersion", rv)
                    if etype in ("ADDED", "MODIFIED"):
                        self.queue.put(("event", obj))
            except Exception as exc:  # a lost event stream only costs the live view
                if self.stop.wait(0.5):
                    return
                self.queue.put(("note", f"event stream interrupted ({exc}); resuming"))

    def follow(self, kinds: Iterable[str]) -> None:
        """Watch these workload kinds and what `wait` needs beside them: pods (a Job's completion;
        fail fast) and ReplicaSets (which pods are a Deployment's new revision)."""
        wanted = set(kinds)
        pods = self.fail_fast and self.pod_selector is not None and bool(wanted & set(POD_OWNERS))
        extra = {"Pod"} if "Job" in wanted or pods else set()
        if pods and wanted & {"Deployment", "Rollout"}:
            extra.add("ReplicaSet")
        self.ensure(wanted | extra)

    def ensure(self, kinds: Iterable[str]) -> None:
        for kind_name in kinds:
            if kind_name in self.watched:
                continue
            self.watched.add(kind_name)
            kind = next(k for k in KINDS.values() if k.kind == kind_name)
            self._thread(self._run_kind, kind_name, kind)

    def _run_kind(self, _name: str, kind: Kind) -> None:
        rv = ""
        # Pods and ReplicaSets: the stack's (their labels are the pod template's); without that
        # selector, every pod a Job controller made (see `status`).
        selector = {"Pod": self.pod_selector or JOB_POD_SELECTOR, "ReplicaSet": self.pod_selector}.get(
            kind.kind, self.selector)
        while not self.stop.is_set():
            try:
                if not rv:
                    items, rv = self.cluster.list(kind, self.namespace, selector=selector)
                    self.queue.put(("list", (kind.kind, items)))
                for etype, obj in self.cluster.watch(kind, self.namespace, rv, selector=selector,
                                                     stop=self.stop, timeout=50):
                    if etype == "ERROR":  # 410 Gone: our resourceVersion is too old; list again
                        rv = ""
                        break
                    rv = obj.get("metadata", {}).get("resourceVersion", rv)
                    if etype == "BOOKMARK":
                        continue
                    self.queue.put((etype, obj))
            except Exception as exc:  # re-list and go on: a watch may drop at any time
                if self.stop.wait(0.5):
                    return
                self.queue.put(("note", f"watch of {kind.kind} interrupted ({exc}); resuming"))
                rv = ""

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=2)

    # -- consuming ---------------------------------------------------------------------------------
    def _handle(self, item: tuple[str, Any]) -> list[tuple[str, str, str]]:
        """Apply one queue item; returns the keys of workloads that changed."""
        what, payload = item
        if what == "event":
            obj = payload.get("involvedObject") or {}
            name = str(obj.get("name", ""))
            if any(name == p or name.startswith(p + "-") for p in self.prefixes):
                self.events.append(payload)
                self.view.event(payload)
                if obj.get("kind") == "Pod":
                    meta = payload.get("metadata") or {}
                    pod = self.pod_events.setdefault(str(obj.get("uid") or name), {})
                    pod[str(meta.get("uid") or meta.get("name"))] = payload  # a repeat updates its count
                    self.changed = True
            return []
        if what == "note":
            self.view.note(str(payload))
            return []
        if what == "list":
            kind_name, items = payload
            self.synced.add(kind_name)
            if kind_name in ("Pod", "ReplicaSet"):  # a (re-)list is the whole state
                (self.pods if kind_name == "Pod" else self.sets).clear()
                self.changed = True
            keys = []
            for obj in items:
                keys += self._store("ADDED", obj)
            return keys
        return self._store(what, payload)

    def _store(self, what: str, payload: dict[str, Any]) -> list[tuple[str, str, str]]:
        if payload.get("kind") in ("Pod", "ReplicaSet"):
            index = self.pods if payload["kind"] == "Pod" else self.sets
            owner = _controller_uid(payload)
            if owner:
                if what == "DELETED":
                    index.get(owner, {}).pop(payload["metadata"]["name"], None)
                else:
                    index.setdefault(owner, {})[payload["metadata"]["name"]] = payload
            self.changed = True
        if payload.get("kind") == "ReplicaSet":
            return []
        if payload.get("kind") == "Pod":
            labels = (payload.get("metadata") or {}).get("labels") or {}
            uid = labels.get(JOB_UID_LABEL) or labels.get("controller-uid")
            if not uid:
                return []
            pods = self.job_pods.setdefault(uid, {})
            name = payload["metadata"]["name"]
            if what == "DELETED":
                pods.pop(name, None)
            else:
                pods[name] = str((payload.get("status") or {}).get("phase", ""))
            return [key for key, obj in self.objects.items()
                    if obj.get("kind") == "Job" and obj["metadata"].get("uid") == uid]
        key = Ref.of(payload).key
        if what == "DELETED":
            self.objects.pop(key, None)
        else:
            self.objects[key] = payload
        return [key]

    def hold(self, target: Ref, until: float) -> Status | None:
        """Follow `target` (already rolled out) until `until` (time.monotonic): the first status in
        which it is no longer rolled out (deleted, or pods no longer ready), or None when it stayed
        rolled out throughout. A canary step's pause."""
        self.ensure({target.kind})
        while (remaining := until - time.monotonic()) > 0:
            try:
                item = self.queue.get(timeout=remaining)
            except queue.Empty:
                break
            if target.key not in self._handle(item):
                continue
            obj = self.objects.get(target.key)
            st = status(obj) if obj is not None else Status(target, message="deleted", seen=False)
            if not st.done:
                self.view.workload(st)
                return st
        return None

    def wait(self, targets: Sequence[Ref], deadline: float, *,
             generations: Mapping[tuple[str, str, str], int] | None = None) -> Outcome:
        """Block until every target is done, one fails, or `deadline` (time.monotonic) passes.

        `generations`: per target, the metadata.generation the apply returned. Until the watch
        delivers at least that generation, what it holds is the object from before the apply (which
        may look rolled out), so it does not count.

        With `fail_fast`, a target also fails as soon as a pod of its new revision is blocked
        (`blocker`); a blocker with a grace period wakes the wait when that period ends."""
        start = time.monotonic()
        self.prefixes.update(t.name for t in targets)
        kinds = {t.kind for t in targets if t.kind in WATCHED}
        self.follow(kinds)
        wanted = {t.key: t for t in targets if t.kind in WATCHED}
        expected = generations or {}
        states: dict[tuple[str, str, str], Status] = {}
        grace = Grace()
        due: float | None = None  # when a blocker's grace period ends
        settle_due: float | None = None  # when a probe-less pod has run long enough to count
        companions = {k for k in ("Pod", "ReplicaSet") if k in self.watched}

        def refresh(keys: Iterable[tuple[str, str, str]]) -> None:
            nonlocal settle_due
            for key in keys:
                if key not in wanted:
                    continue
                obj = self.objects.get(key)
                if obj is None:
                    st = Status(wanted[key], message="not created yet", seen=False)
                elif int(obj.get("metadata", {}).get("generation") or 0) < expected.get(key, 0):
                    st = Status(wanted[key], message="waiting for the new spec to show up", seen=False)
                elif obj.get("kind") == "Job" and "Pod" in self.synced:
                    pods = self.job_pods.get(str(obj["metadata"].get("uid")), {})
                    st = status(obj, succeeded_pods=sum(1 for ph in pods.values() if ph == "Succeeded"))
                else:
                    st = status(obj)
                    # (a canary's pods are watched through its whole pause instead: `hold`)
                    if st.done and obj.get("kind") in POD_OWNERS and "Pod" in self.synced and not _canary(obj):
                        revision, _ = revision_pods(obj, self.pods, self.sets)
                        wait = unsettled(obj, revision, time.time())
                        if wait is not None:
                            settle_due = min(settle_due or math.inf, time.monotonic() + wait)
                            st = _with(st, done=False, message="running; no readiness probe, so watched "
                                                                f"for {SETTLE:g} s before it counts")
                if states.get(key) != st:
                    states[key] = st
                    if wanted[key].kind in self.synced:  # before its first list, "not created" means nothing
                        self.view.workload(st)

        def outcome(timed_out: bool = False) -> Outcome:
            return Outcome(done=[s for s in states.values() if s.done], failed=[s for s in states.values() if s.failed],
                           pending=[s for s in states.values() if not s.done and not s.failed], timed_out=timed_out)

        refresh(wanted)
        self.changed = True
        while True:
            now = time.monotonic()
            if all(t.kind in self.synced for t in wanted.values()):
                if self.fail_fast and companions <= self.synced and (self.changed or (due is not None and now >= due)):
                    self.changed = False
                    due = self._judge(wanted, states, grace, now, start)
                if any(s.failed for s in states.values()) or all(s.done for s in states.values()):
                    return outcome()
            if now >= deadline:
                return outcome(timed_out=True)
            if settle_due is not None and now >= settle_due:
                settle_due = None
                refresh(wanted)
                continue
            wake = min(deadline, due or math.inf, settle_due or math.inf)
            try:
                item = self.queue.get(timeout=wake - now)
            except queue.Empty:
                continue
            changed = self._handle(item)
            while True:  # drain what is already there before re-evaluating
                try:
                    changed += self._handle(self.queue.get_nowait())
                except queue.Empty:
                    break
            refresh(changed)

    def _judge(self, wanted: Mapping[tuple[str, str, str], Ref], states: dict[tuple[str, str, str], Status],
               grace: Grace, now: float, start: float) -> float | None:
        """Fail fast: mark the targets with a pod that is blocked (past its grace) failed; returns
        when the next pending grace period ends."""
        found: dict[tuple[str, ...], tuple[tuple[str, str, str], Blocker]] = {}
        for target in wanted:
            st, obj = states.get(target), self.objects.get(target)
            if st is None or obj is None or st.done or st.failed or not st.seen:
                continue
            pods, terminating = revision_pods(obj, self.pods, self.sets)
            for pod in pods:
                meta = _meta(pod)
                events = [*self.pod_events.get(str(meta.get("uid") or ""), {}).values(),
                          *self.pod_events.get(str(meta.get("name")), {}).values()]
                why = blocker(pod, events, others_terminating=terminating)
                if why is not None:
                    found[(str(meta.get("uid") or meta.get("name")), why.category, why.container)] = (target, why)
        fired, due = grace.check({key: why.grace for key, (_, why) in found.items()}, now)
        for key in fired:
            target, why = found[key]
            if states[target].failed:
                continue
            states[target] = _with(states[target], failed=f"{why.sentence} — stopped waiting after {now - start:.1f}s")
            self.view.workload(states[target])
        return due
