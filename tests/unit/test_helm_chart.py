"""`stackctl render helm`'s chart, built from hand-made renders: each profile's values through the
templates (helmsim: `helm template`'s language and values merge) give back that profile's objects,
Secrets aside; values of every awkward kind round-trip; no secret value in any file; deterministic.
The real helm holds the same property in tests/delivery/test_helm_*.py."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import helmsim
import pytest
import yaml

from stackctl.errors import InputError
from stackctl.kubernetes.helm import HelmResult, write_chart
from stackctl.kubernetes.render.helmchart import Chart, ProfileObjects, build_chart

SECRET_VALUE = "s3cr3t-value-never-in-the-chart"


def _labels(name: str, profile: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "stackctl.io/profile": profile, "stackctl.io/stack": "demo"}


def _meta(name: str, profile: str, ns: str | None, **annotations: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if ns is not None:
        meta["namespace"] = ns
    meta["labels"] = _labels(name, profile)
    meta["annotations"] = {"stackctl.io/wave": "1", **annotations}
    return meta


def _deployment(profile: str, ns: str, *, replicas: int | None, image: str, resources: dict[str, Any] | None,
                secret_hash: str, extra_annotation: bool = False) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "web", "image": image, "envFrom": [{"configMapRef": {"name": "web-env"}}],
                                 "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "demo-env",
                                                                                          "key": "TOKEN"}}}]}
    if resources is not None:
        container["resources"] = resources
    spec: dict[str, Any] = {}
    if replicas is not None:
        spec["replicas"] = replicas
    pod_annotations = {"stackctl.io/secret-hash": secret_hash}
    if extra_annotation:
        pod_annotations["org.example/tier"] = profile
    spec.update({
        "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
        "template": {"metadata": {"labels": _labels("web", profile), "annotations": pod_annotations},
                     "spec": {"containers": [container],
                              "volumes": [{"name": "creds", "secret": {"secretName": "demo-files"}}]}},
    })
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta("web", profile, ns), "spec": spec}


def _secret(name: str, profile: str, ns: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(name, profile, ns),
            "type": "Opaque", "stringData": {"TOKEN": SECRET_VALUE}}


def _config_map(profile: str, ns: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("web-env", profile, ns), "data": data}


def _namespace(profile: str, ns: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(ns, profile, None)}


def _ingress(profile: str, ns: str, host: str) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": _meta("web", profile, ns),
            "spec": {"ingressClassName": "nginx",
                     "rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
                         "service": {"name": "web", "port": {"number": 80}}}}]}}],
                     "tls": [{"hosts": [host], "secretName": "web-tls"}]}}


def _worker(profile: str, ns: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta("worker", profile, ns),
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "worker"}},
                     "template": {"metadata": {"labels": _labels("worker", profile)},
                                  "spec": {"containers": [{"name": "worker", "image": "example/worker:2"}]}}}}


TRICKY = {
    "NUMBER_LIKE": "1e3", "HEX": "0x1F", "OCTAL": "0755", "BOOL_WORD": "yes", "NULL_WORD": "null", "EMPTY": "",
    "MULTI": "line one\nline two\n", "NO_TRAILING": "a\nb", "TEMPLATE": "{{ .Values.secrets }} and {{{{x}}}}",
    "CLOSE": "}} not an action", "UNICODE": "grüße ✓ 🚀 日本", "QUOTES": "it's \"quoted\"", "COLON": "a: b # c",
    "DASH": "- item", "TAB": "\tindented\t", "SPACES": "  lead and trail  ", "BACKSLASH": "C:\\path\\n",
    "PERCENT": "100% %s %d", "DOLLAR": "$(VAR) ${X}", "LS": "line\u2028sep", "CR": "a\r\nb",
}


def _profile(name: str, ns: str, **kw: Any) -> ProfileObjects:
    env = {"APP_ENV": name, "COUNT": "3", **kw.get("env", {})}
    objects = [*([] if ns == "default" else [_namespace(name, ns)]),
               _secret("demo-env", name, ns), _secret("demo-files", name, ns), _config_map(name, ns, env),
               _deployment(name, ns, replicas=kw.get("replicas"), image=kw.get("image", "example/web:1.0"),
                           resources=kw.get("resources"), secret_hash=kw.get("secret_hash", "abc" + name),
                           extra_annotation=kw.get("extra_annotation", False))]
    if kw.get("host"):
        objects.append(_ingress(name, ns, kw["host"]))
    if kw.get("worker"):
        objects.append(_worker(name, ns))
    return ProfileObjects(name, ns, objects)


PROFILES = [
    _profile("production", "demo-prod", replicas=3, image="registry.example:5000/demo/web:1.4.2",
             resources={"limits": {"cpu": "1", "memory": "512Mi"}, "requests": {"cpu": "250m", "memory": "128Mi"}},
             host="shop.example.com", extra_annotation=True, env=TRICKY),
    _profile("staging", "demo-staging", replicas=1, image="registry.example:5000/demo/web:1.5.0-rc1",
             resources={"limits": {"cpu": "500m", "memory": "256Mi"}}, host="staging.example.com", worker=True,
             env={k: v + "-staging" for k, v in TRICKY.items()}),
    _profile("dev", "default", image="example/web@sha256:" + "a" * 64, env={"ONLY_DEV": "1"}),
]


def _without_secrets(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] != "Secret"]


def _key(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = obj["metadata"]
    return obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"]


def _as_set(objects: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], str]:
    out = {_key(o): json.dumps(o, sort_keys=True) for o in objects}
    assert len(out) == len(objects), "two objects with one key"
    return out


def _write(chart: Chart, directory: Path) -> Path:
    for rel, text in chart.files.items():
        (directory / rel).parent.mkdir(parents=True, exist_ok=True)
        (directory / rel).write_text(text, encoding="utf-8")
    return directory


def _chart(tmp_path: Path, renders: list[ProfileObjects] = PROFILES) -> Path:
    return _write(build_chart(renders, stack="demo"), tmp_path / "chart")


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_each_profile_values_render_that_profile(tmp_path: Path, profile: ProfileObjects) -> None:
    chart = _chart(tmp_path)
    got = helmsim.template(chart, profile.namespace, [chart / f"values-{profile.name}.yaml"])
    assert _as_set(got) == _as_set(_without_secrets(list(profile.objects)))


def test_defaults_are_the_first_profile(tmp_path: Path) -> None:
    chart = _chart(tmp_path)
    first = PROFILES[0]
    got = helmsim.template(chart, first.namespace)
    assert _as_set(got) == _as_set(_without_secrets(list(first.objects)))
    assert "values of profile production" in (chart / "values.yaml").read_text()


def test_another_namespace_moves_every_object(tmp_path: Path) -> None:
    """Namespace-independent: the release's namespace, never the profile's, in every object."""
    chart = _chart(tmp_path)
    got = helmsim.template(chart, "elsewhere", [chart / "values-production.yaml"])
    assert {o["metadata"].get("namespace", "elsewhere") for o in got} == {"elsewhere"}
    assert next(o for o in got if o["kind"] == "Namespace")["metadata"]["name"] == "elsewhere"
    assert not any("demo-prod" in (chart / "templates" / f).read_text()
                   for f in (p.name for p in (chart / "templates").iterdir()))


def test_what_varies_is_in_the_values(tmp_path: Path) -> None:
    chart = _chart(tmp_path)
    prod = yaml.safe_load((chart / "values-production.yaml").read_text())
    web = prod["deployment"]["web"]
    assert web["replicas"] == 3
    assert web["containers"]["web"]["image"] == {"repository": "registry.example:5000/demo/web", "tag": "1.4.2"}
    assert web["containers"]["web"]["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}
    assert prod["ingress"]["web"]["rules"][0]["host"] == "shop.example.com"
    assert prod["configMap"]["web-env"]["data"]["NUMBER_LIKE"] == "1e3"
    assert prod["secrets"] == {"demo-env": {"existingSecret": "demo-env"},
                               "demo-files": {"existingSecret": "demo-files"}}
    assert web["secretChecksum"] == "abcproduction" and prod["secretsChecksum"] == ""
    # a profile-only object is gated; the profile without it switches it off
    assert prod["deployment"]["worker"]["enabled"] is False
    staging = yaml.safe_load((chart / "values-staging.yaml").read_text())
    assert staging["deployment"]["worker"]["enabled"] is True
    dev = yaml.safe_load((chart / "values-dev.yaml").read_text())
    assert dev["namespace"]["create"] is False  # `default` has no Namespace object
    assert dev["deployment"]["web"]["containers"]["web"]["image"] == {"repository": "example/web",
                                                                       "digest": "sha256:" + "a" * 64, "tag": None}


def test_values_override_like_helm_set(tmp_path: Path) -> None:
    """The values are the knobs: a replica count, an image tag, an existing Secret's name, the
    secret checksum CI sets — each changes exactly its field."""
    chart = _chart(tmp_path)
    override = tmp_path / "mine.yaml"
    override.write_text(yaml.safe_dump({
        "deployment": {"web": {"replicas": 7, "containers": {"web": {"image": {"tag": "9.9"}}}}},
        "secrets": {"demo-env": {"existingSecret": "from-vault"}}, "secretsChecksum": "ci-sha",
    }))
    got = helmsim.template(chart, "demo-prod", [chart / "values-production.yaml", override])
    web = next(o for o in got if o["kind"] == "Deployment" and o["metadata"]["name"] == "web")
    assert web["spec"]["replicas"] == 7
    pod = web["spec"]["template"]
    assert pod["spec"]["containers"][0]["image"] == "registry.example:5000/demo/web:9.9"
    assert pod["spec"]["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"]["name"] == "from-vault"
    assert pod["spec"]["volumes"][0]["secret"]["secretName"] == "demo-files"
    assert pod["metadata"]["annotations"]["stackctl.io/secret-hash"] == "ci-sha"


def test_no_secret_object_and_no_secret_value_in_any_file(tmp_path: Path) -> None:
    chart = build_chart(PROFILES, stack="demo")
    assert not any(SECRET_VALUE in text for text in chart.files.values())
    assert not any(yaml.safe_load(text.replace("{{", "#")) and "kind: Secret\n" in text
                   for rel, text in chart.files.items() if rel.startswith("templates/"))
    assert chart.secrets == ["demo-env", "demo-files"]


@pytest.mark.parametrize("name,value", sorted(TRICKY.items()))
def test_tricky_values_round_trip(tmp_path: Path, name: str, value: str) -> None:
    """One differing value of every awkward kind, through values-<p>.yaml and the template."""
    renders = [_profile("a", "ns-a", env={name: value, "KEY.WITH.DOTS": value}),
               _profile("b", "ns-b", env={name: value + "x", "KEY.WITH.DOTS": "plain"})]
    chart = _chart(tmp_path, renders)
    for r in renders:
        got = helmsim.template(chart, r.namespace, [chart / f"values-{r.name}.yaml"])
        cm = next(o for o in got if o["kind"] == "ConfigMap")
        want = next(o for o in r.objects if o["kind"] == "ConfigMap")
        assert cm["data"] == want["data"]


def test_literal_text_with_braces_is_escaped(tmp_path: Path) -> None:
    """A field every profile agrees on stays literal, and `{{` in it is no template action."""
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "files", "namespace": "n"},
           "data": {"tpl.conf": "value: {{ .Values.x }}\n{{- end }}\n", "k": "}}{{"}}
    renders = [ProfileObjects("a", "n", [obj]), ProfileObjects("b", "n", [copy.deepcopy(obj)])]
    chart = _chart(tmp_path, renders)
    assert "{{ .Values.x }}" not in (chart / "templates" / "configMap-files.yaml").read_text()
    assert helmsim.template(chart, "n") == [obj]


def test_deterministic_whatever_the_object_order() -> None:
    first = build_chart(PROFILES, stack="demo").files
    shuffled = []
    rng = random.Random(7)
    for p in PROFILES:
        objects = list(p.objects)
        rng.shuffle(objects)
        shuffled.append(ProfileObjects(p.name, p.namespace, objects))
    assert build_chart(shuffled, stack="demo").files == first


def test_chart_yaml() -> None:
    files = build_chart(PROFILES, stack="My_Stack", version="1.2.3", app_version="abc123").files
    chart = yaml.safe_load(files["Chart.yaml"])
    assert chart["apiVersion"] == "v2" and chart["name"] == "my-stack"
    assert chart["version"] == "1.2.3" and chart["appVersion"] == "abc123"
    assert chart["annotations"]["stackctl.io/defaults"] == "production"
    assert yaml.safe_load(build_chart(PROFILES, stack="demo").files["Chart.yaml"])["appVersion"] == "0.1.0"


@pytest.mark.parametrize("kwargs,field", [
    ({"version": "1.2"}, "--version"),
    ({"stack": "!!!"}, "stack"),
])
def test_errors_name_the_field(kwargs: dict[str, str], field: str) -> None:
    args: dict[str, Any] = {"stack": "demo", **kwargs}
    with pytest.raises(InputError) as exc:
        build_chart(PROFILES, **args)
    assert exc.value.field == field


def test_no_profile_is_an_error() -> None:
    with pytest.raises(InputError, match="no profile"):
        build_chart([], stack="demo")


def test_secret_marker_outside_a_secret_is_a_warning() -> None:
    p = _profile("a", "ns")
    objects = [dict(o) for o in p.objects]
    objects[3] = _config_map("a", "ns", {"URL": "postgres://u:<secret:DB_PASSWORD>@db/x"})
    chart = build_chart([ProfileObjects("a", "ns", objects)], stack="demo")
    assert any("ConfigMap/web-env holds a secret marker" in w for w in chart.warnings)


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
def _result(renders: list[ProfileObjects] = PROFILES) -> HelmResult:
    return HelmResult(chart=build_chart(renders, stack="demo"), stack="demo", namespaces={})


def test_write_then_rewrite_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "chart"
    first = _result()
    write_chart(first, out, shown="chart")
    assert sorted(first.written) == sorted(first.chart.files)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = _result()
    write_chart(again, out, shown="chart")
    assert again.written == [] and again.removed == [] and again.unchanged == len(again.chart.files)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps


def test_stale_files_removed_user_files_kept(tmp_path: Path) -> None:
    out = tmp_path / "chart"
    write_chart(_result(), out, shown="chart")
    (out / "templates" / "extra.yaml").write_text("kind: Mine\n")
    (out / "NOTES-mine.txt").write_text("mine\n")
    fewer = _result(PROFILES[:1])  # no staging: the worker and values-staging.yaml go
    write_chart(fewer, out, shown="chart")
    assert "values-staging.yaml" in fewer.removed and "templates/deployment-worker.yaml" in fewer.removed
    assert not (out / "values-staging.yaml").exists()
    assert (out / "templates" / "extra.yaml").exists() and (out / "NOTES-mine.txt").exists()


def test_refuses_a_directory_it_did_not_write(tmp_path: Path) -> None:
    out = tmp_path / "chart"
    out.mkdir()
    (out / "Chart.yaml").write_text("name: theirs\n")
    with pytest.raises(InputError, match="not written by `stackctl render helm`"):
        write_chart(_result(), out, shown="chart")
    assert (out / "Chart.yaml").read_text() == "name: theirs\n"
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        write_chart(_result(), file, shown="file")


def test_marker_never_makes_it_delete_outside(tmp_path: Path) -> None:
    out = tmp_path / "chart"
    write_chart(_result(), out, shown="chart")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (out / ".stackctl-render").write_text(json.dumps({"files": ["../victim.txt", str(victim)]}))
    write_chart(_result(), out, shown="chart")
    assert victim.read_text() == "keep"


@pytest.mark.parametrize("image,parts", [
    ("nginx:1.27", {"repository": "nginx", "tag": "1.27"}),
    ("registry.example:5000/team/app:v2-rc.1", {"repository": "registry.example:5000/team/app", "tag": "v2-rc.1"}),
    ("registry.example:5000/team/app", {"repository": "registry.example:5000/team/app"}),
    ("app@sha256:" + "b" * 64, {"repository": "app", "digest": "sha256:" + "b" * 64}),
    ("app:1.0@sha256:" + "c" * 64, {"repository": "app:1.0", "digest": "sha256:" + "c" * 64}),
])
def test_images_split_and_join_back(tmp_path: Path, image: str, parts: dict[str, str]) -> None:
    from stackctl.kubernetes.render.helmchart import split_image

    assert split_image(image) == parts
    renders = [_profile("a", "ns-a", image=image), _profile("b", "ns-b", image="other/x:9")]
    chart = _chart(tmp_path, renders)
    got = helmsim.template(chart, "ns-a", [chart / "values-a.yaml"])
    web = next(o for o in got if o["kind"] == "Deployment")
    assert web["spec"]["template"]["spec"]["containers"][0]["image"] == image
