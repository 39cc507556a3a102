"""Rotating a database password on the real engine (issue 13, item 8): a plain rotation is refused,
`secrets rotate NAME --in-place` changes it inside the running database first, and afterwards the
dependents log in with the new value, the data is still there, and nothing that ran is left stopped.

The databases are the bundled example's images (PostgreSQL 15 and Redis 7 from Debian packages, built
offline), with an entrypoint that behaves like the official images: the password is read only when the
data directory is initialised. Every test has its own Compose project and removes everything it
created, pass or fail.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from dockerutil import docker_run as docker

pytestmark = [pytest.mark.docker, pytest.mark.engine]

PG_IMAGE = "stackctl-example/shop-db:dev"
REDIS_IMAGE = "stackctl-example/shop-cache:dev"


def _need(image: str) -> None:
    if docker("image", "inspect", image, check=False).returncode != 0:
        pytest.skip(f"{image} is not built (`docker compose -f examples/shop/compose.yaml build`)")


@dataclass
class Stack:
    name: str
    project: Any
    cli: Callable[..., Any]

    def write(self, compose: str, template: str) -> None:
        self.project.write("compose.yaml", textwrap.dedent(compose))
        self.project.write(".env.example", textwrap.dedent(template))
        self.project.profile("local", f"stack: {self.name}\ncompose:\n  files: [compose.yaml]\n")

    def ids(self) -> dict[str, str]:
        out = docker("ps", "-a", "--filter", f"label=com.docker.compose.project={self.name}",
                     "--format", '{{.Label "com.docker.compose.service"}} {{.ID}}').stdout
        return dict(line.split() for line in out.splitlines())

    def running(self) -> set[str]:
        out = docker("ps", "--filter", f"label=com.docker.compose.project={self.name}",
                     "--format", '{{.Label "com.docker.compose.service"}}').stdout
        return set(out.split())

    def sh(self, service: str, script: str, *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        flags = [a for k, v in (env or {}).items() for a in ("-e", f"{k}={v}")]
        return docker("exec", *flags, self.ids()[service], "sh", "-c", script, check=False)

    def env_of(self, service: str) -> dict[str, str]:
        info = json.loads(docker("inspect", self.ids()[service]).stdout)[0]
        return dict(e.split("=", 1) for e in info["Config"]["Env"])

    def versions(self, name: str) -> list[int]:
        res = self.cli("secrets", "history", name, "-o", "json")
        assert res.exit_code == 0, res
        return [r["version"] for r in json.loads(res.stdout)]


@pytest.fixture
def stack(project: Any, cli: Callable[..., Any]) -> Iterator[Stack]:
    s = Stack(name=f"rot-{uuid.uuid4().hex[:10]}", project=project, cli=cli)
    try:
        yield s
    finally:
        subprocess.run(["docker", "compose", "-p", s.name, "down", "-v", "--remove-orphans", "-t", "0"],
                       capture_output=True, cwd=project.root)
        flt = f"label=com.docker.compose.project={s.name}"
        for ls, rm in ((["ps", "-a", "-q"], ["rm", "-f", "-v"]), (["network", "ls", "-q"], ["network", "rm"]),
                       (["volume", "ls", "-q"], ["volume", "rm", "-f"])):
            leftovers = docker(*ls, "--filter", flt, check=False).stdout.split()
            if leftovers:
                docker(*rm, *leftovers, check=False)


# PostgreSQL as the official image behaves: POSTGRES_PASSWORD is read by initdb, on the first start only.
POSTGRES = """
services:
  db:
    image: stackctl-example/shop-db:dev
    entrypoint:
      - sh
      - -c
      - |
        set -eu
        if [ ! -s "$$PGDATA/PG_VERSION" ]; then
          pw="$$(mktemp)"; printf '%s' "$$POSTGRES_PASSWORD" > "$$pw"
          initdb -D "$$PGDATA" -U "$$POSTGRES_USER" --pwfile="$$pw" --auth=scram-sha-256 >/dev/null
          rm -f "$$pw"
          echo "listen_addresses = '*'" >> "$$PGDATA/postgresql.conf"
          echo "host all all 0.0.0.0/0 scram-sha-256" >> "$$PGDATA/pg_hba.conf"
        fi
        exec postgres -D "$$PGDATA"
    environment:
      POSTGRES_USER: app
      POSTGRES_DB: postgres
      POSTGRES_PASSWORD: ${DB_PASSWORD:?}
    volumes: [pgdata:/var/lib/postgresql/data]
    stop_signal: SIGINT
    stop_grace_period: 20s
    healthcheck: {test: ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", "app", "-d", "postgres"],
                  interval: 2s, timeout: 3s, retries: 30}
  migrate:                 # a one-shot migration that logs in with the password
    image: stackctl-example/shop-db:dev
    entrypoint: ["sh", "-c", "PGPASSWORD=\\"$$DB_PASSWORD\\" psql -X -q -v ON_ERROR_STOP=1 -h db -U app -d postgres
                  -c 'CREATE TABLE IF NOT EXISTS items (name text)'"]
    environment: {DB_PASSWORD: "${DB_PASSWORD:?}"}
    depends_on: {db: {condition: service_healthy}}
  app:                     # healthy while it can log in with the password it was given
    image: stackctl-example/shop-db:dev
    entrypoint: ["sh", "-c", "exec sleep infinity"]
    stop_signal: SIGKILL
    environment: {DB_PASSWORD: "${DB_PASSWORD:?}"}
    healthcheck:
      test: ["CMD-SHELL", "PGPASSWORD=\\"$$DB_PASSWORD\\" psql -X -tA -h db -U app -d postgres -c 'SELECT 1'"]
      interval: 2s
      timeout: 3s
      retries: 20
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
volumes:
  pgdata: {}
"""


def test_postgres_password_plain_rotation_refused_in_place_rotation_keeps_the_app_working(stack: Stack) -> None:
    _need(PG_IMAGE)
    stack.write(POSTGRES, "# @secret password:24\nDB_PASSWORD=\n")
    assert stack.cli("secrets", "generate").exit_code == 0
    res = stack.cli("up")
    assert res.exit_code == 0, res
    old = stack.env_of("app")["DB_PASSWORD"]
    login = "PGPASSWORD=\"$P\" psql -X -tA -h db -U app -d postgres -c"
    assert stack.sh("app", f"{login} \"INSERT INTO items VALUES ('kept')\"", env={"P": old}).returncode == 0
    rendered = (stack.project.root / ".env").read_text()

    # a plain rotation would leave the data with the old password: refused, exit 2, nothing changed
    res = stack.cli("secrets", "rotate", "DB_PASSWORD")
    assert res.exit_code == 2, res
    assert "POSTGRES_PASSWORD" in res.stderr and "--in-place" in res.stderr and "nothing was changed" in res.stderr
    assert stack.versions("DB_PASSWORD") == [1]
    res = stack.cli("secrets", "rotate", "--all", "-o", "json")
    assert res.exit_code == 0 and json.loads(res.stdout)[0]["action"] == "skipped", res
    assert stack.versions("DB_PASSWORD") == [1]

    before = stack.ids()
    res = stack.cli("secrets", "rotate", "DB_PASSWORD", "--in-place")
    assert res.exit_code == 0, res
    new = stack.env_of("app")["DB_PASSWORD"]
    assert new != old and old not in res.stdout + res.stderr and new not in res.stdout + res.stderr
    assert stack.versions("DB_PASSWORD") == [2, 1]  # stored as a new version, the old one kept
    assert (stack.project.root / ".env").read_text() != rendered
    after = stack.ids()
    assert after["db"] != before["db"] and after["app"] != before["app"]  # recreated with the new value
    assert stack.running() == {"db", "app"}  # nothing that ran is left stopped
    state = json.loads(docker("inspect", after["migrate"]).stdout)[0]["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 0  # the migration ran again with the new one
    # the app logs in with the new password and the data survived; the old one no longer works
    got = stack.sh("app", f"{login} 'SELECT name FROM items'", env={"P": new})
    assert got.returncode == 0 and got.stdout.split() == ["kept"], got
    assert stack.sh("app", f"{login} 'SELECT 1'", env={"P": old}).returncode != 0
    status = json.loads(stack.cli("status", "-o", "json").stdout)["services"]
    assert {r["service"]: r["health"] for r in status if r["service"] in ("db", "app")} == {
        "db": "healthy", "app": "healthy"}



def test_in_place_rotation_of_a_stopped_database_is_refused(stack: Stack) -> None:
    _need(PG_IMAGE)
    stack.write(POSTGRES, "# @secret password:24\nDB_PASSWORD=\n")
    assert stack.cli("secrets", "generate").exit_code == 0
    res = stack.cli("secrets", "rotate", "DB_PASSWORD", "--in-place")
    assert res.exit_code == 2 and "db is not running" in res.stderr, res
    assert stack.versions("DB_PASSWORD") == [1]


REDIS = """
services:
  cache:
    image: stackctl-example/shop-cache:dev
    entrypoint: ["redis-server"]
    command: ["--appendonly", "yes", "--dir", "/data", "--requirepass", "${REDIS_PASSWORD:?}"]
    volumes: [redisdata:/data]
    stop_signal: SIGKILL
    healthcheck: {test: ["CMD-SHELL", "redis-cli ping | grep -q -e PONG -e NOAUTH"], interval: 2s, retries: 20}
  app:
    image: stackctl-example/shop-cache:dev
    entrypoint: ["sh", "-c", "exec sleep infinity"]
    stop_signal: SIGKILL
    environment: {REDIS_PASSWORD: "${REDIS_PASSWORD:?}"}
    healthcheck:
      test: ["CMD-SHELL", "REDISCLI_AUTH=\\"$$REDIS_PASSWORD\\" redis-cli -h cache ping | grep -q PONG"]
      interval: 2s
      retries: 20
    depends_on: {cache: {condition: service_healthy}}
volumes:
  redisdata: {}
"""


def test_redis_requirepass_in_place_rotation(stack: Stack) -> None:
    _need(REDIS_IMAGE)
    stack.write(REDIS, "# @secret alnum:24\nREDIS_PASSWORD=\n")
    assert stack.cli("secrets", "generate").exit_code == 0
    res = stack.cli("up")
    assert res.exit_code == 0, res
    old = stack.env_of("app")["REDIS_PASSWORD"]
    cli = "REDISCLI_AUTH=\"$P\" redis-cli --no-auth-warning -h cache"
    assert stack.sh("app", f"{cli} SET marker kept", env={"P": old}).stdout.strip() == "OK"

    res = stack.cli("secrets", "rotate", "REDIS_PASSWORD")
    assert res.exit_code == 2 and "--requirepass" in res.stderr, res

    res = stack.cli("secrets", "rotate", "REDIS_PASSWORD", "--in-place")
    assert res.exit_code == 0, res
    new = stack.env_of("app")["REDIS_PASSWORD"]
    assert new != old and new not in res.stdout + res.stderr and old not in res.stdout + res.stderr
    assert "retained" in res.stdout  # Redis 7: old and new both valid during the switch
    assert stack.running() == {"cache", "app"}
    assert stack.sh("app", f"{cli} GET marker", env={"P": new}).stdout.strip() == "kept"
    assert "kept" not in stack.sh("app", f"{cli} GET marker", env={"P": old}).stdout


# A store of our own making: the "database" keeps the password in its volume from the first start; the
# app shares the volume read-only and is healthy while its password matches. `@rotate-command` changes it.
FILEDB = """
services:
  db:
    image: stackctl-test/busybox:latest
    stop_signal: SIGKILL
    command: ["sh", "-c", "[ -s /data/pw ] || printf %s \\"$$PW\\" > /data/pw; exec sleep 600"]
    environment: {PW: "${SECRET:?}"}
    volumes: [data:/data]
    healthcheck: {test: ["CMD", "test", "-s", "/data/pw"], interval: 2s, retries: 20}
  app:
    image: stackctl-test/busybox:latest
    stop_signal: SIGKILL
    command: ["sleep", "600"]
    environment: {PW: "${SECRET:?}"}
    volumes: [data:/data:ro]
    healthcheck: {test: ["CMD-SHELL", "test \\"$$(cat /data/pw)\\" = \\"$$PW\\""], interval: 2s, retries: 20}
    depends_on: {db: {condition: service_healthy}}
volumes:
  data: {}
"""
FILEDB_TEMPLATE = """\
# @secret hex:16 @initialises db
# @rotate-command test "$(cat /data/pw)" = "$STACKCTL_OLD_VALUE" && printf %s "$STACKCTL_NEW_VALUE" > /data/pw
SECRET=
"""


def test_rotate_command_and_a_failed_switch_changes_nothing(stack: Stack) -> None:
    stack.write(FILEDB, FILEDB_TEMPLATE)
    assert stack.cli("secrets", "generate").exit_code == 0
    res = stack.cli("up")
    assert res.exit_code == 0, res
    res = stack.cli("secrets", "rotate", "SECRET")
    assert res.exit_code == 2 and "@initialises db" in res.stderr, res

    # the database does not take the old value (changed behind our back): nothing stored, nothing stopped
    old = stack.env_of("app")["PW"]
    assert stack.sh("db", "printf other > /data/pw").returncode == 0
    before = stack.ids()
    res = stack.cli("secrets", "rotate", "SECRET", "--in-place")
    assert res.exit_code == 1 and "could not change SECRET inside db" in res.stderr and "nothing was stored" \
        in res.stderr, res
    assert stack.versions("SECRET") == [1] and stack.ids() == before and stack.running() == {"db", "app"}

    assert stack.sh("db", f"printf %s '{old}' > /data/pw").returncode == 0
    res = stack.cli("secrets", "rotate", "SECRET", "--in-place", "-o", "json")
    assert res.exit_code == 0, res
    new = stack.env_of("app")["PW"]
    assert new != old and new not in res.stdout + res.stderr
    assert stack.sh("app", "cat /data/pw").stdout == new  # the data holds the new value, the app has it
    assert stack.versions("SECRET") == [2, 1] and stack.running() == {"db", "app"}
    assert json.loads(res.stdout)[0]["version"] == 2


MARIADB_IMAGE = "stackctl-test/mariadb:10.11"


@pytest.fixture(scope="module")
def mariadb_image() -> str:
    """Built from tests/e2e/images/mariadb (Debian's MariaDB 10.11; the engine's cache makes a rebuild
    of an unchanged Dockerfile instant)."""
    from pathlib import Path

    context = Path(__file__).resolve().parent / "images" / "mariadb"
    res = docker("build", "-q", "-t", MARIADB_IMAGE, str(context), check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    return MARIADB_IMAGE


# MariaDB as the official image behaves: MARIADB_PASSWORD creates app@'%' on the first start only. The
# account has no CREATE USER privilege, which MariaDB's ALTER USER needs even for one's own password.
MARIADB = """
services:
  db:
    image: stackctl-test/mariadb:10.11
    environment:
      MARIADB_DATABASE: app
      MARIADB_USER: app
      MARIADB_PASSWORD: ${DB_PASSWORD:?}
    volumes: [dbdata:/var/lib/mysql]
    stop_grace_period: 20s
    healthcheck: {test: ["CMD", "mariadb-admin", "--socket=/run/mysqld/mysqld.sock", "ping"],
                  interval: 2s, timeout: 3s, retries: 60}
  app:                     # healthy while it can log in (over the network) with the password it was given
    image: stackctl-test/mariadb:10.11
    entrypoint: ["sh", "-c", "exec sleep infinity"]
    stop_signal: SIGKILL
    environment: {DB_PASSWORD: "${DB_PASSWORD:?}"}
    healthcheck:
      test: ["CMD-SHELL", "MYSQL_PWD=\\"$$DB_PASSWORD\\" mariadb -h db -u app app -N -e 'SELECT 1'"]
      interval: 2s
      timeout: 3s
      retries: 30
    depends_on: {db: {condition: service_healthy}}
volumes:
  dbdata: {}
"""


def test_mariadb_password_in_place_rotation_by_an_unprivileged_user(stack: Stack, mariadb_image: str) -> None:
    stack.write(MARIADB, "# @secret alnum:24\nDB_PASSWORD=\n")
    assert stack.cli("secrets", "generate").exit_code == 0
    res = stack.cli("up")
    assert res.exit_code == 0, res
    old = stack.env_of("app")["DB_PASSWORD"]
    login = "MYSQL_PWD=\"$P\" mariadb -h db -u app app -N -e"
    setup = stack.sh("app", f"{login} \"CREATE TABLE items (name text); INSERT INTO items VALUES ('kept')\"",
                     env={"P": old})
    assert setup.returncode == 0, setup

    res = stack.cli("secrets", "rotate", "DB_PASSWORD")
    assert res.exit_code == 2 and "MARIADB_PASSWORD" in res.stderr and "--in-place" in res.stderr, res

    res = stack.cli("secrets", "rotate", "DB_PASSWORD", "--in-place")
    assert res.exit_code == 0, res
    new = stack.env_of("app")["DB_PASSWORD"]
    assert new != old and new not in res.stdout + res.stderr and old not in res.stdout + res.stderr
    assert "changed" in res.stdout  # MariaDB keeps no retained password: the old one stops at the switch
    assert stack.versions("DB_PASSWORD") == [2, 1] and stack.running() == {"db", "app"}
    got = stack.sh("app", f"{login} 'SELECT name FROM items'", env={"P": new})
    assert got.returncode == 0 and got.stdout.split() == ["kept"], got
    assert stack.sh("app", f"{login} 'SELECT 1'", env={"P": old}).returncode != 0
    # over the local socket inside db too
    local = stack.sh("db", "MYSQL_PWD=\"$P\" mariadb -u app app -N -e 'SELECT 1'", env={"P": new})
    assert local.returncode == 0, local
    assert stack.sh("db", "MYSQL_PWD=\"$P\" mariadb -u app app -N -e 'SELECT 1'", env={"P": old}).returncode != 0
