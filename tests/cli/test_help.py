"""The CLI shell: help, fast start-up, exit codes, laziness of heavy imports."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stackctl.cli.helpgen import HELP_FILE, render

PY = sys.executable


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-c", code], capture_output=True, text=True, check=False, env={**os.environ, **env})


@pytest.mark.parametrize("columns", [80, 100, 250])
def test_prerendered_help_is_exactly_typers(columns: int) -> None:
    """The fast path prints a copy; it must equal what typer prints at any width ≥ 80."""
    assert HELP_FILE.read_text() == render(columns), "stale help: run `python -m stackctl.cli.helpgen`"


def test_help_does_not_import_typer_or_heavy_libraries() -> None:
    proc = _run("import sys\nfrom stackctl.cli import main\nmain(['--help'])\n"
                "heavy = [m for m in ('typer', 'rich', 'kubernetes', 'python_on_whales', 'cryptography', 'yaml')"
                " if m in sys.modules]\nprint('HEAVY', heavy, file=sys.stderr)", COLUMNS="100")
    assert proc.returncode == 0
    assert proc.stdout.startswith("Usage: stackctl")
    assert "HEAVY []" in proc.stderr


def test_narrow_terminal_falls_back_to_typer() -> None:
    proc = _run("from stackctl.cli import main\nmain(['--help'])", COLUMNS="60")
    assert proc.returncode == 0
    assert max(len(line) for line in proc.stdout.splitlines()) <= 60


def test_bare_command_prints_help_and_exits_2() -> None:
    proc = subprocess.run([PY, "-m", "stackctl"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("Usage: stackctl")


def test_command_modules_import_no_heavy_library() -> None:
    proc = _run("import sys\nimport stackctl.cli.app\n"
                "print([m for m in ('kubernetes', 'python_on_whales', 'docker', 'cryptography', 'yaml', 'rich')"
                " if m in sys.modules])")
    assert proc.stdout.strip() == "[]", proc.stderr


def test_model_is_backend_neutral() -> None:
    proc = _run("import sys\nimport stackctl.model, stackctl.pipeline, stackctl.compose.loader\n"
                "print([m for m in sys.modules if m.split('.')[0] in ('kubernetes', 'python_on_whales', 'docker')])")
    assert proc.stdout.strip() == "[]", proc.stderr


def test_version(cli) -> None:
    res = cli("--version")
    assert res.exit_code == 0 and res.stdout.strip() == "stackctl 0.1.0"


def test_unknown_command_is_usage_error(cli) -> None:
    res = cli("frobnicate")
    assert res.exit_code == 2
    assert "No such command 'frobnicate'" in res.stderr


def test_unknown_profile_is_located_error_exit_2(project, cli) -> None:
    project.write("compose.yaml", "services: {web: {image: busybox}}\n")
    project.profile("local", "compose: {files: [compose.yaml]}\n")
    res = cli("config", "--profile", "staging")
    assert res.exit_code == 2
    assert res.stderr.startswith("Error: profiles/staging.yaml: profile 'staging' not found (known profiles: local)")
    assert "Traceback" not in res.stderr


def test_bad_profile_field_exit_2_one_line(project, cli) -> None:
    project.write("compose.yaml", "services: {web: {image: busybox}}\n")
    project.profile("production", "compose: {files: [compose.yaml]}\nkubernetes: {namespace: Prod}\n")
    res = cli("config", "-p", "production")
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("Error: profiles/production.yaml: kubernetes.namespace: must be a DNS-1123 label")


def test_a_bad_shutdown_delay_fails_the_cli_without_a_traceback(project: Any, cli: Callable[..., Any]) -> None:
    project.write("compose.yaml", "services:\n  web:\n    image: nginx:1.27\n")
    project.profile("production", "compose: {files: [compose.yaml]}\nservices:\n  web:\n    shutdown_delay: 5 s\n")
    result = cli("render", "kubernetes", "-p", "production")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("Error: profiles/production.yaml: services.web.shutdown_delay: must be a "
                                    "duration in whole seconds like 5s, 30s or 2m (0 for none), got a string "
                                    "('5 s')")
    assert "Traceback" not in result.stderr


def test_project_dir_option(tmp_path: Path, cli) -> None:
    root = tmp_path / "p"
    (root / "profiles").mkdir(parents=True)
    (root / "compose.yaml").write_text("services: {web: {image: busybox}}\n")
    (root / "profiles" / "local.yaml").write_text("compose: {files: [compose.yaml]}\nkubernetes: {namespace: NO}\n")
    res = cli("-C", str(root), "config")
    assert res.exit_code == 2 and "profiles/local.yaml: kubernetes.namespace" in res.stderr


# ---------------------------------------------------------------------------------------------
# Examples in every --help (issue 13 item 15)
# ---------------------------------------------------------------------------------------------
def _commands() -> dict[str, Any]:
    """Every command and group of the app by path ("" is stackctl itself, "secrets recipients" a group)."""
    import typer

    from stackctl.cli.app import app

    found: dict[str, Any] = {}

    def walk(command: Any, path: list[str]) -> None:
        found[" ".join(path)] = command
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def test_every_command_has_examples(cli: Callable[..., Any]) -> None:
    from stackctl.cli.examples import EXAMPLES

    commands = _commands()
    assert sorted(commands) == sorted(EXAMPLES), "a command without examples (or examples of no command)"
    for path in commands:
        res = cli(*path.split(), "--help", env={"STACKCTL_NO_FAST_HELP": "1"})
        assert res.exit_code == 0, res
        examples = res.stdout.split("Examples:", 1)
        assert len(examples) == 2, f"`stackctl {path} --help` shows no example"
        assert f"stackctl {path}".strip() in examples[1]


def test_every_example_parses() -> None:
    """Each example is a valid command line of the real app (no renamed or removed option in --help)."""
    import shlex

    from stackctl.cli.examples import EXAMPLES

    commands = _commands()
    for rows in EXAMPLES.values():
        for line, _ in rows:
            words = []
            for word in shlex.split(line):
                if word in ("|", "<", ">"):
                    break
                words.append(word)
            assert words[0] == "stackctl", line
            path: list[str] = []
            rest = words[1:]
            while rest and " ".join([*path, rest[0]]) in commands:
                path.append(rest.pop(0))
            leaf = commands[" ".join(path)]
            assert not hasattr(leaf, "commands"), f"{line}: names no command"
            leaf.make_context(f"stackctl {' '.join(path)}", rest)


def test_rotate_help_says_what_rotate_does(project: Any, cli: Callable[..., Any]) -> None:
    """`secrets rotate` needs names or --all and changes only the store; its help used to say
    "Secret names (default: all)"."""
    project.write("compose.yaml", "services: {web: {image: busybox}}\n")
    project.profile("local", "compose: {files: [compose.yaml]}\n")
    text = " ".join(cli("secrets", "rotate", "--help").stdout.split())
    assert "(default: all)" not in text
    assert "Secrets to rotate (name them, or pass --all)." in text
    assert "Only the store changes: the env file and the running services keep the old values until " \
           "`stackctl up` (it renders the env file first: `stackctl env render`) and a restart of what uses them" \
           in text
    res = cli("secrets", "rotate")
    assert res.exit_code == 2 and "name the secrets to rotate, or pass --all (not both)" in res.stderr
