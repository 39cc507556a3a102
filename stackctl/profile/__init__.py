"""Profiles: `profiles/<name>.yaml`, one per environment, validated into typed settings.

A profile names the Compose files and env files of an environment, the overrides it applies to
the stack (replicas, resources, strategy, ingress), and the Kubernetes target. Every error names
the file and the field (`profiles/production.yaml: kubernetes.namespace: must be a DNS-1123 label`)
and is an `InputError` (exit 2). Unknown keys are errors too: a typo must not be silently ignored.

`types` holds the settings, `reader` the located YAML reader, `kubernetes` the Kubernetes keys; this
module reads the file and the sections every backend uses.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from stackctl.errors import ProfileError
from stackctl.profile.gitops import gitops_settings
from stackctl.profile.kubernetes import kubernetes_settings, service_override
from stackctl.profile.reader import DNS1123_LABEL, ENV_KEY, Node, check_text, kind_of
from stackctl.profile.types import ComposeSettings, EnvSettings, Profile, SecretsSettings, ServiceOverride, display

__all__ = ["Profile", "find_project_root", "list_profiles", "load_profile", "parse_profile", "read_yaml"]

PROFILES_DIR = "profiles"
PROFILE_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
_TOP_FIELDS = ("stack", "description", "compose", "env", "secrets", "defaults", "services", "kubernetes", "gitops")


def find_project_root(start: Path | None = None) -> Path:
    """The nearest directory (from `start`, default cwd, upwards) that holds a `profiles/` directory.

    Falls back to `start` itself, so `stackctl init` can scaffold a new project there.
    """
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / PROFILES_DIR).is_dir():
            return candidate
    return here


def list_profiles(root: Path) -> list[str]:
    directory = root / PROFILES_DIR
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.yaml"))


def read_yaml(path: Path, root: Path) -> object:
    """Parse a YAML file; syntax errors name the file, line and column (exit 2)."""
    import yaml

    shown = display(path, root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError("file not found", file=shown) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"cannot read: {exc}", file=shown) from None
    from stackctl.compose import yaml as bounded

    try:
        data = bounded.safe_load(text)  # yaml.safe_load with depth and alias-expansion bounds
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        raise ProfileError(f"invalid YAML: {exc.problem}", file=shown, field=where) from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"invalid YAML: {exc}", file=shown) from None
    check_text(data, shown)
    return data


def load_profile(root: Path, name: str) -> Profile:
    """Load and validate `profiles/<name>.yaml` under the project root."""
    if not PROFILE_NAME.match(name):
        raise ProfileError(f"invalid profile name {name!r} (use lowercase letters, digits, '-' and '_')",
                           field="--profile")
    path = root / PROFILES_DIR / f"{name}.yaml"
    if not path.is_file():
        known = list_profiles(root)
        hint = f"known profiles: {', '.join(known)}" if known else "run `stackctl init` to create profiles"
        raise ProfileError(f"profile {name!r} not found", file=display(path, root), hint=hint)
    return parse_profile(read_yaml(path, root), name=name, path=path, root=root)


def parse_profile(data: Any, *, name: str, path: Path, root: Path) -> Profile:
    """Validate the parsed YAML of one profile file into a `Profile`."""
    file = display(path, root)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProfileError(f"must be a mapping at the top level, got {kind_of(data)}", file=file)
    top = Node(data, file, "")
    top.only(_TOP_FIELDS)

    stack = top.string("stack", pattern=DNS1123_LABEL,
                       what="must be a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters)")

    def rel(p: str) -> Path:
        # a name longer than the file system takes would be an OSError in whatever stats it first
        if any(len(part.encode("utf-8")) > 255 for part in Path(p).parts) or len(p.encode("utf-8")) > 4095:
            raise ProfileError(f"path {p[:60]!r}... is longer than a file system allows", file=file)
        return (root / p).resolve() if not Path(p).is_absolute() else Path(p)

    env_node = top.mapping("env", allowed=("template", "file", "values"))
    env_file = rel((env_node and env_node.string("file")) or (".env" if name == "local" else f".env.{name}"))
    values: dict[str, str] = {}
    if env_node is not None and (vals := env_node.mapping("values")) is not None:
        for k, v in vals.data.items():
            if not isinstance(k, str) or not ENV_KEY.match(k):
                raise vals.fail("must be a variable name like LOG_LEVEL", str(k))
            if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                raise vals.fail(f"must be a string or number, got {kind_of(v)}", k)
            values[k] = str(v)
    env = EnvSettings(template=rel((env_node and env_node.string("template")) or ".env.example"),
                      file=env_file, values=values,
                      template_set_in=file if env_node is not None and env_node.string("template") else "")

    compose_node = top.mapping("compose", allowed=("files", "env_files", "profiles", "project_directory"),
                               required=True)
    assert compose_node is not None
    files = tuple(rel(f) for f in compose_node.string_list("files", required=True))
    for i, f in enumerate(files):
        if not f.is_file():
            raise compose_node.fail(f"file not found: {display(f, root)}", f"files[{i}]")
    if "env_files" in compose_node.data:
        env_files = tuple(rel(f) for f in compose_node.string_list("env_files"))
    else:
        env_files = (env.file,)
    project_dir = compose_node.string("project_directory")
    compose = ComposeSettings(files=files, env_files=env_files, profiles=compose_node.string_list("profiles"),
                              project_directory=rel(project_dir) if project_dir else None)

    sec_node = top.mapping("secrets", allowed=("store", "history"))
    secrets = SecretsSettings(
        store=rel((sec_node and sec_node.string("store")) or f".stackctl/secrets/{name}.json"),
        history=(sec_node and sec_node.integer("history", minimum=1, maximum=100)) or 10,
    )

    services: dict[str, ServiceOverride] = {}
    if (svc_node := top.mapping("services")) is not None:
        for svc_name in svc_node.data:
            services[str(svc_name)] = service_override(svc_node.mapping(str(svc_name)))

    return Profile(name=name, root=root, path=path, stack=stack, compose=compose, env=env, secrets=secrets,
                   defaults=service_override(top.mapping("defaults"), defaults=True), services=services,
                   kubernetes=kubernetes_settings(top.mapping("kubernetes")),
                   gitops=gitops_settings(top.mapping("gitops"), rel, root))
