"""Profiles: `profiles/<name>.yaml`, one per environment, validated into typed settings.

A profile names the Compose files and env files of an environment, the overrides it applies to
the stack (replicas, resources, strategy, ingress), and the Kubernetes target. Every error names
the file and the field (`profiles/production.yaml: kubernetes.namespace: must be a DNS-1123 label`)
and is an `InputError` (exit 2). Unknown keys are errors too: a typo must not be silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackctl.errors import ProfileError

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
PROFILE_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
STRATEGIES = ("rolling", "recreate", "blue-green", "canary")
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")

_BYTES_SUFFIX = {
    "": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}


# ---------------------------------------------------------------------------------------------
# Typed settings
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResourceSpec:
    cpus: float | None = None  # cores
    memory: int | None = None  # bytes


@dataclass(frozen=True)
class Resources:
    limits: ResourceSpec = field(default_factory=ResourceSpec)
    requests: ResourceSpec = field(default_factory=ResourceSpec)

    @property
    def empty(self) -> bool:
        return self.limits == ResourceSpec() and self.requests == ResourceSpec()


@dataclass(frozen=True)
class Ingress:
    hosts: tuple[str, ...]
    path: str = "/"
    port: int | None = None
    tls_secret: str | None = None
    class_name: str | None = None


@dataclass(frozen=True)
class ServiceOverride:
    replicas: int | None = None
    resources: Resources = field(default_factory=Resources)
    strategy: str | None = None
    ingress: Ingress | None = None
    service_type: str | None = None


@dataclass(frozen=True)
class ComposeSettings:
    files: tuple[Path, ...]
    env_files: tuple[Path, ...]
    profiles: tuple[str, ...] = ()
    project_directory: Path | None = None


@dataclass(frozen=True)
class EnvSettings:
    template: Path
    file: Path
    values: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SecretsSettings:
    store: Path
    history: int = 10


@dataclass(frozen=True)
class KubernetesSettings:
    namespace: str
    context: str | None = None
    protected: bool = False
    registry: str | None = None
    image_tag: str | None = None
    ingress_class: str | None = None


@dataclass(frozen=True)
class Profile:
    name: str
    root: Path  # the project root: the directory holding profiles/
    path: Path  # the profile file itself
    stack: str | None  # stack (Compose project) name; None = the name Compose resolves
    compose: ComposeSettings
    env: EnvSettings
    secrets: SecretsSettings
    defaults: ServiceOverride
    services: Mapping[str, ServiceOverride]
    kubernetes: KubernetesSettings | None

    @property
    def display_path(self) -> str:
        """The profile file relative to the project root, as errors show it."""
        return display(self.path, self.root)


def display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------------------------
# Validation: a small typed reader that knows where it is, so every error is located
# ---------------------------------------------------------------------------------------------
class _Node:
    def __init__(self, data: Any, file: str, path: str) -> None:
        self.data = data
        self.file = file
        self.path = path

    def fail(self, message: str, key: str | None = None) -> ProfileError:
        where = self._join(key) if key is not None else self.path
        return ProfileError(message, file=self.file, field=where or None)

    def _join(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def mapping(self, key: str, *, allowed: tuple[str, ...] | None = None, required: bool = False) -> _Node | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(f"must be a mapping, got {_kind(value)}", key)
        node = _Node(value, self.file, self._join(key))
        if allowed is not None:
            node.only(allowed)
        return node

    def only(self, allowed: tuple[str, ...]) -> None:
        for k in self.data:
            if not isinstance(k, str) or k not in allowed:
                raise self.fail(f"unknown field (expected one of: {', '.join(allowed)})", str(k))

    def _get(self, key: str, required: bool) -> Any:
        value = self.data.get(key)
        if value is None and required:
            raise self.fail("is required", key)
        return value

    def string(self, key: str, *, required: bool = False, pattern: re.Pattern[str] | None = None,
               what: str = "") -> str | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, str) or (not value and required):
            raise self.fail(f"must be a non-empty string, got {_kind(value)}", key)
        if pattern is not None and not pattern.match(value):
            raise self.fail(what or f"must match {pattern.pattern}", key)
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(f"must be true or false, got {_kind(value)}", key)
        return value

    def integer(self, key: str, *, minimum: int | None = None, maximum: int | None = None) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"must be an integer, got {_kind(value)}", key)
        if minimum is not None and value < minimum:
            raise self.fail(f"must be ≥ {minimum}, got {value}", key)
        if maximum is not None and value > maximum:
            raise self.fail(f"must be ≤ {maximum}, got {value}", key)
        return value

    def choice(self, key: str, choices: tuple[str, ...]) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if value not in choices:
            raise self.fail(f"must be one of {', '.join(choices)}, got {value!r}", key)
        return str(value)

    def string_list(self, key: str, *, required: bool = False, pattern: re.Pattern[str] | None = None,
                    what: str = "") -> tuple[str, ...]:
        value = self._get(key, required)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise self.fail(f"must be a list of strings, got {_kind(value)}", key)
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise self.fail(f"must be a non-empty string, got {_kind(item)}", f"{key}[{i}]")
            if pattern is not None and not pattern.match(item):
                raise self.fail(what or f"must match {pattern.pattern}", f"{key}[{i}]")
            out.append(item)
        if required and not out:
            raise self.fail("must list at least one entry", key)
        return tuple(out)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})" if value else "an empty string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def parse_cpus(value: Any) -> float:
    """`0.5`, `"0.5"`, `"500m"` → cores."""
    if isinstance(value, bool):
        raise ValueError("must be a number of CPUs like 0.5 or 500m")
    if isinstance(value, (int, float)):
        cpus = float(value)
    elif isinstance(value, str) and re.fullmatch(r"\d+m", value.strip()):
        cpus = int(value.strip()[:-1]) / 1000
    else:
        try:
            cpus = float(str(value))
        except ValueError:
            raise ValueError(f"must be a number of CPUs like 0.5 or 500m, got {value!r}") from None
    if cpus <= 0:
        raise ValueError(f"must be > 0, got {value!r}")
    return cpus


def parse_bytes(value: Any) -> int:
    """Kubernetes quantities: `512Mi`, `1Gi`, `500M` (decimal), or a plain byte count."""
    if isinstance(value, bool):
        raise ValueError("must be a memory size like 512Mi or 1Gi")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"must be > 0, got {value}")
        return value
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|k|K|M|G|T)?\s*", str(value))
    if not m:
        raise ValueError(f"must be a memory size like 512Mi or 1Gi, got {value!r}")
    amount = float(m.group(1)) * _BYTES_SUFFIX[m.group(2) or ""]
    if amount <= 0:
        raise ValueError(f"must be > 0, got {value!r}")
    return int(amount)


def _resource_spec(node: _Node | None) -> ResourceSpec:
    if node is None:
        return ResourceSpec()
    node.only(("cpus", "cpu", "memory"))
    cpus = memory = None
    for key in ("cpus", "cpu"):
        if node.data.get(key) is not None:
            try:
                cpus = parse_cpus(node.data[key])
            except ValueError as exc:
                raise node.fail(str(exc), key) from None
    if node.data.get("memory") is not None:
        try:
            memory = parse_bytes(node.data["memory"])
        except ValueError as exc:
            raise node.fail(str(exc), "memory") from None
    return ResourceSpec(cpus=cpus, memory=memory)


def _resources(node: _Node | None) -> Resources:
    if node is None:
        return Resources()
    node.only(("limits", "requests"))
    res = Resources(limits=_resource_spec(node.mapping("limits")),
                    requests=_resource_spec(node.mapping("requests")))
    for attr in ("cpus", "memory"):
        lim, req = getattr(res.limits, attr), getattr(res.requests, attr)
        if lim is not None and req is not None and req > lim:
            raise node.fail(f"requests.{attr} must not exceed limits.{attr}")
    return res


def _ingress(node: _Node | None) -> Ingress | None:
    if node is None:
        return None
    node.only(("hosts", "path", "port", "tls_secret", "class"))
    hosts = node.string_list("hosts", required=True, pattern=DNS1123_SUBDOMAIN,
                             what="must be a DNS host name (lowercase, like api.example.com)")
    path = node.string("path") or "/"
    if not path.startswith("/"):
        raise node.fail("must start with /", "path")
    return Ingress(hosts=hosts, path=path, port=node.integer("port", minimum=1, maximum=65535),
                   tls_secret=node.string("tls_secret", pattern=DNS1123_SUBDOMAIN,
                                          what="must be a Kubernetes Secret name (DNS-1123)"),
                   class_name=node.string("class"))


_OVERRIDE_FIELDS = ("replicas", "resources", "strategy", "ingress", "service_type")


def _override(node: _Node | None) -> ServiceOverride:
    if node is None:
        return ServiceOverride()
    node.only(_OVERRIDE_FIELDS)
    return ServiceOverride(
        replicas=node.integer("replicas", minimum=0),
        resources=_resources(node.mapping("resources")),
        strategy=node.choice("strategy", STRATEGIES),
        ingress=_ingress(node.mapping("ingress")),
        service_type=node.choice("service_type", SERVICE_TYPES),
    )


_TOP_FIELDS = ("stack", "description", "compose", "env", "secrets", "defaults", "services", "kubernetes")


def parse_profile(data: Any, *, name: str, path: Path, root: Path) -> Profile:
    """Validate the parsed YAML of one profile file into a `Profile`."""
    file = display(path, root)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProfileError(f"must be a mapping at the top level, got {_kind(data)}", file=file)
    top = _Node(data, file, "")
    top.only(_TOP_FIELDS)

    stack = top.string("stack", pattern=DNS1123_LABEL,
                       what="must be a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters)")

    def rel(p: str) -> Path:
        return (root / p).resolve() if not Path(p).is_absolute() else Path(p)

    env_node = top.mapping("env", allowed=("template", "file", "values"))
    env_file = rel((env_node and env_node.string("file")) or (".env" if name == "local" else f".env.{name}"))
    values: dict[str, str] = {}
    if env_node is not None and (vals := env_node.mapping("values")) is not None:
        for k, v in vals.data.items():
            if not isinstance(k, str) or not ENV_KEY.match(k):
                raise vals.fail("must be a variable name like LOG_LEVEL", str(k))
            if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                raise vals.fail(f"must be a string or number, got {_kind(v)}", k)
            values[k] = str(v)
    env = EnvSettings(template=rel((env_node and env_node.string("template")) or ".env.example"),
                      file=env_file, values=values)

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
            services[str(svc_name)] = _override(svc_node.mapping(str(svc_name)))

    kube = None
    if (k := top.mapping("kubernetes", allowed=("namespace", "context", "protected", "registry", "image_tag",
                                                "ingress_class"))) is not None:
        kube = KubernetesSettings(
            namespace=k.string("namespace", required=True, pattern=DNS1123_LABEL,
                               what="must be a DNS-1123 label (lowercase letters, digits and '-', "
                                    "at most 63 characters)") or "",
            context=k.string("context"),
            protected=k.boolean("protected", False),
            registry=k.string("registry"),
            image_tag=k.string("image_tag"),
            ingress_class=k.string("ingress_class"),
        )
        if len(kube.namespace) > 63:
            raise k.fail("must be at most 63 characters", "namespace")
        if kube.protected and not kube.context:
            raise k.fail("a protected profile must name its kubeconfig context", "context")

    return Profile(name=name, root=root, path=path, stack=stack, compose=compose, env=env, secrets=secrets,
                   defaults=_override(top.mapping("defaults")), services=services, kubernetes=kube)
