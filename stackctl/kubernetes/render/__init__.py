"""The Kubernetes renderer: stack model + profile settings + secret inputs → plain-dict objects.

Pure and deterministic: no I/O, no clock, no randomness, no Kubernetes client. The same inputs
give the same objects in the same order, so the serialized output is byte-identical (golden tests
rely on it). Every choice made here is listed in docs/kubernetes.md ("Mapping").

Object order is the apply order (`stackctl.io/wave`, then kind, then name): the Namespace; then
ConfigMaps, Secrets, claims, Services and NetworkPolicies; then workloads level by level, where a
level starts after the Jobs that its services wait for (`service_completed_successfully`) have
completed. Promote applies one wave at a time and waits for the Jobs annotated
`stackctl.io/wait: complete` before the next.

The parts, each a set of functions over one shared `Context` (context.py): `plan` (the decisions per
service), `config` (ConfigMaps, Secrets), `storage` (claims, volumes, mounts), `workloads` (one
service's objects), `podspec` (the pod), `network` (Services, Ingress, NetworkPolicies), `scaling`
(HPA, PDB); `mapping` holds the small translations they are built from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stackctl import model as m
from stackctl.kubernetes.inputs import HostPath, SecretInputs, Target
from stackctl.kubernetes.labels import A_PRUNE, A_SERVICE, A_WAVE, WORKLOAD_KINDS
from stackctl.kubernetes.names import gc_paused
from stackctl.kubernetes.render import config, network, plan, storage, workloads
from stackctl.kubernetes.render.context import KIND_ORDER, WAVE_NAMESPACE, Context
from stackctl.kubernetes.render.podspec import capabilities

__all__ = ["Rendered", "capabilities", "render"]

RESERVED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


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
            if o["kind"] in WORKLOAD_KINDS and o["metadata"].get("annotations", {}).get(A_SERVICE) == service:
                return o
        raise KeyError(service)


def render(stack: m.Stack, target: Target, *, secrets: SecretInputs | None = None,
           host: Mapping[str, HostPath] | None = None) -> Rendered:
    """Render `stack` for Kubernetes. Raises `InputError` (located) for input it cannot render."""
    with gc_paused():
        stack, left_out = _without_provider_services(stack)
        ctx = Context(stack, target, secrets or SecretInputs(), host or {})
        for warning in left_out:
            ctx.warn(warning.field, warning.message)
        return _run(ctx)


def _without_provider_services(stack: m.Stack) -> tuple[m.Stack, list[m.Warning_]]:
    """A service with `provider:` and no image is created by a Compose plugin (Docker Model Runner,
    a cloud provider's extension): nothing runs in a pod. It is left out (the loader has warned about
    its `provider` field), and so is every `depends_on` on it, with a warning each: a wait for a
    Service that never exists would keep the dependent from starting."""
    import dataclasses

    gone = {svc.name for svc in stack.services if "provider" in svc.fields and not svc.image and svc.build is None}
    if not gone:
        return stack, []
    warnings: list[m.Warning_] = []
    services = []
    for svc in stack.services:
        if svc.name in gone:
            continue
        kept = tuple(d for d in svc.depends_on if d.service not in gone)
        for d in svc.depends_on:
            if d.service in gone:
                warnings.append(m.Warning_(f"services.{svc.name}.depends_on.{d.service}",
                                           f"{d.service} is a provider service, left out: not waited for (set its "
                                           "address in this service's environment)"))
        services.append(dataclasses.replace(svc, depends_on=kept) if kept != svc.depends_on else svc)
    return dataclasses.replace(stack, services=tuple(services)), warnings


def _run(ctx: Context) -> Rendered:
    plan.check_profile_references(ctx)
    plan.make_plans(ctx)
    if ctx.namespace not in RESERVED_NAMESPACES:
        ctx.emit("Namespace", ctx.namespace, {}, wave=WAVE_NAMESPACE, label_name=ctx.stack_label,
                 namespaced=False, annotations={A_PRUNE: "false"})
    files = config.file_objects(ctx)
    env = config.environment(ctx)
    claims = storage.claims(ctx)
    for service in ctx.sorted_plans:
        workloads.render_service(ctx, service, env.get(service.svc.name, []), files, claims)
    config.env_secret(ctx)
    network.network_policies(ctx)
    rank = {kind: i for i, kind in enumerate(KIND_ORDER)}
    objects = sorted(ctx.objects, key=lambda o: (int(o["metadata"]["annotations"][A_WAVE]), rank[o["kind"]],
                                                 o["metadata"]["name"]))
    return Rendered(objects=tuple(objects), warnings=tuple(ctx.warnings), notes=tuple(ctx.notes))
