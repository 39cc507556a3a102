"""The store's edges through the CLI: metadata from an unverified store never reaches the terminal raw."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def proj(project):
    project.write("compose.yaml", "services:\n  api:\n    image: busybox\n")
    project.write(".env.example", "# @secret hex:32\nJWT_SECRET=\n")
    project.profile("local", "compose:\n  files: [compose.yaml]\n")
    return project


def test_escape_sequences_in_store_metadata_are_printed_escaped(proj, cli, tmp_path) -> None:
    assert cli("secrets", "generate").exit_code == 0
    store = proj.root / ".stackctl/secrets/local.json"
    data = json.loads(store.read_text())
    entry = data["secrets"]["JWT_SECRET"]
    entry["type"] = "hex:32\x1b[2J\x1b]0;owned\x07"
    entry["versions"][0]["origin"] = "generate\x9b31m"
    entry["versions"][0]["created"] = "2026\x1b[1A"
    store.write_text(json.dumps(data))
    nokey = {"XDG_CONFIG_HOME": str(tmp_path / "nobody")}  # unverified: no key for this store
    for args in (("secrets", "list"), ("secrets", "history", "JWT_SECRET"), ("secrets", "show", "JWT_SECRET"),
                 ("secrets", "list", "-o", "json"), ("secrets", "history", "JWT_SECRET", "-o", "yaml")):
        res = cli(*args, env=nokey)
        assert res.exit_code == 0, (args, res.stderr)
        out = res.stdout + res.stderr
        assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out, args
        assert "\\x" in out, (args, out)  # shown, escaped


def test_a_store_put_back_to_an_older_copy_is_a_warning(proj, cli) -> None:
    assert cli("secrets", "generate").exit_code == 0
    store = proj.root / ".stackctl/secrets/local.json"
    old_copy = store.read_text()
    assert cli("secrets", "rotate", "JWT_SECRET").exit_code == 0
    store.write_text(old_copy)  # `git checkout HEAD~ -- .stackctl/secrets/local.json`
    res = cli("secrets", "list", "-o", "json")
    assert res.exit_code == 0 and json.loads(res.stdout)[0]["version"] == 1  # stdout stays data
    assert "Warning:" in res.stderr and "an older copy was put back" in res.stderr
    assert cli("secrets", "rotate", "JWT_SECRET").exit_code == 0
    assert json.loads(cli("secrets", "list", "-o", "json").stdout)[0]["version"] == 3  # v2 existed: not reused
