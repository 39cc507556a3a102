"""`stackctl init` reads the project as Compose does: the shipped `.env` (config values into the
template, secrets into the local store, the file itself never written), `-f`, COMPOSE_FILE,
COMPOSE_PROFILES and the override file; and it never scales a service that keeps state."""

from __future__ import annotations

import json
import re
import stat

import yaml

from stackctl.profile import load_profile

# A self-hosted app as shipped: versions, paths and booleans in .env, dev tweaks in the override file,
# a monitoring service behind a Compose profile enabled from .env.
COMPOSE = """
name: Shop
services:
  db:
    image: postgres:${PG_VERSION}
    environment:
      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD}
    volumes:
      - pgdata:/var/lib/postgresql/data
  cache:
    image: redis:7-alpine
  api:
    image: ghcr.io/acme/shop-api:${IMAGE_TAG}
    read_only: ${READ_ONLY}
    ports: ["8000:8000"]
    volumes:
      - ${MEDIA_DIR}:/srv/media
    environment:
      DATABASE_URL: postgres://shop:${POSTGRES_PASSWORD}@db/shop
      DJANGO_SECRET_KEY: ${DJANGO_SECRET_KEY}
  worker:
    image: ghcr.io/acme/shop-api:${IMAGE_TAG}
    command: ["celery", "worker"]
  grafana:
    image: grafana/grafana:11
    profiles: [monitoring]
volumes:
  pgdata: {}
"""

OVERRIDE = """
services:
  api:
    environment:
      DEBUG: "1"
"""

DOTENV = """\
# Shop: versions and paths
PG_VERSION=16
IMAGE_TAG=1.4.2
MEDIA_DIR=./media
READ_ONLY=true   # the app writes to /srv/media only
POSTGRES_PASSWORD='local-only pw'
DJANGO_SECRET_KEY=dev-not-secret
COMPOSE_PROFILES=monitoring
SMTP_HOST=mail.example.com
"""


def _blocks(text: str) -> dict[str, str]:
    return {b.strip().splitlines()[-1].split("=")[0]: b for b in text.split("\n\n") if "=" in b}


def _shop(project) -> None:
    project.write("compose.yaml", COMPOSE)
    project.write("compose.override.yaml", OVERRIDE)
    project.write(".env", DOTENV)


def test_init_imports_dotenv_and_says_where_each_name_went(project, cli) -> None:
    _shop(project)
    before = (project.root / ".env").read_bytes()
    res = cli("init")
    assert res.exit_code == 0, res
    out = res.stdout
    assert ("imported from .env into .env.example (the default of every profile): PG_VERSION, IMAGE_TAG, "
            "MEDIA_DIR, READ_ONLY, SMTP_HOST") in out
    assert "imported from .env into the local encrypted store: POSTGRES_PASSWORD, DJANGO_SECRET_KEY;" in out
    assert "read from .env as Compose settings (into the profiles): COMPOSE_PROFILES" in out
    for value in ("1.4.2", "local-only pw", "dev-not-secret", "mail.example.com"):
        assert value not in out and value not in res.stderr  # names only, never values
    # the user's .env is never written; a byte-identical private copy is kept for `env render` later
    assert (project.root / ".env").read_bytes() == before
    backup = project.root / ".env.before-stackctl"
    assert backup.read_bytes() == before and stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert ".env.before-stackctl" in out
    # config values are the template's defaults, in their source form; secrets stay out of it
    blocks = _blocks((project.root / ".env.example").read_text())
    assert blocks["IMAGE_TAG"].endswith("\nIMAGE_TAG=1.4.2") and "# @required" in blocks["IMAGE_TAG"]
    assert blocks["MEDIA_DIR"].endswith("MEDIA_DIR=./media") and blocks["READ_ONLY"].endswith("READ_ONLY=true")
    assert blocks["POSTGRES_PASSWORD"].endswith("# @secret password:32\nPOSTGRES_PASSWORD=")
    assert blocks["DJANGO_SECRET_KEY"].endswith("DJANGO_SECRET_KEY=")
    assert "Not referenced by the Compose files" in blocks["SMTP_HOST"] and "# @optional" in blocks["SMTP_HOST"]
    assert "COMPOSE_PROFILES" not in (project.root / ".env.example").read_text()
    # ... and the secrets are in the local profile's store, as the local stack uses them
    from stackctl.secrets import ops

    store = ops.open_store(load_profile(project.root, "local"))
    assert store.value("POSTGRES_PASSWORD") == "local-only pw" and store.value("DJANGO_SECRET_KEY") == "dev-not-secret"
    assert not (project.root / ".stackctl" / "secrets" / "production.json").exists()


def test_init_profiles_follow_compose_defaults(project, cli) -> None:
    _shop(project)
    assert cli("init").exit_code == 0
    local = load_profile(project.root, "local")
    assert [f.name for f in local.compose.files] == ["compose.yaml", "compose.override.yaml"]
    assert local.compose.profiles == ("monitoring",) and local.stack == "shop"
    prod = load_profile(project.root, "production")
    assert [f.name for f in prod.compose.files] == ["compose.yaml"]  # the override is for local development
    assert prod.compose.profiles == ("monitoring",)
    text = (project.root / "profiles" / "production.yaml").read_text()
    assert "# compose.override.yaml is left out" in text
    # never a database or a cache: the stateless service that serves a port is the example
    assert list(prod.services) == ["api"] and prod.services["api"].replicas == 2


def test_init_json_report(project, cli) -> None:
    _shop(project)
    res = cli("init", "-o", "json")
    assert res.exit_code == 0, res
    data = json.loads(res.stdout)
    assert data["compose"] == {"files": ["compose.yaml", "compose.override.yaml"], "production_files": ["compose.yaml"],
                               "profiles": ["monitoring"], "from": "default"}
    assert data["production_replicas"] == "api"
    assert data["imported"] == {"from": [".env"], "template": ["PG_VERSION", "IMAGE_TAG", "MEDIA_DIR", "READ_ONLY",
                                                               "SMTP_HOST"],
                                "store": ["POSTGRES_PASSWORD", "DJANGO_SECRET_KEY"], "skipped": [],
                                "settings": ["COMPOSE_PROFILES"]}
    assert "local-only pw" not in res.stdout


def test_init_never_scales_state(project, cli) -> None:
    project.write("compose.yaml", """
        services:
          db:
            image: mariadb:11
          cache:
            image: docker.io/library/redis:7
          search:
            image: docker.elastic.co/elasticsearch/elasticsearch:8.13.0
          files:
            image: ghcr.io/acme/files:1
            volumes: [uploads:/srv/uploads]
          pg:
            image: ghcr.io/acme/custom-db:1
            volumes: ["./pgdata:/var/lib/postgresql/data"]
        volumes: {uploads: {}}
    """)
    res = cli("init")
    assert res.exit_code == 0, res
    text = (project.root / "profiles" / "production.yaml").read_text()
    assert not yaml.safe_load(text).get("services") and not re.search(r"^\s+replicas:", text, re.MULTILINE)
    assert load_profile(project.root, "production").services == {}
    assert "production scales no service (no stateless one found)" in res.stdout


def test_init_scales_a_stateless_service_not_the_first_alphabetically(project, cli) -> None:
    project.write("compose.yaml", """
        services:
          aaa-postgres:
            image: postgres:16
          adminer:
            image: adminer
          web:
            build: .
            ports: ["8080:8080"]
    """)
    assert cli("init").exit_code == 0
    assert list(load_profile(project.root, "production").services) == ["web"]  # serves a port: preferred


def test_compose_file_and_profiles_from_the_shell(project, cli) -> None:
    project.write("base.yml", "services:\n  web:\n    image: nginx:1.27\n")
    project.write("extra.yml", "services:\n  tools:\n    image: busybox\n    profiles: [ops]\n")
    project.write("compose.override.yaml", "services:\n  web:\n    environment: {A: b}\n")
    res = cli("init", env={"COMPOSE_FILE": "base.yml:extra.yml", "COMPOSE_PROFILES": "ops, debug,ops"})
    assert res.exit_code == 0, res
    assert "Compose files (COMPOSE_FILE in the environment): base.yml, extra.yml" in res.stdout
    assert "Compose profiles (COMPOSE_PROFILES in the environment): ops, debug" in res.stdout
    for name in ("local", "production"):  # named explicitly: both profiles, no override file
        prof = load_profile(project.root, name)
        assert [f.name for f in prof.compose.files] == ["base.yml", "extra.yml"]
        assert prof.compose.profiles == ("ops", "debug")


def test_compose_file_from_dotenv_and_f_wins(project, cli) -> None:
    project.write("compose.yaml", "services:\n  web:\n    image: nginx\n")
    project.write("compose.prod.yaml", "services:\n  web:\n    restart: always\n")
    project.write(".env", "COMPOSE_FILE=compose.yaml:compose.prod.yaml\nCOMPOSE_PROJECT_NAME=My Shop\n")
    assert cli("init").exit_code == 0
    local = load_profile(project.root, "local")
    assert [f.name for f in local.compose.files] == ["compose.yaml", "compose.prod.yaml"]
    assert local.stack == "my-shop"  # COMPOSE_PROJECT_NAME, as Compose names the project
    assert cli("init", "--force", "-f", "compose.yaml").exit_code == 0
    assert [f.name for f in load_profile(project.root, "local").compose.files] == ["compose.yaml"]


def test_compose_file_naming_a_missing_file_is_a_located_error(project, cli) -> None:
    project.write("compose.yaml", "services:\n  web:\n    image: nginx\n")
    project.write(".env", "COMPOSE_FILE=compose.yaml:compose.gone.yaml\n")
    res = cli("init")
    assert res.exit_code == 2
    assert "compose.gone.yaml: COMPOSE_FILE: COMPOSE_FILE (in .env) names compose.gone.yaml, which does not exist" \
        in res.stderr
    assert not (project.root / "profiles" / "local.yaml").exists()


def test_env_file_option_and_no_import(project, cli) -> None:
    project.write("compose.yaml", "services:\n  web:\n    image: nginx:${TAG}\n    environment: {K: $API_TOKEN}\n")
    project.write(".env", "TAG=from-dotenv\n")
    project.write("deploy/dev.env", "TAG=1.27\nAPI_TOKEN=tok-123\n")
    res = cli("init", "--env-file", "deploy/dev.env")
    assert res.exit_code == 0, res
    assert "TAG=1.27" in (project.root / ".env.example").read_text()
    assert "into the local encrypted store: API_TOKEN" in res.stdout
    assert not (project.root / ".env.before-stackctl").exists()  # .env was not the import: nothing to keep
    res = cli("init", "--force", "--no-import-env")
    assert res.exit_code == 0, res
    text = (project.root / ".env.example").read_text()
    assert "TAG=\n" in text and "imported" not in res.stdout


def test_import_env_merges_into_an_initialised_project(project, cli) -> None:
    project.write("compose.yaml", "services:\n  web:\n    image: nginx:${TAG}\n    environment: {L: $LEVEL}\n")
    assert cli("init").exit_code == 0  # no .env yet: blank template values
    profiles_before = (project.root / "profiles" / "local.yaml").read_text()
    project.write(".env", 'TAG=1.27\nLEVEL=debug\nNEW_VAR="a b"\nSTRIPE_API_KEY=sk_test_1\n')
    template = project.root / ".env.example"
    template.write_text(template.read_text().replace("LEVEL=", "LEVEL=info"))
    res = cli("init", "--import-env")
    assert res.exit_code == 0, res
    text = template.read_text()
    assert "\nTAG=1.27\n" in text and "\nLEVEL=info\n" in text and "\nNEW_VAR=\"a b\"\n" in text
    assert "# @secret\nSTRIPE_API_KEY=\n" in text
    assert "into .env.example (the default of every profile): NEW_VAR, TAG" in res.stdout
    assert "into the local encrypted store: STRIPE_API_KEY" in res.stdout
    assert "kept the template's own values for LEVEL" in res.stderr
    assert (project.root / "profiles" / "local.yaml").read_text() == profiles_before
    assert "sk_test_1" not in res.stdout + res.stderr
    again = cli("init", "--import-env")  # idempotent: nothing new, the store holds the same value
    assert again.exit_code == 0 and template.read_text() == text
    assert "STRIPE_API_KEY (kept: the store holds the same value)" in again.stdout


def test_import_env_needs_a_dotenv(project, cli) -> None:
    project.write("compose.yaml", "services:\n  web:\n    image: nginx\n")
    assert cli("init").exit_code == 0
    res = cli("init", "--import-env")
    assert res.exit_code == 2 and "no .env to import" in res.stderr


def test_a_committed_dotenv_is_never_the_rendered_env_file(project, cli) -> None:
    import subprocess

    project.write("compose.yaml", "services:\n  web:\n    image: nginx:${TAG}\n    environment: {P: $DB_PASSWORD}\n")
    project.write(".env", "TAG=1.27\nDB_PASSWORD=dev\n")
    git = ["git", "-C", str(project.root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", str(project.root)], check=True)
    subprocess.run([*git, "add", ".env"], check=True)
    subprocess.run([*git, "commit", "-qm", "shipped defaults"], check=True)
    res = cli("init")
    assert res.exit_code == 0, res
    assert "the local profile renders its env into .env.local" in res.stdout
    assert load_profile(project.root, "local").env.file.name == ".env.local"
    assert not (project.root / ".env.before-stackctl").exists()  # nothing will rewrite .env
    assert cli("env", "render", "-p", "local").exit_code == 0
    assert (project.root / ".env").read_text() == "TAG=1.27\nDB_PASSWORD=dev\n"
    assert "TAG=1.27" in (project.root / ".env.local").read_text()


def test_a_password_inside_a_url_is_a_secret(project, cli) -> None:
    project.write("compose.yaml", "services:\n  api:\n    image: nginx\n    environment:\n"
                                  "      DATABASE_URL: $DATABASE_URL\n      CACHE_URL: $CACHE_URL\n")
    project.write(".env", "DB_PASSWORD=pw\nDATABASE_URL=postgres://app:hunter2@db/app\n"
                          "CACHE_URL=redis://:${DB_PASSWORD}@cache:6379/0\n")
    res = cli("init")
    assert res.exit_code == 0, res
    text = (project.root / ".env.example").read_text()
    assert "hunter2" not in text and "# @secret\nDATABASE_URL=\n" in text  # never into the committed template
    assert "CACHE_URL=redis://:${DB_PASSWORD}@cache:6379/0" in text  # a reference is no credential
    assert "into the local encrypted store: DB_PASSWORD, DATABASE_URL" in res.stdout


def test_no_import_env_still_follows_compose_settings_in_dotenv(project, cli) -> None:
    project.write("compose.yaml", "services:\n  web:\n    image: nginx\n  dbg:\n    image: busybox\n"
                                  "    profiles: [debug]\n")
    project.write(".env", "COMPOSE_PROFILES=debug\nTOKEN=abc\n")
    res = cli("init", "--no-import-env")
    assert res.exit_code == 0, res
    assert load_profile(project.root, "local").compose.profiles == ("debug",)  # as `docker compose` would
    assert "TOKEN" not in (project.root / ".env.example").read_text() and "imported" not in res.stdout
    assert not (project.root / ".env.before-stackctl").exists()
