"""Per-service settings of a profile, resolved once: `services.<name>` over `defaults`, checked together.

The profile reader (stackctl.profile) validates each key on its own (types, ranges, choices) and
refuses under `defaults:` the keys that describe one service (`replicas`, `kind`, `autoscaling`, ...).
This module is the only place where a service's own settings and the profile's defaults meet: it
merges them into one frozen `ServiceSettings` per service, and checks the combinations that the
profile alone decides (`blue_green:` needs `strategy: blue-green`, `canary:` needs `strategy:
canary`). The renderer, `doctor` and the local backend all read the result, so a profile that one
of them accepts is accepted by the others.

Checks that also need the Compose project (what kind of workload a service becomes, its ports and
volumes) stay in the renderer, which is the first to know those.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from stackctl.errors import ProfileError
from stackctl.profile.types import Profile, Resources, ServiceOverride

# strategy → the field holding its settings (the ones that name a controller)
STRATEGY_SETTINGS = {"canary": "canary", "blue-green": "blue_green"}
# Fields that `defaults:` fills in for a service that leaves them unset; every other field is the
# service's own (the profile reader refuses it under `defaults:`). `resources` is merged with the
# Compose file's own resources, see `ServiceSettings.resources_over`.
DEFAULTED_FIELDS = ("strategy", "service_type", "liveness", "pull_policy", "update", "blue_green", "canary",
                    "shutdown_delay")


@dataclass(frozen=True)
class ServiceSettings(ServiceOverride):
    """One service's settings: every `ServiceOverride` field with the defaults filled in.

    `service` is the Compose service (None: the profile's `defaults` themselves, as a service the
    profile does not name gets them); `own` the fields `services.<name>` sets itself, so an error
    can name the key that was written."""

    service: str | None = None
    own: frozenset[str] = frozenset()
    defaults_resources: Resources = field(default_factory=Resources)

    def where(self, name: str) -> str:
        """The profile key a setting comes from: `services.web.strategy` or `defaults.strategy`."""
        if self.service is not None and name in self.own:
            return f"services.{self.service}.{name}"
        return f"defaults.{name}"

    @property
    def argo_field(self) -> str | None:
        """`canary.controller` or `blue_green.controller` when the service's strategy is run by Argo
        Rollouts (its Deployment is rendered as a `Rollout`); else None."""
        key = STRATEGY_SETTINGS.get(self.strategy or "")
        chosen = getattr(self, key) if key else None
        return f"{key}.controller" if chosen is not None and chosen.controller == "argo-rollouts" else None

    def resources_over(self, compose_has_resources: bool) -> Resources | None:
        """The profile resources that apply over the Compose file's: the service's own, else
        `defaults.resources` for a service whose Compose file sets none."""
        if not self.resources.empty:
            return self.resources
        if compose_has_resources or self.defaults_resources.empty:
            return None
        return self.defaults_resources


@dataclass(frozen=True)
class Settings:
    """Every service's settings under one profile. `of(name)` for any Compose service."""

    file: str  # the profile as errors show it (`profiles/production.yaml`)
    defaults: ServiceSettings
    services: Mapping[str, ServiceSettings]

    def of(self, name: str) -> ServiceSettings:
        found = self.services.get(name)
        return found if found is not None else dataclasses.replace(self.defaults, service=name)

    @property
    def replicas(self) -> dict[str, int]:
        """The replica counts the profile sets (`services.<name>.replicas`), by service."""
        return {name: s.replicas for name, s in sorted(self.services.items()) if s.replicas is not None}

    def check_names(self, names: Iterable[str]) -> None:
        """Refuse settings for a service the Compose project does not have (a typo must not pass)."""
        known = set(names)
        for name in self.services:
            if name not in known:
                raise ProfileError(f"no such service in the Compose project (services: "
                                   f"{', '.join(sorted(known)) or 'none'})", file=self.file, field=f"services.{name}")


def resolve(services: Mapping[str, ServiceOverride], defaults: ServiceOverride, *, file: str) -> Settings:
    """Merge and check. Raises `ProfileError` located at the key to change."""
    base = _settings(None, ServiceOverride(), defaults)
    _check(base, file)
    out: dict[str, ServiceSettings] = {}
    for name, own in services.items():
        settings = _settings(name, own, defaults)
        _check(settings, file)
        out[name] = settings
    return Settings(file=file, defaults=base, services=out)


def from_profile(profile: Profile) -> Settings:
    return resolve(profile.services, profile.defaults, file=profile.display_path)


def _settings(name: str | None, own: ServiceOverride, defaults: ServiceOverride) -> ServiceSettings:
    values = {f.name: getattr(own, f.name) for f in dataclasses.fields(ServiceOverride)}
    set_here = {key for key, value in values.items() if value is not None and value != () and key != "resources"}
    if not own.resources.empty:
        set_here.add("resources")
    for key in DEFAULTED_FIELDS:
        if values[key] is None:
            values[key] = getattr(defaults, key)
    return ServiceSettings(**values, service=name, own=frozenset(set_here), defaults_resources=defaults.resources)


def _check(s: ServiceSettings, file: str) -> None:
    for key, strategy in (("blue_green", "blue-green"), ("canary", "canary")):
        if getattr(s, key) is not None and s.strategy != strategy:
            inherited = "" if s.service is None or key in s.own else (
                f" (services.{s.service} sets strategy: {s.strategy})" if s.strategy else "")
            raise ProfileError(f"only applies with strategy: {strategy}{inherited}", file=file, field=s.where(key))
