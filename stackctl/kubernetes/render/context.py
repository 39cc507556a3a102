"""The state one render shares across its parts: the inputs, the plans, the objects emitted so far,
the names taken, and the few helpers every part uses (labels, selectors, `emit`, warnings).

One `Context` per `render()` call; the parts (plan, config, storage, workloads, podspec, network,
scaling) are functions over it, so each reads as the Kubernetes topic it maps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stackctl import model as m
from stackctl.errors import ProfileError
from stackctl.kubernetes import names as k
from stackctl.kubernetes.inputs import HostPath, SecretInputs, Target
from stackctl.kubernetes.labels import (
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
from stackctl.kubernetes.settings import ServiceSettings, resolve

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
WAVE_NAMESPACE, WAVE_CONFIG, WAVE_WORKLOADS = 0, 1, 2
SERVED_KINDS = ("Deployment", "StatefulSet", "DaemonSet")  # long-running pods a Service sends traffic to


# ---------------------------------------------------------------------------------------------
# Plans: the decisions per service, made before any object is built
# ---------------------------------------------------------------------------------------------
@dataclass
class Port:
    """A container port of a planned service, with the host ports Compose publishes it on."""

    target: int
    protocol: str  # TCP | UDP | SCTP
    name: str
    app_protocol: str | None = None
    published: list[int] = field(default_factory=list)


@dataclass
class Plan:
    """One service as the renderer plans it, before any object is built."""

    svc: m.Service
    name: str  # the Kubernetes name (Service, workload, container)
    kind: str
    settings: ServiceSettings  # the service's profile settings, defaults merged
    ports: list[Port]
    level: int = 0
    awaited: bool = False  # a dependent waits for this Job to complete
    claims: dict[str, str] = field(default_factory=dict)  # volume → "template" | "claim" | "external"
    # bind mount index → (claim key `bind:<name>`, why it is data, whether it has contents here)
    data_binds: dict[int, tuple[str, str, bool]] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"services.{self.svc.name}"


@dataclass
class EnvEntry:
    """One container environment variable and where it comes from (ConfigMap or Secret)."""

    key: str  # the container variable
    secret: bool
    data_key: str  # key in the ConfigMap or Secret
    value: str  # the value Compose resolved
    store_key: str | None = None  # the store variable the value is (pure reference)


class Context:
    def __init__(self, stack: m.Stack, target: Target, secrets: SecretInputs, host: Mapping[str, HostPath]):
        self.stack = stack
        self.target = target
        self.kube = target.kubernetes
        self.settings = resolve(target.services, target.defaults, file=target.profile_file)
        self.secrets = secrets
        self.host = host
        self.stack_label = k.label_value(stack.name)
        self.namespace = self.kube.namespace
        self.objects: list[dict[str, Any]] = []
        self.warnings: list[m.Warning_] = []
        self.notes: list[m.Warning_] = []
        self.plans: dict[str, Plan] = {}
        self.names: dict[tuple[str, str], str] = {}  # (kind, name) → owner, to refuse collisions
        self.hostnames: dict[str, str] = {}  # a name that resolves to a service in Compose → the service
        self.volumes = {v.name: v for v in stack.volumes}
        self.secret_name = self.claim_name("Secret", k.with_suffix(k.dns_label(stack.name) or "stack", "env"),
                                            "env")
        self.env_secret_data: dict[str, tuple[str, str]] = {}  # data key → (value, fingerprint)
        self.file_fingerprints: dict[tuple[str, str], str] = {}
        self.config_maps: dict[str, str] = {}  # digest of a ConfigMap's data → its name (one per content)
        self.levels: dict[str, int] = {}
        self.sorted_plans: list[Plan] = []
        self.old_version_noted = False
        self.built_images = {svc.image: k.built_image(stack.name, svc.name, svc.image, self.kube.registry,
                                                      self.kube.image_tag)
                             for svc in stack.services if svc.build is not None and svc.image}

    def warn(self, where: str, message: str) -> None:
        self.warnings.append(m.Warning_(where, message))

    def note(self, where: str, message: str) -> None:
        self.notes.append(m.Warning_(where, message))

    def profile_error(self, field_path: str, message: str) -> ProfileError:
        return ProfileError(message, file=self.target.profile_file, field=field_path)

    def claim_name(self, kind: str, name: str, owner: str) -> str:
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

    def colour(self, plan: Plan) -> str | None:
        """Blue-green Deployments are rendered as the first colour; promote picks the colour to deploy
        (`stackctl.kubernetes.bluegreen`), so the render stays the same whatever is live."""
        if plan.kind == "Deployment" and plan.settings.strategy == "blue-green" and not self.argo(plan):
            return FIRST_COLOUR
        return None

    def canary(self, plan: Plan) -> bool:
        """A canary that promote runs itself (a stable and a canary Deployment)."""
        return (plan.kind == "Deployment" and plan.settings.strategy == "canary"
                and not self.argo(plan))

    def argo(self, plan: Plan) -> bool:
        """A canary or blue-green run by Argo Rollouts: the service's Deployment is rendered as a `Rollout`."""
        return plan.kind == "Deployment" and plan.settings.argo_field is not None

    def pod_selector(self, plan: Plan, *, workload: bool = False) -> dict[str, str]:
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
