"""stackctl.fsutil, the one module that writes files: atomic writes, modes, stale temp files."""

from __future__ import annotations

import fnmatch
import os
import stat
from pathlib import Path

import pytest

from stackctl import fsutil


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_replaces_with_the_mode_asked_for(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "secret.env"
    fsutil.atomic_write(target, "A=1\n", mode=fsutil.SECRET_MODE)
    assert target.read_text() == "A=1\n" and _mode(target) == 0o600
    target.chmod(0o644)
    fsutil.atomic_write(target, b"A=2\n", mode=fsutil.SECRET_MODE)
    assert target.read_bytes() == b"A=2\n" and _mode(target) == 0o600
    fsutil.atomic_write(tmp_path / "public.txt", "x")
    assert _mode(tmp_path / "public.txt") == fsutil.PUBLIC_MODE
    assert sorted(p.name for p in target.parent.iterdir()) == ["secret.env"]  # no temp file left


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "state.json"
    fsutil.atomic_write(target, "old")

    def broken_replace(src: str, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        fsutil.atomic_write(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_stale_temps_are_the_ones_temp_glob_names(tmp_path: Path) -> None:
    target = tmp_path / "store.json"
    target.write_text("{}")
    stale = tmp_path / ".store.json.abc123.tmp"
    other = tmp_path / ".other.json.abc123.tmp"
    stale.write_text("half")
    other.write_text("half")
    assert fnmatch.fnmatch(stale.name, fsutil.TEMP_GLOB)
    fsutil.remove_stale_temps(target)
    assert not stale.exists() and other.exists() and target.exists()


def test_restrict_and_private_dir(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("A=1\n")
    env.chmod(0o644)
    fsutil.restrict(env)
    assert _mode(env) == 0o600
    keys = fsutil.private_dir(tmp_path / "config" / "keys")
    assert keys.is_dir() and _mode(keys) == 0o700
    keys.chmod(0o755)
    fsutil.private_dir(keys)  # an existing directory is tightened too
    assert _mode(keys) == 0o700
