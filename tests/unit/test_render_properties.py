"""Property tests: whatever the Compose project, every service's ports, environment keys, volumes and
health check survive translation (or are reported as warnings), and the output is valid and stable."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackctl.compose.loader import to_model
from stackctl.kubernetes import names as k
from stackctl.kubernetes import write
from stackctl.kubernetes.inputs import HostPath, SecretInputs, Target
from stackctl.kubernetes.render import Rendered, mapping, render
from stackctl.kubernetes.validate import validate
from stackctl.profile.types import KubernetesSettings

NAMES = ["web", "api", "db", "cache", "worker", "my_app", "queue", "search", "proxy", "agent"]
IMAGES = ["nginx:1.27", "postgres:16", "redis:7", "acme/api:1.0", "ghcr.io/acme/worker", "busybox"]
HOST = {
    "/p/conf/app.conf": HostPath(kind="file", display="conf/app.conf", files={"": b"key = value\n"}),
    "/p/conf.d": HostPath(kind="dir", display="conf.d", files={"a.conf": b"a", "nested/b.conf": b"b"}),
    "/var/run/docker.sock": HostPath(kind="host", display="/var/run/docker.sock"),
    "/p/src": HostPath(kind="too_large", display="src", reason="too large"),
}
env_keys = st.from_regex(r"[A-Z][A-Z0-9_]{0,10}", fullmatch=True)
env_values = st.one_of(st.none(), st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30))
durations = st.sampled_from(["1s", "5s", "10s", "30s", "1m", "1500ms"])
commands = st.sampled_from([
    ["CMD", "curl", "-f", "http://localhost:8080/health"], ["CMD", "pg_isready"],
    ["CMD-SHELL", "redis-cli ping | grep PONG"], ["CMD", "wget", "-q", "--spider", "http://127.0.0.1/"],
    ["CMD-SHELL", "curl -fsS http://localhost:3000/ready || exit 1"], ["NONE"]])


@st.composite
def healthchecks(draw: Any) -> dict[str, Any]:
    hc: dict[str, Any] = {"test": draw(commands)}
    for key in ("interval", "timeout", "start_period"):
        if draw(st.booleans()):
            hc[key] = draw(durations)
    if draw(st.booleans()):
        hc["retries"] = draw(st.integers(1, 10))
    return hc


@st.composite
def mounts(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["named", "anon", "tmpfs", "bind"]))
    target = draw(st.sampled_from(["/data", "/var/lib/x", "/cache", "/etc/app", "/srv/www", "/tmp/t"]))
    if kind == "named":
        return {"type": "volume", "source": draw(st.sampled_from(["data", "shared", "logs"])), "target": target}
    if kind == "anon":
        return {"type": "volume", "target": target}
    if kind == "tmpfs":
        return {"type": "tmpfs", "target": target, "tmpfs": {"size": draw(st.integers(1, 2**30))}}
    return {"type": "bind", "source": draw(st.sampled_from(sorted(HOST))), "target": target,
            "read_only": draw(st.booleans())}


@st.composite
def projects(draw: Any) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=5, unique=True))
    services: dict[str, Any] = {}
    for name in names:
        svc: dict[str, Any] = {"image": draw(st.sampled_from(IMAGES))}
        ports = draw(st.lists(st.tuples(st.integers(1, 65535), st.sampled_from(["tcp", "udp"]),
                                        st.one_of(st.none(), st.integers(1, 65535))), max_size=4))
        if ports:
            svc["ports"] = [{"target": t, "protocol": p, **({"published": str(pub)} if pub else {})}
                            for t, p, pub in ports]
        expose = draw(st.lists(st.integers(1, 65535).map(str), max_size=3))
        if expose:
            svc["expose"] = expose
        env = draw(st.dictionaries(env_keys, env_values, max_size=6))
        if env:
            svc["environment"] = env
        vols = draw(st.lists(mounts(), max_size=4, unique_by=lambda v: v["target"]))
        if vols:
            svc["volumes"] = vols
        if draw(st.booleans()):
            svc["healthcheck"] = draw(healthchecks())
        mode = draw(st.sampled_from(["replicated", "replicated", "global", "replicated-job"]))
        svc["deploy"] = {"mode": mode}
        others = [n for n in names if n != name]
        if others and draw(st.booleans()):
            dep = draw(st.sampled_from(others))
            cond = draw(st.sampled_from(["service_started", "service_healthy", "service_completed_successfully"]))
            svc["depends_on"] = {dep: {"condition": cond, "required": True}}
        services[name] = svc
    return {"name": "prop", "services": services, "volumes": {"data": {}, "shared": {}, "logs": {}}}


def _render(project: dict[str, Any], secret_keys: frozenset[str]) -> Rendered:
    target = Target(profile="p", profile_file="profiles/p.yaml", kubernetes=KubernetesSettings(namespace="prop"))
    return render(to_model(project), target, secrets=SecretInputs(keys=secret_keys), host=HOST)


def _container(r: Rendered, name: str) -> dict[str, Any]:
    w = r.workload(name)
    return w["spec"]["template"]["spec"]["containers"][0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(project=projects(), secret_keys=st.frozensets(env_keys, max_size=3))
def test_everything_survives_translation(project: dict[str, Any], secret_keys: frozenset[str]) -> None:
    r = _render(project, secret_keys)
    stack = to_model(project)
    warned = {w.field for w in (*r.warnings, *stack.warnings)}
    config_maps = {o["metadata"]["name"]: o.get("data", {}) for o in r.of_kind("ConfigMap")}
    secret_data = {o["metadata"]["name"]: o.get("data", {}) for o in r.of_kind("Secret")}
    for svc in stack.services:
        c = _container(r, svc.name)
        kind = r.workload(svc.name)["kind"]
        # ports: every (port, protocol) of `ports` and `expose` is a container port
        wanted = {(p.target, p.protocol.upper()) for p in svc.ports} | {(int(e), "TCP") for e in svc.expose}
        got = {(p["containerPort"], p["protocol"]) for p in c.get("ports", [])}
        if wanted:
            assert got == wanted
        else:  # inferred (health check URL, other services' env, image default), and said so
            assert not got or any(n.field == f"services.{svc.name}" for n in r.notes)
        if wanted and kind not in ("Job", "CronJob"):
            name = k.service_name(svc.name)
            service = r.get("Service", name)
            assert {(p["port"], p["protocol"]) for p in service["spec"]["ports"]} >= wanted
        # environment: every key with a value reaches the container, with its value
        seen: dict[str, str] = {}
        for ref in c.get("envFrom", []):
            seen.update(config_maps[ref["configMapRef"]["name"]])
        for entry in c.get("env", []):
            if "value" in entry:
                seen[entry["name"]] = entry["value"]
            else:
                ref = entry["valueFrom"]["secretKeyRef"]
                assert ref["key"] in secret_data[ref["name"]]
                seen[entry["name"]] = "<secret>"
        for key, value in svc.environment.items():
            if value is None:
                assert f"services.{svc.name}.environment.{key}" in warned
                continue
            assert key in seen
            if key in secret_keys:
                assert seen[key] == "<secret>"
            elif seen[key] != "<secret>":
                assert seen[key] in (value, mapping.escape_dollar(value))
        # volumes: every mount is mounted at its target, or its loss is a warning naming it
        mounted = {m["mountPath"] for m in c.get("volumeMounts", [])}
        for i, mount in enumerate(svc.volumes):
            assert mount.target in mounted or f"services.{svc.name}.volumes[{i}]" in warned
        # health checks: readiness runs the same check (Jobs have no readiness)
        hc = svc.healthcheck
        if hc is not None and hc.argv is not None and kind not in ("Job", "CronJob"):
            probe = c["readinessProbe"]
            http = mapping.http_check(hc.argv)
            if http is not None:
                assert probe["httpGet"]["port"] == http.port and probe["httpGet"]["path"] == http.path
            else:
                assert probe["exec"]["command"] == list(hc.argv)
            assert probe["failureThreshold"] == hc.retries
            assert ("startupProbe" in c) == (hc.start_period > 0)
        assert "livenessProbe" not in c


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(project=projects())
def test_output_is_valid_and_stable(project: dict[str, Any]) -> None:
    first = _render(project, frozenset())
    assert validate(list(first.objects), "1.35") == []
    text = write.to_stream(list(first.objects))
    assert text == write.to_stream(list(_render(project, frozenset()).objects))
    import yaml

    assert list(yaml.safe_load_all(text)) == list(first.objects)
