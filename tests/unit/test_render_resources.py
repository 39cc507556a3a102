"""Resources that cannot fit the app (issue 12 item 10a, 4b): a memory limit below the heap the service
declares, a request above its limit, a database image with more than one replica."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackctl.compose.loader import to_model
from stackctl.kubernetes.inputs import Target
from stackctl.kubernetes.render import Rendered, render
from stackctl.kubernetes.render.mapping import declared_heap
from stackctl.kubernetes.validate import validate
from stackctl.pipeline import apply_overrides
from stackctl.profile import parse_profile

MiB = 2**20


def run(tmp_path: Path, services: dict[str, Any], profile: dict[str, Any] | None = None) -> Rendered:
    """Render through the profile's overrides (defaults.resources are applied by the pipeline)."""
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    prof = parse_profile({"compose": {"files": ["compose.yaml"]}, "kubernetes": {"namespace": "demo"},
                          **(profile or {})}, name="production", path=tmp_path / "profiles/production.yaml",
                         root=tmp_path)
    stack = apply_overrides(to_model({"name": "demo", "services": services}), prof)
    rendered = render(stack, Target.from_profile(prof, stack=stack.name))
    assert validate(list(rendered.objects), "1.35") == []
    return rendered


def resources(r: Rendered, service: str) -> dict[str, Any]:
    return dict(r.workload(service)["spec"]["template"]["spec"]["containers"][0].get("resources", {}))


def lines(items: Any) -> list[str]:
    return [str(w) for w in items]


# -- what a service declares -------------------------------------------------------------------
@pytest.mark.parametrize(("env", "command", "expected"), [
    ({"JAVA_OPTS": "-Xms256m -Xmx512m"}, None, (512 * MiB, "JVM", "-Xmx512m", "JAVA_OPTS")),
    ({"ES_JAVA_OPTS": "-Xms2g -Xmx2g"}, None, (2048 * MiB, "JVM", "-Xmx2g", "ES_JAVA_OPTS")),
    ({"JAVA_TOOL_OPTIONS": "-Xmx1g -Xmx768m"}, None, (768 * MiB, "JVM", "-Xmx768m", "JAVA_TOOL_OPTIONS")),  # last wins
    ({"KAFKA_HEAP_OPTS": "-XX:MaxHeapSize=1G"}, None, (1024 * MiB, "JVM", "-XX:MaxHeapSize=1G", "KAFKA_HEAP_OPTS")),
    ({"NODE_OPTIONS": "--max-old-space-size=4096"}, None,
     (4096 * MiB, "Node.js", "--max-old-space-size=4096", "NODE_OPTIONS")),
    ({}, ["sh", "-c", "exec java -Xmx1G -jar app.jar"], (1024 * MiB, "JVM", "-Xmx1G", "command")),
    ({}, ["node", "--max_old_space_size=2048", "server.js"], (2048 * MiB, "Node.js", "--max_old_space_size=2048",
                                                               "command")),
])
def test_declared_heaps(env: dict[str, str], command: list[str] | None, expected: tuple[Any, ...]) -> None:
    heap = declared_heap(env, command, None)
    assert heap is not None
    assert (heap.size, heap.runtime, heap.flag, heap.source) == expected


@pytest.mark.parametrize("env", [{"JAVA_OPTS": "-XX:MaxRAMPercentage=75"}, {"JAVA_OPTS": "-Xms512m"},
                                 {"OTHER": "-Xmx2g"}, {"NODE_OPTIONS": "-Xmx2g"}, {"JAVA_OPTS": None}])
def test_no_absolute_heap_is_no_heap(env: dict[str, str | None]) -> None:
    """A relative heap follows the limit by itself; other variables are not read by the runtime."""
    assert declared_heap(env, None, None) is None


def test_the_floor_is_heap_and_a_quarter_plus_64_mib() -> None:
    heap = declared_heap({"JAVA_OPTS": "-Xmx512m"}, None, None)
    assert heap is not None and heap.needs == 704 * MiB
    two = declared_heap({"ES_JAVA_OPTS": "-Xmx2g"}, None, None)
    assert two is not None and two.needs == 2624 * MiB


# -- the limit -----------------------------------------------------------------------------------
JAVA = {"image": "eclipse-temurin:21", "environment": {"JAVA_OPTS": "-Xmx2g"}}


def test_a_limit_from_the_profiles_defaults_is_raised_to_fit_with_a_note(tmp_path: Path) -> None:
    r = run(tmp_path, {"api": JAVA, "web": {"image": "nginx:1.27"}},
            {"defaults": {"resources": {"limits": {"memory": "512Mi"}, "requests": {"memory": "256Mi"}}}})
    assert resources(r, "api") == {"limits": {"memory": "2624Mi"}, "requests": {"memory": "256Mi"}}
    assert resources(r, "web") == {"limits": {"memory": "512Mi"}, "requests": {"memory": "256Mi"}}
    assert "services.api.deploy.resources.limits.memory: -Xmx2g (JAVA_OPTS): raised from 512Mi " \
           "(defaults.resources) to 2624Mi, as a JVM heap needs heap × 1.25 + 64 MiB; set " \
           "services.api.resources.limits.memory to choose another" in lines(r.notes)
    assert not [w for w in lines(r.warnings) if "heap" in w]


@pytest.mark.parametrize(("services", "profile"), [
    ({"api": {**JAVA, "deploy": {"resources": {"limits": {"memory": str(2**30)}}}}}, {}),  # Compose
    ({"api": JAVA}, {"services": {"api": {"resources": {"limits": {"memory": "1Gi"}}}}}),  # the service's own
    # Compose's own resources: the profile's defaults do not apply, so the limit is the user's
    ({"api": {**JAVA, "deploy": {"resources": {"limits": {"memory": str(2**30)}}}}},
     {"defaults": {"resources": {"limits": {"memory": "768Mi"}}}}),
])
def test_a_limit_set_for_the_service_is_kept_with_a_warning_that_has_the_numbers(
        tmp_path: Path, services: dict[str, Any], profile: dict[str, Any]) -> None:
    r = run(tmp_path, services, profile)
    assert resources(r, "api")["limits"] == {"memory": "1Gi"}
    assert "services.api.deploy.resources.limits.memory: 1Gi is below what -Xmx2g (JAVA_OPTS) needs: at least " \
           "2624Mi (a JVM heap needs heap × 1.25 + 64 MiB); the container is OOM-killed once the heap fills. " \
           "Raise the limit or lower the heap" in lines(r.warnings)


def test_node_heap_and_a_limit_that_fits_say_nothing(tmp_path: Path) -> None:
    node = {"image": "node:22", "environment": {"NODE_OPTIONS": "--max-old-space-size=1024"}}
    r = run(tmp_path, {"ui": node, "api": {**JAVA, "deploy": {"resources": {"limits": {"memory": str(3 * 2**30)}}}}},
            {"defaults": {"resources": {"limits": {"memory": "2Gi"}}}})
    assert resources(r, "ui")["limits"] == {"memory": "2Gi"}
    assert resources(r, "api")["limits"] == {"memory": "3Gi"}
    assert not [w for w in [*lines(r.warnings), *lines(r.notes)] if "heap" in w]
    small = run(tmp_path, {"ui": node}, {"defaults": {"resources": {"limits": {"memory": "512Mi"}}}})
    assert resources(small, "ui")["limits"] == {"memory": "1344Mi"}
    assert any("--max-old-space-size=1024 (NODE_OPTIONS): raised from 512Mi" in n for n in lines(small.notes))


def test_no_limit_no_check(tmp_path: Path) -> None:
    r = run(tmp_path, {"api": JAVA}, {"defaults": {"resources": {"requests": {"memory": "256Mi"}}}})
    assert resources(r, "api") == {"requests": {"memory": "256Mi"}}
    assert not [w for w in [*lines(r.warnings), *lines(r.notes)] if "heap" in w]


def test_a_request_above_its_limit_is_lowered_to_it(tmp_path: Path) -> None:
    """The API server refuses `requests.memory` > `limits.memory` (the renderer's output must apply)."""
    r = run(tmp_path, {"api": {"image": "ghcr.io/acme/api:1", "deploy": {"resources": {
        "limits": {"memory": str(256 * MiB), "cpus": "0.5"}, "reservations": {"memory": str(2**30), "cpus": "1"}}}}})
    assert resources(r, "api") == {"limits": {"cpu": "500m", "memory": "256Mi"},
                                   "requests": {"cpu": "500m", "memory": "256Mi"}}
    assert "services.api.deploy.resources.reservations.memory: the request 1Gi is above the limit 256Mi, which " \
           "Kubernetes refuses; lowered to 256Mi" in lines(r.warnings)
    assert any(w.startswith("services.api.deploy.resources.reservations.cpus: the request 1 is above")
               for w in lines(r.warnings))


# -- a database with replicas -------------------------------------------------------------------
@pytest.mark.parametrize(("services", "profile", "field"), [
    ({"db": {"image": "postgres:16"}}, {"services": {"db": {"replicas": 2}}}, "services.db.replicas"),
    ({"db": {"image": "mariadb:11", "deploy": {"replicas": 3}}}, {}, "services.db.deploy.replicas"),
    ({"db": {"image": "redis:7"}}, {"services": {"db": {"autoscaling": {"min": 2, "max": 4, "cpu": 70},
                                            "resources": {"requests": {"cpus": "0.5"}}}}},
     "services.db.autoscaling.min"),
])
def test_a_database_image_with_replicas_is_a_warning(tmp_path: Path, services: dict[str, Any],
                                                     profile: dict[str, Any], field: str) -> None:
    r = run(tmp_path, services, profile)
    found = [w for w in lines(r.warnings) if "independent databases" in w]
    assert len(found) == 1 and found[0].startswith(f"{field}: {services['db']['image']} is a database image: ")


def test_one_database_replica_and_a_scaled_web_say_nothing(tmp_path: Path) -> None:
    r = run(tmp_path, {"db": {"image": "postgres:16"}, "web": {"image": "nginx:1.27", "deploy": {"replicas": 3}}},
            {"services": {"db": {"replicas": 1}}})
    assert not [w for w in lines(r.warnings) if "independent databases" in w]
