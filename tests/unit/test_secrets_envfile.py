"""env render / env check / services_using / store digests, on real files in a temp project."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from stackctl.compose import dotenv
from stackctl.errors import EnvError, SecretsError
from stackctl.profile import load_profile
from stackctl.secrets import env_values, envfile, ops, secret_values, services_using

COMPOSE = """
x-db: &db
  DB_PASSWORD: ${DB_PASSWORD:?run stackctl secrets generate}
services:
  api:
    image: busybox
    environment:
      <<: *db
      JWT_SECRET: ${JWT_SECRET}
      DATABASE_URL: ${DATABASE_URL}
      LOG_LEVEL: ${LOG_LEVEL:-info}
  db:
    image: busybox
    environment:
      POSTGRES_PASSWORD: ${DB_PASSWORD}
  verifier:
    image: busybox
    environment:
      PUBLIC_KEY: ${SIGNING_PUBLIC}
  worker:
    image: busybox
    env_file: [.env.staging]
  static:
    image: busybox
    environment:
      MODE: ${MODE:-x}
"""

TEMPLATE = """
# @secret password:24
DB_PASSWORD=change_me
JWT_SECRET="" # @secret hex:32
# @secret ed25519
SIGNING_KEY=
# @public SIGNING_KEY
SIGNING_PUBLIC=
DATABASE_URL="postgres://app:${DB_PASSWORD}@db/app"
LOG_LEVEL=info
APP_NAME='shop $literal'
# @optional
SENTRY_DSN=
"""


@pytest.fixture
def proj(project):
    project.write("compose.yaml", COMPOSE)
    project.write(".env.example", TEMPLATE)
    project.profile("staging", """
        compose:
          files: [compose.yaml]
        env:
          values:
            LOG_LEVEL: "warn $HOME 'x'"
        secrets:
          history: 3
    """)
    return project


def prof():
    return load_profile(Path.cwd(), "staging")


def test_generate_render_and_read_back(proj) -> None:
    out = ops.generate(prof())
    assert sorted(c.name for c in out.changes if c.action == "generated") == ["DB_PASSWORD", "JWT_SECRET",
                                                                              "SIGNING_KEY"]
    result = envfile.render(prof())
    env_file = proj.root / ".env.staging"
    assert result.written and oct(env_file.stat().st_mode & 0o777) == "0o600"
    values = dotenv.load(env_file)
    stored = secret_values(prof())
    assert values["DB_PASSWORD"] == stored["DB_PASSWORD"]
    assert values["SIGNING_KEY"] == stored["SIGNING_KEY"] and values["SIGNING_KEY"].count("\n") == 3
    assert values["SIGNING_PUBLIC"].startswith("-----BEGIN PUBLIC KEY-----\n")
    assert values["DATABASE_URL"] == f"postgres://app:{stored['DB_PASSWORD']}@db/app"  # reference kept live
    assert values["LOG_LEVEL"] == "warn $HOME 'x'"  # profile value wins, literally
    assert values["APP_NAME"] == "shop $literal"
    assert values["SENTRY_DSN"] == ""
    assert env_values(prof()) == values
    # rendering again changes nothing
    again = envfile.render(prof())
    assert not again.written and again.changed == []


def test_precedence_env_file_edits_survive_but_profile_wins(proj) -> None:
    ops.generate(prof())
    envfile.render(prof())
    env_file = proj.root / ".env.staging"
    text = env_file.read_text()
    text = text.replace("APP_NAME='shop $literal'", "APP_NAME=edited")
    text = text.replace("LOG_LEVEL=", "LOG_LEVEL=debug\n#LOG_LEVEL=")
    env_file.write_text(text + "LOCAL_ONLY=mine\n")
    result = envfile.render(prof())
    values = dotenv.load(env_file)
    assert values["APP_NAME"] == "edited"  # env-file edit of a config key kept
    assert values["LOG_LEVEL"] == "warn $HOME 'x'"  # the profile sets it: profile wins
    assert values["LOCAL_ONLY"] == "mine"  # extra keys are kept, not lost
    assert any("LOG_LEVEL: the value in .env.staging was replaced" in w for w in result.warnings)
    envfile.render(prof(), reset=True)
    values = dotenv.load(env_file)
    assert values["APP_NAME"] == "shop $literal" and values["LOCAL_ONLY"] == "mine"


def test_rotation_replaces_stale_secret_silently(proj) -> None:
    ops.generate(prof())
    envfile.render(prof())
    old = dotenv.load(proj.root / ".env.staging")["JWT_SECRET"]
    ops.rotate(prof(), ["JWT_SECRET"])
    assert [p.kind for p in envfile.check(prof()).problems] == ["stale"]
    result = envfile.render(prof())
    assert result.changed == ["JWT_SECRET"]
    assert dotenv.load(proj.root / ".env.staging")["JWT_SECRET"] not in (old, "")


def test_hand_edited_secret_is_not_overwritten_without_force(proj) -> None:
    ops.generate(prof())
    envfile.render(prof())
    env_file = proj.root / ".env.staging"
    edited = env_file.read_text().replace("JWT_SECRET=", "JWT_SECRET=typed-by-hand\n#")
    env_file.write_text(edited)
    with pytest.raises(SecretsError) as err:
        envfile.render(prof())
    assert "holds values for JWT_SECRET that are not in the store" in str(err.value)
    assert "typed-by-hand" not in str(err.value)
    assert env_file.read_text() == edited  # nothing written
    envfile.render(prof(), force=True)
    assert dotenv.load(env_file)["JWT_SECRET"] == secret_values(prof())["JWT_SECRET"]


def test_render_refuses_when_secrets_are_missing(proj) -> None:
    with pytest.raises(SecretsError) as err:
        envfile.render(prof())
    assert "no value for required DB_PASSWORD, JWT_SECRET, SIGNING_KEY, SIGNING_PUBLIC" in str(err.value)
    assert "stackctl secrets generate -p staging" in str(err.value)
    assert not (proj.root / ".env.staging").exists()


def test_check_reports_each_kind_of_problem(proj) -> None:
    proj.write("compose.yaml", COMPOSE + """
  extra:
    image: busybox
    environment:
      NEEDED: ${NOBODY_DEFINES_THIS:?}
      FINE: ${HAS_DEFAULT:-ok}
""")
    proj.write(".env.example", TEMPLATE + "API_TOKEN=your-token-here\nEMPTY_REQUIRED=\n")
    proj.profile("staging", """
        compose:
          files: [compose.yaml]
        env:
          values:
            NOT_IN_TEMPLATE: x
            JWT_SECRET: typed-into-the-profile
    """)
    ops.generate(prof(), ["DB_PASSWORD"])
    (proj.root / ".env.staging").write_text("STRAY=1\nDB_PASSWORD=hand-typed\n")
    report = envfile.check(prof())
    got = {(p.kind, p.key) for p in report.problems}
    assert ("missing", "JWT_SECRET") in got and ("missing", "SIGNING_KEY") in got
    assert ("missing", "SIGNING_PUBLIC") in got
    assert ("missing", "LOG_LEVEL") in got  # template key absent from the existing env file
    assert ("placeholder", "API_TOKEN") in got
    assert ("empty", "EMPTY_REQUIRED") in got
    assert ("empty", "SENTRY_DSN") not in got  # @optional
    assert ("unknown", "STRAY") in got and ("unknown", "NOT_IN_TEMPLATE") in got
    assert ("undefined", "NOBODY_DEFINES_THIS") in got and ("undefined", "HAS_DEFAULT") not in got
    assert ("hand-edited", "DB_PASSWORD") in got
    assert ("plaintext-secret", "JWT_SECRET") in got
    where = {p.key: p.where for p in report.problems}
    assert where["NOBODY_DEFINES_THIS"] == "compose.yaml: services.extra.environment.NEEDED"
    assert where["STRAY"] == ".env.staging:1"
    assert where["NOT_IN_TEMPLATE"] == "profiles/staging.yaml: env.values.NOT_IN_TEMPLATE"
    assert not report.ok


def test_check_flags_a_placeholder_set_as_a_secret(proj) -> None:
    ops.generate(prof())
    ops.set_value(prof(), "JWT_SECRET", "changeme")
    report = envfile.check(prof())
    assert [(p.kind, p.key) for p in report.problems] == [("placeholder", "JWT_SECRET")]


def test_check_passes_on_a_complete_profile(proj) -> None:
    ops.generate(prof())
    envfile.render(prof())
    report = envfile.check(prof())
    assert report.ok, report.problems


def test_check_without_a_key_still_checks_names(proj, monkeypatch) -> None:
    ops.generate(prof())
    monkeypatch.setenv("XDG_CONFIG_HOME", str(proj.root / "nokeys"))
    report = envfile.check(prof())
    assert report.ok, report.problems
    assert report.notes == ["secret values were not checked: no private key opens .stackctl/secrets/staging.json"]


def test_render_warns_when_env_file_is_not_git_ignored(proj) -> None:
    if subprocess.run(["git", "--version"], check=False, capture_output=True).returncode != 0:
        pytest.fail("git is needed for this test")
    subprocess.run(["git", "init", "-q", str(proj.root)], check=True)
    ops.generate(prof())
    result = envfile.render(prof())
    assert any(".env.staging is not ignored by git" in w for w in result.warnings)
    assert ("not-ignored", "") in {(p.kind, p.key) for p in envfile.check(prof()).problems}
    (proj.root / ".gitignore").write_text(".env.*\n")
    assert not any("not ignored" in w for w in envfile.render(prof()).warnings)


def test_bad_template_is_a_located_error(proj) -> None:
    proj.write(".env.example", "A=1\n# @secret hexx:32\nB=\n")
    with pytest.raises(EnvError) as err:
        envfile.check(prof())
    assert str(err.value).startswith(".env.example: line 3: unknown generator 'hexx:32' (known: ")
    assert err.value.exit_code == 2


# --- API for `up` and the Kubernetes renderer ----------------------------------------------------
def test_services_using(proj) -> None:
    used = services_using(prof(), ["DB_PASSWORD", "JWT_SECRET", "SIGNING_KEY", "LOG_LEVEL"])
    # DB_PASSWORD: api (via the YAML anchor and via DATABASE_URL's reference), db, worker (env_file)
    assert used["DB_PASSWORD"] == {"api", "db", "worker"}
    assert used["JWT_SECRET"] == {"api", "worker"}
    assert used["SIGNING_KEY"] == {"verifier", "worker"}  # through the derived public key
    assert used["LOG_LEVEL"] == {"api", "worker"}
    assert "static" not in set().union(*used.values())


def test_store_digests_name_versions_without_a_key(proj, monkeypatch) -> None:
    """The store digests the renderer's `stackctl.io/secret-hash` covers (kubernetes/gather.py): one per
    stored key, changed by a rotation of that key only, revealing nothing, readable without a key."""
    def digests() -> dict[str, str]:
        store = ops.open_store(prof(), need_key=False)
        return {name: store.digest(name) for name in store.names}

    ops.generate(prof())
    before = digests()
    assert set(before) == {"DB_PASSWORD", "JWT_SECRET", "SIGNING_KEY"}
    values = secret_values(prof())
    assert not any(values[k] in d or d in values[k] for k, d in before.items())
    ops.rotate(prof(), ["JWT_SECRET"])
    after = digests()
    assert after["DB_PASSWORD"] == before["DB_PASSWORD"]  # untouched workloads keep their annotation
    assert after["JWT_SECRET"] != before["JWT_SECRET"]
    monkeypatch.setenv("XDG_CONFIG_HOME", str(Path(os.environ["HOME"]) / "nokey"))
    assert digests() == after  # no private key needed
    assert ops.template_of(prof()).secret_names == {"DB_PASSWORD", "JWT_SECRET", "SIGNING_KEY"}


def test_import_migrates_an_existing_env_file(proj) -> None:
    (proj.root / "old.env").write_text("DB_PASSWORD='pa$$ word'\nJWT_SECRET=changeme\nLOG_LEVEL=x\n"
                                       "SIGNING_KEY=not-a-pem\n")
    out = ops.import_env(prof(), proj.root / "old.env")
    actions = {c.name: c.action for c in out.changes}
    assert actions == {"DB_PASSWORD": "imported", "JWT_SECRET": "skipped", "SIGNING_KEY": "skipped"}
    assert secret_values(prof())["DB_PASSWORD"] == "pa$$ word"


def test_template_changes_reach_rendered_values_but_not_edited_ones(proj) -> None:
    ops.generate(prof())
    envfile.render(prof())
    env_file = proj.root / ".env.staging"
    env_file.write_text(env_file.read_text().replace("APP_NAME='shop $literal'", "APP_NAME=mine"))
    proj.write(".env.example", TEMPLATE.replace("DATABASE_URL=\"postgres://app:${DB_PASSWORD}@db/app\"",
                                                "DATABASE_URL=postgres://app:${DB_PASSWORD}@db2/app")
               .replace("APP_NAME='shop $literal'", "APP_NAME=shop-v2"))
    result = envfile.render(prof())
    values = dotenv.load(env_file)
    assert values["DATABASE_URL"].endswith("@db2/app")  # written by render before: refreshed
    assert values["APP_NAME"] == "mine"  # typed by someone: kept
    assert result.plan.sources["APP_NAME"] == "env-file" and result.plan.sources["DATABASE_URL"] == "template"


def test_optional_secret_left_unset_is_fine(proj) -> None:
    proj.write(".env.example", TEMPLATE + "# @secret @optional\nWEBHOOK_TOKEN=\n")
    ops.generate(prof())
    result = envfile.render(prof())
    assert "WEBHOOK_TOKEN" not in dotenv.load(proj.root / ".env.staging")
    assert "WEBHOOK_TOKEN" not in result.changed
    assert envfile.check(prof()).ok


@pytest.mark.parametrize("value", ["change_this_to_secure_password",
                                   "change_this_to_a_secure_random_key_minimum_32_characters", "changeme",
                                   "CHANGEME123", "change-me", "your-api-key", "your_token", "<token>", "xxxx",
                                   "TODO", "replace_me", "placeholder", "password", "secret"])
def test_placeholders_are_recognised(value: str) -> None:
    assert ops.is_placeholder(value)


@pytest.mark.parametrize("value", ["info", "app_user", "https://app.yourdomain.com", "5432", "changes", "s3cr3t-9f2c",
                                   "exchange_me_not", ""])
def test_real_values_are_not_placeholders(value: str) -> None:
    assert not ops.is_placeholder(value)


def test_in_memory_env_masked_and_with_values(proj, monkeypatch) -> None:
    """What config/render interpolate with: the env `env render` would write, never written; masked,
    every secret is its marker (no key needed), also inside values that refer to it."""
    ops.generate(prof())
    stored = secret_values(prof())
    env = envfile.in_memory(prof(), masked=False)
    assert env is not None and env["DB_PASSWORD"] == stored["DB_PASSWORD"]
    assert env["DATABASE_URL"] == f"postgres://app:{stored['DB_PASSWORD']}@db/app"
    masked = envfile.in_memory(prof(), masked=True)
    assert masked is not None
    assert masked["DB_PASSWORD"] == "<secret:DB_PASSWORD>" and masked["SIGNING_KEY"] == "<secret:SIGNING_KEY>"
    assert masked["DATABASE_URL"] == "postgres://app:<secret:DB_PASSWORD>@db/app"
    assert masked["SIGNING_PUBLIC"] == "<public:SIGNING_KEY>"
    assert masked["LOG_LEVEL"] == "warn $HOME 'x'" and masked["APP_NAME"] == "shop $literal"
    assert not (proj.root / ".env.staging").exists()
    assert not any(v in "\n".join(masked.values()) for v in stored.values())
    # a secret the store lacks but the shell (or a hand-written env file) has is masked too
    (proj.root / ".stackctl/secrets/staging.json").unlink()
    monkeypatch.setenv("JWT_SECRET", "from-the-shell")
    unset: list[str] = []
    masked = envfile.in_memory(prof(), masked=True, unset=unset)
    assert masked is not None and masked["JWT_SECRET"] == "<secret:JWT_SECRET>"
    # one with no value anywhere is a marker too (the profile still renders), and is named as unset
    assert masked["DB_PASSWORD"] == "<secret:DB_PASSWORD>"
    assert "DB_PASSWORD" in unset and "JWT_SECRET" not in unset
    assert envfile.in_memory(prof(), masked=False) is None  # no store: Compose reads the env file as it is
