"""The pure parts of promote, without a cluster: rollout status, apply order, ApplySet identity,
diagnosis rules, image tags, guard rails, secret masking in diffs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackctl.errors import InputError
from stackctl.kubernetes import apply as ka
from stackctl.kubernetes import images as ki
from stackctl.kubernetes.client import cluster as kc
from stackctl.kubernetes.client import kubeconfig, transport
from stackctl.kubernetes.deploy import commands, deployer
from stackctl.kubernetes.deploy import diagnose as kd
from stackctl.kubernetes.deploy import history as kh
from stackctl.kubernetes.deploy.diff import _masked
from stackctl.kubernetes.deploy.watch import status
from stackctl.kubernetes.labels import L_APPLYSET_PART_OF, L_STACK


def deployment(*, replicas: int = 3, generation: int = 2, observed: int = 2, updated: int = 3, ready: int = 3,
               available: int | None = None, total: int | None = None, conditions: Any = ()) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "ns", "generation": generation},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": observed, "updatedReplicas": updated, "readyReplicas": ready,
                       "availableReplicas": ready if available is None else available,
                       "replicas": updated if total is None else total, "conditions": list(conditions)}}


# ---------------------------------------------------------------------------------------------
# rollout status
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kw", "done", "message"), [
    ({}, True, "rolled out"),
    ({"observed": 1}, False, "waiting for the controller to see the new spec"),
    ({"updated": 1, "ready": 1}, False, "1 of 3 new replicas updated"),
    ({"total": 4}, False, "1 old replicas pending termination"),
    ({"available": 2}, False, "2 of 3 updated replicas available"),
    ({"replicas": 2, "updated": 3, "total": 3}, False, "1 extra replicas terminating"),
])
def test_deployment_status_follows_kubectl(kw: dict[str, Any], done: bool, message: str) -> None:
    st = status(deployment(**kw))
    assert (st.done, st.message) == (done, message)


def test_scaled_down_deployment_waits_for_the_extra_replicas() -> None:
    # what the controller reports right after a scale-down from 4 to 2 (kubectl says "rolled out")
    obj = deployment(replicas=2, updated=2, ready=4, total=4)
    obj["status"]["updatedReplicas"] = 4
    assert not status(obj).done
    assert status(deployment(replicas=2, updated=2, ready=2)).done


def test_progress_deadline_is_a_failure() -> None:
    st = status(deployment(updated=1, ready=0, conditions=[
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
         "message": 'ReplicaSet "api-1" has timed out progressing.'}]))
    assert st.failed and "progress deadline exceeded" in st.failed and not st.done


def test_statefulset_daemonset_job_cronjob_status() -> None:
    sts = {"kind": "StatefulSet", "apiVersion": "apps/v1", "metadata": {"name": "db", "generation": 1},
           "spec": {"replicas": 2},
           "status": {"observedGeneration": 1, "readyReplicas": 2, "updatedReplicas": 1, "replicas": 2,
                      "currentRevision": "db-1", "updateRevision": "db-2"}}
    assert not status(sts).done
    sts["status"].update(updatedReplicas=2, currentRevision="db-2")
    assert status(sts).done
    sts["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}
    sts["status"].update(updatedReplicas=1)
    assert status(sts).message == "partitioned roll out complete"
    ds = {"kind": "DaemonSet", "apiVersion": "apps/v1", "metadata": {"name": "agent", "generation": 3},
          "status": {"observedGeneration": 3, "desiredNumberScheduled": 3, "updatedNumberScheduled": 2,
                     "numberAvailable": 2, "numberReady": 2}}
    assert status(ds).message == "2 of 3 pods updated"
    ds["status"].update(updatedNumberScheduled=3, numberAvailable=3)
    assert status(ds).done
    job = {"kind": "Job", "apiVersion": "batch/v1", "metadata": {"name": "migrate-1"}, "spec": {},
           "status": {"active": 1}}
    assert not status(job).done and not status(job).failed
    job["status"]["conditions"] = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                    "message": "Job has reached the specified backoff limit"}]
    assert status(job).failed == "BackoffLimitExceeded: Job has reached the specified backoff limit"
    job["status"]["conditions"] = [{"type": "Complete", "status": "True"}]
    assert status(job).done
    cron = {"kind": "CronJob", "apiVersion": "batch/v1", "metadata": {"name": "nightly"}}
    assert status(cron).done


# ---------------------------------------------------------------------------------------------
# apply order
# ---------------------------------------------------------------------------------------------
def obj(kind: str, name: str, wave: int = 1, **notes: str) -> dict[str, Any]:
    api = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "Job": "batch/v1", "Ingress": "networking.k8s.io/v1",
           "NetworkPolicy": "networking.k8s.io/v1", "HorizontalPodAutoscaler": "autoscaling/v2",
           "PodDisruptionBudget": "policy/v1"}.get(kind, "v1")
    return {"apiVersion": api, "kind": kind,
            "metadata": {"name": name, "namespace": "ns", "annotations": {"stackctl.io/wave": str(wave), **notes}}}


def test_phases_follow_the_safe_order() -> None:
    objects = [obj("Ingress", "api", 3), obj("NetworkPolicy", "np"), obj("Deployment", "api", 3),
               obj("Service", "api"), obj("PersistentVolumeClaim", "data"), obj("Secret", "env"),
               obj("Job", "migrate-1", 2, **{"stackctl.io/wait": "complete"}), obj("StatefulSet", "db", 2),
               obj("ConfigMap", "cfg"), obj("Namespace", "ns", 0), obj("HorizontalPodAutoscaler", "api", 3),
               obj("PodDisruptionBudget", "api", 3)]
    out = [(p.name, [f"{o['kind']}/{o['metadata']['name']}" for o in p.objects], [str(r) for r in p.await_jobs])
           for p in ka.phases(objects)]
    assert out == [
        ("namespace", ["Namespace/ns"], []),
        ("config", ["Secret/env", "ConfigMap/cfg"], []),
        ("volumes", ["PersistentVolumeClaim/data"], []),
        ("services", ["Service/api"], []),
        ("workloads-2", ["Job/migrate-1", "StatefulSet/db"], ["Job/migrate-1"]),
        ("workloads-3", ["Deployment/api"], []),
        ("policies", ["Ingress/api", "NetworkPolicy/np", "HorizontalPodAutoscaler/api", "PodDisruptionBudget/api"],
         []),
    ]


def test_conflict_causes_name_the_field_and_the_manager() -> None:
    ref = kc.Ref(kind="Deployment", name="web", namespace="ns", api_version="apps/v1")
    body = {"details": {"causes": [
        {"reason": "FieldManagerConflict", "message": 'conflict with "kubectl" with subresource "scale" using apps/v1',
         "field": ".spec.replicas"},
        {"reason": "FieldManagerConflict", "message": 'conflict with "kubectl-edit" using apps/v1',
         "field": '.spec.template.spec.containers[name="web"].image'}]}}
    err = kc.ConflictError(kc._conflicts(ref, body))
    assert str(err).startswith("2 field conflict(s) with other managers: Deployment/web: .spec.replicas is managed "
                               "by kubectl (subresource scale); Deployment/web: .spec.template.spec.containers")
    assert "--force-conflicts" in str(err)


# ---------------------------------------------------------------------------------------------
# ApplySet identity and revisions
# ---------------------------------------------------------------------------------------------
def test_applyset_id_is_kubectls() -> None:
    # kubectl 1.32 `apply --prune --applyset=secret/stackctl.applyset.shop -n apsettest` labelled its parent so
    release = kh.Release(stack="shop", namespace="apsettest", profile="production")
    assert release.applyset_id == "applyset-EcrQUKfNYnPi5khupCTehA663wzQULAfCyETqXqErI4-v1"
    assert len(release.applyset_id) <= 63


def test_members_get_the_part_of_label_but_the_namespace_does_not() -> None:
    release = kh.Release(stack="shop", namespace="ns", profile="p")
    dep = kh.member(obj("Deployment", "api"), release)
    assert dep["metadata"]["labels"] == {L_APPLYSET_PART_OF: release.applyset_id}
    assert "labels" not in kh.member(obj("Namespace", "ns"), release)["metadata"]
    assert kh.group_kinds([obj("Deployment", "a"), obj("Secret", "s"), obj("Namespace", "ns"),
                           obj("Job", "j")]) == ["Deployment.apps", "Job.batch", "Secret"]


def rev(number: int, status_: str) -> kh.Revision:
    return kh.Revision(number, status_, "", "", "", "", "", {}, {})


def test_the_pods_followed_are_those_of_the_stacks_pod_templates() -> None:
    def workload(kind: str, stack: str | None) -> dict[str, Any]:
        labels = {"app.kubernetes.io/name": "x", **({L_STACK: stack} if stack else {})}
        return {"kind": kind, "metadata": {"name": "x", "labels": {L_STACK: "not-this"}},
                "spec": {"template": {"metadata": {"labels": labels}}}}

    assert deployer.pod_selector([workload("Deployment", "shop"), workload("Job", "shop"),
                            {"kind": "ConfigMap", "metadata": {"name": "c"}}]) == "stackctl.io/stack=shop"
    assert deployer.pod_selector([workload("Deployment", "shop"), workload("StatefulSet", "db")]) == \
        "stackctl.io/stack in (db,shop)"
    assert deployer.pod_selector([workload("Deployment", None)]) is None  # then only Jobs fail fast


def test_pick_rollback() -> None:
    revs = [rev(1, "superseded"), rev(2, "failed"), rev(3, "superseded"), rev(4, "deployed")]
    assert kh.pick_rollback(revs, None, where="x").number == 3
    assert kh.pick_rollback(revs, 1, where="x").number == 1
    with pytest.raises(InputError, match="revision 2 failed"):
        kh.pick_rollback(revs, 2, where="x")
    with pytest.raises(InputError, match="no revision 7"):
        kh.pick_rollback(revs, 7, where="x")
    with pytest.raises(InputError, match="nothing to roll back to"):
        kh.pick_rollback([rev(1, "deployed")], None, where="x")
    with pytest.raises(InputError, match="promote it first"):
        kh.pick_rollback([], None, where="x")


# ---------------------------------------------------------------------------------------------
# guard rails
# ---------------------------------------------------------------------------------------------
def test_protected_profiles_promote_only_to_their_context() -> None:
    pick = commands.choose_context
    assert pick(requested=None, profile_context="prod", protected=True, current="dev", profile_file="p") == "prod"
    assert pick(requested="prod", profile_context="prod", protected=True, current=None, profile_file="p") == "prod"
    with pytest.raises(InputError) as info:
        pick(requested="dev", profile_context="prod", protected=True, current="dev", profile_file="profiles/p.yaml")
    assert info.value.exit_code == 2 and "only to context 'prod', not 'dev'" in str(info.value)
    assert pick(requested=None, profile_context=None, protected=False, current="dev", profile_file="p") == "dev"
    assert pick(requested="x", profile_context="y", protected=False, current="dev", profile_file="p") == "x"
    with pytest.raises(InputError, match="no kubeconfig context"):
        pick(requested=None, profile_context=None, protected=False, current=None, profile_file="p")


def test_diff_masks_secret_values() -> None:
    a = {"kind": "Secret", "data": {"A": "b2xk", "B": "c2FtZQ=="}}
    b = {"kind": "Secret", "data": {"A": "bmV3", "B": "c2FtZQ=="}}
    assert _masked(a, b)["data"] == {"A": "*** (changed)", "B": "***"}
    assert _masked({"kind": "ConfigMap", "data": {"A": "x"}}, None) == {"kind": "ConfigMap", "data": {"A": "x"}}


# ---------------------------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------------------------
def test_content_digest_follows_the_sources(tmp_path: Path) -> None:
    ctx = tmp_path / "app"
    (ctx / "src").mkdir(parents=True)
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    (ctx / "src" / "main.py").write_text("print(1)\n")
    (ctx / "notes.log").write_text("x")
    first = ki.content_digest(ctx, None, None, {})
    assert ki.content_digest(ctx, None, None, {}) == first
    (ctx / "notes.log").write_text("y")
    changed_log = ki.content_digest(ctx, None, None, {})
    assert changed_log != first
    (ctx / ".dockerignore").write_text("*.log\n")
    ignored = ki.content_digest(ctx, None, None, {})
    (ctx / "notes.log").write_text("z")
    assert ki.content_digest(ctx, None, None, {}) == ignored  # ignored files do not count
    (ctx / "src" / "main.py").write_text("print(2)\n")
    assert ki.content_digest(ctx, None, None, {}) != ignored
    assert ki.content_digest(ctx, None, "prod", {}) != ki.content_digest(ctx, None, None, {})
    assert ki.content_digest(ctx, None, None, {"V": "1"}) != ki.content_digest(ctx, None, None, {"V": "2"})


def test_retag_points_every_container_at_the_immutable_ref(tmp_path: Path) -> None:
    plan = ki.ImagePlan(service="api", rendered="reg/x/api:dev", ref="reg/x/api:src-0123456789abcdef",
                        context=tmp_path, dockerfile=None, target=None, args={})
    dep = {"kind": "Deployment", "spec": {"template": {"spec": {
        "initContainers": [{"name": "wait", "image": "busybox:1.37"}],
        "containers": [{"name": "api", "image": "reg/x/api:dev"}]}}}}
    out = ki.retag([dep], [plan])[0]
    assert out["spec"]["template"]["spec"]["containers"][0]["image"] == plan.ref
    assert out["spec"]["template"]["spec"]["initContainers"][0]["image"] == "busybox:1.37"
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "reg/x/api:dev"  # input untouched
    assert ki._loopback("127.0.0.1:5000/x:y") and ki._loopback("localhost:5000/x") and not ki._loopback("ghcr.io/x")


def test_a_job_whose_image_is_a_new_build_is_a_new_job(tmp_path: Path) -> None:
    """A Job's pod template is immutable: the same rendered Job with another build of its image must
    get another name (seen on a real node: a code change made the re-promote fail with `field is
    immutable`), and the same build must keep its name (no second run)."""
    def plan(tag: str) -> ki.ImagePlan:
        return ki.ImagePlan(service="api", rendered="reg/x/api:dev", ref=f"reg/x/api:src-{tag}", context=tmp_path,
                            dockerfile=None, target=None, args={})

    job = {"kind": "Job", "metadata": {"name": "migrate-c3d23e54"},
           "spec": {"template": {"spec": {"containers": [{"name": "migrate", "image": "reg/x/api:dev"}]}}}}
    one = ki.retag([job], [plan("1" * 16)])[0]["metadata"]["name"]
    two = ki.retag([job], [plan("2" * 16)])[0]["metadata"]["name"]
    assert one != two and one.startswith("migrate-") and two.startswith("migrate-")
    assert len(one) == len("migrate-c3d23e54")  # the render's suffix replaced, not another appended
    assert ki.retag([job], [plan("1" * 16)])[0]["metadata"]["name"] == one
    other = {**job, "metadata": {"name": "seed-0badc0de"}, "spec": {"template": {"spec": {"containers": [
        {"name": "seed", "image": "busybox:1.37"}]}}}}
    assert ki.retag([other], [plan("1" * 16)])[0]["metadata"]["name"] == "seed-0badc0de"  # not a build: unchanged


# ---------------------------------------------------------------------------------------------
# diagnosis rules
# ---------------------------------------------------------------------------------------------
WL = deployment(updated=1, ready=0)
WL["spec"]["selector"] = {"matchLabels": {"app": "api"}}


def pod(name: str = "api-1", *, phase: str = "Running", conditions: Any = (), containers: Any = (),
        init: Any = (), spec: Any = None, node: str | None = "n1") -> dict[str, Any]:
    return {"metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {**({"nodeName": node} if node else {}),
                     "containers": [{"name": "api", "image": "api:1", "resources": {"requests": {"cpu": "64"}}}],
                     **(spec or {})},
            "status": {"phase": phase, "conditions": list(conditions), "containerStatuses": list(containers),
                       "initContainerStatuses": list(init)}}


def event(name: str, reason: str, message: str, kind: str = "Pod") -> dict[str, Any]:
    return {"involvedObject": {"kind": kind, "name": name}, "reason": reason, "message": message,
            "type": "Warning", "lastTimestamp": "2026-01-01T00:00:01Z"}


def findings(**kw: Any) -> list[kd.Finding]:
    return kd.diagnose(kd.Evidence(workload=kw.pop("workload", WL), **kw))


def unschedulable(message: str) -> dict[str, Any]:
    return pod(phase="Pending", node=None, conditions=[{"type": "PodScheduled", "status": "False",
                                                       "reason": "Unschedulable", "message": message}])


def test_scheduling_rules() -> None:
    f = findings(pods=[unschedulable("0/3 nodes are available: 3 Insufficient cpu.")])
    assert (f[0].category, f[0].details) == ("resources", ("requests per pod: cpu 64",))
    f = findings(pods=[unschedulable("0/3 nodes are available: 3 node(s) had untolerated taint "
                                     "{dedicated: gpu}.")])
    assert f[0].category == "taints"
    f = findings(pods=[unschedulable("0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.")])
    assert f[0].category == "placement"
    claim = {"metadata": {"name": "data-db-0"}, "spec": {"storageClassName": "fast"}, "status": {"phase": "Pending"}}
    f = findings(pods=[unschedulable("0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims.")],
                 claims=[claim], events=[event("data-db-0", "ProvisioningFailed",
                                               'storageclass.storage.k8s.io "fast" not found',
                                               kind="PersistentVolumeClaim")])
    assert f[0].category == "volume"
    assert 'PersistentVolumeClaim/data-db-0 is Pending (storage class fast): storageclass.storage.k8s.io "fast" ' \
           'not found' in f[0].details


def test_container_rules() -> None:
    pull = pod(phase="Pending", containers=[{"name": "api", "image": "reg/api:9", "state": {"waiting": {
        "reason": "ImagePullBackOff", "message": 'Back-off pulling image "reg/api:9"'}}}])
    f = findings(pods=[pull])
    assert (f[0].category, f[0].title) == ("image", "container api cannot pull its image (ImagePullBackOff)")
    crash = pod(containers=[{"name": "api", "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                             "lastState": {"terminated": {"exitCode": 2, "reason": "Error"}}}])
    f = findings(pods=[crash], logs={("api-1", "api"): "starting\nKeyError: 'DATABASE_URL'\n"})
    assert f[0].title == "container api exits with code 2 (Error), restarted 4 times"
    assert f[0].details == ("last log lines:", "| starting", "| KeyError: 'DATABASE_URL'")
    oom = pod(containers=[{"name": "api", "restartCount": 1, "state": {"running": {}},
                           "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}])
    assert "memory" in findings(pods=[oom], logs={("api-1", "api"): None})[0].hint
    config = pod(phase="Pending", containers=[{"name": "api", "state": {"waiting": {
        "reason": "CreateContainerConfigError", "message": 'secret "shop-env" not found'}}}])
    assert findings(pods=[config])[0].category == "config"
    init = pod(phase="Pending", init=[{"name": "wait-for-db", "state": {"running": {}}}],
               containers=[{"name": "api", "state": {"waiting": {"reason": "PodInitializing"}}}])
    assert (findings(pods=[init])[0].category, findings(pods=[init])[0].title) == (
        "init", "waiting in init container wait-for-db")
    unready = pod(containers=[{"name": "api", "ready": False, "state": {"running": {}}}],
                  conditions=[{"type": "Ready", "status": "False"}],
                  spec={"containers": [{"name": "api", "readinessProbe": {"httpGet": {"port": 8000, "path": "/ready"},
                                                                          "periodSeconds": 5}}]})
    f = findings(pods=[unready], events=[event("api-1", "Unhealthy", "Readiness probe failed: HTTP 503")])
    assert f[0].category == "probe" and "readinessProbe of api: GET :8000/ready every 5s" in f[0].details


def test_a_container_restarted_by_its_startup_probe_is_a_probe_finding_not_a_crash() -> None:
    restarted = pod(containers=[{"name": "api", "restartCount": 2, "state": {"running": {}},
                                 "lastState": {"terminated": {"exitCode": 137, "reason": "Error"}}}],
                    spec={"containers": [{"name": "api", "startupProbe": {"tcpSocket": {"port": 80},
                                                                          "periodSeconds": 2}}]})
    f = findings(pods=[restarted], events=[
        event("api-1", "Unhealthy", "Startup probe failed: dial tcp :80: connection refused"),
        event("api-1", "Killing", "Container api failed startup probe, will be restarted")])
    assert (f[0].category, f[0].title) == ("probe", "container api never passes its startup probe (restarted 2 times)")
    assert f[0].details == ("Startup probe failed: dial tcp :80: connection refused",
                            "startupProbe of api: TCP :80 every 2s")
    assert findings(pods=[restarted])[0].category == "crash"  # without the kubelet's word, a crash


def test_workload_rules_and_merging() -> None:
    f = findings(pods=[], events=[event("api-7f", "FailedCreate", 'pods "api-7f-x" is forbidden: exceeded quota: '
                                                                  "compute, requested: cpu=64", kind="ReplicaSet")])
    assert f[0].category == "quota"
    f = findings(pods=[])
    assert f[0].category == "controller" and f[0].title == "no pods exist yet"
    job = {"kind": "Job", "apiVersion": "batch/v1", "metadata": {"name": "migrate-1", "namespace": "ns"},
           "spec": {"selector": {"matchLabels": {"job": "x"}}},
           "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                      "message": "Job has reached the specified backoff limit"}]}}
    failed_pod = pod("migrate-1-abc", phase="Failed", containers=[{"name": "migrate", "state": {"terminated": {
        "exitCode": 3, "reason": "Error"}}}])
    f = findings(workload=job, pods=[failed_pod], logs={("migrate-1-abc", "migrate"): "boom\n"})
    assert [x.category for x in f] == ["job", "crash"]
    assert f[1].title == "container migrate exits with code 3 (Error)" and "| boom" in f[1].details
    many = [unschedulable("0/3 nodes are available: 3 Insufficient cpu.") for _ in range(5)]
    for i, p in enumerate(many):
        p["metadata"]["name"] = f"api-{i}"
    f = findings(pods=many)
    assert len(f) == 1 and len(f[0].pods) == 5
    assert "[5 pods: api-0, api-1, api-2 and 2 more]" in f[0].lines()[0]
    healthy = pod(containers=[{"name": "api", "ready": True, "state": {"running": {}}}],
                  conditions=[{"type": "Ready", "status": "True"}])
    assert findings(pods=[healthy])[0].category == "unknown"


def test_static_credentials_use_the_lean_transport_and_the_rest_the_official_client(tmp_path: Path,
                                                                                  monkeypatch) -> None:
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "token").write_text("t0k\n")
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "tok",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True}},
                     {"name": "p", "cluster": {"server": "https://10.0.0.1", "proxy-url": "http://proxy:3128"}}],
        "users": [{"name": "tok", "user": {"tokenFile": "token"}},
                  {"name": "exe", "user": {"exec": {"command": "gcloud"}}}],
        "contexts": [{"name": "tok", "context": {"cluster": "c", "user": "tok"}},
                     {"name": "exe", "context": {"cluster": "c", "user": "exe"}},
                     {"name": "proxied", "context": {"cluster": "p", "user": "tok"}}],
    }
    import json as _json

    path = tmp_path / "config"
    path.write_text(_json.dumps(config))
    found = kubeconfig.contexts(str(path))
    assert found.names == ("tok", "exe", "proxied") and found.current == "tok"
    assert found.servers["proxied"] == "https://10.0.0.1"
    lean = transport._lean_transport(found, "tok")
    assert lean is not None and lean.headers == {"Authorization": "Bearer t0k"}  # tokenFile, relative to the file
    assert transport._lean_transport(found, "exe") is None
    assert transport._lean_transport(found, "proxied") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    assert transport._lean_transport(found, "tok") is None
