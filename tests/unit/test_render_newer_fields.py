"""Newer Compose fields on Kubernetes (issue 12 item 12): `post_start`/`pre_stop` → lifecycle exec handlers,
`gpus` and GPU device reservations → `nvidia.com/gpu` limits, `develop` noted, `models`/`provider` warned."""

from __future__ import annotations

from typing import Any

import pytest

from stackctl.compose.loader import to_model
from stackctl.kubernetes.inputs import Target
from stackctl.kubernetes.render import Rendered, render
from stackctl.kubernetes.validate import validate
from stackctl.profile.types import KubernetesSettings, ServiceOverride


def _render(**fields: Any) -> Rendered:
    stack = to_model({"name": "demo", "services": {"app": {"image": "example.com/app:1", **fields}}})
    target = Target(profile="production", profile_file="profiles/production.yaml",
                    kubernetes=KubernetesSettings(namespace="demo-prod"), services={}, defaults=ServiceOverride())
    rendered = render(stack, target)
    assert validate(list(rendered.objects), "1.35") == []
    return rendered


def _container(r: Rendered) -> dict[str, Any]:
    container: dict[str, Any] = r.workload("app")["spec"]["template"]["spec"]["containers"][0]
    return container


def _said(r: Rendered) -> tuple[list[str], list[str]]:
    """Warnings and notes about the service's fields (not the BestEffort note about every service)."""
    return [str(w) for w in r.warnings], [str(n) for n in r.notes if n.field.startswith("services.app.")]


def test_hooks_become_exec_handlers() -> None:
    r = _render(post_start=[{"command": ["/app/warm", "--quick"]}], pre_stop=[{"command": ["/app/drain"]}])
    assert _container(r)["lifecycle"] == {"postStart": {"exec": {"command": ["/app/warm", "--quick"]}},
                                          "preStop": {"exec": {"command": ["/app/drain"]}}}
    assert _said(r) == ([], [])


def test_several_hooks_run_in_one_shell_handler_with_a_note() -> None:
    r = _render(post_start=[{"command": ["echo", "a b"]}, {"command": ["touch", "/tmp/it's"]}])
    assert _container(r)["lifecycle"]["postStart"]["exec"]["command"] == [
        "/bin/sh", "-c", "echo 'a b' && touch '/tmp/it'\"'\"'s'"]
    assert _said(r)[1] == ["services.app.post_start: 2 hooks run one after the other in one postStart handler "
                           "(/bin/sh -c; the image needs a shell)"]


@pytest.mark.parametrize(("hook", "lost"), [
    ({"user": "root"}, "user"),
    ({"privileged": True}, "privileged"),
    ({"working_dir": "/tmp"}, "working_dir"),
    ({"environment": {"A": "b"}}, "environment"),
    ({"user": "root", "environment": {"A": "b"}}, "user, environment"),
])
def test_what_a_handler_cannot_carry_is_a_warning(hook: dict[str, Any], lost: str) -> None:
    r = _render(post_start=[{"command": ["x"], **hook}])
    assert _said(r)[0] == [f"services.app.post_start[0]: {lost} of the hook not carried over: a Kubernetes "
                           "postStart handler runs as the container does (its user, privileges, directory and "
                           "environment)"]
    assert _container(r)["lifecycle"]["postStart"] == {"exec": {"command": ["x"]}}


def test_a_hook_like_its_container_loses_nothing() -> None:
    r = _render(user="1000", working_dir="/srv", post_start=[{"command": ["x"], "user": "1000",
                                                             "working_dir": "/srv"}])
    assert _said(r)[0] == []


def test_pre_stop_replaces_the_drain_delay_of_a_served_pod() -> None:
    plain = _render(ports=[{"target": 80}])
    assert _container(plain)["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    assert plain.workload("app")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 15
    r = _render(ports=[{"target": 80}], pre_stop=[{"command": ["nginx", "-s", "quit"]}])
    assert _container(r)["lifecycle"] == {"preStop": {"exec": {"command": ["nginx", "-s", "quit"]}}}
    assert "terminationGracePeriodSeconds" not in r.workload("app")["spec"]["template"]["spec"]
    assert any(n.startswith("services.app.pre_stop: the Compose pre_stop hook is the pod's preStop handler")
               for n in _said(r)[1])


@pytest.mark.parametrize(("fields", "gpus", "warned"), [
    ({"gpus": [{"driver": "nvidia", "count": 2}]}, 2, []),
    ({"gpus": [{"count": -1}]}, 1, ["services.app.gpus: all GPUs of the host: Kubernetes needs a number, "
                                    "nvidia.com/gpu: 1 rendered (set `count` for more)"]),
    ({"gpus": [{"device_ids": ["0", "2"]}]}, 2,
     ["services.app.gpus: device_ids ['0', '2']: Kubernetes picks the GPUs, nvidia.com/gpu: 2 rendered"]),
    ({"deploy": {"resources": {"reservations": {"devices": [{"capabilities": ["gpu"], "count": 1},
                                                            {"capabilities": ["gpu"], "driver": "nvidia",
                                                             "count": 3}]}}}}, 4, []),
    ({"deploy": {"resources": {"reservations": {"devices": [{"capabilities": ["tpu"], "count": 1}]}}}}, None,
     ["services.app.deploy.resources.reservations.devices[0]: a device reservation with capabilities ['tpu'] has "
      "no Kubernetes counterpart (only GPUs become a resource limit); not carried over"]),
    ({"gpus": [{"driver": "amd", "count": 1}]}, None,
     ["services.app.gpus: GPU driver 'amd': only nvidia GPUs (`nvidia.com/gpu`) are rendered; not carried over"]),
    ({"gpus": [{"count": 1, "options": {"virtualization": "false"}}]}, 1,
     ["services.app.gpus.options: driver options have no Kubernetes counterpart; not carried over"]),
])
def test_gpus_become_a_limit(fields: dict[str, Any], gpus: int | None, warned: list[str]) -> None:
    r = _render(**fields)
    limits = _container(r).get("resources", {}).get("limits", {})
    assert limits.get("nvidia.com/gpu") == gpus
    assert _said(r)[0] == warned


def test_gpus_join_the_memory_limit() -> None:
    r = _render(deploy={"resources": {"limits": {"memory": "1073741824"},
                                      "reservations": {"devices": [{"capabilities": ["gpu"], "count": 1}]}}})
    assert _container(r)["resources"]["limits"] == {"memory": "1Gi", "nvidia.com/gpu": 1}


def test_develop_is_a_note_and_models_a_warning() -> None:
    r = _render(develop={"watch": [{"path": "/src", "action": "sync", "target": "/app"}]}, models={"llm": None})
    warnings, notes = _said(r)
    assert notes == ["services.app.develop: the dev loop (`develop.watch`) is for a local stack only; not rendered"]
    stack = to_model({"services": {"app": {"image": "x", "models": {"llm": None}, "develop": {"watch": []}}},
                      "models": {"llm": {"model": "ai/smollm2"}}})
    assert [str(w) for w in stack.warnings] == [
        "models: AI models run by Docker Model Runner are not carried over: run the model server as a service of "
        "its own and set its URL in the environment",
        "services.app.models: AI models run by Docker Model Runner are not carried over: run the model server as "
        "a service of its own and set its URL in the environment"]
    assert warnings == []  # the model's warnings are the loader's, not the renderer's


def test_a_provider_service_is_left_out_with_the_waits_on_it() -> None:
    """Nothing of a provider service runs in a pod: it is not rendered, and a dependent does not wait
    for a Service that never exists (its init container would block it for ever)."""
    stack = to_model({"name": "demo", "services": {
        "db": {"provider": {"type": "awesomecloud"}},
        "app": {"image": "x", "depends_on": {"db": {"condition": "service_healthy"}}}}})
    assert [w.field for w in stack.warnings] == ["services.db.provider"]
    target = Target(profile="production", profile_file="profiles/production.yaml",
                    kubernetes=KubernetesSettings(namespace="demo-prod"), services={}, defaults=ServiceOverride())
    r = render(stack, target)
    assert [str(w) for w in r.warnings] == [
        "services.app.depends_on.db: db is a provider service, left out: not waited for (set its address in this "
        "service's environment)"]
    assert not [o for o in r.objects if o["metadata"]["name"] == "db"]
    app = r.workload("app")["spec"]["template"]["spec"]
    assert not app.get("initContainers")


def test_the_loader_records_the_fields_it_read() -> None:
    svc = to_model({"services": {"a": {"image": "x", "command": None, "entrypoint": None, "x-tool": 1,
                                       "deploy": {"replicas": 2, "placement": {}}, "networks": {"default": None},
                                       "post_start": [{"command": ["x"]}]}}}).service("a")
    assert svc.fields == ("deploy.replicas", "image", "networks", "post_start")


def test_reserved_devices_and_generic_resources_are_never_dropped_silently() -> None:
    stack = to_model({"services": {"a": {"image": "x", "deploy": {"resources": {
        "limits": {"devices": [{"capabilities": ["gpu"]}]},
        "reservations": {"generic_resources": [{"discrete_resource_spec": {"kind": "gpu", "value": 1}}]}}}}}})
    assert [w.field for w in stack.warnings] == ["services.a.deploy.resources.limits.devices",
                                                 "services.a.deploy.resources.reservations.generic_resources"]
