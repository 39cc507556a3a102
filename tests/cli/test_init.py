"""`stackctl init`: scaffold from an existing Compose project; never overwrite without --force."""

from __future__ import annotations

from stackctl.profile import load_profile

COMPOSE = """
name: Shop App
services:
  api:
    image: example/api:1
    environment:
      DB_PASSWORD: ${DB_PASSWORD:?set it}
      STRIPE_API_KEY: ${STRIPE_API_KEY}
      LOG_LEVEL: ${LOG_LEVEL:-info}
      GREETING: ${GREETING:-hello world}
      PORT: "${PORT}"
  worker:
    image: example/worker:1
    command: ["run", "--secret=${SESSION_SECRET}"]
"""


def test_init_scaffolds_profiles_template_and_gitignore(project, cli) -> None:
    project.write("compose.yaml", COMPOSE)
    project.write(".gitignore", "node_modules/\n.env")  # no trailing newline, one line already there
    res = cli("init")
    assert res.exit_code == 0, res
    text = (project.root / ".env.example").read_text()
    blocks = {b.strip().splitlines()[-1].split("=")[0]: b for b in text.split("\n\n") if "=" in b}
    assert "# @secret password:32" in blocks["DB_PASSWORD"]
    assert "# @secret\n" in blocks["STRIPE_API_KEY"] + "\n"  # provided by a third party: no generator
    assert "# @secret hex:32" in blocks["SESSION_SECRET"] and "Used by worker." in blocks["SESSION_SECRET"]
    assert "# @optional" in blocks["LOG_LEVEL"] and blocks["LOG_LEVEL"].endswith("LOG_LEVEL=info")
    assert blocks["GREETING"].endswith("GREETING='hello world'")
    assert "# @required" in blocks["PORT"]
    gitignore = (project.root / ".gitignore").read_text().splitlines()
    assert gitignore[:2] == ["node_modules/", ".env"]
    assert gitignore.count(".env") == 1 and ".env.*" in gitignore and "!.env.example" in gitignore
    # the scaffolded profiles are valid and point at the Compose file
    local = load_profile(project.root, "local")
    assert [f.name for f in local.compose.files] == ["compose.yaml"] and local.stack == "shop-app"
    prod = load_profile(project.root, "production")
    assert prod.kubernetes is not None and prod.kubernetes.protected and prod.kubernetes.namespace == "shop-app-prod"
    assert "api" in prod.services


def test_init_refuses_to_overwrite_and_writes_nothing(project, cli) -> None:
    project.write("compose.yaml", COMPOSE)
    project.write(".env.example", "KEEP=me\n")
    res = cli("init")
    assert res.exit_code == 2
    assert ".env.example already exists; nothing was written (pass --force to overwrite)" in res.stderr
    assert (project.root / ".env.example").read_text() == "KEEP=me\n"
    assert not (project.root / "profiles" / "local.yaml").exists()
    assert not (project.root / ".gitignore").exists()
    assert cli("init", "--force").exit_code == 0
    assert "DB_PASSWORD=" in (project.root / ".env.example").read_text()


def test_init_without_compose_file(project, cli) -> None:
    res = cli("init")
    assert res.exit_code == 2 and "no Compose file found" in res.stderr and "--compose FILE" in res.stderr


def test_init_bad_compose_is_located(project, cli) -> None:
    project.write("docker-compose.yml", "services:\n  api:\n    image: [unclosed\n")
    res = cli("init")
    assert res.exit_code == 2
    assert res.stderr.startswith("Error: docker-compose.yml: line 4: invalid YAML")


def test_init_explicit_compose_and_missing_file(project, cli) -> None:
    project.write("deploy/stack.yml", "services:\n  web:\n    image: x\n    environment: {A: $A}\n")
    assert cli("init", "--compose", "deploy/stack.yml").exit_code == 0
    assert "deploy/stack.yml" in (project.root / "profiles" / "local.yaml").read_text()
    res = cli("init", "--compose", "nope.yml", "--force")
    assert res.exit_code == 2 and "nope.yml: --compose: file not found" in res.stderr
