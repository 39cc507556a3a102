"""`develop.watch` rules: parsed from the Compose JSON as Compose resolves it, bad rules named by field,
and which changed paths fire which rule (ignore/include relative to the rule's path, the build context's
.dockerignore, editors' temp files, .git) — Compose's matching (pure, a temp dir only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackctl import model as m
from stackctl.compose.loader import to_model
from stackctl.dev.rules import Change, WatchRule, fired, initial_files, read_ignore_file, watch_plan, watch_rules
from stackctl.errors import ComposeFileError


def stack(tmp: Path, watch: list[dict[str, Any]], **svc: Any) -> m.Stack:
    """The model of a one-service project as `docker compose config --format json` prints it."""
    service: dict[str, Any] = {"build": {"context": str(tmp), "dockerfile": "Dockerfile"}, "image": "x",
                               "develop": {"watch": watch}}
    service.update(svc)
    return to_model({"name": "p", "services": {"api": service}})


def rule(tmp: Path, **kw: Any) -> WatchRule:
    entry: dict[str, Any] = {"action": "sync", "path": str(tmp / "src"), "target": "/app/src",
                             "exec": {"command": None}}
    entry.update(kw)
    (rules,) = [watch_rules(stack(tmp, [entry]))]
    assert len(rules) == 1
    return rules[0]


def test_every_field_is_read_in_compose_order(tmp_path: Path) -> None:
    s = stack(tmp_path, [
        {"action": "sync", "path": str(tmp_path / "src"), "target": "/app/src", "ignore": ["node_modules/"],
         "initial_sync": True, "exec": {"command": None}},
        {"action": "rebuild", "path": str(tmp_path / "package.json"), "exec": {"command": None}},
        {"action": "sync+exec", "path": str(tmp_path / "x"), "target": "/x",
         "exec": {"command": ["kill", "-HUP", "1"], "user": "root", "working_dir": "/w",
                  "environment": {"A": "1"}}},
        {"action": "sync+restart", "path": str(tmp_path / "cfg"), "target": "/etc/cfg", "include": ["*.conf"],
         "exec": {"command": None}},
        {"action": "restart", "path": str(tmp_path / "r"), "exec": {"command": None}},
    ])
    rules = watch_rules(s)
    assert [r.action for r in rules] == ["sync", "rebuild", "sync+exec", "sync+restart", "restart"]
    assert rules[0].ignore == ("node_modules/",) and rules[0].initial_sync and rules[0].target == "/app/src"
    assert rules[2].exec_command == ("kill", "-HUP", "1") and rules[2].exec_user == "root"
    assert rules[2].exec_working_dir == "/w" and rules[2].exec_environment == (("A", "1"),)
    assert rules[3].include == ("*.conf",)
    assert [r.where for r in rules] == [f"services.api.develop.watch[{i}]" for i in range(5)]
    assert all(r.service == "api" for r in rules)


def test_where_names_the_compose_file_that_sets_the_rules(tmp_path: Path) -> None:
    base = tmp_path / "compose.yaml"
    base.write_text("services:\n  api:\n    image: x\n")
    override = tmp_path / "compose.override.yaml"
    override.write_text("services:\n  api:\n    develop:\n      watch:\n        - {action: restart, path: ./r}\n")
    s = stack(tmp_path, [{"action": "restart", "path": str(tmp_path / "r"), "exec": {"command": None}}])
    (r,) = watch_rules(s, files=[base, override], root=tmp_path)
    assert r.where == "compose.override.yaml: services.api.develop.watch[0]"


@pytest.mark.parametrize(("entry", "field", "words"), [
    ({"action": "sync", "path": "/p/src"}, "services.api.develop.watch[0].target", "needs a target"),
    ({"action": "sync+restart", "path": "/p/src"}, "services.api.develop.watch[0].target", "needs a target"),
    ({"action": "sync+exec", "path": "/p/src", "target": "/a", "exec": {"command": None}},
     "services.api.develop.watch[0].exec.command", "needs a command"),
    ({"action": "sync", "path": "/p/src", "target": "/a", "ignore": ["ok", "[a-"]},
     "services.api.develop.watch[0].ignore[1]", "bad pattern"),
    ({"action": "sync", "path": "/p/src", "target": "/a", "include": ["[z-a]"]},
     "services.api.develop.watch[0].include[0]", "bad pattern"),
    ({"action": "bogus", "path": "/p/src"}, "services.api.develop.watch[0].action", "unknown action"),
])
def test_a_bad_rule_is_an_error_naming_its_field(tmp_path: Path, entry: dict[str, Any], field: str,
                                                 words: str) -> None:
    with pytest.raises(ComposeFileError) as err:
        watch_rules(stack(tmp_path, [entry]))
    assert err.value.field == field and words in err.value.message


def test_rebuild_without_a_build_section_is_an_error(tmp_path: Path) -> None:
    s = to_model({"name": "p", "services": {"api": {"image": "x", "develop": {"watch": [
        {"action": "rebuild", "path": str(tmp_path)}]}}}})
    with pytest.raises(ComposeFileError) as err:
        watch_rules(s)
    assert err.value.field == "services.api.develop.watch[0].action" and "build" in err.value.message


def test_a_sync_into_a_bind_mount_is_left_out_with_a_warning(tmp_path: Path) -> None:
    s = stack(tmp_path, [{"action": "sync", "path": str(tmp_path / "src" / "a"), "target": "/a"},
                         {"action": "rebuild", "path": str(tmp_path / "src" / "a")}],
              volumes=[{"type": "bind", "source": str(tmp_path / "src"), "target": "/src"}])
    rules, warnings = watch_plan(s)
    assert [r.action for r in rules] == ["rebuild"]
    assert len(warnings) == 1 and "services.api.develop.watch[0]" in warnings[0]
    assert "services.api.volumes[0]" in warnings[0]


def test_a_rule_fires_for_its_path_and_below_only(tmp_path: Path) -> None:
    r = rule(tmp_path)
    src = tmp_path / "src"
    changes = fired([r], [src / "a.py", src / "d" / "b.py", tmp_path / "srcx" / "c.py", tmp_path / "other"])
    assert changes == (Change(r, (src / "a.py", src / "d" / "b.py")),)
    assert fired([r], [tmp_path / "other"]) == ()
    assert r.container_path(src / "d" / "b.py") == "/app/src/d/b.py"
    assert r.container_path(src) == "/app/src"


def test_a_single_file_rule(tmp_path: Path) -> None:
    r = rule(tmp_path, action="rebuild", path=str(tmp_path / "package.json"), target=None)
    assert fired([r], [tmp_path / "package.json"])
    assert not fired([r], [tmp_path / "package.json.bak", tmp_path / "package"])


def test_ignore_patterns_are_relative_to_the_rule_path(tmp_path: Path) -> None:
    r = rule(tmp_path, ignore=["node_modules/", "*.pyc", "!keep.pyc", "build/**/gen", "/top.txt"])
    src = tmp_path / "src"
    kept = [src / "app.py", src / "keep.pyc", src / "sub" / "x.pyc", src / "build" / "x", src / "sub" / "top.txt"]
    dropped = [src / "node_modules" / "a" / "b.js", src / "x.pyc", src / "build" / "gen",
               src / "build" / "a" / "gen" / "f", src / "top.txt"]
    (change,) = fired([r], kept + dropped)
    assert change.paths == tuple(sorted(kept))


def test_include_keeps_only_matching_paths(tmp_path: Path) -> None:
    r = rule(tmp_path, include=["*.conf", "conf.d"])
    src = tmp_path / "src"
    (change,) = fired([r], [src / "a.conf", src / "a.txt", src / "conf.d" / "x", src / "sub" / "b.conf"])
    assert change.paths == (src / "a.conf", src / "conf.d" / "x")


def test_editor_temp_files_and_git_never_fire(tmp_path: Path) -> None:
    r = rule(tmp_path)
    src = tmp_path / "src"
    noise = [src / ".app.py.swp", src / "app.py~", src / ".#app.py", src / "4913", src / ".idea" / "ws.xml",
             src / ".git" / "HEAD", src / "x___jb_tmp___"]
    assert fired([r], noise) == ()


def test_the_build_contexts_dockerignore_applies_to_every_rule(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("# generated\n**/*.log\nsrc/tmp\n/src/cache\n")
    r = rule(tmp_path)
    src = tmp_path / "src"
    (change,) = fired([r], [src / "a.py", src / "x" / "b.log", src / "tmp" / "f", src / "cache" / "f"])
    assert change.paths == (src / "a.py",)


def test_a_dockerfile_specific_ignore_file_wins(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("*.py\n")
    (tmp_path / "Dockerfile.dockerignore").write_text("src/*.txt\n")
    r = rule(tmp_path)
    src = tmp_path / "src"
    (change,) = fired([r], [src / "a.py", src / "a.txt"])
    assert change.paths == (src / "a.py",)


def test_an_allow_list_dockerignore_ignores_nothing_as_in_compose(tmp_path: Path) -> None:
    """`*` then `!src`: Compose keeps only the exceptions, so nothing is ignored."""
    (tmp_path / ".dockerignore").write_text("*\n!src\n")
    r = rule(tmp_path, action="rebuild", path=str(tmp_path / "package.json"), target=None)
    assert fired([r], [tmp_path / "package.json"])


def test_read_ignore_file() -> None:
    assert read_ignore_file("\ufeff# c\n\n  a/  \n!/b\n/c/../d\n #x\n") == ["a", "!b", "d", "#x"]


def test_each_rule_fires_once_with_its_paths_and_several_rules_may_fire(tmp_path: Path) -> None:
    sync = rule(tmp_path)
    rebuild = rule(tmp_path, action="rebuild", path=str(tmp_path), target=None)
    src = tmp_path / "src"
    changes = fired([sync, rebuild], [src / "b.py", src / "a.py", src / "a.py", tmp_path / "Dockerfile"])
    assert changes == (Change(sync, (src / "a.py", src / "b.py")),
                       Change(rebuild, (tmp_path / "Dockerfile", src / "a.py", src / "b.py")))


def test_initial_sync_files_skip_ignored_and_build_files(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for name in ("a.py", "Dockerfile", "compose.yaml", "node_modules/x.js", "d/b.py", "d/c.pyc"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text("x")
    r = rule(tmp_path, ignore=["node_modules", "**/*.pyc"], initial_sync=True)
    assert r.initial_sync
    assert initial_files(r) == (src / "a.py", src / "d" / "b.py")


def test_initial_sync_is_for_sync_and_sync_restart_only(tmp_path: Path) -> None:
    r = rule(tmp_path, action="sync+exec", initial_sync=True, exec={"command": ["true"]})
    assert not r.initial_sync
