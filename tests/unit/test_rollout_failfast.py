"""Fail fast (stackctl/kubernetes/deploy/watch.py): which pods of the revision being rolled out will not
become ready by themselves, decided on plain pod and event dicts; the grace clock; which pods are
the new revision's. No cluster."""

from __future__ import annotations

from typing import Any

import pytest

from stackctl.kubernetes.deploy import watch as r
from stackctl.kubernetes.deploy.watch import Blocker, Grace, blocker, revision_pods

T0 = "2025-01-01T10:00:00Z"
T1 = "2025-01-01T10:00:05Z"


def pod(name: str = "api-7c9d-xk2", *, phase: str = "Running", containers: Any = (), init: Any = (),
        conditions: Any = (), spec: dict[str, Any] | None = None, uid: str = "uid-1", **meta: Any) -> dict[str, Any]:
    names = [c["name"] for c in containers] or ["api"]
    return {"kind": "Pod", "metadata": {"name": name, "uid": uid, **meta},
            "spec": spec or {"containers": [{"name": n} for n in names]},
            "status": {"phase": phase, "conditions": list(conditions), "containerStatuses": list(containers),
                       "initContainerStatuses": list(init)}}


def waiting(reason: str, *, name: str = "api", restarts: int = 0, message: str = "", **more: Any) -> dict[str, Any]:
    return {"name": name, "restartCount": restarts, "ready": False, "started": False,
            "state": {"waiting": {"reason": reason, **({"message": message} if message else {})}}, **more}


def event(reason: str, message: str, *, pod_name: str = "api-7c9d-xk2", uid: str | None = "uid-1", count: int = 1,
          container: str | None = None, name: str = "ev-1") -> dict[str, Any]:
    obj: dict[str, Any] = {"kind": "Pod", "name": pod_name}
    if uid:
        obj["uid"] = uid
    if container:
        obj["fieldPath"] = f"spec.containers{{{container}}}"
    return {"metadata": {"name": name, "uid": name}, "involvedObject": obj, "reason": reason, "message": message,
            "count": count, "type": "Warning"}


UNSCHEDULABLE = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                 "message": "0/3 nodes are available: 3 Insufficient cpu."}


# ---------------------------------------------------------------------------------------------
# the rules
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reason", ["ImagePullBackOff", "ErrImagePull", "InvalidImageName"])
def test_an_image_that_cannot_be_pulled_blocks_at_once(reason: str) -> None:
    found = blocker(pod(phase="Pending", containers=[waiting(reason)]))
    assert found == Blocker("api-7c9d-xk2", "image", f"cannot pull its image ({reason})")
    assert found.sentence == f"pod api-7c9d-xk2 cannot pull its image ({reason})"


def test_the_container_is_named_when_the_pod_has_several_and_init_containers_come_first() -> None:
    spec = {"initContainers": [{"name": "wait-db"}], "containers": [{"name": "api"}, {"name": "log"}]}
    found = blocker(pod(phase="Pending", spec=spec, init=[waiting("ErrImagePull", name="wait-db")],
                        containers=[waiting("CrashLoopBackOff", name="log", restarts=9)]))
    assert found is not None and found.sentence == "pod api-7c9d-xk2 (init container wait-db) cannot pull its " \
                                                   "image (ErrImagePull)"
    found = blocker(pod(spec=spec, containers=[{"name": "api", "ready": True, "state": {"running": {}}},
                                               waiting("CrashLoopBackOff", name="log", restarts=2)]))
    assert found is not None and found.container == "container log" and found.category == "crash"


def test_a_missing_secret_blocks_only_after_its_grace() -> None:
    found = blocker(pod(phase="Pending", containers=[waiting("CreateContainerConfigError",
                                                             message='secret "shop-env" not found')]))
    assert found is not None and found.category == "config" and found.grace == r.CONFIG_GRACE
    assert found.text == 'cannot start its container (CreateContainerConfigError: secret "shop-env" not found)'
    assert blocker(pod(containers=[waiting("CreateContainerError")])).grace == r.CONFIG_GRACE  # type: ignore[union-attr]


def test_crash_loops_block_from_the_second_restart_and_oom_from_the_first() -> None:
    assert blocker(pod(containers=[waiting("CrashLoopBackOff", restarts=1)])) is None  # maybe a blip
    found = blocker(pod(containers=[waiting("CrashLoopBackOff", restarts=2)]))
    assert found is not None and found.text == "keeps crashing (CrashLoopBackOff, restarted 2 times)"
    oom = {"name": "api", "restartCount": 1, "ready": False, "started": True, "state": {"running": {"startedAt": T1}},
           "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}
    found = blocker(pod(containers=[oom]))
    assert found is not None and found.text == "runs out of memory (OOMKilled, restarted once)"
    assert blocker(pod(containers=[{**oom, "restartCount": 0}])) is None
    # a plain non-zero exit without a back-off yet, a container still creating: not (yet) blocked
    assert blocker(pod(containers=[waiting("ContainerCreating")])) is None
    assert blocker(pod(containers=[{"name": "api", "restartCount": 1, "state": {"running": {}},
                                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}])) is None


def test_unschedulable_has_a_grace_and_waits_for_an_autoscaler_or_a_terminating_pod() -> None:
    pending = pod(phase="Pending", conditions=[UNSCHEDULABLE], containers=[])
    found = blocker(pending)
    assert found is not None and (found.category, found.grace) == ("unschedulable", r.UNSCHEDULABLE_GRACE)
    assert found.text == "cannot be scheduled (0/3 nodes are available: 3 Insufficient cpu.)"
    assert blocker(pending, others_terminating=True) is None  # a rolling update frees room soon
    scale_up = event("TriggeredScaleUp", "pod triggered scale-up: [{pool 1->2 (max: 5)}]")
    assert blocker(pending, [scale_up]) is None
    assert blocker(pending, [{**scale_up, "involvedObject": {"kind": "Pod", "name": "other-pod"}}]) is not None
    scheduled = pod(phase="Pending", conditions=[{"type": "PodScheduled", "status": "True"}],
                    containers=[waiting("ContainerCreating")])
    assert blocker(scheduled) is None


def test_a_startup_probe_that_used_up_its_budget() -> None:
    spec = {"containers": [{"name": "api", "startupProbe": {"httpGet": {"port": 80}, "failureThreshold": 3}}]}
    restarted = {"name": "api", "restartCount": 1, "ready": False, "started": False,
                 "state": {"running": {"startedAt": T1}}, "lastState": {"terminated": {"exitCode": 137,
                                                                                       "reason": "Error"}}}
    killing = event("Killing", "Container api failed startup probe, will be restarted", container="api")
    found = blocker(pod(spec=spec, containers=[restarted]), [killing])
    assert found is not None and found.category == "startup"
    assert found.text == "never passes its startup probe (restarted once after it failed)"
    # the Unhealthy events alone: as many as the probe's failureThreshold (`count` adds repeats up)
    unhealthy = event("Unhealthy", "Startup probe failed: connection refused", count=2)
    assert blocker(pod(spec=spec, containers=[restarted]), [unhealthy]) is None
    unhealthy["count"] = 3
    assert blocker(pod(spec=spec, containers=[restarted]), [unhealthy]) is not None
    # not restarted yet: the probe still has budget
    assert blocker(pod(spec=spec, containers=[{**restarted, "restartCount": 0}]), [killing]) is None
    # another container's events do not count
    other = event("Killing", "Container log failed startup probe, will be restarted", container="log")
    assert blocker(pod(spec=spec, containers=[restarted]), [other]) is None


def _unready(*, threshold: int | None = 3, since: str = T0, started: str = T1, restarts: int = 0,
             ready_status: str = "False") -> dict[str, Any]:
    probe: dict[str, Any] = {"httpGet": {"port": 8080, "path": "/ready"}, "periodSeconds": 5}
    if threshold is not None:
        probe["failureThreshold"] = threshold
    return pod(spec={"containers": [{"name": "api", "readinessProbe": probe}]},
               conditions=[{"type": "Ready", "status": ready_status, "lastTransitionTime": since}],
               containers=[{"name": "api", "restartCount": restarts, "ready": False, "started": True,
                            "state": {"running": {"startedAt": started}}}])


def test_a_readiness_probe_that_never_passed_failure_threshold_times() -> None:
    failed = event("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503", count=3)
    found = blocker(_unready(), [failed])
    assert found is not None and found.category == "readiness"
    assert found.text == "never becomes ready: its readiness probe failed 3 times and never passed " \
                         "(failureThreshold 3)"
    # the counts of several events add up (different messages are different events)
    split = [event("Unhealthy", "Readiness probe failed: 503", count=2, name="a"),
             event("Unhealthy", "Readiness probe failed: connection refused", name="b")]
    assert blocker(_unready(), split) is not None
    assert blocker(_unready(), [{**failed, "count": 2}]) is None  # fewer than failureThreshold
    assert blocker(_unready(threshold=None), [failed]) is not None  # the API default, 3
    assert blocker(_unready(threshold=1), [{**failed, "count": 1}]) is not None
    # it was ready after it started (Ready changed later), or is ready: a flap, not "never ready"
    assert blocker(_unready(since="2025-01-01T10:01:00Z"), [failed]) is None
    assert blocker(_unready(ready_status="True"), [failed]) is None
    # restarted (the events may be an earlier run's): left to the crash and startup rules
    assert blocker(_unready(restarts=1), [failed]) is None
    # liveness failures and another pod's events do not count
    assert blocker(_unready(), [{**failed, "message": "Liveness probe failed: 503"}]) is None
    assert blocker(_unready(), [event("Unhealthy", "Readiness probe failed: 503", count=3, uid="uid-old")]) is None
    assert blocker(_unready(), [event("Unhealthy", "Readiness probe failed: 503", count=3, uid=None)]) is not None
    # no readiness probe at all: nothing to fail
    no_probe = _unready()
    no_probe["spec"]["containers"][0].pop("readinessProbe")
    assert blocker(no_probe, [failed]) is None


def test_a_pod_being_deleted_or_healthy_is_never_a_blocker() -> None:
    assert blocker(pod(containers=[waiting("ImagePullBackOff")], deletionTimestamp=T1)) is None
    assert blocker(pod(containers=[{"name": "api", "ready": True, "started": True,
                                    "state": {"running": {"startedAt": T0}}}])) is None


def test_events_of_the_events_api_are_read_too() -> None:
    ev = {"metadata": {"name": "e", "uid": "e"}, "regarding": {"kind": "Pod", "name": "api-7c9d-xk2", "uid": "uid-1"},
          "reason": "Unhealthy", "note": "Readiness probe failed: 503", "series": {"count": 3}}
    assert blocker(_unready(), [ev]) is not None


# ---------------------------------------------------------------------------------------------
# the grace clock
# ---------------------------------------------------------------------------------------------
def test_grace_counts_from_the_first_sighting_and_restarts_when_the_state_clears() -> None:
    g = Grace()
    key = ("uid-1", "unschedulable", "")
    assert g.check({key: 15.0}, 100.0) == ([], 115.0)
    assert g.check({key: 15.0}, 110.0) == ([], 115.0)
    assert g.check({key: 15.0}, 115.0) == ([key], None)
    assert g.check({}, 116.0) == ([], None)  # it cleared
    assert g.check({key: 15.0}, 117.0) == ([], 132.0)  # from zero again
    now = ("uid-2", "image", "")
    assert g.check({key: 15.0, now: 0.0}, 118.0) == ([now], 132.0)


# ---------------------------------------------------------------------------------------------
# which pods are the new revision's
# ---------------------------------------------------------------------------------------------
def _owned(obj: dict[str, Any], owner: str) -> dict[str, Any]:
    obj["metadata"]["ownerReferences"] = [{"uid": owner, "controller": True, "kind": "X", "name": "x"}]
    return obj


def _index(*objs: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for o in objs:
        owner = o["metadata"]["ownerReferences"][0]["uid"]
        out.setdefault(owner, {})[o["metadata"]["name"]] = o
    return out


def _names(pods: Any) -> list[str]:
    return sorted(p["metadata"]["name"] for p in pods)


def test_a_deployments_new_revision_is_its_current_replicaset() -> None:
    dep = {"kind": "Deployment", "metadata": {"name": "api", "uid": "d", "generation": 2,
                                              "annotations": {r.REVISION_ANNOTATION: "2"}},
           "status": {"observedGeneration": 2}}
    old_rs = _owned({"metadata": {"name": "api-old", "uid": "rs1", "annotations": {r.REVISION_ANNOTATION: "1"}}}, "d")
    new_rs = _owned({"metadata": {"name": "api-new", "uid": "rs2", "annotations": {r.REVISION_ANNOTATION: "2"}}}, "d")
    old = _owned(pod("api-old-a", uid="p1"), "rs1")
    new = _owned(pod("api-new-b", uid="p2"), "rs2")
    sets, pods = _index(old_rs, new_rs), _index(old, new)
    assert (_names(revision_pods(dep, pods, sets)[0]), revision_pods(dep, pods, sets)[1]) == (["api-new-b"], False)
    old["metadata"]["deletionTimestamp"] = T1
    assert revision_pods(dep, pods, sets)[1] is True  # an old pod is going: room frees up
    # before the controller saw the new spec, its revision annotation names the previous one
    assert revision_pods({**dep, "status": {"observedGeneration": 1}}, pods, sets) == ([], False)


def test_statefulset_daemonset_job_and_rollout_revisions() -> None:
    sts = {"kind": "StatefulSet", "metadata": {"name": "db", "uid": "s", "generation": 3},
           "status": {"observedGeneration": 3, "updateRevision": "db-2", "currentRevision": "db-1"}}
    pods = _index(_owned(pod("db-0", uid="a", labels={r.STS_REVISION_LABEL: "db-1"}), "s"),
                  _owned(pod("db-1", uid="b", labels={r.STS_REVISION_LABEL: "db-2"}), "s"))
    assert _names(revision_pods(sts, pods, {})[0]) == ["db-1"]
    ds = {"kind": "DaemonSet", "metadata": {"name": "agent", "uid": "d", "generation": 4},
          "status": {"observedGeneration": 4}}
    pods = _index(_owned(pod("agent-a", uid="a", labels={r.DS_GENERATION_LABEL: "3"}), "d"),
                  _owned(pod("agent-b", uid="b", labels={r.DS_GENERATION_LABEL: "4"}), "d"))
    assert _names(revision_pods(ds, pods, {})[0]) == ["agent-b"]
    job = {"kind": "Job", "metadata": {"name": "migrate-1", "uid": "j", "generation": 1}, "status": {}}
    pods = _index(_owned(pod("migrate-1-x", uid="a"), "j"), _owned(pod("other-x", uid="b"), "k"))
    assert _names(revision_pods(job, pods, {})[0]) == ["migrate-1-x"]
    ro = {"kind": "Rollout", "metadata": {"name": "web", "uid": "r", "generation": 2},
          "status": {"observedGeneration": "2", "currentPodHash": "h2"}}
    sets = _index(_owned({"metadata": {"name": "web-h1", "uid": "rs1", "labels": {r.ARGO_HASH_LABEL: "h1"}}}, "r"),
                  _owned({"metadata": {"name": "web-h2", "uid": "rs2", "labels": {r.ARGO_HASH_LABEL: "h2"}}}, "r"))
    pods = _index(_owned(pod("web-h1-a", uid="a"), "rs1"), _owned(pod("web-h2-b", uid="b"), "rs2"))
    assert _names(revision_pods(ro, pods, sets)[0]) == ["web-h2-b"]
    assert revision_pods({**ro, "status": {"observedGeneration": "1", "currentPodHash": "h1"}}, pods, sets) == \
        ([], False)
    assert revision_pods({"kind": "CronJob", "metadata": {"name": "c", "uid": "c"}}, pods, sets) == ([], False)


# ---------------------------------------------------------------------------------------------
# the wait: a Watcher over a cluster that lists fixed objects and then reports no change
# ---------------------------------------------------------------------------------------------
class StillCluster:
    """Lists what it was given; its watches deliver nothing until stopped."""

    def __init__(self, **items: list[dict[str, Any]]) -> None:
        self.items = items
        self.selectors: dict[str, str | None] = {}

    def list(self, kind: Any, namespace: str | None, *, selector: str | None = None, **_: Any) -> Any:
        self.selectors[kind.kind] = selector
        return [dict(o, kind=kind.kind) for o in self.items.get(kind.kind, [])], "1"

    def watch(self, kind: Any, namespace: str | None, rv: str, *, stop: Any, **_: Any) -> Any:
        stop.wait(60)
        yield from ()


def _rolling_deployment(new_pod: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    dep = {"apiVersion": "apps/v1", "metadata": {"name": "api", "namespace": "ns", "uid": "d", "generation": 2,
                                                 "annotations": {r.REVISION_ANNOTATION: "2"}},
           "spec": {"replicas": 1},
           "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "readyReplicas": 1}}
    rs = _owned({"apiVersion": "apps/v1", "metadata": {"name": "api-7c9d", "uid": "rs2",
                                                       "annotations": {r.REVISION_ANNOTATION: "2"}}}, "d")
    return {"Deployment": [dep], "ReplicaSet": [rs], "Pod": [_owned(new_pod, "rs2")]}


def _wait(cluster: StillCluster, timeout: float, **kw: Any) -> tuple[Any, float]:
    import time

    from stackctl.kubernetes.client import Ref
    from stackctl.kubernetes.deploy.watch import QuietView, Watcher

    watcher = Watcher(cluster, "ns", selector="part-of=x", pod_selector="stackctl.io/stack=demo", view=QuietView(),
                      **kw)
    t0 = time.monotonic()
    try:
        out = watcher.wait([Ref(kind="Deployment", name="api", namespace="ns", api_version="apps/v1")], t0 + timeout)
    finally:
        watcher.close()
    return out, time.monotonic() - t0


def test_wait_stops_at_a_blocked_pod_of_the_new_revision_and_names_it() -> None:
    cluster = StillCluster(**_rolling_deployment(pod(phase="Pending", containers=[waiting("ImagePullBackOff")])))
    out, elapsed = _wait(cluster, 30)
    assert elapsed < 5 and not out.timed_out
    (failed,) = out.failed
    assert str(failed.ref) == "Deployment/api"
    assert failed.failed.startswith("pod api-7c9d-xk2 cannot pull its image (ImagePullBackOff) — stopped waiting "
                                    "after ")
    assert cluster.selectors["Pod"] == cluster.selectors["ReplicaSet"] == "stackctl.io/stack=demo"


def test_wait_without_fail_fast_runs_to_the_deadline() -> None:
    cluster = StillCluster(**_rolling_deployment(pod(phase="Pending", containers=[waiting("ImagePullBackOff")])))
    out, elapsed = _wait(cluster, 1.0, fail_fast=False)
    assert out.timed_out and not out.failed and elapsed >= 1.0
    assert "Pod" not in cluster.selectors  # not even watched


def test_a_grace_period_ends_the_wait_without_any_news_from_the_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(r, "UNSCHEDULABLE_GRACE", 0.5)
    cluster = StillCluster(**_rolling_deployment(pod(phase="Pending", conditions=[UNSCHEDULABLE], containers=[])))
    out, elapsed = _wait(cluster, 30)
    assert 0.5 <= elapsed < 5 and not out.timed_out
    assert "cannot be scheduled (0/3 nodes are available: 3 Insufficient cpu.)" in out.failed[0].failed


def test_a_blocked_pod_of_the_previous_revision_does_not_end_the_wait() -> None:
    items = _rolling_deployment(pod(containers=[{"name": "api", "ready": True, "started": True,
                                                 "state": {"running": {"startedAt": T0}}}]))
    items["ReplicaSet"].append(_owned({"apiVersion": "apps/v1", "metadata": {
        "name": "api-old", "uid": "rs1", "annotations": {r.REVISION_ANNOTATION: "1"}}}, "d"))
    items["Pod"].append(_owned(pod("api-old-x", uid="p-old", containers=[waiting("CrashLoopBackOff", restarts=7)]),
                               "rs1"))
    out, _ = _wait(StillCluster(**items), 1.0)
    assert out.timed_out and not out.failed
