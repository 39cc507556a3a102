"""`stackctl render helm` checked by the real helm (issue 17): for every profile of the chart,
`helm template R CHART -f CHART/values-P.yaml --namespace NS` equals `stackctl render kubernetes -p P`
object for object (keyed by apiVersion, kind, namespace and name; whole objects compared, the secret
checksum annotation included). Secrets explicitly: the render leaves the valueless ones out and names
them, the chart renders no Secret at all and references each by `secrets.<name>.existingSecret`.
`helm lint` passes, and `helm template` without `-f` renders the defaults profile.

Shapes: the bundled example (examples/shop), a project whose profiles differ in replicas, resources,
ingress host, image tag and env values with a profile-only service, and one of awkward strings.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.docker  # Compose resolves the project (its CLI only, no engine)

REPO = Path(__file__).resolve().parents[2]
Key = tuple[str, str, str, str]


def _key(obj: dict[str, Any]) -> Key:
    meta = obj["metadata"]
    return obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"]


def _as_set(objects: list[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    out = {_key(o): o for o in objects}
    assert len(out) == len(objects), "two objects with one key"
    return out


def _helm(helm: Path, *args: str | Path) -> str:
    proc = subprocess.run([str(helm), *map(str, args)], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"helm {' '.join(map(str, args))}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _template(helm: Path, chart: Path, namespace: str, *extra: str | Path) -> list[dict[str, Any]]:
    text = _helm(helm, "template", "rel", chart, "--namespace", namespace, *extra)
    return [d for d in yaml.safe_load_all(text) if d is not None]


def _stackctl(cli: Callable[..., Any], profile: str) -> tuple[list[dict[str, Any]], list[str]]:
    """`stackctl render kubernetes -p P`: the objects, and the Secrets it left out (valueless)."""
    result = cli("render", "kubernetes", "-p", profile)
    assert result.exit_code == 0, result.stderr
    left_out = re.search(r"note: left out Secret (.+?) \(its values", result.stderr.replace("\n", " "))
    return list(yaml.safe_load_all(result.stdout)), left_out.group(1).split(", ") if left_out else []


def _check_chart(helm: Path, cli: Callable[..., Any], chart: Path, namespaces: dict[str, str]) -> None:
    _helm(helm, "lint", "--strict", chart)
    defaults = next(iter(namespaces))
    for profile, namespace in namespaces.items():
        values = chart / f"values-{profile}.yaml"
        _helm(helm, "lint", "--strict", chart, "-f", values, "--namespace", namespace)
        want, secrets = _stackctl(cli, profile)
        got = _template(helm, chart, namespace, "-f", values)
        # Secrets: the chart renders none and references each left-out one by its existingSecret value
        assert [o for o in got if o["kind"] == "Secret"] == []
        assert [o for o in want if o["kind"] == "Secret"] == []
        chart_values = yaml.safe_load(values.read_text())
        for name in secrets:
            assert chart_values["secrets"][name]["existingSecret"] == name
            assert f'"name": "{name}"' in json.dumps(got) or f'"secretName": "{name}"' in json.dumps(got)
        got_set, want_set = _as_set(got), _as_set(want)
        assert sorted(got_set) == sorted(want_set), profile
        for key, obj in want_set.items():
            assert got_set[key] == obj, f"{profile}: {key}"
        if profile == defaults:  # values.yaml holds the defaults profile: no -f renders it
            assert _as_set(_template(helm, chart, namespace)) == want_set


def _render_chart(cli: Callable[..., Any], *profiles: str) -> Path:
    args = [a for p in profiles for a in ("-p", p)]
    result = cli("render", "helm", *args, "--out", "chart")
    assert result.exit_code == 0, result.stderr
    return Path("chart").resolve()


# ---------------------------------------------------------------------------------------------
# The bundled example
# ---------------------------------------------------------------------------------------------
def test_shop_example(helm: Path, project: Any, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    for rel in ("profiles", "examples"):
        shutil.rmtree(project.root / rel, ignore_errors=True)
        shutil.copytree(REPO / rel, project.root / rel)
    shutil.copy(REPO / ".env.example", project.root / ".env.example")
    monkeypatch.setenv("DB_PASSWORD", "delivery-db-password")
    monkeypatch.setenv("JWT_SECRET", "delivery-jwt-secret")
    chart = _render_chart(cli, "production", "local")
    _check_chart(helm, cli, chart, {"production": "shop-prod", "local": "shop"})
    for path in chart.rglob("*"):
        assert "delivery-db-password" not in path.read_text() if path.is_file() else True


# ---------------------------------------------------------------------------------------------
# Profiles that differ in replicas, resources, ingress, image tag, env; a profile-only service
# ---------------------------------------------------------------------------------------------
TIERS = """
name: tiers
services:
  web:
    image: nginx:${WEB_TAG:-1.27}
    ports: ["8080:80"]
    environment:
      MODE: ${MODE:-dev}
      WORKERS: ${WORKERS:-2}
      API_TOKEN: ${API_TOKEN:?set API_TOKEN}
    depends_on:
      db: {condition: service_healthy}
  worker:
    image: busybox:${WORKER_TAG:-1.36}
    command: ["sh", "-c", "while true; do sleep 30; done"]
    environment:
      MODE: ${MODE:-dev}
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: ${DB_PASSWORD:?set DB_PASSWORD}
    volumes: [pg:/var/lib/postgresql/data]
    healthcheck:
      test: ["CMD-SHELL", "pg_isready"]
volumes:
  pg: {}
"""
TIERS_STAGING_EXTRA = """
services:
  mail:
    image: axllent/mailpit:v1.20
    expose: ["1025", "8025"]
"""
TIERS_PRODUCTION = """
compose:
  files: [compose.yaml]
  env_files: [values.env]
env:
  values: {WEB_TAG: "1.27.3", WORKER_TAG: "1.37", MODE: production, WORKERS: "8"}
services:
  web:
    replicas: 4
    resources:
      limits: {cpus: "2", memory: 1Gi}
      requests: {cpus: 500m, memory: 256Mi}
    ingress:
      hosts: [www.example.com, example.com]
      tls_secret: web-tls
    pdb: {max_unavailable: 1}
  worker:
    replicas: 2
defaults:
  resources:
    limits: {cpus: 500m, memory: 256Mi}
    requests: {cpus: 100m, memory: 64Mi}
kubernetes:
  namespace: tiers-prod
  ingress_class: nginx
"""
TIERS_STAGING = """
compose:
  files: [compose.yaml, compose.staging.yaml]
  env_files: [values.env]
env:
  values: {WEB_TAG: "1.28.0", MODE: staging, WORKERS: "0"}
services:
  web:
    ingress:
      hosts: [staging.example.com]
kubernetes:
  namespace: tiers-staging
"""


def test_profiles_that_differ(helm: Path, project: Any, cli: Callable[..., Any]) -> None:
    project.write("compose.yaml", TIERS)
    project.write("compose.staging.yaml", TIERS_STAGING_EXTRA)
    project.write("values.env", "API_TOKEN=tok-abcdef123456\nDB_PASSWORD=pw-123456abcdef\n")
    project.write(".env.example", "# @secret\nAPI_TOKEN=\n# @secret password\nDB_PASSWORD=\n")
    project.profile("production", TIERS_PRODUCTION)
    project.profile("staging", TIERS_STAGING)
    chart = _render_chart(cli)  # the default: every profile but local
    _check_chart(helm, cli, chart, {"production": "tiers-prod", "staging": "tiers-staging"})
    staging = yaml.safe_load((chart / "values-staging.yaml").read_text())
    assert staging["deployment"]["mail"]["enabled"] is True
    assert staging["deployment"]["web"]["containers"]["web"]["image"] == {"repository": "nginx", "tag": "1.28.0"}
    # the knobs, through helm's own --set: replicas, the Secret's name, the checksum CI sets
    got = _template(helm, chart, "tiers-prod", "-f", chart / "values-production.yaml",
                    "--set", "deployment.web.replicas=9", "--set", "secrets.tiers-env.existingSecret=from-vault",
                    "--set", "secretsChecksum=ci-123", "--set", "deployment.web.containers.web.image.tag=1.29")
    web = next(o for o in got if o["kind"] == "Deployment" and o["metadata"]["name"] == "web")
    assert web["spec"]["replicas"] == 9
    pod = web["spec"]["template"]
    assert pod["metadata"]["annotations"]["stackctl.io/secret-hash"] == "ci-123"
    assert pod["spec"]["containers"][0]["image"] == "nginx:1.29"
    assert "from-vault" in json.dumps(pod["spec"]) and "tiers-env" not in json.dumps(pod["spec"])
    for path in chart.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "tok-abcdef123456" not in text and "pw-123456abcdef" not in text


# ---------------------------------------------------------------------------------------------
# Awkward strings, in what the profiles share (literal) and in what differs (values)
# ---------------------------------------------------------------------------------------------
TRICKY = """
name: tricky
services:
  app:
    image: example/app:${TAG:-1}
    command: ["sh", "-c", "echo '{{ not a template }}' && echo \\"$${HOME}\\" # }}"]
    environment:
      SAME_BRACES: "{{ .Values.secrets }} {{- end }}"
      SAME_NUMBER: "1e3"
      SAME_BOOL: "yes"
      SAME_UNICODE: "grüße ✓ 🚀 日本"
      SAME_MULTI: |
        first line
          indented: {{ x }}
        ---
        last
      DIFF: ${DIFF}
      DIFF_NUMBER: ${DIFF_NUMBER}
      DIFF_EMPTY: ${DIFF_EMPTY:-}
    volumes:
      - ./conf/app.tpl:/etc/app/app.tpl:ro
"""
TRICKY_A = """
compose:
  files: [compose.yaml]
env:
  values:
    TAG: "2.0"
    DIFF: "it's \\"quoted\\": {{ .Release.Name }} # not a comment"
    DIFF_NUMBER: "0x1F"
    DIFF_EMPTY: ""
kubernetes:
  namespace: tricky-a
"""
TRICKY_B = """
compose:
  files: [compose.yaml]
env:
  values:
    TAG: "010"
    DIFF: "- ünïcödé\\ttab"
    DIFF_NUMBER: "true"
    DIFF_EMPTY: "null"
kubernetes:
  namespace: tricky-b
"""


def test_awkward_strings_round_trip(helm: Path, project: Any, cli: Callable[..., Any]) -> None:
    project.write("compose.yaml", TRICKY)
    project.write("conf/app.tpl", "{{ define \"x\" }}\n---\n{{- .Values }}\nkey: value # }}\n")
    project.profile("a", TRICKY_A)
    project.profile("b", TRICKY_B)
    chart = _render_chart(cli, "a", "b")
    _check_chart(helm, cli, chart, {"a": "tricky-a", "b": "tricky-b"})


# ---------------------------------------------------------------------------------------------
# Every project of the golden corpus (CronJobs, autoscalers, Compose secrets as volumes, blue-green,
# bind-mounted configs, ...), with a second profile that moves it to another namespace
# ---------------------------------------------------------------------------------------------
GOLDEN = REPO / "tests" / "golden"
GOLDEN_CASES = sorted(p.name for p in GOLDEN.iterdir()
                      if p.is_dir() and (p / "profiles" / "production.yaml").is_file())


@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_golden_corpus(helm: Path, project: Any, cli: Callable[..., Any], case: str) -> None:
    shutil.copytree(GOLDEN / case, project.root, ignore=shutil.ignore_patterns("expected"), dirs_exist_ok=True)
    production = yaml.safe_load((project.root / "profiles" / "production.yaml").read_text()) or {}
    kube = production.setdefault("kubernetes", {})
    kube["namespace"] = "helm-other"
    kube.pop("context", None)
    (project.root / "profiles" / "other.yaml").write_text(yaml.safe_dump(production))
    namespace = _stackctl_namespace(cli)
    chart = _render_chart(cli, "production", "other")
    _check_chart(helm, cli, chart, {"production": namespace, "other": "helm-other"})


def _stackctl_namespace(cli: Callable[..., Any]) -> str:
    result = cli("render", "kubernetes", "-p", "production", "-o", "json")
    assert result.exit_code == 0, result.stderr
    found = {o["metadata"].get("namespace") for o in json.loads(result.stdout)["items"]} - {None}
    return found.pop() if found else "default"


# ---------------------------------------------------------------------------------------------
# Strings Compose would not let through, straight into the chart builder: every one in a literal
# field (all profiles agree) and in a value (they differ), keys included
# ---------------------------------------------------------------------------------------------
WILD = ["1e3", "0x1F", "010", "yes", "No", "null", "~", "", " ", "multi\nline\n", "no newline\nat end",
        "trailing\n\n\n", "\tTAB", "lead ", "{{ .Values }}", "{{- end }}", "}}{{", '{{ "{{" }}', "grüße ✓ 🚀 日本",
        "it's \"q\"", "a: b # c", "- x", "? k", "& anchor", "* alias", "!tag", "%dir", "@at", "`tick`", "|", ">",
        "C:\\path\\n", "line\u2028sep\u2029", "a\r\nb", "\x07bell", "<html>&amp;", "---", "...", "=", "<<"]


def test_wild_strings_through_the_real_helm(helm: Path, tmp_path: Path) -> None:
    from stackctl.kubernetes.render.helmchart import ProfileObjects, build_chart

    def config_map(profile: str, ns: str, suffix: str) -> dict[str, Any]:
        data = {f"same-{i}": s for i, s in enumerate(WILD)}
        data.update({f"diff-{i}": s + suffix for i, s in enumerate(WILD)})
        data.update({"key.with.dots": suffix, "key_{{x}}": suffix or "-"})
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "wild", "namespace": ns, "labels": {"stackctl.io/profile": profile}},
                "data": data}

    renders = [ProfileObjects("a", "ns-a", [config_map("a", "ns-a", "")]),
               ProfileObjects("b", "ns-b", [config_map("b", "ns-b", "\n{{b}}")])]
    chart = tmp_path / "wild"
    for rel, text in build_chart(renders, stack="wild").files.items():
        (chart / rel).parent.mkdir(parents=True, exist_ok=True)
        (chart / rel).write_text(text, encoding="utf-8")
    _helm(helm, "lint", "--strict", chart)
    for r in renders:
        got = _template(helm, chart, r.namespace, "-f", chart / f"values-{r.name}.yaml")
        assert got == list(r.objects)
