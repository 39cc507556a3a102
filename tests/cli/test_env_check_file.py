"""`stackctl env check` when the env file Compose reads for the profile does not exist (issue 13, item 11):
an error naming the profile and the command that creates it, never "ok"."""

from __future__ import annotations

import json
from typing import Any


def _project(project: Any, *, template: bool = True) -> Any:
    project.write("compose.yaml", """
        services:
          api:
            image: busybox
            environment:
              LOG_LEVEL: ${LOG_LEVEL}
    """)
    if template:
        project.write(".env.example", "LOG_LEVEL=info\n")
    project.profile("local", "compose:\n  files: [compose.yaml]\n")
    project.profile("staging", "compose:\n  files: [compose.yaml]\nenv:\n  file: .env.staging\n")
    return project


def test_check_without_the_env_file_is_an_error_naming_the_profile(project: Any, cli: Any) -> None:
    _project(project)
    res = cli("env", "check", "-p", "staging")
    assert res.exit_code == 1, res
    assert "ok" not in res.stdout
    assert res.stderr.strip().splitlines()[-1] == (
        "Error: .env.staging does not exist, and profile 'staging' reads it "
        "(create it with `stackctl env render -p staging`)")
    data = json.loads(cli("env", "check", "-p", "staging", "-o", "json").stdout)
    assert data["ok"] is False and data["env_file_exists"] is False

    assert cli("env", "render", "-p", "staging").exit_code == 0
    res = cli("env", "check", "-p", "staging")
    assert res.exit_code == 0, res
    assert res.stdout == ".env.staging: ok (profile staging)\n"


def test_check_without_a_template_says_how_to_create_the_file(project: Any, cli: Any) -> None:
    _project(project, template=False)
    res = cli("env", "check")
    assert res.exit_code != 0, res
    assert "ok (profile" not in res.stdout
    assert ".env does not exist" in res.stderr or ".env.example" in res.stderr


def test_an_env_file_compose_does_not_read_need_not_exist(project: Any, cli: Any) -> None:
    _project(project)
    project.profile("local", "compose:\n  files: [compose.yaml]\n  env_files: []\n")
    res = cli("env", "check")
    assert res.exit_code == 0, res


def test_a_template_the_profile_names_but_is_missing_names_the_profile_field(project: Any, cli: Any) -> None:
    _project(project)
    project.profile("local", "compose:\n  files: [compose.yaml]\nenv:\n  template: config/env template\n")
    for args in (("env", "check"), ("env", "render")):
        res = cli(*args)
        assert res.exit_code == 2, (args, res)
        last = res.stderr.strip().splitlines()
        assert any("profiles/local.yaml" in line and "env.template" in line and "'config/env template'" in line
                   for line in last), (args, res.stderr)
        assert "Traceback" not in res.stderr
