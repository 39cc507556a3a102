"""The profile's Kubernetes settings: the per-service keys (`services.<name>` and `defaults`) and the
`kubernetes:` section, each read and checked on its own, every error located.

How a service's own keys and the defaults combine is decided once, in `stackctl.kubernetes.settings`.
"""

from __future__ import annotations

import re

from stackctl.profile.reader import DNS1123_LABEL, DNS1123_SUBDOMAIN, ENV_KEY, Node, kind_of
from stackctl.profile.types import (
    DEFAULT_KUBE_VERSION,
    DEFAULT_WAIT_IMAGE,
    Autoscaling,
    BlueGreen,
    Canary,
    CanaryStep,
    DisruptionBudget,
    ExtraContainer,
    Ingress,
    JobSettings,
    KubernetesSettings,
    Liveness,
    Placement,
    PreviewSettings,
    Resources,
    ResourceSpec,
    ScalingPolicy,
    ScalingRules,
    ServiceOverride,
    UpdateSettings,
    VolumeSettings,
)
from stackctl.units import parse_bytes, parse_cpus, parse_seconds

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


def _resource_spec(node: Node | None) -> ResourceSpec:
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


def _resources(node: Node | None) -> Resources:
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


def _ingress(node: Node | None) -> Ingress | None:
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
_OVERRIDE_FIELDS = ("replicas", "resources", "strategy", "ingress", "service_type", "ports", "kind", "schedule",
                    "time_zone", "concurrency_policy", "liveness", "autoscaling", "pdb", "pull_policy", "update",
                    "blue_green", "canary", "job", "init_containers", "sidecars", "placement", "shutdown_delay")
# Fields that describe one service and make no sense under `defaults:`. `replicas`: a count is sized
# for one service, and a default would also multiply the stateful ones (each replica of a database is
# a database of its own) and the one-shot ones (a Job's replicas are parallel runs); `ingress` names
# one service's hosts; `placement` spreads the replicas of a Deployment or StatefulSet only; `ports` are
# what one program listens on. Refused rather than ignored: a key that is accepted must do something.
_SERVICE_ONLY_FIELDS = ("replicas", "kind", "schedule", "time_zone", "concurrency_policy", "autoscaling", "pdb",
                        "job", "init_containers", "sidecars", "ingress", "placement", "ports")


def service_override(node: Node | None, *, defaults: bool = False) -> ServiceOverride:
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
        ports=_port_list(node, "ports"),
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


def _port_list(node: Node, key: str) -> tuple[int, ...]:
    """`ports: [8000, 9090]`: the TCP ports a service listens on, in order, each once."""
    raw = node.data.get(key)
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw or not all(isinstance(p, int) and not isinstance(p, bool)
                                                       and 1 <= p <= 65535 for p in raw):
        raise node.fail(f"must be a list of port numbers (1-65535) like [8000], got {kind_of(raw)}", key)
    return tuple(dict.fromkeys(raw))


def _duration_seconds(node: Node, key: str) -> int | None:
    """A duration in whole seconds: `5`, `5s`, `2m`, `1h`; `0` / `0s` is zero."""
    value = node.data.get(key)
    if value is None:
        return None
    try:
        return parse_seconds(value)
    except ValueError:
        raise node.fail(f"must be a duration in whole seconds like 5s, 30s or 2m (0 for none), got {kind_of(value)}",
                        key) from None


def _int_or_percent(node: Node, key: str) -> int | str | None:
    value = node.data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise node.fail(f"must be a number or a percentage like 25%, got {kind_of(value)}", key)
    if isinstance(value, int):
        if value < 0:
            raise node.fail(f"must be ≥ 0, got {value}", key)
        return value
    if not PERCENT.match(value) or int(value[:-1]) > 100:
        raise node.fail(f"must be a number or a percentage like 25%, got {kind_of(value)}", key)
    return value


def _liveness(node: Node, key: str) -> Liveness | None:
    value = node.data.get(key)
    if value is None or value is False:
        return None
    if value is True:
        return Liveness()
    if not isinstance(value, dict):
        raise node.fail(f"must be true, false or a mapping with path (and port), got {kind_of(value)}", key)
    sub = node.mapping(key, allowed=("path", "port"))
    assert sub is not None
    path = sub.string("path", required=True)
    if path is not None and not path.startswith("/"):
        raise sub.fail("must start with /", "path")
    return Liveness(path=path, port=sub.integer("port", minimum=1, maximum=65535))


def _scaling_rules(node: Node | None) -> ScalingRules | None:
    if node is None:
        return None
    node.only(("stabilization_seconds", "select_policy", "policies"))
    policies = []
    raw = node.data.get("policies")
    if raw is not None:
        if not isinstance(raw, list):
            raise node.fail(f"must be a list, got {kind_of(raw)}", "policies")
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise node.fail(f"must be a mapping, got {kind_of(item)}", f"policies[{i}]")
            p = Node(item, node.file, f"{node.path}.policies[{i}]")
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


def _autoscaling(node: Node | None) -> Autoscaling | None:
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


def _pdb(node: Node | None) -> DisruptionBudget | None:
    if node is None:
        return None
    node.only(("min_available", "max_unavailable"))
    pdb = DisruptionBudget(min_available=_int_or_percent(node, "min_available"),
                           max_unavailable=_int_or_percent(node, "max_unavailable"))
    if (pdb.min_available is None) == (pdb.max_unavailable is None):
        raise node.fail("set exactly one of min_available and max_unavailable")
    return pdb


def _blue_green(node: Node | None) -> BlueGreen | None:
    if node is None:
        return None
    node.only(("keep_previous", "controller"))
    return BlueGreen(keep_previous=node.boolean("keep_previous", True),
                     controller=node.choice("controller", CANARY_CONTROLLERS) or "stackctl")


def _job(node: Node | None, *, scheduled: bool) -> JobSettings | None:
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


def _placement(node: Node | None) -> Placement | None:
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


def _containers(node: Node, key: str) -> tuple[ExtraContainer, ...]:
    raw = node.data.get(key)
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise node.fail(f"must be a list of containers like {{name: proxy, image: envoy:v1.31}}, got {kind_of(raw)}",
                        key)
    out: list[ExtraContainer] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise node.fail(f"must be a mapping like {{name: proxy, image: envoy:v1.31}}, got {kind_of(item)}",
                            f"{key}[{i}]")
        c = Node(item, node.file, f"{node.path}.{key}[{i}]")
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
                    raise vals.fail(f"must be a string or number, got {kind_of(v)}", k_)
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


def _canary(node: Node | None) -> Canary | None:
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
        step = Node(item, node.file, f"{node.path}.steps[{i}]") if isinstance(item, dict) else None
        if step is None:
            raise node.fail(f"must be a mapping like {{weight: 10, pause: 30s}}, got {kind_of(item)}", f"steps[{i}]")
        step.only(("weight", "pause"))
        weight = step.integer("weight", minimum=1, maximum=99)
        if weight is None:
            raise step.fail("is required (percent of the pods on the new version, 1-99)", "weight")
        if steps and weight <= steps[-1].weight:
            raise step.fail(f"must be more than the previous step's ({steps[-1].weight})", "weight")
        pause = step.data.get("pause", 0)
        try:
            seconds = parse_seconds(pause)
        except ValueError:
            raise step.fail(f"must be a duration like 30s, 2m or 1h, got {kind_of(pause)}", "pause") from None
        steps.append(CanaryStep(weight=weight, pause=seconds))
    return Canary(steps=tuple(steps), controller=controller)


def _update(node: Node | None) -> UpdateSettings | None:
    if node is None:
        return None
    node.only(("max_surge", "max_unavailable"))
    upd = UpdateSettings(max_surge=_int_or_percent(node, "max_surge"),
                         max_unavailable=_int_or_percent(node, "max_unavailable"))
    if upd.max_surge in (0, "0%") and upd.max_unavailable in (0, "0%"):
        raise node.fail("max_surge and max_unavailable cannot both be 0 (the rollout could never progress)")
    return upd


def _size(node: Node, key: str) -> int | None:
    if node.data.get(key) is None:
        return None
    try:
        return parse_bytes(node.data[key])
    except ValueError as exc:
        raise node.fail(str(exc), key) from None


def _volume_settings(node: Node) -> dict[str, VolumeSettings]:
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


_KUBERNETES_FIELDS = ("namespace", "context", "protected", "registry", "image_tag", "ingress_class", "version",
                      "storage_class", "storage_size", "volumes", "image_pull_policy", "image_pull_secrets",
                      "wait_image", "network_policies", "preview")


def _preview_settings(node: Node | None) -> PreviewSettings:
    """`kubernetes.preview: {ttl: 72h, generate: [DB_PASSWORD]}` (docs/promote.md, Preview environments)."""
    if node is None:
        return PreviewSettings()
    ttl = None
    if "ttl" in node.data:
        try:
            ttl = parse_seconds(node.data["ttl"])
        except ValueError as exc:
            raise node.fail(str(exc), "ttl") from None
        if ttl <= 0:
            raise node.fail("must be more than 0s", "ttl")
    names = node.string_list("generate", pattern=ENV_KEY, what="must be a variable name like DB_PASSWORD")
    for i, name in enumerate(names):
        if name in names[:i]:
            raise node.fail(f"{name} is listed twice", f"generate[{i}]")
    return PreviewSettings(ttl=ttl, generate=names)


def kubernetes_settings(node: Node | None) -> KubernetesSettings | None:
    """The profile's `kubernetes:` section (None when it has none)."""
    if node is None:
        return None
    node.only(_KUBERNETES_FIELDS)
    version = node.data.get("version")
    if version is not None:
        if isinstance(version, float):  # `version: 1.35` in YAML is a number; accept it as written
            version = repr(version)
        if not isinstance(version, str) or not KUBE_VERSION.match(version):
            raise node.fail(f"must be a Kubernetes version like 1.35, got {kind_of(version)}", "version")
        match = KUBE_VERSION.match(version)
        assert match is not None
        version = f"{match.group(1)}.{match.group(2)}"
    vols = node.mapping("volumes")
    kube = KubernetesSettings(
        namespace=node.string("namespace", required=True, pattern=DNS1123_LABEL,
                              what="must be a DNS-1123 label (lowercase letters, digits and '-', "
                                   "at most 63 characters)") or "",
        context=node.string("context"),
        protected=node.boolean("protected", False),
        registry=node.string("registry"),
        image_tag=node.string("image_tag"),
        ingress_class=node.string("ingress_class"),
        version=version or DEFAULT_KUBE_VERSION,
        storage_class=node.string("storage_class", pattern=DNS1123_SUBDOMAIN,
                                  what="must be a StorageClass name (DNS-1123)"),
        storage_size=_size(node, "storage_size"),
        volumes=_volume_settings(vols) if vols is not None else {},
        image_pull_policy=node.choice("image_pull_policy", PULL_POLICIES),
        image_pull_secrets=node.string_list("image_pull_secrets", pattern=DNS1123_SUBDOMAIN,
                                            what="must be a Kubernetes Secret name (DNS-1123)"),
        wait_image=node.string("wait_image") or DEFAULT_WAIT_IMAGE,
        network_policies=node.boolean("network_policies", True),
        preview=_preview_settings(node.mapping("preview", allowed=("ttl", "generate"))),
    )
    if len(kube.namespace) > 63:
        raise node.fail("must be at most 63 characters", "namespace")
    if kube.protected and not kube.context:
        raise node.fail("a protected profile must name its kubeconfig context", "context")
    return kube
