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
    "privileged", "sysctls",
})
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


def invocation_for(profile: Profile) -> tuple[ComposeInvocation, list[m.Warning_]]:
    """The Compose command line for a profile. Env files that do not exist yet are left out
    with a warning; when none exists, an empty one is passed so a stray `.env` next to the
    Compose file cannot leak into the project unannounced (the profile is the one source of the
    environment; `docker compose` alone would read `<project dir>/.env`)."""
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
    if not env_files:
        env_files.append(Path(os.devnull))
    return ComposeInvocation(files=profile.compose.files, env_files=tuple(env_files),
                             profiles=profile.compose.profiles, project_name=profile.stack,
                             project_directory=profile.compose.project_directory), warnings


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
        raise _config_error(res.stderr, invocation, root)
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


def _config_error(stderr: str, invocation: ComposeInvocation, root: Path) -> ComposeFileError:
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
        return ComposeFileError(message, file=file or first, field=field,
                                hint="define it in the profile's env file, or run `stackctl secrets generate` "
                                     "and `stackctl env render`" if var else None)
    # Compose usually names the file itself ("validating /abs/compose.yaml: services.x ...")
    for f, shown in zip(invocation.files, shown_files, strict=True):
        text = text.replace(str(f), shown)
    text = text.replace(f"{root}/", "")
    named = next((s for s in shown_files if text.startswith(s) or f" {s}" in text), None)
    return ComposeFileError(text, file=None if named else first)


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
        if key not in _TOP_FIELDS and not key.startswith("x-"):
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
        if key not in _SERVICE_FIELDS and not key.startswith("x-"):
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
    )


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
                       pids=r.get("pids"))


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
