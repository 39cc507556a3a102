"""The pipeline, in one place: profile + Compose files → resolved Compose project → stack model
→ profile overrides applied. Every backend starts from `load_stack()`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stackctl import model as m
from stackctl.profile.types import Profile, ResourceSpec

if TYPE_CHECKING:
    from stackctl.kubernetes.settings import ServiceSettings


@dataclass(frozen=True)
class LoadedStack:
    profile: Profile
    stack: m.Stack


def load_stack(profile: Profile, *, environ: Mapping[str, str] | None = None,
               env_from_store: bool = False) -> LoadedStack:
    """`environ`: what Compose interpolates with. `env_from_store`: it holds the profile's env as `env
    render` would write it, secrets from the store (promote): then a missing env file is no news,
    and "create it with `stackctl env render`" would only invite a plaintext copy of the secrets."""
    from stackctl.compose import loader

    invocation, warnings = loader.invocation_for(profile)
    if env_from_store:
        warnings = [w for w in warnings if not w.field.endswith(": compose.env_files")]
    data, compose_warnings = loader.resolve(invocation, root=profile.root, environ=environ)
    stack = loader.to_model(data)
    stack = apply_overrides(stack, profile)
    stack = dataclasses.replace(stack, warnings=(*warnings, *compose_warnings, *stack.warnings))
    return LoadedStack(profile=profile, stack=stack)


def apply_overrides(stack: m.Stack, profile: Profile) -> m.Stack:
    """Apply the profile's per-service settings that every backend honours (replicas, resources)."""
    from stackctl.kubernetes import settings

    resolved = settings.from_profile(profile)
    resolved.check_names(stack.service_names)
    services = tuple(_apply(svc, resolved.of(svc.name)) for svc in stack.services)
    return dataclasses.replace(stack, name=profile.stack or stack.name, services=services)


def _apply(svc: m.Service, s: ServiceSettings) -> m.Service:
    deploy = svc.deploy
    replicas = s.replicas if s.replicas is not None else deploy.replicas
    limits, reservations = deploy.limits, deploy.reservations
    res = s.resources_over(limits != m.Resources() or reservations != m.Resources())
    if res is not None:
        limits = _merge(limits, res.limits)
        reservations = _merge(reservations, res.requests)
    if replicas == deploy.replicas and limits == deploy.limits and reservations == deploy.reservations:
        return svc
    return dataclasses.replace(svc, deploy=dataclasses.replace(deploy, replicas=replicas, limits=limits,
                                                               reservations=reservations))


def _merge(base: m.Resources, spec: ResourceSpec) -> m.Resources:
    return dataclasses.replace(base,
                               cpus=spec.cpus if spec.cpus is not None else base.cpus,
                               memory=spec.memory if spec.memory is not None else base.memory)
