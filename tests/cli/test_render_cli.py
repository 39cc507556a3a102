"""`stackctl render kubernetes` end to end through the CLI (Compose resolves the project)."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.docker

COMPOSE = """
name: demo
services:
  web:
    image: nginx:1.27
    ports: ["8080:80"]
    environment:
      GREETING: hello
      API_TOKEN: ${API_TOKEN:?set API_TOKEN}
    depends_on:
      db: {condition: service_healthy}
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
PROFILE = """
compose:
  files: [compose.yaml]
  env_files: [values.env]
kubernetes:
  namespace: demo-prod
"""


@pytest.fixture
def demo(project: Any) -> Any:
    project.write("compose.yaml", COMPOSE)
    project.write("values.env", "API_TOKEN=tok-123456\nDB_PASSWORD=pw-abcdef\n")
    project.write(".env.example", "# @secret\nAPI_TOKEN=\n# @secret password\nDB_PASSWORD=\n")
    project.profile("production", PROFILE)
    return project


def test_stream_on_stdout_is_valid_yaml_without_secret_values(demo: Any, cli: Callable[..., Any]) -> None:
    """Issue 13 item 2: a Secret without its values is valid YAML that `kubectl apply` accepts, and
    applying it blanks the cluster's secrets. What render prints leaves such Secrets out and says so."""
    result = cli("render", "kubernetes", "-p", "production", "--validate")
    assert result.exit_code == 0, result.stderr
    docs = list(yaml.safe_load_all(result.stdout))
    assert [d["kind"] for d in docs] == ["Namespace", "ConfigMap", "Service", "Service", "Service",
                                         "StatefulSet", "Deployment"]
    assert "tok-123456" not in result.stdout and "pw-abcdef" not in result.stdout
    assert "note: left out Secret demo-env (its values live in the encrypted store; applied without them it " \
           "would blank the cluster's): add --include-secrets for the real values, or let `stackctl promote " \
           "production` apply them" in result.stderr
    assert "rendered 7 objects for namespace demo-prod (profile production, Kubernetes 1.35, validated, " \
           "1 Secret left out)" in result.stderr
    # the workloads still reference it: applied, they wait for the Secret that promote writes
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert "demo-env" in yaml.safe_dump(deployment)


def test_json_stream_is_one_list(demo: Any, cli: Callable[..., Any]) -> None:
    """Issue 13 item 14: `-o json` used to write a directory named `json`; -o is the format now."""
    result = cli("render", "kubernetes", "-p", "production", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert not (demo.root / "json").exists()
    data = json.loads(result.stdout)
    assert data["apiVersion"] == "v1" and data["kind"] == "List"
    assert [d["kind"] for d in data["items"]] == [d["kind"] for d in yaml.safe_load_all(
        cli("render", "kubernetes", "-p", "production", "-o", "yaml").stdout)]
    assert "Secret" not in [d["kind"] for d in data["items"]]


@pytest.mark.parametrize(("value", "message"), [
    ("deploy/", "Error: --output: 'deploy/' is not a format (expected yaml or json); to write one file per object "
                "into a directory use --out-dir deploy/"),
    ("text", "Error: --output: 'text' is not a format (expected yaml or json)\n"),
])
def test_output_is_a_format_and_a_path_there_is_explained(demo: Any, cli: Callable[..., Any], value: str,
                                                          message: str) -> None:
    result = cli("render", "kubernetes", "-p", "production", "-o", value)
    assert result.exit_code == 2 and result.stdout == ""
    assert message in result.stderr
    assert not (demo.root / "deploy").exists()
    mixed = cli("render", "kubernetes", "-p", "production", "-o", "json", "--out-dir", "deploy")
    assert mixed.exit_code == 2
    assert "--output: --out-dir writes YAML files (one per object); -o json is for the stream" in mixed.stderr


def test_directory_with_secret_files_0600_and_stale_files_removed(demo: Any, cli: Callable[..., Any]) -> None:
    out = demo.root / "deploy"
    assert cli("render", "kubernetes", "-p", "production", "--out-dir", str(out)).exit_code == 0
    files = sorted(p.name for p in out.iterdir())
    assert files[0] == ".stackctl-render"
    assert not [f for f in files if f.endswith((".json", ".yml"))]  # `kubectl apply -f DIR` would read them
    assert "000-namespace-demo-prod.yaml" in files
    assert not [f for f in files if "-secret-" in f]  # `kubectl apply -f deploy/` must not blank the Secret
    for path in out.glob("*.yaml"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o600 if "-secret-" in path.name else 0o644), path.name
    # a service removed from Compose: its files go on the next render
    demo.write("compose.yaml", COMPOSE.replace("    depends_on:\n      db: {condition: service_healthy}\n", ""))
    assert cli("render", "kubernetes", "-p", "production", "-d", str(out), "--format", "kustomize").exit_code == 0
    kustomization = yaml.safe_load((out / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in out.glob("0*.yaml"))


def test_kustomize_needs_a_directory(demo: Any, cli: Callable[..., Any]) -> None:
    result = cli("render", "kubernetes", "-p", "production", "--format", "kustomize")
    assert result.exit_code == 2 and "--format: kustomize needs --out-dir DIR" in result.stderr


def test_refuses_a_directory_it_did_not_write(demo: Any, cli: Callable[..., Any]) -> None:
    (demo.root / "mine").mkdir()
    (demo.root / "mine" / "notes.txt").write_text("keep me")
    result = cli("render", "kubernetes", "-p", "production", "--out-dir", "mine")
    assert result.exit_code == 2
    assert "--out-dir mine: is not empty and was not written by `stackctl render`" in result.stderr
    assert (demo.root / "mine" / "notes.txt").read_text() == "keep me"


def test_strict_turns_warnings_into_errors(demo: Any, cli: Callable[..., Any]) -> None:
    """Issue 12: --strict is the CI check: exit 1, every warning listed as an error (not only the first)."""
    demo.write("compose.yaml", COMPOSE.replace("    image: nginx:1.27\n",
                                               "    image: nginx:1.27\n    privileged: true\n    tty: true\n"
                                               "    gpus: all\n"))
    relaxed = cli("render", "kubernetes", "-p", "production")
    assert relaxed.exit_code == 0
    assert "Warning: services.web.privileged: the container runs privileged; namespaces that enforce" in relaxed.stderr
    strict = cli("render", "kubernetes", "-p", "production", "--strict")
    assert strict.exit_code == 1
    errors = [line for line in strict.stderr.splitlines() if line.startswith("error: ")]
    assert [e.split(":")[1].strip() for e in errors] == ["services.web.tty", "services.web.gpus",
                                                         "services.web.privileged"]
    assert "Warning:" not in strict.stderr
    assert strict.stderr.rstrip().endswith("Error: 3 warnings with --strict (above); nothing printed or written")
    assert strict.stdout == ""
    assert cli("render", "kubernetes", "-p", "production", "--strict", "--out-dir", "out").exit_code == 1
    assert not (demo.root / "out").exists()


def test_strict_passes_a_render_that_loses_nothing(demo: Any, cli: Callable[..., Any]) -> None:
    result = cli("render", "kubernetes", "-p", "production", "--strict")
    assert result.exit_code == 0, result.stderr
    assert "kind: Deployment" in result.stdout


REPORTED = COMPOSE.replace("    image: nginx:1.27\n", "    image: nginx:1.27\n    tty: true\n"
                                                       "    post_start: [{command: [nginx, -t]}]\n")


def test_report_says_what_each_field_became(demo: Any, cli: Callable[..., Any]) -> None:
    """Issue 12: --report prints, instead of the manifests, every Compose field of every service and what it
    became (object and field path), or why it was dropped or ignored."""
    demo.write("compose.yaml", REPORTED)
    result = cli("render", "kubernetes", "-p", "production", "--report")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "kind:" not in result.stdout  # the report replaces the manifests
    start = lines.index("web: Deployment/web, Service/web")
    web = lines[start:start + 10]
    assert web == [
        "web: Deployment/web, Service/web",
        "  depends_on   -> Deployment/web spec.template.spec.initContainers[name=wait-for-db]",
        "  environment  -> Deployment/web spec.template.spec.containers[web].envFrom",
        "               -> Deployment/web spec.template.spec.containers[web].env",
        "  image        -> Deployment/web spec.template.spec.containers[web].image",
        "  networks     ignored: Compose networks are flat in Kubernetes: every pod reaches every Service (an alias "
        "is one more Service; an `internal: true` network a NetworkPolicy)",
        "  ports        -> Deployment/web spec.template.spec.containers[web].ports[containerPort=80]",
        "               -> Service/web spec.ports[port=80]",
        "  post_start   -> Deployment/web spec.template.spec.containers[web].lifecycle.postStart.exec",
        "  tty          dropped: services.web.tty: not modeled by stackctl; Compose applies it locally, the "
        "Kubernetes backend ignores it"]
    assert lines[start + 10].startswith("note: services: db, web: no resources")
    assert lines[:2] == ["db: StatefulSet/db, Service/db, Service/db-headless",
                         "  note: services.db: has no ports or expose; its Service listens on 5432 (the default of "
                         "the postgres image). Add `expose: [\"5432\"]` to say so"]
    assert lines[-1].endswith("ignored (nothing lost), 1 dropped")
    assert "Warning:" not in result.stderr  # in the report, not repeated


def test_report_as_json(demo: Any, cli: Callable[..., Any]) -> None:
    demo.write("compose.yaml", REPORTED)
    result = cli("render", "kubernetes", "-p", "production", "--report", "-o", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    web = data["services"]["web"]
    assert web["objects"] == ["Deployment/web", "Service/web"]
    assert web["fields"]["image"] == {"became": ["Deployment/web spec.template.spec.containers[web].image"]}
    assert web["fields"]["tty"]["became"] == []
    assert web["fields"]["tty"]["dropped"].startswith("services.web.tty: not modeled by stackctl")
    assert set(data["services"]) == {"db", "web"}


def test_report_with_strict_prints_then_fails(demo: Any, cli: Callable[..., Any]) -> None:
    demo.write("compose.yaml", REPORTED)
    result = cli("render", "kubernetes", "-p", "production", "--report", "--strict")
    assert result.exit_code == 1
    assert "  tty          dropped: services.web.tty" in result.stdout
    assert "error: services.web.tty: not modeled by stackctl" in result.stderr
    assert "the report is all that was printed" in result.stderr


def test_report_goes_to_stdout_not_a_directory(demo: Any, cli: Callable[..., Any]) -> None:
    result = cli("render", "kubernetes", "-p", "production", "--report", "--out-dir", "out")
    assert result.exit_code == 2
    assert "--report: the report goes to stdout; --out-dir writes manifests" in result.stderr


def test_profile_errors_are_located(demo: Any, cli: Callable[..., Any]) -> None:
    demo.profile("production", PROFILE + "services:\n  web:\n    autoscaling: {max: 4}\n")
    result = cli("render", "kubernetes", "-p", "production")
    assert result.exit_code == 2
    assert ("Error: profiles/production.yaml: services.web.autoscaling: utilization is measured against the cpu "
            "request, and the service has none") in result.stderr


def test_unknown_kubernetes_version(demo: Any, cli: Callable[..., Any]) -> None:
    result = cli("render", "kubernetes", "-p", "production", "--validate", "--kube-version", "1.99")
    assert result.exit_code == 2
    assert "kubernetes.version: no schema for Kubernetes 1.99" in result.stderr


def test_secret_values_from_the_store(demo: Any, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
                                      tmp_path: Path) -> None:
    """--include-secrets fills values from the store, in a directory (0600 files) and on stdout alike;
    the checksum is the same as without values."""
    from stackctl.kubernetes import gather
    from stackctl.kubernetes.inputs import SecretInputs

    real = gather.secret_inputs

    def fake(profile: Any, stack: Any, *, with_values: bool = False) -> SecretInputs:
        base = real(profile, stack, with_values=False)
        return SecretInputs(keys=base.keys, digests={"DB_PASSWORD": "digest-1"},
                            values={"DB_PASSWORD": "from-the-store"} if with_values else None,
                            templates=base.templates)

    monkeypatch.setattr(gather, "secret_inputs", fake)
    out = tmp_path / "out"
    assert cli("render", "kubernetes", "-p", "production", "--out-dir", str(out), "--include-secrets").exit_code == 0
    secret_file = next(out.glob("*-secret-*.yaml"))
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = yaml.safe_load(secret_file.read_text())
    import base64

    assert base64.b64decode(secret["data"]["DB_PASSWORD"]) == b"from-the-store"
    assert base64.b64decode(secret["data"]["API_TOKEN"]) == b"tok-123456"
    piped = cli("render", "kubernetes", "-p", "production", "--include-secrets")
    assert piped.exit_code == 0, piped.stderr
    assert next(d for d in yaml.safe_load_all(piped.stdout) if d["kind"] == "Secret") == secret
    assert "left out" not in piped.stderr
    printed = cli("render", "kubernetes", "-p", "production")
    with_values = yaml.safe_load(next(out.glob("*-statefulset-db.yaml")).read_text())
    without = next(d for d in yaml.safe_load_all(printed.stdout) if d["kind"] == "StatefulSet")
    assert with_values["spec"]["template"] == without["spec"]["template"]
    # a render without values removes the Secret file of the previous one: nothing value-less stays behind
    assert cli("render", "kubernetes", "-p", "production", "--out-dir", str(out)).exit_code == 0
    assert not list(out.glob("*-secret-*.yaml"))
