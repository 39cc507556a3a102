"""Secrets a data volume was initialised with (issue 13, item 8): the `.env.example` annotations, which
services stackctl recognises, the refusal of a plain rotation, and the in-place scripts (no value in
argv or output). The rotation itself runs against the real engine in tests/e2e/test_rotate.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from stackctl.errors import EnvError, InputError
from stackctl.profile import load_profile
from stackctl.secrets import dbrotate, ops
from stackctl.secrets.template import parse_template


def parse(text: str) -> Any:
    return parse_template(textwrap.dedent(text).lstrip("\n"), display=".env.example")


def test_rotation_annotations() -> None:
    t = parse("""
        # @secret password:24 @initialises db @initialises replica
        # @rotate-command psql -c "select 1" | grep -q 1 && echo "$STACKCTL_NEW_VALUE" >/dev/null
        A=
        # @secret alnum:16 @reapplied
        B=
        # @secret hex:16
        C=
    """)
    a, b, c = t.get("A"), t.get("B"), t.get("C")
    assert a.initialises == ("db", "replica") and not a.reapplied
    assert a.rotate_command == 'psql -c "select 1" | grep -q 1 && echo "$STACKCTL_NEW_VALUE" >/dev/null'
    assert b.reapplied and b.initialises == () and b.rotate_command is None
    assert c.initialises == () and not c.reapplied and c.rotate_command is None


@pytest.mark.parametrize(("text", "message"), [
    ("# @initialises db\nLEVEL=info\n", "only a @secret can initialise a volume"),
    ("# @secret @initialises\nA=\n", "@initialises on A needs a service name"),
    ("# @secret @reapplied db\nA=\n", "unexpected 'db' after @reapplied"),
    ("# @secret @reapplied @initialises db\nA=\n", "A is annotated both @reapplied and @initialises"),
    ("# @secret\n# @rotate-command\nA=\n", "@rotate-command on A needs a command"),
    ("# @secret @rotate-command x\nA=\n", "@rotate-command on A must begin its own comment line"),
])
def test_rotation_annotation_mistakes(text: str, message: str) -> None:
    with pytest.raises(EnvError) as exc:
        parse_template(text, display=".env.example")
    assert message in str(exc.value)


@pytest.mark.parametrize(("image", "kind"), [
    ("postgres:16", "postgres"), ("docker.io/library/postgres@sha256:ab", "postgres"), ("postgis/postgis", "postgres"),
    ("timescale/timescaledb:latest-pg16", "postgres"), ("mysql:8.4", "mysql"), ("percona:8", "mysql"),
    ("mariadb:11", "mariadb"), ("bitnami/mariadb", "mariadb"), ("redis:7-alpine", "redis"), ("valkey/valkey", "redis"),
    ("busybox", None), ("stackctl-example/shop-db:dev", None), (None, None), ("registry:5000/postgres-tools/x", None),
])
def test_image_kind(image: str | None, kind: str | None) -> None:
    assert dbrotate.image_kind(image) == kind


COMPOSE = """
services:
  pg:                      # official image, data volume: the password lives in the data
    image: postgres:16
    environment: {POSTGRES_PASSWORD: "${PG_PASSWORD}", POSTGRES_USER: app}
    volumes: [pgdata:/var/lib/postgresql/data]
  pgtmp:                   # no volume: every start initialises anew, a plain rotation is safe
    image: postgres:16
    environment: {POSTGRES_PASSWORD: "${TMP_PASSWORD}"}
  maria:                   # list form, MYSQL_* names on a MariaDB image
    image: mariadb:11
    environment: ["MYSQL_ROOT_PASSWORD=${ROOT_PASSWORD}", "MYSQL_USER=app", "MYSQL_PASSWORD=${APP_PASSWORD}"]
    volumes: [{type: volume, source: mariadata, target: /var/lib/mysql}]
  cache:                   # the official Redis image takes the password on its command line
    image: redis:7
    command: ["redis-server", "--appendonly", "yes", "--requirepass", "${REDIS_PASSWORD}"]
    volumes: [redisdata:/data]
  custom:                  # an image stackctl cannot name, but the official variable and data path
    image: acme/db:1
    environment: {POSTGRES_PASSWORD: "${CUSTOM_PASSWORD}"}
    volumes: ["./data:/var/lib/postgresql"]
  wrongkind:               # POSTGRES_PASSWORD handed to a Redis image means nothing
    image: redis:7
    environment: {POSTGRES_PASSWORD: "${OTHER_PASSWORD}"}
    volumes: [x:/var/lib/postgresql/data]
  whole:                   # the rendered env file, whole: it receives MYSQL_ROOT_PASSWORD under its own name
    image: mysql:8.4
    env_file: [.env]
    volumes: [mydata:/var/lib/mysql]
  api:
    image: busybox
    environment: {DATABASE_URL: "postgres://app:${PG_PASSWORD}@pg/app", TOKEN: "${TOKEN}"}
volumes: {pgdata: {}, mariadata: {}, redisdata: {}, x: {}, mydata: {}}
"""
TEMPLATE = """
# @secret password:24
PG_PASSWORD=
# @secret password:24
TMP_PASSWORD=
# @secret password:24
ROOT_PASSWORD=
# @secret password:24
APP_PASSWORD=
# @secret alnum:24
REDIS_PASSWORD=
# @secret password:24
CUSTOM_PASSWORD=
# @secret password:24
OTHER_PASSWORD=
# @secret password:24
MYSQL_ROOT_PASSWORD=
# @secret hex:16
TOKEN=
# @secret hex:16 @initialises api
# @rotate-command echo changed
API_KEY=
# @secret password:24 @reapplied
REAPPLIED=
"""


@pytest.fixture
def proj(project: Any) -> Any:
    project.write("compose.yaml", COMPOSE)
    project.write(".env.example", TEMPLATE)
    project.profile("local", "compose:\n  files: [compose.yaml]\n")
    return project


def targets(*names: str) -> dict[str, list[tuple[str, str, str]]]:
    profile = load_profile(Path.cwd(), "local")
    found = dbrotate.find_targets(profile, ops.template_if_any(profile), names)
    return {n: [(t.service, t.kind, t.user) for t in ts] for n, ts in found.items()}


def test_detects_what_a_volume_was_initialised_with(proj: Any) -> None:
    assert targets("PG_PASSWORD", "TMP_PASSWORD", "ROOT_PASSWORD", "APP_PASSWORD", "REDIS_PASSWORD",
                   "CUSTOM_PASSWORD", "OTHER_PASSWORD", "MYSQL_ROOT_PASSWORD", "TOKEN", "API_KEY", "REAPPLIED") == {
        "PG_PASSWORD": [("pg", "postgres", "${POSTGRES_USER:-postgres}")],
        "TMP_PASSWORD": [],
        "ROOT_PASSWORD": [("maria", "mariadb", "root")],
        "APP_PASSWORD": [("maria", "mariadb", "${MYSQL_USER:-}")],
        "REDIS_PASSWORD": [("cache", "redis", "")],
        "CUSTOM_PASSWORD": [("custom", "postgres", "${POSTGRES_USER:-postgres}")],
        "OTHER_PASSWORD": [],
        "MYSQL_ROOT_PASSWORD": [("whole", "mysql", "root")],
        "TOKEN": [],
        "API_KEY": [("api", "command", "")],
        "REAPPLIED": [],
    }


def test_initialises_names_a_service_that_exists(proj: Any) -> None:
    proj.write(".env.example", "# @secret hex:16 @initialises nosuch\nTOKEN=\n")
    with pytest.raises(InputError, match="@initialises nosuch on TOKEN: no service 'nosuch'"):
        targets("TOKEN")
    proj.write(".env.example", "# @secret hex:16 @initialises api\nTOKEN=\n")
    assert targets("TOKEN") == {"TOKEN": [("api", "unknown", "")]}


def test_plain_rotation_refused_nothing_changed(proj: Any, cli: Any) -> None:
    assert cli("secrets", "generate").exit_code == 0
    res = cli("secrets", "rotate", "TOKEN", "PG_PASSWORD")
    assert res.exit_code == 2
    assert "PG_PASSWORD cannot be rotated by a new value alone: pg receives it as POSTGRES_PASSWORD and keeps its " \
           "data in a volume at /var/lib/postgresql/data" in res.stderr
    assert "stackctl secrets rotate PG_PASSWORD --in-place" in res.stderr and "nothing was changed" in res.stderr
    history = json.loads(cli("secrets", "history", "TOKEN", "-o", "json").stdout)
    assert [h["version"] for h in history] == [1]  # TOKEN, named first, was not rotated either

    rows = {r["name"]: r for r in json.loads(cli("secrets", "rotate", "--all", "-o", "json").stdout)}
    assert rows["TOKEN"]["action"] == "rotated" and rows["TMP_PASSWORD"]["action"] == "rotated"
    assert rows["PG_PASSWORD"]["action"] == "skipped" and "--in-place" in rows["PG_PASSWORD"]["note"]
    assert rows["REAPPLIED"]["action"] == "rotated"

    res = cli("secrets", "rotate", "API_KEY", "-p", "local")
    assert res.exit_code == 2 and ".env.example says `@initialises api`" in res.stderr


def test_set_and_rollback_of_a_database_password_refused_unless_forced(proj: Any, cli: Any) -> None:
    """`set` and `rollback` put a value in the store the database does not hold, as a plain rotate
    would: refused the same way, nothing changed; --force when the user changed it inside the db."""
    assert cli("secrets", "generate").exit_code == 0
    def history() -> list[tuple[int, str]]:
        rows = json.loads(cli("secrets", "history", "PG_PASSWORD", "-o", "json").stdout)
        return [(r["version"], r["digest"]) for r in rows]

    before = history()
    for args in (("set", "PG_PASSWORD"), ("rollback", "PG_PASSWORD")):
        res = cli("secrets", *args, input="n3w-Value-0123456789abcdef\n")
        assert res.exit_code == 2, res.stderr
        assert "PG_PASSWORD cannot be" in res.stderr and "pass --force" in res.stderr \
            and "nothing was changed" in res.stderr
    assert history() == before
    res = cli("secrets", "set", "PG_PASSWORD", "--force", input="n3w-Value-0123456789abcdef\n")
    assert res.exit_code == 0, res.stderr
    assert cli("secrets", "rollback", "PG_PASSWORD", "--force").exit_code == 0
    assert [v for v, _ in history()] == [3, 2, 1]  # newest first
    assert cli("secrets", "set", "TOKEN", input="plain-Token-0123456789abcdef\n").exit_code == 0  # not held


def test_in_place_is_for_one_volume_secret(proj: Any, cli: Any) -> None:
    assert cli("secrets", "generate").exit_code == 0
    res = cli("secrets", "rotate", "--all", "--in-place")
    assert res.exit_code == 2 and "one secret at a time" in res.stderr
    res = cli("secrets", "rotate", "TOKEN", "--in-place")
    assert res.exit_code == 2 and "a plain rotation is safe" in res.stderr


def test_refusal_without_a_known_way_asks_for_a_rotate_command(proj: Any) -> None:
    profile = load_profile(Path.cwd(), "local")
    err = dbrotate.refusal("X", [dbrotate.Target("X", "legacy", "unknown", "it is annotated")], profile)
    assert "# @rotate-command COMMAND" in (err.hint or "") and "$STACKCTL_NEW_VALUE" in (err.hint or "")
    with pytest.raises(InputError, match="does not know how to change X inside legacy"):
        dbrotate.switch_script(dbrotate.Target("X", "legacy", "unknown", ""))


def test_scram_verifier_is_what_postgres_computes() -> None:
    salt = b"0123456789abcdef"
    got = dbrotate.scram_verifier("pencil", salt=salt)
    head, keys = got.split("$", 2)[1:]
    assert got.startswith("SCRAM-SHA-256$4096:") and head == f"4096:{base64.b64encode(salt).decode()}"
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", salt, 4096)
    stored = hashlib.sha256(hmac.new(salted, b"Client Key", hashlib.sha256).digest()).digest()
    assert keys.split(":")[0] == base64.b64encode(stored).decode()
    assert dbrotate.scram_verifier("pencil") != dbrotate.scram_verifier("pencil")  # a fresh salt each time


@pytest.mark.parametrize("kind", ["postgres", "mysql", "mariadb", "redis"])
def test_scripts_take_values_from_the_environment_only(kind: str) -> None:
    target = dbrotate.Target("X", "db", kind, "", user="root")
    scripts = [dbrotate.switch_script(target), dbrotate.finish_script(target) or ""]
    env = dbrotate.exec_env(target, "X", "old-secret-1", "new-secret-2")
    assert env["STACKCTL_OLD_VALUE"] == "old-secret-1" and env["STACKCTL_NEW_VALUE"] == "new-secret-2"
    for script in scripts:
        assert "secret-" not in script  # the argv of `sh -c` holds the script, never a value
    assert "$STACKCTL_NEW_VALUE" in scripts[0] or "$STACKCTL_NEW_VERIFIER" in scripts[0]


def test_mask() -> None:
    assert dbrotate.mask("ERROR at 'abc' and 'abcdef'", "abc", "abcdef", "") == "ERROR at '***' and '***'"


def test_in_place_on_a_kubernetes_profile_goes_to_the_cluster_and_changes_nothing_without_one(proj: Any,
                                                                                               cli: Any) -> None:
    proj.profile("production", "compose:\n  files: [compose.yaml]\nkubernetes:\n  context: prod\n"
                               "  namespace: shop\n")
    assert cli("secrets", "generate", "-p", "production").exit_code == 0
    res = cli("secrets", "rotate", "PG_PASSWORD", "--in-place", "-p", "production")
    assert res.exit_code == 2 and "no kubeconfig" in res.stderr, res
    history = json.loads(cli("secrets", "history", "PG_PASSWORD", "-p", "production", "-o", "json").stdout)
    assert [h["version"] for h in history] == [1]


def test_kubernetes_job_objects_keep_values_in_a_temporary_secret() -> None:
    from stackctl.kubernetes.deploy.inplace import job_objects
    from stackctl.kubernetes.labels import L_INSTANCE, L_NAME

    target = dbrotate.Target("PG_PASSWORD", "db", "postgres", "")
    pod = {"metadata": {"labels": {L_INSTANCE: "shop", L_NAME: "db", "pod-template-hash": "x"}},
           "spec": {"securityContext": {"runAsUser": 999, "fsGroup": 999},
                    "containers": [{"name": "db", "image": "reg/shop-db@sha256:ab",
                                    "env": [{"name": "POSTGRES_USER", "value": "shop"},
                                            {"name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {
                                                "name": "shop-env", "key": "DB_PASSWORD"}}}],
                                    "envFrom": [{"configMapRef": {"name": "shop-db"}}]}]}}
    env = dbrotate.exec_env(target, "PG_PASSWORD", "old-secret-1", "new-secret-2")
    secret, job = job_objects(target, namespace="shop-prod", run="a1b2c3", pod=pod, host="db", env=env,
                              timeout=120, script=dbrotate.switch_script(target))
    assert base64.b64decode(secret["data"]["STACKCTL_NEW_VALUE"]) == b"new-secret-2"
    assert secret["metadata"]["namespace"] == "shop-prod"
    assert "secret-" not in json.dumps(job)  # the Job holds references, never a value
    spec = job["spec"]["template"]["spec"]
    c = spec["containers"][0]
    assert c["image"] == "reg/shop-db@sha256:ab" and c["command"][:2] == ["sh", "-c"]
    assert {"name": "STACKCTL_HOST", "value": "db"} in c["env"]
    assert c["envFrom"] == [{"configMapRef": {"name": "shop-db"}}]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"] if e["name"].startswith("STACKCTL_") and
            "valueFrom" in e}
    assert set(refs) == set(env) and {r["name"] for r in refs.values()} == {secret["metadata"]["name"]}
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert labels[L_NAME] == "db" and labels[L_INSTANCE] == "shop" and "pod-template-hash" not in labels
    assert c["readinessProbe"]["exec"]["command"] == ["false"]  # never behind the db's Service
    assert spec["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] == 0
    assert spec["securityContext"] == {"runAsUser": 999, "fsGroup": 999}
