"""`stackctl render helm` through the CLI (Compose resolves the project): the chart's layout, which
profiles it renders, a re-run that writes nothing, stale files, no secret value, and the errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.docker

COMPOSE = """
name: demo
services:
  web:
    image: nginx:${WEB_TAG:-1.27}
    ports: ["8080:80"]
    environment:
      GREETING: ${GREETING:-hello}
      API_TOKEN: ${API_TOKEN:?set API_TOKEN}
"""
STAGING_EXTRA = """
services:
  mail:
    image: axllent/mailpit:v1.20
    expose: ["1025"]
"""
PRODUCTION = """
compose:
  files: [compose.yaml]
  env_files: [values.env]
env:
  values:
    WEB_TAG: "1.27.3"
    GREETING: "1e3"
services:
  web:
    replicas: 3
    resources:
      limits: {cpus: "1", memory: 256Mi}
      requests: {cpus: 100m, memory: 64Mi}
    ingress:
      hosts: [www.example.com]
kubernetes:
  namespace: demo-prod
"""
STAGING = """
compose:
  files: [compose.yaml, compose.staging.yaml]
  env_files: [values.env]
env:
  values:
    WEB_TAG: "1.28.0"
    GREETING: "grüße {{ .Values }}"
services:
  web:
    ingress:
      hosts: [staging.example.com]
kubernetes:
  namespace: demo-staging
"""
LOCAL = """
compose:
  files: [compose.yaml]
  env_files: [values.env]
"""
TOKEN = "tok-9f8e7d6c5b4a"


@pytest.fixture
def demo(project: Any) -> Any:
    project.write("compose.yaml", COMPOSE)
    project.write("compose.staging.yaml", STAGING_EXTRA)
    project.write("values.env", f"API_TOKEN={TOKEN}\n")
    project.write(".env.example", "# @secret\nAPI_TOKEN=\n")
    project.profile("production", PRODUCTION)
    project.profile("staging", STAGING)
    project.profile("local", LOCAL)
    return project


def test_default_layout_every_profile_but_local(demo: Any, cli: Callable[..., Any]) -> None:
    result = cli("render", "helm")
    assert result.exit_code == 0, result.stderr
    chart = demo.root / "deploy" / "helm" / "demo"
    files = sorted(str(p.relative_to(chart)) for p in chart.rglob("*") if p.is_file())
    assert files == [".helmignore", ".stackctl-render", "Chart.yaml", "templates/_helpers.tpl",
                     "templates/configMap-web-env.yaml", "templates/deployment-mail.yaml",
                     "templates/deployment-web.yaml", "templates/ingress-web.yaml", "templates/namespace.yaml",
                     "templates/service-mail.yaml", "templates/service-web.yaml",
                     "values-production.yaml", "values-staging.yaml", "values.yaml"]
    assert "chart deploy/helm/demo for profiles production, staging (defaults: production): 13 files written" \
        in result.stderr
    assert "references Secret demo-env by name" in result.stderr
    prod = yaml.safe_load((chart / "values-production.yaml").read_text())
    assert prod["deployment"]["web"]["replicas"] == 3
    assert prod["deployment"]["web"]["containers"]["web"]["image"] == {"repository": "nginx", "tag": "1.27.3"}
    assert prod["configMap"]["web-env"]["data"]["GREETING"] == "1e3"
    assert prod["deployment"]["mail"]["enabled"] is False
    staging = yaml.safe_load((chart / "values-staging.yaml").read_text())
    assert staging["deployment"]["mail"]["enabled"] is True
    assert staging["configMap"]["web-env"]["data"]["GREETING"] == "grüße {{ .Values }}"
    assert yaml.safe_load((chart / "Chart.yaml").read_text())["name"] == "demo"
    for path in chart.rglob("*"):
        if path.is_file():
            assert TOKEN not in path.read_text(), path


def test_rerun_writes_nothing_and_fewer_profiles_remove_theirs(demo: Any, cli: Callable[..., Any]) -> None:
    assert cli("render", "helm", "--out", "chart").exit_code == 0
    chart = demo.root / "chart"
    stamps = {p: p.stat().st_mtime_ns for p in chart.rglob("*") if p.is_file()}
    again = cli("render", "helm", "--out", "chart")
    assert again.exit_code == 0, again.stderr
    assert "0 files written, 13 unchanged" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in chart.rglob("*") if p.is_file()} == stamps
    fewer = cli("render", "helm", "-p", "production", "--out", "chart")
    assert fewer.exit_code == 0, fewer.stderr
    assert "removed" in fewer.stderr
    assert not (chart / "values-staging.yaml").exists() and not (chart / "templates/deployment-mail.yaml").exists()
    assert (chart / "values-production.yaml").exists()


def test_profiles_in_the_order_given_first_is_the_default(demo: Any, cli: Callable[..., Any]) -> None:
    result = cli("render", "helm", "-p", "staging", "-p", "local", "--out", "chart", "--version", "2.0.1",
                 "--app-version", "abc")
    assert result.exit_code == 0, result.stderr
    chart = demo.root / "chart"
    assert "values of profile staging" in (chart / "values.yaml").read_text()
    assert (chart / "values-local.yaml").exists() and not (chart / "values-production.yaml").exists()
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    assert (meta["version"], meta["appVersion"]) == ("2.0.1", "abc")


@pytest.mark.parametrize("args,message", [
    (("-p", "nope"), "nope"),
    (("--version", "1.0"), "--version: '1.0' is not a semantic version"),
    (("--out", "compose.yaml"), "--out compose.yaml: exists and is not a directory"),
    (("--out", "profiles"), "--out profiles: is not empty and was not written by `stackctl render helm`"),
])
def test_errors_name_the_field_and_write_nothing(demo: Any, cli: Callable[..., Any], args: tuple[str, ...],
                                                 message: str) -> None:
    result = cli("render", "helm", *args)
    assert result.exit_code != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (demo.root / "deploy").exists()


def test_only_local_is_an_error(project: Any, cli: Callable[..., Any]) -> None:
    project.write("compose.yaml", COMPOSE)
    project.profile("local", LOCAL)
    result = cli("render", "helm")
    assert result.exit_code == 2
    assert "--profile: no profile to render: the project has only the local profile" in result.stderr
