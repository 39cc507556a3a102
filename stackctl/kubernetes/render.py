"""The Kubernetes renderer: stack model + profile settings + secret inputs → plain-dict objects.

Pure and deterministic: no I/O, no clock, no randomness, no Kubernetes client. The same inputs
give the same objects in the same order, so the serialized output is byte-identical (golden tests
rely on it). Every choice made here is listed in docs/kubernetes.md ("Mapping").

Object order is the apply order (`stackctl.io/wave`, then kind, then name): the Namespace; then
ConfigMaps, Secrets, claims, Services and NetworkPolicies; then workloads level by level, where a
level starts after the Jobs that its services wait for (`service_completed_successfully`) have
completed. Promote applies one wave at a time and waits for the Jobs annotated
`stackctl.io/wait: complete` before the next.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stackctl import model as m
from stackctl.errors import InputError, ProfileError
from stackctl.kubernetes import mapping as k
from stackctl.kubernetes.inputs import HostPath, SecretInputs, Target
from stackctl.kubernetes.labels import (
    A_CANARY_STEPS,
    A_CONFIG_HASH,
    A_KEEP_PREVIOUS,
    A_PRUNE,
    A_SECRET_HASH,
    A_SERVICE,
    A_STRATEGY,
    A_VALUES,
    A_WAIT,
    A_WAVE,
    FIRST_COLOUR,
    L_COLOUR,
    L_INSTANCE,
    L_MANAGED_BY,
    L_NAME,
    L_PART_OF,
    L_PROFILE,
    L_STACK,
    L_TRACK,
    MANAGER,
)
from stackctl.profile.schema import Canary, ServiceOverride, argo_controller_field

# Identity labels and stackctl's annotations (promote relies on these names; see docs/kubernetes.md).

API_VERSIONS = {
    "Namespace": "v1", "ConfigMap": "v1", "Secret": "v1", "PersistentVolumeClaim": "v1", "Service": "v1",
    "NetworkPolicy": "networking.k8s.io/v1", "Ingress": "networking.k8s.io/v1",
    "Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1",
    "Job": "batch/v1", "CronJob": "batch/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2", "PodDisruptionBudget": "policy/v1",
    "Rollout": "argoproj.io/v1alpha1",
}
KIND_ORDER = ("Namespace", "ConfigMap", "Secret", "PersistentVolumeClaim", "Service", "NetworkPolicy",
              "StatefulSet", "Deployment", "Rollout", "DaemonSet", "Job", "CronJob", "HorizontalPodAutoscaler",
              "PodDisruptionBudget", "Ingress")
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Rollout")
WAVE_NAMESPACE, WAVE_CONFIG, WAVE_WORKLOADS = 0, 1, 2
SERVED_KINDS = ("Deployment", "StatefulSet", "DaemonSet")  # long-running pods a Service sends traffic to
# Seconds a served pod keeps serving once it is told to stop (a preStop sleep; profile `shutdown_delay`).
# The endpoint is removed as the kubelet starts stopping the pod, and every node's kube-proxy drops it from
# its rules a moment later: connections opened meanwhile still reach the pod. A few seconds cover that
# propagation on a healthy cluster, as production charts assume.
DEFAULT_SHUTDOWN_DELAY = 5
COMPOSE_STOP_GRACE = 10  # s: Compose's default stop_grace_period, the app's own time to stop after SIGTERM
SLEEP_ACTION_SINCE = (1, 30)  # the preStop `sleep` action: beta and on by default in 1.30, GA in 1.34
# A rolling update without settings of its own starts a new pod before it stops an old one: the
# served capacity never drops (Kubernetes' own default, 25 % each, takes pods away from 4 replicas on).
DEFAULT_ROLLING_UPDATE = {"maxSurge": 1, "maxUnavailable": 0}
DEFAULT_STORAGE = 2**30
CONFIGMAP_MAX = 1_000_000  # the API server refuses ConfigMaps over 1 MiB (whole object)
RESERVED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
SECRET_NAME = re.compile(r"(PASSW(OR)?D|PASSPHRASE|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL"
                         r"|(^|_)KEY$|(^|_)DSN$|(^|_)SALT$)", re.IGNORECASE)
# `DB_PASSWORD_FILE=/run/secrets/db_password` names where a secret is, not a secret.
NOT_SECRET_NAME = re.compile(r"_(FILE|PATH|DIR|URL_FILE|KEY_FILE|LENGTH|ENABLED|ALGORITHM)$", re.IGNORECASE)
URL_CREDENTIALS = re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s:@]+:[^@\s/]+@", re.IGNORECASE)
PROTOCOLS = {"tcp": "TCP", "udp": "UDP", "sctp": "SCTP"}
SWARM_CONSTRAINT = re.compile(r"^\s*(?P<attr>[A-Za-z][\w.\-/]*)\s*(?P<op>==|!=)\s*(?P<value>\S+)\s*$")
NODE_ATTRIBUTE_LABELS = {"node.hostname": "kubernetes.io/hostname", "node.platform.os": "kubernetes.io/os",
                         "node.platform.arch": "kubernetes.io/arch"}
ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armhf": "arm"}
# The sysctls a default kubelet (and the baseline Pod Security Standard) allows; any other needs the
# kubelet's --allowed-unsafe-sysctls.
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start", "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
})


# Seconds between startup probes during a healthcheck's start_period when it sets no start_interval.
START_INTERVAL = 2.0


@dataclass(frozen=True)
class Rendered:
    """The rendered objects, in apply order, plus what could not be carried over.

    `warnings` are losses (a field ignored, a mount dropped): `--strict` fails on them.
    `notes` explain a choice and never fail a render.
    """

    objects: tuple[dict[str, Any], ...]
    warnings: tuple[m.Warning_, ...] = ()
    notes: tuple[m.Warning_, ...] = ()

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        for o in self.objects:
            if o["kind"] == kind and o["metadata"]["name"] == name:
                return o
        raise KeyError(f"{kind}/{name}")

    def workload(self, service: str) -> dict[str, Any]:
        """The workload rendered for a Compose service (Jobs are named with a hash suffix)."""
        for o in self.objects:
            if o["kind"] in WORKLOADS and o["metadata"].get("annotations", {}).get(A_SERVICE) == service:
                return o
        raise KeyError(service)


def render(stack: m.Stack, target: Target, *, secrets: SecretInputs | None = None,
           host: Mapping[str, HostPath] | None = None) -> Rendered:
    """Render `stack` for Kubernetes. Raises `InputError` (located) for input it cannot render."""
    with k.gc_paused():
        return _Renderer(stack, target, secrets or SecretInputs(), host or {}).run()


# ---------------------------------------------------------------------------------------------
# Plans: the decisions per service, made before any object is built
# ---------------------------------------------------------------------------------------------
@dataclass
class _Port:
    target: int
    protocol: str  # TCP | UDP | SCTP
    name: str
    app_protocol: str | None = None
    published: list[int] = field(default_factory=list)


@dataclass
class _Plan:
    svc: m.Service
    name: str  # the Kubernetes name (Service, workload, container)
    kind: str
    override: ServiceOverride  # the service's own profile settings
    ports: list[_Port]
    level: int = 0
    awaited: bool = False  # a dependent waits for this Job to complete
    claims: dict[str, str] = field(default_factory=dict)  # volume → "template" | "claim" | "external"

    @property
    def where(self) -> str:
        return f"services.{self.svc.name}"


@dataclass
class _EnvEntry:
    key: str  # the container variable
    secret: bool
    data_key: str  # key in the ConfigMap or Secret
    value: str  # the value Compose resolved
    store_key: str | None = None  # the store variable the value is (pure reference)


class _Renderer:
    def __init__(self, stack: m.Stack, target: Target, secrets: SecretInputs, host: Mapping[str, HostPath]):
        self.stack = stack
        self.target = target
        self.kube = target.kubernetes
        self.secrets = secrets
        self.host = host
        self.stack_label = k.label_value(stack.name)
        self.namespace = self.kube.namespace
        self.objects: list[dict[str, Any]] = []
        self.warnings: list[m.Warning_] = []
        self.notes: list[m.Warning_] = []
        self.plans: dict[str, _Plan] = {}
        self.names: dict[tuple[str, str], str] = {}  # (kind, name) → owner, to refuse collisions
        self.volumes = {v.name: v for v in stack.volumes}
        self.secret_name = self._claim_name("Secret", k.with_suffix(k.dns_label(stack.name) or "stack", "env"),
                                            "env")
        self.env_secret_data: dict[str, tuple[str, str]] = {}  # data key → (value, fingerprint)
        self.file_fingerprints: dict[tuple[str, str], str] = {}
        self.levels: dict[str, int] = {}
        self.sorted_plans: list[_Plan] = []
        self.old_version_noted = False
        self.built_images = {svc.image: k.built_image(stack.name, svc.name, svc.image, self.kube.registry,
                                                      self.kube.image_tag)
                             for svc in stack.services if svc.build is not None and svc.image}

    # -- small helpers -------------------------------------------------------------------------
    def warn(self, where: str, message: str) -> None:
        self.warnings.append(m.Warning_(where, message))

    def note(self, where: str, message: str) -> None:
        self.notes.append(m.Warning_(where, message))

    def profile_error(self, field_path: str, message: str) -> ProfileError:
        return ProfileError(message, file=self.target.profile_file, field=field_path)

    def _claim_name(self, kind: str, name: str, owner: str) -> str:
        """Reserve `name` for an object of `kind`; a clash gets a hash suffix (deterministic)."""
        chosen = name
        if (kind, chosen) in self.names:
            chosen = k.with_suffix(name, k.short_hash(owner, name, length=6))
        self.names[(kind, chosen)] = owner
        return chosen

    def labels(self, name: str) -> dict[str, str]:
        return {
            L_INSTANCE: self.stack_label,
            L_MANAGED_BY: MANAGER,
            L_NAME: k.label_value(name),
            L_PART_OF: self.stack_label,
            L_PROFILE: k.label_value(self.target.profile),
            L_STACK: self.stack_label,
        }

    def selector(self, name: str) -> dict[str, str]:
        return {L_INSTANCE: self.stack_label, L_NAME: k.label_value(name)}

    def colour(self, plan: _Plan) -> str | None:
        """Blue-green Deployments are rendered as the first colour; promote picks the colour to deploy
        (`stackctl.kubernetes.bluegreen`), so the render stays the same whatever is live."""
        if plan.kind == "Deployment" and self._effective(plan, "strategy") == "blue-green" and not self.argo(plan):
            return FIRST_COLOUR
        return None

    def canary(self, plan: _Plan) -> bool:
        """A canary that promote runs itself (a stable and a canary Deployment)."""
        return (plan.kind == "Deployment" and self._effective(plan, "strategy") == "canary"
                and not self.argo(plan))

    def argo(self, plan: _Plan) -> bool:
        """A canary or blue-green run by Argo Rollouts: the service's Deployment is rendered as a `Rollout`."""
        return plan.kind == "Deployment" and argo_controller_field(plan.override, self.target.defaults) is not None

    def pod_selector(self, plan: _Plan, *, workload: bool = False) -> dict[str, str]:
        """What selects the service's serving pods: its Services' selector; with `workload`, its
        Deployment's (a canary service's stable Deployment selects only the stable track: the canary
        Deployment promote adds beside it has the same name label, and the Service selects both)."""
        colour = self.colour(plan)
        out = {**self.selector(plan.name), **({L_COLOUR: colour} if colour else {})}
        if workload and self.canary(plan):
            out[L_TRACK] = "stable"
        return out

    def emit(self, kind: str, name: str, body: dict[str, Any], *, wave: int, label_name: str,
             annotations: Mapping[str, str] | None = None, namespaced: bool = True) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name}
        if namespaced:
            meta["namespace"] = self.namespace
        meta["labels"] = self.labels(label_name)
        notes = {A_WAVE: str(wave), **(annotations or {})}
        meta["annotations"] = dict(sorted(notes.items()))
        obj = {"apiVersion": API_VERSIONS[kind], "kind": kind, "metadata": meta, **body}
        self.objects.append(obj)
        return obj

    # -- the whole render ----------------------------------------------------------------------
    def run(self) -> Rendered:
        self._check_profile_references()
        self._plan()
        if self.namespace not in RESERVED_NAMESPACES:
            self.emit("Namespace", self.namespace, {}, wave=WAVE_NAMESPACE, label_name=self.stack_label,
                      namespaced=False, annotations={A_PRUNE: "false"})
        files = self._file_objects()
        env = self._environment()
        claims = self._claims()
        for plan in self._ordered_plans():
            self._service(plan, env.get(plan.svc.name, []), files, claims)
        self._env_secret()
        self._network_policies()
        rank = {kind: i for i, kind in enumerate(KIND_ORDER)}
        objects = sorted(self.objects, key=lambda o: (int(o["metadata"]["annotations"][A_WAVE]), rank[o["kind"]],
                                                      o["metadata"]["name"]))
        return Rendered(objects=tuple(objects), warnings=tuple(self.warnings), notes=tuple(self.notes))

    def _check_profile_references(self) -> None:
        names = set(self.stack.service_names)
        for svc_name in self.target.services:
            if svc_name not in names:
                raise self.profile_error(f"services.{svc_name}", "no such service in the Compose project "
                                         f"(services: {', '.join(sorted(names)) or 'none'})")
        for vol in self.kube.volumes:
            if vol not in self.volumes:
                raise self.profile_error(f"kubernetes.volumes.{vol}", "no such named volume in the Compose "
                                         f"project (volumes: {', '.join(sorted(self.volumes)) or 'none'})")

    def _ordered_plans(self) -> list[_Plan]:
        return self.sorted_plans

    # -- planning ------------------------------------------------------------------------------
    def _plan(self) -> None:
        taken: dict[str, str] = {}
        for svc in self.stack.services:
            name = k.service_name(svc.name)
            if name is None:
                raise InputError("cannot be named in Kubernetes (a Service name must start with a letter and "
                                 "hold only letters, digits and '-'); rename the service",
                                 field=f"services.{svc.name}")
            if name in taken:
                raise InputError(f"becomes the Kubernetes name {name!r}, like services.{taken[name]}; rename one "
                                 "of them", field=f"services.{svc.name}")
            taken[name] = svc.name
            if name != svc.name:
                self.warn(f"services.{svc.name}", f"is named {name!r} in Kubernetes (names are DNS labels); "
                                                  f"clients that connect to {svc.name!r} must use {name!r}")
            self.names[("Service", name)] = svc.name
            override = self.target.services.get(svc.name, ServiceOverride())
            self.plans[svc.name] = _Plan(svc=svc, name=name, kind="", override=override, ports=self._ports(svc))
        users: dict[str, list[str]] = {}
        for svc in self.stack.services:
            for mount in svc.volumes:
                if mount.type == "volume" and mount.source:
                    users.setdefault(mount.source, [])
                    if svc.name not in users[mount.source]:
                        users[mount.source].append(svc.name)
        one_shots = self.stack.one_shot_services()
        sole: dict[str, list[str]] = {}  # service → named volumes only it uses
        for vol, svcs in users.items():
            if len(svcs) == 1 and not self._external(vol):
                sole.setdefault(svcs[0], []).append(vol)
        for plan in self.plans.values():
            plan.kind = self._kind(plan, one_shots, sole.get(plan.svc.name, []))
        for vol, svcs in users.items():
            spec = self.volumes.get(vol)
            for svc_name in svcs:
                plan = self.plans[svc_name]
                if spec is not None and spec.external:
                    plan.claims[vol] = "external"
                elif len(svcs) == 1 and plan.kind == "StatefulSet":
                    plan.claims[vol] = "template"
                else:
                    plan.claims[vol] = "claim"
        for plan in self.plans.values():
            self._level(plan, ())
        self.sorted_plans = [self.plans[n] for n in sorted(self.plans)]
        portless = {p.svc.name: p for p in self.sorted_plans if not p.ports and p.kind not in ("Job", "CronJob")}
        if portless:
            evidence = self._port_evidence(set(portless))
            for name, plan in portless.items():
                self._infer_ports(plan, evidence.get(name, {}))
        bare = sorted(p.svc.name for p in self.plans.values() if not self._has_resources(p))
        if bare:
            self.note(f"services.{bare[0]}" if len(bare) == 1 else "services",
                      f"{'' if len(bare) == 1 else ', '.join(bare) + ': '}no resources, so the pods are "
                      "BestEffort (first evicted under pressure); set defaults.resources in the profile")

    def _has_resources(self, plan: _Plan) -> bool:
        deploy = plan.svc.deploy
        return any((deploy.limits.cpus, deploy.limits.memory, deploy.reservations.cpus, deploy.reservations.memory))

    def _port_evidence(self, names: set[str]) -> dict[str, dict[int, str]]:
        """Ports at which other services connect to each of `names`, read once from every
        environment value (`db:5432`, `redis://cache/0`, `DB_HOST=db` + `DB_PORT=5432`)."""
        found: dict[str, dict[int, str]] = {}
        for other in self.sorted_plans:
            env = {key: v for key, v in other.svc.environment.items() if v is not None}
            for key, value in sorted(env.items()):
                where = f"services.{other.svc.name}.environment.{key}"
                for host, port in k.host_references(value):
                    if port is not None and host in names and host != other.svc.name:
                        found.setdefault(host, {}).setdefault(port, where)
                if value in names and value != other.svc.name and key.endswith("_HOST"):
                    port_value = env.get(key[:-len("_HOST")] + "_PORT", "")
                    if port_value.isdigit() and 0 < int(port_value) < 65536:
                        found.setdefault(value, {}).setdefault(int(port_value), where)
        return found

    def _infer_ports(self, plan: _Plan, evidence: Mapping[int, str]) -> None:
        """A service with neither `ports` nor `expose` is still reachable by the others in Compose
        (any port on a shared network). Find the ports they use, so it gets a Service: from its
        health check URL, from other services' environment, else from its image's well-known port."""
        found: dict[int, str] = {}
        hc = plan.svc.healthcheck
        if hc is not None and hc.argv is not None:
            http = k.http_check(hc.argv)
            if http is not None:
                found.setdefault(http.port, "its health check")
        for port, where in evidence.items():
            found.setdefault(port, where)
        if not found:
            for port in k.image_ports(plan.svc.image):
                found[port] = f"the default of the {k.parse_image(plan.svc.image or '').name} image"
        if not found:
            return
        for port in sorted(found):
            plan.ports.append(_Port(port, "TCP", k.port_name(port, "TCP")))
        listing = "; ".join(f"{port} ({why})" for port, why in sorted(found.items()))
        self.note(plan.where, f"has no ports or expose; its Service listens on {listing}. Add "
                              "`expose: [" + ", ".join(f'"{p}"' for p in sorted(found)) + "]` to say so")

    def _effective(self, plan: _Plan, attr: str) -> Any:
        own = getattr(plan.override, attr)
        return own if own is not None else getattr(self.target.defaults, attr)

    def _kind(self, plan: _Plan, one_shots: frozenset[str], own_volumes: list[str]) -> str:
        svc, o = plan.svc, plan.override
        if o.schedule is not None:
            return "CronJob"
        if o.kind is not None:
            return o.kind
        if svc.name in one_shots:
            if svc.deploy.mode == "global-job":
                self.warn(f"{plan.where}.deploy.mode", "global-job has no Kubernetes equivalent; it runs as "
                                                       "one Job (use a DaemonSet for per-node work)")
            return "Job"
        if svc.deploy.mode == "global":
            return "DaemonSet"
        if own_volumes or k.is_database_image(svc.image):
            return "StatefulSet"
        return "Deployment"

    def _external(self, vol: str) -> bool:
        spec = self.volumes.get(vol)
        return bool(spec and spec.external)

    def _level(self, plan: _Plan, path: tuple[str, ...]) -> int:
        """Workload level: one more than any Job this service waits for (see the module docstring)."""
        if plan.svc.name in self.levels:
            return self.levels[plan.svc.name]
        if plan.svc.name in path:
            return 0  # Compose rejects cycles; stay total anyway
        level = 0
        for dep in plan.svc.depends_on:
            other = self.plans.get(dep.service)
            if other is None:
                continue
            dep_level = self._level(other, (*path, plan.svc.name))
            if dep.condition == "service_completed_successfully" and other.kind == "Job":
                other.awaited = True
                dep_level += 1
            level = max(level, dep_level)
        plan.level = self.levels[plan.svc.name] = level
        return level

    def _ports(self, svc: m.Service) -> list[_Port]:
        found: dict[tuple[int, str], _Port] = {}
        where = f"services.{svc.name}"

        def add(target: int, protocol: str, name: str | None, app: str | None, published: str | None,
                field_path: str) -> None:
            proto = PROTOCOLS.get(protocol.lower())
            if proto is None:
                self.warn(field_path, f"protocol {protocol!r} is not supported by Kubernetes; port {target} dropped")
                return
            if not 0 < target < 65536:
                self.warn(field_path, f"port {target} is out of range; dropped")
                return
            port = found.get((target, proto))
            if port is None:
                port = found[(target, proto)] = _Port(target, proto, k.port_name(target, proto, name), app)
            if published:
                first = published.split("-", 1)[0]
                if first.isdigit() and int(first) not in port.published:
                    port.published.append(int(first))

        for i, p in enumerate(svc.ports):
            add(p.target, p.protocol, p.name, p.app_protocol, p.published, f"{where}.ports[{i}]")
        for i, text in enumerate(svc.expose):
            spec, _, proto = str(text).partition("/")
            low, _, high = spec.partition("-")
            if not low.isdigit() or (high and not high.isdigit()):
                self.warn(f"{where}.expose[{i}]", f"cannot read port {text!r}; dropped")
                continue
            top = int(high) if high else int(low)
            if top - int(low) > 100:
                self.warn(f"{where}.expose[{i}]", f"range {text} has more than 100 ports; only the first 101 "
                                                  "are exposed")
                top = int(low) + 100
            for number in range(int(low), top + 1):
                add(number, proto or "tcp", None, None, None, f"{where}.expose[{i}]")
        ports = list(found.values())
        seen: set[str] = set()
        for port in ports:  # a duplicate name falls back to the protocol-port form
            if port.name in seen:
                port.name = k.port_name(port.target, port.protocol)
            seen.add(port.name)
        return ports

    # -- environment ---------------------------------------------------------------------------
    def _environment(self) -> dict[str, list[_EnvEntry]]:
        """Split every service's environment into ConfigMap keys and Secret keys.

        A variable is secret when it is annotated `@secret` in `.env.example`, when its Compose value
        references such a variable, or (a safety net, with a note) when its name or value looks like
        a credential. A secret whose Compose value is exactly one variable (`${DB_PASSWORD}`) is
        stored once under that variable's name; any other secret value under `<service>.<NAME>`.
        """
        from stackctl.compose.interpolation import references

        out: dict[str, list[_EnvEntry]] = {}
        shared: dict[str, str] = {}  # Secret data key → value, to detect disagreeing values
        for plan in self._ordered_plans():
            svc, entries = plan.svc, []
            for key in sorted(svc.environment):
                value = svc.environment[key]
                where = f"{plan.where}.environment.{key}"
                if value is None:
                    self.warn(where, "has no value (Compose passes it from the shell, which Kubernetes cannot); "
                                     "set it in the profile's env file")
                    continue
                template = self.secrets.templates.get((svc.name, key))
                refs: list[str] = []
                if template is not None:
                    try:
                        refs = [r.name for r in references(template)]
                    except InputError:
                        refs = []
                pure = _pure_reference(template)
                store_key: str | None = None
                if pure is not None and pure in self.secrets.keys:
                    store_key = pure
                elif template is None and key in self.secrets.keys:
                    store_key = key
                composite = store_key is None and any(r in self.secrets.keys for r in refs)
                if store_key is None and not composite and key not in self.secrets.keys:
                    reason = ("its name looks like a credential" if SECRET_NAME.search(key)
                              and not NOT_SECRET_NAME.search(key) else
                              "its value holds URL credentials" if URL_CREDENTIALS.match(value) else None)
                    if reason is None:
                        data_key = key if k.CONFIG_KEY.match(key) else ""
                        entries.append(_EnvEntry(key=key, secret=False, data_key=data_key, value=value))
                        continue
                    self.note(where, f"kept in a Secret because {reason}; annotate it `# @secret` in .env.example "
                                     "so the secrets store manages it")
                    store_key = pure  # a plain `${VAR}`: named after VAR, like a store entry
                candidate = store_key or (None if composite else key)
                if candidate and k.CONFIG_KEY.match(candidate) and shared.get(candidate, value) == value:
                    data_key = candidate
                else:
                    data_key, store_key = k.config_key(f"{svc.name}.{key}"), None
                shared.setdefault(data_key, value)
                entries.append(_EnvEntry(key=key, secret=True, data_key=data_key, value=value, store_key=store_key))
                self.env_secret_data.setdefault(
                    data_key, (self._secret_value(store_key, value), self._fingerprint(store_key, value)))
            out[svc.name] = entries
        return out

    def _fingerprint(self, store_key: str | None, value: str) -> str:
        """What a checksum annotation covers for one Secret value: the store's digest when the value
        is a store entry (it reveals nothing), else a hash of the value."""
        if store_key is not None and store_key in self.secrets.digests:
            return f"store:{self.secrets.digests[store_key]}"
        return f"sha256:{k.sha256(value)}"

    def _secret_value(self, store_key: str | None, value: str) -> str:
        if self.secrets.values is None:
            return ""
        if store_key is not None and store_key in self.secrets.values:
            return self.secrets.values[store_key]
        return value

    def _env_secret(self) -> None:
        if not self.env_secret_data:
            return
        data = {key: _b64(value.encode("utf-8")) for key, (value, _) in sorted(self.env_secret_data.items())}
        annotations = {} if self.secrets.values is not None else {A_VALUES: "omitted"}
        self.emit("Secret", self.secret_name, {"type": "Opaque", "data": data}, wave=WAVE_CONFIG,
                  label_name=self.stack_label, annotations=annotations)

    # -- Compose secrets and configs, bind-mounted files ---------------------------------------
    def _file_objects(self) -> dict[tuple[str, str], tuple[str, str, str]]:
        """Secret/ConfigMap objects for the Compose `secrets:` and `configs:` that services use.
        Returns (kind, name) → (object kind, object name, data key), kind being secret|config."""
        used_secrets = {ref.source for s in self.stack.services for ref in s.secrets}
        used_configs = {ref.source for s in self.stack.services for ref in s.configs}
        out: dict[tuple[str, str], tuple[str, str, str]] = {}
        for what, items, used in (("secret", self.stack.secrets, used_secrets),
                                  ("config", self.stack.configs, used_configs)):
            obj_kind = "Secret" if what == "secret" else "ConfigMap"
            for item in items:
                if item.name not in used:
                    continue
                where = f"{what}s.{item.name}"
                key = k.config_key(item.name)
                base = k.dns_label(item.resolved_name if item.external and item.resolved_name else item.name) or "x"
                if item.external:
                    out[(what, item.name)] = (obj_kind, base, key)
                    self.note(where, f"external: the {obj_kind} {base!r} with key {key!r} must exist in namespace "
                                     f"{self.namespace!r}")
                    self.file_fingerprints[(what, item.name)] = f"external:{base}"
                    continue
                name = self._claim_name(obj_kind, k.with_suffix(k.dns_label(self.stack.name) or "stack", base),
                                        where)
                content, fingerprint = self._file_content(what, item, where)
                self.file_fingerprints[(what, item.name)] = fingerprint
                out[(what, item.name)] = (obj_kind, name, key)
                if what == "secret":
                    value = b"" if self.secrets.values is None else (content or b"")
                    annotations = {} if self.secrets.values is not None else {A_VALUES: "omitted"}
                    self.emit("Secret", name, {"type": "Opaque", "data": {key: _b64(value)}}, wave=WAVE_CONFIG,
                              label_name=self.stack_label, annotations=annotations)
                else:
                    self.emit("ConfigMap", name, _config_data({key: content or b""}), wave=WAVE_CONFIG,
                              label_name=self.stack_label)
        return out

    def _file_content(self, what: str, item: m.Secret, where: str) -> tuple[bytes | None, str]:
        if item.content is not None:
            data = item.content.encode("utf-8")
            return data, f"sha256:{k.sha256(data)}"
        if item.environment is not None:
            var = item.environment
            value = (self.secrets.values or {}).get(var)
            if var in self.secrets.digests:
                fingerprint = f"store:{self.secrets.digests[var]}"
            elif value is not None:
                fingerprint = f"sha256:{k.sha256(value)}"
            else:
                fingerprint = f"env:{var}"
            if self.secrets.values is not None and value is None:
                self.warn(where, f"its value comes from the variable {var}, which the store does not hold; the "
                                 "object is rendered empty")
            return (value.encode("utf-8") if value is not None else None), fingerprint
        if item.file is not None:
            info = self.host.get(item.file)
            if info is None or info.kind != "file":
                reason = info.reason if info and info.reason else "it is not a readable file in the project"
                self.warn(where, f"file {info.display if info else item.file}: {reason}; the object is rendered empty")
                return None, f"missing:{item.name}"
            data = info.files.get("", b"")
            return data, f"sha256:{k.sha256(data)}"
        self.warn(where, f"has no file, environment or content; the {what} is rendered empty")
        return None, f"empty:{item.name}"

    # -- volumes --------------------------------------------------------------------------------
    def _volume_settings(self, vol: str) -> tuple[int, str | None, str]:
        spec = self.kube.volumes.get(vol)
        size = (spec.size if spec and spec.size else None) or self.kube.storage_size or DEFAULT_STORAGE
        storage_class = (spec.storage_class if spec and spec.storage_class else None) or self.kube.storage_class
        mode = (spec.access_mode if spec and spec.access_mode else None) or "ReadWriteOnce"
        return size, storage_class, mode

    def _claim_spec(self, vol: str) -> dict[str, Any]:
        size, storage_class, mode = self._volume_settings(vol)
        spec: dict[str, Any] = {"accessModes": [mode], "resources": {"requests": {"storage": k.memory_quantity(size)}}}
        if storage_class:
            spec["storageClassName"] = storage_class
        return spec

    def _claims(self) -> dict[str, str]:
        """Standalone PVCs for named volumes that are not a StatefulSet's own. volume → claim name."""
        out: dict[str, str] = {}
        needed = sorted({v for p in self.plans.values() for v, how in p.claims.items() if how != "template"})
        claimants: dict[str, list[str]] = {}
        for p in self._ordered_plans():
            for v, how in p.claims.items():
                if how == "claim":
                    claimants.setdefault(v, []).append(p.svc.name)
        for vol in needed:
            spec = self.volumes.get(vol)
            where = f"volumes.{vol}"
            if spec is not None and spec.external:
                out[vol] = k.dns_label(spec.resolved_name or vol) or "volume"
                self.note(where, f"external: the PersistentVolumeClaim {out[vol]!r} must exist in namespace "
                                 f"{self.namespace!r}")
                continue
            name = self._claim_name("PersistentVolumeClaim", k.dns_label(vol) or "volume", where)
            out[vol] = name
            if spec is not None:
                self._volume_driver_warnings(spec)
            self.emit("PersistentVolumeClaim", name, {"spec": self._claim_spec(vol)}, wave=WAVE_CONFIG,
                      label_name=name, annotations={A_PRUNE: "false"})
            users = claimants.get(vol, [])
            mode = self._volume_settings(vol)[2]
            if len(users) > 1 and mode in ("ReadWriteOnce", "ReadWriteOncePod"):
                self.warn(where, f"is shared by {', '.join(users)}: a {mode} claim can only be mounted on one node "
                                 f"(one pod for ReadWriteOncePod); set kubernetes.volumes.{vol}.access_mode: "
                                 "ReadWriteMany if the storage class supports it")
        return out

    def _volume_driver_warnings(self, spec: m.Volume) -> None:
        if spec.driver not in (None, "local") or spec.driver_opts:
            self.warn(f"volumes.{spec.name}", "driver and driver_opts are not carried over; the claim uses the "
                                              "storage class of the profile (kubernetes.volumes / storage_class)")

    # -- one service -----------------------------------------------------------------------------
    def _service(self, plan: _Plan, env: list[_EnvEntry], files: Mapping[tuple[str, str], tuple[str, str, str]],
                 claims: Mapping[str, str]) -> None:
        wave = WAVE_WORKLOADS + plan.level
        config_sums: dict[str, str] = {}
        secret_sums: dict[str, str] = {}
        pod = self._pod(plan, env, files, claims, config_sums, secret_sums)
        pod_annotations: dict[str, str] = {}
        for key, value in sorted(plan.svc.labels.items()):
            if k.annotation_key_ok(key):
                pod_annotations[key] = value
            else:
                self.warn(f"{plan.where}.labels.{key}", "is not a valid Kubernetes annotation key; dropped")
        if config_sums:
            pod_annotations[A_CONFIG_HASH] = k.sha256(k.canonical(config_sums))
        if secret_sums:
            pod_annotations[A_SECRET_HASH] = k.sha256(k.canonical(secret_sums))
        template = {"metadata": {"labels": {**self.labels(plan.name), **self.pod_selector(plan, workload=True)}},
                    "spec": pod}
        if pod_annotations:
            template["metadata"]["annotations"] = dict(sorted(pod_annotations.items()))
        annotations = {A_SERVICE: plan.svc.name}
        for key, value in sorted(plan.svc.deploy.labels.items()):  # Swarm labels of the service itself
            if k.annotation_key_ok(key) and not key.startswith("stackctl.io/"):
                annotations[key] = value
            else:
                self.warn(f"{plan.where}.deploy.labels.{key}", "is not a valid Kubernetes annotation key; dropped")
        strategy = self._effective(plan, "strategy")
        if strategy in ("blue-green", "canary"):
            annotations[A_STRATEGY] = strategy
        blue_green = self._effective(plan, "blue_green")
        if blue_green is not None and strategy != "blue-green":
            raise self.profile_error(f"{plan.where}.blue_green", "only applies with strategy: blue-green")
        if self.colour(plan):
            if plan.override.autoscaling is not None:
                raise self.profile_error(f"{plan.where}.autoscaling", "cannot be combined with strategy: "
                                                                      "blue-green (the autoscaler targets one "
                                                                      "Deployment, blue-green has two)")
            if blue_green is not None and not blue_green.keep_previous:
                annotations[A_KEEP_PREVIOUS] = "false"
        elif strategy == "blue-green" and not self.argo(plan):
            self.warn(f"{plan.where}.strategy", f"blue-green applies to Deployments; this {plan.kind} rolls "
                                                "as usual")
        if plan.override.job is not None and plan.kind not in ("Job", "CronJob"):
            raise self.profile_error(f"{plan.where}.job", f"only applies to a Job or CronJob (this service is a "
                                                          f"{plan.kind})")
        canary = self._effective(plan, "canary")
        if canary is not None and strategy != "canary":
            raise self.profile_error(f"{plan.where}.canary", "only applies with strategy: canary")
        if self.canary(plan):
            if plan.override.autoscaling is not None:
                raise self.profile_error(f"{plan.where}.autoscaling", "cannot be combined with strategy: canary "
                                                                      "(the canary is sized from replicas)")
            steps = (canary or Canary()).steps
            annotations[A_CANARY_STEPS] = ",".join(f"{st.weight}:{st.pause}" for st in steps)
        elif strategy == "canary" and not self.argo(plan):
            self.warn(f"{plan.where}.strategy", f"canary applies to Deployments; this {plan.kind} rolls as usual")
        self._workload(plan, template, wave, annotations, claims)
        if plan.kind not in ("Job", "CronJob"):
            self._services(plan)
        elif plan.ports and plan.svc.ports:
            self.warn(f"{plan.where}.ports", f"a {plan.kind} gets no Service: its ports are not reachable")
        self._autoscaling(plan, wave)
        self._pdb(plan, wave)
        self._ingress(plan, wave)

    def _workload(self, plan: _Plan, template: dict[str, Any], wave: int, annotations: dict[str, str],
                  claims: Mapping[str, str]) -> None:
        svc, kind = plan.svc, plan.kind
        autoscaling = plan.override.autoscaling
        replicas = svc.deploy.replicas
        spec: dict[str, Any] = {}
        if kind in ("Deployment", "StatefulSet"):
            if autoscaling is None and replicas is not None:
                spec["replicas"] = replicas
            elif autoscaling is not None and replicas is not None:
                self.note(f"{plan.where}.replicas", "autoscaling owns the replica count; replicas is not rendered")
        if kind in ("Deployment", "StatefulSet", "DaemonSet"):
            spec["selector"] = {"matchLabels": self.pod_selector(plan, workload=True)}
        if kind == "Deployment":
            spec.update(self._deployment_strategy(plan, claims))
        elif kind == "StatefulSet":
            spec["serviceName"] = self._headless_name(plan)
            templates = [v for v, how in sorted(plan.claims.items()) if how == "template"]
            if templates:
                spec["volumeClaimTemplates"] = [
                    {"metadata": {"name": self._volume_name(v), "labels": self.selector(plan.name)},
                     "spec": self._claim_spec(v)} for v in templates]
                for vol in templates:
                    if vol in self.volumes:
                        self._volume_driver_warnings(self.volumes[vol])
        elif kind == "DaemonSet":
            update = self._effective(plan, "update")
            if update is not None:
                rolling = {}
                if update.max_surge is not None:
                    rolling["maxSurge"] = update.max_surge
                if update.max_unavailable is not None:
                    rolling["maxUnavailable"] = update.max_unavailable
                spec["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": rolling}
        name = plan.name
        if kind in ("Job", "CronJob"):
            job = self._job_spec(plan, template)
            if kind == "Job":
                spec.update(job)
                # A Job's pod template is immutable: a changed Job is a new Job (a new name), and the
                # old one is pruned. An unchanged Job keeps its name and does not run again.
                name = k.with_suffix(plan.name, k.short_hash(k.canonical(job)))
                if plan.awaited:
                    annotations[A_WAIT] = "complete"
            else:
                spec.update(self._cron_spec(plan, job))
        else:
            spec["template"] = template
        if kind == "CronJob" and len(name) > 52:  # the controller appends 11 characters per run
            name = f"{name[:43].rstrip('-')}-{k.short_hash(name)}"
        colour = self.colour(plan)
        if colour:
            name = k.with_suffix(name, colour)
        if self.argo(plan):
            kind = "Rollout"
            spec["strategy"] = self._argo_strategy(plan, spec.pop("strategy", None))
            # The Argo controller writes the template back with `resources: {}` on every container
            # (argoproj/argo-rollouts#3281); rendering it so keeps the next apply a no-op.
            pod_spec = template["spec"]
            for group in ("initContainers", "containers"):
                for container in pod_spec.get(group) or []:
                    container.setdefault("resources", {})
        if kind != "Job":
            name = self._claim_name(kind, name, plan.where)
        obj = self.emit(kind, name, {"spec": spec}, wave=wave, label_name=plan.name, annotations=annotations)
        if colour:
            obj["metadata"]["labels"] = dict(sorted({**obj["metadata"]["labels"], L_COLOUR: colour}.items()))

    def _deployment_strategy(self, plan: _Plan, claims: Mapping[str, str]) -> dict[str, Any]:
        svc = plan.svc
        strategy = self._effective(plan, "strategy")
        rwo = [v for v, how in plan.claims.items() if how in ("claim", "external")
               and self._volume_settings(v)[2] in ("ReadWriteOnce", "ReadWriteOncePod")]
        out: dict[str, Any] = {}
        if rwo:
            if strategy == "rolling" or self._effective(plan, "update") is not None:
                self.warn(f"{plan.where}.strategy", f"Recreate is used instead of a rolling update: the "
                                                    f"ReadWriteOnce volume {rwo[0]} cannot be mounted by old and "
                                                    "new pods on different nodes at once")
            out["strategy"] = {"type": "Recreate"}
            return out
        if strategy == "recreate":
            out["strategy"] = {"type": "Recreate"}
            return out
        rolling: dict[str, Any] = {}
        update = self._effective(plan, "update")
        uc = svc.deploy.update_config
        if update is not None:
            if update.max_surge is not None:
                rolling["maxSurge"] = update.max_surge
            if update.max_unavailable is not None:
                rolling["maxUnavailable"] = update.max_unavailable
        elif uc is not None and (uc.parallelism is not None or uc.order):
            # Swarm: parallelism 1 unless set, 0 = all at once
            pods: int | str = "100%" if uc.parallelism == 0 else (uc.parallelism or 1)
            if uc.order == "start-first":
                rolling = {"maxSurge": pods, "maxUnavailable": 0}
            else:  # Swarm's default order is stop-first
                rolling = {"maxSurge": 0, "maxUnavailable": pods}
        else:
            # Whatever the replica count: with 1 to 3 it is what Kubernetes' 25 % rounds to anyway (now
            # explicit), from 4 on it keeps every replica serving, and an autoscaled count is unknown here.
            rolling = dict(DEFAULT_ROLLING_UPDATE)
        if uc is not None and uc.delay:
            out["minReadySeconds"] = k.seconds(uc.delay)
        if uc is not None and uc.failure_action not in (None, "pause"):
            self.note(f"{plan.where}.deploy.update_config.failure_action",
                      f"{uc.failure_action}: a failed rollout stops; `stackctl promote` handles rollback")
        if rolling:
            out["strategy"] = {"type": "RollingUpdate", "rollingUpdate": rolling}
        return out

    def _argo_strategy(self, plan: _Plan, deployment: Mapping[str, Any] | None) -> dict[str, Any]:
        """An Argo Rollouts canary (setWeight and pause steps, weights by replica ratio: no traffic
        router is configured; the surge/unavailable settings of the rolling update) or blue-green
        (the service's Service is the active one, switched once the new ReplicaSet is ready)."""
        blue_green = self._effective(plan, "strategy") == "blue-green"
        field = "blue_green" if blue_green else "canary"
        if deployment is not None and deployment.get("type") == "Recreate":
            raise self.profile_error(f"{plan.where}.{field}.controller",
                                     f"{'blue-green' if blue_green else 'a canary'} needs old and new pods side by "
                                     "side, and this service must be recreated (strategy: recreate, or a "
                                     "ReadWriteOnce volume)")
        if blue_green:
            if not plan.ports:
                raise self.profile_error(f"{plan.where}.blue_green.controller",
                                         "Argo Rollouts switches the service's Service, and it has no ports (no "
                                         "Service); give it `expose:` or `ports:`")
            aliases = [a for net in plan.svc.networks for a in net.aliases if k.service_name(a) not in (None, plan.name)]
            if aliases:
                raise self.profile_error(f"{plan.where}.blue_green.controller",
                                         f"Argo Rollouts switches one Service, and the network aliases "
                                         f"({', '.join(aliases)}) would each get one that sees both versions; drop "
                                         "them or use controller: stackctl")
            settings = self._effective(plan, "blue_green")
            out: dict[str, Any] = {"activeService": plan.name, "autoPromotionEnabled": True}
            if settings is not None and not settings.keep_previous:
                out["scaleDownDelaySeconds"] = 0  # else Argo's default: the old ReplicaSet goes 30 s after
            return {"blueGreen": out}
        steps: list[dict[str, Any]] = []
        for step in (self._effective(plan, "canary") or Canary()).steps:
            steps.append({"setWeight": step.weight})
            if step.pause:
                steps.append({"pause": {"duration": f"{step.pause}s"}})
        canary: dict[str, Any] = dict((deployment or {}).get("rollingUpdate") or {})
        canary["steps"] = steps
        return {"canary": canary}

    def _job_spec(self, plan: _Plan, template: dict[str, Any]) -> dict[str, Any]:
        svc = plan.svc
        restart = svc.restart or ""
        policy = svc.deploy.restart_policy or {}
        attempts = policy.get("max_attempts")
        backoff = 0
        if restart.startswith("on-failure"):
            _, _, count = restart.partition(":")
            backoff = int(count) if count.isdigit() else 6
        elif restart in ("always", "unless-stopped"):
            backoff = 6
            self.note(f"{plan.where}.restart", f"{restart} on a one-shot service: the Job retries a failed run "
                                               "(backoffLimit 6) and stops after a success")
        if policy.get("condition") in ("on-failure", "any"):
            backoff = 6
        if isinstance(attempts, int) and policy.get("condition") != "none":
            backoff = attempts
        template["spec"]["restartPolicy"] = "Never"
        settings = plan.override.job
        if settings is not None and settings.backoff_limit is not None:
            backoff = settings.backoff_limit
        spec: dict[str, Any] = {"backoffLimit": backoff}
        if settings is not None and settings.active_deadline is not None:
            spec["activeDeadlineSeconds"] = settings.active_deadline
        if settings is not None and settings.ttl_after_finished is not None:
            spec["ttlSecondsAfterFinished"] = settings.ttl_after_finished
        replicas = svc.deploy.replicas
        if replicas is not None and replicas > 1:
            spec["completions"] = replicas
            spec["parallelism"] = replicas
        spec["template"] = template
        return spec

    def _cron_spec(self, plan: _Plan, job: dict[str, Any]) -> dict[str, Any]:
        o = plan.override
        spec: dict[str, Any] = {"schedule": o.schedule, "concurrencyPolicy": o.concurrency_policy or "Forbid"}
        if o.time_zone:
            spec["timeZone"] = o.time_zone
        if o.job is not None and o.job.successful_history is not None:
            spec["successfulJobsHistoryLimit"] = o.job.successful_history
        if o.job is not None and o.job.failed_history is not None:
            spec["failedJobsHistoryLimit"] = o.job.failed_history
        spec["jobTemplate"] = {"metadata": {"labels": self.selector(plan.name)}, "spec": job}
        return spec

    # -- the pod -------------------------------------------------------------------------------
    def _pod(self, plan: _Plan, env: list[_EnvEntry], files: Mapping[tuple[str, str], tuple[str, str, str]],
             claims: Mapping[str, str], config_sums: dict[str, str], secret_sums: dict[str, str]) -> dict[str, Any]:
        svc = plan.svc
        container: dict[str, Any] = {"name": plan.name, "image": self._image(plan)}
        pull = self._pull_policy(plan)
        if pull:
            container["imagePullPolicy"] = pull
        if svc.entrypoint is not None:
            container["command"] = [k.escape_dollar(a) for a in svc.entrypoint]
        if svc.command is not None:
            container["args"] = [k.escape_dollar(a) for a in svc.command]
        if svc.working_dir:
            container["workingDir"] = svc.working_dir
        self._env(plan, env, container, config_sums, secret_sums)
        if plan.ports:
            container["ports"] = [{"name": p.name, "containerPort": p.target, "protocol": p.protocol}
                                  for p in plan.ports]
        resources = self._resources(plan)
        if resources:
            container["resources"] = resources
        if plan.kind not in ("Job", "CronJob"):
            container.update(self._probes(plan))
        delay = self._shutdown_delay(plan)
        if delay:
            # Kubernetes' own sleep action: the kubelet waits, so the image needs no `sleep` binary.
            container["lifecycle"] = {"preStop": {"sleep": {"seconds": delay}}}
        volumes: list[dict[str, Any]] = []
        mounts: list[dict[str, Any]] = []
        self._mounts(plan, claims, volumes, mounts, config_sums)
        self._file_mounts(plan, files, volumes, mounts, config_sums, secret_sums)
        if mounts:
            container["volumeMounts"] = mounts
        security = self._container_security(plan)
        if security:
            container["securityContext"] = security
        pod: dict[str, Any] = {"automountServiceAccountToken": False, "enableServiceLinks": False}
        if svc.hostname and plan.kind != "StatefulSet":
            if k.DNS1123_LABEL.match(svc.hostname) and len(svc.hostname) <= 63:
                pod["hostname"] = svc.hostname
            else:
                self.warn(f"{plan.where}.hostname", f"{svc.hostname!r} is not a DNS label; dropped")
        if svc.init:
            # The pause container becomes PID 1 and reaps zombies, which is what `init: true` is for.
            pod["shareProcessNamespace"] = True
        if self.kube.image_pull_secrets:
            pod["imagePullSecrets"] = [{"name": n} for n in self.kube.image_pull_secrets]
        # native sidecars first (a proxy or log forwarder is up before the rest starts), then the
        # dependency waits, then the profile's init containers
        inits = [self._extra(plan, c, "sidecars", i, sidecar=True) for i, c in enumerate(plan.override.sidecars)]
        inits += self._waits(plan)
        inits += [self._extra(plan, c, "init_containers", i, sidecar=False)
                  for i, c in enumerate(plan.override.init_containers)]
        seen = {plan.name}
        for i, c in enumerate(inits):
            if c["name"] in seen:
                field_name = "sidecars" if c.get("restartPolicy") else "init_containers"
                raise self.profile_error(f"{plan.where}.{field_name}", f"container name {c['name']!r} is already "
                                                                        "used in the pod")
            seen.add(c["name"])
        if inits:
            pod["initContainers"] = inits
        pod["containers"] = [container]
        pod.update(self._placement(plan))
        pod_security = self._pod_security(plan, volumes)
        if pod_security:
            pod["securityContext"] = pod_security
        if delay:
            # The grace period counts from the start of the preStop hook: the app keeps its own time
            # to stop (stop_grace_period, else Compose's 10 s) after the delay.
            own = (k.seconds(svc.stop_grace_period, minimum=0) if svc.stop_grace_period is not None
                   else COMPOSE_STOP_GRACE)
            pod["terminationGracePeriodSeconds"] = delay + own
        elif svc.stop_grace_period is not None:
            pod["terminationGracePeriodSeconds"] = k.seconds(svc.stop_grace_period, minimum=0)
        if volumes:
            pod["volumes"] = volumes
        return pod

    def _shutdown_delay(self, plan: _Plan) -> int:
        """The preStop sleep of the service's main container, in seconds (0: none). Only pods that a
        Service sends traffic to get one: a long-running workload with ports."""
        own = plan.override.shutdown_delay
        chosen = own if own is not None else self.target.defaults.shutdown_delay
        where = f"{plan.where}.shutdown_delay" if own is not None else "defaults.shutdown_delay"
        if plan.kind not in SERVED_KINDS or not plan.ports:
            if own:  # asked for this very service, where nothing would drain
                why = (f"this {plan.kind} gets no Service" if plan.kind not in SERVED_KINDS
                       else "the service has no ports, so no Service sends it traffic")
                raise self.profile_error(where, f"delays the stop of pods behind a Service; {why}")
            return 0
        delay = DEFAULT_SHUTDOWN_DELAY if chosen is None else int(chosen)
        if delay and not self._sleep_action():
            since = "{}.{}".format(*SLEEP_ACTION_SINCE)
            if chosen is not None:
                raise self.profile_error(where, f"needs Kubernetes {since} or later (the preStop sleep action); "
                                                f"the target is {self.kube.version}")
            if not self.old_version_noted:
                self.old_version_noted = True
                self.note("kubernetes.version", f"{self.kube.version}: no preStop drain delay (the sleep action "
                                                f"needs {since}): a stopping pod may still get new connections "
                                                "until every node has dropped its endpoint")
            return 0
        return delay

    def _sleep_action(self) -> bool:
        """Whether the target version runs a preStop `sleep` (an unreadable version: assume current)."""
        match = re.match(r"^v?(\d+)\.(\d+)", self.kube.version)
        return match is None or (int(match.group(1)), int(match.group(2))) >= SLEEP_ACTION_SINCE

    def _extra(self, plan: _Plan, c: Any, field_name: str, index: int, *, sidecar: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"name": c.name, "image": c.image}
        if sidecar:
            out["restartPolicy"] = "Always"  # a native sidecar: started before, runs beside the main container
        if c.command is not None:
            out["command"] = [k.escape_dollar(a) for a in c.command]
        if c.args is not None:
            out["args"] = [k.escape_dollar(a) for a in c.args]
        if c.env:
            out["env"] = [{"name": key, "value": value} for key, value in c.env.items()]
        if c.ports:
            out["ports"] = [{"containerPort": port, "protocol": "TCP"} for port in c.ports]
        return out

    def _placement(self, plan: _Plan) -> dict[str, Any]:
        """Where the pods may run: Compose's `deploy.placement` (Swarm constraints become required node
        affinity, `spread` preferences soft topology spread) and the profile's `placement` (spread,
        anti-affinity), which wins where both say something."""
        placement = plan.override.placement
        swarm = plan.svc.deploy.placement
        if placement is not None and plan.kind not in ("Deployment", "StatefulSet"):
            raise self.profile_error(f"{plan.where}.placement", f"spreads replicas of a Deployment or StatefulSet "
                                                                f"(this service is a {plan.kind})")
        selector = {"matchLabels": self.pod_selector(plan, workload=True)}
        out: dict[str, Any] = {}
        affinity: dict[str, Any] = {}
        where = f"{plan.where}.deploy.placement"
        if swarm is not None:
            terms = [t for i, c in enumerate(swarm.constraints)
                     if (t := self._node_constraint(c, f"{where}.constraints[{i}]")) is not None]
            if terms:
                affinity["nodeAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": terms}]}}
        spread = list(placement.spread) if placement is not None else []
        if swarm is not None and swarm.preferences:
            if plan.kind in ("Deployment", "StatefulSet"):
                for i, pref in enumerate(swarm.preferences):
                    key = pref.removeprefix("node.labels.")
                    if not pref.startswith("node.labels.") or not k.annotation_key_ok(key):
                        self.warn(f"{where}.preferences[{i}]", f"spread over {pref!r} has no Kubernetes "
                                                               "equivalent (only node labels); dropped")
                    elif key not in spread:
                        spread.append(key)
            else:
                self.warn(f"{where}.preferences", f"spreading applies to replicas; a {plan.kind} has none to spread")
        if spread:
            skew = placement.max_skew if placement is not None else 1
            unsatisfiable = placement.when_unsatisfiable if placement is not None else "ScheduleAnyway"
            out["topologySpreadConstraints"] = [
                {"maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": unsatisfiable, "labelSelector": selector}
                for key in spread]
        anti = placement.anti_affinity if placement is not None else None
        if anti is None and swarm is not None and swarm.max_replicas_per_node is not None:
            if swarm.max_replicas_per_node == 1 and plan.kind in ("Deployment", "StatefulSet"):
                anti = "required"  # one per node, exactly
            else:
                self.warn(f"{where}.max_replicas_per_node", f"{swarm.max_replicas_per_node} per node has no "
                                                            "Kubernetes equivalent but 1 (anti-affinity); dropped")
        if anti == "required":
            affinity["podAntiAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": selector, "topologyKey": "kubernetes.io/hostname"}]}
        elif anti == "preferred":
            affinity["podAntiAffinity"] = {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {"labelSelector": selector,
                                                    "topologyKey": "kubernetes.io/hostname"}}]}
        if affinity:
            out["affinity"] = affinity
        return out

    def _node_constraint(self, text: str, where: str) -> dict[str, Any] | None:
        """One Swarm constraint as a node selector requirement, or None (with a warning)."""
        match = SWARM_CONSTRAINT.match(text)
        if match is None:
            self.warn(where, f"{text!r} is not a Swarm constraint (`node.labels.KEY == VALUE`); dropped")
            return None
        attr, op, value = match.group("attr"), match.group("op"), match.group("value")
        equal = op == "=="
        if attr == "node.role":
            if value not in ("manager", "worker"):
                self.warn(where, f"{text!r}: a node role is manager or worker; dropped")
                return None
            on_control_plane = equal == (value == "manager")
            self.note(where, f"{text!r}: {'on' if on_control_plane else 'off'} control-plane nodes "
                             "(node-role.kubernetes.io/control-plane)")
            return {"key": "node-role.kubernetes.io/control-plane",
                    "operator": "Exists" if on_control_plane else "DoesNotExist"}
        if attr.startswith("node.labels."):
            key = attr.removeprefix("node.labels.")
            if not k.annotation_key_ok(key):
                self.warn(where, f"{text!r}: {key!r} is not a valid Kubernetes label key; dropped")
                return None
        elif attr in NODE_ATTRIBUTE_LABELS:
            key = NODE_ATTRIBUTE_LABELS[attr]
            if attr == "node.platform.arch":
                value = ARCHITECTURES.get(value.lower(), value.lower())
            elif attr == "node.platform.os":
                value = value.lower()
        else:
            self.warn(where, f"{text!r}: {attr} has no Kubernetes node label; dropped")
            return None
        if len(value) > 63 or not k.LABEL_VALUE.match(value):
            self.warn(where, f"{text!r}: {value!r} is not a valid label value; dropped")
            return None
        return {"key": key, "operator": "In" if equal else "NotIn", "values": [value]}

    def _image(self, plan: _Plan) -> str:
        svc = plan.svc
        if svc.build is None:
            if not svc.image:
                raise InputError("has neither image nor build", field=plan.where)
            built = self.built_images.get(svc.image)
            # A service that runs the image another service builds (a migration next to its app)
            # runs what that service pushes.
            return built if built is not None else svc.image
        image = k.built_image(self.stack.name, svc.name, svc.image, self.kube.registry, self.kube.image_tag)
        if not self.kube.registry:
            self.warn(f"{plan.where}.build", f"is built locally and the profile sets no kubernetes.registry: the "
                                             f"cluster must already have the image {image}")
        if image.endswith(":latest"):
            self.note(f"{plan.where}.image", "uses the tag latest; pin kubernetes.image_tag so a rollout is "
                                             "repeatable")
        return image

    def _pull_policy(self, plan: _Plan) -> str | None:
        policy = self._effective(plan, "pull_policy") or self.kube.image_pull_policy
        if policy:
            return str(policy)
        return {"always": "Always", "never": "Never", "missing": "IfNotPresent",
                "if_not_present": "IfNotPresent"}.get(plan.svc.pull_policy or "")

    def _env(self, plan: _Plan, env: list[_EnvEntry], container: dict[str, Any], config_sums: dict[str, str],
             secret_sums: dict[str, str]) -> None:
        config = {e.data_key: e.value for e in env if not e.secret and e.data_key}
        literal = [e for e in env if not e.secret and not e.data_key]
        secret = [e for e in env if e.secret]
        env_list: list[dict[str, Any]] = []
        for e in literal:
            env_list.append({"name": e.key, "value": k.escape_dollar(e.value)})
        for e in secret:
            env_list.append({"name": e.key, "valueFrom": {"secretKeyRef": {"name": self.secret_name,
                                                                         "key": e.data_key}}})
            secret_sums[f"Secret/{self.secret_name}/{e.data_key}"] = self.env_secret_data[e.data_key][1]
        if config:
            name = self._claim_name("ConfigMap", k.with_suffix(plan.name, "env", 253), plan.where)
            self.emit("ConfigMap", name, {"data": dict(sorted(config.items()))}, wave=WAVE_CONFIG,
                      label_name=plan.name)
            container["envFrom"] = [{"configMapRef": {"name": name}}]
            for key, value in config.items():
                config_sums[f"ConfigMap/{name}/{key}"] = k.sha256(value)
        if env_list:
            container["env"] = env_list

    def _resources(self, plan: _Plan) -> dict[str, Any]:
        deploy = plan.svc.deploy
        out: dict[str, Any] = {}
        for key, res in (("limits", deploy.limits), ("requests", deploy.reservations)):
            part = {}
            if res.cpus:
                part["cpu"] = k.cpu_quantity(res.cpus)
            if res.memory:
                part["memory"] = k.memory_quantity(res.memory)
            if part:
                out[key] = part
        if deploy.limits.pids or deploy.reservations.pids:
            self.warn(f"{plan.where}.deploy.resources.limits.pids", "per-pod PID limits are a kubelet setting; "
                                                                    "not carried over")
        return out

    def _container_security(self, plan: _Plan) -> dict[str, Any]:
        svc = plan.svc
        out: dict[str, Any] = {}
        caps = {key: names for key, names in (("add", capabilities(svc.cap_add)), ("drop", capabilities(svc.cap_drop)))
                if names}
        if caps:
            out["capabilities"] = caps
        if svc.privileged:
            out["privileged"] = True
            self.warn(f"{plan.where}.privileged", "the container runs privileged; namespaces that enforce the baseline "
                                                  "or restricted Pod Security Standard reject the pod")
        if svc.read_only:
            out["readOnlyRootFilesystem"] = True
        return out

    def _pod_security(self, plan: _Plan, volumes: list[dict[str, Any]]) -> dict[str, Any]:
        out = self._run_as(plan, volumes)
        sysctls = self._sysctls(plan)
        if sysctls:
            out["sysctls"] = sysctls
        return out

    def _sysctls(self, plan: _Plan) -> list[dict[str, str]]:
        out = []
        for name, value in sorted(plan.svc.sysctls.items()):
            if name not in SAFE_SYSCTLS:
                self.warn(f"{plan.where}.sysctls.{name}", "is not a safe sysctl: the kubelet must allow it with "
                                                          "--allowed-unsafe-sysctls, else the pod is rejected (as it "
                                                          "is in namespaces that enforce the baseline or restricted "
                                                          "Pod Security Standard)")
            out.append({"name": name, "value": value})
        return out

    def _run_as(self, plan: _Plan, volumes: list[dict[str, Any]]) -> dict[str, Any]:
        user = plan.svc.user
        if not user:
            return {}
        uid, _, gid = user.partition(":")
        out: dict[str, Any] = {}
        if uid.isdigit():
            out["runAsUser"] = int(uid)
        else:
            self.warn(f"{plan.where}.user", f"{uid!r} is a user name; Kubernetes needs a numeric UID (set "
                                            "user: \"<uid>:<gid>\" or a numeric USER in the image)")
        if gid.isdigit():
            out["runAsGroup"] = int(gid)
        elif gid:
            self.warn(f"{plan.where}.user", f"group {gid!r} is a name; Kubernetes needs a numeric GID")
        if "runAsUser" in out and out["runAsUser"] != 0:
            out["runAsNonRoot"] = True
            if any("persistentVolumeClaim" in v or "emptyDir" in v for v in volumes) or any(
                    how == "template" for how in plan.claims.values()):
                # Volumes are created root-owned; a non-root process can write them only via fsGroup.
                out["fsGroup"] = out.get("runAsGroup", out["runAsUser"])
                out["fsGroupChangePolicy"] = "OnRootMismatch"
        return out

    # -- probes --------------------------------------------------------------------------------
    def _probes(self, plan: _Plan) -> dict[str, Any]:
        hc = plan.svc.healthcheck
        liveness = self._effective(plan, "liveness")
        out: dict[str, Any] = {}
        handler = None
        if hc is not None and hc.argv is not None:
            handler = self._probe_handler(hc.argv, plan)
            timing = {"periodSeconds": k.seconds(hc.interval), "timeoutSeconds": k.seconds(hc.timeout),
                      "failureThreshold": max(1, hc.retries)}
            out["readinessProbe"] = {**handler, **timing, "successThreshold": 1}
            if hc.start_period > 0:
                # During start_period the probe runs every start_interval (Compose spec; Docker 25+). Left
                # unset, it runs every START_INTERVAL here rather than every `interval`: a pod is Ready
                # within ~2 s of its app answering, not ~interval later, and a rolling update or rollback
                # of N pods waits N times that (measured on the real node: 11 s → 3 s per api pod).
                period = min(k.seconds(hc.interval), k.seconds(hc.start_interval or START_INTERVAL))
                budget = -(-k.seconds(hc.start_period) // period) + max(1, hc.retries)
                out["startupProbe"] = {**handler, "periodSeconds": period, "timeoutSeconds": k.seconds(hc.timeout),
                                       "failureThreshold": budget}
        if liveness is not None:
            if liveness.path is not None:
                port = liveness.port or (plan.ports[0].target if plan.ports else None)
                if port is None:
                    raise self.profile_error(f"services.{plan.svc.name}.liveness.port",
                                             "is required: the service has no ports")
                live = {"httpGet": {"path": liveness.path, "port": port}}
            elif handler is not None:
                live = handler
            else:
                raise self.profile_error(f"services.{plan.svc.name}.liveness", "the service has no health check; "
                                         "give liveness a path (and port)")
            period = k.seconds(hc.interval) if hc else 10
            timeout = k.seconds(hc.timeout) if hc else 1
            out["livenessProbe"] = {**live, "periodSeconds": period, "timeoutSeconds": timeout,
                                    "failureThreshold": max(3, hc.retries if hc else 3)}
        return {key: out[key] for key in ("livenessProbe", "readinessProbe", "startupProbe") if key in out}

    def _probe_handler(self, argv: tuple[str, ...], plan: _Plan) -> dict[str, Any]:
        http = k.http_check(argv)
        if http is not None:
            get: dict[str, Any] = {"path": http.path, "port": http.port}
            if http.scheme != "HTTP":
                get["scheme"] = http.scheme
            if http.headers:
                get["httpHeaders"] = [{"name": n, "value": v} for n, v in http.headers]
            return {"httpGet": get}
        return {"exec": {"command": list(argv)}}

    def _waits(self, plan: _Plan) -> list[dict[str, Any]]:
        """An init container per `service_healthy` dependency, waiting until its Service accepts a
        TCP connection: a ClusterIP Service only forwards to ready pods, and readiness is the
        dependency's health check, so an open port means the dependency is healthy."""
        out = []
        for dep in plan.svc.depends_on:
            if dep.condition != "service_healthy":
                continue
            other = self.plans.get(dep.service)
            where = f"{plan.where}.depends_on.{dep.service}"
            if other is None:
                continue
            if not dep.required:
                self.note(where, "optional dependency (required: false): not waited for")
                continue
            if other.kind in ("Job", "CronJob") or not other.ports:
                why = "it runs as a " + other.kind if other.kind in ("Job", "CronJob") else "it has no port"
                self.warn(where, f"service_healthy cannot be waited for ({why}); {plan.name} starts without "
                                 "waiting and relies on restarts")
                continue
            port = next((p for p in other.ports if p.protocol == "TCP"), None)
            if port is None:
                self.warn(where, f"service_healthy cannot be waited for (it has no TCP port); {plan.name} starts "
                                 "without waiting and relies on restarts")
                continue
            target = f"{other.name}:{port.target}"
            script = (f"until nc -z -w 2 {other.name} {port.target}; do echo 'waiting for {target}'; "
                      "sleep 2; done")
            out.append({
                "name": k.with_suffix("wait-for", other.name),
                "image": self.kube.wait_image,
                "command": ["sh", "-c", script],
                "resources": {"limits": {"cpu": "100m", "memory": "32Mi"},
                              "requests": {"cpu": "10m", "memory": "16Mi"}},
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                    "readOnlyRootFilesystem": True, "runAsNonRoot": True, "runAsUser": 65534},
            })
        return out

    # -- mounts --------------------------------------------------------------------------------
    def _volume_name(self, text: str) -> str:
        return k.dns_label(text) or f"v-{k.short_hash(text)}"

    def _mounts(self, plan: _Plan, claims: Mapping[str, str], volumes: list[dict[str, Any]],
                mounts: list[dict[str, Any]], config_sums: dict[str, str]) -> None:
        svc = plan.svc
        names: set[str] = set()

        def add_volume(base: str, body: dict[str, Any]) -> str:
            name = self._volume_name(base)
            if name in names:
                name = k.with_suffix(name, k.short_hash(base, str(len(names)), length=6))
            names.add(name)
            volumes.append({"name": name, **body})
            return name

        added_claims: dict[str, str] = {}
        for i, mount in enumerate(svc.volumes):
            where = f"{plan.where}.volumes[{i}]"
            entry: dict[str, Any] = {"mountPath": mount.target}
            if mount.type == "volume":
                if mount.source is None:
                    name = add_volume(f"anon-{i}", {"emptyDir": {}})
                elif plan.claims.get(mount.source) == "template":
                    name = self._volume_name(mount.source)
                    names.add(name)
                else:
                    if mount.source not in added_claims:
                        added_claims[mount.source] = add_volume(
                            mount.source, {"persistentVolumeClaim": {"claimName": claims[mount.source]}})
                    name = added_claims[mount.source]
                if mount.subpath:
                    entry["subPath"] = mount.subpath
            elif mount.type == "tmpfs":
                empty: dict[str, Any] = {"medium": "Memory"}
                if mount.tmpfs_size:
                    empty["sizeLimit"] = k.memory_quantity(mount.tmpfs_size)
                name = add_volume(f"tmpfs-{i}", {"emptyDir": empty})
            elif mount.type == "bind":
                bound = self._bind(plan, mount, where, add_volume, config_sums)
                if bound is None:
                    continue
                name, extra = bound
                entry.update(extra)
            else:
                self.warn(where, f"a {mount.type} mount has no Kubernetes equivalent; dropped")
                continue
            mount_entry = {"name": name, **entry}
            if mount.read_only:
                mount_entry["readOnly"] = True
            mounts.append(mount_entry)

    def _bind(self, plan: _Plan, mount: m.Mount, where: str, add_volume: Any,
              config_sums: dict[str, str]) -> tuple[str, dict[str, Any]] | None:
        source = mount.source or ""
        info = self.host.get(source)
        shown = info.display if info else source
        if info is None:
            self.warn(where, f"bind mount of {shown}: not found on this machine; dropped")
            return None
        if info.kind == "host":
            if plan.kind == "DaemonSet":
                name = add_volume(f"host-{k.config_key(source).strip('_.') or 'root'}", {"hostPath": {"path": source}})
                return name, {}
            hint = ("; set the TZ environment variable instead" if source in ("/etc/localtime", "/etc/timezone")
                    else "")
            self.warn(where, f"bind mount of the host path {shown} cannot be carried over: a {plan.kind}'s pods run "
                             f"on any node (only a DaemonSet gets hostPath mounts); dropped{hint}")
            return None
        if info.kind in ("missing", "too_large"):
            self.warn(where, f"bind mount of {shown} cannot be carried over: {info.reason}; dropped")
            return None
        data = dict(info.files)
        size = sum(len(v) for v in data.values())
        if size > CONFIGMAP_MAX:
            self.warn(where, f"bind mount of {shown} cannot be carried over: {size} bytes is more than a ConfigMap "
                             "holds (1 MiB); build it into the image; dropped")
            return None
        base = source.rstrip("/").rsplit("/", 1)[-1] or "root"
        name = self._claim_name("ConfigMap", k.with_suffix(plan.name, k.dns_label(base) or "files", 253),
                                f"{where}")
        if info.kind == "file":
            key = k.config_key(base)
            self.emit("ConfigMap", name, _config_data({key: data.get("", b"")}), wave=WAVE_CONFIG,
                      label_name=plan.name)
            config_sums[f"ConfigMap/{name}/{key}"] = k.sha256(data.get("", b""))
            vol = add_volume(f"{base}-file", {"configMap": {"name": name}})
            return vol, {"subPath": key}
        keys: dict[str, bytes] = {}
        items = []
        for rel in sorted(data):
            key = k.config_key(rel.replace("/", "__"))
            keys[key] = data[rel]
            items.append({"key": key, "path": rel})
            config_sums[f"ConfigMap/{name}/{key}"] = k.sha256(data[rel])
        self.emit("ConfigMap", name, _config_data(keys), wave=WAVE_CONFIG, label_name=plan.name)
        body: dict[str, Any] = {"name": name}
        if any("/" in rel or k.config_key(rel) != rel for rel in data):
            body["items"] = items
        vol = add_volume(f"{base}-dir", {"configMap": body})
        return vol, {}

    def _file_mounts(self, plan: _Plan, files: Mapping[tuple[str, str], tuple[str, str, str]],
                     volumes: list[dict[str, Any]], mounts: list[dict[str, Any]], config_sums: dict[str, str],
                     secret_sums: dict[str, str]) -> None:
        """Compose `secrets:` at /run/secrets/<name> (one projected volume) and `configs:` at /<name>."""
        svc = plan.svc
        projected: list[dict[str, Any]] = []
        used_names = {v["name"] for v in volumes}
        for what, refs in (("secret", svc.secrets), ("config", svc.configs)):
            for i, ref in enumerate(refs):
                where = f"{plan.where}.{what}s[{i}]"
                found = files.get((what, ref.source))
                if found is None:
                    self.warn(where, f"{what} {ref.source!r} is not defined at the top level; dropped")
                    continue
                obj_kind, obj_name, key = found
                fingerprint = self.file_fingerprints[(what, ref.source)]
                (secret_sums if what == "secret" else config_sums)[f"{obj_kind}/{obj_name}/{key}"] = fingerprint
                if ref.uid or ref.gid:
                    self.warn(where, "uid/gid are not carried over (Kubernetes sets file ownership per pod with "
                                     "fsGroup)")
                mode = k.FileMode(ref.mode if ref.mode is not None else 0o444)
                target = ref.target or (ref.source if what == "secret" else f"/{ref.source}")
                if what == "secret" and not target.startswith("/"):
                    target = f"/run/secrets/{target}"
                ref_key = "secret" if obj_kind == "Secret" else "configMap"
                if what == "secret" and target.startswith("/run/secrets/"):
                    projected.append({ref_key: {"name": obj_name, "items": [
                        {"key": key, "path": target.removeprefix("/run/secrets/"), "mode": mode}]}})
                    continue
                vol = self._volume_name(f"{what}-{ref.source}")
                if vol in used_names:
                    vol = k.with_suffix(vol, k.short_hash(where, length=6))
                used_names.add(vol)
                name_key = "secretName" if obj_kind == "Secret" else "name"
                volumes.append({"name": vol, ref_key: {name_key: obj_name, "items": [
                    {"key": key, "path": key, "mode": mode}]}})
                mounts.append({"name": vol, "mountPath": target, "subPath": key, "readOnly": True})
        if projected:
            vol = "run-secrets" if "run-secrets" not in used_names else k.with_suffix("run-secrets", "x")
            volumes.append({"name": vol, "projected": {"sources": projected}})
            mounts.append({"name": vol, "mountPath": "/run/secrets", "readOnly": True})

    # -- Services, Ingress, HPA, PDB -----------------------------------------------------------
    def _headless_name(self, plan: _Plan) -> str:
        return k.with_suffix(plan.name, "headless")

    def _services(self, plan: _Plan) -> None:
        svc_type = self._effective(plan, "service_type") or "ClusterIP"
        if plan.kind == "StatefulSet":
            headless = self._claim_name("Service", self._headless_name(plan), plan.where)
            spec: dict[str, Any] = {"clusterIP": "None", "publishNotReadyAddresses": True,
                                    "selector": self.selector(plan.name)}
            if plan.ports:
                spec["ports"] = self._service_ports(plan, "ClusterIP")
            self.emit("Service", headless, {"spec": spec}, wave=WAVE_CONFIG, label_name=plan.name)
        if not plan.ports:
            if svc_type != "ClusterIP":
                self.warn(f"services.{plan.svc.name}.service_type", "the service has no ports; no Service")
            return
        spec = {"type": svc_type, "selector": self.pod_selector(plan), "ports": self._service_ports(plan, svc_type)}
        self.emit("Service", plan.name, {"spec": spec}, wave=WAVE_CONFIG, label_name=plan.name)
        for net in plan.svc.networks:
            for alias in net.aliases:
                name = k.service_name(alias)
                where = f"{plan.where}.networks.{net.name}.aliases"
                if name is None or name == plan.name:
                    if name is None:
                        self.warn(where, f"alias {alias!r} is not a valid Service name; dropped")
                    continue
                if ("Service", name) in self.names:
                    self.warn(where, f"alias {alias!r} is already a Service name; dropped")
                    continue
                self.names[("Service", name)] = plan.where
                alias_spec = {"type": "ClusterIP", "selector": self.pod_selector(plan),
                              "ports": self._service_ports(plan, "ClusterIP")}
                self.emit("Service", name, {"spec": alias_spec}, wave=WAVE_CONFIG, label_name=plan.name,
                          annotations={A_SERVICE: plan.svc.name})

    def _service_ports(self, plan: _Plan, svc_type: str) -> list[dict[str, Any]]:
        """A port per container port, at the same number (what other Compose services connect to).
        NodePort: the published port becomes the nodePort when it is in the node-port range.
        LoadBalancer: a published port that differs from the container port is added too."""
        ports: list[dict[str, Any]] = []
        for p in plan.ports:
            entry: dict[str, Any] = {"name": p.name, "port": p.target, "targetPort": p.name, "protocol": p.protocol}
            if p.app_protocol:
                entry["appProtocol"] = p.app_protocol
            if svc_type == "NodePort" and p.published:
                if 30000 <= p.published[0] <= 32767:
                    entry["nodePort"] = p.published[0]
                else:
                    self.note(f"{plan.where}.ports", f"published port {p.published[0]} is outside the node-port "
                                                     "range 30000-32767; Kubernetes picks the nodePort")
            ports.append(entry)
        if svc_type == "LoadBalancer":
            used = {(p.target, p.protocol) for p in plan.ports}
            names = {e["name"] for e in ports}
            for p in plan.ports:
                for published in p.published:
                    name = k.port_name(published, p.protocol, f"pub-{published}")
                    if (published, p.protocol) in used or name in names:
                        continue
                    used.add((published, p.protocol))
                    names.add(name)
                    ports.append({"name": name, "port": published, "targetPort": p.name, "protocol": p.protocol})
        return ports

    def _ingress(self, plan: _Plan, wave: int) -> None:
        ingress = plan.override.ingress
        if ingress is None:
            return
        where = f"services.{plan.svc.name}.ingress"
        if plan.kind in ("Job", "CronJob") or not plan.ports:
            raise self.profile_error(where, f"the service has no ports to route to ({plan.kind})")
        port = plan.ports[0]
        if ingress.port is not None:
            match = [p for p in plan.ports if p.target == ingress.port or ingress.port in p.published]
            if not match:
                raise self.profile_error(f"{where}.port", f"{ingress.port} is not a port of the service (ports: "
                                         f"{', '.join(str(p.target) for p in plan.ports)})")
            port = match[0]
        backend = {"service": {"name": plan.name, "port": {"name": port.name}}}
        spec: dict[str, Any] = {}
        class_name = ingress.class_name or self.kube.ingress_class
        if class_name:
            spec["ingressClassName"] = class_name
        spec["rules"] = [{"host": host, "http": {"paths": [{"path": ingress.path, "pathType": "Prefix",
                                                            "backend": backend}]}} for host in ingress.hosts]
        if ingress.tls_secret:
            spec["tls"] = [{"hosts": list(ingress.hosts), "secretName": ingress.tls_secret}]
        if plan.svc.networks and all(self._internal(n.name) for n in plan.svc.networks):
            self.warn(where, "the service is only on internal networks; its NetworkPolicy blocks the ingress "
                             "controller")
        self.emit("Ingress", plan.name, {"spec": spec}, wave=wave, label_name=plan.name)

    def _autoscaling(self, plan: _Plan, wave: int) -> None:
        hpa = plan.override.autoscaling
        if hpa is None:
            return
        where = f"services.{plan.svc.name}.autoscaling"
        if plan.kind not in ("Deployment", "StatefulSet"):
            raise self.profile_error(where, f"only a Deployment or StatefulSet can autoscale (this service is a "
                                            f"{plan.kind})")
        deploy = plan.svc.deploy
        metrics = []
        cpu = hpa.cpu if hpa.cpu is not None or hpa.memory is not None else 80
        for resource, target, request in (("cpu", cpu, deploy.reservations.cpus or deploy.limits.cpus),
                                          ("memory", hpa.memory, deploy.reservations.memory or deploy.limits.memory)):
            if target is None:
                continue
            if not request:
                explicit = hpa.memory if resource == "memory" else hpa.cpu
                raise self.profile_error(f"{where}.{resource}" if explicit is not None else where,
                                         f"utilization is measured against the {resource} request, and the service "
                                         f"has none (set services.{plan.svc.name}.resources.requests)")
            metrics.append({"type": "Resource", "resource": {"name": resource, "target": {
                "type": "Utilization", "averageUtilization": target}}})
        scaled = ({"apiVersion": API_VERSIONS["Rollout"], "kind": "Rollout"} if self.argo(plan)
                  else {"apiVersion": "apps/v1", "kind": plan.kind})
        spec: dict[str, Any] = {
            "scaleTargetRef": {**scaled, "name": plan.name},
            "minReplicas": hpa.min_replicas, "maxReplicas": hpa.max_replicas, "metrics": metrics}
        behavior = {}
        for key, rules in (("scaleUp", hpa.scale_up), ("scaleDown", hpa.scale_down)):
            if rules is None:
                continue
            part: dict[str, Any] = {}
            if rules.stabilization_seconds is not None:
                part["stabilizationWindowSeconds"] = rules.stabilization_seconds
            if rules.select_policy:
                part["selectPolicy"] = rules.select_policy
            if rules.policies:
                part["policies"] = [{"type": p.type, "value": p.value, "periodSeconds": p.period_seconds}
                                    for p in rules.policies]
            behavior[key] = part
        if behavior:
            spec["behavior"] = behavior
        self.emit("HorizontalPodAutoscaler", plan.name, {"spec": spec}, wave=wave, label_name=plan.name)

    def _pdb(self, plan: _Plan, wave: int) -> None:
        pdb = plan.override.pdb
        if pdb is None:
            return
        where = f"services.{plan.svc.name}.pdb"
        if plan.kind not in ("Deployment", "StatefulSet"):
            raise self.profile_error(where, f"a disruption budget needs a Deployment or StatefulSet (this service "
                                            f"is a {plan.kind})")
        spec: dict[str, Any] = {}
        if pdb.min_available is not None:
            spec["minAvailable"] = pdb.min_available
            floor = plan.override.autoscaling.min_replicas if plan.override.autoscaling else (
                plan.svc.deploy.replicas if plan.svc.deploy.replicas is not None else 1)
            if isinstance(pdb.min_available, int) and pdb.min_available >= floor:
                self.warn(f"{where}.min_available", f"{pdb.min_available} with {floor} replica(s) blocks every "
                                                     "voluntary eviction: node drains will hang")
        else:
            spec["maxUnavailable"] = pdb.max_unavailable
            if pdb.max_unavailable in (0, "0%"):
                self.warn(f"{where}.max_unavailable", "0 blocks every voluntary eviction: node drains will hang")
        spec["selector"] = {"matchLabels": self.selector(plan.name)}
        self.emit("PodDisruptionBudget", plan.name, {"spec": spec}, wave=wave, label_name=plan.name)

    # -- network policies ----------------------------------------------------------------------
    def _internal(self, network: str) -> bool:
        for net in self.stack.networks:
            if net.name == network:
                return net.internal
        return False

    def _network_policies(self) -> None:
        """An `internal` Compose network: its members that are on no other, non-internal network may
        talk only to members of their internal networks (plus DNS), and only members may reach them."""
        if not self.kube.network_policies:
            return
        for net in self.stack.networks:
            if not net.internal:
                continue
            members = sorted(p.name for p in self.plans.values() if any(n.name == net.name for n in p.svc.networks))
            member_set = set(members)
            isolated = sorted(p.name for p in self.plans.values()
                              if p.name in member_set and all(self._internal(n.name) for n in p.svc.networks))
            if not isolated:
                continue
            peers = {"podSelector": {"matchLabels": {L_INSTANCE: self.stack_label}, "matchExpressions": [
                {"key": L_NAME, "operator": "In", "values": members}]}}
            spec = {
                "podSelector": {"matchLabels": {L_INSTANCE: self.stack_label}, "matchExpressions": [
                    {"key": L_NAME, "operator": "In", "values": isolated}]},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [peers]}],
                "egress": [{"to": [peers]},
                           {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}],
            }
            name = self._claim_name("NetworkPolicy", k.with_suffix(k.dns_label(net.name) or "network", "internal"),
                                    f"networks.{net.name}")
            self.emit("NetworkPolicy", name, {"spec": spec}, wave=WAVE_CONFIG, label_name=self.stack_label,
                      annotations={A_SERVICE: f"network:{net.name}"})


def capabilities(names: Sequence[str]) -> list[str]:
    """Compose capability names → Kubernetes ones (`cap_sys_time` → `SYS_TIME`), first occurrence kept."""
    out: list[str] = []
    for name in names:
        cap = name.strip().upper().removeprefix("CAP_")
        if cap and cap not in out:
            out.append(cap)
    return out


def _pure_reference(template: str | None) -> str | None:
    """`${NAME}`, `$NAME`, `${NAME:?msg}`, `${NAME:-default}` → NAME: the value is that variable."""
    if template is None:
        return None
    match = re.fullmatch(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(?::?[-?])[^}]*)?\}|([A-Za-z_][A-Za-z0-9_]*))",
                         template.strip())
    if not match:
        return None
    return match.group(1) or match.group(2)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _config_data(entries: Mapping[str, bytes]) -> dict[str, Any]:
    """`data` for UTF-8 text, `binaryData` (base64) for anything else."""
    text: dict[str, str] = {}
    binary: dict[str, str] = {}
    for key, value in sorted(entries.items()):
        try:
            text[key] = value.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = _b64(value)
    out: dict[str, Any] = {}
    if text:
        out["data"] = text
    if binary:
        out["binaryData"] = binary
    return out
