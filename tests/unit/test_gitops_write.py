"""How `render gitops` writes its directory: only changed files, stale files it owns removed (and their
empty directories), a marker that cannot make it touch anything outside, a foreign directory refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackctl.errors import InputError, OperationError
from stackctl.kubernetes import gitops


def write(out: Path, texts: dict[str, str]) -> gitops.Outcome:
    files = gitops.Files()
    for rel, text in texts.items():
        files.add(rel, text)
    return gitops._write_outcome(out, files, gitops._previous(out, str(out)), [], ["p"])


def test_only_changed_files_are_written_and_stale_ones_removed(tmp_path: Path) -> None:
    out = tmp_path / "gitops"
    first = write(out, {"base/a.yaml": "a\n", "overlays/p/patches/x.yaml": "x\n"})
    assert first.written == ["base/a.yaml", "overlays/p/patches/x.yaml"]
    stamp = (out / "base/a.yaml").stat().st_mtime_ns
    second = write(out, {"base/a.yaml": "a\n"})
    assert second.written == [] and second.unchanged == 1
    assert second.removed == ["overlays/p/patches/x.yaml"]
    assert not (out / "overlays").exists()  # emptied directories go too
    assert (out / "base/a.yaml").stat().st_mtime_ns == stamp


def test_a_tampered_marker_cannot_remove_files_outside(tmp_path: Path) -> None:
    out = tmp_path / "gitops"
    write(out, {"base/a.yaml": "a\n"})
    outside = tmp_path / "keep.txt"
    outside.write_text("mine\n")
    marker = out / gitops.MARKER
    marker.write_text(json.dumps({"files": ["../keep.txt", str(outside), gitops.MARKER, "base/a.yaml"]}))
    result = write(out, {"base/b.yaml": "b\n"})
    assert result.removed == ["base/a.yaml"]
    assert outside.read_text() == "mine\n" and marker.is_file()


def test_a_directory_stackctl_did_not_write_is_refused(tmp_path: Path) -> None:
    (tmp_path / "gitops").mkdir()
    (tmp_path / "gitops" / "other.yaml").write_text("x: 1\n")
    with pytest.raises(InputError, match="is not empty and was not written by `stackctl render gitops`"):
        gitops._previous(tmp_path / "gitops", "gitops")


def test_two_objects_on_one_path_are_an_error() -> None:
    files = gitops.Files()
    files.add("base/a.yaml", "1")
    with pytest.raises(OperationError, match=r"two objects would be written to base/a\.yaml"):
        files.add("base/a.yaml", "2")
