"""`render --out-dir`: the whole directory written at once (issue 15) — one fsync pass and one rename,
not an fsync and a rename per file — with the guarantees of before: Secrets 0600 from the first byte,
the files of a previous render that are no longer produced gone, a directory of the user's refused,
the user's own files in a rendered directory kept."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from stackctl import fsutil
from stackctl.errors import InputError
from stackctl.kubernetes import write


def _objects(n: int, *, secret: bool = True) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}"},
                                   "data": {"k": str(i)}} for i in range(n)]
    if secret:
        objs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"p": "eA=="}})
    return objs


class Calls:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.fsync = 0
        self.renames: list[tuple[str, str]] = []
        self.creat_modes: list[int] = []
        real_fsync, real_rename, real_replace, real_open = os.fsync, os.rename, os.replace, os.open

        def fsync(fd: int) -> None:
            self.fsync += 1
            real_fsync(fd)

        def rename(a: Any, b: Any) -> None:
            self.renames.append((str(a), str(b)))
            real_rename(a, b)

        def replace(a: Any, b: Any) -> None:
            self.renames.append((str(a), str(b)))
            real_replace(a, b)

        def open_(path: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
            if flags & os.O_CREAT:
                self.creat_modes.append(mode)
            return real_open(path, flags, mode, **kw)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "rename", rename)
        monkeypatch.setattr(os, "replace", replace)
        monkeypatch.setattr(os, "open", open_)


@pytest.mark.parametrize("syncfs", [True, False], ids=["syncfs", "fsync-pass"])
def test_a_new_directory_is_one_rename_and_one_flush(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     syncfs: bool) -> None:
    flushes: list[Path] = []
    if syncfs:
        if not fsutil._syncfs_available():
            pytest.skip("no syncfs(2) here")
        real = fsutil._syncfs
        monkeypatch.setattr(fsutil, "_syncfs", lambda d: flushes.append(d) or real(d))
    else:
        monkeypatch.setattr(fsutil, "_syncfs_available", lambda: False)
    calls = Calls(monkeypatch)
    out = tmp_path / "deploy"
    written = write.write_directory(_objects(50), out)
    assert len(written) == 51
    assert len(calls.renames) == 1 and calls.renames[0][1] == str(out)  # the directory, not each file
    if syncfs:  # one flush of the filesystem for the whole tree, then the two directories
        assert len(flushes) == 1 and calls.fsync == 2
    else:  # each of the 51 files and the marker once, then the two directories (before: 2 per file)
        assert calls.fsync == 51 + 1 + 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deploy"]  # no temp directory left
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == (0o600 if "-secret-" in path.name else 0o644), path.name
    # a Secret is created 0600 (never written with wider bits and narrowed afterwards)
    assert fsutil.SECRET_MODE in calls.creat_modes


def test_a_previous_render_is_replaced_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "deploy"
    out.mkdir(mode=0o750)
    os.chmod(out, 0o750)
    write.write_directory(_objects(5), out, fmt="kustomize")
    assert stat.S_IMODE(out.stat().st_mode) == 0o750  # the directory keeps its mode
    calls = Calls(monkeypatch)
    write.write_directory(_objects(2, secret=False), out)
    assert len(calls.renames) == 2  # the old directory aside, the new one in
    names = sorted(p.name for p in out.iterdir())
    assert names == [".stackctl-render", "000-configmap-c0.yaml", "001-configmap-c1.yaml"]  # stale files gone
    assert stat.S_IMODE(out.stat().st_mode) == 0o750
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deploy"]


def test_files_of_the_user_in_a_rendered_directory_are_kept(tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    write.write_directory(_objects(3), out)
    (out / "README.md").write_text("mine")
    write.write_directory(_objects(1), out)
    assert (out / "README.md").read_text() == "mine"
    assert sorted(p.name for p in out.glob("0*.yaml")) == ["000-configmap-c0.yaml", "001-secret-s.yaml"]
    assert stat.S_IMODE((out / "001-secret-s.yaml").stat().st_mode) == 0o600


def test_a_directory_stackctl_did_not_write_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="was not written by `stackctl render`"):
        write.write_directory(_objects(1), out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_a_symlinked_directory_stays_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "deploy"
    link.symlink_to(real)
    write.write_directory(_objects(2), link)
    assert link.is_symlink() and len(list(real.glob("*.yaml"))) == 3


def test_a_failed_write_leaves_the_previous_render(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "deploy"
    write.write_directory(_objects(3), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_write = os.write
    count = [0]

    def failing(fd: int, data: Any) -> int:
        count[0] += 1
        if count[0] == 3:
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", failing)
    with pytest.raises(OSError, match="No space left"):
        write.write_directory(_objects(6), out)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deploy"]  # the half-written one removed


def test_a_crashed_write_is_swept_by_the_next(tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    (tmp_path / ".deploy.0123456789ab.tmp").mkdir()
    (tmp_path / ".deploy.0123456789ab.tmp" / "000-x.yaml").write_text("half")
    write.write_directory(_objects(1), out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deploy"]
