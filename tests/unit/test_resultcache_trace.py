"""The trace of the render result cache (stackctl/cli/resultcache.py), in-process: what makes a run
unstorable, what it records, and that every function it replaces is put back — also when the
command raises. tests/cli/test_result_cache.py runs the real program."""

from __future__ import annotations

import builtins
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stackctl.cli import resultcache

REPLACED = [(builtins, "open"), (io, "open"), (os, "open"), (os, "stat"), (os, "lstat"), (os, "access"),
            (os, "readlink"), (os, "scandir"), (os, "listdir"), (os, "urandom")]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "stackctl" / "render-results"


def _record(command: object) -> resultcache._Trace:
    trace = resultcache._Trace()
    with trace.active():
        command()  # type: ignore[operator]
    return trace


def test_everything_replaced_is_put_back(capfd: pytest.CaptureFixture[str]) -> None:
    before = [getattr(owner, name) for owner, name in REPLACED]
    streams = (sys.stdout, sys.stderr)

    def boom() -> None:
        print("partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        _record(boom)
    assert [getattr(owner, name) for owner, name in REPLACED] == before
    assert (sys.stdout, sys.stderr) == streams
    assert "partial" in capfd.readouterr().out  # written through, not swallowed


def test_reads_stats_and_listings_are_recorded(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one")
    (tmp_path / "sub").mkdir()

    def command() -> None:
        (tmp_path / "a.txt").read_text()
        (tmp_path / "missing").exists()
        sorted(p.name for p in tmp_path.iterdir())
        with open(tmp_path / "a.txt", "rb") as fh:
            fh.read()
        os.path.realpath(tmp_path / "sub")

    trace = _record(command)
    kinds = {(kind, Path(name).name) for kind, name in trace.questions}
    assert {("read", "a.txt"), ("stat", "missing"), ("list", tmp_path.name)} <= kinds
    assert trace.questions[("stat", str(tmp_path / "missing"))] == ("error", 2)
    assert not trace.tainted


@pytest.mark.parametrize("action", ["write", "append", "os-write", "create", "random"])
def test_what_taints_a_run(tmp_path: Path, action: str) -> None:
    target = tmp_path / "f"
    target.write_text("x")

    def command() -> None:
        if action == "write":
            target.write_text("y")
        elif action == "append":
            with open(target, "a") as fh:
                fh.write("y")
        elif action == "os-write":
            os.close(os.open(target, os.O_WRONLY))
        elif action == "create":
            os.close(os.open(tmp_path / "new.lock", os.O_RDONLY | os.O_CREAT, 0o600))
        elif action == "random":
            os.urandom(4)

    assert _record(command).tainted


def test_an_existing_lock_file_does_not_taint(tmp_path: Path) -> None:
    from stackctl.fsutil import file_lock

    lock = tmp_path / "x.lock"
    lock.touch()

    def command() -> None:
        with file_lock(lock):
            pass

    trace = _record(command)
    assert not trace.tainted
    assert ("lstat", str(lock)) in trace.questions


def test_a_child_process_a_failure_or_a_write_is_not_stored(cache: Path) -> None:
    args = ["render", "kubernetes", "--profile", "x"]

    def child() -> int:
        subprocess.run(["true"], check=True)
        return 0

    assert resultcache.record(args, child) == 0
    assert resultcache.record(args, lambda: 2) == 2
    assert not cache.exists()
    assert resultcache.record(args, lambda: 0) == 0
    assert len(list(cache.glob("*.bin"))) == 1
    entry = next(cache.glob("*.bin"))
    assert entry.stat().st_mode & 0o777 == 0o600 and cache.stat().st_mode & 0o777 == 0o700


def test_replay_writes_what_was_recorded_and_checks_the_inputs(cache: Path, tmp_path: Path,
                                                              capfd: pytest.CaptureFixture[str]) -> None:
    args = ["render", "kubernetes", "--profile", "y"]
    source = tmp_path / "input.txt"
    source.write_text("v1")

    def command() -> int:
        sys.stdout.write(f"out {source.read_text()}\n")
        sys.stderr.write("note: err\n")
        return 0

    assert resultcache.record(args, command) == 0
    capfd.readouterr()
    assert resultcache.replay(args) == 0
    assert capfd.readouterr() == ("out v1\n", "note: err\n")
    source.write_text("v2")
    assert resultcache.replay(args) is None
    assert capfd.readouterr() == ("", "")
    assert resultcache.replay([*args, "-o", "json"]) is None  # another command line: another entry


def test_entries_are_bounded(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resultcache, "MAX_ENTRIES", 3)
    for i in range(5):
        assert resultcache.record(["render", "kubernetes", "-p", f"p{i}"], lambda: 0) == 0
    assert len(list(cache.glob("*.bin"))) == 3
    assert resultcache.replay(["render", "kubernetes", "-p", "p4"]) == 0  # the newest are kept
    assert resultcache.replay(["render", "kubernetes", "-p", "p0"]) is None
    monkeypatch.setattr(resultcache, "MAX_OUTPUT", 10)

    def loud() -> int:
        sys.stdout.write("x" * 11)
        return 0

    assert resultcache.record(["render", "kubernetes", "-p", "big"], loud) == 0
    assert resultcache.replay(["render", "kubernetes", "-p", "big"]) is None


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip", "shape"])
def test_a_damaged_entry_is_a_miss(cache: Path, damage: str, capfd: pytest.CaptureFixture[str]) -> None:
    import marshal

    args = ["render", "kubernetes", "-p", "damaged"]

    def command() -> int:
        sys.stdout.write("manifests\n")
        return 0

    assert resultcache.record(args, command) == 0
    entry = next(cache.glob("*.bin"))
    data = entry.read_bytes()
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "garbage":
        data = resultcache.MAGIC + b"\x00garbage"
    elif damage == "flip":
        data = data[:-1] + bytes([data[-1] ^ 1])
    else:
        data = resultcache.MAGIC + marshal.dumps((b"salt", b"print", ((1, 2),), b"sealed"))
    entry.write_bytes(data)
    capfd.readouterr()
    assert resultcache.replay(args) is None
    assert capfd.readouterr() == ("", "")
