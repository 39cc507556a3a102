"""The pipeline, in one place: profile + Compose files → resolved Compose project → stack model
→ profile overrides applied. Every backend starts from `load_stack()`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from stackctl import model as m
from stackctl.errors import ComposeFileError, StackctlError
from stackctl.profile.types import Profile, ResourceSpec, display

if TYPE_CHECKING:
    from stackctl.kubernetes.settings import ServiceSettings


@dataclass(frozen=True)
class LoadedStack:
    """The profile and the stack with its overrides applied: what every backend starts from."""

    profile: Profile
    stack: m.Stack
    notes: tuple[str, ...] = ()  # about the inputs, not the mapping (`--strict` does not count them)


Secrets = Literal["masked", "values"]


def load_stack(profile: Profile, *, environ: Mapping[str, str] | None = None,
               env_from_store: bool = False, secrets: Secrets | None = None) -> LoadedStack:
    """`environ`: what Compose interpolates with (default: this process's environment).
    `env_from_store`: it holds the profile's env as `env render` would write it, secrets from the
    store (promote): then a missing env file is no news, and "create it with `stackctl env render`"
    would only invite a plaintext copy of the secrets.

    `secrets`: compute that env here, in memory (`stackctl.secrets.envfile.in_memory`), over
    `environ`: "masked" shows every secret as its marker wherever it flows (`config`, `render`
    without values: nothing to reveal, no key needed), "values" holds the store's plaintext (a
    key needed). The profile's env file need not exist. None: Compose reads the env files as they
    are (`up`, which renders them first)."""
    from stackctl.compose import loader

    names: frozenset[str] = frozenset()
    unset: list[str] = []  # secrets shown as markers that have no value yet
    if secrets is not None:
        from stackctl.secrets import envfile

        env = envfile.in_memory(profile, masked=secrets == "masked", unset=unset)
        if env is not None:
            environ = {**(os.environ if environ is None else environ), **env}
            env_from_store = True
            names = _secret_names(profile) if secrets == "masked" else frozenset()
    invocation, warnings = loader.invocation_for(profile)
    if env_from_store:
        warnings = [w for w in warnings if not w.field.endswith(": compose.env_files")]
    blank_hint = f"set it in {display(profile.env.template, profile.root)} or {profile.display_path} env.values"
    try:
        data, compose_warnings = loader.resolve(invocation, root=profile.root, environ=environ)
    except ComposeFileError as exc:
        exc = loader.explain_blank(exc, invocation, profile.root, environ, hint=blank_hint)
        raise _with_profile_hint(exc, profile, env_from_store) from None
    blank = loader.blank_field_error(data, invocation, profile.root, environ, hint=blank_hint)
    if blank is not None:
        raise blank
    compose_warnings = loader.grouped_unset_warnings(compose_warnings, invocation, profile.root)
    stack = loader.to_model(data, file=loader.first_file(invocation, profile.root))
    if names:
        stack = _mask_env_files(stack, names)
    stack = apply_overrides(stack, profile)
    notes: tuple[str, ...] = ()
    if secrets == "masked" and unset:
        from stackctl.secrets import envfile, ops

        notes = (f"{ops.store_display(profile)}: no value yet for {', '.join(unset)} (shown as "
                 f"<secret:NAME>; promote needs them: {envfile.missing_hint(profile, unset)})",)
    notes = (*notes, *loader.environment_notes(profile, invocation, environ))
    stack = dataclasses.replace(stack, warnings=(*warnings, *compose_warnings, *stack.warnings))
    return LoadedStack(profile=profile, stack=stack, notes=notes)


def _secret_names(profile: Profile) -> frozenset[str]:
    """The @secret keys of the template and every name in the store (which needs no key to list)."""
    from stackctl.secrets import ops

    template = ops.template_if_any(profile)
    names = set(template.secret_names if template else ())
    if profile.secrets.store.is_file():
        names |= set(ops.open_store(profile, need_key=False).names)
    return frozenset(names)


def _mask_env_files(stack: m.Stack, names: frozenset[str]) -> m.Stack:
    """A service's `env_file:` reaches its environment with the file's own values, so the markers
    passed to Compose do not replace a secret read from it: mask those by name, and every place
    their plaintext was interpolated into another value of such a file
    (`JAVA_OPTS=-Ddb.password=${DB_PASSWORD}`), so that such a value is seen to hold a secret."""
    from stackctl.secrets import mask

    plaintext: dict[str, str] = {}  # value → the secret it is, as the env files hold it
    for svc in stack.services:
        for key, value in svc.environment.items():
            if key in names and value and not mask.is_masked(value):
                plaintext.setdefault(value, key)
    if not plaintext:
        return stack
    # Longest first: a value that contains another secret's value is replaced whole.
    order = sorted(plaintext, key=len, reverse=True)
    services = []
    for svc in stack.services:
        env = dict(svc.environment)
        for key, value in svc.environment.items():
            if not value:
                continue
            if key in names and not mask.is_masked(value):
                env[key] = mask.marker(key)
                continue
            for secret in order:
                if len(secret) >= _MIN_TRACKED_VALUE and secret in value:
                    value = value.replace(secret, mask.marker(plaintext[secret]))
            env[key] = value
        services.append(dataclasses.replace(svc, environment=env) if env != svc.environment else svc)
    return dataclasses.replace(stack, services=tuple(services))


_MIN_TRACKED_VALUE = 4  # shorter values would be found inside others by chance


def _with_profile_hint(exc: ComposeFileError, profile: Profile, in_memory: bool) -> ComposeFileError:
    """A required variable without a value: say what sets it for this profile. `env render` helps
    only when Compose reads the env file (it was not computed in memory) and the store holds it."""
    import re

    match = re.search(r"required variable (\w+)", exc.message)
    if match is None:
        return exc
    var, p = match.group(1), f"-p {profile.name}"
    from stackctl.secrets import ops

    try:
        template = ops.template_if_any(profile)
        stored = profile.secrets.store.is_file() and var in ops.open_store(profile, need_key=False).names
    except StackctlError:
        return exc  # a broken template or store is reported by the commands that read them
    key = template.get(var) if template else None
    if key is not None and key.is_secret:
        if stored and not in_memory:
            hint = f"run `stackctl env render {p}`, or pass the value in the environment"
        elif key.generator is not None:
            hint = f"run `stackctl secrets generate {p}`"
        else:
            hint = f"set it with `stackctl secrets set {var} {p}`"
    elif key is not None:
        hint = f"give it a value in {template.display if template else '.env.example'} or in " \
               f"{profile.display_path} env.values"
    else:
        shown = template.display if template else ".env.example"
        hint = (f"add it to {shown} (annotated `# @secret` if it is one, then `stackctl secrets generate {p}`), "
                f"or set it in {profile.display_path} env.values")
    return ComposeFileError(exc.message, file=exc.file, field=exc.field, hint=hint)


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
