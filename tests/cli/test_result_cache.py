"""The result cache of `render kubernetes` (stackctl/cli/resultcache.py, issue 15), through the real
program (`python -m stackctl`, which is what replays) and the real Compose.

A replayed render must be exactly what running it gives: the same stdout, stderr and exit code, for
every input a render reads. A stale replay is the worst bug this cache can have, so every test
compares a cached run with a run of the same command with the cache off (`STACKCTL_RESULT_CACHE=0`),
and checks the cache was really used (an entry replayed is not rewritten: its inode stays)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

COMPOSE = """\
services:
  web:
    extends:
      file: base.yaml
      service: base
    image: nginx:1.27
    ports: ["8080:80"]
    env_file: [app.env]
    environment:
      GREETING: ${GREETING:-hello}
      DB_PASSWORD: ${DB_PASSWORD}
    volumes:
      - ./conf/app.conf:/etc/app/app.conf:ro
      - ./conf.d:/etc/app/conf.d:ro
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: ${DB_PASSWORD}
"""
FILES = {
    "compose.yaml": COMPOSE,
    "base.yaml": "services:\n  base:\n    environment:\n      FROM_BASE: base-1\n",
    "app.env": "FROM_ENV_FILE=envfile-1\n",
    ".env": "DB_PASSWORD=s3cret-pw-123\n",
    "conf/app.conf": "listen 80;\n",
    "conf.d/a.conf": "a=1\n",
    "profiles/local.yaml": "stack: rc\ncompose:\n  files: [compose.yaml]\nkubernetes:\n  namespace: rc\n",
}
SECRET = "s3cret-pw-123"


class Project:
    def __init__(self, root: Path, cache: Path) -> None:
        self.root = root
        self.cache = cache
        for rel, text in FILES.items():
            self.write(rel, text)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("STACKCTL_") and k not in ("GREETING", "DB_PASSWORD", "DOCKER_CONTEXT")}
        self.env["XDG_CACHE_HOME"] = str(cache)

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def run(self, *args: str, cache: bool = True, env: dict[str, str] | None = None,
            merged: bool = False) -> tuple[int, bytes, bytes]:
        full = {**self.env, **(env or {}), "STACKCTL_RESULT_CACHE": "1" if cache else "0"}
        proc = subprocess.run([sys.executable, "-m", "stackctl", "render", "kubernetes", *args], cwd=self.root,
                              env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merged else subprocess.PIPE,
                              timeout=120)
        return proc.returncode, proc.stdout, proc.stderr or b""

    def entries(self) -> dict[str, int]:
        folder = self.cache / "stackctl" / "render-results"
        return {p.name: p.stat().st_ino for p in folder.glob("*.bin")} if folder.is_dir() else {}

    def warm(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, bytes, bytes]:
        """Run until this command is stored (the first run may start Compose: not stored), then once
        more, which must be a replay; its result."""
        for _ in range(3):
            before = self.entries()
            self.run(*args, env=env)
            if self.entries() != before and self.entries():
                break
        stored = self.entries()
        assert stored, "the render was never stored"
        result = self.run(*args, env=env)
        assert self.entries() == stored, "the warm run was not a replay (its entry was rewritten)"
        return result


@pytest.fixture
def proj(tmp_path: Path) -> Project:
    return Project(tmp_path / "proj", tmp_path / "cache")


def test_a_replay_is_the_render(proj: Project) -> None:
    fresh = proj.run(cache=False)
    assert fresh[0] == 0, fresh[2].decode()
    assert proj.warm() == fresh
    # the order of stdout and stderr on one descriptor (2>&1) is kept too
    assert proj.run(merged=True) == proj.run(merged=True, cache=False)
    assert proj.run(merged=True) == proj.run(merged=True, cache=False)
    # other options are other entries
    assert proj.warm("-o", "json") == proj.run("-o", "json", cache=False)
    assert proj.warm("--report") == proj.run("--report", cache=False)


EDITS: dict[str, Callable[[Project], None]] = {
    "compose file": lambda p: p.write("compose.yaml", COMPOSE.replace("nginx:1.27", "nginx:1.28")),
    "extended file": lambda p: p.write("base.yaml", FILES["base.yaml"].replace("base-1", "base-2")),
    "service env_file": lambda p: p.write("app.env", "FROM_ENV_FILE=envfile-2\n"),
    "project .env": lambda p: p.write(".env", "DB_PASSWORD=other-pw-456\nGREETING=from-dotenv\n"),
    "profile": lambda p: p.write("profiles/local.yaml", FILES["profiles/local.yaml"].replace("rc\n", "rc2\n")),
    "bind-mounted file": lambda p: p.write("conf/app.conf", "listen 81;\n"),
    "file added to a bind-mounted directory": lambda p: p.write("conf.d/b.conf", "b=2\n"),
    "file removed from a bind-mounted directory": lambda p: (p.root / "conf.d/a.conf").unlink(),
    "override file appears": lambda p: p.write("compose.override.yaml",
                                               "services:\n  web:\n    environment:\n      EXTRA: x\n"),
    "env template appears": lambda p: p.write(".env.example", "# @secret\nDB_PASSWORD=\nGREETING=hi\n"),
    "compose file broken": lambda p: p.write("compose.yaml", COMPOSE.replace("services:", "services: [")),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edit_is_seen_by_the_next_run(proj: Project, edit: str) -> None:
    before = proj.warm()
    EDITS[edit](proj)
    after = proj.run()
    assert after == proj.run(cache=False)
    assert after != before, f"the edit ({edit}) does not change the render: this test would not see a stale replay"
    assert proj.run() == after  # and again (now perhaps a replay of the new state)


def test_the_environment_and_the_command_line_are_part_of_the_key(proj: Project) -> None:
    plain = proj.warm()
    greeted = proj.run(env={"GREETING": "bonjour"})
    assert greeted == proj.run(env={"GREETING": "bonjour"}, cache=False) and greeted != plain
    assert proj.warm(env={"GREETING": "bonjour"}) == greeted
    assert proj.run() == plain
    other = proj.run("--kube-version", "1.34")
    assert other == proj.run("--kube-version", "1.34", cache=False)


def test_random_edit_sequences(proj: Project) -> None:
    """Edits in random order, several per run or none, each run compared with the cache off."""
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    pool: list[Callable[[Project], None]] = [
        lambda p: p.write("app.env", f"FROM_ENV_FILE=v{rng.randrange(3)}\n"),
        lambda p: p.write("conf/app.conf", f"listen {80 + rng.randrange(3)};\n"),
        lambda p: p.write(f"conf.d/{rng.choice('abc')}.conf", f"x={rng.randrange(3)}\n"),
        lambda p: [f.unlink() for f in sorted((p.root / "conf.d").glob("*.conf"))[:1]],
        lambda p: p.write("base.yaml", FILES["base.yaml"].replace("base-1", f"base-{rng.randrange(3)}")),
        lambda p: p.write(".env", f"DB_PASSWORD=pw-{rng.randrange(3)}\n"),
        lambda p: None,
    ]
    for step in range(10):
        for edit in rng.sample(pool, rng.randrange(3)):
            edit(proj)
        cached = proj.run()
        assert cached == proj.run(cache=False), f"seed {seed}, step {step}"
        assert proj.run() == cached, f"seed {seed}, step {step} (second run)"


def test_what_is_never_stored(proj: Project, tmp_path: Path) -> None:
    proj.run(cache=False)  # the compose cache is warm: the runs below start no process
    for args in (["--out-dir", str(tmp_path / "out")], ["--include-secrets"]):
        for _ in range(2):
            assert proj.run(*args)[0] == 0
        assert proj.entries() == {}, args
    proj.write("compose.yaml", COMPOSE.replace("nginx:1.27", "nginx:"))  # an image reference that cannot work
    for _ in range(2):
        assert proj.run()[0] != 0
    assert proj.entries() == {}


def test_entries_are_private_and_sealed(proj: Project) -> None:
    out = proj.warm()[1]
    folder = proj.cache / "stackctl" / "render-results"
    assert folder.stat().st_mode & 0o777 == 0o700
    for entry in folder.iterdir():
        assert entry.stat().st_mode & 0o777 == 0o600
        data = entry.read_bytes()
        for plain in (b"listen 80;", b"envfile-1", b"FROM_BASE", SECRET.encode()):
            assert plain in out or plain == SECRET.encode()
            assert plain not in data
    assert SECRET.encode() not in out


def test_closed_descriptors(proj: Project) -> None:
    """`>&-`: Python starts with sys.stdout None; the render runs (into nothing), never stored, never a
    traceback — and a stored entry is not replayed into a closed descriptor."""
    proj.warm()
    for closed in ("1", "2"):
        proc = subprocess.run(f"{sys.executable} -m stackctl render kubernetes {closed}>&-", shell=True,
                              cwd=proj.root, env={**proj.env, "STACKCTL_RESULT_CACHE": "1"}, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr + proc.stdout, proc.stderr
