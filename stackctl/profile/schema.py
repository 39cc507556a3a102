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
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
ACCESS_MODES = ("ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany", "ReadOnlyMany")
CONCURRENCY_POLICIES = ("Forbid", "Allow", "Replace")
SELECT_POLICIES = ("Max", "Min", "Disabled")
SCALING_POLICY_TYPES = ("Pods", "Percent")
# Five cron fields, or one of the macros the CronJob controller accepts.
CRON_SCHEDULE = re.compile(r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|\S+(\s+\S+){4})$")
KUBE_VERSION = re.compile(r"^v?(\d+)\.(\d+)(\.\d+)?$")
PERCENT = re.compile(r"^\d{1,3}%$")
DEFAULT_KUBE_VERSION = "1.35"
DEFAULT_WAIT_IMAGE = "busybox:1.37"
DURATION_SECONDS = re.compile(r"^(\d+)(s|m|h)?$")  # whole seconds: 30, 30s, 2m, 1h

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
class Liveness:
    """Opt-in livenessProbe: the health check's own probe, or an HTTP GET on `path` (and `port`)."""

    path: str | None = None
    port: int | None = None


@dataclass(frozen=True)
class ScalingPolicy:
    type: str  # Pods | Percent
    value: int
    period_seconds: int


@dataclass(frozen=True)
class ScalingRules:
    """One direction of an HPA's `behavior` (scaleUp or scaleDown)."""

    stabilization_seconds: int | None = None
    select_policy: str | None = None
    policies: tuple[ScalingPolicy, ...] = ()


@dataclass(frozen=True)
class Autoscaling:
    min_replicas: int
    max_replicas: int
    cpu: int | None = None  # target average utilization, percent of requests
    memory: int | None = None
    scale_up: ScalingRules | None = None
    scale_down: ScalingRules | None = None


@dataclass(frozen=True)
class DisruptionBudget:
    """Exactly one of the two: an int or a percentage string like "50%"."""

    min_available: int | str | None = None
    max_unavailable: int | str | None = None


@dataclass(frozen=True)
class UpdateSettings:
    """Rolling update pace: an int or a percentage string like "25%"."""

    max_surge: int | str | None = None
    max_unavailable: int | str | None = None


@dataclass(frozen=True)
class BlueGreen:
    """`strategy: blue-green` settings. keep_previous: the previous colour keeps running after the
    switch (instant rollback) until `stackctl promote --finalize`; false removes it at once."""

    keep_previous: bool = True
    # stackctl: two Deployments, promote switches the Service. argo-rollouts: an Argo Rollouts
    # `Rollout` whose controller switches the Service (`blueGreen.activeService`).
    controller: str = "stackctl"


@dataclass(frozen=True)
class JobSettings:
    """A Job's (or a CronJob's runs') limits; the history limits only for a CronJob."""

    backoff_limit: int | None = None
    active_deadline: int | None = None  # seconds
    ttl_after_finished: int | None = None  # seconds
    successful_history: int | None = None
    failed_history: int | None = None


@dataclass(frozen=True)
class ExtraContainer:
    """A container the profile adds to a service's pods: an init container that runs to completion
    first, or a native sidecar (an init container with `restartPolicy: Always`) that runs beside it."""

    name: str
    image: str
    command: tuple[str, ...] | None = None
    args: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[int, ...] = ()


@dataclass(frozen=True)
class Placement:
    """Spreading a service's replicas: topology spread constraints and/or pod anti-affinity."""

    spread: tuple[str, ...] = ()  # topology keys (hostname / zone accepted as short names)
    max_skew: int = 1
    when_unsatisfiable: str = "ScheduleAnyway"
    anti_affinity: str | None = None  # preferred | required: one pod per node


@dataclass(frozen=True)
class CanaryStep:
    weight: int  # percent of the pods (1-99) that run the new version during the step
    pause: int  # seconds the step holds, the canary staying ready


@dataclass(frozen=True)
class Canary:
    """`strategy: canary` settings: the steps promote goes through before the stable Deployment rolls."""

    steps: tuple[CanaryStep, ...] = (CanaryStep(weight=20, pause=30),)
    # stackctl: promote runs the steps itself (a stable and a canary Deployment). argo-rollouts: the
    # service is rendered as an Argo Rollouts `Rollout` whose controller runs the steps.
    controller: str = "stackctl"


@dataclass(frozen=True)
class ServiceOverride:
    replicas: int | None = None
    resources: Resources = field(default_factory=Resources)
    strategy: str | None = None
    ingress: Ingress | None = None
    service_type: str | None = None
    # Kubernetes only
    kind: str | None = None  # one of WORKLOAD_KINDS; None = derived from the Compose service
    schedule: str | None = None  # cron schedule: the service runs as a CronJob
    time_zone: str | None = None
    concurrency_policy: str | None = None
    liveness: Liveness | None = None
    autoscaling: Autoscaling | None = None
    pdb: DisruptionBudget | None = None
    pull_policy: str | None = None
    update: UpdateSettings | None = None
    blue_green: BlueGreen | None = None
    canary: Canary | None = None
    job: JobSettings | None = None
    init_containers: tuple[ExtraContainer, ...] = ()
    sidecars: tuple[ExtraContainer, ...] = ()
    placement: Placement | None = None
    # seconds a served pod keeps serving after it is told to stop (a preStop sleep), so every node
    # stops routing to it first; 0 = none; None = the renderer's default
    shutdown_delay: int | None = None


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
class VolumeSettings:
    """Per named volume: the PersistentVolumeClaim it becomes."""

    size: int | None = None  # bytes
    storage_class: str | None = None
    access_mode: str | None = None


@dataclass(frozen=True)
class KubernetesSettings:
    namespace: str
    context: str | None = None
    protected: bool = False
    registry: str | None = None
    image_tag: str | None = None
    ingress_class: str | None = None
    version: str = DEFAULT_KUBE_VERSION  # the API version manifests are rendered and validated for
    storage_class: str | None = None  # default for every PVC; None = the cluster's default class
    storage_size: int | None = None  # bytes; default for every PVC (1Gi when unset)
    volumes: Mapping[str, VolumeSettings] = field(default_factory=dict)
    image_pull_policy: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    wait_image: str = DEFAULT_WAIT_IMAGE  # image of the init containers that wait for dependencies
    network_policies: bool = True


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
        raise ValueError("must be a number of CPUs like 0.5 or 500m")  # noqa: TRY004 (callers locate ValueErrors)
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
        raise ValueError("must be a memory size like 512Mi or 1Gi")  # noqa: TRY004 (callers locate ValueErrors)
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


_OVERRIDE_FIELDS = ("replicas", "resources", "strategy", "ingress", "service_type", "kind", "schedule",
                    "time_zone", "concurrency_policy", "liveness", "autoscaling", "pdb", "pull_policy", "update",
                    "blue_green", "canary", "job", "init_containers", "sidecars", "placement", "shutdown_delay")
# Fields that describe one service and make no sense under `defaults:`. `replicas`: a count is sized
# for one service, and a default would also multiply the stateful ones (each replica of a database is
# a database of its own) and the one-shot ones (a Job's replicas are parallel runs); `ingress` names
# one service's hosts; `placement` spreads the replicas of a Deployment or StatefulSet only. Refused
# rather than ignored: a key that is accepted must do something.
_SERVICE_ONLY_FIELDS = ("replicas", "kind", "schedule", "time_zone", "concurrency_policy", "autoscaling", "pdb",
                        "job", "init_containers", "sidecars", "ingress", "placement")


def _override(node: _Node | None, *, defaults: bool = False) -> ServiceOverride:
    if node is None:
        return ServiceOverride()
    node.only(_OVERRIDE_FIELDS)
    if defaults:
        for key in _SERVICE_ONLY_FIELDS:
            if key in node.data:
                raise node.fail(f"can only be set per service (services.<name>.{key})", key)
    kind = node.choice("kind", WORKLOAD_KINDS)
    schedule = node.string("schedule", pattern=CRON_SCHEDULE,
                           what="must be a cron schedule like '*/15 * * * *' or @hourly")
    if schedule is not None and kind not in (None, "CronJob"):
        raise node.fail(f"a schedule runs the service as a CronJob; it cannot be combined with kind: {kind}",
                        "schedule")
    if kind == "CronJob" and schedule is None:
        raise node.fail("kind: CronJob needs a schedule", "schedule")
    for key in ("time_zone", "concurrency_policy"):
        if key in node.data and schedule is None:
            raise node.fail("only applies with a schedule (CronJob)", key)
    return ServiceOverride(
        replicas=node.integer("replicas", minimum=0),
        resources=_resources(node.mapping("resources")),
        strategy=node.choice("strategy", STRATEGIES),
        ingress=_ingress(node.mapping("ingress")),
        service_type=node.choice("service_type", SERVICE_TYPES),
        kind=kind,
        schedule=schedule,
        time_zone=node.string("time_zone"),
        concurrency_policy=node.choice("concurrency_policy", CONCURRENCY_POLICIES),
        liveness=_liveness(node, "liveness"),
        autoscaling=_autoscaling(node.mapping("autoscaling")),
        pdb=_pdb(node.mapping("pdb")),
        pull_policy=node.choice("pull_policy", PULL_POLICIES),
        update=_update(node.mapping("update")),
        blue_green=_blue_green(node.mapping("blue_green")),
        canary=_canary(node.mapping("canary")),
        job=_job(node.mapping("job"), scheduled=schedule is not None),
        init_containers=_containers(node, "init_containers"),
        sidecars=_containers(node, "sidecars"),
        placement=_placement(node.mapping("placement")),
        shutdown_delay=_duration_seconds(node, "shutdown_delay"),
    )


def _duration_seconds(node: _Node, key: str) -> int | None:
    """A duration in whole seconds: `5`, `5s`, `2m`, `1h`; `0` / `0s` is zero."""
    value = node.data.get(key)
    if value is None:
        return None
    match = (DURATION_SECONDS.match(str(value)) if isinstance(value, (int, str)) and not isinstance(value, bool)
             else None)
    if match is None:
        raise node.fail(f"must be a duration in whole seconds like 5s, 30s or 2m (0 for none), got {_kind(value)}",
                        key)
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]


def _int_or_percent(node: _Node, key: str) -> int | str | None:
    value = node.data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise node.fail(f"must be a number or a percentage like 25%, got {_kind(value)}", key)
    if isinstance(value, int):
        if value < 0:
            raise node.fail(f"must be ≥ 0, got {value}", key)
        return value
    if not PERCENT.match(value) or int(value[:-1]) > 100:
        raise node.fail(f"must be a number or a percentage like 25%, got {_kind(value)}", key)
    return value


def _liveness(node: _Node, key: str) -> Liveness | None:
    value = node.data.get(key)
    if value is None or value is False:
        return None
    if value is True:
        return Liveness()
    if not isinstance(value, dict):
        raise node.fail(f"must be true, false or a mapping with path (and port), got {_kind(value)}", key)
    sub = node.mapping(key, allowed=("path", "port"))
    assert sub is not None
    path = sub.string("path", required=True)
    if path is not None and not path.startswith("/"):
        raise sub.fail("must start with /", "path")
    return Liveness(path=path, port=sub.integer("port", minimum=1, maximum=65535))


def _scaling_rules(node: _Node | None) -> ScalingRules | None:
    if node is None:
        return None
    node.only(("stabilization_seconds", "select_policy", "policies"))
    policies = []
    raw = node.data.get("policies")
    if raw is not None:
        if not isinstance(raw, list):
            raise node.fail(f"must be a list, got {_kind(raw)}", "policies")
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise node.fail(f"must be a mapping, got {_kind(item)}", f"policies[{i}]")
            p = _Node(item, node.file, f"{node.path}.policies[{i}]")
            p.only(("type", "value", "period_seconds"))
            ptype = p.choice("type", SCALING_POLICY_TYPES)
            value = p.integer("value", minimum=1)
            period = p.integer("period_seconds", minimum=1, maximum=1800)
            for k, v in (("type", ptype), ("value", value), ("period_seconds", period)):
                if v is None:
                    raise p.fail("is required", k)
            assert ptype is not None and value is not None and period is not None
            policies.append(ScalingPolicy(type=ptype, value=value, period_seconds=period))
    return ScalingRules(stabilization_seconds=node.integer("stabilization_seconds", minimum=0, maximum=3600),
                        select_policy=node.choice("select_policy", SELECT_POLICIES), policies=tuple(policies))


def _autoscaling(node: _Node | None) -> Autoscaling | None:
    if node is None:
        return None
    node.only(("min", "max", "cpu", "memory", "scale_up", "scale_down"))
    high = node.integer("max", minimum=1)
    if high is None:
        raise node.fail("is required", "max")
    low = node.integer("min", minimum=1)
    low = 1 if low is None else low
    if low > high:
        raise node.fail(f"must not exceed max ({high}), got {low}", "min")
    return Autoscaling(min_replicas=low, max_replicas=high,
                       cpu=node.integer("cpu", minimum=1, maximum=1000),
                       memory=node.integer("memory", minimum=1, maximum=1000),
                       scale_up=_scaling_rules(node.mapping("scale_up")),
                       scale_down=_scaling_rules(node.mapping("scale_down")))


def _pdb(node: _Node | None) -> DisruptionBudget | None:
    if node is None:
        return None
    node.only(("min_available", "max_unavailable"))
    pdb = DisruptionBudget(min_available=_int_or_percent(node, "min_available"),
                           max_unavailable=_int_or_percent(node, "max_unavailable"))
    if (pdb.min_available is None) == (pdb.max_unavailable is None):
        raise node.fail("set exactly one of min_available and max_unavailable")
    return pdb


def _blue_green(node: _Node | None) -> BlueGreen | None:
    if node is None:
        return None
    node.only(("keep_previous", "controller"))
    return BlueGreen(keep_previous=node.boolean("keep_previous", True),
                     controller=node.choice("controller", CANARY_CONTROLLERS) or "stackctl")


def _job(node: _Node | None, *, scheduled: bool) -> JobSettings | None:
    if node is None:
        return None
    node.only(("backoff_limit", "active_deadline", "ttl_after_finished", "successful_history", "failed_history"))
    for key in ("successful_history", "failed_history"):
        if key in node.data and not scheduled:
            raise node.fail("only applies with a schedule (CronJob)", key)
    return JobSettings(backoff_limit=node.integer("backoff_limit", minimum=0),
                       active_deadline=node.integer("active_deadline", minimum=1),
                       ttl_after_finished=node.integer("ttl_after_finished", minimum=0),
                       successful_history=node.integer("successful_history", minimum=0),
                       failed_history=node.integer("failed_history", minimum=0))


TOPOLOGY_SHORT = {"hostname": "kubernetes.io/hostname", "zone": "topology.kubernetes.io/zone",
                  "region": "topology.kubernetes.io/region"}


def _placement(node: _Node | None) -> Placement | None:
    if node is None:
        return None
    node.only(("spread", "max_skew", "when_unsatisfiable", "anti_affinity"))
    spread = tuple(TOPOLOGY_SHORT.get(key, key) for key in node.string_list("spread"))
    placement = Placement(spread=spread, max_skew=node.integer("max_skew", minimum=1) or 1,
                          when_unsatisfiable=node.choice("when_unsatisfiable", ("ScheduleAnyway", "DoNotSchedule"))
                          or "ScheduleAnyway",
                          anti_affinity=node.choice("anti_affinity", ("preferred", "required")))
    if not placement.spread and placement.anti_affinity is None:
        raise node.fail("needs spread (topology keys like hostname, zone) or anti_affinity (preferred | required)")
    return placement


def _containers(node: _Node, key: str) -> tuple[ExtraContainer, ...]:
    raw = node.data.get(key)
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise node.fail(f"must be a list of containers like {{name: proxy, image: envoy:v1.31}}, got {_kind(raw)}",
                        key)
    out: list[ExtraContainer] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise node.fail(f"must be a mapping like {{name: proxy, image: envoy:v1.31}}, got {_kind(item)}",
                            f"{key}[{i}]")
        c = _Node(item, node.file, f"{node.path}.{key}[{i}]")
        c.only(("name", "image", "command", "args", "env", "ports"))
        name = c.string("name", required=True, pattern=DNS1123_LABEL,
                        what="must be a container name (lowercase letters, digits, -)")
        assert name is not None
        if any(o.name == name for o in out):
            raise c.fail(f"{name!r} is used twice", "name")
        image = c.string("image", required=True)
        assert image is not None
        env: dict[str, str] = {}
        if (vals := c.mapping("env")) is not None:
            for k_, v in vals.data.items():
                if not isinstance(k_, str) or not ENV_KEY.match(k_):
                    raise vals.fail("must be a variable name like LOG_LEVEL", str(k_))
                if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                    raise vals.fail(f"must be a string or number, got {_kind(v)}", k_)
                env[k_] = str(v)
        ports = c.data.get("ports") or []
        if not isinstance(ports, list) or not all(isinstance(p, int) and not isinstance(p, bool)
                                                  and 1 <= p <= 65535 for p in ports):
            raise c.fail("must be a list of port numbers (1-65535)", "ports")
        command = c.string_list("command") if "command" in c.data else None
        args = c.string_list("args") if "args" in c.data else None
        out.append(ExtraContainer(name=name, image=image, command=tuple(command) if command is not None else None,
                                  args=tuple(args) if args is not None else None, env=env, ports=tuple(ports)))
    return tuple(out)


CANARY_CONTROLLERS = ("stackctl", "argo-rollouts")


def _canary(node: _Node | None) -> Canary | None:
    if node is None:
        return None
    node.only(("steps", "controller"))
    controller = node.choice("controller", CANARY_CONTROLLERS) or "stackctl"
    raw = node.data.get("steps")
    if raw is None:
        return Canary(controller=controller)
    if not isinstance(raw, list) or not raw:
        raise node.fail("must be a list of steps like {weight: 10, pause: 30s}", "steps")
    steps: list[CanaryStep] = []
    for i, item in enumerate(raw):
        step = _Node(item, node.file, f"{node.path}.steps[{i}]") if isinstance(item, dict) else None
        if step is None:
            raise node.fail(f"must be a mapping like {{weight: 10, pause: 30s}}, got {_kind(item)}", f"steps[{i}]")
        step.only(("weight", "pause"))
        weight = step.integer("weight", minimum=1, maximum=99)
        if weight is None:
            raise step.fail("is required (percent of the pods on the new version, 1-99)", "weight")
        if steps and weight <= steps[-1].weight:
            raise step.fail(f"must be more than the previous step's ({steps[-1].weight})", "weight")
        pause = step.data.get("pause", 0)
        match = (DURATION_SECONDS.match(str(pause)) if isinstance(pause, (int, str)) and not isinstance(pause, bool)
                 else None)
        if match is None:
            raise step.fail(f"must be a duration like 30s, 2m or 1h, got {_kind(pause)}", "pause")
        seconds = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]
        steps.append(CanaryStep(weight=weight, pause=seconds))
    return Canary(steps=tuple(steps), controller=controller)


def _update(node: _Node | None) -> UpdateSettings | None:
    if node is None:
        return None
    node.only(("max_surge", "max_unavailable"))
    upd = UpdateSettings(max_surge=_int_or_percent(node, "max_surge"),
                         max_unavailable=_int_or_percent(node, "max_unavailable"))
    if upd.max_surge in (0, "0%") and upd.max_unavailable in (0, "0%"):
        raise node.fail("max_surge and max_unavailable cannot both be 0 (the rollout could never progress)")
    return upd


def _size(node: _Node, key: str) -> int | None:
    if node.data.get(key) is None:
        return None
    try:
        return parse_bytes(node.data[key])
    except ValueError as exc:
        raise node.fail(str(exc), key) from None


def _volume_settings(node: _Node) -> dict[str, VolumeSettings]:
    out: dict[str, VolumeSettings] = {}
    for name in node.data:
        sub = node.mapping(str(name), allowed=("size", "storage_class", "access_mode"))
        if sub is None:
            raise node.fail("must be a mapping with size, storage_class or access_mode", str(name))
        out[str(name)] = VolumeSettings(size=_size(sub, "size"),
                                        storage_class=sub.string("storage_class", pattern=DNS1123_SUBDOMAIN,
                                                                 what="must be a StorageClass name (DNS-1123)"),
                                        access_mode=sub.choice("access_mode", ACCESS_MODES))
    return out


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
                                                "ingress_class", "version", "storage_class", "storage_size",
                                                "volumes", "image_pull_policy", "image_pull_secrets",
                                                "wait_image", "network_policies"))) is not None:
        version = k.data.get("version")
        if version is not None:
            if isinstance(version, float):  # `version: 1.35` in YAML is a number; accept it as written
                version = repr(version)
            if not isinstance(version, str) or not KUBE_VERSION.match(version):
                raise k.fail(f"must be a Kubernetes version like 1.35, got {_kind(version)}", "version")
            match = KUBE_VERSION.match(version)
            assert match is not None
            version = f"{match.group(1)}.{match.group(2)}"
        vols = k.mapping("volumes")
        kube = KubernetesSettings(
            namespace=k.string("namespace", required=True, pattern=DNS1123_LABEL,
                               what="must be a DNS-1123 label (lowercase letters, digits and '-', "
                                    "at most 63 characters)") or "",
            context=k.string("context"),
            protected=k.boolean("protected", False),
            registry=k.string("registry"),
            image_tag=k.string("image_tag"),
            ingress_class=k.string("ingress_class"),
            version=version or DEFAULT_KUBE_VERSION,
            storage_class=k.string("storage_class", pattern=DNS1123_SUBDOMAIN,
                                   what="must be a StorageClass name (DNS-1123)"),
            storage_size=_size(k, "storage_size"),
            volumes=_volume_settings(vols) if vols is not None else {},
            image_pull_policy=k.choice("image_pull_policy", PULL_POLICIES),
            image_pull_secrets=k.string_list("image_pull_secrets", pattern=DNS1123_SUBDOMAIN,
                                             what="must be a Kubernetes Secret name (DNS-1123)"),
            wait_image=k.string("wait_image") or DEFAULT_WAIT_IMAGE,
            network_policies=k.boolean("network_policies", True),
        )
        if len(kube.namespace) > 63:
            raise k.fail("must be at most 63 characters", "namespace")
        if kube.protected and not kube.context:
            raise k.fail("a protected profile must name its kubeconfig context", "context")

    return Profile(name=name, root=root, path=path, stack=stack, compose=compose, env=env, secrets=secrets,
                   defaults=_override(top.mapping("defaults"), defaults=True), services=services, kubernetes=kube)
