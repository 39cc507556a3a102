"""`stackctl promote` / `history` / `rollback` on a real control plane (see conftest.py).

Each test gets its own namespace; stackctl creates it from the profile. Most tests use a small
stack (`web` waits for the one-shot `migrate`, plus `worker`) because every promote costs a
`docker compose config`; the bundled example stack is promoted once, for real, in the first test.
"""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from stackctl_k8s_helpers import history, ok, ready, write_profile

pytestmark = [pytest.mark.k8s]

REPO = Path(__file__).resolve().parents[2]

DEMO = """
name: demo
services:
  web:
    image: {web_image}
    command: ["httpd", "-f", "-p", "8080"]
    ports: ["8080:8080"]
    environment:
      GREETING: ${{GREETING:-hello}}
{web_env}
    depends_on:
      migrate:
        condition: service_completed_successfully
{web_extra}
  migrate:
    image: stackctl-test/busybox:latest
    command: ["true"]
{migrate_extra}
{worker}
{extra}
"""

WORKER = """
  worker:
    image: {worker_image}
    command: ["sleep", "3600"]
{worker_extra}
"""


def write_demo(project: Any, namespace: str, *, worker: bool = True, web_extra: str = "", migrate_extra: str = "",
               worker_extra: str = "", profile_extra: str = "", extra: str = "", name: str = "dev",
               web_env: dict[str, str] | None = None, web_image: str = "stackctl-test/busybox:latest",
               worker_image: str = "stackctl-test/busybox:latest") -> None:
    def block(text: str) -> str:
        return textwrap.indent(textwrap.dedent(text).strip("\n"), "    ") if text else ""

    env = "\n".join(f"      {k}: {json.dumps(v)}" for k, v in (web_env or {}).items())
    compose = DEMO.format(web_image=web_image, web_env=env, web_extra=block(web_extra),
                          migrate_extra=block(migrate_extra),
                          worker=WORKER.format(worker_extra=block(worker_extra), worker_image=worker_image)
                          if worker else "",
                          extra=textwrap.indent(textwrap.dedent(extra).strip("\n"), "  ") if extra else "")
    (project.root / "compose.yaml").write_text(compose)
    write_profile(project, namespace, profile_extra, name=name)


def jobs_settled(kube: Any) -> None:
    """promote moves on when a Job's pods succeeded; the Job controller writes Complete up to a second
    later. Tests that compare resourceVersions wait for that write first."""
    def done() -> bool:
        return all(any(c["type"] in ("Complete", "Failed") and c["status"] == "True"
                       for c in (j.get("status") or {}).get("conditions") or []) for j in kube.items("jobs"))
    kube.wait_for(done, what="Jobs to be marked Complete")


# ---------------------------------------------------------------------------------------------
def test_fresh_promote_of_the_example_stack_then_repromote_is_a_no_op(project, cli, kube) -> None:
    project.write(".env.k8s", "DB_PASSWORD=s3cret-pw\nJWT_SECRET=abcdef0123456789\n")
    project.profile("k8s", f"""
        stack: shop
        compose:
          files: [{REPO / 'examples/shop/compose.yaml'}, {REPO / 'examples/shop/compose.prod.yaml'}]
          env_files: [.env.k8s]
        kubernetes:
          namespace: {kube.namespace}
          context: production
        """)
    res = ok(cli("promote", "k8s", "--context", "staging", "--timeout", "60"))
    assert "context staging" in res.stderr
    assert "revision 1" in res.stdout and "pruned 0" in res.stdout
    for kind, name in (("deployments", "api"), ("statefulsets", "db"), ("statefulsets", "cache")):
        assert ready(kube, name, kind), f"{kind}/{name} not rolled out"
    assert kube.get("deployments", "api")["spec"]["replicas"] == 3  # compose.prod.yaml
    # the migration's pod had succeeded before api was created (api waits for migrate)
    (pod,) = kube.items("pods", "batch.kubernetes.io/job-name")
    assert pod["status"]["phase"] == "Succeeded"
    finished = pod["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"]
    assert kube.get("deployments", "api")["metadata"]["creationTimestamp"] >= finished
    jobs_settled(kube)
    # every applied object carries the ApplySet label; the parent names the group-kinds
    parent = kube.get("secrets", "stackctl.applyset.shop")
    applyset = parent["metadata"]["labels"]["applyset.kubernetes.io/id"]
    assert parent["metadata"]["annotations"]["applyset.kubernetes.io/tooling"].startswith("stackctl/v")
    kinds = parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"].split(",")
    assert {"Deployment.apps", "StatefulSet.apps", "Job.batch", "Secret", "Service"} <= set(kinds)
    members = kube.items("deployments", f"applyset.kubernetes.io/part-of={applyset}")
    assert [m["metadata"]["name"] for m in members] == ["api"]
    # the secret values reached the cluster, only in Secrets
    secret_data = json.dumps([s.get("data", {}) for s in kube.items("secrets")])
    import base64
    assert base64.b64encode(b"s3cret-pw").decode() in secret_data
    assert "s3cret-pw" not in json.dumps(kube.items("configmaps"))
    revs = history(cli, "k8s")
    assert [(r["revision"], r["status"]) for r in revs] == [(1, "deployed")]
    assert revs[0]["context"] == "staging"

    before = kube.versions()
    res = ok(cli("promote", "k8s", "--context", "staging"))
    assert "no changes" in res.stdout and "revision 1" in res.stdout
    assert kube.versions() == before  # nothing was written: not even a new revision
    assert len(history(cli, "k8s")) == 1


def test_changed_replicas_change_only_that_object(project, cli, kube) -> None:
    write_demo(project, kube.namespace)
    ok(cli("promote", "dev"))
    jobs_settled(kube)
    rs_before = {r["metadata"]["name"] for r in kube.items("replicasets")}
    before = kube.versions()
    project.profile("dev", (project.root / "profiles/dev.yaml").read_text() + "services:\n  web:\n    replicas: 3\n")
    res = ok(cli("promote", "dev"))
    assert "created 0, configured 1," in res.stdout
    assert "configured Deployment/web" in res.stderr
    after = kube.versions()
    changed = {k for k in after if before.get(k) != after[k]}
    assert changed == {"deployments/web", "secrets/stackctl.rev.demo.v2", "secrets/stackctl.rev.demo.v1"}
    assert kube.get("deployments", "web")["spec"]["replicas"] == 3
    assert ready(kube, "web")
    assert {r["metadata"]["name"] for r in kube.items("replicasets")} == rs_before  # scaled, not rolled
    assert [(r["revision"], r["status"]) for r in history(cli)] == [(1, "superseded"), (2, "deployed")]


def test_removed_service_is_pruned_and_foreign_objects_are_untouched(project, cli, kube) -> None:
    write_demo(project, kube.namespace)
    ok(cli("promote", "dev"))
    labels = {"app.kubernetes.io/managed-by": "stackctl", "stackctl.io/stack": "demo"}  # look-alike, not a member
    kube.create("configmaps", {"metadata": {"name": "foreign", "labels": labels}, "data": {"a": "b"}})
    kube.create("deployments", {"metadata": {"name": "foreign-app"}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": "foreign"}},
        "template": {"metadata": {"labels": {"app": "foreign"}},
                     "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})
    write_demo(project, kube.namespace, worker=False)

    res = ok(cli("promote", "dev", "--dry-run"))
    assert "prune      Deployment/worker" in res.stdout
    assert kube.get("deployments", "worker") is not None

    res = ok(cli("promote", "dev", "--no-prune"))
    assert kube.get("deployments", "worker") is not None
    assert "kept 1 object(s) the stack no longer renders" in res.stdout and "Deployment/worker" in res.stdout

    res = ok(cli("promote", "dev"))
    assert "pruned 1" in res.stdout and "pruned     Deployment/worker" in res.stderr
    kube.wait_for(lambda: kube.get("deployments", "worker") is None, what="worker deleted")
    assert kube.get("configmaps", "foreign")["data"] == {"a": "b"}
    assert kube.get("deployments", "foreign-app") is not None
    parent = kube.get("secrets", "stackctl.applyset.demo")
    assert parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"] == \
        "ConfigMap,Deployment.apps,Job.batch,Service"


def test_dry_run_changes_nothing(project, cli, kube) -> None:
    write_demo(project, kube.namespace)
    res = ok(cli("promote", "dev", "--dry-run"))
    assert "create     Deployment/web" in res.stdout
    assert kube.plane.request("GET", f"/api/v1/namespaces/{kube.namespace}")[0] == 404
    ok(cli("promote", "dev"))
    jobs_settled(kube)
    before = kube.versions()
    project.profile("dev", (project.root / "profiles/dev.yaml").read_text() + "services:\n  web:\n    replicas: 4\n")
    res = ok(cli("promote", "dev", "--dry-run"))
    assert "configure  Deployment/web" in res.stdout and "1 change(s)" in res.stdout
    assert kube.versions() == before
    assert kube.get("deployments", "web")["spec"]["replicas"] == 1


def test_diff_exits_like_diff_and_masks_secret_values(project, cli, kube) -> None:
    write_demo(project, kube.namespace, web_env={"API_TOKEN": "tok-value-1"})
    res = cli("promote", "dev", "--diff")
    assert res.exit_code == 1, res
    assert "+++ promote/Deployment/web" in res.stdout
    ok(cli("promote", "dev"))
    res = cli("promote", "dev", "--diff")
    assert res.exit_code == 0 and res.stdout == "", res
    write_demo(project, kube.namespace, worker=False, web_env={"API_TOKEN": "tok-value-2"})
    res = cli("promote", "dev", "--diff")
    assert res.exit_code == 1, res
    assert "--- live/Deployment/worker" in res.stdout and "/dev/null (pruned)" in res.stdout
    assert "*** (changed)" in res.stdout
    assert "tok-value" not in res.stdout and "dG9rLXZhbHVl" not in res.stdout  # neither plain nor base64


def test_conflicts_are_reported_unless_forced(project, cli, kube) -> None:
    write_demo(project, kube.namespace)
    ok(cli("promote", "dev"))
    kube.api("PATCH", f"/apis/apps/v1/namespaces/{kube.namespace}/deployments/web?fieldManager=kubectl-edit",
             {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "busybox:edited"}]}}}},
             content_type="application/strategic-merge-patch+json")
    write_demo(project, kube.namespace, web_image="stackctl-test/busybox:v2")
    res = cli("promote", "dev")
    assert res.exit_code == 1, res
    assert "is managed by kubectl-edit" in res.stderr and "--force-conflicts" in res.stderr
    res = ok(cli("promote", "dev", "--force-conflicts"))
    image = kube.get("deployments", "web")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "stackctl-test/busybox:v2"


def timed(cli: Any, *args: str) -> tuple[Any, float]:
    t0 = time.monotonic()
    res = cli(*args)
    return res, time.monotonic() - t0


FAIL_FAST_LIMIT = 30.0  # s: what a fail-fast promote may take at most here, with --timeout 120


def test_a_pod_no_node_can_hold_is_refused_before_anything_is_applied(project, cli, kube) -> None:
    """It used to be applied, found unschedulable by the watch and rolled back (--atomic); the
    capacity check now refuses it up front, so the cluster and the history are as they were. (The
    watch's diagnosis of an unschedulable pod, for what only the scheduler knows (anti-affinity):
    tests/k8s/test_strategies.py and tests/unit/test_rollout_failfast.py.)"""
    write_demo(project, kube.namespace)
    ok(cli("promote", "dev"))
    before = kube.versions()
    project.profile("dev", (project.root / "profiles/dev.yaml").read_text()
                    + "services:\n  web:\n    resources:\n      requests: {cpus: 64}\n      limits: {cpus: 64}\n")
    res = cli("promote", "dev", "--atomic", "--timeout", "120")
    assert res.exit_code == 1, res
    said = " ".join(res.stderr.split())
    assert "web 1 × 64; its pods would stay Pending" in said, said
    assert "applying" not in said, said
    assert kube.versions() == before
    assert [(r["revision"], r["status"]) for r in history(cli)] == [(1, "deployed")]


def test_rollback_to_a_revision(project, cli, kube) -> None:
    write_demo(project, kube.namespace)
    base = (project.root / "profiles/dev.yaml").read_text()
    for n in (2, 3, 4):
        project.profile("dev", base + f"services:\n  web:\n    replicas: {n}\n")
        ok(cli("promote", "dev"))
    res = ok(cli("rollback", "dev", "--to", "1"))
    assert "rolled back to revision 1" in res.stdout
    assert kube.get("deployments", "web")["spec"]["replicas"] == 2
    assert ready(kube, "web"), (kube.get("deployments", "web")["status"], res.stderr)
    revs = history(cli)
    assert [(r["revision"], r["status"]) for r in revs][-2:] == [(3, "superseded"), (4, "deployed")]
    assert revs[-1]["description"] == "rollback to 1"
    res = ok(cli("rollback", "dev"))  # back to the newest good revision before the current one: 3
    assert kube.get("deployments", "web")["spec"]["replicas"] == 4
    res = cli("rollback", "dev", "--to", "9")
    assert res.exit_code == 2 and "no revision 9" in res.stderr


def test_protected_profile_refuses_the_wrong_context_and_asks(project, cli, kube) -> None:
    write_demo(project, kube.namespace, profile_extra="")
    text = (project.root / "profiles/dev.yaml").read_text().replace("context: stackctl-test",
                                                                     "context: production\n  protected: true")
    project.profile("prod", text)
    res = cli("promote", "prod", "--context", "stackctl-test", "--yes")
    assert res.exit_code == 2, res
    assert "profiles/prod.yaml: kubernetes.context: the profile is protected: it promotes only to context " \
           "'production', not 'stackctl-test'" in res.stderr
    res = cli("rollback", "prod", "--context", "staging")
    assert res.exit_code == 2 and "protected" in res.stderr
    res = cli("promote", "prod")  # nobody to answer
    assert res.exit_code == 2 and "pass --yes" in res.stderr
    res = cli("promote", "prod", input="n\n")
    assert res.exit_code == 1 and "not confirmed" in res.stderr
    assert kube.plane.request("GET", f"/api/v1/namespaces/{kube.namespace}")[0] == 404
    res = ok(cli("promote", "prod", input="y\n"))
    assert "context production" in res.stdout
    res = ok(cli("promote", "prod", "--diff"))  # read-only: no question
    res = cli("promote", "dev", "--context", "nope")
    assert res.exit_code == 2 and "no context 'nope' in the kubeconfig" in res.stderr


def test_secret_rotation_rolls_only_the_workloads_that_use_it(project, cli, kube) -> None:
    project.write(".env.example", """
        # @secret hex:16
        API_TOKEN=
        # @secret password:20
        DB_PASSWORD=
        GREETING=hello
        """)
    write_demo(project, kube.namespace, web_env={"API_TOKEN": "${API_TOKEN:?}"}, worker_extra="""
        environment:
          DB_PASSWORD: ${DB_PASSWORD:?}
        """)
    ok(cli("secrets", "generate", "-p", "dev"))
    ok(cli("promote", "dev"))

    def replicasets() -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for rs in kube.items("replicasets"):
            owner = rs["metadata"]["ownerReferences"][0]["name"]
            out.setdefault(owner, set()).add(rs["metadata"]["name"])
        return out

    before = replicasets()
    secret_before = kube.get("secrets", "demo-env")["data"]
    ok(cli("secrets", "rotate", "DB_PASSWORD", "-p", "dev"))
    res = ok(cli("promote", "dev"))
    assert "configured Deployment/worker" in res.stderr and "configured Deployment/web" not in res.stderr
    after = replicasets()
    assert after["web"] == before["web"]  # untouched
    assert len(after["worker"] - before["worker"]) == 1  # a new ReplicaSet
    secret_after = kube.get("secrets", "demo-env")["data"]
    assert secret_after["API_TOKEN"] == secret_before["API_TOKEN"]
    assert secret_after["DB_PASSWORD"] != secret_before["DB_PASSWORD"]
    assert ready(kube, "worker")


@pytest.mark.docker
@pytest.mark.engine
def test_built_images_are_pushed_with_an_immutable_tag_once(project, cli, kube, registry) -> None:
    project.write("app/Dockerfile", """
        FROM stackctl-test/busybox:latest
        COPY version.txt /version.txt
        CMD ["sleep", "3600"]
        """)
    project.write("app/version.txt", "1\n")
    write_demo(project, kube.namespace, worker_image="demo/app:dev", worker_extra="""
        build: ./app
        """)
    text = (project.root / "profiles/dev.yaml").read_text().replace(
        "context: stackctl-test", f"context: stackctl-test\n  registry: {registry}/stackctl-test")
    project.profile("dev", text)
    res = ok(cli("promote", "dev"))
    image = kube.get("deployments", "worker")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith(f"{registry}/stackctl-test/app:src-")
    assert f"image {image}: built and pushed" in res.stderr
    res = ok(cli("promote", "dev"))
    assert f"image {image}: already in the registry" in res.stderr and "no changes" in res.stdout
    project.write("app/version.txt", "2\n")
    res = ok(cli("promote", "dev"))
    image2 = kube.get("deployments", "worker")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image2 != image and image2.startswith(f"{registry}/stackctl-test/app:src-")
    assert "configured Deployment/worker" in res.stderr and "configured Deployment/web" not in res.stderr


@pytest.mark.parametrize("context", ["stackctl-certs", "stackctl-exec"])
def test_other_kubeconfig_credentials(project, cli, kube, context) -> None:
    """A client certificate goes through stackctl's own HTTPS transport; an exec plugin through the
    official client (watches included)."""
    write_demo(project, kube.namespace)
    res = ok(cli("promote", "dev", "--context", context))
    assert f"context {context}" in res.stdout and "revision 1" in res.stdout
    assert ready(kube, "web")
    assert history(cli)[0]["context"] == context


def test_rollback_does_not_replay_completed_jobs_unless_asked(project, cli, kube) -> None:
    write_demo(project, kube.namespace, worker=False)
    ok(cli("promote", "dev"))
    [first_job] = kube.names("jobs")
    write_demo(project, kube.namespace, worker=False, migrate_extra="""
        environment:
          MIGRATION: "2"
        """)
    ok(cli("promote", "dev"))
    [second_job] = kube.names("jobs")
    assert second_job != first_job  # a changed Job is a new Job; the old one was pruned
    res = ok(cli("rollback", "dev"))
    assert f"not run again: Job {first_job} (completed when revision 1 was deployed" in res.stderr, res.stderr
    assert kube.names("jobs") == []  # the rolled-back revision's Job does not run again; the newer one is pruned
    assert ready(kube, "web")
    res = ok(cli("rollback", "dev", "--to", "2", "--rerun-jobs"))
    assert "not run again" not in res.stderr
    assert kube.names("jobs") == [second_job]
