"""The project as Compose reads it: after `init`, stackctl resolves what `docker compose config`
resolves; blank variables are named once each with every use (an error where the result cannot
work); a `.env` or Compose setting the profile does not follow is said."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

pytestmark = pytest.mark.docker

COMPOSE = """
name: shop
services:
  db:
    image: postgres:${PG_VERSION}
    environment:
      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD}
    volumes:
      - pgdata:/var/lib/postgresql/data
  api:
    image: ghcr.io/acme/shop-api:${IMAGE_TAG}
    read_only: ${READ_ONLY}
    ports: ["8000:8000"]
    volumes:
      - ${MEDIA_DIR}:/srv/media
    environment:
      DATABASE_URL: postgres://shop:${POSTGRES_PASSWORD}@db/shop
      LOG_LEVEL: ${LOG_LEVEL:-info}
    healthcheck:
      test: ["CMD", "wget", "-q", "--spider", "http://localhost:8000/health"]
      retries: ${HEALTH_RETRIES}
  worker:
    image: ghcr.io/acme/shop-api:${IMAGE_TAG}
    command: ["celery", "worker"]
volumes:
  pgdata: {}
"""

DOTENV = """\
PG_VERSION=16
IMAGE_TAG=1.4.2
MEDIA_DIR=./media
READ_ONLY=true
HEALTH_RETRIES=5
POSTGRES_PASSWORD="s3cret pw"
"""


def _compose_config(root: Any) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    res = subprocess.run(["docker", "compose", "config", "--format", "json"], cwd=root, env=env,
                         capture_output=True, text=True, check=True)
    return dict(json.loads(res.stdout))


def _facts(services: dict[str, Any]) -> dict[str, Any]:
    """What a deployment depends on, per service, from either JSON (Compose's or stackctl's)."""
    out = {}
    for name, svc in services.items():
        hc = svc.get("healthcheck") or {}
        out[name] = {"image": svc.get("image"), "read_only": bool(svc.get("read_only")),
                     "environment": svc.get("environment") or {},
                     "volumes": sorted((str(v.get("source")), v["target"]) for v in svc.get("volumes") or ()),
                     "retries": hc.get("retries")}
    return out


def test_after_init_config_sees_what_compose_sees(project, cli) -> None:
    project.write("compose.yaml", COMPOSE)
    project.write(".env", DOTENV)
    reference = _facts(_compose_config(project.root)["services"])  # `docker compose` on the shipped .env
    assert reference["api"]["image"] == "ghcr.io/acme/shop-api:1.4.2" and reference["api"]["retries"] == 5
    assert cli("init").exit_code == 0
    assert cli("env", "render", "-p", "local").exit_code == 0
    res = cli("config", "-p", "local", "-o", "json")
    assert res.exit_code == 0, res
    mine = _facts({s["name"]: s for s in json.loads(res.stdout)["services"]})
    masked = json.loads(json.dumps(reference).replace("s3cret pw", "<secret:POSTGRES_PASSWORD>"))
    assert json.loads(json.dumps(mine)) == masked
    assert "s3cret pw" not in res.stdout + res.stderr
    assert "Warning" not in res.stderr and "not set" not in res.stderr
    # production reads no .env, yet gets the same values from the template (secrets: its own store)
    prod = cli("config", "-p", "production", "-o", "json")
    assert prod.exit_code == 0, prod
    prod_facts = _facts({s["name"]: s for s in json.loads(prod.stdout)["services"]})
    assert prod_facts["api"]["image"] == "ghcr.io/acme/shop-api:1.4.2" and prod_facts["api"]["read_only"] is True
    assert prod_facts["db"]["image"] == "postgres:16" and prod_facts["api"]["retries"] == 5
    assert "no value yet for POSTGRES_PASSWORD" in prod.stderr


def _bare(project, compose: str, dotenv: str | None = None, template: str | None = None) -> None:
    """A hand-written profile: the env stackctl passes is the template (if any), no .env read."""
    project.write("compose.yaml", compose)
    if dotenv is not None:
        project.write(".env", dotenv)
    if template is not None:
        project.write(".env.example", template)
    project.profile("production", "compose: {files: [compose.yaml]}\nenv: {file: .env.production}\n")


def test_blank_image_tag_is_an_error_naming_the_variable_once(project, cli) -> None:
    _bare(project, COMPOSE.replace("${HEALTH_RETRIES}", "3").replace("${READ_ONLY}", "false")
          .replace("${MEDIA_DIR}", "./media"), template="PG_VERSION=16\n")
    res = cli("config", "-p", "production")
    assert res.exit_code == 2, res
    assert res.stderr.count("IMAGE_TAG") == 1, res.stderr
    assert ("Error: IMAGE_TAG is not set (used in compose.yaml: services.api.image, services.worker.image), so the "
            "result cannot work (services.api.image: image 'ghcr.io/acme/shop-api:' is not an image reference "
            "(empty tag), services.worker.image: image 'ghcr.io/acme/shop-api:' is not an image reference "
            "(empty tag)) (set it in .env.example or profiles/production.yaml env.values)") in res.stderr
    assert "Traceback" not in res.stderr


def test_blank_template_value_that_compose_cannot_cast(project, cli) -> None:
    _bare(project, COMPOSE, template="PG_VERSION=16\nIMAGE_TAG=1\nMEDIA_DIR=./m\nREAD_ONLY=\nHEALTH_RETRIES=3\n")
    res = cli("config", "-p", "production")
    assert res.exit_code == 2
    assert ("Error: compose.yaml: services.api.read_only: READ_ONLY is blank (used in compose.yaml: "
            "services.api.read_only): failed to cast to expected type: invalid boolean") in res.stderr
    assert "(set it in .env.example or profiles/production.yaml env.values)" in res.stderr


def test_blank_volume_source_names_the_variable(project, cli) -> None:
    _bare(project, COMPOSE, template="PG_VERSION=16\nIMAGE_TAG=1\nREAD_ONLY=true\nHEALTH_RETRIES=3\n")
    res = cli("config", "-p", "production")
    assert res.exit_code == 2
    assert "MEDIA_DIR is not set (used in compose.yaml: services.api.volumes[0])" in res.stderr
    assert "empty section between colons" in res.stderr and res.stderr.count("MEDIA_DIR") == 1


def test_unset_variable_warns_once_with_every_use(project, cli) -> None:
    _bare(project, """
        services:
          api:
            image: nginx:1.27
            environment: {SENTRY_DSN: "${SENTRY_DSN}", OTHER: "x"}
          worker:
            image: nginx:1.27
            environment: {SENTRY_DSN: "${SENTRY_DSN}"}
            labels: {dsn: "$SENTRY_DSN"}
    """)
    res = cli("config", "-p", "production")
    assert res.exit_code == 0, res
    lines = [ln for ln in res.stderr.splitlines() if "SENTRY_DSN" in ln]
    assert lines == ["Warning: compose: SENTRY_DSN is not set (used in compose.yaml: "
                     "services.api.environment.SENTRY_DSN, services.worker.environment.SENTRY_DSN, "
                     "services.worker.labels.dsn); Compose uses a blank string"]


def test_dotenv_the_profile_does_not_read_is_a_warning(project, cli) -> None:
    _bare(project, "services:\n  api:\n    image: nginx:1.27\n    environment: {FEATURE: '${FEATURE_X}'}\n",
          dotenv="FEATURE_X=on\nUNUSED=1\nCOMPOSE_PROFILES=\n")
    res = cli("config", "-p", "production")
    assert res.exit_code == 0, res
    assert ("Warning: profiles/production.yaml: env: .env is not read for this profile, but the Compose files use "
            "FEATURE_X from it (`docker compose` alone would read it; stackctl leaves them unset). Import it with "
            "`stackctl init --import-env`") in res.stderr
    assert "UNUSED" not in res.stderr


def test_notes_where_the_compose_environment_disagrees(project, cli) -> None:
    project.write("compose.yaml", """
        services:
          web: {image: "nginx:1.27"}
          debug: {image: busybox, profiles: [debug]}
    """)
    project.write("compose.override.yaml", "services:\n  web:\n    environment: {DEV: '1'}\n")
    project.write("other.yaml", "services:\n  x: {image: busybox}\n")
    project.write(".env", "COMPOSE_FILE=other.yaml\n")
    project.profile("local", "compose: {files: [compose.yaml]}\n")
    res = cli("config", "-o", "json", env={"COMPOSE_PROFILES": "debug"})
    assert res.exit_code == 0, res
    notes = [ln for ln in res.stderr.splitlines() if ln.startswith("note:")]
    assert notes == [
        "note: COMPOSE_FILE in .env names other.yaml; stackctl uses profiles/local.yaml compose.files (compose.yaml)",
        "note: COMPOSE_PROFILES in the environment enables debug (Compose applies it: profiles/local.yaml sets no "
        "compose.profiles; set them there to make it explicit)",
        "note: compose.override.yaml is not in profiles/local.yaml compose.files (`docker compose` alone loads it); "
        "add it there if this profile needs it",
    ]
    assert [s["name"] for s in json.loads(res.stdout)["services"]] == ["debug", "web"]  # what Compose did
    project.profile("local", "compose: {files: [compose.yaml, compose.override.yaml], profiles: [debug]}\n")
    quiet = cli("config", env={"COMPOSE_PROFILES": "debug"})
    assert quiet.exit_code == 0 and "COMPOSE_PROFILES" not in quiet.stderr and "alone loads" not in quiet.stderr


def test_the_import_the_warning_advises_silences_it(project, cli) -> None:
    _bare(project, "services:\n  api:\n    image: nginx:1.27\n    environment:\n"
                   "      FEATURE: '${FEATURE_X}'\n      PASSWORD: '${API_PASSWORD}'\n",
          dotenv="FEATURE_X=on\nAPI_PASSWORD=pw-123\n")
    project.profile("local", "compose: {files: [compose.yaml]}\n")  # hand-written: no template yet
    assert "stackctl init --import-env" in cli("config", "-p", "production").stderr
    res = cli("init", "--import-env")
    assert res.exit_code == 0, res
    assert "into .env.example (the default of every profile): FEATURE_X" in res.stdout
    assert "into the local encrypted store: API_PASSWORD" in res.stdout
    after = cli("config", "-p", "production", "-o", "json")
    assert after.exit_code == 0 and "is not read for this profile" not in after.stderr
    env = json.loads(after.stdout)["services"][0]["environment"]
    assert env == {"FEATURE": "on", "PASSWORD": "<secret:API_PASSWORD>"}
