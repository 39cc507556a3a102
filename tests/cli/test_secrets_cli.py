"""`stackctl secrets ...` through the real CLI (in-process), plus crash and concurrency runs as real
processes (`.venv/bin/stackctl`): kill -9 at random points, parallel writers on one store."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stackctl.profile import load_profile
from stackctl.secrets import secret_values
from stackctl.secrets import store as st

STACKCTL = Path(sys.executable).parent / "stackctl"

TEMPLATE = """
# @secret password:24
DB_PASSWORD=
# @secret hex:32
JWT_SECRET=
# @secret ed25519
SIGNING_KEY=
# @public SIGNING_KEY
SIGNING_PUBLIC=
# @secret
STRIPE_KEY=
LOG_LEVEL=info
"""


@pytest.fixture
def proj(project):
    project.write("compose.yaml", """
        services:
          api:
            image: busybox
            environment:
              DB_PASSWORD: ${DB_PASSWORD:?}
              JWT_SECRET: ${JWT_SECRET}
          db:
            image: busybox
            environment:
              POSTGRES_PASSWORD: ${DB_PASSWORD}
    """)
    project.write(".env.example", TEMPLATE)
    project.profile("local", "compose:\n  files: [compose.yaml]\n")
    project.profile("production", "compose:\n  files: [compose.yaml]\nsecrets:\n  history: 3\n")
    return project


def values(root: Path, profile: str = "local") -> dict[str, str]:
    return secret_values(load_profile(root, profile))


def test_command_modules_import_nothing_heavy() -> None:
    code = ("import sys, stackctl.cli.secrets, stackctl.cli.env, stackctl.secrets\n"
            "print(sorted(m for m in ('cryptography', 'yaml', 'rich') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_generate_list_show_history(proj, cli) -> None:
    res = cli("secrets", "generate")
    assert res.exit_code == 0, res
    assert "created your private key" in res.stderr and "created .stackctl/secrets/local.json" in res.stderr
    assert "no generator for STRIPE_KEY: set them with `stackctl secrets set NAME -p local`" in res.stderr
    rows = {r["name"]: r for r in json.loads(cli("secrets", "generate", "-o", "json").stdout)}
    assert rows["DB_PASSWORD"]["action"] == "kept" and rows["STRIPE_KEY"]["action"] == "missing"

    listed = json.loads(cli("secrets", "list", "-o", "json").stdout)
    by = {r["name"]: r for r in listed}
    assert by["DB_PASSWORD"]["type"] == "password:24" and by["DB_PASSWORD"]["version"] == 1
    assert by["STRIPE_KEY"]["status"] == "missing" and by["SIGNING_PUBLIC"]["status"] == "derived"
    assert set(by["JWT_SECRET"]) == {"name", "type", "version", "versions", "age", "updated", "origin", "status"}

    text = cli("secrets", "list").stdout
    assert "DB_PASSWORD" in text and "password:24" in text

    res = cli("secrets", "rotate", "JWT_SECRET")
    assert res.exit_code == 0 and "was v1" in res.stdout
    assert "next: `stackctl up -p local` (what uses them: api)" in res.stderr
    hist = json.loads(cli("secrets", "history", "JWT_SECRET", "-o", "json").stdout)
    assert [(h["version"], h["current"], h["origin"]) for h in hist] == [(2, True, "rotate"), (1, False, "generate")]


def test_set_reads_stdin_and_show_reveals_only_with_flag(proj, cli) -> None:
    assert cli("secrets", "init").exit_code == 0
    res = cli("secrets", "set", "STRIPE_KEY", input="sk_test_abc123\n")
    assert res.exit_code == 0, res
    shown = cli("secrets", "show", "STRIPE_KEY")
    assert "sk_test_abc123" not in shown.stdout + shown.stderr and "STRIPE_KEY" in shown.stdout
    revealed = cli("secrets", "show", "STRIPE_KEY", "--reveal")
    assert revealed.stdout == "sk_test_abc123\n"
    assert cli("secrets", "set", "LOG_LEVEL", input="x").exit_code == 2  # config, not a secret
    res = cli("secrets", "set", "SIGNING_KEY", input="not a key")
    assert res.exit_code == 2 and "must be a PEM private key (ed25519)" in res.stderr
    assert "not a key" not in res.stderr


def test_rollback_and_history_cap(proj, cli) -> None:
    cli("secrets", "generate", "-p", "production")
    for _ in range(4):
        assert cli("secrets", "rotate", "--all", "-p", "production").exit_code == 0
    hist = json.loads(cli("secrets", "history", "DB_PASSWORD", "-p", "production", "-o", "json").stdout)
    assert [h["version"] for h in hist] == [5, 4, 3]  # history: 3 in the profile
    path = proj.root / ".stackctl/secrets/production.json"
    v4 = st.load(path, "production").value("DB_PASSWORD", 4)
    assert values(proj.root, "production")["DB_PASSWORD"] != v4
    res = cli("secrets", "rollback", "DB_PASSWORD", "-p", "production")
    assert res.exit_code == 0 and "value of v4, was v5" in res.stdout
    assert values(proj.root, "production")["DB_PASSWORD"] == v4
    res = cli("secrets", "rollback", "DB_PASSWORD", "--to", "1", "-p", "production")
    assert res.exit_code == 2 and "DB_PASSWORD has no version 1 (kept: 6, 5, 4)" in res.stderr


def test_rotate_usage_errors(proj, cli) -> None:
    cli("secrets", "generate")
    res = cli("secrets", "rotate")
    assert res.exit_code == 2 and "name the secrets to rotate, or pass --all" in res.stderr
    cli("secrets", "set", "STRIPE_KEY", input="x-y-z")
    res = cli("secrets", "rotate", "STRIPE_KEY")
    assert res.exit_code == 2 and "STRIPE_KEY has no generator to rotate with" in res.stderr
    res = cli("secrets", "rotate", "--all", "-o", "json")
    assert {r["name"]: r["action"] for r in json.loads(res.stdout)}["STRIPE_KEY"] == "skipped"


def test_recipients_and_rekey(proj, cli, tmp_path: Path) -> None:
    cli("secrets", "generate")
    before = values(proj.root)
    teammate_home = tmp_path / "teammate"
    env = {"XDG_CONFIG_HOME": str(teammate_home)}
    res = cli("secrets", "keygen", "--name", "bob", env=env)
    assert res.exit_code == 0
    bob_pub = res.stdout.strip()
    assert bob_pub.startswith("stackctl-pub-1:")
    res = cli("secrets", "show", "DB_PASSWORD", "--reveal", env=env)
    assert res.exit_code == 1 and "none of your keys is a recipient of this store" in res.stderr
    assert cli("secrets", "recipients", "add", "bob", bob_pub).exit_code == 0
    assert cli("secrets", "show", "DB_PASSWORD", "--reveal", env=env).stdout.strip() == before["DB_PASSWORD"]
    listed = json.loads(cli("secrets", "recipients", "list", "-o", "json").stdout)
    assert [r["name"] for r in listed if r["you"]] != [] and "bob" in [r["name"] for r in listed]

    res = cli("secrets", "rekey")
    assert res.exit_code == 0 and "new data key k2 (was k1)" in res.stderr
    assert values(proj.root) == before
    assert cli("secrets", "verify", env=env).exit_code == 0  # bob still gets in after the rekey

    res = cli("secrets", "recipients", "remove", "bob")
    assert res.exit_code == 0 and "renewed the data key" in res.stderr
    assert cli("secrets", "verify", env=env).exit_code == 1


def test_missing_store_and_tampering_are_clear_errors(proj, cli) -> None:
    res = cli("secrets", "verify")
    assert res.exit_code == 1
    assert "Error: .stackctl/secrets/local.json: no secrets store for profile 'local' yet" in res.stderr
    cli("secrets", "generate")
    store = proj.root / ".stackctl/secrets/local.json"
    data = json.loads(store.read_text())
    data["secrets"]["JWT_SECRET"], data["secrets"]["DB_PASSWORD"] = (data["secrets"]["DB_PASSWORD"],
                                                                     data["secrets"]["JWT_SECRET"])
    store.write_text(json.dumps(data))
    tampered = store.read_bytes()
    for args in (("verify",), ("rotate", "--all"), ("show", "JWT_SECRET", "--reveal"), ("generate", "--force")):
        res = cli("secrets", *args)
        assert res.exit_code == 1, (args, res)
        assert "integrity check failed" in res.stderr, res.stderr
        assert store.read_bytes() == tampered  # nothing written
    res = cli("env", "render")
    assert res.exit_code == 1 and not (proj.root / ".env").exists()


def test_no_value_in_any_output_without_reveal(proj, cli) -> None:
    outputs = []

    def run(*args: str, input: str | None = None) -> None:
        res = cli(*args, input=input)
        outputs.append(res.stdout + res.stderr)

    run("secrets", "generate")
    run("secrets", "set", "STRIPE_KEY", input="sk_live_0123456789abcdef")
    run("secrets", "rotate", "DB_PASSWORD")
    for fmt in ("text", "json", "yaml"):
        run("secrets", "list", "-o", fmt)
        run("secrets", "show", "DB_PASSWORD", "-o", fmt)
        run("secrets", "history", "DB_PASSWORD", "-o", fmt)
        run("secrets", "verify", "-o", fmt)
        run("env", "check", "-o", fmt)
        run("env", "render", "--dry-run", "-o", fmt)
    run("env", "render")
    run("secrets", "rollback", "DB_PASSWORD")
    run("secrets", "rekey")
    run("secrets", "recipients", "list")
    run("secrets", "generate", "--force")
    run("secrets", "import")
    current = values(proj.root)
    store = st.load(proj.root / ".stackctl/secrets/local.json", "local")
    every = {store.value(n, v.v) for n in store.names for v in store.entry(n).versions} | set(current.values())
    blob = "\n".join(outputs)
    assert "STRIPE_KEY" in blob and "DB_PASSWORD" in blob
    for value in every:
        pieces = [ln for ln in value.splitlines() if len(ln) >= 8 and not ln.startswith("-----")] or [value]
        for piece in pieces:
            assert piece not in blob


# --- real processes ------------------------------------------------------------------------------
def _env(proj_root: Path, home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "NO_COLOR": "1",
                "STACKCTL_PROJECT_DIR": str(proj_root)})
    env.pop("STACKCTL_SECRET_KEY", None)
    return env


def _state(path: Path) -> dict[str, tuple[int, str]]:
    s = st.load(path, "local")
    s.verify_all()  # the store opens, its MAC holds, every kept version decrypts
    return {n: (s.entry(n).current, s.value(n)) for n in s.names}


@pytest.mark.parametrize("command", [("secrets", "rotate", "--all"), ("secrets", "generate", "--force"),
                                     ("secrets", "rekey")])
def test_kill_9_at_random_points_leaves_old_or_new_state(proj, isolated_env: Path, command) -> None:
    """~20 trials per command in the suite; bench/secrets_crash.py runs hundreds."""
    template = "".join(f"# @secret hex:32\nK{i:02d}=\n" for i in range(40))
    proj.write(".env.example", template)
    env = _env(proj.root, isolated_env)
    subprocess.run([str(STACKCTL), "secrets", "generate"], env=env, check=True, capture_output=True)
    path = proj.root / ".stackctl/secrets/local.json"
    t0 = time.perf_counter()
    subprocess.run([str(STACKCTL), *command], env=env, check=True, capture_output=True)
    duration = time.perf_counter() - t0
    rng = random.Random(1234)
    outcomes = {"old": 0, "new": 0}
    for _ in range(7):
        old = _state(path)
        old_key = json.loads(path.read_text())["active_key"]
        proc = subprocess.Popen([str(STACKCTL), *command], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 1.1) * duration)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        now = _state(path)
        if command[1] == "rekey":
            assert {n: v for n, (_, v) in now.items()} == {n: v for n, (_, v) in old.items()}
            changed = json.loads(path.read_text())["active_key"] != old_key
        else:
            rotated = {n for n in now if now[n] != old[n]}
            assert rotated in (set(), set(old)), "a partial rotation was written"
            changed = bool(rotated)
            if changed:
                assert all(now[n][0] == old[n][0] + 1 for n in old)
        outcomes["new" if changed else "old"] += 1
    assert sum(outcomes.values()) == 7


def test_parallel_rotate_generate_set_are_serialized(proj, isolated_env: Path) -> None:
    env = _env(proj.root, isolated_env)
    subprocess.run([str(STACKCTL), "secrets", "generate"], env=env, check=True, capture_output=True)
    subprocess.run([str(STACKCTL), "secrets", "set", "STRIPE_KEY"], env=env, input=b"v0", check=True,
                   capture_output=True)
    path = proj.root / ".stackctl/secrets/local.json"
    rotations, generations, sets = 4, 2, 4
    procs = [subprocess.Popen([str(STACKCTL), "secrets", "rotate", "DB_PASSWORD", "JWT_SECRET"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(rotations)]
    procs += [subprocess.Popen([str(STACKCTL), "secrets", "generate", "--force"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(generations)]
    setters = [subprocess.Popen([str(STACKCTL), "secrets", "set", "STRIPE_KEY"], env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(sets)]
    for i, p in enumerate(setters):
        p.stdin.write(f"value-{i}".encode())  # type: ignore[union-attr]
        p.stdin.close()  # type: ignore[union-attr]
    for p in procs + setters:
        assert p.wait(timeout=60) == 0, p.stderr.read()  # type: ignore[union-attr]
    s = st.load(path, "local")
    # no lost update: every rotation, generation and set got its own version
    assert s.entry("DB_PASSWORD").current == 1 + rotations + generations
    assert s.entry("JWT_SECRET").current == 1 + rotations + generations
    assert s.entry("SIGNING_KEY").current == 1 + generations
    assert s.entry("STRIPE_KEY").current == 1 + sets
    assert sorted(v.v for v in s.entry("DB_PASSWORD").versions) == list(range(1, rotations + generations + 2))
    assert {s.value("STRIPE_KEY", v) for v in range(2, sets + 2)} == {f"value-{i}" for i in range(sets)}
    assert len({s.value("DB_PASSWORD", v.v) for v in s.entry("DB_PASSWORD").versions}) == 1 + rotations + generations


def test_parallel_first_runs_make_one_key_and_one_store(proj, isolated_env: Path) -> None:
    """Two teammates' worth of first commands at once on a fresh checkout: nobody is locked out."""
    env = _env(proj.root, isolated_env)
    procs = [subprocess.Popen([str(STACKCTL), "secrets", "generate"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) for _ in range(4)]
    for p in procs:
        assert p.wait(timeout=60) == 0, p.stderr.read()  # type: ignore[union-attr]
    keys_dir = isolated_env / ".config" / "stackctl" / "keys"
    assert [k.name for k in keys_dir.glob("*.key")] == ["default.key"]
    s = st.load(proj.root / ".stackctl/secrets/local.json", "local")
    assert s.entry("DB_PASSWORD").current == 1 and len(s.doc.recipients) == 1
    s.verify_all()
