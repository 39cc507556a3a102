"""The typed settings a profile is read into (frozen dataclasses, no parsing here).

`stackctl.profile.parse_profile` builds them, every error located; `stackctl.kubernetes.settings`
merges a service's own settings with the profile's defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_KUBE_VERSION = "1.35"
DEFAULT_WAIT_IMAGE = "busybox:1.37"


@dataclass(frozen=True)
class ResourceSpec:
    """CPU and memory of one side (limits or requests)."""

    cpus: float | None = None  # cores
    memory: int | None = None  # bytes


@dataclass(frozen=True)
class Resources:
    """A service's `resources:`: limits and requests."""

    limits: ResourceSpec = field(default_factory=ResourceSpec)
    requests: ResourceSpec = field(default_factory=ResourceSpec)

    @property
    def empty(self) -> bool:
        return self.limits == ResourceSpec() and self.requests == ResourceSpec()


@dataclass(frozen=True)
class Ingress:
    """A service's `ingress:`: the hosts and path it is served on."""

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
    """One HPA scaling policy: at most `value` pods or percent per `period_seconds`."""

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
    """A service's `autoscaling:`: a HorizontalPodAutoscaler."""

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
    """One step of a canary rollout."""

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
    """What the profile sets for one service (or, under `defaults:`, for every service)."""

    replicas: int | None = None
    resources: Resources = field(default_factory=Resources)
    strategy: str | None = None
    ingress: Ingress | None = None
    service_type: str | None = None
    # Kubernetes only
    ports: tuple[int, ...] = ()  # what the service listens on, for its Service (replaces the inferred ports)
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
    """`compose:`: which Compose files, env files and profiles make the stack."""

    files: tuple[Path, ...]
    env_files: tuple[Path, ...]
    profiles: tuple[str, ...] = ()
    project_directory: Path | None = None


@dataclass(frozen=True)
class EnvSettings:
    """`env:`: the `.env.example` template and the env file rendered from it."""

    template: Path
    file: Path
    template_set_in: str = ""   # "profiles/x.yaml" when env.template names it, "" for the default
    values: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SecretsSettings:
    """`secrets:`: the encrypted store and how many versions of each secret it keeps."""

    store: Path
    history: int = 10


@dataclass(frozen=True)
class VolumeSettings:
    """Per named volume: the PersistentVolumeClaim it becomes."""

    size: int | None = None  # bytes
    storage_class: str | None = None
    access_mode: str | None = None


@dataclass(frozen=True)
class PreviewSettings:
    """`kubernetes.preview`: how `promote --preview NAME` makes a preview environment."""

    ttl: int | None = None  # seconds until the preview expires (None: 72h, or --ttl)
    generate: tuple[str, ...] = ()  # `@secret` keys each preview gets its own generated value of


@dataclass(frozen=True)
class KubernetesSettings:
    """`kubernetes:`: the cluster side of the profile."""

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
    preview: PreviewSettings = field(default_factory=PreviewSettings)  # `promote --preview`


@dataclass(frozen=True)
class Profile:
    """One `profiles/<name>.yaml`, parsed and checked."""

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
    gitops: GitOpsSettings | None = None

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
# `gitops:` (`stackctl render gitops`): how a profile's Secrets are committed, and the controller
# objects that point at its overlay
# ---------------------------------------------------------------------------------------------
SECRET_PROVIDERS = ("sops", "sealed-secrets", "external-secrets")


@dataclass(frozen=True)
class SecretProvider:
    """How the profile's Secrets are written to Git (never in plaintext); the fields of the chosen
    `provider` only (the others keep their defaults)."""

    provider: str  # one of SECRET_PROVIDERS
    recipients: tuple[str, ...] = ()  # sops: age recipients (age1...)
    cert: Path | None = None  # sealed-secrets: the controller's public certificate (PEM)
    cert_display: str = ""  # as errors show it
    scope: str = "strict"  # sealed-secrets: strict | namespace-wide | cluster-wide
    store: str = ""  # external-secrets: the SecretStore / ClusterSecretStore name
    store_kind: str = "SecretStore"
    key: str = "{namespace}/{secret}/{key}"  # external-secrets: remote key pattern
    property: str | None = None  # external-secrets: remote property pattern (for stores keyed by property)
    refresh_interval: str = "1h"
    api_version: str = "external-secrets.io/v1beta1"


@dataclass(frozen=True)
class ArgoCDApp:
    """An Argo CD `Application` for the profile's overlay."""

    repo: str
    revision: str = "HEAD"
    path: str | None = None  # default: the overlay's path relative to the project root
    project: str = "default"
    namespace: str = "argocd"
    server: str = "https://kubernetes.default.svc"
    automated: bool = True


@dataclass(frozen=True)
class FluxSync:
    """A Flux `GitRepository` + `Kustomization` for the profile's overlay."""

    repo: str
    branch: str = "main"
    path: str | None = None
    namespace: str = "flux-system"
    interval: str = "5m"
    decryption_secret: str = "sops-age"  # the Secret holding the age identity (sops only)


@dataclass(frozen=True)
class GitOpsSettings:
    """`gitops:`: how `render gitops` writes the profile's Secrets and controller objects."""

    secrets: SecretProvider | None = None
    argocd: ArgoCDApp | None = None
    flux: FluxSync | None = None
