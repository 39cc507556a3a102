"""Rotating a secret that a data volume was initialised with (a database password), without an outage.

A database image reads `POSTGRES_PASSWORD` / `MYSQL_ROOT_PASSWORD` / ... only when it initialises an
empty data directory; afterwards the password lives in the data. A plain rotation then gives the
dependents a password the database does not know: the migration fails, the app cannot log in. So:

- `find_targets` detects such secrets: a service receives the value as one of the variables the
  official images initialise with (`ENV_KEYS`), runs such an image (or one stackctl cannot name) and
  keeps a volume at that image's data path (`DATA_PATHS`); a Redis started with `--requirepass
  ${X}` counts too. `.env.example` can add a service (`@initialises SERVICE`), name the command that
  changes the value in place (`@rotate-command ...`), or declare a plain rotation safe (`@reapplied`:
  the service sets the value again at each start, as the bundled example's db does).
- `ops.rotate` refuses a plain rotation of such a secret (`refusal`), exit 2, nothing changed.
- `inplace.rotate_in_place` (locally, `stackctl secrets rotate NAME --in-place`): inside the running service,
  make the new value valid first (`switch`: PostgreSQL `ALTER ROLE`, MySQL/MariaDB `ALTER USER`, Redis
  `ACL SETUSER` / `CONFIG SET requirepass`, or the user's command), then store it (a new version, the
  old one kept), then recreate the services that use it, health-gated, with `up`; last, where the old
  value was kept valid during the switch, drop it (`finish`).

Old and new valid at once: MySQL 8.0.14+ (`RETAIN CURRENT PASSWORD`, then `DISCARD OLD PASSWORD`),
Redis 6+ (two passwords on the default user); PostgreSQL has one password per role and MariaDB no
retained password: there the old one stops working at the switch, and a dependent that opens a new
connection before it is recreated fails until then (connections already open stay open).

Values travel only in the environment of the exec (`STACKCTL_OLD_VALUE`, `STACKCTL_NEW_VALUE`):
never in argv (which `ps` shows on the host), and the scripts give them to the database clients on
stdin or in a 0600 option file. Output from the container is masked before it is shown.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets as _random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackctl.errors import InputError, StackctlError

if TYPE_CHECKING:
    from stackctl.compose.project import ContainerState, LocalProject
    from stackctl.profile.types import Profile
    from stackctl.secrets.template import Template

# What the official images initialise a new data directory with: variable -> (kind, SQL user as a shell
# expression in the container's own environment).
ENV_KEYS: Mapping[str, tuple[str, str]] = {
    "POSTGRES_PASSWORD": ("postgres", '${POSTGRES_USER:-postgres}'),
    "MYSQL_ROOT_PASSWORD": ("mysql", "root"),
    "MYSQL_PASSWORD": ("mysql", '${MYSQL_USER:-}'),
    "MARIADB_ROOT_PASSWORD": ("mariadb", "root"),
    "MARIADB_PASSWORD": ("mariadb", '${MARIADB_USER:-${MYSQL_USER:-}}'),
    "REDIS_PASSWORD": ("redis", ""),  # the Bitnami images; the official one takes --requirepass
}
# Where each kind keeps its data (a volume at or above one of them persists it).
DATA_PATHS: Mapping[str, tuple[str, ...]] = {
    "postgres": ("/var/lib/postgresql", "/bitnami/postgresql"),
    "mysql": ("/var/lib/mysql", "/bitnami/mysql"),
    "mariadb": ("/var/lib/mysql", "/bitnami/mariadb", "/bitnami/mysql"),
    "redis": ("/data", "/bitnami/redis"),
}
_IMAGE_KINDS = (("postgres", "postgres"), ("postgis", "postgres"), ("timescale", "postgres"),
                ("mariadb", "mariadb"), ("mysql", "mysql"), ("percona", "mysql"),
                ("redis", "redis"), ("valkey", "redis"), ("keydb", "redis"))
OLD, NEW = "STACKCTL_OLD_VALUE", "STACKCTL_NEW_VALUE"


@dataclass(frozen=True)
class Target:
    """One service whose data holds the secret, and how to change it there."""

    secret: str
    service: str
    kind: str  # postgres | mysql | mariadb | redis | command | unknown
    why: str  # for messages: what made stackctl decide
    user: str = ""  # SQL user (shell expression) for mysql/mariadb
    command: str | None = None  # kind == "command": the @rotate-command

    @property
    def how(self) -> str:
        return {"postgres": "ALTER ROLE (psql in the container)", "mysql": "ALTER USER ... RETAIN CURRENT PASSWORD",
                "mariadb": "ALTER USER (mariadb/mysql client in the container)",
                "redis": "ACL SETUSER default (CONFIG SET requirepass before Redis 6)",
                "command": "the @rotate-command of .env.example"}.get(self.kind, "")


def image_kind(image: str | None) -> str | None:
    """postgres | mysql | mariadb | redis from an image reference's repository name, else None."""
    if not image:
        return None
    repo = image.split("@")[0].lower()
    last = repo.rsplit("/", 1)[-1].split(":")[0]
    return next((kind for word, kind in _IMAGE_KINDS if word in last), None)


def _persists(kind: str, targets: Iterable[str]) -> str | None:
    """The volume target that keeps `kind`'s data, if any."""
    for target in targets:
        t = target.rstrip("/") or "/"
        for path in DATA_PATHS.get(kind, ()):
            if t == path or t.startswith(path + "/") or (t != "/" and path.startswith(t + "/")):
                return target
    return None


@dataclass
class _Service:
    image: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    entrypoint: str = ""
    command: str = ""
    volumes: list[str] = field(default_factory=list)  # container paths of persistent mounts


def _raw_services(profile: Profile) -> tuple[dict[str, _Service], set[str]]:
    """The services as written in the profile's Compose files (later files override earlier ones), and
    the services that load the rendered env file whole. Raw YAML: no Docker needed to decide."""
    out: dict[str, _Service] = {}
    whole_file: set[str] = set()
    base = profile.compose.project_directory or (profile.compose.files[0].parent if profile.compose.files
                                                 else profile.root)
    for path in profile.compose.files:
        data = _load_yaml(path)
        services = data.get("services") if isinstance(data, dict) else None
        if not isinstance(services, dict):
            continue
        for name, raw in services.items():
            if not isinstance(raw, dict):
                continue
            svc = out.setdefault(str(name), _Service())
            env_files = raw.get("env_file")
            for item in env_files if isinstance(env_files, list) else [env_files] if env_files else []:
                rel = item.get("path") if isinstance(item, dict) else item
                if isinstance(rel, str) and (base / rel).resolve() == profile.env.file.resolve():
                    whole_file.add(str(name))  # it receives every key of the rendered env file
            if isinstance(raw.get("image"), str):
                svc.image = raw["image"]
            env = raw.get("environment")
            if isinstance(env, dict):
                svc.environment.update({str(k): "" if v is None else str(v) for k, v in env.items()})
            elif isinstance(env, list):
                for item in env:
                    key, _, value = str(item).partition("=")
                    svc.environment[key] = value
            for part in ("entrypoint", "command"):  # `entrypoint: [redis-server]`, `command: [--requirepass, ...]`
                given = raw.get(part)
                if given is not None:
                    setattr(svc, part, " ".join(map(str, given)) if isinstance(given, list) else str(given))
            for vol in raw.get("volumes") or ():
                if isinstance(vol, dict) and vol.get("type") != "tmpfs" and isinstance(vol.get("target"), str):
                    svc.volumes.append(vol["target"])
                elif isinstance(vol, str):
                    parts = vol.split(":")
                    svc.volumes.append(parts[1] if len(parts) > 1 else parts[0])
    return out, whole_file


def _load_yaml(path: Path) -> Any:
    import yaml

    from stackctl.compose import yaml as composeyaml

    try:
        return composeyaml.load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None  # `env check` and `up` say what is wrong with it; here only what was read counts


def _refers(raw: str, name: str) -> bool:
    from stackctl.compose.interpolation import references

    try:
        return any(r.name == name for r in references(raw))
    except StackctlError:
        return False


def _detect(name: str, services: Mapping[str, _Service], whole_file: set[str]) -> list[Target]:
    found: list[Target] = []
    for sname, svc in sorted(services.items()):
        img = image_kind(svc.image)
        keys = [k for k, v in svc.environment.items() if k in ENV_KEYS and _refers(v, name)]
        if name in ENV_KEYS and sname in whole_file and name not in keys:
            keys.append(name)  # the rendered env file hands it over under its own name
        for key in keys:
            kind, user = ENV_KEYS[key]
            if img == "mariadb" and kind == "mysql":
                kind = "mariadb"  # the MariaDB images read the MYSQL_* names too
            elif img is not None and img != kind:
                continue
            if kind == "redis" and img != "redis":
                continue  # REDIS_PASSWORD means nothing to an image we cannot name
            volume = _persists(kind, svc.volumes)
            if volume is None:
                continue
            found.append(Target(name, sname, kind, f"{sname} receives it as {key} and keeps its data in a "
                                                   f"volume at {volume}", user=user))
            break
        else:
            argv = f"{svc.entrypoint} {svc.command}"
            if (img == "redis" or "redis-server" in argv) and "requirepass" in argv and _refers(argv, name):
                volume = _persists("redis", svc.volumes)
                if volume is not None:
                    found.append(Target(name, sname, "redis", f"{sname} runs Redis with --requirepass from it and "
                                                              f"keeps its data in a volume at {volume}"))
    return found


def find_targets(profile: Profile, template: Template | None, names: Iterable[str]) -> dict[str, list[Target]]:
    """For each named secret: the services whose data holds its value (none: a plain rotation is safe)."""
    names = list(names)
    if not names:
        return {}
    services, whole_file = _raw_services(profile)
    out: dict[str, list[Target]] = {}
    for name in names:
        key = template.get(name) if template is not None else None
        if key is not None and key.reapplied:
            out[name] = []
            continue
        targets = _detect(name, services, whole_file)
        for extra in (key.initialises if key is not None else ()):
            if any(t.service == extra for t in targets):
                continue
            if extra not in services:
                raise InputError(f"@initialises {extra} on {name}: no service {extra!r} in the Compose files "
                                 f"(services: {', '.join(sorted(services))})", file=template.display if template
                                 else None, field=f"line {key.line}" if key else None)
            kind = image_kind(services[extra].image)
            targets.append(Target(name, extra, "redis" if kind == "redis" else "unknown",
                                  f"{template.display if template else '.env.example'} says "
                                  f"`@initialises {extra}`"))
        if key is not None and key.rotate_command:
            targets = [Target(t.secret, t.service, "command", t.why, command=key.rotate_command) for t in targets]
        out[name] = targets
    return out


def refusal(name: str, targets: Sequence[Target], profile: Profile, *, action: str = "rotated by a new value alone"
            ) -> InputError:
    """Why a plain `rotate NAME` (or `set`, `rollback`: `action`) is refused, and what to run instead."""
    where = "; ".join(t.why for t in targets)
    services = ", ".join(dict.fromkeys(t.service for t in targets))
    p = f" -p {profile.name}" if profile.name != "local" else ""
    unknown = [t for t in targets if t.kind == "unknown"]
    if unknown:
        fix = (f"add `# @rotate-command COMMAND` above {name} in .env.example (run in {services} with sh -c, "
               f"the values in ${OLD} and ${NEW}; docs/secrets.md), then `stackctl secrets rotate {name} "
               f"--in-place{p}`")
    else:
        fix = f"run `stackctl secrets rotate {name} --in-place{p}` (changes it inside {services} first)"
    return InputError(
        f"{name} cannot be {action}: {where}. The data keeps the old value, so after that "
        f"everything that logs in with the new one (and a recreated {services}) would fail",
        field="NAME",
        hint=f"{fix}; if {services} sets it again at every start, annotate it `# @reapplied`"
             + ("" if action.startswith("rotated") else f"; if you changed it inside {services} yourself, pass --force")
             + "; nothing was changed")


# ------------------------------------------------------------------------------------------- the scripts
def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores (RFC 5802/7677): `ALTER ROLE ... PASSWORD` with it
    changes the password without the plaintext ever reaching the server (or its statement log).
    Unnormalised (no SASLprep): the values stackctl generates are ASCII, where they agree."""
    salt = salt if salt is not None else _random.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    return f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${b64(stored_key).decode()}:{b64(server_key).decode()}"


# $STACKCTL_HOST set (a Job on Kubernetes): the database over the network; unset (an exec in the database's
# own container): its local socket, else 127.0.0.1.
_PG_SWITCH = r"""set -eu
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
sql="ALTER ROLE CURRENT_USER PASSWORD '$STACKCTL_NEW_VERIFIER';"
pg() {  # pg PASSWORD [psql args]: SQL from $sql on stdin unless -c is given
  pw="$1"; shift
  if [ -n "${STACKCTL_HOST:-}" ]; then
    printf '%s\n' "$sql" | PGPASSWORD="$pw" psql -X -q -v ON_ERROR_STOP=1 -h "$STACKCTL_HOST" -U "$user" -d "$db" "$@"
  elif ! printf '%s\n' "$sql" | PGPASSWORD="$pw" psql -X -q -v ON_ERROR_STOP=1 -U "$user" -d "$db" "$@" 2>/dev/null
  then
    printf '%s\n' "$sql" | PGPASSWORD="$pw" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U "$user" -d "$db" "$@"
  fi
}
pg "$STACKCTL_OLD_VALUE" >/dev/null
pg "$STACKCTL_NEW_VALUE" -tA -c 'SELECT 1' >/dev/null
echo "stackctl: changed"
"""

# One client session per statement batch; the login password in a 0600 option file, the SQL on stdin.
_MY_PREAMBLE = r"""set -eu
if command -v mariadb >/dev/null 2>&1; then c=mariadb; elif command -v mysql >/dev/null 2>&1; then c=mysql
else echo "no mariadb or mysql client in the container" >&2; exit 127; fi
user="__USER__"
[ -n "$user" ] || { echo "no database user set (MYSQL_USER / MARIADB_USER)" >&2; exit 2; }
umask 077
cnf="$(mktemp)"
trap 'rm -f "$cnf" "$cnf.err"' EXIT
login() {
  pw="$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
  printf '[client]\nuser="%s"\npassword="%s"\n' "$user" "$pw" >"$cnf"
  if [ -n "${STACKCTL_HOST:-}" ]; then printf 'host="%s"\n' "$STACKCTL_HOST" >>"$cnf"; fi
}
quoted="$(printf '%s' "$STACKCTL_NEW_VALUE" | sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g")"
accounts() {
  $c --defaults-extra-file="$cnf" -N -B -e \
    "SELECT CONCAT(QUOTE(User),'@',QUOTE(Host)) FROM mysql.user WHERE User=SUBSTRING_INDEX(CURRENT_USER(),'@',1)" \
    2>/dev/null || true
}
"""
# One ALTER USER for every account of the user (atomic: all or none). MySQL 8.0.14+ keeps the old password
# valid beside the new one (RETAIN CURRENT PASSWORD); MySQL lets an account ALTER its own password; MariaDB
# needs the CREATE USER privilege for any ALTER USER, so an unprivileged account changes its own with
# SET PASSWORD (PASSWORD() on MariaDB; a plain string on MySQL 8, which dropped the function).
_MY_SWITCH = _MY_PREAMBLE + r"""login "$STACKCTL_OLD_VALUE"
list="$(accounts)"
[ -n "$list" ] || list="CURRENT_USER()"
alter() {
  sep="ALTER USER"
  for a in $list; do printf "%s %s IDENTIFIED BY '%s'%s" "$sep" "$a" "$quoted" "$1"; sep=","; done
  printf ';\n'
}
setpw() {
  for a in $list; do
    if [ "$a" = "CURRENT_USER()" ]; then printf 'SET PASSWORD = %s;\n' "$1"
    else printf 'SET PASSWORD FOR %s = %s;\n' "$a" "$1"; fi
  done
}
run() { $c --defaults-extra-file="$cnf" 2>"$cnf.err"; }
if alter " RETAIN CURRENT PASSWORD" | run; then
  echo "stackctl: retained"
elif alter "" | run || setpw "PASSWORD('$quoted')" | run || setpw "'$quoted'" | run; then
  echo "stackctl: changed"
else
  cat "$cnf.err" >&2
  exit 1
fi
"""
_MY_FINISH = _MY_PREAMBLE + r"""login "$STACKCTL_NEW_VALUE"
list="$(accounts)"
[ -n "$list" ] || list="CURRENT_USER()"
for a in $list; do printf 'ALTER USER %s DISCARD OLD PASSWORD;\n' "$a"; done | $c --defaults-extra-file="$cnf"
echo "stackctl: discarded"
"""
_REDIS_SWITCH = r"""set -eu
rc() { redis-cli --no-auth-warning -h "${STACKCTL_HOST:-127.0.0.1}" "$@"; }
export REDISCLI_AUTH="$STACKCTL_OLD_VALUE"
out="$(printf '>%s' "$STACKCTL_NEW_VALUE" | rc -x ACL SETUSER default 2>&1 || true)"
if [ "$out" = OK ]; then echo "stackctl: retained"; exit 0; fi
out="$(printf '%s' "$STACKCTL_NEW_VALUE" | rc -x CONFIG SET requirepass 2>&1 || true)"
if [ "$out" = OK ]; then echo "stackctl: changed"; exit 0; fi
echo "$out" >&2
exit 1
"""
_REDIS_FINISH = r"""set -eu
rc() { redis-cli --no-auth-warning -h "${STACKCTL_HOST:-127.0.0.1}" "$@"; }
export REDISCLI_AUTH="$STACKCTL_NEW_VALUE"
out="$(printf '<%s' "$STACKCTL_OLD_VALUE" | rc -x ACL SETUSER default 2>&1 || true)"
[ "$out" = OK ] || { echo "$out" >&2; exit 1; }
echo "stackctl: discarded"
"""


def switch_script(target: Target) -> str:
    """The shell script that makes the new value valid inside the target's container."""
    if target.kind == "postgres":
        return _PG_SWITCH
    if target.kind in ("mysql", "mariadb"):
        return _MY_SWITCH.replace("__USER__", target.user)
    if target.kind == "redis":
        return _REDIS_SWITCH
    if target.kind == "command" and target.command:
        return target.command
    raise InputError(f"stackctl does not know how to change {target.secret} inside {target.service}",
                     field="NAME", hint=f"add `# @rotate-command COMMAND` above {target.secret} in .env.example "
                                        "(docs/secrets.md)")


def finish_script(target: Target) -> str | None:
    """The script that drops the old value once the dependents use the new one (None: nothing to drop)."""
    if target.kind in ("mysql", "mariadb"):
        return _MY_FINISH.replace("__USER__", target.user)
    if target.kind == "redis":
        return _REDIS_FINISH
    return None


def exec_env(target: Target, name: str, old: str, new: str) -> dict[str, str]:
    env = {OLD: old, NEW: new, "STACKCTL_SECRET": name}
    if target.kind == "postgres":
        env["STACKCTL_NEW_VERIFIER"] = scram_verifier(new)
    return env


def mask(text: str, *values: str) -> str:
    for value in sorted((v for v in values if v), key=len, reverse=True):
        text = text.replace(value, "***")
    return text


def run_in(project: LocalProject, container: ContainerState, script: str, env: Mapping[str, str], *,
           timeout: float = 120) -> tuple[int | None, str]:
    """`sh -c SCRIPT` in a running container, the values in the exec's own environment only: through
    the Engine API when it is reachable, else `docker exec -e NAME` (the value from the CLI's
    environment, not its argv)."""
    from stackctl.compose import cli as docker_cli
    from stackctl.compose.engine import EngineError, EngineUnavailable

    engine = project.engine()
    if engine is not None:
        try:
            return engine.exec_run(container.id, ["sh", "-c", script], timeout=timeout, env=env)
        except EngineUnavailable:
            pass
        except EngineError as exc:
            return None, f"Error response from daemon: {exc.message}"
        except OSError as exc:
            return None, f"exec failed: {type(exc).__name__}"
    flags = [a for k in env for a in ("-e", k)]
    res = docker_cli.run(["exec", *flags, container.id, "sh", "-c", script], env={**os.environ, **env},
                         check=False, timeout=timeout)
    return res.returncode, res.stdout + res.stderr


def describe(targets: Sequence[Target]) -> list[dict[str, Any]]:
    return [{"service": t.service, "kind": t.kind, "why": t.why} for t in targets]


__all__ = ["DATA_PATHS", "ENV_KEYS", "Target", "find_targets", "finish_script", "image_kind",
           "mask", "refusal", "run_in", "scram_verifier", "switch_script"]
