"""`stackctl render kubernetes` end to end through the CLI (Compose resolves the project)."""

from __future__ import annotations

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
    result = cli("render", "kubernetes", "-p", "production", "--validate")
    assert result.exit_code == 0, result.stderr
    docs = list(yaml.safe_load_all(result.stdout))
    assert [d["kind"] for d in docs] == ["Namespace", "ConfigMap", "Secret", "Service", "Service", "Service",
                                         "StatefulSet", "Deployment"]
    assert "tok-123456" not in result.stdout and "pw-abcdef" not in result.stdout
    secret = next(d for d in docs if d["kind"] == "Secret")
    assert secret["data"] == {"API_TOKEN": "", "DB_PASSWORD": ""}
    assert "rendered 8 objects for namespace demo-prod (profile production, Kubernetes 1.35, validated, " \
           "Secret values omitted)" in result.stderr


def test_directory_with_secret_files_0600_and_stale_files_removed(demo: Any, cli: Callable[..., Any]) -> None:
    out = demo.root / "deploy"
    assert cli("render", "kubernetes", "-p", "production", "-o", str(out)).exit_code == 0
    files = sorted(p.name for p in out.iterdir())
    assert files[0] == ".stackctl-render"
    assert not [f for f in files if f.endswith((".json", ".yml"))]  # `kubectl apply -f DIR` would read them
    assert "000-namespace-demo-prod.yaml" in files and "002-secret-demo-env.yaml" in files
    for path in out.glob("*.yaml"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o600 if "-secret-" in path.name else 0o644), path.name
    # a service removed from Compose: its files go on the next render
    demo.write("compose.yaml", COMPOSE.replace("    depends_on:\n      db: {condition: service_healthy}\n", ""))
    assert cli("render", "kubernetes", "-p", "production", "-o", str(out), "--format", "kustomize").exit_code == 0
    kustomization = yaml.safe_load((out / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in out.glob("0*.yaml"))


def test_with_secrets_needs_a_directory(demo: Any, cli: Callable[..., Any]) -> None:
    result = cli("render", "kubernetes", "-p", "production", "--with-secrets")
    assert result.exit_code == 2
    assert "--with-secrets: writes Secret values, so it needs -o DIR" in result.stderr
    result = cli("render", "kubernetes", "-p", "production", "--format", "kustomize")
    assert result.exit_code == 2 and "--format: kustomize needs -o DIR" in result.stderr


def test_refuses_a_directory_it_did_not_write(demo: Any, cli: Callable[..., Any]) -> None:
    (demo.root / "mine").mkdir()
    (demo.root / "mine" / "notes.txt").write_text("keep me")
    result = cli("render", "kubernetes", "-p", "production", "-o", "mine")
    assert result.exit_code == 2
    assert "--output mine: is not empty and was not written by `stackctl render`" in result.stderr
    assert (demo.root / "mine" / "notes.txt").read_text() == "keep me"


def test_strict_turns_warnings_into_errors(demo: Any, cli: Callable[..., Any]) -> None:
    demo.write("compose.yaml",
               COMPOSE.replace("    image: nginx:1.27\n", "    image: nginx:1.27\n    privileged: true\n"))
    relaxed = cli("render", "kubernetes", "-p", "production")
    assert relaxed.exit_code == 0
    assert "Warning: services.web.privileged: the container runs privileged; namespaces that enforce" in relaxed.stderr
    strict = cli("render", "kubernetes", "-p", "production", "--strict")
    assert strict.exit_code == 2
    assert "Error: 1 warning with --strict (first: services.web.privileged: the container runs privileged" \
        in strict.stderr
    assert strict.stdout == ""


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
    """--with-secrets fills values from the store; the checksum is the same as without values."""
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
    assert cli("render", "kubernetes", "-p", "production", "-o", str(out), "--with-secrets").exit_code == 0
    secret = yaml.safe_load(next(out.glob("*-secret-*.yaml")).read_text())
    import base64

    assert base64.b64decode(secret["data"]["DB_PASSWORD"]) == b"from-the-store"
    assert base64.b64decode(secret["data"]["API_TOKEN"]) == b"tok-123456"
    printed = cli("render", "kubernetes", "-p", "production")
    with_values = yaml.safe_load(next(out.glob("*-statefulset-db.yaml")).read_text())
    without = next(d for d in yaml.safe_load_all(printed.stdout) if d["kind"] == "StatefulSet")
    assert with_values["spec"]["template"] == without["spec"]["template"]
