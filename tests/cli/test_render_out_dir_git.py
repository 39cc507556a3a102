"""`render kubernetes --include-secrets --out-dir DIR` inside a git work tree warns, as `env render`
does for its env file, when git does not ignore DIR: the Secret manifests there hold plaintext
(issue 18 item 5). A warning, not a refusal: a directory git ignores, or one outside any repository,
is the right place, and a missing git must not block the render."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.docker

COMPOSE = """
services:
  web:
    image: example/web:1
    environment:
      DB_PASSWORD: ${DB_PASSWORD}
"""


@pytest.fixture
def repo(project: Any, cli: Callable[..., Any]) -> Any:
    project.write("compose.yaml", COMPOSE)
    project.write(".env.example", "# @secret hex:16\nDB_PASSWORD=\n")
    project.profile("production", "compose: {files: [compose.yaml]}\nkubernetes: {namespace: shop}\n")
    subprocess.run(["git", "init", "-q", str(project.root)], check=True)
    assert cli("secrets", "init", "-p", "production").exit_code == 0
    assert cli("secrets", "generate", "-p", "production").exit_code == 0
    return project


def test_secret_manifests_in_a_directory_git_does_not_ignore_are_warned_about(repo: Any, cli: Any) -> None:
    res = cli("render", "kubernetes", "-p", "production", "--include-secrets", "--out-dir", "manifests")
    assert res.exit_code == 0, res.stderr
    assert "Warning: manifests is not ignored by git: its Secret manifests hold plaintext values" in res.stderr

    (repo.root / ".gitignore").write_text("/manifests/\n")
    res = cli("render", "kubernetes", "-p", "production", "--include-secrets", "--out-dir", "manifests")
    assert res.exit_code == 0, res.stderr
    assert "not ignored by git" not in res.stderr


def test_no_warning_without_secrets_or_outside_a_repository(repo: Any, cli: Any, tmp_path: Any) -> None:
    res = cli("render", "kubernetes", "-p", "production", "--out-dir", "manifests")  # Secrets left out
    assert res.exit_code == 0, res.stderr
    assert "not ignored by git" not in res.stderr
    outside = tmp_path / "elsewhere" / "manifests"
    res = cli("render", "kubernetes", "-p", "production", "--include-secrets", "--out-dir", str(outside))
    assert res.exit_code == 0, res.stderr
    assert "not ignored by git" not in res.stderr
