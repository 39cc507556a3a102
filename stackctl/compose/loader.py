"""Compose loading: let Docker Compose resolve the project, then map its JSON into the model.

Compose itself does the merging (`-f` overlays, `extends`, `include`), `profiles`, interpolation
and env-file precedence, so stackctl sees exactly what `docker compose` sees. This module only
translates `docker compose config --format json` into typed model objects, normalising units,
and reports every field it does not model as a warning (never silently dropped).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackctl import model as m
from stackctl.errors import ComposeFileError, ToolMissingError
from stackctl.profile.types import Profile, display

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}

# Service fields the model carries (plus ones Compose always prints, which carry nothing).
_SERVICE_FIELDS = frozenset({
    "image", "build", "command", "entrypoint", "environment", "ports", "expose", "volumes", "healthcheck",
    "depends_on", "deploy", "restart", "labels", "networks", "secrets", "configs", "stop_grace_period",
    "user", "working_dir", "profiles", "pull_policy", "hostname", "init", "read_only", "cap_add", "cap_drop",
    "privileged", "sysctls", "tmpfs", "post_start", "pre_stop", "gpus",
    "develop",  # the dev loop (`watch`), on purpose for no deployed backend: the renderer notes it
})
# Fields with no counterpart outside Docker, named with the reason rather than the generic warning.
_NAMED_DROPS = {
    "models": "AI models run by Docker Model Runner are not carried over: run the model server as a service "
              "of its own and set its URL in the environment",
    "provider": "a service provided by a Compose provider plugin (`provider.type`) is created by that plugin "
                "only under Docker Compose: not carried over, deploy it separately",
}
_TOP_FIELDS = frozenset({"name", "services", "volumes", "networks", "secrets", "configs"})
_DEPLOY_FIELDS = frozenset({"mode", "replicas", "resources", "update_config", "restart_policy", "labels",
                            "placement"})


@dataclass(frozen=True)
class ComposeInvocation:
    """How Compose is called for a profile (also reused by the local backend for `up`)."""

    files: tuple[Path, ...]
    env_files: tuple[Path, ...]
    profiles: tuple[str, ...]
    project_name: str | None
    project_directory: Path | None

    def global_args(self) -> list[str]:
        args: list[str] = []
        if self.project_directory is not None:
            args += ["--project-directory", str(self.project_directory)]
        for f in self.files:
            args += ["-f", str(f)]
        for e in self.env_files:
            args += ["--env-file", str(e)]
        for p in self.profiles:
            args += ["--profile", p]
        if self.project_name:
            args += ["-p", self.project_name]
        return args


# Compose's own search order (compose-go `DefaultFileNames`, `DefaultOverrideFileNames`): the first
# base file found, and the first override file found next to it, which `docker compose` loads too.
COMPOSE_FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
OVERRIDE_FILE_NAMES = ("compose.override.yml", "compose.override.yaml", "docker-compose.override.yml",
                       "docker-compose.override.yaml")


def invocation_for(profile: Profile) -> tuple[ComposeInvocation, list[m.Warning_]]:
    """The Compose command line for a profile. Env files that do not exist yet are left out
    with a warning; when none exists, an empty one is passed so a stray `.env` next to the
    Compose file cannot leak into the project unannounced (the profile is the one source of the
    environment; `docker compose` alone would read `<project dir>/.env`). A `.env` that is not read
    but holds values the Compose files use, which the profile defines nowhere, is a warning naming
    them: `docker compose` would see them and stackctl does not (`stackctl init --import-env`)."""
    warnings: list[m.Warning_] = []
    env_files: list[Path] = []
    for f in profile.compose.env_files:
        if f.is_file():
            env_files.append(f)
        else:
            renders = f == profile.env.file  # the one env file `env render` writes
            warnings.append(m.Warning_(
                f"{profile.display_path}: compose.env_files",
                f"{display(f, profile.root)} does not exist yet"
                + (f" (create it with `stackctl env render --profile {profile.name}`)" if renders else "")))
    warnings.extend(_unread_dotenv(profile, env_files))
    if not env_files:
        env_files.append(Path(os.devnull))
    return ComposeInvocation(files=profile.compose.files, env_files=tuple(env_files),
                             profiles=profile.compose.profiles, project_name=profile.stack,
                             project_directory=profile.compose.project_directory), warnings


def project_dir(profile: Profile) -> Path:
    """Where `docker compose` looks for `.env` and the override file: the project directory, else
    the directory of the first Compose file."""
    if profile.compose.project_directory is not None:
        return profile.compose.project_directory
    return profile.compose.files[0].parent if profile.compose.files else profile.root


def _env_keys(path: Path) -> dict[str, str]:
    """An env file's values as Compose reads them (no environment); {} when it does not parse (the
    commands that read it report that)."""
    from stackctl.compose import dotenv
    from stackctl.errors import StackctlError

    try:
        return dotenv.load(path)
    except StackctlError:
        return {}


def _unread_dotenv(profile: Profile, env_files: list[Path]) -> list[m.Warning_]:
    dotenv_path = project_dir(profile) / ".env"
    if dotenv_path in env_files or not dotenv_path.is_file() or dotenv_path.resolve() in env_files:
        return []
    defined = set(profile.env.values) | set(os.environ)
    for f in (profile.env.template, *env_files):
        if f.is_file():
            defined |= set(_env_keys(f))
    unread = [k for k in _env_keys(dotenv_path) if k not in defined and not k.startswith("COMPOSE_")]
    if not unread:
        return []
    used = {ref.name for ref in _scan(profile.compose.files)}
    unread = [k for k in unread if k in used]
    if not unread:
        return []
    shown = display(dotenv_path, profile.root)
    return [m.Warning_(f"{profile.display_path}: env", (
        f"{shown} is not read for this profile, but the Compose files use {', '.join(unread)} from it "
        f"(`docker compose` alone would read it; stackctl leaves them unset). Import it with `stackctl init "
        f"--import-env` (config values into {display(profile.env.template, profile.root)}, secrets into "
        f"the store), or set them in {profile.display_path} env.values"))]


def _scan(files: tuple[Path, ...]) -> list[Any]:
    """Every variable reference of the Compose files (`interpolation.LocatedRef`); a file that does
    not scan is skipped (Compose says what is wrong with it)."""
    from stackctl.compose.interpolation import scan_yaml_file
    from stackctl.errors import StackctlError

    found: list[Any] = []
    for f in files:
        try:
            found.extend(scan_yaml_file(f))
        except StackctlError:
            continue
    return found


def compose_file_list(value: str, separator: str | None = None) -> list[str]:
    """COMPOSE_FILE's paths (split on COMPOSE_PATH_SEPARATOR, else the OS path separator)."""
    return [part for part in value.split(separator or os.pathsep) if part.strip()]


def profile_list(value: str) -> list[str]:
    """COMPOSE_PROFILES: comma-separated names, blanks dropped, order kept, no repeats."""
    return list(dict.fromkeys(p.strip() for p in value.split(",") if p.strip()))


def environment_notes(profile: Profile, invocation: ComposeInvocation,
                      environ: Mapping[str, str] | None = None) -> list[str]:
    """Where the Compose environment and the profile disagree: COMPOSE_FILE or COMPOSE_PROFILES in
    the shell, the env files or an unread `.env`, an override file that `docker compose` alone would
    load. stackctl follows the profile (it passes `-f` and `--profile`), except that Compose applies
    COMPOSE_PROFILES from the shell or a read env file when the profile names no profiles: both are
    said once per render, as notes (nothing is lost; the result is the profile's)."""
    env = os.environ if environ is None else environ
    root = profile.root
    sources: list[tuple[str, Mapping[str, str], bool]] = [("the environment", env, True)]
    for f in reversed(invocation.env_files):  # later env files win
        if f.is_file() and str(f) != os.devnull:
            sources.append((display(f, root), _env_keys(f), True))
    dotenv_path = project_dir(profile) / ".env"
    if dotenv_path.is_file() and dotenv_path not in invocation.env_files:
        sources.append((f"{display(dotenv_path, root)} (not read for this profile)", _env_keys(dotenv_path), False))

    def setting(name: str) -> tuple[str, str, bool] | None:
        for where, values, read in sources:
            if name in values:
                return values[name], where, read
        return None

    notes: list[str] = []
    where_files = f"{profile.display_path} compose.files"
    files = setting("COMPOSE_FILE")
    if files is not None and files[0].strip():
        separator = setting("COMPOSE_PATH_SEPARATOR")
        named = compose_file_list(files[0], separator[0] if separator else None)
        resolved = tuple((p if p.is_absolute() else root / p).resolve() for p in map(Path, named))
        if resolved != tuple(f.resolve() for f in invocation.files):
            notes.append(f"COMPOSE_FILE in {files[1]} names {', '.join(named)}; stackctl uses {where_files} "
                         f"({', '.join(display(f, root) for f in invocation.files)})")
    chosen = setting("COMPOSE_PROFILES")
    if chosen is not None:
        named = profile_list(chosen[0])
        mine = list(invocation.profiles)
        if mine and named != mine:
            notes.append(f"COMPOSE_PROFILES in {chosen[1]} is {','.join(named) or 'empty'}; stackctl uses "
                         f"{profile.display_path} compose.profiles ({', '.join(mine)})")
        elif not mine and named and chosen[2]:
            notes.append(f"COMPOSE_PROFILES in {chosen[1]} enables {', '.join(named)} (Compose applies it: "
                         f"{profile.display_path} sets no compose.profiles; set them there to make it explicit)")
        elif not mine and named:
            notes.append(f"COMPOSE_PROFILES in {chosen[1]} would enable {', '.join(named)}; not applied: "
                         f"{profile.display_path} sets no compose.profiles")
    base = project_dir(profile)
    override = next((base / n for n in OVERRIDE_FILE_NAMES if (base / n).is_file()), None)
    if override is not None and override.resolve() not in {f.resolve() for f in invocation.files}:
        notes.append(f"{display(override, root)} is not in {where_files} (`docker compose` alone loads it); "
                     "add it there if this profile needs it")
    return notes


def resolve(invocation: ComposeInvocation, *, root: Path, environ: Mapping[str, str] | None = None
            ) -> tuple[dict[str, Any], list[m.Warning_]]:
    """Run `docker compose config --format json`; return the project JSON and Compose's warnings."""
    from stackctl.compose import cli as docker_cli
    from stackctl.compose import yaml as bounded

    for file in invocation.files:
        try:
            problem = bounded.bounds_problem(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            continue  # Compose says what is wrong with it
        if problem is not None:
            raise ComposeFileError(problem[0], file=display(file, root), field=f"line {problem[1]}")
    env = dict(os.environ if environ is None else environ)
    for name, value in env.items():
        if "\0" in value:  # Compose reads one from an env file, but no process environment can carry it
            shown = [display(f, root) for f in invocation.env_files] or [first_file(invocation, root) or "."]
            raise ComposeFileError(f"{name} holds a NUL byte, which cannot be passed to `docker compose` in its "
                                   f"environment", file=shown[0])
    # answered from the cache of Compose's JSON while every input Compose reads is unchanged
    from stackctl.compose.cache import compose_config

    res = compose_config([*invocation.global_args(), "config", "--format", "json"], files=invocation.files,
                         env_files=invocation.env_files, project_directory=invocation.project_directory,
                         root=root, env=env, timeout=120, memory_limit=docker_cli.COMPOSE_CONFIG_MEMORY)
    warnings = [m.Warning_("compose", msg) for msg in _compose_messages(res.stderr, "warning")]
    if res.returncode != 0:
        error = _config_error(res.stderr, invocation, root, env)
        if _INCONSISTENT.search(error.message):
            error = _first_inconsistency(invocation, root, env, error)
        raise error
    if bounded.json_too_deep(res.stdout):
        raise ComposeFileError(f"`docker compose config` printed JSON nested more than {bounded.MAX_DEPTH} "
                               f"levels deep (stackctl's limit)", file=first_file(invocation, root))
    try:
        data = json.loads(res.stdout)
    except json.JSONDecodeError as exc:
        raise ToolMissingError(f"`docker compose config` printed no JSON ({exc}); is it Compose v2?") from None
    return data, warnings


def first_file(invocation: ComposeInvocation, root: Path) -> str | None:
    """The first Compose file as shown in messages (errors of the resolved JSON name it)."""
    return display(invocation.files[0], root) if invocation.files else None


def _compose_messages(stderr: str, level: str) -> list[str]:
    out = []
    for line in stderr.splitlines():
        match = re.search(r'level=(\w+) msg="((?:[^"\\]|\\.)*)"', line)
        if match and match.group(1) == level:
            out.append(match.group(2).replace('\\"', '"'))
    return out


def _config_error(stderr: str, invocation: ComposeInvocation, root: Path,
                  env: Mapping[str, str] | None = None) -> ComposeFileError:
    """Turn Compose's error text into a located one-line error."""
    lines = [ln for ln in stderr.strip().splitlines() if "level=warning" not in ln]
    text = lines[-1] if lines else "docker compose config failed"
    text = re.sub(r"^(time=\S+ )?level=\w+ msg=", "", text).strip('"')
    shown_files = [display(f, root) for f in invocation.files]
    first = shown_files[0] if shown_files else None
    # "error while interpolating services.api.environment.X: required variable X is missing a value: ..."
    match = re.match(r"error while interpolating (\S+): (.*)", text)
    if match:
        field, message = match.groups()
        var = re.search(r"required variable (\w+)", message)
        file = _file_referencing(invocation.files, var.group(1), root) if var else None
        found = _interpolation_errors(invocation, root, env) if env is not None else []
        if any(_same_field(f, field) and m.strip() == message.strip() for _, _, f, m in found):
            # Compose stops at whichever failing value its map iteration meets first, so with several
            # the one it names changes from run to run: name the first in file order, and the others.
            name, file, field, message = found[0]
            message = message.strip()
            missing = list(dict.fromkeys(n for n, _, _, _ in found[1:] if n and n != name))
            invalid = [f for n, _, f, _ in found[1:] if not n]
            also = [f"also missing: {', '.join(missing)}"] if missing else []
            also += [f"also invalid: {', '.join(invalid[:4])}{' ...' if len(invalid) > 4 else ''}"] if invalid else []
            message += f" ({'; '.join(also)})" if also else ""
            var = re.search(r"required variable (\w+)", message)
        return ComposeFileError(message, file=file or first, field=field,
                                hint="define it in the profile's env file, or run `stackctl secrets generate` "
                                     "and `stackctl env render`" if var else None)
    # Compose usually names the file itself ("validating /abs/compose.yaml: services.x ...")
    for f, shown in zip(invocation.files, shown_files, strict=True):
        text = text.replace(str(f), shown)
    text = text.replace(f"{root}/", "")
    named = next((s for s in shown_files if text.startswith(s) or f" {s}" in text), None)
    return ComposeFileError(text, file=None if named else first)


# Compose's consistency errors (a reference to a service, network, volume, secret or config the
# project does not define); Compose reports whichever its map iteration meets first.
_INCONSISTENT = re.compile(r'^service "[^"]+" (depends on undefined service|refers to undefined (network|volume|'
                           r'secret|config)) ')


def _first_inconsistency(invocation: ComposeInvocation, root: Path, env: Mapping[str, str],
                         error: ComposeFileError) -> ComposeFileError:
    """With several dangling references, Compose names a different one from run to run. Resolve the
    project once more without its consistency check and name the first one by service name (and how
    many more), the same every time. Compose's own error stands when that run fails or does not
    find the reference Compose named."""
    from stackctl.compose import cli as docker_cli

    res = docker_cli.compose([*invocation.global_args(), "config", "--no-consistency", "--format", "json"],
                             cwd=root, env=dict(env), check=False, timeout=120,
                             memory_limit=docker_cli.COMPOSE_CONFIG_MEMORY)
    try:
        problems = _dangling(json.loads(res.stdout)) if res.returncode == 0 else []
    except (ValueError, AttributeError, TypeError):
        problems = []
    reported = error.message.removesuffix(": invalid compose project")
    if reported not in problems:
        return error
    more = f" (and {len(problems) - 1} more: {'; '.join(problems[1:4])}{' ...' if len(problems) > 4 else ''})" \
        if len(problems) > 1 else ""
    return ComposeFileError(f"{problems[0]}{more}", file=error.file, field=error.field, hint=error.hint)


def _dangling(data: Mapping[str, Any]) -> list[str]:
    """Compose's consistency errors of a resolved project, in service-name order, worded as Compose does."""
    out: list[str] = []
    services = data.get("services") or {}
    defined = {kind: set(data.get(kind) or {}) for kind in ("networks", "volumes", "secrets", "configs")}
    for name in sorted(services):
        svc = services[name] or {}
        for dep, spec in (svc.get("depends_on") or {}).items():
            if dep not in services and (spec or {}).get("required", True):
                out.append(f'service "{name}" depends on undefined service "{dep}"')
        for net in svc.get("networks") or {}:
            if net not in defined["networks"] and net != "default":
                out.append(f'service "{name}" refers to undefined network {net}')
        for vol in svc.get("volumes") or []:
            source = (vol or {}).get("source")
            if (vol or {}).get("type") == "volume" and source and source not in defined["volumes"]:
                out.append(f'service "{name}" refers to undefined volume {source}')
        for kind, singular in (("secrets", "secret"), ("configs", "config")):
            for ref in svc.get(kind) or []:
                source = (ref or {}).get("source")
                if source and source not in defined[kind]:
                    out.append(f'service "{name}" refers to undefined {singular} {source}')
    return out


# Fields Compose casts after interpolating them (compose-go's interpolateTypeCastMapping, the ones a
# real project writes as `${VAR}`), as (field under `services.<name>.`, the type): a value that does
# not cast fails the whole project.
_CAST_FIELDS = {
    "healthcheck.retries": "int", "deploy.replicas": "int", "scale": "int", "deploy.update_config.parallelism": "int",
    "deploy.restart_policy.max_attempts": "int", "read_only": "bool", "init": "bool", "privileged": "bool",
    "tty": "bool", "stdin_open": "bool", "oom_kill_disable": "bool", "healthcheck.disable": "bool",
}
_BOOLEANS = ("true", "false", "y", "yes", "on", "n", "no", "off")


def _cast_problem(field: str, value: str) -> str | None:
    """Compose's message when `value` at `field` (`services.api.read_only`) does not cast, else None."""
    parts = field.split(".", 2)
    kind = _CAST_FIELDS.get(parts[2]) if len(parts) == 3 and parts[0] == "services" else None
    if kind == "int" and not re.fullmatch(r"[+-]?\d+", value):
        return f'failed to cast to expected type: strconv.Atoi: parsing "{value}": invalid syntax'
    if kind == "bool" and value.lower() not in _BOOLEANS:
        return f"failed to cast to expected type: invalid boolean: {value}"
    return None


def _same_field(ours: str, composes: str) -> bool:
    """`services.a.ports[0].target` (ours) is Compose's `services.a.ports.0.target` or `[0]`."""
    return ours == composes or re.sub(r"\[(\d+)\]", r".\1", ours) == re.sub(r"\[(\d+)\]", r".\1", composes)


def _interpolation_errors(invocation: ComposeInvocation, root: Path, env: Mapping[str, str]
                          ) -> list[tuple[str | None, str, str, str]]:
    """Every value Compose's interpolation fails on — a required variable (`${X:?msg}`) without a
    value, a value that does not cast (`read_only: ${RO}` with RO empty) — as (the variable or None,
    file, field, message), in the order of the files and of each file's text; [] when the files
    cannot be read here (Compose's own message stands then)."""
    from stackctl.compose import dotenv, interpolation
    from stackctl.compose import yaml as bounded

    try:
        project_dir = invocation.project_directory or (invocation.files[0].parent if invocation.files else root)
        values = dotenv.project_environment(env, project_dir=project_dir, env_files=invocation.env_files)
        out: list[tuple[str | None, str, str, str]] = []
        for f in invocation.files:
            shown = display(f, root)
            for doc in bounded.load_all(f.read_text(encoding="utf-8")):
                for field, value in _strings(doc, ""):
                    try:
                        result = interpolation.interpolate(value, values.get, file=shown, field=field)
                    except ComposeFileError as exc:
                        var = re.search(r"required variable (\w+)", exc.message)
                        if var:
                            out.append((var.group(1), shown, field, exc.message))
                        continue
                    problem = _cast_problem(field, result)
                    if problem is not None:
                        out.append((None, shown, field, problem))
        return out
    except Exception:  # a file Compose reads and this scan cannot: keep Compose's message
        return []


def _strings(node: Any, path: str) -> list[tuple[str, str]]:
    """(dotted field, value) of every string value of a YAML tree, in document order."""
    if isinstance(node, str):
        return [(path, node)]
    out: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, child in node.items():
            out += _strings(child, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            out += _strings(child, f"{path}[{index}]")
    return out


def _file_referencing(files: tuple[Path, ...], var: str, root: Path) -> str | None:
    try:
        from stackctl.compose.interpolation import scan_yaml_file
    except ImportError:  # pragma: no cover - interpolation scanner is part of the package
        return None
    for f in files:
        try:
            refs = scan_yaml_file(f)
        except Exception:  # the file is broken in another way; Compose's message still stands
            continue
        if any(getattr(r, "name", None) == var for r in refs):
            return display(f, root)
    return None


# ---------------------------------------------------------------------------------------------
# Blank values: which variable, used where (once per variable)
# ---------------------------------------------------------------------------------------------
_UNSET = re.compile(r'^The "(\w+)" variable is not set\. Defaulting to a blank string\.$')

# The Docker image reference grammar (distribution/reference): what a pull or a build tag accepts.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST_PART = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"(?:{_HOST_PART}(?:\.{_HOST_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_REFERENCE = re.compile(rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?"
                        r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?")
_NO_IMAGE = re.compile(r'service "([^"]+)" has neither an image nor a build context')


def _uses(invocation: ComposeInvocation, root: Path) -> dict[str, list[tuple[str, str, Any]]]:
    """variable → [(file as shown, field, VarRef)] over the Compose files, in file order."""
    out: dict[str, list[tuple[str, str, Any]]] = {}
    for located in _scan(invocation.files):
        out.setdefault(located.name, []).append((display(Path(located.file), root), located.field, located.ref))
    return out


def _usage(uses: list[tuple[str, str, Any]]) -> str:
    """`compose.yaml: services.web.image, services.worker.image; other.yaml: ...` (each field once)."""
    by_file: dict[str, list[str]] = {}
    for file, fld, _ in uses:
        fields = by_file.setdefault(file, [])
        if fld not in fields:
            fields.append(fld)
    return "; ".join(f"{file}: {', '.join(fields)}" for file, fields in by_file.items())


def _effective_env(invocation: ComposeInvocation, environ: Mapping[str, str] | None) -> dict[str, str]:
    """What Compose interpolated with: the environment over the env files (as `docker compose` reads them)."""
    from stackctl.compose import dotenv
    from stackctl.errors import StackctlError

    env = os.environ if environ is None else environ
    try:
        return dotenv.project_environment(env, env_files=list(invocation.env_files))
    except StackctlError:
        return dict(env)


def _blank(ref: Any, values: Mapping[str, str]) -> bool:
    """Did this reference interpolate to nothing: `${X}` unset or empty, `${X-d}` with X empty."""
    if ref.nested or ref.operator not in ("", "-"):
        return False
    value = values.get(ref.name)
    return value == "" if ref.operator == "-" else not value


def describe_blank(name: str, values: Mapping[str, str], uses: list[tuple[str, str, Any]]) -> str:
    state = "blank" if name in values else "not set"
    return f"{name} is {state} (used in {_usage(uses)})"


def grouped_unset_warnings(warnings: list[m.Warning_], invocation: ComposeInvocation, root: Path
                           ) -> list[m.Warning_]:
    """Compose's "The X variable is not set" warnings, each with every place X is used: one line per
    variable, however many fields it feeds."""
    if not any(w.field == "compose" and _UNSET.match(w.message) for w in warnings):
        return warnings
    uses = _uses(invocation, root)
    out: list[m.Warning_] = []
    seen: set[str] = set()  # Compose repeats the warning for each use
    for w in warnings:
        match = _UNSET.match(w.message) if w.field == "compose" else None
        if match is None or not uses.get(match.group(1)):
            out.append(w)
            continue
        name = match.group(1)
        if name in seen:
            continue
        seen.add(name)
        out.append(m.Warning_("compose", f"{name} is not set (used in {_usage(uses[name])}); Compose uses a "
                                         "blank string"))
    return out


def _culprits(fields: list[str], invocation: ComposeInvocation, root: Path, values: Mapping[str, str]
              ) -> dict[str, list[tuple[str, str, Any]]]:
    """The blank variables used in these fields (a field's subfields and list items included); when
    none is (the field came through `extends`), the blank ones used in a field of the same name."""
    uses = _uses(invocation, root)

    def under(fld: str, prefix: str) -> bool:
        return fld == prefix or fld.startswith((f"{prefix}.", f"{prefix}["))

    found = {name: u for name, u in uses.items()
             if any(under(fld, f) and _blank(ref, values) for _, fld, ref in u for f in fields)}
    if not found:
        leaves = {f.rsplit(".", 1)[-1] for f in fields}
        found = {name: u for name, u in uses.items()
                 if any(fld.startswith("services.") and fld.rsplit(".", 1)[-1] in leaves and _blank(ref, values)
                        for _, fld, ref in u)}
    return dict(sorted(found.items()))


def blank_field_error(data: Mapping[str, Any], invocation: ComposeInvocation, root: Path,
                      environ: Mapping[str, str] | None = None, *, hint: str | None = None
                      ) -> ComposeFileError | None:
    """The error for fields Compose accepted blank but that cannot work (`image: 'nginx:'`, an empty
    `user:` part, a port without a container port) when a blank variable made them so, naming each
    variable once with every place it is used. None when no blank variable explains them."""
    bad: list[tuple[str, str]] = []  # (field, what is wrong with it)
    for name, svc in sorted((data.get("services") or {}).items()):
        svc = svc or {}
        image = svc.get("image")
        if isinstance(image, str) and not _REFERENCE.fullmatch(image):
            bad.append((f"services.{name}.image", f"image {image!r} is not an image reference"
                        + (" (empty tag)" if image.endswith(":") else "")))
        user = svc.get("user")
        if isinstance(user, str) and (user == "" or user.startswith(":") or user.endswith(":")):
            bad.append((f"services.{name}.user", f"user {user!r} has an empty part"))
        if any(isinstance(p, Mapping) and not p.get("target") for p in svc.get("ports") or ()):
            bad.append((f"services.{name}.ports", "a port has no container port"))
    if not bad:
        return None
    values = _effective_env(invocation, environ)
    culprits = _culprits([f for f, _ in bad], invocation, root, values)
    if not culprits:
        return None
    causes = "; ".join(describe_blank(n, values, u) for n, u in culprits.items())
    results = ", ".join(f"{f}: {why}" for f, why in bad)
    return ComposeFileError(f"{causes}, so the result cannot work ({results})", hint=hint)


def explain_blank(exc: ComposeFileError, invocation: ComposeInvocation, root: Path,
                  environ: Mapping[str, str] | None = None, *, hint: str | None = None) -> ComposeFileError:
    """Compose's error about a value that came out blank (`invalid boolean: `, `parsing ""`, `empty
    section between colons`, a service with no image) with the blank variables that caused it, each
    once with every place it is used; `exc` itself when no blank variable explains it."""
    text = exc.message
    if "required variable" in text:
        return exc  # Compose named the variable itself
    no_image = _NO_IMAGE.search(text)
    if exc.field and exc.field.startswith("services."):
        fields = [exc.field]
    elif no_image:
        fields = [f"services.{no_image.group(1)}.image"]
    elif "empty" in text or '""' in text or text.rstrip().endswith(":"):
        fields = []
    else:
        return exc
    values = _effective_env(invocation, environ)
    culprits = _culprits(fields, invocation, root, values) if fields else {}
    if not culprits and not exc.field:
        skip = (".environment", ".labels", ".command", ".entrypoint", ".healthcheck.test")
        culprits = {n: u for n, u in _uses(invocation, root).items()
                    if any(_blank(ref, values) and not any(s in fld for s in skip) for _, fld, ref in u)}
    if not culprits:
        return exc
    causes = "; ".join(describe_blank(n, values, u) for n, u in sorted(culprits.items()))
    return ComposeFileError(f"{causes}: {text}", file=exc.file, field=exc.field, hint=hint or exc.hint)


# ---------------------------------------------------------------------------------------------
# JSON → model
# ---------------------------------------------------------------------------------------------
def unescape(value: Any) -> Any:
    """`docker compose config` re-escapes every `$` as `$$` in string values; undo it."""
    if isinstance(value, str):
        return value.replace("$$", "$")
    if isinstance(value, list):
        return [unescape(v) for v in value]
    if isinstance(value, dict):
        return {k: unescape(v) for k, v in value.items()}
    return value


def parse_duration(text: Any, where: str) -> float:
    """Go duration strings as Compose prints them (`1m30s`, `500ms`) → seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text) / 1e9  # a bare number in Compose JSON is nanoseconds
    s = str(text).strip()
    if s in ("0", ""):
        return 0.0
    pos, total = 0, 0.0
    for match in _DURATION.finditer(s):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(s):
        raise ComposeFileError(f"cannot read duration {text!r}", field=where)
    return total


def _bytes(value: Any, where: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ComposeFileError(f"cannot read byte size {value!r}", field=where) from None


def _argv(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _str_map(value: Any) -> dict[str, str]:
    if not value:
        return {}
    if isinstance(value, list):  # ["K=V"] form, not printed by Compose v2 but cheap to accept
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in value)
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def to_model(data: Mapping[str, Any], *, file: str | None = None) -> m.Stack:
    """Map resolved Compose JSON (already `$$`-escaped as Compose prints it) to a `Stack`; errors name
    `file` (the first Compose file) when they cannot tell which file a field came from."""
    try:
        return _to_model(data)
    except ComposeFileError as exc:
        if exc.file is not None or file is None:
            raise
        raise ComposeFileError(exc.message, file=file, field=exc.field, hint=exc.hint) from None


def _to_model(data: Mapping[str, Any]) -> m.Stack:
    data = unescape(data)
    warnings: list[m.Warning_] = []
    for key in data:
        if key in _NAMED_DROPS:
            warnings.append(m.Warning_(key, _NAMED_DROPS[key]))
        elif key not in _TOP_FIELDS and not key.startswith("x-"):
            warnings.append(m.Warning_(key, "top-level field not modeled by stackctl; backends other than "
                                            "Compose ignore it"))
    services = []
    for name, svc in sorted((data.get("services") or {}).items()):
        services.append(_service(name, svc or {}, warnings))
    volumes = tuple(
        m.Volume(name=k, external=bool(v.get("external")), driver=v.get("driver"),
                 driver_opts=_str_map(v.get("driver_opts")), labels=_str_map(v.get("labels")),
                 resolved_name=v.get("name"))
        for k, v in sorted((data.get("volumes") or {}).items()) for v in [v or {}])
    networks = tuple(
        m.Network(name=k, internal=bool(v.get("internal")), external=bool(v.get("external")),
                  driver=v.get("driver"), labels=_str_map(v.get("labels")), resolved_name=v.get("name"))
        for k, v in sorted((data.get("networks") or {}).items()) for v in [v or {}])
    return m.Stack(
        name=str(data.get("name") or "stack"),
        services=tuple(services),
        volumes=volumes,
        networks=networks,
        secrets=tuple(_secret(k, v or {}) for k, v in sorted((data.get("secrets") or {}).items())),
        configs=tuple(_secret(k, v or {}) for k, v in sorted((data.get("configs") or {}).items())),
        warnings=tuple(warnings),
    )


def _secret(name: str, v: Mapping[str, Any]) -> m.Secret:
    return m.Secret(name=name, file=v.get("file"), environment=v.get("environment"), content=v.get("content"),
                    external=bool(v.get("external")), resolved_name=v.get("name"))


def _service(name: str, svc: Mapping[str, Any], warnings: list[m.Warning_]) -> m.Service:
    where = f"services.{name}"
    for key in sorted(svc):
        if key in _NAMED_DROPS:
            warnings.append(m.Warning_(f"{where}.{key}", _NAMED_DROPS[key]))
        elif key not in _SERVICE_FIELDS and not key.startswith("x-"):
            warnings.append(m.Warning_(f"{where}.{key}", "not modeled by stackctl; Compose applies it "
                                                          "locally, the Kubernetes backend ignores it"))
    build = None
    if svc.get("build"):
        b = svc["build"]
        build = m.Build(context=str(b.get("context", ".")), dockerfile=b.get("dockerfile"), target=b.get("target"),
                        args={k: v for k, v in (b.get("args") or {}).items()})
    hc = None
    if svc.get("healthcheck"):
        h = svc["healthcheck"]
        hw = f"{where}.healthcheck"
        hc = m.Healthcheck(
            test=tuple(h.get("test") or ()),
            interval=parse_duration(h["interval"], f"{hw}.interval") if h.get("interval") else 30.0,
            timeout=parse_duration(h["timeout"], f"{hw}.timeout") if h.get("timeout") else 30.0,
            retries=int(h["retries"]) if h.get("retries") is not None else 3,
            start_period=parse_duration(h["start_period"], f"{hw}.start_period") if h.get("start_period") else 0.0,
            start_interval=(parse_duration(h["start_interval"], f"{hw}.start_interval")
                            if h.get("start_interval") else None),
            disable=bool(h.get("disable")),
        )
    deps = tuple(
        m.Dependency(service=dep, condition=(d or {}).get("condition", "service_started"),
                     required=(d or {}).get("required", True), restart=bool((d or {}).get("restart", False)))
        for dep, d in sorted((svc.get("depends_on") or {}).items()))
    for i, p in enumerate(svc.get("ports") or ()):
        if not p.get("target"):  # Compose drops `target: 0` from its JSON and starts the container anyway
            raise ComposeFileError("a port needs a container port (target) from 1 to 65535",
                                   field=f"{where}.ports[{i}]")
    ports = tuple(
        m.Port(target=int(p["target"]), published=str(p["published"]) if p.get("published") not in (None, "") else None,
               protocol=p.get("protocol") or "tcp", host_ip=p.get("host_ip"), mode=p.get("mode"), name=p.get("name"),
               app_protocol=p.get("app_protocol"))
        for p in svc.get("ports") or ())
    mounts = []
    for i, v in enumerate(svc.get("volumes") or ()):
        tmpfs = v.get("tmpfs") or {}
        mounts.append(m.Mount(
            type=v.get("type", "volume"), target=v["target"], source=v.get("source"),
            read_only=bool(v.get("read_only")),
            tmpfs_size=_bytes(tmpfs.get("size"), f"{where}.volumes[{i}].tmpfs.size"),
            tmpfs_mode=tmpfs.get("mode"), nocopy=bool((v.get("volume") or {}).get("nocopy")),
            subpath=(v.get("volume") or {}).get("subpath"),
            create_host_path=(v.get("bind") or {}).get("create_host_path")))
    tmpfs_mounts = _tmpfs(svc.get("tmpfs"), f"{where}.tmpfs", warnings)
    nets = tuple(
        m.ServiceNetwork(name=n, aliases=tuple((c or {}).get("aliases") or ()),
                         ipv4_address=(c or {}).get("ipv4_address"), ipv6_address=(c or {}).get("ipv6_address"))
        for n, c in sorted((svc.get("networks") or {}).items()))
    return m.Service(
        name=name,
        image=svc.get("image"),
        build=build,
        command=_argv(svc.get("command")),
        entrypoint=_argv(svc.get("entrypoint")),
        environment={k: (None if v is None else str(v)) for k, v in (svc.get("environment") or {}).items()},
        ports=ports,
        expose=tuple(str(e) for e in svc.get("expose") or ()),
        volumes=tuple(mounts),
        tmpfs=tmpfs_mounts,
        healthcheck=hc,
        depends_on=deps,
        deploy=_deploy(svc.get("deploy") or {}, f"{where}.deploy", warnings),
        restart=svc.get("restart"),
        labels=_str_map(svc.get("labels")),
        networks=nets,
        secrets=tuple(_file_ref(s) for s in svc.get("secrets") or ()),
        configs=tuple(_file_ref(s) for s in svc.get("configs") or ()),
        stop_grace_period=(parse_duration(svc["stop_grace_period"], f"{where}.stop_grace_period")
                           if svc.get("stop_grace_period") else None),
        user=svc.get("user"),
        working_dir=svc.get("working_dir"),
        profiles=tuple(svc.get("profiles") or ()),
        pull_policy=svc.get("pull_policy"),
        hostname=svc.get("hostname"),
        init=svc.get("init"),
        read_only=svc.get("read_only"),
        cap_add=tuple(str(c) for c in svc.get("cap_add") or ()),
        cap_drop=tuple(str(c) for c in svc.get("cap_drop") or ()),
        privileged=svc.get("privileged"),
        sysctls=_str_map(svc.get("sysctls")),
        post_start=tuple(_hook(h) for h in svc.get("post_start") or ()),
        pre_stop=tuple(_hook(h) for h in svc.get("pre_stop") or ()),
        gpus=tuple(_device(d) for d in svc.get("gpus") or ()),
        develop_watch=tuple(_watch(w) for w in (svc.get("develop") or {}).get("watch") or ()),
        fields=_fields_read(svc),
    )


_TMPFS_SIZE = re.compile(r"(\d+)([kmgt]?)", re.IGNORECASE)


def _tmpfs(value: Any, where: str, warnings: list[m.Warning_]) -> tuple[m.Mount, ...]:
    """Service-level `tmpfs:` as Compose prints it: `/path` or `/path:size=64m,mode=1777` (the
    options of mount(8); a size in bytes or with k/m/g/t, powers of 1024)."""
    out = []
    for j, entry in enumerate([value] if isinstance(value, str) else value or ()):
        path, _, options = str(entry).partition(":")
        size: int | None = None
        mode: int | None = None
        for option in filter(None, options.split(",")):
            key, _, text = option.partition("=")
            match = _TMPFS_SIZE.fullmatch(text)
            if key == "size" and match:
                size = int(match.group(1)) * 1024 ** " kmgt".index(match.group(2).lower() or " ")
            elif key == "mode" and re.fullmatch(r"[0-7]{1,4}", text):
                mode = int(text, 8)
            elif key == "size":
                warnings.append(m.Warning_(f"{where}[{j}]", f"size={text} cannot be carried over (only a "
                                                             "size in bytes, k, m, g or t); no size limit"))
        out.append(m.Mount(type="tmpfs", target=path, tmpfs_size=size, tmpfs_mode=mode))
    return tuple(out)


def _fields_read(svc: Mapping[str, Any]) -> tuple[str, ...]:
    """The fields the service sets, as Compose printed them: `deploy` by its keys (each maps somewhere
    else), and not the ones Compose prints empty (`command: null`, `deploy.placement: {}`)."""
    fields = [k for k, v in svc.items() if k != "deploy" and not k.startswith("x-") and v not in (None, {}, [])]
    fields += [f"deploy.{k}" for k, v in (svc.get("deploy") or {}).items() if v not in (None, {}, [])]
    return tuple(sorted(fields))


def _hook(h: Mapping[str, Any]) -> m.Hook:
    return m.Hook(command=_argv(h.get("command")) or (), user=h.get("user"), privileged=h.get("privileged"),
                  working_dir=h.get("working_dir"),
                  environment={k: (None if v is None else str(v)) for k, v in (h.get("environment") or {}).items()})


def _watch(w: Mapping[str, Any]) -> m.WatchTrigger:
    """A `develop.watch` entry (Compose prints `exec: {command: null}` on every action)."""
    x = w.get("exec") or {}
    return m.WatchTrigger(action=str(w.get("action") or ""), path=str(w.get("path") or ""), target=w.get("target"),
                          ignore=tuple(str(p) for p in w.get("ignore") or ()),
                          include=tuple(str(p) for p in w.get("include") or ()),
                          initial_sync=bool(w.get("initial_sync")), exec=_hook(x) if x.get("command") else None)


def _device(d: Mapping[str, Any]) -> m.DeviceRequest:
    count = d.get("count")
    ids = tuple(str(i) for i in d.get("device_ids") or ())
    return m.DeviceRequest(capabilities=tuple(str(c) for c in d.get("capabilities") or ()), driver=d.get("driver"),
                           count=-1 if count is None and not ids else (None if count is None else int(count)),
                           device_ids=ids, options=_str_map(d.get("options")))


def _file_ref(s: Any) -> m.FileRef:
    if isinstance(s, str):
        return m.FileRef(source=s)
    mode = s.get("mode")
    return m.FileRef(source=s["source"], target=s.get("target"), uid=s.get("uid"), gid=s.get("gid"),
                     mode=int(mode, 8) if isinstance(mode, str) else mode)


def _resources(r: Mapping[str, Any] | None, where: str) -> m.Resources:
    r = r or {}
    cpus = r.get("cpus")
    return m.Resources(cpus=float(cpus) if cpus not in (None, "", 0) else None,
                       memory=_bytes(r.get("memory"), f"{where}.memory"),
                       pids=r.get("pids"), devices=tuple(_device(d) for d in r.get("devices") or ()))


def _placement(p: Any, where: str, warnings: list[m.Warning_]) -> m.SwarmPlacement | None:
    if not p:
        return None
    for key in sorted(set(p) - {"constraints", "preferences", "max_replicas_per_node"}):
        warnings.append(m.Warning_(f"{where}.{key}", "not modeled by stackctl"))
    prefs = [str(pref["spread"]) for pref in p.get("preferences") or [] if isinstance(pref, Mapping)
             and pref.get("spread")]
    limit = p.get("max_replicas_per_node")
    return m.SwarmPlacement(constraints=tuple(str(c) for c in p.get("constraints") or ()), preferences=tuple(prefs),
                            max_replicas_per_node=int(limit) if limit else None)


def _deploy(d: Mapping[str, Any], where: str, warnings: list[m.Warning_]) -> m.Deploy:
    for key in sorted(d):
        if key not in _DEPLOY_FIELDS:
            warnings.append(m.Warning_(f"{where}.{key}", "not modeled by stackctl"))
    placement = _placement(d.get("placement"), f"{where}.placement", warnings)
    res = d.get("resources") or {}
    for key in sorted(set(res) - {"limits", "reservations"}):
        warnings.append(m.Warning_(f"{where}.resources.{key}", "not modeled by stackctl"))
    # e.g. `generic_resources`; devices are a reservation only
    for part, known in (("limits", {"cpus", "memory", "pids"}),
                        ("reservations", {"cpus", "memory", "pids", "devices"})):
        for key in sorted(set(res.get(part) or {}) - known):
            warnings.append(m.Warning_(f"{where}.resources.{part}.{key}", "not modeled by stackctl"))
    uc = d.get("update_config")
    return m.Deploy(
        mode=d.get("mode") or "replicated",
        replicas=d.get("replicas"),
        limits=_resources(res.get("limits"), f"{where}.resources.limits"),
        reservations=_resources(res.get("reservations"), f"{where}.resources.reservations"),
        update_config=m.UpdateConfig(parallelism=uc.get("parallelism"),
                                     delay=parse_duration(uc["delay"], f"{where}.update_config.delay")
                                     if uc.get("delay") else None,
                                     order=uc.get("order"), failure_action=uc.get("failure_action")) if uc else None,
        restart_policy=d.get("restart_policy"),
        labels=_str_map(d.get("labels")),
        placement=placement,
    )
