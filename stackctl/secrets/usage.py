"""Which Compose services use which env keys — so a rotation restarts exactly those.

A service uses a key when
- one of its fields interpolates it (`services.api.environment.DB_PASSWORD: ${DB_PASSWORD}`, also
  through YAML anchors / merge keys, which the YAML loader expands), or
- its `env_file` lists the profile's rendered env file (then it receives every key of that file), or
- it uses another key whose env-file value refers to it (`DATABASE_URL=postgres://u:${DB_PASSWORD}@db`),
  or the `@public` key derived from it.

Scanned: the profile's Compose files (`compose.files`). Not followed: `extends: {file: ...}` and
`include:` of other files (listed as a limitation in docs/secrets.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from stackctl.profile.types import Profile


def _dependents(profile: Profile, keys: set[str]) -> set[str]:
    """`keys` plus every key whose value (template, env file) refers to one of them, transitively,
    plus the @public keys derived from them."""
    from stackctl.compose import dotenv
    from stackctl.compose.interpolation import references
    from stackctl.errors import StackctlError
    from stackctl.secrets import ops

    refs: dict[str, set[str]] = {}
    template = ops.template_if_any(profile)
    for key in (template or []):
        if key.kind == "public" and key.public_of:
            refs.setdefault(key.name, set()).add(key.public_of)
        elif key.kind == "config" and key.quote != "'" and key.raw:
            with contextlib.suppress(StackctlError):
                refs.setdefault(key.name, set()).update(r.name for r in references(key.raw))
    if profile.env.file.exists():
        try:
            for e in dotenv.parse_entries(profile.env.file.read_bytes().decode("utf-8")):
                if e.quote != "'" and not e.inherit and e.raw:
                    refs.setdefault(e.key, set()).update(r.name for r in references(e.raw))
        except (StackctlError, OSError, UnicodeDecodeError):
            pass
    affected = set(keys)
    while True:
        grown = {name for name, uses in refs.items() if uses & affected} - affected
        if not grown:
            return affected
        affected |= grown


def _load_yaml(path: Path) -> Any:
    import yaml

    from stackctl.compose import yaml as composeyaml

    try:
        return composeyaml.load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None


def _env_file_paths(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict) and isinstance(item.get("path"), str):
            out.append(item["path"])
    return out


def services_by_key(profile: Profile) -> tuple[dict[str, set[str]], set[str]]:
    """(variable → services interpolating it, services loading the rendered env file via env_file)."""
    from stackctl.compose.interpolation import scan_yaml_file

    by_key: dict[str, set[str]] = {}
    whole_file: set[str] = set()
    base = profile.compose.project_directory or (profile.compose.files[0].parent if profile.compose.files
                                                 else profile.root)
    env_file = profile.env.file.resolve()
    for compose_file in profile.compose.files:
        data = _load_yaml(compose_file)
        services = data.get("services") if isinstance(data, dict) else None
        if not isinstance(services, dict):
            continue
        names = sorted((str(n) for n in services), key=len, reverse=True)  # longest first: names may hold '.'
        for ref in scan_yaml_file(compose_file):
            svc = next((n for n in names if ref.field.startswith(f"services.{n}.")), None)
            if svc is not None:
                by_key.setdefault(ref.name, set()).add(svc)
        for name, svc_data in services.items():
            if isinstance(svc_data, dict) and "env_file" in svc_data:
                for rel in _env_file_paths(svc_data["env_file"]):
                    if (base / rel).resolve() == env_file:
                        whole_file.add(str(name))
    return by_key, whole_file


def services_using(profile: Profile, keys: Iterable[str]) -> dict[str, frozenset[str]]:
    """For each key: the Compose services whose container env or config changes when it changes."""
    by_key, whole_file = services_by_key(profile)
    out: dict[str, frozenset[str]] = {}
    for key in keys:
        affected = _dependents(profile, {key})
        services = set(whole_file)
        for name in affected:
            services |= by_key.get(name, set())
        out[key] = frozenset(services)
    return out
