"""The typed, backend-neutral stack model: what every backend (Compose, Kubernetes) sees.

Built from the project Docker Compose resolved (see `stackctl.compose.loader`) plus the profile's
overrides. Frozen dataclasses only; this module imports neither docker nor kubernetes, so a
renderer can be tested without either (a test asserts that).

Units are normalised once here so backends never parse Compose strings again:
durations are float seconds, memory is int bytes, CPUs are float cores.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

DependencyCondition = Literal["service_started", "service_healthy", "service_completed_successfully"]
VolumeType = Literal["volume", "bind", "tmpfs", "npipe", "image", "cluster"]
DeployMode = Literal["replicated", "global", "replicated-job", "global-job"]


@dataclass(frozen=True)
class Warning_:
    """Something the model could not carry: shown to the user, never silently dropped."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class Build:
    """`build:` as Compose resolved it."""

    context: str
    dockerfile: str | None = None
    target: str | None = None
    args: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Port:
    """One `ports:` entry, long form."""

    target: int
    published: str | None = None  # Compose allows ranges ("8000-8010"), so kept as text
    protocol: str = "tcp"
    host_ip: str | None = None
    mode: str | None = None
    name: str | None = None
    app_protocol: str | None = None


@dataclass(frozen=True)
class Mount:
    """One `volumes:` / `tmpfs:` entry of a service, long form."""

    type: VolumeType
    target: str
    source: str | None = None
    read_only: bool = False
    tmpfs_size: int | None = None  # bytes
    tmpfs_mode: int | None = None
    nocopy: bool = False
    subpath: str | None = None
    create_host_path: bool | None = None


@dataclass(frozen=True)
class Healthcheck:
    """`healthcheck:`, durations in seconds."""

    test: tuple[str, ...]  # ("CMD", ...), ("CMD-SHELL", "..."), or ("NONE",)
    interval: float = 30.0
    timeout: float = 30.0
    retries: int = 3
    start_period: float = 0.0
    start_interval: float | None = None
    disable: bool = False

    @property
    def argv(self) -> tuple[str, ...] | None:
        """The command to run for one probe, or None when disabled."""
        if self.disable or not self.test or self.test[0] == "NONE":
            return None
        kind, rest = self.test[0], self.test[1:]
        if kind == "CMD":
            return tuple(rest)
        if kind == "CMD-SHELL":
            return ("/bin/sh", "-c", " ".join(rest))
        return ("/bin/sh", "-c", " ".join(self.test))


@dataclass(frozen=True)
class Dependency:
    """One `depends_on:` entry, long form."""

    service: str
    condition: DependencyCondition = "service_started"
    required: bool = True
    restart: bool = False


@dataclass(frozen=True)
class DeviceRequest:
    """A `gpus:` entry, or a `deploy.resources.reservations.devices` entry, as Compose printed it."""

    capabilities: tuple[str, ...] = ()  # `gpu`, ... (a `gpus:` entry is a GPU without saying so)
    driver: str | None = None
    count: int | None = None  # -1: all the host has (`all`, or neither count nor device_ids)
    device_ids: tuple[str, ...] = ()
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Resources:
    """`deploy.resources.limits` or `deploy.resources.reservations`."""

    cpus: float | None = None
    memory: int | None = None  # bytes
    pids: int | None = None
    devices: tuple[DeviceRequest, ...] = ()  # reservations only


@dataclass(frozen=True)
class UpdateConfig:
    """`deploy.update_config`: how a rolling update proceeds."""

    parallelism: int | None = None
    delay: float | None = None
    order: str | None = None  # "start-first" | "stop-first"
    failure_action: str | None = None


@dataclass(frozen=True)
class SwarmPlacement:
    """`deploy.placement`, as Compose resolved it."""

    constraints: tuple[str, ...] = ()  # `node.labels.zone == eu-1`, `node.role != manager` ...
    preferences: tuple[str, ...] = ()  # `spread:` descriptors, in order
    max_replicas_per_node: int | None = None


@dataclass(frozen=True)
class Deploy:
    """`deploy:` as Compose resolved it."""

    mode: DeployMode = "replicated"
    replicas: int | None = None
    limits: Resources = field(default_factory=Resources)
    reservations: Resources = field(default_factory=Resources)
    update_config: UpdateConfig | None = None
    restart_policy: Mapping[str, Any] | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    placement: SwarmPlacement | None = None


@dataclass(frozen=True)
class ServiceNetwork:
    """A service's attachment to one network."""

    name: str
    aliases: tuple[str, ...] = ()
    ipv4_address: str | None = None
    ipv6_address: str | None = None


@dataclass(frozen=True)
class FileRef:
    """A service's use of a top-level secret or config."""

    source: str
    target: str | None = None
    uid: str | None = None
    gid: str | None = None
    mode: int | None = None


@dataclass(frozen=True)
class Hook:
    """A `post_start` / `pre_stop` command: Compose runs it inside the container, as `docker exec` would."""

    command: tuple[str, ...]
    user: str | None = None
    privileged: bool | None = None
    working_dir: str | None = None
    environment: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class WatchTrigger:
    """One `develop.watch` entry as Compose resolved it (`path` absolute): read by the dev loop only
    (`stackctl.dev.rules`), no deployed backend renders it."""

    action: str  # sync | rebuild | sync+restart | sync+exec | restart
    path: str
    target: str | None = None
    ignore: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    initial_sync: bool = False
    exec: Hook | None = None  # sync+exec: the command run in the container after the sync


@dataclass(frozen=True)
class Service:
    """One Compose service, as Compose resolved it."""

    name: str
    image: str | None = None
    build: Build | None = None
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    environment: Mapping[str, str | None] = field(default_factory=dict)
    ports: tuple[Port, ...] = ()
    expose: tuple[str, ...] = ()
    volumes: tuple[Mount, ...] = ()
    tmpfs: tuple[Mount, ...] = ()  # service-level `tmpfs:` (type "tmpfs"; `volumes` keeps Compose's indexes)
    healthcheck: Healthcheck | None = None
    depends_on: tuple[Dependency, ...] = ()
    deploy: Deploy = field(default_factory=Deploy)
    restart: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    networks: tuple[ServiceNetwork, ...] = ()
    secrets: tuple[FileRef, ...] = ()
    configs: tuple[FileRef, ...] = ()
    stop_grace_period: float | None = None
    user: str | None = None
    working_dir: str | None = None
    profiles: tuple[str, ...] = ()
    pull_policy: str | None = None
    hostname: str | None = None
    init: bool | None = None
    read_only: bool | None = None
    cap_add: tuple[str, ...] = ()  # as Compose names them (`NET_ADMIN`, `CAP_SYS_TIME`)
    cap_drop: tuple[str, ...] = ()
    privileged: bool | None = None
    sysctls: Mapping[str, str] = field(default_factory=dict)
    post_start: tuple[Hook, ...] = ()
    pre_stop: tuple[Hook, ...] = ()
    gpus: tuple[DeviceRequest, ...] = ()
    develop_watch: tuple[WatchTrigger, ...] = ()  # `develop.watch`, in Compose's order
    # The Compose fields this service set, as Compose printed them (`deploy` as `deploy.<key>`), for the
    # conversion report: what was read, so it can say what each one became.
    fields: tuple[str, ...] = field(default=(), metadata={"bookkeeping": True})


@dataclass(frozen=True)
class Volume:
    """A top-level named volume."""

    name: str  # key in the Compose file
    external: bool = False
    driver: str | None = None
    driver_opts: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    resolved_name: str | None = None  # the engine-level name (project-prefixed)


@dataclass(frozen=True)
class Network:
    """A top-level network."""

    name: str
    internal: bool = False
    external: bool = False
    driver: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    resolved_name: str | None = None


@dataclass(frozen=True)
class Secret:
    """A top-level Compose secret or config: from a file, an env variable or inline content."""

    name: str
    file: str | None = None
    environment: str | None = None
    content: str | None = None
    external: bool = False
    resolved_name: str | None = None


@dataclass(frozen=True)
class Stack:
    """A whole Compose project: what every backend starts from."""

    name: str
    services: tuple[Service, ...]
    volumes: tuple[Volume, ...] = ()
    networks: tuple[Network, ...] = ()
    secrets: tuple[Secret, ...] = ()
    configs: tuple[Secret, ...] = ()
    warnings: tuple[Warning_, ...] = ()
    working_dir: str | None = None

    def service(self, name: str) -> Service:
        for svc in self.services:
            if svc.name == name:
                return svc
        raise KeyError(name)

    @property
    def service_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.services)

    def one_shot_services(self) -> frozenset[str]:
        """Services that run to completion: a dependent waits for them to exit 0, or a job mode."""
        names = {d.service for s in self.services for d in s.depends_on
                 if d.condition == "service_completed_successfully"}
        names |= {s.name for s in self.services if s.deploy.mode in ("replicated-job", "global-job")}
        return frozenset(names)


def to_data(obj: Any) -> Any:
    """Plain JSON-able data for `stackctl config -o json|yaml` (stable key order, no Nones)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            if f.metadata.get("bookkeeping"):  # about the input, not part of the stack
                continue
            value = to_data(getattr(obj, f.name))
            if value is None or value == () or value == {} or value == []:
                continue
            out[f.name] = value
        return out
    if isinstance(obj, Mapping):
        return {str(k): to_data(v) for k, v in sorted(obj.items())}
    if isinstance(obj, (list, tuple)):
        return [to_data(v) for v in obj]
    return obj
