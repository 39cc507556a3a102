"""A profile runs from the encrypted store alone: `config` and `render` for `production` need no
`.env.production` (a plaintext copy of the production secrets), read the store in memory and write
nothing; `config` masks every secret unless `--reveal`; an error names the profile and a command
that helps."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackctl.profile import load_profile
from stackctl.secrets import secret_values

pytestmark = pytest.mark.docker

COMPOSE = """
services:
  web:
    image: example/web:1
    command: ["serve", "--cache", "redis://:${REDIS_PASSWORD}@cache:6379/0"]
    environment:
      DATABASE_URL: postgres://app:${DB_PASSWORD}@db/app
      LOG_LEVEL: ${LOG_LEVEL}
  db:
    image: postgres:17
    environment:
      POSTGRES_PASSWORD: ${DB_PASSWORD:?}
"""
TEMPLATE = """
# @secret password:24
DB_PASSWORD=
# @secret hex:16
REDIS_PASSWORD=
LOG_LEVEL=info
"""


@pytest.fixture
def prod(project: Any) -> Any:
    project.write("compose.yaml", COMPOSE)
    project.write(".env.example", TEMPLATE)
    project.profile("production", "compose: {files: [compose.yaml]}\nkubernetes: {namespace: shop}\n"
                                  "env: {values: {LOG_LEVEL: warn}}\n")
    return project


def _no_env_file(root: Path) -> None:
    assert not (root / ".env.production").exists()
    assert not (root / ".env").exists()


def test_config_of_production_reads_the_store_and_masks(prod: Any, cli: Any) -> None:
    assert cli("secrets", "generate", "-p", "production").exit_code == 0
    res = cli("config", "-p", "production", "-o", "json")
    assert res.exit_code == 0, res.stderr
    services = {s["name"]: s for s in json.loads(res.stdout)["services"]}
    assert services["db"]["environment"] == {"POSTGRES_PASSWORD": "<secret:DB_PASSWORD>"}
    assert services["web"]["environment"] == {"DATABASE_URL": "postgres://app:<secret:DB_PASSWORD>@db/app",
                                              "LOG_LEVEL": "warn"}
    assert services["web"]["command"] == ["serve", "--cache", "redis://:<secret:REDIS_PASSWORD>@cache:6379/0"]
    assert "does not exist" not in res.stderr  # no invitation to write the plaintext file
    assert yaml.safe_load(cli("config", "-p", "production", "-o", "yaml").stdout) == json.loads(res.stdout)

    values = secret_values(load_profile(prod.root, "production"))
    revealed = cli("config", "-p", "production", "-o", "json", "--reveal")
    assert revealed.exit_code == 0, revealed.stderr
    web = {s["name"]: s for s in json.loads(revealed.stdout)["services"]}["web"]
    assert web["environment"]["DATABASE_URL"] == f"postgres://app:{values['DB_PASSWORD']}@db/app"
    _no_env_file(prod.root)


def test_config_masks_without_a_key_and_reveal_needs_one(prod: Any, cli: Any, tmp_path: Path) -> None:
    cli("secrets", "generate", "-p", "production")
    stranger = {"XDG_CONFIG_HOME": str(tmp_path / "stranger")}  # CI without the key
    res = cli("config", "-p", "production", "-o", "json", env=stranger)
    assert res.exit_code == 0, res.stderr
    assert "<secret:DB_PASSWORD>" in res.stdout
    res = cli("config", "-p", "production", "--reveal", env=stranger)
    assert res.exit_code == 1 and "production.json" in res.stderr


def test_render_of_production_without_env_file(prod: Any, cli: Any, tmp_path: Path) -> None:
    cli("secrets", "generate", "-p", "production")
    values = secret_values(load_profile(prod.root, "production"))
    res = cli("render", "kubernetes", "-p", "production")
    assert res.exit_code == 0, res.stderr
    # the argument refers to the variable the Secret fills: neither the password nor its marker
    assert "redis://:$(REDIS_PASSWORD)@cache:6379/0" in res.stdout
    assert values["REDIS_PASSWORD"] not in res.stdout and values["DB_PASSWORD"] not in res.stdout

    out = tmp_path / "out"
    res = cli("render", "kubernetes", "-p", "production", "--include-secrets", _dir_flag(), str(out))
    assert res.exit_code == 0, res.stderr
    secret = next(yaml.safe_load(p.read_text()) for p in out.glob("*secret*.yaml"))
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["DB_PASSWORD"] == values["DB_PASSWORD"]
    assert f"postgres://app:{values['DB_PASSWORD']}@db/app" in data.values()
    assert data["REDIS_PASSWORD"] == values["REDIS_PASSWORD"]
    assert not [p.name for p in out.glob("*.yaml") if values["REDIS_PASSWORD"] in p.read_text()]
    _no_env_file(prod.root)


def _dir_flag() -> str:
    import typer

    from stackctl.cli.app import app

    root: Any = typer.main.get_command(app)  # a group: it has `commands`
    command = root.commands["render"].commands["kubernetes"]
    return next(p.opts[0] for p in command.params if p.param_type_name == "option" and p.metavar == "DIR")


def test_missing_secret_hint_names_the_profile_and_a_command_that_helps(prod: Any, cli: Any) -> None:
    """Before `secrets generate -p production`: config and render show markers and say what is unset
    and what sets it; what needs the values (render --include-secrets, promote) refuses."""
    for argv in (("config", "-p", "production"), ("render", "kubernetes", "-p", "production")):
        res = cli(*argv)
        assert res.exit_code == 0, res.stderr
        assert "no value yet for DB_PASSWORD, REDIS_PASSWORD" in res.stderr
        assert "run `stackctl secrets generate -p production`" in res.stderr
        assert "env render" not in res.stderr
    res = cli("render", "kubernetes", "-p", "production", "--include-secrets", "--out-dir", str(prod.root / "out"))
    assert res.exit_code == 2 and "`stackctl secrets generate -p production`" in res.stderr
    assert "env render" not in res.stderr


def test_hand_set_secret_hint(prod: Any, cli: Any) -> None:
    prod.write(".env.example", TEMPLATE.replace("# @secret password:24", "# @secret"))
    cli("secrets", "generate", "-p", "production")
    res = cli("config", "-p", "production")
    assert res.exit_code == 0, res.stderr
    assert "no value yet for DB_PASSWORD" in res.stderr
    assert "`stackctl secrets set DB_PASSWORD -p production`" in res.stderr
    res = cli("render", "kubernetes", "-p", "production", "--include-secrets", "--out-dir", str(prod.root / "out"))
    assert res.exit_code == 1 and "`stackctl secrets set DB_PASSWORD -p production`" in res.stderr


def test_env_file_hint_only_where_env_render_writes_it(project: Any, cli: Any) -> None:
    project.write("compose.yaml", "services:\n  api:\n    image: x\n")
    project.profile("staging", "compose: {files: [compose.yaml], env_files: [.env.shared, .env.staging]}\n")
    res = cli("config", "-p", "staging")
    assert res.exit_code == 0
    assert "compose.env_files: .env.shared does not exist yet\n" in res.stderr  # env render does not write it
    assert ".env.staging does not exist yet (create it with `stackctl env render --profile staging`)" in res.stderr


def test_rotate_points_production_at_promote_not_at_a_plaintext_file(prod: Any, cli: Any) -> None:
    cli("secrets", "generate", "-p", "production")
    res = cli("secrets", "rotate", "DB_PASSWORD", "-p", "production")
    assert res.exit_code == 0, res.stderr
    assert "next: `stackctl promote -p production` (what uses them: db, web)" in res.stderr
    assert "env render" not in res.stderr
    _no_env_file(prod.root)


def test_render_of_a_profile_whose_secrets_are_not_generated_yet_works_masked(prod: Any, cli: Any) -> None:
    """`${DB_PASSWORD:?}` is required: before `secrets generate -p production` it has no value anywhere,
    yet render (no values asked for) shows the structure with markers; only promote needs the values."""
    res = cli("render", "kubernetes", "-p", "production")
    assert res.exit_code == 0, res.stderr
    assert "<secret:DB_PASSWORD>" not in res.stdout or "kind: Secret" not in res.stdout
    assert "redis://:$(REDIS_PASSWORD)@cache:6379/0" in res.stdout
    config = cli("config", "-p", "production", "-o", "json")
    assert config.exit_code == 0, config.stderr
    db = {s["name"]: s for s in json.loads(config.stdout)["services"]}["db"]
    assert db["environment"] == {"POSTGRES_PASSWORD": "<secret:DB_PASSWORD>"}
    _no_env_file(prod.root)
