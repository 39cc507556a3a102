"""`canary.controller: argo-rollouts`: the Rollout the renderer emits, the schema stackctl checks it
with (no CRD needed), and how promote reads a Rollout's status (pure parts; the controller itself
runs in tests/k8s/test_argo_rollouts.py)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from stackctl.compose.loader import to_model
from stackctl.errors import ProfileError
from stackctl.kubernetes.deploy import argo
from stackctl.kubernetes.deploy.watch import status
from stackctl.kubernetes.inputs import Target
from stackctl.kubernetes.labels import L_TRACK
from stackctl.kubernetes.render import Rendered, render
from stackctl.kubernetes.validate import validate
from stackctl.profile import load_profile
from stackctl.profile.types import (
    Autoscaling,
    BlueGreen,
    Canary,
    CanaryStep,
    KubernetesSettings,
    ServiceOverride,
    UpdateSettings,
)

WEB = {"image": "nginx:1.27", "ports": [{"target": 80, "published": "8080", "protocol": "tcp"}],
       "deploy": {"replicas": 4}}
ARGO = Canary(steps=(CanaryStep(weight=10, pause=30), CanaryStep(weight=50, pause=0)), controller="argo-rollouts")


def run(override: ServiceOverride, services: dict[str, Any] | None = None) -> Rendered:
    target = Target(profile="production", profile_file="profiles/production.yaml",
                    kubernetes=KubernetesSettings(namespace="demo-prod"), services={"web": override},
                    defaults=ServiceOverride())
    return render(to_model({"name": "demo", "services": services or {"web": WEB}}), target)


def test_argo_canary_renders_a_rollout_instead_of_a_deployment() -> None:
    r = run(ServiceOverride(strategy="canary", canary=ARGO, update=UpdateSettings(max_surge=1, max_unavailable=0)))
    assert r.of_kind("Deployment") == []
    ro = r.get("Rollout", "web")
    assert ro["apiVersion"] == "argoproj.io/v1alpha1" and ro["spec"]["replicas"] == 4
    assert ro["spec"]["strategy"] == {"canary": {"maxSurge": 1, "maxUnavailable": 0, "steps": [
        {"setWeight": 10}, {"pause": {"duration": "30s"}}, {"setWeight": 50}]}}  # a 0 pause is no pause step
    assert L_TRACK not in ro["spec"]["selector"]["matchLabels"]  # Argo tells its ReplicaSets apart itself
    assert ro["spec"]["template"]["spec"]["containers"][0]["resources"] == {}  # as the controller writes it back
    assert r.get("Service", "web")["spec"]["selector"] == ro["spec"]["selector"]["matchLabels"]
    assert r.workload("web") is ro
    assert validate(list(r.objects), "1.35") == []
    assert argo.pauses(ro) == 30 and argo.services(r.objects) == ["web"]


def test_argo_canary_may_autoscale_the_rollout() -> None:
    r = run(ServiceOverride(strategy="canary", canary=ARGO, autoscaling=Autoscaling(min_replicas=2, max_replicas=6),
                            resources=ServiceOverride().resources),
            {"web": {**WEB, "deploy": {"replicas": 4, "resources": {"reservations": {"cpus": "0.25"}}}}})
    hpa = r.get("HorizontalPodAutoscaler", "web")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "web"}
    assert "replicas" not in r.get("Rollout", "web")["spec"]
    assert validate(list(r.objects), "1.35") == []


def test_a_recreated_service_cannot_be_an_argo_canary() -> None:
    with pytest.raises(ProfileError, match=r"services.web.canary.controller: a canary needs old and new pods side by "
                                           r"side"):
        run(ServiceOverride(strategy="canary", canary=ARGO, kind="Deployment"),
            {"web": {**WEB, "volumes": [{"type": "volume", "source": "data", "target": "/data"}]}})


def _rollout() -> dict[str, Any]:
    return copy.deepcopy(run(ServiceOverride(strategy="canary", canary=ARGO)).get("Rollout", "web"))


@pytest.mark.parametrize(("change", "path", "message"), [
    (lambda o: o["spec"]["strategy"]["canary"]["steps"].append({"setWeight": 120}),
     "spec.strategy.canary.steps[3].setWeight", "120 is greater than the maximum of 100"),
    (lambda o: o["spec"]["strategy"]["canary"]["steps"].append({"setWeight": 60, "pause": {}}),
     "spec.strategy.canary.steps[3]", "has too many properties"),
    (lambda o: o["spec"]["strategy"]["canary"]["steps"].append({"setWeight": 5}),
     "spec.strategy.canary.steps[3].setWeight", "less than an earlier step's 50"),
    (lambda o: o["spec"]["strategy"]["canary"]["steps"][1]["pause"].update(duration="soon"),
     "spec.strategy.canary.steps[1].pause.duration", "not a valid value"),
    (lambda o: o["spec"]["strategy"].update(blueGreen={"activeService": "web"}),
     "spec.strategy", "has too many properties"),
    (lambda o: o["spec"].update(replica=3), "spec", "'replica' was unexpected"),
    (lambda o: o["spec"]["template"]["spec"]["containers"][0].update(image=7),
     "spec.template.spec.containers[0].image", "7 is not of type"),
    (lambda o: o["spec"]["strategy"]["canary"].update(maxSurge=0, maxUnavailable="0%"),
     "spec.strategy.canary", "cannot both be 0"),
    (lambda o: o["spec"]["selector"]["matchLabels"].update(extra="x"), "spec.selector",
     "does not match the pod template's labels"),
])
def test_the_rollout_schema_refuses_what_argo_would(change: Any, path: str, message: str) -> None:
    obj = _rollout()
    change(obj)
    problems = [p for p in validate([obj], "1.35") if p.path == path]
    assert problems and message in problems[0].message, validate([obj], "1.35")


def test_rollout_status_follows_the_argo_controller() -> None:
    obj = _rollout()
    obj["metadata"]["generation"] = 2
    obj["status"] = {"observedGeneration": "1", "phase": "Healthy"}
    assert not status(obj).done and "to see the new spec" in status(obj).message
    obj["status"] = {"observedGeneration": "2", "phase": "Paused", "currentStepIndex": 1, "replicas": 5,
                     "updatedReplicas": 1, "readyReplicas": 5, "message": "CanaryPauseStep"}
    st = status(obj)
    assert not st.done and not st.failed and st.message == "Paused, step 1/3, CanaryPauseStep"
    assert st.counts == "4/1/5"
    obj["status"].update(phase="Healthy", currentStepIndex=3, updatedReplicas=4, readyReplicas=4, message="")
    assert status(obj).done
    obj["status"].update(phase="Degraded", message="ProgressDeadlineExceeded: ReplicaSet web-abc has timed out")
    assert status(obj).failed == "ProgressDeadlineExceeded: ReplicaSet web-abc has timed out"
    obj["status"].update(abort=True, message="RolloutAborted: Rollout aborted update to revision 2")
    assert status(obj).failed == "aborted: RolloutAborted: Rollout aborted update to revision 2"


def test_profile_canary_controller(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n")
    prof = tmp_path / "profiles/production.yaml"
    prof.write_text("compose: {files: [compose.yaml]}\nservices: {web: {strategy: canary, canary: "
                    "{controller: argo-rollouts}}}\n")
    assert load_profile(tmp_path, "production").services["web"].canary == Canary(controller="argo-rollouts")
    prof.write_text("compose: {files: [compose.yaml]}\nservices: {web: {strategy: canary, canary: "
                    "{controller: flagger}}}\n")
    with pytest.raises(ProfileError, match=r"profiles/production.yaml: services.web.canary.controller: must be one "
                                           r"of stackctl, argo-rollouts, got 'flagger'") as info:
        load_profile(tmp_path, "production")
    assert info.value.exit_code == 2


# ------------------------------------------------------------------------------- blue-green
ARGO_BG = BlueGreen(controller="argo-rollouts")


def test_argo_blue_green_renders_a_rollout_switching_the_services_service() -> None:
    r = run(ServiceOverride(strategy="blue-green", blue_green=ARGO_BG))
    assert r.of_kind("Deployment") == []
    ro = r.get("Rollout", "web")
    assert ro["spec"]["strategy"] == {"blueGreen": {"activeService": "web", "autoPromotionEnabled": True}}
    assert "stackctl.io/colour" not in ro["spec"]["selector"]["matchLabels"]  # no colours: Argo switches
    assert r.get("Service", "web")["spec"]["selector"] == ro["spec"]["selector"]["matchLabels"]
    assert validate(list(r.objects), "1.35") == []
    assert argo.fields(r.objects) == ["services.web.blue_green.controller"]
    quick = run(ServiceOverride(strategy="blue-green", blue_green=BlueGreen(keep_previous=False,
                                                                          controller="argo-rollouts")))
    assert quick.get("Rollout", "web")["spec"]["strategy"]["blueGreen"]["scaleDownDelaySeconds"] == 0
    scaled = run(ServiceOverride(strategy="blue-green", blue_green=ARGO_BG,
                                 autoscaling=Autoscaling(min_replicas=2, max_replicas=4)),
                 {"web": {**WEB, "deploy": {"replicas": 2, "resources": {"reservations": {"cpus": "0.25"}}}}})
    assert scaled.get("HorizontalPodAutoscaler", "web")["spec"]["scaleTargetRef"]["kind"] == "Rollout"


def test_argo_blue_green_needs_one_service_to_switch() -> None:
    with pytest.raises(ProfileError, match=r"services.web.blue_green.controller: Argo Rollouts switches the "
                                           r"service's Service, and it has no ports"):
        run(ServiceOverride(strategy="blue-green", blue_green=ARGO_BG), {"web": {"image": "example/worker:1"}})
    with pytest.raises(ProfileError, match=r"services.web.blue_green.controller: Argo Rollouts switches one Service, "
                                           r"and the network aliases \(www\)"):
        run(ServiceOverride(strategy="blue-green", blue_green=ARGO_BG),
            {"web": {**WEB, "networks": {"default": {"aliases": ["www"]}}}})


def test_profile_blue_green_controller(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n")
    (tmp_path / "profiles/production.yaml").write_text(
        "compose: {files: [compose.yaml]}\nservices: {web: {strategy: blue-green, blue_green: "
        "{controller: argo-rollouts, keep_previous: false}}}\n")
    assert load_profile(tmp_path, "production").services["web"].blue_green == BlueGreen(
        keep_previous=False, controller="argo-rollouts")


def test_a_service_whose_selector_argo_owns_is_applied_without_it() -> None:
    svc = run(ServiceOverride(strategy="blue-green", blue_green=ARGO_BG)).get("Service", "web")
    assert argo.for_live(svc, None) is svc  # first apply: the whole Service
    ours = {"metadata": {"managedFields": [{"manager": "stackctl", "fieldsV1": {"f:spec": {"f:selector": {}}}}]}}
    assert argo.for_live(svc, ours) is svc
    taken = {"metadata": {"managedFields": [
        {"manager": "stackctl", "fieldsV1": {"f:spec": {"f:ports": {}}}},
        {"manager": "rollouts-controller", "operation": "Update", "fieldsV1": {"f:spec": {"f:selector": {}}}}]}}
    applied = argo.for_live(svc, taken)
    assert "selector" not in applied["spec"] and applied["spec"]["ports"] == svc["spec"]["ports"]
    assert "selector" in svc["spec"]  # the rendered (and recorded) object keeps it
