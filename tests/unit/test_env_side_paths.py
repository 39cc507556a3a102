"""`env render` and the files around the env file (issue 18, items 3 and 4): a killed render's
plaintext temp file is swept by the next one and ignored by the lines `init` writes; a tracked
file is never overwritten with secrets."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from stackctl import git
from stackctl.errors import InputError
from stackctl.profile import load_profile
from stackctl.scaffold import GITIGNORE_LINES
from stackctl.secrets import envfile, ops

TEMPLATE = "# @secret hex:16\nDB_PASSWORD=\nLOG_LEVEL=info\n"


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture
def proj(project):
    project.write("compose.yaml", "services:\n  web:\n    image: busybox\n")
    project.write(".env.example", TEMPLATE)
    project.profile("local", "compose: {files: [compose.yaml]}\n")
    ops.generate(load_profile(project.root, "local"))
    return project


def test_a_killed_renders_temp_file_is_swept_by_the_next(proj) -> None:
    stale = proj.root / "..env.Ab3xYz9q.tmp"  # what atomic_write leaves when killed mid-write
    stale.write_text("DB_PASSWORD=plaintext\n")
    other = proj.root / ".notes.txt"
    other.write_text("kept")
    result = envfile.render(load_profile(proj.root, "local"))
    assert result.written
    assert not stale.exists() and other.exists()
    stale.write_text("DB_PASSWORD=plaintext\n")
    envfile.render(load_profile(proj.root, "local"))  # nothing to write: swept all the same
    assert not stale.exists()
    stale.write_text("DB_PASSWORD=plaintext\n")
    envfile.render(load_profile(proj.root, "local"), dry_run=True)  # a dry run writes and removes nothing
    assert stale.exists()


def test_init_ignores_the_temp_files(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / ".gitignore").write_text("\n".join(GITIGNORE_LINES) + "\n")
    for name in ("..env.Ab3xYz9q.tmp", "..env.production.k2LmN0pQ.tmp", ".env", ".env.production"):
        assert git.is_ignored(tmp_path / name, tmp_path), name
    assert not git.is_ignored(tmp_path / ".env.example", tmp_path)


@pytest.mark.parametrize("target", [".env.example", "compose.yaml", "profiles/local.yaml", ".env"])
def test_render_refuses_a_tracked_env_file(proj, target: str) -> None:
    proj.profile("local", f"compose: {{files: [compose.yaml]}}\nenv: {{file: {target}}}\n")
    if not (proj.root / target).exists():
        (proj.root / target).write_text("LOG_LEVEL=debug\n")
    _git(proj.root, "init", "-q")
    _git(proj.root, "add", "--", target, "profiles/local.yaml")
    before = (proj.root / target).read_bytes()
    with pytest.raises(InputError) as err:
        envfile.render(load_profile(proj.root, "local"))
    assert err.value.exit_code == 2
    assert f"{target} is tracked by git" in err.value.message
    assert (proj.root / target).read_bytes() == before


def test_git_is_tracked(tmp_path: Path) -> None:
    assert git.is_tracked(tmp_path / "a", tmp_path) is None  # not a work tree
    _git(tmp_path, "init", "-q")
    (tmp_path / "a").write_text("x")
    assert git.is_tracked(tmp_path / "a", tmp_path) is False
    _git(tmp_path, "add", "a")
    assert git.is_tracked(tmp_path / "a", tmp_path) is True
    assert git.is_tracked(Path("a"), tmp_path) is True
