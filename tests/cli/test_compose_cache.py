"""The cache of `docker compose config` (stackctl/compose/cache.py, issue 15), through the real CLI and
the real Compose: an unchanged project is answered from the cache, and an edit of ANY input Compose
reads — an extended file, an included file, a service env_file, an --env-file, the environment, an
optional env file appearing, a new override file in the profile — is seen by the very next command.
A stale answer is the worst bug a cache can have; each case here is one way to get one."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stackctl.compose import cli as docker_cli

pytestmark = pytest.mark.docker

COMPOSE = """
include:
  - inc/compose.yaml
services:
  web:
    extends:
      file: base.yaml
      service: base
    image: nginx:1.27
    env_file:
      - app.env
      - path: extra.env
        required: false
    environment:
      GREETING: ${GREETING:-unset}
      FROM_VALUES: ${FROM_VALUES:-unset}
"""
BASE = """
services:
  base:
    environment:
      FROM_BASE: base-1
"""
INCLUDED = """
services:
  worker:
    image: busybox:1.36
    environment:
      FROM_INCLUDE: include-1
"""
PROFILE = """
stack: cached
compose:
  files: [compose.yaml]
  env_files: [values.env]
kubernetes:
  namespace: cached
"""


class Runs:
    """Counts the Compose processes actually started."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = docker_cli._run_argv

        def counting(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(docker_cli, "_run_argv", counting)
        monkeypatch.setattr(docker_cli, "run", self._through_cli(docker_cli.run))

    def _through_cli(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def counting(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return real(*args, **kwargs)
        return counting


@pytest.fixture
def proj(project: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for var in ("STACKCTL_COMPOSE_CACHE", "GREETING", "STACKCTL_DOCKER", "DOCKER_CONTEXT"):
        monkeypatch.delenv(var, raising=False)
    docker_cli.compose_plugin.cache_clear()  # an earlier test may have left "no plugin" (STACKCTL_DOCKER) behind
    project.write("compose.yaml", COMPOSE)
    project.write("base.yaml", BASE)
    project.write("inc/compose.yaml", INCLUDED)
    project.write("app.env", "FROM_ENV_FILE=envfile-1\n")
    project.write("values.env", "FROM_VALUES=values-1\n")
    project.profile("dev", PROFILE)
    assert docker_cli.compose_plugin() is not None, "the cache needs the Compose plugin binary"
    yield project
    docker_cli.compose_plugin.cache_clear()


def _render(cli: Callable[..., Any]) -> str:
    res = cli("render", "kubernetes", "-p", "dev")
    assert res.exit_code == 0, res.stderr
    return str(res.stdout)


def test_an_unchanged_project_runs_compose_once(proj: Any, cli: Callable[..., Any],
                                                monkeypatch: pytest.MonkeyPatch, isolated_env: Path) -> None:
    runs = Runs(monkeypatch)
    first = _render(cli)
    assert runs.count == 1
    assert "base-1" in first and "include-1" in first and "envfile-1" in first and "values-1" in first
    assert _render(cli) == first
    assert runs.count == 1  # answered from the cache
    directory = isolated_env / ".cache" / "stackctl" / "compose-config"
    entries = list(directory.iterdir())
    assert len(entries) == 1
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(entries[0].stat().st_mode) == 0o600
    assert b"values-1" not in entries[0].read_bytes() and b"envfile-1" not in entries[0].read_bytes()  # encrypted


@pytest.mark.parametrize(("edit", "seen"), [
    (lambda p, mp: p.write("base.yaml", BASE.replace("base-1", "base-2")), "base-2"),
    (lambda p, mp: p.write("inc/compose.yaml", INCLUDED.replace("include-1", "include-2")), "include-2"),
    (lambda p, mp: p.write("app.env", "FROM_ENV_FILE=envfile-2\n"), "envfile-2"),
    (lambda p, mp: p.write("values.env", "FROM_VALUES=values-2\n"), "values-2"),
    (lambda p, mp: mp.setenv("GREETING", "environ-2"), "environ-2"),
    (lambda p, mp: p.write("extra.env", "FROM_EXTRA=extra-2\n"), "extra-2"),
    (lambda p, mp: (p.write("override.yaml", "services:\n  web:\n    environment:\n      LATE: override-2\n"),
                    p.profile("dev", PROFILE.replace("[compose.yaml]", "[compose.yaml, override.yaml]"))),
     "override-2"),
], ids=["extended-file", "included-file", "env_file", "env-file-option", "environ", "optional-env-file-appears",
        "new-override-file"])
def test_an_edited_input_is_seen_by_the_next_command(proj: Any, cli: Callable[..., Any],
                                                     monkeypatch: pytest.MonkeyPatch, edit: Any, seen: str) -> None:
    runs = Runs(monkeypatch)
    before = _render(cli)
    assert _render(cli) == before and runs.count == 1
    assert seen not in before
    edit(proj, monkeypatch)
    after = _render(cli)
    assert seen in after, f"stale: {seen} not in the render after the edit"
    assert runs.count == 2
    assert _render(cli) == after and runs.count == 2  # the new answer is cached in turn


def test_an_input_that_cannot_be_digested_is_never_cached(proj: Any, cli: Callable[..., Any],
                                                          monkeypatch: pytest.MonkeyPatch, isolated_env: Path) -> None:
    """A path Compose interpolates itself (`${ENV_DIR}/x.env`): we cannot know which file it reads."""
    monkeypatch.setenv("ENV_DIR", str(proj.root / "envs"))
    proj.write("envs/x.env", "FROM_X=x-1\n")
    proj.write("compose.yaml", COMPOSE.replace("      - app.env\n", "      - app.env\n      - ${ENV_DIR}/x.env\n"))
    runs = Runs(monkeypatch)
    assert "x-1" in _render(cli)
    proj.write("envs/x.env", "FROM_X=x-2\n")
    assert "x-2" in _render(cli)
    assert runs.count == 2
    assert not (isolated_env / ".cache" / "stackctl" / "compose-config").exists()


def test_the_cache_can_be_turned_off(proj: Any, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKCTL_COMPOSE_CACHE", "0")
    runs = Runs(monkeypatch)
    _render(cli)
    _render(cli)
    assert runs.count == 2


def test_a_failed_compose_run_is_not_cached(proj: Any, cli: Callable[..., Any],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    proj.write("base.yaml", "services:\n  base:\n    environment: [unclosed\n")
    runs = Runs(monkeypatch)
    assert cli("render", "kubernetes", "-p", "dev").exit_code != 0
    assert cli("render", "kubernetes", "-p", "dev").exit_code != 0
    assert runs.count >= 2
    proj.write("base.yaml", BASE)
    assert "base-1" in _render(cli)
