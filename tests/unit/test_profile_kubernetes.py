"""Profile fields for Kubernetes rendering: parsed into typed settings, every error located (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackctl.errors import ProfileError
from stackctl.profile import load_profile
from stackctl.profile.types import (
    Autoscaling,
    DisruptionBudget,
    Liveness,
    ScalingPolicy,
    ScalingRules,
    UpdateSettings,
    VolumeSettings,
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n")
    return tmp_path


def load(root: Path, body: str):  # type: ignore[no-untyped-def]
    (root / "profiles" / "production.yaml").write_text("compose: {files: [compose.yaml]}\n" + body)
    return load_profile(root, "production")


def error_of(root: Path, body: str) -> str:
    with pytest.raises(ProfileError) as info:
        load(root, body)
    assert info.value.exit_code == 2
    return str(info.value)


def test_every_kubernetes_field(root: Path) -> None:
    p = load(root, """
services:
  web:
    kind: StatefulSet
    liveness: {path: /healthz, port: 8080}
    autoscaling:
      min: 2
      max: 10
      cpu: 70
      memory: 80
      scale_down: {stabilization_seconds: 300, policies: [{type: Percent, value: 50, period_seconds: 60}]}
      scale_up: {select_policy: Max}
    pdb: {min_available: 1}
    pull_policy: Always
    update: {max_surge: 25%, max_unavailable: 0}
  backup:
    schedule: "0 3 * * *"
    time_zone: Europe/Berlin
    concurrency_policy: Replace
  probe:
    liveness: true
defaults:
  pull_policy: IfNotPresent
  update: {max_unavailable: 1}
kubernetes:
  namespace: prod
  version: "1.34"
  storage_class: fast-ssd
  storage_size: 5Gi
  volumes:
    pgdata: {size: 20Gi, storage_class: premium, access_mode: ReadWriteOncePod}
    uploads: {access_mode: ReadWriteMany}
  image_pull_policy: IfNotPresent
  image_pull_secrets: [regcred]
  wait_image: registry.example.com/busybox:1.37
  network_policies: false
""")
    web = p.services["web"]
    assert web.kind == "StatefulSet"
    assert web.liveness == Liveness(path="/healthz", port=8080)
    assert web.autoscaling == Autoscaling(
        min_replicas=2, max_replicas=10, cpu=70, memory=80,
        scale_up=ScalingRules(select_policy="Max"),
        scale_down=ScalingRules(stabilization_seconds=300, policies=(ScalingPolicy("Percent", 50, 60),)))
    assert web.pdb == DisruptionBudget(min_available=1)
    assert web.pull_policy == "Always"
    assert web.update == UpdateSettings(max_surge="25%", max_unavailable=0)
    backup = p.services["backup"]
    assert (backup.schedule, backup.time_zone, backup.concurrency_policy) == ("0 3 * * *", "Europe/Berlin", "Replace")
    assert p.services["probe"].liveness == Liveness()
    assert p.defaults.update == UpdateSettings(max_unavailable=1)
    kube = p.kubernetes
    assert kube is not None
    assert (kube.version, kube.storage_class, kube.storage_size) == ("1.34", "fast-ssd", 5 * 2**30)
    assert kube.volumes == {"pgdata": VolumeSettings(20 * 2**30, "premium", "ReadWriteOncePod"),
                            "uploads": VolumeSettings(access_mode="ReadWriteMany")}
    assert kube.image_pull_secrets == ("regcred",)
    assert kube.wait_image == "registry.example.com/busybox:1.37"
    assert kube.network_policies is False


def test_defaults_of_the_kubernetes_section(root: Path) -> None:
    kube = load(root, "kubernetes: {namespace: prod}\n").kubernetes
    assert kube is not None
    assert kube.version == "1.35" and kube.wait_image == "busybox:1.37" and kube.network_policies
    assert kube.volumes == {} and kube.storage_size is None


@pytest.mark.parametrize("version", ["1.33", "v1.33", "1.33.4", 1.33])
def test_version_spellings(root: Path, version: object) -> None:
    kube = load(root, f"kubernetes: {{namespace: prod, version: {version}}}\n").kubernetes
    assert kube is not None and kube.version == "1.33"


def test_autoscaling_min_defaults_to_one(root: Path) -> None:
    hpa = load(root, "services: {web: {autoscaling: {max: 3}}}\n").services["web"].autoscaling
    assert hpa is not None and hpa.min_replicas == 1 and hpa.cpu is None


@pytest.mark.parametrize(("body", "expected"), [
    ("services: {web: {kind: Pod}}\n",
     "profiles/production.yaml: services.web.kind: must be one of Deployment, StatefulSet, DaemonSet, Job, CronJob"),
    ("services: {web: {schedule: every day}}\n",
     "profiles/production.yaml: services.web.schedule: must be a cron schedule like '*/15 * * * *' or @hourly"),
    ("services: {web: {schedule: '@hourly', kind: Deployment}}\n",
     "profiles/production.yaml: services.web.schedule: a schedule runs the service as a CronJob"),
    ("services: {web: {kind: CronJob}}\n", "profiles/production.yaml: services.web.schedule: kind: CronJob needs"),
    ("services: {web: {time_zone: UTC}}\n",
     "profiles/production.yaml: services.web.time_zone: only applies with a schedule"),
    ("services: {web: {liveness: yes please}}\n",
     "profiles/production.yaml: services.web.liveness: must be true, false or a mapping"),
    ("services: {web: {liveness: {path: health}}}\n",
     "profiles/production.yaml: services.web.liveness.path: must start with /"),
    ("services: {web: {liveness: {port: 80}}}\n", "profiles/production.yaml: services.web.liveness.path: is required"),
    ("services: {web: {autoscaling: {min: 2}}}\n",
     "profiles/production.yaml: services.web.autoscaling.max: is required"),
    ("services: {web: {autoscaling: {min: 5, max: 3}}}\n",
     "profiles/production.yaml: services.web.autoscaling.min: must not exceed max (3), got 5"),
    ("services: {web: {autoscaling: {max: 3, cpu: 0}}}\n",
     "profiles/production.yaml: services.web.autoscaling.cpu: must be ≥ 1"),
    ("services: {web: {autoscaling: {max: 3, scale_up: {policies: [{type: Pods, value: 2}]}}}}\n",
     "profiles/production.yaml: services.web.autoscaling.scale_up.policies[0].period_seconds: is required"),
    ("services: {web: {autoscaling: {max: 3, scale_up: {policies: [{type: Nodes, value: 2, period_seconds: 9}]}}}}\n",
     "profiles/production.yaml: services.web.autoscaling.scale_up.policies[0].type: must be one of Pods, Percent"),
    ("services: {web: {autoscaling: {max: 3, target: 50}}}\n",
     "profiles/production.yaml: services.web.autoscaling.target: unknown field"),
    ("services: {web: {pdb: {}}}\n",
     "profiles/production.yaml: services.web.pdb: set exactly one of min_available and max_unavailable"),
    ("services: {web: {pdb: {min_available: 1, max_unavailable: 1}}}\n",
     "profiles/production.yaml: services.web.pdb: set exactly one"),
    ("services: {web: {pdb: {min_available: half}}}\n",
     "profiles/production.yaml: services.web.pdb.min_available: must be a number or a percentage like 25%"),
    ("services: {web: {pdb: {max_unavailable: 150%}}}\n",
     "profiles/production.yaml: services.web.pdb.max_unavailable: must be a number or a percentage"),
    ("services: {web: {update: {max_surge: 0, max_unavailable: 0}}}\n",
     "profiles/production.yaml: services.web.update: max_surge and max_unavailable cannot both be 0"),
    ("services: {web: {pull_policy: always}}\n",
     "profiles/production.yaml: services.web.pull_policy: must be one of Always, IfNotPresent, Never"),
    ("defaults: {kind: StatefulSet}\n",
     "profiles/production.yaml: defaults.kind: can only be set per service (services.<name>.kind)"),
    ("defaults: {autoscaling: {max: 3}}\n", "profiles/production.yaml: defaults.autoscaling: can only be set per"),
    ("kubernetes: {namespace: p, version: latest}\n",
     "profiles/production.yaml: kubernetes.version: must be a Kubernetes version like 1.35"),
    ("kubernetes: {namespace: p, storage_size: lots}\n",
     "profiles/production.yaml: kubernetes.storage_size: must be a memory size like 512Mi"),
    ("kubernetes: {namespace: p, storage_class: Fast_SSD}\n",
     "profiles/production.yaml: kubernetes.storage_class: must be a StorageClass name"),
    ("kubernetes: {namespace: p, volumes: {data: {size: 1Gi, mode: RWO}}}\n",
     "profiles/production.yaml: kubernetes.volumes.data.mode: unknown field"),
    ("kubernetes: {namespace: p, volumes: {data: {access_mode: RWO}}}\n",
     "profiles/production.yaml: kubernetes.volumes.data.access_mode: must be one of ReadWriteOnce"),
    ("kubernetes: {namespace: p, volumes: {data: 10Gi}}\n",
     "profiles/production.yaml: kubernetes.volumes.data: must be a mapping"),
    ("kubernetes: {namespace: p, image_pull_secrets: [Reg_Cred]}\n",
     "profiles/production.yaml: kubernetes.image_pull_secrets[0]: must be a Kubernetes Secret name"),
    ("kubernetes: {namespace: p, network_policies: sometimes}\n",
     "profiles/production.yaml: kubernetes.network_policies: must be true or false"),
    ("kubernetes: {namespace: p, registy: x}\n",
     "profiles/production.yaml: kubernetes.registy: unknown field"),
])
def test_errors_are_located(root: Path, body: str, expected: str) -> None:
    assert error_of(root, body).startswith(expected)
