"""`stackctl doctor` and git: the gitignore check without git on PATH is reported, not a crash."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.docker

GIT = shutil.which("git")


def _doctor(project, path: str) -> subprocess.CompletedProcess[str]:
    """The real program (`python -m stackctl`), with PATH as given."""
    env = {**os.environ, "PATH": path}
    return subprocess.run([sys.executable, "-m", "stackctl", "doctor", "-o", "json", "--offline"],
                          cwd=project.root, env=env, capture_output=True, text=True, timeout=120)


def _setup(project) -> None:
    project.write("compose.yaml", "services:\n  api:\n    image: x\n")
    project.write(".env", "")
    project.profile("local", "compose: {files: [compose.yaml]}\n")
    if GIT:
        subprocess.run([GIT, "init", "-q", str(project.root)], check=True)
    else:
        (project.root / ".git").mkdir()


def test_doctor_without_git_skips_the_gitignore_check(project, tmp_path) -> None:
    docker = shutil.which("docker")
    assert docker
    bin_dir = tmp_path / "docker-only"
    bin_dir.mkdir()
    (bin_dir / "docker").symlink_to(docker)
    _setup(project)
    proc = _doctor(project, str(bin_dir))
    assert "internal error" not in proc.stderr, proc.stderr
    checks = {c["name"]: c for c in json.loads(proc.stdout)}
    assert checks["compose v2"]["status"] == "ok", checks
    assert checks["gitignore"] == {
        "name": "gitignore", "status": "skip",
        "detail": "cannot tell whether .env is git-ignored: git is not on PATH",
        "fix": "install git, or add its directory to PATH",
    }
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(GIT is None, reason="git is not installed")
def test_doctor_with_git_reports_an_env_file_git_would_commit(project) -> None:
    _setup(project)
    proc = _doctor(project, os.environ["PATH"])
    checks = {c["name"]: c for c in json.loads(proc.stdout)}
    assert checks["gitignore"]["status"] == "fail"
    assert checks["gitignore"]["detail"] == ".env would be committed in plaintext"
    project.write(".gitignore", ".env\n")
    proc = _doctor(project, os.environ["PATH"])
    checks = {c["name"]: c for c in json.loads(proc.stdout)}
    assert checks["gitignore"] == {"name": "gitignore", "status": "ok", "detail": ".env is git-ignored", "fix": ""}
