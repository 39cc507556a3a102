"""No command prints a secret's value unless asked to (`--reveal`, `--include-secrets`).

A project with generated secrets (the store) for two profiles — `local` with a rendered `.env`,
`production` with no env file at all — runs every command that needs neither a cluster nor
changes in the Docker engine, and greps what it printed (stdout and stderr, and the files `render`
writes without values) for every value the store ever held, in plain and in base64. The commands
are enumerated from the typer app, so a new command fails this test until it is run here or
skipped below with a reason.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from stackctl.cli.app import app
from stackctl.profile import load_profile
from stackctl.secrets import ops

pytestmark = pytest.mark.docker

COMPOSE = """
services:
  web:
    image: example/web:1
    ports: ["8080:8000"]
    environment:
      DATABASE_URL: postgres://app:${DB_PASSWORD}@db/app
      REDIS_URL: redis://:${REDIS_PASSWORD}@cache:6379/0
      JWT_SECRET: ${JWT_SECRET}
      JWT_PUBLIC_KEY: ${JWT_PUBLIC_KEY}
      STRIPE_KEY: ${STRIPE_KEY}
      LOG_LEVEL: ${LOG_LEVEL}
      CACHE_URL: ${CACHE_URL}
      JAVA_OPTS: -Xmx1g -Ddb.password=${DB_PASSWORD}
    volumes:
      - ./.env:/app/.env:ro
    labels:
      example.io/dsn: postgres://app:${DB_PASSWORD}@db/app
    depends_on:
      migrate: {condition: service_completed_successfully}
  worker:
    image: example/web:1
    command: ["worker", "--redis", "redis://:${REDIS_PASSWORD}@cache:6379/0"]
    env_file:
      - path: .env
        required: false
  migrate:
    image: example/web:1
    command: ["migrate", "--database", "${DATABASE_URL}"]
    restart: "no"
  db:
    image: postgres:17
    environment:
      POSTGRES_PASSWORD: ${DB_PASSWORD:?}
    healthcheck:
      test: ["CMD", "pg_isready", "-U", "app"]
  cache:
    image: redis:7
    command: ["redis-server", "--requirepass", "${REDIS_PASSWORD}"]
    healthcheck:
      test: ["CMD", "redis-cli", "-a", "${REDIS_PASSWORD}", "ping"]
"""

TEMPLATE = """
# @secret password:24
DB_PASSWORD=
# @secret hex:16
REDIS_PASSWORD=
# @secret hex:32
JWT_SECRET=
# @secret ed25519
JWT_SIGNING_KEY=
# @public JWT_SIGNING_KEY
JWT_PUBLIC_KEY=
# @secret
STRIPE_KEY=
DATABASE_URL=postgres://app:${DB_PASSWORD}@db/app
CACHE_URL=redis://:${REDIS_PASSWORD}@cache:6379/0
JAVA_OPTS=-Ddb.password=${DB_PASSWORD}
LOG_LEVEL=info
"""

AGE_RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"  # `render gitops` encrypts to it
STRIPE = "sk_live_51HandTypedValue0123456789"
SET_BY_HAND = {"local": STRIPE, "production": STRIPE + "Prod"}

# Commands not run here, and why. Everything else in the app must be in `invocations()`.
SKIPPED = {
    ("up",): "starts containers (engine side effects); tests/e2e",
    ("down",): "removes containers (engine side effects); tests/e2e",
    ("restart",): "restarts containers (engine side effects); tests/e2e",
    ("logs",): "prints what the containers print (their own output, not stackctl's); tests/e2e",
    ("status",): "reads running containers from the engine (names, states, ports; no environment); tests/e2e",
    ("promote",): "needs a cluster (tests/k8s); --dry-run and --diff too (server-side)",
    ("history",): "needs a cluster (tests/k8s)",
    ("rollback",): "needs a cluster (tests/k8s)",
    ("run-job",): "needs a cluster (tests/k8s)",
    ("previews", "list"): "needs a cluster (tests/k8s/test_previews.py checks its output for the values)",
    ("previews", "prune"): "needs a cluster (tests/k8s/test_previews.py)",
    ("dev",): "needs a cluster (tests/node); prints promote's progress and the pods' own logs",
}

# Flags that print or write values because the user asked for them: not run without them here.
REVEALING = ("--reveal", "--with-secrets", "--include-secrets")


def command_paths(command: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every leaf command of the app (typer's click objects: a group has `commands`)."""
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from command_paths(sub, (*prefix, name))
    else:
        yield prefix


def _command(path: tuple[str, ...]) -> Any:
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


def _dir_flag() -> str:
    """The `render kubernetes` option that takes a directory (its metavar is DIR)."""
    for param in _command(("render", "kubernetes")).params:
        if param.param_type_name == "option" and param.metavar == "DIR":
            return param.opts[0]
    raise AssertionError("render kubernetes has no DIR option")


def invocations(tmp: Path, other_public_key: Callable[[], str]) -> dict[tuple[str, ...], list[list[str]]]:
    """Per command path: the argument lists to run, in order (both profiles where one applies)."""
    out_dir = tmp / "rendered"
    both = ("local", "production")
    return {
        ("init",): [["-C", str(tmp / "fresh"), "init", "-f", str(tmp / "fresh" / "compose.yaml")]],
        ("config",): [["config", "-p", p, *o] for p in both for o in ([], ["-o", "json"], ["-o", "yaml"])],
        ("doctor",): [["doctor", "--offline", "-p", p, *o] for p in both for o in ([], ["-o", "json"])],
        ("env", "check"): [["env", "check", "-p", p, *o] for p in both for o in ([], ["-o", "json"])],
        ("env", "render"): [["env", "render", "-p", "local", "--dry-run"], ["env", "render", "-p", "local"],
                            ["env", "render", "-p", "local", "-o", "json"]],
        ("secrets", "keygen"): [["secrets", "keygen", "--name", "ci"]],
        ("secrets", "init"): [["secrets", "init", "-p", p] for p in both],
        ("secrets", "generate"): [["secrets", "generate", "-p", p, *o] for p in both for o in ([], ["-o", "json"])],
        ("secrets", "set"): [["secrets", "set", "STRIPE_KEY", "-p", p] for p in both],
        ("secrets", "import"): [["secrets", "import", "-p", "local", "--overwrite"]],
        ("secrets", "rotate"): [["secrets", "rotate", "JWT_SECRET", "-p", p] for p in both]
        + [["secrets", "rotate", "--all", "-p", "production", "-o", "json"]],
        ("secrets", "rollback"): [["secrets", "rollback", "JWT_SECRET", "-p", p] for p in both],
        ("secrets", "list"): [["secrets", "list", "-p", p, *o] for p in both for o in ([], ["-o", "json"])],
        ("secrets", "show"): [["secrets", "show", n, "-p", p] for p in both
                              for n in ("DB_PASSWORD", "JWT_SIGNING_KEY", "STRIPE_KEY")]
        + [["secrets", "show", "JWT_SECRET", "-p", "production", "-V", "1"]],
        ("secrets", "history"): [["secrets", "history", "JWT_SECRET", "-p", p, *o] for p in both
                                 for o in ([], ["-o", "json"])],
        ("secrets", "verify"): [["secrets", "verify", "-p", p, *o] for p in both for o in ([], ["-o", "json"])],
        ("secrets", "rekey"): [["secrets", "rekey", "-p", "production"]],
        ("secrets", "recipients", "list"): [["secrets", "recipients", "list", "-p", p, *o] for p in both
                                            for o in ([], ["-o", "json"])],
        ("secrets", "recipients", "add"): [["secrets", "recipients", "add", "ci", other_public_key(),
                                            "-p", "production"]],
        ("secrets", "recipients", "remove"): [["secrets", "recipients", "remove", "ci", "-p", "production"]],
        ("secrets", "delete"): [["secrets", "delete", "STRIPE_KEY", "-p", "local"]],
        ("render", "kubernetes"): [["render", "kubernetes", "-p", p] for p in both]
        + [["render", "kubernetes", "-p", p, _dir_flag(), str(out_dir / p)] for p in both],
        ("render", "gitops"): [["render", "gitops", "-p", "production", "--out", str(out_dir / "gitops"), *o]
                               for o in ([], ["-o", "json"])],
        ("render", "helm"): [["render", "helm", "-p", "production", "--out", str(out_dir / "helm")]],
    }


def _forms(value: str) -> set[str]:
    """What a leak of `value` looks like: itself, base64 (a Secret's data), and for a multi-line
    value (a PEM key) each of its long lines."""
    forms = {value, base64.b64encode(value.encode()).decode()}
    forms |= {line for line in value.splitlines() if len(line) >= 16 and "-----" not in line}
    return forms


def _every_value(root: Path) -> dict[str, str]:
    """label → every value the stores ever held (all kept versions), plus the hand-set ones."""
    found = {f"set-by-hand/{p}": v for p, v in SET_BY_HAND.items()}
    for name in ("local", "production"):
        store = ops.open_store(load_profile(root, name))
        for key in store.names:
            for version in store.entry(key).versions:
                found[f"{name}/{key}/v{version.v}"] = store.value(key, version.v)
    return found


def test_every_command_is_run_or_skipped_with_a_reason(tmp_path: Path) -> None:
    paths = set(command_paths(typer.main.get_command(app)))
    run = set(invocations(tmp_path, lambda: "key"))
    assert not run & set(SKIPPED)
    assert paths == run | set(SKIPPED), "a command is neither run by this test nor skipped with a reason"


def test_no_command_prints_a_secret_value(project: Any, cli: Any, tmp_path: Path) -> None:
    project.write("compose.yaml", COMPOSE)
    project.write(".env.example", TEMPLATE)
    project.write(".gitignore", ".env\n.env.*\n")
    project.profile("local", "compose: {files: [compose.yaml]}\n")
    project.profile("production", "compose: {files: [compose.yaml]}\nkubernetes: {namespace: shop}\n"
                                  f"gitops: {{secrets: {{provider: sops, recipients: [{AGE_RECIPIENT}]}}}}\n")
    fresh = tmp_path / "fresh"
    (fresh / "profiles").mkdir(parents=True)
    (fresh / "compose.yaml").write_text(COMPOSE)

    def other_key() -> str:
        res = cli("secrets", "keygen", "--name", "teammate", env={"XDG_CONFIG_HOME": str(tmp_path / "teammate")})
        return str(res.stdout.strip())

    outputs: list[tuple[str, str]] = []
    failed: list[str] = []
    order = invocations(tmp_path, other_key)
    # Stores and the local env file first, so that every later command has values to leak.
    first = [("secrets", "init"), ("secrets", "generate"), ("secrets", "set"), ("env", "render")]
    for path in [*first, *(p for p in order if p not in first)]:
        for args in order[path]:
            assert not set(args) & set(REVEALING), args
            profile = args[args.index("-p") + 1] if "-p" in args else "local"
            res = cli(*args, input=SET_BY_HAND[profile] + "\n" if path == ("secrets", "set") else None)
            if res.exit_code not in (0, 1):  # doctor --offline exits 1 (no cluster to reach)
                failed.append(f"{' '.join(args)}: exit {res.exit_code}: {res.stderr.strip()[:300]}")
            outputs.append((" ".join(args), res.stdout + res.stderr))
    assert not (project.root / ".env.production").exists()  # production ran from the store alone
    for written in sorted((tmp_path / "rendered").rglob("*")):
        if written.is_file():
            outputs.append((f"file {written.relative_to(tmp_path)}", written.read_text()))

    values = _every_value(project.root)
    assert len(values) >= 14
    leaks = sorted({(where, label) for label, value in values.items() for form in _forms(value)
                    for where, text in outputs if form in text})
    assert not leaks, "secret values printed (command, secret):\n" + "\n".join(f"{w}: {lbl}" for w, lbl in leaks)
    assert not failed, "\n".join(failed)

    _values_only_where_asked_for(project.root, cli, tmp_path / "with-values")

    # The grep finds what is there: --reveal prints the value, and only then.
    db = ops.open_store(load_profile(project.root, "production")).values()["DB_PASSWORD"]
    revealed = cli("config", "-p", "production", "-o", "json", "--reveal")
    assert revealed.exit_code == 0 and f"postgres://app:{db}@db/app" in revealed.stdout


def _values_only_where_asked_for(root: Path, cli: Any, out_dir: Path) -> None:
    """`--include-secrets --out-dir`: the values are in the 0600 Secret manifests and nowhere else
    (not in a ConfigMap, not on the terminal), and the bind-mounted `.env` is production's own env
    (not the local file on disk), in a Secret."""
    import yaml

    prod = ops.open_store(load_profile(root, "production")).values()
    local = ops.open_store(load_profile(root, "local")).values()
    res = cli("render", "kubernetes", "-p", "production", "--include-secrets", _dir_flag(), str(out_dir))
    assert res.exit_code == 0, res.stderr
    forms = {form for value in prod.values() for form in _forms(value)}
    assert not {f for f in forms if f in res.stdout + res.stderr}
    holders = set()
    for written in sorted(out_dir.rglob("*.yaml")):
        text = written.read_text()
        if not any(form in text for form in forms):
            continue
        # Only Secrets: a command's secret is `$(VAR)`, a probe's `${VAR}` read by sh, both filled from
        # the Secret; a label holding one is dropped.
        assert yaml.safe_load(text)["kind"] == "Secret", written.name
        holders.add(written.name)
        assert written.stat().st_mode & 0o777 == 0o600, written.name
    assert holders
    mounted = next(yaml.safe_load(f.read_text()) for f in out_dir.rglob("*secret-web-env*.yaml"))
    env_text = base64.b64decode(mounted["data"][".env"]).decode()
    assert f"DB_PASSWORD={prod['DB_PASSWORD']}" in env_text or prod["DB_PASSWORD"] in env_text
    assert local["DB_PASSWORD"] not in env_text
