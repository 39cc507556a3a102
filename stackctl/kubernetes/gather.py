"""Collect the renderer's inputs from a profile: the only module of the Kubernetes backend that reads
files or the secrets store (the renderer itself is pure).

- secret keys: `.env.example` annotations (`@secret`), via `stackctl.secrets.template`;
- digests: the secrets store, opened without a key (digests need none);
- values: the store, decrypted, only when asked (`--include-secrets`, promote); else the secrets are
  markers (`stackctl.secrets.mask`) already when Compose interpolates;
- templates: the environment values as written in the Compose files (`${DB_PASSWORD}`);
- host paths: the bind-mount sources and the `file:` of Compose secrets/configs, read within limits.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackctl import model as m
from stackctl.kubernetes.inputs import HostPath, SecretInputs, Target
from stackctl.kubernetes.render import Rendered, render
from stackctl.pipeline import LoadedStack, Secrets, load_stack
from stackctl.profile.types import Profile, display

MAX_FILE = 1024 * 1024  # a ConfigMap holds at most 1 MiB
MAX_DIR_FILES = 256
SKIP_DIRS = {".git", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".mypy_cache"}


@dataclass(frozen=True)
class ProfileRender:
    """One profile rendered: its inputs and the objects."""

    loaded: LoadedStack
    target: Target
    rendered: Rendered
    secrets: SecretInputs

    @property
    def warnings(self) -> tuple[m.Warning_, ...]:
        """The model's warnings (fields Compose has and the model does not) and the renderer's."""
        return (*self.loaded.stack.warnings, *self.rendered.warnings)


def render_profile(profile: Profile, *, with_values: bool = False, kube_version: str | None = None,
                   environ: Mapping[str, str] | None = None, env_from_store: bool = False,
                   overrides: Mapping[str, tuple[str, str]] | None = None) -> ProfileRender:
    """Load the stack for `profile` (Compose resolves it) and render it for Kubernetes.

    Unless the caller computed the environment (`environ`, promote), the profile's env is computed
    in memory (`load_stack(secrets=...)`), so no plaintext env file is needed: with the store's values
    when they are asked for (`with_values`), else with every secret as its marker — whatever a secret
    flows into (an argument, a healthcheck, a label) then prints as `<secret:NAME>`, and no key is
    needed (CI). A checksum over a value that embeds a secret (`postgres://app:${DB_PASSWORD}@db`)
    is then taken over the marker: only a render with values matches what promote applies.
    `overrides`: NAME → (value, digest) used instead of the store's (a preview's own values,
    `promote --preview`; the digest names the value's version, as the store's do, so the pods roll
    when such a value changes)."""
    env_mode: Secrets | None = None
    if environ is None and not env_from_store:
        env_mode = "values" if with_values else "masked"
    loaded = load_stack(profile, environ=environ, env_from_store=env_from_store, secrets=env_mode)
    target = Target.from_profile(profile, stack=loaded.stack.name)
    if kube_version:
        target = dataclasses.replace(target, kubernetes=dataclasses.replace(target.kubernetes, version=kube_version))
    secrets = secret_inputs(profile, loaded.stack, with_values=with_values)
    if overrides:
        secrets = dataclasses.replace(
            secrets, digests={**secrets.digests, **{name: digest for name, (_, digest) in overrides.items()}},
            values=None if secrets.values is None else {**secrets.values,
                                                        **{name: value for name, (value, _) in overrides.items()}})
    host = _env_files_as_secrets(profile, host_paths(loaded.stack, profile.root), masked=not with_values)
    return ProfileRender(loaded=loaded, target=target, rendered=render(loaded.stack, target, secrets=secrets,
                                                                       host=host), secrets=secrets)


# ---------------------------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------------------------
def secret_inputs(profile: Profile, stack: m.Stack, *, with_values: bool = False) -> SecretInputs:
    keys: frozenset[str] = frozenset()
    if profile.env.template.is_file():
        from stackctl.secrets.template import load_template

        template = load_template(profile.env.template, display=display(profile.env.template, profile.root),
                                 set_in=profile.env.template_set_in)
        keys = frozenset(key.name for key in template.keys if key.is_secret)
    digests: dict[str, str] = {}
    values: dict[str, str] | None = None
    if profile.secrets.store.is_file():
        from stackctl.secrets.ops import open_store

        store = open_store(profile, need_key=with_values)
        digests = {name: store.digest(name) for name in store.names}
        if with_values:
            values = store.values()
    elif with_values:
        values = {}
    return SecretInputs(keys=keys, digests=digests, values=values,
                        templates=environment_templates(profile.compose.files, stack))


def environment_templates(files: tuple[Path, ...], stack: m.Stack) -> dict[tuple[str, str], str]:
    """(service, VARIABLE) → its value as written in the Compose files (later files win, as when
    Compose merges them). Values that `extends`/`include` bring in are not seen: those variables
    are classified by name and value only."""
    import yaml

    from stackctl.compose import yaml as composeyaml

    names = set(stack.service_names)
    out: dict[tuple[str, str], str] = {}
    for path in files:
        try:
            doc = composeyaml.load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue  # Compose already accepted the files; a second reading problem only loses precision
        services = doc.get("services") if isinstance(doc, dict) else None
        if not isinstance(services, dict):
            continue
        for svc_name, svc in services.items():
            if svc_name not in names or not isinstance(svc, dict):
                continue
            env = svc.get("environment")
            items: list[tuple[str, Any]] = []
            if isinstance(env, dict):
                items = [(str(key), value) for key, value in env.items()]
            elif isinstance(env, list):
                for entry in env:
                    key, sep, value = str(entry).partition("=")
                    items.append((key, value if sep else None))
            for key, value in items:
                if value is None or isinstance(value, (dict, list)):
                    out.pop((svc_name, key), None)  # passed through from the shell: no template
                elif isinstance(value, bool):
                    out[(svc_name, key)] = "true" if value else "false"
                else:
                    out[(svc_name, key)] = str(value)
    return out


# ---------------------------------------------------------------------------------------------
# Host paths
# ---------------------------------------------------------------------------------------------
def host_paths(stack: m.Stack, root: Path) -> dict[str, HostPath]:
    """What every bind source and every secret/config `file:` is on this machine."""
    sources = {mount.source for svc in stack.services for mount in svc.volumes
               if mount.type == "bind" and mount.source}
    sources |= {item.file for item in (*stack.secrets, *stack.configs) if item.file}
    return {source: read_host_path(Path(source), root) for source in sorted(sources)}


def _env_files_as_secrets(profile: Profile, host: dict[str, HostPath], *, masked: bool) -> dict[str, HostPath]:
    """A bind-mounted env file (`./.env:/app/.env:ro`) holds every secret, and on disk it is some
    profile's file (the local one, even with `-p production`): mount this profile's own env instead,
    as `env render` would write it, and in a Secret (`HostPath.secret`)."""
    from stackctl.secrets import envfile

    out = dict(host)
    content: bytes | None = None
    for source, info in host.items():
        if info.kind != "file" or not _is_env_file(Path(source), profile):
            continue
        if content is None:
            text = envfile.text_in_memory(profile, masked=masked)
            content = info.files.get("", b"") if text is None else text.encode("utf-8")
        out[source] = dataclasses.replace(info, files={"": content}, secret=True)
    return out


def _is_env_file(path: Path, profile: Profile) -> bool:
    """The profile's env file, Compose's default `.env`, or another profile's `.env.<name>` (not the
    template, which holds no values)."""
    try:
        resolved = path.resolve()
        if resolved == profile.env.file.resolve():
            return True
        if resolved == profile.env.template.resolve():
            return False
    except OSError:
        return False
    name = resolved.name
    return name == ".env" or (name.startswith(".env.") and not name.endswith((".example", ".sample", ".template")))


def read_host_path(path: Path, root: Path) -> HostPath:
    resolved_root = root.resolve()
    try:
        resolved = path.resolve()
    except OSError as exc:
        return HostPath(kind="missing", display=str(path), reason=f"cannot be read ({exc.strerror})")
    inside = resolved == resolved_root or resolved_root in resolved.parents
    shown = display(resolved, resolved_root) if inside else str(path)
    if not inside:
        return HostPath(kind="host", display=shown)
    try:
        st = resolved.stat()
    except FileNotFoundError:
        return HostPath(kind="missing", display=shown, reason="it does not exist")
    except OSError as exc:
        return HostPath(kind="missing", display=shown, reason=f"it cannot be read ({exc.strerror})")
    if stat.S_ISREG(st.st_mode):
        if st.st_size > MAX_FILE:
            return HostPath(kind="too_large", display=shown,
                            reason=f"{st.st_size} bytes is more than a ConfigMap holds (1 MiB); "
                                   "build it into the image")
        return HostPath(kind="file", display=shown, files={"": resolved.read_bytes()},
                        modes={"": stat.S_IMODE(st.st_mode)})
    if not stat.S_ISDIR(st.st_mode):
        return HostPath(kind="host", display=shown)
    files: dict[str, bytes] = {}
    modes: dict[str, int] = {}
    total = 0
    for dirpath, dirnames, filenames in os.walk(resolved):
        skipped = sorted(d for d in dirnames if d in SKIP_DIRS)
        if skipped:
            return HostPath(kind="too_large", display=shown, source_tree=True,
                            reason=f"it holds {skipped[0]}/: a source tree, not configuration; build it into the image")
        dirnames.sort()
        for filename in sorted(filenames):
            file = Path(dirpath) / filename
            if not file.is_file():
                continue
            file_stat = file.stat()
            total += file_stat.st_size
            if len(files) >= MAX_DIR_FILES or total > MAX_FILE:
                return HostPath(kind="too_large", display=shown,
                                reason=f"more than {MAX_DIR_FILES} files or 1 MiB: too large for a ConfigMap; "
                                       "build it into the image")
            rel = file.relative_to(resolved).as_posix()
            files[rel] = file.read_bytes()
            modes[rel] = stat.S_IMODE(file_stat.st_mode)
    return HostPath(kind="dir", display=shown, files=files, modes=modes)
