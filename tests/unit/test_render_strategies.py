"""Release strategies: what the renderer emits for them, and promote's pure blue-green plan."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from stackctl.compose.loader import to_model
from stackctl.errors import ProfileError
from stackctl.kubernetes.client import Ref
from stackctl.kubernetes.deploy import bluegreen as bg
from stackctl.kubernetes.deploy import canary as cn
from stackctl.kubernetes.inputs import Target
from stackctl.kubernetes.labels import A_CANARY_STEPS, A_KEEP_PREVIOUS, L_COLOUR, L_TRACK
from stackctl.kubernetes.render import Rendered, render
from stackctl.kubernetes.validate import validate
from stackctl.profile import load_profile
from stackctl.profile.types import (
    Autoscaling,
    BlueGreen,
    Canary,
    CanaryStep,
    ExtraContainer,
    JobSettings,
    KubernetesSettings,
    Placement,
    ServiceOverride,
)

WEB = {"image": "nginx:1.27", "ports": [{"target": 80, "published": "8080", "protocol": "tcp"}],
       "networks": {"default": {"aliases": ["www"]}}}


def run(override: ServiceOverride, services: dict[str, Any] | None = None) -> Rendered:
    target = Target(profile="production", profile_file="profiles/production.yaml",
                    kubernetes=KubernetesSettings(namespace="demo-prod"), services={"web": override},
                    defaults=ServiceOverride())
    stack = to_model({"name": "demo", "services": services or {"web": WEB}})
    return render(stack, target)


def test_blue_green_renders_the_first_colour_and_services_that_select_it() -> None:
    r = run(ServiceOverride(strategy="blue-green"))
    dep = r.get("Deployment", "web-blue")
    assert dep["metadata"]["labels"][L_COLOUR] == "blue"
    assert dep["spec"]["selector"]["matchLabels"][L_COLOUR] == "blue"
    assert dep["spec"]["template"]["metadata"]["labels"][L_COLOUR] == "blue"
    assert dep["metadata"]["annotations"]["stackctl.io/strategy"] == "blue-green"
    assert r.get("Service", "web")["spec"]["selector"][L_COLOUR] == "blue"
    assert r.get("Service", "www")["spec"]["selector"][L_COLOUR] == "blue"  # aliases switch too
    assert validate(list(r.objects), "1.35") == []
    assert run(ServiceOverride(strategy="blue-green")).objects == r.objects  # deterministic


def test_rolling_services_carry_no_colour() -> None:
    r = run(ServiceOverride())
    assert L_COLOUR not in r.get("Deployment", "web")["spec"]["selector"]["matchLabels"]
    assert L_COLOUR not in r.get("Service", "web")["spec"]["selector"]


def test_blue_green_keep_previous_false_is_an_annotation() -> None:
    r = run(ServiceOverride(strategy="blue-green", blue_green=BlueGreen(keep_previous=False)))
    assert r.get("Deployment", "web-blue")["metadata"]["annotations"][A_KEEP_PREVIOUS] == "false"


def test_blue_green_profile_errors_are_located() -> None:
    with pytest.raises(ProfileError, match=r"profiles/production.yaml: services.web.blue_green: only applies with "
                                           r"strategy: blue-green"):
        run(ServiceOverride(blue_green=BlueGreen()))
    with pytest.raises(ProfileError, match=r"services.web.autoscaling: cannot be combined with strategy: blue-green"):
        run(ServiceOverride(strategy="blue-green", autoscaling=Autoscaling(min_replicas=1, max_replicas=3)))


def test_blue_green_on_a_stateful_set_warns_and_rolls() -> None:
    r = run(ServiceOverride(strategy="blue-green", kind="StatefulSet"))
    assert "services.web.strategy: blue-green applies to Deployments; this StatefulSet rolls as usual" in \
        [str(w) for w in r.warnings]


def test_profile_blue_green_field(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n")
    (tmp_path / "profiles/production.yaml").write_text(
        "compose: {files: [compose.yaml]}\nservices: {web: {strategy: blue-green, blue_green: {keep_previous: "
        "false}}}\n")
    assert load_profile(tmp_path, "production").services["web"].blue_green == BlueGreen(keep_previous=False)
    (tmp_path / "profiles/production.yaml").write_text(
        "compose: {files: [compose.yaml]}\nservices: {web: {blue_green: {keep: 1}}}\n")
    with pytest.raises(ProfileError, match=r"services.web.blue_green.keep: unknown field"):
        load_profile(tmp_path, "production")
    (tmp_path / "profiles/production.yaml").write_text(
        "compose: {files: [compose.yaml]}\nservices: {web: {blue_green: {keep_previous: yes please}}}\n")
    with pytest.raises(ProfileError, match=r"services.web.blue_green.keep_previous: must be true or false"):
        load_profile(tmp_path, "production")


# -- promote's plan (pure) ---------------------------------------------------------------------
def _desired(image: str = "nginx:1.27", replicas: int = 2) -> list[dict[str, Any]]:
    return [copy.deepcopy(o) for o in run(ServiceOverride(strategy="blue-green"),
                                          {"web": {**WEB, "image": image, "deploy": {"replicas": replicas}}}).objects]


def _live(objects: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {Ref.of(o).key: o for o in objects}


def _names(plan: bg.BlueGreenPlan, kind: str) -> list[str]:
    return [o["metadata"]["name"] for o in plan.objects if o["kind"] == kind]


def test_plan_first_promote_deploys_as_rendered() -> None:
    p = bg.plan(_desired(), {})
    assert "web-blue" in _names(p, "Deployment") and not p.switch and not p.notes
    assert p.keep == {("Deployment.apps", "demo-prod", "web-green")}


def test_plan_a_new_version_goes_to_the_idle_colour_and_holds_the_services_back() -> None:
    v1 = bg.plan(_desired(), {}).objects
    p = bg.plan(_desired("nginx:1.28"), _live(v1))
    assert _names(p, "Deployment") == ["web-green"]
    assert p.switch == {("Service", "demo-prod", "web"), ("Service", "demo-prod", "www")}
    assert all(o["spec"]["selector"][L_COLOUR] == "green" for o in p.objects if o["kind"] == "Service")
    assert p.keep == {("Deployment.apps", "demo-prod", "web-blue")}
    assert p.notes == [("web: blue-green, deploying green beside blue; the Service switches to green when it is "
                        "ready")]
    # and the one after that goes back to blue
    p3 = bg.plan(_desired("nginx:1.29"), _live(p.objects))
    assert _names(p3, "Deployment") == ["web-blue"] and p3.switch


def test_plan_unchanged_or_scaled_stays_on_the_live_colour() -> None:
    v2 = bg.plan(_desired("nginx:1.28"), _live(bg.plan(_desired(), {}).objects)).objects
    for desired in (_desired("nginx:1.28"), _desired("nginx:1.28", replicas=5)):
        p = bg.plan(desired, _live(v2))
        assert _names(p, "Deployment") == ["web-green"] and not p.switch


def test_plan_rollback_to_a_stored_revision_switches_to_the_colour_running_it() -> None:
    rev1 = bg.plan(_desired(), {}).objects
    rev2 = bg.plan(_desired("nginx:1.28"), _live(rev1)).objects
    live = _live(rev1) | _live(rev2)  # blue kept running beside green
    p = bg.plan(rev1, live)
    assert _names(p, "Deployment") == ["web-blue"] and p.switch
    assert [o for o in p.objects if o["kind"] == "Deployment"] == [o for o in rev1 if o["kind"] == "Deployment"]


def test_plan_finalize_and_keep_previous_false_keep_nothing() -> None:
    v1 = bg.plan(_desired(), {}).objects
    assert bg.plan(_desired("nginx:1.28"), _live(v1), finalize=True).keep == set()
    desired = [copy.deepcopy(o) for o in run(ServiceOverride(strategy="blue-green",
                                                             blue_green=BlueGreen(keep_previous=False))).objects]
    assert bg.plan(desired, {}).keep == set()


def test_template_hash_ignores_colour_and_replicas() -> None:
    (dep,) = [o for o in _desired() if o["kind"] == "Deployment"]
    assert bg.template_hash(dep) == bg.template_hash(bg.recolour(dep, "green", "web"))
    scaled = copy.deepcopy(dep)
    scaled["spec"]["replicas"] = 9
    assert bg.template_hash(scaled) == bg.template_hash(dep)
    (other,) = [o for o in _desired("nginx:1.28") if o["kind"] == "Deployment"]
    assert bg.template_hash(other) != bg.template_hash(dep)


# -- canary ------------------------------------------------------------------------------------
def test_canary_renders_a_stable_track_and_its_steps() -> None:
    steps = Canary(steps=(CanaryStep(weight=10, pause=30), CanaryStep(weight=50, pause=120)))
    r = run(ServiceOverride(strategy="canary", canary=steps))
    dep = r.get("Deployment", "web")
    assert dep["spec"]["selector"]["matchLabels"][L_TRACK] == "stable"
    assert dep["spec"]["template"]["metadata"]["labels"][L_TRACK] == "stable"
    assert L_TRACK not in r.get("Service", "web")["spec"]["selector"]  # the Service selects both tracks
    assert dep["metadata"]["annotations"][A_CANARY_STEPS] == "10:30,50:120"
    assert run(ServiceOverride(strategy="canary")).get("Deployment", "web")["metadata"]["annotations"][
        A_CANARY_STEPS] == "20:30"  # the default: one step
    assert validate(list(r.objects), "1.35") == []


def test_canary_profile_errors_are_located(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"services.web.canary: only applies with strategy: canary"):
        run(ServiceOverride(canary=Canary()))
    (tmp_path / "profiles").mkdir()
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n")
    for steps, message in (
            ("[{weight: 10, pause: 30s}, {weight: 5}]", (r"services.web.canary.steps\[1\].weight: must be more than "
                                                        r"the previous step's \(10\)")),
            ("[{weight: 100}]", r"services.web.canary.steps\[0\].weight: must be ≤ 99|at most 99"),
            ("[{weight: 10, pause: soon}]", r"services.web.canary.steps\[0\].pause: must be a duration like 30s"),
            ("[{pause: 1s}]", r"services.web.canary.steps\[0\].weight: is required"),
            ("[]", r"services.web.canary.steps: must be a list of steps")):
        (tmp_path / "profiles/production.yaml").write_text(
            "compose: {files: [compose.yaml]}\n"
            f"services: {{web: {{strategy: canary, canary: {{steps: {steps}}}}}}}\n")
        with pytest.raises(ProfileError, match=message) as info:
            load_profile(tmp_path, "production")
        assert info.value.exit_code == 2
    (tmp_path / "profiles/production.yaml").write_text(
        "compose: {files: [compose.yaml]}\nservices: {web: {strategy: canary, canary: {steps: "
        "[{weight: 10, pause: 2m}, {weight: 60, pause: 1h}]}}}\n")
    assert load_profile(tmp_path, "production").services["web"].canary == Canary(
        steps=(CanaryStep(weight=10, pause=120), CanaryStep(weight=60, pause=3600)))


def _canary_desired(image: str = "nginx:1.27", replicas: int = 4) -> list[dict[str, Any]]:
    steps = Canary(steps=(CanaryStep(weight=10, pause=30), CanaryStep(weight=50, pause=30)))
    return [copy.deepcopy(o) for o in run(ServiceOverride(strategy="canary", canary=steps),
                                          {"web": {**WEB, "image": image, "deploy": {"replicas": replicas}}}).objects]


def test_canary_plan_only_for_a_changed_stable_deployment() -> None:
    first = cn.plan(_canary_desired(), {})
    assert not first.canaries and not first.held  # nothing live: applied as usual
    live = _live(first.objects)
    assert not cn.plan(_canary_desired(), live).canaries
    assert not cn.plan(_canary_desired(replicas=6), live).canaries  # scaling is not a new version
    p = cn.plan(_canary_desired("nginx:1.28"), live)
    assert p.held == {("Deployment.apps", "demo-prod", "web")}
    (rollout,) = p.canaries
    assert rollout.steps == (cn.Step(10, 30), cn.Step(50, 30)) and rollout.name == "web-canary"
    canary = rollout.canary(rollout.steps[0])
    assert canary["metadata"]["name"] == "web-canary" and canary["spec"]["replicas"] == 1
    assert canary["spec"]["selector"]["matchLabels"][L_TRACK] == "canary"
    assert canary["spec"]["template"]["metadata"]["labels"][L_TRACK] == "canary"
    assert A_CANARY_STEPS not in canary["metadata"]["annotations"]


@pytest.mark.parametrize(("stable", "weight", "canary"), [(4, 10, 1), (4, 20, 1), (4, 50, 4), (9, 10, 1), (10, 50, 10),
                                                          (3, 25, 1), (1, 90, 9), (0, 50, 0)])
def test_canary_replicas_give_the_weight_beside_the_stable_ones(stable: int, weight: int, canary: int) -> None:
    (dep,) = [o for o in _canary_desired(replicas=stable) if o["kind"] == "Deployment"]
    assert cn.Canary(stable=dep, steps=()).canary_replicas(cn.Step(weight, 0)) == canary


# -- Jobs and CronJobs -------------------------------------------------------------------------
def test_job_settings_render_on_jobs_and_cron_jobs() -> None:
    settings = JobSettings(backoff_limit=2, active_deadline=900, ttl_after_finished=60, successful_history=5,
                           failed_history=2)
    one_shot = {"web": {"image": "busybox", "command": ["true"], "restart": "no"}}
    r = run(ServiceOverride(kind="Job", job=JobSettings(backoff_limit=2, active_deadline=900, ttl_after_finished=60)),
            one_shot)
    spec = r.workload("web")["spec"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"], spec["ttlSecondsAfterFinished"]) == (2, 900, 60)
    r = run(ServiceOverride(schedule="0 3 * * *", job=settings), one_shot)
    cron = r.workload("web")["spec"]
    assert (cron["successfulJobsHistoryLimit"], cron["failedJobsHistoryLimit"]) == (5, 2)
    assert cron["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 900
    assert validate(list(r.objects), "1.35") == []
    with pytest.raises(ProfileError, match=r"services.web.job: only applies to a Job or CronJob \(this service is a "
                                           r"Deployment\)"):
        run(ServiceOverride(job=JobSettings(backoff_limit=1)))


def test_job_settings_profile_errors(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n")
    for body, message in (
            ("{job: {successful_history: 3}}", r"services.web.job.successful_history: only applies with a schedule"),
            ("{schedule: '@daily', job: {backoff_limit: -1}}", r"services.web.job.backoff_limit: must be ≥ 0"),
            ("{schedule: '@daily', job: {retries: 1}}", r"services.web.job.retries: unknown field")):
        (tmp_path / "profiles/production.yaml").write_text(
            f"compose: {{files: [compose.yaml]}}\nservices: {{web: {body}}}\n")
        with pytest.raises(ProfileError, match=message):
            load_profile(tmp_path, "production")
    (tmp_path / "profiles/production.yaml").write_text(
        "compose: {files: [compose.yaml]}\ndefaults: {job: {backoff_limit: 1}}\n")
    with pytest.raises(ProfileError, match=r"defaults.job: can only be set per service"):
        load_profile(tmp_path, "production")


def test_job_from_a_cron_job_is_what_kubectl_creates() -> None:
    from stackctl.kubernetes.deploy.runjob import job_from

    cron = {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "backup", "namespace": "ns", "uid": "u-1"},
            "spec": {"jobTemplate": {"metadata": {"labels": {"a": "b"}}, "spec": {"backoffLimit": 0}}}}
    job = job_from(cron, now=1700000000.123)
    assert job["metadata"]["name"] == "backup-manual-123"  # milliseconds: two runs a second apart differ
    assert job["metadata"]["labels"] == {"a": "b"} and job["spec"] == {"backoffLimit": 0}
    assert job["metadata"]["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "backup",
                                                   "uid": "u-1", "controller": True, "blockOwnerDeletion": True}]
    assert job["metadata"]["annotations"] == {"cronjob.kubernetes.io/instantiate": "manual"}


# -- sidecars, init containers, placement -----------------------------------------------------
def test_sidecars_are_native_and_init_containers_follow_the_waits() -> None:
    override = ServiceOverride(
        sidecars=(ExtraContainer(name="proxy", image="envoy:v1.31", args=("-c", "/etc/envoy.yaml"), ports=(9901,),
                                 env={"LEVEL": "info"}),),
        init_containers=(ExtraContainer(name="schema", image="busybox", command=("sh", "-c", "echo $$HOME")),))
    r = run(override, {"web": {**WEB, "depends_on": {"db": {"condition": "service_healthy", "required": True}}},
                       "db": {"image": "postgres:17", "ports": [{"target": 5432, "protocol": "tcp"}],
                              "healthcheck": {"test": ["CMD", "pg_isready"]}}})
    inits = r.workload("web")["spec"]["template"]["spec"]["initContainers"]
    assert [(c["name"], c.get("restartPolicy")) for c in inits] == [
        ("proxy", "Always"), ("wait-for-db", None), ("schema", None)]
    assert inits[0] == {"name": "proxy", "image": "envoy:v1.31", "restartPolicy": "Always",
                        "args": ["-c", "/etc/envoy.yaml"], "env": [{"name": "LEVEL", "value": "info"}],
                        "ports": [{"containerPort": 9901, "protocol": "TCP"}]}
    assert validate(list(r.objects), "1.35") == []
    with pytest.raises(ProfileError, match=r"services.web.sidecars: container name 'web' is already used"):
        run(ServiceOverride(sidecars=(ExtraContainer(name="web", image="x"),)))


def test_placement_spreads_and_repels_the_service_pods() -> None:
    r = run(ServiceOverride(strategy="blue-green", placement=Placement(
        spread=("kubernetes.io/hostname", "topology.kubernetes.io/zone"), anti_affinity="preferred")),
            {"web": {**WEB, "deploy": {"replicas": 3}}})
    pod_spec = r.get("Deployment", "web-blue")["spec"]["template"]["spec"]
    selector = {"matchLabels": r.get("Deployment", "web-blue")["spec"]["selector"]["matchLabels"]}
    assert pod_spec["topologySpreadConstraints"] == [
        {"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": selector}
        for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")]
    assert pod_spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] == [
        {"weight": 100, "podAffinityTerm": {"labelSelector": selector, "topologyKey": "kubernetes.io/hostname"}}]
    assert validate(list(r.objects), "1.35") == []
    sts = run(ServiceOverride(kind="StatefulSet", placement=Placement(anti_affinity="required")))
    assert "requiredDuringSchedulingIgnoredDuringExecution" in \
        sts.workload("web")["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    with pytest.raises(ProfileError, match=r"services.web.placement: spreads replicas of a Deployment or StatefulSet"):
        run(ServiceOverride(kind="DaemonSet", placement=Placement(anti_affinity="required")))


def test_sidecar_and_placement_profile_fields(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n")
    (tmp_path / "profiles/production.yaml").write_text(
        "compose: {files: [compose.yaml]}\nservices: {web: {sidecars: [{name: fwd, image: fluent-bit:3, "
        "command: [fluent-bit], env: {A: 1}, ports: [2020]}], placement: {spread: [hostname, zone], "
        "when_unsatisfiable: DoNotSchedule}}}\n")
    web = load_profile(tmp_path, "production").services["web"]
    assert web.sidecars == (ExtraContainer(name="fwd", image="fluent-bit:3", command=("fluent-bit",), env={"A": "1"},
                                           ports=(2020,)),)
    assert web.placement == Placement(spread=("kubernetes.io/hostname", "topology.kubernetes.io/zone"),
                                      when_unsatisfiable="DoNotSchedule")
    for body, message in (
            ("{sidecars: [{image: x}]}", r"services.web.sidecars\[0\].name: "),
            ("{sidecars: [{name: Fwd, image: x}]}", r"services.web.sidecars\[0\].name: must be a container name"),
            ("{init_containers: [{name: a, image: x}, {name: a, image: y}]}",
             r"services.web.init_containers\[1\].name: 'a' is used twice"),
            ("{sidecars: [{name: a, image: x, ports: [http]}]}", r"services.web.sidecars\[0\].ports: must be a list"),
            ("{placement: {}}", r"services.web.placement: needs spread"),
            ("{placement: {anti_affinity: always}}", r"services.web.placement.anti_affinity: must be one of")):
        (tmp_path / "profiles/production.yaml").write_text(
            f"compose: {{files: [compose.yaml]}}\nservices: {{web: {body}}}\n")
        with pytest.raises(ProfileError, match=message):
            load_profile(tmp_path, "production")
