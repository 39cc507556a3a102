"""`canary.controller: argo-rollouts` on the real control plane with the real Argo Rollouts.

The controller and its CRDs are built from the Go module proxy (scripts/argo-rollouts.sh) and
installed for this module only (`argo` fixture); the first test runs before that, on the same
cluster without the CRD. The CRDs (and with them every Rollout) are deleted at the module's end.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from stackctl_k8s_helpers import ok, revisions, write_profile

pytestmark = [pytest.mark.k8s]

COMPOSE = """
name: demo
services:
  web:
    image: stackctl-test/busybox:latest
    command: ["httpd", "-f", "-p", "8080"]
    ports: ["8080:8080"]
    environment:
      GREETING: {greeting}
{extra}
"""
STEPS = "[{weight: 25, pause: 1s}, {weight: 50, pause: 1s}]"


def write(project: Any, namespace: str, *, greeting: str = "hello", extra: str = "", steps: str = STEPS,
          replicas: int = 4, strategy: str = "") -> None:
    extra = textwrap.indent(textwrap.dedent(extra).strip("\n"), "    ") if extra else ""
    (project.root / "compose.yaml").write_text(COMPOSE.format(greeting=json.dumps(greeting), extra=extra))
    write_profile(project, namespace, f"""
        services:
          web:
            replicas: {replicas}
            {strategy or f"strategy: canary{chr(10)}            canary: {{controller: argo-rollouts, steps: {steps}}}"}
        """)


def rollout(kube: Any) -> dict[str, Any]:
    status, data = kube.plane.request(
        "GET", f"/apis/argoproj.io/v1alpha1/namespaces/{kube.namespace}/rollouts/web")
    assert status == 200, data
    return dict(data)


def pod_greeting_hash(obj: dict[str, Any]) -> str:
    return str(obj["spec"]["template"]["metadata"]["annotations"]["stackctl.io/config-hash"])


def test_without_argo_rollouts_promote_names_the_setting_and_applies_nothing(project, cli, kube) -> None:
    write(project, kube.namespace)
    res = cli("render", "kubernetes", "-p", "dev", "--validate")  # offline: stackctl's own schema
    assert res.exit_code == 0, res.stderr
    assert "kind: Rollout" in res.stdout and "setWeight: 25" in res.stdout
    res = cli("promote", "dev")
    assert res.exit_code == 2, res
    assert "profiles/dev.yaml: services.web.canary.controller: runs as an Argo Rollouts Rollout" in res.stderr
    assert "does not serve argoproj.io/v1alpha1 Rollout" in res.stderr
    assert kube.plane.request("GET", f"/api/v1/namespaces/{kube.namespace}")[0] == 404  # nothing applied
    assert doctor(cli) == ("fail", "context 'stackctl-test' does not serve argoproj.io/v1alpha1 Rollout, which "
                               "profiles/dev.yaml asks for (services.web.canary.controller)")


def doctor(cli: Any) -> tuple[str, str]:
    """`stackctl doctor`'s Argo Rollouts check: (status, detail)."""
    res = cli("doctor", "-p", "dev", "-o", "json")
    check = next(c for c in json.loads(res.stdout) if c["name"] == "argo rollouts")
    return check["status"], check["detail"]


@pytest.fixture(scope="module")
def argo(control_plane: Any) -> Iterator[Any]:
    from stackctl_k8s_rig import ArgoRollouts, RigError, argo_rollouts_dir

    try:
        directory = argo_rollouts_dir()
    except RigError as exc:
        if os.environ.get("STACKCTL_REQUIRE_K8S") == "1":
            pytest.fail(f"Argo Rollouts is required in CI but could not be built: {exc}", pytrace=False)
        pytest.skip(f"no Argo Rollouts build ({exc})")
    installed = ArgoRollouts.install(control_plane, directory)
    try:
        yield installed
    finally:
        installed.uninstall()


def test_argo_canary_goes_through_its_steps(project, cli, kube, argo) -> None:
    write(project, kube.namespace)
    assert doctor(cli)[0] == "ok"
    res = ok(cli("promote", "dev"))
    assert "created    Rollout/web" in res.stderr and "ready      Rollout/web" in res.stderr
    first = rollout(kube)
    assert first["status"]["phase"] == "Healthy" and first["status"]["readyReplicas"] == 4
    assert first["spec"]["strategy"]["canary"]["steps"] == [
        {"setWeight": 25}, {"pause": {"duration": "1s"}}, {"setWeight": 50}, {"pause": {"duration": "1s"}}]
    stable_hash = first["status"]["stableRS"]

    write(project, kube.namespace, greeting="bonjour")
    res = ok(cli("promote", "dev"))
    err = res.stderr
    # promote followed the controller through the steps, and waited for the pauses
    assert "configured Rollout/web" in err
    assert "Paused, step 1/4" in err and "Paused, step 3/4" in err, err
    assert err.index("Paused, step 1/4") < err.index("Paused, step 3/4") < err.index("ready      Rollout/web")
    now = rollout(kube)
    assert now["status"]["phase"] == "Healthy"
    assert now["status"]["stableRS"] != stable_hash and now["status"]["stableRS"] == now["status"]["currentPodHash"]
    assert pod_greeting_hash(now) != pod_greeting_hash(first)
    assert revisions(cli) == [(1, "superseded"), (2, "deployed")]

    res = ok(cli("promote", "dev"))  # nothing changed
    assert "no changes" in res.stdout


def test_argo_canary_that_never_gets_ready_is_diagnosed_aborted_and_rolled_back(project, cli, kube, argo) -> None:
    steps = "[{weight: 50, pause: 30s}]"
    write(project, kube.namespace, steps=steps, replicas=2)
    ok(cli("promote", "dev"))
    stable = rollout(kube)["status"]["stableRS"]

    # a version whose pods never get ready: promote times out, diagnoses, records a failed revision
    write(project, kube.namespace, greeting="hola", steps=steps, replicas=2, extra="""
        labels:
          sim.stackctl.io/state: unready
        """)
    res = cli("promote", "dev", "--timeout", "3")
    assert res.exit_code == 1, res
    assert "Rollout/web" in res.stderr and "running but failing its probes" in res.stderr, res.stderr
    assert revisions(cli)[-1] == (2, "failed")
    assert rollout(kube)["status"]["stableRS"] == stable  # the stable pods kept serving

    # promote --abort: the Argo controller scales the canary down, stable stays
    res = ok(cli("promote", "dev", "--abort"))
    assert "aborted: Rollout/web" in res.stdout
    kube.wait_for(lambda: rollout(kube)["status"].get("phase") == "Degraded", what="the Rollout aborted")
    assert rollout(kube)["status"]["abort"] is True
    kube.wait_for(lambda: rollout(kube)["status"].get("updatedReplicas", 0) == 0, what="canary scaled down")

    # --atomic on the same bad version: the failed attempt is undone by deploying revision 1 again,
    # which Argo takes as a rollback to the stable ReplicaSet
    res = cli("promote", "dev", "--timeout", "3", "--atomic")
    assert res.exit_code == 1, res
    assert "rolled back to revision 1" in res.stderr, res.stderr
    now = rollout(kube)
    assert now["status"]["phase"] == "Healthy" and now["status"]["currentPodHash"] == stable
    assert revisions(cli)[-1][1] == "deployed"


def test_apply_takes_back_the_fields_the_argo_controller_rewrote(kube, argo) -> None:
    """A Rollout written without `resources: {}` (not as stackctl renders it): the controller writes
    the template back and becomes owner of the containers; the next apply takes them back instead
    of failing on a conflict (argoproj/argo-rollouts#3281)."""
    from stackctl.kubernetes.client import Ref, connect

    kube.api("POST", "/api/v1/namespaces", {"metadata": {"name": kube.namespace}})

    def body(greeting: str) -> dict[str, Any]:
        container = {"name": "web", "image": "stackctl-test/busybox:latest", "env": [
            {"name": "GREETING", "value": greeting}]}
        return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                "metadata": {"name": "web", "namespace": kube.namespace},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}},
                         "strategy": {"canary": {"steps": [{"setWeight": 50}]}}}}

    def controller_owns_containers() -> bool:
        fields = rollout(kube)["metadata"].get("managedFields") or []
        return any(f.get("manager") == "rollouts-controller" and "f:containers" in json.dumps(f.get("fieldsV1"))
                   for f in fields)

    cluster = connect("stackctl-test")
    try:
        cluster.apply(body("hello"))
        kube.wait_for(controller_owns_containers, what="the controller to own the containers")
        cluster.apply(body("bonjour"))  # no ConflictError
        live = cluster.get(Ref(kind="Rollout", name="web", namespace=kube.namespace,
                               api_version="argoproj.io/v1alpha1"))
    finally:
        cluster.close()
    assert live is not None
    assert live["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "GREETING", "value": "bonjour"}]


def active_hash(kube: Any) -> str:
    """The ReplicaSet hash the Service selects (Argo adds it to the active Service's selector)."""
    return str(kube.get("services", "web")["spec"]["selector"].get("rollouts-pod-template-hash", ""))


def test_argo_blue_green_switches_the_service_once_the_new_version_is_ready(project, cli, kube, argo) -> None:
    bg = "strategy: blue-green\n            blue_green: {controller: argo-rollouts}"
    write(project, kube.namespace, replicas=2, strategy=bg)
    res = ok(cli("promote", "dev"))
    assert "ready      Rollout/web" in res.stderr
    first = rollout(kube)
    assert first["spec"]["strategy"] == {"blueGreen": {"activeService": "web", "autoPromotionEnabled": True}}
    assert first["status"]["phase"] == "Healthy" and active_hash(kube) == first["status"]["stableRS"]

    write(project, kube.namespace, replicas=2, strategy=bg, greeting="bonjour")
    ok(cli("promote", "dev"))
    now = rollout(kube)
    assert now["status"]["phase"] == "Healthy"
    assert now["status"]["currentPodHash"] != first["status"]["stableRS"]
    assert active_hash(kube) == now["status"]["currentPodHash"]  # switched to the new version
    assert revisions(cli) == [(1, "superseded"), (2, "deployed")]

    # a version that never gets ready is never switched to; --atomic goes back to revision 2
    write(project, kube.namespace, replicas=2, strategy=bg, greeting="hola", extra="""
        labels:
          sim.stackctl.io/state: unready
        """)
    res = cli("promote", "dev", "--timeout", "3", "--atomic")
    assert res.exit_code == 1, res
    assert "rolled back to revision 2" in res.stderr, res.stderr
    assert active_hash(kube) == now["status"]["currentPodHash"]  # traffic never moved
    kube.wait_for(lambda: rollout(kube)["status"].get("phase") == "Healthy", what="back on revision 2")
