"""stackctl.git, the one module that runs git: against the real git, a PATH without git, and a git that hangs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from stackctl import git
from stackctl.errors import OperationError, ToolMissingError

GIT = shutil.which("git")
needs_git = pytest.mark.skipif(GIT is None, reason="git is not installed")


def _git(root: Path, *args: str) -> None:
    assert GIT
    subprocess.run([GIT, "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    _git(root, "config", "user.email", "t@example.com")
    _git(root, "config", "user.name", "t")
    _git(root, "config", "commit.gpgsign", "false")
    return root


@pytest.fixture
def no_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


@needs_git
def test_is_ignored_follows_gitignore(repo: Path) -> None:
    (repo / ".gitignore").write_text(".env.*\n")
    assert git.is_ignored(Path(".env.local"), repo) is True
    assert git.is_ignored(repo / ".env.local", repo) is True  # absolute paths too
    assert git.is_ignored(Path("compose.yaml"), repo) is False


@needs_git
def test_queries_outside_a_work_tree(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / ".git").mkdir()  # not a repository, whatever the directory says
    assert git.is_ignored(Path(".env"), plain) is None
    assert git.head_commit(plain) is None
    assert git.is_dirty(plain) is None
    assert git.head_commit(tmp_path / "missing") is None


@needs_git
def test_head_commit_and_dirty(repo: Path) -> None:
    assert git.head_commit(repo) is None  # no commit yet
    assert git.is_dirty(repo) is False
    (repo / "a.txt").write_text("1\n")
    assert git.is_dirty(repo) is True  # untracked counts
    _git(repo, "add", "a.txt")
    _git(repo, "commit", "-q", "-m", "one")
    head = git.head_commit(repo)
    assert head is not None and len(head) == 40 and int(head, 16) >= 0
    assert git.is_dirty(repo) is False
    (repo / ".gitignore").write_text("*.log\n")
    _git(repo, "add", ".gitignore")
    _git(repo, "commit", "-q", "-m", "two")
    (repo / "x.log").write_text("ignored\n")
    assert git.is_dirty(repo) is False  # ignored files do not count
    (repo / "a.txt").write_text("2\n")
    assert git.is_dirty(repo) is True
    assert git.head_commit(repo) != head


@needs_git
def test_without_git_on_path(repo: Path, no_git: None) -> None:
    with pytest.raises(ToolMissingError, match="git is not on PATH"):
        git.is_ignored(Path(".env"), repo)
    assert git.head_commit(repo) is None
    assert git.is_dirty(repo) is None


def test_a_hanging_git_is_an_operation_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "git"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    with pytest.raises(OperationError, match=r"`git status` did not finish within 0\.3s"):
        git.run(["status"], cwd=tmp_path, timeout=0.3)


def test_an_unrunnable_git_is_a_missing_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "git"
    fake.write_text("#!/nonexistent/interpreter\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(ToolMissingError, match="cannot run"):
        git.run(["status"], cwd=tmp_path)
