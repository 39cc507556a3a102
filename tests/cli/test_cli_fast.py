"""The fast path of `render kubernetes` (stackctl/cli/fast.py): it imports neither typer, click nor
rich, and says and exits exactly what the typer app says and exits, for the command lines it takes
and for those it hands to typer (issue 15: the cost of a small project is mostly start-up)."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stackctl.cli import fast, rendering

REPO = Path(__file__).resolve().parents[2]

COMPOSE = """
name: demo
services:
  web:
    image: nginx:1.27
    ports: ["8080:80"]
    environment:
      GREETING: hello
      API_TOKEN: ${API_TOKEN:?set API_TOKEN}
    volumes: [./conf:/etc/web:ro]
    depends_on:
      db: {condition: service_healthy}
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: ${DB_PASSWORD:?set DB_PASSWORD}
    volumes: [pg:/var/lib/postgresql/data]
    healthcheck:
      test: ["CMD-SHELL", "pg_isready"]
    stop_signal: SIGINT
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
    project.write("conf/web.conf", "listen 80;\n")
    project.write("values.env", "API_TOKEN=tok-123456\nDB_PASSWORD=pw-abcdef\n")
    project.write(".env.example", "# @secret\nAPI_TOKEN=\n# @secret password\nDB_PASSWORD=\n")
    project.profile("production", PROFILE)
    project.profile("local", "compose:\n  files: [compose.yaml]\n  env_files: [values.env]\n")
    return project


# Command lines the fast path runs itself (after `stackctl`).
FAST = [
    ["render", "kubernetes"],
    ["render", "kubernetes", "-p", "production"],
    ["render", "kubernetes", "--profile=production", "-o", "json"],
    ["render", "kubernetes", "--profile", "production", "--output=JSON"],
    ["render", "kubernetes", "-p", "production", "--validate", "--strict"],
    ["render", "kubernetes", "-p", "production", "--report"],
    ["render", "kubernetes", "-p", "production", "--report", "-o", "json"],
    ["render", "kubernetes", "-p", "production", "--kube-version", "1.31"],
    ["render", "kubernetes", "-p", "local", "-p", "production"],  # the last one wins, as in click
    ["render", "kubernetes", "-p", "production", "-o", "text"],  # the command's own error
    ["render", "kubernetes", "-p", "production", "--format", "kustomize"],  # kustomize needs --out-dir
    ["render", "kubernetes", "-p", "production", "--report", "--out-dir", "out"],
    ["render", "kubernetes", "-p", "nope"],  # no such profile
    ["-C", ".", "render", "kubernetes", "-p", "production"],
    ["--project-dir=missing", "render", "kubernetes"],
]
# Command lines the fast path hands to typer (usage errors, help, anything unusual).
TYPER = [
    ["render", "kubernetes", "--help"],
    ["render", "kubernetes", "-h"],
    ["render", "kubernetes", "--nope"],
    ["render", "kubernetes", "-p"],
    ["render", "kubernetes", "-p", "--validate"],
    ["render", "kubernetes", "extra"],
    ["render", "kubernetes", "--", "-p"],
    ["render", "kubernetes", "--validate=yes"],
    ["render", "kubernetes", "--format", "helm"],
    ["render", "kubernetes", "--format=YAML", "-d", "out"],
    ["render", "kubernetes", "-pproduction"],
    ["render", "kubernetes", "--profile="],
    ["render", "--profile", "production", "kubernetes"],
    ["render"],
    ["render", "kube"],
    ["--version", "render", "kubernetes"],
    ["render", "kubernetes", "-C", "."],
]


@pytest.mark.parametrize("args", TYPER, ids=" ".join)
def test_the_fast_path_hands_unusual_command_lines_to_typer(args: list[str]) -> None:
    assert fast.parse(args) is None


@pytest.mark.parametrize("args", FAST, ids=" ".join)
def test_the_fast_path_takes_plain_command_lines(args: list[str]) -> None:
    assert fast.parse(args) is not None


@pytest.mark.docker
@pytest.mark.parametrize("args", FAST + TYPER, ids=" ".join)
def test_fast_and_typer_paths_say_and_exit_the_same(args: list[str], demo: Any,
                                                   cli: Callable[..., Any]) -> None:
    fast_run = cli(*args)
    typer_run = cli(*args, env={"STACKCTL_NO_FAST_PATH": "1"})
    assert (fast_run.exit_code, fast_run.stdout, fast_run.stderr) == (
        typer_run.exit_code, typer_run.stdout, typer_run.stderr)


@pytest.mark.docker
def test_the_same_with_the_environment_variables_of_the_options(demo: Any, cli: Callable[..., Any]) -> None:
    env = {"STACKCTL_PROFILE": "production", "STACKCTL_PROJECT_DIR": str(demo.root)}
    fast_run = cli("render", "kubernetes", "-o", "json", env=env)
    typer_run = cli("render", "kubernetes", "-o", "json", env={**env, "STACKCTL_NO_FAST_PATH": "1"})
    assert fast_run.exit_code == 0, fast_run.stderr
    assert json.loads(fast_run.stdout)["items"]
    assert (fast_run.exit_code, fast_run.stdout, fast_run.stderr) == (
        typer_run.exit_code, typer_run.stdout, typer_run.stderr)


@pytest.mark.docker
def test_the_same_when_writing_a_directory(demo: Any, cli: Callable[..., Any]) -> None:
    fast_run = cli("render", "kubernetes", "-p", "production", "-d", "out-fast", "--format", "kustomize")
    typer_run = cli("render", "kubernetes", "-p", "production", "-d", "out-typer", "--format", "kustomize",
                    env={"STACKCTL_NO_FAST_PATH": "1"})
    assert fast_run.exit_code == typer_run.exit_code == 0, fast_run.stderr
    assert fast_run.stderr.replace("out-fast", "DIR") == typer_run.stderr.replace("out-typer", "DIR")
    fast_files = {p.relative_to(demo.root / "out-fast"): p.read_bytes()
                  for p in sorted((demo.root / "out-fast").rglob("*")) if p.is_file()}
    typer_files = {p.relative_to(demo.root / "out-typer"): p.read_bytes()
                   for p in sorted((demo.root / "out-typer").rglob("*")) if p.is_file()}
    assert fast_files and fast_files == typer_files


def _child(args: list[str], cwd: Path) -> dict[str, Any]:
    """Run main() in a fresh interpreter; its exit code and which of typer/click/rich it imported."""
    code = (
        "import json, sys\n"
        "from stackctl.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "    status = 0\n"
        "except SystemExit as exc:\n"
        "    status = exc.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'click', 'rich'))\n"
        "sys.stdout.flush()\n"
        "sys.stderr.write('\\nRESULT ' + json.dumps({'status': status, 'heavy': heavy}) + '\\n')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("STACKCTL_NO_FAST_PATH", None)
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("RESULT ")]
    assert line, proc.stderr
    result: dict[str, Any] = json.loads(line[-1].removeprefix("RESULT "))
    return result


@pytest.mark.docker
def test_a_render_imports_neither_typer_click_nor_rich(demo: Any) -> None:
    ok = _child(["render", "kubernetes", "-p", "production", "-o", "json"], demo.root)
    assert ok == {"status": 0, "heavy": []}
    # an error of the command is said without them too
    failed = _child(["render", "kubernetes", "-p", "production", "-o", "text"], demo.root)
    assert failed == {"status": 2, "heavy": []}


def test_a_usage_error_still_goes_through_typer(tmp_path: Path) -> None:
    """The check above can fail: the same child sees typer when the command line is typer's."""
    result = _child(["render", "kubernetes", "--nope"], tmp_path)
    assert result["status"] == 2
    assert "typer" in result["heavy"]


def _typer_command() -> Any:
    import typer

    from stackctl.cli.app import app

    return typer.main.get_command(app)


def test_the_option_table_is_the_typer_commands() -> None:
    """A new option of `render kubernetes` (or a changed name, default or environment variable) fails
    here until stackctl/cli/fast.py knows it: the fast path must take exactly typer's options."""
    root = _typer_command()
    command = root.commands["render"].commands["kubernetes"]
    valued: dict[str, str] = {}
    flags: dict[str, str] = {}
    envvars: dict[str, str] = {}
    for param in command.params:
        assert not param.secondary_opts and not param.multiple and param.nargs == 1, param.name
        (flags if param.is_flag else valued).update(dict.fromkeys(param.opts, param.name))
        if param.envvar:
            envvars[param.name] = param.envvar
    assert valued == fast.RENDER_OPTIONS
    assert flags == fast.RENDER_FLAGS
    assert envvars == fast.RENDER_ENVVARS
    assert {p.name for p in command.params if type(p.type).__name__ == "TyperPath"} == fast.PATHS - {"project_dir"}
    fmt = next(p for p in command.params if p.name == "fmt")
    assert tuple(fmt.type.choices) == fast.FORMATS
    # the defaults typer passes are the body's own
    body = inspect.signature(rendering.kubernetes).parameters
    assert set(body) == {p.name for p in command.params}
    for param in command.params:
        assert body[param.name].default == param.default, param.name
    # the root: the one option taken is --project-dir; the others are eager or take no part
    taken = [p for p in root.params if p.name == "project_dir"]
    assert dict.fromkeys(taken[0].opts, "project_dir") == fast.ROOT_OPTIONS
    assert {"project_dir": taken[0].envvar} == fast.ROOT_ENVVARS
    assert all(p.is_eager or not p.expose_value for p in root.params if p.name != "project_dir")
