"""The dev loop's watcher: which directories it watches, and that rapid edits come as one batch
(watchfiles on a temp dir; the edits are made by a thread once the watcher says it is ready)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from stackctl.dev.rules import WatchRule
from stackctl.dev.watcher import Batch, batches, roots


def sync_rule(path: Path, ignore: tuple[str, ...] = ()) -> WatchRule:
    return WatchRule(service="api", action="sync", path=path, target="/app", ignore=ignore)


def test_roots_are_the_rule_paths_none_inside_another(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "c").mkdir()
    rules = [sync_rule(tmp_path / "a" / "b"), sync_rule(tmp_path / "a"), sync_rule(tmp_path / "c")]
    assert roots(rules) == (tmp_path / "a", tmp_path / "c")


def test_a_missing_path_is_watched_through_its_nearest_parent(tmp_path: Path) -> None:
    assert roots([sync_rule(tmp_path / "not" / "yet")]) == (tmp_path,)


def collect(rules: list[WatchRule], edit: Callable[[], None], *, quiet: float = 0.3) -> list[Batch]:
    """The batches seen while `edit` runs in a thread, started once the watcher says it is ready,
    until 1.5 s after it returns (more than the quiet window: a late batch would be seen)."""
    stop = threading.Event()
    out: list[Batch] = []

    def run() -> None:
        try:
            edit()
        finally:
            time.sleep(1.5)
            stop.set()

    thread = threading.Thread(target=run)
    try:
        out.extend(batches(rules, stop, quiet=quiet, max_wait=5.0, on_ready=thread.start))
    finally:
        stop.set()
        if thread.ident is not None:
            thread.join()
    return out


def test_rapid_edits_are_one_batch_and_fire_the_rule_once(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "old.txt").write_text("x")
    rule = sync_rule(src)

    def edit() -> None:
        for i in range(30):
            (src / f"f{i:02}.txt").write_text(str(i))
        (src / "f00.txt").write_text("again")
        (src / "old.txt").unlink()

    seen = collect([rule], edit)
    assert len(seen) == 1
    (change,) = seen[0].changes
    assert change.rule == rule
    assert change.paths == tuple(sorted([src / f"f{i:02}.txt" for i in range(30)] + [src / "old.txt"]))


def test_changes_no_rule_fires_for_make_no_batch(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    rule = sync_rule(src, ignore=("*.log",))

    def edit() -> None:
        (src / "a.log").write_text("x")
        (src / ".a.py.swp").write_text("x")
        (tmp_path / "elsewhere.txt").write_text("x")

    assert collect([rule], edit) == []
