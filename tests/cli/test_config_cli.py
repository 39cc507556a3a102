"""`stackctl config`: the resolved stack, and located one-line errors for bad Compose input."""

from __future__ import annotations

import json

import pytest
import yaml

pytestmark = pytest.mark.docker


def _setup(project, compose: str, env: str = "") -> None:
    project.write("compose.yaml", compose)
    project.write(".env", env)
    project.profile("local", "compose: {files: [compose.yaml]}\nservices: {web: {replicas: 2}}\n")


def test_config_json_is_the_resolved_model(project, cli) -> None:
    _setup(project, """
        services:
          web:
            image: "example/web:${TAG:-1}"
            environment: {PASSWORD: "${PASSWORD}", LITERAL: "a$$b"}
            ulimits: {nofile: 1024}
    """, "PASSWORD='p#ss w$rd'\n")
    res = cli("config", "-o", "json")
    assert res.exit_code == 0, res
    data = json.loads(res.stdout)
    web = data["services"][0]
    assert data["profile"] == "local" and web["image"] == "example/web:1"
    assert web["environment"] == {"LITERAL": "a$b", "PASSWORD": "p#ss w$rd"}
    assert web["deploy"]["replicas"] == 2
    assert "Warning: services.web.ulimits: not modeled by stackctl" in res.stderr
    yaml_res = cli("config", "-o", "yaml")
    assert yaml.safe_load(yaml_res.stdout) == data


def test_text_output_summarises(project, cli) -> None:
    _setup(project, "services:\n  web:\n    image: example/web:1\n    ports: ['8080:80']\n")
    res = cli("config")
    assert res.exit_code == 0
    assert res.stdout == ("stack proj (profile local, 1 services)\n"
                          "  web  example/web:1\n"
                          "       replicas 2\n"
                          "       ports 8080:80\n"
                          "\n")


def test_missing_required_variable_names_file_and_field(project, cli) -> None:
    _setup(project,
           "services:\n  web:\n    image: x\n    environment:\n      DB_PASSWORD: ${DB_PASSWORD:?is not set}\n")
    res = cli("config")
    assert res.exit_code == 2
    assert res.stderr.startswith(
        "Error: compose.yaml: services.web.environment.DB_PASSWORD: required variable DB_PASSWORD is missing a "
        "value: is not set")
    assert "Traceback" not in res.stderr


def test_invalid_compose_field_exit_2(project, cli) -> None:
    _setup(project, "services:\n  web:\n    image: x\n    ports: 'not-a-list'\n")
    res = cli("config")
    assert res.exit_code == 2
    assert "compose.yaml" in res.stderr and "ports" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_broken_yaml_exit_2(project, cli) -> None:
    _setup(project, "services:\n  web:\n   image: x\n  bad indent\n")
    res = cli("config")
    assert res.exit_code == 2 and res.stderr.startswith("Error: ")


def test_override_for_unknown_service(project, cli) -> None:
    project.write("compose.yaml", "services:\n  api:\n    image: x\n")
    project.profile("local", "compose: {files: [compose.yaml]}\nservices: {web: {replicas: 2}}\n")
    res = cli("config")
    assert res.exit_code == 2
    assert "profiles/local.yaml: services.web: no such service in the Compose project (services: api)" in res.stderr


def test_missing_env_file_is_a_warning_not_an_error(project, cli) -> None:
    project.write("compose.yaml", "services:\n  api:\n    image: x\n")
    project.profile("staging", "compose: {files: [compose.yaml]}\n")
    res = cli("config", "-p", "staging", "-o", "json")
    assert res.exit_code == 0
    assert ".env.staging does not exist yet" in res.stderr


def test_doctor_reports_each_check(project, cli) -> None:
    project.write("compose.yaml", "services:\n  api:\n    image: x\n")
    project.write(".env", "")
    project.profile("local", "compose: {files: [compose.yaml]}\nkubernetes: {namespace: demo, context: nowhere}\n")
    res = cli("doctor", "-o", "json", "--offline")
    checks = {c["name"]: c for c in json.loads(res.stdout)}
    assert checks["compose v2"]["status"] == "ok"
    assert checks["profile"]["status"] == "ok"
    assert checks["kubeconfig"]["status"] == "fail" and checks["kubeconfig"]["fix"]
    assert res.exit_code == 1
