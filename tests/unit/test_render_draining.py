"""Zero-downtime rolling updates: a served pod drains before it stops (a preStop sleep, with the grace
period grown by as much), and a Deployment's rolling update never takes serving capacity away."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackctl.compose.loader import to_model
from stackctl.errors import ProfileError
from stackctl.kubernetes.inputs import Target
from stackctl.kubernetes.render import Rendered, render
from stackctl.kubernetes.validate import validate
from stackctl.profile import load_profile
from stackctl.profile.types import (
    Autoscaling,
    Canary,
    CanaryStep,
    KubernetesSettings,
    ServiceOverride,
    UpdateSettings,
)

WEB = {"image": "nginx:1.27", "ports": [{"target": 80, "published": "8080", "protocol": "tcp"}]}
DB = {"image": "postgres:16", "expose": ["5432"], "stop_grace_period": "30s",
      "volumes": [{"type": "volume", "source": "pg", "target": "/var/lib/postgresql/data"}]}
WORKER = {"image": "ghcr.io/acme/worker:1.0", "command": ["work"]}  # no ports, nothing to infer them from
MIGRATE = {"image": "ghcr.io/acme/app:1.0", "command": ["migrate"], "expose": ["9000"]}
ROLLING = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


def run(services: dict[str, Any], overrides: dict[str, ServiceOverride] | None = None,
        defaults: ServiceOverride | None = None, version: str = "1.35") -> Rendered:
    target = Target(profile="production", profile_file="profiles/production.yaml",
                    kubernetes=KubernetesSettings(namespace="demo-prod", version=version),
                    services=overrides or {}, defaults=defaults or ServiceOverride())
    compose: dict[str, Any] = {"name": "demo", "services": services}
    if any(s.get("volumes") for s in services.values()):
        compose["volumes"] = {"pg": {}}
    rendered = render(to_model(compose), target)
    assert validate(list(rendered.objects), version) == []
    return rendered


def pod(r: Rendered, service: str) -> dict[str, Any]:
    workload = r.workload(service)
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return dict(spec["template"]["spec"])


def pre_stop(r: Rendered, service: str) -> Any:
    return pod(r, service)["containers"][0].get("lifecycle", {}).get("preStop")


# -- the drain delay -------------------------------------------------------------------------
def test_served_deployment_sleeps_before_it_stops_and_keeps_composes_grace_after() -> None:
    r = run({"web": WEB})
    assert pre_stop(r, "web") == {"sleep": {"seconds": 5}}
    assert pod(r, "web")["terminationGracePeriodSeconds"] == 5 + 10  # the delay + Compose's default


def test_served_stateful_set_and_daemon_set_drain_too() -> None:
    r = run({"db": DB, "agent": {**WEB, "deploy": {"mode": "global"}}})
    assert r.workload("db")["kind"] == "StatefulSet" and r.workload("agent")["kind"] == "DaemonSet"
    assert pre_stop(r, "db") == {"sleep": {"seconds": 5}}
    assert pod(r, "db")["terminationGracePeriodSeconds"] == 5 + 30
    assert pre_stop(r, "agent") == {"sleep": {"seconds": 5}}


def test_nothing_to_drain_on_jobs_cron_jobs_and_unserved_workers() -> None:
    r = run({"web": {**WEB, "depends_on": {"migrate": {"condition": "service_completed_successfully"}}},
             "migrate": MIGRATE, "report": {**MIGRATE, "command": ["report"]},
             "worker": {**WORKER, "stop_grace_period": "1m"}},
            overrides={"report": ServiceOverride(schedule="@daily")})
    assert [r.workload(s)["kind"] for s in ("migrate", "report", "worker")] == ["Job", "CronJob", "Deployment"]
    for service in ("migrate", "report", "worker"):
        assert "lifecycle" not in pod(r, service)["containers"][0], service
    assert "terminationGracePeriodSeconds" not in pod(r, "migrate")
    assert pod(r, "worker")["terminationGracePeriodSeconds"] == 60  # as before: stop_grace_period alone


@pytest.mark.parametrize(("grace", "delay", "expected"), [
    ("45s", None, 5 + 45), ("1m30s", 20, 20 + 90), ("2500ms", None, 5 + 3), ("0s", 8, 8 + 0), (None, 1, 1 + 10)])
def test_grace_period_is_the_delay_plus_the_apps_own_stop_time(grace: str | None, delay: int | None,
                                                               expected: int) -> None:
    web = {**WEB, **({"stop_grace_period": grace} if grace is not None else {})}
    r = run({"web": web}, {"web": ServiceOverride(shutdown_delay=delay)})
    assert pre_stop(r, "web") == {"sleep": {"seconds": delay or 5}}
    assert pod(r, "web")["terminationGracePeriodSeconds"] == expected


def test_shutdown_delay_zero_turns_it_off_and_the_grace_period_is_as_before() -> None:
    r = run({"web": WEB, "api": {**WEB, "stop_grace_period": "45s"}},
            {"web": ServiceOverride(shutdown_delay=0), "api": ServiceOverride(shutdown_delay=0)})
    assert pre_stop(r, "web") is None and "terminationGracePeriodSeconds" not in pod(r, "web")
    assert pre_stop(r, "api") is None and pod(r, "api")["terminationGracePeriodSeconds"] == 45


def test_a_services_own_delay_wins_over_the_defaults() -> None:
    r = run({"web": WEB, "api": WEB, "db": DB}, {"web": ServiceOverride(shutdown_delay=12)},
            defaults=ServiceOverride(shutdown_delay=0))
    assert pre_stop(r, "web") == {"sleep": {"seconds": 12}}
    assert pre_stop(r, "api") is None and pre_stop(r, "db") is None
    r = run({"web": WEB, "api": WEB}, {"web": ServiceOverride(shutdown_delay=0)},
            defaults=ServiceOverride(shutdown_delay=7))
    assert pre_stop(r, "web") is None and pre_stop(r, "api") == {"sleep": {"seconds": 7}}
    assert pod(r, "api")["terminationGracePeriodSeconds"] == 17


def test_argo_rollout_drains_and_keeps_capacity() -> None:
    argo = Canary(steps=(CanaryStep(weight=25, pause=30),), controller="argo-rollouts")
    r = run({"web": {**WEB, "deploy": {"replicas": 4}}}, {"web": ServiceOverride(strategy="canary", canary=argo)})
    rollout = r.get("Rollout", "web")
    assert pre_stop(r, "web") == {"sleep": {"seconds": 5}}
    assert rollout["spec"]["strategy"]["canary"] == {"maxSurge": 1, "maxUnavailable": 0, "steps": [
        {"setWeight": 25}, {"pause": {"duration": "30s"}}]}


def test_an_explicit_delay_where_nothing_is_served_is_a_located_error() -> None:
    with pytest.raises(ProfileError, match=r"^profiles/production.yaml: services.migrate.shutdown_delay: delays the "
                                           r"stop of pods behind a Service; this Job gets no Service"):
        run({"migrate": MIGRATE}, {"migrate": ServiceOverride(kind="Job", shutdown_delay=5)})
    with pytest.raises(ProfileError, match=r"services.worker.shutdown_delay: .*the service has no ports"):
        run({"worker": WORKER}, {"worker": ServiceOverride(shutdown_delay=5)})
    # the defaults apply where they can; 0 asks for nothing
    run({"worker": WORKER, "web": WEB}, {"worker": ServiceOverride(shutdown_delay=0)},
        defaults=ServiceOverride(shutdown_delay=5))


def test_before_kubernetes_1_30_there_is_no_sleep_action() -> None:
    r = run({"web": WEB}, version="1.29")
    assert pre_stop(r, "web") is None and "terminationGracePeriodSeconds" not in pod(r, "web")
    assert [str(n) for n in r.notes if str(n).startswith("kubernetes.version")] == [
        ("kubernetes.version: 1.29: no preStop drain delay (the sleep action needs 1.30): a stopping pod may "
         "still get new connections until every node has dropped its endpoint")]
    with pytest.raises(ProfileError, match=r"defaults.shutdown_delay: needs Kubernetes 1.30 or later \(the preStop "
                                           r"sleep action\); the target is 1.28"):
        run({"web": WEB}, defaults=ServiceOverride(shutdown_delay=5), version="1.28")
    assert pre_stop(run({"web": WEB}, version="1.30"), "web") == {"sleep": {"seconds": 5}}


def test_validate_checks_the_sleep_against_the_grace_period() -> None:
    r = run({"web": {**WEB, "stop_grace_period": "20s"}})
    dep = r.get("Deployment", "web")
    dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 3
    assert [str(p) for p in validate([dep], "1.35")] == [
        ("Deployment/web: spec.template.spec.containers[0].lifecycle.preStop.sleep.seconds: must be greater than 0 "
         "and at most terminationGracePeriodSeconds (3)")]
    del dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]  # the API default, 30
    dep["spec"]["template"]["spec"]["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"] = 31
    assert len(validate([dep], "1.35")) == 1


def test_the_sleep_action_is_in_the_bundled_schema_from_1_29() -> None:
    dep = run({"web": WEB}).get("Deployment", "web")
    assert validate([dep], "1.29") == []
    problems = [str(p) for p in validate([dep], "1.28")]
    assert problems and "lifecycle.preStop" in problems[0] and "sleep" in problems[0]


# -- the rolling update --------------------------------------------------------------------------
@pytest.mark.parametrize("deploy", [{}, {"replicas": 1}, {"replicas": 2}, {"replicas": 10}])
def test_rolling_update_surges_before_it_takes_a_pod_away(deploy: dict[str, Any]) -> None:
    assert run({"web": {**WEB, "deploy": deploy}}).workload("web")["spec"]["strategy"] == ROLLING


def test_autoscaled_and_unserved_deployments_keep_capacity_too() -> None:
    r = run({"web": {**WEB, "deploy": {"resources": {"reservations": {"cpus": "0.5"}}}}, "worker": WORKER},
            {"web": ServiceOverride(autoscaling=Autoscaling(min_replicas=2, max_replicas=20))})
    assert r.workload("web")["spec"]["strategy"] == ROLLING
    assert r.workload("worker")["spec"]["strategy"] == ROLLING


@pytest.mark.parametrize(("update", "expected"), [
    (UpdateSettings(max_surge="25%", max_unavailable=1), {"maxSurge": "25%", "maxUnavailable": 1}),
    (UpdateSettings(max_surge=3), {"maxSurge": 3}),  # the other half stays Kubernetes' default
    (UpdateSettings(max_surge=0, max_unavailable=1), {"maxSurge": 0, "maxUnavailable": 1}),
])
def test_the_profiles_update_settings_are_kept(update: UpdateSettings, expected: dict[str, Any]) -> None:
    web = {**WEB, "deploy": {"replicas": 4, "update_config": {"parallelism": 2, "order": "start-first"}}}
    for overrides, defaults in (({"web": ServiceOverride(update=update)}, None),
                                (None, ServiceOverride(update=update))):
        strategy = run({"web": web}, overrides, defaults).workload("web")["spec"]["strategy"]
        assert strategy == {"type": "RollingUpdate", "rollingUpdate": expected}


@pytest.mark.parametrize(("update_config", "expected"), [
    ({"parallelism": 2, "order": "start-first"}, {"maxSurge": 2, "maxUnavailable": 0}),
    ({"parallelism": 2}, {"maxSurge": 0, "maxUnavailable": 2}),  # Swarm's default order: stop-first
    ({"order": "stop-first"}, {"maxSurge": 0, "maxUnavailable": 1}),  # Swarm's default parallelism: 1
    ({"parallelism": 0, "order": "stop-first"}, {"maxSurge": 0, "maxUnavailable": "100%"}),  # 0: all at once
    ({"delay": "10s"}, {"maxSurge": 1, "maxUnavailable": 0}),  # says nothing about the pace: the default
])
def test_composes_update_config_is_kept(update_config: dict[str, Any], expected: dict[str, Any]) -> None:
    dep = run({"web": {**WEB, "deploy": {"replicas": 4, "update_config": update_config}}}).workload("web")
    assert dep["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": expected}
    assert dep["spec"].get("minReadySeconds") == (10 if "delay" in update_config else None)


def test_recreate_paths_are_unchanged() -> None:
    r = run({"web": WEB}, {"web": ServiceOverride(strategy="recreate")})
    assert r.workload("web")["spec"]["strategy"] == {"type": "Recreate"}
    assert pre_stop(r, "web") == {"sleep": {"seconds": 5}}  # a recreated pod still drains
    shared = {"type": "volume", "source": "pg", "target": "/data"}
    r = run({"web": {**WEB, "volumes": [shared]}, "other": {**WORKER, "volumes": [shared]}})
    assert r.workload("web")["spec"]["strategy"] == {"type": "Recreate"}  # a ReadWriteOnce claim


def test_daemon_sets_keep_kubernetes_default_update() -> None:
    r = run({"agent": {**WEB, "deploy": {"mode": "global"}}})
    assert "updateStrategy" not in r.workload("agent")["spec"]
    r = run({"agent": {**WEB, "deploy": {"mode": "global"}}},
            {"agent": ServiceOverride(update=UpdateSettings(max_surge=1, max_unavailable=0))})
    assert r.workload("agent")["spec"]["updateStrategy"] == ROLLING


# -- the profile field ---------------------------------------------------------------------------
@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n")
    return tmp_path


@pytest.mark.parametrize(("text", "seconds"), [("5", 5), ("5s", 5), ("2m", 120), ("1h", 3600), ("0", 0),
                                               ("0s", 0), ("'15'", 15)])
def test_profile_shutdown_delay(root: Path, text: str, seconds: int) -> None:
    (root / "profiles/production.yaml").write_text(
        f"compose: {{files: [compose.yaml]}}\ndefaults: {{shutdown_delay: {text}}}\n"
        f"services: {{web: {{shutdown_delay: {text}}}}}\n")
    profile = load_profile(root, "production")
    assert profile.defaults.shutdown_delay == seconds and profile.services["web"].shutdown_delay == seconds
    (root / "profiles/production.yaml").write_text("compose: {files: [compose.yaml]}\n")
    assert load_profile(root, "production").defaults.shutdown_delay is None  # unset: the renderer's default


@pytest.mark.parametrize("text", ["soon", "-1", "1.5", "true", "5ms", "[5]", "1m30s"])
@pytest.mark.parametrize("where", ["defaults", "services.web"])
def test_a_bad_shutdown_delay_is_a_located_error(root: Path, text: str, where: str) -> None:
    body = f"{{shutdown_delay: {text}}}"
    section = f"defaults: {body}" if where == "defaults" else f"services: {{web: {body}}}"
    (root / "profiles/production.yaml").write_text(f"compose: {{files: [compose.yaml]}}\n{section}\n")
    with pytest.raises(ProfileError) as info:
        load_profile(root, "production")
    assert str(info.value).startswith(f"profiles/production.yaml: {where}.shutdown_delay: must be a duration in "
                                      "whole seconds like 5s, 30s or 2m (0 for none), got ")
    assert info.value.exit_code == 2
