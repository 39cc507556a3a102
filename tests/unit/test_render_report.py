"""The conversion report (stackctl.kubernetes.render.report): what each Compose field of each service became,
checked against the rendered objects, and no field dropped without a warning (so --strict cannot pass a lossy
render)."""

from __future__ import annotations

from typing import Any

from stackctl import model as m
from stackctl.compose import loader
from stackctl.compose.loader import to_model
from stackctl.kubernetes.inputs import Target
from stackctl.kubernetes.render import Rendered, render, report
from stackctl.profile.types import KubernetesSettings, ServiceOverride

# Many fields at once, in the shapes `docker compose config --format json` prints them.
MANY = {
    "name": "shop",
    "services": {
        "web": {
            "image": "example.com/web:1", "command": ["serve"], "entrypoint": ["/init"], "working_dir": "/srv",
            "environment": {"MODE": "prod"}, "ports": [{"target": 8000, "published": "80"}], "expose": ["9000"],
            "volumes": [{"type": "volume", "source": "data", "target": "/data"},
                        {"type": "bind", "source": "/var/run/docker.sock", "target": "/var/run/docker.sock"}],
            "healthcheck": {"test": ["CMD", "true"], "interval": "10s"},
            "depends_on": {"db": {"condition": "service_healthy"}, "cache": {"condition": "service_started"}},
            "deploy": {"replicas": 2, "resources": {"limits": {"cpus": 0.5, "memory": "268435456"}},
                       "labels": {"team": "a"}, "placement": {"constraints": ["node.labels.zone == eu"]},
                       "update_config": {"parallelism": 1, "order": "start-first"},
                       "endpoint_mode": "vip"},
            "restart": "always", "labels": {"tier": "web"}, "networks": {"default": None},
            "stop_grace_period": "20s", "user": "1000:1000", "hostname": "web", "init": True, "read_only": True,
            "cap_add": ["NET_ADMIN"], "cap_drop": ["ALL"], "sysctls": {"net.ipv4.tcp_syncookies": "1"},
            "pull_policy": "always", "profiles": ["prod"],
            "post_start": [{"command": ["warm"]}], "pre_stop": [{"command": ["drain"], "user": "root"}],
            "develop": {"watch": [{"path": "/src", "action": "sync", "target": "/srv"}]},
            "models": {"llm": None}, "ulimits": {"nofile": 1024}, "container_name": "web1", "tty": True,
            "secrets": [{"source": "token"}], "configs": [{"source": "conf", "target": "/etc/web.conf"}],
            "extra_hosts": ["a:1.2.3.4"], "logging": {"driver": "json-file"}, "privileged": False,
        },
        "db": {"image": "postgres:16", "volumes": [{"type": "volume", "source": "pg",
                                                   "target": "/var/lib/postgresql/data"}],
               "gpus": [{"count": -1}], "restart": "unless-stopped"},
        "cache": {"image": "redis:7", "deploy": {"resources": {"reservations": {"devices": [
            {"capabilities": ["gpu"], "count": 1}, {"capabilities": ["tpu"], "count": 1}]}}}},
        "migrate": {"image": "example.com/web:1", "command": ["migrate"], "restart": "no",
                    "deploy": {"mode": "replicated-job"}},
    },
    "volumes": {"data": {}, "pg": {}},
    "secrets": {"token": {"environment": "TOKEN"}},
    "configs": {"conf": {"content": "x=1"}},
}


def _target() -> Target:
    return Target(profile="production", profile_file="profiles/production.yaml",
                  kubernetes=KubernetesSettings(namespace="shop"), services={}, defaults=ServiceOverride())


def _report(data: dict[str, Any]) -> tuple[m.Stack, Rendered, report.Report]:
    stack = to_model(data)
    rendered = render(stack, _target())
    return stack, rendered, report.build(stack, rendered.objects, (*stack.warnings, *rendered.warnings),
                                         rendered.notes)


def test_every_field_read_is_reported_once() -> None:
    stack, _, built = _report(MANY)
    for svc, rep in zip(stack.services, built.services, strict=True):
        assert [f.field for f in rep.fields] == list(svc.fields)
    web = next(s for s in built.services if s.name == "web")
    assert len(web.fields) > 40


def test_dropped_implies_warned() -> None:
    """The issue's --strict promise: a field the report shows as dropped produced a warning, so --strict
    fails on it; and nothing is dropped without a reason."""
    stack, rendered, built = _report(MANY)
    warned = {w.field for w in (*stack.warnings, *rendered.warnings)}
    for svc in built.services:
        for f in svc.fields:
            state = [bool(f.became), f.dropped is not None, f.ignored is not None]
            assert state.count(True) == 1, (svc.name, f)
            assert f.dropped != report.UNACCOUNTED, (svc.name, f.field)
            if f.dropped is not None:
                prefix = f"services.{svc.name}.{f.field}"
                assert any(w == prefix or w.startswith((f"{prefix}.", f"{prefix}[")) for w in warned), f.field
                assert f.warnings


def test_destinations_are_real_paths_of_the_rendered_objects() -> None:
    _, rendered, built = _report(MANY)
    web = {f.field: f for f in next(s for s in built.services if s.name == "web").fields}
    workload = rendered.workload("web")
    kind = workload["kind"]
    assert web["image"].became == (f"{kind}/web spec.template.spec.containers[web].image",)
    assert kind == "StatefulSet"  # the named volume only it uses
    assert web["ports"].became == ("StatefulSet/web spec.template.spec.containers[web].ports[containerPort=8000]",
                                   "Service/web spec.ports[port=8000]", "Service/web-headless spec.ports[port=8000]")
    assert web["expose"].became == ("StatefulSet/web spec.template.spec.containers[web].ports[containerPort=9000]",
                                    "Service/web spec.ports[port=9000]", "Service/web-headless spec.ports[port=9000]")
    assert web["deploy.update_config"].dropped == (
        "services.web.deploy.update_config: a StatefulSet replaces its pods one at a time, stop-first, in order; "
        "parallelism, order and delay are not carried over")
    assert web["post_start"].became == (f"{kind}/web spec.template.spec.containers[web].lifecycle.postStart.exec",)
    assert web["pre_stop"].warnings and web["pre_stop"].became
    assert web["models"].dropped is not None and "Docker Model Runner" in web["models"].dropped
    assert web["develop"].ignored == "the dev loop (`develop.watch`) is for a local stack only"
    assert web["profiles"].ignored is not None
    assert web["privileged"].ignored == "the value is Kubernetes' default"  # privileged: false
    assert web["ulimits"].dropped is not None and web["container_name"].dropped is not None
    # the docker socket is dropped (with a warning), the named volume is mounted: a partial loss
    assert web["volumes"].became == (f"{kind}/web spec.template.spec.containers[web].volumeMounts[mountPath=/data]",)
    assert web["volumes"].warnings
    db = {f.field: f for f in next(s for s in built.services if s.name == "db").fields}
    assert db["gpus"].became == ("StatefulSet/db spec.template.spec.containers[db].resources.limits[nvidia.com/gpu]",)
    migrate = {f.field: f for f in next(s for s in built.services if s.name == "migrate").fields}
    assert migrate["deploy.mode"].became == (f"Job/{rendered.workload('migrate')['metadata']['name']}",)


def test_a_destination_missing_from_the_objects_is_never_claimed() -> None:
    stack, rendered, _ = _report(MANY)
    objects = [dict(o) for o in rendered.objects]
    web = next(o for o in objects if o["metadata"].get("annotations", {}).get("stackctl.io/service") == "web"
               and o["kind"] in ("Deployment", "StatefulSet"))
    pod = {**web["spec"]["template"]["spec"]}
    pod["containers"] = [{k: v for k, v in pod["containers"][0].items() if k != "lifecycle"}]
    web["spec"] = {**web["spec"], "template": {**web["spec"]["template"], "spec": pod}}
    objects[objects.index(next(o for o in objects if o["metadata"]["name"] == "web" and o["kind"] == web["kind"]))] \
        = web
    built = report.build(stack, objects, stack.warnings)
    fields = {f.field: f for f in next(s for s in built.services if s.name == "web").fields}
    assert fields["post_start"].became == ()
    assert fields["post_start"].dropped == report.UNACCOUNTED  # the bug a test of the renderer must catch


def test_every_modelled_service_field_has_a_row() -> None:
    """A field the loader models (no generic warning) must say where it goes, or the report would call it
    dropped without a warning."""
    assert set(loader._SERVICE_FIELDS) - {"deploy"} <= set(report.FIELDS)
    assert {f"deploy.{k}" for k in loader._DEPLOY_FIELDS} <= set(report.FIELDS)


def test_text_and_data() -> None:
    data = {"name": "demo", "services": {"app": {"image": "example.com/app:1", "expose": ["8000"],
                                                 "networks": {"default": None}, "tty": True}}}
    *_, built = _report(data)
    assert report.text(built) == (
        "app: Deployment/app, Service/app\n"
        "  note: services.app: no resources, so the pods are BestEffort (first evicted under pressure); set "
        "defaults.resources in the profile\n"
        "  expose    -> Deployment/app spec.template.spec.containers[app].ports[containerPort=8000]\n"
        "            -> Service/app spec.ports[port=8000]\n"
        "  image     -> Deployment/app spec.template.spec.containers[app].image\n"
        "  networks  ignored: Compose networks are flat in Kubernetes: every pod reaches every Service (an alias "
        "is one more Service; an `internal: true` network a NetworkPolicy)\n"
        "  tty       dropped: services.app.tty: not modeled by stackctl; Compose applies it locally, the "
        "Kubernetes backend ignores it\n"
        "4 fields in 1 services: 2 carried over, 1 ignored (nothing lost), 1 dropped\n")
    assert built.to_data()["services"]["app"]["fields"]["tty"] == {
        "became": [], "dropped": "services.app.tty: not modeled by stackctl; Compose applies it locally, the "
                                 "Kubernetes backend ignores it",
        "warnings": ["services.app.tty: not modeled by stackctl; Compose applies it locally, the Kubernetes "
                     "backend ignores it"]}
    assert built.to_data()["services"]["app"]["objects"] == ["Deployment/app", "Service/app"]
