"""The local dev loop without an engine: the archive a sync sends, and the order of actions per batch
(Compose's: rebuild, sync, restart, exec; a failed build stops the rest for that service)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from stackctl.dev.local import LocalLoop, Step, archive
from stackctl.dev.rules import Change, WatchRule
from stackctl.dev.watcher import Batch


def rule(path: Path, action: str = "sync", index: int = 0, **kw: Any) -> WatchRule:
    return WatchRule(service="api", action=action, path=path, target="/app" if "sync" in action else None,
                     index=index, where=f"compose.yaml: services.api.develop.watch[{index}]", **kw)


def names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getnames()


def test_archive_names_files_by_their_container_path_and_skips_ignored_ones_in_a_directory(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("a")
    (tmp_path / "pkg" / "node_modules").mkdir(parents=True)
    (tmp_path / "pkg" / "b.py").write_text("b")
    (tmp_path / "pkg" / "b.pyc").write_text("c")
    (tmp_path / "pkg" / "node_modules" / "x.js").write_text("x")
    r = rule(tmp_path, ignore=("**/node_modules", "**/*.pyc"))
    data, count = archive({"/app/a.py": (tmp_path / "a.py", r), "/app/pkg": (tmp_path / "pkg", r)})
    assert names(data) == ["app/a.py", "app/pkg", "app/pkg/b.py"]
    assert count == 2  # files; the directory entry is not counted


def test_archive_keeps_the_content(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello")
    data, _ = archive({"/app/a.txt": (tmp_path / "a.txt", rule(tmp_path))})
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.extractfile("app/a.txt")
        assert member is not None and member.read() == b"hello"


class Recorder(LocalLoop):
    """The loop with its actions recorded instead of run (no engine)."""

    def __init__(self, fail: frozenset[str] = frozenset()) -> None:
        self.calls: list[str] = []
        self.fail = fail
        self.steps: list[Step] = []
        self.on_step = self.steps.append

    def _rebuild(self, service: str, began: float) -> Any:
        self.calls.append("rebuild")
        return ("built", (), "rebuild" not in self.fail, ())

    def _sync(self, service: str, changes: Any, began: float) -> Any:
        self.calls.append("sync:" + ",".join(str(c.rule.index) for c in changes))
        return ("synced", (), True, ())

    def _restart(self, service: str, began: float) -> Any:
        self.calls.append("restart")
        return ("restarted", (), True, ())

    def _exec(self, service: str, change: Change, began: float) -> Any:
        self.calls.append(f"exec:{change.rule.index}")
        return ("ran", (), True, ())


def batch(tmp_path: Path, *rules: WatchRule) -> Batch:
    return Batch(tuple(Change(r, (tmp_path / "f",)) for r in rules), (tmp_path / "f",), 0.0)


def test_one_batch_runs_rebuild_sync_restart_exec_in_that_order(tmp_path: Path) -> None:
    loop = Recorder()
    loop.handle(batch(tmp_path, rule(tmp_path, "sync+exec", 3, exec_command=("true",)),
                      rule(tmp_path, "sync+restart", 2), rule(tmp_path, "sync", 0),
                      rule(tmp_path, "rebuild", 1)))
    assert loop.calls == ["rebuild", "sync:3,2,0", "restart", "exec:3"]
    assert [s.action for s in loop.steps] == ["rebuild", "sync", "restart", "exec"]
    assert loop.steps[1].where == tuple(f"compose.yaml: services.api.develop.watch[{i}]" for i in (3, 2, 0))


def test_a_failed_build_stops_the_services_other_actions(tmp_path: Path) -> None:
    loop = Recorder(fail=frozenset({"rebuild"}))
    loop.handle(batch(tmp_path, rule(tmp_path, "rebuild", 1), rule(tmp_path, "sync", 0)))
    assert loop.calls == ["rebuild"]
    assert not loop.steps[0].ok


@pytest.mark.parametrize("action", ["restart", "sync+restart"])
def test_restart_once_per_batch(tmp_path: Path, action: str) -> None:
    loop = Recorder()
    loop.handle(batch(tmp_path, rule(tmp_path, action, 0), rule(tmp_path, "restart", 1)))
    assert loop.calls.count("restart") == 1


def test_a_failing_action_is_a_failed_step_and_the_loop_goes_on(tmp_path: Path) -> None:
    from stackctl.errors import OperationError

    class Broken(Recorder):
        def _sync(self, service: str, changes: Any, began: float) -> Any:
            raise OperationError("no running container of api: nothing synced")

    loop = Broken()
    steps = loop.handle(batch(tmp_path, rule(tmp_path, "sync", 0)))
    assert [s.ok for s in steps] == [False]
    assert "no running container" in steps[0].line() and "FAILED" in steps[0].line()
