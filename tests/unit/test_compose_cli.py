"""Which binary `compose()` runs: the Compose plugin itself where the docker CLI would only exec it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackctl.compose import cli


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cli.compose_plugin.cache_clear()
    monkeypatch.setattr(cli, "_SYSTEM_PLUGIN_DIRS", (str(tmp_path / "system"),))
    for var in ("STACKCTL_DOCKER", "DOCKER_CONTEXT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "config"))
    yield
    cli.compose_plugin.cache_clear()


def plugin(directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "docker-compose"
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return str(path)


def test_found_where_the_docker_cli_looks_first(tmp_path: Path) -> None:
    assert cli.compose_plugin() is None
    system = plugin(tmp_path / "system")
    cli.compose_plugin.cache_clear()
    assert cli.compose_plugin() == system
    user = plugin(tmp_path / "config" / "cli-plugins")
    cli.compose_plugin.cache_clear()
    assert cli.compose_plugin() == user  # the user's config dir before the system dirs
    extra = plugin(tmp_path / "extra")
    (tmp_path / "config" / "config.json").write_text(json.dumps({"cliPluginsExtraDirs": [str(tmp_path / "extra")]}))
    cli.compose_plugin.cache_clear()
    assert cli.compose_plugin() == extra  # the config's extra dirs first


def test_not_executable_is_not_a_plugin(tmp_path: Path) -> None:
    Path(plugin(tmp_path / "system")).chmod(0o644)
    assert cli.compose_plugin() is None


@pytest.mark.parametrize("setting", ["context-env", "context-config", "stackctl-docker", "bad-config"])
def test_the_docker_cli_stays_in_between_when_it_has_something_to_add(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str) -> None:
    plugin(tmp_path / "config" / "cli-plugins")
    if setting == "context-env":
        monkeypatch.setenv("DOCKER_CONTEXT", "colima")
    elif setting == "context-config":
        (tmp_path / "config" / "config.json").write_text(json.dumps({"currentContext": "colima"}))
    elif setting == "stackctl-docker":
        monkeypatch.setenv("STACKCTL_DOCKER", "/usr/bin/docker")
    else:
        (tmp_path / "config" / "config.json").write_text("{not json")
    assert cli.compose_plugin() is None


def test_default_context_in_the_config_is_no_context(tmp_path: Path) -> None:
    found = plugin(tmp_path / "config" / "cli-plugins")
    (tmp_path / "config" / "config.json").write_text(json.dumps({"currentContext": "default"}))
    assert cli.compose_plugin() == found
