"""Shell completion through the real protocol (issue 13 item 12): the installed `stackctl` program run
the way the bash, zsh and fish scripts run it, in a project directory, and the real bash script sourced
into a bash. A Tab press used to print the help page (the pre-rendered help answered the empty
command line), and `--show-completion zsh` printed the bash script.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ENTRY = Path(sys.executable).with_name("stackctl")
PROGRAM = [str(ENTRY)] if ENTRY.exists() else [sys.executable, "-m", "stackctl"]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def proj(project: Any) -> Any:
    project.write("compose.yaml", "services:\n  web: {image: nginx}\n  db: {image: postgres}\n")
    project.write("worker.yaml", "services:\n  worker: {image: busybox}\n")
    project.profile("local", "compose: {files: [compose.yaml]}\n")
    project.profile("production", "compose:\n  files: [compose.yaml, worker.yaml]\nkubernetes: {namespace: prod}\n")
    return project


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("_STACKCTL", "_TYPER", "COMP_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return {**env, **extra}


def _run(cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(PROGRAM, cwd=cwd, env=_env(**extra), capture_output=True, text=True, check=False,
                          timeout=60)


def bash(cwd: Path, line: str) -> list[str]:
    """What bash's COMPREPLY gets for `line` (the cursor at its end)."""
    words = line.split(" ")
    proc = _run(cwd, _STACKCTL_COMPLETE="complete_bash", COMP_WORDS=line, COMP_CWORD=str(len(words) - 1))
    assert proc.returncode == 0 and proc.stderr == "", proc
    return proc.stdout.split()


def zsh(cwd: Path, line: str) -> str:
    proc = _run(cwd, _STACKCTL_COMPLETE="complete_zsh", _TYPER_COMPLETE_ARGS=line)
    assert proc.returncode == 0 and proc.stderr == "", proc
    return proc.stdout


def fish(cwd: Path, line: str) -> list[str]:
    proc = _run(cwd, _STACKCTL_COMPLETE="complete_fish", _TYPER_COMPLETE_ARGS=line,
                _TYPER_COMPLETE_FISH_ACTION="get-args")
    assert proc.returncode == 0 and proc.stderr == "", proc
    return [line.split("\t")[0] for line in proc.stdout.splitlines()]


def test_commands_and_options(proj: Any) -> None:
    assert bash(proj.root, "stackctl st") == ["status"]
    assert {"up", "down", "promote", "render", "secrets", "env"} <= set(bash(proj.root, "stackctl "))
    assert "Usage:" not in " ".join(bash(proj.root, "stackctl "))
    assert bash(proj.root, "stackctl secrets ro") == ["rotate", "rollback"]
    options = bash(proj.root, "stackctl render kubernetes --")
    assert {"--profile", "--output", "--out-dir", "--include-secrets", "--validate"} <= set(options)


def test_profile_names(proj: Any) -> None:
    assert bash(proj.root, "stackctl up -p ") == ["local", "production"]
    assert bash(proj.root, "stackctl config --profile pro") == ["production"]
    assert bash(proj.root, "stackctl promote ") == ["local", "production"]  # a positional profile
    (proj.root / "sub").mkdir()
    assert bash(proj.root / "sub", "stackctl status -p l") == ["local"]  # the project is found upwards
    assert bash(proj.root.parent, f"stackctl -C {proj.root} status -p ") == ["local", "production"]


def test_service_names_from_the_profiles_compose_files(proj: Any) -> None:
    assert bash(proj.root, "stackctl up ") == ["db", "web"]
    assert bash(proj.root, "stackctl logs -p production ") == ["db", "web", "worker"]
    assert bash(proj.root, "stackctl restart web ") == ["db"]  # a service already named is not offered again
    assert bash(proj.root, "stackctl up -p nosuch ") == []  # no such profile: no candidates, no error
    proj.write("compose.yaml", "services: [unfinished\n")
    assert bash(proj.root, "stackctl up ") == []


def test_zsh_and_fish(proj: Any) -> None:
    out = zsh(proj.root, "stackctl promote ")
    assert out.startswith("_arguments") and '"local"' in out and '"production"' in out
    assert fish(proj.root, "stackctl logs -p production w") == ["web", "worker"]
    assert "status" in fish(proj.root, "stackctl sta")


@pytest.mark.parametrize(("shell", "start"), [
    ("bash", "_stackctl_completion() {"),
    ("zsh", "#compdef stackctl"),
    ("fish", "complete --command stackctl"),
])
def test_show_completion_prints_the_named_shells_script(proj: Any, shell: str, start: str) -> None:
    proc = subprocess.run([*PROGRAM, "--show-completion", shell], cwd=proj.root, env=_env(), capture_output=True,
                          text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.lstrip().startswith(start)
    assert "_STACKCTL_COMPLETE=complete_" + shell in proc.stdout


def test_show_completion_rejects_an_unknown_shell(proj: Any) -> None:
    proc = subprocess.run([*PROGRAM, "--show-completion", "ksh"], cwd=proj.root, env=_env(), capture_output=True,
                          text=True, check=False, timeout=60)
    assert proc.returncode == 2
    assert "'ksh' is not a supported shell (expected one of: bash, zsh, fish)" in proc.stderr


@pytest.mark.skipif(not shutil.which("bash"), reason="needs bash")
def test_the_bash_script_in_a_real_bash(proj: Any) -> None:
    """The script `--show-completion bash` prints, sourced into bash, fills COMPREPLY for a Tab press."""
    bin_dir = proj.root / "bin"
    bin_dir.mkdir()
    (bin_dir / "stackctl").write_text(f"#!/bin/sh\nexec {' '.join(PROGRAM)} \"$@\"\n")
    (bin_dir / "stackctl").chmod(0o755)
    script = ('source <(stackctl --show-completion bash)\n'
              'COMP_WORDS=(stackctl up -p ""); COMP_CWORD=3; _stackctl_completion stackctl\n'
              'printf "%s\\n" "${COMPREPLY[@]}"\n'
              'COMP_WORDS=(stackctl up ""); COMP_CWORD=2; _stackctl_completion stackctl\n'
              'printf "%s\\n" "${COMPREPLY[@]}"\n')
    env = _env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(["bash", "--norc", "-c", script], cwd=proj.root, env=env, capture_output=True, text=True,
                          check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["local", "production", "db", "web"]


@pytest.mark.skipif(not shutil.which("bash"), reason="needs bash")
def test_show_completion_without_a_shell_detects_the_current_one(proj: Any) -> None:
    proc = subprocess.run(["bash", "--norc", "-c", f"{' '.join(PROGRAM)} --show-completion; true"], cwd=proj.root,
                          env=_env(), capture_output=True, text=True, check=False, timeout=60)
    assert proc.stdout.lstrip().startswith("_stackctl_completion() {"), proc
